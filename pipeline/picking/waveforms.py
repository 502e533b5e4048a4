"""Event waveforms: reading, P alignment, the polarity window, SNR and dashboard snippets.

Conventions (units and indices are part of the contract):

* Reading: ``.sac`` files (any case) go through :mod:`pipeline.io.sac` (NumPy only, every
  header field used validated first; ~0.04 ms per file, ~80x faster than ``obspy.read``,
  and :func:`read_event` ~35x faster end to end, ``bench/bench_sac_read.py``; it cannot
  hang on a corrupt header as ObsPy can); MiniSEED goes through ObsPy.  Both give
  identical traces on good SAC files (same samples, start time, rate, codes, picks);
  ``read_event(sac_reader='obspy')`` keeps the ObsPy path for comparisons.  Every trace then passes the same checks (:func:`_make_record`).
* Sampling rate: every window this module returns is at :data:`TARGET_RATE` (500 Hz).
  Traces at other rates are resampled with a polyphase anti-alias FIR
  (:func:`scipy.signal.resample_poly`, Kaiser window, zero phase, so the P time is kept);
  rates below ``min_rate`` (default 250 Hz) or whose ratio to 500 Hz is not a fraction
  up/down with both terms <= 50 (e.g. 1000, 2000, 250*k/j...) are rejected with the reason.
* P pick: a picks table (when given) wins, then SAC header ``t1`` (``'picked'``), then
  ``t3`` (``'predicted'``, TauP).  Header times are seconds after the SAC reference time.
  A pick whose nearest sample is not in the trace is a reject (``P pick ... outside the
  trace``); one inside the trace but too near an end for the window or the snippet is
  rejected by :func:`p_window` / :func:`snippets` with their own reasons.
* Polarity window: ``[P - 0.598 s, P + 0.6 s]`` = :data:`WINDOW_LEN` (600) samples with P at
  index :data:`P_INDEX` (299).  The first sample is the sample nearest to ``P - 0.598 s``
  (ObsPy ``trim(nearest_sample=True)`` rounding, half away from zero), exactly as the
  reference notebook's ``st.trim(P-0.598, P+0.6)``.  For the ToC2ME SAC files (P at sample
  2500 of the trace) this is samples 2201..2800, i.e. 4.402-5.600 s after the trace start.
  Windows are returned raw (recorded counts/units, no demean, no filter); the reference
  model's preprocessing (divide by max |x|) is :func:`normalize_max_abs`.
* SNR (analyses.md 1.11, README 5.5): ``std(Z over [P-0.5 s, P+0.5 s]) /
  std(Z over [start, P-0.5 s])``, both windows inclusive of their end samples, computed on the
  float32 samples as the original script did (its values are reproduced to float32
  precision).  Dead traces give SNR 0.  The original tested ``max(x) == 0`` for dead traces,
  which misses constant negative traces; here a trace is dead when all its samples are equal
  (which covers all-zero) — see :func:`is_dead`.
* Bad input never raises out of the batch functions: each unusable file or trace is recorded
  in a :class:`~pipeline.rejects.Rejects` (stage ``'waveforms'``) with its reason; one bad
  trace never stops an event and one bad event never stops the batch.

Picks table format (CSV with header, one row per pick)::

    network,station,channel,p_time[,p_source]
    5B,1107,DHZ,2016-11-04T06:48:26.000Z,picked
    5B,1108,,2016-11-04T06:48:26.120Z

``p_time`` is an absolute UTC time (ISO 8601).  An empty ``channel`` (or ``*``) applies to
every channel of the station.  ``p_source`` is optional (default ``'picked'``).
"""
from __future__ import annotations

import csv
import logging
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd

from pipeline.io import sac as sacio
from pipeline.rejects import Rejects

log = logging.getLogger(__name__)

