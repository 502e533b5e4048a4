"""``python -m pipeline synth-archive``: a ToC2ME-shaped input folder made from the demo scenario.

:func:`write_archive` turns the seeded synthetic experiment of :mod:`pipeline.demo.scenario` into a
folder laid out like the public ToC2ME data (``shared/toc2me``, see its README), so that
``python -m pipeline build --source toc2me --input DIR`` runs the *real-data* path
(:mod:`pipeline.ingest.toc2me`, then the pickers over ``waveforms/``, then SKHASH) at archive
scale, on data whose ground truth is known (``pipeline.demo.scenario.generate(seed)``).

Files written (only those the ToC2ME ingest and build read, in their formats):

==============================================================  ==========================================
``catalog/ToC2ME.xlsx``                                          every demo event (sheet 1, header row 1:
                                                                 Latitude, Longitude, Depth [km], Year, Month,
                                                                 Day, Hour, Minute, Second [3 decimals],
                                                                 Magnitude)
``catalog/stationlist_ToC2ME.txt``                               ``station network lon lat`` (lon first)
``catalog/sensors_ToC2ME.csv``                                   ``network,station,reversed`` (all true)
``catalog/well-location-{one,two,three,four}.txt``               ``lat lon`` per vertex, toe (north) first;
                                                                 one = well D ... four = well A
``catalog/nsw/StageTimeLocation_ToC2ME_2.txt``                   ``year month day hour lon lat day_index``
``catalog/nsw/injection_volume.csv``                             ``Date,Width,Height,Segments,Average Rate,
                                                                 Injection Volume`` (m3/min, m3)
``catalog/mt_solution_20250317_SKHASH_quality_A.txt``            quality-A mechanisms, catalogue locations
``catalog/mt_solution_20241114_SKHASH_quality_A.txt``            the same, SKHASH (solution A) locations
``catalog/swe/mt_solution_20250317_SKHASH_SWe_quality_A_B.txt``  demo cluster SWe, quality A or B
``skhash_demo/vz.north``                                         ``depth_km,vp_km_s`` lines: the model the
                                                                 traces were synthesised with
``waveforms/<event_id>/5B.<sta>.<DHZ|DH1|DH2>.SAC``              N events x stations x 3 components, 10 s at
                                                                 500 Hz, P pick in SAC ``t1`` at 5.000 s
==============================================================  ==========================================

Conventions and decisions:

* **Event ids and times**: catalogue times are the demo's origin times to the millisecond
  (``Second`` carries 3 decimals, where the real file has 2), so the ingest's catalogue ids
  *equal* the demo ``event_id`` strings; mechanism files and waveform folders use the same
  ids and join at 0 s.
* **Polarity sign convention**: every station is written in network ``5B`` and listed
  ``reversed=true`` in the archive's sensor-polarity file
  (:data:`pipeline.ingest.toc2me.SENSORS_FILE`, which the ToC2ME ingest reads instead of its
  shipped one), and every vertical trace is rendered *recorded inverted*
  (:func:`archive_tables` sets ``reversed=True`` on every station before
  :func:`pipeline.demo.waveforms.write_sac_events` renders it). So the archive behaves like
  the real instrument set-up (README 3.4): recorded down = true up, and picking it as a
  ``toc2me`` source yields true polarities equal to the demo's ``true_polarity`` (ground
  motion, +1 up), which the reversal does not touch. The demo's own per-station reversal
  flags (7 random stations of network ``XD``) are not carried over: the archive keeps the
  real data set's all-inverted set-up. Station codes stay the demo's (``D001``...), so
  truth tables join on (event_id, station). Horizontals are never inverted.
* **Mechanisms**: the ToC2ME layout has files for quality A (two location solutions) and
  for the SWe A+B run only. Demo quality-A mechanisms go to both quality-A files (angles
  0.1 deg; catalogue locations with column 8 = the 1-based catalogue row, a run-specific
  key as in the 2025 file; SKHASH locations with column 8 = -1 as in the 2024 file); demo
  cluster-SWe mechanisms of quality A or B go to the SWe file (so the ingest marks the B
  ones ``quality='B'``). Quality C/D and quality-B mechanisms outside SWe have no file and
  are not written (counted in the summary, ``mechanisms_not_written``).
* **Stages**: the ingest takes the well from the row number (rows 1-21 A, 22-45 B, 46-170
  C, 171-186 D, README 7.6). Each demo well's stages are written, in time order, at the
  first lines of its range; unused lines of a range are left blank (the ingest skips blank
  lines but counts them). A well with more stages than its range holds (demo well A: 22 for
  21 rows) loses its latest stages (``stages_not_written``). ``day_index`` is the demo's
  (fractional; the real file has whole days).
* **Injection**: the demo's daily rows per well; the ToC2ME file has no well column, so
  the ingest's ``injection.well`` is null. ``Segments`` = pumping minutes / 150, so that
  Volume = Rate x Segments x 150 holds as in the real file (to the demo's rounding of
  the rate); ``Width``/``Height`` mimic the real constants (illustrative only).
* **Stations**: demo coordinates to 6 decimals; elevations are not in the ToC2ME format
  (the ingest sets 0, and the traces were synthesised with stations at depth 0, as SKHASH
  assumes).
* **Waveform events**: ``n_events`` demo events, sorted by id: the first ``n_events`` of a
  seeded permutation of the events with a published demo mechanism, followed (when N
  exceeds them) by a seeded permutation of the other events inside the stations' bounding
  box (:func:`choose_events`). Taking a prefix makes the choices nested (the events of a
  smaller N are among those of a larger one), so an archive can be grown by re-running
  with a larger ``--events`` and only the new events are rendered. (This is not the
  choice of :func:`pipeline.demo.waveforms.select_events`, whose random subsets of
  different sizes barely overlap.) The traces are
  :func:`pipeline.demo.waveforms.write_sac_events`' (one always-dead station, 0.3 % random
  dead traces, all-zero like ToC2ME's). Their noise differs from the demo build's traces of
  the same event (it is keyed on ``network.station``), their true polarities do not.

Memory and restarts: events are rendered :data:`BATCH_EVENTS` at a time (one
``write_sac_events`` call per batch into ``<dest>/.synth_archive_tmp``), each file then
renamed into ``waveforms/<event_id>/`` - a final path only ever holds a complete file. An
event folder holding every expected file at the expected size (:data:`SAC_FILE_BYTES`) is
skipped on a re-run (its files are not touched), so an interrupted run resumes where it
stopped. The table files are rewritten on every run (temp file + rename; cheap). One
writer per destination at a time.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

ARCHIVE_NETWORK = "5B"               #: network of every written station (reversed by the ingest)
BATCH_EVENTS = 50                    #: events rendered per write_sac_events call
SAC_HEADER_BYTES = 632               #: binary SAC header (v6): 70 floats, 40 ints, 192 chars
NPTS = 5001                          #: samples per trace (= pipeline.demo.waveforms.NPTS, 10 s at 500 Hz)
SAC_FILE_BYTES = SAC_HEADER_BYTES + 4 * NPTS  #: float32 samples -> 20,636 bytes per file
TMP_DIR = ".synth_archive_tmp"       #: batch scratch folder inside dest (same file system: rename is atomic)
WAVEFORMS_DIR = "waveforms"
VELOCITY_FILE = "skhash_demo/vz.north"
#: injection_volume.csv constants of the real file (README 7.7); Height = HEIGHT_PER_SEGMENT x Segments
INJECTION_WIDTH = 0.309073792
HEIGHT_PER_SEGMENT = 0.685008533
MINUTES_PER_SEGMENT = 150.0
#: the 2024 quality-A file writes -1 in column 8
SKHASH_FILE_KEY = -1


# --------------------------------------------------------------------------- tables

def archive_tables(seed: int | None = None) -> dict[str, pd.DataFrame]:
    """The demo tables (:func:`pipeline.demo.scenario.generate`) with the stations moved to the
    archive convention: network :data:`ARCHIVE_NETWORK` and ``reversed=True`` everywhere
    (see the module docstring). Everything else is the demo's."""
    from . import scenario as demo
    tables = demo.generate(demo.DEFAULT_SEED if seed is None else seed)
    st = tables["stations"].copy()
    st["network"] = ARCHIVE_NETWORK
    st["reversed"] = True
    tables["stations"] = st
    return tables


