"""The review database (pipeline/review/reviews.py): WAL, audit trail, validation, concurrency,
persistence, and the bridge to the batch inversion (manual_polarities / apply_reviews)."""
from __future__ import annotations

import multiprocessing as mp
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest

from pipeline.review.reviews import (
    DB_NAME, ReviewError, ReviewStore, apply_reviews, db_path, manual_polarities)

EVENT = "20161104064824.680"
OTHER = "20161125051408.940"
STATIONS = [("5B", f"{1107 + i:04d}") for i in range(8)]


class FakeValidator:
    """Known events/stations without Parquet tables (webviz-style fake provider)."""
    events = {EVENT, OTHER}
    stations = set(STATIONS)

    def check(self, event_id, network=None, station=None):
        if event_id not in self.events:
            raise ReviewError(f"unknown event {event_id!r}")
        if network is not None and (network, station) not in self.stations:
            raise ReviewError(f"unknown station {network}.{station}")


@pytest.fixture
def data_dir(tmp_path) -> Path:
    """A data folder with just the events and stations tables the store validates against."""
    from pipeline import tables

    d = tmp_path / "data"
    d.mkdir()
    events = pd.DataFrame({"event_id": [EVENT, OTHER]})
    stations = pd.DataFrame({"network": [n for n, _ in STATIONS], "station": [s for _, s in STATIONS]})
    events.to_parquet(tables.table_path(d, "events"))
    stations.to_parquet(tables.table_path(d, "stations"))
    return d


@pytest.fixture
def store(data_dir) -> ReviewStore:
    return ReviewStore(data_dir)


def _dump(path: Path) -> dict:
    conn = sqlite3.connect(path)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3").fetchall()
                for t in ("picks", "audit", "reinversions", "jobs")}
    finally:
        conn.close()


def test_database_file_and_wal_mode(store, data_dir):
    assert store.path == data_dir / DB_NAME == db_path(data_dir)
    assert store.journal_mode() == "wal"
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent setting of the file
    cols = [r[1] for r in conn.execute("PRAGMA table_info(picks)")]
    assert cols == ["event_id", "network", "station", "polarity", "reviewer", "updated_at"]
    cols = [r[1] for r in conn.execute("PRAGMA table_info(audit)")]
    assert cols == ["id", "event_id", "network", "station", "old_polarity", "new_polarity", "reviewer", "at",
                    "request_id"]
    conn.close()


def test_audit_trail_records_previous_value(store):
    a = store.set_pick(EVENT, "5B", "1107", -1, "alice", request_id="r1")
    b = store.set_pick(EVENT, "5B", "1107", 1, "bob")
    c = store.set_pick(EVENT, "5B", "1107", 0, "carol")
    d = store.clear_pick(EVENT, "5B", "1107", "dave")
    assert (a.old, a.new, b.old, b.new, c.old, c.new, d.old, d.new) == (None, -1, -1, 1, 1, 0, 0, None)
    audit = store.audit(EVENT)
    assert audit["reviewer"].tolist() == ["alice", "bob", "carol", "dave"]
    assert [None if pd.isna(v) else int(v) for v in audit["old_polarity"]] == [None, -1, 1, 0]
    assert [None if pd.isna(v) else int(v) for v in audit["new_polarity"]] == [-1, 1, 0, None]
    assert audit["request_id"].iloc[0] == "r1"
    assert all(t.endswith("Z") for t in audit["at"])
    assert store.picks(EVENT).empty  # cleared: the batch picks apply again


def test_pick_values_are_true_motion_and_upsert(store):
    store.set_pick(EVENT, "5B", "1108", 1, "alice")
    store.set_pick(EVENT, "5B", "1108", -1, "bob")
    store.set_pick(OTHER, "5B", "1108", 0, "bob")
    p = store.picks()
    assert len(p) == 2
    row = p[p["event_id"] == EVENT].iloc[0]
    assert (row["polarity"], row["reviewer"]) == (-1, "bob")
    assert store.picks_dict(EVENT) == {"5B.1108": {"polarity": -1, "reviewer": "bob",
                                                   "updated_at": row["updated_at"]}}


def test_same_value_is_audited_but_request_id_is_idempotent(store):
    first = store.set_pick(EVENT, "5B", "1109", 1, "alice", request_id="key-1")
    again = store.set_pick(EVENT, "5B", "1109", -1, "alice", request_id="key-1")  # a retried request
    assert first.changed and not again.changed and again.audit_id == first.audit_id
    assert store.picks(EVENT)["polarity"].tolist() == [1]
    assert len(store.audit(EVENT)) == 1
    same = store.set_pick(EVENT, "5B", "1109", 1, "alice")
    assert not same.changed and len(store.audit(EVENT)) == 2


