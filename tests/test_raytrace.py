"""Ray tracing in 1-D layered models (pipeline.mechanisms.raytrace)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import geo
from pipeline.mechanisms import focal, raytrace as rt

SKHASH_DEMO = Path(__file__).resolve().parents[2] / "shared" / "toc2me" / "skhash_demo"
HOMOGENEOUS = pd.DataFrame({"depth_km": [0.0, 50.0], "vp_km_s": [5.0, 5.0]})


def test_homogeneous_straight_rays_both_conventions():
    zs = np.array([3.2, 3.2, 3.2, 0.5, 1.0, 2.0, 4.0])
    x = np.array([0.0, 1.0, 4.0, 7.0, 2.0, 0.3, 12.0])
    zr = np.array([0.0, 0.0, -0.8, 0.0, 3.0, 0.0, 0.2])
    r = rt.trace(zs, x, zr, HOMOGENEOUS, convention="as_given")
    expect = np.degrees(np.arctan2(x, zr - zs))  # from the downward vertical
    np.testing.assert_allclose(r["takeoff_deg"], expect, atol=1e-8)
    np.testing.assert_allclose(r["travel_time_s"], np.hypot(x, zs - zr) / 5.0, rtol=1e-10)
    np.testing.assert_allclose(r["incidence_deg"], expect, atol=1e-8)  # straight line
    assert (r["branch"] == "direct").all()
    up = rt.trace(zs, x, zr, HOMOGENEOUS, takeoff_from="up", convention="as_given")
    np.testing.assert_allclose(up["takeoff_deg"], 180.0 - expect, atol=1e-8)
    # both conventions give the same ray vector in pipeline.mechanisms.focal
    np.testing.assert_allclose(focal.ray_vector(r["takeoff_deg"], 30.0, "down"),
                               focal.ray_vector(up["takeoff_deg"], 30.0, "up"), atol=1e-12)


def test_convert_takeoff():
    np.testing.assert_allclose(rt.convert_takeoff([0, 70, 120], "down", "up"), [180, 110, 60])
    np.testing.assert_allclose(rt.convert_takeoff([10], "up", "up"), [10])
    with pytest.raises(ValueError):
        rt.convert_takeoff(1, "down", "sideways")


def test_linear_gradient_matches_analytic_circular_rays():
    """v = v0 + g z: rays are circles; T = acosh(1 + g^2 R^2 / (2 v_s v_r)) / g. Covers
    the direct branch and, beyond the horizontal ray's reach, turning rays."""
    v0, g, zs = 4.0, 0.5, 3.0
    z = np.linspace(0, 80, 801)
    model = pd.DataFrame({"depth_km": z, "vp_km_s": v0 + g * z})
    x = np.array([0.5, 1.0, 4.0, 8.0, 12.0, 20.0, 30.0])
    r = rt.trace(zs, x, 0.0, model)
    t = np.arccosh(1 + g ** 2 * (x ** 2 + zs ** 2) / (2 * v0 * (v0 + g * zs))) / g
    np.testing.assert_allclose(r["travel_time_s"], t, rtol=2e-5)
    a = v0 / g  # depth (below the v = 0 level) of the surface
    xc = (x ** 2 + a ** 2 - (zs + a) ** 2) / (2 * x)  # circle centre on the v = 0 level
    takeoff = np.degrees(np.arctan2(zs + a, xc))      # from the downward vertical
    np.testing.assert_allclose(r["takeoff_deg"], takeoff, atol=0.02)
    assert list(r["branch"]) == ["direct"] * 3 + ["turning"] * 4
    # the first arrival is continuous through the direct -> turning switch (~90 deg)
    xs = np.linspace(6, 12, 61)
    rr = rt.trace(zs, xs, 0.0, model)
    assert np.all(np.diff(rr["takeoff_deg"]) < 0)
    assert np.max(np.abs(np.diff(rr["takeoff_deg"]))) < 1.0
    assert np.all(np.diff(rr["travel_time_s"]) > 0)