def choose_events(tables: dict, n_events: int, waveform_seed: int | None = None) -> list[str]:
    """The ``n_events`` event ids that get waveforms, sorted.

    The first ``n_events`` of: a seeded permutation of the events with a published
    mechanism, then a seeded permutation of the other events whose epicentre lies inside
    the stations' bounding box (lat/lon). A prefix, so the choice for N is contained in the
    choice for any larger N (same seeds). Fewer than asked only when the demo has fewer
    such events.
    """
    from . import waveforms as dw
    wseed = dw.DEFAULT_SEED if waveform_seed is None else int(waveform_seed)
    n_events = int(n_events)
    if n_events <= 0:
        return []
    ev, st = tables["events"], tables["stations"]
    has_mech = ev["event_id"].isin(tables["mechanisms"]["event_id"])
    inside = (ev["lat"].between(st["lat"].min(), st["lat"].max())
              & ev["lon"].between(st["lon"].min(), st["lon"].max()))
    first = np.sort(ev.loc[has_mech, "event_id"].to_numpy(dtype=object))
    rest = np.sort(ev.loc[inside & ~has_mech, "event_id"].to_numpy(dtype=object))
    order = np.concatenate([np.random.default_rng([wseed, 7]).permutation(first),
                            np.random.default_rng([wseed, 11]).permutation(rest)])
    return sorted(str(i) for i in order[:n_events])


