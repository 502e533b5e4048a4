"""``--source files``: an experiment in standard formats (QuakeML, StationXML, MiniSEED/SAC,
CSV) described by project.toml, built end to end.

The real-data test rewrites the shared ToC2ME files with ObsPy (not with this project's
exporter) into a layout the product has never seen - renamed SAC files in one flat folder
and one multi-channel MiniSEED file per station - and checks that the build finds every
trace by time, applies the 5B reversal from the StationXML dips, and reproduces the
published mechanisms from the published polarities.
"""
from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import build
from pipeline.errors import InputError
from pipeline.ingest import catalog_formats, project, station_formats, waveform_index
from pipeline.rejects import Rejects

EV1, EV2 = "20161104064824.680", "20161125051408.940"
FAST = dict(workers=1, dashboard=False, progress=False, chunk_events=4)


# --------------------------------------------------------------------------- writers (ObsPy only)

def _quakeml(path: Path, events: pd.DataFrame, picks: pd.DataFrame | None = None,
             mechanisms: pd.DataFrame | None = None) -> None:
    """A QuakeML file written with ObsPy from plain tables (independent of pipeline.export)."""
    from obspy import UTCDateTime
    from obspy.core.event import (Catalog, Event, FocalMechanism, Magnitude, NodalPlane, NodalPlanes, Origin,
                                  Pick, ResourceIdentifier, WaveformStreamID)
    cat = Catalog()
    for e in events.itertuples():
        ev = Event(resource_id=ResourceIdentifier(f"smi:test/event/{e.Index}"))
        o = Origin(time=UTCDateTime(pd.Timestamp(e.time).isoformat()), latitude=e.lat, longitude=e.lon,
                   depth=None if pd.isna(e.depth_km) else e.depth_km * 1000.0)
        ev.origins.append(o)
        ev.preferred_origin_id = o.resource_id
        if pd.notna(e.magnitude):
            ev.magnitudes.append(Magnitude(mag=e.magnitude, magnitude_type="ML"))
        if picks is not None:
            for p in picks[picks.event_id == e.event_id].itertuples():
                ev.picks.append(Pick(time=UTCDateTime(ns=int(p.time_ns)), phase_hint="P",
                                     waveform_id=WaveformStreamID(p.network, p.station, "", p.channel),
                                     polarity={1: "positive", -1: "negative", 0: "undecidable"}[p.polarity],
                                     evaluation_mode="automatic"))
        if mechanisms is not None:
            for m in mechanisms[mechanisms.event_id == e.event_id].itertuples():
                trig = Origin(time=o.time, latitude=m.lat_skhash, longitude=m.lon_skhash,
                              depth=m.depth_km_skhash * 1000.0)
                ev.origins.append(trig)
                ev.focal_mechanisms.append(FocalMechanism(
                    triggering_origin_id=trig.resource_id,
                    nodal_planes=NodalPlanes(nodal_plane_1=NodalPlane(m.strike, m.dip, m.rake), preferred_plane=1)))
        cat.append(ev)
    cat.write(str(path), format="QUAKEML")


def _stationxml(path: Path, stations: pd.DataFrame, reversed_by_dip: bool = True) -> None:
    from obspy.core.inventory import Channel, Inventory, Network, Station
    inv = Inventory(networks=[], source="test")
    for net, grp in stations.groupby("network"):
        n = Network(code=net)
        for s in grp.itertuples():
            dip = 90.0 if (s.reversed and reversed_by_dip) else -90.0
            chans = [Channel("DHZ", "", s.lat, s.lon, s.elevation_m, 0.0, azimuth=0.0, dip=dip, sample_rate=500)]
            chans += [Channel(c, "", s.lat, s.lon, s.elevation_m, 0.0, azimuth=az, dip=0.0, sample_rate=500)
                      for c, az in (("DH1", 0.0), ("DH2", 90.0))]
            n.stations.append(Station(s.station, s.lat, s.lon, s.elevation_m, channels=chans))
        inv.networks.append(n)
    inv.write(str(path), format="STATIONXML")


