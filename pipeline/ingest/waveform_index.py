"""Waveform files of any layout and grouping, indexed by what they hold and matched to
events by **time**, never by file name.

* :func:`index_waveforms` reads the header of every waveform file under a folder (any
  depth: a file per trace, per station-day as in an SDS archive, per event...) into one row
  per trace segment: ``path`` (relative to the folder), ``network, station, location,
  channel``, ``start_ns``/``end_ns`` (first/last sample, integer ns since 1970 UTC) and
  ``sampling_rate`` (Hz). Segments of one channel that touch (gap <= 1.5 samples) are one
  row. The index is cached (Parquet) and only new or changed files (size, mtime) are read
  again. A file that cannot be read is a ``rejects`` row.
* :func:`station_p_times` gives each (event, station) one P time: the catalogue's or
  picks file's pick, else a SAC header pick (``t1``/``t3``) of a file whose ``o`` header
  names the event's origin.
* :func:`match_events` gives each event the trace segments that cover the picker's window
  around its stations' P picks (``P - PRE_P_S .. P + POST_P_S``), to be cut to
  ``P - CUT_PRE_S .. P + CUT_POST_S`` when read. Files whose station is unknown or that
  cover no event's P window are ``rejects`` rows with the reason.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..rejects import Rejects

log = logging.getLogger(__name__)

SUFFIXES = (".sac", ".mseed", ".miniseed", ".msd", ".ms")
#: SDS archive file names carry no suffix: NET.STA.LOC.CHA.TYPE.YEAR.DAY
SDS_NAME = re.compile(r"^[^.]*\.[^.]+\.[^.]*\.[^.]+\.[A-Z]\.\d{4}\.\d{3}$")
INDEX_COLUMNS = ["path", "size", "mtime_ns", "network", "station", "location", "channel", "start_ns", "end_ns",
                 "sampling_rate", "p_ns", "p_source", "origin_ns"]
#: seconds of trace kept before / after P. ToC2ME's event files hold P +- 5 s; continuous
#: data are cut the same way so the SNR (noise = trace start .. P - 0.5 s) means the same
#: whatever the file layout
CUT_PRE_S = 5.0
CUT_POST_S = 5.0
STAGE = "waveforms"


def is_waveform_name(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in SUFFIXES or bool(SDS_NAME.match(name))


def list_files(root: Path, rejects: Rejects | None = None) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime ns) of the waveform files under ``root``, sorted.
    Other files (not hidden) are ``rejects`` rows: nothing is skipped without a word."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            p = Path(dirpath) / f
            rel = str(p.relative_to(root))
            if not is_waveform_name(f):
                if rejects is not None:
                    rejects.add(rel, None, "not a waveform file name (.mseed/.miniseed/.msd/.ms/.sac or an SDS "
                                           "NET.STA.LOC.CHA.D.YEAR.DAY name)", stage=STAGE)
                continue
            st = p.stat()
            out.append((rel, st.st_size, st.st_mtime_ns))
    return out


def _merge_segments(rows: list[dict]) -> list[dict]:
    """Join segments of one channel that touch (gap <= 1.5 samples)."""
    rows.sort(key=lambda r: (r["network"], r["station"], r["location"], r["channel"], r["start_ns"]))
    out: list[dict] = []
    for r in rows:
        prev = out[-1] if out else None
        if prev is not None and all(prev[k] == r[k] for k in ("network", "station", "location", "channel")) \
                and prev["sampling_rate"] == r["sampling_rate"] \
                and r["start_ns"] - prev["end_ns"] <= 1.5e9 / r["sampling_rate"]:
            prev["end_ns"] = max(prev["end_ns"], r["end_ns"])
        else:
            out.append(dict(r))
    return out


def index_file(path: Path) -> list[dict]:
    """Index rows (without path/size/mtime) of one file; raises if it cannot be read."""
    if path.suffix.lower() == ".sac":
        from ..io import sac as sacio
        sf = sacio.read(path)  # validated header; never trusts ObsPy's distance computation
        end = sf.starttime_ns + round((sf.npts - 1) * 1e9 / sf.sampling_rate)
        return [{"network": sf.network, "station": sf.station, "location": sf.location, "channel": sf.channel,
                 "start_ns": sf.starttime_ns, "end_ns": end, "sampling_rate": sf.sampling_rate,
                 "p_ns": sf.p_time_ns, "p_source": sf.p_source, "origin_ns": sf.origin_ns}]
    from obspy import read
    st = read(str(path), headonly=True)
    if len(st) == 0:
        raise ValueError("file holds no trace")
    rows = []
    for tr in st:
        s = tr.stats
        if not s.station or not np.isfinite(s.sampling_rate) or s.sampling_rate <= 0 or s.npts <= 0:
            raise ValueError(f"trace {tr.id}: no station, no samples or a bad sampling rate {s.sampling_rate}")
        rows.append({"network": s.network, "station": s.station, "location": s.location, "channel": s.channel,
                     "start_ns": s.starttime.ns, "end_ns": s.endtime.ns, "sampling_rate": float(s.sampling_rate)})
    return _merge_segments(rows)


def index_waveforms(root: str | Path, rejects: Rejects, cache: str | Path | None = None) -> pd.DataFrame:
    """The index of every waveform file under ``root`` (see the module docstring)."""
    root = Path(root)
    listing = list_files(root, rejects)
    old = None
    if cache is not None and Path(cache).is_file():
        try:
            old = pd.read_parquet(cache)
        except Exception:  # noqa: BLE001 - a torn cache is rebuilt
            old = None
    known = {}
    if old is not None and len(old) and list(old.columns) == INDEX_COLUMNS:
        for key, grp in old.groupby(["path", "size", "mtime_ns"], sort=False):
            known[key] = grp
    frames, fresh, bad = [], 0, 0
    for rel, size, mtime in listing:
        hit = known.get((rel, size, mtime))
        if hit is not None:
            frames.append(hit)
            continue
        fresh += 1
        try:
            rows = index_file(root / rel)
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a reject, the index goes on
            bad += 1
            rejects.add(rel, None, f"unreadable waveform file: {type(exc).__name__}: {exc}"[:300], stage=STAGE)
            continue
        frames.append(pd.DataFrame([{"path": rel, "size": size, "mtime_ns": mtime, **r} for r in rows]))
    index = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=INDEX_COLUMNS)
    for c in INDEX_COLUMNS:
        if c not in index:
            index[c] = None
    index = index[INDEX_COLUMNS].astype({"size": "int64", "mtime_ns": "int64", "start_ns": "int64",
                                         "end_ns": "int64", "sampling_rate": float, "p_ns": "Int64",
                                         "origin_ns": "Int64", "p_source": object})
    if cache is not None:
        from ..tables import write_parquet
        import pyarrow as pa
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        write_parquet(pa.Table.from_pandas(index, preserve_index=False), Path(cache))
    log.info("waveform index: %d files (%d read now, %d unreadable), %d trace segments",
             len(listing), fresh, bad, len(index))
    return index


def header_picks(index: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """P picks written in SAC headers (``t1`` picked, else ``t3`` predicted) of files that
    also say their event's origin (``o``): the event is the catalogue event nearest that
    origin within 0.5 s. Without ``o`` a header pick cannot be tied to an event and is unused."""
    from .toc2me import nearest_time_join
    h = index[index["p_ns"].notna() & index["origin_ns"].notna()]
    if h.empty:
        return pd.DataFrame(columns=["event_id", "network", "station", "p_ns", "p_source"])
    idx, _ = nearest_time_join(pd.to_datetime(h["origin_ns"].astype("int64"), utc=True), events["time"])
    h = h[idx >= 0].assign(event_id=events["event_id"].to_numpy()[idx[idx >= 0]])
    # the vertical's pick first: it is the one the polarity is read on
    h = h.assign(_z=~h["channel"].str.upper().str.endswith("Z")).sort_values(["event_id", "network", "station", "_z"])
    h = h.drop_duplicates(["event_id", "network", "station"])
    return h[["event_id", "network", "station", "p_ns", "p_source"]].astype({"p_ns": "int64"})


def station_p_times(picks: pd.DataFrame, index: pd.DataFrame | None = None,
                    events: pd.DataFrame | None = None) -> pd.DataFrame:
    """One P time per (event, network, station): a catalogue/picks-file pick (manual, else
    published, else any, the earliest), else a SAC header pick (:func:`header_picks`).
    ``p_source``: ``catalog`` or the header's ``picked``/``predicted``."""
    cols = ["event_id", "network", "station", "p_ns", "p_source"]
    frames = []
    if not picks.empty:
        rank = picks["method"].map({"manual": 0, "published": 1}).fillna(2)
        df = picks.assign(_rank=rank, p_ns=pd.to_datetime(picks["time"], utc=True).dt.as_unit("ns").astype("int64"),
                          p_source="catalog")
        df = df.sort_values(["event_id", "network", "station", "_rank", "p_ns"], kind="stable")
        frames.append(df.drop_duplicates(["event_id", "network", "station"])[cols])
    if index is not None and events is not None:
        frames.append(header_picks(index, events))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=cols)
    return pd.concat(frames, ignore_index=True).drop_duplicates(["event_id", "network", "station"])


