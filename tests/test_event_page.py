"""Browser tests of the event page (``/event/<event_id>``, ``dash_duo``, headless Chromium):
load, keyboard review into the review database, two concurrent sessions, re-inversion,
URL state, unknown/unsolved events, CSV download.

Every test works on its own copy of the demo tables (the page writes ``reviews.sqlite``
into the data folder; the session fixture must stay untouched).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from pipeline.review.reviews import ReviewStore
from pagetools import free_port as _free_port
from pagetools import no_console_errors
from pagetools import wait as _wait
from pipeline import tables


@pytest.fixture
def data_dir(demo_data_dir, tmp_path) -> Path:
    d = tmp_path / "data"
    # without the review database: a page test that ran earlier in this process may have
    # opened the event page on the shared demo folder (order differs with pytest-xdist)
    shutil.copytree(demo_data_dir, d, ignore=shutil.ignore_patterns("reviews.sqlite*"))
    return d


def _events(data_dir):
    mech = tables.read_table(data_dir, "mechanisms")
    waves = set(tables.read_table(data_dir, "waveforms", columns=["event_id"])["event_id"])
    computed = sorted(e for e in mech.loc[mech["source"] == "computed", "event_id"] if e in waves)
    unsolved = sorted(e for e in tables.read_table(data_dir, "unsolved")["event_id"] if e in waves)
    return computed, unsolved


def _open(dash_duo, data_dir, path):
    from app import create_app

    app = create_app(data_dir)
    dash_duo.start_server(app, port=_free_port())
    dash_duo.wait_for_page(url=dash_duo.server_url + path)
    _wait_loaded(dash_duo.driver)
    return app


def _wait_loaded(driver):
    _wait(lambda: driver.execute_script(
        "const b = document.querySelector('#ev-ball .js-plotly-plot');"
        "const w = document.querySelector('#ev-waves .js-plotly-plot');"
        "return !!(b && b._fullData && w && w._fullData) && document.getElementById('ev-station-panel')"
        ".textContent.length > 0"), message="event page")


def _panel_station(driver) -> str:
    return driver.find_element("css selector", ".fm-ev-cur").text


def _press(driver, key):
    driver.execute_script("if (document.activeElement) { document.activeElement.blur(); }")
    ActionChains(driver).send_keys(key).perform()


def _set_reviewer(driver, name):
    box = driver.find_element("id", "ev-reviewer-input")
    box.clear()
    box.send_keys(name + Keys.ENTER)
    _wait(lambda: driver.execute_script("return window.localStorage.getItem('ev-reviewer')") == f'"{name}"',
          message=f"reviewer {name} stored in the browser")


def _pols(store, eid, station) -> list[int]:
    p = store.picks(eid)
    return p.loc[p["station"] == station, "polarity"].astype(int).tolist()


def _no_console_errors(dash_duo):
    """No browser console output; first let pending callbacks finish (a superseded redraw may
    still run on the server, which the test teardown would otherwise interrupt)."""
    _wait(lambda: dash_duo.driver.execute_script(
        "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length === 0"), message="idle")
    time.sleep(1.0)
    no_console_errors(dash_duo)


def _ball(driver, expr):
    return driver.execute_script("const gd = document.querySelector('#ev-ball .js-plotly-plot');"
                                 f"return ({expr});")


# -- tests ---------------------------------------------------------------------------------------
def test_event_page_loads_with_mechanism_stations_and_clean_console(dash_duo, data_dir):
    computed, _ = _events(data_dir)
    eid = computed[0]
    _open(dash_duo, data_dir, f"/event/{eid}")
    d = dash_duo.driver
    assert eid in d.find_element("css selector", ".fm-ev-title").text
    assert d.title.startswith(f"Event {eid}")
    n_used = len(tables.read_table(data_dir, "mechanism_stations").query("event_id == @eid"))
    n_drawn = _ball(d, "gd._fullData[6].x.length")
    assert n_drawn >= n_used  # every station with a ray, used or not
    assert _ball(d, "gd._fullData[1].x.length") > 0      # compressional quadrants drawn
    assert _ball(d, "gd._fullData[2].x.length") > 0      # acceptable planes
    n_traces = d.execute_script("return document.querySelector('#ev-waves .js-plotly-plot')._fullData.length")
    assert n_traces == len(tables.read_table(data_dir, "waveforms").query("event_id == @eid"))
    assert "true ground motion" in d.find_element("id", "ev-view-note").text
    assert "computed" in d.find_element("id", "ev-metrics").text and "Kagan to published" in \
        d.find_element("id", "ev-metrics").text
    assert len(d.find_elements("css selector", "#ev-table tbody tr")) >= n_used
    time.sleep(0.5)
    _no_console_errors(dash_duo)


def test_keyboard_down_picks_and_right_moves_on(dash_duo, data_dir):
    computed, _ = _events(data_dir)
    eid = computed[0]
    _open(dash_duo, data_dir, f"/event/{eid}")
    d = dash_duo.driver
    first = _panel_station(d)
    _press(d, Keys.ARROW_DOWN)
    store = ReviewStore(data_dir)
    net, sta = first.split(".")
    _wait(lambda: _pols(store, eid, sta) == [-1], message="↓ stored")
    _wait(lambda: "↓ down" in d.find_element("id", "ev-status").text, message="status")
    _wait(lambda: "review" in d.find_element("id", "ev-station-panel").text, message="panel shows the review")
    _press(d, Keys.ARROW_RIGHT)
    second = _wait(lambda: _panel_station(d) if _panel_station(d) != first else None, message="next station")
    _wait(lambda: f"sta={second}" in d.current_url, message="URL has the station")
    _press(d, Keys.ARROW_UP)
    sta2 = second.split(".")[1]
    _wait(lambda: _pols(store, eid, sta2) == [1], message="↑ stored")
    _press(d, "0")
    _wait(lambda: _pols(store, eid, sta2) == [0], message="0 stored")
    _press(d, Keys.BACKSPACE)
    _wait(lambda: _pols(store, eid, sta2) == [], message="review cleared")
    _press(d, Keys.ARROW_LEFT)
    _wait(lambda: _panel_station(d) == first, message="back to the first station")
    audit = store.audit(eid)
    assert audit["new_polarity"].tolist()[:1] == [-1] and len(audit) == 4
    assert set(audit["reviewer"]) == {"anonymous"}
    assert audit["request_id"].notna().all()  # keyboard requests carry an idempotency key
    # the picked station now drawn as an open (down) symbol on the beachball
    keys = _ball(d, "gd._fullData[6].customdata")
    i = list(keys).index(first)
    _wait(lambda: _ball(d, f"gd._fullData[6].marker.color[{i}]") == "white", message="open symbol")
    _no_console_errors(dash_duo)


def test_fast_key_sequence_loses_no_pick(dash_duo, data_dir):
    """Keys typed faster than Dash runs callbacks: every pick lands on the right station."""
    computed, _ = _events(data_dir)
    eid = computed[0]
    _open(dash_duo, data_dir, f"/event/{eid}")
    d = dash_duo.driver
    d.execute_script("if (document.activeElement) { document.activeElement.blur(); }")
    seq = [Keys.ARROW_DOWN, Keys.ARROW_RIGHT, Keys.ARROW_UP, Keys.ARROW_RIGHT, "0", Keys.ARROW_RIGHT,
           Keys.ARROW_DOWN, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_UP]
    ActionChains(d).send_keys(*seq).perform()  # one burst
    keys = [td.text for td in d.find_elements("css selector", "#ev-table td[data-dash-column='station']")]
    store = ReviewStore(data_dir)
    want = {keys[0]: -1, keys[1]: 1, keys[2]: 0, keys[3]: -1, keys[5]: 1}
    got = lambda: {f"{n}.{s}": int(p) for n, s, p in  # noqa: E731
                   store.picks(eid)[["network", "station", "polarity"]].itertuples(index=False)}
    _wait(lambda: got() == want, message=f"picks {want}")
    _wait(lambda: _panel_station(d) == keys[5], message="cursor on the 6th station")
    assert len(store.audit(eid)) == 5
    _no_console_errors(dash_duo)


def _second_browser():
    opts = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,900"):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts)


def test_two_sessions_with_different_reviewers_both_land(dash_duo, data_dir):
    computed, _ = _events(data_dir)
    eid = computed[0]
    _open(dash_duo, data_dir, f"/event/{eid}")
    a = dash_duo.driver
    _set_reviewer(a, "alice")
    b = _second_browser()
    try:
        b.get(dash_duo.server_url + f"/event/{eid}")
        _wait_loaded(b)
        _set_reviewer(b, "bob")
        station = _panel_station(a)
        assert _panel_station(b) == station
        # both press at (nearly) the same time on the same station, then on different ones
        _press(a, Keys.ARROW_DOWN)
        _press(b, Keys.ARROW_UP)
        _press(b, Keys.ARROW_RIGHT)
        _press(b, Keys.ARROW_DOWN)
        store = ReviewStore(data_dir)
        _wait(lambda: len(store.audit(eid)) == 3, message="three audited writes")
        audit = store.audit(eid)
        assert sorted(audit["reviewer"]) == ["alice", "bob", "bob"]
        picks = store.picks(eid).set_index("station")
        assert len(picks) == 2
        other = _wait(lambda: _panel_station(b) if _panel_station(b) != station else None,
                      message="B's next station").split(".")[1]
        assert (picks.loc[other, "polarity"], picks.loc[other, "reviewer"]) == (-1, "bob"), (audit[["station", "old_polarity", "new_polarity", "reviewer"]].values.tolist(), other)
        first = station.split(".")[1]
        last = audit[audit["station"] == first].iloc[-1]
        assert picks.loc[first, "polarity"] == last["new_polarity"]
        assert picks.loc[first, "reviewer"] == last["reviewer"]
        # alice's browser shows bob's pick after its next write (it re-reads the database)
        _press(a, Keys.ARROW_RIGHT)
        _press(a, Keys.ARROW_DOWN)
        _wait(lambda: "bob" in a.find_element("id", "ev-table").text, message="bob's pick in alice's table")
    finally:
        b.quit()
    _no_console_errors(dash_duo)


def test_reinvert_shows_new_mechanism_and_kagan_angle(dash_duo, data_dir):
    computed, _ = _events(data_dir)
    eid = computed[0]
    _open(dash_duo, data_dir, f"/event/{eid}")
    d = dash_duo.driver
    for _ in range(3):  # flip a few polarities so the solution moves
        _press(d, Keys.ARROW_DOWN)
        _press(d, Keys.ARROW_RIGHT)
    store = ReviewStore(data_dir)
    _wait(lambda: len(store.picks(eid)) == 3, message="picks")
    t0 = time.time()
    d.execute_script("document.getElementById('ev-reinvert').click()")
    _wait(lambda: "Last re-inversion" in d.find_element("id", "ev-reinvert-status").text, timeout=30,
          message="re-inversion done")
    assert time.time() - t0 < 30
    metrics = d.find_element("id", "ev-metrics").text
    assert "re-inverted" in metrics and "Kagan to computed" in metrics
    r = store.latest_reinversion(eid)
    assert r["strike"] is not None and r["kagan_to_previous"] is not None and r["n_reviewed"] == 3
    assert f"{r['kagan_to_previous']:.1f}°" in metrics
    assert r["previous_source"] == "computed"
    # the beachball now shows the re-inverted mechanism (selector switched)
    _wait(lambda: "mech=reinverted" in d.current_url, message="re-inverted mechanism selected")
    # the Parquet tables were not touched
    assert len(tables.read_table(data_dir, "mechanisms").query("event_id == @eid")) == 2
    _no_console_errors(dash_duo)


def test_url_restores_view_filter_station_and_recorded_picks_are_stored_true(dash_duo, data_dir):
    computed, _ = _events(data_dir)
    stations = tables.read_table(data_dir, "stations")
    waves = tables.read_table(data_dir, "waveforms", columns=["event_id", "network", "station"])
    rev = set(stations.loc[stations["reversed"], "station"])
    eid, sta = next((e, s) for e in computed for s in waves.query("event_id == @e")["station"] if s in rev)
    key = f"{stations.set_index('station').loc[sta, 'network']}.{sta}"
    _open(dash_duo, data_dir, f"/event/{eid}?view=recorded&bp=10-120&sta={key}")
    d = dash_duo.driver
    assert _panel_station(d) == key
    assert d.find_element("css selector", "#ev-view input[value='recorded']").is_selected()
    assert d.find_element("id", "ev-bp-on").is_selected()
    assert d.find_element("id", "ev-bp-lo").get_attribute("value") == "10"
    assert "as recorded" in d.find_element("id", "ev-view-note").text.lower()
    # on a reversed station shown as recorded, "↑ as seen" is stored as true motion DOWN
    _press(d, Keys.ARROW_UP)
    store = ReviewStore(data_dir)
    _wait(lambda: _pols(store, eid, sta) == [-1], message="flipped pick")
    # ... and its drawn label says what the user sees, ↑ as recorded, with the true ↓ beside it
    # (rough edge 4 of issue 12: labels and colours had stayed in true-motion terms)
    label = ("const gd = document.getElementById('ev-waves').querySelector('.js-plotly-plot');"
             "const i = gd.layout.meta.keys.indexOf(arguments[0]); return gd.layout.annotations[i].text;")
    _wait(lambda: d.execute_script(label, key).startswith("<b>↑</b> rec (true ↓)"), message="recorded-sense label")
    # switching the view rewrites the URL
    d.execute_script("document.querySelector('#ev-view label').click()")  # first option: true motion
    _wait(lambda: "view=recorded" not in d.current_url, message="URL without view")
    _wait(lambda: "true ground motion" in d.find_element("id", "ev-view-note").text, message="redrawn")
    _wait(lambda: d.execute_script(label, key).startswith("<b>↓</b>"), message="true-motion label")
    time.sleep(2)  # let superseded redraws still running on the server finish before it is stopped
    _no_console_errors(dash_duo)


def test_refused_band_pass_says_why_and_stays_out_of_the_url(dash_duo, data_dir):
    """Rough edge 9 (issue 12): low > high or high above Nyquist turned both fields red with no
    explanation, the narrow field cut "10" to "1", and the URL still recorded the band."""
    computed, _ = _events(data_dir)
    eid = computed[0]
    _open(dash_duo, data_dir, f"/event/{eid}")
    d = dash_duo.driver
    d.execute_script("document.querySelector('#ev-bp-on').click()")   # the switch's real input
    lo, hi = d.find_element("id", "ev-bp-lo"), d.find_element("id", "ev-bp-hi")
    _wait(lambda: lo.is_enabled() and "bp=5-150" in d.current_url, message="band-pass on, default band in URL")
    hi.send_keys(Keys.CONTROL, "a")
    hi.send_keys("5000" + Keys.ENTER)
    msg = d.find_element("id", "ev-bp-msg")
    _wait(lambda: "Nyquist" in msg.text and msg.is_displayed(), message="reason shown")
    assert "is-invalid" in hi.get_attribute("class") and "unfiltered" in msg.text
    _wait(lambda: "bp=" not in d.current_url, message="refused band out of the URL")
    lo.send_keys(Keys.CONTROL, "a")
    lo.send_keys("10" + Keys.ENTER)
    hi.send_keys(Keys.CONTROL, "a")
    hi.send_keys("8" + Keys.ENTER)
    _wait(lambda: "low < high" in msg.text, message="low above high explained")
    # the whole typed value is visible: nothing is cut by the invalid icon's padding
    for box in (lo, hi):
        assert d.execute_script("return arguments[0].scrollWidth <= arguments[0].clientWidth", box)
    hi.send_keys(Keys.CONTROL, "a")
    hi.send_keys("100" + Keys.ENTER)
    _wait(lambda: msg.text == "" and "bp=10-100" in d.current_url, message="valid band applied and in URL")
    assert "is-invalid" not in lo.get_attribute("class")
    _no_console_errors(dash_duo)


def test_unknown_and_unsolved_events(dash_duo, data_dir):
    _, unsolved = _events(data_dir)
    _open_page_only(dash_duo, data_dir, "/event/29990101000000.000")
    _wait(lambda: "Event not found" in dash_duo.find_element("#ev-unknown").text, message="unknown message")
    if unsolved:
        dash_duo.driver.get(dash_duo.server_url + f"/event/{unsolved[0]}")
        _wait_loaded(dash_duo.driver)
        text = dash_duo.find_element(".fm-ev-alert").text
        assert "did not solve" in text
        reason = tables.read_table(data_dir, "unsolved").set_index("event_id").loc[unsolved[0], "reason"]
        assert reason[:30] in text
    time.sleep(0.3)
    _no_console_errors(dash_duo)


def _panel_item(driver, label: str) -> str:
    return driver.execute_script(
        "const it = Array.from(document.querySelectorAll('#ev-station-panel .fm-ev-item'))"
        ".find(e => e.querySelector('.fm-ev-k').textContent === arguments[0]);"
        "return it ? it.querySelector('.fm-ev-v').textContent : null;", label)


def test_station_with_no_used_polarity_says_dash_not_nan(dash_duo, data_dir):
    """Issue 12 #5: the panel said "used – nan" for a station whose picks are all undetermined."""
    computed, _ = _events(data_dir)
    pol = tables.read_table(data_dir, "polarities")
    eid, key = next((e, f"{net}.{sta}") for e in computed
                    for (net, sta), g in pol[pol["event_id"] == e].groupby(["network", "station"])
                    if (g["polarity"] == 0).all())
    _open(dash_duo, data_dir, f"/event/{eid}?sta={key}")
    d = dash_duo.driver
    assert _panel_station(d) == key
    assert _panel_item(d, "used") == "–"
    row = d.execute_script(
        "return Array.from(document.querySelectorAll('#ev-table tbody tr'))"
        ".map(tr => tr.innerText).find(t => t.includes(arguments[0]));", key)
    assert row is not None and "nan" not in row.lower()
    _no_console_errors(dash_duo)


