"""Figure builders and numbers of the magnitudes page (no browser).

The demo scenario's truth (``truth_scenario``: b and Mc) is the reference for the b-value.
"""
from __future__ import annotations

import base64
import math

import numpy as np
import pandas as pd
import pytest

from components import magnitude_figures as mf
from components.data import DataProvider
from components.filters import Filters
from pipeline.analysis.magnitudes import magnitude_histograms
from queries import magnitudes as magq


def _decode(spec) -> np.ndarray:
    if isinstance(spec, dict):
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    return np.asarray(spec, dtype=float)


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


@pytest.fixture(scope="module")
def truth(demo_data_dir):
    path = demo_data_dir / "truth_scenario.parquet"
    if not path.exists():
        pytest.skip("demo tables without truth_scenario (pipeline.demo.scenario absent)")
    t = pd.read_parquet(path).set_index("name")["value_num"]
    return {"b": float(t["b_value"]), "mc": float(t["mc"])}


def _tolerance(res) -> float:
    """3 Shi-Bolt sigmas, at least 0.05 (the estimator's bias near a gradual roll-off)."""
    return max(3.0 * res["b_sigma"], 0.05)


# -- the demo truth ------------------------------------------------------------------------------
def test_default_method_recovers_demo_b_value_and_mc(provider, truth):
    mags = magq.event_magnitudes(provider, Filters())["magnitude"].to_numpy()
    a = mf.fmd_analysis(mags)  # the page default: maximum curvature + 0.2
    res = a["result"]
    assert res["mc_method"] == "maxc" and res["reason"] is None
    assert abs(res["b"] - truth["b"]) <= _tolerance(res), (res["b"], res["b_sigma"])
    assert abs(res["mc"] - truth["mc"]) <= 0.15 + 1e-9
    assert res["n"] >= 1000 and res["b_sigma"] < 0.05
    # the Shi-Bolt sigma is close to Aki's b/sqrt(n) for a G-R sample
    assert res["b_sigma"] == pytest.approx(res["b_sigma_aki"], rel=0.25)
    # a-value: the fitted line passes through the number of events used at Mc, which is the
    # plotted cumulative count there (one binning: ML >= Mc - bin_width/2 for both)
    assert 10 ** (res["a"] - res["b"] * res["mc"]) == pytest.approx(res["n"])
    assert res["n"] == int((mags >= res["mc"] - res["bin_width"] / 2 - 1e-9).sum())
    fmd = a["fmd"]
    assert res["n"] == int(fmd.loc[np.isclose(fmd["centre"], res["mc"]), "cumulative"].iloc[0])


def test_fixed_mc_at_the_truth_recovers_b(provider, truth):
    mags = magq.event_magnitudes(provider, Filters())["magnitude"].to_numpy()
    res = mf.fmd_analysis(mags, "fixed", fixed_mc=truth["mc"])["result"]
    assert res["mc"] == truth["mc"] and res["mc_method"] == "fixed"
    assert abs(res["b"] - truth["b"]) <= _tolerance(res)


def test_both_mc_estimates_are_always_reported(provider):
    mags = magq.event_magnitudes(provider, Filters())["magnitude"].to_numpy()
    for method in mf.METHODS:
        a = mf.fmd_analysis(mags, method, fixed_mc=-1.0)
        assert math.isfinite(a["maxc"]["mc"]) and math.isfinite(a["gft"]["mc"])
        assert a["gft"]["R"] >= a["gft"]["level"]
    a = mf.fmd_analysis(mags, "maxc", correction=0.0)
    assert a["result"]["mc"] == pytest.approx(a["maxc"]["mc_raw"])


def test_synthetic_gutenberg_richter_sample():
    rng = np.random.default_rng(3)
    b, mc = 1.3, 0.5
    # complete from the lower edge of Mc's 0.1 bin (the bin the FMD counts at Mc), reported at 0.01:
    # reported 0.45 (true 0.445..0.455) is the lowest value of bin 0.5, so the true edge is 0.445
    m = np.round(mc - 0.05 - 0.005 - np.log10(rng.random(20_000)) / b, 2)
    res = mf.fmd_analysis(m, "fixed", fixed_mc=mc)["result"]
    assert abs(res["b"] - b) <= 3 * res["b_sigma"]


