"""Event page (``/event/<event_id>``): the event's mechanism with its stations, the vertical P
waveforms, and manual polarity review with re-inversion (replaces the original MATLAB picking
GUI, docs/analyses.md 1.9 and 1.12).

Thin wiring only: queries live in :mod:`components.data` (``event_rows``, ``mechanism_rows``,
...), figures and the station table in :mod:`components.event_figures`, the review database
(the app's only write path) in :mod:`pipeline.review.reviews`, background re-inversion in
:mod:`pipeline.review.jobs`. Keyboard shortcuts come from ``assets/event_keys.js``, which
writes the key pressed into the ``ev-key`` store.

URL state: ``?view=recorded`` (traces as recorded), ``bp=LOW-HIGH`` (band-pass on),
``sta=NET.STA`` (current station), ``mech=computed|published|reinverted`` (mechanism drawn).

Writes (picks, re-inversion) are checked on the server by :mod:`components.review_writes`:
the account's role (:mod:`components.access`), the event, the station being one of the
event's, and the sign - stored polarities are TRUE ground motion, ``true = shown × (−1 if
the station is reversed in the stations table and the traces were shown as recorded)``. The
page sends only the event id, the station key, the action and the view; no reversal flag
or polarity from the browser is used. With accounts the account signs the reviews (no
free-text reviewer); on a read-only server or for a viewer the review controls are off.
"""
from __future__ import annotations

import math
import threading
from collections import OrderedDict
from urllib.parse import unquote, urlencode

import dash
import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import Input, Output, Patch, State, dash_table, dcc, html, no_update
from dash.dash_table.Format import Format, Scheme
from dash.exceptions import PreventUpdate

from components import event_figures as ef
from components import review_writes
from components.access import ACCOUNTS, READ_ONLY, AccessDenied, can, current_account, get_access, require
from components.data import get_provider
from components.filters import Filters
from components.layout import no_data
from pipeline.review.reinvert import preferred_mechanism
from pipeline.review.reviews import DEFAULT_REVIEWER, MAX_REVIEWER, ReviewError, ReviewStore

dash.register_page(
    __name__, path_template="/event/<event_id>", name="Event",
    title=lambda event_id=None, **_: f"Event {_decoded(event_id)} · ToC2ME focal mechanisms", order=90)

BASE_TABLES = ("events", "mechanisms", "stations")
#: the navbar reads the filters of the page from a store of this id (see components.layout)
FILTERS = {"type": "fm-filters", "page": "event"}
DEFAULT_BAND = (5.0, 150.0)
MECH_LABELS = {"computed": "computed", "published": "published", "reinverted": "re-inverted"}
MECH_SHORT = {"computed": "computed", "published": "published", "reinverted": "re-inv."}
MECH_COLORS = {"published": "#868e96", "computed": "#495057", "reinverted": "#d6008f"}

# component ids
PAGE = "ev-page"
META = "ev-meta"
CURSOR = "ev-cursor"
KEY = "ev-key"
REVIEWS = "ev-reviews"
REVIEWER = "ev-reviewer"
REVIEWER_INPUT = "ev-reviewer-input"
URL = "ev-url"
BALL = "ev-ball"
WAVES = "ev-waves"
COMPARE = "ev-compare"
METRICS = "ev-metrics"
MECH = "ev-mech"
VIEW = "ev-view"
BP_ON, BP_LO, BP_HI, BP_MSG = "ev-bp-on", "ev-bp-lo", "ev-bp-hi", "ev-bp-msg"
STATUS = "ev-status"
PANEL = "ev-station-panel"
TABLE = "ev-table"
JOB, POLL, SYNC = "ev-job", "ev-poll", "ev-sync"
PICKQ = "ev-pickq"
REINV, REINV_BTN, REINV_STATUS = "ev-reinv", "ev-reinvert", "ev-reinvert-status"
NOTE = "ev-view-note"
DOWNLOAD, DOWNLOAD_BTN = "ev-download", "ev-download-btn"
QUAKEML, QUAKEML_BTN = "ev-quakeml", "ev-quakeml-btn"
BUTTONS = {"up": "ev-btn-up", "down": "ev-btn-down", "zero": "ev-btn-zero", "reset": "ev-btn-reset"}
PREV, NEXT = "ev-prev", "ev-next"
#: what the page's META store holds (a pick whose META has more came from an older page)
META_FIELDS = frozenset({"event_id", "keys", "q", "write", "nyquist"})


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


def _num(v):
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
        d[k] = _num(d[k])
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
    pol = p.event_rows("polarities", event_id)
    used = p.event_rows("mechanism_stations", event_id)
    acc = p.event_rows("acceptable_planes", event_id)
    uns = p.event_rows("unsolved", event_id)
    waves = p.event_rows("waveforms", event_id, channel="DHZ")
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


def _store_error() -> str:
    st = _stores.get((str(get_provider().data_dir), get_access().mode == READ_ONLY))
    return f"{type(st).__name__}: {st}" if isinstance(st, Exception) else ""


def _write_state(right: str = "review") -> tuple[bool, str]:
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
        return False, f"Reviews are disabled: the review database cannot be written ({_store_error()})."
    return True, ""


def _reviewed(event_id: str) -> pd.DataFrame:
    st = review_store()
    if st is None:
        return pd.DataFrame(columns=["event_id", "network", "station", "method", "polarity", "p_source",
                                     "reviewer", "updated_at"])
    return st.reviewed_polarities(event_id)


def _reinversion(event_id: str) -> dict | None:
    st = review_store()
    return None if st is None else st.latest_reinversion(event_id)


def _choices(ctx: dict, reinv: dict | None) -> list[str]:
    out = [s for s in ("computed", "published") if s in ctx["mechs"]]
    if reinv and reinv.get("strike") is not None:
        out.append("reinverted")
    return out


def _mech_options(ctx: dict, reinv: dict | None) -> list[dict]:
    return [{"label": MECH_SHORT[c], "value": c} for c in _choices(ctx, reinv)]


def _chosen(ctx: dict, choice: str | None, reinv: dict | None):
    """(choice, mechanism dict or None, acceptable planes frame or None, rays frame)."""
    options = _choices(ctx, reinv)
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


# -- small helpers -------------------------------------------------------------------------------
def _fmt(v, spec=".1f", unit="", none="–"):
    f = _num(v)
    return none if f is None else f"{f:{spec}}{unit}"


def _band_from_query(bp) -> tuple[bool, float, float]:
    if isinstance(bp, str) and "-" in bp:
        a, _, b = bp.partition("-")
        try:
            return True, float(a), float(b)
        except ValueError:
            pass
    return False, *DEFAULT_BAND


