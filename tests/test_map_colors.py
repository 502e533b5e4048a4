"""The map's events are coloured on the server (issue 12: plotly.js's own colour-scale
mapping of ~20,000 points cost a visible part of the draw). The colours are checked against
plotly.py's independent :func:`plotly.colors.sample_colorscale` (linear in RGB between the
stops, as plotly.js draws them)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from plotly.colors import get_colorscale, hex_to_rgb, sample_colorscale, unlabel_rgb

from components.map_figure import MISSING_VALUE_COLOR, event_traces, scale_colors


def _rgb(c: str) -> np.ndarray:
    return np.array(hex_to_rgb(c) if c.startswith("#") else unlabel_rgb(c), dtype=float)


@pytest.mark.parametrize("name,reverse", [("Viridis", False), ("Cividis", True), ("Plasma", False)])
def test_colours_follow_the_scale_as_plotly_maps_it(name, reverse):
    scale = [list(x) for x in get_colorscale(name)]
    values = np.array([3.0, -1.0, 0.25, np.nan, 1.7, 2.2, -0.4])
    colors, cmin, cmax = scale_colors(values, scale, reverse)
    assert (cmin, cmax) == (-1.0, 3.0)
    ok = np.isfinite(values)
    frac = (values[ok] - cmin) / (cmax - cmin)
    if reverse:
        frac = 1.0 - frac  # reversescale flips the scale end to end
    want = sample_colorscale(scale, list(frac))
    for got, exp in zip(np.array(colors, dtype=object)[ok], want):
        # 256 levels over the range: at most half a level away (a channel unit or two)
        assert np.abs(_rgb(got) - _rgb(exp)).max() <= 2.5, (got, exp)
    assert colors[3] == MISSING_VALUE_COLOR


def test_constant_and_all_missing_values():
    scale = [list(x) for x in get_colorscale("Viridis")]
    colors, cmin, cmax = scale_colors([2.0, 2.0], scale)
    assert cmin == cmax == 2.0 and colors[0] == colors[1]
    assert scale_colors([np.nan], scale)[0] == [MISSING_VALUE_COLOR]


def test_event_trace_carries_the_colours_and_a_matching_colour_bar():
    n = 50
    rng = np.random.default_rng(1)
    ev = pd.DataFrame({"event_id": [f"e{i}" for i in range(n)], "x_km": rng.uniform(-1, 1, n),
                       "y_km": rng.uniform(-1, 1, n), "magnitude": rng.uniform(-1, 2, n),
                       "depth_km": rng.uniform(2, 3, n),
                       "time": pd.date_range("2016-11-01", periods=n, freq="h", tz="UTC")})
    dots, bar = event_traces(ev, color_by="depth")
    assert len(dots["marker"]["color"]) == n and "colorscale" not in dots["marker"]
    m = bar["marker"]
    assert m["showscale"] and m["reversescale"] and (m["cmin"], m["cmax"]) == (ev["depth_km"].min(), ev["depth_km"].max())
    # the deepest event has the scale's first colour (depth is reversed), the shallowest its last
    scale = m["colorscale"]
    colors = np.array(dots["marker"]["color"], dtype=object)
    assert np.abs(_rgb(colors[ev["depth_km"].idxmax()]) - _rgb(scale[0][1])).max() <= 1
    assert np.abs(_rgb(colors[ev["depth_km"].idxmin()]) - _rgb(scale[-1][1])).max() <= 1
    # hiding the events (legend click) hides their colour bar too
    assert dots["legendgroup"] == bar["legendgroup"] and not bar["showlegend"]
