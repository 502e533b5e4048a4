"""Zenodo waveform archives: records API, resumable verified downloads, safe extraction.

No network: a local HTTP server started by each test imitates Zenodo's records API
(``/api/records/<id>``) and file endpoints (``/api/records/<id>/files/<key>/content``,
with HTTP Range support) and serves a zip, a tar.gz and a plain file built in tmp_path.
"""
import hashlib
import io
import json
import random
import tarfile
import threading
import urllib.parse
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.__main__ import main
from pipeline.ingest import fetch
from pipeline.io import zenodo

RECORD = zenodo.RECORDS["fm"]
TOP = "event_waveforms_for_SKHASH_2519"
#: event folder -> station files; event 1 and 2 go into the zip, event 3 into the tar.gz
EVENTS = {
    "20161104064824.680": ["5B.1101.DHZ.SAC", "5B.1101.DH1.SAC", "5B.1102.DHZ.SAC"],
    "20161125051408.940": ["5B.1101.DHZ.SAC", "5B.1130.DH2.SAC"],
    "20161128051644.670": ["5B.1194.DHZ.SAC", "5B.1194.DH2.SAC", "5B.1209.DHZ.SAC"],
}
ZIP, TGZ, README = "waveforms_part1.zip", "waveforms_part2.tar.gz", "README.txt"


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


class FakeZenodo:
    """State of the imitation: served blobs by key, record JSON shape, request log and
    fault injection (cut a body after N bytes once, ignore Range, answer 503 once)."""

    def __init__(self, blobs: dict[str, bytes], shape: str = "list"):
        self.blobs, self.shape = dict(blobs), shape
        self.checksum_override: dict[str, str] = {}
        self.log: list[dict] = []
        self.cut_once: dict[str, int] = {}
        self.fail_once: dict[str, int] = {}
        self.ignore_range = False
        self.base = ""

    def file_url(self, key: str) -> str:
        return f"{self.base}/api/records/{RECORD}/files/{urllib.parse.quote(key)}/content"

    def record(self) -> dict:
        entries = []
        for key, data in self.blobs.items():
            checksum = self.checksum_override.get(key, f"md5:{_md5(data)}")
            if self.shape == "list":  # zenodo.org /api/records/<id> today
                entries.append({"id": f"uuid-{key}", "key": key, "size": len(data), "checksum": checksum,
                                "links": {"self": self.file_url(key)}})
            elif self.shape == "entries":  # InvenioRDM serialisation: self = metadata, content = bytes
                entries.append({"key": key, "size": len(data), "checksum": checksum,
                                "links": {"self": f"{self.base}/api/records/{RECORD}/files/{key}",
                                          "content": self.file_url(key)}})
            else:  # late-2023 Zenodo: filename/filesize, bare md5, a self link that does not download
                entries.append({"id": f"uuid-{key}", "filename": key, "filesize": len(data),
                                "checksum": checksum.split(":")[-1],
                                "links": {"self": f"{self.base}/api/records/{RECORD}/files/uuid-{key}"}})
        files = ({"enabled": True, "entries": {e["key"]: e for e in entries}} if self.shape == "entries"
                 else entries)
        return {"id": int(RECORD), "doi": f"10.5281/zenodo.{RECORD}", "files": files}

    def file_requests(self) -> list[dict]:
        return [r for r in self.log if r["path"].endswith("/content")]