def _toml(root: Path, **keys) -> None:
    lines = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {v}" for k, v in keys.items()]
    (root / "project.toml").write_text("\n".join(lines) + "\n")


# --------------------------------------------------------------------------- ToC2ME, rewritten

@pytest.fixture(scope="module")
def toc2me_project(toc2me_dir, toc2me_tables, tmp_path_factory):
    """The two public ToC2ME events (+ 20 catalogue events without waveforms) as a
    standard-format project: QuakeML with the published polarities as P picks (times from
    the SAC t1, else t3, headers) and the published mechanisms (triggering origin = the SKHASH
    location), StationXML with dip +90 on the 5B verticals, SAC renamed into one flat
    folder (EV1) and one 3-channel MiniSEED file per station (EV2), vz.north as vp.csv."""
    from obspy import Stream, read

    from pipeline.ingest import picks as ingest_picks
    root = tmp_path_factory.mktemp("toc2me_files")
    ev_all, st, mech = (toc2me_tables[k] for k in ("events", "stations", "mechanisms"))
    pol, loc = ingest_picks.load_picks(toc2me_dir / "picks", st, Rejects())
    pub = pol[pol.method == "published"].copy()
    # P times: the t1 headers of the vertical SAC files (what the published picks were made on)
    p_ns = {}
    (root / "waveforms" / "flat").mkdir(parents=True)
    (root / "waveforms" / "by_station").mkdir(parents=True)
    for k, ev in enumerate((EV1, EV2)):
        per_station: dict[str, Stream] = {}
        for f in sorted((toc2me_dir / "waveforms" / ev).glob("*.SAC")):
            tr = read(str(f))[0]
            # t1 (picked), else t3 (predicted), as the published workflow read them
            t_p = tr.stats.sac.get("t1", tr.stats.sac.get("t3"))
            if tr.stats.channel.endswith("Z") and t_p is not None:
                ref = tr.stats.starttime - float(tr.stats.sac.b)
                p_ns[(ev, tr.stats.station)] = (ref + float(t_p)).ns
            if k == 0:  # file names say nothing: matching must use the headers' times
                shutil.copy(f, root / "waveforms" / "flat" / f"trace_{len(list((root / 'waveforms' / 'flat').iterdir())):04d}.sac")
            else:
                tr.data = tr.data.astype(np.float32)
                per_station.setdefault(tr.stats.station, Stream()).append(tr)
        for sta, stream in per_station.items():
            for tr in stream:
                del tr.stats.sac
            stream.write(str(root / "waveforms" / "by_station" / f"{sta}.mseed"), format="MSEED", encoding="FLOAT32")
    pub["time_ns"] = [p_ns.get((e, s)) for e, s in zip(pub.event_id, pub.station)]
    assert pub["time_ns"].notna().all()
    pub = pub.assign(channel="DHZ")
    events = pd.concat([ev_all[ev_all.event_id.isin([EV1, EV2])],
                        ev_all[~ev_all.event_id.isin([EV1, EV2])].iloc[::1000].head(20)]).sort_values("time")
    # the location the published SKHASH run used: the .pol.hash headers, at full precision
    loc = loc.drop_duplicates("event_id").set_index("event_id")
    published = mech[(mech.source == "published") & mech.event_id.isin([EV1, EV2])].copy()
    for c in ("lat", "lon", "depth_km"):
        published[f"{c}_skhash"] = loc.loc[published.event_id, c].to_numpy()
    _quakeml(root / "catalog.xml", events, pub, published)
    _stationxml(root / "stations.xml", st)
    pd.read_csv(toc2me_dir / "skhash_demo" / "vz.north", header=None, names=["depth_km", "vp_km_s"]) \
        .to_csv(root / "vp.csv", index=False)
    _toml(root, name="ToC2ME rewritten", catalog="catalog.xml", stations="stations.xml", waveforms="waveforms",
          velocity_model="vp.csv")
    return root, pub, events, published


@pytest.fixture(scope="module")
def toc2me_files_build(toc2me_project, tmp_path_factory):
    root = toc2me_project[0]
    data = tmp_path_factory.mktemp("toc2me_files_data")
    info = build.build("files", root, data, options=build.Options(picks="published", **FAST))
    return data, info


