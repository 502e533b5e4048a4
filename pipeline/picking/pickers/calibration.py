"""The "undetermined" band: thresholds chosen on held-out events, not fixed at 0.05/0.95.

A picker gives p = prob_down_recorded.  It decides "recorded down" when p >= upper,
"recorded up" when p <= lower, and abstains in between.  :func:`choose_band` picks the
band from held-out predictions (leave-one-event-out in :mod:`pipeline.picking.training`): the
**widest-coverage** band whose accuracy on the decided held-out traces reaches
``target_accuracy``.  Bands are symmetric (lower = 1 - upper), which matches the
antisymmetric CNN (p(-x) = 1 - p(x)); candidate ``upper`` values come from a fixed grid
(:data:`UPPER_GRID`, from 0.6: a picker always keeps some undetermined band) so a handful of
held-out traces cannot tune it to the last digit.  :func:`calibrate` can take a second
held-out set (e.g. synthetic onsets with exact labels, rich in low-SNR cases that the
labelled real traces lack) and then keeps the stricter of the two bands.

Also here: reliability-curve points (stored with the model for the model-evaluation page)
and temperature scaling (one scalar T on the logit, fitted by NLL) to report calibrated
probabilities.  All functions are plain NumPy.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: candidate ``upper`` thresholds, coarse on purpose (lower = 1 - upper)
UPPER_GRID = (0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 0.999, 0.9999)


def _clean(prob, label):
    p = np.asarray(prob, dtype=np.float64).reshape(-1)
    y = np.asarray(label, dtype=np.float64).reshape(-1)
    ok = np.isfinite(p) & np.isfinite(y)
    return p[ok], y[ok]


def band_stats(prob, label, lower: float, upper: float) -> dict:
    """Coverage and accuracy of the band on (prob, label) (label 1 = recorded down)."""
    p, y = _clean(prob, label)
    down, up = p >= upper, p <= lower
    dec = down | up
    correct = (down & (y == 1)) | (up & (y == 0))
    n_dec = int(dec.sum())
    return {"lower": float(lower), "upper": float(upper), "n": int(len(p)), "n_decided": n_dec,
            "coverage": float(n_dec / len(p)) if len(p) else float("nan"),
            "n_correct": int(correct.sum()),
            "accuracy": float(correct.sum() / n_dec) if n_dec else float("nan")}


def choose_band(prob, label, target_accuracy: float = 0.98, grid=UPPER_GRID) -> dict:
    """Widest-coverage symmetric band reaching ``target_accuracy`` on held-out data.

    Returns the :func:`band_stats` of the chosen band plus ``target_accuracy`` and
    ``reached`` (False when no grid band reaches the target: the strictest one is returned).
    Ties in coverage go to the stricter band.
    """
    best = None
    table = []
    for u in sorted(grid):
        s = band_stats(prob, label, round(1.0 - u, 10), u)
        table.append(s)
        if s["n_decided"] and s["accuracy"] >= target_accuracy:
            if best is None or s["coverage"] > best["coverage"]:
                best = s
    reached = best is not None
    if best is None:
        best = table[-1]
    return dict(best, target_accuracy=float(target_accuracy), reached=reached, scan=table)


def reliability_curve(prob, label, n_bins: int = 10) -> list[dict]:
    """Reliability points: per probability bin, mean predicted p and observed fraction down."""
    p, y = _clean(prob, label)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, n_bins - 1)
    out = []
    for b in range(n_bins):
        m = idx == b
        if not m.any():
            continue
        out.append({"bin_lo": float(edges[b]), "bin_hi": float(edges[b + 1]), "n": int(m.sum()),
                    "mean_pred": float(p[m].mean()), "frac_down": float(y[m].mean())})
    return out


def _logit(p):
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def apply_temperature(prob, temperature: float) -> np.ndarray:
    """sigmoid(logit(p) / T): T > 1 softens over-confident outputs."""
    return 1.0 / (1.0 + np.exp(-_logit(prob) / float(temperature)))


def fit_temperature(prob, label, t_min: float = 0.05, t_max: float = 50.0) -> float:
    """Temperature minimising the binary NLL of (prob, label) (golden-section on log T)."""
    p, y = _clean(prob, label)
    if len(p) == 0:
        return 1.0
    z = _logit(p)

    def nll(log_t):
        q = np.clip(1.0 / (1.0 + np.exp(-z / np.exp(log_t))), 1e-12, 1 - 1e-12)
        return -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))

    a, b = np.log(t_min), np.log(t_max)
    g = (np.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(80):
        if nll(c) < nll(d):
            b = d
        else:
            a = c
        c, d = b - g * (b - a), a + g * (b - a)
    return float(np.exp((a + b) / 2))


def brier(prob, label) -> float:
    p, y = _clean(prob, label)
    return float(np.mean((p - y) ** 2)) if len(p) else float("nan")


@dataclass
class Calibration:
    """What is stored with a model: the band, how it was chosen, and reliability points."""

    lower: float
    upper: float
    target_accuracy: float
    reached: bool
    coverage: float
    accuracy: float
    n: int
    source: str
    temperature: float = 1.0
    reliability: list = field(default_factory=list)
    reliability_calibrated: list = field(default_factory=list)
    guard: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Calibration":
        keys = cls.__dataclass_fields__
        return cls(**{k: v for k, v in d.items() if k in keys})


def calibrate(prob, label, target_accuracy: float = 0.98, source: str = "held-out",
              n_bins: int = 10, guard_prob=None, guard_label=None) -> Calibration:
    """Band + temperature + reliability curves from held-out (prob, label).

    With ``guard_prob``/``guard_label`` (a second held-out set) the band is the stricter of
    the bands chosen on each set; coverage/accuracy reported are those on (prob, label).
    """
    band = choose_band(prob, label, target_accuracy)
    guard = None
    if guard_prob is not None:
        guard = choose_band(guard_prob, guard_label, target_accuracy)
        if guard["upper"] > band["upper"]:
            band = dict(band_stats(prob, label, guard["lower"], guard["upper"]),
                        reached=band["reached"] and guard["reached"])
        else:
            band = dict(band, reached=band["reached"] and guard["reached"])
    t = fit_temperature(prob, label)
    return Calibration(lower=band["lower"], upper=band["upper"], target_accuracy=float(target_accuracy),
                       reached=bool(band["reached"]), coverage=band["coverage"], accuracy=band["accuracy"],
                       n=band["n"], source=source, temperature=t,
                       reliability=reliability_curve(prob, label, n_bins),
                       reliability_calibrated=reliability_curve(apply_temperature(prob, t), label, n_bins),
                       guard=None if guard is None else {k: guard[k] for k in
                                                         ("lower", "upper", "n", "coverage", "accuracy", "reached")})
