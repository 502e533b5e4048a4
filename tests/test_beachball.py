"""Beachball geometry checked against the sign of the P radiation pattern (pyrocko style).

The polygons are built from great-circle arcs (components.beachball); the independent check
inverse-projects sample points of the unit disc to rays and compares "inside a compressional
polygon" (even-odd rule, own implementation) with ``pipeline.mechanisms.focal.p_radiation > 0``, for
textbook mechanisms, critical angles and a seeded fuzz.
"""
import itertools

import numpy as np
import pandas as pd
import pytest

from components import beachball as bb
from pipeline.mechanisms import focal

RNG = np.random.default_rng(20161125)
FUZZ = [tuple(v) for v in np.column_stack([RNG.uniform(0, 360, 200), RNG.uniform(0, 90, 200),
                                           RNG.uniform(-180, 180, 200)])]
TEXTBOOK = {
    "strike-slip": (0, 90, 0), "strike-slip-180": (30, 90, 180), "normal": (0, 45, -90),
    "reverse": (0, 45, 90), "thrust-shallow": (120, 20, 90), "oblique": (30, 60, -120),
    "oblique-reverse": (10, 50, 45), "demo-event": (203, 88, 177),
}
CRITICAL = list(itertools.product([0, 45, 360], [0, 0.001, 1, 30, 45, 89.999, 90],
                                  [0, 90, -90, 180, -180, 45, -135]))
ALL = list(TEXTBOOK.values()) + CRITICAL + FUZZ


