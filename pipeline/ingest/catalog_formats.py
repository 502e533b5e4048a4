"""Earthquake catalogues in standard formats: QuakeML (streamed, or through ObsPy) or a plain CSV.

:func:`read_catalog` returns three DataFrames - ``events``, ``picks`` and ``mechanisms`` -
from one file; row-level problems are ``rejects`` rows, a file that cannot be read at all
raises :class:`pipeline.errors.InputError` naming the file (and the line, for XML syntax).

QuakeML is streamed by :mod:`pipeline.ingest.quakeml_stream` (lxml ``iterparse``, ~20x
faster than ``obspy.read_events``); a file it cannot map with certainty is read through ObsPy
instead, with a log line. ``reader="obspy"`` (or ``PIPELINE_QUAKEML_READER=obspy``) forces the
ObsPy path; both feed the same walk below and give the same tables.

Conventions:

* **Event ids** are the origin time written ``YYYYMMDDhhmmss.fff`` (UTC, milliseconds), as
  for ToC2ME; the id the file gives (QuakeML ``publicID``, CSV ``event_id``) is kept in
  ``catalogue_id``. Two events with the same origin millisecond: the second is a reject.
* **Depths** are km, positive down (QuakeML stores metres).
* **Magnitude**: the preferred magnitude (else the first) whatever its type; the type is kept
  in ``magnitude_type``. An event without magnitude is kept with a null magnitude and a
  ``rejects`` row says so (nothing else of it is lost).
* **Picks**: P picks (``phase_hint`` starting with P, or an arrival of phase P pointing at
  the pick) with their time (UTC, ns) and, where given, first-motion polarity as **true
  ground motion** (QuakeML ``positive`` = up = +1, ``negative`` = -1, ``undecidable`` = 0).
  ``method`` is ``manual`` when the pick's ``method_id`` is ``smi:local/method/manual``,
  the picker name when it is one of this pipeline's automatic pickers
  (``smi:local/method/cnn|cct|onset``: such polarities are recomputed from the waveforms, so
  only their time is used), else ``published``.
* **Focal mechanisms**: the preferred nodal plane (else plane 1) becomes plane 1 of a
  ``published`` mechanism; mechanisms this pipeline computed
  (``smi:local/method/computed/...``) are skipped because the build recomputes them.
  Quality from a ``SKHASH quality: X`` comment (as :mod:`pipeline.export.exports` writes);
  the mechanism's ``triggeringOriginID``, when it is not the preferred origin, is the
  location the inversion used (``lat_skhash``...), which this build's SKHASH then uses too.
"""
from __future__ import annotations

import csv
import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..rejects import Rejects

log = logging.getLogger(__name__)

#: pickers whose polarities the build recomputes (their imported picks give only a P time)
AUTOMATIC_METHODS = ("cnn", "cct", "onset")
_LOCAL_METHOD = "smi:local/method/"
_COMPUTED_METHOD = "smi:local/method/computed"
_QUALITY = re.compile(r"SKHASH quality:\s*([A-F])\b")
EVENT_COLUMNS = ["event_id", "catalogue_id", "time", "lat", "lon", "depth_km", "magnitude", "magnitude_type",
                 "source_row"]
PICK_COLUMNS = ["event_id", "network", "station", "location", "channel", "time", "polarity", "method",
                "source_file", "source_line"]


def event_id_of(time: pd.Timestamp) -> str:
    """A UTC origin time -> ``YYYYMMDDhhmmss.fff`` (milliseconds truncated, zero-padded).
    Plain string formatting: the QuakeML reader calls it once per event, where building a
    pandas Series per event cost 60 % of the read (bench/bench_quakeml_read.py)."""
    t = time.tz_convert("UTC") if time.tzinfo is not None else time
    return f"{t:%Y%m%d%H%M%S}.{t.microsecond // 1000:03d}"


