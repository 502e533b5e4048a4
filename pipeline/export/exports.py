"""Exports of the mechanisms (and SKHASH inputs) in formats other tools read.

Entry points
------------
* :func:`mechanisms_to_quakeml` - the ``mechanisms`` table as a QuakeML 1.2 file (ObsPy
  ``Catalog``), one ``Event`` per ``event_id`` with every mechanism of that event.
* :func:`mechanisms_to_csv` / :func:`read_mechanisms_csv` - a plain CSV with a fixed,
  documented column order (:data:`CSV_COLUMNS`) and ISO-8601 UTC times, and its reader;
  :func:`events_to_csv` the same for catalogue rows (:data:`EVENT_CSV_COLUMNS`).
* :func:`event_shell` - one event's catalogue origin and magnitude (used by
  :mod:`pipeline.export.quakeml`, which adds events without mechanisms and P picks; the
  command line and the dashboard's downloads are in :mod:`pipeline.export.run`).
* :func:`skhash_inputs` - a self-contained folder to run SKHASH elsewhere
  (``cd <folder> && SKHASH control.txt``), written by the same code that
  :func:`pipeline.mechanisms.skhash.run_skhash` uses, plus a ``README.txt`` and CSVs of the
  id / station-code mappings.

QuakeML mapping (one row of ``mechanisms`` -> one ``FocalMechanism``)
---------------------------------------------------------------------
=============================  =========================================================
QuakeML                        from
=============================  =========================================================
Event publicID                 ``smi:local/event/<event_id>``
Event type                     ``induced or triggered event`` (``event_type=``)
Event description              ``cluster`` as a ``region name`` (when not null)
Origin (preferred)             ``time``, ``lat``, ``lon``, ``depth_km * 1000`` (**metres**,
                               QuakeML's unit; rounded to the mm to drop the float noise
                               of the multiplication), publicID ``smi:local/origin/<id>``
Origin ``.../skhash``          ``lat_skhash`` ... when known: the location SKHASH used; it
                               is the mechanism's ``triggeringOriginID`` (else the
                               catalogue origin is)
Magnitude (preferred)          ``magnitude`` as ``ML`` (only when not null)
FocalMechanism publicID        ``smi:local/focalmechanism/<event_id>/<source>``
nodalPlanes                    plane 1 = ``strike/dip/rake`` (the plane the source
                               reports), plane 2 = ``strike2/dip2/rake2``,
                               ``preferredPlane = 1``
principalAxes                  ``t/p/b_trend`` -> azimuth, ``*_plunge`` -> plunge
                               (``b`` is QuakeML's ``nAxis``); ``length`` = eigenvalue of
                               the *unit* double couple (T +1, P -1, N 0): the scalar
                               moment is unknown, but QuakeML 1.2 requires a length
stationPolarityCount           ``n_polarities``
misfit                         ``polarity_misfit / 100`` (QuakeML: *fraction* of misfit
                               polarities, 0..1; the table stores percent)
stationDistributionRatio       ``sta_distribution_ratio / 100`` (QuakeML: 0..1)
azimuthalGap                   ``azimuthal_gap`` (deg), when the table has that column
methodID                       ``smi:local/method/published`` or
                               ``smi:local/method/computed/SKHASH-1.1.5``
evaluationMode                 ``automatic`` for computed mechanisms, unset for published
creationInfo                   author ``published`` (+ ``published_set`` as version) or
                               ``pipeline.mechanisms.skhash`` / version ``SKHASH 1.1.5``
comments                       ``source: published|computed (...)``, ``SKHASH quality: A``,
                               ``fault-plane uncertainty: 12.3 deg``,
                               ``mechanism probability: 89.4 %``, ``group: g2``
=============================  =========================================================

The event's preferred focal mechanism is the published one when there is one
(``prefer='published'``), else the first row of the event.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.mechanisms import enrich
from pipeline.mechanisms import skhash as _sr

__all__ = [
    "COMPUTED_METHOD",
    "CSV_COLUMNS",
    "EVENT_CSV_COLUMNS",
    "SKHASH_README",
    "event_shell",
    "events_to_csv",
    "mechanisms_to_csv",
    "mechanisms_to_quakeml",
    "read_mechanisms_csv",
    "skhash_inputs",
]

#: What computed mechanisms were computed with (pipeline.mechanisms.skhash wraps this version).
COMPUTED_METHOD = "SKHASH 1.1.5"

_SMI = "smi:local"


# --------------------------------------------------------------------------- helpers

def _num(v) -> float | None:
    """A finite float or None (NaN, pd.NA, None -> None)."""
    if v is None or v is pd.NA:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def _text(v) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    s = str(v).strip()
    return s or None


def _rid_part(s: str) -> str:
    """A string made safe for the path of a QuakeML ResourceReference."""
    return re.sub(r"[^\w\-.*()~']", "_", str(s)) or "_"


def _utc(t, event_id: str):
    from obspy import UTCDateTime

    if t is None or t is pd.NaT or (not isinstance(t, str) and pd.isna(t)):
        t = pd.to_datetime(event_id, format="%Y%m%d%H%M%S.%f")
    ts = pd.Timestamp(t)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return UTCDateTime(ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _depth_m(depth_km) -> float | None:
    d = _num(depth_km)
    return None if d is None else round(d * 1000.0, 3) + 0.0


def _completed(mech: pd.DataFrame) -> pd.DataFrame:
    """A copy with plane 2 and P/B/T filled from plane 1 where missing."""
    m = mech.copy()
    s, d, r = (m[c].to_numpy(float) for c in ("strike", "dip", "rake"))
    if not np.all(np.isfinite(np.column_stack([s, d, r]))):
        bad = m.loc[~np.isfinite(np.column_stack([s, d, r])).all(axis=1), "event_id"].tolist()[:5]
        raise ValueError(f"mechanisms with missing strike/dip/rake: {bad}")
    # the same derived columns, rounded the same way, as the tables hold
    full = enrich.complete_mechanisms(m[["strike", "dip", "rake"]])
    fill = {c: full[c].to_numpy() for c in ("strike2", "dip2", "rake2")}
    for k in ("p", "b", "t"):
        fill[f"{k}_trend"], fill[f"{k}_plunge"] = full[f"{k}_trend"].to_numpy(), full[f"{k}_plunge"].to_numpy()
    for col, values in fill.items():
        if col not in m.columns:
            m[col] = values
        else:
            cur = pd.to_numeric(m[col], errors="coerce").to_numpy(float)
            m[col] = np.where(np.isfinite(cur), cur, values)
    return m


def _creation_info(creation_info):
    from obspy import UTCDateTime
    from obspy.core.event import CreationInfo

    if creation_info is None:
        return CreationInfo(author="pipeline.export.exports", creation_time=UTCDateTime())
    if isinstance(creation_info, CreationInfo):
        return creation_info
    if isinstance(creation_info, dict):
        return CreationInfo(**creation_info)
    raise TypeError("creation_info must be None, a dict or an obspy CreationInfo")


# --------------------------------------------------------------------------- QuakeML

def event_shell(event_id: str, row: dict, event_type: str | None = "induced or triggered event"):
    """An ObsPy ``Event`` holding only the catalogue ``Origin`` and ``ML`` ``Magnitude`` of
    ``row`` (a dict with ``lat``, ``lon`` and optionally ``time``, ``depth_km``,
    ``magnitude``, ``cluster``), mapped as in the module docstring: publicIDs
    ``smi:local/event|origin|magnitude/<event_id>``, depth in **metres**, the origin time
    from the event id when ``time`` is missing, ``cluster`` as a ``region name``.
    The origin is ``ev.origins[0]`` and the preferred one."""
    from obspy.core.event import Comment, Event, EventDescription, Magnitude, Origin, ResourceIdentifier

    rid = _rid_part(event_id)
    ev = Event(resource_id=ResourceIdentifier(f"{_SMI}/event/{rid}"))
    if event_type:
        ev.event_type = event_type
    cluster = _text(row.get("cluster"))
    if cluster:
        ev.event_descriptions.append(EventDescription(text=cluster, type="region name"))
    origin = Origin(resource_id=ResourceIdentifier(f"{_SMI}/origin/{rid}"), time=_utc(row.get("time"), event_id),
                    latitude=_num(row.get("lat")), longitude=_num(row.get("lon")),
                    depth=_depth_m(row.get("depth_km")))
    origin.comments.append(Comment(text="catalogue location", resource_id=ResourceIdentifier(
        f"{_SMI}/origin/{rid}/comment/location")))
    ev.origins.append(origin)
    ev.preferred_origin_id = origin.resource_id.id
    mag = _num(row.get("magnitude"))
    if mag is not None:
        magnitude = Magnitude(resource_id=ResourceIdentifier(f"{_SMI}/magnitude/{rid}/ML"),
                              mag=mag, magnitude_type="ML", origin_id=origin.resource_id.id)
        ev.magnitudes.append(magnitude)
        ev.preferred_magnitude_id = magnitude.resource_id.id
    return ev


def mechanisms_to_quakeml(mechanisms: pd.DataFrame, path_or_buffer=None, creation_info=None, *,
                          prefer: str = "published", computed_method: str = COMPUTED_METHOD,
                          event_type: str | None = "induced or triggered event",
                          validate: bool = False):
    """Write ``mechanisms`` (the table of :data:`pipeline.schema.MECHANISMS`) as QuakeML 1.2.

    One ObsPy ``Event`` per ``event_id`` (in order of first appearance) holding the
    catalogue ``Origin`` (depth in metres), an ``ML`` ``Magnitude`` when known, and one
    ``FocalMechanism`` per row (published and/or computed; see the module docstring for
    the field mapping). Only ``event_id``, ``source``, ``strike``, ``dip``, ``rake``,
    ``lat``, ``lon`` are required; plane 2 and P/B/T are computed from plane 1 when absent.

    ``path_or_buffer``: file path or binary buffer to write to (``format='QUAKEML'``);
    None = build the catalogue only. ``creation_info``: the catalogue's ``CreationInfo``
    (ObsPy object or dict of its fields; default: author ``pipeline.export.exports``, now).
    ``prefer``: source whose mechanism becomes the event's preferred one when the event has
    several. ``computed_method``: method text of ``source == 'computed'`` rows.
    ``validate``: validate the written XML against the QuakeML 1.2 schema (ObsPy; raises
    on failure). Returns the ObsPy ``Catalog``.
    """
    from obspy.core.event import (
        Axis, Catalog, Comment, CreationInfo, FocalMechanism, NodalPlane, NodalPlanes, Origin,
        PrincipalAxes, ResourceIdentifier,
    )

    _sr._require(mechanisms, ["event_id", "source", "strike", "dip", "rake", "lat", "lon"],
                 "mechanisms")
    m = _completed(mechanisms.reset_index(drop=True))
    m["event_id"] = m["event_id"].astype(str)
    m["source"] = m["source"].astype(str)
    has = set(m.columns)

    def col(row, name):
        return row.get(name) if name in has else None

    cat = Catalog(resource_id=ResourceIdentifier(f"{_SMI}/catalog/mechanisms"),
                  description="Focal mechanisms (published and/or computed), pipeline.export.exports",
                  creation_info=_creation_info(creation_info))

    for eid, rows in m.groupby("event_id", sort=False):
        rid = _rid_part(eid)
        first = rows.iloc[0].to_dict()
        ev = event_shell(eid, first, event_type)
        origin = ev.origins[0]
        time = origin.time

        skhash_origins: list[tuple[tuple, str]] = []
        used_fm_ids: set[str] = set()
        preferred_fm, preferred_source = None, None
        for _, r in rows.iterrows():
            r = r.to_dict()
            source = str(r["source"])
            computed = source.lower() == "computed"
            # triggering origin: the location SKHASH used, when known
            trig = origin.resource_id.id
            loc = tuple(_num(col(r, c)) for c in ("lat_skhash", "lon_skhash", "depth_km_skhash"))
            if loc[0] is not None and loc[1] is not None:
                key = tuple(None if v is None else round(v, 9) for v in loc)
                known = dict(skhash_origins)
                if key in known:
                    trig = known[key]
                else:
                    oid = f"{_SMI}/origin/{rid}/skhash" + (f"{len(skhash_origins) + 1}"
                                                           if skhash_origins else "")
                    o2 = Origin(resource_id=ResourceIdentifier(oid), time=time, latitude=loc[0],
                                longitude=loc[1], depth=_depth_m(loc[2]))
                    o2.comments.append(Comment(
                        text="location used by SKHASH for the focal mechanism",
                        resource_id=ResourceIdentifier(f"{oid}/comment/location")))
                    ev.origins.append(o2)
                    skhash_origins.append((key, oid))
                    trig = oid

            fid = f"{_SMI}/focalmechanism/{rid}/{_rid_part(source)}"
            k = 2
            while fid in used_fm_ids:  # several rows of one (event, source)
                fid = f"{_SMI}/focalmechanism/{rid}/{_rid_part(source)}-{k}"
                k += 1
            used_fm_ids.add(fid)

            pset = _text(col(r, "published_set"))
            if computed:
                method = f"{_SMI}/method/computed/{_rid_part(computed_method.replace(' ', '-'))}"
                src_text = f"source: computed ({computed_method})"
                ci = CreationInfo(author="pipeline.mechanisms.skhash", version=computed_method)
            else:
                method = f"{_SMI}/method/{_rid_part(source)}"
                src_text = f"source: {source}" + (f" (published_set: {pset})" if pset else "")
                ci = CreationInfo(author=source, version=pset)

            def axis(name, length):
                return Axis(azimuth=_num(r[f"{name}_trend"]), plunge=_num(r[f"{name}_plunge"]),
                            length=length)

            n_pol = _num(col(r, "n_polarities"))
            misfit = _num(col(r, "polarity_misfit"))
            stdr = _num(col(r, "sta_distribution_ratio"))
            fm = FocalMechanism(
                resource_id=ResourceIdentifier(fid),
                triggering_origin_id=trig,
                nodal_planes=NodalPlanes(
                    nodal_plane_1=NodalPlane(strike=_num(r["strike"]), dip=_num(r["dip"]),
                                             rake=_num(r["rake"])),
                    nodal_plane_2=NodalPlane(strike=_num(r["strike2"]), dip=_num(r["dip2"]),
                                             rake=_num(r["rake2"])),
                    preferred_plane=1),
                principal_axes=PrincipalAxes(t_axis=axis("t", 1.0), p_axis=axis("p", -1.0),
                                             n_axis=axis("b", 0.0)),
                station_polarity_count=None if n_pol is None else int(n_pol),
                misfit=None if misfit is None else misfit / 100.0,
                station_distribution_ratio=None if stdr is None else stdr / 100.0,
                azimuthal_gap=_num(col(r, "azimuthal_gap")),
                method_id=method,
                creation_info=ci,
            )
            if computed:
                fm.evaluation_mode = "automatic"

            comments = [("source", src_text)]
            q = _text(col(r, "quality"))
            if q:
                comments.append(("quality", f"SKHASH quality: {q}"))
            fpu = _num(col(r, "fault_plane_uncertainty"))
            if fpu is not None:
                comments.append(("fault_plane_uncertainty", f"fault-plane uncertainty: {fpu:g} deg"))
            pm = _num(col(r, "prob_mech"))
            if pm is not None:
                comments.append(("prob_mech", f"mechanism probability: {pm:g} %"))
            grp = _text(col(r, "group"))
            if grp:
                comments.append(("group", f"group: {grp}"))
            comments.append(("principal_axes", "principal-axis lengths are the eigenvalues of "
                             "the unit double couple (scalar moment unknown)"))
            for tag, text in comments:
                fm.comments.append(Comment(text=text,
                                           resource_id=ResourceIdentifier(f"{fid}/comment/{tag}")))
            ev.focal_mechanisms.append(fm)
            if preferred_fm is None or (source == prefer and preferred_source != prefer):
                preferred_fm, preferred_source = fm, source
        ev.preferred_focal_mechanism_id = preferred_fm.resource_id.id
        cat.events.append(ev)

    if path_or_buffer is not None:
        cat.write(path_or_buffer, format="QUAKEML", validate=validate)
    return cat


# --------------------------------------------------------------------------- CSV

#: The CSV's columns, in order: (CSV name, schema column, meaning/unit). Angles are
#: degrees; percent columns carry ``_pct`` (the schema's percent values, unchanged).
CSV_COLUMNS: list[tuple[str, str, str]] = [
    ("event_id", "event_id", "event id, origin time YYYYMMDDhhmmss.fff (UTC)"),
    ("source", "source", "'published' or 'computed'"),
    ("time_utc", "time", "origin time, ISO 8601 UTC, e.g. 2016-11-04T06:48:24.680000Z"),
    ("lat", "lat", "catalogue latitude, deg"),
    ("lon", "lon", "catalogue longitude, deg east"),
    ("depth_km", "depth_km", "catalogue depth, km, positive down"),
    ("magnitude_ml", "magnitude", "local magnitude ML"),
    ("strike", "strike", "plane 1 strike, deg (0-360)"),
    ("dip", "dip", "plane 1 dip, deg (0-90)"),
    ("rake", "rake", "plane 1 rake, deg (-180..180)"),
    ("strike2", "strike2", "auxiliary plane strike, deg"),
    ("dip2", "dip2", "auxiliary plane dip, deg"),
    ("rake2", "rake2", "auxiliary plane rake, deg"),
    ("p_trend", "p_trend", "P axis trend, deg"),
    ("p_plunge", "p_plunge", "P axis plunge, deg down"),
    ("b_trend", "b_trend", "B (null) axis trend, deg"),
    ("b_plunge", "b_plunge", "B axis plunge, deg"),
    ("t_trend", "t_trend", "T axis trend, deg"),
    ("t_plunge", "t_plunge", "T axis plunge, deg"),
    ("quality", "quality", "SKHASH quality A-D"),
    ("n_polarities", "n_polarities", "number of polarities used"),
    ("polarity_misfit_pct", "polarity_misfit", "polarity misfit, percent"),
    ("fault_plane_uncertainty_deg", "fault_plane_uncertainty", "SKHASH fault-plane uncertainty, deg"),
    ("prob_mech_pct", "prob_mech", "SKHASH mechanism probability, percent"),
    ("sta_distribution_ratio_pct", "sta_distribution_ratio", "station distribution ratio, percent"),
    ("group", "group", "strike/dip family (pipeline.mechanisms.groups)"),
    ("faulting_style", "faulting_style", "strike-slip / reverse / normal (rake rule)"),
    ("zoback_class", "zoback_class", "Zoback (1992) regime NF NS SS TS TF U"),
    ("cluster", "cluster", "named region, empty if none"),
    ("x_km", "x_km", "east of the frame origin, km"),
    ("y_km", "y_km", "north of the frame origin, km"),
    ("lat_skhash", "lat_skhash", "latitude SKHASH used, deg"),
    ("lon_skhash", "lon_skhash", "longitude SKHASH used, deg"),
    ("depth_km_skhash", "depth_km_skhash", "depth SKHASH used, km"),
    ("published_set", "published_set", "published file(s) listing it, empty for computed"),
]

_CSV_TO_SCHEMA = {c: s for c, s, _ in CSV_COLUMNS}
_SCHEMA_TO_CSV = {s: c for c, s, _ in CSV_COLUMNS}


def mechanisms_to_csv(mechanisms: pd.DataFrame, path_or_buffer=None) -> pd.DataFrame:
    """Write ``mechanisms`` as a plain CSV (no comment lines) with the columns of
    :data:`CSV_COLUMNS` in that order - units are in the names (``depth_km``,
    ``*_pct``, ``*_deg``; angles are degrees) -, times as ISO 8601 UTC
    (``YYYY-MM-DDThh:mm:ss.ffffffZ``), empty fields for nulls, full float precision.

    Columns missing from ``mechanisms`` are written empty (plane 2 and P/B/T are computed
    from plane 1 instead); extra columns are not written. Rows keep their order.
    ``path_or_buffer``: file path or text buffer; None = only return the frame.
    Returns the DataFrame as written. Read it back with :func:`read_mechanisms_csv`.
    """
    _sr._require(mechanisms, ["event_id", "source", "strike", "dip", "rake"], "mechanisms")
    m = _completed(mechanisms.reset_index(drop=True))
    out = pd.DataFrame(index=m.index)
    for csv_name, name, _ in CSV_COLUMNS:
        if name not in m.columns:
            out[csv_name] = pd.Series([None] * len(m), dtype=object)
        elif name == "time":
            t = pd.to_datetime(m["time"], utc=True)
            out[csv_name] = t.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").where(t.notna(), None)
        else:
            out[csv_name] = m[name]
    if path_or_buffer is not None:
        out.to_csv(path_or_buffer, index=False, lineterminator="\n")
    return out


def read_mechanisms_csv(path_or_buffer) -> pd.DataFrame:
    """Read a :func:`mechanisms_to_csv` file back into the schema's column names and types
    (``time`` as UTC timestamps, ``n_polarities`` as nullable Int32, text as str; floats
    parsed with ``float_precision='round_trip'`` so they come back bit-identical - pandas'
    default fast parser can be off in the last bit)."""
    text_cols = ["event_id", "source", "quality", "group", "faulting_style", "zoback_class",
                 "cluster", "published_set"]
    df = pd.read_csv(path_or_buffer, dtype={c: str for c in text_cols}, keep_default_na=False,
                     na_values={c: [""] for c in _CSV_TO_SCHEMA}, float_precision="round_trip")
    missing = [c for c in _CSV_TO_SCHEMA if c not in df.columns]
    if missing:
        raise ValueError(f"not a mechanisms CSV of pipeline.export.exports: columns {missing} missing")
    df = df.rename(columns=_CSV_TO_SCHEMA)
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601")
    df["n_polarities"] = pd.to_numeric(df["n_polarities"]).astype("Int32")
    for c in text_cols:
        df[c] = df[c].astype(object).where(df[c].notna(), None)
    return df


#: The events CSV's columns, in order: (CSV name, column of the dashboard's ``events``
#: relation, meaning/unit); ``group``, ``quality``, ``mechanism_source`` come from the
#: event's mechanism in the filters' mechanism population (``components.filters``: by default
#: the published one, else a computed one, if quality A; empty when the event has none there).
EVENT_CSV_COLUMNS: list[tuple[str, str, str]] = [
    ("event_id", "event_id", "event id, origin time YYYYMMDDhhmmss.fff (UTC)"),
    ("time_utc", "time", "origin time, ISO 8601 UTC, microseconds"),
    ("lat", "lat", "latitude, deg"),
    ("lon", "lon", "longitude, deg east"),
    ("depth_km", "depth_km", "depth, km, positive down"),
    ("magnitude_ml", "magnitude", "local magnitude ML"),
    ("x_km", "x_km", "east of the frame origin, km"),
    ("y_km", "y_km", "north of the frame origin, km"),
    ("cluster", "cluster", "named region, empty if none"),
    ("group", "group", "strike/dip family of the event's mechanism, 'none' without one"),
    ("quality", "quality", "SKHASH quality A-D of the event's mechanism"),
    ("mechanism_source", "mechanism_source", "'published' or 'computed': which mechanism gave group/quality"),
]


def events_to_csv(events: pd.DataFrame, path_or_buffer=None) -> pd.DataFrame:
    """Write catalogue rows (the dashboard's filtered ``events`` relation, or the ``events``
    table) as a plain CSV with the columns of :data:`EVENT_CSV_COLUMNS` in that order, times
    ISO 8601 UTC with microseconds, empty fields for nulls; missing columns are written
    empty. Returns the DataFrame as written."""
    _sr._require(events, ["event_id"], "events")
    out = pd.DataFrame(index=events.index)
    for csv_name, name, _ in EVENT_CSV_COLUMNS:
        if name not in events.columns:
            out[csv_name] = pd.Series([None] * len(events), dtype=object, index=events.index)
        elif name == "time":
            t = pd.to_datetime(events["time"], utc=True)
            out[csv_name] = t.dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").where(t.notna(), None)
        else:
            out[csv_name] = events[name]
    out = out.reset_index(drop=True)
    if path_or_buffer is not None:
        out.to_csv(path_or_buffer, index=False, lineterminator="\n")
    return out


# --------------------------------------------------------------------------- SKHASH folder

SKHASH_README = """\
SKHASH input folder
===================

