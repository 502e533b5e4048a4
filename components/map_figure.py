"""The map of the map page, as a pure function of DataFrames (no Dash, no DuckDB).

Two views:

* ``km`` (default): local east/north km (``x_km``/``y_km``) with true aspect
  (``scaleanchor``), the frame of analyses.md section 5 (no east-west stretch);
* ``geo``: longitude/latitude degrees on plain Cartesian axes with the aspect ratio
  1/cos(lat0), so shapes are not stretched either; works offline (no map tiles).

Layers, bottom to top: well paths (lines, labels at the toes) and stage markers (SVG),
catalogue events (``scattergl``, colours computed here, with their colour bar drawn by a
point-less trace), beachballs (``scattergl`` too, so they draw above the
WebGL events: Plotly always draws WebGL traces above SVG ones), stations (triangles) and
last the highlight ring of the selected mechanism.

The figure is a plain ``dict`` (``{"data": [...], "layout": {...}}``; ``go.Figure(fig)``
turns it into a graph object) whose numeric arrays are already Plotly typed-array specs
(``{"dtype": "f4", "bdata": <base64>}``): building and serialising a 20,000-point,
3,000-ball map this way takes tens of ms instead of hundreds (graph-object validation,
deep copies and list conversion dominate otherwise). ``layout.meta`` records the trace
indices the page needs: ``highlight`` (the ring), ``balls`` (the marker trace at the ball
centres, dots and hover targets, whose ``customdata[i][0]`` is the event id), and ``view``.

Beachball geometry comes from :func:`components.beachball.beachball_xy` (exact
compressional patches); the unit-ball patches of each (strike, dip, rake) are memoised, so
a filter change only scales and translates them.
"""
from __future__ import annotations

import base64
import math
import threading

import numpy as np
import pandas as pd

from .beachball import beachball_xy, magnitude_radius

#: group colours of the original study (analyses.md 1.1)
GROUP_COLORS = {
    "g1": "rgb(255,0,0)",
    "g2": "rgb(0,204,255)",
    "g3": "rgb(0,204,0)",
    "g4": "rgb(255,179,0)",
    "other": "rgb(255,214,0)",
}
#: events without a mechanism / balls of an unknown group
NONE_COLOR = "rgb(140,140,140)"
UNKNOWN_GROUP_COLOR = "#ffd700"
WELL_COLOR = "#3b3b3b"
STATION_COLOR = "#111111"
HIGHLIGHT_COLOR = "#d6008f"

#: points per compressional patch: fewer for many balls (each ball is a few pixels wide)
BALL_POINTS_FEW, BALL_POINTS_MANY, MANY_BALLS = 40, 24, 800
#: level of detail (issue 12): at most this many balls are drawn as beachball polygons, the
#: largest ML in the visible range; the others are group-coloured dots until a zoom brings
#: them among the largest in view. WebGL polygon fills cost ~3 ms per ball in headless
#: Chromium (2,519 ToC2ME balls: ~8 s of a 9.6 s draw), dots almost nothing.
MAX_BALL_POLYGONS = 250
#: the balls' black edge (issue 12): a filled ring EDGE_PX wide outside each ball, at the scale
#: of the drawn range in a plot area of PLOT_PX (the map's at a 1400 x 900 window). A WebGL
#: line pass (the ``rect`` join of plotly.js's line shader) cost ~0.2-0.3 s of the cold draw
#: in headless Chromium, a second fill almost nothing; a zoom's answer (``pages.map.zoom_detail``)
#: redraws the ring for the new range, a wider window draws it proportionally wider.
EDGE_PX = 0.7
PLOT_PX = (814, 425)

#: px plotly.js's modebar (shown on hover, at a graph's top right: a 24 px bar 2 px down from
#: the top, measured in Chromium) and a 4 px gap take: a figure keeps at least this much top
#: margin above its plot area, its subplot titles or its top legend, so that the modebar
#: covers none of them (clicking through the pages found it over data, titles and a legend entry)
MODEBAR_PX = 30
#: top margin (px) of a figure whose horizontal legend (11 px font, one row: ~20 px) sits above
#: the plot: the legend's row under the modebar (a legend wrapped to more rows, in a narrow
#: window, still reaches up to it)
TOP_LEGEND_PX = MODEBAR_PX + 22

