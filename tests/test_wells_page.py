"""The wells page: figure/table builders (no browser) and ``dash_duo`` tests (headless
Chromium) of the timeline linked to the shared time window."""
from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components import wells_figures as wf
from components.data import DataProvider
from components.filters import Filters
from pagetools import TIMEOUT, no_console_errors, plotly_js, start_app, url_params, wait


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


def _utc(s: str) -> pd.Timestamp:
    return pd.Timestamp(s, tz="UTC")


# -- builders (no browser) ------------------------------------------------------------------------
def test_every_stage_of_every_well_is_a_marker(provider):
    stages = provider.stages()
    fig = wf.timeline_figure(stages, provider.injection())
    markers = [t for t in fig["data"] if t["type"] == "scatter" and "customdata" in t]
    assert sum(len(t["x"]) for t in markers) == len(stages)
    legend = [t["name"] for t in fig["data"] if t.get("showlegend", True)]
    for t in markers:
        w = t["y"][0]
        assert set(t["y"]) == {w}
        assert sorted(t["customdata"]) == sorted(stages.loc[stages["well"] == w, "stage_no"].tolist())
        assert t["marker"]["symbol"].count("diamond") == 1  # the well's first stage
        assert f"well {w} ({(stages['well'] == w).sum()} stages)" in legend
    assert fig["layout"]["meta"] == {"window": None, "n_stages": len(stages), "n_in_window": len(stages)}
    assert fig["layout"]["shapes"] == []
    assert fig["layout"]["xaxis"]["type"] == "date" and "range" not in fig["layout"]["xaxis"]


def test_injection_bars_span_their_own_calendar_day():
    inj = pd.DataFrame({"date": pd.to_datetime(["2016-11-01", "2016-11-02", "2016-11-02"]).date,
                        "rate_m3_min": [5.0, 6.0, 7.0], "volume_m3": [100.0, np.nan, 300.0], "well": None})
    fig = wf.timeline_figure(None, inj)
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert len(bars) == 1 and bars[0]["name"] == "injection (no well id)"
    b = bars[0]
    # one row on Nov 1: centred at noon, a day wide; two rows on Nov 2 share the day
    assert b["x"] == ["2016-11-01 12:00:00", "2016-11-02 06:00:00", "2016-11-02 18:00:00"]
    assert b["width"] == [86_400_000.0, 43_200_000.0, 43_200_000.0]
    assert b["y"] == [5.0, 6.0, 7.0] and b["yaxis"] == "y2"
    assert [c[1] for c in b["customdata"]] == ["100", "–", "300"]
    # wells named in the table colour the bars
    inj["well"] = ["A", "B", "A"]
    names = [t["name"] for t in wf.timeline_figure(None, inj)["data"]]
    assert names == ["injection, well A", "injection, well B"]


def test_window_band_fading_and_table(provider):
    stages = provider.stages()
    start, end = _utc("2016-11-10"), _utc("2016-11-20 12:00")
    t = pd.to_datetime(stages["time"], utc=True)
    n_in = int(((t >= start) & (t <= end)).sum())
    assert 0 < n_in < len(stages)
    fig = wf.timeline_figure(stages, provider.injection(), start, end)
    band = fig["layout"]["shapes"][0]
    assert (band["type"], band["x0"], band["x1"], band["yref"]) == \
        ("rect", "2016-11-10 00:00:00", "2016-11-20 12:00:00", "paper")
    assert len(fig["layout"]["shapes"]) == 3  # band + two edges
    assert fig["layout"]["meta"]["n_in_window"] == n_in
    assert fig["layout"]["meta"]["window"] == ["2016-11-10 00:00:00", "2016-11-20 12:00:00"]
    opac = [o for tr in fig["data"] if "customdata" in tr and tr["type"] == "scatter" for o in tr["marker"]["opacity"]]
    assert opac.count(1.0) == n_in and opac.count(0.25) == len(stages) - n_in
    # the view is the window padded by a quarter of its length on each side
    x0, x1 = (pd.Timestamp(v, tz="UTC") for v in fig["layout"]["xaxis"]["range"])
    assert x0 == start - (end - start) / 4 and x1 == end + (end - start) / 4
    assert fig["layout"]["uirevision"] != wf.timeline_figure(stages, None)["layout"]["uirevision"]
    # the table: stages in the window, sorted by well and stage
    tab = wf.stage_table(stages, start, end)
    assert len(tab) == n_in and tab["in_window"].all()
    assert list(tab.columns) == list(wf.STAGE_COLUMNS)
    assert tab[["well", "stage_no"]].equals(tab[["well", "stage_no"]].sort_values(["well", "stage_no"]))
    assert len(wf.stage_table(stages)) == len(stages)
    assert len(wf.stage_table(stages, start, end, only_window=False)) == len(stages)
    # an open-ended window: a band from the start to the end of the data
    fig = wf.timeline_figure(stages, provider.injection(), start, None)
    assert len(fig["layout"]["shapes"]) == 2 and fig["layout"]["shapes"][0]["x0"] == "2016-11-10 00:00:00"