Written by pipeline.export.exports.skhash_inputs (ToC2ME focal-mechanism pipeline), {created}.
Self-contained: every path in control.txt is relative to this folder.

Run (SKHASH {skhash}, PyPI package "skhash"):

    cd <this folder>
    SKHASH control.txt                       # Python grid search
    SKHASH control.txt --use_fortran True    # compiled grid search, if built

Results are written to OUT/ (mechanisms.csv = SKHASH $outfile1, polagree.csv, polinfo.csv).
The control file sets $overwrite_output_file {overwrite}.

Files
-----
control.txt           SKHASH control file (settings below)
IN/catalog.csv        events: time, latitude, longitude, depth (km), horz/vert uncertainty
                      (km), event_id = SKHASH integer id
IN/polarities.csv     P first motions: event_id (integer), network, station, p_polarity
IN/stations.csv       stations used by the polarities: network, station, latitude,
                      longitude, elevation (m)
vmodel.csv            1-D P velocity model, "depth_km,vp_km_s" per line, no header
event_ids.csv         SKHASH integer id <-> event id (also listed below)
station_codes.csv     SKHASH network/station code <-> real network/station code
excluded_events.csv   events with polarities that were NOT written, with the reason
                      (only when there are such events)

Event ids
---------
SKHASH needs integer event ids; they are 1..N in sorted order of the pipeline's event id
(the origin time written YYYYMMDDhhmmss.fff, UTC). SKHASH's outputs carry the integer id;
map it back with event_ids.csv:

