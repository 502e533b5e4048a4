"""Sharing the dashboard (issue 10, items 1-2 and /healthz): accounts and roles, the login gate,
the same-origin check, and every write checked on the server - through real HTTP requests to
the real Flask/Dash app (Flask's test client), the real review database (SQLite) and a copy of
the demo tables. Callbacks are called as the Dash renderer calls them
(``POST /_dash-update-component``)."""
from __future__ import annotations

import json
import re
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest

from pipeline import tables
from pipeline.review.accounts import add_account
from pipeline.review.reviews import ReviewStore, db_path

PASSWORDS = {"alice": "alice-pass-1", "bob": "bob-pass-22", "vic": "viewer-pass", "ada": "admin-pass-9"}
ROLES = {"alice": "reviewer", "bob": "reviewer", "vic": "viewer", "ada": "admin"}
ORIGIN = {"Origin": "http://localhost"}  # the test client's host


def write_stations(data_dir, df) -> None:
    import pyarrow.parquet as pq

    path = tables.table_path(data_dir, "stations")
    assert path.is_file(), path
    pq.write_table(tables.to_arrow("stations", df), path)


@pytest.fixture
def data_dir(demo_data_dir, tmp_path) -> Path:
    """A copy of the demo tables plus one station no event has (every demo station records
    every event): the "station of another event" of the forged requests."""
    d = tmp_path / "data"
    shutil.copytree(demo_data_dir, d)
    st = tables.read_table(d, "stations")
    extra = st.iloc[[0]].copy()
    extra["station"], extra["reversed"] = "X999", False
    write_stations(d, pd.concat([st, extra], ignore_index=True))
    return d


@pytest.fixture
def users_file(tmp_path) -> Path:
    path = tmp_path / "users.json"
    for name, pw in PASSWORDS.items():
        add_account(path, name, ROLES[name], pw)
    return path


@pytest.fixture
def app(data_dir, users_file):
    from app import create_app

    return create_app(data_dir, users_file=users_file)


def _event(data_dir):
    """A computed event with waveforms, one of its reversed stations, one not reversed, and a
    station of the stations table that is not one of the event's."""
    mech = tables.read_table(data_dir, "mechanisms")
    waves = tables.read_table(data_dir, "waveforms", columns=["event_id", "network", "station"])
    pol = tables.read_table(data_dir, "polarities", columns=["event_id", "network", "station"])
    st = tables.read_table(data_dir, "stations")
    rev = {f"{n}.{s}": bool(r) for n, s, r in zip(st["network"], st["station"], st["reversed"])}
    for eid in sorted(mech.loc[mech["source"] == "computed", "event_id"]):
        keys = {f"{n}.{s}" for df in (waves, pol) for n, s in
                zip(df.loc[df["event_id"] == eid, "network"], df.loc[df["event_id"] == eid, "station"])}
        r = sorted(k for k in keys if rev.get(k))
        n = sorted(k for k in keys if k in rev and not rev[k])
        other = sorted(set(rev) - keys)
        if r and len(n) > 1 and other:
            return eid, r[0], n, other[0]
    pytest.skip("demo data without an event having reversed and normal stations")


def login(client, name, password=None, addr="127.0.0.1"):
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    return client.post("/login", data={"username": name, "password": password or PASSWORDS[name], "csrf": token,
                                       "next": "/"}, headers=ORIGIN, environ_base={"REMOTE_ADDR": addr})


def _dep(client, output_prefix: str) -> dict:
    deps = client.get("/_dash-dependencies").get_json()
    return next(d for d in deps if d["output"].startswith(output_prefix) and d.get("clientside_function") is None)


def call(client, output_prefix: str, inputs: dict, state: dict, changed: str, headers=ORIGIN, deps_client=None):
    """POST a server callback as the renderer does; ``inputs``/``state``: {"id.prop": value};
    the callback's description from ``deps_client`` (default ``client``)."""
    dep = _dep(deps_client or client, output_prefix)
    outputs = []
    for o in dep["output"].strip(".").split("..."):
        oid, prop = o.rsplit(".", 1)
        outputs.append({"id": oid, "property": prop})

    def vals(items, given):
        return [{**i, "value": given.get(f"{i['id']}.{i['property']}")} for i in items]

    body = {"output": dep["output"], "outputs": outputs, "inputs": vals(dep["inputs"], inputs),
            "state": vals(dep["state"], state), "changedPropIds": [changed]}
    return client.post("/_dash-update-component", json=body, headers=headers)


