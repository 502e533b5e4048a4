"""A first load asks the server for the page once (issue 12): the app layout holds the page
(components.first_page), it is requested while the scripts load (components.early_layout),
and the pages whose figures come with their layout send no callback at all until the user
acts. Browser tests in headless Chromium (``dash_duo``) on the demo build; the requests are
recorded on the server."""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from flask import request

from components import early_layout, first_page
from pagetools import no_console_errors, record_callback_outputs, start_app, wait
from pipeline import tables


def _rule_fragment() -> str:
    """A classification rule (g2's strike 19-60 narrowed to 19-45) and a beachball
    threshold of 1.5, as the page writes them into the fragment."""
    from components import classification_figures as cf

    rows = cf.default_rule_rows()
    rows[3]["strike_max"] = 45
    rule, _ = cf.check_rule(rows)
    return cf.format_hash(rule, 1.5)


RULE_FRAGMENT = _rule_fragment()

# settle time after the page is drawn: a callback sent by a mount (a Store, a Location)
# leaves within a frame or two of the draw
SETTLE_S = 1.0


@pytest.fixture
def data_dir(demo_data_dir, tmp_path) -> Path:
    d = tmp_path / "data"
    # the event page opens the review database: never in the shared demo folder
    shutil.copytree(demo_data_dir, d, ignore=shutil.ignore_patterns("reviews.sqlite*"))
    return d


def _event_with_mechanism(data_dir) -> str:
    mech = tables.read_table(data_dir, "mechanisms")
    waves = set(tables.read_table(data_dir, "waveforms", columns=["event_id"])["event_id"])
    return sorted(e for e in mech["event_id"] if e in waves)[0]


def _recorders(app) -> dict:
    """Server-side records: callback outputs, and the Referer of each layout and
    dependencies request."""
    rec = {"outputs": record_callback_outputs(app), "layout": [], "deps": []}

    @app.server.before_request
    def _record():
        if request.path.endswith("/_dash-layout"):
            rec["layout"].append(request.referrer)
        elif request.path.endswith("/_dash-dependencies"):
            rec["deps"].append(request.referrer)

    return rec


def _drawn(dash_duo) -> bool:
    return bool(dash_duo.driver.execute_script(
        "const gs = document.querySelectorAll('.dash-graph');"
        "return gs.length > 0 && [...gs].every(g => g.querySelector('.js-plotly-plot .main-svg')) &&"
        " !document.querySelector('._dash-loading, ._dash-loading-callback, [data-dash-is-loading=\"true\"]');"))


def _load(dash_duo, rec, path) -> None:
    for k in rec:
        rec[k].clear()
    dash_duo.driver.get(dash_duo.server_url + path)
    wait(lambda: _drawn(dash_duo), message=f"{path} drawn")
    time.sleep(SETTLE_S)


def test_pages_come_whole_with_one_layout_request_and_no_callback(dash_duo, data_dir):
    """Every page (map, magnitudes, classification, strike-time, diffusion, wells, model,
    event): one layout and one dependencies request per load (the early ones: a second
    would mean the renderer did not take them), each naming the page as its Referer, and no
    callback request: neither the router's nor the filter bar's (sync, counts, problems)
    nor the page's own. Classification also with a rule and a threshold in the fragment,
    which the early layout request sends."""
    recorded = {}
    start_app(dash_duo, data_dir, before_start=lambda a: recorded.setdefault("rec", _recorders(a)))
    rec = recorded["rec"]
    event = _event_with_mechanism(data_dir)
    # (a fragment-only change of the same address is no reload: each path follows another page)
    paths = ["/?cluster=NSw", "/magnitudes?mmin=-1", "/classification", "/strike-time", "/diffusion",
             f"/classification?quality=A{RULE_FRAGMENT}", "/wells?start=2016-11-01", "/model", f"/event/{event}"]
    for path in paths:
        _load(dash_duo, rec, path)
        url = dash_duo.server_url + path.split("#")[0]
        assert rec["layout"] == [url], (path, rec["layout"])
        assert rec["deps"] == [url], (path, rec["deps"])
        # (Plotly reports the first draw's autosize as relayoutData: the time brushes of
        # strike-time and wells see only time-axis changes)
        assert rec["outputs"] == [], (path, rec["outputs"])
    no_console_errors(dash_duo)


#: records every graph that shows dcc.Graph's Suspense fallback (a ``.dash-graph`` with
#: ``dash-graph--pending``; a resize puts that class on the plot's own div, not counted)
PENDING_RECORDER = """
window.__fmPending = [];
new MutationObserver(() => {
  for (const g of document.querySelectorAll('.dash-graph.dash-graph--pending')) {
    const name = g.id || g.className;
    if (!window.__fmPending.includes(name)) window.__fmPending.push(name);
  }
}).observe(document, {childList: true, subtree: true});
"""


