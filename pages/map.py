"""Map page (``/``): stations, wells and stages, catalogue events, beachballs by group, and
the table of the filtered mechanisms, linked both ways with the map.

Thin wiring only: queries live in :mod:`components.data`, the figure in
:mod:`components.map_figure`, the filters in :mod:`components.filter_bar`.
"""
from __future__ import annotations

import math

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, Patch, State, dash_table, dcc, html, no_update
from dash.dash_table.Format import Format, Scheme
from dash.exceptions import PreventUpdate

from components import filter_bar
from components.data import MAP_MECHANISM_COLUMNS, get_provider
from components.filters import Filters, population_of, query_problems
from components.gl_pixel_ratio import screen_gl_pixel_ratio
from components.layout import image_name, no_data, page_title
from components.map_figure import GROUP_COLORS, ball_traces, map_figure
from queries import map as mapq

dash.register_page(__name__, path="/", name="Map", title=page_title("Map"), order=0)

PAGE = "map"
IDS = filter_bar.ids(PAGE)
GRAPH = "map-graph"
TABLE = "map-table"
SELECTED = "map-selected"
META = "map-meta"
VIEW_RANGE = "map-view-range"
DETAILS = "map-details"
EXPORT_QUAKEML, EXPORT_CSV = "map-export-quakeml", "map-export-csv"
EXPORT_DOWNLOAD, EXPORT_NOTE = "map-export-download", "map-export-note"
#: the QuakeML download refuses larger selections (ObsPy needs ~1.5 ms an event: a web
#: request should not take minutes); the command line has no limit
EXPORT_MAX_EVENTS = 5_000
PAGE_SIZE = 12

_fixed = lambda n: Format(precision=n, scheme=Scheme.fixed)  # noqa: E731
COLUMNS = [
    {"id": "event", "name": "Event", "presentation": "markdown"},
    {"id": "time", "name": "Time (UTC)"},
    {"id": "magnitude", "name": "ML", "type": "numeric", "format": _fixed(2)},
    {"id": "depth_km", "name": "Depth km", "type": "numeric", "format": _fixed(3)},
    {"id": "strike", "name": "Strike", "type": "numeric", "format": _fixed(1)},
    {"id": "dip", "name": "Dip", "type": "numeric", "format": _fixed(1)},
    {"id": "rake", "name": "Rake", "type": "numeric", "format": _fixed(1)},
    {"id": "quality", "name": "Q"},
    {"id": "group", "name": "Group"},
    {"id": "faulting_style", "name": "Style"},
    {"id": "source", "name": "Source"},
    {"id": "cluster", "name": "Cluster"},
    {"id": "n_polarities", "name": "N pol", "type": "numeric"},
]
#: table column -> sortable data column
_SORT_COLUMN = {"event": "event_id"}

_GROUP_STYLES = [
    {"if": {"filter_query": f'{{group}} = "{g}"', "column_id": "group"},
     "boxShadow": f"inset 4px 0 0 {c}", "fontWeight": 600}
    for g, c in GROUP_COLORS.items()
]


def _has_wells(provider) -> bool:
    """Whether the data have well paths or stages (optional in a user's own project)."""
    try:
        return len(provider.wells()) > 0 or len(provider.stages()) > 0
    except Exception:  # noqa: BLE001 - informative only
        return True


