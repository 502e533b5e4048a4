"""Manual polarity reviews in SQLite (``<data_dir>/reviews.sqlite``).

The dashboard's ONLY write path; the batch side reads it (:func:`apply_reviews`).

The Parquet tables stay read-only; what a reviewer decides on the event page is stored here
and read back by the page, the "Re-invert" job and the next batch inversion.

Database (SQLite in WAL mode; ``PRAGMA user_version`` = :data:`SCHEMA_VERSION`)
------------------------------------------------------------------------------
``picks``        the current reviewed pick per (event_id, network, station):
                 ``polarity`` in (-1, 0, 1), **true ground motion** (station reversal applied;
                 0 = undetermined = leave the station out of the inversion), ``reviewer``
                 (1-64 characters), ``updated_at`` (UTC, ISO 8601 ``...Z``).
                 ``UNIQUE(event_id, network, station)``.
``audit``        one row per change: ``id, event_id, network, station, old_polarity,
                 new_polarity, reviewer, at, request_id`` (``old_polarity`` NULL = there was
                 no reviewed pick, ``new_polarity`` NULL = the pick was cleared, i.e. the batch
                 picks apply again).
``reinversions`` the results of "Re-invert" (:mod:`pipeline.review.reinvert`): ``event_id,
                 strike, dip, rake, quality, misfit, n_polarities, kagan_to_previous, at`` and
                 more (see :data:`_SCHEMA`); never written to the Parquet tables.
``jobs``         background jobs (today re-inversions) of the queue :mod:`pipeline.review.jobs`:
                 ``status`` ``queued``/``running``/``done``/``error`` (error = failed, ``message``
                 says why: SKHASH error, "timed out after N s", "app restarted while running"),
                 ``kind``, ``job_key`` (de-duplication key), ``owner`` (host:pid:start of the
                 process running it), ``timeout_s``; any server thread or process reports it.

Writes
------
Every write is one transaction opened with ``BEGIN IMMEDIATE`` (the write lock is taken
before reading the previous value, so two writers can never both read the same "old" value
and concurrent writers - threads, browser sessions, processes - serialise instead of losing
updates; a writer waits up to ``timeout`` seconds for the lock). Requests are validated
first: the event must be in the ``events`` table, (network, station) in ``stations``, the
polarity one of -1/0/1 (integers only), the reviewer a printable string of 1-64 characters.
A bad request raises :class:`ReviewError` and changes nothing. All SQL is parameterised.
A ``request_id`` makes a write idempotent: repeating a request id already in the audit
trail for the same station returns the earlier result without writing again (the event page
re-sends its recent keyboard requests until the server acknowledges them, so none is lost
and none applied twice).

Undo (admins on the dashboard's audit trail): :meth:`ReviewStore.undo` reverts one audited
change as a new audited change (request id ``undo:<audit id>``), refused when the pick changed
since. Read-only: ``ReviewStore(..., read_only=True)`` neither creates nor migrates the file,
reads through SQLite ``mode=ro`` and refuses every write (a dashboard shared without accounts).
Who may write, and which event/station/sign, is decided by the dashboard before it calls the
store (:mod:`components.review_writes`); the store itself checks that the event and station
exist.

For the batch side
------------------
* :func:`db_path` - where the database of a data folder is.
* :func:`manual_polarities` - the reviewed picks as rows of the ``polarities`` table
  (``method='manual'``, true-motion ``polarity``), empty when there is no database.
* :func:`apply_reviews` - a ``polarities`` table with the reviewed picks merged over its
  ``manual`` rows (the review wins, station by station); what ``pipeline.mechanisms.invert`` should
  invert so that reviews feed the next ``python -m pipeline invert``/``build``.
"""
from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

__all__ = [
    "DB_NAME", "SCHEMA_VERSION", "DEFAULT_REVIEWER", "MAX_REVIEWER", "ReviewError", "QueueFull", "PickChange",
    "TableValidator", "ReviewStore", "db_path", "manual_polarities", "apply_reviews", "validate_reviewer",
]

