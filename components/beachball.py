"""Beachballs as NaN-separated polygons for Plotly (pure NumPy + Plotly; no ObsPy).

Projection: lower hemisphere, equal area (Schmidt), unit radius, ``x`` east, ``y`` north.
A unit vector ``p = (north, east, down)`` with ``down >= 0`` maps to

    r = sqrt(2) sin(theta / 2) = sqrt(1 - down),   theta = angle from the downward vertical,
    (x, y) = (east, north) / sqrt(1 + down),

so straight down is the centre and horizontal vectors lie on the unit circle. Up-going
vectors are replaced by their antipode first (the P radiation pattern is even, so a ray and
its antipode have the same polarity).

Compressional regions. With fault normal ``n`` and slip ``d`` (:mod:`pipeline.mechanisms.focal`,
Aki & Richards, NED) the P radiation is ``2 (r.n)(r.d)``, so on the lower hemisphere the
compressional (T-quadrant) set is the union of two *convex* spherical polygons

    H(n) ∩ H(d) ∩ H(down)   and   H(-n) ∩ H(-d) ∩ H(down),      H(m) = {r : r.m > 0}.

Each is bounded by at most three great-circle arcs: one on each nodal plane and one on the
horizon (the primitive circle). Every arc is computed exactly in angle form on its own circle
(the intersection of two half circles), oriented with the region on its left, and the arcs
are chained by matching end points. This needs no case analysis for strike-slip, dip-slip,
vertical or horizontal planes: arcs of zero length are dropped, and empty or negligible
patches (exact spherical area below ``_MIN_AREA`` of the disc) are omitted. Each patch is
returned as its own simple, closed polygon (first point repeated), which is what
``fill='toself'`` needs on both Cartesian axes and ``Scattermap``. Samples on the primitive
circle are placed on the circumscribing polygon (radius ``1/cos(step/2)``, about 1.003 for 40
points) so that its chords never cut inside a shallow nodal arc near the rim; patches are
therefore simple at any dip and may exceed the unit circle by that fraction (the outline
circles of :func:`beachball_xy` are circumscribed the same way).

Exactly horizontal planes (dip 0) and vertical slip vectors (dip 90, rake +-90) make two
bounding circles coincide; they are nudged by ``_NUDGE_DEG`` (1e-3 deg, far below plotting
accuracy) before the construction.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from pipeline.mechanisms import focal

__all__ = [
    "project", "project_vectors", "inverse_project", "project_ray", "nodal_line",
    "compressional_patches", "beachball_xy", "beachball_traces", "magnitude_radius",
]

_NUDGE_DEG = 1e-3
_ARC_TOL = 1e-9          # radians: arcs shorter than this are dropped
_MIN_AREA = 1e-4         # fraction of the unit disc below which a patch is omitted
_DOWN = np.array([0.0, 0.0, 1.0])


# --------------------------------------------------------------------------- projection
def project_vectors(v):
    """Equal-area lower-hemisphere projection of NED vectors ``v`` (..., 3) -> (x, y).

    Vectors need not be unit length; up-going ones are flipped to their antipode.
    ``x`` is east, ``y`` north, unit circle = horizontal.
    """
    v = np.asarray(v, dtype=float)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    v = np.where(v[..., 2:3] < 0, -v, v)
    s = 1.0 / np.sqrt(1.0 + np.clip(v[..., 2], 0.0, 1.0))
    return v[..., 1] * s, v[..., 0] * s


def project(trend_deg, plunge_deg):
    """Equal-area lower-hemisphere (x east, y north) of a line given by trend/plunge, deg.

    Plunge is positive downward; a negative plunge is an up-going vector and is flipped to
    its antipode (trend + 180, -plunge). ``r = sqrt(2) sin(theta/2)``, theta = 90 - plunge.
    """
    tr = np.radians(np.asarray(trend_deg, dtype=float))
    pl = np.radians(np.asarray(plunge_deg, dtype=float))
    v = np.stack(np.broadcast_arrays(np.cos(pl) * np.cos(tr), np.cos(pl) * np.sin(tr), np.sin(pl)), axis=-1)
    return project_vectors(v)


def inverse_project(x, y):
    """Unit NED vector (..., 3) on the lower hemisphere whose projection is (x, y), r <= 1."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    r2 = np.clip(x * x + y * y, 0.0, 1.0)
    down = 1.0 - r2
    s = np.sqrt(1.0 + down)
    return np.stack(np.broadcast_arrays(y * s, x * s, down), axis=-1)