def expected_files(stations: pd.DataFrame) -> list[str]:
    """File names of one event folder: ``<net>.<sta>.<cha>.SAC`` per station and channel."""
    from .waveforms import CHANNELS
    return [f"{n}.{s}.{CHANNELS[c]}.SAC" for n, s in zip(stations["network"], stations["station"])
            for c in ("Z", "N", "E")]


def event_complete(folder: Path, names: list[str]) -> bool:
    """True when ``folder`` holds every file of ``names`` at :data:`SAC_FILE_BYTES` bytes."""
    try:
        return all((folder / n).stat().st_size == SAC_FILE_BYTES for n in names)
    except OSError:
        return False


def _write_bytes(path: Path, data: bytes) -> None:
    """Write via a temp name in the same folder, then rename (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_text(path: Path, lines: list[str], newline: str = "\n") -> None:
    _write_bytes(path, (newline.join(lines) + newline).encode("utf-8"))


def _write_catalogue(path: Path, events: pd.DataFrame) -> None:
    """``ToC2ME.xlsx``: one sheet, header row, one row per event in time order."""
    from openpyxl import Workbook
    ev = events.sort_values("time", kind="stable")
    t = pd.DatetimeIndex(ev["time"]).tz_convert("UTC")
    second = np.round(t.second + t.microsecond / 1e6, 3)  # ms times -> ids round-trip exactly
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("ToC2ME")
    ws.append(["Latitude", "Longitude", "Depth", "Year", "Month", "Day", "Hour", "Minute", "Second", "Magnitude"])
    cols = zip(ev["lat"].to_numpy(float), ev["lon"].to_numpy(float), ev["depth_km"].to_numpy(float),
               t.year, t.month, t.day, t.hour, t.minute, second, ev["magnitude"].to_numpy(float))
    for lat, lon, dep, yr, mo, dy, hr, mi, sec, mag in cols:
        ws.append([float(lat), float(lon), float(dep), int(yr), int(mo), int(dy), int(hr), int(mi), float(sec),
                   None if not np.isfinite(mag) else float(mag)])
    buf = io.BytesIO()
    wb.save(buf)
    _write_bytes(path, buf.getvalue())


def _write_stations(path: Path, stations: pd.DataFrame) -> None:
    _write_text(path, [f"{s} {n} {lon:.6f} {lat:.6f}" for s, n, lon, lat in
                       stations[["station", "network", "lon", "lat"]].itertuples(index=False)])


def _write_sensors(path: Path, stations: pd.DataFrame) -> None:
    """The sensor-polarity CSV (``network,station,reversed``) the ToC2ME ingest reads."""
    _write_text(path, ["network,station,reversed"] +
                [f"{n},{s},{str(bool(r)).lower()}" for n, s, r in
                 stations[["network", "station", "reversed"]].itertuples(index=False)])


def _write_wells(root: Path, wells: pd.DataFrame) -> None:
    from pipeline.ingest.toc2me import WELL_FILES
    for well, rel in WELL_FILES.items():
        w = wells[wells["well"] == well].sort_values("vertex")
        _write_text(root / rel, [f"{lat:.6f} {lon:.6f}" for lat, lon in w[["lat", "lon"]].itertuples(index=False)])


def _write_stages(path: Path, stages: pd.DataFrame) -> int:
    """Stage file with each well's stages at the start of its row range (blank lines pad
    the rest); returns the number of stages that did not fit."""
    from pipeline.ingest.toc2me import STAGE_ROWS_BY_WELL
    last_row = max(last for _, _, last in STAGE_ROWS_BY_WELL)
    lines = [""] * last_row
    dropped = 0
    for well, first, last in STAGE_ROWS_BY_WELL:
        st = stages[stages["well"] == well].sort_values("time", kind="stable")
        room = last - first + 1
        if len(st) > room:
            dropped += len(st) - room
            log.warning("well %s: %d stages for %d stage-file rows; the latest %d are not written",
                        well, len(st), room, len(st) - room)
        for i, r in enumerate(st.head(room).itertuples(index=False)):
            t = pd.Timestamp(r.time).tz_convert("UTC")
            lines[first - 1 + i] = f"{t.year} {t.month} {t.day} {t.hour} {r.lon:.6f} {r.lat:.6f} {r.day_index:.10g}"
    while lines and not lines[-1]:
        lines.pop()
    _write_text(path, lines)
    return dropped


def _write_injection(path: Path, injection: pd.DataFrame) -> None:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\r\n")  # the real file has CRLF line ends
    w.writerow(["Date", "Width", "Height", "Segments", "Average Rate", "Injection Volume"])
    for r in injection.sort_values(["date", "well"], kind="stable").itertuples(index=False):
        d = pd.Timestamp(r.date)
        seg = float(r.pumping_min) / MINUTES_PER_SEGMENT
        w.writerow([f"{d.year}/{d.month}/{d.day}", f"{INJECTION_WIDTH:.9g}", f"{HEIGHT_PER_SEGMENT * seg:.9g}",
                    f"{seg:.9g}", f"{float(r.rate_m3_min):.9g}", f"{float(r.volume_m3):.9g}"])
    _write_bytes(path, out.getvalue().encode("utf-8"))


def _mech_lines(m: pd.DataFrame, lat: str, lon: str, depth: str, decimals: int, key) -> list[str]:
    """Tab-separated ``id lat lon depth strike dip rake key`` lines (README 7.2)."""
    keys = np.broadcast_to(np.asarray(key), (len(m),))
    return [f"{e}\t{la:.{decimals}f}\t{lo:.{decimals}f}\t{d:.4f}\t{s:.1f}\t{dp:.1f}\t{r:.1f}\t{int(k)}"
            for e, la, lo, d, s, dp, r, k in zip(m["event_id"], m[lat], m[lon], m[depth], m["strike"], m["dip"],
                                                 m["rake"], keys)]


def _write_mechanisms(root: Path, mechanisms: pd.DataFrame, events: pd.DataFrame) -> dict:
    """The three required mt_solution files; returns counts per file and not written."""
    from pipeline.ingest import toc2me as it
    m = mechanisms.sort_values("time", kind="stable")
    row = pd.Series(np.arange(1, len(events) + 1),
                    index=events.sort_values("time", kind="stable")["event_id"].to_numpy())
    key = row.loc[m["event_id"]].to_numpy()  # 1-based catalogue row: a run-specific integer key
    qa = (m["quality"] == "A").to_numpy()
    swe = ((m["cluster"] == "SWe") & m["quality"].isin(["A", "B"])).to_numpy()
    _write_text(root / it.MECH_CATALOGUE_LOC_FILE, _mech_lines(m[qa], "lat", "lon", "depth_km", 6, key[qa]))
    _write_text(root / it.MECH_SKHASH_LOC_FILE,
                _mech_lines(m[qa], "lat_skhash", "lon_skhash", "depth_km_skhash", 4, SKHASH_FILE_KEY))
    _write_text(root / it.SWE_AB_FILE, _mech_lines(m[swe], "lat", "lon", "depth_km", 6, key[swe]))
    return {"mechanisms_quality_a": int(qa.sum()), "mechanisms_swe_ab": int(swe.sum()),
            "mechanisms_written": int((qa | swe).sum()), "mechanisms_not_written": int((~(qa | swe)).sum())}


def _write_velocity(path: Path) -> None:
    from pipeline.mechanisms.skhash import DEMO_VELOCITY_MODEL
    _write_text(path, [f"{d:.1f},{v:.3f}" for d, v in DEMO_VELOCITY_MODEL[["depth_km", "vp_km_s"]].itertuples(index=False)])


def write_tables(dest: str | Path, tables: dict) -> dict:
    """Write every non-waveform file of the archive (see the module docstring) from
    :func:`archive_tables` output; returns counts."""
    from pipeline.ingest import toc2me as it
    root = Path(dest)
    _write_catalogue(root / it.CATALOGUE_FILE, tables["events"])
    _write_stations(root / it.STATIONS_FILE, tables["stations"])
    _write_sensors(root / it.SENSORS_FILE, tables["stations"])
    _write_wells(root, tables["wells"])
    dropped = _write_stages(root / it.STAGES_FILE, tables["stages"])
    _write_injection(root / it.INJECTION_FILE, tables["injection"])
    counts = _write_mechanisms(root, tables["mechanisms"], tables["events"])
    _write_velocity(root / VELOCITY_FILE)
    return {"events": len(tables["events"]), "stations": len(tables["stations"]),
            "stages_written": len(tables["stages"]) - dropped, "stages_not_written": dropped,
            "injection_rows": len(tables["injection"]), **counts}


# --------------------------------------------------------------------------- waveforms

def _progress(total: int):
    """tqdm bar on an interactive stderr, else None (the caller logs one line per batch)."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm
    return tqdm(total=total, unit="event", desc="synth-archive", file=sys.stderr)


