"""Run SKHASH (Skoumal, Hardebeck & Shearer 2024; PyPI ``skhash`` 1.1.5) on DataFrames.

SKHASH has no in-memory API: it parses ``sys.argv``, reads CSV files named in a control
file, writes CSV outputs as it goes and ends with ``sys.exit()``. This module writes its
inputs and a control file into a work folder, runs it in a **subprocess** (a small driver,
:data:`_DRIVER`, that imports SKHASH and calls its main function) and reads the outputs back.

Entry points
------------
* :func:`run_skhash` - one SKHASH process for a set of events -> :class:`SkhashResult`;
  with ``composite=ID``, one composite mechanism of all of them (SKHASH's ``event_id2``
  mode: per-ray geometry from each ray's own event, then one pooled grid search).
* :func:`run_skhash_parallel` - the same, split into chunks run concurrently (one process
  per chunk); a failing chunk is retried event by event, and an event that still fails is
  recorded in ``unsolved`` with SKHASH's error message - the batch never stops.
* :func:`fortran_available` - whether SKHASH's compiled Fortran grid search imports (build
  it with ``scripts/build_skhash_fortran.sh``).
* :func:`read_velocity_model` - a ``depth_km,vp_km_s`` file (e.g. the ToC2ME ``vz.north``)
  or DataFrame -> validated DataFrame. :data:`DEMO_VELOCITY_MODEL` is a simple made-up 1-D
  model for the synthetic demo data (it is *not* the ToC2ME model).

Inputs (this project's conventions, see :mod:`pipeline.schema`)
----------------------------------------------------------------
* ``events``: ``event_id`` (string ``YYYYMMDDhhmmss.fff``), ``lat``, ``lon``, ``depth_km``;
  optional ``time`` (else parsed from the id), ``horz_uncert_km``, ``vert_uncert_km``
  (default 0 = location taken as exact, as in the ToC2ME SKHASH run; SKHASH itself would
  default to 1 km).
* ``polarities``: ``event_id``, ``network``, ``station``, ``polarity`` (+1 up/compression,
  -1 down/dilatation in **true ground motion**, station reversal already applied; 0 =
  undetermined, dropped), optional ``weight`` (default 1; SKHASH gets
  ``p_polarity = polarity * weight`` and ignores ``weight < min_polarity_weight``).
* ``stations``: ``network``, ``station``, ``lat``, ``lon``, ``elevation_m``.
* ``velocity_model``: path or DataFrame, see :func:`read_velocity_model`.

What the wrapper does about SKHASH 1.1 quirks
---------------------------------------------
* **Ids.** SKHASH gets integer event ids 1..N assigned here in sorted ``event_id`` order
  (``SkhashResult.id_map``); outputs are mapped back through that dict, never by position.
* **Station codes.** SKHASH reads all-digit codes (``1107``) as integers and breaks; it gets
  ``N<network>``/``S<station>`` codes and a ``network`` column
  (``$require_network_match True``, location/channel matching off) and every output row is
  mapped back through an explicit dict, so ``0101`` stays ``0101``.
* **Randomness.** SKHASH draws from one module-level ``numpy.random.default_rng(123)``
  (``SKHASH/functions/fun.py``: location perturbations for the ``nmc`` trials, the random
  pick of ``maxout`` planes when more are acceptable, velocity-model choice) and, with the
  Fortran grid search, from gfortran's ``RAND`` (random pick of ``maxout`` planes; process
  start state = ``SRAND(1)``). Both streams run on across events, so natively an event's
  result depends on which events precede it in the same run. The driver re-seeds both
  before every event (numpy ``default_rng(123)``, gfortran ``SRAND(1)`` by default, i.e. the
  state of a fresh process), so every event's result equals what SKHASH gives for that event
  alone in a fresh run - independent of event order, chunking and worker count. A different
  ``seed`` re-seeds both generators with that value instead.
* **No solved event.** SKHASH 1.1.5 raises ``KeyError: 'mech_quality'`` when no event of a
  run is solved; the driver adds the missing column so such a run ends normally.
* **Engines.** The Fortran grid search and the Python one agree exactly on the ToC2ME demo
  events, but not always: on 141 demo events 8 preferred mechanisms differed, by under 1 deg
  Kagan with the same quality (near-ties in the grid search; with more than ``maxout``
  acceptable planes each engine also keeps its own random subset). ``engine`` says which ran.

Outputs (:class:`SkhashResult`)
-------------------------------
* ``mechanisms``: one row per SKHASH solution; ``solution_rank`` 0 is the preferred (most
  probable) one, ranks 1.. exist only when SKHASH reports multiple solutions
  (``mult_solution_flag`` True). Columns :data:`MECHANISM_COLUMNS`; ``strike2/dip2/rake2``
  is the auxiliary plane (:func:`pipeline.mechanisms.focal.auxiliary_plane`). ``polarity_misfit``,
  ``prob_mech`` and ``sta_distribution_ratio`` are percent.
* ``polinfo``: one row per (event_id, network, station) used in a solved event's mechanism:
  ``takeoff`` in SKHASH/HASH convention, **degrees from the upward vertical: 0 = straight up,
  < 90 up-going, > 90 down-going** (``$flip_takeoff False``; use
  ``pipeline.mechanisms.focal.ray_vector(takeoff, azimuth, takeoff_from='up')``), ``azimuth`` source ->
  station clockwise from north, ``sr_dist_km`` epicentral distance, ``pol_agreement``
  (1 = the polarity agrees with the preferred mechanism).
* ``unsolved``: ``event_id, reason`` for events not solved (too few polarities - decided
  here, before SKHASH is called -, azimuthal gap > ``max_agap``, no acceptable solution,
  SKHASH error, ...).
* ``acceptable_planes`` (only with ``acceptable_planes=True``; SKHASH's ``$outfile2``): per
  event every acceptable plane of the grid search over all ``nmc`` trials (at most
  ``maxout`` of them, a random subset if more), ``strike, dip, rake``, fault normal
  ``norm_n/e/z`` and slip vector ``slip_n/e/z`` (SKHASH's ``norm_aux_*``), NED-style
  (north, east, down).
* ``engine``: ``'fortran'`` or ``'python'`` (grid search that ran), ``None`` when SKHASH was
  not called (nothing to solve); ``log``: SKHASH's stdout + stderr.
"""
from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.mechanisms.focal import auxiliary_plane