TARGET_RATE = 500.0          #: Hz, the rate of every window
WINDOW_LEN = 600             #: samples in the polarity window
P_INDEX = 299                #: index of the P sample in the window
PRE_P_S = 0.598              #: window start before P, s (= P_INDEX / TARGET_RATE)
POST_P_S = 0.6               #: window end after P, s (inclusive last sample)
SNR_HALF_S = 0.5             #: SNR signal window half-width around P, s
MIN_RATE = 250.0             #: lowest sampling rate accepted for resampling, Hz
STAGE = "waveforms"          #: ``stage`` value of the rejects this module writes
WAVEFORM_SUFFIXES = (".sac", ".mseed", ".miniseed", ".msd")
PICKS_FILE = "picks.csv"     #: a picks table inside an event folder is used automatically
SAC_READERS = ("numpy", "obspy")  #: values of ``read_event(sac_reader=...)``

#: columns of the ``waveforms`` table produced by :func:`snippets` (proposed contract)
WAVEFORMS_COLUMNS = ("event_id", "network", "station", "location", "channel", "t0_s",
                     "sampling_rate", "samples", "p_source")


class TraceError(ValueError):
    """A trace cannot be used; the message is the reject reason."""


# --------------------------------------------------------------------------- records

@dataclass
class TraceRecord:
    """One usable trace of an event: data at :data:`TARGET_RATE`, P time and its origin."""

    event_id: str
    network: str
    station: str
    location: str
    channel: str
    file: str                    #: path relative to the input root (for rejects)
    starttime: object            #: obspy UTCDateTime of data[0]
    data: np.ndarray             #: float32 samples at TARGET_RATE
    p_time: object               #: obspy UTCDateTime of P
    p_source: str                #: 'picked', 'predicted' or the picks table's value
    original_rate: float = TARGET_RATE

    @property
    def sampling_rate(self) -> float:
        return TARGET_RATE

    @property
    def p_offset(self) -> float:
        """P position in samples from data[0] (fractional)."""
        return float(self.p_time - self.starttime) * TARGET_RATE

    @property
    def seed_id(self) -> str:
        return f"{self.network}.{self.station}.{self.location}.{self.channel}"

    @property
    def is_vertical(self) -> bool:
        return self.channel.upper().endswith("Z")


@dataclass
class EventWaveforms:
    """The usable traces of one event folder (one per network/station/channel)."""

    event_id: str
    folder: Path
    traces: list[TraceRecord] = field(default_factory=list)

    def vertical(self) -> list[TraceRecord]:
        """The vertical-component traces (channel code ending in Z), station order."""
        return [t for t in self.traces if t.is_vertical]


# --------------------------------------------------------------------------- helpers

def round_half_away(x: float) -> int:
    """Round to the nearest integer, halves away from zero (ObsPy ``round_away``)."""
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def is_dead(x: np.ndarray) -> bool:
    """True when the samples carry no signal: empty, all equal (all-zero included).

    The original SNR script tested ``max(x) == 0``, which misses constant negative traces
    and flags live traces that happen to be <= 0 everywhere; this test does neither.
    """
    x = np.asarray(x)
    if x.size == 0:
        return True
    lo, hi = x.min(), x.max()
    if np.isfinite(lo) and np.isfinite(hi):  # the common case, without copying the samples
        return bool(lo == hi)
    finite = x[np.isfinite(x)]
    if finite.size == 0:
        return True
    return bool(np.max(np.abs(finite)) == 0 or np.ptp(finite) == 0)


def is_clipped(x: np.ndarray, run: int = 3) -> bool:
    """True when ``x`` holds a run of >= ``run`` identical samples at its max or min.

    Digitiser clipping flattens the extreme samples; real float samples practically never
    repeat exactly at the extreme (checked on all 414 shared ToC2ME traces: none flagged).
    """
    x = np.asarray(x)
    if x.size < run or is_dead(x):
        return False
    for level in (np.max(x), np.min(x)):
        if level == 0:
            continue
        hit = np.concatenate(([0], (x == level).astype(np.int8), [0]))
        edges = np.flatnonzero(np.diff(hit))
        if edges.size and np.max(edges[1::2] - edges[0::2]) >= run:
            return True
    return False


def _rational(rate: float, target: float = TARGET_RATE, max_factor: int = 50) -> tuple[int, int] | None:
    """(up, down) with target/rate == up/down and both <= max_factor, else None."""
    frac = Fraction(target / rate).limit_denominator(max_factor)
    if frac.numerator > max_factor:
        return None
    if abs(float(frac) - target / rate) > 1e-9 * target / rate:
        return None
    return frac.numerator, frac.denominator


