"""Where the polarity-model page's draw time goes: its four figures (curves, confusion,
calibration, training) drawn alone, one after the other as the page draws them, in a fresh
headless Chromium per load (no Dash, no network), with the app's plotly.js bundle.

    python bench/probe_model_draw.py --data-dir DIR [--loads 3] [--ab-app OTHER_CHECKOUT]

The figures are those of a first load (:func:`pages.model.build_evalset` of the default
evaluation set and the training figure), each in a box of its width on the page in a
1400 px window (:data:`components.model_figures.PAGE_WIDTHS`) and its figure's height.
Variants: ``as_served``; ``automargin`` (the same figures with the margins they had before
issue 12: labels and legends pushed the margins, and Plotly drew each figure twice); with
``--ab-app DIR`` also ``base`` (the figures of the app in checkout DIR). Printed per variant:
the whole sequence, from the first ``Plotly.newPlot`` to two animation frames after the last
one resolves, ms (median of ``--loads``, variants interleaved), and the CPU time of all of
Chrome's processes over it (:func:`bench.probe_map_draw.draw_ms`'s measure, which a busy
machine inflates much less than the wall time). An inner-loop figure: compare it with
``bench_browser.py``'s time to a drawn page, never report it as one.
"""
from __future__ import annotations

import copy
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import probe_map_draw  # noqa: E402

ORDER = ("curves", "confusion", "calibration", "training")
#: the margins before issue 12 (automargin then pushed them: a second draw per figure)
OLD_MARGINS = {"curves": dict(l=55, r=20, t=62, b=45), "confusion": dict(l=75, r=10, t=35, b=45),
               "calibration": dict(l=55, r=20, t=20, b=80), "training": dict(l=55, r=55, t=40, b=45)}

DRAW = """const done = arguments[0];
const t0 = performance.now();
(async () => {
  for (let i = 0; i < FIGS.length; i++)
    await Plotly.newPlot('g' + i, FIGS[i].data, FIGS[i].layout, {responsive: false});
  requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
})().catch(e => done('error: ' + e));"""

FIGURES_CODE = """
import json, sys, plotly
from pathlib import Path
sys.path.insert(0, '.')
from app import create_app
app = create_app(Path(sys.argv[1]))
from pages import model
import components.model_figures as mf
provider = app.server.extensions['fm_provider']
rows = model._eval_rows(provider)
ds = model.default_evalset(mf.available_datasets(rows))
_, curves, confusion, calibration, _ = model.build_evalset('evalset=' + ds, provider)
figs = {'curves': curves, 'confusion': confusion, 'calibration': calibration,
        'training': mf.training_figure(rows)}
sys.stdout.write(json.dumps(figs, cls=plotly.utils.PlotlyJSONEncoder))
"""


def model_figures_json(app_dir: Path, data_dir: Path) -> dict:
    """The first load's four figures as served by the app in ``app_dir`` (this checkout or
    another one), built in a subprocess that imports only that checkout's code."""
    out = subprocess.run([sys.executable, "-c", FIGURES_CODE, str(data_dir)], cwd=app_dir, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv=None) -> int:
    p = probe_map_draw.probe_parser(__doc__, "also draw the figures of the app in checkout DIR")
    args = p.parse_args(argv)
    from components.model_figures import PAGE_WIDTHS

    figs = model_figures_json(ROOT, args.data_dir.resolve())
    old = copy.deepcopy(figs)
    for key, margin in OLD_MARGINS.items():
        old[key]["layout"]["margin"] = margin
    variants = {"as_served": figs, "automargin": old}
    if args.ab_app:
        variants["base"] = model_figures_json(args.ab_app.resolve(), args.data_dir.resolve())
    times: dict[str, list] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        pages = {}
        for name, fs in variants.items():
            divs = "".join(f'<div id="g{i}" style="width:{PAGE_WIDTHS[k]}px;height:{fs[k]["layout"]["height"]}px">'
                           f'</div>' for i, k in enumerate(ORDER))
            pages[name] = probe_map_draw.figures_page(Path(tmp) / f"{name}.html", divs, [fs[k] for k in ORDER])
        for _ in range(args.loads):   # interleaved: a change of machine load hits every variant
            for name, page in pages.items():
                times[name].append(probe_map_draw.draw_ms(page, DRAW))
    print(f"The model page's four figures drawn alone (inner loop), {args.data_dir}, median of {args.loads} "
          "[min-max]: wall ms, Chrome CPU ms:")
    probe_map_draw.print_summary(times, {name: f"{sum(len(f['data']) for f in fs.values())} traces"
                                         for name, fs in variants.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
