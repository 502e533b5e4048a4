"""The filter bar shared by all pages, kept in sync with the URL query string.

Usage in a page module::

    from components import filter_bar
    from components.filters import Filters

    IDS = filter_bar.ids("magnitudes")          # ids of this page's bar

    def layout(**query):
        f = Filters.from_query(query)          # Dash passes the query string as kwargs
        return html.Div([filter_bar.filter_bar("magnitudes", f, get_provider().filter_options()),
                         ...])

    @dash.callback(Output(...), Input(IDS.filters, "data"))
    def update(query):
        f = Filters.from_query(query)         # the canonical query string of the bar
        ...

and optionally ``Output(IDS.drawn, "data")`` with :func:`drawn_data` so the bar's counts
say how many rows the page drew. A page with its own URL keys keeps them in the address bar
with :func:`sync_page_query`.

How it works: the bar holds its own ``dcc.Location`` (``refresh=False``: it pushes the
query string into the address bar without re-rendering the page; a reload or a shared
link renders the page with the query, which initialises the controls). One callback
(:func:`register_callbacks`, made once per app by ``create_app``) synchronises controls
→ URL + ``filters`` store, and URL (browser back/forward) → controls. All ids are
pattern-matching dicts ``{"type": "fm-<name>", "page": <page>}``, so every page has its
own bar and the callbacks are written once (``MATCH`` on ``page``).
"""
from __future__ import annotations

import json
import math
from types import SimpleNamespace
from urllib.parse import quote

import dash_bootstrap_components as dbc
from dash import MATCH, Input, Output, State, clientside_callback, dcc, html, no_update
from dash.exceptions import PreventUpdate

from .first_page import routed_fragment, routed_search
from .map_figure import GROUP_COLORS
from .filters import (COLOR_BY, NONE, POPULATIONS, Filters, _as_params, format_time, parse_time, population_of,
                      query_problems, time_order_reversed, unknown_values)

_NAMES = ("url", "filters", "drawn", "counts", "download", "cluster", "time_start", "time_end", "time_msg", "mag",
          "group", "quality", "source", "population", "color", "view", "table", "problems")
#: control ids in the order of the sync callback's inputs/outputs
_CONTROLS = ("cluster", "time_start", "time_end", "mag", "group", "quality", "source", "population", "color",
             "view", "table")

GROUP_SWATCH = {**GROUP_COLORS, NONE: "rgb(170,170,170)"}


def ids(page: str) -> SimpleNamespace:
    """The component ids of ``page``'s bar: ``.url .filters .drawn .counts .download``
    and the controls ``.cluster .time_start .time_end .mag .group .quality .source
    .population .color .view .table``. ``.filters`` holds the canonical query string (the pages' input);
    ``.drawn`` takes what the page drew (:func:`drawn_data`)."""
    return SimpleNamespace(**{n: {"type": f"fm-{n}", "page": page} for n in _NAMES})


def download_href(f: Filters, prefix: str = "/") -> str:
    """URL of the CSV export of ``f`` (table ``f.table``), relative to the app prefix."""
    q = f.data_query()
    return f"{prefix}download/{quote(f.table)}.csv" + (f"?{q}" if q else "")


def drawn_data(f: Filters, events: dict | None = None, mechanisms: dict | None = None,
               population: str | None = None) -> dict:
    """The ``.drawn`` store value a page writes: ``events``/``mechanisms`` are dicts with
    ``matched``, ``drawn`` and optionally ``cap`` and ``note`` (shown when not all matched
    rows are drawn, e.g. "random sample" or "largest ML"). ``population``: the key of the
    population the mechanism counts are of, when the page counted another than the bar's
    (a diffusion subset cut on its own); the bar then names that one."""
    out = {"query": f.data_query(), "events": events, "mechanisms": mechanisms}
    if population is not None and population != f.population:
        out["population"] = population
    return out