def _inside(px, py, polys):
    """Even-odd point-in-polygon over the union of closed polygons (x, y)."""
    px = np.asarray(px)[:, None]
    py = np.asarray(py)[:, None]
    odd = np.zeros(px.shape[0], dtype=bool)
    for x, y in polys:
        x0, x1, y0, y1 = x[None, :-1], x[None, 1:], y[None, :-1], y[None, 1:]
        straddle = (y0 > py) != (y1 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            xc = x0 + (py - y0) * (x1 - x0) / (y1 - y0)
        odd ^= (np.count_nonzero(straddle & (px < xc), axis=1) % 2).astype(bool)
    return odd


def _polar_grid(n_r=24, n_az=72):
    r = np.linspace(0.02, 0.999, n_r)
    az = np.radians(np.arange(n_az) * 360.0 / n_az + 1.234)
    rr, aa = np.meshgrid(r, az)
    return (rr * np.sin(aa)).ravel(), (rr * np.cos(aa)).ravel()


GX, GY = _polar_grid()
RAYS = bb.inverse_project(GX, GY)


def _check_sign(sdr, n_points, tol_deg):
    polys = bb.compressional_patches(*sdr, n_points=n_points)
    n, d = focal.normal_and_slip(*sdr)
    far = (np.abs(RAYS @ n) > np.sin(np.radians(tol_deg))) & (np.abs(RAYS @ d) > np.sin(np.radians(tol_deg)))
    expected = focal.p_radiation(*sdr, RAYS[far]) > 0
    got = _inside(GX[far], GY[far], polys)
    bad = np.flatnonzero(got != expected)
    assert bad.size == 0, f"{sdr}: {bad.size} of {far.sum()} sample points misclassified"
    return far.sum()


# --------------------------------------------------------------------------- projection
def test_project_known_points():
    assert np.allclose(bb.project(123, 90), (0, 0), atol=1e-12)           # straight down: centre
    for trend in (0, 37, 90, 250):
        x, y = bb.project(trend, 0)                                         # horizontal: rim
        assert np.isclose(np.hypot(x, y), 1.0)
        assert np.isclose(np.degrees(np.arctan2(x, y)) % 360, trend)       # x east, y north
    x, y = bb.project(90, 30)                                               # theta = 60
    assert np.allclose((x, y), (np.sqrt(2) * np.sin(np.radians(30)), 0))
    assert np.allclose(bb.project(45, -30), bb.project(225, 30))            # up-going: antipode
    assert np.allclose(bb.project(45, -90), (0, 0), atol=1e-12)


def test_inverse_project_round_trip():
    v = bb.inverse_project(GX, GY)
    assert np.allclose(np.linalg.norm(v, axis=-1), 1)
    assert np.all(v[:, 2] >= 0)
    assert np.allclose(bb.project_vectors(v), (GX, GY))


@pytest.mark.parametrize("takeoff, az, frm, expected", [
    (30, 0, "up", (0.0, -np.sqrt(2) * np.sin(np.radians(15)))),    # up-going: az+180, i = 30
    (120, 90, "up", (np.sqrt(2) * np.sin(np.radians(30)), 0.0)),    # down-going: i = 180-120
    (60, 90, "down", (np.sqrt(2) * np.sin(np.radians(30)), 0.0)),
    (150, 0, "down", (0.0, -np.sqrt(2) * np.sin(np.radians(15)))),  # up-going in 'down' convention
    (0, 77, "down", (0.0, 0.0)),
    (90, 45, "up", (np.sin(np.radians(45)), np.cos(np.radians(45)))),
])
def test_project_ray_known_answers(takeoff, az, frm, expected):
    assert np.allclose(bb.project_ray(takeoff, az, frm), expected, atol=1e-12)


def test_project_ray_matches_analyses_formula():
    """analyses.md 1.9: takeoff<90 (SKHASH, up-going) -> az+180, i=takeoff; else i=180-takeoff."""
    tk, az = np.meshgrid(np.linspace(0.5, 179.5, 37), np.linspace(0, 359, 41))
    az2 = np.where(tk < 90, az + 180, az)
    i = np.where(tk < 90, tk, 180 - tk)
    r = np.sqrt(2) * np.sin(np.radians(i) / 2)
    x, y = bb.project_ray(tk, az, "up")
    assert np.allclose(x, r * np.sin(np.radians(az2)))
    assert np.allclose(y, r * np.cos(np.radians(az2)))


def test_station_polarity_matches_patch():
    """A station plotted at project_ray lies in a compressional patch iff its ray is compressional."""
    sdr = (203, 88, 177)
    tk, az = np.meshgrid(np.linspace(3, 177, 30), np.linspace(0, 355, 36))
    tk, az = tk.ravel(), az.ravel()
    ray = focal.ray_vector(tk, az, "up")
    amp = focal.p_radiation(*sdr, ray)
    n, d = focal.normal_and_slip(*sdr)
    far = (np.abs(ray @ n) > 0.03) & (np.abs(ray @ d) > 0.03)
    x, y = bb.project_ray(tk[far], az[far], "up")
    assert np.array_equal(_inside(x, y, bb.compressional_patches(*sdr)), amp[far] > 0)


# --------------------------------------------------------------------------- patches vs radiation
@pytest.mark.parametrize("name", list(TEXTBOOK))
def test_textbook_mechanisms(name):
    assert _check_sign(TEXTBOOK[name], 40, 1.5) > 1000


def test_patch_counts_of_textbook_mechanisms():
    assert len(bb.compressional_patches(0, 90, 0)) == 2       # strike-slip: two opposite quadrants
    assert len(bb.compressional_patches(0, 45, -90)) == 2     # normal: two side lunes
    assert len(bb.compressional_patches(0, 45, 90)) == 1      # reverse: one central band
    # normal fault: centre dilatational; reverse: centre compressional
    assert not _inside([0.0], [0.0], bb.compressional_patches(0, 45, -90))[0]
    assert _inside([0.0], [0.0], bb.compressional_patches(0, 45, 90))[0]


@pytest.mark.parametrize("sdr", CRITICAL, ids=lambda s: "/".join(map(str, s)))
def test_critical_angles(sdr):
    _check_sign(sdr, 40, 1.5)


def test_fuzz_default_resolution():
    for sdr in FUZZ:
        _check_sign(sdr, 40, 1.5)


def test_fuzz_high_resolution_is_exact():
    for sdr in FUZZ[:60] + CRITICAL[::5]:
        _check_sign(sdr, 400, 0.15)


def test_strike_360_equals_strike_0():
    for dip, rake in [(60, -30), (90, 0), (45, 90)]:
        a = bb.compressional_patches(0, dip, rake)
        b = bb.compressional_patches(360, dip, rake)
        assert len(a) == len(b)
        for (xa, ya), (xb, yb) in zip(a, b):
            assert np.allclose(xa, xb, atol=1e-9) and np.allclose(ya, yb, atol=1e-9)


def test_p_dilatational_t_compressional():
    for sdr in ALL:
        ax = focal.pbt_axes(*sdr)
        polys = bb.compressional_patches(*sdr)
        px, py = bb.project(*ax["p"])
        tx, ty = bb.project(*ax["t"])
        assert not _inside([px], [py], polys)[0], sdr
        assert _inside([tx], [ty], polys)[0], sdr


def test_nodal_lines_pass_through_b_axis():
    for sdr in ALL:
        bx, by = bb.project(*focal.pbt_axes(*sdr)["b"])
        s2, d2, _ = focal.auxiliary_plane(*sdr)
        for s, dp in ((sdr[0], sdr[1]), (s2, d2)):
            x, y = bb.nodal_line(s, dp, n=2001)
            assert np.min(np.hypot(x - bx, y - by)) < 2e-3, (sdr, s, dp)


def test_nodal_line_ends_on_rim_and_is_lower_hemisphere():
    x, y = bb.nodal_line(30, 60, n=181)
    r = np.hypot(x, y)
    assert np.isclose(r[0], 1) and np.isclose(r[-1], 1) and np.all(r <= 1 + 1e-12)
    assert np.allclose((x[0], y[0]), (np.sin(np.radians(30)), np.cos(np.radians(30))))
    # dip direction (120 deg) at plunge 60 is on the line
    px, py = bb.project(120, 60)
    assert np.min(np.hypot(x - px, y - py)) < 1e-9
    x, y = bb.nodal_line(0, 90)                                 # vertical plane: a diameter
    assert np.allclose(x, 0, atol=1e-12)


def test_compressional_area_is_half_the_disc():
    for sdr in ALL:
        area = sum(bb._shoelace(x, y) for x, y in bb.compressional_patches(*sdr)) / np.pi
        assert abs(area - 0.5) < 0.01, (sdr, area)
    for sdr in FUZZ[:40]:
        area = sum(bb._shoelace(x, y) for x, y in bb.compressional_patches(*sdr, n_points=400)) / np.pi
        assert abs(area - 0.5) < 1e-3, (sdr, area)


def _segments_cross(x, y):
    """True if two non-adjacent edges of the closed polygon (x, y) properly intersect."""
    keep = np.r_[True, np.hypot(np.diff(x), np.diff(y)) > 1e-9]   # arcs share end points
    x, y = x[keep], y[keep]
    p = np.column_stack([x[:-1], y[:-1]])
    q = np.column_stack([x[1:], y[1:]])
    n = len(p)

    def orient(a, b, c):
        return np.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                       - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))

    A, B = p[:, None], q[:, None]
    C, D = p[None, :], q[None, :]
    cross = (orient(A, B, C) * orient(A, B, D) < 0) & (orient(C, D, A) * orient(C, D, B) < 0)
    i, j = np.triu_indices(n, 2)
    nonadjacent = ~((i == 0) & (j == n - 1))
    return bool(np.any(cross[i[nonadjacent], j[nonadjacent]]))


