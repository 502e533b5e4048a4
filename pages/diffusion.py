"""Diffusion page (``/diffusion``): distance against time from an origin event with the
front ``r = sqrt(4 pi D t)``, D fitted to hold a chosen share of the events (with a
bootstrap interval), a comparison D, the original's reference envelopes, and the activation
player (events and mechanisms up to a time on a km map of the cluster).

Thin wiring only: rows come from :class:`components.data.DataProvider` (the shared
filters), the analysis from :mod:`pipeline.analysis.diffusion`, the fit interval, figures
and export from :mod:`components.diffusion_figures`.

The set is a named mechanism subset of the dataset (``pipeline.ingest.regions.SUBSETS`` for ToC2ME,
``pipeline.demo.scenario.SUBSETS`` for the demo; default ``SWe-lowdip``) or all catalogue events of a
cluster; data that name neither (a user's own project) get one set, every event. The page keeps its
controls in the URL next to the filters: ``set``, ``origin``, ``dist``, ``strike``, ``q`` (%), ``D``
(comparison, m²/s) and ``t`` (player, s since the origin).

The layout holds the first analysis and player frame for its URL (:func:`analysis_answer`,
:func:`build_frame`): a load draws without the analyse → player round trips; the callbacks answer changes.
"""
from __future__ import annotations

import functools
import math
from typing import NamedTuple

import dash
import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import ALL, Input, Output, Patch, State, dcc, html
from dash.exceptions import PreventUpdate

from components import diffusion_figures as dff
from components import filter_bar
from components.data import get_provider
from components.filters import DEFAULT_POPULATION, NONE, POPULATIONS, Filters, _as_params, _first, population_caption
from components.layout import image_name, no_data, page_title
from pipeline.analysis import diffusion as dif
from queries import diffusion as dq
from queries.caps import SAMPLE_SEED

dash.register_page(__name__, path="/diffusion", name="Diffusion", order=4,
                   title=page_title("Diffusion fronts"))

PAGE = "diffusion"
IDS = filter_bar.ids(PAGE)
DT_GRAPH, MAP_GRAPH = "dif-dt-graph", "dif-map-graph"
SET, DIST, STRIKE, ORIGIN, ORIGIN_RESET, ORIGIN_MSG = (
    "dif-set", "dif-dist", "dif-strike", "dif-origin", "dif-origin-reset", "dif-origin-msg")
Q, COMPARE, COMPARE_TEXT, FIT, SHARES = "dif-q", "dif-compare", "dif-compare-text", "dif-fit", "dif-shares"
TIME, PLAY, INTERVAL, BOOKMARKS, PLAYER_TEXT = "dif-t", "dif-play", "dif-interval", "dif-bookmarks", "dif-player-text"
ANALYSIS, STATE, URL_SYNC, DT_CAPTION, STRIKE_ROW = "dif-analysis", "dif-state", "dif-url-sync", "dif-dt-caption", \
    "dif-strike-row"
CSV_BUTTON, CSV_DOWNLOAD = "dif-csv", "dif-csv-download"
BOOKMARK = "dif-bookmark"
URL_DUMMY = "dif-url-dummy"
TABLES = ("events", "mechanisms", "frame")

PAGE_KEYS = ("set", "origin", "dist", "strike", "q", "D", "t")
DEFAULT_SUBSET = "SWe-lowdip"
DEFAULT_Q = 90
Q_RANGE = (50, 100)
D_RANGE = (1e-3, 1.0)
#: the activation bookmarks belong to this ToC2ME cluster
BOOKMARK_CLUSTER = "SWe"
RECENT_S = 6 * 3600.0
PLAY_FRAMES = 80
#: the player's time between frames (ms): at 1x speed the whole range in PLAY_FRAMES x 0.7 s = 56 s
PLAY_INTERVAL_MS = 700
#: the speed control's choices: each frame advances ``speed x range / PLAY_FRAMES``, a frame every
#: PLAY_INTERVAL_MS (so 4x plays the range in 14 s with 20 frames, 0.5x in 112 s with 160). The
#: wait stays fixed because each frame is drawn on the server: a shorter one would queue frames.
PLAY_SPEEDS = (0.5, 1, 2, 4)
SPEED = "dif-speed"


# -- page state (URL) ---------------------------------------------------------------------
def _dataset(provider) -> str | None:
    """The ``frame`` table's ``dataset`` (it selects the named subsets), or None when the
    frame names none (a user's own project: no named subsets, which is not an error).

    Errors reading the frame propagate. They used to become None here, and the page then said
    "These data have no subsets or clusters to analyse" about data that have them."""
    frame = provider.frame()
    if "dataset" not in frame.columns or frame.empty or pd.isna(frame["dataset"].iloc[0]):
        return None
    return str(frame["dataset"].iloc[0])


#: the set of data without named subsets or clusters (a user's own project): every event
ALL_EVENTS = "all:"


def set_options(provider) -> list[dict]:
    """Dropdown options: the dataset's named subsets (mechanisms), then every cluster (all
    its catalogue events). Values ``subset:<name>`` / ``cluster:<name>``. Data with neither
    get one set, every catalogue event (:data:`ALL_EVENTS`)."""
    out = [{"label": f"{s.label} · mechanisms", "value": f"subset:{s.name}", "title": s.description}
           for s in dff.subsets_for(_dataset(provider))]
    clusters = [c for c in provider.filter_options().get("clusters", []) if c != NONE]
    out += [{"label": f"{c} · all catalogue events", "value": f"cluster:{c}"} for c in clusters]
    if not out:
        out = [{"label": "all catalogue events", "value": ALL_EVENTS,
                "title": "these data have no named subsets or clusters"}]
    return out


