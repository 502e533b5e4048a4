"""``python -m pipeline fetch-fdsn``: event waveforms (and stations) of a project from any
FDSN web service.

The project is a folder with ``project.toml`` (see :mod:`pipeline.ingest.project`); only
``catalog`` must exist before the fetch. For each catalogue event one MiniSEED file
``<waveforms>/<event_id>.mseed`` is written, holding every selected station's traces over
``[P - pre, P + post]`` (s), with P the **predicted** first-arrival time:

* with the project's ``velocity_model``: the first-arrival P travel time of
  :func:`pipeline.mechanisms.raytrace.trace` (1-D model, SKHASH's node convention) from
  the event depth (km, positive down) to the station at depth ``-elevation_m / 1000`` (km),
  over the great-circle epicentral distance (:func:`pipeline.geo.great_circle_km`);
* without one: hypocentral distance (straight line, same depths) / :data:`DEFAULT_VP_KM_S`.

An event without a depth is placed at 0 km (its log line says so).

Stations: if the project's ``stations`` file is missing, a StationXML at **channel**
level (so the vertical channels' dips, which decide sensor polarity, are kept) of the
selected codes within ``radius_km`` of the events' centroid, operating during the
catalogue's span, is fetched and written there (default ``stations.xml``); otherwise the
stations are read from that file (StationXML or CSV) and filtered by the network/station
selection.

The data centre is reached through ObsPy's :class:`obspy.clients.fdsn.Client`: ``--client``
is a base URL (``https://geofon.gfz.de``) or one of ObsPy's short names (``IRIS``,
``GFZ``...). The client is created only when something has to be requested (so a run with
nothing left to do sends no request) and with ObsPy's normal service discovery (it reads
the services' ``application.wadl``, as every FDSN server provides), which also fails
early and clearly when the URL is not an FDSN service.

Run behaviour:

* **resumable**: a file is written as a hidden ``.<event_id>.mseed.part`` and renamed when
  complete; an event whose file exists is skipped. An event the service had no data for
  (in an earlier run's log) is skipped too unless ``retry_no_data``;
* **polite**: at least ``delay_s`` seconds between requests, one bulk (POST) request per
  event;
* **failures**: HTTP 204 (or an empty answer, or 404 as sent by services asked with
  ``nodata=404``) is ``no data``; timeouts, connection errors, 429 and 5xx answers and
  unreadable MiniSEED are retried ``retries`` times after ``backoff_s``, 2 x, 4 x ...
  seconds, then the event is ``failed``; other client errors (400, 401, 403, 413) fail the
  event at once. Each attempted event is a line of ``<DIR>/fetch_fdsn_log.csv``
  (``event_id, status, n_traces, message``; appended, the last line of an event is its
  state) and the run goes on.
"""
from __future__ import annotations

import csv
import fnmatch
import io
import logging
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import geo
from ..errors import InputError
from ..rejects import Rejects
from .catalog_formats import _rel
from .waveform_index import DEFAULT_VP_KM_S, predicted_p_s

log = logging.getLogger(__name__)

LOG_NAME = "fetch_fdsn_log.csv"
LOG_COLUMNS = ["event_id", "status", "n_traces", "message"]
DEFAULT_WAVEFORMS = "waveforms"
DEFAULT_STATIONS = "stations.xml"
FETCHED, NO_DATA, FAILED = "fetched", "no data", "failed"
_KM_PER_DEG = geo.EARTH_RADIUS_KM * math.pi / 180.0


class ServiceError(RuntimeError):
    """The FDSN service cannot be used at all (not reachable, not FDSN, no station service)."""


class _NoData(Exception):
    pass


class _Failed(Exception):
    pass


class _BadAnswer(Exception):
    """A 200 answer that is not readable MiniSEED (e.g. cut short): asked again."""


# --------------------------------------------------------------------------- the project

@dataclass
class Layout:
    """Where a project's files are (absolute paths) and which keys its toml lacked."""

    root: Path
    catalog: Path
    stations: Path
    waveforms: Path
    velocity_model: Path | None
    missing_keys: list[str] = field(default_factory=list)   #: of stations, waveforms


