"""Figures and the station table of the event page (pure functions: DataFrames in, figures out).

Conventions
-----------
* Polarities are **true ground motion** (+1 up / compression, -1 down / dilatation, 0
  undetermined), station reversal applied - as in the ``polarities`` table and the review
  database. Waveform samples in the ``waveforms`` table are as **recorded**; a reversed
  station (ToC2ME 5B verticals) is multiplied by -1 to show true motion.
* Takeoff angles are in SKHASH's convention (degrees from the **upward** vertical, < 90
  up-going), as in ``mechanism_stations``. Stations are placed on the lower-hemisphere
  equal-area net with :func:`components.beachball.project_ray` (``takeoff_from='up'``): an
  up-going ray is plotted at azimuth + 180 with i = takeoff, ``r = sqrt(2) sin(i/2)``
  (docs/analyses.md 1.9; the original figure's formula was wrong, defect 9).
* Station symbols on the beachball: filled circle = up (compression), open circle = down
  (dilatation), small grey x = no polarity used (undetermined, low SNR or not picked); the
  colour says whether the polarity agrees with the mechanism drawn.

Main entry points: :func:`station_rays`, :func:`station_table`, :func:`mechanism_figure` (+
:func:`station_marker_style` for Patch updates), :func:`comparison_figure`,
:func:`waveform_figure` (+ :func:`waveform_styles`), :func:`bandpass`, :func:`parse_bandpass`.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from pipeline.mechanisms import focal

from . import beachball

# -- colours ----------------------------------------------------------------------------------
ACCENT = "#d6008f"              # current station (same accent as the map's highlight)
QUADRANT = "#c9ced6"            # compressional quadrants
NODAL = "#212529"
ACCEPTABLE = "rgba(73,80,87,0.10)"
AGREE = "#1f2d3d"               # polarity fits the mechanism
DISAGREE = "#e03131"            # polarity misfit
UNKNOWN = "#868e96"             # no mechanism to compare with
UNUSED = "#adb5bd"
POL_COLORS = {1: "#d9480f", -1: "#1864ab", 0: "#868e96"}   # waveform colour: up, down, undetermined
NO_POL_COLOR = "#adb5bd"
ARROWS = {1: "↑", -1: "↓", 0: "∅"}

FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif", size=12, color="#343a40")

#: columns of :func:`station_table`
STATION_COLUMNS = [
    "key", "network", "station", "reversed", "azimuth_deg", "takeoff_deg", "distance_km", "ray", "has_waveform",
    "auto_method", "auto_polarity", "prob_down_recorded", "snr", "published_polarity", "manual_polarity",
    "reviewed_polarity", "reviewer", "reviewed_at", "polarity", "polarity_source", "predicted", "agreement",
]


def arrow(p) -> str:
    """↑ / ↓ / ∅ for +1 / -1 / 0, '–' for none."""
    try:
        if p is None or (isinstance(p, float) and math.isnan(p)) or pd.isna(p):
            return "–"
        return ARROWS.get(int(p), "–")
    except (TypeError, ValueError):
        return "–"


def _fmt(v, spec=".1f", none="–"):
    try:
        f = float(v)
    except (TypeError, ValueError):
        return none
    return none if not math.isfinite(f) else format(f, spec)


def _finite(v) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


# -- rays -------------------------------------------------------------------------------------
def station_rays(stations: pd.DataFrame, used: pd.DataFrame | None, event: dict,
                 velocity_model: pd.DataFrame | None) -> pd.DataFrame:
    """Takeoff (SKHASH convention, deg from up), azimuth and distance of every station.

    ``used``: the event's ``mechanism_stations`` rows (SKHASH's own rays; kept as they are,
    ``ray='skhash'``). Other stations get the ray SKHASH's lookup table would give from the
    1-D ``velocity_model`` (:func:`pipeline.mechanisms.raytrace.skhash_table_takeoff`, ``ray='model'``)
    at ``event`` = ``{lat, lon, depth_km}`` (the location SKHASH used where known). Without a
    velocity model, those stations get NaN takeoffs (they are then not drawn).
    Columns: ``network, station, takeoff_deg, azimuth_deg, distance_km, ray``.
    """
    from pipeline import geo
    from pipeline.mechanisms import raytrace

    st = stations[["network", "station", "lat", "lon"]].reset_index(drop=True)
    ex, ny = geo.to_local_km(st["lat"].to_numpy(float), st["lon"].to_numpy(float),
                             (float(event["lat"]), float(event["lon"])))
    out = pd.DataFrame({"network": st["network"].astype(str), "station": st["station"].astype(str),
                        "azimuth_deg": np.degrees(np.arctan2(ex, ny)) % 360.0, "distance_km": np.hypot(ex, ny)})
    depth = float(event.get("depth_km") or np.nan)
    if velocity_model is not None and len(velocity_model) >= 2 and np.isfinite(depth):
        out["takeoff_deg"] = raytrace.skhash_table_takeoff(depth, out["distance_km"].to_numpy(),
                                                           velocity_model=velocity_model[["depth_km", "vp_km_s"]],
                                                           takeoff_from="up")
    else:
        out["takeoff_deg"] = np.nan
    out["ray"] = np.where(np.isfinite(out["takeoff_deg"]), "model", "none")
    if used is not None and len(used):
        u = used.assign(network=used["network"].astype(str), station=used["station"].astype(str))
        u = u.drop_duplicates(["network", "station"]).set_index(["network", "station"])
        idx = pd.MultiIndex.from_frame(out[["network", "station"]])
        hit = idx.isin(u.index)
        if hit.any():
            sel = u.loc[idx[hit]]
            out.loc[hit, "takeoff_deg"] = sel["takeoff_deg"].to_numpy(float)
            out.loc[hit, "azimuth_deg"] = sel["azimuth_deg"].to_numpy(float)
            if "distance_km" in sel:
                out.loc[hit, "distance_km"] = sel["distance_km"].to_numpy(float)
            out.loc[hit, "ray"] = "skhash"
    return out[["network", "station", "takeoff_deg", "azimuth_deg", "distance_km", "ray"]]


def predicted_polarity(mech, takeoff_deg, azimuth_deg) -> np.ndarray:
    """+1 / -1 first motion the double couple ``mech`` (strike, dip, rake) predicts for rays
    (SKHASH takeoff convention); NaN where the ray is unknown or without a mechanism."""
    tk = np.asarray(takeoff_deg, dtype=float)
    az = np.asarray(azimuth_deg, dtype=float)
    if mech is None:
        return np.full(tk.shape, np.nan)
    s, d, r = (float(mech[k]) for k in ("strike", "dip", "rake"))
    if not all(map(math.isfinite, (s, d, r))):
        return np.full(tk.shape, np.nan)
    ok = np.isfinite(tk) & np.isfinite(az)
    amp = np.full(tk.shape, np.nan)
    if ok.any():
        amp[ok] = focal.p_radiation(s, d, r, focal.ray_vector(tk[ok], az[ok], takeoff_from="up"))
    return np.where(np.isfinite(amp), np.where(amp >= 0, 1.0, -1.0), np.nan)


# -- the station table ------------------------------------------------------------------------
def _by_key(df: pd.DataFrame | None) -> pd.DataFrame:
    if df is None or df.empty:
        return pd.DataFrame()
    d = df.assign(key=df["network"].astype(str) + "." + df["station"].astype(str))
    return d.drop_duplicates("key").set_index("key")


def _at(frame: pd.DataFrame, col: str, keys: list, default) -> list:
    """``frame[col]`` (``frame`` from :func:`_by_key`) at each of ``keys``, ``default``
    where the key or the column is absent. One reindex per column, not a ``.loc`` per
    station: the demo event's 66-station table 48 -> 39 ms (issue 12)."""
    if frame is None or frame.empty or col not in frame:
        return [default] * len(keys)
    present = pd.Index(keys).isin(frame.index)
    return [v if p else default for v, p in zip(frame[col].reindex(keys).tolist(), present)]