DB_NAME = "reviews.sqlite"
SCHEMA_VERSION = 2  #: 2: jobs.kind, job_key, owner, timeout_s (the job queue, pipeline.review.jobs)
DEFAULT_REVIEWER = "anonymous"
MAX_REVIEWER = 64
_MAX_REQUEST_ID = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS picks (
    event_id   TEXT NOT NULL,
    network    TEXT NOT NULL,
    station    TEXT NOT NULL,
    polarity   INTEGER NOT NULL CHECK (polarity IN (-1, 0, 1)),
    reviewer   TEXT NOT NULL CHECK (length(reviewer) BETWEEN 1 AND 64),
    updated_at TEXT NOT NULL,
    UNIQUE (event_id, network, station)
);
CREATE TABLE IF NOT EXISTS audit (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id     TEXT NOT NULL,
    network      TEXT NOT NULL,
    station      TEXT NOT NULL,
    old_polarity INTEGER CHECK (old_polarity IN (-1, 0, 1)),
    new_polarity INTEGER CHECK (new_polarity IN (-1, 0, 1)),
    reviewer     TEXT NOT NULL,
    at           TEXT NOT NULL,
    request_id   TEXT
);
CREATE INDEX IF NOT EXISTS audit_event ON audit (event_id, network, station);
CREATE INDEX IF NOT EXISTS audit_request ON audit (request_id);
CREATE TABLE IF NOT EXISTS reinversions (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id                TEXT NOT NULL,
    strike                  REAL,
    dip                     REAL,
    rake                    REAL,
    quality                 TEXT,
    misfit                  REAL,
    n_polarities            INTEGER,
    kagan_to_previous       REAL,
    at                      TEXT NOT NULL,
    strike2                 REAL,
    dip2                    REAL,
    rake2                   REAL,
    fault_plane_uncertainty REAL,
    prob_mech               REAL,
    sta_distribution_ratio  REAL,
    kagan_to_published      REAL,
    previous_source         TEXT,
    previous_strike         REAL,
    previous_dip            REAL,
    previous_rake           REAL,
    picks                   TEXT,
    engine                  TEXT,
    reviewer                TEXT,
    n_reviewed              INTEGER,
    reason                  TEXT,
    stations_json           TEXT,
    acceptable_json         TEXT,
    seconds                 REAL
);
CREATE INDEX IF NOT EXISTS reinversions_event ON reinversions (event_id, id);
CREATE TABLE IF NOT EXISTS jobs (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL,
    reviewer        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'error')),
    message         TEXT,
    reinversion_id  INTEGER,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT,
    kind            TEXT NOT NULL DEFAULT 'reinvert',
    job_key         TEXT,
    owner           TEXT,
    timeout_s       REAL
);
CREATE INDEX IF NOT EXISTS jobs_event ON jobs (event_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
"""

#: columns of :meth:`ReviewStore.reinversions` (the table's, in order)
REINVERSION_COLUMNS = (
    "id", "event_id", "strike", "dip", "rake", "quality", "misfit", "n_polarities", "kagan_to_previous", "at",
    "strike2", "dip2", "rake2", "fault_plane_uncertainty", "prob_mech", "sta_distribution_ratio",
    "kagan_to_published", "previous_source", "previous_strike", "previous_dip", "previous_rake", "picks",
    "engine", "reviewer", "n_reviewed", "reason", "stations_json", "acceptable_json", "seconds",
)
PICK_COLUMNS = ("event_id", "network", "station", "polarity", "reviewer", "updated_at")
AUDIT_COLUMNS = ("id", "event_id", "network", "station", "old_polarity", "new_polarity", "reviewer", "at",
                 "request_id")
JOB_COLUMNS = ("id", "event_id", "reviewer", "status", "message", "reinversion_id", "created_at", "started_at",
               "finished_at", "kind", "job_key", "owner", "timeout_s")
#: columns version 2 added to ``jobs`` (``ALTER TABLE`` on a version-1 database)
_JOB_COLUMNS_V2 = (("kind", "TEXT NOT NULL DEFAULT 'reinvert'"), ("job_key", "TEXT"), ("owner", "TEXT"),
                   ("timeout_s", "REAL"))

_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]+$")
_CODE = re.compile(r"^[A-Za-z0-9_.\-]{1,16}$")
_EVENT_ID = re.compile(r"^[A-Za-z0-9_.:\-]{1,32}$")


class ReviewError(ValueError):
    """A review request was refused (validation or lock timeout); nothing was written."""


class QueueFull(ReviewError):
    """The job queue already holds its maximum of waiting jobs; nothing was queued."""


@dataclass(frozen=True)
class PickChange:
    """Result of a pick write: the station, its ``old``/``new`` reviewed polarity (None = no
    reviewed pick), whether anything ``changed``, and the audit row id (None if unchanged)."""
    event_id: str
    network: str
    station: str
    old: int | None
    new: int | None
    changed: bool
    audit_id: int | None
    reviewer: str
    at: str


def utc_now() -> str:
    """Current UTC time as ISO 8601 with microseconds and ``Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def db_path(data_dir: str | os.PathLike) -> Path:
    """``<data_dir>/reviews.sqlite``: the review database of a data folder."""
    return Path(data_dir) / DB_NAME


def validate_reviewer(reviewer) -> str:
    """The reviewer name, stripped; :class:`ReviewError` unless a printable string of
    1-:data:`MAX_REVIEWER` characters. ``None``/empty -> :data:`DEFAULT_REVIEWER`."""
    if reviewer is None:
        return DEFAULT_REVIEWER
    if not isinstance(reviewer, str):
        raise ReviewError("reviewer must be a string")
    name = reviewer.strip()
    if not name:
        return DEFAULT_REVIEWER
    if len(name) > MAX_REVIEWER:
        raise ReviewError(f"reviewer name longer than {MAX_REVIEWER} characters")
    if not _PRINTABLE.match(name):
        raise ReviewError("reviewer name has control characters")
    return name


def _validate_polarity(polarity) -> int:
    # bool is an int subclass: refuse True/False; accept numpy integers via __index__
    if isinstance(polarity, bool) or isinstance(polarity, str) or isinstance(polarity, float):
        raise ReviewError(f"polarity must be -1, 0 or 1 (got {polarity!r})")
    try:
        value = polarity.__index__()
    except (AttributeError, TypeError):
        raise ReviewError(f"polarity must be -1, 0 or 1 (got {polarity!r})") from None
    if value not in (-1, 0, 1):
        raise ReviewError(f"polarity must be -1, 0 or 1 (got {value})")
    return int(value)


def _validate_code(value, what: str, pattern=_CODE) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        shown = value if isinstance(value, str) and len(value) <= 40 else f"{str(value)[:40]}…"
        raise ReviewError(f"unknown {what} {shown!r}")
    return value


class TableValidator:
    """Known event ids (``events``) and (network, station) pairs (``stations``) of a data
    folder, read from the Parquet files with pyarrow. The stations (a small table) are
    cached as a set until the file changes; an event id is looked up in the file at each
    check (a filtered scan of the ``event_id`` column, row groups skipped by their
    statistics), so memory does not grow with the catalogue (1,000,000 events would be a
    ~100 MB set)."""

    def __init__(self, data_dir: str | os.PathLike):
        self.data_dir = Path(data_dir)
        self._lock = threading.Lock()
        self._cache: dict = {}

    def _load(self, table: str, columns: list[str]):
        from pipeline.tables import table_path

        path = table_path(self.data_dir, table)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ReviewError(f"table {table!r} not found in {self.data_dir}") from None
        version = (st.st_mtime_ns, st.st_size)
        with self._lock:
            hit = self._cache.get(table)
            if hit and hit[0] == version:
                return hit[1]
        import pyarrow.parquet as pq

        tab = pq.read_table(path, columns=columns)
        if len(columns) == 1:
            value = frozenset(str(v) for v in tab.column(columns[0]).to_pylist())
        else:
            value = frozenset(zip(*(map(str, tab.column(c).to_pylist()) for c in columns)))
        with self._lock:
            self._cache[table] = (version, value)
        return value

    def has_event(self, event_id: str) -> bool:
        """True when the ``events`` table has a row with ``event_id``."""
        import pyarrow.compute as pc
        import pyarrow.dataset as ds

        from pipeline.tables import table_path

        path = table_path(self.data_dir, "events")
        if not path.exists():
            raise ReviewError(f"table 'events' not found in {self.data_dir}")
        hit = ds.dataset(str(path), format="parquet").to_table(
            columns=["event_id"], filter=pc.field("event_id") == pc.scalar(str(event_id)))
        return hit.num_rows > 0

    def check(self, event_id: str, network: str | None = None, station: str | None = None) -> None:
        """Raise :class:`ReviewError` unless the event (and the station) is known."""
        if not self.has_event(event_id):
            raise ReviewError(f"unknown event {event_id!r}")
        if network is not None and (network, station) not in self._load("stations", ["network", "station"]):
            raise ReviewError(f"unknown station {network}.{station}")


class ReviewStore:
    """The review database (see the module docstring).

    ``ReviewStore(data_dir)`` opens (creating if needed) ``<data_dir>/reviews.sqlite`` and
    validates requests against the data folder's ``events``/``stations`` tables;
    ``path=`` names another file, ``validator=`` an object with ``check(event_id, network,
    station)`` (``False`` = no table validation, for tests). Safe to share between threads:
    every call opens its own short-lived connection.
    """

    def __init__(self, data_dir: str | os.PathLike | None = None, *, path: str | os.PathLike | None = None,
                 validator=None, timeout: float = 30.0, read_only: bool = False):
        if path is None:
            if data_dir is None:
                raise ValueError("give data_dir or path")
            path = db_path(data_dir)
        self.path = Path(path)
        self.timeout = float(timeout)
        if validator is None:
            validator = TableValidator(data_dir) if data_dir is not None else False
        self.validator = validator
        #: opened read-only (a dashboard serving without accounts on a shared address): the
        #: database is neither created nor migrated, connections are SQLite ``mode=ro`` and
        #: every write raises ReviewError before touching it
        self.read_only = bool(read_only)
        if self.read_only:
            if not self.path.is_file():
                raise FileNotFoundError(f"{self.path} does not exist (read-only: not created)")
            with self._read() as conn:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema version {version}, newer than this code "
                                   f"({SCHEMA_VERSION})")
        else:
            self._init_db()

    # -- connection -------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        if getattr(self, "read_only", False):
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.timeout, isolation_level=None)
        else:
            conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=True)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        if not getattr(self, "read_only", False):
            conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.row_factory = sqlite3.Row
        return conn

    @contextmanager
    def _read(self):
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self):
        """One transaction holding the write lock from the start (``BEGIN IMMEDIATE``);
        committed on success, rolled back on any exception. Refused on a read-only store."""
        if self.read_only:
            raise ReviewError("the review database is open read-only: nothing can be written")
        conn = self._connect()
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # lock timeout
                raise ReviewError(f"review database busy, try again ({exc})") from exc
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _init_db(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"could not switch {self.path} to WAL mode (got {mode!r})")
        finally:
            conn.close()
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} has schema version {version}, newer than this code "
                                   f"({SCHEMA_VERSION})")
            if version == 1:  # CREATE TABLE IF NOT EXISTS leaves the old jobs table as it was
                have = {r["name"] for r in conn.execute("PRAGMA table_info(jobs)").fetchall()}
                for col, decl in _JOB_COLUMNS_V2:
                    if col not in have:
                        conn.execute(f"ALTER TABLE jobs ADD COLUMN {col} {decl}")
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def journal_mode(self) -> str:
        with self._read() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    # -- validation -------------------------------------------------------------------------
    def _validate(self, event_id, network, station, polarity, reviewer, request_id, *, clear=False):
        event_id = _validate_code(event_id, "event", _EVENT_ID)
        network = _validate_code(network, "network")
        station = _validate_code(station, "station")
        pol = None if clear else _validate_polarity(polarity)
        name = validate_reviewer(reviewer)
        if request_id is not None and (not isinstance(request_id, str) or not request_id
                                       or len(request_id) > _MAX_REQUEST_ID or not _PRINTABLE.match(request_id)):
            raise ReviewError("request_id must be a printable string of 1-64 characters")
        if self.validator:
            self.validator.check(event_id, network, station)
        return event_id, network, station, pol, name

    # -- picks ------------------------------------------------------------------------------
    def set_pick(self, event_id: str, network: str, station: str, polarity: int, reviewer: str | None = None,
                 request_id: str | None = None) -> PickChange:
        """Set the reviewed true-motion polarity (-1, 0, 1) of a station; one audited
        transaction. Raises :class:`ReviewError` (nothing written) on a bad request."""
        return self._change(event_id, network, station, polarity, reviewer, request_id, clear=False)

    def clear_pick(self, event_id: str, network: str, station: str, reviewer: str | None = None,
                   request_id: str | None = None) -> PickChange:
        """Delete the reviewed pick of a station (the batch picks apply again); audited."""
        return self._change(event_id, network, station, None, reviewer, request_id, clear=True)

    def _change(self, event_id, network, station, polarity, reviewer, request_id, *, clear):
        event_id, network, station, pol, name = self._validate(event_id, network, station, polarity, reviewer,
                                                               request_id, clear=clear)
        with self._write() as conn:
            return self._apply(conn, event_id, network, station, pol, name, request_id, clear=clear)

    @staticmethod
    def _apply(conn, event_id, network, station, pol, name, request_id, *, clear) -> PickChange:
        """The write of :meth:`_change`/:meth:`undo` inside their transaction (validated values)."""
        at = utc_now()
        if request_id is not None:
            prev = conn.execute(
                "SELECT id, old_polarity, new_polarity, reviewer, at FROM audit WHERE request_id = ?"
                " AND event_id = ? AND network = ? AND station = ? ORDER BY id LIMIT 1",
                (request_id, event_id, network, station)).fetchone()
            if prev is not None:  # a retried request: report, do not apply twice
                return PickChange(event_id, network, station, prev["old_polarity"], prev["new_polarity"], False,
                                  prev["id"], prev["reviewer"], prev["at"])
        row = conn.execute("SELECT polarity FROM picks WHERE event_id = ? AND network = ? AND station = ?",
                           (event_id, network, station)).fetchone()
        old = None if row is None else int(row["polarity"])
        if clear:
            if old is None and request_id is None:
                return PickChange(event_id, network, station, None, None, False, None, name, at)
            # (with a request id, a no-op clear is audited too, so a retry stays a no-op)
            conn.execute("DELETE FROM picks WHERE event_id = ? AND network = ? AND station = ?",
                         (event_id, network, station))
        else:
            conn.execute(
                "INSERT INTO picks (event_id, network, station, polarity, reviewer, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (event_id, network, station) DO UPDATE SET"
                " polarity = excluded.polarity, reviewer = excluded.reviewer, updated_at = excluded.updated_at",
                (event_id, network, station, pol, name, at))
        cur = conn.execute(
            "INSERT INTO audit (event_id, network, station, old_polarity, new_polarity, reviewer, at, request_id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (event_id, network, station, old, pol, name, at, request_id))
        return PickChange(event_id, network, station, old, pol, old != pol, int(cur.lastrowid), name, at)

    def undo(self, audit_id: int, reviewer: str | None = None) -> PickChange:
        """Revert the change of audit row ``audit_id``: the station's reviewed pick goes back
        to that row's ``old_polarity`` (deleted when it was None), as a new audited change by
        ``reviewer`` with request id ``undo:<audit_id>``. Refused (:class:`ReviewError`,
        nothing written) when the pick has changed since - undo the later change first - or
        the row does not exist; undoing the same row again changes nothing. One transaction:
        the check and the write see the same pick."""
        if isinstance(audit_id, bool) or not isinstance(audit_id, int):
            raise ReviewError(f"bad audit id {str(audit_id)[:20]!r}")
        name = validate_reviewer(reviewer)
        rid = f"undo:{audit_id}"
        with self._write() as conn:
            row = conn.execute("SELECT event_id, network, station, old_polarity, new_polarity FROM audit WHERE id = ?",
                               (audit_id,)).fetchone()
            if row is None:
                raise ReviewError(f"no audited change {audit_id}")
            ev, net, sta = row["event_id"], row["network"], row["station"]
            done = conn.execute("SELECT 1 FROM audit WHERE request_id = ? AND event_id = ? AND network = ? AND"
                                " station = ?", (rid, ev, net, sta)).fetchone()
            if done is None:
                cur = conn.execute("SELECT polarity FROM picks WHERE event_id = ? AND network = ? AND station = ?",
                                   (ev, net, sta)).fetchone()
                now = None if cur is None else int(cur["polarity"])
                if now != row["new_polarity"]:
                    raise ReviewError(f"{net}.{sta} of {ev} changed after change {audit_id}: undo the later change "
                                      "first")
            old = row["old_polarity"]
            return self._apply(conn, ev, net, sta, None if old is None else int(old), name, rid, clear=old is None)

    def picks(self, event_id: str | None = None) -> pd.DataFrame:
        """Current reviewed picks (all events, or one), columns :data:`PICK_COLUMNS`,
        ordered by event, network, station; ``polarity`` int8, true motion."""
        sql = "SELECT event_id, network, station, polarity, reviewer, updated_at FROM picks"
        params: tuple = ()
        if event_id is not None:
            sql += " WHERE event_id = ?"
            params = (str(event_id),)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY event_id, network, station", params).fetchall()
        df = pd.DataFrame([tuple(r) for r in rows], columns=list(PICK_COLUMNS))
        df["polarity"] = df["polarity"].astype("int8")
        for c in ("event_id", "network", "station", "reviewer", "updated_at"):
            df[c] = df[c].astype(object)
        return df

    def reviewed_polarities(self, event_id: str | None = None) -> pd.DataFrame:
        """The reviewed picks (all events, or one) in the ``polarities``-table format of
        :func:`manual_polarities`."""
        return _as_polarities(self.picks(event_id))

    def picks_dict(self, event_id: str) -> dict[str, dict]:
        """``{"NET.STA": {"polarity", "reviewer", "updated_at"}}`` of one event (JSON-ready)."""
        df = self.picks(event_id)
        return {f"{n}.{s}": {"polarity": int(p), "reviewer": r, "updated_at": u}
                for n, s, p, r, u in zip(df["network"], df["station"], df["polarity"], df["reviewer"],
                                         df["updated_at"])}

    def audit(self, event_id: str | None = None) -> pd.DataFrame:
        """The audit trail (all events, or one), columns :data:`AUDIT_COLUMNS`, by id."""
        return self._rows("audit", AUDIT_COLUMNS, event_id)

    def _rows(self, table: str, columns, event_id: str | None) -> pd.DataFrame:
        """Rows of one of our own tables (fixed names), all or of one event, by id."""
        sql = f"SELECT {', '.join(columns)} FROM {table}"
        params: tuple = ()
        if event_id is not None:
            sql += " WHERE event_id = ?"
            params = (str(event_id),)
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY id", params).fetchall()
        return pd.DataFrame([tuple(r) for r in rows], columns=list(columns))

    # -- re-inversions ----------------------------------------------------------------------
    def add_reinversion(self, row: dict) -> int:
        """Store one re-inversion result (keys among :data:`REINVERSION_COLUMNS`, ``event_id``
        required; ``at`` defaults to now; ``stations_json``/``acceptable_json`` may be given
        as lists, they are JSON-encoded). Returns its id."""
        if not isinstance(row.get("event_id"), str):
            raise ReviewError("a re-inversion needs an event_id")
        if self.validator:
            self.validator.check(row["event_id"])
        data = {k: row[k] for k in REINVERSION_COLUMNS if k in row and k != "id"}
        data.setdefault("at", utc_now())
        for k in ("stations_json", "acceptable_json"):
            if k in data and not isinstance(data[k], (str, type(None))):
                data[k] = json.dumps(data[k], separators=(",", ":"))
        for k, v in list(data.items()):
            if isinstance(v, float) and not math.isfinite(v):
                data[k] = None
            elif hasattr(v, "item") and not isinstance(v, (str, bytes)):  # numpy scalar
                v = v.item()
                data[k] = None if isinstance(v, float) and not math.isfinite(v) else v
        cols = list(data)  # names from our own whitelist
        with self._write() as conn:
            cur = conn.execute(f"INSERT INTO reinversions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                               [data[c] for c in cols])
            return int(cur.lastrowid)

    def reinversions(self, event_id: str | None = None) -> pd.DataFrame:
        """Stored re-inversions (all, or of one event), oldest first."""
        return self._rows("reinversions", REINVERSION_COLUMNS, event_id)

    def reinversion(self, reinversion_id: int) -> dict | None:
        """One re-inversion as a dict (JSON columns decoded), or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {', '.join(REINVERSION_COLUMNS)} FROM reinversions WHERE id = ?",
                               (int(reinversion_id),)).fetchone()
        return _decode_reinversion(row)

    def latest_reinversion(self, event_id: str) -> dict | None:
        """The newest re-inversion of ``event_id`` as a dict, or None."""
        with self._read() as conn:
            row = conn.execute(f"SELECT {', '.join(REINVERSION_COLUMNS)} FROM reinversions WHERE event_id = ?"
                               " ORDER BY id DESC LIMIT 1", (str(event_id),)).fetchone()
        return _decode_reinversion(row)

    # -- jobs -------------------------------------------------------------------------------
    # The queue that runs them is pipeline.review.jobs; these are its atomic steps, each one
    # transaction, so threads and processes sharing the database never run a job twice.
    def create_job(self, event_id: str, reviewer: str | None = None, *, key: str | None = None,
                   kind: str = "reinvert", max_queued: int | None = None,
                   timeout_s: float | None = None) -> tuple[str, bool]:
        """A queued job of ``kind`` for ``event_id``, or the job already queued or running
        with the same ``key`` (default: the event id, i.e. one job per event). Returns
        ``(job_id, created)``. ``max_queued``: refuse (:class:`ReviewError`, nothing written)
        when that many jobs of any event are already waiting (:class:`QueueFull`). A ``running`` job past its
        ``timeout_s`` plus :data:`JOB_GRACE_S` is marked failed first (whatever ran it is
        gone: a live queue kills its work at the time limit)."""
        event_id = _validate_code(event_id, "event", _EVENT_ID)
        name = validate_reviewer(reviewer)
        key = event_id if key is None else str(key)[:128]
        if self.validator:
            self.validator.check(event_id)
        with self._write() as conn:
            _fail_overdue(conn)
            row = conn.execute("SELECT id FROM jobs WHERE status IN ('queued', 'running') AND kind = ? AND event_id = ?"
                               " AND COALESCE(job_key, event_id) = ? ORDER BY created_at LIMIT 1",
                               (kind, event_id, key)).fetchone()
            if row is not None:
                return str(row["id"]), False
            if max_queued is not None:
                waiting = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'").fetchone()[0]
                if waiting >= int(max_queued):
                    raise QueueFull(f"the job queue is full ({waiting} jobs waiting, at most {int(max_queued)}); "
                                      "try again when some have finished")
            job_id = uuid.uuid4().hex
            conn.execute("INSERT INTO jobs (id, event_id, reviewer, status, created_at, kind, job_key, timeout_s)"
                         " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                         (job_id, event_id, name, utc_now(), kind, key,
                          None if timeout_s is None else float(timeout_s)))
            return job_id, True

    def claim_job(self, owner: str) -> dict | None:
        """Take the oldest queued job: it becomes ``running``, owned by ``owner`` (who runs
        it, see :func:`pipeline.review.jobs.owner_token`), and is returned; None when nothing
        waits. Atomic: two claimers (threads or processes) never get the same job."""
        with self._write() as conn:
            row = conn.execute("SELECT id FROM jobs WHERE status = 'queued' ORDER BY created_at, rowid LIMIT 1"
                               ).fetchone()
            if row is None:
                return None
            cur = conn.execute("UPDATE jobs SET status = 'running', started_at = ?, owner = ? WHERE id = ?"
                               " AND status = 'queued'", (utc_now(), str(owner)[:200], row["id"]))
            if cur.rowcount != 1:
                return None
            return dict(conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())

    def update_job(self, job_id: str, status: str, message: str | None = None,
                   reinversion_id: int | None = None) -> None:
        """Move a job to ``running``, ``done`` or ``error``."""
        if status not in ("running", "done", "error"):
            raise ValueError(f"bad job status {status!r}")
        col = "started_at" if status == "running" else "finished_at"
        with self._write() as conn:
            conn.execute(f"UPDATE jobs SET status = ?, message = ?, reinversion_id = COALESCE(?, reinversion_id),"
                         f" {col} = ? WHERE id = ?", (status, message, reinversion_id, utc_now(), str(job_id)))

    def fail_running_jobs(self, is_dead, message: str) -> list[str]:
        """Mark failed (``error``, ``message``) every running job whose owner ``is_dead(owner)``
        says is gone, and every running job past its time limit plus :data:`JOB_GRACE_S`;
        the ids of the jobs so marked."""
        with self._write() as conn:
            failed = _fail_overdue(conn)
            for r in conn.execute("SELECT id, owner FROM jobs WHERE status = 'running'").fetchall():
                if is_dead(r["owner"]):
                    conn.execute("UPDATE jobs SET status = 'error', message = ?, finished_at = ? WHERE id = ?"
                                 " AND status = 'running'", (message, utc_now(), r["id"]))
                    failed.append(str(r["id"]))
            return failed

    def job(self, job_id: str) -> dict | None:
        """A job as a dict (:data:`JOB_COLUMNS`), or None when unknown."""
        if not isinstance(job_id, str) or len(job_id) > 64:
            return None
        with self._read() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _job_dict(row)

    def active_job(self, event_id: str) -> dict | None:
        """The event's newest queued or running job, or None."""
        with self._read() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE event_id = ? AND status IN ('queued', 'running')"
                               " ORDER BY created_at DESC LIMIT 1", (str(event_id),)).fetchone()
        return _job_dict(row)

    def jobs(self, limit: int = 200) -> list[dict]:
        """The newest ``limit`` jobs, newest first, queued and running ones before the rest."""
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM jobs ORDER BY status NOT IN ('queued', 'running'), created_at DESC"
                                " LIMIT ?", (int(limit),)).fetchall()
        return [_job_dict(r) for r in rows]

    def queue_position(self, job_id: str) -> int | None:
        """How many queued jobs wait before ``job_id`` (0 = next), None unless it is queued."""
        with self._read() as conn:
            row = conn.execute("SELECT created_at, rowid FROM jobs WHERE id = ? AND status = 'queued'",
                               (str(job_id),)).fetchone()
            if row is None:
                return None
            return int(conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued' AND (created_at < ? OR"
                                    " (created_at = ? AND rowid < ?))",
                                    (row["created_at"], row["created_at"], row["rowid"])).fetchone()[0])

    def count_jobs(self, status: str) -> int:
        """Number of jobs in ``status`` (e.g. ``queued``)."""
        with self._read() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM jobs WHERE status = ?", (str(status),)).fetchone()[0])


