"""Polarity-model page (``/model``): how well the polarity pickers do, on which data.

Reads the ``model_eval`` table (:mod:`pipeline.picking.evaluate`; written by ``python -m pipeline
evaluate``), the velocity-model robustness study (``<data-dir>/robustness_velocity_model.json``
when the data folder has one, else the committed record ``pipeline/models/robustness_velocity_model.json``;
written by ``python -m pipeline robustness``; :mod:`pipeline.demo.robustness`) and, for the per-event agreement table, the ``polarities`` of the events the
shared filters select. Thin wiring only: numbers and figures come from
:mod:`components.model_figures`, queries from :mod:`queries.model`.

Besides the shared filters (which select the events of the per-event table; the metrics
are computed once, in the batch step, over every labelled trace), the page keeps two keys
in the URL: ``evalset`` (the evaluation set of the curves, matrices and metrics table) and
``picker`` (the picker of the per-event table); see :func:`page_state`.
"""
from __future__ import annotations

from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html
from dash.dash_table.Format import Format, Scheme
from dash.exceptions import PreventUpdate

from components import filter_bar
from components import model_figures as mf
from components.data import MissingDataError, get_provider
from components.filters import Filters, _as_params
from components.layout import no_data, page_title
from components.map_figure import empty_figure
from queries import model as mq

dash.register_page(__name__, path="/model", name="Polarity model", title=page_title("Polarity model"),
                   start_graphs=True,  # components.eager_chunks: measured faster here
                   order=6)

PAGE = "model"
IDS = filter_bar.ids(PAGE)
STATE, URL_SYNC = "model-state", "model-url-sync"
EVALSET, PICKER = "model-evalset", "model-picker"
CURVES, CONFUSION, CALIBRATION, TRAINING = "model-curves", "model-confusion", "model-calibration", "model-training"
METRICS, METRICS_BUTTON, METRICS_DOWNLOAD = "model-metrics", "model-metrics-csv", "model-metrics-download"
AGREE, AGREE_BUTTON, AGREE_DOWNLOAD = "model-agreement", "model-agreement-csv", "model-agreement-download"
EVALSET_NOTE, AGREE_CAPTION, SUBSETS = "model-evalset-note", "model-agreement-caption", "model-subsets"
ROBUSTNESS = "model-robustness"
#: the page's own URL keys (the shared filters use others)
PAGE_KEYS = ("evalset", "picker")
PICKERS = ("cnn", "onset", "cct")


# -- page state (URL) -----------------------------------------------------------------------
def default_evalset(datasets) -> str:
    """The set shown first: the demo's ground truth when there is one, else the first."""
    datasets = list(datasets) or list(mf.MAIN_DATASETS)
    return "demo_truth" if "demo_truth" in datasets else datasets[0]


def page_state(query, datasets=mf.MAIN_DATASETS, pickers=PICKERS) -> dict:
    """``evalset`` (one of ``datasets``, default :func:`default_evalset`) and ``picker``
    (one of ``pickers``, default the first) from a query string or mapping. Never raises."""
    try:
        params = _as_params(query)
    except Exception:  # noqa: BLE001 - hostile input must never raise
        params = {}
    datasets = list(datasets) or list(mf.MAIN_DATASETS)
    pickers = list(pickers) or list(PICKERS)
    evalset = next((v for v in params.get("evalset", []) if v in datasets), default_evalset(datasets))
    picker = next((v for v in params.get("picker", []) if v in pickers), pickers[0])
    return {"evalset": evalset, "picker": picker}


def page_query(state: dict) -> str:
    """Query string of the page's keys (always both: the defaults depend on the data)."""
    return urlencode([("evalset", state["evalset"]), ("picker", state["picker"])])


# -- data -----------------------------------------------------------------------------------
def _eval_rows(provider) -> pd.DataFrame | None:
    try:
        return mq.model_eval(provider)
    except MissingDataError:
        return None


def _pickers(rows: pd.DataFrame | None) -> list[str]:
    if rows is None:
        return ["cnn", "onset"]
    have = set(rows.loc[(rows["dataset"] == "all_traces"), "model"])
    return [p for p in PICKERS if p in have] or ["cnn", "onset"]


