"""Unit tests of the server-drawn SVG stereonets (components/stereonet_svg.py); no browser.

The SVG is parsed here as XML and its geometry recomputed independently: every nodal-line
point must lie on the great circle of one of the group's planes (equal-area lower
hemisphere, inverted here from the pixel position), each plane drawn once, in the colour of
its deviation class; the P/B/T markers sit where the test's own projection of the average's
axes puts them, and their tooltips state those axes."""
from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
from plotly.colors import sample_colorscale

from components import stereonet as sn
from components import stereonet_svg as ssvg
from pipeline.analysis.mechanism_stats import average_mechanism

SVG = "{http://www.w3.org/2000/svg}"


def _mechs(strikes, dips, rakes):
    n = len(strikes)
    return pd.DataFrame({"event_id": [f"ev{i:03d}" for i in range(n)], "strike": np.asarray(strikes, float),
                         "dip": np.asarray(dips, float), "rake": np.asarray(rakes, float)})


def _average_row(m: pd.DataFrame) -> dict:
    return dict(average_mechanism(m["strike"], m["dip"], m["rake"]))


def _transform(g) -> tuple[float, float, float]:
    """(cx, cy, R) of the data group's ``translate(cx cy) scale(R -R)``."""
    m = re.fullmatch(r"translate\(([-\d.]+) ([-\d.]+)\) scale\(([-\d.]+) (-[\d.]+)\)", g.get("transform"))
    cx, cy, r, minus_r = (float(v) for v in m.groups())
    assert math.isclose(minus_r, -r)
    return cx, cy, r


def _subpaths(d: str) -> list[np.ndarray]:
    """The subpaths of an ``M x,y L x,y ...`` path as (n, 2) arrays (parsed independently)."""
    out = []
    for sub in re.findall(r"M[^M]*", d):
        pts = re.findall(r"[ML](-?\d+(?:\.\d+)?),(-?\d+(?:\.\d+)?)", sub)
        out.append(np.array(pts, dtype=float))
    return out


def _unproject(xy: np.ndarray) -> np.ndarray:
    """Unit vectors (north, east, down) of lower-hemisphere equal-area points (x east, y north,
    unit primitive circle): r = sqrt(2) sin((90 - plunge) / 2)."""
    r = np.minimum(np.hypot(xy[:, 0], xy[:, 1]), 1.0)
    plunge = math.pi / 2 - 2 * np.arcsin(r / math.sqrt(2))
    trend = np.arctan2(xy[:, 0], xy[:, 1])
    return np.stack([np.cos(plunge) * np.cos(trend), np.cos(plunge) * np.sin(trend), np.sin(plunge)], axis=1)


def _pole(strike, dip) -> np.ndarray:
    """Unit normal (north, east, down) of the plane strike/dip (right-hand rule)."""
    s, d = math.radians(strike), math.radians(dip)
    return np.array([math.sin(d) * math.sin(s), -math.sin(d) * math.cos(s), math.cos(d)])


def _project(trend, plunge) -> tuple[float, float]:
    r = math.sqrt(2) * math.sin(math.radians(90 - plunge) / 2)
    return r * math.sin(math.radians(trend)), r * math.cos(math.radians(trend))


