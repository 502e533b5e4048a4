"""Polarities -> computed focal mechanisms (``source='computed'``) with SKHASH.

Which polarities go in (``picks``):

* ``auto`` (default): the best automatic picker present per event (:data:`AUTO_PREFERENCE`),
  with **manual picks overriding** it station by station (a manual 0 removes the station);
* ``published``: the published automatic picks (reproduces the published mechanisms);
* ``manual`` or any single method name: only that method.

Automatic picks need ``snr > snr_min`` (analyses.md 1.11 drops SNR <= 2); manual and
published picks are taken as the analyst/authors decided. Polarities are in the true-motion
convention already (station reversal applied at picking time), so nothing is flipped here.

Locations: SKHASH needs the location its takeoff angles are computed from. ``locations``
(event_id, lat, lon, depth_km) overrides the catalogue location per event; the ToC2ME
build passes the SKHASH/SAC-header solution where known, as the published run used it.

:func:`composite` pools the polarities of several events into one composite mechanism with
the same polarity and location choice (SKHASH's composite mode, per-ray geometry from each
ray's own event).
"""
from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from . import enrich, focal

log = logging.getLogger(__name__)

AUTO_PREFERENCE = ("cnn", "cct", "onset")
HUMAN_METHODS = ("manual", "published")
DEFAULT_SNR_MIN = 2.0


def pick_labels(chosen: pd.DataFrame) -> pd.Series:
    """Per event, the kinds of pick inverted, sorted and joined by ``;`` (e.g. ``cnn;review``):
    the ``method`` of each chosen polarity, except that a reviewed pick (merged in as a
    ``manual`` row with ``p_source == 'review'`` by :func:`pipeline.review.reviews.apply_reviews`)
    is called ``review``, as the event page's station table calls it."""
    label = chosen["method"].astype(str)
    if "p_source" in chosen:
        label = label.where(chosen["p_source"].astype(object).ne("review"), "review")
    return label.groupby(chosen["event_id"]).agg(lambda m: ";".join(sorted(set(m))))


def select_polarities(polarities: pd.DataFrame, picks: str = "auto", snr_min: float = DEFAULT_SNR_MIN) -> pd.DataFrame:
    """One polarity per (event, station) to invert, with a ``method`` column saying where
    each came from; undetermined (0) polarities are dropped."""
    pol = polarities.copy()
    automatic = ~pol["method"].isin(HUMAN_METHODS)
    low_snr = automatic & ~(pol["snr"].astype(float) > snr_min)
    pol = pol[~low_snr]
    key = ["event_id", "network", "station"]
    if picks == "auto":
        rank = {m: i for i, m in enumerate(AUTO_PREFERENCE)}
        auto = pol[pol["method"].isin(AUTO_PREFERENCE)].copy()
        auto["_rank"] = auto["method"].map(rank)
        best = auto.groupby("event_id")["_rank"].transform("min")
        auto = auto[auto["_rank"] == best].drop(columns="_rank")
        manual = pol[pol["method"] == "manual"]
        chosen = pd.concat([manual, auto[~auto.set_index(key).index.isin(manual.set_index(key).index)]])
    else:
        chosen = pol[pol["method"] == picks]
    chosen = chosen[chosen["polarity"] != 0]
    return chosen.sort_values(key).reset_index(drop=True)


def skhash_locations(published: pd.DataFrame | None) -> pd.DataFrame | None:
    """Locations SKHASH used for the published mechanisms (``*_skhash`` columns), if known."""
    if published is None or "lat_skhash" not in published:
        return None
    known = published.dropna(subset=["lat_skhash", "lon_skhash", "depth_km_skhash"]).drop_duplicates("event_id")
    return known[["event_id", "lat_skhash", "lon_skhash", "depth_km_skhash"]].set_axis(
        ["event_id", "lat", "lon", "depth_km"], axis=1)