def format_event_id(time: pd.Series) -> pd.Series:
    """UTC origin times -> ``YYYYMMDDhhmmss.fff`` (:func:`event_id_of`; NaT -> None)."""
    time = pd.to_datetime(time, utc=True)
    return pd.Series([None if pd.isna(t) else event_id_of(t) for t in time], index=time.index, dtype=object)


def _rel(path: Path, root: Path | None) -> str:
    try:
        return str(path.relative_to(root)) if root else str(path)
    except ValueError:
        return str(path)


def _finish_events(rows: list[dict], rel: str, rejects: Rejects) -> pd.DataFrame:
    ev = pd.DataFrame(rows, columns=EVENT_COLUMNS[1:])
    ev["time"] = pd.to_datetime(ev["time"], utc=True)
    ev.insert(0, "event_id", format_event_id(ev["time"]) if len(ev) else pd.Series(dtype=object))
    dup = ev["event_id"].duplicated()
    for _, r in ev[dup].iterrows():
        rejects.add(rel, r["source_row"] if r["source_row"] > 0 else None,
                    f"second event with origin time {r['event_id']} (same millisecond as an earlier one)",
                    str(r["catalogue_id"]))
    ev = ev[~dup].sort_values("time", kind="stable").reset_index(drop=True)
    for c in ("lat", "lon", "depth_km", "magnitude"):
        ev[c] = ev[c].astype(float)
    ev["source_row"] = ev["source_row"].astype("int64")
    return ev


# --------------------------------------------------------------------------- QuakeML

def _xml_syntax_check(path: Path, rel: str) -> None:
    from lxml import etree
    try:
        etree.parse(str(path))
    except etree.XMLSyntaxError as exc:
        raise InputError(rel, f"not well-formed XML: {exc.msg}", line=exc.lineno) from None
    except OSError as exc:
        raise InputError(rel, f"cannot read: {exc}") from None


def _pick_method(pick) -> str:
    mid = str(pick.method_id) if pick.method_id is not None else ""
    if mid.startswith(_LOCAL_METHOD):
        name = mid[len(_LOCAL_METHOD):]
        if name == "manual" or name in AUTOMATIC_METHODS:
            return name
    return "published"


_POLARITY = {"positive": 1, "negative": -1, "undecidable": 0}


def _km(depth_m) -> float:
    """QuakeML depth (m) -> km, rounded to the mm so 3147.2 m is 3.1472 km, not 3.1471999..."""
    return np.nan if depth_m is None else round(float(depth_m) / 1000.0, 6)


def _location_of(fm, event, preferred) -> dict:
    """``*_skhash`` location: the mechanism's triggering origin when it is not the preferred
    one (the location the inversion used, as :mod:`pipeline.export.exports` writes it)."""
    rid = fm.triggering_origin_id
    if rid is None or preferred is None or str(rid) == str(preferred.resource_id):
        return {}
    for o in event.origins:
        if str(o.resource_id) == str(rid) and o.latitude is not None and o.longitude is not None:
            return {"lat_skhash": float(o.latitude), "lon_skhash": float(o.longitude),
                    "depth_km_skhash": _km(o.depth)}
    return {}


def _fm_row(fm, event_id: str, rel: str, k: int, rejects: Rejects) -> dict | None:
    planes = fm.nodal_planes
    plane = None
    if planes is not None:
        pref = getattr(planes, "preferred_plane", None)
        plane = planes.nodal_plane_2 if pref == 2 else planes.nodal_plane_1
        plane = plane or planes.nodal_plane_1 or planes.nodal_plane_2
    vals = [getattr(plane, a, None) for a in ("strike", "dip", "rake")] if plane is not None else [None] * 3
    if any(v is None or not math.isfinite(float(v)) for v in vals):
        rejects.add(rel, None, f"event {event_id}: focal mechanism {fm.resource_id} has no complete nodal plane",
                    str(fm.resource_id))
        return None
    strike, dip, rake = (float(v) for v in vals)
    if not (0 <= dip <= 90 and -180 <= rake <= 180):
        rejects.add(rel, None, f"event {event_id}: focal mechanism {fm.resource_id}: dip {dip} / rake {rake} "
                               "out of range", str(fm.resource_id))
        return None
    quality = None
    for c in fm.comments or []:
        m = _QUALITY.search(c.text or "")
        if m:
            quality = m.group(1)
    pct = lambda v: None if v is None else 100.0 * float(v)  # noqa: E731 - QuakeML fractions -> percent
    return {"event_id": event_id, "strike": strike % 360.0, "dip": dip, "rake": rake, "quality": quality,
            "n_polarities": fm.station_polarity_count, "polarity_misfit": pct(fm.misfit),
            "sta_distribution_ratio": pct(fm.station_distribution_ratio), "source_line": k}