def _band(on, lo, hi, fs) -> tuple[tuple | None, str | None]:
    """((low, high) or None, why the corners are refused or None). A refused band draws the
    traces unfiltered and says so next to the fields."""
    if not on:
        return None, None
    try:
        return ef.parse_bandpass(lo, hi, fs), None
    except ValueError as exc:
        return None, f"{exc}; traces shown unfiltered"


def _sdr(m) -> str:
    if not m or m.get("strike") is None:
        return "–"
    return f"{m['strike']:.1f} / {m['dip']:.1f} / {m['rake']:.1f}"


def _reversed_summary(ctx) -> tuple[str, bool]:
    """(text naming the event's reversed verticals, whether every one is reversed)."""
    st = ctx["stations"]
    keys = set(ctx["wkeys"])
    k = st["network"].astype(str) + "." + st["station"].astype(str)
    ev = st[k.isin(keys)]
    rev = ev[ev["reversed"].astype(bool)]
    if rev.empty:
        return "", False
    if len(rev) == len(ev):
        return f"{', '.join(sorted(set(rev['network'].astype(str))))} verticals", True
    names = rev["station"].astype(str).tolist()
    shown = ", ".join(names[:6]) + (", …" if len(names) > 6 else "")
    return f"{len(rev)} reversed verticals (⇅ {shown})", False


def _view_note(ctx, mode):
    text, _ = _reversed_summary(ctx)
    if mode == "recorded":
        if text:
            return [html.B("Traces shown as recorded"), f": {text} are polarity-reversed (recorded up = true down). "
                    "Colours and ↑/↓ labels show the recorded sense (with the true one beside it); "
                    "↑/↓ keys pick the first motion you see; it is stored as true ground motion."]
        return [html.B("Traces shown as recorded"), " (no station of this event is reversed)."]
    if text:
        return [html.B("Traces shown as true ground motion"), f" ({text} flipped, ×−1)."]
    return [html.B("Traces shown as true ground motion"), " (= as recorded: no station of this event is reversed)."]


# -- layout --------------------------------------------------------------------------------------
def _header(ctx, q):
    e = ctx["event"]
    t = pd.Timestamp(e["time"])
    back = dash.get_relative_path("/") + (f"?{q}" if q else "")
    badges = []
    for src in ("computed", "published"):
        m = ctx["mechs"].get(src)
        if m:
            badges.append(dbc.Badge(f"{src}{' · Q ' + m['quality'] if m.get('quality') else ''}",
                                    color="light", text_color="dark", className="me-1 fm-ev-badge"))
    if ctx["unsolved"]:
        badges.append(dbc.Badge("SKHASH: unsolved", color="warning", text_color="dark", className="me-1"))
    return html.Div([
        html.Div([
            html.A("← Map", href=back, className="fm-ev-back me-3"),
            html.H1(["Event ", html.Span(ctx["event_id"], className="fm-ev-id")], className="fm-ev-title"),
            html.Span([
                f"{t:%Y-%m-%d %H:%M:%S.%f}"[:-3] + " UTC", " · ML ", _fmt(e.get("magnitude"), ".2f"),
                " · depth ", _fmt(e.get("depth_km"), ".3f", " km"),
                f" · {e['cluster']}" if isinstance(e.get("cluster"), str) else "",
            ], className="fm-ev-sub ms-3"),
            html.Span(badges, className="ms-2"),
        ], className="fm-ev-head-left"),
    ], className="fm-ev-head card card-body")


def _unknown(event_id, q):
    back = dash.get_relative_path("/") + (f"?{q}" if q else "")
    return dbc.Alert([
        html.H4("Event not found", className="alert-heading"),
        html.P(["No event ", html.Code(str(event_id)[:80]), " in the catalogue of this data folder. Event ids are "
                "origin times written ", html.Code("YYYYMMDDhhmmss.fff"), " (UTC)."]),
        html.A("← back to the map", href=back, className="alert-link"),
    ], color="warning", className="fm-no-data mt-4", id="ev-unknown")


def _mech_card(ctx, choice, reinv, fig):
    options = _mech_options(ctx, reinv)
    meta = fig.layout.meta or {}
    notes = []
    if ctx["unsolved"]:
        notes.append(dbc.Alert([html.B("SKHASH did not solve this event: "), ctx["unsolved"]], color="warning",
                               className="fm-ev-alert py-1 px-2 mb-2"))
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Span("Mechanism", className="fw-semibold"),
            dbc.RadioItems(id=MECH, options=options, value=choice, inline=True,
                           className="btn-group fm-view fm-ev-mech", inputClassName="btn-check",
                           labelClassName="btn btn-outline-secondary btn-sm", labelCheckedClassName="active",
                           style=None if options else {"display": "none"}),
        ], className="d-flex justify-content-between align-items-center"), className="fm-card-header"),
        dbc.CardBody([
            *notes,
            dcc.Graph(id=BALL, figure=fig, config={"displaylogo": False, "displayModeBar": False},
                      className="fm-ev-ball"),
            html.Div(_ball_legend(meta, ctx), id="ev-ball-legend", className="fm-ev-legend"),
        ], className="p-2"),
    ], className="fm-side-card mb-3")


def _ball_legend(meta, ctx):
    planes = ""
    if meta.get("planes_total"):
        n, m = meta["planes_drawn"], meta["planes_total"]
        planes = f" Thin grey: {n if n == m else f'{n} of {m}'} SKHASH acceptable planes."
    return [
        html.Span("●", className="fm-ev-sym fm-ev-agree"), " up (compression) ",
        html.Span("○", className="fm-ev-sym fm-ev-agree"), " down ",
        html.Span("●", className="fm-ev-sym fm-ev-misfit"), " misfit ",
        html.Span("×", className="fm-ev-sym fm-ev-unused"), " not used. ",
        "Lower hemisphere, equal area; grey = compressional quadrants; P/T axes.", planes,
        f" Rays: SKHASH's where it used the station, else its lookup table on the 1-D model "
        f"({ctx['loc']['which']} location).",
    ]


def _compare_card(ctx, reinv, job):
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Span("Compare mechanisms", className="fw-semibold"),
        ]), className="fm-card-header"),
        dbc.CardBody([
            dcc.Graph(id=COMPARE, figure=_compare_figure(ctx, reinv),
                      config={"displaylogo": False, "displayModeBar": False}),
            html.Div(_metrics(ctx, reinv), id=METRICS),
            html.Div([
                dbc.Button("Re-invert with reviewed picks", id=REINV_BTN, color="primary", size="sm",
                           outline=True, disabled=not _write_state("reinvert")[0] or ctx["pol"].empty or ctx["vm"].empty,
                           className="me-2"),
                html.Span(NO_VM_TEXT if ctx["vm"].empty and not job and not reinv else _job_text(job, reinv),
                          id=REINV_STATUS, className="fm-note"),
            ], className="d-flex align-items-center flex-wrap mt-2"),
        ], className="p-2"),
    ], className="fm-side-card")


