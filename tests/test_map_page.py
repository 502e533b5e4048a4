"""Browser tests of the map page (``dash_duo``, headless Chromium) and app-level checks.

Each test builds its own app with ``create_app`` on the fixture tables; the autouse
``_reset_dash_registry`` fixture (conftest) clears Dash's global page registry between tests.
"""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from components.data import DataProvider
from components.filters import Filters, format_time
from pipeline.tables import read_table
from pagetools import TIMEOUT, no_console_errors, plotly_js, start_app, wait
from queries import map as mapq

ROOT = Path(__file__).resolve().parents[1]


def _counts(dash_duo) -> dict:
    """{'events': (matched, drawn), 'mechanisms': (matched, drawn)} from the bar."""
    out = {}
    for kind in ("events", "mechanisms"):
        text = dash_duo.find_element(f".fm-count-{kind}").text.replace(",", "")
        m = re.search(r"(\d+) matched(?: / (\d+) drawn)?", text)
        out[kind] = (int(m.group(1)), int(m.group(2)) if m.group(2) else None)
    return out


def _wait_counts(dash_duo, events: int, mechanisms: int):
    def ok():
        c = _counts(dash_duo)
        return c if c["events"][0] == events and c["mechanisms"][0] == mechanisms and c["events"][1] is not None \
            else None
    return wait(ok, message=f"counts {events}/{mechanisms}")


def _graph(dash_duo, expr: str):
    """Evaluate ``expr`` with ``gd`` = the map's Plotly div."""
    return plotly_js(dash_duo, "map-graph", expr)


def _highlight_xy(dash_duo):
    return _graph(dash_duo, "(() => { const t = gd._fullData[gd.layout.meta.highlight];"
                            " return [Array.from(t.x || []), Array.from(t.y || [])]; })()")


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


def _mid_date(provider) -> str:
    o = provider.filter_options()
    mid = o["time_min"] + (o["time_max"] - o["time_min"]) / 2
    return f"{mid:%Y-%m-%d}"


# -- page tests -----------------------------------------------------------------------------
def test_map_page_loads_with_counts_and_clean_console(dash_duo, demo_data_dir, provider):
    start_app(dash_duo, demo_data_dir)
    want = provider.counts(Filters()).iloc[0]
    c = _wait_counts(dash_duo, int(want["events"]), int(want["mechanisms"]))
    assert c["events"][1] == min(int(want["events"]), 50_000)
    n_traces = wait(lambda: _graph(dash_duo, "gd._fullData.length") or 0, message="figure")
    assert n_traces >= 6
    assert _graph(dash_duo, "gd.layout.meta.view") == "km"
    assert _graph(dash_duo, "gd.layout.yaxis.scaleanchor") == "x"
    # WebGL at the screen's resolution (issue 12): on this 1x screen the canvas has the
    # CSS size, not plotly.js's default of twice that
    dpr = dash_duo.driver.execute_script("return window.devicePixelRatio")
    gl = wait(lambda: _graph(dash_duo, "(() => { const c = gd.querySelector('canvas.gl-canvas-context');"
                                       " return c ? [gd._context.plotGlPixelRatio, c.width, gd._fullLayout.width]"
                                       " : null; })()"), message="webgl canvas")
    if dpr == 1:
        assert gl[0] == 1 and abs(gl[1] - gl[2]) <= 1, gl
    # Bootstrap comes from assets/, nothing from another host
    hrefs = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('link[rel=stylesheet], script[src]'))"
        ".map(e => e.href || e.src)")
    assert any(h.endswith("/assets/bootstrap.min.css") or "/assets/bootstrap.min.css?" in h for h in hrefs)
    assert all(h.startswith(dash_duo.server_url) for h in hrefs), hrefs
    # the navbar names the built data set (the frame table's dataset: the demo here)
    dataset = read_table(demo_data_dir, "frame")["dataset"].iloc[0]
    assert dataset == "demo"
    assert dash_duo.find_element(".navbar-brand").text.endswith("Demo focal mechanisms")
    assert dash_duo.driver.title.endswith("Demo focal mechanisms")
    time.sleep(0.5)
    no_console_errors(dash_duo)
    # the log API does catch errors in this browser (so the check above means something)
    dash_duo.driver.execute_script("console.error('fm-log-probe')")
    assert any("fm-log-probe" in e["message"] for e in wait(dash_duo.get_logs, message="probe log"))


