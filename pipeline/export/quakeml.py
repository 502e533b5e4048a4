"""A QuakeML 1.2 catalogue of events, focal mechanisms and P picks with first motions.

:func:`catalog_to_quakeml` extends the mechanism mapping of
:func:`pipeline.export.exports.mechanisms_to_quakeml` (origins, ML magnitudes, both nodal
planes, principal axes, SKHASH quality and uncertainties, unchanged) with

* events that have no mechanism (catalogue origin and magnitude only), and
* one ``Pick`` per event and station (:func:`pick_table`) with an ``Arrival`` in the
  preferred (catalogue) origin.

Pick mapping
------------
=====================  ===================================================================
QuakeML                from
=====================  ===================================================================
Pick publicID          ``smi:local/pick/<event_id>/<network>.<station>``
time                   ``polarities.p_time`` (UTC, microseconds) of the chosen row, else of
                       another row of the same station (every picker reads the same P)
waveformID             ``network.station.location.channel`` of that row
phaseHint              ``P``
polarity               ``positive`` (+1) / ``negative`` (-1): TRUE ground motion (station
                       reversal already applied), the polarity SKHASH uses:
                       :func:`pipeline.mechanisms.invert.select_polarities` with
                       ``picks='auto'`` (manual overrides the best automatic picker, whose
                       picks need SNR > 2); unset when no polarity is chosen
methodID               ``smi:local/method/<method>`` of the chosen row (``cnn``, ``onset``,
                       ``manual``, ``published``, ...)
evaluationMode         ``manual`` for ``manual``/``published``, else ``automatic``
Arrival publicID       ``smi:local/arrival/<event_id>/<network>.<station>``, in the preferred
                       origin: phase ``P``, ``pickID``, ``azimuth`` and ``takeoffAngle``
                       (deg) from ``mechanism_stations`` where SKHASH used the station
=====================  ===================================================================

A station whose chosen polarity has no P time anywhere gets no pick (QuakeML requires a
time): :func:`pick_table` counts those in ``attrs['untimed_polarities']``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..mechanisms.invert import AUTO_PREFERENCE, DEFAULT_SNR_MIN, HUMAN_METHODS, select_polarities
from . import exports
from .exports import _SMI, _num, _rid_part, _text

__all__ = ["PICK_COLUMNS", "catalog_to_quakeml", "pick_table"]

#: columns of :func:`pick_table`
PICK_COLUMNS = ["event_id", "network", "station", "location", "channel", "time", "polarity", "method",
                "evaluation_mode", "takeoff_deg", "azimuth_deg"]

#: which row's P time a station gets when its chosen row has none: humans first, then
#: the automatic pickers in the order SKHASH prefers them
_TIME_PREFERENCE = ("manual", "published", *AUTO_PREFERENCE)
_KEY = ["event_id", "network", "station"]


def _str_col(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df.columns:
        return pd.Series([None] * len(df), index=df.index, dtype=object)
    s = df[name].astype(object)
    return s.where(s.notna(), None)


def pick_table(polarities: pd.DataFrame, mechanism_stations: pd.DataFrame | None = None,
               snr_min: float = DEFAULT_SNR_MIN) -> pd.DataFrame:
    """One row per (event, network, station) that gets a ``Pick``: columns
    :data:`PICK_COLUMNS`; ``time`` UTC (tz-aware, microseconds), ``polarity`` +1/-1 in true
    ground motion or 0 (no polarity chosen: the pick carries a time only), ``method`` of
    the row it comes from, ``evaluation_mode`` ``manual``/``automatic``, ``takeoff_deg`` /
    ``azimuth_deg`` from ``mechanism_stations`` (NaN where SKHASH did not use the station).

    ``polarities``: rows of the ``polarities`` table (``p_time`` may be missing: then no
    pick has a time and none is made). The chosen polarity is
    ``select_polarities(polarities, 'auto', snr_min)``, the one SKHASH inverts.
    ``attrs['untimed_polarities']``: chosen polarities left out for lack of a P time.
    Ordered by event id, network, station.
    """
    pol = polarities.copy()
    for c in _KEY + ["method"]:
        pol[c] = pol[c].astype(str)
    pol["p_time"] = (pd.to_datetime(pol["p_time"], utc=True) if "p_time" in pol.columns
                     else pd.Series(pd.NaT, index=pol.index, dtype="datetime64[us, UTC]"))
    pol["location"] = _str_col(pol, "location")
    pol["channel"] = _str_col(pol, "channel")
    if "snr" not in pol.columns:
        pol["snr"] = np.nan

    chosen = select_polarities(pol, "auto", snr_min) if len(pol) else pol.iloc[:0]
    chosen = chosen[_KEY + ["polarity", "method", "p_time", "location", "channel"]]

    rank = {m: i for i, m in enumerate(_TIME_PREFERENCE)}
    timed = pol[pol["p_time"].notna()].assign(_rank=lambda d: d["method"].map(rank).fillna(len(rank)))
    timed = (timed.sort_values([*_KEY, "_rank", "method"], kind="stable")
             .drop_duplicates(_KEY)[_KEY + ["p_time", "method", "location", "channel"]])

    out = timed.merge(chosen, on=_KEY, how="outer", suffixes=("_any", ""))
    has_choice = out["polarity"].notna()
    time = out["p_time"].where(out["p_time"].notna(), out["p_time_any"])
    untimed = int((has_choice & time.isna()).sum())
    out = out.assign(time=time)
    for c in ("method", "location", "channel"):
        own = out[c].where(has_choice, None)
        out[c] = own.where(own.notna(), out[f"{c}_any"])
    out = out[out["time"].notna()].copy()
    out["polarity"] = out["polarity"].fillna(0).astype("int8")
    out["evaluation_mode"] = np.where(out["method"].isin(HUMAN_METHODS), "manual", "automatic")

    ms = mechanism_stations
    if ms is not None and len(ms):
        ms = ms.assign(**{c: ms[c].astype(str) for c in _KEY}).drop_duplicates(_KEY)
        out = out.merge(ms[_KEY + ["takeoff_deg", "azimuth_deg"]], on=_KEY, how="left")
    else:
        out["takeoff_deg"] = np.nan
        out["azimuth_deg"] = np.nan
    out = out[PICK_COLUMNS].sort_values(_KEY, kind="stable").reset_index(drop=True)
    out["takeoff_deg"] = out["takeoff_deg"].astype(float)
    out["azimuth_deg"] = out["azimuth_deg"].astype(float)
    out.attrs["untimed_polarities"] = untimed
    return out


def _add_picks(ev, event_id: str, picks: pd.DataFrame) -> None:
    """Append ``picks`` (rows of :func:`pick_table` for ``event_id``) to the ObsPy event
    ``ev`` as ``Pick`` objects with an ``Arrival`` each in its preferred origin."""
    from obspy import UTCDateTime
    from obspy.core.event import Arrival, Pick, ResourceIdentifier, WaveformStreamID

    origin = ev.preferred_origin() or ev.origins[0]
    rid = _rid_part(event_id)
    for r in picks.itertuples(index=False):
        sid = f"{_rid_part(r.network)}.{_rid_part(r.station)}"
        pick = Pick(
            resource_id=ResourceIdentifier(f"{_SMI}/pick/{rid}/{sid}"),
            time=UTCDateTime(ns=int(pd.Timestamp(r.time).value)),
            waveform_id=WaveformStreamID(network_code=str(r.network), station_code=str(r.station),
                                         location_code=_text(r.location) or "",
                                         channel_code=_text(r.channel)),
            phase_hint="P",
            method_id=ResourceIdentifier(f"{_SMI}/method/{_rid_part(r.method)}"),
            evaluation_mode=r.evaluation_mode,
        )
        if r.polarity > 0:
            pick.polarity = "positive"
        elif r.polarity < 0:
            pick.polarity = "negative"
        ev.picks.append(pick)
        origin.arrivals.append(Arrival(
            resource_id=ResourceIdentifier(f"{_SMI}/arrival/{rid}/{sid}"), pick_id=pick.resource_id,
            phase="P", azimuth=_num(r.azimuth_deg), takeoff_angle=_num(r.takeoff_deg)))


def _catalogue_values(mechanisms: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``mechanisms`` with time, location, magnitude and cluster taken from the catalogue
    row of their event where there is one (so an event reads the same whether or not it
    has a mechanism)."""
    cols = [c for c in ("time", "lat", "lon", "depth_km", "magnitude", "cluster") if c in events.columns]
    if mechanisms.empty or not cols:
        return mechanisms
    cat = events.drop_duplicates("event_id")
    cat = cat.set_index(cat["event_id"].astype(str))[cols]
    m = mechanisms.copy()
    ids = m["event_id"].astype(str)
    known = ids.isin(cat.index).to_numpy()
    for c in cols:
        if c not in m.columns:
            m[c] = None
        vals = cat[c].reindex(ids[known]).to_numpy()
        m[c] = m[c].astype(object)
        m.loc[known, c] = vals
    return m


