"""Diffusion fronts: distance–time against ``r = sqrt(4 pi D t)``, the fit of D, and the
activation player's map -- pure functions of DataFrames (no Dash, no DuckDB).

The analysis itself is :mod:`pipeline.analysis.diffusion` (origin, distances, critical
diffusivities ``D_i = r_i^2 / (4 pi t_i)``, the quantile fit, the bootstrap, the activation
frames); this module chooses the event set, sizes the bootstrap, adds the interval for the
envelope of all events, and draws.

**Fit** (defect 14: D is fitted, not picked by eye). ``D_q`` is the smallest D whose envelope
holds a share ``q`` of the events (after the origin); its interval is the percentile
bootstrap of :func:`~pipeline.analysis.diffusion.bootstrap_diffusivity` (seeded, so the
same selection always gives the same interval). When ``D_q`` is the *largest* critical D
(``q = 100 %``, or ``ceil(q n) = n``), the bootstrap cannot exceed the sample maximum, so
its upper limit would be the estimate itself; there the upper limit is Robson & Whitlock's
(1964, Biometrika 51:33) end-point bound ``X(n) + (X(n) - X(n-1)) (1 - a) / a`` with
``a = (1 - ci) / 2`` (the lower limit stays the bootstrap's). :func:`fit_envelope`
reports which interval it used.

**Bootstrap size.** Resampling is vectorised (an ``n_boot x n`` array), so for large sets
``n_boot`` is capped at ``MAX_BOOT_CELLS / n`` (at least :data:`MIN_BOOT`); the result says
how many resamples were drawn.

**What q means.** If events fill the disc inside the front evenly (as the demo draws them:
``r = sqrt(4 pi D t) sqrt(u)``), the critical D is uniform on (0, D) and ``D_q = q D``:
a 90 % fit gives about 0.9 D, and only the envelope of all events (q = 100 %) estimates the
front's D itself. On real data a few outliers dominate that envelope, which is why the
page's default is 90 %.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pipeline.analysis import diffusion as dif
from pipeline.analysis.mechanism_stats import average_mechanism

from .beachball import beachball_xy, magnitude_radius
from .map_figure import _AXIS, _TEMPLATE, GROUP_COLORS, MODEBAR_PX, UNKNOWN_GROUP_COLOR, empty_figure, typed

__all__ = ["fit_envelope", "bootstrap_size", "distance_time_figure", "activation_map_figure", "csv_table",
           "subsets_for", "set_strike", "empty_figure", "REFERENCE_D", "DISTANCE_LABELS", "DISTANCE_DEFINITIONS"]

#: the original figure's diffusivities (m^2/s), drawn as faint reference envelopes
REFERENCE_D = dif.ORIGINAL_DIFFUSIVITIES
DEFAULT_Q = 0.9
DEFAULT_COMPARE_D = 0.0316
N_BOOT = 1000
MIN_BOOT = 200
MAX_BOOT_CELLS = 2_000_000
BOOT_SEED = 0
CI = 0.95
#: points of each plotted envelope curve
CURVE_POINTS = 160

DISTANCE_LABELS = {
    "signed_epicentral": "Signed epicentral distance (m)",
    "hypocentral_3d": "3-D hypocentral distance (m)",
    "along_strike": "Distance along strike (m)",
}
DISTANCE_DEFINITIONS = {
    "signed_epicentral": "great-circle epicentral distance from the origin event, depth ignored, "
                         "+ north / − south of it (the original's definition)",
    "hypocentral_3d": "3-D distance from the origin's hypocentre (epicentral distance and depth difference), "
                      "unsigned",
    "along_strike": "signed horizontal offset projected on the strike direction (+ towards the strike azimuth)",
}

_FIT_COLOUR = "#0d6efd"
_BAND_COLOUR = "rgba(13,110,253,0.12)"
_COMPARE_COLOUR = "#d6008f"
_REF_COLOUR = "rgba(90,90,90,0.55)"
_OUT_COLOUR = "#adb5bd"


# --- sets -------------------------------------------------------------------------------
def subsets_for(dataset: str | None) -> tuple:
    """The named mechanism subsets of a dataset: :data:`pipeline.ingest.regions.SUBSETS` for
    ``'toc2me'``, :data:`pipeline.demo.scenario.SUBSETS` for ``'demo'`` (imported on demand; the
    module only defines constants at import, ~0.1 s for scipy), ``()`` otherwise."""
    if dataset == "toc2me":
        from pipeline.ingest.regions import SUBSETS

        return tuple(SUBSETS["toc2me"])
    if dataset == "demo":
        from pipeline.demo.scenario import SUBSETS

        return tuple(SUBSETS)
    return ()


def angle_columns(mechanisms: pd.DataFrame, dataset: str | None, subset: str | None) -> tuple[str, str, str]:
    """Which strike/dip/rake columns describe a subset's mechanisms: ToC2ME's SWe-* subsets
    were cut on the separate SWe SKHASH run (``strike_swe``, ``dip_swe``, ``rake_swe``), so
    those angles are used where every row has them; plane 1 otherwise."""
    swe = ("strike_swe", "dip_swe", "rake_swe")
    if dataset == "toc2me" and subset and subset.startswith("SWe") and set(swe) <= set(mechanisms.columns) \
            and len(mechanisms) and mechanisms[list(swe)].notna().all().all():
        return swe
    return ("strike", "dip", "rake")


def set_strike(mechanisms: pd.DataFrame, angles=("strike", "dip", "rake")) -> float | None:
    """Strike (deg) of the moment-tensor average of the set's mechanisms
    (:func:`pipeline.analysis.mechanism_stats.average_mechanism`); None without any."""
    if mechanisms is None or len(mechanisms) == 0:
        return None
    s, d, r = (mechanisms[c].to_numpy(dtype=float) for c in angles)
    avg = average_mechanism(s, d, r)
    v = avg.get("strike")
    return float(v) if v is not None and math.isfinite(v) else None


# --- fit -------------------------------------------------------------------------------
def bootstrap_size(n: int, n_boot: int = N_BOOT) -> int:
    """Resamples to draw for ``n`` events: ``n_boot``, capped so that ``n_boot * n`` stays
    under :data:`MAX_BOOT_CELLS` (never below :data:`MIN_BOOT`)."""
    if n <= 0:
        return n_boot
    return int(max(MIN_BOOT, min(n_boot, MAX_BOOT_CELLS // max(n, 1))))


def robson_whitlock_upper(values, ci: float = CI) -> float:
    """Upper confidence limit of the end point of a distribution from its sample maximum:
    ``X(n) + (X(n) - X(n-1)) (1 - a) / a`` with ``a = (1 - ci) / 2`` (Robson & Whitlock
    1964); NaN with fewer than two finite values."""
    v = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    if v.size < 2:
        return float("nan")
    a = (1.0 - ci) / 2.0
    return float(v[-1] + (v[-1] - v[-2]) * (1.0 - a) / a)


def fit_envelope(dt: pd.DataFrame, q: float = DEFAULT_Q, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                 ci: float = CI) -> dict:
    """Fit of D on a distance-time table (:func:`pipeline.analysis.diffusion.distance_time`).

    Returns ``D, lo, hi`` (m^2/s), ``q``, ``share`` (inside at D), ``n`` (events at or after
    the origin), ``n_before``, ``n_boot`` (resamples drawn), ``ci``, ``interval``
    (``'bootstrap'`` or ``'bootstrap + Robson-Whitlock'``), ``is_max`` (D is the largest
    critical D) and ``reason`` (None, or why there is no fit / no interval).
    """
    t = dt["t_s"].to_numpy(dtype=float) if len(dt) else np.array([])
    r = dt["distance_m"].to_numpy(dtype=float) if len(dt) else np.array([])
    crit = dif.critical_diffusivity(t, r)
    valid = crit[~np.isnan(crit)]
    n = int(valid.size)
    out = {"D": float("nan"), "lo": float("nan"), "hi": float("nan"), "q": q, "share": float("nan"), "n": n,
           "n_before": int(np.sum(t < 0)), "n_boot": 0, "ci": ci, "interval": None, "is_max": False,
           "reason": None}
    if n == 0:
        out["reason"] = "no events at or after the origin"
        return out
    moving = int(np.sum(valid > 0))
    if moving < 2:
        out["reason"] = "fewer than two events after the origin: nothing to fit"
        return out
    nb = bootstrap_size(n, n_boot)
    boot = dif.bootstrap_diffusivity(t, r, q=q, n_boot=nb, seed=seed, ci=ci)
    fit = dif.fit_diffusivity(t, r, q=q)
    out.update(D=fit["D"], share=fit["share"], lo=boot["lo"], hi=boot["hi"], n_boot=nb, interval="bootstrap",
               reason=fit["reason"] or boot["reason"])
    k = min(max(math.ceil(q * n - 1e-9) - 1, 0), n - 1)
    if k == n - 1 and np.isfinite(out["D"]):
        out["is_max"] = True
        out["hi"] = robson_whitlock_upper(valid, ci)
        out["interval"] = "bootstrap + Robson-Whitlock"
    return out


def format_D(value: float, digits: int = 3) -> str:
    """D in m²/s with ``digits`` significant digits (``'–'`` for NaN, ``'∞'`` for inf)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞"
    if value == 0:
        return "0"
    return f"{value:.{digits}g}" if 1e-4 <= abs(value) < 1e4 else f"{value:.{digits - 1}e}"


