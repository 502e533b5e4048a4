"""`python -m pipeline build/ensure/info` end to end, through the real command line."""
import json
import subprocess
import sys

import pytest

from pipeline import build, schema, tables


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("demo")
    r = _cli("build", "--source", "demo", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    return d


def test_demo_build_writes_every_table(demo_dir):
    assert tables.has_tables(demo_dir)
    info = json.loads((demo_dir / "build_info.json").read_text())
    assert info["source"] == "demo" and info["schema_version"] == schema.SCHEMA_VERSION
    for name in schema.REQUIRED_TABLES:
        assert tables.table_path(demo_dir, name).exists(), name
    assert info["rows"]["events"] > 1000 and info["rows"]["mechanisms"] > 100


def test_ensure_does_not_rebuild_an_existing_build(demo_dir):
    before = tables.table_path(demo_dir, "events").stat().st_mtime_ns
    r = _cli("ensure", "--source", "demo", "--data-dir", str(demo_dir))
    assert r.returncode == 0 and "up to date" in r.stdout
    assert tables.table_path(demo_dir, "events").stat().st_mtime_ns == before


def test_failed_build_leaves_previous_tables_intact(demo_dir, tmp_path):
    before = {n: tables.table_path(demo_dir, n).read_bytes() for n in schema.REQUIRED_TABLES}
    (tmp_path / "catalog").mkdir()  # a ToC2ME-like folder without its catalogue
    r = _cli("build", "--source", "toc2me", "--input", str(tmp_path), "--data-dir", str(demo_dir))
    assert r.returncode == 2
    assert "ToC2ME.xlsx" in r.stderr
    assert {n: tables.table_path(demo_dir, n).read_bytes() for n in schema.REQUIRED_TABLES} == before
    assert build.read_info(demo_dir)["source"] == "demo"


def test_missing_input_folder_is_a_clear_error(tmp_path):
    r = _cli("build", "--source", "toc2me", "--input", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "d"))
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_toc2me_build_replaces_demo_tables(toc2me_dir, tmp_path):
    d = tmp_path / "data"
    assert _cli("build", "--source", "demo", "--data-dir", str(d)).returncode == 0
    assert list(d.glob("truth_*.parquet"))
    r = _cli("build", "--source", "toc2me", "--input", str(toc2me_dir), "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    info = build.read_info(d)
    assert info["source"] == "toc2me"
    assert info["rows"]["events"] == 21619 and info["rows"]["stations"] == 69
    assert not list(d.glob("truth_*.parquet")), "stale demo truth tables must go"
    events = tables.read_table(d, "events")
    assert events.event_id.is_unique
