"""MONAI's float32 surface-distance arithmetic, reproduced exactly in numpy (no torch import).

MONAI casts surface distances to float32 and takes ``torch.quantile`` on them; on CPU torch takes
the rank ``float32(q) * (n - 1)`` in float64, rounds the interpolation weight to float32 and
interpolates with one fused multiply-add in float32. :func:`quantile_f32` does the same so that
``sat.eval.metrics`` can match MONAI bit for bit when asked (``monai_compatible=True``).
"""
from __future__ import annotations

from fractions import Fraction

import numpy as np


def _nearest_f32(x: Fraction) -> np.float32:
    """Round an exact rational to the nearest float32, ties to even (one rounding, like an FMA)."""
    c = np.float32(float(x))
    cands = (np.nextafter(c, np.float32(-np.inf)), c, np.nextafter(c, np.float32(np.inf)))
    return min(cands, key=lambda v: (abs(Fraction(float(v)) - x), int(v.view(np.uint32)) & 1))


def quantile_f32(values: np.ndarray, q: float) -> float:
    """``torch.quantile(values.float(), q)`` (linear) as computed on CPU, reproduced in numpy.

    The rank ``float32(q) * (n - 1)`` is taken in float64, the interpolation weight is rounded to
    float32 and the lerp is one fused multiply-add in float32 (``a + w (b - a)`` for ``w < 0.5``,
    else ``b - (b - a)(1 - w)``). Checked bit-for-bit against torch in the tests.

    Args:
        values: (N,) distances, N >= 1; cast to float32.
        q: quantile in [0, 1].
    """
    x = np.sort(np.asarray(values, dtype=np.float32).ravel())  # (N,)
    rank = float(np.float32(q)) * (len(x) - 1)
    lo = int(rank)
    hi = min(lo + 1, len(x) - 1)
    w = np.float32(rank - lo)
    a, b = x[lo], x[hi]
    diff = np.float32(b - a)
    if abs(w) < 0.5:
        exact = Fraction(float(a)) + Fraction(float(w)) * Fraction(float(diff))
    else:
        exact = Fraction(float(b)) - Fraction(float(diff)) * Fraction(float(np.float32(1) - w))
    return float(_nearest_f32(exact))