def _floats(frame: pd.DataFrame, col: str, keys: list) -> np.ndarray:
    return np.asarray(_at(frame, col, keys, np.nan), dtype=float)


def station_table(stations: pd.DataFrame, polarities: pd.DataFrame, reviewed: pd.DataFrame | None,
                  rays: pd.DataFrame, waveform_keys=(), mechanism=None) -> pd.DataFrame:
    """One row per station of the event (stations with a waveform, a polarity, a SKHASH ray
    or a reviewed pick), sorted by azimuth; columns :data:`STATION_COLUMNS`.

    * ``auto_*``, ``prob_down_recorded``, ``snr``: the event's best automatic picker
      (:data:`pipeline.mechanisms.invert.AUTO_PREFERENCE`); ``published_polarity``, ``manual_polarity``:
      the batch ``published`` / ``manual`` rows; ``reviewed_*``: the review database.
    * ``polarity`` / ``polarity_source``: what an inversion uses now, exactly as
      :func:`pipeline.mechanisms.invert.select_polarities` (``picks='auto'``) decides on the batch picks
      with the reviewed ones merged over the manual ones (NaN: not used);
      ``polarity_source`` is ``review`` for a reviewed pick, else the method.
    * ``predicted``: the first motion ``mechanism`` predicts on the station's ray;
      ``agreement``: ``polarity == predicted`` (None where either is missing).
    """
    from pipeline.mechanisms.invert import AUTO_PREFERENCE, select_polarities

    from pipeline.review.reviews import apply_reviews

    pol = polarities if polarities is not None else pd.DataFrame()
    wkeys = set(map(str, waveform_keys))
    keys = set(wkeys)
    for df in (pol, reviewed, rays[rays["ray"] == "skhash"] if len(rays) else rays):
        if df is not None and len(df):
            keys |= set(df["network"].astype(str) + "." + df["station"].astype(str))
    st = _by_key(stations)
    keys = sorted(k for k in keys if k in st.index)
    out = pd.DataFrame({"key": keys})
    out["network"] = _at(st, "network", keys, None)
    out["station"] = _at(st, "station", keys, None)
    out["reversed"] = [bool(v) for v in _at(st, "reversed", keys, False)]
    r = _by_key(rays)
    for c in ("azimuth_deg", "takeoff_deg", "distance_km"):
        out[c] = _floats(r, c, keys)
    out["ray"] = _at(r, "ray", keys, "none")
    out["has_waveform"] = out["key"].isin(wkeys)

    auto_method = next((m for m in AUTO_PREFERENCE if len(pol) and (pol["method"] == m).any()), None)
    auto = _by_key(pol[pol["method"] == auto_method]) if auto_method else pd.DataFrame()
    out["auto_method"] = auto_method
    out["auto_polarity"] = _floats(auto, "polarity", keys)
    for c in ("prob_down_recorded", "snr"):
        out[c] = _floats(auto, c, keys)
    for method, col in (("published", "published_polarity"), ("manual", "manual_polarity")):
        m = _by_key(pol[pol["method"] == method]) if len(pol) else pd.DataFrame()
        out[col] = _floats(m, "polarity", keys)
    rv = _by_key(reviewed)
    out["reviewed_polarity"] = _floats(rv, "polarity", keys)
    out["reviewer"] = _at(rv, "reviewer", keys, None)
    out["reviewed_at"] = _at(rv, "updated_at", keys, None)

    if len(pol) or (reviewed is not None and len(reviewed)):
        base = pol if len(pol) else pd.DataFrame(columns=["event_id", "network", "station", "method", "polarity",
                                                          "snr"])
        merged = apply_reviews(base, reviewed) if reviewed is not None and len(reviewed) else base.copy()
        if "p_source" not in merged:
            merged["p_source"] = None
        merged["snr"] = pd.to_numeric(merged["snr"], errors="coerce")
        chosen = _by_key(select_polarities(merged, "auto"))
    else:
        chosen = pd.DataFrame()
    out["polarity"] = _floats(chosen, "polarity", keys)
    present = pd.Index(keys).isin(chosen.index)
    out["polarity_source"] = [
        ("review" if src == "review" else str(method)) if p else None
        for src, method, p in zip(_at(chosen, "p_source", keys, None), _at(chosen, "method", keys, None), present)]
    out["predicted"] = predicted_polarity(mechanism, out["takeoff_deg"], out["azimuth_deg"])
    agree = []
    for p, q in zip(out["polarity"], out["predicted"]):
        agree.append(None if not (np.isfinite(p) and np.isfinite(q)) else bool(p == q))
    out["agreement"] = pd.Series(agree, dtype=object)
    out = out.sort_values(["azimuth_deg", "key"], na_position="last").reset_index(drop=True)
    return out[STATION_COLUMNS]


