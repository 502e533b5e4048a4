"""Pickers: the polarity conventions, the onset baseline, the reference CCT, the production CNN."""
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.picking import pickers as P
from pipeline.picking.pickers import calibration as C
from pipeline.picking.pickers.onset import OnsetPicker

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def real(toc2me_waveforms_dir):
    from pipeline.picking import training as T
    return T.load_real(toc2me_waveforms_dir)


@pytest.fixture(scope="module")
def tf_threads():
    P.set_threads(2)


def _onset_windows(sign, n=4, snr=20.0, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, 600)).astype(np.float32)
    t = np.arange(301) / 500.0
    w[:, 299:] += sign * snr * np.sin(2 * np.pi * 30 * t) * np.exp(-t / 0.03)
    return w


# ----------------------------------------------------------------- conventions

def test_recorded_polarity_band_edges():
    p = np.array([0.0, 0.05, 0.0500001, 0.5, 0.95, 1.0, np.nan])
    assert list(P.recorded_polarity(p, 0.05, 0.95)) == [1, 1, 0, 0, -1, -1, 0]


def test_true_polarity_of_manual_picks_is_minus_recorded(toc2me_waveforms_dir):
    """5B is reversed: true polarity = -(manual recorded sign) (README 3.4), applied once.
    The flags come from ToC2ME's sensor-polarity metadata, not from the network code."""
    from pipeline.ingest.toc2me import shipped_sensors
    from pipeline.picking.training import read_manual_polcsv
    man = read_manual_polcsv(toc2me_waveforms_dir / "picks/manual/20161104064824.680.pol.csv")
    assert len(man) == 50 and set(man.network) == {"5B"}
    prob = np.where(man.recorded == -1, 1.0, 0.0)            # recorded down -> p = 1
    sensors = shipped_sensors()
    rev = P.station_reversed(man.network, man.station, sensors)
    assert rev.all()
    true = P.to_true_polarity(prob, rev, 0.05, 0.95)
    assert np.array_equal(true, -man.recorded.to_numpy())
    # same through the table path, which refuses a second application
    df = man.assign(polarity_recorded=man.recorded)
    once = P.apply_station_reversal(df, sensors)
    assert np.array_equal(once.polarity, -man.recorded.to_numpy())
    with pytest.raises(ValueError, match="already applied"):
        P.apply_station_reversal(once, sensors)
    with pytest.raises(ValueError, match="already applied"):
        P.apply_station_reversal(once.drop(columns="polarity"), sensors)   # the flag travels with the table


def test_true_polarity_matches_pol_hash_auto(toc2me_waveforms_dir):
    """The published corrected picks: '+' <=> p > 0.5 (reference raw p), via our reversal."""
    from pipeline.ingest.toc2me import shipped_sensors
    from pipeline.picking.training import read_reference_polarity
    ev = "20161104064824.680"
    raw = read_reference_polarity(toc2me_waveforms_dir / f"picks/eqpolarity_raw/{ev}.polarity").set_index("station")
    lines = (toc2me_waveforms_dir / f"picks/pol_hash_auto/{ev}.pol.hash").read_text().splitlines()[1:]
    pub = {ln.split()[0]: (1 if ln.split()[1] == "+" else -1) for ln in lines if ln.strip()}
    p = raw.loc[list(pub), "p"].to_numpy()
    true = P.to_true_polarity(p, P.station_reversed(["5B"] * len(p), list(pub), shipped_sensors()), 0.05, 0.95)
    assert list(true) == list(pub.values())


def test_polarity_rows_for_the_polarities_table():
    meta = pd.DataFrame({"event_id": ["e"] * 3, "network": ["5B"] * 3, "station": ["1", "2", "3"],
                         "location": ["00"] * 3, "channel": ["DHZ"] * 3, "snr": [5.0, 1.0, 3.0],
                         "p_source": ["picked", "predicted", "picked"]})
    st = pd.DataFrame({"network": ["5B"] * 3, "station": ["1", "2", "3"], "reversed": [True] * 3})
    df = P.polarity_rows(meta, [0.99, 0.5, 0.01], "cnn", 0.2, 0.8, st, model_version="x")
    assert list(df.columns) == list(P.POLARITIES_COLUMNS)
    assert list(df.polarity_recorded) == [-1, 0, 1] and list(df.polarity) == [1, 0, -1]
    assert df.reversed.all() and df.probability.iloc[0] == pytest.approx(0.99)
    with pytest.raises(ValueError, match="already applied"):
        P.apply_station_reversal(df, st)
    from pipeline import schema
    if "polarities" in schema.TABLES:                # the data contract's required columns
        assert set(schema.table("polarities").column_names) <= set(df.columns)
        from pipeline import tables
        tables.to_arrow("polarities", df)