#: environment switch of the QuakeML reader: ``fast`` (default, :mod:`.quakeml_stream`) or ``obspy``
READER_ENV = "PIPELINE_QUAKEML_READER"
READERS = ("fast", "obspy")


def _obspy_events(path: Path, rel: str):
    from obspy import read_events
    _xml_syntax_check(path, rel)
    try:
        return read_events(str(path), format="QUAKEML")
    except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad QuakeML
        raise InputError(rel, f"not a QuakeML catalogue ({type(exc).__name__}: {exc})") from None


def _fast_events(path: Path, rel: str):
    """Event records of :func:`.quakeml_stream.read_events`; a file it cannot map with
    certainty is read through ObsPy instead, with a log line saying why."""
    from lxml import etree

    from . import quakeml_stream
    try:
        return quakeml_stream.read_events(path)
    except etree.XMLSyntaxError as exc:
        raise InputError(rel, f"not well-formed XML: {exc.msg}", line=exc.lineno) from None
    except OSError as exc:
        raise InputError(rel, f"cannot read: {exc}") from None
    except quakeml_stream.NotMappable as exc:
        log.info("QuakeML %s: %s; reading it through ObsPy instead", rel, exc)
        return _obspy_events(path, rel)


def read_quakeml(path: Path, rejects: Rejects, root: Path | None = None, reader: str | None = None):
    """(events, picks, mechanisms) of a QuakeML file; see the module docstring.

    ``reader``: ``fast`` (streaming lxml, :mod:`pipeline.ingest.quakeml_stream`; the default)
    or ``obspy`` (``obspy.read_events``); when not given, the :data:`READER_ENV` environment
    variable, else ``fast``. Both give the same tables (tests/test_quakeml_stream.py)."""
    import os
    rel = _rel(path, root)
    reader = reader or os.environ.get(READER_ENV) or "fast"
    if reader not in READERS:
        raise ValueError(f"QuakeML reader {reader!r}: use one of {READERS} ({READER_ENV})")
    cat = _fast_events(path, rel) if reader == "fast" else _obspy_events(path, rel)
    ev_rows, pick_rows, fm_rows = [], [], []
    for k, event in enumerate(cat, 1):
        rid = str(event.resource_id)
        origin = event.preferred_origin() or (event.origins[0] if event.origins else None)
        if origin is None or origin.time is None or origin.latitude is None or origin.longitude is None:
            rejects.add(rel, None, f"event {k} ({rid}): no origin with time, latitude and longitude", rid)
            continue
        mag = event.preferred_magnitude() or (event.magnitudes[0] if event.magnitudes else None)
        time = pd.Timestamp(origin.time.ns, unit="ns", tz="UTC")
        ev_rows.append({"catalogue_id": rid, "time": time, "lat": float(origin.latitude),
                        "lon": float(origin.longitude),
                        "depth_km": _km(origin.depth),
                        "magnitude": np.nan if mag is None or mag.mag is None else float(mag.mag),
                        "magnitude_type": None if mag is None else mag.magnitude_type, "source_row": k})
        event_id = event_id_of(time)
        if mag is None or mag.mag is None:
            rejects.add(rel, None, f"event {event_id}: no magnitude (kept, with a null magnitude)", rid)
        p_of_arrival = {str(a.pick_id) for a in origin.arrivals if (a.phase or "").upper().startswith("P")}
        for pick in event.picks:
            phase = (pick.phase_hint or "").upper()
            if not (phase.startswith("P") or str(pick.resource_id) in p_of_arrival):
                continue
            w = pick.waveform_id
            if pick.time is None or w is None or not w.station_code:
                rejects.add(rel, None, f"event {event_id}: P pick {pick.resource_id} without time or station",
                            str(pick.resource_id))
                continue
            pick_rows.append({"event_id": event_id, "network": w.network_code or "", "station": w.station_code,
                              "location": w.location_code or "", "channel": w.channel_code or "",
                              "time": pd.Timestamp(pick.time.ns, unit="ns", tz="UTC"),
                              "polarity": _POLARITY.get(pick.polarity), "method": _pick_method(pick),
                              "source_file": rel, "source_line": None})
        for fm in event.focal_mechanisms:
            if str(fm.method_id or "").startswith(_COMPUTED_METHOD):
                continue  # this pipeline's own computed mechanism: the build recomputes it
            row = _fm_row(fm, event_id, rel, k, rejects)
            if row is not None:
                fm_rows.append({**row, **_location_of(fm, event, origin)})
    events = _finish_events(ev_rows, rel, rejects)
    picks = pd.DataFrame(pick_rows, columns=PICK_COLUMNS)
    mech = pd.DataFrame(fm_rows, columns=["event_id", "strike", "dip", "rake", "quality", "n_polarities",
                                          "polarity_misfit", "sta_distribution_ratio", "lat_skhash", "lon_skhash",
                                          "depth_km_skhash", "source_line"])
    mech = mech[mech["event_id"].isin(events["event_id"])]
    first = ~mech["event_id"].duplicated()
    for _, r in mech[~first].iterrows():
        rejects.add(rel, None, f"event {r['event_id']}: a second published focal mechanism (the first is kept)")
    return events, picks, mech[first].reset_index(drop=True)