#: a minimal template (a named template costs tens of ms to validate per figure)
_TEMPLATE = {"layout": {
    "paper_bgcolor": "white", "plot_bgcolor": "white",
    "font": {"family": "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", "size": 12,
             "color": "#212529"},
    "hoverlabel": {"font": {"size": 12}},
}}
#: the axis style of the figures (spread it: ``{**_AXIS, "title": ...}``)
_AXIS = {"showline": True, "mirror": True, "linecolor": "#adb5bd", "ticks": "outside", "tickcolor": "#adb5bd",
         "showgrid": True, "gridcolor": "#eceff1", "zeroline": False}

def _explicit(name: str) -> list:
    """A named scale as explicit [[fraction, colour], ...]: plotly.js knows fewer names than
    plotly.py (no 'Plasma'), and an unknown name silently falls back to the default."""
    from plotly.colors import get_colorscale
    return [list(x) for x in get_colorscale(name)]


_COLORSCALES = {
    "time": (_explicit("Viridis"), "Time (UTC)"),
    "depth": (_explicit("Cividis"), "Depth (km)"),
    "magnitude": (_explicit("Plasma"), "ML"),
}


def group_color(group: str) -> str:
    return GROUP_COLORS.get(group, NONE_COLOR)


def typed(a, dtype="f4") -> dict:
    """A Plotly typed-array spec (base64) of ``a`` as ``dtype`` (``f4``, ``f8``, ``i4``)."""
    arr = np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": dtype, "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


def _xy(df: pd.DataFrame, view: str):
    if view == "geo":
        return df["lon"].to_numpy(dtype=float), df["lat"].to_numpy(dtype=float)
    return df["x_km"].to_numpy(dtype=float), df["y_km"].to_numpy(dtype=float)


def _coord_dtype(view: str) -> str:
    return "f8" if view == "geo" else "f4"  # degrees need float64 (f4 ~ 0.5 m at 117 deg)


def _km_to_geo(x, y, origin):
    from pipeline.geo import to_geographic

    lat, lon = to_geographic(np.asarray(x, dtype=float), np.asarray(y, dtype=float), origin)
    return lon, lat


def _time_ticks(t: np.ndarray, n: int = 5):
    """Colour-bar ticks for epoch seconds ``t``: (tickvals, ticktext)."""
    lo, hi = float(np.nanmin(t)), float(np.nanmax(t))
    if not math.isfinite(lo) or hi <= lo:
        return [lo], [pd.Timestamp(lo, unit="s").strftime("%Y-%m-%d %H:%M")]
    vals = np.linspace(lo, hi, n)
    fmt = "%b %d" if hi - lo > 3 * 86400 else "%b %d %H:%M"
    return vals.tolist(), [pd.Timestamp(v, unit="s").strftime(fmt) for v in vals]