def test_station_reversed_comes_from_the_table_and_never_defaults():
    """Reversal is per station in the stations table; no network code implies it, and a
    station missing from the table is an error naming it, not a silent default."""
    st = pd.DataFrame({"network": ["5B", "5B", "XX"], "station": ["1107", "1108", "1"],
                       "reversed": [False, True, True]})
    assert list(P.station_reversed(["5B", "5B", "XX"], ["1107", "1108", "1"], st)) == [False, True, True]
    with pytest.raises(P.UnknownStationError, match=r"5B\.1109"):
        P.station_reversed(["5B", "5B"], ["1107", "1109"], st)
    with pytest.raises(TypeError, match="stations table"):
        P.station_reversed(["5B"], ["1107"], None)
    assert list(P.known_stations(["5B", "5B"], ["1108", "1109"], st)) == [True, False]


def test_pick_windows_rejects_windows_at_unknown_stations():
    """A window at a station the table lacks is a reject (with its file), the rest is picked."""
    from pipeline import picking
    from pipeline.rejects import Rejects
    st = pd.DataFrame({"network": ["5B"], "station": ["1"], "reversed": [True]})
    meta = pd.DataFrame({"event_id": ["e", "e"], "network": ["5B", "5B"], "station": ["1", "2"],
                         "location": ["", ""], "channel": ["DHZ", "DHZ"], "snr": [5.0, 5.0],
                         "p_source": ["picked"] * 2, "file": ["a.mseed", "b.mseed"]})
    rej = Rejects()
    pol = picking.pick_windows(meta, _onset_windows(+1, n=2), st, {"onset": picking.load_picker("onset")}, rej)
    assert list(pol.station) == ["1"] and list(pol.polarity) == [-1]   # recorded up, reversed: true down
    r = rej.to_frame()
    assert list(r.file) == ["b.mseed"] and "5B.2" in r.reason.iloc[0]
    with pytest.raises(P.UnknownStationError):
        picking.pick_windows(meta, _onset_windows(+1, n=2), st, {"onset": picking.load_picker("onset")})


# ----------------------------------------------------------------- onset baseline

def test_onset_baseline_signs():
    pk = OnsetPicker()
    assert (pk.predict(_onset_windows(+1)) == 0.0).all()      # recorded up -> p(down) = 0
    assert (pk.predict(_onset_windows(-1)) == 1.0).all()
    flat = np.random.default_rng(3).normal(size=(5, 600)) * 1e-3
    flat[:, :] = flat[:, :1]                                   # sigma 0 -> abstain
    assert (pk.predict(flat) == 0.5).all()
    assert pk.n0 == 49 and pk.n1 == 294 and pk.s1 == 320


def test_onset_baseline_on_shared_traces(real):
    """Recomputed from the shared traces, then compared with what the committed record says."""
    from pipeline.picking.training import evaluate, load_record
    ev = evaluate(OnsetPicker().predict(real.windows), real.meta, 0.25, 0.75)
    assert ev["ref_agreement"] >= 0.95 and ev["manual_match"] >= 49     # polarity.md: 97%, 49/50
    assert ev == load_record()["baseline_onset"]["all"]


# ----------------------------------------------------------------- CCT (reference architecture)

def test_cct_parameter_count(tf_threads):
    from pipeline.picking.pickers.cct import N_PARAMS, build_cct
    m = build_cct()
    assert m.count_params() == N_PARAMS == 3_086_401
    assert m.input_shape == (None, 600, 1) and m.output_shape == (None, 1)
    tok = m.get_layer("cct_tokenizer1")
    assert tuple(tok.compute_output_shape((None, 600, 1))) == (None, 150, 200)
    assert m.get_layer("flatten").output.shape[-1] == 30_000


def test_cct_no_legacy_keras_import():
    import re
    src = (Path(__file__).resolve().parents[1] / "pipeline/picking/pickers/cct.py").read_text()
    imports = re.findall(r"^\s*(?:from|import)\s+(\S+)", src, flags=re.M)
    assert imports and not any(i.startswith("tensorflow.python") for i in imports)


