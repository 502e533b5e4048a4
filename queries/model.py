"""Queries of the polarity-model page (``pages/model.py``): the evaluation rows
(:func:`model_eval`) and the per-event agreement table.

The page shows one page of it at a time (:func:`agreement_page`: ``LIMIT``/``OFFSET`` in
DuckDB plus the totals of every row in one aggregate), so a catalogue of any size never
ships its whole per-event table to the browser; the CSV download reads every row
(:func:`agreement`).
"""
from __future__ import annotations

import math

import pandas as pd

from components.data import quote_identifier
from components.filters import Filters

#: columns of :func:`agreement` and :func:`agreement_page`
AGREEMENT_COLUMNS = ("event_id", "time", "magnitude", "n_picker", "picker_decided",
                     "ref_both", "ref_agree", "ref_disagree", "ref_only_picker", "ref_only_other",
                     "manual_both", "manual_agree", "manual_disagree", "manual_only_other",
                     "truth_both", "truth_agree", "truth_disagree", "truth_only_other")


def model_eval(provider, *, model=None, dataset=None, kind=None) -> pd.DataFrame:
    """Rows of ``model_eval`` (schema ``model_eval``: model, dataset, kind, name, x, y,
    value; see :mod:`pipeline.picking.evaluate`), optionally only the given model(s),
    dataset(s) and kind(s) (a string or a list of strings, bound as parameters).
    Ordered by model, dataset, kind, name, x. Raises
    :class:`components.data.MissingDataError` when the table is absent (``python -m
    pipeline evaluate`` writes it)."""
    where, params = [], [provider.parquet_source("model_eval")]
    for col, val in (("model", model), ("dataset", dataset), ("kind", kind)):
        if val is None:
            continue
        vals = [str(v) for v in ([val] if isinstance(val, str) else list(val))][:64]
        if not vals:
            where.append("FALSE")
            continue
        where.append(f"{quote_identifier(col)} IN ({', '.join('?' for _ in vals)})")
        params += vals
    sql = ("SELECT model, dataset, kind, name, x::DOUBLE AS x, y::DOUBLE AS y, value::DOUBLE AS value"
           " FROM read_parquet(?)" + (" WHERE " + " AND ".join(where) if where else "")
           + " ORDER BY model, dataset, kind, name, x NULLS FIRST")
    return provider.query(sql, params)


def agreement_sql(provider, filters: Filters, picker: str = "cnn") -> tuple[str, list] | None:
    """``SELECT`` of the per-event agreement rows (unordered) and its parameters; None
    when the ``polarities`` table is absent. Rows and columns as :func:`agreement`."""
    if not provider.has_table("polarities"):
        return None
    ev_sql, ev_params = provider.filtered_sql("events", filters, 'event_id, "time", magnitude')
    dec = "IN (1, -1)"
    sql = (
        f"WITH ev AS MATERIALIZED ({ev_sql}), "
        "w AS (SELECT event_id, network, station,"
        " max(polarity) FILTER (WHERE method = ?) AS p,"
        " max(polarity) FILTER (WHERE method = 'reference') AS r,"
        " max(polarity) FILTER (WHERE method = 'manual') AS m"
        " FROM read_parquet(?) WHERE method IN (?, 'reference', 'manual')"
        " AND event_id IN (SELECT event_id FROM ev) GROUP BY event_id, network, station), "
        "c AS (SELECT *, coalesce(p " + dec + ", false) AS pd, coalesce(r " + dec + ", false) AS rd,"
        " coalesce(m " + dec + ", false) AS md FROM w) "
        'SELECT c.event_id, any_value(ev."time") AS "time", any_value(ev.magnitude) AS magnitude,'
        " count(p) AS n_picker, count(*) FILTER (WHERE pd) AS picker_decided,"
        " count(*) FILTER (WHERE pd AND rd) AS ref_both,"
        " count(*) FILTER (WHERE pd AND rd AND p = r) AS ref_agree,"
        " count(*) FILTER (WHERE pd AND rd AND p <> r) AS ref_disagree,"
        " count(*) FILTER (WHERE pd AND NOT rd) AS ref_only_picker,"
        " count(*) FILTER (WHERE rd AND NOT pd) AS ref_only_other,"
        " count(*) FILTER (WHERE pd AND md) AS manual_both,"
        " count(*) FILTER (WHERE pd AND md AND p = m) AS manual_agree,"
        " count(*) FILTER (WHERE pd AND md AND p <> m) AS manual_disagree,"
        " count(*) FILTER (WHERE md AND NOT pd) AS manual_only_other"
        ' FROM c JOIN ev ON c.event_id = ev.event_id GROUP BY c.event_id'
    )
    params = [*ev_params, str(picker), provider.parquet_source("polarities"), str(picker)]
    if provider.has_table("truth_polarities"):
        # demo ground truth, per (event, station) of the picker's rows
        sql = (
            f"WITH a AS ({sql}), t AS (SELECT event_id, count(*) FILTER (WHERE pd AND td) AS truth_both,"
            " count(*) FILTER (WHERE pd AND td AND p = tp) AS truth_agree,"
            " count(*) FILTER (WHERE pd AND td AND p <> tp) AS truth_disagree,"
            " count(*) FILTER (WHERE td AND NOT pd) AS truth_only_other"
            " FROM (SELECT event_id, p, tp, coalesce(pd, false) AS pd, coalesce(td, false) AS td"
            " FROM (SELECT event_id, network, station, max(polarity) AS p,"
            f" coalesce(max(polarity) {dec}, false) AS pd FROM read_parquet(?) WHERE method = ?"
            " AND event_id IN (SELECT event_id FROM a) GROUP BY ALL) AS w"
            " FULL JOIN (SELECT event_id, network, station, max(true_polarity) AS tp, true AS td"
            f" FROM read_parquet(?) WHERE NOT dead AND true_polarity {dec}"
            " AND event_id IN (SELECT event_id FROM a) GROUP BY ALL) AS tr"
            " USING (event_id, network, station)) GROUP BY event_id)"
            " SELECT a.*, t.* EXCLUDE (event_id) FROM a LEFT JOIN t ON a.event_id = t.event_id"
        )
        params += [provider.parquet_source("polarities"), str(picker), provider.parquet_source("truth_polarities")]
    else:
        sql = ("SELECT *, NULL::BIGINT AS truth_both, NULL::BIGINT AS truth_agree, NULL::BIGINT AS truth_disagree,"
               f" NULL::BIGINT AS truth_only_other FROM ({sql})")
    return sql, params


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in AGREEMENT_COLUMNS[3:]:
        df[c] = df[c].astype("int64" if not c.startswith("truth_") else "Int64")
    return df[list(AGREEMENT_COLUMNS)]


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in AGREEMENT_COLUMNS})