def test_first_arrival_is_minimum_time():
    """Beyond the horizontal direct ray's reach only turning rays arrive; with a fast deep
    layer the turning ray overtakes the direct one even where both exist."""
    model = pd.DataFrame({"depth_km": [0.0, 3.0, 3.5, 6.0, 6.2, 40.0], "vp_km_s": [3.0, 4.0, 4.001, 4.002, 6.5, 6.6]})
    x = np.array([2.0, 5.0, 10.0, 20.0])
    r = rt.trace(3.2, x, 0.0, model)
    direct = rt.trace(3.2, x, 0.0, model, include_turning=False)
    assert (r["travel_time_s"] <= direct["travel_time_s"].fillna(np.inf) + 1e-12).all()
    assert r["branch"].iloc[0] == "direct" and r["branch"].iloc[-1] == "turning"
    assert r["takeoff_deg"].iloc[-1] < 90 < r["takeoff_deg"].iloc[0]


def test_snell_law_holds_across_layers():
    model = pd.DataFrame({"depth_km": [0.0, 1.0, 2.0, 4.0], "vp_km_s": [3.0, 4.0, 4.5, 6.0]})
    r = rt.trace([3.5, 1.5], [2.0, 1.0], 0.0, model)
    m = rt.prepare_model(model)
    p = r["ray_parameter_s_km"].to_numpy()
    np.testing.assert_allclose(np.sin(np.radians(180 - r["takeoff_deg"])), p * m.velocity([3.5, 1.5]), rtol=1e-10)
    np.testing.assert_allclose(np.sin(np.radians(180 - r["incidence_deg"])), p * m.velocity(0.0), rtol=1e-10)


def test_skhash_model_cleanup_drops_non_increasing_rows():
    model = pd.DataFrame({"depth_km": [0.0, 1.0, 1.5, 2.0, 3.0], "vp_km_s": [4.0, 5.0, 5.0, 4.8, 6.0]})
    assert rt.prepare_model(model).nodes["depth_km"].tolist() == [0.0, 1.0, 3.0]
    assert rt.prepare_model(model, "as_given").nodes["depth_km"].tolist() == [0.0, 1.0, 1.5, 2.0, 3.0]
    with pytest.raises(ValueError):
        rt.prepare_model(model, "hash")
    # a velocity inversion traced as given still gives a valid direct ray
    r = rt.trace(2.5, [0.5, 3.0], 0.0, model, convention="as_given")
    assert (r["branch"] == "direct").all() and (r["takeoff_deg"] > 90).all()


def test_demo_velocity_model_is_the_skhash_one():
    from pipeline.mechanisms.skhash import DEMO_VELOCITY_MODEL
    assert rt.DEMO_VELOCITY_MODEL is DEMO_VELOCITY_MODEL
    r = rt.trace(3.2, [0.0, 2.0, 5.0], 0.0, velocity_model=rt.DEMO)  # asked for by name: no warning
    assert (r["branch"] == "direct").all()
    assert r["takeoff_deg"].iloc[0] == pytest.approx(180.0)


def test_missing_velocity_model_warns_not_silent_demo_swap(recwarn):
    """Regression: ``velocity_model=None`` used to trace in the made-up demo model without a
    word (and a failed SKHASH-wrapper import swapped in a second, different demo model)."""
    with pytest.warns(rt.DemoVelocityModelWarning, match="made-up demo model"):
        r = rt.trace(3.2, [0.0, 2.0, 5.0], 0.0)
    # same rays as the demo model asked for by name: the warning is the only difference
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", rt.DemoVelocityModelWarning)
        named = rt.trace(3.2, [0.0, 2.0, 5.0], 0.0, velocity_model=rt.DEMO)
        explicit = rt.trace(3.2, [0.0, 2.0, 5.0], 0.0, velocity_model=rt.DEMO_VELOCITY_MODEL)
    pd.testing.assert_frame_equal(r, named)
    pd.testing.assert_frame_equal(r, explicit)
    # one model only: the module has no fallback copy of it
    src = Path(rt.__file__).read_text()
    assert '"vp_km_s": [' not in src


