"""`build`: every table of the data contract, end to end, from one data source.

Sources:

* ``demo`` (default): a synthetic experiment generated from a fixed seed, no input needed
  (:mod:`pipeline.demo.scenario`); it carries its ground truth in ``truth_*`` tables.
* ``toc2me``: a folder laid out like the public ToC2ME data (:mod:`pipeline.ingest.toc2me`).
* ``files``: any experiment in standard formats (QuakeML/CSV catalogue, StationXML/CSV
  stations, MiniSEED/SAC waveforms of any layout matched to events by time), described by
  ``project.toml`` (:mod:`pipeline.ingest.project`).

Stages after the base tables (each optional, see :class:`Options`), run on dask.distributed
(:mod:`pipeline.flow`: a LocalCluster of one process per core, or ``scheduler``):

1. polarities: published/manual/reference picks of ``picks/`` (ToC2ME) with the dashboard's
   reviews applied, and the automatic pickers over every event folder under
   ``waveforms/`` (at any depth; synthetic traces for the demo), in chunks of events that
   each write their own ``polarities``/``waveforms``/``rejects`` parts;
2. inversion: SKHASH on the polarities (manual overriding automatic), in chunks, with a
   per-event time limit -> ``source='computed'`` mechanisms beside the published ones, with
   per-station rays, acceptable planes and the unsolved events with their reasons.

Resume: finished chunks are kept under ``<data-dir>/work`` with a digest of their inputs,
code and model (:mod:`pipeline.flow.chunks`); re-running the same command after a crash,
``kill -9`` or Ctrl-C reuses them and gives the same tables as an uninterrupted build.
Added event folders or a new model redo only the chunks they touch. ``fresh=True`` starts
from nothing.

Publishing: the tables become visible all at once as a new version of the data folder
(:mod:`pipeline.store`); a failed build never changes what readers see.
"""
from __future__ import annotations

import fcntl
import json
import logging
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from . import schema, store, tables
from .errors import InputError
from .rejects import Rejects

log = logging.getLogger(__name__)

SOURCES = ("demo", "toc2me", "files")
DEFAULT_SEED = 20161104


@dataclass
class Options:
    """What a build does beyond the base tables, and where it runs."""

    pick: bool = True                   #: run the automatic pickers on the event waveforms
    pickers: tuple = ("cnn", "onset")   #: which (see pipeline.picking.PICKERS)
    weights: str | None = None          #: weights file for cnn/cct (default: the committed CNN)
    invert: bool = True                 #: run SKHASH on the polarities
    picks: str = "auto"                 #: polarity choice for SKHASH (pipeline.mechanisms.invert)
    demo_waveform_events: int = 60      #: demo events that get synthetic waveforms
    workers: int | None = None          #: LocalCluster worker processes (default: all cores)
    scheduler: str | None = None        #: address of an existing Dask scheduler (else LocalCluster)
    chunk_events: int = 25              #: target events per chunk
    event_timeout: float = 120.0        #: per-event SKHASH limit, s
    fresh: bool = False                 #: discard the chunk cache of earlier (partial) builds
    retry_failed: bool = False          #: run chunks again that failed in an earlier build
    use_fortran: bool | None = None     #: SKHASH grid search: None auto, True Fortran, False Python
    progress: bool = True               #: progress bars / lines
    dashboard: bool = True              #: start the Dask dashboard (LocalCluster)


def load_source(source: str, input_dir: str | Path | None = None, seed: int = DEFAULT_SEED) -> dict:
    """Tables (name -> DataFrame) of one source, not yet written."""
    if source == "demo":
        from .demo import scenario as demo
        return demo.generate(seed=seed)
    if source in ("toc2me", "files"):
        if input_dir is None:
            hint = "or run `python -m pipeline fetch-toc2me`" if source == "toc2me" else "a folder with project.toml"
            raise InputError("--input", f"the {source} source needs --input DIR ({hint})")
        input_dir = Path(input_dir)
        if not input_dir.is_dir():
            raise InputError(input_dir, "input folder does not exist")
        if source == "files":
            from .ingest import project
            return project.load(input_dir).tables
        from .ingest import toc2me
        return toc2me.load(input_dir)
    raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")


