"""Classification page (``/classification``): the group rule as an editable table with live
counts, strike roses and dip/rake histograms per group, group stereonets with the
moment-tensor average mechanism, the Frohlich ternary diagram, the classification map, and -
on demand (a button) - the selection's composite mechanism (SKHASH) beside its moment-tensor
average and its stress inversion (σ1-σ3 with bootstrap clouds, R, SHmax).

Thin wiring only: figures live in :mod:`components.classification_figures`,
:mod:`components.stereonet` and :mod:`components.stereonet_svg` (the stereonets are drawn
on the server as SVG), the rows come from :meth:`components.data.DataProvider.mechanisms`
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
  (encoded); every figure reads it. The first figures come with the layout, for the
  fragment's rule when the early layout request sent the fragment
  (:func:`components.first_page.routed_fragment`), else for the published rule, redrawn by
  :func:`sync_rule` when the bar's Location reports a fragment with its own rule. An
  invalid edit shows the :func:`pipeline.mechanisms.groups.validate_rule` message and
  keeps the last valid rule.
* "Download CSV": a link to the app's spooled route ``download/mechanisms_classified.csv``
  carrying the filters and the stored rule in its query (:mod:`components.classified_csv`),
  updated by :func:`download_link`; the CSV is never built in a callback.
"""
from __future__ import annotations

import logging
import math
from functools import lru_cache

import dash
import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate

from components import classification_figures as cf
from components import classification_svg as csvg
from components import classified_csv
from components import composite_figures as cpf
from components import filter_bar
from components.data import get_provider
from components.first_page import routed_fragment, routed_search
from components.filters import Filters, population_of
from components.gl_pixel_ratio import screen_gl_pixel_ratio
from components.layout import image_name, no_data, page_title, population_note
from components.stereonet import LINE_CAP, stereonet_figure
from components.stereonet_svg import grid_height, stereonet_grid_document
from pipeline.analysis.mechanism_stats import group_average_table
from pipeline.mechanisms.groups import OTHER, PUBLISHED_RULE
from queries import classification as cq
from queries.memo import Memo

dash.register_page(__name__, path="/classification", name="Classification",
                   start_graphs=True,  # components.eager_chunks: measured faster here
                   title=page_title("Classification"), order=2)

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
DIST_SVG = "cls-dist-svg"
STEREO = "cls-stereonets"
STEREO_SVG = "cls-stereonet-svg"
STEREO_MIN_WIDTH = 1100     # px of the stereonet grid (three per row): its subtitles fit their cells
TERNARY = "cls-ternary"
TERNARY_SVG = "cls-ternary-svg"
DOWNLOAD_BTN = "cls-download-btn"
DOWNLOAD_TITLE = "the filtered mechanisms with the group from this rule, as CSV"
COMP_BTN = "cls-comp-btn"
COMP_OUT = "cls-comp-out"
COMPOSITE_GRAPH = "cls-composite"
STRESS_GRAPH = "cls-stress"

#: per-request bounds of "Composite & stress for this selection"
PAGE_MAX_EVENTS = 60          # events pooled into the composite (largest magnitudes first)
PAGE_TIMEOUT_S = 60.0         # SKHASH time limit of the composite
PAGE_PYTHON_MEMORY = 1.5e9    # bytes the pure-Python grid search may take (without Fortran)
STRESS_CAP = 500              # mechanisms inverted for stress (fixed sample by event id)
STRESS_BOOTSTRAP = 100        # bootstrap resamples of the stress inversion
STRESS_MIN = 4                # fewest mechanisms a stress inversion takes
POPULATION = "cls-population"
HASH_UNREADABLE = "The link's rule or threshold could not be read; showing the published rule."

