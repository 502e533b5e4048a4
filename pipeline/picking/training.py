"""Training the production polarity CNN (``python -m pipeline train`` calls :func:`train`).

Recipe (docs/polarity.md, "Labelled real data available here"):

1. **Pre-training on synthetic first motions built from real noise.**  Noise = the pre-P part
   (trace start .. P - 0.1 s, ~4.4 s) of every live DHZ/DH1/DH2 trace of the shared events,
   read from the SAC files at training time (never committed).  Onsets: causal Ricker, Brune
   velocity pulse (smoothed by a causal attenuation kernel) or damped sinusoid, optionally
   emergent (ramp envelope), onset jitter of a few samples (wider for a fraction mimicking
   predicted picks), 0-3 later arrivals of random sign up to twice the first motion and a
   scattered coda, log-uniform SNR (first-lobe peak / noise std), random amplitude, random
   sign -> the label (1 = recorded down).  A few noise-only examples carry the soft label 0.5.
2. **Fine-tuning on labelled real traces** (mixed 1:1 with fresh synthetic examples so the
   synthetic skill is kept): labels are the 50 manual picks (recorded sign, event
   20161104064824.680) and, elsewhere, the reference model's confident outputs
   (``eqpolarity_filtered``, p >= 0.95 -> recorded down).  Real traces are augmented by a
   few samples of time shift and extra real noise.
3. **Leave-one-event-out validation** (2 events: train on one, test on the other, both ways);
   each fold pre-trains with the noise of its training event only.  The pooled held-out
   predictions choose the undetermined band of the *production* model
   (:mod:`pipeline.picking.pickers.calibration`) and whether fine-tuning helps (recipe
   ``finetuned`` vs ``synthetic``).  Because those predictions made the choice, their
   pooled scores (``loeo.recipes.*.pooled``) are optimistic; the numbers to report are the
   **nested** ones (``loeo.nested``, :mod:`pipeline.picking.nested`): per held-out event,
   recipe and band chosen on the other event's predictions only, with 95 % Wilson intervals.
4. **Production model** = the chosen recipe trained on everything (all noise, all labels);
   its weights (< 1 MB) and a JSON record (config, seed, data used, LOEO and in-sample
   metrics, calibration, date, library versions, sha256 of the weights) are written to
   ``pipeline/models/``.

Everything is seeded (``keras.utils.set_random_seed`` + ``enable_op_determinism``): the
same config and seed give the same weights.  If TensorFlow's op determinism cannot be
switched on, :func:`train` raises ``RuntimeError`` rather than train irreproducibly.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import InputError
from pipeline.rejects import Rejects
from . import waveforms as W

log = logging.getLogger(__name__)

SHARED_EVENTS = ("20161104064824.680", "20161125051408.940")
DEFAULT_DATA_DIR = os.environ.get("TOC2ME_DIR") or str(Path(__file__).resolve().parents[3] / "shared" / "toc2me")
NOISE_GUARD_S = 0.1            #: noise ends this long before P


# --------------------------------------------------------------------------- config

@dataclass
class TrainConfig:
    """Training configuration (every field is a ``--flag`` of ``python -m pipeline train``)."""

    data_dir: str = DEFAULT_DATA_DIR     #: folder laid out like the shared toc2me/ folder
    out_dir: str = str(Path(__file__).resolve().parents[1] / "models")
    model_name: str = "cnn_polarity"
    seed: int = 20161104
    n_synthetic: int = 60000             #: pre-training examples
    pretrain_epochs: int = 4
    batch_size: int = 128
    lr: float = 1e-3
    finetune_epochs: int = 6
    finetune_copies: int = 20            #: augmented copies of each real trace per epoch
    finetune_lr: float = 3e-4
    noise_only_frac: float = 0.05        #: synthetic examples without onset (label 0.5)
    wide_jitter_frac: float = 0.3        #: examples with +-15-sample onset jitter
    snr_min: float = 1.0
    snr_max: float = 100.0
    target_accuracy: float = 0.98        #: for the undetermined band
    loeo: bool = True                    #: run leave-one-event-out validation
    final: bool = True                   #: train the production model on everything
    write: bool = True                   #: write weights + record to out_dir
    threads: int = 2
    n_val_synthetic: int = 4000

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        for f in dataclasses.fields(cls):
            flag = "--" + f.name.replace("_", "-")
            if f.type in ("bool", bool):
                parser.add_argument(flag, default=f.default, action=argparse.BooleanOptionalAction)
            else:
                typ = {"int": int, "float": float, "str": str}.get(f.type, str) if isinstance(f.type, str) else f.type
                parser.add_argument(flag, type=typ, default=f.default)

    @classmethod
    def from_args(cls, ns: argparse.Namespace) -> "TrainConfig":
        return cls(**{f.name: getattr(ns, f.name) for f in dataclasses.fields(cls) if hasattr(ns, f.name)})

    @classmethod
    def tiny(cls, **kw) -> "TrainConfig":
        """A configuration that runs in seconds (tests)."""
        base = dict(n_synthetic=2000, pretrain_epochs=1, finetune_epochs=1, finetune_copies=2,
                    loeo=False, n_val_synthetic=200, batch_size=128)
        base.update(kw)
        return cls(**base)


# --------------------------------------------------------------------------- real data

def read_reference_polarity(path: str | Path) -> pd.DataFrame:
    """An ``eqpolarity_{raw,filtered}/<event>.polarity`` file: station, p (prob recorded down)."""
    df = pd.read_csv(path, sep=r"\s+", header=None, dtype={0: str})
    if df.shape[1] != 7:
        raise InputError(path, f"expected 7 columns, found {df.shape[1]}")
    return pd.DataFrame({"station": df[0].astype(str), "p": df[6].astype(float)})


def read_manual_polcsv(path: str | Path) -> pd.DataFrame:
    """A manual SKHASH ``.pol.csv`` (recorded sign): station, network, channel, recorded (+1/-1)."""
    df = pd.read_csv(path, skipinitialspace=True, dtype={"station": str, "network": str})
    df.columns = [c.strip() for c in df.columns]
    return pd.DataFrame({"station": df["station"].astype(str).str.strip(),
                         "network": df["network"].astype(str).str.strip(),
                         "recorded": df["p_polarity"].astype(float).astype(int)})


@dataclass
class RealData:
    """Vertical windows of the shared events with their reference outputs and labels."""

    meta: pd.DataFrame          #: event_id, network, station, p_source, snr, ref_p, ref_conf, manual, label, label_source
    windows: np.ndarray         #: (N, 600) raw float32
    noise: dict = field(default_factory=dict)   #: event_id -> list of float32 noise segments
    rejects: Rejects = field(default_factory=Rejects)
    noise_stations: dict = field(default_factory=dict)  #: event_id -> station code of each noise segment

    def labelled(self) -> np.ndarray:
        return self.meta["label"].notna().to_numpy()


def load_real(data_dir: str | Path = DEFAULT_DATA_DIR, events=SHARED_EVENTS) -> RealData:
    """Windows, noise segments and labels of the shared events (reads SAC files)."""
    data_dir = Path(data_dir)
    wdir = data_dir / "waveforms"
    if not wdir.is_dir():
        raise InputError(wdir, "no waveforms folder (the shared ToC2ME data are needed for training)")
    rejects = Rejects()
    metas, wins, noise, noise_sta = [], [], {}, {}
    for ev in W.iter_events(wdir, events, rejects):
        m, w = W.vertical_windows(ev, rejects)
        raw_f = data_dir / "picks" / "eqpolarity_raw" / f"{ev.event_id}.polarity"
        filt_f = data_dir / "picks" / "eqpolarity_filtered" / f"{ev.event_id}.polarity"
        man_f = data_dir / "picks" / "manual" / f"{ev.event_id}.pol.csv"
        raw = read_reference_polarity(raw_f).set_index("station")["p"] if raw_f.exists() else pd.Series(dtype=float)
        filt = set(read_reference_polarity(filt_f)["station"]) if filt_f.exists() else set()
        man = read_manual_polcsv(man_f).set_index("station")["recorded"] if man_f.exists() else pd.Series(dtype=int)
        m["ref_p"] = m["station"].map(raw).astype(float)
        m["ref_conf"] = m["station"].isin(filt)
        m["manual"] = m["station"].map(man).astype("Int64")
        lab = np.full(len(m), np.nan)
        src = np.array([None] * len(m), dtype=object)
        conf = m["ref_conf"].to_numpy()
        lab[conf] = (m["ref_p"].to_numpy()[conf] > 0.5).astype(float)
        src[conf] = "eqpolarity_filtered"
        has_man = m["manual"].notna().to_numpy()
        lab[has_man] = (m["manual"].to_numpy()[has_man].astype(int) == -1).astype(float)  # recorded down -> 1
        src[has_man] = "manual"
        m["label"] = lab
        m["label_source"] = src
        metas.append(m)
        wins.append(w)
        segs, seg_sta = [], []
        for rec in ev.traces:
            end = int(rec.p_offset - NOISE_GUARD_S * W.TARGET_RATE)
            seg = rec.data[:max(end, 0)]
            if seg.size >= W.WINDOW_LEN + 50 and np.isfinite(seg).all() and not W.is_dead(seg):
                segs.append(np.asarray(seg, dtype=np.float32))
                seg_sta.append(str(rec.station))
        noise[ev.event_id] = segs
        noise_sta[ev.event_id] = seg_sta
    if not metas:
        raise InputError(wdir, f"none of the events {list(events)} could be read")
    return RealData(pd.concat(metas, ignore_index=True), np.concatenate(wins), noise, rejects=rejects,
                    noise_stations=noise_sta)


# --------------------------------------------------------------------------- synthetic onsets

def _first_lobe_normalise(w: np.ndarray) -> np.ndarray:
    """Scale so the first lobe is positive with peak 1 (the onset sign defines the label)."""
    nz = np.flatnonzero(np.abs(w) > 1e-3 * np.abs(w).max())
    if nz.size == 0:
        return w
    s0 = nz[0]
    sgn = np.sign(w[s0])
    change = np.flatnonzero(np.sign(w[s0:]) == -sgn)
    end = s0 + (change[0] if change.size else len(w) - s0)
    peak = np.abs(w[s0:end]).max()
    return w * (sgn / peak)


def _wavelet(rng: np.random.Generator, n: int, rate: float = W.TARGET_RATE) -> np.ndarray:
    """A causal first-motion wavelet of n samples, starting at sample 0, first lobe +1.

    Frequencies follow the shared ToC2ME traces (dominant ~20-60 Hz at 500 Hz sampling).
    """
    t = np.arange(n) / rate
    kind = rng.integers(3)
    if kind == 0:      # causal Ricker: starts at the zero crossing before the main lobe
        f = rng.uniform(12, 70)
        tz = 1.0 / (np.pi * f * np.sqrt(2.0))
        tau = t - tz
        a = (np.pi * f * tau) ** 2
        w = (1 - 2 * a) * np.exp(-a)
        w[tau < -tz] = 0.0
    elif kind == 1:    # Brune velocity pulse smoothed by a causal attenuation kernel
        wc = 2 * np.pi * rng.uniform(8, 45)
        w = (1 - wc * t) * np.exp(-wc * t)
        tq = rng.uniform(0.5e-3, 4e-3)
        k = t[: max(4, int(12 * tq * rate))]
        h = k * np.exp(-k / tq)
        w = np.convolve(w, h / h.sum())[:n]
    else:              # damped sinusoid (geophone / near-surface ringing)
        f = rng.uniform(15, 80)
        td = rng.uniform(5e-3, 60e-3)
        w = np.sin(2 * np.pi * f * t) * np.exp(-t / td)
    if rng.random() < 0.3:  # emergent onset
        T = rng.uniform(2e-3, 30e-3)
        q = rng.choice([1.0, 2.0])
        w = w * np.minimum(1.0, t / T) ** q
    return _first_lobe_normalise(w)


def _coda(rng, wavelet: np.ndarray, rate: float = W.TARGET_RATE) -> np.ndarray:
    """Scattered coda: the wavelet convolved with a decaying random reflectivity series."""
    m = wavelet.size
    d = int(rng.uniform(0.004, 0.03) * rate)
    r = np.zeros(m)
    k = rng.integers(d, m, size=rng.integers(5, 40)) if d < m else np.zeros(0, int)
    r[k] = rng.normal(size=k.size) * np.exp(-(k - d) / (rng.uniform(0.03, 0.3) * rate))
    c = np.convolve(r, wavelet)[:m]
    mx = np.abs(c).max()
    return c / mx if mx > 0 else c


def _noise_crop(rng, bank: list[np.ndarray], n: int) -> np.ndarray:
    seg = bank[rng.integers(len(bank))]
    i = rng.integers(0, seg.size - n + 1)
    x = seg[i:i + n].astype(np.float64)
    if rng.random() < 0.5:
        x = x[::-1]
    if rng.random() < 0.5:
        x = -x
    x = x - x.mean()
    sd = x.std()
    return x / sd if sd > 0 else x


def synthetic_windows(bank: list[np.ndarray], n: int, seed: int, cfg: TrainConfig | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` synthetic raw windows (n, 600) with P at 299, labels (1 = recorded down, 0.5 =
    noise only) and their first-lobe SNRs (0 for noise only)."""
    cfg = cfg or TrainConfig()
    if not bank:
        raise ValueError("empty noise bank")
    rng = np.random.default_rng(seed)
    L = W.WINDOW_LEN
    X = np.empty((n, L), np.float32)
    y = np.empty(n, np.float32)
    snrs = np.zeros(n, np.float32)
    lmin, lmax = np.log(cfg.snr_min), np.log(cfg.snr_max)
    for i in range(n):
        x = _noise_crop(rng, bank, L)
        if rng.random() < cfg.noise_only_frac:
            y[i] = 0.5
        else:
            jit = rng.integers(-15, 16) if rng.random() < cfg.wide_jitter_frac else rng.integers(-3, 4)
            on = W.P_INDEX + int(jit)
            m = L - on
            s = _wavelet(rng, m)
            for _ in range(rng.integers(0, 4)):      # later arrivals
                d = int(rng.uniform(0.008, 0.08) * W.TARGET_RATE)
                if d < m:
                    s[d:] += rng.choice([-1, 1]) * rng.uniform(0.2, 2.5) * _wavelet(rng, m - d)
            if rng.random() < 0.8:                   # scattered coda
                s += rng.uniform(0.2, 1.5) * _coda(rng, s)
            snr = float(np.exp(rng.uniform(lmin, lmax)))
            down = rng.random() < 0.5
            x[on:] += (-1.0 if down else 1.0) * snr * s
            y[i] = 1.0 if down else 0.0
            snrs[i] = snr
        X[i] = x * 10.0 ** rng.uniform(-6, 1)
    return X, y, snrs