def test_filter_change_updates_counts_and_url(dash_duo, demo_data_dir, provider):
    start_app(dash_duo, demo_data_dir)
    all_ev = provider.counts(Filters()).iloc[0]
    _wait_counts(dash_duo, int(all_ev["events"]), int(all_ev["mechanisms"]))
    end = _mid_date(provider)
    box = dash_duo.find_element(".fm-time-end")
    box.send_keys(end + Keys.ENTER)
    f = Filters.from_values(time_end=end)
    want = provider.counts(f).iloc[0]
    assert int(want["events"]) < int(all_ev["events"])
    _wait_counts(dash_duo, int(want["events"]), int(want["mechanisms"]))
    wait(lambda: f"end={end}" in dash_duo.driver.current_url, message="URL update")
    # navbar links keep the filters; the current page's link is active
    wait(lambda: f"end={end}" in dash_duo.find_element(".fm-navbar .nav-link.active").get_attribute("href"),
         message="navbar link")
    assert dash_duo.find_element(".fm-navbar .nav-link.active").get_attribute("textContent") == "Map"
    # the table follows the filters
    wait(lambda: f"{int(want['mechanisms']):,} matched" in dash_duo.find_element("#map-table-caption").text,
         message="table caption")
    no_console_errors(dash_duo)


def test_url_restores_filters(dash_duo, demo_data_dir, provider):
    end = _mid_date(provider)
    group = sorted(provider.filter_options()["groups"])[0]
    f = Filters.from_values(time_end=end, groups=[group], mag_min=-1.0, view="geo", color_by="group")
    start_app(dash_duo, demo_data_dir, "/" + f.to_search())
    want = provider.counts(f).iloc[0]
    _wait_counts(dash_duo, int(want["events"]), int(want["mechanisms"]))
    assert dash_duo.find_element(".fm-time-end").get_attribute("value") == format_time(f.time_end, end=True)
    assert group in dash_duo.find_element(".fm-group").text
    checked = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('.fm-view input')).filter(i => i.checked).map(i => i.value)")
    assert checked == ["geo"]
    assert Select(dash_duo.find_element(".fm-filter-bar select")).first_selected_option.text == "group"
    wait(lambda: _graph(dash_duo, "gd.layout.meta.view") == "geo", message="geo view")
    assert _graph(dash_duo, "gd.layout.xaxis.title.text").startswith("Longitude")
    assert Filters.from_query(dash_duo.driver.current_url.split("?", 1)[1]) == f
    no_console_errors(dash_duo)


