"""Strike–time page (``/strike-time``): a cluster's mechanism strikes (normalised to
90–270°) against time, with every fracturing stage of every well and the daily injection
rate, plus the mean ± sd strike of each group. Data without named clusters (a user's own
project) plot every mechanism; without stages or injection the figure and caption say so.

Thin wiring only: rows come from :meth:`components.data.DataProvider.mechanisms_per_event`
(the shared filters, one mechanism per event, the chosen cluster), numbers from
:mod:`pipeline.analysis.strike_time`, the figure from :mod:`components.strike_time_figures`.

Zooming or box-selecting the time axis sets the shared filter's time window (the filter
bar's time inputs, hence the URL and every other page); double-click (autoscale) clears it.
The page keeps its own control (``stcluster``) in the URL query string next to the filters.
"""
from __future__ import annotations

from html import escape
from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from components import filter_bar
from components import strike_time_figures as stf
from components.data import get_provider
from components.filters import NONE, Filters, _as_params, format_time, population_words
from components.layout import image_name, no_data, page_title
from pipeline.analysis.strike_time import injection_bars, stage_markers, strike_time_table, time_range_from_plotly
from queries import strike_time as stq

dash.register_page(__name__, path="/strike-time", name="Strike–time", order=3,
                   title=page_title("Strike vs time"))

PAGE = "strike-time"
IDS = filter_bar.ids(PAGE)
GRAPH = "st-graph"
CLUSTER = "st-cluster"
STATS = "st-stats"
CAPTION = "st-caption"
STATE = "st-state"
URL_SYNC = "st-url-sync"
RELAYOUT = "st-relayout"  # the graph's time-axis changes only (filter_bar.forward_time_axis_changes)
CSV_BUTTON, CSV_DOWNLOAD = "st-csv", "st-csv-download"
#: the page's own URL key (the shared filters use others)
PAGE_KEYS = ("stcluster",)
DEFAULT_CLUSTER = "NSw"
TABLES = ("events", "mechanisms", "stages", "injection", "frame")


def _clusters(provider) -> list[str]:
    return [c for c in provider.filter_options().get("clusters", []) if c != NONE]


def default_cluster(clusters: list[str]) -> str | None:
    """NSw when the data have it, else the first cluster (None without clusters)."""
    if not clusters:
        return None
    return DEFAULT_CLUSTER if DEFAULT_CLUSTER in clusters else clusters[0]


def page_state(query, clusters: list[str]) -> dict:
    """``{'cluster': name}`` from a query string or mapping (``stcluster``); the default
    (:func:`default_cluster`) when absent or malformed. Never raises."""
    try:
        params = _as_params(query)
    except Exception:  # noqa: BLE001 - hostile input must never raise
        params = {}
    value = next((v for v in params.get("stcluster", []) if isinstance(v, str) and 0 < len(v) <= 64
                  and v.isprintable()), None)
    return {"cluster": value or default_cluster(clusters)}


def page_query(state: dict, clusters: list[str]) -> str:
    """Canonical query string of the page's control (the default omitted)."""
    c = state.get("cluster")
    return urlencode([("stcluster", c)]) if c and c != default_cluster(clusters) else ""


def _about(points_cap: int):
    return [
        html.P(["Strike of nodal plane 1 folded into 90–270° (s − 180 if s > 270, s + 180 if s < 90), as the "
                "original. Marker area grows with ML, (ML + 4)³ pt². Colours: groups, classified once on the "
                "0.1° angles (the original NSw script re-classified on integers, moving 2 events)."]),
        html.P(["Stages: ", html.B("every"), " stage of every well (ticks in the lane strip, faint lines below; "
                "the first stage of each well dashed) — the original drew only each well's first stage. "
                "Stage times have hour resolution and no stated time zone (taken as UTC)."]),
        html.P(["Injection: one bar per daily row, spanning the day it describes (00–24 h UTC; the original "
                "centred bars on midnight, 12 h early). The ToC2ME rows carry no well id, so the rate is not "
                "split by well; days with several rows show them side by side."]),
        html.P([f"At most {points_cap:,} mechanisms are drawn (beyond that a fixed sample by event id; the filter "
                "bar then says 'N matched / N drawn'); the legend counts, the statistics and the CSV use all."]),
        html.P(["Zoom or box-select along the time axis to set the time window of ", html.B("all pages"),
                " (the filter bar and the URL follow); double-click to clear it."], className="mb-0"),
    ]


