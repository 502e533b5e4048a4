"""Serving (issue 10, item 5): a download to a client that does not read does not hold a
waitress worker thread, so pages stay served while large exports trickle out.

The app runs under real waitress with ONE worker thread and a small output high-water
mark (64 kB) and 8 kB socket send buffers, so the demo's ~1.5 MB events CSV is "large". A raw socket asks for the CSV
and then reads nothing. A second client must still get ``/healthz`` and a page; then the
first client reads its whole download, which must equal the same CSV read normally."""
from __future__ import annotations

import socket
import threading
import time

import pytest
import requests

waitress = pytest.importorskip("waitress", reason="waitress is a requirement of the app server")


@pytest.fixture()
def served(demo_data_dir):
    from waitress import create_server

    from app import create_app

    app = create_app(demo_data_dir)
    # small, fixed kernel send buffers (accepted sockets inherit them; no autotuning to
    # 4 MB), so a client that stops reading is felt at once, as over a slow link
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    listener.bind(("127.0.0.1", 0))
    server = create_server(app.server, sockets=[listener], threads=1, outbuf_high_watermark=65536)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    yield f"http://127.0.0.1:{port}", port
    server.close()


def _stalled_download(port: int, path: str) -> socket.socket:
    """A client that sends the request and then does not read (tiny receive window)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    return sock


def _read_response(sock: socket.socket, timeout: float = 60.0) -> tuple[bytes, bytes]:
    sock.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head, body


@pytest.mark.parametrize("path, high_water_marks", [
    ("/download/events.csv", 10),
    # the classification page's CSV (same spool): every mechanism row, an edited rule
    ("/download/mechanisms_classified.csv?mech=all&rule=g1%3A0%2C30%2C0%2C90%2C150", 4),
])
def test_a_stalled_download_does_not_block_the_only_worker_thread(served, path, high_water_marks):
    url, port = served
    expected = requests.get(f"{url}{path}", timeout=60).content
    assert len(expected) > high_water_marks * 65536  # more than the high-water mark plus socket buffers
    stalled = _stalled_download(port, path)
    try:
        time.sleep(1.0)  # the query has run; the file is being fed to a client that reads nothing
        r = requests.get(f"{url}/healthz", timeout=20)
        assert r.status_code == 200 and r.text == "ok\n"
        page = requests.get(f"{url}/_dash-layout", timeout=20)
        assert page.status_code == 200 and page.json()
        head, body = _read_response(stalled)
        assert head.startswith(b"HTTP/1.1 200")
        assert b"content-disposition: attachment" in head.lower()
        assert body == expected  # the spooled file is the whole CSV, byte for byte
    finally:
        stalled.close()
