"""Exports of a data folder's selection in each format: the one code path of
``python -m pipeline export`` (:mod:`pipeline.export.cli`) and of the dashboard's download
buttons.

Every ``export_<format>`` takes a :class:`components.data.DataProvider` (the dashboard's
read access to the tables) and, where the format is per event, a
:class:`~pipeline.export.selection.Selection` (:func:`pipeline.export.selection.select`:
the dashboard's filtered rows), writes, and returns an :class:`ExportResult` whose
``summary`` is the one line the command prints.

Formats
-------
``quakeml``     events, focal mechanisms and P picks with polarities (:mod:`.quakeml`)
``csv``         mechanisms (:func:`.exports.mechanisms_to_csv`) or, ``table='events'``,
                catalogue rows (:func:`.exports.events_to_csv`)
``skhash``      a self-contained SKHASH input folder (:func:`.exports.skhash_inputs`) with
                the inputs the build inverted: the polarities SKHASH used
                (``select_polarities(picks='auto')``), the SKHASH locations of the
                published mechanisms, the ``velocity_model`` table
``stationxml``  every station, SEED orientation (:mod:`.stationxml`)
``miniseed``    the ``waveforms`` snippets, one file per event (:mod:`.miniseed`)
``project``     a folder for another group (:mod:`.project`)

Files are written next to their destination (``<out>.tmp``) and renamed into place at
the end, so an interrupted export never leaves a half-written file under the real name.
"""
from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..errors import InputError
from . import exports
from .selection import Selection, event_rows, provider_for, select, whole_table

FORMATS = ("quakeml", "csv", "skhash", "stationxml", "miniseed", "project")
CSV_TABLES = ("mechanisms", "events")
#: events per batch when reading waveforms (bounds memory on archive-sized tables)
WAVEFORM_BATCH_EVENTS = 200


@dataclass
class ExportResult:
    """``path``: what was written (file or folder; None for a buffer); ``counts``: numbers
    by name; ``summary``: one line for the user."""

    path: Path | None
    counts: dict = field(default_factory=dict)
    summary: str = ""


# --------------------------------------------------------------------------- destinations

def check_destination(out, force: bool = False) -> Path:
    """``out`` as a Path; :class:`InputError` when it exists (a non-empty folder, or a file)
    and ``force`` is false, or when its parent folder does not exist."""
    out = Path(out)
    if not out.parent.exists():
        raise InputError(out.parent, "no such folder (create it first or choose another --out)")
    if out.exists() and not force:
        if out.is_dir() and not any(out.iterdir()):
            return out
        raise InputError(out, "already exists (pass --force to replace it, or choose another --out)")
    return out


def _tmp(out: Path) -> Path:
    return out.with_name(out.name + ".tmp")


def _write_file(out, write, force: bool = False) -> Path | None:
    """Call ``write(target)`` on ``<out>.tmp`` and rename it to ``out``; a buffer (anything
    with ``write``) is written directly."""
    if hasattr(out, "write"):
        write(out)
        return None
    out = check_destination(out, force)
    if out.is_dir():
        raise InputError(out, "is a folder; this format writes one file (give a file name to --out)")
    tmp = _tmp(out)
    try:
        write(str(tmp))
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return out