def default_set(options: list[dict]) -> str | None:
    values = [o["value"] for o in options]
    want = f"subset:{DEFAULT_SUBSET}"
    return want if want in values else (values[0] if values else None)


def _clean_id(v) -> str | None:
    return v.strip() if isinstance(v, str) and 0 < len(v.strip()) <= 64 and v.strip().isprintable() else None


def page_state(query, options: list[dict]) -> dict:
    """The page's controls from a query string or mapping; defaults for absent or bad
    values. Never raises."""
    try:
        params = _as_params(query)
    except Exception:  # noqa: BLE001 - hostile input must never raise
        params = {}
    values = [o["value"] for o in options]
    set_value = next((v for v in params.get("set", []) if v in values), None) or default_set(options)
    method = next((v for v in params.get("dist", []) if v in dif.DISTANCE_METHODS), "signed_epicentral")
    strike = _first(params.get("strike", []), _num)
    q = _first(params.get("q", []), _num)
    D = _first(params.get("D", []), _num)
    t = _first(params.get("t", []), _num)
    return {
        "set": set_value,
        "origin": next((c for c in map(_clean_id, params.get("origin", [])) if c), None),
        "dist": method,
        "strike": None if strike is None else strike % 360.0,
        "q": DEFAULT_Q if q is None else int(round(min(max(q, Q_RANGE[0]), Q_RANGE[1]))),
        "D": dff.DEFAULT_COMPARE_D if D is None or D <= 0 else min(max(D, D_RANGE[0]), D_RANGE[1]),
        "t": t,
    }


def _num(v):
    """A finite float from text (any magnitude), or None."""
    if isinstance(v, str):
        v = v.strip()
        if len(v) > 32:
            return None
        try:
            x = float(v)
        except ValueError:
            return None
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        x = float(v)
    else:
        return None
    return x if math.isfinite(x) else None


# -- analysis (cached per selection) ---------------------------------------------------------
@functools.lru_cache(maxsize=6)  # each entry: at most caps.diffusion_events events and their mechanisms
def _resolve_cached(data_dir: str, version: tuple, cap: int, query: str, set_value: str, origin_id: str | None,
                    method: str, strike: float | None):
    return _resolve(get_provider(), query, set_value, origin_id, method, strike)


def resolve(query: str, set_value: str | None, origin_id: str | None, method: str, strike: float | None) -> dict:
    """Everything the page draws for one selection (cached; callers must not modify).

    Keys: ``label``; ``events`` (the set, with ``t_h``); ``mechanisms`` (the set's
    mechanisms, for the player); ``context`` (the cluster's events, grey on the map, or
    None); ``cluster``; ``angles``; ``origin`` (dict with ``x_km``/``y_km``) or None;
    ``origin_note`` (why a requested origin was not used) ; ``strike`` (used) and
    ``strike_default``; ``dt`` (the distance-time table); ``matched`` (filtered mechanism
    rows or events); ``kind`` (``subset``/``cluster``/``all``); ``message`` (an empty-state text);
    ``set_size`` (events of the set before the cap) and ``cap`` (``caps.diffusion_events``):
    above it ``events``/``mechanisms``/``context`` are the seeded sample of
    :mod:`queries.diffusion`, and everything here is computed on it."""
    p = get_provider()
    version = p._version("events", "mechanisms", "frame")
    return _resolve_cached(str(p.data_dir), version, p.caps.diffusion_events, query or "", set_value or "",
                           origin_id, method, strike)


