"""Training: synthetic onsets from real noise, label conventions, a tiny deterministic run."""
import argparse
import json
import os

import numpy as np
import pytest

from pipeline.picking import training as T
from pipeline.picking import waveforms as W

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def real(toc2me_waveforms_dir):
    return T.load_real(toc2me_waveforms_dir)


def test_labels_follow_the_recorded_convention(real):
    m = real.meta
    assert len(m) == 136 and int(m.label.notna().sum()) == 118      # 56 + 62 confident stations
    man = m[m.manual.notna()]
    assert len(man) == 50 and (man.label_source == "manual").all()
    # manual files are the recorded sign: recorded down (-1) -> label 1 -> reference p > 0.5
    assert ((man.manual == -1) == (man.label == 1)).all()
    assert ((man.ref_p > 0.5) == (man.label == 1)).all()               # README: 50/50
    ref = m[m.label_source == "eqpolarity_filtered"]
    assert ((ref.ref_p >= 0.95) == (ref.label == 1)).all()
    assert set(m.loc[m.label.isna(), "ref_p"].between(0.05, 0.95, inclusive="neither"))  == {True}


def test_noise_bank_is_pre_p_only(real):
    for ev, segs in real.noise.items():
        assert len(segs) == 204                                         # 68 live stations x 3
        for s in segs:
            assert s.size <= 2500 - int(T.NOISE_GUARD_S * W.TARGET_RATE) + 1


def test_synthetic_onsets(real):
    bank = T._bank(real, T.SHARED_EVENTS)
    X, y, snr = T.synthetic_windows(bank, 400, seed=5)
    assert X.shape == (400, 600) and X.dtype == np.float32
    assert set(np.unique(y)) <= {0.0, 0.5, 1.0}
    assert 0.35 < (y == 1).mean() < 0.65
    X2, y2, _ = T.synthetic_windows(bank, 400, seed=5)
    assert np.array_equal(X, X2) and np.array_equal(y, y2)               # seeded
    # at high SNR the classical baseline reads the label off the onset (sign -> label)
    from pipeline.picking.pickers.onset import OnsetPicker
    hi = snr > 30
    p = OnsetPicker().predict(X[hi])
    assert np.mean(p == y[hi]) > 0.85


def test_config_is_argparse_able():
    ap = argparse.ArgumentParser()
    T.TrainConfig.add_arguments(ap)
    ns = ap.parse_args(["--n-synthetic", "123", "--no-loeo", "--lr", "0.01"])
    cfg = T.TrainConfig.from_args(ns)
    assert cfg.n_synthetic == 123 and cfg.loeo is False and cfg.lr == 0.01 and cfg.final is True


def test_tiny_training_run_is_deterministic(toc2me_waveforms_dir, tmp_path):
    cfg = T.TrainConfig.tiny(data_dir=str(toc2me_waveforms_dir), out_dir=str(tmp_path / "a"), seed=7)
    rec1 = T.train(cfg)
    w1 = [w.copy() for w in rec1["_model"].get_weights()]
    rec2 = T.train(T.TrainConfig.tiny(data_dir=str(toc2me_waveforms_dir), out_dir=str(tmp_path / "b"), seed=7))
    w2 = rec2["_model"].get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))
    saved = json.loads((tmp_path / "a" / "cnn_polarity.json").read_text())
    assert saved["weights_digest"] == json.loads((tmp_path / "b" / "cnn_polarity.json").read_text())["weights_digest"]
    assert saved["seed"] == 7 and saved["config"]["n_synthetic"] == 2000
    assert saved["data"]["n_labelled"] == 118 and "in_sample" in saved
    assert (tmp_path / "a" / "cnn_polarity.weights.h5").stat().st_size < 5_000_000
    # the written weights load into the picker
    from pipeline.picking.pickers.cnn import CNNPicker
    pk = CNNPicker.load(tmp_path / "a" / "cnn_polarity.weights.h5")
    x = np.random.default_rng(0).normal(size=(4, 600)).astype(np.float32)
    assert np.allclose(pk.predict(x), T._predict(rec1["_model"], x), atol=1e-6)
    rec3 = T.train(T.TrainConfig.tiny(data_dir=str(toc2me_waveforms_dir), out_dir=str(tmp_path / "c"), seed=8))
    assert not all(np.array_equal(a, b) for a, b in zip(w1, rec3["_model"].get_weights()))


