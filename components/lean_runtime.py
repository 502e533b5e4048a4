"""Dash's ``@babel/polyfill`` replaced by the one part of it the pages need (issue 12).

Dash serves ``@babel/polyfill`` 7.12 (core-js 2 plus regenerator-runtime, 99 kB) before
every other script, for browsers older than any a seismologist runs today. In current
Chromium it cost ~0.11 s of main-thread evaluation per cold page load (``trace_load.py``),
and core-js 2 *replaced* working built-ins with slower JavaScript: ``String.prototype.trim``
and its kin and ``parseInt``/``parseFloat`` (its feature tests predate Unicode 6.3), which
plotly.js calls per point of every colour array (a sampled profile of one cold ToC2ME map
load put ~1.8 s there before stop 16 put the natives back).

What Dash's bundles need of it is ``regeneratorRuntime`` (the renderer, dcc, dash_table and
dash-bootstrap-components call ``regeneratorRuntime.mark``/``wrap`` for their transpiled
async functions); every other feature it fills in is native in the browsers Dash supports.
``make install`` builds regenerator-runtime, minified, with the plotly.js bundle
(``frontend/plotly/build.js``, :data:`RUNTIME_FILE`); :func:`install` puts it inline first
in the page's ``<head>`` and drops the polyfill's ``<script>``. Without the built file (no
npm) the page keeps Dash's polyfill: slower, not broken.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: regenerator-runtime, minified (built by ``make install``; not in git)
RUNTIME_FILE = ROOT / "frontend" / "plotly" / "dist" / "regenerator-runtime.min.js"
#: the polyfill's tag in Dash's ``{%scripts%}`` (served locally, or from unpkg with serve_locally=False)
POLYFILL_TAG = re.compile(r'<script src="[^"]*/polyfill@[^"]*\.js"></script>\n?')


def runtime_script(path: Path = RUNTIME_FILE) -> str | None:
    """The inline ``<script>`` with regenerator-runtime, or None when it is not built."""
    if not path.is_file():
        return None
    js = path.read_text(encoding="utf-8")
    if "</script" in js.lower():  # would end the inline element early
        raise ValueError(f"{path}: contains '</script', cannot be inlined")
    return f"<script>{js}</script>"


def index_string(template: str, script: str) -> str:
    """Dash's page template ``template`` with ``script`` first in its ``<head>``."""
    if "<head>" not in template:
        raise ValueError("the Dash index template has no <head>")
    return template.replace("<head>", "<head>\n        " + script, 1)


def without_polyfill(scripts: str) -> str:
    """Dash's ``{%scripts%}`` HTML without its ``@babel/polyfill`` tag; unchanged when there
    is none (a Dash that stops serving it needs nothing removed, and the inline runtime
    next to it is harmless). The browser test checks the current Dash's pages never ask for it."""
    return POLYFILL_TAG.sub("", scripts)


def install(app, path: Path = RUNTIME_FILE) -> bool:
    """Serve ``app``'s pages with regenerator-runtime inline instead of Dash's polyfill.
    False (and the app unchanged) when the runtime is not built."""
    script = runtime_script(path)
    if script is None:
        return False
    app.index_string = index_string(app.index_string, script)
    interpolate = app.interpolate_index

    def interpolate_index(**kwargs):
        kwargs["scripts"] = without_polyfill(kwargs.get("scripts", ""))
        return interpolate(**kwargs)

    app.interpolate_index = interpolate_index  # per app: Dash's "index" hooks are process-wide
    return True