def pick(client, meta: dict, *requests, deps_client=None):
    """The event page's pick callback with a queue of requests."""
    return call(client, "..ev-reviews.data", {"ev-pickq.data": list(requests)},
                {"ev-meta.data": meta, "ev-reviews.data": {}}, "ev-pickq.data", deps_client=deps_client)


def status_text(resp) -> str:
    return json.dumps(resp.get_json()["response"].get("ev-status", {}), ensure_ascii=False)


def meta_for(eid, keys=()):
    return {"event_id": eid, "keys": list(keys), "q": "", "write": True}


def _picks(data_dir, eid=None):
    if not db_path(data_dir).exists():
        return []
    return [tuple(r) for r in ReviewStore(data_dir).picks(eid)[["network", "station", "polarity", "reviewer"]]
            .itertuples(index=False)]


def _audit(data_dir):
    if not db_path(data_dir).exists():
        return []
    return ReviewStore(data_dir).audit()


def _logged_in(app, name):
    c = app.server.test_client()
    assert login(c, name).status_code == 302
    c.get("/")  # Dash registers the pages' callbacks on the first served request
    return c


# -- the gate --------------------------------------------------------------------------------
def test_unauthenticated_client_gets_nothing_but_healthz_and_the_login_form(app, data_dir):
    c = app.server.test_client()
    eid = _event(data_dir)[0]
    r = c.get("/healthz")
    assert r.status_code == 200 and r.get_data() == b"ok\n"  # no data
    for path in ("/", f"/event/{eid}", "/audit", "/magnitudes?cluster=1"):
        r = c.get(path, headers={"Accept": "text/html"})
        assert r.status_code == 302 and r.headers["Location"].startswith("/login?next="), path
    for path in ("/_dash-layout", "/_dash-dependencies", "/download/events.csv", "/assets/bootstrap.min.css",
                 "/_favicon.ico", "/_reload-hash", "/download/mechanisms_classified.csv",
                 "/download/mechanisms_classified.csv?rule=g1:0,12,0,90,165"):
        r = c.get(path)
        assert r.status_code == 401 and b"event" not in r.data.lower(), path
    page_js = [p for p in app.server.url_map.iter_rules() if "_dash-component-suites" in p.rule]
    assert page_js and c.get("/_dash-component-suites/dash/dash-renderer/build/dash_renderer.v1.min.js") \
        .status_code == 401
    # a callback, as the renderer would post it
    body = {"output": "..ev-reviews.data...ev-status.children..", "outputs": [], "inputs": [], "state": [],
            "changedPropIds": []}
    assert c.post("/_dash-update-component", json=body, headers=ORIGIN).status_code == 401
    assert c.post("/_dash-update-component", json=body).status_code == 403  # no Origin with accounts
    login_page = c.get("/login")
    assert login_page.status_code == 200 and b'name="password"' in login_page.data
    assert not db_path(data_dir).exists()


def test_login_with_the_right_password_works_and_a_wrong_one_does_not(app):
    c = app.server.test_client()
    bad = login(c, "alice", "not-her-password")
    assert bad.status_code == 401 and b"Wrong account name or password" in bad.data
    assert c.get("/_dash-layout").status_code == 401
    assert login(c, "nobody", "whatever-123").status_code == 401
    ok = login(c, "alice")
    assert ok.status_code == 302 and ok.headers["Location"] == "/"
    assert "HttpOnly" in ok.headers["Set-Cookie"] and "SameSite=Lax" in ok.headers["Set-Cookie"]
    assert c.get("/_dash-layout").status_code == 200
    layout = c.get("/_dash-layout").get_data(as_text=True)
    assert "alice" in layout and "reviewer" in layout  # the navbar shows who is logged in
    assert c.post("/logout", headers=ORIGIN).status_code == 302
    assert c.get("/_dash-layout").status_code == 401


