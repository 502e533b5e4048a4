"""First-motion polarity pickers and the one place where station reversal is applied.

Every picker has ``predict(windows) -> prob_down_recorded``:

* ``windows``: float32 array (N, 600), raw 500 Hz vertical samples with P at index 299
  (:func:`pipeline.picking.waveforms.p_window`);
* ``prob_down_recorded``: float array (N,), the probability that the first motion **as
  recorded** is down (the EQpolarity convention: label 1 = down, 0 = up).

Conversion to the true ground-motion polarity of the ``polarities`` table happens once, in
:func:`to_true_polarity` (arrays) or :func:`apply_station_reversal` (tables, guarded against
being applied twice)::

    recorded = -1 if p >= upper, +1 if p <= lower, else 0     (recorded down -> -1)
    true     = -recorded if the station is reversed else recorded

Whether a station is reversed is metadata, never a network code: the ``stations`` table's
``reversed`` column (from StationXML dip +90, a CSV ``reversed`` column, or for ToC2ME its
shipped sensor-polarity file, where every 5B vertical is recorded inverted, README 3.4).

Pickers: :mod:`.onset` (classical baseline), :mod:`.cct` (the EQpolarity reference
architecture), :mod:`.cnn` (the production picker), thresholds from :mod:`.calibration`.
TensorFlow is imported only by the modules that need it (``cct``, ``cnn``).
"""
from __future__ import annotations

import os
from typing import Protocol

import numpy as np
import pandas as pd

#: the reference pipeline's fixed confidence cut-offs (p <= 0.05 or p >= 0.95)
REFERENCE_BAND = (0.05, 0.95)


class Picker(Protocol):
    name: str

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """prob_down_recorded (N,) for raw windows (N, 600) with P at index 299."""


def recorded_polarity(prob_down_recorded, lower: float = 0.05, upper: float = 0.95) -> np.ndarray:
    """Recorded first-motion sign from probabilities: -1 (down) if p >= upper, +1 (up) if
    p <= lower, 0 (undetermined) in between or for NaN.  int8 array."""
    p = np.asarray(prob_down_recorded, dtype=np.float64)
    if not 0.0 <= lower <= 0.5 <= upper <= 1.0 or lower >= upper:
        raise ValueError(f"need 0 <= lower <= 0.5 <= upper <= 1 and lower < upper, got {lower}, {upper}")
    out = np.zeros(p.shape, dtype=np.int8)
    with np.errstate(invalid="ignore"):
        out[p >= upper] = -1
        out[p <= lower] = 1
    return out


def to_true_polarity(prob_down_recorded, reversed, lower: float = 0.05, upper: float = 0.95) -> np.ndarray:
    """True ground-motion polarity (+1 up, -1 down, 0 undetermined), int8.

    ``reversed``: bool (scalar or per trace), True where the station records inverted
    polarity.  The reversal is applied here exactly once; do not flip the result again.
    """
    rec = recorded_polarity(prob_down_recorded, lower, upper)
    rev = np.broadcast_to(np.asarray(reversed, dtype=bool), rec.shape)
    return np.where(rev, -rec, rec).astype(np.int8)


