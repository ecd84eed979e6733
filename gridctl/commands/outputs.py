"""Where a command writes: checked before the work, written whole or not at all.

Every command that writes files (``dayahead``, ``forecast``, ``grid plot``, ``drill``) names its
output location before it starts, so a path under a file, a folder it cannot write in, or a
folder holding files of something else is refused at once (exit 2) instead of after minutes of
work. The outputs are written into a hidden folder (or file) beside the target, then moved into
place with a rename, so a run that fails or is interrupted leaves what was there untouched:

- an output folder that exists is replaced as a whole: its old files go with it, never mixed with
  new ones. It may hold only files the command writes (an earlier run's outputs); a folder
  holding anything else is refused, naming the first such file, so ``--out .`` cannot delete
  what is not the command's;
- an output file is replaced by ``os.replace``;
- folders missing above the target are created, and removed again if the run fails.

The old folder is renamed aside (``.NAME.gridctl-old-*``) and the new one renamed into place: a
process killed between the two renames (microseconds) leaves the old outputs in that hidden
folder beside the target, and one killed while writing leaves a hidden ``.NAME.gridctl-new-*``;
neither is ever read by gridctl, and both may be deleted.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gridctl.errors import UserInputError

__all__ = ["OutputFile", "OutputFolder", "dumps_json", "output_file", "output_folder"]

FOLDER_HELP = ("Folder for the outputs, created if needed. An existing one is replaced as a "
               "whole once the new outputs are complete (kept as it was if the run fails); it "
               "may hold only this command's outputs.")


@dataclass(frozen=True)
class OutputFolder:
    """A checked output folder; :meth:`writing` gives the folder to write into."""

    path: Path  # as the person gave it (messages name it)
    option: str
    names: frozenset[str]  # the files the command writes there

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """A new empty folder beside the target; moved into place when the block ends well."""
        target = _real(self.path)
        with _ancestors_made(target.parent, self.option) as parent:
            staging = _new_beside(parent, target.name, "", self.option, make_folder=True)
            try:
                yield staging
                _check_folder(self.path, self.option, self.names)  # still only ours
                _replace_folder(staging, target)
            except OSError as exc:  # a full disk, a folder made read-only meanwhile
                shutil.rmtree(staging, ignore_errors=True)
                raise _unwritable(self.path, self.option, exc) from None
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise


@dataclass(frozen=True)
class OutputFile:
    """A checked output file; :meth:`writing` gives the path to write to."""

    path: Path
    option: str

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """A new path beside the target (same suffix); moved into place when the block ends
        well."""
        target = _real(self.path)
        with _ancestors_made(target.parent, self.option) as parent:
            staging = _new_beside(parent, target.name, target.suffix, self.option,
                                  make_folder=False)
            try:
                yield staging
                _check_file(self.path, self.option)
                os.replace(staging, target)
            except OSError as exc:
                staging.unlink(missing_ok=True)
                raise _unwritable(self.path, self.option, exc) from None
            except BaseException:
                staging.unlink(missing_ok=True)
                raise


def output_folder(path: str | Path, *, option: str = "--out",
                  writes: Iterable[str]) -> OutputFolder:
    """Check, before any work, that ``path`` can become a folder of the files ``writes``."""
    out = OutputFolder(Path(path), option, frozenset(writes))
    _check_folder(out.path, option, out.names)
    _check_parent(out.path, option)
    return out


def output_file(path: str | Path, *, option: str = "--out", suffix: str) -> OutputFile:
    """Check, before any work, that ``path`` can be written as a ``suffix`` file (".png")."""
    out = OutputFile(Path(path), option)
    if out.path.suffix.lower() != suffix:
        raise UserInputError(f"{out.path}: expected a {suffix} file name", source=option)
    _check_file(out.path, option)
    _check_parent(out.path, option)
    return out


def dumps_json(data: Any, *, indent: int | None = 2) -> str:
    """Strict JSON (RFC 8259) of ``data``: a figure that is not a finite number is ``null``
    (Python's ``json`` would write ``NaN``, which no JSON reader accepts); other objects that
    JSON has no type for (times, paths) are written as text."""
    return json.dumps(_finite_or_none(data), indent=indent, allow_nan=False, default=str)


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite_or_none(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):  # numpy scalars
        with contextlib.suppress(TypeError, ValueError):
            return _finite_or_none(value.item())
    return value


# --- checks ----------------------------------------------------------------------------------

def _real(path: Path) -> Path:
    # a symlinked output folder is written where it points, the link is kept
    return Path(os.path.realpath(path))


def _check_folder(path: Path, option: str, names: frozenset[str]) -> None:
    if not path.exists():
        return
    if not path.is_dir():
        raise UserInputError(f"{path} is a file: expected a folder for the outputs",
                             source=option)
    here = Path.cwd()
    if here == _real(path) or _real(path) in here.parents:
        raise UserInputError(f"{path} is the folder you are in (or holds it): expected a "
                             "folder of its own for the outputs, as it is replaced as a whole",
                             source=option)
    try:
        entries = sorted(p.name for p in path.iterdir())
    except OSError as exc:
        raise _unwritable(path, option, exc) from None
    foreign = [n for n in entries if n not in names]
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise UserInputError(
            f"{path} holds {foreign[0]!r}{more}, which this command does not write: expected "
            f"a new or empty folder, or one holding only this command's outputs "
            f"({', '.join(sorted(names))}), as it is replaced as a whole", source=option)


def _check_file(path: Path, option: str) -> None:
    if path.is_dir():
        raise UserInputError(f"{path} is a folder: expected a file name", source=option)


def _check_parent(path: Path, option: str) -> None:
    """The nearest folder above ``path`` that exists is a folder one may write in."""
    parent = _real(path).parent if path.is_symlink() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserInputError(
            f"{path}: {parent} is a file, not a folder: expected a path in a folder",
            source=option)
    # making something there is the one test that holds for every user, mount and ACL
    _new_beside(parent, path.name, "", option, make_folder=True).rmdir()


def _unwritable(path: Path, option: str, exc: OSError) -> UserInputError:
    return UserInputError(
        f"cannot write in {path} ({exc.strerror or exc}): expected a folder you can write in, "
        "with room for the outputs", source=option)


# --- writing ---------------------------------------------------------------------------------

def _new_beside(parent: Path, name: str, suffix: str, option: str, *,
                make_folder: bool) -> Path:
    """A new hidden folder or empty file ``.NAME.gridctl-new-XXXXXXXX`` in ``parent``."""
    for _ in range(100):
        path = parent / f".{name}.gridctl-new-{secrets.token_hex(4)}{suffix}"
        try:
            if make_folder:
                path.mkdir()  # the mode the person's umask gives, as any folder they make
            else:
                path.touch(exist_ok=False)
            return path
        except FileExistsError:
            continue
        except OSError as exc:
            raise _unwritable(parent, option, exc) from None
    raise UserInputError(f"cannot find a free temporary name in {parent}", source=option)


@contextlib.contextmanager
def _ancestors_made(parent: Path, option: str) -> Iterator[Path]:
    """``parent`` created if missing, and the folders made for it removed if the block fails."""
    made: list[Path] = []
    missing = parent
    while not missing.exists():
        made.append(missing)
        missing = missing.parent
    try:
        for folder in reversed(made):
            folder.mkdir()
    except OSError as exc:
        _remove_empty(made)
        raise _unwritable(parent, option, exc) from None
    try:
        yield parent
    except BaseException:
        _remove_empty(made)
        raise


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        with contextlib.suppress(OSError):
            folder.rmdir()


def _replace_folder(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing ``target`` is renamed aside first and
    removed once the new one is in place (put back if that fails)."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = target.parent / f".{target.name}.gridctl-old-{secrets.token_hex(4)}"
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)