def _replace_folder(tmp: Path, out: Path) -> None:
    """Move the finished folder ``tmp`` to ``out``, replacing what is there (our own export
    or an empty folder) as late as possible."""
    old = None
    if out.exists():
        old = out.with_name(f"{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old) if old.is_dir() else old.unlink()


def _where(out) -> str:
    return "the download" if out is None or hasattr(out, "write") else str(out)


# --------------------------------------------------------------------------- QuakeML

def quakeml_parts(provider, sel: Selection) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(events, mechanisms, picks) of ``sel`` for :func:`.quakeml.catalog_to_quakeml`. The
    dashboard's reviewed picks override the batch ``manual`` rows, as in every inversion, so
    an exported polarity is the one a re-inversion would use now."""
    from ..review.reviews import apply_reviews
    from .quakeml import pick_table

    ids = sel.event_ids
    pol = apply_reviews(event_rows(provider, "polarities", ids), provider.data_dir)
    pol = pol[pol["event_id"].astype(str).isin(set(ids))]
    ms = event_rows(provider, "mechanism_stations", ids)
    return sel.events, sel.mechanisms, pick_table(pol, ms)


def export_quakeml(provider, sel: Selection, out, *, force: bool = False) -> ExportResult:
    """``sel`` as one QuakeML 1.2 file (path or binary buffer): events, focal mechanisms, P
    picks with true-motion polarities and their arrivals."""
    from .quakeml import catalog_to_quakeml

    events, mech, picks = quakeml_parts(provider, sel)
    cat = {}

    def write(target):
        cat["c"] = catalog_to_quakeml(events, mech, picks, target)

    path = _write_file(out, write, force)
    n_ev = len(cat["c"])
    n_pol = int((picks["polarity"] != 0).sum()) if len(picks) else 0
    counts = {"events": n_ev, "focal_mechanisms": len(mech), "picks": len(picks), "polarities": n_pol,
              "untimed_polarities": picks.attrs.get("untimed_polarities", 0)}
    untimed = counts["untimed_polarities"]
    summary = (f"wrote {_where(path or out)}: QuakeML, {n_ev} events, {len(mech)} focal mechanisms, "
               f"{len(picks)} P picks ({n_pol} with polarity"
               + (f"; {untimed} polarities without a P time left out" if untimed else "") + f") [{sel.what}]")
    return ExportResult(path, counts, summary)


def quakeml_bytes(provider, sel: Selection) -> bytes:
    """The QuakeML of ``sel`` as bytes (the dashboard's download)."""
    buf = io.BytesIO()
    export_quakeml(provider, sel, buf)
    return buf.getvalue()


# --------------------------------------------------------------------------- CSV

def export_csv(provider, sel: Selection, out, table: str = "mechanisms", *, force: bool = False) -> ExportResult:
    """``sel``'s mechanisms (:data:`.exports.CSV_COLUMNS`) or, ``table='events'``, its
    catalogue rows (:data:`.exports.EVENT_CSV_COLUMNS`) as CSV; ``out`` a path or a text
    or binary buffer."""
    if table not in CSV_TABLES:
        raise InputError(str(table), f"unknown CSV table (choose one of {', '.join(CSV_TABLES)})")
    if table == "events":
        # the events the dashboard counts (not those added only for a filtered mechanism)
        frame = sel.filtered_events
        writer, n = exports.events_to_csv, len(frame)
    else:
        frame, writer, n = sel.mechanisms, exports.mechanisms_to_csv, len(sel.mechanisms)

    def write(target):
        if isinstance(target, (io.BufferedIOBase, io.RawIOBase)):
            text = io.StringIO()
            writer(frame, text)
            target.write(text.getvalue().encode("utf-8"))
        else:
            writer(frame, target)

    path = _write_file(out, write, force)
    return ExportResult(path, {table: n},
                        f"wrote {_where(path or out)}: CSV, {n} {table} rows [{sel.what}]")


def csv_bytes(provider, sel: Selection, table: str = "mechanisms") -> bytes:
    buf = io.BytesIO()
    export_csv(provider, sel, buf, table)
    return buf.getvalue()


# --------------------------------------------------------------------------- SKHASH

def skhash_parts(provider, sel: Selection):
    """(events, polarities, stations, velocity model) SKHASH inverted for ``sel``'s events,
    assembled as :func:`pipeline.mechanisms.invert.invert` does: the polarities of
    ``select_polarities(picks='auto')`` and, where the event has a published mechanism, the
    location SKHASH used for it."""
    from ..mechanisms import invert

    ids = sel.event_ids
    pol = event_rows(provider, "polarities", ids)
    chosen = invert.select_polarities(pol, "auto") if len(pol) else pol
    published = event_rows(provider, "mechanisms", ids)
    published = published[published["source"] == "published"]
    events = sel.events[sel.events["event_id"].isin(chosen["event_id"])] if len(chosen) else sel.events.iloc[:0]
    ev = invert._locations(events, invert.skhash_locations(published if len(published) else None))
    vmodel = provider.velocity_model()
    return ev, chosen, provider.stations(), vmodel


def export_skhash(provider, sel: Selection, out, *, force: bool = False) -> ExportResult:
    """A SKHASH input folder for ``sel`` (``cd <out> && SKHASH control.txt``)."""
    out = check_destination(out, force)
    ev, pol, st, vmodel = skhash_parts(provider, sel)
    if vmodel.empty:
        raise InputError(provider.data_dir, "no velocity_model table: SKHASH needs one "
                                            "(build with a velocity model, see README)")
    if pol.empty:
        raise InputError(provider.data_dir, f"none of the {len(sel.events)} selected events has polarities "
                                            "to invert (select events with waveforms or picks)")
    try:
        paths = exports.skhash_inputs(out, ev, pol, st, vmodel, overwrite=force)
    except ValueError as exc:
        raise InputError(out, str(exc)) from exc
    n = len(pd.read_csv(paths["event_ids"]))
    n_ex = len(pd.read_csv(paths["excluded"])) if "excluded" in paths else 0
    return ExportResult(out, {"events": n, "polarities": len(pol), "excluded": n_ex},
                        f"wrote {out}: SKHASH inputs, {n} events, {len(pol)} polarities"
                        + (f", {n_ex} events excluded (see excluded_events.csv)" if n_ex else "")
                        + f" [{sel.what}]; run: cd {out} && SKHASH control.txt")


# --------------------------------------------------------------------------- StationXML

def stationxml_parts(provider):
    """(stations, waveform channels, polarity channels) for :func:`.stationxml.stations_to_inventory`."""
    stations = provider.stations()
    channels = verticals = None
    if provider.has_table("waveforms"):
        channels = provider.query("SELECT DISTINCT network, station, location, channel, sampling_rate"
                                  " FROM read_parquet(?, union_by_name=true)", [provider.parquet_source("waveforms")])
    if provider.has_table("polarities"):
        verticals = provider.query("SELECT DISTINCT network, station, location, channel"
                                   " FROM read_parquet(?, union_by_name=true) WHERE channel IS NOT NULL",
                                   [provider.parquet_source("polarities")])
    return stations, channels, verticals


def export_stationxml(provider, out, *, force: bool = False) -> ExportResult:
    """Every station as StationXML (path or binary buffer)."""
    from .stationxml import stations_to_inventory

    stations, channels, verticals = stationxml_parts(provider)
    inv = {}

    def write(target):
        inv["i"] = stations_to_inventory(stations, channels, verticals, target)

    path = _write_file(out, write, force)
    n_sta = sum(len(n.stations) for n in inv["i"].networks)
    n_cha = sum(len(s.channels) for n in inv["i"].networks for s in n.stations)
    n_rev = int(stations["reversed"].fillna(False).astype(bool).sum()) if "reversed" in stations else 0
    return ExportResult(path, {"networks": len(inv["i"].networks), "stations": n_sta, "channels": n_cha,
                               "reversed": n_rev},
                        f"wrote {_where(path or out)}: StationXML, {len(inv['i'].networks)} networks, {n_sta} "
                        f"stations, {n_cha} channels ({n_rev} reversed verticals with dip +90)")


# --------------------------------------------------------------------------- MiniSEED

def write_miniseed(provider, sel: Selection, folder: Path):
    """Write ``sel``'s waveforms into ``folder`` (batches of :data:`WAVEFORM_BATCH_EVENTS`
    events); returns the :class:`.miniseed.MiniseedResult`."""
    from .miniseed import MiniseedResult, p_times, write_event_miniseed

    res = MiniseedResult(files=[])
    folder.mkdir(parents=True, exist_ok=True)
    if not provider.has_table("waveforms"):
        return res
    ids = sel.event_ids
    for i in range(0, len(ids), WAVEFORM_BATCH_EVENTS):
        batch = ids[i:i + WAVEFORM_BATCH_EVENTS]
        waves = event_rows(provider, "waveforms", batch)
        if waves.empty:
            continue
        pt = p_times(event_rows(provider, "polarities", batch,
                                "event_id, network, station, p_time" if _has_p_time(provider) else "*"))
        write_event_miniseed(waves, pt, folder, result=res)
    return res


def _has_p_time(provider) -> bool:
    try:
        cols = provider.query("SELECT * FROM read_parquet(?, union_by_name=true) LIMIT 0",
                              [provider.parquet_source("polarities")]).columns
    except Exception:  # noqa: BLE001 - no table: no P times
        return False
    return "p_time" in cols


def export_miniseed(provider, sel: Selection, out, *, force: bool = False) -> ExportResult:
    """``sel``'s waveform snippets as ``<out>/<event_id>.mseed`` (written into
    ``<out>.tmp`` and renamed)."""
    out = check_destination(out, force)
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder (choose another --out)")
    if out.is_dir() and any(not (f.is_file() and f.suffix == ".mseed") for f in out.iterdir()):
        # --force replaces an earlier MiniSEED export, never a folder holding anything else
        raise InputError(out, "holds more than .mseed files: not replaced even with --force "
                              "(choose another --out)")
    tmp = _tmp(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        res = write_miniseed(provider, sel, tmp)
        _replace_folder(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return ExportResult(out, {"files": res.events, "traces": res.traces, "skipped": res.skipped},
                        f"wrote {out}: MiniSEED, {res.events} event files, {res.traces} traces"
                        + (f", {res.skipped} traces skipped (no P time)" if res.skipped else "")
                        + f" [{sel.what}]")


# --------------------------------------------------------------------------- one entry point

def export(data_dir, fmt: str, out, *, filters=None, event_id: str | None = None, table: str | None = None,
           force: bool = False, name: str | None = None) -> ExportResult:
    """Export ``fmt`` (one of :data:`FORMATS`) of the data folder ``data_dir`` to ``out``;
    the selection is ``filters`` (a :class:`~components.filters.Filters`, None = all) or
    the one event ``event_id``."""
    if fmt not in FORMATS:
        raise InputError(str(fmt), f"unknown export format (choose one of {', '.join(FORMATS)})")
    provider = provider_for(data_dir)
    try:
        if fmt == "stationxml":
            return export_stationxml(provider, out, force=force)
        sel = select(provider, filters, event_id)
        if fmt == "quakeml":
            return export_quakeml(provider, sel, out, force=force)
        if fmt == "csv":
            return export_csv(provider, sel, out, table or "mechanisms", force=force)
        if fmt == "skhash":
            return export_skhash(provider, sel, out, force=force)
        if fmt == "miniseed":
            return export_miniseed(provider, sel, out, force=force)
        from .project import export_project
        return export_project(provider, sel, out, force=force, name=name)
    finally:
        provider.close()


__all__ = ["CSV_TABLES", "FORMATS", "ExportResult", "check_destination", "csv_bytes", "export", "export_csv",
           "export_miniseed", "export_quakeml", "export_skhash", "export_stationxml", "quakeml_bytes",
           "whole_table"]
