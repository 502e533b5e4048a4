"""``--source files``: an experiment described by ``DIR/project.toml`` in standard formats.

``project.toml`` (paths relative to DIR)::

    name = "My experiment"
    catalog = "catalog.xml"        # QuakeML, or CSV: time,lat,lon,depth_km,magnitude[,event_id]
    stations = "stations.xml"      # StationXML, or CSV: network,station,lat,lon,elevation_m[,reversed]
    waveforms = "waveforms"        # MiniSEED and/or SAC files, any layout and grouping (optional)
    velocity_model = "vp.csv"      # depth_km,vp_km_s (optional: without it no mechanisms are computed)
    # optional:
    picks = "picks.csv"            # event_id|event_time,network,station,phase,time[,polarity,method,...]
    mechanisms = "mechanisms.csv"  # published mechanisms, the CSV `python -m pipeline export --format csv` writes
    wells = "wells.csv"            # well,vertex,lat,lon[,depth_km]   (vertex optional: file order)
    stages = "stages.csv"          # well,stage_no,time,lat,lon[,day_index,depth_km,rate_m3_min,pumping_min,volume_m3]
    injection = "injection.csv"    # date,rate_m3_min[,volume_m3,well]
    regions = "regions.csv"        # name,lat,lon[,description]: one row per polygon vertex
    frame_origin = [54.33, -117.24]  # lat, lon of the local km frame (default: the stations' mean)
    predict_p = false              # true: a station without a P pick gets the velocity model's travel time

Picking needs a P time per trace: a catalogue or picks-file pick, else a SAC ``t1``/``t3``
header, else (only with ``predict_p = true``) the first arrival through the velocity
model, labelled ``p_source = 'predicted'``. A predicted P is typically tens of ms off, a
large part of the picker's 1.2 s window, so its polarities are less reliable: the option
is off by default and the polarities table says which P each pick used.

Readers: :mod:`pipeline.ingest.catalog_formats` (QuakeML/CSV events, picks with polarity,
published mechanisms), :mod:`pipeline.ingest.station_formats` (StationXML/CSV, sensor
polarity from the vertical channel's dip), :mod:`pipeline.ingest.waveform_index` (waveforms
matched to events by time). No dataset constant lives here: the km frame, the reversed
stations and the velocity model all come from the files. Events get the name of the first
``regions`` polygon that holds their catalogue location as ``cluster``
(:func:`pipeline.ingest.regions.read_regions_csv`; the dashboard's cluster filter lists
them); without ``regions`` every ``cluster`` is null. The optional tables are empty when
not given; the pages say so.
"""
from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import schema
from ..errors import InputError
from ..mechanisms import enrich
from ..picking.pickers import station_reversed
from ..rejects import Rejects
from . import catalog_formats, regions, station_formats
from .catalog_formats import _csv_rows, _float, _utc

log = logging.getLogger(__name__)

CONFIG = "project.toml"
DATASET = "files"
FRAME_METHOD = "tangent-plane (WGS84 radii at origin)"
REQUIRED_KEYS = ("catalog", "stations")
PATH_KEYS = ("catalog", "stations", "waveforms", "velocity_model", "picks", "mechanisms", "wells", "stages",
             "injection", "regions")
KNOWN_KEYS = ("name", "frame_origin", "predict_p") + PATH_KEYS
#: optional numeric stage columns kept when the stages CSV has them (depth km, m3/min, min, m3)
STAGE_EXTRAS = ("depth_km", "rate_m3_min", "pumping_min", "volume_m3")


@dataclass
class Project:
    """A read project: its tables plus what the later stages need."""

    root: Path
    name: str
    tables: dict                      #: name -> DataFrame, the data contract's base tables
    picks: pd.DataFrame               #: P picks (catalogue and picks file), see catalog_formats.PICK_COLUMNS
    polarities: pd.DataFrame          #: human (published/manual) polarities of the picks
    waveforms: Path | None = None     #: the waveform folder, if any
    velocity_model: pd.DataFrame | None = None
    config: dict = field(default_factory=dict)


