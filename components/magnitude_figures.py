"""Figures and numbers of the magnitudes page, as pure functions (no Dash, no DuckDB).

* :func:`fmd_analysis`: the frequency-magnitude distribution (FMD) of a selection, its
  completeness magnitude by maximum curvature (MAXC + correction) *and* by the
  goodness-of-fit test (GFT), and the Aki-Utsu b-value / a-value for the chosen method --
  all from :mod:`pipeline.analysis.magnitudes` (nothing re-implemented here);
* :func:`magnitude_time_figure`: ML against time (all catalogue events vs the resolved
  mechanisms, marker area ``(ML + 3) * 8`` like the original) with a horizontal
  histogram at 0.1-ML bins sharing the ML axis;
* :func:`fmd_figure`: the FMD (non-cumulative and cumulative counts, log y) with the
  fitted Gutenberg-Richter line and the Mc markers;
* :func:`fmd_table`: the FMD as the CSV the page offers; :func:`summary_items`: the
  rows of the results card.

Figures are plain dicts (``{"data": [...], "layout": {...}}``) like the map's; large
numeric arrays are typed arrays (:func:`components.map_figure.typed`).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.analysis import magnitudes as mag

from .map_figure import _AXIS, _TEMPLATE, TOP_LEGEND_PX, empty_figure, typed

#: Mc methods offered by the page: value -> label
METHODS = {
    "maxc": "Maximum curvature + correction",
    "gft": "Goodness of fit (95 %, else 90 %, else MAXC)",
    "gft95": "Goodness of fit, R ≥ 95 %",
    "gft90": "Goodness of fit, R ≥ 90 %",
    "fixed": "Fixed Mc",
}
POPULATIONS = {"all": "All events", "resolved": "Resolved mechanisms"}
DEFAULT_METHOD = "maxc"
DEFAULT_CORRECTION = 0.2
BIN_WIDTH = 0.1

ALL_COLOR = "rgb(120,128,136)"
RESOLVED_COLOR = "rgb(214,0,143)"
FIT_COLOR = "rgb(13,110,253)"
MC_COLOR = "rgb(25,135,84)"
OTHER_MC_COLOR = "rgb(108,117,125)"


def _finite(x) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


# -- numbers ------------------------------------------------------------------------------------
def fmd_analysis(mags, method: str = DEFAULT_METHOD, correction: float = DEFAULT_CORRECTION,
                 fixed_mc: float | None = None, bin_width: float = BIN_WIDTH) -> dict:
    """Everything the FMD panel shows, for the magnitudes ``mags`` (NaNs ignored).

    Returns ``{'fmd', 'result', 'maxc', 'gft', 'method', 'n_nan'}``: ``fmd`` is
    :func:`~pipeline.analysis.magnitudes.frequency_magnitude` (``centre, count,
    cumulative``); ``result`` is :func:`~pipeline.analysis.magnitudes.gutenberg_richter`
    for ``method`` (``b, b_sigma`` (Shi-Bolt), ``a, n, mc, mc_method, reason``, ...);
    ``maxc`` and ``gft`` are the two completeness estimates, always both (``gft`` tries
    R >= 95 %, then 90 %); ``n_nan`` counts the magnitudes left out. Never raises.
    """
    m = np.asarray(mags, dtype=float).ravel()
    finite = m[np.isfinite(m)]
    method = method if method in METHODS else DEFAULT_METHOD
    correction = float(correction) if _finite(correction) else DEFAULT_CORRECTION
    if method == "fixed" and not _finite(fixed_mc):
        fixed_mc = None
    maxc = mag.mc_maximum_curvature(finite, bin_width, correction)
    gft = mag.mc_goodness_of_fit(finite, bin_width, 95.0)
    if not _finite(gft["mc"]):
        gft90 = mag.mc_goodness_of_fit(finite, bin_width, 90.0)
        if _finite(gft90["mc"]):
            gft = gft90
    result = mag.gutenberg_richter(finite, method=method, bin_width=bin_width, correction=correction,
                                   mc=None if fixed_mc is None else float(fixed_mc))
    return {"fmd": mag.frequency_magnitude(finite, bin_width), "result": result, "maxc": maxc, "gft": gft,
            "method": method, "correction": correction, "n_nan": int(m.size - finite.size)}


def gr_line(result: dict, centres) -> tuple[np.ndarray, np.ndarray]:
    """(centres >= Mc, fitted cumulative counts there) of the G-R law of ``result``;
    empty arrays when there is no b-value."""
    c = np.asarray(centres, dtype=float)
    if not (_finite(result.get("b")) and _finite(result.get("a")) and _finite(result.get("mc"))):
        return np.array([]), np.array([])
    c = c[c >= float(result["mc"]) - 1e-9]
    return c, mag.gr_cumulative_counts(result["a"], result["b"], c)


def fmd_table(analysis: dict) -> pd.DataFrame:
    """The FMD shown, as the CSV offered by the page: ``bin_centre_ml, bin_low_ml,
    bin_high_ml`` (``low <= M < high``), ``count`` (non-cumulative), ``cumulative`` (events
    in this bin and above), ``gr_fit_cumulative`` (the fitted Gutenberg-Richter count,
    empty below Mc), ``mc, b, b_sigma, a, mc_method`` (repeated on every row)."""
    fmd = analysis["fmd"]
    res = analysis["result"]
    w = res.get("bin_width", BIN_WIDTH)
    out = pd.DataFrame({
        "bin_centre_ml": fmd["centre"].to_numpy(dtype=float),
        "bin_low_ml": np.round(fmd["centre"].to_numpy(dtype=float) - w / 2, 10),
        "bin_high_ml": np.round(fmd["centre"].to_numpy(dtype=float) + w / 2, 10),
        "count": fmd["count"].to_numpy(),
        "cumulative": fmd["cumulative"].to_numpy(),
    })
    c, fit = gr_line(res, out["bin_centre_ml"])
    fit_col = np.full(len(out), np.nan)
    if len(c):
        fit_col[len(out) - len(c):] = np.round(fit, 3)
    out["gr_fit_cumulative"] = fit_col
    for k in ("mc", "b", "b_sigma", "a"):
        v = res.get(k)
        out[k] = round(float(v), 4) if _finite(v) else np.nan
    out["mc_method"] = res.get("mc_method")
    return out


def _num(v, spec=".2f") -> str:
    return f"{float(v):{spec}}" if _finite(v) else "–"


def summary_items(analysis: dict) -> list[tuple[str, str]]:
    """(label, value) rows of the results card: Mc used and how, b ± Shi-Bolt sigma, a,
    events used, both Mc estimates, and the reason when a number is missing."""
    r, maxc, gft = analysis["result"], analysis["maxc"], analysis["gft"]
    method = r.get("mc_method") or analysis.get("method")
    mc_label = {"maxc": f"MAXC {maxc['mc_raw']:+.1f} {maxc['correction']:+.2f}" if _finite(maxc.get("mc_raw"))
                else "MAXC", "fixed": "fixed"}.get(method, f"GFT, R ≥ {str(method)[3:]} %"
                                                   if str(method).startswith("gft") else str(method))
    items = [
        ("b-value", f"{_num(r.get('b'), '.3f')} ± {_num(r.get('b_sigma'), '.3f')}" if _finite(r.get("b")) else "–"),
        ("a-value", _num(r.get("a"), ".3f")),
        ("Mc used", f"{_num(r.get('mc'), '.2f')} ({mc_label})"
                    + (f" · {float(r['mc_requested']):g} moved to its bin centre"
                       if _finite(r.get("mc_requested")) and _finite(r.get("mc"))
                       and abs(float(r["mc_requested"]) - float(r["mc"])) > 1e-9 else "")),
        ("Events ≥ Mc", f"{int(r.get('n') or 0):,} of {int(r.get('n_total') or 0):,}"),
        ("Mc, max. curvature", f"{_num(maxc.get('mc'))} (peak {_num(maxc.get('mc_raw'), '.1f')}"
                               f" {maxc.get('correction', 0):+.2f})" if _finite(maxc.get("mc")) else "–"),
        ("Mc, goodness of fit", f"{_num(gft.get('mc'))} (R {_num(gft.get('R'), '.1f')} % ≥ {gft.get('level', 95):g})"
                                if _finite(gft.get("mc")) else f"– ({gft.get('reason') or 'no estimate'})"),
        ("Binning", f"{_num(r.get('bin_width'), 'g')} ML for the FMD, Mc and b (events ≥ Mc: binned ML ≥ Mc)"),
        ("ML resolution", _num(r.get("dm"), "g")),
    ]
    if analysis.get("n_nan"):
        items.append(("Without ML", f"{analysis['n_nan']:,} (left out)"))
    if r.get("reason"):
        items.append(("Note", str(r["reason"])))
    return items


# -- figures ------------------------------------------------------------------------------------
def _marker_size(ml: np.ndarray) -> np.ndarray:
    """Plotly marker diameter (px) for the original's area ``(ML + 3) * 8`` pt^2
    (diameter = sqrt(area) pt, 1 pt = 4/3 px), at least 2 px."""
    area = np.clip((ml + 3.0) * 8.0, 0.0, None)
    return np.clip(np.sqrt(area) * 4.0 / 3.0, 2.0, None)


def _epoch_ms(times) -> np.ndarray:
    """Milliseconds since 1970 (UTC) -- what a Plotly date axis reads from numbers."""
    t = pd.to_datetime(pd.Series(times), utc=True)
    return ((t - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(milliseconds=1)).to_numpy(dtype=float)


def magnitude_time_figure(points: pd.DataFrame, hist: pd.DataFrame, counts: dict) -> dict:
    """ML vs time (left, ``x``) and a horizontal histogram of ML (right, ``x2``) sharing
    the ML axis.

    ``points``: ``event_id, time, magnitude, resolved`` (bool) -- the drawn events (may be
    a sample); ``hist``: ``centre, all, resolved`` counts of the *whole* selection
    (:func:`pipeline.analysis.magnitudes.magnitude_histograms`); ``counts``:
    ``all, resolved`` (matched events with/without mechanism, for the legend) and
    optionally ``drawn_all, drawn_resolved`` when the scatter is a sample. An empty
    selection gives a message figure.
    """
    n_all, n_res = int(counts.get("all", 0)), int(counts.get("resolved", 0))
    if n_all == 0 or points is None or len(points) == 0:
        return empty_figure("No event matches the filters")
    ml = points["magnitude"].to_numpy(dtype=float)
    ok = np.isfinite(ml)
    res = points["resolved"].to_numpy(dtype=bool)
    x = _epoch_ms(points["time"])
    ids = points["event_id"].astype(str).to_numpy(dtype=object)
    traces = []

    def label(name, n, drawn):
        extra = f", {drawn:,} drawn" if drawn is not None and drawn < n else ""
        return f"{name} ({n:,}{extra})"

    for name, sel, color, opacity, n, drawn in (
            ("All events", ok, ALL_COLOR, 0.35, n_all, counts.get("drawn_all")),
            ("Resolved mechanisms", ok & res, RESOLVED_COLOR, 0.8, n_res, counts.get("drawn_resolved"))):
        traces.append({
            "type": "scattergl", "mode": "markers", "name": label(name, n, drawn), "legendgroup": name,
            "x": typed(x[sel], "f8"), "y": typed(ml[sel]), "text": ids[sel].tolist(),
            "hovertemplate": "%{text}<br>%{x|%Y-%m-%d %H:%M:%S}<br>ML %{y:.2f}<extra></extra>",
            "marker": {"size": typed(_marker_size(ml[sel])), "color": color, "opacity": opacity,
                       "line": {"width": 0}},
            "xaxis": "x", "yaxis": "y"})
    if hist is not None and len(hist):
        for name, col, color, opacity in (("All events", "all", ALL_COLOR, 0.55),
                                          ("Resolved mechanisms", "resolved", RESOLVED_COLOR, 0.85)):
            if col not in hist:
                continue
            traces.append({
                "type": "bar", "orientation": "h", "name": f"{name} per 0.1 ML", "legendgroup": name,
                "showlegend": False, "y": hist["centre"].round(2).tolist(), "x": hist[col].astype(int).tolist(),
                "width": BIN_WIDTH, "marker": {"color": color, "opacity": opacity, "line": {"width": 0}},
                "hovertemplate": f"{name}<br>ML %{{y:.1f}} ± 0.05: %{{x:,}}<extra></extra>",
                "xaxis": "x2", "yaxis": "y"})
    layout = {
        "template": _TEMPLATE,
        "xaxis": {**_AXIS, "domain": [0.0, 0.76], "type": "date", "title": {"text": "Time (UTC)"}},
        "xaxis2": {**_AXIS, "domain": [0.79, 1.0], "title": {"text": "Events per 0.1 ML"}, "rangemode": "tozero"},
        "yaxis": {**_AXIS, "title": {"text": "Magnitude (ML)"}},
        "barmode": "overlay", "bargap": 0,
        "margin": {"l": 60, "r": 12, "t": TOP_LEGEND_PX, "b": 48},
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11},
                   "itemsizing": "constant", "bgcolor": "rgba(255,255,255,0)"},
        "hovermode": "closest", "uirevision": "magnitudes-time",
    }
    return {"data": traces, "layout": layout}


def fmd_figure(analysis: dict, title: str | None = None) -> dict:
    """The frequency-magnitude distribution of :func:`fmd_analysis`: non-cumulative
    counts (squares), cumulative counts (circles) on a log axis, the fitted G-R line
    above Mc and vertical lines at the Mc used (solid) and at the other estimate
    (dotted). An empty selection gives a message figure."""
    fmd, r = analysis["fmd"], analysis["result"]
    if fmd is None or len(fmd) == 0:
        return empty_figure("No magnitude in the selection")
    c = fmd["centre"].to_numpy(dtype=float)
    n = fmd["count"].to_numpy()
    cum = fmd["cumulative"].to_numpy()
    nz = n > 0
    traces = [
        {"type": "scatter", "mode": "markers", "name": "Cumulative N(≥M)", "x": c.round(2).tolist(),
         "y": cum.tolist(), "marker": {"symbol": "circle", "size": 7, "color": "#343a40"},
         "hovertemplate": "N(ML ≥ %{x:.1f}) = %{y:,}<extra></extra>"},
        {"type": "scatter", "mode": "markers", "name": "Per 0.1-ML bin", "x": c[nz].round(2).tolist(),
         "y": n[nz].tolist(), "marker": {"symbol": "square-open", "size": 7, "color": ALL_COLOR,
                                         "line": {"width": 1.5}},
         "hovertemplate": "ML %{x:.1f} ± 0.05: %{y:,}<extra></extra>"},
    ]
    annotations, shapes = [], []
    xs, fit = gr_line(r, c)
    if len(xs):
        traces.append({
            "type": "scatter", "mode": "lines", "name": f"G-R fit: log N = {r['a']:.2f} − {r['b']:.2f} M",
            "x": xs.round(2).tolist(), "y": fit.tolist(), "line": {"color": FIT_COLOR, "width": 2.5},
            "hovertemplate": "fit N(≥%{x:.1f}) = %{y:,.0f}<extra></extra>"})
        annotations.append({
            "xref": "paper", "yref": "paper", "x": 0.98, "y": 0.98, "xanchor": "right", "yanchor": "top",
            "align": "right", "showarrow": False, "bgcolor": "rgba(255,255,255,0.85)",
            "bordercolor": "#dee2e6", "borderwidth": 1, "borderpad": 4, "font": {"size": 12},
            "text": f"b = {r['b']:.3f} ± {r['b_sigma']:.3f}<br>a = {r['a']:.2f}<br>"
                    f"Mc = {r['mc']:.2f} · n = {int(r['n']):,}"})
    mc_used = r.get("mc")
    marks = [(mc_used, f"Mc {mc_used:.2f}" if _finite(mc_used) else "", MC_COLOR, "solid", 0.02)]
    for name, other in (("MAXC", analysis["maxc"].get("mc")), ("GFT", analysis["gft"].get("mc"))):
        if _finite(other) and not (_finite(mc_used) and abs(other - mc_used) < 1e-9):
            marks.append((other, f"{name} {other:.2f}", OTHER_MC_COLOR, "dot", 0.08 + 0.06 * (len(marks) - 1)))
    for value, text, color, dash, y in marks:
        if not _finite(value):
            continue
        shapes.append({"type": "line", "xref": "x", "yref": "paper", "x0": value, "x1": value, "y0": 0, "y1": 1,
                       "line": {"color": color, "width": 1.5, "dash": dash}, "layer": "below"})
        annotations.append({"xref": "x", "yref": "paper", "x": value, "y": y, "text": text, "showarrow": False,
                            "xanchor": "left", "xshift": 3, "font": {"size": 11, "color": color}})
    layout = {
        "template": _TEMPLATE,
        "xaxis": {**_AXIS, "title": {"text": "Magnitude (ML), 0.1 bins"}},
        # from half an event (the fit may go lower: not drawn) to twice the total
        "yaxis": {**_AXIS, "type": "log", "title": {"text": "Number of events"}, "exponentformat": "power",
                  "range": [math.log10(0.5), math.log10(max(float(cum.max()), 1.0) * 2.0)]},
        "margin": {"l": 60, "r": 12, "t": TOP_LEGEND_PX if not title else 56, "b": 48},
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom", "font": {"size": 11},
                   "bgcolor": "rgba(255,255,255,0)"},
        "shapes": shapes, "annotations": annotations, "hovermode": "closest", "uirevision": "magnitudes-fmd",
    }
    if title:
        layout["title"] = {"text": title, "font": {"size": 13}, "x": 0.01, "xanchor": "left"}
    return {"data": traces, "layout": layout}
