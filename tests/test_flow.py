"""The chunked, resumable build on Dask: resume after kill -9, an external scheduler, a
hanging engine, failed chunks, bad folders, incremental archives, one SKHASH assembly.

The archive is a small synthetic ToC2ME-shaped folder (`pipeline.demo.synth_archive`); builds
run the onset picker (no TensorFlow) with one event per chunk, so there are many chunks.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from pipeline import build, store, tables
from pipeline.flow import chunks

REPO = Path(__file__).resolve().parents[1]
N_EVENTS = 6


def _cli(*args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, **kw)


def _build_args(archive, data_dir, *extra):
    return ("build", "--source", "toc2me", "--input", str(archive), "--data-dir", str(data_dir),
            "--pickers", "onset", "--chunk-events", "1", "--workers", "2", *extra)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    from pipeline.demo import synth_archive
    dest = tmp_path_factory.mktemp("archive")
    synth_archive.write_archive(dest, N_EVENTS, waveform_seed=7)
    return dest


@pytest.fixture(scope="module")
def reference(archive, tmp_path_factory):
    """An uninterrupted local build of the archive."""
    d = tmp_path_factory.mktemp("reference")
    r = _cli(*_build_args(archive, d))
    assert r.returncode == 0, r.stderr[-3000:]
    return d


def _stable_digest(d):
    """Table digests, without build_info (times) and model_eval (unchanged here anyway)."""
    return tables.content_digest(d)


# --------------------------------------------------------------------------- pure parts

def test_chunks_are_content_defined_so_an_added_event_changes_one_chunk():
    ids = [f"2016110{d}{h:02d}0000.{i:03d}" for d in range(1, 8) for h in range(24) for i in (0, 500)]
    before = chunks.plan_chunks(ids, 10)
    extra = "20161103120000.250"
    after = chunks.plan_chunks(ids + [extra], 10)
    changed = [c for c in after if c not in before]
    assert len(changed) == 1 and extra in changed[0]
    assert sorted(sum(after, [])) == sorted(set(ids + [extra]))
    assert chunks.plan_chunks(reversed(ids), 10) == before  # order of input irrelevant


def test_time_limit_interrupts_an_endless_python_loop():
    """The ObsPy failure mode of the issue: a longitude of 1e30 normalised for ever."""
    from pipeline.flow.deadline import TimeLimitExceeded, time_limit

    def normalize(lon):
        while lon > 180.0:
            lon -= 360.0
        return lon

    t0 = time.monotonic()
    with pytest.raises(TimeLimitExceeded):
        with time_limit(0.5):
            normalize(1e30)
    assert time.monotonic() - t0 < 30


# --------------------------------------------------------------------------- builds

def test_reference_build_picks_every_event_and_publishes_parts(reference):
    info = build.read_info(reference)
    assert info["chunks"]["picking"]["total"] == N_EVENTS and info["chunks"]["picking"]["failed"] == 0
    pol = tables.read_table(reference, "polarities")
    assert pol.loc[pol.method == "onset", "event_id"].nunique() == N_EVENTS
    assert store.table_location(store.resolve(reference), "polarities").is_dir()
    assert store.table_location(store.resolve(reference), "waveforms").is_dir()


def test_kill_9_mid_build_then_rerun_resumes_with_identical_tables(archive, reference, tmp_path):
    d = tmp_path / "data"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", *_build_args(archive, d)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    done_dir = d / chunks.WORK / "pick"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(done_dir.glob(f"*/{chunks.DONE}"))) >= 2:
                break
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build, its scheduler and workers: power loss
        proc.wait()
    n_done = len(list(done_dir.glob(f"*/{chunks.DONE}")))
    assert 2 <= n_done < N_EVENTS, "the kill must land mid-way through the picking stage"
    assert store.current_version(d) is None, "nothing may be published before the build ends"

    r = _cli(*_build_args(archive, d))
    assert r.returncode == 0, r.stderr[-3000:]
    info = build.read_info(d)
    assert info["chunks"]["picking"]["reused"] >= n_done - 1  # a torn last chunk may be redone
    assert _stable_digest(d) == _stable_digest(reference)


def test_torn_part_file_is_detected_and_redone(archive, reference, tmp_path):
    d = tmp_path / "data"
    shutil.copytree(reference / chunks.WORK, d / chunks.WORK)
    part = sorted((d / chunks.WORK / "pick").glob("*/waveforms.parquet"))[0]
    data = part.read_bytes()
    part.write_bytes(data[: len(data) // 2])
    r = _cli(*_build_args(archive, d))
    assert r.returncode == 0, r.stderr[-3000:]
    info = build.read_info(d)
    assert info["chunks"]["picking"]["reused"] == N_EVENTS - 1
    assert _stable_digest(d) == _stable_digest(reference)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_build_on_an_existing_dask_cluster_gives_the_same_tables(archive, reference, tmp_path):
    """A real `dask scheduler` and two `dask worker` processes from the distributed CLI."""
    port = _free_port()
    addr = f"tcp://127.0.0.1:{port}"
    dask = str(Path(sys.executable).with_name("dask"))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PICKER_THREADS": "1"}
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)]
    try:
        time.sleep(2)
        for i in range(2):
            procs.append(subprocess.Popen([dask, "worker", addr, "--nthreads", "1", "--no-dashboard",
                                           "--name", f"w{i}"], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True))
        from distributed import Client
        with Client(addr, timeout="60s") as c:
            c.wait_for_workers(2, timeout=120)
        d = tmp_path / "data"
        r = _cli("build", "--source", "toc2me", "--input", str(archive), "--data-dir", str(d),
                 "--pickers", "onset", "--chunk-events", "1", "--scheduler", addr)
        assert r.returncode == 0, r.stderr[-3000:]
        assert "scheduler " + addr in r.stderr
        assert build.read_info(d)["stages"]["workers"] == 2
        assert _stable_digest(d) == _stable_digest(reference)
    finally:
        for p in procs[::-1]:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()


def test_added_event_folder_redoes_only_its_chunk(archive, reference, tmp_path):
    src = tmp_path / "archive"
    shutil.copytree(archive, src, symlinks=True)
    d = tmp_path / "data"
    shutil.copytree(reference / chunks.WORK, d / chunks.WORK)
    extra = sorted((src / "waveforms").iterdir())[-1]
    shutil.move(str(extra), str(src / "held_back"))
    r = _cli(*_build_args(src, d))                     # the archive without one event
    assert r.returncode == 0, r.stderr[-3000:]
    assert build.read_info(d)["chunks"]["picking"] == {"total": N_EVENTS - 1, "failed": 0, "reused": N_EVENTS - 1}
    shutil.move(str(src / "held_back"), str(extra))    # the event folder arrives
    r = _cli(*_build_args(src, d))
    assert r.returncode == 0, r.stderr[-3000:]
    assert build.read_info(d)["chunks"]["picking"] == {"total": N_EVENTS, "failed": 0, "reused": N_EVENTS - 1}


def test_bad_folders_and_files_are_rejects_and_the_batch_goes_on(archive, tmp_path):
    src = tmp_path / "archive"
    shutil.copytree(archive, src, symlinks=True)
    wf = src / "waveforms"
    first = sorted(wf.iterdir())[0]
    victim = sorted(first.glob("*.SAC"))[0]
    victim.write_bytes(victim.read_bytes()[:700])                       # truncated SAC
    nowhere = wf / "nested" / "deeper" / "20200101000000.000"           # at any depth, matches no event
    nowhere.mkdir(parents=True)
    shutil.copy(sorted(first.glob("*.SAC"))[1], nowhere / "5B.X.DHZ.SAC")
    d = tmp_path / "data"
    r = _cli(*_build_args(src, d, "--no-invert"))
    assert r.returncode == 0, r.stderr[-3000:]
    rej = tables.read_table(d, "rejects")
    assert rej["file"].str.contains(victim.name).any()
    assert (rej["file"].str.contains("20200101000000.000") & rej["reason"].str.contains("no catalogue event")).any()
    pol = tables.read_table(d, "polarities")
    assert pol.loc[pol.method == "onset", "event_id"].nunique() == N_EVENTS


def test_a_chunk_that_raises_is_recorded_once_and_not_retried_for_ever(archive, tmp_path):
    src = tmp_path / "archive"
    shutil.copytree(archive, src, symlinks=True)
    bad = tmp_path / "broken.weights.h5"
    bad.write_bytes(b"not an HDF5 file")             # every cnn chunk raises loading it
    d = tmp_path / "data"
    args = ("build", "--source", "toc2me", "--input", str(src), "--data-dir", str(d), "--pickers", "cnn",
            "--weights", str(bad), "--chunk-events", "3", "--workers", "2", "--no-invert")
    r = _cli(*args)
    assert r.returncode == 0, r.stderr[-3000:]
    info = build.read_info(d)
    n = info["chunks"]["picking"]["total"]
    assert n >= 1 and info["chunks"]["picking"]["failed"] == n
    rej = tables.read_table(d, "rejects")
    assert (rej["reason"].str.startswith("chunk failed")).sum() == N_EVENTS
    r = _cli(*args)                                  # resume: the failures are not run again
    assert r.returncode == 0, r.stderr[-3000:]
    assert build.read_info(d)["chunks"]["picking"]["reused"] == n
    assert (tables.read_table(d, "rejects")["reason"].str.startswith("chunk failed")).sum() == N_EVENTS


# --------------------------------------------------------------------------- SKHASH stage

def test_hanging_engine_ends_as_unsolved_timeout_and_the_batch_finishes(toc2me_waveforms_dir, tmp_path):
    """A fake SKHASH interpreter that hangs on one event (and runs the real one otherwise)."""
    fake = tmp_path / "fake-python"
    fake.write_text("#!/bin/sh\n"
                    "if grep -q '2016-11-04 06:48' IN/catalog.csv 2>/dev/null; then sleep 600; fi\n"
                    f"exec {sys.executable} \"$@\"\n")
    fake.chmod(0o755)
    d = tmp_path / "data"
    t0 = time.monotonic()
    r = _cli("build", "--source", "toc2me", "--input", str(toc2me_waveforms_dir), "--data-dir", str(d),
             "--pickers", "onset", "--chunk-events", "1", "--workers", "2", "--event-timeout", "5",
             env={"FM_SKHASH_PYTHON": str(fake)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert time.monotonic() - t0 < 400
    uns = tables.read_table(d, "unsolved").set_index("event_id")
    assert uns.loc["20161104064824.680", "reason"].startswith("timeout")
    mech = tables.read_table(d, "mechanisms")
    assert "20161125051408.940" in set(mech.loc[mech.source == "computed", "event_id"])


def test_build_invert_and_reinvert_give_the_same_mechanism(toc2me_waveforms_dir, tmp_path):
    from pipeline.review.reinvert import reinvert_event
    d = tmp_path / "data"
    r = _cli("build", "--source", "toc2me", "--input", str(toc2me_waveforms_dir), "--data-dir", str(d),
             "--pickers", "onset", "--workers", "2")
    assert r.returncode == 0, r.stderr[-3000:]
    cols = ["strike", "dip", "rake", "n_polarities"]
    built = tables.read_table(d, "mechanisms").query("source == 'computed'").set_index("event_id")[cols]
    assert len(built) == 2
    r = _cli("invert", "--data-dir", str(d), "--workers", "1")
    assert r.returncode == 0, r.stderr[-3000:]
    inverted = tables.read_table(d, "mechanisms").query("source == 'computed'").set_index("event_id")[cols]
    pd.testing.assert_frame_equal(built.sort_index(), inverted.sort_index(), check_dtype=False)
    for eid, row in built.iterrows():
        again = reinvert_event(d, eid, reviewer="test")
        assert [again[c] for c in cols] == pytest.approx(list(row.astype(float)), abs=1e-9), eid
