"""Queries of the diffusion page (``pages/diffusion.py``): the analysed event set, bounded.

One analysis (distance-time plot, the D fit and its bootstrap, the activation player, the
grey context of the map) uses at most ``caps.diffusion_events`` events
(:class:`queries.caps.Caps`). A larger set is **subsampled by a fixed, seeded rule**: the
earliest event of the set (the default origin, so the origin never moves because of the
cap) plus the ``cap - 1`` other events with the smallest DuckDB ``hash(seed || event_id)``
(:data:`queries.caps.SAMPLE_SEED`): uniform over the set, the same events for the same
selection (with the same DuckDB version), chosen before any distance is computed. The fit
and the bootstrap are then those of the sample, and the page says so. Below the cap (all of
ToC2ME) nothing changes: every event is analysed.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from components.filters import Filters

from .caps import SAMPLE_SEED

#: catalogue columns of an analysed set (those of ``DataProvider.cluster_events``)
EVENT_COLUMNS = 'event_id, "time", lat, lon, depth_km, x_km, y_km, magnitude, cluster, "group"'
#: the sample key: a seeded hash of the event id (DuckDB ``hash``, UBIGINT)
KEY_SQL = "hash(?::VARCHAR || event_id)"


def cluster_events(provider, f: Filters, cluster: str | None, cap: int, seed: str = SAMPLE_SEED) -> pd.DataFrame:
    """The filtered events of ``cluster`` (None: all), as ``provider.cluster_events`` (same
    columns, ordered by time, event id), at most ``cap`` of them by the module's rule.
    ``df.attrs``: ``matched`` (events of the set), ``sampled`` (bool)."""
    cap = max(1, int(cap))
    sql, params = provider.filtered_sql("events", f, EVENT_COLUMNS)
    where, extra = ("WHERE cluster = ?", [str(cluster)]) if cluster is not None else ("", [])
    base = f"SELECT * FROM ({sql}) {where}"
    # count, earliest event and the sample's hash threshold from the few columns they need (the
    # events alone, without the join that adds the mechanism's group, unless a filter needs it)
    lean_sql, lean_params = provider.filtered_sql("events", f, 'event_id, "time", cluster',
                                                  mechanism_columns=bool(f.groups or f.qualities))
    with provider.cursor() as cur:
        n, first, threshold = cur.execute(
            f"WITH s AS MATERIALIZED (SELECT event_id, \"time\", {KEY_SQL} AS k FROM ({lean_sql}) {where}), "
            'f AS (SELECT arg_min(event_id, ("time", event_id)) AS id FROM s) '
            "SELECT (SELECT count(*) FROM s), (SELECT id FROM f), (SELECT max(k) FROM (SELECT k FROM s "
            "WHERE event_id <> (SELECT id FROM f) ORDER BY k LIMIT ?))",
            [seed, *lean_params, *extra, cap - 1]).fetchone()
        n = int(n)
        if n <= cap:
            df = cur.execute(f'{base} ORDER BY "time", event_id', [*params, *extra]).df()
        else:
            pick = f"({KEY_SQL} <= ? AND event_id <> ? OR event_id = ?)"
            df = cur.execute(f'SELECT * FROM ({base}) WHERE {pick} ORDER BY "time", event_id',
                             [*params, *extra, seed, threshold, first, first]).df()
    df.attrs.update(matched=n, sampled=n > len(df))
    return df


def sample_rows(provider, df: pd.DataFrame, cap: int, seed: str = SAMPLE_SEED) -> pd.DataFrame:
    """At most ``cap`` rows of ``df`` (event rows with ``event_id`` and ``time``, e.g. a
    subset's mechanisms) by the module's rule, in their order; the keys are DuckDB's, as in
    :func:`cluster_events`. ``df.attrs``: ``matched``, ``sampled``."""
    n = len(df)
    if n <= cap:
        out = df
    else:
        ids = df["event_id"].astype(str).tolist()
        keys = provider.query(f"SELECT {KEY_SQL.replace('event_id', 'e')} AS k FROM "
                              "(SELECT unnest(?::VARCHAR[]) AS e, generate_subscripts(?::VARCHAR[], 1) AS i) ORDER BY i",
                              [seed, ids, ids])["k"].to_numpy()
        t = pd.to_datetime(df["time"], utc=True).to_numpy()
        first = int(np.lexsort((np.asarray(ids, dtype=object), t))[0])  # earliest, ties by event id
        order = np.argsort(keys, kind="stable")
        keep = np.sort(np.concatenate([[first], order[order != first][:max(0, int(cap) - 1)]]))
        out = df.iloc[keep]
    out = out.copy()
    out.attrs.update(matched=n, sampled=n > len(out))
    return out


def mechanisms_of(provider, f: Filters, cluster: str | None, events: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``provider.mechanisms_per_event(f, cluster)`` whose event is one of
    ``events`` (the player's mechanisms of a sampled set), order and index kept; read in
    batches (its ``keep``), so only these (at most the cap's) are ever held, not every
    mechanism of the cluster."""
    ids = events["event_id"]
    return provider.mechanisms_per_event(f, cluster, keep=lambda m: m["event_id"].isin(ids))