def layout(**query):
    provider = get_provider()
    missing = provider.missing_tables(TABLES)
    if missing:
        return no_data(provider.data_dir, missing)
    f = Filters.from_query(query)
    options = provider.filter_options()
    clusters = _clusters(provider)
    state = page_state(query, clusters)
    choices = clusters + ([state["cluster"]] if state["cluster"] and state["cluster"] not in clusters else [])
    # the figure comes with the layout, not after a callback round trip (issue 12); update
    # redraws it when the filters or the cluster change
    fig, stats, caption, drawn = build_figure(f.to_query(), state["cluster"])
    return html.Div([
        filter_bar.filter_bar(PAGE, f, options, display=False, table=False, drawn=drawn),
        dcc.Store(id=STATE, data=page_query(state, clusters)),
        dcc.Store(id=URL_SYNC),
        dcc.Store(id=RELAYOUT),
        dcc.Download(id=CSV_DOWNLOAD),
        dbc.Row([
            dbc.Col(dbc.Card([
                dbc.CardHeader(html.Div([
                    html.Span("Strike vs time", className="fw-semibold me-2"),
                    html.Span(caption, id=CAPTION, className="fm-note"),
                ]), className="fm-card-header"),
                dcc.Loading(dcc.Graph(
                    id=GRAPH, figure=fig,
                    style={"height": "calc(100vh - 250px)", "minHeight": "460px"},
                    config={"displaylogo": False, "showTips": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d"],
                            "toImageButtonOptions": {"filename": image_name("strike_time"), "scale": 2}}),
                    type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6}),
            ], className="fm-map-card"), lg=9),
            dbc.Col([
                dbc.Card([
                    dbc.CardHeader("Cluster", className="fm-card-header fw-semibold"),
                    dbc.CardBody([
                        dcc.Dropdown(id=CLUSTER, options=[{"label": c, "value": c} for c in choices],
                                     value=state["cluster"], clearable=False, searchable=False,
                                     placeholder="all events (no clusters in these data)",
                                     className="fm-dropdown mb-2"),
                        html.Div([
                            dbc.Button([html.Span("⤓ ", className="me-1"), "Download CSV"], id=CSV_BUTTON,
                                       color="primary", size="sm", className="fm-download me-2"),
                            html.Span("the plotted mechanisms", className="fm-note"),
                        ]),
                    ]),
                ], className="fm-side-card mb-3"),
                dbc.Card([
                    dbc.CardHeader("Strike by group (mean ± sd)", className="fm-card-header fw-semibold"),
                    dbc.CardBody(_stats_children(stats), id=STATS, className="fm-details"),
                ], className="fm-side-card mb-3"),
                dbc.Card([dbc.CardHeader("About this plot", className="fm-card-header fw-semibold"),
                          dbc.CardBody(_about(provider.caps.points), className="fm-about")], className="fm-side-card"),
            ], lg=3, className="fm-side"),
        ], className="g-3"),
    ], className="fm-page fm-page-strike-time")


# -- server-side builders (also what tests and the benchmark call) ----------------------------
def build(query: str, cluster: str | None):
    """(table, stage markers, injection bars, filters, matched mechanism rows) of the page."""
    p = get_provider()
    f = Filters.from_query(query or "")
    # cluster None: the data have no named clusters (a user's own project): every mechanism
    mech = stq.mechanisms(p, f, cluster or None)
    matched = mech.attrs["matched"]
    table = strike_time_table(mech)
    return table, stage_markers(p.stages()), injection_bars(p.injection()), f, matched