#: mechanism columns the page reads (:data:`queries.classification.COLUMNS`)
COLUMNS = cq.COLUMNS
_GRAPH_CONFIG = {"displaylogo": False, "showTips": False, "responsive": True,
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


def _rule_table(rows: list[dict]):
    return dash_table.DataTable(
        id=RULE_TABLE, columns=RULE_TABLE_COLUMNS, data=rows, editable=True,
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


def _about(points_cap: int):
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
                "Kagan angle of each event to the average. Averages are written right-hand rule (strike 0–360, "
                "dip 0–90, rake −180–180) except planes within 5° of vertical, whose strike would flip by 180° as "
                "the dip crosses 90: they keep a strike in 90–270 and a dip in 85–95, a dip above 90 meaning the "
                "plane leans past vertical (so 25.5/89.8/−179.0 reads 205.5/90.2/179.0, the same plane and slip)."]),
        html.P(["Stereonets: lower hemisphere, equal area (the same projection as the beachballs). Nodal lines "
                "are coloured by the axial strike deviation min(|d|, 180−|d|) from the average (the original "
                "compared raw strikes with a wrapped mean and hid most g1 lines). At most "
                f"{LINE_CAP:,} lines are drawn per stereonet (a fixed sample by event id). The map and the ternary "
                f"diagram draw at most {points_cap:,} mechanisms (the same kind of fixed sample; the filter bar then "
                "says 'N matched / N drawn'); the counts, averages, spreads and histograms always use every matched "
                "mechanism."]),
        html.P(["Composite & stress (on request) use the filter bar's selection, not the edited rule. Composite: "
                "one SKHASH mechanism from the polarities of all selected events with polarities, each ray's "
                "takeoff and azimuth from its own event's location (SKHASH's composite mode); dashed beside it, the "
                "moment-tensor average of the selection's mechanisms. Stress: Michael (1984) with Vavryčuk (2014)'s "
                "fault-plane choice on one mechanism per event; σ1 ≥ σ2 ≥ σ3 compression positive, clouds = "
                "bootstrap axes, R = (σ1−σ2)/(σ1−σ3), SHmax (Lund & Townend 2007). The composite is what "
                "python -m pipeline composite --max-events 60 gives for the same filters; the stress command, "
                "unlike this panel, inverts every mechanism row (an event with a published and a computed "
                "mechanism counts twice unless --source picks one)."]),
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
    # the first figures come with the layout (issue 12), for the rule and threshold of the
    # URL fragment when the layout request sent it (components.first_page), else for the
    # published rule and the default threshold: the bar's Location then reports the fragment
    # on mount, and sync_rule redraws for a link's own rule
    rule, ml, unreadable = _fragment_state(routed_fragment())
    rows = cf.rule_rows(rule)
    q, store = f.to_query(), {"code": cf.encode_rule(rule)}
    counts, dist, ternary = summary_answer(q, store)
    fig, caption, drawn = map_answer(q, store, ml)
    search = routed_search()
    href, download_class, download_title = download_link(q, store, f.to_search() if search is None else search)
    lo = math.floor(options["mag_min"]) if options.get("mag_min") is not None else -2
    hi = math.ceil(options["mag_max"]) if options.get("mag_max") is not None else 4
    hi = max(hi, lo + 1, math.ceil(cf.DEFAULT_THRESHOLD))
    marks = {v: {"label": str(v)} for v in range(lo, hi + 1)}
    rule_card = _card("Group rule", [
        _rule_table(rows),
        html.Div([
            dbc.Button("+ Add row", id=ADD_ROW, size="sm", color="secondary", outline=True, className="me-2",
                       disabled=len(rows) >= cf.MAX_RULE_ROWS),
            dbc.Button("Reset to published rule", id=RESET, size="sm", color="secondary", outline=True),
            html.Span("Edit a cell, Enter to apply; × deletes a row.", className="fm-note ms-2"),
        ], className="d-flex align-items-center flex-wrap mt-2"),
        dbc.Alert(HASH_UNREADABLE if unreadable else None, id=RULE_ERROR, color="danger", is_open=unreadable,
                  className="py-1 px-2 mt-2 mb-0 small"),
        html.Div(counts, id=COUNTS, className="mt-2"),
        html.Div([
            # a link to the spooled download route, not a callback answer: the CSV is never
            # held in memory, and no worker thread waits on a slow client (app._register_download)
            html.A([html.Span("⤓ ", className="me-1"), "Download CSV"], id=DOWNLOAD_BTN, role="button",
                   href=href, className=download_class, title=download_title),
            html.Span("the filtered mechanisms with the group from this rule (group_stored: the published rule)",
                      className="fm-note ms-2"),
        ], className="d-flex align-items-center flex-wrap mt-2"),
    ], note="first match wins")
    map_card = _card("Classification map", [
        html.Div([
            html.Span("Beachballs for ML >", className="fm-inline-label me-2"),
            html.Div(dcc.Slider(id=THRESHOLD, min=lo, max=hi, step=0.01, value=ml, marks=marks,
                                updatemode="mouseup", 
                                className="fm-cls-ml"), style={"flex": "1 1 auto", "minWidth": "200px"}),
        ], className="d-flex align-items-center px-2"),
        dcc.Loading(dcc.Graph(id=MAP, figure=fig, config={**_GRAPH_CONFIG,
                              "scrollZoom": True, "toImageButtonOptions": {"filename": image_name("classification_map")}},
                              style={"height": "620px"}),
                    type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6}),
        html.Div(caption, id=MAP_CAPTION, className="fm-note px-2"),
    ], note="east/north km · each event: a 100 m tick along its strike and a circle")
    return html.Div([
        filter_bar.filter_bar(PAGE, f, options, display=False, table=False, drawn=drawn),
        dcc.Store(id=RULE_STORE, data=store),
        dbc.Row([
            dbc.Col(rule_card, lg=5, className="mb-3"),
            dbc.Col(map_card, lg=7, className="mb-3"),
        ], className="g-3"),
        _card("Strike, dip and rake per group", dcc.Loading(html.Div(dist, id=DIST), type="circle",
                                                            delay_show=400),
              note="roses are axial: each strike counted at s and s+180 (10° bins)", class_name="mb-3"),
        _card("Group stereonets", dcc.Loading(html.Div(stereonet_children(q, store), id=STEREO), type="circle",
                                              delay_show=400),
              note="plane-1 nodal lines coloured by axial strike deviation from the average; bold: the average "
                   "mechanism (moment-tensor sum) with its P/B/T axes", class_name="mb-3"),
        _card("Composite mechanism and stress of this selection", [
            html.Div([
                dbc.Button("Composite & stress for this selection", id=COMP_BTN, color="primary", size="sm"),
                html.Span(_composite_note(), className="fm-note ms-2"),
            ], className="d-flex align-items-center flex-wrap gap-1 mb-2"),
            dcc.Loading(html.Div(_composite_prompt(), id=COMP_OUT), type="circle", delay_show=200),
        ], note="computed on request: SKHASH in a subprocess and a bootstrap, a few seconds", class_name="mb-3"),
        dbc.Row([
            dbc.Col(_card("Faulting style: Frohlich ternary diagram", dcc.Loading(html.Div(ternary, id=TERNARY),
                                                                                  type="circle", delay_show=400),
                          note="points coloured by Zoback (1992) class; dashed: Frohlich's class limits"),
                    lg=6, className="mb-3"),
            dbc.Col(_card("About this page", _about(provider.caps.points), class_name="fm-about"), lg=6,
                    className="mb-3"),
        ], className="g-3"),
    ], className="fm-page fm-page-classification")