def test_the_stationxml_dips_carry_the_5b_reversal(toc2me_project, toc2me_tables):
    st = station_formats.read_stations(toc2me_project[0] / "stations.xml", Rejects())
    ref = toc2me_tables["stations"].set_index(["network", "station"]).reversed
    got = st.set_index(["network", "station"]).reversed
    assert got.sort_index().equals(ref.sort_index())
    assert got.any()  # the 5B verticals are reversed, from metadata only


def test_toc2me_rewritten_reproduces_the_published_mechanisms(toc2me_files_build, toc2me_project):
    from pipeline.tables import read_table
    data, _ = toc2me_files_build
    _, pub, events, published = toc2me_project
    mech = read_table(data, "mechanisms")
    comp = mech[mech.source == "computed"].set_index("event_id")
    # the files source names events by their catalogue origin time (ToC2ME keeps the
    # published SKHASH-solution ids, 0.01-0.02 s later)
    ids = events.set_index("event_id").catalogue_id
    assert set(comp.index) == {ids[EV1], ids[EV2]}
    for ev in (EV1, EV2):
        want = published.set_index("event_id").loc[ev, ["strike", "dip", "rake"]].astype(float).tolist()
        assert comp.loc[ids[ev], ["strike", "dip", "rake"]].astype(float).tolist() == pytest.approx(want, abs=0.1)
        assert comp.loc[ids[ev], "n_polarities"] == (pub.event_id == ev).sum()
    assert comp.kagan_to_published.max() < 0.1
    # every catalogue event is there, with or without waveforms
    ev_tab = read_table(data, "events")
    assert sorted(ev_tab.event_id) == sorted(events.catalogue_id)


def test_every_vertical_trace_is_found_by_time_and_picked(toc2me_files_build, toc2me_project, toc2me_dir,
                                                          toc2me_tables):
    """The CNN on the rewritten files gives the same polarities and SNR as on the original
    event folders (same windows, same noise window, reversal from the StationXML). EV1's
    SAC files keep their t1/t3 and ``o`` headers, so every vertical is picked; EV2's
    MiniSEED files carry no pick, so only its stations with a catalogue pick are."""
    from pipeline import picking
    from pipeline.tables import read_table
    data, _ = toc2me_files_build
    got = read_table(data, "polarities")
    got = got[got.method == "cnn"].set_index(["event_id", "station"]).sort_index()
    pickers = {"cnn": picking.load_picker("cnn")}
    ref, _ = picking.pick_folders(toc2me_dir / "waveforms", toc2me_tables["events"], toc2me_tables["stations"],
                                  pickers, Rejects(), with_snippets=False)
    ids = toc2me_tables["events"].set_index("event_id").catalogue_id
    pub = toc2me_project[1]
    picked2 = set(pub[pub.event_id == EV2].station)
    ref = ref[(ref.event_id == EV1) | ref.station.isin(picked2)]
    ref = ref.assign(event_id=ref.event_id.map(ids)).set_index(["event_id", "station"]).sort_index()
    assert len(got) == len(ref) > 100
    assert got.index.equals(ref.index)
    assert (got.polarity == ref.polarity).all()
    np.testing.assert_allclose(got.prob_down_recorded, ref.prob_down_recorded, atol=1e-5)
    np.testing.assert_allclose(got.snr, ref.snr, rtol=1e-6)
    catalogued = {(ids[e], st) for e, st in zip(pub.event_id, pub.station)}
    from_catalog = np.array([k in catalogued for k in got.index])
    assert (got.p_source[from_catalog] == "catalog").all()
    assert set(got.p_source[~from_catalog]) == {"picked", "predicted"}  # SAC t1 / t3