__all__ = [
    "DEFAULT_SETTINGS",
    "DEMO_VELOCITY_MODEL",
    "MECHANISM_COLUMNS",
    "POLINFO_COLUMNS",
    "SkhashError",
    "SkhashResult",
    "fortran_available",
    "read_velocity_model",
    "run_skhash",
    "run_skhash_parallel",
]

#: SKHASH settings of the ToC2ME seed workflow (docs/analyses.md section 1.11); everything
#: else keeps SKHASH's own default. Override per call with ``settings=``.
DEFAULT_SETTINGS: dict = {
    "npolmin": 8,
    "min_polarity_weight": 0.1,
    "nmc": 30,
    "maxout": 500,
    "ratmin": 3,
    "badfrac": 0.01,
    "qbadfrac": 0.3,
    "delmax": 120,
    "prob_max": 0.9,
    "max_agap": 40,
}

#: Control variables the wrapper sets itself (file names, engine, matching, formats).
RESERVED_SETTINGS = frozenset({
    "controlfile", "catfile", "stfile", "plfile", "corfile", "fpfile", "impfile", "conpfile",
    "dlpfile", "ampfile", "relampfile", "simulpsfile", "outfile1", "outfile2",
    "outfile_pol_agree", "outfile_sp_agree", "outfile_pol_info", "outfolder_plots",
    "vmodel_paths", "use_fortran", "num_cpus", "input_format", "input_format_stfile",
    "input_format_fpfile", "input_format_impfile", "input_format_conpfile",
    "input_format_dlpfile", "input_format_ampfile", "input_format_relampfile",
    "input_format_plfile", "require_temporal_match", "require_network_match",
    "require_station_match", "require_channel_match", "require_location_match",
    "flip_takeoff", "merge_on", "write_lookup_table", "recompute_lookup_table",
})

#: A simple, made-up 1-D P model (gradient 4.0 -> 8.0 km/s) for the synthetic demo data.
#: Not the ToC2ME model: for ToC2ME pass ``<toc2me>/skhash_demo/vz.north``.
#: The 60 km node matters: SKHASH tabulates takeoffs out to delmax (120 km) and fails
#: ("argmin of an empty sequence") when no ray of the model reaches that distance.
DEMO_VELOCITY_MODEL = pd.DataFrame({
    "depth_km": [0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 10.0, 20.0, 30.0, 45.0, 60.0],
    "vp_km_s": [4.0, 4.4, 4.8, 5.2, 5.5, 5.9, 6.2, 6.5, 6.9, 7.5, 8.0],
})

MECHANISM_COLUMNS = [
    "event_id", "solution_rank", "strike", "dip", "rake", "strike2", "dip2", "rake2",
    "quality", "fault_plane_uncertainty", "aux_plane_uncertainty", "n_polarities",
    "n_sp_ratios", "azimuthal_gap", "takeoff_gap", "polarity_misfit", "prob_mech",
    "sta_distribution_ratio", "sp_misfit", "mult_solution_flag",
]
POLINFO_COLUMNS = [
    "event_id", "network", "station", "polarity", "weight", "sr_dist_km", "takeoff",
    "azimuth", "takeoff_uncertainty", "azimuth_uncertainty", "pol_agreement",
    "mech_quality",
]
UNSOLVED_COLUMNS = ["event_id", "reason"]
ACCEPTABLE_COLUMNS = [
    "event_id", "plane_number", "strike", "dip", "rake",
    "norm_n", "norm_e", "norm_z", "slip_n", "slip_e", "slip_z",
]

# SKHASH outfile1 column -> ours
_MECH_RENAME = {"num_p_pol": "n_polarities", "num_sp_ratios": "n_sp_ratios"}
_ENGINE_MARK = "SKHASH_RUNNER_ENGINE="
_ERROR_MARK = "SKHASH_RUNNER_ERROR="