def _compare_list(ctx, reinv):
    out = []
    for src in ("published", "computed"):
        m = ctx["mechs"].get(src)
        if m:
            sub = _sdr(m) + (f"<br>quality {m['quality']}" if m.get("quality") else "")
            out.append({"label": src, "strike": m["strike"], "dip": m["dip"], "rake": m["rake"],
                        "color": MECH_COLORS[src], "subtitle": sub})
    if reinv:
        if reinv.get("strike") is not None:
            out.append({"label": "re-inverted", "strike": reinv["strike"], "dip": reinv["dip"],
                        "rake": reinv["rake"], "color": MECH_COLORS["reinverted"],
                        "subtitle": _sdr(reinv) + (f"<br>quality {reinv['quality']}" if reinv.get("quality") else "")})
        else:
            out.append({"label": "re-inverted", "subtitle": "not solved"})
    return out


def _compare_figure(ctx, reinv):
    items = _compare_list(ctx, reinv)
    if not items:
        fig = ef.comparison_figure([], height=60)
        fig.add_annotation(text="no mechanism for this event", x=0.5, y=0.5, xref="paper", yref="paper",
                           showarrow=False, font=dict(color="#6c757d"))
        return fig
    return ef.comparison_figure(items)


def _kagan(a, b):
    from pipeline.mechanisms import focal

    if not a or not b or a.get("strike") is None or b.get("strike") is None:
        return None
    return float(focal.kagan_angle((a["strike"], a["dip"], a["rake"]), (b["strike"], b["dip"], b["rake"])))


def _metrics(ctx, reinv):
    """The comparison table: one column per mechanism (published, computed, re-inverted)."""
    cols = [(src, ctx["mechs"][src]) for src in ("published", "computed") if src in ctx["mechs"]]
    if reinv:
        cols.append(("reinverted", {**reinv, "polarity_misfit": reinv.get("misfit")}))
    if not cols:
        return html.P("No published or computed mechanism for this event.", className="fm-note mb-0")
    pub = ctx["mechs"].get("published")

    def sdr(m):
        return _sdr(m) if m.get("strike") is not None else (m.get("reason") or "not solved")

    rows = [
        ("Strike / dip / rake", sdr),
        ("Quality", lambda m: m.get("quality") or "–"),
        ("Polarity misfit", lambda m: _fmt(m.get("polarity_misfit"), ".1f", " %")),
        ("Fault-plane uncert.", lambda m: _fmt(m.get("fault_plane_uncertainty"), ".1f", "°")),
        ("Mechanism prob.", lambda m: _fmt(m.get("prob_mech"), ".0f", " %")),
        ("Station distr. ratio", lambda m: _fmt(m.get("sta_distribution_ratio"), ".1f", " %")),
        ("Polarities", lambda m: _fmt(m.get("n_polarities"), ".0f")),
        ("Picks", lambda m: m.get("picks") or "–"),
    ]
    if pub:
        rows.append(("Kagan to published", lambda m: "" if m is pub else _fmt(_kagan(m, pub), ".1f", "°")))
    if reinv:
        prev = MECH_LABELS.get(reinv.get("previous_source"), "previous")
        rows.append((f"Kagan to {prev}", lambda m: _fmt(m.get("kagan_to_previous"), ".1f", "°")
                     if m is cols[-1][1] else ""))
    head = html.Thead(html.Tr([html.Th("")] + [html.Th(MECH_LABELS[s], className=f"fm-ev-col-{s}")
                                               for s, _ in cols]))
    body = html.Tbody([html.Tr([html.Th(name)] + [html.Td(f(m)) for _, m in cols]) for name, f in rows])
    return dbc.Table([head, body], size="sm", borderless=True, className="fm-ev-metrics mb-0")


def _job_text(job, reinv):
    if job and job.get("status") in ("queued", "running"):
        st = review_store()
        ahead = st.queue_position(job["id"]) if st is not None and job["status"] == "queued" else None
        wait = f" ({ahead} job{'s' if ahead != 1 else ''} ahead)" if ahead else ""
        return [dbc.Spinner(size="sm", spinner_class_name="me-1"), f"SKHASH {job['status']}{wait}…"]
    if job and job.get("status") == "error":
        return html.Span(f"Re-inversion failed: {job.get('message')}", className="text-danger")
    if reinv:
        at = str(reinv.get("at") or "")[:19].replace("T", " ")
        if reinv.get("strike") is None:
            return f"Last re-inversion ({at} UTC, {reinv.get('reviewer')}): not solved - {reinv.get('reason')}"
        return (f"Last re-inversion {at} UTC by {reinv.get('reviewer')}, {reinv.get('n_reviewed')} reviewed picks, "
                f"{_fmt(reinv.get('seconds'), '.1f', ' s')}.")
    return "Runs SKHASH in the background on the picks marked 'used' below; the result is kept in the review database."


def _reviewer_field():
    """Local mode: the free-text reviewer name (kept in the browser). With accounts the
    account signs every review, so the field goes (a hidden input keeps the clientside
    wiring) and the page says who is signed in."""
    acc = current_account()
    if get_access().mode == ACCOUNTS:
        who = f"{acc.name} ({acc.role})" if acc else "not signed in"
        return html.Div([
            html.Span("Reviewer", className="fm-inline-label"),
            html.Span(who, id="ev-account", className="fm-ev-account fw-semibold"),
            dbc.Input(id=REVIEWER_INPUT, type="hidden"),
        ], className="fm-inline")
    return html.Div([
        html.Span("Reviewer", className="fm-inline-label"),
        dbc.Input(id=REVIEWER_INPUT, type="text", size="sm", maxLength=MAX_REVIEWER, debounce=True,
                  placeholder=DEFAULT_REVIEWER, className="fm-ev-reviewer",
                  disabled=get_access().mode == READ_ONLY),
    ], className="fm-inline")


