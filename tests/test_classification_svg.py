"""The classification page's distributions and ternary diagram as server-drawn SVG
(components/classification_svg.py): positions, sizes and tooltips recomputed here from the
mechanisms, not read back from the renderer; no browser (the page test loads them)."""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from components import classification_figures as cf
from components import classification_svg as csvg
from pipeline.analysis.mechanism_stats import FROHLICH_VERTICES
from pipeline.mechanisms import focal

NS = {"s": "http://www.w3.org/2000/svg"}


def _mechs(sdr, groups):
    sdr = np.asarray(sdr, dtype=float).reshape(-1, 3)
    axes = focal.pbt_axes(sdr[:, 0], sdr[:, 1], sdr[:, 2])
    return pd.DataFrame({"event_id": [f"e{i:03d}" for i in range(len(sdr))], "strike": sdr[:, 0],
                         "dip": sdr[:, 1], "rake": sdr[:, 2], "group": groups,
                         "p_plunge": axes["p"][1], "b_plunge": axes["b"][1], "t_plunge": axes["t"][1]})


def _svg(text: str) -> ET.Element:
    return ET.fromstring(text)


def _floats(path_d: str) -> list[float]:
    return [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path_d)]


def test_values_reads_lists_and_typed_arrays():
    from components.map_figure import typed

    assert np.array_equal(csvg.values(typed([1.5, -2.0, 3.25])), [1.5, -2.0, 3.25])
    got = csvg.values([1, None, 2.5])
    assert got[0] == 1 and math.isnan(got[1]) and got[2] == 2.5


@pytest.mark.parametrize("top, want", [(7, [0, 2, 4, 6, 8]), (1648, [0, 500, 1000, 1500, 2000]), (1, [0, 1]),
                                       (4, [0, 1, 2, 3, 4]), (41, [0, 20, 40, 60]), (0.3, [0, 1]), (0, [0, 1])])
def test_nice_ticks_cover_the_top_in_round_steps(top, want):
    assert csvg.nice_ticks(top) == pytest.approx(want)


def test_distribution_cells_draw_each_bin_where_and_as_large_as_it_counts():
    # g1: three strikes near north (axial: also counted near south), dips 80-89; g2: one at 45
    me = _mechs([[2, 85, 180], [4, 82, 175], [12, 88, -178], [45, 60, 90]], ["g1", "g1", "g1", "g2"])
    fig = cf.distributions_figure(me, ["g1", "g2", "other"])
    cells = [_svg(c) for c in csvg.distribution_cells(fig)]
    assert [(c.get("data-group"), c.get("data-n")) for c in cells] == [("g1", "3"), ("g2", "1")]
    g1 = cells[0]
    wedges = g1.findall(".//s:path[@class='fm-wedge']", NS)
    # mirrored 10-degree bins: 0-10 (2 events), 10-20 (1), 180-190 (2), 190-200 (1)
    tips = sorted(w.find("s:title", NS).text for w in wedges)
    assert tips == sorted(f"g1\nstrike axis {c}° ± 5°\n{n} events" for c, n in ((5, 2), (15, 1), (185, 2), (195, 1)))
    # the wedge of the largest bin reaches count/ring_max of the radius, pointing north (up)
    ring_max = csvg.nice_ticks(2, 3)[-1]
    for w in wedges:
        cx, cy, x0, y0, rr = _floats(w.get("d"))[:5]
        centre = float(re.search(r"axis (\d+)°", w.find("s:title", NS).text).group(1))
        count = float(re.search(r"(\d+) events", w.find("s:title", NS).text).group(1))
        assert rr == pytest.approx(104.0 * count / ring_max, abs=0.01)
        a0 = math.radians(centre - 5)  # clockwise from north, y down
        assert (x0, y0) == pytest.approx((cx + rr * math.sin(a0), cy - rr * math.cos(a0)), abs=0.01)
    # dip histogram: bins 80-85 (1: dip 82) and 85-90 (2: 85, 88), bar heights in proportion
    bars = g1.findall(".//s:rect[@class='fm-bar']", NS)
    dip = {b.find("s:title", NS).text: float(b.get("height")) for b in bars if "dip" in b.find("s:title", NS).text}
    assert set(dip) == {"g1\ndip 82.5° ± 2.5°\n1 events", "g1\ndip 87.5° ± 2.5°\n2 events"}
    assert dip["g1\ndip 87.5° ± 2.5°\n2 events"] == pytest.approx(2 * dip["g1\ndip 82.5° ± 2.5°\n1 events"], rel=1e-3)
    rake = [b for b in bars if "rake" in b.find("s:title", NS).text]
    assert sum(int(re.search(r"(\d+) events", b.find("s:title", NS).text).group(1)) for b in rake) == 3
    # the 85-90 dip bar sits at the right end of the 0-90 axis (box: x 34, width 216)
    right = next(b for b in bars if "87.5" in b.find("s:title", NS).text)
    assert float(right.get("x")) + float(right.get("width")) / 2 == pytest.approx(34 + 216 * 87.5 / 90, abs=0.01)


