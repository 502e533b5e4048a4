"""`build`: every table of the data contract, end to end, from one data source.

Sources:

* ``demo`` (default): a synthetic experiment generated from a fixed seed, no input needed
  (:mod:`pipeline.demo`); it carries its ground truth in ``truth_*`` tables.
* ``toc2me``: a folder laid out like the public ToC2ME data (:mod:`pipeline.ingest_toc2me`).

Stages after the base tables (each optional, see :class:`Options`):

1. polarities: published/manual/reference picks of ``picks/`` (ToC2ME) and the automatic
   pickers over the event waveforms (``waveforms/`` folders; synthetic traces for the demo),
   plus the ``waveforms`` snippets the dashboard shows;
2. inversion: SKHASH on the polarities (manual overriding automatic) -> ``source='computed'``
   mechanisms beside the published ones, with per-station rays, acceptable planes and the
   unsolved events with their reasons.

The new tables replace the old ones all-or-nothing (:func:`pipeline.tables.write_tables`);
tables of the previous build that the new one does not write (e.g. ``truth_*`` when
switching from demo to real data) are removed afterwards so a data folder always holds one
coherent build, described by ``build_info.json``.
"""
from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema, tables
from .errors import InputError
from .rejects import Rejects

log = logging.getLogger(__name__)

SOURCES = ("demo", "toc2me")
DEFAULT_SEED = 20161104


@dataclass
class Options:
    """What a build does beyond the base tables."""

    pick: bool = True                   #: run the automatic pickers on the event waveforms
    pickers: tuple = ("cnn", "onset")   #: which (see pipeline.picking.PICKERS)
    invert: bool = True                 #: run SKHASH on the polarities
    picks: str = "auto"                 #: polarity choice for SKHASH (pipeline.invert)
    demo_waveform_events: int = 60      #: demo events that get synthetic waveforms
    workers: int | None = None          #: SKHASH processes (default: all cores)


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


def _pickers(names) -> dict:
    from .picking import load_picker
    return {n: load_picker(n) for n in names}


def _demo_polarities(data: dict, opts: Options) -> None:
    """Synthetic traces of the demo -> polarities, waveforms and truth_polarities (in place)."""
    from . import demo_waveforms, picking
    meta, windows = demo_waveforms.generate_waveforms(data, max_events=opts.demo_waveform_events)
    meta = meta.assign(location="", p_source="synthetic", snr=picking.windows_snr(windows))
    data["polarities"] = picking.pick_windows(meta, windows, data["stations"], _pickers(opts.pickers))
    data["waveforms"] = pd.DataFrame({
        "event_id": meta["event_id"], "network": meta["network"], "station": meta["station"],
        "location": "", "channel": meta["channel"], "t0_s": -demo_waveforms.P_INDEX / demo_waveforms.SAMPLING_RATE,
        "sampling_rate": demo_waveforms.SAMPLING_RATE, "samples": list(windows), "p_source": "synthetic"})
    data["truth_polarities"] = meta[["event_id", "network", "station", "true_polarity", "amplitude",
                                     "near_nodal", "dead", "snr_true", "takeoff_deg", "azimuth_deg"]].copy()


def _toc2me_polarities(data: dict, input_dir: Path, opts: Options, rejects: Rejects) -> pd.DataFrame | None:
    """Picks folder and waveform folders -> polarities/waveforms (in place); returns the
    locations SKHASH used for the published picks (from the .pol.hash headers)."""
    from . import ingest_picks, picking
    frames, locations = [], None
    if (input_dir / "picks").is_dir():
        pol, locations = ingest_picks.load_picks(input_dir / "picks", data["stations"], rejects)
        pol["event_id"] = picking.match_event_ids(pol["event_id"], data["events"])
        unmatched = pol["event_id"].isna()
        if unmatched.any():
            rejects.add("picks/", None, f"{int(unmatched.sum())} picks of events not in the catalogue", stage="join")
        frames.append(pol[~unmatched])
        locations["event_id"] = picking.match_event_ids(locations["event_id"], data["events"])
    if opts.pick and (input_dir / "waveforms").is_dir():
        pol, snips = picking.pick_folders(input_dir / "waveforms", data["events"], data["stations"],
                                          _pickers(opts.pickers), rejects)
        frames.append(pol)
        data["waveforms"] = snips
    if frames:
        data["polarities"] = pd.concat([f for f in frames if len(f)], ignore_index=True)
    return locations


