"""The synthetic demo experiment: contract, determinism, and that its truth is recoverable."""
import re

import numpy as np
import pandas as pd
import pytest

from pipeline import geo, schema, tables
from pipeline.demo import scenario as demo
from pipeline.ingest import regions
from pipeline.mechanisms import focal


@pytest.fixture(scope="module")
def data():
    return demo.generate()


def _scenario(data) -> dict:
    sc = data["truth_scenario"]
    return dict(zip(sc["name"], sc["value"]))


def _num(data, name) -> float:
    sc = data["truth_scenario"].set_index("name")
    return float(sc.loc[name, "value_num"])


def _axial_diff(a, b):
    """Difference of two strike directions as lines, 0-90 deg."""
    d = np.abs(np.mod(np.asarray(a) - np.asarray(b), 180.0))
    return np.minimum(d, 180.0 - d)


# --- contract and determinism ----------------------------------------------------------------

def test_every_contract_table_validates(data):
    for name in schema.REQUIRED_TABLES:
        assert name in data, name
        tables.to_arrow(name, data[name])  # raises SchemaError on any violation
    assert len(data["rejects"]) == 0
    frame = data["frame"].iloc[0]
    assert frame["dataset"] == "demo"
    assert abs(frame["origin_lat"] - 54.33) < 0.01 and abs(frame["origin_lon"] + 117.24) < 0.01
    assert {"truth_scenario", "truth_events", "truth_mechanisms"} <= set(data)
    assert all(n in schema.TABLES or n.startswith("truth_") for n in data)


def test_all_tables_write_to_parquet(data, tmp_path):
    written = tables.write_tables(tmp_path, data)
    assert {p.stem for p in written} == set(data)
    back = tables.read_table(tmp_path, "events")
    assert back["event_id"].tolist() == data["events"]["event_id"].tolist()
    assert tables.read_table(tmp_path, "truth_scenario")["name"].is_unique


def test_same_seed_same_tables_other_seed_differs(data):
    again = demo.generate()
    assert demo.content_digest(again) == demo.content_digest(data)
    for name in data:
        pd.testing.assert_frame_equal(again[name], data[name], obj=name)
    assert demo.content_digest(demo.generate(seed=7)) != demo.content_digest(data)


# --- events ----------------------------------------------------------------------------------

def test_event_ids_are_unique_origin_times(data):
    ev = data["events"]
    assert ev["event_id"].is_unique
    assert ev["time"].is_monotonic_increasing
    formatted = ev["time"].dt.strftime("%Y%m%d%H%M%S.%f").str[:-3]
    assert (formatted == ev["event_id"]).all()
    assert all(re.fullmatch(r"2016\d{10}\.\d{3}", e) for e in ev["event_id"].head(50))


def test_counts_and_span(data):
    ev, sc = data["events"], _scenario(data)
    assert 8000 <= len(ev) <= 15000
    assert int(sc["n_events"]) == len(ev)
    days = (ev["time"].max() - ev["time"].min()) / pd.Timedelta(days=1)
    assert 33 <= days <= 37
    assert ev["time"].min() >= pd.Timestamp("2016-10-26", tz="UTC")
    assert ev["time"].max() <= pd.Timestamp("2016-12-01", tz="UTC")
    assert ev["depth_km"].between(2.7, 4.0).all()
    x, y = geo.to_local_km(ev["lat"], ev["lon"], demo.ORIGIN)
    assert np.allclose(x, ev["x_km"]) and np.allclose(y, ev["y_km"])


def test_b_value_by_aki_utsu_above_mc(data):
    ev = data["events"]
    b_true, mc = _num(data, "b_value"), _num(data, "mc")
    m = ev.loc[ev["magnitude"] >= mc - 1e-9, "magnitude"].to_numpy()
    b = np.log10(np.e) / (m.mean() - (mc - 0.005))  # Aki-Utsu with 0.01 binning
    assert abs(b - b_true) < 0.1
    # an incompleteness roll-off below Mc: the 0.1-bin histogram peaks within 0.5 below Mc
    counts = ev["magnitude"].round(1).value_counts()
    assert mc - 0.5 <= counts.idxmax() <= mc + 0.05
    assert ev["magnitude"].min() < mc - 0.5


# --- clusters and diffusion --------------------------------------------------------------------

