"""Browser tests of the diffusion page (``dash_duo``, headless Chromium) on the demo tables,
plus its server-side paths (URL parsing, CSV, the ToC2ME reference shares through the
provider)."""
from __future__ import annotations

import io
import math
import time

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from components import diffusion_figures as dff
from components import filter_bar
from components.data import DataProvider
from components.filters import Filters
from pagetools import (click_at, no_console_errors, page_module, plotly_js, record_callback_outputs, start_app,
                       url_params, url_query, wait)
from pipeline.analysis import diffusion as dif
from pipeline import tables


def _start(dash_duo, data_dir, path: str = "/diffusion"):
    return start_app(dash_duo, data_dir, path)


def _click(dash_duo, el):
    """Scroll into view and click (a JS click: overlays of a small test window intercept)."""
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", el)


def _fit_box(dash_duo):
    el = dash_duo.find_element(".dif-fit-box")
    return {k: float(el.get_attribute(f"data-{k}")) for k in ("d", "lo", "hi")}


def _shares_shown(dash_duo) -> dict:
    rows = dash_duo.driver.find_elements(By.CSS_SELECTOR, ".dif-shares-table tr")
    return {r.get_attribute("data-d"): r.find_element(By.CSS_SELECTOR, ".dif-share").text for r in rows}


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


@pytest.fixture(scope="module")
def truth(demo_data_dir) -> dict:
    ts = tables.read_table(demo_data_dir, "truth_scenario")
    return {n.split(".")[0]: float(v) for n, v in zip(ts["name"], ts["value_num"]) if n.endswith(".D")}


def _demo_lowdip(provider):
    from pipeline.demo.scenario import SUBSETS

    mech = provider.mechanisms_per_event(Filters())
    sub = next(s for s in SUBSETS if s.name == "SWe-lowdip")
    return mech[sub.mask(mech)]