# -- beachball with stations -----------------------------------------------------------------
def _circle(n=181):
    t = np.linspace(0, 2 * np.pi, n)
    return np.sin(t), np.cos(t)


def station_marker_style(table: pd.DataFrame, current: str | None = None) -> dict:
    """Per-station marker arrays of the beachball's station trace (in ``table`` order,
    stations without a ray left out) and the ring position of ``current``:
    ``keys, x, y, symbol, color, line_color, size, hovertext, ring_x, ring_y``."""
    t = table[np.isfinite(table["takeoff_deg"].astype(float)) & np.isfinite(table["azimuth_deg"].astype(float))]
    x, y = beachball.project_ray(t["takeoff_deg"].to_numpy(float), t["azimuth_deg"].to_numpy(float),
                                 takeoff_from="up")
    x, y = np.atleast_1d(x).round(5), np.atleast_1d(y).round(5)
    sym, col, line, size, text = [], [], [], [], []
    for row in t.itertuples(index=False):
        p = row.polarity
        used = p is not None and np.isfinite(p) and p != 0
        c = UNKNOWN if row.agreement is None else (AGREE if row.agreement else DISAGREE)
        if not used:
            sym.append("x-thin")
            col.append(UNUSED)
            line.append(UNUSED)
            size.append(7)
        elif p > 0:
            sym.append("circle")
            col.append(c)
            line.append("white" if c != DISAGREE else DISAGREE)
            size.append(11)
        else:
            sym.append("circle")
            col.append("white")
            line.append(c)
            size.append(11)
        up = row.takeoff_deg < 90
        fit = {None: "", True: " · fits", False: " · MISFIT"}[row.agreement]
        text.append(
            f"<b>{row.key}</b>{fit}<br>polarity {arrow(p)} ({row.polarity_source or 'not used'})"
            f"<br>az {_fmt(row.azimuth_deg, '.0f')}°, takeoff {_fmt(row.takeoff_deg, '.0f')}° from up"
            f" ({'up-going: plotted at az+180°' if up else 'down-going'})"
            f"<br>{_fmt(row.distance_km, '.2f')} km · ray: {row.ray}")
    keys = t["key"].tolist()
    ring_x, ring_y = [None], [None]
    if current in keys:
        i = keys.index(current)
        ring_x, ring_y = [float(x[i])], [float(y[i])]
    return {"keys": keys, "x": x.tolist(), "y": y.tolist(), "symbol": sym, "color": col,
            "line_color": line, "size": size, "hovertext": text, "ring_x": ring_x, "ring_y": ring_y}