def _resolve(p, query: str, set_value: str, origin_id: str | None, method: str, strike: float | None) -> dict:
    f = Filters.from_query(query)
    cap = p.caps.diffusion_events
    dataset = _dataset(p)
    kind, _, name = (set_value or "").partition(":")
    out = {"label": name or "–", "kind": kind, "events": pd.DataFrame(), "mechanisms": pd.DataFrame(),
           "context": None, "cluster": None, "angles": ("strike", "dip", "rake"), "origin": None,
           "origin_note": None, "strike": None, "strike_default": None, "dt": pd.DataFrame(), "matched": 0,
           "message": None, "filters": f, "set_size": 0, "cap": cap}
    out["population"], out["population_note"] = f, None
    if kind == "subset":
        subset = next((s for s in dff.subsets_for(dataset) if s.name == name), None)
        if subset is None:
            out["matched"] = p.matched_mechanisms(f)
            out["message"] = f"Unknown subset {name!r}"
            return out
        out["label"] = subset.label
        if subset.population and f.population == DEFAULT_POPULATION and subset.population != f.population:
            # a subset cut on another population (ToC2ME's SWe sets: quality A and B) uses it
            # while the bar shows its default; an explicit choice in the bar is respected
            f = f.replace(population=subset.population)
            out["population_note"] = f"the subset's own population ({POPULATIONS[subset.population].label})"
        out["population"] = f
        try:
            # the mask is row-wise: the rows are read in batches and only the subset's kept
            # (every column of 116,518 mechanisms at once cost ~250 MB on a fresh process)
            sel = p.mechanisms_per_event(f, keep=subset.mask)
        except KeyError as exc:  # a column the subset needs is not in these tables
            out["matched"] = p.matched_mechanisms(f)
            out["message"] = f"Subset {subset.label} needs column {exc} (not in these tables)"
            return out
        out["matched"] = sel.attrs["matched"]
        clusters = sel["cluster"].dropna() if "cluster" in sel else pd.Series([], dtype=object)
        out["cluster"] = clusters.mode().iloc[0] if len(clusters) else None
        sel = dq.sample_rows(p, sel, cap)  # the analysed set: bounded (queries.diffusion)
        out["set_size"] = sel.attrs["matched"]
        out["mechanisms"] = sel
        out["events"] = sel
        if out["cluster"] is not None:
            out["context"] = dq.cluster_events(p, f, out["cluster"], cap)
        out["angles"] = dff.angle_columns(sel, dataset, name)
    elif kind == "cluster":
        out["label"] = f"cluster {name}"
        out["cluster"] = name
        out["events"] = dq.cluster_events(p, f, name, cap)
        out["set_size"] = out["events"].attrs["matched"]
        out["mechanisms"] = dq.mechanisms_of(p, f, name, out["events"])
        out["matched"] = int(p.counts(f).iloc[0]["events"])
    elif kind == "all":
        out["label"] = "all events"
        out["events"] = dq.cluster_events(p, f, None, cap)
        out["set_size"] = out["events"].attrs["matched"]
        out["mechanisms"] = dq.mechanisms_of(p, f, None, out["events"])
        out["matched"] = int(p.counts(f).iloc[0]["events"])
    else:
        out["message"] = "These data have no subsets or clusters to analyse"
        return out
    ev = out["events"]
    if len(ev) == 0:
        out["message"] = f"No event of {out['label']} matches the filters"
        return out
    # origin: the earliest event of the set, or a chosen catalogue event
    origin = None
    if origin_id:
        hit = ev[ev["event_id"] == origin_id]
        row = hit.iloc[0] if len(hit) else None
        if row is None:
            cat = p.event_by_id(origin_id)
            row = cat.iloc[0] if len(cat) else None
        if row is None:
            out["origin_note"] = f"unknown event id {origin_id!r}: using the earliest event of the set"
        else:
            origin = {k: row[k] for k in ("event_id", "time", "lat", "lon", "depth_km", "x_km", "y_km")}
    if origin is None:
        row = ev.iloc[int(np.argmin(ev["time"].to_numpy()))]
        origin = {k: row[k] for k in ("event_id", "time", "lat", "lon", "depth_km", "x_km", "y_km")}
    out["origin"] = origin
    out["strike_default"] = dff.set_strike(out["mechanisms"], out["angles"])
    used_strike = strike if strike is not None else (out["strike_default"] if out["strike_default"] is not None
                                                     else 0.0)
    out["strike"] = used_strike
    dt = dif.distance_time(ev, {k: origin[k] for k in ("event_id", "time", "lat", "lon", "depth_km")}, method,
                           strike_deg=used_strike)
    out["dt"] = dt
    ev = ev.merge(dt[["event_id", "t_h", "t_s", "distance_m"]], on="event_id", how="left")
    out["events"] = ev
    return out


def sample_note(r: dict) -> str | None:
    """The page's statement that the analysed set is a sample (None when it is not)."""
    if r.get("set_size", 0) <= len(r["events"]):
        return None
    return (f"a seeded sample of {len(r['events']):,} of the set's {r['set_size']:,}: the earliest plus the others "
            f"with the smallest hash of the event id (cap {r['cap']:,}); the fit, the bootstrap and the player use "
            "this sample")


def _fit(r: dict, q_pct: int) -> dict:
    return dff.fit_envelope(r["dt"], q=q_pct / 100.0) if len(r["dt"]) else dff.fit_envelope(
        pd.DataFrame({"t_s": [], "distance_m": []}), q=q_pct / 100.0)


def _bookmarks(dataset: str | None, r: dict) -> list[dict]:
    """The six activation times (ToC2ME, SWe sets only) as ``{label, s, text}``."""
    if dataset != "toc2me" or r.get("cluster") != BOOKMARK_CLUSTER or r["origin"] is None:
        return []
    b = dif.activation_bookmarks()
    t0 = pd.Timestamp(r["origin"]["time"])
    t0 = t0.tz_localize("UTC") if t0.tzinfo is None else t0
    return [{"label": lab, "s": round((t - t0).total_seconds(), 2),
             "text": f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 10000:02d}"} for lab, t in zip(b["label"], b["time"])]


def _t_range(r: dict, bookmarks: list[dict]) -> tuple[float, float]:
    dt = r["dt"]
    ts = dt["t_s"].to_numpy(dtype=float) if len(dt) else np.array([0.0])
    vals = np.concatenate([ts, [b["s"] for b in bookmarks]]) if bookmarks else ts
    lo, hi = float(np.floor(np.nanmin(vals))), float(np.ceil(np.nanmax(vals)))
    return (lo, hi if hi > lo else lo + 1.0)


def _slider_marks(lo: float, hi: float, bookmarks: list[dict]) -> dict:
    if bookmarks:
        return {str(b["s"]): {"label": b["label"].replace("Fault", "F"), "style": {"fontSize": "11px"}}
                for b in bookmarks}
    hours = (hi - lo) / 3600.0
    step = next((s for s in (1, 2, 6, 12, 24, 48, 96, 168) if hours / s <= 8), 336)
    first = math.ceil(lo / 3600.0 / step) * step
    return {str(int(h * 3600)): {"label": f"{h:g} h", "style": {"fontSize": "11px"}}
            for h in np.arange(first, hi / 3600.0 + 1e-9, step)}


# -- layout ----------------------------------------------------------------------------------
def _about(dataset, cap: int):
    return [
        html.P(["Model: a pore-pressure front from the origin reaches r = √(4πDt) after t seconds (Shapiro et al. "
                "1997); D in m²/s. ", html.B("D is fitted"), ": the smallest D whose envelope holds the chosen share q "
                "of the events after the origin (the original drew 0.01, 0.0316 and 0.1 and called 0.0316 the best "
                "fit by eye). Interval: 95 % percentile bootstrap over events (seeded); when D is the largest "
                "critical D (q = 100 %) its upper limit is the Robson–Whitlock end-point bound instead, because a "
                "bootstrap never exceeds the sample maximum."]),
        html.P(["Origin: the earliest event of the set by default; type an event id (any catalogue event) or "
                "click an event in the plot to use it instead, ", html.I("earliest"), " goes back."]),
        html.P(["If events fill the front evenly, a q-share envelope gives about q·D; only q = 100 % estimates "
                "the front itself, but one outlier then sets it. ", html.B("Distances:"), " see the definition "
                "under the plot; the default is the original's signed epicentral distance."]),
        html.P(["Player: grey = all events of the cluster; coloured = the set's events up to t (ringed: the last "
                "6 h); beachballs = only the mechanisms up to t (the original showed all of them at every "
                "frame), lower hemisphere, coloured by group. Times keep their fractions of a second. "
                f"▶ Play steps through the range in {PLAY_FRAMES} frames {PLAY_INTERVAL_MS / 1000:g} s apart "
                f"({PLAY_FRAMES * PLAY_INTERVAL_MS / 1000:g} s); the speed control "
                f"({', '.join(f'{v:g}×' for v in PLAY_SPEEDS)}) moves that much further per frame. ",
                "The six bookmarks are the original's fault-activation times (ToC2ME SWe)."
                if dataset == "toc2me" else "This dataset has no activation bookmarks."]),
        html.P([f"Bounded per request: a set of more than {cap:,} events is analysed on a seeded sample of "
                f"{cap:,} — its earliest event plus the others with the smallest DuckDB hash of "
                f"'{SAMPLE_SEED}' + event id (uniform over the set, the same for the same selection); the plot, the "
                "fit, its bootstrap and the player then use that sample, and the fit panel says so."],
               className="mb-0"),
    ]


def _label(text, html_for=None):
    return dbc.Label(text, className="fm-label", html_for=html_for)


def _graph(gid, figure, height, filename, drag="zoom"):
    return dcc.Loading(dcc.Graph(
        id=gid, figure=figure, style={"height": height},
        config={"displaylogo": False, "showTips": False, "responsive": True, "scrollZoom": drag == "pan",
                "modeBarButtonsToRemove": ["select2d", "lasso2d"],
                "toImageButtonOptions": {"filename": filename, "scale": 2}}),
        type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6})