def test_repeated_wrong_passwords_are_throttled_per_account_and_address(app):
    c = app.server.test_client()
    for _ in range(5):
        assert login(c, "alice", "guess-guess").status_code == 401
    r = login(c, "alice")  # even the right password, for the rest of the window
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert c.get("/_dash-layout").status_code == 401
    # the account's owner elsewhere is not locked out, nor are other accounts
    assert login(app.server.test_client(), "alice", addr="10.0.0.7").status_code == 302
    assert login(app.server.test_client(), "bob").status_code == 302


def test_login_form_needs_its_csrf_token_same_origin_and_redirects_only_locally(app):
    c = app.server.test_client()
    c.get("/login")
    r = c.post("/login", data={"username": "alice", "password": PASSWORDS["alice"], "csrf": "forged"},
               headers=ORIGIN)
    assert r.status_code == 400 and c.get("/_dash-layout").status_code == 401
    page = c.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    form = {"username": "alice", "password": PASSWORDS["alice"], "csrf": token, "next": "//evil.example/x"}
    assert c.post("/login", data=form, headers={"Origin": "http://evil.example"}).status_code == 403
    r = c.post("/login", data=form, headers=ORIGIN)
    assert r.status_code == 302 and r.headers["Location"] == "/"  # not to another site


def test_cross_site_callback_is_refused_even_when_logged_in(app, data_dir):
    eid, rev_key, normal, _ = _event(data_dir)
    c = _logged_in(app, "alice")
    for headers in ({"Origin": "http://evil.example"}, {"Referer": "http://evil.example/page"}, {"Origin": "null"}):
        r = call(c, "..ev-reviews.data", {"ev-pickq.data": [{"id": "x1", "action": "up", "station": normal[0],
                                                              "view": "true"}]},
                 {"ev-meta.data": meta_for(eid), "ev-reviews.data": {}}, "ev-pickq.data", headers=headers)
        assert r.status_code == 403, headers
    assert _picks(data_dir) == []


def test_password_change_ends_other_sessions_and_removed_accounts_are_logged_out(app, users_file):
    from pipeline.review.accounts import remove_account

    c = _logged_in(app, "bob")
    add_account(users_file, "bob", "reviewer", "a-new-password", replace=True)
    assert c.get("/_dash-layout").status_code == 401
    c2 = app.server.test_client()
    assert login(c2, "bob", "a-new-password").status_code == 302
    assert c2.get("/_dash-layout").status_code == 200
    remove_account(users_file, "bob")
    assert c2.get("/_dash-layout").status_code == 401


# -- writes ----------------------------------------------------------------------------------
def test_unauthenticated_and_viewer_requests_cannot_write(app, data_dir):
    eid, rev_key, normal, _ = _event(data_dir)
    req = {"id": "v1", "action": "down", "station": normal[0], "view": "true"}
    anon = app.server.test_client()
    vic = _logged_in(app, "vic")
    assert pick(anon, meta_for(eid), req, deps_client=vic).status_code == 401
    dl = vic.get("/download/events.csv")  # viewers browse and download
    assert dl.status_code == 200 and dl.get_data(as_text=True).startswith("\"event_id\"")
    dl = vic.get("/download/mechanisms_classified.csv?rule=g1:0,12,0,90,165")  # the classification page's CSV
    assert dl.status_code == 200 and "\"group\",\"group_stored\"" in dl.get_data(as_text=True).split("\n", 1)[0]
    r = pick(vic, meta_for(eid), req)
    assert r.status_code == 200 and "vic is a viewer: cannot review picks" in status_text(r)
    r = call(vic, "..ev-job.data", {"ev-reinvert.n_clicks": 1}, {"ev-meta.data": meta_for(eid),
                                                                 "ev-reviewer.data": None}, "ev-reinvert.n_clicks")
    assert "cannot re-invert" in json.dumps(r.get_json(), ensure_ascii=False)
    assert _picks(data_dir) == []
    st = ReviewStore(data_dir)
    assert st.audit().empty and st.active_job(eid) is None and st.reinversions().empty