# -- histograms and counts ------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["", "mmin=-0.5", "start=2016-11-10&end=2016-11-25", "group=g1"])
def test_histogram_counts_sum_to_the_matched_events(provider, query):
    f = Filters.from_query(query)
    df = magq.event_magnitudes(provider, f)
    counts = provider.counts(f).iloc[0]
    assert len(df) == int(counts["events"])
    mags, res = df["magnitude"].to_numpy(), df["resolved"].to_numpy()
    hist = magnitude_histograms({"all": mags, "resolved": mags[res]})
    n_finite = int(np.isfinite(mags).sum())
    assert int(hist["all"].sum()) == n_finite == int(counts["events"])  # demo: every event has ML
    # resolved = the matched events that have a mechanism (the export's mechanism_source)
    exported = provider.export_frame("events", f)
    want = int(exported["mechanism_source"].notna().sum())
    if not f.groups:  # then also: every event of the filtered mechanisms, once
        sql, params = provider.filtered_sql("mechanisms", f, "event_id")
        assert want == int(provider.query(f"SELECT count(DISTINCT event_id) FROM ({sql})", params).iloc[0, 0])
    assert int(hist["resolved"].sum()) == int(want)
    # the figure's bars are those counts, and the legend says the totals
    fig = mf.magnitude_time_figure(
        pd.DataFrame({"event_id": ["x"] * len(mags), "time": pd.Timestamp("2016-11-01", tz="UTC"),
                      "magnitude": mags, "resolved": res}), hist, {"all": len(mags), "resolved": int(res.sum())})
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert [sum(t["x"]) for t in bars] == [n_finite, int(want)]
    names = [t["name"] for t in fig["data"] if t.get("showlegend", True)]
    assert names == [f"All events ({len(mags):,})", f"Resolved mechanisms ({int(res.sum()):,})"]


def test_fmd_is_consistent(provider):
    mags = magq.event_magnitudes(provider, Filters())["magnitude"].to_numpy()
    a = mf.fmd_analysis(mags)
    fmd = a["fmd"]
    assert int(fmd["count"].sum()) == len(mags) == int(fmd["cumulative"].iloc[0])
    assert (np.diff(fmd["cumulative"]) <= 0).all()
    table = mf.fmd_table(a)
    assert list(table.columns[:6]) == ["bin_centre_ml", "bin_low_ml", "bin_high_ml", "count", "cumulative",
                                       "gr_fit_cumulative"]
    assert (table["bin_high_ml"] - table["bin_low_ml"]).round(6).eq(0.1).all()
    below = table["bin_centre_ml"] < a["result"]["mc"] - 1e-9
    assert table.loc[below, "gr_fit_cumulative"].isna().all()
    assert table.loc[~below, "gr_fit_cumulative"].notna().all()
    at_mc = table.loc[~below].iloc[0]
    assert at_mc["gr_fit_cumulative"] == pytest.approx(a["result"]["n"], abs=1e-3)
    fig = mf.fmd_figure(a)
    assert fig["layout"]["yaxis"]["type"] == "log"
    names = [t["name"] for t in fig["data"]]
    assert names[:2] == ["Cumulative N(≥M)", "Per 0.1-ML bin"] and names[2].startswith("G-R fit")
    assert 0 not in fig["data"][1]["y"]  # zero bins cannot go on a log axis
    assert any(s["x0"] == a["result"]["mc"] for s in fig["layout"]["shapes"])
    assert "b = " in fig["layout"]["annotations"][0]["text"]


def test_summary_items():
    rng = np.random.default_rng(1)
    m = np.round(-np.log10(rng.random(5000)), 2)
    a = mf.fmd_analysis(np.r_[m, [np.nan, np.nan]])
    items = dict(mf.summary_items(a))
    assert items["b-value"].count("±") == 1
    assert items["Mc used"].startswith(f"{a['result']['mc']:.2f} (MAXC")
    assert items["Without ML"].startswith("2 ")
    assert "Mc, goodness of fit" in items and "Mc, max. curvature" in items


def test_marker_area_grows_with_magnitude():
    ml = np.array([-3.5, -2.0, 0.0, 1.0, 3.2])
    d = mf._marker_size(ml)
    assert (np.diff(d) >= 0).all() and d[0] == 2.0
    # diameter^2 is proportional to the original area (ML + 3) * 8 above the floor
    area = (ml[2:] + 3) * 8
    assert np.allclose(d[2:] ** 2 / area, (4 / 3) ** 2)


