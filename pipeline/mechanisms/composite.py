"""Composite focal mechanism of a selection of events (the dashboard's filters) with SKHASH.

A composite mechanism is one double couple fitted to the P polarities of *several* events
at once, on the assumption that they share a mechanism (small events of one fault, each
with too few polarities of its own). SKHASH supports it natively: polarity rows carry the
composite's id in ``event_id`` and their own event's id in ``event_id2``; SKHASH computes
each ray's source-receiver azimuth, distance and takeoff from the location of the event
that recorded it and then runs one grid search over all rays
(:func:`pipeline.mechanisms.skhash.run_skhash` with ``composite=``).

What goes in
------------
* **Events**: the filtered ``events`` rows (cluster, group, quality, time window, magnitude:
  :meth:`components.data.DataProvider.filtered_sql`, the same rows as the dashboard's map)
  that have at least one row in ``polarities`` or a reviewed pick (other than "drop");
  at most ``max_events`` of them, the largest
  magnitudes first (ties by event id) - the cost of SKHASH's grid search grows with the
  number of rays, and SKHASH's Fortran grid search takes at most 15,000 rays per event.
* **Polarities**: per event, the polarities SKHASH inverts for that event's own computed
  mechanism (:func:`pipeline.mechanisms.invert.select_polarities` with ``picks``, default
  ``auto``: the best automatic picker, manual picks overriding it station by station, with
  the dashboard's reviewed picks merged over the batch manual picks). True ground-motion
  polarity (+1 up), station reversals already applied.
* **Locations**: the SKHASH locations of the published mechanisms where known (as the
  batch inversion uses them), else the catalogue location; SKHASH settings
  :data:`pipeline.mechanisms.skhash.DEFAULT_SETTINGS` (npolmin then applies to the pooled
  polarities) except ``nmc=1``: without location uncertainties SKHASH's trials are
  identical (see :func:`pipeline.mechanisms.invert.composite`).
* **Memory**: SKHASH's Fortran grid search needs little; its pure-Python one keeps
  rays x trials x ~30,000 orientations (~0.85 MB per ray): a composite it could not hold in
  4 GB is refused before it runs (exit 2, "pool fewer events").

:func:`composite_of_selection` returns :func:`pipeline.mechanisms.invert.composite`'s dict
plus ``n_selected`` (filtered events with polarities before the cap) and ``max_events``;
:func:`summary` is the command's JSON object. Command::

    python -m pipeline composite --data-dir DIR [--cluster NAME] [--group G] [--start T --end T]
                                 [--query URL_QUERY] [--max-events N] [--timeout S]

prints a short report and, as its last line, one JSON object (``strike, dip, rake`` of
plane 1 in degrees, Aki & Richards; ``quality``; ``n_events``; ``n_polarities`` ...).
An empty selection or one SKHASH cannot solve exits with status 2 (``error: ...``).
"""
from __future__ import annotations

import json
import math

import pandas as pd

from pipeline.errors import InputError
from queries import composite as compq

#: most events pooled into one composite by default (largest magnitudes first)
DEFAULT_MAX_EVENTS = 200
#: default SKHASH time limit of one composite, s
DEFAULT_TIMEOUT_S = 120.0
#: tables a composite needs
TABLES = ("events", "polarities", "stations", "velocity_model")
COMPOSITE_ID = "composite"

__all__ = ["composite_of_selection", "summary", "add_cli", "DEFAULT_MAX_EVENTS", "DEFAULT_TIMEOUT_S"]


def composite_of_selection(provider, filters, *, max_events: int = DEFAULT_MAX_EVENTS, picks: str = "auto",
                           snr_min: float | None = None, timeout: float | None = DEFAULT_TIMEOUT_S,
                           use_fortran: bool | None = None, reviews: pd.DataFrame | None = None,
                           python_memory_limit: float | None = None) -> dict:
    """The composite mechanism of the events ``filters`` selects (see the module docstring).

    ``provider``: a :class:`components.data.DataProvider`; ``filters``: a
    :class:`components.filters.Filters`. ``reviews``: the reviewed picks to merge (default:
    those of the data folder's review database, read-only). Raises :class:`InputError` when
    a table is missing or no selected event has polarities;
    :class:`pipeline.mechanisms.skhash.SkhashError` when SKHASH fails or runs over
    ``timeout`` s, and :class:`InputError` too when the pure-Python grid search would need more
    than ``python_memory_limit`` bytes (default
    :data:`pipeline.mechanisms.invert.PYTHON_MEMORY_LIMIT`). An unsolved composite is
    returned with ``mechanism`` None and ``reason``.
    """
    from pipeline.review.reviews import apply_reviews, manual_polarities

    from . import invert

    data_dir = provider.data_dir
    missing = provider.missing_tables(TABLES)
    if missing:
        raise InputError(data_dir, f"no {', '.join(missing)} table(s) here: a composite mechanism needs polarities, "
                                   f"stations and the velocity model (build with `python -m pipeline build`)")
    max_events = int(max_events)
    if max_events < 1:
        raise InputError(data_dir, f"max_events must be at least 1, not {max_events}")
    if reviews is None:
        reviews = manual_polarities(data_dir)
    # an event whose only polarities are reviewed picks (no batch row) is pooled too
    reviewed_ids = reviews.loc[reviews["polarity"] != 0, "event_id"].astype(str).unique() if len(reviews) else ()
    events = compq.events_with_polarities(provider, filters, cap=max_events, also=reviewed_ids)
    if events.empty:
        raise InputError(data_dir, "no event of this selection has polarities, so there is nothing to pool into a "
                                   "composite mechanism (widen the selection)")
    ids = events["event_id"].astype(str).tolist()
    pol = compq.rows_of_events(provider, "polarities", ids)
    if len(reviews):
        pol = apply_reviews(pol, reviews[reviews["event_id"].astype(str).isin(ids)])
    mech = compq.rows_of_events(provider, "mechanisms", ids)
    published = mech[mech["source"] == "published"] if len(mech) else None
    vm = provider.velocity_model()
    if vm.empty:
        raise InputError(data_dir, "the velocity_model table is empty: SKHASH needs a 1-D P model")
    try:
        res = invert.composite(events, pol, provider.stations(), vm[["depth_km", "vp_km_s"]], picks=picks,
                               snr_min=invert.DEFAULT_SNR_MIN if snr_min is None else float(snr_min),
                               published=published if published is not None and len(published) else None,
                               use_fortran=use_fortran, timeout=timeout, composite_id=COMPOSITE_ID,
                               python_memory_limit=python_memory_limit)
    except invert.CompositeTooLarge as exc:
        raise InputError(data_dir, f"{exc} (e.g. --max-events {max(1, max_events // 4)})") from exc
    res["n_selected"] = int(events.attrs.get("matched", len(events)))
    res["max_events"] = max_events
    res["event_ids"] = ids
    return res


