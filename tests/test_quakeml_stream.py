"""The streaming QuakeML reader (pipeline.ingest.quakeml_stream, the default) gives the same
events, picks, mechanisms and rejects as the ObsPy path (``reader="obspy"``): on the real
ToC2ME QuakeML the files-source tests build, on the demo build's QuakeML export, and on a
hand-written catalogue of edge cases. Files it cannot map with certainty go through ObsPy,
with a log line."""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.ingest import catalog_formats, quakeml_stream
from pipeline.rejects import Rejects
from tests import test_source_files

#: the real-data fixture of the files-source tests (ToC2ME rewritten as QuakeML with ObsPy)
toc2me_project = test_source_files.toc2me_project


def _read(path: Path, reader: str):
    rejects = Rejects()
    tables = catalog_formats.read_quakeml(path, rejects, path.parent, reader=reader)
    return tables, rejects.to_frame()


def assert_same_as_obspy(path: Path):
    """Every column and row of events, picks, mechanisms and rejects equal; returns them."""
    (fast, fast_rej), (slow, slow_rej) = _read(path, "fast"), _read(path, "obspy")
    for name, a, b in zip(("events", "picks", "mechanisms"), fast, slow):
        pd.testing.assert_frame_equal(a, b, obj=name)
    pd.testing.assert_frame_equal(fast_rej, slow_rej, obj="rejects")
    return fast, fast_rej


def test_real_toc2me_quakeml_reads_the_same(toc2me_project):
    root, pub, events, published = toc2me_project
    (ev, picks, mech), _ = assert_same_as_obspy(root / "catalog.xml")
    # non-trivial content: every event, every published polarity, both published mechanisms
    assert len(ev) == len(events) and len(picks) == len(pub) and len(mech) == len(published)
    assert mech["lat_skhash"].notna().all()


def test_demo_export_reads_the_same(files_project_dir):
    (ev, picks, mech), _ = assert_same_as_obspy(files_project_dir / "catalog.xml")
    assert len(ev) > 100 and len(picks) > 0 and len(mech) > 0


_HEAD = ('<?xml version="1.0" encoding="utf-8"?>\n'
         '<q:quakeml xmlns:q="http://quakeml.org/xmlns/quakeml/1.2" xmlns="http://quakeml.org/xmlns/bed/1.2" '
         'xmlns:ext="urn:example:ext">\n<eventParameters publicID="smi:t/cat">\n')
_TAIL = "</eventParameters>\n</q:quakeml>\n"


def _origin(oid, t, lat=54.3, lon=-117.2, depth="3147.2", arrivals=""):
    parts = [f'<origin publicID="{oid}">']
    if t is not None:
        parts.append(f"<time><value>{t}</value></time>")
    if lat is not None:
        parts.append(f"<latitude><value>{lat}</value></latitude>")
    parts.append(f"<longitude><value>{lon}</value></longitude>")
    if depth is not None:
        parts.append(f"<depth><value>{depth}</value><uncertainty>10</uncertainty></depth>")
    return "".join(parts) + arrivals + "</origin>"


def _pick(pid, t="2016-11-01T00:00:01.5Z", sta="S01", hint="P", pol=None, method=None, wid=True):
    s = f'<pick publicID="{pid}">'
    if t is not None:
        s += f"<time><value>{t}</value></time>"
    if wid:
        s += f'<waveformID networkCode="XX" stationCode="{sta}" channelCode="HHZ"/>'
    if hint is not None:
        s += f"<phaseHint>{hint}</phaseHint>"
    if pol is not None:
        s += f"<polarity>{pol}</polarity>"
    if method is not None:
        s += f"<methodID>{method}</methodID>"
    return s + "<ext:note>ignored</ext:note></pick>"


def _plane(tag, strike, dip, rake):
    vals = "".join(f"<{k}><value>{v}</value></{k}>" for k, v in (("strike", strike), ("dip", dip), ("rake", rake))
                   if v is not None)
    return f"<{tag}>{vals}</{tag}>"


