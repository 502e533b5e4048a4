"""`build`: every table of the data contract, end to end, from one data source.

Sources:

* ``demo`` (default): a synthetic experiment generated from a fixed seed, no input needed
  (:mod:`pipeline.demo`); it carries its ground truth in ``truth_*`` tables.
* ``toc2me``: a folder laid out like the public ToC2ME data (:mod:`pipeline.ingest_toc2me`).

The new tables replace the old ones all-or-nothing (:func:`pipeline.tables.write_tables`);
tables of the previous build that the new one does not write (e.g. ``truth_*`` when
switching from demo to real data) are removed afterwards so a data folder always holds one
coherent build, described by ``build_info.json``.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timezone
from pathlib import Path

from . import schema, tables
from .errors import InputError

log = logging.getLogger(__name__)

SOURCES = ("demo", "toc2me")
DEFAULT_SEED = 20161104


def load_source(source: str, input_dir: str | Path | None = None, seed: int = DEFAULT_SEED) -> dict:
    """Tables (name -> DataFrame) of one source, not yet written."""
    if source == "demo":
        from . import demo
        return demo.generate(seed=seed)
    if source == "toc2me":
        if input_dir is None:
            raise InputError("--input", "the toc2me source needs --input DIR (or run `python -m pipeline fetch-toc2me`)")
        input_dir = Path(input_dir)
        if not input_dir.is_dir():
            raise InputError(input_dir, "input folder does not exist")
        from . import ingest_toc2me
        return ingest_toc2me.load(input_dir)
    raise ValueError(f"unknown source {source!r}; choose one of {SOURCES}")


def build(source: str = "demo", input_dir: str | Path | None = None, data_dir: str | Path = "data",
          seed: int = DEFAULT_SEED) -> dict:
    """Build every table from ``source`` into ``data_dir``; returns the build info."""
    t0 = time.perf_counter()
    data = load_source(source, input_dir, seed)
    missing = [t for t in schema.REQUIRED_TABLES if t not in data]
    if missing:
        raise RuntimeError(f"source {source!r} produced no {missing} table(s)")
    info = {
        "source": source,
        "input": str(Path(input_dir).resolve()) if input_dir else None,
        "seed": seed if source == "demo" else None,
        "schema_version": schema.SCHEMA_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": {name: int(len(df)) for name, df in data.items()},
        "seconds": None,
    }
    info["seconds"] = round(time.perf_counter() - t0, 2)
    written = tables.write_tables(data_dir, data, info)
    _remove_stale(Path(data_dir), {p.name for p in written})
    log.info("built %s into %s in %.1f s: %s", source, data_dir, info["seconds"], info["rows"])
    return info


def _remove_stale(data_dir: Path, keep: set[str]) -> None:
    for path in data_dir.glob("*.parquet"):
        if path.name not in keep:
            path.unlink()


def read_info(data_dir: str | Path) -> dict | None:
    """The ``build_info.json`` of ``data_dir``, or None if there is no complete build."""
    path = Path(data_dir) / "build_info.json"
    if not path.exists() or not tables.has_tables(data_dir):
        return None
    return json.loads(path.read_text())


def ensure(source: str = "demo", input_dir: str | Path | None = None, data_dir: str | Path = "data",
           seed: int = DEFAULT_SEED) -> tuple[dict, bool]:
    """Build only when ``data_dir`` holds no complete build of this source (and input).

    Returns (build info, whether a build ran).
    """
    info = read_info(data_dir)
    wanted_input = str(Path(input_dir).resolve()) if input_dir else None
    if info and info.get("source") == source and info.get("schema_version") == schema.SCHEMA_VERSION \
            and (source == "demo" or info.get("input") == wanted_input):
        return info, False
    return build(source, input_dir, data_dir, seed), True
