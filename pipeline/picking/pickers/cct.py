"""The EQpolarity compact convolutional transformer (CCT), the reference architecture.

Chen, Y., Saad, O. M., Savvaidis, A., Zhang, F., Chen, Y., Huang, D., Li, H. and
Zanjani, F. A. (2024), "Deep learning for P-wave first-motion polarity determination and its
application in focal mechanism inversion", IEEE TGRS 62, 5917411.  Public code
chenyk1990/eqpolarity (MIT; ``eqpolarity/utils.py: construct_model``); ToC2ME fine-tuning
("Micro-EQpolarity") in hhhjjjcc/Micro-EQpolarity.

Rebuilt layer for layer in Keras 3 (no ``tensorflow.python.keras`` import), so published
``.h5`` weights (Keras 2 HDF5, full model or weights only) load by layer order with
``model.load_weights(path)``:

* input (B, 600, 1) float32, no positional embedding, no class token;
* ``CCTTokenizer1``: [Conv1D(200, 4, stride 1, 'same', no bias, ReLU, he_normal) ->
  MaxPool1D(3, 2, 'same')] x 2 -> (B, 150, 200);
* 4 pre-LN transformer blocks: LayerNorm(1e-5) -> MultiHeadAttention(4 heads, key_dim 200,
  dropout 0.2) -> StochasticDepth -> Add; LayerNorm -> Dense(200, GELU) -> Dropout 0.2 ->
  Dense(200, GELU) -> Dropout 0.2 -> StochasticDepth -> Add; depth rates linspace(0, 0.1, 4);
* LayerNorm -> Flatten (30,000) -> Dropout 0.2 -> Dense(1, sigmoid).

3,086,401 parameters.  Output: probability that the **recorded** first motion is down.
Inference preprocessing (reference): the 600-sample window divided by its max |x|.
Layers get the names a fresh Keras 2 session gave them, so the weights' layer names match.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

import keras
from keras import layers, ops

from ..waveforms import WINDOW_LEN, normalize_max_abs

PROJECTION_DIM = 200
NUM_HEADS = 4
TRANSFORMER_LAYERS = 4
CONV_LAYERS = 2
STOCHASTIC_DEPTH_RATE = 0.1
DROP_RATE = 0.2
N_PARAMS = 3_086_401


@keras.saving.register_keras_serializable(package="pipeline")
class CCTTokenizer1(layers.Layer):
    """Convolutional tokenizer: (B, 600, 1) -> (B, 150, 200) (names as in EQpolarity)."""

    def __init__(self, kernel_size=4, stride=1, pooling_kernel_size=3, pooling_stride=2,
                 num_conv_layers=CONV_LAYERS, num_output_channels=PROJECTION_DIM, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.pooling_kernel_size = int(pooling_kernel_size)
        self.pooling_stride = int(pooling_stride)
        self.num_conv_layers = int(num_conv_layers)
        self.num_output_channels = int(num_output_channels)
        self.conv_model = keras.Sequential(name="sequential")
        for i in range(self.num_conv_layers):
            self.conv_model.add(layers.Conv1D(
                self.num_output_channels, self.kernel_size, self.stride, padding="same",
                use_bias=False, activation="relu", kernel_initializer="he_normal",
                name="conv1d" if i == 0 else f"conv1d_{i}"))
            self.conv_model.add(layers.MaxPool1D(
                self.pooling_kernel_size, self.pooling_stride, "same",
                name="max_pooling1d" if i == 0 else f"max_pooling1d_{i}"))

    def build(self, input_shape):
        self.conv_model.build(input_shape)
        self.built = True

    def call(self, inputs):
        return self.conv_model(inputs)

    def compute_output_shape(self, input_shape):
        n = input_shape[1]
        for _ in range(self.num_conv_layers):
            n = None if n is None else -(-n // self.pooling_stride)
        return (input_shape[0], n, self.num_output_channels)

    def get_config(self):
        cfg = super().get_config()
        cfg.update(kernel_size=self.kernel_size, stride=self.stride,
                   pooling_kernel_size=self.pooling_kernel_size, pooling_stride=self.pooling_stride,
                   num_conv_layers=self.num_conv_layers, num_output_channels=self.num_output_channels)
        return cfg


@keras.saving.register_keras_serializable(package="pipeline")
class StochasticDepth(layers.Layer):
    """Drops the whole residual branch of a sample with probability ``drop_prob`` (training)."""

    def __init__(self, drop_prop=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.drop_prob = float(drop_prop)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if training and self.drop_prob > 0:
            keep = 1.0 - self.drop_prob
            shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
            mask = ops.floor(keep + keras.random.uniform(shape, 0, 1, seed=self.seed_generator))
            return (x / keep) * mask
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        cfg = super().get_config()
        cfg.update(drop_prop=self.drop_prob, seed=self.seed)
        return cfg


def build_cct(input_len: int = WINDOW_LEN, name: str = "eqpolarity_cct") -> keras.Model:
    """The EQpolarity CCT (``construct_model((600, 1))``), randomly initialised."""
    inputs = layers.Input(shape=(input_len, 1), name="input")
    x = CCTTokenizer1(name="cct_tokenizer1")(inputs)
    dpr = np.linspace(0, STOCHASTIC_DEPTH_RATE, TRANSFORMER_LAYERS)
    n = {"layer_normalization": 0, "multi_head_attention": 0, "stochastic_depth": 0, "add": 0,
         "dense": 0, "dropout": 0}

    def nm(base):
        k = n[base]
        n[base] += 1
        return base if k == 0 else f"{base}_{k}"

    for i in range(TRANSFORMER_LAYERS):
        x1 = layers.LayerNormalization(epsilon=1e-5, name=nm("layer_normalization"))(x)
        att = layers.MultiHeadAttention(num_heads=NUM_HEADS, key_dim=PROJECTION_DIM, dropout=DROP_RATE,
                                        name=nm("multi_head_attention"))(x1, x1)
        att = StochasticDepth(float(dpr[i]), name=nm("stochastic_depth"))(att)
        x2 = layers.Add(name=nm("add"))([att, x])
        x3 = layers.LayerNormalization(epsilon=1e-5, name=nm("layer_normalization"))(x2)
        for units in (PROJECTION_DIM, PROJECTION_DIM):
            x3 = layers.Dense(units, activation="gelu", name=nm("dense"))(x3)
            x3 = layers.Dropout(DROP_RATE, name=nm("dropout"))(x3)
        x3 = StochasticDepth(float(dpr[i]), name=nm("stochastic_depth"))(x3)
        x = layers.Add(name=nm("add"))([x3, x2])
    rep = layers.LayerNormalization(epsilon=1e-5, name=nm("layer_normalization"))(x)
    f = layers.Flatten(name="flatten")(rep)
    f = layers.Dropout(DROP_RATE, name=nm("dropout"))(f)
    out = layers.Dense(1, activation="sigmoid", name=nm("dense"))(f)
    return keras.Model(inputs=inputs, outputs=out, name=name)


def compile_cct(model: keras.Model, lr: float = 1e-3) -> keras.Model:
    """Compile as the reference trained it (Adam 1e-3, binary cross-entropy, accuracy)."""
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy", metrics=["acc"])
    return model


def preprocess(windows: np.ndarray) -> np.ndarray:
    """Reference inference preprocessing: (N, 600) raw -> (N, 600, 1) divided by max |x|."""
    w = np.asarray(windows, dtype=np.float32)
    if w.ndim != 2 or w.shape[1] != WINDOW_LEN:
        raise ValueError(f"windows must be (N, {WINDOW_LEN}), got {w.shape}")
    return normalize_max_abs(w)[..., None]


class CCTPicker:
    """The reference CCT as a picker. ``weights``: a published ``.h5`` or ``.weights.h5``."""

    name = "cct"

    def __init__(self, weights: str | Path | None = None, model: keras.Model | None = None,
                 batch_size: int = 1024):
        self.model = model if model is not None else build_cct()
        self.batch_size = int(batch_size)
        self.weights = None if weights is None else str(weights)
        if weights is not None:
            self.model.load_weights(str(weights))

    def predict(self, windows: np.ndarray) -> np.ndarray:
        x = preprocess(windows)
        if len(x) == 0:
            return np.zeros(0, dtype=np.float32)
        p = self.model.predict(x, batch_size=self.batch_size, verbose=0)
        return p.reshape(-1).astype(np.float32)
