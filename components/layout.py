"""The app shell: navbar, page container, and the "no data yet" message."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, html

from components import first_page
from components.access import ACCOUNTS, READ_ONLY, can, current_account, get_access
from components.data import get_provider

#: how the built-in data sets' ``frame.dataset`` is written in titles; a project's ``name``
#: (``project.toml``) is shown as given
DATASET_TITLES = {"toc2me": "ToC2ME", "demo": "Demo"}
#: the title before any table is built (no data set to name yet)
BRAND = "Focal mechanisms"


def brand() -> str:
    """The navbar's and the tabs' name: the built data set's name + "focal mechanisms"
    (``ToC2ME focal mechanisms``, ``My experiment focal mechanisms``), :data:`BRAND`
    without a build. Read per request, so a rebuilt data folder renames the app."""
    name = get_provider().dataset_name().strip()
    return f"{DATASET_TITLES.get(name, name)} focal mechanisms" if name else BRAND


def page_title(page: str):
    """``register_page`` title for ``page``: a function, so each request names the data set
    the app serves (``Map · ToC2ME focal mechanisms``)."""
    return lambda **_: f"{page} · {brand()}"


def image_name(figure: str) -> str:
    """File name (without extension) of a figure's "download as PNG" button:
    ``<data set>_<figure>``, the prefix the CSV downloads use."""
    return f"{get_provider().file_prefix()}_{figure}"


#: navbar order of the pages (each page passes ``order=`` to ``dash.register_page``): Map 0,
#: Magnitudes 1, Classification 2, Strike–time 3, Diffusion 4, Wells 5, Polarity model 6.
#: Only registered pages are shown; templated paths (``/event/<event_id>``) are not.


def _pages() -> list[dict]:
    pages = [p for p in dash.page_registry.values() if not p.get("path", "").startswith("/_")]
    pages = [p for p in pages if "<" not in (p.get("path_template") or "")]  # skip e.g. /event/<event_id>
    pages = [p for p in pages if p.get("module", "").split(".")[-1] != "not_found_404"]  # the 404 page
    pages = [p for p in pages if not p.get("right") or can(p["right"])]  # e.g. the audit trail: admins
    return sorted(pages, key=lambda p: (p.get("order") if p.get("order") is not None else 1e9, p["name"]))


def navlink_id(path: str) -> dict:
    return {"type": "fm-navlink", "path": path}


def navbar() -> dbc.Navbar:
    """Brand + one link per registered page (hrefs keep the current filters)."""
    links = [dbc.NavItem(dbc.NavLink(p["name"], href=p["relative_path"], active=False,
                                     id=navlink_id(p["relative_path"])))
             for p in _pages()]
    return dbc.Navbar(
        dbc.Container([
            dbc.NavbarBrand([html.Span("◐", className="fm-logo me-2"), brand()], href=dash.get_relative_path("/"),
                            className="fw-semibold"),
            dbc.NavbarToggler(id="fm-navbar-toggler"),
            dbc.Collapse([dbc.Nav(links, navbar=True, className="ms-auto"), *_who()], id="fm-navbar-collapse",
                         navbar=True),
        ], fluid=True),
        color="dark", dark=True, className="fm-navbar py-1", expand="lg",
    )


def _who() -> list:
    """The navbar's account part: name, role and a log-out button (a plain POST form to
    Flask's ``/logout``) with accounts; a "read-only" badge on a read-only server; nothing
    in local mode."""
    access = get_access()
    if access.mode == READ_ONLY:
        return [html.Span("read-only", className="badge bg-secondary ms-3 fm-readonly",
                          title=f"Reviews and re-inversions are off: {access.reason}")]
    acc = current_account()
    if access.mode != ACCOUNTS or acc is None:
        return []
    return [html.Span([html.Span(acc.name, className="fw-semibold"), f" · {acc.role}"],
                      className="navbar-text text-light ms-3 fm-account", id="fm-account"),
            html.Form(html.Button("Log out", type="submit", className="btn btn-outline-light btn-sm ms-2",
                                  id="fm-logout"),
                      action=dash.get_relative_path("/logout"), method="POST", className="d-inline mb-0")]


def shell() -> html.Div:
    """The app layout (a function, so the navbar reflects the page registry), holding the
    requesting page's layout when that is known (:func:`components.first_page.page_container`)."""
    return html.Div([
        navbar(),
        html.Main(first_page.page_container(), className="container-fluid fm-main"),
    ])


def register_callbacks(app) -> None:
    """Navbar links carry the current page's filter query string, and the current page's
    link is marked active (clientside; ``active='exact'`` would compare the query too)."""
    app.clientside_callback(
        """
        function(queries, pathname) {
            const q = (queries && queries.length && queries[0]) ? ('?' + queries[0]) : '';
            const outs = (dash_clientside.callback_context.outputs_list || [[], []])[0] || [];
            const here = window.location.pathname;
            return [outs.map(o => o.id.path + q), outs.map(o => o.id.path === here)];
        }
        """,
        Output(navlink_id(ALL), "href"),
        Output(navlink_id(ALL), "active"),
        Input({"type": "fm-filters", "page": ALL}, "data"),
        Input("_pages_location", "pathname"),
    )
    app.clientside_callback(
        "function(n, open) { return n ? !open : open; }",
        Output("fm-navbar-collapse", "is_open"),
        Input("fm-navbar-toggler", "n_clicks"),
        dash.State("fm-navbar-collapse", "is_open"),
        prevent_initial_call=True,
    )


def no_data(data_dir, missing: list[str]) -> dbc.Alert:
    """The message shown instead of a page when tables are missing."""
    return dbc.Alert([
        html.H4("No data yet", className="alert-heading"),
        html.P(["The data folder ", html.Code(str(data_dir)), " does not hold the tables this page needs",
                f" (missing: {', '.join(missing)})." if missing else "."]),
        html.P(["Build them, then reload this page: run ", html.Code("make run"), " (builds the demo data and "
                "starts the app), or ", html.Code(f"python -m pipeline build --source demo --data-dir {data_dir}"),
                " (or ", html.Code("--source toc2me --input DIR"), " for the real data)."], className="mb-0"),
    ], color="warning", className="fm-no-data mt-4")


def population_note(f, n_events: int | None = None, n_mechanisms: int | None = None, *, extra: str = "",
                    id=None) -> html.Div:
    """The caption saying which mechanisms a page's figures count
    (:func:`components.filters.population_caption` of the filters ``f``), class
    ``fm-population-caption``; ``extra`` is appended (a page's own note)."""
    from .filters import population_caption

    text = population_caption(f, n_events, n_mechanisms) + (f" · {extra}" if extra else "")
    kw = {"id": id} if id is not None else {}
    return html.Div(text, className="fm-note fm-population-caption", **kw)