# -- layout ---------------------------------------------------------------------------------
def _mag_bounds(options: dict) -> tuple[float, float]:
    lo, hi = options.get("mag_min"), options.get("mag_max")
    lo = math.floor(lo * 10) / 10 if lo is not None else -3.0
    hi = math.ceil(hi * 10) / 10 if hi is not None else 4.0
    if hi <= lo:
        hi = lo + 0.1
    return round(lo, 1), round(hi, 1)


def _mag_value(f: Filters, bounds) -> list[float]:
    lo, hi = bounds
    a = lo if f.mag_min is None else min(max(f.mag_min, lo), hi)
    b = hi if f.mag_max is None else min(max(f.mag_max, lo), hi)
    return [a, b]


def _label(text: str, html_for=None):
    return dbc.Label(text, className="fm-label", html_for=html_for)


def _options(values, swatch: dict | None = None):
    out = []
    for v in values:
        label = "(none)" if v == NONE else str(v)
        if swatch is not None:
            label = html.Span([html.Span(className="fm-swatch", style={"background": swatch.get(v, "#ccc")}),
                               label])
        out.append({"label": label, "value": v})
    return out


def _with_selected(known, selected):
    """Options: the known values, then selected values the data does not have (kept so
    the control shows what the URL asks for)."""
    return list(known) + [v for v in selected if v not in known]


