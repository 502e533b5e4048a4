"""``python -m pipeline fetch-fdsn``: event waveforms and stations of a project from an FDSN service.

No network: each test starts a local HTTP server imitating an FDSN web service as ObsPy's
client uses it: the service discovery (``application.wadl`` of station and dataselect,
404 for the event service, ``version``), ``/fdsnws/station/1/query`` (a StationXML made
here with ObsPy: two stations near the events, one with a vertical dip +90, and one
120 km away that the radius must leave out) and ``/fdsnws/dataselect/1/query`` (GET, and
POST bulk requests as ObsPy sends them), which cuts MiniSEED from synthetic traces made
here, honouring the codes and time windows asked for, and answers 204 when nothing matches.

The synthetic traces carry a spike at each event's P time, computed here independently of
the pipeline (constant-velocity half-space: hypocentral distance / vp, WGS84 distance from
ObsPy's ``gps2dist_azimuth``), so a fetched window is checked against where P really is.
"""
from __future__ import annotations

import csv
import fnmatch
import io
import math
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import obspy
import pytest
from obspy import UTCDateTime
from obspy.core.inventory import Channel, Inventory, Network, Site, Station
from obspy.geodetics import gps2dist_azimuth, locations2degrees

from pipeline.__main__ import main
from pipeline.ingest import fdsn

VP = 5.0                      #: km/s of the one-layer test model
RATE = 100.0                  #: Hz of the synthetic traces
PRE, POST = 6.0, 6.0          #: s, the command's default window around P
DATA_START = UTCDateTime("2016-12-01T11:59:00")
DATA_END = UTCDateTime("2016-12-01T12:03:00")
#: (origin time, lat, lon, depth_km); the third is outside the synthetic data: no data
EVENTS = [
    (UTCDateTime("2016-12-01T12:00:00.000"), 54.400, -117.200, 3.0),
    (UTCDateTime("2016-12-01T12:00:40.250"), 54.410, -117.190, 3.2),
    (UTCDateTime("2016-12-05T00:00:00.000"), 54.405, -117.210, 3.1),
]
IDS = ["20161201120000.000", "20161201120040.250", "20161205000000.000"]
#: (code, lat, lon, elevation_m, {channel: dip}); ST02's vertical is inverted (dip +90)
STATIONS = [
    ("ST01", 54.430, -117.220, 650.0, {"HHZ": -90.0, "HHN": 0.0, "HHE": 0.0}),
    ("ST02", 54.380, -117.150, 0.0, {"HHZ": 90.0}),
    ("FAR1", 55.500, -117.200, 700.0, {"HHZ": -90.0}),
]
NEAR = ["ST01", "ST02"]


def expected_p(event, station) -> float:
    """P travel time (s) in a half-space of VP km/s, receiver at its elevation."""
    _, lat, lon, depth = event
    _, slat, slon, elev, _ = station
    epi_km = gps2dist_azimuth(lat, lon, slat, slon)[0] / 1000.0
    return math.hypot(epi_km, depth + elev / 1000.0) / VP


def make_inventory() -> Inventory:
    stations = []
    for code, lat, lon, elev, chans in STATIONS:
        channels = [Channel(code=c, location_code="", latitude=lat, longitude=lon, elevation=elev, depth=0.0,
                            azimuth=0.0 if c == "HHZ" else (0.0 if c == "HHN" else 90.0), dip=dip,
                            sample_rate=RATE, start_date=UTCDateTime("2016-01-01"))
                    for c, dip in chans.items()]
        stations.append(Station(code=code, latitude=lat, longitude=lon, elevation=elev, channels=channels,
                                site=Site(name=code), start_date=UTCDateTime("2016-01-01")))
    return Inventory(networks=[Network(code="5B", stations=stations)], source="test")


def make_stream() -> obspy.Stream:
    """Continuous noise with a unit spike at every event's P (data span only)."""
    rng = np.random.default_rng(7)
    n = int((DATA_END - DATA_START) * RATE) + 1
    traces = []
    for st in STATIONS:
        for cha in st[4]:
            data = (0.01 * rng.standard_normal(n)).astype(np.float32)
            for ev in EVENTS:
                k = round((ev[0] + expected_p(ev, st) - DATA_START) * RATE)
                if 0 <= k < n:
                    data[k] = 1.0
            traces.append(obspy.Trace(data, header={"network": "5B", "station": st[0], "location": "",
                                                    "channel": cha, "sampling_rate": RATE,
                                                    "starttime": DATA_START}))
    return obspy.Stream(traces)


