"""Throughput of the polarity pickers on the same windows: onset baseline, CCT, CNN.

    .venv/bin/python bench/bench_pickers.py [--n 10000] [--threads 2] [--cct-n N]

Windows: synthetic 600-sample onsets built from the shared ToC2ME pre-P noise when the data
are present (``TOC2ME_DIR`` or ../shared/toc2me), else Gaussian noise; the speed does not
depend on the content.  The CCT is randomly initialised (same architecture and cost as the
published weights).  Each picker is warmed up first, then timed on all windows, including its
preprocessing.  Prints traces/s, the CNN/CCT ratio and the time to pick 1.5 M traces (the
full ToC2ME set: ~21,600 events x 69 stations).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FULL_SET = 1_500_000


def _windows(n: int):
    import numpy as np
    from pipeline.picking import training as T
    try:
        real = T.load_real()
        X, _, _ = T.synthetic_windows(T._bank(real, T.SHARED_EVENTS), n, seed=123)
        return X, "synthetic onsets on real ToC2ME noise"
    except Exception:  # noqa: BLE001 - no shared data: content does not matter for speed
        return np.random.default_rng(0).normal(size=(n, 600)).astype(np.float32), "Gaussian noise"


def _rate(fn, X, repeat: int = 1) -> float:
    fn(X[:min(len(X), 256)])                      # warm-up (graph tracing, allocations)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn(X)
        best = min(best, time.perf_counter() - t)
    return len(X) / best


def _hms(seconds: float) -> str:
    h, r = divmod(int(round(seconds)), 3600)
    m, s = divmod(r, 60)
    return f"{h}h{m:02d}m{s:02d}s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="windows (default 10000)")
    ap.add_argument("--cct-n", type=int, default=None, help="time the CCT on the first N windows only")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    from pipeline.picking.pickers import set_threads
    set_threads(args.threads)
    from pipeline.picking.pickers.cct import CCTPicker
    from pipeline.picking.pickers.cnn import DEFAULT_WEIGHTS, CNNPicker, build_cnn
    from pipeline.picking.pickers.onset import OnsetPicker

    X, what = _windows(args.n)
    print(f"{len(X)} windows of 600 samples ({what}); {args.threads} TensorFlow threads; "
          f"{os.cpu_count()} CPUs visible")
    onset = OnsetPicker()
    cnn = CNNPicker.load() if DEFAULT_WEIGHTS.exists() else CNNPicker(build_cnn())
    cct = CCTPicker(batch_size=1024)
    r_onset = _rate(onset.predict, X, repeat=3)
    r_cnn = _rate(cnn.predict, X, repeat=3)
    Xc = X if args.cct_n is None else X[:args.cct_n]
    r_cct = _rate(cct.predict, Xc, repeat=1)
    print(f"{'picker':8s} {'params':>10s} {'traces/s':>12s} {'1.5 M traces':>14s}")
    for name, params, r in (("onset", 0, r_onset), ("cct", cct.model.count_params(), r_cct),
                            ("cnn", cnn.model.count_params(), r_cnn)):
        print(f"{name:8s} {params:>10,d} {r:>12,.0f} {_hms(FULL_SET / r):>14s}")
    print(f"CNN/CCT throughput ratio: {r_cnn / r_cct:,.0f}x (CCT timed on {len(Xc)} windows)")
    print(f"time to pick {FULL_SET:,} traces at the CNN rate: {_hms(FULL_SET / r_cnn)} "
          f"(CCT: {_hms(FULL_SET / r_cct)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