def test_reviewer_reinversion_is_signed_by_the_account(app, data_dir):
    import time

    eid, rev_key, normal, _ = _event(data_dir)
    c = _logged_in(app, "alice")
    r = call(c, "..ev-job.data", {"ev-reinvert.n_clicks": 1}, {"ev-meta.data": meta_for(eid),
                                                               "ev-reviewer.data": "mallory"}, "ev-reinvert.n_clicks")
    assert r.status_code == 200
    job_id = r.get_json()["response"]["ev-job"]["data"]["job_id"]
    store = ReviewStore(data_dir)
    assert store.job(job_id)["reviewer"] == "alice"
    end = time.time() + 90
    while time.time() < end and store.job(job_id)["status"] in ("queued", "running"):
        time.sleep(0.2)
    assert store.job(job_id)["status"] == "done", store.job(job_id)
    assert store.latest_reinversion(eid)["reviewer"] == "alice"


def test_reviews_are_signed_by_the_account_not_the_browser(app, data_dir):
    eid, rev_key, normal, _ = _event(data_dir)
    c = _logged_in(app, "alice")
    r = pick(c, meta_for(eid), {"id": "a1", "action": "down", "station": normal[0], "view": "true",
                                "reviewer": "mallory"})
    assert "by alice" in status_text(r)
    net, sta = normal[0].split(".")
    assert _picks(data_dir, eid) == [(net, sta, -1, "alice")]


def test_sign_comes_from_the_stations_table_not_the_browser(app, data_dir):
    """The bug of the issue: the page took the sign from the ``reversed`` flags the browser
    sent. Now a page (stale or crafted) that says a reversed station is not reversed, or the
    opposite, gets its picks refused, and the sign of every stored pick follows the table."""
    eid, rev_key, normal, _ = _event(data_dir)
    c = _logged_in(app, "alice")
    # an old page sent the reversal flags (here: the wrong ones): refused, nothing written
    stale = {**meta_for(eid), "reversed": {rev_key: False, normal[0]: True}}
    r = pick(c, stale, {"id": "s1", "action": "up", "station": rev_key, "view": "recorded"})
    assert "out of date" in status_text(r)
    # a request carrying its own polarity or reversal flag: refused
    for forged in ({"polarity": 1}, {"reversed": False}, {"sign": -1}):
        r = pick(c, meta_for(eid), {"id": f"f{len(forged)}{list(forged)[0]}", "action": "up", "station": rev_key,
                                    "view": "recorded", **forged})
        assert "unexpected field" in status_text(r)
    r = pick(c, meta_for(eid), {"id": "s2", "action": "up", "station": rev_key, "view": "sideways"})
    assert "unknown view" in status_text(r)
    assert _picks(data_dir) == []
    # shown as recorded: "up" on a reversed station is true motion down; on a normal one, up
    pick(c, meta_for(eid), {"id": "s3", "action": "up", "station": rev_key, "view": "recorded"},
         {"id": "s4", "action": "up", "station": normal[0], "view": "recorded"},
         {"id": "s5", "action": "down", "station": normal[1], "view": "true"})
    got = {f"{n}.{s}": p for n, s, p, _ in _picks(data_dir, eid)}
    assert got == {rev_key: -1, normal[0]: 1, normal[1]: -1}


def test_a_stations_table_change_after_page_load_is_what_counts(app, data_dir):
    """A page drawn before the stations table changed (a reversal corrected) still stores the
    true motion according to the table at the time of the write."""
    eid, rev_key, normal, _ = _event(data_dir)
    c = _logged_in(app, "alice")
    st = tables.read_table(data_dir, "stations")
    net, sta = normal[0].split(".")
    st.loc[(st["network"] == net) & (st["station"] == sta), "reversed"] = True
    write_stations(data_dir, st)
    pick(c, meta_for(eid), {"id": "t1", "action": "up", "station": normal[0], "view": "recorded"})
    assert _picks(data_dir, eid) == [(net, sta, -1, "alice")]