def load_toml(root: Path, missing_hint: str) -> tuple[Path, dict]:
    """(path, parsed keys) of ``root/project.toml``; :class:`InputError` when it is missing
    (``missing_hint`` says what the command needs), not TOML, or has an unknown key."""
    path = root / CONFIG
    if not path.is_file():
        raise InputError(path, f"no project.toml: {missing_hint}")
    try:
        cfg = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(path, f"not valid TOML: {exc}") from None
    unknown = sorted(set(cfg) - set(KNOWN_KEYS))
    if unknown:
        raise InputError(path, f"unknown key(s) {unknown}; known: {list(KNOWN_KEYS)}")
    return path, cfg


def read_config(root: Path) -> dict:
    """The validated ``project.toml`` of ``root`` with its paths made absolute."""
    path, cfg = load_toml(root, "the files source needs one (see README, 'Bring your own data')")
    for k in REQUIRED_KEYS:
        if k not in cfg:
            raise InputError(path, f"missing key {k!r}")
    out = {"name": str(cfg.get("name", root.name))}
    for k in PATH_KEYS:
        if k in cfg:
            if not isinstance(cfg[k], str) or not cfg[k]:
                raise InputError(path, f"{k} must be a path relative to {root}")
            p = (root / cfg[k]).resolve()
            if not p.exists():
                raise InputError(path, f"{k} = {cfg[k]!r}: {p} does not exist")
            out[k] = p
    out["predict_p"] = cfg.get("predict_p", False)
    if not isinstance(out["predict_p"], bool):
        raise InputError(path, "predict_p must be true or false")
    if "frame_origin" in cfg:
        fo = cfg["frame_origin"]
        if not (isinstance(fo, list) and len(fo) == 2 and all(isinstance(v, (int, float)) for v in fo)
                and -90 <= fo[0] <= 90 and -180 <= fo[1] <= 180):
            raise InputError(path, "frame_origin must be [lat, lon] in degrees")
        out["frame_origin"] = (float(fo[0]), float(fo[1]))
    return out


# --------------------------------------------------------------------------- optional tables

def _read_wells(path: Path, root: Path, rejects: Rejects) -> pd.DataFrame:
    rel = catalog_formats._rel(path, root)
    _, rows = _csv_rows(path, rel, ["well", "lat", "lon"])
    out, count = [], {}
    for n, raw, r in rows:
        try:
            vertex = int(r["vertex"]) if r.get("vertex") else count.get(r["well"], 0)
            out.append({"well": r["well"], "vertex": vertex, "lat": _float(r["lat"], "lat", -90, 90),
                        "lon": _float(r["lon"], "lon", -180, 180),
                        "depth_km": _float(r.get("depth_km", ""), "depth_km", -10, 20, optional=True)})
            count[r["well"]] = vertex + 1
        except (ValueError, TypeError) as exc:
            rejects.add(rel, n, f"unusable well vertex: {exc}", ",".join(raw))
    return pd.DataFrame(out, columns=["well", "vertex", "lat", "lon", "depth_km"])


def _read_stages(path: Path, root: Path, rejects: Rejects) -> pd.DataFrame:
    rel = catalog_formats._rel(path, root)
    header, rows = _csv_rows(path, rel, ["well", "stage_no", "time", "lat", "lon"])
    out = []
    for n, raw, r in rows:
        try:
            row = {"well": r["well"], "stage_no": int(r["stage_no"]), "time": _utc(r["time"]),
                   "lat": _float(r["lat"], "lat", -90, 90), "lon": _float(r["lon"], "lon", -180, 180),
                   "day_index": _float(r.get("day_index", ""), "day_index", optional=True)}
            out.append(row | {c: _float(r.get(c, ""), c, 0, optional=True) for c in STAGE_EXTRAS if c in header})
        except (ValueError, TypeError) as exc:
            rejects.add(rel, n, f"unusable stage row: {exc}", ",".join(raw))
    df = pd.DataFrame(out, columns=["well", "stage_no", "time", "lat", "lon", "day_index"]
                      + [c for c in STAGE_EXTRAS if c in header])
    df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


