"""`evaluate`: the ``model_eval`` table - how well each polarity picker does, on which data.

:func:`evaluate` takes a data folder (or the tables of a build in memory) and returns the
long-form ``model_eval`` rows (:data:`pipeline.schema.MODEL_EVAL`: model, dataset, kind,
name, x, y, value).  Nothing here imports TensorFlow or ObsPy; it only reads tables.

Pickers (``model``)
    ``cnn`` (production picker), ``onset`` (classical baseline), ``cct`` (the EQpolarity
    architecture, only where the build ran it with a user's weights), ``reference`` (the
    published Micro-EQpolarity outputs shipped with ToC2ME, ``polarities.method ==
    'reference'``, decided with its fixed 0.05/0.95 cut-offs).

Evaluation sets (``dataset``)
    * ``manual50``: the analyst's manual picks (``polarities.method == 'manual'``; on ToC2ME
      the 50 picks of 20161104064824.680);
    * ``reference_confident``: the reference model's confident outputs (method
      ``reference``, polarity != 0) - an agreement measure, not ground truth;
    * ``loeo_heldout``: the CNN's leave-one-event-out held-out predictions stored in its
      training record (each event predicted by the fold model that never saw its labels),
      scored **nested** (:mod:`pipeline.picking.nested`): for each outer (held-out) event the
      recipe and the undetermined band are chosen on the other event's predictions only,
      then applied to it. Model ``cnn`` is that procedure (recipe and band chosen per fold);
      ``cnn_synthetic_only`` / ``cnn_finetuned`` fix the recipe and nest only the band.
      These are the honest CNN numbers; the onset baseline is scored on the same labelled
      traces;
    * ``loeo_heldout_full_nested`` (model ``cnn``, shares only): the same outer predictions
      with recipe and band chosen by inner fold models trained on station groups of the
      other event, never on anything of the held-out event
      (:mod:`pipeline.picking.full_nested`; rows present once ``python -m pipeline nested``
      has written ``pipeline/models/cnn_polarity.full_nested.json``; ``inner_folds`` = k);
    * ``loeo_fold:<event_id>``: the same, one outer fold (the held-out event) at a time, with
      the fold's band and ``recipe:<name>`` (value 1);
    * ``loeo_selected_on_itself``: the training record's own LOEO summary, whose band and
      recipe were chosen on these same pooled predictions (optimistic; kept to show the
      difference);
    * ``demo_truth``: the demo's true polarities (``truth_polarities``, dead traces
      excluded), plus subsets ``demo_truth_near_nodal`` / ``demo_truth_clear`` (|P
      radiation| below / above the nodal threshold) and ``demo_truth_snr_lt3`` /
      ``demo_truth_snr_3_10`` / ``demo_truth_snr_ge10`` (true SNR classes);
    * ``all_traces``: every trace a picker saw (decided share, no labels);
    * ``reference_reported_2861``: what the reference's authors report on **their own**
      2,861-trace test set (different data: the waveforms are not available here);
    * ``training``: training curves (ours from the record, the reference's from
      ``<input>/model_test/training_log_90.csv``);
    * ``in_sample`` / ``synthetic_heldout``: the record's own summary blocks
      (:func:`pipeline.picking.training.model_eval_rows`; ``in_sample`` is optimistic).

Kinds and conventions
    * ``metric`` (``value``): ``n_labelled``, ``n_scored``, ``n_decided``, ``n_correct``,
      ``n_wrong``, ``n_missing`` (labelled traces the picker has no output for),
      ``coverage`` (decided / labelled), ``accuracy`` (correct / decided), each with its 95 %
      Wilson interval ``coverage_ci_low`` / ``coverage_ci_high`` / ``accuracy_ci_low`` /
      ``accuracy_ci_high`` (:func:`pipeline.picking.intervals.wilson_interval`; traces taken
      as independent, so too narrow for traces of a few events), ``abstention``
      (share of scored traces inside the picker's undetermined band), ``accuracy_forced``
      (p >= 0.5 -> down, every scored trace), ``precision_up``, ``recall_up``, ``f1_up``,
      ``precision_down``, ``recall_down``, ``f1_down`` - classes in the **true ground-motion
      convention** (up = +1 after the station reversal), on the decided traces -
      ``roc_auc``, ``average_precision`` (recorded convention, below), ``band_lower`` /
      ``band_upper``, ``in_sample_events`` (how many of the set's events the production
      CNN was trained on: > 0 means optimistic numbers), ``n_events``; on ``loeo_heldout``
      also ``n_folds`` and ``nested_selection`` (1: recipe and band chosen on inner data);
    * ``confusion`` (``value`` = count; ``x`` = actual index, ``y`` = predicted index):
      names ``true:<actual>-><predicted>`` with actual in up/down and predicted in
      up/down/undetermined, **true convention**; the authors' reported matrix is
      ``recorded:<actual>-><predicted>`` (recorded convention, as they give it);
    * ``roc`` (x = false-positive rate, y = true-positive rate, value = threshold) and
      ``pr`` (x = recall, y = precision, value = threshold): from ``prob_down_recorded`` with
      the positive class **recorded down** (the model's own output convention); the onset
      baseline only outputs 0 / 0.5 / 1, so its curves have a few points;
    * ``calibration`` (x = mean predicted p, y = observed fraction recorded-down, value = n
      per bin; :func:`pipeline.picking.pickers.calibration.reliability_curve`);
    * ``coverage`` (x = coverage, y = accuracy, value = confidence threshold
      max(p, 1 - p)): what a stricter or looser symmetric band would give;
    * ``training`` (x = epoch, y = the series ``name``).

Run it with ``python -m pipeline evaluate --data-dir DIR`` (:func:`add_arguments`,
:func:`run`); the build calls :func:`evaluate` after picking.
"""
from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from .intervals import wilson_interval
from .pickers import REFERENCE_BAND, station_reversed
from .pickers.calibration import reliability_curve