def filter_bar(page: str, f: Filters, options: dict, *, display: bool = True,
               table: bool = True, drawn: dict | None = None) -> html.Div:
    """The bar for ``page`` initialised from ``f`` (choices from
    :meth:`components.data.DataProvider.filter_options`). ``display=False`` hides the
    colour-by / view controls, ``table=False`` the CSV download (they stay in the URL).
    ``drawn``: the ``.drawn`` store's first value (:func:`drawn_data`) when the page's
    layout already holds what it draws for ``f``.

    Built for the browser (:func:`components.first_page.routed_search` known), the bar's ``dcc.Location`` starts with
    the browser's own ``search``, so it does not report it on mount: that report fired the
    sync callback, and every callback on the filters waited for its round trip (on the
    ToC2ME map, until after the map's draw). The time fields' flags, which that round trip
    set, are therefore set here, and the counts and the address's problems come with the
    layout too (their callbacks answer only later changes)."""
    i = ids(page)
    search = routed_search()  # None: not for a browser (tests, warm-up)
    fragment = routed_fragment()  # None: not known (then the Location reports it on mount)
    raw0, raw1 = _raw_times(search)
    bad0, bad1, time_msg = _time_flags(raw0, raw1, f)
    # what the URL asked for stays in a flagged field (as the sync callback does)
    start = raw0 if (bad0 or bad1) and raw0 else format_time(f.time_start)
    end = raw1 if (bad0 or bad1) and raw1 else format_time(f.time_end, end=True)
    alert, download_class, download_title = problem_children(f.to_search() if search is None else search, options)
    bounds = _mag_bounds(options)
    t_min, t_max = options.get("time_min"), options.get("time_max")
    ph_start = f"from {t_min:%Y-%m-%d}" if t_min is not None else "YYYY-MM-DD hh:mm"
    ph_end = f"to {t_max:%Y-%m-%d}" if t_max is not None else "YYYY-MM-DD hh:mm"
    clusters = options.get("clusters", [])
    groups = options.get("groups", [])
    qualities = options.get("qualities", [])
    sources = options.get("sources", [])
    marks = {v: {"label": f"{v:g}"} for v in range(math.ceil(bounds[0]), math.floor(bounds[1]) + 1)}

    def dd(name, known, value, placeholder, swatch=None):
        return dcc.Dropdown(id=getattr(i, name), options=_options(_with_selected(known, value), swatch),
                            value=list(value), multi=True,
                            placeholder=placeholder, className=f"fm-dropdown fm-{name}", clearable=True)

    row1 = dbc.Row([
        dbc.Col([_label("Cluster"), dd("cluster", clusters, f.clusters, "All clusters")], xs=12, md=6, xl=2),
        dbc.Col([_label("Time window (UTC)"), dbc.InputGroup([
            dbc.Input(id=i.time_start, value=start, placeholder=ph_start, debounce=True, invalid=bad0,
                      size="sm", className="fm-time fm-time-start", type="text"),
            dbc.InputGroupText("→"),
            dbc.Input(id=i.time_end, value=end, placeholder=ph_end, invalid=bad1,
                      debounce=True, size="sm", className="fm-time fm-time-end", type="text"),
        ], size="sm"), html.Div(time_msg, id=i.time_msg, className="fm-time-msg small text-danger", role="alert")],
            xs=12, md=6, xl=3),
        dbc.Col([_label("Magnitude (ML)"), html.Div(dcc.RangeSlider(
            id=i.mag, min=bounds[0], max=bounds[1], step=0.1, value=_mag_value(f, bounds), marks=marks,
            allowCross=False, updatemode="mouseup", tooltip={"placement": "bottom", "always_visible": False},
            allow_direct_input=False, className="fm-mag"), className="fm-slider")], xs=12, md=6, xl=3),
        dbc.Col([_label("Group"), dd("group", groups, f.groups, "All groups", GROUP_SWATCH)], xs=12, md=6, xl=2),
        dbc.Col([_label("Quality"), dd("quality", qualities, f.qualities, "All")], xs=6, md=3, xl=1),
        dbc.Col([_label("Source"), dd("source", sources, f.sources, "All")], xs=6, md=3, xl=1),
    ], className="g-2 align-items-end")

    hidden = {"display": "none"}
    population = html.Div([
        html.Span("Mechanisms", className="fm-inline-label", title=POPULATION_HELP),
        dbc.Select(id=i.population, options=[{"label": p.label, "value": k} for k, p in POPULATIONS.items()],
                   value=f.population, size="sm", className="fm-population-select"),
    ], className="fm-inline fm-population")
    row2 = html.Div([
        html.Div(counts_children(f, drawn), id=i.counts, className="fm-counts"),
        html.Div([
            html.Div([
                html.Span("Colour by", className="fm-inline-label"),
                dbc.Select(id=i.color, options=[{"label": c, "value": c} for c in COLOR_BY], value=f.color_by,
                           size="sm", className="fm-select"),
            ], className="fm-inline", style=None if display else hidden),
            html.Div([
                html.Span("View", className="fm-inline-label"),
                dbc.RadioItems(id=i.view, options=[{"label": "km", "value": "km"},
                                                   {"label": "lon/lat", "value": "geo"}],
                               value=f.view, inline=True, className="btn-group fm-view",
                               inputClassName="btn-check", labelClassName="btn btn-outline-secondary btn-sm",
                               labelCheckedClassName="active"),
            ], className="fm-inline", style=None if display else hidden),
            population,
            html.Div([
                dbc.Select(id=i.table, options=[{"label": "events", "value": "events"},
                                                {"label": "mechanisms", "value": "mechanisms"}],
                           value=f.table, size="sm", className="fm-select"),
                html.A([html.Span("⤓ ", className="me-1"), "Download CSV"], id=i.download,
                       href=download_href(f), className=download_class, title=download_title, role="button"),
            ], className="fm-inline", style=None if table else hidden),
        ], className="fm-actions"),
    ], className="fm-bar-row2")

    return html.Div([
        dcc.Location(id=i.url, refresh=False, **({} if search is None else {"search": search}),
                     **({} if fragment is None else {"hash": fragment})),
        dcc.Store(id=i.filters, data=f.to_query()),
        # no data prop when empty: a Store mounted with data=None reports undefined at once,
        # which fired the counts callback on every page load
        dcc.Store(id=i.drawn, **({} if drawn is None else {"data": drawn})),
        html.Div(alert, id=i.problems, className="fm-filter-problems"),
        row1,
        row2,
    ], className="fm-filter-bar card card-body")