def _handler(fake: FakeZenodo):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean; requests go to fake.log
            pass

        def _send(self, status, body: bytes, headers=(), cut=None):
            sent = body if cut is None else body[:cut]
            # logged first: the client may act on (or drop) the answer before the write returns
            fake.log.append({"path": self.path, "range": self.headers.get("Range"), "status": status,
                             "sent": len(sent), "ua": self.headers.get("User-Agent")})
            self.send_response(status)
            for k, v in headers:
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(sent)
            self.wfile.flush()
            self.close_connection = True  # HTTP/1.0: the connection ends with the response

        def _json(self, status, obj):
            self._send(status, json.dumps(obj).encode(), [("Content-Type", "application/json")])

        def do_GET(self):
            path = urllib.parse.unquote(self.path)
            prefix = f"/api/records/{RECORD}"
            if path == prefix:
                return self._json(200, fake.record())
            if path.startswith(prefix + "/files/") and path.endswith("/content"):
                key = path[len(prefix + "/files/"):-len("/content")]
                if key not in fake.blobs:
                    return self._json(404, {"status": 404, "message": "no such file"})
                if fake.fail_once.get(key):
                    fake.fail_once[key] -= 1
                    return self._json(503, {"status": 503, "message": "busy"})
                data = fake.blobs[key]
                rng = self.headers.get("Range")
                if rng and not fake.ignore_range:
                    start = int(rng.removeprefix("bytes=").rstrip("-"))
                    if start >= len(data):
                        return self._send(416, b"", [("Content-Range", f"bytes */{len(data)}")])
                    return self._send(206, data[start:],
                                      [("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")])
                cut = fake.cut_once.pop(key, None)
                return self._send(200, data, [("Content-Type", "application/octet-stream")], cut=cut)
            if path.startswith(prefix + "/files/"):  # file metadata, never file bytes
                return self._json(200, {"key": path.rsplit("/", 1)[-1]})
            return self._json(404, {"status": 404, "message": "PID does not exist."})

    return Handler


@pytest.fixture
def source(tmp_path):
    """Event folders of small random files (seeded), and the archives built from them:
    returns (folder of the originals, {key: served bytes})."""
    rng = random.Random(20161104)
    src = tmp_path / "src" / TOP
    for event, names in EVENTS.items():
        (src / event).mkdir(parents=True)
        for name in names:
            (src / event / name).write_bytes(rng.randbytes(rng.randint(3000, 20000)))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{TOP}/", b"")  # a directory entry, as archivers write them
        for event in list(EVENTS)[:2]:
            for name in EVENTS[event]:
                zf.write(src / event / name, f"{TOP}/{event}/{name}")
    tbuf = io.BytesIO()
    with tarfile.open(fileobj=tbuf, mode="w:gz") as tf:
        event = list(EVENTS)[2]
        tf.add(src / event, f"{TOP}/{event}")
    return src, {ZIP: zbuf.getvalue(), TGZ: tbuf.getvalue(), README: b"ToC2ME waveforms, SAC, 2 kHz\n"}


def _serve(fake: FakeZenodo):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base = f"http://127.0.0.1:{server.server_address[1]}"
    return server, thread


@pytest.fixture
def fake(source):
    fz = FakeZenodo(source[1])
    server, thread = _serve(fz)
    try:
        yield fz
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _fetch(fz: FakeZenodo, dest: Path, **kw):
    kw.setdefault("backoff", 0)
    kw.setdefault("timeout", 10)
    return zenodo.fetch_waveforms(dest, "fm", api=f"{fz.base}/api", **kw)


def _rel_files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _expected_members() -> list[str]:
    return sorted(f"{TOP}/{event}/{name}" for event, names in EVENTS.items() for name in names)


def _assert_extracted(src: Path, dest: Path):
    root = dest / "waveforms"
    assert _rel_files(root) == _expected_members()  # no temporary files either
    for rel in _expected_members():
        assert (root / rel).read_bytes() == (src.parent / rel).read_bytes(), rel


# --- full fetch ----------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", ["list", "entries", "filename"])
def test_full_fetch_gives_byte_identical_files(fake, source, tmp_path, shape):
    fake.shape = shape
    dest = tmp_path / "dest"
    res = _fetch(fake, dest)
    _assert_extracted(source[0], dest)
    assert res.files_downloaded == 3 and res.members_extracted == len(_expected_members())
    assert res.bytes_downloaded == sum(len(b) for b in source[1].values())
    assert res.waveform_dir == dest / "waveforms"
    # verified downloads kept under zenodo/<record>/, the plain file as is; nothing partial left
    assert _rel_files(dest / "zenodo" / RECORD) == sorted([ZIP, TGZ, README])
    assert (dest / "zenodo" / RECORD / README).read_bytes() == source[1][README]
    assert not (dest / ".zenodo-partial").exists() or _rel_files(dest / ".zenodo-partial") == []
    state = json.loads((dest / ".zenodo-state.json").read_text())["records"][RECORD]
    assert state[ZIP]["verified"] and state[ZIP]["extracted"]
    assert state[ZIP]["checksum"] == f"md5:{_md5(source[1][ZIP])}"
    # polite: every request names the project; only the content URLs were downloaded
    assert all(r["ua"].startswith("focal-mechanism-workbench/") for r in fake.log)
    assert {r["path"].split("/")[-2] for r in fake.file_requests()} == {ZIP, TGZ, README}
    assert all(r["range"] is None and r["status"] == 200 for r in fake.file_requests())


