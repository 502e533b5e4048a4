"""Where the map's draw time goes in the browser: ``Plotly.newPlot`` of the map figure alone,
in a fresh headless Chromium per load (no Dash, no network), for variants of the figure.

    python bench/probe_map_draw.py --data-dir DIR [--loads 3]

The figure is the one the map callback returns for an unfiltered page
(:func:`pages.map.build_figure`). Variants: ``as_served``; ``no_ball_fills`` (without the
beachballs' filled polygons, the ``lines``/``toself`` traces); ``ball_fills_only`` (the
fills, wells and stages); ``svg`` (every ``scattergl`` trace as SVG ``scatter``). Time: from
the call to two animation frames after its promise resolves, ms (median of ``--loads``).
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
Plotly.newPlot('g', FIG.data, FIG.layout, {responsive: false}).then(() =>
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0))));"""


def map_figure_json(data_dir: Path) -> dict:
    import plotly

    from app import create_app

    app = create_app(data_dir)
    from pages import map as map_page

    with app.server.test_request_context("/"):
        fig, _ = map_page.build_figure("")
    return json.loads(json.dumps(fig, cls=plotly.utils.PlotlyJSONEncoder))


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
    return {"as_served": fig, "no_ball_fills": no_fills, "ball_fills_only": fills, "svg": svg}


def draw_ms(html: Path) -> float:
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
        return float(driver.execute_async_script(DRAW))
    finally:
        driver.quit()


def main(argv=None) -> int:
    import plotly

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, required=True)
    p.add_argument("--loads", type=int, default=3)
    args = p.parse_args(argv)
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    figs = variants(map_figure_json(args.data_dir))
    with tempfile.TemporaryDirectory() as tmp:
        pages = {}
        for name, fig in figs.items():
            page = Path(tmp) / f"{name}.html"
            page.write_text(f'<html><head><script src="{plotly_js.as_uri()}"></script><script>const FIG = '
                            f'{json.dumps(fig)};</script></head><body><div id="g" style="width:1200px;'
                            f'height:800px"></div></body></html>')
            pages[name] = page
        times = {name: [] for name in figs}
        for _ in range(args.loads):  # interleaved, so a change of machine load hits every variant
            for name, page in pages.items():
                times[name].append(draw_ms(page))
    print(f"Plotly.newPlot of the map figure alone (inner loop), {args.data_dir}, median of {args.loads}:")
    for name, ts in times.items():
        n = sum(1 for t in figs[name]["data"])
        print(f"  {name:16s} {statistics.median(ts):7.0f} ms  [{min(ts):.0f}-{max(ts):.0f}]  {n} traces")
    print(json.dumps({name: round(statistics.median(ts)) for name, ts in times.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