def _demo_polarities(data: dict, opts: Options) -> pd.DataFrame:
    """Synthetic traces of the demo -> waveforms and truth_polarities (in ``data``); returns
    the polarities of the pickers on them (a few dozen events: made in the driver)."""
    from . import picking
    from .demo import waveforms as dw
    meta, windows = dw.generate_waveforms(data, max_events=opts.demo_waveform_events)
    origin = data["events"].set_index("event_id")["time"]
    p_time = pd.to_datetime(meta["event_id"].map(origin), utc=True) + pd.to_timedelta(meta["p_time_s"], unit="s")
    meta = meta.assign(location="", p_source="synthetic", snr=picking.windows_snr(windows), p_time=p_time)
    pickers = {n: picking.load_picker(n, opts.weights) for n in opts.pickers}
    pol = picking.pick_windows(meta, windows, data["stations"], pickers)
    data["waveforms"] = pd.DataFrame({
        "event_id": meta["event_id"], "network": meta["network"], "station": meta["station"],
        "location": "", "channel": meta["channel"], "t0_s": -dw.P_INDEX / dw.SAMPLING_RATE,
        "sampling_rate": dw.SAMPLING_RATE, "samples": list(windows), "p_source": "synthetic"})
    data["truth_polarities"] = meta[["event_id", "network", "station", "true_polarity", "amplitude",
                                     "near_nodal", "dead", "snr_true", "takeoff_deg", "azimuth_deg"]].copy()
    return pol


def _picks_folder(data: dict, input_dir: Path, rejects: Rejects) -> pd.DataFrame | None:
    """Published/manual/reference picks of ``picks/``; the ``.pol.hash`` header locations
    (the ones the published SKHASH run used, at full precision) become the published
    mechanisms' ``*_skhash`` location, the one every inversion path reads."""
    from . import picking
    from .ingest import picks
    if not (input_dir / "picks").is_dir():
        return None
    pol, locations = picks.load_picks(input_dir / "picks", data["stations"], rejects)
    pol["event_id"] = picking.match_event_ids(pol["event_id"], data["events"])
    unmatched = pol["event_id"].isna()
    if unmatched.any():
        rejects.add("picks/", None, f"{int(unmatched.sum())} picks of events not in the catalogue", stage="join")
    locations["event_id"] = picking.match_event_ids(locations["event_id"], data["events"])
    _set_skhash_locations(data["mechanisms"], locations.dropna(subset=["event_id"]))
    return pol[~unmatched]


def _set_skhash_locations(mech: pd.DataFrame, locations: pd.DataFrame) -> None:
    loc = locations.drop_duplicates("event_id").set_index("event_id")
    rows = (mech["source"] == "published") & mech["event_id"].isin(loc.index)
    for c in ("lat", "lon", "depth_km"):
        mech.loc[rows, f"{c}_skhash"] = loc.loc[mech.loc[rows, "event_id"], c].to_numpy()