def test_forged_station_or_event_is_refused_and_changes_nothing(app, data_dir):
    eid, rev_key, normal, other = _event(data_dir)
    c = _logged_in(app, "alice")
    cases = [
        (meta_for(eid), {"id": "e1", "action": "down", "station": other, "view": "true"}, "is not a station of event"),
        (meta_for(eid), {"id": "e2", "action": "down", "station": "XX.NOPE", "view": "true"}, "is not a station"),
        (meta_for(eid), {"id": "e3", "action": "flip", "station": normal[0], "view": "true"}, "unknown action"),
        (meta_for("29990101000000.000"), {"id": "e4", "action": "down", "station": normal[0], "view": "true"},
         "unknown event"),
        (meta_for("'; DROP TABLE picks; --"), {"id": "e5", "action": "down", "station": normal[0], "view": "true"},
         "unknown event"),
        # the browser's list of keys does not make a station one of the event's
        (meta_for(eid, keys=[other]), {"id": "e6", "action": "up", "station": other, "view": "true"},
         "is not a station of event"),
    ]
    for meta, req, why in cases:
        r = pick(c, meta, req)
        assert r.status_code == 200 and why in status_text(r), (req, status_text(r))
    assert _picks(data_dir) == [] and _audit(data_dir).empty


def test_malformed_pick_payloads_are_refused_without_a_server_error(app, data_dir):
    eid, rev_key, normal, _ = _event(data_dir)
    c = _logged_in(app, "alice")
    junk = [("ev-pickq.data", "not a list"), ("ev-pickq.data", [None, 3, "x", ["up"]]),
            ("ev-meta.data", ["not", "a", "dict"]), ("ev-reviews.data", "nope"),
            ("ev-pickq.data", [{"id": 5, "action": "up", "station": ["5B", "X"], "view": "true"}])]
    for where, value in junk:
        given = {"ev-pickq.data": [], "ev-meta.data": meta_for(eid), "ev-reviews.data": {}, where: value}
        r = call(c, "..ev-reviews.data", {"ev-pickq.data": given["ev-pickq.data"]},
                 {"ev-meta.data": given["ev-meta.data"], "ev-reviews.data": given["ev-reviews.data"]},
                 "ev-pickq.data")
        assert r.status_code in (200, 204), (where, value, r.status_code)
    assert _picks(data_dir) == [] and _audit(data_dir).empty


def test_two_reviewers_on_one_event_both_audited_no_lost_write(app, data_dir):
    eid, rev_key, normal, _ = _event(data_dir)
    keys = [rev_key, *normal][:3]
    clients = {"alice": _logged_in(app, "alice"), "bob": _logged_in(app, "bob")}
    rounds = 6
    errors = []
    barrier = threading.Barrier(2)

    def work(name):
        try:
            barrier.wait()
            for i in range(rounds):
                action = "up" if (i + (name == "bob")) % 2 else "down"
                r = pick(clients[name], meta_for(eid), {"id": f"{name}-{i}", "action": action,
                                                        "station": keys[i % len(keys)], "view": "true"})
                text = status_text(r)  # "X → ↓ down by bob (was ...)" or "X: unchanged (↓ down)"
                assert r.status_code == 200 and (f"by {name}" in text or "unchanged" in text), text
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    audit = _audit(data_dir)
    assert len(audit) == 2 * rounds  # every write audited, none lost
    assert sorted(audit["reviewer"].value_counts().items()) == [("alice", rounds), ("bob", rounds)]
    assert set(audit["request_id"]) == {f"{n}-{i}" for n in clients for i in range(rounds)}
    picks = {(n, s): (p, who) for n, s, p, who in _picks(data_dir, eid)}
    for key in keys:  # the pick is the last audited write of its station; each change saw the one before
        net, sta = key.split(".")
        rows = audit[(audit["network"] == net) & (audit["station"] == sta)].sort_values("id")
        assert picks[(net, sta)] == (rows["new_polarity"].iloc[-1], rows["reviewer"].iloc[-1])
        olds, news = rows["old_polarity"].tolist()[1:], rows["new_polarity"].tolist()[:-1]
        assert olds == news


