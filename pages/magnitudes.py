"""Magnitudes page (``/magnitudes``): ML against time with its histogram, and the
frequency-magnitude distribution of the filtered events with Mc, b and a.

Thin wiring only: the selection is the shared filters (the ``events`` rows of
:meth:`components.data.DataProvider.filtered_sql`); numbers and figures come from
:mod:`components.magnitude_figures` (which uses :mod:`pipeline.analysis.magnitudes`).

Besides the shared filters, the page keeps its own controls in the URL query string
(``method``, ``corr``, ``mc``, ``pop``; see :func:`page_state`), so a reload or a shared
link restores them. The filter bar rewrites the query string with the filters only, so a
small clientside callback adds the page's keys back after every change of either.
"""
from __future__ import annotations

from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from components import filter_bar
from components import magnitude_figures as mf
from components.data import get_provider
from components.filters import Filters, _as_params, _first, parse_magnitude, population_of
from components.gl_pixel_ratio import screen_gl_pixel_ratio
from components.layout import image_name, no_data, page_title
from components.map_figure import empty_figure
from pipeline.analysis.magnitudes import magnitude_histograms
from queries import magnitudes as magq

dash.register_page(__name__, path="/magnitudes", name="Magnitudes", title=page_title("Magnitudes"),
                   order=1)

PAGE = "magnitudes"
IDS = filter_bar.ids(PAGE)
TIME_GRAPH = "mag-time-graph"
FMD_GRAPH = "mag-fmd-graph"
RESULTS = "mag-results"
STATE = "mag-state"
URL_SYNC = "mag-url-sync"
METHOD, CORR, FIXED, POP = "mag-method", "mag-corr", "mag-fixed-mc", "mag-pop"
#: the methods that use the fixed Mc field, and those that use the MAXC correction field
FIXED_METHOD, CORRECTED_METHODS = "fixed", ("maxc", "gft")
CORR_MSG = "mag-corr-msg"
FMD_BUTTON, FMD_DOWNLOAD = "mag-fmd-csv", "mag-fmd-download"
#: the page's own URL keys (the shared filters use others)
PAGE_KEYS = ("method", "corr", "mc", "pop")
CORR_LIMITS = (-1.0, 1.0)


def page_state(query) -> dict:
    """The page's controls from a query string or mapping: ``method`` (one of
    :data:`components.magnitude_figures.METHODS`), ``corr`` (MAXC correction within
    :data:`CORR_LIMITS`), ``mc`` (fixed Mc or None), ``pop`` (``all``/``resolved``). Never
    raises; bad values fall back to the defaults (:func:`correction_problem` says why, for
    the page to show)."""
    try:
        params = _as_params(query)
    except Exception:  # noqa: BLE001 - hostile input must never raise
        params = {}
    method = next((v for v in params.get("method", []) if v in mf.METHODS), mf.DEFAULT_METHOD)
    raw = params.get("corr", [])
    corr = None if correction_problem(raw[0] if raw else None) else _first(raw, parse_magnitude)
    corr = mf.DEFAULT_CORRECTION if corr is None else corr
    mc = _first(params.get("mc", []), parse_magnitude)
    pop = next((v for v in params.get("pop", []) if v in mf.POPULATIONS), "all")
    return {"method": method, "corr": corr, "mc": mc, "pop": pop}


def correction_problem(value) -> str | None:
    """Why a typed or URL MAXC correction is not used (the default is, instead), or None
    when it is usable or empty. Out-of-range values are refused, not clamped: a user who
    typed -5 must see that -5 is not what the numbers use."""
    if value is None or str(value).strip() == "":
        return None
    x = parse_magnitude(str(value))
    if x is None:
        return f"not a number: {str(value)[:20]!r}; the default {mf.DEFAULT_CORRECTION:+.2f} is used"
    if not CORR_LIMITS[0] <= x <= CORR_LIMITS[1]:
        return (f"{x:+g} is outside {CORR_LIMITS[0]:+g} … {CORR_LIMITS[1]:+g}; "
                f"the default {mf.DEFAULT_CORRECTION:+.2f} is used")
    return None


