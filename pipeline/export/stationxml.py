"""The ``stations`` table as FDSN StationXML (an ObsPy ``Inventory``).

Mapping
-------
* one ``Network`` per ``network`` code, one ``Station`` per row: ``lat``, ``lon`` (deg),
  ``elevation_m`` (m, positive up; 0 when unknown);
* one ``Channel`` per (location, channel) the ``waveforms`` table has for the station,
  with its ``sampling_rate`` (Hz); a station without waveforms gets the vertical channel
  its ``polarities`` rows name, else the data set's most common vertical channel code
  (``HHZ`` if the tables name none) without a sample rate - so every station has at least
  its vertical;
* orientation in the SEED convention (dip positive DOWN from horizontal, azimuth from
  north): a vertical ``..Z`` has azimuth 0 and **dip -90** (positive recorded = ground
  motion up), or **dip +90** when ``stations.reversed`` is true (the sensor records
  ground motion up as negative: positive = down; all ToC2ME 5B verticals); horizontals
  ``..N``/``..1`` azimuth 0 and ``..E``/``..2`` azimuth 90, dip 0; depth 0 m (surface).
  A reversed vertical also carries a comment saying so.

No instrument response is written (the tables have none).
"""
from __future__ import annotations

import pandas as pd

__all__ = ["DEFAULT_VERTICAL", "channel_orientation", "stations_to_inventory"]

#: vertical channel code used when no table names any channel
DEFAULT_VERTICAL = "HHZ"
SOURCE = "pipeline.export (ToC2ME focal-mechanism workbench)"


def channel_orientation(channel: str, reversed_vertical: bool = False) -> tuple[float, float]:
    """(azimuth, dip) in degrees, SEED convention (dip positive down), of ``channel`` by its
    orientation letter; a vertical of a reversed station points down (dip +90)."""
    o = (channel or "Z")[-1:].upper()
    if o == "Z":
        return 0.0, (90.0 if reversed_vertical else -90.0)
    if o in ("E", "2"):
        return 90.0, 0.0
    return 0.0, 0.0


def _text(v) -> str:
    return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)


def stations_to_inventory(stations: pd.DataFrame, channels: pd.DataFrame | None = None,
                          verticals: pd.DataFrame | None = None, path_or_buffer=None):
    """Build (and with ``path_or_buffer`` write, ``format='STATIONXML'``) the ObsPy
    ``Inventory`` of ``stations`` (the ``stations`` table); see the module docstring.

    ``channels``: distinct ``network, station, location, channel, sampling_rate`` of the
    ``waveforms`` table; ``verticals``: distinct ``network, station, location, channel`` of
    the ``polarities`` table (the fallback vertical). Returns the ``Inventory``.
    """
    from obspy.core.inventory import Channel, Comment, Inventory, Network, Station

    key = ["network", "station"]
    ch = channels if channels is not None else pd.DataFrame(columns=[*key, "location", "channel", "sampling_rate"])
    vt = verticals if verticals is not None else pd.DataFrame(columns=[*key, "location", "channel"])
    ch = ch.assign(network=ch["network"].astype(str), station=ch["station"].astype(str),
                   location=ch["location"].map(_text) if "location" in ch else "", channel=ch["channel"].map(_text))
    vt = vt.assign(network=vt["network"].astype(str), station=vt["station"].astype(str),
                   location=vt["location"].map(_text) if "location" in vt else "", channel=vt["channel"].map(_text))
    vt = vt[vt["channel"].str.upper().str.endswith("Z")]
    codes = pd.concat([ch["channel"], vt["channel"]])
    codes = codes[codes.str.upper().str.endswith("Z")]
    default_z = codes.mode().iloc[0] if len(codes) else DEFAULT_VERTICAL
    ch_by = {k: g for k, g in ch.groupby(key)} if len(ch) else {}
    vt_by = {k: g for k, g in vt.groupby(key)} if len(vt) else {}

    inv = Inventory(networks=[], source=SOURCE)
    for net_code, rows in stations.groupby(stations["network"].astype(str), sort=True):
        net = Network(code=net_code)
        for r in rows.sort_values("station").to_dict("records"):
            sta_code = str(r["station"])
            lat, lon = float(r["lat"]), float(r["lon"])
            elev = r.get("elevation_m")
            elev = 0.0 if elev is None or pd.isna(elev) else float(elev)
            rev = bool(r.get("reversed")) if r.get("reversed") is not None and not pd.isna(r.get("reversed")) else False
            want = []  # (location, channel, sampling_rate or None)
            mine = ch_by.get((net_code, sta_code))
            if mine is not None:
                # one rate per channel: the most common (a table written by one build has one)
                for (loc, cha), g in mine.groupby(["location", "channel"], sort=True):
                    rates = pd.to_numeric(g["sampling_rate"], errors="coerce").dropna()
                    want.append((loc, cha, float(rates.mode().iloc[0]) if len(rates) else None))
            if not any(c.upper().endswith("Z") for _, c, _ in want):
                fallback = vt_by.get((net_code, sta_code))
                if fallback is not None and len(fallback):
                    loc, cha = fallback.sort_values(["location", "channel"]).iloc[0][["location", "channel"]]
                    want.append((loc, cha, None))
                else:
                    want.append(("", default_z, None))
            sta = Station(code=sta_code, latitude=lat, longitude=lon, elevation=elev)
            for loc, cha, rate in want:
                az, dip = channel_orientation(cha, rev)
                c = Channel(code=cha, location_code=loc, latitude=lat, longitude=lon, elevation=elev, depth=0.0,
                            azimuth=az, dip=dip, sample_rate=rate)
                if rev and cha.upper().endswith("Z"):
                    c.comments.append(Comment(
                        "polarity reversed: the sensor records ground motion up as negative (dip +90, positive "
                        "= down); the pipeline's polarities are true ground motion"))
                sta.channels.append(c)
            net.stations.append(sta)
        inv.networks.append(net)
    if path_or_buffer is not None:
        inv.write(path_or_buffer, format="STATIONXML")
    return inv