# --------------------------------------------------------------------------- the imitation

WADL_PARAMS = {
    "dataselect": ["starttime", "endtime", "network", "station", "location", "channel", "quality",
                   "minimumlength", "longestonly"],
    "station": ["starttime", "endtime", "startbefore", "startafter", "endbefore", "endafter", "network", "station",
                "location", "channel", "minlatitude", "maxlatitude", "minlongitude", "maxlongitude", "latitude",
                "longitude", "minradius", "maxradius", "level", "includerestricted", "includeavailability",
                "updatedafter", "matchtimeseries", "format"],
}


def _wadl(base: str, service: str) -> bytes:
    params = "".join(f'<param name="{p}" style="query"/>' for p in WADL_PARAMS[service])
    return (f'<?xml version="1.0" encoding="UTF-8"?><application xmlns="http://wadl.dev.java.net/2009/02">'
            f'<resources base="{base}/fdsnws/{service}/1/"><resource path="query"><method id="query" name="GET">'
            f'<request>{params}</request></method></resource></resources></application>').encode()


def _match(code: str, selection: str | None) -> bool:
    if selection in (None, "", "*"):
        return True
    return any(fnmatch.fnmatchcase(code, "" if p == "--" else p) for p in selection.split(","))


class FakeFDSN:
    """State of the imitation: the data, a request log and fault injection."""

    def __init__(self):
        self.inventory = make_inventory()
        self.stream = make_stream()
        self.log: list[dict] = []
        self.fail_next: list[int] = []             #: statuses answered to the next dataselect queries
        self.fail_window: tuple | None = None      #: (t1, t2, status): any asked window starting inside fails
        self.services = {"station", "dataselect"}  #: services whose WADL is served (discovery)
        self.base = ""

    def queries(self, service: str) -> list[dict]:
        return [r for r in self.log if r["path"] == f"/fdsnws/{service}/1/query"]

    def stations(self, q: dict) -> bytes | None:
        inv = self.inventory.copy()
        level = q.get("level", "station")
        for net in inv:
            keep = []
            for sta in net:
                if not (_match(net.code, q.get("network")) and _match(sta.code, q.get("station"))):
                    continue
                if "maxradius" in q and locations2degrees(float(q["latitude"]), float(q["longitude"]),
                                                          sta.latitude, sta.longitude) > float(q["maxradius"]):
                    continue
                sta.channels = [c for c in sta.channels if _match(c.code, q.get("channel"))
                                and _match(c.location_code, q.get("location"))]
                if not sta.channels:
                    continue
                if level != "channel":
                    sta.channels = []
                keep.append(sta)
            net.stations = keep
        inv.networks = [n for n in inv if n.stations]
        if not inv.networks:
            return None
        buf = io.BytesIO()
        inv.write(buf, format="STATIONXML")
        return buf.getvalue()

    def waveforms(self, lines: list[tuple]) -> bytes | None:
        out = obspy.Stream()
        for net, sta, loc, cha, t1, t2 in lines:
            for tr in self.stream:
                s = tr.stats
                if (_match(s.network, net) and _match(s.station, sta) and _match(s.location, loc)
                        and _match(s.channel, cha)):
                    cut = tr.slice(t1, t2)
                    if cut.stats.npts:
                        out.append(cut)
        if not out:
            return None
        buf = io.BytesIO()
        out.write(buf, format="MSEED", encoding="FLOAT32", reclen=512)
        return buf.getvalue()

    def dataselect_status(self, lines) -> int | None:
        if self.fail_next:
            return self.fail_next.pop(0)
        if self.fail_window and any(self.fail_window[0] <= ln[4] <= self.fail_window[1] for ln in lines):
            return self.fail_window[2]
        return None


