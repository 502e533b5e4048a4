"""Benchmark of what a user waits for: every page loaded in a real (headless Chromium) browser.

    .venv/bin/python bench/bench_browser.py [--quick] [--loads 3] [--demo-data DIR]
                                            [--toc2me-data DIR | --toc2me-input DIR]
                                            [--pages /,/magnitudes] [--window 1400x900]

**Measured in a browser, not on the server.** For every page (``/``, ``/magnitudes``,
``/classification``, ``/strike-time``, ``/diffusion``, ``/wells``, ``/model`` and
``/event/<id>`` of an event with waveform snippets) and every data set, the app runs in a
subprocess (``app.py --host 127.0.0.1 --port P``, waitress, ``FM_DATA_DIR``) and each load
starts a **new** headless Chromium (fresh profile: cold cache, cold JavaScript).

*drawn* is the time from navigation start (the page's ``performance.timeOrigin``) to the first
moment, held for ``QUIET`` s, at which

* Dash's renderer is up (``#react-entry-point`` has content, no ``._dash-loading``),
* no callback is pending: no ``._dash-loading-callback`` (the renderer shows it while any
  callback is requested or executing), no element with ``data-dash-is-loading="true"``, and
  no ``_dash-update-component`` request in flight (counted by a ``fetch`` wrapper installed
  before the page's scripts run),
* every ``dcc.Graph`` on the page (``.dash-graph``) holds a drawn Plotly figure
  (``.js-plotly-plot .main-svg``), and every server-drawn SVG figure (an ``iframe`` of
  class ``fm-svg-figure``, e.g. the classification page's stereonets) has its document
  loaded with its SVG in it.

The check runs inside the page every 25 ms; Plotly draws on the main thread, so a figure
being drawn delays the check, never passes it early. *bytes* is the sum of Chrome's
``encodedDataLength`` (bytes on the wire, headers included, after compression) over every
response of the load (DevTools ``Network.loadingFinished`` events from the performance log);
*layout* is the part of it that is the ``_dash-layout`` response (which holds the page: see
``components/first_page.py``), *callbacks* the ``_dash-update-component`` responses. *server*
is the sum over the load's layout and callback requests of the time to the response headers
(request sent -> headers received, on loopback: the server's time, queueing included); the
layout request is sent while the scripts load and the callbacks of a page run partly in
parallel, so it can exceed what they add to *drawn*.

Data sets: ``demo`` (built once into ``.bench/browser-demo`` with ``python -m pipeline
build``, ~30 s, unless ``--demo-data``), and ``toc2me`` when ``--toc2me-data DIR`` is given or
the raw files exist (``--toc2me-input``, ``$TOC2ME_DIR`` or ``../shared/toc2me``: built once
into ``.bench/browser-toc2me`` with ``--no-pick --no-invert``, enough for every page; such
a build has no waveform snippets, so its event page is that of an event with a mechanism,
drawn without waveforms).
``--quick``: one load per page, demo only (~2 min on 2 cores). ``--ab-compression``: two
servers per data set, ``FM_COMPRESS=0`` (plain) and the default (br), loads alternating
between them page by page, so both see the same machine load. ``--ab-app DIR`` does the
same with the app of another checkout (``other``, e.g. ``git archive <base> | tar -x -C DIR``)
against this one (``this``). Where a load's time goes: ``bench/trace_load.py URL``.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BENCH_DIR = ROOT / ".bench"

PAGES = ["/", "/magnitudes", "/classification", "/strike-time", "/diffusion", "/wells", "/model", "/event/"]
QUIET = 0.5          # s the "drawn" condition must hold
LOAD_TIMEOUT = 90    # s per load

#: Counts the renderer's callback requests sent (``window.__fm.requests``) and in flight
#: (``pending``, until the answer's body is read) by wrapping ``fetch``; installs itself once
#: per page. Also used by the browser tests (``tests/pagetools.py``).
CALLBACK_COUNTER = r"""
if (!window.__fm) {
  window.__fm = {pending: 0, since: null, requests: 0};
  const orig = window.fetch;
  window.fetch = function(input, init) {
    const url = (typeof input === 'string') ? input : (input && input.url) || '';
    const cb = url.indexOf('_dash-update-component') >= 0;
    if (!cb) return orig.apply(this, arguments);
    window.__fm.pending += 1; window.__fm.requests += 1;
    const done = () => { window.__fm.pending -= 1; };
    return orig.apply(this, arguments).then(r => { r.clone().text().then(done, done); return r; },
                                            e => { done(); throw e; });
  };
}
"""

#: Installed before any page script: the callback counter and the "drawn" condition
#: (``window.__fm.since``: when it last became true, null while it is false).
PRELUDE = r"""
(() => {
""" + CALLBACK_COUNTER + r"""
  const drawn = () => {
    const root = document.getElementById('react-entry-point');
    if (!root || !root.children.length) return false;
    if (document.querySelector('._dash-loading, ._dash-loading-callback, [data-dash-is-loading="true"]'))
      return false;
    if (window.__fm.pending > 0) return false;
    for (const g of document.querySelectorAll('.dash-graph')) {
      if (!g.querySelector('.js-plotly-plot .main-svg')) return false;
    }
    for (const f of document.querySelectorAll('iframe.fm-svg-figure')) {
      const d = f.contentDocument;
      if (!d || d.readyState !== 'complete' || !d.querySelector('svg')) return false;
    }
    return true;
  };
  setInterval(() => {
    if (drawn()) { if (window.__fm.since === null) window.__fm.since = performance.now(); }
    else window.__fm.since = null;
  }, 25);
})();
"""


# -- data --------------------------------------------------------------------------------------
def toc2me_input(arg: str | None) -> Path | None:
    for cand in (arg, os.environ.get("TOC2ME_DIR"), str(ROOT.parent / "shared" / "toc2me")):
        if cand and (Path(cand) / "catalog" / "ToC2ME.xlsx").is_file():
            return Path(cand)
    return None


def built(data_dir: Path) -> bool:
    return (data_dir / "events.parquet").exists() and (data_dir / "mechanisms.parquet").exists()


def build(data_dir: Path, *args: str) -> Path:
    if not built(data_dir):
        print(f"building {data_dir} ({' '.join(args) or 'demo'}) ...", flush=True)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pipeline", "build", "--data-dir", str(data_dir), *args],
                       cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"  built in {time.perf_counter() - t0:.0f} s", flush=True)
    return data_dir


def event_with_waveforms(data_dir: Path) -> str:
    """The event with the most waveform snippets, else the first with a mechanism."""
    import duckdb

    con = duckdb.connect()
    for table, sql in (("waveforms", "SELECT event_id FROM read_parquet(?) GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"),
                       ("mechanisms", "SELECT min(event_id) FROM read_parquet(?)")):
        path = data_dir / f"{table}.parquet"
        try:
            row = con.execute(sql, [str(path / "*.parquet") if path.is_dir() else str(path)]).fetchone()
        except duckdb.Error:
            row = None
        if row and row[0] is not None:
            return str(row[0])
    raise SystemExit(f"no event in {data_dir}")


# -- server and browser ------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``app.py`` in a subprocess on a free port, for one data folder."""

    def __init__(self, data_dir: Path, env: dict | None = None, root: Path = ROOT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, str(root / "app.py"), "--host", "127.0.0.1", "--port", str(self.port)],
            cwd=root, env={**os.environ, "FM_DATA_DIR": str(data_dir), **(env or {})},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.time() + 60
        while time.time() < end:
            try:
                urllib.request.urlopen(self.url + "/_dash-layout", timeout=2).read()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit("app.py exited at start")
                time.sleep(0.3)
        self.close()
        raise SystemExit("app.py did not answer within 60 s")

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def new_browser(window: tuple[int, int]):
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--disable-extensions", "--no-first-run", f"--window-size={window[0]},{window[1]}"):
        options.add_argument(arg)
    if "DASH_TEST_CHROMEPATH" in os.environ:
        options.binary_location = os.environ["DASH_TEST_CHROMEPATH"]
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "SEVERE"})
    driver = webdriver.Chrome(options=options)
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setCacheDisabled", {"cacheDisabled": True})
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PRELUDE})
    return driver


