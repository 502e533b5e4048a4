"""Versioned data folders: atomic publish through ``current``, readers never see a mix."""
import os
import shutil
import threading

import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipeline import store, tables


def _wells(n: int) -> pd.DataFrame:
    return pd.DataFrame({"well": [f"W{n}"] * n, "vertex": range(n), "lat": 54.0, "lon": -117.0,
                         "x_km": 0.0, "y_km": 0.0})


def _stations(n: int) -> pd.DataFrame:
    return pd.DataFrame({"network": "5B", "station": [f"{i:04d}" for i in range(n)], "lat": 54.0, "lon": -117.0,
                         "x_km": 0.0, "y_km": 0.0, "reversed": True})


def test_publish_switches_current_and_keeps_the_last_versions(tmp_path):
    for n in range(1, 6):
        tables.write_tables(tmp_path, {"wells": _wells(n), "stations": _stations(n)}, {"n": n}, replace=True)
    assert len(store.versions(tmp_path)) == store.KEEP_VERSIONS
    assert os.readlink(tmp_path / "current") == f"versions/{store.versions(tmp_path)[-1]}"
    assert len(tables.read_table(tmp_path, "wells")) == 5
    # the convenience links resolve through current: old paths keep working
    assert len(tables.read_table(tmp_path, "wells")) == 5


def test_single_table_write_keeps_the_other_tables(tmp_path):
    tables.write_tables(tmp_path, {"wells": _wells(2), "stations": _stations(3)}, {"n": 1}, replace=True)
    tables.write_table(tmp_path, "wells", _wells(4))
    assert len(tables.read_table(tmp_path, "stations")) == 3 and len(tables.read_table(tmp_path, "wells")) == 4
    assert (store.resolve(tmp_path) / "build_info.json").is_file()  # carried over


def test_parts_are_read_in_order_and_by_duckdb_glob(tmp_path):
    import duckdb
    parts = []
    for i in range(3):
        p = tmp_path / f"p{i}.parquet"
        tables.write_parquet(tables.to_arrow("stations", _stations(i + 1).assign(station=lambda d, i=i: d.station + f"-{i}")), p)
        parts.append(p)
    tables.write_tables(tmp_path / "d", {}, parts={"stations": parts}, replace=True)
    got = tables.read_table(tmp_path / "d", "stations")
    assert got["station"].str[-1].tolist() == ["0", "1", "1", "2", "2", "2"]
    n = duckdb.connect().execute("SELECT count(*) FROM read_parquet(?)", [tables.table_source(tmp_path / "d", "stations")]).fetchone()[0]
    assert n == 6


def test_a_failed_write_changes_nothing_readers_see(tmp_path):
    tables.write_tables(tmp_path, {"wells": _wells(2)}, replace=True)
    before = (store.current_version(tmp_path), tables.content_digest(tmp_path))
    with pytest.raises(tables.SchemaError):
        tables.write_tables(tmp_path, {"wells": _wells(3), "stations": _stations(2).drop(columns="lat")}, replace=True)
    assert (store.current_version(tmp_path), tables.content_digest(tmp_path)) == before
    assert not list((tmp_path / store.VERSIONS).glob(".staging-*"))


def test_reader_sees_complete_old_or_complete_new_version_never_a_mix(tmp_path):
    """A writer publishes versions where every table has n rows; readers that resolve
    ``current`` once and read all tables of it always find one n."""
    tables.write_tables(tmp_path, {"wells": _wells(1), "stations": _stations(1)}, replace=True)
    stop, seen, errors = threading.Event(), set(), []
    published = [store.resolve(tmp_path).name]  # version names, oldest first

    def reader():
        while not stop.is_set():
            base = store.resolve(tmp_path)
            try:
                n_w = pq.read_metadata(store.table_location(base, "wells")).num_rows
                n_s = pq.read_metadata(store.table_location(base, "stations")).num_rows
            except FileNotFoundError as exc:
                # allowed only for a version the writer may prune: this (slow) reader held it
                # while KEEP_VERSIONS - 1 newer ones were published and the next was publishing
                newer = len(published) - 1 - published.index(base.name) if base.name in published else 0
                if newer < store.KEEP_VERSIONS - 1:
                    errors.append(f"vanished from a kept version: {exc}")
                continue
            if n_w != n_s:
                errors.append(f"mixed version: wells {n_w}, stations {n_s}")
            seen.add(n_w)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        for n in range(2, 40):
            tables.write_tables(tmp_path, {"wells": _wells(n), "stations": _stations(n)}, replace=True)
            published.append(store.resolve(tmp_path).name)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert len(seen) > 3  # the readers really ran across many versions


def test_a_copied_data_folder_stays_readable_and_writable(tmp_path):
    tables.write_tables(tmp_path / "a", {"wells": _wells(2), "stations": _stations(2)}, replace=True)
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # links become real files and folders
    assert len(tables.read_table(tmp_path / "b", "stations")) == 2
    tables.write_table(tmp_path / "b", "wells", _wells(5))
    assert os.path.islink(tmp_path / "b" / "current")
    assert len(tables.read_table(tmp_path / "b", "wells")) == 5 and len(tables.read_table(tmp_path / "b", "stations")) == 2


def test_flat_data_folder_of_older_builds_is_read_then_converted(tmp_path):
    tables.write_parquet(tables.to_arrow("wells", _wells(3)), tmp_path / "wells.parquet")
    assert store.resolve(tmp_path) == tmp_path and len(tables.read_table(tmp_path, "wells")) == 3
    tables.write_table(tmp_path, "stations", _stations(2))
    assert (tmp_path / "wells.parquet").is_symlink()
    assert len(tables.read_table(tmp_path, "wells")) == 3 and len(tables.read_table(tmp_path, "stations")) == 2


def test_content_digest_ignores_part_boundaries(tmp_path):
    one = tmp_path / "one.parquet"
    tables.write_parquet(tables.to_arrow("stations", _stations(4)), one)
    halves = []
    for i, sl in enumerate((slice(0, 2), slice(2, 4))):
        p = tmp_path / f"h{i}.parquet"
        tables.write_parquet(tables.to_arrow("stations", _stations(4).iloc[sl].reset_index(drop=True)), p)
        halves.append(p)
    tables.write_tables(tmp_path / "x", {}, parts={"stations": [one]}, replace=True)
    tables.write_tables(tmp_path / "y", {}, parts={"stations": halves}, replace=True)
    assert tables.content_digest(tmp_path / "x") == tables.content_digest(tmp_path / "y")
    tables.write_tables(tmp_path / "z", {"stations": _stations(5)}, replace=True)
    assert tables.content_digest(tmp_path / "z") != tables.content_digest(tmp_path / "x")
