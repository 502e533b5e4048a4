"""``pipeline.picking.evaluate``: the ``model_eval`` table (picker metrics, curves, training logs).

Unit tests on small hand-made tables, then the numbers the polarity-model page must show
on a real ToC2ME build (built once per session through the CLI into a temp folder; skipped
without the shared data) and on the demo build (``demo_data_dir``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import schema, tables
from pipeline.picking import evaluate as E

ROOT = Path(__file__).resolve().parents[1]


# -- shared fixtures (also imported by tests/test_model_page.py) ------------------------------
def toc2me_eval_build(tmp_path_factory, toc2me_dir) -> Path:
    """A ToC2ME build (CLI, no SKHASH) with ``model_eval`` computed by :func:`E.run`; made
    once per session (later callers reuse the folder)."""
    data_dir = tmp_path_factory.getbasetemp() / "model_eval_toc2me"
    if not (data_dir / "model_eval.parquet").exists():
        subprocess.run([sys.executable, "-m", "pipeline", "build", "--source", "toc2me", "--input", str(toc2me_dir),
                        "--data-dir", str(data_dir), "--no-invert"], cwd=ROOT, check=True, capture_output=True)
        assert E.run(argparse.Namespace(data_dir=str(data_dir), input=None, record=None, dry_run=False)) == 0
    return data_dir


@pytest.fixture(scope="module")
def toc2me_build(tmp_path_factory, toc2me_dir):
    return toc2me_eval_build(tmp_path_factory, toc2me_dir)


@pytest.fixture(scope="module")
def toc2me_eval(toc2me_build):
    return tables.read_table(toc2me_build, "model_eval")


@pytest.fixture(scope="module")
def demo_eval(demo_data_dir):
    return E.evaluate(demo_data_dir)


def _m(df, model, dataset, name):
    r = df[(df.model == model) & (df.dataset == dataset) & (df.kind == "metric") & (df.name == name)]
    assert len(r) == 1, (model, dataset, name, len(r))
    return float(r["value"].iloc[0])


# -- curves and scores ---------------------------------------------------------------------------
def test_roc_and_pr_of_perfect_and_uninformative_scores():
    y = np.array([0, 0, 1, 1, 1])
    roc = E.roc_points([0.1, 0.2, 0.8, 0.9, 0.95], y)
    assert E.roc_auc(roc) == pytest.approx(1.0)
    assert (roc.iloc[0][["fpr", "tpr"]] == 0).all() and (roc.iloc[-1][["fpr", "tpr"]] == 1).all()
    assert E.average_precision(E.pr_points([0.1, 0.2, 0.8, 0.9, 0.95], y)) == pytest.approx(1.0)
    # all scores tied: one step from (0, 0) to (1, 1)
    tied = E.roc_points([0.5] * 5, y)
    assert len(tied) == 2 and E.roc_auc(tied) == pytest.approx(0.5)
    assert E.average_precision(E.pr_points([0.5] * 5, y)) == pytest.approx(0.6)
    # known AUCs: positives above every negative -> 1; 3 of 4 (pos, neg) pairs ordered -> 0.75
    assert E.roc_auc(E.roc_points([0.1, 0.4, 0.35, 0.8], [0, 1, 0, 1])) == pytest.approx(1.0)
    assert E.roc_auc(E.roc_points([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])) == pytest.approx(0.75)
    # one class only: no curve
    assert E.roc_points([0.2, 0.9], [1, 1]).empty and np.isnan(E.roc_auc(E.roc_points([0.2, 0.9], [1, 1])))
    # NaN scores are ignored
    assert E.roc_auc(E.roc_points([0.1, np.nan, 0.9], [0, 1, 1])) == pytest.approx(1.0)


def test_coverage_accuracy_curve():
    p = np.array([0.99, 0.01, 0.7, 0.4, 0.5])
    y = np.array([1, 0, 0, 0, 1])
    c = E.coverage_accuracy(p, y)
    assert c["threshold"].tolist() == pytest.approx([0.99, 0.7, 0.6])
    assert c["coverage"].tolist() == pytest.approx([0.4, 0.6, 0.8])          # p = 0.5 is never decided
    assert c["accuracy"].tolist() == pytest.approx([1.0, 2 / 3, 0.75])
    # onset-like outputs (0 / 0.5 / 1): one point
    assert len(E.coverage_accuracy([0, 1, 0.5, 1], [0, 1, 1, 0])) == 1


def test_class_scores_true_convention_with_abstentions():
    actual = [1, 1, 1, -1, -1, -1]
    pred = [1, 1, 0, -1, 1, np.nan]           # 0 = undetermined, NaN = no output
    s = E.class_scores(actual, pred)
    assert (s["n_labelled"], s["n_decided"], s["n_correct"], s["n_wrong"]) == (6, 4, 3, 1)
    assert s["coverage"] == pytest.approx(4 / 6) and s["accuracy"] == pytest.approx(0.75)
    assert s["precision_up"] == pytest.approx(2 / 3) and s["recall_up"] == pytest.approx(1.0)
    assert s["precision_down"] == pytest.approx(1.0) and s["recall_down"] == pytest.approx(0.5)
    assert s["f1_down"] == pytest.approx(2 / 3)
    c = s["confusion"]
    assert c[("up", "up")] == 2 and c[("up", "undetermined")] == 1 and c[("down", "up")] == 1
    assert c[("down", "undetermined")] == 1 and sum(c.values()) == 6


def _toy_tables():
    """One reversed 5B event and one normal XX event: manual picks, the reference and a CNN."""
    st = pd.DataFrame({"network": ["5B", "5B", "5B", "XX", "XX"], "station": ["A", "B", "C", "D", "E"],
                       "reversed": [True, True, True, False, False]})
    rows = []

    def add(ev, net, sta, method, pol, p=np.nan, lo=np.nan, hi=np.nan):
        rows.append(dict(event_id=ev, network=net, station=sta, method=method, polarity=pol, prob_down_recorded=p,
                         lower=lo, upper=hi))
    # true up on reversed 5B = recorded down -> p high
    add("e1", "5B", "A", "manual", 1)
    add("e1", "5B", "B", "manual", -1)
    add("e1", "5B", "A", "reference", 1, 0.99)
    add("e1", "5B", "B", "reference", 0, 0.5)
    add("e1", "5B", "C", "reference", -1, 0.01)
    add("e1", "5B", "A", "cnn", 1, 0.97, 0.2, 0.8)
    add("e1", "5B", "B", "cnn", -1, 0.03, 0.2, 0.8)
    add("e1", "5B", "C", "cnn", 0, 0.6, 0.2, 0.8)
    add("e2", "XX", "D", "manual", 1)
    add("e2", "XX", "D", "cnn", -1, 0.9, 0.2, 0.8)   # wrong: XX is not reversed, p high = down
    add("e2", "XX", "E", "cnn", 1, 0.1, 0.2, 0.8)
    pol = pd.DataFrame(rows)
    pol["polarity"] = pol["polarity"].astype("int8")
    return {"polarities": pol, "stations": st}


def test_labels_undo_the_station_reversal_for_the_recorded_convention():
    t = _toy_tables()
    lab = E.manual_labels(t["polarities"], t["stations"]).set_index("station")
    assert lab.loc["A", "label_true"] == 1 and lab.loc["A", "label_down_recorded"] == 1.0   # reversed: up = rec. down
    assert lab.loc["B", "label_down_recorded"] == 0.0
    assert lab.loc["D", "label_true"] == 1 and lab.loc["D", "label_down_recorded"] == 0.0   # not reversed
    ref = E.reference_labels(t["polarities"], t["stations"])
    assert sorted(ref["station"]) == ["A", "C"]                                           # confident only


def test_evaluate_toy_tables():
    t = _toy_tables()
    df = E.evaluate(t, record={})                      # empty record: no training-record rows
    tables.to_arrow("model_eval", df)                  # satisfies the schema
    assert set(df["kind"]) <= set(E.KINDS)
    assert _m(df, "cnn", "manual50", "n_labelled") == 3
    assert _m(df, "cnn", "manual50", "n_correct") == 2 and _m(df, "cnn", "manual50", "n_wrong") == 1
    assert _m(df, "cnn", "manual50", "band_lower") == 0.2
    assert _m(df, "reference", "manual50", "n_decided") == 1                              # B undetermined
    assert _m(df, "reference", "manual50", "band_upper") == 0.95                          # default band
    assert _m(df, "cnn", "reference_confident", "n_labelled") == 2
    assert _m(df, "cnn", "reference_confident", "coverage") == 0.5                        # C undetermined
    assert _m(df, "cnn", "all_traces", "abstention") == pytest.approx(1 / 5)
    assert not ((df.dataset == "reference_confident") & (df.model == "reference")).any()  # not against itself
    conf = df[(df.model == "cnn") & (df.dataset == "manual50") & (df.kind == "confusion")]
    assert conf["name"].str.startswith("true:").all() and conf["value"].sum() == 3
    assert conf.set_index("name").loc["true:up->down", "value"] == 1
    # reported numbers are always there, labelled as another data set
    assert _m(df, "reference", E.REPORTED, "accuracy") == pytest.approx(0.99196)
    assert not (df.dataset == "training").any()                                           # no input folder


def test_reported_numbers_are_consistent():
    df = E.reference_reported_rows()
    conf = df[df.kind == "confusion"].set_index("name")["value"]
    assert conf.sum() == 2861 == _m(df, "reference", E.REPORTED, "n_labelled")
    assert (conf["recorded:up->up"] + conf["recorded:down->down"]) / conf.sum() == pytest.approx(0.99196, abs=1e-5)
    assert _m(df, "eqpolarity_scsn", E.REPORTED, "accuracy") == pytest.approx(0.6994)
    assert _m(df, "eqpolarity_texas", E.REPORTED, "accuracy") == pytest.approx(0.915)


def test_per_event_agreement_toy():
    t = _toy_tables()
    a = E.per_event_agreement(t["polarities"], "cnn").set_index("event_id")
    e1 = a.loc["e1"]
    assert (e1.n_picker, e1.picker_decided, e1.ref_both, e1.ref_agree, e1.ref_only_picker, e1.ref_only_other) == \
        (3, 2, 1, 1, 1, 1)
    assert (e1.manual_both, e1.manual_agree, e1.manual_disagree, e1.manual_only_other) == (2, 2, 0, 0)
    assert (a.loc["e2", "manual_disagree"], a.loc["e2", "ref_only_picker"]) == (1, 2)
    assert a["truth_both"].isna().all()


def test_training_record_rows_skipped_for_other_weights():
    t = _toy_tables()
    t["polarities"]["model_version"] = "someone-else"
    rec = E.default_record()
    assert rec is not None
    df = E.evaluate(t, record=rec)
    assert not (df.dataset == "loeo_heldout").any()


def test_evaluate_never_imports_tensorflow():
    code = ("import sys; from pipeline.picking import evaluate as E; E.evaluate({'polarities': __import__('pandas').DataFrame("
            "columns=['event_id','network','station','method','polarity','prob_down_recorded'])});"
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the real data -------------------------------------------------------------------------------
def test_toc2me_manual50(toc2me_eval):
    df = toc2me_eval
    assert _m(df, "cnn", "manual50", "n_labelled") == 50
    assert _m(df, "cnn", "manual50", "n_correct") >= 49
    assert _m(df, "onset", "manual50", "n_labelled") == 50                       # same traces
    assert _m(df, "onset", "manual50", "n_correct") <= _m(df, "cnn", "manual50", "n_correct")
    assert _m(df, "onset", "manual50", "n_correct") == 49                        # docs/polarity.md
    assert _m(df, "reference", "manual50", "n_correct") == 50                    # README: 50/50
    assert _m(df, "cnn", "manual50", "in_sample_events") == 1                    # trained on it: optimistic


def test_toc2me_reference_confident(toc2me_eval):
    df = toc2me_eval
    n = _m(df, "cnn", "reference_confident", "n_labelled")
    assert n == 118 == _m(df, "onset", "reference_confident", "n_labelled")
    assert _m(df, "cnn", "reference_confident", "accuracy") >= 0.98
    assert _m(df, "cnn", "reference_confident", "coverage") >= 0.85
    for k in ("accuracy", "coverage", "n_correct"):
        assert _m(df, "onset", "reference_confident", k) <= _m(df, "cnn", "reference_confident", k)
    assert _m(df, "onset", "reference_confident", "accuracy") == pytest.approx(105 / 109)
    # the honest numbers: leave-one-event-out, from the training record
    assert _m(df, "cnn", "loeo_heldout", "accuracy") >= 0.98 and _m(df, "cnn", "loeo_heldout", "coverage") >= 0.85
    assert _m(df, "cnn", "loeo_heldout", "in_sample_events") == 0
    assert _m(df, "onset", "loeo_heldout", "n_labelled") == _m(df, "cnn", "loeo_heldout", "n_labelled") == 118
    assert _m(df, "onset", "loeo_heldout", "accuracy") <= _m(df, "cnn", "loeo_heldout", "accuracy")
    assert _m(df, "cnn", "loeo_heldout", "agreement_reference") == 1.0          # the record's own block


def test_toc2me_curves(toc2me_eval):
    df = toc2me_eval
    roc = df[(df.model == "cnn") & (df.dataset == "loeo_heldout") & (df.kind == "roc")]
    assert len(roc) > 10 and roc["x"].between(0, 1).all() and roc["y"].between(0, 1).all()
    assert _m(df, "cnn", "loeo_heldout", "roc_auc") > 0.99
    onset_roc = df[(df.model == "onset") & (df.dataset == "reference_confident") & (df.kind == "roc")]
    assert len(onset_roc) <= 4                                                    # outputs 0 / 0.5 / 1 only
    cal = df[(df.model == "cnn") & (df.dataset == "loeo_heldout") & (df.kind == "calibration")]
    assert cal.loc[cal.name == "reliability", "value"].sum() == 118
    cov = df[(df.model == "cnn") & (df.dataset == "reference_confident") & (df.kind == "coverage")]
    assert cov["x"].is_monotonic_increasing and cov["x"].max() <= 1.0


def test_toc2me_reference_training_log(toc2me_eval):
    df = toc2me_eval
    log_rows = df[(df.model == "reference") & (df.kind == "training")]
    assert set(log_rows["name"]) == {"acc", "loss", "val_acc", "val_loss"}
    val = log_rows[log_rows.name == "val_acc"].sort_values("x")
    assert len(val) == 50 and val["x"].tolist() == list(range(50))
    assert _m(df, "reference", "training", "n_epochs") == 50
    assert _m(df, "reference", "training", "best_val_acc") == pytest.approx(0.95337, abs=5e-6)
    assert _m(df, "reference", "training", "best_val_acc_epoch") == 9
    assert _m(df, "reference", "training", "min_val_loss") == pytest.approx(0.1223, abs=5e-5)
    assert _m(df, "reference", "training", "min_val_loss_epoch") == 4
    assert _m(df, "reference", "training", "final_val_loss") > 0.25               # overfits afterwards
    ours = df[(df.model == "cnn") & (df.kind == "training")]
    assert set(ours["name"]) == {"pretrain_loss", "finetune_loss"}
    # test labels counted from polall.npy
    assert _m(df, "reference", E.REPORTED, "n_down") == 1693 and _m(df, "reference", E.REPORTED, "n_up") == 1168


def test_toc2me_agreement_sql_matches_pandas(toc2me_build):
    from components.data import DataProvider
    from components.filters import Filters

    pol = tables.read_table(toc2me_build, "polarities")
    want = E.per_event_agreement(pol, "cnn")
    got = DataProvider(toc2me_build).polarity_agreement(Filters(), "cnn")
    got = got.drop(columns=["time", "magnitude"]).sort_values("event_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    e = want.set_index("event_id").loc["20161104064824.680"]
    assert e.manual_both == 50 and e.manual_agree >= 49


def test_cli_run_uses_the_build_input_and_writes_the_table(toc2me_build, tmp_path):
    info = json.loads((toc2me_build / "build_info.json").read_text())
    assert info["input"]                                                           # the input folder is known
    p = argparse.ArgumentParser()
    E.add_arguments(p)
    args = p.parse_args(["--data-dir", str(toc2me_build), "--dry-run"])
    assert E.run(args) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert E.run(p.parse_args(["--data-dir", str(empty)])) == 1                    # no polarities: says so


# -- the demo ------------------------------------------------------------------------------------
def test_demo_truth_is_reported(demo_eval, demo_data_dir):
    df = demo_eval
    truth = tables.read_table(demo_data_dir, "truth_polarities")
    live = int((~truth["dead"]).sum())
    assert _m(df, "cnn", "demo_truth", "n_labelled") == live                       # dead traces excluded
    acc, cov = _m(df, "cnn", "demo_truth", "accuracy"), _m(df, "cnn", "demo_truth", "coverage")
    assert 0.85 < acc <= 1.0 and 0.5 < cov <= 1.0
    assert _m(df, "onset", "demo_truth", "n_labelled") == live
    for d in ("demo_truth_near_nodal", "demo_truth_clear", "demo_truth_snr_lt3", "demo_truth_snr_3_10",
              "demo_truth_snr_ge10"):
        assert _m(df, "cnn", d, "n_labelled") > 0
    assert _m(df, "cnn", "demo_truth_near_nodal", "n_labelled") + _m(df, "cnn", "demo_truth_clear", "n_labelled") \
        == live
    # harder traces are harder
    assert _m(df, "cnn", "demo_truth_snr_lt3", "accuracy") < _m(df, "cnn", "demo_truth_snr_ge10", "accuracy")
    assert _m(df, "cnn", "demo_truth_near_nodal", "accuracy") < _m(df, "cnn", "demo_truth_clear", "accuracy")
    # no reference/manual picks in the demo: those sets are absent
    assert not df.dataset.isin(["manual50", "reference_confident"]).any()
    tables.to_arrow("model_eval", df)


def test_demo_agreement_truth_columns_match_metrics(demo_eval, demo_data_dir):
    pol = tables.read_table(demo_data_dir, "polarities")
    truth = tables.read_table(demo_data_dir, "truth_polarities")
    a = E.per_event_agreement(pol, "cnn", truth)
    assert int(a["truth_both"].sum()) == _m(demo_eval, "cnn", "demo_truth", "n_decided")
    assert int(a["truth_agree"].sum()) == _m(demo_eval, "cnn", "demo_truth", "n_correct")
    assert "model_eval" in schema.TABLES