def test_distributions_document_says_what_it_holds_and_why_it_is_empty():
    me = _mechs([[2, 85, 180], [45, 60, 90]], ["g1", "g2"])
    doc = csvg.distributions_document(cf.distributions_figure(me, ["g1", "g2"]))
    grid = re.search(r'<div class="fm-grid" data-groups="([^"]*)" data-n="([^"]*)">', doc)
    assert json.loads(grid.group(1).replace("&quot;", '"')) == ["g1", "g2"] and json.loads(grid.group(2)) == [1, 1]
    assert doc.count("<svg") == 2
    empty = csvg.distributions_document(cf.distributions_figure(me.iloc[:0], ["g1"]))
    assert "No mechanism matches the filters" in empty and "<svg" not in empty
    assert csvg.distributions_min_width(cf.distributions_figure(me, ["g1", "g2"])) == 2 * csvg.DIST_MIN_CELL


def test_ternary_points_sit_at_their_frohlich_position_with_their_tooltip():
    # pure strike-slip, thrust and normal mechanisms: the three vertices
    me = _mechs([[0, 90, 0], [0, 45, 90], [0, 45, -90]], ["g1", "g2", "g3"])
    fig = cf.ternary_figure(me)
    svg = _svg(csvg.ternary_svg(fig))
    w, h, ox, oy, k = csvg.ternary_geometry(fig)
    # one scale on both axes, the whole axis ranges inside the drawing
    (x0, x1), (y0, y1) = fig["layout"]["xaxis"]["range"], fig["layout"]["yaxis"]["range"]
    for x, y in ((x0, y0), (x1, y1)):
        assert -0.01 <= ox + k * x <= w + 0.01 and -0.01 <= oy - k * y <= h + 0.01
    where = {"SS": "strike-slip", "TF": "thrust", "NF": "normal"}
    seen = {}
    for g in svg.findall(".//s:g[@class='fm-class']", NS):
        for c in g.findall("s:circle", NS):
            seen[g.get("data-class")] = (float(c.get("cx")), float(c.get("cy")), c.find("s:title", NS).text)
    assert set(seen) == set(where)
    for cls, vertex in where.items():
        vx, vy = FROHLICH_VERTICES[vertex]
        assert seen[cls][:2] == pytest.approx((ox + k * vx, oy - k * vy), abs=0.05)
        assert f"Zoback {cls}" in seen[cls][2] and "\n" in seen[cls][2]  # the figure's hover, line by line
    assert json.loads(svg.get("data-classes")) == {"SS": 1, "TF": 1, "NF": 1}
    assert svg.get("data-drawn") == "3"
    legend = [t.text for t in svg.findall(".//s:g[@class='fm-legend']/s:text", NS)]
    assert legend[0] == "Zoback (1992) class" and any(t.startswith("SS · strike-slip (1") for t in legend)
    assert len(svg.findall(".//s:path[@stroke-dasharray]", NS)) == 1  # the class limits


def test_ternary_document_of_no_mechanism_says_so():
    doc = csvg.ternary_document(cf.ternary_figure(_mechs([], []).iloc[:0]))
    assert "No mechanism matches the filters" in doc and 'data-classes="{}"' in doc