def test_no_graph_waits_for_its_implementation_where_the_page_asks(dash_duo, data_dir):
    """On the pages registered with ``start_graphs`` (classification, model, event) the graphs'
    lazy implementation is started before the first render (``eager_chunks.START_SCRIPT``),
    so no graph shows its Suspense fallback on a first load: all mount in the first commit
    instead of in later, throttled ones. The other pages keep Dash's default: the map's
    graph is pending first (which also shows the recorder sees a fallback)."""
    start_app(dash_duo, data_dir)
    dash_duo.driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": PENDING_RECORDER})
    # (the classification page's one Plotly graph is its map: its other figures are server SVG)
    event = f"/event/{_event_with_mechanism(data_dir)}"  # a path template: matched by its prefix
    for path, started, graphs in [("/classification", True, 1), ("/?cluster=NSw", False, 1), ("/model", True, 2),
                                  (event, True, 2)]:
        dash_duo.driver.get(dash_duo.server_url + path)
        wait(lambda: _drawn(dash_duo), message=f"{path} drawn")
        n_graphs = dash_duo.driver.execute_script("return document.querySelectorAll('.dash-graph').length")
        assert n_graphs >= graphs, (path, n_graphs)
        pending = dash_duo.driver.execute_script("return window.__fmPending")
        assert (pending == []) if started else ("map-graph" in pending), (path, pending)
    no_console_errors(dash_duo)


def test_the_pages_answer_to_the_address_as_the_router_did(dash_duo, data_dir):
    """The layout built from the Referer matches what the router builds: a malformed time in
    the address is kept in its field and flagged and named above the bar, the counts and
    the tab title are there, with no callback; and the filter controls still work (a change
    goes to the server and into the address)."""
    recorded = {}
    start_app(dash_duo, data_dir, before_start=lambda a: recorded.setdefault("rec", _recorders(a)))
    rec = recorded["rec"]
    _load(dash_duo, rec, "/wells?start=9999-99-99")
    start = dash_duo.find_element("#" + _css_id({"type": "fm-time_start", "page": "wells"}))
    assert start.get_attribute("value") == "9999-99-99"
    assert "is-invalid" in start.get_attribute("class")
    assert "Not a date" in dash_duo.find_element(".fm-time-msg").text
    assert "9999-99-99" in dash_duo.find_element(".fm-filter-problem").text
    assert "matched" in dash_duo.find_element(".fm-counts").text
    wait(lambda: dash_duo.driver.title.startswith("Wells"), message="tab title")
    assert rec["outputs"] == [], rec["outputs"]
    start.clear()
    start.send_keys("2016-11-01\n")
    wait(lambda: "start=2016-11-01" in dash_duo.driver.current_url, message="the address follows the field")
    wait(lambda: "is-invalid" not in start.get_attribute("class"), message="flag cleared")
    assert any("fm-filters" in o for o in rec["outputs"]), rec["outputs"]


def test_without_a_referer_the_router_builds_the_page(dash_duo, data_dir, monkeypatch):
    """A browser that sends no Referer (a privacy setting): the layout is the empty page
    container and Dash pages' router fills it, with the same flags."""
    monkeypatch.setattr(first_page, "_page_address", lambda: None)
    recorded = {}
    start_app(dash_duo, data_dir, before_start=lambda a: recorded.setdefault("rec", _recorders(a)))
    rec = recorded["rec"]
    _load(dash_duo, rec, "/wells?start=9999-99-99")
    assert any("_pages_content.children" in o for o in rec["outputs"]), rec["outputs"]
    start = dash_duo.find_element("#" + _css_id({"type": "fm-time_start", "page": "wells"}))
    assert start.get_attribute("value") == "9999-99-99"
    assert "is-invalid" in start.get_attribute("class")


def _css_id(d: dict) -> str:
    """CSS selector id of a dict component id (Dash writes it as sorted compact JSON)."""
    s = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return "".join("\\" + c if not c.isalnum() and c not in "-_" else c for c in s)


# -- without a browser --------------------------------------------------------------------------
def _layout_for(app, referer: str | None, host: str = "localhost", fragment: str | None = None):
    headers = {"Referer": referer} if referer else {}
    if fragment is not None:
        headers[first_page.FRAGMENT_HEADER] = fragment
    with app.server.test_client() as c:
        r = c.get("/_dash-layout", headers=headers, base_url=f"http://{host}")
    assert r.status_code == 200
    return r.get_json()