def test_second_run_downloads_nothing(fake, source, tmp_path):
    dest = tmp_path / "dest"
    _fetch(fake, dest)
    fake.log.clear()
    res = _fetch(fake, dest)
    assert fake.file_requests() == []
    assert [r["path"] for r in fake.log] == [f"/api/records/{RECORD}"]  # the file list is always asked for
    assert (res.files_downloaded, res.bytes_downloaded, res.members_extracted) == (0, 0, 0)
    _assert_extracted(source[0], dest)


def test_lost_state_file_rehashes_instead_of_downloading(fake, source, tmp_path):
    dest = tmp_path / "dest"
    _fetch(fake, dest)
    (dest / ".zenodo-state.json").unlink()
    fake.log.clear()
    res = _fetch(fake, dest)
    assert fake.file_requests() == [] and res.files_downloaded == 0
    assert res.members_skipped == len(_expected_members()) and res.members_extracted == 0


# --- resume ------------------------------------------------------------------------------------

def test_interrupted_download_is_resumed_with_range(fake, source, tmp_path):
    dest = tmp_path / "dest"
    size, cut = len(source[1][ZIP]), 5000
    fake.cut_once[ZIP] = cut
    with pytest.raises(fetch.FetchError, match=rf"{ZIP}: cannot download .*{cut} of {size} bytes kept"):
        _fetch(fake, dest, retries=0)
    part = dest / ".zenodo-partial" / f"{ZIP}.part"
    assert part.stat().st_size == cut
    assert not (dest / "zenodo" / RECORD / ZIP).exists()
    assert not (dest / "waveforms").exists() or _rel_files(dest / "waveforms") == []
    fake.log.clear()
    _fetch(fake, dest, retries=0)
    zip_requests = [r for r in fake.file_requests() if ZIP in r["path"]]
    assert zip_requests == [{**zip_requests[0], "range": f"bytes={cut}-", "status": 206, "sent": size - cut}]
    assert not part.exists()
    _assert_extracted(source[0], dest)


def test_retry_within_one_run_resumes(fake, source, tmp_path):
    size, cut = len(source[1][TGZ]), 4096
    fake.cut_once[TGZ] = cut
    res = _fetch(fake, tmp_path / "dest", retries=2)
    reqs = [(r["range"], r["status"], r["sent"]) for r in fake.file_requests() if TGZ in r["path"]]
    assert reqs == [(None, 200, cut), (f"bytes={cut}-", 206, size - cut)]
    assert res.bytes_downloaded == sum(len(b) for b in source[1].values())
    _assert_extracted(source[0], tmp_path / "dest")


def test_server_ignoring_range_restarts_cleanly(fake, source, tmp_path):
    dest = tmp_path / "dest"
    size, cut = len(source[1][ZIP]), 3000
    fake.cut_once[ZIP] = cut
    with pytest.raises(fetch.FetchError):
        _fetch(fake, dest, retries=0)
    fake.ignore_range = True
    fake.log.clear()
    _fetch(fake, dest, retries=0)
    reqs = [(r["range"], r["status"], r["sent"]) for r in fake.file_requests() if ZIP in r["path"]]
    assert reqs == [(f"bytes={cut}-", 200, size)]
    _assert_extracted(source[0], dest)


def test_transient_503_is_retried(fake, source, tmp_path):
    fake.fail_once[README] = 1
    _fetch(fake, tmp_path / "dest", retries=1)
    assert [r["status"] for r in fake.file_requests() if README in r["path"]] == [503, 200]