#: trace indices of :func:`mechanism_figure` (always present, empty when not applicable)
BALL_TRACES = {"net": 0, "compression": 1, "acceptable": 2, "nodal": 3, "p": 4, "t": 5, "stations": 6, "ring": 7}


def _nan_lines(x, y):
    """(K, L) arrays -> flat float32 arrays with a NaN after each row."""
    pad = np.full((x.shape[0], 1), np.nan)
    return np.hstack([x, pad]).ravel().astype(np.float32), np.hstack([y, pad]).ravel().astype(np.float32)


def mechanism_figure(mechanism, table: pd.DataFrame, acceptable: pd.DataFrame | None = None,
                     current: str | None = None, *, note: str | None = None, max_planes: int = 150,
                     height: int = 400) -> go.Figure:
    """Lower-hemisphere equal-area beachball of ``mechanism`` (a mapping with strike, dip,
    rake; None = no mechanism: an empty net with ``note``) with SKHASH's ``acceptable``
    planes drawn faintly (both nodal planes of at most ``max_planes`` of them, an evenly
    spaced subset if more), the P and T axes, and the stations of ``table``
    (:func:`station_table`) at their rays, ``current`` ringed.

    The traces are always :data:`BALL_TRACES` (empty where not applicable), so a Patch can
    address the station and ring traces by index. ``layout.meta``: ``{"keys": [...],
    "planes_drawn": n, "planes_total": N, "has_mechanism": bool}``; station points carry
    their key in ``customdata``.
    """
    cx, cy = _circle()
    traces = [go.Scatter(x=cx, y=cy, mode="lines", fill="toself", fillcolor="white",
                         line=dict(color=NODAL, width=1.2), hoverinfo="skip", name="net")]
    has_mech = mechanism is not None and all(_finite(mechanism.get(k)) for k in ("strike", "dip", "rake"))
    acc = None if acceptable is None else acceptable[["strike", "dip", "rake"]].astype(float).dropna()
    n_total = 0 if acc is None else len(acc)
    n_drawn = 0
    comp = dict(x=[], y=[])
    accx = dict(x=[], y=[])
    nod = dict(x=[], y=[])
    axes_xy = {"p": (None, None, ""), "t": (None, None, "")}
    if has_mech:
        s, d, r = (float(mechanism[k]) for k in ("strike", "dip", "rake"))
        px, py = [], []
        for x, y in beachball.compressional_patches(s, d, r, n_points=120):
            px += list(np.round(x, 5)) + [None]
            py += list(np.round(y, 5)) + [None]
        comp = dict(x=px, y=py)
        if n_total:
            a = acc
            if len(a) > max_planes:
                a = a.iloc[np.linspace(0, len(a) - 1, max_planes).round().astype(int)]
            n_drawn = len(a)
            s1, d1, r1 = (a[c].to_numpy() for c in ("strike", "dip", "rake"))
            s2, d2, _ = focal.auxiliary_plane(s1, d1, r1)
            lx, ly = beachball.nodal_line(np.concatenate([s1, s2]), np.concatenate([d1, d2]), n=37)
            ax_, ay_ = _nan_lines(np.atleast_2d(lx), np.atleast_2d(ly))
            accx = dict(x=ax_, y=ay_)
        s2, d2, _ = focal.auxiliary_plane(s, d, r)
        lx, ly = beachball.nodal_line(np.array([s, float(s2)]), np.array([d, float(d2)]), n=91)
        nx_, ny_ = _nan_lines(lx, ly)
        nod = dict(x=nx_, y=ny_)
        pbt = focal.pbt_axes(s, d, r)
        for name in ("p", "t"):
            tr, pl = pbt[name]
            x, y = beachball.project(tr, pl)
            axes_xy[name] = (float(x), float(y), f"{name.upper()} axis: trend {float(tr):.0f}°, plunge {float(pl):.0f}°")
    traces.append(go.Scatter(**comp, mode="lines", fill="toself", fillcolor=QUADRANT,
                             line=dict(width=0, color=QUADRANT), hoverinfo="skip", name="compression"))
    traces.append(go.Scatter(**accx, mode="lines", line=dict(color=ACCEPTABLE, width=1), hoverinfo="skip",
                             name="acceptable planes"))
    traces.append(go.Scatter(**nod, mode="lines", line=dict(color=NODAL, width=1.4), hoverinfo="skip",
                             name="nodal planes"))
    for name, fill, txt in (("p", "white", NODAL), ("t", NODAL, "white")):
        x, y, hover = axes_xy[name]
        traces.append(go.Scatter(
            x=[] if x is None else [x], y=[] if y is None else [y], mode="markers+text", text=[name.upper()],
            textfont=dict(color=txt, size=11, family=FONT["family"]),
            marker=dict(symbol="square", size=17, color=fill, line=dict(color=NODAL, width=1)),
            hovertext=[hover], hoverinfo="text", name=f"{name.upper()} axis"))
    style = station_marker_style(table, current)
    traces.append(go.Scatter(
        x=style["x"], y=style["y"], mode="markers", customdata=style["keys"], hovertext=style["hovertext"],
        hoverinfo="text", name="stations",
        marker=dict(symbol=style["symbol"], color=style["color"], size=style["size"],
                    line=dict(color=style["line_color"], width=1.6))))
    traces.append(go.Scatter(x=style["ring_x"], y=style["ring_y"], mode="markers", hoverinfo="skip",
                             name="current station",
                             marker=dict(symbol="circle-open", size=24, color=ACCENT, line=dict(width=3))))
    annotations = [dict(x=0, y=1.07, text="N", showarrow=False, font=dict(size=12, color="#495057"),
                        xref="x", yref="y")]
    if not has_mech:
        annotations.append(dict(x=0, y=0, text=note or "no mechanism", showarrow=False, xref="x", yref="y",
                                font=dict(size=13, color="#6c757d"), bgcolor="rgba(255,255,255,0.85)"))
    fig = go.Figure(traces)
    fig.update_traces(showlegend=False)
    fig.update_layout(
        height=height, margin=dict(l=4, r=4, t=4, b=4), plot_bgcolor="white", paper_bgcolor="white",
        font=FONT, showlegend=False, dragmode=False, hovermode="closest", annotations=annotations,
        xaxis=dict(range=[-1.13, 1.13], visible=False, fixedrange=True),
        yaxis=dict(range=[-1.13, 1.13], visible=False, scaleanchor="x", scaleratio=1, fixedrange=True),
        meta={"keys": style["keys"], "planes_drawn": n_drawn, "planes_total": n_total, "has_mechanism": has_mech},
    )
    return fig


