"""Event page (``/event/<event_id>``): the event's mechanism with its stations, the vertical P
waveforms, and manual polarity review with re-inversion (replaces the original MATLAB picking
GUI, docs/analyses.md 1.9 and 1.12).

Thin wiring only (layout and callbacks): what the page reads - the event's rows, the review
database, the mechanism drawn - is :mod:`components.event_context` (on the provider's queries
in :mod:`components.data`); component ids, cards, texts and the station table are
:mod:`components.event_cards`; figures :mod:`components.event_figures`; the review database
(the app's only write path) :mod:`pipeline.review.reviews`; background re-inversion the job
queue :mod:`pipeline.review.jobs`. Keyboard shortcuts come from ``assets/event_keys.js``,
which writes the key pressed into the ``ev-key`` store.

URL state: ``?view=recorded`` (traces as recorded), ``bp=LOW-HIGH`` (band-pass on),
``sta=NET.STA`` (current station), ``mech=computed|published|reinverted`` (mechanism drawn).

Writes (picks, re-inversion) are checked on the server by :mod:`components.review_writes`:
the account's role (:mod:`components.access`), the event, the station being one of the
event's, and the sign - stored polarities are TRUE ground motion, ``true = shown × (−1 if
the station is reversed in the stations table and the traces were shown as recorded)``. The
page sends only the event id, the station key, the action and the view; no reversal flag
or polarity from the browser is used. With accounts the account signs the reviews (no
free-text reviewer); on a read-only server or for a viewer the review controls are off.
"""
from __future__ import annotations

from urllib.parse import unquote, urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, Patch, State, dcc, html, no_update
from dash.exceptions import PreventUpdate

from components import event_figures as ef
from components import review_writes
from components.access import AccessDenied, require
from components.data import get_provider
from components.event_cards import (
    BALL, BP_HI, BP_LO, BP_MSG, BP_ON, BUTTONS, COMPARE, CURSOR, DOWNLOAD, DOWNLOAD_BTN, JOB, KEY, MECH, META, METRICS,
    NEXT, NOTE, PAGE, PANEL, PICKQ, POLL, PREV, QUAKEML, QUAKEML_BTN, REINV, REINV_BTN, REINV_STATUS, REVIEWER,
    REVIEWER_INPUT, REVIEWS, STATUS, SYNC, TABLE, URL, VIEW, WAVES, ball_legend, band_from_query, band_or_reason,
    change_text, compare_card, compare_figure, event_header, job_text, mech_card, mechanism_options, metrics_block,
    no_mech_note, review_card, station_panel, table_card, table_rows, table_styles, unknown_event, view_note)
from components.event_context import (chosen_mechanism, event_context, latest_reinversion, review_signature,
                                      review_store, reviewed_picks, station_table_for, store_error, write_state)
from components.filters import Filters
from components.layout import brand, no_data
from pipeline.review.reviews import ReviewError

dash.register_page(
    __name__, path_template="/event/<event_id>", name="Event",
    title=lambda event_id=None, **_: f"Event {_decoded(event_id)} · {brand()}", order=90,
    start_graphs=True)  # components.eager_chunks: measured faster on the demo build

BASE_TABLES = ("events", "mechanisms", "stations")
#: the navbar reads the filters of the page from a store of this id (see components.layout)
FILTERS = {"type": "fm-filters", "page": "event"}
#: what the page's META store holds (a pick whose META has more came from an older page)
META_FIELDS = frozenset({"event_id", "keys", "q", "write", "nyquist"})


def _query_string(query: dict) -> str:
    keep = {k: v for k, v in query.items() if k not in ("view", "bp", "sta", "mech") and isinstance(v, str)}
    return urlencode(keep)


def _decoded(event_id) -> str:
    """The event id as typed: Dash passes the path segment percent-encoded (``no%20such``)."""
    return unquote(str(event_id or ""))[:80]