def test_diffusion_page_loads_with_shares_fit_and_clean_console(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    sub = _demo_lowdip(provider)
    dt = dif.distance_time(sub)
    want = dff.shares(dt, dff.REFERENCE_D)
    expected = {f"{D:g}": f"{s:.0%}" for D, s in zip(want["D"], want["share"])}
    wait(lambda: _shares_shown(dash_duo) == expected, message=f"shares {expected}")
    # the figure states the same shares; the fit is D_0.9 of the set, with its interval
    labels = plotly_js(dash_duo, "dif-dt-graph", "gd.layout.annotations.map(a => a.text)")
    assert labels == [f"D = {dff.format_D(D)} · {s:.0%}" for D, s in zip(want["D"], want["share"])]
    fit = dff.fit_envelope(dt, q=0.9)
    box = wait(lambda: _fit_box(dash_duo), message="fit box")
    assert box["d"] == pytest.approx(fit["D"]) and box["lo"] == pytest.approx(fit["lo"])
    assert "fitted D" in dash_duo.find_element(".dif-fit-box").text
    # the distance definition is stated; the subset is the default set
    caption = dash_duo.find_element("#dif-dt-caption").text
    assert "SWe-lowdip" in caption and "epicentral" in caption and "depth ignored" in caption
    wait(lambda: f"{len(sub):,} drawn" in dash_duo.find_element(".fm-count-mechanisms").text, message="counts")
    # the player shows everything at the end of the slider; the demo has no activation bookmarks
    wait(lambda: f"{len(sub)} of {len(sub)} events" in dash_duo.find_element("#dif-player-text").text,
         message="player text")
    assert dash_duo.driver.find_elements(By.CSS_SELECTOR, "#dif-bookmarks button") == []
    assert dash_duo.find_element(".fm-navbar .nav-link.active").get_attribute("textContent") == "Diffusion"
    time.sleep(0.5)
    no_console_errors(dash_duo)


def test_demo_true_D_inside_the_interval_restored_from_the_url(dash_duo, demo_data_dir, provider, truth):
    """The documented setting: all events of a demo cluster, 3-D distance, q = 100 % (the
    envelope of all events): the fitted D's interval holds the scenario's true D."""
    path = "/diffusion?set=cluster%3ANSw&dist=hypocentral_3d&q=100"
    _start(dash_duo, demo_data_dir, path)
    ev = provider.cluster_events(Filters(), "NSw")
    wait(lambda: f"cluster NSw: {len(ev):,} events" in dash_duo.find_element("#dif-dt-caption").text,
         message="cluster caption")
    box = wait(lambda: _fit_box(dash_duo), message="fit box")
    assert box["lo"] <= truth["NSw"] <= box["hi"], (box, truth)
    assert box["d"] == pytest.approx(truth["NSw"], rel=0.01)
    assert "Robson–Whitlock" in dash_duo.find_element(".dif-fit-box").text
    checked = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#dif-dist input')).filter(i => i.checked).map(i => i.value)")
    assert checked == ["hypocentral_3d"]
    q = url_query(dash_duo)
    assert "set=cluster%3ANSw" in q and "dist=hypocentral_3d" in q and "q=100" in q
    no_console_errors(dash_duo)


def test_controls_update_figure_url_and_player(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    wait(lambda: _fit_box(dash_duo), message="fit box")
    # distance choice -> new definition, URL key
    label = next(e for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#dif-dist label") if e.text == "3-D")
    _click(dash_duo, label)
    wait(lambda: "3-D distance" in dash_duo.find_element("#dif-dt-caption").text, message="3-D caption")
    wait(lambda: "dist=hypocentral_3d" in url_query(dash_duo), message="URL dist")
    assert plotly_js(dash_duo, "dif-dt-graph", "gd.layout.yaxis.range[0]") == 0
    # comparison D: keyboard on the log slider -> the share inside follows
    before = dash_duo.find_element("#dif-compare-text").text
    handle = dash_duo.find_element("#dif-compare [role=slider]")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", handle)
    for _ in range(30):
        handle.send_keys(Keys.ARROW_RIGHT)
    wait(lambda: dash_duo.find_element("#dif-compare-text").text != before, message="compare text")
    text = dash_duo.find_element("#dif-compare-text").text
    D = float(text.split("D = ")[1].split(" ")[0])
    assert D == pytest.approx(10 ** (math.log10(0.0316) + 0.30), rel=0.03)
    wait(lambda: "D=" in url_query(dash_duo), message="URL D")
    name = plotly_js(dash_duo, "dif-dt-graph", "gd.data[gd.layout.meta.compare].name")
    assert name.startswith(f"compare: D = {dff.format_D(D)}")
    # player: play from the start, then pause
    play = dash_duo.find_element("#dif-play")
    end_text = wait(lambda: dash_duo.find_element("#dif-player-text").text, message="player text")
    _click(dash_duo, play)
    wait(lambda: "Pause" in dash_duo.find_element("#dif-play").text, message="playing")
    wait(lambda: dash_duo.find_element("#dif-player-text").text not in ("", end_text), message="frame")
    _click(dash_duo, dash_duo.find_element("#dif-play"))
    wait(lambda: "Play" in dash_duo.find_element("#dif-play").text, message="paused")
    wait(lambda: "t=" in url_query(dash_duo), message="URL t")
    cursor = plotly_js(dash_duo, "dif-dt-graph", "gd.layout.shapes[0].x0")
    assert cursor is not None and cursor < plotly_js(dash_duo, "dif-dt-graph", "gd.layout.meta.t_max_h")
    # reload restores the controls
    url = dash_duo.driver.current_url
    dash_duo.driver.get(url)
    wait(lambda: "3-D distance" in dash_duo.find_element("#dif-dt-caption").text, message="restored caption")
    wait(lambda: f"D = {dff.format_D(D)} m²/s" in dash_duo.find_element("#dif-compare-text").text,
         message="restored compare")
    no_console_errors(dash_duo)


def _text(component) -> str:
    """The text a Dash component tree shows (what Selenium's ``.text`` reads, without layout)."""
    if component is None:
        return ""
    if isinstance(component, (str, int, float)):
        return str(component)
    if isinstance(component, (list, tuple)):
        return "".join(_text(c) for c in component)
    return _text(getattr(component, "children", None))


def _assigned(patch, *location):
    """The value a ``Patch`` assigns at ``location`` (None when it assigns nothing there)."""
    ops = patch.to_plotly_json()["operations"]
    return next((o["params"]["value"] for o in ops if o["operation"] == "Assign" and o["location"] == list(location)),
                None)


#: each trace of a drawn figure as [name, its x: the base64 of a typed array, else the number of values]
_TRACES_JS = "gd.data.map(d => [d.name, (d.x && d.x.bdata !== undefined) ? d.x.bdata : (d.x || []).length])"


def _traces(fig: dict) -> list:
    """:data:`_TRACES_JS` of a server-side figure."""
    return [[d.get("name"), d["x"]["bdata"] if isinstance(d.get("x"), dict) else len(d.get("x") or [])]
            for d in fig["data"]]


def _requests_for(outputs: list[str], output: str) -> int:
    """How many recorded callback requests (:func:`pagetools.record_callback_outputs`) write ``output``."""
    return sum(output in o for o in outputs)


def test_first_load_with_page_keys_draws_the_callbacks_answer_without_their_requests(dash_duo, demo_data_dir):
    """Issue 12: the layout holds the first analysis and player frame. A URL with page keys
    (set, origin, distance, q, D, t) draws what ``analyse``, ``compare`` and ``player`` compute
    for those keys, and the first load sends none of those callbacks; the origin's reset then
    goes through them as before."""
    recorded = {}
    app = start_app(dash_duo, demo_data_dir,
                    before_start=lambda a: recorded.setdefault("outputs", record_callback_outputs(a)))
    outputs = recorded["outputs"]
    import pages.diffusion as page

    query = Filters().to_query()
    with app.server.app_context():
        first = page.analyse(query, "cluster:NSw", "", "hypocentral_3d", None, 80, -1.0, None, None)
        ev = page.resolve(query, "cluster:NSw", None, "hypocentral_3d", None)["events"].sort_values("time")
        origin = str(ev["event_id"].iloc[len(ev) // 3])  # not the earliest: the URL's origin is used
        _, end_text, _ = page.player(first.store, first.store["range"][1])
        with_origin = page.analyse(query, "cluster:NSw", origin, "hypocentral_3d", None, 80, -1.0, None, None)
        t = float(round((with_origin.store["range"][0] + with_origin.store["range"][1]) / 2))
        want = page.analyse(query, "cluster:NSw", origin, "hypocentral_3d", None, 80, -1.0, t, None)
        compare_patch, compare_text = page.compare(-1.0, want.store)
        map_fig, player_text, cursor = page.player(want.store, want.t_value)
    assert want.store["origin"] == origin and want.t_value == t and t < want.store["range"][1]

    del outputs[:]  # the map page that the server's start opened
    dash_duo.wait_for_page(url=dash_duo.server_url + f"/diffusion?set=cluster:NSw&origin={origin}&dist=hypocentral_3d"
                                                     f"&q=80&D=0.1&t={t:.0f}")
    wait(lambda: dash_duo.find_element("#dif-dt-caption").text == want.caption, message=f"caption {want.caption!r}")
    wait(lambda: dash_duo.find_element("#dif-player-text").text == player_text, message=f"player {player_text!r}")
    assert dash_duo.find_element("#dif-compare-text").text == _text(compare_text)
    assert dash_duo.find_element("#dif-origin-msg").text == want.origin_msg and origin in want.origin_msg
    assert _fit_box(dash_duo)["d"] == pytest.approx(want.store["D_fit"])
    assert float(dash_duo.find_element("#dif-t [role=slider]").get_attribute("aria-valuenow")) == t
    # the distance-time figure: the callback's traces, its comparison envelope, the cursor at t
    dt_fig = dict(want.figure, data=[dict(d) for d in want.figure["data"]])
    dt_fig["data"][want.store["compare_index"]]["name"] = _assigned(compare_patch, "data", want.store["compare_index"],
                                                                    "name")
    shown = wait(lambda: plotly_js(dash_duo, "dif-dt-graph", _TRACES_JS), message="distance-time figure")
    assert shown == _traces(dt_fig)
    assert _assigned(cursor, "layout", "shapes", 0, "x0") == pytest.approx(t / 3600.0)
    assert plotly_js(dash_duo, "dif-dt-graph", "gd.layout.shapes[0].x0") == pytest.approx(t / 3600.0)
    assert plotly_js(dash_duo, "dif-dt-graph", "gd.layout.shapes[0].visible") is True
    shown = wait(lambda: plotly_js(dash_duo, "dif-map-graph", _TRACES_JS), message="activation map")
    assert shown == _traces(map_fig)
    # the bar's counts are the page's drawn counts (the layout's drawn store)
    wait(lambda: f"{len(ev):,} drawn" in dash_duo.find_element(".fm-count-events").text, message="drawn counts")
    q = url_query(dash_duo)
    assert f"origin={origin}" in q and "dist=hypocentral_3d" in q and float(url_params(dash_duo)["t"][0]) == t

    # going back to the earliest origin runs analyse, then player and compare, once each: so
    # neither ran on the first load
    _click(dash_duo, dash_duo.find_element("#dif-origin-reset"))
    wait(lambda: origin not in dash_duo.find_element("#dif-origin-msg").text, message="earliest origin")
    wait(lambda: dash_duo.find_element("#dif-player-text").text == end_text,
         message=f"player at the end of the new range: {end_text!r}")
    wait(lambda: _requests_for(outputs, "dif-map-graph.figure") == 1, message=f"one player request in {outputs}")
    assert _requests_for(outputs, "dif-analysis.data") == 1, outputs
    assert _requests_for(outputs, "dif-compare-text.children") == 1, outputs
    no_console_errors(dash_duo)


#: the events of the distance-time plot as [event id, viewport x, viewport y], from Plotly's axis transforms
_EVENT_PIXELS_JS = """
const gd = document.querySelector('#dif-dt-graph .js-plotly-plot');
const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
const out = [];
gd.data.forEach(d => (d.customdata || []).forEach((id, i) => out.push(
    [id, r.left + xa._offset + xa.d2p(d.x[i]), r.top + ya._offset + ya.d2p(d.y[i])])));
return out;
"""


def test_clicking_an_event_makes_it_the_origin(dash_duo, demo_data_dir):
    """The plot's events are links to the origin control: a real click on the event farthest
    from its neighbours (pixels) makes it the origin, through ``choose_origin`` and ``analyse``."""
    _start(dash_duo, demo_data_dir)
    first = wait(lambda: dash_duo.find_element("#dif-origin-msg").text, message="origin message")
    gd = wait(lambda: dash_duo.find_element("#dif-dt-graph .js-plotly-plot"), message="distance-time plot")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", gd)
    points = wait(lambda: dash_duo.driver.execute_script(_EVENT_PIXELS_JS), message="plotted events")
    xy = [(x, y) for _, x, y in points]
    # the origin star sits at (0, 0): a click there would pick it (no event id), so it counts as a neighbour
    star = dash_duo.driver.execute_script(
        "const gd = document.querySelector('#dif-dt-graph .js-plotly-plot'), r = gd.getBoundingClientRect();"
        "return [r.left + gd._fullLayout.xaxis._offset + gd._fullLayout.xaxis.d2p(0),"
        "        r.top + gd._fullLayout.yaxis._offset + gd._fullLayout.yaxis.d2p(0)];")
    isolation = [min(math.hypot(x - a, y - b) for a, b in xy[:i] + xy[i + 1:] + [tuple(star)])
                 for i, (x, y) in enumerate(xy)]
    i = max(range(len(points)), key=isolation.__getitem__)
    event_id, x, y = points[i]
    assert event_id not in first and isolation[i] > 8, (event_id, isolation[i])
    click_at(dash_duo.driver, x, y)
    wait(lambda: dash_duo.find_element("#dif-origin-msg").text.startswith(f"{event_id} · "),
         message=f"origin {event_id}")
    assert dash_duo.find_element("#dif-origin").get_attribute("value") == event_id
    wait(lambda: f"origin={event_id}" in url_query(dash_duo), message="URL origin")
    # the new origin is the star at (0, 0): its own point is no longer among the events after it
    wait(lambda: plotly_js(dash_duo, "dif-dt-graph", "gd.data.find(d => d.name === 'origin event').hovertext[0]")
         == f"origin {event_id}", message="origin star")
    no_console_errors(dash_duo)


def test_empty_state_and_bad_origin(dash_duo, demo_data_dir):
    _start(dash_duo, demo_data_dir, "/diffusion?mmin=9")
    wait(lambda: "No event of SWe-lowdip v1 matches the filters" in dash_duo.find_element("#dif-fit").text,
         message="empty fit")
    wait(lambda: "No event" in (plotly_js(dash_duo, "dif-map-graph",
                                          "gd.layout.annotations.map(a => a.text).join(' ')") or ""),
         message="empty map")
    # an unknown origin id: said so, and the default origin is used
    dash_duo.driver.get(dash_duo.server_url + "/diffusion?origin=nope")
    wait(lambda: "unknown event id" in dash_duo.find_element("#dif-origin-msg").text, message="origin message")
    wait(lambda: _fit_box(dash_duo), message="fit with default origin")
    no_console_errors(dash_duo)


# -- server side (no browser) --------------------------------------------------------------------
def test_page_state_parsing(demo_data_dir):
    _, page = page_module(demo_data_dir, "pages.diffusion")

    options = [{"value": "subset:SWe-lowdip"}, {"value": "cluster:NSw"}]
    s = page.page_state("", options)
    assert s == {"set": "subset:SWe-lowdip", "origin": None, "dist": "signed_epicentral", "strike": None,
                 "q": 90, "D": 0.0316, "t": None}
    s = page.page_state("set=cluster:NSw&dist=along_strike&strike=370&q=120&D=5&t=-3.5&origin=20161121000100.270",
                        options)
    assert s == {"set": "cluster:NSw", "origin": "20161121000100.270", "dist": "along_strike", "strike": 10.0,
                 "q": 100, "D": 1.0, "t": -3.5}
    hostile = page.page_state("set=%27;DROP&dist=x&q=nan&D=-1&strike=inf&origin=%00", options)
    assert hostile["set"] == "subset:SWe-lowdip" and hostile["dist"] == "signed_epicentral"
    assert hostile["q"] == 90 and hostile["D"] == 0.0316 and hostile["strike"] is None and hostile["origin"] is None
    assert page.default_set([]) is None


@pytest.fixture(scope="module")
def toc2me_data(toc2me_tables, tmp_path_factory):
    """The ToC2ME tables in a data folder (tests must not write to it)."""
    data = tmp_path_factory.mktemp("toc2me")
    tables.write_tables(data, toc2me_tables)
    return data


def test_csv_and_toc2me_shares_through_the_provider(toc2me_data):
    """The page's own path on real tables: SWe-lowdip, original distance and origin ->
    21 % / 89 % / 100 %; and the CSV is the distance-time table."""
    app, page = page_module(toc2me_data, "pages.diffusion")
    with app.server.app_context():
        out = page.analyse("", "subset:SWe-lowdip", "", "signed_epicentral", None, 90, math.log10(0.0316), None, None)
        fig, store = out[0], out[4]
        # the set is cut on quality A or B: the bar's mechanism count is of that population,
        # and the store says so, so the bar does not label it with its own default (A)
        drawn = out[3]
        assert drawn["population"] == "AB"
        ab = page.get_provider().counts(Filters.from_query("mech=AB")).iloc[0]["mechanisms"]
        a = page.get_provider().counts(Filters.from_query("")).iloc[0]["mechanisms"]
        assert drawn["mechanisms"]["matched"] == ab != a
        bar = str(filter_bar.counts_children(Filters.from_query(""), drawn))
        assert "quality A or B, published first, else computed (this set's own)" in bar
        assert f"{ab:,}" in bar
        shares = {k: round(v, 2) for k, v in fig["layout"]["meta"]["shares"].items()}
        assert shares == {"0.01": 0.21, "0.0316": 0.89, "0.1": 1.0}
        assert store["origin"] == "20161121000100.270" and store["n"] == 142
        assert [b["label"] for b in store["bookmarks"]] == [f"Fault{i}" for i in range(1, 7)]
        assert store["bookmarks"][2]["text"] == "2016-11-22 05:21:40.80"  # seconds keep their fractions
        csv = pd.read_csv(io.StringIO(page.download(1, store)["content"]), dtype={"event_id": str})
        assert list(csv.columns) == dff.CSV_COLUMNS and len(csv) == 142
        assert csv["inside"].mean() == pytest.approx(0.9, abs=0.01)
        # the player at Fault3: only mechanisms up to that time
        t3 = store["bookmarks"][2]["s"]
        mfig, text = page.build_frame(store, t3)
        assert "05:21:40.80" in text
        n_mech = int(text.split(" of 142 mechanisms")[0].rsplit("· ", 1)[1])
        hover = next(t for t in mfig["data"] if t.get("name") == "mechanism")
        assert 0 < n_mech < 142 and len(hover["customdata"]) == n_mech
        # NSw cluster: 290 mechanisms drawn on the player (one per event)
        out = page.analyse("", "cluster:NSw", "", "signed_epicentral", None, 90, -1.5, None, None)
        assert out[3]["mechanisms"]["matched"] == 290
        assert "population" not in out[3]                                   # the bar's own population


def test_toc2me_bookmarks_come_with_the_page_and_move_the_player(dash_duo, toc2me_data):
    """The six activation bookmarks of the SWe sets are in the first layout; clicking one
    moves the player to its time (the clientside callback, then ``player``)."""
    app = _start(dash_duo, toc2me_data)
    import pages.diffusion as page

    with app.server.app_context():
        store = page.analyse("", "subset:SWe-lowdip", "", "signed_epicentral", None, 90, -1.5, None, None).store
        fault3 = store["bookmarks"][2]
        _, want, _ = page.player(store, fault3["s"])
    buttons = wait(lambda: dash_duo.driver.find_elements(By.CSS_SELECTOR, "#dif-bookmarks button"), message="bookmarks")
    # the SWe set counts its own population (quality A or B), and the bar names it
    label = dash_duo.find_element(".fm-population-label").text
    assert label == "one per event: quality A or B, published first, else computed (this set's own)", label
    assert [b.text.split()[0] for b in buttons] == [b["label"] for b in store["bookmarks"]]
    _click(dash_duo, buttons[2])
    wait(lambda: dash_duo.find_element("#dif-player-text").text == want, message=f"player at Fault3: {want!r}")
    assert "05:21:40.80" in want
    wait(lambda: abs(float(url_params(dash_duo)["t"][0]) - fault3["s"]) <= 0.005, message="URL t")
    no_console_errors(dash_duo)


def test_frame_read_error_is_raised_not_shown_as_no_subsets(demo_data_dir):
    """Regression: ``_dataset`` turned any error reading the ``frame`` table into None, so the
    page said "These data have no subsets or clusters to analyse" about data that have them."""
    _, page = page_module(demo_data_dir, "pages.diffusion")

    class BrokenFrame:
        def frame(self):
            raise OSError("frame.parquet: corrupt footer")

    with pytest.raises(OSError, match="corrupt footer"):
        page._dataset(BrokenFrame())
    with pytest.raises(OSError, match="corrupt footer"):
        page.set_options(BrokenFrame())

    class Frame:
        def __init__(self, df):
            self.df = df

        def frame(self):
            return self.df

    assert page._dataset(Frame(pd.DataFrame({"origin_lat": [1.0], "dataset": ["demo"]}))) == "demo"
    # a frame that names no dataset (a user's own project) is not an error: no named subsets
    assert page._dataset(Frame(pd.DataFrame({"origin_lat": [1.0]}))) is None
    assert page._dataset(Frame(pd.DataFrame({"origin_lat": [1.0], "dataset": [None]}))) is None
    assert page._dataset(DataProvider(demo_data_dir)) == "demo"


def test_player_speed_control_moves_further_per_frame(dash_duo, demo_data_dir):
    """Issue 12 #11: the player had no speed control (80 frames, 0.7 s apart: 56 s). At 4×
    each frame moves four 1× steps, so every frame shown is a multiple of 4 steps from the
    start and the end comes after 20 frames."""
    from selenium.webdriver.support.ui import Select

    _start(dash_duo, demo_data_dir)
    wait(lambda: _fit_box(dash_duo), message="fit box")
    handle = dash_duo.find_element("#dif-t [role=slider]")
    lo, hi = (float(handle.get_attribute(a)) for a in ("aria-valuemin", "aria-valuemax"))
    assert hi > lo
    speed = dash_duo.find_element("#dif-speed")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", speed)
    Select(speed).select_by_visible_text("4× speed")
    play = dash_duo.find_element("#dif-play")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", play)
    play.click()
    seen = set()

    def ended():
        seen.add(float(dash_duo.find_element("#dif-t [role=slider]").get_attribute("aria-valuenow")))
        return "Play" in dash_duo.find_element("#dif-play").text and hi in seen

    wait(ended, timeout=60, message="played to the end")
    step4 = 4 * (hi - lo) / 80
    frames = sorted((v - lo) / step4 for v in seen if v < hi)
    assert len(frames) >= 3  # several frames seen while playing
    assert all(abs(k - round(k)) < 0.02 for k in frames), frames  # whole 4× steps (slider step: 1 s)
    assert max(frames) <= 20
    no_console_errors(dash_duo)