def _composite_note() -> str:
    return (f"composite: the polarities of at most {PAGE_MAX_EVENTS} filtered events with polarities (largest "
            f"magnitudes first), SKHASH limited to {PAGE_TIMEOUT_S:g} s; stress: at most {STRESS_CAP} mechanisms "
            f"(one per event, a fixed sample by event id), {STRESS_BOOTSTRAP} bootstrap resamples")


def _composite_prompt():
    return html.Div("Press the button to compute the composite mechanism and the stress inversion of the filtered "
                    "selection.", className="fm-note fm-comp-prompt")


# -- server-side builders (what the callbacks and the benchmark call) ----------------------------
@lru_cache(maxsize=64)
def _decoded(code: str):
    """The validated rule of an encoded rule (memoised: validation costs ~10 ms); callers
    must not modify it."""
    return cf.decode_rule(code)


def _fragment_state(fragment: str | None) -> tuple:
    """(rule, beachball threshold ML, unreadable?) of a URL fragment: the published rule
    and the default threshold where it names none or cannot be read."""
    h = cf.parse_hash(fragment)
    return (h["rule"] if h["rule"] is not None else PUBLISHED_RULE,
            h["ml"] if h["ml"] is not None else cf.DEFAULT_THRESHOLD, h["bad"])


def _rule(store):
    """The rule of the store (the published rule when it is missing or unreadable)."""
    code = (store or {}).get("code") if isinstance(store, dict) else None
    rule = _decoded(code) if isinstance(code, str) and code else None
    return rule if rule is not None else PUBLISHED_RULE


