"""The picking stage: event folders -> ``polarities``, ``waveforms`` and ``rejects`` parts.

One task = one chunk of events (:func:`pipeline.flow.chunks.plan_chunks`): read every file
of each event folder, cut the P windows of the verticals, run the pickers, compute SNR and
the dashboard snippets, and write the chunk's three part files. The worker process loads
each picker once (:func:`_picker`) and reuses it for every chunk it runs.

Event folders are found at any depth under the waveform root (:func:`find_event_folders`:
a folder holding waveform files is an event folder; nothing below it is searched). Folder
names are event ids, matched to the catalogue by nearest origin time within 0.5 s; a folder
matching no event, or a second folder of the same event, is a ``rejects`` row.
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from . import chunks

log = logging.getLogger(__name__)

STAGE = "pick"
#: source files whose change invalidates cached picking chunks
CODE = ("picking/waveforms.py", "picking/__init__.py", "picking/pickers", "io", "rejects.py", "flow/picking_stage.py",
        "flow/chunks.py", "schema.py")
EVENT_TIME_LIMIT_S = 300.0      #: one event folder (all its files) must be read and picked within this
WAVEFORM_ROW_GROUP = 1024       #: rows per row group of the waveforms parts (one event ~ 200 rows)


# --------------------------------------------------------------------------- part schemas

def polarities_schema() -> pa.Schema:
    """Arrow schema of a polarities part: the contract columns, then the pickers' extras
    (fixed types, so every part of the table has the same schema)."""
    from .. import schema
    extras = [("location", pa.string()), ("polarity_recorded", pa.int8()), ("probability", pa.float64()),
              ("model_version", pa.string()), ("lower", pa.float64()), ("upper", pa.float64()),
              ("reversed", pa.bool_())]
    fields = [pa.field(c.name, c.type, nullable=c.nullable) for c in schema.POLARITIES.columns]
    return pa.schema(fields + [pa.field(n, t) for n, t in extras])


def to_part(table: str, df: pd.DataFrame, part_schema: pa.Schema | None = None) -> pa.Table:
    """``df`` validated against the contract (:func:`pipeline.tables.to_arrow`) and cast to
    the fixed part schema: columns missing from ``df`` are null, others dropped."""
    from ..tables import to_arrow
    if part_schema is None:
        return to_arrow(table, df)
    df = df.copy()
    for f in part_schema:
        if f.name not in df.columns:
            df[f.name] = None
    tbl = to_arrow(table, df[[f.name for f in part_schema]])
    return tbl.select([f.name for f in part_schema]).cast(part_schema)


def waveforms_schema() -> pa.Schema:
    from ..picking.waveforms import waveforms_arrow_schema
    return waveforms_arrow_schema()


# --------------------------------------------------------------------------- finding folders

def find_event_folders(root: str | Path) -> list[Path]:
    """Event folders at any depth under ``root``, sorted by path: folders that hold
    waveform files (SAC/MiniSEED); their sub-folders are not searched."""
    from ..picking.waveforms import WAVEFORM_SUFFIXES
    root = Path(root)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        if any(os.path.splitext(f)[1].lower() in WAVEFORM_SUFFIXES for f in filenames):
            found.append(Path(dirpath))
            dirnames[:] = []
        else:
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
    return sorted(found)


def folder_fingerprint(folder: Path, root: Path) -> tuple[str, int]:
    """(digest of the folder's file names, sizes and mtimes, number of waveform files)."""
    from ..picking.waveforms import WAVEFORM_SUFFIXES
    listing = chunks.folder_listing(folder, root, WAVEFORM_SUFFIXES)
    h = hashlib.sha256(repr(listing).encode()).hexdigest()
    return h, sum(1 for name, _, _ in listing if not name.endswith("picks.csv"))


def _model_digest(name: str, weights: str | None) -> str:
    """What identifies picker ``name``'s model, without loading it (no TensorFlow in the driver)."""
    if name == "onset":
        return "onset"
    models = chunks.PIPELINE_ROOT / "models"
    path = Path(weights) if weights else models / "cnn_polarity.weights.h5"
    if name == "cct" and not weights:
        return "cct:no-weights"
    return f"{name}:{chunks.file_digest(path) if path.is_file() else 'missing:' + str(path)}"


# --------------------------------------------------------------------------- the worker side

def _relative(path: Path, root: Path) -> str:
    """``path`` as the rejects table names input files: relative to the waveform root."""
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def _event_label(src, root: Path) -> str:
    """How rejects name an event's input: its folder, or its files matched by time."""
    if isinstance(src, dict):
        paths = sorted({it[0] for it in src["items"]})
        return paths[0] if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
    return _relative(Path(src), root)


def _picks_dict(picks) -> dict:
    """``[(network, station, p_ns, p_source)]`` -> the picks mapping :mod:`pipeline.picking.waveforms` reads."""
    from obspy import UTCDateTime
    return {(n, s, ""): (UTCDateTime(ns=int(t)), src) for n, s, t, src in picks}


_PICKERS: dict = {}


def _picker(name: str, weights: str | None):
    """The worker process's picker ``name`` (loaded on first use, then kept)."""
    key = (name, weights)
    if key not in _PICKERS:
        from ..picking import load_picker
        _PICKERS[key] = load_picker(name, weights if name != "onset" else None)
    return _PICKERS[key]


def warm_up(pickers: tuple[str, ...], weights: str | None) -> int:
    """Load ``pickers`` into this worker process (TensorFlow and the weights: ~10 s) before
    its first chunk; returns the process id."""
    for name in pickers:
        _picker(name, weights)
    return os.getpid()


def start_warm_up(client, pickers: tuple[str, ...], weights: str | None) -> list:
    """Submit :func:`warm_up` once to every worker now, so that the models load while the
    driver is still planning the chunks (single-threaded: a core is idle). Keep the futures
    until the stage has run; a failure here is left to the chunks to report."""
    workers = list(client.scheduler_info().get("workers", {}))
    return [client.submit(warm_up, tuple(pickers), weights, workers=[w], allow_other_workers=False,
                          pure=False, key=f"warm-up-{i}") for i, w in enumerate(workers)]


def pick_chunk(spec: dict) -> dict:
    """Run one picking chunk (on a worker) and write its parts; returns its summary.

    ``spec``: ``key``, ``folder`` (the chunk's cache folder), ``root`` (waveform root, for
    relative reject paths), ``events`` [(event_id, folder path)], ``pickers``, ``weights``,
    ``stations`` (DataFrame), ``snippets`` (bool), ``event_time_limit`` (s).
    """
    from .. import picking
    from ..picking import waveforms as wf
    from ..rejects import Rejects
    from ..tables import write_parquet
    from .deadline import TimeLimitExceeded, time_limit

    t0 = time.perf_counter()
    folder = Path(spec["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    root = Path(spec["root"])
    stations = spec["stations"]
    pickers = {n: _picker(n, spec.get("weights")) for n in spec["pickers"]}
    rejects = Rejects()
    metas, wins, snips, n_files, n_traces = [], [], [], 0, 0
    for event_id, src in spec["events"]:
        rel = _event_label(src, root)
        try:
            with time_limit(spec.get("event_time_limit", EVENT_TIME_LIMIT_S)):
                if isinstance(src, dict):  # traces cut from files of any layout, matched by time
                    ev = wf.read_event_items(event_id, src["items"], _picks_dict(src["picks"]), root, rejects)
                else:
                    ev = wf.read_event(Path(src), rejects=rejects, root=root, event_id=event_id)
                n_traces += len(ev.traces)
                meta, windows = wf.vertical_windows(ev, rejects)
                if len(meta):
                    metas.append(meta)
                    wins.append(windows)
                if spec.get("snippets", True):
                    snips.append(wf.snippets(ev, rejects=rejects))
                del ev
        except TimeLimitExceeded:
            rejects.add(rel, None, f"event not picked: ran over the {spec.get('event_time_limit')} s limit",
                        stage=picking.STAGE)
        except Exception as exc:  # noqa: BLE001 - one bad event never stops the chunk
            rejects.add(rel, None, f"event not picked: {type(exc).__name__}: {exc}", stage=picking.STAGE)
        n_files += spec.get("n_files", {}).get(event_id, 0)
    # one picker call per chunk, not per event: a model call has a fixed cost of tens of ms
    pol = [picking.pick_windows(pd.concat(metas, ignore_index=True), np.concatenate(wins), stations, pickers,
                                rejects)] \
        if metas else []

    parts = {}
    pol_df = pd.concat(pol, ignore_index=True) if pol else pd.DataFrame(columns=[f.name for f in polarities_schema()])
    pol_df = pol_df.sort_values(["event_id", "network", "station", "method"], kind="stable")
    write_parquet(to_part("polarities", pol_df, polarities_schema()), folder / "polarities.parquet")
    parts["polarities"] = len(pol_df)
    if spec.get("snippets", True):
        sn = pd.concat(snips, ignore_index=True) if snips else pd.DataFrame(columns=[f.name for f in waveforms_schema()])
        sn = sn.sort_values(["event_id", "network", "station", "channel"], kind="stable")
        # small row groups sorted by event: the event page reads one event's rows only
        write_parquet(to_part("waveforms", sn, waveforms_schema()), folder / "waveforms.parquet",
                      row_group_size=WAVEFORM_ROW_GROUP)
        parts["waveforms"] = len(sn)
    rej = rejects.to_frame()
    write_parquet(to_part("rejects", rej), folder / "rejects.parquet")
    parts["rejects"] = len(rej)
    return chunks.write_marker(folder, spec["key"], "done", parts, events=len(spec["events"]),
                               files=n_files, traces=n_traces, seconds=round(time.perf_counter() - t0, 3),
                               worker_pid=os.getpid())


def failed_chunk(spec: dict, error: BaseException) -> dict:
    """Record a chunk whose task failed (worker died, unexpected error): one rejects row
    per event folder with the error, marked ``failed`` so a resume does not retry it for
    ever (``--retry-failed`` does)."""
    from ..rejects import Rejects
    from ..tables import write_parquet
    folder = Path(spec["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    root = Path(spec["root"])
    rejects = Rejects()
    msg = f"chunk failed: {type(error).__name__}: {error}"[:500]
    for _, src in spec["events"]:
        rejects.add(_event_label(src, root), None, msg, stage="picking")
    rej = rejects.to_frame()
    write_parquet(to_part("rejects", rej), folder / "rejects.parquet")
    return chunks.write_marker(folder, spec["key"], "failed", {"rejects": len(rej)}, events=len(spec["events"]),
                               files=0, traces=0, error=msg)


# --------------------------------------------------------------------------- the driver side

def _base_key(stations, pickers, weights, snippets) -> dict:
    return {"stage": STAGE, "code": chunks.code_digest(CODE), "snippets": bool(snippets),
            "models": {n: _model_digest(n, weights) for n in pickers},
            # the reversal flags decide the true polarity: a changed station table redoes the picks
            "stations": stations[["network", "station", "reversed"]].astype(str).values.tolist()}


def plan_matched(root: Path, matched: dict, index, stations: pd.DataFrame, pickers: tuple[str, ...],
                 weights: str | None, snippets: bool, chunk_events: int) -> list[tuple[str, dict]]:
    """Chunk specs for events whose traces were matched by time in files of any layout
    (:func:`pipeline.ingest.waveform_index.match_events`); a chunk's key covers its files'
    sizes and mtimes, the cut windows and the P picks."""
    stamp = {p: (int(s), int(m)) for p, s, m in index[["path", "size", "mtime_ns"]].drop_duplicates("path")
             .itertuples(index=False, name=None)}
    base = _base_key(stations, pickers, weights, snippets)
    specs = []
    for ids_chunk in chunks.plan_chunks(matched, chunk_events):
        content = [(e, [(*it, *stamp.get(it[0], (0, 0))) for it in matched[e]["items"]], matched[e]["picks"])
                   for e in ids_chunk]
        key = chunks.digest(base, content)
        specs.append((key, {"key": key, "root": str(root), "events": [(e, matched[e]) for e in ids_chunk],
                            "n_files": {e: len({it[0] for it in matched[e]["items"]}) for e in ids_chunk},
                            "pickers": list(pickers), "stations": stations, "weights": weights,
                            "snippets": bool(snippets), "event_time_limit": EVENT_TIME_LIMIT_S}))
    return specs


def plan(root: Path, events: pd.DataFrame, stations: pd.DataFrame, pickers: tuple[str, ...],
         weights: str | None, snippets: bool, chunk_events: int, rejects) -> list[tuple[str, dict]]:
    """Chunk specs ``[(key, spec)]`` for every event folder under ``root`` (sorted by event
    id). Folders that match no catalogue event, or repeat one, are added to ``rejects``."""
    from ..picking import match_event_ids
    folders = find_event_folders(root)
    ids = match_event_ids([f.name for f in folders], events)
    by_event: dict[str, Path] = {}
    for folder, eid in zip(folders, ids):
        rel = str(folder.relative_to(root))
        if pd.isna(eid):
            rejects.add(rel, None, "folder id matches no catalogue event within 0.5 s", stage="picking")
        elif eid in by_event:
            rejects.add(rel, None, f"second folder of event {eid} (kept {by_event[eid].relative_to(root)})",
                        stage="picking")
        else:
            by_event[eid] = folder
    base = _base_key(stations, pickers, weights, snippets)
    specs = []
    for ids_chunk in chunks.plan_chunks(by_event, chunk_events):
        fps = {e: folder_fingerprint(by_event[e], root) for e in ids_chunk}
        key = chunks.digest(base, [(e, str(by_event[e].relative_to(root)), fps[e][0]) for e in ids_chunk])
        specs.append((key, {"key": key, "root": str(root), "events": [(e, str(by_event[e])) for e in ids_chunk],
                            "n_files": {e: fps[e][1] for e in ids_chunk}, "pickers": list(pickers),
                            "stations": stations,
                            "weights": weights, "snippets": bool(snippets),
                            "event_time_limit": EVENT_TIME_LIMIT_S}))
    return specs
