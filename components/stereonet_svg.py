"""The group stereonets as server-drawn SVG (issue 12): the same drawing as
:func:`components.stereonet.stereonet_figure`, written as one static SVG per group instead of
a Plotly plot.

Why: plotly.js spent ~0.5 s of the main thread laying out the five-subplot stereonet grid
(ten path shapes per cell, colour bars, titles), while the browser draws the same paths as an
inline SVG in milliseconds. The stereonets have no zoom and their only hover is on the
average mechanism's P/B/T markers, which an SVG ``<title>`` tooltip keeps.

The SVG is *rendered from the figure dict* of :func:`~components.stereonet.stereonet_figure`
(not recomputed): its nodal-line path shapes (unit-radius data coordinates, one path per
deviation class), its frame, average fills, average planes, P/B/T markers (position,
colour, hover text), its title/subtitle, annotations and colour scale, so the numbers and
colours are those the Plotly figure had.

Geometry: one cell is :data:`CELL_W` x :data:`CELL_H` px (``viewBox``); the data frame
(x east, y north, the stereonet's range ``[-1.12, 1.12]`` on both axes, equal scale) fills
the cell's height between the figure's top and bottom margins, so the unit circle has radius
``R = (CELL_H - margin_t - margin_b) / (2 * 1.12)`` px around ``(cx, cy)``; a data point
``(x, y)`` is at ``(cx + R x, cy - R y)`` px (:func:`cell_geometry`, :func:`to_px`). Lines
keep their pixel widths under the scaling (``vector-effect: non-scaling-stroke``).

:func:`stereonet_grid_document` puts the cells in a grid (:data:`GRID_COLUMNS` per row) as
one HTML document, which the page shows in an ``iframe`` (``srcDoc``): Dash has no SVG
elements, and an inline SVG (unlike an ``<img>``) shows its ``<title>`` tooltips.
"""
from __future__ import annotations

import html as _html
import math
import re

import numpy as np

from .stereonet import _colorscale, svg_path

#: stereonets per row (the page's width at 1400 px shows three)
GRID_COLUMNS = 3
#: one stereonet cell (px): a third of the page's ~1,340 px card, the Plotly figure's height
CELL_W = 446
CELL_H = 380
#: px kept at the cell's right for the colour bar (its bar, ticks and title)
BAR_SPACE = 62
#: font of the page's figures (:data:`components.map_figure._TEMPLATE`)
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"

__all__ = ["cell_geometry", "to_px", "stereonet_svg", "stereonet_grid_document", "grid_height", "CELL_W", "CELL_H"]


def cell_geometry(fig: dict) -> tuple[float, float, float]:
    """(cx, cy, R) in px of a :func:`~components.stereonet.stereonet_figure` cell: the unit
    circle's centre and radius (see the module docstring)."""
    lay = fig["layout"]
    top, bottom = lay["margin"]["t"], lay["margin"]["b"]
    half = float(lay["yaxis"]["range"][1])               # 1.12: the frame's half extent
    r = (CELL_H - top - bottom) / (2.0 * half)
    cx = (CELL_W - BAR_SPACE) / 2.0 + 4.0
    cy = top + (CELL_H - top - bottom) / 2.0
    return cx, cy, r


def to_px(x, y, geometry) -> tuple[np.ndarray, np.ndarray]:
    """Data (unit radius, x east, y north) -> cell px (y down) for ``cell_geometry``'s tuple."""
    cx, cy, r = geometry
    return cx + r * np.asarray(x, dtype=float), cy - r * np.asarray(y, dtype=float)


def _esc(text) -> str:
    return _html.escape(str(text), quote=True)


_TAG = re.compile(r"(<b>|</b>)")


def _rich(line: str) -> str:
    """One line of a Plotly title (``<b>`` the only markup) as escaped SVG text with tspans."""
    out, bold = [], False
    for part in _TAG.split(line):
        if part == "<b>":
            bold = True
        elif part == "</b>":
            bold = False
        elif part:
            out.append(f'<tspan font-weight="700">{_esc(part)}</tspan>' if bold else _esc(part))
    return "".join(out)


