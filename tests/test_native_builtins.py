"""The browser's own ``trim``/``parseInt``/``parseFloat`` under Dash's polyfill
(:mod:`components.native_builtins`, ``assets/builtins_native.js``; issue 12).

The test keeps, before any script of the page runs (DevTools' script-on-new-document), the
functions the browser starts with, and checks that the loaded page runs those very functions
(identity), not core-js 2's replacements, and that they still behave as specified.
"""
from __future__ import annotations

import pytest

from components.native_builtins import NATIVE_FUNCTIONS, STASH_SCRIPT, index_string
from pagetools import start_app, wait

#: runs before the page's own scripts: the functions the browser starts with
KEEP = "window.__testNatives = [%s];" % ", ".join(f"{owner}.{name}" for owner, name in NATIVE_FUNCTIONS)
SAME = "return [%s].map((f, i) => f === window.__testNatives[i]);" % ", ".join(
    f"{owner}.{name}" for owner, name in NATIVE_FUNCTIONS)


def test_index_string_puts_the_stash_first_in_the_head():
    page = index_string("<html><head><title>x</title></head><body></body></html>")
    head = page.split("<head>", 1)[1]
    assert head.lstrip().startswith(STASH_SCRIPT)
    for owner, name in NATIVE_FUNCTIONS:
        assert f"{owner}.{name}" in STASH_SCRIPT
    with pytest.raises(ValueError, match="head"):
        index_string("<html><body></body></html>")


def test_page_runs_the_browsers_own_functions(dash_duo, demo_data_dir):
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": KEEP})
    start_app(dash_duo, demo_data_dir, "/wells")
    wait(lambda: dash_duo.driver.execute_script("return !!window.Plotly && !!document.querySelector('.js-plotly-plot')"),
         message="page drawn")
    same = dash_duo.driver.execute_script(SAME)
    assert same == [True] * len(NATIVE_FUNCTIONS), list(zip(NATIVE_FUNCTIONS, same))
    got = dash_duo.driver.execute_script(
        "return [' a\\t'.trimStart(), ' a\\t'.trimEnd(), ' a\\t'.trim(), parseInt(' 0x1f'), Number.parseInt('12px'),"
        " parseFloat(' 2.5e1 '), typeof window.__fmNativeBuiltins];")
    assert got == ["a\t", " a", "a", 31, 12, 25, "undefined"]  # the stash is gone once used
    assert dash_duo.get_logs() == []
