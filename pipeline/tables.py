"""Validated, atomic reading and writing of the Parquet tables of the data contract.

A build collects every table in memory, validates each against :mod:`pipeline.schema`,
writes them all into a staging folder inside the data directory and only then renames
them into place. A build that fails at any point before the renames leaves the previous
tables untouched; each rename is atomic, so no reader ever sees half a file.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import schema


class SchemaError(ValueError):
    """A table does not satisfy the data contract."""


def table_path(data_dir: str | os.PathLike, name: str) -> Path:
    return Path(data_dir) / f"{name}.parquet"


def to_arrow(name: str, df: pd.DataFrame) -> pa.Table:
    """Check ``df`` against the schema of table ``name`` and convert it to Arrow.

    Contract columns come first in schema order, cast to their declared types; a nullable
    column the source does not provide is stored as all-null (e.g. SKHASH metrics of
    published mechanisms). Extra columns follow as pandas/Arrow infers them. Raises
    :class:`SchemaError` naming the table and column on a missing non-null column, a
    failed cast or a null in a non-null column.
    """
    spec = schema.table(name)
    missing = [c.name for c in spec.columns if c.name not in df.columns and not c.nullable]
    if missing:
        raise SchemaError(f"table {name!r}: missing columns {missing}")
    arrays, fields = [], []
    for col in spec.columns:
        if col.name not in df.columns:
            arrays.append(pa.nulls(len(df), type=col.type))
            fields.append(pa.field(col.name, col.type, nullable=True))
            continue
        series = df[col.name]
        try:
            if pa.types.is_timestamp(col.type):
                series = pd.to_datetime(series, utc=True)
            arr = pa.array(series, type=col.type, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError, TypeError) as exc:
            raise SchemaError(f"table {name!r}, column {col.name!r}: cannot store as {col.type}: {exc}") from exc
        if not col.nullable and arr.null_count:
            raise SchemaError(f"table {name!r}, column {col.name!r}: {arr.null_count} null values in a required column")
        arrays.append(arr)
        fields.append(pa.field(col.name, col.type, nullable=col.nullable))
    for extra in (c for c in df.columns if c not in spec.column_names):
        arr = pa.array(df[extra], from_pandas=True)
        arrays.append(arr)
        fields.append(pa.field(str(extra), arr.type))
    if spec.key:
        dup = df.duplicated(list(spec.key), keep=False)
        if dup.any():
            first = df.loc[dup, list(spec.key)].head(3).to_dict("records")
            raise SchemaError(f"table {name!r}: duplicate keys {spec.key}, e.g. {first}")
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields, metadata={b"schema_version": str(schema.SCHEMA_VERSION).encode()}))


def write_tables(data_dir: str | os.PathLike, tables: dict[str, pd.DataFrame | pa.Table],
                 info: dict | None = None) -> list[Path]:
    """Validate and write ``tables`` into ``data_dir`` all-or-nothing.

    Tables named in :data:`pipeline.schema.TABLES` are validated; other names (e.g.
    ``truth_mechanisms``) are written as given. ``info`` is written to
    ``build_info.json``. Returns the written paths.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    converted: dict[str, pa.Table] = {}
    for name, tbl in tables.items():
        if name in schema.TABLES:
            df = tbl.to_pandas() if isinstance(tbl, pa.Table) else tbl
            converted[name] = to_arrow(name, df)
        else:
            converted[name] = tbl if isinstance(tbl, pa.Table) else pa.Table.from_pandas(tbl, preserve_index=False)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=data_dir))
    try:
        for name, tbl in converted.items():
            pq.write_table(tbl, staging / f"{name}.parquet", compression="zstd")
        if info is not None:
            (staging / "build_info.json").write_text(json.dumps(info, indent=2, default=str))
        written = []
        for f in sorted(staging.iterdir()):
            os.replace(f, data_dir / f.name)
            written.append(data_dir / f.name)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_table(data_dir: str | os.PathLike, name: str, tbl: pd.DataFrame | pa.Table) -> Path:
    """Atomically write (replace) one table."""
    return write_tables(data_dir, {name: tbl})[0]


def read_table(data_dir: str | os.PathLike, name: str) -> pd.DataFrame:
    """Read one table into pandas (batch side only; the app goes through DuckDB)."""
    path = table_path(data_dir, name)
    if not path.exists():
        raise FileNotFoundError(f"table {name!r} not found: {path} (run `python -m pipeline build`)")
    return pq.read_table(path).to_pandas()


def has_tables(data_dir: str | os.PathLike) -> bool:
    """True when every required table exists in ``data_dir``."""
    return all(table_path(data_dir, n).exists() for n in schema.REQUIRED_TABLES)