def test_window_from_relayout():
    ask = wf.window_from_relayout({"xaxis.range[0]": "2016-11-10 05:23:11.12", "xaxis.range[1]": "2016-11-12 06:00:30"})
    assert ask == ("set", datetime(2016, 11, 10, 5, 23, tzinfo=timezone.utc),
                   datetime(2016, 11, 12, 6, 1, tzinfo=timezone.utc))
    assert wf.window_from_relayout({"xaxis.range": ["2016-11-12", "2016-11-10"]})[1:] == (
        datetime(2016, 11, 10, tzinfo=timezone.utc), datetime(2016, 11, 12, tzinfo=timezone.utc))
    assert wf.window_from_relayout({"xaxis.autorange": True}) == ("clear", None, None)
    for other in (None, {}, {"autosize": True}, {"yaxis.range[0]": 1, "yaxis.range[1]": 2},
                  {"xaxis.range[0]": "garbage", "xaxis.range[1]": "x"}, {"dragmode": "pan"}):
        assert wf.window_from_relayout(other) is None


def test_empty_inputs():
    fig = wf.timeline_figure(None, None)
    assert fig["data"] == [] and "No stages" in fig["layout"]["annotations"][0]["text"]
    empty = pd.DataFrame(columns=["well", "stage_no", "time"])
    assert wf.stage_table(empty).empty and list(wf.stage_table(empty).columns) == list(wf.STAGE_COLUMNS)
    one = pd.DataFrame({"well": ["A"], "stage_no": [1], "time": [_utc("2016-11-01 10:00")], "lat": [54.3],
                        "lon": [-117.2], "x_km": [0.0], "y_km": [1.0], "day_index": [1.0]})
    fig = wf.timeline_figure(one, None)
    assert len(fig["data"]) == 2 and fig["layout"]["annotations"][0]["text"] == "no injection data"


# -- browser --------------------------------------------------------------------------------------
def _start(dash_duo, data_dir, search: str = ""):
    return start_app(dash_duo, data_dir, "/wells" + search)


def _gd(dash_duo, expr: str):
    return plotly_js(dash_duo, "wells-timeline", expr)


