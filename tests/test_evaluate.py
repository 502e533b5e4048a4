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
from queries import model as mq

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
    # reported numbers are always there, labelled as another data set (never as ours)
    assert set(df.loc[df.model.isin(["eqpolarity_scsn", "eqpolarity_texas"]), "dataset"]) == {E.REPORTED}
    assert not (df.dataset == "training").any()                                           # no input folder


def test_reported_numbers_are_consistent():
    """The authors' reported accuracy is the diagonal of their reported confusion matrix (the
    matrix, not the rounded 99.2 %, is what the table carries). The SCSN/Texas accuracies are
    quotes of the paper that no data here can reproduce: they must only appear as
    ``reference_reported_2861``. The class totals are checked against the test labels in
    test_toc2me_reported_matrix_matches_the_test_labels."""
    df = E.reference_reported_rows()
    conf = df[df.kind == "confusion"].set_index("name")["value"]
    assert conf.sum() == _m(df, "reference", E.REPORTED, "n_labelled")
    diag = conf["recorded:up->up"] + conf["recorded:down->down"]
    assert _m(df, "reference", E.REPORTED, "accuracy") == pytest.approx(diag / conf.sum(), abs=5e-6)
    assert set(df["dataset"]) == {E.REPORTED}


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


def test_evaluate_needs_the_stations_table():
    """No silent reversal default: without the stations table evaluate says what is missing."""
    t = _toy_tables()
    with pytest.raises(ValueError, match="stations table"):
        E.evaluate({"polarities": t["polarities"]}, record={})