# -- audit trail -------------------------------------------------------------------------------
def test_only_admins_can_undo_and_undo_is_audited(app, data_dir):
    eid, rev_key, normal, _ = _event(data_dir)
    alice = _logged_in(app, "alice")
    pick(alice, meta_for(eid), {"id": "u1", "action": "down", "station": normal[0], "view": "true"})
    pick(alice, meta_for(eid), {"id": "u2", "action": "up", "station": normal[0], "view": "true"})
    audit = _audit(data_dir)
    last = int(audit["id"].iloc[-1])
    rows = [{"id": last}]

    def undo(client):
        return call(client, "..audit-table.data", {"audit-undo.n_clicks": 1},
                    {"audit-table.selected_rows": [0], "audit-table.data": rows}, "audit-undo.n_clicks")

    r = undo(alice)
    assert "alice is a reviewer: cannot undo changes" in json.dumps(r.get_json(), ensure_ascii=False)
    vic = _logged_in(app, "vic")
    assert "cannot undo" in json.dumps(undo(vic).get_json(), ensure_ascii=False)
    assert len(_audit(data_dir)) == 2
    ada = _logged_in(app, "ada")
    r = undo(ada)
    assert r.status_code == 200 and "undid" in json.dumps(r.get_json(), ensure_ascii=False)
    net, sta = normal[0].split(".")
    assert _picks(data_dir, eid) == [(net, sta, -1, "ada")]
    audit = _audit(data_dir)
    assert audit["reviewer"].tolist() == ["alice", "alice", "ada"] and audit["request_id"].iloc[-1] == f"undo:{last}"
    # the audit page itself: admins see the trail, others are told it is for admins
    import pages.audit as audit_page
    with app.server.test_request_context("/audit"):
        from flask_login import login_user

        from components.login import User
        login_user(User(app.server.extensions["fm_access"].accounts.get("ada")))
        assert audit_page.layout().id == "audit-page"
        login_user(User(app.server.extensions["fm_access"].accounts.get("alice")))
        assert audit_page.layout().id == "audit-denied"


# -- read-only default -------------------------------------------------------------------------
def test_read_only_app_has_no_write_path(data_dir):
    from app import create_app

    app = create_app(data_dir, read_only=True)
    c = app.server.test_client()
    assert c.get("/").status_code == 200 and c.get("/healthz").status_code == 200
    assert c.get("/download/events.csv").status_code == 200  # browsing and downloads work
    assert c.get("/download/mechanisms_classified.csv").status_code == 200
    eid, rev_key, normal, _ = _event(data_dir)
    r = pick(c, meta_for(eid), {"id": "r1", "action": "down", "station": normal[0], "view": "true"})
    assert r.status_code == 200 and "read-only" in status_text(r)
    r = call(c, "..ev-job.data", {"ev-reinvert.n_clicks": 1}, {"ev-meta.data": meta_for(eid),
                                                               "ev-reviewer.data": None}, "ev-reinvert.n_clicks")
    assert "read-only" in json.dumps(r.get_json(), ensure_ascii=False)
    assert not db_path(data_dir).exists()  # not even created
    import pages.event as ev
    with app.server.test_request_context(f"/event/{eid}"):
        page = ev.layout(event_id=eid)
    found = {}

    def walk(node):
        if hasattr(node, "id") and isinstance(getattr(node, "id", None), str):
            found[node.id] = node
        kids = getattr(node, "children", None)
        for k in (kids if isinstance(kids, list) else [kids]):
            if hasattr(k, "to_plotly_json"):
                walk(k)
    walk(page)
    for b in ("ev-btn-up", "ev-btn-down", "ev-btn-zero", "ev-btn-reset", "ev-reinvert"):
        assert found[b].disabled is True, b
    assert "read-only" in str(found["ev-readonly"].children)
    assert ev.META_FIELDS >= set(found["ev-meta"].data) and found["ev-meta"].data["write"] is False


