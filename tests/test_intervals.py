"""The 95 % Wilson interval against independent computations."""
from __future__ import annotations

import math

import pytest

from pipeline.picking.intervals import Z95, wilson_interval


@pytest.mark.parametrize("k, n", [(0, 1), (1, 1), (0, 10), (5, 10), (9, 10), (49, 50), (105, 109), (110, 118),
                                  (114, 114), (114, 118), (1, 2861), (2838, 2861)])
def test_wilson_matches_scipy(k, n):
    """SciPy's own implementation (binomtest(...).proportion_ci(method='wilson'))."""
    stats = pytest.importorskip("scipy.stats")
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_wilson_textbook_value_by_hand():
    """k = 81, n = 263 (Newcombe 1998, Stat. Med. 17:857, table I, example: 0.2553-0.3662),
    and the closed form at k = n: lower = n / (n + z^2)."""
    lo, hi = wilson_interval(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson_interval(114, 114)
    assert hi == 1.0 and lo == pytest.approx(114 / (114 + Z95 ** 2), abs=1e-12)
    lo, hi = wilson_interval(0, 20)
    assert lo == 0.0 and hi == pytest.approx(Z95 ** 2 / (20 + Z95 ** 2), abs=1e-12)
    assert Z95 == pytest.approx(1.959963984540054)


def test_wilson_edges():
    assert all(math.isnan(v) for v in wilson_interval(0, 0))
    for k, n in ((3, 2), (-1, 5)):
        with pytest.raises(ValueError):
            wilson_interval(k, n)
    lo, hi = wilson_interval(7, 10)
    assert 0 <= lo < 0.7 < hi <= 1
    # a 90 % interval (z = 1.645) lies inside the 95 % one
    lo90, hi90 = wilson_interval(7, 10, z=1.6448536269514722)
    assert lo < lo90 and hi90 < hi