# -- pieces ---------------------------------------------------------------------------------
_TAGS = {"held-out": ("held-out", "success"), "in-sample": ("in-sample · optimistic", "warning"),
         "baseline": ("baseline", "secondary"), "reference": ("reference", "info")}


def _card(c: dict):
    lines = []
    for label, text, tag in c["lines"]:
        badge = None
        if tag in _TAGS:
            t, color = _TAGS[tag]
            badge = dbc.Badge(t, color=color, className="ms-1 fw-normal", pill=True,
                              text_color="dark" if color in ("warning", "info") else None)
        lines += [html.Dt(label), html.Dd([text, badge] if badge else text)]
    return dbc.Card(dbc.CardBody([
        html.Div(c["title"], className="fm-label"),
        html.Div(c["value"], className="fs-3 fw-bold lh-sm", style={"fontVariantNumeric": "tabular-nums"}),
        html.Div(c["caption"], className="fm-note mb-2"),
        html.Dl(lines, className="fm-dl mb-0 small") if lines else None,
    ]), className=f"fm-side-card h-100 fm-model-card fm-model-card-{c['key']}")


def _graph(gid, height, filename, figure=None):
    return dcc.Loading(dcc.Graph(
        id=gid, figure=figure if figure is not None else empty_figure("loading…"), style={"height": height},
        config={"displaylogo": False, "showTips": False, "responsive": True, "modeBarButtonsToRemove": ["select2d", "lasso2d"],
                "toImageButtonOptions": {"filename": filename, "scale": 2}}),
        type="circle", delay_show=400, overlay_style={"visibility": "visible", "opacity": 0.6})


def _header(title, note=None, right=None):
    return dbc.CardHeader(html.Div([
        html.Div([html.Span(title, className="fw-semibold"),
                  html.Span(note, className="fm-note ms-2") if note else None]),
        right,
    ], className="d-flex justify-content-between align-items-center flex-wrap gap-2"), className="fm-card-header")


def _download_button(bid, text="Download CSV"):
    return dbc.Button([html.Span("⤓ ", className="me-1"), text], id=bid, color="primary", size="sm",
                      className="fm-download")


def _reported_box(rows):
    rep = mf.reported_numbers(rows)
    if rep is None:
        return None
    items = [x for label, v in rep["accuracy"] for x in (html.Dt(label), html.Dd(mf.fmt_pct(v, 1)))]
    body = [html.Dl(items, className="fm-dl mb-2")]
    if rep["confusion"]:
        (uu, ud), (du, dd) = rep["confusion"]
        cell = {"padding": "2px 10px", "textAlign": "right", "fontVariantNumeric": "tabular-nums"}
        body.append(html.Table([
            html.Thead(html.Tr([html.Th("recorded", style=cell), html.Th("pred. up", style=cell),
                                html.Th("pred. down", style=cell)])),
            html.Tbody([html.Tr([html.Th("actual up", style=cell), html.Td(f"{uu:,}", style=cell),
                                 html.Td(f"{ud:,}", style=cell)]),
                        html.Tr([html.Th("actual down", style=cell), html.Td(f"{du:,}", style=cell),
                                 html.Td(f"{dd:,}", style=cell)])]),
        ], className="small mb-2 fm-reported-confusion"))
    n = f"{rep['n']:,} traces ({rep['n_up']:,} recorded up, {rep['n_down']:,} recorded down)" if rep["n"] else ""
    body.append(html.P([f"Micro-EQpolarity confusion matrix, recorded convention. {n}. Chen et al. (2024), "
                        "IEEE TGRS 62, 5917411. Those waveforms are not available here, so these numbers cannot be "
                        "reproduced or compared one-to-one with ours; the test accuracy is above the best validation "
                        "accuracy and the outputs are saturated (uncalibrated): treat 99.2 % as optimistic."],
                       className="fm-note mb-0"))
    return dbc.Card([
        dbc.CardHeader("Reported by the authors on their 2,861-trace test set (different data)",
                       className="fm-card-header fw-semibold"),
        dbc.CardBody(body, className="fm-about"),
    ], className="fm-side-card fm-reported border-warning h-100")


