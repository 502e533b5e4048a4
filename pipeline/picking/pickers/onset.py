"""Classical first-motion baseline (no weights; docs/polarity.md "A classical baseline").

On the raw 500 Hz window with P at index 299:

* noise mean and sigma from ``[P - 0.5 s, P - 10 ms)`` (samples 49..293);
* onset = first sample in ``[P - 10 ms, P + 40 ms]`` (samples 294..319) with
  ``|x - mean| > k * sigma`` (k = 3);
* recorded polarity = sign of ``x - mean`` at the onset; abstain when no sample exceeds.

``predict`` returns a pseudo-probability so the interface matches the learned pickers:
1.0 (recorded down), 0.0 (recorded up), 0.5 (abstain, also for flat noise).
"""
from __future__ import annotations

import numpy as np

from ..waveforms import P_INDEX, TARGET_RATE


class OnsetPicker:
    name = "onset"

    def __init__(self, k: float = 3.0, noise_start_s: float = 0.5, guard_s: float = 0.010,
                 search_end_s: float = 0.040, rate: float = TARGET_RATE):
        self.k = float(k)
        self.n0 = P_INDEX - int(round(noise_start_s * rate))      # 49
        self.n1 = P_INDEX - int(round(guard_s * rate))            # 294 (exclusive end of noise)
        self.s0 = self.n1                                         # search starts at P - 10 ms
        self.s1 = P_INDEX + int(round(search_end_s * rate)) + 1   # 320 (P + 40 ms inclusive)

    def onset_index(self, windows: np.ndarray) -> np.ndarray:
        """Onset sample index in the window (-1 where it abstains)."""
        w = np.atleast_2d(np.asarray(windows, dtype=np.float64))
        noise = w[:, self.n0:self.n1]
        mu = noise.mean(axis=1, keepdims=True)
        sd = noise.std(axis=1, keepdims=True)
        dev = np.abs(w[:, self.s0:self.s1] - mu)
        hit = (dev > self.k * sd) & (sd > 0)
        first = np.where(hit.any(axis=1), hit.argmax(axis=1) + self.s0, -1)
        return first

    def predict(self, windows: np.ndarray) -> np.ndarray:
        w = np.atleast_2d(np.asarray(windows, dtype=np.float64))
        idx = self.onset_index(w)
        mu = w[:, self.n0:self.n1].mean(axis=1)
        out = np.full(len(w), 0.5)
        ok = idx >= 0
        rows = np.flatnonzero(ok)
        val = w[rows, idx[ok]] - mu[ok]
        out[rows] = np.where(val < 0, 1.0, 0.0)
        return out
