"""pipeline.mechanisms.skhash against the real SKHASH 1.1.5.

The key test reproduces the published 3-event ToC2ME SKHASH run
(``<toc2me>/skhash_demo/OUT``) from its ``IN/`` files. Tests that need SKHASH skip when it is
not installed; tests that need the ToC2ME data skip when it is absent.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skhash_demo
from pipeline import geo
from pipeline.mechanisms import focal
from pipeline.mechanisms.skhash import (
    DEFAULT_SETTINGS,
    DEMO_VELOCITY_MODEL,
    MECHANISM_COLUMNS,
    SkhashError,
    fortran_available,
    read_velocity_model,
    run_skhash,
    run_skhash_parallel,
)
from skhash_demo import DEMO_IDS

needs_skhash = pytest.mark.skipif(importlib.util.find_spec("SKHASH") is None,
                                  reason="SKHASH (pip package skhash) is not installed")

# Numeric outfile1 columns that do not depend on the machine or SKHASH version formatting
OUT_COLUMNS = {
    "strike": "strike", "dip": "dip", "rake": "rake", "quality": "quality",
    "fault_plane_uncertainty": "fault_plane_uncertainty",
    "aux_plane_uncertainty": "aux_plane_uncertainty", "num_p_pol": "n_polarities",
    "num_sp_ratios": "n_sp_ratios", "polarity_misfit": "polarity_misfit",
    "prob_mech": "prob_mech", "sta_distribution_ratio": "sta_distribution_ratio",
    "sp_misfit": "sp_misfit", "mult_solution_flag": "mult_solution_flag",
}


@pytest.fixture(scope="module")
def toc2me_root(request) -> Path:
    """The shared ToC2ME folder: conftest's ``toc2me_dir`` if there is one, else
    $TOC2ME_DIR, else ../shared/toc2me next to the repository."""
    try:
        return Path(request.getfixturevalue("toc2me_dir"))
    except pytest.FixtureLookupError:
        pass
    return Path(os.environ.get("TOC2ME_DIR",
                               Path(__file__).resolve().parents[2] / "shared" / "toc2me"))


@pytest.fixture(scope="module")
def demo_dir(toc2me_root) -> Path:
    return skhash_demo.demo_dir(toc2me_root)


@pytest.fixture(scope="module")
def demo_inputs(demo_dir):
    """The demo's IN/ files as the wrapper's DataFrame inputs."""
    return skhash_demo.demo_inputs(demo_dir)


@pytest.fixture(scope="module")
def demo_result(demo_inputs):
    if importlib.util.find_spec("SKHASH") is None:
        pytest.skip("SKHASH (pip package skhash) is not installed")
    ev, pol, st, vz = demo_inputs
    return run_skhash(ev, pol, st, vz, acceptable_planes=True)


# ----------------------------------------------------------------------------- demo

@needs_skhash
def test_reproduces_published_demo_out(demo_result, demo_dir):
    ref = pd.read_csv(demo_dir / "OUT" / "out.csv")
    ref["event_id"] = ref["event_id"].map(DEMO_IDS)
    ref = ref.sort_values("event_id").reset_index(drop=True)
    got = demo_result.preferred
    assert demo_result.unsolved.empty
    assert list(got["event_id"]) == list(ref["event_id"])
    assert set(demo_result.mechanisms["solution_rank"]) == {0}
    for src, dst in OUT_COLUMNS.items():
        a, b = ref[src], got[dst]
        if src == "mult_solution_flag":
            a = a.astype(str).str.lower().eq("true")
        pd.testing.assert_series_equal(a.reset_index(drop=True), b.reset_index(drop=True),
                                       check_names=False, check_dtype=False, obj=src)
    # the published numbers (docs/analyses.md section 1.11)
    sdr = got[["strike", "dip", "rake"]].to_numpy().tolist()
    assert sdr == [[25.6, 88.7, 177.8], [23.6, 79.4, 174.2], [6.1, 77.6, 168.3]]
    assert list(got["quality"]) == ["A", "A", "A"]
    # auxiliary plane consistent with the fault plane
    k = focal.kagan_angle((got["strike"], got["dip"], got["rake"]),
                          (got["strike2"], got["dip2"], got["rake2"]))
    assert np.all(k < 0.5)


@needs_skhash
def test_demo_polinfo_matches_published(demo_result, demo_dir):
    ref = pd.read_csv(demo_dir / "OUT" / "out_polinfo.csv")
    ref["event_id"] = ref["event_id"].map(DEMO_IDS)
    ref["station"] = ref["sta_code"].str.split(".").str[0]
    ref = ref.sort_values(["event_id", "station"]).reset_index(drop=True)
    got = demo_result.polinfo
    assert len(got) == len(ref) == 153
    assert list(got["network"].unique()) == ["5B"]
    assert list(zip(got["event_id"], got["station"])) == list(zip(ref["event_id"], ref["station"]))
    for c in ("takeoff", "azimuth", "sr_dist_km", "pol_agreement"):
        np.testing.assert_array_equal(got[c].to_numpy(float), ref[c].to_numpy(float), err_msg=c)
    np.testing.assert_array_equal(got["polarity"].to_numpy(), np.sign(ref["p_polarity"]).astype(int))
    # 9 of 153 polarities disagree: 1 in event 1, 8 in event 3 (toc2me README section 6)
    bad = got[got["pol_agreement"] == 0].groupby("event_id").size().to_dict()
    assert bad == {DEMO_IDS[1]: 1, DEMO_IDS[3]: 8}


@needs_skhash
def test_demo_acceptable_planes(demo_result):
    acc = demo_result.acceptable_planes
    assert acc is not None
    assert set(acc["event_id"]) == set(DEMO_IDS.values())
    assert (acc.groupby("event_id").size() <= DEFAULT_SETTINGS["maxout"]).all()
    # every acceptable plane is a unit normal + unit slip, perpendicular
    n = acc[["norm_n", "norm_e", "norm_z"]].to_numpy()
    s = acc[["slip_n", "slip_e", "slip_z"]].to_numpy()
    np.testing.assert_allclose(np.linalg.norm(n, axis=1), 1, atol=1e-3)
    np.testing.assert_allclose(np.sum(n * s, axis=1), 0, atol=1e-3)
    # the preferred solution lies among them (within the 5 deg grid / averaging)
    for eid, row in demo_result.preferred.set_index("event_id").iterrows():
        a = acc[acc["event_id"] == eid]
        k = focal.kagan_angle((a["strike"].to_numpy(), a["dip"].to_numpy(), a["rake"].to_numpy()),
                              (row["strike"], row["dip"], row["rake"]))
        assert k.min() < 10


@needs_skhash
def test_id_mapping_survives_shuffled_input(demo_inputs, demo_result):
    ev, pol, st, vz = demo_inputs
    shuffled = run_skhash(ev.iloc[[2, 0, 1]], pol.sample(frac=1, random_state=3),
                          st.sample(frac=1, random_state=4), vz, acceptable_planes=True,
                          use_fortran=demo_result.engine == "fortran")
    pd.testing.assert_frame_equal(shuffled.mechanisms, demo_result.mechanisms)
    pd.testing.assert_frame_equal(shuffled.polinfo, demo_result.polinfo)
    pd.testing.assert_frame_equal(shuffled.acceptable_planes, demo_result.acceptable_planes)
    # SKHASH got ids by sorted event_id, mapped back through the explicit dict
    assert shuffled.id_map == {DEMO_IDS[1]: 1, DEMO_IDS[2]: 2, DEMO_IDS[3]: 3}


# ----------------------------------------------------------------------------- engines

@needs_skhash
def test_engine_flag_and_engines_identical(demo_inputs, demo_result):
    ev, pol, st, vz = demo_inputs
    have_fortran = fortran_available()
    assert demo_result.engine == ("fortran" if have_fortran else "python")
    py = run_skhash(ev, pol, st, vz, use_fortran=False, acceptable_planes=True)
    assert py.engine == "python"
    if not have_fortran:
        with pytest.raises(SkhashError, match="Fortran"):
            run_skhash(ev, pol, st, vz, use_fortran=True)
        return
    fo = run_skhash(ev, pol, st, vz, use_fortran=True, acceptable_planes=True)
    assert fo.engine == "fortran"
    pd.testing.assert_frame_equal(py.mechanisms, fo.mechanisms)
    pd.testing.assert_frame_equal(py.polinfo, fo.polinfo)
    # fewer than maxout acceptable planes: the same planes in the same order from both
    # grid searches (vectors: Fortran single precision, last digit may differ)
    pd.testing.assert_frame_equal(py.acceptable_planes, fo.acceptable_planes,
                                  check_exact=False, atol=2e-4, rtol=0)


@needs_skhash
def test_deterministic_and_independent_of_chunking(demo_inputs):
    """With location uncertainties and maxout=10 SKHASH draws random numbers (depth
    perturbations, random subset of acceptable planes); the per-event re-seeding makes a
    run reproducible and each event independent of which events share its process."""
    ev, pol, st, vz = demo_inputs
    ev = ev.assign(vert_uncert_km=0.5, horz_uncert_km=0.05)
    s = {"maxout": 10}
    one = run_skhash(ev, pol, st, vz, s)
    again = run_skhash(ev, pol, st, vz, s)
    pd.testing.assert_frame_equal(one.mechanisms, again.mechanisms)
    pd.testing.assert_frame_equal(one.polinfo, again.polinfo)
    par = run_skhash_parallel(ev, pol, st, vz, s, workers=2, chunk_size=1)
    assert par.engine == one.engine
    pd.testing.assert_frame_equal(par.mechanisms, one.mechanisms)
    pd.testing.assert_frame_equal(par.polinfo, one.polinfo)
    assert par.unsolved.empty


# ----------------------------------------------------------------------------- synthetic

def _synthetic(sdr=(40.0, 80.0, 170.0), depth_km=3.0, n=24, origin=(54.0, -117.0),
               event_id="20161201000000.000"):
    """One event under a ring of stations with all-digit, zero-padded codes and polarities
    from a known mechanism (straight rays)."""
    az = np.arange(n) * 360.0 / n
    dist = np.array([1.0, 3.0, 6.0])[np.arange(n) % 3]
    x, y = dist * np.sin(np.radians(az)), dist * np.cos(np.radians(az))
    lat, lon = geo.to_geographic(x, y, origin)
    codes = [f"{i + 1:04d}" for i in range(n)]  # "0001" ... all digits, leading zeros
    takeoff_up = np.degrees(np.arctan2(dist, depth_km))
    ray = focal.ray_vector(takeoff_up, az, takeoff_from="up")
    amp = focal.p_radiation(*sdr, ray)
    stations = pd.DataFrame({"network": "5B", "station": codes, "lat": lat, "lon": lon,
                             "elevation_m": 0.0})
    pols = pd.DataFrame({"event_id": event_id, "network": "5B", "station": codes,
                         "polarity": np.where(amp >= 0, 1, -1)})
    events = pd.DataFrame({"event_id": [event_id], "lat": [origin[0]], "lon": [origin[1]],
                           "depth_km": [depth_km]})
    expect = pd.DataFrame({"station": codes, "takeoff_up": takeoff_up, "az_expected": az,
                           "dist": dist})
    return events, pols, stations, expect


# nearly homogeneous: rays are straight lines
_NEAR_CONSTANT = pd.DataFrame({"depth_km": [0.0, 40.0], "vp_km_s": [5.0, 5.01]})


@needs_skhash
def test_takeoff_convention_and_all_digit_station_codes():
    sdr = (40.0, 80.0, 170.0)
    ev, pol, st, expect = _synthetic(sdr)
    res = run_skhash(ev, pol, st, _NEAR_CONSTANT)
    assert res.unsolved.empty, res.unsolved
    pi = res.polinfo.merge(expect, on="station", validate="1:1")
    # station codes come back exactly, leading zeros included
    assert sorted(res.polinfo["station"]) == sorted(st["station"])
    # SKHASH takeoff: degrees from the UPWARD vertical (< 90 = up-going): the station
    # straight above-ish (1 km off, 3 km deep event) ~18 deg, 6 km off ~63 deg
    assert (pi["takeoff"] < 90).all()
    np.testing.assert_allclose(pi["takeoff"], pi["takeoff_up"], atol=3.0)
    d_az = (pi["azimuth"] - pi["az_expected"] + 180) % 360 - 180
    np.testing.assert_allclose(d_az, 0, atol=0.5)
    np.testing.assert_allclose(pi["sr_dist_km"], pi["dist"], rtol=0.005)  # SKHASH: spherical
    # and the known mechanism is recovered
    best = res.preferred.iloc[0]
    assert focal.kagan_angle(sdr, (best["strike"], best["dip"], best["rake"])) < 20
    assert (res.polinfo["pol_agreement"] == 1).mean() > 0.9


@needs_skhash
def test_skhash_skip_reason_is_reported():
    """Stations on one side only: SKHASH skips the event (azimuthal gap > max_agap 40)."""
    ev, pol, st, expect = _synthetic()
    half = expect.loc[expect["az_expected"] <= 180, "station"]
    res = run_skhash(ev, pol[pol["station"].isin(half)], st, _NEAR_CONSTANT)
    assert res.mechanisms.empty and res.polinfo.empty
    assert res.engine in ("python", "fortran")
    (reason,) = res.unsolved["reason"]
    assert reason.startswith("Maximum azimuthal gap") and "max_agap (40)" in reason


def test_unsolved_without_calling_skhash():
    ev, pol, st, _ = _synthetic()
    res = run_skhash(ev, pol.head(5), st, _NEAR_CONSTANT, python="/nonexistent/python")
    assert res.engine is None  # SKHASH never ran (the bogus interpreter was not used)
    assert res.mechanisms.empty and list(res.mechanisms.columns) == MECHANISM_COLUMNS
    assert res.unsolved.to_dict("records") == [
        {"event_id": ev["event_id"][0], "reason": "only 5 usable polarities (npolmin 8)"}]


def test_polarity_zero_and_low_weight_do_not_count():
    ev, pol, st, _ = _synthetic()
    pol = pol.head(9).copy()
    pol.loc[0, "polarity"] = 0
    pol["weight"] = 1.0
    pol.loc[1, "weight"] = 0.05  # < min_polarity_weight 0.1
    res = run_skhash(ev, pol, st, _NEAR_CONSTANT, python="/nonexistent/python")
    assert res.unsolved["reason"].tolist() == ["only 7 usable polarities (npolmin 8)"]


@needs_skhash
def test_parallel_batch_survives_a_failing_event():
    """An event below the lookup table (depth > 39 km) makes SKHASH exit with an error; in
    a batch its chunk is retried event by event and only that event is unsolved."""
    good = _synthetic(event_id="20161201000000.000")
    bad = _synthetic(event_id="20161201000001.000", depth_km=45.0)
    few = _synthetic(event_id="20161201000002.000")
    ev = pd.concat([good[0], bad[0], few[0]], ignore_index=True)
    pol = pd.concat([good[1], bad[1], few[1].head(5)], ignore_index=True)
    with pytest.raises(SkhashError, match="lookup table"):
        run_skhash(ev, pol, good[2], _NEAR_CONSTANT)
    res = run_skhash_parallel(ev, pol, good[2], _NEAR_CONSTANT, workers=2, chunk_size=3)
    assert res.preferred["event_id"].tolist() == ["20161201000000.000"]
    reasons = dict(zip(res.unsolved["event_id"], res.unsolved["reason"]))
    assert list(reasons) == ["20161201000001.000", "20161201000002.000"]
    assert "lookup table" in reasons["20161201000001.000"]
    assert reasons["20161201000002.000"].startswith("only 5 usable polarities")


# ----------------------------------------------------------------------------- inputs

def test_velocity_model_path_or_dataframe(tmp_path):
    f = tmp_path / "vz.txt"
    f.write_text("# depth, vp\n0.0,4.0\n1.5 4.5\n10,6.0\n")
    df = read_velocity_model(f)
    assert df.to_numpy().tolist() == [[0.0, 4.0], [1.5, 4.5], [10.0, 6.0]]
    pd.testing.assert_frame_equal(read_velocity_model(df), df)
    assert read_velocity_model(DEMO_VELOCITY_MODEL)["vp_km_s"].is_monotonic_increasing
    with pytest.raises(ValueError):
        read_velocity_model(pd.DataFrame({"depth_km": [0.0, 0.0], "vp_km_s": [4.0, 5.0]}))


def test_toc2me_velocity_model_file(demo_dir):
    m = read_velocity_model(demo_dir / "vz.north")
    assert len(m) == 71 and m["depth_km"].iloc[0] == 0 and m["depth_km"].iloc[-1] == 45
    assert m["vp_km_s"].iloc[0] == 3.99 and m["vp_km_s"].iloc[-1] == 7.75


def test_managed_settings_are_refused():
    ev, pol, st, _ = _synthetic()
    with pytest.raises(ValueError, match="managed"):
        run_skhash(ev, pol, st, _NEAR_CONSTANT, settings={"outfile1": "x.csv"})