log = logging.getLogger(__name__)

COLUMNS = ["model", "dataset", "kind", "name", "x", "y", "value"]
#: kinds this module writes
KINDS = ("metric", "roc", "pr", "calibration", "confusion", "coverage", "training")
#: picker methods of ``polarities`` that are evaluated (in this order), when present
PICKERS = ("cnn", "onset", "cct", "reference")
#: the undetermined band of pickers whose rows carry none (the reference's fixed cut-offs)
DEFAULT_BANDS = {"reference": REFERENCE_BAND, "onset": (0.25, 0.75)}

MANUAL = "manual50"
REFERENCE_CONFIDENT = "reference_confident"
LOEO = "loeo_heldout"
LOEO_FOLD = "loeo_fold:"            # + the held-out event id
LOEO_FULL = "loeo_heldout_full_nested"   # recipe and band chosen by inner models that never saw the event
LOEO_SELF = "loeo_selected_on_itself"
DEMO_TRUTH = "demo_truth"
ALL_TRACES = "all_traces"
REPORTED = "reference_reported_2861"
TRAINING = "training"
#: demo subsets: name -> (description, row mask on truth_polarities)
SNR_CLASSES = (("demo_truth_snr_lt3", "true SNR < 3", 0.0, 3.0),
               ("demo_truth_snr_3_10", "3 <= true SNR < 10", 3.0, 10.0),
               ("demo_truth_snr_ge10", "true SNR >= 10", 10.0, np.inf))

#: the reference's training log inside a ToC2ME-like input folder
TRAINING_LOG = Path("model_test") / "training_log_90.csv"
TEST_LABELS = Path("model_test") / "polall.npy"

#: reported test accuracies of Chen et al. (2024) on their 2,861-trace ToC2ME test set
REPORTED_ACCURACY = {
    "eqpolarity_scsn": 0.6994,    # SCSN model, no transfer learning
    "eqpolarity_texas": 0.915,    # Texas transfer model
    "reference": 0.99196,         # Micro-EQpolarity (the reference)
}
#: the reference's reported confusion matrix, rows = actual [up, down], cols = predicted,
#: RECORDED convention (label 0 = recorded up, 1 = recorded down)
REPORTED_CONFUSION = ((1156, 12), (11, 1682))

CLASSES = ("up", "down")
PREDICTED = ("up", "down", "undetermined")


# --------------------------------------------------------------------------- helpers

def _rows() -> list[dict]:
    return []


def _add(rows: list, model, dataset, kind, name, x=None, y=None, value=None) -> None:
    rows.append({"model": model, "dataset": dataset, "kind": kind, "name": name,
                 "x": None if x is None else float(x), "y": None if y is None else float(y),
                 "value": None if value is None or (isinstance(value, float) and not np.isfinite(value))
                 else float(value)})


def _frame(rows: list) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    for c in ("model", "dataset", "kind", "name"):
        df[c] = df[c].astype(str)
    for c in ("x", "y", "value"):
        df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


def _ratio(a, b) -> float:
    return float(a) / float(b) if b else float("nan")


def _cumulative_counts(p, y):
    """The distinct scores of ``p`` from the highest down (ties as one step) and, at each as
    the threshold, the true positives (``y == 1`` scored at or above it) and all predicted
    positives: ``(thresholds, tps, predicted)``."""
    order = np.argsort(-p, kind="mergesort")
    p, y = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p)), len(p) - 1]
    return p[last], np.cumsum(y)[last], last + 1


def roc_points(prob, label) -> pd.DataFrame:
    """ROC curve of scores ``prob`` for the positive class ``label == 1``.

    Columns ``fpr, tpr, threshold`` (one point per distinct score, from (0, 0) at threshold
    +inf to (1, 1)); empty when either class is absent. Ties are treated as one step."""
    p, y = _finite(prob, label)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        return pd.DataFrame(columns=["fpr", "tpr", "threshold"], dtype=float)
    thresholds, tps, predicted = _cumulative_counts(p, y)
    fps = predicted - tps
    return pd.DataFrame({"fpr": np.r_[0.0, fps / n_neg], "tpr": np.r_[0.0, tps / n_pos],
                         "threshold": np.r_[np.inf, thresholds]})


def roc_auc(roc: pd.DataFrame) -> float:
    """Area under a :func:`roc_points` curve (trapezoids; NaN when empty)."""
    if roc.empty:
        return float("nan")
    x, y = roc["fpr"].to_numpy(float), roc["tpr"].to_numpy(float)
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def pr_points(prob, label) -> pd.DataFrame:
    """Precision-recall curve (positive class ``label == 1``): columns ``recall, precision,
    threshold``, one point per distinct score, starting at (0, 1); empty without positives."""
    p, y = _finite(prob, label)
    n_pos = int((y == 1).sum())
    if n_pos == 0 or len(p) == 0:
        return pd.DataFrame(columns=["recall", "precision", "threshold"], dtype=float)
    thresholds, tps, predicted = _cumulative_counts(p, y)
    return pd.DataFrame({"recall": np.r_[0.0, tps / n_pos], "precision": np.r_[1.0, tps / predicted],
                         "threshold": np.r_[np.inf, thresholds]})


def average_precision(pr: pd.DataFrame) -> float:
    """Step-wise area under a :func:`pr_points` curve, sum (R_k - R_k-1) P_k."""
    if pr.empty:
        return float("nan")
    r, pr_ = pr["recall"].to_numpy(float), pr["precision"].to_numpy(float)
    return float(np.sum(np.diff(r) * pr_[1:]))


