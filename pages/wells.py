"""Wells and stages page (``/wells``): every stage of every well on a timeline with the
daily injection rate, and the table of stages, linked to the shared time window.

Zooming or panning the timeline's time axis sets the filters' time window (through the
filter bar's own time inputs, so the URL and every other page follow); a double-click
(autoscale) clears it. The window is drawn as a shaded band; the table lists the stages
inside it. Only the time window applies here: the other filters select events, not stages.

Thin wiring only: figures and tables come from :mod:`components.wells_figures`.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dash_table, dcc, html
from dash.exceptions import PreventUpdate

from components import filter_bar
from components import wells_figures as wf
from components.data import get_provider
from components.filters import Filters, format_time
from components.layout import image_name, no_data, page_title

dash.register_page(__name__, path="/wells", name="Wells", title=page_title("Wells and stages"),
                   order=5)

PAGE = "wells"
IDS = filter_bar.ids(PAGE)
GRAPH = "wells-timeline"
TABLE = "wells-table"
CAPTION = "wells-table-caption"
CSV_BUTTON, CSV_DOWNLOAD = "wells-csv", "wells-download"
RELAYOUT = "wells-relayout"
TABLES = ("stages", "injection", "events", "mechanisms")

COLUMNS = [
    {"id": "well", "name": "Well"},
    {"id": "stage_no", "name": "Stage", "type": "numeric"},
    {"id": "time", "name": "Time (UTC as given)"},
    {"id": "lat", "name": "Lat °N", "type": "numeric", "format": {"specifier": ".5f"}},
    {"id": "lon", "name": "Lon °E", "type": "numeric", "format": {"specifier": ".5f"}},
    {"id": "x_km", "name": "East km", "type": "numeric", "format": {"specifier": ".3f"}},
    {"id": "y_km", "name": "North km", "type": "numeric", "format": {"specifier": ".3f"}},
    {"id": "day_index", "name": "Day", "type": "numeric", "format": {"specifier": ".2f"}},
]


def _well_styles(wells):
    return [{"if": {"filter_query": f'{{well}} = "{w}"', "column_id": "well"},
             "boxShadow": f"inset 4px 0 0 {wf.well_color(w)}", "fontWeight": 600} for w in wells]


def _notes(injection):
    no_well = injection is None or "well" not in injection or injection["well"].isna().all()
    return [
        html.P(["Drag on the timeline to set the ", html.B("time window"), " of the filters (the URL and every "
                "page follow); double-click to clear it. Only the time window applies on this page."]),
        html.P([html.B("Stage times"), " come from the stage file at hour resolution and with no time zone stated "
                "(ToC2ME); they are shown as given, taken as UTC. Diamonds: each well's first stage."]),
        html.P([html.B("Injection"), " rows carry no well id in ToC2ME, so the bars are grey and not attributed "
                "to a well" if no_well else " is coloured by the well each row names",
                "; each bar spans its own calendar day (UTC), a day's rows side by side."]),
        html.P(["Fixed from the original figure: every stage of every well is drawn (not only each well's first), "
                "and daily bars are no longer centred on midnight (a −12 h shift)."], className="mb-0"),
    ]


def absent_note(provider):
    """An alert naming what this data set lacks of wells, stages and injection (all optional
    in a project), or None when it has all three."""
    has = {"wells": provider.has_table("wells") and len(provider.wells()) > 0,
           "stages": len(provider.stages()) > 0, "injection data": len(provider.injection()) > 0}
    absent = [k for k, v in has.items() if not v]
    if not absent:
        return None
    what = absent[0] if len(absent) == 1 else ", ".join(absent[:-1]) + " or " + absent[-1]
    return dbc.Alert([html.B(f"No {what} in this data set."),
                      " They are optional (a project's ", html.Code("wells"), ", ", html.Code("stages"), " and ",
                      html.Code("injection"), " files); the other pages work without them."],
                     color="secondary", className="fm-empty fm-wells-absent py-2 small mb-3")


def layout(**query):
    provider = get_provider()
    missing = provider.missing_tables(TABLES)
    if missing:
        return no_data(provider.data_dir, missing)
    f = Filters.from_query(query)
    options = provider.filter_options()
    stages = provider.stages()
    wells = sorted(stages["well"].astype(str).unique().tolist())
    # the figure and the table come with the layout, not after a callback round trip (issue 12)
    fig, rows, caption, graph_caption = build(f.to_query())
    return html.Div([
        filter_bar.filter_bar(PAGE, f, options, display=False, table=False),
        absent_note(provider),
        dcc.Download(id=CSV_DOWNLOAD),
        dcc.Store(id=RELAYOUT),
        dbc.Row([
            dbc.Col(dbc.Card([
                dbc.CardHeader(html.Div([
                    html.Span("Stages and daily injection", className="fw-semibold"),
                    html.Span(graph_caption, id="wells-graph-caption", className="fm-note ms-2"),
                ]), className="fm-card-header"),
                dcc.Loading(dcc.Graph(
                    id=GRAPH, figure=fig, style={"height": "460px"},
                    config={"displaylogo": False, "showTips": False, "responsive": True, "doubleClick": "autosize",
                            "modeBarButtonsToRemove": ["select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "resetScale2d"],
                            "toImageButtonOptions": {"filename": image_name("stages"), "scale": 2}}),
                    type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6}),
            ], className="fm-map-card"), lg=9),
            dbc.Col(dbc.Card([dbc.CardHeader("About this page", className="fm-card-header fw-semibold"),
                              dbc.CardBody(_notes(provider.injection()), className="fm-about")],
                             className="fm-side-card"), lg=3, className="fm-side"),
        ], className="g-3 mb-3"),
        dbc.Card([
            dbc.CardHeader(html.Div([
                html.Div([html.Span("Stages per well", className="fw-semibold"),
                          html.Span(caption, id=CAPTION, className="fm-note ms-2")]),
                dbc.Button([html.Span("⤓ ", className="me-1"), "Download CSV"], id=CSV_BUTTON, color="primary",
                           size="sm", className="fm-download"),
            ], className="d-flex justify-content-between align-items-center"), className="fm-card-header"),
            dash_table.DataTable(
                id=TABLE, columns=COLUMNS, data=rows, page_action="native", page_size=15, sort_action="native",
                style_as_list_view=True, style_table={"overflowX": "auto"},
                style_header={"fontWeight": 600, "backgroundColor": "#f8f9fa", "borderBottom": "1px solid #dee2e6"},
                style_cell={"fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px",
                            "textAlign": "right", "border": "none", "borderBottom": "1px solid #eef0f2"},
                style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"} for c in ("well", "time")],
                style_data_conditional=_well_styles(wells),
            ),
        ], className="fm-table-card"),
    ], className="fm-page fm-page-wells")


def _window(query: str):
    f = Filters.from_query(query or "")
    return f.time_start, f.time_end


def build(query: str):
    """Server-side path: (figure, table rows, caption texts) for the filters ``query``."""
    p = get_provider()
    start, end = _window(query)
    stages, injection = p.stages(), p.injection()
    fig = wf.timeline_figure(stages, injection, start, end)
    table = wf.stage_table(stages, start, end)
    rows = table.drop(columns="in_window").assign(time=table["time"].dt.strftime("%Y-%m-%d %H:%M"))
    rows = rows.astype(object).where(rows.notna(), None).to_dict("records")
    n_all = len(stages)
    if start is None and end is None:
        caption = f"all {n_all:,} stages of {stages['well'].nunique()} wells (no time window)"
        graph_caption = "drag to set the time window"
    else:
        span = f"{format_time(start) or '…'} → {format_time(end, end=True) or '…'}"
        caption = f"{len(table):,} of {n_all:,} stages in the time window {span}"
        graph_caption = f"time window {span} shaded · double-click to clear"
        if not rows:
            caption += " — no stage in the time window"
    if n_all == 0:
        caption = "no stages in this data set"
    return fig, rows, caption, graph_caption


@dash.callback(
    Output(GRAPH, "figure"), Output(TABLE, "data"), Output(TABLE, "page_current"), Output(CAPTION, "children"),
    Output("wells-graph-caption", "children"),
    Input(IDS.filters, "data"),
    prevent_initial_call=True,  # the layout holds the first figure and table
)
def update(query):
    fig, rows, caption, graph_caption = build(query)
    return fig, rows, 0, caption, graph_caption


# only time-axis changes go on to the server
filter_bar.forward_time_axis_changes(RELAYOUT, GRAPH)


@dash.callback(
    Output(IDS.time_start, "value", allow_duplicate=True), Output(IDS.time_end, "value", allow_duplicate=True),
    Input(RELAYOUT, "data"),
    State(IDS.filters, "data"),
    prevent_initial_call=True,
)
def brush(relayout, query):
    """A zoom/pan of the time axis sets the window; autoscale clears it (via the bar's
    inputs, whose sync callback updates the URL and the filters store)."""
    ask = wf.window_from_relayout(relayout)
    if ask is None:
        raise PreventUpdate
    kind, start, end = ask
    f = Filters.from_query(query or "")
    new = f.replace(time_start=start, time_end=end) if kind == "set" else f.replace(time_start=None, time_end=None)
    if new.data_query() == f.data_query():
        raise PreventUpdate
    return format_time(new.time_start), format_time(new.time_end, end=True)


@dash.callback(
    Output(CSV_DOWNLOAD, "data"),
    Input(CSV_BUTTON, "n_clicks"),
    State(IDS.filters, "data"),
    prevent_initial_call=True,
)
def download(n_clicks, query):
    """The stages table shown (the stages in the time window), as CSV (times ISO UTC)."""
    if not n_clicks:
        raise PreventUpdate
    start, end = _window(query)
    table = wf.stage_table(get_provider().stages(), start, end).drop(columns="in_window")
    table["time"] = table["time"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return dcc.send_data_frame(table.to_csv, f"{get_provider().file_prefix()}_stages.csv", index=False)
