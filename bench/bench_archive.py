"""The path a user runs, files on disk -> published tables: synthetic ToC2ME archives of two
sizes built with 1 and 2 Dask workers, a killed-and-resumed build, and the event page's
read of one event's waveform snippets at scale.

    .venv/bin/python bench/bench_archive.py [--small 40] [--large 160] [--quick]

What it does, all in this one run:

1. Archives: ``python -m pipeline synth-archive --events N`` into ``.bench/archives/evN``
   (kept between runs; synth-archive only renders the events that are missing).
2. Builds: for each size and each worker count (``--workers 1,2``), a fresh full build
   (``build --source toc2me --fresh --pickers cnn,onset --workers W``, default chunk size)
   in a subprocess. Wall time; picking and mechanism stage seconds (``build_info.json``
   ``stages``); SAC files/s of the picking stage (SAC files counted in the archive); events/s
   of the mechanism stage (events inverted = distinct event ids of ``mechanism_stations``
   and ``unsolved``); peak resident memory of the build process and all its descendants
   (scheduler, nanny, workers, SKHASH subprocesses) summed, sampled every 0.15 s with
   psutil, and the peak of the largest single process. RSS sums count pages shared between
   processes (libraries) once per process, so they are an upper bound of the real use.
3. Ratios: 2 workers vs 1 (files/s, events/s); memory of the large archive vs the small one
   (target: large <= 1.25 x small + 200 MB).
4. Resume: a fresh build of the large archive killed (SIGKILL to its process group) once
   ~60 % of the planned picking chunks have ``done.json``, then the same command without
   ``--fresh``: re-run wall / uninterrupted wall (target <= 0.8) and table digests
   (:func:`pipeline.tables.content_digest`) equal to the uninterrupted build's.
5. Extrapolation to the full ToC2ME archive (21,619 events x 207 SAC files; 2,519 events
   with mechanisms) from the 2-worker rates of the large archive.
6. Event page read: ``queries.event.event_rows(provider, 'waveforms', id, channel)``
   (DuckDB ``read_parquet(?) WHERE event_id = ?``, as pages/event.py calls it) on the large
   build's published ``waveforms`` and, when it has fewer than 100k rows, on a table of
   >= 100k traces made by replicating its parts under renamed event ids (same layout: sorted
   by event, row groups of 1,024 rows, zstd, ~25 events per part). 50 random events;
   median and p95 (target p95 <= 300 ms).

Code: the builds run a snapshot of ``pipeline/`` (and ``components/``, ``queries/``) copied at the start of the run into
``.bench/archive_runs/src`` (``--live-code``: the working tree itself), so that edits made
to the working tree meanwhile neither mix two versions into one comparison nor change the
chunk digests between the interrupted build and its re-run (which would redo every chunk).

Every figure is labelled with the archive size, the worker count and the 1-minute load
average at the start -> end of the measurement (the machine may be shared). Results go to
``.bench/bench_archive[_quick].json``. ``--quick``: 6 and 12 events with chunks of 3 events
(so that the resume has chunks to interrupt), a few minutes.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from queries import event as evq

BENCH_DIR = ROOT / ".bench"
ARCHIVES = BENCH_DIR / "archives"
RUNS = BENCH_DIR / "archive_runs"
SAMPLE_S = 0.15
FULL_EVENTS, FULL_FILES_PER_EVENT, FULL_MECH_EVENTS = 21_619, 207, 2_519
MEM_FACTOR, MEM_SLACK_MB = 1.25, 200.0
RESUME_TARGET = 0.8
#: where ``python -m pipeline`` runs from (set in main: a snapshot, or ROOT with --live-code)
SRC = ROOT
LOOKUP_TARGET_MS = 300.0


def _load() -> float:
    return os.getloadavg()[0]


def _mb(n: float) -> float:
    return n / 1e6


# --------------------------------------------------------------------------- archives

def snapshot_code(dest: Path) -> Path:
    """Copy ``pipeline/`` (no caches) to ``dest/pipeline``; returns ``dest``."""
    if dest.exists():
        shutil.rmtree(dest)
    for pkg in ("pipeline", "components", "queries"):   # the command line reads components.filters (populations)
        shutil.copytree(ROOT / pkg, dest / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _env() -> dict:
    env = dict(os.environ)
    if SRC != ROOT:
        env["PYTHONPATH"] = os.pathsep.join([str(SRC), *filter(None, [env.get("PYTHONPATH")])])
        # pipeline.training finds the shared data relative to its own file: keep the tree's
        env.setdefault("TOC2ME_DIR", str(ROOT.parent / "shared" / "toc2me"))
    return env


def code_digest(root: Path) -> str:
    """Digest of every ``.py`` file and the model weights under ``root/pipeline``."""
    import hashlib
    h = hashlib.sha256()
    base = root / "pipeline"
    for f in sorted([*base.rglob("*.py"), *base.glob("models/*")]):
        if "__pycache__" in f.parts or not f.is_file():
            continue
        h.update(str(f.relative_to(base)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def ensure_archive(n: int) -> tuple[Path, dict]:
    dest = ARCHIVES / f"ev{n}"
    l0, t = _load(), time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pipeline", "synth-archive", "--events", str(n), "--dest", str(dest)],
                         cwd=SRC, env=_env(), capture_output=True, text=True)
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-4000:] + out.stderr[-8000:])
        raise SystemExit(f"synth-archive --events {n} failed (exit {out.returncode})")
    wf = dest / "waveforms"
    folders = [p for p in wf.iterdir() if p.is_dir()]
    sac = sum(1 for f in folders for e in os.scandir(f) if e.name.lower().endswith(".sac"))
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("waveforms:")), "")
    return dest, {"events": n, "event_folders": len(folders), "sac_files": sac, "seconds": round(time.perf_counter() - t, 1),
                  "synth": line, "load": [round(l0, 2), round(_load(), 2)]}


# --------------------------------------------------------------------------- one build, watched

def _tree(pid: int) -> list[psutil.Process]:
    try:
        p = psutil.Process(pid)
        return [p, *p.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def run_build(archive: Path, data_dir: Path, workers: int, *, fresh: bool, chunk_events: int | None,
              log_path: Path, kill_when=None) -> dict:
    """Run one build in a subprocess (own session) and watch it; ``kill_when()`` -> True
    sends SIGKILL to its whole process group. Returns the measurements."""
    cmd = [sys.executable, "-m", "pipeline", "build", "--source", "toc2me", "--input", str(archive),
           "--data-dir", str(data_dir), "--workers", str(workers), "--pickers", "cnn,onset"]
    if fresh:
        cmd.append("--fresh")
    if chunk_events:
        cmd += ["--chunk-events", str(chunk_events)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    loads, peak_sum, peak_one, max_procs, seen = [_load()], 0, 0, 0, {}
    killed_at = None
    with open(log_path, "w") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=SRC, env=_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        next_load = t0 + 5
        while True:
            total, one, n = 0, 0, 0
            for p in _tree(proc.pid):
                try:
                    rss = p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                    continue
                total, one, n = total + rss, max(one, rss), n + 1
                seen.setdefault(p.pid, p)
            peak_sum, peak_one, max_procs = max(peak_sum, total), max(peak_one, one), max(max_procs, n)
            if proc.poll() is not None:
                break
            now = time.perf_counter()
            if now >= next_load:
                loads.append(_load())
                next_load = now + 5
            if kill_when is not None and killed_at is None:
                info = kill_when()
                if info:
                    killed_at = {**info, "at_s": round(now - t0, 2)}
                    os.killpg(proc.pid, signal.SIGKILL)
            time.sleep(SAMPLE_S)
        rc = proc.wait()
        wall = time.perf_counter() - t0
    loads.append(_load())
    survivors = []
    if killed_at is not None:  # the group is dead; anything that escaped it (own session) is ours too
        time.sleep(0.5)
        for pid, p in seen.items():
            try:
                if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                    survivors.append(pid)
                    p.kill()
            except psutil.NoSuchProcess:
                pass
    res = {"cmd": " ".join(cmd[1:]), "rc": rc, "wall_s": round(wall, 2), "peak_rss_tree_mb": round(_mb(peak_sum), 1),
           "peak_rss_largest_mb": round(_mb(peak_one), 1), "max_processes": max_procs,
           "load_start": round(loads[0], 2), "load_end": round(loads[-1], 2),
           "load_mean": round(statistics.fmean(loads), 2), "log": str(log_path.relative_to(ROOT))}
    if killed_at is not None:
        res["killed"] = killed_at
        res["survivors_killed"] = survivors
    elif rc != 0:
        res["log_tail"] = log_path.read_text()[-6000:]
    return res


def build_figures(data_dir: Path, sac_files: int) -> dict:
    """Stage seconds, chunk counts and rates from the published build."""
    from pipeline import build, tables
    info = build.read_info(data_dir) or {}
    stages, ch = info.get("stages", {}), info.get("chunks", {})
    ev = set()
    for t in ("mechanism_stations", "unsolved"):
        try:
            ev |= set(tables.read_table(data_dir, t, columns=["event_id"])["event_id"].astype(str))
        except FileNotFoundError:
            pass
    pick_s, mech_s = stages.get("picking_s"), stages.get("mechanisms_s")
    rows = info.get("rows", {})
    return {"build_seconds": info.get("seconds"), "picking_s": pick_s, "mechanisms_s": mech_s,
            "workers_reported": stages.get("workers"), "chunks": ch, "sac_files": sac_files,
            "files_per_s": round(sac_files / pick_s, 2) if pick_s else None,
            "events_inverted": len(ev), "events_per_s": round(len(ev) / mech_s, 3) if mech_s else None,
            "rows": {k: rows.get(k) for k in ("polarities", "waveforms", "mechanism_stations", "unsolved", "rejects")}}


# --------------------------------------------------------------------------- resume

def resume_test(archive: Path, workers: int, chunk_events: int | None, planned: int, full: dict,
                full_dir: Path, frac: float) -> dict:
    from pipeline import tables
    d = RUNS / f"resume_ev{archive.name[2:]}_w{workers}"
    shutil.rmtree(d, ignore_errors=True)
    # "killed at 60 % of a full build": 60 % of the uninterrupted build's wall time, so the
    # kill can land in either stage (a share of picking chunks would stop far earlier)
    t_kill = frac * full["wall_s"]
    need = f"{t_kill:.1f} s"
    pick = d / "work" / "pick"
    started: list[float] = []

    def done_chunks():
        if not started:
            started.append(time.monotonic())
        elapsed = time.monotonic() - started[0]
        n = len(list(pick.glob("*/done.json"))) if pick.is_dir() else 0
        return {"done_chunks": n, "planned": planned, "elapsed_s": round(elapsed, 2)} if elapsed >= t_kill else None

    logs = RUNS / "logs"
    first = run_build(archive, d, workers, fresh=True, chunk_events=chunk_events,
                      log_path=logs / f"{d.name}_killed.log", kill_when=done_chunks)
    res = {"workers": workers, "planned_chunks": planned, "kill_at_chunks": need, "interrupted": first}
    if "killed" not in first:
        res["error"] = "the build finished before it could be interrupted" if first["rc"] == 0 else "build failed"
        return res
    res["done_after_kill"] = len(list(pick.glob("*/done.json")))
    inv = d / "work" / "invert"
    res["mechanism_chunks_done_after_kill"] = len(list(inv.glob("*/done.json"))) if inv.is_dir() else 0
    second = run_build(archive, d, workers, fresh=False, chunk_events=chunk_events,
                       log_path=logs / f"{d.name}_rerun.log")
    res["rerun"] = second
    if second["rc"] != 0:
        res["error"] = "re-run failed"
        return res
    from pipeline import build
    info = build.read_info(d) or {}
    res["rerun_chunks"] = info.get("chunks")
    res["rerun_stages"] = info.get("stages")
    reused = ((info.get("chunks") or {}).get("picking") or {}).get("reused", 0)
    if reused < res["done_after_kill"]:
        res["note"] = (f"the re-run reused {reused} of the {res['done_after_kill']} chunks finished before the kill "
                       "(did the code or the input change in between?)")
    res["ratio"] = round(second["wall_s"] / full["wall_s"], 3)
    res["ratio_ok"] = res["ratio"] <= RESUME_TARGET
    a, b = tables.content_digest(full_dir), tables.content_digest(d)
    res["digests_equal"] = a == b
    res["digest_diff"] = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return res


# --------------------------------------------------------------------------- event page read

def replicate_waveforms(src_dir: Path, dest: Path, min_rows: int, events_per_part: int = 25) -> dict:
    """A flat data folder ``dest`` whose ``waveforms/`` holds >= ``min_rows`` traces: the
    parts of ``src_dir``'s table repeated under ids ``rNN_<id>`` (replica 0 keeps the ids),
    in sorted order, cut into parts of ~``events_per_part`` events, row groups of 1,024, zstd."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    from pipeline import store, tables
    src = tables.table_path(src_dir, "waveforms")
    files = store.part_files(src)
    rows = sum(pq.read_metadata(f).num_rows for f in files)
    n_ev = sum(len(pc.unique(pq.read_table(f, columns=["event_id"])["event_id"])) for f in files)
    reps = max(1, math.ceil(min_rows / max(rows, 1)))
    part_rows = max(1024, int(round(rows / max(n_ev, 1) * events_per_part)))
    out = dest / "waveforms"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t = time.perf_counter()
    buf, nbuf, k, written, ids = [], 0, 0, 0, []

    def flush():
        nonlocal buf, nbuf, k, written
        if not buf:
            return
        tbl = pa.concat_tables(buf)
        # cut at an event boundary: rows of one event never span two parts
        ev = tbl["event_id"]
        cut = len(tbl)
        if len(tbl) > part_rows:
            last = ev[part_rows - 1].as_py()
            cut = part_rows + int(pc.sum(pc.equal(ev.slice(part_rows), last)).as_py() or 0)
        head, tail = tbl.slice(0, cut), tbl.slice(cut)
        pq.write_table(head, out / f"part-{k:05d}.parquet", compression="zstd", row_group_size=1024)
        written += len(head)
        k += 1
        buf, nbuf = ([tail], len(tail)) if len(tail) else ([], 0)

    for r in range(reps):
        for f in files:
            tbl = pq.read_table(f)
            if r:
                col = tbl.schema.get_field_index("event_id")
                new = pc.binary_join_element_wise(pa.scalar(f"r{r:03d}_"), tbl["event_id"], "")
                tbl = tbl.set_column(col, tbl.schema.field(col), new)
            ids.extend(pc.unique(tbl["event_id"]).to_pylist())
            buf.append(tbl)
            nbuf += len(tbl)
            while nbuf >= part_rows:
                before = nbuf
                flush()
                if nbuf == before:
                    break
    while buf:
        flush()
    return {"rows": written, "source_rows": rows, "replicas": reps, "events": len(set(ids)), "parts": k,
            "mb": round(sum(p.stat().st_size for p in out.iterdir()) / 1e6, 1),
            "seconds": round(time.perf_counter() - t, 1), "ids": sorted(set(ids))}