def _locations(events: pd.DataFrame, locations: pd.DataFrame | None) -> pd.DataFrame:
    ev = events[["event_id", "time", "lat", "lon", "depth_km"]].copy()
    if locations is not None and len(locations):
        loc = locations.set_index("event_id")[["lat", "lon", "depth_km"]].dropna()
        idx = ev["event_id"].isin(loc.index)
        ev.loc[idx, ["lat", "lon", "depth_km"]] = loc.loc[ev.loc[idx, "event_id"]].to_numpy()
    return ev


def invert(events: pd.DataFrame, polarities: pd.DataFrame, stations: pd.DataFrame, velocity_model,
           picks: str = "auto", snr_min: float = DEFAULT_SNR_MIN, settings: dict | None = None,
           locations: pd.DataFrame | None = None, published: pd.DataFrame | None = None,
           workers: int | None = None, use_fortran: bool | None = None,
           timeout: float | None = None) -> dict[str, pd.DataFrame]:
    """Run SKHASH for every event with polarities; returns contract tables
    ``mechanisms`` (computed rows), ``mechanism_stations``, ``acceptable_planes``, ``unsolved``.

    ``published``: published mechanisms, for the Kagan angle of each computed mechanism to
    the published one of the same event, and - when ``locations`` is not given - for the
    location SKHASH used for them. Deterministic for any ``workers``. ``timeout``: per-event
    SKHASH limit, s (an event over it is ``unsolved`` with reason ``timeout: ...``).

    This is the one assembly of SKHASH's inputs (locations, polarity choice, overrides):
    the build's mechanism stage, the ``invert`` command and the dashboard's re-inversion all
    call it, so the same picks give the same mechanism whichever path runs them.
    """
    from . import skhash

    if locations is None:
        locations = skhash_locations(published)
    chosen = select_polarities(polarities, picks, snr_min)
    ev = _locations(events[events["event_id"].isin(chosen["event_id"])], locations)
    methods = pick_labels(chosen)
    workers = workers or os.cpu_count() or 1
    res = skhash.run_skhash_parallel(ev, chosen, stations, velocity_model, settings, workers=workers,
                                     use_fortran=use_fortran, acceptable_planes=True, timeout=timeout)
    log.info("SKHASH (%s) solved %d of %d events in %.1f s", res.engine, len(res.preferred), len(ev), res.seconds)

    mech = res.preferred.drop(columns=["strike2", "dip2", "rake2"])
    cat = events.set_index("event_id")
    extra = [c for c in ("time", "lat", "lon", "depth_km", "x_km", "y_km", "magnitude", "cluster") if c in cat]
    mech = mech.join(cat[extra], on="event_id")
    mech = mech.join(ev.set_index("event_id")[["lat", "lon", "depth_km"]]
                     .rename(columns=lambda c: f"{c}_skhash"), on="event_id")
    mech = enrich.complete_mechanisms(mech)
    mech["source"] = "computed"
    mech["picks"] = mech["event_id"].map(methods)
    mech["engine"] = res.engine
    mech["kagan_to_published"] = kagan_to_published(mech, published)

    pi = res.polinfo
    stations_used = pd.DataFrame({
        "event_id": pi["event_id"], "network": pi["network"], "station": pi["station"],
        "takeoff_deg": pi["takeoff"], "azimuth_deg": pi["azimuth"], "distance_km": pi["sr_dist_km"],
        "polarity": np.sign(pi["polarity"]).astype("int8"), "pol_agreement": pi["pol_agreement"].astype(bool),
    })
    acc = res.acceptable_planes if res.acceptable_planes is not None else pd.DataFrame(columns=["event_id", "strike", "dip", "rake"])
    unsolved = res.unsolved.assign(picks=lambda d: d["event_id"].map(methods))
    return {
        "mechanisms": mech,
        "mechanism_stations": stations_used,
        "acceptable_planes": acc[["event_id", "strike", "dip", "rake"]],
        "unsolved": unsolved[["event_id", "reason", "picks"]],
    }


