"""Figures and helpers of the classification page, as pure functions of DataFrames (no Dash,
no DuckDB). The stereonets live in :mod:`components.stereonet`.

* **Rule table** (:func:`check_rule`, :func:`encode_rule`, :func:`decode_rule`,
  :func:`parse_hash`, :func:`format_hash`): the editable group rule of
  :mod:`pipeline.mechanisms.groups` (rows ``group, strike_min, strike_max, dip_min, dip_max,
  abs_rake_min``; a mechanism gets the first group, in order of first appearance, any of
  whose rows it satisfies, else ``other``) as DataTable rows and as a compact URL fragment
  ``#rule=g1:0,12,0,90,165;g1:170,192,0,90,165;...&ml=1.5`` (group names percent-encoded;
  the published rule and the default threshold are left out, so the plain page has no
  fragment).
* **Groups** (:func:`regroup`, :func:`group_order`, :func:`group_colors`,
  :func:`group_summary`): the mechanisms re-classified with a rule (on the values stored,
  0.1 deg for ToC2ME -- defect 3), the original's colours for g1..g4/other and a fixed
  palette for new names, and the per-group counts with the moment-tensor averages.
* **Figures**: :func:`distributions_figure` (per group: axial strike rose with mirrored
  bins, dip and rake histograms), :func:`ternary_figure` (Frohlich 1992 ternary diagram,
  points coloured by Zoback class), :func:`classification_map_figure` (east/north km map:
  a strike tick and a hollow circle per event, beachballs above an ML threshold, wells).
  The page draws the distributions and the ternary diagram from these dicts as server SVG
  (:mod:`components.classification_svg`), the map with plotly.js.

Figures are plain dicts (``{"data": [...], "layout": {...}}``) with typed arrays for the
large coordinate arrays, like :mod:`components.map_figure`.
"""
from __future__ import annotations

import math
from urllib.parse import quote, unquote

import numpy as np
import pandas as pd

from pipeline.analysis.mechanism_stats import FROHLICH_VERTICES, frohlich_xy, rose_histogram
from pipeline.mechanisms import focal
from pipeline.mechanisms.groups import OTHER, PUBLISHED_RULE, RULE_COLUMNS, classify_groups, validate_rule, zoback_class

from .beachball import beachball_xy, magnitude_radius
from .map_figure import GROUP_COLORS, MODEBAR_PX, WELL_COLOR, _AXIS, _TEMPLATE, typed

#: default ML threshold of the beachballs on the classification map (analyses.md 1.3:
#: ML > 1.86 -> 12 events on ToC2ME)
DEFAULT_THRESHOLD = 1.86
#: strike tick length on the map, km
TICK_KM = 0.1
#: beachball radius on the map = magnitude_radius(ML) * BALL_SCALE (km)
BALL_SCALE = 1.3
#: most mechanisms the classification map draws as SVG markers (``scatter``); above, WebGL
#: (``scattergl``). SVG's cost grows with each marker's node, WebGL's is mostly its per-plot
#: set-up, which in a browser without a GPU (software WebGL) is large. Measured when plotly.js
#: still drew the ternary diagram (it is server SVG since stop 21): the ToC2ME ternary redrawn in
#: a warm page in headless Chromium on this machine (an inner loop, not a page load):
#: 2,519 points SVG 0.12-0.19 s, WebGL 0.20-0.27 s (three sets of 3 redraws); the same
#: points 4x (10,076) SVG 0.48-0.68 s, WebGL 0.25-0.35 s; the classification map's 2,519
#: ticks and circles 0.53-0.63 s all SVG against 0.59-0.98 s. Interpolated linearly, the
#: two cross near 3,500 points; the threshold was set from these same measurements, and at
#: the page level the change was within the noise (README, stop 20).
SVG_MAX_POINTS = 3000


def point_trace_type(n_points: int) -> str:
    """``'scatter'`` (SVG) for at most :data:`SVG_MAX_POINTS` points, else ``'scattergl'``."""
    return "scatter" if n_points <= SVG_MAX_POINTS else "scattergl"


#: rows the rule table may hold; longest group name
MAX_RULE_ROWS = 40
MAX_NAME = 24
#: longest encoded rule (:func:`encode_rule`) read back
MAX_RULE_CODE = 4000
#: colours for group names the original does not have
EXTRA_COLORS = ("#8e44ad", "#1f77b4", "#e377c2", "#17becf", "#8c564b", "#7f7f7f", "#bcbd22", "#2ca02c")
#: Zoback (1992) classes, drawing order and colours
ZOBACK_COLORS = {
    "SS": "#1f77b4", "U": "#9aa0a6", "TF": "#2ca02c", "TS": "#17becf", "NS": "#ff7f0e", "NF": "#d62728",
}
ZOBACK_NAMES = {"NF": "normal", "NS": "normal + strike-slip", "SS": "strike-slip",
                "TS": "thrust + strike-slip", "TF": "thrust", "U": "unknown (oblique)"}