# The subprocess driver: python -c _DRIVER <control file> <seed|native> <auto|fortran|python>
_DRIVER = r'''
import ctypes, ctypes.util, os, sys, traceback
# die with the process that started us: SKHASH runs in its own process group (so a timeout
# kills it whole), which a kill -9 of the build's group would otherwise not reach
try:
    ctypes.CDLL(None).prctl(1, 9)   # PR_SET_PDEATHSIG, SIGKILL (Linux)
    if os.getppid() == 1:
        sys.exit(3)
except (AttributeError, OSError):
    pass
ctl, seed, engine = sys.argv[1], sys.argv[2], sys.argv[3]
import numpy as np
import SKHASH                      # its __init__ puts the package folder on sys.path
import functions.fun as fun
import functions.compute_mech as compute_mech
use_fortran = False
if engine in ("auto", "fortran"):
    try:
        import functions.gridsearch  # noqa: F401  (f2py module, scripts/build_skhash_fortran.sh)
        use_fortran = True
    except Exception as exc:
        if engine == "fortran":
            print("SKHASH_RUNNER_ERROR=Fortran grid search not available (%s); build it with "
                  "scripts/build_skhash_fortran.sh" % exc, flush=True)
            sys.exit(3)
np_seed = 123 if seed == "native" else int(seed)
f_seed = 1 if seed == "native" else int(seed)
srand = None
if use_fortran:
    lib = ctypes.CDLL(ctypes.util.find_library("gfortran") or "libgfortran.so.5")
    srand = lib._gfortran_srand
    srand.argtypes = [ctypes.POINTER(ctypes.c_int)]
    srand.restype = None
_orig = compute_mech.compute_mech
def _reseeded(*args, **kwargs):
    fun.rng = np.random.default_rng(np_seed)
    if srand is not None:
        srand(ctypes.byref(ctypes.c_int(f_seed)))
    return _orig(*args, **kwargs)
compute_mech.compute_mech = _reseeded
# SKHASH hands the grid search two (15000, 500) float64 arrays per event, which f2py then
# copies into float32 Fortran order (~60 ms an event, as long as the whole patched grid
# search). Give it float32 Fortran-order arrays: the same values (the same rounding to
# float32), no copy.
import functions.gridsearch_so as gridsearch_so
_prep = gridsearch_so.prep_subroutine
def _prep_f32(sr_azimuth, takeoff, p_pol, sp_amp, npick0, nmc):
    n = sr_azimuth.shape[0]
    az = np.zeros((npick0, 500), np.float32, order="F")
    th = np.zeros((npick0, 500), np.float32, order="F")
    az[:n, :nmc] = sr_azimuth
    th[:n, :nmc] = takeoff
    _, _, sp, pol, qual = _prep(sr_azimuth, takeoff, p_pol, sp_amp, n, nmc)
    return az, th, sp, pol, qual
gridsearch_so.prep_subroutine = _prep_f32
# SKHASH 1.1.5 bug: when no event of the run is solved, pol_df has no 'mech_quality' column
# and out.pol_agree raises KeyError. Add the (empty) column.
import functions.out as out
def _with_mech_quality(f):
    def g(pol_df, p_dict):
        if "mech_quality" not in pol_df.columns:
            pol_df = pol_df.assign(mech_quality=np.nan)
        return f(pol_df, p_dict)
    return g
out.pol_agree = _with_mech_quality(out.pol_agree)
print("SKHASH_RUNNER_ENGINE=" + ("fortran" if use_fortran else "python"), flush=True)
import SKHASH.SKHASH as skhash_main
sys.argv = ["SKHASH", ctl, "--use_fortran", str(use_fortran)]
try:
    skhash_main.SKHASH()
except SystemExit as exc:
    sys.exit(0 if exc.code in (None, 0) else exc.code)
except BaseException as exc:
    traceback.print_exc()
    print("SKHASH_RUNNER_ERROR=%s: %s" % (type(exc).__name__, str(exc).replace("\n", " ")), flush=True)
    sys.exit(2)
'''


class SkhashError(RuntimeError):
    """SKHASH failed (non-zero exit); ``log`` holds its stdout/stderr."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


class SkhashTimeout(SkhashError):
    """SKHASH ran over its time limit; its process group was killed."""


#: how the ``unsolved`` reason of an event whose SKHASH run was killed at its limit starts
TIMEOUT_REASON_PREFIX = "timeout:"


def is_timeout_reason(reason) -> bool:
    """Whether an ``unsolved`` reason says SKHASH ran over its time limit (and was killed)."""
    return isinstance(reason, str) and reason.startswith(TIMEOUT_REASON_PREFIX)


#: time a run of several events may take per event beyond the first (SKHASH Fortran needs
#: ~0.3 s, pure Python ~0.6-1.6 s per ToC2ME-sized event)
SECONDS_PER_EXTRA_EVENT = 10.0

#: environment variable naming the interpreter that runs SKHASH (default: this one), e.g.
#: another virtual environment on a cluster node
PYTHON_ENV = "FM_SKHASH_PYTHON"


def _run_killable(cmd: list, cwd: Path, timeout: float | None):
    """Run ``cmd`` in its own process group; the CompletedProcess, or None after killing the
    whole group at ``timeout`` s (a child it started cannot keep the pipes open)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        return None
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@dataclass
class SkhashResult:
    mechanisms: pd.DataFrame
    polinfo: pd.DataFrame
    unsolved: pd.DataFrame
    acceptable_planes: pd.DataFrame | None = None
    engine: str | None = None
    log: str = ""
    settings: dict = field(default_factory=dict)
    # event_id -> SKHASH integer id (run_skhash_parallel: (chunk tag, SKHASH integer id))
    id_map: dict = field(default_factory=dict)
    seconds: float = 0.0  # wall time of the SKHASH subprocess(es)

    @property
    def preferred(self) -> pd.DataFrame:
        """One row per solved event: the most probable solution (``solution_rank == 0``)."""
        m = self.mechanisms
        return m[m["solution_rank"] == 0].reset_index(drop=True)


# --------------------------------------------------------------------------- inputs