def time_lookups(data_dir: Path, ids: list[str], n: int, seed: int = 7) -> dict:
    from components.data import DataProvider
    rng = np.random.default_rng(seed)
    pick = [ids[i] for i in rng.integers(0, len(ids), n)]
    dp = DataProvider(data_dir)
    warm = evq.event_rows(dp, "waveforms", ids[0], channel="DHZ")  # connection set-up, not counted
    l0 = _load()
    out = {}
    for label, channel in (("DHZ", "DHZ"), ("all", None)):
        ms, nrows = [], []
        for eid in pick:
            t = time.perf_counter()
            df = evq.event_rows(dp, "waveforms", eid, channel=channel)
            ms.append((time.perf_counter() - t) * 1000)
            nrows.append(len(df))
        out[label] = {"median_ms": round(float(np.median(ms)), 1), "p95_ms": round(float(np.percentile(ms, 95)), 1),
                      "max_ms": round(max(ms), 1), "rows_per_event_median": int(np.median(nrows)),
                      "empty_results": int(sum(r == 0 for r in nrows))}
    dp.close()
    out["lookups"] = n
    out["warmup_rows"] = len(warm)
    out["load"] = [round(l0, 2), round(_load(), 2)]
    return out


def table_rows(data_dir: Path) -> tuple[int, list[str]]:
    import pyarrow.compute as pc
    from pipeline import tables
    t = tables.read_arrow(data_dir, "waveforms", columns=["event_id"])
    return len(t), sorted(pc.unique(t["event_id"]).to_pylist())


