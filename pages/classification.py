"""Classification page (``/classification``): the group rule as an editable table with live
counts, strike roses and dip/rake histograms per group, group stereonets with the
moment-tensor average mechanism, the Frohlich ternary diagram, and the classification map.

Thin wiring only: figures live in :mod:`components.classification_figures` and
:mod:`components.stereonet`, the rows come from :meth:`components.data.DataProvider.mechanisms`
(the filtered mechanisms of the shared filter bar), the rule logic from :mod:`pipeline.mechanisms.groups`.

State
-----
* Filters: the shared bar, in the URL query string (as on every page).
* The edited rule and the beachball threshold: in the URL *fragment*,
  ``#rule=g1:0,12,0,90,165;...&ml=1.5`` (compact encoding of
  :func:`components.classification_figures.format_hash`; the published rule and the default
  threshold are omitted). The fragment is the bar's own ``dcc.Location`` ``hash`` prop, so the
  bar (which writes ``search``) and this page never overwrite each other's part; a reload or
  a shared link restores both. ``cls-rule`` (a ``dcc.Store``) holds the last *valid* rule
  (encoded); every figure reads it. An invalid edit shows the
  :func:`pipeline.mechanisms.groups.validate_rule` message and keeps the last valid rule.
"""
from __future__ import annotations

import math
from functools import lru_cache

import dash
import dash_bootstrap_components as dbc
import numpy as np
from dash import Input, Output, State, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate

from components import classification_figures as cf
from components import filter_bar
from components.data import get_provider
from components.filters import Filters, population_of
from components.layout import no_data, population_note
from components.stereonet import LINE_CAP, stereonet_figure
from pipeline.analysis.mechanism_stats import group_average_table
from pipeline.mechanisms.groups import OTHER, PUBLISHED_RULE

dash.register_page(__name__, path="/classification", name="Classification",
                   title="Classification · ToC2ME focal mechanisms", order=2)

PAGE = "classification"
IDS = filter_bar.ids(PAGE)
TABLES = ("events", "mechanisms", "wells", "frame")
RULE_TABLE = "cls-rule-table"
RULE_STORE = "cls-rule"
RULE_ERROR = "cls-rule-error"
ADD_ROW = "cls-add-row"
RESET = "cls-reset"
COUNTS = "cls-counts"
THRESHOLD = "cls-ml"
MAP = "cls-map"
MAP_CAPTION = "cls-map-caption"
DIST = "cls-dist"
STEREO = "cls-stereonets"
TERNARY = "cls-ternary"
DOWNLOAD_BTN = "cls-download-btn"
DOWNLOAD = "cls-download"
POPULATION = "cls-population"

#: mechanism columns the page reads
COLUMNS = ("event_id", "source", "x_km", "y_km", "magnitude", "strike", "dip", "rake", "p_plunge", "b_plunge",
           "t_plunge", "zoback_class", "group", "quality")