def network_totals(driver) -> dict:
    """Bytes on the wire (all responses; the layout's and the callbacks' responses) and the
    server time (s) of the layout request and the callbacks: since issue 12's stop 19 the
    layout request holds the page (components.first_page), so the page's data and server
    work are there, not in a router callback."""
    urls, ttfb, total, callbacks, layout = {}, {}, 0, 0, 0
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        method, p = msg.get("method"), msg.get("params", {})
        if method == "Network.responseReceived":
            urls[p["requestId"]] = p["response"]["url"]
            timing = p["response"].get("timing") or {}
            if "receiveHeadersEnd" in timing and "sendStart" in timing:
                ttfb[p["requestId"]] = (timing["receiveHeadersEnd"] - timing["sendStart"]) / 1e3
        elif method == "Network.loadingFinished":
            # only responses that came over HTTP: an iframe's srcdoc document (the classification
            # stereonets) also reports its length here, without a response, though it never
            # crosses the network (it came inside a callback answer, counted there)
            if not urls.get(p["requestId"], "").startswith("http"):
                continue
            n = int(p.get("encodedDataLength") or 0)
            total += n
            if "_dash-update-component" in urls.get(p["requestId"], ""):
                callbacks += n
            elif _is_layout(urls.get(p["requestId"], "")):
                layout += n
    server = sum(t for rid, t in ttfb.items()
                 if "_dash-update-component" in urls.get(rid, "") or _is_layout(urls.get(rid, "")))
    n_cb = sum(1 for u in urls.values() if "_dash-update-component" in u)
    return {"bytes": total, "callback_bytes": callbacks, "layout_bytes": layout, "server_s": server,
            "n_callbacks": n_cb}