# -- small mechanisms side by side ------------------------------------------------------------
def comparison_figure(mechanisms: list[dict], height: int = 160) -> go.Figure:
    """Small beachballs side by side: ``mechanisms`` = ``[{"label", "strike", "dip",
    "rake", "color"?, "subtitle"?}]`` (an entry without angles draws an empty, dashed
    circle with its label, e.g. "not solved")."""
    fig = go.Figure()
    spacing = 3.3
    annotations = []
    for i, m in enumerate(mechanisms):
        x0 = i * spacing
        ok = all(m.get(k) is not None and math.isfinite(float(m[k])) for k in ("strike", "dip", "rake"))
        cx, cy = _circle(97)
        fig.add_trace(go.Scatter(x=x0 + cx, y=cy, mode="lines", fill="toself", fillcolor="white",
                                 line=dict(color=NODAL if ok else UNUSED, width=1, dash=None if ok else "dot"),
                                 hoverinfo="skip", showlegend=False))
        if ok:
            col = m.get("color") or "#495057"
            px, py = [], []
            for x, y in beachball.compressional_patches(float(m["strike"]), float(m["dip"]), float(m["rake"]),
                                                        n_points=80):
                px += list(x0 + x) + [None]
                py += list(y) + [None]
            fig.add_trace(go.Scatter(x=px, y=py, mode="lines", fill="toself", fillcolor=col,
                                     line=dict(width=0, color=col), showlegend=False,
                                     hoverinfo="skip"))
            fig.add_trace(go.Scatter(
                x=[x0], y=[0], mode="markers", marker=dict(size=40, color="rgba(0,0,0,0)"), showlegend=False,
                hovertext=[f"{m.get('label', '')}: {float(m['strike']):.1f} / {float(m['dip']):.1f} / "
                           f"{float(m['rake']):.1f}"], hoverinfo="text"))
        annotations.append(dict(x=x0, y=-1.12, yanchor="top", showarrow=False, xref="x", yref="y",
                                text=f"<b>{m.get('label', '')}</b>" + (f"<br>{m['subtitle']}" if m.get("subtitle")
                                                                        else ""),
                                font=dict(size=11, color="#343a40")))
    n = max(1, len(mechanisms))
    fig.update_layout(
        height=height, margin=dict(l=2, r=2, t=2, b=2), plot_bgcolor="white", paper_bgcolor="white", font=FONT,
        showlegend=False, dragmode=False, annotations=annotations,
        xaxis=dict(range=[-1.3, (n - 1) * spacing + 1.3], visible=False, fixedrange=True),
        yaxis=dict(range=[-2.45, 1.08], visible=False, scaleanchor="x", scaleratio=1, fixedrange=True),
    )
    return fig