def test_interrupted_extraction_resumes(fake, source, tmp_path):
    dest = tmp_path / "dest"
    _fetch(fake, dest)
    # imitate a crash during the zip's extraction: not marked extracted, one member missing
    # and its temporary file half written
    state_path = dest / ".zenodo-state.json"
    state = json.loads(state_path.read_text())
    state["records"][RECORD][ZIP]["extracted"] = False
    state_path.write_text(json.dumps(state))
    event = list(EVENTS)[1]
    missing = dest / "waveforms" / TOP / event / EVENTS[event][0]
    missing.unlink()
    (missing.parent / f".{missing.name}.extracting").write_bytes(b"half")
    fake.log.clear()
    res = _fetch(fake, dest)
    assert fake.file_requests() == []
    assert (res.members_extracted, res.members_skipped) == (1, 4)
    _assert_extracted(source[0], dest)


def test_empty_file_needs_no_request(fake, tmp_path):
    fake.blobs = {"empty.txt": b""}
    res = _fetch(fake, tmp_path / "dest")
    assert (tmp_path / "dest" / "zenodo" / RECORD / "empty.txt").read_bytes() == b""
    assert fake.file_requests() == [] and res.files_downloaded == 1


# --- refusals -----------------------------------------------------------------------------------

def test_wrong_checksum_is_refused_and_removed(fake, source, tmp_path):
    dest = tmp_path / "dest"
    bad = "md5:" + "0" * 32
    fake.checksum_override[ZIP] = bad
    with pytest.raises(fetch.ChecksumError) as info:
        _fetch(fake, dest)
    msg = str(info.value)
    assert msg.startswith(f"{ZIP}: md5 mismatch") and bad in msg and _md5(source[1][ZIP]) in msg
    assert "not kept" in msg
    assert not (dest / ".zenodo-partial" / f"{ZIP}.part").exists()
    assert not (dest / "zenodo" / RECORD / ZIP).exists()
    assert not (dest / "waveforms" / TOP / list(EVENTS)[0]).exists()


def test_wrong_size_is_refused_at_once(fake, source, tmp_path):
    dest = tmp_path / "dest"
    size = len(source[1][ZIP])
    fake.blobs[ZIP] = source[1][ZIP] + b"extra"  # the API (built from blobs) and bytes agree ...
    record = fake.record()
    fake.blobs[ZIP] = source[1][ZIP]              # ... until the served file is shorter
    fake.record = lambda: record
    with pytest.raises(fetch.ChecksumError, match=rf"{ZIP}: size mismatch: expected {size + 5} bytes, got {size}"):
        _fetch(fake, dest, retries=3)
    assert len([r for r in fake.file_requests() if ZIP in r["path"]]) == 1  # no pointless retries
    assert not (dest / ".zenodo-partial" / f"{ZIP}.part").exists()


def test_missing_record_gives_clear_error(fake, tmp_path):
    with pytest.raises(fetch.FetchError, match=r"Zenodo record 14185578: not found \(HTTP 404\) at http://127"):
        zenodo.fetch_waveforms(tmp_path / "dest", "all", api=f"{fake.base}/api", backoff=0, timeout=10)


def test_unreachable_api_gives_clear_error(tmp_path):
    with pytest.raises(fetch.FetchError, match=r"Zenodo record 15165318: cannot reach http://127.0.0.1:9/"):
        zenodo.fetch_waveforms(tmp_path, "fm", api="http://127.0.0.1:9/api", retries=0, timeout=2)


def _evil_zip(name: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"{TOP}/ok/5B.1101.DHZ.SAC", b"fine")
        zf.writestr(name, b"evil")
    return buf.getvalue()


