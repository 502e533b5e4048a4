"""Level of detail of the map's beachballs (issue 12): the largest balls in view are drawn
exactly, the others as dots; a zoom swaps which. Every expectation is recomputed here from
:func:`components.beachball.beachball_xy` (the exact patches) and the input table."""
from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from components.beachball import beachball_xy, magnitude_radius
from components.map_figure import (BALL_POINTS_FEW, GROUP_COLORS, MAX_BALL_POLYGONS, ball_traces, map_figure)


def _arr(spec) -> np.ndarray:
    if isinstance(spec, dict):
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<"))
    return np.asarray(spec, dtype=float)


def _mechanisms(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "event_id": [f"2016110{i % 9}{i:07d}.000" for i in range(n)],
        "x_km": rng.uniform(-3, 3, n), "y_km": rng.uniform(-3, 3, n),
        "strike": rng.uniform(0, 360, n), "dip": rng.uniform(5, 90, n), "rake": rng.uniform(-180, 180, n),
        "magnitude": np.round(rng.gumbel(-0.5, 0.4, n), 2),
        "group": rng.choice(["g1", "g2", "g3", "g4", "other"], n),
    })


def _expected(df: pd.DataFrame, exact: np.ndarray, n_points: int) -> dict:
    """Outline and per-group fills of the balls ``exact`` (a mask on ``df`` sorted by ML, largest first)."""
    sub = df[exact]
    out = beachball_xy(sub["strike"], sub["dip"], sub["rake"], sub["x_km"], sub["y_km"],
                       magnitude_radius(sub["magnitude"]), n_points=n_points, nodal=False)
    polys_x = out["fill_x"].reshape(-1, n_points + 1)
    polys_y = out["fill_y"].reshape(-1, n_points + 1)
    groups = sub["group"].to_numpy()[out["fill_ball"]]
    fills = {g: (polys_x[groups == g].ravel(), polys_y[groups == g].ravel()) for g in GROUP_COLORS}
    return {"outline": (out["outline_x"], out["outline_y"]), "fills": fills}


def _check(traces, df_sorted, exact, n_points):
    by_name = {t["name"]: t for t in traces}
    want = _expected(df_sorted, exact, n_points)
    np.testing.assert_allclose(_arr(by_name["beachball outline"]["x"]), want["outline"][0], rtol=0, atol=2e-6)
    np.testing.assert_allclose(_arr(by_name["beachball outline"]["y"]), want["outline"][1], rtol=0, atol=2e-6)
    for g, (wx, wy) in want["fills"].items():
        got = by_name[g]
        np.testing.assert_allclose(_arr(got["x"]), wx, rtol=0, atol=2e-6)
        np.testing.assert_allclose(_arr(got["y"]), wy, rtol=0, atol=2e-6)
    dots = by_name["smaller ML: zoom in"]
    np.testing.assert_allclose(_arr(dots["x"]), df_sorted["x_km"].to_numpy()[~exact], atol=2e-6)
    np.testing.assert_allclose(_arr(dots["y"]), df_sorted["y_km"].to_numpy()[~exact], atol=2e-6)
    hover = traces[-1]
    assert [c[0] for c in hover["customdata"]] == df_sorted["event_id"].tolist()  # every ball clickable
    assert hover["meta"] == {"polygons": int(exact.sum()), "balls": len(df_sorted)}


def test_full_extent_draws_the_largest_exactly_and_the_rest_as_dots():
    df = _mechanisms(300)
    traces = ball_traces(df, max_polygons=40)
    s = df.sort_values("magnitude", ascending=False, kind="stable")
    exact = np.zeros(len(s), dtype=bool)
    exact[:40] = True
    # the 40 exact balls are those of the 40 largest ML
    assert s["magnitude"].to_numpy()[39] >= s["magnitude"].to_numpy()[40:].max()
    _check(traces, s, exact, BALL_POINTS_FEW)


def test_zoomed_range_draws_the_largest_in_view_and_keeps_the_trace_structure():
    df = _mechanisms(300)
    full = ball_traces(df, max_polygons=40)
    box = (-1.0, 0.5, 2.5, -0.5)  # x0 > x1 / y0 > y1 order is accepted
    zoomed = ball_traces(df, max_polygons=40, visible=box)
    assert [t["name"] for t in zoomed] == [t["name"] for t in full]
    s = df.sort_values("magnitude", ascending=False, kind="stable")
    x, y = s["x_km"].to_numpy(), s["y_km"].to_numpy()
    margin_x, margin_y = 0.05 * 1.5, 0.05 * 3.0
    inside = (x >= -1 - margin_x) & (x <= 0.5 + margin_x) & (y >= -0.5 - margin_y) & (y <= 2.5 + margin_y)
    assert 40 < inside.sum() < 300
    exact = inside & (np.cumsum(inside) <= 40)
    _check(zoomed, s, exact, BALL_POINTS_FEW)
    # a small view: every ball in it is exact
    few = ball_traces(df, max_polygons=40, visible=(0.0, 0.4, 0.0, 0.4))
    small = (x >= -0.02) & (x <= 0.42) & (y >= -0.02) & (y <= 0.42)
    assert 0 < small.sum() <= 40
    _check(few, s, small, BALL_POINTS_FEW)


def test_no_limit_is_the_old_drawing_and_the_default_limit_applies():
    df = _mechanisms(60)
    s = df.sort_values("magnitude", ascending=False, kind="stable")
    _check(ball_traces(df, max_polygons=None), s, np.ones(60, dtype=bool), BALL_POINTS_FEW)
    big = _mechanisms(MAX_BALL_POLYGONS + 30, seed=5)
    assert ball_traces(big)[-1]["meta"]["polygons"] == MAX_BALL_POLYGONS


def test_map_figure_meta_names_the_ball_traces():
    df = _mechanisms(50)
    empty = pd.DataFrame(columns=["x_km", "y_km", "lat", "lon"])
    fig = map_figure(df.iloc[:0].assign(time=pd.Timestamp("2016-11-01", tz="UTC")), df, empty, empty, empty)
    meta = fig["layout"]["meta"]
    names = [t["name"] for t in fig["data"][meta["balls_first"]:meta["balls"] + 1]]
    assert names[0] == "smaller ML: zoom in" and names[1] == "beachball outline"
    assert names[-1] == "beachball hover" and meta["polygons"] == 50


@pytest.mark.parametrize("relayout,want", [
    ({"xaxis.range[0]": 1, "xaxis.range[1]": 2, "yaxis.range[0]": -1, "yaxis.range[1]": 0.5}, (1, 2, -1, 0.5)),
    ({"xaxis.autorange": True, "yaxis.autorange": True}, "all"),
    ({"autosize": True}, None), (None, None), ({"xaxis.range[0]": "nan", "xaxis.range[1]": 1,
                                                 "yaxis.range[0]": 0, "yaxis.range[1]": 1}, None),
    ({"xaxis.range[0]": 1, "xaxis.range[1]": 2}, None),
    # a double-click reset to the figure's explicit range (Plotly's form for it)
    ({"xaxis.range": [-2.5, 2.9], "yaxis.range": [-0.2, 3.3]}, (-2.5, 2.9, -0.2, 3.3)),
    ({"xaxis.range": [-2.5], "yaxis.range": [-0.2, 3.3]}, None),
])
def test_visible_range_from_relayout_data(demo_data_dir, relayout, want):
    from pagetools import page_module

    _, page = page_module(demo_data_dir, "pages.map")
    assert page.visible_range(relayout) == want
