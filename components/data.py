"""Read access to the Parquet tables for the dashboard, through DuckDB.

One :class:`DataProvider` per app (``create_app`` makes it; callbacks get it with
:func:`get_provider`). It owns one in-process DuckDB connection, created lazily on first
use in each process (never at import, so a pre-forking WSGI server is safe) and never
shared between threads: every query runs on its own ``cursor()``.

The connection is read-only in practice: it is in-memory, may only read files under the
data directory (``allowed_directories`` + ``enable_external_access=false``, configuration
locked), runs with ``threads`` / ``memory_limit`` set and ``TimeZone='UTC'``. Every query
is parameterised: Parquet paths and filter values are bound with ``?``.

Memory: two in-memory DuckDB databases per process, each with its own buffer pool and a
private spill folder (``fm-duckdb-<pid>-<random>`` under ``FM_DUCKDB_TEMP`` or the system
temporary folder, made by DuckDB at its first spill and removed when it closes), so that a
sort, join or window that needs more than its pool spills instead of growing:

* the pages' queries: ``memory_limit`` (``FM_DUCKDB_MEMORY``, default :data:`MEMORY_LIMIT`),
  shared by every request of the process; their results are bounded by the caps
  (:mod:`queries.caps`). With 1 GB a fresh process's diffusion analysis of a 333,000-event
  cluster reached 221 MB extra; with 256 MB, 173 MB (``bench/bench_pages.py --fresh``).
* the CSV exports (:meth:`DataProvider.iter_csv`): ``export_memory_limit``
  (``FM_DUCKDB_EXPORT_MEMORY``, default :data:`EXPORT_MEMORY_LIMIT`), one thread, **one export
  at a time** per process (the next waits for it). Their ``ORDER BY`` over every column of
  every filtered row (1,000,000 events: ~170 MB of CSV) then spills past that pool instead
  of growing DuckDB's memory with the selection: a download costs at most ~160 MB extra
  (issue 10: 200 MB per request). One export at a time because two in one small pool run
  out of memory (DuckDB's sort needs a minimum it cannot spill), and two in a large one
  would double the memory.

Filtered rows
-------------
:meth:`DataProvider.filtered_sql` is the single definition of "the rows a
:class:`~components.filters.Filters` selects" from ``events`` or ``mechanisms``; the map,
the table, the counts and the CSV export all wrap it, so they can never disagree.

Which mechanisms count is the filters' *population* (``Filters.population``, URL key
``mech``; :mod:`components.filters` documents the choices), defined once in
:meth:`DataProvider.population_sql`: by default **one mechanism per event** (the published
quality-A one, else a computed quality-A one), so an event is never counted twice.

* ``events`` rows are the catalogue plus three columns taken from the event's mechanism in
  the population: ``group`` (``'none'`` when the event has none there), ``quality`` and
  ``mechanism_source`` (null then).
* ``mechanisms`` rows are the population's rows of the mechanisms table (every row only
  for the population ``all``).

What only one page reads lives in that page's module of :mod:`queries` (the map's table,
magnitudes, classification, strike-time, diffusion, model, event, composite), written
against this provider; the provider keeps what several pages share.

Missing tables raise :class:`MissingDataError`; :meth:`DataProvider.missing_tables` says
which (the page shows "run ``make run`` / ``python -m pipeline build``").
"""
from __future__ import annotations

import io
import math
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import schema
from pipeline.store import PART_GLOB
from pipeline.tables import table_path

from .filters import NONE, Filters, population_sql, where_clause

#: DuckDB memory limit of the pages' database (``FM_DUCKDB_MEMORY`` overrides it), shared by the
#: process's requests: with it every page callback at 1,000,000 events stays within issue 10's
#: 200 MB per request on a fresh process, and 20 users at once ran without an out-of-memory error
MEMORY_LIMIT = "256MB"
#: DuckDB memory limit of the CSV exports' database (``FM_DUCKDB_EXPORT_MEMORY`` overrides it):
#: with the Python side's batches a 1,000,000-event export stays within issue 10's 200 MB per
#: request (``bench/bench_pages.py --fresh``: 141-160 MB). DuckDB's sort needs a minimum: 48 MB
#: runs out of memory at 1,000,000 events, 64 MB is just enough; it grows slowly with the rows
EXPORT_MEMORY_LIMIT = "96MB"