# -- callbacks ------------------------------------------------------------------------------
#: tooltip of the population control
POPULATION_HELP = ("Which mechanisms the pages count. 'One per event': among an event's mechanisms of the "
                   "quality class, the published one, else a computed one; an event is never counted twice. "
                   "'All mechanism rows' counts an event with a published and a computed mechanism twice "
                   "(for comparisons).")


def _from_controls(cluster, t0, t1, mag, group, quality, source, population, color, view, table, mag_min,
                   mag_max):
    lo = hi = None
    if isinstance(mag, (list, tuple)) and len(mag) == 2:
        eps = 1e-9
        if mag[0] is not None and mag_min is not None and mag[0] > mag_min + eps:
            lo = mag[0]
        if mag[1] is not None and mag_max is not None and mag[1] < mag_max - eps:
            hi = mag[1]
    return Filters.from_values(clusters=cluster, time_start=t0 or None, time_end=t1 or None, mag_min=lo,
                               mag_max=hi, groups=group, qualities=quality, sources=source, table=table,
                               color_by=color, view=view, population=population)


def _raw_times(search) -> tuple[str | None, str | None]:
    """The first ``start`` and ``end`` values of a query string, as typed (or None)."""
    try:
        params = _as_params(search or "")
    except Exception:  # noqa: BLE001 - hostile input
        return None, None
    return tuple((params.get(k) or [None])[0] for k in ("start", "end"))


TIME_HELP = "Use YYYY-MM-DD or YYYY-MM-DD hh:mm (UTC)."


def _time_flags(t0, t1, f: Filters) -> tuple[bool, bool, str | None]:
    """(start invalid, end invalid, message) for the typed or URL values ``t0``/``t1``: a
    value that is not a date is flagged and ignored; a start after the end flags both and
    says which window is applied (``f``'s, swapped whole days)."""
    bad0 = bool(t0) and parse_time(t0) is None
    bad1 = bool(t1) and parse_time(t1, end=True) is None
    if bad0 or bad1:
        which = " and ".join(w for w, bad in (("start", bad0), ("end", bad1)) if bad)
        return bad0, bad1, f"Not a date ({which}, ignored). {TIME_HELP}"
    if t0 and t1 and time_order_reversed(t0, t1):
        return True, True, (f"Start is after end: showing {format_time(f.time_start)} → "
                            f"{format_time(f.time_end, end=True)}.")
    return False, False, None


def _counts_children(d: dict | None, kind: str):
    if not d:
        return None
    matched, drawn = d.get("matched"), d.get("drawn")
    parts = [html.Span(f"{matched:,}", className="fm-num"), " matched"]
    title = None
    if drawn is not None:
        parts += [" / ", html.Span(f"{drawn:,}", className="fm-num"), " drawn"]
        if drawn < matched:
            title = d.get("note") or f"cap {d.get('cap', drawn):,}"
            parts.append(html.Span("*", className="fm-note-mark"))
    return html.Span([html.Span(kind, className="fm-kind"), *parts], className=f"fm-count fm-count-{kind}",
                     title=f"not all drawn: {title}" if title else None)


DOWNLOAD_CLASS = "btn btn-primary btn-sm fm-download"