def _conventions():
    return dbc.Card([
        dbc.CardHeader("Conventions and what differs from the original", className="fm-card-header fw-semibold"),
        dbc.CardBody([
            html.P([html.B("p = prob_down_recorded"), ": a picker's probability that the first motion ",
                    html.B("as recorded"), " is down (EQpolarity convention, label 1 = down). ROC, precision–recall "
                    "and reliability curves use it with the positive class = recorded down."]),
            html.P([html.B("Polarities"), " (confusion matrices, precision/recall per class, the per-event table) are ",
                    html.B("true ground motion"), ": +1 up, −1 down, after the station reversal (ToC2ME 5B verticals "
                    "are recorded inverted: true up = recorded down), applied once, at picking."]),
            html.P([html.B("Undetermined band"), ": a picker says down when p ≥ upper, up when p ≤ lower, and abstains "
                    "in between (abstention = share of its traces in the band; coverage = decided share). The CNN's "
                    "band was chosen on held-out events (the widest band reaching 98 % accuracy), not fixed at "
                    "0.05/0.95 as in the original; the reference keeps its fixed cut-offs."]),
            html.P([html.B("Held-out vs in-sample"), ": the production CNN was fine-tuned on the labels of the two "
                    "ToC2ME events with waveforms (manual picks + the reference's confident outputs), so its numbers "
                    "on those events are in-sample (optimistic). The honest ones are the leave-one-event-out "
                    "numbers of its training record, scored ", html.B("nested"), ": for each held-out event the "
                    "recipe (fine-tuned or synthetic only) and the band are chosen on the other event's held-out "
                    "predictions only. Not nested: those predictions come from the fold model trained on the "
                    "held-out event's labels, and the fold models were not re-fitted. The onset baseline has no "
                    "training: it is scored on the same traces. Agreement with the reference measures consistency "
                    "with a model, not truth."]),
            html.P([html.B("Intervals and sample size"), ": every accuracy and coverage comes with a 95 % Wilson "
                    "interval. They treat traces as independent; with only two labelled events (118 traces) the "
                    "spread between events is unknown, so read them as lower bounds on the uncertainty."],
                   className="mb-0"),
        ], className="fm-about"),
    ], className="fm-side-card")


_pct = Format(precision=1, scheme=Scheme.percentage)
_num = Format(precision=3, scheme=Scheme.fixed)


def _metric_columns():
    cols = []
    for cid, (name, kind) in mf.TABLE_COLUMNS.items():
        c = {"id": cid, "name": name}
        if kind in ("int", "pct", "num"):
            c["type"] = "numeric"
            if kind == "pct":
                c["format"] = _pct
            elif kind == "num":
                c["format"] = _num
        cols.append(c)
    return cols


_TABLE_STYLE = dict(
    style_as_list_view=True, style_table={"overflowX": "auto"},
    style_header={"fontWeight": 600, "backgroundColor": "#f8f9fa", "borderBottom": "1px solid #dee2e6",
                  "whiteSpace": "normal", "height": "auto"},
    style_cell={"fontFamily": "inherit", "fontSize": "13px", "padding": "4px 8px", "textAlign": "right",
                "border": "none", "borderBottom": "1px solid #eef0f2"},
    css=[{"selector": ".dash-cell-value p", "rule": "margin: 0;"}],
)

