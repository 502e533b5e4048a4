"""Nested leave-one-event-out evaluation of the polarity CNN's recipe and undetermined band.

The problem it solves: training chooses the recipe (``synthetic`` pre-training only, or
``finetuned`` on the real labels) and the undetermined band on the pooled leave-one-event-out
(LOEO) predictions, and those same pooled predictions were then reported as the held-out
numbers: the choice was scored on the data it was made on (optimistic).

What is nested here (outer folds report, inner data choose)
    * **outer folds** = leave one labelled event out. The predictions of the outer event E
      come from the LOEO fold model trained without E's labels (as before).
    * **inner data** of outer fold E = the LOEO predictions of every *other* event (there is
      one: F). On them, and only them, :func:`select` chooses the recipe and the band (the
      widest-coverage grid band reaching the target accuracy,
      :func:`pipeline.picking.pickers.calibration.choose_band`; never looser than the
      recipe's synthetic-onset guard band, which uses no real label). Then that recipe and
      band are applied to E, and E's counts are what is reported. E's labels never enter
      the choice made for E.

What is not nested here, and where it is
    * F's LOEO predictions come from the fold model trained on E's labels, so E's labels
      reach the choice for E indirectly, through that model's weights (never through the
      score the choice maximises); the guard band of the record was also made with that
      model. F's own fold model cannot stand in: its predictions on F are in-sample.
      :mod:`pipeline.picking.full_nested` (``python -m pipeline nested``) removes this: inner
      fold models trained on station groups of F only (k folds, no trace or station in two,
      nothing of E: labels, waveforms, noise) make F's inner predictions and the guard;
      :func:`select` and :func:`apply_choice` below then do the same as here. That costs
      2 x k extra trainings (about a minute each on 2 quiet CPU threads), so it is a
      separate command whose record (``pipeline/models/cnn_polarity.full_nested.json``) is
      committed; the numbers here stay the cheap, partially nested ones.
    * The production model's band (``calibration`` in the record) is still chosen on all
      pooled LOEO predictions: that is the right band to *deploy*; its performance is what
      the nested numbers estimate.
    * The fold models themselves (their training data, epochs, learning rates) were fixed
      beforehand and are not re-fitted.

How small the sample is
    Two labelled events (ToC2ME 20161104064824.680: 56 labelled traces, 20161125051408.940:
    62), 118 labelled traces in all, two outer folds. Every share comes with a 95 % Wilson
    interval (:func:`pipeline.picking.intervals.wilson_interval`) that treats traces as
    independent; traces of one event share a source and noise, so the real uncertainty is
    larger, and two events say next to nothing about the spread between events. In the fully
    nested run each choice rests on one event's 56 or 62 inner predictions, made by inner
    models that saw (k - 1) / k of that event's labels (k = 3: 37-42 traces), fewer than
    the LOEO fold models (all of it), so its inner scores are if anything pessimistic.

Conventions: labels are 1 = recorded down, 0 = recorded up (NaN = unlabelled, ignored);
probabilities ``p_<recipe>`` are prob_down_recorded; a band decides down for p >= upper, up
for p <= lower. NumPy/pandas only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .intervals import wilson_interval
from .pickers.calibration import UPPER_GRID, band_stats, choose_band

#: recipes in tie-break order: on equal inner scores the simpler one (no fine-tuning) wins
RECIPES = ("synthetic", "finetuned")


def shares(n_correct: int, n_decided: int, n_labelled: int) -> dict:
    """Counts, accuracy (correct / decided), coverage (decided / labelled) and their 95 %
    Wilson intervals (``*_ci_low`` / ``*_ci_high``; NaN where the denominator is 0)."""
    acc = n_correct / n_decided if n_decided else float("nan")
    cov = n_decided / n_labelled if n_labelled else float("nan")
    a_lo, a_hi = wilson_interval(n_correct, n_decided)
    c_lo, c_hi = wilson_interval(n_decided, n_labelled)
    return {"n_labelled": int(n_labelled), "n_decided": int(n_decided), "n_correct": int(n_correct),
            "n_wrong": int(n_decided - n_correct), "accuracy": acc, "accuracy_ci_low": a_lo,
            "accuracy_ci_high": a_hi, "coverage": cov, "coverage_ci_low": c_lo, "coverage_ci_high": c_hi}


def select(probs: dict, label, target_accuracy: float = 0.98, guard_upper: dict | None = None,
           grid=UPPER_GRID) -> dict:
    """Choose the recipe and the band on one inner set.

    ``probs``: recipe -> prob_down_recorded on the inner traces; ``label``: their labels;
    ``guard_upper``: recipe -> the upper edge of its guard band (never decide looser than
    it), or None. Per recipe the band is :func:`choose_band`'s, raised to the guard; the
    recipe with the best (target reached, inner coverage, inner correct count) wins, ties to
    the earlier one in :data:`RECIPES`. Returns ``{"recipe", "lower", "upper", "inner":
    {recipe: band stats + reached}}``."""
    inner = {}
    for recipe in [r for r in RECIPES if r in probs] + [r for r in probs if r not in RECIPES]:
        band = choose_band(probs[recipe], label, target_accuracy, grid)
        reached = bool(band["reached"])
        g = (guard_upper or {}).get(recipe)
        if g is not None and np.isfinite(g) and g > band["upper"]:
            band = band_stats(probs[recipe], label, round(1.0 - g, 10), g)
        inner[recipe] = {k: band[k] for k in ("lower", "upper", "n", "n_decided", "n_correct", "coverage",
                                               "accuracy")} | {"reached": reached}
    best = max(inner, key=lambda r: (inner[r]["reached"], inner[r]["coverage"], inner[r]["n_correct"],
                                     -list(inner).index(r)))
    return {"recipe": best, "lower": inner[best]["lower"], "upper": inner[best]["upper"], "inner": inner}


def nested_loeo(preds: pd.DataFrame, target_accuracy: float = 0.98, guard_upper: dict | None = None,
                recipes=None) -> dict:
    """The nested evaluation of the module docstring.

    ``preds``: one row per trace with ``event_id``, ``label`` (1/0, NaN = unlabelled) and
    ``p_<recipe>`` columns (the LOEO held-out probabilities; a record's
    ``loeo.held_out_predictions``). Returns::

        {"folds": [{"test_event", "inner_events", "recipe", "lower", "upper", "inner",
                    "outer": shares(...), "outer_by_recipe": {recipe: shares(...) with that
                    recipe's own inner band, "lower", "upper"}}],
         "pooled": shares(...) summed over the outer folds (the procedure: recipe + band
                   chosen per fold),
         "pooled_by_recipe": {recipe: shares(...)} (recipe fixed, band chosen per fold),
         "n_events", "n_labelled", "target_accuracy",
         "trace": DataFrame of the outer predictions (event_id, station if given, label,
                  p (the fold's chosen recipe), lower, upper, recipe, p_<recipe>,
                  lower_<recipe>, upper_<recipe>)}

    Needs at least two events with labels (else ``ValueError``)."""
    recipes = list(recipes or [c[2:] for c in preds.columns if c.startswith("p_")])
    if not recipes:
        raise ValueError("no p_<recipe> columns")
    lab = preds[preds["label"].isin([0.0, 1.0])].reset_index(drop=True)
    events = sorted(lab["event_id"].astype(str).unique())
    if len(events) < 2:
        raise ValueError(f"nested LOEO needs labelled traces of at least two events, got {events}")
    ev = lab["event_id"].astype(str).to_numpy()
    y = lab["label"].to_numpy(float)
    folds, parts = [], []
    for test in events:
        inner, outer = ev != test, ev == test
        choice = select({r: lab[f"p_{r}"].to_numpy(float)[inner] for r in recipes}, y[inner], target_accuracy,
                        guard_upper)
        fold, part = apply_choice(choice, lab.loc[outer], recipes)
        folds.append({"test_event": test, "inner_events": [e for e in events if e != test]} | fold)
        parts.append(part)
    return pool_folds(folds, recipes) | {"n_events": len(events), "n_labelled": int(len(lab)),
                                        "target_accuracy": float(target_accuracy),
                                        "trace": pd.concat(parts, ignore_index=True)}


def apply_choice(choice: dict, outer: pd.DataFrame, recipes) -> tuple[dict, pd.DataFrame]:
    """Score one outer event with an inner :func:`select` ``choice``.

    ``outer``: the outer event's labelled rows (``label``, ``p_<recipe>``). Returns the fold
    entry (``recipe``, ``lower``, ``upper``, ``inner``, ``outer``: shares of the chosen
    recipe, ``outer_by_recipe``: each recipe with its own inner band) and the rows with
    ``p``/``lower``/``upper``/``recipe`` and ``lower_<recipe>``/``upper_<recipe>`` added."""
    y = outer["label"].to_numpy(float)
    part = outer.copy()
    by_recipe = {}
    for r in recipes:
        lo, hi = choice["inner"][r]["lower"], choice["inner"][r]["upper"]
        s = band_stats(outer[f"p_{r}"].to_numpy(float), y, lo, hi)
        by_recipe[r] = shares(s["n_correct"], s["n_decided"], s["n"]) | {"lower": lo, "upper": hi}
        part[f"lower_{r}"], part[f"upper_{r}"] = lo, hi
    r = choice["recipe"]
    part["p"] = part[f"p_{r}"].astype(float)
    part["lower"], part["upper"], part["recipe"] = choice["lower"], choice["upper"], r
    fold = {"recipe": r, "lower": choice["lower"], "upper": choice["upper"], "inner": choice["inner"],
            "outer": {k: v for k, v in by_recipe[r].items() if k not in ("lower", "upper")},
            "outer_by_recipe": by_recipe}
    return fold, part


def pool_folds(folds: list[dict], recipes) -> dict:
    """``{"folds", "pooled", "pooled_by_recipe"}``: the outer folds' counts summed (the
    procedure, and each recipe with its band chosen per fold)."""
    def pool(blocks):
        return shares(sum(b["n_correct"] for b in blocks), sum(b["n_decided"] for b in blocks),
                      sum(b["n_labelled"] for b in blocks))

    return {"folds": folds, "pooled": pool([f["outer"] for f in folds]),
            "pooled_by_recipe": {r: pool([f["outer_by_recipe"][r] for f in folds]) for r in recipes}}


def record_predictions(record: dict) -> pd.DataFrame:
    """A training record's LOEO held-out predictions as a DataFrame (empty without them)."""
    return pd.DataFrame((record.get("loeo") or {}).get("held_out_predictions") or [])


def record_guards(record: dict) -> dict:
    """recipe -> upper edge of the guard band stored with the record's LOEO calibration
    (chosen on held-out synthetic onsets: no real label involved)."""
    out = {}
    for recipe, r in ((record.get("loeo") or {}).get("recipes") or {}).items():
        g = ((r or {}).get("calibration") or {}).get("guard") or {}
        if g.get("upper") is not None:
            out[recipe] = float(g["upper"])
    return out


def nested_from_record(record: dict) -> dict | None:
    """:func:`nested_loeo` of a training record (its held-out predictions, target accuracy
    and guard bands); None when the record has no LOEO predictions of two labelled events."""
    preds = record_predictions(record)
    if preds.empty or "label" not in preds or preds.loc[preds["label"].notna(), "event_id"].nunique() < 2:
        return None
    target = float((record.get("config") or {}).get("target_accuracy", 0.98))
    return nested_loeo(preds, target, record_guards(record))


def summary_line(s: dict) -> str:
    """``114/114 correct = 100.0 % [96.7, 100.0], decides 114/118 = 96.6 % [91.6, 98.7]``."""
    def pct(v):
        return "–" if v is None or not np.isfinite(v) else f"{100 * v:.1f}"
    return (f"{s['n_correct']}/{s['n_decided']} correct = {pct(s['accuracy'])} % "
            f"[{pct(s['accuracy_ci_low'])}, {pct(s['accuracy_ci_high'])}], decides {s['n_decided']}/{s['n_labelled']}"
            f" = {pct(s['coverage'])} % [{pct(s['coverage_ci_low'])}, {pct(s['coverage_ci_high'])}]")
