"""Level of detail of the map's beachballs (issue 12): the largest balls in view are drawn
exactly, the others as dots; a zoom swaps which. Every expectation is recomputed here from
:func:`components.beachball.beachball_xy` (the exact patches) and the input table."""
from __future__ import annotations

import base64

import numpy as np
import pandas as pd
import pytest

from components.beachball import beachball_xy, magnitude_radius
from components.map_figure import (BALL_POINTS_FEW, EDGE_PX, GROUP_COLORS, MAX_BALL_POLYGONS, PLOT_PX, ball_traces,
                                   map_figure)


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
    return {"outline": (out["outline_x"], out["outline_y"]), "fills": fills,
            "centre": (sub["x_km"].to_numpy(), sub["y_km"].to_numpy()), "radius": magnitude_radius(sub["magnitude"])}


def _edge_width(traces, want) -> float:
    """The edge discs' width (km) beyond each exact ball: each edge polygon is the ball's
    outline polygon scaled about its centre by (r + width) / r, r the ball's radius, with one
    width for every ball (checked)."""
    by_name = {t["name"]: t for t in traces}
    n = len(want["radius"])
    ex, ey = (_arr(by_name["beachball edge"][k]).astype(float) for k in ("x", "y"))
    if n == 0:
        assert len(ex) == 0
        return 0.0
    k = len(ex) // n
    cx, cy = (np.repeat(c, k) for c in want["centre"])
    ox, oy = (np.asarray(v, dtype=float) for v in want["outline"])
    ok = np.isfinite(ex)
    scale = (np.hypot(ex - cx, ey - cy) / np.hypot(ox - cx, oy - cy))[ok]
    np.testing.assert_allclose((ex - cx)[ok], (scale * (ox - cx)[ok]), atol=2e-5)   # on the outline's rays
    np.testing.assert_allclose((ey - cy)[ok], (scale * (oy - cy)[ok]), atol=2e-5)
    width = (scale - 1) * np.repeat(np.asarray(want["radius"], dtype=float), k)[ok]
    np.testing.assert_allclose(width, width[0], rtol=2e-3)
    return float(np.median(width))


def _check(traces, df_sorted, exact, n_points):
    by_name = {t["name"]: t for t in traces}
    want = _expected(df_sorted, exact, n_points)
    np.testing.assert_allclose(_arr(by_name["beachball outline"]["x"]), want["outline"][0], rtol=0, atol=2e-6)
    np.testing.assert_allclose(_arr(by_name["beachball outline"]["y"]), want["outline"][1], rtol=0, atol=2e-6)
    assert by_name["beachball outline"]["fillcolor"] == "white" and by_name["beachball edge"]["fillcolor"] == "black"
    # fills only: no WebGL line pass (issue 12)
    assert {by_name[k]["mode"] for k in ("beachball outline", "beachball edge", *want["fills"])} == {"none"}
    assert exact.sum() == 0 or _edge_width(traces, want) > 0
    for g, (wx, wy) in want["fills"].items():
        got = by_name[g]
        np.testing.assert_allclose(_arr(got["x"]), wx, rtol=0, atol=2e-6)
        np.testing.assert_allclose(_arr(got["y"]), wy, rtol=0, atol=2e-6)
    # one marker trace, first, at every ball centre: a dot where the ball is not exact, size 0
    # where it is; every ball's hover and click target
    markers = traces[0]
    assert markers["name"] == "smaller ML: zoom in" and markers["mode"] == "markers"
    np.testing.assert_allclose(_arr(markers["x"]), df_sorted["x_km"].to_numpy(), atol=2e-6)
    np.testing.assert_allclose(_arr(markers["y"]), df_sorted["y_km"].to_numpy(), atol=2e-6)
    size, width = _arr(markers["marker"]["size"]), _arr(markers["marker"]["line"]["width"])
    assert np.array_equal(size > 0, ~exact) and np.array_equal(width > 0, ~exact)
    want_colors = [GROUP_COLORS[g] for g in df_sorted["group"]]
    assert markers["marker"]["color"] == want_colors
    assert [c[0] for c in markers["customdata"]] == df_sorted["event_id"].tolist()  # every ball clickable
    assert markers["meta"] == {"polygons": int(exact.sum()), "balls": len(df_sorted)}
    assert markers["showlegend"] == bool((~exact).any())


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
    assert ball_traces(big)[0]["meta"]["polygons"] == MAX_BALL_POLYGONS


def test_map_figure_meta_names_the_ball_traces():
    df = _mechanisms(50)
    empty = pd.DataFrame(columns=["x_km", "y_km", "lat", "lon"])
    fig = map_figure(df.iloc[:0].assign(time=pd.Timestamp("2016-11-01", tz="UTC")), df, empty, empty, empty)
    meta = fig["layout"]["meta"]
    names = [t["name"] for t in fig["data"][meta["balls_first"]:meta["balls_last"] + 1]]
    assert names[:3] == ["smaller ML: zoom in", "beachball edge", "beachball outline"]
    assert names[3:] == [g for g in GROUP_COLORS if g in set(df["group"])]
    assert meta["balls"] == meta["balls_first"] and meta["polygons"] == 50


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


def test_the_edge_is_a_fixed_number_of_pixels_at_the_drawn_scale():
    """The black edge is EDGE_PX wide where the range is drawn in PLOT_PX at one scale (the
    axis with room to spare is widened, so the tighter one sets it)."""
    df = _mechanisms(40)  # centres in -3..3 km
    s = df.sort_values("magnitude", ascending=False, kind="stable")
    x, y = s["x_km"].to_numpy(), s["y_km"].to_numpy()

    def width(visible):
        x0, x1, y0, y1 = visible
        mx, my = 0.05 * (x1 - x0), 0.05 * (y1 - y0)
        inside = (x >= x0 - mx) & (x <= x1 + mx) & (y >= y0 - my) & (y <= y1 + my)
        assert inside.any()
        return _edge_width(ball_traces(df, max_polygons=None, visible=visible),
                           _expected(s, inside, BALL_POINTS_FEW))

    # 24 km over PLOT_PX[0] px sets the scale (7 km over PLOT_PX[1] would allow more)
    wide = EDGE_PX * 24.0 / PLOT_PX[0]
    assert width((-12.0, 12.0, -3.5, 3.5)) == pytest.approx(wide, rel=1e-3)
    assert width((-3.5, 3.5, -12.0, 12.0)) == pytest.approx(EDGE_PX * 24.0 / PLOT_PX[1], rel=1e-3)
    # zoomed in 10x: the same pixels, a tenth of the km
    assert width((-1.2, 1.2, -0.35, 0.35)) == pytest.approx(wide / 10, rel=1e-3)


def test_the_edge_in_the_geographic_view_uses_kilometres_per_degree():
    """In the lon/lat view the range is in degrees: its spans are turned into km (1 deg of
    latitude 110.57 km, of longitude 111.32 cos(lat) km) before the scale is taken."""
    from components.map_figure import edge_km

    lat0 = 54.4
    x_km = 0.2 * 111.32 * np.cos(np.radians(lat0))
    y_km = 0.01 * 110.57
    want = EDGE_PX * max(x_km / PLOT_PX[0], y_km / PLOT_PX[1])
    assert edge_km(-117.3, -117.1, 54.40, 54.41, view="geo", origin=(lat0, -117.2)) == pytest.approx(want, rel=1e-9)
    assert edge_km(0.0, 2.0, 0.0, 1.0) == pytest.approx(EDGE_PX * max(2.0 / PLOT_PX[0], 1.0 / PLOT_PX[1]))