def augment_real(rng, windows: np.ndarray, labels: np.ndarray, bank: list[np.ndarray], copies: int):
    """Augmented copies of real windows: +-3-sample shift, extra real noise (50%)."""
    n = len(windows)
    idx = np.tile(np.arange(n), copies)
    X = np.empty((len(idx), W.WINDOW_LEN), np.float32)
    for j, i in enumerate(idx):
        w = windows[i].astype(np.float64)
        s = int(rng.integers(-3, 4))
        if s:
            w = np.roll(w, s)
        if rng.random() < 0.5 and bank:
            sd = w[49:290].std()
            w = w + _noise_crop(rng, bank, W.WINDOW_LEN) * sd * np.exp(rng.uniform(np.log(0.1), np.log(3.0)))
        X[j] = w
    return X, labels[idx].astype(np.float32)


# --------------------------------------------------------------------------- evaluation

def evaluate(prob, meta: pd.DataFrame, lower: float, upper: float) -> dict:
    """Agreement with the reference's confident outputs and with the manual picks.

    Recorded convention throughout: p >= upper -> recorded down, p <= lower -> recorded up.
    ``ref_*``: on stations where the reference is confident (eqpolarity_filtered),
    ``coverage`` = share of them where the picker decides, ``agreement`` = share of those
    (both decide) where they agree.  ``manual_*``: the 50 manual picks (recorded sign);
    ``manual_match`` counts decided and equal, ``manual_match_argmax`` uses p > 0.5 only.
    """
    from .pickers import recorded_polarity
    p = np.asarray(prob, dtype=np.float64)
    rec = recorded_polarity(p, lower, upper)
    out: dict = {"n_traces": int(len(p)), "decided_all": int((rec != 0).sum())}
    conf = meta["ref_conf"].to_numpy(bool)
    ref_rec = np.where(meta["ref_p"].to_numpy() > 0.5, -1, 1)
    both = conf & (rec != 0)
    out.update(ref_n=int(conf.sum()), ref_both=int(both.sum()),
               ref_coverage=float(both.sum() / conf.sum()) if conf.sum() else float("nan"),
               ref_agree=int((rec[both] == ref_rec[both]).sum()))
    out["ref_agreement"] = float(out["ref_agree"] / out["ref_both"]) if out["ref_both"] else float("nan")
    man = meta["manual"].to_numpy(dtype=float, na_value=np.nan)
    has = np.isfinite(man)
    out.update(manual_n=int(has.sum()), manual_decided=int((has & (rec != 0)).sum()),
               manual_match=int((has & (rec == man)).sum()),
               manual_wrong=int((has & (rec != 0) & (rec != man)).sum()),
               manual_match_argmax=int((has & (np.where(p > 0.5, -1, 1) == man)).sum()))
    return out