def _fetch_csv(href: str) -> pd.DataFrame:
    with urllib.request.urlopen(href, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in r.headers["Content-Disposition"]
        body = r.read()
    return pd.read_csv(io.BytesIO(body), dtype={"event_id": str})


def _assert_same_rows(got: pd.DataFrame, want: pd.DataFrame):
    assert list(got.columns) == list(want.columns)
    assert len(got) == len(want)
    assert got["event_id"].tolist() == want["event_id"].tolist()
    t = pd.to_datetime(got["time"], utc=True, format="ISO8601")
    assert (t.to_numpy() == want["time"].to_numpy()).all()
    for col in ("magnitude", "x_km", "y_km"):
        pd.testing.assert_series_equal(got[col], want[col], check_names=False, check_dtype=False)


def test_reversed_window_in_the_url_is_flagged_and_keeps_both_days(dash_duo, demo_data_dir, provider):
    """Issue 12 #2: ``/?start=B&end=A`` (B after A) was swapped silently into A 23:59:59.999
    -> B 00:00, dropping both boundary days."""
    start_app(dash_duo, demo_data_dir, "/?start=2016-11-05&end=2016-11-01")
    events = pd.read_parquet(demo_data_dir / "events.parquet", columns=["time"])
    t = pd.to_datetime(events["time"], utc=True)
    want = int(((t >= pd.Timestamp("2016-11-01", tz="UTC")) & (t < pd.Timestamp("2016-11-06", tz="UTC"))).sum())
    first_last = int((t.dt.strftime("%Y-%m-%d").isin(["2016-11-01", "2016-11-05"])).sum())
    assert first_last > 0  # the boundary days hold events
    wait(lambda: _counts(dash_duo)["events"][0] == want, message=f"{want} events (both days whole)")
    for sel in (".fm-time-start", ".fm-time-end"):
        wait(lambda: "is-invalid" in dash_duo.find_element(sel).get_attribute("class"), message=f"{sel} flagged")
    assert dash_duo.find_element(".fm-time-start").get_attribute("value") == "2016-11-05"
    assert "Start is after end: showing 2016-11-01 → 2016-11-05" in dash_duo.find_element(".fm-time-msg").text
    no_console_errors(dash_duo)


def test_csv_download_matches_the_query(dash_duo, demo_data_dir, provider):
    f = Filters.from_values(mag_min=-0.5, table="mechanisms")
    start_app(dash_duo, demo_data_dir, "/" + f.to_search())
    want = provider.counts(f).iloc[0]
    _wait_counts(dash_duo, int(want["events"]), int(want["mechanisms"]))
    link = dash_duo.find_element(".fm-download")
    href = link.get_attribute("href")
    assert "/download/mechanisms.csv?" in href and "mmin=-0.5" in href
    _assert_same_rows(_fetch_csv(href), provider.export_frame("mechanisms", f))
    # switch the export to events: the link follows
    selects = dash_duo.driver.find_elements(By.CSS_SELECTOR, ".fm-actions select")
    Select(selects[-1]).select_by_value("events")
    href = wait(lambda: (lambda h: h if "/download/events.csv" in h else None)(link.get_attribute("href")),
                message="events href")
    got = _fetch_csv(href)
    _assert_same_rows(got, provider.export_frame("events", f.replace(table="events")))
    assert len(got) == int(want["events"])
    # the file is named after the data set of the frame table, not always "toc2me" (issue 12 #11)
    dataset = pd.read_parquet(demo_data_dir / "frame.parquet")["dataset"].iloc[0]
    with urllib.request.urlopen(href) as r:
        assert r.headers["Content-Disposition"] == f'attachment; filename="{dataset}_events_filtered.csv"'
    no_console_errors(dash_duo)


def test_table_row_click_highlights_ball_and_ball_click_selects_row(dash_duo, demo_data_dir, provider):
    start_app(dash_duo, demo_data_dir)
    all_ev = provider.counts(Filters()).iloc[0]
    _wait_counts(dash_duo, int(all_ev["events"]), int(all_ev["mechanisms"]))
    wait(lambda: len(dash_duo.driver.find_elements(By.CSS_SELECTOR, "#map-table td[data-dash-column=magnitude]")) > 3,
         message="table rows")
    assert _highlight_xy(dash_duo) == [[], []]
    # 1) click a row -> the ring moves onto that mechanism
    rows = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#map-table tbody tr")
    row = [r for r in rows if r.find_elements(By.CSS_SELECTOR, "td[data-dash-column=magnitude]")][2]
    eid = row.find_element(By.CSS_SELECTOR, "td[data-dash-column=event]").text.strip()
    cell = row.find_element(By.CSS_SELECTOR, "td[data-dash-column=magnitude]")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", cell)
    time.sleep(0.3)
    cell.click()
    loc = mapq.mechanism_location(provider, eid).iloc[0]
    xy = wait(lambda: (lambda v: v if v and len(v[0]) == 1 else None)(_highlight_xy(dash_duo)),
              message="highlight")
    assert xy[0][0] == pytest.approx(loc["x_km"], abs=1e-6) and xy[1][0] == pytest.approx(loc["y_km"], abs=1e-6)
    wait(lambda: eid in dash_duo.find_element("#map-details").text, message="details panel")
    # the selected row is styled
    wait(lambda: dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#map-table td[data-dash-column=event]'))"
        ".filter(td => td.innerText.trim() === arguments[0])"
        ".some(td => getComputedStyle(td).backgroundColor !== 'rgba(0, 0, 0, 0)')", eid), message="row style")
    # 2) click a ball of a mechanism that is on another table page -> the table jumps there
    target = mapq.mechanisms_page(provider, Filters(), 3, 12)["event_id"].iloc[5]
    idx = _graph(dash_duo, "(() => { const t = gd.data[gd.layout.meta.balls];"
                           " return t.customdata.findIndex(c => c[0] === arguments[0]); })()".replace(
                               "arguments[0]", json.dumps(target)))
    assert idx is not None and idx >= 0
    _graph(dash_duo, f"(gd.emit('plotly_click', {{points: [{{curveNumber: gd.layout.meta.balls, pointNumber: {idx},"
                     f" data: gd.data[gd.layout.meta.balls]}}]}}), true)")
    wait(lambda: target in dash_duo.find_element("#map-table").text, message="table jump")
    assert "page 4 of" in dash_duo.find_element("#map-table-caption").text
    loc = mapq.mechanism_location(provider, target).iloc[0]
    wait(lambda: (lambda v: bool(v and v[0]) and abs(v[0][0] - loc["x_km"]) < 1e-6)(_highlight_xy(dash_duo)),
         message="highlight moved")
    wait(lambda: target in dash_duo.find_element("#map-details").text, message="details of the ball")
    # event ids link to the (future) event inspector
    link = dash_duo.driver.find_element(By.CSS_SELECTOR, "#map-table td[data-dash-column=event] a")
    assert re.search(r"/event/\d{14}\.\d{3}$", link.get_attribute("href"))
    no_console_errors(dash_duo)