EDGE_CASES = _HEAD + "".join([
    # 1: no preferred ids (first origin, first magnitude), two origins, picks of every kind
    '<event publicID="smi:t/e/1"><type>induced_or_triggered_event</type>',
    _pick("smi:t/p/1", pol="positive"),
    _pick("smi:t/p/2", sta="S02"),  # P without polarity
    _pick("smi:t/p/3", sta="S03", hint=None, pol="Negative"),  # P only by its arrival
    _pick("smi:t/p/4", sta="S04", hint="S", pol="positive"),  # S: not a P pick, arrival says S
    _pick("smi:t/p/5", sta="S05", hint="P", pol="undecidable", method="smi:local/method/manual"),
    _pick("smi:t/p/6", sta="S06", hint="Pg", pol="up", method="smi:local/method/cnn"),  # 'up': no polarity
    _pick("smi:t/p/7", t=None, sta="S07"),  # P without time: reject
    _pick("smi:t/p/8", wid=False),  # P without station: reject
    _pick("smi:t/p/9", sta="S09", hint="P", pol="negative", method="smi:other/method/x"),
    _origin("smi:t/o/1a", "2016-11-01T00:00:01.123456Z",
            arrivals='<arrival publicID="smi:t/a/3"><pickID>smi:t/p/3</pickID><phase>P</phase></arrival>'
                     '<arrival publicID="smi:t/a/4"><pickID>smi:t/p/4</pickID><phase>S</phase></arrival>'),
    _origin("smi:t/o/1b", "2016-11-01T00:00:09Z", lat=55.0),
    '<ext:origin publicID="smi:t/o/foreign"><ext:time>x</ext:time></ext:origin>',  # foreign: ignored
    '<magnitude publicID="smi:t/m/1a"><mag><value>1.25</value></mag><type>ML</type></magnitude>',
    '<magnitude publicID="smi:t/m/1b"><mag><value>2.5</value></mag><type>Mw</type></magnitude>',
    "</event>\n",
    # 2: preferred ids on the second origin / magnitude; focal mechanisms of every kind
    '<event publicID="smi:t/e/2"><preferredOriginID>smi:t/o/2b</preferredOriginID>'
    "<preferredMagnitudeID>smi:t/m/2b</preferredMagnitudeID>",
    _origin("smi:t/o/2a", "2016-11-01T01:00:00.000001Z", lat=54.31, depth="3.1472e3"),
    _origin("smi:t/o/2b", "2016-11-01T01:00:00.123456789Z", lat=54.32, depth="3000"),
    '<magnitude publicID="smi:t/m/2a"><mag><value>0.1</value></mag></magnitude>',
    '<magnitude publicID="smi:t/m/2b"><mag><value>-0.4</value></mag><type>Mw</type></magnitude>',
    '<focalMechanism publicID="smi:t/fm/2a"><methodID>smi:local/method/computed/skhash</methodID>'
    f"<nodalPlanes>{_plane('nodalPlane1', 10, 50, 90)}</nodalPlanes></focalMechanism>",  # ours: skipped
    '<focalMechanism publicID="smi:t/fm/2b"><triggeringOriginID>smi:t/o/2a</triggeringOriginID>'
    f'<nodalPlanes preferredPlane="2">{_plane("nodalPlane1", 10, 50, 90)}{_plane("nodalPlane2", 370, 40, -90)}'
    "</nodalPlanes><stationPolarityCount>14</stationPolarityCount><misfit>0.12</misfit>"
    "<stationDistributionRatio>0.6</stationDistributionRatio>"
    "<comment><text>SKHASH quality: B</text></comment></focalMechanism>",
    '<focalMechanism publicID="smi:t/fm/2c"><nodalPlanes>'
    f'{_plane("nodalPlane1", 20, 60, 0)}</nodalPlanes></focalMechanism>',  # a second one: reject
    "</event>\n",
    # 3: no magnitude, no depth; a mechanism without nodal planes, one incomplete, one out of range
    '<event publicID="smi:t/e/3">', _origin("smi:t/o/3", "2016-11-01T02:00:00", depth=None),
    '<focalMechanism publicID="smi:t/fm/3a"><misfit>0.1</misfit></focalMechanism>',
    f'<focalMechanism publicID="smi:t/fm/3b"><nodalPlanes>{_plane("nodalPlane1", 10, 50, None)}'
    "</nodalPlanes></focalMechanism>",
    f'<focalMechanism publicID="smi:t/fm/3c"><nodalPlanes>{_plane("nodalPlane1", 10, 95, 0)}'
    "</nodalPlanes></focalMechanism>",
    f'<focalMechanism publicID="smi:t/fm/3d"><nodalPlanes>{_plane("nodalPlane2", 0, 0, 0)}'
    "</nodalPlanes></focalMechanism>",
    "</event>\n",
    # 4: no origin; 5: origin without latitude; 6: the same millisecond as event 1
    '<event publicID="smi:t/e/4"><magnitude publicID="smi:t/m/4"><mag><value>1</value></mag></magnitude></event>\n',
    f'<event publicID="smi:t/e/5">{_origin("smi:t/o/5", "2016-11-01T03:00:00Z", lat=None)}</event>\n',
    f'<event publicID="smi:t/e/6">{_origin("smi:t/o/6", "2016-11-01T00:00:01.1239Z")}'
    '<magnitude publicID="smi:t/m/6"><mag><value>not a number</value></mag></magnitude></event>\n',
    '<ext:event publicID="smi:t/e/foreign"/>\n',  # a foreign element among the events: ignored
]) + _TAIL