# -- waveforms --------------------------------------------------------------------------------
def parse_bandpass(low, high, sampling_rate: float) -> tuple[float, float]:
    """Validated band-pass corners (Hz): ``0 < low < high < Nyquist``; ValueError otherwise."""
    try:
        lo, hi = float(low), float(high)
    except (TypeError, ValueError):
        raise ValueError("band-pass corners must be numbers") from None
    nyq = 0.5 * float(sampling_rate)
    if not (math.isfinite(lo) and math.isfinite(hi)) or not (0 < lo < hi < nyq):
        raise ValueError(f"band-pass corners must satisfy 0 < low < high < {nyq:g} Hz (Nyquist)")
    return lo, hi


def bandpass(x, sampling_rate: float, low: float, high: float, order: int = 3) -> np.ndarray:
    """Zero-phase Butterworth band-pass (``order`` poles, run forwards and backwards with
    :func:`scipy.signal.sosfiltfilt`) of a demeaned trace; corners in Hz."""
    from scipy.signal import butter, sosfiltfilt

    lo, hi = parse_bandpass(low, high, sampling_rate)
    x = np.asarray(x, dtype=float)
    x = x - np.mean(x)
    sos = butter(order, [lo, hi], btype="bandpass", fs=float(sampling_rate), output="sos")
    padlen = min(3 * (2 * len(sos) + 1), max(0, len(x) - 1))
    return sosfiltfilt(sos, x, padlen=padlen)


def prepare_trace(samples, t0_s: float, sampling_rate: float, *, flip: bool, band=None) -> tuple[np.ndarray, np.ndarray]:
    """(time relative to P in s, amplitude normalised to max |a| = 1) of one snippet: the
    pre-P mean removed, multiplied by -1 when ``flip``, band-passed when ``band`` =
    (low, high) Hz. A dead (all-zero / non-finite) trace gives zeros."""
    a = np.asarray(samples, dtype=float)
    t = float(t0_s) + np.arange(a.size) / float(sampling_rate)
    a = np.where(np.isfinite(a), a, 0.0)
    pre = a[t < 0]
    a = a - (pre.mean() if pre.size else a.mean())
    if flip:
        a = -a
    if band is not None and a.size > 12 and np.any(a):
        a = bandpass(a, sampling_rate, band[0], band[1])
    peak = np.max(np.abs(a)) if a.size else 0.0
    a = a / peak if peak > 0 else np.zeros_like(a)
    return t, a