@pytest.mark.parametrize("args", [
    (EVENT, "5B", "9999", 1, "alice"),                       # unknown station
    (EVENT, "XX", "1107", 1, "alice"),                       # unknown network
    ("20990101000000.000", "5B", "1107", 1, "alice"),        # unknown event
    (EVENT, "5B", "1107", 5, "alice"),                       # polarity 5
    (EVENT, "5B", "1107", 2, "alice"),
    (EVENT, "5B", "1107", "1", "alice"),                     # a string is not a polarity
    (EVENT, "5B", "1107", 1.0, "alice"),
    (EVENT, "5B", "1107", True, "alice"),
    (EVENT, "5B", "1107", None, "alice"),
    (EVENT, "5B", "1107", 1, "x" * 65),                      # reviewer too long
    (EVENT, "5B", "1107", 1, "bad\x00name"),
    (EVENT, "5B", "1107", 1, 42),
    (EVENT, "5B", "1107'; DROP TABLE picks; --", 1, "alice"),  # SQL-ish strings
    ("1' OR '1'='1", "5B", "1107", 1, "alice"),
    (EVENT, "5B' OR 1=1 --", "1107", -1, "alice"),
    (EVENT, "5B", "1107", 1, "alice', 1); DROP TABLE audit; --" * 3),
    (None, "5B", "1107", 1, "alice"),
    ([EVENT], "5B", "1107", 1, "alice"),
])
def test_bad_requests_change_nothing(store, args):
    store.set_pick(EVENT, "5B", "1107", -1, "alice")
    before = _dump(store.path)
    with pytest.raises(ReviewError):
        store.set_pick(*args)
    assert _dump(store.path) == before


def test_sql_looking_reviewer_is_stored_verbatim(store):
    name = "o'brien; DROP TABLE picks; --"
    store.set_pick(EVENT, "5B", "1110", 1, name)
    assert store.picks(EVENT)["reviewer"].tolist() == [name]
    assert store.audit(EVENT)["reviewer"].tolist() == [name]


def test_reviewer_default_and_strip(store):
    assert store.set_pick(EVENT, "5B", "1107", 1, None).reviewer == "anonymous"
    assert store.set_pick(EVENT, "5B", "1108", 1, "   ").reviewer == "anonymous"
    assert store.set_pick(EVENT, "5B", "1109", 1, "  Ann  ").reviewer == "Ann"
    assert store.set_pick(EVENT, "5B", "1110", 1, "x" * 64).reviewer == "x" * 64


def test_restart_persistence(data_dir):
    s1 = ReviewStore(data_dir)
    s1.set_pick(EVENT, "5B", "1107", -1, "alice")
    s1.add_reinversion({"event_id": EVENT, "strike": 10.0, "dip": 80.0, "rake": 170.0, "quality": "A",
                        "misfit": 2.0, "n_polarities": 40, "kagan_to_previous": 3.5,
                        "stations_json": [{"network": "5B", "station": "1107"}]})
    del s1
    s2 = ReviewStore(data_dir)  # a new process would do exactly this
    assert s2.picks(EVENT)["polarity"].tolist() == [-1]
    assert len(s2.audit(EVENT)) == 1
    r = s2.latest_reinversion(EVENT)
    assert (r["strike"], r["quality"], r["kagan_to_previous"]) == (10.0, "A", 3.5)
    assert r["stations_json"] == [{"network": "5B", "station": "1107"}]


def _hammer(store: ReviewStore, reviewer: str, n: int, stations, errors: list):
    for i in range(n):
        net, sta = stations[i % len(stations)]
        try:
            store.set_pick(EVENT, net, sta, (-1, 0, 1)[(i + len(reviewer)) % 3], reviewer, request_id=f"{reviewer}-{i}")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)