def _compare_value(state: dict) -> float:
    """The compare slider's value (log10 of the comparison D in m²/s, to its step)."""
    return round(math.log10(state["D"]), 2)


def _controls(state: dict, options: list[dict], first: AnalysisAnswer, compare_text):
    """The side card's controls for ``state``, holding the first analysis ``first``."""
    return html.Div([
        _label("Event set", SET),
        dcc.Dropdown(id=SET, options=options, value=state["set"], clearable=False, searchable=False,
                     placeholder="no subsets or clusters", className="fm-dropdown mb-2"),
        _label("Distance", DIST),
        dbc.RadioItems(id=DIST, value=state["dist"], inline=True, className="btn-group fm-view mb-2 d-flex",
                       inputClassName="btn-check", labelClassName="btn btn-outline-secondary btn-sm",
                       labelCheckedClassName="active",
                       options=[{"label": "signed epicentral", "value": "signed_epicentral"},
                                {"label": "3-D", "value": "hypocentral_3d"},
                                {"label": "along strike", "value": "along_strike"}]),
        html.Div([
            _label("Strike (° from N)", STRIKE),
            dbc.Input(id=STRIKE, type="number", min=0, max=360, step=0.1, size="sm", debounce=True,
                      value=state["strike"], placeholder=first.strike_placeholder),
        ], id=STRIKE_ROW, className="mb-2", style=first.strike_row_style),
        _label("Origin event", ORIGIN),
        dbc.InputGroup([
            dbc.Input(id=ORIGIN, type="text", value=state["origin"] or "", debounce=True, size="sm",
                      placeholder="earliest event of the set", className="fm-time", invalid=first.origin_invalid),
            dbc.Button("earliest", id=ORIGIN_RESET, color="secondary", outline=True, size="sm"),
        ], size="sm"),
        html.Div(first.origin_msg, id=ORIGIN_MSG, className="fm-note mb-2"),
        _label("Share inside the fitted envelope (q, %)", Q),
        html.Div(dcc.Slider(id=Q, min=Q_RANGE[0], max=Q_RANGE[1], step=1, value=state["q"],
                            marks={v: {"label": f"{v}"} for v in (50, 60, 70, 80, 90, 100)},
                            updatemode="mouseup", allow_direct_input=False,
                            tooltip={"placement": "bottom", "always_visible": False}), className="fm-slider mb-1"),
        html.Div(first.fit, id=FIT, className="dif-fit mb-2"),
        _label("Compare: D (m²/s, log scale)", COMPARE),
        html.Div(dcc.Slider(id=COMPARE, min=-3, max=0, step=0.01, value=_compare_value(state),
                            marks={-3: "0.001", -2: "0.01", -1.5: "0.0316", -1: "0.1", 0: "1"},
                            updatemode="drag", allow_direct_input=False), className="fm-slider"),
        html.Div(compare_text, id=COMPARE_TEXT, className="mb-2", style={"fontSize": ".85rem"}),
        html.Div(first.shares, id=SHARES, className="mb-2"),
        html.Div([
            dbc.Button([html.Span("⤓ ", className="me-1"), "Download CSV"], id=CSV_BUTTON, color="primary",
                       size="sm", className="fm-download me-2"),
            html.Span("the distance–time table", className="fm-note"),
        ]),
    ])