# --------------------------------------------------------------------------- training

def _setup(cfg: TrainConfig) -> None:
    os.environ.setdefault("TF_DETERMINISTIC_OPS", "1")
    from .pickers import set_threads
    set_threads(cfg.threads)
    import tensorflow as tf
    # The record promises "same config and seed -> same weights"; without op determinism
    # that is not true, so a failure here stops training instead of being swallowed.
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception as exc:  # noqa: BLE001 - re-raised with the reason
        raise RuntimeError(f"TensorFlow op determinism could not be enabled ({exc!r}): training would not be "
                           "reproducible (same config and seed -> same weights), so it does not start") from exc
    check = getattr(tf.config.experimental, "is_op_determinism_enabled", None)
    if check is not None and not check():
        raise RuntimeError("TensorFlow op determinism is not enabled after enable_op_determinism(): "
                           "training would not be reproducible, so it does not start")


def _new_model(seed: int):
    import keras
    from .pickers.cnn import build_cnn
    keras.utils.set_random_seed(seed)
    return build_cnn()


def _fit(model, X, y, epochs: int, lr: float | None, batch: int, seed: int) -> list[float]:
    """Fit ``epochs`` epochs with explicit seeded shuffling; ``lr=None`` keeps the current
    optimizer (and its state), otherwise the model is (re)compiled with Adam(lr)."""
    import keras
    from .pickers.cnn import preprocess
    keras.utils.set_random_seed(seed)
    if lr is not None:
        model.compile(optimizer=keras.optimizers.Adam(lr), loss="binary_crossentropy")
    rng = np.random.default_rng(seed)
    xp = preprocess(X)
    losses = []
    for _ in range(epochs):   # explicit shuffling: reproducible independent of Keras internals
        perm = rng.permutation(len(xp))
        h = model.fit(xp[perm], y[perm], batch_size=batch, epochs=1, shuffle=False, verbose=0)
        losses.append(float(h.history["loss"][-1]))
    return losses


