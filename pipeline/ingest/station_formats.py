"""Station metadata in standard formats: StationXML (ObsPy) or a plain CSV.

Sensor polarity is metadata, never a network code:

* StationXML: the vertical channel's ``dip`` (SEED convention: degrees **down** from the
  horizontal, so a sensor whose positive output is ground motion **up** has dip -90) - a
  dip of +90 means positive = down, i.e. the recorded vertical is inverted:
  ``reversed = True``. A station without a vertical channel with a dip is not reversed.
  Several epochs of one station: the latest (by start date) gives coordinates and dip.
* CSV ``network,station,lat,lon,elevation_m[,reversed]`` (``reversed``: true/false, 1/0,
  yes/no; empty = false).
* A sensor-polarity CSV ``network,station,reversed`` (:func:`read_sensor_polarity`: the
  ``reversed`` column alone, for a layout whose station list carries no polarity, such as
  ToC2ME's; every value must be given). Both CSVs read ``reversed`` with :func:`parse_reversed`.

Returns the ``stations`` table columns except the local ``x_km``/``y_km`` (added by the
caller once the frame is known).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError
from ..rejects import Rejects
from .catalog_formats import _csv_rows, _float, _rel, _xml_syntax_check

COLUMNS = ["network", "station", "lat", "lon", "elevation_m", "reversed"]
_TRUE = {"true": True, "1": True, "yes": True, "y": True, "t": True,
         "false": False, "0": False, "no": False, "n": False, "f": False, "": False}


def parse_reversed(text: str | None, allow_empty: bool = True) -> bool:
    """A ``reversed`` cell: true/1/yes/y/t or false/0/no/n/f (any case); empty = false where
    ``allow_empty``. Raises ValueError naming the value otherwise."""
    key = (text or "").strip().lower()
    if key not in _TRUE or (key == "" and not allow_empty):
        raise ValueError(f"reversed {text!r} is not true/false")
    return _TRUE[key]


def _vertical_dip(station) -> float | None:
    """Dip of the station's vertical channel (the one of the latest epoch), or None."""
    verticals = [c for c in station.channels
                 if c.dip is not None and (c.code.upper().endswith("Z") or abs(abs(float(c.dip)) - 90) < 1e-6)]
    if not verticals:
        return None
    verticals.sort(key=lambda c: c.start_date or 0)
    return float(verticals[-1].dip)


def read_stationxml(path: Path, rejects: Rejects, root: Path | None = None) -> pd.DataFrame:
    from obspy import read_inventory
    rel = _rel(path, root)
    _xml_syntax_check(path, rel)
    try:
        inv = read_inventory(str(path), format="STATIONXML")
    except Exception as exc:  # noqa: BLE001 - ObsPy raises many types for bad StationXML
        raise InputError(rel, f"not a StationXML inventory ({type(exc).__name__}: {exc})") from None
    latest: dict[tuple[str, str], tuple] = {}
    for net in inv:
        for sta in net:
            key = (net.code, sta.code)
            start = sta.start_date.ns if sta.start_date is not None else -1
            if key not in latest or start >= latest[key][0]:
                latest[key] = (start, sta)
    rows = []
    for (net, code), (_, sta) in sorted(latest.items()):
        if sta.latitude is None or sta.longitude is None:
            rejects.add(rel, None, f"station {net}.{code}: no coordinates")
            continue
        dip = _vertical_dip(sta)
        if dip is not None and abs(abs(dip) - 90) > 1e-6:
            rejects.add(rel, None, f"station {net}.{code}: vertical channel dip {dip} is neither -90 nor +90 "
                                   "(taken as not reversed)")
        rows.append({"network": net, "station": code, "lat": float(sta.latitude), "lon": float(sta.longitude),
                     "elevation_m": np.nan if sta.elevation is None else float(sta.elevation),
                     "reversed": bool(dip is not None and dip > 0)})
    return pd.DataFrame(rows, columns=COLUMNS)


def read_stations_csv(path: Path, rejects: Rejects, root: Path | None = None) -> pd.DataFrame:
    rel = _rel(path, root)
    _, rows = _csv_rows(path, rel, ["network", "station", "lat", "lon", "elevation_m"])
    out, seen = [], set()
    for n, raw, r in rows:
        try:
            if not r["station"]:
                raise ValueError("empty station code")
            rev = parse_reversed(r.get("reversed", ""))
            key = (r["network"], r["station"])
            if key in seen:
                raise ValueError(f"station {'.'.join(key)} listed twice (the first row is kept)")
            seen.add(key)
            out.append({"network": r["network"], "station": r["station"],
                        "lat": _float(r["lat"], "lat", -90, 90), "lon": _float(r["lon"], "lon", -180, 180),
                        "elevation_m": _float(r["elevation_m"], "elevation_m", -12000, 9000, optional=True),
                        "reversed": rev})
        except (ValueError, TypeError) as exc:
            rejects.add(rel, n, f"unusable station row: {exc}", ",".join(raw))
    return pd.DataFrame(out, columns=COLUMNS)


def read_sensor_polarity(path: Path, rejects: Rejects, root: Path | None = None) -> pd.DataFrame:
    """``network, station, reversed`` (bool) from a CSV with those columns (others, e.g. a
    ``source`` note, are ignored). Unlike the stations CSV, ``reversed`` must be stated on
    every row: a row without it, a bad value or a repeated station is a ``rejects`` row.
    Raises :class:`InputError` for an unreadable file or missing columns."""
    rel = _rel(path, root)
    _, rows = _csv_rows(path, rel, ["network", "station", "reversed"])
    out, seen = [], set()
    for n, raw, r in rows:
        try:
            if not r["station"]:
                raise ValueError("empty station code")
            key = (r["network"], r["station"])
            if key in seen:
                raise ValueError(f"station {'.'.join(key)} listed twice (the first row is kept)")
            out.append({"network": r["network"], "station": r["station"],
                        "reversed": parse_reversed(r["reversed"], allow_empty=False)})
            seen.add(key)
        except ValueError as exc:
            rejects.add(rel, n, f"unusable sensor polarity row: {exc}", ",".join(raw))
    return pd.DataFrame(out, columns=["network", "station", "reversed"]).astype({"reversed": bool})


def read_stations(path: Path, rejects: Rejects, root: Path | None = None) -> pd.DataFrame:
    """The stations of a StationXML (``.xml``) or CSV file; see the module docstring."""
    df = read_stations_csv(path, rejects, root) if path.suffix.lower() == ".csv" \
        else read_stationxml(path, rejects, root)
    if df.empty:
        raise InputError(_rel(path, root), "no usable station")
    df["reversed"] = df["reversed"].astype(bool)
    return df


__all__ = ["read_stations", "read_stationxml", "read_stations_csv", "read_sensor_polarity", "parse_reversed"]
