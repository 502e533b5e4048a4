"""The single-stage commands ``pick`` and ``invert`` on an existing data folder.

Both run the same chunked, resumable stages as ``build`` (:mod:`.picking_stage`,
:mod:`.invert_stage`) on a Dask client and publish a new version of the data folder that
keeps every other table (:func:`pipeline.tables.write_tables` with ``replace=False``).

* ``pick``: the picker rows of the re-picked events, their snippets and their earlier
  picking rejects are replaced part by part (each old part is read, filtered and rewritten
  only if it holds such rows), so memory stays bounded by one part and a re-run adds no
  duplicate rejects;
* ``invert``: every computed mechanism is recomputed from the current polarities with the
  dashboard's reviews applied; published rows are kept.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .. import store, tables
from . import chunks, cluster

log = logging.getLogger(__name__)


def _filtered_parts(files: list[Path], drop, out_dir: Path, prefix: str) -> list[Path]:
    """Each part of ``files`` unchanged, or - when ``drop(df)`` marks rows - rewritten
    without them into ``out_dir``."""
    out = []
    for i, f in enumerate(files):
        df = pd.read_parquet(f)
        mask = drop(df)
        if not mask.any():
            out.append(f)
            continue
        kept = df[~mask.to_numpy()]
        path = out_dir / f"{prefix}-{i:05d}.parquet"
        tables.write_parquet(pa.Table.from_pandas(kept, schema=pq.read_schema(f), preserve_index=False), path)
        out.append(path)
    return out


def pick(data_dir: str | Path, waveforms: str | Path, pickers: tuple[str, ...], weights: str | None = None, *,
         workers: int | None = None, scheduler: str | None = None, chunk_events: int = chunks.DEFAULT_CHUNK_EVENTS,
         fresh: bool = False, retry_failed: bool = False, progress: bool = True) -> dict:
    """Pick every event folder under ``waveforms`` into ``data_dir``; returns counts."""
    from ..rejects import Rejects
    from . import picking_stage, runner

    data_dir, root = Path(data_dir), Path(waveforms).resolve()
    events = tables.read_table(data_dir, "events")
    stations = tables.read_table(data_dir, "stations")
    rejects = Rejects()
    work = data_dir / chunks.WORK
    if fresh:
        import shutil
        shutil.rmtree(work / picking_stage.STAGE, ignore_errors=True)
    specs = picking_stage.plan(root, events, stations, tuple(pickers), weights, True, chunk_events, rejects)
    cache = chunks.ChunkCache(work, picking_stage.STAGE)
    with cluster.open_client(workers, scheduler) as client:
        results = runner.run_stage(client, "picking", specs, picking_stage.pick_chunk, picking_stage.failed_chunk,
                                   cache, retry_failed=retry_failed, progress=progress, count_key="files")
    ids = {e for _, s in specs for e, _ in s["events"]}
    rels = tuple(str(Path(p).relative_to(root)) + "/" for _, s in specs for _, p in s["events"])
    scratch = work / "driver" / f"pick-{store.new_version_id()}"
    scratch.mkdir(parents=True, exist_ok=True)
    base = store.resolve(data_dir)
    parts: dict[str, list[Path]] = {}

    def old(name):
        return store.part_files(store.table_location(base, name))

    parts["polarities"] = _filtered_parts(
        old("polarities"), lambda d: d["event_id"].isin(ids) & d["method"].isin(list(pickers)), scratch, "pol") + \
        [r.part("polarities") for r in results if r.part("polarities")]
    parts["waveforms"] = _filtered_parts(old("waveforms"), lambda d: d["event_id"].isin(ids), scratch, "wf") + \
        [r.part("waveforms") for r in results if r.part("waveforms")]
    parts["rejects"] = _filtered_parts(
        old("rejects"), lambda d: d["stage"].isin(["picking", "waveforms"]) & d["file"].astype(str).str.startswith(rels),
        scratch, "rej") + [r.part("rejects") for r in results if r.part("rejects")]
    if len(rejects):
        from .picking_stage import to_part
        p = scratch / "rejects-driver.parquet"
        tables.write_parquet(to_part("rejects", rejects.to_frame()), p)
        parts["rejects"].append(p)
    tables.write_tables(data_dir, {}, parts={k: v for k, v in parts.items() if v}, replace=False)
    cache.prune({k for k, _ in specs})
    n_pol = sum(pq.read_metadata(r.part("polarities")).num_rows for r in results if r.part("polarities"))
    return {"events": len(ids), "polarities": n_pol, "chunks": len(results),
            "failed": sum(r.status == "failed" for r in results), "rejects": sum(
                r.summary.get("parts", {}).get("rejects", {}).get("rows", 0) for r in results) + len(rejects)}


def invert(data_dir: str | Path, *, picks: str = "auto", snr_min: float = 2.0, use_fortran=None,
           event_timeout: float = 120.0, workers: int | None = None, scheduler: str | None = None,
           chunk_events: int = chunks.DEFAULT_CHUNK_EVENTS, retry_failed: bool = False, progress: bool = True) -> dict:
    """Recompute every computed mechanism of ``data_dir``; returns counts."""
    from ..review.reviews import manual_polarities
    from . import invert_stage

    data_dir = Path(data_dir)
    base = store.resolve(data_dir)   # one version for every input
    read = lambda n: tables.read_table(base, n)  # noqa: E731
    events, stations, mech, vmodel = read("events"), read("stations"), read("mechanisms"), read("velocity_model")
    published = mech[mech["source"] != "computed"]
    picked = []
    for f in store.part_files(store.table_location(base, "polarities")):
        ids = sorted(set(pq.read_table(f, columns=["event_id"]).column("event_id").to_pylist()))
        st = f.stat()  # a part keeps its inode through the versions that hard-link it
        picked.append((ids, str(f), chunks.digest(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)))
    reviews = manual_polarities(data_dir)
    with cluster.open_client(workers, scheduler) as client:
        results = invert_stage.run(client, data_dir / chunks.WORK, events, stations, vmodel[["depth_km", "vp_km_s"]],
                                   published, picked, None, reviews, picks=picks, snr_min=snr_min,
                                   use_fortran=use_fortran, event_timeout=event_timeout, chunk_events=chunk_events,
                                   retry_failed=retry_failed, progress=progress)
    truth = store.table_location(base, "truth_mechanisms")
    computed = invert_stage.computed_mechanisms(results, read("truth_mechanisms") if truth.exists() else None)
    out = {"mechanisms": pd.concat([published, computed], ignore_index=True)}
    parts = {k: v for k, v in invert_stage.part_lists(results).items() if v}
    tables.write_tables(data_dir, out, parts=parts, replace=False)
    n_uns = sum(r.summary.get("parts", {}).get("unsolved", {}).get("rows", 0) for r in results)
    return {"computed": len(computed), "unsolved": n_uns, "chunks": len(results)}