def coverage_accuracy(prob, label, n_total: int | None = None) -> pd.DataFrame:
    """Coverage vs accuracy of symmetric bands: deciding the traces whose confidence
    ``max(p, 1 - p)`` is >= c (down if p > 0.5), for every distinct c > 0.5.

    Columns ``coverage`` (decided / ``n_total``, default the number of finite scores),
    ``accuracy`` (on the decided), ``threshold`` (c), from the strictest band to the widest.
    p = 0.5 exactly is never decided."""
    p, y = _finite(prob, label)
    n_total = len(p) if n_total is None else int(n_total)
    conf = np.maximum(p, 1 - p)
    keep = conf > 0.5
    p, y, conf = p[keep], y[keep], conf[keep]
    if len(p) == 0 or n_total == 0:
        return pd.DataFrame(columns=["coverage", "accuracy", "threshold"], dtype=float)
    correct = ((p > 0.5) & (y == 1)) | ((p < 0.5) & (y == 0))
    order = np.argsort(-conf, kind="mergesort")
    conf, correct = conf[order], correct[order]
    last = np.r_[np.flatnonzero(np.diff(conf)), len(conf) - 1]
    n_dec = last + 1
    return pd.DataFrame({"coverage": n_dec / n_total, "accuracy": np.cumsum(correct)[last] / n_dec,
                         "threshold": conf[last]})


def _finite(prob, label):
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    y = np.asarray(label, dtype=np.float64).reshape(-1)
    ok = np.isfinite(p) & np.isfinite(y)
    return p[ok], y[ok]


def class_scores(actual_true, predicted_true) -> dict:
    """Counts and per-class precision/recall/F1 in the TRUE convention.

    ``actual_true``: +1 / -1; ``predicted_true``: +1 / -1 / 0 (undetermined) or NaN
    (missing). Precision and recall are on the decided traces (coverage is reported
    apart); ``confusion[(actual, predicted)]`` counts every labelled trace, with
    ``undetermined`` for 0 or missing."""
    a = np.asarray(actual_true, dtype=np.float64)
    p = np.asarray(predicted_true, dtype=np.float64)
    p = np.where(np.isfinite(p), p, 0.0)
    dec = p != 0
    out = {"n_labelled": int(len(a)), "n_decided": int(dec.sum()),
           "n_correct": int((dec & (p == a)).sum()), "n_wrong": int((dec & (p != a)).sum())}
    out["coverage"] = _ratio(out["n_decided"], out["n_labelled"])
    out["accuracy"] = _ratio(out["n_correct"], out["n_decided"])
    conf = {}
    for ai, an in ((1, "up"), (-1, "down")):
        for pi, pn in ((1, "up"), (-1, "down"), (0, "undetermined")):
            conf[(an, pn)] = int(((a == ai) & (p == pi)).sum())
    out["confusion"] = conf
    for ci, cn in ((1, "up"), (-1, "down")):
        tp = int((dec & (p == ci) & (a == ci)).sum())
        pred = int((dec & (p == ci)).sum())
        act = int((dec & (a == ci)).sum())
        prec, rec = _ratio(tp, pred), _ratio(tp, act)
        out[f"precision_{cn}"] = prec
        out[f"recall_{cn}"] = rec
        out[f"f1_{cn}"] = 2 * prec * rec / (prec + rec) if np.isfinite(prec) and np.isfinite(rec) and prec + rec > 0 \
            else float("nan")
    return out


# --------------------------------------------------------------------------- labels

def _reversed(df: pd.DataFrame, stations: pd.DataFrame) -> np.ndarray:
    return station_reversed(df["network"].to_numpy(), df["station"].to_numpy(), stations)


def _label_frame(keys: pd.DataFrame, label_true, stations, **extra) -> pd.DataFrame:
    """Labels with both conventions: ``label_true`` (+1/-1) and ``label_down_recorded``
    (1 = recorded down, after undoing the station reversal)."""
    out = keys[["event_id", "network", "station"]].astype(str).reset_index(drop=True)
    lt = np.asarray(label_true, dtype=np.int64)
    rec = np.where(_reversed(out, stations), -lt, lt)
    out["label_true"] = lt
    out["label_down_recorded"] = (rec == -1).astype(float)
    for k, v in extra.items():
        out[k] = np.asarray(v)
    return out


def manual_labels(pol: pd.DataFrame, stations=None) -> pd.DataFrame:
    """Labels from the manual picks (``method == 'manual'``, polarity +1/-1, true motion)."""
    m = pol[(pol["method"] == "manual") & pol["polarity"].isin([1, -1])]
    m = m.drop_duplicates(["event_id", "network", "station"], keep="last")
    return _label_frame(m, m["polarity"].to_numpy(), stations)


def reference_labels(pol: pd.DataFrame, stations=None) -> pd.DataFrame:
    """Labels from the reference model's confident outputs (method ``reference``,
    polarity != 0; true motion, reversal already applied at ingest)."""
    m = pol[(pol["method"] == "reference") & pol["polarity"].isin([1, -1])]
    m = m.drop_duplicates(["event_id", "network", "station"], keep="last")
    return _label_frame(m, m["polarity"].to_numpy(), stations)


def truth_labels(truth: pd.DataFrame, stations=None) -> pd.DataFrame:
    """Labels from the demo's ``truth_polarities`` (``true_polarity`` +1/-1, true motion),
    dead traces excluded; carries ``near_nodal`` and ``snr_true``."""
    t = truth[~truth["dead"].astype(bool) & truth["true_polarity"].isin([1, -1])]
    return _label_frame(t, t["true_polarity"].to_numpy(), stations, near_nodal=t["near_nodal"].astype(bool),
                        snr_true=t["snr_true"].astype(float))


def record_sensors() -> pd.DataFrame:
    """Sensor polarity of the training record's traces: they are ToC2ME's, so its shipped
    sensor-polarity file (:data:`pipeline.ingest.toc2me.SHIPPED_SENSORS`), whatever the
    build being evaluated."""
    from pipeline.ingest.toc2me import shipped_sensors
    return shipped_sensors()


