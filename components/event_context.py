"""What the event page (``pages/event.py``) reads: one event's rows of the Parquet tables
(cached per event until a table changes), the review database (its picks, re-inversions and
jobs), which mechanism is drawn and the station table under it. No Dash components here;
the page's cards are :mod:`components.event_cards`, its figures :mod:`components.event_figures`.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict

import pandas as pd

from components import event_figures as ef
from components.access import READ_ONLY, can, current_account, get_access
from components.data import get_provider
from pipeline.review.reinvert import preferred_mechanism
from pipeline.review.reviews import ReviewStore
from queries import event as evq


# -- data ---------------------------------------------------------------------------------------
_CTX_TABLES = ("events", "mechanisms", "stations", "polarities", "waveforms", "mechanism_stations",
               "acceptable_planes", "unsolved", "velocity_model")
_ctx_cache: OrderedDict = OrderedDict()
_ctx_lock = threading.Lock()
_stores: dict = {}
_stores_lock = threading.Lock()


def _versions(provider) -> tuple:
    out = []
    for t in _CTX_TABLES:
        try:
            st = provider.path(t).stat()
            out.append((st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)


def finite_or_none(v):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _mech_dict(row) -> dict | None:
    if row is None:
        return None
    d = {k: (row.get(k) if hasattr(row, "get") else None) for k in (
        "source", "strike", "dip", "rake", "quality", "polarity_misfit", "fault_plane_uncertainty", "prob_mech",
        "sta_distribution_ratio", "n_polarities", "picks", "kagan_to_published", "engine")}
    for k in ("strike", "dip", "rake", "polarity_misfit", "fault_plane_uncertainty", "prob_mech",
              "sta_distribution_ratio", "n_polarities", "kagan_to_published"):
        d[k] = finite_or_none(d[k])
    for k in ("quality", "picks", "engine", "source"):
        d[k] = None if d[k] is None or (isinstance(d[k], float) and math.isnan(d[k])) or pd.isna(d[k]) else str(d[k])
    return d


def event_context(event_id: str) -> dict | None:
    """Everything the page needs about one event from the Parquet tables (cached per event
    until a table changes); None when the event is not in the catalogue. Callers must not
    modify the frames."""
    p = get_provider()
    key = (str(p.data_dir), str(event_id))
    version = _versions(p)
    with _ctx_lock:
        hit = _ctx_cache.get(key)
        if hit is not None and hit[0] == version:
            _ctx_cache.move_to_end(key)
            return hit[1]
    ctx = _build_context(p, str(event_id))
    with _ctx_lock:
        _ctx_cache[key] = (version, ctx)
        while len(_ctx_cache) > 24:
            _ctx_cache.popitem(last=False)
    return ctx


def _build_context(p, event_id: str) -> dict | None:
    ev = p.event_by_id(event_id)
    if ev.empty:
        return None
    event = ev.iloc[0].to_dict()
    mechs = p.mechanism_rows(event_id)
    pol = evq.event_rows(p, "polarities", event_id)
    used = evq.event_rows(p, "mechanism_stations", event_id)
    acc = evq.event_rows(p, "acceptable_planes", event_id)
    uns = evq.event_rows(p, "unsolved", event_id)
    waves = evq.event_rows(p, "waveforms", event_id, channel="DHZ")
    stations = p.stations()
    vm = p.velocity_model()
    loc = {"lat": event["lat"], "lon": event["lon"], "depth_km": event["depth_km"], "which": "catalogue"}
    for _, m in mechs.iterrows():  # the location SKHASH used, where known
        if all(pd.notna(m.get(c)) for c in ("lat_skhash", "lon_skhash", "depth_km_skhash")):
            loc = {"lat": m["lat_skhash"], "lon": m["lon_skhash"], "depth_km": m["depth_km_skhash"],
                   "which": "SKHASH"}
            break
    rays = ef.station_rays(stations, used, loc, vm)
    mech_rows = {str(m["source"]): _mech_dict(m) for _, m in mechs.iterrows()}
    pref = preferred_mechanism(mechs)
    wkeys = (waves["network"].astype(str) + "." + waves["station"].astype(str)).tolist()
    rev_nets = sorted(set(stations.loc[stations["reversed"].astype(bool), "network"].astype(str))
                      & set(w.split(".")[0] for w in wkeys))
    return {
        "event_id": event_id, "event": event, "mechs": mech_rows,
        "preferred": None if pref is None else str(pref["source"]), "pol": pol, "used": used, "acc": acc,
        "unsolved": None if uns.empty else str(uns["reason"].iloc[0]), "waves": waves, "wkeys": wkeys,
        "stations": stations, "vm": vm, "loc": loc, "rays": rays, "reversed_networks": rev_nets,
        "sampling_rate": float(waves["sampling_rate"].iloc[0]) if len(waves) else 500.0,
    }


def review_store() -> ReviewStore | None:
    """The review database of the app's data folder (created on first use); None (and the
    page says why) when it cannot be opened for writing. On a read-only server it is opened
    read-only (reviews shown, never written; None when there is no database yet), so that
    such a server has no write path at all."""
    p = get_provider()
    read_only = get_access().mode == READ_ONLY
    key = (str(p.data_dir), read_only)
    with _stores_lock:
        st = _stores.get(key)
        if st is None or (read_only and isinstance(st, Exception)):  # (a database may appear later)
            try:
                st = _stores[key] = ReviewStore(p.data_dir, read_only=read_only)
            except Exception as exc:  # noqa: BLE001 - read-only folder, ...
                _stores[key] = exc
                return None
        return st if isinstance(st, ReviewStore) else None


def store_error() -> str:
    st = _stores.get((str(get_provider().data_dir), get_access().mode == READ_ONLY))
    return f"{type(st).__name__}: {st}" if isinstance(st, Exception) else ""


def write_state(right: str = "review") -> tuple[bool, str]:
    """(whether this client may ``right`` here, why not): the server's mode, the account's
    role and a writable review database. Only hides/disables controls: every write is checked
    again on the server (:mod:`components.review_writes`)."""
    access = get_access()
    if access.mode == READ_ONLY:
        return False, (f"This dashboard is read-only ({access.reason}): reviews and re-inversions are off. "
                       "Browsing and downloads work.")
    if not can(right):
        acc = current_account()
        return False, f"Signed in as {acc.name if acc else '?'} ({acc.role if acc else 'no account'}): reviews are off."
    st = review_store()
    if st is None:
        return False, f"Reviews are disabled: the review database cannot be written ({store_error()})."
    return True, ""


def reviewed_picks(event_id: str) -> pd.DataFrame:
    st = review_store()
    if st is None:
        return pd.DataFrame(columns=["event_id", "network", "station", "method", "polarity", "p_source",
                                     "reviewer", "updated_at"])
    return st.reviewed_polarities(event_id)


def latest_reinversion(event_id: str) -> dict | None:
    st = review_store()
    return None if st is None else st.latest_reinversion(event_id)


def mechanism_choices(ctx: dict, reinv: dict | None) -> list[str]:
    out = [s for s in ("computed", "published") if s in ctx["mechs"]]
    if reinv and reinv.get("strike") is not None:
        out.append("reinverted")
    return out


def chosen_mechanism(ctx: dict, choice: str | None, reinv: dict | None):
    """(choice, mechanism dict or None, acceptable planes frame or None, rays frame)."""
    options = mechanism_choices(ctx, reinv)
    if choice not in options:
        choice = ctx["preferred"] if ctx["preferred"] in options else (options[0] if options else None)
    if choice == "reinverted":
        mech = {"source": "reinverted", **{k: reinv.get(k) for k in ("strike", "dip", "rake")}}
        acc = pd.DataFrame(reinv.get("acceptable_json") or [], columns=["strike", "dip", "rake"])
        used = pd.DataFrame(reinv.get("stations_json") or [])
        rays = ef.station_rays(ctx["stations"], used if len(used) else None, ctx["loc"], ctx["vm"])
        return choice, mech, acc, rays
    mech = ctx["mechs"].get(choice) if choice else None
    acc = ctx["acc"] if choice == "computed" else None
    return choice, mech, acc, ctx["rays"]


def station_table_for(ctx: dict, reviewed: pd.DataFrame, mech, rays) -> pd.DataFrame:
    return ef.station_table(ctx["stations"], ctx["pol"], reviewed, rays, ctx["wkeys"], mech)


def review_signature(store: ReviewStore, event_id: str) -> str:
    df = store.picks(event_id)
    return f"{len(df)}:{df['updated_at'].max() if len(df) else ''}"
