"""How the historian packs measurements: one frame per reading, 15-minute statistics per point.

A frame is what one batched read returned: the values of a point set (a tuple of points stored
once) as little-endian float64, zlib-compressed. A reading of 3,880 points is one row instead of
3,880, and zlib's checksum makes a frame damaged on disk fail loudly instead of reading wrong.

Statistics (mean, min, max, samples) are over the Good, finite values of each point in a bucket;
a point seen only with bad status or NaN has 0 samples and NaN statistics.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

VALUE_DTYPE = np.dtype("<f8")
ID_DTYPE = np.dtype("<i4")
STATS = ("mean", "min", "max", "samples")  # the columns of a statistics array, in order


class FrameDamaged(ValueError):
    """A stored frame that does not decompress or has the wrong length."""


def pack_values(values: Sequence[float | None]) -> bytes:
    """Values (None read as NaN) as compressed float64."""
    array = np.array([np.nan if v is None else float(v) for v in values], dtype=VALUE_DTYPE)
    return zlib.compress(array.tobytes())


def unpack_values(blob: bytes, n: int) -> np.ndarray:
    """The ``n`` values of a frame packed by :func:`pack_values`."""
    return _unpack(blob, VALUE_DTYPE, n)


def ids_bytes(ids: Sequence[int] | np.ndarray) -> bytes:
    """Point ids as stored (before compression): what a point set is known by."""
    return np.asarray(ids, dtype=ID_DTYPE).tobytes()


def unpack_ids(blob: bytes) -> np.ndarray:
    return _unpack(blob, ID_DTYPE, None)


def pack_stats(stats: np.ndarray) -> bytes:
    """An (n, 4) array of mean, min, max, samples; stored row-major, so a point with one sample
    (min = max = mean) costs little more than its mean."""
    # level 3: within 7 % of level 6's size at half its time (a maintain pass is mostly this)
    return zlib.compress(np.ascontiguousarray(stats, dtype=VALUE_DTYPE).tobytes(), 3)


def unpack_stats(blob: bytes, n: int) -> np.ndarray:
    return _unpack(blob, VALUE_DTYPE, n * len(STATS)).reshape(n, len(STATS))


def _unpack(blob: bytes, dtype: np.dtype, n: int | None) -> np.ndarray:
    try:
        raw = zlib.decompress(blob)
    except (zlib.error, TypeError) as exc:
        raise FrameDamaged(f"does not decompress ({exc})") from None
    if len(raw) % dtype.itemsize or (n is not None and len(raw) != n * dtype.itemsize):
        raise FrameDamaged(f"holds {len(raw)} bytes, expected {n} values of {dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype).astype(dtype.newbyteorder("="))


def bucket_stats(
    ids: np.ndarray, values: np.ndarray, good: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per point id (sorted): mean, min, max and samples of the Good, finite values.

    ``ids``, ``values`` and ``good`` are flat and aligned (every frame of a bucket, concatenated).
    """
    points, where = np.unique(ids, return_inverse=True)
    use = good & np.isfinite(values)
    k = len(points)
    samples = np.bincount(where[use], minlength=k).astype(float)
    sums = np.bincount(where[use], weights=values[use], minlength=k)
    lows = np.full(k, np.inf)
    highs = np.full(k, -np.inf)
    np.minimum.at(lows, where[use], values[use])
    np.maximum.at(highs, where[use], values[use])
    seen = samples > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(seen, sums / np.where(seen, samples, 1.0), np.nan)
    stats = np.column_stack(
        [means, np.where(seen, lows, np.nan), np.where(seen, highs, np.nan), samples]
    )
    return points, stats


def merge_stats(
    a_ids: np.ndarray, a: np.ndarray, b_ids: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of one bucket computed in two parts, combined (means weighted by samples)."""
    points = np.union1d(a_ids, b_ids)
    out = np.zeros((len(points), len(STATS)))
    out[:, 1] = np.inf
    out[:, 2] = -np.inf
    for ids, part in ((a_ids, a), (b_ids, b)):
        at = np.searchsorted(points, ids)
        n = part[:, 3]
        seen = n > 0
        out[at[seen], 0] += part[seen, 0] * n[seen]
        out[at[seen], 1] = np.minimum(out[at[seen], 1], part[seen, 1])
        out[at[seen], 2] = np.maximum(out[at[seen], 2], part[seen, 2])
        out[at, 3] += n
    seen = out[:, 3] > 0
    out[seen, 0] /= out[seen, 3]
    out[~seen, :3] = np.nan
    return points, out
