"""Queries of the map page's mechanism table and selection (``pages/map.py``).

The table shows one page of the filtered mechanisms at a time (:func:`mechanisms_page`:
``LIMIT``/``OFFSET`` in DuckDB), sorted by the columns the user clicked (whitelisted in
:data:`SORTABLE`) with a unique tie-break, so a page boundary never repeats or drops a row;
:func:`mechanism_position` finds the page of an event selected on the map.
"""
from __future__ import annotations

import math

import pandas as pd

from components.data import quote_identifier
from components.filters import Filters

#: mechanism-table columns the table on the map page may sort by (whitelist)
SORTABLE = ("event_id", "time", "magnitude", "depth_km", "strike", "dip", "rake", "quality",
            "group", "faulting_style", "source", "cluster", "n_polarities")
#: columns returned by :func:`mechanisms_page` (besides ``x_km, y_km, lon, lat``)
PAGE_COLUMNS = ("event_id", "source", "time", "magnitude", "depth_km", "strike", "dip", "rake",
                "quality", "group", "faulting_style", "cluster", "n_polarities")


def order_by(sort_by) -> str:
    """ORDER BY from DataTable ``sort_by`` ([{column_id, direction}]); columns outside
    :data:`SORTABLE` are ignored. Always ends with a unique tie-break."""
    parts = []
    for s in (sort_by or [])[:3]:
        if not isinstance(s, dict):
            continue
        col = s.get("column_id")
        if col in SORTABLE:
            direction = "DESC" if s.get("direction") == "desc" else "ASC"
            parts.append(f"{quote_identifier(col)} {direction} NULLS LAST")
    parts += ['"time" ASC', "event_id ASC", "source ASC"]
    return "ORDER BY " + ", ".join(parts)


def mechanisms_page(provider, filters: Filters, page: int = 0, page_size: int = 15,
                    sort_by=None) -> pd.DataFrame:
    """One page of the filtered mechanisms for the table: :data:`PAGE_COLUMNS` plus
    ``x_km, y_km, lon, lat``; sorted by ``sort_by`` (DataTable format, whitelisted)
    then time, event id, source. ``df.attrs``: ``matched``, ``page``, ``page_count``."""
    page_size = min(max(1, int(page_size)), 1000)
    cols = ", ".join(quote_identifier(c) for c in PAGE_COLUMNS) + ", x_km, y_km, lon, lat"
    sql, params = provider.filtered_sql("mechanisms", filters, cols)
    with provider.cursor() as cur:
        matched = cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]
        page_count = max(1, math.ceil(matched / page_size))
        page = min(max(0, int(page or 0)), page_count - 1)
        df = cur.execute(f"{sql} {order_by(sort_by)} LIMIT ? OFFSET ?",
                         [*params, page_size, page * page_size]).df()
    df.attrs.update(matched=int(matched), page=page, page_count=page_count)
    return df


def mechanism_position(provider, filters: Filters, event_id: str, sort_by=None) -> int | None:
    """0-based position of the first mechanism of ``event_id`` among the filtered
    mechanisms in the table's order, or None if it is filtered out."""
    sql, params = provider.filtered_sql("mechanisms", filters, "event_id, source, " + ", ".join(
        quote_identifier(c) for c in SORTABLE if c not in ("event_id", "source")))
    order = order_by(sort_by)[len("ORDER BY "):]
    df = provider.query(
        f"SELECT min(_rn) FROM (SELECT event_id, row_number() OVER (ORDER BY {order}) - 1 AS _rn"
        f" FROM ({sql})) WHERE event_id = ?", [*params, str(event_id)])
    v = df.iloc[0, 0]
    return None if pd.isna(v) else int(v)


def mechanism_location(provider, event_id: str) -> pd.DataFrame:
    """``event_id, x_km, y_km, lon, lat, magnitude`` of the event's mechanism(s)
    (no filters), published first; empty when unknown."""
    return provider.mechanism_rows(event_id)[["event_id", "x_km", "y_km", "lon", "lat", "magnitude"]]