def layout(event_id=None, **query):
    provider = get_provider()
    missing = provider.missing_tables(BASE_TABLES)
    if missing:
        return no_data(provider.data_dir, missing)
    q = _query_string(query)
    filters = dcc.Store(id=FILTERS, data=Filters.from_query(q).to_query())  # the navbar keeps them
    ctx = event_context(_decoded(event_id))
    if ctx is None:
        return html.Div([filters, unknown_event(_decoded(event_id), q)], id=PAGE, className="fm-page fm-page-event")
    mode = "recorded" if query.get("view") == "recorded" else "true"
    band_on, lo, hi = band_from_query(query.get("bp"))
    store = review_store()
    reviewed = reviewed_picks(ctx["event_id"])
    reinv = latest_reinversion(ctx["event_id"])
    job = store.active_job(ctx["event_id"]) if store is not None else None
    choice, mech, acc, rays = chosen_mechanism(ctx, query.get("mech"), reinv)
    table = station_table_for(ctx, reviewed, mech, rays)
    keys = table["key"].tolist()
    current = query.get("sta") if query.get("sta") in keys else (keys[0] if keys else None)
    cursor = keys.index(current) if current else 0
    band, invalid = band_or_reason(band_on, lo, hi, ctx["sampling_rate"])
    ball = ef.mechanism_figure(mech, table, acc, current, note=no_mech_note(ctx))
    waves = ef.waveform_figure(ctx["waves"], table, mode=mode, band=band, current=current)
    write_ok, why_not = write_state()
    # "write" only spares a viewer's keys a refused round trip: the server decides (review_writes);
    # no reversal flags are sent, the server reads them from the stations table at each write
    meta = {"event_id": ctx["event_id"], "keys": keys, "q": q, "write": write_ok,
            "nyquist": 0.5 * float(ctx["sampling_rate"]) if ctx["sampling_rate"] else None}
    return html.Div([
        dcc.Location(id=URL, refresh=False),
        filters,
        dcc.Store(id=META, data=meta),
        dcc.Store(id=CURSOR, data=cursor),
        dcc.Store(id=KEY),
        dcc.Store(id=PICKQ, data=[]),
        dcc.Store(id=REVIEWS, data={"n": 0, "sig": review_signature(store, ctx["event_id"]) if store else None}),
        dcc.Store(id=REVIEWER, storage_type="local"),
        # no data prop when empty: a Store mounted with data=None reports undefined at once,
        # which sent a full redraw (render) right after every first load
        dcc.Store(id=JOB, **({"data": {"job_id": job["id"]}} if job else {})),
        dcc.Store(id=REINV, **({"data": {"id": reinv["id"]}} if reinv else {})),
        dcc.Interval(id=POLL, interval=700, disabled=job is None),
        dcc.Interval(id=SYNC, interval=15_000),
        event_header(ctx, q),
        dbc.Row([
            dbc.Col([mech_card(ctx, choice, reinv, ball), compare_card(ctx, reinv, job)], lg=4, className="fm-side"),
            dbc.Col(review_card(ctx, mode, band_on, lo, hi, waves, write_ok, station_panel(table, current, mode),
                                 invalid, why_not), lg=8),
        ], className="g-3"),
        table_card(table, current),
        html.P(["Re-inversions and reviewed picks are stored in ", html.Code("reviews.sqlite"),
                " in the data folder, never in the Parquet tables; the next ", html.Code("python -m pipeline invert"),
                " uses the reviewed picks. The original MATLAB GUI saved picks as recorded on the inverted 5B "
                "verticals; here every pick is stored as true ground motion, once."], className="fm-note mt-2"),
    ], id=PAGE, className="fm-page fm-page-event")


# -- callbacks -----------------------------------------------------------------------------------
# reviewer name: browser-local store <-> input (both ways, one callback)
dash.clientside_callback(
    """
    function(stored, typed) {
        const trig = (dash_clientside.callback_context.triggered || []).map(t => t.prop_id);
        if (trig.some(p => p.startsWith('ev-reviewer-input'))) {
            const v = (typed || '').trim().slice(0, 64);
            return [v || null, dash_clientside.no_update];
        }
        return [dash_clientside.no_update, stored || ''];
    }
    """,
    Output(REVIEWER, "data"), Output(REVIEWER_INPUT, "value"),
    Input(REVIEWER, "data"), Input(REVIEWER_INPUT, "value"),
)

