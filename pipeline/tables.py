"""Validated, atomic reading and writing of the Parquet tables of the data contract.

Tables are validated against :mod:`pipeline.schema` and written as a new version of the
data folder (:mod:`pipeline.store`): a complete folder that becomes visible through one
atomic switch of the ``current`` link. A write that fails at any point leaves what readers
see untouched, and no reader ever sees a mix of two versions. A table is one
``<table>.parquet`` or, for the streamed stages, a folder of parts ``<table>/part-*.parquet``
(:func:`table_source` gives DuckDB the glob).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from . import schema, store


class SchemaError(ValueError):
    """A table does not satisfy the data contract."""


def table_path(data_dir: str | os.PathLike, name: str) -> Path:
    """Where table ``name`` of the current version is: ``<version>/<name>.parquet``, or the
    folder ``<version>/<name>`` of its parts. Resolves ``current`` on every call: resolve
    once with :func:`pipeline.store.resolve` to read several tables of one version."""
    return store.table_location(store.resolve(data_dir), name)


def table_source(data_dir: str | os.PathLike, name: str) -> str:
    """What DuckDB's ``read_parquet`` takes for the table: the file, or ``<folder>/*.parquet``."""
    path = table_path(data_dir, name)
    return str(path / store.PART_GLOB) if path.is_dir() else str(path)


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


def convert(name: str, tbl: pd.DataFrame | pa.Table) -> pa.Table:
    """A contract table validated (:func:`to_arrow`); other names (``truth_*``) as given."""
    if name in schema.TABLES:
        return to_arrow(name, tbl.to_pandas() if isinstance(tbl, pa.Table) else tbl)
    return tbl if isinstance(tbl, pa.Table) else pa.Table.from_pandas(tbl, preserve_index=False)


#: rows per Parquet row group of the tables written here (DuckDB's own row-group size).
#: pyarrow's default (one group up to 1 Mi rows) made a 1,000,000-event table one group, so
#: that DuckDB read whole 45 MB column chunks at once (a CSV export then needed 64+ MB of
#: its buffer pool for the scan alone) and scanned it on one thread.
ROW_GROUP_ROWS = 122_880


def write_parquet(tbl: pa.Table, path: str | os.PathLike, row_group_size: int | None = None) -> None:
    """One Parquet file, zstd, row groups of ``row_group_size`` rows (default
    :data:`ROW_GROUP_ROWS`), written under a temporary name and renamed (never torn)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    pq.write_table(tbl, tmp, compression="zstd", row_group_size=row_group_size or ROW_GROUP_ROWS)
    os.replace(tmp, path)


def write_tables(data_dir: str | os.PathLike, tables: dict[str, pd.DataFrame | pa.Table],
                 info: dict | None = None, *, parts: dict[str, list[Path]] | None = None,
                 replace: bool = False) -> list[Path]:
    """Validate ``tables`` and publish them as a new version of ``data_dir``, all-or-nothing.

    Tables named in :data:`pipeline.schema.TABLES` are validated; other names (e.g.
    ``truth_mechanisms``) are written as given. ``parts``: tables already written as Parquet
    part files (streamed stages), linked in as ``<table>/part-*.parquet`` in the given
    order. ``replace=False`` keeps the current version's other tables (single-stage
    commands); ``replace=True`` (a build) publishes exactly these tables. ``info`` becomes
    ``build_info.json`` (kept from the current version otherwise). Returns the paths of the
    written tables in the new version.
    """
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    converted = {name: convert(name, tbl) for name, tbl in tables.items()}
    parts = parts or {}
    base = store.resolve(data_dir)
    with store.VersionWriter(data_dir) as w:
        for name, tbl in converted.items():
            pq.write_table(tbl, w.file(name), compression="zstd", row_group_size=ROW_GROUP_ROWS)
        for name, files in parts.items():
            w.add_parts(name, files)
        if not replace:
            w.inherit(base, skip=set(converted) | set(parts), flat=base == data_dir)
        if info is not None:
            w.write_info(info)
        elif (base / store.INFO).is_file():
            (w.staging / store.INFO).write_bytes((base / store.INFO).read_bytes())
        final = w.publish()
    return [store.table_location(final, n) for n in sorted({*converted, *parts})]


def write_table(data_dir: str | os.PathLike, name: str, tbl: pd.DataFrame | pa.Table) -> Path:
    """Atomically write (replace) one table."""
    return write_tables(data_dir, {name: tbl})[0]


def read_arrow(data_dir: str | os.PathLike, name: str, columns: list[str] | None = None,
               filters=None) -> pa.Table:
    """One table as Arrow (parts concatenated in order); ``filters`` as in pyarrow."""
    path = table_path(data_dir, name)
    files = store.part_files(path)
    if not path.exists():
        raise FileNotFoundError(f"table {name!r} not found: {path} (run `python -m pipeline build`)")
    if path.is_dir() and not files:
        raise FileNotFoundError(f"table {name!r}: no part files in {path}")
    tabs = [pq.read_table(f, columns=columns, filters=filters) for f in files]
    return pa.concat_tables(tabs, promote_options="default") if len(tabs) > 1 else tabs[0]


def read_table(data_dir: str | os.PathLike, name: str, columns: list[str] | None = None,
               filters=None) -> pd.DataFrame:
    """Read one table into pandas (batch side only; the app goes through DuckDB)."""
    return read_arrow(data_dir, name, columns, filters).to_pandas()


def has_tables(data_dir: str | os.PathLike) -> bool:
    """True when every required table exists in ``data_dir``."""
    base = store.resolve(data_dir)
    return all(store.table_location(base, n).exists() for n in schema.REQUIRED_TABLES)


def content_digest(data_dir: str | os.PathLike, names: list[str] | None = None) -> dict[str, str]:
    """SHA-256 of every table's content (values, column names and types; not file layout,
    compression, part boundaries or metadata), per table: two builds with equal digests
    hold the same tables. ``names``: default every table of the current version."""
    import hashlib

    import pyarrow.ipc as ipc
    base = store.resolve(data_dir)
    if names is None:
        names = sorted(p.name[:-8] if p.name.endswith(".parquet") else p.name for p in base.iterdir()
                       if not p.name.startswith(".") and p.name != store.INFO)
    out = {}
    for name in names:
        tbl = read_arrow(data_dir, name).replace_schema_metadata(None).combine_chunks()
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, tbl.schema) as w:
            w.write_table(tbl)
        out[name] = hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
    return out