def _move_event(src: Path, dst: Path) -> None:
    """Rename every file of a rendered event folder into its final folder (replacing)."""
    dst.mkdir(parents=True, exist_ok=True)
    for f in sorted(src.iterdir()):
        os.replace(f, dst / f.name)
    src.rmdir()


def folder_stats(path: str | Path) -> tuple[int, int]:
    """(total bytes, number of files) under ``path``."""
    size = count = 0
    for base, _, files in os.walk(path):
        for f in files:
            size += os.path.getsize(os.path.join(base, f))
            count += 1
    return size, count


def write_archive(dest: str | Path, n_events: int, seed: int | None = None, *, waveform_seed: int | None = None,
                  batch_events: int = BATCH_EVENTS) -> dict:
    """Write (or complete) a ToC2ME-shaped archive of the demo scenario in ``dest``.

    ``seed``: demo seed (:func:`pipeline.demo.scenario.generate`, default its ``DEFAULT_SEED``);
    ``waveform_seed``: seed of the waveform synthesis and of the event choice (default
    :data:`pipeline.demo.waveforms.DEFAULT_SEED`); ``n_events``: events with waveforms
    (:func:`choose_events`); ``batch_events``: events rendered per batch (bounds memory:
    ~66 stations x 3 x 5001 float64 work arrays per event inside a batch).

    Returns a summary: ``dest, seed, waveform_seed``, the table counts of
    :func:`write_tables`, ``waveform_events`` (ids), ``events_written``,
    ``events_skipped`` (already complete), ``stale_event_folders`` (folders under
    ``waveforms/`` that are not chosen events: warned about, left in place),
    ``files_written``, ``bytes`` and ``files``
    (whole folder), ``seconds`` (wall time), ``waveform_seconds`` (the waveform part),
    ``mb_per_event`` (MB = 1e6 bytes of waveform files per event folder) and
    ``files_per_s`` (waveform files written per second of ``waveform_seconds``; 0 if none).
    """
    from . import scenario as demo, waveforms as dw
    t0 = time.perf_counter()
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    seed = demo.DEFAULT_SEED if seed is None else int(seed)
    wseed = dw.DEFAULT_SEED if waveform_seed is None else int(waveform_seed)
    tables = archive_tables(seed)
    summary: dict = {"dest": str(root), "seed": seed, "waveform_seed": wseed}
    summary.update(write_tables(root, tables))

    ids = choose_events(tables, n_events, wseed)
    if len(ids) < n_events:
        log.warning("only %d events available for waveforms (asked for %d)", len(ids), n_events)
    names = expected_files(tables["stations"])
    wave_root = root / WAVEFORMS_DIR
    todo = [e for e in ids if not event_complete(wave_root / e, names)]
    stale = sorted(set(p.name for p in wave_root.iterdir() if p.is_dir()) - set(ids)) if wave_root.is_dir() else []
    if stale:  # not deleted (dest may hold the user's files); the build would pick them too
        log.warning("%d event folders in %s are not among the %d chosen events (another --events/--seed?): "
                    "left in place, e.g. %s", len(stale), wave_root, len(ids), stale[:3])
    tmp = root / TMP_DIR
    shutil.rmtree(tmp, ignore_errors=True)  # leftovers of an interrupted run
    t1 = time.perf_counter()
    bar = _progress(len(ids))
    if bar is not None:
        bar.update(len(ids) - len(todo))
    log.info("synth-archive: %d waveform events, %d already complete, %d to write", len(ids), len(ids) - len(todo),
             len(todo))
    files_written = 0
    try:
        for b in range(0, len(todo), max(1, int(batch_events))):
            batch = todo[b:b + max(1, int(batch_events))]
            meta = dw.write_sac_events(tmp, tables, seed=wseed, max_events=None, event_ids=batch)
            for eid in batch:
                _move_event(tmp / eid, wave_root / eid)
            files_written += len(meta)
            del meta
            if bar is not None:
                bar.update(len(batch))
            else:
                done = b + len(batch)
                log.info("synth-archive: %d/%d events written (%.1f s)", done, len(todo), time.perf_counter() - t1)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(tmp, ignore_errors=True)
    wave_s = time.perf_counter() - t1
    size, count = folder_stats(root)
    wave_bytes = sum(folder_stats(wave_root / e)[0] for e in ids)
    summary.update({
        "waveform_events": ids, "events_written": len(todo), "events_skipped": len(ids) - len(todo),
        "stale_event_folders": len(stale),
        "files_written": files_written, "bytes": size, "files": count,
        "seconds": round(time.perf_counter() - t0, 2), "waveform_seconds": round(wave_s, 2),
        "mb_per_event": round(wave_bytes / 1e6 / len(ids), 4) if ids else 0.0,
        "files_per_s": round(files_written / wave_s, 1) if files_written and wave_s > 0 else 0.0,
    })
    log.info("synth-archive: %s holds %d files, %.1f MB", root, count, size / 1e6)
    return summary


