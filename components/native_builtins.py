"""Keep the browser's own ``trim`` and ``parseInt`` under Dash's polyfill (issue 12).

Dash serves ``@babel/polyfill`` 7.12 (core-js 2) before every other script, and core-js 2
replaces ``String.prototype.trim``/``trimStart``/``trimEnd`` (and their ``trimLeft``/
``trimRight`` aliases) and ``parseInt``/``parseFloat`` (global and on ``Number``) in today's
Chromium: its feature tests (written before Unicode 6.3 stopped counting U+180E as white
space) reject the native functions, and it installs its own, regular-expression JavaScript.
plotly.js parses every colour string through them (``trim`` and ``parseInt`` per point of a
per-point colour array: the map's 21,619 event colours and the mechanism dots).
A sampled CPU profile of one cold ToC2ME map load (10.6 s under the profiler)
put ~1.8 s of main-thread time in the polyfill's code, ``trim`` alone 0.85 s; with the
natives back, 0.3 s (its own evaluation).

:data:`STASH_SCRIPT`, an inline script in the page's ``<head>`` (it runs before any served
script), keeps the native functions; ``assets/builtins_native.js`` (the first of the assets,
so after the polyfill and before plotly.js and the Dash renderer) puts them back. The
natives are what the polyfill emulates, by the current specification.
"""
from __future__ import annotations

#: the functions core-js 2 replaces in current Chromium, as (owner expression, name)
NATIVE_FUNCTIONS = (
    ("String.prototype", "trim"), ("String.prototype", "trimStart"), ("String.prototype", "trimEnd"),
    ("String.prototype", "trimLeft"), ("String.prototype", "trimRight"),
    ("Number", "parseInt"), ("Number", "parseFloat"), ("window", "parseInt"), ("window", "parseFloat"),
)

STASH_SCRIPT = "<script>window.__fmNativeBuiltins = [%s];</script>" % ", ".join(
    f'[{owner}, "{name}", {owner}.{name}]' for owner, name in NATIVE_FUNCTIONS)


def index_string(template: str) -> str:
    """Dash's page template ``template`` with :data:`STASH_SCRIPT` first in its head."""
    if "<head>" not in template:
        raise ValueError("the Dash index template has no <head>")
    return template.replace("<head>", "<head>\n        " + STASH_SCRIPT, 1)
