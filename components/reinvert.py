"""Re-invert one event with SKHASH on its reviewed polarities, in the background.

* :func:`reinvert_event` - synchronous: reads the event's rows of the data folder's Parquet
  tables (read-only), merges the review database's picks over the batch ``manual`` picks
  (:func:`pipeline.review.reviews.apply_reviews`), runs the batch inversion
  (:func:`pipeline.mechanisms.invert.invert`, ``picks='auto'``: reviewed/manual picks override the
  automatic ones station by station, a reviewed 0 drops the station) and stores the result
  in the review database's ``reinversions`` table (never in the Parquet tables).
* :class:`ReinvertRunner` / :func:`get_runner` - the background path the page uses: a job
  row is created in the review database (``jobs``), a worker thread of this process runs
  :func:`reinvert_event` and moves the job to ``done``/``error``; the page polls the job
  with a ``dcc.Interval``. One worker per process, so re-inversions queue instead of
  competing for memory; a second request for an event whose job is still queued or running
  gets that job back.

SKHASH itself runs in a subprocess (:mod:`pipeline.mechanisms.skhash`), so the server process
never imports SKHASH, TensorFlow or ObsPy, and the worker thread spends its time waiting on
that subprocess (the GIL is free for the request threads).

"Previous" mechanism: the one the event page shows by default - the batch ``computed``
mechanism if the event has one, else the ``published`` one. ``kagan_to_previous`` is the
Kagan angle to it (NaN when the event had none, or the re-inversion found no solution).
"""
from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.review.reviews import ReviewError, ReviewStore, apply_reviews, validate_reviewer

log = logging.getLogger(__name__)

__all__ = ["reinvert_event", "ReinvertRunner", "get_runner", "load_event_inputs", "preferred_mechanism",
           "MAX_ACCEPTABLE_STORED"]

MAX_ACCEPTABLE_STORED = 500


def _read(data_dir: Path, table: str, event_id: str | None = None) -> pd.DataFrame | None:
    from pipeline.tables import table_path

    path = table_path(data_dir, table)
    if not path.exists():
        return None
    filters = [("event_id", "==", event_id)] if event_id is not None else None
    return pd.read_parquet(path, filters=filters)


def preferred_mechanism(mechanisms: pd.DataFrame | None) -> pd.Series | None:
    """The mechanism an event page shows by default: ``computed`` if present, else
    ``published``, else the first row; None for no rows."""
    if mechanisms is None or mechanisms.empty:
        return None
    for src in ("computed", "published"):
        sel = mechanisms[mechanisms["source"] == src]
        if len(sel):
            return sel.iloc[0]
    return mechanisms.iloc[0]


def load_event_inputs(data_dir, event_id: str) -> dict:
    """The inputs of one event's inversion from the data folder: ``events`` (its catalogue
    row), ``polarities`` (its batch rows), ``stations``, ``velocity_model`` and
    ``mechanisms`` (its published/computed rows). Raises :class:`ReviewError` when the
    event or a needed table is missing."""
    data_dir = Path(data_dir)
    events = _read(data_dir, "events", event_id)
    if events is None:
        raise ReviewError("the data folder has no events table")
    if events.empty:
        raise ReviewError(f"unknown event {event_id!r}")
    vm = _read(data_dir, "velocity_model")
    if vm is None or vm.empty:
        raise ReviewError("the data folder has no velocity_model table (build it with `python -m pipeline build`)")
    stations = _read(data_dir, "stations")
    if stations is None:
        raise ReviewError("the data folder has no stations table")
    pol = _read(data_dir, "polarities", event_id)
    if pol is None:
        pol = pd.DataFrame(columns=["event_id", "network", "station", "method", "polarity", "snr"])
    mech = _read(data_dir, "mechanisms", event_id)
    return {"events": events, "polarities": pol, "stations": stations, "velocity_model": vm[["depth_km", "vp_km_s"]],
            "mechanisms": mech if mech is not None else pd.DataFrame()}


