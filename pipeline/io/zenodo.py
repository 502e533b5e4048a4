"""Download and unpack the ToC2ME waveform archives published on Zenodo.

Two records hold the event waveforms the GitHub repository only samples:

* ``fm``  -- 10.5281/zenodo.15165318, waveforms of the 2,519 events with focal mechanisms;
* ``all`` -- 10.5281/zenodo.14185578, waveforms of all (~21.6k) ToC2ME events.

Nothing about their files is hard-coded: the list of files, their sizes (bytes) and
checksums come from Zenodo's records API, ``GET {api}/records/{record_id}``. Only the
record ids and the API base URL (:data:`DEFAULT_API`, overridable) are constants.

Layout under the destination folder ``dest``::

    dest/.zenodo-partial/<key>.part      download in progress (resumed with HTTP Range)
    dest/zenodo/<record_id>/<key>        verified download (archive or plain file)
    dest/.zenodo-state.json              what was verified and extracted, per record and key
    dest/waveforms/...                   archive members, paths as stored in the archive

Guarantees of :func:`fetch_waveforms`:

* downloads stream in fixed-size chunks (never a whole file in memory) into the ``.part``
  file; an interrupted download is resumed from the ``.part`` size with
  ``Range: bytes=N-``; a server that answers 200 instead of 206 restarts it cleanly;
* a finished download is checked against the API's size and checksum (md5 on Zenodo) and
  only then moved to ``dest/zenodo/<record_id>/<key>``; a mismatch raises
  :class:`~pipeline.ingest.fetch.ChecksumError` naming the file, and nothing is kept;
* a verified file is never downloaded again (``.zenodo-state.json`` holds its checksum);
* archives (zip, tar, tar.gz/bz2/xz, recognised by content) are extracted member by
  member into ``dest/waveforms/``; each member is written to a temporary name beside its
  target and renamed when complete, so a file at its final name is always whole; members
  already present with the member's size are skipped (an interrupted extraction resumes);
  a member that would land outside ``dest/waveforms/`` (absolute path, ``..``, drive
  letter) is refused with :class:`UnsafeArchiveError`; links and special files are skipped;
* HTTP is polite: a User-Agent naming this project, a timeout per request and a few
  retries with exponential backoff on connection errors, HTTP 429 and 5xx.

To force a new extraction of a record, delete its entry from ``.zenodo-state.json``
(or the whole file; verified archives still present are then re-hashed, not re-downloaded).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ..ingest.fetch import ChecksumError, FetchError

log = logging.getLogger(__name__)

#: base URL of Zenodo's REST API (an InvenioRDM instance since October 2023)
DEFAULT_API = "https://zenodo.org/api"
#: ``--waveforms`` choice -> Zenodo record id
RECORDS = {"fm": "15165318", "all": "14185578"}
USER_AGENT = ("focal-mechanism-workbench/pipeline (ToC2ME waveform download; "
              f"Python-urllib/{sys.version_info.major}.{sys.version_info.minor})")

PARTIAL_DIR = ".zenodo-partial"
ARCHIVE_DIR = "zenodo"
STATE_FILE = ".zenodo-state.json"
EXTRACT_DIR = "waveforms"

_CHUNK = 1 << 20  # bytes per read/write: large files stream, never held in memory
_RETRY_STATUS = {429, 500, 502, 503, 504}
_HEX = re.compile(r"^[0-9a-f]+$")
_MD5_HEX = re.compile(r"^[0-9a-f]{32}$")


class UnsafeArchiveError(FetchError):
    """An archive member would be written outside the extraction folder."""


class _Truncated(ConnectionError):
    """The server closed the connection before sending the whole body (retryable)."""


@dataclass(frozen=True)
class ZenodoFile:
    """One file of a record: ``key`` (its name in the record, POSIX, relative), ``size``
    in bytes, ``checksum`` as ``"<algorithm>:<hex>"`` (Zenodo: md5) and download ``url``."""

    record_id: str
    key: str
    size: int
    checksum: str
    url: str

    @property
    def algorithm(self) -> str:
        return self.checksum.split(":", 1)[0]

    @property
    def digest(self) -> str:
        return self.checksum.split(":", 1)[1]


@dataclass
class FetchResult:
    """What :func:`fetch_waveforms` did: files of the record(s), bytes fetched over the
    network in this run, files downloaded, archive members written and skipped (already
    present), and the folder the members went to."""

    files: list[ZenodoFile] = field(default_factory=list)
    bytes_downloaded: int = 0
    files_downloaded: int = 0
    members_extracted: int = 0
    members_skipped: int = 0
    waveform_dir: Path | None = None


# --- HTTP -----------------------------------------------------------------------------------

def _request(url: str, headers: dict | None = None) -> urllib.request.Request:
    return urllib.request.Request(url, headers={"User-Agent": USER_AGENT, **(headers or {})})


def _retry_delay(attempt: int, backoff: float, exc: Exception | None = None) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): ``backoff * 2**attempt``, or the
    server's ``Retry-After`` (seconds, capped at 120) when it sent one."""
    retry_after = getattr(exc, "headers", None) and exc.headers.get("Retry-After")
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), 120.0)
    return backoff * 2 ** attempt


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", None) or exc) or type(exc).__name__