_GRAPH_CONFIG = {"displaylogo": False, "responsive": True,
                 "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}

_num_col = lambda cid, name: {"id": cid, "name": name, "type": "numeric",  # noqa: E731
                              "on_change": {"action": "coerce", "failure": "reject"}}
RULE_TABLE_COLUMNS = [
    {"id": "group", "name": "Group", "type": "text"},
    _num_col("strike_min", "Strike ≥"), _num_col("strike_max", "Strike ≤"),
    _num_col("dip_min", "Dip ≥"), _num_col("dip_max", "Dip ≤"),
    _num_col("abs_rake_min", "|Rake| ≥"),
]


# -- layout -----------------------------------------------------------------------------------
def _card(title, body, *, note=None, class_name="", header_extra=None):
    head = [html.Span(title, className="fw-semibold")]
    if note:
        head.append(html.Span(note, className="fm-note ms-2"))
    if header_extra is not None:
        head.append(html.Div(header_extra, className="ms-auto"))
    return dbc.Card([
        dbc.CardHeader(html.Div(head, className="d-flex align-items-center flex-wrap gap-1"),
                       className="fm-card-header"),
        dbc.CardBody(body, className="p-2"),
    ], className=f"fm-side-card {class_name}")


def _rule_table():
    return dash_table.DataTable(
        id=RULE_TABLE, columns=RULE_TABLE_COLUMNS, data=cf.default_rule_rows(), editable=True,
        row_deletable=True, style_as_list_view=True, style_table={"overflowX": "auto"},
        style_header={"fontWeight": 600, "backgroundColor": "#f8f9fa", "borderBottom": "1px solid #dee2e6",
                      "fontSize": "12px"},
        style_cell={"fontFamily": "inherit", "fontSize": "13px", "padding": "3px 8px", "textAlign": "right",
                    "border": "none", "borderBottom": "1px solid #eef0f2", "minWidth": "58px"},
        style_cell_conditional=[{"if": {"column_id": "group"}, "textAlign": "left", "fontWeight": 600}],
        style_data_conditional=[
            {"if": {"filter_query": f'{{group}} = "{g}"', "column_id": "group"}, "boxShadow": f"inset 4px 0 0 {c}"}
            for g, c in cf.group_colors(["g1", "g2", "g3", "g4"]).items()],
        css=[{"selector": ".dash-spreadsheet-menu", "rule": "display: none;"}],
    )


def _about():
    return [
        html.P(["Groups are defined by mechanism only: a mechanism joins the first group (in order of first "
                "appearance in the table) any of whose rows it satisfies, else ", html.B("other"), ". Ranges are "
                "closed, on the plane-1 values as stored (0.1° for ToC2ME; the original's NSw script reclassified "
                "integer angles). Default: the published rule — on ToC2ME's default population (one mechanism "
                "per event, quality A: the paper's 2,519) it gives g1 462, g2 1,648, g3 130, g4 205, other 74. "
                "The filter bar's Mechanisms control changes the population; 'all mechanism rows' counts an "
                "event with both a published and a computed mechanism twice."]),
        html.P(["Average mechanism = normalised moment-tensor sum, not separate means of strike, dip and |rake| "
                "(the original's); its P/B/T are axes of the average mechanism, not stress axes. The spread is the "
                "Kagan angle of each event to the average."]),
        html.P(["Stereonets: lower hemisphere, equal area (the same projection as the beachballs). Nodal lines "
                "are coloured by the axial strike deviation min(|d|, 180−|d|) from the average (the original "
                "compared raw strikes with a wrapped mean and hid most g1 lines). At most "
                f"{LINE_CAP:,} lines are drawn per stereonet (a fixed sample by event id)."]),
        html.P(["The filter bar's Group filter selects by the stored group (published rule, as on every page); "
                "the counts, figures and CSV here re-group those rows with the table's rule. The rule and the "
                "beachball threshold are kept in the URL fragment (#rule=…&ml=…), so reloading or sharing the "
                "link restores them."], className="mb-0"),
    ]


def layout(**query):
    provider = get_provider()
    missing = provider.missing_tables(TABLES)
    if missing:
        return no_data(provider.data_dir, missing)
    f = Filters.from_query(query)
    options = provider.filter_options()
    lo = math.floor(options["mag_min"]) if options.get("mag_min") is not None else -2
    hi = math.ceil(options["mag_max"]) if options.get("mag_max") is not None else 4
    hi = max(hi, lo + 1, math.ceil(cf.DEFAULT_THRESHOLD))
    marks = {v: {"label": str(v)} for v in range(lo, hi + 1)}
    rule_card = _card("Group rule", [
        _rule_table(),
        html.Div([
            dbc.Button("+ Add row", id=ADD_ROW, size="sm", color="secondary", outline=True, className="me-2"),
            dbc.Button("Reset to published rule", id=RESET, size="sm", color="secondary", outline=True),
            html.Span("Edit a cell, Enter to apply; × deletes a row.", className="fm-note ms-2"),
        ], className="d-flex align-items-center flex-wrap mt-2"),
        dbc.Alert(id=RULE_ERROR, color="danger", is_open=False, className="py-1 px-2 mt-2 mb-0 small"),
        html.Div(id=COUNTS, className="mt-2"),
        html.Div([
            dbc.Button([html.Span("⤓ ", className="me-1"), "Download CSV"], id=DOWNLOAD_BTN, color="primary",
                       size="sm", className="fm-download"),
            html.Span("the filtered mechanisms with the group from this rule (group_stored: the published rule)",
                      className="fm-note ms-2"),
            dcc.Download(id=DOWNLOAD),
        ], className="d-flex align-items-center flex-wrap mt-2"),
    ], note="first match wins")
    map_card = _card("Classification map", [
        html.Div([
            html.Span("Beachballs for ML >", className="fm-inline-label me-2"),
            html.Div(dcc.Slider(id=THRESHOLD, min=lo, max=hi, step=0.01, value=cf.DEFAULT_THRESHOLD, marks=marks,
                                updatemode="mouseup", 
                                className="fm-cls-ml"), style={"flex": "1 1 auto", "minWidth": "200px"}),
        ], className="d-flex align-items-center px-2"),
        dcc.Loading(dcc.Graph(id=MAP, figure=cf.message_figure("loading…"), config={**_GRAPH_CONFIG,
                              "scrollZoom": True, "toImageButtonOptions": {"filename": "toc2me_classification_map"}},
                              style={"height": "620px"}),
                    type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6}),
        html.Div(id=MAP_CAPTION, className="fm-note px-2"),
    ], note="east/north km · each event: a 100 m tick along its strike and a circle")
    return html.Div([
        filter_bar.filter_bar(PAGE, f, options, display=False, table=False),
        dcc.Store(id=RULE_STORE, data={"code": cf.encode_rule(PUBLISHED_RULE)}),
        dbc.Row([
            dbc.Col(rule_card, lg=5, className="mb-3"),
            dbc.Col(map_card, lg=7, className="mb-3"),
        ], className="g-3"),
        _card("Strike, dip and rake per group", dcc.Loading(dcc.Graph(
            id=DIST, figure=cf.message_figure("loading…", 560), config=_GRAPH_CONFIG), type="circle",
            delay_show=400), note="roses are axial: each strike counted at s and s+180 (10° bins)",
            class_name="mb-3"),
        _card("Group stereonets", dcc.Loading(html.Div(id=STEREO), type="circle", delay_show=400),
              note="plane-1 nodal lines coloured by axial strike deviation from the average; bold: the average "
                   "mechanism (moment-tensor sum) with its P/B/T axes", class_name="mb-3"),
        dbc.Row([
            dbc.Col(_card("Faulting style: Frohlich ternary diagram", dcc.Loading(dcc.Graph(
                id=TERNARY, figure=cf.message_figure("loading…", 440), config=_GRAPH_CONFIG), type="circle",
                delay_show=400), note="points coloured by Zoback (1992) class; dashed: Frohlich's class limits"),
                lg=6, className="mb-3"),
            dbc.Col(_card("About this page", _about(), class_name="fm-about"), lg=6, className="mb-3"),
        ], className="g-3"),
    ], className="fm-page fm-page-classification")