def kagan_to_published(computed: pd.DataFrame, published: pd.DataFrame | None) -> pd.Series:
    """Kagan angle (deg) from each computed mechanism to the published one of its event;
    NaN where the event has no published mechanism."""
    out = pd.Series(np.nan, index=computed.index)
    if published is None or published.empty or computed.empty:
        return out
    pub = published[published["source"] == "published"].drop_duplicates("event_id").set_index("event_id")
    has = computed["event_id"].isin(pub.index)
    if has.any():
        c = computed[has]
        p = pub.loc[c["event_id"]]
        out[has] = focal.kagan_angle(
            (c["strike"].to_numpy(), c["dip"].to_numpy(), c["rake"].to_numpy()),
            (p["strike"].to_numpy(), p["dip"].to_numpy(), p["rake"].to_numpy()))
    return out


#: memory of SKHASH's pure-Python grid search per ray and trial (nmc), bytes: it holds arrays of
#: rays x trials x grid orientations (30,170 at the default 5 deg spacing); measured ~0.8 MB
#: (270 rays x 30 trials: 6.5 GB peak)
PYTHON_BYTES_PER_RAY_TRIAL = 0.85e6
#: largest estimated memory a composite may ask of the pure-Python grid search, bytes
PYTHON_MEMORY_LIMIT = 4e9


class CompositeTooLarge(ValueError):
    """A composite the pure-Python grid search could not hold in memory."""


