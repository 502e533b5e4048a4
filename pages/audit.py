"""Audit trail (``/audit``, admins): every change of a reviewed pick - who, when, from what
to what - newest first, with "Undo" for a selected change; below it the job queue
(:mod:`pipeline.review.jobs`): every re-inversion job, waiting and running ones first, with its
state and why it failed, refreshed every few seconds.

Thin wiring: the trail and the undo are :meth:`pipeline.review.reviews.ReviewStore.audit` /
:meth:`~pipeline.review.reviews.ReviewStore.undo`; the right is checked on the server at
layout time and again for every undo (:func:`components.review_writes.undo_change`), so a
non-admin who calls the callback directly changes nothing.
"""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate

from components import review_writes
from components.access import AccessDenied, can
from components.layout import page_title
from pipeline.review.reviews import ReviewError

dash.register_page(__name__, path="/audit", name="Audit", title=page_title("Audit trail"),
                   order=95, right="audit")

TABLE, UNDO, STATUS = "audit-table", "audit-undo", "audit-status"
TABLE_WRAP, TABLE_EMPTY = "audit-table-wrap", "audit-empty"
MAX_ROWS = 2000
COLUMNS = [{"id": c, "name": n} for c, n in (
    ("id", "#"), ("at", "When (UTC)"), ("reviewer", "Who"), ("event_id", "Event"), ("station", "Station"),
    ("old", "From"), ("new", "To"), ("request_id", "Request"))]
_WORDS = {1: "↑ up", -1: "↓ down", 0: "∅ undetermined", None: "not reviewed"}

JOBS, JOBS_POLL, JOBS_EMPTY = "audit-jobs", "audit-jobs-poll", "audit-jobs-empty"
MAX_JOBS = 200
JOB_COLUMNS = [{"id": c, "name": n} for c, n in (
    ("job", "Job"), ("kind", "Kind"), ("event_id", "Event"), ("reviewer", "Who"), ("status", "Status"),
    ("created_at", "Queued (UTC)"), ("started_at", "Started"), ("finished_at", "Finished"), ("message", "Message"))]
_STATUS_WORDS = {"queued": "queued", "running": "running", "done": "done", "error": "failed"}


def _store():
    from components.event_context import review_store  # cached (read-only on a read-only server)

    return review_store()


def rows() -> list[dict]:
    """The newest :data:`MAX_ROWS` audit rows as table rows."""
    st = _store()
    if st is None:
        return []
    df = st.audit().tail(MAX_ROWS).iloc[::-1]
    out = []
    for r in df.itertuples(index=False):
        old = None if r.old_polarity is None or r.old_polarity != r.old_polarity else int(r.old_polarity)
        new = None if r.new_polarity is None or r.new_polarity != r.new_polarity else int(r.new_polarity)
        out.append({"id": int(r.id), "at": str(r.at)[:23].replace("T", " "), "reviewer": r.reviewer,
                    "event_id": r.event_id, "station": f"{r.network}.{r.station}", "old": _WORDS[old],
                    "new": _WORDS[new], "request_id": r.request_id or ""})
    return out


#: cell and header style of the page's two tables (audit trail, jobs)
_CELL = {"fontFamily": "inherit", "fontSize": "12.5px", "textAlign": "left", "padding": "3px 8px"}
_HEADER = {"fontWeight": 600, "backgroundColor": "#f8f9fa"}


def _when(ts) -> str:
    return str(ts)[:19].replace("T", " ") if ts else ""


def job_rows() -> list[dict]:
    """The newest :data:`MAX_JOBS` jobs as table rows, waiting and running ones first."""
    st = _store()
    if st is None:
        return []
    return [{"job": str(j["id"])[:8], "kind": j.get("kind") or "reinvert", "event_id": j["event_id"],
             "reviewer": j["reviewer"], "status": _STATUS_WORDS.get(j["status"], j["status"]),
             "created_at": _when(j["created_at"]), "started_at": _when(j["started_at"]),
             "finished_at": _when(j["finished_at"]), "message": j.get("message") or ""}
            for j in st.jobs(MAX_JOBS)]


def _empty_note(id_: str, text: str, empty: bool):
    """The sentence an empty table gets instead of a bare header row."""
    return html.P(text, id=id_, className="fm-note fst-italic", style=None if empty else {"display": "none"})