# -- events ------------------------------------------------------------------------------------
def event_traces(events: pd.DataFrame, color_by: str = "time", view: str = "km",
                 marker_size: float = 4.0) -> list[dict]:
    """``scattergl`` trace(s) of the catalogue events: one per group when
    ``color_by='group'``, else one whose colours are computed here (:func:`scale_colors`)
    followed by the point-less ``scatter`` trace that draws its colour bar. ``events``
    needs ``event_id, time, x_km, y_km`` (``lon, lat`` for ``geo``), ``magnitude``,
    and ``depth_km`` / ``group`` to colour by them."""
    if events is None or len(events) == 0:
        return [{"type": "scattergl", "x": [], "y": [], "mode": "markers", "name": "events", "showlegend": False}]
    x, y = _xy(events, view)
    cd = _coord_dtype(view)
    ids = events["event_id"].astype(str).to_numpy(dtype=object)
    mag = events["magnitude"].to_numpy(dtype=float)
    common = {"type": "scattergl", "mode": "markers",
              "hovertemplate": "%{text}<br>ML %{customdata:.2f}<extra>event</extra>"}
    if color_by == "group":
        groups = events["group"].fillna("none").astype(str).to_numpy(dtype=object)
        present = set(groups.tolist())
        order = ["none"] + list(GROUP_COLORS) + sorted(present - set(GROUP_COLORS) - {"none"})
        traces = []
        for g in order:
            if g not in present:
                continue
            sel = groups == g
            none = g == "none"
            traces.append({
                **common, "x": typed(x[sel], cd), "y": typed(y[sel], cd), "text": ids[sel].tolist(),
                "customdata": typed(mag[sel]), "name": "events (no mechanism)" if none else f"events ({g})",
                # one legend entry per group: the balls' entry toggles the group's events too
                "legendgroup": f"group-{g}", "showlegend": none,
                "marker": {"size": marker_size - (0.5 if none else 0), "color": group_color(g),
                           "opacity": 0.35 if none else 0.75}})
        return traces
    if color_by == "time":
        c = events["time"].to_numpy(dtype="datetime64[us]").astype(np.int64) / 1e6
        tickvals, ticktext = _time_ticks(c)
        colorbar = {"tickvals": tickvals, "ticktext": ticktext}
        scale, title = _COLORSCALES["time"]
    else:
        color_by = color_by if color_by in _COLORSCALES else "magnitude"
        c = events["depth_km" if color_by == "depth" else "magnitude"].to_numpy(dtype=float)
        colorbar = {}
        scale, title = _COLORSCALES[color_by]
    colorbar.update(title={"text": title, "side": "right"}, thickness=12, len=0.75)
    reverse = color_by == "depth"
    colors, cmin, cmax = scale_colors(c, scale, reverse)
    # the colours are computed here, not by plotly.js: mapping 21,619 values through a
    # colorscale in the browser cost ~0.3-0.5 s of the map's draw (issue 12); the colour bar
    # is drawn by a point-less SVG trace of the same scale and range, in the events' legend
    # group so that hiding the events hides their colour bar too, as before
    return [{
        **common, "x": typed(x, cd), "y": typed(y, cd), "text": ids.tolist(), "customdata": typed(mag),
        "name": "events", "legendgroup": "events",
        "marker": {"size": marker_size, "color": colors, "opacity": 0.6}},
        {"type": "scatter", "x": [None], "y": [None], "mode": "markers", "name": "events colour bar",
         "legendgroup": "events", "showlegend": False, "hoverinfo": "skip",
         "marker": {"color": [cmin], "cmin": cmin, "cmax": cmax, "colorscale": scale, "reversescale": reverse,
                    "colorbar": colorbar, "showscale": True}}]


#: what plotly.js draws for a missing value on a colour scale (its ``defaultLine``)
MISSING_VALUE_COLOR = "#444444"


def scale_colors(values, scale: list, reverse: bool = False, levels: int = 256):
    """``(colours, cmin, cmax)``: each of ``values`` as a ``#rrggbb`` colour of ``scale``
    (explicit ``[[fraction, colour], ...]``, colours ``#rrggbb`` or ``rgb(r, g, b)``) over
    the values' finite range, as plotly.js maps them (linear in RGB between the stops,
    ``reverse`` = its ``reversescale``; a missing value gets :data:`MISSING_VALUE_COLOR`).
    The range is cut into ``levels`` equal steps (256: one step moves a channel by at most
    a few units of 255, below what an eye tells apart), which keeps the strings few."""
    from plotly.colors import hex_to_rgb, unlabel_rgb

    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if not ok.any():
        return [MISSING_VALUE_COLOR] * len(v), 0.0, 1.0
    cmin, cmax = float(v[ok].min()), float(v[ok].max())
    stops = np.array([float(f) for f, _ in scale])
    rgb = np.array([hex_to_rgb(col) if col.startswith("#") else unlabel_rgb(col) for _, col in scale], dtype=float)
    if reverse:
        stops, rgb = 1.0 - stops[::-1], rgb[::-1]
    frac = np.linspace(0.0, 1.0, levels)
    lut = np.array([MISSING_VALUE_COLOR] + [
        "#%02x%02x%02x" % tuple(int(round(ch)) for ch in px)
        for px in np.column_stack([np.interp(frac, stops, rgb[:, k]) for k in range(3)])], dtype=object)
    span = cmax - cmin
    level = np.zeros(len(v), dtype=np.int64)  # 0 = missing
    rel = (v[ok] - cmin) / span if span > 0 else np.full(int(ok.sum()), 0.5)
    level[ok] = 1 + np.clip(np.rint(rel * (levels - 1)), 0, levels - 1).astype(np.int64)
    return lut[level].tolist(), cmin, cmax


