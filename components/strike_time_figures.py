"""The strike-versus-time figure of the strike-time page, as pure functions of DataFrames.

Inputs are the tables of :mod:`pipeline.analysis.strike_time` (no Dash, no DuckDB):

* ``table`` -- :func:`~pipeline.analysis.strike_time.strike_time_table` of one cluster's
  mechanisms (``event_id, time, strike, strike_norm, magnitude, marker_size, group``);
* ``markers`` -- :func:`~pipeline.analysis.strike_time.stage_markers` (every stage of every
  well, not only the first: defect 16);
* ``bars`` -- :func:`~pipeline.analysis.strike_time.injection_bars` (each daily bar spans
  the day it describes, 00:00-24:00 UTC, instead of being centred on midnight).

Layout of the figure (a plain ``dict``, like :func:`components.map_figure.map_figure`): one
shared time axis ``x``; the main panel plots the normalised strike ([90, 270] deg, left axis
``yaxis2``) over the daily injection rate (bars, right axis ``yaxis``, drawn below the
markers); faint vertical lines mark every stage start (the first of each well dashed); a
lane strip above (``yaxis3``) shows each well's stages as ticks, with hover, and the span
from its first to its last stage as a band. Zooming the time axis is what the page turns
into the shared time filter (``layout.meta['time_axes']`` lists the axis names).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.analysis.strike_time import WELL_COLOURS, group_strike_stats

from .map_figure import _TEMPLATE, GROUP_COLORS, MODEBAR_PX, UNKNOWN_GROUP_COLOR, empty_figure

__all__ = ["strike_time_figure", "group_stats", "csv_table", "empty_figure", "STRIKE_RANGE", "WELL_PLOT_COLOURS"]

#: y range of the normalised strike, deg
STRIKE_RANGE = (90.0, 270.0)
#: well colours of the original figure (A green, B blue, C purple, D red) as CSS colours
WELL_PLOT_COLOURS = {"A": "#1a9641", "B": "#2166ac", "C": "#7b3294", "D": "#d7191c"}
_UNKNOWN_WELL = "#7f7f7f"
_BAR_COLOUR = "rgba(110, 125, 150, 0.20)"
_BAR_LINE = "rgba(110, 125, 150, 0.45)"
_AXIS = {"showline": True, "mirror": True, "linecolor": "#adb5bd", "ticks": "outside", "tickcolor": "#adb5bd",
         "zeroline": False}


def well_colour(well: str) -> str:
    """Plot colour of a well: :data:`WELL_PLOT_COLOURS`, the original's named colour
    (:data:`pipeline.analysis.strike_time.WELL_COLOURS`) as fallback, else grey."""
    return WELL_PLOT_COLOURS.get(well) or WELL_COLOURS.get(well) or _UNKNOWN_WELL


def _iso(times) -> list[str]:
    """ISO 8601 UTC text with milliseconds (what Plotly reads on a date axis); NaT -> 'NaT'."""
    t = pd.to_datetime(pd.Series(times), utc=True).dt.tz_convert(None)
    return np.datetime_as_string(t.to_numpy(dtype="datetime64[ms]"), unit="ms").tolist()


def _time_extent(*series) -> tuple[pd.Timestamp, pd.Timestamp] | None:
    vals = [pd.to_datetime(pd.Series(s), utc=True) for s in series if s is not None and len(s)]
    if not vals:
        return None
    t = pd.concat(vals).dropna()
    if t.empty:
        return None
    return t.min(), t.max()


def _stage_lines(markers: pd.DataFrame, y0: float, y1: float) -> list[dict]:
    """Vertical lines at every stage (one trace per well), the first stage dashed."""
    traces = []
    for well, g in markers.groupby("well", sort=True):
        colour = well_colour(well)
        xs, ys = [], []
        for t in _iso(g["time"]):
            xs += [t, t, None]
            ys += [y0, y1, None]
        traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "xaxis": "x", "yaxis": "y2",
                       "line": {"color": colour, "width": 1}, "opacity": 0.28, "hoverinfo": "skip",
                       "legendgroup": f"well-{well}", "showlegend": False, "name": f"well {well} stages"})
        first = g[g["is_first"]]
        if len(first):
            t = _iso(first["time"])[0]
            traces.append({"type": "scatter", "x": [t, t], "y": [y0, y1], "mode": "lines", "xaxis": "x",
                           "yaxis": "y2", "line": {"color": colour, "width": 1.6, "dash": "dash"},
                           "hoverinfo": "skip", "legendgroup": f"well-{well}", "showlegend": False,
                           "name": f"well {well} first stage"})
    return traces


def _stage_lanes(markers: pd.DataFrame) -> list[dict]:
    """Per well: a band from the first to the last stage and a tick per stage (hover)."""
    traces = []
    for well, g in markers.groupby("well", sort=True):
        colour = well_colour(well)
        iso = _iso(g["time"])
        when = pd.to_datetime(g["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M").tolist()
        traces.append({"type": "scatter", "x": [iso[0], iso[-1]], "y": [well, well], "mode": "lines",
                       "xaxis": "x", "yaxis": "y3", "line": {"color": colour, "width": 9}, "opacity": 0.18,
                       "hoverinfo": "skip", "legendgroup": f"well-{well}", "showlegend": False,
                       "name": f"well {well} stimulation span"})
        text = [f"well {well} · stage {int(s)}{' (first)' if f else ''}<br>{w} UTC (hour resolution)"
                for s, f, w in zip(g["stage_no"], g["is_first"], when)]
        traces.append({"type": "scatter", "x": iso, "y": [well] * len(iso), "mode": "markers",
                       "xaxis": "x", "yaxis": "y3",
                       "marker": {"symbol": "line-ns-open", "size": 10, "color": colour,
                                  "line": {"color": colour, "width": 1.6}},
                       "hovertext": text, "hoverinfo": "text", "legendgroup": f"well-{well}",
                       "name": f"well {well} ({len(iso)} stages)", "showlegend": True})
    return traces


def _injection_trace(bars: pd.DataFrame) -> dict:
    day = [f"{d:%Y-%m-%d}" for d in bars["date"]]
    split = bars["n_in_day"] > 1
    text = [f"{d}: {r:.2f} m³/min" + (f" (row {s + 1} of {n} that day)" if sp else "")
            + (f"<br>{v:,.0f} m³" if np.isfinite(v) else "")
            for d, r, s, n, sp, v in zip(day, bars["rate_m3_min"], bars["slot"], bars["n_in_day"], split,
                                         bars["volume_m3"].to_numpy(dtype=float))]
    return {"type": "bar", "x": _iso(bars["x_centre"]), "y": bars["rate_m3_min"].round(4).tolist(),
            "width": bars["width_ms"].round(0).tolist(), "xaxis": "x", "yaxis": "y",
            "marker": {"color": _BAR_COLOUR, "line": {"color": _BAR_LINE, "width": 0.5}},
            "hovertext": text, "hoverinfo": "text", "name": "injection rate (daily)", "showlegend": True}


def _scatter_traces(table: pd.DataFrame, group_counts: dict | None = None) -> list[dict]:
    groups = table["group"].fillna("none").astype(str)
    present = set(groups)
    order = [g for g in GROUP_COLORS if g in present] + sorted(present - set(GROUP_COLORS))
    traces = []
    for g in order:
        sel = (groups == g).to_numpy()
        d = table[sel]
        mag = d["magnitude"].to_numpy(dtype=float)
        text = [f"<b>{e}</b><br>{t}<br>strike {s:.1f}° (plotted {n:.1f}°)<br>ML "
                + (f"{m:.2f}" if np.isfinite(m) else "–") + f" · {g}"
                for e, t, s, n, m in zip(d["event_id"].astype(str),
                                         pd.to_datetime(d["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S.%f")
                                         .str[:-4], d["strike"], d["strike_norm"], mag)]
        colour = GROUP_COLORS.get(g, UNKNOWN_GROUP_COLOR)
        traces.append({"type": "scatter", "x": _iso(d["time"]), "y": d["strike_norm"].round(2).tolist(),
                       "mode": "markers", "xaxis": "x", "yaxis": "y2", "name": f"{g} ({int(group_counts.get(g, 0) if group_counts is not None else sel.sum())})",
                       "legendgroup": f"group-{g}",
                       "marker": {"size": d["marker_size"].round(2).tolist(), "color": colour, "opacity": 0.85,
                                  "line": {"color": "rgba(30,30,30,0.55)", "width": 0.6}},
                       "customdata": d["event_id"].astype(str).tolist(),
                       "hovertext": text, "hoverinfo": "text"})
    return traces


#: the figure's empty-table message (the page replaces it with a more precise one)
NO_MECHANISM = "No mechanism to plot"


def strike_time_figure(table: pd.DataFrame, markers: pd.DataFrame | None, bars: pd.DataFrame | None, *,
                       time_range=None, title: str | None = None, uirevision: str = "strike-time",
                       height: int | None = None, group_counts: dict | None = None) -> dict:
    """The strike-time figure (see the module docstring). ``time_range`` (start, end) UTC
    fixes the time axis (the shared filter's window); otherwise it spans the mechanisms,
    stages and injection days. An empty ``table`` still draws stages and injection with a
    message in the middle. When ``table`` is a sample of the plotted rows, ``group_counts``
    ({group: n} of all of them) are the counts the legend shows."""
    markers = markers if markers is not None else pd.DataFrame(columns=["well", "stage_no", "time", "is_first"])
    bars = bars if bars is not None else pd.DataFrame()
    y0, y1 = STRIKE_RANGE
    traces: list[dict] = []
    if len(bars):
        traces.append(_injection_trace(bars))
    if len(markers):
        traces += _stage_lines(markers, y0, y1)
        traces += _stage_lanes(markers)
    traces += _scatter_traces(table, group_counts) if len(table) else []

    if time_range is not None:
        t0, t1 = (pd.Timestamp(v) for v in time_range)
        t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0
        t1 = t1.tz_localize("UTC") if t1.tzinfo is None else t1
    else:
        ext = _time_extent(table["time"] if len(table) else None, markers["time"] if len(markers) else None,
                           bars["x_start"] if len(bars) else None, bars["x_end"] if len(bars) else None)
        t0, t1 = ext if ext is not None else (None, None)
        if t0 is not None:
            pad = max((t1 - t0) * 0.02, pd.Timedelta(hours=6))
            t0, t1 = t0 - pad, t1 + pad
    xrange = [_iso([t0])[0], _iso([t1])[0]] if t0 is not None else None

    rate_max = float(np.nanmax(bars["rate_m3_min"])) if len(bars) and np.isfinite(bars["rate_m3_min"]).any() else 1.0
    wells = sorted(markers["well"].astype(str).unique()) if len(markers) else []
    annotations = []
    if len(table) == 0:
        annotations.append({"text": NO_MECHANISM, "showarrow": False, "xref": "paper", "yref": "y2 domain",
                            "x": 0.5, "y": 0.5, "font": {"size": 15, "color": "#666"}})
    absent = [w for w, n in (("stages", len(markers)), ("injection data", len(bars))) if not n]
    if absent:  # optional tables a data set may lack (a user's own project)
        annotations.append({"text": "no " + " and no ".join(absent), "showarrow": False, "xref": "paper",
                            "yref": "paper", "x": 1, "xanchor": "right", "y": 0.01, "yanchor": "bottom",
                            "font": {"size": 11, "color": "#868e96"}})
    lanes = bool(wells)
    layout = {
        "template": _TEMPLATE,
        "xaxis": {**_AXIS, "type": "date", "showgrid": True, "gridcolor": "#eceff1", "anchor": "y",
                  "title": {"text": "Time (UTC)"}, **({"range": xrange} if xrange else {})},
        "yaxis": {"title": {"text": "Injection rate (m³/min)", "font": {"color": "#5a6478"}},
                  "side": "right", "range": [0, rate_max * 2.6], "showgrid": False, "zeroline": False,
                  "tickfont": {"color": "#5a6478"}, "domain": [0, 0.80 if lanes else 1.0], "anchor": "x",
                  "rangemode": "tozero", "fixedrange": True, "visible": bool(len(bars))},
        "yaxis2": {**_AXIS, "mirror": False, "title": {"text": "Strike (°), normalised to 90–270"},
                   "range": [y0 - 3, y1 + 3], "tickvals": list(range(90, 271, 30)), "showgrid": True,
                   "gridcolor": "#eceff1", "overlaying": "y", "side": "left", "anchor": "x"},
        # room for the modebar (it covered the right end of well A's stage lane)
        "margin": {"l": 64, "r": 64, "t": 34 if title else MODEBAR_PX, "b": 50},
        "legend": {"orientation": "h", "x": 0, "y": -0.13, "yanchor": "top", "font": {"size": 11},
                   "itemsizing": "constant", "bgcolor": "rgba(255,255,255,0)", "traceorder": "normal"},
        "bargap": 0, "barmode": "overlay",
        "hovermode": "closest", "dragmode": "zoom",
        "annotations": annotations,
        "uirevision": uirevision,
        "meta": {"time_axes": ["xaxis"], "n_mechanisms": int(len(table))},
    }
    if lanes:
        layout["yaxis3"] = {"domain": [0.835, 1.0], "anchor": "x", "type": "category",
                            "categoryorder": "array", "categoryarray": list(reversed(wells)),
                            "showgrid": False, "zeroline": False, "fixedrange": True, "showline": False,
                            "ticks": "", "tickfont": {"size": 10}, "tickmode": "array", "tickvals": wells,
                            "ticktext": [f"well {w}" for w in wells], "automargin": True}
    if title:
        layout["title"] = {"text": title, "x": 0.01, "xanchor": "left", "font": {"size": 14}}
    if height:
        layout["height"] = height
    return {"data": traces, "layout": layout}


def group_stats(table: pd.DataFrame) -> pd.DataFrame:
    """Per group ``group, n, mean, std`` of the normalised strike (deg,
    :func:`~pipeline.analysis.strike_time.group_strike_stats`), in the order of
    :data:`~components.map_figure.GROUP_COLORS` then other labels; ``colour`` added."""
    if len(table) == 0:
        return pd.DataFrame(columns=["group", "n", "mean", "std", "colour"])
    t = table.assign(group=table["group"].fillna("none").astype(str))
    s = group_strike_stats(t)
    rank = {g: i for i, g in enumerate(GROUP_COLORS)}
    s = s.sort_values("group", key=lambda c: c.map(lambda g: (rank.get(g, len(rank)), g))).reset_index(drop=True)
    s["colour"] = s["group"].map(lambda g: GROUP_COLORS.get(g, UNKNOWN_GROUP_COLOR))
    return s


def format_mean_sd(mean: float, std: float) -> str:
    """``'182.7 ± 2.8°'`` (``'182.7°'`` with one event, ``'–'`` without)."""
    if mean is None or not math.isfinite(float(mean)):
        return "–"
    if std is None or not math.isfinite(float(std)):
        return f"{mean:.1f}°"
    return f"{mean:.1f} ± {std:.1f}°"


#: columns of the CSV export (the plotted table)
CSV_COLUMNS = ["event_id", "time", "magnitude", "strike", "strike_norm", "group", "marker_size"]


def csv_table(table: pd.DataFrame, cluster: str | None = None) -> pd.DataFrame:
    """The plotted rows as exported: :data:`CSV_COLUMNS` (+ ``cluster``); times ISO 8601
    UTC with milliseconds, ``strike_norm`` = the plotted strike in [90, 270] deg."""
    out = table.reindex(columns=CSV_COLUMNS).copy()
    out["time"] = pd.to_datetime(out["time"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3] + "Z"
    if cluster is not None:
        out.insert(1, "cluster", cluster)
    return out
