"""SKHASH throughput: pure-Python vs Fortran grid search, 1 worker vs all cores.

Inputs are the demo scenario's true polarities (non-dead, non-nodal stations) of N events,
so the benchmark measures the inversion, not the picker. All four runs use the same events
in this one process; figures are events per second and ratios to the pure-Python 1-worker
baseline. Results must be identical across engines and worker counts (checked).

    .venv/bin/python bench/bench_skhash.py [--events 500]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from pipeline.demo import scenario as demo, waveforms as dw  # noqa: E402
from pipeline.mechanisms import skhash  # noqa: E402


#: the demo's edge events exceed SKHASH's 40-degree gap limit; time real grid searches instead
SETTINGS = {"max_agap": 90}


def inputs(n_events: int, data: dict | None = None):
    """(events, true polarities of live non-nodal traces, stations) of ``n_events`` demo events."""
    data = data if data is not None else demo.generate()
    plan = dw.plan_waveforms(data, dw.DEFAULT_SEED, n_events, None)
    meta = dw._meta(plan, ("Z",))
    ok = ~meta["dead"] & ~meta["near_nodal"]
    pol = meta.loc[ok, ["event_id", "network", "station"]].assign(polarity=meta.loc[ok, "true_polarity"].astype(int))
    ev = data["events"][data["events"]["event_id"].isin(pol["event_id"])]
    return ev, pol, data["stations"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=500)
    args = ap.parse_args()
    ev, pol, st = inputs(args.events)
    cores = os.cpu_count() or 1
    print(f"{len(ev)} demo events, {len(pol)} polarities, {cores} cores, "
          f"fortran available: {skhash.fortran_available()}")
    runs = [("python", False, 1), ("python", False, cores), ("fortran", True, 1), ("fortran", True, cores)]
    results, base = {}, None
    for name, fortran, workers in runs:
        if fortran and not skhash.fortran_available():
            print(f"{name:8s} x{workers}: skipped (Fortran grid search not built)")
            continue
        t0 = time.perf_counter()
        res = skhash.run_skhash_parallel(ev, pol, st, skhash.DEMO_VELOCITY_MODEL, SETTINGS,
                                        workers=workers, use_fortran=fortran)
        dt = time.perf_counter() - t0
        rate = len(ev) / dt
        base = base or rate
        results[(name, workers)] = res.preferred[["event_id", "strike", "dip", "rake", "quality"]].reset_index(drop=True)
        print(f"{name:8s} x{workers}: {dt:7.1f} s  {rate:6.2f} events/s  ({rate / base:4.1f}x the python x1 baseline); "
              f"solved {len(res.preferred)}, unsolved {len(res.unsolved)}")
    frames = {k: f.astype(str) for k, f in results.items()}
    ref_key = next(iter(frames))
    diffs = {k: int((f != frames[ref_key]).any(axis=1).sum()) if f.shape == frames[ref_key].shape else -1
             for k, f in frames.items()}
    print(f"events whose mechanism differs from {ref_key}: {diffs} "
          "(engines may differ only when an event has more than maxout acceptable planes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
