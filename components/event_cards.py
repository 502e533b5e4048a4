"""The event page's building blocks (``pages/event.py``): component ids, the header, the
mechanism, comparison and review cards, the station table and panel, and the short texts
(job state, pick changes, view notes). Pure builders of Dash components from the event
context (:mod:`components.event_context`); figures come from :mod:`components.event_figures`.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
import numpy as np
import pandas as pd
from dash import dash_table, dcc, html
from dash.dash_table.Format import Format, Scheme

from components import event_figures as ef
from components.access import ACCOUNTS, READ_ONLY, current_account, get_access
from components.event_context import finite_or_none, mechanism_choices, review_store, write_state
from pipeline.review.reviews import DEFAULT_REVIEWER, MAX_REVIEWER

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


def mechanism_options(ctx: dict, reinv: dict | None) -> list[dict]:
    return [{"label": MECH_SHORT[c], "value": c} for c in mechanism_choices(ctx, reinv)]


# -- small helpers -------------------------------------------------------------------------------
def _fmt(v, spec=".1f", unit="", none="–"):
    f = finite_or_none(v)
    return none if f is None else f"{f:{spec}}{unit}"


def band_from_query(bp) -> tuple[bool, float, float]:
    if isinstance(bp, str) and "-" in bp:
        a, _, b = bp.partition("-")
        try:
            return True, float(a), float(b)
        except ValueError:
            pass
    return False, *DEFAULT_BAND


def band_or_reason(on, lo, hi, fs) -> tuple[tuple | None, str | None]:
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


def view_note(ctx, mode):
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
def event_header(ctx, q):
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


def unknown_event(event_id, q):
    back = dash.get_relative_path("/") + (f"?{q}" if q else "")
    return dbc.Alert([
        html.H4("Event not found", className="alert-heading"),
        html.P(["No event ", html.Code(str(event_id)[:80]), " in the catalogue of this data folder. Event ids are "
                "origin times written ", html.Code("YYYYMMDDhhmmss.fff"), " (UTC)."]),
        html.A("← back to the map", href=back, className="alert-link"),
    ], color="warning", className="fm-no-data mt-4", id="ev-unknown")


def mech_card(ctx, choice, reinv, fig):
    options = mechanism_options(ctx, reinv)
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
            html.Div(ball_legend(meta, ctx), id="ev-ball-legend", className="fm-ev-legend"),
        ], className="p-2"),
    ], className="fm-side-card mb-3")


def ball_legend(meta, ctx):
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


def compare_card(ctx, reinv, job):
    return dbc.Card([
        dbc.CardHeader(html.Div([
            html.Span("Compare mechanisms", className="fw-semibold"),
        ]), className="fm-card-header"),
        dbc.CardBody([
            dcc.Graph(id=COMPARE, figure=compare_figure(ctx, reinv),
                      config={"displaylogo": False, "displayModeBar": False}),
            html.Div(metrics_block(ctx, reinv), id=METRICS),
            html.Div([
                dbc.Button("Re-invert with reviewed picks", id=REINV_BTN, color="primary", size="sm",
                           outline=True, disabled=not write_state("reinvert")[0] or ctx["pol"].empty or ctx["vm"].empty,
                           className="me-2"),
                html.Span(NO_VM_TEXT if ctx["vm"].empty and not job and not reinv else job_text(job, reinv),
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


def compare_figure(ctx, reinv):
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


def metrics_block(ctx, reinv):
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


def job_text(job, reinv):
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


def review_card(ctx, mode, band_on, lo, hi, fig, store_ok, panel=None, invalid=None, why_not=""):
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
                html.Div(view_note(ctx, mode), id=NOTE, className="fm-ev-note"),
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


def table_rows(table: pd.DataFrame) -> list[dict]:
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


def table_styles(current):
    styles = list(_TABLE_BASE_STYLES)
    if current:
        styles.append({"if": {"filter_query": f'{{key}} = "{current}"'}, "backgroundColor": "rgba(214,0,143,0.09)"})
        styles.append({"if": {"filter_query": f'{{key}} = "{current}"', "column_id": "station"},
                       "boxShadow": "inset 3px 0 0 #d6008f", "fontWeight": 700})
    return styles


def table_card(table, current):
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
            id=TABLE, columns=TABLE_COLUMNS, data=table_rows(table), page_action="none",
            sort_action="native", cell_selectable=True, style_as_list_view=True,
            style_table={"overflowX": "auto", "maxHeight": "420px", "overflowY": "auto"}, fixed_rows={"headers": True},
            style_header={"fontWeight": 600, "backgroundColor": "#f8f9fa", "borderBottom": "1px solid #dee2e6"},
            style_cell={"fontFamily": "inherit", "fontSize": "12.5px", "padding": "3px 8px", "textAlign": "right",
                        "border": "none", "borderBottom": "1px solid #eef0f2", "minWidth": "60px"},
            style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "left"} for c in
                                    ("station", "auto", "published", "manual", "review", "used", "predicted", "fit")],
            style_data_conditional=table_styles(current),
            css=[{"selector": "td.cell--selected, td.focused", "rule": "background-color: transparent !important;"}],
        ),
    ], className="fm-table-card mt-3")


#: data without a velocity model (optional in a user's project): SKHASH cannot run
NO_VM_TEXT = ("No velocity model in this data set: no take-off angles, so SKHASH cannot compute or re-invert "
              "a mechanism.")


def no_mech_note(ctx):
    if ctx["unsolved"]:
        return "not solved by SKHASH"
    if ctx["pol"].empty:
        return "no mechanism"
    if ctx["vm"].empty:
        return "no mechanism (no velocity model)"
    return "no mechanism yet"


def change_text(change) -> str:
    key_s = f"{change.network}.{change.station}"
    if not change.changed:
        return f"{key_s}: unchanged ({_pol_word(change.new)})"
    if change.new is None:
        return f"{key_s}: review cleared by {change.reviewer} (batch picks apply)"
    return f"{key_s} → {_pol_word(change.new)} by {change.reviewer} (was {_pol_word(change.old)})"


def _pol_word(p):
    return {1: "↑ up", -1: "↓ down", 0: "∅ undetermined", None: "not reviewed"}.get(p, str(p))


def _used(polarity, source) -> str:
    """The "used" text of a station: arrow and source (``↓ cnn``), "–" when no polarity is
    used; a missing source (None or NaN, as a row of the table gives it) is never printed."""
    if not (isinstance(polarity, (int, float)) and np.isfinite(polarity)):
        return "–"
    return f"{ef.arrow(polarity)} {source}" if isinstance(source, str) and source else ef.arrow(polarity)


def station_panel(table: pd.DataFrame, current: str | None, mode: str):
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