# --------------------------------------------------------------------------- report

def _f(x, fmt="{:.1f}"):
    return "-" if x is None else fmt.format(x)


def _hours(s: float) -> str:
    h, r = divmod(int(round(s)), 3600)
    return f"{h} h {r // 60:02d} min"


def report(R: dict) -> None:
    cores = R["cores"]
    print(f"\n## bench_archive {'(quick) ' if R['quick'] else ''}— {R['started']}, {cores} cores, "
          f"chunk size {R['chunk_events'] or 'default (25)'}; load = 1-min load average start -> end; "
          f"code: {R['code']['runs_from']} (pipeline/ digest {R['code']['digest_at_start']})")
    print("\n### Archives\n")
    print("| archive | event folders | SAC files | synth-archive s | load |\n|---|---|---|---|---|")
    for a in R["archives"].values():
        print(f"| {a['events']} ev | {a['event_folders']} | {a['sac_files']} | {a['seconds']} | "
              f"{a['load'][0]} -> {a['load'][1]} |")
    print("\n### Fresh full builds (`build --source toc2me --fresh --pickers cnn,onset`)\n")
    print("| archive | workers | rc | wall s | picking s | SAC files/s | mechanisms s | events inverted | events/s "
          "| peak RSS all procs MB | peak RSS largest proc MB | procs | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for b in R["builds"]:
        print(f"| {b['events']} ev | {b['workers']} | {b['rc']} | {b['wall_s']:.1f} | {_f(b.get('picking_s'))} | "
              f"{_f(b.get('files_per_s'))} | {_f(b.get('mechanisms_s'))} | {b.get('events_inverted', '-')} | "
              f"{_f(b.get('events_per_s'), '{:.3f}')} | {b['peak_rss_tree_mb']:.0f} | {b['peak_rss_largest_mb']:.0f} | "
              f"{b['max_processes']} | {b['load_start']} -> {b['load_end']} (mean {b['load_mean']}) |")
    if R.get("ratios"):
        print("\n### Ratios\n")
        print("| what | archive | value | target | load (runs compared) |\n|---|---|---|---|---|")
        for r in R["ratios"]:
            print(f"| {r['what']} | {r['archive']} | {r['value']} | {r.get('target', '-')} | {r['load']} |")
    rs = R.get("resume")
    if rs:
        print(f"\n### Resume (large archive, {rs['workers']} workers)\n")
        it = rs["interrupted"]
        k = it.get("killed", {})
        print("| step | wall s | picking chunks | peak RSS all MB | load |\n|---|---|---|---|---|")
        print(f"| fresh build, SIGKILL to process group at {k.get('at_s', '-')} s | {it['wall_s']:.1f} | "
              f"{rs.get('done_after_kill', '-')}/{rs['planned_chunks']} done, {rs.get('mechanism_chunks_done_after_kill', '-')} "
              f"mechanism chunks done (kill at {rs['kill_at_chunks']}) | "
              f"{it['peak_rss_tree_mb']:.0f} | {it['load_start']} -> {it['load_end']} |")
        if "rerun" in rs:
            rr, ch = rs["rerun"], (rs.get("rerun_chunks") or {}).get("picking", {})
            print(f"| same command without --fresh | {rr['wall_s']:.1f} | {ch.get('reused', '-')}/{ch.get('total', '-')}"
                  f" reused | {rr['peak_rss_tree_mb']:.0f} | {rr['load_start']} -> {rr['load_end']} |")
            print(f"\nre-run wall / uninterrupted full build wall ({rs['full_wall_s']:.1f} s, load "
                  f"{rs['full_load']}): **{rs.get('ratio')}** (target <= {RESUME_TARGET}: "
                  f"{'met' if rs.get('ratio_ok') else 'MISSED'}); table digests equal to the uninterrupted "
                  f"build's: **{rs.get('digests_equal')}**" + (f" (differ: {rs['digest_diff']})" if rs.get("digest_diff") else ""))
        for k in ("error", "note"):
            if rs.get(k):
                print(f"\nresume: {rs[k]}")
        if it.get("survivors_killed"):
            print(f"processes that outlived the group kill (killed by pid): {it['survivors_killed']}")
    ex = R.get("extrapolation")
    if ex:
        print(f"\n### EXTRAPOLATION to the full ToC2ME archive (not measured: {ex['basis']})\n")
        print("| stage | amount | rate used | extrapolated time |\n|---|---|---|---|")
        print(f"| picking | {FULL_EVENTS:,} events x {FULL_FILES_PER_EVENT} = {ex['files']:,} SAC files | "
              f"{ex['files_per_s']} files/s | {_hours(ex['picking_s'])} |")
        print(f"| mechanisms | {FULL_MECH_EVENTS:,} events | {ex['events_per_s']} events/s | {_hours(ex['mechanisms_s'])} |")
        print(f"| both | | | {_hours(ex['picking_s'] + ex['mechanisms_s'])} |")
    wl = R.get("waveform_lookups")
    if wl:
        print("\n### Event page: one event's waveform snippets, `queries.event.event_rows(provider, 'waveforms', id, channel)`\n")
        print("| table | traces | events | parts | lookups | channel | median ms | p95 ms | max ms | rows/event | target | load |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for w in wl:
            for ch in ("DHZ", "all"):
                m = w["timing"][ch]
                ok = "met" if m["p95_ms"] <= LOOKUP_TARGET_MS else "MISSED"
                tgt = f"p95 <= {LOOKUP_TARGET_MS:.0f}: {ok}" if w["rows"] >= 100_000 else "(< 100k traces)"
                print(f"| {w['label']} | {w['rows']:,} | {w['events']} | {w['parts']} | {w['timing']['lookups']} | {ch} | "
                      f"{m['median_ms']} | {m['p95_ms']} | {m['max_ms']} | {m['rows_per_event_median']} | {tgt} | "
                      f"{w['timing']['load'][0]} -> {w['timing']['load'][1]} |")
    if R.get("problems"):
        print("\n### Problems\n")
        for p in R["problems"]:
            print(f"- {p}")
    if R.get("notes"):
        print("\n### Notes\n")
        for p in R["notes"]:
            print(f"- {p}")
    print(f"\ntotal {R['total_s']:.0f} s; results in {R['json']}")


# --------------------------------------------------------------------------- main

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=40, help="events of the small archive (default 40)")
    ap.add_argument("--large", type=int, default=160, help="events of the large archive (default 160)")
    ap.add_argument("--workers", default="1,2", help="worker counts to compare (default 1,2)")
    ap.add_argument("--chunk-events", type=int, default=None, help="build --chunk-events (default: the build's, 25)")
    ap.add_argument("--kill-at", type=float, default=0.6, help="resume test: kill at this share of the full build's wall time (default 0.6)")
    ap.add_argument("--lookups", type=int, default=50, help="random event lookups per waveforms table (default 50)")
    ap.add_argument("--min-traces", type=int, default=100_000, help="traces of the replicated waveforms table")
    ap.add_argument("--no-resume", action="store_true")
    ap.add_argument("--live-code", action="store_true",
                    help="run the builds from the working tree, not from a snapshot of pipeline/ taken at the start")
    ap.add_argument("--quick", action="store_true", help="6 and 12 events, chunks of 3 events: a smoke run")
    ap.add_argument("--json", default=None, help="results file (default .bench/bench_archive[_quick].json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.small, args.large = 6, 12
        args.chunk_events = args.chunk_events or 3
    workers = sorted({int(w) for w in args.workers.split(",")})
    out_json = Path(args.json) if args.json else BENCH_DIR / f"bench_archive{'_quick' if args.quick else ''}.json"
    t_all = time.perf_counter()
    RUNS.mkdir(parents=True, exist_ok=True)
    R: dict = {"quick": args.quick, "started": time.strftime("%Y-%m-%d %H:%M:%S"), "cores": os.cpu_count(),
               "chunk_events": args.chunk_events, "archives": {}, "builds": [], "ratios": [], "problems": [], "notes": [],
               "json": str(out_json.relative_to(ROOT)) if out_json.is_relative_to(ROOT) else str(out_json)}

    def save():
        R["total_s"] = round(time.perf_counter() - t_all, 1)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(R, indent=1, default=str))

    global SRC
    SRC = ROOT if args.live_code else snapshot_code(RUNS / "src")
    R["code"] = {"runs_from": str(SRC.relative_to(ROOT)) if SRC != ROOT else ".", "digest_at_start": code_digest(ROOT)}
    sizes = sorted({args.small, args.large})
    arch = {}
    for n in sizes:
        print(f"archive {n} events ...", flush=True)
        arch[n], R["archives"][str(n)] = ensure_archive(n)
    dirs = {}
    for n in sizes:
        for w in workers:
            d = RUNS / f"ev{n}_w{w}"
            shutil.rmtree(d, ignore_errors=True)
            print(f"build {n} events, {w} worker(s) ... (load {_load():.2f})", flush=True)
            b = run_build(arch[n], d, w, fresh=True, chunk_events=args.chunk_events,
                          log_path=RUNS / "logs" / f"{d.name}.log")
            b.update(events=n, workers=w)
            if b["rc"] == 0:
                b.update(build_figures(d, R["archives"][str(n)]["sac_files"]))
                dirs[(n, w)] = d
            else:
                R["problems"].append(f"build {n} ev x{w} failed (rc {b['rc']}); log {b['log']}:\n{b.get('log_tail', '')}")
            print(f"  wall {b['wall_s']:.1f} s, picking {b.get('picking_s')} s, mechanisms {b.get('mechanisms_s')} s, "
                  f"peak RSS {b['peak_rss_tree_mb']:.0f} MB (load {b['load_start']} -> {b['load_end']})", flush=True)
            R["builds"].append(b)
            save()
    by = {(b["events"], b["workers"]): b for b in R["builds"] if b["rc"] == 0}

    def ld(*bs):
        return "; ".join(f"{b['events']} ev x{b['workers']}: {b['load_start']} -> {b['load_end']}" for b in bs)

    lo, hi = workers[0], workers[-1]
    for n in sizes:
        if lo != hi and (n, lo) in by and (n, hi) in by:
            a, b = by[(n, lo)], by[(n, hi)]
            for what, key in (("picking files/s", "files_per_s"), ("mechanisms events/s", "events_per_s")):
                if a.get(key) and b.get(key):
                    R["ratios"].append({"what": f"{what}, {hi} workers / {lo}", "archive": f"{n} ev",
                                        "value": round(b[key] / a[key], 2), "load": ld(a, b)})
            R["ratios"].append({"what": f"wall time, {lo} worker(s) / {hi}", "archive": f"{n} ev",
                                "value": round(a["wall_s"] / b["wall_s"], 2), "load": ld(a, b)})
    for w in workers:
        if (args.small, w) in by and (args.large, w) in by and args.small != args.large:
            s, l_ = by[(args.small, w)], by[(args.large, w)]
            lim = MEM_FACTOR * s["peak_rss_tree_mb"] + MEM_SLACK_MB
            R["ratios"].append({"what": f"peak RSS all procs, large / small ({w} worker(s))",
                                "archive": f"{args.large} vs {args.small} ev",
                                "value": f"{l_['peak_rss_tree_mb'] / s['peak_rss_tree_mb']:.2f} "
                                         f"({l_['peak_rss_tree_mb']:.0f} vs {s['peak_rss_tree_mb']:.0f} MB)",
                                "target": f"<= {lim:.0f} MB (1.25 x small + 200): "
                                          f"{'met' if l_['peak_rss_tree_mb'] <= lim else 'MISSED'}",
                                "load": ld(s, l_)})
    save()

    # resume
    if not args.no_resume and (args.large, hi) in by:
        full = by[(args.large, hi)]
        planned = (full.get("chunks") or {}).get("picking", {}).get("total")
        if not planned:
            from pipeline.flow import chunks
            names = [p.name for p in (arch[args.large] / "waveforms").iterdir() if p.is_dir()]
            planned = len(chunks.plan_chunks(names, args.chunk_events or chunks.DEFAULT_CHUNK_EVENTS))
        print(f"resume: {args.large} events, {hi} workers, {planned} planned picking chunks ... (load {_load():.2f})",
              flush=True)
        if planned < 2:
            R["problems"].append(f"resume: only {planned} picking chunk(s) planned, nothing to interrupt "
                                 "(use a larger archive or --chunk-events)")
        else:
            rs = resume_test(arch[args.large], hi, args.chunk_events, planned, full, dirs[(args.large, hi)], args.kill_at)
            rs["full_wall_s"], rs["full_load"] = full["wall_s"], f"{full['load_start']} -> {full['load_end']}"
            R["resume"] = rs
            if rs.get("error"):
                tail = rs.get("rerun", rs["interrupted"]).get("log_tail", "")
                R["problems"].append(f"resume: {rs['error']}\n{tail}")
        save()

    # extrapolation
    big = by.get((args.large, hi))
    if big and big.get("files_per_s") and big.get("events_per_s"):
        files = FULL_EVENTS * FULL_FILES_PER_EVENT
        R["extrapolation"] = {
            "basis": f"rates of the {args.large}-event synthetic archive with {hi} workers on this {R['cores']}-core "
                     f"machine, load {big['load_start']} -> {big['load_end']}; linear in files and events",
            "files": files, "files_per_s": big["files_per_s"], "events_per_s": big["events_per_s"],
            "picking_s": files / big["files_per_s"], "mechanisms_s": FULL_MECH_EVENTS / big["events_per_s"]}

    # event page read
    src = dirs.get((args.large, hi)) or dirs.get((args.large, lo))
    if src is not None:
        print(f"event page lookups ... (load {_load():.2f})", flush=True)
        R["waveform_lookups"] = []
        rows, ids = table_rows(src)
        from pipeline import store, tables
        nparts = len(store.part_files(tables.table_path(src, "waveforms")))
        R["waveform_lookups"].append({"label": f"published, {args.large} ev build", "rows": rows, "events": len(ids),
                                      "parts": nparts, "timing": time_lookups(src, ids, args.lookups)})
        if rows < args.min_traces:
            dest = RUNS / "waveforms_replicated"
            rep = replicate_waveforms(src, dest, args.min_traces)
            ids2 = rep.pop("ids")
            R["waveform_lookups"].append({"label": f"replicated x{rep['replicas']} of the {args.large} ev build "
                                                   f"({rep['mb']} MB, made in {rep['seconds']} s)",
                                          **{k: rep[k] for k in ("rows", "events", "parts")},
                                          "timing": time_lookups(dest, ids2, args.lookups)})
    R["code"]["digest_at_end"] = code_digest(ROOT)
    R["code"]["snapshot_digest_at_end"] = code_digest(SRC)
    if R["code"]["digest_at_end"] != R["code"]["digest_at_start"]:
        R["notes"].append("pipeline/ of the working tree changed during the run (concurrent edits): "
                             + ("the builds ran the snapshot taken at the start" if SRC != ROOT else
                                "the builds ran live code, so the runs may mix versions and the resume may redo chunks"))
    save()
    report(R)
    save()
    return 1 if R["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