def _wave_color(p) -> str:
    if p is None or not np.isfinite(p):
        return NO_POL_COLOR
    return POL_COLORS.get(int(p), NO_POL_COLOR)


def shown_polarity(polarity, reversed_, mode: str):
    """The polarity in the sense the traces are drawn: true ground motion (``mode='true'``),
    or, ``'recorded'``, as the sensor recorded it (x -1 for a reversed station). NaN stays NaN."""
    if mode == "recorded" and bool(reversed_) and polarity is not None and np.isfinite(polarity):
        return -polarity
    return polarity


def _recorded_note(row, mode: str) -> str:
    """' as recorded, true ↓' for a reversed station's polarity in the recorded view."""
    if mode == "recorded" and bool(row.reversed) and _finite(row.polarity):
        return f" as recorded, true {arrow(row.polarity)}"
    return ""


def _side_text(row, mode: str = "true") -> str:
    """Right-hand label of a trace (``row``: a station-table row as a mapping): the polarity
    arrow in the drawn sense; a reversed station in the recorded view adds its true sense."""
    shown = shown_polarity(row["polarity"], row["reversed"], mode)
    flipped = mode == "recorded" and bool(row["reversed"]) and _finite(row["polarity"])
    parts = [f"<b>{arrow(shown)}</b>" + (f" rec (true {arrow(row['polarity'])})" if flipped else "")]
    if _finite(row["prob_down_recorded"]):
        parts.append(f"p↓rec {float(row['prob_down_recorded']):.2f}")
    if _finite(row["snr"]):
        parts.append(f"SNR {float(row['snr']):.1f}")
    if _finite(row["reviewed_polarity"]):
        parts.append("✎")
    return " · ".join(parts)


def waveform_styles(table: pd.DataFrame, keys: list[str], current: str | None = None, mode: str = "true") -> dict:
    """Per-trace styles of :func:`waveform_figure` for ``keys`` (its trace order), for Patch
    updates: ``colors``, ``widths``, ``side`` (right-hand labels) and ``current_index``.
    Colours and arrows follow the drawn traces (:func:`shown_polarity`): in the recorded
    view a reversed station's true up is drawn, coloured and labelled down."""
    t = table.set_index("key")
    colors, widths, side = [], [], []
    for k in keys:
        row = t.loc[k] if k in t.index else None
        colors.append(_wave_color(shown_polarity(row["polarity"], row["reversed"], mode))
                      if row is not None else NO_POL_COLOR)
        widths.append(2.0 if k == current else 1.0)
        side.append(_side_text(row, mode) if row is not None else "")
    return {"colors": colors, "widths": widths, "side": side,
            "current_index": keys.index(current) if current in keys else None}