def layout(**query):
    provider = get_provider()
    missing = provider.missing_tables(TABLES)
    if missing:
        return no_data(provider.data_dir, missing)
    f = Filters.from_query(query)
    options = set_options(provider)
    state = page_state(query, options)
    dataset = _dataset(provider)
    defaults = {"set": default_set(options), "dist": "signed_epicentral", "q": DEFAULT_Q,
                "D": dff.DEFAULT_COMPARE_D}
    # the first analysis and player frame come with the layout, computed from the controls'
    # values as ``analyse``, ``compare`` and ``player`` would: the page draws without a chain
    # of callback round trips after the layout's (issue 12); those callbacks answer changes only
    log_d = _compare_value(state)
    first = analysis_answer(f.to_query(), state["set"], state["origin"] or "", state["dist"], state["strike"],
                            state["q"], log_d, state["t"], None)
    compare_text = set_compare(first.figure, log_d, first.store)
    set_cursor(first.figure, first.t_value, first.store)
    map_fig, player_text = build_frame(first.store, first.t_value)
    return html.Div([
        filter_bar.filter_bar(PAGE, f, provider.filter_options(), display=False, table=False, drawn=first.drawn),
        dcc.Store(id=STATE, data=defaults),
        dcc.Store(id=URL_SYNC),
        dcc.Store(id=URL_DUMMY),
        dcc.Store(id=ANALYSIS, data=first.store),
        dcc.Download(id=CSV_DOWNLOAD),
        dcc.Interval(id=INTERVAL, interval=PLAY_INTERVAL_MS, disabled=True),
        dbc.Row([
            dbc.Col(dbc.Card([
                dbc.CardHeader(html.Div([
                    html.Span("Distance vs time", className="fw-semibold me-2"),
                    html.Span(first.caption, id=DT_CAPTION, className="fm-note"),
                ]), className="fm-card-header"),
                _graph(DT_GRAPH, first.figure, "540px", image_name("diffusion")),
            ], className="fm-map-card"), lg=8),
            dbc.Col(dbc.Card([
                dbc.CardHeader("Set, origin and fit", className="fm-card-header fw-semibold"),
                dbc.CardBody(_controls(state, options, first, compare_text), className="fm-details"),
            ], className="fm-side-card"), lg=4, className="fm-side"),
        ], className="g-3 mb-3"),
        dbc.Row([
            dbc.Col(dbc.Card([
                dbc.CardHeader(html.Div([
                    html.Span("Activation player", className="fw-semibold me-2"),
                    html.Span(player_text, id=PLAYER_TEXT, className="fm-note"),
                ]), className="fm-card-header"),
                html.Div([
                    dbc.Button("▶ Play", id=PLAY, color="primary", outline=True, size="sm", className="me-2",
                               style={"minWidth": "5.5rem"}),
                    html.Div(dbc.Select(id=SPEED, value="1", size="sm", className="fm-player-speed",
                                        options=[{"label": f"{v:g}× speed", "value": f"{v:g}"} for v in PLAY_SPEEDS]),
                             className="me-3", style={"width": "7rem"},
                             title=f"playback speed: at 1× {PLAY_FRAMES} frames {PLAY_INTERVAL_MS / 1000:g} s apart; "
                                   "2× moves twice as far per frame"),
                    html.Div(dcc.Slider(id=TIME, min=first.t_min, max=first.t_max, step=1, value=first.t_value,
                                        updatemode="mouseup", allow_direct_input=False, marks=first.t_marks),
                             className="fm-slider flex-grow-1"),
                ], className="d-flex align-items-center px-3 pt-2"),
                html.Div(first.bookmarks, id=BOOKMARKS, className="px-3 pb-1"),
                _graph(MAP_GRAPH, map_fig, "520px", image_name("activation"), drag="pan"),
            ], className="fm-map-card"), lg=8),
            dbc.Col(dbc.Card([
                dbc.CardHeader("About this analysis", className="fm-card-header fw-semibold"),
                dbc.CardBody(_about(dataset, provider.caps.diffusion_events), className="fm-about"),
            ], className="fm-side-card"), lg=4, className="fm-side"),
        ], className="g-3"),
    ], className="fm-page fm-page-diffusion")


# -- rendering helpers --------------------------------------------------------------------------
def _fit_children(fit: dict, r: dict):
    if r["message"] or fit["reason"] and not np.isfinite(fit["D"]):
        return dbc.Alert(r["message"] or f"No fit: {fit['reason']}.", color="light", className="py-2 mb-0 small")
    interval = f"[{dff.format_D(fit['lo'])}, {dff.format_D(fit['hi'])}]"
    how = (f"{fit['ci']:.0%} bootstrap, {fit['n_boot']:,} resamples" if fit["interval"] == "bootstrap" else
           f"{fit['ci']:.0%}: bootstrap lower limit, Robson–Whitlock upper limit ({fit['n_boot']:,} resamples)")
    before = f"; {fit['n_before']} before the origin left out" if fit["n_before"] else ""
    return html.Div([
        html.Div([html.Span("fitted D = ", className="text-muted"),
                  html.B(dff.format_D(fit["D"]), className="dif-fit-d"), " m²/s ",
                  html.Span(interval, className="dif-fit-interval")], style={"fontSize": "1rem"}),
        html.Div(f"{fit['share']:.0%} of {fit['n']:,} events inside (q = {fit['q']:.0%}) · {how}{before}",
                 className="fm-note"),
        *([html.Div(f"Computed on {sample_note(r)}.", className="fm-note dif-sample-note")] if sample_note(r) else []),
    ], className="p-2 dif-fit-box", style={"background": "#f1f6ff", "borderRadius": "6px", "border": "1px solid #d7e5ff"},
        **{"data-d": repr(float(fit["D"])), "data-lo": repr(float(fit["lo"])), "data-hi": repr(float(fit["hi"]))})


