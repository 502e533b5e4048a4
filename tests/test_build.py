"""`python -m pipeline build/ensure/info` end to end, through the real command line."""
import json
import subprocess
import sys

import pandas as pd
import pytest

from pipeline import build, schema, store, tables


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
    before = tables.content_digest(demo_dir)
    version = store.current_version(demo_dir)
    (tmp_path / "catalog").mkdir()  # a ToC2ME-like folder without its catalogue
    r = _cli("build", "--source", "toc2me", "--input", str(tmp_path), "--data-dir", str(demo_dir))
    assert r.returncode == 2
    assert "ToC2ME.xlsx" in r.stderr
    assert tables.content_digest(demo_dir) == before
    assert store.current_version(demo_dir) == version
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


def test_demo_build_computes_mechanisms_close_to_the_truth(demo_dir):
    mech = tables.read_table(demo_dir, "mechanisms")
    computed = mech[mech.source == "computed"]
    assert len(computed) >= 20
    assert computed.engine.isin(["fortran", "python"]).all()
    # synthetic polarities from the true radiation pattern: SKHASH lands near the truth
    good = computed[computed.quality.isin(["A", "B"])]
    assert (good.truth_kagan < 20).mean() >= 0.9
    unsolved = tables.read_table(demo_dir, "unsolved")
    assert unsolved.reason.str.len().gt(0).all()
    assert set(unsolved.event_id).isdisjoint(computed.event_id)


@pytest.fixture(scope="module")
def toc2me_build(toc2me_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("toc2me")
    r = _cli("build", "--source", "toc2me", "--input", str(toc2me_dir), "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    return d


def test_toc2me_end_to_end_from_sac_matches_published_mechanisms(toc2me_build):
    """Our picker on the shared SAC files, our SNR selection, SKHASH: within 15 deg Kagan."""
    mech = tables.read_table(toc2me_build, "mechanisms")
    computed = mech[mech.source == "computed"].set_index("event_id")
    assert set(computed.index) == {"20161104064824.680", "20161125051408.940"}
    assert (computed.kagan_to_published < 15).all()
    assert computed.loc["20161104064824.680", "picks"] == "cnn;manual"  # manual overrides
    pol = tables.read_table(toc2me_build, "polarities")
    assert {"cnn", "onset", "manual", "published", "reference"} <= set(pol.method)
    waves = tables.read_table(toc2me_build, "waveforms")
    assert waves.event_id.nunique() == 2 and len(waves) == 2 * 68 * 3  # dead station rejected
    rejects = tables.read_table(toc2me_build, "rejects")
    assert rejects.reason.str.contains("dead trace").sum() == 2 * 3 + 2  # 3 components + the reference's nan


def test_invert_command_reproduces_published_mechanisms_from_published_picks(toc2me_build, tmp_path):
    import shutil
    d = tmp_path / "copy"
    shutil.copytree(toc2me_build, d)
    r = _cli("invert", "--data-dir", str(d), "--picks", "published")
    assert r.returncode == 0, r.stderr
    mech = tables.read_table(d, "mechanisms")
    computed = mech[mech.source == "computed"]
    assert len(computed) == 2 and (computed.picks == "published").all()
    assert computed.kagan_to_published.max() < 0.5
    assert (mech.source == "published").sum() == 3119  # published rows untouched


def test_invert_uses_the_dashboard_reviews(toc2me_build, tmp_path):
    import shutil

    from pipeline.review.reviews import ReviewStore
    d = tmp_path / "reviewed"
    shutil.copytree(toc2me_build, d)
    ev = "20161125051408.940"
    before = tables.read_table(d, "mechanisms").query("source == 'computed'").set_index("event_id")
    used = tables.read_table(d, "mechanism_stations").query("event_id == @ev")
    store = ReviewStore(d)
    for station in used.station.iloc[:5]:
        store.set_pick(ev, "5B", station, 0, reviewer="test")  # undetermined: leave it out
    r = _cli("invert", "--data-dir", str(d))
    assert r.returncode == 0, r.stderr
    after = tables.read_table(d, "mechanisms").query("source == 'computed'").set_index("event_id")
    assert after.loc[ev, "n_polarities"] == before.loc[ev, "n_polarities"] - 5


def test_editing_the_sensor_polarity_file_makes_ensure_rebuild(tmp_path):
    """The sensor-polarity CSV (catalog/sensors_ToC2ME.csv of the input) decides which
    stations are reversed: an edit must make ``ensure`` rebuild, an untouched file not."""
    import hashlib

    from pipeline.demo import synth_archive
    from pipeline.ingest import toc2me
    archive, d = tmp_path / "archive", tmp_path / "data"
    synth_archive.write_archive(archive, 2, waveform_seed=7)
    opts = build.Options(pick=False, invert=False, workers=1, dashboard=False, progress=False)
    info, ran = build.ensure("toc2me", archive, d, options=opts)
    sensors = archive / toc2me.SENSORS_FILE
    assert ran and info["inputs"]["sensors"]["sha256"] == hashlib.sha256(sensors.read_bytes()).hexdigest()
    assert build.ensure("toc2me", archive, d, options=opts)[1] is False
    table = pd.read_csv(sensors)
    flipped = table.iloc[0]
    table.loc[0, "reversed"] = not bool(flipped["reversed"])
    table.to_csv(sensors, index=False)
    info, ran = build.ensure("toc2me", archive, d, options=opts)
    assert ran and info["inputs"]["sensors"]["sha256"] == hashlib.sha256(sensors.read_bytes()).hexdigest()
    st = tables.read_table(d, "stations").set_index(["network", "station"])
    assert bool(st.loc[(flipped["network"], flipped["station"]), "reversed"]) is (not bool(flipped["reversed"]))
    assert build.ensure("toc2me", archive, d, options=opts)[1] is False