#: P velocity (km/s) of the straight-ray travel time used without a velocity model
DEFAULT_VP_KM_S = 6.0


def predicted_p_s(ev_lat: float, ev_lon: float, ev_depth_km: float, st_lat, st_lon, st_elevation_m,
                  velocity_model: pd.DataFrame | None = None, use_elevation: bool = True) -> np.ndarray:
    """Predicted P travel time (s) from one event to each station.

    Depths in km (positive down), elevations in m (positive up, NaN = 0). With a velocity
    model (``depth_km, vp_km_s``): the first arrival of
    :func:`pipeline.mechanisms.raytrace.trace`; without: hypocentral distance /
    :data:`DEFAULT_VP_KM_S`. ``use_elevation=False`` puts every station at depth 0, the
    convention of this pipeline's SKHASH runs and demo (depths below the station datum).
    """
    from .. import geo
    dist = np.atleast_1d(geo.great_circle_km(ev_lat, ev_lon, np.asarray(st_lat, float), np.asarray(st_lon, float)))
    rz = -np.nan_to_num(np.asarray(st_elevation_m, float), nan=0.0) / 1000.0
    if not use_elevation:
        rz = np.zeros_like(rz)
    straight = np.hypot(dist, ev_depth_km - rz) / DEFAULT_VP_KM_S
    if velocity_model is None:
        return straight
    from ..mechanisms import raytrace
    tt = raytrace.trace(ev_depth_km, dist, rz, velocity_model)["travel_time_s"].to_numpy()
    # no ray reaches the station (a shadow zone of the model): keep a window anyway
    return np.where(np.isfinite(tt), tt, straight)