def read_layout(root: str | Path) -> Layout:
    """The paths of ``root/project.toml`` that a fetch needs. Unlike
    :func:`pipeline.ingest.project.read_config`, the ``stations`` file and ``waveforms``
    folder may be missing (they are what the fetch makes); their keys may be too (defaults
    ``stations.xml`` and ``waveforms``, reported in ``missing_keys``)."""
    from .project import load_toml
    root = Path(root).resolve()
    if not root.is_dir():
        raise InputError(root, "input folder does not exist")
    path, cfg = load_toml(root, "fetch-fdsn needs one with at least a catalog key "
                                "(see README, 'Fetching waveforms from an FDSN service')")

    def rel(key, default=None):
        value = cfg.get(key, default)
        if not isinstance(value, str) or not value:
            raise InputError(path, f"{key} must be a path relative to {root}")
        return (root / value).resolve()

    if "catalog" not in cfg:
        raise InputError(path, "missing key 'catalog' (the events to fetch waveforms for)")
    catalog = rel("catalog")
    if not catalog.is_file():
        raise InputError(path, f"catalog = {cfg['catalog']!r}: {catalog} does not exist")
    vmodel = rel("velocity_model") if "velocity_model" in cfg else None
    if vmodel is not None and not vmodel.is_file():
        raise InputError(path, f"velocity_model = {cfg['velocity_model']!r}: {vmodel} does not exist")
    return Layout(root=root, catalog=catalog, stations=rel("stations", DEFAULT_STATIONS),
                  waveforms=rel("waveforms", DEFAULT_WAVEFORMS), velocity_model=vmodel,
                  missing_keys=[k for k in ("stations", "waveforms") if k not in cfg])


# --------------------------------------------------------------------------- selection and P times

def codes(text: str | None) -> list[str]:
    """An FDSN code selection (comma list, wildcards ``*``/``?``) as a list; empty = ``*``."""
    out = [c.strip() for c in (text or "").split(",") if c.strip()]
    return out or ["*"]


def _matches(code: str, selection: str) -> bool:
    return any(fnmatch.fnmatchcase(code, pat) for pat in codes(selection))


def centroid(lat, lon) -> tuple[float, float]:
    """Mean position (degrees) of points as the normalised mean of their unit vectors
    (right across the antimeridian, unlike a mean of longitudes)."""
    la, lo = np.radians(np.asarray(lat, float)), np.radians(np.asarray(lon, float))
    v = np.array([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)]).mean(axis=1)
    return float(np.degrees(np.arctan2(v[2], math.hypot(v[0], v[1])))), float(np.degrees(np.arctan2(v[1], v[0])))


# --------------------------------------------------------------------------- requests

class _Pacer:
    """Keeps at least ``delay_s`` seconds between the starts of consecutive requests."""

    def __init__(self, delay_s: float):
        self.delay_s, self._last = max(0.0, delay_s), None
        self.requests = 0

    def wait(self) -> None:
        if self._last is not None:
            left = self.delay_s - (time.monotonic() - self._last)
            if left > 0:
                time.sleep(left)
        self._last = time.monotonic()
        self.requests += 1


def _classify(exc: BaseException) -> str:
    """``'nodata'``, ``'retry'`` (transient: network, rate limit, server side) or ``'fail'``."""
    from obspy.clients.fdsn.header import (FDSNBadGatewayException, FDSNException, FDSNInternalServerException,
                                           FDSNNoDataException, FDSNServiceUnavailableException,
                                           FDSNTimeoutException, FDSNTooManyRequestsException)
    if isinstance(exc, (_NoData, FDSNNoDataException)):
        return "nodata"
    if isinstance(exc, (FDSNTimeoutException, FDSNTooManyRequestsException, FDSNInternalServerException,
                        FDSNBadGatewayException, FDSNServiceUnavailableException, _BadAnswer, OSError)):
        return "retry"
    if type(exc) is FDSNException:  # ObsPy's catch-all: no HTTP answer at all, or an unusual code
        text = str(exc)
        if "Unknown HTTP code: 404" in text:  # a service answering nodata=404 style
            return "nodata"
        return "retry" if text.startswith("Unknown Error") or "Unknown HTTP code: 5" in text else "fail"
    import http.client
    return "retry" if isinstance(exc, http.client.HTTPException) else "fail"


