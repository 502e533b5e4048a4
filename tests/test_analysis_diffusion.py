"""Distance-time diffusion analysis: the original's numbers, the fitted D, the bootstrap,
activation bookmarks and frames."""
import math

import numpy as np
import pandas as pd
import pytest

from pipeline import geo
from pipeline.analysis import diffusion as dfn

LOWDIP_FILE = "catalog/swe/mt_solution_20250319_SKHASH_SWe_quality_A_B_without_northest_low_dip.txt"
COLS = ["event_id", "lat", "lon", "depth_km", "strike", "dip", "rake", "key"]


def _events(t_s, lat, lon, depth_km=None):
    t0 = pd.Timestamp("2016-11-21", tz="UTC")
    n = len(t_s)
    return pd.DataFrame({"event_id": [f"e{i}" for i in range(n)],
                         "time": t0 + pd.to_timedelta(np.asarray(t_s, float), unit="s"),
                         "lat": lat, "lon": lon, "depth_km": depth_km if depth_km is not None else np.full(n, 3.0)})


def _check_original_numbers(tab):
    o = tab.attrs["origin"]
    # the file's id says .27 s; the catalogue time the product joins to says .28 s
    assert abs((o["time"] - pd.Timestamp("2016-11-21 00:01:00.27", tz="UTC")).total_seconds()) <= 0.011
    assert (o["lat"], o["lon"]) == (54.351835, -117.227108)
    assert len(tab) == 142 and tab["is_origin"].sum() == 1
    assert tab["t_h"].min() == 0 and tab["t_h"].max() == pytest.approx(202.2, abs=0.05)
    assert tab["distance_m"].min() == pytest.approx(-307, abs=0.5)
    assert tab["distance_m"].max() == pytest.approx(148, abs=0.5)
    shares = dfn.envelope_shares(tab["t_s"], tab["distance_m"])  # D = 0.01, 0.0316, 0.1
    assert list(shares["n_inside"]) == [30, 127, 142]
    assert [round(100 * s) for s in shares["share"]] == [21, 89, 100]


# --- the original figure's numbers ------------------------------------------------------------------

def test_reproduces_the_original_from_the_published_file(toc2me_dir):
    df = pd.read_csv(toc2me_dir / LOWDIP_FILE, sep="\t", header=None, names=COLS, dtype={"event_id": str})
    df["time"] = pd.to_datetime(df["event_id"], format="%Y%m%d%H%M%S.%f", utc=True)
    tab = dfn.distance_time(df)  # origin = earliest event of the set
    assert tab.attrs["origin"]["event_id"] == "20161121000100.270"
    _check_original_numbers(tab)


def test_reproduces_the_original_through_ingest_and_regions(toc2me_tables):
    from pipeline.ingest import regions
    mech = toc2me_tables["mechanisms"]
    low = mech[regions.subset_mask(mech, "SWe-lowdip")]
    tab = dfn.distance_time(low)
    _check_original_numbers(tab)
    fit = dfn.fit_diffusivity(tab["t_s"], tab["distance_m"], q=0.9)
    # the original's "best fit by eye", 0.0316, holds 89 %; the fitted D_0.9 is just above it
    assert fit["D"] == pytest.approx(0.0318, abs=0.0001) and fit["share"] >= 0.9
    boot = dfn.bootstrap_diffusivity(tab["t_s"], tab["distance_m"], q=0.9, seed=1)
    assert boot["lo"] < 0.0316 < boot["hi"]


# --- fit ---------------------------------------------------------------------------------------

def test_fitted_d_is_the_smallest_d_holding_the_share():
    rng = np.random.default_rng(2)
    t = rng.uniform(1, 1e5, 150)
    r = rng.normal(0, 1, 150) * np.sqrt(4 * np.pi * 0.05 * t)
    for q in (0.5, 0.9, 0.95, 1.0):
        fit = dfn.fit_diffusivity(t, r, q)
        assert dfn.share_inside(t, r, fit["D"]) >= q
        assert dfn.share_inside(t, r, fit["D"] * (1 - 1e-6)) < q
        assert fit["D"] == pytest.approx(np.quantile(r**2 / (4 * np.pi * t), q, method="inverted_cdf"))


def test_events_at_the_origin_time_and_before():
    t = np.array([0.0, 0.0, 100.0, 200.0, -50.0])
    r = np.array([0.0, 10.0, 5.0, 50.0, 3.0])
    d = dfn.critical_diffusivity(t, r)
    assert d[0] == 0 and d[1] == np.inf and math.isnan(d[4])
    assert dfn.share_inside(t, r, 1e9) == pytest.approx(3 / 4)  # the simultaneous event stays out
    fit = dfn.fit_diffusivity(t, r, 0.5)
    assert (fit["n"], fit["n_t0"], fit["n_before"]) == (4, 2, 1)
    assert dfn.fit_diffusivity(t, r, 1.0)["D"] == np.inf and dfn.fit_diffusivity(t, r, 1.0)["reason"]
    assert math.isnan(dfn.fit_diffusivity([], [])["D"])
    assert math.isnan(dfn.share_inside([], [], 0.1))


def test_synthetic_envelope_q1_approaches_true_d_and_bootstrap_covers():
    D = 0.05
    rng = np.random.default_rng(11)
    n = 3000
    t = rng.uniform(60, 3e5, n)
    u = rng.uniform(-1, 1, n)  # events fill the envelope: |r| = |u| sqrt(4 pi D t)
    r = u * np.sqrt(4 * np.pi * D * t)
    fit1 = dfn.fit_diffusivity(t, r, 1.0)
    assert fit1["D"] <= D and fit1["D"] == pytest.approx(D, rel=0.005)
    # the population quantile of D_i = D u^2 is D q^2; the percentile interval covers it
    q = 0.9
    boot = dfn.bootstrap_diffusivity(t[:150], r[:150], q=q, seed=3)
    assert boot["lo"] <= D * q**2 <= boot["hi"]