@contextmanager
def _build_lock(data_dir: Path):
    """One build per data folder at a time (a second one fails at once, saying so)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fh = open(data_dir / ".build.lock", "w")
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InputError(data_dir, "another build is running on this data folder") from None
        yield
    finally:
        fh.close()


class _DriverParts:
    """Part files the driver itself writes (picks folder, reviews, ingest rejects), kept in
    ``work/driver`` so they can be hard-linked into the version like chunk parts."""

    def __init__(self, work: Path):
        self.folder = work / "driver"
        self.folder.mkdir(parents=True, exist_ok=True)

    def write(self, table: str, df: pd.DataFrame, part_schema=None) -> Path:
        from .flow.picking_stage import to_part
        path = self.folder / f"{table}.parquet"
        tables.write_parquet(to_part(table, df.reset_index(drop=True), part_schema), path)
        return path


def build(source: str = "demo", input_dir: str | Path | None = None, data_dir: str | Path = "data",
          seed: int = DEFAULT_SEED, options: Options | None = None) -> dict:
    """Build every table from ``source`` into ``data_dir``; returns the build info."""
    data_dir = Path(data_dir)
    with _build_lock(data_dir):
        return _build(source, input_dir, data_dir, seed, options or Options())


def _build(source, input_dir, data_dir: Path, seed, opts: Options) -> dict:
    from .flow import chunks, cluster, invert_stage, picking_stage
    from .review.reviews import apply_reviews

    t0 = time.perf_counter()
    project = None
    if source == "files":
        from .ingest import project as project_source
        if input_dir is None:
            raise InputError("--input", "the files source needs --input DIR (a folder with project.toml)")
        project = project_source.load(input_dir)
        data = dict(project.tables)
    else:
        data = load_source(source, input_dir, seed)
    rejects = Rejects()
    work = data_dir / chunks.WORK
    if opts.fresh and work.exists():
        shutil.rmtree(work)
    driver = _DriverParts(work)
    vmodel, driver_pol, pick_results, inv_results, specs = None, None, [], [], []
    stats: dict = {}
    with cluster.open_client(opts.workers, opts.scheduler, dashboard=opts.dashboard) as client:
        stats["workers"] = cluster.n_workers(client)
        will_pick = opts.pick and (
            (source == "files" and project.waveforms is not None)
            or (source not in ("demo", "files") and input_dir is not None
                and (Path(input_dir) / "waveforms").is_dir()))
        # the models load on the workers while this process plans the chunks
        warm = picking_stage.start_warm_up(client, tuple(opts.pickers), opts.weights) if will_pick else []
        if source == "demo":
            from .mechanisms.skhash import DEMO_VELOCITY_MODEL
            vmodel = DEMO_VELOCITY_MODEL
            if opts.pick:
                driver_pol = _demo_polarities(data, opts)
        elif source == "files":
            driver_pol = project.polarities if len(project.polarities) else None
            if opts.pick and project.waveforms is not None:
                specs = _plan_matched(project, data, work, rejects, opts)
                pick_results = _run_picking(client, work, specs, opts, stats)
            vmodel = project.velocity_model
            if vmodel is None:
                log.warning("project.toml names no velocity_model: computed mechanisms skipped")
        else:
            input_dir = Path(input_dir)
            driver_pol = _picks_folder(data, input_dir, rejects)
            wf_root = input_dir / "waveforms"
            if opts.pick and wf_root.is_dir():
                specs = picking_stage.plan(wf_root, data["events"], data["stations"], tuple(opts.pickers),
                                           opts.weights, True, opts.chunk_events, rejects)
                pick_results = _run_picking(client, work, specs, opts, stats)
            vz = input_dir / "skhash_demo" / "vz.north"
            if vz.exists():
                from .mechanisms.skhash import read_velocity_model
                vmodel = read_velocity_model(vz)
            else:
                log.warning("no velocity model at %s: computed mechanisms skipped", vz)
        del warm
        if any(not r.reused for r in pick_results) and getattr(client, "cluster", None) is not None:
            # our own LocalCluster: fresh workers for the SKHASH stage give back the pickers'
            # TensorFlow memory (~1 GB a worker) before SKHASH processes start beside them
            client.restart()
        # the dashboard's reviews override the batch manual picks (the one write path)
        if driver_pol is not None or pick_results:
            base = driver_pol if driver_pol is not None else pd.DataFrame(
                columns=["event_id", "network", "station", "method", "polarity"])
            driver_pol = apply_reviews(base, data_dir)
            driver_pol = driver_pol[driver_pol["event_id"].isin(data["events"]["event_id"])]
        if vmodel is not None:
            data["velocity_model"] = vmodel
        if vmodel is not None and opts.invert and (driver_pol is not None and len(driver_pol) or pick_results):
            picked = [([e for e, _ in s["events"]], str(r.part("polarities")), r.key)
                      for r, (_, s) in zip(pick_results, specs) if r.part("polarities") is not None]
            t = time.perf_counter()
            inv_results = invert_stage.run(client, work, data["events"], data["stations"], vmodel,
                                           data["mechanisms"], picked, driver_pol, picks=opts.picks,
                                           use_fortran=opts.use_fortran, event_timeout=opts.event_timeout,
                                           chunk_events=opts.chunk_events, retry_failed=opts.retry_failed,
                                           progress=opts.progress)
            stats["mechanisms_s"] = round(time.perf_counter() - t, 2)

    parts: dict[str, list[Path]] = {}
    if driver_pol is not None or pick_results:
        parts["polarities"] = ([driver.write("polarities", driver_pol, picking_stage.polarities_schema())]
                               if driver_pol is not None and len(driver_pol) else [])
        parts["polarities"] += [r.part("polarities") for r in pick_results if r.part("polarities")]
    if pick_results:
        parts["waveforms"] = [r.part("waveforms") for r in pick_results if r.part("waveforms")]
    ingest_rejects = pd.concat([data.pop("rejects"), rejects.to_frame()], ignore_index=True)
    parts["rejects"] = [driver.write("rejects", ingest_rejects)] + \
        [r.part("rejects") for r in pick_results if r.part("rejects")]
    if inv_results:
        computed = invert_stage.computed_mechanisms(inv_results, data.get("truth_mechanisms"))
        data["mechanisms"] = pd.concat([data["mechanisms"], computed], ignore_index=True)
        parts.update(invert_stage.part_lists(inv_results))
    parts = {k: v for k, v in parts.items() if v}

    if "polarities" in parts:
        from .picking import evaluate
        # the columns the evaluation reads (the snippets and the rest stay on disk)
        cols = ["event_id", "network", "station", "channel", "method", "polarity", "prob_down_recorded", "snr",
                "model_version", "lower", "upper"]
        pol_all = pd.concat([pd.read_parquet(p, columns=cols) for p in parts["polarities"]], ignore_index=True)
        data["model_eval"] = evaluate.evaluate({**data, "polarities": pol_all},
                                               input_dir if source == "toc2me" else None)
        del pol_all
    missing = [t for t in schema.REQUIRED_TABLES if t not in data and t not in parts]
    if missing:
        raise RuntimeError(f"source {source!r} produced no {missing} table(s)")
    rows = {name: int(len(df)) for name, df in data.items()}
    rows.update({name: sum(_rows(p) for p in files) for name, files in parts.items()})
    info = {
        "source": source,
        "input": str(Path(input_dir).resolve()) if input_dir else None,
        "seed": seed if source == "demo" else None,
        "options": asdict(opts),
        "schema_version": schema.SCHEMA_VERSION,
        "inputs": input_fingerprint(source, input_dir),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": dict(sorted(rows.items())),
        "chunks": {"picking": _chunk_counts(pick_results), "mechanisms": _chunk_counts(inv_results)},
        "stages": stats,
        "seconds": round(time.perf_counter() - t0, 2),  # before the write
    }
    tables.write_tables(data_dir, data, info, parts=parts, replace=True)
    log.info("built %s into %s (version %s) in %.1f s: %s", source, data_dir, store.current_version(data_dir),
             info["seconds"], info["rows"])
    return info


def _plan_matched(project, data: dict, work: Path, rejects: Rejects, opts: Options) -> list:
    """Picking chunks of a files-source project: its waveform files indexed (cached in
    ``work/index``), their traces matched to the events' P picks by time."""
    from .flow import picking_stage
    from .ingest import waveform_index as wi
    from .picking import waveforms as wf
    index = wi.index_waveforms(project.waveforms, rejects, cache=work / "index" / "waveforms.parquet")
    p_times = wi.station_p_times(project.picks, index, data["events"])
    if project.config.get("predict_p"):
        predicted = wi.predicted_picks(data["events"], data["stations"], project.velocity_model, p_times)
        log.info("predict_p: %d (event, station) P times from the %s", len(predicted),
                 "velocity model" if project.velocity_model is not None else f"{wi.DEFAULT_VP_KM_S} km/s straight rays")
        p_times = pd.concat([p_times, predicted], ignore_index=True)
    matched = wi.match_events(index, p_times, data["stations"], rejects, wf.PRE_P_S, wf.POST_P_S)
    log.info("waveforms of %d of %d events matched by time", len(matched), len(data["events"]))
    return picking_stage.plan_matched(project.waveforms, matched, index, data["stations"], tuple(opts.pickers),
                                      opts.weights, True, opts.chunk_events)


