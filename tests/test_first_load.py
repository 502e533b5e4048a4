"""A cold load renders its page from the first ``_dash-layout`` (no router round trip) and
loads plotly.js once, after the page's callbacks are sent (issue 12: time to a drawn page).

``components.layout.page_container`` puts the page named by the ``X-FM-Address`` header
(sent by ``assets/layout_address.js``) into the layout; Dash's router callback still renders
every later navigation. ``app._early_scripts`` preloads plotly.js and the components' lazy
chunks; ``assets/plotly_loader.js`` holds dcc.Graph until the page's callbacks are out.
"""
from __future__ import annotations

import json
from urllib.parse import quote

import dash
import pytest

from pagetools import TIMEOUT, no_console_errors, start_app, wait


@pytest.fixture()
def client(demo_data_dir):
    from app import create_app

    app = create_app(demo_data_dir)
    c = app.server.test_client()
    c.get("/")  # Dash loads the pages on the first request
    return c


def _find(node, component_id):
    """The component dict with ``id == component_id`` in a layout JSON tree, or None."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == component_id:
            return node
        children = node.get("props", {}).get("children") if "props" in node else None
        for child in ([children] if isinstance(children, dict) else children or []):
            found = _find(child, component_id)
            if found is not None:
                return found
    elif isinstance(node, list):
        for child in node:
            found = _find(child, component_id)
            if found is not None:
                return found
    return None


def _layout(client, address=None):
    headers = {"X-FM-Address": quote(address, safe="")} if address else {}
    r = client.get("/_dash-layout", headers=headers)
    assert r.status_code == 200
    return r.get_json()


def _page(module):
    return next(p for m, p in dash.page_registry.items() if m.split(".")[-1] == module)


def test_layout_holds_the_addressed_page_with_its_location_and_title(client):
    address = "http://127.0.0.1:8050/wells?quality=A#top"
    tree = _layout(client, address)
    content = _find(tree, "_pages_content")["props"]["children"]
    assert _find(content, "wells-timeline") is not None
    # the page's filter bar was built from the query string (quality A selected)
    quality = _find(content, {"type": "fm-quality", "page": "wells"})
    assert quality["props"]["value"] == ["A"]
    loc = _find(tree, "_pages_location")["props"]
    assert (loc["pathname"], loc["search"], loc["hash"], loc["href"]) == ("/wells", "?quality=A", "#top", address)
    assert _find(tree, "_pages_store")["props"]["data"] == {"title": _page("wells")["title"]}


def test_unknown_address_gets_the_404_page_and_no_header_the_empty_container(client):
    content = _find(_layout(client, "http://127.0.0.1:8050/no-such-page"), "_pages_content")["props"]["children"]
    assert _find(content, "fm-not-found") is not None
    plain = _layout(client)
    assert _find(plain, "_pages_content")["props"].get("children") is None
    assert "pathname" not in _find(plain, "_pages_location")["props"]


def test_event_address_passes_its_path_variable(client, demo_data_dir):
    import pandas as pd

    eid = str(pd.read_parquet(demo_data_dir / "mechanisms.parquet", columns=["event_id"])["event_id"].min())
    tree = _layout(client, f"http://127.0.0.1:8050/event/{eid}")
    assert eid in json.dumps(_find(tree, "_pages_content"))
    assert _find(tree, "_pages_store")["props"]["data"]["title"] == _page("event")["title"](event_id=eid)


def test_index_preloads_plotly_and_loads_the_lazy_chunks(client):
    from app import EAGER_CHUNKS, PLOTLY_JS_PATH

    page = client.get("/").get_data(as_text=True)
    assert f'rel="preload" as="script" id="fm-plotly-preload" href="/{PLOTLY_JS_PATH}"' in page
    for chunk in EAGER_CHUNKS:
        assert f'<script src="/_dash-component-suites/{chunk}"></script>' in page
        assert client.get(f"/_dash-component-suites/{chunk}").status_code == 200


#: counts the renderer's callback requests by output (installed before the page's scripts)
_RECORDER = r"""
window.__cb = [];
const orig = window.fetch;
window.fetch = function(input, init) {
  const url = (typeof input === 'string') ? input : (input && input.url) || '';
  if (url.indexOf('_dash-update-component') >= 0) {
    try { window.__cb.push(JSON.parse(init.body).output); } catch (e) { window.__cb.push('?'); }
  }
  return orig.apply(this, arguments);
};
"""


def test_cold_load_draws_without_the_router_and_navigation_still_uses_it(dash_duo, demo_data_dir):
    start_app(dash_duo, demo_data_dir, window_size=(1400, 900))  # navbar expanded (lg)
    driver = dash_duo.driver
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _RECORDER})
    dash_duo.wait_for_page(url=dash_duo.server_url + "/wells?quality=A")
    wait(lambda: driver.execute_script(
        "const g = document.querySelector('#wells-timeline .js-plotly-plot'); return !!(g && g._fullData)"),
        message="wells timeline drawn")
    assert driver.title == _page("wells")["title"]
    calls = driver.execute_script("return window.__cb")
    assert calls and not any("_pages_content" in c for c in calls)
    # plotly.js loaded once (dcc's script tag, from the preload), the real library in place
    assert driver.execute_script(
        "return [document.querySelectorAll('script[src*=\"plotly.min.js\"]').length,"
        " typeof window.Plotly.newPlot]") == [1, "function"]

    # an in-app navigation is rendered by Dash's router, keeping the filters
    link = dash_duo.wait_for_element("#" + _navlink_css("/magnitudes"), timeout=TIMEOUT)
    wait(lambda: "quality=A" in link.get_attribute("href"), message="navbar link with the filters")
    link.click()
    dash_duo.wait_for_element("#mag-time-graph .js-plotly-plot", timeout=TIMEOUT)
    assert driver.title == _page("magnitudes")["title"]
    calls = driver.execute_script("return window.__cb")
    assert sum("_pages_content" in c for c in calls) == 1
    assert "quality=A" in driver.current_url
    no_console_errors(dash_duo)


def _navlink_css(path: str) -> str:
    """CSS id selector body of a navbar link (Dash writes dict ids as sorted JSON)."""
    raw = json.dumps({"path": path, "type": "fm-navlink"}, separators=(",", ":"))
    return "".join("\\" + ch if not ch.isalnum() else ch for ch in raw)