def _time_range(f: Filters, table, markers, bars):
    """``(x range or None, note or None)`` for the shared time window: a missing side falls
    back to the extent of what is drawn. A one-sided window beyond that extent (a start after
    the data's end, an end before their start) would make the axis run backwards: the axis
    then spans one day forward from the typed side, and ``note`` says where the data are."""
    if f.time_start is None and f.time_end is None:
        return None, None
    ext = stf._time_extent(table["time"] if len(table) else None, markers["time"] if len(markers) else None,
                           bars["x_start"] if len(bars) else None, bars["x_end"] if len(bars) else None)
    lo = pd.Timestamp(f.time_start) if f.time_start is not None else (ext[0] if ext else None)
    hi = pd.Timestamp(f.time_end) if f.time_end is not None else (ext[1] if ext else None)
    if lo is None or hi is None:
        return None, None
    if lo < hi:
        return (lo, hi), None
    # only one side was given (Filters swaps a reversed pair) and it lies beyond the data
    span = f"the data run {ext[0]:%Y-%m-%d} → {ext[1]:%Y-%m-%d}"
    if f.time_start is not None:
        return (lo, lo + pd.Timedelta(days=1)), f"nothing after the start {lo:%Y-%m-%d %H:%M}: {span}"
    return (hi - pd.Timedelta(days=1), hi), f"nothing before the end {hi:%Y-%m-%d %H:%M}: {span}"


def build_figure(query: str, cluster: str | None):
    """(figure, stats DataFrame, caption text, drawn-counts store value) for the page."""
    table, markers, bars, f, matched = build(query, cluster)
    cap = get_provider().caps.points
    shown = stq.drawn(table, cap)
    time_range, range_note = _time_range(f, table, markers, bars)
    fig = stf.strike_time_figure(shown, markers, bars, time_range=time_range,
                                 uirevision=f"st|{cluster}|{f.data_query()}",
                                 group_counts=None if len(shown) == len(table) else
                                 table["group"].fillna("none").astype(str).value_counts().to_dict())
    fig["layout"]["meta"]["matched"] = int(len(table))
    if len(table) == 0:
        known = _clusters(get_provider())
        name = escape(cluster or "")  # from the URL: Plotly reads tags in annotation text
        msg = (f"No cluster {name} in these data (clusters: {', '.join(known)})" if cluster and known
               and cluster not in known else
               f"No mechanism of cluster {name} matches the filters" if cluster else
               "No mechanisms in this data set" if get_provider().filter_options().get("n_mechanisms") == 0 else
               "No mechanism matches the filters")
        if range_note:
            msg += f"<br>({range_note})"
        fig["layout"]["annotations"] = [{**a, "text": msg} if a["text"] == stf.NO_MECHANISM else a
                                        for a in fig["layout"]["annotations"]]
    counts = get_provider().counts(f).iloc[0]
    drawn = filter_bar.drawn_data(
        f, {"matched": int(counts["events"])},
        {"matched": int(matched), "drawn": int(len(shown)), "cap": cap,
         "note": (f"only cluster {cluster}, " if cluster else "") + "one mechanism per event"
                 + (f"; {len(table):,} plotted, a fixed sample by event id of {len(shown):,} drawn (cap {cap:,}); "
                    "the statistics use all" if len(shown) < len(table) else "")})
    n_wells = markers["well"].nunique() if len(markers) else 0
    caption = (f"{f'cluster {cluster}' if cluster else 'all events (no clusters in these data)'}: "
               f"{len(table):,} mechanisms, one per event ({population_words(f, one_per_event=True)})"
               + (f", {len(shown):,} drawn (a fixed sample by event id, cap {cap:,}; the statistics use all)"
                  if len(shown) < len(table) else "") + " · "
               + (f"{len(markers):,} stages of {n_wells} wells" if len(markers) else "no stages in this data set")
               + " · " + (f"{len(bars):,} daily injection rows" if len(bars) else "no injection data"))
    return fig, stf.group_stats(table), caption, drawn