def composite(events: pd.DataFrame, polarities: pd.DataFrame, stations: pd.DataFrame, velocity_model,
              picks: str = "auto", snr_min: float = DEFAULT_SNR_MIN, settings: dict | None = None,
              locations: pd.DataFrame | None = None, published: pd.DataFrame | None = None,
              use_fortran: bool | None = None, timeout: float | None = None,
              composite_id: str = "composite", python_memory_limit: float | None = None) -> dict:
    """One composite focal mechanism from the polarities of all ``events`` (SKHASH's
    composite mode, one SKHASH subprocess limited to ``timeout`` s).

    The polarities and locations are chosen exactly as :func:`invert` chooses them for a
    single event (:func:`select_polarities`, ``locations`` / the published SKHASH locations
    overriding the catalogue), so an event contributes the same rays to a composite as to its
    own mechanism. Each ray's azimuth and takeoff are computed by SKHASH from the location of
    the event that recorded it, then all rays are pooled in one grid search
    (:func:`pipeline.mechanisms.skhash.run_skhash` with ``composite=``).

    Returns a dict:

    * ``mechanism``: None when unsolved, else a dict with ``strike, dip, rake`` (plane 1, deg,
      Aki & Richards), ``strike2, dip2, rake2`` (auxiliary plane), ``quality`` (SKHASH A-D),
      ``fault_plane_uncertainty`` / ``aux_plane_uncertainty`` (deg), ``polarity_misfit``,
      ``prob_mech``, ``sta_distribution_ratio`` (percent), ``azimuthal_gap``, ``takeoff_gap``
      (deg), ``n_polarities`` (pooled polarities SKHASH used), ``n_events`` (member events
      that contributed at least one of them) and ``n_stations`` (distinct stations);
    * ``reason``: why it is unsolved (None when solved);
    * ``rays``: one row per pooled polarity: ``event_id`` (the member event), ``network,
      station, polarity`` (true ground motion, +1 up), ``takeoff_deg`` (**from the downward
      vertical**, 0 = down, > 90 = up-going), ``azimuth_deg`` (source -> station, clockwise
      from north), ``distance_km``, ``pol_agreement`` (agrees with the composite);
    * ``acceptable_planes``: ``strike, dip, rake`` of every acceptable plane SKHASH kept;
    * ``engine``, ``seconds``, ``log`` of the SKHASH run, ``n_input_events`` (events given
      with at least one chosen polarity).

    SKHASH trials: the events carry no location uncertainty (as in :func:`invert`), so all of
    SKHASH's ``nmc`` trials of an event would see the same rays and give the same planes;
    unless ``settings`` says otherwise a composite runs ``nmc=1`` (same result, checked on
    the demo selections, and a fraction of the time and memory).

    Raises :class:`pipeline.mechanisms.skhash.SkhashError` (``SkhashTimeout`` past
    ``timeout``) when SKHASH itself fails, and :class:`CompositeTooLarge` before running
    when the pure-Python grid search (no Fortran module, or ``use_fortran=False``) would need
    more than ``python_memory_limit`` bytes (default :data:`PYTHON_MEMORY_LIMIT`) (it keeps rays x trials x orientations in
    memory; the Fortran one does not).
    """
    from . import raytrace, skhash

    if locations is None:
        locations = skhash_locations(published)
    ids = set(events["event_id"].astype(str))
    pol = polarities[polarities["event_id"].astype(str).isin(ids)]
    chosen = select_polarities(pol, picks, snr_min)
    ev = _locations(events[events["event_id"].isin(chosen["event_id"])], locations)
    settings = dict(settings or {})
    settings.setdefault("nmc", 1)   # identical trials without location uncertainty (docstring)
    nmc = int(settings["nmc"])
    if use_fortran is False or (use_fortran is None and not skhash.fortran_available()):
        need = PYTHON_BYTES_PER_RAY_TRIAL * len(chosen) * nmc
        limit = PYTHON_MEMORY_LIMIT if python_memory_limit is None else float(python_memory_limit)
        if need > limit:
            raise CompositeTooLarge(
                f"{len(chosen)} polarities x {nmc} trial(s) would need ~{need / 1e9:.0f} GB in SKHASH's pure-Python "
                f"grid search (limit {limit / 1e9:.1f} GB): pool fewer events, or build the Fortran "
                "grid search with scripts/build_skhash_fortran.sh")
    res = skhash.run_skhash(ev, chosen, stations, velocity_model, settings, use_fortran=use_fortran,
                            acceptable_planes=True, timeout=timeout, composite=composite_id)
    pi = res.polinfo
    rays = pd.DataFrame({
        "event_id": pi["source_event_id"].astype(str), "network": pi["network"].astype(str),
        "station": pi["station"].astype(str), "polarity": np.sign(pi["polarity"].astype(float)).astype("int8"),
        "takeoff_deg": raytrace.convert_takeoff(pi["takeoff"].to_numpy(float), "up", "down"),
        "azimuth_deg": pi["azimuth"].astype(float), "distance_km": pi["sr_dist_km"].astype(float),
        "pol_agreement": pi["pol_agreement"].astype(bool),
    })
    pref = res.preferred
    out = {"mechanism": None, "reason": None, "rays": rays, "engine": res.engine, "seconds": res.seconds,
           "log": res.log, "n_input_events": int(ev["event_id"].nunique())}
    acc = res.acceptable_planes
    out["acceptable_planes"] = (acc[["strike", "dip", "rake"]].astype(float).reset_index(drop=True)
                                if acc is not None and len(acc) else pd.DataFrame(columns=["strike", "dip", "rake"]))
    if pref.empty:
        uns = res.unsolved
        out["reason"] = str(uns["reason"].iloc[0]) if len(uns) else "not solved by SKHASH"
        return out
    m = pref.iloc[0]
    mech = {k: float(m[k]) for k in ("strike", "dip", "rake", "strike2", "dip2", "rake2", "fault_plane_uncertainty",
                                     "aux_plane_uncertainty", "polarity_misfit", "prob_mech",
                                     "sta_distribution_ratio", "azimuthal_gap", "takeoff_gap")}
    mech.update(quality=str(m["quality"]), n_polarities=int(m["n_polarities"]),
                n_events=int(rays["event_id"].nunique()),
                n_stations=int(rays[["network", "station"]].drop_duplicates().shape[0]))
    out["mechanism"] = mech
    return out