def _read_injection(path: Path, root: Path, rejects: Rejects) -> pd.DataFrame:
    rel = catalog_formats._rel(path, root)
    _, rows = _csv_rows(path, rel, ["date", "rate_m3_min"])
    out = []
    for n, raw, r in rows:
        try:
            out.append({"date": pd.Timestamp(r["date"]).date(), "rate_m3_min": _float(r["rate_m3_min"], "rate", 0),
                        "volume_m3": _float(r.get("volume_m3", ""), "volume_m3", 0, optional=True),
                        "well": r.get("well") or None, "source_row": n})
        except (ValueError, TypeError) as exc:
            rejects.add(rel, n, f"unusable injection row: {exc}", ",".join(raw))
    return pd.DataFrame(out, columns=["date", "rate_m3_min", "volume_m3", "well", "source_row"])


def _read_mechanisms_csv(path: Path, root: Path, events: pd.DataFrame, rejects: Rejects) -> pd.DataFrame:
    """Published mechanisms from the exporter's CSV, joined to events by nearest origin time."""
    from ..export.exports import read_mechanisms_csv
    from .toc2me import nearest_time_join
    rel = catalog_formats._rel(path, root)
    try:
        df = read_mechanisms_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise InputError(rel, f"not a mechanisms CSV ({type(exc).__name__}: {exc})") from None
    if "source" in df:
        df = df[df["source"].fillna("published") != "computed"]
    idx, _ = nearest_time_join(df["time"], events["time"])
    for k in np.flatnonzero(idx < 0):
        rejects.add(rel, int(k) + 2, "mechanism of no catalogue event within 0.5 s", stage="join")
    df = df[idx >= 0].assign(event_id=events["event_id"].to_numpy()[idx[idx >= 0]])
    keep = [c for c in ("event_id", "strike", "dip", "rake", "quality", "n_polarities", "polarity_misfit",
                        "sta_distribution_ratio") if c in df]
    return df[keep].drop_duplicates("event_id")


# --------------------------------------------------------------------------- assembly

def _frame_origin(cfg: dict, stations: pd.DataFrame) -> tuple[float, float]:
    if "frame_origin" in cfg:
        return cfg["frame_origin"]
    # the array's centre, rounded so the frame does not move with float noise
    return (round(float(stations["lat"].mean()), 4), round(float(stations["lon"].mean()), 4))


