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

Loaded is not yet resolved: each component reaches its implementation through a
``React.lazy``, which starts resolving only when React first renders one, and until then
the component *suspends*. On a first load every graph of the page suspended in the first
render; React then revealed them in separate, later commits (React 18's source holds a
retry's commit up to 500 ms after the last fallback shown; the trace shows the gaps, not
their cause). A trace of the ToC2ME classification
page: its three graphs pending at 810 ms, two mounted at 1,037 ms, the third at 1,996 ms,
with the main thread idle in between; on magnitudes the second graph mounted 250 ms after
the first had drawn. :data:`START_SCRIPT`, after the chunks and before the renderer starts,
starts the lazy implementations of ``dcc.Graph`` and ``dcc.Dropdown``, which every page
has: their promises settle in microtasks (the chunks and plotly.js are there), long before
the layout's answer is rendered, so these components render at once. ``DataTable``'s is
left to its first render: starting it runs the table chunk's modules, and with it the
pages without a table read slower (magnitudes 1.92 -> 2.08 s, strike-time 1.33 -> 1.52 s,
4 loads each).

Only on the pages that ask for it (``start_graphs=True`` in their ``dash.register_page``):
interleaved A/Bs on the ToC2ME build (this machine, headless Chromium, 4-6 loads, against
the build before both this script and classification's layout change) read the
classification page 0.82-0.87x and the model page 0.87-0.90x (in one of them, two pages
whose code did not change moved 0.89-0.93x: the model's gain is near the noise), but
the map, with one graph, 1.15x (2.14 -> 2.45 s, 10 loads each). Traced, its one graph
then draws inside the first commit and the draw's synchronous part grew by about what the
wait had saved; the page was drawn ~0.2 s later for a reason the trace did not show.
The event page (three graphs; a path template, matched by its prefix: :func:`start_prefixes`)
read 0.90x on the demo build and 0.96x on ToC2ME (10 loads each, stop 21); magnitudes (two
graphs) 1.06x, so it does not ask.
"""
from __future__ import annotations

import json

#: (package folder under ``_dash-component-suites/dash/``, chunk file) of the chunks that
#: the pages' components use: graphs and the filter bar's dropdowns and sliders are on every
#: page; tables on the map, classification, model, wells, event and audit pages
EAGER_CHUNKS = (
    ("dcc", "async-graph.js"), ("dcc", "async-dropdown.js"), ("dcc", "async-slider.js"),
    ("dash_table", "async-table.js"), ("dash_table", "async-highlight.js"),
)

SCRIPTS_PLACEHOLDER = "{%scripts%}"

#: Starts the ``React.lazy`` behind each listed component (see the module's docstring). A
#: component's element is what it renders outside React: a class's ``render()`` or a plain
#: function's call (neither uses hooks); the walk follows ``React.memo`` wrappers and
#: ``Suspense`` children down to an element whose type is a lazy, and calls the lazy's own
#: initialiser, which starts the factory and throws its pending promise (caught) or returns
#: the resolved module. Anything unexpected (another Dash, another React) leaves that
#: component as it was: it then resolves at its first render, as Dash does by default.
START_SCRIPT = """<script>(function () {
    var here = window.location.pathname.replace(/\\/$/, '') || '/';
    if (%s.indexOf(here) < 0 && !%s.some(function (p) { return here.indexOf(p) === 0; })) { return; }
    function element(C) {
        return C && C.prototype && C.prototype.render ? new C({}).render() : C({});
    }
    function start(el) {
        for (var depth = 0; el && depth < 4; depth++) {
            var t = el.type;
            if (t && typeof t._init === 'function' && t._payload) {
                try { t._init(t._payload); } catch (pending) { /* started: a promise */ }
                return;
            }
            el = t && typeof t.type === 'function' ? t.type(el.props)   /* React.memo */
                : el.props && el.props.children;                        /* Suspense */
        }
    }
    var dcc = window.dash_core_components || {};
    [dcc.Graph, dcc.Dropdown].forEach(function (C) {
        try { if (C) { start(element(C)); } } catch (e) { /* resolved at its first render */ }
    });
})();</script>"""


def chunk_urls(requests_pathname_prefix: str = "/") -> list[str]:
    """The chunks' URLs, as the components' own loader requests them."""
    prefix = requests_pathname_prefix if requests_pathname_prefix.endswith("/") else requests_pathname_prefix + "/"
    return [f"{prefix}_dash-component-suites/dash/{package}/{name}" for package, name in EAGER_CHUNKS]


def start_addresses(page_paths, requests_pathname_prefix: str = "/") -> list[str]:
    """The browser's ``location.pathname`` of each page path (``'/model'``) under the
    app's prefix, without a trailing slash (the app's root: ``'/'``); path templates
    (``'/event/<event_id>'``) are left out (:func:`start_prefixes`)."""
    root = requests_pathname_prefix.rstrip("/")
    return [(root + path).rstrip("/") or "/" for path in page_paths if "<" not in path]


def start_prefixes(page_paths, requests_pathname_prefix: str = "/") -> list[str]:
    """The pathname prefix of each path template among ``page_paths`` under the app's
    prefix: ``'/event/<event_id>'`` -> ``'/event/'`` (any event's page)."""
    root = requests_pathname_prefix.rstrip("/")
    return [root + path[:path.index("<")] for path in page_paths if "<" in path]


def index_string(template: str, requests_pathname_prefix: str = "/", start_graphs=()) -> str:
    """Dash's page template with a script tag per chunk right after Dash's own scripts, and
    :data:`START_SCRIPT` after them (before the renderer's own script), for the page paths
    ``start_graphs`` (paths or path templates)."""
    if SCRIPTS_PLACEHOLDER not in template:
        raise ValueError(f"the Dash index template has no {SCRIPTS_PLACEHOLDER}")
    start = START_SCRIPT % (json.dumps(start_addresses(start_graphs, requests_pathname_prefix)),
                            json.dumps(start_prefixes(start_graphs, requests_pathname_prefix)))
    tags = "".join(f'<script src="{url}"></script>' for url in chunk_urls(requests_pathname_prefix)) + start
    return template.replace(SCRIPTS_PLACEHOLDER, SCRIPTS_PLACEHOLDER + tags, 1)