def problem_children(search, options: dict | None = None) -> tuple:
    """(alert or None, download-link class, download-link title) for the URL query ``search``.

    The alert lists the malformed filter values (:func:`components.filters.query_problems`):
    they are not applied, and before they silently meant "no filter". The CSV link is
    disabled while there are any: it would download more rows than the address asks for.
    With ``options`` (:meth:`~components.data.DataProvider.filter_options`) a clean query's
    list values that the data lack (``cluster=bogus``; :func:`components.filters.unknown_values`)
    get a warning instead: they are applied and match nothing, so the CSV stays on."""
    found = query_problems(search or "")
    if not found:
        unknown = unknown_values(Filters.from_query(search or ""), options) if options else []
        if not unknown:
            return None, DOWNLOAD_CLASS, None
        alert = dbc.Alert([html.B("Not in these data: "), "; ".join(unknown), "."],
                          color="warning", className="py-2 mb-2 small fm-filter-problem fm-filter-unknown")
        return alert, DOWNLOAD_CLASS, None
    alert = dbc.Alert([html.B("Malformed filter in the address, not applied: "), "; ".join(found),
                       ". Fix or clear it; the CSV download is off until then."],
                      color="danger", className="py-2 mb-2 small fm-filter-problem")
    return alert, DOWNLOAD_CLASS + " disabled", "malformed filter in the address: " + "; ".join(found)


def _population_children(f: Filters, own: bool = False):
    """The bar's statement of the mechanism population (next to the counts); ``own``: the
    page counted its set's own population, not the bar's (see :func:`drawn_data`)."""
    label = population_of(f).label + (" (this set's own)" if own else "")
    return html.Span(["population: ", html.Span(label, className="fm-population-label")],
                     className="fm-count fm-count-population", title=POPULATION_HELP)


def register_callbacks(app) -> None:
    """Register the bar's callbacks on ``app`` (once per app; ``create_app`` does it)."""
    i = ids(MATCH)

    @app.callback(
        Output(i.url, "search"), Output(i.filters, "data"), Output(i.download, "href"),
        *[Output(getattr(i, c), "value") for c in _CONTROLS],
        Output(i.time_start, "invalid"), Output(i.time_end, "invalid"), Output(i.time_msg, "children"),
        Input(i.url, "search"), *[Input(getattr(i, c), "value") for c in _CONTROLS],
        State(i.filters, "data"), State(i.mag, "min"), State(i.mag, "max"),
        prevent_initial_call=True,
    )
    def sync(search, cluster, t0, t1, mag, group, quality, source, population, color, view, table, current,
             mag_min, mag_max):
        from dash import ctx, get_relative_path

        prefix = get_relative_path("/")
        n = len(_CONTROLS)
        trig = ctx.triggered_id
        from_url = isinstance(trig, dict) and trig.get("type") == "fm-url"
        if from_url:
            f = Filters.from_query(search or "")
            q = f.to_query()
            raw0, raw1 = _raw_times(search)
            flags = _time_flags(raw0, raw1, f)
            if q == current and not any(flags[:2]):
                raise PreventUpdate
            # what the URL asked for stays in a flagged field (not silently dropped/swapped)
            start = raw0 if (flags[0] or flags[1]) and raw0 else format_time(f.time_start)
            end = raw1 if (flags[0] or flags[1]) and raw1 else format_time(f.time_end, end=True)
            values = [list(f.clusters), start, end, _mag_value(f, (mag_min, mag_max)), list(f.groups),
                      list(f.qualities), list(f.sources), f.population, f.color_by, f.view, f.table]
            return (no_update, q if q != current else no_update, download_href(f, prefix), *values, *flags)
        f = _from_controls(cluster, t0, t1, mag, group, quality, source, population, color, view, table, mag_min,
                           mag_max)
        flags = _time_flags(t0, t1, f)
        q = f.to_query()
        if q == current:
            return (no_update, no_update, no_update, *([no_update] * n), *flags)
        return (f.to_search(), q, download_href(f, prefix), *([no_update] * n), *flags)

    # both answer with the layout first (filter_bar): only later changes ask the server
    @app.callback(
        Output(i.problems, "children"), Output(i.download, "className"), Output(i.download, "title"),
        Input(i.url, "search"),
        prevent_initial_call=True,
    )
    def problems(search):
        from .data import MissingDataError, get_provider

        try:
            options = get_provider().filter_options()
        except MissingDataError:  # no data: the page says so; only malformed values to report
            options = None
        return problem_children(search, options)

    @app.callback(
        Output(i.counts, "children"),
        Input(i.filters, "data"), Input(i.drawn, "data"),
        prevent_initial_call=True,
    )
    def counts(query, drawn):
        return counts_children(Filters.from_query(query or ""), drawn)