def test_takeoff_azimuth_and_pair_geometry():
    origin = (54.33, -117.24)
    ex, ey = 0.2, 1.1
    sx, sy = np.array([2.0, -1.5, 0.2]), np.array([1.1, 3.0, -0.9])
    elat, elon = geo.to_geographic(ex, ey, origin)
    slat, slon = geo.to_geographic(sx, sy, origin)
    events = pd.DataFrame({"event_id": ["e1", "e2"], "lat": [elat, elat], "lon": [elon, elon], "depth_km": [3.2, 3.4]})
    stations = pd.DataFrame({"network": "XD", "station": ["A", "B", "C"], "lat": slat, "lon": slon,
                             "elevation_m": [800.0, 850.0, 900.0]})
    g = rt.pair_geometry(events, stations, HOMOGENEOUS, convention="as_given")
    assert list(g["event_id"]) == ["e1"] * 3 + ["e2"] * 3 and list(g["station"]) == ["A", "B", "C"] * 2
    d = np.hypot(sx - ex, sy - ey)
    np.testing.assert_allclose(g["distance_km"].to_numpy()[:3], d, atol=1e-3)
    np.testing.assert_allclose(g["azimuth_deg"].to_numpy()[:3], np.degrees(np.arctan2(sx - ex, sy - ey)) % 360, atol=0.02)
    np.testing.assert_allclose(g["takeoff_deg"].to_numpy()[3:], np.degrees(np.arctan2(g["distance_km"][3:], -3.4)), atol=1e-8)
    ge = rt.pair_geometry(events, stations, HOMOGENEOUS, use_elevation=True, convention="as_given")
    np.testing.assert_allclose(ge["takeoff_deg"].to_numpy()[:3],
                               np.degrees(np.arctan2(g["distance_km"][:3], -3.2 - stations["elevation_m"] / 1000)), atol=1e-8)


def test_vectorised_speed_smoke():
    rng = np.random.default_rng(0)
    r = rt.trace(rng.uniform(2.9, 3.6, 5000), rng.uniform(0, 8, 5000), velocity_model=rt.DEMO)
    assert len(r) == 5000 and r["takeoff_deg"].between(90, 180).all()


# --------------------------------------------------------------------------- SKHASH / ToC2ME

@pytest.fixture(scope="module")
def polinfo():
    vz, pi = SKHASH_DEMO / "vz.north", SKHASH_DEMO / "OUT" / "out_polinfo.csv"
    if not (vz.is_file() and pi.is_file()):
        pytest.skip(f"ToC2ME skhash_demo not found at {SKHASH_DEMO}")
    return vz, pd.read_csv(pi)


def test_against_skhash_out_polinfo(polinfo):
    """Exact takeoffs vs SKHASH's (lookup table: source depths every 3 km, distances every
    2 km, bilinear) for the 153 polarities of the 3 demo events, vz.north."""
    vz, pi = polinfo
    g = rt.takeoff_azimuth(pi["origin_lat"], pi["origin_lon"], pi["origin_depth_km"], pi["station_lat"],
                           pi["station_lon"], velocity_model=vz, takeoff_from="up")
    assert (g["branch"] == "direct").all()
    assert (pi["takeoff"] < 90).all() and (g["takeoff_deg"] < 90).all()  # 'up': < 90 up-going
    diff = g["takeoff_deg"] - pi["takeoff"]
    print(f"exact vs SKHASH takeoff: max |d| {diff.abs().max():.2f} deg, rms {np.sqrt((diff ** 2).mean()):.2f}, "
          f"mean {diff.mean():+.2f}")
    assert diff.abs().max() < 3.5
    assert np.sqrt((diff ** 2).mean()) < 1.5
    # SKHASH's distances use 111.2 km/deg on a flat earth: ~0.3 % shorter than the ellipsoid's
    np.testing.assert_allclose(g["distance_km"], pi["sr_dist_km"], rtol=0.005)
    daz = (g["azimuth_deg"] - pi["azimuth"] + 180) % 360 - 180
    assert daz.abs().max() < 0.15
    # 'down' convention is the complement
    gd = rt.takeoff_azimuth(pi["origin_lat"], pi["origin_lon"], pi["origin_depth_km"], pi["station_lat"],
                            pi["station_lon"], velocity_model=vz)
    np.testing.assert_allclose(gd["takeoff_deg"], 180 - g["takeoff_deg"])


def test_skhash_table_emulation_reproduces_skhash(polinfo):
    """Same model reading + SKHASH's table interpolation -> SKHASH's numbers to ~0.2 deg:
    confirms the convention (exponential layers, dropped rows, 'up' angles, first arrival)."""
    vz, pi = polinfo
    em = rt.skhash_table_takeoff(pi["origin_depth_km"], pi["sr_dist_km"], vz)
    diff = em - pi["takeoff"].to_numpy()
    print(f"SKHASH-table emulation vs SKHASH: max |d| {np.abs(diff).max():.2f} deg")
    assert np.abs(diff).max() < 0.3