def _predict(model, X):
    """prob_down_recorded of raw windows X (same preprocessing as CNNPicker.predict)."""
    from .pickers.cnn import preprocess
    if len(X) == 0:
        return np.zeros(0, np.float32)
    xp = preprocess(X)
    out = [np.asarray(model(xp[i:i + 4096], training=False)).reshape(-1) for i in range(0, len(xp), 4096)]
    return np.concatenate(out).astype(np.float32)


def _synthetic_accuracy(p, y, snr) -> dict:
    m = y != 0.5
    dec = (p[m] > 0.5).astype(float)
    out = {"accuracy": float((dec == y[m]).mean())}
    for lo, hi in ((1, 3), (3, 10), (10, 100)):
        k = (snr[m] >= lo) & (snr[m] < hi)
        if k.any():
            out[f"accuracy_snr_{lo}_{hi}"] = float((dec[k] == y[m][k]).mean())
    return out


def train_model(cfg: TrainConfig, bank: list[np.ndarray], real_X: np.ndarray | None,
                real_y: np.ndarray | None, seed: int):
    """Pre-train on synthetic data from ``bank`` then fine-tune on (real_X, real_y).

    Returns ``(model, snapshot, info)``: the fine-tuned model, the weights after pre-training
    only (``model.set_weights(snapshot)`` gives the synthetic-only recipe) and timings/losses.
    """
    t0 = time.perf_counter()
    Xs, ys, _ = synthetic_windows(bank, cfg.n_synthetic, seed + 1, cfg)
    t_gen = time.perf_counter() - t0
    model = _new_model(seed)
    pre_losses = _fit(model, Xs, ys, cfg.pretrain_epochs, cfg.lr, cfg.batch_size, seed + 2)
    snapshot = [w.copy() for w in model.get_weights()]
    ft_losses = []
    if real_X is not None and len(real_X) and cfg.finetune_epochs > 0:
        rng = np.random.default_rng(seed + 3)
        for ep in range(cfg.finetune_epochs):
            Xr, yr = augment_real(rng, real_X, real_y, bank, cfg.finetune_copies)
            Xm, ym, _ = synthetic_windows(bank, len(Xr), seed + 100 + ep, cfg)
            X = np.concatenate([Xr, Xm])
            y = np.concatenate([yr, ym])
            ft_losses += _fit(model, X, y, 1, cfg.finetune_lr if ep == 0 else None, cfg.batch_size, seed + 200 + ep)
    info = {"pretrain_loss": pre_losses, "finetune_loss": ft_losses,
            "synthetic_generation_s": round(t_gen, 2), "seconds": round(time.perf_counter() - t0, 2)}
    return model, snapshot, info