def _review_card(ctx, mode, band_on, lo, hi, fig, store_ok, panel=None, invalid=None, why_not=""):
    controls = html.Div([
        _reviewer_field(),
        html.Div([
            html.Span("Show", className="fm-inline-label"),
            dbc.RadioItems(id=VIEW, options=[{"label": "true motion", "value": "true"},
                                             {"label": "as recorded", "value": "recorded"}],
                           value=mode, inline=True, className="btn-group fm-view", inputClassName="btn-check",
                           labelClassName="btn btn-outline-secondary btn-sm", labelCheckedClassName="active"),
        ], className="fm-inline"),
        html.Div([
            dbc.Switch(id=BP_ON, value=band_on, label="Band-pass", className="fm-ev-switch mb-0"),
            dbc.Input(id=BP_LO, type="number", value=lo, size="sm", debounce=True, min=0, step="any",
                      className="fm-ev-hz", disabled=not band_on, invalid=bool(invalid)),
            html.Span("–", className="fm-inline-label"),
            dbc.Input(id=BP_HI, type="number", value=hi, size="sm", debounce=True, min=0, step="any",
                      className="fm-ev-hz", disabled=not band_on, invalid=bool(invalid)),
            html.Span("Hz", className="fm-inline-label",
                      title="3rd-order Butterworth, zero phase (forward + backward), for viewing only"),
            html.Span(invalid or "", id=BP_MSG, className="fm-ev-bp-msg", role="alert"),
        ], className="fm-inline"),
    ], className="fm-ev-controls")
    picks = html.Div([
        dbc.ButtonGroup([
            dbc.Button("◀", id=PREV, size="sm", color="secondary", outline=True, title="previous station (←)"),
            dbc.Button("▶", id=NEXT, size="sm", color="secondary", outline=True, title="next station (→)"),
        ], className="me-2"),
        dbc.ButtonGroup([
            dbc.Button("↑ Up", id=BUTTONS["up"], size="sm", color="secondary", outline=True,
                       title="first motion up as shown (↑)", disabled=not store_ok),
            dbc.Button("↓ Down", id=BUTTONS["down"], size="sm", color="secondary", outline=True,
                       title="first motion down as shown (↓)", disabled=not store_ok),
            dbc.Button("∅ Undetermined", id=BUTTONS["zero"], size="sm", color="secondary", outline=True,
                       title="leave the station out of the inversion (0)", disabled=not store_ok),
            dbc.Button("⟲ Reset", id=BUTTONS["reset"], size="sm", color="secondary", outline=True,
                       title="delete the review: the batch picks apply again (Backspace)", disabled=not store_ok),
        ], className="me-2"),
        html.Span(["Keys: ", html.Kbd("↑"), " ", html.Kbd("↓"), " pick · ", html.Kbd("0"), " undetermined · ",
                   html.Kbd("⌫"), " reset · ", html.Kbd("←"), " ", html.Kbd("→"), " station"], className="fm-note"),
    ], className="fm-ev-pickbar")
    warn = [] if store_ok else [dbc.Alert(why_not, id="ev-readonly", color="secondary" if why_not.startswith(
        ("This dashboard", "Signed in")) else "danger", className="py-1 px-2 mb-2")]
    nothing = ctx["waves"].empty and ctx["pol"].empty
    if nothing:
        warn.append(dbc.Alert("No waveforms or polarities for this event in the data folder: only events whose "
                              "waveforms the pipeline picked can be reviewed and re-inverted.", color="info",
                              className="py-1 px-2 mb-2 fm-ev-alert", id="ev-nothing"))
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Span("Vertical P waveforms & polarity review", className="fw-semibold"),
            html.Span(id=STATUS, className="fm-note ms-2 fm-ev-status"),
        ], className="d-flex justify-content-between align-items-center flex-wrap"), className="fm-card-header"),
        dbc.CardBody([
            *warn,
            html.Div([
                controls,
                picks,
                html.Div(_view_note(ctx, mode), id=NOTE, className="fm-ev-note"),
                html.Div(panel, id=PANEL, className="fm-ev-panel"),
                html.Div(dcc.Graph(id=WAVES, figure=fig, config={
                    "displaylogo": False, "scrollZoom": False, "displayModeBar": False, "doubleClick": "reset+autosize"}),
                    className="fm-ev-waves", title="drag to zoom in time, double-click to reset; click a trace to select it"),
            ], style={"display": "none"} if nothing else None),
        ], className="p-2"),
    ], className="fm-side-card fm-ev-review")


_fixed = lambda n: Format(precision=n, scheme=Scheme.fixed)  # noqa: E731
TABLE_COLUMNS = [
    {"id": "station", "name": "Station"},
    {"id": "az", "name": "Az °", "type": "numeric", "format": _fixed(0)},
    {"id": "takeoff", "name": "Takeoff °", "type": "numeric", "format": _fixed(0)},
    {"id": "dist", "name": "km", "type": "numeric", "format": _fixed(2)},
    {"id": "auto", "name": "Auto"},
    {"id": "prob", "name": "p↓rec", "type": "numeric", "format": _fixed(2)},
    {"id": "snr", "name": "SNR", "type": "numeric", "format": _fixed(1)},
    {"id": "published", "name": "Published"},
    {"id": "manual", "name": "Manual"},
    {"id": "review", "name": "Reviewed"},
    {"id": "used", "name": "Used"},
    {"id": "predicted", "name": "Predicted"},
    {"id": "fit", "name": "Fit"},
]


def _table_rows(table: pd.DataFrame) -> list[dict]:
    rows = []
    for r in table.itertuples(index=False):
        rows.append({
            "id": r.key, "key": r.key, "station": r.key,
            "az": None if not np.isfinite(r.azimuth_deg) else round(float(r.azimuth_deg)),
            "takeoff": None if not np.isfinite(r.takeoff_deg) else round(float(r.takeoff_deg)),
            "dist": None if not np.isfinite(r.distance_km) else round(float(r.distance_km), 2),
            "auto": f"{ef.arrow(r.auto_polarity)} {r.auto_method}" if r.auto_method else "–",
            "prob": None if not np.isfinite(r.prob_down_recorded) else round(float(r.prob_down_recorded), 3),
            "snr": None if not np.isfinite(r.snr) else round(float(r.snr), 1),
            "published": ef.arrow(r.published_polarity), "manual": ef.arrow(r.manual_polarity),
            "review": (f"{ef.arrow(r.reviewed_polarity)} {r.reviewer}" if np.isfinite(r.reviewed_polarity) else "–"),
            "used": _used(r.polarity, r.polarity_source),
            "predicted": ef.arrow(r.predicted),
            "fit": {None: "", True: "✓", False: "✗ misfit"}[r.agreement],
        })
    return rows


_TABLE_BASE_STYLES = [
    {"if": {"filter_query": '{fit} = "✗ misfit"', "column_id": "fit"}, "color": "#e03131", "fontWeight": 600},
    {"if": {"filter_query": '{review} != "–"', "column_id": "review"}, "fontWeight": 600, "color": "#d6008f"},
]


def _table_styles(current):
    styles = list(_TABLE_BASE_STYLES)
    if current:
        styles.append({"if": {"filter_query": f'{{key}} = "{current}"'}, "backgroundColor": "rgba(214,0,143,0.09)"})
        styles.append({"if": {"filter_query": f'{{key}} = "{current}"', "column_id": "station"},
                       "boxShadow": "inset 3px 0 0 #d6008f", "fontWeight": 700})
    return styles