def _get_json(url: str, what: str, timeout: float, retries: int, backoff: float) -> dict:
    for attempt in range(retries + 1):
        try:
            with urllib.request.urlopen(_request(url, {"Accept": "application/json"}), timeout=timeout) as resp:
                return json.load(resp)
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise FetchError(f"{what}: not found (HTTP 404) at {url}; check the record id "
                                 "and --zenodo-api") from exc
            if exc.code not in _RETRY_STATUS or attempt == retries:
                raise FetchError(f"{what}: HTTP {exc.code} {exc.reason} for {url}") from exc
            delay = _retry_delay(attempt, backoff, exc)
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            if attempt == retries:
                raise FetchError(f"{what}: cannot reach {url}: {_reason(exc)}") from exc
            delay = _retry_delay(attempt, backoff)
        except ValueError as exc:  # JSON decoding
            raise FetchError(f"{what}: {url} did not return JSON: {exc}") from exc
        log.warning("%s: retrying %s in %.1f s (attempt %d of %d)", what, url, delay, attempt + 2, retries + 1)
        time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


# --- the records API --------------------------------------------------------------------------

def _check_key(key: str, record_id: str) -> str:
    p = PurePosixPath(key)
    if not key or p.is_absolute() or ".." in p.parts or "\\" in key or "\x00" in key:
        raise FetchError(f"Zenodo record {record_id}: unsafe file key {key!r}")
    return key


def _normalise_checksum(value, key: str, record_id: str) -> str:
    """``"md5:<hex>"`` style checksum; a bare 32-hex value (the short-lived late-2023
    Zenodo serialisation) is taken as md5."""
    value = str(value or "").strip().lower()
    if ":" in value:
        algorithm, digest = value.split(":", 1)
    elif _MD5_HEX.match(value):
        algorithm, digest = "md5", value
    else:
        raise FetchError(f"Zenodo record {record_id}: file {key!r} has no usable checksum ({value!r})")
    if algorithm not in hashlib.algorithms_available or not _HEX.match(digest):
        raise FetchError(f"Zenodo record {record_id}: file {key!r} has unsupported checksum {value!r}")
    return f"{algorithm}:{digest}"