def record_labels(record: dict, sensors: pd.DataFrame | None = None) -> pd.DataFrame:
    """Labels of the record's held-out predictions (``label`` 1 = recorded down) with the
    fold models' probabilities as columns ``p_<recipe>``. The record names stations only;
    their network and reversal come from ``sensors`` (network, station, reversed; default
    :func:`record_sensors`). A station missing there raises
    :class:`pipeline.picking.pickers.UnknownStationError`."""
    preds = pd.DataFrame((record.get("loeo") or {}).get("held_out_predictions") or [])
    if preds.empty or "label" not in preds:
        return pd.DataFrame()
    sensors = record_sensors() if sensors is None else sensors
    preds = preds[preds["label"].isin([0.0, 1.0])].copy()
    preds["station"] = preds["station"].astype(str)
    preds["network"] = preds["station"].map(sensors.drop_duplicates("station", keep=False)
                                            .set_index("station")["network"]).fillna("")
    rec = np.where(preds["label"].to_numpy() == 1, -1, 1)
    rev = station_reversed(preds["network"].to_numpy(), preds["station"].to_numpy(), sensors)
    lab = _label_frame(preds, np.where(rev, -rec, rec), sensors)
    for c in preds.columns:
        if c.startswith("p_"):
            lab[c] = preds[c].to_numpy(dtype=float)
    return lab


# --------------------------------------------------------------------------- one picker on one set

def _band(rows: pd.DataFrame, method: str) -> tuple[float, float]:
    """The picker's undetermined band: from its rows' ``lower``/``upper``, else the default."""
    if "lower" in rows and "upper" in rows:
        lo, hi = rows["lower"].dropna(), rows["upper"].dropna()
        if len(lo) and len(hi):
            return float(lo.median()), float(hi.median())
    return DEFAULT_BANDS.get(method, REFERENCE_BAND)


def _decide_true(prob, rec_reversed, lower, upper) -> np.ndarray:
    """True-motion polarity from recorded-down probabilities (NaN -> 0)."""
    p = np.asarray(prob, dtype=np.float64)
    rec = np.zeros(p.shape)
    with np.errstate(invalid="ignore"):
        rec[p >= upper] = -1
        rec[p <= lower] = 1
    return np.where(rec_reversed, -rec, rec)


def score_rows(rows: list, model: str, dataset: str, labels: pd.DataFrame, prob, predicted_true,
               band: tuple[float, float], *, curves: bool = True) -> dict:
    """Append the metric/confusion (and curve) rows of one picker on one labelled set.

    ``prob``: the picker's prob_down_recorded per label row (NaN = no output);
    ``predicted_true``: its decided true polarity (+1/-1/0, NaN = no output). Returns the
    scores (see :func:`class_scores`)."""
    prob = np.asarray(prob, dtype=np.float64)
    pred = np.asarray(predicted_true, dtype=np.float64)
    s = class_scores(labels["label_true"].to_numpy(), pred)
    scored = np.isfinite(prob) | np.isfinite(pred)
    s["n_scored"] = int(scored.sum())
    s["n_missing"] = int(len(prob) - s["n_scored"])
    und = scored & (np.nan_to_num(pred, nan=0.0) == 0)
    s["abstention"] = _ratio(int(und.sum()), s["n_scored"])
    y = labels["label_down_recorded"].to_numpy(float)
    fin = np.isfinite(prob)
    forced = ((prob >= 0.5) == (y == 1))
    s["accuracy_forced"] = _ratio(int((forced & fin & (prob != 0.5)).sum()), int(fin.sum()))
    roc, pr = roc_points(prob, y), pr_points(prob, y)
    s["roc_auc"], s["average_precision"] = roc_auc(roc), average_precision(pr)
    s["band_lower"], s["band_upper"] = band
    s["accuracy_ci_low"], s["accuracy_ci_high"] = wilson_interval(s["n_correct"], s["n_decided"])
    s["coverage_ci_low"], s["coverage_ci_high"] = wilson_interval(s["n_decided"], s["n_labelled"])
    for k in ("n_labelled", "n_scored", "n_decided", "n_correct", "n_wrong", "n_missing", "coverage",
              "coverage_ci_low", "coverage_ci_high", "accuracy", "accuracy_ci_low", "accuracy_ci_high",
              "abstention", "accuracy_forced", "precision_up", "recall_up", "f1_up", "precision_down",
              "recall_down", "f1_down", "roc_auc", "average_precision", "band_lower", "band_upper"):
        _add(rows, model, dataset, "metric", k, value=s[k])
    for (an, pn), n in s["confusion"].items():
        _add(rows, model, dataset, "confusion", f"true:{an}->{pn}", x=CLASSES.index(an), y=PREDICTED.index(pn),
             value=n)
    if curves:
        for r in roc.itertuples(index=False):
            _add(rows, model, dataset, "roc", "roc", x=r.fpr, y=r.tpr, value=r.threshold)
        for r in pr.itertuples(index=False):
            _add(rows, model, dataset, "pr", "pr", x=r.recall, y=r.precision, value=r.threshold)
        for pt in reliability_curve(prob, y):
            _add(rows, model, dataset, "calibration", "reliability", x=pt["mean_pred"], y=pt["frac_down"],
                 value=pt["n"])
        for r in coverage_accuracy(prob, y, n_total=len(y)).itertuples(index=False):
            _add(rows, model, dataset, "coverage", "coverage_accuracy", x=r.coverage, y=r.accuracy,
                 value=r.threshold)
    return s