#: a running job is taken for dead this long after its time limit (its runner kills the
#: work at the limit and records the failure within moments; only a vanished runner is later)
JOB_GRACE_S = 60.0


def _fail_overdue(conn) -> list[str]:
    """Inside a write transaction: mark failed the running jobs past ``timeout_s`` +
    :data:`JOB_GRACE_S` (a job without a time limit, from an older version, after 15 min)."""
    now = datetime.now(timezone.utc)
    out = []
    for r in conn.execute("SELECT id, started_at, created_at, timeout_s FROM jobs WHERE status = 'running'").fetchall():
        since = _parse_time(r["started_at"] or r["created_at"])
        limit = (r["timeout_s"] if r["timeout_s"] is not None else 900.0 - JOB_GRACE_S) + JOB_GRACE_S
        if since is not None and (now - since).total_seconds() > limit:
            conn.execute("UPDATE jobs SET status = 'error', message = ?, finished_at = ? WHERE id = ?",
                         ("no result within the time limit (the process running it stopped)", utc_now(), r["id"]))
            out.append(str(r["id"]))
    return out


def _job_dict(row) -> dict | None:
    """A jobs row as a dict with every :data:`JOB_COLUMNS` key (None for columns a read-only
    version-1 database lacks)."""
    if row is None:
        return None
    d = dict(row)
    return {c: d.get(c) for c in JOB_COLUMNS}