def test_unused_and_unknown_waveforms_are_rejects(toc2me_project, tmp_path):
    root = tmp_path / "p"
    shutil.copytree(toc2me_project[0], root)
    (root / "waveforms" / "notes.txt").write_text("not a waveform")
    (root / "waveforms" / "broken.mseed").write_bytes(b"\x00" * 300)
    from obspy import Stream, Trace, UTCDateTime
    tr = Trace(np.ones(1000, np.float32) * np.arange(1000, dtype=np.float32))
    tr.stats.update({"network": "XX", "station": "NOPE", "channel": "HHZ", "sampling_rate": 100,
                     "starttime": UTCDateTime("2016-11-04T06:48:20")})
    Stream([tr]).write(str(root / "waveforms" / "unknown_station.mseed"), format="MSEED")
    tr2 = tr.copy()
    tr2.stats.update({"network": "5B", "station": "1107", "starttime": UTCDateTime("2016-01-01")})
    Stream([tr2]).write(str(root / "waveforms" / "no_event.mseed"), format="MSEED")
    rejects = Rejects()
    proj = project.load(root)
    index = waveform_index.index_waveforms(proj.waveforms, rejects)
    p_times = waveform_index.station_p_times(proj.picks, index, proj.tables["events"])
    waveform_index.match_events(index, p_times, proj.tables["stations"], rejects, 0.598, 0.6)
    rej = rejects.to_frame().set_index("file").reason
    assert "not a waveform file name" in rej["notes.txt"]
    assert "unreadable waveform file" in rej["broken.mseed"]
    assert "NOPE" in rej["unknown_station.mseed"] and "not in the stations file" in rej["unknown_station.mseed"]
    assert "covers no event's P window" in rej["no_event.mseed"]
    # the original traces: every SAC file serves EV1; a MiniSEED file of EV2 is unused
    # exactly when its station has no catalogue pick (MiniSEED carries no pick of its own)
    pub = toc2me_project[1]
    picked2 = set(pub[pub.event_id == EV2].station)
    unpicked = {f"by_station/{p.name}" for p in (root / "waveforms" / "by_station").iterdir() if p.stem not in picked2}
    assert {f for f in rej.index if f.startswith(("flat/", "by_station/"))} == unpicked


# --------------------------------------------------------------------------- readers, bad input

def test_quakeml_units_ids_polarities_and_missing_values(tmp_path):
    events = pd.DataFrame({"event_id": ["a", "b", "c"],
                           "time": pd.to_datetime(["2020-01-01T00:00:01.2345", "2020-01-01T00:00:02",
                                                   "2020-01-01T00:00:01.2349"], utc=True, format="ISO8601"),
                           "lat": [10.0, 10.1, 10.2], "lon": [20.0, 20.1, 20.2], "depth_km": [2.5, np.nan, 3.0],
                           "magnitude": [1.0, np.nan, 0.5]})
    events.index = ["e1", "e2", "e3"]
    picks = pd.DataFrame({"event_id": ["a", "a"], "network": ["XX", "XX"], "station": ["S1", "S2"],
                          "channel": ["HHZ", "HHZ"], "polarity": [1, -1],
                          "time_ns": [pd.Timestamp("2020-01-01T00:00:02.000001", tz="UTC").value] * 2})
    _quakeml(tmp_path / "c.xml", events, picks)
    rejects = Rejects()
    ev, pk, _ = catalog_formats.read_catalog(tmp_path / "c.xml", rejects, tmp_path)
    assert list(ev.event_id) == ["20200101000001.234", "20200101000002.000"]  # c: same millisecond as a
    assert ev.depth_km.iloc[0] == pytest.approx(2.5) and np.isnan(ev.depth_km.iloc[1])
    assert np.isnan(ev.magnitude.iloc[1])
    reasons = rejects.to_frame().reason
    assert reasons.str.contains("no magnitude").sum() == 1
    assert reasons.str.contains("same millisecond").sum() == 1
    assert list(pk.polarity) == [1, -1] and set(pk.method) == {"published"}
    assert pk.time.iloc[0] == pd.Timestamp("2020-01-01T00:00:02.000001", tz="UTC")