def test_filters_survive_map_to_event_and_back(dash_duo, demo_data_dir, provider):
    """Issue 12 #6: the event links, the event page's navbar and its "← Map" were bare paths,
    so ``/?cluster=NSw`` -> event -> Map showed everything again."""
    cluster = provider.filter_options()["clusters"][0]
    f = Filters.from_values(clusters=[cluster], mag_min=-0.5)
    want = provider.counts(f).iloc[0]
    start_app(dash_duo, demo_data_dir, "/?" + f.to_query())
    _wait_counts(dash_duo, int(want["events"]), int(want["mechanisms"]))
    # the table's event link and the details panel's carry the filters
    link = wait(lambda: dash_duo.driver.find_element(By.CSS_SELECTOR, "#map-table td[data-dash-column=event] a"),
                message="table link")
    assert link.get_attribute("href").endswith("?" + f.to_query())
    cell = dash_duo.driver.find_elements(By.CSS_SELECTOR, "#map-table td[data-dash-column=magnitude]")[0]
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", cell)
    cell.click()
    details = wait(lambda: dash_duo.driver.find_element(By.CSS_SELECTOR, "#map-details a.fm-details-id"),
                   message="details link")
    eid = details.text.strip()
    assert details.get_attribute("href") == f"{dash_duo.server_url}/event/{eid}?{f.to_query()}"
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", details)
    details.click()
    wait(lambda: eid in dash_duo.find_element(".fm-ev-title").text, message="event page")
    # on the event page: every navbar link and "← Map" keep the filters
    hrefs = wait(lambda: (lambda h: h if h and all(x.endswith("?" + f.to_query()) for x in h) else None)(
        dash_duo.driver.execute_script(
            "return Array.from(document.querySelectorAll('.fm-navbar .nav-link')).map(a => a.href)")),
        message="navbar hrefs with the filters")
    assert len(hrefs) >= 5
    back = dash_duo.find_element(".fm-ev-back")
    assert back.get_attribute("href") == f"{dash_duo.server_url}/?{f.to_query()}"
    back.click()
    wait(lambda: dash_duo.driver.current_url.endswith("/?" + f.to_query()), message="map URL with the filters")
    _wait_counts(dash_duo, int(want["events"]), int(want["mechanisms"]))
    time.sleep(0.5)
    no_console_errors(dash_duo)