def _parse_time(s: str | None):
    if not s:
        return None
    try:
        return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None


def _decode_reinversion(row) -> dict | None:
    if row is None:
        return None
    out = dict(row)
    for k in ("stations_json", "acceptable_json"):
        try:
            out[k] = json.loads(out[k]) if out.get(k) else []
        except (TypeError, ValueError):
            out[k] = []
    return out


# -- for the batch side -----------------------------------------------------------------------
_POLARITY_COLUMNS = ("event_id", "network", "station", "channel", "method", "polarity", "prob_down_recorded",
                     "snr", "p_source")


def manual_polarities(data_dir: str | os.PathLike, *, path: str | os.PathLike | None = None) -> pd.DataFrame:
    """The reviewed picks of ``<data_dir>/reviews.sqlite`` as rows of the ``polarities``
    table: ``event_id, network, station, channel (None), method ('manual'), polarity (int8,
    true ground motion: +1 up, -1 down, 0 undetermined = drop the station),
    prob_down_recorded (NaN), snr (NaN), p_source ('review')`` plus ``reviewer`` and
    ``updated_at``. Empty (same columns) when the database does not exist; reading never
    creates it."""
    p = Path(path) if path is not None else db_path(data_dir)
    if not p.is_file():
        return _as_polarities(pd.DataFrame({c: pd.Series(dtype=object) for c in PICK_COLUMNS}))
    conn = sqlite3.connect(f"file:{p}?mode=ro", uri=True, timeout=30)
    try:
        rows = conn.execute("SELECT event_id, network, station, polarity, reviewer, updated_at FROM picks"
                            " ORDER BY event_id, network, station").fetchall()
    except sqlite3.OperationalError:  # no picks table yet
        rows = []
    finally:
        conn.close()
    return _as_polarities(pd.DataFrame(rows, columns=list(PICK_COLUMNS)))


