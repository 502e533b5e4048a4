"""The mechanism stage: polarities -> computed mechanisms with SKHASH, one chunk per task.

A chunk's polarities are read from the picking parts that hold its events plus the
"human" part (published, manual and reference picks with the dashboard's reviews applied),
so no process ever holds every polarity. The inversion itself is
:func:`pipeline.mechanisms.invert.invert` - the same input assembly the ``invert`` command and the
dashboard's re-inversion use - with a per-event time limit: an event SKHASH cannot finish
in time, or that crashes it, is an ``unsolved`` row (``timeout: ...``,
``engine error: ...``) and the chunk goes on.

Parts per chunk: ``mechanisms`` (computed rows, enriched), ``mechanism_stations``,
``acceptable_planes``, ``unsolved``.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from . import chunks

STAGE = "invert"
CODE = ("mechanisms/invert.py", "mechanisms/skhash.py", "mechanisms/enrich.py", "mechanisms/focal.py",
        "mechanisms/groups.py", "ingest/regions.py", "flow/invert_stage.py", "flow/chunks.py", "schema.py")
EVENT_TIMEOUT_S = 120.0          #: default per-event SKHASH limit
TABLES = ("mechanisms", "mechanism_stations", "acceptable_planes", "unsolved")


def _read_polarities(files: list[str], event_ids: list[str]) -> pd.DataFrame:
    frames = [pq.read_table(f, filters=[("event_id", "in", event_ids)]).to_pandas() for f in files]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def invert_chunk(spec: dict) -> dict:
    """Invert one chunk of events (on a worker) and write its parts; returns its summary.

    ``spec``: ``key``, ``folder``, ``event_ids``, ``events`` (their catalogue rows),
    ``published`` (their published mechanisms, for locations and Kagan angles), ``human``
    (their published/manual/reference polarity rows, reviews applied), ``polarity_files``
    (picking parts holding their picker rows), ``reviews`` (the dashboard's reviewed picks of
    these events, applied over the batch ``manual`` rows), ``stations``, ``velocity_model``, ``picks``,
    ``snr_min``, ``use_fortran``, ``event_timeout`` (s).
    """
    from ..mechanisms import invert
    from ..tables import write_parquet
    from .picking_stage import to_part

    t0 = time.perf_counter()
    folder = Path(spec["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    ids = list(spec["event_ids"])
    pol = _read_polarities(spec["polarity_files"], ids)
    human = spec["human"]
    pol = pd.concat([f for f in (pol, human) if len(f)], ignore_index=True) if len(pol) or len(human) else pol
    reviews = spec.get("reviews")
    if reviews is not None and len(reviews):
        from ..review.reviews import apply_reviews
        pol = apply_reviews(pol, reviews)
    published = spec["published"]
    out = invert.invert(spec["events"], pol, spec["stations"], spec["velocity_model"], picks=spec["picks"],
                        snr_min=spec["snr_min"], published=published if len(published) else None, workers=1,
                        use_fortran=spec["use_fortran"], timeout=spec["event_timeout"])
    parts = {}
    for name in TABLES:
        df = out[name]
        if name == "mechanisms" and len(df):
            df = df.sort_values("event_id", kind="stable")
        write_parquet(to_part(name, df.reset_index(drop=True)), folder / f"{name}.parquet")
        parts[name] = len(df)
    engine = out["mechanisms"]["engine"].iloc[0] if len(out["mechanisms"]) else None
    return chunks.write_marker(folder, spec["key"], "done", parts, events=len(ids), solved=parts["mechanisms"],
                               engine=engine, seconds=round(time.perf_counter() - t0, 3), worker_pid=os.getpid())


def failed_chunk(spec: dict, error: BaseException) -> dict:
    """A chunk whose task failed: every event ``unsolved`` with the error (marked failed,
    not retried on resume unless asked)."""
    from ..tables import write_parquet
    from .picking_stage import to_part
    folder = Path(spec["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    msg = f"engine error: chunk failed: {type(error).__name__}: {error}"[:500]
    uns = pd.DataFrame({"event_id": list(spec["event_ids"]), "reason": msg, "picks": None})
    write_parquet(to_part("unsolved", uns), folder / "unsolved.parquet")
    return chunks.write_marker(folder, spec["key"], "failed", {"unsolved": len(uns)}, events=len(uns), solved=0,
                               error=msg)


def _frame_digest(df: pd.DataFrame) -> str:
    return chunks.digest(pd.util.hash_pandas_object(df.reset_index(drop=True), index=False).tolist()) \
        if len(df) else "empty"


def plan(events: pd.DataFrame, human: pd.DataFrame | None, picked: list[tuple[list[str], str, str]],
         published: pd.DataFrame | None, stations: pd.DataFrame, velocity_model: pd.DataFrame, *,
         picks: str, snr_min: float, use_fortran, event_timeout: float, chunk_events: int,
         reviews: pd.DataFrame | None = None, settings_digest: str = "") -> list[tuple[str, dict]]:
    """Chunk specs ``[(key, spec)]`` over every event with polarities.

    ``picked``: per picking part ``(event ids, part file, part digest)``; ``human``: the
    published/manual/reference polarity rows (reviews applied). A chunk's key covers its
    picking parts' digests, its human rows, locations, the stations, the velocity model,
    the pick choice and the engine, and the code.
    """
    part_of: dict[str, list[tuple[str, str]]] = {}   # an event may have rows in several parts
    for ids, path, key in picked:
        for e in ids:
            part_of.setdefault(e, []).append((path, key))
    human = human if human is not None else pd.DataFrame(columns=["event_id"])
    with_pol = set(part_of) | set(human["event_id"].astype(str))
    ev = events[events["event_id"].isin(with_pol)]
    known = set(ev["event_id"])
    pub = published if published is not None else pd.DataFrame(columns=["event_id"])
    base = {"stage": STAGE, "code": chunks.code_digest(CODE), "picks": picks, "snr_min": snr_min,
            "engine": str(use_fortran), "timeout": event_timeout, "settings": settings_digest,
            "stations": _frame_digest(stations), "vmodel": _frame_digest(velocity_model)}
    human_by = dict(tuple(human.groupby(human["event_id"].astype(str)))) if len(human) else {}
    reviews = reviews if reviews is not None else pd.DataFrame(columns=["event_id"])
    reviews_by = dict(tuple(reviews.groupby(reviews["event_id"].astype(str)))) if len(reviews) else {}
    ev_by = ev.set_index("event_id", drop=False)
    pub_ids = pub["event_id"].astype(str) if len(pub) else pd.Series([], dtype=str)
    specs = []
    for ids in chunks.plan_chunks(known, chunk_events):
        h = pd.concat([human_by[e] for e in ids if e in human_by], ignore_index=True) if human_by else human.iloc[:0]
        r = (pd.concat([reviews_by[e] for e in ids if e in reviews_by], ignore_index=True)
             if any(e in reviews_by for e in ids) else reviews.iloc[:0])
        e_rows = ev_by.loc[ids].reset_index(drop=True)
        p_rows = pub[pub_ids.isin(ids).to_numpy()] if len(pub) else pub
        files = sorted({path for e in ids for path, _ in part_of.get(e, ())})
        key = chunks.digest(base, sorted({k for e in ids for _, k in part_of.get(e, ())}), _frame_digest(h),
                            _frame_digest(r), _frame_digest(e_rows), _frame_digest(p_rows))
        specs.append((key, {"key": key, "event_ids": ids, "events": e_rows, "published": p_rows, "human": h,
                            "reviews": r, "stations": stations, "velocity_model": velocity_model,
                            "polarity_files": files, "picks": picks, "snr_min": snr_min,
                            "use_fortran": use_fortran, "event_timeout": event_timeout}))
    return specs


def run(client, work, events: pd.DataFrame, stations: pd.DataFrame, velocity_model: pd.DataFrame,
        published: pd.DataFrame | None, picked: list, human: pd.DataFrame | None = None,
        reviews: pd.DataFrame | None = None, *, picks: str = "auto", snr_min: float = 2.0,
        use_fortran=None, event_timeout: float = EVENT_TIMEOUT_S, chunk_events: int = chunks.DEFAULT_CHUNK_EVENTS,
        retry_failed: bool = False, progress: bool = True) -> list:
    """Plan and run the mechanism stage (cached chunks reused); the chunk results in order."""
    from .runner import run_stage
    specs = plan(events, human, picked, published, stations, velocity_model, picks=picks, snr_min=snr_min,
                 use_fortran=use_fortran, event_timeout=event_timeout, chunk_events=chunk_events, reviews=reviews)
    cache = chunks.ChunkCache(work, STAGE)
    results = run_stage(client, "mechanisms", specs, invert_chunk, failed_chunk, cache, retry_failed=retry_failed,
                        progress=progress, count_key="solved")
    cache.prune({k for k, _ in specs})
    return results


def computed_mechanisms(results, truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """The computed mechanisms of every chunk (one row per solved event: small), with
    ``truth_kagan`` to ``truth`` (the demo's true mechanisms) when given."""
    frames = [pd.read_parquet(r.part("mechanisms")) for r in results if r.part("mechanisms")]
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame(columns=["event_id", "source"])
    computed = pd.concat(frames, ignore_index=True)
    if truth is not None and len(truth):
        from ..mechanisms import focal
        t = truth.set_index("event_id").loc[computed["event_id"]]
        computed["truth_kagan"] = focal.kagan_angle(
            tuple(computed[c].to_numpy() for c in ("strike", "dip", "rake")),
            tuple(t[c].to_numpy() for c in ("strike", "dip", "rake")))
    return computed


def part_lists(results) -> dict[str, list[Path]]:
    """Part files per table (``mechanism_stations``, ``acceptable_planes``, ``unsolved``)."""
    return {name: [r.part(name) for r in results if r.part(name)]
            for name in ("mechanism_stations", "acceptable_planes", "unsolved")}
