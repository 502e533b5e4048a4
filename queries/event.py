"""Queries of the event page (``pages/event.py``, :mod:`components.event_context`) and of the
server-side review checks (:mod:`components.review_writes`): one event's rows of the
event-keyed tables, no filters."""
from __future__ import annotations

import pandas as pd

from components.data import table_columns

#: event-keyed tables :func:`event_rows` may read (whitelist)
EVENT_TABLES = ("polarities", "waveforms", "mechanism_stations", "acceptable_planes", "unsolved")


def event_station_keys(provider, event_id: str) -> set[tuple[str, str]]:
    """(network, station) of every station the tables tie to ``event_id``: a polarity, a
    waveform or a station SKHASH used (``polarities``, ``waveforms``,
    ``mechanism_stations``); what a review of this event may name (checked on the server
    for every write, :mod:`components.review_writes`). Empty for an unknown event."""
    out: set[tuple[str, str]] = set()
    for table in ("polarities", "waveforms", "mechanism_stations"):
        if not provider.has_table(table):
            continue
        df = provider.query("SELECT DISTINCT network, station FROM read_parquet(?) WHERE event_id = ?",
                            [provider.parquet_source(table), str(event_id)])
        out |= set(zip(df["network"].astype(str), df["station"].astype(str)))
    return out


def event_rows(provider, table: str, event_id: str, channel: str | None = None) -> pd.DataFrame:
    """Every row of the event-keyed ``table`` (one of :data:`EVENT_TABLES`) for
    ``event_id``, optionally only ``channel`` (waveforms), all columns; an empty frame
    with the contract columns when the table is not in the data folder (these tables
    are optional: only events with waveforms/computed mechanisms have rows)."""
    if table not in EVENT_TABLES:
        raise ValueError(f"unknown event table {table!r}")
    if not provider.has_table(table):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in table_columns(table)})
    sql, params = "SELECT * FROM read_parquet(?) WHERE event_id = ?", [provider.parquet_source(table), str(event_id)]
    if channel is not None:
        sql, params = sql + " AND channel = ?", [*params, str(channel)]
    return provider.query(sql, params)
