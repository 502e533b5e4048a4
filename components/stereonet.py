"""Group stereonets: every event's nodal plane and the group's average mechanism, as a pure
function of DataFrames (no Dash, no DuckDB).

Projection: lower hemisphere, equal area (Schmidt), unit radius, x east, y north -- the same
one as the beachballs (:func:`components.beachball.project`, :func:`~components.beachball.nodal_line`;
defect 7: one projection everywhere).

* **Nodal lines** (plane 1 of each event) are coloured by the *axial* deviation of the
  event's strike from the group-average strike, ``min(|d|, 180 - |d|)`` with ``d`` the
  difference mod 180 (:func:`pipeline.analysis.mechanism_stats.axial_difference`), on a
  0-:data:`MAX_DEVIATION` deg ramp (larger deviations take the last colour). The original
  compared raw strikes with a wrapped mean, which hid 357 of the 462 g1 lines (defect 5);
  here strike 359 vs a mean of 1 is a deviation of 2. Lines are binned into
  :data:`N_BINS` colour classes, each drawn as one SVG path (a ``layout.shapes`` entry of
  type ``path``, one ``M ... L ...`` subpath per line, :func:`svg_path`), largest deviations
  first so the core of the group stays on top. Not traces: plotly.js draws a line trace with
  gaps as one ``<path>`` element per line, each styled and laid out on its own, and the
  lines have no hover anyway; one path per class draws the same pixels in about half the
  time (issue 12). At most ``cap`` lines are drawn (:data:`LINE_CAP`): a deterministic sample,
  the events with the smallest hash of their event id, so the same events are drawn for
  the same selection.
* **Average mechanism** (from :func:`pipeline.analysis.mechanism_stats.average_mechanism`:
  moment-tensor sum, not separate means of strike/dip/|rake|, defect 4): its compressional
  quadrants lightly filled in the group colour, both nodal planes in bold, and its P, B, T
  axes labelled as axes *of the average mechanism* (defect 8: they are not stress axes).
  The Kagan-angle spread (median / 90th percentile of each event to the average) goes in
  the subtitle.
* Groups without an average (``other``, whose mixed mechanisms have none, or a summed
  tensor of zero) draw every nodal line in one colour (gold for ``other``).
* The page shows the groups' figures as server-drawn SVG rendered from these figure dicts
  (:mod:`components.stereonet_svg`, issue 12): the browser draws them in milliseconds where
  plotly.js took ~0.5 s.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import pandas as pd

from pipeline.analysis.mechanism_stats import axial_difference

from .beachball import compressional_patches, nodal_line, project
from .map_figure import GROUP_COLORS, _TEMPLATE

#: deviation colour ramp: 0 .. MAX_DEVIATION deg (larger values take the last colour)
MAX_DEVIATION = 20.0
N_BINS = 10
#: colour scale of the ramp (0 deg = first colour)
COLORSCALE = "Plasma"
#: most nodal lines drawn per stereonet
LINE_CAP = 1500
#: most points per nodal line (lower half circle); steeper planes get fewer (:func:`line_points`)
LINE_POINTS = 41
#: largest distance (unit radius) between a drawn nodal line and the true great circle:
#: 0.002 is ~0.3 px at the page's 380 px stereonet (plot radius ~137 px), i.e. invisible
LINE_TOLERANCE = 0.002
#: the colour of every nodal line of a group without an average
NO_AVERAGE_COLOR = GROUP_COLORS["other"]
AXIS_STYLE = {"P": "#1f3b73", "B": "#555555", "T": "#b3001b"}

__all__ = ["axial_deviation", "deviation_colors", "sample_rows", "nodal_lines_xy", "line_points",
           "stereonet_figure", "svg_path", "MAX_DEVIATION", "N_BINS", "LINE_CAP", "LINE_TOLERANCE"]


def axial_deviation(strike, mean_strike) -> np.ndarray:
    """Axial deviation (deg, 0-90) of strikes from a mean strike: ``min(|d|, 180 - |d|)``,
    ``d = (strike - mean) mod 180``. 359 vs 1 -> 2; 181 vs 1 -> 0."""
    return axial_difference(strike, mean_strike)


@lru_cache(maxsize=1)
def _colorscale() -> list:
    """:data:`COLORSCALE` as explicit [[fraction, colour], ...] (plotly.js lacks some names)."""
    from plotly.colors import get_colorscale

    return [list(x) for x in get_colorscale(COLORSCALE)]


@lru_cache(maxsize=16)
def _bin_colors(n_bins: int) -> tuple[str, ...]:
    from plotly.colors import sample_colorscale

    return tuple(sample_colorscale(COLORSCALE, [(i + 0.5) / n_bins for i in range(n_bins)]))


def deviation_colors(deviation, max_deviation: float = MAX_DEVIATION, n_bins: int = N_BINS):
    """(bin index, colour per bin, bin edges): the colour class of each deviation (deg).

    Bin ``k`` covers ``[k w, (k+1) w)`` with ``w = max_deviation / n_bins``; deviations
    at or above ``max_deviation`` (and NaN) go to the last bin. The colour of bin ``k`` is
    the colour scale at the bin centre."""
    dev = np.asarray(deviation, dtype=float)
    w = max_deviation / n_bins
    k = np.floor(np.nan_to_num(dev, nan=max_deviation) / w).astype(int)
    k = np.clip(k, 0, n_bins - 1)
    colors = list(_bin_colors(int(n_bins)))
    edges = np.arange(n_bins + 1) * w
    return k, colors, edges


def sample_rows(df: pd.DataFrame, cap: int = LINE_CAP, key: str = "event_id") -> pd.DataFrame:
    """At most ``cap`` rows of ``df``: all of them, or the ``cap`` rows with the smallest
    hash of ``key`` (deterministic: the same rows always give the same sample)."""
    if cap is None or len(df) <= cap:
        return df
    h = pd.util.hash_pandas_object(df[key].astype(str), index=False).to_numpy()
    keep = np.sort(np.argsort(h, kind="stable")[: max(0, int(cap))])
    return df.iloc[keep]


def _segment_deviation(x, y, sub: int) -> np.ndarray:
    """Largest distance from a densely sampled curve (x, y: (rows, (n - 1) * sub + 1)) to the
    polyline through every ``sub``-th point, per row."""
    rows, m = x.shape
    nseg = (m - 1) // sub
    px = x[:, :-1].reshape(rows, nseg, sub)
    py = y[:, :-1].reshape(rows, nseg, sub)
    ax, ay = x[:, :-1:sub][..., None], y[:, :-1:sub][..., None]
    bx, by = x[:, sub::sub][..., None], y[:, sub::sub][..., None]
    ux, uy = bx - ax, by - ay
    l2 = ux ** 2 + uy ** 2
    t = np.clip(((px - ax) * ux + (py - ay) * uy) / np.where(l2 > 0, l2, 1.0), 0.0, 1.0)
    return np.hypot(px - ax - t * ux, py - ay - t * uy).max(axis=(1, 2))


@lru_cache(maxsize=None)
def _points_table(tolerance: float, most: int, step_deg: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """(dips, need): ``need[i]`` points keep every dip in ``[dips[i], dips[i + 1]]`` within
    ``tolerance``. Measured, not estimated: for each n the polyline's largest distance to the
    curve sampled 8x denser, on this dip grid (strike only rotates the line); a bin takes
    the worse of its two edges, with 10 % margin. The deviation falls as n grows, so the
    search stops at the first n that suits every dip (built once per process, ~0.1 s)."""
    dips = np.arange(0.0, 90.0 + step_deg / 2, step_deg)
    dips[0] = 1e-3                                   # exact dip 0 is the whole circle (see line_points)
    need = np.full(len(dips), most)
    todo = np.ones(len(dips), bool)
    sub = 8
    for n in range(2, most):
        x, y = nodal_line(np.zeros_like(dips), dips, (n - 1) * sub + 1)
        dev = _segment_deviation(x, y, sub)
        dev = np.maximum(dev, np.append(dev[1:], 0.0))
        hit = todo & (dev * 1.1 <= tolerance)
        need[hit] = n
        todo &= ~hit
        if not todo.any():
            break
    return dips, need


def line_points(dip, tolerance: float = LINE_TOLERANCE, most: int = LINE_POINTS) -> np.ndarray:
    """Points per nodal line (int array, 2..``most``) so that the polyline through equally
    spaced points of :func:`~components.beachball.nodal_line` stays within ``tolerance``
    (unit radius) of the true projected great circle (or uses ``most`` points where even
    that is not enough). A steep plane is a nearly straight line through the centre (a
    vertical one needs 2 points); a flat one is a curve close to the primitive circle.
    Dip 0 (the whole horizon) keeps ``most``."""
    d = np.clip(np.atleast_1d(np.asarray(dip, dtype=float)), 0.0, 90.0)
    dips, need = _points_table(float(tolerance), int(most))
    i = np.clip(np.searchsorted(dips, d, side="right") - 1, 0, len(dips) - 1)
    return np.where(d <= 0.0, most, need[i])


def nodal_lines_xy(strike, dip, n: int | None = LINE_POINTS, *, flat: bool = True,
                   tolerance: float = LINE_TOLERANCE):
    """(x, y) of the nodal lines of planes (strike, dip), vectorised (one call for all).

    ``n``: points per line; ``None``: per line from its dip (:func:`line_points` with
    ``tolerance``, unit radius), fewer for steeper planes (flat output only).
    ``flat=True``: NaN-separated 1-D arrays, each line's points then a NaN, line ``i``
    before line ``i + 1``. ``flat=False``: arrays of shape (lines, n + 1), each row ending
    with NaN (select rows, then ``ravel()``)."""
    s = np.atleast_1d(np.asarray(strike, dtype=float))
    d = np.atleast_1d(np.asarray(dip, dtype=float))
    if n is None:
        if not flat:
            raise ValueError("nodal_lines_xy: n=None (points from the dip) gives ragged lines; use flat=True")
        return _adaptive_lines(s, d, line_points(d, tolerance))
    if s.size == 0:
        empty = np.zeros((0, n + 1))
        return (np.array([]), np.array([])) if flat else (empty, empty)
    x, y = nodal_line(s, d, n)
    pad = np.full((x.shape[0], 1), np.nan)
    x, y = np.hstack([x, pad]), np.hstack([y, pad])
    return (x.ravel(), y.ravel()) if flat else (x, y)


def _adaptive_lines(s: np.ndarray, d: np.ndarray, counts: np.ndarray):
    """Flat NaN-separated (x, y): line ``i`` has ``counts[i]`` points, in input order."""
    starts = np.concatenate([[0], np.cumsum(counts + 1)[:-1]]).astype(int)
    total = int((counts + 1).sum())
    x, y = np.full(total, np.nan), np.full(total, np.nan)
    for k in np.unique(counts):                      # one vectorised call per point count
        sel = counts == k
        bx, by = nodal_line(s[sel], d[sel], int(k))
        idx = (starts[sel][:, None] + np.arange(int(k))).ravel()
        x[idx], y[idx] = bx.ravel(), by.ravel()
    return x, y


def svg_path(x, y, decimals: int = 4) -> str:
    """An SVG path string (``M x,y L x,y ... M ...``) of NaN-separated polylines ``x, y``
    (data units, e.g. :func:`nodal_lines_xy`'s flat output): a new subpath after each NaN,
    coordinates rounded to ``decimals`` (1e-4 of the unit radius: ~0.01 px at the page's
    size). Every command carries its letter (plotly.js's shape paths drop a command's extra
    coordinate pairs). ``''`` when there is no finite point."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return ""
    start = ok & ~np.concatenate([[False], ok[:-1]])          # the first point after a gap
    n = int(ok.sum())
    args = np.empty(3 * n, dtype=object)                       # command, x, y of each point
    args[0::3] = np.where(start, "M", "L")[ok]
    args[1::3], args[2::3] = x[ok].tolist(), y[ok].tolist()
    # one %-format of the whole path: ~7x faster than numpy's per-element string formatting
    return (f"%s%.{int(decimals)}f,%.{int(decimals)}f" * n) % tuple(args)


def _frame_traces() -> list[dict]:
    t = np.linspace(0, 2 * np.pi, 181)
    ticks_x, ticks_y = [], []
    for az in range(0, 360, 30):
        a = math.radians(az)
        r0 = 0.965 if az % 90 else 0.94
        ticks_x += [r0 * math.sin(a), math.sin(a), None]
        ticks_y += [r0 * math.cos(a), math.cos(a), None]
    return [
        {"type": "scatter", "x": np.round(np.sin(t), 5).tolist(), "y": np.round(np.cos(t), 5).tolist(),
         "mode": "lines", "line": {"color": "#343a40", "width": 1.2}, "hoverinfo": "skip", "showlegend": False,
         "name": "primitive circle"},
        {"type": "scatter", "x": ticks_x + [-0.03, 0.03, None, 0, 0], "y": ticks_y + [0, 0, None, -0.03, 0.03],
         "mode": "lines", "line": {"color": "#343a40", "width": 1}, "hoverinfo": "skip", "showlegend": False,
         "name": "ticks"},
    ]


def _fmt(v, spec=".0f"):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if not math.isfinite(f) else format(f, spec)


def _has_average(average) -> bool:
    if not average:
        return False
    try:
        return all(math.isfinite(float(average[k])) for k in ("strike", "dip", "rake"))
    except (KeyError, TypeError, ValueError):
        return False


def _fill(color: str, alpha: float) -> str:
    from plotly.colors import unlabel_rgb, hex_to_rgb

    c = hex_to_rgb(color) if color.startswith("#") else unlabel_rgb(color)
    return f"rgba({int(c[0])},{int(c[1])},{int(c[2])},{alpha})"


def stereonet_figure(mechanisms: pd.DataFrame, group: str, average: dict | None = None, *,
                     color: str | None = None, cap: int = LINE_CAP, max_deviation: float = MAX_DEVIATION,
                     n_bins: int = N_BINS, height: int = 380, colorbar: bool = True) -> dict:
    """The stereonet of one group (a Plotly figure dict).

    ``mechanisms``: the group's rows (``event_id, strike, dip``; ``rake`` unused). ``average``:
    a row of :func:`~pipeline.analysis.mechanism_stats.group_average_table` /
    :func:`~pipeline.analysis.mechanism_stats.average_mechanism` (``strike, dip, rake,
    strike2, dip2, p_/b_/t_trend, _plunge, kagan_median, kagan_p90``) or None for no average:
    then every line is drawn in ``color`` (default gold, as the original's ``other``).

    The nodal lines are ``layout.shapes`` (:func:`svg_path` paths named ``deviation <range>``
    per colour class, or ``nodal lines``); the frame, the average mechanism and its axes are
    traces. ``layout.meta``: ``{'group', 'n', 'drawn', 'cap', 'mean_strike', 'bins': [[lo, hi,
    colour, count], ...]}`` (``mean_strike``/``bins`` only with an average) -- what the
    page's caption and the tests read.
    """
    df = mechanisms if mechanisms is not None else pd.DataFrame(columns=["event_id", "strike", "dip"])
    ok = np.isfinite(df[["strike", "dip"]].to_numpy(dtype=float)).all(axis=1) if len(df) else np.zeros(0, bool)
    df = df[ok]
    n = len(df)
    drawn = sample_rows(df, cap)
    color = color or GROUP_COLORS.get(group, NO_AVERAGE_COLOR)
    traces = _frame_traces()
    shapes: list[dict] = []   # the nodal lines, one path per colour (below every trace)
    meta: dict = {"group": group, "n": int(n), "drawn": int(len(drawn)), "cap": int(cap)}
    has_avg = _has_average(average)

    s = drawn["strike"].to_numpy(dtype=float)
    d = drawn["dip"].to_numpy(dtype=float)
    if has_avg:
        mean = float(average["strike"])
        dev = axial_deviation(s, mean)
        k, colors, edges = deviation_colors(dev, max_deviation, n_bins)
        # one call for every line, sorted by bin so that each bin's lines are one slice
        order = np.argsort(k, kind="stable")
        lx, ly = nodal_lines_xy(s[order], d[order], None)
        stop = np.concatenate([[0], np.cumsum(line_points(d[order]) + 1)])   # array index after line i
        per_bin = np.bincount(k, minlength=n_bins)
        first = np.concatenate([[0], np.cumsum(per_bin)])                      # first line of each bin
        bins = []
        width = 1.0 if len(drawn) < 200 else 0.7
        opacity = 0.8 if len(drawn) < 200 else 0.45
        for b in range(n_bins - 1, -1, -1):  # largest deviations first (below)
            bins.append([float(edges[b]), float(edges[b + 1]), colors[b], int(per_bin[b])])
            if not per_bin[b]:
                continue
            x, y = lx[stop[first[b]]:stop[first[b + 1]]], ly[stop[first[b]]:stop[first[b + 1]]]
            last = b == n_bins - 1
            label = f"≥ {edges[b]:g}°" if last else f"{edges[b]:g}–{edges[b + 1]:g}°"
            shapes.append(_lines_shape(x, y, colors[b], width, opacity, f"deviation {label}"))
        meta.update(mean_strike=mean, bins=bins[::-1])
        if colorbar:
            traces.append({"type": "scatter", "x": [None], "y": [None], "mode": "markers", "hoverinfo": "skip",
                           "showlegend": False, "name": "colour scale",
                           "marker": {"color": [0.0], "cmin": 0.0, "cmax": float(max_deviation),
                                      "colorscale": _colorscale(), "showscale": True,
                                      "colorbar": {"title": {"text": "Δ strike (axial), °", "side": "right"},
                                                   "thickness": 10, "len": 0.7, "x": 1.0, "xpad": 4,
                                                   "tickvals": [0, max_deviation / 2, max_deviation],
                                                   "ticktext": ["0", f"{max_deviation / 2:g}",
                                                                f"≥{max_deviation:g}"],
                                                   "tickfont": {"size": 10}}}})
    elif len(drawn):
        x, y = nodal_lines_xy(s, d, None)
        shapes.append(_lines_shape(x, y, color, 0.9, 0.85, "nodal lines"))

    if has_avg:
        traces += _average_traces(average, color)

    title = f"<b>{group}</b> · {n:,} event{'s' if n != 1 else ''}"
    if has_avg:
        sub = (f"average {_fmt(average['strike'])}/{_fmt(average['dip'])}/{_fmt(average['rake'])} (MT sum) · "
               f"Kagan {_fmt(average.get('kagan_median'))}° median, {_fmt(average.get('kagan_p90'))}° p90")
    elif n:
        reason = (average or {}).get("reason") if average else None
        sub = "no average: " + (str(reason) if reason else "mixed mechanisms") + " · all nodal lines"
    else:
        sub = "no mechanisms"
    if len(drawn) < n:
        sub += f"<br>{len(drawn):,} of {n:,} nodal lines drawn (fixed sample by event id)"
    annotations = [{"text": "N", "x": 0, "y": 1.04, "xref": "x", "yref": "y", "showarrow": False,
                    "yanchor": "bottom", "font": {"size": 11, "color": "#343a40"}}]
    if has_avg:
        annotations.append({"text": "P, B, T: axes of the average mechanism (not stress axes)", "x": 0.0,
                            "y": 0.0, "xref": "paper", "yref": "paper", "xanchor": "left", "yanchor": "bottom",
                            "showarrow": False, "font": {"size": 9, "color": "#6c757d"}})
    if n == 0:
        annotations.append({"text": "No mechanisms in this group", "x": 0, "y": 0, "xref": "x", "yref": "y",
                            "showarrow": False, "font": {"size": 13, "color": "#666"}})
    axis = {"visible": False, "range": [-1.12, 1.12], "fixedrange": True}
    layout = {
        "template": _TEMPLATE,
        "title": {"text": title, "subtitle": {"text": sub, "font": {"size": 11, "color": "#6c757d"}},
                  "x": 0.02, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 14}},
        "xaxis": {**axis},
        "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1.0},
        "margin": {"l": 8, "r": 8, "t": 70 if len(drawn) < n else 58, "b": 14},
        "height": height,
        "showlegend": False,
        "hovermode": "closest",
        "annotations": annotations,
        "shapes": shapes,
        "meta": meta,
    }
    return {"data": traces, "layout": layout}


