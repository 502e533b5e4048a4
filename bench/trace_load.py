"""Where a cold page load's time goes: one load of a URL in headless Chromium, broken down.

    .venv/bin/python bench/trace_load.py URL [--window 1400x900] [--json FILE]

Complements :mod:`bench.bench_browser` (which says *how long* a user waits) by saying *on
what*: one cold load (new browser, cache off, as there) with Chrome's timeline trace
(``devtools.timeline``/``v8`` categories through chromedriver's performance log) and the
page instrumented before its scripts run. Printed, in ms from navigation start:

* every request: start, first byte, end, bytes on the wire (``_dash-layout``,
  ``_dash-dependencies``, each script, each ``_dash-update-component`` with its outputs);
* the main thread: per script URL, the time spent compiling and evaluating it
  (``EvaluateScript``/``v8.compile`` trace events), then the rest (callbacks' JSON, React
  renders, Plotly) as ``FunctionCall`` time, layout and paint;
* the page's milestones: renderer up, first/last callback request, each Plotly draw
  (``Plotly.react``/``newPlot`` calls, wrapped when the async plotly chunk arrives:
  start, duration, graph id), and *drawn* as :mod:`bench.bench_browser` defines it.

The ``drawn`` condition and the callback counter are ``bench_browser.PRELUDE``; this script
adds its own recorder next to it.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_browser import LOAD_TIMEOUT, QUIET  # noqa: E402

TRACE_CATEGORIES = "devtools.timeline,v8,blink.user_timing,disabled-by-default-devtools.timeline"

#: Records callback requests (outputs, start, end) and Plotly draws (start, duration, graph).
RECORDER = r"""
(() => {
  const rec = window.__fmrec = {callbacks: [], draws: [], marks: {}};
  const orig = window.fetch;
  window.fetch = function(input, init) {
    const url = (typeof input === 'string') ? input : (input && input.url) || '';
    if (url.indexOf('_dash-update-component') < 0) return orig.apply(this, arguments);
    let outputs = '?';
    try { outputs = JSON.parse(init.body).output; } catch (e) {}
    const item = {outputs: String(outputs).slice(0, 160), start: performance.now()};
    rec.callbacks.push(item);
    return orig.apply(this, arguments).then(r => {
      item.headers = performance.now();
      r.clone().text().then(t => { item.end = performance.now(); item.bytes = t.length; });
      return r;
    });
  };
  const wrap = () => {
    const P = window.Plotly;  // app.py's loader puts a placeholder there until plotly.js has run
    if (!P || typeof P.newPlot !== 'function') return false;
    if (P.__fmwrapped) return true;
    for (const name of ['newPlot', 'react', 'relayout', 'restyle', 'redraw', 'update']) {
      const f = P[name];
      if (typeof f !== 'function') continue;
      P[name] = function(gd) {
        const t0 = performance.now();
        const id = (gd && gd.id) || (gd && gd.parentElement && gd.parentElement.id) || '?';
        const out = f.apply(this, arguments);
        const item = {fn: name, graph: String(id), start: t0, sync_ms: performance.now() - t0};
        rec.draws.push(item);
        if (out && out.then) out.then(() => { item.done = performance.now(); });
        return out;
      };
    }
    if (P.Plots && typeof P.Plots.resize === 'function') {  // a container resize redraws the graph
      const resize = P.Plots.resize;
      P.Plots.resize = function(gd) {
        const t0 = performance.now();
        const out = resize.apply(this, arguments);
        const item = {fn: 'resize', graph: String((gd && gd.id) || '?'), start: t0, sync_ms: performance.now() - t0};
        rec.draws.push(item);
        if (out && out.then) out.then(() => { item.done = performance.now(); });
        return out;
      };
    }
    P.__fmwrapped = true;
    rec.marks.plotly_defined = performance.now();
    return true;
  };
  // wrap Plotly the moment plotly.min.js assigns it (no poll: its evaluation is one long task)
  let current;
  Object.defineProperty(window, 'Plotly', {configurable: true, enumerable: true,
                                           get() { return current; }, set(v) { current = v; wrap(); }});
  const mo = new MutationObserver(() => {
    if (rec.marks.renderer_up === undefined) {
      const root = document.getElementById('react-entry-point');
      if (root && root.children.length && !document.querySelector('._dash-loading')) rec.marks.renderer_up = performance.now();
    }
    if (rec.marks.page_content === undefined) {
      const pc = document.getElementById('_pages_content');
      if (pc && pc.children.length) rec.marks.page_content = performance.now();
    }
    // a graph waiting on its lazy chunk (React Suspense's fallback): when it shows and goes
    for (const g of document.querySelectorAll('.dash-graph--pending')) {
      const key = 'pending:' + (g.id || '?');
      if (rec.marks[key] === undefined) rec.marks[key] = performance.now();
    }
    for (const g of document.querySelectorAll('.dash-graph')) {
      const pending = 'pending:' + (g.id || '?');
      if (rec.marks[pending] !== undefined && rec.marks['mounted:' + (g.id || '?')] === undefined &&
          !g.classList.contains('dash-graph--pending')) rec.marks['mounted:' + (g.id || '?')] = performance.now();
      const key = 'svg:' + (g.id || '?');
      if (rec.marks[key] === undefined && g.querySelector('.js-plotly-plot .main-svg')) rec.marks[key] = performance.now();
    }
  });
  document.addEventListener('DOMContentLoaded', () => {
    rec.marks.dom_content_loaded = performance.now();
    mo.observe(document.body, {childList: true, subtree: true});
  });
})();
"""


def new_traced_browser(window):
    """A cold browser as :func:`bench.bench_browser.new_browser` makes it, plus the recorder."""
    from bench.bench_browser import new_browser

    driver = new_browser(window)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORDER})
    return driver


async def _cdp_load(ws_url: str, url: str) -> tuple[dict, list[dict]]:
    """Navigate to ``url`` over the page's DevTools socket with tracing on; wait for drawn;
    return (the page's recorded state, the trace events). chromedriver's own trace logging
    returns nothing with this Chromium, so the trace is taken here."""
    import trio
    from trio_websocket import open_websocket_url

    async with open_websocket_url(ws_url, max_message_size=1 << 30) as ws:
        counter = iter(range(1, 1 << 30))
        events: list[dict] = []

        async def call(method, **params):
            i = next(counter)
            await ws.send_message(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                m = json.loads(await ws.get_message())
                if m.get("id") == i:
                    if "error" in m:
                        raise RuntimeError(f"{method}: {m['error']}")
                    return m.get("result", {})
                events.append(m)

        await call("Tracing.start", categories=TRACE_CATEGORIES, transferMode="ReportEvents")
        await call("Page.navigate", url=url)
        end = time.time() + LOAD_TIMEOUT
        while True:
            r = await call("Runtime.evaluate", returnByValue=True,
                           expression="window.__fm ? [window.__fm.since, performance.now()] : null")
            state = r.get("result", {}).get("value")
            if state and state[0] is not None and state[1] - state[0] >= QUIET * 1e3:
                break
            if time.time() > end:
                raise RuntimeError(f"{url} not drawn within {LOAD_TIMEOUT} s")
            await trio.sleep(0.05)
        r = await call("Runtime.evaluate", returnByValue=True,
                       expression="({fm: window.__fm, rec: window.__fmrec})")
        page = r["result"]["value"]
        await call("Tracing.end")
        trace = []
        while not any(m.get("method") == "Tracing.tracingComplete" for m in events[-1:]):
            m = json.loads(await ws.get_message())
            events.append(m)
            if m.get("method") == "Tracing.dataCollected":
                trace.extend(m["params"]["value"])
        return page, trace


def short(url: str) -> str:
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0]
    return "/" + path.replace("_dash-component-suites/", "").replace("dash/", "")


def trace_once(url: str, window=(1400, 900), raw: Path | None = None) -> dict:
    """One cold load of ``url``: requests, main-thread time per script, page milestones."""
    import trio

    driver = new_traced_browser(window)
    try:
        addr = driver.capabilities["goog:chromeOptions"]["debuggerAddress"]
        targets = json.load(urllib.request.urlopen(f"http://{addr}/json"))
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        page, trace = trio.run(_cdp_load, ws_url, url)
        if raw is not None:
            Path(raw).write_text(json.dumps({"traceEvents": trace}))
        time.sleep(0.3)
        logs = [json.loads(e["message"])["message"] for e in driver.get_log("performance")]
    finally:
        driver.quit()
    return analyse(page, logs, trace)


def analyse(page: dict, logs: list[dict], trace: list[dict]) -> dict:
    requests: dict[str, dict] = {}
    nav_ts = None  # monotonic seconds of the document request
    for m in logs:
        method, p = m.get("method"), m.get("params", {})
        if method == "Network.requestWillBeSent":
            r = requests.setdefault(p["requestId"], {})
            r.update(url=p["request"]["url"], start=p["timestamp"])
            if p.get("type") == "Document" and nav_ts is None:
                nav_ts = p["timestamp"]
        elif method == "Network.responseReceived":
            r = requests.setdefault(p["requestId"], {})
            r["headers"] = p["timestamp"]
            r["encoding"] = (p["response"].get("headers") or {}).get("content-encoding", "")
            r["cache"] = (p["response"].get("headers") or {}).get("cache-control", "")
        elif method == "Network.loadingFinished":
            r = requests.setdefault(p["requestId"], {})
            r.update(end=p["timestamp"], bytes=int(p.get("encodedDataLength") or 0))
    if nav_ts is None:
        raise RuntimeError("no document request in the performance log")
    ms = lambda ts: (ts - nav_ts) * 1e3  # noqa: E731 - network timestamps (s) -> ms from navigation
    tms = lambda ts: ts / 1e3 - nav_ts * 1e3  # noqa: E731 - trace ts (us) -> ms from navigation

    reqs = sorted(({"url": short(r["url"]), "start": ms(r["start"]), "first_byte": ms(r.get("headers", r["start"])),
                    "end": ms(r.get("end", r["start"])), "bytes": r.get("bytes", 0), "encoding": r.get("encoding", ""),
                    "cache": r.get("cache", "")}
                   for r in requests.values() if "url" in r and not r["url"].startswith("data:")),
                  key=lambda r: r["start"])

    # main thread: the renderer's main thread is the one with the most EvaluateScript events
    by_thread = defaultdict(int)
    for e in trace:
        if e.get("name") == "EvaluateScript":
            by_thread[(e.get("pid"), e.get("tid"))] += 1
    main = max(by_thread, key=by_thread.get) if by_thread else None
    per_script = defaultdict(lambda: {"compile": 0.0, "evaluate": 0.0, "first": None})
    totals = defaultdict(float)
    tops = []
    for e in trace:
        if (e.get("pid"), e.get("tid")) != main or e.get("ph") != "X":
            continue
        name, dur = e.get("name"), e.get("dur", 0) / 1e3
        data = (e.get("args") or {}).get("data") or {}
        if name in ("EvaluateScript", "v8.compile", "v8.compileModule"):
            u = data.get("url") or (e.get("args") or {}).get("fileName") or ""
            s = per_script[short(u) if u else "(inline)"]
            s["compile" if name.startswith("v8.compile") else "evaluate"] += dur
            s["first"] = tms(e["ts"]) if s["first"] is None else min(s["first"], tms(e["ts"]))
        if name == "RunTask":
            tops.append((tms(e["ts"]), dur))
        if name in ("FunctionCall", "EvaluateScript", "Layout", "UpdateLayoutTree", "Paint", "ParseHTML",
                    "ParseAuthorStyleSheet", "MajorGC", "MinorGC", "V8.GC_SCAVENGER", "XHRReadyStateChange",
                    "TimerFire", "FireAnimationFrame", "RunMicrotasks", "v8.compile", "PrePaint", "Layerize",
                    "UpdateLayer", "Commit"):
            totals[name] += dur
    busy = sum(d for _, d in tops)
    return {"requests": reqs, "scripts": dict(per_script), "main_thread_ms": dict(totals), "busy_ms": busy,
            "long_tasks": sorted(((round(t), round(d)) for t, d in tops if d >= 50)),
            "callbacks": page["rec"]["callbacks"], "draws": page["rec"]["draws"], "marks": page["rec"]["marks"],
            "drawn_ms": page["fm"]["since"]}


def report(r: dict) -> str:
    out = [f"drawn at {r['drawn_ms']:.0f} ms; main thread busy {r['busy_ms']:.0f} ms (RunTask total)", "",
           f"{'request':<58} {'start':>7} {'1st B':>7} {'end':>7} {'bytes':>9} enc  cache"]
    for q in r["requests"]:
        out.append(f"{q['url'][:58]:<58} {q['start']:7.0f} {q['first_byte']:7.0f} {q['end']:7.0f} "
                   f"{q['bytes']:9,d} {q['encoding'][:4]:<4} {q['cache'][:30]}")
    out += ["", f"{'script (main thread)':<58} {'first':>7} {'compile':>8} {'eval':>8}"]
    for u, s in sorted(r["scripts"].items(), key=lambda kv: kv[1]["first"] or 0):
        out.append(f"{u[:58]:<58} {s['first'] or 0:7.0f} {s['compile']:8.0f} {s['evaluate']:8.0f}")
    out += ["", "main thread by event (ms, nested events overlap): " +
            ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["main_thread_ms"].items(), key=lambda kv: -kv[1]))]
    out += ["long tasks (start ms, duration ms): " + ", ".join(f"{t}+{d}" for t, d in r["long_tasks"])]
    out += ["", "callbacks (ms): start -> headers -> end  outputs"]
    for c in r["callbacks"]:
        out.append(f"  {c['start']:7.0f} -> {c.get('headers', 0):7.0f} -> {c.get('end', 0):7.0f} "
                   f"{c.get('bytes', 0):>9,d} B  {c['outputs'][:100]}")
    out += ["", "Plotly calls (ms): start, synchronous part, promise done, graph"]
    for d in r["draws"]:
        out.append(f"  {d['start']:7.0f} {d['sync_ms']:7.0f} {d.get('done', 0):7.0f}  {d['fn']:<8} {d['graph']}")
    out += ["", "marks (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["marks"].items(), key=lambda kv: kv[1]))]
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("url")
    p.add_argument("--window", default="1400x900")
    p.add_argument("--json", type=Path, help="also write the breakdown here")
    p.add_argument("--raw", type=Path, help="also write the Chrome trace here (opens in chrome://tracing or Perfetto)")
    args = p.parse_args(argv)
    r = trace_once(args.url, tuple(int(v) for v in args.window.split("x")), args.raw)
    print(report(r))
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
