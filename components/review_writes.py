"""Every write the dashboard makes, checked on the server.

The event page sends pick requests ``{id, action, station: "NET.STA", view}`` and the audit
page undo requests; everything that decides what is written is taken from the server's own
state, never from the browser's stores:

* **right** - :func:`components.access.require` (role of the logged-in account; nothing in
  read-only mode); the reviewer recorded is the account's name (the typed name only in
  local single-user mode);
* **event** - in the ``events`` table (the review database's validator);
* **station** - one the tables tie to that event (:func:`queries.event.event_station_keys`:
  a polarity, a waveform or a SKHASH station of it) and in the ``stations`` table;
* **sign** - the stored polarity is the TRUE ground motion: ``true = shown × (−1 if the
  station is reversed and the page showed the traces as recorded)``, with "reversed" read
  from the ``stations`` table at the time of the write. The browser only says which view
  it showed (``view``: ``true`` or ``recorded``, nothing else accepted) and which way the
  first motion looked there.

A refused request raises :class:`~pipeline.review.reviews.ReviewError` or
:class:`~components.access.AccessDenied` and changes nothing.
"""
from __future__ import annotations

from components.access import require
from components.data import get_provider
from pipeline.review.reviews import PickChange, ReviewError, ReviewStore
from queries import event as evq

__all__ = ["ACTIONS", "VIEWS", "event_stations", "apply_pick", "undo_change", "start_reinversion"]

#: pick actions -> polarity as SHOWN (None: delete the review, the batch picks apply again)
ACTIONS = {"up": 1, "down": -1, "zero": 0, "reset": None}
VIEWS = ("true", "recorded")
#: the fields a pick request may have: a request carrying anything else - a polarity, a
#: reversal flag, from a crafted request or a page of an older version - is refused whole
REQUEST_FIELDS = frozenset({"id", "action", "station", "view", "reviewer"})


def event_stations(event_id: str) -> dict[str, bool]:
    """``{"NET.STA": reversed}`` for the stations of ``event_id`` (see the module docstring),
    ``reversed`` from the ``stations`` table; ReviewError for an unknown event."""
    p = get_provider()
    if not isinstance(event_id, str) or p.event_by_id(event_id).empty:
        raise ReviewError(f"unknown event {str(event_id)[:40]!r}")
    st = p.stations()
    rev = st["reversed"].astype(bool) if "reversed" in st else [False] * len(st)
    table = {(str(n), str(s)): bool(r) for n, s, r in zip(st["network"], st["station"], rev)}
    return {f"{n}.{s}": table[(n, s)] for n, s in sorted(evq.event_station_keys(p, event_id)) if (n, s) in table}


def apply_pick(store: ReviewStore, event_id: str, request: dict, *, reviewer: str | None = None,
               stations: dict[str, bool] | None = None) -> PickChange:
    """Check and apply one pick request ``{id, action, station, view}`` for ``event_id``.

    ``reviewer``: the name typed on the page, used in local mode only. ``stations``: the
    result of :func:`event_stations` for ``event_id`` when the caller applies several
    requests (read once per batch). ``up``/``down`` are the first motion as displayed; in
    the ``recorded`` view a station reversed in the stations table is flipped to true
    motion before it is stored. Raises AccessDenied or ReviewError (nothing written)."""
    name = require("review", reviewer)
    if not isinstance(request, dict):
        raise ReviewError("bad request")
    extra = sorted(map(str, set(request) - REQUEST_FIELDS))
    if extra:
        raise ReviewError(f"request refused: unexpected field {extra[0][:20]!r} (reload the page)")
    action, key, view = request.get("action"), request.get("station"), request.get("view", "true")
    if action not in ACTIONS:
        raise ReviewError(f"unknown action {str(action)[:20]!r}")
    if view not in VIEWS:
        raise ReviewError(f"unknown view {str(view)[:20]!r}")
    if stations is None:
        stations = event_stations(event_id)
    if not isinstance(key, str) or key not in stations:
        raise ReviewError(f"station {str(key)[:40]!r} is not a station of event {str(event_id)[:40]}")
    network, _, station = key.partition(".")
    rid = request.get("id")
    rid = rid[:64] if isinstance(rid, str) and rid else None
    if action == "reset":
        return store.clear_pick(event_id, network, station, name, rid)
    shown = ACTIONS[action]
    true_motion = -shown if view == "recorded" and stations[key] else shown
    return store.set_pick(event_id, network, station, true_motion, name, rid)


def undo_change(store: ReviewStore, audit_id) -> PickChange:
    """Undo one audited change (admins; see :meth:`ReviewStore.undo`), signed by the admin."""
    name = require("undo", None)
    return store.undo(audit_id, name)


def start_reinversion(data_dir, event_id: str, reviewer: str | None = None) -> str:
    """Queue a re-inversion of ``event_id`` (reviewers and admins) signed by the account in
    the job queue (:mod:`pipeline.review.jobs`); returns the job id - the one already queued
    or running for the same picks, if any. Raises AccessDenied, or ReviewError (``QueueFull``
    when the queue is full)."""
    from pipeline.review.jobs import get_queue

    name = require("reinvert", reviewer)
    job_id, _ = get_queue(data_dir).submit(event_id, name)
    return job_id