def _r(v, nd=1):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else round(float(v), nd)


def summary(res: dict) -> dict:
    """The command's JSON object of a solved composite: ``strike, dip, rake`` (plane 1) and
    ``strike2, dip2, rake2`` (deg), ``quality``, ``n_events`` (events contributing rays),
    ``n_polarities``, ``n_stations``, uncertainties/misfit as SKHASH reports them,
    ``n_acceptable_planes``, ``n_selected_events`` (filtered events with polarities),
    ``max_events``, ``engine``, ``seconds``."""
    m = res["mechanism"]
    out = {k: _r(m[k]) for k in ("strike", "dip", "rake", "strike2", "dip2", "rake2")}
    out.update({
        "quality": m["quality"], "n_events": m["n_events"], "n_polarities": m["n_polarities"],
        "n_stations": m["n_stations"],
        "fault_plane_uncertainty": _r(m["fault_plane_uncertainty"]), "polarity_misfit": _r(m["polarity_misfit"]),
        "prob_mech": _r(m["prob_mech"]), "azimuthal_gap": _r(m["azimuthal_gap"]),
        "takeoff_gap": _r(m["takeoff_gap"]), "sta_distribution_ratio": _r(m["sta_distribution_ratio"]),
        "n_acceptable_planes": int(len(res["acceptable_planes"])),
        "n_selected_events": res.get("n_selected"), "max_events": res.get("max_events"),
        "engine": res.get("engine"), "seconds": _r(res.get("seconds"), 2),
    })
    return out


# -- command line ---------------------------------------------------------------------------
def add_cli(sub) -> None:
    """Register ``composite`` on the ``python -m pipeline`` sub-parsers."""
    from pipeline.export.cli import add_filter_args

    p = sub.add_parser("composite", help="composite focal mechanism (SKHASH) from the polarities of all events "
                                         "selected with the dashboard's filters")
    p.add_argument("--data-dir", default="data", help="folder of the Parquet tables (default: data)")
    add_filter_args(p, mech=False)   # every selected event with polarities: no mechanism population
    p.add_argument("--max-events", type=int, default=DEFAULT_MAX_EVENTS,
                   help=f"pool at most this many events, the largest magnitudes first (default {DEFAULT_MAX_EVENTS})")
    p.add_argument("--picks", default="auto", help="polarities per event: auto (manual overrides the best automatic "
                                                  "picker), published, manual, cnn, onset, ...")
    p.add_argument("--snr-min", type=float, default=2.0, help="automatic picks need SNR above this (default 2)")
    p.add_argument("--engine", choices=("auto", "fortran", "python"), default="auto", help="SKHASH grid search")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S,
                   help=f"SKHASH time limit, s (default {DEFAULT_TIMEOUT_S:g})")
    p.set_defaults(func=_cmd, _parser=p)


def _cmd(args) -> int:
    from pipeline.export.cli import filters_from_args
    from pipeline.export.selection import provider_for

    parser = getattr(args, "_parser", None)
    if args.max_events < 1:
        parser.error("argument --max-events: must be >= 1")
    if not args.timeout > 0:
        parser.error("argument --timeout: must be > 0")
    filters, _ = filters_from_args(args, parser)
    provider = provider_for(args.data_dir, tables=TABLES)
    try:
        res = composite_of_selection(provider, filters, max_events=args.max_events, picks=args.picks,
                                     snr_min=args.snr_min, timeout=args.timeout,
                                     use_fortran={"auto": None, "fortran": True, "python": False}[args.engine])
    finally:
        provider.close()
    if res["mechanism"] is None:
        raise InputError(args.data_dir, f"SKHASH found no composite mechanism for the {res['n_input_events']} "
                                        f"selected events with polarities: {res['reason']} (widen the selection)")
    out = summary(res)
    capped = f", the {res['max_events']} largest of {res['n_selected']}" if res["n_selected"] > res["max_events"] else ""
    print(f"composite of {out['n_events']} events{capped}: {out['n_polarities']} polarities at "
          f"{out['n_stations']} stations, SKHASH ({out['engine']}) in {out['seconds']:.1f} s")
    print(f"  strike/dip/rake {out['strike']:.1f}/{out['dip']:.1f}/{out['rake']:.1f}  "
          f"(auxiliary {out['strike2']:.1f}/{out['dip2']:.1f}/{out['rake2']:.1f})  quality {out['quality']}, "
          f"fault-plane uncertainty {out['fault_plane_uncertainty']:.1f} deg, misfit {out['polarity_misfit']:.1f} %, "
          f"{out['n_acceptable_planes']} acceptable planes")
    print(json.dumps(out))
    return 0