def _picker_on(labels: pd.DataFrame, pol: pd.DataFrame, method: str) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(prob_down_recorded, true polarity, band) of ``method`` aligned with ``labels``."""
    rows = pol[pol["method"] == method].drop_duplicates(["event_id", "network", "station"], keep="last")
    band = _band(rows, method)
    keys = ["event_id", "network", "station"]
    cols = rows[keys].astype(str).assign(_p=rows["prob_down_recorded"].astype(float).to_numpy(),
                                         _pol=rows["polarity"].astype(float).to_numpy())
    m = labels[keys].merge(cols, on=keys, how="left")
    return m["_p"].to_numpy(float), m["_pol"].to_numpy(float), band


def _methods(pol: pd.DataFrame) -> list[str]:
    present = set(pol["method"].astype(str).unique()) if len(pol) else set()
    return [m for m in PICKERS if m in present]


# --------------------------------------------------------------------------- the sets

def _labelled_set(rows, pol, labels, dataset, methods, *, curves=True, in_sample=None):
    if labels.empty:
        return {}
    out = {}
    for m in methods:
        prob, pred, band = _picker_on(labels, pol, m)
        if not (np.isfinite(prob).any() or np.isfinite(pred).any()):
            continue
        out[m] = score_rows(rows, m, dataset, labels, prob, pred, band, curves=curves)
        if in_sample is not None and m == "cnn":
            _add(rows, m, dataset, "metric", "in_sample_events",
                 value=len(set(labels["event_id"]) & set(in_sample)))
        _add(rows, m, dataset, "metric", "n_events", value=labels["event_id"].nunique())
    return out


def _all_traces(rows, pol, methods):
    for m in methods:
        r = pol[pol["method"] == m]
        n = len(r)
        dec = int(r["polarity"].isin([1, -1]).sum())
        _add(rows, m, ALL_TRACES, "metric", "n_scored", value=n)
        _add(rows, m, ALL_TRACES, "metric", "n_decided", value=dec)
        _add(rows, m, ALL_TRACES, "metric", "coverage", value=_ratio(dec, n))
        lo, hi = wilson_interval(dec, n)
        _add(rows, m, ALL_TRACES, "metric", "coverage_ci_low", value=lo)
        _add(rows, m, ALL_TRACES, "metric", "coverage_ci_high", value=hi)
        _add(rows, m, ALL_TRACES, "metric", "abstention", value=_ratio(n - dec, n))
        _add(rows, m, ALL_TRACES, "metric", "n_events", value=r["event_id"].nunique())
        lo, hi = _band(r, m)
        _add(rows, m, ALL_TRACES, "metric", "band_lower", value=lo)
        _add(rows, m, ALL_TRACES, "metric", "band_upper", value=hi)


#: model names of the LOEO rows: the nested procedure, and each recipe with only the band nested
LOEO_MODELS = {"procedure": "cnn", "synthetic": "cnn_synthetic_only", "finetuned": "cnn_finetuned"}


def _one_band(lower, upper) -> tuple[float, float]:
    """The band when every fold chose the same one, else (NaN, NaN) (see the fold rows)."""
    lo, hi = np.unique(np.asarray(lower, float)), np.unique(np.asarray(upper, float))
    return (float(lo[0]), float(hi[0])) if len(lo) == 1 and len(hi) == 1 else (float("nan"), float("nan"))


def _loeo(rows, record, pol, stations, methods):
    """The record's held-out predictions scored nested (:mod:`pipeline.picking.nested`: the
    honest CNN numbers), per outer fold too, and the onset baseline on the same labelled
    traces (where the build picked those events)."""
    from .nested import nested_from_record
    sensors = record_sensors()  # the record's traces are ToC2ME's, whatever this build is
    lab = record_labels(record, sensors)
    nest = nested_from_record(record)
    if lab.empty or nest is None:
        return
    keys = ["event_id", "station"]
    tr = nest["trace"].astype({"event_id": str, "station": str})
    lab = lab.merge(tr.drop(columns=[c for c in ("label", "network") if c in tr] +
                            [c for c in tr if c.startswith("p_")]), on=keys, how="left", validate="one_to_one")
    rev = _reversed(lab, sensors)
    recipes = [c[2:] for c in lab.columns if c.startswith("p_")]
    variants = [("procedure", lab["p"], lab["lower"], lab["upper"])] + \
               [(r, lab[f"p_{r}"], lab[f"lower_{r}"], lab[f"upper_{r}"]) for r in recipes]
    manual = manual_labels(pol, stations) if len(pol) else pd.DataFrame()
    for variant, prob, lower, upper in variants:
        model = LOEO_MODELS.get(variant, f"cnn_{variant}")
        prob = prob.to_numpy(float)
        pred = _decide_true(prob, rev, lower.to_numpy(float), upper.to_numpy(float))
        score_rows(rows, model, LOEO, lab, prob, pred, _one_band(lower, upper), curves=True)
        _add(rows, model, LOEO, "metric", "in_sample_events", value=0)
        _add(rows, model, LOEO, "metric", "n_events", value=lab["event_id"].nunique())
        _add(rows, model, LOEO, "metric", "n_folds", value=len(nest["folds"]))
        _add(rows, model, LOEO, "metric", "nested_selection", value=1)
        if variant == "procedure" and len(manual):
            # the analyst's picks against the nested decisions (true motion, station by station)
            m = manual.merge(lab[["event_id", "network", "station"]].assign(_pred=pred),
                             on=["event_id", "network", "station"], how="left")
            dec = m["_pred"].fillna(0).to_numpy() != 0
            hit = dec & (m["_pred"].to_numpy() == m["label_true"].to_numpy())
            _add(rows, model, LOEO, "metric", "manual_n", value=len(m))
            _add(rows, model, LOEO, "metric", "manual_match", value=int(hit.sum()))
            _add(rows, model, LOEO, "metric", "manual_wrong", value=int((dec & ~hit).sum()))
    for fold in nest["folds"]:
        ds = LOEO_FOLD + fold["test_event"]
        sub = lab[lab["event_id"] == fold["test_event"]].reset_index(drop=True)
        prob = sub["p"].to_numpy(float)
        pred = _decide_true(prob, _reversed(sub, sensors), fold["lower"], fold["upper"])
        score_rows(rows, "cnn", ds, sub, prob, pred, (fold["lower"], fold["upper"]), curves=False)
        _add(rows, "cnn", ds, "metric", f"recipe:{fold['recipe']}", value=1)
        _add(rows, "cnn", ds, "metric", "in_sample_events", value=0)
        _add(rows, "cnn", ds, "metric", "n_events", value=1)
    _full_nested(rows, record)
    for m in methods:
        if m in ("cnn", "reference"):
            continue  # cnn: the production model saw these labels; reference: it made most of them
        prob, pred, band = _picker_on(lab, pol, m)
        if np.isfinite(prob).sum() == len(lab):  # only when the build has every trace
            score_rows(rows, m, LOEO, lab, prob, pred, band, curves=True)
            _add(rows, m, LOEO, "metric", "n_events", value=lab["event_id"].nunique())


def _demo(rows, pol, truth, stations, methods):
    lab = truth_labels(truth, stations)
    lab = lab[lab["event_id"].isin(pol["event_id"].unique())].reset_index(drop=True)
    if lab.empty:
        return
    _labelled_set(rows, pol, lab, DEMO_TRUTH, methods)
    subsets = [("demo_truth_near_nodal", lab["near_nodal"].to_numpy()),
               ("demo_truth_clear", ~lab["near_nodal"].to_numpy())]
    snr = lab["snr_true"].to_numpy(float)
    subsets += [(name, (snr >= lo) & (snr < hi)) for name, _, lo, hi in SNR_CLASSES]
    for name, mask in subsets:
        sub = lab[mask].reset_index(drop=True)
        _labelled_set(rows, pol, sub, name, methods, curves=False)


def reference_training_rows(input_dir: str | Path | None) -> pd.DataFrame:
    """The reference's training curves from ``<input_dir>/model_test/training_log_90.csv``
    (kind ``training``, model ``reference``, dataset ``training``; names ``acc``, ``loss``,
    ``val_acc``, ``val_loss``, x = epoch, 0-based) plus metrics ``best_val_acc``,
    ``best_val_acc_epoch``, ``min_val_loss``, ``min_val_loss_epoch``, ``final_val_loss``,
    ``n_epochs``. Empty when the file is absent."""
    rows = _rows()
    if input_dir is None:
        return _frame(rows)
    path = Path(input_dir) / TRAINING_LOG
    if not path.is_file():
        return _frame(rows)
    log_df = pd.read_csv(path)
    need = {"epoch", "acc", "loss", "val_acc", "val_loss"}
    if not need <= set(log_df.columns):
        log.warning("%s: missing columns %s", path, sorted(need - set(log_df.columns)))
        return _frame(rows)
    log_df = log_df.sort_values("epoch")
    for name in ("acc", "loss", "val_acc", "val_loss"):
        for e, v in zip(log_df["epoch"], log_df[name]):
            _add(rows, "reference", TRAINING, "training", name, x=e, y=v)
    best = log_df.loc[log_df["val_acc"].idxmax()]
    low = log_df.loc[log_df["val_loss"].idxmin()]
    for name, v in (("n_epochs", len(log_df)), ("best_val_acc", best["val_acc"]), ("best_val_acc_epoch", best["epoch"]),
                    ("min_val_loss", low["val_loss"]), ("min_val_loss_epoch", low["epoch"]),
                    ("final_val_loss", log_df["val_loss"].iloc[-1]), ("final_acc", log_df["acc"].iloc[-1]),
                    ("final_val_acc", log_df["val_acc"].iloc[-1])):
        _add(rows, "reference", TRAINING, "metric", name, value=v)
    return _frame(rows)


def reference_reported_rows(input_dir: str | Path | None = None) -> pd.DataFrame:
    """What the reference's authors report on their own 2,861-trace ToC2ME test set (dataset
    ``reference_reported_2861``: different data, the waveforms are not available here):
    ``accuracy`` of the SCSN model (``eqpolarity_scsn``), the Texas transfer model
    (``eqpolarity_texas``) and Micro-EQpolarity (``reference``), and the latter's confusion
    matrix in the RECORDED convention. ``n_up``/``n_down`` are counted from
    ``model_test/polall.npy`` when present (1 = recorded down)."""
    rows = _rows()
    for model, acc in REPORTED_ACCURACY.items():
        _add(rows, model, REPORTED, "metric", "accuracy", value=acc)
    (uu, ud), (du, dd) = REPORTED_CONFUSION
    for (a, p), n in {("up", "up"): uu, ("up", "down"): ud, ("down", "up"): du, ("down", "down"): dd}.items():
        _add(rows, "reference", REPORTED, "confusion", f"recorded:{a}->{p}", x=CLASSES.index(a), y=PREDICTED.index(p),
             value=n)
    n_up, n_down = uu + ud, du + dd
    if input_dir is not None and (Path(input_dir) / TEST_LABELS).is_file():
        lab = np.load(Path(input_dir) / TEST_LABELS).reshape(-1)
        n_up, n_down = int((lab == 0).sum()), int((lab == 1).sum())
    _add(rows, "reference", REPORTED, "metric", "n_labelled", value=n_up + n_down)
    _add(rows, "reference", REPORTED, "metric", "n_up", value=n_up)
    _add(rows, "reference", REPORTED, "metric", "n_down", value=n_down)
    return _frame(rows)


# --------------------------------------------------------------------------- per-event agreement

AGREEMENT_COLUMNS = ("event_id", "n_picker", "picker_decided",
                     "ref_both", "ref_agree", "ref_disagree", "ref_only_picker", "ref_only_other",
                     "manual_both", "manual_agree", "manual_disagree", "manual_only_other",
                     "truth_both", "truth_agree", "truth_disagree", "truth_only_other")


def per_event_agreement(pol: pd.DataFrame, picker: str = "cnn", truth: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per event: the picker's decided share and its agreement with the reference model and
    the manual picks (true-motion polarities compared station by station).

    Columns :data:`AGREEMENT_COLUMNS`: ``n_picker`` (traces the picker scored),
    ``picker_decided``; ``ref_both`` (both decide), ``ref_agree``, ``ref_disagree``,
    ``ref_only_picker`` (picker decides, the reference abstains or has no output),
    ``ref_only_other`` (the reference decides, the picker does not); ``manual_*`` likewise
    (``manual_only_other``: a manual pick the picker leaves undetermined or has no output
    for); ``truth_*`` likewise against the demo's ``truth_polarities`` (dead traces
    excluded; null without ``truth``). Events where the picker, the reference or a manual
    pick has a row; ordered by event id.
    :func:`queries.model.agreement` is the same in SQL."""
    keys = ["event_id", "network", "station"]
    sub = pol[pol["method"].isin([picker, "reference", "manual"])]
    if sub.empty:
        return pd.DataFrame(columns=list(AGREEMENT_COLUMNS))
    wide = sub.pivot_table(index=keys, columns="method", values="polarity", aggfunc="max")
    for m in (picker, "reference", "manual"):
        if m not in wide:
            wide[m] = np.nan
    p, r, m = wide[picker], wide["reference"], wide["manual"]
    pd_ = p.isin([1, -1])
    rd, md = r.isin([1, -1]), m.isin([1, -1])
    g = pd.DataFrame({
        "n_picker": p.notna(), "picker_decided": pd_,
        "ref_both": pd_ & rd, "ref_agree": pd_ & rd & (p == r), "ref_disagree": pd_ & rd & (p != r),
        "ref_only_picker": pd_ & ~rd, "ref_only_other": rd & ~pd_,
        "manual_both": pd_ & md, "manual_agree": pd_ & md & (p == m), "manual_disagree": pd_ & md & (p != m),
        "manual_only_other": md & ~pd_,
    }).groupby(level="event_id").sum().astype("int64")
    if truth is not None:
        t = truth[~truth["dead"].astype(bool) & truth["true_polarity"].isin([1, -1])]
        t = t.astype({"event_id": str, "network": str, "station": str})
        t = t[t["event_id"].isin(g.index)]
        pp = sub[sub["method"] == picker].groupby(keys)["polarity"].max()
        both = pd.concat([pp.rename("p"), t.groupby(keys)["true_polarity"].max().rename("t")], axis=1)
        pdec, tdec = both["p"].isin([1, -1]), both["t"].isin([1, -1])
        tg = pd.DataFrame({"truth_both": pdec & tdec, "truth_agree": pdec & tdec & (both["p"] == both["t"]),
                           "truth_disagree": pdec & tdec & (both["p"] != both["t"]),
                           "truth_only_other": tdec & ~pdec}).groupby(level="event_id").sum()
        g = g.join(tg.astype("Int64"))
    else:
        for c in ("truth_both", "truth_agree", "truth_disagree", "truth_only_other"):
            g[c] = pd.array([pd.NA] * len(g), dtype="Int64")
    return g.reset_index()[list(AGREEMENT_COLUMNS)].sort_values("event_id").reset_index(drop=True)