def test_edge_cases_read_the_same(tmp_path):
    path = tmp_path / "edge.xml"
    path.write_text(EDGE_CASES)
    (ev, picks, mech), rej = assert_same_as_obspy(path)
    # a few values recomputed by hand, so equality is not between two empty tables
    e2 = ev.set_index("catalogue_id").loc["smi:t/e/2"]
    assert (e2.lat, e2.depth_km, e2.magnitude, e2.magnitude_type) == (54.32, 3.0, -0.4, "Mw")
    assert ev.set_index("catalogue_id").loc["smi:t/e/1"].magnitude == 1.25
    assert sorted(picks.station) == ["S01", "S02", "S03", "S05", "S06", "S09"]
    assert dict(zip(picks.station, picks.polarity.astype(object).where(picks.polarity.notna(), None))) == {
        "S01": 1, "S02": None, "S03": -1, "S05": 0, "S06": None, "S09": -1}
    assert dict(zip(picks.station, picks.method)) == {"S01": "published", "S02": "published", "S03": "published",
                                                      "S05": "manual", "S06": "cnn", "S09": "published"}
    m = mech.set_index("event_id").loc[e2.event_id]
    assert (m.strike, m.dip, m.rake, m.quality, m.n_polarities) == (10.0, 40.0, -90.0, "B", 14)
    assert m.lat_skhash == 54.31 and m.depth_km_skhash == pytest.approx(3.1472)
    assert len(mech) == 2  # event 2's plane-2 mechanism, event 3's plane-2-only one
    reasons = " | ".join(rej.reason)
    for part in ("without time or station", "no magnitude", "no complete nodal plane", "out of range",
                 "no origin with time", "second published focal mechanism", "same millisecond"):
        assert part in reasons


