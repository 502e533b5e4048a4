"""The production polarity picker: a compact, sign-antisymmetric 1-D CNN.

Input: the raw 600-sample window (500 Hz, P at index 299).  Preprocessing
(:func:`preprocess`) keeps the central :data:`CROP_LEN` = 200 samples (P - 0.2 s ..
P + 0.198 s, P at index 100 of the crop), removes the mean of the pre-P part
(crop samples 0..79, i.e. P - 0.2 s .. P - 0.042 s) and divides by the crop's max |x|.

Network: ``logit(x) = g(x) - g(-x)`` with one shared trunk ``g`` (4 Conv1D + max-pool
stages, Flatten, Dense, Dense(1)), output ``sigmoid(logit)`` = probability that the
**recorded** first motion is down.  The construction makes the picker exactly
antisymmetric: ``p(-x) = 1 - p(x)`` for every input, so a polarity flip of the data flips
the answer by design (no learned sign bias) and sign-flip augmentation is built in.

Weights and the record of how they were made (config, seed, data, metrics, calibration band)
live in ``pipeline/models/`` (:data:`DEFAULT_WEIGHTS`, :data:`DEFAULT_RECORD`); training is
:mod:`pipeline.picking.training`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import keras
from keras import layers

from ..waveforms import P_INDEX, WINDOW_LEN

CROP_PRE = 100                  #: samples kept before P
CROP_POST = 100                 #: samples kept from P on (P included)
CROP_LEN = CROP_PRE + CROP_POST
NOISE_LEN = 80                  #: pre-P samples of the crop used for the mean

MODELS_DIR = Path(__file__).resolve().parents[2] / "models"
MODEL_NAME = "cnn_polarity"
DEFAULT_WEIGHTS = MODELS_DIR / f"{MODEL_NAME}.weights.h5"
DEFAULT_RECORD = MODELS_DIR / f"{MODEL_NAME}.json"


def preprocess(windows: np.ndarray) -> np.ndarray:
    """(N, 600) raw windows -> (N, 200, 1) float32 crops: demeaned, divided by max |x|.

    Both steps commute with a sign flip (odd functions of the input).
    """
    w = np.asarray(windows, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != WINDOW_LEN:
        raise ValueError(f"windows must be (N, {WINDOW_LEN}), got {w.shape}")
    c = w[:, P_INDEX - CROP_PRE:P_INDEX + CROP_POST].astype(np.float64)
    c = c - c[:, :NOISE_LEN].mean(axis=1, keepdims=True)
    m = np.abs(c).max(axis=1, keepdims=True)
    m[m == 0] = 1.0
    return (c / m).astype(np.float32)[..., None]


def build_trunk(filters=(16, 32, 32, 64), kernels=(7, 5, 5, 3), dense: int = 64,
                dropout: float = 0.2, input_len: int = CROP_LEN) -> keras.Model:
    """The shared trunk g: (B, 200, 1) -> (B, 1) logit contribution."""
    inp = layers.Input(shape=(input_len, 1), name="trunk_input")
    x = inp
    for i, (f, k) in enumerate(zip(filters, kernels)):
        x = layers.Conv1D(f, k, padding="same", activation="relu", kernel_initializer="he_normal",
                          name=f"conv{i}")(x)
        x = layers.MaxPool1D(2, name=f"pool{i}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    x = layers.Dense(dense, activation="relu", kernel_initializer="he_normal", name="fc")(x)
    x = layers.Dense(1, name="logit")(x)
    return keras.Model(inp, x, name="trunk")


def build_cnn(filters=(16, 32, 32, 64), kernels=(7, 5, 5, 3), dense: int = 64,
              dropout: float = 0.2, name: str = MODEL_NAME) -> keras.Model:
    """The antisymmetric CNN: sigmoid(g(x) - g(-x)), input (B, 200, 1) preprocessed crops."""
    trunk = build_trunk(filters, kernels, dense, dropout)
    inp = layers.Input(shape=(CROP_LEN, 1), name="crop")
    neg = layers.Rescaling(-1.0, name="negate")(inp)
    logit = layers.Subtract(name="antisym")([trunk(inp), trunk(neg)])
    out = layers.Activation("sigmoid", name="prob_down_recorded")(logit)
    return keras.Model(inp, out, name=name)


def architecture_config(filters=(16, 32, 32, 64), kernels=(7, 5, 5, 3), dense=64, dropout=0.2) -> dict:
    return {"filters": list(filters), "kernels": list(kernels), "dense": int(dense), "dropout": float(dropout)}


class CNNPicker:
    """The production picker.  ``CNNPicker.load()`` reads the committed weights and record.

    ``lower``/``upper``: the calibrated undetermined band stored with the model (see
    :mod:`pipeline.picking.pickers.calibration`); ``record``: the JSON training record.
    """

    name = "cnn"

    def __init__(self, model: keras.Model, record: dict | None = None, batch_size: int = 4096):
        self.model = model
        self.record = record or {}
        self.batch_size = int(batch_size)
        self._fn = None
        cal = self.record.get("calibration", {})
        self.lower = float(cal.get("lower", 0.05))
        self.upper = float(cal.get("upper", 0.95))

    @classmethod
    def load(cls, weights: str | Path = DEFAULT_WEIGHTS, record: str | Path | None = None) -> "CNNPicker":
        weights = Path(weights)
        if record is None:
            record = weights.with_name(weights.name.replace(".weights.h5", ".json"))
        rec = json.loads(Path(record).read_text()) if Path(record).exists() else {}
        arch = rec.get("architecture", architecture_config())
        model = build_cnn(**arch)
        model.load_weights(str(weights))
        return cls(model, rec)

    def _predict_fn(self):
        if self._fn is None:
            import tensorflow as tf
            model = self.model
            self._fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return self._fn

    def predict(self, windows: np.ndarray) -> np.ndarray:
        x = preprocess(windows)
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        fn = self._predict_fn()
        out = [np.asarray(fn(x[i:i + self.batch_size])).reshape(-1)
               for i in range(0, len(x), self.batch_size)]
        return np.concatenate(out).astype(np.float32)

    def polarity(self, windows: np.ndarray, reversed) -> np.ndarray:
        """True polarity (+1/-1/0) with the stored band and the station reversal applied once."""
        from . import to_true_polarity
        return to_true_polarity(self.predict(windows), reversed, self.lower, self.upper)
