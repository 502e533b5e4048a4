"""Memory bounds of the data provider (issue 10: at most 200 MB extra per request at
1,000,000 events), checked by what bounds it, not by timing or RSS: the DuckDB databases run
with their configured memory limits and private spill folders, a CSV export whose ORDER BY
needs more than its pool spills and still writes the same bytes (also two at once), and a
``keep`` read streams batches yet returns exactly the filtered frame. The RSS numbers are
measured by ``bench/bench_pages.py --fresh``."""
from __future__ import annotations

import io
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from components import data as data_mod
from components.data import DataProvider
from components.filters import Filters

ROOT = Path(__file__).resolve().parents[1]
#: a catalogue whose events export (34 MB of CSV) needs more than SMALL_POOL to sort
N_EVENTS = 200_000
SMALL_POOL = "40MB"


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_map import synthetic_dir

    return synthetic_dir(N_EVENTS, seed=3, out=tmp_path_factory.mktemp("bigcat") / "data")


def _setting(cur, name: str) -> str:
    return cur.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def _duckdb_reports(memory_limit: str) -> str:
    """What a plain DuckDB connection configured with ``memory_limit`` reports for it."""
    with duckdb.connect(":memory:", config={"memory_limit": memory_limit}) as c:
        return _setting(c, "memory_limit")


def test_both_databases_run_with_their_limits_and_own_spill_folders(demo_data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FM_DUCKDB_TEMP", str(tmp_path))
    monkeypatch.delenv("FM_DUCKDB_MEMORY", raising=False)
    monkeypatch.delenv("FM_DUCKDB_EXPORT_MEMORY", raising=False)
    for kwargs, pages, export in (({}, data_mod.MEMORY_LIMIT, data_mod.EXPORT_MEMORY_LIMIT),
                                  ({"memory_limit": "200MB", "export_memory_limit": "50MB"}, "200MB", "50MB")):
        p = DataProvider(demo_data_dir, **kwargs)
        try:
            with p.cursor() as cur, p.export_cursor() as exp:
                assert _setting(cur, "memory_limit") == _duckdb_reports(pages)
                assert _setting(exp, "memory_limit") == _duckdb_reports(export)
                assert int(_setting(exp, "threads")) == 1
                folders = {Path(_setting(c, "temp_directory")) for c in (cur, exp)}
                assert len(folders) == 2 and all(f.parent == tmp_path for f in folders)
                # the sandbox holds on the export database too
                with pytest.raises(Exception, match="(?i)permission|disabled|not allowed"):
                    exp.execute("SELECT * FROM read_csv(?)", ["/etc/passwd"])
        finally:
            p.close()
    assert _duckdb_reports(data_mod.EXPORT_MEMORY_LIMIT) != _duckdb_reports(data_mod.MEMORY_LIMIT)


def test_export_larger_than_its_pool_spills_and_writes_the_same_bytes(big_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("FM_DUCKDB_TEMP", str(tmp_path))
    small = DataProvider(big_dir, export_memory_limit=SMALL_POOL)
    roomy = DataProvider(big_dir, export_memory_limit="4GB")
    try:
        for table in ("events", "mechanisms"):
            f = Filters.from_query("mech=all").replace(table=table)
            want = b"".join(roomy.iter_csv(table, f))
            chunks = small.iter_csv(table, f)
            first = next(chunks)  # the sort is done when the first batch comes: it spilled
            if table == "events":
                assert list(tmp_path.glob("fm-duckdb-*/*")), "the events export did not spill"
            assert first + b"".join(chunks) == want
            assert want.count(b"\n") == 1 + (N_EVENTS if table == "events"
                                              else roomy.matched_mechanisms(f))
        # two at once in the small pool: the second waits for the first (together they would
        # run out of memory), both complete with the same bytes
        f = Filters.from_query("mech=all").replace(table="events")
        want = b"".join(roomy.iter_csv("events", f))
        with ThreadPoolExecutor(2) as pool:
            got = list(pool.map(lambda _: b"".join(small.iter_csv("events", f)), range(2)))
        assert got == [want, want]
    finally:
        small.close()
        roomy.close()
    assert not list(tmp_path.glob("fm-duckdb-*/*")), "spill files left after close"


def test_keep_streams_batches_and_returns_exactly_the_filtered_frame(big_dir):
    p = DataProvider(big_dir)
    try:
        f = Filters(population="all")
        cluster = next(c for c in p.filter_options()["clusters"] if c != "(none)")
        full = p.mechanisms_per_event(f, cluster)
        seen = []
        lock = threading.Lock()

        def low_dip(df: pd.DataFrame) -> np.ndarray:
            with lock:
                seen.append(len(df))
            return (df["dip"] < 60).to_numpy()

        got = p.mechanisms_per_event(f, cluster, keep=low_dip, batch_rows=2048)
        want = full[(full["dip"] < 60).to_numpy()]
        assert 0 < len(want) < len(full)
        pd.testing.assert_frame_equal(got, want)
        assert got.attrs["matched"] == full.attrs["matched"]
        # the rows came in batches, never all at once
        assert len(seen) > 1 and max(seen) <= 2048 and sum(seen) == len(full)
        # nothing kept: the columns and dtypes of the full read, no rows
        none = p.mechanisms_per_event(f, cluster, keep=lambda df: np.zeros(len(df), bool))
        assert len(none) == 0 and list(none.columns) == list(full.columns)
        with pytest.raises(ValueError, match="one per row"):
            p.mechanisms_per_event(f, cluster, keep=lambda df: np.ones(3, bool))
    finally:
        p.close()


def test_export_past_its_memory_answers_503_naming_the_setting(demo_data_dir, monkeypatch):
    """An export whose sort cannot fit the export pool (a 1 MB pool on the demo's events) is
    refused with 503 and the setting to raise, not a bare 500 or a truncated file; the same
    request with the default pool downloads every filtered row."""
    from app import create_app

    monkeypatch.setenv("FM_DUCKDB_EXPORT_MEMORY", "1MB")
    small = create_app(demo_data_dir).server.test_client()
    r = small.get("/download/events.csv")
    assert r.status_code == 503, r.status_code
    text = r.get_data(as_text=True)
    assert "FM_DUCKDB_EXPORT_MEMORY=1MB" in text and "python -m pipeline export" in text
    assert r.headers.get("Content-Disposition") is None

    monkeypatch.delenv("FM_DUCKDB_EXPORT_MEMORY")
    r = create_app(demo_data_dir).server.test_client().get("/download/events.csv")
    assert r.status_code == 200
    got = pd.read_csv(io.BytesIO(r.get_data()))
    want = DataProvider(demo_data_dir).counts(Filters()).iloc[0]["events"]
    assert len(got) == int(want)
