"""The data contract: validation errors name table and column; writes are all-or-nothing."""
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import schema, tables


def _stations(n=3):
    return pd.DataFrame({
        "network": ["XX"] * n, "station": [f"{1100 + i}" for i in range(n)],
        "lat": 54.3, "lon": -117.2, "elevation_m": 0.0, "x_km": 0.0, "y_km": 0.0, "reversed": True,
    })


def test_all_digit_station_codes_stay_strings(tmp_path):
    tables.write_table(tmp_path, "stations", _stations())
    t = pq.read_table(tables.table_path(tmp_path, "stations"))
    assert t.schema.field("station").type == schema.STR
    assert t.column("station").to_pylist()[0] == "1100"


def test_missing_required_column_is_named():
    with pytest.raises(tables.SchemaError, match="stations.*reversed"):
        tables.to_arrow("stations", _stations().drop(columns="reversed"))


def test_null_in_required_column_is_named():
    df = _stations()
    df.loc[1, "lat"] = None
    with pytest.raises(tables.SchemaError, match="'lat'.*null"):
        tables.to_arrow("stations", df)


def test_bad_type_is_named():
    df = _stations()
    df["lat"] = ["54.3", "north", "54.2"]
    with pytest.raises(tables.SchemaError, match="'lat'"):
        tables.to_arrow("stations", df)


def test_duplicate_key_is_refused():
    df = pd.concat([_stations(2), _stations(1)])
    with pytest.raises(tables.SchemaError, match="duplicate keys"):
        tables.to_arrow("stations", df)


def test_extra_columns_are_kept_after_the_contract():
    df = _stations().assign(truth_gain=1.5)
    t = tables.to_arrow("stations", df)
    assert t.column_names[: len(schema.STATIONS.columns)] == schema.STATIONS.column_names
    assert "truth_gain" in t.column_names


def test_failed_write_leaves_previous_tables_intact(tmp_path):
    tables.write_tables(tmp_path, {"stations": _stations(3)})
    before = tables.table_path(tmp_path, "stations").read_bytes()
    with pytest.raises(tables.SchemaError):
        # the second table is invalid: nothing of this write may land
        tables.write_tables(tmp_path, {"stations": _stations(5), "wells": pd.DataFrame({"well": ["A"]})})
    assert tables.table_path(tmp_path, "stations").read_bytes() == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".staging")]
    assert not tables.table_path(tmp_path, "wells").exists()


def test_timestamps_are_utc(tmp_path):
    df = pd.DataFrame({"well": ["A"], "stage_no": [1], "time": ["2016-11-17 21:00"], "lat": 54.3, "lon": -117.2,
                       "x_km": 0.0, "y_km": 0.0, "day_index": 23.0})
    t = tables.to_arrow("stages", df)
    assert str(t.schema.field("time").type) == "timestamp[us, tz=UTC]"
    assert t.column("time")[0].as_py().isoformat() == "2016-11-17T21:00:00+00:00"


def test_absent_nullable_column_is_stored_as_null():
    t = tables.to_arrow("stations", _stations().drop(columns="elevation_m"))
    assert t.column("elevation_m").null_count == 3


def test_tables_are_written_in_bounded_row_groups(tmp_path, monkeypatch):
    # a 1,000,000-row table in one row group made DuckDB read 45 MB column chunks at once
    monkeypatch.setattr(tables, "ROW_GROUP_ROWS", 1000)
    df = pd.DataFrame({"i": range(2500), "s": [f"row {i}" for i in range(2500)]})
    tables.write_tables(tmp_path, {"truth_rows": df})
    tables.write_parquet(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "one.parquet")
    for path in (tables.table_path(tmp_path, "truth_rows"), tmp_path / "one.parquet"):
        meta = pq.ParquetFile(path).metadata
        assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    pd.testing.assert_frame_equal(tables.read_table(tmp_path, "truth_rows"), df)
