"""Run one stage's chunks on a Dask client: cached chunks reused, the rest submitted.

:func:`run_stage` looks every chunk up in the stage's :class:`~pipeline.flow.chunks.ChunkCache`
(complete and intact -> reused), submits the others as one task each, and collects the
per-chunk summaries as they finish, with a progress line. A task that raises (or whose
worker dies more often than Dask's ``allowed-failures``) is recorded by the stage's
``on_failure`` as a failed chunk - rejects or unsolved rows with the error - and the batch
goes on. Results come back in plan order, whatever order the chunks finished in.
"""
from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from .chunks import ChunkCache, ChunkResult

log = logging.getLogger(__name__)


class Progress:
    """A progress bar on a terminal (tqdm: done/total, rate, ETA), plain log lines otherwise
    (at most one every ``every_s`` seconds)."""

    def __init__(self, label: str, total: int, unit: str = "chunk", every_s: float = 10.0, enabled: bool = True):
        self.label, self.total, self.unit, self.every_s = label, total, unit, every_s
        self.done, self.t0, self._last = 0, time.monotonic(), 0.0
        self._bar = None
        if enabled and total and sys.stderr.isatty():
            from tqdm import tqdm
            self._bar = tqdm(total=total, desc=label, unit=unit, dynamic_ncols=True)

    def update(self, n: int = 1, **postfix) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            if postfix:
                self._bar.set_postfix(postfix, refresh=False)
            return
        now = time.monotonic()
        if now - self._last >= self.every_s or self.done == self.total:
            self._last = now
            el = now - self.t0
            rate = self.done / el if el > 0 else 0.0
            eta = (self.total - self.done) / rate if rate > 0 else float("nan")
            extra = "".join(f", {k} {v}" for k, v in postfix.items())
            log.info("%s: %d/%d %ss (%.2f/s, ETA %.0f s%s)", self.label, self.done, self.total, self.unit,
                     rate, eta, extra)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def run_stage(client, name: str, specs: list[tuple[str, dict]], func: Callable[[dict], dict],
              on_failure: Callable[[dict, BaseException], dict], cache: ChunkCache, *,
              retry_failed: bool = False, progress: bool = True, count_key: str | None = None) -> list[ChunkResult]:
    """Run the chunks ``specs`` (``[(key, spec)]``, each spec with its ``folder`` set here)
    of stage ``name``; returns one :class:`ChunkResult` per spec, in order.

    ``count_key``: a summary field summed into the progress line (e.g. ``files``)."""
    from distributed import as_completed

    results: dict[str, ChunkResult] = {}
    todo = []
    for key, spec in specs:
        spec["folder"] = str(cache.folder(key))
        hit = cache.lookup(key, retry_failed=retry_failed)
        if hit is not None:
            results[key] = hit
        else:
            todo.append((key, spec))
    log.info("%s: %d chunks, %d reused from %s, %d to run", name, len(specs), len(specs) - len(todo),
             cache.root, len(todo))
    bar = Progress(name, len(todo), enabled=progress)
    counted = 0
    try:
        if todo:
            futures = {}
            for key, spec in todo:
                fut = client.submit(func, spec, key=f"{name}-{key}", pure=False)
                futures[fut] = (key, spec)
            for fut in as_completed(list(futures)):
                key, spec = futures.pop(fut)
                try:
                    summary = fut.result()
                except Exception as exc:  # noqa: BLE001 - recorded, the batch goes on
                    log.warning("%s: chunk %s failed: %s: %s", name, key[:12], type(exc).__name__, exc)
                    summary = on_failure(spec, exc)
                results[key] = ChunkResult(key, cache.folder(key), summary.get("status", "done"), summary)
                if count_key:
                    counted += int(summary.get(count_key, 0) or 0)
                bar.update(1, **({count_key: counted} if count_key else {}))
                fut.release()
    finally:
        bar.close()
    return [results[key] for key, _ in specs]
