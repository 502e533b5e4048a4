"""Diffusion figure builders and the fit interval (no browser).

* ToC2ME, SWe-lowdip subset, the original's distance and origin: 21 % / 89 % / 100 % of the
  142 events inside D = 0.01 / 0.0316 / 0.1 m2/s, as the figure states.
* Demo scenario: the events fill the front evenly (r = sqrt(4 pi D t) sqrt(u)), so the
  envelope of all events (q = 100 %) recovers the true D within its interval, while a
  90 % envelope gives ~0.9 D (and its interval, honestly, does not contain D).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components import diffusion_figures as dff
from pipeline.analysis import diffusion as dif


@pytest.fixture(scope="module")
def demo():
    from pipeline.demo import scenario as demo

    return demo.generate(seed=20161104)


def _truth(demo, cluster: str) -> float:
    ts = demo["truth_scenario"]
    return float(ts.loc[ts["name"] == f"{cluster}.D", "value_num"].iloc[0])


# -- ToC2ME reference numbers -----------------------------------------------------------------
def test_toc2me_swe_lowdip_shares_on_the_figure(toc2me_tables):
    from pipeline.ingest.regions import subset_mask

    mech = toc2me_tables["mechanisms"]
    sub = mech[subset_mask(mech, "SWe-lowdip")]
    assert len(sub) == 142
    dt = dif.distance_time(sub)  # origin = earliest event, signed epicentral distance (the original)
    assert dt.attrs["origin"]["event_id"] == "20161121000100.270"
    fit = dff.fit_envelope(dt, q=0.9)
    fig = dff.distance_time_figure(dt, fit, method="signed_epicentral")
    shares = fig["layout"]["meta"]["shares"]
    assert {k: round(v, 2) for k, v in shares.items()} == {"0.01": 0.21, "0.0316": 0.89, "0.1": 1.0}
    labels = [a["text"] for a in fig["layout"]["annotations"]]
    assert labels == ["D = 0.01 · 21%", "D = 0.0316 · 89%", "D = 0.1 · 100%"]
    table = dff.shares(dt, dff.REFERENCE_D)
    assert table["n_inside"].tolist() == [30, 127, 142]
    # the fitted 90 % envelope lands next to the original's eyeballed 0.0316
    assert fit["D"] == pytest.approx(0.0318, abs=5e-4)
    assert fit["lo"] < 0.0316 < fit["hi"] and fit["interval"] == "bootstrap"
    assert fit["share"] >= 0.9 and fit["n"] == 142
    # the SWe-run angles describe the SWe subsets
    assert dff.angle_columns(sub, "toc2me", "SWe-lowdip") == ("strike_swe", "dip_swe", "rake_swe")
    assert dff.angle_columns(sub, "toc2me", "NSw") == ("strike", "dip", "rake")


# -- demo truth -------------------------------------------------------------------------------
@pytest.mark.parametrize("cluster", ["NSw", "SWe"])
def test_demo_envelope_of_all_events_recovers_the_true_D(demo, cluster):
    D_true = _truth(demo, cluster)
    ev = demo["events"]
    ev = ev[ev["cluster"] == cluster]
    for method in ("hypocentral_3d", "signed_epicentral"):
        dt = dif.distance_time(ev, method=method)
        fit = dff.fit_envelope(dt, q=1.0)
        assert fit["is_max"] and fit["interval"] == "bootstrap + Robson-Whitlock"
        assert fit["lo"] <= D_true <= fit["hi"], (method, fit)
        assert fit["D"] == pytest.approx(D_true, rel=0.01)
    # a 90 % envelope estimates the 90 % quantile of the critical D, ~0.9 D: not D itself
    dt = dif.distance_time(ev, method="hypocentral_3d")
    fit90 = dff.fit_envelope(dt, q=0.9)
    assert fit90["D"] == pytest.approx(0.9 * D_true, rel=0.03)
    assert fit90["hi"] < D_true


def test_robson_whitlock_and_bootstrap_size():
    assert dff.robson_whitlock_upper([1.0, 2.0, 3.0, 3.5]) == pytest.approx(3.5 + 0.5 * 39)
    assert np.isnan(dff.robson_whitlock_upper([1.0]))
    assert dff.bootstrap_size(142) == 1000
    assert dff.bootstrap_size(2600) == dff.MAX_BOOT_CELLS // 2600
    assert dff.bootstrap_size(10**6) == dff.MIN_BOOT
    # the bootstrap alone could never exceed the sample maximum at q = 1
    rng = np.random.default_rng(1)
    t = rng.uniform(3600, 86400, 200)
    r = np.sqrt(4 * np.pi * 0.05 * t) * np.sqrt(rng.uniform(0, 1, 200))
    plain = dif.bootstrap_diffusivity(t, r, q=1.0)
    assert plain["hi"] == pytest.approx(plain["D"])
    fit = dff.fit_envelope(pd.DataFrame({"t_s": t, "distance_m": r}), q=1.0)
    assert fit["hi"] > fit["D"] and fit["lo"] == pytest.approx(plain["lo"])


def test_fit_empty_and_single_event_states():
    empty = dff.fit_envelope(pd.DataFrame({"t_s": [], "distance_m": []}))
    assert np.isnan(empty["D"]) and empty["reason"] == "no events at or after the origin"
    one = dff.fit_envelope(pd.DataFrame({"t_s": [0.0], "distance_m": [0.0]}))
    assert np.isnan(one["D"]) and "fewer than two" in one["reason"]
    before = dff.fit_envelope(pd.DataFrame({"t_s": [-5.0, 0.0, 10.0, 20.0], "distance_m": [3.0, 0.0, 5.0, 9.0]}))
    assert before["n_before"] == 1 and before["n"] == 3 and np.isfinite(before["D"])
    fig = dff.distance_time_figure(pd.DataFrame(columns=["event_id", "time", "t_s", "t_h", "distance_m",
                                                         "critical_D", "is_origin"]), empty)
    assert fig["layout"]["annotations"][0]["text"] == "No event to plot"


def test_distance_time_figure_traces(demo):
    ev = demo["events"]
    dt = dif.distance_time(ev[ev["cluster"] == "SWe"], method="hypocentral_3d")
    fit = dff.fit_envelope(dt, q=0.9)
    fig = dff.distance_time_figure(dt, fit, method="hypocentral_3d", compare_D=0.05, t_cursor_h=10.0)
    meta = fig["layout"]["meta"]
    assert meta["signed"] is False and fig["layout"]["yaxis"]["range"][0] == 0
    comp = fig["data"][meta["compare"]]
    assert comp["name"].startswith("compare: D = 0.05") and None not in comp["x"]
    assert comp["y"][-1] == pytest.approx(np.sqrt(4 * np.pi * 0.05 * meta["t_max_h"] * 3600), rel=1e-3)
    inside = next(t for t in fig["data"] if t.get("name", "").startswith("inside"))
    outside = next(t for t in fig["data"] if t.get("name", "").startswith("outside"))
    assert len(inside["x"]) + len(outside["x"]) == len(dt)
    assert len(inside["x"]) / len(dt) == pytest.approx(fit["share"])
    assert fig["layout"]["shapes"][meta["cursor"]]["x0"] == 10.0
    signed = dff.distance_time_figure(dt, fit, method="signed_epicentral")
    comp = signed["data"][signed["layout"]["meta"]["compare"]]
    assert None in comp["x"]  # both branches
    assert signed["layout"]["yaxis"]["range"][0] < 0


def test_activation_map_shows_only_mechanisms_up_to_t(demo):
    ev = demo["events"]
    mech = demo["mechanisms"]
    sel = ev[ev["cluster"] == "SWe"]
    dt = dif.distance_time(sel)
    sel = sel.merge(dt[["event_id", "t_h"]], on="event_id")
    m = mech[mech["cluster"] == "SWe"]
    t = dt["time"].iloc[len(dt) // 3]
    frame = dif.activation_frame(sel, m, t, recent_s=6 * 3600)
    origin = {**dt.attrs["origin"], "x_km": float(sel["x_km"].iloc[0]), "y_km": float(sel["y_km"].iloc[0])}
    fig = dff.activation_map_figure(frame, sel, origin, front_D=0.02, t_s=(t - dt["time"].iloc[0]).total_seconds(),
                                    extent=dff.map_extent(sel))
    hover = next(tr for tr in fig["data"] if tr.get("name") == "mechanism")
    n_up_to_t = int((pd.to_datetime(m["time"], utc=True) <= t).sum())
    assert 0 < n_up_to_t < len(m)
    assert len(hover["customdata"]) == n_up_to_t == frame["n_mechanisms"]
    active = next(tr for tr in fig["data"] if tr.get("name") == "set, up to t")
    assert len(active["x"]) == frame["n_active"]
    front = next(tr for tr in fig["data"] if str(tr.get("name", "")).startswith("front"))
    r = np.hypot(np.asarray(front["x"]) - origin["x_km"], np.asarray(front["y"]) - origin["y_km"])
    want = np.sqrt(4 * np.pi * 0.02 * (t - dt["time"].iloc[0]).total_seconds()) / 1000
    assert np.allclose(r, want, rtol=1e-3)
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x"
    # before the first mechanism: no balls at all
    early = dif.activation_frame(sel, m, dt["time"].iloc[0] - pd.Timedelta(hours=1))
    fig0 = dff.activation_map_figure(early, sel, origin)
    assert not any(tr.get("name") == "mechanism" for tr in fig0["data"])
    assert dff.activation_map_figure(None, None, None)["layout"]["annotations"][0]["text"] == "No event to show"


def test_csv_table(demo):
    ev = demo["events"]
    dt = dif.distance_time(ev[ev["cluster"] == "NSw"])
    fit = dff.fit_envelope(dt, q=0.9)
    csv = dff.csv_table(dt, fit["D"])
    assert list(csv.columns) == dff.CSV_COLUMNS
    assert len(csv) == len(dt) and csv["time"].str.endswith("Z").all()
    assert csv["inside"].mean() == pytest.approx(fit["share"])
    assert (csv["t_hours"] >= 0).all() and csv["event_id"].tolist() == dt["event_id"].tolist()
    assert list(dff.csv_table(dt.iloc[0:0], 0.1).columns) == dff.CSV_COLUMNS


def test_subsets_for_each_dataset():
    assert [s.name for s in dff.subsets_for("toc2me")] == ["NSw", "SWe-AB", "SWe-dip45", "SWe-lowdip"]
    assert "SWe-lowdip" in [s.name for s in dff.subsets_for("demo")]
    assert dff.subsets_for("synthetic-test") == ()
    assert dff.format_D(0.031802) == "0.0318" and dff.format_D(float("nan")) == "–"
    assert dff.format_D(float("inf")) == "∞"