def _props_by_id(layout: dict) -> dict:
    """Every component's props by its id (a dict id as sorted JSON), from a layout's JSON."""
    found = {}

    def walk(node):
        if isinstance(node, dict):
            props = node.get("props", {})
            i = props.get("id")
            if i is not None:
                found[i if isinstance(i, str) else json.dumps(i, sort_keys=True)] = props
            for v in props.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(layout)
    return found


def _container(layout: dict) -> dict:
    """The page container's props by id, from the app layout's JSON."""
    return {k: v for k, v in _props_by_id(layout).items() if k in ("_pages_location", "_pages_content", "_pages_store")}


def test_the_layout_request_builds_the_page_of_its_referer(demo_data_dir):
    from app import create_app

    app = create_app(demo_data_dir)
    c = _container(_layout_for(app, "http://localhost/wells?start=2016-11-01"))
    assert c["_pages_location"]["pathname"] == "/wells"
    assert c["_pages_location"]["search"] == "?start=2016-11-01"
    assert "hash" not in c["_pages_location"]  # the router's Location: the browser reports the fragment
    assert c["_pages_content"]["children"], "the page is in the layout"
    assert c["_pages_store"]["data"]["title"].startswith("Wells")
    # unknown path: the 404 page, as the router answers it
    c = _container(_layout_for(app, "http://localhost/no-such-page"))
    assert c["_pages_location"]["pathname"] == "/no-such-page"
    assert "Page not found" in json.dumps(c["_pages_content"]["children"])  # pages/not_found_404.py
    assert c["_pages_store"]["data"]["title"].startswith("Page not found")


def test_the_fragment_header_gives_the_page_its_fragment(demo_data_dir):
    """The early request's fragment header (URI-encoded, as encodeURIComponent writes it):
    the classification page starts with the fragment's rule and threshold, and the bar's
    Location with the fragment (so it does not report it on mount). A header that is not a
    fragment, or none, leaves the fragment unknown: the published rule and no ``hash``; an
    empty one is a known empty fragment (``hash`` ``''``)."""
    from urllib.parse import quote

    from app import create_app

    app = create_app(demo_data_dir)
    url = "http://localhost/classification"
    props = _props_by_id(_layout_for(app, url, fragment=quote(RULE_FRAGMENT, safe="")))
    bar_location = json.dumps({"type": "fm-url", "page": "classification"}, sort_keys=True)
    assert props[bar_location]["hash"] == RULE_FRAGMENT
    assert props["cls-rule-table"]["data"][3]["strike_max"] == 45
    assert props["cls-ml"]["value"] == 1.5
    for header, known in ((None, False), ("rule%3Dx", False), ("", True)):
        props = _props_by_id(_layout_for(app, url, fragment=header))
        assert props["cls-rule-table"]["data"][3]["strike_max"] == 60
        assert props["cls-ml"]["value"] != 1.5
        assert props[bar_location].get("hash") == ("" if known else None), header


@pytest.mark.parametrize("referer", [None, "http://elsewhere.example/wells", "not a url"])
def test_no_usable_referer_leaves_the_page_to_the_router(demo_data_dir, referer):
    from app import create_app

    app = create_app(demo_data_dir)
    c = _container(_layout_for(app, referer))
    assert "pathname" not in c["_pages_location"] and not c["_pages_content"].get("children")


def test_a_failing_page_layout_leaves_the_page_to_the_router(demo_data_dir, monkeypatch):
    from app import create_app

    app = create_app(demo_data_dir)

    def broken(*a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(first_page, "_route", broken)
    c = _container(_layout_for(app, "http://localhost/wells"))
    assert "pathname" not in c["_pages_location"] and not c["_pages_content"].get("children")


def test_outside_a_page_build_there_is_no_search():
    assert first_page.routed_search() is None


# -- the early-request script ---------------------------------------------------------------------
DASH_TEMPLATE = "<html><head>{%metas%}</head><body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body></html>"


@pytest.mark.parametrize("prefix,want", [("/", "/_dash-layout"), ("/app/", "/app/_dash-layout"),
                                         ("/app", "/app/_dash-layout")])
def test_the_early_script_asks_for_the_renderers_own_addresses(prefix, want):
    out = early_layout.index_string(DASH_TEMPLATE, prefix)
    assert out.index("<script>") < out.index("{%metas%}") < out.index("{%scripts%}")
    assert json.dumps(want) in out and json.dumps(want.replace("layout", "dependencies")) in out


def test_a_template_without_a_head_is_refused():
    with pytest.raises(ValueError, match="head"):
        early_layout.index_string("<html><body></body></html>")