#: default draw caps of the map
EVENT_CAP = 50_000
MECHANISM_CAP = 4_000

#: tables the map page needs
MAP_TABLES = ("events", "mechanisms", "stations", "wells", "stages", "frame")

#: mechanism columns the map draws (``DataProvider.mechanisms(columns=MAP_MECHANISM_COLUMNS)``)
MAP_MECHANISM_COLUMNS = ("event_id", "source", "time", "x_km", "y_km", "lon", "lat", "magnitude", "strike", "dip",
                         "rake", "group", "quality")


class MissingDataError(FileNotFoundError):
    """A table the dashboard needs is not in the data directory."""


def quote_identifier(name: str) -> str:
    """Quote an identifier from our own whitelists (never user input): letters, digits and
    ``_`` only, else ValueError."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"bad identifier {name!r}")
    return f'"{name}"'


class DataProvider:
    """DuckDB-backed, read-only access to ``<data_dir>/<table>.parquet``.

    Every method returning rows returns a new :class:`pandas.DataFrame` (the caller may
    modify it); times are timezone-aware UTC (``datetime64[us, Etc/UTC]``). Methods that depend on filters take a
    :class:`~components.filters.Filters`.

    Parameters
    ----------
    data_dir : folder holding the tables (need not exist yet).
    threads : DuckDB worker threads (default: 2, or ``FM_DUCKDB_THREADS``).
    memory_limit : DuckDB memory limit of the pages' queries (default :data:`MEMORY_LIMIT`, or
        ``FM_DUCKDB_MEMORY``); beyond it DuckDB spills.
    export_memory_limit : that of the CSV exports (default :data:`EXPORT_MEMORY_LIMIT`, or
        ``FM_DUCKDB_EXPORT_MEMORY``).
    caps : per-request bounds of the pages (:class:`queries.caps.Caps`; default its
        defaults with ``FM_CAP_*`` overrides). A plain attribute: a test may replace it.
    """

    def __init__(self, data_dir: str | os.PathLike, *, threads: int | None = None,
                 memory_limit: str | None = None, export_memory_limit: str | None = None, caps=None):
        from queries.caps import Caps

        self.data_dir = Path(data_dir).resolve()
        self.caps = caps if caps is not None else Caps.from_env()
        self.threads = int(threads or os.environ.get("FM_DUCKDB_THREADS", 2))
        self.memory_limit = str(memory_limit or os.environ.get("FM_DUCKDB_MEMORY", MEMORY_LIMIT))
        self.export_memory_limit = str(export_memory_limit
                                       or os.environ.get("FM_DUCKDB_EXPORT_MEMORY", EXPORT_MEMORY_LIMIT))
        self._conn = None
        self._export_conn = None
        self._pid: int | None = None
        self._export_pid: int | None = None
        self._lock = threading.Lock()
        self._export_lock = threading.Lock()  # one export at a time (replaced in a forked child)
        self._cache: dict = {}

    # -- connection -----------------------------------------------------------------------
    def _connect(self, memory_limit: str, threads: int):
        """A new in-memory DuckDB database with the sandbox settings (module docstring) and a
        spill folder of its own (two databases, or a forked worker's, must not share one)."""
        import duckdb  # imported lazily: nothing touches DuckDB at import

        temp = Path(os.environ.get("FM_DUCKDB_TEMP") or tempfile.gettempdir(),
                    f"fm-duckdb-{os.getpid()}-{secrets.token_hex(4)}")
        conn = duckdb.connect(":memory:", config={
            "threads": threads, "memory_limit": memory_limit, "temp_directory": str(temp)})
        conn.execute("SET TimeZone = 'UTC'")
        # tables in parts (waveforms of the whole archive: one part per chunk): keep
        # their footers between queries instead of re-reading every one per lookup
        conn.execute("SET parquet_metadata_cache = true")
        allowed = str(self.data_dir).replace("'", "''")  # our own path, quoted
        conn.execute(f"SET allowed_directories = ['{allowed}']")
        conn.execute("SET enable_external_access = false")
        conn.execute("SET lock_configuration = true")
        return conn

    def _connection(self):
        """The process's connection, created on first use (and again after a fork)."""
        pid = os.getpid()
        if self._conn is None or self._pid != pid:
            with self._lock:
                if self._conn is None or self._pid != pid:
                    self._conn, self._pid = self._connect(self.memory_limit, self.threads), pid
        return self._conn

    @contextmanager
    def export_cursor(self):
        """A cursor of the process's export database (small pool, one thread), held alone:
        a second caller waits until the first one's block ends (module docstring)."""
        pid = os.getpid()
        if self._export_conn is None or self._export_pid != pid:
            with self._lock:
                if self._export_conn is None or self._export_pid != pid:
                    if self._export_pid != pid:
                        self._export_lock = threading.Lock()  # a parent's lock may be held
                    self._export_conn = self._connect(self.export_memory_limit, 1)
                    self._export_pid = pid
        with self._export_lock:
            cur = self._export_conn.cursor()
            try:
                yield cur
            finally:
                cur.close()

    @contextmanager
    def cursor(self):
        """A fresh cursor of the process's connection, closed afterwards. Use one per
        request/thread; a cursor must not be shared between threads."""
        cur = self._connection().cursor()
        try:
            yield cur
        finally:
            cur.close()

    def query(self, sql: str, params: list | tuple = ()) -> pd.DataFrame:
        """Run one parameterised query on a new cursor; the result as a DataFrame."""
        with self.cursor() as cur:
            return cur.execute(sql, list(params)).df()

    def close(self) -> None:
        """Close the connection (a later query opens a new one)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            if self._export_conn is not None and self._export_pid == os.getpid():
                self._export_conn.close()
            self._conn = self._export_conn = None
            self._cache.clear()

    # -- files ----------------------------------------------------------------------------
    def path(self, table: str) -> Path:
        return table_path(self.data_dir, table)

    def has_table(self, table: str) -> bool:
        return self.path(table).exists()

    def missing_tables(self, tables=MAP_TABLES) -> list[str]:
        """Names of ``tables`` that are not in the data directory."""
        return [t for t in tables if not self.has_table(t)]

    @property
    def available(self) -> bool:
        """True when every table the map needs exists."""
        return not self.missing_tables()

    def parquet_source(self, table: str) -> str:
        """The table's ``read_parquet`` argument in the current version (a file or a glob of
        parts). Resolved per query: a build publishing meanwhile is seen at the next query."""
        p = self.path(table)   # resolves `current` once: file and glob of one version
        if not p.exists():
            raise MissingDataError(f"table {table!r} not found in {self.data_dir} "
                                   "(run `make run` or `python -m pipeline build`)")
        return str(p / PART_GLOB) if p.is_dir() else str(p)

    def _version(self, *tables: str):
        out = []
        for t in tables:
            p = self.path(t)
            try:
                st = p.stat()
                out.append((t, str(p), st.st_mtime_ns, st.st_size))
            except FileNotFoundError:
                out.append((t, None, None, None))
        return tuple(out)

    def _cached(self, key: str, tables: tuple[str, ...], build):
        version = self._version(*tables)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = build()
        self._cache[key] = (version, value)
        return value

    # -- the filtered relations --------------------------------------------------------
    def population_sql(self, filters: Filters, columns: str = "*", *, per_event: bool | None = None,
                       row_numbers: bool = False) -> tuple[str, list]:
        """``SELECT`` of the mechanism rows of ``filters``' population
        (:func:`components.filters.population_sql`: the candidates of its sources and
        quality classes, then one per event by its preference unless the population is
        ``all``), before the row filters. THE single definition of which mechanisms count:
        the ``events`` relation's mechanism columns and the ``mechanisms`` relation both
        use it. ``per_event`` overrides the population's (True: one per event even for
        ``all``); ``columns`` is SQL of ours; ``row_numbers`` reads ``file_row_number``
        (for ``columns``)."""
        where, params, order, pop_per_event = population_sql(filters)
        per_event = pop_per_event if per_event is None else per_event
        rn = ", file_row_number=true" if row_numbers else ""
        sql = f"SELECT {columns} FROM read_parquet(?{rn}) WHERE {where}"
        if per_event and not self._mechanisms_unique():  # unique event ids: nothing to rank (much cheaper)
            sql += f" QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY {order}) = 1"
        return sql, [self.parquet_source("mechanisms"), *params]

    def relation_sql(self, table: str, filters: Filters, *, row_numbers: bool = False,
                     mechanism_columns: bool = True, per_event: bool | None = None) -> tuple[str, list]:
        """``SELECT`` of all rows of ``table`` before the row filters, with the mechanism
        population (:meth:`population_sql`) applied: ``mechanisms`` are the population's
        rows; ``events`` are every catalogue row with ``group``, ``quality`` and
        ``mechanism_source`` of the event's mechanism in the population (``'none'``/null
        when it has none there; for ``all``, the event's preferred mechanism).

        ``row_numbers=True`` adds ``_row``, the row's position in its Parquet file (a cheap
        stable key). ``mechanism_columns=False`` (events only) leaves out the join with the
        mechanisms; only valid when the filters do not use ``group``/``quality``.
        ``per_event=True`` (mechanisms only) keeps one mechanism per event even for ``all``
        (each event's preferred one, the one the ``events`` relation shows)."""
        rn = ", file_row_number=true" if row_numbers else ""
        row_col = ", file_row_number AS _row" if row_numbers else ""
        if table == "events":
            if not mechanism_columns:
                if filters.groups or filters.qualities:
                    raise ValueError("group/quality filters need the mechanism columns")
                star = "* EXCLUDE (file_row_number)" if row_numbers else "*"
                return f"SELECT {star}{row_col} FROM read_parquet(?{rn})", [self.parquet_source("events")]
            star = "e.* EXCLUDE (file_row_number)" if row_numbers else "e.*"
            pop_sql, pop_params = self.population_sql(filters, 'event_id, "group", quality, source',
                                                      per_event=True)
            sql = (
                f"SELECT {star}{row_col.replace('file_row_number', 'e.file_row_number')}, "
                "COALESCE(m.\"group\", 'none') AS \"group\", m.quality AS quality, m.source AS mechanism_source "
                f"FROM read_parquet(?{rn}) AS e LEFT JOIN ({pop_sql}) AS m ON e.event_id = m.event_id"
            )
            return sql, [self.parquet_source("events"), *pop_params]
        if table == "mechanisms":
            star = "* EXCLUDE (file_row_number)" if row_numbers else "*"
            return self.population_sql(filters, f"{star}{row_col}", row_numbers=row_numbers, per_event=per_event)
        raise ValueError(f"unknown table {table!r}")

    def _mechanisms_unique(self) -> bool:
        """True when no event has two mechanisms (cached per version of the file)."""
        def build():
            return bool(self.query("SELECT count(*) = count(DISTINCT event_id) FROM read_parquet(?)",
                                   [self.parquet_source("mechanisms")]).iloc[0, 0])
        return self._cached("mechanisms_unique", ("mechanisms",), build)

    def filtered_sql(self, table: str, filters: Filters, columns: str = "*", **relation) -> tuple[str, list]:
        """THE definition of the filtered rows: ``SELECT <columns> FROM (relation) WHERE
        <where_clause(filters, table)>`` with its parameters. ``columns`` is SQL written
        by us (never user input); ``relation`` goes to :meth:`relation_sql`."""
        rel, rel_params = self.relation_sql(table, filters, **relation)
        where, where_params = where_clause(filters, table)
        return f"SELECT {columns} FROM ({rel}) AS r WHERE {where}", [*rel_params, *where_params]

    # -- counts ---------------------------------------------------------------------------
    def counts(self, filters: Filters) -> pd.DataFrame:
        """One row: ``events``, ``mechanisms`` = number of filtered rows (int)."""
        ev_sql, ev_p = self.filtered_sql("events", filters, "count(*)")
        me_sql, me_p = self.filtered_sql("mechanisms", filters, "count(*)")
        return self.query(f"SELECT ({ev_sql}) AS events, ({me_sql}) AS mechanisms", [*ev_p, *me_p])

    # -- map ------------------------------------------------------------------------------
    def events_for_map(self, filters: Filters, cap: int = EVENT_CAP) -> pd.DataFrame:
        """Filtered events to draw, at most ``cap`` rows.

        Columns: ``event_id, time, x_km, y_km, lon, lat, depth_km, magnitude, group``
        (``group`` is ``'none'`` for events without a mechanism), ordered by time (ties by
        row of the events file). When more than ``cap`` rows match, a deterministic
        pseudo-random sample of exactly ``cap`` of them is kept: the rows with the
        ``cap`` smallest ``hash(row of the events file)`` (uniform in time and space; the
        same filters always draw the same rows). ``df.attrs``: ``matched`` (rows matching
        the filters), ``drawn`` (rows returned), ``step`` (matched / drawn, rounded up;
        1 = all drawn), ``sampled`` (bool).

        Same rows as :meth:`filtered_sql`. For speed, the count and the sample threshold
        read only the columns the filters need (the events alone without a group/quality
        filter); the drawn rows are then read with a filter the Parquet scan applies.
        """
        cap = max(1, int(cap))
        cols = 'event_id, "time", x_km, y_km, lon, lat, depth_km, magnitude, "group"'
        lean = not (filters.groups or filters.qualities)
        key_sql, key_params = self.filtered_sql("events", filters, "hash(_row) AS h", row_numbers=True,
                                                mechanism_columns=not lean)
        full_sql, full_params = self.filtered_sql("events", filters, f"{cols}, _row", row_numbers=True)
        with self.cursor() as cur:
            matched, threshold = cur.execute(
                f"WITH k AS MATERIALIZED ({key_sql}) SELECT (SELECT count(*) FROM k),"
                " (SELECT max(h) FROM (SELECT h FROM k ORDER BY h LIMIT ?))", [*key_params, cap]).fetchone()
            matched = int(matched)
            if matched > cap:
                df = cur.execute(f"SELECT * FROM ({full_sql}) WHERE hash(_row) <= ? ORDER BY \"time\", _row",
                                 [*full_params, threshold]).df()
            else:
                df = cur.execute(f"SELECT * FROM ({full_sql}) ORDER BY \"time\", _row", full_params).df()
        df = df.drop(columns="_row")
        df.attrs.update(matched=matched, drawn=len(df), step=max(1, math.ceil(matched / max(len(df), 1))),
                        sampled=matched > len(df))
        return df

    def mechanisms(self, filters: Filters, cap: int | None = MECHANISM_CAP,
                   columns: tuple[str, ...] | None = None) -> pd.DataFrame:
        """Filtered mechanisms: ``columns`` of the table (default all; names must be
        columns of the contract). With ``cap``, only the ``cap`` largest magnitudes (ties by
        event id, source). Ordered by magnitude, largest first. ``df.attrs``: ``matched``,
        ``drawn``."""
        if columns is None:
            cols = "*"
        else:
            known = set(table_columns("mechanisms"))
            bad = [c for c in columns if c not in known]
            if bad:
                raise ValueError(f"unknown mechanism columns {bad}")
            cols = ", ".join(quote_identifier(c) for c in columns)
        sql, params = self.filtered_sql("mechanisms", filters, f"{cols}, count(*) OVER () AS _n")
        order = "ORDER BY magnitude DESC NULLS LAST, event_id, source"
        with self.cursor() as cur:
            if cap is None:
                df = cur.execute(f"{sql} {order}", params).df()
            else:
                df = cur.execute(f"{sql} {order} LIMIT ?", [*params, max(0, int(cap))]).df()
            if len(df) or cap != 0:
                matched = int(df["_n"].iloc[0]) if len(df) else 0
            else:
                matched = int(cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0])
        df = df.drop(columns="_n")
        df.attrs.update(matched=matched, drawn=len(df))
        return df

    def mechanism_rows(self, event_id: str) -> pd.DataFrame:
        """Every mechanism of ``event_id`` (all columns, no filters), published first;
        empty when unknown."""
        return self.query("SELECT * FROM read_parquet(?) WHERE event_id = ?"
                          " ORDER BY (source = 'published') DESC, source",
                          [self.parquet_source("mechanisms"), str(event_id)])

    # -- small tables ---------------------------------------------------------------------
    def _small(self, table: str, order: str) -> pd.DataFrame:
        def build():
            return self.query(f"SELECT * FROM read_parquet(?) ORDER BY {order}", [self.parquet_source(table)])
        return self._cached(table, (table,), build).copy()

    def stations(self) -> pd.DataFrame:
        """All stations (schema ``stations``), ordered by network, station."""
        return self._small("stations", "network, station")

    def wells(self) -> pd.DataFrame:
        """Well paths (schema ``wells``), one row per vertex, ordered by well, vertex."""
        return self._small("wells", "well, vertex")

    def stages(self) -> pd.DataFrame:
        """Stages (schema ``stages``), ordered by well, stage number."""
        return self._small("stages", "well, stage_no")

    def injection(self) -> pd.DataFrame:
        """Daily injection rows (schema ``injection``: ``date, rate_m3_min, volume_m3, well``
        ...), ordered by date, then as stored (``source_row``)."""
        return self._small("injection", "date, source_row NULLS LAST")

    def frame(self) -> pd.DataFrame:
        """The one-row local frame (``origin_lat, origin_lon, method, dataset``)."""
        return self._small("frame", "origin_lat")

    def dataset_name(self) -> str:
        """The ``frame`` table's ``dataset`` as written by the build (``demo``, ``toc2me``, a
        project's ``name``); ``""`` when there is none (no build yet)."""
        try:
            f = self.frame()
            return str(f["dataset"].iloc[0]) if "dataset" in f and len(f) and pd.notna(f["dataset"].iloc[0]) else ""
        except (MissingDataError, KeyError):
            return ""

    def file_prefix(self) -> str:
        """Prefix of download and figure-image file names: :meth:`dataset_name` in lower case,
        other characters than ``a-z0-9_-`` as ``_``, at most 40; ``fm`` when there is none."""
        return re.sub(r"[^a-z0-9_-]+", "_", self.dataset_name().lower()).strip("_")[:40] or "fm"

    def origin(self) -> tuple[float, float]:
        """(lat, lon) origin of ``x_km``/``y_km``."""
        f = self.frame()
        return float(f["origin_lat"].iloc[0]), float(f["origin_lon"].iloc[0])

    def filter_options(self) -> dict:
        """Choices and ranges for the filter controls (cached until the tables change):

        ``clusters``, ``groups``, ``qualities``, ``sources`` (sorted lists of strings;
        :data:`~components.filters.NONE` is included where nulls occur / events without a
        mechanism exist), ``time_min``, ``time_max`` (UTC Timestamps or None),
        ``mag_min``, ``mag_max`` (floats or None) over the events, ``n_events``,
        ``n_mechanisms``.
        """
        def build():
            with self.cursor() as cur:
                ev, me = self.parquet_source("events"), self.parquet_source("mechanisms")
                row = cur.execute(
                    "SELECT min(\"time\"), max(\"time\"), min(magnitude), max(magnitude), count(*),"
                    " count(*) FILTER (WHERE cluster IS NULL) FROM read_parquet(?)", [ev]).fetchone()
                clusters = [r[0] for r in cur.execute(
                    "SELECT DISTINCT cluster FROM read_parquet(?) WHERE cluster IS NOT NULL ORDER BY 1",
                    [ev]).fetchall()]
                mrow = cur.execute(
                    "SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE quality IS NULL)"
                    " FROM read_parquet(?)", [me]).fetchone()
                groups = [r[0] for r in cur.execute(
                    "SELECT DISTINCT \"group\" FROM read_parquet(?) ORDER BY 1", [me]).fetchall()]
                qualities = [r[0] for r in cur.execute(
                    "SELECT DISTINCT quality FROM read_parquet(?) WHERE quality IS NOT NULL ORDER BY 1",
                    [me]).fetchall()]
                sources = [r[0] for r in cur.execute(
                    "SELECT DISTINCT source FROM read_parquet(?) ORDER BY 1", [me]).fetchall()]
            t0, t1, m0, m1, n_events, n_null_cluster = row
            if n_null_cluster:
                clusters.append(NONE)
            if n_events > mrow[1]:
                groups.append(NONE)
            if mrow[2] or n_events > mrow[1]:
                qualities.append(NONE)
            return {
                "clusters": clusters, "groups": groups, "qualities": qualities, "sources": sources,
                "time_min": pd.Timestamp(t0) if t0 is not None else None,
                "time_max": pd.Timestamp(t1) if t1 is not None else None,
                "mag_min": float(m0) if m0 is not None else None,
                "mag_max": float(m1) if m1 is not None else None,
                "n_events": int(n_events), "n_mechanisms": int(mrow[0]),
            }
        return dict(self._cached("filter_options", ("events", "mechanisms"), build))

    # -- export ---------------------------------------------------------------------------
    def export_sql(self, table: str, filters: Filters) -> tuple[str, list]:
        """The CSV export query of ``table`` (``events`` or ``mechanisms``): every column of
        the filtered rows, ordered by time, event id (and source)."""
        sql, params = self.filtered_sql(table, filters)
        order = '"time", event_id' + (", source" if table == "mechanisms" else "")
        return f"{sql} ORDER BY {order}", params

    def export_frame(self, table: str, filters: Filters) -> pd.DataFrame:
        """The rows :meth:`iter_csv` writes, as a DataFrame."""
        return self.query(*self.export_sql(table, filters))

    def iter_csv(self, table: str, filters: Filters, batch_rows: int = 50_000,
                 transform: Callable | None = None) -> Iterator[bytes]:
        """Stream the export as CSV (UTF-8, header first, times ISO 8601 UTC
        ``YYYY-MM-DDThh:mm:ss.ffffffZ``), batch by
        batch from DuckDB's export database (module docstring: its sort spills past
        ``export_memory_limit``); memory stays bounded by that and ``batch_rows``. The cursor
        is opened when iteration starts, in the iterating thread, and held, alone, until the
        iteration ends or the generator is closed: another export waits meanwhile. ``transform``: a function of one
        ``pyarrow.RecordBatch`` returning the batch to write (same columns for every batch,
        e.g. :func:`components.classified_csv.regroup_batch`); it also gets the empty batch
        whose header a selection without rows writes."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv

        def iso(batch):
            cols = [pc.strftime(c, format="%Y-%m-%dT%H:%M:%SZ") if pa.types.is_timestamp(c.type) else c
                    for c in batch.columns]
            return pa.RecordBatch.from_arrays(cols, names=batch.schema.names)

        keep = transform or (lambda batch: batch)
        sql, params = self.export_sql(table, filters)
        with self.export_cursor() as cur:  # the export database: its ORDER BY spills, one at a time
            reader = cur.sql(sql, params=params).to_arrow_reader(batch_rows)
            header = True
            for batch in reader:
                buf = io.BytesIO()
                pacsv.write_csv(iso(keep(batch)), buf, pacsv.WriteOptions(include_header=header))
                header = False
                yield buf.getvalue()
            if header:  # no rows: still write the header
                buf = io.BytesIO()
                pacsv.write_csv(keep(pa.RecordBatch.from_pylist([], schema=reader.schema)), buf)
                yield buf.getvalue()

    # -- magnitudes page ------------------------------------------------------------------
    # -- strike-time and diffusion pages -----------------------------------------------
    def mechanisms_per_event(self, filters: Filters, cluster: str | None = None,
                             keep: Callable[[pd.DataFrame], object] | None = None,
                             batch_rows: int = 16_384) -> pd.DataFrame:
        """Filtered mechanisms, **one per event**: the population's rows (one per event
        already, except for ``all``: then each event's preferred mechanism, the one the
        ``events`` relation shows, chosen before the row filters), optionally only those
        whose ``cluster`` is ``cluster``; all columns, ordered by time, event id.
        ``df.attrs['matched']``: the filtered mechanism rows of the population (every row
        for ``all``) before the cluster restriction (:meth:`matched_mechanisms`).

        ``keep``: a row-wise filter (a function of a frame of these rows returning one bool
        per row, where a row's answer depends on that row only, e.g. a diffusion subset's
        mask). The result is then exactly ``df[keep(df)]`` of the full result, index (the
        rows' positions in it) included, but the rows are read in batches of ``batch_rows``
        and only the kept ones are held and converted: a few selected rows of 116,518 never
        cost the frame of all of them (issue 10's 200 MB per request)."""
        sql, params = self.filtered_sql("mechanisms", filters, per_event=True)
        where, extra = ("WHERE cluster = ?", [str(cluster)]) if cluster is not None else ("", [])
        ordered = f'SELECT * FROM ({sql}) {where} ORDER BY "time", event_id'
        df = (self.query(ordered, [*params, *extra]) if keep is None
              else self._kept_rows(ordered, [*params, *extra], keep, batch_rows))
        df.attrs["matched"] = self.matched_mechanisms(filters)
        return df

    def matched_mechanisms(self, filters: Filters) -> int:
        """The filtered mechanism rows of ``filters``' population (every row for ``all``)."""
        sql, params = self.filtered_sql("mechanisms", filters, "count(*)")
        return int(self.query(sql, params).iloc[0, 0])

    def _kept_rows(self, sql: str, params: list, keep: Callable, batch_rows: int) -> pd.DataFrame:
        """``df[keep(df)]`` of ``self.query(sql, params)`` (index included), streamed: the
        result is read in Arrow batches, ``keep`` sees each batch as the frame DuckDB makes of
        it, only the kept rows of each batch are collected, and DuckDB makes the one frame of
        them at the end, so its columns and dtypes are those ``query`` gives for these rows."""
        import pyarrow as pa

        kept, index, start = [], [], 0
        with self.cursor() as cur, self.cursor() as conv:
            reader = cur.sql(sql, params=params).to_arrow_reader(batch_rows)
            for batch in reader:
                mask = np.asarray(keep(conv.from_arrow(batch).df()), dtype=bool)
                if mask.shape != (batch.num_rows,):
                    raise ValueError(f"keep returned {mask.shape[0] if mask.ndim else 'a scalar'} values "
                                     f"for {batch.num_rows} rows (one per row expected)")
                if mask.any():
                    kept.append(batch.filter(pa.array(mask)))
                    index.append(start + np.flatnonzero(mask))
                start += batch.num_rows
            table = pa.Table.from_batches(kept, schema=reader.schema)
            df = conv.from_arrow(table).df()
        df.index = pd.Index(np.concatenate(index) if index else np.array([], dtype=np.int64))
        return df

    def cluster_events(self, filters: Filters, cluster: str | None) -> pd.DataFrame:
        """Filtered events of ``cluster`` (None: every filtered event): ``event_id, time,
        lat, lon, depth_km, x_km, y_km, magnitude, cluster, group`` (``group`` of the
        event's mechanism, ``'none'`` without), ordered by time, event id. Same rows as
        :meth:`filtered_sql` on ``events`` with ``cluster = ?`` added."""
        cols = 'event_id, "time", lat, lon, depth_km, x_km, y_km, magnitude, cluster, "group"'
        sql, params = self.filtered_sql("events", filters, cols)
        where, extra = ("WHERE cluster = ?", [str(cluster)]) if cluster is not None else ("", [])
        return self.query(f'SELECT * FROM ({sql}) {where} ORDER BY "time", event_id', [*params, *extra])

    def event_by_id(self, event_id: str) -> pd.DataFrame:
        """The catalogue row(s) of ``event_id`` (no filters): ``event_id, time, lat, lon,
        depth_km, x_km, y_km, magnitude, cluster``; empty when unknown."""
        return self.query('SELECT event_id, "time", lat, lon, depth_km, x_km, y_km, magnitude, cluster'
                          " FROM read_parquet(?) WHERE event_id = ? LIMIT 1", [self.parquet_source("events"), str(event_id)])

    def velocity_model(self) -> pd.DataFrame:
        """The 1-D P model (``depth_km, vp_km_s``, by depth); empty when the table is absent."""
        if not self.has_table("velocity_model"):
            return pd.DataFrame({"depth_km": pd.Series(dtype=float), "vp_km_s": pd.Series(dtype=float)})
        return self._small("velocity_model", "depth_km")

# -- the app's provider ---------------------------------------------------------------------
_default: DataProvider | None = None


def set_provider(provider: DataProvider, server=None) -> DataProvider:
    """Make ``provider`` the one :func:`get_provider` returns (for ``server``'s requests,
    and as the process default)."""
    global _default
    _default = provider
    if server is not None:
        server.extensions["fm_provider"] = provider
    return provider


def get_provider() -> DataProvider:
    """The provider of the app serving the current request (else the process default)."""
    try:
        from flask import current_app, has_app_context

        if has_app_context() and "fm_provider" in current_app.extensions:
            return current_app.extensions["fm_provider"]
    except ImportError:  # pragma: no cover
        pass
    if _default is None:
        raise RuntimeError("no data provider: call create_app(data_dir) first")
    return _default


def table_columns(table: str) -> list[str]:
    """Contract columns of ``table`` (from :mod:`pipeline.schema`)."""
    return schema.table(table).column_names