def _handler(fake: FakeFDSN):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # requests go to fake.log, not the test output
            pass

        def _send(self, status: int, body: bytes = b"", ctype: str = "text/plain"):
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _route(self, body: bytes | None):
            url = urllib.parse.urlsplit(self.path)
            q = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
            fake.log.append({"method": self.command, "path": url.path, "query": q, "body": body})
            parts = url.path.strip("/").split("/")
            if len(parts) != 4 or parts[:1] != ["fdsnws"] or parts[2] != "1" or parts[1] not in fake.services:
                return self._send(404, b"not found")
            service, resource = parts[1], parts[3]
            if resource == "application.wadl":
                return self._send(200, _wadl(fake.base, service), "application/xml")
            if resource == "version":
                return self._send(200, b"1.1.0")
            if resource != "query":
                return self._send(404, b"not found")
            if service == "station":
                xml = fake.stations(q)
                return self._send(204) if xml is None else self._send(200, xml, "application/xml")
            if body is not None:  # POST bulk: key=value lines, then NET STA LOC CHA START END
                lines = []
                for line in body.decode().splitlines():
                    f = line.split()
                    if len(f) == 6 and "=" not in line:
                        lines.append((f[0], f[1], f[2], f[3], UTCDateTime(f[4]), UTCDateTime(f[5])))
            else:
                lines = [(q.get("network", "*"), q.get("station", "*"), q.get("location", "*"),
                          q.get("channel", "*"), UTCDateTime(q["starttime"]), UTCDateTime(q["endtime"]))]
            status = fake.dataselect_status(lines)
            if status:
                return self._send(status, f"Error {status}: simulated failure".encode())
            data = fake.waveforms(lines)
            return self._send(204) if data is None else self._send(200, data, "application/vnd.fdsn.mseed")

        def do_GET(self):
            self._route(None)

        def do_POST(self):
            self._route(self.rfile.read(int(self.headers.get("Content-Length", 0))))

    return Handler


@pytest.fixture
def server():
    fake = FakeFDSN()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    fake.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield fake
    httpd.shutdown()
    httpd.server_close()


# --------------------------------------------------------------------------- helpers

def make_project(root: Path, *, velocity_model=True, keys=True, stations_csv=False) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "catalog.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["time", "lat", "lon", "depth_km", "magnitude"])
        for t, lat, lon, depth in EVENTS:
            w.writerow([str(t), lat, lon, depth, 0.5])
    toml = ['name = "fdsn test"', 'catalog = "catalog.csv"']
    if keys:
        toml += ['stations = "stations.csv"' if stations_csv else 'stations = "meta/stations.xml"',
                 'waveforms = "wf"']
    if stations_csv:
        rows = ["network,station,lat,lon,elevation_m"] + [f"5B,{c},{la},{lo},{el}" for c, la, lo, el, _ in STATIONS[:2]]
        (root / "stations.csv").write_text("\n".join(rows) + "\n")
    if velocity_model:
        (root / "vp.csv").write_text(f"depth_km,vp_km_s\n0,{VP}\n10,{VP}\n")  # one layer: a half-space
        toml.append('velocity_model = "vp.csv"')
    (root / "project.toml").write_text("\n".join(toml) + "\n")
    return root


def run(root: Path, url: str, *extra: str) -> int:
    return main(["fetch-fdsn", "--input", str(root), "--client", url, "--delay", "0", "--backoff", "0.01", *extra])


def read_log_rows(root: Path) -> list[dict]:
    with open(root / fdsn.LOG_NAME, newline="") as fh:
        return list(csv.DictReader(fh))


def check_event_file(path: Path, event, vp: float = VP, spike: bool = True, stations=NEAR) -> None:
    """Every trace of the file covers [P - PRE, P + POST] of its station (P recomputed
    here; one sample of tolerance for the cut) and, at the true velocity, peaks at P."""
    st = obspy.read(str(path))
    assert sorted({tr.stats.station for tr in st}) == sorted(stations)
    by_code = {s[0]: s for s in STATIONS}
    for tr in st:
        p = event[0] + expected_p(event, by_code[tr.stats.station]) * VP / vp
        dt = 1.0 / RATE
        assert p - PRE - 0.01 <= tr.stats.starttime <= p - PRE + dt + 0.01, tr.id
        assert p + POST - dt - 0.01 <= tr.stats.endtime <= p + POST + 0.01, tr.id
        if spike:
            peak = tr.stats.starttime + int(np.argmax(np.abs(tr.data))) * dt
            assert abs(peak - p) <= 0.02, (tr.id, peak - p)