def _lines_shape(x, y, color: str, width: float, opacity: float, name: str) -> dict:
    """NaN-separated lines (unit-radius data coordinates) as one path shape drawn below the
    traces: the average's fills, planes and axes stay on top of them as before (the
    primitive circle, a trace, is now drawn over the lines' ends, not under them)."""
    return {"type": "path", "path": svg_path(x, y), "xref": "x", "yref": "y", "layer": "below",
            "line": {"color": color, "width": width}, "opacity": opacity, "name": name}


def _average_traces(average: dict, color: str) -> list[dict]:
    s, d, r = (float(average[k]) for k in ("strike", "dip", "rake"))
    traces = []
    for px, py in compressional_patches(s, d, r, n_points=90):
        traces.append({"type": "scatter", "x": np.round(px, 5).tolist(), "y": np.round(py, 5).tolist(),
                       "mode": "lines", "fill": "toself", "fillcolor": _fill(color, 0.22),
                       "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False,
                       "name": "average mechanism (compressional)"})
    lines_x, lines_y = [], []
    planes = [(s, d)]
    if all(k in average and np.isfinite(float(average[k])) for k in ("strike2", "dip2")):
        planes.append((float(average["strike2"]), float(average["dip2"])))
    for ps, pd_ in planes:
        x, y = nodal_line(ps, pd_, 91)
        lines_x += np.round(x, 5).tolist() + [None]
        lines_y += np.round(y, 5).tolist() + [None]
    traces.append({"type": "scatter", "x": lines_x, "y": lines_y, "mode": "lines",
                   "line": {"color": "black", "width": 2.6}, "hoverinfo": "skip", "showlegend": False,
                   "name": "average mechanism (nodal planes)"})
    xs, ys, text, hover, colors = [], [], [], [], []
    for ax in ("p", "b", "t"):
        tr, pl = average.get(f"{ax}_trend"), average.get(f"{ax}_plunge")
        try:
            tr, pl = float(tr), float(pl)
        except (TypeError, ValueError):
            continue
        if not (math.isfinite(tr) and math.isfinite(pl)):
            continue
        x, y = project(tr, pl)
        xs.append(round(float(x), 5))
        ys.append(round(float(y), 5))
        text.append(ax.upper())
        colors.append(AXIS_STYLE[ax.upper()])
        hover.append(f"{ax.upper()} axis of the average mechanism<br>trend {tr:.0f}°, plunge {pl:.0f}°"
                     "<br>(not a stress axis)")
    if xs:
        traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "markers+text", "text": text,
                       "textposition": "top right", "textfont": {"size": 13, "color": colors},
                       "marker": {"size": 10, "color": "white", "line": {"color": colors, "width": 2.5},
                                  "symbol": "circle"},
                       "hovertext": hover, "hoverinfo": "text", "showlegend": False,
                       "name": "P/B/T axes of the average mechanism"})
    return traces