AGREE_COLUMNS = [
    {"id": "event", "name": ["", "Event"], "presentation": "markdown"},
    {"id": "time", "name": ["", "Time (UTC)"]},
    {"id": "magnitude", "name": ["", "ML"], "type": "numeric", "format": Format(precision=2, scheme=Scheme.fixed)},
    {"id": "n_picker", "name": ["Picker", "traces"], "type": "numeric"},
    {"id": "picker_decided", "name": ["Picker", "decided"], "type": "numeric"},
    {"id": "ref_both", "name": ["vs reference", "both decide"], "type": "numeric"},
    {"id": "ref_agree", "name": ["vs reference", "agree"], "type": "numeric"},
    {"id": "ref_disagree", "name": ["vs reference", "disagree"], "type": "numeric"},
    {"id": "ref_only_picker", "name": ["vs reference", "only picker"], "type": "numeric"},
    {"id": "ref_only_other", "name": ["vs reference", "only reference"], "type": "numeric"},
    {"id": "manual_both", "name": ["vs manual", "both"], "type": "numeric"},
    {"id": "manual_agree", "name": ["vs manual", "agree"], "type": "numeric"},
    {"id": "manual_disagree", "name": ["vs manual", "disagree"], "type": "numeric"},
    {"id": "manual_only_other", "name": ["vs manual", "picker undecided"], "type": "numeric"},
]
TRUTH_COLUMNS = [
    {"id": "truth_both", "name": ["vs demo truth", "decided"], "type": "numeric"},
    {"id": "truth_agree", "name": ["vs demo truth", "right"], "type": "numeric"},
    {"id": "truth_disagree", "name": ["vs demo truth", "wrong"], "type": "numeric"},
    {"id": "truth_only_other", "name": ["vs demo truth", "undecided"], "type": "numeric"},
]
AGREE_PAGE_SIZE = 15


def _evalset_control(datasets, state):
    return dbc.RadioItems(
        id=EVALSET, options=[{"label": mf.dataset_label(d), "value": d} for d in datasets], value=state["evalset"],
        inline=True, className="btn-group fm-view flex-wrap", inputClassName="btn-check",
        labelClassName="btn btn-outline-secondary btn-sm", labelCheckedClassName="active")