def _about(provider):
    try:
        frame = provider.frame().iloc[0]
        origin = f"{abs(frame['origin_lat']):.4f}°{'N' if frame['origin_lat'] >= 0 else 'S'}, " \
                 f"{abs(frame['origin_lon']):.4f}°{'E' if frame['origin_lon'] >= 0 else 'W'}"
        dataset = str(frame["dataset"])
    except Exception:  # noqa: BLE001 - informative only
        origin, dataset = "?", "?"
    return [
        html.P(["Dataset ", html.B(dataset), ". The km view is a local east/north frame (origin ", origin,
                ") with true aspect; the lon/lat view keeps the aspect with 1/cos(latitude)."]),
        html.P(["Beachballs: lower hemisphere, equal area; compressional quadrants in the group colour, "
                "size grows with ML. Small dots: catalogue events. ▲ stations; ",
                "lines: well paths (labels at the toes), ticks: stages." if _has_wells(provider) else
                html.B("no wells or stages in this data set.")]),
        html.P([f"At most {provider.caps.map_events:,} events are drawn (beyond that a fixed pseudo-random "
                f"sample, the same for the same filters) and the {provider.caps.map_mechanisms:,} mechanisms of largest ML; the counts, the table "
                "and the CSV always cover every matched row."]),
        html.P(["Mechanisms: the filter bar's ", html.B("Mechanisms"), " control — by default one per event "
                "(quality A, the published one first, else a computed one), so no event is drawn or counted "
                "twice; 'all mechanism rows' shows an event's published and computed mechanisms together."],
               className="mb-0"),
    ]


def _fmt(v, spec=".1f", unit=""):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "–" if v is None else str(v)
    return "–" if f != f else f"{f:{spec}}{unit}"


def _details(row, query: str | None = None):
    if row is None:
        return html.P("Click a beachball on the map or a row of the table.", className="text-muted mb-0")
    eid = row["event_id"]
    g = row.get("group")
    items = [
        ("Time (UTC)", f"{row['time']:%Y-%m-%d %H:%M:%S}"),
        ("ML", _fmt(row.get("magnitude"), ".2f")),
        ("Depth", _fmt(row.get("depth_km"), ".3f", " km")),
        ("Plane 1", f"{_fmt(row.get('strike'))} / {_fmt(row.get('dip'))} / {_fmt(row.get('rake'))}"),
        ("Plane 2", f"{_fmt(row.get('strike2'))} / {_fmt(row.get('dip2'))} / {_fmt(row.get('rake2'))}"),
        ("P axis", f"{_fmt(row.get('p_trend'), '.0f')} / {_fmt(row.get('p_plunge'), '.0f')}"),
        ("T axis", f"{_fmt(row.get('t_trend'), '.0f')} / {_fmt(row.get('t_plunge'), '.0f')}"),
        ("Group", html.Span([html.Span(className="fm-swatch", style={"background": GROUP_COLORS.get(g, "#aaa")}),
                             str(g)])),
        ("Quality", row.get("quality") or "–"),
        ("Style", f"{row.get('faulting_style') or '–'} ({row.get('zoback_class') or '–'})"),
        ("Source", row.get("source")),
        ("Polarities", _fmt(row.get("n_polarities"), ".0f")),
    ]
    return [
        html.A(eid, href=event_href(eid, query), className="fm-details-id"),
        html.Dl([x for k, v in items for x in (html.Dt(k), html.Dd(v))], className="fm-dl mb-0"),
    ]


def _export_buttons():
    """QuakeML / CSV of the filtered set: the code of ``python -m pipeline export``."""
    return html.Div([
        html.Span(id=EXPORT_NOTE, className="fm-note me-2"),
        html.Span("Export the filtered set", className="fm-note me-2"),
        dbc.Button([html.Span("⤓ ", className="me-1"), "QuakeML"], id=EXPORT_QUAKEML, size="sm", color="primary",
                   className="fm-export text-nowrap me-1", title="events, focal mechanisms and P picks with polarities "
                   "(QuakeML 1.2)"),
        dbc.Button([html.Span("⤓ ", className="me-1"), "CSV"], id=EXPORT_CSV, size="sm", color="primary",
                   className="fm-export text-nowrap", title="the filtered mechanisms, documented columns"),
        dcc.Download(id=EXPORT_DOWNLOAD),
    ], className="d-flex align-items-center")


