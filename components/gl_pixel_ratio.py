"""WebGL at the screen's resolution for a dcc.Graph (issue 12).

plotly.js draws its WebGL layer at ``plotGlPixelRatio`` (default 2) times the CSS size
whatever the screen, i.e. 4x the pixels of a 1x screen, all filled and composited in
software where the browser has no GPU (Chrome CPU of the ToC2ME map's draw -17-22 %, wall
-25-42 %, bench/probe_map_draw.py). Only a 1x screen changes (ratio 1: the WebGL layer no
longer supersampled, its edges as sharp as the SVG ones); a fractional or higher ratio
keeps 2.
"""
from __future__ import annotations

import dash
from dash import Input, Output, State

# Runs once, when the graph appears (its id is an input nothing else writes, so Dash does
# not hold it back until the server's figure has arrived: dcc.Graph applies a new config
# only with the next figure).
_SET_RATIO = """
function(_id, config) {
    const ratio = Math.ceil(window.devicePixelRatio || 1) <= 1 ? 1 : 2;
    if (config && config.plotGlPixelRatio === ratio) { return window.dash_clientside.no_update; }
    return Object.assign({}, config || {}, {plotGlPixelRatio: ratio});
}
"""


def screen_gl_pixel_ratio(graph_id: str) -> None:
    """Register the clientside callback that sets the ``plotGlPixelRatio`` of graph
    ``graph_id``'s config to the screen's (1 on a 1x screen, else plotly.js's 2)."""
    dash.clientside_callback(_SET_RATIO, Output(graph_id, "config"), Input(graph_id, "id"),
                             State(graph_id, "config"))
