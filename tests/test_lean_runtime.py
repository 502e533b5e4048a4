"""regenerator-runtime in place of Dash's ``@babel/polyfill`` (:mod:`components.lean_runtime`;
issue 12).

The browser test keeps, before any script of the page runs (DevTools' script-on-new-document),
the functions the browser starts with that core-js 2 used to replace, and checks that the
loaded page still runs those very functions (identity), that the polyfill was never requested,
and that what Dash's bundles need of it (``regeneratorRuntime``) is there: the graph's lazy
chunk and a callback round trip (both run transpiled async functions) work.
"""
from __future__ import annotations

import pytest

from components import lean_runtime
from pagetools import callbacks_settled, click_element, count_callbacks, start_app, wait

#: what core-js 2 replaced in current Chromium (its feature tests predate Unicode 6.3)
REPLACED = ("String.prototype.trim", "String.prototype.trimStart", "String.prototype.trimEnd",
            "Number.parseInt", "Number.parseFloat", "window.parseInt", "window.parseFloat")
#: runs before the page's own scripts: the functions the browser starts with
KEEP = "window.__testNatives = [%s];" % ", ".join(REPLACED)
SAME = "return [%s].map((f, i) => f === window.__testNatives[i]);" % ", ".join(REPLACED)

POLYFILL = '<script src="/_dash-component-suites/dash/deps/polyfill@7.v4_4_1m1.12.1.min.js"></script>\n'
REACT = '<script src="/_dash-component-suites/dash/deps/react@18.v4_4_1m1.3.1.min.js"></script>\n'


def test_the_runtime_is_built_and_can_be_inlined():
    script = lean_runtime.runtime_script()
    if script is None:
        pytest.fail(f"{lean_runtime.RUNTIME_FILE} is not built: run `make install` (needs npm)")
    assert script.startswith("<script>") and script.endswith("</script>")
    assert "regeneratorRuntime" in script and "regenerator-runtime v" in script
    assert script.lower().count("</script") == 1


def test_index_string_puts_the_script_first_in_the_head():
    page = lean_runtime.index_string("<html><head><title>x</title></head><body></body></html>", "<script>r</script>")
    assert page.split("<head>", 1)[1].lstrip().startswith("<script>r</script><title>")
    with pytest.raises(ValueError, match="head"):
        lean_runtime.index_string("<html><body></body></html>", "<script>r</script>")


def test_only_the_polyfill_tag_is_dropped():
    assert lean_runtime.without_polyfill(POLYFILL + REACT) == REACT
    unpkg = '<script src="https://unpkg.com/@babel/polyfill@7.12.1/dist/polyfill.min.js"></script>\n'
    assert lean_runtime.without_polyfill(unpkg + REACT) == REACT
    # a Dash that stops serving it: nothing to remove, the page still served
    assert lean_runtime.without_polyfill(REACT) == REACT


def test_install_needs_the_built_runtime(tmp_path):
    import dash

    app = dash.Dash(__name__)
    before = app.index_string
    assert lean_runtime.install(app, tmp_path / "absent.js") is False
    assert app.index_string == before and "interpolate_index" not in vars(app)
    built = tmp_path / "runtime.js"
    built.write_text("window.regeneratorRuntime = {};", encoding="utf-8")
    assert lean_runtime.install(app, built) is True
    assert "<script>window.regeneratorRuntime = {};</script>" in app.index_string
    app.layout = dash.html.Div("x")
    with app.server.test_request_context("/"):
        page = app.index()
    assert "polyfill@" not in page and "react@" in page


def test_page_runs_without_the_polyfill(dash_duo, demo_data_dir):
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": KEEP})
    start_app(dash_duo, demo_data_dir, "/wells", window_size=(1400, 900))  # the navbar not collapsed
    wait(lambda: dash_duo.driver.execute_script(
        "return !!window.Plotly && !!document.querySelector('#wells-timeline .main-svg')"), message="page drawn")
    same = dash_duo.driver.execute_script(SAME)
    assert same == [True] * len(REPLACED), list(zip(REPLACED, same))
    got = dash_duo.driver.execute_script(
        "return [typeof regeneratorRuntime.mark, typeof window._babelPolyfill, typeof window.runtime,"
        " performance.getEntriesByType('resource').filter(e => e.name.includes('polyfill@')).length];")
    assert got == ["function", "undefined", "undefined", 0]
    # a client-side navigation: the router's callback round trip (the renderer's transpiled
    # async code) and the next page's graph
    sent = count_callbacks(dash_duo)
    link = next(a for a in dash_duo.find_elements(".fm-navbar .nav-link")
                if a.get_attribute("textContent") == "Magnitudes")
    click_element(dash_duo.driver, link)
    wait(lambda: callbacks_settled(dash_duo, sent), message="the router's callback answered")
    wait(lambda: dash_duo.driver.execute_script("return !!document.querySelector('#mag-time-graph .main-svg')"),
         message="magnitudes drawn")
    assert dash_duo.get_logs() == []
