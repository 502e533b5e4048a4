"""Published, reference-model and manual polarity picks of a ToC2ME-like ``picks/`` folder.

Sign conventions (ToC2ME README 3.4), each converted to true ground motion exactly once:

* ``pol_hash_auto/*.pol.hash`` -> method ``published``: already **corrected** (true motion);
* ``manual/*.pol.hash`` -> method ``manual``: signs **as recorded**; the station reversal
  (:func:`pipeline.picking.pickers.apply_station_reversal`) turns them into true motion;
* ``eqpolarity_raw/*.polarity`` -> method ``reference``: the published model's probability
  that the **recorded** first motion is down; decided with its fixed 0.05/0.95 cut-offs, then
  the reversal is applied; ``nan`` (dead trace) rows become rejects;
* ``snr/*.csv``: SNR per (event, station), attached to the reference and published rows.

The ``.pol.hash`` header line also gives the location SKHASH used (solution A), returned as
``locations`` for the inversion.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.picking.pickers import REFERENCE_BAND, apply_station_reversal, known_stations, recorded_polarity
from pipeline.rejects import Rejects

NETWORK = "5B"
COLUMNS = ["event_id", "network", "station", "channel", "method", "polarity", "prob_down_recorded", "snr", "p_source"]


def read_pol_hash(path: Path, rejects: Rejects, rel: str):
    """(header dict, rows DataFrame[station, sign, line]) of one ``.pol.hash`` file."""
    lines = path.read_text().splitlines()
    if not lines:
        raise InputError(rel, "empty polarity file")
    head = lines[0].split()
    try:
        header = {"event_id": head[11], "lat": float(head[6]), "lon": float(head[7]), "depth_km": float(head[8])}
    except (IndexError, ValueError):
        raise InputError(rel, f"unreadable header line: {lines[0]!r}", line=1) from None
    rows = []
    for i, text in enumerate(lines[1:], start=2):
        parts = text.split()
        if not parts:
            continue
        if len(parts) < 2 or parts[1] not in ("+", "-"):
            rejects.add(rel, i, "polarity must be '+' or '-' after the station code", text)
            continue
        rows.append({"station": parts[0], "sign": 1 if parts[1] == "+" else -1, "line": i})
    return header, pd.DataFrame(rows, columns=["station", "sign", "line"])


def _read_snr(picks_dir: Path, rejects: Rejects) -> pd.DataFrame:
    frames = []
    for path in sorted((picks_dir / "snr").glob("*.csv")):
        df = pd.read_csv(path, dtype={"Event_ID": str, "Station_ID": str})
        frames.append(df.rename(columns={"Event_ID": "event_id", "Station_ID": "station", "SNR": "snr"}))
    if not frames:
        return pd.DataFrame(columns=["event_id", "station", "snr"])
    snr = pd.concat(frames).drop_duplicates(["event_id", "station"])
    snr["snr"] = pd.to_numeric(snr["snr"], errors="coerce")
    return snr


def _read_reference(picks_dir: Path, rejects: Rejects) -> pd.DataFrame:
    rows = []
    for path in sorted((picks_dir / "eqpolarity_raw").glob("*.polarity")):
        rel = f"picks/eqpolarity_raw/{path.name}"
        event_id = path.name[: -len(".polarity")]
        for i, text in enumerate(path.read_text().splitlines(), start=1):
            parts = text.split()
            if not parts:
                continue
            try:
                p = float(parts[6])
            except (IndexError, ValueError):
                rejects.add(rel, i, "expected 7 columns ending with a probability", text)
                continue
            if np.isnan(p):
                rejects.add(rel, i, "no model output (dead trace)", text)
                continue
            if not 0.0 <= p <= 1.0:
                rejects.add(rel, i, f"probability {p} outside 0..1", text)
                continue
            rows.append({"event_id": event_id, "station": parts[0], "prob_down_recorded": p,
                         "file": rel, "line": i})
    df = pd.DataFrame(rows, columns=["event_id", "station", "prob_down_recorded", "file", "line"])
    df["polarity_recorded"] = recorded_polarity(df["prob_down_recorded"], *REFERENCE_BAND)
    df["method"] = "reference"
    return df


def _known(rows: pd.DataFrame, stations: pd.DataFrame, rejects: Rejects) -> pd.DataFrame:
    """``rows`` at stations of the stations table; the others become rejects (their
    reversal, hence their true polarity, is unknown)."""
    ok = known_stations(rows["network"], rows["station"], stations)
    for r in rows[~ok].itertuples(index=False):
        rejects.add(r.file, None if pd.isna(r.line) else int(r.line),
                    f"station {r.network}.{r.station} is not in the stations table", r.station)
    return rows[ok].reset_index(drop=True)


def load_picks(picks_dir: str | Path, stations: pd.DataFrame,
               rejects: Rejects | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(polarities table rows, locations[event_id, lat, lon, depth_km]) from ``picks_dir``.

    ``stations``: the stations table, whose ``reversed`` flags turn recorded signs into true
    motion; a pick at a station missing from it is a reject. Missing sub-folders are simply
    absent sources (a data set may have no manual picks).
    """
    picks_dir = Path(picks_dir)
    rejects = rejects if rejects is not None else Rejects()
    recorded, true_rows, locations = [], [], []
    for sub, method in (("pol_hash_auto", "published"), ("manual", "manual")):
        for path in sorted((picks_dir / sub).glob("*.pol.hash")):
            rel = f"picks/{sub}/{path.name}"
            header, rows = read_pol_hash(path, rejects, rel)
            locations.append(header)
            dup = rows.duplicated("station", keep="first")
            for r in rows[dup].itertuples():
                rejects.add(rel, r.line, "station listed twice; first kept", r.station)
            rows = rows[~dup].assign(event_id=header["event_id"], method=method, file=rel)
            if method == "published":  # already true motion
                true_rows.append(rows.rename(columns={"sign": "polarity"}))
            else:
                recorded.append(rows.rename(columns={"sign": "polarity_recorded"}))
    recorded.append(_read_reference(picks_dir, rejects))
    rec = pd.concat(recorded, ignore_index=True).assign(network=NETWORK)
    rec = apply_station_reversal(_known(rec, stations, rejects), stations) \
        .drop(columns=["polarity_recorded", "reversed"])
    rec.attrs.clear()
    pol = pd.concat([rec] + [_known(t.assign(network=NETWORK), stations, rejects) for t in true_rows],
                    ignore_index=True)
    snr = _read_snr(picks_dir, rejects)
    pol = pol.merge(snr, on=["event_id", "station"], how="left")
    pol.loc[pol["method"] == "manual", "snr"] = np.nan  # the analyst decided, not the SNR rule
    pol["channel"] = "DHZ"
    pol["p_source"] = None
    pol["polarity"] = pol["polarity"].astype("int8")
    for col in COLUMNS:
        if col not in pol:
            pol[col] = np.nan
    loc = pd.DataFrame(locations, columns=["event_id", "lat", "lon", "depth_km"]).drop_duplicates("event_id")
    return pol[COLUMNS].sort_values(["event_id", "method", "station"]).reset_index(drop=True), loc