#: the regrouped selection and its averages, shared by the page's three callbacks of one
#: interaction (each would otherwise regroup and average every mechanism again)
_grouped = Memo(maxsize=4)


def _selection_key(p, query: str, rule) -> tuple:
    """Memo key of a selection under a rule: the data folder and its tables' version, the
    filters' data query and the encoded rule."""
    return (str(p.data_dir), p._version("mechanisms", "events"), Filters.from_query(query or "").data_query(),
            cf.encode_rule(rule))


def _grouped_selection(p, query: str, rule) -> dict:
    key = _selection_key(p, query, rule)

    def build():
        mechs = cf.regroup(cq.mechanisms(p, query), rule)
        order = cf.group_order(rule)
        present = [g for g in pd.unique(mechs["group"].to_numpy(dtype=object)).astype(str) if g not in order]
        order = order + sorted(present)
        lean = mechs[["event_id", "strike", "dip", "rake", "group"]]
        in_data = set(pd.unique(lean["group"].to_numpy(dtype=object)).astype(str))
        averages = group_average_table(lean, groups=[g for g in order if g in in_data], skip=(OTHER,))
        return {"mechs": mechs, "order": order, "colors": cf.group_colors(order), "lean": lean,
                "averages": averages}
    return _grouped.get(key, build)


def load_mechanisms(query: str, store=None, provider=None):
    """(filtered mechanisms re-grouped with the stored rule, rule, group order, colours).
    Shared between requests (memoised per selection and rule): callers must not modify."""
    p = provider or get_provider()
    rule = _rule(store)
    g = _grouped_selection(p, query, rule)
    return g["mechs"], rule, g["order"], g["colors"]


def _averages(query: str, store, provider):
    """(lean mechanisms, moment-tensor average table per group) of the selection (memoised)."""
    g = _grouped_selection(provider or get_provider(), query, _rule(store))
    return g["lean"], g["averages"]


def build_summary(query: str, store=None, provider=None) -> dict:
    """Counts and moment-tensor averages per group, and the distribution and ternary
    figures of the filtered mechanisms under the stored rule."""
    p = provider or get_provider()
    mechs, rule, order, colors = load_mechanisms(query, store, p)
    _, averages = _averages(query, store, p)
    shown = cq.drawn(mechs, p.caps.points)
    classes = (mechs["zoback_class"].astype(str).value_counts().to_dict()
               if len(shown) < len(mechs) and "zoback_class" in mechs else None)
    return {
        "summary": cf.group_summary(mechs, order, averages), "averages": averages, "order": order,
        "colors": colors, "n": len(mechs), "n_events": int(mechs["event_id"].nunique()),
        "distributions": cf.distributions_figure(mechs, order, colors),
        "ternary": cf.ternary_figure(shown, class_counts=classes),
    }


def build_stereonets(query: str, store=None, provider=None) -> list[tuple[str, dict]]:
    """(group, stereonet figure) per non-empty group, in rule order ('other': no average)."""
    mechs, rule, order, colors = load_mechanisms(query, store, provider)
    lean, averages = _averages(query, store, provider)
    avg_by_group = {r["group"]: r for r in averages.to_dict("records")}
    out = [(g, stereonet_figure(sub, g, None if g == OTHER else avg_by_group.get(g), color=colors.get(g)))
           for g, sub in lean.groupby("group", sort=False)]
    rank = {g: i for i, g in enumerate(order)}
    return sorted(out, key=lambda t: rank.get(t[0], len(rank)))


def build_analysis(query: str, store=None, provider=None) -> dict:
    """Everything but the map: :func:`build_summary` plus ``stereonets``."""
    return {**build_summary(query, store, provider), "stereonets": build_stereonets(query, store, provider)}