def _short(exc: BaseException) -> str:
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:300]


def _with_retries(request, what: str, pacer: _Pacer, retries: int, backoff_s: float):
    """``request()`` with retries of transient errors; raises _NoData or _Failed."""
    for attempt in range(retries + 1):
        pacer.wait()
        try:
            return request()
        except Exception as exc:  # noqa: BLE001 - classified below, nothing escapes unnamed
            kind = _classify(exc)
            if kind == "nodata":
                raise _NoData(str(exc) if isinstance(exc, _NoData) else
                              "the service has no data for this request (HTTP 204)"
                              if getattr(exc, "status_code", None) == 204 else
                              "the service has no data for this request (HTTP 404)") from None
            if kind == "fail" or attempt == retries:
                tries = f" after {attempt + 1} attempts" if attempt else ""
                raise _Failed(f"{_short(exc)}{tries}") from None
            wait = backoff_s * 2 ** attempt
            log.warning("%s: %s; retrying in %.1f s (%d/%d)", what, _short(exc), wait, attempt + 1, retries)
            time.sleep(wait)


def _connect(url: str, pacer: _Pacer, retries: int, backoff_s: float, timeout_s: float):
    from obspy.clients.fdsn import Client
    from obspy.clients.fdsn.header import DEFAULT_USER_AGENT
    try:
        client = _with_retries(lambda: Client(base_url=url, timeout=timeout_s,
                                              user_agent=f"{DEFAULT_USER_AGENT} fm-workbench-fetch-fdsn"),
                               f"FDSN service {url}", pacer, retries, backoff_s)
    except (_NoData, _Failed) as exc:
        raise ServiceError(f"cannot use the FDSN service {url}: {exc}") from None
    if "dataselect" not in client.services:  # e.g. an event-only service: every event would fail
        raise ServiceError(f"the FDSN service {url} has no dataselect (waveform) service")
    return client


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a hidden ``.part`` file and a rename, so a file
    that exists is complete (the resume test)."""
    part = path.with_name(f".{path.name}.part")
    with open(part, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(part, path)


# --------------------------------------------------------------------------- stations

def fetch_stations(client, layout: Layout, events: pd.DataFrame, sel: dict, radius_km: float, post_s: float,
                   pacer: _Pacer, retries: int, backoff_s: float, rejects: Rejects) -> pd.DataFrame:
    """StationXML (level=channel) of the selection within ``radius_km`` (km) of the events'
    centroid, written to ``layout.stations``; returns its stations table."""
    from obspy import UTCDateTime
    lat, lon = centroid(events["lat"], events["lon"])
    t0 = UTCDateTime(ns=int(events["time"].min().value))
    t1 = UTCDateTime(ns=int(events["time"].max().value)) + post_s + 60.0
    query = dict(network=sel["network"], station=sel["station"], location=sel["location"], channel=sel["channel"],
                 level="channel", latitude=round(lat, 5), longitude=round(lon, 5),
                 maxradius=radius_km / _KM_PER_DEG, starttime=t0, endtime=t1)

    def request():
        buf = io.BytesIO()
        client.get_stations(filename=buf, **query)
        return buf.getvalue()

    what = f"stations within {radius_km:g} km of ({lat:.4f}, {lon:.4f})"
    try:
        raw = _with_retries(request, what, pacer, retries, backoff_s)
    except _NoData:
        raise InputError(layout.stations.name, f"the FDSN service has no {what} for network={sel['network']} "
                                               f"station={sel['station']} channel={sel['channel']} "
                                               "(widen --radius-km or change the selection)") from None
    except _Failed as exc:
        raise ServiceError(f"{what}: {exc}") from None
    from .station_formats import read_stations
    layout.stations.parent.mkdir(parents=True, exist_ok=True)
    part = layout.stations.with_name(f".{layout.stations.name}.part")
    part.write_bytes(raw)
    try:  # check it is usable StationXML before it takes the project's stations path
        read_stations(part, Rejects(), layout.root)
    except InputError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, layout.stations)
    return read_stations(layout.stations, rejects, layout.root)


def _select_stations(stations: pd.DataFrame, sel: dict) -> pd.DataFrame:
    keep = [_matches(n, sel["network"]) and _matches(s, sel["station"])
            for n, s in zip(stations["network"], stations["station"])]
    return stations[np.asarray(keep, dtype=bool)].reset_index(drop=True)


# --------------------------------------------------------------------------- the log

def read_log(path: Path) -> dict[str, str]:
    """Last status of each event in a fetch log (empty if there is none)."""
    if not path.is_file():
        return {}
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["event_id"]: r["status"] for r in csv.DictReader(fh) if r.get("event_id")}


class _Log:
    """Appends rows to ``fetch_fdsn_log.csv`` as they happen (an interrupted run keeps them)."""

    def __init__(self, path: Path):
        self.path = path
        new = not path.is_file() or path.stat().st_size == 0
        self._fh = open(path, "a", newline="", encoding="utf-8")
        self._w = csv.writer(self._fh)
        if new:
            self._w.writerow(LOG_COLUMNS)

    def add(self, event_id: str, status: str, n_traces: int, message: str) -> None:
        self._w.writerow([event_id, status, n_traces, message])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


# --------------------------------------------------------------------------- the run

@dataclass
class Report:
    """Counts of one run and what the summary line says."""

    events: int = 0
    fetched: int = 0
    traces: int = 0
    skipped: int = 0              #: file already there
    skipped_no_data: int = 0      #: no data in an earlier run
    no_data: int = 0
    failed: int = 0
    requests: int = 0             #: requests this run sent (a service discovery counts as one)
    stations: int = 0
    stations_note: str = ""
    p_model: str = ""
    notes: list[str] = field(default_factory=list)
    waveforms: Path | None = None
    log: Path | None = None

    def summary(self) -> str:
        skipped = f"{self.skipped + self.skipped_no_data} skipped"
        if self.skipped_no_data:
            skipped += f" ({self.skipped_no_data} without data in an earlier run)"
        line = (f"fetch-fdsn: {self.events} events: {self.fetched} fetched ({self.traces} traces), {skipped}, "
                f"{self.no_data} no data, {self.failed} failed; {self.stations} stations {self.stations_note}; "
                f"P predicted {self.p_model}; waveforms in {self.waveforms}; log {self.log}")
        return "; ".join([line] + self.notes)


def fetch_fdsn(root: str | Path, client_url: str, *, network: str = "*", station: str = "*", location: str = "*",
               channel: str = "*", pre_s: float = 2.0, post_s: float = 4.0, radius_km: float = 20.0,
               delay_s: float = 0.2, max_events: int | None = None, retries: int = 3, backoff_s: float = 2.0,
               retry_no_data: bool = False, timeout_s: float = 120.0) -> Report:
    """Fill the project's waveform folder from the FDSN service ``client_url`` (module
    docstring). ``pre_s``/``post_s``: seconds before/after the predicted P; ``radius_km``:
    station search radius around the events' centroid (only when the stations are fetched);
    ``delay_s``: minimum seconds between requests; ``max_events``: only the first N events
    (by origin time)."""
    if pre_s < 0 or post_s < 0 or pre_s + post_s <= 0:
        raise InputError("--pre/--post", "the window [P - pre, P + post] must have a positive length")
    from obspy import UTCDateTime
    from .catalog_formats import read_catalog
    from .station_formats import read_stations
    layout = read_layout(root)
    rejects = Rejects()
    events, _, _ = read_catalog(layout.catalog, rejects, layout.root)
    if events.empty:
        raise InputError(layout.catalog.name, "no usable event")
    sel = {"network": network, "station": station, "location": location, "channel": channel}
    pacer, client, retries = _Pacer(delay_s), None, max(0, retries)
    rep = Report(waveforms=layout.waveforms, log=layout.root / LOG_NAME)
    for key in layout.missing_keys:
        default = DEFAULT_STATIONS if key == "stations" else DEFAULT_WAVEFORMS
        rep.notes.append(f"project.toml has no {key} key: used {default!r} (add {key} = \"{default}\" "
                         f"so the build finds it)")

    if layout.stations.is_file():
        stations = _select_stations(read_stations(layout.stations, rejects, layout.root), sel)
        rep.stations_note = f"from {_rel(layout.stations, layout.root)}"
    else:
        if layout.stations.suffix.lower() == ".csv":
            raise InputError(layout.stations.name, "missing; fetch-fdsn would write StationXML there: point "
                                                   "`stations` at a .xml path in project.toml, or provide the CSV")
        client = _connect(client_url, pacer, retries, backoff_s, timeout_s)
        stations = fetch_stations(client, layout, events, sel, radius_km, post_s, pacer, retries, backoff_s,
                                  rejects)
        rep.stations_note = f"fetched into {_rel(layout.stations, layout.root)} (within {radius_km:g} km)"
    if stations.empty:
        raise InputError(layout.stations.name, f"no station matches network={network} station={station}")
    rep.stations = len(stations)

    vmodel = None
    if layout.velocity_model is not None:
        from ..mechanisms.skhash import read_velocity_model
        try:
            vmodel = read_velocity_model(layout.velocity_model)
        except (ValueError, FileNotFoundError) as exc:
            raise InputError(layout.velocity_model.name, str(exc)) from None
        rep.p_model = f"with the velocity model {layout.velocity_model.name}"
    else:
        rep.p_model = (f"with a constant {DEFAULT_VP_KM_S:g} km/s over the hypocentral distance "
                       "(no velocity_model in project.toml)")
    for r in rejects.to_frame().head(10).itertuples():  # the build's rejects table will list them all
        log.warning("%s%s: %s", r.file, "" if pd.isna(r.line) else f", line {r.line}", r.reason)
    if len(rejects) > 10:
        log.warning("... and %d more input rows with a problem", len(rejects) - 10)

    if max_events is not None:
        events = events.head(max(0, max_events))
    rep.events = len(events)
    layout.waveforms.mkdir(parents=True, exist_ok=True)
    earlier = read_log(rep.log)
    flog = _Log(rep.log)
    lats, lons = stations["lat"].to_numpy(float), stations["lon"].to_numpy(float)
    elev = stations["elevation_m"].to_numpy(float)
    try:
        for k, ev in enumerate(events.itertuples(index=False), 1):
            eid = str(ev.event_id)
            out = layout.waveforms / f"{eid}.mseed"
            if out.is_file():
                rep.skipped += 1
                continue
            if earlier.get(eid) == NO_DATA and not retry_no_data:
                rep.skipped_no_data += 1
                continue
            if client is None:
                client = _connect(client_url, pacer, retries, backoff_s, timeout_s)
            depth = float(ev.depth_km)
            note = ""
            if not math.isfinite(depth):
                depth, note = 0.0, "; no depth in the catalogue: P predicted for 0 km"
            tp = predicted_p_s(float(ev.lat), float(ev.lon), depth, lats, lons, elev, vmodel)
            origin = UTCDateTime(ns=int(ev.time.value))
            bulk = [(n, s, loc, cha, origin + t - pre_s, origin + t + post_s)
                    for n, s, t in zip(stations["network"], stations["station"], tp)
                    for loc in codes(location) for cha in codes(channel)]
            status, n_tr, msg = _fetch_event(client, bulk, out, f"event {eid}", pacer, retries, backoff_s)
            msg += note
            flog.add(eid, status, n_tr, msg)
            log.info("[%d/%d] event %s: %s (%d traces) %s", k, len(events), eid, status, n_tr, msg)
            if status == FETCHED:
                rep.fetched += 1
                rep.traces += n_tr
            elif status == NO_DATA:
                rep.no_data += 1
            else:
                rep.failed += 1
    finally:
        flog.close()
        rep.requests = pacer.requests
    return rep


def _fetch_event(client, bulk: list, out: Path, what: str, pacer: _Pacer, retries: int, backoff_s: float):
    """(status, n_traces, message) of one event's bulk request; writes the answer's MiniSEED
    bytes unchanged (the data centre's records and encoding) when fetched."""
    import obspy

    def request():
        buf = io.BytesIO()
        client.get_waveforms_bulk(bulk, filename=buf)
        raw = buf.getvalue()
        if not raw:  # some services answer 200 with an empty body instead of 204
            raise _NoData("empty answer")
        try:
            st = obspy.read(io.BytesIO(raw), format="MSEED")
        except Exception as exc:  # noqa: BLE001 - a truncated or garbled answer: ask again
            raise _BadAnswer(f"unreadable MiniSEED ({type(exc).__name__}: {exc})") from None
        if len(st) == 0:
            raise _NoData("no trace in the answer")
        return raw, st

    try:
        raw, st = _with_retries(request, what, pacer, retries, backoff_s)
    except _NoData as exc:
        return NO_DATA, 0, str(exc)
    except _Failed as exc:
        return FAILED, 0, str(exc)
    _atomic_write(out, raw)
    n_sta = len({(tr.stats.network, tr.stats.station) for tr in st})
    asked = len({(b[0], b[1]) for b in bulk})
    return FETCHED, len(st), f"{n_sta} of {asked} stations"


# --------------------------------------------------------------------------- CLI

def _cmd(args) -> int:
    try:
        rep = fetch_fdsn(args.input, args.client, network=args.network, station=args.station,
                         location=args.location, channel=args.channel, pre_s=args.pre, post_s=args.post,
                         radius_km=args.radius_km, delay_s=args.delay, max_events=args.max_events,
                         retries=args.retries, backoff_s=args.backoff, retry_no_data=args.retry_no_data)
    except ServiceError as exc:
        print(f"error: {exc} (check --client and the network connection, then run again: it resumes)",
              file=sys.stderr)
        return 1
    print(rep.summary())
    return 1 if rep.failed else 0


def add_cli(sub) -> None:
    """Register ``fetch-fdsn`` on the ``python -m pipeline`` sub-parsers."""
    f = sub.add_parser("fetch-fdsn", help="fetch the catalogue's event waveforms (and stations) of a project.toml "
                                          "folder from an FDSN web service (resumable)")
    f.add_argument("--input", required=True, help="project folder holding project.toml (needs at least catalog)")
    f.add_argument("--client", required=True,
                   help="FDSN service: base URL (e.g. https://geofon.gfz.de) or an ObsPy short name (IRIS, GFZ...)")
    f.add_argument("--network", default="*", help="network code(s), comma list, wildcards * ? (default *)")
    f.add_argument("--station", default="*", help="station code(s) (default *)")
    f.add_argument("--location", default="*", help="location code(s), -- for empty (default *)")
    f.add_argument("--channel", default="*", help="channel code(s), e.g. HH?,DP? (default *: every channel)")
    # the build keeps P +- 5 s of every trace (waveform_index.CUT_PRE_S/CUT_POST_S): the same
    # windows here give the same SNR noise window as ToC2ME's event files, plus 1 s for a
    # predicted P that is early or late
    f.add_argument("--pre", type=float, default=6.0, help="window start before the predicted P, s (default 6)")
    f.add_argument("--post", type=float, default=6.0, help="window end after the predicted P, s (default 6)")
    f.add_argument("--radius-km", type=float, default=20.0,
                   help="stations within this distance of the events' centroid, km, when the stations file is "
                        "fetched (default 20)")
    f.add_argument("--delay", type=float, default=0.2, help="minimum seconds between requests (default 0.2)")
    f.add_argument("--max-events", type=int, help="only the first N events by origin time")
    f.add_argument("--retries", type=int, default=3, help="retries of a request after a network or server "
                                                          "error (default 3)")
    f.add_argument("--backoff", type=float, default=2.0, help="seconds before the first retry, doubled for "
                                                              "each next one (default 2)")
    f.add_argument("--retry-no-data", action="store_true",
                   help="ask again for events the service had no data for in an earlier run")
    f.set_defaults(func=_cmd)


__all__ = ["DEFAULT_VP_KM_S", "Layout", "Report", "ServiceError", "add_cli", "centroid", "codes", "fetch_fdsn",
           "fetch_stations", "predicted_p_s", "read_layout", "read_log"]
