"""The classification page's CSV: the filtered mechanisms re-grouped with the page's rule,
served by the app's spooled download route (``app._register_download``), not built in a
callback.

URL: ``<prefix>download/mechanisms_classified.csv?<filter query>&rule=<code>``, where the
filter query is the bar's (:meth:`components.filters.Filters.data_query`) and ``code`` the
page's rule as :func:`components.classification_figures.encode_rule` writes it (the
``cls-rule`` store's ``code``); without ``rule`` the published rule applies.

Rows and columns: every column of the filtered mechanisms (the export query of the map
page's CSV, ordered by time, event id, source) with ``group`` from the rule (plane-1
strike/dip/rake in degrees as stored) and ``group_stored`` (the table's published-rule
group) right after it; times ISO 8601 UTC.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlencode

import pandas as pd

from pipeline.mechanisms.groups import PUBLISHED_RULE, classify_groups

from . import classification_figures as cf
from .filters import Filters, query_problems

#: the route's file part and the query key of the rule (not a filter key)
ROUTE = "download/mechanisms_classified.csv"
RULE_KEY = "rule"


def href(f: Filters, rule: pd.DataFrame | None, prefix: str = "/") -> str:
    """URL of the classified CSV of the filters ``f`` with ``rule`` (None or the published
    rule: no ``rule`` key), relative to the app prefix."""
    params = f.data_query()
    if rule is not None and not cf.same_rule(rule, PUBLISHED_RULE):
        params = "&".join(p for p in (params, urlencode({RULE_KEY: cf.encode_rule(rule)})) if p)
    return f"{prefix}{ROUTE}" + (f"?{params}" if params else "")


def rule_of_query(query: str) -> pd.DataFrame:
    """The rule a download URL's query string asks for: the published rule without a
    ``rule`` key. Raises ``ValueError`` (its message names the problem) for a ``rule`` given
    twice or one that is not a valid rule (:func:`components.classification_figures.read_rule`)."""
    try:
        values = parse_qs(query or "", keep_blank_values=True, errors="strict").get(RULE_KEY, [])
    except UnicodeDecodeError:
        raise ValueError("the query string is not percent-encoded UTF-8") from None
    if not values:
        return PUBLISHED_RULE
    if len(values) > 1:
        raise ValueError(f"{RULE_KEY} is given {len(values)} times (one value only)")
    rule, error = cf.read_rule(values[0])
    if error:
        raise ValueError(f"{RULE_KEY}={values[0][:60]!r}: {error}")
    return rule


def url_problems(url: str) -> list[str]:
    """What the route would refuse in ``url`` (a :func:`href`), one sentence each: malformed
    filters (:func:`components.filters.query_problems`, e.g. a query past its length limit)
    or rule (:func:`rule_of_query`, e.g. a rule past :data:`~components.classification_figures.MAX_RULE_CODE`
    characters). ``[]``: the link downloads."""
    query = url.partition("?")[2]
    found = query_problems(query)
    try:
        rule_of_query(query)
    except ValueError as exc:
        found.append(str(exc))
    return found


def regroup_batch(batch, rule: pd.DataFrame):
    """A ``pyarrow.RecordBatch`` of export rows with ``group`` re-classified by ``rule``
    (:func:`pipeline.mechanisms.groups.classify_groups`) and the stored group as
    ``group_stored`` right after it (appended, null, when the rows have no ``group``):
    the batch form of :func:`components.classification_figures.regroup`."""
    import pyarrow as pa

    def floats(name):
        return batch.column(name).to_numpy(zero_copy_only=False).astype(float)

    n = batch.num_rows
    new = pa.array(classify_groups(floats("strike"), floats("dip"), floats("rake"), rule), type=pa.string())
    names = list(batch.schema.names)
    cols = list(batch.columns)
    if "group" in names:
        i = names.index("group")
        stored = cols[i]
        cols[i] = new
    else:
        i = len(names)
        names.append("group")
        cols.append(new)
        stored = pa.nulls(n, type=pa.string())
    names.insert(i + 1, "group_stored")
    cols.insert(i + 1, stored)
    return pa.RecordBatch.from_arrays(cols, names=names)


def filename(file_prefix: str) -> str:
    """The download's file name for the data set prefix (``DataProvider.file_prefix``)."""
    return f"{file_prefix}_mechanisms_classified.csv"