{id_table}

Station codes
-------------
SKHASH 1.1 reads all-digit station codes (e.g. 1107) as integers and then fails to match
them, so every code gets a letter prefix: network "N<network>", station "S<station>"
(e.g. 5B.1107 -> N5B.S1107; matching is on network + station, location and channel are
not used). SKHASH's outputs (polinfo.csv, polagree.csv) name stations
sta_code = "N<network>.S<station>" (e.g. N5B.S1107); strip the N/S prefixes or use
station_codes.csv:

{sta_table}

Polarities
----------
p_polarity is the P first motion in the TRUE GROUND-MOTION convention: +1 = up /
compression, -1 = down / dilatation, multiplied by the pick weight (|p_polarity| =
weight, {nweight}), as the pipeline's polarity tables hold it: station polarity reversals
are ALREADY APPLIED (a station flagged "reversed" had its recorded polarity flipped), so do
not add a reversal file ($plfile).
Undetermined (0) polarities and weights below $min_polarity_weight were left out.

Settings
--------
{settings}

Reproducibility
---------------
pipeline.mechanisms.skhash runs SKHASH on exactly these files but re-seeds SKHASH's random
generators before every event (numpy default_rng(123), gfortran SRAND(1)), so each event's
result equals SKHASH's result for that event alone in a fresh process. A plain
"SKHASH control.txt" run draws from one random stream across events: with non-zero
location uncertainties, several velocity models, or more than $maxout acceptable planes,
an event's result can then depend on the events before it. {uncert}
{excluded}"""


def _table_text(df: pd.DataFrame, indent: str = "    ", limit: int = 200) -> str:
    if df.empty:
        return indent + "(none)"
    shown = df.head(limit)
    body = shown.to_string(index=False)
    more = f"\n{indent}... {len(df) - limit} more, see the CSV" if len(df) > limit else ""
    return textwrap.indent(body, indent) + more


def skhash_inputs(dest_dir, events: pd.DataFrame, polarities: pd.DataFrame,
                  stations: pd.DataFrame, velocity_model, settings: dict | None = None, *,
                  overwrite: bool = False) -> dict[str, Path]:
    """Write a self-contained SKHASH input folder to ``dest_dir`` and return its paths.

    Inputs are those of :func:`pipeline.mechanisms.skhash.run_skhash` (this project's
    conventions: string event ids, polarities in true ground motion with reversals
    applied, ``velocity_model`` a ``depth_km,vp_km_s`` file or DataFrame); the files are
    written by the runner's own writer (``skhash._prepare`` / ``_write_inputs``,
    private helpers reused on purpose), so running ``SKHASH control.txt`` in the folder
    solves what ``run_skhash`` would. ``settings`` override
    :data:`pipeline.mechanisms.skhash.DEFAULT_SETTINGS` (``overwrite_output_file`` defaults to
    True here so the folder can be re-run).

    Only events that have polarities are considered; those the runner would not send to
    SKHASH (fewer than ``npolmin`` usable polarities, missing location) are listed in
    ``excluded_events.csv``. Raises ``ValueError`` when no event is left.
    ``overwrite``: allow a non-empty ``dest_dir`` (our files and ``OUT/`` results there are
    replaced; nothing else is touched).

    Returns ``{'folder', 'control', 'catalog', 'polarities', 'stations', 'velocity_model',
    'event_ids', 'station_codes', 'readme'}`` (+ ``'excluded'`` when events were left out).
    """
    dest = Path(dest_dir)
    if dest.exists() and not dest.is_dir():
        raise NotADirectoryError(f"{dest} exists and is not a folder")
    names = {
        "control": "control.txt", "catalog": "IN/catalog.csv", "polarities": "IN/polarities.csv",
        "stations": "IN/stations.csv", "velocity_model": "vmodel.csv",
        "event_ids": "event_ids.csv", "station_codes": "station_codes.csv",
        "readme": "README.txt", "excluded": "excluded_events.csv",
    }
    outputs = ["OUT/mechanisms.csv", "OUT/polagree.csv", "OUT/polinfo.csv", "OUT/acceptable.csv"]
    if dest.is_dir() and any(dest.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{dest} is not empty (pass overwrite=True to replace an export)")
        for rel in list(names.values()) + outputs:
            (dest / rel).unlink(missing_ok=True)

    user = dict(settings or {})
    user.setdefault("overwrite_output_file", True)
    merged = _sr._merge_settings(user)
    vmodel = _sr.read_velocity_model(velocity_model)
    _sr._require(events, ["event_id"], "events")
    _sr._require(polarities, ["event_id"], "polarities")
    with_pol = set(polarities["event_id"].astype(str))
    ev_in = events[events["event_id"].astype(str).isin(with_pol)]
    ev, pol, st, excluded, notes = _sr._prepare(ev_in, polarities, stations, merged)
    if ev.empty:
        raise ValueError("no event to export: every event lacks enough usable polarities "
                         f"(npolmin {merged.get('npolmin')}) or a location")
    dest.mkdir(parents=True, exist_ok=True)
    id_map, sta_map = _sr._write_inputs(dest, ev, pol, st, vmodel, merged, acceptable_planes=False)

    ids = pd.DataFrame({"skhash_id": list(id_map.values()), "event_id": list(id_map.keys())})
    ids.to_csv(dest / names["event_ids"], index=False)
    codes = pd.DataFrame([(k.split(".", 1)[0], k.split(".", 1)[1], net, sta)
                          for k, (net, sta) in sta_map.items()],
                         columns=["skhash_network", "skhash_station", "network", "station"])
    codes.to_csv(dest / names["station_codes"], index=False)
    paths = {k: dest / v for k, v in names.items() if k != "excluded"}
    excluded_text = ""
    if len(excluded):
        excluded.to_csv(dest / names["excluded"], index=False)
        paths["excluded"] = dest / names["excluded"]
        excluded_text = ("\nExcluded events\n---------------\nNot written (listed in "
                         "excluded_events.csv):\n\n" + _table_text(excluded) + "\n")
    if notes:
        excluded_text += "\nNotes\n-----\n" + "\n".join(f"* {n}" for n in notes) + "\n"
    if len(with_pol - set(events["event_id"].astype(str))):
        n = len(with_pol - set(events["event_id"].astype(str)))
        excluded_text += f"\n{n} event id(s) in the polarities have no row in events: ignored.\n"

    weights = pol["weight"].astype(float)
    nweight = ("all weights 1" if np.all(weights == 1.0)
               else f"weights {weights.min():g}..{weights.max():g}")
    zero_uncert = bool(np.all(ev[["horz_uncert_km", "vert_uncert_km"]].to_numpy(float) == 0.0))
    uncert = ("The location uncertainties written here are all zero and there is one velocity\n"
              "model, so only the $maxout case can make the two differ." if zero_uncert else
              "The location uncertainties written here are not all zero: expect small\n"
              "differences from pipeline.mechanisms.skhash unless each event is run alone.")
    settings_text = "\n".join(f"    ${k} {_sr._fmt_value(v)}" for k, v in merged.items())
    readme = SKHASH_README.format(
        created=pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC"),
        skhash=COMPUTED_METHOD.split()[-1],
        overwrite=_sr._fmt_value(merged["overwrite_output_file"]),
        id_table=_table_text(ids),
        sta_table=_table_text(codes),
        nweight=nweight,
        settings=settings_text,
        excluded=excluded_text,
        uncert=uncert,
    )
    (dest / names["readme"]).write_text(readme)
    paths["folder"] = dest
    return paths
