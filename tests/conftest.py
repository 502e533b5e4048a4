"""Shared test fixtures."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def toc2me_path() -> Path:
    """The real ToC2ME data folder: $TOC2ME_DIR, else ``shared/toc2me`` next to the repo."""
    env = os.environ.get("TOC2ME_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "toc2me"


@pytest.fixture(scope="session")
def toc2me_dir() -> Path:
    """Path of the real ToC2ME folder; skips the test when it is absent."""
    path = toc2me_path()
    if not (path / "catalog" / "ToC2ME.xlsx").is_file():
        pytest.skip(f"ToC2ME data not found at {path} (set TOC2ME_DIR to the shared/toc2me folder)")
    return path


@pytest.fixture(scope="session")
def toc2me_tables(toc2me_dir):
    """All tables of ``pipeline.ingest_toc2me.load`` on the real data (loaded once, ~2 s).
    Tests must not modify them."""
    from pipeline import ingest_toc2me
    return ingest_toc2me.load(toc2me_dir)


# --- dashboard fixtures (components/, pages/, app.py) ------------------------------------

def synthetic_tables(seed: int = 7, n_events: int = 3000, n_mechanisms: int = 400) -> dict:
    """A small, self-contained set of tables of the data contract (fallback when
    ``pipeline.demo`` is absent): four N-S wells, a ring of stations, events clustered
    around the wells over three weeks, mechanisms (published and a few computed) with
    groups from the published rule, some null clusters, magnitudes and qualities."""
    import numpy as np
    import pandas as pd

    from pipeline import enrich, geo

    rng = np.random.default_rng(seed)
    origin = geo.TOC2ME_ORIGIN
    t0 = pd.Timestamp("2016-11-01", tz="UTC")
    # stations
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    sx, sy = 4.0 * np.cos(ang), 1.5 + 4.0 * np.sin(ang)
    slat, slon = geo.to_geographic(sx, sy, origin)
    stations = pd.DataFrame({"network": "XX", "station": [f"{1100 + i}" for i in range(24)],
                             "lat": slat, "lon": slon, "elevation_m": 700.0, "x_km": sx, "y_km": sy,
                             "reversed": np.arange(24) % 5 == 0})
    wells, stages = [], []
    for k, w in enumerate("DABC"):
        wx = -1.2 + 0.8 * k
        ys = np.linspace(3.0, 0.0, 7)  # toe (north) first
        lat, lon = geo.to_geographic(np.full(7, wx), ys, origin)
        wells.append(pd.DataFrame({"well": w, "vertex": np.arange(7, dtype=np.int32), "lat": lat,
                                   "lon": lon, "x_km": wx, "y_km": ys}))
        n = 6
        stx, sty = np.full(n, wx), np.linspace(2.8, 0.3, n)
        lat, lon = geo.to_geographic(stx, sty, origin)
        stages.append(pd.DataFrame({"well": w, "stage_no": np.arange(1, n + 1, dtype=np.int32),
                                    "time": t0 + pd.to_timedelta(24 * k + 8 * np.arange(n), unit="h"),
                                    "lat": lat, "lon": lon, "x_km": stx, "y_km": sty,
                                    "day_index": 1.0 + k + np.arange(n) / 3}))
    wells, stages = pd.concat(wells, ignore_index=True), pd.concat(stages, ignore_index=True)
    # events: unique times at >= 1 s spacing
    secs = np.sort(rng.choice(21 * 86400, size=n_events, replace=False)).astype(float)
    secs += rng.integers(0, 1000, n_events) / 1000.0 * 0.5
    times = t0 + pd.to_timedelta(secs, unit="s")
    well_x = -1.2 + 0.8 * rng.integers(0, 4, n_events)
    ex = well_x + rng.normal(0, 0.25, n_events)
    ey = rng.uniform(0, 3, n_events)
    lat, lon = geo.to_geographic(ex, ey, origin)
    mag = np.round(rng.gumbel(-0.8, 0.45, n_events), 2)
    mag[rng.random(n_events) < 0.01] = np.nan
    cluster = np.where(ex < -0.4, "west", np.where(ex > 0.8, "east", None)).astype(object)
    events = pd.DataFrame({
        "event_id": times.strftime("%Y%m%d%H%M%S.") + times.strftime("%f").str[:3],
        "time": times, "lat": lat, "lon": lon, "depth_km": rng.normal(3.0, 0.08, n_events),
        "magnitude": mag, "x_km": ex, "y_km": ey, "cluster": cluster,
        "source_row": np.arange(2, n_events + 2)})
    # mechanisms for the largest events
    order = np.argsort(-np.nan_to_num(mag, nan=-9))[:n_mechanisms]
    ev = events.iloc[np.sort(order)].reset_index(drop=True)
    m = len(ev)
    strike = np.round(rng.choice([5.0, 182.0, 25.0, 215.0, 190.0, 16.0, 100.0], m) + rng.normal(0, 3, m), 1) % 360
    dip = np.round(np.clip(rng.normal(80, 10, m), 5, 90), 1)
    rake = np.round(np.where(rng.random(m) < 0.9, 175.0, 120.0) + rng.normal(0, 3, m), 1)
    rake = np.where(rake > 180, rake - 360, rake)
    mech = pd.DataFrame({
        "event_id": ev["event_id"], "source": "published", "time": ev["time"], "lat": ev["lat"],
        "lon": ev["lon"], "depth_km": ev["depth_km"], "x_km": ev["x_km"], "y_km": ev["y_km"],
        "lat_skhash": ev["lat"], "lon_skhash": ev["lon"], "depth_km_skhash": ev["depth_km"] - 0.12,
        "magnitude": ev["magnitude"], "strike": strike, "dip": dip, "rake": rake,
        "quality": rng.choice(np.array(["A", "B", "C", "D", None], dtype=object), m, p=[.4, .3, .15, .1, .05]),
        "cluster": ev["cluster"], "n_polarities": rng.integers(8, 60, m).astype(np.int32),
        "polarity_misfit": rng.uniform(0, 20, m), "fault_plane_uncertainty": rng.uniform(5, 40, m),
        "prob_mech": rng.uniform(50, 100, m), "sta_distribution_ratio": rng.uniform(40, 90, m),
        "published_set": "synthetic"})
    computed = mech.iloc[: m // 10].copy()
    computed["source"] = "computed"
    computed["strike"] = (computed["strike"] + 4) % 360
    computed["published_set"] = None
    mech = enrich.complete_mechanisms(pd.concat([mech, computed], ignore_index=True))
    injection = pd.DataFrame({"date": pd.date_range("2016-11-01", periods=21).date,
                              "rate_m3_min": rng.uniform(0, 12, 21), "volume_m3": rng.uniform(0, 9000, 21),
                              "well": None, "source_row": np.arange(2, 23)})
    frame = pd.DataFrame({"origin_lat": [origin[0]], "origin_lon": [origin[1]],
                          "method": ["tangent plane (pipeline.geo)"], "dataset": ["synthetic-test"]})
    rejects = pd.DataFrame({"file": pd.Series([], dtype=str), "line": pd.Series([], dtype="Int64"),
                            "reason": pd.Series([], dtype=str), "content": pd.Series([], dtype=str),
                            "stage": pd.Series([], dtype=str)})
    return {"events": events, "stations": stations, "wells": wells, "stages": stages,
            "injection": injection, "mechanisms": mech, "frame": frame, "rejects": rejects}


@pytest.fixture(scope="session")
def demo_data_dir(tmp_path_factory) -> Path:
    """A data folder with every table: ``pipeline.demo.generate()`` when that module
    exists, else :func:`synthetic_tables`. Session-scoped; tests must not write to it."""
    from pipeline import tables

    try:
        from pipeline import demo
    except ImportError:
        demo = None
    data_dir = tmp_path_factory.mktemp("demo_data")
    generated = demo.generate(seed=20161104) if demo is not None else synthetic_tables()
    tables.write_tables(data_dir, generated)
    return data_dir


@pytest.fixture(autouse=True)
def _reset_dash_registry():
    """Dash keeps pages and ``dash.callback`` registrations in module globals; clear them
    around every test (vizro style) so apps built by different tests do not mix. Does
    nothing unless Dash is already imported."""
    import sys

    def clear():
        pages, callbacks = sys.modules.get("dash._pages"), sys.modules.get("dash._callback")
        if pages is not None:
            pages.PAGE_REGISTRY.clear()
        if callbacks is not None:
            callbacks.GLOBAL_CALLBACK_LIST.clear()
            callbacks.GLOBAL_CALLBACK_MAP.clear()
            callbacks.GLOBAL_INLINE_SCRIPTS.clear()

    clear()
    yield
    clear()