def project_ray(takeoff_deg, azimuth_deg, takeoff_from="down"):
    """Plot position (x, y) of a station on the lower-hemisphere equal-area beachball.

    ``takeoff_from`` as in :func:`pipeline.mechanisms.focal.ray_vector`. With ``'up'`` (SKHASH
    ``out_polinfo``) a takeoff < 90 is up-going: it is plotted at azimuth + 180 and
    i = takeoff from the centre; otherwise i = 180 - takeoff. ``r = sqrt(2) sin(i/2)``.
    """
    return project_vectors(focal.ray_vector(takeoff_deg, azimuth_deg, takeoff_from))


# --------------------------------------------------------------------------- geometry
def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def _lower_great_circle(normal, n):
    """Points (..., n, 3) on the lower half of the great circle perpendicular to ``normal``."""
    normal = _unit(np.asarray(normal, dtype=float))
    h = np.cross(normal, _DOWN)                     # horizontal line in the plane
    hn = np.linalg.norm(h, axis=-1, keepdims=True)
    h = np.where(hn > 1e-12, h / np.where(hn > 1e-12, hn, 1.0), np.array([1.0, 0.0, 0.0]))
    w = np.cross(normal, h)                         # steepest line in the plane
    w = np.where(w[..., 2:3] < 0, -w, w)
    # half a turn, or the whole horizon for a horizontal plane (no lower half to choose)
    t = np.linspace(0.0, np.pi, n) * np.where(hn > 1e-12, 1.0, 2.0)
    return np.cos(t)[..., None] * h[..., None, :] + np.sin(t)[..., None] * w[..., None, :]


def nodal_line(strike, dip, n=73):
    """Projected nodal great circle (lower half) of a plane: (x, y), each shape (..., n).

    Runs from the strike direction (on the primitive circle) through the dip direction to
    the opposite side. For dip 0 the plane is the horizon and the whole circle is returned.
    """
    nrm, _ = focal.normal_and_slip(strike, dip, 0.0)
    return project_vectors(_lower_great_circle(nrm, n))


def _nudged(strike, dip, rake):
    """(n, d) after moving off exact dip 0 and off vertical slip vectors."""
    strike, dip, rake = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (strike, dip, rake)))
    dip = np.where(np.abs(dip) < _NUDGE_DEG, _NUDGE_DEG, dip)
    n, d = focal.normal_and_slip(strike, dip, rake)
    vertical_slip = np.abs(d[..., 2]) > 1.0 - 1e-11
    if np.any(vertical_slip):
        n2, d2 = focal.normal_and_slip(strike, dip, rake + _NUDGE_DEG)
        n = np.where(vertical_slip[..., None], n2, n)
        d = np.where(vertical_slip[..., None], d2, d)
    return n, d