def test_cct_save_load_round_trip(tmp_path, tf_threads):
    import keras
    from pipeline.picking.pickers.cct import CCTPicker, build_cct
    keras.utils.set_random_seed(1)
    m = build_cct()
    x = np.random.default_rng(0).normal(size=(3, 600)).astype(np.float32)
    p0 = CCTPicker(model=m).predict(x)
    m.save(tmp_path / "cct.keras")
    m2 = keras.models.load_model(tmp_path / "cct.keras")
    assert np.allclose(CCTPicker(model=m2).predict(x), p0, atol=1e-6)
    m.save_weights(tmp_path / "cct.weights.h5")
    assert np.allclose(CCTPicker(tmp_path / "cct.weights.h5").predict(x), p0, atol=1e-6)


def test_cct_is_trainable(tf_threads):
    import keras
    from pipeline.picking.pickers.cct import build_cct, compile_cct, preprocess
    keras.utils.set_random_seed(4)
    m = compile_cct(build_cct())
    x = preprocess(np.concatenate([_onset_windows(+1, 8), _onset_windows(-1, 8)]))
    y = np.r_[np.zeros(8), np.ones(8)].astype(np.float32)
    before = [w.copy() for w in m.get_weights()]
    h = m.fit(x, y, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(h.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, m.get_weights()))


def test_cct_loads_keras2_style_h5_by_layer_order(tmp_path, tf_threads):
    """A published EQpolarity .h5 (Keras 2, full model) loads with load_weights.

    The file is written the way tf.keras 2 wrote HDF5 models: ``model_weights`` group,
    ``layer_names`` (weightless layers included) and per-layer ``weight_names``.
    """
    import h5py
    import keras
    from pipeline.picking.pickers.cct import CCTPicker, build_cct
    keras.utils.set_random_seed(2)
    src = build_cct()
    path = tmp_path / "best_weigths_Binary_Toc2me.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("model_weights")
        g.attrs["backend"] = b"tensorflow"
        g.attrs["keras_version"] = b"2.10.0"
        g.attrs["layer_names"] = np.array([l.name.encode() for l in src.layers])
        for layer in src.layers:
            lg = g.create_group(layer.name)
            ws = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{w.path}:0" for w in ws]
            lg.attrs["weight_names"] = np.array([n.encode() for n in names])
            for n, w in zip(names, ws):
                lg.create_dataset(n, data=np.asarray(w))
    keras.utils.set_random_seed(3)
    dst = CCTPicker(path)
    x = np.random.default_rng(0).normal(size=(4, 600)).astype(np.float32)
    assert np.allclose(dst.predict(x), CCTPicker(model=src).predict(x), atol=1e-6)


# ----------------------------------------------------------------- production CNN

@pytest.fixture(scope="module")
def cnn(tf_threads):
    from pipeline.picking.pickers.cnn import DEFAULT_WEIGHTS, CNNPicker
    if not DEFAULT_WEIGHTS.exists():
        pytest.fail(f"committed weights missing: {DEFAULT_WEIGHTS}")
    return CNNPicker.load()


def test_cnn_committed_model_is_small_and_recorded(cnn):
    from pipeline.picking.pickers.cnn import DEFAULT_RECORD, DEFAULT_WEIGHTS
    assert DEFAULT_WEIGHTS.stat().st_size < 5_000_000
    rec = json.loads(DEFAULT_RECORD.read_text())
    import hashlib
    assert rec["weights_sha256"] == hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    assert 20_000 < cnn.model.count_params() < 150_000 and rec["n_params"] == cnn.model.count_params()
    assert 0 < cnn.lower < 0.5 < cnn.upper < 1 and rec["calibration"]["reliability"]
    assert rec["seed"] and rec["config"] and rec["loeo"]["folds"]


def test_cnn_is_antisymmetric(cnn):
    x = np.random.default_rng(5).normal(size=(64, 600)).astype(np.float32)
    assert np.allclose(cnn.predict(-x), 1 - cnn.predict(x), atol=1e-5)