@pytest.mark.parametrize("name", [c.name for c in demo.CLUSTERS])
def test_cluster_events_lie_inside_the_diffusion_envelope(data, name):
    ev, truth = data["events"], data["truth_events"]
    sc = _scenario(data)
    d_true = _num(data, f"{name}.D")
    sel = (truth["cluster"] == name).to_numpy()
    cl = ev[sel]
    origin = ev[ev["event_id"] == sc[f"{name}.origin_event_id"]].iloc[0]
    assert origin["time"] == cl["time"].min()
    assert origin["time"] == pd.Timestamp(sc[f"{name}.origin_time"])
    t = (cl["time"] - origin["time"]).dt.total_seconds().to_numpy()
    r3 = 1000 * np.sqrt((cl["x_km"] - origin["x_km"]) ** 2 + (cl["y_km"] - origin["y_km"]) ** 2
                        + (cl["depth_km"] - origin["depth_km"]) ** 2).to_numpy()
    envelope = np.sqrt(4 * np.pi * d_true * t)
    assert np.mean(r3 <= envelope + 1.0) == 1.0  # 1 m for coordinate rounding
    # fitting D as the envelope holding 90 % of events (epicentral distance, analyses 1.7)
    later = t > 0
    r_epi = 1000 * geo.great_circle_km(origin["lat"], origin["lon"], cl["lat"].to_numpy(), cl["lon"].to_numpy())
    d_fit = np.quantile(r_epi[later] ** 2 / (4 * np.pi * t[later]), 0.9)
    assert 0.6 * d_true < d_fit < d_true
    d_fit3 = np.quantile(r3[later] ** 2 / (4 * np.pi * t[later]), 0.9)
    assert d_fit3 == pytest.approx(0.9 * d_true, rel=0.06)  # r/envelope ~ sqrt(U)


def test_regions_select_exactly_the_cluster_events(data):
    ev, truth = data["events"], data["truth_events"]
    assert all(isinstance(r, regions.Region) and r.coords == "catalogue" for r in demo.REGIONS)
    assigned = regions.assign_clusters(ev, regions=demo.REGIONS)
    assert (assigned.fillna("-").to_numpy() == ev["cluster"].fillna("-").to_numpy()).all()
    assert (ev["cluster"].fillna("-").to_numpy() == truth["cluster"].fillna("-").to_numpy()).all()
    counts = ev["cluster"].value_counts()
    assert counts["NSw"] > 1000 and counts["SWe"] > 1000
    assert ev["cluster"].isna().sum() > 4000  # background


# --- mechanisms ------------------------------------------------------------------------------

def test_mechanisms_cover_larger_events(data):
    ev, mech = data["events"], data["mechanisms"]
    assert 0.13 <= len(mech) / len(ev) <= 0.17
    assert set(mech["source"]) == {"published"} and set(mech["quality"]) == set("ABCD")
    assert mech["event_id"].isin(ev["event_id"]).all()
    assert mech["magnitude"].median() > ev["magnitude"].median() + 0.3
    joined = mech.merge(ev, on="event_id", suffixes=("", "_ev"))
    for col in ("time", "lat", "lon", "magnitude", "x_km", "y_km"):
        assert (joined[col] == joined[f"{col}_ev"]).all(), col
    assert (joined["cluster"].fillna("-") == joined["cluster_ev"].fillna("-")).all()
    assert (mech["depth_km_skhash"] - mech["depth_km"]).mean() == pytest.approx(-0.125, abs=0.02)


def test_mechanisms_are_close_to_the_truth(data):
    mech, truth = data["mechanisms"], data["truth_mechanisms"]
    assert (truth["event_id"].to_numpy() == mech["event_id"].to_numpy()).all()
    k = focal.kagan_angle((mech["strike"], mech["dip"], mech["rake"]), (truth["strike"], truth["dip"], truth["rake"]))
    assert k.mean() < 15 and np.median(k) < 12
    assert np.allclose(k, truth["rotation_deg"], atol=0.5)  # rounding of the reported angles to 0.1 deg
    by_quality = pd.Series(k).groupby(truth["quality"].to_numpy()).mean()
    assert by_quality["A"] < by_quality["B"] < by_quality["C"] < by_quality["D"]


def test_each_cluster_clusters_around_its_fault_strike(data):
    mech, truth = data["mechanisms"], data["truth_mechanisms"]
    fault_plane = (truth["reported_plane"] == "fault").to_numpy()
    medians = {}
    for fault in ("NSw-main", "SWe-main"):
        sel = (truth["fault_id"] == fault).to_numpy() & fault_plane
        true_strike = _num(data, f"{fault}.strike")
        diff = _axial_diff(mech.loc[sel, "strike"], true_strike)
        assert sel.sum() > 100 and np.median(diff) < 6 and np.mean(diff < 20) > 0.9, fault
        medians[fault] = true_strike
    # the two faults are distinct families (N-S vs NNE) and land in different groups
    assert _axial_diff(medians["NSw-main"], medians["SWe-main"]) > 15
    groups = mech.groupby(truth["fault_id"].to_numpy())["group"].agg(lambda g: g.value_counts().idxmax())
    assert groups["NSw-main"] == "g1" and groups["SWe-main"] == "g2"