def _shares_children(shares: pd.DataFrame):
    if len(shares) == 0 or shares["n"].iloc[0] == 0:
        return None
    rows = [html.Tr([html.Td(f"D = {dff.format_D(D)}"), html.Td(f"{s:.0%}", className="text-end dif-share"),
                     html.Td(f"{k:,} of {n:,}", className="text-end text-muted")],
                    **{"data-d": f"{D:g}"})
            for D, s, k, n in zip(shares["D"], shares["share"], shares["n_inside"], shares["n"])]
    return html.Div([
        html.Div("Original's envelopes (dotted): share inside", className="fm-label"),
        dbc.Table(html.Tbody(rows), size="sm", borderless=True, className="mb-0 dif-shares-table",
                  style={"fontSize": ".82rem", "fontVariantNumeric": "tabular-nums"}),
    ])


def _compare_text(D: float, crit: list, n: int):
    if not n:
        return html.Span(f"D = {dff.format_D(D)} m²/s", className="text-muted")
    k = int(np.searchsorted(np.asarray(crit, dtype=float), D * (1 + 1e-9), side="right"))
    return html.Span([f"D = {dff.format_D(D)} m²/s: ", html.B(f"{k / n:.0%}", className="dif-compare-share"),
                      f" inside ({k:,} of {n:,})"])


def _time_text(origin_time: str | None, t_s: float) -> str:
    if origin_time is None:
        return "–"
    t = pd.Timestamp(origin_time) + pd.Timedelta(seconds=float(t_s))
    return f"{t:%Y-%m-%d %H:%M:%S}.{int(round(t.microsecond / 10000)) % 100:02d}"


def build_analysis(query: str, set_value: str | None, origin: str | None, method: str, strike, q_pct: int,
                   compare_D: float):
    """Server-side path of the distance-time panel: (resolution, fit, figure)."""
    r = resolve(query, set_value, _clean_id(origin), method if method in dif.DISTANCE_METHODS else
                "signed_epicentral", _num(strike))
    fit = _fit(r, q_pct)
    fig = dff.distance_time_figure(r["dt"], fit, method=method, compare_D=compare_D, strike=r["strike"],
                                   uirevision=f"dt|{set_value}|{method}|{r['origin'] and r['origin']['event_id']}")
    if r["message"]:
        fig["layout"]["annotations"] = [{"text": r["message"], "showarrow": False, "xref": "paper", "yref": "paper",
                                         "x": 0.5, "y": 0.5, "font": {"size": 15, "color": "#666"}}]
    return r, fit, fig


class AnalysisAnswer(NamedTuple):
    """What the distance-time panel shows for one selection, in the order of ``analyse``'s
    outputs: the layout's first answer and every recomputation (a tuple, so the callback
    returns it as is)."""
    figure: dict
    fit: object
    shares: object
    drawn: dict
    store: dict
    origin_invalid: bool
    origin_msg: str
    strike_placeholder: str
    strike_row_style: dict | None
    caption: str
    t_min: float
    t_max: float
    t_marks: dict
    t_value: float
    bookmarks: list


def analysis_answer(query, set_value, origin, method, strike, q, log_d, t_value, previous) -> AnalysisAnswer:
    """The distance-time panel for the controls' values (as the components hold them: ``q`` in
    %, ``log_d`` = log10 of the comparison D in m²/s, ``t_value`` the player's time in s since
    the origin or None for the end of the range) and ``previous`` (the ``ANALYSIS`` store
    before, or None): the player's time stays where it was for the same selection and goes to
    the end of the range for a new one."""
    q = int(q if q is not None else DEFAULT_Q)
    compare_D = 10 ** float(log_d if log_d is not None else math.log10(dff.DEFAULT_COMPARE_D))
    r, fit, fig = build_analysis(query, set_value, origin, method, strike, q, compare_D)
    f = r["filters"]
    dataset = _dataset(get_provider())
    n_set = int(len(r["events"]))
    kind = "mechanisms" if r["kind"] == "subset" else "events"
    sampled = sample_note(r)
    if kind == "mechanisms":
        drawn = filter_bar.drawn_data(
            f, {"matched": int(get_provider().counts(f).iloc[0]["events"])},
            {"matched": r["matched"], "drawn": n_set, "cap": r["cap"],
             "note": f"{r['label']} only (one mechanism per event)" + (f"; {sampled}" if sampled else "")},
            population=r["population"].population)
    else:
        drawn = filter_bar.drawn_data(f, {"matched": r["matched"], "drawn": n_set, "cap": r["cap"],
                                          "note": f"{r['label']} only" + (f"; {sampled}" if sampled else "")},
                                      {"matched": int(len(r["mechanisms"]))})
    o = r["origin"]
    crit = np.sort(r["dt"]["critical_D"].dropna().to_numpy(dtype=float)) if len(r["dt"]) else np.array([])
    bookmarks = _bookmarks(dataset, r)
    lo, hi = _t_range(r, bookmarks) if o is not None else (0.0, 1.0)
    same_selection = previous and previous.get("key") == [query, set_value, o and o["event_id"]]
    if t_value is None or (previous and not same_selection):
        t_value = hi
    t_value = min(max(float(t_value), lo), hi)
    origin_time = None if o is None else pd.Timestamp(o["time"]).isoformat()
    store = {
        "key": [query, set_value, o and o["event_id"]],
        "query": query or "", "set": set_value, "origin": o and o["event_id"], "method": method,
        "strike": r["strike"], "q": q, "D_fit": fit["D"] if np.isfinite(fit["D"]) else None,
        "crit": [float(v) for v in crit[np.isfinite(crit)]] + [None] * int(np.sum(~np.isfinite(crit))),
        "n": int(crit.size), "t_max_h": fig["layout"]["meta"]["t_max_h"], "signed": fig["layout"]["meta"]["signed"],
        "compare_index": fig["layout"]["meta"]["compare"], "origin_time": origin_time, "range": [lo, hi],
        "bookmarks": bookmarks,
    }
    origin_bad = bool(r["origin_note"])
    origin_msg = r["origin_note"] or (f"{o['event_id']} · {_time_text(origin_time, 0)} UTC" if o else "")
    placeholder = (f"average of the set: {r['strike_default']:.1f}" if r["strike_default"] is not None
                   else "0 (no mechanisms: north)")
    strike_style = None if method == "along_strike" else {"display": "none"}
    definition = dff.DISTANCE_DEFINITIONS.get(method, "")
    if method == "along_strike":
        definition += f", strike {r['strike']:.1f}°"
    pop_text = population_caption(r["population"], len(r["mechanisms"]), one_per_event=True)
    if r["population_note"]:
        pop_text += f" — {r['population_note']}"
    caption = (f"{r['label']}: {n_set:,} {kind}" + (f" ({sampled})" if sampled else "")
               + (f" · distance = {definition}" if o else "") + f" · {pop_text}")
    buttons = [dbc.Button([html.B(b["label"]), html.Span(f" {b['text'][5:]}", className="ms-1")],
                          id={"type": BOOKMARK, "index": i}, color="secondary", outline=True, size="sm",
                          className="me-1 mb-1 py-0", title=f"{b['label']}: {b['text']} UTC")
               for i, b in enumerate(bookmarks)]
    return AnalysisAnswer(fig, _fit_children(fit, r), _shares_children(dff.shares(r["dt"], dff.REFERENCE_D)), drawn,
                          store, origin_bad, origin_msg, placeholder, strike_style, caption, lo, hi,
                          _slider_marks(lo, hi, bookmarks), t_value, buttons)