def resample(data: np.ndarray, rate: float, target: float = TARGET_RATE) -> np.ndarray:
    """Resample ``data`` from ``rate`` to ``target`` Hz (polyphase FIR, zero phase).

    Output sample k is at time ``k / target`` from the same first sample, so pick times are
    unchanged.  Raises :class:`TraceError` for ratios that are not simple fractions.
    """
    if rate == target:
        return np.asarray(data, dtype=np.float32)
    ud = _rational(rate, target)
    if ud is None:
        raise TraceError(f"sampling rate {rate:g} Hz is not a simple fraction of {target:g} Hz")
    from scipy.signal import resample_poly
    y = resample_poly(np.asarray(data, dtype=np.float64), ud[0], ud[1])
    return y.astype(np.float32)


# --------------------------------------------------------------------------- picks table

def read_picks_csv(path: str | Path, rejects: Rejects | None = None) -> dict:
    """Read a picks table (format in the module docstring).

    Returns ``{(network, station, channel): (UTCDateTime, p_source)}`` with channel ``''``
    for station-wide picks.  Bad rows go to ``rejects`` (or raise without one).
    """
    from obspy import UTCDateTime
    path = Path(path)
    out: dict = {}
    with open(path, newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip().lower() for h in next(reader, [])]
        need = ["network", "station", "channel", "p_time"]
        if header[:4] != need:
            raise ValueError(f"{path}: picks table header must start with {','.join(need)}, got {header}")
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            try:
                net, sta, cha, ptime = (c.strip() for c in row[:4])
                if not sta:
                    raise ValueError("empty station")
                t = UTCDateTime(ptime)
                src = row[4].strip() if len(row) > 4 and row[4].strip() else "picked"
            except Exception as exc:  # noqa: BLE001 - any bad row is a reject
                if rejects is None:
                    raise ValueError(f"{path}, line {lineno}: {exc}") from exc
                rejects.add(str(path), lineno, f"bad pick row: {exc}", ",".join(row), stage=STAGE)
                continue
            key = (net, sta, "" if cha in ("", "*") else cha)
            if key in out:
                msg = f"duplicate pick for {'.'.join(key)}"
                if rejects is None:
                    raise ValueError(f"{path}, line {lineno}: {msg}")
                rejects.add(str(path), lineno, msg, ",".join(row), stage=STAGE)
                continue
            out[key] = (t, src)
    return out


def _lookup_pick(picks: dict | None, net: str, sta: str, cha: str):
    if not picks:
        return None
    return picks.get((net, sta, cha)) or picks.get((net, sta, ""))


# --------------------------------------------------------------------------- reading

def _sac_pick(tr):
    """(UTCDateTime, source) from SAC header t1, else t3; None if neither is set."""
    sac = getattr(tr.stats, "sac", None)
    if sac is None:
        return None
    from obspy import UTCDateTime
    for key, source in (("t1", "picked"), ("t3", "predicted")):
        val = sac.get(key)
        if val is None or not np.isfinite(val) or val == -12345.0:
            continue
        # SAC reference time = starttime - b (ObsPy sets starttime = reference + b)
        b = float(sac.get("b", 0.0))
        ref = UTCDateTime(tr.stats.starttime) - b
        return ref + float(val), source
    return None


def _read_file(path: Path):
    from obspy import read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ObsPy's SAC delta rounding note
        return read(str(path))


@dataclass
class _RawTrace:
    """What :func:`_make_record` needs of one trace, whichever reader gave it."""

    network: str
    station: str
    location: str
    channel: str
    data: np.ndarray             #: as read (masked where MiniSEED has gaps)
    sampling_rate: float         #: Hz
    starttime: object            #: obspy UTCDateTime of data[0]
    #: () -> (UTCDateTime, source) from SAC t1/t3, or None if unset; called only when the
    #: picks table has no entry (inside the per-trace error handling)
    header_pick: Callable[[], tuple | None]

    @property
    def label(self) -> str:
        return f"{self.network}.{self.station}.{self.location}.{self.channel}"


