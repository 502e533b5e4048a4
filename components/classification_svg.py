"""The classification page's strike/dip/rake distributions and Frohlich ternary diagram as
server-drawn SVG (issue 12), like the stereonets (:mod:`components.stereonet_svg`).

Why: on a cold ToC2ME load plotly.js spent ~0.27 s of the main thread on the distributions
(five groups: fifteen polar and cartesian subplots) and ~0.18 s on the ternary diagram (2,519
SVG markers), of a page that had the least margin to the 2 s target (``trace_load.py``);
the browser draws the same rectangles, wedges and circles from static SVG in milliseconds.
Neither figure zooms in a useful way; what Plotly's hover said (a bin's range and count, a
mechanism's id, group, P/B/T plunges and class) is each element's SVG ``<title>`` tooltip.

Both are *rendered from the figure dicts* of
:func:`~components.classification_figures.distributions_figure` and
:func:`~components.classification_figures.ternary_figure`, not recomputed: the counts, bin
centres and widths, colours, Frohlich coordinates, class limits, legend names and hover
texts are the figure's, so the tests of those functions cover the numbers drawn here.

Geometry, per group cell of the distributions (:data:`DIST_CELL_W` x :data:`DIST_H` px
``viewBox``): the rose (strike clockwise from north, north up; radius proportional to the
count, the outer circle at the round count just above the largest bin), then the dip (0-90
deg) and rake (-180..180 deg)
histograms, each bar one bin wide less the figure's ``bargap``. The ternary diagram keeps
equal scales on both axes (the figure's ``scaleanchor``): data ``(x, y)`` is at
``(ox + k x, oy - k y)`` px (:func:`ternary_geometry`).
"""
from __future__ import annotations

import base64
import json
import math

import numpy as np

from .stereonet_svg import FONT, _esc, _rich

#: one group's cell of the distributions (px, viewBox): rose above, dip and rake histograms below
DIST_CELL_W = 260
DIST_H = 560
#: narrowest a cell is shown before the document scrolls sideways (px)
DIST_MIN_CELL = 200
#: the ternary diagram (px, viewBox)
TERNARY_W = 600
AXIS_COLOR = "#adb5bd"
GRID_COLOR = "#eceff1"
TEXT_COLOR = "#212529"
MUTED = "#868e96"


def values(spec) -> np.ndarray:
    """A figure array as float64: a plain list (None = NaN) or a typed-array spec
    (``{"dtype", "bdata"}``, :func:`components.map_figure.typed`)."""
    if isinstance(spec, dict):
        return np.frombuffer(base64.b64decode(spec["bdata"]), dtype=np.dtype(spec["dtype"]).newbyteorder("<")
                             ).astype(float)
    return np.array([np.nan if v is None else float(v) for v in spec], dtype=float)


def nice_ticks(top: float, n: int = 4) -> list[float]:
    """Ticks of a count axis: 0 and steps of 1, 2 or 5 x 10^k (at least 1: counts are whole),
    the smallest step that reaches ``top`` in at most ``n`` steps; the last tick is the axis top."""
    if not top > 0:
        return [0.0, 1.0]
    mag = 10.0 ** math.floor(math.log10(max(top / n, 1.0)))
    step = next(m * mag for m in (1, 2, 5, 10, 20, 50) if math.ceil(top / (m * mag) - 1e-9) <= n)
    return [float(i * step) for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def _num(v: float) -> str:
    return f"{v:g}" if abs(v) < 1e5 else f"{v:,.0f}"


def _document(body: str, style: str) -> str:
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>html,body{margin:0;background:white}'
            f'{style}</style></head><body>{body}</body></html>')


# -- distributions -----------------------------------------------------------------------------
def _rose(trace: dict, cx: float, cy: float, radius: float, ring_max: float) -> str:
    """Wedges of a ``barpolar`` trace (theta: bin centres, deg clockwise from north; r: counts)."""
    r = values(trace["r"])
    theta = values(trace["theta"])
    width = values(trace["width"])
    color = _esc(trace["marker"]["color"])
    name = trace.get("name", "")
    out = []
    for count, centre, w in zip(r, theta, width):
        if not count > 0:
            continue
        rr = radius * count / ring_max
        a0, a1 = math.radians(centre - w / 2), math.radians(centre + w / 2)
        x0, y0 = cx + rr * math.sin(a0), cy - rr * math.cos(a0)
        x1, y1 = cx + rr * math.sin(a1), cy - rr * math.cos(a1)
        tip = f"{name}\nstrike axis {centre:g}° ± {w / 2:g}°\n{count:.0f} events"
        out.append(f'<path class="fm-wedge" d="M{cx:.2f},{cy:.2f}L{x0:.2f},{y0:.2f}A{rr:.2f},{rr:.2f} 0 0 1 '
                   f'{x1:.2f},{y1:.2f}Z" fill="{color}" stroke="white" stroke-width="0.6">'
                   f'<title>{_esc(tip)}</title></path>')
    return "".join(out)