def page_query(state: dict) -> str:
    """Canonical query string of the page's controls (defaults omitted)."""
    out = []
    if state["method"] != mf.DEFAULT_METHOD:
        out.append(("method", state["method"]))
    if abs(state["corr"] - mf.DEFAULT_CORRECTION) > 1e-9:
        out.append(("corr", format(state["corr"], "g")))
    if state["mc"] is not None:
        out.append(("mc", format(state["mc"], "g")))
    if state["pop"] != "all":
        out.append(("pop", state["pop"]))
    return urlencode(out)


def _about(cap: int):
    return [
        html.P(["Selection: the events matching the filters (one row per catalogue event). ",
                html.B("Resolved"), " = events with a mechanism in the filter bar's mechanism population (by "
                "default one per event, quality A: on ToC2ME the paper's 2,519)."]),
        html.P(["One binning everywhere: 0.1-ML bins centred on multiples of 0.1 (half-way values go up); an event "
                "is “≥ Mc” when its binned ML is ≥ Mc, i.e. ML ≥ Mc − 0.05, for the plotted cumulative counts, "
                "the completeness test and the b-value alike. ", html.B("Mc"), " is a bin centre: maximum "
                "curvature (most populated bin) plus a correction (default +0.2, Woessner & Wiemer 2005), or the "
                "goodness-of-fit test (Wiemer & Wyss 2000; smallest Mc whose G-R model explains ≥ 95 % of the "
                "cumulative counts, else 90 %); a fixed Mc is moved to its bin's centre."]),
        html.P([html.B("b"), ": Aki–Utsu maximum likelihood over the binned magnitudes ≥ Mc with Utsu's "
                "bin-width correction (Mc − 0.05), ± Shi & Bolt (1982). ", html.B("a"), ": log10 N(≥Mc) + b·Mc, "
                "so the fitted line passes through the plotted cumulative count at Mc."]),
        html.P([f"The scatter draws at most {cap:,} events (the map's fixed random sample); the histogram, "
                "the FMD and the numbers always use every matched event, computed from the magnitude column only. "
                "Counts are computed, never typed in (the original hard-coded them)."], className="mb-0"),
    ]


def _controls(state: dict, corr_typed=None):
    problem = correction_problem(corr_typed)
    return html.Div([
        dbc.Label("Completeness method", className="fm-label", html_for=METHOD),
        dbc.Select(id=METHOD, options=[{"label": v, "value": k} for k, v in mf.METHODS.items()],
                   value=state["method"], size="sm", className="mb-2"),
        dbc.Row([
            dbc.Col([dbc.Label("MAXC correction", className="fm-label", html_for=CORR),
                     # no min/max: the browser would send None for -5 and the page could not say why
                     dbc.Input(id=CORR, type="number", value=parse_magnitude(str(corr_typed)) if problem else state["corr"],
                               step=0.05,
                               size="sm", debounce=True, invalid=bool(problem),
                               disabled=state["method"] not in CORRECTED_METHODS),
                     dbc.FormFeedback(problem, id=CORR_MSG, type="invalid")], width=6),
            dbc.Col([dbc.Label("Fixed Mc (ML)", className="fm-label", html_for=FIXED),
                     dbc.Input(id=FIXED, type="number", value=state["mc"], step=0.1, size="sm", debounce=True,
                               placeholder="e.g. -1.0", disabled=state["method"] != FIXED_METHOD)], width=6),
        ], className="g-2 mb-2"),
        dbc.Label("Population", className="fm-label", html_for=POP),
        dbc.RadioItems(id=POP, options=[{"label": v, "value": k} for k, v in mf.POPULATIONS.items()],
                       value=state["pop"], inline=True, className="btn-group fm-view mb-1 d-flex",
                       inputClassName="btn-check", labelClassName="btn btn-outline-secondary btn-sm",
                       labelCheckedClassName="active"),
    ], className="mb-2")


def _graph(gid, height, filename, figure=None):
    return dcc.Loading(dcc.Graph(
        id=gid, figure=figure if figure is not None else empty_figure("loading…"), style={"height": height},
        config={"displaylogo": False, "showTips": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"],
                "toImageButtonOptions": {"filename": filename, "scale": 2}}),
        type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6})