def test_unknown_event_id_is_shown_decoded_and_unknown_path_has_a_way_back(dash_duo, data_dir):
    """Issue 12 #8: "no%20such" in the message and tab title; a bare "404" for other paths."""
    _open_page_only(dash_duo, data_dir, "/event/no such event?cluster=NSw")
    _wait(lambda: "Event not found" in dash_duo.find_element("#ev-unknown").text, message="unknown message")
    assert dash_duo.find_element("#ev-unknown code").text == "no such event"
    _wait(lambda: dash_duo.driver.title.startswith("Event no such event ·"), message="decoded title")
    back = dash_duo.find_element("#ev-unknown a")
    assert back.get_attribute("href").endswith("/?cluster=NSw")
    dash_duo.driver.get(dash_duo.server_url + "/no-such-page?cluster=NSw")
    _wait(lambda: "Page not found" in dash_duo.find_element("#fm-not-found").text, message="404 page")
    assert dash_duo.driver.title.startswith("Page not found")
    link = dash_duo.find_element(".fm-404-home")
    assert link.get_attribute("href") == dash_duo.server_url + "/?cluster=NSw"
    assert "Not found" not in dash_duo.find_element(".fm-navbar").text  # not a navbar entry
    link.click()
    _wait(lambda: dash_duo.driver.current_url == dash_duo.server_url + "/?cluster=NSw", message="back on the map")
    _wait(lambda: dash_duo.find_elements("#map-graph .js-plotly-plot"), message="map drawn")
    _no_console_errors(dash_duo)


