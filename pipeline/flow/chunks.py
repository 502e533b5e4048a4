"""Chunks of events, the digests that name them, and the chunk cache that makes builds resume.

Chunking (content-defined, deterministic)
-----------------------------------------
Event ids are sorted and cut after every id whose hash is 0 modulo the target size (and at
the latest after ``4 x target`` ids). The cut points depend only on the ids themselves, so
adding an event folder changes the one chunk it falls in and leaves every other chunk, and
its cached result, as it was (a fixed-size split would shift every later chunk).

Digests
-------
A chunk's digest is the SHA-256 of everything its result depends on: the stage name, the
stage's code (the source files it runs), the model/settings, and its inputs (for waveform
chunks: every file's relative path, size and modification time). Same digest = same result,
so a finished chunk is reused; any change in code, model or files redoes it.

Cache layout
------------
``<data-dir>/work/<stage>/<digest>/``: the part files (``<table>.parquet``) and
``done.json``, written last, listing each part's size and row count. A chunk is reused only
when ``done.json`` exists, its digest matches and every part has the recorded size and a
readable Parquet footer: a torn or missing part (crash, power loss, truncated copy) makes
the chunk run again. A chunk whose task failed is recorded too (``status: failed`` with the
error and rejects rows), so a resume does not retry it for ever; ``--fresh`` or
``--retry-failed`` does.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import pyarrow.parquet as pq

WORK = "work"
DONE = "done.json"
DEFAULT_CHUNK_EVENTS = 25      #: target events per chunk (~5,000 SAC files of ToC2ME)
PIPELINE_ROOT = Path(__file__).resolve().parents[1]


def _id_hash(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


def plan_chunks(event_ids: Iterable[str], target: int = DEFAULT_CHUNK_EVENTS) -> list[list[str]]:
    """Sorted, de-duplicated ids cut into content-defined chunks of ~``target`` ids."""
    target = max(1, int(target))
    chunks, cur = [], []
    for eid in sorted(set(map(str, event_ids))):
        cur.append(eid)
        if target == 1 or _id_hash(eid) % target == 0 or len(cur) >= 4 * target:
            chunks.append(cur)
            cur = []
    if cur:
        chunks.append(cur)
    return chunks


def digest(*parts) -> str:
    """SHA-256 (hex) of a JSON rendering of ``parts`` (sorted keys, so dict order is irrelevant)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(json.dumps(p, sort_keys=True, default=str, separators=(",", ":")).encode())
        h.update(b"\0")
    return h.hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes (model weights, velocity model files)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def code_digest(modules: Iterable[str]) -> str:
    """Digest of source files given relative to the ``pipeline`` package (a folder: every
    ``.py`` under it). A missing file is part of the digest too."""
    h = hashlib.sha256()
    for rel in sorted(modules):
        p = PIPELINE_ROOT / rel
        files = sorted(p.rglob("*.py")) if p.is_dir() else [p]
        for f in files:
            h.update(str(f.relative_to(PIPELINE_ROOT)).encode())
            h.update(f.read_bytes() if f.is_file() else b"<missing>")
    return h.hexdigest()


def folder_listing(folder: Path, root: Path, suffixes: tuple[str, ...]) -> list[tuple[str, int, int]]:
    """(path relative to ``root``, size, mtime_ns) of the waveform files of an event folder,
    sorted: what a picking chunk's digest covers."""
    out = []
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in suffixes or p.name == "picks.csv":
            try:
                st = p.stat()
            except OSError:
                continue
            out.append((str(p.relative_to(root)), st.st_size, st.st_mtime_ns))
    return out


# --------------------------------------------------------------------------- the cache

@dataclass
class ChunkResult:
    """What the driver keeps of a finished chunk: its folder, status and summary."""

    key: str
    folder: Path
    status: str                   #: 'done' or 'failed'
    summary: dict
    reused: bool = False          #: taken from the cache of an earlier run

    def part(self, table: str) -> Path | None:
        """The chunk's part file of ``table``, None when it wrote none."""
        files = self.summary.get("parts", {})
        return self.folder / f"{table}.parquet" if table in files else None


class ChunkCache:
    """The finished chunks of one stage under ``<work>/<stage>``."""

    def __init__(self, work_dir: str | os.PathLike, stage: str):
        self.root = Path(work_dir) / stage
        self.root.mkdir(parents=True, exist_ok=True)

    def folder(self, key: str) -> Path:
        return self.root / key

    def lookup(self, key: str, retry_failed: bool = False) -> ChunkResult | None:
        """The cached result of chunk ``key`` if complete and intact, else None (and the
        chunk's leftovers are removed so it runs from scratch)."""
        folder = self.folder(key)
        marker = folder / DONE
        try:
            summary = json.loads(marker.read_text())
        except (FileNotFoundError, ValueError):
            summary = None
        intact = summary is not None and summary.get("key") == key and _parts_intact(folder, summary)
        if intact and not (retry_failed and summary.get("status") == "failed"):
            return ChunkResult(key, folder, summary.get("status", "done"), summary, reused=True)
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
        return None

    def prune(self, keep: set[str]) -> int:
        """Remove chunk folders not in ``keep`` (results no current plan uses); returns how many."""
        n = 0
        for p in self.root.iterdir():
            if p.is_dir() and p.name not in keep:
                shutil.rmtree(p, ignore_errors=True)
                n += 1
        return n


def _parts_intact(folder: Path, summary: dict) -> bool:
    for table, meta in summary.get("parts", {}).items():
        p = folder / f"{table}.parquet"
        try:
            if p.stat().st_size != meta["size"]:
                return False
            if pq.read_metadata(p).num_rows != meta["rows"]:
                return False
        except Exception:  # noqa: BLE001 - a missing file, bad marker or unreadable footer: torn
            return False
    return True


def write_marker(folder: Path, key: str, status: str, parts: dict[str, int], **extra) -> dict:
    """Write ``done.json`` (last, atomically, fsynced) for the parts in ``folder``;
    ``parts`` maps table -> rows. Returns the summary."""
    summary = {"key": key, "status": status,
               "parts": {t: {"size": (folder / f"{t}.parquet").stat().st_size, "rows": int(n)}
                         for t, n in parts.items()},
               **extra}
    tmp = folder / f".{DONE}.tmp"
    with open(tmp, "w") as fh:
        json.dump(summary, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    for t in parts:
        fd = os.open(folder / f"{t}.parquet", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    os.replace(tmp, folder / DONE)
    return summary
