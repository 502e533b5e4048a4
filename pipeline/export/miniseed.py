"""The ``waveforms`` table's P-aligned snippets as MiniSEED, one file per event.

Each row of ``waveforms`` (``event_id, network, station, location, channel,
sampling_rate`` Hz, ``t0_s`` = time of the first sample relative to P in s, ``samples``
float32 in the RECORDED convention: no polarity reversal applied, as the sensor wrote them)
becomes one trace of ``<folder>/<event_id>.mseed``:

* start time = P time + ``t0_s``, the P time being ``polarities.p_time`` (UTC) of the
  same event, network and station (horizontal channels use their station's vertical P);
* samples unchanged, FLOAT32 encoding (MiniSEED 2, big-endian records); a start time
  with sub-0.1-ms digits is kept to the microsecond by blockette 1001 (ObsPy writes it);
* a row without a known P time is skipped (counted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["MiniseedResult", "p_times", "write_event_miniseed"]

_KEY = ["event_id", "network", "station"]
_SAFE = re.compile(r"[^\w.-]")  # event ids are origin times; anything else cannot reach the path


@dataclass
class MiniseedResult:
    """What :func:`write_event_miniseed` wrote: ``files`` (paths), ``traces`` written,
    ``skipped`` traces (no P time), ``events`` with a file."""

    files: list
    traces: int = 0
    skipped: int = 0

    @property
    def events(self) -> int:
        return len(self.files)


def p_times(polarities: pd.DataFrame) -> pd.Series:
    """The P time (UTC) per (event_id, network, station): the first non-null ``p_time`` of
    the station's polarity rows (every picker of a build reads the same P). A Series
    indexed by the key; empty when the table has no ``p_time`` column."""
    if "p_time" not in polarities.columns or polarities.empty:
        return pd.Series([], dtype="datetime64[us, UTC]",
                         index=pd.MultiIndex.from_arrays([[], [], []], names=_KEY))
    t = polarities[[*_KEY, "p_time"]].copy()
    for c in _KEY:
        t[c] = t[c].astype(str)
    t["p_time"] = pd.to_datetime(t["p_time"], utc=True)
    t = t[t["p_time"].notna()].sort_values([*_KEY, "p_time"], kind="stable").drop_duplicates(_KEY)
    return t.set_index(_KEY)["p_time"]


def _text(v) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def write_event_miniseed(waveforms: pd.DataFrame, ptimes: pd.Series, folder, *,
                         result: MiniseedResult | None = None) -> MiniseedResult:
    """Write the rows of ``waveforms`` (any number of events) to ``folder/<event_id>.mseed``,
    one file per event holding its traces (sorted by network, station, location,
    channel); ``ptimes`` from :func:`p_times`. An existing file of the same event is
    replaced. ``result``: accumulate into it (batched calls). See the module docstring."""
    from obspy import Stream, Trace, UTCDateTime

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    res = result if result is not None else MiniseedResult(files=[])
    if waveforms.empty:
        return res
    w = waveforms.copy()
    for c in _KEY:
        w[c] = w[c].astype(str)
    idx = pd.MultiIndex.from_frame(w[_KEY])
    w["p_abs"] = ptimes.reindex(idx).to_numpy() if len(ptimes) else pd.NaT
    w["loc_code"] = w["location"].map(_text) if "location" in w.columns else ""
    w["cha_code"] = w["channel"].map(_text)
    for eid, rows in w.groupby("event_id", sort=True):
        traces = []
        rows = rows.sort_values(["network", "station", "loc_code", "cha_code"], kind="stable")
        for r in rows.itertuples(index=False):
            p = r.p_abs
            if p is None or pd.isna(p):
                res.skipped += 1
                continue
            data = np.ascontiguousarray(np.asarray(r.samples, dtype=np.float32))
            start = UTCDateTime(ns=int(pd.Timestamp(p).value) + int(round(float(r.t0_s) * 1e9)))
            tr = Trace(data=data, header={"network": r.network, "station": r.station, "location": r.loc_code,
                                          "channel": r.cha_code, "sampling_rate": float(r.sampling_rate),
                                          "starttime": start})
            traces.append(tr)
        if not traces:
            continue
        path = folder / (_SAFE.sub("_", eid) + ".mseed")
        tmp = path.with_name(path.name + ".part")
        Stream(traces).write(str(tmp), format="MSEED", encoding="FLOAT32")
        tmp.replace(path)
        res.files.append(path)
        res.traces += len(traces)
    return res
