"""Queries of the classification page (``pages/classification.py``).

The page's three callbacks of one interaction (counts and histograms, stereonets, map)
share one read of the filtered mechanisms (:func:`mechanisms`: lean columns, memoised per
selection and data version), instead of three full reads. Counts, moment-tensor averages,
Kagan spreads and the histograms use every matched mechanism; what is drawn one by one
(map ticks, ternary points) is capped by :func:`drawn`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from components.filters import Filters
from components.stereonet import sample_rows

from .memo import Memo

#: mechanism columns the page reads (all it needs; never the whole row)
COLUMNS = ("event_id", "source", "x_km", "y_km", "magnitude", "strike", "dip", "rake", "p_plunge", "b_plunge",
           "t_plunge", "zoback_class", "group", "quality")

#: at 100,000 mechanisms a selection is ~20 MB: two kept (the page's regrouped selections,
#: ``pages.classification._grouped``, serve repeats; this one serves a rule edit)
_memo = Memo(maxsize=2)


def mechanisms(provider, query: str) -> pd.DataFrame:
    """The filtered mechanisms of ``query`` (the bar's population; :data:`COLUMNS`), ordered
    by magnitude, largest first (:meth:`~components.data.DataProvider.mechanisms` without a
    cap). Shared between requests: callers must not modify it (``regroup`` copies)."""
    f = Filters.from_query(query or "")
    key = (str(provider.data_dir), provider._version("mechanisms", "events"), f.data_query())

    def build():
        df = provider.mechanisms(f, cap=None, columns=COLUMNS)
        # the sample key of drawn(), hashed once per selection instead of once per request
        df[HASH] = pd.util.hash_pandas_object(df["event_id"].astype(str), index=False).to_numpy()
        return df
    return _memo.get(key, build)


#: column of :func:`mechanisms` holding the sample key (pandas hash of the event id)
HASH = "_sample_hash"


def drawn(mechs: pd.DataFrame, cap: int) -> pd.DataFrame:
    """The rows drawn one by one: all of ``mechs``, or the fixed sample of ``cap`` rows with
    the smallest hash of the event id (the rule of :func:`components.stereonet.sample_rows`,
    the stereonets' sample: the same selection always draws the same rows), in their order."""
    if HASH not in mechs:
        return sample_rows(mechs, cap)
    if len(mechs) <= cap:
        return mechs
    keep = np.sort(np.argsort(mechs[HASH].to_numpy(), kind="stable")[:max(0, int(cap))])
    return mechs.iloc[keep]
