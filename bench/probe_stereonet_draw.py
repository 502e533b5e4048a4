"""Where the classification page's stereonet draw time goes: the group stereonets drawn
alone in a fresh headless Chromium per load (no Dash, no network), with the app's plotly.js
bundle, for variants.

    python bench/probe_stereonet_draw.py --data-dir DIR [--loads 3] [--ab-app OTHER_CHECKOUT]

The figures are those of an unfiltered page (:func:`pages.classification.build_stereonets`).
Variants: ``svg`` (as served since issue 12's SVG change: the figures rendered to SVG on the
server, :func:`components.stereonet_svg.stereonet_grid_document`, shown in an ``iframe``
whose load event ends the time) and ``per_group`` (each group's figure as a Plotly plot
of 446 x 380 px, drawn one after the other, as the page drew them before stop 16; in stop 17 the
page drew them as one Plotly plot with a subplot per group, ~0.5 s); with ``--ab-app DIR`` also ``base_per_group``: the per-group
figures of the app in checkout DIR (e.g. before the nodal lines became shapes). Time: from
the first ``Plotly.newPlot`` to two animation frames after the last one resolves, ms
(median of ``--loads``, variants interleaved), and the CPU time of all of Chrome's processes
over it (:func:`bench.probe_map_draw.draw_ms`'s measure). An inner-loop figure: compare it
with ``bench_browser.py``'s time to a drawn page, never report it as one.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import probe_map_draw  # noqa: E402

DRAW = """const done = arguments[0];
const t0 = performance.now();
(async () => {
  for (let i = 0; i < FIGS.length; i++)
    await Plotly.newPlot('g' + i, FIGS[i].data, FIGS[i].layout, {responsive: false, displayModeBar: false});
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
})().catch(e => done('error: ' + e));"""


#: the served SVG document drawn in an iframe (SVG_DOC defined by the page): until its load event
#: and two animation frames (its paint) after
SVG_DRAW = """const done = arguments[0];
const t0 = performance.now();
const f = document.createElement('iframe');
f.style.cssText = 'border:0;width:' + SVG_SIZE[0] + 'px;height:' + SVG_SIZE[1] + 'px';
f.onload = () => requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
f.srcdoc = SVG_DOC;
document.body.appendChild(f);"""


def stereonet_figures_json(data_dir: Path) -> list[dict]:
    """The page's per-group stereonet figures (JSON-ready dicts) of an unfiltered page."""
    import plotly

    from app import create_app

    create_app(data_dir)
    from pages import classification

    figs = [fig for _, fig in classification.build_stereonets("")]
    return json.loads(json.dumps(figs, cls=plotly.utils.PlotlyJSONEncoder))


def other_checkout_figures(app_dir: Path, data_dir: Path) -> list[dict]:
    """The per-group figures of the app in another checkout (which need not have this
    script), built in a subprocess that imports only that checkout's code."""
    code = ("import json, sys, plotly; from pathlib import Path; sys.path.insert(0, '.'); "
            f"from app import create_app; create_app(Path({str(data_dir)!r})); "
            "from pages import classification; "
            "sys.stdout.write(json.dumps([f for _, f in classification.build_stereonets('')], "
            "cls=plotly.utils.PlotlyJSONEncoder))")
    out = subprocess.run([sys.executable, "-c", code], cwd=app_dir, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def draw_ms(html: Path) -> tuple[float, float]:
    """(wall ms, Chrome CPU ms) of drawing the page's figures in a fresh browser."""
    return probe_map_draw.draw_ms(html, DRAW)


def main(argv=None) -> int:
    from components.stereonet_svg import CELL_H, GRID_COLUMNS, grid_height, stereonet_grid_document

    p = probe_map_draw.probe_parser(__doc__, "also draw the per-group figures of checkout DIR")
    args = p.parse_args(argv)
    figs = stereonet_figures_json(args.data_dir)
    width = 1340                                   # the card's plot width in a 1400 px window
    variants = {"per_group": [(f, width // GRID_COLUMNS, CELL_H) for f in figs]}
    if args.ab_app:
        base = other_checkout_figures(args.ab_app.resolve(), args.data_dir.resolve())
        variants["base_per_group"] = [(f, width // GRID_COLUMNS, CELL_H) for f in base]
    times: dict[str, list] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        pages = {}
        for name, items in variants.items():
            divs = "".join(f'<div id="g{i}" style="width:{w}px;height:{h}px;display:inline-block"></div>'
                           for i, (_, w, h) in enumerate(items))
            pages[name] = probe_map_draw.figures_page(Path(tmp) / f"{name}.html", divs, [f for f, _, _ in items],
                                                      body_style=f"margin:0;width:{width}px")
        page = Path(tmp) / "svg.html"
        page.write_text(f'<html><body style="margin:0;width:{width}px"><script>const SVG_DOC = '
                        f'{json.dumps(stereonet_grid_document(figs))}; const SVG_SIZE = '
                        f'[{width}, {grid_height(len(figs))}];</script></body></html>')
        pages["svg"], times["svg"] = page, []
        for _ in range(args.loads):   # interleaved: a change of machine load hits every variant
            for name, page in pages.items():
                times[name].append(probe_map_draw.draw_ms(page, SVG_DRAW) if name == "svg" else draw_ms(page))
    print(f"The group stereonets drawn alone (inner loop), {args.data_dir}, median of {args.loads} [min-max]: "
          "wall ms, Chrome CPU ms:")
    probe_map_draw.print_summary(times, {name: "one SVG document" if name == "svg" else
                                         f"{len(variants[name])} plot(s)" for name in times})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
