"""Run every benchmark script in bench/ (bench_*.py) one after another, then the load test;
`make bench`.

Each runs with its defaults, e.g. bench_archive.py: synthetic archives of 40 and 160 events
built with 1 and 2 workers, a killed-and-resumed build, the event page's waveform read
(~25 min on 2 cores; `bench/bench_archive.py --quick` for a smoke run of a few minutes);
bench_browser.py: every page in headless Chromium, demo and ToC2ME builds (~10 min;
`--quick`: demo, one load per page, ~2 min); bench_pages.py: each page's callbacks on the
1,000,000-event synthetic catalogue, time and peak extra memory per request (~2 min).

load.py (issue 10 #6): 20 simulated users for 60 s on the ToC2ME build (the one
bench_browser.py makes, ``.bench/browser-toc2me``; skipped without the raw files) and on
the 1,000,000-event synthetic catalogue of bench_map.py (``.bench/synthetic-1000000-1``,
~100 s to make the first time). Target: ToC2ME p95 <= 1 s with 0 errors.
``python bench/run_all.py --load-only [--load-users N] [--load-seconds S]`` runs just that
part (a smoke run with fewer users/seconds).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))

LOAD_USERS, LOAD_SECONDS = 20, 60
TOC2ME_P95_MS = 1000.0


def load_datasets() -> list[tuple[str, Path]]:
    """(name, data folder) for the load test: the ToC2ME build (made once, like
    bench_browser.py's) and the 1 M-event synthetic catalogue (made once, bench_map.py's)."""
    from bench_browser import BENCH_DIR, build, toc2me_input
    from bench_map import synthetic_dir

    out = []
    src = toc2me_input(None)
    if src is not None:
        out.append(("toc2me", build(BENCH_DIR / "browser-toc2me", "--source", "toc2me", "--input", str(src),
                                    "--no-pick", "--no-invert")))
    else:
        print("load: toc2me skipped (no raw files: $TOC2ME_DIR or ../shared/toc2me)")
    out.append(("synthetic-1M", synthetic_dir(1_000_000)))
    return out


def run_load(users: int = LOAD_USERS, seconds: float = LOAD_SECONDS) -> bool:
    ok = True
    for name, data_dir in load_datasets():
        print(f"\n=== load.py: {name}, {users} users, {seconds:g} s ===", flush=True)
        proc = subprocess.run([sys.executable, str(here / "load.py"), "--data-dir", str(data_dir),
                               "--users", str(users), "--seconds", str(seconds)],
                              cwd=here.parent, stdout=subprocess.PIPE, text=True)
        print(proc.stdout, end="", flush=True)
        if proc.returncode != 0:
            ok = False
            continue
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        if name == "toc2me" and users < LOAD_USERS:
            print(f"(the target is for {LOAD_USERS} users: not judged on this run)")
        elif name == "toc2me":
            met = res["errors"] == 0 and res["p95_ms"] is not None and res["p95_ms"] <= TOC2ME_P95_MS
            print(f"target (p95 <= {TOC2ME_P95_MS:.0f} ms, 0 errors): {'met' if met else 'MISSED'}")
    return ok


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--load-only", action="store_true", help="only the load test")
    p.add_argument("--load-users", type=int, default=LOAD_USERS)
    p.add_argument("--load-seconds", type=float, default=LOAD_SECONDS)
    args = p.parse_args(argv)
    failed = []
    if not args.load_only:
        for script in sorted(here.glob("bench_*.py")):
            print(f"\n=== {script.name} ===", flush=True)
            if subprocess.call([sys.executable, str(script)], cwd=here.parent) != 0:
                failed.append(script.name)
    if not run_load(args.load_users, args.load_seconds):
        failed.append("load.py")
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