def _open_page_only(dash_duo, data_dir, path):
    from app import create_app

    dash_duo.start_server(create_app(data_dir), port=_free_port())
    dash_duo.driver.get(dash_duo.server_url + path)


def test_download_csv_is_the_station_table(dash_duo, data_dir):
    computed, _ = _events(data_dir)
    eid = computed[0]
    _open(dash_duo, data_dir, f"/event/{eid}")
    d = dash_duo.driver
    _press(d, Keys.ARROW_DOWN)
    store = ReviewStore(data_dir)
    _wait(lambda: len(store.picks(eid)) == 1, message="pick")
    d.execute_script("document.getElementById('ev-download-btn').click()")
    path = Path(dash_duo.download_path) / f"event_{eid}_stations.csv"
    _wait(path.exists, message="downloaded CSV")
    time.sleep(0.3)
    df = pd.read_csv(path, dtype={"station": str, "event_id": str})
    rows = d.find_elements("css selector", "#ev-table tbody tr")
    assert len(df) == len(rows) - (1 if rows and not rows[0].find_elements("css selector", "td") else 0)
    assert (df["event_id"].astype(str) == eid).all()
    picked = store.picks(eid).iloc[0]
    row = df[df["station"] == picked["station"]].iloc[0]
    assert row["reviewed_polarity"] == -1 and row["polarity"] == -1 and row["polarity_source"] == "review"


def test_event_page_and_reinversion_never_import_heavy_packages(data_dir):
    """The server side of the page - layout, station table, figures, a re-inversion - runs
    without TensorFlow, ObsPy or SKHASH in the server process (SKHASH runs in a subprocess)."""
    import subprocess
    import sys

    computed, _ = _events(data_dir)
    code = f"""
import sys
from app import create_app
app = create_app({str(data_dir)!r})
import pages.event as ev
with app.server.app_context():
    page = ev.layout(event_id={computed[0]!r}, view="recorded", bp="5-100")
    assert page.id == "ev-page"
from pipeline.review.reinvert import reinvert_event
row = reinvert_event({str(data_dir)!r}, {computed[0]!r})
assert row["strike"] is not None, row
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras", "obspy", "SKHASH", "functions"))
print("HEAVY", heavy)
"""
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout, out.stdout
