"""Queries of the strike-time page (``pages/strike_time.py``).

The page plots one mechanism per event (each event's preferred mechanism of the bar's
population, :meth:`components.data.DataProvider.mechanisms_per_event`'s rows) of one
cluster. :func:`mechanisms` reads only the five columns the plot and its statistics need;
the statistics use every row, the scatter draws at most ``caps.points`` of them
(:func:`drawn`).
"""
from __future__ import annotations

import pandas as pd

from components.filters import Filters, population_sql
from components.stereonet import sample_rows

#: columns the page reads
COLUMNS = 'event_id, "time", magnitude, strike, "group"'


def mechanisms(provider, f: Filters, cluster: str | None) -> pd.DataFrame:
    """The rows of ``provider.mechanisms_per_event(f, cluster)`` with :data:`COLUMNS` only,
    ordered by time, event id. ``df.attrs['matched']``: the filtered mechanism rows of the
    population before the cluster restriction (as ``mechanisms_per_event``)."""
    sql, params = provider.filtered_sql("mechanisms", f, f"{COLUMNS}, cluster, count(*) OVER () AS _n",
                                        per_event=True)
    where, extra = ("WHERE cluster = ?", [str(cluster)]) if cluster is not None else ("", [])
    df = provider.query(f'SELECT {COLUMNS}, _n FROM ({sql}) {where} ORDER BY "time", event_id', [*params, *extra])
    if len(df) and population_sql(f)[3]:
        matched = int(df["_n"].iloc[0])
    else:  # no row left after the cluster, or every row counts ('all'): count them
        matched = provider.matched_mechanisms(f)
    df = df.drop(columns="_n")
    df.attrs["matched"] = matched
    return df


def drawn(table: pd.DataFrame, cap: int) -> pd.DataFrame:
    """The scatter's rows: all of ``table``, or the fixed sample of ``cap`` rows with the
    smallest hash of the event id (:func:`components.stereonet.sample_rows`), in time order."""
    return sample_rows(table, cap).reset_index(drop=True)