def layout(**query):
    provider = get_provider()
    missing = provider.missing_tables()
    if missing:
        return no_data(provider.data_dir, missing)
    f = Filters.from_query(query)
    options = provider.filter_options()
    # the map comes with the layout: it starts drawing without a callback round trip after
    # the page's (issue 12); update_map redraws it when the filters change
    fig, drawn, meta = map_answer(f.to_query())
    rows, page_count, _, row_styles, table_caption = table_answer(f.to_query())
    return html.Div([
        filter_bar.filter_bar(PAGE, f, options, drawn=drawn),
        dcc.Store(id=SELECTED),
        dcc.Store(id=META, data=meta),
        dcc.Store(id=VIEW_RANGE),
        dbc.Row([
            dbc.Col(dbc.Card(dcc.Loading(dcc.Graph(
                id=GRAPH, className="fm-map-graph", figure=fig,
                style={"height": "calc(100vh - 230px)", "minHeight": "480px"},
                config={"scrollZoom": True, "displaylogo": False, "showTips": False, "responsive": True,
                        "modeBarButtonsToRemove": ["select2d", "lasso2d"],
                        "toImageButtonOptions": {"filename": image_name("map"), "scale": 2}}),
                type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6}),
                className="fm-map-card"), lg=9),
            dbc.Col([
                dbc.Card([dbc.CardHeader("Selected mechanism", className="fm-card-header fw-semibold"),
                          dbc.CardBody(_details(None), id=DETAILS, className="fm-details")],
                         className="fm-side-card mb-3"),
                dbc.Card([dbc.CardHeader("About this map", className="fm-card-header fw-semibold"),
                          dbc.CardBody(_about(provider), className="fm-about")], className="fm-side-card"),
            ], lg=3, className="fm-side"),
        ], className="g-3 mb-3"),
        dbc.Card([
            dbc.CardHeader(html.Div([
                html.Div([
                    html.Span("Mechanisms", className="fw-semibold"),
                    html.Span(table_caption, id="map-table-caption", className="fm-note ms-2"),
                ]),
                _export_buttons(),
            ], className="d-flex justify-content-between align-items-center flex-wrap"), className="fm-card-header"),
            dash_table.DataTable(
                id=TABLE, columns=COLUMNS, data=rows, page_action="custom", page_current=0, page_size=PAGE_SIZE,
                page_count=page_count, sort_action="custom", sort_mode="single", sort_by=[],
                markdown_options={"link_target": "_self"}, cell_selectable=True,
                style_as_list_view=True, style_table={"overflowX": "auto"},
                style_header={"fontWeight": 600, "backgroundColor": "#f8f9fa", "borderBottom": "1px solid #dee2e6"},
                style_cell={"fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px",
                            "textAlign": "right", "border": "none", "borderBottom": "1px solid #eef0f2"},
                style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"} for c in
                                        ("event", "time", "quality", "group", "faulting_style", "source", "cluster")],
                style_data_conditional=row_styles,
                css=[{"selector": ".dash-cell-value p", "rule": "margin: 0;"},
                     {"selector": "td.cell--selected, td.focused",
                      "rule": "background-color: transparent !important;"}],
            ),
        ], className="fm-table-card"),
    ], className="fm-page fm-page-map")


def visible_range(relayout) -> tuple[float, float, float, float] | str | None:
    """(x0, x1, y0, y1) of a zoom or pan in ``relayoutData`` (``xaxis.range[0]`` ... keys),
    or of a double-click reset to the figure's own range (``xaxis.range``: [x0, x1]);
    ``"all"`` for an autorange; None when it says nothing about the axes (a legend click,
    autosize)."""
    if not isinstance(relayout, dict):
        return None
    if relayout.get("xaxis.autorange") or relayout.get("yaxis.autorange"):
        return "all"
    try:
        if "xaxis.range" in relayout:  # a double-click reset to the initial (explicit) range
            v = tuple(float(relayout[f"{a}.range"][i]) for a in ("xaxis", "yaxis") for i in (0, 1))
        else:
            v = tuple(float(relayout[f"{a}.range[{i}]"]) for a in ("xaxis", "yaxis") for i in (0, 1))
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return v if all(math.isfinite(x) for x in v) else None