def build_map(query: str, store=None, threshold=cf.DEFAULT_THRESHOLD, provider=None) -> dict:
    """The classification map of the filtered mechanisms under the stored rule: at most
    ``caps.points`` strike ticks (:func:`queries.classification.drawn`), beachballs of the
    ``caps.map_mechanisms`` largest above ``threshold`` among all matched.
    ``layout.meta``: ``matched`` (mechanisms), ``drawn`` (rows of the sample)."""
    p = provider or get_provider()
    mechs, rule, order, colors = load_mechanisms(query, store, p)
    shown = cq.drawn(mechs, p.caps.points)
    fig = cf.classification_map_figure(shown, p.wells(), threshold=threshold, order=order, colors=colors,
                                       ball_rows=mechs, max_balls=p.caps.map_mechanisms)
    fig["layout"]["meta"].update(matched=int(len(mechs)), drawn=int(len(shown)))
    return fig


def build_composite_and_stress(query: str, provider=None) -> dict:
    """The composite mechanism and the stress inversion of the filtered selection, bounded
    per request (:data:`PAGE_MAX_EVENTS`, :data:`PAGE_TIMEOUT_S`, :data:`PAGE_PYTHON_MEMORY`,
    :data:`STRESS_CAP`, :data:`STRESS_BOOTSTRAP`). Returns ``composite`` (figure dict or None),
    ``composite_error`` (None or ``(level, message)``: ``warning`` for a selection that
    cannot make a composite, ``danger`` for a SKHASH failure or timeout), ``stress`` /
    ``stress_error`` likewise, ``average`` (moment-tensor average of the selection's
    mechanisms, one per event) and ``summary`` (the composite's JSON object or None)."""
    from pipeline.analysis import stress
    from pipeline.analysis.mechanism_stats import average_mechanism
    from pipeline.errors import InputError
    from pipeline.mechanisms import composite
    from pipeline.mechanisms.skhash import SkhashError, SkhashTimeout

    from components.stereonet import sample_rows

    p = provider or get_provider()
    f = Filters.from_query(query or "")
    out = {"composite": None, "composite_error": None, "stress": None, "stress_error": None, "average": None,
           "summary": None}
    mechs = p.mechanisms_per_event(f) if p.has_table("mechanisms") else None
    if mechs is not None and len(mechs):
        out["average"] = average_mechanism(mechs["strike"], mechs["dip"], mechs["rake"])
    try:
        res = composite.composite_of_selection(p, f, max_events=PAGE_MAX_EVENTS, timeout=PAGE_TIMEOUT_S,
                                               python_memory_limit=PAGE_PYTHON_MEMORY)
    except InputError as exc:
        out["composite_error"] = ("warning", f"No composite mechanism: {exc.reason}")
    except SkhashTimeout as exc:
        out["composite_error"] = ("danger", f"Composite mechanism failed: {exc} (limit {PAGE_TIMEOUT_S:g} s; "
                                            "narrow the selection)")
    except SkhashError as exc:
        out["composite_error"] = ("danger", f"Composite mechanism failed: {str(exc)[:400]}")
    except Exception as exc:  # noqa: BLE001 - shown on the page, not hidden behind a fallback
        logging.getLogger(__name__).exception("composite of %r failed", query)
        out["composite_error"] = ("danger", f"Composite mechanism failed: {type(exc).__name__}: {str(exc)[:400]}")
    else:
        if res["mechanism"] is None:
            out["composite_error"] = ("warning", f"SKHASH found no composite mechanism for the "
                                                 f"{res['n_input_events']} events with polarities: {res['reason']}")
        else:
            out["summary"] = composite.summary(res)
            out["composite"] = cpf.composite_figure(res["mechanism"], res["rays"], res["acceptable_planes"],
                                                    out["average"])
            out["composite"]["layout"]["meta"].update(n_selected=res["n_selected"], max_events=res["max_events"])
    n_sel = 0 if mechs is None else len(mechs)
    if n_sel < STRESS_MIN:
        out["stress_error"] = ("warning", f"No stress inversion: {n_sel} mechanism(s) in this selection, at least "
                                          f"{STRESS_MIN} needed (widen the selection).")
    else:
        used = sample_rows(mechs, STRESS_CAP)
        try:
            b = stress.bootstrap(used["strike"].to_numpy(float), used["dip"].to_numpy(float),
                                 used["rake"].to_numpy(float), n_boot=STRESS_BOOTSTRAP, seed=0)
        except (ValueError, np.linalg.LinAlgError) as exc:
            out["stress_error"] = ("warning", f"No stress inversion: {exc}")
        except Exception as exc:  # noqa: BLE001 - shown on the page
            logging.getLogger(__name__).exception("stress of %r failed", query)
            out["stress_error"] = ("danger", f"Stress inversion failed: {type(exc).__name__}: {str(exc)[:400]}")
        else:
            out["stress"] = cpf.stress_figure(b, len(used), n_sel)
    return out


