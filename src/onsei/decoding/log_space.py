"""Log-space arithmetic on Python floats, for the inner loops of the searches."""

from __future__ import annotations

import math

NEG_INF = float("-inf")
"""log 0."""


def logaddexp(a: float, b: float) -> float:
    """``log(exp(a) + exp(b))`` without overflow; exact when either is ``-inf``."""
    if a < b:
        a, b = b, a
    if b == NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))