def layout(**query):
    provider = get_provider()
    missing = provider.missing_tables(("events", "mechanisms"))
    if missing:
        return no_data(provider.data_dir, missing)
    f = Filters.from_query(query)
    state = page_state(query)
    options = provider.filter_options()
    # both panels come with the layout: no round trip after the page's before they draw, and
    # the bar's counts need no second one; the controls' flags too, so no state round trip
    # precedes the FMD's (issue 12)
    time_figure, drawn = build_time_figure(f.to_query())
    fmd_figure, results, fmd_caption = fmd_panel(f.to_query(), page_query(state))
    return html.Div([
        filter_bar.filter_bar(PAGE, f, options, display=False, drawn=drawn),
        dcc.Store(id=STATE, data=page_query(state)),
        dcc.Store(id=URL_SYNC),
        dcc.Download(id=FMD_DOWNLOAD),
        dbc.Card([
            dbc.CardHeader(html.Div([
                html.Span("Magnitude vs time", className="fw-semibold"),
                html.Span("marker area grows with ML, (ML + 3)·8 as in the original; right: events per 0.1 ML "
                          "(all and resolved overlaid)", className="fm-note ms-2"),
            ]), className="fm-card-header"),
            _graph(TIME_GRAPH, "360px", image_name("magnitude_time"), time_figure),
        ], className="fm-map-card mb-3"),
        dbc.Row([
            dbc.Col(dbc.Card([
                dbc.CardHeader(html.Div([
                    html.Span("Frequency–magnitude distribution", className="fw-semibold"),
                    html.Span(fmd_caption, id="mag-fmd-caption", className="fm-note ms-2"),
                ]), className="fm-card-header"),
                _graph(FMD_GRAPH, "440px", image_name("fmd"), fmd_figure),
            ], className="fm-map-card"), lg=8),
            dbc.Col([
                dbc.Card([
                    dbc.CardHeader("Completeness and b-value", className="fm-card-header fw-semibold"),
                    dbc.CardBody([
                        _controls(state, _first_raw(query, "corr")),
                        html.Div(results, id=RESULTS, className="fm-details"),
                        html.Div([
                            dbc.Button([html.Span("⤓ ", className="me-1"), "FMD table CSV"], id=FMD_BUTTON,
                                       color="primary", size="sm", className="fm-download me-2"),
                            html.Span("filtered events: Download CSV in the filter bar", className="fm-note"),
                        ], className="mt-2"),
                    ]),
                ], className="fm-side-card mb-3"),
                dbc.Card([dbc.CardHeader("About these numbers", className="fm-card-header fw-semibold"),
                          dbc.CardBody(_about(provider.caps.map_events), className="fm-about")], className="fm-side-card"),
            ], lg=4, className="fm-side"),
        ], className="g-3"),
    ], className="fm-page fm-page-magnitudes")


def _first_raw(query, key: str):
    try:
        values = _as_params(query).get(key, [])
    except Exception:  # noqa: BLE001 - hostile input must never raise
        return None
    return values[0] if values else None


# -- callbacks --------------------------------------------------------------------------------
@dash.callback(
    Output(STATE, "data"), Output(FIXED, "disabled"), Output(CORR, "disabled"),
    Output(CORR, "invalid"), Output(CORR_MSG, "children"),
    Input(METHOD, "value"), Input(CORR, "value"), Input(FIXED, "value"), Input(POP, "value"),
    prevent_initial_call=True,  # the layout sets the same values from the URL (_controls)
)
def update_state(method, corr, mc, pop):
    corr = "" if corr is None else str(corr)
    state = page_state({"method": str(method or ""), "corr": corr, "mc": "" if mc is None else str(mc),
                        "pop": str(pop or "")})
    problem = correction_problem(corr)
    return (page_query(state), state["method"] != FIXED_METHOD, state["method"] not in CORRECTED_METHODS,
            bool(problem), problem)


# the filter bar writes ``?<filters>``; add the page's keys back (after its own update)
filter_bar.sync_page_query(PAGE_KEYS, URL_SYNC, STATE, IDS.filters)
# the ML-time scatter is WebGL: draw it at the screen's resolution (issue 12; components.gl_pixel_ratio)
screen_gl_pixel_ratio(TIME_GRAPH)


def _selection(provider, f: Filters):
    """(all magnitudes, resolved flags) of the filtered events."""
    df = magq.event_magnitudes(provider, f)
    return df["magnitude"].to_numpy(dtype=float), df["resolved"].to_numpy(dtype=bool)


