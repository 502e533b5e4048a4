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

#: mechanism-table columns the table on the map page may sort by (whitelist)
SORTABLE = ("event_id", "time", "magnitude", "depth_km", "strike", "dip", "rake", "quality",
            "group", "faulting_style", "source", "cluster", "n_polarities")
#: mechanism columns the map draws (``DataProvider.mechanisms(columns=MAP_MECHANISM_COLUMNS)``)
MAP_MECHANISM_COLUMNS = ("event_id", "source", "time", "x_km", "y_km", "lon", "lat", "magnitude", "strike", "dip",
                         "rake", "group", "quality")
#: columns returned by :meth:`DataProvider.mechanisms_page`
PAGE_COLUMNS = ("event_id", "source", "time", "magnitude", "depth_km", "strike", "dip", "rake",
                "quality", "group", "faulting_style", "cluster", "n_polarities")


class MissingDataError(FileNotFoundError):
    """A table the dashboard needs is not in the data directory."""


def _quote(name: str) -> str:
    """Quote an identifier from our own whitelists (never user input)."""
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

    def _src(self, table: str) -> str:
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
        return sql, [self._src("mechanisms"), *params]

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
                return f"SELECT {star}{row_col} FROM read_parquet(?{rn})", [self._src("events")]
            star = "e.* EXCLUDE (file_row_number)" if row_numbers else "e.*"
            pop_sql, pop_params = self.population_sql(filters, 'event_id, "group", quality, source',
                                                      per_event=True)
            sql = (
                f"SELECT {star}{row_col.replace('file_row_number', 'e.file_row_number')}, "
                "COALESCE(m.\"group\", 'none') AS \"group\", m.quality AS quality, m.source AS mechanism_source "
                f"FROM read_parquet(?{rn}) AS e LEFT JOIN ({pop_sql}) AS m ON e.event_id = m.event_id"
            )
            return sql, [self._src("events"), *pop_params]
        if table == "mechanisms":
            star = "* EXCLUDE (file_row_number)" if row_numbers else "*"
            return self.population_sql(filters, f"{star}{row_col}", row_numbers=row_numbers, per_event=per_event)
        raise ValueError(f"unknown table {table!r}")

    def _mechanisms_unique(self) -> bool:
        """True when no event has two mechanisms (cached per version of the file)."""
        def build():
            return bool(self.query("SELECT count(*) = count(DISTINCT event_id) FROM read_parquet(?)",
                                   [self._src("mechanisms")]).iloc[0, 0])
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
            cols = ", ".join(_quote(c) for c in columns)
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

    # -- the mechanisms table -------------------------------------------------------------
    @staticmethod
    def _order_by(sort_by) -> str:
        """ORDER BY from DataTable ``sort_by`` ([{column_id, direction}]); columns outside
        :data:`SORTABLE` are ignored. Always ends with a unique tie-break."""
        parts = []
        for s in (sort_by or [])[:3]:
            if not isinstance(s, dict):
                continue
            col = s.get("column_id")
            if col in SORTABLE:
                direction = "DESC" if s.get("direction") == "desc" else "ASC"
                parts.append(f"{_quote(col)} {direction} NULLS LAST")
        parts += ['"time" ASC', "event_id ASC", "source ASC"]
        return "ORDER BY " + ", ".join(parts)

    def mechanisms_page(self, filters: Filters, page: int = 0, page_size: int = 15,
                        sort_by=None) -> pd.DataFrame:
        """One page of the filtered mechanisms for the table: :data:`PAGE_COLUMNS` plus
        ``x_km, y_km, lon, lat``; sorted by ``sort_by`` (DataTable format, whitelisted)
        then time, event id, source. ``df.attrs``: ``matched``, ``page``, ``page_count``."""
        page_size = min(max(1, int(page_size)), 1000)
        cols = ", ".join(_quote(c) for c in PAGE_COLUMNS) + ", x_km, y_km, lon, lat"
        sql, params = self.filtered_sql("mechanisms", filters, cols)
        with self.cursor() as cur:
            matched = cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
            page_count = max(1, math.ceil(matched / page_size))
            page = min(max(0, int(page or 0)), page_count - 1)
            df = cur.execute(f"{sql} {self._order_by(sort_by)} LIMIT ? OFFSET ?",
                             [*params, page_size, page * page_size]).df()
        df.attrs.update(matched=int(matched), page=page, page_count=page_count)
        return df

    def mechanism_position(self, filters: Filters, event_id: str, sort_by=None) -> int | None:
        """0-based position of the first mechanism of ``event_id`` among the filtered
        mechanisms in the table's order, or None if it is filtered out."""
        sql, params = self.filtered_sql("mechanisms", filters, "event_id, source, " + ", ".join(
            _quote(c) for c in SORTABLE if c not in ("event_id", "source")))
        order = self._order_by(sort_by)[len("ORDER BY "):]
        df = self.query(
            f"SELECT min(_rn) FROM (SELECT event_id, row_number() OVER (ORDER BY {order}) - 1 AS _rn"
            f" FROM ({sql})) WHERE event_id = ?", [*params, str(event_id)])
        v = df.iloc[0, 0]
        return None if pd.isna(v) else int(v)

    def mechanism_rows(self, event_id: str) -> pd.DataFrame:
        """Every mechanism of ``event_id`` (all columns, no filters), published first;
        empty when unknown."""
        return self.query("SELECT * FROM read_parquet(?) WHERE event_id = ?"
                          " ORDER BY (source = 'published') DESC, source",
                          [self._src("mechanisms"), str(event_id)])

    def mechanism_location(self, event_id: str) -> pd.DataFrame:
        """``event_id, x_km, y_km, lon, lat, magnitude`` of the event's mechanism(s)
        (no filters), published first; empty when unknown."""
        return self.mechanism_rows(event_id)[["event_id", "x_km", "y_km", "lon", "lat", "magnitude"]]

    # -- small tables ---------------------------------------------------------------------
    def _small(self, table: str, order: str) -> pd.DataFrame:
        def build():
            return self.query(f"SELECT * FROM read_parquet(?) ORDER BY {order}", [self._src(table)])
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

    def file_prefix(self) -> str:
        """Prefix of download file names: the ``frame`` table's ``dataset`` (``demo``,
        ``toc2me``, a project's name) in lower case, other characters than ``a-z0-9_-`` as
        ``_``, at most 40; ``fm`` when there is none."""
        try:
            f = self.frame()
            name = str(f["dataset"].iloc[0]) if "dataset" in f and len(f) and pd.notna(f["dataset"].iloc[0]) else ""
        except (MissingDataError, KeyError):
            name = ""
        return re.sub(r"[^a-z0-9_-]+", "_", name.lower()).strip("_")[:40] or "fm"

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
                ev, me = self._src("events"), self._src("mechanisms")
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
    def event_magnitudes(self, filters: Filters) -> pd.DataFrame:
        """Two columns of every filtered event, nothing else (histograms and b-values of
        any selection size): ``magnitude`` (float, NaN where unknown) and ``resolved``
        (bool: the event has a mechanism among the filter's ``source`` list). Unordered;
        same rows as :meth:`filtered_sql` on ``events``."""
        sql, params = self.filtered_sql("events", filters,
                                        "magnitude::DOUBLE AS magnitude, mechanism_source IS NOT NULL AS resolved")
        df = self.query(sql, params)
        df["magnitude"] = df["magnitude"].astype(float)
        df["resolved"] = df["resolved"].astype(bool)
        return df

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
                          " FROM read_parquet(?) WHERE event_id = ? LIMIT 1", [self._src("events"), str(event_id)])

    # -- event page (pages/event.py) --------------------------------------------------------
    #: event-keyed tables :meth:`event_rows` may read (whitelist)
    EVENT_TABLES = ("polarities", "waveforms", "mechanism_stations", "acceptable_planes", "unsolved")

    def event_station_keys(self, event_id: str) -> set[tuple[str, str]]:
        """(network, station) of every station the tables tie to ``event_id``: a polarity, a
        waveform or a station SKHASH used (``polarities``, ``waveforms``,
        ``mechanism_stations``); what a review of this event may name (checked on the server
        for every write, :mod:`components.review_writes`). Empty for an unknown event."""
        out: set[tuple[str, str]] = set()
        for table in ("polarities", "waveforms", "mechanism_stations"):
            if not self.has_table(table):
                continue
            df = self.query("SELECT DISTINCT network, station FROM read_parquet(?) WHERE event_id = ?",
                            [self._src(table), str(event_id)])
            out |= set(zip(df["network"].astype(str), df["station"].astype(str)))
        return out

    def event_rows(self, table: str, event_id: str, channel: str | None = None) -> pd.DataFrame:
        """Every row of the event-keyed ``table`` (one of :data:`EVENT_TABLES`) for
        ``event_id``, optionally only ``channel`` (waveforms), all columns; an empty frame
        with the contract columns when the table is not in the data folder (these tables
        are optional: only events with waveforms/computed mechanisms have rows)."""
        if table not in self.EVENT_TABLES:
            raise ValueError(f"unknown event table {table!r}")
        if not self.has_table(table):
            return pd.DataFrame({c: pd.Series(dtype=object) for c in table_columns(table)})
        sql, params = "SELECT * FROM read_parquet(?) WHERE event_id = ?", [self._src(table), str(event_id)]
        if channel is not None:
            sql, params = sql + " AND channel = ?", [*params, str(channel)]
        return self.query(sql, params)

    # -- composite mechanisms (pipeline.mechanisms.composite) ---------------------------
    def events_with_polarities(self, filters: Filters, cap: int | None = None, also=()) -> pd.DataFrame:
        """Filtered events (the :meth:`filtered_sql` ``events`` rows) that have at least one
        row in ``polarities``, or whose id is in ``also`` (e.g. events with reviewed picks
        only): ``event_id, time, lat, lon, depth_km, magnitude, cluster``, the ``cap``
        largest magnitudes (ties by event id; None = all), ordered that way.
        ``df.attrs['matched']``: such events before the cap. Empty when the ``polarities``
        table is absent."""
        cols = 'event_id, "time", lat, lon, depth_km, magnitude, cluster'
        if not self.has_table("polarities"):
            df = pd.DataFrame({c.strip('"'): pd.Series(dtype=object) for c in cols.split(", ")})
            df.attrs["matched"] = 0
            return df
        ev_sql, ev_params = self.filtered_sql("events", filters, cols)
        sql = (f"WITH ev AS MATERIALIZED ({ev_sql}) SELECT ev.*, count(*) OVER () AS _n FROM ev"
               " WHERE event_id IN (SELECT DISTINCT event_id FROM read_parquet(?)"
               " WHERE event_id IN (SELECT event_id FROM ev)) OR list_contains(?::VARCHAR[], event_id)"
               " ORDER BY magnitude DESC NULLS LAST, event_id")
        params = [*ev_params, self._src("polarities"), sorted({str(e) for e in also})]
        if cap is not None:
            sql, params = sql + " LIMIT ?", [*params, max(0, int(cap))]
        df = self.query(sql, params)
        matched = int(df["_n"].iloc[0]) if len(df) else 0
        df = df.drop(columns="_n")
        df.attrs["matched"] = matched
        return df

    def rows_of_events(self, table: str, event_ids) -> pd.DataFrame:
        """Every row of ``polarities`` or ``mechanisms`` (``table``) of the given events, all
        columns (no filters); empty with the contract columns when the table is absent."""
        if table not in ("polarities", "mechanisms"):
            raise ValueError(f"unknown table {table!r}")
        if not self.has_table(table):
            return pd.DataFrame({c: pd.Series(dtype=object) for c in table_columns(table)})
        ids = [str(e) for e in event_ids]
        return self.query("SELECT * FROM read_parquet(?) WHERE list_contains(?::VARCHAR[], event_id)",
                          [self._src(table), ids])

    def velocity_model(self) -> pd.DataFrame:
        """The 1-D P model (``depth_km, vp_km_s``, by depth); empty when the table is absent."""
        if not self.has_table("velocity_model"):
            return pd.DataFrame({"depth_km": pd.Series(dtype=float), "vp_km_s": pd.Series(dtype=float)})
        return self._small("velocity_model", "depth_km")

    # -- polarity model page (pages/model.py) -------------------------------------------
    def model_eval(self, *, model=None, dataset=None, kind=None) -> pd.DataFrame:
        """Rows of ``model_eval`` (schema ``model_eval``: model, dataset, kind, name, x, y,
        value; see :mod:`pipeline.picking.evaluate`), optionally only the given model(s),
        dataset(s) and kind(s) (a string or a list of strings, bound as parameters).
        Ordered by model, dataset, kind, name, x. Raises :class:`MissingDataError` when
        the table is absent (``python -m pipeline evaluate`` writes it)."""
        where, params = [], [self._src("model_eval")]
        for col, val in (("model", model), ("dataset", dataset), ("kind", kind)):
            if val is None:
                continue
            vals = [str(v) for v in ([val] if isinstance(val, str) else list(val))][:64]
            if not vals:
                where.append("FALSE")
                continue
            where.append(f"{_quote(col)} IN ({', '.join('?' for _ in vals)})")
            params += vals
        sql = ("SELECT model, dataset, kind, name, x::DOUBLE AS x, y::DOUBLE AS y, value::DOUBLE AS value"
               " FROM read_parquet(?)" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY model, dataset, kind, name, x NULLS FIRST")
        return self.query(sql, params)

    #: columns of :meth:`polarity_agreement`
    AGREEMENT_COLUMNS = ("event_id", "time", "magnitude", "n_picker", "picker_decided",
                         "ref_both", "ref_agree", "ref_disagree", "ref_only_picker", "ref_only_other",
                         "manual_both", "manual_agree", "manual_disagree", "manual_only_other",
                         "truth_both", "truth_agree", "truth_disagree", "truth_only_other")

    def polarity_agreement(self, filters: Filters, picker: str = "cnn") -> pd.DataFrame:
        """Per filtered event with polarities: the ``picker``'s agreement counts, every row
        (the CSV download); :func:`queries.model.agreement` documents the columns. The page
        reads one page at a time (:func:`queries.model.agreement_page`)."""
        from queries import model as mq

        return mq.agreement(self, filters, picker)


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
