"""Browser tests of the strike-time page (``dash_duo``, headless Chromium) on the demo
tables, plus the server-side paths (CSV, URL parsing, latency-relevant builders)."""
from __future__ import annotations

import io
import re
import time
from datetime import datetime, timezone

import pandas as pd
import pytest
from selenium.common.exceptions import ElementClickInterceptedException
from selenium.webdriver.common.keys import Keys

from components.data import DataProvider
from components.filters import Filters
from pagetools import TIMEOUT, no_console_errors, page_module, plotly_js, start_app, url_query, wait


def _start(dash_duo, data_dir, path: str = "/strike-time"):
    return start_app(dash_duo, data_dir, path)


def _graph(dash_duo, expr: str):
    return plotly_js(dash_duo, "st-graph", expr)


def _n_points(dash_duo):
    return _graph(dash_duo, "gd.layout.meta ? gd.layout.meta.n_mechanisms : null")


def _select(dash_duo, selector, value):
    """Choose ``value`` in a dcc.Dropdown. The real mouse click first (what a user does); in
    full pytest-xdist runs another element intercepted it at the control's centre, so then
    the menu is opened and the option chosen through the DOM instead."""
    el = dash_duo.find_element(selector)
    d = dash_duo.driver
    d.execute_script("arguments[0].scrollIntoView({block: 'center'})", el)
    time.sleep(0.3)
    try:
        dash_duo.select_dcc_dropdown(selector, value=value)
    except ElementClickInterceptedException:
        d.execute_script("arguments[0].click()", el)
        option = wait(lambda: next((o for o in d.find_elements("css selector", ".dash-dropdown-option")
                                    if o.text == value), None), message=f"option {value}")
        d.execute_script("arguments[0].click()", option)
    wait(lambda: value in dash_duo.find_element(selector).text, message=f"{selector} shows {value}")


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


def _n_cluster(provider, cluster, f=None):
    return len(provider.mechanisms_per_event(f or Filters(), cluster))