def test_bootstrap_coverage_over_repeated_samples():
    D, q, hits, reps = 0.02, 0.9, 0, 40
    rng = np.random.default_rng(4)
    for i in range(reps):
        t = rng.uniform(60, 7e5, 150)
        r = rng.uniform(-1, 1, 150) * np.sqrt(4 * np.pi * D * t)
        boot = dfn.bootstrap_diffusivity(t, r, q=q, n_boot=500, seed=i)
        hits += boot["lo"] <= D * q**2 <= boot["hi"]
    assert hits / reps >= 0.85


def test_bootstrap_is_seeded_and_fast():
    rng = np.random.default_rng(0)
    t = rng.uniform(1, 7e5, 150)
    r = rng.uniform(-300, 150, 150)
    a = dfn.bootstrap_diffusivity(t, r, seed=7, return_samples=True)
    b = dfn.bootstrap_diffusivity(t, r, seed=7)
    assert (a["lo"], a["hi"]) == (b["lo"], b["hi"]) and a["samples"].shape == (1000,)
    assert dfn.bootstrap_diffusivity([10.0], [1.0])["reason"]


# --- distance definitions ------------------------------------------------------------------------

def test_distance_definitions():
    origin = (54.35, -117.23)
    # 100 m north, 100 m south, 100 m east (400 m deeper), via the local frame
    lat, lon = geo.to_geographic(np.array([0.0, 0.0, 0.0, 0.1]), np.array([0.0, 0.1, -0.1, 0.0]), origin)
    lat[[0, 3]] = origin[0]  # due east on the same latitude: counted as north (+)
    ev = _events([0, 10, 20, 30], lat, lon, np.array([3.0, 3.0, 3.0, 3.4]))
    epi = dfn.distance_time(ev)
    # great circle on the mean-radius sphere (as the original) vs the ellipsoidal frame: < 0.5 %
    assert np.allclose(epi["distance_m"], [0, 100, -100, 100], atol=0.5)
    hyp = dfn.distance_time(ev, method="hypocentral_3d")
    assert np.allclose(hyp["distance_m"], [0, 100, 100, math.hypot(100, 400)], atol=0.5)
    assert dfn.distance_time(ev, method="hypocentral_3d", signed=True)["distance_m"].iloc[2] < 0
    north = dfn.distance_time(ev, method="along_strike", strike_deg=0.0)
    assert np.allclose(north["distance_m"], [0, 100, -100, 0], atol=0.2)
    east = dfn.distance_time(ev, method="along_strike", strike_deg=90.0)
    assert np.allclose(east["distance_m"], [0, 0, 0, 100], atol=0.2)
    with pytest.raises(ValueError):
        dfn.distance_time(ev, method="along_strike")
    with pytest.raises(ValueError):
        dfn.distance_time(ev, method="crow_flies")
    assert dfn.distance_time(ev.iloc[:0]).empty


def test_explicit_origin():
    ev = _events([0, 100, 200], [54.35, 54.351, 54.352], [-117.23] * 3)
    tab = dfn.distance_time(ev, origin="e1")
    assert list(tab["t_s"]) == [-100, 0, 100] and tab["is_origin"].tolist() == [False, True, False]
    assert dfn.fit_diffusivity(tab["t_s"], tab["distance_m"])["n_before"] == 1
    with pytest.raises(ValueError):
        dfn.distance_time(ev, origin="nope")


def test_envelope_radius_units():
    # D = 0.0316 m2/s for 202 h: r = sqrt(4 pi D t) ~ 285 m
    assert dfn.envelope_radius_m(202 * 3600, 0.0316) == pytest.approx(math.sqrt(4 * math.pi * 0.0316 * 727200))
    curve = dfn.envelope_curve(0.1, 3600, n=5)
    assert curve["r_m"].iloc[0] == 0 and curve["t_h"].iloc[-1] == 1.0


# --- activation ------------------------------------------------------------------------------------

def test_activation_bookmarks_match_exact_catalogue_events(toc2me_tables):
    marks = dfn.activation_bookmarks(toc2me_tables["events"])
    assert list(marks["label"]) == [f"Fault{i}" for i in range(1, 7)]
    assert marks["event_id"].notna().all()
    assert (marks["dt_s"].abs() < 1e-3).all()  # exact to the catalogue's 0.01 s
    assert (marks["time"].dt.microsecond > 0).all()  # the fraction of a second is kept
    assert marks["time"].iloc[0] == pd.Timestamp("2016-11-20 19:58:31.72", tz="UTC")


def test_activation_frame_shows_only_the_past():
    ev = _events([0, 100, 200, 300], [54.35] * 4, [-117.23] * 4)
    mech = ev.iloc[[1, 3]]
    t = ev["time"].iloc[1]
    fr = dfn.activation_frame(ev, mech, t, recent_s=50)
    assert fr["n_active"] == 2 and fr["n_mechanisms"] == 1
    assert fr["events"]["active"].tolist() == [True, True, False, False]
    assert fr["events"]["recent"].tolist() == [False, True, False, False]
    assert list(fr["mechanisms"]["event_id"]) == ["e1"]
    assert dfn.activation_frame(ev, None, t)["mechanisms"] is None
    assert "active" not in ev  # inputs are not modified
