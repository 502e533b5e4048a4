"""The job queue (:mod:`pipeline.review.jobs`) with real SKHASH re-inversions of the demo data.

A "hung" re-inversion is a real slow process on the real path: ``FM_SKHASH_PYTHON`` (the
interpreter :mod:`pipeline.mechanisms.skhash` starts SKHASH with) names a shell script that,
the first time it is called, becomes ``sleep 300`` and, every later time, runs this Python -
so exactly one SKHASH run hangs and the others are real.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline import tables
from pipeline.review import jobs
from pipeline.review.jobs import RESTART_MESSAGE, JobQueue, JobSettings, QueueFull, owner_alive, owner_token
from pipeline.review.reinvert import effective_polarities
from pipeline.review.reviews import ReviewStore, db_path

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def data_dir(demo_data_dir, tmp_path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(demo_data_dir, d, ignore=shutil.ignore_patterns("reviews.sqlite*"))
    return d


def _events(data_dir, n):
    """``n`` events that have a computed mechanism (SKHASH solves them)."""
    mech = tables.read_table(data_dir, "mechanisms")
    out = sorted(mech.loc[mech["source"] == "computed", "event_id"].unique())[:n]
    if len(out) < n:
        pytest.skip("demo data with too few computed events")
    return out


class Hang:
    """The hanging interpreter (see the module docstring); ``pid()`` of the sleeping process."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.script = folder / "hang_python.sh"
        self.script.write_text(
            "#!/bin/sh\n"
            f'if mkdir "{folder}/hung" 2>/dev/null; then echo $$ > "{folder}/hung/pid"; exec sleep 300; fi\n'
            f'exec "{sys.executable}" "$@"\n')
        self.script.chmod(0o755)

    def pid(self, wait_s: float = 60.0) -> int:
        f = self.folder / "hung" / "pid"
        end = time.monotonic() + wait_s
        while time.monotonic() < end:
            if f.is_file() and f.read_text().strip():
                return int(f.read_text())
            time.sleep(0.05)
        raise AssertionError("the hanging SKHASH run never started")

    def kill(self) -> None:
        f = self.folder / "hung" / "pid"
        if f.is_file() and f.read_text().strip():
            try:
                os.kill(int(f.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def hang(tmp_path, monkeypatch):
    h = Hang(tmp_path)
    monkeypatch.setenv("FM_SKHASH_PYTHON", str(h.script))
    yield h
    h.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_status(q: JobQueue, job_id: str, status: str, wait_s: float = 60.0) -> dict:
    end = time.monotonic() + wait_s
    while time.monotonic() < end:
        job = q.status(job_id)
        if job["status"] == status:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never became {status}: {q.status(job_id)}")


def test_a_hung_reinversion_times_out_and_the_queue_moves_on(data_dir, hang):
    a, b = _events(data_dir, 2)
    q = JobQueue(data_dir, settings=JobSettings(workers=1, timeout_s=120, poll_s=0.2))
    try:
        ja, created = q.submit(a, "alice", timeout_s=2)
        jb, _ = q.submit(b, "bob")
        assert created
        sleeper = hang.pid()
        job_a = q.wait(ja, 60)
        assert job_a["status"] == "error" and job_a["message"] == "timed out after 2 s"
        assert not _alive(sleeper)  # the hung SKHASH process was killed, not left behind
        job_b = q.wait(jb, 120)
        assert job_b["status"] == "done", job_b
        assert job_b["started_at"] >= job_a["finished_at"]  # one worker: b ran after a gave up
    finally:
        q.shutdown(timeout=60)
    store = ReviewStore(data_dir)
    assert store.reinversions(a).empty  # a timed-out run stores no result
    rb = store.reinversion(job_b["reinversion_id"])
    assert rb["event_id"] == b and rb["strike"] is not None and rb["reviewer"] == "bob"


def test_jobs_are_deduplicated_by_event_and_picks(data_dir, hang):
    blocker, ev = _events(data_dir, 2)
    store = ReviewStore(data_dir)
    q = JobQueue(data_dir, store=store, settings=JobSettings(workers=1, timeout_s=120, poll_s=0.2))
    try:
        q.submit(blocker, "alice")
        hang.pid()  # the only worker is busy: later jobs stay queued
        j1, c1 = q.submit(ev, "alice")
        j2, c2 = q.submit(ev, "bob")  # same event, same picks: the queued job
        assert (c1, c2, j2) == (True, False, j1)
        chosen = effective_polarities(tables.read_table(data_dir, "polarities", filters=[("event_id", "==", ev)]),
                                      store.reviewed_polarities(ev))
        net, sta, pol = (str(chosen["network"].iloc[0]), str(chosen["station"].iloc[0]),
                         int(chosen["polarity"].iloc[0]))
        store.set_pick(ev, net, sta, pol, "carol")  # confirms the pick inverted anyway: same picks
        assert q.submit(ev, "carol") == (j1, False)
        store.set_pick(ev, net, sta, -pol, "carol")  # flips it: other picks, a new job
        j3, c3 = q.submit(ev, "carol")
        assert c3 and j3 != j1
        assert q.submit(ev, "dave") == (j3, False)
        store.set_pick(ev, net, sta, pol, "carol")  # back to the first picks: the first job again
        assert q.submit(ev, "erin") == (j1, False)
        assert [j["status"] for j in (q.status(j1), q.status(j3))] == ["queued", "queued"]
        assert store.queue_position(j1) == 0 and store.queue_position(j3) == 1
    finally:
        q.shutdown(wait=False)  # take no more jobs, then release the hung one
        hang.kill()
        q.shutdown(timeout=60)


def test_a_full_queue_refuses_and_the_page_says_so(data_dir, hang):
    from app import create_app
    from test_access import call, meta_for

    blocker, b, c, d = _events(data_dir, 4)
    q = jobs.get_queue(data_dir, JobSettings(workers=1, max_queued=2, timeout_s=120, poll_s=0.2))
    try:
        q.submit(blocker, "alice")
        hang.pid()
        q.submit(b, "alice")
        q.submit(c, "alice")
        n_jobs = len(q.store.jobs())
        with pytest.raises(QueueFull, match=r"job queue is full \(2 jobs waiting, at most 2\)"):
            q.submit(d, "alice")
        assert len(q.store.jobs()) == n_jobs and q.store.active_job(d) is None
        app = create_app(data_dir)  # local mode; the process's queue is the one above
        r = call(app.server.test_client(), "..ev-job.data", {"ev-reinvert.n_clicks": 1},
                 {"ev-meta.data": meta_for(d), "ev-reviewer.data": None}, "ev-reinvert.n_clicks")
        shown = json.dumps(r.get_json()["response"], ensure_ascii=False)
        assert "job queue is full" in shown and "text-danger" in shown
        assert q.store.active_job(d) is None
        # asking again for c (same picks) is not refused: its queued job, one job (b) before it
        r = call(app.server.test_client(), "..ev-job.data", {"ev-reinvert.n_clicks": 1},
                 {"ev-meta.data": meta_for(c), "ev-reviewer.data": None}, "ev-reinvert.n_clicks")
        resp = r.get_json()["response"]
        assert resp["ev-job"]["data"]["job_id"] == q.store.active_job(c)["id"]
        assert "SKHASH queued (1 job ahead)" in json.dumps(resp["ev-reinvert-status"], ensure_ascii=False)
    finally:
        q.shutdown(wait=False)
        hang.kill()
        jobs.close_queue(data_dir, timeout=60)


def test_idle_workers_end_and_the_next_submit_starts_them_again(data_dir):
    a, b = _events(data_dir, 2)
    q = JobQueue(data_dir, settings=JobSettings(workers=1, timeout_s=120, poll_s=0.1, idle_exit_s=0))
    try:
        assert q.workers_alive() == 0  # nothing queued: no thread
        ja, _ = q.submit(a, "alice")
        assert q.wait(ja, 120)["status"] == "done"
        end = time.monotonic() + 30
        while q.workers_alive() and time.monotonic() < end:
            time.sleep(0.05)
        assert q.workers_alive() == 0
        jb, _ = q.submit(b, "alice")
        assert q.wait(jb, 120)["status"] == "done"
    finally:
        q.shutdown(timeout=60)


CHILD = r"""
import sys, time
from pipeline.review.jobs import JobQueue, JobSettings
q = JobQueue(sys.argv[1], settings=JobSettings(workers=1, timeout_s=120, poll_s=0.2))
ja, _ = q.submit(sys.argv[2], "alice")
jb, _ = q.submit(sys.argv[3], "bob")
while q.status(ja)["status"] != "running":
    time.sleep(0.05)
print(ja, jb, flush=True)
time.sleep(600)
"""


def test_after_a_restart_queued_jobs_run_and_running_ones_are_marked_failed(data_dir, tmp_path):
    """An app process with one job running (hung) and one queued is killed (SIGKILL); the next
    queue on the database marks the first failed and runs the second."""
    a, b = _events(data_dir, 2)
    h = Hang(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(data_dir), a, b], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "FM_SKHASH_PYTHON": str(h.script),
                                             "PYTHONPATH": str(ROOT)})
    try:
        ja, jb = child.stdout.readline().split()
        h.pid()
        dead_owner = ReviewStore(data_dir).job(ja)["owner"]
        assert owner_alive(dead_owner) is True
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        h.kill()  # the hung SKHASH run is in its own session: the kill above does not reach it
    assert owner_alive(dead_owner) is False and owner_alive(owner_token()) is True
    assert owner_alive("another-host:1:1") is None  # cannot tell: left alone until past its limit
    assert [ReviewStore(data_dir).job(j)["status"] for j in (ja, jb)] == ["running", "queued"]

    q = JobQueue(data_dir, settings=JobSettings(workers=1, timeout_s=120, poll_s=0.2))
    try:
        assert q.recovered_failed == [ja]
        job_a = q.status(ja)
        assert (job_a["status"], job_a["message"]) == ("error", RESTART_MESSAGE)
        job_b = q.wait(jb, 120)
        assert job_b["status"] == "done", job_b
        assert ReviewStore(data_dir).reinversion(job_b["reinversion_id"])["event_id"] == b
    finally:
        q.shutdown(timeout=60)


