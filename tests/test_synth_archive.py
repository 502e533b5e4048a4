"""The synthetic ToC2ME-shaped archive (pipeline.demo.synth_archive): the ToC2ME ingest reads it,
its SAC folders are complete and exact, picking it as a toc2me source gives the demo's true
polarities, and a re-run skips complete events."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.demo import scenario as demo, waveforms as dw, synth_archive as sa
from pipeline.ingest import toc2me as it

N_EVENTS = 3


@pytest.fixture(scope="module")
def demo_tables():
    """The demo scenario with its own (network XD) stations: the independent truth."""
    return demo.generate()


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    dest = tmp_path_factory.mktemp("synth_archive")
    summary = sa.write_archive(dest, N_EVENTS)
    return dest, summary


@pytest.fixture(scope="module")
def ingested(archive):
    return it.load(archive[0])


def _mtimes(folder):
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


def test_ingest_reads_every_table(archive, ingested, demo_tables):
    t, d = ingested, demo_tables
    assert t["rejects"].empty
    assert len(t["events"]) == len(d["events"])
    assert list(t["events"]["event_id"]) == list(d["events"].sort_values("time")["event_id"])  # ms ids round-trip
    ev = t["events"].set_index("event_id").loc[d["events"]["event_id"]]
    assert np.allclose(ev["magnitude"], d["events"]["magnitude"])
    assert np.allclose(ev["depth_km"], d["events"]["depth_km"])
    assert (pd.DatetimeIndex(ev["time"]) == pd.DatetimeIndex(d["events"]["time"])).all()

    assert len(t["stations"]) == len(d["stations"])
    assert set(t["stations"]["station"]) == set(d["stations"]["station"])
    assert (t["stations"]["network"] == sa.ARCHIVE_NETWORK).all() and t["stations"]["reversed"].all()
    assert len(t["wells"]) == len(d["wells"])
    assert len(t["injection"]) == len(d["injection"])
    assert np.isclose(t["injection"]["volume_m3"].sum(), d["injection"]["volume_m3"].sum())

    room = {w: last - first + 1 for w, first, last in it.STAGE_ROWS_BY_WELL}
    per_well = d["stages"].groupby("well").size()
    want = {w: min(n, room[w]) for w, n in per_well.items()}
    assert t["stages"].groupby("well").size().to_dict() == want
    assert archive[1]["stages_not_written"] == int(per_well.sum() - sum(want.values()))

    dm = d["mechanisms"]
    qa = dm["quality"] == "A"
    swe_b = (dm["cluster"] == "SWe") & (dm["quality"] == "B")
    m = t["mechanisms"]
    assert (m["quality"] == "A").sum() == qa.sum()
    assert len(m) == (qa | swe_b).sum() == archive[1]["mechanisms_written"]
    assert (m["published_set"].str.contains(it.regions.SWE_AB_TOKEN)).sum() == \
        ((dm["cluster"] == "SWe") & dm["quality"].isin(["A", "B"])).sum()
    j = m.merge(dm, on="event_id", suffixes=("", "_demo"))
    assert len(j) == len(m) and (j["join_dt_s"] == 0).all()
    for a in ("strike", "dip", "rake"):
        assert np.allclose(j[a], j[f"{a}_demo"])
    assert np.allclose(j["depth_km_skhash"].dropna(), j.loc[j["depth_km_skhash"].notna(), "depth_km_skhash_demo"])
    assert (archive[0] / sa.VELOCITY_FILE).is_file()


@pytest.mark.filterwarnings("ignore:Sample spacing read from SAC file")
def test_waveform_folders_complete_and_exact(archive, demo_tables):
    from obspy import read
    dest, summary = archive
    tables = sa.archive_tables()
    ids = sa.choose_events(tables, N_EVENTS)
    assert ids == sorted(ids) and len(ids) == N_EVENTS == summary["events_written"]
    assert set(ids) <= set(demo_tables["mechanisms"]["event_id"])
    folders = sorted(p.name for p in (dest / sa.WAVEFORMS_DIR).iterdir())
    assert folders == ids
    names = sa.expected_files(tables["stations"])
    assert len(names) == 3 * len(demo_tables["stations"])
    for eid in ids:
        files = sorted((dest / sa.WAVEFORMS_DIR / eid).iterdir())
        assert sorted(p.name for p in files) == sorted(names)
        assert all(p.stat().st_size == sa.SAC_FILE_BYTES for p in files)
    assert not (dest / sa.TMP_DIR).exists()
    assert summary["files_written"] == N_EVENTS * len(names)

    # one event in full: headers and samples equal the renderer's (recorded, all verticals inverted)
    eid = ids[0]
    meta, full = dw.generate_waveforms(tables, max_events=None, event_ids=[eid], components=("Z", "N", "E"),
                                       full_traces=True)
    assert (meta.loc[meta["channel"] == "DHZ", "recorded_sign"]
            == -meta.loc[meta["channel"] == "DHZ", "true_polarity"]).all()
    for k, r in enumerate(meta.itertuples(index=False)):
        tr = read(str(dest / sa.WAVEFORMS_DIR / eid / f"{r.network}.{r.station}.{r.channel}.SAC"))[0]
        assert tr.stats.npts == dw.NPTS and tr.stats.sampling_rate == dw.SAMPLING_RATE
        assert tr.stats.sac.t1 - tr.stats.sac.b == pytest.approx(dw.P_SAMPLE / dw.SAMPLING_RATE, abs=1e-4)
        assert tr.stats.sac.kt1.strip() == "P"
        assert np.array_equal(tr.data, full[k])


def test_picked_true_polarities_agree_with_demo_truth(archive, ingested, demo_tables, tmp_path):
    from pipeline import picking
    from pipeline.rejects import Rejects
    dest, _ = archive
    eid = sa.choose_events(sa.archive_tables(), N_EVENTS)[0]
    root = tmp_path / "one"
    root.mkdir()
    (root / eid).symlink_to(dest / sa.WAVEFORMS_DIR / eid, target_is_directory=True)
    pol, _ = picking.pick_folders(root, ingested["events"], ingested["stations"],
                                  {"onset": picking.load_picker("onset")}, Rejects(), with_snippets=False)
    assert set(pol["event_id"]) == {eid} and pol["reversed"].all()
    truth, _ = dw.generate_waveforms(demo_tables, max_events=None, event_ids=[eid])  # the demo's XD stations
    j = pol.merge(truth[["event_id", "station", "true_polarity", "near_nodal", "dead"]], on=["event_id", "station"])
    assert len(j) == len(pol)
    use = (j["polarity"] != 0) & ~j["near_nodal"] & ~j["dead"]
    assert use.sum() >= 20
    agree = (j.loc[use, "polarity"] == j.loc[use, "true_polarity"]).mean()
    assert agree >= 0.9, agree


def test_rerun_skips_complete_events_and_repairs_broken_ones(archive):
    dest, _ = archive
    wave = dest / sa.WAVEFORMS_DIR
    ids = sorted(p.name for p in wave.iterdir())
    before = {e: _mtimes(wave / e) for e in ids}
    s = sa.write_archive(dest, N_EVENTS)
    assert s["events_skipped"] == N_EVENTS and s["events_written"] == 0 and s["files_written"] == 0
    assert {e: _mtimes(wave / e) for e in ids} == before

    broken = wave / ids[1]
    victim = sorted(broken.iterdir())[0]
    victim.write_bytes(victim.read_bytes()[:1000])  # a truncated file makes the event incomplete
    (sorted(broken.iterdir())[-1]).unlink()
    s = sa.write_archive(dest, N_EVENTS)
    assert s["events_written"] == 1 and s["events_skipped"] == N_EVENTS - 1
    assert sa.event_complete(broken, sa.expected_files(sa.archive_tables()["stations"]))
    for e in (ids[0], ids[2]):
        assert _mtimes(wave / e) == before[e]
    assert s["stale_event_folders"] == 0
    assert s["files"] == sum(1 for p in dest.rglob("*") if p.is_file())
    assert s["bytes"] == sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())


def test_choose_events_nested_and_fills_beyond_the_mechanism_events():
    tables = sa.archive_tables()
    mech = set(tables["mechanisms"]["event_id"])
    small, large = sa.choose_events(tables, 50), sa.choose_events(tables, 120)
    assert set(small) <= set(large) and set(large) <= mech  # a larger archive grows a smaller one
    ids = sa.choose_events(tables, len(mech) + 5)
    assert len(ids) == len(mech) + 5 == len(set(ids)) and ids == sorted(ids)
    assert mech <= set(ids) and set(ids) <= set(tables["events"]["event_id"])
    assert ids == sa.choose_events(tables, len(mech) + 5)  # deterministic
    assert sa.choose_events(tables, 50, waveform_seed=1) != small
    assert sa.choose_events(tables, 0) == []


def test_cli_is_registered():
    from pipeline.__main__ import parser
    args = parser().parse_args(["synth-archive", "--events", "4", "--dest", "x", "--seed", "7"])
    assert args.func is sa._cmd and (args.events, args.dest, args.seed) == (4, "x", 7)