# Keys, buttons and clicks, handled in the browser in the order they happen:
# * navigation (arrow keys, prev/next, a click on the beachball, a trace or a table row) moves
#   the current station;
# * a pick (arrow keys, buttons) is appended to the request queue with the station, view and
#   reviewer of that moment and a unique id; the server applies the queue (pick()) and
#   acknowledges the ids, which are then dropped. Requests are re-sent until acknowledged and
#   the review database ignores a request id it has seen, so a fast key sequence neither
#   loses a pick nor applies one twice, nor picks the wrong station.
dash.clientside_callback(
    """
    function(key, nPrev, nNext, ballClick, waveClick, cell, bUp, bDown, bZero, bReset,
             cursor, meta, waves, view, reviewer, queue, reviews) {
        const nc = dash_clientside.no_update;
        const keys = (meta && meta.keys) || [];
        if (!keys.length) { return [nc, nc]; }
        const trig = ((dash_clientside.callback_context.triggered || [])[0] || {}).prop_id || '';
        let i = (typeof cursor === 'number') ? cursor : 0;
        const clamp = j => Math.max(0, Math.min(keys.length - 1, j));
        const acked = new Set(((reviews || {}).acked) || []);
        let q = (queue || []).filter(r => !acked.has(r.id));
        let queued = false;
        const enqueue = (action, rid) => {
            if (meta.write === false) { return; }  // viewer / read-only: the server would refuse it
            if (!rid) { rid = Date.now().toString(36) + Math.random().toString(36).slice(2, 12); }
            q.push({id: String(rid).slice(0, 64), action: action, station: keys[i], view: view || 'true',
                    reviewer: reviewer || null});
            queued = true;
        };
        if (trig.startsWith('ev-key.')) {
            // every key press not handled yet, in order (see assets/event_keys.js)
            const done = window.__fmEvKeyDone || 0;
            const evs = ((key || {}).events || []).filter(ev => ev.seq > done);
            if (!evs.length) { return [nc, nc]; }
            window.__fmEvKeyDone = evs[evs.length - 1].seq;
            for (const ev of evs) {
                const a = ev.action;
                if (a === 'prev') { i = clamp(i - 1); }
                else if (a === 'next') { i = clamp(i + 1); }
                else if (a === 'first') { i = 0; }
                else if (a === 'last') { i = keys.length - 1; }
                else if (['up', 'down', 'zero', 'reset'].includes(a)) { enqueue(a, ev.id); }
            }
        } else if (trig.startsWith('ev-prev.')) { i = clamp(i - 1); }
        else if (trig.startsWith('ev-next.')) { i = clamp(i + 1); }
        else if (trig.startsWith('ev-ball.')) {
            const p = ((ballClick || {}).points || [])[0];
            if (!p || typeof p.customdata !== 'string') { return [nc, nc]; }
            const j = keys.indexOf(p.customdata); if (j < 0) { return [nc, nc]; } i = j;
        } else if (trig.startsWith('ev-waves.')) {
            const p = ((waveClick || {}).points || [])[0];
            const wk = (((waves || {}).layout || {}).meta || {}).keys || [];
            if (!p || p.curveNumber >= wk.length) { return [nc, nc]; }
            const j = keys.indexOf(wk[p.curveNumber]); if (j < 0) { return [nc, nc]; } i = j;
        } else if (trig.startsWith('ev-table.')) {
            if (!cell || !cell.row_id) { return [nc, nc]; }
            const j = keys.indexOf(cell.row_id); if (j < 0) { return [nc, nc]; } i = j;
        } else if (trig.startsWith('ev-btn-')) {
            enqueue(trig.slice('ev-btn-'.length).split('.')[0], null);
        }
        return [i === cursor ? nc : i, queued ? q.slice(-50) : nc];
    }
    """,
    Output(CURSOR, "data"), Output(PICKQ, "data"),
    Input(KEY, "data"), Input(PREV, "n_clicks"), Input(NEXT, "n_clicks"), Input(BALL, "clickData"),
    Input(WAVES, "clickData"), Input(TABLE, "active_cell"), *[Input(b, "n_clicks") for b in BUTTONS.values()],
    State(CURSOR, "data"), State(META, "data"), State(WAVES, "figure"), State(VIEW, "value"),
    State(REVIEWER, "data"), State(PICKQ, "data"), State(REVIEWS, "data"),
    prevent_initial_call=True,
)

