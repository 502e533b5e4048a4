"""The dashboard's one job queue: long work run in the background, recorded in the review
database's ``jobs`` table (:mod:`pipeline.review.reviews`), so its state outlives the
browser tab that asked for it and the process that ran it.

Today one kind of job exists, ``reinvert`` (:func:`pipeline.review.reinvert.reinvert_event`);
another long task becomes a new entry of :data:`KINDS` (a key function and a run function),
not a second runner.

What the queue guarantees
-------------------------
* **Bounded**: at most :attr:`JobSettings.max_queued` jobs wait (all processes together); a
  submit beyond that raises :class:`QueueFull` (a :class:`~pipeline.review.reviews.ReviewError`
  whose message the page shows) and writes nothing.
* **N at a time**: :attr:`JobSettings.workers` worker threads per process (default 1), each
  running one job at a time. The work itself is a subprocess (SKHASH), so a worker thread
  waits with the GIL free.
* **Time limit per job**: :attr:`JobSettings.timeout_s`; the limit reaches the SKHASH
  subprocess, whose process group is killed there; the job is marked failed with
  "timed out after N s" and the worker takes the next job.
* **De-duplicated** per (event, picks): the key is the event plus a digest of the polarities a
  re-inversion would invert now (:func:`pipeline.review.reinvert.polarity_digest`). Asking
  again while a job with that key is queued or running returns that job; a new review makes a
  new key, hence a new job.
* **Nothing lost on a restart**: a new queue first marks failed ("app restarted while
  running") every running job whose process is gone, then runs the jobs left queued. Jobs are
  claimed with one ``UPDATE ... WHERE status = 'queued'`` transaction, so processes sharing
  the database (several app processes on one folder) never run a job twice; each process runs
  up to ``workers`` of them.

Process identity (:func:`owner_token`): ``host:pid:start``, ``start`` being the process start
time from ``/proc`` (so a recycled pid is not mistaken for the old process). A job owned by
another host is left alone until it is past its limit plus
:data:`pipeline.review.reviews.JOB_GRACE_S`.

Settings come from ``app.py`` (``--job-workers``, ``--job-queue``, ``--job-timeout``) or the
environment (:meth:`JobSettings.from_env`: ``FM_JOB_WORKERS``, ``FM_JOB_MAX_QUEUED``,
``FM_JOB_TIMEOUT_S``).
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.review.reviews import QueueFull, ReviewError, ReviewStore, validate_reviewer

log = logging.getLogger(__name__)

__all__ = ["JobSettings", "QueueFull", "JobQueue", "KINDS", "RESTART_MESSAGE", "owner_token", "owner_alive",
           "get_queue", "configure", "close_queue"]

#: what a job that was running when its app process stopped says after the next start
RESTART_MESSAGE = "app restarted while running"


@dataclass(frozen=True)
class JobSettings:
    """``workers``: jobs run at once per process; ``max_queued``: jobs that may wait (all
    processes); ``timeout_s``: time limit of one job, s; ``poll_s``: how often an idle worker
    looks for jobs queued by another process, s; ``idle_exit_s``: a worker that found no job
    for this long ends (the next submit starts one again), s."""
    workers: int = 1
    max_queued: int = 20
    timeout_s: float = 300.0
    poll_s: float = 2.0
    idle_exit_s: float = 30.0

    def __post_init__(self):
        if int(self.workers) < 1 or int(self.max_queued) < 1 or not float(self.timeout_s) > 0 \
                or not float(self.poll_s) > 0 or float(self.idle_exit_s) < 0:
            raise ValueError(f"job settings must be positive (got {self})")

    @classmethod
    def from_env(cls, env=None, **overrides) -> JobSettings:
        """Settings from ``FM_JOB_WORKERS``, ``FM_JOB_MAX_QUEUED``, ``FM_JOB_TIMEOUT_S``
        (defaults where unset), then ``overrides`` that are not None. A malformed value raises
        ValueError naming the variable."""
        env = os.environ if env is None else env
        values = {}
        for field, var, conv in (("workers", "FM_JOB_WORKERS", int), ("max_queued", "FM_JOB_MAX_QUEUED", int),
                                 ("timeout_s", "FM_JOB_TIMEOUT_S", float)):
            raw = env.get(var)
            if raw not in (None, ""):
                try:
                    values[field] = conv(raw)
                except ValueError:
                    raise ValueError(f"{var}={raw!r} is not a number") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _start_ticks(pid: int) -> str | None:
    """Start time of process ``pid`` in clock ticks since boot (``/proc/<pid>/stat`` field
    22), None when there is no such process or no ``/proc``."""
    try:
        with open(f"/proc/{int(pid)}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]  # fields after "(comm)" start at field 3


def owner_token(pid: int | None = None) -> str:
    """``host:pid:start`` of this process (or ``pid``): who runs a job."""
    pid = os.getpid() if pid is None else int(pid)
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid) or '?'}"


def owner_alive(owner: str | None) -> bool | None:
    """Whether the process named by ``owner`` (:func:`owner_token`) still runs: True/False
    on this host, None when it is another host's (cannot tell) or the token is malformed."""
    if not owner:
        return False
    parts = str(owner).rsplit(":", 2)
    if len(parts) != 3:
        return None
    host, pid, start = parts
    if host != socket.gethostname():
        return None
    try:
        pid = int(pid)
    except ValueError:
        return None
    now = _start_ticks(pid)
    return now is not None and (start == "?" or now == start)