# -- beachballs --------------------------------------------------------------------------------
class _UnitBalls:
    """Memo of unit-radius, origin-centred compressional patches per (strike, dip, rake)."""

    def __init__(self, max_entries: int = 400_000):
        self.max_entries = max_entries
        self._store: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._outline: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    def outline(self, n_points: int):
        """Unit outline polygon (closed, no NaN) as drawn by :func:`beachball_xy`."""
        if n_points not in self._outline:
            o = beachball_xy(0.0, 90.0, 0.0, 0.0, 0.0, 1.0, n_points=n_points, nodal=False)
            self._outline[n_points] = (o["outline_x"][:-1].copy(), o["outline_y"][:-1].copy())
        return self._outline[n_points]

    def patches(self, strike, dip, rake, n_points: int):
        """(px, py, ball): patch rows (P, n_points) of unit balls and each row's ball index."""
        s, d, r = (np.asarray(v, dtype=float) for v in (strike, dip, rake))
        keys = list(zip(s.tolist(), d.tolist(), r.tolist(), [n_points] * len(s)))
        with self._lock:
            store = self._store
            missing = sorted({i for i, k in enumerate(keys) if k not in store})
        if missing:
            idx = np.asarray(missing)
            out = beachball_xy(s[idx], d[idx], r[idx], 0.0, 0.0, 1.0, n_points=n_points, nodal=False)
            fx = out["fill_x"].reshape(-1, n_points + 1)[:, :-1].astype(np.float32)
            fy = out["fill_y"].reshape(-1, n_points + 1)[:, :-1].astype(np.float32)
            owner = np.asarray(out["fill_ball"])
            new = {}
            bounds = np.searchsorted(owner, np.arange(len(idx) + 1))
            for j, i in enumerate(missing):
                a, b = bounds[j], bounds[j + 1]
                new[keys[i]] = (fx[a:b], fy[a:b])
            with self._lock:
                if len(self._store) + len(new) > self.max_entries:
                    self._store = {}
                self._store.update(new)
                store = self._store
        with self._lock:
            parts = [store.get(k) for k in keys]
        if any(p is None for p in parts):  # evicted concurrently: recompute without the memo
            out = beachball_xy(s, d, r, 0.0, 0.0, 1.0, n_points=n_points, nodal=False)
            return (out["fill_x"].reshape(-1, n_points + 1)[:, :-1], out["fill_y"].reshape(-1, n_points + 1)[:, :-1],
                    np.asarray(out["fill_ball"]))
        counts = np.fromiter((len(p[0]) for p in parts), dtype=np.int64, count=len(parts))
        if counts.sum() == 0:
            empty = np.zeros((0, n_points), dtype=np.float32)
            return empty, empty, np.zeros(0, dtype=np.int64)
        px = np.concatenate([p[0] for p in parts])
        py = np.concatenate([p[1] for p in parts])
        return px, py, np.repeat(np.arange(len(parts)), counts)


_UNIT_BALLS = _UnitBalls()


def _polys(px, py, cx, cy, rad, view, origin):
    """Scale/translate unit polygons (rows) and flatten them NaN-separated."""
    x = cx[:, None] + rad[:, None] * px
    y = cy[:, None] + rad[:, None] * py
    if view == "geo":
        x, y = _km_to_geo(x, y, origin)
    pad = np.full((x.shape[0], 1), np.nan)
    return np.hstack([x, pad]).ravel(), np.hstack([y, pad]).ravel()


