"""Nested leave-one-event-out selection of the CNN's recipe and band (pipeline.picking.nested)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.picking import nested as N
from pipeline.picking.intervals import wilson_interval
from pipeline.picking.pickers.calibration import UPPER_GRID


def _preds(seed=0, events=("A", "B", "C"), n=40):
    """Held-out-like predictions of two recipes, errors near p = 0.5, a few unlabelled traces."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, ev in enumerate(events):
        y = rng.integers(0, 2, n).astype(float)
        margin_s = rng.uniform(0, 0.5, n)
        margin_f = np.clip(margin_s + rng.normal(0.05 * (k + 1), 0.1, n), 0, 0.5)
        wrong_s = rng.random(n) < (0.5 - margin_s) * 0.5
        wrong_f = rng.random(n) < (0.5 - margin_f) * 0.3
        p_s = np.where((y == 1) ^ wrong_s, 0.5 + margin_s, 0.5 - margin_s)
        p_f = np.where((y == 1) ^ wrong_f, 0.5 + margin_f, 0.5 - margin_f)
        y[:3] = np.nan
        rows.append(pd.DataFrame({"event_id": ev, "station": [f"{ev}{i:03d}" for i in range(n)], "label": y,
                                  "p_synthetic": p_s, "p_finetuned": p_f}))
    return pd.concat(rows, ignore_index=True)


def _brute_force(preds, target, guard):
    """The nested procedure written out with plain loops (independent of calibration.py)."""
    lab = preds[preds.label.notna()]
    out = {}
    for test in sorted(lab.event_id.unique()):
        inner, outer = lab[lab.event_id != test], lab[lab.event_id == test]
        best = None
        for order, recipe in enumerate(("synthetic", "finetuned")):
            cand = None
            for u in sorted(UPPER_GRID):
                lo = round(1 - u, 10)
                dec = cor = 0
                for p, y in zip(inner[f"p_{recipe}"], inner.label):
                    if p >= u or p <= lo:
                        dec += 1
                        cor += int((p >= u) == (y == 1))
                if dec and cor / dec >= target and (cand is None or dec > cand[1]):
                    cand = (u, dec, cor)
            reached = cand is not None
            if cand is None:
                cand = (max(UPPER_GRID), None, None)
            u = max(cand[0], guard.get(recipe, 0.0))
            lo = round(1 - u, 10)
            dec = sum(1 for p in inner[f"p_{recipe}"] if p >= u or p <= lo)
            cor = sum(1 for p, y in zip(inner[f"p_{recipe}"], inner.label) if (p >= u or p <= lo) and (p >= u) == (y == 1))
            key = (reached, dec / len(inner), cor, -order)
            if best is None or key > best[0]:
                best = (key, recipe, u)
        _, recipe, u = best
        lo = round(1 - u, 10)
        dec = sum(1 for p in outer[f"p_{recipe}"] if p >= u or p <= lo)
        cor = sum(1 for p, y in zip(outer[f"p_{recipe}"], outer.label) if (p >= u or p <= lo) and (p >= u) == (y == 1))
        out[test] = (recipe, u, cor, dec, len(outer))
    return out


@pytest.mark.parametrize("seed, guard", [(0, {}), (1, {"synthetic": 0.9, "finetuned": 0.8}), (2, {"finetuned": 0.97})])
def test_nested_equals_brute_force(seed, guard):
    preds = _preds(seed)
    res = N.nested_loeo(preds, 0.95, guard)
    want = _brute_force(preds, 0.95, guard)
    got = {f["test_event"]: (f["recipe"], f["upper"], f["outer"]["n_correct"], f["outer"]["n_decided"],
                             f["outer"]["n_labelled"]) for f in res["folds"]}
    assert got == want
    c = sum(v[2] for v in want.values())
    d = sum(v[3] for v in want.values())
    n = sum(v[4] for v in want.values())
    pooled = res["pooled"]
    assert (pooled["n_correct"], pooled["n_decided"], pooled["n_labelled"]) == (c, d, n)
    assert n == int(preds.label.notna().sum())
    assert pooled["accuracy"] == pytest.approx(c / d) and pooled["coverage"] == pytest.approx(d / n)
    assert (pooled["accuracy_ci_low"], pooled["accuracy_ci_high"]) == wilson_interval(c, d)
    assert (pooled["coverage_ci_low"], pooled["coverage_ci_high"]) == wilson_interval(d, n)
    for f in res["folds"]:
        assert f["upper"] >= guard.get(f["recipe"], 0.0) and f["lower"] == pytest.approx(1 - f["upper"])
        assert f["test_event"] not in f["inner_events"]


def test_band_for_an_event_is_not_chosen_on_its_own_labels():
    """Regression (issue 11): the band and recipe were chosen on the same pooled held-out
    predictions that were then reported. In the nested scheme, rewriting every label of the
    held-out event changes its reported counts but never the choice made for it."""
    preds = _preds(5)
    base = {f["test_event"]: f for f in N.nested_loeo(preds, 0.95)["folds"]}
    for ev in ("A", "B", "C"):
        flipped = preds.copy()
        m = flipped.event_id == ev
        flipped.loc[m, "label"] = 1.0 - flipped.loc[m, "label"]
        fold = {f["test_event"]: f for f in N.nested_loeo(flipped, 0.95)["folds"]}[ev]
        assert (fold["recipe"], fold["lower"], fold["upper"]) == \
            (base[ev]["recipe"], base[ev]["lower"], base[ev]["upper"])
        assert fold["outer"]["n_correct"] == fold["outer"]["n_decided"] - base[ev]["outer"]["n_correct"]
        assert fold["inner"] == base[ev]["inner"]


def test_trace_table_and_errors():
    preds = _preds(3)
    res = N.nested_loeo(preds, 0.95)
    tr = res["trace"]
    assert len(tr) == preds.label.notna().sum() and set(tr.recipe) <= {"synthetic", "finetuned"}
    for f in res["folds"]:
        t = tr[tr.event_id == f["test_event"]]
        assert (t.recipe == f["recipe"]).all() and (t.upper == f["upper"]).all()
        assert np.array_equal(t.p.to_numpy(), t[f"p_{f['recipe']}"].to_numpy())
    with pytest.raises(ValueError, match="at least two events"):
        N.nested_loeo(preds[preds.event_id == "A"], 0.95)


def test_committed_record_nested_numbers_recomputed():
    """The committed record's held-out predictions, scored nested here by the brute-force loops:
    the same counts as the module (and two events, 118 labelled traces)."""
    from pipeline.picking.evaluate import default_record
    rec = default_record()
    res = N.nested_from_record(rec)
    preds = N.record_predictions(rec)
    want = _brute_force(preds, rec["config"]["target_accuracy"], N.record_guards(rec))
    assert res["n_events"] == 2 and res["n_labelled"] == 118 == sum(v[4] for v in want.values())
    got = {f["test_event"]: (f["recipe"], f["upper"], f["outer"]["n_correct"], f["outer"]["n_decided"],
                             f["outer"]["n_labelled"]) for f in res["folds"]}
    assert got == want