def _nums(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def _colour_bar(trace: dict, geometry, uid: str) -> str:
    """The deviation colour scale (a marker colour bar in the figure) as a vertical gradient
    right of the circle, as long as the Plotly bar (``len`` of the plot height)."""
    bar = trace["marker"]["colorbar"]
    cx, cy, r = geometry
    plot_h = 2 * 1.12 * r
    h = float(bar.get("len", 1.0)) * plot_h
    x0, y0, w = cx + 1.12 * r + 6, cy - h / 2, float(bar.get("thickness", 10))
    cmin, cmax = float(trace["marker"]["cmin"]), float(trace["marker"]["cmax"])
    stops = "".join(f'<stop offset="{float(f):.4f}" stop-color="{_esc(c)}"/>' for f, c in _colorscale())
    parts = [f'<defs><linearGradient id="{uid}" x1="0" y1="1" x2="0" y2="0">{stops}</linearGradient></defs>',
             f'<rect class="fm-colorbar" x="{x0:.1f}" y="{y0:.1f}" width="{w:g}" height="{h:.1f}" '
             f'fill="url(#{uid})" stroke="#adb5bd" stroke-width="0.5"/>']
    for v, t in zip(bar["tickvals"], bar["ticktext"]):
        ty = y0 + h * (1 - (float(v) - cmin) / (cmax - cmin))
        parts.append(f'<text x="{x0 + w + 3:.1f}" y="{ty:.1f}" font-size="10" dominant-baseline="middle">'
                     f'{_esc(t)}</text>')
    tx, ty = x0 + w + 30, cy
    parts.append(f'<text x="{tx:.1f}" y="{ty:.1f}" font-size="12" text-anchor="middle" '
                 f'transform="rotate(90 {tx:.1f} {ty:.1f})">{_esc(bar["title"]["text"])}</text>')
    return "".join(parts)


def _line_path(trace: dict) -> str:
    return svg_path(_nums(trace["x"]), _nums(trace["y"]))


def _axes_markers(trace: dict, geometry) -> str:
    """P/B/T markers of the average (white circle, coloured ring and label) with their
    hover text as an SVG ``<title>`` tooltip (``<br>`` -> new line)."""
    px, py = to_px(_nums(trace["x"]), _nums(trace["y"]), geometry)
    colors = trace["marker"]["line"]["color"]
    size = float(trace["marker"]["size"])
    out = []
    for x, y, label, color, hover in zip(px, py, trace["text"], colors, trace["hovertext"]):
        tip = _esc(hover.replace("<br>", "\n"))
        out.append(f'<g class="fm-axis" data-axis="{_esc(label)}"><title>{tip}</title>'
                   f'<circle cx="{x:.2f}" cy="{y:.2f}" r="{size / 2:g}" fill="white" stroke="{_esc(color)}" '
                   f'stroke-width="{trace["marker"]["line"]["width"]:g}"/>'
                   f'<text x="{x + size / 2 + 1:.2f}" y="{y - size / 2 - 1:.2f}" font-size="13" '
                   f'fill="{_esc(color)}">{_esc(label)}</text></g>')
    return "".join(out)


def stereonet_svg(fig: dict, uid: str = "s0") -> str:
    """One :func:`~components.stereonet.stereonet_figure` as an SVG element (``viewBox`` of
    :data:`CELL_W` x :data:`CELL_H` px). ``uid`` makes the colour gradient's id unique in
    a document holding several. Data attributes: ``data-group``, ``data-n``, ``data-drawn``,
    ``data-cap`` (the figure's ``layout.meta``)."""
    lay, meta = fig["layout"], fig["layout"]["meta"]
    geo = cell_geometry(fig)
    cx, cy, r = geo
    nss = 'vector-effect="non-scaling-stroke"'
    # the data frame: unit radius, y north (flipped), stroke widths in px
    inner = []
    for s in lay.get("shapes", []):          # nodal lines, one path per colour class (below the traces)
        inner.append(f'<path class="fm-lines" data-name="{_esc(s.get("name", ""))}" d="{s["path"]}" fill="none" '
                     f'stroke="{_esc(s["line"]["color"])}" stroke-width="{s["line"]["width"]:g}" '
                     f'opacity="{s.get("opacity", 1):g}" stroke-linejoin="round" {nss}/>')
    outer, bar = [], ""
    for t in fig["data"]:
        if (t.get("marker") or {}).get("colorbar") is not None:
            bar = _colour_bar(t, geo, f"fm-dev-{_esc(uid)}")
        elif t.get("mode") == "lines":
            line = t.get("line", {})
            fill = _esc(t["fillcolor"]) if t.get("fill") == "toself" else "none"
            width = float(line.get("width", 1))
            stroke = f'stroke="{_esc(line.get("color", "#000"))}" stroke-width="{width:g}"' if width > 0 else \
                'stroke="none"'
            inner.append(f'<path data-name="{_esc(t.get("name", ""))}" d="{_line_path(t)}" fill="{fill}" '
                         f'{stroke} stroke-linejoin="round" {nss}/>')
        elif "markers" in t.get("mode", ""):
            outer.append(_axes_markers(t, geo))
    body = [f'<g transform="translate({cx:.2f} {cy:.2f}) scale({r:.4f} {-r:.4f})">{"".join(inner)}</g>']
    for a in lay.get("annotations", []):
        font = a.get("font", {})
        style = f'font-size="{font.get("size", 12)}" fill="{_esc(font.get("color", "#212529"))}"'
        if a.get("xref") == "x":              # data-anchored: "N" above the circle, "no mechanisms" at its centre
            ax, ay = to_px(a["x"], a["y"], geo)
            base = "auto" if a.get("yanchor") == "bottom" else "middle"
            body.append(f'<text x="{float(ax):.1f}" y="{float(ay):.1f}" text-anchor="middle" '
                        f'dominant-baseline="{base}" {style}>{_esc(a["text"])}</text>')
        else:                                 # the P/B/T note at the plot's bottom left
            body.append(f'<text class="fm-note" x="{cx - 1.12 * r:.1f}" y="{cy + 1.12 * r:.1f}" {style}>'
                        f'{_esc(a["text"])}</text>')
    body += outer
    title = lay["title"]
    sub = title.get("subtitle", {})
    heads = [f'<text class="fm-title" x="8" y="20" font-size="{title.get("font", {}).get("size", 14)}">'
             f'{_rich(title["text"])}</text>']
    sub_font = sub.get("font", {})
    for i, line in enumerate(str(sub.get("text", "")).split("<br>") if sub.get("text") else []):
        heads.append(f'<text class="fm-subtitle" x="8" y="{38 + 14 * i}" font-size="{sub_font.get("size", 11)}" '
                     f'fill="{_esc(sub_font.get("color", "#6c757d"))}">{_rich(line)}</text>')
    attrs = " ".join(f'data-{k}="{_esc(meta[k])}"' for k in ("group", "n", "drawn", "cap") if k in meta)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="fm-stereonet" viewBox="0 0 {CELL_W} {CELL_H}" '
            f'{attrs} font-family="{_esc(FONT)}" fill="#212529">' + "".join(heads) + "".join(body) + bar + "</svg>")


def stereonet_grid_document(figures: list[dict], columns: int = GRID_COLUMNS) -> str:
    """An HTML document of the stereonets (:func:`stereonet_svg` each), ``columns`` per row in
    the given order, each cell :data:`CELL_H` px high and a ``1/columns`` share of the width
    (the SVG scales to it, keeping its aspect). Height: :func:`grid_height`."""
    cells = "".join(stereonet_svg(f, f"s{i}") for i, f in enumerate(figures))
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><style>'
            f"html,body{{margin:0;background:white}}"
            f".fm-grid{{display:grid;grid-template-columns:repeat({max(1, int(columns))},1fr)}}"
            f".fm-grid svg{{display:block;width:100%;height:{CELL_H}px}}"
            f'</style></head><body><div class="fm-grid">{cells}</div></body></html>')


def grid_height(n: int, columns: int = GRID_COLUMNS) -> int:
    """Height (px) of :func:`stereonet_grid_document` with ``n`` stereonets."""
    return max(1, math.ceil(n / max(1, int(columns)))) * CELL_H
