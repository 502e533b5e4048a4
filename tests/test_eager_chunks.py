"""The component chunks listed with the page (components.eager_chunks): the template edit.
In the browser, tests/test_plotly_bundle.py checks every page fetches them once and no other."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components import eager_chunks

DASH_TEMPLATE = "<html><head>{%metas%}</head><body>{%app_entry%}<footer>{%config%}{%scripts%}{%renderer%}</footer></body></html>"


def test_chunks_follow_dash_scripts_and_precede_the_renderer():
    out = eager_chunks.index_string(DASH_TEMPLATE)
    scripts, renderer = out.index("{%scripts%}"), out.index("{%renderer%}")
    tags = re.findall(r'<script src="([^"]+)"></script>', out)
    assert len(tags) == len(eager_chunks.EAGER_CHUNKS)
    assert all(scripts < out.index(t) < renderer for t in tags)
    assert tags[0] == "/_dash-component-suites/dash/dcc/async-graph.js"


@pytest.mark.parametrize("prefix", ["/app/", "/app"])
def test_urls_carry_the_apps_path_prefix(prefix):
    urls = eager_chunks.chunk_urls(prefix)
    assert all(u.startswith("/app/_dash-component-suites/dash/") for u in urls)


def test_every_listed_chunk_is_a_file_dash_serves():
    import dash

    root = Path(dash.__file__).parent
    for package, name in eager_chunks.EAGER_CHUNKS:
        assert (root / package / name).is_file(), (package, name)


def test_a_template_without_the_scripts_placeholder_is_refused():
    with pytest.raises(ValueError, match="scripts"):
        eager_chunks.index_string("<html><head></head><body></body></html>")


@pytest.mark.parametrize("prefix,want", [("/", ["/", "/model"]), ("/app/", ["/app", "/app/model"]),
                                         ("/app", ["/app", "/app/model"])])
def test_the_start_script_runs_only_on_the_pages_that_ask(prefix, want):
    """The graphs' implementation is started on the listed pages only, matched against
    ``location.pathname`` without its trailing slash (the app's root under a prefix)."""
    assert eager_chunks.start_addresses(["/", "/model", "/event/<event_id>"], prefix) == want
    out = eager_chunks.index_string(DASH_TEMPLATE, prefix, start_graphs=["/model"])
    assert json.dumps([want[1]]) + ".indexOf(here) < 0 && ![].some(" in out
    assert out.index("async-table.js") < out.index("indexOf(here)") < out.index("{%renderer%}")


@pytest.mark.parametrize("prefix,want", [("/", ["/event/"]), ("/app/", ["/app/event/"])])
def test_a_path_template_starts_the_graphs_on_every_page_it_matches(prefix, want):
    """A templated page (``/event/<event_id>``) is matched by its pathname prefix, so every
    event's page starts its graphs; plain paths stay exact matches."""
    paths = ["/model", "/event/<event_id>"]
    assert eager_chunks.start_prefixes(paths, prefix) == want
    out = eager_chunks.index_string(DASH_TEMPLATE, prefix, start_graphs=paths)
    assert "!" + json.dumps(want) + ".some(" in out
