"""The dashboard's own plotly.js bundle (``frontend/plotly``, built into
``assets/plotly-fm.min.js`` by ``make install`` with npm): only the trace types the pages draw,
because evaluating the full plotly.min.js took 1.3-1.6 s of every cold page load.

What can go wrong, and is checked here: a plotly upgrade on the Python side writing figures
for another plotly.js than the bundle's; a page drawing a trace type the bundle lacks (Plotly
would draw nothing for it, without an error); the pages still fetching the full plotly.js.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from pagetools import start_app, wait

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "assets" / "plotly-fm.min.js"
BUILD_JS = ROOT / "frontend" / "plotly" / "build.js"


def _banner() -> tuple[str, set[str]]:
    """(plotly.js version, trace types) from the bundle's first line, written by build.js."""
    if not BUNDLE.is_file():
        pytest.fail(f"{BUNDLE} is not built: run `make install` (needs npm)")
    head = BUNDLE.read_text(encoding="utf-8", errors="replace")[:300]
    m = re.match(r"/\*! plotly\.js v(\S+) \| traces: ([a-z0-9,]+) \|", head)
    assert m, f"{BUNDLE}: no build.js banner in {head[:120]!r}"
    return m.group(1), set(m.group(2).split(","))


def test_bundle_is_the_plotly_js_the_python_figures_are_written_for():
    from plotly.offline import get_plotlyjs_version

    version, _ = _banner()
    assert version == get_plotlyjs_version(), (
        f"the bundle is plotly.js {version}, the Python plotly package writes for {get_plotlyjs_version()}: "
        "set frontend/plotly/package.json's plotly.js to that version and rebuild")
    pinned = re.search(r'"plotly\.js":\s*"([^"]+)"', (BUILD_JS.parent / "package.json").read_text())
    assert pinned and pinned.group(1) == version


def test_bundle_carries_every_source_patch_of_its_recipe():
    """build.js edits plotly.js's sources (each edit must match exactly once or the build
    fails) and names the edits in the banner: the bundle served is the one with them."""
    head = BUNDLE.read_text(encoding="utf-8", errors="replace")[:300]
    m = re.search(r"\| patches: ([a-z0-9,-]*) \|", head)
    assert m, f"{BUNDLE}: no patches in the banner {head[:160]!r}: run `make install`"
    recipe = set(re.findall(r"name: '([a-z0-9-]+)',\s*\n\s*file:", BUILD_JS.read_text()))
    assert recipe and set(m.group(1).split(",")) == recipe


def test_bundle_is_newer_than_its_recipe():
    """make rebuilds the bundle when its recipe changes; a stale bundle (recipe edited, not
    rebuilt) would silently keep the old trace list."""
    recipe = [BUILD_JS, BUILD_JS.parent / "package.json", BUILD_JS.parent / "package-lock.json"]
    _banner()
    stale = [p.name for p in recipe if p.stat().st_mtime > BUNDLE.stat().st_mtime]
    assert not stale, f"{BUNDLE.name} is older than {stale}: run `make install`"


_PAGE_STATE = """
const graphs = Array.from(document.querySelectorAll('.dash-graph'));
const loading = !!document.querySelector('._dash-loading, ._dash-loading-callback, [data-dash-is-loading="true"]');
const drawn = graphs.length > 0 && graphs.every(g => g.querySelector('.js-plotly-plot .main-svg'));
if (loading || !drawn || !window.Plotly) return null;
return {
  registered: Object.keys(Plotly.PlotSchema.get().traces),
  drawn: Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(
      gd => (gd.data || []).map(t => t.type || 'scatter')),
  graphs: graphs.length,
  fullPlotly: performance.getEntriesByType('resource').some(e => e.name.indexOf('plotly.min.js') >= 0),
  chunks: performance.getEntriesByType('resource').map(e => new URL(e.name).pathname)
      .filter(p => p.indexOf('/async-') >= 0),
};
"""


def test_every_page_draws_only_trace_types_the_bundle_holds(dash_duo, demo_data_dir):
    """Each page of the demo build, loaded in the browser: the page got its Plotly from the
    bundle (no request for the full plotly.min.js), the bundle registers exactly the traces
    its banner lists, and every trace of every drawn graph is one of them. The component
    chunks the page used are the ones the page lists up front (components.eager_chunks), each
    requested once: none is fetched again lazily after the layout."""
    import pandas as pd

    from components.eager_chunks import chunk_urls

    _, listed = _banner()
    event_id = pd.read_parquet(demo_data_dir / "mechanisms.parquet", columns=["event_id"])["event_id"].iloc[0]
    pages = ["/", "/magnitudes", "/classification", "/strike-time", "/diffusion", "/wells", "/model",
             f"/event/{event_id}"]
    start_app(dash_duo, demo_data_dir, window_size=(1400, 1000))
    seen: set[str] = set()
    for path in pages:
        dash_duo.driver.get(dash_duo.server_url + path)
        state = wait(lambda: dash_duo.driver.execute_script(_PAGE_STATE), message=f"{path} drawn")
        assert not state["fullPlotly"], f"{path} fetched the full plotly.min.js"
        assert set(state["registered"]) == listed, (path, sorted(state["registered"]))
        assert set(state["drawn"]) <= listed, (path, sorted(set(state["drawn"]) - listed))
        assert sorted(state["chunks"]) == sorted(chunk_urls()), (path, state["chunks"])
        seen |= set(state["drawn"])
    # the list is what the pages need, nothing they never draw (each type costs load time)
    assert seen == listed, sorted(listed - seen)
