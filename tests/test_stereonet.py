"""Unit tests of the group stereonet builder (components/stereonet.py); no browser."""
from __future__ import annotations

import base64
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from components import stereonet as sn
from components.beachball import nodal_line, project
from pipeline.analysis.mechanism_stats import average_mechanism, legacy_mean_mechanism


def _arr(v):
    """A figure array: a typed-array spec ({'dtype', 'bdata'}) or a plain list -> float array."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]).newbyteorder("<")).astype(float)
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def _path_xy(path: str):
    """(x, y) of an SVG path of M/L commands, a NaN after each subpath (as the flat output
    of nodal_lines_xy), parsed here independently of stereonet.svg_path."""
    xs, ys = [], []
    for sub in re.findall(r"M[^M]*", path):
        pts = re.findall(r"[ML](-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)", sub)
        assert "".join(f"{c}{a},{b}" for c, (a, b) in zip("M" + "L" * len(pts), pts)) == sub, sub
        xs += [float(a) for a, _ in pts] + [np.nan]
        ys += [float(b) for _, b in pts] + [np.nan]
    return np.array(xs), np.array(ys)


def _line_shapes(fig, name=None):
    """The figure's nodal-line shapes (one SVG path per colour), with the path's points as
    ``x``/``y`` arrays; ``name``: only those of that name, else the deviation classes."""
    out = []
    for sh in fig["layout"].get("shapes", []):
        n = str(sh.get("name", ""))
        if (n == name) if name else n.startswith("deviation "):
            assert sh["type"] == "path" and sh["xref"] == "x" and sh["yref"] == "y"
            x, y = _path_xy(sh["path"])
            out.append({**sh, "x": x, "y": y})
    return out


def _lines(fig):
    return _line_shapes(fig)


def _mechs(strikes, dips=None, rakes=None):
    n = len(strikes)
    return pd.DataFrame({"event_id": [f"2016110100000{i:02d}.000" for i in range(n)],
                         "strike": np.asarray(strikes, dtype=float),
                         "dip": np.asarray(dips if dips is not None else [85.0] * n, dtype=float),
                         "rake": np.asarray(rakes if rakes is not None else [178.0] * n, dtype=float)})


# -- the axial deviation (defect 5) -----------------------------------------------------------
def test_axial_deviation_wraps_around_north_and_the_axis():
    assert sn.axial_deviation(359.0, 1.0) == pytest.approx(2.0)
    assert sn.axial_deviation(1.0, 359.0) == pytest.approx(2.0)
    assert sn.axial_deviation(181.0, 1.0) == pytest.approx(0.0)   # same axis
    assert sn.axial_deviation(184.0, 4.0) == pytest.approx(0.0)
    assert sn.axial_deviation(91.0, 1.0) == pytest.approx(90.0)
    np.testing.assert_allclose(sn.axial_deviation([10.0, 350.0, 170.0], 0.0), [10.0, 10.0, 10.0])


def test_nodal_line_colour_uses_the_axial_deviation_not_the_raw_difference():
    """Strike 359 vs a group-average strike of 1 is a deviation of 2 deg (bin 2-4), not 358
    (the original's raw difference, which would saturate the ramp and hide the line)."""
    mechs = _mechs([359.0])
    avg = {"strike": 1.0, "dip": 85.0, "rake": 178.0}
    fig = sn.stereonet_figure(mechs, "g1", avg, colorbar=False)
    lines = _lines(fig)
    assert len(lines) == 1
    k, colors, edges = sn.deviation_colors([2.0])
    assert k.tolist() == [1]
    assert lines[0]["line"]["color"] == colors[1]
    assert lines[0]["name"] == "deviation 2–4°"
    assert fig["layout"]["meta"]["mean_strike"] == 1.0
    counts = {(lo, hi): c for lo, hi, _, c in fig["layout"]["meta"]["bins"]}
    assert counts[(2.0, 4.0)] == 1 and sum(counts.values()) == 1
    # the raw difference would have been the last (>= 20) bin
    assert sn.deviation_colors([358.0])[0].tolist() == [sn.N_BINS - 1]


def test_deviation_bins_cover_the_ramp_and_saturate():
    k, colors, edges = sn.deviation_colors([0.0, 1.99, 2.0, 19.9, 20.0, 75.0, np.nan])
    assert k.tolist() == [0, 0, 1, 9, 9, 9, 9]
    assert len(colors) == sn.N_BINS and edges[0] == 0 and edges[-1] == sn.MAX_DEVIATION
    assert len(set(colors)) == sn.N_BINS


def test_each_line_lands_in_its_bin():
    strikes = [0.5, 179.0, 185.0, 12.0, 40.0, 359.9]
    fig = sn.stereonet_figure(_mechs(strikes), "g1", {"strike": 1.0, "dip": 85.0, "rake": 178.0}, colorbar=False)
    dev = sn.axial_deviation(strikes, 1.0)   # 0.5, 2, 4, 11, 39, 1.1
    k, colors, _ = sn.deviation_colors(dev)
    for trace in _lines(fig):
        color = trace["line"]["color"]
        want = int(sum(colors[b] == color for b in k))
        assert np.isnan(_arr(trace["x"])).sum() == want   # one NaN after each line


# -- geometry -----------------------------------------------------------------------------
def test_nodal_lines_are_vectorised_and_match_the_beachball_projection():
    s = np.array([0.0, 30.0, 200.0, 90.0])
    d = np.array([90.0, 60.0, 45.0, 10.0])
    x, y = sn.nodal_lines_xy(s, d, n=21)
    assert x.shape == (4 * 22,)
    rows_x, rows_y = x.reshape(4, 22), y.reshape(4, 22)
    assert np.isnan(rows_x[:, -1]).all()
    for i in range(4):
        ex, ey = nodal_line(s[i], d[i], 21)
        np.testing.assert_allclose(rows_x[i, :-1], ex, atol=1e-12)
        np.testing.assert_allclose(rows_y[i, :-1], ey, atol=1e-12)
    # ends on the primitive circle, in the strike direction (x east, y north)
    np.testing.assert_allclose(np.hypot(rows_x[:, 0], rows_y[:, 0]), 1.0, atol=1e-9)
    np.testing.assert_allclose([rows_x[1, 0], rows_y[1, 0]], [np.sin(np.radians(30)), np.cos(np.radians(30))],
                               atol=1e-9)
    # a vertical N-S plane is the N-S diameter
    np.testing.assert_allclose(rows_x[0, :-1], 0.0, atol=1e-9)


def _true_great_circle(strike, dip, m=20001):
    """Dense projected lower half of the plane (strike, dip), computed independently of
    components.beachball: points on the plane, r = sqrt(2) sin(theta / 2) with theta the
    angle from vertical down, x east, y north."""
    s, d = np.radians(strike), np.radians(dip)
    t = np.linspace(0.0, np.pi, m)
    along = np.array([np.cos(s), np.sin(s), 0.0])                        # NED strike direction
    down_dip = np.array([np.cos(s + np.pi / 2) * np.cos(d), np.sin(s + np.pi / 2) * np.cos(d), np.sin(d)])
    v = np.cos(t)[:, None] * along + np.sin(t)[:, None] * down_dip
    theta = np.arccos(np.clip(v[:, 2], -1.0, 1.0))
    r = np.sqrt(2.0) * np.sin(theta / 2.0)
    h = np.hypot(v[:, 0], v[:, 1])
    h = np.where(h > 0, h, 1.0)
    return v[:, 1] / h * r, v[:, 0] / h * r


def _distance_to_polyline(px, py, x, y):
    """Largest distance from points (px, py) to the polyline through (x, y)."""
    ax, ay, bx, by = x[:-1], y[:-1], x[1:], y[1:]
    ux, uy = bx - ax, by - ay
    l2 = np.where(ux ** 2 + uy ** 2 > 0, ux ** 2 + uy ** 2, 1.0)
    best = np.full(px.shape, np.inf)
    for j in range(len(ax)):
        t = np.clip(((px - ax[j]) * ux[j] + (py - ay[j]) * uy[j]) / l2[j], 0.0, 1.0)
        best = np.minimum(best, np.hypot(px - ax[j] - t * ux[j], py - ay[j] - t * uy[j]))
    return best.max()


def test_adaptive_nodal_lines_stay_within_the_tolerance_of_the_true_circle():
    rng = np.random.default_rng(7)
    strikes = np.concatenate([rng.uniform(0, 360, 40), [0.0, 123.0, 250.0, 10.0, 300.0]])
    dips = np.concatenate([rng.uniform(0.5, 90, 40), [90.0, 89.9, 45.0, 1.0, 75.3]])
    x, y = sn.nodal_lines_xy(strikes, dips, None)
    cuts = np.flatnonzero(np.isnan(x))
    assert len(cuts) == len(strikes)                  # one NaN after each line, input order kept
    starts = np.concatenate([[0], cuts[:-1] + 1])
    counts = cuts - starts
    assert counts.min() >= 2 and counts.max() <= sn.LINE_POINTS
    for i, (s, d) in enumerate(zip(strikes, dips)):
        lx, ly = x[starts[i]:cuts[i]], y[starts[i]:cuts[i]]
        tx, ty = _true_great_circle(s, d)
        assert _distance_to_polyline(tx, ty, lx, ly) <= sn.LINE_TOLERANCE, (s, d, counts[i])
        # ends on the primitive circle in the strike direction, like the dense curve
        np.testing.assert_allclose([lx[0], ly[0]], [tx[0], ty[0]], atol=1e-9)
        np.testing.assert_allclose([lx[-1], ly[-1]], [tx[-1], ty[-1]], atol=1e-9)
    # steeper planes need fewer points: a vertical plane is a diameter (2 points)
    order = np.argsort(dips)
    assert counts[order[-1]] == 2 and counts[order[0]] > counts[order[-1]]
    assert counts.sum() < len(strikes) * sn.LINE_POINTS


def test_adaptive_nodal_lines_at_41_points_match_the_fixed_ones_and_refuse_ragged_rows():
    x, y = sn.nodal_lines_xy([30.0], [0.0], None)    # dip 0: the whole horizon keeps every point
    fx, fy = sn.nodal_lines_xy([30.0], [0.0])
    np.testing.assert_allclose(x, fx, equal_nan=True)
    with pytest.raises(ValueError, match="ragged"):
        sn.nodal_lines_xy([30.0], [60.0], None, flat=False)


def test_average_mechanism_and_its_pbt_axes_are_drawn_and_labelled_not_stress():
    mechs = _mechs([20.0, 25.0, 30.0, 205.0], [85.0, 88.0, 86.0, 89.0], [178.0, 176.0, -179.0, 177.0])
    avg = average_mechanism(mechs["strike"], mechs["dip"], mechs["rake"])
    fig = sn.stereonet_figure(mechs, "g2", avg)
    go.Figure(fig)  # valid for Plotly
    axes = [t for t in fig["data"] if t["name"] == "P/B/T axes of the average mechanism"]
    assert len(axes) == 1 and axes[0]["text"] == ["P", "B", "T"]
    for i, ax in enumerate("pbt"):
        x, y = project(avg[f"{ax}_trend"], avg[f"{ax}_plunge"])
        assert axes[0]["x"][i] == pytest.approx(float(x), abs=1e-4)
        assert axes[0]["y"][i] == pytest.approx(float(y), abs=1e-4)
    assert all("average mechanism" in h and "not a stress axis" in h for h in axes[0]["hovertext"])
    planes = [t for t in fig["data"] if t["name"] == "average mechanism (nodal planes)"]
    assert len(planes) == 1 and planes[0]["line"]["width"] > 2
    fills = [t for t in fig["data"] if t["name"] == "average mechanism (compressional)"]
    assert 1 <= len(fills) <= 2
    sub = fig["layout"]["title"]["subtitle"]["text"]
    assert "MT sum" in sub and "Kagan" in sub and "median" in sub and "p90" in sub
    assert f"{avg['kagan_median']:.0f}°" in sub
    assert any("axes of the average mechanism (not stress axes)" in a["text"] for a in fig["layout"]["annotations"])
    # the colour bar states the ramp
    bar = [t for t in fig["data"] if t["name"] == "colour scale"][0]
    assert bar["marker"]["cmin"] == 0 and bar["marker"]["cmax"] == sn.MAX_DEVIATION
    assert isinstance(bar["marker"]["colorscale"], list)  # explicit: plotly.js lacks some names


def test_other_group_draws_every_line_in_gold_without_average():
    mechs = _mechs([10.0, 100.0, 250.0], [30.0, 60.0, 80.0], [20.0, -90.0, 120.0])
    fig = sn.stereonet_figure(mechs, "other", None)
    lines = _line_shapes(fig, "nodal lines")
    assert len(lines) == 1 and lines[0]["line"]["color"] == sn.NO_AVERAGE_COLOR == "rgb(255,214,0)"
    assert np.isnan(_arr(lines[0]["x"])).sum() == 3
    assert not _lines(fig)
    assert not [t for t in fig["data"] if "average" in t["name"]]
    assert "no average" in fig["layout"]["title"]["subtitle"]["text"]


def test_lines_are_capped_with_a_deterministic_sample_and_say_so():
    rng = np.random.default_rng(3)
    n = sn.LINE_CAP + 300
    mechs = _mechs(rng.uniform(10, 30, n), rng.uniform(70, 90, n))
    mechs["event_id"] = [f"e{i:05d}" for i in range(n)]
    avg = {"strike": 20.0, "dip": 80.0, "rake": 178.0}
    fig = sn.stereonet_figure(mechs, "g2", avg)
    meta = fig["layout"]["meta"]
    assert meta["n"] == n and meta["drawn"] == sn.LINE_CAP
    drawn_lines = sum(int(np.isnan(_arr(t["x"])).sum()) for t in _lines(fig))
    assert drawn_lines == sn.LINE_CAP
    assert f"{sn.LINE_CAP:,} of {n:,} nodal lines drawn" in fig["layout"]["title"]["subtitle"]["text"]
    a = sn.sample_rows(mechs)
    b = sn.sample_rows(mechs.sample(frac=1.0, random_state=1))
    assert sorted(a["event_id"]) == sorted(b["event_id"])  # same events whatever the row order
    assert len(sn.sample_rows(mechs.head(10))) == 10


def test_empty_group_and_bad_rows():
    fig = sn.stereonet_figure(_mechs([]), "g3", None)
    assert fig["layout"]["meta"]["n"] == 0
    assert any("No mechanisms" in a["text"] for a in fig["layout"]["annotations"])
    go.Figure(fig)
    mechs = _mechs([10.0, np.nan], [80.0, 80.0])
    fig = sn.stereonet_figure(mechs, "g1", {"strike": 10.0, "dip": 80.0, "rake": np.nan})  # average unusable
    assert fig["layout"]["meta"]["n"] == 1
    assert _line_shapes(fig, "nodal lines")


def test_toc2me_g1_deviation_ramp_shows_the_wrapped_events(toc2me_tables):
    """Defect 5 on the real data: with the axial difference nearly every g1 line is within
    the ramp (the original's raw comparison hid 357 of 462)."""
    m = toc2me_tables["mechanisms"]
    g1 = m[(m["quality"] == "A") & (m["group"] == "g1")]
    assert len(g1) == 462
    avg = average_mechanism(g1["strike"], g1["dip"], g1["rake"])
    fig = sn.stereonet_figure(g1, "g1", avg)
    bins = fig["layout"]["meta"]["bins"]
    saturated = bins[-1][3]
    assert sum(b[3] for b in bins) == 462
    assert saturated < 40, bins
    # the original: raw strike minus the wrapped mean strike (~4 deg) saturates most lines
    legacy = legacy_mean_mechanism(g1["strike"], g1["dip"], g1["rake"])
    raw = np.abs(g1["strike"].to_numpy() - legacy["strike"])
    assert (raw >= 20).sum() > 300


def test_nodal_lines_are_one_path_per_colour_at_the_projected_points():
    """Issue 12: each colour class is one SVG path below the traces; its subpaths are the
    nodal lines of that class's events, at the points of nodal_lines_xy (to 1e-4 radius)."""
    strikes = [0.5, 179.0, 185.0, 12.0, 40.0, 359.9, 3.0]
    dips = [85.0, 60.0, 30.0, 89.0, 45.0, 10.0, 70.0]
    mechs = _mechs(strikes, dips)
    fig = sn.stereonet_figure(mechs, "g1", {"strike": 1.0, "dip": 85.0, "rake": 178.0}, colorbar=False)
    k, colors, _ = sn.deviation_colors(sn.axial_deviation(strikes, 1.0))
    shapes = _lines(fig)
    assert len(shapes) == len(set(k.tolist()))                      # one path per non-empty class
    assert all(sh["layer"] == "below" for sh in shapes)            # under the average's fills and planes
    assert not [t for t in fig["data"] if str(t.get("name", "")).startswith("deviation")]
    for sh in shapes:
        b = colors.index(sh["line"]["color"])
        sel = np.flatnonzero(k == b)
        ex, ey = sn.nodal_lines_xy(np.asarray(strikes)[sel], np.asarray(dips)[sel], None)
        assert np.isnan(sh["x"]).sum() == len(sel)
        assert len(sh["x"]) == len(ex)
        np.testing.assert_allclose(sh["x"][np.isfinite(sh["x"])], ex[np.isfinite(ex)], atol=6e-5)
        np.testing.assert_allclose(sh["y"][np.isfinite(sh["y"])], ey[np.isfinite(ey)], atol=6e-5)
        np.testing.assert_array_equal(np.isnan(sh["x"]), np.isnan(ex))   # the same lines, in order


def test_svg_path_starts_a_subpath_after_each_gap():
    assert sn.svg_path([0.0, 0.5, np.nan, np.nan, -1.0, 0.25, 1.0], [0.0, -0.5, np.nan, np.nan, 1.0, 0.125, 0.0]) == \
        "M0.0000,0.0000L0.5000,-0.5000M-1.0000,1.0000L0.2500,0.1250L1.0000,0.0000"
    assert sn.svg_path([np.nan], [np.nan]) == "" and sn.svg_path([], []) == ""
