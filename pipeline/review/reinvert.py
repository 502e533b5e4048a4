"""Re-invert one event with SKHASH on its reviewed polarities.

* :func:`reinvert_event` - synchronous: reads the event's rows of the data folder's Parquet
  tables (read-only), merges the review database's picks over the batch ``manual`` picks
  (:func:`pipeline.review.reviews.apply_reviews`), runs the batch inversion
  (:func:`pipeline.mechanisms.invert.invert`, ``picks='auto'``: reviewed/manual picks override the
  automatic ones station by station, a reviewed 0 drops the station) and stores the result
  in the review database's ``reinversions`` table (never in the Parquet tables). With
  ``timeout`` the SKHASH subprocess is killed at the limit and :class:`JobTimeout` raised
  (nothing stored).
* :func:`effective_polarities` / :func:`polarity_digest` - the polarities a re-inversion
  would invert now, and a digest of them: the job queue's de-duplication key, so the same
  request while a job on the same picks waits gets that job, and a new review makes a new job.

The dashboard runs it in the background through the job queue :mod:`pipeline.review.jobs`
(kind ``reinvert``). SKHASH itself runs in a subprocess (:mod:`pipeline.mechanisms.skhash`),
so the server process never imports SKHASH, TensorFlow or ObsPy, and the worker thread
spends its time waiting on that subprocess (the GIL is free for the request threads).

"Previous" mechanism: the one the event page shows by default - the batch ``computed``
mechanism if the event has one, else the ``published`` one. ``kagan_to_previous`` is the
Kagan angle to it (NaN when the event had none, or the re-inversion found no solution).
"""
from __future__ import annotations

import hashlib
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.review.reviews import ReviewError, ReviewStore, apply_reviews, validate_reviewer

log = logging.getLogger(__name__)

__all__ = ["reinvert_event", "load_event_inputs", "preferred_mechanism", "effective_polarities", "polarity_digest",
           "JobTimeout", "MAX_ACCEPTABLE_STORED"]

MAX_ACCEPTABLE_STORED = 500


class JobTimeout(RuntimeError):
    """The work ran over its time limit; its subprocess was killed and nothing was stored."""


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


def effective_polarities(batch: pd.DataFrame, reviewed: pd.DataFrame) -> pd.DataFrame:
    """The polarities a re-inversion inverts: ``batch`` (an event's rows of the
    ``polarities`` table) with ``reviewed`` merged over its manual picks
    (:func:`~pipeline.review.reviews.apply_reviews`), one per station as
    :func:`pipeline.mechanisms.invert.select_polarities` (``picks='auto'``) chooses them."""
    from pipeline.mechanisms.invert import select_polarities

    pol = apply_reviews(batch, reviewed)
    return select_polarities(pol, "auto") if len(pol) else pol


def polarity_digest(data_dir, event_id: str, store: ReviewStore) -> str:
    """``<event_id>:<sha256 prefix>`` of the event's :func:`effective_polarities` (network,
    station, true-motion polarity; sorted - what SKHASH is given): equal exactly when a
    re-inversion now would invert the same picks, whichever method they came from (a review
    that confirms the automatic pick changes nothing). The job queue's de-duplication key."""
    pol = _read(Path(data_dir), "polarities", event_id)
    if pol is None:
        pol = pd.DataFrame(columns=["event_id", "network", "station", "method", "polarity", "snr"])
    chosen = effective_polarities(pol, store.reviewed_polarities(event_id))
    h = hashlib.sha256()
    for net, sta, p in sorted(zip(chosen["network"].astype(str), chosen["station"].astype(str),
                                  chosen["polarity"].astype(int))):
        h.update(f"{net}.{sta}|{p}\n".encode())
    return f"{event_id}:{h.hexdigest()[:32]}"


def reinvert_event(data_dir, event_id: str, *, store: ReviewStore | None = None, reviewer: str | None = None,
                   use_fortran: bool | None = None, timeout: float | None = None) -> dict:
    """Run SKHASH for ``event_id`` on its batch polarities with the reviewed picks merged in,
    store the result in ``store`` (default: the data folder's review database) and return
    the stored row (:meth:`ReviewStore.reinversion`). An event SKHASH cannot solve is stored
    too, with ``reason`` set and null angles. Blocking (a few seconds): the dashboard runs it
    through the job queue (:mod:`pipeline.review.jobs`).

    ``timeout``: limit for the whole call, s; what is left of it when SKHASH starts is
    SKHASH's limit, and its subprocess (process group) is killed there. Past the limit
    :class:`JobTimeout` ("timed out after N s") is raised and nothing is stored."""
    from pipeline.mechanisms import focal
    from pipeline.mechanisms.invert import invert
    from pipeline.mechanisms.skhash import is_timeout_reason

    data_dir = Path(data_dir)
    store = store or ReviewStore(data_dir)
    name = validate_reviewer(reviewer)
    t0 = time.perf_counter()
    timed_out = JobTimeout(f"timed out after {timeout:g} s") if timeout is not None else None
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
        left = None if timeout is None else timeout - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            raise timed_out
        res = invert(inp["events"], pol, inp["stations"], inp["velocity_model"], picks="auto",
                     published=published if published is not None and len(published) else None,
                     workers=1, use_fortran=use_fortran, timeout=left)
        mech = res["mechanisms"]
        mech = mech[mech["event_id"] == event_id]
        used = res["mechanism_stations"]
        used = used[used["event_id"] == event_id]
        if mech.empty:
            uns = res["unsolved"]
            uns = uns[uns["event_id"] == event_id]
            if timed_out is not None and len(uns) and is_timeout_reason(uns["reason"].iloc[0]):
                raise timed_out  # SKHASH was killed at the limit: a failure, not a result
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