def _in_view(hx, hy, visible) -> np.ndarray:
    """Centres inside ``visible`` = (x0, x1, y0, y1) (view coordinates, either order),
    widened by 5 % of each span so balls cut by the frame edge count as visible."""
    x0, x1, y0, y1 = (float(v) for v in visible)
    (x0, x1), (y0, y1) = sorted((x0, x1)), sorted((y0, y1))
    mx, my = 0.05 * (x1 - x0), 0.05 * (y1 - y0)
    return (hx >= x0 - mx) & (hx <= x1 + mx) & (hy >= y0 - my) & (hy <= y1 + my)


def km_per_degree(lat0: float) -> tuple[float, float]:
    """(km per degree of longitude, km per degree of latitude) near latitude ``lat0``: the
    lon/lat view's local scales (its aspect is their ratio)."""
    return 111.32 * max(math.cos(math.radians(lat0)), 1e-6), 110.57


def edge_km(x0: float, x1: float, y0: float, y1: float, view: str = "km", origin=None) -> float:
    """Width (km) of :data:`EDGE_PX` px when the range ``x0..x1, y0..y1`` (the view's
    coordinates: km, or degrees for ``geo``) is drawn in :data:`PLOT_PX` with equal scales
    (the axis with room to spare is widened, so the tighter one sets the scale)."""
    xs, ys = abs(float(x1) - float(x0)), abs(float(y1) - float(y0))
    if view == "geo":
        kx, ky = km_per_degree(origin[0] if origin is not None else 0.0)
        xs, ys = xs * kx, ys * ky
    km_per_px = max(xs / PLOT_PX[0], ys / PLOT_PX[1])
    return EDGE_PX * km_per_px if math.isfinite(km_per_px) and km_per_px > 0 else 0.0