def test_cnn_agrees_with_reference_on_shared_traces(cnn, real):
    """The committed CNN run on the labelled shared traces: polarity.md targets (>= 98 %
    agreement where both decide, >= 85 % decided, >= 49/50 manual, better than the onset
    baseline; in-sample: the weights were fine-tuned on these events), and the record's
    in-sample block is exactly what this recomputation gives."""
    from pipeline.picking.training import evaluate
    p = cnn.predict(real.windows)
    ev = evaluate(p, real.meta, cnn.lower, cnn.upper)
    assert ev["ref_agreement"] >= 0.98
    assert ev["ref_coverage"] >= 0.85
    assert ev["manual_match"] >= 49 and ev["manual_wrong"] == 0
    base = evaluate(OnsetPicker().predict(real.windows), real.meta, 0.25, 0.75)
    assert ev["ref_agree"] > base["ref_agree"] and ev["ref_agreement"] > base["ref_agreement"]
    ins = cnn.record["in_sample"]
    assert ev == ins["all"]
    for e in ins:
        if e != "all":
            m = (real.meta.event_id == e).to_numpy()
            assert evaluate(p[m], real.meta[m], cnn.lower, cnn.upper) == ins[e], e


def test_record_loeo_blocks_recomputed_from_its_predictions(cnn, real):
    """The record's LOEO numbers are recomputed, not read back: its held-out predictions carry
    the labels the shared files give; each recipe's pooled and per-event blocks follow from
    those predictions at the stored band; the stored band is the widest grid band reaching the
    target on them, raised to the synthetic guard (that is, chosen on these same predictions:
    the nested numbers, tests/test_nested.py and tests/test_evaluate.py, are the honest ones)."""
    from pipeline.picking.training import evaluate
    rec = cnn.record
    held = pd.DataFrame(rec["loeo"]["held_out_predictions"])
    m = real.meta.merge(held, on=["event_id", "station"], how="left", suffixes=("", "_record"), validate="one_to_one")
    assert m["p_finetuned"].notna().all() and len(m) == len(real.meta) == 136
    assert m["label"].fillna(-1).equals(m["label_record"].fillna(-1))        # same labels as the shared files
    lab = m["label"].notna().to_numpy()
    for recipe, r in rec["loeo"]["recipes"].items():
        cal = r["calibration"]
        p = m[f"p_{recipe}"].to_numpy()
        assert evaluate(p, real.meta, cal["lower"], cal["upper"]) == r["pooled"], recipe
        for e, block in r["per_event"].items():
            k = (real.meta.event_id == e).to_numpy()
            assert evaluate(p[k], real.meta[k], cal["lower"], cal["upper"]) == block, (recipe, e)
        band = C.choose_band(p[lab], m["label"].to_numpy()[lab], rec["config"]["target_accuracy"])
        assert cal["upper"] == max(band["upper"], cal["guard"]["upper"]), recipe
        assert cal["lower"] == pytest.approx(1 - cal["upper"])
    chosen = rec["loeo"]["chosen_recipe"]
    assert (cnn.lower, cnn.upper) == (rec["calibration"]["lower"], rec["calibration"]["upper"]) == \
        (rec["loeo"]["recipes"][chosen]["calibration"]["lower"], rec["loeo"]["recipes"][chosen]["calibration"]["upper"])


def test_cnn_polarity_applies_reversal_once(cnn):
    up = _onset_windows(+1, n=3)
    assert (cnn.predict(up) < 0.1).all()
    assert list(cnn.polarity(up, reversed=True)) == [-1, -1, -1]    # recorded up on 5B = true down
    assert list(cnn.polarity(up, reversed=False)) == [1, 1, 1]


# ----------------------------------------------------------------- calibration

def test_choose_band_widest_coverage_reaching_target():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000).astype(float)
    margin = rng.uniform(0, 0.5, 2000)
    wrong = rng.random(2000) < (0.5 - margin) * 0.4          # errors concentrate near 0.5
    p = np.where((y == 1) ^ wrong, 0.5 + margin, 0.5 - margin)
    band = C.choose_band(p, y, 0.98)
    assert band["reached"] and band["accuracy"] >= 0.98
    stricter = [s for s in band["scan"] if s["upper"] > band["upper"]]
    looser = [s for s in band["scan"] if s["upper"] < band["upper"]]
    assert all(s["coverage"] <= band["coverage"] for s in stricter)
    assert all(s["accuracy"] < 0.98 for s in looser)


def test_temperature_recovers_overconfidence():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-z))).astype(float)
    p_over = 1 / (1 + np.exp(-3 * z))                        # 3x over-confident
    assert C.fit_temperature(p_over, y) == pytest.approx(3.0, rel=0.1)
    rel = C.reliability_curve(C.apply_temperature(p_over, 3.0), y)
    assert all(abs(r["mean_pred"] - r["frac_down"]) < 0.05 for r in rel if r["n"] > 200)
