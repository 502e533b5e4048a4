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


def start_app(dash_duo, data_dir, path: str = "/", *, window_size: tuple[int, int] | None = None,
              before_start=None):
    """Serve ``create_app(data_dir)`` on a free port and open ``path`` (page path plus
    query string / hash; ``"/"`` is the page the server start already opened).
    ``window_size`` (width, height) resizes the browser window first. ``before_start(app)``
    runs before the server serves anything (e.g. :func:`record_callback_outputs`)."""
    from app import create_app

    app = create_app(data_dir)
    if before_start is not None:
        before_start(app)
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


def count_callbacks(dash_duo) -> int:
    """Start counting the page's callback requests (idempotent); the number sent so far."""
    from bench.bench_browser import CALLBACK_COUNTER

    return int(dash_duo.driver.execute_script(CALLBACK_COUNTER + "return window.__fm.requests;"))


def record_callback_outputs(app) -> list[str]:
    """The outputs of every callback request ``app`` receives from now on, in order of
    arrival: the request body's ``output`` (``"id.prop"``, several joined by ``..`` with
    ``...`` around). Recorded on the server, so a page's first requests count too. Call
    before the server starts (Flask takes no hooks after its first request)."""
    from flask import request

    seen: list[str] = []

    @app.server.before_request
    def _record():
        if request.path.endswith("/_dash-update-component"):
            seen.append(str((request.get_json(silent=True) or {}).get("output", "")))

    return seen


def callbacks_settled(dash_duo, sent_before: int) -> bool:
    """True once a callback request was sent after ``sent_before`` (from
    :func:`count_callbacks`) and none is in flight or being applied: what a user sees as "the
    page has answered". A real double click needs it: Plotly counts two presses as one
    double click only within 300 ms of its own handling, so a figure update drawn between
    them (seconds on a loaded machine) splits them into two single clicks."""
    return bool(dash_duo.driver.execute_script(
        "const c = window.__fm; return !!c && c.requests > arguments[0] && c.pending === 0 &&"
        " !document.querySelector('._dash-loading-callback, [data-dash-is-loading=\"true\"]');",
        sent_before))


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


# --- acting like a user: real pointer events at computed pixel positions -------------------
# Selenium's W3C actions move the browser's own pointer: Plotly sees mousedown/mousemove/
# mouseup exactly as from a mouse (no ``gd.emit`` or ``Plotly.relayout`` from JavaScript).

def scroll_into_view(driver, element) -> dict:
    """Scroll ``element`` to the middle of the window without animation (Bootstrap turns on
    smooth scrolling, and a position read mid-scroll is stale) and return its client rect
    ``{left, top, width, height}`` in CSS pixels of the viewport."""
    return driver.execute_script(
        "arguments[0].scrollIntoView({block: 'center', inline: 'center', behavior: 'instant'});"
        "const r = arguments[0].getBoundingClientRect();"
        "return {left: r.left, top: r.top, width: r.width, height: r.height};", element)


def _pointer(driver):
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.actions import interaction

    builder = ActionBuilder(driver, mouse=PointerInput(interaction.POINTER_MOUSE, "mouse"))
    return builder, builder.pointer_action


def click_at(driver, x: float, y: float) -> None:
    """A real left click at viewport pixel (``x``, ``y``)."""
    builder, p = _pointer(driver)
    p.move_to_location(int(round(x)), int(round(y))).pause(0.05).click()
    builder.perform()


def click_element(driver, element) -> None:
    """Scroll ``element`` into view (instantly) and click its centre with the real pointer."""
    r = scroll_into_view(driver, element)
    click_at(driver, r["left"] + r["width"] / 2, r["top"] + r["height"] / 2)


def drag(driver, start: tuple[float, float], end: tuple[float, float], steps: int = 8) -> None:
    """A real left-button drag from viewport pixel ``start`` to ``end`` in ``steps`` moves."""
    builder, p = _pointer(driver)
    (x0, y0), (x1, y1) = start, end
    p.move_to_location(int(round(x0)), int(round(y0))).pointer_down().pause(0.05)
    for k in range(1, steps + 1):
        p.move_to_location(int(round(x0 + (x1 - x0) * k / steps)), int(round(y0 + (y1 - y0) * k / steps)))
        p.pause(0.02)
    p.pointer_up()
    builder.perform()


def double_click_at(driver, x: float, y: float) -> None:
    """A real double click at viewport pixel (``x``, ``y``)."""
    builder, p = _pointer(driver)
    p.move_to_location(int(round(x)), int(round(y))).double_click()
    builder.perform()


def plotly_double_click(dash_duo, graph_id: str, x: float, y: float, tries: int = 3) -> int:
    """A real double click at viewport pixel (``x``, ``y``) on the Plotly graph ``graph_id``,
    repeated (up to ``tries`` times) until Plotly reports it as one (``plotly_doubleclick``),
    as a user double-clicks again when the first did nothing. Plotly counts two presses as a
    double click only when it handles them within 300 ms; on a loaded machine the browser
    may handle the second one later (seen at load ~10), and then two single clicks do
    nothing. Returns the number of double clicks sent."""
    arm = ("const gd = document.querySelector('#%s .js-plotly-plot'); window.__fmDouble = false;"
           "gd.once('plotly_doubleclick', () => { window.__fmDouble = true; });" % graph_id)
    for n in range(1, tries + 1):
        dash_duo.driver.execute_script(arm)
        double_click_at(dash_duo.driver, x, y)
        try:
            wait(lambda: dash_duo.driver.execute_script("return window.__fmDouble"), timeout=5,
                 message="plotly_doubleclick")
            return n
        except AssertionError:
            continue
    raise AssertionError(f"{tries} real double clicks on #{graph_id}, none handled as one")