def _composite_children(res: dict):
    """The card's content: composite and stress side by side, errors as visible alerts."""
    cfg = {"displayModeBar": False, "responsive": True}

    def panel(key, graph_id):
        err = res[f"{key}_error"]
        if err is not None:
            return dbc.Alert(err[1], color=err[0], className=f"py-2 px-2 small mb-0 fm-{key}-error")
        return dcc.Graph(id=graph_id, figure=res[key], config=cfg)

    rows = [dbc.Row([dbc.Col(panel("composite", COMPOSITE_GRAPH), md=6),
                     dbc.Col(panel("stress", STRESS_GRAPH), md=6)], className="g-2")]
    s, avg = res["summary"], res["average"]
    if s is not None:
        kag = res["composite"]["layout"]["meta"].get("kagan_to_average")
        line = [html.B("Composite "), f"{s['strike']:.0f}/{s['dip']:.0f}/{s['rake']:.0f} (quality {s['quality']}, "
                f"{s['n_polarities']:,} polarities of {s['n_events']:,} events"
                + (f", the {s['max_events']} largest of {s['n_selected_events']:,}" if s["n_selected_events"]
                   > s["max_events"] else "") + ")"]
        if avg is not None and avg.get("reason") is None:
            line += [" · ", html.B("MT average "), f"{avg['strike']:.0f}/{avg['dip']:.0f}/{avg['rake']:.0f} "
                     f"of {int(avg['n']):,} mechanisms"]
            if kag is not None:
                line.append(f" · Kagan {kag:.0f}°")
        rows.append(html.Div(line, className="fm-note mt-1 fm-comp-summary"))
    return rows


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
                               html.Th("Average s/d/r", className="text-end", title="moment-tensor sum, plane 1; a plane within 5° of vertical keeps its strike in "
                                       "90–270 (dip > 90: leaning past vertical)"),
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
# WebGL at the screen's resolution (issue 12): the map is scattergl above cf.SVG_MAX_POINTS mechanisms
screen_gl_pixel_ratio(MAP)


@dash.callback(
    Output(RULE_TABLE, "data"), Output(IDS.url, "hash"), Output(RULE_STORE, "data"),
    Output(RULE_ERROR, "children"), Output(RULE_ERROR, "is_open"), Output(THRESHOLD, "value"),
    Output(ADD_ROW, "disabled"),
    Input(IDS.url, "hash"), Input(RULE_TABLE, "data"), Input(ADD_ROW, "n_clicks"), Input(RESET, "n_clicks"),
    Input(THRESHOLD, "value"),
    State(RULE_STORE, "data"),
    prevent_initial_call=True,
)
def sync_rule(hash_, rows, _add, _reset, ml, store):
    """Rule table + threshold <-> URL fragment <-> the store of the last valid rule.

    Not called on a first load whose layout knew the fragment (it starts with the
    fragment's rule, see :func:`layout`); where the layout did not know it (the router's
    layouts, the renderer's own layout request), the bar's ``dcc.Location`` reports the
    fragment when it mounts, which calls this with the Location as the trigger."""
    trig = dash.ctx.triggered_id
    current = _rule(store)
    table_rule, table_error = cf.check_rule(rows)
    full = isinstance(rows, list) and len(rows) >= cf.MAX_RULE_ROWS

    def store_out(rule):
        code = cf.encode_rule(rule)
        return no_update if (store or {}).get("code") == code else {"code": code}

    if trig is None or trig == IDS.url:  # the mount report, back/forward, or the echo of our own fragment
        rule, ml_new, unreadable = _fragment_state(hash_)
        table_out = no_update if cf.same_rule(table_rule, rule) else cf.rule_rows(rule)
        ml_out = no_update if ml is not None and abs(float(ml) - ml_new) < 1e-9 else ml_new
        msg = HASH_UNREADABLE if unreadable else None
        if table_out is no_update and ml_out is no_update and store_out(rule) is no_update and not unreadable:
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


