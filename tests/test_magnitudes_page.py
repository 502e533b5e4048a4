"""Browser tests of the magnitudes page (``dash_duo``, headless Chromium) and its
server-side paths.

Each test builds its own app with ``create_app`` on the demo tables; the autouse
``_reset_dash_registry`` fixture (conftest) clears Dash's page registry between tests.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from components import magnitude_figures as mf
from components.data import DataProvider
from components.filters import Filters
from pagetools import TIMEOUT, no_console_errors, plotly_js, record_callback_outputs, start_app, url_params, wait
from queries import magnitudes as magq


def _start(dash_duo, data_dir, search: str = ""):
    return start_app(dash_duo, data_dir, "/magnitudes" + search)


def _results(dash_duo) -> dict:
    """The results card as {label: value}."""
    return dash_duo.driver.execute_script(
        "const out = {}; document.querySelectorAll('#mag-results dt').forEach(dt => "
        "{ out[dt.innerText.trim()] = dt.nextElementSibling.innerText.trim(); }); return out;")


def _wait_b(dash_duo, b: float, sigma: float):
    want = f"{b:.3f} ± {sigma:.3f}"
    return wait(lambda: _results(dash_duo).get("b-value") == want and _results(dash_duo),
                message=f"b-value {want}")


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


def _analysis(provider, f: Filters, **kw):
    df = magq.event_magnitudes(provider, f)
    mags = df["magnitude"].to_numpy()
    if kw.pop("pop", "all") == "resolved":
        mags = mags[df["resolved"].to_numpy()]
    return mf.fmd_analysis(mags, **kw)


# -- browser ------------------------------------------------------------------------------------
def test_page_loads_with_figures_numbers_and_clean_console(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    res = _analysis(provider, Filters())["result"]
    items = _wait_b(dash_duo, res["b"], res["b_sigma"])
    assert items["Mc used"].startswith(f"{res['mc']:.2f} (MAXC")
    n = int(provider.counts(Filters()).iloc[0]["events"])
    assert items["Events ≥ Mc"] == f"{res['n']:,} of {n:,}"
    # ML-time panel: legend counts computed; histogram bars sum to the matched events
    names = wait(lambda: plotly_js(dash_duo, "mag-time-graph", "gd._fullData.filter(t => t.showlegend)"
                                                               ".map(t => t.name)"), message="time figure")
    mags = magq.event_magnitudes(provider, Filters())
    assert names == [f"All events ({n:,})", f"Resolved mechanisms ({int(mags['resolved'].sum()):,})"]
    bar_sums = plotly_js(dash_duo, "mag-time-graph", "gd._fullData.filter(t => t.type === 'bar')"
                                                     ".map(t => Array.from(t.x).reduce((a, b) => a + b, 0))")
    assert bar_sums == [n, int(mags["resolved"].sum())]
    assert plotly_js(dash_duo, "mag-fmd-graph", "gd.layout.yaxis.type") == "log"
    # the bar's counts and page title
    wait(lambda: f"{n:,}" in dash_duo.find_element(".fm-count-events").text, message="bar counts")
    assert dash_duo.find_element(".fm-navbar .nav-link.active").get_attribute("textContent") == "Magnitudes"
    time.sleep(0.5)
    no_console_errors(dash_duo)


def test_method_and_filter_changes_update_numbers_and_url(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir)
    res = _analysis(provider, Filters())["result"]
    _wait_b(dash_duo, res["b"], res["b_sigma"])
    # 1) the method selector: goodness of fit
    Select(dash_duo.find_element("#mag-method")).select_by_value("gft95")
    gft = _analysis(provider, Filters(), method="gft95")["result"]
    assert gft["mc"] != res["mc"]
    items = _wait_b(dash_duo, gft["b"], gft["b_sigma"])
    assert items["Mc used"].startswith(f"{gft['mc']:.2f} (GFT")
    wait(lambda: url_params(dash_duo).get("method") == ["gft95"], message="method in URL")
    # 2) a filter change: the numbers follow and the page's key stays in the URL
    box = dash_duo.find_element(".fm-time-end")
    box.send_keys("2016-11-20" + Keys.ENTER)
    f = Filters.from_values(time_end="2016-11-20")
    sub = _analysis(provider, f, method="gft95")["result"]
    _wait_b(dash_duo, sub["b"], sub["b_sigma"])
    wait(lambda: (lambda p: p.get("end") == ["2016-11-20"] and p.get("method") == ["gft95"])(url_params(dash_duo)),
         message="filters and method in URL")
    n = int(provider.counts(f).iloc[0]["events"])
    wait(lambda: plotly_js(dash_duo, "mag-time-graph", "gd._fullData.filter(t => t.type === 'bar')"
                                                       ".map(t => Array.from(t.x).reduce((a, b) => a + b, 0))[0]") == n,
         message="histogram follows the filters")
    # 3) the correction only matters for MAXC: back to MAXC with +0.1
    Select(dash_duo.find_element("#mag-method")).select_by_value("maxc")
    corr = dash_duo.find_element("#mag-corr")
    # enabled by the page-state callback's answer to the method change (a round trip)
    wait(lambda: corr.is_enabled(), message="correction enabled for MAXC")
    corr.send_keys(Keys.CONTROL, "a")
    corr.send_keys("0.1" + Keys.ENTER)
    m01 = _analysis(provider, f, method="maxc", correction=0.1)["result"]
    _wait_b(dash_duo, m01["b"], m01["b_sigma"])
    wait(lambda: (lambda p: p.get("corr") == ["0.1"] and "method" not in p)(url_params(dash_duo)),
         message="correction in URL")
    no_console_errors(dash_duo)


def test_maxc_correction_out_of_range_is_flagged_and_the_default_is_stated(dash_duo, demo_data_dir, provider):
    """Rough edge 3: -5 typed as MAXC correction was kept in the field, not flagged, dropped from
    the URL and +0.20 silently used. Now the field is flagged with the reason, the numbers
    say which correction they use, and the URL holds no correction."""
    _start(dash_duo, demo_data_dir)
    res = _analysis(provider, Filters())["result"]
    _wait_b(dash_duo, res["b"], res["b_sigma"])
    corr = dash_duo.find_element("#mag-corr")
    corr.send_keys(Keys.CONTROL, "a")
    corr.send_keys("-5" + Keys.ENTER)
    wait(lambda: "is-invalid" in corr.get_attribute("class"), message="correction flagged invalid")
    msg = dash_duo.find_element("#mag-corr-msg")
    wait(lambda: msg.is_displayed() and "outside" in msg.text and "+0.20" in msg.text, message="reason shown")
    assert corr.get_attribute("value") == "-5"            # what the user typed stays visible
    items = _wait_b(dash_duo, res["b"], res["b_sigma"])   # the default correction's numbers
    assert f"{mf.DEFAULT_CORRECTION:+.2f}" in items["Mc, max. curvature"]
    assert "corr" not in url_params(dash_duo)
    # a usable value clears the flag and goes into the URL
    corr.send_keys(Keys.CONTROL, "a")
    corr.send_keys("0.1" + Keys.ENTER)
    wait(lambda: "is-invalid" not in corr.get_attribute("class"), message="flag cleared")
    wait(lambda: url_params(dash_duo).get("corr") == ["0.1"], message="correction in URL")
    no_console_errors(dash_duo)


def test_url_with_out_of_range_correction_is_flagged_on_load(dash_duo, demo_data_dir):
    _start(dash_duo, demo_data_dir, "?corr=-5")
    corr = dash_duo.find_element("#mag-corr")
    wait(lambda: "is-invalid" in corr.get_attribute("class"), message="flagged from the URL")
    assert "outside" in dash_duo.find_element("#mag-corr-msg").text
    no_console_errors(dash_duo)


def test_url_restores_filters_and_page_controls(dash_duo, demo_data_dir, provider):
    f = Filters.from_values(time_start="2016-11-05", mag_min=-1.5)
    _start(dash_duo, demo_data_dir, f.to_search() + "&method=fixed&mc=-1&pop=resolved")
    res = _analysis(provider, f, method="fixed", fixed_mc=-1.0, pop="resolved")["result"]
    items = _wait_b(dash_duo, res["b"], res["b_sigma"])
    assert items["Mc used"] == "-1.00 (fixed)"
    assert Select(dash_duo.find_element("#mag-method")).first_selected_option.get_attribute("value") == "fixed"
    assert dash_duo.find_element("#mag-fixed-mc").get_attribute("value") == "-1"
    assert dash_duo.find_element("#mag-fixed-mc").get_attribute("disabled") is None
    assert dash_duo.find_element("#mag-corr").get_attribute("disabled") is not None
    checked = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#mag-pop input')).filter(i => i.checked).map(i => i.value)")
    assert checked == ["resolved"]
    assert dash_duo.find_element(".fm-time-start").get_attribute("value") == "2016-11-05"
    assert "resolved mechanisms" in dash_duo.find_element("#mag-fmd-caption").text
    p = url_params(dash_duo)
    assert p["method"] == ["fixed"] and p["mc"] == ["-1"] and p["pop"] == ["resolved"] and p["mmin"] == ["-1.5"]
    no_console_errors(dash_duo)


def test_first_load_draws_both_panels_from_the_layout_without_a_state_or_fmd_request(
        dash_duo, demo_data_dir, provider):
    """Both panels, the numbers and the controls' flags come with the page (issue 12): the
    first load asks the server for neither the page state nor the FMD, and shows the numbers
    recomputed here for the URL's keys; a user's change of method still redraws the FMD."""
    recorded = {}
    f = Filters.from_values(time_start="2016-11-05")
    start_app(dash_duo, demo_data_dir, before_start=lambda a: recorded.setdefault("outputs", record_callback_outputs(a)))
    outputs = recorded["outputs"]
    outputs.clear()  # the server start's own page
    dash_duo.wait_for_page(url=dash_duo.server_url + "/magnitudes" + f.to_search() + "&method=gft95&pop=resolved")
    res = _analysis(provider, f, method="gft95", pop="resolved")["result"]
    _wait_b(dash_duo, res["b"], res["b_sigma"])
    assert dash_duo.find_element("#mag-corr").get_attribute("disabled") is not None  # gft95: no MAXC correction
    assert dash_duo.find_element("#mag-fixed-mc").get_attribute("disabled") is not None
    Select(dash_duo.find_element("#mag-method")).select_by_value("maxc")
    res = _analysis(provider, f, method="maxc", pop="resolved")["result"]
    _wait_b(dash_duo, res["b"], res["b_sigma"])
    wait(lambda: dash_duo.find_element("#mag-corr").get_attribute("disabled") is None, message="correction enabled")
    # one state and one FMD request, both the user's: before, the first load sent one of each
    # (the state's, then the FMD's after it) and the user's change made the second
    assert len([o for o in outputs if "mag-state" in o]) == 1, outputs
    assert len([o for o in outputs if "mag-fmd-graph" in o]) == 1, outputs
    no_console_errors(dash_duo)


def test_empty_selection_shows_a_message(dash_duo, demo_data_dir):
    _start(dash_duo, demo_data_dir, "?mmin=9")
    dash_duo.wait_for_contains_text("#mag-results", "No event with a magnitude matches the filters", timeout=TIMEOUT)
    wait(lambda: "No event matches" in (plotly_js(dash_duo, "mag-time-graph", "gd.layout.annotations[0].text") or ""),
         message="time-figure message")
    wait(lambda: "No event matches" in (plotly_js(dash_duo, "mag-fmd-graph", "gd.layout.annotations[0].text") or ""),
         message="FMD message")
    no_console_errors(dash_duo)


def test_fmd_csv_download(dash_duo, demo_data_dir, provider):
    _start(dash_duo, demo_data_dir, "?mmin=-1.5")
    f = Filters.from_values(mag_min=-1.5)
    res = _analysis(provider, f)["result"]
    _wait_b(dash_duo, res["b"], res["b_sigma"])
    button = dash_duo.find_element("#mag-fmd-csv")
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    time.sleep(0.3)
    dash_duo.driver.execute_script("arguments[0].click()", button)
    path = Path(dash_duo.download_path) / "demo_fmd_all.csv"  # the frame table's dataset names the file (issue 12 #11)
    wait(lambda: path.exists() and path.stat().st_size > 0, message="downloaded CSV")
    got = pd.read_csv(path)
    want = mf.fmd_table(_analysis(provider, f))
    assert list(got.columns) == list(want.columns)
    assert got["count"].sum() == int(provider.counts(f).iloc[0]["events"])
    np.testing.assert_allclose(got["cumulative"], want["cumulative"])
    # the filtered events are the filter bar's CSV link
    href = dash_duo.find_element(".fm-filter-bar .fm-download").get_attribute("href")
    assert re.search(r"/download/events\.csv\?mmin=-1\.5$", href)
    no_console_errors(dash_duo)


def test_no_data_message(dash_duo, tmp_path):
    _start(dash_duo, tmp_path / "nothing-here")
    dash_duo.wait_for_contains_text(".fm-no-data", "No data yet", timeout=TIMEOUT)
    no_console_errors(dash_duo)


# -- server side (no browser) -----------------------------------------------------------------------
def test_server_paths_and_hostile_page_state(demo_data_dir, provider):
    from app import create_app

    app = create_app(demo_data_dir)
    import pages.magnitudes as pm

    assert pm.page_state("method=%27;DROP&corr=nan&mc=inf&pop=<script>") == {
        "method": "maxc", "corr": 0.2, "mc": None, "pop": "all"}
    # out of range is refused with a reason, not clamped silently (issue 12, rough edge 3)
    assert pm.page_state({"corr": "7"})["corr"] == mf.DEFAULT_CORRECTION
    assert "outside" in pm.correction_problem("7") and pm.correction_problem("-1") is None
    assert pm.correction_problem("") is None and "not a number" in pm.correction_problem("x")
    assert pm.page_query(pm.page_state("")) == ""
    state = pm.page_state("method=gft&corr=0.1&mc=-1&pop=resolved")
    assert pm.page_query(state) == "method=gft&corr=0.1&mc=-1&pop=resolved"
    fig, drawn = pm.build_time_figure("")
    assert drawn["events"]["matched"] == int(provider.counts(Filters()).iloc[0]["events"])
    analysis, _ = pm.build_fmd("mmin=9", "")
    assert analysis is None
    client = app.server.test_client()
    assert client.get("/magnitudes?method=%00&mc=%27").status_code == 200
