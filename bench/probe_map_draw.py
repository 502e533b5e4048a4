"""Where the map's draw time goes in the browser: ``Plotly.newPlot`` of the map figure alone,
in a fresh headless Chromium per load (no Dash, no network), for variants of the figure.

    python bench/probe_map_draw.py --data-dir DIR [--loads 3] [--ab-app OTHER_CHECKOUT]

The figure is the one the map callback returns for an unfiltered page
(:func:`pages.map.build_figure`). Variants: ``as_served``; ``no_ball_fills`` (without the
beachballs' filled polygons, the ``toself`` traces); ``ball_fills_only`` (the
fills, wells and stages); ``svg`` (every ``scattergl`` trace as SVG ``scatter``); ``gl_pixel_ratio_1`` (as served,
config ``plotGlPixelRatio: 1`` instead of plotly.js's 2); with
``--ab-app DIR`` instead ``base`` (the figure of the app in DIR) and ``as_served``; with
``--polyfill`` instead ``polyfill`` (Dash's ``@babel/polyfill`` evaluated before plotly.js, as
Dash serves pages) and ``regenerator_only`` (regenerator-runtime alone, as
:mod:`components.lean_runtime` serves them). Time: from
the call to two animation frames after its promise resolves, ms (median of ``--loads``), and
the CPU time of all of Chrome's processes over the same span (the software WebGL runs in
Chrome's GPU process), which a busy machine inflates much less than the wall time.
This is an inner-loop figure (no page, no scripts, no callbacks): compare it with
``bench_browser.py``'s time to a drawn page, never report it as one.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DRAW = """const done = arguments[0];
const t0 = performance.now();
Plotly.newPlot('g', FIG.data, FIG.layout, Object.assign({responsive: false}, FIG.config || {})).then(() =>
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0))));"""


def map_figure_json(data_dir: Path) -> dict:
    import plotly

    from app import create_app

    app = create_app(data_dir)
    from pages import map as map_page

    with app.server.test_request_context("/"):
        fig, _ = map_page.build_figure("")
    return json.loads(json.dumps(fig, cls=plotly.utils.PlotlyJSONEncoder))


def other_checkout_figure(app_dir: Path, data_dir: Path) -> dict:
    """The same figure as served by the app of another checkout (e.g. ``git worktree`` of the
    base commit), built in a subprocess that imports only that checkout's code."""
    import subprocess

    code = ("import json, sys; from pathlib import Path; sys.path.insert(0, '.'); "
            "from bench.probe_map_draw import map_figure_json; "
            f"sys.stdout.write(json.dumps(map_figure_json(Path({str(data_dir)!r}))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=app_dir, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def variants(fig: dict) -> dict:
    def fill(t):
        return t.get("type") == "scattergl" and t.get("fill") == "toself"

    no_fills = copy.deepcopy(fig)
    no_fills["data"] = [t for t in fig["data"] if not fill(t)]
    fills = copy.deepcopy(fig)
    fills["data"] = [t for t in fig["data"] if fill(t) or t.get("type") == "scatter"]
    svg = copy.deepcopy(fig)
    for t in svg["data"]:
        if t.get("type") == "scattergl":
            t["type"] = "scatter"
    # plotly.js draws WebGL at plotGlPixelRatio (default 2) times the CSS size whatever the screen's
    # devicePixelRatio: 4x the pixels of a 1x screen for software WebGL to fill and composite
    ratio1 = {**fig, "config": {"plotGlPixelRatio": 1}}
    return {"as_served": fig, "no_ball_fills": no_fills, "ball_fills_only": fills, "svg": svg,
            "gl_pixel_ratio_1": ratio1}


def _chrome_cpu_s(driver) -> float:
    """User + system CPU seconds so far of every process chromedriver started (browser,
    renderer, GPU process: headless Chromium's software WebGL runs in the GPU process)."""
    import psutil

    total = 0.0
    try:
        procs = psutil.Process(driver.service.process.pid).children(recursive=True)
    except psutil.Error:
        return float("nan")
    for proc in procs:
        try:
            t = proc.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # exited meanwhile
            pass
    return total


def draw_ms(html: Path, script: str = DRAW) -> tuple[float, float]:
    """(wall ms, Chrome CPU ms) of one draw (``script``: an async script whose callback gets
    the wall ms, or a message string on failure) in a fresh browser. The CPU time (all of
    Chrome's processes, from just before the call to just after) barely moves with the
    machine's load, unlike the wall time: compare variants on it when the load is high."""
    from selenium import webdriver

    opts = webdriver.ChromeOptions()
    for a in ("--headless", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,900"):
        opts.add_argument(a)
    if "DASH_TEST_CHROMEPATH" in os.environ:
        opts.binary_location = os.environ["DASH_TEST_CHROMEPATH"]
    driver = webdriver.Chrome(options=opts)
    try:
        driver.set_script_timeout(300)
        driver.get(html.as_uri())
        cpu0 = _chrome_cpu_s(driver)
        wall = driver.execute_async_script(script)
        if isinstance(wall, str):
            raise RuntimeError(f"{html.name}: {wall}")
        return float(wall), 1000.0 * (_chrome_cpu_s(driver) - cpu0)
    finally:
        driver.quit()


def main(argv=None) -> int:
    import plotly

    p = probe_parser(__doc__, "compare the figure as served with that of the app in checkout DIR (variants "
                              "'base' and 'as_served' only)")
    p.add_argument("--polyfill", action="store_true",
                   help="compare the draw after Dash's polyfill with that after regenerator-runtime alone "
                        "(variants 'polyfill' and 'regenerator_only' only)")
    args = p.parse_args(argv)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    fig = map_figure_json(args.data_dir)
    head = {}
    if args.polyfill:
        import dash

        from components.lean_runtime import RUNTIME_FILE
        polyfill = next((Path(dash.__file__).parent / "deps").glob("polyfill@*.min.js")).as_uri()
        head = {"polyfill": f'<script src="{polyfill}"></script>',
                "regenerator_only": f'<script src="{RUNTIME_FILE.as_uri()}"></script>'}
        figs = {name: fig for name in head}
    elif args.ab_app:
        figs = {"base": other_checkout_figure(args.ab_app.resolve(), args.data_dir.resolve()), "as_served": fig}
    else:
        figs = variants(fig)
    with tempfile.TemporaryDirectory() as tmp:
        pages = {}
        for name, fig in figs.items():
            page = Path(tmp) / f"{name}.html"
            page.write_text(f'<html><head>{head.get(name, "")}<script src="{plotly_js.as_uri()}"></script>'
                            f'<script>const FIG = '
                            f'{json.dumps(fig)};</script></head><body><div id="g" style="width:1200px;'
                            f'height:800px"></div></body></html>')
            pages[name] = page
        times = {name: [] for name in figs}
        for _ in range(args.loads):  # interleaved, so a change of machine load hits every variant
            for name, page in pages.items():
                times[name].append(draw_ms(page))
    print(f"Plotly.newPlot of the map figure alone (inner loop), {args.data_dir}, median of {args.loads} "
          f"[min-max]: wall ms, Chrome CPU ms:")
    print_summary(times, {name: f"{len(figs[name]['data'])} traces" for name in times}, width=22)
    return 0


def probe_parser(doc: str, ab_help: str) -> argparse.ArgumentParser:
    """The draw probes' common options: ``--data-dir``, ``--loads`` (fresh browsers per
    variant, interleaved) and ``--ab-app DIR`` (``ab_help`` says what it compares)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--loads", type=int, default=3)
    p.add_argument("--ab-app", type=Path, metavar="DIR", help=ab_help)
    return p


def figures_page(path: Path, divs: str, figures: list, body_style: str = "margin:0") -> Path:
    """Write a static page at ``path``: ``divs``, then the pages' own plotly.js bundle (it
    needs ``document.body``, so after them) and the figures as ``FIGS``."""
    bundle = (ROOT / "assets" / "plotly-fm.min.js").as_uri()
    path.write_text(f'<html><body style="{body_style}">{divs}<script src="{bundle}"></script>'
                    f'<script>const FIGS = {json.dumps(figures)};</script></body></html>')
    return path


def print_summary(times: dict, notes: dict, width: int = 16) -> dict:
    """Print one line per variant of ``times`` ({name: [(wall ms, CPU ms), ...]}: median
    [min-max] of each, then ``notes[name]``) and, last, their medians as one JSON object,
    which it also returns."""
    summary = {}
    for name, ts in times.items():
        wall, cpu = [t[0] for t in ts], [t[1] for t in ts]
        summary[name] = {"wall_ms": round(statistics.median(wall)), "cpu_ms": round(statistics.median(cpu))}
        print(f"  {name:{width}s} {statistics.median(wall):7.0f} [{min(wall):.0f}-{max(wall):.0f}]  "
              f"{statistics.median(cpu):7.0f} [{min(cpu):.0f}-{max(cpu):.0f}]  {notes.get(name, '')}")
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