def summary_answer(query: str, store) -> tuple:
    """(counts card children, distributions, ternary diagram) of the filters and the stored
    rule: what :func:`update_summary` answers and the layout starts with. The two figures are
    drawn on the server as SVG (:mod:`components.classification_svg`, issue 12), each in an
    ``iframe`` document (Dash has no SVG elements; an inline SVG keeps its tooltips)."""
    res = build_summary(query, store)
    table = _counts_table(res["summary"], res["colors"], res["n"], none_in_data=res["n"] == 0 and _no_mechanisms())
    caption = population_note(Filters.from_query(query or ""), res["n_events"], res["n"], id=POPULATION)
    dist, ternary = res["distributions"], res["ternary"]
    return ([caption, *(table if isinstance(table, list) else [table])],
            html.Div(html.Iframe(id=DIST_SVG, srcDoc=csvg.distributions_document(dist),
                                 className="fm-cls-dist fm-svg-figure", title="strike, dip and rake per group",
                                 style={"width": "100%", "minWidth": f"{csvg.distributions_min_width(dist)}px",
                                        "border": "0", "display": "block", "height": f"{csvg.DIST_H}px"}),
                     style={"overflowX": "auto"}),
            html.Iframe(id=TERNARY_SVG, srcDoc=csvg.ternary_document(ternary),
                        className="fm-cls-ternary fm-svg-figure", title="Frohlich ternary diagram",
                        style={"width": "100%", "border": "0", "display": "block",
                               "height": f"{ternary['layout'].get('height', 440)}px"}))


@dash.callback(
    Output(COUNTS, "children"), Output(DIST, "children"), Output(TERNARY, "children"),
    Input(IDS.filters, "data"), Input(RULE_STORE, "data"),
    prevent_initial_call=True,
)
def update_summary(query, store):
    return summary_answer(query, store)


#: the stereonets' SVG document per selection and rule (an immutable string): every cold load
#: of the same page reuses it instead of drawing the nodal lines again (~50 ms of the answer)
_stereo_docs = Memo(maxsize=4)


def _stereonet_document(query: str, store) -> tuple[int, str]:
    """(number of stereonets, their SVG grid document) of the filters and the stored rule."""
    p = get_provider()
    key = _selection_key(p, query, _rule(store))

    def build():
        figs = [fig for _, fig in build_stereonets(query, store, p)]
        return len(figs), stereonet_grid_document(figs) if figs else ""
    return _stereo_docs.get(key, build)


def stereonet_children(query: str, store):
    """The stereonet card's content: every non-empty group's stereonet, drawn on the server
    as SVG (:mod:`components.stereonet_svg`) in one ``iframe`` document, or why there is none.

    SVG, not a Plotly plot (issue 12): plotly.js took ~0.5 s of the main thread to lay out the
    five-subplot grid; the browser draws the same paths in milliseconds, and the P/B/T
    markers keep their hover text as SVG tooltips. Below ~1,100 px the grid scrolls sideways
    instead of squeezing its subtitles into the next cell. A separate request from the counts
    (they run in parallel; each stays short)."""
    n, doc = _stereonet_document(query, store)
    if not n:
        return dbc.Alert(NO_MECHANISMS if _no_mechanisms() else "No mechanism matches the filters.", color="light",
                         className="mb-0")
    return html.Div(html.Iframe(
        id=STEREO_SVG, srcDoc=doc, className="fm-cls-stereonet fm-svg-figure",
        title="group stereonets", style={"width": "100%", "minWidth": f"{STEREO_MIN_WIDTH}px", "border": "0",
                                         "display": "block", "height": f"{grid_height(n)}px"}),
        style={"overflowX": "auto"})


