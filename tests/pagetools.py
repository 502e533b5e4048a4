"""Helpers shared by the browser tests of the pages (``dash_duo``, headless Chromium).

Plain functions, imported by the page tests as ``from pagetools import ...`` (``tests`` is
on ``pythonpath`` in pytest.ini). What is specific to one page (its path, graph ids,
selectors) stays in that page's test module.
"""
from __future__ import annotations

import importlib
import socket
import time
from urllib.parse import parse_qs, urlsplit

TIMEOUT = 30


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(dash_duo, data_dir, path: str = "/", *, window_size: tuple[int, int] | None = None):
    """Serve ``create_app(data_dir)`` on a free port and open ``path`` (page path plus
    query string / hash; ``"/"`` is the page the server start already opened).
    ``window_size`` (width, height) resizes the browser window first."""
    from app import create_app

    app = create_app(data_dir)
    dash_duo.start_server(app, port=free_port())
    if window_size is not None:
        dash_duo.driver.set_window_size(*window_size)
    if path != "/":
        dash_duo.wait_for_page(url=dash_duo.server_url + path)
    return app


def wait(predicate, timeout=TIMEOUT, message="condition"):
    """Poll ``predicate`` until it returns something truthy (returned); exceptions count
    as "not yet" (DOM not ready). AssertionError after ``timeout`` seconds."""
    end = time.time() + timeout
    last = None
    while time.time() < end:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - DOM not ready yet
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {message} (last: {last!r})")


def plotly_js(dash_duo, graph_id: str, expr: str):
    """Evaluate the JavaScript ``expr`` with ``gd`` = the Plotly div of the ``dcc.Graph``
    ``graph_id``; None until the figure is drawn."""
    return dash_duo.driver.execute_script(
        f"const gd = document.querySelector('#{graph_id} .js-plotly-plot');"
        f"if (!gd || !gd._fullData) return null; return ({expr});")


def no_console_errors(dash_duo, level: str | None = None):
    """Assert that the browser console logged nothing (with ``level``, e.g. ``"SEVERE"``:
    nothing of that level)."""
    logs = dash_duo.get_logs()
    if level is not None:
        logs = [e for e in logs if e.get("level") == level]
    assert logs == [], logs


def url_query(dash_duo) -> str:
    """The query string of the browser's URL (without ``?``)."""
    url = dash_duo.driver.current_url
    return url.split("?", 1)[1] if "?" in url else ""


def url_params(dash_duo) -> dict:
    """The query of the browser's URL parsed by ``parse_qs`` ({key: [values]})."""
    return parse_qs(urlsplit(dash_duo.driver.current_url).query)


def page_module(data_dir, name: str):
    """(app, the page module ``name``, e.g. ``"pages.diffusion"``): Dash imports page
    modules when the app serves its first request, and a page module cannot be imported
    on its own before that."""
    from app import create_app

    app = create_app(data_dir)
    app.server.test_client().get("/")
    return app, importlib.import_module(name)