def _table_card(table, current):
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Div([
                html.Span("Stations", className="fw-semibold"),
                html.Span("polarities in true ground motion (↑ up/compression, ↓ down, ∅ undetermined); 'Used' = "
                          "what an inversion takes now: reviewed > manual > best automatic picker with SNR > 2; "
                          "p↓rec = picker probability that the recorded first motion is down",
                          className="fm-note ms-2"),
            ]),
            html.Div([
                html.Button([html.Span("⤓ ", className="me-1"), "Download CSV"], id=DOWNLOAD_BTN,
                            className="btn btn-primary btn-sm fm-download", title="this station table, as CSV"),
                dcc.Download(id=DOWNLOAD),
                dbc.Button([html.Span("⤓ ", className="me-1"), "QuakeML"], id=QUAKEML_BTN, size="sm",
                           color="primary", className="fm-export text-nowrap ms-1",
                           title="this event: origin, magnitude, focal mechanisms and P picks with polarities "
                                 "(QuakeML 1.2; your reviewed picks included)"),
                dcc.Download(id=QUAKEML),
            ], className="ms-2 d-flex"),
        ], className="d-flex justify-content-between align-items-center"), className="fm-card-header"),
        dash_table.DataTable(
            id=TABLE, columns=TABLE_COLUMNS, data=_table_rows(table), page_action="none",
            sort_action="native", cell_selectable=True, style_as_list_view=True,
            style_table={"overflowX": "auto", "maxHeight": "420px", "overflowY": "auto"}, fixed_rows={"headers": True},
            style_header={"fontWeight": 600, "backgroundColor": "#f8f9fa", "borderBottom": "1px solid #dee2e6"},
            style_cell={"fontFamily": "inherit", "fontSize": "12.5px", "padding": "3px 8px", "textAlign": "right",
                        "border": "none", "borderBottom": "1px solid #eef0f2", "minWidth": "60px"},
            style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"} for c in
                                    ("station", "auto", "published", "manual", "review", "used", "predicted", "fit")],
            style_data_conditional=_table_styles(current),
            css=[{"selector": "td.cell--selected, td.focused", "rule": "background-color: transparent !important;"}],
        ),
    ], className="fm-table-card mt-3")


def _query_string(query: dict) -> str:
    keep = {k: v for k, v in query.items() if k not in ("view", "bp", "sta", "mech") and isinstance(v, str)}
    return urlencode(keep)


def _decoded(event_id) -> str:
    """The event id as typed: Dash passes the path segment percent-encoded (``no%20such``)."""
    return unquote(str(event_id or ""))[:80]


def layout(event_id=None, **query):
    provider = get_provider()
    missing = provider.missing_tables(BASE_TABLES)
    if missing:
        return no_data(provider.data_dir, missing)
    q = _query_string(query)
    filters = dcc.Store(id=FILTERS, data=Filters.from_query(q).to_query())  # the navbar keeps them
    ctx = event_context(_decoded(event_id))
    if ctx is None:
        return html.Div([filters, _unknown(_decoded(event_id), q)], id=PAGE, className="fm-page fm-page-event")
    mode = "recorded" if query.get("view") == "recorded" else "true"
    band_on, lo, hi = _band_from_query(query.get("bp"))
    store = review_store()
    reviewed = _reviewed(ctx["event_id"])
    reinv = _reinversion(ctx["event_id"])
    job = store.active_job(ctx["event_id"]) if store is not None else None
    choice, mech, acc, rays = _chosen(ctx, query.get("mech"), reinv)
    table = station_table_for(ctx, reviewed, mech, rays)
    keys = table["key"].tolist()
    current = query.get("sta") if query.get("sta") in keys else (keys[0] if keys else None)
    cursor = keys.index(current) if current else 0
    band, invalid = _band(band_on, lo, hi, ctx["sampling_rate"])
    ball = ef.mechanism_figure(mech, table, acc, current, note=_no_mech_note(ctx))
    waves = ef.waveform_figure(ctx["waves"], table, mode=mode, band=band, current=current)
    write_ok, why_not = _write_state()
    # "write" only spares a viewer's keys a refused round trip: the server decides (review_writes);
    # no reversal flags are sent, the server reads them from the stations table at each write
    meta = {"event_id": ctx["event_id"], "keys": keys, "q": q, "write": write_ok,
            "nyquist": 0.5 * float(ctx["sampling_rate"]) if ctx["sampling_rate"] else None}
    return html.Div([
        dcc.Location(id=URL, refresh=False),
        filters,
        dcc.Store(id=META, data=meta),
        dcc.Store(id=CURSOR, data=cursor),
        dcc.Store(id=KEY),
        dcc.Store(id=PICKQ, data=[]),
        dcc.Store(id=REVIEWS, data={"n": 0, "sig": _signature(store, ctx["event_id"]) if store else None}),
        dcc.Store(id=REVIEWER, storage_type="local"),
        dcc.Store(id=JOB, data={"job_id": job["id"]} if job else None),
        dcc.Store(id=REINV, data={"id": reinv["id"]} if reinv else None),
        dcc.Interval(id=POLL, interval=700, disabled=job is None),
        dcc.Interval(id=SYNC, interval=15_000),
        _header(ctx, q),
        dbc.Row([
            dbc.Col([_mech_card(ctx, choice, reinv, ball), _compare_card(ctx, reinv, job)], lg=4, className="fm-side"),
            dbc.Col(_review_card(ctx, mode, band_on, lo, hi, waves, write_ok, _panel(table, current, mode),
                                 invalid, why_not), lg=8),
        ], className="g-3"),
        _table_card(table, current),
        html.P(["Re-inversions and reviewed picks are stored in ", html.Code("reviews.sqlite"),
                " in the data folder, never in the Parquet tables; the next ", html.Code("python -m pipeline invert"),
                " uses the reviewed picks. The original MATLAB GUI saved picks as recorded on the inverted 5B "
                "verticals; here every pick is stored as true ground motion, once."], className="fm-note mt-2"),
    ], id=PAGE, className="fm-page fm-page-event")


#: data without a velocity model (optional in a user's project): SKHASH cannot run
NO_VM_TEXT = ("No velocity model in this data set: no take-off angles, so SKHASH cannot compute or re-invert "
              "a mechanism.")


def _no_mech_note(ctx):
    if ctx["unsolved"]:
        return "not solved by SKHASH"
    if ctx["pol"].empty:
        return "no mechanism"
    if ctx["vm"].empty:
        return "no mechanism (no velocity model)"
    return "no mechanism yet"


