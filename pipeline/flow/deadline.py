"""Time limits for one call inside a worker thread (reading a file, picking an event).

Dask runs tasks in worker threads, where ``signal.alarm`` cannot be used. :func:`time_limit`
instead registers the calling thread with one watchdog thread per process; when the limit
passes, the watchdog raises :class:`TimeLimitExceeded` inside the calling thread
(``PyThreadState_SetAsyncExc``). That interrupts any loop running Python bytecode - e.g.
ObsPy's ``_normalize_longitude`` spinning for ever on a longitude of 1e30 - at its next
bytecode; a call blocked inside C code is interrupted when it returns to Python. The
chunk-level guard for anything longer is the stage's task failure handling
(:mod:`pipeline.flow.runner`).
"""
from __future__ import annotations

import contextlib
import ctypes
import threading
import time


class TimeLimitExceeded(Exception):
    """A call ran past its time limit (raised inside the call's thread)."""


class _Watchdog:
    def __init__(self):
        self._lock = threading.Lock()
        self._deadlines: dict[int, tuple[float, int]] = {}   # thread id -> (deadline, token)
        self._token = 0
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()

    def _ensure_thread(self):
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="fm-deadline", daemon=True)
            self._thread.start()

    def arm(self, seconds: float) -> int:
        with self._lock:
            self._token += 1
            self._deadlines[threading.get_ident()] = (time.monotonic() + seconds, self._token)
            self._ensure_thread()
            self._wake.set()
            return self._token

    def disarm(self, token: int) -> None:
        with self._lock:
            tid = threading.get_ident()
            if self._deadlines.get(tid, (0, None))[1] == token:
                del self._deadlines[tid]
            else:
                # it fired as the block ended: cancel the exception if it is still pending,
                # so it cannot surface later in unrelated code
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)

    def _loop(self):
        while True:
            with self._lock:
                now = time.monotonic()
                due = [tid for tid, (t, _) in self._deadlines.items() if t <= now]
                for tid in due:
                    del self._deadlines[tid]
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid),
                                                               ctypes.py_object(TimeLimitExceeded))
                nxt = min((t for t, _ in self._deadlines.values()), default=now + 1.0)
            self._wake.wait(timeout=max(0.01, min(1.0, nxt - time.monotonic())))
            self._wake.clear()


_watchdog = _Watchdog()


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise :class:`TimeLimitExceeded` in this thread if the block runs over ``seconds``
    (None or <= 0: no limit)."""
    if not seconds or seconds <= 0:
        yield
        return
    token = _watchdog.arm(float(seconds))
    try:
        yield
    finally:
        _watchdog.disarm(token)