def test_low_dip_subset_is_oblique(data):
    mech, truth = data["mechanisms"], data["truth_mechanisms"]
    sel = ((truth["fault_id"] == "SWe-lowdip") & (truth["reported_plane"] == "fault")).to_numpy()
    assert sel.sum() >= 10
    assert 35 <= mech.loc[sel, "dip"].median() <= 45
    assert (mech.loc[sel, "zoback_class"] != "SS").mean() > 0.7
    assert (mech.loc[sel, "cluster"] == "SWe").all()
    # the demo's own subset definitions apply to its table
    assert all(isinstance(s, regions.Subset) for s in demo.SUBSETS)
    sub = next(s for s in demo.SUBSETS if s.name == "SWe-lowdip").mask(mech)
    assert sub.sum() >= 10 and (mech.loc[sub, "cluster"] == "SWe").all()


# --- wells, stages, injection, stations --------------------------------------------------------

def _distance_to_polyline(px, py, xs, ys):
    best = np.inf
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:]):
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((px - x0) * dx + (py - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        best = min(best, np.hypot(px - x0 - t * dx, py - y0 - t * dy))
    return best


def test_wells_stages_and_injection_are_consistent(data):
    wells, stages, inj = data["wells"], data["stages"], data["injection"]
    assert sorted(wells["well"].unique()) == ["A", "B", "C", "D"]
    for name, w in wells.groupby("well"):
        w = w.sort_values("vertex")
        assert w["y_km"].iloc[0] > w["y_km"].iloc[-1]  # toe (north) first
        assert 2.7 <= w["y_km"].iloc[0] - w["y_km"].iloc[-1] <= 3.3
        assert w["x_km"].max() - w["x_km"].min() < 0.1  # N-S
        st = stages[stages["well"] == name].sort_values("stage_no")
        assert 15 <= len(st) <= 30
        assert st["time"].is_monotonic_increasing and st["time"].is_unique
        assert st["y_km"].is_monotonic_decreasing  # toe -> heel
        for px, py in zip(st["x_km"], st["y_km"]):
            assert _distance_to_polyline(px, py, w["x_km"].to_numpy(), w["y_km"].to_numpy()) < 0.005
    assert stages["time"].between(pd.Timestamp("2016-10-01", tz="UTC"), pd.Timestamp("2016-12-01", tz="UTC")).all()
    assert (stages["time"].dt.minute == 0).all()  # hour resolution, as in ToC2ME
    # injection: one row per (well, day) with stages, rates 5-15 m3/min, volumes add up
    assert inj["well"].notna().all() and not inj.duplicated(["well", "date"]).any()
    assert inj["rate_m3_min"].between(5, 15).all()
    day = stages.assign(date=stages["time"].dt.date).groupby(["well", "date"])["volume_m3"].sum()
    got = inj.set_index(["well", "date"])["volume_m3"].sort_index()
    pd.testing.assert_series_equal(got, day.sort_index(), check_names=False)
    assert inj.groupby("date").size().max() >= 3  # several wells a day in late November


def test_stations(data):
    st, sc = data["stations"], _scenario(data)
    assert 60 <= len(st) <= 70 and set(st["network"]) == {"XD"}
    assert all(re.fullmatch(r"D\d{3}", s) for s in st["station"])
    assert 5.5 <= st["x_km"].max() - st["x_km"].min() <= 6.5
    assert 4.5 <= st["y_km"].max() - st["y_km"].min() <= 5.5
    assert 0 < st["reversed"].sum() < len(st)
    assert sc["reversed_stations"].split(",") == st.loc[st["reversed"], "station"].tolist()


def test_truth_scenario_lists_the_parameters(data):
    sc = data["truth_scenario"]
    assert list(sc.columns) == ["name", "value", "value_num", "unit", "description"]
    assert sc["name"].is_unique
    s = _scenario(data)
    assert float(s["b_value"]) == demo.B_VALUE and float(s["mc"]) == demo.MC
    for c in demo.CLUSTERS:
        assert float(s[f"{c.name}.D"]) == c.diffusivity_m2_s
        for key in ("origin_event_id", "origin_time", "origin_lat", "origin_lon", "origin_depth_km"):
            assert f"{c.name}.{key}" in s
        for f in c.faults:
            assert (float(s[f"{f.fault_id}.strike"]), float(s[f"{f.fault_id}.dip"]),
                    float(s[f"{f.fault_id}.rake"])) == (f.strike, f.dip, f.rake)
    assert _num(data, "NSw.D") != _num(data, "SWe.D")
    units = sc.set_index("name")["unit"]
    assert units["NSw.D"] == "m^2/s"
