"""Pinned, verified download of the public ToC2ME files (no network: a local HTTP mirror)."""
import csv
import functools
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pipeline.ingest import fetch

SHARED = Path("/work/shared/toc2me")
SNR = "picks/snr/SNR_event_waveform_toc2me_me_2.csv"
#: a handful of small files; two have spaces in their repository path
SMALL = [
    "catalog/well-location-one.txt",
    "catalog/nsw/StageTimeLocation_ToC2ME_2.txt",
    "catalog/nsw/injection_volume.csv",
    "skhash_demo/OUT/out.csv",
    "waveforms/catalog_sorted_ToC2ME.txt",
    SNR,
]

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="curated ToC2ME folder /work/shared/toc2me absent")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def mirror(tmp_path):
    """A local HTTP server whose root mirrors the repository layout at the pinned commit,
    holding the SMALL files copied from the shared folder; yields (base_url, root, manifest).

    The manifest subset takes hashes from the committed manifest, except for the SNR file,
    whose served (shared, row-subset) bytes cannot match the upstream hash: its entry is
    built from the bytes actually served.
    """
    root = tmp_path / "mirror"
    by_here = {e.path_here: e for e in fetch.manifest_entries()}
    entries = []
    for here in SMALL:
        e = by_here[here]
        served = root / fetch.REPO / fetch.COMMIT / e.path_in_repo
        served.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED / here, served)
        if here == SNR:
            e = fetch.ManifestEntry(e.path_here, e.path_in_repo, fetch.sha256_file(served), served.stat().st_size)
        entries.append(e)
    manifest = fetch.write_manifest(entries, tmp_path / "manifest.tsv", "test subset")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/{fetch.REPO}/{fetch.COMMIT}/"
        yield base, root / fetch.REPO / fetch.COMMIT, manifest
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- the committed manifest ------------------------------------------------------------------

def test_manifest_is_well_formed_and_pinned():
    entries = fetch.manifest_entries()
    assert len(entries) == 467
    assert len({e.path_here for e in entries}) == len(entries)
    assert fetch.DEFAULT_BASE_URL == ("https://raw.githubusercontent.com/hhhjjjcc/Micro-EQpolarity/"
                                      "9dc7430736b969143346619619523c6123fe9f4b/")
    assert all(e.bytes is not None for e in entries if e.path_here != SNR)


@needs_shared
def test_manifest_matches_provenance_with_upstream_snr_hash():
    with open(SHARED / "PROVENANCE.tsv", encoding="utf-8", newline="") as f:
        prov = {r[0]: r for r in list(csv.reader(f, delimiter="\t"))[1:]}
    entries = {e.path_here: e for e in fetch.manifest_entries()}
    assert set(entries) == set(prov)
    for here, e in entries.items():
        assert e.path_in_repo == prov[here][1]
        if here == SNR:
            assert e.sha256 == "25a031efbc09b2a258c2b6c55adf92203fd91d6a0173b59495ba7e4ab346734e"
            assert e.sha256 != prov[here][2] and e.bytes is None
        else:
            assert (e.sha256, e.bytes) == (prov[here][2], int(prov[here][3]))


@needs_shared
def test_manifest_hashes_match_the_shared_files():
    for e in fetch.manifest_entries():
        if e.path_here != SNR:
            assert fetch.is_verified(SHARED / e.path_here, e), e.path_here


def test_url_components_are_quoted():
    url = fetch.file_url("https://h/x/", "Code_ToC2ME/Fine-scale fault structures/a b#c.txt")
    assert url == "https://h/x/Code_ToC2ME/Fine-scale%20fault%20structures/a%20b%23c.txt"


def test_manifest_rejects_unsafe_paths(tmp_path):
    bad = fetch.ManifestEntry("../evil.txt", "a.txt", "0" * 64, 1)
    path = fetch.write_manifest([bad], tmp_path / "m.tsv")
    with pytest.raises(fetch.FetchError, match="evil"):
        fetch.manifest_entries(path)


# --- downloads from a local mirror -------------------------------------------------------------

