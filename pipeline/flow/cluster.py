"""The Dask client a build runs on.

* default: a ``LocalCluster`` of single-threaded worker **processes**, one per core
  (``--workers N`` sizes it): the pickers and SKHASH are CPU-bound Python/TensorFlow/Fortran,
  so processes, not threads;
* ``--scheduler tcp://HOST:8786`` (or ``$FM_DASK_SCHEDULER``): an existing cluster. Its
  workers must have this project importable (installed, or started from the repository
  with it on ``PYTHONPATH``) and see the input and data folders at the same paths (a shared
  file system): tasks get paths, not data.

Every worker process runs with BLAS/OpenMP/TensorFlow pinned to one thread
(:data:`WORKER_ENV`): with two processes on two cores, more threads only fight (pure-Python
SKHASH ran 1.65 s/event with default threads vs 0.75 s pinned, docs/stack.md).
"""
from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger(__name__)

SCHEDULER_ENV = "FM_DASK_SCHEDULER"

#: environment of LocalCluster worker processes (one compute thread each)
WORKER_ENV = {
    "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
    "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "PICKER_THREADS": "1",
    "TF_CPP_MIN_LOG_LEVEL": "2",
}


def default_workers() -> int:
    """Worker processes for a LocalCluster: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None, *, dashboard: bool = True,
                quiet: bool = False):
    """A ``distributed.Client``: connected to ``scheduler`` (or ``$FM_DASK_SCHEDULER``) when
    given, else to a new LocalCluster of ``workers`` processes (default: one per core),
    closed on exit. Logs the dashboard link."""
    from distributed import Client, LocalCluster

    if not log.isEnabledFor(logging.DEBUG):  # Dask's per-worker INFO lines drown the build's own
        for name in ("distributed", "bokeh", "tornado"):
            logging.getLogger(name).setLevel(logging.WARNING)
    scheduler = scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler:
        client = Client(scheduler, timeout="30s")
        cluster = None
        where = f"scheduler {scheduler} ({len(client.scheduler_info().get('workers', {}))} workers)"
    else:
        n = int(workers or default_workers())
        # the workers' environment is fixed when they start: set it for the spawned processes
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               dashboard_address=":8787" if dashboard else None,
                               env=dict(WORKER_ENV), silence_logs=logging.ERROR)
        client = Client(cluster)
        where = f"LocalCluster of {n} worker process{'es' if n != 1 else ''}"
    link = client.dashboard_link if dashboard else None
    if not quiet:
        log.info("Dask: %s%s", where, f"; dashboard {link}" if link else "")
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def n_workers(client) -> int:
    """Workers the client's scheduler has now (at least 1)."""
    return max(1, len(client.scheduler_info().get("workers", {})))
