"""Versioned data folders: every build is a complete folder, made visible by one atomic switch.

Layout of a data folder::

    <data-dir>/
      current -> versions/<id>          symlink, the version readers see (replaced by rename)
      versions/<id>/<table>.parquet     a table in one file
      versions/<id>/<table>/part-NNNNN.parquet   a table in parts (streamed stages), in order
      versions/<id>/build_info.json
      <table>.parquet, <table>, build_info.json -> current/...   convenience links (DuckDB,
                                         pandas and users' scripts keep their old paths)
      work/                              the resumable stages' chunk cache (pipeline.flow)
      reviews.sqlite                     the dashboard's manual picks (not versioned)

Why: a build used to rename its tables into place one by one, so a crash between two renames
left a mix that ``ensure`` took for current, and a running app could read new events with old
mechanisms. Now a version folder is written completely (files fsynced), renamed into
``versions/`` and only then published by replacing the ``current`` symlink with
``os.replace`` (atomic on POSIX). A reader that resolves ``current`` once
(:func:`resolve`) reads one complete version; the last :data:`KEEP_VERSIONS` versions stay
on disk so a reader that resolved the old one keeps working after the switch.

A data folder written by an older build (tables directly in ``<data-dir>``, no ``current``)
is still read as it is (:func:`resolve` returns the folder itself) and is converted on the
next publish.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

CURRENT = "current"
VERSIONS = "versions"
KEEP_VERSIONS = 3               #: versions kept on disk, the current one included
PART_GLOB = "*.parquet"
INFO = "build_info.json"


def resolve(data_dir: str | os.PathLike) -> Path:
    """The folder holding the current version's tables: ``versions/<id>`` (absolute) when
    ``current`` exists, else ``data_dir`` itself (older flat layout, or nothing built)."""
    data_dir = Path(data_dir)
    link = data_dir / CURRENT
    try:
        target = os.readlink(link)
    except FileNotFoundError:
        return data_dir
    except OSError:  # a real folder: a data folder copied without its links (shutil.copytree)
        return link.resolve() if link.is_dir() else data_dir
    return (data_dir / target).resolve() if not os.path.isabs(target) else Path(target)


def current_version(data_dir: str | os.PathLike) -> str | None:
    """The id of the current version, None for a flat or empty folder."""
    base = resolve(data_dir)
    return base.name if base != Path(data_dir) else None


def versions(data_dir: str | os.PathLike) -> list[str]:
    """Complete versions on disk, oldest first (ids sort by time)."""
    root = Path(data_dir) / VERSIONS
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def table_location(base: Path, name: str) -> Path:
    """``base/<name>`` when the table is stored in parts there, else ``base/<name>.parquet``."""
    folder = base / name
    return folder if folder.is_dir() else base / f"{name}.parquet"


def part_files(path: Path) -> list[Path]:
    """The Parquet files of a table location (one file, or a folder's parts in name order)."""
    if path.is_dir():
        return sorted(p for p in path.glob(PART_GLOB) if p.is_file())
    return [path] if path.exists() else []


def new_version_id() -> str:
    """A fresh id that sorts after every earlier one: UTC time to the microsecond."""
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _link_or_copy(src: Path, dst: Path) -> None:
    """Hard link (no copy, same inode: the chunk cache and the version share the bytes);
    a copy where the file system cannot link."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class VersionWriter:
    """Writes one version folder and publishes it.

    ``tables/parts`` go into a hidden staging folder under ``versions/``; :meth:`publish`
    fsyncs it, renames it to ``versions/<id>``, switches ``current`` and prunes old versions.
    Until then nothing a reader sees changes; :meth:`abort` (or an exception inside a
    ``with`` block) removes the staging folder.
    """

    def __init__(self, data_dir: str | os.PathLike, version_id: str | None = None):
        self.data_dir = Path(data_dir)
        self.id = version_id or new_version_id()
        root = self.data_dir / VERSIONS
        root.mkdir(parents=True, exist_ok=True)
        self.staging = root / f".staging-{self.id}"
        if self.staging.exists():
            shutil.rmtree(self.staging)
        self.staging.mkdir()
        self._written: list[Path] = []

    # -- writing --------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """Path for a one-file table ``name`` inside the staging folder."""
        return self.staging / f"{name}.parquet"

    def add_parts(self, name: str, parts: list[Path]) -> Path:
        """Table ``name`` made of the given Parquet files, in this order (hard-linked)."""
        folder = self.staging / name
        folder.mkdir(exist_ok=True)
        for i, src in enumerate(parts):
            _link_or_copy(Path(src), folder / f"part-{i:05d}.parquet")
        return folder

    def inherit(self, base: Path, skip: set[str], flat: bool = False) -> None:
        """Hard-link every table of version folder ``base`` not in ``skip`` (single-stage
        commands replace a few tables and keep the rest). ``flat``: ``base`` is a data folder
        of the older layout, whose tables are its plain ``*.parquet`` files."""
        if not base.is_dir():
            return
        for p in sorted(base.iterdir()):
            name = p.name[:-len(".parquet")] if p.name.endswith(".parquet") else p.name
            if name in skip or p.name == INFO or p.name.startswith("."):
                continue
            if flat and (p.is_symlink() or p.is_dir()):
                continue
            if p.is_dir():
                self.add_parts(name, part_files(p))
            elif p.suffix == ".parquet":
                _link_or_copy(p, self.staging / p.name)

    def write_info(self, info: dict) -> None:
        (self.staging / INFO).write_text(json.dumps(info, indent=2, default=str))

    # -- publishing -----------------------------------------------------------------------
    def publish(self, keep: int = KEEP_VERSIONS) -> Path:
        """Make the staged folder the current version; returns its path."""
        for p in self.staging.rglob("*"):
            if p.is_file():
                _fsync(p)
        for d in [*(p for p in self.staging.rglob("*") if p.is_dir()), self.staging]:
            _fsync(d)
        final = self.data_dir / VERSIONS / self.id
        os.rename(self.staging, final)
        _fsync(final.parent)
        switch_current(self.data_dir, self.id)
        _refresh_links(self.data_dir, final)
        prune(self.data_dir, keep)
        return final

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.abort()
        return False


def switch_current(data_dir: Path, version_id: str) -> None:
    """Point ``current`` at ``versions/<version_id>`` with one atomic rename."""
    tmp = data_dir / f".{CURRENT}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(f"{VERSIONS}/{version_id}", tmp)
    cur = data_dir / CURRENT
    if cur.is_dir() and not cur.is_symlink():  # copied without links: move the copy aside
        os.rename(cur, data_dir / VERSIONS / f".copied-{version_id}")
    os.replace(tmp, cur)
    _fsync(data_dir)


def _refresh_links(data_dir: Path, version: Path) -> None:
    """Top-level ``<table>.parquet`` / ``<table>`` / build_info links through ``current``;
    files of the older flat layout are replaced, links of tables the version lacks removed."""
    wanted = {p.name for p in version.iterdir() if not p.name.startswith(".")}
    for name in wanted:
        link = data_dir / name
        target = f"{CURRENT}/{name}"
        if link.is_symlink() and os.readlink(link) == target:
            continue
        tmp = data_dir / f".{name}.{os.getpid()}.lnk"
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp)
        if link.is_dir() and not link.is_symlink():
            shutil.rmtree(link)
        os.replace(tmp, link)
    for p in data_dir.iterdir():
        stale_link = p.is_symlink() and p.name != CURRENT and os.readlink(p).startswith(f"{CURRENT}/")
        flat_table = p.is_file() and not p.is_symlink() and p.suffix == ".parquet"
        if (stale_link or flat_table) and p.name not in wanted:
            p.unlink()


def prune(data_dir: str | os.PathLike, keep: int = KEEP_VERSIONS) -> list[str]:
    """Remove all but the newest ``keep`` versions (never the current one) and leftover
    staging folders of crashed builds; returns the removed ids."""
    data_dir = Path(data_dir)
    cur = current_version(data_dir)
    ids = versions(data_dir)
    old = [v for v in ids[:max(0, len(ids) - keep)] if v != cur]
    for v in old:
        shutil.rmtree(data_dir / VERSIONS / v, ignore_errors=True)
    root = data_dir / VERSIONS
    for p in [*root.glob(".staging-*"), *root.glob(".copied-*")] if root.is_dir() else ():
        if p.name != f".staging-{cur}":
            shutil.rmtree(p, ignore_errors=True)
    return old
