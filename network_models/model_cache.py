"""Models built from grid files, kept between runs so that a restart does not build them again.

Building Jiuke Oasis from its YAML file (validation, then hundreds of pandapower ``create_*``
calls) takes about a second; unpickling the built model takes a fifth of that. A runtime that
was killed must be back in control within seconds, so the built model of a grid file is kept
in a cache folder, keyed by everything it is made of: the file's path and bytes, the source of
``network_models`` (the code that builds it) and the versions of Python, pandapower, pandas and
numpy. Any change to any of them is a miss and the model is built again; a file that does not
validate is never cached. The cache is best effort: a folder that cannot be written, or an entry
that cannot be read, costs the build and nothing else.

Where: ``$GRIDCTL_CACHE_DIR``, else ``$XDG_CACHE_HOME/gridctl/models`` (``~/.cache/...``);
``GRIDCTL_CACHE_DIR=off`` turns it off. The cache holds pickles written by gridctl itself, in a
folder of the user's own; it keeps the newest ``KEEP`` entries.
"""

from __future__ import annotations

import copyreg
import functools
import hashlib
import io
import logging
import os
import pickle
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from network_models.model import GridModel

__all__ = ["cache_dir", "cached_build", "cached_model"]

KEEP = 16
_log = logging.getLogger("network_models.model_cache")


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off."""
    chosen = os.environ.get("GRIDCTL_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0", "no") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gridctl" / "models"


def cached_model(path: Path, build: Callable[[], GridModel]) -> GridModel:
    """The model of grid file ``path``: from the cache when it holds this very build, else
    ``build()`` (which validates the file and raises on a bad one), stored for next time."""
    if cache_dir() is None:
        return build()
    try:
        # the path too: a model records where it came from
        made_of = str(path).encode() + b"\0" + path.read_bytes()
    except OSError:
        return build()  # the build says what is wrong with the file
    return cached_build(path.stem, made_of, build)


def cached_build(stem: str, made_of: bytes, build: Callable[[], GridModel]) -> GridModel:
    """The model made of ``made_of`` (all that its build reads besides gridctl's code and the
    libraries' versions, e.g. a package's name and version): from the cache, else ``build()``."""
    folder = cache_dir()
    if folder is None:
        return build()
    key = _key(made_of)
    entry = folder / f"{stem}-{key[:32]}.pickle"
    try:
        with entry.open("rb") as f:
            model = pickle.load(f)
        os.utime(entry)  # recently used: kept longest
        return model
    except FileNotFoundError:
        pass
    except Exception as exc:  # a damaged entry: build again and replace it
        _log.warning("model cache entry %s unreadable (%s): building the model again",
                     entry, exc)
    model = build()
    _store(folder, entry, model)
    return model


def _key(source: bytes) -> str:
    digest = hashlib.sha256(source)
    digest.update(_code_fingerprint().encode())
    return digest.hexdigest()


@functools.cache
def _code_fingerprint() -> str:
    """Everything besides the file a built model depends on."""
    import numpy
    import pandapower
    import pandas

    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode())
        digest.update(module.read_bytes())
    for part in (platform.python_version(), pandapower.__version__, pandas.__version__,
                 numpy.__version__, str(pickle.HIGHEST_PROTOCOL)):
        digest.update(part.encode())
    return digest.hexdigest()


def _store(folder: Path, entry: Path, model: GridModel) -> None:
    try:
        data = _dumps(model)
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, entry)  # whole or not at all: a reader never sees half an entry
        entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
    except Exception as exc:  # best effort: a read-only home, a full disk
        _log.info("model cache not written to %s: %s", folder, exc)


def _read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _reduce_read_only(proxy: MappingProxyType[Any, Any]) -> tuple[Any, tuple[Any, ...]]:
    return _read_only, (dict(proxy),)


def _dumps(model: GridModel) -> bytes:
    # the model keeps read-only mappings; pickled as such, with this pickler only
    buffer = io.BytesIO()
    pickler = pickle.Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_read_only}
    pickler.dump(model)
    return buffer.getvalue()
