"""NSw strike-versus-time against the fracturing stages and the daily injection rate.

Inputs are the project tables (:mod:`pipeline.schema`): ``mechanisms`` (already cut to the
NSw selection, e.g. with :func:`pipeline.ingest.regions.subset_mask`), ``stages`` and
``injection``. Times are UTC; naive timestamps are taken as UTC.

Fixes of the original figure (analyses.md, defect 16):

* :func:`stage_markers` returns **every** stage of every well (the original drew only
  each well's first stage), flagging the first one;
* :func:`injection_bars` places each daily bar **on the day it describes** -- from 00:00
  to 24:00 UTC of ``date``, centred at noon -- instead of centred on midnight (a -12 h
  shift). The ToC2ME injection file has several rows on many days and no well column;
  ``layout='split'`` gives each of a day's rows an equal slice of that day so none hides
  another, ``layout='overlay'`` gives each the whole day.

Strike: :func:`pipeline.analysis.mechanism_stats.nsw_strike` (into [90, 270]). Marker
size: the original area ``(ML + 4)^3`` pt^2 is kept as ``marker_area``; ``marker_size``
is its square root (a diameter, what Plotly's ``marker.size`` expects).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.analysis.mechanism_stats import nsw_strike

#: well colours of the original figure
WELL_COLOURS = {"A": "green", "B": "blue", "C": "purple", "D": "red"}



def to_utc(values) -> pd.Series | pd.Timestamp:
    """Timestamps (Series, array, scalar, str or date) as tz-aware UTC; naive = UTC."""
    if not isinstance(values, (pd.Series, pd.Index, np.ndarray, list, tuple)):
        t = pd.Timestamp(values)
        return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    v = values if isinstance(values, pd.Series) else pd.Series(values)
    t = pd.to_datetime(v, format="mixed") if _is_text(v) else pd.to_datetime(v)
    return t.dt.tz_localize("UTC") if t.dt.tz is None else t.dt.tz_convert("UTC")


def _is_text(series: pd.Series) -> bool:
    return series.dtype == object or pd.api.types.is_string_dtype(series.dtype)


def strike_time_table(mechanisms: pd.DataFrame, missing_magnitude_size: float = 4.0) -> pd.DataFrame:
    """Rows for the strike-vs-time scatter, sorted by time.

    Columns: ``event_id, time`` (UTC), ``strike`` (plane 1, as given), ``strike_norm``
    ([90, 270], see module docstring), ``magnitude``, ``marker_area`` (``(ML + 4)^3``,
    pt^2, clipped at 0), ``marker_size`` (its square root; ``missing_magnitude_size``
    where ML is missing), ``group``.
    """
    ml = mechanisms["magnitude"].to_numpy(dtype=float) if "magnitude" in mechanisms else np.full(len(mechanisms), np.nan)
    area = np.clip(ml + 4.0, 0.0, None) ** 3
    size = np.where(np.isfinite(area), np.sqrt(area), missing_magnitude_size)
    out = pd.DataFrame({
        "event_id": mechanisms["event_id"].to_numpy(),
        "time": to_utc(mechanisms["time"]).array,
        "strike": mechanisms["strike"].to_numpy(dtype=float),
        "strike_norm": nsw_strike(mechanisms["strike"].to_numpy(dtype=float)),
        "magnitude": ml,
        "marker_area": area,
        "marker_size": size,
        "group": mechanisms["group"].to_numpy() if "group" in mechanisms else None,
    })
    out["time"] = to_utc(out["time"])
    return out.sort_values("time", kind="stable").reset_index(drop=True)


def group_strike_stats(table: pd.DataFrame, value_col: str = "strike_norm") -> pd.DataFrame:
    """Per group: ``n``, ``mean``, ``std`` (sample, ddof=1) of the normalised strike (deg).

    The NSw strikes are already in [90, 270], where no group straddles the wrap, so a
    linear mean is meaningful (ToC2ME g1: 182.7 +- 2.8 classified on 0.1-deg angles).
    """
    g = table.groupby("group", sort=True)[value_col]
    return pd.DataFrame({"n": g.size(), "mean": g.mean(), "std": g.std(ddof=1)}).reset_index()


def burst_counts(times, windows) -> pd.DataFrame:
    """Number of events per time window: ``windows`` is a list of (label, start, end)
    with ``start <= t < end`` (UTC). Returns DataFrame ``label, start, end, n``."""
    t = to_utc(pd.Series(times))
    rows = []
    for label, start, end in windows:
        s, e = to_utc(start), to_utc(end)
        rows.append((label, s, e, int(((t >= s) & (t < e)).sum())))
    return pd.DataFrame(rows, columns=["label", "start", "end", "n"])


def stage_markers(stages: pd.DataFrame, wells=None) -> pd.DataFrame:
    """Every stage of every (selected) well as a time marker, sorted by time.

    Columns: ``well, stage_no, time`` (UTC), ``is_first`` (the well's first stage in
    time), ``colour`` (:data:`WELL_COLOURS`, grey for unknown wells). ``wells`` limits
    the wells (default all).
    """
    df = stages if wells is None else stages[stages["well"].isin(list(wells))]
    out = pd.DataFrame({
        "well": df["well"].astype(str).to_numpy(),
        "stage_no": df["stage_no"].to_numpy(),
        "time": to_utc(df["time"]).array,
    })
    out["time"] = to_utc(out["time"])
    out = out.sort_values(["time", "well", "stage_no"], kind="stable").reset_index(drop=True)
    out["is_first"] = ~out.duplicated("well")
    out["colour"] = out["well"].map(WELL_COLOURS).fillna("grey")
    return out


def injection_bars(injection: pd.DataFrame, layout: str = "split") -> pd.DataFrame:
    """Daily injection bars placed on the day each row describes.

    ``injection`` has ``date`` (calendar day, UTC) and ``rate_m3_min`` (plus optional
    ``volume_m3``, ``well``). Returns one row per input row, sorted by date, with
    ``date, rate_m3_min, volume_m3, well, n_in_day, slot, x_start, x_end, x_centre``
    (UTC timestamps) and ``width_ms`` (bar width in milliseconds, for Plotly's
    ``width`` on a date axis). ``layout='split'``: a day's ``n`` rows get slots
    ``[day + k/n, day + (k+1)/n)``, k in input order; ``'overlay'``: each spans the day.
    """
    if layout not in ("split", "overlay"):
        raise ValueError("layout must be 'split' or 'overlay'")
    day0 = to_utc(pd.Series(injection["date"]).astype(str)).dt.floor("D")
    out = pd.DataFrame({
        "date": day0.dt.date.to_numpy(),
        "day_start": day0.array,
        "rate_m3_min": injection["rate_m3_min"].to_numpy(dtype=float),
        "volume_m3": injection["volume_m3"].to_numpy(dtype=float) if "volume_m3" in injection else np.nan,
        "well": injection["well"].to_numpy() if "well" in injection else None,
    })
    out["day_start"] = to_utc(out["day_start"])
    out = out.sort_values("day_start", kind="stable").reset_index(drop=True)
    out["n_in_day"] = out.groupby("day_start")["rate_m3_min"].transform("size").astype(int)
    out["slot"] = out.groupby("day_start").cumcount().astype(int)
    frac = (1.0 / out["n_in_day"]) if layout == "split" else pd.Series(1.0, index=out.index)
    offset = out["slot"] * frac if layout == "split" else 0.0
    out["x_start"] = out["day_start"] + pd.to_timedelta(offset * 86400.0, unit="s")
    out["x_end"] = out["x_start"] + pd.to_timedelta(frac * 86400.0, unit="s")
    out["x_centre"] = out["x_start"] + (out["x_end"] - out["x_start"]) / 2
    out["width_ms"] = frac * 86_400_000.0
    return out.drop(columns="day_start")


def time_range_from_plotly(data: dict | None, axis: str = "xaxis"):
    """A brushed/zoomed time range from Plotly callback data, as (start, end) UTC, or None.

    Accepts ``relayoutData`` (``'{axis}.range[0]'``/``'[1]'`` or ``'{axis}.range'``;
    ``'{axis}.autorange'`` means "no filter" -> None) and ``selectedData`` from a box
    select (``{'range': {'x': [a, b]}}``). Plotly sends naive date strings in the axis'
    displayed time, which is UTC here; the pair is returned in increasing order.
    """
    if not data:
        return None
    if data.get(f"{axis}.autorange"):
        return None
    lo = hi = None
    if f"{axis}.range[0]" in data and f"{axis}.range[1]" in data:
        lo, hi = data[f"{axis}.range[0]"], data[f"{axis}.range[1]"]
    elif f"{axis}.range" in data:
        lo, hi = data[f"{axis}.range"][:2]
    elif isinstance(data.get("range"), dict):
        key = "x" if axis == "xaxis" else axis.replace("axis", "")
        rng = data["range"].get(key)
        if rng:
            lo, hi = rng[:2]
    if lo is None or hi is None:
        return None
    try:
        a, b = to_utc(lo), to_utc(hi)
    except (ValueError, TypeError):
        return None
    return (a, b) if a <= b else (b, a)


def time_mask(times, time_range) -> np.ndarray:
    """Boolean mask of ``times`` inside the closed ``time_range`` (start, end); all True
    when ``time_range`` is None (no brush)."""
    t = to_utc(pd.Series(times))
    if time_range is None:
        return np.ones(len(t), dtype=bool)
    start, end = (to_utc(v) for v in time_range)
    return ((t >= start) & (t <= end)).to_numpy()


def filter_time_range(df: pd.DataFrame, time_range, time_col: str = "time") -> pd.DataFrame:
    """Rows of ``df`` whose ``time_col`` lies in ``time_range`` (see :func:`time_mask`)."""
    return df[time_mask(df[time_col], time_range)]