def _invert(data: dict, velocity_model, locations, opts: Options) -> None:
    """SKHASH on the polarities; computed mechanisms are appended to ``mechanisms``."""
    from . import invert
    if "polarities" not in data or data["polarities"].empty:
        return
    pub = data["mechanisms"]
    out = invert.invert(data["events"], data["polarities"], data["stations"], velocity_model, picks=opts.picks,
                        locations=locations, published=pub, workers=opts.workers)
    computed = out.pop("mechanisms")
    if "truth_mechanisms" in data and len(computed):
        from . import focal
        truth = data["truth_mechanisms"].set_index("event_id").loc[computed["event_id"]]
        computed["truth_kagan"] = focal.kagan_angle(
            tuple(computed[c].to_numpy() for c in ("strike", "dip", "rake")),
            tuple(truth[c].to_numpy() for c in ("strike", "dip", "rake")))
    data["mechanisms"] = pd.concat([pub, computed], ignore_index=True)
    data.update(out)


def build(source: str = "demo", input_dir: str | Path | None = None, data_dir: str | Path = "data",
          seed: int = DEFAULT_SEED, options: Options | None = None) -> dict:
    """Build every table from ``source`` into ``data_dir``; returns the build info."""
    opts = options or Options()
    t0 = time.perf_counter()
    data = load_source(source, input_dir, seed)
    rejects = Rejects()
    locations, vmodel = None, None
    if source == "demo":
        from .skhash_runner import DEMO_VELOCITY_MODEL
        vmodel = DEMO_VELOCITY_MODEL
        if opts.pick:
            _demo_polarities(data, opts)
    else:
        input_dir = Path(input_dir)
        locations = _toc2me_polarities(data, input_dir, opts, rejects)
        vz = input_dir / "skhash_demo" / "vz.north"
        if vz.exists():
            from .skhash_runner import read_velocity_model
            vmodel = read_velocity_model(vz)
        else:
            log.warning("no velocity model at %s: computed mechanisms skipped", vz)
    if "polarities" in data:
        from .reviews import apply_reviews
        pol = apply_reviews(data["polarities"], data_dir)  # reviews made in the dashboard
        data["polarities"] = pol[pol["event_id"].isin(data["events"]["event_id"])]
    if vmodel is not None:
        data["velocity_model"] = vmodel
        if opts.invert:
            _invert(data, vmodel, locations, opts)
    if "polarities" in data:
        from . import evaluate
        data["model_eval"] = evaluate.evaluate(data, input_dir if source == "toc2me" else None)
    if len(rejects):
        data["rejects"] = pd.concat([data["rejects"], rejects.to_frame()], ignore_index=True)
    missing = [t for t in schema.REQUIRED_TABLES if t not in data]
    if missing:
        raise RuntimeError(f"source {source!r} produced no {missing} table(s)")
    info = {
        "source": source,
        "input": str(Path(input_dir).resolve()) if input_dir else None,
        "seed": seed if source == "demo" else None,
        "options": asdict(opts),
        "schema_version": schema.SCHEMA_VERSION,
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "rows": {name: int(len(df)) for name, df in data.items()},
        "seconds": round(time.perf_counter() - t0, 2),  # before the write
    }
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
           seed: int = DEFAULT_SEED, options: Options | None = None) -> tuple[dict, bool]:
    """Build only when ``data_dir`` holds no complete build of this source (and input).

    Returns (build info, whether a build ran).
    """
    info = read_info(data_dir)
    wanted_input = str(Path(input_dir).resolve()) if input_dir else None
    if info and info.get("source") == source and info.get("schema_version") == schema.SCHEMA_VERSION \
            and (source == "demo" or info.get("input") == wanted_input):
        return info, False
    return build(source, input_dir, data_dir, seed, options), True