# ------------------------------------------------------------------------------ rule table
def default_rule_rows() -> list[dict]:
    """The published rule as DataTable rows."""
    return rule_rows(PUBLISHED_RULE)


def rule_rows(rule: pd.DataFrame) -> list[dict]:
    """DataTable rows (plain Python values; whole numbers as int) of a rule frame."""
    out = []
    for rec in rule[RULE_COLUMNS].to_dict("records"):
        row = {"group": str(rec["group"])}
        for c in RULE_COLUMNS[1:]:
            v = float(rec[c])
            row[c] = int(v) if v.is_integer() else v
        out.append(row)
    return out


def _num(v):
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, str):
        try:
            f = float(v.strip())
        except ValueError:
            return None
        return f if math.isfinite(f) else None
    return None


def check_rule(rows) -> tuple[pd.DataFrame | None, str | None]:
    """``(rule frame, None)`` for valid DataTable rows, else ``(None, message)``. Never
    raises: the message is :func:`pipeline.mechanisms.groups.validate_rule`'s (row numbers 1-based)
    or says what else is wrong (no rows, too many, a bad group name)."""
    try:
        if not isinstance(rows, (list, tuple)) or not rows:
            return None, "group rule: add at least one row (without rows every mechanism is 'other')"
        if len(rows) > MAX_RULE_ROWS:
            return None, f"group rule: at most {MAX_RULE_ROWS} rows"
        recs = []
        for i, r in enumerate(rows, start=1):
            if not isinstance(r, dict):
                return None, f"group rule row {i}: not a row"
            name = r.get("group")
            name = name.strip() if isinstance(name, str) else ("" if name is None else str(name).strip())
            if len(name) > MAX_NAME or not name.isprintable():
                return None, f"group rule row {i}: group name must be printable, at most {MAX_NAME} characters"
            recs.append({"group": name, **{c: _num(r.get(c)) for c in RULE_COLUMNS[1:]}})
        rule = validate_rule(pd.DataFrame(recs, columns=RULE_COLUMNS))
        return rule.reset_index(drop=True), None
    except ValueError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - an edit must never produce a traceback
        return None, f"group rule: cannot read the table ({type(exc).__name__})"


def _fmt_num(v: float) -> str:
    return format(float(v), "g")


def encode_rule(rule: pd.DataFrame) -> str:
    """Compact text of a (valid) rule: ``name:smin,smax,dmin,dmax,rmin`` rows joined by
    ``;`` (names percent-encoded). Inverse of :func:`decode_rule`."""
    parts = []
    for rec in rule[RULE_COLUMNS].itertuples(index=False):
        parts.append(quote(str(rec[0]), safe="") + ":" + ",".join(_fmt_num(v) for v in rec[1:]))
    return ";".join(parts)


def decode_rule(code) -> pd.DataFrame | None:
    """The rule of :func:`encode_rule` text, validated; None when it is not a valid rule.
    Never raises."""
    return read_rule(code)[0]


def read_rule(code) -> tuple[pd.DataFrame | None, str | None]:
    """``(rule, None)`` for valid :func:`encode_rule` text, else ``(None, message)`` saying
    what is wrong (the :func:`check_rule` message for a rule that parses but is invalid).
    Never raises."""
    if not isinstance(code, str) or not code:
        return None, "group rule: empty"
    if len(code) > MAX_RULE_CODE:
        return None, f"group rule: longer than {MAX_RULE_CODE} characters"
    rows = []
    for i, part in enumerate(code.split(";")[: MAX_RULE_ROWS + 1], start=1):
        name, sep, nums = part.rpartition(":")
        vals = nums.split(",")
        if not sep or len(vals) != 5:
            return None, f"group rule row {i}: not name:strike_min,strike_max,dip_min,dip_max,abs_rake_min"
        try:
            name = unquote(name, errors="strict")
        except UnicodeDecodeError:
            return None, f"group rule row {i}: the group name is not percent-encoded UTF-8"
        rows.append({"group": name, **dict(zip(RULE_COLUMNS[1:], vals))})
    return check_rule(rows)