def _as_polarities(picks: pd.DataFrame) -> pd.DataFrame:
    """Rows of :data:`PICK_COLUMNS` -> the ``polarities``-table format (see
    :func:`manual_polarities`)."""
    n = len(picks)
    out = pd.DataFrame({
        "event_id": picks["event_id"].astype(object), "network": picks["network"].astype(object),
        "station": picks["station"].astype(object), "channel": pd.Series([None] * n, dtype=object),
        "method": pd.Series(["manual"] * n, dtype=object), "polarity": picks["polarity"].astype("int8"),
        "prob_down_recorded": pd.Series([float("nan")] * n, dtype=float),
        "snr": pd.Series([float("nan")] * n, dtype=float), "p_source": pd.Series(["review"] * n, dtype=object),
        "reviewer": picks["reviewer"].astype(object), "updated_at": picks["updated_at"].astype(object),
    })
    return out.reset_index(drop=True)


def apply_reviews(polarities: pd.DataFrame, reviewed: pd.DataFrame | str | os.PathLike) -> pd.DataFrame:
    """``polarities`` (the table) with the reviewed picks merged over its ``manual`` rows:
    for every (event_id, network, station) the review covers, the batch ``manual`` row is
    replaced by the reviewed one; other rows are unchanged. ``reviewed``: a
    :func:`manual_polarities` frame or a data folder to read it from. Feed the result to
    ``pipeline.mechanisms.invert.invert`` / ``select_polarities(picks='auto')``: a reviewed pick then
    overrides the automatic ones station by station and a reviewed 0 removes the station."""
    if not isinstance(reviewed, pd.DataFrame):
        reviewed = manual_polarities(reviewed)
    if reviewed.empty:
        return polarities.copy()
    key = ["event_id", "network", "station"]
    rkeys = pd.MultiIndex.from_frame(reviewed[key].astype(str))
    pkeys = pd.MultiIndex.from_frame(polarities[key].astype(str))
    drop = (polarities["method"] == "manual").to_numpy() & pkeys.isin(rkeys)
    add = reviewed[[c for c in reviewed.columns if c in polarities.columns or c in _POLARITY_COLUMNS]]
    out = pd.concat([polarities[~drop], add], ignore_index=True)
    out["polarity"] = out["polarity"].astype("int8")
    return out