def test_svg_nodal_lines_lie_on_each_planes_great_circle_in_its_deviation_colour():
    rng = np.random.default_rng(3)
    strikes = np.concatenate([rng.uniform(0, 30, 12), [181.0, 359.0, 60.0]])
    dips = rng.uniform(40, 89, len(strikes))
    rakes = rng.uniform(165, 180, len(strikes))
    m = _mechs(strikes, dips, rakes)
    avg = _average_row(m)
    fig = sn.stereonet_figure(m, "g1", avg)
    root = ET.fromstring(ssvg.stereonet_svg(fig))
    assert root.get("data-group") == "g1" and int(root.get("data-n")) == len(m)
    data = root.find(f"{SVG}g")
    cx, cy, r = _transform(data)
    # the frame's unit circle fills the cell's plot height as the Plotly figure's axes did
    top, bottom = fig["layout"]["margin"]["t"], fig["layout"]["margin"]["b"]
    assert math.isclose(2 * 1.12 * r, ssvg.CELL_H - top - bottom, rel_tol=1e-3)
    poles = np.array([_pole(s, d) for s, d in zip(strikes, dips)])
    # deviation class of each plane, recomputed: axial difference to the average strike, 2-degree bins
    dev = np.abs((strikes - avg["strike"] + 90) % 180 - 90)
    want_bin = np.minimum((dev // 2).astype(int), 9)
    colours = sample_colorscale("Plasma", [(k + 0.5) / 10 for k in range(10)])
    seen = []
    for path in data.findall(f"{SVG}path[@class='fm-lines']"):
        for sub in _subpaths(path.get("d")):
            v = _unproject(sub)
            off = np.abs(v @ poles.T).max(axis=0)          # worst |cos| to each plane's pole
            i = int(np.argmin(off))
            assert off[i] < 4e-3, off[i]                    # on the great circle (0.002 tolerance + rounding)
            assert path.get("stroke") == colours[want_bin[i]]
            seen.append(i)
    assert sorted(seen) == list(range(len(m)))              # every plane drawn once


def test_svg_axes_markers_sit_at_the_averages_axes_with_their_tooltips():
    m = _mechs([20.0, 25.0, 30.0, 22.0], [80.0, 85.0, 88.0, 83.0], [175.0, 178.0, -179.0, 170.0])
    avg = _average_row(m)
    fig = sn.stereonet_figure(m, "g2", avg)
    root = ET.fromstring(ssvg.stereonet_svg(fig))
    cx, cy, r = _transform(root.find(f"{SVG}g"))
    marks = {g.get("data-axis"): g for g in root.iter(f"{SVG}g") if g.get("class") == "fm-axis"}
    assert sorted(marks) == ["B", "P", "T"]
    for ax, g in marks.items():
        trend, plunge = avg[f"{ax.lower()}_trend"], avg[f"{ax.lower()}_plunge"]
        x, y = _project(trend, plunge)
        c = g.find(f"{SVG}circle")
        assert abs(float(c.get("cx")) - (cx + r * x)) < 0.02 and abs(float(c.get("cy")) - (cy - r * y)) < 0.02
        tip = g.find(f"{SVG}title").text
        assert tip.startswith(f"{ax} axis of the average mechanism")
        got = re.search(r"trend (\d+)°, plunge (\d+)°", tip).groups()
        assert (int(got[0]), int(got[1])) == (round(trend), round(plunge))
    # title and subtitle: the group, its count and the average written as in the counts table
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert texts[0] == "g2 · 4 events"
    assert texts[1].startswith(f"average {avg['strike']:.0f}/{avg['dip']:.0f}/{avg['rake']:.0f} (MT sum)")


def test_svg_escapes_text_and_a_group_without_average_has_one_colour():
    m = _mechs([10.0, 100.0], [30.0, 60.0], [20.0, -90.0])
    fig = sn.stereonet_figure(m, "<b>x&y</b>", None)
    doc = ssvg.stereonet_svg(fig)
    root = ET.fromstring(doc)                                   # well-formed despite the markup in the name
    assert root.get("data-group") == "<b>x&y</b>"
    lines = root.findall(f"{SVG}g/{SVG}path[@class='fm-lines']")
    assert len(lines) == 1 and lines[0].get("stroke") == sn.NO_AVERAGE_COLOR
    assert len(_subpaths(lines[0].get("d"))) == 2
    assert not [g for g in root.iter(f"{SVG}g") if g.get("class") == "fm-axis"]


def test_grid_document_holds_one_svg_per_figure_in_order():
    figs = [sn.stereonet_figure(_mechs([1.0, 2.0], [80.0, 85.0], [178.0, 179.0]), g, None) for g in "abcd"]
    doc = ssvg.stereonet_grid_document(figs, columns=3)
    assert re.findall(r'<svg [^>]*data-group="(\w)"', doc) == list("abcd")
    assert ssvg.grid_height(4, 3) == 2 * ssvg.CELL_H and ssvg.grid_height(3, 3) == ssvg.CELL_H