def _stats_children(stats: pd.DataFrame):
    if len(stats) == 0:
        return html.P("No mechanisms to summarise.", className="text-muted mb-0")
    head = html.Thead(html.Tr([html.Th("Group"), html.Th("N", className="text-end"),
                               html.Th("Strike", className="text-end")]))
    rows = [html.Tr([
        html.Td([html.Span(className="fm-swatch", style={"background": r["colour"]}), r["group"]]),
        html.Td(f"{int(r['n']):,}", className="text-end"),
        html.Td(stf.format_mean_sd(r["mean"], r["std"]), className="text-end"),
    ], className=f"st-stat st-stat-{r['group']}") for _, r in stats.iterrows()]
    return [
        dbc.Table([head, html.Tbody(rows)], size="sm", borderless=True, className="mb-1 st-stats-table",
                  style={"fontVariantNumeric": "tabular-nums"}),
        html.P("Normalised strike (90–270°); sd with n − 1. Linear statistics are fine here: no group straddles "
               "the 90/270° wrap.", className="fm-note mb-0"),
    ]


# -- callbacks --------------------------------------------------------------------------------
@dash.callback(
    Output(GRAPH, "figure"), Output(STATS, "children"), Output(CAPTION, "children"), Output(IDS.drawn, "data"),
    Input(IDS.filters, "data"), Input(CLUSTER, "value"),
    prevent_initial_call=True,  # the layout holds the first figure
)
def update(query, cluster):
    fig, stats, caption, drawn = build_figure(query, cluster)
    return fig, _stats_children(stats), caption, drawn


@dash.callback(Output(STATE, "data"), Input(CLUSTER, "value"), prevent_initial_call=True)
def update_state(cluster):
    clusters = _clusters(get_provider())
    return page_query({"cluster": cluster}, clusters)


# the filter bar writes ``?<filters>``; add the page's key back (after its own update)
filter_bar.sync_page_query(PAGE_KEYS, URL_SYNC, STATE, IDS.filters)
# only time-axis changes go on to the server (not the first draw's autosize: no round trip after it)
filter_bar.forward_time_axis_changes(RELAYOUT, GRAPH)


def brushed_window(relayout: dict | None):
    """What a zoom/brush on the time axis means for the shared filter: ``(start, end)``
    text for the filter bar's time inputs (minutes, start floored, end ceiled), ``('', '')``
    for an autoscale (clear the window), or None when the event does not touch the time
    axis (pan/zoom of the strike axis, legend clicks, resize)."""
    if not relayout:
        return None
    if relayout.get("xaxis.autorange"):
        return "", ""
    rng = time_range_from_plotly(relayout, "xaxis")
    if rng is None:
        return None
    lo, hi = rng
    lo, hi = lo.floor("min"), hi.ceil("min")
    if hi <= lo:
        hi = lo + pd.Timedelta(minutes=1)
    return format_time(lo.to_pydatetime()), format_time(hi.to_pydatetime(), end=True)


@dash.callback(
    Output(IDS.time_start, "value", allow_duplicate=True), Output(IDS.time_end, "value", allow_duplicate=True),
    Input(RELAYOUT, "data"), Input(GRAPH, "selectedData"),
    prevent_initial_call=True,
)
def brush(relayout, selected):
    """Time-axis zoom or box select -> the shared filter's time window."""
    trig = dash.ctx.triggered_prop_ids or {}
    if any(k.endswith("selectedData") for k in trig):
        rng = time_range_from_plotly(selected or {}, "xaxis")
        window = None if rng is None else brushed_window({"xaxis.range": [str(rng[0]), str(rng[1])]})
    else:
        window = brushed_window(relayout)
    if window is None:
        raise PreventUpdate
    return window


@dash.callback(
    Output(CSV_DOWNLOAD, "data"),
    Input(CSV_BUTTON, "n_clicks"),
    State(IDS.filters, "data"), State(CLUSTER, "value"),
    prevent_initial_call=True,
)
def download(n_clicks, query, cluster):
    if not n_clicks:
        raise PreventUpdate
    table = build(query, cluster)[0]
    name = f"{get_provider().file_prefix()}_strike_time_{cluster or 'all'}.csv".replace("/", "_")
    return dcc.send_data_frame(stf.csv_table(table, cluster).to_csv, name, index=False)
