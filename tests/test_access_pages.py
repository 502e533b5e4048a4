"""Sharing the dashboard in a real browser (``dash_duo``, headless Chromium): logging in,
reviews signed by the account, the navbar's account, a viewer's and a read-only server's
event page (review controls disabled, keys write nothing). The server-side refusals are
tested over HTTP in ``test_access.py``."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

from pagetools import free_port, no_console_errors, wait
from pipeline import tables
from pipeline.review.accounts import add_account
from pipeline.review.reviews import ReviewStore, db_path

PASSWORDS = {"alice": "alice-pass-1", "vic": "viewer-pass", "ada": "admin-pass-9"}
ROLES = {"alice": "reviewer", "vic": "viewer", "ada": "admin"}
BUTTONS = ("ev-btn-up", "ev-btn-down", "ev-btn-zero", "ev-btn-reset", "ev-reinvert")


@pytest.fixture
def data_dir(demo_data_dir, tmp_path) -> Path:
    d = tmp_path / "data"
    # without the review database: a page test that ran earlier in this process may have
    # opened the event page on the shared demo folder (order differs with pytest-xdist)
    shutil.copytree(demo_data_dir, d, ignore=shutil.ignore_patterns("reviews.sqlite*"))
    return d


@pytest.fixture
def users_file(tmp_path) -> Path:
    path = tmp_path / "users.json"
    for name, pw in PASSWORDS.items():
        add_account(path, name, ROLES[name], pw)
    return path


def _event(data_dir) -> str:
    mech = tables.read_table(data_dir, "mechanisms")
    waves = set(tables.read_table(data_dir, "waveforms", columns=["event_id"])["event_id"])
    return sorted(e for e in mech.loc[mech["source"] == "computed", "event_id"] if e in waves)[0]


def _wait_loaded(driver):
    wait(lambda: driver.execute_script(
        "const b = document.querySelector('#ev-ball .js-plotly-plot');"
        "const w = document.querySelector('#ev-waves .js-plotly-plot');"
        "return !!(b && b._fullData && w && w._fullData) && document.getElementById('ev-station-panel')"
        ".textContent.length > 0"), message="event page")


def _press(driver, key):
    driver.execute_script("if (document.activeElement) { document.activeElement.blur(); }")
    ActionChains(driver).send_keys(key).perform()


def _idle(dash_duo):
    wait(lambda: dash_duo.driver.execute_script(
        "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length === 0"), message="idle")
    time.sleep(1.0)


def _login(driver, name, password):
    wait(lambda: driver.find_element("id", "username"), message="login form")
    driver.find_element("id", "username").clear()
    driver.find_element("id", "username").send_keys(name)
    driver.find_element("id", "password").send_keys(password)
    driver.find_element("id", "fm-login-submit").click()


def _start(dash_duo, app, path):
    dash_duo.start_server(app, navigate=False, port=free_port())
    base = dash_duo.server.url.rstrip("/")
    dash_duo.driver.get(base + path)
    return base


def test_login_in_the_browser_and_reviews_are_signed_by_the_account(dash_duo, data_dir, users_file):
    from app import create_app

    eid = _event(data_dir)
    base = _start(dash_duo, create_app(data_dir, users_file=users_file), f"/event/{eid}")
    d = dash_duo.driver
    wait(lambda: "/login?next=" in d.current_url, message="redirected to the login page")
    _login(d, "alice", "wrong-password")
    wait(lambda: "Wrong account name or password" in d.page_source, message="refused")
    dash_duo.get_logs()  # the refused login answered 401, which the console logs: expected
    _login(d, "alice", PASSWORDS["alice"])
    wait(lambda: d.current_url == f"{base}/event/{eid}", message="back on the event page")
    _wait_loaded(d)
    account = d.find_element("id", "fm-account").get_attribute("textContent")  # (navbar may be collapsed)
    assert "alice" in account and "reviewer" in account
    assert d.find_element("id", "ev-account").text == "alice (reviewer)"
    assert not d.find_elements("css selector", "input.fm-ev-reviewer")  # no free-text reviewer
    assert all(d.find_element("id", b).is_enabled() for b in BUTTONS[:4])
    station = d.find_element("css selector", ".fm-ev-cur").text
    _press(d, Keys.ARROW_DOWN)
    net, sta = station.split(".")
    wait(lambda: db_path(data_dir).exists() and ReviewStore(data_dir).picks(eid)[["station", "polarity", "reviewer"]]
         .values.tolist() == [[sta, -1, "alice"]], message="pick signed by alice")
    wait(lambda: "by alice" in d.find_element("id", "ev-status").text, message="status")
    _idle(dash_duo)
    no_console_errors(dash_duo)
    # the session ends elsewhere (cookie gone): the next callback answers 401 and the page goes
    # to the login form, coming back to this view afterwards
    d.delete_all_cookies()
    _press(d, Keys.ARROW_RIGHT)
    wait(lambda: "/login?next=" in d.current_url, message="sent to the login page")
    dash_duo.get_logs()  # (the refused callback is in the console: expected)
    _login(d, "alice", PASSWORDS["alice"])
    wait(lambda: d.current_url.startswith(f"{base}/event/{eid}"), message="back on the event page")
    _wait_loaded(d)
    d.execute_script("document.getElementById('fm-logout').click()")  # (in the collapsed navbar)
    wait(lambda: "/login" in d.current_url, message="logged out")
    d.get(f"{base}/event/{eid}")
    wait(lambda: "/login?next=" in d.current_url, message="login needed again")


def test_viewer_sees_the_event_but_cannot_review(dash_duo, data_dir, users_file):
    from app import create_app

    eid = _event(data_dir)
    base = _start(dash_duo, create_app(data_dir, users_file=users_file), "/")
    d = dash_duo.driver
    _login(d, "vic", PASSWORDS["vic"])
    wait(lambda: d.find_elements("id", "fm-account"), message="logged in")
    assert "Audit" not in d.find_element("css selector", ".fm-navbar").get_attribute("textContent")  # admins only
    d.get(f"{base}/event/{eid}")
    _wait_loaded(d)
    for b in BUTTONS:
        assert not d.find_element("id", b).is_enabled(), b
    assert "reviews are off" in d.find_element("id", "ev-readonly").text
    _press(d, Keys.ARROW_DOWN)
    _press(d, Keys.ARROW_RIGHT)
    _press(d, Keys.ARROW_UP)
    _idle(dash_duo)
    assert not db_path(data_dir).exists() or ReviewStore(data_dir).audit().empty
    no_console_errors(dash_duo)


def test_read_only_server_page_has_no_review_controls_enabled(dash_duo, data_dir):
    from app import create_app

    eid = _event(data_dir)
    _start(dash_duo, create_app(data_dir, read_only=True), f"/event/{eid}")
    d = dash_duo.driver
    _wait_loaded(d)
    assert d.find_element("css selector", ".fm-readonly").get_attribute("textContent") == "read-only"
    assert "read-only" in d.find_element("id", "ev-readonly").text
    for b in BUTTONS:
        assert not d.find_element("id", b).is_enabled(), b
    assert not d.find_element("id", "ev-reviewer-input").is_enabled()
    _press(d, Keys.ARROW_DOWN)
    _idle(dash_duo)
    assert not db_path(data_dir).exists()
    no_console_errors(dash_duo)


def test_admin_sees_the_audit_trail_and_undoes_a_change(dash_duo, data_dir, users_file):
    from app import create_app

    eid = _event(data_dir)
    pol = tables.read_table(data_dir, "polarities", columns=["event_id", "network", "station"])
    net, sta = pol.loc[pol["event_id"] == eid, ["network", "station"]].iloc[0]
    store = ReviewStore(data_dir)
    store.set_pick(eid, net, sta, -1, "alice")
    store.set_pick(eid, net, sta, 1, "bob")
    base = _start(dash_duo, create_app(data_dir, users_file=users_file), "/audit")
    d = dash_duo.driver
    _login(d, "ada", PASSWORDS["ada"])
    wait(lambda: d.current_url == f"{base}/audit", message="on the audit page")
    assert "Audit" in d.find_element("css selector", ".fm-navbar").get_attribute("textContent")
    rows = wait(lambda: d.find_elements("css selector", "#audit-table tbody tr td input[type='radio']"),
                message="audit rows")
    assert len(rows) == 2
    texts = [tr.text for tr in d.find_elements("css selector", "#audit-table tbody tr")
             if tr.find_elements("css selector", "td")]
    assert "bob" in texts[0] and "alice" in texts[1]  # newest first
    assert not d.find_element("id", "audit-empty").is_displayed()
    undo = d.find_element("id", "audit-undo")
    assert not undo.is_enabled()                       # nothing selected: nothing to undo
    d.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", rows[0])
    ActionChains(d).move_to_element(rows[0]).click().perform()
    wait(lambda: undo.is_enabled(), message="undo offered for the selected row")
    undo.click()
    wait(lambda: "undid" in d.find_element("id", "audit-status").text, message="undone")
    assert store.picks(eid)[["polarity", "reviewer"]].values.tolist() == [[-1, "ada"]]
    wait(lambda: len(d.find_elements("css selector", "#audit-table tbody tr td input[type='radio']")) == 3,
         message="the undo in the trail")
    wait(lambda: not undo.is_enabled(), message="the selection cleared with the undo")
    _idle(dash_duo)
    no_console_errors(dash_duo)


def test_empty_audit_trail_and_job_queue_say_so(dash_duo, data_dir):
    """A data folder nobody has reviewed yet (local mode: the user may audit): the page says
    there is nothing, instead of empty tables with a filter row; the first change shows the table."""
    from app import create_app

    base = _start(dash_duo, create_app(data_dir), "/audit")
    d = dash_duo.driver
    empty = wait(lambda: d.find_elements("id", "audit-empty"), message="audit page")[0]
    assert empty.is_displayed() and "No reviewed picks yet" in empty.text
    assert not d.find_element("id", "audit-table-wrap").is_displayed()
    assert "No re-inversion jobs yet" in d.find_element("id", "audit-jobs-empty").text
    assert not d.find_element("id", "audit-undo").is_enabled()
    eid = _event(data_dir)
    pol = tables.read_table(data_dir, "polarities", columns=["event_id", "network", "station"])
    net, sta = pol.loc[pol["event_id"] == eid, ["network", "station"]].iloc[0]
    ReviewStore(data_dir).set_pick(eid, net, sta, 1, "alice")
    d.get(f"{base}/audit")
    wait(lambda: len(d.find_elements("css selector", "#audit-table tbody tr td input[type='radio']")) == 1,
         message="the change in the trail")
    assert not d.find_element("id", "audit-empty").is_displayed()
    no_console_errors(dash_duo)