def _from_obspy(tr) -> _RawTrace:
    s = tr.stats
    return _RawTrace(s.network, s.station, s.location, s.channel, tr.data, float(s.sampling_rate),
                     s.starttime, lambda: _sac_pick(tr))


def _from_sac(sf: sacio.SacFile) -> _RawTrace:
    pick = None if sf.p_time_ns is None else (sf.p_time, sf.p_source)
    return _RawTrace(sf.network, sf.station, sf.location, sf.channel, sf.data, sf.sampling_rate,
                     sf.starttime, lambda: pick)


def _read_traces(path: Path, sac_reader: str) -> list[_RawTrace]:
    """The traces of one waveform file; raises on unreadable files (the reason in the message)."""
    if sac_reader == "numpy" and path.suffix.lower() == ".sac":
        return [_from_sac(sacio.read(path))]
    st = _read_file(path)
    if len(st) == 0:
        raise TraceError("waveform file holds no trace")
    if len(st) > 1:  # gappy MiniSEED: merge, gaps become masked samples
        try:
            st.merge(method=0, fill_value=None)
        except Exception as exc:  # noqa: BLE001
            raise TraceError(f"cannot merge traces: {exc}") from exc
    return [_from_obspy(tr) for tr in st]


def read_event(folder: str | Path, picks: dict | str | Path | None = None,
               rejects: Rejects | None = None, min_rate: float = MIN_RATE,
               root: str | Path | None = None, event_id: str | None = None,
               sac_reader: str = "numpy") -> EventWaveforms:
    """Read every waveform file (SAC, MiniSEED) of one event folder.

    ``picks``: a dict from :func:`read_picks_csv` or a path to such a table; when None and
    the folder holds ``picks.csv`` that table is used.  Without a table entry the P pick comes
    from SAC ``t1`` then ``t3``.  ``root`` is the input root the reject ``file`` paths are made
    relative to (default: the folder's parent).  ``sac_reader``: ``'numpy'`` (default,
    :mod:`pipeline.io.sac`) or ``'obspy'`` (``obspy.read``, kept for comparisons and
    benchmarks; it can hang on corrupt SAC headers).  Unusable files/traces go to ``rejects``
    with the reason: unreadable, truncated or oversized file, bad SAC header field (named with
    its value), no P pick, P pick outside the trace, NaN/inf samples, dead trace (all samples
    equal), unsupported sampling rate, gaps, duplicate station/channel.
    """
    if sac_reader not in SAC_READERS:
        raise ValueError(f"sac_reader must be one of {SAC_READERS}, got {sac_reader!r}")
    folder = Path(folder)
    rejects = rejects if rejects is not None else Rejects()
    root = Path(root) if root is not None else folder.parent
    event_id = event_id or folder.name
    if picks is None and (folder / PICKS_FILE).exists():
        picks = folder / PICKS_FILE
    if isinstance(picks, (str, Path)):
        picks = read_picks_csv(picks, rejects)

    def rel(p: Path) -> str:
        try:
            return str(p.relative_to(root))
        except ValueError:
            return str(p)

    def candidates():
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in WAVEFORM_SUFFIXES)
        for path in files:
            fname = rel(path)
            try:
                traces = _read_traces(path, sac_reader)
            except TraceError as exc:
                rejects.add(fname, None, str(exc), stage=STAGE)
                continue
            except Exception as exc:  # noqa: BLE001 - corrupt/truncated files are rejects
                rejects.add(fname, None, f"unreadable waveform file: {type(exc).__name__}: {exc}", stage=STAGE)
                continue
            for raw in traces:
                yield fname, raw.label, (lambda raw=raw: raw)

    return _keep_traces(EventWaveforms(event_id, folder), candidates(), picks, min_rate, rejects)


