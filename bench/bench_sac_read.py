"""SAC reading speed: ObsPy's readers against pipeline.io.sac, per file and per event folder.

    .venv/bin/python bench/bench_sac_read.py [--events 30] [--repeat 2]

Writes ``--events`` demo events as SAC (``pipeline.demo.waveforms.write_sac_events``, ToC2ME
layout: 66 stations x 3 components, 5001 samples, ~20 kB per file) into a temporary folder,
then reads every file, all in this one process, with:

a. ``obspy.read(path)`` (format detection: the old ``pipeline.picking.waveforms`` path) - the baseline;
b. ``obspy.read(path, format='SAC')``;
c. ``obspy.io.sac.SACTrace.read(path)``;
d. ``pipeline.io.sac.read(path)`` (the new reader);
e. ``pipeline.picking.waveforms.read_event`` over the event folders, ``sac_reader='obspy'`` (old) and
   ``'numpy'`` (new): reading plus every trace check and record;

plus the floor, the file bytes alone (``Path.read_bytes``). Files are in the page cache (just
written, and one warm-up pass), so the figures are CPU cost, not disk. Each reader's time is
the best of ``--repeat`` passes; figures are files per second and the ratio to (a). The new
reader's samples, start times, rates and picks are checked equal to (a)'s, and both
``read_event`` paths must give identical records.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from pipeline.demo import scenario as demo, waveforms as dw  # noqa: E402
from pipeline.io import sac  # noqa: E402
from pipeline.picking import waveforms  # noqa: E402


def _best(fn, items, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for it in items:
            fn(it)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=2, help="passes per reader; the best is kept")
    args = ap.parse_args()

    import obspy
    from obspy.io.sac import SACTrace

    warnings.simplefilter("ignore")      # ObsPy's SAC delta-rounding note, once per file
    with tempfile.TemporaryDirectory(prefix="bench_sac_") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        dw.write_sac_events(root, demo.generate(), max_events=args.events)
        files = sorted(root.glob("*/*.SAC"))
        folders = waveforms.list_event_folders(root)
        print(f"{len(folders)} demo events, {len(files)} SAC files of {files[0].stat().st_size} bytes "
              f"(written in {time.perf_counter() - t0:.1f} s); best of {args.repeat} passes")
        for p in files:                  # warm-up: page cache, lazy imports
            p.read_bytes()
            sac.read(p)
        obspy.read(str(files[0]))

        # the new reader gives ObsPy's traces (checked before timing)
        for p in files:
            sf, tr = sac.read(p), obspy.read(str(p))[0]
            assert np.array_equal(sf.data, tr.data) and sf.starttime_ns == tr.stats.starttime.ns, p
            assert sf.sampling_rate == tr.stats.sampling_rate and sf.t1 == tr.stats.sac.get("t1"), p

        runs = [
            ("a obspy.read(path)", lambda p: obspy.read(str(p))),
            ("b obspy.read(path, format='SAC')", lambda p: obspy.read(str(p), format="SAC")),
            ("c SACTrace.read(path)", lambda p: SACTrace.read(str(p))),
            ("d pipeline.io.sac.read(path)", sac.read),
            ("  raw bytes (floor)", lambda p: p.read_bytes()),
        ]
        base = None
        for name, fn in runs:
            dt = _best(fn, files, args.repeat)
            rate = len(files) / dt
            base = base or rate
            print(f"{name:36s} {dt:7.2f} s  {rate:9.0f} files/s  {1e3 * dt / len(files):7.3f} ms/file  "
                  f"({rate / base:6.1f}x a)")

        events = {}
        for reader in ("obspy", "numpy"):
            out = []
            dt = _best(lambda f: out.append(waveforms.read_event(f, sac_reader=reader)), folders, args.repeat)
            events[reader] = out[-len(folders):]
            rate = len(files) / dt
            print(f"{'e read_event(sac_reader=' + repr(reader) + ')':36s} {dt:7.2f} s  {rate:9.0f} files/s  "
                  f"{1e3 * dt / len(files):7.3f} ms/file  ({rate / base:6.1f}x a)")
        for old, new in zip(events["obspy"], events["numpy"]):
            assert len(old.traces) == len(new.traces)
            for x, y in zip(old.traces, new.traces):
                assert (x.seed_id, x.starttime.ns, x.p_time.ns, x.p_source, x.original_rate) == \
                       (y.seed_id, y.starttime.ns, y.p_time.ns, y.p_source, y.original_rate)
                assert np.array_equal(x.data, y.data)
        n = sum(len(e.traces) for e in events["numpy"])
        print(f"read_event: {n} traces kept, identical on both paths (dead traces are rejects)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