# -- callbacks -----------------------------------------------------------------------------------
# reviewer name: browser-local store <-> input (both ways, one callback)
dash.clientside_callback(
    """
    function(stored, typed) {
        const trig = (dash_clientside.callback_context.triggered || []).map(t => t.prop_id);
        if (trig.some(p => p.startsWith('ev-reviewer-input'))) {
            const v = (typed || '').trim().slice(0, 64);
            return [v || null, dash_clientside.no_update];
        }
        return [dash_clientside.no_update, stored || ''];
    }
    """,
    Output(REVIEWER, "data"), Output(REVIEWER_INPUT, "value"),
    Input(REVIEWER, "data"), Input(REVIEWER_INPUT, "value"),
)

# Keys, buttons and clicks, handled in the browser in the order they happen:
# * navigation (arrow keys, prev/next, a click on the beachball, a trace or a table row) moves
#   the current station;
# * a pick (arrow keys, buttons) is appended to the request queue with the station, view and
#   reviewer of that moment and a unique id; the server applies the queue (pick()) and
#   acknowledges the ids, which are then dropped. Requests are re-sent until acknowledged and
#   the review database ignores a request id it has seen, so a fast key sequence neither
#   loses a pick nor applies one twice, nor picks the wrong station.
dash.clientside_callback(
    """
    function(key, nPrev, nNext, ballClick, waveClick, cell, bUp, bDown, bZero, bReset,
             cursor, meta, waves, view, reviewer, queue, reviews) {
        const nc = dash_clientside.no_update;
        const keys = (meta && meta.keys) || [];
        if (!keys.length) { return [nc, nc]; }
        const trig = ((dash_clientside.callback_context.triggered || [])[0] || {}).prop_id || '';
        let i = (typeof cursor === 'number') ? cursor : 0;
        const clamp = j => Math.max(0, Math.min(keys.length - 1, j));
        const acked = new Set(((reviews || {}).acked) || []);
        let q = (queue || []).filter(r => !acked.has(r.id));
        let queued = false;
        const enqueue = (action, rid) => {
            if (meta.write === false) { return; }  // viewer / read-only: the server would refuse it
            if (!rid) { rid = Date.now().toString(36) + Math.random().toString(36).slice(2, 12); }
            q.push({id: String(rid).slice(0, 64), action: action, station: keys[i], view: view || 'true',
                    reviewer: reviewer || null});
            queued = true;
        };
        if (trig.startsWith('ev-key.')) {
            // every key press not handled yet, in order (see assets/event_keys.js)
            const done = window.__fmEvKeyDone || 0;
            const evs = ((key || {}).events || []).filter(ev => ev.seq > done);
            if (!evs.length) { return [nc, nc]; }
            window.__fmEvKeyDone = evs[evs.length - 1].seq;
            for (const ev of evs) {
                const a = ev.action;
                if (a === 'prev') { i = clamp(i - 1); }
                else if (a === 'next') { i = clamp(i + 1); }
                else if (a === 'first') { i = 0; }
                else if (a === 'last') { i = keys.length - 1; }
                else if (['up', 'down', 'zero', 'reset'].includes(a)) { enqueue(a, ev.id); }
            }
        } else if (trig.startsWith('ev-prev.')) { i = clamp(i - 1); }
        else if (trig.startsWith('ev-next.')) { i = clamp(i + 1); }
        else if (trig.startsWith('ev-ball.')) {
            const p = ((ballClick || {}).points || [])[0];
            if (!p || typeof p.customdata !== 'string') { return [nc, nc]; }
            const j = keys.indexOf(p.customdata); if (j < 0) { return [nc, nc]; } i = j;
        } else if (trig.startsWith('ev-waves.')) {
            const p = ((waveClick || {}).points || [])[0];
            const wk = (((waves || {}).layout || {}).meta || {}).keys || [];
            if (!p || p.curveNumber >= wk.length) { return [nc, nc]; }
            const j = keys.indexOf(wk[p.curveNumber]); if (j < 0) { return [nc, nc]; } i = j;
        } else if (trig.startsWith('ev-table.')) {
            if (!cell || !cell.row_id) { return [nc, nc]; }
            const j = keys.indexOf(cell.row_id); if (j < 0) { return [nc, nc]; } i = j;
        } else if (trig.startsWith('ev-btn-')) {
            enqueue(trig.slice('ev-btn-'.length).split('.')[0], null);
        }
        return [i === cursor ? nc : i, queued ? q.slice(-50) : nc];
    }
    """,
    Output(CURSOR, "data"), Output(PICKQ, "data"),
    Input(KEY, "data"), Input(PREV, "n_clicks"), Input(NEXT, "n_clicks"), Input(BALL, "clickData"),
    Input(WAVES, "clickData"), Input(TABLE, "active_cell"), *[Input(b, "n_clicks") for b in BUTTONS.values()],
    State(CURSOR, "data"), State(META, "data"), State(WAVES, "figure"), State(VIEW, "value"),
    State(REVIEWER, "data"), State(PICKQ, "data"), State(REVIEWS, "data"),
    prevent_initial_call=True,
)

# URL state (no reload): view, band-pass, station, mechanism
dash.clientside_callback(
    """
    function(view, bpOn, lo, hi, cursor, mech, meta) {
        const params = new URLSearchParams((meta && meta.q) || '');
        if (view === 'recorded') { params.set('view', 'recorded'); }
        // only a band the page applies goes into the URL (the server says why others are refused)
        const nyq = (meta && meta.nyquist) || Infinity;
        if (bpOn && typeof lo === 'number' && typeof hi === 'number' && lo > 0 && lo < hi && hi < nyq) {
            params.set('bp', lo + '-' + hi);
        }
        const keys = (meta && meta.keys) || [];
        if (typeof cursor === 'number' && keys[cursor]) { params.set('sta', keys[cursor]); }
        if (mech) { params.set('mech', mech); }
        const s = params.toString();
        return s ? '?' + s : '';
    }
    """,
    Output(URL, "search"),
    Input(VIEW, "value"), Input(BP_ON, "value"), Input(BP_LO, "value"), Input(BP_HI, "value"),
    Input(CURSOR, "data"), Input(MECH, "value"), State(META, "data"),
    prevent_initial_call=True,
)

dash.clientside_callback(
    "function(on) { return [!on, !on]; }",
    Output(BP_LO, "disabled"), Output(BP_HI, "disabled"), Input(BP_ON, "value"),
)