@dash.callback(Output(STEREO, "children"), Input(IDS.filters, "data"), Input(RULE_STORE, "data"),
               prevent_initial_call=True)
def update_stereonets(query, store):
    return stereonet_children(query, store)


@dash.callback(
    Output(COMP_OUT, "children"),
    Input(COMP_BTN, "n_clicks"), Input(IDS.filters, "data"),
    prevent_initial_call=True,
)
def update_composite(n_clicks, query):
    """On the button only (SKHASH and a bootstrap take seconds); a filter change clears the
    result, which no longer describes the selection."""
    if dash.ctx.triggered_id != COMP_BTN or not n_clicks:
        return _composite_prompt()
    return _composite_children(build_composite_and_stress(query))


def map_answer(query: str, store, ml) -> tuple:
    """(map figure, caption, the bar's ``.drawn`` value) of the filters, the stored rule and
    the beachball threshold ``ml`` (None: the default)."""
    ml = cf.DEFAULT_THRESHOLD if ml is None else float(ml)
    p = get_provider()
    fig = build_map(query, store, ml)
    meta = fig["layout"]["meta"]
    f = Filters.from_query(query or "")
    cap = p.caps.points
    sampled = meta["drawn"] < meta["matched"]
    ticks = (f"{meta['drawn']:,} of {meta['matched']:,} mechanisms drawn (a fixed sample by event id, cap "
             f"{cap:,}; the counts, averages and histograms use all)" if sampled else f"{meta['ticks']:,} mechanisms")
    balls = (f"the {meta['balls']:,} largest of {meta['balls_matched']:,} beachballs" if
             meta["balls"] < meta["balls_matched"] else
             f"{meta['balls']:,} beachball{'s' if meta['balls'] != 1 else ''}")
    caption = (f"{ticks} ({population_of(f).label}) · {balls} "
               f"for ML > {ml:g} (radius {cf.BALL_SCALE:g}× the map page's) · "
               f"{'wells drawn' if len(p.wells()) else 'no wells in this data set'} · scroll to zoom")
    drawn = filter_bar.drawn_data(
        f, {"matched": int(p.counts(f).iloc[0]["events"])},
        {"matched": int(meta["matched"]), "drawn": int(meta["drawn"]), "cap": cap,
         "note": f"map and ternary: fixed sample by event id, cap {cap:,}; counts, averages and histograms use all"})
    return fig, caption, drawn


@dash.callback(
    Output(MAP, "figure"), Output(MAP_CAPTION, "children"), Output(IDS.drawn, "data"),
    Input(IDS.filters, "data"), Input(RULE_STORE, "data"), Input(THRESHOLD, "value"),
    prevent_initial_call=True,
)
def update_map(query, store, ml):
    return map_answer(query, store, ml)


@dash.callback(
    Output(DOWNLOAD_BTN, "href"), Output(DOWNLOAD_BTN, "className"), Output(DOWNLOAD_BTN, "title"),
    Input(IDS.filters, "data"), Input(RULE_STORE, "data"), Input(IDS.url, "search"),
    prevent_initial_call=True,
)
def download_link(query, store, search=None):
    """The CSV link of the filters and the stored rule (:mod:`components.classified_csv`).
    A malformed filter in the address: the bar's alert says so, and the link is disabled and
    loses its href rather than download mechanisms the address did not ask for. So is a link
    the route would refuse (a rule too long for a URL): its title says why."""
    _, class_name, problem = filter_bar.problem_children(search or "")
    if problem:
        return None, class_name, problem
    href = classified_csv.href(Filters.from_query(query or ""), _rule(store), dash.get_relative_path("/"))
    refused = classified_csv.url_problems(href)
    if refused:
        return None, class_name + " disabled", "cannot download: " + "; ".join(refused)
    return href, class_name, DOWNLOAD_TITLE


__all__ = ["layout", "build_analysis", "build_summary", "build_stereonets", "build_map", "download_link",
           "load_mechanisms", "build_composite_and_stress"]
