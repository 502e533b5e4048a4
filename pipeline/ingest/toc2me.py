"""Ingest the public ToC2ME data folder (layout of ``shared/toc2me``, see its README).

:func:`load` returns every table of :data:`pipeline.schema.REQUIRED_TABLES` as DataFrames
ready for :func:`pipeline.tables.write_tables`.

Conventions and decisions (all inputs are documented in the data folder's README):

* **Times** are UTC; ``time`` is always the catalogue origin time.
* **Mechanisms** are joined to the catalogue **once, here, by nearest origin time within
  0.5 s** (:func:`nearest_time_join`), never by id string and never by column 8 of the
  ``mt_solution`` files.
* **Event ids** are origin times written ``YYYYMMDDhhmmss.fff``. The dataset's own ids
  (mechanism files, waveform folders, pick files) are SKHASH-solution times that differ
  from the catalogue time by 0-0.3 s (0.01-0.02 s typically; e.g. the demo event
  ``20161104064824.680`` is ``06:48:24.66`` in the catalogue). So an event with a
  published mechanism keeps that published id as ``event_id``; every other event's id is
  its catalogue time (the catalogue ``Second`` has 2 decimals, so ids end in ``0``).
  ``events.catalogue_id`` always holds the catalogue-time id; ``mechanisms.event_id``
  equals the matched ``events.event_id`` and ``mechanisms.published_id`` the id written
  in the file (the same string on this data).
* **Published mechanisms**: the 2,519 quality-A events are the union of the two
  quality-A files (20250317: catalogue locations, 20241114: SKHASH solution-A
  locations -> ``lat_skhash``/``lon_skhash``/``depth_km_skhash``); both list the same
  events with identical angles, which is verified per event (a mismatch is a
  ``crosscheck`` reject of the 20241114 row and the 20250317 angles are kept). The SWe
  A+B file is a separate SKHASH run: its 600 events missing from the quality-A list are
  added with ``quality='B'`` (inferred from the file name; no SKHASH location); for every
  one of its 913 events its own angles are kept in ``strike_swe``/``dip_swe``/``rake_swe``
  because the published SWe subsets were cut on them (:mod:`pipeline.ingest.regions`).
* ``published_set`` lists, ``;``-separated in this order, the published files that
  include the event: ``quality_A`` (both quality-A files), ``SWe_A_B``, ``SWe_lowdip``
  (the 142-event file), ``NSw`` (the West-Fault file). ``published_group`` is the group
  file (g1..g4, other) that lists the event. The group/NSw/low-dip files are reference
  copies: they only feed these two columns (they are optional inputs).
* **Rejects**: every input row that is not used becomes a ``rejects`` row with the file
  (relative to the input folder), the 1-based line (xlsx: sheet row, header = row 1), the
  reason and the raw content. Stage ``ingest`` = unparseable or out-of-range row or a
  duplicate; ``join`` = no catalogue event within 0.5 s; ``crosscheck`` = inconsistent
  with another published file. Duplicates: a catalogue row whose origin time equals an
  earlier row's (same ``event_id``) is rejected; a mechanism row matching the same
  catalogue event as an earlier row of the same file is rejected.
* **Sensor polarity** is data, never a network code: ``stations.reversed`` comes from the
  sensor-polarity CSV (:data:`SENSORS_FILE` in the input folder, else the shipped
  :data:`SHIPPED_SENSORS`). A listed station without a row there is an ``ingest`` reject
  (its recorded polarity cannot be turned into ground motion); rows for stations the
  station list lacks are ignored.
* A missing or unreadable required file raises :class:`pipeline.errors.InputError`.
"""
from __future__ import annotations

import csv
import io
import logging
import math
import re
from datetime import datetime
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from pipeline import geo
from pipeline.errors import InputError
from pipeline.mechanisms import enrich
from pipeline.rejects import Rejects
from . import regions
from .station_formats import read_sensor_polarity

log = logging.getLogger(__name__)

DATASET = "toc2me"
FRAME_METHOD = "tangent-plane (WGS84 radii at origin)"
JOIN_TOLERANCE_S = 0.5

CATALOGUE_FILE = "catalog/ToC2ME.xlsx"
STATIONS_FILE = "catalog/stationlist_ToC2ME.txt"
STAGES_FILE = "catalog/nsw/StageTimeLocation_ToC2ME_2.txt"
INJECTION_FILE = "catalog/nsw/injection_volume.csv"
MECH_CATALOGUE_LOC_FILE = "catalog/mt_solution_20250317_SKHASH_quality_A.txt"  # solution B locations
MECH_SKHASH_LOC_FILE = "catalog/mt_solution_20241114_SKHASH_quality_A.txt"     # solution A locations
SWE_AB_FILE = "catalog/swe/mt_solution_20250317_SKHASH_SWe_quality_A_B.txt"