def _figure_parts(f: Filters, selected_id: str | None, relayout=None):
    p = get_provider()
    ev_cap, me_cap = p.caps.map_events, p.caps.map_mechanisms
    events = p.events_for_map(f, cap=ev_cap)
    mechs = p.mechanisms(f, cap=me_cap, columns=MAP_MECHANISM_COLUMNS)
    sel = mechs[mechs["event_id"] == selected_id] if selected_id else None
    fig = map_figure(events, mechs, p.stations(), p.wells(), p.stages(), color_by=f.color_by, view=f.view,
                     origin=p.origin(), selected=sel)
    vis = visible_range(relayout)
    meta = fig["layout"]["meta"]
    if isinstance(vis, tuple) and meta.get("balls_first") is not None:  # a filter change keeps the zoom's detail
        fig["data"][meta["balls_first"]:meta["balls_last"] + 1] = ball_traces(mechs, f.view, p.origin(), visible=vis)
    drawn = filter_bar.drawn_data(
        f,
        {"matched": events.attrs["matched"], "drawn": events.attrs["drawn"], "cap": ev_cap,
         "note": f"fixed random sample, cap {ev_cap:,}"},
        {"matched": mechs.attrs["matched"], "drawn": mechs.attrs["drawn"], "cap": me_cap,
         "note": f"the {me_cap:,} largest ML"},
    )
    return fig, drawn


def build_figure(query: str, selected_id: str | None = None, relayout=None):
    """Server-side path of the map (what the benchmark times): the figure and the counts."""
    return _figure_parts(Filters.from_query(query or ""), selected_id, relayout)


def map_answer(query: str, selected=None, relayout=None):
    """(figure, the bar's drawn counts, the figure's meta) of the map for ``query``, with
    "No event matches" written on an empty map: the layout's first map and every redraw."""
    fig, drawn = build_figure(query, (selected or {}).get("event_id"), relayout)
    if drawn["events"]["matched"] == 0 and drawn["mechanisms"]["matched"] == 0:
        fig["layout"]["annotations"].append({
            "text": "No event matches the filters", "showarrow": False, "xref": "paper", "yref": "paper",
            "x": 0.5, "y": 0.5, "font": {"size": 15, "color": "#666"}})
    return fig, drawn, fig["layout"]["meta"]


@dash.callback(
    Output(GRAPH, "figure"), Output(IDS.drawn, "data"), Output(META, "data"),
    Input(IDS.filters, "data"),
    State(SELECTED, "data"), State(VIEW_RANGE, "data"),
    prevent_initial_call=True,  # the layout holds the first map
)
def update_map(query, selected, relayout):
    return map_answer(query, selected, relayout)


# only zooms, pans, resets and autoranges reach the server (not the autosize of every first draw)
dash.clientside_callback(
    """
    function(r) {
        if (!r || !(('xaxis.range[0]' in r && 'yaxis.range[0]' in r) || ('xaxis.range' in r && 'yaxis.range' in r)
                    || r['xaxis.autorange'] || r['yaxis.autorange'])) { return window.dash_clientside.no_update; }
        return r;
    }
    """,
    Output(VIEW_RANGE, "data"), Input(GRAPH, "relayoutData"), prevent_initial_call=True,
)


# WebGL at the screen's resolution (issue 12; components.gl_pixel_ratio)
screen_gl_pixel_ratio(GRAPH)


@dash.callback(
    Output(GRAPH, "figure", allow_duplicate=True),
    Input(VIEW_RANGE, "data"),
    State(IDS.filters, "data"), State(META, "data"),
    prevent_initial_call=True,
)
def zoom_detail(relayout, query, meta):
    """Level of detail: after a zoom or pan, the largest balls in the visible range are
    drawn as beachballs (the others as dots); after an autorange, those of the whole map.
    Only the ball traces are sent (a Patch), the events stay in the browser."""
    vis = visible_range(relayout)
    if vis is None or not meta or meta.get("balls_first") is None:
        raise PreventUpdate
    f = Filters.from_query(query or "")
    p = get_provider()
    mechs = p.mechanisms(f, cap=p.caps.map_mechanisms, columns=MAP_MECHANISM_COLUMNS)
    traces = ball_traces(mechs, f.view, p.origin(), visible=None if vis == "all" else vis)
    first = meta["balls_first"]
    if len(traces) != meta.get("balls_last", -1) - first + 1:  # the figure changed under us: leave it
        raise PreventUpdate
    patch = Patch()
    for i, t in enumerate(traces):
        patch["data"][first + i] = t
    return patch