def _jobs_section():
    jobs = job_rows()
    return html.Div([
        html.H5("Re-inversion jobs", className="mt-4"),
        html.P("The queue of background re-inversions (all processes sharing this data folder): waiting and "
               "running jobs first, then the newest finished ones. A job over its time limit is stopped and "
               "marked failed; one left running by a stopped app is marked failed at the next start.",
               className="fm-note"),
        dcc.Interval(id=JOBS_POLL, interval=5_000),
        _empty_note(JOBS_EMPTY, "No re-inversion jobs yet: an event page's “Re-invert with reviewed picks” "
                    "queues one.", not jobs),
        dash_table.DataTable(
            id=JOBS, columns=JOB_COLUMNS, data=jobs, page_size=20, sort_action="native",
            style_as_list_view=True, style_cell={**_CELL, "whiteSpace": "normal"}, style_header=_HEADER,
            style_data_conditional=[{"if": {"filter_query": '{status} = "failed"', "column_id": "status"},
                                     "color": "#c92a2a"}]),
    ], id="audit-jobs-section")


def layout(**_query):
    if not can("audit"):
        return dbc.Alert("The audit trail is for admin accounts.", color="warning", className="mt-4",
                         id="audit-denied")
    undo_ok = _undo_ok()
    trail = rows()
    return html.Div([
        html.H4("Audit trail", className="mt-3"),
        html.P("Every change of a reviewed pick, newest first (polarities are true ground motion). Undo puts "
               "the station's pick back to what it was before the selected change, as a new audited change "
               "signed by you; a change that was overwritten since must have the later change undone first.",
               className="fm-note"),
        html.Div([
            # enabled once a row is selected (undo_enabled): a click with nothing selected did nothing
            dbc.Button("⟲ Undo selected change", id=UNDO, size="sm", color="danger", outline=True,
                       disabled=True),
            html.Span(id=STATUS, className="fm-note ms-2"),
        ], className="mb-2"),
        _empty_note(TABLE_EMPTY, "No reviewed picks yet: a change made in an event page's polarity review "
                    "appears here, with who made it and when.", not trail),
        html.Div(dash_table.DataTable(
            id=TABLE, columns=COLUMNS, data=trail, row_selectable="single" if undo_ok else False,
            selected_rows=[], page_size=50, sort_action="native", filter_action="native",
            style_as_list_view=True, style_cell=_CELL, style_header=_HEADER),
            id=TABLE_WRAP, style=None if trail else {"display": "none"}),
        _jobs_section(),
    ], className="fm-page fm-page-audit", id="audit-page")


def _undo_ok() -> bool:
    return can("undo") and _store() is not None and not _store().read_only


@dash.callback(Output(JOBS, "data"), Output(JOBS_EMPTY, "style"), Input(JOBS_POLL, "n_intervals"),
               prevent_initial_call=True)
def refresh_jobs(_n):
    """The job table, again (admins only: the right is checked here too, not only at layout)."""
    if not can("audit"):
        raise PreventUpdate
    jobs = job_rows()
    return jobs, None if not jobs else {"display": "none"}


@dash.callback(Output(UNDO, "disabled"), Input(TABLE, "selected_rows"), prevent_initial_call=True)
def undo_enabled(selected):
    """Undo is offered for a selected row, to an account that may undo (checked again on the undo)."""
    return not (selected and _undo_ok())


@dash.callback(
    Output(TABLE, "data"), Output(TABLE, "selected_rows"), Output(STATUS, "children"),
    Input(UNDO, "n_clicks"),
    State(TABLE, "selected_rows"), State(TABLE, "data"),
    prevent_initial_call=True,
)
def undo(n, selected, data):
    """Undo the selected change (the row's audit id is only an identifier: the right, the
    row and whether the pick changed since are all checked on the server)."""
    if not n or not selected:
        raise PreventUpdate
    try:
        audit_id = (data or [])[selected[0]]["id"]  # selected_rows index ``data``, whatever the sort/filter
        st = _store()
        if st is None:
            raise ReviewError("no review database")
        change = review_writes.undo_change(st, audit_id)
    except (AccessDenied, ReviewError, IndexError, KeyError, TypeError) as exc:
        return no_update, no_update, html.Span(str(exc), className="text-danger")
    msg = (f"undid #{audit_id}: {change.network}.{change.station} of {change.event_id} is "
           f"{_WORDS[change.new]} again")
    return rows(), [], msg