def test_zoom_draws_the_balls_in_view_exactly(dash_duo, demo_data_dir, provider, monkeypatch):
    """Issue 12, level of detail: at the full extent only the largest balls are polygons
    (here 20, so the demo's 1,692 exercise it), the rest dots; zooming onto a dot makes the
    balls in view exact; a double-click (autorange) goes back."""
    import components.map_figure as mf
    from components.data import MAP_MECHANISM_COLUMNS, MECHANISM_CAP

    monkeypatch.setattr(mf, "MAX_BALL_POLYGONS", 20)
    start_app(dash_duo, demo_data_dir)
    all_ev = provider.counts(Filters()).iloc[0]
    _wait_counts(dash_duo, int(all_ev["events"]), int(all_ev["mechanisms"]))
    polygons = "gd.data[gd.layout.meta.balls].meta.polygons"
    wait(lambda: _graph(dash_duo, polygons) == 20, message="20 exact balls at the full extent")
    mechs = provider.mechanisms(Filters(), cap=MECHANISM_CAP, columns=MAP_MECHANISM_COLUMNS)
    mechs = mechs.sort_values("magnitude", ascending=False, kind="stable").reset_index(drop=True)
    dots = "gd._fullData[gd.layout.meta.balls_first].marker.size"
    n_dots = _graph(dash_duo, f"Array.from({dots}).filter(s => s > 0).length")
    assert n_dots == len(mechs) - 20
    # zoom onto a small ball (a dot now): a 0.3 km square around it
    target = mechs.iloc[len(mechs) // 2]
    x0, x1, y0, y1 = target["x_km"] - 0.15, target["x_km"] + 0.15, target["y_km"] - 0.15, target["y_km"] + 0.15
    x, y = mechs["x_km"].to_numpy(), mechs["y_km"].to_numpy()
    inside = (x >= x0 - 0.015) & (x <= x1 + 0.015) & (y >= y0 - 0.015) & (y <= y1 + 0.015)
    want = int(min(inside.sum(), 20))
    assert want >= 1
    _graph(dash_duo, f"(Plotly.relayout(gd, {{'xaxis.range[0]': {x0}, 'xaxis.range[1]': {x1},"
                     f" 'yaxis.range[0]': {y0}, 'yaxis.range[1]': {y1}}}), true)")
    wait(lambda: _graph(dash_duo, polygons) == want, message=f"{want} exact balls in view")
    # the target is no longer a dot, and the outline has one circle per exact ball
    dots_x = _graph(dash_duo, "(() => { const t = gd._fullData[gd.layout.meta.balls_first];"
                              " return Array.from(t.x).filter((x, i) => t.marker.size[i] > 0); })()")
    if inside.sum() <= 20:
        assert not np.any(np.isclose(dots_x, target["x_km"], atol=1e-5))
    outline = _graph(dash_duo, "Array.from(gd._fullData[gd.layout.meta.balls_first + 2].x)")
    assert sum(1 for v in outline if v is None) == want
    # the zoom was kept (only the balls were sent; the aspect lock may widen one axis)
    xr = _graph(dash_duo, "gd.layout.xaxis.range")
    assert xr[0] <= target["x_km"] <= xr[1] and xr[1] - xr[0] < 1.0
    _graph(dash_duo, "(Plotly.relayout(gd, {'xaxis.autorange': true, 'yaxis.autorange': true}), true)")
    wait(lambda: _graph(dash_duo, polygons) == 20, message="back to the 20 largest")
    time.sleep(0.5)
    no_console_errors(dash_duo)


def test_no_data_message(dash_duo, tmp_path):
    start_app(dash_duo, tmp_path / "nothing-here")
    dash_duo.wait_for_contains_text(".fm-no-data", "No data yet", timeout=TIMEOUT)
    text = dash_duo.find_element(".fm-no-data").text
    assert "make run" in text and "python -m pipeline build" in text
    no_console_errors(dash_duo)


# -- app-level checks (no browser) --------------------------------------------------------------
def test_app_never_imports_heavy_stacks(demo_data_dir):
    code = (
        "import sys\n"
        "from app import create_app\n"
        f"app = create_app({str(demo_data_dir)!r})\n"
        "c = app.server.test_client()\n"
        "assert c.get('/').status_code == 200\n"
        "assert c.get('/_dash-layout').status_code == 200\n"
        "assert c.get('/download/events.csv?mmin=1').status_code == 200\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'obspy', 'SKHASH'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_no_cdn_and_module_level_server(demo_data_dir, monkeypatch):
    import app as app_module

    monkeypatch.setenv("FM_DATA_DIR", str(demo_data_dir))
    a = app_module.create_app()
    assert a.config.external_stylesheets == []
    html = a.server.test_client().get("/").get_data(as_text=True)
    assert "cdn" not in html.lower() and "bootstrap.min.css" in html
    assert (ROOT / "assets" / "bootstrap.min.css").read_text()[:200].count("Bootstrap") >= 1
    assert "Licensed under MIT" in (ROOT / "assets" / "bootstrap.min.css").read_text()[:400]


def test_download_route_rejects_unknown_tables_and_handles_hostile_queries(demo_data_dir, provider):
    from app import create_app

    client = create_app(demo_data_dir).server.test_client()
    assert client.get("/download/stations.csv").status_code == 404
    traversal = client.get("/download/..%2Fetc%2Fpasswd.csv")  # falls through to Dash's index page
    assert traversal.status_code == 404 or not traversal.content_type.startswith("text/csv")
    assert "root:" not in traversal.get_data(as_text=True)
    # malformed values are refused with the reasons (they used to be dropped: fewer filters)
    r = client.get("/download/events.csv?cluster=%27%3B+DROP+TABLE+events%3B+--&mmin=nan&start=%00")
    assert r.status_code == 400
    body = r.get_data(as_text=True)
    assert "mmin='nan' is not a number" in body and "start='?' is not a date" in body
    # a hostile but well-formed value is a bound parameter that matches nothing
    r = client.get("/download/events.csv?cluster=%27%3B+DROP+TABLE+events%3B+--")
    assert r.status_code == 200
    assert r.get_data(as_text=True).count("\n") == 1  # header only
    assert provider.counts(Filters()).iloc[0]["events"] > 0


def test_unknown_cluster_in_the_url_is_named_not_silently_empty(dash_duo, demo_data_dir, provider):
    """Issue 12 #7 (rest): ``/?cluster=bogus`` (or ``<script>…``) kept the value selected and
    showed 0 events without a word. The bar now says the data have no such cluster and
    which they have; the value is shown as text, never run."""
    from urllib.parse import quote

    from selenium.common.exceptions import NoAlertPresentException

    known = [c for c in provider.filter_options()["clusters"]]
    start_app(dash_duo, demo_data_dir, "/?cluster=bogus")
    text = wait(lambda: dash_duo.find_element(".fm-filter-unknown").text, message="warning")
    assert "cluster 'bogus' is not in these data" in text and all(c in text for c in known)
    wait(lambda: _counts(dash_duo)["events"][0] == 0, message="0 events matched")
    assert "disabled" not in dash_duo.find_element(".fm-download").get_attribute("class")
    hostile = "<script>alert(1)</script>"
    dash_duo.wait_for_page(url=dash_duo.server_url + "/?cluster=NSw&cluster=" + quote(hostile))
    text = wait(lambda: dash_duo.find_element(".fm-filter-unknown").text, message="warning, hostile value")
    assert f"cluster '{hostile}' is not in these data" in text
    with pytest.raises(NoAlertPresentException):
        dash_duo.driver.switch_to.alert.text
    want = provider.counts(Filters(clusters=["NSw"])).iloc[0]
    wait(lambda: _counts(dash_duo)["events"][0] == int(want["events"]), message="NSw's events (the other adds none)")
    # a known cluster only: no warning
    dash_duo.wait_for_page(url=dash_duo.server_url + "/?cluster=NSw")
    wait(lambda: _counts(dash_duo)["events"][0] == int(want["events"]), message="NSw")
    wait(lambda: not dash_duo.find_elements(".fm-filter-unknown"), message="no warning")
    no_console_errors(dash_duo)