@pytest.mark.parametrize("body, why", [
    ('<event publicID="smi:t/e/1"><type>bogus_type</type>{o}</event>', "event type"),
    ('<event publicID="smi:t/e/1"><preferredOriginID>smi:t/o/none</preferredOriginID>{o}</event>',
     "preferred origin"),
    ('<event>{o}</event>', "event without publicID"),
    ('<event publicID="smi:t/e/1">{o}<focalMechanism publicID="smi:t/fm"><nodalPlanes><nodalPlane1>'
     '<strike><uncertainty>3</uncertainty></strike></nodalPlane1></nodalPlanes></focalMechanism></event>',
     "nodalPlane1 without"),
    ('<event publicID="smi:t/e/1" xmlns="urn:other">{o}</event>', "default namespace"),
])
def test_what_the_stream_cannot_map_goes_through_obspy(tmp_path, caplog, body, why):
    path = tmp_path / "odd.xml"
    path.write_text(_HEAD + body.format(o=_origin("smi:t/o/1", "2016-11-01T00:00:01Z")) + _TAIL)
    with pytest.raises(quakeml_stream.NotMappable, match=why):
        quakeml_stream.read_events(path)
    with caplog.at_level(logging.INFO, logger="pipeline.ingest.catalog_formats"):
        assert_same_as_obspy(path)
    assert any("odd.xml" in r.message and "through ObsPy" in r.message for r in caplog.records)


def test_not_quakeml_fails_as_the_obspy_path_does(tmp_path):
    path = tmp_path / "other.xml"
    path.write_text('<?xml version="1.0"?>\n<FDSNStationXML xmlns="http://www.fdsn.org/xml/station/1"/>\n')
    errors = []
    for reader in ("fast", "obspy"):
        with pytest.raises(InputError) as exc:
            _read(path, reader)
        errors.append(str(exc.value))
    assert errors[0] == errors[1] and "other.xml" in errors[0]


def test_malformed_xml_error_names_file_and_line_as_before(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_text(EDGE_CASES.replace("</event>\n", "</evnt>\n", 1))
    errors = []
    for reader in ("fast", "obspy"):
        with pytest.raises(InputError) as exc:
            _read(path, reader)
        errors.append((exc.value.file, exc.value.line, str(exc.value)))
    assert errors[0] == errors[1]
    bad_line = 1 + EDGE_CASES[:EDGE_CASES.index("</event>\n")].count("\n")
    assert errors[0][:2] == ("bad.xml", bad_line)


@pytest.mark.parametrize("text", [
    "2016-11-01T00:00:01Z", "2016-11-01T00:00:01.5Z", "2016-11-01T00:00:01.123456", "2016-11-01T23:59:59.999999Z",
    "1969-12-31T23:59:59.1Z", "2016-02-29T12:00:00.000001Z", "2016-11-01T00:00:01.123456789Z",
    "2016-11-01T00:00:01.1234565Z", "2016-11-01 00:00:01", "2016-11-01T00:00:01+01:00", "20161101T000001",
    "2016-11-01T00:00:60Z", "not a time"])
def test_times_are_obspy_utcdatetime_nanoseconds(text):
    from obspy import UTCDateTime
    try:
        expected = UTCDateTime(text).ns
    except Exception:  # noqa: BLE001 - ObsPy's reader gives None for any failure
        expected = None
    got = quakeml_stream.parse_time(text)
    assert (None if got is None else got.ns) == expected


def test_reader_switch_and_bad_value(tmp_path, monkeypatch):
    path = tmp_path / "edge.xml"
    path.write_text(EDGE_CASES)
    monkeypatch.setenv(catalog_formats.READER_ENV, "nope")
    with pytest.raises(ValueError, match="nope"):
        catalog_formats.read_quakeml(path, Rejects())
    monkeypatch.setenv(catalog_formats.READER_ENV, "obspy")
    assert len(catalog_formats.read_quakeml(path, Rejects())[0]) == 3


def test_missing_file_error_names_it_in_both_readers(tmp_path):
    for reader in ("fast", "obspy"):  # wording differs: the stream's is Python's OSError text
        with pytest.raises(InputError) as exc:
            _read(tmp_path / "absent.xml", reader)
        assert exc.value.file == "absent.xml" and "cannot read" in str(exc.value) \
            and "No such file" in str(exc.value)