def _model_sections(rows, datasets, state, provider, evalset=None):
    """The page's panels; ``evalset``: :func:`build_evalset`'s (metrics rows, curves,
    confusion, calibration, note) for ``state``, drawn with the page (None: placeholders)."""
    metrics, curves, confusion, calibration, note = evalset or ([], None, None, None, None)
    cards = mf.headline_cards(rows)
    summary = mf.training_summary(rows)
    demo = any(d.startswith("demo_truth") for d in set(rows["dataset"]))
    datasets = datasets or [state["evalset"]]
    sections = [
        dbc.Row([dbc.Col(_card(c), md=6, xl=12 // max(len(cards), 3)) for c in cards],
                className="g-3 mb-3") if cards else None,
        dbc.Card([
            _header("Evaluation set", None, html.Div([
                _download_button(METRICS_BUTTON, "Metrics CSV"),
            ])),
            dbc.CardBody([
                _evalset_control(datasets, state),
                html.Div(note, id=EVALSET_NOTE, className="fm-note mt-2 mb-2"),
                dash_table.DataTable(id=METRICS, columns=_metric_columns(), data=metrics, sort_action="none",
                                     style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"}
                                                             for c in ("picker", "band", "note")],
                                     **_TABLE_STYLE),
            ]),
        ], className="fm-table-card mb-3"),
        dbc.Card([_header("Curves", "score = p (recorded down); ringed point = the picker's own band"),
                  _graph(CURVES, "360px", "polarity_curves", curves)], className="fm-map-card mb-3"),
        dbc.Row([
            dbc.Col(dbc.Card([_header("Confusion matrices", "true ground motion; colour = share of the actual class"),
                              _graph(CONFUSION, "260px", "polarity_confusion", confusion)], className="fm-map-card h-100"),
                    lg=7),
            dbc.Col(dbc.Card([_header("Calibration (reliability)", "undetermined band shaded"),
                              _graph(CALIBRATION, "330px", "polarity_calibration", calibration)], className="fm-map-card h-100"),
                    lg=5),
        ], className="g-3 mb-3"),
        dbc.Row([
            dbc.Col(dbc.Card([
                _header("Training curves", "ours beside the reference's"),
                _graph(TRAINING, "390px", "polarity_training",
                       _cached_figure(provider, "training", lambda: mf.training_figure(rows))),
                html.Dl([x for k, v in summary for x in (html.Dt(k), html.Dd(v))],
                        className="fm-dl small mx-2 mb-2") if summary else None,
            ], className="fm-map-card h-100"), lg=8),
            dbc.Col(_reported_box(rows), lg=4),
        ], className="g-3 mb-3"),
    ]
    sections.append(dbc.Card([
        _header("Demo ground truth by difficulty", "accuracy on decided traces / coverage, per picker"),
        html.Div(_subsets(rows) if demo else None, id=SUBSETS, className="p-2"),
    ], className="fm-table-card mb-3", style=None if demo else {"display": "none"}))
    return sections


def _subsets(rows):
    t = mf.subsets_table(rows)
    if t.empty:
        return html.Div("No demo subsets.", className="fm-note")
    models = [m for m in mf.MODEL_LABELS if f"{m}_accuracy" in t]
    cols = [{"id": "subset", "name": ["", "Subset"]}, {"id": "n_labelled", "name": ["", "Traces"], "type": "numeric"}]
    for m in models:
        cols += [{"id": f"{m}_accuracy", "name": [mf.model_label(m), "accuracy"], "type": "numeric", "format": _pct},
                 {"id": f"{m}_accuracy_ci", "name": [mf.model_label(m), "95 % CI"]},
                 {"id": f"{m}_coverage", "name": [mf.model_label(m), "coverage"], "type": "numeric", "format": _pct},
                 {"id": f"{m}_coverage_ci", "name": [mf.model_label(m), "95 % CI"]}]
    return dash_table.DataTable(columns=cols, data=t.to_dict("records"), merge_duplicate_headers=True,
                                style_cell_conditional=[{"if": {"column_id": "subset"}, "textAlign": "left"}],
                                **_TABLE_STYLE)


def _robustness_panel(data_dir):
    """"What a wrong velocity model costs": the stored :mod:`pipeline.demo.robustness` study -
    this data folder's (``<data-dir>/robustness_velocity_model.json``) when it has one, else the
    committed record (``pipeline/models/robustness_velocity_model.json``) - with where its
    numbers come from, or how to make it when neither exists."""
    from pipeline.demo import robustness_record as rb
    doc, source = rb.read_for_page(data_dir)
    if doc is None:
        body = html.P(["Not computed for this data folder. The study renders demo events twice - with the velocity "
                       "model SKHASH inverts with, and with a perturbed one plus station statics - picks and inverts "
                       "both with the nominal model, and compares the mechanisms with the truth. Run ",
                       html.Code(f"python -m pipeline robustness --data-dir {data_dir}"),
                       " (200 events, several minutes; --events N for fewer), then reload."],
                      className="fm-note mb-0")
        return dbc.Card([_header("What a wrong velocity model costs"), dbc.CardBody(body)],
                        id=ROBUSTNESS, className="fm-table-card mb-3 fm-robustness-missing")
    t = mf.robustness_table(doc)
    cases = [c for c in rb.CASES if f"n_{c}" in t]
    label = {"matched": "Matched model (inverse crime)", "perturbed": "Perturbed model + statics"}
    cols = [{"id": "picker", "name": ["", "Picker"]}, {"id": "quality", "name": ["", "Quality"]}]
    for c in cases:
        cols += [{"id": f"n_{c}", "name": [label[c], "n"], "type": "numeric"},
                 {"id": f"median_{c}", "name": [label[c], "median Kagan"]},
                 {"id": f"p90_{c}", "name": [label[c], "90th pct"]},
                 {"id": f"within20_{c}", "name": [label[c], "≤ 20° (95 % CI)"]}]
    return dbc.Card([
        _header("What a wrong velocity model costs", "demo synthetic study; Kagan angle to the true mechanism"),
        dbc.CardBody([
            html.P(mf.robustness_source(doc, source, data_dir), className="fm-note small mb-1 fm-robustness-source"),
            html.P(mf.robustness_caption(doc), className="fm-note mb-2 fm-robustness-caption"),
            dash_table.DataTable(columns=cols, data=t.to_dict("records"), merge_duplicate_headers=True,
                                 sort_action="none",
                                 style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"}
                                                         for c in ("picker", "quality")],
                                 **_TABLE_STYLE),
            html.Ul([html.Li(x) for x in mf.robustness_polarity_lines(doc)], className="fm-note small mt-2 mb-1"),
            html.P("Read the two sides against each other: their difference is what this wrong model costs on the "
                   "demo's network (66 stations around shallow sources). Events SKHASH does not solve are not in the "
                   "table, so it says nothing about them; sparser coverage makes takeoff errors matter more. "
                   "Make it again with other perturbations: python -m pipeline robustness --help.",
                   className="fm-note small mb-0"),
        ]),
    ], id=ROBUSTNESS, className="fm-table-card mb-3 fm-robustness")


