"""The page for an unknown path (Dash shows the module named ``not_found_404`` for any path
no page claims): what was asked, and links back to the map and the other pages, keeping the
filters of the query string. Not in the navbar (``components.layout`` skips it)."""
from __future__ import annotations

import dash
import dash_bootstrap_components as dbc
from dash import html

from components.filters import Filters
from components.layout import page_title

dash.register_page(__name__, path="/404", name="Not found", title=page_title("Page not found"),
                   order=99)


def layout(**query):
    q = Filters.from_query(query).to_query()
    suffix = f"?{q}" if q else ""
    home = dash.get_relative_path("/") + suffix
    return dbc.Alert([
        html.H4("Page not found", className="alert-heading"),
        html.P("No page of this dashboard has this address (a mistyped or old link?)."),
        html.A("← back to the map", href=home, className="alert-link fm-404-home"),
    ], color="warning", className="fm-no-data mt-4", id="fm-not-found")
