"""``python -m pipeline export`` on a demo build, every format, read back with ObsPy and
SKHASH; and the one-line errors of ``python -m pipeline`` (``pipeline.__main__.main``).

The expected selections are recomputed here with pandas from the tables, independently of
the dashboard's DuckDB SQL the export reuses.
"""
from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import tables
from pipeline.__main__ import main

obspy = pytest.importorskip("obspy")

ROOT = Path(__file__).resolve().parents[1]
needs_skhash = pytest.mark.skipif(importlib.util.find_spec("SKHASH") is None,
                                  reason="SKHASH (pip package skhash) is not installed")


# ----------------------------------------------------------------------------- helpers

def _export(capsys, data_dir, fmt, out, *args) -> str:
    """Run the command in-process; its one printed line."""
    code = main(["export", "--format", fmt, "--data-dir", str(data_dir), "--out", str(out), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1, captured.out
    return lines[0]


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "pipeline", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout)


def _utc(ts) -> "obspy.UTCDateTime":
    return obspy.UTCDateTime(ns=int(pd.Timestamp(ts).value))


@pytest.fixture(scope="module")
def t(demo_data_dir):
    """The demo build's tables (read once; tests must not modify them)."""
    names = ("events", "mechanisms", "polarities", "waveforms", "stations", "mechanism_stations",
             "velocity_model", "wells", "stages", "injection", "frame")
    return {n: tables.read_table(demo_data_dir, n) for n in names}


def expected(t, *, clusters=(), start=None, end=None, mmin=None, mmax=None, groups=(), qualities=(), sources=(),
             mech="A"):
    """(event ids the dashboard counts, mechanism (event_id, source) rows it lists), in pandas.

    The mechanism population ``mech`` (components.filters): candidates of its sources, its
    quality classes (A for the default) and ``sources``; each event's preferred candidate
    (published, computed, then quality A..D, null). The events take group/quality from that
    mechanism; the mechanisms listed are those chosen rows (for ``all``: every candidate row). A null
    matches 'none'; times inclusive, a date-only end = whole day."""
    pop_sources = {"published": ["published"], "computed": ["computed"]}.get(mech, [])
    classes = {"A": ["A"], "AB": ["A", "B"]}.get(mech)
    ev, me = t["events"].copy(), t["mechanisms"].copy()
    if pop_sources:
        me = me[me["source"].isin(pop_sources)]
    if sources:
        me = me[me["source"].isin(sources)]
    if classes:
        me = me[me["quality"].isin(classes)]
    rank = me["source"].map({"published": 0, "computed": 1}).fillna(2)
    pick = me.assign(_r=rank, _q=me["quality"].fillna("Z")).sort_values(["event_id", "_r", "_q", "source"])
    pick = pick.drop_duplicates("event_id").drop(columns=["_r", "_q"])
    ev["group"] = ev["event_id"].map(pick.set_index("event_id")["group"]).fillna("none")
    ev["quality"] = ev["event_id"].map(pick.set_index("event_id")["quality"])
    me = me if mech == "all" else pick

    def keep(df):
        m = pd.Series(True, index=df.index)
        if start is not None:
            m &= df["time"] >= pd.Timestamp(start, tz="UTC")
        if end is not None:
            e = pd.Timestamp(end, tz="UTC")
            if len(end) == 10:
                e += pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
            m &= df["time"] <= e
        if mmin is not None:
            m &= df["magnitude"] >= mmin          # a null magnitude never passes a bound
        if mmax is not None:
            m &= df["magnitude"] <= mmax
        for col, values in (("cluster", clusters), ("group", groups), ("quality", qualities)):
            if values:
                m &= df[col].astype(object).where(df[col].notna(), "none").isin(values)
        return df[m.fillna(False).astype(bool)]

    events = keep(ev)
    mech = keep(me)
    return set(events["event_id"]), set(zip(mech["event_id"], mech["source"]))


# ----------------------------------------------------------------------------- QuakeML

def test_quakeml_events_mechanisms_and_picks_read_back(demo_data_dir, t, tmp_path, capsys):
    """A filtered export read back with obspy.read_events: the right events, their catalogue
    origin (depth in m) and magnitude, every selected mechanism, and one P pick per station with the
    polarity SKHASH inverts, its time to the microsecond and the arrival's angles."""
    pol, me, ms = t["polarities"], t["mechanisms"], t["mechanism_stations"]
    with_pol = sorted(set(pol["event_id"]))
    start, end = t["events"].set_index("event_id").loc[[with_pol[3], with_pol[9]], "time"]
    q = f"start={start:%Y-%m-%dT%H:%M:%S.%f}&end={end:%Y-%m-%dT%H:%M:%S.%f}"
    out = tmp_path / "cat.xml"
    line = _export(capsys, demo_data_dir, "quakeml", out, "--query", q)

    want_ev, want_me = expected(t, start=str(start), end=str(end))
    ids = want_ev | {e for e, _ in want_me}
    assert f"{len(ids)} events, {len(want_me)} focal mechanisms" in line and str(out) in line
    cat = obspy.read_events(str(out))
    got = [e.resource_id.id.rsplit("/", 1)[1] for e in cat]
    ev = t["events"].set_index("event_id")
    assert got == sorted(ids, key=lambda e: (ev.loc[e, "time"], e))   # by origin time

    # the polarity per station SKHASH uses: in the demo only pickers ran, so the best
    # picker (cnn) with SNR > 2; undetermined (0) picks give a time-only pick
    chosen = pol[(pol["method"] == "cnn") & (pol["snr"] > 2) & (pol["polarity"] != 0)]
    chosen = chosen.set_index(["event_id", "station"])
    angles = ms.set_index(["event_id", "station"])
    n_picks = n_pol = 0
    for e in cat:
        eid = e.resource_id.id.rsplit("/", 1)[1]
        row = ev.loc[eid]
        o = e.preferred_origin()
        assert o.time == _utc(row["time"])
        assert o.latitude == row["lat"] and o.longitude == row["lon"]
        assert o.depth == pytest.approx(row["depth_km"] * 1000.0, abs=1e-3)     # metres
        assert e.preferred_magnitude().mag == row["magnitude"]
        assert e.preferred_magnitude().magnitude_type == "ML"
        # the event's mechanisms in the selection (the default population: its preferred one if quality A)
        mrows = me[[(e_, src) in want_me and e_ == eid for e_, src in zip(me["event_id"], me["source"])]]
        assert sorted(fm.resource_id.id.rsplit("/", 1)[1] for fm in e.focal_mechanisms) == sorted(mrows["source"])
        for fm in e.focal_mechanisms:
            r = mrows[mrows["source"] == fm.resource_id.id.rsplit("/", 1)[1]].iloc[0]
            np1 = fm.nodal_planes.nodal_plane_1
            assert (np1.strike, np1.dip, np1.rake) == pytest.approx((r["strike"], r["dip"], r["rake"]), abs=1e-6)
            assert fm.nodal_planes.nodal_plane_2.strike == pytest.approx(r["strike2"], abs=0.01)
            assert fm.principal_axes.p_axis.azimuth == pytest.approx(r["p_trend"], abs=0.01)
            if pd.notna(r["quality"]):
                assert any(c.text == f"SKHASH quality: {r['quality']}" for c in fm.comments)
        epol = pol[pol["event_id"] == eid]
        assert len(e.picks) == epol["station"].nunique()          # every station has a P time
        arrivals = {a.pick_id.id: a for a in o.arrivals}
        assert len(arrivals) == len(e.picks)
        for p in e.picks:
            sta = p.waveform_id.station_code
            prow = epol[(epol["station"] == sta)].iloc[0]
            assert p.phase_hint == "P" and p.waveform_id.network_code == prow["network"]
            assert p.waveform_id.channel_code == prow["channel"] and p.waveform_id.location_code == ""
            assert p.time == _utc(prow["p_time"])                 # to the microsecond
            assert p.time.microsecond == pd.Timestamp(prow["p_time"]).microsecond
            if (eid, sta) in chosen.index:
                want = chosen.loc[(eid, sta)]
                assert p.polarity == ("positive" if want["polarity"] > 0 else "negative")
                assert p.method_id.id == "smi:local/method/cnn"
                n_pol += 1
            else:
                assert p.polarity is None
            assert p.evaluation_mode == "automatic"
            a = arrivals[p.resource_id.id]
            assert a.phase == "P"
            if (eid, sta) in angles.index:
                assert a.azimuth == pytest.approx(angles.loc[(eid, sta), "azimuth_deg"], abs=1e-9)
                assert a.takeoff_angle == pytest.approx(angles.loc[(eid, sta), "takeoff_deg"], abs=1e-9)
            else:
                assert a.azimuth is None and a.takeoff_angle is None
            n_picks += 1
    assert n_picks > 100 and n_pol > 50
    assert f"{n_picks} P picks ({n_pol} with polarity" in line


def test_pick_table_manual_overrides_and_missing_times():
    """pick_table on hand-made rows: manual beats the picker, a low-SNR pick gives no
    polarity but keeps its time, a station's time comes from another row when the chosen
    one has none, a polarity with no time anywhere is left out (counted), published picks
    are manual (and, as for SKHASH's 'auto' choice, carry no polarity)."""
    from pipeline.export.quakeml import pick_table

    t0 = pd.Timestamp("2016-11-04T06:48:24.680123Z")
    rows = [
        # event, station, method, polarity, snr, p_time
        ("E1", "A", "cnn", 1, 5.0, t0),
        ("E1", "A", "manual", -1, np.nan, None),          # manual wins; time from the cnn row
        ("E1", "B", "cnn", -1, 1.0, t0 + pd.Timedelta("1ms")),   # SNR too low: time only
        ("E1", "C", "manual", 1, np.nan, None),            # no time anywhere: left out
        ("E1", "D", "onset", 1, 9.0, t0 + pd.Timedelta("2ms")),  # onset loses to cnn (event has cnn)
        ("E2", "A", "published", -1, np.nan, t0 + pd.Timedelta("3ms")),
    ]
    pol = pd.DataFrame(rows, columns=["event_id", "station", "method", "polarity", "snr", "p_time"])
    pol = pol.assign(network="5B", channel="DHZ", location="",
                     p_time=pd.to_datetime(pol["p_time"], utc=True))
    ms = pd.DataFrame({"event_id": ["E1"], "network": ["5B"], "station": ["A"], "takeoff_deg": [33.5],
                       "azimuth_deg": [120.25]})
    p = pick_table(pol, ms).set_index(["event_id", "station"])
    assert list(p.index) == [("E1", "A"), ("E1", "B"), ("E1", "D"), ("E2", "A")]
    assert p.attrs["untimed_polarities"] == 1
    a = p.loc[("E1", "A")]
    assert (a["polarity"], a["method"], a["evaluation_mode"], a["time"]) == (-1, "manual", "manual", t0)
    assert (a["takeoff_deg"], a["azimuth_deg"]) == (33.5, 120.25)
    b = p.loc[("E1", "B")]
    assert (b["polarity"], b["method"], b["evaluation_mode"]) == (0, "cnn", "automatic")
    assert p.loc[("E1", "D"), "polarity"] == 0                    # not the polarity SKHASH uses
    # 'auto' inverts manual and picker polarities only: a published one gives a time-only pick
    e2 = p.loc[("E2", "A")]
    assert (e2["polarity"], e2["method"], e2["evaluation_mode"]) == (0, "published", "manual")
    assert np.isnan(e2["takeoff_deg"])

    # and through QuakeML: negative, manual, the microseconds kept
    from pipeline.export.quakeml import catalog_to_quakeml

    ev = pd.DataFrame({"event_id": ["E1", "E2"], "time": [t0, t0], "lat": 54.3, "lon": -117.2, "depth_km": 3.1,
                       "magnitude": [0.5, None]})
    buf = io.BytesIO()
    catalog_to_quakeml(ev, pd.DataFrame(columns=["event_id", "source", "strike", "dip", "rake", "lat", "lon"]),
                       pick_table(pol, ms), buf, validate=True)
    back = obspy.read_events(io.BytesIO(buf.getvalue()))
    pk = {p.waveform_id.station_code: p for p in back[0].picks}
    assert pk["A"].polarity == "negative" and pk["A"].evaluation_mode == "manual"
    assert pk["A"].method_id.id == "smi:local/method/manual" and pk["A"].time == _utc(t0)
    assert pk["B"].polarity is None and pk["B"].time.microsecond == 681123
    assert not back[1].magnitudes and back[1].picks[0].method_id.id == "smi:local/method/published"
    assert back[1].picks[0].evaluation_mode == "manual" and back[1].picks[0].polarity is None


def test_one_event(demo_data_dir, t, tmp_path, capsys):
    """``--event``: that event alone, with all its mechanisms, whatever the filters say."""
    me = t["mechanisms"]
    both = me.groupby("event_id")["source"].nunique()
    eid = both[both == 2].index[0]
    out = tmp_path / "one.xml"
    line = _export(capsys, demo_data_dir, "quakeml", out, "--event", eid, "--query", "mmin=9")
    cat = obspy.read_events(str(out))
    assert len(cat) == 1 and cat[0].resource_id.id == f"smi:local/event/{eid}"
    assert len(cat[0].focal_mechanisms) == 2 and cat[0].picks
    assert f"[event {eid}]" in line and "1 events, 2 focal mechanisms" in line
    r = main(["export", "--format", "quakeml", "--data-dir", str(demo_data_dir), "--out", str(tmp_path / "x.xml"),
              "--event", "20000101000000.000"])
    err = capsys.readouterr().err
    assert r == 2 and err.count("\n") == 1 and "no event '20000101000000.000'" in err


# ----------------------------------------------------------------------------- filters, CSV

FILTER_CASES = [
    ("cluster=NSw&start=2016-11-01&mmin=0", [], dict(clusters=["NSw"], start="2016-11-01", mmin=0.0)),
    ("", ["--cluster", "SWe", "--cluster", "none", "--end", "2016-11-10", "--mmax", "-1"],
     dict(clusters=["SWe", "none"], end="2016-11-10", mmax=-1.0)),
    ("quality=A&quality=none&source=computed", [], dict(qualities=["A", "none"], sources=["computed"])),
    ("group=g1&group=other&mmin=-1", ["--quality", "b"], dict(groups=["g1", "other"], qualities=["B"], mmin=-1.0)),
    ("group=none&mmax=-1.5", [], dict(groups=["none"], mmax=-1.5)),
    ("start=2016-11-05T12:00&end=2016-11-20", ["--source", "published"],
     dict(start="2016-11-05T12:00", end="2016-11-20", sources=["published"])),
    ("mech=all&quality=A&quality=none&source=computed", [], dict(qualities=["A", "none"], sources=["computed"],
                                                                 mech="all")),
    ("group=g1&mmin=-1", ["--mech", "any"], dict(groups=["g1"], mmin=-1.0, mech="any")),
    ("mech=AB&cluster=SWe", [], dict(clusters=["SWe"], mech="AB")),
    ("", ["--mech", "computed"], dict(mech="computed")),
]


@pytest.mark.parametrize("query,flags,want", FILTER_CASES)
def test_filters_select_what_the_app_selects(demo_data_dir, t, tmp_path, capsys, query, flags, want):
    """The CSV exports hold exactly the rows recomputed in pandas, and the app's counts."""
    from components.data import DataProvider
    from components.filters import Filters
    from pipeline.export.exports import read_mechanisms_csv

    want_ev, want_me = expected(t, **want)
    args = (["--query", query] if query else []) + flags
    mcsv = tmp_path / "m.csv"
    line = _export(capsys, demo_data_dir, "csv", mcsv, *args)
    got = read_mechanisms_csv(mcsv)
    assert set(zip(got["event_id"], got["source"])) == want_me and len(got) == len(want_me)
    assert f"{len(want_me)} mechanisms rows" in line
    ecsv = tmp_path / "e.csv"
    _export(capsys, demo_data_dir, "csv", ecsv, "--table", "events", *args)
    got_ev = pd.read_csv(ecsv, dtype={"event_id": str})
    assert set(got_ev["event_id"]) == want_ev and len(got_ev) == len(want_ev)
    # the dashboard's own counts for the same filters
    f = Filters.from_values(clusters=want.get("clusters"), time_start=want.get("start"), time_end=want.get("end"),
                            mag_min=want.get("mmin"), mag_max=want.get("mmax"), groups=want.get("groups"),
                            qualities=want.get("qualities"), sources=want.get("sources"),
                            population=want.get("mech"))
    c = DataProvider(demo_data_dir).counts(f).iloc[0]
    assert (int(c["events"]), int(c["mechanisms"])) == (len(want_ev), len(want_me))


def test_quakeml_has_the_event_of_every_filtered_mechanism(demo_data_dir, t, tmp_path, capsys):
    """A group filter applies to an event through its published mechanism but to each
    mechanism through its own group: an event whose computed mechanism is in group g1 but
    whose published one is not is not among the events the app counts, yet its g1
    mechanism is listed - the QuakeML holds it, with its event. Only with every mechanism
    row (``--mech all``): one mechanism per event (the default) lists the events' own."""
    want_ev, want_me = expected(t, groups=["g1"], mech="all")
    extra = {e for e, _ in want_me} - want_ev
    assert extra                     # the demo has such events
    out = tmp_path / "g1.xml"
    line = _export(capsys, demo_data_dir, "quakeml", out, "--group", "g1", "--mech", "all")
    cat = obspy.read_events(str(out))
    assert {e.resource_id.id.rsplit("/", 1)[1] for e in cat} == want_ev | extra
    assert sum(len(e.focal_mechanisms) for e in cat) == len(want_me)
    for e in cat:
        if e.resource_id.id.rsplit("/", 1)[1] in extra:
            assert [fm.resource_id.id.rsplit("/", 1)[1] for fm in e.focal_mechanisms] == ["computed"]
    assert f"{len(want_ev | extra)} events, {len(want_me)} focal mechanisms" in line


def test_csv_columns_and_values(demo_data_dir, t, tmp_path, capsys):
    from pipeline.export.exports import CSV_COLUMNS, EVENT_CSV_COLUMNS, read_mechanisms_csv

    out = tmp_path / "m.csv"
    _export(capsys, demo_data_dir, "csv", out, "--query", "cluster=NSw&table=mechanisms")
    got = read_mechanisms_csv(out)
    assert list(pd.read_csv(out, nrows=0).columns) == [c for c, _, _ in CSV_COLUMNS]
    ref = t["mechanisms"].set_index(["event_id", "source"]).loc[list(zip(got["event_id"], got["source"]))]
    np.testing.assert_array_equal(got["strike"].to_numpy(), ref["strike"].to_numpy())
    assert (got["time"].to_numpy() == ref["time"].to_numpy()).all()
    # table=events in the URL query picks the events CSV, as the dashboard's selector does
    ev_out = tmp_path / "e.csv"
    _export(capsys, demo_data_dir, "csv", ev_out, "--query", "cluster=NSw&table=events")
    e = pd.read_csv(ev_out, dtype={"event_id": str})
    assert list(e.columns) == [c for c, _, _ in EVENT_CSV_COLUMNS]
    cat = t["events"].set_index("event_id").loc[e["event_id"]]
    assert (pd.to_datetime(e["time_utc"], utc=True, format="ISO8601").to_numpy() == cat["time"].to_numpy()).all()


# ----------------------------------------------------------------------------- SKHASH

@needs_skhash
def test_skhash_folder_gives_the_computed_mechanisms(demo_data_dir, t, tmp_path, capsys):
    """A plain ``SKHASH control.txt`` (with the build's grid search) in the exported folder
    solves the selected events as the build did: same planes (within 1 deg, or Kagan < 1
    deg) and quality."""
    from pipeline.mechanisms.focal import kagan_angle

    comp = t["mechanisms"][t["mechanisms"]["source"] == "computed"].sort_values("time")
    assert len(comp) >= 5
    start, end = comp["time"].iloc[0], comp["time"].iloc[4]
    q = f"start={start:%Y-%m-%dT%H:%M:%S.%f}&end={end:%Y-%m-%dT%H:%M:%S.%f}"
    out = tmp_path / "skhash"
    line = _export(capsys, demo_data_dir, "skhash", out, "--query", q)
    assert "SKHASH control.txt" in line
    exe = Path(sys.executable).with_name("SKHASH")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "SKHASH.SKHASH"]
    # the grid search the build ran (SKHASH's Python and Fortran searches can differ by a
    # few degrees on near-ties)
    engine = set(comp["engine"])
    assert len(engine) == 1
    fortran = ["--use_fortran", "True"] if engine == {"fortran"} else []
    proc = subprocess.run(cmd + ["control.txt", *fortran], cwd=out, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    got = pd.read_csv(out / "OUT" / "mechanisms.csv")
    ids = pd.read_csv(out / "event_ids.csv", dtype={"event_id": str})
    got["event_id"] = got["event_id"].map(dict(zip(ids["skhash_id"], ids["event_id"])))
    want = comp[(comp["time"] >= start) & (comp["time"] <= end)].set_index("event_id")
    assert set(got["event_id"]) == set(want.index) and len(want) == 5
    for r in got.itertuples():
        w = want.loc[r.event_id]
        close = all(abs((a - b + 180) % 360 - 180) <= 1.0 for a, b in
                    ((r.strike, w["strike"]), (r.dip, w["dip"]), (r.rake, w["rake"])))
        assert close or kagan_angle((r.strike, r.dip, r.rake), (w["strike"], w["dip"], w["rake"])) < 1.0
        assert r.quality == w["quality"]


# ----------------------------------------------------------------------------- StationXML, MiniSEED

def test_stationxml_orientation_and_channels(demo_data_dir, t, tmp_path, capsys):
    out = tmp_path / "stations.xml"
    line = _export(capsys, demo_data_dir, "stationxml", out)
    inv = obspy.read_inventory(str(out))
    st = t["stations"].set_index(["network", "station"])
    rev = st[st["reversed"]]
    assert len(rev) and len(rev) < len(st)
    assert f"{len(st)} stations" in line and f"{len(rev)} reversed" in line
    rates = t["waveforms"].groupby(["network", "station", "channel"])["sampling_rate"].first()
    seen = 0
    for net in inv:
        for sta in net:
            row = st.loc[(net.code, sta.code)]
            assert (sta.latitude, sta.longitude, sta.elevation) == (row["lat"], row["lon"], row["elevation_m"])
            z = [c for c in sta.channels if c.code.endswith("Z")]
            assert len(z) == 1
            cha = z[0]
            # SEED: dip positive down; -90 = positive up (normal), +90 = positive down (reversed)
            assert cha.dip == (90.0 if row["reversed"] else -90.0)
            assert cha.azimuth == 0.0 and cha.depth == 0.0
            if (net.code, sta.code, cha.code) in rates.index:
                assert cha.sample_rate == rates.loc[(net.code, sta.code, cha.code)]
            seen += 1
    assert seen == len(st)


def test_stationxml_fallback_vertical_and_horizontals():
    from pipeline.export.stationxml import stations_to_inventory

    st = pd.DataFrame({"network": "5B", "station": ["1", "2", "3", "4"], "lat": 54.0, "lon": -117.0,
                       "elevation_m": [800.0, None, 810.0, 820.0], "reversed": [True, False, False, False]})
    ch = pd.DataFrame({"network": "5B", "station": ["1", "1", "1", "4"], "location": "00",
                       "channel": ["DPZ", "DPN", "DPE", "DPZ"], "sampling_rate": 500.0})
    vt = pd.DataFrame({"network": ["5B"], "station": ["2"], "location": [""], "channel": ["DHZ"]})
    buf = io.BytesIO()
    stations_to_inventory(st, ch, vt, buf)
    inv = obspy.read_inventory(io.BytesIO(buf.getvalue()))
    s1, s2, s3, _ = inv[0]
    got = {c.code: (c.azimuth, c.dip, c.location_code, c.sample_rate) for c in s1}
    assert got == {"DPZ": (0.0, 90.0, "00", 500.0), "DPN": (0.0, 0.0, "00", 500.0), "DPE": (90.0, 0.0, "00", 500.0)}
    assert [(c.code, c.dip) for c in s2] == [("DHZ", -90.0)] and s2.elevation == 0.0
    assert [c.code for c in s3] == ["DPZ"]          # the data set's most common vertical code


def test_miniseed_start_times_and_samples(demo_data_dir, t, tmp_path, capsys):
    w, pol = t["waveforms"], t["polarities"]
    ids = sorted(set(w["event_id"]))[:4]
    start, end = t["events"].set_index("event_id").loc[[ids[0], ids[-1]], "time"]
    out = tmp_path / "waveforms"
    line = _export(capsys, demo_data_dir, "miniseed", out, "--start", f"{start:%Y-%m-%dT%H:%M:%S.%f}",
                   "--end", f"{end:%Y-%m-%dT%H:%M:%S.%f}")
    files = sorted(out.glob("*.mseed"))
    assert [f.stem for f in files] == ids
    ptime = pol.dropna(subset=["p_time"]).drop_duplicates(["event_id", "network", "station"]) \
        .set_index(["event_id", "network", "station"])["p_time"]
    n = 0
    for f in files:
        rows = w[w["event_id"] == f.stem].set_index(["network", "station", "channel"])
        stream = obspy.read(str(f))
        assert len(stream) == len(rows)
        for tr in stream:
            s = tr.stats
            r = rows.loc[(s.network, s.station, s.channel)]
            assert s.mseed.encoding == "FLOAT32" and tr.data.dtype == np.float32
            np.testing.assert_array_equal(tr.data, np.asarray(r["samples"], dtype=np.float32))
            assert s.sampling_rate == r["sampling_rate"]
            want = _utc(ptime.loc[(f.stem, s.network, s.station)]) + float(r["t0_s"])
            assert abs(s.starttime - want) <= 1e-6
            n += 1
    assert f"{len(ids)} event files, {n} traces" in line and "skipped" not in line
    assert not (tmp_path / "waveforms.tmp").exists()
    # --force replaces an earlier MiniSEED export, never a folder holding other files
    _export(capsys, demo_data_dir, "miniseed", out, "--force", "--event", ids[0])
    assert [f.stem for f in out.glob("*.mseed")] == [ids[0]]
    (out / "notes.txt").write_text("keep me")
    assert main(["export", "--format", "miniseed", "--data-dir", str(demo_data_dir), "--out", str(out),
                 "--force"]) == 2
    assert "holds more than .mseed files" in capsys.readouterr().err
    assert (out / "notes.txt").exists() and (out / f"{ids[0]}.mseed").exists()


def test_miniseed_skips_traces_without_p_time(tmp_path):
    from pipeline.export.miniseed import p_times, write_event_miniseed

    w = pd.DataFrame({"event_id": "E1", "network": "5B", "station": ["A", "A", "B"], "location": "",
                      "channel": ["DHZ", "DHN", "DHZ"], "sampling_rate": 250.0, "t0_s": -0.5,
                      "samples": [np.arange(10, dtype=np.float32)] * 3})
    pol = pd.DataFrame({"event_id": ["E1", "E1"], "network": "5B", "station": ["A", "B"],
                        "p_time": pd.to_datetime(["2016-11-04T06:48:25.123457Z", None], utc=True)})
    res = write_event_miniseed(w, p_times(pol), tmp_path)
    assert (res.events, res.traces, res.skipped) == (1, 2, 1)
    st = obspy.read(str(tmp_path / "E1.mseed"))
    assert sorted(tr.stats.channel for tr in st) == ["DHN", "DHZ"]          # horizontal: its station's P
    assert all(tr.stats.starttime == obspy.UTCDateTime("2016-11-04T06:48:24.623457Z") for tr in st)


# ----------------------------------------------------------------------------- project

def test_project_folder(demo_data_dir, t, tmp_path, capsys):
    out = tmp_path / "proj"
    line = _export(capsys, demo_data_dir, "project", out, "--query", "cluster=NSw&start=2016-11-20",
                   "--name", "NSw late")
    assert not (tmp_path / "proj.tmp").exists()
    meta = tomllib.loads((out / "project.toml").read_text())
    assert meta == {"name": "NSw late", "catalog": "catalog.xml", "stations": "stations.xml",
                    "waveforms": "waveforms", "velocity_model": "vp.csv", "wells": "wells.csv",
                    "stages": "stages.csv", "injection": "injection.csv",
                    "frame_origin": t["frame"][["origin_lat", "origin_lon"]].iloc[0].tolist()}
    want_ev, want_me = expected(t, clusters=["NSw"], start="2016-11-20")
    cat = obspy.read_events(str(out / "catalog.xml"))
    assert {e.resource_id.id.rsplit("/", 1)[1] for e in cat} == want_ev | {e for e, _ in want_me}
    inv = obspy.read_inventory(str(out / "stations.xml"))
    assert sum(len(n) for n in inv) == len(t["stations"])
    mseed = {f.stem for f in (out / "waveforms").glob("*.mseed")}
    assert mseed == set(t["waveforms"]["event_id"]) & (want_ev | {e for e, _ in want_me}) and mseed
    vp = pd.read_csv(out / "vp.csv")
    assert list(vp.columns) == ["depth_km", "vp_km_s"]
    np.testing.assert_array_equal(vp.to_numpy(), t["velocity_model"].sort_values("depth_km").to_numpy())
    wells = pd.read_csv(out / "wells.csv")
    assert list(wells.columns) == ["well", "vertex", "lat", "lon", "depth_km"] and len(wells) == len(t["wells"])
    stages = pd.read_csv(out / "stages.csv")
    # the demo's stages carry depth and treatment columns too (written when present)
    assert list(stages.columns) == ["well", "stage_no", "time", "lat", "lon", "day_index", "depth_km", "rate_m3_min",
                                    "pumping_min", "volume_m3"]
    times = pd.to_datetime(stages["time"], utc=True, format="ISO8601")
    ref = t["stages"].sort_values(["well", "stage_no"])
    assert (times.to_numpy() == ref["time"].to_numpy()).all() and stages["time"].str.endswith("Z").all()
    inj = pd.read_csv(out / "injection.csv")
    assert list(inj.columns) == ["date", "rate_m3_min", "volume_m3", "well"] and len(inj) == len(t["injection"])
    assert f"{len(cat)} events" in line and f"{len(mseed)} waveform files" in line

    # an existing export is refused without --force, replaced with it
    before = (out / "catalog.xml").stat().st_mtime_ns
    r = main(["export", "--format", "project", "--data-dir", str(demo_data_dir), "--out", str(out)])
    err = capsys.readouterr().err
    assert r == 2 and err.count("\n") == 1 and "--force" in err
    assert (out / "catalog.xml").stat().st_mtime_ns == before
    _export(capsys, demo_data_dir, "project", out, "--force", "--event", sorted(mseed)[0])
    assert len(obspy.read_events(str(out / "catalog.xml"))) == 1
    assert tomllib.loads((out / "project.toml").read_text())["name"] == "proj"
    assert not list(tmp_path.glob("proj.*"))
    # a folder that is not an earlier export is never replaced, not even with --force
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    r = main(["export", "--format", "project", "--data-dir", str(demo_data_dir), "--out", str(other), "--force"])
    assert r == 2 and "not an earlier project export" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "keep me"


# ----------------------------------------------------------------------------- errors

def _one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def test_bad_format_data_dir_and_values_are_one_line(demo_data_dir, tmp_path):
    r = _cli("export", "--format", "shapefile", "--data-dir", str(demo_data_dir), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "invalid choice: 'shapefile'" in _one_line(r.stderr)
    r = _cli("export", "--format", "quakeml", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "x"))
    line = _one_line(r.stderr)
    assert r.returncode == 2 and "no such data folder" in line and "python -m pipeline build" in line
    (tmp_path / "empty").mkdir()
    r = _cli("export", "--format", "csv", "--data-dir", str(tmp_path / "empty"), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "not a built data folder" in _one_line(r.stderr)
    for bad, what in ((["--mmin", "big"], "invalid magnitude 'big'"), (["--start", "2016-13-01"], "invalid time"),
                      (["--query", "cluster=NSw&colour=red"], "unknown key(s) colour"),
                      (["--query", "mmax=abc"], "mmax: invalid magnitude"), (["--quality", "E"], "invalid quality")):
        r = _cli("export", "--format", "csv", "--data-dir", str(demo_data_dir), "--out", str(tmp_path / "x"), *bad)
        assert r.returncode == 2 and what in _one_line(r.stderr), (bad, r.stderr)
    assert not (tmp_path / "x").exists()
    # -v: the same failure with its traceback
    r = _cli("-v", "export", "--format", "quakeml", "--data-dir", str(tmp_path / "nope"), "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "Traceback" in r.stderr and "InputError" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: ")


def test_existing_output_is_refused_without_force(demo_data_dir, tmp_path, capsys):
    out = tmp_path / "m.csv"
    out.write_text("mine\n")
    assert main(["export", "--format", "csv", "--data-dir", str(demo_data_dir), "--out", str(out)]) == 2
    assert "already exists (pass --force" in _one_line(capsys.readouterr().err)
    assert out.read_text() == "mine\n"
    _export(capsys, demo_data_dir, "csv", out, "--force")
    assert out.read_text().startswith("event_id,source,")


def test_network_failure_of_fetch_is_one_line(tmp_path):
    """``fetch-toc2me`` (what ``make run SOURCE=toc2me`` runs first) with the network down:
    one line naming the cause and what to do, exit 1; ``-v`` adds the traceback."""
    import socket
    with socket.socket() as s:     # a port nobody listens on: connection refused, no network needed
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = ["fetch-toc2me", "--dest", str(tmp_path / "raw"), "--base-url", f"http://127.0.0.1:{port}/"]
    r = _cli(*args)
    line = _one_line("\n".join(ln for ln in r.stderr.splitlines() if " WARNING " not in ln and " INFO " not in ln))
    assert r.returncode == 1 and "cannot download" in line and "check the network connection" in line
    assert "Traceback" not in r.stderr
    r = _cli("-v", *args)
    assert r.returncode == 1 and "Traceback" in r.stderr and "FetchError" in r.stderr


def test_ensure_toc2me_offline_is_one_line(tmp_path, monkeypatch, capsys):
    """``make run SOURCE=toc2me`` offline: ``ensure`` fetches first; the FetchError is one line."""
    from pipeline.ingest import fetch

    def offline(dest, **kw):
        raise fetch.FetchError("catalog/ToC2ME.xlsx: cannot download https://raw.githubusercontent.com/...: "
                               "[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(fetch, "fetch_toc2me", offline)
    r = main(["ensure", "--source", "toc2me", "--raw-dir", str(tmp_path / "raw"), "--data-dir", str(tmp_path / "d")])
    line = _one_line(capsys.readouterr().err)
    assert r == 1 and "Temporary failure in name resolution" in line and "--input DIR" in line


def test_unexpected_errors_and_missing_inputs(tmp_path, monkeypatch, capsys):
    import pipeline.__main__ as cli

    def boom(args):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(cli, "_cmd_info", boom)
    assert main(["info", "--data-dir", str(tmp_path)]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line == "error: RuntimeError: something broke (an unexpected failure: run with -v for the traceback)"
    assert main(["-v", "info", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("error: RuntimeError")
    # a missing input folder: exit 2, one line
    r = main(["build", "--source", "toc2me", "--input", str(tmp_path / "nope"), "--data-dir", str(tmp_path / "d")])
    assert r == 2 and "does not exist" in _one_line(capsys.readouterr().err)
    # a bad flag value: argparse's exit 2, one line instead of the usage dump
    with pytest.raises(SystemExit) as exc:
        main(["build", "--workers", "many"])
    assert exc.value.code == 2
    assert "invalid int value: 'many'" in _one_line(capsys.readouterr().err)


def test_quakeml_carries_the_reviewed_polarity(demo_data_dir, t, tmp_path, capsys):
    """A pick reviewed in the dashboard overrides the picker in the export, as it does in every
    inversion; its time comes from the picker's row of that station."""
    import shutil

    from pipeline.review.reviews import ReviewStore
    data = tmp_path / "data"
    shutil.copytree(demo_data_dir, data, symlinks=True)
    pol = t["polarities"]
    row = pol[(pol.method == "cnn") & (pol.polarity != 0) & (pol.snr > 2)].iloc[0]
    ReviewStore(data).set_pick(row.event_id, row.network, row.station, -int(row.polarity), reviewer="tester")
    out = tmp_path / "ev.xml"
    _export(capsys, data, "quakeml", out, "--event", row.event_id)
    picks = [p for p in obspy.read_events(str(out))[0].picks if p.waveform_id.station_code == row.station]
    assert len(picks) == 1
    want = {1: "positive", -1: "negative"}[-int(row.polarity)]
    assert picks[0].polarity == want and picks[0].method_id.id.endswith("/manual")
    assert picks[0].time == obspy.UTCDateTime(pd.Timestamp(row.p_time).isoformat())
