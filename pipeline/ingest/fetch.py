"""Download the public ToC2ME files, pinned and sha256-verified.

The files come from the public GitHub repository ``hhhjjjcc/Micro-EQpolarity`` at commit
:data:`COMMIT` (see ``/work/shared/toc2me/README.md`` for what they are). The list of
files, their path in that repository, their sha256 and size is the committed manifest
``pipeline/ingest/toc2me_manifest.tsv``; it holds hashes and paths only, never data. The
destination folder gets the ``path_here`` layout, i.e. the layout of the curated
``toc2me/`` folder that ``python -m pipeline build --source toc2me --input DIR`` reads.

Guarantees of :func:`fetch_toc2me`:

* every download goes to a temporary file in the destination folder, is checked (size
  where the manifest knows it, and sha256) and only then renamed into place, so a file at
  its final path is always a verified copy;
* a mismatch raises :class:`ChecksumError` naming the file, the expected and the actual
  hash, and leaves nothing behind;
* files already present with the right hash are not downloaded again (re-running after
  an interruption resumes).

One file differs from the curated shared folder on purpose: the upstream
``picks/snr/SNR_event_waveform_toc2me_me_2.csv`` covers three events (the shared copy is a
row subset of two). The manifest holds the *upstream* sha256 (from the note column of
``PROVENANCE.tsv``) and no size (the upstream size is not recorded), so only its hash is
checked. The extra rows belong to event 20161128051644.670.
"""
from __future__ import annotations

import csv
import hashlib
import logging
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

log = logging.getLogger(__name__)

REPO = "hhhjjjcc/Micro-EQpolarity"
COMMIT = "9dc7430736b969143346619619523c6123fe9f4b"
#: raw-file URL prefix of the pinned commit; a file's URL is this + its quoted repo path
DEFAULT_BASE_URL = f"https://raw.githubusercontent.com/{REPO}/{COMMIT}/"
MANIFEST_PATH = Path(__file__).with_name("toc2me_manifest.tsv")
MANIFEST_COLUMNS = ("path_here", "path_in_repo", "sha256", "bytes", "note")

_CHUNK = 1 << 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUBSET_NOTE = re.compile(r"original sha256=([0-9a-f]{64})")


class FetchError(RuntimeError):
    """A file could not be downloaded (HTTP error, network error, bad manifest)."""


class ChecksumError(FetchError):
    """A downloaded file's size or sha256 differs from the manifest; nothing was kept."""

    def __init__(self, path_here: str, expected: str, actual: str, url: str, what: str = "sha256"):
        self.path_here, self.expected, self.actual, self.url = path_here, expected, actual, url
        super().__init__(f"{path_here}: {what} mismatch: expected {expected}, got {actual} "
                         f"(downloaded from {url}); the file was not kept")


@dataclass(frozen=True)
class ManifestEntry:
    """One file: where it goes (``path_here``, POSIX, relative), where it comes from
    (``path_in_repo``), its sha256 (hex) and size in bytes (None when unknown)."""

    path_here: str
    path_in_repo: str
    sha256: str
    bytes: int | None
    note: str = ""


def _check_relative(path: str, what: str) -> None:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or "\\" in path:
        raise FetchError(f"manifest: {what} {path!r} must be a relative POSIX path without '..'")


