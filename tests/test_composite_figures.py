"""Figures of the composite mechanism and the stress inversion (components.composite_figures):
pure functions, checked without a browser."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from components import composite_figures as cpf
from components.beachball import project_vectors
from pipeline.analysis import stress
from pipeline.mechanisms import focal


def _trace(fig, name_start):
    return [t for t in fig["data"] if t.get("name", "").startswith(name_start)]


def _mechanism(s=120.0, d=55.0, r=-60.0, **extra):
    s2, d2, r2 = (float(v) for v in focal.auxiliary_plane(s, d, r))
    return {"strike": s, "dip": d, "rake": r, "strike2": s2, "dip2": d2, "rake2": r2, "quality": "B",
            "n_events": 3, "n_polarities": 4, **extra}


def test_rays_land_where_their_takeoff_and_azimuth_say_with_their_polarity():
    rays = pd.DataFrame({
        "event_id": ["e1", "e1", "e2", "e3"], "station": ["A", "B", "C", "D"],
        "takeoff_deg": [0.0, 90.0, 180.0, 135.0],       # from the downward vertical
        "azimuth_deg": [0.0, 90.0, 0.0, 180.0],
        "polarity": [1, -1, 1, -1], "pol_agreement": [True, True, False, True],
    })
    fig = cpf.composite_figure(_mechanism(), rays)
    up, down = _trace(fig, "compression")[0], _trace(fig, "dilatation")[0]
    # straight down -> centre; straight up -> centre too (antipode); horizontal east -> (1, 0)
    assert up["x"] == pytest.approx([0.0, 0.0], abs=1e-4) and up["y"] == pytest.approx([0.0, 0.0], abs=1e-4)
    assert down["x"][0] == pytest.approx(1.0, abs=1e-4) and down["y"][0] == pytest.approx(0.0, abs=1e-4)
    # up-going 45 deg towards the south plots at the antipode: north, r = sqrt(2) sin(22.5 deg)
    assert down["x"][1] == pytest.approx(0.0, abs=1e-4)
    assert down["y"][1] == pytest.approx(np.sqrt(2) * np.sin(np.radians(22.5)), abs=1e-4)
    assert up["marker"]["line"]["color"] == ["#212529", "#d62728"]   # the disagreeing ray has a red edge
    meta = fig["layout"]["meta"]
    assert (meta["n_rays"], meta["n_disagree"], meta["n_events"], meta["n_polarities"]) == (4, 1, 3, 4)
    json.dumps(fig)


def test_average_is_drawn_dashed_with_its_kagan_angle_and_acceptable_planes_are_capped():
    avg = _mechanism(100.0, 60.0, -80.0, n=17)
    acc = pd.DataFrame({"strike": np.linspace(100, 140, 450), "dip": 55.0, "rake": -60.0})
    fig = cpf.composite_figure(_mechanism(), None, acc, avg, cap=50)
    meta = fig["layout"]["meta"]
    assert meta["kagan_to_average"] == pytest.approx(
        float(focal.kagan_angle((120.0, 55.0, -60.0), (100.0, 60.0, -80.0))))
    dashed = _trace(fig, "MT average")
    assert len(dashed) == 1 and dashed[0]["line"]["dash"] == "dash"
    assert (meta["n_acceptable"], meta["acceptable_drawn"]) == (450, 50)
    lines = _trace(fig, "acceptable planes")[0]
    assert sum(v is None for v in lines["x"]) == 50
    assert "50 of 450 acceptable planes drawn" in fig["layout"]["title"]["subtitle"]["text"]
    assert "Kagan" in fig["layout"]["title"]["subtitle"]["text"]
    nodal = _trace(fig, "composite 120/55/-60")
    assert len(nodal) == 1 and sum(v is None for v in nodal[0]["x"]) == 2   # both planes


def test_stress_figure_draws_the_best_axes_their_clouds_and_states_r_and_shmax():
    rng = np.random.default_rng(1)
    # mechanisms of a strike-slip regime: faults striking N30E and N120E +- noise
    n = 40
    s = np.where(np.arange(n) % 2, 30.0, 120.0) + rng.normal(0, 5, n)
    d = 85.0 + rng.normal(0, 3, n).clip(-5, 5)
    r = np.where(np.arange(n) % 2, 180.0, 0.0) + rng.normal(0, 5, n)
    b = stress.bootstrap(s, d, r, n_boot=30, seed=0)
    fig = cpf.stress_figure(b, n_used=n, n_selected=n + 10)
    meta = fig["layout"]["meta"]
    assert meta["R"] == pytest.approx(b.best.r) and meta["shmax_deg"] == pytest.approx(b.best.shmax)
    assert meta["bootstrap"] == len(b.r) and meta["n_used"] == n and meta["n_selected"] == n + 10
    best = _trace(fig, "σ1 σ2 σ3")[0]
    x, y = project_vectors(b.best.axes)
    assert best["x"] == pytest.approx(x, abs=1e-4) and best["y"] == pytest.approx(y, abs=1e-4)
    assert best["text"] == ["σ1", "σ2", "σ3"]
    for i, name in enumerate(("σ1", "σ2", "σ3")):
        cloud = _trace(fig, f"{name} bootstrap")[0]
        assert len(cloud["x"]) == len(b.r)
        cx, cy = project_vectors(b.axes[:, i, :])
        assert cloud["x"] == pytest.approx(np.round(cx, 4), abs=1e-4)
    sh = _trace(fig, "SHmax")[0]
    a = np.radians(b.best.shmax)
    assert sh["x"][1] == pytest.approx(np.sin(a)) and sh["y"][1] == pytest.approx(np.cos(a))
    title = fig["layout"]["title"]["text"]
    assert f"R = {b.best.r:.2f}" in title and f"SHmax = {b.best.shmax:.0f}°" in title
    sub = fig["layout"]["title"]["subtitle"]["text"]
    assert "of 50" in sub and f"σ1 {b.radius['sigma1']:.0f}°" in sub
    json.dumps(fig)