# URL state (no reload): view, band-pass, station, mechanism
dash.clientside_callback(
    """
    function(view, bpOn, lo, hi, cursor, mech, meta) {
        const params = new URLSearchParams((meta && meta.q) || '');
        if (view === 'recorded') { params.set('view', 'recorded'); }
        // only a band the page applies goes into the URL (the server says why others are refused)
        const nyq = (meta && meta.nyquist) || Infinity;
        if (bpOn && typeof lo === 'number' && typeof hi === 'number' && lo > 0 && lo < hi && hi < nyq) {
            params.set('bp', lo + '-' + hi);
        }
        const keys = (meta && meta.keys) || [];
        if (typeof cursor === 'number' && keys[cursor]) { params.set('sta', keys[cursor]); }
        if (mech) { params.set('mech', mech); }
        const s = params.toString();
        return s ? '?' + s : '';
    }
    """,
    Output(URL, "search"),
    Input(VIEW, "value"), Input(BP_ON, "value"), Input(BP_LO, "value"), Input(BP_HI, "value"),
    Input(CURSOR, "data"), Input(MECH, "value"), State(META, "data"),
    prevent_initial_call=True,
)

dash.clientside_callback(
    "function(on) { return [!on, !on]; }",
    Output(BP_LO, "disabled"), Output(BP_HI, "disabled"), Input(BP_ON, "value"),
)

@dash.callback(
    Output(REVIEWS, "data"), Output(STATUS, "children"),
    Input(PICKQ, "data"), Input(SYNC, "n_intervals"),
    State(META, "data"), State(REVIEWS, "data"),
    prevent_initial_call=True,
)
def pick(queue, _sync, meta, reviews):
    """Apply the queued pick requests (each once: the database ignores a request id it has
    seen) and acknowledge them; the periodic sync only refreshes when another session
    changed this event's picks. Every request is checked on the server
    (:func:`components.review_writes.apply_pick`: right, event, station of the event, sign
    from the stations table); from the browser only the event id, the station key, the
    action, the view shown and - in local mode - the typed reviewer name are taken, and
    checked."""
    if not isinstance(meta, dict) or not meta:
        raise PreventUpdate
    store = review_store()
    reviews = reviews if isinstance(reviews, dict) else {}  # (crafted requests: any JSON)
    queue = queue if isinstance(queue, list) else []
    event_id = meta.get("event_id")
    if dash.ctx.triggered_id == SYNC:
        if store is None:
            raise PreventUpdate
        sig = review_signature(store, event_id)
        if sig == reviews.get("sig"):
            raise PreventUpdate
        return {**reviews, "n": reviews.get("n", 0) + 1, "sig": sig}, no_update
    acked = [a for a in (reviews.get("acked") if isinstance(reviews.get("acked"), list) else [])
             if isinstance(a, str)]
    done = set(acked)
    msg = no_update
    # a page of an older version sent the reversal flags it was drawn with: refuse its picks
    # rather than guess what its arrows meant (the page says to reload)
    stale = sorted(map(str, set(meta) - META_FIELDS))
    stations = None  # the event's stations and reversal flags, read once per batch
    for req in queue[-50:]:
        rid = req.get("id") if isinstance(req, dict) else None
        if rid in done:
            continue
        try:
            if store is None or store.read_only:
                require("review")  # AccessDenied on a read-only server
                raise ReviewError(f"the review database cannot be written ({store_error()})")
            if stale:
                raise ReviewError(f"this page is out of date (it sent {stale[0][:20]!r}): reload it")
            if stations is None:
                stations = review_writes.event_stations(event_id)
            typed = req.get("reviewer") if isinstance(req, dict) else None
            change = review_writes.apply_pick(store, event_id, req, reviewer=typed, stations=stations)
        except (ReviewError, AccessDenied) as exc:
            msg = html.Span(str(exc), className="text-danger")
        else:
            msg = change_text(change)
        if isinstance(rid, str):
            acked.append(rid)
            done.add(rid)
    sig = review_signature(store, event_id) if store is not None and isinstance(event_id, str) else None
    return {"n": reviews.get("n", 0) + 1, "sig": sig, "acked": acked[-100:]}, msg


