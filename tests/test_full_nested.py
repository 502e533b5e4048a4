"""Fully nested LOEO evaluation (pipeline.picking.full_nested): the inner-fold split, and the
wiring of a tiny run (inner models -> select -> outer event), recomputed independently."""
from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from pipeline.picking import full_nested as FN
from pipeline.picking import training as T

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def real(toc2me_waveforms_dir):
    return T.load_real(toc2me_waveforms_dir)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_inner_split_is_by_station_and_never_holds_the_outer_event(real, k):
    meta, lab = real.meta, real.labelled()
    events = sorted(meta.event_id.astype(str).unique())
    for i, outer in enumerate(events):
        split = FN.inner_split(meta, real.noise_stations, outer, k, seed=11 + i)
        fold = FN.row_folds(meta, split)
        ev = meta.event_id.astype(str).to_numpy()
        assert (fold[ev == outer] == -1).all() and (fold[ev != outer] >= 0).all()
        assert all(e != outer for e, _ in split)
        # every station of the inner events (windows and noise) is in exactly one fold
        stations = {(e, s) for e, s in zip(ev[ev != outer], meta.station[ev != outer].astype(str))}
        stations |= {(e, s) for e, sts in real.noise_stations.items() if e != outer for s in sts}
        assert set(split) == stations and set(split.values()) == set(range(k))
        per_station = pd.DataFrame({"key": list(zip(ev, meta.station)), "fold": fold}).groupby("key")["fold"].nunique()
        assert (per_station == 1).all()
        # labelled stations dealt evenly
        counts = np.bincount(fold[lab & (fold >= 0)], minlength=k)
        assert counts.max() - counts.min() <= 1 and counts.sum() == (lab & (ev != outer)).sum()
        for j in range(k):
            train = (fold >= 0) & (fold != j) & lab
            held = (fold == j) & lab
            # the outer event's labels never train an inner model; no station trains and is held out
            assert not (ev[train] == outer).any()
            assert not set(meta.station[train]) & set(meta.station[held])
            assert (train | held).sum() == (lab & (ev != outer)).sum()
            bank = FN._bank_without(real, [e for e in events if e != outer], split, j)
            want = sum(1 for e in events if e != outer for s in real.noise_stations[e] if split[(e, s)] != j)
            assert len(bank) == want
            assert not any(seg is x for seg in bank for x in real.noise[outer])
        assert FN.inner_split(meta, real.noise_stations, outer, k, seed=11 + i) == split   # seeded


def test_inner_split_rejects_impossible_k(real):
    with pytest.raises(ValueError, match="k >= 2"):
        FN.inner_split(real.meta, real.noise_stations, T.SHARED_EVENTS[0], 1, 0)
    with pytest.raises(ValueError, match="fewer than k = 500 folds"):
        FN.inner_split(real.meta, real.noise_stations, T.SHARED_EVENTS[0], 500, 0)


def test_tiny_full_nested_run_is_recomputable(real, toc2me_waveforms_dir):
    """A tiny run (few synthetic examples, one epoch, k = 2): each outer event's choice is
    made on inner predictions of the other event only, and the outer counts equal the
    nested procedure written out by hand (tests/test_nested.py) on those predictions."""
    cfg = T.TrainConfig.tiny(data_dir=str(toc2me_waveforms_dir), seed=7, n_synthetic=600, n_val_synthetic=200)
    loeo = T.load_record()
    full = json.loads(json.dumps(T._jsonable(FN.full_nested(cfg, 2, loeo, real))))   # as written
    meta, lab = real.meta, real.labelled()
    inner = pd.DataFrame(full["inner_predictions"])
    assert sorted(f["test_event"] for f in full["full_nested"]["folds"]) == sorted(meta.event_id.unique())
    for i, o in enumerate(full["outer"]):
        e = o["test_event"]
        mine = inner[inner.outer_event == e]
        # every labelled trace of the other event predicted once, by the fold that held it out
        others = meta[lab & (meta.event_id != e)]
        assert sorted(zip(mine.event_id, mine.station)) == sorted(zip(others.event_id, others.station))
        split = FN.inner_split(meta, real.noise_stations, e, 2, o["split_seed"])
        assert list(mine.inner_fold) == [split[(a, b)] for a, b in zip(mine.event_id, mine.station)]
        for f in o["inner_folds"]:
            held = set(mine.station[mine.inner_fold == f["fold"]])
            assert set(f["held_out_stations"]) == {b for (a, b), j in split.items() if j == f["fold"]} >= held
            assert f["n_train_labelled"] == len(mine) - len(held) and f["seed"] == FN.inner_seed(7, i, f["fold"])
    _check_by_hand(full, loeo)
    pooled = full["full_nested"]["pooled"]
    assert pooled["n_labelled"] == int(lab.sum())
    assert pooled["coverage_ci_low"] <= pooled["coverage"] <= pooled["coverage_ci_high"]
    again = FN.rescore(full, loeo)
    assert again["pooled"] == pytest.approx(pooled)
    assert full["partially_nested"]["pooled"]["n_labelled"] == pooled["n_labelled"]