def _wrap_pi(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


def _patch_vectors(n, d, n_points):
    """Boundary points of the compressional patches on the sphere.

    ``n``, ``d``: (M, 3). Returns ``pts`` (M, 2, n_points, 3) (closed: last = first) and
    ``keep`` (M, 2) bool. Patch 0 = H(n)∩H(d)∩H(down), patch 1 = H(-n)∩H(-d)∩H(down).
    """
    m = n.shape[0]
    a = np.stack([n, -n], axis=1)                   # (M, 2, 3)
    b = np.stack([d, -d], axis=1)
    axb = np.cross(a, b)
    north = np.broadcast_to(np.array([1.0, 0.0, 0.0]), a.shape)
    east = np.broadcast_to(np.array([0.0, 1.0, 0.0]), a.shape)
    # circle k: basis (u_k, v_k) with u x v = normal_k (increasing angle keeps H(normal) on the left)
    u = np.stack([b, a, north], axis=2)             # (M, 2, 3 circles, 3)
    v = np.stack([axb, -axb, east], axis=2)
    # angles of the two other constraint normals on each circle
    zero = np.zeros(a.shape[:2])
    th_j = np.stack([zero, zero, np.arctan2(a[..., 1], a[..., 0])], axis=2)           # b on C_a, a on C_b, a on C_z
    th_l = np.stack([np.arctan2(axb[..., 2], b[..., 2]),                             # z on C_a
                     np.arctan2(-axb[..., 2], a[..., 2]),                            # z on C_b
                     np.arctan2(b[..., 1], b[..., 0])], axis=2)                      # b on C_z
    delta = _wrap_pi(th_l - th_j)
    lo = np.maximum(th_j, th_j + delta) - np.pi / 2
    hi = np.minimum(th_j, th_j + delta) + np.pi / 2
    length = np.pi - np.abs(delta)                  # (M, 2, 3)
    kept = length > _ARC_TOL

    starts = np.cos(lo)[..., None] * u + np.sin(lo)[..., None] * v  # (M, 2, 3, 3)
    ends = np.cos(hi)[..., None] * u + np.sin(hi)[..., None] * v

    def gap(i, j):
        return np.linalg.norm(ends[..., i, :] - starts[..., j, :], axis=-1)

    cost_012 = gap(0, 1) + gap(1, 2) + gap(2, 0)
    cost_021 = gap(0, 2) + gap(2, 1) + gap(1, 0)
    use_021 = kept.all(axis=-1) & (cost_021 < cost_012)
    order = np.where(use_021[..., None], np.array([0, 2, 1]), np.array([0, 1, 2]))  # (M, 2, 3)

    # points per arc: every kept arc gets >= 2 samples including both of its end points
    # (n_points - 1 in all), then the polygon is closed by repeating the first point.
    n_free = n_points - 1
    lk = np.where(kept, length, 0.0)
    n_kept = kept.sum(axis=-1)
    total = lk.sum(axis=-1)
    spare = np.maximum(n_free - 2 * n_kept, 0)
    frac = lk / np.where(total > 0, total, 1.0)[..., None]
    counts = np.where(kept, 2 + np.floor(spare[..., None] * frac).astype(int), 0)
    rem = n_free - counts.sum(axis=-1)
    longest = np.argmax(lk, axis=-1)[..., None]
    np.put_along_axis(counts, longest, np.take_along_axis(counts, longest, -1) + rem[..., None], -1)

    c_o = np.take_along_axis(counts, order, axis=-1)            # counts in chain order
    cs1 = c_o[..., 0:1]
    cs2 = cs1 + c_o[..., 1:2]
    i = np.arange(n_free)
    q = (i >= cs1).astype(int) + (i >= cs2).astype(int)         # (M, 2, n_free) chain position
    k = np.take_along_axis(order, q, axis=-1)                   # circle index of each sample
    first = np.where(q == 0, 0, np.where(q == 1, cs1, cs2))
    steps = np.take_along_axis(lk / np.maximum(counts - 1, 1), k, axis=-1)
    ang = np.take_along_axis(lo, k, axis=-1) + steps * (i - first)
    uk = np.take_along_axis(u, k[..., None], axis=2)
    vk = np.take_along_axis(v, k[..., None], axis=2)
    pts = np.cos(ang)[..., None] * uk + np.sin(ang)[..., None] * vk
    # Horizon samples go on the circumscribing polygon (vertices at 1/cos(step/2)): its
    # chords then never dip inside the unit circle, where they could cross a shallow nodal
    # arc near the rim; the patch stays simple at any dip. (Only the x/y scale matters:
    # the projection of a horizontal vector is its (east, north).)
    on_horizon = (k == 2)[..., None]
    pts = np.where(on_horizon, pts / np.cos(steps / 2)[..., None], pts)
    pts = np.concatenate([pts, pts[..., :1, :]], axis=-2)
    # exact area (Girard): 3pi/2 - angle(a, down) - angle(b, down), as a fraction of 2pi
    area = (1.5 * np.pi - np.arccos(np.clip(a[..., 2], -1, 1)) - np.arccos(np.clip(b[..., 2], -1, 1))) / (2 * np.pi)
    keep = (n_kept >= 2) & (area > _MIN_AREA)
    return pts.reshape(m, 2, n_points, 3), keep


def _to_xy_down(pts):
    """Projection of points known to be on the lower hemisphere (down >= -tiny)."""
    s = 1.0 / np.sqrt(1.0 + np.clip(pts[..., 2], 0.0, 1.0))
    return pts[..., 1] * s, pts[..., 0] * s


def _shoelace(x, y):
    return 0.5 * np.abs(np.sum(x[..., :-1] * y[..., 1:] - x[..., 1:] * y[..., :-1], axis=-1))


def _patches_xy(strikes, dips, rakes, n_points):
    """(x, y) each (M, 2, n_points) and keep (M, 2) for unit-radius balls."""
    if n_points < 8:
        raise ValueError("n_points must be >= 8")
    n, d = _nudged(strikes, dips, rakes)
    n = n.reshape(-1, 3)
    d = d.reshape(-1, 3)
    pts, keep = _patch_vectors(n, d, int(n_points))
    x, y = _to_xy_down(pts)
    return x, y, keep


def compressional_patches(strike, dip, rake, n_points=40):
    """Compressional (T-quadrant) regions of one mechanism on the unit disc.

    Returns a list (one or two items) of ``(x, y)`` arrays of ``n_points`` points each,
    every one a simple closed polygon (last point = first) in the lower-hemisphere
    equal-area projection, x east, y north. The dilatational remainder is the disc minus
    these polygons; their total area is half the disc.
    """
    x, y, keep = _patches_xy(np.atleast_1d(strike), np.atleast_1d(dip), np.atleast_1d(rake), n_points)
    return [(x[0, p].copy(), y[0, p].copy()) for p in range(2) if keep[0, p]]


# --------------------------------------------------------------------------- many balls
def _nan_join(x, y):
    """(K, L) arrays -> flat arrays with a NaN after each row."""
    pad = np.full((x.shape[0], 1), np.nan)
    return np.hstack([x, pad]).ravel(), np.hstack([y, pad]).ravel()


def beachball_xy(strikes, dips, rakes, xs, ys, radii, n_points=40, n_outline=None,
                 nodal=True, n_nodal=None):
    """NaN-separated polygon coordinates for many beachballs, in data units.

    Ball ``i`` is centred at ``(xs[i], ys[i])`` with radius ``radii[i]`` (same units as the
    axes, e.g. km; a scalar is broadcast). Returns a dict of 1-D float arrays:

    * ``fill_x``, ``fill_y``: every compressional patch of every ball as its own closed
      polygon of ``n_points`` points followed by NaN (patches of ball ``i`` before ``i+1``);
    * ``fill_ball``: the ball index of each patch (one entry per polygon);
    * ``outline_x``, ``outline_y``: one closed circle per ball (``n_outline`` points,
      default ``n_points``), NaN separated;
    * ``nodal_x``, ``nodal_y`` (if ``nodal``): both nodal lines per ball (``n_nodal`` points
      each, default ``n_points``), NaN separated.

    Mechanisms with a non-finite strike/dip/rake/position/radius are skipped (they appear
    in no array).
    """
    strikes, dips, rakes, xs, ys, radii = (np.ravel(a).astype(float) for a in
                                           np.broadcast_arrays(strikes, dips, rakes, xs, ys, radii))
    ok = np.isfinite(strikes) & np.isfinite(dips) & np.isfinite(rakes) & np.isfinite(xs) \
        & np.isfinite(ys) & np.isfinite(radii)
    idx = np.flatnonzero(ok)
    s, dp, r, cx, cy, rad = (a[ok] for a in (strikes, dips, rakes, xs, ys, radii))
    n_outline = int(n_outline or n_points)
    n_nodal = int(n_nodal or n_points)
    out = {}
    if idx.size:
        px, py, keep = _patches_xy(s, dp, r, n_points)
        fx = cx[:, None, None] + rad[:, None, None] * px
        fy = cy[:, None, None] + rad[:, None, None] * py
        out["fill_x"], out["fill_y"] = _nan_join(fx[keep], fy[keep])
        out["fill_ball"] = np.broadcast_to(idx[:, None], keep.shape)[keep]
        t = np.linspace(0.0, 2 * np.pi, n_outline)
        rim = 1.0 / np.cos(np.pi / (n_outline - 1))       # circumscribing polygon, like the patches
        ox, oy = rim * np.sin(t), rim * np.cos(t)
        ox[-1], oy[-1] = ox[0], oy[0]
        out["outline_x"], out["outline_y"] = _nan_join(cx[:, None] + rad[:, None] * ox,
                                                       cy[:, None] + rad[:, None] * oy)
        if nodal:
            nn, dd = focal.normal_and_slip(s, dp, r)
            lines = _lower_great_circle(np.stack([nn, dd], axis=1), n_nodal)  # (M, 2, n, 3)
            lx, ly = project_vectors(lines)
            lx = cx[:, None, None] + rad[:, None, None] * lx
            ly = cy[:, None, None] + rad[:, None, None] * ly
            out["nodal_x"], out["nodal_y"] = _nan_join(lx.reshape(-1, n_nodal), ly.reshape(-1, n_nodal))
    else:
        empty = np.array([], dtype=float)
        out = {"fill_x": empty, "fill_y": empty, "fill_ball": np.array([], dtype=int),
               "outline_x": empty, "outline_y": empty}
        if nodal:
            out["nodal_x"] = out["nodal_y"] = empty
    return out


def magnitude_radius(ml, km_per_degree=111.19, floor_km=0.02, scale=1.0):
    """Beachball radius in km from local magnitude ML.

    The original figure drew balls of width ``0.00087 + 0.00011 * ML`` degrees; with one
    degree of latitude = ``km_per_degree`` km this is a radius of

        radius_km = max(floor_km, scale * 0.5 * km_per_degree * (0.00087 + 0.00011 * ML))
                  = max(0.02, 0.0484 + 0.00612 * ML)        (defaults)

    i.e. 48 m at ML 0, 67 m at ML 3.2. The 20 m floor keeps tiny (ML < -4.6) events visible;
    a missing magnitude gets the floor.
    """
    ml = np.asarray(ml, dtype=float)
    r = scale * 0.5 * km_per_degree * (0.00087 + 0.00011 * ml)
    return np.where(np.isfinite(r), np.maximum(r, floor_km), floor_km)


def _fmt(v, spec):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "?"
    return "?" if not np.isfinite(f) else format(f, spec)


def beachball_traces(df, x="x_km", y="y_km", radius=None, color_by="group",
                     colors: Mapping[str, str] | None = None, *, strike="strike", dip="dip",
                     rake="rake", event_id="event_id", magnitude="magnitude", n_points=40,
                     n_outline=32, default_color="#ffd700", background="white", outline_color="black",
                     outline_width=0.5, show_nodal=False, nodal_color="black",
                     marker_size=8, float32=True, legend=True, name_prefix=""):
    """Plotly Scatter traces drawing the mechanisms of ``df`` as beachballs.

    ``radius``: a column name, a scalar or array in the units of ``x``/``y``, or None for
    :func:`magnitude_radius` of the ``magnitude`` column. Balls are grouped by the value of
    ``color_by`` (``colors`` maps a value to a CSS colour, others get ``default_color``; if
    ``color_by`` is None all balls get ``default_color``).

    Trace order (drawing order): one background trace (filled circles in ``background`` with
    the ``outline_color`` edge, so dilatational quadrants show the background), one filled
    trace of compressional patches per colour group (legend entry = group value), optionally
    one nodal-line trace, and last an invisible marker trace at the ball centres carrying the
    hover text and ``customdata[i][0] = event_id`` for click routing (polygon traces have
    ``hoverinfo='skip'``). An empty ``df`` gives ``[]``.
    """
    import plotly.graph_objects as go

    if df is None or len(df) == 0:
        return []
    colors = dict(colors or {})
    if radius is None:
        rad = magnitude_radius(df[magnitude].to_numpy(dtype=float)) if magnitude in df else \
            np.full(len(df), float(magnitude_radius(np.nan)))
    elif isinstance(radius, str):
        rad = df[radius].to_numpy(dtype=float)
    else:
        rad = np.broadcast_to(np.asarray(radius, dtype=float), (len(df),))
    sx, sy = df[x].to_numpy(dtype=float), df[y].to_numpy(dtype=float)
    st, dp, rk = (df[c].to_numpy(dtype=float) for c in (strike, dip, rake))
    dtype = np.float32 if float32 else np.float64
    traces = []

    def cast(a):
        return np.asarray(a, dtype=dtype)

    everything = beachball_xy(st, dp, rk, sx, sy, rad, n_points=n_points, n_outline=n_outline,
                              nodal=show_nodal)
    traces.append(go.Scatter(
        x=cast(everything["outline_x"]), y=cast(everything["outline_y"]), mode="lines",
        fill="toself", fillcolor=background, line=dict(color=outline_color, width=outline_width),
        hoverinfo="skip", showlegend=False, name=f"{name_prefix}beachball outline"))

    groups = df[color_by].astype("string").fillna("") .to_numpy() if color_by and color_by in df \
        else np.full(len(df), "", dtype=object)
    ball_group = groups[everything["fill_ball"]]
    fill_x = everything["fill_x"].reshape(-1, n_points + 1)
    fill_y = everything["fill_y"].reshape(-1, n_points + 1)
    for g in sorted(set(groups.tolist()), key=str):
        sel = ball_group == g
        if not sel.any():
            continue
        col = colors.get(g, default_color)
        traces.append(go.Scatter(
            x=cast(fill_x[sel].ravel()), y=cast(fill_y[sel].ravel()), mode="lines", fill="toself",
            fillcolor=col, line=dict(color=col, width=0), hoverinfo="skip",
            name=f"{name_prefix}{g}" if g else f"{name_prefix}mechanisms",
            legendgroup=f"{name_prefix}{g}", showlegend=bool(legend)))
    if show_nodal:
        traces.append(go.Scatter(
            x=cast(everything["nodal_x"]), y=cast(everything["nodal_y"]), mode="lines",
            line=dict(color=nodal_color, width=outline_width), hoverinfo="skip", showlegend=False,
            name=f"{name_prefix}nodal planes"))

    ids = df[event_id].astype(str).to_numpy() if event_id in df else np.arange(len(df)).astype(str)
    mags = df[magnitude].to_numpy() if magnitude in df else np.full(len(df), np.nan)
    text = [f"{e}<br>strike/dip/rake {_fmt(a, '.1f')}/{_fmt(b, '.1f')}/{_fmt(c, '.1f')}"
            f"<br>ML {_fmt(m, '.2f')}" + (f"<br>{color_by} {g}" if color_by and g else "")
            for e, a, b, c, m, g in zip(ids, st, dp, rk, mags, groups)]
    traces.append(go.Scatter(
        x=sx, y=sy, mode="markers", marker=dict(size=marker_size, color="rgba(0,0,0,0)"),
        customdata=np.asarray(ids, dtype=object)[:, None], hovertext=text, hoverinfo="text",
        showlegend=False, name=f"{name_prefix}beachball hover"))
    return traces