def test_page_loads_and_zoom_sets_the_shared_time_window(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    stages = provider.stages()
    n = len(stages)
    wait(lambda: f"all {n} stages" in dash_duo.find_element("#wells-table-caption").text, message="caption")
    assert wait(lambda: _gd(dash_duo, "gd.layout.meta.n_stages"), message="figure") == n
    assert _gd(dash_duo, "gd.layout.shapes.length") == 0
    notes = dash_duo.find_element(".fm-page-wells .fm-about").text
    assert "hour resolution" in notes and "no time zone" in notes
    assert dash_duo.find_element(".fm-navbar .nav-link.active").get_attribute("textContent") == "Wells"
    # zoom the time axis (what a drag does): the filters' window follows, in the URL too
    _gd(dash_duo, "(Plotly.relayout(gd, {'xaxis.range[0]': '2016-11-10 00:00:00',"
                  " 'xaxis.range[1]': '2016-11-20 12:00:00'}), true)")
    wait(lambda: (lambda p: p.get("start") == ["2016-11-10"] and p.get("end") == ["2016-11-20T12:00"])(
        url_params(dash_duo)), message="window in the URL")
    assert dash_duo.find_element(".fm-time-start").get_attribute("value") == "2016-11-10"
    assert dash_duo.find_element(".fm-time-end").get_attribute("value") == "2016-11-20T12:00"
    f = Filters.from_values(time_start="2016-11-10", time_end="2016-11-20T12:00")
    n_in = len(wf.stage_table(stages, f.time_start, f.time_end))
    wait(lambda: f"{n_in} of {n} stages" in dash_duo.find_element("#wells-table-caption").text,
         message="table follows")
    wait(lambda: _gd(dash_duo, "gd.layout.shapes.length") == 3, message="shaded band")
    assert _gd(dash_duo, "gd.layout.shapes[0].x0") == "2016-11-10 00:00:00"
    # the event counts of the bar follow the window (the same filters as every page)
    want = int(provider.counts(f).iloc[0]["events"])
    wait(lambda: f"{want:,}" in dash_duo.find_element(".fm-count-events").text, message="bar counts")
    # the navbar carries the window to the other pages
    wait(lambda: "start=2016-11-10" in dash_duo.driver.find_element(
        "css selector", ".fm-navbar a.nav-link[href^='/magnitudes'], .fm-navbar a.nav-link[href^='/?']"
    ).get_attribute("href"), message="navbar link")
    # autoscale (double-click) clears the window
    _gd(dash_duo, "(Plotly.relayout(gd, {'xaxis.autorange': true}), true)")
    wait(lambda: "start" not in url_params(dash_duo) and "end" not in url_params(dash_duo),
         message="window cleared")
    wait(lambda: f"all {n} stages" in dash_duo.find_element("#wells-table-caption").text, message="caption reset")
    wait(lambda: _gd(dash_duo, "gd.layout.shapes.length") == 0, message="band removed")
    no_console_errors(dash_duo)


def test_url_restores_the_window_and_csv(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir, "?start=2016-11-15&end=2016-11-25&mmin=0")
    stages = provider.stages()
    f = Filters.from_values(time_start="2016-11-15", time_end="2016-11-25")
    tab = wf.stage_table(stages, f.time_start, f.time_end)
    wait(lambda: f"{len(tab)} of {len(stages)} stages" in dash_duo.find_element("#wells-table-caption").text,
         message="caption")
    wait(lambda: _gd(dash_duo, "gd.layout.shapes.length") == 3, message="band")
    assert dash_duo.find_element(".fm-time-start").get_attribute("value") == "2016-11-15"
    # rows shown = the window's stages (first page)
    cells = dash_duo.driver.find_elements("css selector", "#wells-table td[data-dash-column=well]")
    assert len(cells) == min(15, len(tab))
    # the stages CSV is the table shown
    button = dash_duo.find_element("#wells-csv")
    dash_duo.driver.execute_script("arguments[0].click()", button)
    path = Path(dash_duo.download_path) / "demo_stages.csv"  # the frame table's dataset (issue 12 #11)
    wait(lambda: path.exists() and path.stat().st_size > 0, message="downloaded CSV")
    got = pd.read_csv(path)
    assert list(got.columns) == [c for c in wf.STAGE_COLUMNS if c != "in_window"]
    assert got[["well", "stage_no"]].values.tolist() == tab[["well", "stage_no"]].values.tolist()
    assert (pd.to_datetime(got["time"], utc=True) == tab["time"].reset_index(drop=True)).all()
    # no events CSV on this page (the filter bar's export is hidden)
    assert not dash_duo.find_element(".fm-filter-bar .fm-download").is_displayed()
    no_console_errors(dash_duo)


def test_empty_window_shows_a_message(dash_duo, demo_data_dir):
    _start(dash_duo, demo_data_dir, "?start=2020-01-01")
    wait(lambda: "no stage in the time window" in dash_duo.find_element("#wells-table-caption").text,
         message="empty message")
    wait(lambda: _gd(dash_duo, "gd.layout.meta.n_in_window") == 0, message="figure")
    no_console_errors(dash_duo)


def test_no_data_message(dash_duo, tmp_path):
    _start(dash_duo, tmp_path / "nothing-here")
    dash_duo.wait_for_contains_text(".fm-no-data", "No data yet", timeout=TIMEOUT)
    no_console_errors(dash_duo)