def predicted_picks(events: pd.DataFrame, stations: pd.DataFrame, velocity_model: pd.DataFrame | None,
                    have: pd.DataFrame | None = None) -> pd.DataFrame:
    """Predicted P times (``p_source='predicted'``) for every (event, station) that ``have``
    (event_id, network, station) lacks: origin time + :func:`predicted_p_s` with stations at
    depth 0, as SKHASH is run here (the velocity model's depths are below the stations).
    Events without a depth get none (a travel time from an unknown depth would be a guess)."""
    cols = ["event_id", "network", "station", "p_ns", "p_source"]
    known = set() if have is None or have.empty else set(zip(have["event_id"], have["network"], have["station"]))
    rows = []
    st_lat, st_lon = stations["lat"].to_numpy(float), stations["lon"].to_numpy(float)
    st_el = stations["elevation_m"].to_numpy(float) if "elevation_m" in stations else np.zeros(len(stations))
    nets, stas = stations["network"].astype(str).to_numpy(), stations["station"].astype(str).to_numpy()
    origin_ns = pd.to_datetime(events["time"], utc=True).dt.as_unit("ns").astype("int64").to_numpy()
    for eid, lat, lon, depth, t0 in zip(events["event_id"], events["lat"], events["lon"], events["depth_km"], origin_ns):
        if not np.isfinite(depth):
            continue
        tt = predicted_p_s(lat, lon, depth, st_lat, st_lon, st_el, velocity_model, use_elevation=False)
        for n, s, t in zip(nets, stas, tt):
            if (eid, n, s) not in known and np.isfinite(t):
                rows.append((eid, n, s, int(t0 + round(t * 1e9)), "predicted"))
    return pd.DataFrame(rows, columns=cols)