def waveform_figure(waves: pd.DataFrame, table: pd.DataFrame, *, mode: str = "true", band=None,
                    current: str | None = None, spacing_px: int = 26, x_range=None) -> go.Figure:
    """Vertical P snippets aligned on P (t = 0), one row per station in ``table`` order
    (azimuth), coloured by the polarity an inversion uses now (orange up, blue down, grey
    none). ``mode='true'``: true ground motion (reversed stations multiplied by -1);
    ``'recorded'``: as recorded. ``band``: (low, high) Hz zero-phase band-pass or None.
    Amplitudes are normalised per trace. Right-hand labels: polarity arrow, the automatic
    picker's probability that the *recorded* first motion is down, SNR, ✎ = reviewed.

    ``layout.meta``: ``{"keys": [...], "first_trace": index of the first station trace,
    "n_side": first annotation index of the side labels}``; trace ``first_trace + i`` is the
    station ``keys[i]`` (also its ``name``)."""
    if mode not in ("true", "recorded"):
        raise ValueError("mode must be 'true' or 'recorded'")
    w = waves.assign(key=waves["network"].astype(str) + "." + waves["station"].astype(str))
    w = w.drop_duplicates("key").set_index("key")
    rows = table[table["key"].isin(w.index)].reset_index(drop=True)
    keys = rows["key"].tolist()
    n = len(keys)
    traces = []
    styles = waveform_styles(table, keys, current, mode)
    ci = styles["current_index"]
    shapes = [dict(type="line", x0=0, x1=0, y0=0, y1=1, xref="x", yref="paper",
                   line=dict(color="#495057", width=1, dash="dot")),
              dict(type="rect", xref="paper", x0=0, x1=1, yref="y",
                   y0=(-ci - 0.5) if ci is not None else 1, y1=(-ci + 0.5) if ci is not None else 1,
                   fillcolor="rgba(214,0,143,0.09)", line=dict(width=0), layer="below")]
    tmin, tmax = np.inf, -np.inf
    for i, row in enumerate(rows.itertuples(index=False)):
        wr = w.loc[row.key]
        flip = bool(row.reversed) and mode == "true"
        t, a = prepare_trace(wr["samples"], wr["t0_s"], wr["sampling_rate"], flip=flip, band=band)
        tmin, tmax = min(tmin, t[0]) if t.size else tmin, max(tmax, t[-1]) if t.size else tmax
        traces.append(dict(
            type="scatter", x0=float(t[0]) if t.size else 0.0, dx=1.0 / float(wr["sampling_rate"]),
            y=(-i + 0.45 * a).astype(np.float32), mode="lines",
            line=dict(color=styles["colors"][i], width=styles["widths"][i]), name=row.key, showlegend=False,
            hovertemplate=f"<b>{row.key}</b> az {_fmt(row.azimuth_deg, '.0f')}° · polarity "
                          f"{arrow(shown_polarity(row.polarity, row.reversed, mode))}{_recorded_note(row, mode)}"
                          f" ({row.polarity_source or 'not used'})<br>t = %{{x:.3f}} s<extra></extra>"))
    annotations = [dict(x=1.0, xref="paper", xanchor="left", y=-i, yref="y", text=styles["side"][i],
                        showarrow=False, font=dict(size=10, color="#495057"), align="left", xshift=4)
                   for i in range(n)]
    mixed = 0 < int(rows["reversed"].astype(bool).sum()) < len(rows)   # mark reversed stations if not all are
    ticktext = [f"{'<b>⇅</b> ' if mixed and r.reversed else ''}{r.station} "
                f"<span style='color:#868e96'>{_fmt(r.azimuth_deg, '.0f')}°</span>" for r in rows.itertuples(index=False)]
    if not np.isfinite(tmin):
        tmin, tmax = -0.4, 0.4
    xr = list(x_range) if x_range is not None else [max(tmin, -0.15), min(tmax, 0.3)]
    height = max(160, 44 + spacing_px * max(n, 1))
    if n == 0:
        annotations.append(dict(text="no waveforms for this event", x=0.5, y=0.5, xref="paper", yref="paper",
                                showarrow=False, font=dict(size=13, color="#6c757d")))
    layout = dict(
        height=height, margin=dict(l=84, r=168, t=26, b=12), plot_bgcolor="white", paper_bgcolor="white",
        font=FONT, showlegend=False, hovermode="closest", shapes=shapes, annotations=annotations,
        dragmode="zoom",
        xaxis=dict(range=xr, zeroline=False, showgrid=True, gridcolor="#f1f3f5", side="top",
                   ticksuffix=" s", tickfont=dict(size=10), constrain="domain"),
        yaxis=dict(range=[-n + 0.4, 0.65], tickvals=list(range(0, -n, -1)), ticktext=ticktext, showgrid=False,
                   zeroline=False, fixedrange=True, tickfont=dict(size=10.5)),
        meta={"keys": keys, "first_trace": 0, "n_side": 0, "mode": mode},
    )
    # unvalidated: plotly.py's per-property validation made this 65 ms instead of 25 ms for the
    # demo event's 66 traces (issue 12); every property here is one plotly.js knows (the page
    # tests draw it), and the JSON is the same
    return go.Figure(data=traces, layout=layout, _validate=False)


# -- CSV --------------------------------------------------------------------------------------
#: columns of the station CSV (what the page's station table shows)
CSV_COLUMNS = ["network", "station", "azimuth_deg", "takeoff_deg", "distance_km", "ray", "reversed",
               "auto_method", "auto_polarity", "prob_down_recorded", "snr", "published_polarity",
               "manual_polarity", "reviewed_polarity", "reviewer", "reviewed_at", "polarity", "polarity_source",
               "predicted", "agreement"]


def station_csv_frame(table: pd.DataFrame, event_id: str, mechanism_label: str | None = None) -> pd.DataFrame:
    """The station table as exported: ``event_id`` + :data:`CSV_COLUMNS` (polarities true
    motion; ``predicted``/``agreement`` against ``mechanism_label``'s mechanism)."""
    out = table[CSV_COLUMNS].copy()
    out.insert(0, "event_id", event_id)
    out["mechanism"] = mechanism_label
    for c in ("auto_polarity", "published_polarity", "manual_polarity", "reviewed_polarity", "polarity", "predicted"):
        out[c] = out[c].astype("Int8")
    return out