# -- server-side builders (what the callbacks and the benchmark call) ----------------------------
@lru_cache(maxsize=64)
def _decoded(code: str):
    """The validated rule of an encoded rule (memoised: validation costs ~10 ms); callers
    must not modify it."""
    return cf.decode_rule(code)


def _rule(store):
    """The rule of the store (the published rule when it is missing or unreadable)."""
    code = (store or {}).get("code") if isinstance(store, dict) else None
    rule = _decoded(code) if isinstance(code, str) and code else None
    return rule if rule is not None else PUBLISHED_RULE


def load_mechanisms(query: str, store=None, provider=None):
    """(filtered mechanisms re-grouped with the stored rule, rule, group order, colours)."""
    p = provider or get_provider()
    rule = _rule(store)
    mechs = p.mechanisms(Filters.from_query(query or ""), cap=None, columns=COLUMNS)
    mechs = cf.regroup(mechs, rule)
    order = cf.group_order(rule)
    present = [g for g in dict.fromkeys(mechs["group"].astype(str)) if g not in order]
    order = order + sorted(present)
    return mechs, rule, order, cf.group_colors(order)


def _averages(mechs, order):
    lean = mechs[["event_id", "strike", "dip", "rake", "group"]]
    present = set(lean["group"].astype(str))
    return lean, group_average_table(lean, groups=[g for g in order if g in present], skip=(OTHER,))


