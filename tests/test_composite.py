"""Composite focal mechanisms (pipeline.mechanisms.composite / invert.composite): real SKHASH
in its composite mode on polarities made from a known mechanism, and the ``composite``
command on the demo build."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.mechanisms import focal, invert, raytrace, skhash

ROOT = Path(__file__).resolve().parents[1]
TRUTH = (120.0, 55.0, -60.0)   # an oblique normal fault, unlike the demo's strike-slip faults


@pytest.fixture(scope="module")
def scenario_geometry():
    """Five demo events spread over the area (first, last and three between, by id) and the
    66 demo stations."""
    from pipeline.demo import scenario

    data = scenario.generate()
    ev = data["events"].sort_values("event_id").reset_index(drop=True)
    ev = ev.iloc[np.linspace(0, len(ev) - 1, 5).astype(int)].reset_index(drop=True)
    return ev, data["stations"]


def _synthetic_polarities(events, stations, n_per_event=12, seed=5, min_amplitude=0.1):
    """Polarities of ``events`` (all with mechanism TRUTH) at ``n_per_event`` random stations
    each: takeoff and azimuth of each (event, station) ray from pipeline's ray tracing in the
    demo model, polarity = sign of the P radiation. Rays closer to a nodal plane than
    ``min_amplitude`` (of the maximum 1) are left out: SKHASH interpolates its takeoffs from a
    table, a degree or so off the exact ones, which may flip a ray right on a nodal plane."""
    geo = raytrace.pair_geometry(events, stations, skhash.DEMO_VELOCITY_MODEL, takeoff_from="down")
    amp = focal.p_radiation(*TRUTH, focal.ray_vector(geo["takeoff_deg"], geo["azimuth_deg"], "down"))
    geo = geo.assign(polarity=np.sign(amp).astype(int), amplitude=amp)
    rng = np.random.default_rng(seed)
    parts = [g.iloc[np.sort(rng.choice(len(g), n_per_event, replace=False))] for _, g in geo.groupby("event_id")]
    geo = pd.concat(parts, ignore_index=True)
    geo = geo[np.abs(geo["amplitude"]) >= min_amplitude].reset_index(drop=True)
    pol = geo[["event_id", "network", "station", "polarity"]].assign(method="manual", snr=np.nan)
    return pol, geo


def test_composite_recovers_the_shared_mechanism_with_per_event_ray_geometry(scenario_geometry):
    events, stations = scenario_geometry
    pol, geo = _synthetic_polarities(events, stations)
    res = invert.composite(events, pol, stations, skhash.DEMO_VELOCITY_MODEL, timeout=120)
    m = res["mechanism"]
    assert m is not None, res["reason"]
    assert focal.kagan_angle((m["strike"], m["dip"], m["rake"]), TRUTH) < 15.0
    assert m["n_events"] == events["event_id"].nunique() == 5
    assert m["n_polarities"] == len(pol)
    assert m["n_polarities"] > pol.groupby("event_id").size().max()
    assert m["quality"] in "ABCD" and len(res["acceptable_planes"]) > 0

    # every ray SKHASH used has the azimuth and takeoff of ITS OWN event's location
    rays = res["rays"].merge(geo, on=["event_id", "network", "station"], suffixes=("", "_exact"))
    assert len(rays) == len(pol)
    daz = np.abs((rays["azimuth_deg"] - rays["azimuth_deg_exact"] + 180.0) % 360.0 - 180.0)
    assert daz.max() < 0.5                       # SKHASH's flat-earth azimuths vs ours
    assert np.abs(rays["takeoff_deg"] - rays["takeoff_deg_exact"]).max() < 3.0   # its table interpolation
    assert (rays["polarity"] == rays["polarity_exact"]).all()
    # ... and not that of one common location: from the events' mean location the same
    # stations are seen at clearly other azimuths
    mean = pd.DataFrame({"event_id": ["mean"], "lat": [events["lat"].mean()], "lon": [events["lon"].mean()],
                         "depth_km": [events["depth_km"].mean()]})
    common = raytrace.pair_geometry(mean, stations, skhash.DEMO_VELOCITY_MODEL).drop(columns="event_id")
    rc = rays.merge(common, on=["network", "station"], suffixes=("", "_common"))
    dcommon = np.abs((rc["azimuth_deg"] - rc["azimuth_deg_common"] + 180.0) % 360.0 - 180.0)
    assert dcommon.max() > 10.0


def test_composite_with_too_few_polarities_is_unsolved_without_running_skhash(scenario_geometry):
    events, stations = scenario_geometry
    pol, _ = _synthetic_polarities(events.iloc[:1], stations, n_per_event=12)
    pol = pol.iloc[:5]
    res = invert.composite(events.iloc[:1], pol, stations, skhash.DEMO_VELOCITY_MODEL)
    assert res["mechanism"] is None and res["engine"] is None
    assert "only 5 usable polarities" in res["reason"]


def test_composite_respects_its_timeout(scenario_geometry):
    events, stations = scenario_geometry
    pol, _ = _synthetic_polarities(events, stations)
    with pytest.raises(skhash.SkhashTimeout):
        invert.composite(events, pol, stations, skhash.DEMO_VELOCITY_MODEL, timeout=0.05)


def test_composite_id_must_not_be_a_member(scenario_geometry):
    events, stations = scenario_geometry
    pol, _ = _synthetic_polarities(events, stations)
    with pytest.raises(ValueError, match="also a member"):
        invert.composite(events, pol, stations, skhash.DEMO_VELOCITY_MODEL,
                         composite_id=str(events["event_id"].iloc[0]))


# -- the command on the demo build ------------------------------------------------------------
def _run(*args):
    return subprocess.run([sys.executable, "-m", "pipeline", "composite", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def _expected_polarities(data_dir, event_filter):
    """Per event: the polarities invert.select_polarities keeps (the batch choice), for the
    demo events ``event_filter`` keeps - recomputed from the tables."""
    from pipeline import store, tables
    base = store.resolve(Path(data_dir))
    ev = tables.read_table(base, "events")
    pol = tables.read_table(base, "polarities")
    ev = ev[event_filter(ev)]
    chosen = invert.select_polarities(pol[pol["event_id"].isin(ev["event_id"])], "auto")
    return chosen.groupby("event_id").size()


def test_command_pools_the_selected_events(demo_data_dir):
    out = _run("--data-dir", str(demo_data_dir), "--cluster", "NSw")
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"strike", "dip", "rake", "quality", "n_events", "n_polarities"} <= set(res)
    per_event = _expected_polarities(demo_data_dir, lambda e: e["cluster"] == "NSw")
    assert len(per_event) >= 2
    assert res["n_events"] == len(per_event) == res["n_selected_events"]
    assert res["n_polarities"] == int(per_event.sum())
    assert res["n_polarities"] > int(per_event.max())   # more than any single event
    assert 0 <= res["strike"] < 360 and 0 <= res["dip"] <= 90 and -180 < res["rake"] <= 180
    # the NSw fault of the scenario is the near-vertical N-S strike-slip 181/85/180
    assert focal.kagan_angle((res["strike"], res["dip"], res["rake"]), (181.0, 85.0, 180.0)) < 20.0

    capped = _run("--data-dir", str(demo_data_dir), "--cluster", "NSw", "--max-events", "3")
    assert capped.returncode == 0, capped.stderr
    res3 = json.loads(capped.stdout.strip().splitlines()[-1])
    assert res3["n_events"] == 3 and res3["n_selected_events"] == len(per_event)
    assert res3["n_polarities"] < res["n_polarities"]


def test_command_refuses_an_empty_selection(demo_data_dir):
    out = _run("--data-dir", str(demo_data_dir), "--start", "2030-01-01")
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1
    assert "no event of this selection has polarities" in out.stderr
    bad = _run("--data-dir", str(demo_data_dir), "--max-events", "0")
    assert bad.returncode == 2 and "--max-events" in bad.stderr


def test_one_trial_gives_what_thirty_give_without_location_uncertainty(scenario_geometry):
    """The composite's nmc=1 default: with exact locations SKHASH's trials are identical."""
    events, stations = scenario_geometry
    pol, _ = _synthetic_polarities(events, stations)
    one = invert.composite(events, pol, stations, skhash.DEMO_VELOCITY_MODEL, timeout=120)
    thirty = invert.composite(events, pol, stations, skhash.DEMO_VELOCITY_MODEL, settings={"nmc": 30}, timeout=120)
    keys = ("strike", "dip", "rake", "quality", "fault_plane_uncertainty", "prob_mech", "n_polarities")
    assert {k: one["mechanism"][k] for k in keys} == {k: thirty["mechanism"][k] for k in keys}
    pd.testing.assert_frame_equal(one["acceptable_planes"], thirty["acceptable_planes"])


def test_pure_python_grid_search_too_large_is_refused_before_running(scenario_geometry, monkeypatch):
    events, stations = scenario_geometry
    pol, _ = _synthetic_polarities(events, stations)
    monkeypatch.setattr(invert, "PYTHON_MEMORY_LIMIT", invert.PYTHON_BYTES_PER_RAY_TRIAL * (len(pol) - 1))
    with pytest.raises(invert.CompositeTooLarge, match="pool fewer events"):
        invert.composite(events, pol, stations, skhash.DEMO_VELOCITY_MODEL, use_fortran=False)


def test_an_event_with_only_reviewed_picks_joins_the_composite(demo_data_dir, tmp_path):
    """An event with no batch polarity row but reviewed picks in the dashboard is pooled
    with its reviewed picks (before, the selection only took events with batch rows). The
    picks copy another NSw event's chosen polarities (same fault, nearby): the pooled count
    grows by exactly the reviewed picks, the event count by one."""
    from components.data import DataProvider
    from components.filters import Filters
    from pipeline import store, tables
    from pipeline.mechanisms.composite import composite_of_selection
    from pipeline.review.reviews import manual_polarities

    base = store.resolve(Path(demo_data_dir))
    ev = tables.read_table(base, "events")
    pol = tables.read_table(base, "polarities")
    nsw = ev[ev["cluster"] == "NSw"]
    bare = nsw[~nsw["event_id"].isin(pol["event_id"])].sort_values("magnitude", ascending=False)
    donor = invert.select_polarities(pol[pol["event_id"].isin(nsw["event_id"])], "auto")
    donor = donor[donor["event_id"] == donor["event_id"].iloc[0]]
    assert len(bare) and len(donor) >= 6
    target = str(bare["event_id"].iloc[0])
    reviews = manual_polarities(tmp_path)  # no database there: the empty frame, its columns
    rows = pd.DataFrame({"event_id": target, "network": donor["network"].to_numpy(),
                         "station": donor["station"].to_numpy(), "polarity": donor["polarity"].to_numpy()})
    reviews = pd.concat([reviews, rows.assign(method="manual", p_source="review", reviewer="t")], ignore_index=True)
    reviews["polarity"] = reviews["polarity"].astype("int8")

    provider = DataProvider(demo_data_dir)
    f = Filters.from_query("cluster=NSw")
    empty = manual_polarities(tmp_path)
    without = composite_of_selection(provider, f, max_events=10_000, reviews=empty)
    with_reviews = composite_of_selection(provider, f, max_events=10_000, reviews=reviews)
    assert target not in without["event_ids"] and target in with_reviews["event_ids"]
    assert with_reviews["n_selected"] == without["n_selected"] + 1
    m0, m1 = without["mechanism"], with_reviews["mechanism"]
    assert m1["n_events"] == m0["n_events"] + 1
    assert m1["n_polarities"] == m0["n_polarities"] + len(donor)