def _keep_traces(ev: EventWaveforms, candidates, picks, min_rate, rejects: Rejects,
                 duplicate_note: str = "") -> EventWaveforms:
    """Check each candidate trace (:func:`_make_record`) and keep the usable ones in ``ev``,
    one per (network, station, channel), sorted; the others become rejects with the reason.

    ``candidates``: iterable of ``(file, label, get_raw)``; ``get_raw()`` returns the
    :class:`_RawTrace` (it may raise: a :class:`TraceError` is a reject with its message,
    anything else one with the exception type). A later trace of a kept key is a duplicate
    (``duplicate_note`` is added to that reason)."""
    seen: dict[tuple, str] = {}
    for fname, label, get_raw in candidates:
        try:
            rec = _make_record(get_raw(), fname, ev.event_id, picks, min_rate, rejects)
        except TraceError as exc:
            rejects.add(fname, None, f"{label}: {exc}", stage=STAGE)
            continue
        except Exception as exc:  # noqa: BLE001 - one bad trace never stops the event
            rejects.add(fname, None, f"{label}: {type(exc).__name__}: {exc}", stage=STAGE)
            continue
        if rec is None:
            continue
        key = (rec.network, rec.station, rec.channel)
        if key in seen:
            rejects.add(fname, None, f"duplicate trace {'.'.join(key)}{duplicate_note} (kept {seen[key]})",
                        stage=STAGE)
            continue
        seen[key] = fname
        ev.traces.append(rec)
    ev.traces.sort(key=lambda r: (r.network, r.station, r.channel))
    return ev


def _cut(raw: _RawTrace, t0_ns: int, t1_ns: int) -> _RawTrace:
    """The samples of ``raw`` between ``t0_ns`` and ``t1_ns`` (inclusive, nearest samples)."""
    from obspy import UTCDateTime
    start = raw.starttime.ns
    step = 1e9 / raw.sampling_rate
    i0 = max(0, int(np.ceil((t0_ns - start) / step - 1e-6)))
    i1 = min(len(raw.data) - 1, int(np.floor((t1_ns - start) / step + 1e-6)))
    data = raw.data[i0:i1 + 1] if i1 >= i0 else raw.data[:0]
    return _RawTrace(raw.network, raw.station, raw.location, raw.channel, data, raw.sampling_rate,
                     UTCDateTime(ns=start + round(i0 * step)), raw.header_pick)


def read_event_items(event_id: str, items, picks: dict, root: str | Path, rejects: Rejects | None = None,
                     min_rate: float = MIN_RATE) -> EventWaveforms:
    """An event's traces cut out of files of any layout (:mod:`pipeline.ingest.waveform_index`).

    ``items``: ``(path relative to root, network, station, location, channel, cut_start_ns,
    cut_end_ns)``; ``picks``: ``{(network, station, channel or ""): (UTCDateTime, source)}``.
    Each file is read once (MiniSEED: only the records of the cut window), its channel
    selected, gaps kept as masked samples, then checked like :func:`read_event`'s traces.
    """
    from obspy import UTCDateTime
    root = Path(root)
    rejects = rejects if rejects is not None else Rejects()
    by_path: dict[str, list] = {}
    for it in items:
        by_path.setdefault(it[0], []).append(it)

    def candidates():
        for rel, its in sorted(by_path.items()):
            path = root / rel
            t0, t1 = min(i[5] for i in its), max(i[6] for i in its)
            try:
                if path.suffix.lower() == ".sac":
                    traces, st = _read_traces(path, "numpy"), None
                else:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        from obspy import read
                        traces, st = None, read(str(path), starttime=UTCDateTime(ns=t0), endtime=UTCDateTime(ns=t1))
            except Exception as exc:  # noqa: BLE001 - corrupt/truncated files are rejects
                rejects.add(rel, None, f"unreadable waveform file: {type(exc).__name__}: {exc}", stage=STAGE)
                continue
            for _, net, sta, loc, cha, c0, c1 in its:
                yield rel, f"{net}.{sta}.{loc}.{cha}", \
                    (lambda k=(net, sta, loc, cha), c0=c0, c1=c1, traces=traces, st=st: _select_cut(traces, st, k, c0, c1))

    return _keep_traces(EventWaveforms(event_id, root), candidates(), picks, min_rate, rejects,
                        duplicate_note=f" for event {event_id}")


