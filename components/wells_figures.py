"""Figures and tables of the wells page, as pure functions (no Dash, no DuckDB).

* :func:`stage_table`: the stages per well (well, stage number, time, position), flagged
  by whether they fall in the filters' time window;
* :func:`timeline_figure`: a marker per stage of every well against time (top panel,
  ``y`` = well) and the daily injection rate as bars (bottom panel), one shared time
  axis, with the time window shaded. Stage markers and bars come from
  :func:`pipeline.analysis.strike_time.stage_markers` (every stage, not only each well's
  first) and :func:`~pipeline.analysis.strike_time.injection_bars` (each bar spans its own
  calendar day, UTC; several rows on a day share it side by side);
* :func:`window_from_relayout`: the time window a zoom/pan/double-click on the timeline
  asks for, rounded to whole minutes.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

import numpy as np
import pandas as pd

from pipeline.analysis.strike_time import WELL_COLOURS, injection_bars, stage_markers, time_range_from_plotly

from .map_figure import _AXIS, _TEMPLATE, TOP_LEGEND_PX, empty_figure

#: table/CSV columns of :func:`stage_table`
STAGE_COLUMNS = ("well", "stage_no", "time", "lat", "lon", "x_km", "y_km", "day_index", "in_window")
WINDOW_FILL = "rgba(13,110,253,0.09)"
WINDOW_LINE = "rgba(13,110,253,0.55)"
NO_WELL_COLOR = "rgb(134,142,150)"


#: well colours: the original's names as CSS colours a little softer than pure ones
_CSS = {"green": "rgb(25,135,84)", "blue": "rgb(13,110,253)", "purple": "rgb(111,66,193)", "red": "rgb(220,53,69)",
        "grey": NO_WELL_COLOR}


def well_color(well) -> str:
    """Colour of ``well`` (the original's: A green, B blue, C purple, D red; grey else)."""
    return _CSS.get(WELL_COLOURS.get(str(well), "grey"), NO_WELL_COLOR)


def _utc(t):
    if t is None:
        return None
    ts = pd.Timestamp(t)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _in_window(times: pd.Series, start, end) -> np.ndarray:
    t = pd.to_datetime(times, utc=True)
    ok = np.ones(len(t), dtype=bool)
    if start is not None:
        ok &= (t >= _utc(start)).to_numpy()
    if end is not None:
        ok &= (t <= _utc(end)).to_numpy()
    return ok


def stage_table(stages: pd.DataFrame, start=None, end=None, only_window: bool = True) -> pd.DataFrame:
    """Stages sorted by well, stage number, with :data:`STAGE_COLUMNS` (``time`` stays a
    UTC timestamp; ``in_window``: inside ``[start, end]``, inclusive, None = open).
    ``only_window`` keeps only the stages in the window."""
    if stages is None or len(stages) == 0:  # same dtypes as a full table (``time`` UTC)
        return pd.DataFrame({c: pd.Series(dtype="datetime64[ns, UTC]" if c == "time" else bool if c == "in_window"
                                          else object) for c in STAGE_COLUMNS})
    df = stages.copy()
    for c in STAGE_COLUMNS:
        if c not in df:
            df[c] = np.nan
    df["time"] = pd.to_datetime(df["time"], utc=True)
    df["in_window"] = _in_window(df["time"], start, end)
    df = df.sort_values(["well", "stage_no"], kind="stable").reset_index(drop=True)
    if only_window:
        df = df[df["in_window"]].reset_index(drop=True)
    return df[list(STAGE_COLUMNS)]


def _ms(t) -> float:
    return (pd.Timestamp(t) - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)


def _iso(t) -> str:
    return pd.Timestamp(t).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def data_time_range(stages: pd.DataFrame, injection: pd.DataFrame | None):
    """(first, last) UTC time over the stages and the injection days (whole days), or None."""
    ts = []
    if stages is not None and len(stages):
        t = pd.to_datetime(stages["time"], utc=True)
        ts += [t.min(), t.max()]
    if injection is not None and len(injection):
        d = pd.to_datetime(pd.Series(injection["date"]).astype(str), utc=True)
        ts += [d.min(), d.max() + pd.Timedelta(days=1)]
    ts = [t for t in ts if t is not pd.NaT and not pd.isna(t)]
    return (min(ts), max(ts)) if ts else None


def timeline_figure(stages: pd.DataFrame, injection: pd.DataFrame | None, start=None, end=None,
                    height: int | None = None) -> dict:
    """Stage timeline (top) and daily injection (bottom) on one time axis.

    Every stage of every well is a marker (diamond: the well's first stage); stages
    outside the window ``[start, end]`` (UTC, either may be None) are faded and the window
    is a shaded band across both panels. Bars: ``injection_bars(layout='split')``, coloured
    by well where the table says (grey when the source has no well id, ToC2ME). With a
    window, the initial view is the window padded by 25 % each side; ``uirevision``
    follows the window so a new window re-centres the view. ``layout.meta``:
    ``{'window': [start, end] ISO or None, 'n_stages', 'n_in_window'}``.
    """
    has_stages = stages is not None and len(stages) > 0
    has_inj = injection is not None and len(injection) > 0
    if not has_stages and not has_inj:
        return empty_figure("No stages and no injection data in this data set")
    start, end = _utc(start), _utc(end)
    traces = []
    wells: list[str] = []
    n_in = 0
    if has_stages:
        sm = stage_markers(stages)
        full = stages.assign(time=pd.to_datetime(stages["time"], utc=True))
        sm = sm.merge(full[[c for c in ("well", "stage_no", "x_km", "y_km") if c in full]].astype({"well": str}),
                      on=["well", "stage_no"], how="left")
        sm["in"] = _in_window(sm["time"], start, end)
        n_in = int(sm["in"].sum())
        wells = sorted(sm["well"].unique().tolist())
        for w in wells:
            d = sm[sm["well"] == w]
            when = d["time"].dt.strftime("%Y-%m-%d %H:%M")
            pos = (" · " + d["x_km"].map("{:.2f}".format) + " E, " + d["y_km"].map("{:.2f}".format) + " N km") \
                if "x_km" in d else ""
            text = ("well " + w + " stage " + d["stage_no"].astype(str) + "<br>" + when + " UTC" + pos).tolist()
            # legend entry (full colour; the data trace's markers may be faded)
            traces.append({"type": "scatter", "mode": "markers", "name": f"well {w} ({len(d)} stages)",
                           "legendgroup": w, "x": [None], "y": [None], "hoverinfo": "skip",
                           "marker": {"symbol": "line-ns", "size": 14, "color": well_color(w),
                                      "line": {"width": 3, "color": well_color(w)}}, "xaxis": "x", "yaxis": "y"})
            traces.append({
                "type": "scatter", "mode": "markers", "name": f"well {w} stages", "legendgroup": w,
                "showlegend": False, "x": d["time"].dt.strftime("%Y-%m-%d %H:%M:%S").tolist(), "y": [w] * len(d),
                "text": text, "hovertemplate": "%{text}<extra></extra>",
                "customdata": d["stage_no"].astype(int).tolist(),
                "marker": {"symbol": ["diamond" if f else "line-ns" for f in d["is_first"]],
                           "size": [13 if f else 16 for f in d["is_first"]], "color": well_color(w),
                           "opacity": [1.0 if i else 0.25 for i in d["in"]],
                           "line": {"width": [1 if f else 2.5 for f in d["is_first"]], "color": well_color(w)}},
                "xaxis": "x", "yaxis": "y"})
    if has_inj:
        bars = injection_bars(injection, layout="split")
        well_col = bars["well"].astype(object).where(bars["well"].notna(), None) if "well" in bars else None
        keys = well_col.fillna("(no well id)") if well_col is not None else pd.Series("(no well id)", index=bars.index)
        for key in sorted(keys.unique().tolist(), key=lambda k: (k == "(no well id)", k)):
            b = bars[keys == key]
            color = NO_WELL_COLOR if key == "(no well id)" else well_color(key)
            name = "injection (no well id)" if key == "(no well id)" else f"injection, well {key}"
            vol = b["volume_m3"].to_numpy(dtype=float)
            traces.append({
                "type": "bar", "name": name, "legendgroup": key if key in wells else "injection",
                "showlegend": key not in wells, "x": b["x_centre"].map(_iso).tolist(),
                "y": b["rate_m3_min"].round(3).tolist(), "width": b["width_ms"].tolist(),
                "customdata": [[str(d), "–" if not math.isfinite(v) else f"{v:,.0f}"]
                               for d, v in zip(b["date"], vol)],
                "hovertemplate": f"{name}<br>%{{customdata[0]}}: %{{y:.2f}} m³/min"
                                 "<br>volume %{customdata[1]} m³<extra></extra>",
                "marker": {"color": color, "opacity": 0.8, "line": {"width": 0.5, "color": "white"}},
                "xaxis": "x", "yaxis": "y2"})
    rng = data_time_range(stages, injection)
    shapes = []
    if (start is not None or end is not None) and rng is not None:
        x0 = start if start is not None else min(rng[0], end)
        x1 = end if end is not None else max(rng[1], start)
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": _iso(x0), "x1": _iso(x1), "y0": 0,
                       "y1": 1, "fillcolor": WINDOW_FILL, "line": {"width": 0}, "layer": "below"})
        for t, open_side in ((start, start is None), (end, end is None)):
            if not open_side:
                shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": _iso(t), "x1": _iso(t),
                               "y0": 0, "y1": 1, "line": {"color": WINDOW_LINE, "width": 1.5, "dash": "dash"}})
    xaxis = {**_AXIS, "type": "date", "anchor": "y2", "title": {"text": "Time (UTC; stage times as given)"}}
    window = None
    if start is not None or end is not None:
        window = [_iso(start) if start is not None else None, _iso(end) if end is not None else None]
        if rng is not None:
            a = start if start is not None else rng[0]
            b = end if end is not None else rng[1]
            if b > a:
                pad = (b - a) * 0.25
                xaxis["range"] = [_iso(a - pad), _iso(b + pad)]
    layout = {
        "template": _TEMPLATE,
        "xaxis": xaxis,
        "yaxis": {**_AXIS, "domain": [0.4, 1.0], "type": "category", "categoryorder": "array",
                  "categoryarray": list(reversed(wells)), "title": {"text": "Well"}, "fixedrange": True},
        "yaxis2": {**_AXIS, "domain": [0.0, 0.3], "title": {"text": "Rate (m³/min)"}, "rangemode": "tozero",
                   "fixedrange": True},
        "barmode": "overlay", "bargap": 0,
        "shapes": shapes,
        "margin": {"l": 64, "r": 12, "t": TOP_LEGEND_PX, "b": 48},
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11},
                   "bgcolor": "rgba(255,255,255,0)", "itemsizing": "constant"},
        "hovermode": "closest", "dragmode": "zoom",
        "uirevision": f"wells-{window}",
        "meta": {"window": window, "n_stages": int(len(stages)) if has_stages else 0, "n_in_window": n_in},
    }
    layout["annotations"] = []
    if not has_inj:
        layout["annotations"].append({"xref": "paper", "yref": "paper", "x": 0.5, "y": 0.15, "showarrow": False,
                                      "text": "no injection data", "font": {"color": "#666"}})
    if not has_stages:
        layout["annotations"].append({"xref": "paper", "yref": "paper", "x": 0.5, "y": 0.7, "showarrow": False,
                                      "text": "no stages", "font": {"color": "#666"}})
    if height:
        layout["height"] = height
    return {"data": traces, "layout": layout}


def _floor_minute(t: pd.Timestamp) -> datetime:
    t = t.floor("min")
    return datetime(t.year, t.month, t.day, t.hour, t.minute, tzinfo=timezone.utc)


def _ceil_minute(t: pd.Timestamp) -> datetime:
    t = t.ceil("min")
    return datetime(t.year, t.month, t.day, t.hour, t.minute, tzinfo=timezone.utc)


def window_from_relayout(relayout: dict | None):
    """What a timeline interaction asks of the time window.

    Returns ``('set', start, end)`` (UTC datetimes, start floored and end ceiled to the
    minute) after a zoom or pan of the time axis, ``('clear', None, None)`` after an
    autoscale / double-click, and None for anything else (resize, legend clicks, a
    y-axis change)."""
    if not isinstance(relayout, dict) or not relayout:
        return None
    if relayout.get("xaxis.autorange"):
        return ("clear", None, None)
    rng = time_range_from_plotly(relayout, "xaxis")
    if rng is None:
        return None
    return ("set", _floor_minute(rng[0]), _ceil_minute(rng[1]))