def test_settings_from_the_environment_and_a_version_1_database(tmp_path):
    s = JobSettings.from_env({"FM_JOB_WORKERS": "3", "FM_JOB_MAX_QUEUED": "7", "FM_JOB_TIMEOUT_S": "12.5"},
                             workers=2)
    assert (s.workers, s.max_queued, s.timeout_s) == (2, 7, 12.5)
    with pytest.raises(ValueError, match="FM_JOB_TIMEOUT_S='soon'"):
        JobSettings.from_env({"FM_JOB_TIMEOUT_S": "soon"})
    with pytest.raises(ValueError):
        JobSettings(workers=0)
    # a database written before the queue (schema 1) gains the queue's columns, rows kept
    path = db_path(tmp_path)
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE jobs (id TEXT PRIMARY KEY, event_id TEXT NOT NULL, reviewer TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'error')), message TEXT,
            reinversion_id INTEGER, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT);
        INSERT INTO jobs VALUES ('j1', 'e1', 'ann', 'done', 'solved', NULL, '2026-01-01T00:00:00.000000Z', NULL, NULL);
        PRAGMA user_version = 1;""")
    conn.close()
    store = ReviewStore(path=path, validator=False)
    job = store.job("j1")
    assert (job["event_id"], job["status"], job["kind"], job["job_key"]) == ("e1", "done", "reinvert", None)


def test_admins_see_the_job_queue_on_the_audit_page_and_others_do_not(data_dir, tmp_path):
    from app import create_app
    from pipeline.review.accounts import add_account
    from test_access import ORIGIN, PASSWORDS, ROLES, login

    def refresh(client):  # the audit page's job-table callback, as the renderer posts it (the table and its
        # "no jobs yet" note)
        out = [{"id": "audit-jobs", "property": "data"}, {"id": "audit-jobs-empty", "property": "style"}]
        return client.post("/_dash-update-component", headers=ORIGIN, json={
            "output": "..audit-jobs.data...audit-jobs-empty.style..", "outputs": out,
            "changedPropIds": ["audit-jobs-poll.n_intervals"],
            "inputs": [{"id": "audit-jobs-poll", "property": "n_intervals", "value": 1}], "state": []})

    a, b, c = _events(data_dir, 3)
    store = ReviewStore(data_dir)
    ja, _ = store.create_job(a, "alice", timeout_s=2)
    assert store.claim_job(owner_token())["id"] == ja
    store.update_job(ja, "error", "timed out after 2 s")
    jb, _ = store.create_job(b, "bob")
    store.claim_job(owner_token())
    store.update_job(jb, "done", "solved")
    jc, _ = store.create_job(c, "bob")
    store.claim_job("another-host:4242:1")  # running elsewhere: the app's start leaves it alone
    users = tmp_path / "users.json"
    for name in ("alice", "ada"):
        add_account(users, name, ROLES[name], PASSWORDS[name])
    app = create_app(data_dir, users_file=users)
    try:
        assert store.job(jc)["status"] == "running"
        clients = {}
        for name in ("alice", "ada"):
            clients[name] = app.server.test_client()
            assert login(clients[name], name).status_code == 302
            clients[name].get("/")
        answer = refresh(clients["ada"]).get_json()["response"]
        rows = answer["audit-jobs"]["data"]
        assert answer["audit-jobs-empty"]["style"] == {"display": "none"}   # jobs there: no "none yet"
        assert [(x["event_id"], x["status"], x["message"]) for x in rows] == [
            (c, "running", ""), (b, "done", "solved"), (a, "failed", "timed out after 2 s")]
        assert refresh(clients["alice"]).status_code == 204  # a reviewer's direct call gets nothing
    finally:
        jobs.close_queue(data_dir, timeout=30)


def test_concurrent_claimers_never_take_the_same_job(tmp_path):
    """Six claimers (own connections, as separate app processes have) race for 30 queued jobs:
    every job is claimed exactly once, oldest first per claimer."""
    import threading

    path = db_path(tmp_path)
    store = ReviewStore(path=path, validator=False)
    ids = [store.create_job(f"2016010100000{i % 10}.{i:03d}", "ann", key=f"k{i}")[0] for i in range(30)]
    got: dict[str, list] = {}
    start = threading.Barrier(6)

    def claimer(name):
        own = ReviewStore(path=path, validator=False)
        start.wait()
        mine = got.setdefault(name, [])
        while (job := own.claim_job(f"host:{name}:1")) is not None:
            mine.append(job["id"])

    threads = [threading.Thread(target=claimer, args=(f"p{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    claimed = [j for mine in got.values() for j in mine]
    assert sorted(claimed) == sorted(ids)  # each exactly once
    for name, mine in got.items():
        assert mine == sorted(mine, key=ids.index)  # a claimer takes them in queue order
        assert {store.job(j)["owner"] for j in mine} <= {f"host:{name}:1"}
    assert store.count_jobs("queued") == 0 and store.count_jobs("running") == 30