def _select_cut(traces, st, key: tuple, c0: int, c1: int) -> _RawTrace:
    """The trace ``key`` = (network, station, location, channel) of a file's ``traces`` (SAC)
    or ObsPy stream ``st`` (MiniSEED; segments merged, gaps masked), cut to ``c0..c1`` (ns).
    Raises :class:`TraceError` when it is absent or cannot be merged into one trace."""
    net, sta, loc, cha = key
    if traces is not None:
        found = [t for t in traces if (t.network, t.station, t.location, t.channel) == key]
    else:
        sel = st.select(network=net, station=sta, location=loc, channel=cha).copy()
        if len(sel) > 1:  # gappy MiniSEED: gaps become masked samples
            try:
                sel.merge(method=0, fill_value=None)
            except Exception as exc:  # noqa: BLE001 - ObsPy raises a bare Exception
                raise TraceError(f"cannot merge {len(sel)} segments: {exc}") from exc
        if len(sel) > 1:
            raise TraceError(f"cannot merge {len(sel)} segments into one trace")
        found = [_from_obspy(tr) for tr in sel]
    if not found:
        raise TraceError("no samples in the cut window")
    return _cut(found[0], c0, c1)


def _make_record(raw: _RawTrace, fname, event_id, picks, min_rate, rejects) -> TraceRecord | None:
    """The checks every trace passes, whichever reader gave it; None (and a reject) if unusable."""
    net, sta, loc, cha = raw.network, raw.station, raw.location, raw.channel

    def reject(reason):
        rejects.add(fname, None, f"{raw.label}: {reason}", stage=STAGE)
        return None

    if not sta:
        return reject("no station code")
    data = raw.data
    masked = np.ma.isMaskedArray(data)
    if masked:
        if np.ma.count_masked(data):
            # keep it masked -> NaN; the window check rejects only if the gap touches it
            data = np.ma.filled(data.astype(np.float64), np.nan)
        else:
            data = np.asarray(data)
    data = np.asarray(data)
    if data.size == 0:
        return reject("no samples")
    finite = np.isfinite(data)
    if not finite.all() and not masked:
        return reject(f"{int((~finite).sum())} NaN/inf samples")
    if is_dead(data):
        return reject("dead trace (all samples equal)")
    rate = raw.sampling_rate
    if not np.isfinite(rate) or rate <= 0:
        return reject(f"bad sampling rate {rate}")
    if rate < min_rate:
        return reject(f"sampling rate {rate:g} Hz below the minimum {min_rate:g} Hz")
    try:
        data = resample(data, rate) if rate != TARGET_RATE else data.astype(np.float32, copy=False)
    except TraceError as exc:
        return reject(str(exc))
    pick = _lookup_pick(picks, net, sta, cha) or raw.header_pick()
    if pick is None:
        return reject("no P pick (SAC t1/t3 unset and not in the picks table)")
    p_time, p_source = pick
    # a pick off the trace is a wrong header or table row, not a short window: say so here
    p_s = (p_time.ns - raw.starttime.ns) / 1e9
    last_s = (data.size - 1) / TARGET_RATE
    if not 0 <= round_half_away(p_s * TARGET_RATE) <= data.size - 1:
        return reject(f"P pick ({p_source}) outside the trace: {p_s:.3f} s after the first sample, "
                      f"trace 0..{last_s:.3f} s")
    return TraceRecord(event_id, net, sta, loc, cha, fname, raw.starttime, data, p_time, p_source, rate)


def list_event_folders(root: str | Path) -> list[Path]:
    """Event folders under ``root`` (sub-folders holding waveform files), sorted by name."""
    root = Path(root)
    return sorted(p for p in root.iterdir() if p.is_dir()
                  and any(q.suffix.lower() in WAVEFORM_SUFFIXES for q in p.iterdir()))


def iter_events(root: str | Path, event_ids: Iterable[str] | None = None,
                rejects: Rejects | None = None, **kwargs) -> Iterator[EventWaveforms]:
    """Yield :class:`EventWaveforms` for each event folder under ``root``.

    A folder that cannot be read at all is a reject (file = the folder); the batch goes on.
    """
    root = Path(root)
    rejects = rejects if rejects is not None else Rejects()
    if event_ids is None:
        folders = list_event_folders(root)
    else:
        folders = [root / e for e in event_ids]
    for folder in folders:
        try:
            if not folder.is_dir():
                raise FileNotFoundError("event folder does not exist")
            yield read_event(folder, rejects=rejects, root=root, **kwargs)
        except Exception as exc:  # noqa: BLE001 - one bad event never stops the batch
            rejects.add(str(folder.name), None, f"event not read: {type(exc).__name__}: {exc}", stage=STAGE)