@dash.callback(
    Output(SELECTED, "data"),
    Input(TABLE, "active_cell"), Input(GRAPH, "clickData"),
    State(META, "data"),
    prevent_initial_call=True,
)
def select(active_cell, click, meta):
    """A table row click or a beachball click selects that event."""
    trig = dash.ctx.triggered_id
    if trig == TABLE:
        row_id = (active_cell or {}).get("row_id")
        if not row_id:
            raise PreventUpdate
        return {"event_id": str(row_id).split("|", 1)[0], "from": "table"}
    point = ((click or {}).get("points") or [None])[0]
    if not point or meta is None:
        raise PreventUpdate
    if point.get("curveNumber") != meta.get("balls"):
        # a click on a ball's centre lands on the event's own dot, drawn at the same place in an
        # earlier trace (Plotly picks the first of equally close points): select that event
        # when it has a mechanism (its id is the dot's text; a station's name matches none)
        eid = point.get("text")
        if not isinstance(eid, str) or len(eid) > 64 or mapq.mechanism_location(get_provider(), eid).empty:
            raise PreventUpdate
        return {"event_id": eid, "from": "map"}
    cd = point.get("customdata")
    eid = cd[0] if isinstance(cd, (list, tuple)) and cd else cd
    if not isinstance(eid, str):
        raise PreventUpdate
    return {"event_id": eid, "from": "map"}


@dash.callback(
    Output(GRAPH, "figure", allow_duplicate=True),
    Input(SELECTED, "data"),
    State(META, "data"),
    prevent_initial_call=True,
)
def highlight(selected, meta):
    """Move the highlight ring onto the selected event's mechanism (a Patch, not a redraw)."""
    if not meta or meta.get("highlight") is None:
        raise PreventUpdate
    loc = mapq.mechanism_location(get_provider(), (selected or {}).get("event_id", ""))
    x, y = ("lon", "lat") if meta.get("view") == "geo" else ("x_km", "y_km")
    patch = Patch()
    patch["data"][meta["highlight"]]["x"] = loc[x].head(1).tolist()
    patch["data"][meta["highlight"]]["y"] = loc[y].head(1).tolist()
    return patch


@dash.callback(Output(DETAILS, "children"), Input(SELECTED, "data"), State(IDS.filters, "data"),
              prevent_initial_call=True)
def details(selected, query):
    rows = get_provider().mechanism_rows((selected or {}).get("event_id", ""))
    return _details(rows.iloc[0].to_dict() if len(rows) else None, query)


def event_href(eid: str, query: str | None) -> str:
    """Link to the event page carrying the filters, so its "← Map" and navbar come back to
    the same view (issue 12 #6)."""
    q = Filters.from_query(query or "").to_query()
    return f"/event/{eid}" + (f"?{q}" if q else "")


def _rows(df, query: str | None = None):
    out = []
    times = df["time"].dt.strftime("%Y-%m-%d %H:%M:%S").tolist()
    df = df.drop(columns=["time"]).astype(object)
    df = df.where(df.notna(), None)  # NaN / NA -> null
    for rec, t in zip(df.to_dict("records"), times):
        eid = rec["event_id"]
        rec.update(id=f"{eid}|{rec['source']}", event=f"[{eid}]({event_href(eid, query)})", time=t)
        for k in ("x_km", "y_km", "lon", "lat"):
            rec.pop(k, None)
        out.append(rec)
    return out