def build_time_figure(query: str):
    """Server-side path of the ML-time panel: (figure, drawn-counts store value)."""
    f = Filters.from_query(query or "")
    p = get_provider()
    mags, resolved = _selection(p, f)
    hist = magnitude_histograms({"all": mags, "resolved": mags[resolved]}, mf.BIN_WIDTH)
    cap = p.caps.map_events
    points = p.events_for_map(f, cap=cap)[["event_id", "time", "magnitude", "group"]]
    points["resolved"] = points["group"].ne("none").to_numpy()
    n_all, n_res = len(mags), int(resolved.sum())
    counts = {"all": n_all, "resolved": n_res, "drawn_all": len(points),
              "drawn_resolved": int(points["resolved"].sum())}
    fig = mf.magnitude_time_figure(points, hist, counts)
    n_mech = int(p.counts(f).iloc[0]["mechanisms"]) if n_all else 0
    drawn = filter_bar.drawn_data(
        f, {"matched": n_all, "drawn": len(points), "cap": cap,
            "note": f"scatter: fixed random sample, cap {cap:,}; histogram and FMD use all"},
        {"matched": n_mech})
    return fig, drawn


def build_fmd(query: str, state_query: str):
    """Server-side path of the FMD panel: the :func:`fmd_analysis` dict (or None for an
    empty selection) and the page state."""
    f = Filters.from_query(query or "")
    state = page_state(state_query or "")
    mags, resolved = _selection(get_provider(), f)
    if state["pop"] == "resolved":
        mags = mags[resolved]
    if not np.isfinite(mags).any():
        return None, state
    return mf.fmd_analysis(mags, state["method"], state["corr"], state["mc"]), state


@dash.callback(
    Output(TIME_GRAPH, "figure"), Output(IDS.drawn, "data"),
    Input(IDS.filters, "data"), prevent_initial_call=True,  # the layout holds the first one
)
def update_time(query):
    return build_time_figure(query)


def _results(analysis, state):
    if analysis is None:
        what = "resolved mechanism" if state["pop"] == "resolved" else "event"
        return dbc.Alert([html.B(f"No {what} with a magnitude matches the filters."),
                          html.Div("Widen the time window or the magnitude range, or clear a filter.")],
                         color="secondary", className="fm-empty mb-0 py-2 small")
    items = mf.summary_items(analysis)
    rows = []
    for k, v in items:
        cls = "fm-b-value" if k == "b-value" else None
        rows += [html.Dt(k), html.Dd(v, className=cls)]
    return html.Dl(rows, className="fm-dl mb-0")


def fmd_panel(query: str, state_query: str):
    """(FMD figure, results list, caption) of the filtered events under the page state: the
    layout's first panel and every redraw."""
    analysis, state = build_fmd(query, state_query)
    pop = mf.POPULATIONS[state["pop"]].lower()
    if analysis is None:
        what = "resolved mechanism" if state["pop"] == "resolved" else "event"
        return empty_figure(f"No {what} matches the filters"), _results(None, state), ""
    n = int(analysis["result"]["n_total"])
    caption = (f"{pop}, {n:,} with ML · log scale · resolved = has a mechanism of the population "
               f"({population_of(Filters.from_query(query or '')).label})")
    return mf.fmd_figure(analysis), _results(analysis, state), caption


@dash.callback(
    Output(FMD_GRAPH, "figure"), Output(RESULTS, "children"), Output("mag-fmd-caption", "children"),
    Input(IDS.filters, "data"), Input(STATE, "data"),
    prevent_initial_call=True,  # the layout holds the first one
)
def update_fmd(query, state_query):
    return fmd_panel(query, state_query)


@dash.callback(
    Output(FMD_DOWNLOAD, "data"),
    Input(FMD_BUTTON, "n_clicks"),
    State(IDS.filters, "data"), State(STATE, "data"),
    prevent_initial_call=True,
)
def download_fmd(n_clicks, query, state_query):
    if not n_clicks:
        raise PreventUpdate
    analysis, state = build_fmd(query, state_query)
    if analysis is None:
        import pandas as pd

        table = pd.DataFrame(columns=["bin_centre_ml", "bin_low_ml", "bin_high_ml", "count", "cumulative",
                                      "gr_fit_cumulative", "mc", "b", "b_sigma", "a", "mc_method"])
    else:
        table = mf.fmd_table(analysis)
    return dcc.send_data_frame(table.to_csv, f"{get_provider().file_prefix()}_fmd_{state['pop']}.csv", index=False)