def test_patches_are_simple_closed_and_inside_ball():
    shallow = [(s, dp, r) for s in (0, 77) for dp in (0.01, 0.3, 1, 2, 5, 10) for r in (-150, -90, 0, 60, 90)]
    for sdr in ALL + shallow:
        for n_points in (40, 13):
            for x, y in bb.compressional_patches(*sdr, n_points=n_points):
                assert len(x) == n_points and x[0] == x[-1] and y[0] == y[-1]
                assert np.all(np.isfinite(x)) and np.all(np.isfinite(y))
                assert np.all(np.hypot(x, y) < 1 + 0.02 * (40 / n_points) ** 2)
                assert not _segments_cross(x, y), (sdr, n_points)


# --------------------------------------------------------------------------- many balls
def test_beachball_xy_layout_translation_and_scale():
    s, d, r = np.array([10, 0, 0, 120.0]), np.array([50, 45, 45, 20.0]), np.array([45, -90, 90, 90.0])
    xs, ys, rad = np.array([1.0, -2, 3, 0]), np.array([5.0, 0, -1, 7]), np.array([0.1, 2, 0.5, 1])
    out = bb.beachball_xy(s, d, r, xs, ys, rad, n_points=40, n_outline=33, n_nodal=21)
    per_ball = [bb.compressional_patches(*m) for m in zip(s, d, r)]
    n_patches = sum(len(p) for p in per_ball)
    assert out["fill_x"].shape == out["fill_y"].shape == (n_patches * 41,)
    assert np.all(np.isnan(out["fill_x"][40::41])) and np.isnan(out["fill_x"]).sum() == n_patches
    assert list(out["fill_ball"]) == [i for i, p in enumerate(per_ball) for _ in p]
    fx, fy = out["fill_x"].reshape(-1, 41)[:, :40], out["fill_y"].reshape(-1, 41)[:, :40]
    k = 0
    for i, patches in enumerate(per_ball):
        for ux, uy in patches:
            assert np.allclose(fx[k], xs[i] + rad[i] * ux) and np.allclose(fy[k], ys[i] + rad[i] * uy)
            k += 1
    assert out["outline_x"].shape == (4 * 34,) and np.isnan(out["outline_x"]).sum() == 4
    ox, oy = out["outline_x"].reshape(4, 34)[:, :33], out["outline_y"].reshape(4, 34)[:, :33]
    dist = np.hypot(ox - xs[:, None], oy - ys[:, None]) / rad[:, None]
    assert np.allclose(dist, dist[0, 0]) and 1 <= dist[0, 0] < 1.01
    assert out["nodal_x"].shape == (8 * 22,) and np.isnan(out["nodal_x"]).sum() == 8
    nx = out["nodal_x"].reshape(4, 2, 22)[:, :, :21]
    ny = out["nodal_y"].reshape(4, 2, 22)[:, :, :21]
    ux, uy = bb.nodal_line(s[0], d[0], n=21)
    assert np.allclose(nx[0, 0], xs[0] + rad[0] * ux) and np.allclose(ny[0, 0], ys[0] + rad[0] * uy)
    assert np.all(np.hypot(nx - xs[:, None, None], ny - ys[:, None, None]) <= rad[:, None, None] * (1 + 1e-9))