def _reinvert_key(data_dir: Path, event_id: str, store: ReviewStore) -> str:
    from pipeline.review.reinvert import polarity_digest

    return polarity_digest(data_dir, event_id, store)


def _reinvert_run(data_dir: Path, job: dict, store: ReviewStore, settings: JobSettings, use_fortran) -> tuple:
    from pipeline.review.reinvert import reinvert_event

    row = reinvert_event(data_dir, job["event_id"], store=store, reviewer=job["reviewer"], use_fortran=use_fortran,
                         timeout=float(job.get("timeout_s") or settings.timeout_s))
    return row.get("reason") or "solved", row["id"]


#: job kinds: ``kind -> (key(data_dir, event_id, store) -> de-duplication key,
#: run(data_dir, job, store, settings, use_fortran) -> (message, reinversion id or None))``;
#: ``run`` enforces the job's ``timeout_s`` on its subprocess and raises
#: :class:`pipeline.review.reinvert.JobTimeout` past it
KINDS = {"reinvert": (_reinvert_key, _reinvert_run)}


class JobQueue:
    """The queue of one review database in this process (see the module docstring). Use
    :func:`get_queue` in the app: one queue per (data folder, process), shared by all
    request threads."""

    def __init__(self, data_dir, store: ReviewStore | None = None, settings: JobSettings | None = None,
                 use_fortran: bool | None = None):
        self.data_dir = Path(data_dir)
        self.store = store or ReviewStore(self.data_dir)
        self.settings = settings or JobSettings()
        self.use_fortran = use_fortran
        self.owner = owner_token()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []  # live workers; each removes itself (under _cond)
        self._kicked = False  # a job was queued since a worker last looked: it must not end now
        #: ids of the jobs this start marked failed (left running by a process that is gone)
        self.recovered_failed = self.store.fail_running_jobs(
            lambda owner: owner != self.owner and owner_alive(owner) is False, RESTART_MESSAGE)
        if self.recovered_failed:
            log.warning("%d job(s) were running when their app process stopped: marked failed",
                        len(self.recovered_failed))
        if self.store.count_jobs("queued"):  # left by a restart (or queued by another process)
            self._ensure_workers()

    # -- submitting ---------------------------------------------------------------------------
    def submit(self, event_id: str, reviewer: str | None = None, kind: str = "reinvert",
               timeout_s: float | None = None) -> tuple[str, bool]:
        """Queue a ``kind`` job for ``event_id``; ``(job_id, created)``, ``created`` False when
        a job with the same key (event, picks) is already queued or running (that job is
        returned). ``timeout_s``: this job's time limit, s (default the settings').
        Raises :class:`QueueFull` or :class:`ReviewError` (nothing queued)."""
        if kind not in KINDS:
            raise ReviewError(f"unknown job kind {str(kind)[:20]!r}")
        name = validate_reviewer(reviewer)
        if not isinstance(event_id, str):
            raise ReviewError("bad event id")
        if self.store.validator:
            self.store.validator.check(event_id)  # before reading its rows for the key
        key = KINDS[kind][0](self.data_dir, event_id, self.store)
        job_id, created = self.store.create_job(event_id, name, key=key, kind=kind,
                                                max_queued=self.settings.max_queued,
                                                timeout_s=float(timeout_s or self.settings.timeout_s))
        if created:
            self._ensure_workers()
        return job_id, created

    def status(self, job_id: str) -> dict | None:
        """The job row (``status`` queued/running/done/error, ``message``,
        ``reinversion_id``), or None for an unknown id."""
        return self.store.job(job_id)

    def wait(self, job_id: str, timeout: float = 60.0) -> dict | None:
        """Block until the job is done or failed (or ``timeout`` s); its last row."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            job = self.store.job(job_id)
            if job is None or job["status"] in ("done", "error"):
                return job
            time.sleep(0.1)
        return self.store.job(job_id)

    def workers_alive(self) -> int:
        """Worker threads of this queue now running (0 after ``idle_exit_s`` without work)."""
        with self._cond:
            return len(self._threads)

    # -- running ------------------------------------------------------------------------------
    def _ensure_workers(self) -> None:
        """Start workers up to ``settings.workers`` and wake one (after a job was queued)."""
        with self._cond:
            if self._stop.is_set():
                return
            self._kicked = True
            for i in range(len(self._threads), int(self.settings.workers)):
                t = threading.Thread(target=self._work, name=f"fm-job-{i}", daemon=True)
                self._threads.append(t)
                t.start()
            self._cond.notify()

    def _work(self) -> None:
        me = threading.current_thread()
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set():
                try:
                    job = self.store.claim_job(self.owner)
                except Exception:  # noqa: BLE001 - a busy database: try again at the next poll
                    log.exception("could not claim a job")
                    job = None
                if job is not None:
                    self._run(job)
                    idle_since = time.monotonic()
                    continue
                with self._cond:
                    # decided under the lock a submit takes to start workers: either it sees this
                    # worker gone and starts another, or this worker sees its kick and looks again
                    if self._kicked:
                        self._kicked = False
                        continue
                    if time.monotonic() - idle_since >= self.settings.idle_exit_s:
                        self._threads.remove(me)  # in the same critical section as the decision
                        return
                    self._cond.wait(self.settings.poll_s)
        finally:
            with self._cond:
                if me in self._threads:
                    self._threads.remove(me)

    def _run(self, job: dict) -> None:
        from pipeline.review.reinvert import JobTimeout

        job_id = job["id"]
        try:
            message, result_id = KINDS[job.get("kind") or "reinvert"][1](self.data_dir, job, self.store,
                                                                         self.settings, self.use_fortran)
            self.store.update_job(job_id, "done", message, reinversion_id=result_id)
        except JobTimeout as exc:
            log.warning("job %s (%s) %s", job_id, job["event_id"], exc)
            self._fail(job_id, str(exc))
        except Exception as exc:  # noqa: BLE001 - reported to the page through the job row
            log.exception("job %s (%s of %s) failed", job_id, job.get("kind"), job["event_id"])
            self._fail(job_id, f"{type(exc).__name__}: {exc}"[:500])

    def _fail(self, job_id: str, message: str) -> None:
        try:
            self.store.update_job(job_id, "error", message)
        except Exception:  # noqa: BLE001 - the restart recovery marks it later
            log.exception("could not record the failure of job %s", job_id)

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Stop taking jobs; with ``wait``, join the workers (a running job finishes first)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if wait:
            for t in list(self._threads):
                t.join(timeout)


_queues: dict = {}
_queues_lock = threading.Lock()
_settings: dict = {}


def configure(data_dir, settings: JobSettings) -> None:
    """Settings for the queue of ``data_dir`` in this process (``app.create_app``), used when
    :func:`get_queue` creates it."""
    _settings[str(Path(data_dir).resolve())] = settings


def get_queue(data_dir, settings: JobSettings | None = None) -> JobQueue:
    """This process's queue for the review database of ``data_dir``, created on first use
    (re-created after a fork) with ``settings``, else those given to :func:`configure`, else
    :meth:`JobSettings.from_env`. Creating it runs the restart recovery."""
    path = str(Path(data_dir).resolve())
    key = (path, os.getpid())
    with _queues_lock:
        q = _queues.get(key)
        if q is None:
            q = _queues[key] = JobQueue(data_dir, settings=settings or _settings.get(path) or JobSettings.from_env())
        return q


def close_queue(data_dir, wait: bool = True, timeout: float | None = None) -> None:
    """Shut down and forget this process's queue of ``data_dir`` (if any): its workers take no
    more jobs (a running one finishes first with ``wait``); the next :func:`get_queue` opens
    a new one."""
    key = (str(Path(data_dir).resolve()), os.getpid())
    with _queues_lock:
        q = _queues.pop(key, None)
    if q is not None:
        q.shutdown(wait=wait, timeout=timeout)