def _evil_tar(name: str, mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tf:
        info = tarfile.TarInfo(name)
        info.size = 4
        tf.addfile(info, io.BytesIO(b"evil"))
    return buf.getvalue()


@pytest.mark.parametrize("kind", ["zip-dotdot", "zip-backslash", "tgz-dotdot", "tar-absolute"])
def test_member_escaping_the_destination_is_refused(fake, tmp_path, kind):
    dest = tmp_path / "dest"
    outside = tmp_path / "evil"  # where a zip-slip would land
    name = {"zip-dotdot": "../../evil", "zip-backslash": "..\\..\\evil", "tgz-dotdot": "a/../../../evil",
            "tar-absolute": str(outside)}[kind]
    data = _evil_zip(name) if kind.startswith("zip") else _evil_tar(name, "w:gz" if kind.startswith("tgz") else "w")
    fake.blobs = {"evil-archive": data}
    with pytest.raises(zenodo.UnsafeArchiveError, match=r"evil-archive: member .*evil.* outside"):
        _fetch(fake, dest)
    assert not outside.exists() and not (dest / "evil").exists()
    assert not list(tmp_path.rglob("evil")) and not list(tmp_path.rglob("*.extracting"))
    if kind.startswith("zip"):  # zip names are all checked before anything is written
        assert not (dest / "waveforms" / TOP).exists()


# --- pieces --------------------------------------------------------------------------------------

def test_record_files_entries_as_list_and_empty_record():
    rec = {"files": {"enabled": True, "entries": [
        {"key": "a b.zip", "size": 3, "checksum": "md5:" + "a" * 32, "links": {}}]}}
    (f,) = zenodo.parse_record_files(rec, "123", "https://example.org/api/")
    assert (f.key, f.size, f.algorithm, f.url) == ("a b.zip", 3, "md5",
                                                   "https://example.org/api/records/123/files/a%20b.zip/content")
    with pytest.raises(fetch.FetchError, match="lists no files"):
        zenodo.parse_record_files({"files": {"enabled": False}}, "123")
    with pytest.raises(fetch.FetchError, match="unsafe file key"):
        zenodo.parse_record_files({"files": [{"key": "../x", "size": 1, "checksum": "md5:" + "a" * 32}]}, "1")


def test_progress_is_a_bar_on_a_terminal_and_log_lines_otherwise(caplog):
    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    with zenodo.Progress("x.zip", 1000, 100, stream=tty) as bar:
        bar.update(900)
    assert "x.zip" in tty.getvalue() and "100%" in tty.getvalue()
    caplog.set_level("INFO", logger="pipeline.io.zenodo")
    with zenodo.Progress("y.zip", 1000, 0, stream=io.StringIO()) as bar:
        for _ in range(10):
            bar.update(100)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "y.zip: 100/1000 bytes (10 %)" and lines[-1] == "y.zip: 1000/1000 bytes (100 %)"


# --- command line --------------------------------------------------------------------------------

def test_cli_fetch_toc2me_waveforms(fake, source, tmp_path, monkeypatch, capsys):
    github = []
    monkeypatch.setattr(fetch, "fetch_toc2me", lambda dest, **kw: github.append(dest) or [])
    dest = tmp_path / "dest"
    assert main(["fetch-toc2me", "--dest", str(dest), "--waveforms", "fm", "--zenodo-api", f"{fake.base}/api"]) == 0
    assert github == [str(dest)]  # the GitHub files are still fetched first
    out = capsys.readouterr().out
    assert f"Zenodo record {RECORD}: 3 file(s) verified (3 downloaded" in out
    _assert_extracted(source[0], dest)
    # default: no waveforms, Zenodo not asked
    fake.log.clear()
    assert main(["fetch-toc2me", "--dest", str(dest)]) == 0
    assert fake.log == []
    # a clear error, no traceback
    assert main(["fetch-toc2me", "--dest", str(dest), "--waveforms", "all", "--zenodo-api", f"{fake.base}/api"]) == 1
    assert "error: Zenodo record 14185578: not found (HTTP 404)" in capsys.readouterr().err


def test_cli_delete_archives(fake, source, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "fetch_toc2me", lambda dest, **kw: [])
    dest = tmp_path / "dest"
    args = ["fetch-toc2me", "--dest", str(dest), "--waveforms", "fm", "--zenodo-api", f"{fake.base}/api",
            "--delete-archives"]
    assert main(args) == 0
    assert _rel_files(dest / "zenodo" / RECORD) == [README]  # extracted archives removed, plain file kept
    _assert_extracted(source[0], dest)
    fake.log.clear()
    assert main(args) == 0
    assert fake.file_requests() == []