def read_velocity_model(model) -> pd.DataFrame:
    """``depth_km, vp_km_s`` DataFrame from a DataFrame or a file of ``depth,vp`` lines.

    Files may be comma- or whitespace-separated, with or without a header line, ``#``
    comments allowed (the ToC2ME ``vz.north`` has no header). Depths must increase and
    velocities be positive; at least two rows.
    """
    if isinstance(model, pd.DataFrame):
        missing = {"depth_km", "vp_km_s"} - set(model.columns)
        if missing:
            raise ValueError(f"velocity model DataFrame lacks columns {sorted(missing)}")
        df = model[["depth_km", "vp_km_s"]].astype(float).reset_index(drop=True)
        src = "DataFrame"
    else:
        path = Path(model)
        if not path.is_file():
            raise FileNotFoundError(f"velocity model file not found: {path}")
        rows = []
        for n, line in enumerate(path.read_text().splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = re.split(r"[,\s]+", line)
            try:
                rows.append((float(parts[0]), float(parts[1])))
            except (ValueError, IndexError):
                if rows:  # a non-numeric line after data
                    raise ValueError(f"{path}, line {n}: cannot read 'depth,vp' from {line!r}")
                continue  # header line
        df = pd.DataFrame(rows, columns=["depth_km", "vp_km_s"])
        src = str(path)
    if len(df) < 2:
        raise ValueError(f"velocity model ({src}) needs at least two depth,vp rows")
    if not np.all(np.isfinite(df.to_numpy())):
        raise ValueError(f"velocity model ({src}) has non-finite values")
    if np.any(np.diff(df["depth_km"]) <= 0):
        raise ValueError(f"velocity model ({src}): depths must strictly increase")
    if np.any(df["vp_km_s"] <= 0):
        raise ValueError(f"velocity model ({src}): velocities must be positive")
    return df


def _event_time_from_id(event_id: str) -> pd.Timestamp:
    return pd.to_datetime(event_id, format="%Y%m%d%H%M%S.%f")


def _require(df: pd.DataFrame, cols, name: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks columns {missing}")


def _merge_settings(settings: dict | None) -> dict:
    out = dict(DEFAULT_SETTINGS)
    for k, v in (settings or {}).items():
        if k in RESERVED_SETTINGS:
            raise ValueError(f"setting {k!r} is managed by pipeline.mechanisms.skhash")
        out[k] = v
    return out


def _fmt_value(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (list, tuple, np.ndarray)):
        return " ".join(_fmt_value(x) for x in v)
    s = str(v)
    if not s or "#" in s or "\n" in s:
        raise ValueError(f"setting value {v!r} cannot be written to a SKHASH control file")
    return s


def _prepare(events, polarities, stations, settings, composite: str | None = None):
    """Validate and normalise; returns (events, polarities, stations, unsolved, notes).

    ``composite``: the id of one composite event made of all polarities (see
    :func:`run_skhash`); the npolmin check then applies to their total, the returned events
    are the member events that contribute a polarity, and ``unsolved`` can only name the
    composite."""
    _require(events, ["event_id", "lat", "lon", "depth_km"], "events")
    _require(polarities, ["event_id", "network", "station", "polarity"], "polarities")
    _require(stations, ["network", "station", "lat", "lon", "elevation_m"], "stations")
    notes = []

    ev = events.copy()
    ev["event_id"] = ev["event_id"].astype(str)
    if ev["event_id"].duplicated().any():
        dup = ev.loc[ev["event_id"].duplicated(), "event_id"].tolist()[:5]
        raise ValueError(f"duplicate event_id in events: {dup}")
    if "time" in ev.columns and ev["time"].notna().all():
        t = pd.to_datetime(ev["time"], utc=True).dt.tz_localize(None)
    else:
        t = ev["event_id"].map(_event_time_from_id)
    ev["time"] = t
    for c in ("horz_uncert_km", "vert_uncert_km"):
        ev[c] = ev[c].fillna(0.0).astype(float) if c in ev.columns else 0.0
    ev = ev.sort_values("event_id").reset_index(drop=True)

    st = stations.copy()
    st["network"] = st["network"].astype(str)
    st["station"] = st["station"].astype(str)
    dup = st.duplicated(["network", "station"])
    if dup.any():
        notes.append(f"{int(dup.sum())} duplicate station rows ignored (first kept)")
        st = st[~dup]
    st = st.sort_values(["network", "station"]).reset_index(drop=True)

    pol = polarities.copy()
    pol["event_id"] = pol["event_id"].astype(str)
    pol["network"] = pol["network"].astype(str)
    pol["station"] = pol["station"].astype(str)
    pol["polarity"] = pd.to_numeric(pol["polarity"], errors="raise")
    bad = ~pol["polarity"].isin([-1, 0, 1])
    if bad.any():
        raise ValueError(f"polarity must be -1, 0 or +1; got {sorted(pol.loc[bad, 'polarity'].unique())}")
    pol["weight"] = pol["weight"].astype(float) if "weight" in pol.columns else 1.0
    pol = pol[pol["polarity"] != 0]
    pol = pol[pol["weight"] >= float(settings.get("min_polarity_weight", 0.0))]
    dup = pol.duplicated(["event_id", "network", "station"], keep=False)
    if dup.any():
        ex = pol.loc[dup, ["event_id", "network", "station"]].head(5).to_dict("records")
        raise ValueError(f"more than one polarity per (event_id, network, station), e.g. {ex}")
    known = pol.set_index(["network", "station"]).index.isin(st.set_index(["network", "station"]).index)
    if (~known).any():
        miss = sorted(set(map(tuple, pol.loc[~known, ["network", "station"]].to_numpy())))
        notes.append(f"{int((~known).sum())} polarities at stations without metadata dropped: {miss[:10]}")
        pol = pol[known]
    orphan = ~pol["event_id"].isin(ev["event_id"])
    if orphan.any():
        notes.append(f"{int(orphan.sum())} polarities of events not in `events` ignored")
        pol = pol[~orphan]
    pol = pol.sort_values(["event_id", "network", "station"]).reset_index(drop=True)

    # Events SKHASH would discard for too few polarities: decided here, no SKHASH call.
    npolmin = int(settings.get("npolmin", 0))
    if composite is not None:
        if composite in set(ev["event_id"]):
            raise ValueError(f"composite id {composite!r} is also a member event id")
        ev = ev[ev["event_id"].isin(pol["event_id"])]
        badloc = ev[["lat", "lon", "depth_km"]].isna().any(axis=1)
        if badloc.any():
            notes.append(f"{int(badloc.sum())} member events without latitude, longitude or depth left out "
                         f"of the composite: {ev.loc[badloc, 'event_id'].tolist()[:5]}")
            ev = ev[~badloc]
        ev = ev.reset_index(drop=True)
        pol = pol[pol["event_id"].isin(ev["event_id"])].reset_index(drop=True)
        unsolved = []
        if len(pol) < npolmin or ev.empty:
            unsolved.append((composite, f"only {len(pol)} usable polarities from {len(ev)} events "
                                        f"(npolmin {npolmin})"))
            ev, pol = ev.iloc[:0], pol.iloc[:0]
        return ev, pol, st, pd.DataFrame(unsolved, columns=UNSOLVED_COLUMNS), notes
    counts = pol.groupby("event_id").size().reindex(ev["event_id"], fill_value=0)
    unsolved = []
    for eid, n in counts.items():
        if n < npolmin:
            unsolved.append((eid, f"only {n} usable polarities (npolmin {npolmin})"))
    badloc = ev[["lat", "lon", "depth_km"]].isna().any(axis=1)
    for eid in ev.loc[badloc, "event_id"]:
        if eid not in {u[0] for u in unsolved}:
            unsolved.append((eid, "missing latitude, longitude or depth"))
    skip = {u[0] for u in unsolved}
    ev = ev[~ev["event_id"].isin(skip)].reset_index(drop=True)
    pol = pol[pol["event_id"].isin(ev["event_id"])].reset_index(drop=True)
    unsolved_df = pd.DataFrame(unsolved, columns=UNSOLVED_COLUMNS)
    return ev, pol, st, unsolved_df, notes


# --------------------------------------------------------------------------- engine

@functools.lru_cache(maxsize=None)
def fortran_available(python: str | None = None) -> bool:
    """True when SKHASH's compiled Fortran grid search imports in ``python`` (default: this
    interpreter). Checked in a subprocess so SKHASH's ``sys.path`` change stays out."""
    exe = python or sys.executable
    try:
        r = subprocess.run([exe, "-c", "import SKHASH, functions.gridsearch"],
                           capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


def _engine_arg(use_fortran: bool | None) -> str:
    return "auto" if use_fortran is None else ("fortran" if use_fortran else "python")


# --------------------------------------------------------------------------- one run

def _write_inputs(folder: Path, ev, pol, st, vmodel: pd.DataFrame, settings: dict,
                  acceptable_planes: bool, composite: str | None = None):
    """Write SKHASH inputs + control file; returns (id_map, sta_map).

    ``composite``: every polarity row goes to one SKHASH event (integer id N + 1 after the
    N member events) and carries its member event's integer id in ``event_id2``, SKHASH's
    composite-mechanism column: SKHASH then merges each row with *its own* catalogue row
    (``SKHASH.py``: ``pol_df.merge(cat_df.rename(columns={'event_id': 'event_id2'}),
    on='event_id2')``), so distance, azimuth and takeoff of each ray come from the location
    of the event that recorded it (``fun.perturb_eq_locations`` perturbs each member
    separately). The composite's own catalogue row (mean member location, first member
    time) only satisfies SKHASH's check that every polarity ``event_id`` is catalogued and
    labels its output row. ``allow_duplicate_stations`` is set: one station records several
    member events."""
    (folder / "IN").mkdir(parents=True, exist_ok=True)
    (folder / "OUT").mkdir(parents=True, exist_ok=True)
    id_map = {eid: i + 1 for i, eid in enumerate(ev["event_id"])}  # ev is sorted by id

    cat = pd.DataFrame({
        "time": ev["time"].dt.strftime("%Y-%m-%d %H:%M:%S.%f"),
        "latitude": ev["lat"].astype(float),
        "longitude": ev["lon"].astype(float),
        "depth": ev["depth_km"].astype(float),
        "horz_uncert_km": ev["horz_uncert_km"],
        "vert_uncert_km": ev["vert_uncert_km"],
        "event_id": ev["event_id"].map(id_map),
    })
    if composite is not None:
        id_map[composite] = len(id_map) + 1
        cat = pd.concat([cat, pd.DataFrame({
            "time": [ev["time"].min().strftime("%Y-%m-%d %H:%M:%S.%f")],
            "latitude": [float(ev["lat"].astype(float).mean())],
            "longitude": [float(ev["lon"].astype(float).mean())],
            "depth": [float(ev["depth_km"].astype(float).mean())],
            "horz_uncert_km": [0.0], "vert_uncert_km": [0.0], "event_id": [id_map[composite]],
        })], ignore_index=True)
    cat.to_csv(folder / "IN" / "catalog.csv", index=False)

    used = st.set_index(["network", "station"]).loc[
        sorted(set(map(tuple, pol[["network", "station"]].to_numpy())))].reset_index()
    sta_map = {}
    for net, sta in used[["network", "station"]].itertuples(index=False):
        sta_map[f"N{net}.S{sta}"] = (net, sta)
    pd.DataFrame({
        "network": "N" + used["network"],
        "station": "S" + used["station"],
        "latitude": used["lat"].astype(float),
        "longitude": used["lon"].astype(float),
        "elevation": used["elevation_m"].fillna(0.0).astype(float),
    }).to_csv(folder / "IN" / "stations.csv", index=False)

    polfile = pd.DataFrame({
        "event_id": pol["event_id"].map(id_map),
        "network": "N" + pol["network"],
        "station": "S" + pol["station"],
        "p_polarity": pol["polarity"].astype(float) * pol["weight"].astype(float),
    })
    if composite is not None:
        polfile.insert(1, "event_id2", polfile["event_id"])
        polfile["event_id"] = id_map[composite]
    polfile.to_csv(folder / "IN" / "polarities.csv", index=False)

    vmodel.to_csv(folder / "vmodel.csv", index=False, header=False)

    ctl = {
        "catfile": "IN/catalog.csv",
        "stfile": "IN/stations.csv",
        "fpfile": "IN/polarities.csv",
        "outfile1": "OUT/mechanisms.csv",
        "outfile_pol_agree": "OUT/polagree.csv",
        "outfile_pol_info": "OUT/polinfo.csv",
        "vmodel_paths": "vmodel.csv",
        "require_network_match": True,
        "require_station_match": True,
        "require_location_match": False,
        "require_channel_match": False,
        "num_cpus": 1,
    }
    if acceptable_planes:
        ctl["outfile2"] = "OUT/acceptable.csv"
    if composite is not None:
        ctl["allow_duplicate_stations"] = True
    ctl.update(settings)
    lines = ["# written by pipeline.mechanisms.skhash"]
    for k, v in ctl.items():
        lines += [f"${k}", _fmt_value(v), ""]
    (folder / "control.txt").write_text("\n".join(lines))
    return id_map, sta_map


def _norm_strike(x: pd.Series) -> pd.Series:
    """Strike in [0, 360): 360 -> 0."""
    x = x.astype(float) % 360.0
    return x.where(x < 360.0, 0.0) + 0.0


def _norm_rake(x: pd.Series) -> pd.Series:
    """Rake in (-180, 180]: -180 -> 180."""
    x = x.astype(float)
    return x.where(x > -180.0, x + 360.0) + 0.0


def _parse_skips(log: str) -> dict:
    """SKHASH's per-event skip messages: {skhash id string: reason}."""
    out = {}
    for m in re.finditer(r"\((\d+)\)\n\t(?!S: )([^\n]+)", log):
        out[m.group(1)] = m.group(2).strip()
    return out


def _read_outputs(folder: Path, id_map: dict, sta_map: dict, log: str,
                  acceptable_planes: bool, settings: dict, composite: str | None = None):
    back = {str(v): k for k, v in id_map.items()}

    def map_ids(s: pd.Series) -> pd.Series:
        ids = s.astype(str)
        unknown = set(ids) - set(back)
        if unknown:
            raise SkhashError(f"SKHASH output has event ids not assigned here: {sorted(unknown)[:5]}", log)
        return ids.map(back)

    f1 = folder / "OUT" / "mechanisms.csv"
    if f1.is_file():
        raw = pd.read_csv(f1, dtype={"event_id": str, "quality": str})
    else:
        raw = pd.DataFrame(columns=["event_id"])
    mech = raw.rename(columns=_MECH_RENAME)
    mech["event_id"] = map_ids(mech["event_id"]) if len(mech) else pd.Series(dtype=str)
    mech["solution_rank"] = mech.groupby("event_id").cumcount() if len(mech) else pd.Series(dtype=int)
    if len(mech):
        s2, d2, r2 = auxiliary_plane(mech["strike"].to_numpy(float), mech["dip"].to_numpy(float),
                                     mech["rake"].to_numpy(float))
        nd = int(settings.get("output_angle_precision", 1))  # SKHASH's own output rounding
        mech["strike2"], mech["dip2"], mech["rake2"] = np.round(s2, nd), np.round(d2, nd), np.round(r2, nd)
        mech["strike"], mech["rake"] = _norm_strike(mech["strike"]), _norm_rake(mech["rake"])
        mech["strike2"], mech["rake2"] = _norm_strike(mech["strike2"]), _norm_rake(mech["rake2"])
        mech["mult_solution_flag"] = mech["mult_solution_flag"].astype(str).str.lower().eq("true")
    else:
        mech = pd.DataFrame({c: pd.Series(dtype=object) for c in MECHANISM_COLUMNS})
    mech = mech[MECHANISM_COLUMNS]

    fp = folder / "OUT" / "polinfo.csv"
    if fp.is_file() and fp.stat().st_size > 0:
        pi = pd.read_csv(fp, dtype={"event_id": str, "sta_code": str})
        pi["event_id"] = map_ids(pi["event_id"])
        codes = pi["sta_code"].map(sta_map)
        if codes.isna().any():
            raise SkhashError(f"SKHASH output has unknown station codes {pi.loc[codes.isna(), 'sta_code'].unique()[:5]}", log)
        pi["network"] = [c[0] for c in codes]
        pi["station"] = [c[1] for c in codes]
        pi["polarity"] = np.sign(pi["p_polarity"]).astype(int)
        pi["weight"] = pi["p_polarity"].abs()
        for c in POLINFO_COLUMNS:
            if c not in pi.columns:
                pi[c] = np.nan
        if composite is not None:
            pi["source_event_id"] = map_ids(pi["event_id2"].astype("Int64"))
        pi = pi[_polinfo_columns(composite)]
        pi["pol_agreement"] = pi["pol_agreement"].astype(int)
    else:
        pi = pd.DataFrame({c: pd.Series(dtype=object) for c in _polinfo_columns(composite)})

    acc = None
    if acceptable_planes:
        fa = folder / "OUT" / "acceptable.csv"
        if fa.is_file():
            acc = pd.read_csv(fa, dtype={"event_id": str}).rename(columns={
                "mech_number": "plane_number", "norm_N": "norm_n", "norm_E": "norm_e",
                "norm_Z": "norm_z", "norm_aux_N": "slip_n", "norm_aux_E": "slip_e",
                "norm_aux_Z": "slip_z"})
            if len(acc):
                acc["event_id"] = map_ids(acc["event_id"])
                # The engines differ only in how they write the same plane (Fortran: strike 0
                # / rake 180, Python: strike 360 / rake -180, signed zeros): normalise.
                acc["strike"], acc["rake"] = _norm_strike(acc["strike"]), _norm_rake(acc["rake"])
                vec = ["norm_n", "norm_e", "norm_z", "slip_n", "slip_e", "slip_z"]
                acc[vec] = acc[vec].astype(float) + 0.0
            acc = acc[ACCEPTABLE_COLUMNS]
        else:
            acc = pd.DataFrame({c: pd.Series(dtype=object) for c in ACCEPTABLE_COLUMNS})

    skips = _parse_skips(log)
    solved = set(mech["event_id"])
    uns = []
    for eid, sid in id_map.items():
        if composite is not None and eid != composite:
            continue  # member events are not solved on their own
        if eid not in solved:
            reason = skips.get(str(sid))
            if reason is None:
                reason = ("not solved by SKHASH (dropped by its own filters, e.g. fewer than "
                          "npolmin polarities within delmax/azmax)")
            uns.append((eid, reason))
    return mech, pi, acc, pd.DataFrame(uns, columns=UNSOLVED_COLUMNS)


def _polinfo_columns(composite: str | None) -> list[str]:
    """Polinfo columns; a composite run adds ``source_event_id`` (the member event of the ray)."""
    return POLINFO_COLUMNS if composite is None else POLINFO_COLUMNS[:1] + ["source_event_id"] + POLINFO_COLUMNS[1:]


def _sort_result(mech, pi, uns, acc):
    mech = mech.sort_values(["event_id", "solution_rank"]).reset_index(drop=True)
    key = ["event_id", "source_event_id", "network", "station"] if "source_event_id" in pi else \
        ["event_id", "network", "station"]
    pi = pi.sort_values(key).reset_index(drop=True)
    uns = uns.sort_values("event_id").reset_index(drop=True)
    if acc is not None:
        acc = acc.sort_values(["event_id", "plane_number"]).reset_index(drop=True)
    return mech, pi, uns, acc


def run_skhash(events: pd.DataFrame, polarities: pd.DataFrame, stations: pd.DataFrame,
               velocity_model, settings: dict | None = None, workdir=None,
               use_fortran: bool | None = None, *, seed: int | None = None,
               acceptable_planes: bool = False, python: str | None = None,
               timeout: float | None = None, composite: str | None = None) -> SkhashResult:
    """Run SKHASH once (one subprocess) on ``events``; see the module docstring.

    ``composite``: solve **one composite mechanism** from the polarities of all ``events``
    instead of one mechanism per event; the value is the composite's event id in the
    result (it must not be a member's id). SKHASH's own composite mode is used (polarity
    rows with ``event_id2``, see :func:`_write_inputs`): each ray's azimuth, distance and
    takeoff come from the location of the event that recorded it, then all rays are pooled
    in one grid search. The same station may appear once per member event. ``polinfo``
    then has a ``source_event_id`` column (the member event of each ray); ``mechanisms``,
    ``acceptable_planes`` and ``unsolved`` name the composite id only; npolmin applies to
    the pooled polarities.

    ``settings``: SKHASH control variables overriding :data:`DEFAULT_SETTINGS` (file names,
    engine and matching flags are managed here). ``workdir``: folder to write SKHASH's
    inputs/outputs into and keep (default: a temporary folder, removed afterwards).
    ``use_fortran``: None = Fortran grid search if its module imports, else Python; True =
    require it (error if missing); False = pure Python. ``seed``: None = SKHASH's own seeds
    re-applied per event; an int re-seeds both generators with it per event.
    ``python``: interpreter that has SKHASH (default: this one).

    Raises :class:`SkhashError` when SKHASH exits with an error.
    """
    settings = _merge_settings(settings)
    vmodel = read_velocity_model(velocity_model)
    ev, pol, st, unsolved, notes = _prepare(events, polarities, stations, settings, composite)
    log = "".join(f"[pipeline.mechanisms.skhash] {n}\n" for n in notes)
    if unsolved is not None and len(unsolved):
        log += "".join(f"[pipeline.mechanisms.skhash] {e}: {r} -> not sent to SKHASH\n"
                       for e, r in unsolved.itertuples(index=False))

    empty = SkhashResult(
        mechanisms=pd.DataFrame({c: pd.Series(dtype=object) for c in MECHANISM_COLUMNS}),
        polinfo=pd.DataFrame({c: pd.Series(dtype=object) for c in _polinfo_columns(composite)}),
        unsolved=unsolved.sort_values("event_id").reset_index(drop=True),
        acceptable_planes=(pd.DataFrame({c: pd.Series(dtype=object) for c in ACCEPTABLE_COLUMNS})
                           if acceptable_planes else None),
        engine=None, log=log, settings=settings)
    if ev.empty:
        return empty

    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="skhash_")
        folder = Path(tmp.name)
    else:
        folder = Path(workdir)
        folder.mkdir(parents=True, exist_ok=True)
    try:
        id_map, sta_map = _write_inputs(folder, ev, pol, st, vmodel, settings, acceptable_planes, composite)
        cmd = [python or os.environ.get(PYTHON_ENV) or sys.executable, "-c", _DRIVER, "control.txt",
               "native" if seed is None else str(int(seed)), _engine_arg(use_fortran)]
        t0 = time.perf_counter()
        proc = _run_killable(cmd, folder, timeout)
        if proc is None:
            raise SkhashTimeout(f"{TIMEOUT_REASON_PREFIX} SKHASH ran over {timeout:g} s", log)
        seconds = time.perf_counter() - t0
        log += proc.stdout + (("\n[stderr]\n" + proc.stderr) if proc.stderr else "")
        m = re.search(re.escape(_ENGINE_MARK) + r"(\w+)", proc.stdout)
        engine = m.group(1) if m else None
        if proc.returncode != 0:
            em = re.search(re.escape(_ERROR_MARK) + r"([^\n]*)", proc.stdout)
            msg = em.group(1) if em else (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
            raise SkhashError(f"SKHASH failed (exit {proc.returncode}): {msg}", log)
        mech, pi, acc, uns2 = _read_outputs(folder, id_map, sta_map, proc.stdout, acceptable_planes,
                                              settings, composite)
    finally:
        if tmp is not None:
            tmp.cleanup()
    uns = pd.concat([unsolved, uns2], ignore_index=True) if len(unsolved) else uns2
    mech, pi, uns, acc = _sort_result(mech, pi, uns, acc)
    return SkhashResult(mechanisms=mech, polinfo=pi, unsolved=uns, acceptable_planes=acc,
                        engine=engine, log=log, settings=settings, id_map=id_map,
                        seconds=seconds)


# --------------------------------------------------------------------------- parallel

def run_skhash_parallel(events: pd.DataFrame, polarities: pd.DataFrame, stations: pd.DataFrame,
                        velocity_model, settings: dict | None = None, workdir=None,
                        use_fortran: bool | None = None, *, workers: int = 2,
                        chunk_size: int | None = None, seed: int | None = None,
                        acceptable_planes: bool = False, python: str | None = None,
                        timeout: float | None = None) -> SkhashResult:
    """Split events (sorted by id) into contiguous chunks and run one SKHASH process per
    chunk, ``workers`` at a time. Results are concatenated sorted by ``event_id``; with the
    per-event re-seeding they do not depend on ``workers``/``chunk_size``.

    A chunk whose SKHASH run fails is re-run event by event; an event that still fails is
    recorded in ``unsolved`` with the error. ``chunk_size`` default: events split evenly into
    ``workers`` chunks. ``workdir``: keep each chunk's files in ``workdir/chunk_NNN``.
    ``engine`` of the result: the engine all chunks used, ``'mixed'`` if they differ.

    ``timeout``: per-event limit, s. A run of n events may take ``timeout`` +
    :data:`SECONDS_PER_EXTRA_EVENT` x (n - 1); when it runs over, its events are re-run one
    by one with ``timeout`` each, and an event that runs over again is ``unsolved`` with
    reason ``timeout: ...`` (an engine that crashes: ``engine error: ...``).
    """
    workers = max(1, int(workers))
    settings = _merge_settings(settings)
    vmodel = read_velocity_model(velocity_model)  # validate once, fail early
    ids = sorted(pd.Series(events["event_id"]).astype(str).unique())
    if chunk_size is None:
        chunk_size = max(1, -(-len(ids) // workers))
    chunks = [ids[i:i + chunk_size] for i in range(0, len(ids), chunk_size)]
    ev_all = events.assign(event_id=events["event_id"].astype(str))
    pol_all = polarities.assign(event_id=polarities["event_id"].astype(str))

    def one(tag: str, chunk_ids: list) -> SkhashResult:
        wd = None if workdir is None else Path(workdir) / tag
        return run_skhash(ev_all[ev_all["event_id"].isin(chunk_ids)],
                          pol_all[pol_all["event_id"].isin(chunk_ids)], stations, vmodel,
                          settings, wd, use_fortran, seed=seed, acceptable_planes=acceptable_planes,
                          python=python,
                          timeout=None if timeout is None else timeout + SECONDS_PER_EXTRA_EVENT * (len(chunk_ids) - 1))

    def run_chunk(k: int, chunk_ids: list) -> list:
        tag = f"chunk_{k:03d}"
        try:
            return [(tag, one(tag, chunk_ids), None)]
        except Exception as exc:  # noqa: BLE001 - recorded, batch goes on
            if len(chunk_ids) == 1:
                return [(tag, None, (chunk_ids[0], exc))]
            out = [(tag, None, ("", exc))]  # keeps the chunk's log
            for j, eid in enumerate(chunk_ids):
                sub = f"{tag}_event_{j:03d}"
                try:
                    out.append((sub, one(sub, [eid]), None))
                except Exception as exc2:  # noqa: BLE001
                    out.append((sub, None, (eid, exc2)))
            return out

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(run_chunk, k, c) for k, c in enumerate(chunks)]
        parts = [p for f in futures for p in f.result()]  # chunk order, not completion order

    mechs, pis, unss, accs, logs, engines, id_map, secs = [], [], [], [], [], set(), {}, 0.0
    for tag, res, err in parts:
        if res is not None:
            mechs.append(res.mechanisms)
            pis.append(res.polinfo)
            unss.append(res.unsolved)
            if res.acceptable_planes is not None:
                accs.append(res.acceptable_planes)
            if res.engine:
                engines.add(res.engine)
            id_map.update({e: (tag, i) for e, i in res.id_map.items()})
            secs += res.seconds
            logs.append(f"===== {tag} =====\n{res.log}")
        else:
            eid, exc = err
            elog = getattr(exc, "log", "")
            if eid:
                reason = str(exc) if isinstance(exc, SkhashTimeout) else f"engine error: {exc}"
                unss.append(pd.DataFrame([(eid, reason)], columns=UNSOLVED_COLUMNS))
                logs.append(f"===== {tag} (failed: {eid}) =====\n{exc}\n{elog}")
            else:
                logs.append(f"===== {tag} (failed, retrying event by event) =====\n{exc}\n{elog}")

    def cat(frames, cols):
        frames = [f for f in frames if len(f)]
        return (pd.concat(frames, ignore_index=True) if frames
                else pd.DataFrame({c: pd.Series(dtype=object) for c in cols}))

    mech = cat(mechs, MECHANISM_COLUMNS)
    pi = cat(pis, POLINFO_COLUMNS)
    uns = cat(unss, UNSOLVED_COLUMNS)
    acc = cat(accs, ACCEPTABLE_COLUMNS) if acceptable_planes else None
    mech, pi, uns, acc = _sort_result(mech, pi, uns, acc)
    engine = None if not engines else (engines.pop() if len(engines) == 1 else "mixed")
    return SkhashResult(mechanisms=mech, polinfo=pi, unsolved=uns, acceptable_planes=acc,
                        engine=engine, log="\n".join(logs), settings=settings, id_map=id_map,
                        seconds=secs)