def empty_spot(dash_duo, graph_id: str, xaxis: str = "xaxis", yaxis: str = "yaxis") -> tuple[float, float]:
    """Viewport pixel in the plot area of ``graph_id`` farthest from every drawn point (a
    20 x 12 grid, 5 % in from the edges): a click there hits no trace, so it selects nothing
    and starts no callback."""
    gd = dash_duo.find_element(f"#{graph_id} .js-plotly-plot")
    scroll_into_view(dash_duo.driver, gd)
    return tuple(dash_duo.driver.execute_script(
        "const gd = arguments[0], xa = gd._fullLayout[arguments[1]], ya = gd._fullLayout[arguments[2]];"
        "const pts = [];"
        "for (const t of gd._fullData) { if (t.visible !== true || !t.x || !t.y) continue;"
        "  for (let i = 0; i < t.x.length; i++) { const px = xa.d2p(t.x[i]), py = ya.d2p(t.y[i]);"
        "    if (isFinite(px) && isFinite(py)) pts.push([px, py]); } }"
        "let best = null, bestD = -1;"
        "for (let i = 0; i < 20; i++) for (let j = 0; j < 12; j++) {"
        "  const px = xa._length * (0.05 + 0.9 * i / 19), py = ya._length * (0.05 + 0.9 * j / 11);"
        "  let d = Infinity; for (const p of pts) d = Math.min(d, Math.hypot(p[0] - px, p[1] - py));"
        "  if (d > bestD) { bestD = d; best = [px, py]; } }"
        "const r = gd.getBoundingClientRect();"
        "return [r.left + xa._offset + best[0], r.top + ya._offset + best[1]];",
        gd, xaxis, yaxis))


def data_to_client(dash_duo, graph_id: str, x, y, xaxis: str = "xaxis", yaxis: str = "yaxis") -> tuple[float, float]:
    """Viewport pixel of the data point (``x``, ``y``) on the axes of the ``dcc.Graph``
    ``graph_id`` (scrolled into view first), from Plotly's own axis transforms
    (``d2p``: data to pixel within the plot area, ``_offset``: the plot area's position)."""
    gd = dash_duo.find_element(f"#{graph_id} .js-plotly-plot")
    scroll_into_view(dash_duo.driver, gd)
    return tuple(dash_duo.driver.execute_script(
        "const gd = arguments[0], xa = gd._fullLayout[arguments[3]], ya = gd._fullLayout[arguments[4]];"
        "const r = gd.getBoundingClientRect();"
        "return [r.left + xa._offset + xa.d2p(arguments[1]), r.top + ya._offset + ya.d2p(arguments[2])];",
        gd, x, y, xaxis, yaxis))


def plot_area(dash_duo, graph_id: str, xaxis: str = "xaxis", yaxis: str = "yaxis") -> dict:
    """Viewport rect ``{left, top, width, height}`` of the plot area of ``graph_id``'s axes."""
    gd = dash_duo.find_element(f"#{graph_id} .js-plotly-plot")
    scroll_into_view(dash_duo.driver, gd)
    return dash_duo.driver.execute_script(
        "const gd = arguments[0], xa = gd._fullLayout[arguments[1]], ya = gd._fullLayout[arguments[2]];"
        "const r = gd.getBoundingClientRect();"
        "return {left: r.left + xa._offset, top: r.top + ya._offset, width: xa._length, height: ya._length};",
        gd, xaxis, yaxis)


def rects_overlap(a: dict, b: dict) -> bool:
    """True when two client rects (``left, top, width, height``) share any area."""
    return (a["left"] < b["left"] + b["width"] and b["left"] < a["left"] + a["width"]
            and a["top"] < b["top"] + b["height"] and b["top"] < a["top"] + a["height"])


#: what a graph's modebar covers: each subplot's plot area (from plotly.js's axes), each legend
#: entry, annotation (subplot titles) and the title, as "what: text" strings
_MODEBAR_COVERS = r"""
const gd = arguments[0], bar = gd.querySelector('.modebar');
if (!bar) return [];
const m = bar.getBoundingClientRect(), g = gd.getBoundingClientRect();
const boxes = [];
for (const [id, p] of Object.entries(gd._fullLayout._plots || {})) {
  boxes.push(['plot area ' + id, g.left + p.xaxis._offset, g.top + p.yaxis._offset, p.xaxis._length, p.yaxis._length]);
}
for (const el of gd.querySelectorAll('.legend .traces, .annotation, .g-gtitle')) {
  const r = el.getBoundingClientRect();
  const what = el.getAttribute('class').split(' ')[0] + ': ' + el.textContent.slice(0, 40);
  boxes.push([what, r.left, r.top, r.width, r.height]);
}
return boxes.filter(([, l, t, w, h]) => w > 0 && h > 0 && l < m.right && m.left < l + w
                                      && t < m.bottom && m.top < t + h).map(b => b[0]);
"""


def modebar_covers(driver, graph_id: str) -> list[str]:
    """What plotly.js's modebar (shown on hover at the graph's top right) covers in graph
    ``graph_id``: plot areas, legend entries, annotations, the title. Empty when it covers nothing."""
    gd = driver.find_element("css selector", f"#{graph_id} .js-plotly-plot")
    return driver.execute_script(_MODEBAR_COVERS, gd)