# --------------------------------------------------------------------------- windows

def window_start(p_offset: float) -> int:
    """Index of the first window sample for P at fractional sample ``p_offset``."""
    return round_half_away(p_offset - P_INDEX)


def p_window(rec: TraceRecord, check_clipping: bool = True) -> np.ndarray:
    """The raw 600-sample float32 window with P at index 299 (see module docstring).

    Raises :class:`TraceError` when the window leaves the trace, touches a gap, is dead or
    is clipped.
    """
    i0 = window_start(rec.p_offset)
    if i0 < 0 or i0 + WINDOW_LEN > rec.data.size:
        raise TraceError(f"P window [{i0}, {i0 + WINDOW_LEN}) outside the trace (0..{rec.data.size})")
    w = rec.data[i0:i0 + WINDOW_LEN]
    if not np.isfinite(w).all():
        raise TraceError("gap or NaN inside the P window")
    if is_dead(w):
        raise TraceError("dead P window (all samples equal)")
    if check_clipping and is_clipped(w):
        raise TraceError("clipped P window (flat run at the extreme value)")
    return np.array(w, dtype=np.float32)


def normalize_max_abs(windows: np.ndarray) -> np.ndarray:
    """Reference preprocessing: divide each row by its max |x| (no demean); zero rows stay 0."""
    w = np.asarray(windows, dtype=np.float32)
    m = np.max(np.abs(w), axis=-1, keepdims=True)
    m[m == 0] = 1.0
    return w / m


def snr_samples(data: np.ndarray, p_index: int, rate: float = TARGET_RATE,
                half_s: float = SNR_HALF_S) -> float:
    """SNR of ``data`` for P at sample ``p_index`` (definition in the module docstring).

    Computed on the float32 samples with both windows inclusive of their end samples, like
    the original (ObsPy ``trim``).  Returns 0 for dead traces (as the original file does),
    NaN when the windows do not fit in the trace, inf when only the noise window is flat.
    """
    x = np.asarray(data, dtype=np.float32)
    h = int(round(half_s * rate))
    lo, hi = p_index - h, p_index + h
    if lo < 1 or hi >= x.size:
        return float("nan")
    if is_dead(x):
        return 0.0
    with np.errstate(over="ignore", invalid="ignore"):  # corrupt huge samples: NaN/inf, handled below
        sig = np.std(x[lo:hi + 1])
        noise = np.std(x[:lo + 1])
    if not np.isfinite(sig) or not np.isfinite(noise):
        return float("nan")
    if noise == 0:
        return float("inf") if sig > 0 else 0.0
    return float(sig / noise)


def trace_snr(rec: TraceRecord) -> float:
    """SNR of a :class:`TraceRecord` around its P (nearest sample)."""
    return snr_samples(rec.data, round_half_away(rec.p_offset))