@dash.callback(
    Output(REVIEWS, "data"), Output(STATUS, "children"),
    Input(PICKQ, "data"), Input(SYNC, "n_intervals"),
    State(META, "data"), State(REVIEWS, "data"),
    prevent_initial_call=True,
)
def pick(queue, _sync, meta, reviews):
    """Apply the queued pick requests (each once: the database ignores a request id it has
    seen) and acknowledge them; the periodic sync only refreshes when another session
    changed this event's picks. Every request is checked on the server
    (:func:`components.review_writes.apply_pick`: right, event, station of the event, sign
    from the stations table); from the browser only the event id, the station key, the
    action, the view shown and - in local mode - the typed reviewer name are taken, and
    checked."""
    if not isinstance(meta, dict) or not meta:
        raise PreventUpdate
    store = review_store()
    reviews = reviews if isinstance(reviews, dict) else {}  # (crafted requests: any JSON)
    queue = queue if isinstance(queue, list) else []
    event_id = meta.get("event_id")
    if dash.ctx.triggered_id == SYNC:
        if store is None:
            raise PreventUpdate
        sig = _signature(store, event_id)
        if sig == reviews.get("sig"):
            raise PreventUpdate
        return {**reviews, "n": reviews.get("n", 0) + 1, "sig": sig}, no_update
    acked = [a for a in (reviews.get("acked") if isinstance(reviews.get("acked"), list) else [])
             if isinstance(a, str)]
    done = set(acked)
    msg = no_update
    # a page of an older version sent the reversal flags it was drawn with: refuse its picks
    # rather than guess what its arrows meant (the page says to reload)
    stale = sorted(map(str, set(meta) - META_FIELDS))
    stations = None  # the event's stations and reversal flags, read once per batch
    for req in queue[-50:]:
        rid = req.get("id") if isinstance(req, dict) else None
        if rid in done:
            continue
        try:
            if store is None or store.read_only:
                require("review")  # AccessDenied on a read-only server
                raise ReviewError(f"the review database cannot be written ({_store_error()})")
            if stale:
                raise ReviewError(f"this page is out of date (it sent {stale[0][:20]!r}): reload it")
            if stations is None:
                stations = review_writes.event_stations(event_id)
            typed = req.get("reviewer") if isinstance(req, dict) else None
            change = review_writes.apply_pick(store, event_id, req, reviewer=typed, stations=stations)
        except (ReviewError, AccessDenied) as exc:
            msg = html.Span(str(exc), className="text-danger")
        else:
            msg = _change_text(change)
        if isinstance(rid, str):
            acked.append(rid)
            done.add(rid)
    sig = _signature(store, event_id) if store is not None and isinstance(event_id, str) else None
    return {"n": reviews.get("n", 0) + 1, "sig": sig, "acked": acked[-100:]}, msg


def _change_text(change) -> str:
    key_s = f"{change.network}.{change.station}"
    if not change.changed:
        return f"{key_s}: unchanged ({_pol_word(change.new)})"
    if change.new is None:
        return f"{key_s}: review cleared by {change.reviewer} (batch picks apply)"
    return f"{key_s} → {_pol_word(change.new)} by {change.reviewer} (was {_pol_word(change.old)})"


def _pol_word(p):
    return {1: "↑ up", -1: "↓ down", 0: "∅ undetermined", None: "not reviewed"}.get(p, str(p))


def _signature(store: ReviewStore, event_id: str) -> str:
    df = store.picks(event_id)
    return f"{len(df)}:{df['updated_at'].max() if len(df) else ''}"


@dash.callback(
    Output(BALL, "figure"), Output(WAVES, "figure"), Output(PANEL, "children"), Output(TABLE, "data"),
    Output(TABLE, "style_data_conditional"), Output(NOTE, "children"), Output("ev-ball-legend", "children"),
    Output(BP_LO, "invalid"), Output(BP_HI, "invalid"), Output(BP_MSG, "children"),
    Input(CURSOR, "data"), Input(REVIEWS, "data"), Input(MECH, "value"), Input(REINV, "data"),
    Input(VIEW, "value"), Input(BP_ON, "value"), Input(BP_LO, "value"), Input(BP_HI, "value"),
    State(META, "data"),
    prevent_initial_call=True,
)
def render(cursor, _reviews, choice, _reinv, mode, bp_on, lo, hi, meta):
    """Redraw what changed: a new station -> Patch the highlights; new picks -> Patch the
    symbols/colours; another mechanism, view or filter -> rebuild that figure."""
    if not meta:
        raise PreventUpdate
    ctx = event_context(meta["event_id"])
    if ctx is None:
        raise PreventUpdate
    trig = set(dash.ctx.triggered_prop_ids.values())
    reviewed = _reviewed(ctx["event_id"])
    reinv = _reinversion(ctx["event_id"])
    choice, mech, acc, rays = _chosen(ctx, choice, reinv)
    table = station_table_for(ctx, reviewed, mech, rays)
    keys = meta.get("keys") or []
    current = keys[cursor] if isinstance(cursor, int) and 0 <= cursor < len(keys) else None
    band, invalid = _band(bp_on, lo, hi, ctx["sampling_rate"])

    # beachball
    legend = no_update
    if trig & {MECH, REINV}:
        ball = ef.mechanism_figure(mech, table, acc, current, note=_no_mech_note(ctx))
        legend = _ball_legend(ball.layout.meta or {}, ctx)
    elif trig & {REVIEWS, CURSOR}:
        ball = Patch()
        style = ef.station_marker_style(table, current)
        ring = ef.BALL_TRACES["ring"]
        ball["data"][ring]["x"], ball["data"][ring]["y"] = style["ring_x"], style["ring_y"]
        if REVIEWS in trig:
            i = ef.BALL_TRACES["stations"]
            ball["data"][i]["marker"]["symbol"] = style["symbol"]
            ball["data"][i]["marker"]["color"] = style["color"]
            ball["data"][i]["marker"]["size"] = style["size"]
            ball["data"][i]["marker"]["line"]["color"] = style["line_color"]
            ball["data"][i]["hovertext"] = style["hovertext"]
    else:
        ball = no_update

    # waveforms
    if trig & {VIEW, BP_ON, BP_LO, BP_HI}:
        if BP_LO in trig or BP_HI in trig:
            if not bp_on:
                waves = no_update
            else:
                waves = ef.waveform_figure(ctx["waves"], table, mode=mode, band=band, current=current)
        else:
            waves = ef.waveform_figure(ctx["waves"], table, mode=mode, band=band, current=current)
    elif trig & {REVIEWS, CURSOR, MECH, REINV}:
        wkeys = [k for k in table["key"] if k in set(ctx["wkeys"])]
        st = ef.waveform_styles(table, wkeys, current, mode)
        waves = Patch()
        for i in range(len(wkeys)):
            waves["data"][i]["line"]["color"] = st["colors"][i]
            waves["data"][i]["line"]["width"] = st["widths"][i]
            waves["layout"]["annotations"][i]["text"] = st["side"][i]
        ci = st["current_index"]
        waves["layout"]["shapes"][1]["y0"] = (-ci - 0.5) if ci is not None else 1
        waves["layout"]["shapes"][1]["y1"] = (-ci + 0.5) if ci is not None else 1
    else:
        waves = no_update
    note = _view_note(ctx, mode) if VIEW in trig else no_update
    return (ball, waves, _panel(table, current, mode), _table_rows(table), _table_styles(current), note, legend,
            bool(invalid), bool(invalid), invalid or "")