@dash.callback(
    Output(TABLE, "data"), Output(TABLE, "page_count"), Output(TABLE, "page_current"),
    Output(TABLE, "style_data_conditional"), Output("map-table-caption", "children"),
    Input(IDS.filters, "data"), Input(TABLE, "page_current"), Input(TABLE, "sort_by"), Input(SELECTED, "data"),
    prevent_initial_call=True,  # the layout holds the first page
)
def update_table(query, page, sort_by, selected):
    """Server-side paging and sorting of the filtered mechanisms; a selection made on the map
    jumps to its page; the selected row is highlighted."""
    return table_answer(query, page, sort_by, selected, dash.ctx.triggered_id)


def table_answer(query, page=0, sort_by=None, selected=None, trig=None):
    """The table's (rows, page count, page shown or ``no_update``, row styles, caption) for the
    filter query ``query``, the page asked for, the sort and the selection; ``trig`` is what
    changed (a filter change goes back to page 0, a selection on the map goes to its row)."""
    f = Filters.from_query(query or "")
    p = get_provider()
    sort = [{**s, "column_id": _SORT_COLUMN.get(s.get("column_id"), s.get("column_id"))} for s in (sort_by or [])
            if isinstance(s, dict)]
    if trig == IDS.filters:
        page = 0
    eid = (selected or {}).get("event_id")
    if trig == SELECTED and eid and (selected or {}).get("from") == "map":
        pos = mapq.mechanism_position(p, f, eid, sort)
        if pos is not None:
            page = pos // PAGE_SIZE
    df = mapq.mechanisms_page(p, f, page or 0, PAGE_SIZE, sort)
    styles = list(_GROUP_STYLES)
    if eid:
        for i, e in enumerate(df["event_id"]):
            if e == eid:
                styles.append({"if": {"row_index": i}, "backgroundColor": "rgba(214,0,143,0.10)",
                               "boxShadow": "inset 3px 0 0 #d6008f"})
    m = df.attrs["matched"]
    caption = f"{m:,} matched ({population_of(f).label}) · page {df.attrs['page'] + 1} of " \
              f"{df.attrs['page_count']:,} · click a row to find it on the map, a ball to find it here"
    new_page = df.attrs["page"] if df.attrs["page"] != page else no_update
    return _rows(df, query), df.attrs["page_count"], new_page, styles, caption


@dash.callback(
    Output(EXPORT_DOWNLOAD, "data"), Output(EXPORT_NOTE, "children"),
    Input(EXPORT_QUAKEML, "n_clicks"), Input(EXPORT_CSV, "n_clicks"),
    State(IDS.filters, "data"), State(IDS.url, "search"),
    prevent_initial_call=True,
)
def export(_qml, _csv, query, search=None):
    """The filtered set (the page's URL filters) as QuakeML or mechanisms CSV, written by
    :mod:`pipeline.export.run` exactly as ``python -m pipeline export`` writes it. Nothing
    is exported while the address has a malformed filter (it would export more than asked)."""
    from pipeline.export import run, selection

    problems = query_problems(search or "")
    if problems:
        return dash.no_update, "Not exported: malformed filter in the address (" + "; ".join(problems) + ")."
    f = Filters.from_query(query or "")
    p = get_provider()
    sel = selection.select(p, f)
    if dash.ctx.triggered_id == EXPORT_CSV:
        return dcc.send_bytes(run.csv_bytes(p, sel), f"{p.file_prefix()}_filtered_mechanisms.csv"), ""
    if len(sel.events) > EXPORT_MAX_EVENTS:
        q = f.data_query()
        return no_update, (f"{len(sel.events):,} events: too many for a QuakeML download (at most "
                           f"{EXPORT_MAX_EVENTS:,}); narrow the filters, or run python -m pipeline export "
                           f"--format quakeml" + (f" --query '{q}'" if q else "") + " --out FILE")
    return dcc.send_bytes(run.quakeml_bytes(p, sel), f"{p.file_prefix()}_filtered.xml"), ""