def layout(**query):
    provider = get_provider()
    missing = provider.missing_tables(("events", "mechanisms", "frame"))
    if missing:
        return no_data(provider.data_dir, missing)
    f = Filters.from_query(query)
    rows = _eval_rows(provider)
    datasets = mf.available_datasets(rows) if rows is not None else []
    pickers = _pickers(rows)
    state = page_state(query, datasets or mf.MAIN_DATASETS, pickers)
    options = provider.filter_options()
    if rows is None or rows.empty:
        # the panels stay in the layout, hidden, so every callback finds its components
        hidden = _model_sections(pd.DataFrame(columns=["model", "dataset", "kind", "name", "x", "y", "value"]),
                                 datasets, state, provider)
        body = [dbc.Alert([
            html.H5("No polarity-model evaluation yet", className="alert-heading"),
            html.P(["The data folder ", html.Code(str(provider.data_dir)), " has no ", html.Code("model_eval"),
                    " table. Compute it from the build's polarities with ",
                    html.Code(f"python -m pipeline evaluate --data-dir {provider.data_dir}"),
                    " (add ", html.Code("--input DIR"), " for the reference's training log), then reload."],
                   className="mb-0"),
        ], color="secondary", className="fm-empty fm-model-empty"),
            html.Div([b for b in hidden if b is not None], style={"display": "none"})]
    else:
        # the evaluation-set panels come with the page: on a first load no callback chain
        # (state -> panels) stands between the layout and the drawn figures (issue 12)
        body = _model_sections(rows, datasets, state, provider, build_evalset(page_query(state), provider))
    # the first page of the agreement table too
    agree_rows, agree_columns, agree_caption, agree_pages, agree_page = agreement_answer(f.to_query(), page_query(state))
    return html.Div([
        filter_bar.filter_bar(PAGE, f, options, display=False, table=False),
        dcc.Store(id=STATE, data=page_query(state)),
        dcc.Store(id=URL_SYNC),
        dcc.Download(id=METRICS_DOWNLOAD),
        dcc.Download(id=AGREE_DOWNLOAD),
        *[b for b in body if b is not None],
        _robustness_panel(provider.data_dir),
        dbc.Card([
            _header("Per-event agreement", None, html.Div([
                html.Span("Picker", className="fm-inline-label"),
                dbc.Select(id=PICKER, options=[{"label": mf.model_label(p), "value": p} for p in pickers],
                           value=state["picker"], size="sm", className="fm-select"),
                _download_button(AGREE_BUTTON),
            ], className="fm-inline")),
            html.Div(agree_caption, id=AGREE_CAPTION, className="fm-note px-3 pt-2"),
            dash_table.DataTable(
                # paged on the server (queries.model.agreement_page): one page is sent, never the whole table
                id=AGREE, columns=agree_columns, data=agree_rows, page_action="custom", page_current=agree_page,
                page_size=AGREE_PAGE_SIZE, page_count=agree_pages, merge_duplicate_headers=True, markdown_options={"link_target": "_self"},
                style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"} for c in ("event", "time")],
                **_TABLE_STYLE),
        ], className="fm-table-card mb-3"),
        _conventions(),
    ], className="fm-page fm-page-model")


# -- callbacks --------------------------------------------------------------------------------
# Not called on a first load: the layout's state store, radio and select already agree
# (all three from page_state of the URL), and the panels of that state are in the layout.
@dash.callback(Output(STATE, "data"), Input(EVALSET, "value"), Input(PICKER, "value"), State(STATE, "data"),
               prevent_initial_call=True)
def update_state(evalset, picker, current):
    cur = page_state(current or "")
    state = {"evalset": evalset if evalset in mf.DATASETS else cur["evalset"],
             "picker": picker if picker in PICKERS else cur["picker"]}
    return page_query(state)