def _used(polarity, source) -> str:
    """The "used" text of a station: arrow and source (``↓ cnn``), "–" when no polarity is
    used; a missing source (None or NaN, as a row of the table gives it) is never printed."""
    if not (isinstance(polarity, (int, float)) and np.isfinite(polarity)):
        return "–"
    return f"{ef.arrow(polarity)} {source}" if isinstance(source, str) and source else ef.arrow(polarity)


def _panel(table: pd.DataFrame, current: str | None, mode: str):
    if current is None or current not in set(table["key"]):
        return html.Span("No station to review for this event.", className="fm-note")
    r = table.set_index("key").loc[current]

    def item(label, value, cls=""):
        return html.Span([html.Span(label, className="fm-ev-k"), html.Span(value, className=f"fm-ev-v {cls}")],
                         className="fm-ev-item")

    fit = {None: ("–", ""), True: ("✓ fits", "text-success"), False: ("✗ misfit", "text-danger")}[r["agreement"]]
    rev = (f"{ef.arrow(r['reviewed_polarity'])} {r['reviewer']}" if np.isfinite(r["reviewed_polarity"]) else "–")
    return [
        html.Span(current, className="fm-ev-cur"),
        item("az", _fmt(r["azimuth_deg"], ".0f", "°")),
        item("takeoff", _fmt(r["takeoff_deg"], ".0f", "°")),
        item("dist", _fmt(r["distance_km"], ".2f", " km")),
        item(r["auto_method"] or "auto", f"{ef.arrow(r['auto_polarity'])} p↓rec {_fmt(r['prob_down_recorded'], '.2f')}"),
        item("SNR", _fmt(r["snr"], ".1f")),
        item("published", ef.arrow(r["published_polarity"])),
        item("manual", ef.arrow(r["manual_polarity"])),
        item("reviewed", rev, "fm-ev-rev" if rev != "–" else ""),
        item("used", _used(r["polarity"], r["polarity_source"])),
        item("mechanism", fit[0], fit[1]),
        *([item("recorded", "reversed", "text-muted")] if bool(r["reversed"]) and mode == "recorded" else []),
    ]


@dash.callback(
    Output(JOB, "data"), Output(POLL, "disabled"), Output(REINV_STATUS, "children"),
    Input(REINV_BTN, "n_clicks"),
    State(META, "data"), State(REVIEWER, "data"),
    prevent_initial_call=True,
)
def start_reinversion(n, meta, reviewer):
    """Queue a background re-inversion (returns at once; :func:`poll_reinversion` follows it)."""
    if not n or not isinstance(meta, dict):
        raise PreventUpdate
    try:
        if review_store() is None or review_store().read_only:
            require("reinvert")  # AccessDenied on a read-only server
            raise ReviewError(f"the review database cannot be written ({_store_error()})")
        job_id = review_writes.start_reinversion(get_provider().data_dir, meta.get("event_id"), reviewer)
    except (ReviewError, AccessDenied) as exc:
        return no_update, True, html.Span(str(exc), className="text-danger")
    job = review_store().job(job_id)
    return {"job_id": job_id}, False, _job_text(job, None)


@dash.callback(
    Output(REINV, "data"), Output(POLL, "disabled", allow_duplicate=True),
    Output(REINV_STATUS, "children", allow_duplicate=True), Output(COMPARE, "figure"), Output(METRICS, "children"),
    Output(MECH, "options"), Output(MECH, "value"),
    Input(POLL, "n_intervals"),
    State(JOB, "data"), State(META, "data"), State(MECH, "value"),
    prevent_initial_call=True,
)
def poll_reinversion(_n, job_ref, meta, choice):
    """Follow the job; when it is done show the new mechanism beside the old ones."""
    store = review_store()
    if store is None or not job_ref or not meta:
        return no_update, True, no_update, no_update, no_update, no_update, no_update
    job = store.job(job_ref.get("job_id"))
    if job is None:
        return no_update, True, "job not found", no_update, no_update, no_update, no_update
    if job["status"] in ("queued", "running"):
        return no_update, False, _job_text(job, None), no_update, no_update, no_update, no_update
    ctx = event_context(meta["event_id"])
    reinv = store.latest_reinversion(meta["event_id"])
    if job["status"] == "error":
        return no_update, True, _job_text(job, reinv), no_update, no_update, no_update, no_update
    options = _mech_options(ctx, reinv)
    new_choice = "reinverted" if reinv and reinv.get("strike") is not None else choice
    return ({"id": reinv["id"] if reinv else None}, True, _job_text(None, reinv), _compare_figure(ctx, reinv),
            _metrics(ctx, reinv), options, new_choice)


@dash.callback(
    Output(DOWNLOAD, "data"),
    Input(DOWNLOAD_BTN, "n_clicks"),
    State(META, "data"), State(MECH, "value"),
    prevent_initial_call=True,
)
def download(n, meta, choice):
    """The station table as shown (true-motion polarities, agreement with the drawn mechanism)."""
    if not n or not meta:
        raise PreventUpdate
    ctx = event_context(meta["event_id"])
    reinv = _reinversion(ctx["event_id"])
    choice, mech, _, rays = _chosen(ctx, choice, reinv)
    table = station_table_for(ctx, _reviewed(ctx["event_id"]), mech, rays)
    df = ef.station_csv_frame(table, ctx["event_id"], choice)
    return dcc.send_data_frame(df.to_csv, f"event_{ctx['event_id']}_stations.csv", index=False)


@dash.callback(
    Output(QUAKEML, "data"),
    Input(QUAKEML_BTN, "n_clicks"),
    State(META, "data"),
    prevent_initial_call=True,
)
def download_quakeml(n, meta):
    """The event as QuakeML, written by :mod:`pipeline.export.run` as
    ``python -m pipeline export --format quakeml --event <id>`` writes it."""
    if not n or not meta:
        raise PreventUpdate
    from pipeline.export import run, selection

    p = get_provider()
    sel = selection.select(p, event_id=meta["event_id"])
    return dcc.send_bytes(run.quakeml_bytes(p, sel), f"event_{meta['event_id']}.xml")