def build_summary(query: str, store=None, provider=None) -> dict:
    """Counts and moment-tensor averages per group, and the distribution and ternary
    figures of the filtered mechanisms under the stored rule."""
    mechs, rule, order, colors = load_mechanisms(query, store, provider)
    _, averages = _averages(mechs, order)
    return {
        "summary": cf.group_summary(mechs, order, averages), "averages": averages, "order": order,
        "colors": colors, "n": len(mechs), "n_events": int(mechs["event_id"].nunique()),
        "distributions": cf.distributions_figure(mechs, order, colors),
        "ternary": cf.ternary_figure(mechs),
    }


def build_stereonets(query: str, store=None, provider=None) -> list[tuple[str, dict]]:
    """(group, stereonet figure) per non-empty group, in rule order ('other': no average)."""
    mechs, rule, order, colors = load_mechanisms(query, store, provider)
    lean, averages = _averages(mechs, order)
    avg_by_group = {r["group"]: r for r in averages.to_dict("records")}
    out = [(g, stereonet_figure(sub, g, None if g == OTHER else avg_by_group.get(g), color=colors.get(g)))
           for g, sub in lean.groupby("group", sort=False)]
    rank = {g: i for i, g in enumerate(order)}
    return sorted(out, key=lambda t: rank.get(t[0], len(rank)))


def build_analysis(query: str, store=None, provider=None) -> dict:
    """Everything but the map: :func:`build_summary` plus ``stereonets``."""
    return {**build_summary(query, store, provider), "stereonets": build_stereonets(query, store, provider)}


def build_map(query: str, store=None, threshold=cf.DEFAULT_THRESHOLD, provider=None) -> dict:
    """The classification map of the filtered mechanisms under the stored rule."""
    p = provider or get_provider()
    mechs, rule, order, colors = load_mechanisms(query, store, p)
    return cf.classification_map_figure(mechs, p.wells(), threshold=threshold, order=order, colors=colors)


def _fmt(v, spec=".0f"):
    return "–" if v is None or not np.isfinite(v) else format(v, spec)


#: the empty state of data without any mechanism (a user's project without published mechanisms
#: or velocity model): the filters are not the reason, so the page does not say "widen them"
NO_MECHANISMS = "No mechanisms in this data set (none published, none computed)."


def _no_mechanisms() -> bool:
    return get_provider().filter_options().get("n_mechanisms") == 0