def vertical_windows(event: EventWaveforms, rejects: Rejects | None = None,
                     check_clipping: bool = True) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw polarity windows of an event's vertical traces.

    Returns ``(meta, windows)``: ``meta`` has one row per window (event_id, network,
    station, location, channel, p_source, p_time, snr, file, original_rate) and ``windows`` is
    float32 (N, 600) with P at index 299.  Traces whose window is unusable are rejects.
    """
    rejects = rejects if rejects is not None else Rejects()
    rows, wins = [], []
    for rec in event.vertical():
        try:
            w = p_window(rec, check_clipping=check_clipping)
            snr = trace_snr(rec)
        except TraceError as exc:
            rejects.add(rec.file, None, f"{rec.seed_id}: {exc}", stage=STAGE)
            continue
        except Exception as exc:  # noqa: BLE001 - one bad trace never stops the event
            rejects.add(rec.file, None, f"{rec.seed_id}: {type(exc).__name__}: {exc}", stage=STAGE)
            continue
        rows.append(dict(event_id=event.event_id, network=rec.network, station=rec.station,
                         location=rec.location, channel=rec.channel, p_source=rec.p_source,
                         p_time=pd.Timestamp(rec.p_time.ns, unit="ns", tz="UTC"),
                         snr=snr, file=rec.file, original_rate=rec.original_rate))
        wins.append(w)
    meta = pd.DataFrame(rows, columns=["event_id", "network", "station", "location", "channel",
                                       "p_source", "p_time", "snr", "file", "original_rate"])
    arr = np.stack(wins).astype(np.float32) if wins else np.zeros((0, WINDOW_LEN), np.float32)
    return meta, arr


def snippets(event: EventWaveforms, pre_s: float = 0.4, post_s: float = 0.4,
             rejects: Rejects | None = None) -> pd.DataFrame:
    """Short P-aligned snippets of every component, for the ``waveforms`` table.

    One row per trace: event_id, network, station, location, channel, ``t0_s`` (time of the
    first sample relative to P, s; negative), sampling_rate (Hz), ``samples`` (float32
    array, raw amplitudes as recorded, no sign correction), p_source.  The first sample is
    the one nearest to ``P - pre_s``; the snippet holds ``round((pre_s + post_s) * rate) + 1``
    samples, so P is at index ``round(pre_s * rate)`` when the pick falls on a sample.
    Traces too short for the snippet are rejects.  The default (P - 0.4 s .. P + 0.4 s, 401
    samples, 1.6 kB per trace, ~330 kB per 69-station event) is the span of the seed's
    waveform-on-beachball figure (4.6-5.4 s of the 10 s files).
    """
    rejects = rejects if rejects is not None else Rejects()
    n_pre = int(round(pre_s * TARGET_RATE))
    n = n_pre + int(round(post_s * TARGET_RATE)) + 1
    rows = []
    for rec in event.traces:
        p_off = rec.p_offset
        i0 = round_half_away(p_off - n_pre)
        if i0 < 0 or i0 + n > rec.data.size:
            rejects.add(rec.file, None, f"{rec.seed_id}: snippet outside the trace", stage=STAGE)
            continue
        seg = np.asarray(rec.data[i0:i0 + n], dtype=np.float32)
        if not np.isfinite(seg).all():
            rejects.add(rec.file, None, f"{rec.seed_id}: gap or NaN inside the snippet", stage=STAGE)
            continue
        rows.append(dict(event_id=event.event_id, network=rec.network, station=rec.station,
                         location=rec.location, channel=rec.channel,
                         t0_s=(i0 - p_off) / TARGET_RATE, sampling_rate=TARGET_RATE,
                         samples=seg, p_source=rec.p_source))
    return pd.DataFrame(rows, columns=list(WAVEFORMS_COLUMNS))


def waveforms_arrow_schema():
    """Arrow schema of what :func:`snippets` returns: ``schema.WAVEFORMS`` plus the extra
    columns location and p_source (samples as list<float32>)."""
    import pyarrow as pa
    return pa.schema([
        pa.field("event_id", pa.string(), nullable=False),
        pa.field("network", pa.string(), nullable=False),
        pa.field("station", pa.string(), nullable=False),
        pa.field("location", pa.string()),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("t0_s", pa.float64(), nullable=False),
        pa.field("sampling_rate", pa.float64(), nullable=False),
        pa.field("samples", pa.list_(pa.float32()), nullable=False),
        pa.field("p_source", pa.string()),
    ])


def read_batch(root: str | Path, event_ids: Iterable[str] | None = None,
               rejects: Rejects | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Vertical polarity windows of every event under ``root`` (meta, (N, 600) float32)."""
    rejects = rejects if rejects is not None else Rejects()
    metas, wins = [], []
    for ev in iter_events(root, event_ids, rejects):
        try:
            m, w = vertical_windows(ev, rejects)
        except Exception as exc:  # noqa: BLE001
            rejects.add(ev.event_id, None, f"event windows failed: {exc}", stage=STAGE)
            continue
        metas.append(m)
        wins.append(w)
    if not metas:
        return vertical_windows(EventWaveforms("", Path(".")))
    return pd.concat(metas, ignore_index=True), np.concatenate(wins)