def set_compare(target, log_d, store: dict):
    """Move the comparison envelope of the distance-time figure ``target`` (its dict, or a
    ``Patch`` of it) to D = 10**``log_d`` m²/s and name its share inside; returns the text
    under the compare slider."""
    D = 10 ** float(log_d if log_d is not None else math.log10(dff.DEFAULT_COMPARE_D))
    crit = [v if v is not None else math.inf for v in store["crit"]]
    x, y = dff.envelope_xy(D, store["t_max_h"], store["signed"])
    i = store["compare_index"]
    target["data"][i]["x"] = x
    target["data"][i]["y"] = y
    share = (np.searchsorted(np.asarray(crit), D * (1 + 1e-9), side="right") / store["n"]) if store["n"] else None
    target["data"][i]["name"] = f"compare: D = {dff.format_D(D)}" + (f" ({share:.0%} inside)" if share is not None
                                                                      else "")
    return _compare_text(D, crit, store["n"])


def set_cursor(target, t_s: float, store: dict) -> None:
    """Put the player's time cursor of the distance-time figure ``target`` (its dict, or a
    ``Patch`` of it) at ``t_s`` s after the origin; hidden without an origin."""
    cursor = target["layout"]["shapes"][0]
    cursor["x0"] = t_s / 3600.0
    cursor["x1"] = t_s / 3600.0
    cursor["visible"] = bool(store["origin"])


# -- callbacks ---------------------------------------------------------------------------------
@dash.callback(
    Output(DT_GRAPH, "figure"), Output(FIT, "children"), Output(SHARES, "children"), Output(IDS.drawn, "data"),
    Output(ANALYSIS, "data"), Output(ORIGIN, "invalid"), Output(ORIGIN_MSG, "children"),
    Output(STRIKE, "placeholder"), Output(STRIKE_ROW, "style"), Output(DT_CAPTION, "children"),
    Output(TIME, "min"), Output(TIME, "max"), Output(TIME, "marks"), Output(TIME, "value"),
    Output(BOOKMARKS, "children"),
    Input(IDS.filters, "data"), Input(SET, "value"), Input(ORIGIN, "value"), Input(DIST, "value"),
    Input(STRIKE, "value"), Input(Q, "value"),
    State(COMPARE, "value"), State(TIME, "value"), State(ANALYSIS, "data"),
    prevent_initial_call=True,  # the layout holds the first analysis
)
def analyse(query, set_value, origin, method, strike, q, log_d, t_value, previous):
    """The panel again when a filter or a control changes (:func:`analysis_answer`)."""
    return analysis_answer(query, set_value, origin, method, strike, q, log_d, t_value, previous)


@dash.callback(
    Output(DT_GRAPH, "figure", allow_duplicate=True), Output(COMPARE_TEXT, "children"),
    Input(COMPARE, "value"), Input(ANALYSIS, "data"),
    prevent_initial_call=True,
)
def compare(log_d, store):
    """Move the comparison envelope (a Patch) and show the share inside it."""
    if not store:
        raise PreventUpdate
    patch = Patch()
    return patch, set_compare(patch, log_d, store)


def build_frame(store: dict, t_s: float):
    """Server-side path of the player: (map figure, caption) at ``t_s`` s after the origin."""
    r = resolve(store["query"], store["set"], store["origin"], store["method"], store["strike"])
    o = r["origin"]
    if r["message"] or o is None:
        return dff.empty_figure(r["message"] or "No event to show"), ""
    t0 = pd.Timestamp(store["origin_time"])
    t = t0 + pd.Timedelta(seconds=float(t_s))
    mech = r["mechanisms"]
    frame = dif.activation_frame(r["events"], mech if len(mech) else None, t, recent_s=RECENT_S)
    context = r["context"] if r["kind"] == "subset" else None
    extent = dff.map_extent(r["events"], context)
    fig = dff.activation_map_figure(frame, context, o, angles=r["angles"], front_D=store["D_fit"], t_s=float(t_s),
                                    extent=extent, uirevision=f"map|{store['set']}|{store['query']}")
    n_mech = len(mech)
    text = (f"t = {_time_text(store['origin_time'], t_s)} UTC · T = {t_s / 3600.0:.2f} h · "
            f"{frame['n_active']:,} of {len(r['events']):,} events · "
            f"{frame['n_mechanisms']:,} of {n_mech:,} mechanisms")
    return fig, text