# --------------------------------------------------------------------------- the table

def _read_tables(data_dir: Path) -> dict:
    from pipeline import tables
    out = {}
    for name in ("polarities", "stations", "truth_polarities"):
        if tables.table_path(data_dir, name).exists():
            out[name] = tables.read_table(data_dir, name)
    return out


def _record_matches(record: dict, pol: pd.DataFrame) -> bool:
    """The record describes the CNN that made the build's ``cnn`` rows (or there are none)."""
    cnn = pol[pol["method"] == "cnn"] if len(pol) else pol
    if cnn.empty or "model_version" not in cnn or not record.get("weights_digest"):
        return True
    versions = set(cnn["model_version"].dropna().astype(str))
    return not versions or record["weights_digest"] in versions


def _full_nested(rows, record) -> None:
    """Rows ``cnn`` / ``loeo_heldout_full_nested``: the fully nested numbers
    (:mod:`pipeline.picking.full_nested`), recomputed from its stored inner predictions, when
    that record exists and was made from this training record's LOEO predictions."""
    from .full_nested import rescore
    full = default_full_record()
    if full is None:
        return
    if full.get("outer_predictions", {}).get("weights_sha256") != record.get("weights_sha256"):
        log.info("the fully nested record was made from another training record: its rows are skipped")
        return
    res = rescore(full, record)
    for name, v in res["pooled"].items():
        _add(rows, "cnn", LOEO_FULL, "metric", name, value=v)
    _add(rows, "cnn", LOEO_FULL, "metric", "n_events", value=res["n_events"])
    _add(rows, "cnn", LOEO_FULL, "metric", "n_folds", value=len(res["folds"]))
    _add(rows, "cnn", LOEO_FULL, "metric", "inner_folds", value=full["k"])
    _add(rows, "cnn", LOEO_FULL, "metric", "in_sample_events", value=0)