def _is_layout(url: str) -> bool:
    return urlsplit(url).path.endswith("/_dash-layout")


def load_once(url: str, window: tuple[int, int]) -> dict:
    """One cold load of ``url``: seconds to drawn, bytes, callback server time."""
    driver = new_browser(window)
    try:
        driver.get(url)
        end = time.time() + LOAD_TIMEOUT
        while True:
            state = driver.execute_script(
                "return window.__fm ? [window.__fm.since, performance.now(), window.__fm.pending] : null")
            if state and state[0] is not None and state[1] - state[0] >= QUIET * 1e3:
                drawn = state[0] / 1e3
                break
            if time.time() > end:
                raise RuntimeError(f"{url} not drawn within {LOAD_TIMEOUT} s (state {state})")
            time.sleep(0.05)
        time.sleep(0.2)  # let the last loadingFinished events arrive
        severe = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        return {"drawn_s": drawn, **network_totals(driver), "console_errors": len(severe)}
    finally:
        driver.quit()


# -- report ------------------------------------------------------------------------------------
def fmt_bytes(n: float) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"


def summarise(runs: list[dict]) -> dict:
    drawn = [r["drawn_s"] for r in runs]
    return {
        "drawn_median_s": statistics.median(drawn), "drawn_min_s": min(drawn), "drawn_max_s": max(drawn),
        "bytes": statistics.median(r["bytes"] for r in runs),
        "callback_bytes": statistics.median(r["callback_bytes"] for r in runs),
        "layout_bytes": statistics.median(r["layout_bytes"] for r in runs),
        "server_s": statistics.median(r["server_s"] for r in runs),
        "n_callbacks": max(r["n_callbacks"] for r in runs),
        "console_errors": max(r["console_errors"] for r in runs),
        "loads": len(runs),
    }


