"""Ask for the page's layout while the page's scripts still load (issue 12).

Dash's renderer requests ``_dash-layout`` and ``_dash-dependencies`` only once every
script has been fetched and evaluated: on this machine ~0.7 s after navigation on a cold
load. The layout request then waits for the server to build the page (it holds the first
page since :mod:`components.first_page`: up to ~0.4 s of queries and figures, the ToC2ME
map), and only then does the page render.

:func:`index_string` puts a small script first in the page's head. It starts both requests
at once, so the server builds the page while the browser loads and evaluates the scripts,
and wraps ``window.fetch`` so that the renderer's own GET of either address (its
``requests_pathname_prefix`` + name, as it builds it) gets that early response, once. Any
other request, a second GET, or an early request that failed goes to the real ``fetch``.
The layout request also sends the address's fragment, which a ``Referer`` never holds
(:data:`components.first_page.FRAGMENT_HEADER`), so a page can start with state kept there.
"""
from __future__ import annotations

import json

from .first_page import FRAGMENT_HEADER

#: the renderer's first two requests (paths under the app's ``requests_pathname_prefix``)
EARLY = ("_dash-layout", "_dash-dependencies")

_SCRIPT = """<script>(function () {
    var early = {};
    %s.forEach(function (u, i) {
        var headers = {Accept: 'application/json'};
        if (i === 0) { headers['%s'] = encodeURIComponent(window.location.hash); }
        early[u] = fetch(u, {credentials: 'same-origin', headers: headers});
    });
    var real = window.fetch;
    window.fetch = function (input, init) {
        var u = typeof input === 'string' ? input : '';
        var p = early[u];
        if (p && (!init || !init.method || init.method === 'GET')) {
            delete early[u];
            return p.catch(function () { return real(input, init); });
        }
        return real.apply(this, arguments);
    };
})();</script>"""


def early_urls(requests_pathname_prefix: str = "/") -> list[str]:
    """The addresses the renderer asks for first, exactly as it writes them."""
    prefix = requests_pathname_prefix if requests_pathname_prefix.endswith("/") else requests_pathname_prefix + "/"
    return [prefix + name for name in EARLY]


def index_string(template: str, requests_pathname_prefix: str = "/") -> str:
    """Dash's page template with the early-request script first in its head."""
    if "<head>" not in template:
        raise ValueError("the Dash index template has no <head>")
    script = _SCRIPT % (json.dumps(early_urls(requests_pathname_prefix)), FRAGMENT_HEADER)
    return template.replace("<head>", "<head>\n        " + script, 1)