def default_full_record() -> dict | None:
    """The committed fully nested record (``cnn_polarity.full_nested.json``; None without it)."""
    path = Path(__file__).resolve().parents[1] / "models" / "cnn_polarity.full_nested.json"
    return json.loads(path.read_text()) if path.is_file() else None


#: the committed CNN's training record
DEFAULT_RECORD = Path(__file__).resolve().parents[1] / "models" / "cnn_polarity.json"


def default_record() -> dict | None:
    """The committed CNN's training record (read as JSON; no TensorFlow import)."""
    return json.loads(DEFAULT_RECORD.read_text()) if DEFAULT_RECORD.is_file() else None


def evaluate(data: str | Path | Mapping, input_dir: str | Path | None = None,
             record: dict | str | Path | None = None) -> pd.DataFrame:
    """The ``model_eval`` rows (schema :data:`pipeline.schema.MODEL_EVAL`) of a build.

    ``data``: a data folder or a mapping of tables (``polarities``; ``stations`` for the
    reversal flags, required; ``truth_polarities`` for the demo).
    ``input_dir``: a ToC2ME-like input folder, for the reference's training log and test
    labels (optional). ``record``: the CNN training record (dict or JSON path; default the
    committed one; ``{}`` for none; its rows are left out when the build's CNN rows carry
    another weights digest). Every set that cannot be formed is skipped; the result may be empty.
    """
    tabs = _read_tables(Path(data)) if isinstance(data, (str, Path)) else dict(data)
    pol = tabs.get("polarities")
    pol = pol.copy() if pol is not None else pd.DataFrame(columns=["event_id", "network", "station", "method",
                                                                    "polarity", "prob_down_recorded"])
    for c in ("event_id", "network", "station", "method"):
        pol[c] = pol[c].astype(str)
    stations = tabs.get("stations")
    if stations is None:
        raise ValueError("evaluate needs the build's stations table: its reversed flags turn true labels "
                         "into the recorded convention the pickers score")
    if isinstance(record, (str, Path)):
        record = json.loads(Path(record).read_text())
    elif record is None:
        record = default_record()
    record = record or None  # {}: no training record
    if record is not None and not _record_matches(record, pol):
        log.info("the CNN rows were not made by the committed weights: training-record rows skipped")
        record = None
    trained_on = set((record or {}).get("data", {}).get("events", []))

    rows = _rows()
    methods = _methods(pol)
    _all_traces(rows, pol, methods)
    _labelled_set(rows, pol, manual_labels(pol, stations), MANUAL, [m for m in methods], in_sample=trained_on)
    _labelled_set(rows, pol, reference_labels(pol, stations), REFERENCE_CONFIDENT,
                  [m for m in methods if m != "reference"], in_sample=trained_on)
    if record is not None:
        _loeo(rows, record, pol, stations, methods)
    truth = tabs.get("truth_polarities")
    if truth is not None and len(truth):
        _demo(rows, pol, truth, stations, methods)

    frames = [_frame(rows)]
    if record is not None:
        from .training import model_eval_rows
        frames.append(model_eval_rows(record))
    frames.append(reference_training_rows(input_dir))
    frames.append(reference_reported_rows(input_dir))
    df = pd.concat([f for f in frames if len(f)], ignore_index=True)
    return df[COLUMNS].reset_index(drop=True)


