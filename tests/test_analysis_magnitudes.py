"""Magnitude statistics: binning, FMD, completeness magnitude, Aki-Utsu b-value."""
import math

import numpy as np
import pytest

from pipeline.analysis import magnitudes as mg

BETA = math.log(10.0)  # b = 1


def gr_sample(n, mc, dm, b=1.0, seed=0):
    """Gutenberg-Richter magnitudes complete from the lower edge of Mc's 0.1 bin,
    reported at resolution ``dm``."""
    rng = np.random.default_rng(seed)
    m = (mc - 0.05) + rng.exponential(1.0 / (b * BETA), n)
    return np.round(mg.bin_magnitudes(m, dm), 4)


def rolloff_sample(n, mc, dm=0.01, seed=1):
    """GR (b = 1) above ``mc``; below it detected with probability 10**(-2.5 (mc - M)),
    so the non-cumulative FMD peaks at ``mc``."""
    rng = np.random.default_rng(seed)
    m = (mc - 1.5) + rng.exponential(1.0 / BETA, 8 * n)
    keep = rng.random(m.size) < np.where(m >= mc - 0.05, 1.0, 10 ** (-2.5 * (mc - 0.05 - m)))
    return np.round(mg.bin_magnitudes(m[keep][:n], dm), 4)


# --- binning and counts ---------------------------------------------------------------------

def test_bins_are_centred_on_multiples_of_the_width_and_halves_go_up():
    m = [-0.05, 0.0, 0.04, 0.05, 0.15, 0.25, -1.45, 3.21]
    assert list(mg.bin_magnitudes(m, 0.1)) == [0.0, 0.0, 0.0, 0.1, 0.2, 0.3, -1.4, 3.2]
    h = mg.magnitude_histogram(m, 0.1)
    assert np.allclose(h["centre"] * 10, np.round(h["centre"] * 10))  # multiples of 0.1
    assert h["count"].sum() == len(m)
    assert np.allclose(np.diff(h["centre"]), 0.1)  # empty bins included


def test_counts_sum_to_n_and_cumulative_starts_at_n():
    m = gr_sample(20_000, 0.5, 0.01)
    m[:7] = np.nan  # NaN magnitudes are ignored
    fmd = mg.frequency_magnitude(m, 0.1)
    assert fmd["count"].sum() == 20_000 - 7
    assert fmd["cumulative"].iloc[0] == 20_000 - 7
    assert np.all(np.diff(fmd["cumulative"]) <= 0)
    assert fmd["cumulative"].iloc[-1] == fmd["count"].iloc[-1]


def test_overlaid_histograms_share_one_grid():
    h = mg.magnitude_histograms({"all": [-2.19, -1.0, 0.0, 3.21], "resolved": [-1.0, 3.21], "none": []})
    assert list(h.columns) == ["centre", "all", "resolved", "none"]
    assert h["centre"].iloc[0] == -2.2 and h["centre"].iloc[-1] == 3.2
    assert (h["all"].sum(), h["resolved"].sum(), h["none"].sum()) == (4, 2, 0)
    assert mg.magnitude_histograms({"all": []}).empty


def test_histogram_on_a_given_grid():
    h = mg.magnitude_histogram([0.0, 0.1, 0.1, 5.0], 0.1, centres=[0.0, 0.1, 0.2])
    assert list(h["count"]) == [1, 2, 0]


def test_infer_resolution():
    assert mg.infer_resolution([0.1, -1.2, 3.0]) == 0.1
    assert mg.infer_resolution([0.12, -1.25]) == 0.01
    assert mg.infer_resolution([0.1234567]) == 0.0


# --- Mc and b on synthetic Gutenberg-Richter samples ------------------------------------------

@pytest.mark.parametrize("dm", [0.1, 0.01])
def test_pure_gr_sample_recovers_b_and_mc(dm):
    m = gr_sample(20_000, 0.5, dm)
    maxc = mg.mc_maximum_curvature(m, 0.1, correction=0.0)
    assert maxc["mc"] == pytest.approx(0.5)
    assert mg.mc_goodness_of_fit(m, 0.1, 95)["mc"] == pytest.approx(0.5)
    res = mg.gutenberg_richter(m, method="maxc", correction=0.0)
    # events >= Mc: binned ML >= Mc, i.e. ML >= Mc - 0.05 (the FMD's bin), whatever the resolution dm
    assert res["dm"] == dm and res["n"] == np.sum(m >= 0.5 - 0.05 - 1e-9)
    fmd = mg.frequency_magnitude(m, 0.1).set_index("centre")
    assert res["n"] == fmd.loc[0.5, "cumulative"]
    assert res["b"] == pytest.approx(1.0, abs=0.05)
    # the default +0.2 correction only costs events on a sharply complete sample
    res02 = mg.gutenberg_richter(m)
    assert res02["mc"] == pytest.approx(0.7) and res02["b"] == pytest.approx(1.0, abs=0.05)
    # a-value: the GR line passes through the cumulative count at Mc
    assert 10 ** (res["a"] - res["b"] * res["mc"]) == pytest.approx(res["n"])


def test_rolloff_below_mc_recovers_mc():
    m = rolloff_sample(20_000, 0.3)
    assert abs(mg.mc_maximum_curvature(m, 0.1, correction=0.0)["mc"] - 0.3) <= 0.1 + 1e-9
    assert abs(mg.mc_goodness_of_fit(m, 0.1, 95)["mc"] - 0.3) <= 0.1 + 1e-9
    res = mg.gutenberg_richter(m, method="gft")
    assert res["mc_method"] == "gft95"
    assert abs(res["mc"] - 0.3) <= 0.1 + 1e-9
    assert res["b"] == pytest.approx(1.0, abs=0.05)
    # below Mc the fit is poor: the GFT residual grows as the candidate drops into the roll-off
    r = mg.gft_residuals(m).set_index("mc")["R"]
    assert r.loc[0.0] < r.loc[0.3]