def ball_traces(mechanisms: pd.DataFrame, view: str = "km", origin=None, n_points: int | None = None, *,
                max_polygons: int | str | None = "auto", visible=None) -> list[dict]:
    """Beachball traces of ``mechanisms`` (needs ``event_id, x_km, y_km, strike, dip,
    rake, magnitude, group``), radius :func:`~components.beachball.magnitude_radius`
    (km), coloured by group (:data:`GROUP_COLORS`). In the ``geo`` view balls are built
    in km and converted with ``origin`` (lat, lon), so they stay round.

    Level of detail: the ``max_polygons`` largest-ML balls whose centre is in ``visible``
    ((x0, x1, y0, y1) in the view's coordinates; None = everywhere) are drawn exactly
    (compressional patches, :func:`components.beachball.beachball_xy`); every other ball is
    a dot of its group colour (``"auto"``: :data:`MAX_BALL_POLYGONS`; ``None``: all balls
    exact). Large balls are
    drawn first.

    Traces, always the same number for the same ``mechanisms`` whatever ``visible`` is (a
    zoom can replace them in place): first the marker trace at every ball centre, largest ML
    first (``name='smaller ML: zoom in'``): a dot of the group colour where the ball is not
    drawn exactly, size 0 where it is; it is every ball's hover and click target
    (``customdata[i] = [event_id, strike, dip, rake, ML, group]``) and its ``meta`` is
    ``{'polygons': n drawn exactly, 'balls': n}``. Then the black edges (``'beachball
    edge'``: discs :func:`edge_km` wider than the balls, for the range ``visible`` or,
    without it, the balls' own extent), the white discs (``'beachball outline'``) and one
    filled trace of compressional patches per group of ``mechanisms`` (possibly empty).
    One marker trace serves as dots and as hover targets: a separate invisible hover trace
    cost ~0.15 s of the cold WebGL draw (issue 12)."""
    if mechanisms is None or len(mechanisms) == 0:
        return []
    if view == "geo" and origin is None:
        raise ValueError("the geo view needs the frame origin")
    df = mechanisms.sort_values("magnitude", ascending=False, na_position="first", kind="stable")
    ok = np.isfinite(df[["strike", "dip", "rake", "x_km", "y_km"]].to_numpy(dtype=float)).all(axis=1)
    df = df[ok]
    if len(df) == 0:
        return []
    cx_all, cy_all = df["x_km"].to_numpy(dtype=float), df["y_km"].to_numpy(dtype=float)
    hx, hy = (cx_all, cy_all) if view != "geo" else _km_to_geo(cx_all, cy_all, origin)
    groups_all = df["group"].fillna("").astype(str).to_numpy(dtype=object)
    mag_all = df["magnitude"].to_numpy(dtype=float)
    exact = _in_view(hx, hy, visible) if visible is not None else np.ones(len(df), dtype=bool)
    if max_polygons == "auto":
        max_polygons = MAX_BALL_POLYGONS
    if max_polygons is not None:
        exact &= np.cumsum(exact) <= max_polygons  # df is sorted by ML, largest first
    cd = _coord_dtype(view)

    dots = ~exact
    custom = np.empty((len(df), 6), dtype=object)
    custom[:, 0] = df["event_id"].astype(str).to_numpy(dtype=object)
    for j, col in enumerate(("strike", "dip", "rake"), start=1):
        custom[:, j] = np.round(df[col].to_numpy(dtype=float), 1)
    custom[:, 4] = np.where(np.isfinite(mag_all), np.round(mag_all, 2), None)
    custom[:, 5] = groups_all
    traces = [{
        "type": "scattergl", "x": typed(hx, cd), "y": typed(hy, cd), "mode": "markers",
        "marker": {"size": typed(np.where(dots, 6, 0), "u1"),
                   "color": [GROUP_COLORS.get(g, UNKNOWN_GROUP_COLOR) for g in groups_all],
                   "line": {"color": "black", "width": typed(np.where(dots, 0.5, 0.0))}},
        "customdata": custom.tolist(),
        "hovertemplate": "<b>%{customdata[0]}</b><br>strike/dip/rake %{customdata[1]}/%{customdata[2]}/"
                         "%{customdata[3]}<br>ML %{customdata[4]} · %{customdata[5]}<extra>mechanism</extra>",
        "showlegend": bool(dots.any()), "name": "smaller ML: zoom in", "legendrank": 2000,
        "meta": {"polygons": int(exact.sum()), "balls": int(len(df))}}]

    sub = df[exact]
    n_points = n_points or (BALL_POINTS_FEW if len(sub) <= MANY_BALLS else BALL_POINTS_MANY)
    cx, cy = cx_all[exact], cy_all[exact]
    rad = np.asarray(magnitude_radius(mag_all[exact]), dtype=float)
    groups = groups_all[exact]
    ox, oy = _UNIT_BALLS.outline(n_points)
    unit_x, unit_y = np.broadcast_to(ox, (len(sub), len(ox))), np.broadcast_to(oy, (len(sub), len(oy)))
    if visible is not None:
        edge = edge_km(*visible, view=view, origin=origin)
    else:  # the balls' bulk, padded as the map's first range is (_extent)
        (x0, x1), (y0, y1) = (np.percentile(v, [0.5, 99.5]) for v in (hx, hy))
        edge = edge_km(x0, x0 + 1.24 * (x1 - x0), y0, y0 + 1.24 * (y1 - y0), view=view, origin=origin)
    # fills only (mode 'none'): the edge is a black disc under the white one, not a line pass
    for name, color, r in (("beachball edge", "black", rad + edge), ("beachball outline", "white", rad)):
        ox_all, oy_all = _polys(unit_x, unit_y, cx, cy, r, view, origin)
        traces.append({"type": "scattergl", "x": typed(ox_all, cd), "y": typed(oy_all, cd), "mode": "none",
                       "fill": "toself", "fillcolor": color, "hoverinfo": "skip", "showlegend": False,
                       "name": name})

    if len(sub):
        px, py, owner = _UNIT_BALLS.patches(sub["strike"].to_numpy(), sub["dip"].to_numpy(),
                                            sub["rake"].to_numpy(), n_points)
    else:
        px = py = np.zeros((0, n_points), dtype=np.float32)
        owner = np.zeros(0, dtype=np.int64)
    patch_group = groups[owner]
    present = set(groups_all.tolist())
    for g in [g for g in GROUP_COLORS if g in present] + sorted(present - set(GROUP_COLORS)):
        sel = patch_group == g
        o = owner[sel]
        fx, fy = _polys(px[sel], py[sel], cx[o], cy[o], rad[o], view, origin)
        color = GROUP_COLORS.get(g, UNKNOWN_GROUP_COLOR)
        # mode 'none': the fill alone; a zero-width line pass cost ~0.3 s of the draw (issue 12)
        traces.append({"type": "scattergl", "x": typed(fx, cd), "y": typed(fy, cd), "mode": "none",
                       "fill": "toself", "fillcolor": color,
                       "hoverinfo": "skip", "name": g or "mechanisms", "showlegend": True,
                       "legendgroup": f"group-{g}"})
    return traces