def manifest_entries(manifest: str | os.PathLike = MANIFEST_PATH) -> list[ManifestEntry]:
    """Entries of a manifest TSV (header ``path_here, path_in_repo, sha256, bytes[, note]``;
    lines starting with ``#`` are comments; an empty ``bytes`` means size unknown)."""
    manifest = Path(manifest)
    lines = [ln for ln in manifest.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    missing = [c for c in MANIFEST_COLUMNS[:4] if c not in (reader.fieldnames or [])]
    if missing:
        raise FetchError(f"manifest {manifest}: missing columns {missing}")
    entries, seen = [], set()
    for i, row in enumerate(reader, start=2):
        size = (row.get("bytes") or "").strip()
        entry = ManifestEntry(row["path_here"], row["path_in_repo"], row["sha256"].strip().lower(),
                              int(size) if size else None, (row.get("note") or "").strip())
        _check_relative(entry.path_here, "path_here")
        _check_relative(entry.path_in_repo, "path_in_repo")
        if not _SHA256.match(entry.sha256):
            raise FetchError(f"manifest {manifest}, row {i}: bad sha256 {entry.sha256!r}")
        if entry.path_here in seen:
            raise FetchError(f"manifest {manifest}, row {i}: duplicate path_here {entry.path_here!r}")
        seen.add(entry.path_here)
        entries.append(entry)
    return entries


def file_url(base_url: str, path_in_repo: str) -> str:
    """URL of ``path_in_repo`` under ``base_url``; each path component is percent-quoted
    (several ToC2ME paths contain spaces)."""
    quoted = "/".join(urllib.parse.quote(part, safe="") for part in PurePosixPath(path_in_repo).parts)
    return base_url.rstrip("/") + "/" + quoted


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def is_verified(path: str | os.PathLike, entry: ManifestEntry) -> bool:
    """True when ``path`` exists with the manifest's size (if known) and sha256."""
    path = Path(path)
    if not path.is_file():
        return False
    if entry.bytes is not None and path.stat().st_size != entry.bytes:
        return False
    return sha256_file(path) == entry.sha256


def _download_to(url: str, fileobj, timeout: float) -> tuple[int, str]:
    """Stream ``url`` into ``fileobj``; returns (bytes written, sha256 hex)."""
    h, n = hashlib.sha256(), 0
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        for chunk in iter(lambda: resp.read(_CHUNK), b""):
            fileobj.write(chunk)
            h.update(chunk)
            n += len(chunk)
    return n, h.hexdigest()


def download_entry(entry: ManifestEntry, dest: str | os.PathLike, base_url: str = DEFAULT_BASE_URL,
                   timeout: float = 60, retries: int = 2) -> Path:
    """Download one manifest entry into ``dest/<path_here>`` via a verified temp file.

    Network errors and HTTP 5xx are retried ``retries`` times; HTTP 4xx and checksum
    mismatches are not. Raises :class:`FetchError` / :class:`ChecksumError`.
    """
    target = Path(dest) / entry.path_here
    target.parent.mkdir(parents=True, exist_ok=True)
    url = file_url(base_url, entry.path_in_repo)
    for attempt in range(retries + 1):
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                size, digest = _download_to(url, f, timeout)
            if entry.bytes is not None and size != entry.bytes:
                raise ChecksumError(entry.path_here, f"{entry.bytes} bytes", f"{size} bytes", url, what="size")
            if digest != entry.sha256:
                raise ChecksumError(entry.path_here, entry.sha256, digest, url)
            os.replace(tmp, target)
            return target
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == retries:
                raise FetchError(f"{entry.path_here}: HTTP {exc.code} {exc.reason} for {url}") from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            if attempt == retries:
                reason = getattr(exc, "reason", exc)
                raise FetchError(f"{entry.path_here}: cannot download {url}: {reason}") from exc
        finally:
            tmp.unlink(missing_ok=True)
        log.warning("retrying %s (attempt %d of %d)", url, attempt + 2, retries + 1)
        time.sleep(0.5 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


def fetch_toc2me(dest: str | os.PathLike, base_url: str = DEFAULT_BASE_URL,
                 manifest: str | os.PathLike = MANIFEST_PATH, timeout: float = 60) -> list[Path]:
    """Download every manifest file into ``dest`` (``path_here`` layout); returns their paths.

    Files already present with the right sha256 are skipped. ``base_url`` is the prefix
    of the pinned commit's raw files (or a mirror with the same layout); ``timeout`` is
    per request, seconds. Stops at the first failing file (earlier ones stay verified).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    entries = manifest_entries(manifest)
    paths, fetched = [], 0
    for i, entry in enumerate(entries, start=1):
        target = dest / entry.path_here
        if not is_verified(target, entry):
            if target.exists():
                log.info("%s: present but does not match the manifest; downloading again", entry.path_here)
            download_entry(entry, dest, base_url, timeout)
            fetched += 1
        paths.append(target)
        if i % 50 == 0 or i == len(entries):
            log.info("toc2me files: %d/%d verified (%d downloaded)", i, len(entries), fetched)
    return paths


# --- building the manifest (maintainers) ----------------------------------------------------

def manifest_from_provenance(provenance: str | os.PathLike) -> list[ManifestEntry]:
    """Manifest entries from the curated folder's ``PROVENANCE.tsv``
    (columns path_here, path_in_repo, sha256, bytes, note).

    Row-subset copies (note ``ROW SUBSET ... original sha256=<hex>``) get the upstream
    hash and an unknown size, since the upstream file is what a download returns.
    """
    with open(provenance, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    entries = []
    for row in rows[1:]:
        if not row or not row[0]:
            continue
        path_here, path_in_repo, sha, size = row[:4]
        note = row[4] if len(row) > 4 else ""
        m = _SUBSET_NOTE.search(note)
        if m:
            entries.append(ManifestEntry(path_here, path_in_repo, m.group(1), None,
                                         "upstream file (3 events); the curated copy is a 2-event row "
                                         f"subset with sha256={sha}; upstream size not recorded"))
        else:
            entries.append(ManifestEntry(path_here, path_in_repo, sha.lower(), int(size), note))
    return entries


def write_manifest(entries: list[ManifestEntry], path: str | os.PathLike, comment: str | None = None) -> Path:
    """Write ``entries`` as a manifest TSV (optional ``#`` comment lines first)."""
    lines = [f"# {c}" for c in (comment.splitlines() if comment else [])]
    lines.append("\t".join(MANIFEST_COLUMNS))
    for e in entries:
        fields = (e.path_here, e.path_in_repo, e.sha256, "" if e.bytes is None else str(e.bytes), e.note)
        if any("\t" in x or "\n" in x for x in fields):
            raise FetchError(f"manifest: tab or newline in entry {e.path_here!r}")
        lines.append("\t".join(fields))
    path = Path(path)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


MANIFEST_COMMENT = (
    f"Public ToC2ME files of {REPO} at commit {COMMIT}.\n"
    "Generated by pipeline.ingest.fetch.manifest_from_provenance from the curated folder's PROVENANCE.tsv.\n"
    "URL of a file: https://raw.githubusercontent.com/<repo>/<commit>/<path_in_repo, components percent-quoted>.\n"
    "Empty bytes = size unknown (only sha256 is checked)."
)


if __name__ == "__main__":  # python -m pipeline.ingest.fetch PROVENANCE.tsv [OUT]
    import sys

    src = sys.argv[1]
    out = sys.argv[2] if len(sys.argv) > 2 else MANIFEST_PATH
    print(write_manifest(manifest_from_provenance(src), out, MANIFEST_COMMENT))