def test_beachball_xy_skips_non_finite_and_handles_empty():
    out = bb.beachball_xy([10, np.nan, 30], [40, 50, 60], [0, 0, 90], [0, 1, 2], [0, 0, 0], 0.5)
    assert set(out["fill_ball"]) == {0, 2}
    assert np.isnan(out["outline_x"]).sum() == 2
    empty = bb.beachball_xy([], [], [], [], [], [])
    assert all(v.size == 0 for v in empty.values())


def test_beachball_xy_many_balls():
    # speed is measured in bench/bench_map.py, not asserted here
    rng = np.random.default_rng(1)
    m = 2500
    args = (rng.uniform(0, 360, m), rng.uniform(0, 90, m), rng.uniform(-180, 180, m),
            rng.uniform(-2, 2, m), rng.uniform(-2, 2, m), rng.uniform(0.03, 0.07, m))
    out = bb.beachball_xy(*args)
    assert out["fill_ball"].size >= m
    assert set(np.unique(out["fill_ball"])) == set(range(m))


# --------------------------------------------------------------------------- traces
def _df():
    return pd.DataFrame({
        "event_id": ["e1", "e2", "e3", "e4"], "x_km": [0.0, 1.0, 2.0, 3.0], "y_km": [0.0, 0.5, 1.0, 1.5],
        "strike": [10.0, 200.0, 30.0, 120.0], "dip": [80.0, 88.0, 45.0, 20.0],
        "rake": [170.0, -175.0, 90.0, -90.0], "magnitude": [-1.0, 0.5, np.nan, 2.0],
        "group": ["g1", "g1", "g3", None],
    })