@dash.callback(
    Output(BALL, "figure"), Output(WAVES, "figure"), Output(PANEL, "children"), Output(TABLE, "data"),
    Output(TABLE, "style_data_conditional"), Output(NOTE, "children"), Output("ev-ball-legend", "children"),
    Output(BP_LO, "invalid"), Output(BP_HI, "invalid"), Output(BP_MSG, "children"),
    Input(CURSOR, "data"), Input(REVIEWS, "data"), Input(MECH, "value"), Input(REINV, "data"),
    Input(VIEW, "value"), Input(BP_ON, "value"), Input(BP_LO, "value"), Input(BP_HI, "value"),
    State(META, "data"),
    prevent_initial_call=True,
)
def render(cursor, _reviews, choice, _reinv, mode, bp_on, lo, hi, meta):
    """Redraw what changed: a new station or new picks -> Patch the highlights and the
    symbols/colours; another mechanism, view or filter -> rebuild that figure."""
    if not meta:
        raise PreventUpdate
    ctx = event_context(meta["event_id"])
    if ctx is None:
        raise PreventUpdate
    trig = set(dash.ctx.triggered_prop_ids.values())
    reviewed = reviewed_picks(ctx["event_id"])
    reinv = latest_reinversion(ctx["event_id"])
    choice, mech, acc, rays = chosen_mechanism(ctx, choice, reinv)
    table = station_table_for(ctx, reviewed, mech, rays)
    keys = meta.get("keys") or []
    current = keys[cursor] if isinstance(cursor, int) and 0 <= cursor < len(keys) else None
    band, invalid = band_or_reason(bp_on, lo, hi, ctx["sampling_rate"])

    # beachball
    legend = no_update
    if trig & {MECH, REINV}:
        ball = ef.mechanism_figure(mech, table, acc, current, note=no_mech_note(ctx))
        legend = ball_legend(ball.layout.meta or {}, ctx)
    elif trig & {REVIEWS, CURSOR}:
        ball = Patch()
        style = ef.station_marker_style(table, current)
        ring = ef.BALL_TRACES["ring"]
        ball["data"][ring]["x"], ball["data"][ring]["y"] = style["ring_x"], style["ring_y"]
        # the symbols too on a cursor move: Dash discards an in-flight answer when a newer
        # request of this callback goes out, and the newer one is triggered by the cursor
        # alone, so a review's patch could be lost (the ball kept the old symbol)
        i = ef.BALL_TRACES["stations"]
        ball["data"][i]["marker"]["symbol"] = style["symbol"]
        ball["data"][i]["marker"]["color"] = style["color"]
        ball["data"][i]["marker"]["size"] = style["size"]
        ball["data"][i]["marker"]["line"]["color"] = style["line_color"]
        ball["data"][i]["hovertext"] = style["hovertext"]
    else:
        ball = no_update

    # waveforms
    if trig & {VIEW, BP_ON, BP_LO, BP_HI}:
        if BP_LO in trig or BP_HI in trig:
            if not bp_on:
                waves = no_update
            else:
                waves = ef.waveform_figure(ctx["waves"], table, mode=mode, band=band, current=current)
        else:
            waves = ef.waveform_figure(ctx["waves"], table, mode=mode, band=band, current=current)
    elif trig & {REVIEWS, CURSOR, MECH, REINV}:
        wkeys = [k for k in table["key"] if k in set(ctx["wkeys"])]
        st = ef.waveform_styles(table, wkeys, current, mode)
        waves = Patch()
        for i in range(len(wkeys)):
            waves["data"][i]["line"]["color"] = st["colors"][i]
            waves["data"][i]["line"]["width"] = st["widths"][i]
            waves["layout"]["annotations"][i]["text"] = st["side"][i]
        ci = st["current_index"]
        waves["layout"]["shapes"][1]["y0"] = (-ci - 0.5) if ci is not None else 1
        waves["layout"]["shapes"][1]["y1"] = (-ci + 0.5) if ci is not None else 1
    else:
        waves = no_update
    note = view_note(ctx, mode) if VIEW in trig else no_update
    return (ball, waves, station_panel(table, current, mode), table_rows(table), table_styles(current), note, legend,
            bool(invalid), bool(invalid), invalid or "")