def _check_by_hand(full: dict, loeo: dict) -> None:
    """Per outer event: the inner set holds only the other events' labelled traces, each
    once, and the stored choice and outer counts equal the nested procedure written out by
    hand (tests/test_nested.py) on the inner predictions + that event's LOEO predictions."""
    from test_nested import _brute_force
    inner = pd.DataFrame(full["inner_predictions"])
    outer = pd.DataFrame(loeo["loeo"]["held_out_predictions"])
    outer_lab = outer[outer.label.notna()]
    got = {f["test_event"]: f for f in full["full_nested"]["folds"]}
    for o in full["outer"]:
        e = o["test_event"]
        mine = inner[inner.outer_event == e]
        assert not (mine.event_id == e).any()
        others = outer_lab[outer_lab.event_id != e]
        assert sorted(zip(mine.event_id, mine.station)) == sorted(zip(others.event_id, others.station))
        guard = {r: g["upper"] for r, g in o["guard"].items()}
        preds = pd.concat([mine.drop(columns=["outer_event", "inner_fold"]), outer[outer.event_id == e]])
        recipe, upper, cor, dec, n = _brute_force(preds, full["target_accuracy"], guard)[e]
        f = got[e]
        assert (f["recipe"], f["upper"]) == (recipe, upper)
        assert (f["outer"]["n_correct"], f["outer"]["n_decided"], f["outer"]["n_labelled"]) == (cor, dec, n)


def test_committed_full_nested_record_and_its_model_eval_rows():
    """The committed record (``python -m pipeline nested``): its numbers by hand, the
    ``loeo_heldout_full_nested`` rows of model_eval and the model page's headline line."""
    from pipeline.picking import evaluate as E
    from components import model_figures as mf
    from test_model_figures import _toy
    full, loeo = E.default_full_record(), E.default_record()
    if full is None:
        pytest.skip("no committed fully nested record (python -m pipeline nested)")
    assert full["outer_predictions"]["weights_sha256"] == loeo["weights_sha256"]
    _check_by_hand(full, loeo)
    pooled = full["full_nested"]["pooled"]
    folds = full["full_nested"]["folds"]
    assert pooled["n_correct"] == sum(f["outer"]["n_correct"] for f in folds)
    assert pooled["n_labelled"] == sum(f["outer"]["n_labelled"] for f in folds) == 118
    rows = E.evaluate(_toy())
    g = lambda n: mf.metric(rows, "cnn", E.LOEO_FULL, n)  # noqa: E731
    assert (g("n_correct"), g("n_decided"), g("n_labelled")) == (pooled["n_correct"], pooled["n_decided"], 118)
    assert g("inner_folds") == full["k"] and g("n_events") == 2
    ref = {c["key"]: c for c in mf.headline_cards(rows)}["reference"]
    line = dict((label, text) for label, text, _ in ref["lines"])["CNN, held-out (fully nested)"]
    assert f"{pooled['n_correct']}/{pooled['n_decided']}" in line and mf.share_text(rows, "cnn", E.LOEO_FULL, "coverage") in line