def hidden_parts(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


# --------------------------------------------------------------------------- tests

def test_predicted_p_matches_a_half_space():
    import pandas as pd
    model = pd.DataFrame({"depth_km": [0.0, 10.0], "vp_km_s": [VP, VP]})
    ev, sts = EVENTS[0], STATIONS[:2]
    got = fdsn.predicted_p_s(ev[1], ev[2], ev[3], [s[1] for s in sts], [s[2] for s in sts], [s[3] for s in sts],
                             model)
    want = [expected_p(ev, s) for s in sts]
    np.testing.assert_allclose(got, want, atol=0.005)  # spherical vs WGS84 distance: a few ms
    const = fdsn.predicted_p_s(ev[1], ev[2], ev[3], [s[1] for s in sts], [s[2] for s in sts], [s[3] for s in sts])
    np.testing.assert_allclose(const, np.array(want) * VP / fdsn.DEFAULT_VP_KM_S, atol=0.005)


def test_fetch_writes_stations_and_one_file_per_event(tmp_path, server, capsys):
    root = make_project(tmp_path / "proj")
    assert run(root, server.base) == 0
    out = capsys.readouterr().out

    # stations: fetched at channel level within the radius, with the dips that give polarity
    q = server.queries("station")
    assert len(q) == 1 and q[0]["query"]["level"] == "channel"
    assert float(q[0]["query"]["maxradius"]) == pytest.approx(20.0 / 111.195, rel=1e-3)
    inv = obspy.read_inventory(str(root / "meta" / "stations.xml"))
    assert sorted(s.code for n in inv for s in n) == NEAR
    dips = {(s.code, c.code): c.dip for n in inv for s in n for c in s}
    assert dips[("ST01", "HHZ")] == -90 and dips[("ST02", "HHZ")] == 90
    from pipeline.ingest.station_formats import read_stations
    from pipeline.rejects import Rejects
    st = read_stations(root / "meta" / "stations.xml", Rejects())
    assert dict(zip(st["station"], st["reversed"])) == {"ST01": False, "ST02": True}

    # one bulk (POST) request per event; files cover the predicted P windows
    assert [r["method"] for r in server.queries("dataselect")] == ["POST"] * 3
    for ev, eid in zip(EVENTS[:2], IDS[:2]):
        check_event_file(root / "wf" / f"{eid}.mseed", ev)
    assert not (root / "wf" / f"{IDS[2]}.mseed").exists()
    assert hidden_parts(root) == []

    rows = read_log_rows(root)
    assert [(r["event_id"], r["status"], r["n_traces"]) for r in rows] == [
        (IDS[0], "fetched", "4"), (IDS[1], "fetched", "4"), (IDS[2], "no data", "0")]
    assert out.count("\n") == 1
    assert "3 events: 2 fetched (8 traces), 0 skipped, 1 no data, 0 failed" in out
    assert "velocity model vp.csv" in out and "fetched into meta/stations.xml" in out


def test_second_run_requests_nothing_and_an_interrupted_run_resumes(tmp_path, server, capsys):
    root = make_project(tmp_path / "proj")
    assert run(root, server.base) == 0
    first = {eid: (root / "wf" / f"{eid}.mseed").read_bytes() for eid in IDS[:2]}
    n = len(server.log)

    assert run(root, server.base) == 0
    assert len(server.log) == n  # not even service discovery
    assert "0 fetched (0 traces), 3 skipped (1 without data in an earlier run)" in capsys.readouterr().out

    # an interruption while the second event was written: no file, a stale partial one
    (root / "wf" / f"{IDS[1]}.mseed").unlink()
    (root / "wf" / f".{IDS[1]}.mseed.part").write_bytes(b"half a rec")
    mtime = (root / "wf" / f"{IDS[0]}.mseed").stat().st_mtime_ns
    assert run(root, server.base) == 0
    new = server.log[n:]
    queries = [r for r in new if r["path"].endswith("/query")]
    assert [r["path"] for r in queries] == ["/fdsnws/dataselect/1/query"]
    assert "2016-12-01T12:00:4" in queries[0]["body"].decode()  # the second event's windows
    assert (root / "wf" / f"{IDS[1]}.mseed").read_bytes() == first[IDS[1]]
    assert (root / "wf" / f"{IDS[0]}.mseed").stat().st_mtime_ns == mtime
    assert hidden_parts(root) == []
    assert "1 fetched (4 traces), 2 skipped" in capsys.readouterr().out

    # the event without data is asked again only on request
    n = len(server.queries("dataselect"))
    assert run(root, server.base, "--retry-no-data") == 0
    assert len(server.queries("dataselect")) == n + 1
    assert read_log_rows(root)[-1]["status"] == "no data"


def test_server_error_is_retried(tmp_path, server, capsys):
    root = make_project(tmp_path / "proj")
    server.fail_next = [500, 503]
    assert run(root, server.base, "--max-events", "1") == 0
    assert len(server.queries("dataselect")) == 3
    check_event_file(root / "wf" / f"{IDS[0]}.mseed", EVENTS[0])
    assert [r["status"] for r in read_log_rows(root)] == ["fetched"]
    assert "1 events: 1 fetched (4 traces)" in capsys.readouterr().out


def test_persistent_failure_is_logged_the_run_goes_on_and_exits_non_zero(tmp_path, server, capsys):
    root = make_project(tmp_path / "proj")
    t0 = EVENTS[0][0]
    server.fail_window = (t0 - 10, t0 + 10, 500)  # the first event's windows start near t0 - 1 s
    assert run(root, server.base) == 1
    out = capsys.readouterr().out
    assert "1 fetched (4 traces), 0 skipped, 1 no data, 1 failed" in out
    ds = server.queries("dataselect")
    assert len(ds) == 4 + 1 + 1  # the failing event: 1 try + 3 retries; then the others once each
    rows = read_log_rows(root)
    assert [(r["event_id"], r["status"]) for r in rows] == [(IDS[0], "failed"), (IDS[1], "fetched"),
                                                            (IDS[2], "no data")]
    assert "Internal server error" in rows[0]["message"] and "after 4 attempts" in rows[0]["message"]
    assert not (root / "wf" / f"{IDS[0]}.mseed").exists() and hidden_parts(root) == []

    server.fail_window = None  # the service recovers: a re-run fetches only the failed event
    assert run(root, server.base) == 0
    assert len(server.queries("dataselect")) == len(ds) + 1
    check_event_file(root / "wf" / f"{IDS[0]}.mseed", EVENTS[0])
    assert read_log_rows(root)[-1]["status"] == "fetched"


def test_without_velocity_model_or_keys_uses_6_km_s_and_default_paths(tmp_path, server, capsys):
    root = make_project(tmp_path / "proj", velocity_model=False, keys=False)
    assert run(root, server.base, "--max-events", "2") == 0
    out = capsys.readouterr().out
    assert "constant 6 km/s over the hypocentral distance (no velocity_model in project.toml)" in out
    assert "no waveforms key: used 'waveforms'" in out and "no stations key: used 'stations.xml'" in out
    assert (root / "stations.xml").is_file()
    for ev, eid in zip(EVENTS[:2], IDS[:2]):
        check_event_file(root / "waveforms" / f"{eid}.mseed", ev, vp=fdsn.DEFAULT_VP_KM_S, spike=False)


def test_existing_stations_file_is_read_and_the_selection_applies(tmp_path, server, capsys):
    root = make_project(tmp_path / "proj", stations_csv=True)
    assert run(root, server.base, "--station", "ST02", "--channel", "HH?", "--max-events", "1") == 0
    assert server.queries("station") == []
    body = server.queries("dataselect")[0]["body"].decode()
    assert body.startswith("5B ST02 * HH? ") and body.count("\n") == 0
    check_event_file(root / "wf" / f"{IDS[0]}.mseed", EVENTS[0], stations=["ST02"])
    assert "1 stations from stations.csv" in capsys.readouterr().out


def test_exit_codes_for_bad_input_and_an_unreachable_service(tmp_path, server, capsys):
    assert run(tmp_path / "nothing", server.base) == 2
    (tmp_path / "empty").mkdir()
    assert run(tmp_path / "empty", server.base) == 2
    assert "no project.toml" in capsys.readouterr().err
    assert server.log == []

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = make_project(tmp_path / "proj")
    assert run(root, f"http://127.0.0.1:{port}") == 1
    err = capsys.readouterr().err
    assert err.startswith("error: cannot use the FDSN service") and "run again" in err
    assert not (root / "meta" / "stations.xml").exists()

    server.services = {"station"}  # a service without dataselect: said once, not a failure per event
    other = make_project(tmp_path / "other", stations_csv=True)
    assert run(other, server.base) == 1
    assert "has no dataselect (waveform) service" in capsys.readouterr().err
    assert server.queries("dataselect") == [] and not (other / fdsn.LOG_NAME).read_text().count("failed")


def test_the_imitation_serves_obspy_get_requests(server):
    """The fake answers ObsPy's plain GET queries as a real service would."""
    from obspy.clients.fdsn import Client
    from obspy.clients.fdsn.header import FDSNNoDataException
    client = Client(base_url=server.base)
    t = UTCDateTime("2016-12-01T12:00:10")
    st = client.get_waveforms("5B", "ST01", "", "HH?", t, t + 3)
    assert sorted(tr.stats.channel for tr in st) == ["HHE", "HHN", "HHZ"]
    assert all(t <= tr.stats.starttime < t + 0.011 and tr.stats.endtime <= t + 3 for tr in st)
    with pytest.raises(FDSNNoDataException):
        client.get_waveforms("5B", "ST01", "", "HHZ", t + 86400, t + 86403)