def _counts_table(summary, colors, total: int, none_in_data: bool = False):
    head = html.Thead(html.Tr([html.Th("Group"), html.Th("N", className="text-end"),
                               html.Th("%", className="text-end"),
                               html.Th("moved", className="text-end",
                                       title="events whose group differs from the stored (published-rule) group"),
                               html.Th("Average s/d/r", className="text-end", title="moment-tensor sum, plane 1"),
                               html.Th("Kagan med / p90", className="text-end")]))
    rows = []
    for r in summary.to_dict("records"):
        g = r["group"]
        rows.append(html.Tr([
            html.Td([html.Span(className="fm-swatch", style={"background": colors.get(g, "#aaa")}), g],
                    className="fw-semibold"),
            html.Td(f"{r['n']:,}", className="text-end fm-cls-n", **{"data-group": g}),
            html.Td(f"{100 * r['share']:.1f}", className="text-end"),
            html.Td(f"{r['changed']:,}" if r["changed"] else "·", className="text-end"),
            html.Td(f"{_fmt(r['strike'], '.1f')}/{_fmt(r['dip'], '.1f')}/{_fmt(r['rake'], '.1f')}"
                    if np.isfinite(r["strike"]) else "–", className="text-end"),
            html.Td(f"{_fmt(r['kagan_median'])}° / {_fmt(r['kagan_p90'])}°" if np.isfinite(r["kagan_median"])
                    else "–", className="text-end"),
        ]))
    moved = int(summary["changed"].sum())
    rows.append(html.Tr([html.Td("all", className="fw-semibold"),
                         html.Td(f"{total:,}", className="text-end fw-semibold fm-cls-total"),
                         html.Td("100.0" if total else "–", className="text-end"),
                         html.Td(f"{moved:,}" if moved else "·", className="text-end"),
                         html.Td(""), html.Td("")], className="table-light"))
    table = dbc.Table([head, html.Tbody(rows)], size="sm", hover=True, className="mb-0 fm-cls-counts small",
                      style={"fontVariantNumeric": "tabular-nums"})
    if total == 0:
        text = NO_MECHANISMS if none_in_data else "No mechanism matches the filters: widen the filter bar."
        return [dbc.Alert(text, color="light", className="py-1 px-2 mb-2 small"), table]
    return table


# -- callbacks ------------------------------------------------------------------------------
@dash.callback(
    Output(RULE_TABLE, "data"), Output(IDS.url, "hash"), Output(RULE_STORE, "data"),
    Output(RULE_ERROR, "children"), Output(RULE_ERROR, "is_open"), Output(THRESHOLD, "value"),
    Output(ADD_ROW, "disabled"),
    Input(IDS.url, "hash"), Input(RULE_TABLE, "data"), Input(ADD_ROW, "n_clicks"), Input(RESET, "n_clicks"),
    Input(THRESHOLD, "value"),
    State(RULE_STORE, "data"),
)
def sync_rule(hash_, rows, _add, _reset, ml, store):
    """Rule table + threshold <-> URL fragment <-> the store of the last valid rule."""
    trig = dash.ctx.triggered_id
    current = _rule(store)
    table_rule, table_error = cf.check_rule(rows)
    full = isinstance(rows, list) and len(rows) >= cf.MAX_RULE_ROWS

    def store_out(rule):
        code = cf.encode_rule(rule)
        return no_update if (store or {}).get("code") == code else {"code": code}

    if trig is None or trig == IDS.url:  # page load, back/forward, or the echo of our own fragment
        h = cf.parse_hash(hash_)
        rule = h["rule"] if h["rule"] is not None else PUBLISHED_RULE
        ml_new = h["ml"] if h["ml"] is not None else cf.DEFAULT_THRESHOLD
        table_out = no_update if cf.same_rule(table_rule, rule) else cf.rule_rows(rule)
        ml_out = no_update if ml is not None and abs(float(ml) - ml_new) < 1e-9 else ml_new
        msg = "The link's rule or threshold could not be read; showing the published rule." if h["bad"] else None
        if table_out is no_update and ml_out is no_update and store_out(rule) is no_update and not h["bad"]:
            raise PreventUpdate
        n_rows = len(table_out) if table_out is not no_update else len(rows or [])
        return (table_out, no_update, store_out(rule), msg, bool(msg), ml_out, n_rows >= cf.MAX_RULE_ROWS)
    if trig == RESET:
        rule = PUBLISHED_RULE
        return (cf.rule_rows(rule), cf.format_hash(rule, ml), store_out(rule), None, False, no_update, False)
    if trig == ADD_ROW:
        if full:
            raise PreventUpdate
        rows = list(rows or []) + [cf.new_rule_row(rows)]
        table_rule, table_error = cf.check_rule(rows)
        full = len(rows) >= cf.MAX_RULE_ROWS
        if table_error:
            return (rows, no_update, no_update, table_error, True, no_update, full)
        return (rows, cf.format_hash(table_rule, ml), store_out(table_rule), None, False, no_update, full)
    if trig == THRESHOLD:
        return (no_update, cf.format_hash(current, ml), no_update, no_update, no_update, no_update, no_update)
    # an edit of the table
    if table_error:
        return (no_update, no_update, no_update, f"Not applied: {table_error}. The figures keep the last valid rule.",
                True, no_update, full)
    return (no_update, cf.format_hash(table_rule, ml), store_out(table_rule), None, False, no_update, full)