#: the file names do not follow the well letters (README 7.4): one = D ... four = A
WELL_FILES = {
    "A": "catalog/well-location-four.txt",
    "B": "catalog/well-location-three.txt",
    "C": "catalog/well-location-two.txt",
    "D": "catalog/well-location-one.txt",
}

#: well of each row range (1-based, inclusive) of the stage file, as hard-coded by the
#: original script and confirmed by the stage longitudes (README 7.6)
STAGE_ROWS_BY_WELL = (("A", 1, 21), ("B", 22, 45), ("C", 46, 170), ("D", 171, 186))

#: sensor polarity (``network,station,reversed``, read by
#: :func:`pipeline.ingest.station_formats.read_sensor_polarity`, the parser of the files
#: source's ``reversed`` column): this file of the input folder when it exists, else
#: :data:`SHIPPED_SENSORS`
SENSORS_FILE = "catalog/sensors_ToC2ME.csv"
#: the sensor polarity of the public ToC2ME stations, shipped with the code because the data
#: set has no StationXML: every DHZ is recorded inverted (README 3.4)
SHIPPED_SENSORS = Path(__file__).with_name("toc2me_sensors.csv")

#: published_set tokens, in the order they are written
QUALITY_A_TOKEN = "quality_A"
TOKEN_ORDER = (QUALITY_A_TOKEN, regions.SWE_AB_TOKEN, "SWe_lowdip", "NSw")
#: optional reference copies -> published_set token
REFERENCE_SET_FILES = {
    "SWe_lowdip": "catalog/swe/mt_solution_20250319_SKHASH_SWe_quality_A_B_without_northest_low_dip.txt",
    "NSw": "catalog/nsw/mt_solution_20241114_SKHASH_quality_A_West_Fault_with_mag.txt",
}
#: optional reference copies -> published_group
REFERENCE_GROUP_FILES = {
    "g1": "catalog/mt_solution_group1_20250319.txt",
    "g2": "catalog/mt_solution_group2_20250319.txt",
    "g3": "catalog/mt_solution_group3_20250319.txt",
    "g4": "catalog/mt_solution_group4_20250319.txt",
    "other": "catalog/mt_solution_group_other_20250319.txt",
}

_CATALOGUE_COLUMNS = ("Latitude", "Longitude", "Depth", "Year", "Month", "Day", "Hour", "Minute", "Second", "Magnitude")
_ID_PATTERN = re.compile(r"^\d{14}\.\d{1,6}$")
_ANGLES = ("strike", "dip", "rake")


# --- nearest-time join --------------------------------------------------------------------