# -- context layers ----------------------------------------------------------------------------
def _well_traces(wells: pd.DataFrame, stages: pd.DataFrame, view: str):
    traces, annotations = [], []
    if wells is not None and len(wells):
        xs, ys = [], []
        for name, w in wells.sort_values(["well", "vertex"]).groupby("well", sort=True):
            x, y = _xy(w, view)
            xs += [*x.tolist(), None]
            ys += [*y.tolist(), None]
            i = int(np.argmax(y))  # label at the toe: the northernmost vertex
            annotations.append({"x": float(x[i]), "y": float(y[i]), "text": f"<b>{name}</b>", "showarrow": False,
                                "yshift": 10, "font": {"size": 13, "color": WELL_COLOR}})
        traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": "wells",
                       "line": {"color": WELL_COLOR, "width": 2}, "hoverinfo": "skip"})
    if stages is not None and len(stages):
        x, y = _xy(stages, view)
        when = pd.to_datetime(stages["time"]).dt.strftime("%Y-%m-%d %H:%M")
        text = ("well " + stages["well"].astype(str) + " stage " + stages["stage_no"].astype(str) + "<br>" + when)
        traces.append({"type": "scatter", "x": x.tolist(), "y": y.tolist(), "mode": "markers", "name": "stages",
                       "marker": {"symbol": "line-ew", "size": 7, "color": WELL_COLOR,
                                  "line": {"color": WELL_COLOR, "width": 1.5}},
                       "hovertext": text.tolist(), "hoverinfo": "text"})
    return traces, annotations


def _station_traces(stations: pd.DataFrame, view: str) -> list[dict]:
    if stations is None or len(stations) == 0:
        return []
    x, y = _xy(stations, view)
    text = (stations["network"].astype(str) + "." + stations["station"].astype(str)).tolist()
    return [{"type": "scattergl", "x": x.tolist(), "y": y.tolist(), "mode": "markers", "name": "stations",
             "text": text, "hovertemplate": "station %{text}<extra></extra>",
             "marker": {"symbol": "triangle-up", "size": 9, "color": STATION_COLOR,
                        "line": {"color": "white", "width": 0.5}}}]


def highlight_trace(selected: pd.DataFrame | None = None, view: str = "km") -> dict:
    """The ring marking the selected mechanism(s) (``x_km, y_km`` or ``lon, lat``); empty
    when ``selected`` is None or empty. Plain lists, so a ``Patch`` can replace x/y."""
    if selected is None or len(selected) == 0:
        x = y = []
    else:
        xa, ya = _xy(selected, view)
        x, y = xa.tolist(), ya.tolist()
    return {"type": "scattergl", "x": x, "y": y, "mode": "markers", "name": "selected", "showlegend": False,
            "hoverinfo": "skip", "marker": {"symbol": "circle-open", "size": 26, "color": HIGHLIGHT_COLOR,
                                            "line": {"width": 3, "color": HIGHLIGHT_COLOR}}}


def _extent(frames: list[pd.DataFrame], view: str, origin, pad: float = 0.12, min_span_km: float = 1.0):
    """Initial axis ranges around the bulk (0.5-99.5 percentiles) of the points in
    ``frames``, padded; at least ``min_span_km`` wide. None without points."""
    xs = np.concatenate([_xy(d, view)[0] for d in frames]) if frames else np.array([])
    ys = np.concatenate([_xy(d, view)[1] for d in frames]) if frames else np.array([])
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return None
    x0, x1 = np.percentile(xs[ok], [0.5, 99.5])
    y0, y1 = np.percentile(ys[ok], [0.5, 99.5])
    if view == "geo":
        lat0 = origin[0] if origin is not None else float(np.mean(ys[ok]))
        kx, ky = km_per_degree(lat0)
        min_x, min_y = min_span_km / kx, min_span_km / ky
    else:
        min_x = min_y = min_span_km
    def grow(a, b, minimum):
        span = max(b - a, minimum)
        mid = (a + b) / 2
        half = span * (0.5 + pad)
        return [float(mid - half), float(mid + half)]
    return grow(x0, x1, min_x), grow(y0, y1, min_y)