@needs_shared
def test_download_reproduces_files_byte_identically(mirror, tmp_path):
    base, _, manifest = mirror
    dest = tmp_path / "dest"
    paths = fetch.fetch_toc2me(dest, base_url=base, manifest=manifest, timeout=10)
    assert [p.relative_to(dest).as_posix() for p in paths] == SMALL
    for here in SMALL:
        assert (dest / here).read_bytes() == (SHARED / here).read_bytes(), here
    assert _files(dest) == sorted(SMALL)  # no temp files left


@needs_shared
def test_corrupted_file_is_refused_and_not_kept(mirror, tmp_path):
    base, root, manifest = mirror
    entry = next(e for e in fetch.manifest_entries(manifest) if e.path_here == "skhash_demo/OUT/out.csv")
    served = root / entry.path_in_repo
    data = bytearray(served.read_bytes())
    data[10] ^= 0x01  # one byte changed, same size
    served.write_bytes(bytes(data))
    bad_hash = fetch.sha256_file(served)
    dest = tmp_path / "dest"
    with pytest.raises(fetch.ChecksumError) as info:
        fetch.fetch_toc2me(dest, base_url=base, manifest=manifest, timeout=10)
    msg = str(info.value)
    assert "skhash_demo/OUT/out.csv" in msg and entry.sha256 in msg and bad_hash in msg
    assert not (dest / "skhash_demo/OUT/out.csv").exists()
    assert not list((dest / "skhash_demo/OUT").glob("*"))  # no temp file either


@needs_shared
def test_wrong_size_is_refused(mirror, tmp_path):
    base, root, manifest = mirror
    entry = next(e for e in fetch.manifest_entries(manifest) if e.path_here == "waveforms/catalog_sorted_ToC2ME.txt")
    (root / entry.path_in_repo).write_bytes(b"truncated")
    with pytest.raises(fetch.ChecksumError, match=r"catalog_sorted_ToC2ME.txt: size mismatch: expected 57 bytes"):
        fetch.download_entry(entry, tmp_path / "dest", base, timeout=10)
    assert not (tmp_path / "dest" / entry.path_here).exists()


@needs_shared
def test_missing_file_gives_clear_error(mirror, tmp_path):
    base, root, manifest = mirror
    entry = next(e for e in fetch.manifest_entries(manifest) if e.path_here == "catalog/nsw/injection_volume.csv")
    (root / entry.path_in_repo).unlink()
    with pytest.raises(fetch.FetchError, match=r"catalog/nsw/injection_volume.csv: HTTP 404 .*injection_volume.csv"):
        fetch.fetch_toc2me(tmp_path / "dest", base_url=base, manifest=manifest, timeout=10)
    assert not (tmp_path / "dest" / entry.path_here).exists()


def test_unreachable_server_gives_clear_error(tmp_path):
    entry = fetch.ManifestEntry("a/b.txt", "x/b.txt", "0" * 64, 3)
    with pytest.raises(fetch.FetchError, match=r"a/b.txt: cannot download http://127.0.0.1:9/x/b.txt"):
        fetch.download_entry(entry, tmp_path, "http://127.0.0.1:9/", timeout=2, retries=0)
    assert not (tmp_path / "a/b.txt").exists()


@needs_shared
def test_rerun_skips_verified_files_and_replaces_bad_ones(mirror, tmp_path, monkeypatch):
    base, _, manifest = mirror
    dest = tmp_path / "dest"
    fetch.fetch_toc2me(dest, base_url=base, manifest=manifest, timeout=10)
    (dest / "catalog/well-location-one.txt").write_text("tampered")
    calls = []
    real = fetch.download_entry
    monkeypatch.setattr(fetch, "download_entry", lambda e, *a, **k: calls.append(e.path_here) or real(e, *a, **k))
    fetch.fetch_toc2me(dest, base_url=base, manifest=manifest, timeout=10)
    assert calls == ["catalog/well-location-one.txt"]
    well = "catalog/well-location-one.txt"
    assert (dest / well).read_bytes() == (SHARED / well).read_bytes()
    calls.clear()
    fetch.fetch_toc2me(dest, base_url=base, manifest=manifest, timeout=10)
    assert calls == []