def shares(dt: pd.DataFrame, diffusivities) -> pd.DataFrame:
    """Share of events inside each envelope (:func:`pipeline.analysis.diffusion.envelope_shares`)."""
    if len(dt) == 0:
        return pd.DataFrame({"D": list(diffusivities), "share": np.nan, "n_inside": 0, "n": 0})
    return dif.envelope_shares(dt["t_s"].to_numpy(dtype=float), dt["distance_m"].to_numpy(dtype=float),
                               diffusivities)


# --- distance-time figure -----------------------------------------------------------------
def envelope_xy(D: float, t_max_h: float, signed: bool, n: int = CURVE_POINTS) -> tuple[list, list]:
    """(x hours, y metres) of the envelope of ``D``: the + branch, and for signed distances
    a ``None`` gap and the − branch."""
    if D is None or not np.isfinite(D) or t_max_h <= 0:
        return [], []
    t_h = np.linspace(0.0, t_max_h, n)
    r = dif.envelope_radius_m(t_h * 3600.0, D)
    x, y = np.round(t_h, 4).tolist(), np.round(r, 2).tolist()
    if signed:
        return x + [None] + x, y + [None] + (-np.round(r, 2)).tolist()
    return x, y


def _band_xy(lo: float, hi: float, t_max_h: float, signed: bool):
    """Closed polygon(s) between the envelopes of ``lo`` and ``hi`` (NaN-separated)."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or t_max_h <= 0:
        return [], []
    t_h = np.linspace(0.0, t_max_h, CURVE_POINTS)
    r_lo = dif.envelope_radius_m(t_h * 3600.0, lo)
    r_hi = dif.envelope_radius_m(t_h * 3600.0, hi)
    xs = np.concatenate([t_h, t_h[::-1]])
    ys = np.concatenate([r_hi, r_lo[::-1]])
    x, y = np.round(xs, 4).tolist(), np.round(ys, 2).tolist()
    if signed:
        return x + [None] + x, y + [None] + (-np.round(ys, 2)).tolist()
    return x, y


def distance_time_figure(dt: pd.DataFrame, fit: dict, *, method: str = "signed_epicentral",
                         compare_D: float = DEFAULT_COMPARE_D, reference=REFERENCE_D, strike: float | None = None,
                         t_cursor_h: float | None = None, signed: bool | None = None,
                         uirevision: str = "diffusion") -> dict:
    """Distance (m) against time since the origin (h) with the fitted envelope and its
    interval band, the comparison envelope of ``compare_D``, and the reference envelopes.
    Events inside the fitted envelope are blue, outside grey; the origin is a star.

    ``layout.meta``: ``compare`` (index of the comparison trace, for a ``Patch``),
    ``cursor`` (index of the player's time cursor in ``layout.shapes``), ``t_max_h``,
    ``signed``, ``shares`` ({D: share} of the reference envelopes).
    """
    signed = (method != "hypocentral_3d") if signed is None else signed
    dt = dt[dt["t_s"] >= 0] if len(dt) else dt
    t_h = dt["t_h"].to_numpy(dtype=float) if len(dt) else np.array([])
    r = dt["distance_m"].to_numpy(dtype=float) if len(dt) else np.array([])
    t_max_h = float(np.nanmax(t_h)) * 1.04 if t_h.size and np.nanmax(t_h) > 0 else 1.0
    traces: list[dict] = []
    annotations: list[dict] = []
    D_fit = fit.get("D", float("nan"))
    # distance axis: the events and the fitted envelope (wider reference/interval curves leave the plot)
    r_fit = float(dif.envelope_radius_m(t_max_h * 3600.0, D_fit)) if np.isfinite(D_fit) else 0.0
    r_max = max(float(np.nanmax(np.abs(r))) if r.size else 0.0, r_fit, 1.0) * 1.15
    ref = shares(dt, reference)
    ref_shares = {}
    for D, share in zip(ref["D"], ref["share"]):
        x, y = envelope_xy(D, t_max_h, signed)
        label = f"{format_D(D)}" + (f" · {share:.0%}" if np.isfinite(share) else "")
        ref_shares[f"{D:g}"] = None if not np.isfinite(share) else float(share)
        traces.append({"type": "scatter", "x": x, "y": y, "mode": "lines", "name": f"D = {label}",
                       "line": {"color": _REF_COLOUR, "width": 1, "dash": "dot"}, "hoverinfo": "skip",
                       "legendgroup": "reference", "showlegend": False})
        if x:  # label where the curve leaves the plot (top edge) or ends (right edge)
            r_end = float(dif.envelope_radius_m(t_max_h * 3600.0, D))
            if r_end <= r_max:
                pos = {"x": t_max_h, "y": r_end, "xanchor": "left", "yanchor": "middle", "xshift": 3}
            else:
                t_exit = r_max ** 2 / (4 * np.pi * D) / 3600.0
                pos = {"x": t_exit, "y": r_max, "xanchor": "center", "yanchor": "top", "yshift": -2}
            annotations.append({**pos, "showarrow": False, "text": f"D = {label}",
                                "font": {"size": 10, "color": "#6c757d"}, "bgcolor": "rgba(255,255,255,0.7)"})
    bx, by = _band_xy(fit.get("lo", np.nan), fit.get("hi", np.nan), t_max_h, signed)
    traces.append({"type": "scatter", "x": bx, "y": by, "mode": "lines", "fill": "toself", "fillcolor": _BAND_COLOUR,
                   "line": {"width": 0}, "hoverinfo": "skip",
                   "name": f"{fit.get('ci', CI):.0%} interval of D", "showlegend": bool(bx)})
    fx, fy = envelope_xy(D_fit, t_max_h, signed)
    q = fit.get("q", DEFAULT_Q)
    traces.append({"type": "scatter", "x": fx, "y": fy, "mode": "lines", "line": {"color": _FIT_COLOUR, "width": 2.2},
                   "name": f"fit: D = {format_D(D_fit)} m²/s (q = {q:.0%})", "hoverinfo": "skip",
                   "showlegend": bool(fx)})
    cx, cy = envelope_xy(compare_D, t_max_h, signed)
    compare_share = shares(dt, [compare_D])["share"].iloc[0] if len(dt) else float("nan")
    compare_index = len(traces)
    traces.append({"type": "scatter", "x": cx, "y": cy, "mode": "lines",
                   "line": {"color": _COMPARE_COLOUR, "width": 1.6, "dash": "dash"}, "hoverinfo": "skip",
                   "name": f"compare: D = {format_D(compare_D)}"
                           + (f" ({compare_share:.0%} inside)" if np.isfinite(compare_share) else "")})
    if len(dt):
        crit = dt["critical_D"].to_numpy(dtype=float)
        inside = (crit <= D_fit * (1 + 1e-9)) if np.isfinite(D_fit) else np.zeros(len(dt), dtype=bool)
        ids = dt["event_id"].astype(str).to_numpy(dtype=object)
        when = pd.to_datetime(dt["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S.%f").str[:-4].to_numpy(dtype=object)
        for sel, name, marker in (
                (~inside, "outside the fitted envelope", {"color": "rgba(0,0,0,0)", "size": 6,
                                                          "line": {"color": _OUT_COLOUR, "width": 1.2}}),
                (inside, "inside the fitted envelope", {"color": _FIT_COLOUR, "size": 6, "opacity": 0.75,
                                                        "line": {"color": "white", "width": 0.5}})):
            if not sel.any():
                continue
            text = [f"<b>{e}</b><br>{w} UTC<br>T = {a:.2f} h · r = {b:.0f} m<br>critical D = {format_D(c)} m²/s"
                    for e, w, a, b, c in zip(ids[sel], when[sel], t_h[sel], r[sel], crit[sel])]
            traces.append({"type": "scattergl" if len(dt) > 1500 else "scatter", "x": np.round(t_h[sel], 5).tolist(),
                           "y": np.round(r[sel], 2).tolist(), "mode": "markers", "marker": marker,
                           "name": f"{name} ({int(sel.sum())})", "customdata": ids[sel].tolist(),
                           "hovertext": text, "hoverinfo": "text"})
        traces.append({"type": "scatter", "x": [0], "y": [0], "mode": "markers", "name": "origin event",
                       "marker": {"symbol": "star", "size": 15, "color": "#ffb300", "line": {"color": "#6b4e00",
                                                                                               "width": 1}},
                       "hovertext": [f"origin {dt.attrs.get('origin', {}).get('event_id', '')}"],
                       "hoverinfo": "text"})
    ylabel = DISTANCE_LABELS.get(method, "Distance (m)")
    if method == "along_strike" and strike is not None and np.isfinite(strike):
        ylabel = f"Distance along strike N{strike:.0f}°E (m)"
    elif signed and method == "signed_epicentral":
        ylabel += ", + north"
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": t_cursor_h or 0, "x1": t_cursor_h or 0,
               "y0": 0, "y1": 1, "line": {"color": "#fd7e14", "width": 1.5, "dash": "dot"},
               "visible": t_cursor_h is not None}]
    if len(dt) == 0:
        annotations = [{"text": "No event to plot", "showarrow": False, "xref": "paper", "yref": "paper",
                        "x": 0.5, "y": 0.5, "font": {"size": 15, "color": "#666"}}]
    layout = {
        "template": _TEMPLATE,
        "xaxis": {**_AXIS, "title": {"text": "Time since the origin event (h)"}, "range": [0, t_max_h * 1.16],
                  "rangemode": "tozero"},
        "yaxis": {**_AXIS, "title": {"text": ylabel}, "zeroline": True, "zerolinecolor": "#ced4da",
                  "range": [-r_max if signed else 0, r_max]},
        "margin": {"l": 70, "r": 16, "t": MODEBAR_PX, "b": 50},  # the modebar above the plot, not on it
        "legend": {"orientation": "h", "x": 0, "y": -0.14, "yanchor": "top", "font": {"size": 11},
                   "bgcolor": "rgba(255,255,255,0)"},
        "hovermode": "closest", "shapes": shapes, "annotations": annotations, "uirevision": uirevision,
        "meta": {"compare": compare_index, "cursor": 0, "t_max_h": t_max_h, "signed": bool(signed),
                 "shares": ref_shares},
    }
    return {"data": traces, "layout": layout}


# --- activation player map ----------------------------------------------------------------
def front_circle(x0: float, y0: float, radius_km: float, n: int = 90) -> tuple[list, list]:
    a = np.linspace(0, 2 * np.pi, n)
    return np.round(x0 + radius_km * np.sin(a), 5).tolist(), np.round(y0 + radius_km * np.cos(a), 5).tolist()


def _kind(n: int) -> str:
    """SVG ``scatter`` (drawn in trace order, under the beachballs) up to a few thousand
    points; WebGL beyond (always drawn on top of SVG traces)."""
    return "scatter" if n <= 6000 else "scattergl"


def activation_map_figure(frame: dict, context: pd.DataFrame | None, origin: dict | None, *,
                          angles=("strike", "dip", "rake"), front_D: float | None = None,
                          t_s: float | None = None, extent=None, ball_scale: float = 0.3,
                          uirevision: str = "activation") -> dict:
    """km map of one player frame (:func:`pipeline.analysis.diffusion.activation_frame`):
    ``context`` events (e.g. the whole cluster) grey; the set's events up to ``t`` coloured
    by time since the origin, the most recent ringed; only the mechanisms up to ``t`` as
    beachballs (defect 15), coloured by group, radius ``magnitude_radius(ML) * ball_scale``;
    the origin (star) and, when ``front_D`` and ``t_s > 0`` are given, the front
    ``r = sqrt(4 pi D t)`` as a dashed circle around the origin's epicentre. ``extent``
    ((x0, x1), (y0, y1)) km fixes the view so frames do not jump."""
    traces: list[dict] = []
    ev = frame["events"] if frame else pd.DataFrame()
    if context is not None and len(context):
        traces.append({"type": _kind(len(context)), "x": context["x_km"].round(5).tolist(),
                       "y": context["y_km"].round(5).tolist(), "mode": "markers", "name": "cluster events (all)",
                       "marker": {"size": 3.5, "color": "rgba(120,120,120,0.35)"}, "hoverinfo": "skip"})
    if len(ev):
        pending = ev[~ev["active"]]
        if len(pending):
            traces.append({"type": _kind(len(pending)), "x": pending["x_km"].round(5).tolist(),
                           "y": pending["y_km"].round(5).tolist(), "mode": "markers", "name": "set, later",
                           "marker": {"size": 5, "color": "rgba(0,0,0,0)", "line": {"color": "#ced4da", "width": 1}},
                           "hoverinfo": "skip"})
        mech = frame.get("mechanisms") if frame else None
        if mech is not None and len(mech):  # balls above the grey events, below the time-coloured dots
            traces += ball_traces(mech, angles, ball_scale)
        active = ev[ev["active"]]
        if len(active):
            th = active["t_h"].to_numpy(dtype=float) if "t_h" in active else np.zeros(len(active))
            traces.append({
                "type": _kind(len(active)), "x": active["x_km"].round(5).tolist(), "y": active["y_km"].round(5).tolist(),
                "mode": "markers", "name": "set, up to t",
                "marker": {"size": 4, "color": np.round(th, 3).tolist(), "colorscale": "Viridis", "showscale": True,
                           "cmin": float(np.nanmin(ev["t_h"])) if "t_h" in ev else 0,
                           "cmax": float(np.nanmax(ev["t_h"])) if "t_h" in ev else 1,
                           "colorbar": {"title": {"text": "T (h)", "side": "right"}, "thickness": 10, "len": 0.6},
                           "line": {"color": "white", "width": 0.3}},
                "customdata": active["event_id"].astype(str).tolist(),
                "hovertext": [f"{e}<br>T = {a:.2f} h" for e, a in zip(active["event_id"].astype(str), th)],
                "hoverinfo": "text"})
            recent = active[active["recent"]] if "recent" in active else active.iloc[0:0]
            if 0 < len(recent) < len(active):
                traces.append({"type": _kind(len(recent)), "x": recent["x_km"].round(5).tolist(),
                               "y": recent["y_km"].round(5).tolist(), "mode": "markers", "name": "last 6 h",
                               "marker": {"size": 11, "color": "rgba(0,0,0,0)",
                                          "line": {"color": "#fd7e14", "width": 1.5}}, "hoverinfo": "skip"})
    if origin is not None and np.isfinite(origin.get("x_km", np.nan)):
        ox, oy = float(origin["x_km"]), float(origin["y_km"])
        if front_D is not None and np.isfinite(front_D) and t_s is not None and t_s > 0:
            radius = float(dif.envelope_radius_m(t_s, front_D)) / 1000.0
            cx, cy = front_circle(ox, oy, radius)
            traces.append({"type": "scatter", "x": cx, "y": cy, "mode": "lines", "hoverinfo": "skip",
                           "name": f"front √(4πDt), D = {format_D(front_D)}",
                           "line": {"color": _FIT_COLOUR, "width": 1.4, "dash": "dash"}})
        traces.append({"type": "scatter", "x": [ox], "y": [oy], "mode": "markers", "name": "origin",
                       "marker": {"symbol": "star", "size": 16, "color": "#ffb300",
                                  "line": {"color": "#6b4e00", "width": 1}},
                       "hovertext": [f"origin {origin.get('event_id', '')}"], "hoverinfo": "text"})
    xaxis = {**_AXIS, "title": {"text": "East (km)"}}
    yaxis = {**_AXIS, "title": {"text": "North (km)"}, "scaleanchor": "x", "scaleratio": 1.0}
    if extent is not None:
        xaxis["range"], yaxis["range"] = [list(extent[0]), list(extent[1])]
    layout = {"template": _TEMPLATE, "xaxis": xaxis, "yaxis": yaxis,
              "margin": {"l": 56, "r": 10, "t": MODEBAR_PX, "b": 46},
              "legend": {"orientation": "h", "x": 0, "y": -0.12, "yanchor": "top", "font": {"size": 11},
                         "itemsizing": "constant", "bgcolor": "rgba(255,255,255,0)"},
              "hovermode": "closest", "dragmode": "pan", "uirevision": uirevision}
    if not traces:
        return empty_figure("No event to show")
    return {"data": traces, "layout": layout}


def ball_traces(mech: pd.DataFrame, angles=("strike", "dip", "rake"), scale: float = 0.6) -> list[dict]:
    """Beachballs of ``mech`` (``x_km, y_km, magnitude, group, event_id`` and the ``angles``
    columns) from :func:`components.beachball.beachball_xy`: white discs with outline, the
    compressional patches filled per group (:data:`~components.map_figure.GROUP_COLORS`),
    and an invisible hover trace. Radius :func:`components.beachball.magnitude_radius`
    times ``scale`` (km); compact typed arrays, fewer points per ball for many balls."""
    s, d, r = (mech[c].to_numpy(dtype=float) for c in angles)
    x, y = mech["x_km"].to_numpy(dtype=float), mech["y_km"].to_numpy(dtype=float)
    mag = mech["magnitude"].to_numpy(dtype=float)
    rad = magnitude_radius(mag) * scale
    n_points = 32 if len(mech) <= 300 else (20 if len(mech) <= 800 else 14)
    b = beachball_xy(s, d, r, x, y, rad, n_points=n_points, n_outline=n_points, nodal=False)
    groups = mech["group"].fillna("").astype(str).to_numpy(dtype=object) if "group" in mech else \
        np.full(len(mech), "", dtype=object)
    traces = [{"type": "scatter", "x": typed(b["outline_x"]), "y": typed(b["outline_y"]), "mode": "lines",
               "fill": "toself", "fillcolor": "white", "line": {"color": "#222", "width": 0.5},
               "hoverinfo": "skip", "showlegend": False, "name": "beachball outline"}]
    fx = b["fill_x"].reshape(-1, n_points + 1)
    fy = b["fill_y"].reshape(-1, n_points + 1)
    owner = groups[np.asarray(b["fill_ball"], dtype=int)] if len(b["fill_ball"]) else np.array([], dtype=object)
    for g in [g for g in GROUP_COLORS if g in set(groups)] + sorted(set(groups) - set(GROUP_COLORS)):
        sel = owner == g
        if not sel.any():
            continue
        colour = GROUP_COLORS.get(g, UNKNOWN_GROUP_COLOR)
        traces.append({"type": "scatter", "x": typed(fx[sel].ravel()), "y": typed(fy[sel].ravel()), "mode": "lines",
                       "fill": "toself", "fillcolor": colour, "line": {"color": colour, "width": 0},
                       "hoverinfo": "skip", "name": f"mechanisms {g}" if g else "mechanisms",
                       "legendgroup": f"group-{g}"})
    text = [f"<b>{e}</b><br>strike/dip/rake {a:.1f}/{b_:.1f}/{c:.1f}<br>ML "
            + (f"{m:.2f}" if np.isfinite(m) else "–") + (f" · {g}" if g else "")
            for e, a, b_, c, m, g in zip(mech["event_id"].astype(str), s, d, r, mag, groups)]
    traces.append({"type": "scatter", "x": typed(x), "y": typed(y), "mode": "markers", "showlegend": False,
                   "marker": {"size": 8, "color": "rgba(0,0,0,0)"}, "hovertext": text, "hoverinfo": "text",
                   "customdata": mech["event_id"].astype(str).tolist(), "name": "mechanism"})
    return traces


def map_extent(*frames: pd.DataFrame, pad: float = 0.08, min_span_km: float = 0.3):
    """((x0, x1), (y0, y1)) km around every point of ``frames``, padded, square-ish."""
    xs = np.concatenate([f["x_km"].to_numpy(dtype=float) for f in frames if f is not None and len(f)] or [[]])
    ys = np.concatenate([f["y_km"].to_numpy(dtype=float) for f in frames if f is not None and len(f)] or [[]])
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return None
    x0, x1, y0, y1 = xs[ok].min(), xs[ok].max(), ys[ok].min(), ys[ok].max()
    span = max(x1 - x0, y1 - y0, min_span_km) * (1 + 2 * pad)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    return (cx - span / 2, cx + span / 2), (cy - span / 2, cy + span / 2)


# --- export --------------------------------------------------------------------------------
CSV_COLUMNS = ["event_id", "time", "t_hours", "distance_m", "critical_D_m2_s", "inside"]


def csv_table(dt: pd.DataFrame, D: float) -> pd.DataFrame:
    """The distance-time table as exported: ``event_id, time`` (ISO 8601 UTC, ms),
    ``t_hours``, ``distance_m``, ``critical_D_m2_s`` and ``inside`` (within the envelope
    of ``D``, the fitted one on the page; False for events before the origin)."""
    if len(dt) == 0:
        return pd.DataFrame(columns=CSV_COLUMNS)
    crit = dt["critical_D"].to_numpy(dtype=float)
    inside = np.isfinite(D) & (crit <= D * (1 + 1e-9)) if np.isfinite(D) else np.zeros(len(dt), dtype=bool)
    return pd.DataFrame({
        "event_id": dt["event_id"].astype(str).to_numpy(),
        "time": pd.to_datetime(dt["time"], utc=True).dt.strftime("%Y-%m-%dT%H:%M:%S.%f").str[:-3].to_numpy() + "Z",
        "t_hours": dt["t_h"].to_numpy(dtype=float),
        "distance_m": dt["distance_m"].to_numpy(dtype=float),
        "critical_D_m2_s": crit,
        "inside": inside & ~np.isnan(crit),
    })