class UnknownStationError(KeyError):
    """A station is not in the stations table, so its polarity reversal is unknown."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def station_reversed(network, station, stations: pd.DataFrame) -> np.ndarray:
    """Reversal flags (bool array) for (network, station) arrays, looked up in ``stations``
    (columns network, station, reversed).

    There is no default: a station missing from the table raises
    :class:`UnknownStationError` naming it (callers that read input data drop such rows as
    rejects first, see :func:`known_stations`).
    """
    if stations is None:
        raise TypeError("station_reversed needs the stations table (network, station, reversed)")
    net = np.atleast_1d(np.asarray(network, dtype=object)).astype(str)
    sta = np.atleast_1d(np.asarray(station, dtype=object)).astype(str)
    lut = _reversal_lookup(stations)
    try:
        return np.array([lut[k] for k in zip(net, sta)], dtype=bool)
    except KeyError as exc:
        n, s = exc.args[0]
        raise UnknownStationError(f"station {n}.{s} is not in the stations table: its polarity reversal "
                                  "is unknown") from None


def _reversal_lookup(stations: pd.DataFrame) -> dict[tuple[str, str], bool]:
    return {(str(n), str(s)): bool(r) for n, s, r in
            stations[["network", "station", "reversed"]].itertuples(index=False)}


def known_stations(network, station, stations: pd.DataFrame) -> np.ndarray:
    """Bool mask: True where (network, station) is in ``stations`` (so its reversal is known)."""
    lut = _reversal_lookup(stations)
    return np.array([(str(n), str(s)) in lut for n, s in zip(np.atleast_1d(network), np.atleast_1d(station))],
                    dtype=bool)


REVERSAL_FLAG = "station_reversal_applied"


def apply_station_reversal(df: pd.DataFrame, stations: pd.DataFrame) -> pd.DataFrame:
    """Add the true ``polarity`` (and ``reversed``) to a table of recorded polarities.

    ``df`` needs ``network``, ``station`` and ``polarity_recorded`` (+1 recorded up, -1
    recorded down, 0 undetermined); ``stations`` the stations table (every station of ``df``
    must be in it, :func:`station_reversed`).  Raises if the reversal was already applied (a
    ``polarity`` column exists or the table carries the flag), so it cannot happen twice.
    """
    if REVERSAL_FLAG in df.attrs or "polarity" in df.columns:
        raise ValueError("station reversal already applied to this table (it must happen exactly once)")
    out = df.copy()
    rev = station_reversed(out["network"].to_numpy(), out["station"].to_numpy(), stations)
    rec = out["polarity_recorded"].to_numpy().astype(np.int8)
    out["reversed"] = rev
    out["polarity"] = np.where(rev, -rec, rec).astype(np.int8)
    out.attrs[REVERSAL_FLAG] = True
    return out


#: columns :func:`polarity_rows` writes: ``schema.POLARITIES`` plus extras (location,
#: polarity_recorded, probability, model_version, lower, upper, reversed)
POLARITIES_COLUMNS = ("event_id", "network", "station", "location", "channel", "polarity",
                      "polarity_recorded", "prob_down_recorded", "probability", "method",
                      "model_version", "lower", "upper", "reversed", "snr", "p_source", "p_time")


def polarity_rows(meta: pd.DataFrame, prob_down_recorded, method: str, lower: float, upper: float,
                  stations: pd.DataFrame, model_version: str | None = None) -> pd.DataFrame:
    """Rows of the ``polarities`` table from window metadata and a picker's output.

    ``meta``: as returned by :func:`pipeline.picking.waveforms.vertical_windows` (event_id, network,
    station, location, channel, snr, p_source, p_time).  ``probability`` is the picker's confidence
    in the sign it reports, ``max(p, 1 - p)`` (0.5 for the onset baseline's abstentions).
    The station reversal is applied here, once.
    """
    p = np.asarray(prob_down_recorded, dtype=np.float64)
    df = pd.DataFrame({
        "event_id": meta["event_id"].astype(str).to_numpy(),
        "network": meta["network"].astype(str).to_numpy(),
        "station": meta["station"].astype(str).to_numpy(),
        "location": meta["location"].astype(str).to_numpy() if "location" in meta else "",
        "channel": meta["channel"].astype(str).to_numpy(),
        "polarity_recorded": recorded_polarity(p, lower, upper),
        "prob_down_recorded": p,
        "probability": np.maximum(p, 1 - p),
        "method": method,
        "model_version": model_version,
        "lower": float(lower),
        "upper": float(upper),
        "snr": meta["snr"].to_numpy(dtype=np.float64) if "snr" in meta else np.nan,
        "p_source": meta["p_source"].to_numpy() if "p_source" in meta else None,
        # the tables store microseconds (a 500 Hz sample is 2,000 us)
        "p_time": pd.to_datetime(meta["p_time"], utc=True).dt.round("us").array if "p_time" in meta
        else pd.array([pd.NaT] * len(meta), dtype="datetime64[ns, UTC]"),
    })
    df = apply_station_reversal(df, stations)
    return df[list(POLARITIES_COLUMNS)]


def set_threads(n: int | None = None) -> None:
    """Limit TensorFlow/OpenMP threads (call before TensorFlow runs its first op)."""
    n = int(n or os.environ.get("PICKER_THREADS", 2))
    os.environ.setdefault("OMP_NUM_THREADS", str(n))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(n))
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
    import tensorflow as tf
    try:
        tf.config.threading.set_intra_op_parallelism_threads(n)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # runtime already initialised: keep its settings
        pass


__all__ = ["Picker", "REFERENCE_BAND", "POLARITIES_COLUMNS", "UnknownStationError", "recorded_polarity",
           "to_true_polarity", "station_reversed", "known_stations", "apply_station_reversal", "polarity_rows",
           "set_threads"]
