"""Run every benchmark script in bench/ (bench_*.py) one after another; `make bench`.

Each runs with its defaults, e.g. bench_archive.py: synthetic archives of 40 and 160 events
built with 1 and 2 workers, a killed-and-resumed build, the event page's waveform read
(~25 min on 2 cores; `bench/bench_archive.py --quick` for a smoke run of a few minutes);
bench_browser.py: every page in headless Chromium, demo and ToC2ME builds (~10 min;
`--quick`: demo, one load per page, ~2 min).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent


def main() -> int:
    failed = []
    for script in sorted(here.glob("bench_*.py")):
        print(f"\n=== {script.name} ===", flush=True)
        if subprocess.call([sys.executable, str(script)], cwd=here.parent) != 0:
            failed.append(script.name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