def test_strike_time_page_loads_with_all_stages_and_clean_console(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    n = _n_cluster(provider, "NSw")
    assert n > 50
    wait(lambda: f"cluster NSw: {n:,} mechanisms" in dash_duo.find_element("#st-caption").text, message="caption")
    assert wait(lambda: _n_points(dash_duo) == n, message="figure")
    n_stages = len(provider.stages())
    ticks = _graph(dash_duo, "gd.data.filter(t => t.yaxis === 'y3' && t.mode === 'markers')"
                             ".reduce((a, t) => a + t.x.length, 0)")
    assert ticks == n_stages
    assert _graph(dash_duo, "gd.data.filter(t => t.type === 'bar').length") == 1
    # the bar's counts: drawn = this cluster's mechanisms
    wait(lambda: re.search(rf"{n:,} drawn", dash_duo.find_element(".fm-count-mechanisms").text),
         message="counts")
    # group statistics: one row per group, mean ± sd
    rows = dash_duo.driver.find_elements("css selector", ".st-stats-table tbody tr")
    assert len(rows) >= 1 and "±" in rows[0].text
    assert dash_duo.find_element(".fm-navbar .nav-link.active").get_attribute("textContent") == "Strike–time"
    time.sleep(0.5)
    no_console_errors(dash_duo)


def test_cluster_change_url_and_restore(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    wait(lambda: "cluster NSw" in dash_duo.find_element("#st-caption").text, message="NSw caption")
    _select(dash_duo, "#st-cluster", "SWe")
    n = _n_cluster(provider, "SWe")
    wait(lambda: f"cluster SWe: {n:,} mechanisms" in dash_duo.find_element("#st-caption").text, message="SWe")
    wait(lambda: "stcluster=SWe" in url_query(dash_duo), message="URL key")
    # a filter change keeps the page's key in the URL
    box = dash_duo.find_element(".fm-time-end")
    box.send_keys("2016-11-25\n")
    f = Filters.from_values(time_end="2016-11-25")
    n2 = _n_cluster(provider, "SWe", f)
    assert n2 < n
    wait(lambda: f"cluster SWe: {n2:,} mechanisms" in dash_duo.find_element("#st-caption").text, message="window")
    wait(lambda: "end=2016-11-25" in url_query(dash_duo) and "stcluster=SWe" in url_query(dash_duo),
         message="URL both")
    # reload restores both
    dash_duo.driver.get(dash_duo.driver.current_url)
    wait(lambda: f"cluster SWe: {n2:,} mechanisms" in dash_duo.find_element("#st-caption").text, message="restored")
    assert dash_duo.find_element(".fm-time-end").get_attribute("value") == "2016-11-25"
    assert "SWe" in dash_duo.find_element("#st-cluster").text
    no_console_errors(dash_duo)


def _retype(box, text: str):
    """Select all, delete, type ``text`` and Enter, as key presses (modifiers are released
    at the end of each ``send_keys``)."""
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(text, Keys.ENTER)


def _invalid(dash_duo, selector) -> bool:
    return "is-invalid" in (dash_duo.find_element(selector).get_attribute("class") or "")


def test_impossible_date_is_flagged_not_clamped(dash_duo, demo_data_dir, provider):
    """Issue 12 #1: 9999-99-99 was read as 2200-01-01 (no mechanism left, no flag)."""
    n = _n_cluster(provider, "NSw")
    _start(dash_duo, demo_data_dir, "/strike-time?start=9999-99-99")
    wait(lambda: _invalid(dash_duo, ".fm-time-start"), message="start flagged from the URL")
    assert dash_duo.find_element(".fm-time-start").get_attribute("value") == "9999-99-99"
    assert not _invalid(dash_duo, ".fm-time-end")
    wait(lambda: "Not a date (start, ignored)" in dash_duo.find_element(".fm-time-msg").text, message="message")
    wait(lambda: f"cluster NSw: {n:,} mechanisms" in dash_duo.find_element("#st-caption").text,
         message="unfiltered caption")
    # typed by a user: the field is cleared and the same text typed, then a valid date
    box = dash_duo.find_element(".fm-time-start")
    _retype(box, "2016-11-20")
    wait(lambda: not _invalid(dash_duo, ".fm-time-start"), message="valid date clears the flag")
    assert dash_duo.find_element(".fm-time-msg").text == ""
    n2 = _n_cluster(provider, "NSw", Filters(time_start=datetime(2016, 11, 20, tzinfo=timezone.utc)))
    wait(lambda: f"cluster NSw: {n2:,} mechanisms" in dash_duo.find_element("#st-caption").text, message="window")
    _retype(box, "9999-99-99")
    wait(lambda: _invalid(dash_duo, ".fm-time-start"), message="typed 9999-99-99 flagged")
    wait(lambda: f"cluster NSw: {n:,} mechanisms" in dash_duo.find_element("#st-caption").text,
         message="ignored, not clamped")
    assert "start=" not in url_query(dash_duo)
    no_console_errors(dash_duo)


def test_typed_start_after_end_is_flagged_and_keeps_both_days(dash_duo, demo_data_dir, provider):
    """Issue 12 #2: a reversed window was swapped silently and lost both boundary days."""
    _start(dash_duo, demo_data_dir)
    wait(lambda: "cluster NSw" in dash_duo.find_element("#st-caption").text, message="caption")
    dash_duo.find_element(".fm-time-end").send_keys("2016-11-20", Keys.ENTER)
    dash_duo.find_element(".fm-time-start").send_keys("2016-11-25", Keys.ENTER)
    wait(lambda: _invalid(dash_duo, ".fm-time-start") and _invalid(dash_duo, ".fm-time-end"), message="both flagged")
    wait(lambda: "Start is after end: showing 2016-11-20 → 2016-11-25" in dash_duo.find_element(".fm-time-msg").text,
         message="message")
    # the window applied: 2016-11-20 00:00 to 2016-11-25 23:59:59.999999, counted here directly
    mech = provider.mechanisms_per_event(Filters(), "NSw")
    t = pd.to_datetime(mech["time"], utc=True)
    want = int(((t >= pd.Timestamp("2016-11-20", tz="UTC")) & (t < pd.Timestamp("2016-11-26", tz="UTC"))).sum())
    assert want > 0
    wait(lambda: f"cluster NSw: {want:,} mechanisms" in dash_duo.find_element("#st-caption").text, message="window")
    wait(lambda: "start=2016-11-20&end=2016-11-25" in url_query(dash_duo), message="canonical URL")
    no_console_errors(dash_duo)


def test_zooming_the_time_axis_sets_the_shared_time_window(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    n = _n_cluster(provider, "NSw")
    wait(lambda: _n_points(dash_duo) == n, message="figure")
    def zoomed():
        _graph(dash_duo, "(Plotly.relayout(gd, {'xaxis.range[0]': '2016-11-20 06:10:30',"
                         " 'xaxis.range[1]': '2016-11-27 18:00:10'}), true)")
        try:  # a figure still settling can swallow the first zoom: zoom again then
            return wait(lambda: "start=2016-11-20T06%3A10" in url_query(dash_duo), timeout=8, message="URL start")
        except AssertionError:
            return False
    wait(zoomed, timeout=TIMEOUT, message="zoom -> time window in the URL")
    assert dash_duo.find_element(".fm-time-start").get_attribute("value") == "2016-11-20T06:10"
    assert dash_duo.find_element(".fm-time-end").get_attribute("value") == "2016-11-27T18:01"
    f = Filters.from_values(time_start="2016-11-20T06:10", time_end="2016-11-27T18:01")
    n2 = _n_cluster(provider, "NSw", f)
    assert 0 < n2 < n
    wait(lambda: _n_points(dash_duo) == n2, message="windowed figure")
    # the other pages follow: the navbar links carry the window
    href = dash_duo.driver.find_element("css selector", ".fm-navbar a[href^='/diffusion']").get_attribute("href")
    assert "start=2016-11-20T06" in href
    # autoscale clears the window
    _graph(dash_duo, "(Plotly.relayout(gd, {'xaxis.autorange': true}), true)")
    wait(lambda: "start=" not in url_query(dash_duo), message="window cleared")
    wait(lambda: _n_points(dash_duo) == n, message="full figure")
    no_console_errors(dash_duo)


def test_empty_state_and_no_data(dash_duo, demo_data_dir, tmp_path):
    _start(dash_duo, demo_data_dir, "/strike-time?mmin=9")
    wait(lambda: "No mechanism of cluster NSw matches the filters" in
         (_graph(dash_duo, "gd.layout.annotations.map(a => a.text).join(' ')") or ""), message="empty figure")
    wait(lambda: "No mechanisms to summarise" in dash_duo.find_element("#st-stats").text, message="empty stats")
    no_console_errors(dash_duo)


def test_no_data_message(dash_duo, tmp_path):
    _start(dash_duo, tmp_path / "nothing", "/strike-time")
    dash_duo.wait_for_contains_text(".fm-no-data", "No data yet", timeout=TIMEOUT)
    no_console_errors(dash_duo)


# -- server side (no browser) --------------------------------------------------------------------
def test_csv_is_the_plotted_table(demo_data_dir, provider):
    app, page = page_module(demo_data_dir, "pages.strike_time")
    with app.server.app_context():
        out = page.download(1, "mmin=-0.5", "NSw")
        fig, stats, caption, drawn = page.build_figure("mmin=-0.5", "NSw")
    csv = pd.read_csv(io.StringIO(out["content"]), dtype={"event_id": str})
    want = provider.mechanisms_per_event(Filters.from_values(mag_min=-0.5), "NSw")
    assert out["filename"] == "demo_strike_time_NSw.csv"  # the frame table's dataset (issue 12 #11)
    assert sorted(csv["event_id"]) == sorted(want["event_id"]) and len(csv) == fig["layout"]["meta"]["n_mechanisms"]
    assert (csv["cluster"] == "NSw").all() and csv["strike_norm"].between(90, 270).all()
    assert drawn["mechanisms"]["drawn"] == len(csv)


def test_page_state_and_brush_parsing(demo_data_dir):
    _, page = page_module(demo_data_dir, "pages.strike_time")

    clusters = ["NSw", "SWe"]
    assert page.page_state("", clusters) == {"cluster": "NSw"}
    assert page.page_state("stcluster=SWe&mmin=1", clusters) == {"cluster": "SWe"}
    assert page.page_state("stcluster=%00&stcluster=" + "x" * 100, clusters) == {"cluster": "NSw"}
    assert page.page_query({"cluster": "NSw"}, clusters) == ""
    assert page.page_query({"cluster": "SWe"}, clusters) == "stcluster=SWe"
    assert page.default_cluster(["SWe"]) == "SWe" and page.default_cluster([]) is None
    assert page.brushed_window({"xaxis.range": ["2016-11-20 06:10:30.5", "2016-11-20 06:10:40"]}) == \
        ("2016-11-20T06:10", "2016-11-20T06:11")
    assert page.brushed_window({"yaxis2.range[0]": 100, "yaxis2.range[1]": 200}) is None
    assert page.brushed_window({"xaxis.autorange": True}) == ("", "")
    assert page.brushed_window({"dragmode": "pan"}) is None


def test_toc2me_nsw_shows_290_mechanisms(tmp_path, toc2me_tables):
    from pipeline import tables

    tables.write_tables(tmp_path / "toc2me", toc2me_tables)
    app, page = page_module(tmp_path / "toc2me", "pages.strike_time")
    with app.server.app_context():
        fig, stats, caption, drawn = page.build_figure("", "NSw")
    assert caption.startswith("cluster NSw: 290 mechanisms, one per event (quality A, published first, else computed)"
                              " · 186 stages of 4 wells · 59 daily injection rows")
    assert fig["layout"]["meta"]["n_mechanisms"] == 290 and drawn["mechanisms"]["drawn"] == 290
    g1 = stats.set_index("group").loc["g1"]
    assert (int(g1["n"]), round(g1["mean"], 1), round(g1["std"], 1)) == (230, 182.7, 2.8)


def test_malformed_filter_in_url_is_alerted_not_read_as_no_filter(dash_duo, demo_data_dir):
    """Regression: ``?mmin=abc`` was silently read as "no magnitude filter" (and the bar's CSV
    link then downloaded every row). The bar now names it in an alert and disables the link;
    a clean address clears both."""
    _start(dash_duo, demo_data_dir, "/strike-time?mmin=abc&quality=Q")
    wait(lambda: "mmin='abc' is not a number" in dash_duo.find_element(".fm-filter-problem").text,
         message="alert names the value")
    assert "quality='Q' is not one of" in dash_duo.find_element(".fm-filter-problem").text
    link = dash_duo.find_element(".fm-download")
    assert "disabled" in link.get_attribute("class").split()
    dash_duo.wait_for_page(url=dash_duo.server_url + "/strike-time?mmin=1")
    wait(lambda: not dash_duo.find_elements(".fm-filter-problem"), message="alert cleared")
    assert "disabled" not in dash_duo.find_element(".fm-download").get_attribute("class").split()
    no_console_errors(dash_duo, "SEVERE")


def test_typed_start_after_the_data_runs_the_axis_forward_and_says_why_empty(dash_duo, demo_data_dir):
    """Issue 12 #2 (rest): a start typed after the data's last day drew the time axis
    backwards (from the start to the data's end) with only "no mechanism" to read."""
    _start(dash_duo, demo_data_dir)
    wait(lambda: "cluster NSw" in dash_duo.find_element("#st-caption").text, message="caption")
    _retype(dash_duo.find_element(".fm-time-end"), "")  # a user clears the end field
    _retype(dash_duo.find_element(".fm-time-start"), "2017-01-01")
    wait(lambda: "start=2017-01-01" in url_query(dash_duo) and "end=" not in url_query(dash_duo), message="URL")
    text = wait(lambda: (lambda t: t if "nothing after the start 2017-01-01" in t else None)(
        _graph(dash_duo, "gd.layout.annotations.map(a => a.text).join(' ')") or ""), message="empty-range note")
    assert "No mechanism of cluster NSw matches the filters" in text
    # what Plotly drew: the time at the axis' left end is before the time at its right end
    left, right = _graph(dash_duo, "[0, gd._fullLayout.xaxis._length].map(p => gd._fullLayout.xaxis.p2d(p))")
    assert pd.Timestamp(left) < pd.Timestamp(right)
    assert str(left).startswith("2017-01-01")
    assert not _invalid(dash_duo, ".fm-time-start")
    no_console_errors(dash_duo)


def test_unknown_page_cluster_in_the_url_is_named(dash_duo, demo_data_dir, provider):
    """Issue 12 #7 (rest): ``stcluster=bogus`` drew an empty figure that blamed the filters."""
    known = [c for c in provider.filter_options()["clusters"] if c != "none"]
    _start(dash_duo, demo_data_dir, "/strike-time?stcluster=bogus")
    text = wait(lambda: (lambda t: t if "No cluster bogus in these data" in t else None)(
        _graph(dash_duo, "gd.layout.annotations.map(a => a.text).join(' ')") or ""), message="note")
    assert all(c in text for c in known)
    no_console_errors(dash_duo)
