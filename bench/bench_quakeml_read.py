"""QuakeML reading speed of the files source, to decide whether a streaming reader pays.

    .venv/bin/python bench/bench_quakeml_read.py [--events 20000] [--picks 0] [--repeat 1] [--skip-a]

Writes a synthetic QuakeML of ``--events`` events (each: one origin, one magnitude, ``--picks``
P picks with arrivals; every tenth event a focal mechanism) into a temporary folder, then
times, in this one process:

a. ``obspy.read_events(path, format='QUAKEML')`` - the object model the reader walks;
b. :func:`pipeline.ingest.catalog_formats.read_quakeml` with ``reader="obspy"`` - the whole
   files-source reader through ObsPy (an lxml well-formedness pass, then (a), then the walk);
b2. the same with ``reader="fast"`` (the default: :mod:`pipeline.ingest.quakeml_stream`);
c. ``lxml.etree.parse`` alone and d. a bare ``lxml.etree.iterparse`` pass over every element:
   floors for any lxml-based streaming reader of the fields we use.

Each figure is the best of ``--repeat`` passes, in seconds and events per second; the last
line is the speed ratio b2 / b. The two readers' tables are checked equal first.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from pipeline.ingest import catalog_formats  # noqa: E402
from pipeline.rejects import Rejects  # noqa: E402

_HEAD = ('<?xml version="1.0" encoding="utf-8"?>\n<q:quakeml xmlns:q="http://quakeml.org/xmlns/quakeml/1.2" '
         'xmlns="http://quakeml.org/xmlns/bed/1.2">\n<eventParameters publicID="smi:local/cat">\n')
_TAIL = "</eventParameters>\n</q:quakeml>\n"


def _event(i: int, n_picks: int) -> str:
    sec = i % 60
    t = f"2016-11-{1 + (i // 86400) % 28:02d}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{sec:02d}.{i % 1000:03d}Z"
    picks = "".join(
        f'<pick publicID="smi:local/p/{i}/{k}"><time><value>{t}</value></time>'
        f'<waveformID networkCode="XX" stationCode="S{k:03d}" channelCode="HHZ"/>'
        f'<phaseHint>P</phaseHint><polarity>{"positive" if k % 2 else "negative"}</polarity></pick>'
        for k in range(n_picks))
    arrivals = "".join(f'<arrival publicID="smi:local/a/{i}/{k}"><pickID>smi:local/p/{i}/{k}</pickID>'
                       f'<phase>P</phase></arrival>' for k in range(n_picks))
    fm = ("" if i % 10 else
          f'<focalMechanism publicID="smi:local/fm/{i}"><nodalPlanes><nodalPlane1><strike><value>{i % 360}'
          f'</value></strike><dip><value>60</value></dip><rake><value>-90</value></rake></nodalPlane1>'
          f'</nodalPlanes></focalMechanism>')
    return (f'<event publicID="smi:local/e/{i}"><preferredOriginID>smi:local/o/{i}</preferredOriginID>'
            f'<preferredMagnitudeID>smi:local/m/{i}</preferredMagnitudeID>{picks}'
            f'<origin publicID="smi:local/o/{i}"><time><value>{t}</value></time>'
            f'<latitude><value>{54.3 + (i % 100) * 1e-4}</value></latitude>'
            f'<longitude><value>{-117.2 - (i % 77) * 1e-4}</value></longitude>'
            f'<depth><value>{3000 + i % 500}</value></depth>{arrivals}</origin>'
            f'<magnitude publicID="smi:local/m/{i}"><mag><value>{(i % 30) / 10 - 1:.1f}</value></mag>'
            f'<type>ML</type></magnitude>{fm}</event>\n')


def write(path: Path, n: int, n_picks: int) -> None:
    with open(path, "w") as fh:
        fh.write(_HEAD)
        for i in range(n):
            fh.write(_event(i, n_picks))
        fh.write(_TAIL)


def _best(fn, repeat: int, keep: list | None = None) -> float:
    """Best wall time of ``repeat`` calls of ``fn``; its last result is appended to ``keep``."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    if keep is not None:
        keep.append(out)
    return best


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20000)
    ap.add_argument("--picks", type=int, default=0, help="P picks per event")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-a", action="store_true", help="skip (a), which (b) contains (saves minutes at 20k)")
    args = ap.parse_args(argv)
    from lxml import etree
    from obspy import read_events
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.xml"
        write(path, args.events, args.picks)
        size = path.stat().st_size / 1e6
        out: list = []
        rows = [] if args.skip_a else [
            ("a. obspy.read_events", _best(lambda: read_events(str(path), format="QUAKEML"), args.repeat))]
        rows += [
            ("b. read_quakeml(reader='obspy')",
             _best(lambda: catalog_formats.read_quakeml(path, Rejects(), reader="obspy"), args.repeat, out)),
            ("b2. read_quakeml(reader='fast')",
             _best(lambda: catalog_formats.read_quakeml(path, Rejects(), reader="fast"), args.repeat, out)),
            ("c. lxml etree.parse", _best(lambda: etree.parse(str(path)), args.repeat)),
            ("d. lxml iterparse (all elements)",
             _best(lambda: sum(1 for _ in etree.iterparse(str(path), events=("end",))), args.repeat)),
        ]
        slow, fast = out
        assert len(fast[0]) == args.events and len(fast[2]) == (args.events + 9) // 10
        for a, b in zip(fast, slow):
            pd.testing.assert_frame_equal(a, b)
    print(f"{args.events} events, {args.picks} picks each, {size:.1f} MB of QuakeML")
    for name, s in rows:
        print(f"{name:36s} {s:8.2f} s  {args.events / s:10,.0f} events/s")
    b, b2 = (s for name, s in rows if name.startswith(("b.", "b2.")))
    print(f"fast / obspy reader speed: {b / b2:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