@pytest.mark.parametrize("same_stations", [False, True], ids=["different-stations", "same-stations"])
def test_two_threads_200_writes_each_lose_nothing(data_dir, same_stations):
    store = ReviewStore(data_dir)
    a_st = STATIONS[:4]
    b_st = STATIONS[:4] if same_stations else STATIONS[4:]
    errors: list = []
    threads = [threading.Thread(target=_hammer, args=(store, "thread-a", 200, a_st, errors)),
               threading.Thread(target=_hammer, args=(ReviewStore(data_dir), "thread-b", 200, b_st, errors))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    audit = store.audit(EVENT)
    assert len(audit) == 400
    assert sorted(audit["request_id"]) == sorted([f"thread-a-{i}" for i in range(200)]
                                                 + [f"thread-b-{i}" for i in range(200)])
    _check_chain(store)


def _check_chain(store):
    """Per station, every audit row's old value is the previous row's new value (no lost
    update) and the final pick equals the last audited value."""
    audit = store.audit(EVENT)
    picks = store.picks(EVENT).set_index(["network", "station"])
    for (net, sta), rows in audit.groupby(["network", "station"]):
        prev = None
        for old, new in zip(rows["old_polarity"], rows["new_polarity"]):
            old = None if pd.isna(old) else int(old)
            assert old == prev
            prev = None if pd.isna(new) else int(new)
        assert int(picks.loc[(net, sta), "polarity"]) == prev


def _process_writer(path: str, reviewer: str, n: int):
    store = ReviewStore(path=path, validator=FakeValidator())
    errors: list = []
    _hammer(store, reviewer, n, STATIONS[:3], errors)
    if errors:
        raise SystemExit(f"{len(errors)} errors: {errors[0]!r}")


def test_two_processes_same_stations_lose_nothing(tmp_path):
    path = tmp_path / "reviews.sqlite"
    ReviewStore(path=path, validator=FakeValidator())
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_process_writer, args=(str(path), name, 100)) for name in ("proc-a", "proc-b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    store = ReviewStore(path=path, validator=FakeValidator())
    assert len(store.audit(EVENT)) == 200
    _check_chain(store)


def test_manual_polarities_and_apply_reviews(store, data_dir, tmp_path):
    assert manual_polarities(tmp_path / "nowhere").empty
    assert not (tmp_path / "nowhere" / DB_NAME).exists()  # reading never creates the database
    store.set_pick(EVENT, "5B", "1107", -1, "alice")
    store.set_pick(EVENT, "5B", "1108", 0, "alice")
    store.set_pick(EVENT, "5B", "1109", 1, "alice")
    man = manual_polarities(data_dir)
    assert man[["event_id", "network", "station", "method", "polarity"]].values.tolist() == [
        [EVENT, "5B", "1107", "manual", -1], [EVENT, "5B", "1108", "manual", 0], [EVENT, "5B", "1109", "manual", 1]]
    assert str(man["polarity"].dtype) == "int8" and (man["p_source"] == "review").all()

    batch = pd.DataFrame({
        "event_id": EVENT, "network": "5B",
        "station": ["1107", "1107", "1108", "1108", "1109", "1110", "1110"],
        "method": ["manual", "cnn", "manual", "cnn", "cnn", "manual", "cnn"],
        "polarity": [1, 1, 1, 1, -1, -1, 1], "snr": [None, 5.0, None, 5.0, 5.0, None, 5.0],
        "prob_down_recorded": float("nan"), "p_source": None})
    merged = apply_reviews(batch, data_dir)
    man_rows = merged[merged["method"] == "manual"].set_index("station")["polarity"].to_dict()
    assert man_rows == {"1107": -1, "1108": 0, "1109": 1, "1110": -1}  # review wins; 1110 kept from the batch
    assert len(merged[merged["method"] == "cnn"]) == 4

    from pipeline.mechanisms.invert import select_polarities
    chosen = select_polarities(merged, "auto").set_index("station")
    assert chosen["polarity"].to_dict() == {"1107": -1, "1109": 1, "1110": -1}  # reviewed 0 drops 1108
    assert chosen.loc["1109", "method"] == "manual"


def test_jobs_dedupe_and_reinversions(store):
    j1, created1 = store.create_job(EVENT, "alice")
    j2, created2 = store.create_job(EVENT, "bob")
    assert created1 and not created2 and j1 == j2
    store.update_job(j1, "running")
    assert store.active_job(EVENT)["status"] == "running"
    rid = store.add_reinversion({"event_id": EVENT, "strike": 1.0, "dip": 2.0, "rake": 3.0,
                                 "kagan_to_previous": float("nan")})
    store.update_job(j1, "done", "solved", reinversion_id=rid)
    job = store.job(j1)
    assert (job["status"], job["reinversion_id"]) == ("done", rid)
    assert store.active_job(EVENT) is None
    assert store.reinversion(rid)["kagan_to_previous"] is None
    j3, created3 = store.create_job(EVENT, "bob")
    assert created3 and j3 != j1
    with pytest.raises(ReviewError):
        store.create_job("nope", "bob")
    with pytest.raises(ReviewError):
        store.add_reinversion({"event_id": "20990101000000.000"})


def test_undo_restores_the_previous_pick_audited_and_refuses_a_superseded_change(store):
    """Admin undo (issue 10): back to the change's old value, as a new audited change; a change
    overwritten since is refused until the later one is undone; undoing twice changes nothing."""
    first = store.set_pick(EVENT, "5B", "1107", -1, "alice")
    second = store.set_pick(EVENT, "5B", "1107", 1, "bob")
    with pytest.raises(ReviewError, match="undo the later change first"):
        store.undo(first.audit_id, "ada")
    u = store.undo(second.audit_id, "ada")
    assert (u.old, u.new, u.changed, u.reviewer) == (1, -1, True, "ada")
    assert store.picks(EVENT)[["polarity", "reviewer"]].values.tolist() == [[-1, "ada"]]
    again = store.undo(second.audit_id, "ada")
    assert not again.changed and len(store.audit()) == 3
    rids = store.audit()["request_id"]
    assert rids.iloc[:2].isna().all() and rids.iloc[2] == f"undo:{second.audit_id}"
    store.undo(first.audit_id, "ada")  # the first pick had no reviewed pick before: cleared
    assert store.picks(EVENT).empty
    for bad in (10_000, "1", True, None):
        with pytest.raises(ReviewError):
            store.undo(bad, "ada")