def _rose_frame(cx: float, cy: float, radius: float, ticks: list[float], ring_max: float) -> str:
    parts = []
    for t in ticks[1:]:
        rr = radius * t / ring_max
        parts.append(f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{rr:.2f}" fill="none" stroke="#e9ecef"/>')
        # along the east spoke, below it (plotly.js's radial axis of the figure, angle 90)
        parts.append(f'<text x="{cx + rr - 2:.2f}" y="{cy + 9:.2f}" font-size="8" text-anchor="end" '
                     f'fill="{MUTED}">{_num(t)}</text>')
    for deg in range(0, 360, 45):
        a = math.radians(deg)
        parts.append(f'<line x1="{cx:.2f}" y1="{cy:.2f}" x2="{cx + radius * math.sin(a):.2f}" '
                     f'y2="{cy - radius * math.cos(a):.2f}" stroke="#e9ecef"/>')
    parts.append(f'<circle cx="{cx:.2f}" cy="{cy:.2f}" r="{radius:.2f}" fill="none" stroke="{AXIS_COLOR}"/>')
    for label, deg in (("N", 0), ("E", 90), ("S", 180), ("W", 270)):
        a = math.radians(deg)
        x, y = cx + (radius + 9) * math.sin(a), cy - (radius + 9) * math.cos(a)
        parts.append(f'<text x="{x:.2f}" y="{y:.2f}" font-size="10" text-anchor="middle" '
                     f'dominant-baseline="middle">{label}</text>')
    return "".join(parts)


def _histogram(trace: dict, axis: dict, box: tuple[float, float, float, float], bargap: float) -> str:
    """Bars of a ``bar`` trace (x: bin centres, y: counts) in ``box`` = (left, top, width,
    height) px, with the axis frame, x ticks (``axis['tickvals']``), y grid and title."""
    left, top, w, h = box
    x, y = values(trace["x"]), values(trace["y"])
    bin_w = float(trace["width"])
    lo, hi = (float(v) for v in axis["range"])
    ymax = float(np.nanmax(y)) if len(y) and np.nanmax(y) > 0 else 1.0
    yt = nice_ticks(ymax)
    ytop = yt[-1]

    def px(v):
        return left + w * (v - lo) / (hi - lo)

    def py(v):
        return top + h * (1 - v / ytop)
    parts = []
    for t in yt:
        parts.append(f'<line x1="{left:.1f}" x2="{left + w:.1f}" y1="{py(t):.2f}" y2="{py(t):.2f}" '
                     f'stroke="{GRID_COLOR}"/>')
        parts.append(f'<text x="{left - 3:.1f}" y="{py(t):.2f}" font-size="9" text-anchor="end" '
                     f'dominant-baseline="middle">{_num(t)}</text>')
    color = _esc(trace["marker"]["color"])
    name = trace.get("name", "")
    kind = axis["title"]["text"].split(" ")[0].lower()
    for centre, count in zip(x, y):
        if not count > 0:
            continue
        x0, x1 = px(centre - bin_w * (1 - bargap) / 2), px(centre + bin_w * (1 - bargap) / 2)
        tip = f"{name}\n{kind} {centre:g}° ± {bin_w / 2:g}°\n{count:.0f} events"
        parts.append(f'<rect class="fm-bar" x="{x0:.2f}" y="{py(count):.2f}" width="{x1 - x0:.2f}" '
                     f'height="{py(0) - py(count):.2f}" fill="{color}"><title>{_esc(tip)}</title></rect>')
    parts.append(f'<rect x="{left:.1f}" y="{top:.1f}" width="{w:.1f}" height="{h:.1f}" fill="none" '
                 f'stroke="{AXIS_COLOR}"/>')
    for t in axis["tickvals"]:
        parts.append(f'<line x1="{px(t):.2f}" x2="{px(t):.2f}" y1="{top + h:.1f}" y2="{top + h + 4:.1f}" '
                     f'stroke="{AXIS_COLOR}"/><text x="{px(t):.2f}" y="{top + h + 14:.1f}" font-size="10" '
                     f'text-anchor="middle">{_num(float(t))}</text>')
    parts.append(f'<text x="{left + w / 2:.1f}" y="{top + h + 28:.1f}" font-size="11" text-anchor="middle">'
                 f'{_esc(axis["title"]["text"])}</text>')
    return "".join(parts)


def distribution_cells(fig: dict) -> list[str]:
    """One SVG per group of a :func:`~components.classification_figures.distributions_figure`
    (its ``layout.meta`` groups, in order): rose, dip and rake histograms. Each ``<svg>``
    has ``data-group`` and ``data-n``."""
    lay = fig["layout"]
    meta = lay.get("meta") or {}
    bargap = float(lay.get("bargap", 0.0))
    cells = []
    for j, (group, n) in enumerate(zip(meta.get("groups", []), meta.get("n", []))):
        rose, dip, rake = fig["data"][3 * j: 3 * j + 3]
        suffix = lambda k: "" if k == 1 else str(k)  # noqa: E731 - plotly's axis naming
        dip_axis, rake_axis = lay[f"xaxis{suffix(2 * j + 1)}"], lay[f"xaxis{suffix(2 * j + 2)}"]
        cx, cy, radius = DIST_CELL_W / 2, 156.0, 104.0
        r = values(rose["r"])
        ticks = nice_ticks(float(np.nanmax(r)) if len(r) and np.nanmax(r) > 0 else 1.0, 3)
        ring_max = ticks[-1]
        box = lambda top: (34.0, top, DIST_CELL_W - 44.0, 88.0)  # noqa: E731
        body = [f'<text class="fm-title" x="{DIST_CELL_W / 2:g}" y="20" font-size="13" text-anchor="middle">'
                f'<tspan font-weight="700">{_esc(group)}</tspan> · {int(n):,}</text>',
                _rose_frame(cx, cy, radius, ticks, ring_max), _rose(rose, cx, cy, radius, ring_max),
                _histogram(dip, dip_axis, box(300.0), bargap), _histogram(rake, rake_axis, box(430.0), bargap)]
        cells.append(f'<svg xmlns="http://www.w3.org/2000/svg" class="fm-dist" viewBox="0 0 {DIST_CELL_W} {DIST_H}" '
                     f'data-group="{_esc(group)}" data-n="{int(n)}" font-family="{_esc(FONT)}" fill="{TEXT_COLOR}">'
                     + "".join(body) + "</svg>")
    return cells


def distributions_document(fig: dict) -> str:
    """An HTML document of :func:`distribution_cells` side by side (a column per group, at
    least :data:`DIST_MIN_CELL` px each), or the figure's message when it has no groups.
    The grid's ``data-groups`` and ``data-n`` are the figure's ``layout.meta`` (JSON)."""
    meta = fig["layout"].get("meta") or {}
    cells = distribution_cells(fig)
    if not cells:
        return _document(f'<p class="fm-empty">{_esc(_message(fig))}</p>',
                         f"p{{font-family:{FONT};color:#666;text-align:center;margin-top:40px}}")
    attrs = (f'data-groups="{_esc(json.dumps(meta.get("groups", [])))}" '
             f'data-n="{_esc(json.dumps(meta.get("n", [])))}"')
    return _document(f'<div class="fm-grid" {attrs}>{"".join(cells)}</div>',
                     f".fm-grid{{display:grid;grid-template-columns:repeat({len(cells)},minmax({DIST_MIN_CELL}px,1fr))}}"
                     f".fm-grid svg{{display:block;width:100%;height:{DIST_H}px}}")


def distributions_min_width(fig: dict) -> int:
    """Narrowest width (px) :func:`distributions_document` is shown at before it scrolls."""
    return max(1, len((fig["layout"].get("meta") or {}).get("groups", []))) * DIST_MIN_CELL


def _message(fig: dict) -> str:
    for a in fig["layout"].get("annotations", []):
        return str(a.get("text", ""))
    return ""


# -- ternary -----------------------------------------------------------------------------------
def ternary_geometry(fig: dict) -> tuple[float, float, float, float, float]:
    """(width, height, ox, oy, k) px of a :func:`~components.classification_figures.ternary_figure`:
    data ``(x, y)`` is at ``(ox + k x, oy - k y)``; the axis ranges fit inside the margins
    at one scale ``k`` and are centred."""
    lay = fig["layout"]
    w, h = float(TERNARY_W), float(lay.get("height", 440))
    m = lay.get("margin", {})
    (x0, x1), (y0, y1) = lay["xaxis"]["range"], lay["yaxis"]["range"]
    inner_w, inner_h = w - m.get("l", 0) - m.get("r", 0), h - m.get("t", 0) - m.get("b", 0)
    k = min(inner_w / (x1 - x0), inner_h / (y1 - y0))
    ox = m.get("l", 0) + inner_w / 2 - k * (x0 + x1) / 2
    oy = m.get("t", 0) + inner_h / 2 + k * (y0 + y1) / 2
    return w, h, ox, oy, k


def _lines(trace: dict, ox: float, oy: float, k: float) -> str:
    x, y = values(trace["x"]), values(trace["y"])
    d, pen = [], "M"
    for a, b in zip(x, y):
        if not (math.isfinite(a) and math.isfinite(b)):
            pen = "M"
            continue
        d.append(f"{pen}{ox + k * a:.2f},{oy - k * b:.2f}")
        pen = "L"
    line = trace.get("line", {})
    dash = ' stroke-dasharray="5 4"' if line.get("dash") == "dash" else ""
    return (f'<path data-name="{_esc(trace.get("name", ""))}" d="{"".join(d)}" fill="none" '
            f'stroke="{_esc(line.get("color", "#000"))}" stroke-width="{float(line.get("width", 1)):g}"{dash}/>')


def _points(trace: dict, ox: float, oy: float, k: float, cls: str) -> str:
    x, y = values(trace["x"]), values(trace["y"])
    marker = trace["marker"]
    r = float(marker.get("size", 6)) / 2
    circles = []
    for a, b, tip in zip(x, y, trace.get("text") or [""] * len(x)):
        circles.append(f'<circle cx="{ox + k * a:.2f}" cy="{oy - k * b:.2f}" r="{r:g}">'
                       f'<title>{_esc(str(tip).replace("<br>", chr(10)))}</title></circle>')
    return (f'<g class="fm-class" data-class="{_esc(cls)}" fill="{_esc(marker["color"])}" '
            f'fill-opacity="{float(marker.get("opacity", 1)):g}">' + "".join(circles) + "</g>")


def ternary_svg(fig: dict) -> str:
    """The ternary figure as one SVG: triangle, Frohlich's class limits (dashed), a circle per
    mechanism coloured by Zoback class (tooltip: the figure's hover text), the vertex labels
    and the legend (class names with counts). ``data-classes`` is ``layout.meta['classes']``
    (JSON), ``data-drawn`` its ``drawn``."""
    lay = fig["layout"]
    meta = lay.get("meta") or {}
    w, h, ox, oy, k = ternary_geometry(fig)
    lines, points, legend = [], [], []
    for t in fig["data"]:
        if t.get("mode") == "lines":
            lines.append(_lines(t, ox, oy, k))
        elif "markers" in t.get("mode", ""):
            cls = str(t.get("name", "")).split(" ")[0]
            points.append(_points(t, ox, oy, k, cls))
            legend.append((t["marker"]["color"], t.get("name", "")))
    notes = []
    for a in lay.get("annotations", []):
        font = a.get("font", {})
        ax, ay = ox + k * float(a["x"]), oy - k * float(a["y"]) - float(a.get("yshift", 0))
        base = {"bottom": "auto", "top": "hanging"}.get(a.get("yanchor"), "middle")
        notes.append(f'<text x="{ax:.1f}" y="{ay:.1f}" text-anchor="middle" dominant-baseline="{base}" '
                     f'font-size="{font.get("size", 12)}" fill="{_esc(font.get("color", TEXT_COLOR))}">'
                     f'{_rich(str(a["text"]))}</text>')
    if legend:
        title = ((lay.get("legend") or {}).get("title") or {}).get("text", "")
        rows = [f'<text x="10" y="22" font-size="11">{_esc(title)}</text>']
        for i, (color, name) in enumerate(legend):
            y = 40 + 17 * i
            rows.append(f'<circle cx="17" cy="{y - 4}" r="4" fill="{_esc(color)}"/>'
                        f'<text x="27" y="{y}" font-size="11">{_esc(name)}</text>')
        notes.append(f'<g class="fm-legend">{"".join(rows)}</g>')
    classes = _esc(json.dumps(meta.get("classes", {})))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="fm-ternary" viewBox="0 0 {w:g} {h:g}" '
            f'data-classes="{classes}" data-drawn="{int(meta.get("drawn", 0))}" font-family="{_esc(FONT)}" '
            f'fill="{TEXT_COLOR}">' + "".join(lines) + "".join(points) + "".join(notes) + "</svg>")


def ternary_document(fig: dict) -> str:
    """An HTML document holding :func:`ternary_svg`, as wide as its frame (aspect kept)."""
    h = float(fig["layout"].get("height", 440))
    return _document(ternary_svg(fig), f"svg{{display:block;width:100%;height:{h:g}px}}")
