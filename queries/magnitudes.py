"""Queries of the magnitudes page (``pages/magnitudes.py``): two columns of every filtered
event, so the histograms, Mc and b of a selection of any size read nothing else."""
from __future__ import annotations

import pandas as pd

from components.filters import Filters


def event_magnitudes(provider, filters: Filters) -> pd.DataFrame:
    """``magnitude`` (float, NaN where unknown) and ``resolved`` (bool: the event has a
    mechanism in the filters' population) of every filtered event. Unordered; the same
    rows as ``provider.filtered_sql('events', filters)``."""
    sql, params = provider.filtered_sql("events", filters,
                                        "magnitude::DOUBLE AS magnitude, mechanism_source IS NOT NULL AS resolved")
    df = provider.query(sql, params)
    df["magnitude"] = df["magnitude"].astype(float)
    df["resolved"] = df["resolved"].astype(bool)
    return df
