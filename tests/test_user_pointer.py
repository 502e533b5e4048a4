"""Browser tests that act like a user (issue 12, "What to build" 4): real pointer events at
pixel positions computed from Plotly's own axis transforms (map clicks, box zoom, brushing a
time window), real clicks on buttons, real key presses -- no ``gd.emit``, ``Plotly.relayout``
or JavaScript ``.click()``. Each test also covers a rough edge of issue 12's list where one
applies (#11: the lon/lat axis title, the zoom tip over the filters).

Helpers: :mod:`pagetools` (``click_at``, ``drag``, ``data_to_client``, ``scroll_into_view``).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.by import By

from components.data import DataProvider
from components.filters import Filters
from pagetools import (callbacks_settled, click_at, click_element, count_callbacks, data_to_client, drag,
                       empty_spot, modebar_covers, no_console_errors, plot_area, plotly_double_click, rects_overlap,
                       scroll_into_view, start_app, url_query, wait)


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


def _gd(dash_duo, graph_id: str, expr: str):
    return dash_duo.driver.execute_script(
        f"const gd = document.querySelector('#{graph_id} .js-plotly-plot');"
        f"if (!gd || !gd._fullData) return null; return ({expr});")


def _rect(driver, element) -> dict:
    return driver.execute_script("const r = arguments[0].getBoundingClientRect();"
                                 "return {left: r.left, top: r.top, width: r.width, height: r.height};", element)


def _map_ready(dash_duo, provider, f=Filters()):
    want = int(provider.counts(f).iloc[0]["mechanisms"])
    wait(lambda: _gd(dash_duo, "map-graph", "gd.layout.meta && gd.data[gd.layout.meta.balls] ? "
                                            "gd.data[gd.layout.meta.balls].customdata.length : null") == want,
         message="map balls drawn")


# --- map -------------------------------------------------------------------------------------

def test_clicking_a_beachball_selects_its_event(dash_duo, demo_data_dir, provider):
    """A real click on the pixel of an isolated beachball's centre selects that event: the
    details panel names it and the highlight ring moves onto it. The test before sent
    ``plotly_click`` for the ball's own trace from JavaScript and so missed that a real click
    there lands on the event's dot (an earlier trace at the same place) and selected nothing."""
    start_app(dash_duo, demo_data_dir, window_size=(1400, 1000))
    _map_ready(dash_duo, provider)
    balls = _gd(dash_duo, "map-graph", "(() => { const t = gd._fullData[gd.layout.meta.balls];"
                                       " return [Array.from(t.x), Array.from(t.y), t.customdata.map(c => c[0])]; })()")
    x, y, ids = np.asarray(balls[0], float), np.asarray(balls[1], float), balls[2]
    ev = pd.read_parquet(demo_data_dir / "events.parquet", columns=["event_id", "x_km", "y_km"])
    pts = np.column_stack([ev["x_km"], ev["y_km"]])
    # the ball farthest from any other event: a click there can only mean that ball. Its own
    # event is left out by id: the figure's float32 coordinates are not exactly the table's, so
    # a distance test (< 1e-9 km) kept it, and the "farthest" ball was one whose own rounding
    # was largest, however close its neighbours (one 6 m, under a pixel, from another event)
    d = np.sqrt(((np.column_stack([x, y])[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
    d[np.asarray(ids, dtype=object)[:, None] == ev["event_id"].to_numpy(dtype=object)[None, :]] = np.inf
    (xa, xb), (ya, yb) = (sorted(_gd(dash_duo, "map-graph", f"gd._fullLayout.{a}.range.slice()"))
                          for a in ("xaxis", "yaxis"))
    inside = (x > xa + 0.1 * (xb - xa)) & (x < xb - 0.1 * (xb - xa)) & (y > ya + 0.1 * (yb - ya)) & \
        (y < yb - 0.1 * (yb - ya))  # well inside the drawn view (the legend sits on its top edge)
    k = int(np.argmax(np.where(inside, d.min(axis=1), -1.0)))
    px, py = data_to_client(dash_duo, "map-graph", float(x[k]), float(y[k]))
    click_at(dash_duo.driver, px, py)
    wait(lambda: ids[k] in dash_duo.find_element("#map-details").text, message=f"details of {ids[k]}")
    ring = wait(lambda: (lambda v: v if v and len(v[0]) == 1 else None)(_gd(
        dash_duo, "map-graph", "(() => { const t = gd._fullData[gd.layout.meta.highlight];"
                               " return [Array.from(t.x || []), Array.from(t.y || [])]; })()")), message="ring")
    assert ring[0][0] == pytest.approx(x[k], abs=1e-6) and ring[1][0] == pytest.approx(y[k], abs=1e-6)
    no_console_errors(dash_duo)


def test_box_zoom_by_mouse_keeps_the_zoom_tip_off_the_filters(dash_duo, demo_data_dir, provider):
    """Rough edge 11: after a zoom Plotly's "Double-click to zoom back out" toast covered the
    filter bar's Quality and Source fields. A real click on the modebar's Zoom button, a real
    drag on the map, then (scrolled to the top) no toast overlaps the filters; the axes did
    zoom to the dragged box, and a real double click zooms back out and asks the server for
    the whole map's beachball detail again."""
    start_app(dash_duo, demo_data_dir, window_size=(1400, 1000))
    _map_ready(dash_duo, provider)
    d = dash_duo.driver
    full = _gd(dash_duo, "map-graph", "gd._fullLayout.xaxis.range.slice()")
    area = plot_area(dash_duo, "map-graph")
    click_at(d, area["left"] + area["width"] / 2, area["top"] + 10)  # hover: the modebar appears
    click_element(d, dash_duo.find_element("#map-graph .modebar-btn[data-val='zoom'][data-attr='dragmode']"))
    wait(lambda: _gd(dash_duo, "map-graph", "gd._fullLayout.dragmode") == "zoom", message="zoom mode")
    area = plot_area(dash_duo, "map-graph")
    cx, cy = area["left"] + area["width"] / 2, area["top"] + area["height"] / 2
    x0 = _gd(dash_duo, "map-graph", f"gd._fullLayout.xaxis.p2d({area['width'] / 2 - 80})")
    x1 = _gd(dash_duo, "map-graph", f"gd._fullLayout.xaxis.p2d({area['width'] / 2 + 80})")
    sent = count_callbacks(dash_duo)
    drag(d, (cx - 80, cy - 60), (cx + 80, cy + 60))
    d.execute_script("window.scrollTo({top: 0, behavior: 'instant'})")
    filters = [dash_duo.find_element(s) for s in (".fm-quality", ".fm-source")]
    notes = d.find_elements(By.CSS_SELECTOR, ".plotly-notifier .notifier-note")
    for note in notes:
        for el in filters:
            assert not rects_overlap(_rect(d, note), _rect(d, el)), (note.text, el.get_attribute("class"))
    zoomed = wait(lambda: (lambda r: r if r != full else None)(_gd(dash_duo, "map-graph",
                                                                 "gd._fullLayout.xaxis.range.slice()")),
                  message="zoomed")
    # the box's x extent is kept (the aspect lock may widen the other axis, never this one narrower)
    assert zoomed[0] <= x0 + 1e-6 and zoomed[1] >= x1 - 1e-6 and zoomed[1] - zoomed[0] < full[1] - full[0]
    # the zoom's level-of-detail answer redraws the balls: a user double-clicks once the map is drawn
    wait(lambda: callbacks_settled(dash_duo, sent), message="the zoom's detail drawn")
    sent = count_callbacks(dash_duo)
    # where no point is: a click on an event would select it (a callback and a redraw)
    plotly_double_click(dash_duo, "map-graph", *empty_spot(dash_duo, "map-graph"))
    # Plotly's reset+autosize: back to the first view, or (when it judges the view already
    # there) to every trace's extent, which is wider still: either is "zoomed back out"
    wait(lambda: (lambda r: r and (r[1] - r[0]) >= (full[1] - full[0]) * (1 - 1e-6))(
        _gd(dash_duo, "map-graph", "gd._fullLayout.xaxis.range.slice()")), message="zoomed back out")
    # the reset (Plotly reports it as {"xaxis.range": [...], ...}) asks for the full map's detail
    wait(lambda: callbacks_settled(dash_duo, sent), message="the reset's level of detail")
    no_console_errors(dash_duo)


def test_lonlat_view_axis_titles_clear_the_tick_labels(dash_duo, demo_data_dir, provider):
    """Rough edge 11: in the lon/lat view the y-axis title overlapped its (3-decimal) tick
    labels. The view is chosen with a real click on its button; then the drawn title lies
    left of every drawn tick label, and the x title below every x tick label."""
    start_app(dash_duo, demo_data_dir, window_size=(1400, 1000))
    _map_ready(dash_duo, provider)
    d = dash_duo.driver
    label = next(e for e in d.find_elements(By.CSS_SELECTOR, ".fm-view label") if e.text.strip() == "lon/lat")
    click_element(d, label)
    wait(lambda: "view=geo" in url_query(dash_duo), message="view in the URL")
    wait(lambda: "Latitude" in (_gd(dash_duo, "map-graph", "gd._fullLayout.yaxis.title.text") or ""), message="geo")
    wait(lambda: _gd(dash_duo, "map-graph", "gd.querySelectorAll('.ytick text').length") or 0, message="ticks")
    scroll_into_view(d, dash_duo.find_element("#map-graph"))
    boxes = d.execute_script(
        "const gd = document.querySelector('#map-graph .js-plotly-plot');"
        "const b = el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };"
        "return {yt: b(gd.querySelector('.g-ytitle text')), xt: b(gd.querySelector('.g-xtitle text')),"
        " yticks: Array.from(gd.querySelectorAll('.ytick text')).filter(t => t.textContent).map(b),"
        " xticks: Array.from(gd.querySelectorAll('.xtick text')).filter(t => t.textContent).map(b)};")
    assert boxes["yticks"] and boxes["xticks"]
    assert boxes["yt"][2] <= min(t[0] for t in boxes["yticks"]), boxes
    assert boxes["xt"][1] >= max(t[3] for t in boxes["xticks"]), boxes
    no_console_errors(dash_duo)


# --- event page: review keys, a real click on Re-invert -------------------------------------

@pytest.fixture
def event_data_dir(demo_data_dir, tmp_path):
    """A copy of the demo tables without the review database (the page writes into it)."""
    import shutil

    d = tmp_path / "data"
    shutil.copytree(demo_data_dir, d, ignore=shutil.ignore_patterns("reviews.sqlite*"))
    return d


def test_review_keys_and_reinvert_click_name_reviewed_picks_review(dash_duo, event_data_dir):
    """Rough edge 11: after a review the re-inversion's "Picks" read ``cnn;manual`` while the
    station table calls the same picks "review". Real key presses review two stations (↓ then
    →), a real click on Re-invert runs it; then "Picks" of the re-inverted column names
    ``review`` (not ``manual``) and the table's Used column shows the same word for those
    stations."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    from pipeline import tables
    from pipeline.review.reviews import ReviewStore

    mech = tables.read_table(event_data_dir, "mechanisms")
    waves = set(tables.read_table(event_data_dir, "waveforms", columns=["event_id"])["event_id"])
    eid = sorted(e for e in mech.loc[mech["source"] == "computed", "event_id"] if e in waves)[0]
    start_app(dash_duo, event_data_dir, f"/event/{eid}", window_size=(1400, 1000))
    d = dash_duo.driver
    wait(lambda: d.execute_script("const w = document.querySelector('#ev-waves .js-plotly-plot');"
                                  "return !!(w && w._fullData);"), message="event page")
    store = ReviewStore(event_data_dir)
    for _ in range(2):
        d.execute_script("if (document.activeElement) { document.activeElement.blur(); }")
        ActionChains(d).send_keys(Keys.ARROW_DOWN).perform()
        ActionChains(d).send_keys(Keys.ARROW_RIGHT).perform()
    wait(lambda: len(store.picks(eid)) == 2, message="two reviewed picks stored")
    click_element(d, dash_duo.find_element("#ev-reinvert"))
    wait(lambda: "Last re-inversion" in dash_duo.find_element("#ev-reinvert-status").text, timeout=60,
         message="re-inversion done")
    picks = wait(lambda: d.execute_script(
        "const th = Array.from(document.querySelectorAll('#ev-metrics th')).find(t => t.innerText.trim() === 'Picks');"
        "if (!th) return null; const cells = th.parentElement.querySelectorAll('td');"
        "return cells[cells.length - 1].innerText;"), message="Picks row")
    assert "review" in picks.split(";") and "manual" not in picks.split(";"), picks
    used = wait(lambda: [t.text for t in d.find_elements(By.CSS_SELECTOR, "#ev-table td[data-dash-column=used]")
                         if "review" in t.text], message="Used column names review")
    assert len(used) == 2
    no_console_errors(dash_duo)


# --- strike-time: brushing the time axis with the mouse ---------------------------------------

def test_brushing_strike_time_by_mouse_sets_the_shared_window(dash_duo, demo_data_dir, provider):
    """A real horizontal drag across the strike-time scatter (zoom mode) sets the filter
    bar's time window to the dragged span (start floored, end ceiled to the minute): the URL
    and the figure follow, and the figure draws the mechanisms of that window, counted here
    from the provider. A real click on the modebar's Autoscale clears the window (the test
    before called ``Plotly.relayout`` from JavaScript)."""
    start_app(dash_duo, demo_data_dir, "/strike-time", window_size=(1400, 1000))
    n_all = len(provider.mechanisms_per_event(Filters(), "NSw"))
    wait(lambda: _gd(dash_duo, "st-graph", "gd.layout.meta.n_mechanisms") == n_all, message="figure")
    area = plot_area(dash_duo, "st-graph", "xaxis", "yaxis2")
    y = area["top"] + area["height"] / 2
    xa, xb = area["left"] + 0.3 * area["width"], area["left"] + 0.6 * area["width"]
    t0, t1, per_px = _gd(dash_duo, "st-graph", "[gd._fullLayout.xaxis.p2d(%f), gd._fullLayout.xaxis.p2d(%f),"
                                               " gd._fullLayout.xaxis.p2l(1) - gd._fullLayout.xaxis.p2l(0)]"
                         % (0.3 * area["width"], 0.6 * area["width"]))
    drag(dash_duo.driver, (xa, y), (xb, y))
    wait(lambda: "start=" in url_query(dash_duo) and "end=" in url_query(dash_duo), message="window in the URL")
    start = dash_duo.find_element(".fm-time-start").get_attribute("value")
    end = dash_duo.find_element(".fm-time-end").get_attribute("value")
    tol = pd.Timedelta(milliseconds=2 * per_px) + pd.Timedelta(minutes=1)  # two pixels and the rounding
    assert abs(pd.Timestamp(start) - pd.Timestamp(t0)) <= tol, (start, t0)
    assert abs(pd.Timestamp(end) - pd.Timestamp(t1)) <= tol, (end, t1)
    n_win = len(provider.mechanisms_per_event(Filters.from_values(time_start=start, time_end=end), "NSw"))
    assert 0 < n_win < n_all
    wait(lambda: _gd(dash_duo, "st-graph", "gd.layout.meta.n_mechanisms") == n_win, message="windowed figure")
    # the modebar's Autoscale clears it (a double click resets to the drawn window: the figure
    # is redrawn with the window as its range)
    area = plot_area(dash_duo, "st-graph", "xaxis", "yaxis2")
    click_at(dash_duo.driver, area["left"] + area["width"] / 2, area["top"] + 5)  # hover: the modebar appears
    # ... above the stage lanes, not over well A's last stages
    lanes = plot_area(dash_duo, "st-graph", "xaxis", "yaxis3")
    modebar = _rect(dash_duo.driver, dash_duo.find_element("#st-graph .modebar"))
    assert modebar["width"] > 0 and not rects_overlap(modebar, lanes), (modebar, lanes)
    click_element(dash_duo.driver, dash_duo.find_element("#st-graph .modebar-btn[data-val='auto']"))
    wait(lambda: "start=" not in url_query(dash_duo), message="window cleared")
    wait(lambda: _gd(dash_duo, "st-graph", "gd.layout.meta.n_mechanisms") == n_all, message="full figure")
    no_console_errors(dash_duo)


# --- wells: brushing the stage timeline with the mouse ----------------------------------------

def test_brushing_the_wells_timeline_by_mouse_sets_the_window_and_double_click_clears(dash_duo, demo_data_dir,
                                                                                   provider):
    """A real horizontal drag across the stage lanes sets the shared time window (URL, the
    bar's fields, the stage table's caption, counted here with :func:`stage_table`); a real
    double click (the graph's ``doubleClick: autosize``) clears it."""
    from components import wells_figures as wf

    start_app(dash_duo, demo_data_dir, "/wells", window_size=(1400, 1000))
    stages = provider.stages()
    n = len(stages)
    wait(lambda: f"all {n} stages" in dash_duo.find_element("#wells-table-caption").text, message="caption")
    wait(lambda: _gd(dash_duo, "wells-timeline", "gd.layout.meta.n_stages") == n, message="figure")
    area = plot_area(dash_duo, "wells-timeline", "xaxis", "yaxis")
    y = area["top"] + area["height"] / 2
    t0, t1, per_px = _gd(dash_duo, "wells-timeline",
                         "[gd._fullLayout.xaxis.p2d(%f), gd._fullLayout.xaxis.p2d(%f),"
                         " gd._fullLayout.xaxis.p2l(1) - gd._fullLayout.xaxis.p2l(0)]"
                         % (0.25 * area["width"], 0.55 * area["width"]))
    sent = count_callbacks(dash_duo)
    drag(dash_duo.driver, (area["left"] + 0.25 * area["width"], y), (area["left"] + 0.55 * area["width"], y))
    wait(lambda: "start=" in url_query(dash_duo) and "end=" in url_query(dash_duo), message="window in the URL")
    start = dash_duo.find_element(".fm-time-start").get_attribute("value")
    end = dash_duo.find_element(".fm-time-end").get_attribute("value")
    tol = pd.Timedelta(milliseconds=2 * per_px) + pd.Timedelta(hours=1)  # two pixels and the hour rounding
    assert abs(pd.Timestamp(start) - pd.Timestamp(t0)) <= tol, (start, t0)
    assert abs(pd.Timestamp(end) - pd.Timestamp(t1)) <= tol, (end, t1)
    f = Filters.from_values(time_start=start, time_end=end)
    n_in = len(wf.stage_table(stages, f.time_start, f.time_end))
    assert 0 < n_in < n
    wait(lambda: f"{n_in} of {n} stages" in dash_duo.find_element("#wells-table-caption").text, message="table")
    wait(lambda: callbacks_settled(dash_duo, sent), message="the window's figures drawn")  # see callbacks_settled
    area = plot_area(dash_duo, "wells-timeline", "xaxis", "yaxis")
    plotly_double_click(dash_duo, "wells-timeline", area["left"] + area["width"] / 2, area["top"] + area["height"] / 2)
    wait(lambda: "start=" not in url_query(dash_duo) and "end=" not in url_query(dash_duo), message="cleared")
    wait(lambda: f"all {n} stages" in dash_duo.find_element("#wells-table-caption").text, message="caption reset")
    no_console_errors(dash_duo)


# --- the modebar ------------------------------------------------------------------------------

#: every page with plotly.js graphs that keep their modebar, and those graphs
MODEBAR_GRAPHS = {
    "/": ["map-graph"], "/magnitudes": ["mag-time-graph", "mag-fmd-graph"], "/classification": ["cls-map"],
    "/strike-time": ["st-graph"], "/diffusion": ["dif-dt-graph", "dif-map-graph"], "/wells": ["wells-timeline"],
    "/model": ["model-curves", "model-confusion", "model-calibration", "model-training"],
}


@pytest.fixture
def toc2me_data(toc2me_tables, tmp_path):
    """The ToC2ME tables in a data folder of this test's own."""
    from pipeline import tables

    tables.write_tables(tmp_path / "toc2me", toc2me_tables)
    return tmp_path / "toc2me"


@pytest.mark.parametrize("window, data", [((1400, 900), "demo_data_dir"), ((1280, 800), "toc2me_data")])
def test_the_modebar_covers_no_data_title_or_legend_entry(dash_duo, request, window, data):
    """The modebar a user gets on hovering a graph (top right) sits in the figure's top margin:
    clicking through the pages found it over the map's last legend entry, over the top of the
    classification, diffusion and calibration plots, over subplot titles of the model page
    and (at 1280 px) over the wells timeline's last legend entry. At a 1400 x 900 window the
    map's plot area is also the one its beachball edge width is computed for
    (``map_figure.PLOT_PX``). On ToC2ME at 1280 px: its legends are the longest (the wells
    timeline's "injection (no well id)"). Below ~1100 px a top legend wraps to a second row,
    which still reaches up to the modebar."""
    from components.map_figure import PLOT_PX

    start_app(dash_duo, request.getfixturevalue(data), "/", window_size=window)
    d = dash_duo.driver
    base = dash_duo.server_url.rstrip("/")
    for path, graphs in MODEBAR_GRAPHS.items():
        d.get(base + path)  # "/" too: start_app opened it before the window took its size
        for gid in graphs:
            wait(lambda: d.execute_script(
                "const gd = document.querySelector(arguments[0]); return !!(gd && gd._fullLayout &&"
                " gd.querySelector('.modebar'));", f"#{gid} .js-plotly-plot"), message=f"{path} {gid}")
        assert {gid: modebar_covers(d, gid) for gid in graphs} == {gid: [] for gid in graphs}, path
        if path == "/" and window == (1400, 900):
            size = _gd(dash_duo, "map-graph", "[gd._fullLayout.xaxis._length, gd._fullLayout.yaxis._length]")
            assert tuple(size) == PLOT_PX
    no_console_errors(dash_duo)