@dash.callback(
    Output(COUNTS, "children"), Output(DIST, "figure"), Output(TERNARY, "figure"),
    Input(IDS.filters, "data"), Input(RULE_STORE, "data"),
)
def update_summary(query, store):
    res = build_summary(query, store)
    table = _counts_table(res["summary"], res["colors"], res["n"], none_in_data=res["n"] == 0 and _no_mechanisms())
    caption = population_note(Filters.from_query(query or ""), res["n_events"], res["n"], id=POPULATION)
    return ([caption, *(table if isinstance(table, list) else [table])], res["distributions"], res["ternary"])


@dash.callback(Output(STEREO, "children"), Input(IDS.filters, "data"), Input(RULE_STORE, "data"))
def update_stereonets(query, store):
    """A separate request from the counts (they run in parallel; each stays short)."""
    stereonets = build_stereonets(query, store)
    if not stereonets:
        return dbc.Alert(NO_MECHANISMS if _no_mechanisms() else "No mechanism matches the filters.", color="light",
                         className="mb-0")
    return dbc.Row([
        dbc.Col(dcc.Graph(figure=fig, config={"displayModeBar": False, "responsive": True},
                          className="fm-cls-stereonet"), md=6, xl=4)
        for _, fig in stereonets], className="g-2")


@dash.callback(
    Output(MAP, "figure"), Output(MAP_CAPTION, "children"),
    Input(IDS.filters, "data"), Input(RULE_STORE, "data"), Input(THRESHOLD, "value"),
)
def update_map(query, store, ml):
    ml = cf.DEFAULT_THRESHOLD if ml is None else float(ml)
    fig = build_map(query, store, ml)
    meta = fig["layout"]["meta"]
    caption = (f"{meta['ticks']:,} mechanisms ({population_of(Filters.from_query(query or '')).label}) · "
               f"{meta['balls']:,} beachball{'s' if meta['balls'] != 1 else ''} "
               f"for ML > {ml:g} (radius {cf.BALL_SCALE:g}× the map page's) · "
               f"{'wells drawn' if len(get_provider().wells()) else 'no wells in this data set'} · scroll to zoom")
    return fig, caption


@dash.callback(
    Output(DOWNLOAD, "data"),
    Input(DOWNLOAD_BTN, "n_clicks"),
    State(IDS.filters, "data"), State(RULE_STORE, "data"),
    prevent_initial_call=True,
)
def download(n_clicks, query, store):
    if not n_clicks:
        raise PreventUpdate
    return csv_download(query, store)


def csv_download(query: str, store=None, provider=None) -> dict:
    """``dcc.Download`` data: every column of the filtered mechanisms of the bar's population
    (the export query of the map page's CSV) with ``group`` from the stored rule and ``group_stored`` (the
    published-rule group of the table); times ISO 8601 UTC."""
    p = provider or get_provider()
    f = Filters.from_query(query or "")
    df = cf.regroup(p.export_frame("mechanisms", f), _rule(store))
    cols = list(df.columns)
    cols.insert(cols.index("group") + 1, cols.pop(cols.index("group_stored")))
    df = df[cols]
    for c in df.columns:
        if str(df[c].dtype).startswith("datetime64"):
            df[c] = df[c].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return dcc.send_data_frame(df.to_csv, f"{get_provider().file_prefix()}_mechanisms_classified.csv", index=False)


__all__ = ["layout", "build_analysis", "build_summary", "build_stereonets", "build_map", "csv_download",
           "load_mechanisms"]