def test_beachball_traces_structure():
    df = _df()
    traces = bb.beachball_traces(df, colors={"g1": "red", "g3": "green"}, show_nodal=True)
    names = [t.name for t in traces]
    assert names[0] == "beachball outline" and traces[0].fill == "toself" and traces[0].fillcolor == "white"
    fills = [t for t in traces[1:-1] if t.fill == "toself"]
    assert {t.name for t in fills} == {"g1", "g3", "mechanisms"}
    assert {t.name: t.fillcolor for t in fills}["g1"] == "red"
    assert {t.name: t.fillcolor for t in fills}["mechanisms"] == "#ffd700"
    assert any(t.name == "nodal planes" for t in traces)
    hover = traces[-1]
    assert hover.mode == "markers" and len(hover.x) == 4
    assert [c[0] for c in hover.customdata] == ["e1", "e2", "e3", "e4"]
    assert "e2" in hover.hovertext[1] and "200.0/88.0/-175.0" in hover.hovertext[1]
    assert "ML ?" in hover.hovertext[2]
    for t in traces[:-1]:
        assert t.hoverinfo == "skip"
    # g1 fill = patches of balls 0 and 1 only, placed within their (magnitude) radius
    g1 = next(t for t in fills if t.name == "g1")
    pts = np.column_stack([np.asarray(g1.x, float), np.asarray(g1.y, float)])
    pts = pts[~np.isnan(pts[:, 0])]
    rad = bb.magnitude_radius(df["magnitude"].to_numpy())
    d0 = np.hypot(pts[:, 0] - 0.0, pts[:, 1] - 0.0) <= rad[0] * 1.01
    d1 = np.hypot(pts[:, 0] - 1.0, pts[:, 1] - 0.5) <= rad[1] * 1.01
    assert np.all(d0 | d1) and d0.any() and d1.any()


def test_beachball_traces_radius_options_and_empty():
    df = _df()
    t_scalar = bb.beachball_traces(df, radius=0.2, color_by=None)
    assert len(t_scalar) == 3
    ox = np.asarray(t_scalar[0].x, float).reshape(4, -1)[:, :-1]
    oy = np.asarray(t_scalar[0].y, float).reshape(4, -1)[:, :-1]
    assert np.allclose(np.hypot(ox - df.x_km.to_numpy()[:, None], oy - df.y_km.to_numpy()[:, None]), 0.2, rtol=0.01)
    df["r"] = [0.1, 0.2, 0.3, 0.4]
    assert len(bb.beachball_traces(df, radius="r")) == 5
    assert bb.beachball_traces(df.iloc[:0]) == []
    assert bb.beachball_traces(None) == []


def test_magnitude_radius():
    ml = np.array([-6.0, -1.45, 0.0, 3.21])
    r = bb.magnitude_radius(ml)
    assert np.all(np.diff(r) > 0)
    assert r[0] == pytest.approx(0.02)                                   # floor keeps tiny events visible
    assert r[2] == pytest.approx(0.5 * 111.19 * 0.00087)                 # original width at ML 0, halved
    assert r[3] == pytest.approx(0.5 * 111.19 * (0.00087 + 0.00011 * 3.21))
    assert bb.magnitude_radius(np.nan) == pytest.approx(0.02)
