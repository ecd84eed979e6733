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
folder of the user's own; it keeps the newest ``KEEP`` entries. A model's large arrays (a
SimBench grid's year of profiles) are kept in a file beside its entry and mapped on load, read
only: a process pages in the days it reads, not the year.
"""

from __future__ import annotations

import contextlib
import copyreg
import functools
import hashlib
import io
import logging
import mmap
import os
import pickle
import platform
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from network_models.model import GridModel

__all__ = ["cache_dir", "cached_build", "cached_model"]

KEEP = 16
# arrays this large (a grid's year of profiles) are stored beside the entry and mapped on load:
# the net and registry stay in the pickle, writable
OUT_OF_BAND_BYTES = 32 * 2**20
_ALIGN = 64
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
        model = _load(entry)
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
        data, buffers = _dumps(model)
        folder.mkdir(parents=True, exist_ok=True)
        spans = []
        if buffers:  # written before the entry: an entry found has its buffers
            offset = 0
            with _atomic(folder, _buffers_path(entry)) as f:
                for buf in buffers:
                    raw = buf.raw()
                    spans.append((offset, raw.nbytes))
                    f.write(raw)
                    pad = -raw.nbytes % _ALIGN
                    f.write(b"\0" * pad)
                    offset += raw.nbytes + pad
        with _atomic(folder, entry) as f:
            pickle.dump({"buffers": spans, "model": data}, f, protocol=pickle.HIGHEST_PROTOCOL)
        entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
            _buffers_path(old).unlink(missing_ok=True)
    except Exception as exc:  # best effort: a read-only home, a full disk
        _log.info("model cache not written to %s: %s", folder, exc)


@contextlib.contextmanager
def _atomic(folder: Path, path: Path) -> Iterator[io.BufferedWriter]:
    """A file written whole or not at all: a reader never sees half of it."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _buffers_path(entry: Path) -> Path:
    return entry.with_suffix(".buffers")


def _load(entry: Path) -> GridModel:
    """An entry's model; its large arrays are mapped from the buffers file, read-only and
    paged in when read (a year of 15-min profiles of 11,542 loads is 3.2 GB, a day of it 9 MB)."""
    with entry.open("rb") as f:
        stored = pickle.load(f)
    spans = stored["buffers"]
    if not spans:
        return pickle.loads(stored["model"])
    with _buffers_path(entry).open("rb") as f:
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(mapped)
    return pickle.loads(stored["model"], buffers=[view[o:o + n] for o, n in spans])


def _read_only(mapping: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(mapping)


def _reduce_read_only(proxy: MappingProxyType[Any, Any]) -> tuple[Any, tuple[Any, ...]]:
    return _read_only, (dict(proxy),)


def _dumps(model: GridModel) -> tuple[bytes, list[pickle.PickleBuffer]]:
    """The pickled model and its arrays of at least ``OUT_OF_BAND_BYTES``, kept apart (pickle
    protocol 5) to be mapped on load rather than read."""
    # the model keeps read-only mappings; pickled as such, with this pickler only
    buffer = io.BytesIO()
    large: list[pickle.PickleBuffer] = []

    def apart(buf: pickle.PickleBuffer) -> bool:
        if buf.raw().nbytes < OUT_OF_BAND_BYTES:
            return True  # in band
        large.append(buf)
        return False

    pickler = pickle.Pickler(buffer, protocol=5, buffer_callback=apart)
    pickler.dispatch_table = {**copyreg.dispatch_table, MappingProxyType: _reduce_read_only}
    pickler.dump(model)
    return buffer.getvalue(), large