def print_table(results: dict, loads: int):
    print(f"\nIN A BROWSER (headless Chromium, cold browser per load, median of {loads} load(s)): "
          "navigation -> every figure drawn, no callback pending")
    head = f"{'page':<22} {'dataset':<12} {'drawn s: median [min-max]':<27} {'bytes (all)':>12} " \
           f"{'layout':>9} {'callbacks':>11} {'n cb':>5} {'server s':>9}"
    print(head)
    print("-" * len(head))
    for (page, dataset), s in results.items():
        rng = f"{s['drawn_median_s']:.2f} [{s['drawn_min_s']:.2f}-{s['drawn_max_s']:.2f}]"
        err = "  console errors!" if s["console_errors"] else ""
        print(f"{page:<22} {dataset:<12} {rng:<27} {fmt_bytes(s['bytes']):>12} "
              f"{fmt_bytes(s['layout_bytes']):>9} {fmt_bytes(s['callback_bytes']):>11} {s['n_callbacks']:>5} {s['server_s']:>9.2f}{err}")
    print("bytes: on the wire (encodedDataLength, after any compression); layout: the _dash-layout part "
          "(it holds the page); callbacks: the _dash-update-component part; server: sum of the layout's "
          "and the callbacks' request->headers times (loopback), the server-side share")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1 load per page, demo only")
    p.add_argument("--loads", type=int, default=3, help="cold loads per page (median)")
    p.add_argument("--demo-data", type=Path, help="a demo data folder (default: built into .bench/)")
    p.add_argument("--toc2me-data", type=Path, help="a ToC2ME data folder")
    p.add_argument("--toc2me-input", help="raw ToC2ME files to build one from")
    p.add_argument("--no-toc2me", action="store_true")
    p.add_argument("--no-demo", action="store_true", help="ToC2ME only (needs --toc2me-data or the raw files)")
    p.add_argument("--pages", help="comma-separated page paths (default: all; '/event/' = an event)")
    p.add_argument("--window", default="1400x900", help="browser window WxH")
    p.add_argument("--ab-compression", action="store_true",
                   help="compare FM_COMPRESS=0 and compressed servers, loads interleaved")
    p.add_argument("--ab-app", type=Path, metavar="DIR",
                   help="compare with the app of another checkout DIR (e.g. `git archive` of a base commit): "
                        "two servers per data set, loads alternating between them page by page")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args(argv)
    # a terminated run still stops its servers and browsers (the finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    loads = 1 if args.quick else args.loads
    window = tuple(int(v) for v in args.window.split("x"))
    pages = args.pages.split(",") if args.pages else PAGES

    datasets = {} if args.no_demo and not args.quick else {"demo": args.demo_data or build(BENCH_DIR / "browser-demo")}
    if not args.quick and not args.no_toc2me:
        if args.toc2me_data:
            datasets["toc2me"] = args.toc2me_data
        elif (src := toc2me_input(args.toc2me_input)) is not None:
            datasets["toc2me"] = build(BENCH_DIR / "browser-toc2me", "--source", "toc2me", "--input",
                                       str(src), "--no-pick", "--no-invert")
        else:
            print("toc2me: skipped (no --toc2me-data and no raw files found)")

    if args.ab_compression:
        variants = {"plain": ({"FM_COMPRESS": "0"}, ROOT), "br": ({"FM_COMPRESS": "1"}, ROOT)}
    elif args.ab_app:
        variants = {"other": ({}, args.ab_app.resolve()), "this": ({}, ROOT)}
    else:
        variants = {"": ({}, ROOT)}
    results = {}
    for name, data_dir in datasets.items():
        event = event_with_waveforms(Path(data_dir))
        servers = {}
        try:
            for v, (env, root) in variants.items():
                servers[v] = Server(Path(data_dir), env, root)
            for page in pages:
                path = page + event if page == "/event/" else page
                runs = {v: [] for v in variants}
                for i in range(loads):
                    # ABBA: the variant loaded second in a pair measured slower, so the order
                    # alternates each round (use an even --loads for a balanced A/B)
                    for v, server in (list(servers.items())[::-1] if i % 2 else servers.items()):
                        runs[v].append(load_once(server.url + path, window))
                for v in variants:
                    s = summarise(runs[v])
                    label = f"{name} {v}".strip()
                    results[(path if page != "/event/" else "/event/<id>", label)] = s
                    print(f"  {label:<12} {path:<32} drawn {s['drawn_median_s']:.2f} s, "
                          f"{fmt_bytes(s['bytes'])} ({fmt_bytes(s['callback_bytes'])} callbacks)", flush=True)
        finally:
            for server in servers.values():
                server.close()
    print_table(dict(sorted(results.items(), key=lambda kv: (pages.index(kv[0][0]) if kv[0][0] in pages
                                                               else len(pages), kv[0][1]))), loads)
    if args.json:
        args.json.write_text(json.dumps({f"{k[1]} {k[0]}": v for k, v in results.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
