"""Seeded random streams, one per purpose and key, so a day's draws do not depend on the horizon."""

from __future__ import annotations

import zlib

import numpy as np
from scipy.signal import lfilter


def stream(seed: int, purpose: str, *keys: int | str) -> np.random.Generator:
    """A generator fixed by ``seed``, a purpose name and integer or string keys (e.g. a day)."""
    words = [int(seed), zlib.crc32(purpose.encode())]
    for k in keys:
        words.append(zlib.crc32(k.encode()) if isinstance(k, str) else int(k))
    return np.random.default_rng(words)


def bounded_ar1(
    rng: np.random.Generator, n: int, phi: float, size: int | None = None
) -> np.ndarray:
    """A smooth noise path in [-1, 1]: AR(1) with unit marginal variance, scaled and clipped.

    Shape ``(n,)`` or ``(n, size)``; ``phi`` is the step-to-step correlation. Most of the mass sits
    well inside the bounds (standard deviation 0.5), so the bound is an envelope, not a typical
    value.
    """
    return np.clip(0.5 * ar1(rng, n, phi, size), -1.0, 1.0)


def ar1(rng: np.random.Generator, n: int, phi: float, size: int | None = None) -> np.ndarray:
    """A stationary AR(1) path with unit marginal variance along axis 0."""
    shape = (n,) if size is None else (n, size)
    z = rng.standard_normal(shape)
    scale = np.sqrt(1.0 - phi * phi)
    if scale == 0.0:
        return np.broadcast_to(z[:1], shape).copy()
    z[0] = z[0] / scale  # so the first value already has unit variance
    return lfilter([scale], [1.0, -phi], z, axis=0)