def counts_children(f: Filters, drawn: dict | None):
    """The bar's counts for the filters ``f``: what the page drew (its ``.drawn`` store,
    :func:`drawn_data`) when that is for ``f``, else the matched counts from the data."""
    from .data import MissingDataError, get_provider

    if drawn and drawn.get("query") == f.data_query():
        ev, me = drawn.get("events"), drawn.get("mechanisms")
        if drawn.get("population") in POPULATIONS:
            # the counts are of the page's own population: the label says which
            return [_counts_children(ev, "events"), _counts_children(me, "mechanisms"),
                    _population_children(f.replace(population=drawn["population"]), own=True)]
    else:
        try:
            c = get_provider().counts(f).iloc[0]
        except MissingDataError:
            return html.Span("no data", className="text-danger")
        ev, me = {"matched": int(c["events"])}, {"matched": int(c["mechanisms"])}
    return [_counts_children(ev, "events"), _counts_children(me, "mechanisms"), _population_children(f)]


_TIME_AXIS_RELAYOUT_JS = """
function(r) {
    if (r && (r['xaxis.autorange'] || ('xaxis.range[0]' in r && 'xaxis.range[1]' in r) || r['xaxis.range'])) {
        return r;
    }
    return window.dash_clientside.no_update;
}
"""


def forward_time_axis_changes(store_id, graph_id) -> None:
    """Copy ``graph_id``'s ``relayoutData`` into the ``dcc.Store`` ``store_id`` only when it
    changes the x (time) axis: a zoom, a pan or an autoscale. A time brush's server callback
    listens to the store, so Plotly's other relayout events (the first draw's and every
    resize's ``{'autosize': true}``, zooms of the other axis) cost no round trip; and Dash
    drops the answer of a server callback when a newer call of it starts, so a resize after
    a zoom could otherwise lose the zoom. Call once per page at import time."""
    clientside_callback(
        _TIME_AXIS_RELAYOUT_JS,
        Output(store_id, "data"),
        Input(graph_id, "relayoutData"),
        prevent_initial_call=True,
    )


_SYNC_PAGE_QUERY_JS = """
function(pageQuery, filterQuery) {
    const keys = %s;
    setTimeout(function() {
        const p = new URLSearchParams(filterQuery || '');
        keys.forEach(k => p.delete(k));
        new URLSearchParams(pageQuery || '').forEach((v, k) => p.append(k, v));
        const s = p.toString();
        const url = window.location.pathname + (s ? '?' + s : '') + window.location.hash;
        if (url !== window.location.pathname + window.location.search + window.location.hash) {
            window.history.replaceState(window.history.state, '', url);
        }
    }, 0);
    return window.dash_clientside.no_update;
}
"""


def sync_page_query(page_keys, output_id, state_id, filters_id) -> None:
    """Keep a page's own URL keys in the address bar next to the filter bar's.

    The filter bar writes ``?<filters>``; this clientside callback adds the page's keys
    back (after the bar's own update, hence the ``setTimeout``): the filter query without
    any of ``page_keys``, then the page query (``state_id``'s ``data``, a query string of
    only the page's keys), keeping the hash; ``history.replaceState`` only when the URL
    changes. ``filters_id`` is the bar's ``.filters`` store; ``output_id`` a dummy
    ``dcc.Store`` the callback never writes. Call once per page at import time."""
    clientside_callback(
        _SYNC_PAGE_QUERY_JS % json.dumps(list(page_keys)),
        Output(output_id, "data"),
        Input(state_id, "data"), Input(filters_id, "data"),
    )