def _published_mechanisms(mech: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    cols = schema.MECHANISMS.column_names
    if mech.empty:
        return pd.DataFrame(columns=cols)
    ev = events.set_index("event_id")
    m = mech.copy()
    for c in ("time", "lat", "lon", "depth_km", "magnitude", "x_km", "y_km", "cluster"):
        m[c] = ev.loc[m["event_id"], c].to_numpy()
    m["source"] = "published"
    for c in ("lat_skhash", "lon_skhash", "depth_km_skhash", "fault_plane_uncertainty", "prob_mech",
              "aux_plane_uncertainty", "kagan_to_published"):
        m[c] = m[c].astype(float) if c in m else np.nan
    for c in ("polarity_misfit", "sta_distribution_ratio"):
        m[c] = m[c].astype(float) if c in m else np.nan
    m["n_polarities"] = pd.array(m["n_polarities"] if "n_polarities" in m else [pd.NA] * len(m), dtype="Int32")
    if "quality" not in m:
        m["quality"] = None
    m["published_set"] = "catalog"
    m["picks"], m["engine"] = None, None
    m = enrich.complete_mechanisms(m)
    return m[[c for c in cols if c in m]].sort_values("time", kind="stable").reset_index(drop=True)


def human_polarities(picks: pd.DataFrame, stations: pd.DataFrame) -> pd.DataFrame:
    """Polarity rows (true ground motion, as given) of the manual/published picks that carry one."""
    p = picks[picks["method"].isin(["manual", "published"]) & picks["polarity"].notna()]
    # every pick's station is known here (picks at unknown stations were rejected in load)
    rev = station_reversed(p["network"].to_numpy(), p["station"].to_numpy(), stations)
    return pd.DataFrame({
        "event_id": p["event_id"].astype(str), "network": p["network"].astype(str),
        "station": p["station"].astype(str), "location": p["location"].astype(str),
        "channel": p["channel"].astype(str), "method": p["method"].astype(str),
        "polarity": p["polarity"].astype("int8"),
        # a human first motion is read off the true motion already: recorded = true x reversal
        "polarity_recorded": np.where(rev, -p["polarity"].astype(int), p["polarity"].astype(int)).astype("int8"),
        "prob_down_recorded": np.nan, "snr": np.nan, "p_source": "catalog",
        "p_time": pd.to_datetime(p["time"], utc=True).dt.round("us"), "reversed": rev,
    }).reset_index(drop=True)


def load(root: str | Path) -> Project:
    """Read the project folder ``root`` (see the module docstring)."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise InputError(root, "input folder does not exist")
    cfg = read_config(root)
    rejects = Rejects()
    events, picks, mech = catalog_formats.read_catalog(cfg["catalog"], rejects, root)
    if events.empty:
        raise InputError(catalog_formats._rel(cfg["catalog"], root), "no usable event")
    stations = station_formats.read_stations(cfg["stations"], rejects, root)
    origin = _frame_origin(cfg, stations)
    events = enrich.add_local_coords(events, origin)
    events["cluster"] = regions.assign_clusters(
        events, regions=regions.read_regions_csv(cfg["regions"], catalog_formats._rel(cfg["regions"], root))
    ).to_numpy() if "regions" in cfg else None
    stations = enrich.add_local_coords(stations, origin)
    if "picks" in cfg:
        picks = pd.concat([picks, catalog_formats.read_picks_csv(cfg["picks"], events, rejects, root)],
                          ignore_index=True)
    known = set(zip(stations["network"], stations["station"]))
    unknown = [(n, s) not in known for n, s in zip(picks["network"], picks["station"])]
    for _, r in picks[unknown].iterrows():
        rejects.add(r["source_file"], r["source_line"] if pd.notna(r["source_line"]) else None,
                    f"pick of event {r['event_id']} at unknown station {r['network']}.{r['station']}")
    picks = picks[~np.asarray(unknown, dtype=bool)].reset_index(drop=True)
    if "mechanisms" in cfg:
        mech = pd.concat([mech, _read_mechanisms_csv(cfg["mechanisms"], root, events, rejects)], ignore_index=True)
        mech = mech.drop_duplicates("event_id")
    tables = {
        "events": events,
        "stations": stations,
        "wells": enrich.add_local_coords(_read_wells(cfg["wells"], root, rejects), origin) if "wells" in cfg
        else _empty("wells"),
        "stages": enrich.add_local_coords(_read_stages(cfg["stages"], root, rejects), origin) if "stages" in cfg
        else _empty("stages"),
        "injection": _read_injection(cfg["injection"], root, rejects) if "injection" in cfg else _empty("injection"),
        "mechanisms": _published_mechanisms(mech, events),
        "frame": pd.DataFrame({"origin_lat": [origin[0]], "origin_lon": [origin[1]], "method": [FRAME_METHOD],
                               "dataset": [cfg["name"]]}),
    }
    vmodel = None
    if "velocity_model" in cfg:
        from ..mechanisms.skhash import read_velocity_model
        try:
            vmodel = read_velocity_model(cfg["velocity_model"])
        except (ValueError, FileNotFoundError) as exc:
            raise InputError(catalog_formats._rel(cfg["velocity_model"], root), str(exc)) from None
        tables["velocity_model"] = vmodel
    tables["rejects"] = rejects.to_frame()
    log.info("files source %r: %s", cfg["name"], {k: len(v) for k, v in tables.items()})
    return Project(root=root, name=cfg["name"], tables=tables, picks=picks,
                   polarities=human_polarities(picks, stations), waveforms=cfg.get("waveforms"),
                   velocity_model=vmodel, config=cfg)


def _empty(table: str) -> pd.DataFrame:
    cols = schema.TABLES[table].column_names
    df = pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    if "time" in df:
        df["time"] = pd.to_datetime(df["time"], utc=True)
    return df


__all__ = ["CONFIG", "Project", "human_polarities", "load", "read_config"]