@dash.callback(
    Output(MAP_GRAPH, "figure"), Output(PLAYER_TEXT, "children"),
    Output(DT_GRAPH, "figure", allow_duplicate=True),
    Input(ANALYSIS, "data"), Input(TIME, "value"),
    prevent_initial_call=True,
)
def player(store, t_s):
    if not store:
        raise PreventUpdate
    t_s = float(t_s if t_s is not None else store["range"][1])
    fig, text = build_frame(store, t_s)
    patch = Patch()
    set_cursor(patch, t_s, store)
    return fig, text, patch


dash.clientside_callback(
    """
    function(nPlay, nTick, bookmarkClicks, disabled, value, store, speed) {
        const ctx = dash_clientside.callback_context;
        const trig = (ctx.triggered && ctx.triggered.length) ? ctx.triggered[0].prop_id : '';
        const nu = dash_clientside.no_update;
        if (!store || !store.range) { return [nu, nu, nu]; }
        const lo = store.range[0], hi = store.range[1];
        const mult = parseFloat(speed);
        const step = (hi - lo) / %d * ((isFinite(mult) && mult > 0) ? mult : 1);
        if (trig.indexOf('%s') !== -1) {
            const id = JSON.parse(trig.split('.')[0]);
            const b = (store.bookmarks || [])[id.index];
            if (!b || !ctx.triggered[0].value) { return [nu, nu, nu]; }
            return [b.s, true, '▶ Play'];
        }
        if (trig.indexOf('%s.n_clicks') === 0) {
            if (disabled) {
                const start = (value === null || value >= hi - 1e-6) ? lo : value;
                return [start, false, '❚❚ Pause'];
            }
            return [nu, true, '▶ Play'];
        }
        if (trig.indexOf('%s.n_intervals') === 0 && !disabled) {
            const next = Math.min(hi, (value === null ? lo : value) + step);
            if (next >= hi) { return [hi, true, '▶ Play']; }
            return [next, nu, nu];
        }
        return [nu, nu, nu];
    }
    """ % (PLAY_FRAMES, BOOKMARK, PLAY, INTERVAL),
    Output(TIME, "value", allow_duplicate=True), Output(INTERVAL, "disabled"), Output(PLAY, "children"),
    Input(PLAY, "n_clicks"), Input(INTERVAL, "n_intervals"), Input({"type": BOOKMARK, "index": ALL}, "n_clicks"),
    State(INTERVAL, "disabled"), State(TIME, "value"), State(ANALYSIS, "data"), State(SPEED, "value"),
    prevent_initial_call=True,
)


@dash.callback(Output(ORIGIN, "value"), Input(ORIGIN_RESET, "n_clicks"), Input(DT_GRAPH, "clickData"),
               prevent_initial_call=True)
def choose_origin(n_reset, click):
    """'earliest' clears the origin (default); clicking an event in the plot makes it the origin."""
    if dash.ctx.triggered_id == ORIGIN_RESET:
        return ""
    point = ((click or {}).get("points") or [None])[0]
    eid = (point or {}).get("customdata")
    if not isinstance(eid, str) or not _clean_id(eid):
        raise PreventUpdate
    return eid


# the page's controls -> its URL keys (defaults omitted); computed in the browser
dash.clientside_callback(
    """
    function(setValue, origin, dist, strike, q, logD, t, store, defaults) {
        const p = new URLSearchParams();
        if (setValue && setValue !== defaults.set) p.append('set', setValue);
        if (origin) p.append('origin', origin);
        if (dist && dist !== defaults.dist) p.append('dist', dist);
        if (strike !== null && strike !== undefined && strike !== '' && dist === 'along_strike') p.append('strike', strike);
        if (q !== null && q !== undefined && q !== defaults.q) p.append('q', q);
        if (logD !== null && logD !== undefined) {
            const D = Math.pow(10, logD);
            if (Math.abs(D - defaults.D) / defaults.D > 0.01) p.append('D', Number(D.toPrecision(3)));
        }
        if (store && store.range && t !== null && t !== undefined && t < store.range[1] - 0.5) {
            p.append('t', Math.round(t * 100) / 100);
        }
        return p.toString();
    }
    """,
    Output(URL_SYNC, "data"),
    Input(SET, "value"), Input(ORIGIN, "value"), Input(DIST, "value"), Input(STRIKE, "value"), Input(Q, "value"),
    Input(COMPARE, "value"), Input(TIME, "value"), Input(ANALYSIS, "data"), State(STATE, "data"),
)

# the filter bar writes ``?<filters>``; add the page's keys back (after its own update)
filter_bar.sync_page_query(PAGE_KEYS, URL_DUMMY, URL_SYNC, IDS.filters)


@dash.callback(
    Output(CSV_DOWNLOAD, "data"),
    Input(CSV_BUTTON, "n_clicks"),
    State(ANALYSIS, "data"),
    prevent_initial_call=True,
)
def download(n_clicks, store):
    if not n_clicks or not store:
        raise PreventUpdate
    r = resolve(store["query"], store["set"], store["origin"], store["method"], store["strike"])
    D = store["D_fit"] if store["D_fit"] is not None else float("nan")
    name = f"{get_provider().file_prefix()}_diffusion_{(store['set'] or 'none').replace(':', '_')}_{store['method']}.csv"
    return dcc.send_data_frame(dff.csv_table(r["dt"], D).to_csv, name, index=False)