def test_time_figure_draws_every_point_given():
    t = pd.date_range("2016-11-01", periods=6, freq="h", tz="UTC")
    pts = pd.DataFrame({"event_id": list("abcdef"), "time": t, "magnitude": [0.1, np.nan, -1.0, 2.0, 0.5, 0.0],
                        "resolved": [True, False, False, True, False, False]})
    hist = magnitude_histograms({"all": pts["magnitude"], "resolved": pts["magnitude"][pts["resolved"]]})
    fig = mf.magnitude_time_figure(pts, hist, {"all": 6, "resolved": 2, "drawn_all": 6})
    sc = [tr for tr in fig["data"] if tr["type"] == "scattergl"]
    assert len(_decode(sc[0]["y"])) == 5 and len(_decode(sc[1]["y"])) == 2
    x = _decode(sc[0]["x"])
    assert x[0] == pd.Timestamp("2016-11-01", tz="UTC").value / 1e6
    assert fig["layout"]["xaxis"]["type"] == "date"
    assert fig["layout"]["yaxis"].get("title", {}).get("text") == "Magnitude (ML)"
    # sampled scatter: the legend says so
    fig = mf.magnitude_time_figure(pts, hist, {"all": 600, "resolved": 2, "drawn_all": 6, "drawn_resolved": 2})
    assert fig["data"][0]["name"] == "All events (600, 6 drawn)"


# -- empty and tiny selections --------------------------------------------------------------------
def test_empty_selection_gives_messages_not_errors():
    a = mf.fmd_analysis(np.array([]))
    assert a["fmd"].empty and math.isnan(a["result"]["b"]) and a["result"]["reason"]
    fig = mf.fmd_figure(a)
    assert fig["data"] == [] and "No magnitude" in fig["layout"]["annotations"][0]["text"]
    fig = mf.magnitude_time_figure(pd.DataFrame(columns=["event_id", "time", "magnitude", "resolved"]),
                                   pd.DataFrame(), {"all": 0, "resolved": 0})
    assert fig["data"] == [] and "No event matches" in fig["layout"]["annotations"][0]["text"]
    items = dict(mf.summary_items(a))
    assert items["b-value"] == "–" and "Note" in items
    assert mf.fmd_table(a).empty


@pytest.mark.parametrize("mags", [[0.5], [0.5, 0.5, 0.5], list(np.linspace(0, 1, 20))])
def test_single_event_and_small_selections(mags):
    a = mf.fmd_analysis(np.array(mags))
    assert math.isnan(a["result"]["b"]) and "only" in a["result"]["reason"]
    fig = mf.fmd_figure(a)  # the FMD is still drawn, without a fit
    assert [t["name"] for t in fig["data"]] == ["Cumulative N(≥M)", "Per 0.1-ML bin"]
    assert dict(mf.summary_items(a))["b-value"] == "–"
    assert mf.fmd_table(a)["gr_fit_cumulative"].isna().all()


def test_bad_control_values_fall_back():
    m = np.round(-np.log10(np.random.default_rng(2).random(3000)), 2)
    a = mf.fmd_analysis(m, method="nonsense", correction=float("nan"))
    assert a["method"] == "maxc" and a["correction"] == 0.2
    a = mf.fmd_analysis(m, method="fixed", fixed_mc=None)
    assert math.isnan(a["result"]["b"]) and "needs mc" in a["result"]["reason"]


@pytest.mark.parametrize("method", ["maxc", "gft", "fixed"])
def test_plotted_fit_meets_the_plotted_cumulative_count_at_mc(method):
    """On a synthetic Gutenberg-Richter sample (b = 1.1, reported at 0.01 ML, a detection
    roll-off below ML 0.3), the figure's G-R line and its cumulative points agree at Mc
    within 2 %, and b is recovered: the FMD and the fit use one binning."""
    rng = np.random.default_rng(11)
    b, mc_true = 1.1, 0.3
    m = (mc_true - 1.5) + rng.exponential(1.0 / (b * math.log(10)), 200_000)
    keep = rng.random(m.size) < np.where(m >= mc_true - 0.05, 1.0, 10 ** (-2.5 * (mc_true - 0.05 - m)))
    mags = np.round(m[keep][:30_000], 2)
    a = mf.fmd_analysis(mags, method, fixed_mc=mc_true + 0.1 if method == "fixed" else None)
    fig = mf.fmd_figure(a)
    res = a["result"]
    cum = next(t for t in fig["data"] if t["name"].startswith("Cumulative"))
    fit = next(t for t in fig["data"] if t["name"].startswith("G-R fit"))
    x_mc = round(res["mc"], 2)
    plotted = cum["y"][cum["x"].index(x_mc)]
    line = fit["y"][fit["x"].index(x_mc)]
    assert line == pytest.approx(plotted, rel=0.02)
    if res["mc"] >= mc_true - 1e-9:  # b is recovered where the sample is complete (GFT may pick a lower Mc)
        assert abs(res["b"] - b) <= max(3 * res["b_sigma"], 0.05), (res["b"], res["b_sigma"])
    table = mf.fmd_table(a).set_index("bin_centre_ml")
    assert table.loc[x_mc, "gr_fit_cumulative"] == pytest.approx(table.loc[x_mc, "cumulative"], rel=0.02)