# the filter bar writes ``?<filters>``; add the page's keys back (after its own update)
filter_bar.sync_page_query(PAGE_KEYS, URL_SYNC, STATE, IDS.filters)


_FIGURE_CACHE: dict = {}


def _cached_figure(provider, key: str, build):
    """Figures depend only on ``model_eval``: keep them (as plain dicts) until its file
    changes (a few per data folder)."""
    try:
        st = provider.path("model_eval").stat()
        version = (str(provider.data_dir), st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        return build()
    hit = _FIGURE_CACHE.get((version, key))
    if hit is None:
        fig = build()
        hit = fig.to_plotly_json() if hasattr(fig, "to_plotly_json") else fig
        if len(_FIGURE_CACHE) > 64:
            _FIGURE_CACHE.clear()
        _FIGURE_CACHE[(version, key)] = hit
    return hit


def build_evalset(state_query: str, provider=None):
    """Server-side path of the evaluation-set panels: (metrics table rows, curves, confusion,
    calibration, note); ``provider`` defaults to the app's."""
    provider = provider or get_provider()
    rows = _eval_rows(provider)
    if rows is None:
        raise PreventUpdate
    datasets = mf.available_datasets(rows)
    state = page_state(state_query or "", datasets or mf.MAIN_DATASETS)
    ds = state["evalset"]
    table = mf.metrics_table(rows, ds)
    desc = mf.DATASETS.get(ds, (ds, ""))[1]
    n = int(table["n_labelled"].max()) if len(table) and table["n_labelled"].notna().any() else 0
    note = [html.B(mf.dataset_label(ds)), f" · {n:,} labelled traces · {desc}." if n else f" · {desc}."]
    if (table["note"].str.contains("in-sample")).any():
        note.append(html.Span(" CNN numbers here are in-sample (it was trained on these events): optimistic; "
                              "see the held-out set.", className="text-warning-emphasis"))
    data = table.drop(columns=["model", "dataset"]).astype(object).where(table.notna(), None).to_dict("records") \
        if len(table) else []
    figs = [_cached_figure(provider, f"{name}:{ds}", lambda fn=fn: fn(rows, ds)) for name, fn in (
        ("curves", mf.curves_figure), ("confusion", mf.confusion_figure), ("calibration", mf.calibration_figure))]
    return (data, *figs, note)


def warm_up(provider) -> None:
    """Build, once per process, what the page's first load would otherwise build: the
    figures of the default evaluation set and the training figure (kept in the figure cache
    until ``model_eval`` changes), with Plotly's figure classes and the robustness study
    (read once per file version), and run the first page of the per-event table's query
    (DuckDB's first reads of ``polarities``). ``app.py`` calls it before serving, so the
    first visit after a server start does not wait ~0.6 s for the figures and ~0.1-0.3 s
    for the query (issue 12); the same work, only earlier. Nothing without ``model_eval``."""
    rows = _eval_rows(provider)
    if rows is None or rows.empty:
        return
    state = page_state("", mf.available_datasets(rows) or mf.MAIN_DATASETS, _pickers(rows))
    build_evalset(page_query(state), provider)
    _cached_figure(provider, "training", lambda: mf.training_figure(rows))
    mq.agreement_page(provider, Filters(), state["picker"], 0, AGREE_PAGE_SIZE)
    from pipeline.demo import robustness_record as rb
    doc, source = rb.read_for_page(provider.data_dir)
    if doc is not None:
        mf.robustness_source(doc, source, provider.data_dir)


@dash.callback(
    Output(METRICS, "data"), Output(CURVES, "figure"), Output(CONFUSION, "figure"), Output(CALIBRATION, "figure"),
    Output(EVALSET_NOTE, "children"),
    Input(STATE, "data"), prevent_initial_call=True,  # the layout holds the first state's panels
)
def update_evalset(state_query):
    return build_evalset(state_query)


def agreement_frame(query: str, state_query: str) -> pd.DataFrame:
    """The per-event table the page shows (and downloads): :func:`queries.model.agreement`
    of the filtered events for the chosen picker."""
    state = page_state(state_query or "")
    return mq.agreement(get_provider(), Filters.from_query(query or ""), state["picker"])


@dash.callback(
    Output(AGREE, "data"), Output(AGREE, "columns"), Output(AGREE_CAPTION, "children"),
    Output(AGREE, "page_count"), Output(AGREE, "page_current"),
    Input(IDS.filters, "data"), Input(STATE, "data"), Input(AGREE, "page_current"),
    prevent_initial_call=True,  # the layout holds the first page
)
def update_agreement(query, state_query, page=0):
    # a new selection starts at the first page; paging keeps the selection
    if dash.ctx.triggered_id != AGREE:
        page = 0
    return agreement_answer(query, state_query, page)


def agreement_answer(query, state_query, page=0):
    """The agreement table's (rows, columns, caption, page count, page shown) for the filter
    query, the page state (picker) and the page asked for (0-based)."""
    state = page_state(state_query or "")
    df, tot = mq.agreement_page(get_provider(), Filters.from_query(query or ""), state["picker"], page or 0,
                                AGREE_PAGE_SIZE)
    picker = mf.model_label(state["picker"])
    if tot["n"] == 0:
        return ([], AGREE_COLUMNS, html.Span("No event with polarities matches the filters.", className="fm-empty"),
                1, 0)
    has_truth = tot["truth_both"] is not None
    # comparison groups without any data are left out (e.g. no reference or manual picks in the demo)
    shown = {"ref": bool(tot["ref_both"] or tot["ref_only_other"]),
             "manual": bool(tot["manual_both"] or tot["manual_only_other"])}
    columns = [c for c in AGREE_COLUMNS if shown.get(c["id"].split("_", 1)[0], True)] + \
        (TRUTH_COLUMNS if has_truth else [])
    parts = [f"{tot['n']:,} events with polarities among the filtered events · {picker}: "
             f"{int(tot['picker_decided']):,}/{int(tot['n_picker']):,} traces decided"]
    if tot["ref_both"]:
        parts.append(f"vs reference {int(tot['ref_agree']):,}/{int(tot['ref_both']):,} agree where both decide")
    if tot["manual_both"] or tot["manual_only_other"]:
        parts.append(f"vs manual {int(tot['manual_agree']):,}/{int(tot['manual_both'] + tot['manual_only_other']):,}"
                     " matched")
    if has_truth:
        parts.append(f"vs demo truth {int(tot['truth_agree']):,}/{int(tot['truth_both']):,} right")
    times = pd.to_datetime(df["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    out = df.drop(columns=["time"]).astype(object).where(df.drop(columns=["time"]).notna(), None)
    data = []
    for rec, t in zip(out.to_dict("records"), times):
        eid = rec["event_id"]
        rec.update(event=f"[{eid}](/event/{eid})", time=t)
        data.append(rec)
    return (data, columns, " · ".join(parts) + ". True-motion polarities compared station by station.",
            tot["page_count"], tot["page"])


@dash.callback(
    Output(METRICS_DOWNLOAD, "data"), Input(METRICS_BUTTON, "n_clicks"), State(STATE, "data"),
    prevent_initial_call=True,
)
def download_metrics(n_clicks, state_query):
    if not n_clicks:
        raise PreventUpdate
    rows = _eval_rows(get_provider())
    if rows is None:
        raise PreventUpdate
    ds = page_state(state_query or "", mf.available_datasets(rows) or mf.MAIN_DATASETS)["evalset"]
    return dcc.send_data_frame(mf.metrics_table(rows, ds).to_csv, f"polarity_metrics_{ds}.csv", index=False)


@dash.callback(
    Output(AGREE_DOWNLOAD, "data"), Input(AGREE_BUTTON, "n_clicks"), State(IDS.filters, "data"),
    State(STATE, "data"), prevent_initial_call=True,
)
def download_agreement(n_clicks, query, state_query):
    if not n_clicks:
        raise PreventUpdate
    df = agreement_frame(query, state_query)
    picker = page_state(state_query or "")["picker"]
    return dcc.send_data_frame(df.to_csv, f"polarity_agreement_{picker}.csv", index=False)
