"""Which events and mechanisms an export holds: exactly what the dashboard selects.

The command line (``python -m pipeline export``) and the dashboard's download buttons both
call :func:`select`, which asks :class:`components.data.DataProvider` - the dashboard's own
DuckDB access - for the rows of a :class:`components.filters.Filters` value. The same URL
query string therefore exports the same rows from both.

* ``mechanisms``: the filtered mechanism rows of the filters' mechanism population
  (``DataProvider.export_frame('mechanisms')``: what the map's table lists and its
  "mechanisms matched" count counts; by default one per event, quality A; every row with
  ``mech=all``), ordered by time, event id, source.
* ``events``: the filtered catalogue rows (``export_frame('events')``, the "events
  matched"), plus the catalogue rows of events that have a filtered mechanism but are not
  themselves selected (possible only with ``mech=all`` and a ``group``/``quality`` filter,
  which then applies to an event through its preferred mechanism but to each mechanism
  through its own values), so every exported mechanism has its event. Ordered by time,
  event id.

With ``event_id`` instead of filters: that event and all its mechanisms (the event page).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

import pandas as pd

from ..errors import InputError

#: tables an export needs at all
REQUIRED = ("events", "mechanisms")


@dataclass
class Selection:
    """The rows of one export. ``events``: catalogue rows (columns of the ``events`` table
    plus ``group``, ``quality``, ``mechanism_source`` from the event's mechanism);
    ``mechanisms``: rows of the ``mechanisms`` table; times are UTC. ``what``: a few words
    saying how they were chosen (for the command's one-line report)."""

    events: pd.DataFrame
    mechanisms: pd.DataFrame
    what: str = "all events"
    added: frozenset = field(default_factory=frozenset)

    @property
    def event_ids(self) -> list[str]:
        return self.events["event_id"].astype(str).tolist()

    @property
    def filtered_events(self) -> pd.DataFrame:
        """``events`` without the rows added only for a filtered mechanism: the events the
        dashboard counts as "events matched"."""
        if not self.added:
            return self.events
        return self.events[~self.events["event_id"].astype(str).isin(self.added)].reset_index(drop=True)


def provider_for(data_dir: str | os.PathLike, tables=REQUIRED):
    """A :class:`components.data.DataProvider` on ``data_dir``; :class:`InputError` (with
    what to do) when the folder or one of ``tables`` is missing."""
    from components.data import DataProvider

    d = Path(data_dir)
    if not d.exists():
        raise InputError(d, f"no such data folder (build one: python -m pipeline build --data-dir {d})")
    if not d.is_dir():
        raise InputError(d, "not a folder (--data-dir takes the folder of the Parquet tables)")
    provider = DataProvider(d)
    missing = provider.missing_tables(tables)
    if missing:
        raise InputError(d, f"no {', '.join(missing)} table(s) here: not a built data folder "
                            f"(build one: python -m pipeline build --data-dir {d})")
    return provider


def _ordered(df: pd.DataFrame, by=("time", "event_id")) -> pd.DataFrame:
    return df.sort_values(list(by), kind="stable").reset_index(drop=True) if len(df) else df.reset_index(drop=True)


def select(provider, filters=None, event_id: str | None = None) -> Selection:
    """The events and mechanisms of ``filters`` (a :class:`~components.filters.Filters`;
    None = no filter) or, when ``event_id`` is given, of that one event (all its
    mechanisms; the filters are not used). Raises :class:`InputError` for an unknown
    ``event_id``. See the module docstring for the exact definition."""
    from components.filters import Filters

    if event_id is not None:
        eid = str(event_id)
        mech = provider.mechanism_rows(eid)
        rel, params = provider.relation_sql("events", Filters())
        ev = provider.query(f"SELECT * FROM ({rel}) WHERE event_id = ?", [*params, eid])
        if ev.empty and mech.empty:
            raise InputError(provider.data_dir, f"no event {eid!r} in the events or mechanisms table "
                                                "(event ids are origin times YYYYMMDDhhmmss.fff, UTC)")
        return Selection(ev, mech, what=f"event {eid}")

    f = filters if filters is not None else Filters()
    ev = provider.export_frame("events", f)
    mech = provider.export_frame("mechanisms", f)
    missing = sorted(set(mech["event_id"].astype(str)) - set(ev["event_id"].astype(str)))
    if missing:
        rel, params = provider.relation_sql("events", f)
        more = provider.query(f"SELECT * FROM ({rel}) WHERE event_id IN (SELECT unnest(?::VARCHAR[]))",
                              [*params, missing])
        ev = _ordered(pd.concat([ev, more], ignore_index=True))
    q = unquote(f.data_query())
    return Selection(ev, mech, what=f"filters {q}" if q else "all events", added=frozenset(missing))


def event_rows(provider, table: str, event_ids, columns: str = "*") -> pd.DataFrame:
    """Rows of the event-keyed ``table`` (``polarities``, ``waveforms``,
    ``mechanism_stations``, ...) whose ``event_id`` is in ``event_ids``; an empty frame
    (contract columns) when the table is absent. ``columns`` is SQL of ours, never input."""
    from components.data import table_columns

    ids = [str(e) for e in event_ids]
    if not provider.has_table(table):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in table_columns(table)})
    return provider.query(f"SELECT {columns} FROM read_parquet(?, union_by_name=true)"
                          " WHERE event_id IN (SELECT unnest(?::VARCHAR[]))", [provider.parquet_source(table), ids])


def whole_table(provider, table: str, order: str | None = None) -> pd.DataFrame:
    """Every row of ``table`` (empty frame with the contract columns when absent);
    ``order`` is SQL of ours."""
    from components.data import table_columns

    if not provider.has_table(table):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in table_columns(table)})
    sql = "SELECT * FROM read_parquet(?, union_by_name=true)" + (f" ORDER BY {order}" if order else "")
    return provider.query(sql, [provider.parquet_source(table)])