def test_malformed_xml_names_the_file_and_line(tmp_path):
    (tmp_path / "bad.xml").write_text("<?xml version='1.0'?>\n<q:quakeml>\n<event>\n</q:quakeml>\n")
    with pytest.raises(InputError) as exc:
        catalog_formats.read_catalog(tmp_path / "bad.xml", Rejects(), tmp_path)
    assert exc.value.file == "bad.xml" and exc.value.line is not None


def test_csv_catalogue_and_stations_reject_bad_rows_with_their_line(tmp_path):
    (tmp_path / "cat.csv").write_text(textwrap.dedent("""\
        time,lat,lon,depth_km,magnitude,event_id
        2020-01-01T00:00:01.5,10,20,2.0,1.1,E1
        2020-01-01T00:00:03,95,20,2.0,1.1,E2
        not a time,10,20,2.0,1.1,E3
        2020-01-01T00:00:04,10,20,,,E4
        """))
    rejects = Rejects()
    ev, _, _ = catalog_formats.read_catalog(tmp_path / "cat.csv", rejects, tmp_path)
    assert list(ev.catalogue_id) == ["E1", "E4"]
    rej = rejects.to_frame()
    assert set(rej.line) == {3, 4, 5}
    assert rej.set_index("line").loc[3, "reason"].startswith("unusable catalogue row: lat")
    (tmp_path / "st.csv").write_text("network,station,lat,lon,elevation_m,reversed\n"
                                     "XX,S1,10,20,100,true\nXX,S2,10,20,100,maybe\nXX,S3,10,20,,0\n")
    st = station_formats.read_stations(tmp_path / "st.csv", rejects, tmp_path)
    assert list(st.station) == ["S1", "S3"] and list(st.reversed) == [True, False]


def test_project_toml_errors_are_clear(tmp_path):
    with pytest.raises(InputError, match="no project.toml"):
        project.load(tmp_path)
    _toml(tmp_path, catalog="cat.csv", stations="st.csv")
    with pytest.raises(InputError, match="catalog = 'cat.csv'.*does not exist"):
        project.load(tmp_path)
    _toml(tmp_path, catalog="cat.csv", stations="st.csv", colour="red")
    with pytest.raises(InputError, match="unknown key"):
        project.load(tmp_path)
    (tmp_path / "project.toml").write_text("catalog = \n")
    with pytest.raises(InputError, match="not valid TOML"):
        project.load(tmp_path)


def test_csv_picks_match_by_catalogue_id_or_time(tmp_path):
    (tmp_path / "cat.csv").write_text("time,lat,lon,depth_km,magnitude,event_id\n"
                                      "2020-01-01T00:00:01.5,10,20,2.0,1.1,E1\n")
    (tmp_path / "picks.csv").write_text(
        "event_id,event_time,network,station,phase,time,polarity\n"
        "E1,,XX,S1,P,2020-01-01T00:00:02.1,U\n"
        ",2020-01-01T00:00:01.7,XX,S2,P,2020-01-01T00:00:02.2,-\n"
        "E1,,XX,S1,S,2020-01-01T00:00:03,\n"
        "E9,,XX,S1,P,2020-01-01T00:00:03,\n"
        "E1,,XX,S1,P,2020-01-01T00:00:03,sideways\n")
    rejects = Rejects()
    ev, _, _ = catalog_formats.read_catalog(tmp_path / "cat.csv", rejects, tmp_path)
    pk = catalog_formats.read_picks_csv(tmp_path / "picks.csv", ev, rejects, tmp_path)
    assert list(pk.polarity) == [1, -1] and set(pk.event_id) == {"20200101000001.500"}
    assert sorted(rejects.to_frame().line) == [4, 5, 6]


# --------------------------------------------------------------------------- round trip

