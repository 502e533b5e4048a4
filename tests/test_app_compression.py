"""Responses are compressed (flask-compress, issue 12): JSON and JavaScript with br or gzip
as the client accepts, the streamed CSV downloads untouched."""
from __future__ import annotations

import gzip
import json

import brotli  # a requirement (flask-compress pulls it): a missing package fails, never skips
import flask_compress  # noqa: F401
import pytest


@pytest.fixture()
def client(demo_data_dir):
    from app import create_app

    app = create_app(demo_data_dir)
    c = app.server.test_client()
    c.get("/")  # Dash loads the pages on the first request
    return c


def test_json_is_brotli_or_gzip_as_accepted_and_decodes_to_the_same(client):
    plain = client.get("/_dash-layout", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    br = client.get("/_dash-layout", headers={"Accept-Encoding": "gzip, deflate, br, zstd"})
    assert br.headers["Content-Encoding"] == "br"
    assert json.loads(brotli.decompress(br.data)) == json.loads(plain.data)
    gz = client.get("/_dash-layout", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(gz.data) == plain.data
    assert "Accept-Encoding" in br.headers["Vary"]


def test_callback_json_is_compressed(client):
    """The map's figure callback (the issue's 2-5 MB response), called as the renderer
    calls it, answers br; decoded, it is the figure."""
    deps = client.get("/_dash-dependencies").get_json()
    dep = next(d for d in deps if d["output"].startswith("..map-graph.figure...")
               and d.get("clientside_function") is None)
    outputs = []
    for o in dep["output"].strip(".").split("..."):
        oid, prop = o.rsplit(".", 1)
        outputs.append({"id": json.loads(oid) if oid.startswith("{") else oid, "property": prop})
    body = {"output": dep["output"], "outputs": outputs, "changedPropIds": [],
            "inputs": [{**i, "value": ""} for i in dep["inputs"]],
            "state": [{**s, "value": None} for s in dep["state"]]}
    r = client.post("/_dash-update-component", json=body, headers={"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200, r.data[:300]
    assert r.mimetype == "application/json" and r.headers["Content-Encoding"] == "br"
    raw = brotli.decompress(r.data)
    assert len(r.data) < 0.7 * len(raw)  # base64 float32 arrays: ~1.9x, not the 10x of text
    assert json.loads(raw)["response"]["map-graph"]["figure"]["data"]


def test_bundles_are_compressed_once_and_callbacks_never_cached(client):
    cache = client.application.extensions["compress"].cache
    page = client.get("/").get_data(as_text=True)
    url = next(s.split('"')[0] for s in page.split('src="')[1:] if "_dash-component-suites" in s)
    first = client.get(url, headers={"Accept-Encoding": "br"})
    assert first.headers["Content-Encoding"] == "br"
    assert brotli.decompress(first.data) == client.get(url, headers={"Accept-Encoding": "identity"}).data
    assert client.get(url, headers={"Accept-Encoding": "br"}).data == first.data
    assert client.get("/_dash-layout", headers={"Accept-Encoding": "br"}).headers["Content-Encoding"] == "br"
    assert [k.rstrip("?") for k in cache._store] == [f"br;{url}"]  # the bundle, not the layout


def test_assets_linked_with_their_file_time_are_cached_and_bare_ones_not(client):
    """The page links each asset with its file's time (``?m=``): that URL is a cache key, so an
    edited file gets a new one; the bare path (never linked) is not stored. (Werkzeug's test
    client sends files as streams, which flask-compress leaves alone, so the key itself is
    checked here; waitress's responses are compressed.)"""
    import flask

    from app import _bundle_key

    page = client.get("/").get_data(as_text=True)
    asset = next(s.split('"')[0] for s in page.split('src="')[1:] if "/assets/plotly-fm.min.js" in s)
    assert "?m=" in asset
    server = client.application
    with server.test_request_context(asset):
        assert _bundle_key(flask.request) == asset
    with server.test_request_context(asset.split("?")[0]):
        assert _bundle_key(flask.request) == ""
    with server.test_request_context(asset, method="POST"):
        assert _bundle_key(flask.request) == ""


def test_csv_download_is_streamed_uncompressed(client):
    r = client.get("/download/events.csv", headers={"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200 and r.is_streamed
    assert "Content-Encoding" not in r.headers
    assert r.data.decode().startswith('"event_id"')