# -- the figure --------------------------------------------------------------------------------
def map_figure(events: pd.DataFrame, mechanisms: pd.DataFrame, stations: pd.DataFrame,
               wells: pd.DataFrame, stages: pd.DataFrame, *, color_by: str = "time",
               view: str = "km", origin: tuple[float, float] | None = None,
               selected: pd.DataFrame | None = None, height: int | None = None) -> dict:
    """The map figure (a dict, see the module doc). ``origin`` (lat, lon) of the km frame
    is needed for ``view='geo'``. ``layout.meta``: ``{'highlight': i, 'balls': k or None,
    'balls_first': k or None, 'balls_last': j or None, 'view': view, 'polygons': n}``
    (traces ``k..j`` are the beachballs of :func:`ball_traces`, ``k`` their marker trace,
    ``n`` of them drawn exactly at the full extent)."""
    view = view if view in ("km", "geo") else "km"
    traces, annotations = _well_traces(wells, stages, view)
    traces += event_traces(events, color_by, view)
    balls = ball_traces(mechanisms, view, origin)
    traces += balls
    balls_first = len(traces) - len(balls) if balls else None
    balls_last = len(traces) - 1 if balls else None
    traces += _station_traces(stations, view)
    traces.append(highlight_trace(selected, view))
    meta = {"highlight": len(traces) - 1, "balls": balls_first, "balls_first": balls_first,
            "balls_last": balls_last, "view": view, "polygons": balls[0]["meta"]["polygons"] if balls else 0}
    extent = _extent([d for d in (events, mechanisms) if d is not None and len(d)], view, origin)
    if view == "geo":
        if origin is not None:
            lat0 = origin[0]
        else:
            lat0 = float(np.nanmean(stations["lat"])) if stations is not None and len(stations) else 0.0
        xaxis = {"title": {"text": "Longitude (°E)"}, "tickformat": ".3f"}
        # automargin: the 3-decimal latitude ticks are wider than the km ticks the fixed
        # left margin was sized for, and the title sat on top of them
        yaxis = {"title": {"text": "Latitude (°N)"}, "tickformat": ".3f", "scaleanchor": "x",
                 "scaleratio": 1.0 / math.cos(math.radians(lat0)), "automargin": True}
    else:
        xaxis = {"title": {"text": "East (km)"}}
        yaxis = {"title": {"text": "North (km)"}, "scaleanchor": "x", "scaleratio": 1.0}
    if extent is not None:  # start on the seismicity (the stations spread much wider)
        xaxis["range"], yaxis["range"] = extent
    layout = {
        "template": _TEMPLATE,
        "xaxis": {**_AXIS, **xaxis},
        "yaxis": {**_AXIS, **yaxis},
        "margin": {"l": 64, "r": 10, "t": TOP_LEGEND_PX, "b": 50},
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11},
                   "traceorder": "normal",
                   "itemsizing": "constant", "bgcolor": "rgba(255,255,255,0)"},
        "annotations": annotations,
        "hovermode": "closest",
        "dragmode": "pan",
        "uirevision": f"map-{view}",
        "meta": meta,
    }
    if height:
        layout["height"] = height
    return {"data": traces, "layout": layout}


def empty_figure(message: str) -> dict:
    """A blank figure showing ``message`` (no data / loading)."""
    return {"data": [], "layout": {
        "template": _TEMPLATE, "xaxis": {"visible": False}, "yaxis": {"visible": False},
        "annotations": [{"text": message, "showarrow": False, "font": {"size": 15, "color": "#666"},
                         "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}],
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10}}}