def same_rule(a: pd.DataFrame | None, b: pd.DataFrame | None) -> bool:
    if a is None or b is None:
        return a is b
    return encode_rule(a) == encode_rule(b)


def parse_hash(hash_: str | None) -> dict:
    """``{'rule': frame or None, 'ml': float or None, 'bad': bool}`` from a URL fragment
    (``#rule=...&ml=...``). ``rule``/``ml`` are None when absent (= defaults); ``bad`` is
    True when a value is present but unreadable (it is then ignored)."""
    out = {"rule": None, "ml": None, "bad": False}
    if not isinstance(hash_, str):
        return out
    h = hash_[1:] if hash_.startswith("#") else hash_
    for item in h[:5000].split("&"):
        key, sep, value = item.partition("=")
        if not sep:
            continue
        if key == "rule":
            rule = decode_rule(value)
            out["rule"], out["bad"] = rule, out["bad"] or rule is None
        elif key == "ml":
            v = _num(value)
            if v is None or not -10 <= v <= 10:
                out["bad"] = True
            else:
                out["ml"] = round(v, 2)
    return out


def format_hash(rule: pd.DataFrame | None, ml: float | None) -> str:
    """The fragment for ``rule`` and threshold ``ml``: ``''`` for the published rule and
    the default threshold, else ``#rule=...&ml=...`` with only the non-defaults."""
    parts = []
    if rule is not None and not same_rule(rule, PUBLISHED_RULE):
        parts.append("rule=" + encode_rule(rule))
    if ml is not None and _num(ml) is not None and abs(float(ml) - DEFAULT_THRESHOLD) > 1e-9:
        parts.append(f"ml={float(ml):g}")
    return ("#" + "&".join(parts)) if parts else ""


def new_rule_row(rows) -> dict:
    """A row to append: the next unused ``gN`` name with the full strike/dip range and
    the published |rake| bound."""
    names = {str(r.get("group")) for r in (rows or []) if isinstance(r, dict)}
    k = 1
    while f"g{k}" in names:
        k += 1
    return {"group": f"g{k}", "strike_min": 0, "strike_max": 360, "dip_min": 0, "dip_max": 90, "abs_rake_min": 165}


# ------------------------------------------------------------------------------ groups
def group_order(rule: pd.DataFrame | None) -> list[str]:
    """Group labels of ``rule`` in order of first appearance, then ``other``."""
    names = list(dict.fromkeys(rule["group"].astype(str))) if rule is not None else []
    return [g for g in names if g != OTHER] + [OTHER]


def group_colors(order) -> dict[str, str]:
    """Colour per group: the original's for g1..g4/other, :data:`EXTRA_COLORS` in turn for
    other names."""
    out, k = {}, 0
    for g in order:
        if g in GROUP_COLORS:
            out[g] = GROUP_COLORS[g]
        else:
            out[g] = EXTRA_COLORS[k % len(EXTRA_COLORS)]
            k += 1
    return out


def regroup(mechanisms: pd.DataFrame, rule: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``mechanisms`` with ``group`` from ``rule`` (plane-1 ``strike, dip,
    rake`` as stored) and the stored group kept as ``group_stored``."""
    out = mechanisms.copy()
    out["group_stored"] = out["group"] if "group" in out else None
    if len(out):
        out["group"] = classify_groups(out["strike"].to_numpy(dtype=float), out["dip"].to_numpy(dtype=float),
                                       out["rake"].to_numpy(dtype=float), rule)
    else:
        out["group"] = pd.Series([], dtype=object)
    return out


def group_summary(mechanisms: pd.DataFrame, order, averages: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per group of ``order``: ``group, n, share`` (fraction), ``changed`` (rows whose
    ``group_stored`` differs) and, from ``averages`` (a
    :func:`~pipeline.analysis.mechanism_stats.group_average_table`), ``strike, dip, rake,
    kagan_median, kagan_p90`` (NaN without an average)."""
    total = len(mechanisms)
    g = mechanisms["group"].astype(str) if total else pd.Series([], dtype=str)
    counts = g.value_counts()
    changed = (g != mechanisms["group_stored"].astype(str)).groupby(g).sum() if total and \
        "group_stored" in mechanisms else pd.Series(dtype=int)
    avg = averages.set_index("group") if averages is not None and len(averages) else None
    rows = []
    for name in order:
        n = int(counts.get(name, 0))
        row = {"group": name, "n": n, "share": n / total if total else 0.0, "changed": int(changed.get(name, 0))}
        for c in ("strike", "dip", "rake", "kagan_median", "kagan_p90"):
            row[c] = float(avg.at[name, c]) if avg is not None and name in avg.index else float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=["group", "n", "share", "changed", "strike", "dip", "rake", "kagan_median",
                                       "kagan_p90"])


# ------------------------------------------------------------------------------ figures
def message_figure(message: str, height: int | None = None) -> dict:
    """A blank figure showing ``message``."""
    layout = {"template": _TEMPLATE, "xaxis": {"visible": False}, "yaxis": {"visible": False},
              "annotations": [{"text": message, "showarrow": False, "font": {"size": 14, "color": "#666"},
                               "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}],
              "margin": {"l": 10, "r": 10, "t": 10, "b": 10}}
    if height:
        layout["height"] = height
    return {"data": [], "layout": layout}


def _suffix(i: int) -> str:
    return "" if i == 1 else str(i)


def distributions_figure(mechanisms: pd.DataFrame, order, colors: dict | None = None, *,
                         rose_bin: float = 10.0, dip_bin: float = 5.0, rake_bin: float = 10.0,
                         height: int = 560) -> dict:
    """Per group (one column each, groups of ``order`` with at least one mechanism): the
    strike rose (axial: each strike counted at ``s mod 180`` and ``+180``, so the rose is
    point-symmetric; :func:`~pipeline.analysis.mechanism_stats.rose_histogram`), the dip
    histogram (0-90) and the rake histogram (-180..180). Counts are computed here (bars),
    not by the browser. ``layout.meta = {'groups': [...], 'n': [...]}``."""
    colors = colors or group_colors(order)
    if mechanisms is None or len(mechanisms) == 0:
        return message_figure("No mechanism matches the filters", height)
    g = mechanisms["group"].astype(str).to_numpy()
    present = [x for x in order if (g == x).any()] + sorted(set(g) - set(order))
    ncol = len(present)
    gap = 0.035 if ncol > 1 else 0.0
    width = (1.0 - gap * (ncol - 1)) / ncol
    rows = {"rose": (0.56, 0.94), "dip": (0.29, 0.47), "rake": (0.0, 0.18)}
    traces, layout = [], {}
    annotations = []
    dip_edges = np.arange(0.0, 90.0 + dip_bin, dip_bin)
    rake_edges = np.arange(-180.0, 180.0 + rake_bin, rake_bin)
    ns = []
    for j, name in enumerate(present):
        sub = mechanisms[g == name]
        ns.append(int(len(sub)))
        col = colors.get(name, EXTRA_COLORS[0])
        x0, x1 = j * (width + gap), j * (width + gap) + width
        # rose
        polar = f"polar{_suffix(j + 1)}"
        rose = rose_histogram(sub["strike"].to_numpy(dtype=float), rose_bin, "mirrored")
        traces.append({"type": "barpolar", "subplot": polar, "r": rose["count"].tolist(),
                       "theta": rose["centre"].tolist(), "width": [rose_bin] * len(rose),
                       "marker": {"color": col, "line": {"color": "white", "width": 0.6}},
                       "name": name, "showlegend": False,
                       "hovertemplate": f"{name}<br>strike axis %{{theta}}° ± {rose_bin / 2:g}°<br>%{{r}} events"
                                        "<extra></extra>"})
        layout[polar] = {
            "domain": {"x": [x0, x1], "y": list(rows["rose"])},
            "angularaxis": {"direction": "clockwise", "rotation": 90, "tickvals": [0, 45, 90, 135, 180, 225, 270, 315],
                            "ticktext": ["N", "", "E", "", "S", "", "W", ""], "tickfont": {"size": 10},
                            "gridcolor": "#e9ecef", "linecolor": "#adb5bd"},
            "radialaxis": {"showticklabels": True, "tickfont": {"size": 8, "color": "#868e96"}, "angle": 90,
                           "tickangle": 90, "gridcolor": "#e9ecef", "linecolor": "rgba(0,0,0,0)", "nticks": 3},
            "bgcolor": "white", "hole": 0.0,
        }
        annotations.append({"text": f"<b>{name}</b> · {len(sub):,}", "x": (x0 + x1) / 2, "y": 1.0, "xref": "paper",
                            "yref": "paper", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                            "font": {"size": 13, "color": "#212529"}})
        # dip and rake
        for k, (kind, col_name, edges, rng, title) in enumerate((
                ("dip", "dip", dip_edges, [0, 90], "Dip (°)"),
                ("rake", "rake", rake_edges, [-180, 180], "Rake (°)"))):
            idx = 2 * j + k + 1
            vals = sub[col_name].to_numpy(dtype=float)
            counts, _ = np.histogram(vals[np.isfinite(vals)], bins=edges)
            centres = (edges[:-1] + edges[1:]) / 2
            traces.append({"type": "bar", "x": centres.tolist(), "y": counts.tolist(),
                           "width": float(edges[1] - edges[0]), "xaxis": f"x{_suffix(idx)}",
                           "yaxis": f"y{_suffix(idx)}", "marker": {"color": col, "line": {"width": 0}},
                           "name": name, "showlegend": False,
                           "hovertemplate": f"{name}<br>{kind} %{{x}}° ± {(edges[1] - edges[0]) / 2:g}°"
                                            "<br>%{y} events<extra></extra>"})
            ticks = [0, 30, 60, 90] if kind == "dip" else [-180, -90, 0, 90, 180]
            layout[f"xaxis{_suffix(idx)}"] = {**_AXIS, "domain": [x0, x1], "anchor": f"y{_suffix(idx)}", "range": rng,
                                              "tickvals": ticks, "title": {"text": title, "font": {"size": 11},
                                                                           "standoff": 2},
                                              "tickfont": {"size": 10}}
            layout[f"yaxis{_suffix(idx)}"] = {**_AXIS, "domain": list(rows[kind]), "anchor": f"x{_suffix(idx)}",
                                              "rangemode": "tozero", "tickfont": {"size": 9}, "nticks": 4}
    layout.update({
        "template": _TEMPLATE, "height": height, "showlegend": False, "bargap": 0.05,
        "margin": {"l": 36, "r": 16, "t": 48, "b": 36}, "annotations": annotations,
        "meta": {"groups": present, "n": ns},
    })
    return {"data": traces, "layout": layout}


def _plunges(mechanisms: pd.DataFrame):
    cols = ("p_plunge", "b_plunge", "t_plunge")
    if all(c in mechanisms for c in cols):
        p, b, t = (mechanisms[c].to_numpy(dtype=float) for c in cols)
        if np.isfinite(p).all() and np.isfinite(b).all() and np.isfinite(t).all():
            return p, b, t
    axes = focal.pbt_axes(*(mechanisms[c].to_numpy(dtype=float) for c in ("strike", "dip", "rake")))
    return axes["p"][1], axes["b"][1], axes["t"][1]


def _frohlich_boundary(which: str, plunge_deg: float, n: int = 60):
    """(x, y) of the Frohlich class boundary where axis ``which`` (p/b/t) has ``plunge_deg``."""
    u = np.linspace(0.0, 1.0, n)
    s_fixed = math.sin(math.radians(plunge_deg))
    rest = math.sqrt(max(0.0, 1.0 - s_fixed ** 2))
    a = np.degrees(np.arcsin(np.clip(rest * np.sqrt(u), 0, 1)))
    b = np.degrees(np.arcsin(np.clip(rest * np.sqrt(1 - u), 0, 1)))
    fixed = np.full(n, plunge_deg)
    p, bb, t = {"t": (a, b, fixed), "b": (a, fixed, b), "p": (fixed, a, b)}[which]
    return frohlich_xy(p, bb, t)


def ternary_figure(mechanisms: pd.DataFrame, height: int = 440, *, class_counts: dict | None = None) -> dict:
    """Frohlich (1992) ternary diagram (:func:`~pipeline.analysis.mechanism_stats.frohlich_xy`,
    Kaverina projection: strike-slip top, thrust right, normal left), one point per
    mechanism coloured by its Zoback (1992) class (column ``zoback_class``, else computed
    from the P/B/T plunges). Dashed: Frohlich's class limits (T plunge 50, B 60, P 60).
    ``class_counts`` ({class: n} of every matched mechanism, when ``mechanisms`` is a
    sample of them) are the counts the legend shows; default: those of ``mechanisms``.
    ``layout.meta = {'classes': {class: count}, 'drawn': n}``."""
    verts = FROHLICH_VERTICES
    tri_x = [verts["strike-slip"][0], verts["thrust"][0], verts["normal"][0], verts["strike-slip"][0]]
    tri_y = [verts["strike-slip"][1], verts["thrust"][1], verts["normal"][1], verts["strike-slip"][1]]
    traces = [{"type": "scatter", "x": tri_x, "y": tri_y, "mode": "lines", "line": {"color": "#343a40", "width": 1.3},
               "hoverinfo": "skip", "showlegend": False, "name": "triangle"}]
    bx, by = [], []
    for which, pl in (("t", 50.0), ("b", 60.0), ("p", 60.0)):
        x, y = _frohlich_boundary(which, pl)
        bx += np.round(x, 5).tolist() + [None]
        by += np.round(y, 5).tolist() + [None]
    traces.append({"type": "scatter", "x": bx, "y": by, "mode": "lines",
                   "line": {"color": "#adb5bd", "width": 1, "dash": "dash"}, "hoverinfo": "skip",
                   "showlegend": False, "name": "Frohlich class limits"})
    meta = {"classes": {}, "drawn": 0 if mechanisms is None else int(len(mechanisms))}
    if mechanisms is not None and len(mechanisms):
        p, b, t = _plunges(mechanisms)
        x, y = frohlich_xy(p, b, t)
        cls = mechanisms["zoback_class"].astype(str).to_numpy() if "zoback_class" in mechanisms else \
            zoback_class(p, b, t)
        ids = mechanisms["event_id"].astype(str).to_numpy() if "event_id" in mechanisms else \
            np.arange(len(mechanisms)).astype(str)
        grp = mechanisms["group"].astype(str).to_numpy() if "group" in mechanisms else np.full(len(x), "")
        for c in list(ZOBACK_COLORS) + sorted(set(cls) - set(ZOBACK_COLORS)):
            sel = cls == c
            if not sel.any():
                continue
            n_c = int(class_counts.get(c, 0)) if class_counts is not None else int(sel.sum())
            meta["classes"][c] = n_c
            text = [f"{e} · {g}<br>P/B/T plunge {pp:.0f}/{bb_:.0f}/{tt:.0f}°<br>Zoback {c}"
                    for e, g, pp, bb_, tt in zip(ids[sel], grp[sel], p[sel], b[sel], t[sel])]
            traces.append({"type": "scatter", "x": typed(x[sel]), "y": typed(y[sel]), "mode": "markers",
                           "name": f"{c} · {ZOBACK_NAMES.get(c, c)} ({n_c:,})",
                           "marker": {"size": 6, "color": ZOBACK_COLORS.get(c, "#555"), "opacity": 0.75,
                                      "line": {"width": 0}},
                           "text": text, "hoverinfo": "text"})
    annotations = [
        {"text": "<b>Strike-slip</b>", "x": verts["strike-slip"][0], "y": verts["strike-slip"][1], "yshift": 10,
         "yanchor": "bottom"},
        {"text": "<b>Thrust</b>", "x": verts["thrust"][0], "y": verts["thrust"][1], "yshift": -6, "yanchor": "top"},
        {"text": "<b>Normal</b>", "x": verts["normal"][0], "y": verts["normal"][1], "yshift": -6, "yanchor": "top"},
    ]
    for a in annotations:
        a.update(showarrow=False, xref="x", yref="y", font={"size": 12, "color": "#343a40"})
    if not meta["classes"]:
        annotations.append({"text": "No mechanism matches the filters", "x": 0, "y": 0.1, "xref": "x", "yref": "y",
                            "showarrow": False, "font": {"size": 14, "color": "#666"}})
    layout = {
        "template": _TEMPLATE, "height": height,
        "xaxis": {"visible": False, "range": [-1.5, 1.5]},
        "yaxis": {"visible": False, "range": [-0.95, 1.62], "scaleanchor": "x", "scaleratio": 1.0},
        "margin": {"l": 8, "r": 8, "t": 8, "b": 8},
        "legend": {"orientation": "v", "x": 0.0, "y": 1.0, "xanchor": "left", "yanchor": "top", "font": {"size": 11},
                   "title": {"text": "Zoback (1992) class", "font": {"size": 11}}, "bgcolor": "rgba(255,255,255,0.85)"},
        "annotations": annotations, "hovermode": "closest", "meta": meta,
    }
    return {"data": traces, "layout": layout}


def _extent(x, y, pad=0.08, min_span=0.6):
    ok = np.isfinite(x) & np.isfinite(y)
    if not ok.any():
        return None
    x0, x1 = np.percentile(x[ok], [0.5, 99.5])
    y0, y1 = np.percentile(y[ok], [0.5, 99.5])

    def grow(a, b):
        span = max(b - a, min_span)
        mid = (a + b) / 2
        return [float(mid - span * (0.5 + pad)), float(mid + span * (0.5 + pad))]
    return grow(x0, x1), grow(y0, y1)


def strike_ticks(x_km, y_km, strike, length_km: float = TICK_KM):
    """NaN-separated (x, y) of one tick per event: ``length_km`` long, centred on the event,
    along its strike (clockwise from north: direction (sin s, cos s) in east/north)."""
    x, y, s = (np.asarray(v, dtype=float) for v in (x_km, y_km, strike))
    h = length_km / 2.0
    dx, dy = h * np.sin(np.radians(s)), h * np.cos(np.radians(s))
    nan = np.full_like(x, np.nan)
    return np.stack([x - dx, x + dx, nan], axis=1).ravel(), np.stack([y - dy, y + dy, nan], axis=1).ravel()


def classification_map_figure(mechanisms: pd.DataFrame, wells: pd.DataFrame | None = None, *,
                              threshold: float | None = DEFAULT_THRESHOLD, order=None, colors: dict | None = None,
                              tick_km: float = TICK_KM, ball_scale: float = BALL_SCALE,
                              height: int | None = None, ball_rows: pd.DataFrame | None = None,
                              max_balls: int | None = None) -> dict:
    """The classification map in the local east/north km frame (true aspect): per event a
    strike tick (``tick_km`` long) in its group colour plus a hollow circle (hover: id,
    strike/dip/rake, ML, group), beachballs for the events with ML > ``threshold``
    (largest last, radius ``magnitude_radius(ML) * ball_scale`` km), and the wells (labels
    at the toes); ticks and circles are SVG up to :data:`SVG_MAX_POINTS` mechanisms, WebGL
    above (:func:`point_trace_type`). ``mechanisms`` needs ``event_id, x_km, y_km, strike,
    dip, rake, magnitude, group``. When ``mechanisms`` is a sample of the matched ones (ticks drawn), ``ball_rows``
    are all of them: the beachballs come from those; ``max_balls`` keeps only that many of
    the largest. ``layout.meta``: ``{'ticks': n, 'balls': n, 'balls_matched': n,
    'threshold': t}``."""
    order = list(order) if order is not None else None
    traces, annotations = [], []
    if wells is not None and len(wells):
        xs, ys = [], []
        for name, w in wells.sort_values(["well", "vertex"]).groupby("well", sort=True):
            x, y = w["x_km"].to_numpy(dtype=float), w["y_km"].to_numpy(dtype=float)
            xs += [*x.tolist(), None]
            ys += [*y.tolist(), None]
            i = int(np.argmax(y))
            annotations.append({"x": float(x[i]), "y": float(y[i]), "text": f"<b>{name}</b>", "showarrow": False,
                                "yshift": 10, "font": {"size": 13, "color": WELL_COLOR}})
        traces.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": "wells",
                       "line": {"color": WELL_COLOR, "width": 2}, "hoverinfo": "skip"})
    meta = {"ticks": 0, "balls": 0, "balls_matched": 0, "threshold": threshold}
    extent = None
    df = mechanisms if mechanisms is not None else pd.DataFrame()
    if len(df):
        ok = np.isfinite(df[["x_km", "y_km", "strike"]].to_numpy(dtype=float)).all(axis=1)
        df = df[ok]
    if len(df):
        g = df["group"].astype(str).to_numpy()
        order = order or sorted(set(g))
        present = [x for x in order if (g == x).any()] + sorted(set(g) - set(order))
        colors = colors or group_colors(present)
        x, y = df["x_km"].to_numpy(dtype=float), df["y_km"].to_numpy(dtype=float)
        s = df["strike"].to_numpy(dtype=float)
        text = ("<b>" + df["event_id"].astype(str) + "</b><br>strike/dip/rake " + df["strike"].map("{:.1f}".format)
                + "/" + df["dip"].map("{:.1f}".format) + "/" + df["rake"].map("{:.1f}".format) + "<br>ML "
                + df["magnitude"].map(lambda v: "–" if pd.isna(v) else f"{v:.2f}") + " · " + df["group"].astype(str)
                ).to_numpy(dtype=object)
        # SVG up to SVG_MAX_POINTS mechanisms: then the beachballs (SVG) also draw above the
        # ticks and circles, as they are listed; WebGL always draws above SVG
        kind = point_trace_type(len(df))
        for name in present:
            sel = g == name
            col = colors.get(name, EXTRA_COLORS[0])
            tx, ty = strike_ticks(x[sel], y[sel], s[sel], tick_km)
            traces.append({"type": kind, "x": typed(tx), "y": typed(ty), "mode": "lines",
                           "line": {"color": col, "width": 1.6}, "hoverinfo": "skip",
                           "name": f"{name} ({int(sel.sum()):,})",
                           "legendgroup": name, "showlegend": True})
            traces.append({"type": kind, "x": typed(x[sel]), "y": typed(y[sel]), "mode": "markers",
                           "marker": {"symbol": "circle-open", "size": 5, "color": col, "line": {"width": 1}},
                           "text": text[sel].tolist(), "hoverinfo": "text", "name": name, "legendgroup": name,
                           "showlegend": False})
        meta["ticks"] = int(len(df))
        if threshold is not None:
            src = df if ball_rows is None else ball_rows[np.isfinite(
                ball_rows[["x_km", "y_km", "strike"]].to_numpy(dtype=float)).all(axis=1)]
            src_mag = src["magnitude"].to_numpy(dtype=float)
            big = src[np.isfinite(src_mag) & (src_mag > float(threshold))].sort_values("magnitude", kind="stable")
            meta["balls_matched"] = int(len(big))
            if max_balls is not None and len(big) > max_balls:
                big = big.iloc[len(big) - int(max_balls):]  # the largest (drawn last, on top)
            if len(big):
                traces += _ball_traces(big, colors, ball_scale)
            meta["balls"] = int(len(big))
        extent = _extent(x, y)
    else:
        annotations.append({"text": "No mechanism matches the filters", "showarrow": False, "xref": "paper",
                            "yref": "paper", "x": 0.5, "y": 0.5, "font": {"size": 15, "color": "#666"}})
    xaxis = {**_AXIS, "title": {"text": "East (km)"}}
    yaxis = {**_AXIS, "title": {"text": "North (km)"}, "scaleanchor": "x", "scaleratio": 1.0}
    if extent is not None:
        xaxis["range"], yaxis["range"] = extent
    layout = {
        "template": _TEMPLATE, "xaxis": xaxis, "yaxis": yaxis,
        "margin": {"l": 56, "r": 8, "t": MODEBAR_PX, "b": 44},  # the modebar above the plot, not on it
        "legend": {"orientation": "v", "x": 0.01, "y": 0.99, "xanchor": "left", "yanchor": "top",
                   "font": {"size": 11}, "itemsizing": "constant", "bgcolor": "rgba(255,255,255,0.85)",
                   "bordercolor": "#dee2e6", "borderwidth": 1, "tracegroupgap": 2},
        "annotations": annotations, "hovermode": "closest", "dragmode": "pan",
        "uirevision": "classification-map", "meta": meta,
    }
    if height:
        layout["height"] = height
    return {"data": traces, "layout": layout}