def summary(df: pd.DataFrame) -> str:
    """A few lines for the console: accuracy / coverage per picker and set, with their 95 %
    Wilson intervals."""
    names = ["n_correct", "n_decided", "n_labelled"] + [f"{k}{e}" for k in ("accuracy", "coverage")
                                                         for e in ("", "_ci_low", "_ci_high")]
    m = df[(df["kind"] == "metric") & df["name"].isin(names)]
    if m.empty:
        return "no labelled set to evaluate"
    w = m.pivot_table(index=["dataset", "model"], columns="name", values="value", aggfunc="first")

    def share(r, k):
        v, lo, hi = (r.get(k, np.nan), r.get(f"{k}_ci_low", np.nan), r.get(f"{k}_ci_high", np.nan))
        return f"{k} {v:.3f} [{lo:.3f}, {hi:.3f}]"

    lines = []
    for (ds, model), r in w.iterrows():
        if pd.isna(r.get("n_labelled")) or pd.isna(r.get("n_decided")):
            continue
        lines.append(f"{ds:28s} {model:20s} {int(r.get('n_correct', 0)):5d}/{int(r.get('n_decided', 0)):<5d} correct "
                     f"({share(r, 'accuracy')}), {share(r, 'coverage')} of {int(r['n_labelled'])}")
    return "\n".join(lines + ["[lo, hi]: 95 % Wilson intervals (traces taken as independent)"] if lines else lines)


# --------------------------------------------------------------------------- command line

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m pipeline evaluate``."""
    parser.add_argument("--data-dir", default="data", help="folder of the Parquet tables (default: data)")
    parser.add_argument("--input", default=None,
                        help="ToC2ME-like input folder with model_test/ (the reference's training log); "
                             "default: the build's input folder when it has one")
    parser.add_argument("--record", default=None, help="CNN training record JSON (default: the committed one)")
    parser.add_argument("--dry-run", action="store_true", help="print the summary, do not write model_eval")


def run(args: argparse.Namespace) -> int:
    """Compute ``model_eval`` for ``args.data_dir`` and write it there (atomically)."""
    from pipeline import tables
    data_dir = Path(args.data_dir)
    if not tables.table_path(data_dir, "polarities").exists():
        print(f"no polarities table in {data_dir}: nothing to evaluate (run `python -m pipeline build`)")
        return 1
    input_dir = getattr(args, "input", None)
    if input_dir is None:
        info = data_dir / "build_info.json"
        if info.is_file():
            src = json.loads(info.read_text()).get("input")
            if src and (Path(src) / TRAINING_LOG).is_file():
                input_dir = src
    df = evaluate(data_dir, input_dir, getattr(args, "record", None))
    print(summary(df))
    if not getattr(args, "dry_run", False):
        tables.write_tables(data_dir, {"model_eval": df})
        print(f"{len(df)} model_eval rows written to {data_dir}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.picking.evaluate", description=__doc__.split("\n")[0])
    add_arguments(p)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