def agreement(provider, filters: Filters, picker: str = "cnn") -> pd.DataFrame:
    """Per filtered event with polarities: the ``picker``'s decided share and its
        station-by-station agreement (true-motion polarities) with the reference model and
        the manual picks. Columns :data:`AGREEMENT_COLUMNS` (``time``, ``magnitude`` from the
        catalogue); the counts are defined as in :func:`pipeline.picking.evaluate.per_event_agreement`
        (the same computation in pandas). Only events of the filtered ``events`` relation
        where the picker, the reference or a manual pick has a row; ordered by time, event
        id. ``truth_*`` compare with the demo's ``truth_polarities`` (dead traces
        excluded) and are null without that table. Empty (same columns) when the
        ``polarities`` table is absent."""
    q = agreement_sql(provider, filters, picker)
    if q is None:
        return _empty()
    sql, params = q
    return _typed(provider.query(f'SELECT * FROM ({sql}) ORDER BY "time", event_id', params))


def agreement_page(provider, filters: Filters, picker: str = "cnn", page: int = 0,
                   page_size: int = 15) -> tuple[pd.DataFrame, dict]:
    """(rows of page ``page`` (0-based, clipped to the last) of :func:`agreement`, in its
    order; totals): ``totals`` has ``n`` (events, every page), ``page``, ``page_count`` and
    the sum over every row of each count column (``truth_*`` None without demo truth)."""
    page_size = min(max(1, int(page_size)), 1000)
    q = agreement_sql(provider, filters, picker)
    count_cols = AGREEMENT_COLUMNS[3:]
    if q is None:
        return _empty(), {"n": 0, "page": 0, "page_count": 1, **{c: 0 for c in count_cols}}
    sql, params = q
    sums = ", ".join(f"sum({c})::BIGINT AS {c}" for c in count_cols)
    with provider.cursor() as cur:
        tot = cur.execute(f"SELECT count(*) AS n, {sums} FROM ({sql})", params).df().iloc[0]
        n = int(tot["n"])
        page_count = max(1, math.ceil(n / page_size))
        page = min(max(0, int(page or 0)), page_count - 1)
        df = cur.execute(f'SELECT * FROM ({sql}) ORDER BY "time", event_id LIMIT ? OFFSET ?',
                         [*params, page_size, page * page_size]).df()
    totals = {"n": n, "page": page, "page_count": page_count}
    for c in count_cols:
        v = tot[c]
        totals[c] = None if pd.isna(v) else int(v)
    return _typed(df), totals
