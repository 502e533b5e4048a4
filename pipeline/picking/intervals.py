"""Confidence intervals for the shares the polarity evaluation reports (accuracy, coverage).

Plain Python (no SciPy at run time): the dashboard and ``python -m pipeline evaluate`` use it.
"""
from __future__ import annotations

import math

#: the standard-normal quantile of a two-sided 95 % interval, Phi^-1(0.975)
Z95 = 1.959963984540054


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial share ``k / n`` (default 95 %: ``z`` = 1.96).

    With p = k / n::

        centre    = (p + z^2 / (2 n)) / (1 + z^2 / n)
        half-width = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / (4 n^2))
        interval  = [centre - half-width, centre + half-width]

    (Wilson 1927; Agresti & Coull 1998). Unlike the normal (Wald) interval it stays inside
    [0, 1] and does not collapse to a point at k = 0 or k = n: 114 of 114 gives
    [0.967, 1], not [1, 1]. It treats the n trials as independent: for traces of a few
    events, which share a source and noise, the true uncertainty is larger.

    Returns ``(lower, upper)`` as fractions; ``(nan, nan)`` when ``n == 0``. Raises
    ``ValueError`` unless 0 <= k <= n.
    """
    k, n = int(k), int(n)
    if n == 0:
        return float("nan"), float("nan")
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    p = k / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # at k = 0 or k = n the bound is exactly 0 or 1; rounding must not push it past
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi
