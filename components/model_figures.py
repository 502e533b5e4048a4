"""Figures and tables of the polarity-model page, as pure functions (no Dash, no DuckDB).

Every function takes rows of the ``model_eval`` table (long form: model, dataset, kind,
name, x, y, value; see :mod:`pipeline.picking.evaluate` for what each kind means) and returns a
Plotly figure, a DataFrame or plain dicts:

* :func:`headline_cards`: the numbers of the cards at the top (held-out vs in-sample);
* :func:`metrics_table`: one row per picker on one evaluation set (the CSV the page offers);
* :func:`curves_figure`: ROC, precision-recall and coverage-vs-accuracy side by side;
* :func:`confusion_figure`: one heatmap per picker (true-motion convention);
* :func:`calibration_figure`: reliability points with the undetermined band shaded;
* :func:`training_figure`: our CNN's training losses beside the reference's log;
* :func:`reported_numbers`: what the reference's authors report (different data).

Conventions shown on the page: ``prob_down_recorded`` = probability that the **recorded**
first motion is down (ROC/PR/calibration use it, positive class = recorded down);
polarities and confusion matrices are **true ground motion** (after the 5B reversal).
"""
from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .map_figure import _AXIS, _TEMPLATE, MODEBAR_PX, empty_figure

#: display order, labels and colours of the pickers
MODEL_LABELS = {
    "cnn": "CNN (ours)",
    "cnn_finetuned": "CNN, fine-tuned recipe",
    "cnn_synthetic_only": "CNN, synthetic only",
    "onset": "Onset baseline",
    "cct": "CCT (user weights)",
    "reference": "Reference (Micro-EQpolarity)",
    "eqpolarity_texas": "EQpolarity, Texas transfer",
    "eqpolarity_scsn": "EQpolarity, SCSN (no transfer)",
}
MODEL_COLORS = {
    "cnn": "#d6008f",
    "cnn_finetuned": "#9c2a73",
    "cnn_synthetic_only": "#f29ad0",
    "onset": "#0d6efd",
    "cct": "#fd7e14",
    "reference": "#198754",
    "eqpolarity_texas": "#6c757d",
    "eqpolarity_scsn": "#adb5bd",
}
#: the fully nested held-out rows (pipeline.picking.full_nested): shown in the headline, not offered as a set
FULL_NESTED = "loeo_heldout_full_nested"
#: evaluation sets the page offers (in this order), with labels and a one-line description
DATASETS = {
    "loeo_heldout": ("Held-out events (nested LOEO)",
                     "the CNN's leave-one-event-out predictions from its training record, scored nested: each "
                     "event predicted by a fold model that never saw its labels, with the recipe and the "
                     "undetermined band chosen on the other events only (the honest CNN numbers). Very few "
                     "labelled events (ToC2ME: two): the 95 % Wilson intervals treat traces as independent "
                     "and are too narrow for so few events. The onset baseline on the same labelled traces"),
    "manual50": ("Manual picks",
                 "the analyst's manual picks (ToC2ME: the 50 picks of event 20161104064824.680)"),
    "reference_confident": ("Reference's confident outputs",
                            "stations where the published model is confident (p ≤ 0.05 or ≥ 0.95): an agreement "
                            "measure, not ground truth"),
    "demo_truth": ("Demo ground truth",
                   "the synthetic scenario's true first motions (dead traces excluded)"),
    "demo_truth_clear": ("Demo truth: away from nodal planes", "|P radiation| ≥ 0.1"),
    "demo_truth_near_nodal": ("Demo truth: near nodal planes", "|P radiation| < 0.1"),
    "demo_truth_snr_lt3": ("Demo truth: SNR < 3", "true SNR below 3"),
    "demo_truth_snr_3_10": ("Demo truth: SNR 3–10", "true SNR from 3 to 10"),
    "demo_truth_snr_ge10": ("Demo truth: SNR ≥ 10", "true SNR of 10 or more"),
}
#: sets the selector offers (the others appear in the demo subset table)
MAIN_DATASETS = ("loeo_heldout", "manual50", "reference_confident", "demo_truth")
DEMO_SUBSETS = ("demo_truth_clear", "demo_truth_near_nodal", "demo_truth_snr_lt3", "demo_truth_snr_3_10",
                "demo_truth_snr_ge10")

#: metrics-table columns: id -> (header, kind) with kind "int", "pct", "num" or "text"
TABLE_COLUMNS = {
    "picker": ("Picker", "text"),
    "n_labelled": ("Labelled", "int"),
    "n_decided": ("Decided", "int"),
    "coverage": ("Coverage", "pct"),
    "coverage_ci": ("Coverage 95 % CI", "text"),
    "n_correct": ("Correct", "int"),
    "n_wrong": ("Wrong", "int"),
    "accuracy": ("Accuracy", "pct"),
    "accuracy_ci": ("Accuracy 95 % CI", "text"),
    "abstention": ("Abstained", "pct"),
    "precision_up": ("Prec. up", "pct"),
    "recall_up": ("Rec. up", "pct"),
    "f1_up": ("F1 up", "pct"),
    "precision_down": ("Prec. down", "pct"),
    "recall_down": ("Rec. down", "pct"),
    "f1_down": ("F1 down", "pct"),
    "roc_auc": ("ROC AUC", "num"),
    "average_precision": ("Avg. prec.", "num"),
    "band": ("Band", "text"),
    "note": ("Note", "text"),
}

_BAND_FILL = "rgba(255,193,7,0.16)"


def model_label(model: str) -> str:
    return MODEL_LABELS.get(model, model)


def model_color(model: str) -> str:
    return MODEL_COLORS.get(model, "#495057")


def dataset_label(dataset: str) -> str:
    return DATASETS.get(dataset, (dataset, ""))[0]


def _ordered_models(models) -> list[str]:
    known = list(MODEL_LABELS)
    return sorted(set(models), key=lambda m: (known.index(m) if m in known else len(known), m))


def _sel(rows: pd.DataFrame, **eq) -> pd.DataFrame:
    if rows is None or rows.empty:
        return pd.DataFrame(columns=["model", "dataset", "kind", "name", "x", "y", "value"])
    m = np.ones(len(rows), dtype=bool)
    for k, v in eq.items():
        m &= (rows[k].isin(v) if isinstance(v, (list, tuple, set)) else rows[k] == v).to_numpy()
    return rows[m]


def metric(rows: pd.DataFrame, model: str, dataset: str, name: str) -> float | None:
    """One scalar of ``rows`` (None when absent or NaN)."""
    r = _sel(rows, model=model, dataset=dataset, kind="metric", name=name)
    if r.empty:
        return None
    v = float(r["value"].iloc[0])
    return v if math.isfinite(v) else None


def available_datasets(rows: pd.DataFrame) -> list[str]:
    """The :data:`MAIN_DATASETS` that have labelled metrics in ``rows``, in display order."""
    have = set(_sel(rows, kind="metric", name="n_labelled")["dataset"])
    return [d for d in MAIN_DATASETS if d in have]


def fmt_pct(v, digits: int = 1) -> str:
    return "–" if v is None or not math.isfinite(float(v)) else f"{100 * float(v):.{digits}f} %"


def fmt_ci(lo, hi, digits: int = 1) -> str:
    """A 95 % interval as ``[96.6, 100.0] %`` ('' when either end is missing)."""
    if lo is None or hi is None or not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        return ""
    return f"[{100 * float(lo):.{digits}f}, {100 * float(hi):.{digits}f}] %"


def share_text(rows: pd.DataFrame, model: str, dataset: str, name: str) -> str:
    """``name`` (``accuracy`` or ``coverage``) of ``model`` on ``dataset`` with its 95 % Wilson
    interval: ``100.0 % [96.6, 100.0]`` ('–' when absent)."""
    v = metric(rows, model, dataset, name)
    ci = fmt_ci(metric(rows, model, dataset, f"{name}_ci_low"), metric(rows, model, dataset, f"{name}_ci_high"))
    return fmt_pct(v) + (f" {ci[:-2]}" if ci and v is not None else "")


def fmt_count(a, b) -> str:
    if a is None or b is None:
        return "–"
    return f"{int(round(a)):,}/{int(round(b)):,}"


# -- headline numbers ---------------------------------------------------------------------------
def headline_cards(rows: pd.DataFrame) -> list[dict]:
    """The cards at the top of the page, as dicts ``{"key", "title", "value", "caption",
    "lines": [(label, text, tag)]}`` (``tag``: ``"held-out"``, ``"in-sample"`` (optimistic),
    ``"baseline"``, ``"reference"`` or ``None``). Cards whose data is missing are left out."""
    cards = []
    g = lambda m, d, n: metric(rows, m, d, n)  # noqa: E731

    # 1. agreement with the reference's confident outputs
    lines = []
    loeo_acc = g("cnn", "loeo_heldout", "accuracy")
    ref_acc = g("cnn", "reference_confident", "accuracy")
    in_sample = (g("cnn", "reference_confident", "in_sample_events") or 0) > 0
    value, caption = None, ""

    def decided_text(m, d):
        return f"{fmt_count(g(m, d, 'n_correct'), g(m, d, 'n_decided'))} = {share_text(rows, m, d, 'accuracy')}, " \
               f"decides {fmt_count(g(m, d, 'n_decided'), g(m, d, 'n_labelled'))} = {share_text(rows, m, d, 'coverage')}"

    if loeo_acc is not None:
        value = fmt_pct(loeo_acc)
        n_lab, n_ev = g("cnn", "loeo_heldout", "n_labelled"), g("cnn", "loeo_heldout", "n_events")
        caption = f"CNN on held-out ToC2ME events, nested (recipe and band chosen on the other event), where it " \
                  f"decides; 95 % Wilson interval {fmt_ci(g('cnn', 'loeo_heldout', 'accuracy_ci_low'), g('cnn', 'loeo_heldout', 'accuracy_ci_high'))}" \
                  f". A small sample: {int(n_lab or 0)} labelled traces of {int(n_ev or 0)} events"
        lines.append(("CNN, held-out (nested)", decided_text("cnn", "loeo_heldout"), "held-out"))
        if g("cnn", FULL_NESTED, "accuracy") is not None:
            # also the inner models never saw the held-out event (pipeline.picking.full_nested)
            lines.append(("CNN, held-out (fully nested)", decided_text("cnn", FULL_NESTED), "held-out"))
            caption += "; fully nested (the recipe and band chosen by inner models that never saw the held-out " \
                       f"event, {int(g('cnn', FULL_NESTED, 'inner_folds') or 0)} station folds of the other event): " \
                       f"{share_text(rows, 'cnn', FULL_NESTED, 'accuracy')} at coverage " \
                       f"{share_text(rows, 'cnn', FULL_NESTED, 'coverage')}"
    if ref_acc is not None:
        lines.append(("CNN, this build", decided_text("cnn", "reference_confident"), "in-sample" if in_sample else None))
        if value is None:
            value, caption = fmt_pct(ref_acc), "CNN on this build's traces, where both decide"
    for m in ("cct", "onset"):
        acc = g(m, "reference_confident", "accuracy")
        if acc is not None:
            lines.append((model_label(m), decided_text(m, "reference_confident"), "baseline" if m == "onset" else None))
    if value is not None:
        cards.append({"key": "reference", "title": "Agreement with the reference", "value": value,
                      "caption": caption, "lines": lines})

    # 2. manual picks matched
    lines, value, caption = [], None, ""
    lm, ln = g("cnn", "loeo_heldout", "manual_match"), g("cnn", "loeo_heldout", "manual_n")
    if lm is not None and ln:
        from pipeline.picking.intervals import wilson_interval
        value = fmt_count(lm, ln)
        caption = "ToC2ME manual picks matched by the CNN when that event was held out (nested band); 95 % " \
                  f"Wilson interval {fmt_ci(*wilson_interval(int(lm), int(ln)))}, one event only"
        lines.append(("CNN, held-out", f"{fmt_count(lm, ln)} matched, "
                      f"{int(g('cnn', 'loeo_heldout', 'manual_wrong') or 0)} wrong", "held-out"))
    for m in ("cnn", "cct", "onset", "reference"):
        c, n = g(m, "manual50", "n_correct"), g(m, "manual50", "n_labelled")
        if c is None or not n:
            continue
        tag = "in-sample" if m == "cnn" and (g(m, "manual50", "in_sample_events") or 0) > 0 else (
            "baseline" if m == "onset" else ("reference" if m == "reference" else None))
        lines.append((model_label(m) + (", this build" if m == "cnn" else ""),
                      f"{fmt_count(c, n)} matched, {int(g(m, 'manual50', 'n_wrong') or 0)} wrong", tag))
        if value is None and m == "cnn":
            value, caption = fmt_count(c, n), "manual picks matched by the CNN"
    if value is not None:
        cards.append({"key": "manual", "title": "Manual picks matched", "value": value, "caption": caption,
                      "lines": lines})

    # 3. decided share of every trace
    lines, value, caption = [], None, ""
    for m in ("cnn", "cct", "onset", "reference"):
        cov = g(m, "all_traces", "coverage")
        if cov is None:
            continue
        lo, hi = g(m, "all_traces", "band_lower"), g(m, "all_traces", "band_upper")
        band = f" (band {lo:g}–{hi:g})" if lo is not None and hi is not None else ""
        lines.append((model_label(m), f"{fmt_count(g(m, 'all_traces', 'n_decided'), g(m, 'all_traces', 'n_scored'))}"
                      f" = {share_text(rows, m, 'all_traces', 'coverage')}{band}", "baseline" if m == "onset" else None))
        if value is None and m in ("cnn", "cct"):
            value = fmt_pct(cov)
            caption = f"of all {int(g(m, 'all_traces', 'n_scored') or 0):,} traces decided by the {model_label(m)}; " \
                      "the rest fall in the undetermined band"
    if lines and value is None:
        # no picker of ours ran on this build (built with --no-pick): the headline is the
        # reference's share, named as such, rather than a bare dash
        m = next(m for m in ("onset", "reference") if g(m, "all_traces", "coverage") is not None)
        value = fmt_pct(g(m, "all_traces", "coverage"))
        why = "this build ran no picker (built without picking)" if m == "reference" else \
            "the CNN did not pick this build's traces"
        caption = f"of all {int(g(m, 'all_traces', 'n_scored') or 0):,} traces decided by the {model_label(m)}; {why}"
    if lines:
        cards.append({"key": "decided", "title": "Decided share", "value": value, "caption": caption,
                      "lines": lines})

    # 4. demo truth
    acc = g("cnn", "demo_truth", "accuracy")
    if acc is not None:
        lines = []
        for m in ("cnn", "cct", "onset"):
            a = g(m, "demo_truth", "accuracy")
            if a is None:
                continue
            lines.append((model_label(m), decided_text(m, "demo_truth"), "baseline" if m == "onset" else None))
        nn = g("cnn", "demo_truth_near_nodal", "accuracy")
        if nn is not None:
            lines.append(("CNN near nodal planes", share_text(rows, "cnn", "demo_truth_near_nodal", "accuracy"), None))
        cards.append({"key": "truth", "title": "Demo ground truth", "value": fmt_pct(acc),
                      "caption": f"CNN accuracy on decided synthetic traces (of "
                                 f"{int(g('cnn', 'demo_truth', 'n_labelled') or 0):,} live traces); 95 % Wilson "
                                 f"interval {fmt_ci(g('cnn', 'demo_truth', 'accuracy_ci_low'), g('cnn', 'demo_truth', 'accuracy_ci_high'))}",
                      "lines": lines})
    return cards


# -- metrics table ------------------------------------------------------------------------------
def metrics_table(rows: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """One row per picker evaluated on ``dataset``: :data:`TABLE_COLUMNS` (fractions as
    0..1 floats; ``band`` as "lower–upper"; ``note`` flags in-sample numbers) plus
    ``model`` and ``dataset``. Empty (same columns) when the set has no metrics."""
    cols = ["model", "dataset", *TABLE_COLUMNS]
    m = _sel(rows, dataset=dataset, kind="metric")
    if m.empty:
        return pd.DataFrame(columns=cols)
    wide = m.pivot_table(index="model", columns="name", values="value", aggfunc="first")
    wide = wide[wide.get("n_labelled", pd.Series(dtype=float)).notna()] if "n_labelled" in wide else wide.iloc[0:0]
    out = []
    for model in _ordered_models(wide.index):
        r = wide.loc[model]
        rec = {"model": model, "dataset": dataset, "picker": model_label(model)}
        for c, (_, kind) in TABLE_COLUMNS.items():
            if c in ("picker", "band", "note"):
                continue
            if c.endswith("_ci"):   # "[lo, hi] %" from the 95 % Wilson bounds
                lo, hi = r.get(f"{c}_low"), r.get(f"{c}_high")
                rec[c] = fmt_ci(None if lo is None or pd.isna(lo) else lo, None if hi is None or pd.isna(hi) else hi)
                continue
            v = r.get(c)
            rec[c] = None if v is None or pd.isna(v) else (int(round(v)) if kind == "int" else float(v))
        lo, hi = r.get("band_lower"), r.get("band_upper")
        rec["band"] = f"{lo:g}–{hi:g}" if lo is not None and hi is not None and not (pd.isna(lo) or pd.isna(hi)) \
            else ""
        notes = []
        if (r.get("in_sample_events") or 0) > 0:
            notes.append("in-sample: trained on these events (optimistic)")
        if dataset == "loeo_heldout" and model.startswith("cnn"):
            notes.append("held-out, nested: " + ("recipe and band chosen on the other event" if model == "cnn"
                                                 else "band chosen on the other event"))
        if dataset == "loeo_heldout" and model == "cnn" and pd.isna(lo):
            rec["band"] = "per fold"
        if dataset == "reference_confident" and model == "onset":
            notes.append("baseline, same traces")
        rec["note"] = "; ".join(notes)
        out.append(rec)
    return pd.DataFrame(out, columns=cols)


def subsets_table(rows: pd.DataFrame, datasets=DEMO_SUBSETS) -> pd.DataFrame:
    """Accuracy and coverage per picker on the demo subsets: columns ``subset``,
    ``n_labelled`` and, per picker, ``<model>_accuracy`` / ``<model>_coverage`` (fractions)
    and ``<model>_accuracy_ci`` / ``<model>_coverage_ci`` (95 % Wilson intervals as text)."""
    out = []
    for d in datasets:
        m = _sel(rows, dataset=d, kind="metric")
        if m.empty:
            continue
        rec = {"subset": dataset_label(d), "dataset": d}
        for model in _ordered_models(m["model"]):
            rec["n_labelled"] = metric(rows, model, d, "n_labelled")
            for name in ("accuracy", "coverage"):
                rec[f"{model}_{name}"] = metric(rows, model, d, name)
                rec[f"{model}_{name}_ci"] = fmt_ci(metric(rows, model, d, f"{name}_ci_low"),
                                                   metric(rows, model, d, f"{name}_ci_high"))
        out.append(rec)
    return pd.DataFrame(out)


# -- curves ---------------------------------------------------------------------------------------
def _axis(fig, row, col, title_x, title_y, xr=(0, 1.02), yr=(0, 1.02)):
    fig.update_xaxes(title_text=title_x, range=list(xr), row=row, col=col, **_AXIS)
    fig.update_yaxes(title_text=title_y, range=list(yr), row=row, col=col, **_AXIS)


#: margins (px) of the page's figures, wide enough for what Plotly's automargin would push
#: out at a 1400 px window (tick labels, axis titles; the legends' sides are set per figure by
#: :func:`legend_margin`): a figure whose labels need more than its margins is laid out,
#: measured and drawn a second time (``Plots.doAutoMargin``), which was half of each figure's
#: draw in headless Chromium (issue 12). Automargin stays on, so a wider font or a narrower
#: window still fits, at the cost of that second draw.
#: The top margins hold the modebar (MODEBAR_PX) above the plots' subplot titles (~18 px).
MARGINS = {
    "curves": dict(l=66, r=20, t=66, b=62),
    "confusion": dict(l=75, r=10, t=MODEBAR_PX + 18, b=45),
    "calibration": dict(l=66, r=20, t=MODEBAR_PX, b=62),
    "training": dict(l=74, r=55, t=MODEBAR_PX + 18, b=62),
}
#: the figures' widths (px) on the page in a 1400 px wide window (the page is fluid): where
#: their horizontal legends wrap
PAGE_WIDTHS = {"curves": 1343, "confusion": 772, "calibration": 544, "training": 886}
#: a horizontal legend in the figures' 11 px font, px (measured in headless Chromium): an
#: entry is 40 px of symbol and gap plus its text (~8 px per capital, 3.3 per space, 5.5 per
#: other character: slightly wide, so an estimate errs to a little blank rather than a second
#: draw), entries are 5 px apart inside a 5 px padding, one row is 29 px with the padding,
#: each further row 19 px, and Plotly keeps 12 px between the legend and the figure's edge
_LEGEND_SYMBOL, _LEGEND_GAP, _LEGEND_PADDING = 40, 5, 5
_LEGEND_ROW1, _LEGEND_ROW, _LEGEND_EDGE = 29, 19, 12


def legend_entry_width(name: str) -> float:
    """Estimated width (px) of one legend entry (symbol + text) in the figures' 11 px font."""
    text = sum(8.0 if ch.isupper() else 3.3 if ch == " " else 5.5 for ch in str(name))
    return _LEGEND_SYMBOL + text


def legend_rows(names, wrap_px: float) -> int:
    """Rows of a horizontal Plotly legend of entries ``names`` in a plot area ``wrap_px``
    wide, laid out as plotly.js does (``legend/draw.js``, ``computeLegendDimensions``): one row
    when every entry fits at its own width, else a grid whose columns are all as wide as the
    widest entry. At least 1."""
    widths = [legend_entry_width(n) for n in names]
    if not widths or sum(widths) + 2 * _LEGEND_PADDING + _LEGEND_GAP * (len(widths) - 1) < wrap_px:
        return 1
    column = max(widths) + _LEGEND_GAP
    # k columns fit while k * column + padding - gap < wrap (plotly.js wraps at >=)
    per_row = max(1, math.ceil((wrap_px - _LEGEND_PADDING + _LEGEND_GAP) / column) - 1)
    return math.ceil(len(widths) / per_row)


def legend_margin(names, *, y: float, height: float, opposite: float, wrap_px: float, at_least: float) -> int:
    """The margin (px) on the side of a horizontal legend placed at paper ``y`` outside the
    plot (``y > 1``: above, in the top margin; ``y < 0``: below) that holds it without Plotly
    pushing the margin (and drawing again): with ``d`` = the legend's offset from the plot's
    edge in plot heights and ``L`` = its height plus Plotly's 12 px, the smallest integer
    ``m >= at_least`` with ``m >= d * (height - opposite - m) + L`` (``opposite``: the other
    vertical margin), plus 1 px for rounding."""
    d = y - 1 if y > 1 else -y
    rows = legend_rows(names, wrap_px)
    need = _LEGEND_ROW1 + _LEGEND_ROW * (rows - 1) + _LEGEND_EDGE
    return max(int(at_least), math.ceil((d * (height - opposite) + need) / (1 + d)) + 1)


def _legend_names(fig) -> list[str]:
    return [t.name for t in fig.data if t.showlegend is not False and t.name]


def _fit_legend(fig, key: str, y: float, height: float) -> None:
    """Set the legend's side of ``fig``'s margin (:data:`MARGINS` ``key``) by :func:`legend_margin`."""
    m = dict(MARGINS[key])
    side, other = ("t", "b") if y > 1 else ("b", "t")
    m[side] = legend_margin(_legend_names(fig), y=y, height=height, opposite=m[other],
                            wrap_px=PAGE_WIDTHS[key] - m["l"] - m["r"], at_least=m[side])
    fig.update_layout(margin=m)


def _layout(fig, height, margin=MARGINS["curves"], **kw):
    fig.update_layout(template={"layout": _TEMPLATE["layout"]}, height=height, margin=margin,
                      legend=dict(orientation="h", yanchor="bottom", y=1.1, xanchor="left", x=0, font=dict(size=11)),
                      hovermode="closest", **kw)
    fig.update_annotations(font_size=12)
    return fig


def curves_figure(rows: pd.DataFrame, dataset: str) -> go.Figure | dict:
    """ROC, precision-recall and coverage-vs-accuracy of every picker on ``dataset``.

    ROC/PR: positive class = recorded down, score = ``prob_down_recorded``. Coverage vs
    accuracy: deciding only the traces with confidence max(p, 1 - p) ≥ c; the picker's own
    band is the ringed point. A picker with only a few distinct outputs (the onset baseline:
    0 / 0.5 / 1) has a few points."""
    cur = _sel(rows, dataset=dataset, kind=["roc", "pr", "coverage"])
    if cur.empty:
        return empty_figure("No curves for this evaluation set")
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.07, subplot_titles=(
        "ROC (positive = recorded down)", "Precision–recall (positive = recorded down)",
        "Coverage vs accuracy"))
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#ced4da", dash="dot", width=1),
                             hoverinfo="skip", showlegend=False), row=1, col=1)
    for model in _ordered_models(cur["model"]):
        color, label = model_color(model), model_label(model)
        auc, ap = metric(rows, model, dataset, "roc_auc"), metric(rows, model, dataset, "average_precision")
        for col, kind, hover in ((1, "roc", "FPR %{x:.3f}<br>TPR %{y:.3f}<br>p ≥ %{customdata:.3g}"),
                                 (2, "pr", "recall %{x:.3f}<br>precision %{y:.3f}<br>p ≥ %{customdata:.3g}"),
                                 (3, "coverage", "coverage %{x:.3f}<br>accuracy %{y:.3f}<br>confidence ≥ %{customdata:.3g}")):
            c = _sel(cur, model=model, kind=kind).sort_values(["x", "y"] if kind != "coverage" else ["x"])
            if c.empty:
                continue
            extra = {"roc": f" · AUC {auc:.3f}" if auc is not None else "",
                     "pr": f" · AP {ap:.3f}" if ap is not None else "", "coverage": ""}[kind]
            few = len(c) <= 4
            fig.add_trace(go.Scatter(
                x=c["x"].to_numpy(float), y=c["y"].to_numpy(float),
                customdata=c["value"].replace([np.inf], np.nan).to_numpy(float),
                mode="lines+markers" if few else "lines", line=dict(color=color, width=2, shape="linear"),
                marker=dict(size=7, color=color), name=label, legendgroup=model, showlegend=col == 1,
                hovertemplate=f"<b>{label}</b>{extra}<br>{hover}<extra></extra>"), row=1, col=col)
        cov, acc = metric(rows, model, dataset, "coverage"), metric(rows, model, dataset, "accuracy")
        if cov is not None and acc is not None:
            fig.add_trace(go.Scatter(
                x=[cov], y=[acc], mode="markers", marker=dict(size=13, color="rgba(0,0,0,0)",
                                                               line=dict(color=color, width=2.5)),
                legendgroup=model, showlegend=False, name=f"{label} band",
                hovertemplate=f"<b>{label}</b>: its band<br>coverage %{{x:.3f}}<br>accuracy %{{y:.3f}}<extra></extra>"),
                row=1, col=3)
    _axis(fig, 1, 1, "false-positive rate", "true-positive rate", (-0.02, 1.02), (-0.02, 1.02))
    _axis(fig, 1, 2, "recall", "precision", (-0.02, 1.02), (0, 1.03))
    covs = _sel(cur, kind="coverage")["y"].to_numpy(float)
    lo = float(np.nanmin(covs)) if covs.size else 0.5
    _axis(fig, 1, 3, "coverage (decided share)", "accuracy on decided", (0, 1.02),
          (max(0.0, min(0.9, math.floor(lo * 20) / 20 - 0.02)), 1.005))
    fig = _layout(fig, 360)
    _fit_legend(fig, "curves", 1.1, 360)
    return fig


def confusion_figure(rows: pd.DataFrame, dataset: str, convention: str = "true") -> go.Figure | dict:
    """One heatmap per picker: rows = actual (up, down), columns = predicted (up, down,
    undetermined) in the ``convention`` of the stored names (``true`` for our sets,
    ``recorded`` for the authors' reported matrix). Colour = share of the actual class;
    text = count."""
    conf = _sel(rows, dataset=dataset, kind="confusion")
    conf = conf[conf["name"].str.startswith(convention + ":")]
    if conf.empty:
        return empty_figure("No confusion matrix for this evaluation set")
    models = _ordered_models(conf["model"])
    n_pred = 3 if (conf["name"].str.endswith("->undetermined")).any() else 2
    fig = make_subplots(rows=1, cols=len(models), horizontal_spacing=0.1 if len(models) > 1 else 0.02,
                        subplot_titles=[model_label(m) for m in models])
    actual = ["up", "down"]
    pred = ["up", "down", "undetermined"][:n_pred]
    for i, model in enumerate(models, start=1):
        z = np.zeros((2, n_pred))
        for r in _sel(conf, model=model).itertuples(index=False):
            a, p = r.name.split(":", 1)[1].split("->")
            if a in actual and p in pred:
                z[actual.index(a), pred.index(p)] = r.value
        share = z / np.maximum(z.sum(axis=1, keepdims=True), 1)
        fig.add_trace(go.Heatmap(
            z=share, x=[p if p != "undetermined" else "undet." for p in pred],
            y=[f"{convention} {a}" for a in actual], text=z.astype(int), texttemplate="%{text}",
            textfont=dict(size=14), colorscale=[[0, "#f8f9fa"], [1, model_color(model)]], zmin=0, zmax=1,
            showscale=False, xgap=2, ygap=2,
            hovertemplate="actual %{y}<br>%{x}<br>%{text} traces (%{z:.1%} of the class)<extra>"
                          + model_label(model) + "</extra>"), row=1, col=i)
        fig.update_yaxes(autorange="reversed", row=1, col=i, showgrid=False)
        fig.update_xaxes(side="bottom", row=1, col=i, showgrid=False, title_text="predicted",
                         title_standoff=4)
        if i > 1:
            fig.update_yaxes(showticklabels=False, row=1, col=i)
    fig = _layout(fig, 260, MARGINS["confusion"])
    fig.update_layout(showlegend=False)
    return fig


def calibration_figure(rows: pd.DataFrame, dataset: str, band_model: str = "cnn") -> go.Figure | dict:
    """Reliability: mean predicted ``prob_down_recorded`` per bin (x) against the observed
    fraction recorded down (y), marker area ~ traces in the bin; the diagonal is perfect
    calibration. The ``band_model``'s undetermined band (its ``band_lower``-``band_upper``
    on ``dataset``) is shaded."""
    cal = _sel(rows, dataset=dataset, kind="calibration", name="reliability")
    if cal.empty:
        return empty_figure("No reliability points for this evaluation set")
    fig = go.Figure()
    bm = band_model if band_model in set(cal["model"]) else _ordered_models(cal["model"])[0]
    lo, hi = metric(rows, bm, dataset, "band_lower"), metric(rows, bm, dataset, "band_upper")
    if lo is not None and hi is not None:
        fig.add_vrect(x0=lo, x1=hi, fillcolor=_BAND_FILL, line_width=0, layer="below")
        fig.add_annotation(x=(lo + hi) / 2, y=0.03, yref="paper", text=f"undetermined band of the {model_label(bm)}"
                           f"<br>{lo:g} < p < {hi:g}", showarrow=False, font=dict(size=11, color="#8a6d00"),
                           yanchor="bottom")
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#ced4da", dash="dot", width=1),
                             name="perfect calibration", hoverinfo="skip"))
    nmax = max(float(cal["value"].max() or 1), 1.0)
    for model in _ordered_models(cal["model"]):
        c = _sel(cal, model=model).sort_values("x")
        n = c["value"].to_numpy(float)
        fig.add_trace(go.Scatter(
            x=c["x"].to_numpy(float), y=c["y"].to_numpy(float), customdata=n, mode="lines+markers",
            name=model_label(model), line=dict(color=model_color(model), width=1.5),
            marker=dict(size=6 + 18 * np.sqrt(n / nmax), color=model_color(model), opacity=0.8,
                        line=dict(color="white", width=1)),
            hovertemplate=f"<b>{model_label(model)}</b><br>mean p %{{x:.3f}}<br>observed down %{{y:.3f}}"
                          "<br>%{customdata:.0f} traces<extra></extra>"))
    fig.update_xaxes(title_text="predicted p (recorded down)", range=[-0.02, 1.02], **_AXIS)
    fig.update_yaxes(title_text="observed fraction recorded down", range=[-0.03, 1.05], **_AXIS)
    fig = _layout(fig, 330, MARGINS["calibration"])
    fig.update_layout(legend=dict(y=-0.22, yanchor="top"))
    _fit_legend(fig, "calibration", -0.22, 330)
    return fig


def training_figure(rows: pd.DataFrame) -> go.Figure | dict:
    """Left: our CNN's training loss per epoch (pre-training on synthetic onsets, then
    fine-tuning on real traces; no per-epoch validation - its held-out numbers come from
    leave-one-event-out folds). Right: the reference's log (loss / val_loss, and acc /
    val_acc on the right axis), the best ``val_acc`` epoch marked: the validation loss
    rises after it (overfitting)."""
    ours = _sel(rows, model="cnn", dataset="training", kind="training")
    ref = _sel(rows, model="reference", dataset="training", kind="training")
    if ours.empty and ref.empty:
        return empty_figure("No training curves in this data folder")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1,
                        specs=[[{}, {"secondary_y": True}]],
                        subplot_titles=("Our CNN: training loss", "Reference (Micro-EQpolarity) log"))
    if ours.empty:
        x0, x1 = fig.layout.xaxis.domain
        fig.add_annotation(text="no training record", showarrow=False, xref="paper", yref="paper", x=(x0 + x1) / 2,
                           y=0.5, font=dict(color="#6c757d"))
        fig.update_xaxes(visible=False, row=1, col=1)
        fig.update_yaxes(visible=False, row=1, col=1)
    else:
        offset = 0
        for name, label, dash in (("pretrain_loss", "pre-training (synthetic)", "solid"),
                                  ("finetune_loss", "fine-tuning (real + synthetic)", "solid")):
            c = _sel(ours, name=name).sort_values("x")
            if c.empty:
                continue
            x = c["x"].to_numpy(float) + offset + 1
            fig.add_trace(go.Scatter(
                x=x, y=c["y"].to_numpy(float), mode="lines+markers", name=f"ours: {label}",
                line=dict(color=MODEL_COLORS["cnn"] if name == "finetune_loss" else "#f29ad0", width=2, dash=dash),
                marker=dict(size=6), hovertemplate=f"{label}<br>epoch %{{x:.0f}}<br>loss %{{y:.4f}}<extra></extra>"),
                row=1, col=1)
            offset += len(c)
        fig.update_xaxes(title_text="epoch (1-based, pre-training then fine-tuning)", row=1, col=1, **_AXIS)
        fig.update_yaxes(title_text="binary cross-entropy", rangemode="tozero", row=1, col=1, **_AXIS)
    if ref.empty:
        x0, x1 = fig.layout.xaxis2.domain
        fig.add_annotation(text="reference training log not available<br>(evaluate with --input &lt;ToC2ME folder&gt;)",
                           showarrow=False, xref="paper", yref="paper", x=(x0 + x1) / 2, y=0.5,
                           font=dict(color="#6c757d"))
        fig.update_xaxes(visible=False, row=1, col=2)
        fig.update_yaxes(visible=False, row=1, col=2)
        fig.update_yaxes(visible=False, row=1, col=2, secondary_y=True)
    else:
        styles = {"loss": ("train loss", "#198754", "solid", False), "val_loss": ("val loss", "#198754", "dash", False),
                  "acc": ("train acc", "#6c757d", "solid", True), "val_acc": ("val acc", "#6c757d", "dash", True)}
        for name, (label, color, dash, secondary) in styles.items():
            c = _sel(ref, name=name).sort_values("x")
            if c.empty:
                continue
            fig.add_trace(go.Scatter(
                x=c["x"].to_numpy(float), y=c["y"].to_numpy(float), mode="lines", name=f"reference: {label}",
                line=dict(color=color, width=2 if not secondary else 1.5, dash=dash),
                hovertemplate=f"reference {label}<br>epoch %{{x:.0f}}<br>%{{y:.4f}}<extra></extra>"),
                row=1, col=2, secondary_y=secondary)
        best_e = metric(rows, "reference", "training", "best_val_acc_epoch")
        best = metric(rows, "reference", "training", "best_val_acc")
        low_e = metric(rows, "reference", "training", "min_val_loss_epoch")
        if best_e is not None and best is not None:
            fig.add_vline(x=best_e, line=dict(color="#b02a37", width=1, dash="dot"), row=1, col=2)
            fig.add_annotation(x=best_e, y=0.02, xref="x2", yref="y2 domain", yanchor="bottom", xanchor="left",
                               text=f" best val_acc {best:.3f}<br> (epoch {best_e:.0f}); val loss<br> rises after it",
                               showarrow=False, align="left", font=dict(size=11, color="#b02a37"))
        if low_e is not None:
            fig.add_annotation(x=low_e, y=metric(rows, "reference", "training", "min_val_loss"), xref="x2", yref="y2",
                               text="lowest val loss", showarrow=True, arrowhead=2, ax=0, ay=-30,
                               font=dict(size=10, color="#198754"))
        fig.update_xaxes(title_text="epoch (0-based, as logged)", row=1, col=2, **_AXIS)
        fig.update_yaxes(title_text="loss (green)", rangemode="tozero", row=1, col=2, secondary_y=False, **_AXIS)
        fig.update_yaxes(title_text="accuracy (grey)", range=[0.85, 1.0], dtick=0.05, tickformat=".2f", row=1,
                         col=2, secondary_y=True, showgrid=False, showline=True, linecolor="#adb5bd",
                         ticks="outside", zeroline=False)
    fig = _layout(fig, 390, MARGINS["training"])
    fig.update_layout(legend=dict(y=-0.25, yanchor="top"))
    _fit_legend(fig, "training", -0.25, 390)
    return fig


# -- the reference's reported numbers -------------------------------------------------------------
def reported_numbers(rows: pd.DataFrame) -> dict | None:
    """The authors' reported numbers on their 2,861-trace test set (different data):
    ``{"accuracy": [(label, value)], "n": int, "n_up": int, "n_down": int,
    "confusion": 2x2 list [[up->up, up->down], [down->up, down->down]] (recorded
    convention) or None}``; None when absent."""
    d = "reference_reported_2861"
    acc = _sel(rows, dataset=d, kind="metric", name="accuracy")
    if acc.empty:
        return None
    order = ["eqpolarity_scsn", "eqpolarity_texas", "reference"]
    items = sorted(acc.itertuples(index=False), key=lambda r: order.index(r.model) if r.model in order else 9)
    conf = _sel(rows, dataset=d, kind="confusion")
    matrix = None
    if len(conf) == 4:
        lut = {r.name.split(":", 1)[1]: int(r.value) for r in conf.itertuples(index=False)}
        matrix = [[lut.get("up->up", 0), lut.get("up->down", 0)], [lut.get("down->up", 0), lut.get("down->down", 0)]]
    n = metric(rows, "reference", d, "n_labelled")
    return {"accuracy": [(model_label(r.model), float(r.value)) for r in items],
            "n": int(n) if n else None, "n_up": int(metric(rows, "reference", d, "n_up") or 0),
            "n_down": int(metric(rows, "reference", d, "n_down") or 0), "confusion": matrix}


def training_summary(rows: pd.DataFrame) -> list[tuple[str, str]]:
    """A few facts under the training panels: the reference's best/lowest epochs and final
    validation loss, our held-out (LOEO) numbers and synthetic hold-out accuracy."""
    out = []
    g = lambda m, d, n: metric(rows, m, d, n)  # noqa: E731
    if g("reference", "training", "best_val_acc") is not None:
        out.append(("Reference", f"best val_acc {g('reference', 'training', 'best_val_acc'):.5f} at epoch "
                    f"{g('reference', 'training', 'best_val_acc_epoch'):.0f}; lowest val_loss "
                    f"{g('reference', 'training', 'min_val_loss'):.4f} at epoch {g('reference', 'training', 'min_val_loss_epoch'):.0f};"
                    f" final val_loss {g('reference', 'training', 'final_val_loss'):.3f} after "
                    f"{g('reference', 'training', 'n_epochs'):.0f} epochs (overfits: train acc keeps rising)"))
    if g("cnn", "loeo_heldout", "accuracy") is not None:
        out.append(("Our CNN", f"held-out (nested leave-one-event-out, {int(g('cnn', 'loeo_heldout', 'n_events') or 0)}"
                    f" events) accuracy {share_text(rows, 'cnn', 'loeo_heldout', 'accuracy')} at coverage "
                    f"{share_text(rows, 'cnn', 'loeo_heldout', 'coverage')} (95 % Wilson); synthetic hold-out "
                    f"accuracy {fmt_pct(g('cnn', 'synthetic_heldout', 'accuracy'))}"))
    if g("cnn", FULL_NESTED, "accuracy") is not None:
        out.append(("Our CNN, fully nested", f"inner models trained without the held-out event: accuracy "
                    f"{share_text(rows, 'cnn', FULL_NESTED, 'accuracy')} at coverage "
                    f"{share_text(rows, 'cnn', FULL_NESTED, 'coverage')} (95 % Wilson; "
                    f"{int(g('cnn', FULL_NESTED, 'n_labelled') or 0)} labelled traces of "
                    f"{int(g('cnn', FULL_NESTED, 'n_events') or 0)} events)"))
    return out


# -- velocity-model robustness (pipeline.demo.robustness; not model_eval) ----------------------

def _deg(v) -> str:
    return "—" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.1f}°"


def _share_ci(r) -> str:
    if not r.get("n"):
        return "—"
    return f"{100 * r['share_within_20']:.0f} % ({100 * r['ci_low']:.0f}–{100 * r['ci_high']:.0f})"


def robustness_table(doc: dict) -> pd.DataFrame:
    """The study's summary (``doc`` from :func:`pipeline.demo.robustness_record.read`) as display
    rows, one per picker x quality class (A-D, then all solved events), the matched and the
    perturbed case side by side: ``picker, quality``, and per case ``n``, ``median``, ``p90``
    (Kagan angle to the true mechanism, deg) and ``within20`` (share <= 20 deg with its 95 %
    Wilson interval), as text."""
    s = doc["summary"]
    if s is None or len(s) == 0:
        return pd.DataFrame(columns=["picker", "quality"])
    out = []
    for (picker, q), g in s.groupby(["picker", "quality"], sort=False):
        row = {"picker": model_label(picker), "quality": "all solved" if q == "all" else q}
        for _, r in g.iterrows():
            c = r["case"]
            row[f"n_{c}"] = int(r["n"])
            row[f"median_{c}"] = _deg(r["median_kagan"]) if r["n"] else "—"
            row[f"p90_{c}"] = _deg(r["p90_kagan"]) if r["n"] else "—"
            row[f"within20_{c}"] = _share_ci(r)
        out.append(row)
    return pd.DataFrame(out)


def _reason_text(reason: str) -> str:
    """A counted SKHASH reason ('#' for its numbers) as words."""
    if "azimuthal gap" in reason.lower():
        return "azimuthal gap above SKHASH's max_agap (the build's 40°)"
    return reason.replace(" (#)", "").replace(". Skipping.", "").strip()


def robustness_source(doc: dict, source: str, data_dir) -> str:
    """Where the panel's numbers come from (``source`` of
    :func:`pipeline.demo.robustness_record.read_for_page`: ``"data"`` = this data folder's study,
    ``"committed"`` = the committed record), when and by what command they were made, with
    which CNN weights and SKHASH engine, and how to make them again."""
    from pipeline.demo import robustness_record as rb
    st = doc.get("settings", {})
    made = str(doc.get("made_at") or "an unknown date").replace("T", " ").replace("+00:00", " UTC")
    how = f" by {doc['command']}" if doc.get("command") else ""
    extras = []
    w = st.get("weights") or {}
    if w.get("sha256"):
        extras.append(f"CNN weights {w.get('file', '?')} sha256 {w['sha256'][:12]}…")
        current = _committed_weights_sha256()
        if current and current != w["sha256"]:
            extras.append(f"not the committed weights ({current[:12]}…): re-make it")
    if st.get("skhash_engine"):
        extras.append(f"SKHASH {st['skhash_engine']} grid search")
    extra = f" ({'; '.join(extras)})" if extras else ""
    if source == "committed":
        return (f"From the committed record pipeline/models/{rb.RESULT_FILE}, made {made}{how}{extra}. The study "
                f"depends only on the seeded demo scenario and the committed CNN, not on this build, so it is "
                f"shipped with the code; make robustness re-makes it, python -m pipeline robustness --data-dir "
                f"{data_dir} makes one for this data folder only (shown instead).")
    return (f"From this data folder's study {data_dir}/{rb.RESULT_FILE}, made {made}{how}{extra}; "
            f"without it the page shows the committed record (make robustness re-makes that).")


def _committed_weights_sha256() -> str | None:
    """SHA-256 of the committed CNN weights, from its training record (no TensorFlow import);
    the record is read once per version of the file, not on every page load."""
    from pipeline.picking.evaluate import DEFAULT_RECORD
    try:
        st = DEFAULT_RECORD.stat()
    except OSError:
        return None
    return _record_weights_sha256(st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=2)
def _record_weights_sha256(mtime_ns: int, size: int) -> str | None:
    from pipeline.picking.evaluate import default_record
    rec = default_record()
    return rec.get("weights_sha256") if rec else None


def robustness_caption(doc: dict) -> str:
    """How the study was made, in one paragraph (numbers from the stored settings)."""
    st, pert = doc["settings"], doc["settings"]["perturbation"]
    geo = doc.get("geometry", {})
    pickers = ", ".join(model_label(p) for p in st.get("pickers", []))
    text = (f"{st['n_events']} demo events (seeded choice, waveform seed {st['seed']}, scenario seed "
            f"{st['scenario_seed']}), vertical P windows picked by {pickers} and inverted by SKHASH with the "
            f"nominal demo model (build settings). Matched: waveforms made with that same model (the demo's "
            f"inverse crime). Perturbed: waveforms made with Vp × {pert['shallow_factor']:g} at the model nodes "
            f"shallower than {pert['split_km']:g} km, × {pert['deep_factor']:g} from {pert['split_km']:g} km down, "
            f"every node below the surface {1000 * pert['depth_shift_km']:.0f} m deeper, plus station statics "
            f"(normal, σ = {1000 * pert['statics_sigma_s']:.0f} ms, clipped at ±{pert['statics_clip_sigma']:g} σ) "
            f"that move the onset off the pick.")
    if geo:
        text += (f" This moves takeoff angles by {geo['takeoff_change_deg_median']:.1f}° (median; 90th percentile "
                 f"{geo['takeoff_change_deg_p90']:.1f}°) and P times by {geo['p_time_change_ms_median']:.0f} ms; "
                 f"{100 * geo['true_polarity_flipped_share']:.1f} % of the true polarities change sign.")
        if "perturbed_assumed_takeoff_error_deg_median" in geo:
            text += (f" The takeoffs SKHASH assumes are off by {geo['matched_assumed_takeoff_error_deg_median']:.1f}° "
                     f"(median) in the matched case (its lookup-table interpolation) and by "
                     f"{geo['perturbed_assumed_takeoff_error_deg_median']:.1f}° in the perturbed one.")
    text += (" Kagan angle to the true mechanism; quality = SKHASH's class of each case's own solution; "
             "share ≤ 20° with its 95 % Wilson interval.")
    uns = doc.get("unsolved")
    if uns is not None and len(uns):
        tot = uns.groupby(["case", "picker"])["n"].sum()
        main = uns.groupby("reason")["n"].sum().sort_values(ascending=False)
        text += (f" Not solved (not in the table): {int(tot.min())}–{int(tot.max())} of the {st['n_events']} events "
                 f"per case and picker, mostly: {_reason_text(main.index[0])}.")
    return text


def robustness_polarity_lines(doc: dict) -> list[str]:
    """One sentence per picker: the per-event change on the events solved in both cases, and
    the share of the inverted polarities that are wrong, both cases."""
    pol = doc["polarity"]
    lines = []
    paired = doc.get("paired")
    for _, r in (paired.iterrows() if paired is not None else ()):
        if r["n_both"]:
            lines.append(f"{model_label(r['picker'])}, the {int(r['n_both'])} events solved in both cases: Kagan angle "
                         f"to the truth changes by {r['median_change_deg']:+.1f}° (median; 90th percentile "
                         f"{r['p90_change_deg']:+.1f}°) with the wrong model; {int(r['n_worse_5'])} events ≥ 5° worse, "
                         f"{int(r['n_better_5'])} ≥ 5° better; quality class changed for {int(r['n_quality_changed'])}.")
    if pol is None or len(pol) == 0:
        return lines
    for picker, g in pol.groupby("picker", sort=False):
        parts = []
        for _, r in g.iterrows():
            parts.append(f"{r['case']} {100 * r['share_wrong']:.1f} % ({int(r['n_wrong'])} of {int(r['n_picked'])}; "
                         f"95 % CI {100 * r['ci_low']:.1f}–{100 * r['ci_high']:.1f} %)")
        lines.append(f"{model_label(picker)}: wrong polarities among those inverted: " + "; ".join(parts) + ".")
    return lines