def _as_utc_ns(times) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ns since epoch, valid mask) of datetimes; naive ones are taken as UTC."""
    idx = pd.DatetimeIndex(pd.to_datetime(pd.Index(times), utc=True)).as_unit("ns")
    valid = ~np.asarray(idx.isna())
    return idx.asi8.copy(), valid


def nearest_time_join(times, catalogue_times, tol_s: float = JOIN_TOLERANCE_S) -> tuple[np.ndarray, np.ndarray]:
    """Match each of ``times`` to the nearest of ``catalogue_times`` within ``tol_s`` seconds.

    Both are datetime-likes (naive = UTC); ``catalogue_times`` need not be sorted.
    Returns ``(idx, dt_s)``: ``idx[i]`` is the position in ``catalogue_times`` of the
    nearest catalogue time, or -1 when none lies within ``tol_s`` (inclusive) or
    ``times[i]`` is NaT; ``dt_s[i]`` is ``|times[i] - catalogue_times[idx[i]]|`` in seconds
    (NaN where ``idx`` is -1). An exact tie between two catalogue times goes to the
    earlier one. Several ``times`` may match the same catalogue time; callers decide.
    Vectorised (sort + ``searchsorted``): O((n + m) log m).
    """
    t, t_ok = _as_utc_ns(times)
    c, c_ok = _as_utc_ns(catalogue_times)
    pos = np.flatnonzero(c_ok)
    order = np.argsort(c[pos], kind="stable")
    cs, pos = c[pos][order], pos[order]
    idx = np.full(t.shape, -1, dtype=np.int64)
    dt = np.full(t.shape, np.nan)
    if cs.size == 0 or t.size == 0:
        return idx, dt
    right = np.clip(np.searchsorted(cs, t, side="left"), 0, cs.size - 1)
    left = np.clip(right - 1, 0, cs.size - 1)
    d_left, d_right = np.abs(t - cs[left]), np.abs(cs[right] - t)
    take_right = d_right < d_left  # ties keep the earlier (left) time
    nearest = np.where(take_right, right, left)
    dist = np.where(take_right, d_right, d_left)
    ok = t_ok & (dist <= round(tol_s * 1e9))
    idx[ok] = pos[nearest[ok]]
    dt[ok] = dist[ok] / 1e9
    return idx, dt


# --- input access -------------------------------------------------------------------------

class _Source:
    """The input folder plus the rejects collected while reading it."""

    def __init__(self, input_dir: str | Path):
        self.root = Path(input_dir)
        self.rejects = Rejects()

    def path(self, rel: str, required: bool = True) -> Path | None:
        """Absolute path of ``rel``; a missing required file raises InputError."""
        p = self.root / rel
        if p.is_file():
            return p
        if required:
            raise InputError(p, "required input file is missing")
        log.warning("optional input %s is missing; skipped", p)
        return None

    def lines(self, rel: str, required: bool = True) -> list[tuple[int, str]] | None:
        """(1-based line number, text) of the non-blank lines of text file ``rel``."""
        p = self.path(rel, required)
        if p is None:
            return None
        try:
            text = p.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(p, f"cannot read as UTF-8 text: {exc}") from exc
        return [(i, s) for i, s in enumerate(text.splitlines(), start=1) if s.strip()]

    def reject(self, rel: str, line: int | None, reason: str, content=None, stage: str = "ingest") -> None:
        self.rejects.add(rel, line, reason, content, stage)


# --- per-field converters (raise ValueError with a readable reason) ----------------------

def _number(name: str, lo: float = -math.inf, hi: float = math.inf) -> Callable[[str], float]:
    """Converter: finite float within [lo, hi]."""
    def conv(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a number") from None
        if not math.isfinite(v) or not lo <= v <= hi:
            raise ValueError(f"{name} {text} outside {lo:g}..{hi:g}")
        return v
    return conv


def _integer(name: str, lo: float = -math.inf, hi: float = math.inf) -> Callable[[str], int]:
    """Converter: integer (written without a fraction) within [lo, hi]."""
    def conv(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise ValueError(f"{name} {text!r} is not an integer") from None
        if not lo <= v <= hi:
            raise ValueError(f"{name} {text} outside {lo:g}..{hi:g}")
        return v
    return conv


def _text(text: str) -> str:
    return text


def _origin_id(text: str) -> str:
    """Converter: an event id ``YYYYMMDDhhmmss.fff`` that is a valid time."""
    if not _ID_PATTERN.match(text):
        raise ValueError(f"event id {text!r} is not an origin time YYYYMMDDhhmmss.fff")
    try:
        datetime.strptime(text, "%Y%m%d%H%M%S.%f")
    except ValueError:
        raise ValueError(f"event id {text!r} is not a valid date/time") from None
    return text


LAT = _number("latitude", -90, 90)
LON = _number("longitude", -180, 180)


def _parse_rows(src: _Source, rel: str, fields: Sequence[tuple[str, Callable]], n_optional: int = 0,
                required: bool = True) -> pd.DataFrame | None:
    """Parse whitespace-separated text file ``rel`` with one record per non-blank line.

    ``fields`` are (column, converter); the last ``n_optional`` may be absent. A line with
    another number of fields or a field its converter refuses becomes a reject; the rest
    is returned with extra columns ``line`` (1-based) and ``raw``. None if an optional
    file is missing.
    """
    lines = src.lines(rel, required)
    if lines is None:
        return None
    n_max, n_min = len(fields), len(fields) - n_optional
    names = [f for f, _ in fields]
    rows = []
    for no, raw in lines:
        parts = raw.split()
        if not n_min <= len(parts) <= n_max:
            want = " or ".join(str(n) for n in range(n_min, n_max + 1))
            src.reject(rel, no, f"expected {want} fields, found {len(parts)}", raw)
            continue
        try:
            values = [conv(p) for (_, conv), p in zip(fields, parts)]
        except ValueError as exc:
            src.reject(rel, no, str(exc), raw)
            continue
        rows.append(dict(zip(names, values), line=no, raw=raw))
    return pd.DataFrame(rows, columns=names + ["line", "raw"])


# --- catalogue ----------------------------------------------------------------------------

def _read_catalogue(src: _Source) -> pd.DataFrame:
    """Events from ``ToC2ME.xlsx`` (sheet 1, header row 1), read by column *name*.

    (The original script read it by position with ``skiprows=1``, which mislabelled every
    column after Longitude and dropped the first event.)
    """
    p = src.path(CATALOGUE_FILE)
    try:
        raw = pd.read_excel(p, sheet_name=0, header=0, engine="openpyxl")
    except Exception as exc:  # openpyxl raises many types for a corrupt/non-xlsx file
        raise InputError(p, f"cannot read as an .xlsx workbook: {exc}") from exc
    missing = [c for c in _CATALOGUE_COLUMNS if c not in raw.columns]
    if missing:
        raise InputError(p, f"missing column(s) {missing} in the header row", line=1)
    raw = raw[list(_CATALOGUE_COLUMNS)]
    num = raw.apply(pd.to_numeric, errors="coerce")
    reasons = _catalogue_row_problems(num)
    bad = reasons.notna()
    for i in np.flatnonzero(bad.to_numpy()):
        src.reject(CATALOGUE_FILE, i + 2, reasons.iloc[i], _row_text(raw.iloc[i]))
    good = num[~bad.to_numpy()]
    time = _catalogue_times(good)
    events = pd.DataFrame({
        "event_id": _format_event_id(time),
        "time": time,
        "lat": good["Latitude"].to_numpy(float),
        "lon": good["Longitude"].to_numpy(float),
        "depth_km": good["Depth"].to_numpy(float),
        "magnitude": good["Magnitude"].to_numpy(float),
        "source_row": (good.index.to_numpy() + 2).astype(np.int64),  # header is sheet row 1
    })
    return _drop_duplicate_events(src, events)


def _catalogue_row_problems(num: pd.DataFrame) -> pd.Series:
    """Reason per catalogue row that cannot be used (None where the row is fine)."""
    reasons = pd.Series([None] * len(num), index=num.index, dtype=object)

    def flag(mask, text):
        hit = mask & reasons.isna()
        reasons[hit] = text

    for col in ("Latitude", "Longitude", "Year", "Month", "Day", "Hour", "Minute", "Second"):
        flag(num[col].isna(), f"{col} missing or not a number")
    flag(~num["Latitude"].between(-90, 90), "Latitude outside -90..90")
    flag(~num["Longitude"].between(-180, 180), "Longitude outside -180..180")
    flag(~num["Second"].between(0, 60, inclusive="left"), "Second outside 0..<60")
    whole = num[["Year", "Month", "Day", "Hour", "Minute"]]
    flag((whole != np.floor(whole)).any(axis=1), "Year..Minute must be whole numbers")
    ok = reasons.isna()
    if ok.any():
        base = pd.to_datetime(whole[ok].astype("int64").rename(columns=str.lower), errors="coerce")
        bad_date = pd.Series(False, index=num.index)
        bad_date[ok] = base.isna()
        flag(bad_date, "invalid date/time (Year..Minute)")
    return reasons


def _catalogue_times(num: pd.DataFrame) -> pd.Series:
    """UTC origin times from the Year..Second columns (seconds rounded to 1 ms)."""
    parts = num[["Year", "Month", "Day", "Hour", "Minute"]].astype("int64").rename(columns=str.lower)
    ms = np.round(num["Second"].to_numpy(float) * 1000).astype("int64")
    time = pd.to_datetime(parts) + pd.to_timedelta(ms, unit="ms")
    return time.dt.tz_localize("UTC").reset_index(drop=True)


def _format_event_id(time: pd.Series) -> pd.Series:
    """Origin time -> ``YYYYMMDDhhmmss.fff`` (milliseconds, zero-padded)."""
    ms = (time.dt.microsecond // 1000).astype("int64").astype(str).str.zfill(3)
    return (time.dt.strftime("%Y%m%d%H%M%S") + "." + ms).astype(object)


def _row_text(row: pd.Series) -> str:
    return ",".join("" if pd.isna(v) else str(v) for v in row.to_numpy())


def _drop_duplicate_events(src: _Source, events: pd.DataFrame) -> pd.DataFrame:
    """Reject catalogue rows whose origin time (hence event_id) repeats an earlier row.

    Two events at one millisecond cannot be told apart by the time join, so only the
    first is kept.
    """
    dup = events.duplicated("event_id", keep="first")
    if dup.any():
        first = events.drop_duplicates("event_id").set_index("event_id")["source_row"]
        for _, e in events[dup].iterrows():
            src.reject(CATALOGUE_FILE, int(e.source_row),
                       f"duplicate origin time {e.event_id} (first at row {int(first[e.event_id])})",
                       f"{e.event_id},{e.lat},{e.lon},{e.depth_km},{e.magnitude}")
    return events[~dup].sort_values("time", kind="stable").reset_index(drop=True)


# --- stations, wells, stages, injection ----------------------------------------------------

def shipped_sensors(rejects: Rejects | None = None) -> pd.DataFrame:
    """``network, station, reversed`` of the public ToC2ME stations (:data:`SHIPPED_SENSORS`)."""
    return read_sensor_polarity(SHIPPED_SENSORS, rejects if rejects is not None else Rejects(),
                                SHIPPED_SENSORS.parents[2])


def sensors_file(root: Path) -> Path:
    """The sensor-polarity file a build of the input folder ``root`` reads: its
    :data:`SENSORS_FILE` when it exists, else :data:`SHIPPED_SENSORS`."""
    own = Path(root) / SENSORS_FILE
    return own if own.is_file() else SHIPPED_SENSORS


def read_sensors(src: _Source) -> tuple[pd.DataFrame, str]:
    """(``network, station, reversed`` table, the file's name for messages): the input
    folder's :data:`SENSORS_FILE`, else :data:`SHIPPED_SENSORS` (:func:`sensors_file`).
    Bad rows are rejects."""
    path = sensors_file(src.root)
    if path != SHIPPED_SENSORS:
        return read_sensor_polarity(path, src.rejects, src.root), SENSORS_FILE
    return shipped_sensors(src.rejects), str(SHIPPED_SENSORS.relative_to(SHIPPED_SENSORS.parents[2]))


def _read_stations(src: _Source, origin) -> pd.DataFrame:
    """Stations from ``stationlist_ToC2ME.txt``: ``station network lon lat`` (lon first);
    ``reversed`` from the sensor-polarity file (:func:`read_sensors`)."""
    rows = _parse_rows(src, STATIONS_FILE, [("station", _text), ("network", _text), ("lon", LON), ("lat", LAT)])
    dup = rows.duplicated(["network", "station"], keep="first")
    for _, r in rows[dup].iterrows():
        src.reject(STATIONS_FILE, int(r.line), f"duplicate station {r.network}.{r.station}", r.raw)
    st = rows[~dup].copy()
    st["elevation_m"] = 0.0  # every ToC2ME station file sets 0 (README 3.2); true ~820-970 m
    sensors, sensors_file = read_sensors(src)
    st = st.merge(sensors, on=["network", "station"], how="left", validate="one_to_one")
    unknown = st["reversed"].isna()
    for _, r in st[unknown].iterrows():
        src.reject(STATIONS_FILE, int(r.line), f"station {r.network}.{r.station} has no sensor polarity in "
                   f"{sensors_file} (whether its vertical is recorded inverted is unknown)", r.raw)
    st = st[~unknown].copy()
    st["reversed"] = st["reversed"].astype(bool)
    st["source_row"] = st.pop("line").astype("int64")
    st = enrich.add_local_coords(st.drop(columns="raw"), origin)
    return st[["network", "station", "lat", "lon", "elevation_m", "x_km", "y_km", "reversed", "source_row"]] \
        .sort_values(["network", "station"]).reset_index(drop=True)


def _read_wells(src: _Source, origin) -> pd.DataFrame:
    """Well paths, one row per vertex (``lat lon`` lines, toe/north first as given)."""
    parts = []
    for well, rel in WELL_FILES.items():
        rows = _parse_rows(src, rel, [("lat", LAT), ("lon", LON)])
        rows.insert(0, "well", well)
        rows.insert(1, "vertex", np.arange(len(rows), dtype=np.int32))
        parts.append(rows.rename(columns={"line": "source_row"}).drop(columns="raw"))
    wells = enrich.add_local_coords(pd.concat(parts, ignore_index=True), origin)
    return wells[["well", "vertex", "lat", "lon", "x_km", "y_km", "source_row"]]


def well_of_stage_row(row: int) -> str | None:
    """Well of 1-based row ``row`` of the stage file (:data:`STAGE_ROWS_BY_WELL`)."""
    for well, first, last in STAGE_ROWS_BY_WELL:
        if first <= row <= last:
            return well
    return None


def _read_stages(src: _Source, origin) -> pd.DataFrame:
    """Stages: ``year month day hour lon lat day_index`` (lon first; hour resolution;
    time zone not stated, taken as UTC like every other time). The well comes from the
    row number (:data:`STAGE_ROWS_BY_WELL`); ``stage_no`` is 1-based in time order."""
    fields = [("year", _integer("year", 1900, 2100)), ("month", _integer("month", 1, 12)),
              ("day", _integer("day", 1, 31)), ("hour", _integer("hour", 0, 23)),
              ("lon", LON), ("lat", LAT), ("day_index", _number("day_index"))]
    rows = _parse_rows(src, STAGES_FILE, fields)
    rows["time"] = pd.to_datetime(rows[["year", "month", "day", "hour"]], errors="coerce", utc=True)
    rows["well"] = [well_of_stage_row(n) for n in rows["line"]]
    keep = rows["time"].notna() & rows["well"].notna()
    for _, r in rows[~keep].iterrows():
        why = "invalid date" if pd.isna(r.time) else "row outside the documented well row ranges"
        src.reject(STAGES_FILE, int(r.line), why, r.raw)
    st = rows[keep].sort_values(["well", "time", "line"], kind="stable").copy()
    st["stage_no"] = (st.groupby("well").cumcount() + 1).astype(np.int32)
    st["source_row"] = st["line"].astype("int64")
    st = enrich.add_local_coords(st, origin)
    return st[["well", "stage_no", "time", "lat", "lon", "x_km", "y_km", "day_index", "source_row"]].reset_index(drop=True)


def _read_injection(src: _Source) -> pd.DataFrame:
    """Daily injection rows from ``injection_volume.csv`` (header row 1), sorted by date.

    Every row is kept: the file has several rows for many dates and does not say why
    (probably several wells or pumping segments; it looks rebuilt from a chart, README
    7.7), so nothing is summed or averaged here. ``well`` is null (the source has none).
    """
    lines = src.lines(INJECTION_FILE)
    if not lines:
        raise InputError(src.path(INJECTION_FILE), "empty file (no header)")
    header = [h.strip() for h in next(csv.reader([lines[0][1]]))]
    need = ["Date", "Average Rate", "Injection Volume"]
    if any(h not in header for h in need):
        raise InputError(src.path(INJECTION_FILE), f"header must contain {need}, found {header}", line=lines[0][0])
    col = {h: header.index(h) for h in need}
    rows = []
    for no, raw in lines[1:]:
        vals = next(csv.reader(io.StringIO(raw)))
        if len(vals) != len(header):
            src.reject(INJECTION_FILE, no, f"expected {len(header)} fields, found {len(vals)}", raw)
            continue
        try:
            date = datetime.strptime(vals[col["Date"]].strip(), "%Y/%m/%d").date()
            rate = _number("Average Rate", 0)(vals[col["Average Rate"]])
            volume = _number("Injection Volume", 0)(vals[col["Injection Volume"]])
        except ValueError as exc:
            src.reject(INJECTION_FILE, no, str(exc), raw)
            continue
        rows.append({"date": date, "rate_m3_min": rate, "volume_m3": volume, "well": None, "source_row": no})
    df = pd.DataFrame(rows, columns=["date", "rate_m3_min", "volume_m3", "well", "source_row"])
    df["well"] = df["well"].astype(object)
    return df.sort_values(["date", "source_row"], kind="stable").reset_index(drop=True)


# --- mechanisms ----------------------------------------------------------------------------

_MECH_FIELDS = [
    ("published_id", _origin_id), ("lat", LAT), ("lon", LON), ("depth_km", _number("depth_km", -10, 800)),
    ("strike", _number("strike", 0, 360)), ("dip", _number("dip", 0, 90)), ("rake", _number("rake", -180, 180)),
    ("key", _integer("column 8")), ("magnitude", _number("magnitude", -10, 10)),
]


def _read_mechanism_file(src: _Source, rel: str, events: pd.DataFrame, required: bool = True) -> pd.DataFrame | None:
    """Rows of one ``mt_solution_*`` file (tab-separated, 8 or 9 columns, README 7.2)
    joined to the catalogue by nearest origin time: adds ``cat_idx`` (row of ``events``)
    and ``join_dt_s``. Unmatched rows and repeats of an already-matched event are
    rejected."""
    rows = _parse_rows(src, rel, _MECH_FIELDS, n_optional=1, required=required)
    if rows is None:
        return None
    times = pd.to_datetime(rows["published_id"], format="%Y%m%d%H%M%S.%f", utc=True)
    rows["cat_idx"], rows["join_dt_s"] = nearest_time_join(times, events["time"], JOIN_TOLERANCE_S)
    for _, r in rows[rows["cat_idx"] < 0].iterrows():
        src.reject(rel, int(r.line), f"no catalogue event within {JOIN_TOLERANCE_S} s of {r.published_id}", r.raw, "join")
    rows = rows[rows["cat_idx"] >= 0]
    dup = rows.duplicated("cat_idx", keep="first")
    if dup.any():
        first_line = rows.drop_duplicates("cat_idx").set_index("cat_idx")["line"]
        for _, r in rows[dup].iterrows():
            src.reject(rel, int(r.line), f"duplicate: same catalogue event "
                       f"{events['event_id'].iat[int(r.cat_idx)]} as line {int(first_line[r.cat_idx])}", r.raw)
    return rows[~dup].reset_index(drop=True)


def _quality_a(src: _Source, events: pd.DataFrame) -> pd.DataFrame:
    """The quality-A mechanisms: union of the two quality-A files by catalogue event.

    Angles come from the 20250317 file (or the 20241114 one where only it has the event);
    the 20241114 file adds the SKHASH solution-A location. A 20241114 row whose angles
    differ from the 20250317 row of the same event is a ``crosscheck`` reject and its
    location is not used.
    """
    cat = _read_mechanism_file(src, MECH_CATALOGUE_LOC_FILE, events)
    sk = _read_mechanism_file(src, MECH_SKHASH_LOC_FILE, events)
    m = cat.merge(sk, on="cat_idx", how="outer", suffixes=("", "_a"), indicator=True)
    both = (m["_merge"] == "both").to_numpy()
    same = np.ones(len(m), dtype=bool)
    for a in _ANGLES:
        same &= ~both | np.isclose(m[a].to_numpy(float), m[f"{a}_a"].to_numpy(float), rtol=0, atol=1e-9)
    for _, r in m[~same].iterrows():
        src.reject(MECH_SKHASH_LOC_FILE, int(r.line_a),
                   f"angles {r.strike_a}/{r.dip_a}/{r.rake_a} differ from {r.strike}/{r.dip}/{r.rake} "
                   f"in {MECH_CATALOGUE_LOC_FILE} line {int(r.line)}", r.raw_a, "crosscheck")
    only_a = (m["_merge"] == "right_only").to_numpy()
    for c in ("published_id", "strike", "dip", "rake", "join_dt_s", "line"):
        m[c] = m[c].where(~only_a, m[f"{c}_a"])
    m["source_file"] = np.where(only_a, MECH_SKHASH_LOC_FILE, MECH_CATALOGUE_LOC_FILE)
    use_a = (m["_merge"] != "left_only").to_numpy() & same
    m["lat_skhash"] = m["lat_a"].where(use_a)
    m["lon_skhash"] = m["lon_a"].where(use_a)
    m["depth_km_skhash"] = m["depth_km_a"].where(use_a)
    m["quality"] = "A"
    return m[["cat_idx", "published_id", "join_dt_s", "strike", "dip", "rake", "lat_skhash", "lon_skhash",
              "depth_km_skhash", "quality", "source_file", "line"]]


def _add_swe_run(src: _Source, mech: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Merge the SWe A+B run: its angles go to ``*_swe`` for all its events; events not
    in the quality-A list become new rows with ``quality='B'`` (inferred from the file
    name) and no SKHASH location."""
    swe = _read_mechanism_file(src, SWE_AB_FILE, events)
    swe_angles = swe.set_index("cat_idx")[list(_ANGLES)]
    new = swe[~swe["cat_idx"].isin(mech["cat_idx"])].copy()
    new["quality"] = "B"
    new["source_file"] = SWE_AB_FILE
    for c in ("lat_skhash", "lon_skhash", "depth_km_skhash"):
        new[c] = np.nan
    out = pd.concat([mech, new[mech.columns]], ignore_index=True)
    for a in _ANGLES:
        out[f"{a}_swe"] = out["cat_idx"].map(swe_angles[a])
    return out


def _add_reference_files(src: _Source, mech: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Add ``published_set`` and ``published_group`` (from the optional reference copies);
    a reference row naming no published mechanism is a ``crosscheck`` reject."""
    known = mech["cat_idx"]
    members = {QUALITY_A_TOKEN: set(known[mech["quality"] == "A"]),
               regions.SWE_AB_TOKEN: set(known[mech["strike_swe"].notna()])}
    group: dict[int, str] = {}
    refs = [(tok, rel, "set") for tok, rel in REFERENCE_SET_FILES.items()] + \
           [(g, rel, "group") for g, rel in REFERENCE_GROUP_FILES.items()]
    for label, rel, kind in refs:
        rows = _read_mechanism_file(src, rel, events, required=False)
        if rows is None:
            continue
        listed = rows["cat_idx"].isin(known)
        for _, r in rows[~listed].iterrows():
            src.reject(rel, int(r.line), f"event {r.published_id} is not among the published mechanisms", r.raw, "crosscheck")
        if kind == "set":
            members[label] = set(rows.loc[listed, "cat_idx"])
            continue
        for i, no, raw in rows.loc[listed, ["cat_idx", "line", "raw"]].itertuples(index=False):
            if group.setdefault(i, label) != label:  # the group files must partition the events
                src.reject(rel, int(no), f"event is also listed in the {group[i]} group file", raw, "crosscheck")
    out = mech.copy()
    out["published_group"] = [group.get(i) for i in known]
    out["published_set"] = [";".join(t for t in TOKEN_ORDER if i in members.get(t, ())) for i in known]
    return out


def _read_mechanisms(src: _Source, events: pd.DataFrame) -> pd.DataFrame:
    """The published mechanisms, each with ``cat_idx`` (its row in ``events``); see the
    module docstring. Catalogue columns are added by :func:`_finish_mechanisms`."""
    mech = _quality_a(src, events)
    mech = _add_swe_run(src, mech, events)
    return _add_reference_files(src, mech, events)


def _adopt_published_ids(events: pd.DataFrame, mech: pd.DataFrame) -> pd.DataFrame:
    """Events with ``event_id`` = the published (SKHASH-solution) id where a published
    mechanism matched, the catalogue time id otherwise; ``catalogue_id`` keeps the latter.

    The dataset's own event ids (waveform folders, pick files, mechanism tables) are the
    SKHASH-solution times, 0-0.3 s off the catalogue times (README 3.1); adopting them
    makes every later join a plain string join, the time join having happened once, here.
    A published id that equals another catalogue event's id (impossible while catalogue
    events are >= 0.97 s apart) is not adopted.
    """
    out = events.copy()
    out["catalogue_id"] = out["event_id"]
    pub = pd.Series(mech["published_id"].to_numpy(), index=mech["cat_idx"].to_numpy())
    taken = set(out["event_id"])
    clash = pub.isin(taken) & (pub.to_numpy() != out["event_id"].to_numpy()[pub.index])
    if clash.any():
        log.warning("published ids %s equal other catalogue events' ids; catalogue ids kept", list(pub[clash]))
    pub = pub[~clash]
    ids = out["event_id"].to_numpy(dtype=object, copy=True)
    ids[pub.index.to_numpy()] = pub.to_numpy()
    out["event_id"] = ids
    return out


def _finish_mechanisms(mech: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """Add the matched catalogue event's id, time, location and magnitude, the derived
    geometry (:func:`pipeline.mechanisms.enrich.complete_mechanisms`) and the cluster."""
    mech = mech.copy()
    cat = events.iloc[mech["cat_idx"].to_numpy()]
    for c in ("event_id", "time", "lat", "lon", "depth_km", "magnitude", "x_km", "y_km"):
        mech[c] = cat[c].array
    mech["source"] = "published"
    mech["source_line"] = mech.pop("line").astype("int64")
    mech["n_polarities"] = pd.array([pd.NA] * len(mech), dtype="Int32")
    for c in ("polarity_misfit", "fault_plane_uncertainty", "prob_mech", "sta_distribution_ratio"):
        mech[c] = np.nan  # the published tables carry no SKHASH quality metrics
    mech = enrich.complete_mechanisms(mech)
    mech["cluster"] = regions.assign_clusters(mech).to_numpy()
    return mech.drop(columns="cat_idx").sort_values("time", kind="stable").reset_index(drop=True)


# --- assembly ------------------------------------------------------------------------------

def frame_table(origin=geo.TOC2ME_ORIGIN) -> pd.DataFrame:
    """The one-row ``frame`` table for ``origin`` = (lat0, lon0)."""
    return pd.DataFrame({"origin_lat": [float(origin[0])], "origin_lon": [float(origin[1])],
                         "method": [FRAME_METHOD], "dataset": [DATASET]})


def load(input_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read a ToC2ME folder (layout of ``shared/toc2me``) into every required table.

    Returns ``{table name: DataFrame}`` for events, stations, wells, stages, injection,
    mechanisms, frame and rejects, each with the columns of :mod:`pipeline.schema`
    (plus documented extras). Raises :class:`InputError` for a missing or unreadable
    required file; bad rows become ``rejects`` rows.
    """
    src = _Source(input_dir)
    origin = geo.TOC2ME_ORIGIN
    events = enrich.add_local_coords(_read_catalogue(src), origin)
    tables = {
        "stations": _read_stations(src, origin),
        "wells": _read_wells(src, origin),
        "stages": _read_stages(src, origin),
        "injection": _read_injection(src),
    }
    mech = _read_mechanisms(src, events)
    events = _adopt_published_ids(events, mech)
    mech = _finish_mechanisms(mech, events)
    events["cluster"] = regions.assign_clusters(
        events, skhash_coords=mech[["event_id", "lat_skhash", "lon_skhash"]]).to_numpy()
    tables.update(events=events, mechanisms=mech, frame=frame_table(origin), rejects=src.rejects.to_frame())
    log.info("toc2me: %s", {k: len(v) for k, v in tables.items()})
    return tables