# --------------------------------------------------------------------------- command line

def _cmd(args) -> int:
    s = write_archive(args.dest, args.events, args.seed, waveform_seed=args.waveform_seed,
                      batch_events=args.batch_events)
    print(f"{s['events']} catalogue events, {s['stations']} stations, {s['mechanisms_written']} published "
          f"mechanisms ({s['mechanisms_not_written']} demo mechanisms of quality C/D or B outside SWe not written), "
          f"{s['stages_written']} stages ({s['stages_not_written']} not written)")
    print(f"waveforms: {len(s['waveform_events'])} events ({s['events_written']} written, {s['events_skipped']} "
          f"already complete), {s['files_written']} files in {s['waveform_seconds']:.1f} s "
          f"({s['files_per_s']:.0f} files/s, {s['mb_per_event']:.2f} MB per event)")
    print(f"{s['dest']}: {s['files']} files, {s['bytes'] / 1e6:.1f} MB")
    return 0


def add_cli(subparsers) -> None:
    """Register ``synth-archive`` on the ``python -m pipeline`` sub-parsers."""
    p = subparsers.add_parser("synth-archive", help="write a ToC2ME-shaped input folder (catalogue, stations, wells, "
                                                    "stages, injection, mechanisms, SAC event folders) from the demo "
                                                    "scenario; resumable")
    p.add_argument("--events", type=int, required=True, help="events given SAC waveforms (N)")
    p.add_argument("--dest", required=True, help="output folder (use it as build --source toc2me --input DIR)")
    p.add_argument("--seed", type=int, default=None, help="demo seed (default: the demo's, 20161104)")
    p.add_argument("--waveform-seed", type=int, default=None,
                   help="seed of the waveform synthesis and event choice (default: pipeline.demo.waveforms', 6061)")
    p.add_argument("--batch-events", type=int, default=BATCH_EVENTS,
                   help=f"events rendered per batch (memory bound; default {BATCH_EVENTS})")
    p.set_defaults(func=_cmd)