def test_read_only_store_reads_existing_reviews_and_refuses_writes(data_dir):
    eid, rev_key, normal, _ = _event(data_dir)
    net, sta = normal[0].split(".")
    ReviewStore(data_dir).set_pick(eid, net, sta, 1, "alice")

    def dump():
        import sqlite3
        conn = sqlite3.connect(f"file:{db_path(data_dir)}?mode=ro", uri=True)
        try:
            return [conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("picks", "audit", "jobs", "reinversions")]
        finally:
            conn.close()

    before = dump()
    ro = ReviewStore(data_dir, read_only=True)
    assert ro.picks(eid)["reviewer"].tolist() == ["alice"]
    from pipeline.review.reviews import ReviewError
    with pytest.raises(ReviewError, match="read-only"):
        ro.set_pick(eid, net, sta, -1, "mallory")
    with pytest.raises(ReviewError, match="read-only"):
        ro.create_job(eid, "mallory")
    assert dump() == before


def test_mode_follows_the_address_and_the_users_file():
    from components.access import ACCOUNTS, LOCAL, READ_ONLY, is_loopback, mode_for

    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2", "[::1]")] == [True] * 5
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "", "192.168.1.5", "example.org")] == [False] * 5
    assert mode_for("127.0.0.1", None) == LOCAL
    assert mode_for("0.0.0.0", None) == READ_ONLY and mode_for(None, None) == READ_ONLY
    assert mode_for("0.0.0.0", "users.json") == ACCOUNTS and mode_for("127.0.0.1", "u.json") == ACCOUNTS


def test_local_mode_is_unchanged_single_user(data_dir):
    """No users file on loopback: no login, the typed reviewer name signs, writes work."""
    from app import create_app

    app = create_app(data_dir)
    c = app.server.test_client()
    assert c.get("/_dash-layout").status_code == 200
    eid, rev_key, normal, _ = _event(data_dir)
    r = pick(c, meta_for(eid), {"id": "l1", "action": "down", "station": normal[0], "view": "true",
                                "reviewer": "Ann"})
    assert "by Ann" in status_text(r)
    # the server-side checks hold in local mode too
    r = pick(c, meta_for(eid), {"id": "l2", "action": "down", "station": "XX.NOPE", "view": "true"})
    assert "is not a station" in status_text(r)
    assert len(_audit(data_dir)) == 1


def test_app_on_a_shared_address_without_users_file_starts_read_only_and_says_so(data_dir):
    """``app.py --host 0.0.0.0`` without ``--users``: the start message says read-only, and the
    served app (real waitress, real HTTP) refuses a review and creates no database."""
    import os
    import subprocess
    import sys
    import time

    import requests

    from pagetools import free_port

    port = free_port()
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "app.py", "--data-dir", str(data_dir), "--host", "0.0.0.0", "--port",
                             str(port)], cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 60
        while time.time() < end:
            try:
                if requests.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.3)
        r = requests.get(base + "/healthz", timeout=5)
        assert r.status_code == 200 and r.text == "ok\n"
        assert any("READ-ONLY" in line and "0.0.0.0" in line for line in lines), lines
        s = requests.Session()
        assert s.get(base + "/", timeout=30).status_code == 200
        deps = s.get(base + "/_dash-dependencies", timeout=30).json()
        dep = next(d for d in deps if d["output"].startswith("..ev-reviews.data") and not d.get("clientside_function"))
        eid, rev_key, normal, _ = _event(data_dir)
        given = {"ev-pickq.data": [{"id": "w1", "action": "down", "station": normal[0], "view": "true"}],
                 "ev-meta.data": meta_for(eid), "ev-reviews.data": {}}
        body = {"output": dep["output"],
                "outputs": [{"id": o.rsplit(".", 1)[0], "property": o.rsplit(".", 1)[1]}
                            for o in dep["output"].strip(".").split("...")],
                "inputs": [{**i, "value": given.get(f"{i['id']}.{i['property']}")} for i in dep["inputs"]],
                "state": [{**i, "value": given.get(f"{i['id']}.{i['property']}")} for i in dep["state"]],
                "changedPropIds": ["ev-pickq.data"]}
        r = s.post(base + "/_dash-update-component", json=body, headers={"Origin": base}, timeout=30)
        assert r.status_code == 200 and "read-only" in r.text
        assert s.post(base + "/_dash-update-component", json=body, headers={"Origin": "http://evil.example"},
                      timeout=30).status_code == 403
        assert not db_path(data_dir).exists()
    finally:
        proc.terminate()
        proc.wait(30)
