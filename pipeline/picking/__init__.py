"""Event waveforms -> ``polarities`` (one row per event, station and picker) and ``waveforms``.

* :func:`load_picker` builds a picker by name: ``cnn`` (production, committed weights),
  ``onset`` (classical baseline), ``cct`` (the EQpolarity architecture; needs the user's
  published ``.h5`` weights - an untrained CCT is refused rather than used);
* :func:`pick_folders` runs pickers over every event folder under a ``waveforms/`` root;
  folder names are event ids and are matched to the catalogue by nearest origin time within
  0.5 s (the folder's id may differ from the catalogue's by hundredths of a second);
* :func:`pick_windows` runs pickers on windows already in memory (the demo scenario).

Every picker reports the probability that the *recorded* first motion is down; the station
reversal is applied once, in :func:`pipeline.picking.pickers.polarity_rows`.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.ingest.toc2me import nearest_time_join
from pipeline.rejects import Rejects
from . import waveforms as wf
from .pickers import known_stations, polarity_rows

log = logging.getLogger(__name__)

PICKERS = ("cnn", "onset", "cct")
STAGE = "picking"


def load_picker(name: str, weights: str | Path | None = None):
    """A picker object with ``predict(windows) -> prob_down_recorded`` and ``lower``/``upper``."""
    if name == "onset":
        from .pickers.onset import OnsetPicker
        picker = OnsetPicker()
        picker.lower, picker.upper = 0.25, 0.75  # it outputs 0, 0.5 (abstain) or 1
        return picker
    if name == "cnn":
        from .pickers import set_threads
        set_threads()
        from .pickers.cnn import CNNPicker
        return CNNPicker.load(weights) if weights else CNNPicker.load()
    if name == "cct":
        if weights is None:
            raise ValueError("the CCT picker needs the published EQpolarity weights (--weights FILE.h5); "
                             "an untrained CCT would return noise")
        from .pickers import REFERENCE_BAND, set_threads
        set_threads()
        from .pickers.cct import CCTPicker
        picker = CCTPicker(weights)
        picker.lower, picker.upper = REFERENCE_BAND
        return picker
    raise ValueError(f"unknown picker {name!r}; choose from {PICKERS}")


def event_time_from_id(event_ids) -> pd.DatetimeIndex:
    """Origin times (UTC) parsed from ids ``YYYYMMDDhhmmss.fff``; NaT where unparseable."""
    return pd.to_datetime(pd.Series(event_ids, dtype=str), format="%Y%m%d%H%M%S.%f", errors="coerce", utc=True)


def match_event_ids(ids, events: pd.DataFrame, tol_s: float = 0.5) -> pd.Series:
    """Catalogue ``event_id`` for each id (exact match first, else nearest time within
    ``tol_s``); NaN where none matches."""
    ids = pd.Series(list(ids), dtype=str)
    known = set(events["event_id"])
    out = ids.where(ids.isin(known))
    todo = out.isna()
    if todo.any():
        idx, _ = nearest_time_join(event_time_from_id(ids[todo]), events["time"])
        matched = np.where(idx >= 0, events["event_id"].to_numpy()[np.maximum(idx, 0)], None)
        out[todo] = matched
    return out


def pick_windows(meta: pd.DataFrame, windows: np.ndarray, stations: pd.DataFrame,
                 pickers: dict, rejects: Rejects | None = None) -> pd.DataFrame:
    """Polarity rows for windows (N, 600) described by ``meta`` (event_id, network,
    station, channel, snr, p_source), one block per picker in ``pickers`` (name -> picker).

    A window at a station missing from ``stations`` has no known reversal: with ``rejects``
    it becomes a reject (file = ``meta.file`` where given) and is not picked; without, it
    raises :class:`pipeline.picking.pickers.UnknownStationError`.
    """
    if rejects is not None and len(meta):
        known = known_stations(meta["network"].astype(str), meta["station"].astype(str), stations)
        for r in meta[~known].itertuples(index=False):
            rejects.add(str(getattr(r, "file", "") or r.event_id), None,
                        f"{r.network}.{r.station}: station not in the stations table (polarity reversal "
                        "unknown); not picked", stage=STAGE)
        meta, windows = meta[known].reset_index(drop=True), windows[known]
    rows = []
    for name, picker in pickers.items():
        p = picker.predict(windows)
        rows.append(polarity_rows(meta, p, name, picker.lower, picker.upper, stations,
                                  model_version=getattr(picker, "record", {}).get("weights_digest")))
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def pick_folders(root: str | Path, events: pd.DataFrame, stations: pd.DataFrame, pickers: dict,
                 rejects: Rejects, with_snippets: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(polarities, waveforms) for every event folder under ``root``.

    One bad trace never stops an event and one bad event never stops the batch: both
    become ``rejects`` rows. Folders whose id matches no catalogue event are rejected.
    """
    root = Path(root)
    folders = wf.list_event_folders(root)
    mapping = match_event_ids([f.name for f in folders], events)
    pol, snips = [], []
    for folder, event_id in zip(folders, mapping):
        if pd.isna(event_id):
            rejects.add(f"waveforms/{folder.name}", None, "folder id matches no catalogue event within 0.5 s", stage=STAGE)
            continue
        try:
            ev = wf.read_event(folder, rejects=rejects, root=root, event_id=event_id)
            meta, windows = wf.vertical_windows(ev, rejects)
            if len(meta):
                pol.append(pick_windows(meta, windows, stations, pickers, rejects))
            if with_snippets:
                snips.append(wf.snippets(ev, rejects=rejects))
        except Exception as exc:  # noqa: BLE001 - one bad event never stops the batch
            rejects.add(f"waveforms/{folder.name}", None, f"event not picked: {type(exc).__name__}: {exc}", stage=STAGE)
    log.info("picked %d event folders under %s", len(pol), root)
    polarities = pd.concat(pol, ignore_index=True) if pol else pd.DataFrame()
    waveforms = pd.concat(snips, ignore_index=True) if snips else pd.DataFrame(columns=list(wf.WAVEFORMS_COLUMNS))
    return polarities, waveforms


def windows_snr(windows: np.ndarray) -> np.ndarray:
    """SNR of P-aligned windows (P at index 299; noise = the window before P - 0.5 s)."""
    return np.array([wf.snr_samples(w, wf.P_INDEX) for w in windows])