def match_events(index: pd.DataFrame, p_times: pd.DataFrame, stations: pd.DataFrame,
                 rejects: Rejects, pre_s: float, post_s: float) -> dict[str, dict]:
    """``{event_id: {"items": [(path, net, sta, loc, cha, cut_start_ns, cut_end_ns)],
    "picks": [(net, sta, p_ns, p_source)]}}`` for events with at least one covering trace.

    A segment serves an (event, station) when it covers ``P - pre_s .. P + post_s``; it is
    cut to ``P - CUT_PRE_S .. P + CUT_POST_S`` (within the file) when read.
    """
    known = set(zip(stations["network"].astype(str), stations["station"].astype(str)))
    idx_known = np.array([(n, s) in known for n, s in zip(index["network"], index["station"])], dtype=bool)
    for path, grp in index[~idx_known].groupby("path", sort=True):
        ids = sorted({f"{n}.{s}" for n, s in zip(grp["network"], grp["station"])})
        rejects.add(path, None, f"station(s) {', '.join(ids[:5])} not in the stations file", stage=STAGE)
    index = index[idx_known]
    m = p_times.merge(index.drop(columns=["p_ns", "p_source"]), on=["network", "station"], how="inner")
    cover = (m["start_ns"] <= m["p_ns"] - round(pre_s * 1e9)) & (m["end_ns"] >= m["p_ns"] + round(post_s * 1e9))
    m = m[cover]
    used = set(m["path"])
    for path in sorted(set(index["path"]) - used):
        rejects.add(path, None, "covers no event's P window (no catalogue pick of its station falls in it)",
                    stage=STAGE)
    out: dict[str, dict] = {}
    m = m.sort_values(["event_id", "network", "station", "channel", "path"], kind="stable")
    cut0 = np.maximum(m["p_ns"].to_numpy() - round(CUT_PRE_S * 1e9), m["start_ns"].to_numpy())
    cut1 = np.minimum(m["p_ns"].to_numpy() + round(CUT_POST_S * 1e9), m["end_ns"].to_numpy())
    m = m.assign(cut0=cut0, cut1=cut1)
    for eid, grp in m.groupby("event_id", sort=True):
        items = [tuple(x) for x in grp[["path", "network", "station", "location", "channel", "cut0", "cut1"]]
                 .itertuples(index=False, name=None)]
        picks = [tuple(x) for x in grp.drop_duplicates(["network", "station"])[
            ["network", "station", "p_ns", "p_source"]].itertuples(index=False, name=None)]
        out[str(eid)] = {"items": [(str(a), str(b), str(c), str(d), str(e), int(f), int(g))
                                   for a, b, c, d, e, f, g in items],
                         "picks": [(str(a), str(b), int(c), str(d)) for a, b, c, d in picks]}
    return out


__all__ = ["CUT_PRE_S", "CUT_POST_S", "DEFAULT_VP_KM_S", "INDEX_COLUMNS", "header_picks", "index_file",
           "index_waveforms", "is_waveform_name", "list_files", "match_events", "predicted_p_s", "predicted_picks",
           "station_p_times"]
