"""Figures of a selection's composite mechanism and stress inversion (classification page), as
pure functions of plain results (no Dash, no DuckDB, no SKHASH).

Projection everywhere: lower hemisphere, equal area (Schmidt), unit radius, x east, y north
(:func:`components.beachball.project_vectors`), as the beachballs and group stereonets.

* :func:`composite_figure` - the composite mechanism of
  :func:`pipeline.mechanisms.composite.composite_of_selection`: compressional quadrants
  filled, both nodal planes bold, the acceptable planes of SKHASH's grid search as thin
  grey nodal lines (at most :data:`ACCEPTABLE_CAP`, a fixed evenly spaced subset), every
  pooled ray at its own takeoff/azimuth (filled: compression / up, open: dilatation / down;
  red edge: disagrees with the composite), and - for comparison - the moment-tensor average
  of the selection's mechanisms as dashed nodal lines.
* :func:`stress_figure` - a :class:`pipeline.analysis.stress.Bootstrap`: the bootstrap
  σ1/σ2/σ3 directions as clouds of small dots, the best axes as large labelled markers, and
  SHmax as a dashed diameter; R and SHmax with their 95 % intervals in the subtitle.

Both return a Plotly figure dict whose ``layout.meta`` carries the numbers shown (what the
page caption and the tests read).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.mechanisms import focal

from .beachball import compressional_patches, nodal_line, project_vectors
from .map_figure import _TEMPLATE
from .stereonet import _frame_traces  # the same primitive circle and ticks as the stereonets

#: most acceptable planes drawn
ACCEPTABLE_CAP = 200
#: stress axis colours (σ1 most compressive)
SIGMA_COLORS = {"sigma1": "#c0392b", "sigma2": "#27ae60", "sigma3": "#2c6fbb"}
SIGMA_LABELS = {"sigma1": "σ1", "sigma2": "σ2", "sigma3": "σ3"}
COMPOSITE_COLOR = "#6f42c1"
AVERAGE_COLOR = "#e67e22"

__all__ = ["composite_figure", "stress_figure", "message_figure", "ACCEPTABLE_CAP"]


def _layout(title: str, subtitle: str, meta: dict, height: int, annotations=()) -> dict:
    axis = {"visible": False, "range": [-1.12, 1.12], "fixedrange": True}
    return {
        "template": _TEMPLATE,
        "title": {"text": title, "subtitle": {"text": subtitle, "font": {"size": 11, "color": "#6c757d"}},
                  "x": 0.02, "xanchor": "left", "y": 0.98, "yanchor": "top", "font": {"size": 14}},
        "xaxis": {**axis}, "yaxis": {**axis, "scaleanchor": "x", "scaleratio": 1.0},
        "margin": {"l": 8, "r": 8, "t": 74, "b": 14}, "height": height, "showlegend": True,
        "legend": {"orientation": "h", "y": -0.02, "yanchor": "top", "x": 0.5, "xanchor": "center",
                   "font": {"size": 10}},
        "hovermode": "closest", "meta": meta,
        "annotations": [{"text": "N", "x": 0, "y": 1.04, "xref": "x", "yref": "y", "showarrow": False,
                         "yanchor": "bottom", "font": {"size": 11, "color": "#343a40"}}, *annotations],
    }


def message_figure(text: str, height: int = 380) -> dict:
    """An empty stereonet-sized figure showing ``text`` (loading, nothing to show)."""
    axis = {"visible": False, "range": [-1, 1], "fixedrange": True}
    return {"data": [], "layout": {"template": _TEMPLATE, "xaxis": axis, "yaxis": axis, "height": height,
                                   "margin": {"l": 8, "r": 8, "t": 8, "b": 8}, "meta": {"message": text},
                                   "annotations": [{"text": text, "x": 0, "y": 0, "showarrow": False,
                                                    "font": {"size": 13, "color": "#666"}}]}}


def _planes_xy(planes, n=91):
    xs, ys = [], []
    for s, d in planes:
        x, y = nodal_line(float(s), float(d), n)
        xs += np.round(x, 5).tolist() + [None]
        ys += np.round(y, 5).tolist() + [None]
    return xs, ys


def _finite(*vals) -> bool:
    try:
        return all(math.isfinite(float(v)) for v in vals)
    except (TypeError, ValueError):
        return False


def composite_figure(mechanism: dict, rays: pd.DataFrame | None = None,
                     acceptable: pd.DataFrame | None = None, average: dict | None = None, *,
                     height: int = 420, cap: int = ACCEPTABLE_CAP) -> dict:
    """The composite mechanism stereonet (Plotly figure dict).

    ``mechanism``: ``strike, dip, rake`` (plane 1, deg, Aki & Richards), ``strike2, dip2``
    (auxiliary plane), ``quality``, ``n_events``, ``n_polarities`` (as
    :func:`pipeline.mechanisms.invert.composite` returns it). ``rays``: ``takeoff_deg``
    (from the **downward** vertical), ``azimuth_deg`` (clockwise from north), ``polarity``
    (+1 compression), ``pol_agreement``, ``event_id``, ``station``. ``acceptable``:
    ``strike, dip`` of SKHASH's acceptable planes. ``average``: the moment-tensor average of
    the selection's mechanisms (``strike, dip, rake, strike2, dip2``, ``n``) or None.

    ``layout.meta``: ``strike, dip, rake, quality, n_events, n_polarities, n_rays,
    n_disagree, n_acceptable, acceptable_drawn, kagan_to_average`` (deg; None without an
    average).
    """
    s, d, r = (float(mechanism[k]) for k in ("strike", "dip", "rake"))
    traces = _frame_traces()
    for px, py in compressional_patches(s, d, r, n_points=90):
        traces.append({"type": "scatter", "x": np.round(px, 5).tolist(), "y": np.round(py, 5).tolist(),
                       "mode": "lines", "fill": "toself", "fillcolor": "rgba(111,66,193,0.20)",
                       "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False,
                       "name": "composite (compressional)"})
    acc = acceptable if acceptable is not None else pd.DataFrame(columns=["strike", "dip"])
    n_acc = int(len(acc))
    drawn = acc
    if n_acc > cap:
        drawn = acc.iloc[np.linspace(0, n_acc - 1, cap).round().astype(int)]
    if len(drawn):
        x, y = _planes_xy(zip(drawn["strike"], drawn["dip"]), n=41)
        traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines", "line": {"color": "#9aa0a6", "width": 0.6},
                       "opacity": 0.5, "hoverinfo": "skip", "name": f"acceptable planes ({n_acc:,})"})
    planes = [(s, d)]
    if _finite(mechanism.get("strike2"), mechanism.get("dip2")):
        planes.append((float(mechanism["strike2"]), float(mechanism["dip2"])))
    x, y = _planes_xy(planes)
    traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines", "line": {"color": "black", "width": 2.6},
                   "hoverinfo": "skip", "name": f"composite {s:.0f}/{d:.0f}/{r:.0f}"})

    kagan = None
    if average and _finite(average.get("strike"), average.get("dip"), average.get("rake")):
        a = tuple(float(average[k]) for k in ("strike", "dip", "rake"))
        kagan = float(focal.kagan_angle((s, d, r), a))
        aplanes = [a[:2]]
        if _finite(average.get("strike2"), average.get("dip2")):
            aplanes.append((float(average["strike2"]), float(average["dip2"])))
        x, y = _planes_xy(aplanes)
        traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines",
                       "line": {"color": AVERAGE_COLOR, "width": 2, "dash": "dash"}, "hoverinfo": "skip",
                       "name": f"MT average {a[0]:.0f}/{a[1]:.0f}/{a[2]:.0f}"})

    n_rays = n_bad = 0
    if rays is not None and len(rays):
        v = focal.ray_vector(rays["takeoff_deg"].to_numpy(float), rays["azimuth_deg"].to_numpy(float), "down")
        px, py = project_vectors(v)
        up = rays["polarity"].to_numpy() > 0
        agree = rays["pol_agreement"].to_numpy(bool) if "pol_agreement" in rays else np.ones(len(rays), bool)
        n_rays, n_bad = int(len(rays)), int((~agree).sum())
        ev = rays["event_id"].astype(str).to_numpy() if "event_id" in rays else np.full(len(rays), "")
        st = rays["station"].astype(str).to_numpy() if "station" in rays else np.full(len(rays), "")
        for sel, name, symbol in ((up, "compression (up)", "circle"), (~up, "dilatation (down)", "circle-open")):
            if not sel.any():
                continue
            edge = np.where(agree[sel], "#212529", "#d62728").tolist()
            traces.append({
                "type": "scatter", "x": np.round(px[sel], 4).tolist(), "y": np.round(py[sel], 4).tolist(),
                "mode": "markers", "name": name,
                "marker": {"symbol": symbol, "size": 5, "color": "#212529" if symbol == "circle" else edge,
                           "line": {"color": edge, "width": 1}},
                "text": [f"{e} · {t}" for e, t in zip(ev[sel], st[sel])],
                "hovertemplate": "%{text}<br>" + name + "<extra></extra>",
            })
    meta = {"strike": s, "dip": d, "rake": r, "quality": mechanism.get("quality"),
            "n_events": mechanism.get("n_events"), "n_polarities": mechanism.get("n_polarities"),
            "n_rays": n_rays, "n_disagree": n_bad, "n_acceptable": n_acc, "acceptable_drawn": int(len(drawn)),
            "kagan_to_average": kagan}
    title = f"<b>Composite</b> {s:.0f}/{d:.0f}/{r:.0f} · quality {mechanism.get('quality', '–')}"
    sub = (f"{mechanism.get('n_polarities', n_rays):,} polarities of {mechanism.get('n_events', 0):,} events · "
           f"{n_bad:,} disagree (red edge)")
    if kagan is not None:
        sub += f"<br>Kagan {kagan:.0f}° to the MT average of {int(average.get('n', 0)):,} mechanisms (dashed)"
    if len(drawn) < n_acc:
        sub += f" · {len(drawn)} of {n_acc:,} acceptable planes drawn"
    return {"data": traces, "layout": _layout(title, sub, meta, height)}


def _interval(lo, hi, spec=".2f", unit="") -> str:
    if not _finite(lo, hi):
        return "–"
    return f"[{format(lo, spec)}{unit}, {format(hi, spec)}{unit}]"


def stress_figure(boot, n_used: int, n_selected: int | None = None, *, height: int = 420,
                  cloud_cap: int = 500) -> dict:
    """Stereonet of a stress inversion (Plotly figure dict).

    ``boot``: a :class:`pipeline.analysis.stress.Bootstrap` (best axes σ1 ≥ σ2 ≥ σ3,
    compression positive, unit NED vectors; bootstrap axes ``(B, 3, 3)``). ``n_used``:
    mechanisms inverted; ``n_selected``: mechanisms of the selection before any cap.
    At most ``cloud_cap`` bootstrap resamples are drawn per axis.

    ``layout.meta``: ``sigma1/2/3`` ({trend, plunge, radius95_deg}), ``R``, ``R_interval95``,
    ``shmax_deg``, ``shmax_interval95``, ``bootstrap``, ``n_used``, ``n_selected``.
    """
    from pipeline.analysis.stress import AXES

    best = boot.best
    tp = best.trend_plunge()
    traces = _frame_traces()
    # SHmax: a horizontal axis, drawn as a dashed diameter
    if _finite(best.shmax):
        a = math.radians(best.shmax)
        traces.append({"type": "scatter", "x": [-math.sin(a), math.sin(a)], "y": [-math.cos(a), math.cos(a)],
                       "mode": "lines", "line": {"color": "#495057", "width": 1.6, "dash": "dash"},
                       "hoverinfo": "skip", "name": f"SHmax {best.shmax:.0f}°"})
    axes = np.asarray(boot.axes)
    if len(axes) > cloud_cap:
        axes = axes[:cloud_cap]
    for i, name in enumerate(AXES):
        if len(axes):
            x, y = project_vectors(axes[:, i, :])
            traces.append({"type": "scatter", "x": np.round(x, 4).tolist(), "y": np.round(y, 4).tolist(),
                           "mode": "markers", "marker": {"size": 3, "color": SIGMA_COLORS[name], "opacity": 0.35},
                           "hoverinfo": "skip", "showlegend": False, "name": f"{SIGMA_LABELS[name]} bootstrap"})
    xs, ys, text, hover, colors = [], [], [], [], []
    for i, name in enumerate(AXES):
        x, y = project_vectors(best.axes[i])
        xs.append(round(float(x), 5))
        ys.append(round(float(y), 5))
        text.append(SIGMA_LABELS[name])
        colors.append(SIGMA_COLORS[name])
        tr, pl = tp[name]
        hover.append(f"{SIGMA_LABELS[name]}: trend {tr:.0f}°, plunge {pl:.0f}°<br>95 % cone {boot.radius[name]:.0f}°")
    traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "markers+text", "text": text,
                   "textposition": "top right", "textfont": {"size": 14, "color": colors},
                   "marker": {"size": 11, "color": colors, "symbol": ["square", "diamond", "circle"],
                              "line": {"color": "white", "width": 1.5}},
                   "hovertext": hover, "hoverinfo": "text", "name": "σ1 σ2 σ3 (best)"})
    meta = {name: {"trend": float(tp[name][0]), "plunge": float(tp[name][1]),
                   "radius95_deg": float(boot.radius[name])} for name in AXES}
    meta.update(R=float(best.r), R_interval95=[float(v) for v in boot.r_interval], shmax_deg=float(best.shmax),
                shmax_interval95=[float(v) for v in boot.shmax_interval], bootstrap=int(len(boot.r)),
                n_used=int(n_used), n_selected=None if n_selected is None else int(n_selected),
                friction=float(best.friction))
    title = (f"<b>Stress</b> · R = {best.r:.2f} {_interval(*boot.r_interval)} · "
             f"SHmax = {best.shmax:.0f}° {_interval(*boot.shmax_interval, spec='.0f', unit='°')}")
    sub = (f"{n_used:,} mechanisms" + (f" (of {n_selected:,})" if n_selected and n_selected > n_used else "")
           + f" · {len(boot.r):,} bootstrap resamples (clouds) · Michael + Vavryčuk, μ = {best.friction:g}"
           + "<br>95 % cones: " + ", ".join(f"{SIGMA_LABELS[a]} {boot.radius[a]:.0f}°" for a in AXES
                                           if _finite(boot.radius[a])))
    return {"data": traces, "layout": _layout(title, sub, meta, height)}