def parse_record_files(record: dict, record_id: str, api: str = DEFAULT_API) -> list[ZenodoFile]:
    """Files of a records-API response.

    Accepted shapes of ``record["files"]`` (all seen on Zenodo or InvenioRDM):

    * a list of ``{"key", "size", "checksum": "md5:<hex>", "links": {"self": <download>}}``
      (Zenodo's ``/api/records/<id>`` today);
    * ``{"enabled": ..., "entries": [...]}`` or ``entries`` as a dict keyed by file name
      (InvenioRDM's own serialisation), whose links hold ``content`` (download) and
      ``self`` (file metadata);
    * ``filename``/``filesize`` instead of ``key``/``size`` and a bare md5 (late 2023).

    The download URL is ``links.content``, else ``links.download``, else ``links.self``,
    else ``{api}/records/{record_id}/files/{key}/content``.
    """
    files = record.get("files")
    if isinstance(files, dict):
        files = files.get("entries")
    if isinstance(files, dict):
        files = [{"key": k, **v} if isinstance(v, dict) else v for k, v in files.items()]
    if not isinstance(files, list) or not files:
        raise FetchError(f"Zenodo record {record_id}: the API response lists no files "
                         "(restricted, embargoed or empty record?)")
    out = []
    for entry in files:
        if not isinstance(entry, dict):
            raise FetchError(f"Zenodo record {record_id}: unexpected file entry {entry!r}")
        key = _check_key(str(entry.get("key") or entry.get("filename") or ""), record_id)
        size = entry.get("size", entry.get("filesize"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise FetchError(f"Zenodo record {record_id}: file {key!r} has no valid size ({size!r})")
        checksum = _normalise_checksum(entry.get("checksum"), key, record_id)
        links = entry.get("links") or {}
        # with filename/filesize (late 2023) links.self was a file-id URL that did not download
        link = links.get("content") or links.get("download") or (links.get("self") if "key" in entry else None)
        if not link:
            quoted = "/".join(urllib.parse.quote(p, safe="") for p in PurePosixPath(key).parts)
            link = f"{api.rstrip('/')}/records/{record_id}/files/{quoted}/content"
        out.append(ZenodoFile(record_id, key, size, checksum, urllib.parse.urljoin(api, link)))
    if len({f.key for f in out}) != len(out):
        raise FetchError(f"Zenodo record {record_id}: duplicate file keys")
    return out


def record_files(record_id: str, api: str = DEFAULT_API, timeout: float = 60, retries: int = 3,
                 backoff: float = 1.0) -> list[ZenodoFile]:
    """Files of Zenodo record ``record_id`` from ``GET {api}/records/{record_id}``."""
    url = f"{api.rstrip('/')}/records/{urllib.parse.quote(str(record_id), safe='')}"
    record = _get_json(url, f"Zenodo record {record_id}", timeout, retries, backoff)
    return parse_record_files(record, str(record_id), api)


# --- progress --------------------------------------------------------------------------------

class Progress:
    """Bytes done/total of one download: a tqdm bar when ``stream`` (default stderr) is a
    terminal, otherwise INFO log lines at most every 10 % or 30 s, and one at the end."""

    def __init__(self, desc: str, total: int, initial: int = 0, stream=None, enabled: bool | None = None):
        stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = bool(getattr(stream, "isatty", lambda: False)())
        self.desc, self.total, self.done = desc, total, initial
        self._bar = None
        if enabled:
            from tqdm import tqdm
            self._bar = tqdm(total=total, initial=initial, desc=desc, unit="B", unit_scale=True,
                             unit_divisor=1024, file=stream)
        self._last_t, self._last_frac = time.monotonic(), self._frac()

    def _frac(self) -> float:
        return self.done / self.total if self.total else 1.0

    def update(self, n: int) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._frac() - self._last_frac >= 0.1 or time.monotonic() - self._last_t >= 30:
            self._log()

    def _log(self) -> None:
        log.info("%s: %d/%d bytes (%.0f %%)", self.desc, self.done, self.total, 100 * self._frac())
        self._last_t, self._last_frac = time.monotonic(), self._frac()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        else:
            self._log()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- download with resume ----------------------------------------------------------------------

def hash_file(path: str | os.PathLike, algorithm: str) -> str:
    """Hex digest of a file's bytes with ``hashlib`` algorithm ``algorithm``, streamed."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def _content_range(resp) -> tuple[int | None, int | None]:
    """(first byte, total bytes) of a 206 answer's ``Content-Range: bytes N-M/T``; None
    for what is absent, garbled or ``*``."""
    m = re.match(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)", resp.headers.get("Content-Range", ""))
    if not m:
        return None, None
    return int(m.group(1)), (int(m.group(2)) if m.group(2).isdigit() else None)


def _announced_size(resp) -> int | None:
    """Size in bytes of the whole file as the server announces it (Content-Range total of
    a 206, Content-Length of a 200), None when it does not say (chunked)."""
    if resp.status == 206:
        return _content_range(resp)[1]
    length = resp.headers.get("Content-Length", "")
    return int(length) if length.strip().isdigit() else None


def _stream_into(resp, part: Path, start: int, f: ZenodoFile, progress: bool | None) -> int:
    """Append (``start`` > 0) or write the body of ``resp`` to ``part``; returns bytes
    received (fewer than ``f.size - start`` when the body ended early)."""
    expected = f.size - start
    got = 0
    with open(part, "ab" if start else "wb") as out, \
            Progress(f.key, f.size, start, enabled=progress) as bar:
        while chunk := resp.read(_CHUNK):
            out.write(chunk)
            got += len(chunk)
            bar.update(len(chunk))
            if got > expected:  # larger than the API says: stop; the size check refuses it
                break
    return got


def download_file(f: ZenodoFile, part: Path, timeout: float = 60, retries: int = 3, backoff: float = 1.0,
                  progress: bool | None = None) -> int:
    """Bring ``part`` to the full ``f.size`` bytes, resuming from its current size;
    returns the bytes received over the network. Does not verify the checksum.

    A partial file is continued with ``Range: bytes=<size>-``; an answer other than a 206
    starting at that byte restarts from 0; HTTP 416 discards the partial file. Network
    errors, truncated bodies, 429 and 5xx are retried ``retries`` times with exponential
    backoff (``backoff`` seconds, doubled each time), each retry resuming. Other HTTP
    errors raise :class:`FetchError` at once. The partial file is kept on failure.
    """
    part.parent.mkdir(parents=True, exist_ok=True)
    received = 0
    for attempt in range(retries + 1):
        have = part.stat().st_size if part.is_file() else 0
        if have > f.size:
            log.warning("%s: partial file is larger than the record says; starting again", f.key)
            part.unlink()
            have = 0
        if have == f.size:
            part.touch()  # an empty file needs no request, but must exist
            return received
        headers = {"Range": f"bytes={have}-"} if have else {}
        if have:
            log.info("%s: resuming at byte %d of %d", f.key, have, f.size)
        try:
            with urllib.request.urlopen(_request(f.url, headers), timeout=timeout) as resp:
                start = have
                if have and resp.status != 206:
                    # the server ignored the range: the body is the whole file
                    log.info("%s: server answered HTTP %d to a range request; restarting from byte 0",
                             f.key, resp.status)
                    start = 0
                elif resp.status == 206 and _content_range(resp)[0] != have:
                    part.unlink(missing_ok=True)  # some other range: start clean on the retry
                    raise _Truncated(f"server answered range {resp.headers.get('Content-Range')!r} "
                                     f"to bytes={have}-")
                announced = _announced_size(resp)
                if announced is not None and announced != f.size:  # fail now, not after many retries
                    part.unlink(missing_ok=True)
                    raise ChecksumError(f.key, f"{f.size} bytes", f"{announced} bytes (announced by the server)",
                                        f.url, what="size")
                got = _stream_into(resp, part, start, f, progress)
                received += got
                if start + got < f.size:
                    raise _Truncated(f"connection closed after {start + got} of {f.size} bytes")
                return received
        except urllib.error.HTTPError as exc:
            if exc.code == 416:  # our offset is not satisfiable: the partial file is stale
                log.warning("%s: server refused resuming at byte %d (HTTP 416); starting again", f.key, have)
                part.unlink(missing_ok=True)
                if attempt == retries:
                    raise FetchError(f"{f.key}: HTTP 416 for {f.url} (range bytes={have}-)") from exc
            elif exc.code not in _RETRY_STATUS or attempt == retries:
                raise FetchError(f"{f.key}: HTTP {exc.code} {exc.reason} for {f.url}") from exc
            delay = _retry_delay(attempt, backoff, exc)
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            kept = part.stat().st_size if part.is_file() else 0
            if attempt == retries:
                raise FetchError(f"{f.key}: cannot download {f.url}: {_reason(exc)}; {kept} of {f.size} bytes "
                                 f"kept in {part}, a re-run resumes from there") from exc
            delay = _retry_delay(attempt, backoff)
        log.warning("%s: retrying in %.1f s (attempt %d of %d)", f.key, delay, attempt + 2, retries + 1)
        time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def verify(f: ZenodoFile, path: Path) -> None:
    """Raise :class:`ChecksumError` (and remove ``path``) unless it has the size and
    checksum the records API gives for ``f``."""
    size = path.stat().st_size
    if size != f.size:
        path.unlink(missing_ok=True)
        raise ChecksumError(f.key, f"{f.size} bytes", f"{size} bytes", f.url, what="size")
    digest = hash_file(path, f.algorithm)
    if digest != f.digest:
        path.unlink(missing_ok=True)
        raise ChecksumError(f.key, f.checksum, f"{f.algorithm}:{digest}", f.url, what=f.algorithm)


# --- state -----------------------------------------------------------------------------------

class _State:
    """``dest/.zenodo-state.json``: ``{"records": {id: {key: {"size", "checksum",
    "verified", "extracted", ...}}}}``, rewritten atomically after every change."""

    def __init__(self, path: Path):
        self.path = path
        try:
            self.data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        except ValueError:
            log.warning("%s is not valid JSON; starting a new state file", path)
            self.data = {}
        self.data.setdefault("records", {})

    def get(self, f: ZenodoFile) -> dict:
        entry = self.data["records"].get(f.record_id, {}).get(f.key, {})
        # an entry about other bytes (the record changed) says nothing about these
        return entry if (entry.get("checksum"), entry.get("size")) == (f.checksum, f.size) else {}

    def set(self, f: ZenodoFile, **values) -> None:
        entry = self.get(f) or {"size": f.size, "checksum": f.checksum}
        entry.update(values)
        self.data["records"].setdefault(f.record_id, {})[f.key] = entry
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


# --- extraction ------------------------------------------------------------------------------

def _member_target(root: Path, name: str, archive: str) -> Path | None:
    """Where member ``name`` goes under ``root``; None for the archive's root entry.
    Raises :class:`UnsafeArchiveError` for names that would leave ``root``."""
    norm = name.replace("\\", "/")  # zips written on Windows may use backslashes
    parts = [p for p in norm.split("/") if p not in ("", ".")]
    if norm.startswith("/") or re.match(r"^[A-Za-z]:", norm) or ".." in parts or "\x00" in norm:
        raise UnsafeArchiveError(f"{archive}: member {name!r} would be written outside {root}; "
                                 "the archive was not extracted further")
    if not parts:
        return None
    target = root.joinpath(*parts)
    # a directory symlink already inside root must not lead the write elsewhere
    if not target.parent.resolve().is_relative_to(root.resolve()):
        raise UnsafeArchiveError(f"{archive}: member {name!r} resolves outside {root}")
    return target


def _write_member(src, target: Path, size: int, archive: str, name: str) -> bool:
    """Copy member stream ``src`` to ``target`` via ``.<name>.extracting`` beside it, then
    rename; False (nothing read) when ``target`` already holds ``size`` bytes."""
    if target.is_file() and target.stat().st_size == size:
        return False  # final names only ever hold complete members (rename below)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.extracting")
    try:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        if tmp.stat().st_size != size:
            raise FetchError(f"{archive}: member {name!r} has {tmp.stat().st_size} bytes, header says {size}")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return True


def archive_kind(path: Path) -> str | None:
    """``"zip"``, ``"tar"`` (plain or gz/bz2/xz compressed) or None, from the file's content."""
    with open(path, "rb") as fh:
        head = fh.read(4)
    if head in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    try:
        return "tar" if tarfile.is_tarfile(path) else None
    except (OSError, EOFError):
        return None


def extract_archive(archive: Path, root: Path, label: str | None = None) -> tuple[int, int]:
    """Extract ``archive`` (zip or tar variant) member by member under ``root``; returns
    (members written, members skipped because already present).

    Zip member names are all checked before anything is written; tar streams (possibly
    compressed) are read once, so an unsafe tar member is refused when reached (members
    before it stay extracted, all inside ``root``). Links and special files are skipped.
    """
    label = label or archive.name
    root.mkdir(parents=True, exist_ok=True)
    written = skipped = 0
    kind = archive_kind(archive)
    if kind == "zip":
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            targets = [_member_target(root, i.filename, label) for i in infos]
            for info, target in zip(infos, targets):
                if target is None:
                    continue
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                elif (info.external_attr >> 16) & 0o170000 == 0o120000:
                    log.warning("%s: skipping symbolic link member %s", label, info.filename)
                else:
                    with zf.open(info) as src:  # zipfile checks the CRC at the end
                        if _write_member(src, target, info.file_size, label, info.filename):
                            written += 1
                        else:
                            skipped += 1
    elif kind == "tar":
        with tarfile.open(archive, mode="r|*") as tf:  # stream mode: one pass, any compression
            for member in tf:
                target = _member_target(root, member.name, label)
                if target is None:
                    continue
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                elif member.isreg():
                    if _write_member(tf.extractfile(member), target, member.size, label, member.name):
                        written += 1
                    else:
                        skipped += 1
                else:
                    log.warning("%s: skipping link or special member %s", label, member.name)
    else:
        raise FetchError(f"{label}: not a zip or tar archive")
    return written, skipped


# --- the whole job ---------------------------------------------------------------------------

def fetch_record(record_id: str, dest: str | os.PathLike, api: str = DEFAULT_API, timeout: float = 60,
                 retries: int = 3, backoff: float = 1.0, keep_archives: bool = True,
                 progress: bool | None = None, result: FetchResult | None = None) -> FetchResult:
    """Download, verify and extract every file of Zenodo record ``record_id`` into ``dest``
    (layout in the module docstring). ``timeout`` is per request, seconds; ``backoff`` is
    the first retry delay, seconds; ``keep_archives=False`` deletes each archive once it
    is fully extracted (the state file still marks it done, so it is not fetched again);
    ``progress``: None = tqdm bar if stderr is a terminal, log lines otherwise.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    result = result if result is not None else FetchResult()
    root = dest / EXTRACT_DIR
    result.waveform_dir = root
    state = _State(dest / STATE_FILE)
    files = record_files(record_id, api, timeout, retries, backoff)
    result.files.extend(files)
    total = sum(f.size for f in files)
    log.info("Zenodo record %s: %d file(s), %d bytes", record_id, len(files), total)
    for f in files:
        entry = state.get(f)
        if entry.get("extracted") or entry.get("plain"):
            log.info("%s: verified and extracted earlier; nothing to do", f.key)
            continue
        final = dest / ARCHIVE_DIR / record_id / f.key
        if not (entry.get("verified") and final.is_file() and final.stat().st_size == f.size):
            if final.is_file() and final.stat().st_size == f.size and hash_file(final, f.algorithm) == f.digest:
                log.info("%s: present and matches the record's checksum", f.key)  # state file was lost
            else:
                part = dest / PARTIAL_DIR / f"{f.key}.part"
                if part.is_file() and entry.get("partial") != f.checksum and part.stat().st_size:
                    log.info("%s: partial download belongs to other bytes; starting again", f.key)
                    part.unlink()
                state.set(f, partial=f.checksum, verified=False)
                result.bytes_downloaded += download_file(f, part, timeout, retries, backoff, progress)
                verify(f, part)  # removes the partial file and raises on mismatch
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(part, final)
                result.files_downloaded += 1
            state.set(f, verified=True, partial=None)
            log.info("%s: %d bytes, %s verified", f.key, f.size, f.algorithm)
        if archive_kind(final) is None:
            log.info("%s: not an archive; kept as %s", f.key, final)
            state.set(f, plain=True)
            continue
        log.info("%s: extracting into %s", f.key, root)
        written, skipped = extract_archive(final, root, f.key)
        result.members_extracted += written
        result.members_skipped += skipped
        state.set(f, extracted=True, members=written + skipped)
        log.info("%s: %d member(s) written, %d already present", f.key, written, skipped)
        if not keep_archives:
            final.unlink()
    return result


def fetch_waveforms(dest: str | os.PathLike, which: str = "fm", api: str = DEFAULT_API, **kwargs) -> FetchResult:
    """Fetch the ToC2ME waveform record ``which`` (``"fm"``: the 2,519 focal-mechanism
    events, ``"all"``: all events; see :data:`RECORDS`) into ``dest``; keyword arguments
    go to :func:`fetch_record`."""
    if which not in RECORDS:
        raise ValueError(f"which must be one of {sorted(RECORDS)}, not {which!r}")
    return fetch_record(RECORDS[which], dest, api, **kwargs)