def _run_picking(client, work: Path, specs: list, opts: Options, stats: dict) -> list:
    from .flow import chunks, picking_stage, runner
    cache = chunks.ChunkCache(work, picking_stage.STAGE)
    t = time.perf_counter()
    results = runner.run_stage(client, "picking", specs, picking_stage.pick_chunk, picking_stage.failed_chunk,
                               cache, retry_failed=opts.retry_failed, progress=opts.progress, count_key="files")
    stats["picking_s"] = round(time.perf_counter() - t, 2)
    cache.prune({k for k, _ in specs})
    return results


def _rows(path: Path) -> int:
    import pyarrow.parquet as pq
    return pq.read_metadata(path).num_rows


def _chunk_counts(results) -> dict:
    return {"total": len(results), "failed": sum(r.status == "failed" for r in results),
            "reused": sum(r.reused for r in results)}


def read_info(data_dir: str | Path) -> dict | None:
    """The ``build_info.json`` of the current version, or None if there is no complete build."""
    path = store.resolve(data_dir) / store.INFO
    if not path.exists() or not tables.has_tables(data_dir):
        return None
    return json.loads(path.read_text())


def input_fingerprint(source: str, input_dir: str | Path | None) -> dict | None:
    """sha256 of the inputs a build reads that are not its input folder's identity, so that
    editing one makes :func:`ensure` rebuild: for ``toc2me`` the sensor-polarity file
    (:func:`pipeline.ingest.toc2me.sensors_file`: ``catalog/sensors_ToC2ME.csv`` of the
    input, else the shipped one), whose ``reversed`` flags flip the 5B polarities.
    ``None`` for sources without such a file."""
    if source != "toc2me" or input_dir is None:
        return None
    import hashlib

    from .ingest import toc2me
    path = toc2me.sensors_file(Path(input_dir))
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = None  # the build itself reports the missing file
    return {"sensors": {"file": str(path.resolve()), "sha256": digest}}


def up_to_date(info: dict | None, source: str, input_dir: str | Path | None = None) -> bool:
    """Whether build ``info`` is of ``source`` (and input folder), the current schema and
    the same :func:`input_fingerprint`."""
    wanted_input = str(Path(input_dir).resolve()) if input_dir else None
    return bool(info) and info.get("source") == source and info.get("schema_version") == schema.SCHEMA_VERSION \
        and (source == "demo" or info.get("input") == wanted_input) \
        and info.get("inputs") == input_fingerprint(source, input_dir)


def ensure(source: str = "demo", input_dir: str | Path | None = None, data_dir: str | Path = "data",
           seed: int = DEFAULT_SEED, options: Options | None = None) -> tuple[dict, bool]:
    """Build only when ``data_dir`` holds no complete build of this source (and input) that
    is :func:`up_to_date` (same schema, same sensor-polarity file).

    Returns (build info, whether a build ran).
    """
    info = read_info(data_dir)
    if up_to_date(info, source, input_dir):
        return info, False
    return build(source, input_dir, data_dir, seed, options), True


__all__ = ["Options", "SOURCES", "build", "ensure", "input_fingerprint", "load_source", "read_info",
           "up_to_date"]