def test_evaluate_never_imports_tensorflow():
    code = ("import sys; from pipeline.picking import evaluate as E; E.evaluate({'polarities': __import__('pandas').DataFrame("
            "columns=['event_id','network','station','method','polarity','prob_down_recorded']),"
            "'stations': __import__('pandas').DataFrame(columns=['network','station','reversed'])});"
            "print('tensorflow' in sys.modules or 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- the real data: every figure recomputed from the shared files -------------------------------
@pytest.fixture(scope="module")
def shared(toc2me_waveforms_dir):
    """The labelled shared traces with each picker's prob_down_recorded recomputed here: the
    committed CNN and the onset baseline run on the SAC windows, the reference's p read from
    its files; labels from the manual picks and the reference's confident outputs."""
    from pipeline.picking import training as T
    from pipeline.picking.pickers import set_threads
    from pipeline.picking.pickers.cnn import CNNPicker
    from pipeline.picking.pickers.onset import OnsetPicker
    set_threads(2)
    real = T.load_real(toc2me_waveforms_dir)
    cnn = CNNPicker.load()
    return real.meta, {"cnn": (cnn.predict(real.windows), cnn.lower, cnn.upper),
                       "onset": (OnsetPicker().predict(real.windows), 0.25, 0.75),
                       "reference": (real.meta["ref_p"].to_numpy(float), 0.05, 0.95)}


def _counts(p, lower, upper, down):
    """(labelled, decided, correct) of probabilities ``p`` against ``down`` (True = recorded
    down), written out independently of the package."""
    p, down = np.asarray(p, float), np.asarray(down, bool)
    dec_down, dec_up = p >= upper, p <= lower
    decided = dec_down | dec_up
    return len(p), int(decided.sum()), int(((dec_down & down) | (dec_up & ~down)).sum())


def _check_shares(df, model, dataset, n, d, c):
    """model_eval's counts, shares and 95 % Wilson intervals equal the recomputed ones (SciPy)."""
    from scipy.stats import binomtest
    assert (_m(df, model, dataset, "n_labelled"), _m(df, model, dataset, "n_decided"),
            _m(df, model, dataset, "n_correct")) == (n, d, c), (model, dataset)
    assert _m(df, model, dataset, "accuracy") == pytest.approx(c / d)
    assert _m(df, model, dataset, "coverage") == pytest.approx(d / n)
    for name, k, m in (("accuracy", c, d), ("coverage", d, n)):
        ci = binomtest(k, m).proportion_ci(method="wilson")
        assert _m(df, model, dataset, f"{name}_ci_low") == pytest.approx(ci.low, abs=1e-9)
        assert _m(df, model, dataset, f"{name}_ci_high") == pytest.approx(ci.high, abs=1e-9)


def test_toc2me_manual50(toc2me_eval, shared):
    meta, picks = shared
    man = meta["manual"].notna().to_numpy()
    down = meta.loc[man, "manual"].to_numpy() == -1              # manual files: recorded sign
    assert man.sum() == 50
    for model, (p, lo, hi) in picks.items():
        _check_shares(toc2me_eval, model, "manual50", *_counts(p[man], lo, hi, down))
    assert _m(toc2me_eval, "cnn", "manual50", "n_correct") >= 49                   # docs/polarity.md targets
    assert _m(toc2me_eval, "onset", "manual50", "n_correct") <= _m(toc2me_eval, "cnn", "manual50", "n_correct")
    assert _m(toc2me_eval, "cnn", "manual50", "in_sample_events") == 1              # trained on it: optimistic


def test_toc2me_reference_confident(toc2me_eval, shared):
    meta, picks = shared
    conf = meta["ref_conf"].to_numpy(bool)
    down = meta.loc[conf, "ref_p"].to_numpy() > 0.5
    for model in ("cnn", "onset"):
        p, lo, hi = picks[model]
        _check_shares(toc2me_eval, model, "reference_confident", *_counts(p[conf], lo, hi, down))
    assert _m(toc2me_eval, "cnn", "reference_confident", "accuracy") >= 0.98       # targets (in-sample)
    assert _m(toc2me_eval, "cnn", "reference_confident", "coverage") >= 0.85


def test_toc2me_loeo_heldout_is_nested_and_recomputed(toc2me_eval, shared):
    """The honest CNN numbers: the record's held-out predictions, recipe and band chosen per
    outer event on the other event only (brute force in tests/test_nested.py), with Wilson
    intervals; the onset baseline recomputed on the same labelled traces. The record's
    self-selected block stays apart, as ``loeo_selected_on_itself``."""
    from test_nested import _brute_force
    from pipeline.picking import nested as N
    df = toc2me_eval
    rec = E.default_record()
    folds = _brute_force(N.record_predictions(rec), rec["config"]["target_accuracy"], N.record_guards(rec))
    assert len(folds) == 2                                                          # two labelled events only
    n = sum(f[4] for f in folds.values())
    d = sum(f[3] for f in folds.values())
    c = sum(f[2] for f in folds.values())
    _check_shares(df, "cnn", "loeo_heldout", n, d, c)
    assert _m(df, "cnn", "loeo_heldout", "n_events") == 2 == _m(df, "cnn", "loeo_heldout", "n_folds")
    assert _m(df, "cnn", "loeo_heldout", "nested_selection") == 1
    assert _m(df, "cnn", "loeo_heldout", "in_sample_events") == 0
    for ev, (recipe, upper, c_e, d_e, n_e) in folds.items():
        ds = E.LOEO_FOLD + ev
        _check_shares(df, "cnn", ds, n_e, d_e, c_e)
        assert _m(df, "cnn", ds, "band_upper") == upper and _m(df, "cnn", ds, f"recipe:{recipe}") == 1
    # on these data the nested coverage is below the one chosen on itself (96.6 %): the selection bias
    self_ds = "loeo_selected_on_itself"
    assert _m(df, "cnn", "loeo_heldout", "coverage") <= _m(df, "cnn", self_ds, "coverage_reference")
    # onset on the same 118 labelled traces, recomputed from the SAC windows
    meta, picks = shared
    lab = meta["label"].notna().to_numpy()
    p, lo, hi = picks["onset"]
    _check_shares(df, "onset", "loeo_heldout", *_counts(p[lab], lo, hi, meta.loc[lab, "label"].to_numpy() == 1))
    # manual picks against the nested decisions (the manual event's fold)
    held = N.record_predictions(rec).merge(meta[["event_id", "station", "manual"]], on=["event_id", "station"])
    held = held[held["manual"].notna()]
    recipe, upper = folds[held["event_id"].iloc[0]][:2]
    _, d_m, c_m = _counts(held[f"p_{recipe}"], 1 - upper, upper, held["manual"].to_numpy() == -1)
    assert (_m(df, "cnn", "loeo_heldout", "manual_n"), _m(df, "cnn", "loeo_heldout", "manual_match"),
            _m(df, "cnn", "loeo_heldout", "manual_wrong")) == (len(held), c_m, d_m - c_m)


def test_toc2me_curves(toc2me_eval):
    """ROC AUC against the Mann-Whitney U statistic (SciPy), on the nested held-out p."""
    from scipy.stats import mannwhitneyu
    from pipeline.picking import nested as N
    df = toc2me_eval
    roc = df[(df.model == "cnn") & (df.dataset == "loeo_heldout") & (df.kind == "roc")]
    assert len(roc) > 10 and roc["x"].between(0, 1).all() and roc["y"].between(0, 1).all()
    tr = N.nested_from_record(E.default_record())["trace"]
    pos, neg = tr.loc[tr.label == 1, "p"], tr.loc[tr.label == 0, "p"]
    auc = mannwhitneyu(pos, neg).statistic / (len(pos) * len(neg))
    assert _m(df, "cnn", "loeo_heldout", "roc_auc") == pytest.approx(auc, abs=1e-9)
    onset_roc = df[(df.model == "onset") & (df.dataset == "reference_confident") & (df.kind == "roc")]
    assert len(onset_roc) <= 4                                                    # outputs 0 / 0.5 / 1 only
    cal = df[(df.model == "cnn") & (df.dataset == "loeo_heldout") & (df.kind == "calibration")]
    assert cal.loc[cal.name == "reliability", "value"].sum() == len(tr)
    cov = df[(df.model == "cnn") & (df.dataset == "reference_confident") & (df.kind == "coverage")]
    assert cov["x"].is_monotonic_increasing and cov["x"].max() <= 1.0


def test_toc2me_reference_training_log(toc2me_eval, toc2me_dir):
    """The reference's log summarised from its CSV, recomputed here with pandas."""
    df = toc2me_eval
    log_df = pd.read_csv(toc2me_dir / E.TRAINING_LOG).sort_values("epoch")
    log_rows = df[(df.model == "reference") & (df.kind == "training")]
    assert set(log_rows["name"]) == {"acc", "loss", "val_acc", "val_loss"}
    val = log_rows[log_rows.name == "val_acc"].sort_values("x")
    assert val["x"].tolist() == log_df["epoch"].tolist() and np.allclose(val["y"], log_df["val_acc"])
    assert _m(df, "reference", "training", "n_epochs") == len(log_df)
    assert _m(df, "reference", "training", "best_val_acc") == pytest.approx(log_df["val_acc"].max())
    assert _m(df, "reference", "training", "best_val_acc_epoch") == log_df.loc[log_df["val_acc"].idxmax(), "epoch"]
    assert _m(df, "reference", "training", "min_val_loss") == pytest.approx(log_df["val_loss"].min())
    assert _m(df, "reference", "training", "min_val_loss_epoch") == log_df.loc[log_df["val_loss"].idxmin(), "epoch"]
    assert _m(df, "reference", "training", "final_val_loss") == pytest.approx(log_df["val_loss"].iloc[-1])
    assert _m(df, "reference", "training", "final_val_loss") > _m(df, "reference", "training", "min_val_loss")
    ours = df[(df.model == "cnn") & (df.kind == "training")]
    assert set(ours["name"]) == {"pretrain_loss", "finetune_loss"}


def test_toc2me_reported_matrix_matches_the_test_labels(toc2me_eval, toc2me_dir):
    """The authors' confusion matrix has the class totals of their test labels (polall.npy,
    1 = recorded down), counted here."""
    lab = np.load(toc2me_dir / E.TEST_LABELS).reshape(-1)
    df = toc2me_eval
    conf = df[(df.dataset == E.REPORTED) & (df.kind == "confusion")].set_index("name")["value"]
    assert conf["recorded:up->up"] + conf["recorded:up->down"] == (lab == 0).sum() == \
        _m(df, "reference", E.REPORTED, "n_up")
    assert conf["recorded:down->up"] + conf["recorded:down->down"] == (lab == 1).sum() == \
        _m(df, "reference", E.REPORTED, "n_down")


def test_toc2me_agreement_sql_matches_pandas(toc2me_build):
    from components.data import DataProvider
    from components.filters import Filters

    pol = tables.read_table(toc2me_build, "polarities")
    want = E.per_event_agreement(pol, "cnn")
    got = mq.agreement(DataProvider(toc2me_build), Filters(), "cnn")
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