def test_missing_data_is_an_input_error(tmp_path):
    from pipeline.errors import InputError
    with pytest.raises(InputError, match="waveforms"):
        T.train(T.TrainConfig.tiny(data_dir=str(tmp_path), out_dir=str(tmp_path / "o")))


def test_committed_record_feeds_model_eval():
    """The record's own LOEO summary (band chosen on the same predictions) goes to
    ``loeo_selected_on_itself``, never to the honest ``loeo_heldout``; its shares carry Wilson
    intervals of the record's own counts."""
    from scipy.stats import binomtest
    rec = T.load_record()
    df = T.model_eval_rows(rec)
    assert {"cnn", "onset"} <= set(df.model) and {"metric", "calibration", "training"} <= set(df.kind)
    assert "loeo_heldout" not in set(df.dataset)
    held = df[(df.model == "cnn") & (df.dataset == "loeo_selected_on_itself") & (df.kind == "metric")] \
        .set_index("name").value
    pooled = rec["loeo"]["recipes"][rec["loeo"]["chosen_recipe"]]["pooled"]
    assert held["agreement_reference"] == pooled["ref_agree"] / pooled["ref_both"]
    assert held["coverage_reference"] == pooled["ref_both"] / pooled["ref_n"]
    for name, k, n in (("agreement_reference", pooled["ref_agree"], pooled["ref_both"]),
                       ("coverage_reference", pooled["ref_both"], pooled["ref_n"])):
        ci = binomtest(k, n).proportion_ci(method="wilson")
        assert held[f"{name}_ci_low"] == pytest.approx(ci.low) and held[f"{name}_ci_high"] == pytest.approx(ci.high)
    from pipeline import schema
    if "model_eval" in schema.TABLES:
        from pipeline import tables
        tables.to_arrow("model_eval", df)


def test_summary_reports_nested_numbers_with_intervals():
    from pipeline.picking.nested import nested_from_record
    rec = T.load_record()
    text = T.summary(rec)
    nest = nested_from_record(rec)
    p = nest["pooled"]
    assert f"nested LOEO (2 events, 118 labelled traces; 95 % Wilson intervals): {p['n_correct']}/{p['n_decided']}" \
        in text
    assert all(f"fold {f['test_event']}: {f['recipe']}" in text for f in nest["folds"])
    assert "band chosen on itself" in text


def test_determinism_switch_failure_is_an_error_not_silent(monkeypatch):
    """Regression: ``enable_op_determinism`` was wrapped in ``except Exception: pass`` while the
    record and the docs promise identical weights for the same config and seed."""
    import tensorflow as tf

    def broken():
        raise RuntimeError("op determinism unavailable here")

    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", broken)
    with pytest.raises(RuntimeError, match="determinism could not be enabled.*not be reproducible"):
        T._setup(T.TrainConfig.tiny())
    monkeypatch.setattr(tf.config.experimental, "enable_op_determinism", lambda: None)
    monkeypatch.setattr(tf.config.experimental, "is_op_determinism_enabled", lambda: False, raising=False)
    with pytest.raises(RuntimeError, match="not enabled"):
        T._setup(T.TrainConfig.tiny())


def test_tiny_loeo_run_records_nested_numbers(toc2me_waveforms_dir, tmp_path):
    """A tiny run with leave-one-event-out folds: the written record carries the nested
    evaluation of its own held-out predictions (recomputable from them), with intervals."""
    from pipeline.picking.nested import nested_from_record
    T.train(T.TrainConfig.tiny(data_dir=str(toc2me_waveforms_dir), out_dir=str(tmp_path), seed=7, loeo=True))
    saved = json.loads((tmp_path / "cnn_polarity.json").read_text())
    stored = saved["loeo"]["nested"]
    again = nested_from_record(saved)
    assert stored["n_events"] == 2 and stored["n_labelled"] == 118
    for key in ("n_labelled", "n_decided", "n_correct"):
        assert stored["pooled"][key] == again["pooled"][key]
    assert [(f["test_event"], f["recipe"], f["upper"]) for f in stored["folds"]] == \
        [(f["test_event"], f["recipe"], f["upper"]) for f in again["folds"]]
    assert 0 <= stored["pooled"]["coverage_ci_low"] <= stored["pooled"]["coverage"] <= stored["pooled"]["coverage_ci_high"]