def catalog_to_quakeml(events: pd.DataFrame, mechanisms: pd.DataFrame, picks: pd.DataFrame | None = None,
                       path_or_buffer=None, creation_info=None, *, validate: bool = False):
    """Write events, their focal mechanisms and P picks as one QuakeML 1.2 file.

    ``events``: catalogue rows (``event_id``, ``time``, ``lat``, ``lon``, ``depth_km`` km,
    ``magnitude`` ML, ``cluster``), one ``Event`` each, in their order; ``mechanisms``:
    rows of the ``mechanisms`` table (mapped by
    :func:`~pipeline.export.exports.mechanisms_to_quakeml`, origin values taken from the
    catalogue row); an event only they name is appended after the catalogue events.
    ``picks``: :func:`pick_table` rows (None = no picks). ``path_or_buffer``: file path or
    binary buffer (None = build only). Returns the ObsPy ``Catalog``.
    """
    from obspy.core.event import Catalog, ResourceIdentifier

    events = events.copy()
    events["event_id"] = events["event_id"].astype(str)
    events = events.drop_duplicates("event_id")
    mech = _catalogue_values(mechanisms.reset_index(drop=True), events)
    with_mech = {}
    if len(mech):
        mcat = exports.mechanisms_to_quakeml(mech, None, creation_info)
        with_mech = {e.resource_id.id: e for e in mcat}

    cat = Catalog(resource_id=ResourceIdentifier(f"{_SMI}/catalog/export"),
                  description="Events, focal mechanisms and P first-motion picks, pipeline.export",
                  creation_info=exports._creation_info(creation_info))
    by_id = {}
    for row in events.to_dict("records"):
        eid = row["event_id"]
        ev = with_mech.pop(f"{_SMI}/event/{_rid_part(eid)}", None) or exports.event_shell(eid, row)
        cat.events.append(ev)
        by_id[eid] = ev
    for ev in with_mech.values():  # mechanisms of events the catalogue rows do not have
        cat.events.append(ev)
        by_id[ev.resource_id.id.rsplit("/", 1)[1]] = ev

    if picks is not None and len(picks):
        for eid, rows in picks.groupby(picks["event_id"].astype(str), sort=False):
            ev = by_id.get(eid) or by_id.get(_rid_part(eid))
            if ev is not None:
                _add_picks(ev, eid, rows)
    if path_or_buffer is not None:
        cat.write(path_or_buffer, format="QUAKEML", validate=validate)
    return cat
