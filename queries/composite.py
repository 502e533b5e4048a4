"""Queries of the composite mechanisms (:mod:`pipeline.mechanisms.composite`, the
classification page's composite panel and ``python -m pipeline composite``): the filtered
events that have polarities, and every polarity and mechanism row of chosen events."""
from __future__ import annotations

import pandas as pd

from components.data import table_columns
from components.filters import Filters


def events_with_polarities(provider, filters: Filters, cap: int | None = None, also=()) -> pd.DataFrame:
    """Filtered events (the ``provider.filtered_sql('events', ...)`` rows) that have at least
    one row in ``polarities``, or whose id is in ``also`` (e.g. events with reviewed picks
    only): ``event_id, time, lat, lon, depth_km, magnitude, cluster``, the ``cap`` largest
    magnitudes (ties by event id; None = all), ordered that way. ``df.attrs['matched']``:
    such events before the cap. Empty when the ``polarities`` table is absent."""
    cols = 'event_id, "time", lat, lon, depth_km, magnitude, cluster'
    if not provider.has_table("polarities"):
        df = pd.DataFrame({c.strip('"'): pd.Series(dtype=object) for c in cols.split(", ")})
        df.attrs["matched"] = 0
        return df
    ev_sql, ev_params = provider.filtered_sql("events", filters, cols)
    sql = (f"WITH ev AS MATERIALIZED ({ev_sql}) SELECT ev.*, count(*) OVER () AS _n FROM ev"
           " WHERE event_id IN (SELECT DISTINCT event_id FROM read_parquet(?)"
           " WHERE event_id IN (SELECT event_id FROM ev)) OR list_contains(?::VARCHAR[], event_id)"
           " ORDER BY magnitude DESC NULLS LAST, event_id")
    params = [*ev_params, provider.parquet_source("polarities"), sorted({str(e) for e in also})]
    if cap is not None:
        sql, params = sql + " LIMIT ?", [*params, max(0, int(cap))]
    df = provider.query(sql, params)
    matched = int(df["_n"].iloc[0]) if len(df) else 0
    df = df.drop(columns="_n")
    df.attrs["matched"] = matched
    return df


def rows_of_events(provider, table: str, event_ids) -> pd.DataFrame:
    """Every row of ``polarities`` or ``mechanisms`` (``table``) of the given events, all
    columns (no filters); empty with the contract columns when the table is absent."""
    if table not in ("polarities", "mechanisms"):
        raise ValueError(f"unknown table {table!r}")
    if not provider.has_table(table):
        return pd.DataFrame({c: pd.Series(dtype=object) for c in table_columns(table)})
    ids = [str(e) for e in event_ids]
    return provider.query("SELECT * FROM read_parquet(?) WHERE list_contains(?::VARCHAR[], event_id)",
                          [provider.parquet_source(table), ids])