@dash.callback(
    Output(JOB, "data"), Output(POLL, "disabled"), Output(REINV_STATUS, "children"),
    Input(REINV_BTN, "n_clicks"),
    State(META, "data"), State(REVIEWER, "data"),
    prevent_initial_call=True,
)
def start_reinversion(n, meta, reviewer):
    """Queue a background re-inversion (returns at once; :func:`poll_reinversion` follows it)."""
    if not n or not isinstance(meta, dict):
        raise PreventUpdate
    try:
        if review_store() is None or review_store().read_only:
            require("reinvert")  # AccessDenied on a read-only server
            raise ReviewError(f"the review database cannot be written ({store_error()})")
        job_id = review_writes.start_reinversion(get_provider().data_dir, meta.get("event_id"), reviewer)
    except (ReviewError, AccessDenied) as exc:
        return no_update, True, html.Span(str(exc), className="text-danger")
    job = review_store().job(job_id)
    return {"job_id": job_id}, False, job_text(job, None)


@dash.callback(
    Output(REINV, "data"), Output(POLL, "disabled", allow_duplicate=True),
    Output(REINV_STATUS, "children", allow_duplicate=True), Output(COMPARE, "figure"), Output(METRICS, "children"),
    Output(MECH, "options"), Output(MECH, "value"),
    Input(POLL, "n_intervals"),
    State(JOB, "data"), State(META, "data"), State(MECH, "value"),
    prevent_initial_call=True,
)
def poll_reinversion(_n, job_ref, meta, choice):
    """Follow the job; when it is done show the new mechanism beside the old ones."""
    store = review_store()
    if store is None or not job_ref or not meta:
        return no_update, True, no_update, no_update, no_update, no_update, no_update
    job = store.job(job_ref.get("job_id"))
    if job is None:
        return no_update, True, "job not found", no_update, no_update, no_update, no_update
    if job["status"] in ("queued", "running"):
        return no_update, False, job_text(job, None), no_update, no_update, no_update, no_update
    ctx = event_context(meta["event_id"])
    reinv = store.latest_reinversion(meta["event_id"])
    if job["status"] == "error":
        return no_update, True, job_text(job, reinv), no_update, no_update, no_update, no_update
    options = mechanism_options(ctx, reinv)
    new_choice = "reinverted" if reinv and reinv.get("strike") is not None else choice
    return ({"id": reinv["id"] if reinv else None}, True, job_text(None, reinv), compare_figure(ctx, reinv),
            metrics_block(ctx, reinv), options, new_choice)


@dash.callback(
    Output(DOWNLOAD, "data"),
    Input(DOWNLOAD_BTN, "n_clicks"),
    State(META, "data"), State(MECH, "value"),
    prevent_initial_call=True,
)
def download(n, meta, choice):
    """The station table as shown (true-motion polarities, agreement with the drawn mechanism)."""
    if not n or not meta:
        raise PreventUpdate
    ctx = event_context(meta["event_id"])
    reinv = latest_reinversion(ctx["event_id"])
    choice, mech, _, rays = chosen_mechanism(ctx, choice, reinv)
    table = station_table_for(ctx, reviewed_picks(ctx["event_id"]), mech, rays)
    df = ef.station_csv_frame(table, ctx["event_id"], choice)
    return dcc.send_data_frame(df.to_csv, f"event_{ctx['event_id']}_stations.csv", index=False)


@dash.callback(
    Output(QUAKEML, "data"),
    Input(QUAKEML_BTN, "n_clicks"),
    State(META, "data"),
    prevent_initial_call=True,
)
def download_quakeml(n, meta):
    """The event as QuakeML, written by :mod:`pipeline.export.run` as
    ``python -m pipeline export --format quakeml --event <id>`` writes it."""
    if not n or not meta:
        raise PreventUpdate
    from pipeline.export import run, selection

    p = get_provider()
    sel = selection.select(p, event_id=meta["event_id"])
    return dcc.send_bytes(run.quakeml_bytes(p, sel), f"event_{meta['event_id']}.xml")