def _bank(real: RealData, events) -> list[np.ndarray]:
    return [s for e in events for s in real.noise.get(e, [])]


def _weights_path(cfg: TrainConfig) -> Path:
    return Path(cfg.out_dir) / f"{cfg.model_name}.weights.h5"


def file_sha256(path: Path) -> str:
    """SHA-256 (hex) of a file's bytes (a weights file's integrity: ``weights_sha256``)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_digest(weights) -> str:
    """sha256 over the weight arrays (shape, dtype, bytes): equal weights <=> equal digest.

    The HDF5 file's own bytes differ between saves of identical weights (HDF5 metadata), so
    reproducibility is checked on this digest; ``weights_sha256`` guards the file's integrity.
    """
    h = hashlib.sha256()
    for w in weights:
        a = np.ascontiguousarray(w)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _versions() -> dict:
    import keras
    import tensorflow as tf
    import obspy
    return {"tensorflow": tf.__version__, "keras": keras.__version__, "numpy": np.__version__,
            "obspy": obspy.__version__}


def train(config: TrainConfig | None = None) -> dict:
    """Run the recipe of the module docstring; returns the training record.

    The record is what ``<out_dir>/<model_name>.json`` holds (written when ``config.write``),
    plus ``record["_model"]``: the trained Keras model (not serialised).  Raises
    :class:`~pipeline.errors.InputError` when ``config.data_dir`` has no waveforms.
    """
    cfg = config or TrainConfig()
    t_start = time.perf_counter()
    _setup(cfg)
    from .pickers import calibration as C
    from .pickers.cnn import architecture_config
    from .pickers.onset import OnsetPicker

    real = load_real(cfg.data_dir)
    events = sorted(real.meta["event_id"].unique())
    lab = real.labelled()
    meta = real.meta
    record: dict = {
        "model": cfg.model_name,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "architecture": architecture_config(),
        "preprocessing": {"window": "600 samples at 500 Hz, P at index 299 (pipeline.picking.waveforms.p_window)",
                          "crop": "samples 199..398 (P at crop index 100)",
                          "normalisation": "minus mean of crop[0:80], divided by max |crop|"},
        "output": "sigmoid = probability that the RECORDED first motion is down (label 1 = down)",
        "antisymmetric": "p(-x) = 1 - p(x) by construction",
        "config": asdict(cfg) | {"data_dir": "<shared toc2me>", "out_dir": "<out_dir>"},
        "seed": cfg.seed,
        "data": {
            "events": events,
            "noise_segments": {e: len(real.noise.get(e, [])) for e in events},
            "noise_seconds": round(sum(s.size for v in real.noise.values() for s in v) / W.TARGET_RATE, 1),
            "noise_source": "pre-P part (start .. P-0.1 s) of live DHZ/DH1/DH2 traces, read from SAC at training time",
            "n_vertical_windows": int(len(meta)),
            "n_labelled": int(lab.sum()),
            "labels": meta.loc[lab, "label_source"].value_counts().to_dict(),
            "label_convention": "1 = recorded down: manual recorded -1, or eqpolarity_filtered p >= 0.95",
            "rejects": real.rejects.to_frame()[["file", "reason"]].to_dict("records"),
        },
        "versions": _versions(),
    }
    onset_p = OnsetPicker().predict(real.windows)
    record["baseline_onset"] = {e: evaluate(onset_p[(meta.event_id == e).to_numpy()],
                                            meta[meta.event_id == e], 0.25, 0.75) for e in events}
    record["baseline_onset"]["all"] = evaluate(onset_p, meta, 0.25, 0.75)
    record["reference_band_note"] = "reference (eqpolarity) confident band: p <= 0.05 or >= 0.95"

    # ---- leave-one-event-out
    held = {"synthetic": np.full(len(meta), np.nan), "finetuned": np.full(len(meta), np.nan)}
    if cfg.loeo and len(events) >= 2:
        folds = []
        syn_val = {"synthetic": [], "finetuned": []}
        for k, test_ev in enumerate(events):
            train_evs = [e for e in events if e != test_ev]
            tr = (meta.event_id.isin(train_evs) & lab).to_numpy()
            te = (meta.event_id == test_ev).to_numpy()
            log.info("LOEO fold %d: train %s, test %s", k, train_evs, test_ev)
            model, snap, info = train_model(cfg, _bank(real, train_evs), real.windows[tr],
                                            meta.loc[tr, "label"].to_numpy(np.float32), cfg.seed + 1000 * (k + 1))
            Xv, yv, sv = synthetic_windows(_bank(real, train_evs), cfg.n_val_synthetic, cfg.seed + 1000 * (k + 1) + 7, cfg)
            keep = yv != 0.5
            p_ft = _predict(model, real.windows[te])
            pv_ft = _predict(model, Xv)
            model.set_weights(snap)
            p_syn = _predict(model, real.windows[te])
            pv_syn = _predict(model, Xv)
            held["finetuned"][te] = p_ft
            held["synthetic"][te] = p_syn
            syn_val["finetuned"].append((pv_ft[keep], yv[keep]))
            syn_val["synthetic"].append((pv_syn[keep], yv[keep]))
            folds.append({"test_event": test_ev, "train_events": train_evs, "n_train_labelled": int(tr.sum()),
                          "train": info,
                          "synthetic_ref_band": evaluate(p_syn, meta[te], 0.05, 0.95),
                          "finetuned_ref_band": evaluate(p_ft, meta[te], 0.05, 0.95),
                          "synthetic_validation": {"synthetic": _synthetic_accuracy(pv_syn, yv, sv),
                                                   "finetuned": _synthetic_accuracy(pv_ft, yv, sv)}})
        record["loeo"] = {"folds": folds}
        # choose the recipe and the band on the pooled held-out predictions
        y = meta["label"].to_numpy()
        recipes = {}
        for name, p in held.items():
            gp = np.concatenate([a for a, _ in syn_val[name]])
            gy = np.concatenate([b for _, b in syn_val[name]])
            cal = C.calibrate(p[lab], y[lab], cfg.target_accuracy, guard_prob=gp, guard_label=gy,
                              source=f"LOEO held-out real traces ({name}); guard: held-out synthetic onsets")
            recipes[name] = {"calibration": cal.to_dict(),
                             "pooled": evaluate(p, meta, cal.lower, cal.upper),
                             "per_event": {e: evaluate(p[(meta.event_id == e).to_numpy()], meta[meta.event_id == e],
                                                       cal.lower, cal.upper) for e in events}}
        def score(r):
            s = r["pooled"]
            ok = s["ref_agreement"] >= cfg.target_accuracy
            return (ok, s["ref_coverage"], s["manual_match"])
        chosen = max(recipes, key=lambda r: score(recipes[r]))
        record["loeo"]["recipes"] = recipes
        record["loeo"]["chosen_recipe"] = chosen
        record["loeo"]["held_out_predictions"] = [
            {"event_id": e, "station": s, "p_synthetic": float(a), "p_finetuned": float(b), "label": (None if np.isnan(l) else float(l))}
            for e, s, a, b, l in zip(meta.event_id, meta.station, held["synthetic"], held["finetuned"], y)]
        calib = C.Calibration.from_dict(recipes[chosen]["calibration"])
        from .nested import nested_from_record
        nest = nested_from_record(record | {"config": asdict(cfg)})
        record["loeo"]["nested"] = {k: v for k, v in nest.items() if k != "trace"}
    else:
        chosen = "finetuned" if cfg.finetune_epochs > 0 else "synthetic"
        calib = None

    # ---- production model on everything
    if cfg.final:
        tr = lab
        model, snap, info = train_model(cfg, _bank(real, events), real.windows[tr],
                                        meta.loc[tr, "label"].to_numpy(np.float32), cfg.seed)
        if chosen == "synthetic":
            model.set_weights(snap)
        p_all = _predict(model, real.windows)
        if calib is None:   # no held-out events: fall back to the reference band, say so
            calib = C.Calibration(0.05, 0.95, cfg.target_accuracy, False, float("nan"), float("nan"), 0,
                                  "none (no LOEO run): reference band 0.05/0.95")
        record["final"] = {"recipe": chosen, "train": info, "n_labelled": int(tr.sum())}
        record["calibration"] = calib.to_dict()
        ins = {e: evaluate(p_all[(meta.event_id == e).to_numpy()], meta[meta.event_id == e], calib.lower, calib.upper)
               for e in events}
        ins["all"] = evaluate(p_all, meta, calib.lower, calib.upper)
        record["in_sample"] = ins
        record["in_sample_note"] = ("the production model was fine-tuned on these events' labels: these numbers are "
                                    "optimistic; the nested LOEO numbers (loeo.nested) are the honest ones")
        Xv, yv, sv = synthetic_windows(_bank(real, events), cfg.n_val_synthetic, cfg.seed + 7, cfg)
        record["synthetic_validation"] = _synthetic_accuracy(_predict(model, Xv), yv, sv)
        record["n_params"] = int(model.count_params())
        record["training_seconds"] = round(time.perf_counter() - t_start, 1)
        if cfg.write:
            out = Path(cfg.out_dir)
            out.mkdir(parents=True, exist_ok=True)
            wpath = _weights_path(cfg)
            from .pickers.cnn import build_cnn
            clean = build_cnn(**architecture_config())   # weights only, no optimizer state
            clean.set_weights(model.get_weights())
            clean.save_weights(str(wpath))
            record["weights_file"] = wpath.name
            record["weights_sha256"] = file_sha256(wpath)
            record["weights_bytes"] = wpath.stat().st_size
            record["weights_digest"] = weights_digest(model.get_weights())
            (out / f"{cfg.model_name}.json").write_text(json.dumps(_jsonable(record), indent=1) + "\n")
        record["_model"] = model
    return record


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def summary(record: dict) -> str:
    """A few lines with the numbers that matter (held-out first, then in-sample)."""
    def line(name, e):
        return (f"{name:34s} agree {e['ref_agree']}/{e['ref_both']} ({e['ref_agreement']:.1%}) "
                f"decided {e['ref_both']}/{e['ref_n']} ({e['ref_coverage']:.1%}) "
                f"manual {e['manual_match']}/{e['manual_n']} (wrong {e['manual_wrong']})")
    out = []
    cal = record.get("calibration", {})
    if cal:
        out.append(f"band: undetermined for {cal['lower']:.3g} < p < {cal['upper']:.3g} ({cal['source']})")
    loeo = record.get("loeo")
    if loeo:
        from .nested import nested_from_record, summary_line
        nest = nested_from_record(record)
        if nest is not None:
            out.append(f"nested LOEO ({nest['n_events']} events, {nest['n_labelled']} labelled traces; 95 % Wilson "
                       f"intervals): {summary_line(nest['pooled'])}")
            out += [f"  fold {f['test_event']}: {f['recipe']}, band {f['lower']:g}/{f['upper']:g}: "
                    f"{summary_line(f['outer'])}" for f in nest["folds"]]
        for name, r in loeo["recipes"].items():
            out.append(line(f"LOEO, band chosen on itself, {name}", r["pooled"]))
        out.append(f"chosen recipe: {loeo['chosen_recipe']}")
    if "in_sample" in record:
        out.append(line("in-sample (optimistic)", record["in_sample"]["all"]))
    if "baseline_onset" in record:
        out.append(line("onset baseline", record["baseline_onset"]["all"]))
    if "training_seconds" in record:
        out.append(f"training time {record['training_seconds']} s; {record.get('n_params')} parameters; "
                   f"weights {record.get('weights_bytes', '?')} bytes")
    return "\n".join(out)


def load_record(path: str | Path | None = None) -> dict:
    """The JSON training record of the committed model (or of ``path``)."""
    from .pickers.cnn import DEFAULT_RECORD
    return json.loads(Path(path or DEFAULT_RECORD).read_text())


def model_eval_rows(record: dict | None = None) -> pd.DataFrame:
    """The ``model_eval`` table (long form) from a training record.

    model: ``cnn`` (production), ``cnn_synthetic_only`` (LOEO recipe without fine-tuning),
    ``onset`` (baseline); dataset: ``loeo_selected_on_itself`` (the pooled LOEO predictions
    scored with the band and recipe chosen on them: optimistic; the nested, honest LOEO rows
    ``loeo_heldout`` come from :func:`pipeline.picking.evaluate.evaluate`), ``in_sample``
    (production model on its own training events: optimistic), ``synthetic_heldout``; kind:
    ``metric`` (value), ``calibration`` (x = mean predicted p, y = observed fraction
    recorded-down, value = n), ``training`` (x = epoch, y = loss).  Metric names:
    ``agreement_reference`` / ``coverage_reference`` (on the reference's confident
    stations) with 95 % Wilson intervals ``*_ci_low`` / ``*_ci_high``, ``manual_match`` /
    ``manual_wrong`` / ``manual_n``, ``band_lower`` / ``band_upper``, ``temperature``.
    """
    from .intervals import wilson_interval
    record = record if record is not None else load_record()
    rows: list[dict] = []

    def metric(model, dataset, name, value):
        rows.append(dict(model=model, dataset=dataset, kind="metric", name=name, x=None, y=None,
                         value=None if value is None else float(value)))

    def block(model, dataset, e):
        metric(model, dataset, "agreement_reference", e["ref_agreement"])
        for name, (lo, hi) in (("agreement_reference", wilson_interval(e["ref_agree"], e["ref_both"])),
                               ("coverage_reference", wilson_interval(e["ref_both"], e["ref_n"]))):
            metric(model, dataset, f"{name}_ci_low", lo)
            metric(model, dataset, f"{name}_ci_high", hi)
        metric(model, dataset, "coverage_reference", e["ref_coverage"])
        metric(model, dataset, "n_reference", e["ref_n"])
        metric(model, dataset, "manual_match", e["manual_match"])
        metric(model, dataset, "manual_wrong", e["manual_wrong"])
        metric(model, dataset, "manual_n", e["manual_n"])

    loeo = record.get("loeo")
    self_ds = "loeo_selected_on_itself"   # band and recipe chosen on these predictions: optimistic
    if loeo:
        names = {"finetuned": "cnn", "synthetic": "cnn_synthetic_only"}
        chosen = loeo["chosen_recipe"]
        for recipe, r in loeo["recipes"].items():
            model = "cnn" if recipe == chosen else names.get(recipe, recipe)
            block(model, self_ds, r["pooled"])
            cal = r["calibration"]
            metric(model, self_ds, "band_lower", cal["lower"])
            metric(model, self_ds, "band_upper", cal["upper"])
            metric(model, self_ds, "temperature", cal["temperature"])
            for curve in ("reliability", "reliability_calibrated"):
                for pt in cal.get(curve, []):
                    rows.append(dict(model=model, dataset=self_ds, kind="calibration", name=curve,
                                     x=pt["mean_pred"], y=pt["frac_down"], value=pt["n"]))
    if "in_sample" in record:
        block("cnn", "in_sample", record["in_sample"]["all"])
    if "baseline_onset" in record:
        block("onset", "in_sample", record["baseline_onset"]["all"])
        block("onset", self_ds, record["baseline_onset"]["all"])   # no training: same numbers
    for k, v in record.get("synthetic_validation", {}).items():
        metric("cnn", "synthetic_heldout", k, v)
    fin = record.get("final", {}).get("train", {})
    for series in ("pretrain_loss", "finetune_loss"):
        for i, loss in enumerate(fin.get(series, [])):
            rows.append(dict(model="cnn", dataset="training", kind="training", name=series,
                             x=float(i), y=float(loss), value=None))
    df = pd.DataFrame(rows, columns=["model", "dataset", "kind", "name", "x", "y", "value"])
    for c in ("x", "y", "value"):
        df[c] = df[c].astype(float)
    return df


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.picking.training", description=__doc__.split("\n")[0])
    TrainConfig.add_arguments(p)
    cfg = TrainConfig.from_args(p.parse_args(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    rec = train(cfg)
    print(summary(rec))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
