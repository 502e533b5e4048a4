"""Per-page server-side cost on a large catalogue: time and peak extra memory per request.

    .venv/bin/python bench/bench_pages.py [--data-dir DIR] [--events 1000000] [--reps 2]

Calls each page's real Dash callbacks in-process (the function the ``@dash.callback``
decorator wraps, with the inputs the browser sends on a first load: no filter, the page's
default choices), i.e. the DuckDB queries, the analysis and the figure, plus
``plotly.io.json.to_json_plotly`` of the outputs (what Dash does before answering). Without
``--data-dir`` the 1,000,000-event synthetic catalogue of ``bench_map.synthetic_dir``
(``.bench/synthetic-1000000-1``) is used (built once, ~15 s).

Reported per request: wall time of the first call and the median over ``--reps`` runs
(pages that cache a selection answer a repeat from the cache); peak extra resident memory
(RSS sampled every 2 ms by a thread, minus the RSS just before the call; ``malloc_trim``
before each call returns freed heap to the OS so an earlier request's high-water mark does
not hide this one's) of the first call, which includes the growth of DuckDB's buffer pool
that the process keeps for later queries (bounded by ``FM_DUCKDB_MEMORY``, default 1 GB),
and the largest of the repeats; the size of the JSON answer. The bound issue 10 asks for:
<= 200 MB extra per request. All requests run in one process, one after the other, unless
``--fresh``: then each runs in a new process of its own, so that its first call is a fresh
app process's first request (the worst case: no pool or allocator grown by an earlier one). Timings depend on the machine's load: the script prints the
load average with the results. The last line is one JSON object ``{"data_dir": ...,
"query": ..., "pages": {name: {"first_ms", "ms", "first_peak_mb", "peak_mb",
"response_kb"}}}``.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from queries import map as mapq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

_PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


def _trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc: the delta may then be an underestimate
        pass


class PeakRSS:
    """Context manager: ``extra`` = peak RSS during the block minus RSS at its start (bytes)."""

    def __enter__(self):
        _trim()
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())
        self.extra = self.peak - self.base
        return False


def _raw(cb):
    """The undecorated function of a ``@dash.callback`` (Dash keeps it as ``__wrapped__``)."""
    return getattr(cb, "__wrapped__", cb)


def requests_of(app, q: str = "") -> dict:
    """{name: zero-argument callable} — one first-load request per page callback, with the
    filter query string ``q`` (the bar's ``filters`` store; ``""`` = no filter)."""
    import importlib

    from plotly.io.json import to_json_plotly

    from components.data import get_provider
    from components.filter_bar import download_href
    from components.filters import Filters
    from queries import model as mq

    with app.server.test_request_context("/"):
        app.server.test_client().get("/")
    m = {n: importlib.import_module(f"pages.{n}") for n in
         ("map", "classification", "strike_time", "diffusion", "magnitudes", "wells", "model")}
    p = get_provider()
    clusters = [c for c in p.filter_options()["clusters"] if c != "(none)"]
    dset = m["diffusion"].default_set(m["diffusion"].set_options(p))
    mag_state = m["magnitudes"].page_query(m["magnitudes"].page_state(""))
    model_state = m["model"].page_query(m["model"].page_state(""))

    def j(fn):
        return lambda: to_json_plotly(fn())

    def diffusion_analyse(set_value=dset):
        return _raw(m["diffusion"].analyse)(q, set_value, None, "signed_epicentral", None, 90, None, None, None)

    def diffusion_player(set_value=dset):
        store = diffusion_analyse(set_value)[4]
        return _raw(m["diffusion"].player)(store, store["range"][1])

    big = f"cluster:{clusters[0]}" if clusters else dset  # a whole cluster: the largest set
    client = app.server.test_client()

    def route(url):
        """GET a download route, the body read and dropped (as waitress sends it: from the
        spooled file): the size of the CSV."""
        r = client.get(url)
        if r.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {r.status_code}")
        n = sum(len(chunk) for chunk in r.response)
        r.close()
        return n

    return {
        "map.update_map": j(lambda: _raw(m["map"].update_map)(q, None, None)),
        # the table callback reads dash.ctx (not available here): its query and row building
        "map.update_table": lambda: to_json_plotly(m["map"]._rows(mapq.mechanisms_page(p, Filters.from_query(q), 0, m["map"].PAGE_SIZE), q)),
        "classification.update_summary": j(lambda: _raw(m["classification"].update_summary)(q, None)),
        "classification.update_stereonets": j(lambda: _raw(m["classification"].update_stereonets)(q, None)),
        "classification.update_map": j(lambda: _raw(m["classification"].update_map)(q, None, 1.5)),
        # the page's "Download CSV" link: the spooled route (the answer is a file, not JSON)
        "classification.download": lambda: route(m["classification"].download_link(q, None, "?" + q)[0]),
        # the filter bar's "Download CSV" (map page): the filtered mechanisms / events
        "map.download[mechanisms]": lambda: route(download_href(Filters.from_query(q).replace(table="mechanisms"))),
        "map.download[events]": lambda: route(download_href(Filters.from_query(q).replace(table="events"))),
        "strike_time.update": j(lambda: _raw(m["strike_time"].update)(q, clusters[0] if clusters else None)),
        "diffusion.analyse": j(diffusion_analyse),
        "diffusion.player": j(diffusion_player),
        "diffusion.analyse[cluster]": j(lambda: diffusion_analyse(big)),
        "diffusion.player[cluster]": j(lambda: diffusion_player(big)),
        "magnitudes.update_time": j(lambda: _raw(m["magnitudes"].update_time)(q)),
        "magnitudes.update_fmd": j(lambda: _raw(m["magnitudes"].update_fmd)(q, mag_state)),
        "wells.update": j(lambda: _raw(m["wells"].update)(q)),
        # the callback reads dash.ctx (which page): its query, the first page of the table
        "model.update_agreement": lambda: to_json_plotly(mq.agreement_page(
            p, Filters.from_query(q), m["model"].page_state(model_state)["picker"], 0, m["model"].AGREE_PAGE_SIZE)[0].to_dict("records")),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--query", default="mech=all",
                    help="filter query string of every request (default mech=all: every mechanism row, "
                         "the largest selection; '' = the default population)")
    ap.add_argument("--only", help="comma-separated request names (prefixes) to run")
    ap.add_argument("--exact", action="store_true", help="--only names are exact names, not prefixes")
    ap.add_argument("--fresh", action="store_true",
                    help="each request in its own new process (its first call is a fresh app process's "
                         "first request: DuckDB's buffer pool and the allocator start empty)")
    args = ap.parse_args(argv)
    if args.data_dir:
        data_dir = Path(args.data_dir)
    else:
        from bench_map import synthetic_dir
        data_dir = synthetic_dir(args.events)
    from app import create_app

    app = create_app(data_dir)
    reqs = requests_of(app, args.query)
    if args.only:
        keep = tuple(args.only.split(","))
        reqs = {k: v for k, v in reqs.items() if (k in keep if args.exact else k.startswith(keep))}
    if args.fresh:
        return _fresh(data_dir, args, list(reqs))
    out = {}
    with app.server.test_request_context("/"):
        for name, fn in reqs.items():
            times, peaks, err = [], [], None
            for _ in range(max(1, args.reps)):
                try:
                    with PeakRSS() as mem:
                        t0 = time.perf_counter()
                        body = fn()
                        times.append(time.perf_counter() - t0)
                except Exception as exc:  # noqa: BLE001 - reported, the others still run
                    err = f"{type(exc).__name__}: {exc}"[:200]
                    break
                peaks.append(mem.extra)
            if err:
                out[name] = {"error": err}
                print(f"{name:38s} ERROR {err}", flush=True)
                continue
            first, ms = 1e3 * times[0], 1e3 * statistics.median(times)
            mb_first, mb = peaks[0] / 2**20, max(peaks[1:] or peaks) / 2**20
            kb = len(body) / 1024 if isinstance(body, (str, bytes)) else body / 1024 if isinstance(body, int) else None
            out[name] = {"first_ms": round(first), "ms": round(ms), "first_peak_mb": round(mb_first),
                         "peak_mb": round(mb), "response_kb": None if kb is None else round(kb)}
            print(f"{name:34s} first {first:6.0f} ms +{mb_first:4.0f} MB | median {ms:6.0f} ms, "
                  f"repeat peak +{mb:4.0f} MB" + (f" | {kb:6.0f} kB" if kb is not None else ""), flush=True)
    print("load average:", open("/proc/loadavg").read().split()[:3])
    print(json.dumps({"data_dir": str(data_dir), "query": args.query, "pages": out}))
    return 0


def _fresh(data_dir: Path, args, names: list[str]) -> int:
    """``--fresh``: run every request of ``names`` in a child process of its own (this
    script, ``--only NAME --exact``), one after the other; their results merged."""
    import subprocess

    out = {}
    for name in names:
        cmd = [sys.executable, __file__, "--data-dir", str(data_dir), "--reps", str(args.reps),
               "--query", args.query, "--only", name, "--exact"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        lines = run.stdout.strip().splitlines()
        if run.returncode or not lines:
            out[name] = {"error": (run.stderr or run.stdout).strip()[-200:]}
            print(f"{name:38s} ERROR {out[name]['error']}", flush=True)
            continue
        print(lines[0], flush=True)
        out.update(json.loads(lines[-1])["pages"])
    print("load average:", open("/proc/loadavg").read().split()[:3])
    print(json.dumps({"data_dir": str(data_dir), "query": args.query, "fresh": True, "pages": out}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
