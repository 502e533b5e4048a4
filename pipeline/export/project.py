"""A project folder to hand to another group: catalogue, stations, waveforms, velocity model,
wells, stages and injection in standard or plain formats, described by ``project.toml``.

Layout
------
::

    project.toml     name, and the file of each part (keys below)
    catalog.xml      QuakeML 1.2: events, focal mechanisms, P picks with polarities
                     (pipeline.export.quakeml; depths in metres)
    stations.xml     FDSN StationXML, SEED orientation: a reversed vertical has dip +90
    waveforms/       MiniSEED, one <event_id>.mseed per event (P-aligned snippets, as recorded)
    vp.csv           depth_km,vp_km_s (1-D P model, km and km/s, depth positive down)
    wells.csv        well,vertex,lat,lon[,depth_km] (well paths, vertices in order, deg)
    stages.csv       well,stage_no,time,lat,lon,day_index (time ISO 8601 UTC)
    injection.csv    date,rate_m3_min,volume_m3,well (daily; m3/min and m3)

``project.toml`` keys: ``name``, ``catalog``, ``stations``, ``waveforms``,
``velocity_model`` (when the data folder has a model), and ``wells``, ``stages``,
``injection`` only when those tables have rows. Paths are relative to the folder.

The folder is written as ``<out>.tmp`` and renamed to ``<out>`` at the end. An existing
non-empty ``<out>`` is refused unless ``force``; even then only a folder holding a
``project.toml`` (an earlier export) is replaced - never an arbitrary folder.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd

from ..errors import InputError
from .selection import Selection, whole_table

__all__ = ["TOML_FILE", "export_project", "project_toml"]

TOML_FILE = "project.toml"
#: optional stage columns written when the table has them (the files source reads them back)
STAGE_EXTRAS = ("depth_km", "rate_m3_min", "pumping_min", "volume_m3")
_ISO = "%Y-%m-%dT%H:%M:%S.%fZ"


def _toml_str(s: str) -> str:
    # a TOML basic string: JSON's escapes (\" \\ \n \uXXXX) are valid TOML escapes
    return json.dumps(str(s), ensure_ascii=True)


def project_toml(name: str, files: dict[str, str], frame_origin: tuple[float, float] | None = None) -> str:
    """The text of ``project.toml``: ``name`` then ``key = "file"`` in ``files``' order, then
    the km frame's origin (so a rebuild puts every event at the same x/y)."""
    lines = ["# Project folder written by python -m pipeline export --format project",
             "# (ToC2ME focal-mechanism workbench). Paths are relative to this file.",
             f"name = {_toml_str(name)}"]
    lines += [f"{k} = {_toml_str(v)}" for k, v in files.items()]
    if frame_origin is not None:
        lines.append(f"frame_origin = [{float(frame_origin[0])!r}, {float(frame_origin[1])!r}]")
    return "\n".join(lines) + "\n"


def _iso(series) -> pd.Series:
    t = pd.to_datetime(series, utc=True)
    return t.dt.strftime(_ISO).where(t.notna(), None)


def _csv(df: pd.DataFrame, columns: list[str], path: Path) -> None:
    out = pd.DataFrame({c: df[c] if c in df.columns else pd.Series([None] * len(df), dtype=object)
                        for c in columns})
    out.to_csv(path, index=False, lineterminator="\n")


def _check(out: Path, force: bool) -> None:
    if not out.parent.exists():
        raise InputError(out.parent, "no such folder (create it first or choose another --out)")
    if out.exists() and not out.is_dir():
        raise InputError(out, "exists and is not a folder (choose another --out)")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise InputError(out, "is not empty (pass --force to replace an earlier project export, "
                                  "or choose another --out)")
        if not (out / TOML_FILE).is_file():
            raise InputError(out, f"is not empty and holds no {TOML_FILE}, so it is not an earlier project "
                                  "export: not replaced even with --force (choose another --out)")


def export_project(provider, sel: Selection, out, *, force: bool = False, name: str | None = None):
    """Write the project folder of ``sel`` (its events, mechanisms, picks and waveforms;
    every station, well, stage and injection row) to ``out``; returns an
    :class:`~pipeline.export.run.ExportResult`."""
    from . import run
    from .quakeml import catalog_to_quakeml
    from .stationxml import stations_to_inventory

    out = Path(out)
    _check(out, force)
    tmp = out.with_name(out.name + ".tmp")
    if tmp.exists():  # a crashed earlier export of ours
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        files: dict[str, str] = {"catalog": "catalog.xml", "stations": "stations.xml", "waveforms": "waveforms"}
        events, mech, picks = run.quakeml_parts(provider, sel)
        cat = catalog_to_quakeml(events, mech, picks, str(tmp / files["catalog"]))
        stations, channels, verticals = run.stationxml_parts(provider)
        inv = stations_to_inventory(stations, channels, verticals, str(tmp / files["stations"]))
        waves = run.write_miniseed(provider, sel, tmp / files["waveforms"])

        vm = provider.velocity_model()
        if len(vm):
            _csv(vm.sort_values("depth_km"), ["depth_km", "vp_km_s"], tmp / "vp.csv")
            files["velocity_model"] = "vp.csv"
        wells = whole_table(provider, "wells", "well, vertex")
        if len(wells):
            cols = ["well", "vertex", "lat", "lon"] + (["depth_km"] if "depth_km" in wells else [])
            _csv(wells, cols, tmp / "wells.csv")
            files["wells"] = "wells.csv"
        stages = whole_table(provider, "stages", "well, stage_no")
        if len(stages):
            extra = [c for c in STAGE_EXTRAS if c in stages]
            _csv(stages.assign(time=_iso(stages["time"])), ["well", "stage_no", "time", "lat", "lon", "day_index"]
                 + extra, tmp / "stages.csv")
            files["stages"] = "stages.csv"
        inj = whole_table(provider, "injection", "date, well")
        if len(inj):
            date = pd.to_datetime(inj["date"]).dt.strftime("%Y-%m-%d")
            _csv(inj.assign(date=date), ["date", "rate_m3_min", "volume_m3", "well"], tmp / "injection.csv")
            files["injection"] = "injection.csv"
        frame = provider.frame()
        origin = (frame["origin_lat"].iloc[0], frame["origin_lon"].iloc[0]) if len(frame) else None
        (tmp / TOML_FILE).write_text(project_toml(name or out.name, files, origin))
        run._replace_folder(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    n_sta = sum(len(n.stations) for n in inv.networks)
    counts = {"events": len(cat), "focal_mechanisms": len(mech), "picks": len(picks), "stations": n_sta,
              "waveform_files": waves.events, "traces": waves.traces, "skipped_traces": waves.skipped,
              "wells": int(wells["well"].nunique()) if len(wells) else 0, "stages": len(stages),
              "injection_days": len(inj)}
    summary = (f"wrote {out}: project, {len(cat)} events, {len(mech)} focal mechanisms, {len(picks)} P picks, "
               f"{n_sta} stations, {waves.events} waveform files ({waves.traces} traces"
               + (f", {waves.skipped} skipped: no P time" if waves.skipped else "")
               + f"), {counts['wells']} wells, {len(stages)} stages, {len(inj)} injection days [{sel.what}]")
    return run.ExportResult(out, counts, summary)