def _ball_traces(big: pd.DataFrame, colors: dict, scale: float) -> list[dict]:
    cx, cy = big["x_km"].to_numpy(dtype=float), big["y_km"].to_numpy(dtype=float)
    rad = np.asarray(magnitude_radius(big["magnitude"].to_numpy(dtype=float)), dtype=float) * scale
    out = beachball_xy(big["strike"].to_numpy(dtype=float), big["dip"].to_numpy(dtype=float),
                       big["rake"].to_numpy(dtype=float), cx, cy, rad, n_points=48, nodal=False)
    traces = [{"type": "scatter", "x": typed(out["outline_x"]), "y": typed(out["outline_y"]), "mode": "lines",
               "fill": "toself", "fillcolor": "white", "line": {"color": "black", "width": 0.8},
               "hoverinfo": "skip", "showlegend": False, "name": "beachball outline"}]
    groups = big["group"].astype(str).to_numpy()
    owner = np.asarray(out["fill_ball"])
    fx = out["fill_x"].reshape(-1, 49)
    fy = out["fill_y"].reshape(-1, 49)
    for name in dict.fromkeys(groups[owner].tolist()):
        sel = groups[owner] == name
        col = colors.get(name, EXTRA_COLORS[0])
        traces.append({"type": "scatter", "x": typed(fx[sel].ravel()), "y": typed(fy[sel].ravel()), "mode": "lines",
                       "fill": "toself", "fillcolor": col, "line": {"color": col, "width": 0}, "hoverinfo": "skip",
                       "showlegend": False, "legendgroup": name, "name": f"{name} beachballs"})
    text = [f"<b>{e}</b><br>ML {m:.2f} · {g}<br>strike/dip/rake {s:.1f}/{d:.1f}/{r:.1f}"
            for e, m, g, s, d, r in zip(big["event_id"].astype(str), big["magnitude"], groups, big["strike"],
                                        big["dip"], big["rake"])]
    traces.append({"type": "scatter", "x": cx.tolist(), "y": cy.tolist(), "mode": "markers",
                   "marker": {"size": 14, "color": "rgba(0,0,0,0)"}, "text": text, "hoverinfo": "text",
                   "showlegend": False, "name": "beachball hover"})
    return traces