def _num(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def reinvert_event(data_dir, event_id: str, *, store: ReviewStore | None = None, reviewer: str | None = None,
                   use_fortran: bool | None = None) -> dict:
    """Run SKHASH for ``event_id`` on its batch polarities with the reviewed picks merged in,
    store the result in ``store`` (default: the data folder's review database) and return
    the stored row (:meth:`ReviewStore.reinversion`). An event SKHASH cannot solve is stored
    too, with ``reason`` set and null angles. Blocking (a few seconds): use
    :class:`ReinvertRunner` from a web request."""
    from pipeline.mechanisms import focal
    from pipeline.mechanisms.invert import invert

    data_dir = Path(data_dir)
    store = store or ReviewStore(data_dir)
    name = validate_reviewer(reviewer)
    t0 = time.perf_counter()
    inp = load_event_inputs(data_dir, event_id)
    reviewed = store.reviewed_polarities(event_id)
    pol = apply_reviews(inp["polarities"], reviewed)
    mechs = inp["mechanisms"]
    published = mechs[mechs["source"] == "published"] if len(mechs) else None
    previous = preferred_mechanism(mechs)
    row: dict = {"event_id": event_id, "reviewer": name, "n_reviewed": int(len(reviewed)),
                 "previous_source": None if previous is None else str(previous["source"])}
    if previous is not None:
        row.update(previous_strike=_num(previous["strike"]), previous_dip=_num(previous["dip"]),
                   previous_rake=_num(previous["rake"]))
    if pol.empty:
        row["reason"] = "no polarities for this event"
    else:
        res = invert(inp["events"], pol, inp["stations"], inp["velocity_model"], picks="auto",
                     published=published if published is not None and len(published) else None,
                     workers=1, use_fortran=use_fortran)
        mech = res["mechanisms"]
        mech = mech[mech["event_id"] == event_id]
        used = res["mechanism_stations"]
        used = used[used["event_id"] == event_id]
        if mech.empty:
            uns = res["unsolved"]
            uns = uns[uns["event_id"] == event_id]
            row["reason"] = str(uns["reason"].iloc[0]) if len(uns) else "not solved by SKHASH"
            row["picks"] = str(uns["picks"].iloc[0]) if len(uns) and pd.notna(uns["picks"].iloc[0]) else None
        else:
            m = mech.iloc[0]
            row.update({k: _num(m.get(k)) for k in ("strike", "dip", "rake", "strike2", "dip2", "rake2",
                                                    "fault_plane_uncertainty", "prob_mech",
                                                    "sta_distribution_ratio", "kagan_to_published")})
            row.update(quality=None if pd.isna(m.get("quality")) else str(m["quality"]),
                       misfit=_num(m.get("polarity_misfit")),
                       n_polarities=None if pd.isna(m.get("n_polarities")) else int(m["n_polarities"]),
                       picks=None if pd.isna(m.get("picks")) else str(m["picks"]),
                       engine=None if pd.isna(m.get("engine")) else str(m["engine"]))
            if previous is not None:
                row["kagan_to_previous"] = _num(focal.kagan_angle(
                    (row["strike"], row["dip"], row["rake"]),
                    (float(previous["strike"]), float(previous["dip"]), float(previous["rake"]))))
            acc = res["acceptable_planes"]
            acc = acc[acc["event_id"] == event_id][["strike", "dip", "rake"]].head(MAX_ACCEPTABLE_STORED)
            row["acceptable_json"] = [[round(float(a), 1) for a in r] for r in acc.itertuples(index=False)]
        row["stations_json"] = [
            {"network": str(r.network), "station": str(r.station), "takeoff_deg": _num(r.takeoff_deg),
             "azimuth_deg": _num(r.azimuth_deg), "distance_km": _num(r.distance_km), "polarity": int(r.polarity),
             "pol_agreement": bool(r.pol_agreement)} for r in used.itertuples(index=False)]
    row["seconds"] = round(time.perf_counter() - t0, 3)
    rid = store.add_reinversion(row)
    return store.reinversion(rid)


class ReinvertRunner:
    """Background re-inversions for one review database (see the module docstring)."""

    def __init__(self, data_dir, store: ReviewStore | None = None, max_workers: int = 1,
                 use_fortran: bool | None = None):
        self.data_dir = Path(data_dir)
        self.store = store or ReviewStore(self.data_dir)
        self.use_fortran = use_fortran
        self._pool = ThreadPoolExecutor(max_workers=max(1, int(max_workers)), thread_name_prefix="fm-reinvert")
        self._futures: dict = {}
        self._lock = threading.Lock()

    def submit(self, event_id: str, reviewer: str | None = None) -> tuple[str, bool]:
        """Queue a re-inversion of ``event_id``; returns ``(job_id, created)`` (``created``
        False: the event's queued/running job). Raises :class:`ReviewError` on a bad request."""
        job_id, created = self.store.create_job(event_id, reviewer)
        if created:
            with self._lock:
                self._futures[job_id] = self._pool.submit(self._run, job_id, event_id, validate_reviewer(reviewer))
        return job_id, created

    def _run(self, job_id: str, event_id: str, reviewer: str) -> None:
        try:
            self.store.update_job(job_id, "running")
            row = reinvert_event(self.data_dir, event_id, store=self.store, reviewer=reviewer,
                                 use_fortran=self.use_fortran)
            msg = row.get("reason") or "solved"
            self.store.update_job(job_id, "done", msg, reinversion_id=row["id"])
        except Exception as exc:  # noqa: BLE001 - reported to the page through the job row
            log.exception("re-inversion of %s failed", event_id)
            try:
                self.store.update_job(job_id, "error", f"{type(exc).__name__}: {exc}"[:500])
            except Exception:  # noqa: BLE001
                log.exception("could not record the failure of job %s", job_id)
        finally:
            with self._lock:
                self._futures.pop(job_id, None)

    def status(self, job_id: str) -> dict | None:
        """The job row (``status`` queued/running/done/error, ``message``,
        ``reinversion_id``), or None for an unknown id."""
        return self.store.job(job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> dict | None:
        """Block until the job is done or failed (or ``timeout``); its final row."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = self.store.job(job_id)
            if job is None or job["status"] in ("done", "error"):
                return job
            time.sleep(0.1)
        return self.store.job(job_id)

    def shutdown(self, wait: bool = True) -> None:
        self._pool.shutdown(wait=wait)


_runners: dict = {}
_runners_lock = threading.Lock()


def get_runner(data_dir) -> ReinvertRunner:
    """The process's runner for the review database of ``data_dir`` (created on first use;
    re-created after a fork)."""
    key = (str(Path(data_dir).resolve()), os.getpid())
    with _runners_lock:
        runner = _runners.get(key)
        if runner is None:
            runner = _runners[key] = ReinvertRunner(data_dir)
        return runner