# --------------------------------------------------------------------------- CSV

def _csv_rows(path: Path, rel: str, required: list[str]):
    """(header, [(line number, row dict)]) of a CSV file with ``required`` columns."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(rel, f"cannot read: {exc}") from None
    reader = csv.reader(text.splitlines())
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise InputError(rel, "empty file (a header line is needed)") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(rel, f"missing column(s) {missing}; the header is {header}", line=1)
    rows = []
    for n, raw in enumerate(reader, 2):
        if not raw or all(not c.strip() for c in raw):
            continue
        rows.append((n, raw, dict(zip(header, (c.strip() for c in raw)))))
    return header, rows


def _utc(text: str) -> pd.Timestamp:
    t = pd.Timestamp(text)
    if pd.isna(t):
        raise ValueError("empty time")
    return t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")


def _float(text: str, name: str, lo=-math.inf, hi=math.inf, optional=False) -> float:
    if text in ("", None):
        if optional:
            return np.nan
        raise ValueError(f"{name} is empty")
    v = float(text)
    if not (math.isfinite(v) and lo <= v <= hi):
        raise ValueError(f"{name} {text!r} outside [{lo:g}, {hi:g}]")
    return v


def read_catalog_csv(path: Path, rejects: Rejects, root: Path | None = None):
    """(events, empty picks, empty mechanisms) of a CSV ``time,lat,lon,depth_km,magnitude[,event_id]``."""
    rel = _rel(path, root)
    header, rows = _csv_rows(path, rel, ["time", "lat", "lon", "depth_km", "magnitude"])
    out = []
    for n, raw, r in rows:
        try:
            out.append({"catalogue_id": r.get("event_id") or None, "time": _utc(r["time"]),
                        "lat": _float(r["lat"], "lat", -90, 90), "lon": _float(r["lon"], "lon", -180, 180),
                        "depth_km": _float(r["depth_km"], "depth_km", -10, 800, optional=True),
                        "magnitude": _float(r["magnitude"], "magnitude", -10, 10, optional=True),
                        "magnitude_type": r.get("magnitude_type") or None, "source_row": n})
        except (ValueError, TypeError) as exc:
            rejects.add(rel, n, f"unusable catalogue row: {exc}", ",".join(raw))
            continue
        if math.isnan(out[-1]["magnitude"]):
            rejects.add(rel, n, "no magnitude (kept, with a null magnitude)", ",".join(raw))
    events = _finish_events(out, rel, rejects)
    return events, pd.DataFrame(columns=PICK_COLUMNS), pd.DataFrame(columns=["event_id", "strike", "dip", "rake"])


_CSV_POLARITY = {"+": 1, "1": 1, "+1": 1, "u": 1, "up": 1, "c": 1, "positive": 1,
                 "-": -1, "-1": -1, "d": -1, "down": -1, "negative": -1,
                 "0": 0, "x": 0, "?": 0, "undecidable": 0, "": None}


def read_picks_csv(path: Path, events: pd.DataFrame, rejects: Rejects, root: Path | None = None) -> pd.DataFrame:
    """Picks of a CSV ``event_id`` or ``event_time``, ``network, station, [location],
    [channel], phase, time, [polarity], [method]``. ``event_id`` is this pipeline's id or the
    catalogue's own (``catalogue_id``); ``event_time`` matches the nearest origin within
    0.5 s. ``polarity`` is true ground motion: ``+``/``1``/``U``/``C`` up, ``-``/``-1``/``D``
    down, ``0``/``X`` undecidable, empty none. ``method``: ``manual`` or ``published`` (default).
    Only P picks (phase starting with P) are used; other phases are rejects."""
    from .toc2me import nearest_time_join
    rel = _rel(path, root)
    header, rows = _csv_rows(path, rel, ["network", "station", "phase", "time"])
    if "event_id" not in header and "event_time" not in header:
        raise InputError(rel, "needs an event_id or an event_time column", line=1)
    by_id = dict(zip(events["event_id"], events["event_id"]))
    by_id.update({str(c): e for c, e in zip(events.get("catalogue_id", []), events["event_id"]) if c is not None})
    out = []
    for n, raw, r in rows:
        line = ",".join(raw)
        try:
            if not r["phase"].upper().startswith("P"):
                rejects.add(rel, n, f"phase {r['phase']!r} is not P (only P first motions are used)", line)
                continue
            if r.get("event_id"):
                eid = by_id.get(r["event_id"])
            else:
                idx, _ = nearest_time_join([_utc(r["event_time"])], events["time"])
                eid = events["event_id"].iloc[idx[0]] if idx[0] >= 0 else None
            if eid is None:
                rejects.add(rel, n, "pick of an event not in the catalogue", line)
                continue
            pol = r.get("polarity", "").strip().lower()
            if pol not in _CSV_POLARITY:
                raise ValueError(f"polarity {r.get('polarity')!r} is not one of + - 0 U D C X (or empty)")
            method = (r.get("method") or "published").lower()
            if method not in ("manual", "published"):
                raise ValueError(f"method {method!r}: manual or published")
            out.append({"event_id": eid, "network": r["network"], "station": r["station"],
                        "location": r.get("location", ""), "channel": r.get("channel", ""),
                        "time": _utc(r["time"]), "polarity": _CSV_POLARITY[pol], "method": method,
                        "source_file": rel, "source_line": n})
        except (ValueError, TypeError) as exc:
            rejects.add(rel, n, f"unusable pick: {exc}", line)
    return pd.DataFrame(out, columns=PICK_COLUMNS)


def read_catalog(path: Path, rejects: Rejects, root: Path | None = None):
    """(events, picks, mechanisms) of a QuakeML (``.xml``/``.quakeml``/``.qml``) or CSV catalogue."""
    if path.suffix.lower() == ".csv":
        return read_catalog_csv(path, rejects, root)
    return read_quakeml(path, rejects, root)


__all__ = ["AUTOMATIC_METHODS", "format_event_id", "read_catalog", "read_catalog_csv", "read_picks_csv",
           "read_quakeml"]