def test_shi_bolt_sigma_is_of_order_b_over_sqrt_n():
    for n in (200, 2_000, 20_000):
        res = mg.b_value(gr_sample(n, 0.0, 0.01, seed=n), 0.0)
        assert res["b_sigma_aki"] == pytest.approx(res["b"] / math.sqrt(res["n"]))
        assert 0.7 < res["b_sigma"] / (res["b"] / math.sqrt(res["n"])) < 1.4


def test_aki_utsu_formula_with_bin_correction():
    m = np.array([1.0, 1.0, 1.1, 1.3, 1.6] * 20)
    res = mg.b_value(m, 1.0, bin_width=0.1, min_events=10)
    assert res["b"] == pytest.approx(math.log10(math.e) / (m.mean() - (1.0 - 0.05)))


def continuous_gr(n, b, m_min, dm, seed):
    """Gutenberg-Richter magnitudes with b-value ``b``, complete above ``m_min`` (continuous),
    reported at resolution ``dm`` (rounded to multiples of ``dm``, as a catalogue reports
    them) and rounded to 6 decimals."""
    rng = np.random.default_rng(seed)
    m = m_min + rng.exponential(1.0 / (b * BETA), n)
    return np.round(np.round(m / dm) * dm, 6)


@pytest.mark.parametrize("b,dm,mc", [(1.0, 0.01, 0.5), (1.3, 0.01, 0.2), (0.8, 0.1, 0.5), (1.0, 0.001, -0.7)])
def test_one_binning_line_through_the_cumulative_count_at_mc_and_b_recovered(b, dm, mc):
    """b is fitted on exactly the events the FMD counts at Mc (binned ML >= Mc) with the same
    bin correction, so the fitted G-R line meets the cumulative count at Mc (here within
    2 %; by construction exactly), and the known b is recovered. Before, b used
    ML >= Mc - dm/2 (0.005 for dm = 0.01) while the FMD used Mc - 0.05: the line sat ~11 %
    below the plotted point for b = 1."""
    m = continuous_gr(40_000, b, mc - 0.3, dm, seed=int(b * 100 + dm * 1000))
    res = mg.gutenberg_richter(m, method="fixed", mc=mc)
    fmd = mg.frequency_magnitude(m, 0.1)
    at_mc = fmd.loc[np.isclose(fmd["centre"], mc), "cumulative"].iloc[0]
    line = mg.gr_cumulative_counts(res["a"], res["b"], [mc])[0]
    assert line == pytest.approx(at_mc, rel=0.02)
    assert res["n"] == at_mc
    assert abs(res["b"] - b) <= max(3 * res["b_sigma"], 0.02), (res["b"], res["b_sigma"])
    # the goodness-of-fit test fits each candidate the same way: same b at the same Mc
    gft = mg.gft_residuals(m, 0.1).set_index("mc")
    row = gft.loc[gft.index[np.isclose(gft.index, mc)][0]]
    assert row["b"] == pytest.approx(res["b"]) and row["n"] == res["n"]


def test_mc_is_always_a_bin_centre():
    m = continuous_gr(5_000, 1.0, 0.0, 0.01, seed=3)
    res = mg.gutenberg_richter(m, method="fixed", mc=0.23)
    assert res["mc"] == 0.2 and res["mc_requested"] == 0.23
    assert res["n"] == mg.gutenberg_richter(m, method="fixed", mc=0.2)["n"]
    maxc = mg.mc_maximum_curvature(m, 0.1, correction=0.15)  # half-way: goes up
    assert maxc["mc"] == pytest.approx(round(maxc["mc_raw"] + 0.2, 10))


# --- small and empty selections never raise ------------------------------------------------------

@pytest.mark.parametrize("mags", [[], [np.nan, np.nan], [1.0, 1.2, 0.8]])
def test_small_selections_give_nan_with_a_reason(mags):
    for method in ("maxc", "gft", "gft95", "gft90"):
        res = mg.gutenberg_richter(mags, method=method)
        assert math.isnan(res["b"]) and res["reason"]


def test_fixed_mc_and_bad_method():
    m = gr_sample(5_000, 0.0, 0.01)
    assert mg.gutenberg_richter(m, method="fixed", mc=0.2)["mc"] == 0.2
    assert mg.gutenberg_richter(m, method="fixed")["reason"]
    with pytest.raises(ValueError):
        mg.gutenberg_richter(m, method="eyeball")


# --- ToC2ME (skipped without the data) -----------------------------------------------------------

def test_toc2me_histograms_and_completeness(toc2me_tables):
    events, mech = toc2me_tables["events"], toc2me_tables["mechanisms"]
    resolved = mech.loc[mech["quality"] == "A", "magnitude"]
    h = mg.magnitude_histograms({"all": events["magnitude"], "resolved": resolved})
    assert h["all"].sum() == 21_619 and h["resolved"].sum() == 2_519
    assert h["centre"].iloc[0] == -2.2 and h["centre"].iloc[-1] == 3.2  # ML -2.19 .. 3.21
    occupied = h.loc[h["resolved"] > 0, "centre"]
    assert (occupied.min(), occupied.max()) == (-1.4, 3.2)  # resolved ML -1.45 .. 3.21
    res = mg.gutenberg_richter(events["magnitude"])  # MAXC + 0.2
    assert res["mc"] == pytest.approx(-1.3) and res["dm"] == 0.01
    assert 0.9 < res["b"] < 1.3
    gft = mg.gutenberg_richter(events["magnitude"], method="gft")
    assert abs(gft["mc"] - res["mc"]) <= 0.3 + 1e-9
