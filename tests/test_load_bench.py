"""bench/load.py end to end on the demo build: the app started by the script (waitress), 2
simulated users replaying the browser's callback requests for a few seconds.

Short waits between actions (``--wait 0.2,0.5`` instead of the benchmark's 1-3 s) so
that two users reach every page in the time: each starts its tour of the pages at a
different page."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"map", "magnitudes", "classification", "strike-time", "diffusion", "wells", "model", "event"}


def test_load_bench_two_users(demo_data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(demo_data_dir, data, symlinks=True)  # the app may write (reviews): not the shared fixture
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--data-dir", str(data),
                          "--users", "2", "--seconds", "7", "--wait", "0.2,0.5", "--seed", "1"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    last = out.stdout.strip().splitlines()[-1]
    res = json.loads(last)
    assert set(res) == {"users", "requests", "errors", "p50_ms", "p95_ms", "per_page"}
    assert res["users"] == 2
    assert res["requests"] > 0
    assert res["errors"] == 0, out.stderr[-3000:]
    assert PAGES <= set(res["per_page"]), (sorted(res["per_page"]), out.stderr[-2000:])
    assert res["p50_ms"] <= res["p95_ms"]
    assert sum(p["requests"] for p in res["per_page"].values()) == res["requests"]


def test_load_bench_logs_in_against_a_users_file(demo_data_dir, tmp_path):
    """With accounts on, the simulated users log in through the app's form (csrf token,
    same-origin POSTs) and then browse without a refused request."""
    from pipeline.review.accounts import add_account
    data = tmp_path / "data"
    shutil.copytree(demo_data_dir, data, symlinks=True)
    users, pw = tmp_path / "users.json", tmp_path / "pw.txt"
    add_account(users, "viewer1", "viewer", "not-the-default-1")
    pw.write_text("not-the-default-1\n")
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "load.py"), "--data-dir", str(data),
                          "--users", "1", "--seconds", "5", "--wait", "0.2,0.5", "--seed", "2",
                          "--app-args", f"--users {users}", "--user", "viewer1", "--password-file", str(pw)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["per_page"]["login"] == {**res["per_page"]["login"], "requests": 1, "errors": 0}
    assert res["errors"] == 0 and res["requests"] > 1, out.stdout[-3000:]