def test_demo_round_trip_through_standard_formats(demo_data_dir, tmp_path):
    """demo build -> export (QuakeML + StationXML + MiniSEED + CSV) -> build --source files:
    the same events, stations, wells, stages, polarities and mechanisms (published and
    computed). Dead traces are the one difference: the demo keeps their picks (SNR 0, never
    inverted), while reading files rejects them as dead, as for any real trace."""
    from pipeline.__main__ import main
    from pipeline.tables import read_table
    out = tmp_path / "exported"
    # every mechanism row (the export's default is the dashboard's one-per-event population)
    assert main(["export", "--format", "project", "--mech", "all", "--data-dir", str(demo_data_dir),
                 "--out", str(out)]) == 0
    data = tmp_path / "rebuilt"
    build.build("files", out, data, options=build.Options(**FAST))

    def t(d, name):
        return read_table(d, name)

    for name, key in (("events", ["event_id"]), ("stations", ["network", "station"]), ("wells", ["well", "vertex"]),
                      ("stages", ["well", "stage_no"])):
        a, b = (t(d, name).sort_values(key).reset_index(drop=True) for d in (demo_data_dir, data))
        cols = [c for c in a.columns if c not in ("source_row", "cluster")]
        pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False, obj=name)
    a, b = t(demo_data_dir, "polarities"), t(data, "polarities")
    key = ["event_id", "network", "station", "method"]
    dead = a[a.snr == 0]
    a = a[a.snr > 0].sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[key + ["channel", "polarity", "snr", "p_time"]],
                                  b[key + ["channel", "polarity", "snr", "p_time"]], check_dtype=False)
    np.testing.assert_allclose(a.prob_down_recorded, b.prob_down_recorded, atol=1e-6)  # float32 samples
    rej = t(data, "rejects")
    assert rej.reason.str.contains("dead trace").sum() == dead.drop_duplicates(["event_id", "station"]).shape[0]
    cols = ["event_id", "source", "time", "lat", "lon", "depth_km", "magnitude", "strike", "dip", "rake",
            "quality", "n_polarities", "lat_skhash", "lon_skhash", "depth_km_skhash", "group"]
    a, b = (t(d, "mechanisms").sort_values(["event_id", "source"]).reset_index(drop=True) for d in (demo_data_dir, data))
    assert (a.source == "computed").sum() > 10
    pd.testing.assert_frame_equal(a[cols], b[cols], check_dtype=False)


def test_predicted_p_is_the_travel_time_of_a_half_space():
    """One-layer model: t = hypocentral distance / vp, stations at depth 0 (elevation ignored,
    as in this pipeline's SKHASH runs)."""
    vm = pd.DataFrame({"depth_km": [-2.0, 50.0], "vp_km_s": [5.0, 5.0]})
    ev = pd.DataFrame({"event_id": ["e"], "time": pd.to_datetime(["2020-01-01T00:00:00"], utc=True),
                       "lat": [10.0], "lon": [20.0], "depth_km": [3.0]})
    st = pd.DataFrame({"network": ["XX", "XX"], "station": ["A", "B"], "lat": [10.0, 10.03], "lon": [20.02, 20.0],
                       "elevation_m": [0.0, 500.0]})
    have = pd.DataFrame({"event_id": ["e"], "network": ["XX"], "station": ["B"]})
    got = waveform_index.predicted_picks(ev, st, vm, have)
    assert list(got.station) == ["A"] and set(got.p_source) == {"predicted"}  # B has a pick already
    from obspy.geodetics import gps2dist_azimuth
    x_km = gps2dist_azimuth(10.0, 20.0, 10.0, 20.02)[0] / 1000.0
    want_s = np.hypot(x_km, 3.0) / 5.0
    t0 = ev.time.iloc[0].value
    assert (got.p_ns.iloc[0] - t0) / 1e9 == pytest.approx(want_s, abs=0.005)  # sphere vs WGS84: < 0.3 %


