"""The first page's layout comes with the app's layout, not after a router round trip.

Dash pages renders a page in two steps: the browser fetches the app layout
(``/_dash-layout``: the navbar and an empty page container), its ``dcc.Location`` then
reports the address and the router callback answers with the page's layout. That second
request costs every first load a round trip (0.15-0.35 s on the ToC2ME build, issue 12).

Here the layout request builds the page itself. It knows the page from its ``Referer``
header, which the browser sets to the document's address (path and query; never the
fragment). The page container is then filled as the router would fill it, and its
``dcc.Location`` starts with the browser's own ``pathname`` and ``search``, so it reports
nothing the router listens to and the router is not called. Later navigation (links,
back/forward) goes through the router as before.

The fragment comes in the ``X-FM-Fragment`` header, which only the early request of
:mod:`components.early_layout` sends (URI-encoded): a page that keeps state there
(classification's rule) can then start with it (:func:`routed_fragment`).

Without a usable ``Referer`` (a privacy setting, another origin, a path outside the app)
or if the page's layout fails, the empty container is served and the router does the work,
as Dash does by default. The router's own steps (``dash._pages._path_to_page`` and
``_parse_query_string``) are reused; a Dash without them also falls back.
"""
from __future__ import annotations

import contextvars
import logging
from urllib.parse import urlsplit

import dash
from dash import dcc, html

log = logging.getLogger(__name__)

_SEARCH: contextvars.ContextVar[str | None] = contextvars.ContextVar("fm_first_page_search", default=None)
_FRAGMENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("fm_first_page_fragment", default=None)
#: the early layout request's header with the address's fragment (``encodeURIComponent``)
FRAGMENT_HEADER = "X-FM-Fragment"


def routed_search() -> str | None:
    """The address bar's query string (``'?a=1'`` or ``''``), exactly as the browser holds
    it, while a page's layout is built for the browser (here, or by Dash pages' router);
    None anywhere else (a layout built by a test or a warm-up)."""
    search = _SEARCH.get()
    if search is not None:
        return search
    try:
        search = dash.ctx.inputs.get("_pages_location.search")
    except Exception:  # noqa: BLE001 - MissingCallbackContextException: not inside a callback
        return None
    return search if isinstance(search, str) else None


def routed_fragment() -> str | None:
    """The address bar's fragment (``'#a=1'`` or ``''``) while the first page's layout is
    built from an early layout request that sent it; None when it is not known (the
    router's layouts, the renderer's own request, tests): a ``dcc.Location`` whose ``hash``
    is left unset then reports the fragment when it mounts."""
    return _FRAGMENT.get()


def _fragment() -> str | None:
    """The fragment the layout request sent in :data:`FRAGMENT_HEADER`, or None (absent,
    or not a fragment)."""
    import flask
    from urllib.parse import unquote

    raw = flask.request.headers.get(FRAGMENT_HEADER)
    if raw is None:
        return None
    fragment = unquote(raw)
    return fragment if fragment == "" or fragment.startswith("#") else None


def _page_address() -> tuple[str, str] | None:
    """(pathname, search) of the page that asked for the layout, from its ``Referer``, or
    None when that is absent, from another origin or outside the app's path prefix."""
    import flask

    if not flask.has_request_context():
        return None
    ref = flask.request.referrer
    if not ref:
        return None
    try:
        parts = urlsplit(ref)
    except ValueError:
        return None
    if parts.netloc != flask.request.host:
        return None
    prefix = dash.get_app().config.requests_pathname_prefix
    path = parts.path or "/"
    if not (path + "/").startswith(prefix):
        return None
    return path, f"?{parts.query}" if parts.query else ""


def _route(pathname: str, search: str, fragment: str | None = None):
    """(layout, title) of the page at ``pathname`` with the query ``search``: what Dash
    pages' router answers (the ``not_found_404`` module's page for an unknown path)."""
    from dash._pages import _parse_query_string, _path_to_page

    app = dash.get_app()
    page, path_variables = _path_to_page(app.strip_relative_path(pathname))
    if page == {}:
        found = next((p for m, p in dash.page_registry.items() if m.split(".")[-1] == "not_found_404"), None)
        layout, title = (found["layout"], found["title"]) if found else (html.H1("404 - Page not found"), app.title)
    else:
        layout, title = page.get("layout", ""), page["title"]
    if callable(layout):
        token, token_fragment = _SEARCH.set(search), _FRAGMENT.set(fragment)
        try:
            layout = layout(**{**(path_variables or {}), **_parse_query_string(search)})
        finally:
            _SEARCH.reset(token)
            _FRAGMENT.reset(token_fragment)
    if callable(title):
        title = title(**(path_variables or {}))
    return layout, title


def page_container():
    """Dash pages' container, holding the page the layout request comes from when that is
    known (see the module's docstring); ``dash.page_container`` otherwise."""
    address = _page_address()
    if address is None:
        return dash.page_container
    pathname, search = address
    try:
        from dash.dash import _ID_CONTENT, _ID_DUMMY, _ID_LOCATION, _ID_STORE

        content, title = _route(pathname, search, _fragment())
    except Exception:  # noqa: BLE001 - the router will build it again and report the error as Dash does
        log.exception("first page %s%s: layout failed; the router will build it", pathname, search)
        return dash.page_container
    return html.Div([
        dcc.Location(id=_ID_LOCATION, refresh="callback-nav", pathname=pathname, search=search),
        html.Div(content, id=_ID_CONTENT, disable_n_clicks=True),
        dcc.Store(id=_ID_STORE, data={"title": title}),
        html.Div(id=_ID_DUMMY, disable_n_clicks=True),
    ])
