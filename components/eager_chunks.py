"""Load the component chunks every page needs with the page's scripts (issue 12).

Dash's core and table components load part of their code lazily: ``dcc.Graph``'s,
``dcc.Dropdown``'s and ``dcc.Slider``'s implementations and ``DataTable``'s are webpack
chunks (``async-graph.js`` …) that the browser requests only when the first such component
renders, i.e. after the page's layout callback has answered. On a cold load that is one more
round trip, and an evaluation, between the layout's arrival and the first figure's draw
(the map's trace: chunks requested ~950 ms after navigation, answered ~120 ms later under
the callbacks' load).

Listed as ordinary scripts after Dash's own (:func:`index_string`), the chunks are fetched in
parallel with the rest and register themselves with their bundle's webpack runtime (its
JSONP chunk array, ``webpackChunk<name>``); the runtime then resolves the components'
``import()`` without a request. Only the chunks the pages use are listed: dcc's markdown,
date picker, upload and MathJax chunks (2.7 MB together) and the table's export chunk stay
lazy.
"""
from __future__ import annotations

#: (package folder under ``_dash-component-suites/dash/``, chunk file) of the chunks that
#: the pages' components use: graphs and the filter bar's dropdowns and sliders are on every
#: page; tables on the map, classification, model, wells, event and audit pages
EAGER_CHUNKS = (
    ("dcc", "async-graph.js"), ("dcc", "async-dropdown.js"), ("dcc", "async-slider.js"),
    ("dash_table", "async-table.js"), ("dash_table", "async-highlight.js"),
)

SCRIPTS_PLACEHOLDER = "{%scripts%}"


def chunk_urls(requests_pathname_prefix: str = "/") -> list[str]:
    """The chunks' URLs, as the components' own loader requests them."""
    prefix = requests_pathname_prefix if requests_pathname_prefix.endswith("/") else requests_pathname_prefix + "/"
    return [f"{prefix}_dash-component-suites/dash/{package}/{name}" for package, name in EAGER_CHUNKS]


def index_string(template: str, requests_pathname_prefix: str = "/") -> str:
    """Dash's page template with a script tag per chunk right after Dash's own scripts."""
    if SCRIPTS_PLACEHOLDER not in template:
        raise ValueError(f"the Dash index template has no {SCRIPTS_PLACEHOLDER}")
    tags = "".join(f'<script src="{url}"></script>' for url in chunk_urls(requests_pathname_prefix))
    return template.replace(SCRIPTS_PLACEHOLDER, SCRIPTS_PLACEHOLDER + tags, 1)