def test_predict_p_matches_traces_without_picks(toc2me_project, tmp_path):
    """With predict_p, EV2's MiniSEED stations without a catalogue pick are matched too.
    (Where both exist, the prediction through ToC2ME's SKHASH model is ~0.35 s early: the
    reason predicted P is opt-in and labelled.)"""
    root = tmp_path / "p"
    shutil.copytree(toc2me_project[0], root)
    with open(root / "project.toml", "a") as fh:
        fh.write("predict_p = true\n")
    proj = project.load(root)
    index = waveform_index.index_waveforms(proj.waveforms, Rejects())
    picked = waveform_index.station_p_times(proj.picks, index, proj.tables["events"])
    pred = waveform_index.predicted_picks(proj.tables["events"], proj.tables["stations"], proj.velocity_model)
    both = picked.merge(pred, on=["event_id", "network", "station"], suffixes=("", "_pred"))
    assert len(both) > 50 and (both.p_source_pred == "predicted").all()
    p_times = pd.concat([picked, waveform_index.predicted_picks(proj.tables["events"], proj.tables["stations"],
                                                                proj.velocity_model, picked)], ignore_index=True)
    matched = waveform_index.match_events(index, p_times, proj.tables["stations"], Rejects(), 0.598, 0.6)
    ev2 = [e for e in matched if e.startswith("20161125")][0]
    files = {it[0] for it in matched[ev2]["items"]}
    assert files == {f"by_station/{p.name}" for p in (root / "waveforms" / "by_station").iterdir()}
    assert {src for *_, src in matched[ev2]["picks"]} == {"catalog", "predicted"}


def test_gaps_low_rates_and_overlaps_in_matched_miniseed_are_rejects(tmp_path):
    """read_event_items on MiniSEED cut from continuous files: a gap inside the picker's
    window, a 100 Hz trace (below the 250 Hz minimum) and two overlapping segments with
    different rates are rejects with their reason; a clean 1000 Hz trace is resampled and kept."""
    from obspy import Stream, Trace, UTCDateTime

    from pipeline.picking import waveforms as wf
    p = UTCDateTime("2020-01-01T00:00:10")
    rng = np.random.default_rng(0)

    def tr(sta, rate, start, seconds, cha="HHZ"):
        t = Trace(rng.normal(size=int(seconds * rate)).astype(np.float32))
        t.stats.update({"network": "XX", "station": sta, "channel": cha, "sampling_rate": rate, "starttime": start})
        return t

    gappy = Stream([tr("GAP", 500, p - 20, 19.9), tr("GAP", 500, p + 0.1, 20)])  # 0.2 s gap across P
    Stream([*gappy, tr("LOW", 100, p - 20, 40), tr("OK", 1000, p - 20, 40),
            tr("MIX", 500, p - 20, 40), tr("MIX", 400, p - 5, 10)]).write(str(tmp_path / "day.mseed"), format="MSEED")
    c0, c1 = (p - 5).ns, (p + 5).ns
    items = [("day.mseed", "XX", s, "", "HHZ", c0, c1) for s in ("GAP", "LOW", "OK", "MIX")]
    picks = {("XX", s, ""): (p, "catalog") for s in ("GAP", "LOW", "OK", "MIX")}
    rejects = Rejects()
    ev = wf.read_event_items("E", items, picks, tmp_path, rejects)
    meta, windows = wf.vertical_windows(ev, rejects)
    assert list(meta.station) == ["OK"] and windows.shape == (1, 600)
    rej = rejects.to_frame().reason
    assert rej.str.contains("XX.LOW..HHZ: sampling rate 100 Hz below").any()
    assert rej.str.contains("XX.MIX..HHZ: cannot merge").any()
    gap = rej[rej.str.contains("XX.GAP")]
    assert len(gap) == 1 and ("NaN" in gap.iloc[0] or "gap" in gap.iloc[0].lower())


def test_event_ids_are_origin_times_to_the_millisecond_truncated():
    """``YYYYMMDDhhmmss.fff`` with the milliseconds truncated, recomputed with pandas' own
    vectorised formatting on random times (sub-millisecond parts included)."""
    rng = np.random.default_rng(1)
    ns = pd.Timestamp("2016-01-01", tz="UTC").value + rng.integers(0, 10 * 365 * 86400 * 10**9, 500)
    t = pd.Series(pd.to_datetime(ns, utc=True))
    want = t.dt.strftime("%Y%m%d%H%M%S") + "." + (t.dt.microsecond // 1000).astype(str).str.zfill(3)
    assert catalog_formats.format_event_id(t).tolist() == want.tolist()
    assert [catalog_formats.event_id_of(x) for x in t] == want.tolist()
