"""pipeline.io.sac: the NumPy SAC reader against ObsPy, its header validation, the bugs it
fixes (a corrupt header that hangs ObsPy, a scrambled time ObsPy accepts), and a seeded fuzz
corpus through read_event / vertical_windows / snippets (nothing may hang or raise)."""
from __future__ import annotations

import re
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
from obspy.io.sac import header as HD

from pipeline.io import sac
from pipeline.picking import waveforms as W
from pipeline.rejects import Rejects

GUARD_S = 60        #: only turns a hang into a failure; not a speed assertion
SEED = 20161104


def _guarded(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a daemon thread; fails the test if it has not returned after
    :data:`GUARD_S` (a looping reader would otherwise hang the whole suite)."""
    out = {}

    def target():
        try:
            out["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            out["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(GUARD_S)
    if t.is_alive():
        pytest.fail(f"{getattr(fn, '__name__', fn)} did not return within {GUARD_S} s (endless loop)")
    if "error" in out:
        raise out["error"]
    return out["value"]


def _obspy_read(path):
    import obspy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return obspy.read(str(path))


# ----------------------------------------------------------------- header editing (little-endian files)

def _set(buf: bytearray, name: str, value) -> bytearray:
    """Overwrite one header field of a little-endian SAC file held in ``buf``."""
    if name in HD.FLOATHDRS:
        struct.pack_into("<f", buf, 4 * HD.FLOATHDRS.index(name), value)
    elif name in HD.INTHDRS:
        struct.pack_into("<i", buf, 280 + 4 * HD.INTHDRS.index(name), int(value))
    else:                                   # 8-character strings (kevnm2 has its own slot)
        raw = value if isinstance(value, bytes) else value.encode()
        off = 440 + 8 * HD.STRHDRS.index(name)
        buf[off:off + 8] = raw.ljust(8)[:8]
    return buf


def _get(buf, name):
    if name in HD.FLOATHDRS:
        return struct.unpack_from("<f", buf, 4 * HD.FLOATHDRS.index(name))[0]
    return struct.unpack_from("<i", buf, 280 + 4 * HD.INTHDRS.index(name))[0]


def _swap_endian(buf: bytes) -> bytes:
    """The same SAC file written big-endian."""
    n = (len(buf) - 632) // 4
    return (np.frombuffer(buf, "<f4", 70, 0).astype(">f4").tobytes()
            + np.frombuffer(buf, "<i4", 40, 280).astype(">i4").tobytes()
            + bytes(buf[440:632])
            + np.frombuffer(buf, "<f4", n, 632).astype(">f4").tobytes())


# ----------------------------------------------------------------- data

@pytest.fixture(scope="module")
def demo_sac(tmp_path_factory):
    """Two demo events written as SAC (ToC2ME layout) and their meta table."""
    from pipeline.demo import scenario as demo, waveforms as dw
    root = tmp_path_factory.mktemp("demo_sac")
    meta = dw.write_sac_events(root, demo.generate(), max_events=2)
    return root, meta


@pytest.fixture(params=["shared", "demo"])
def sac_root(request):
    """Folder of SAC event folders: the real shared ToC2ME files, then the demo ones."""
    if request.param == "shared":
        return request.getfixturevalue("toc2me_waveforms_dir") / "waveforms"
    return request.getfixturevalue("demo_sac")[0]


def _sac_files(root: Path) -> list[Path]:
    files = sorted(p for p in root.glob("*/*") if p.suffix.lower() == ".sac")
    assert files, f"no SAC files under {root}"
    return files


# ----------------------------------------------------------------- equivalence with ObsPy

def test_reader_matches_obspy(sac_root):
    """Every file: same samples (dtype too), start time to the ns, rate, codes, t1/t3."""
    files = _sac_files(sac_root)
    for path in files:
        sf = sac.read(path)
        tr = _obspy_read(path)[0]
        s = tr.stats
        assert sf.data.dtype == np.float32 and sf.data.flags.writeable
        assert np.array_equal(sf.data, tr.data), path
        assert sf.starttime_ns == s.starttime.ns and sf.starttime == s.starttime, path
        assert sf.sampling_rate == s.sampling_rate and sf.npts == s.npts, path
        assert (sf.network, sf.station, sf.location, sf.channel) == (s.network, s.station, s.location,
                                                                     s.channel), path
        assert sf.t1 == s.sac.get("t1") and sf.t3 == s.sac.get("t3"), path
    if "toc2me" in str(sac_root):
        assert len(files) == 414


def _same_records(a: W.EventWaveforms, b: W.EventWaveforms):
    assert len(a.traces) == len(b.traces) > 0
    for x, y in zip(a.traces, b.traces):
        assert (x.event_id, x.network, x.station, x.location, x.channel, x.file) == \
               (y.event_id, y.network, y.station, y.location, y.channel, y.file)
        assert x.starttime.ns == y.starttime.ns and x.p_time.ns == y.p_time.ns, x.seed_id
        assert x.data.dtype == y.data.dtype == np.float32 and np.array_equal(x.data, y.data), x.seed_id
        assert (x.p_source, x.original_rate) == (y.p_source, y.original_rate), x.seed_id


def test_read_event_same_records_as_obspy_path(sac_root):
    """read_event through the new reader == through obspy.read of the same files
    (``sac_reader='obspy'``, the old path): records, rejects and polarity windows."""
    for folder in W.list_event_folders(sac_root):
        rj_new, rj_old = Rejects(), Rejects()
        new = W.read_event(folder, rejects=rj_new)
        old = W.read_event(folder, rejects=rj_old, sac_reader="obspy")
        _same_records(new, old)
        assert rj_new.to_frame().equals(rj_old.to_frame())
        m_new, w_new = W.vertical_windows(new)
        m_old, w_old = W.vertical_windows(old)
        assert m_new.equals(m_old) and np.array_equal(w_new, w_old)


def test_big_endian_file_reads_like_obspy(demo_sac, tmp_path):
    src = _sac_files(demo_sac[0])[5]
    swapped = tmp_path / "be.SAC"
    swapped.write_bytes(_swap_endian(src.read_bytes()))
    a, b = sac.read(src), sac.read(swapped)
    assert (a.byteorder, b.byteorder) == ("<", ">")
    assert b.data.dtype == np.dtype(np.float32) and b.data.dtype.isnative
    assert np.array_equal(a.data, b.data) and a.starttime_ns == b.starttime_ns and a.p_time_ns == b.p_time_ns
    tr = _obspy_read(swapped)[0]
    assert np.array_equal(b.data, tr.data) and b.starttime == tr.stats.starttime


def test_reference_time_and_pick_conventions(demo_sac):
    """start = nz* + b; P = nz* + t1 (demo: t1 = 5.000 s after the first sample)."""
    from obspy import UTCDateTime
    sf = sac.read(_sac_files(demo_sac[0])[0])
    buf = _sac_files(demo_sac[0])[0].read_bytes()
    ref = UTCDateTime(year=_get(buf, "nzyear"), julday=_get(buf, "nzjday"), hour=_get(buf, "nzhour"),
                      minute=_get(buf, "nzmin"), second=_get(buf, "nzsec"),
                      microsecond=1000 * _get(buf, "nzmsec"))
    assert sf.reference_ns == ref.ns
    assert sf.starttime_ns == ref.ns + round(float(np.float32(_get(buf, "b"))) * 1e9)
    assert sf.p_source == "picked" and abs(sf.p_time_ns - sf.starttime_ns - 5_000_000_000) < 2000


# ----------------------------------------------------------------- validation messages

@pytest.mark.parametrize("field, value, message", [
    ("nzsec", 1_800_000_000, "bad SAC header: nzsec=1.8e+09 outside 0..60"),
    ("nzyear", 1800, "bad SAC header: nzyear=1800 outside 1900..2200"),
    ("nzjday", 367, "bad SAC header: nzjday=367 outside 1..366"),
    ("nzmsec", 1000, "bad SAC header: nzmsec=1000 outside 0..999"),
    ("delta", 0.0, "bad SAC header: delta=0 outside"),
    ("delta", float("nan"), "bad SAC header: delta=nan outside"),
    ("b", float("nan"), "bad SAC header: b=nan outside"),
    ("t1", float("inf"), "bad SAC header: t1=inf outside"),
    ("npts", 0, "bad SAC header: npts=0 not > 0"),
    ("npts", 5002, "truncated SAC file"),
    ("npts", 5000, "oversized SAC file"),
    ("leven", 0, "bad SAC header: leven=0"),
    ("iftype", 2, "bad SAC header: iftype=2"),
    ("nvhdr", 7, "not a SAC v6 file: nvhdr=7"),
    ("kstnm", b"10\x0107", "bad SAC header: kstnm="),
])
def test_bad_header_field_is_named(demo_sac, field, value, message):
    buf = _set(bytearray(_sac_files(demo_sac[0])[0].read_bytes()), field, value)
    with pytest.raises(sac.SacError) as err:
        sac.from_bytes(buf)
    assert str(err.value).startswith(message), str(err.value)


def test_empty_and_short_files(tmp_path):
    (tmp_path / "e.sac").write_bytes(b"")
    with pytest.raises(sac.SacError, match="empty file"):
        sac.read(tmp_path / "e.sac")
    with pytest.raises(sac.SacError, match="shorter than the 632-byte header"):
        sac.from_bytes(b"SAC" * 10)
    with pytest.raises(sac.SacError, match="not a SAC v6 file"):
        sac.from_bytes(bytes(700))


def test_nzjday_366_only_in_leap_years(demo_sac):
    buf = _set(bytearray(_sac_files(demo_sac[0])[0].read_bytes()), "nzjday", 366)
    assert sac.from_bytes(_set(buf, "nzyear", 2016)).reference_ns > 0
    with pytest.raises(sac.SacError, match=r"nzjday=366 outside 1\.\.365 \(nzyear=2015\)"):
        sac.from_bytes(_set(buf, "nzyear", 2015))


# ----------------------------------------------------------------- regressions

def _live_vertical(demo_sac, k=0) -> Path:
    root, meta = demo_sac
    z = meta[(meta.channel == "DHZ") & ~meta.dead]
    return Path(z.path.iloc[k])


def test_corrupt_station_longitude_with_lcalda_does_not_hang(demo_sac, tmp_path):
    """ObsPy's SACTrace.read loops for ever in _normalize_longitude when stlo ~ 1e30 and lcalda
    is set; the reader never reads coordinates, so the trace is simply kept."""
    src = _live_vertical(demo_sac)
    buf = bytearray(src.read_bytes())
    _set(buf, "stlo", 1e30)
    _set(buf, "lcalda", 1)
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / src.name).write_bytes(buf)
    rj = Rejects()
    ev = _guarded(W.read_event, tmp_path / "ev", rejects=rj)
    assert len(rj) == 0 and len(ev.traces) == 1
    assert np.array_equal(ev.traces[0].data, sac.read(src).data)


def test_scrambled_nzsec_is_rejected(demo_sac, tmp_path):
    """ObsPy accepted nzsec = 1.8e9 (a start time 57 years off) as a valid trace."""
    src = _live_vertical(demo_sac)
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / src.name).write_bytes(_set(bytearray(src.read_bytes()), "nzsec", 1_800_000_000))
    rj = Rejects()
    ev = W.read_event(tmp_path / "ev", rejects=rj)
    df = rj.to_frame()
    assert ev.traces == [] and len(df) == 1
    assert df.reason[0] == "unreadable waveform file: SacError: bad SAC header: nzsec=1.8e+09 outside 0..60"


def test_pick_outside_trace_is_rejected_at_read(demo_sac, tmp_path):
    src = _live_vertical(demo_sac)
    buf = bytearray(src.read_bytes())
    b = _get(buf, "b")
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "late.SAC").write_bytes(_set(_set(bytearray(buf), "t1", b + 10.01), "kstnm", "L1"))
    (tmp_path / "ev" / "early.SAC").write_bytes(_set(_set(bytearray(buf), "t1", b - 0.01), "kstnm", "E1"))
    (tmp_path / "ev" / "edge.SAC").write_bytes(_set(_set(bytearray(buf), "t1", b + 9.99), "kstnm", "G1"))
    rj = Rejects()
    ev = W.read_event(tmp_path / "ev", rejects=rj)
    W.vertical_windows(ev, rj)
    reasons = dict(zip(rj.to_frame().file.str.split("/").str[-1], rj.to_frame().reason))
    assert [t.station for t in ev.traces] == ["G1"]            # inside the trace: kept, window rejects
    assert "P pick (picked) outside the trace: 10.010 s" in reasons["late.SAC"]
    assert "P pick (picked) outside the trace: -0.010 s" in reasons["early.SAC"]
    assert "P window" in reasons["edge.SAC"] and "outside the trace" in reasons["edge.SAC"]


# ----------------------------------------------------------------- fuzz corpus

TRACE, EITHER = "trace", "either"     # expected outcomes besides a reject regex


def _corpus(goods: list[bytes], rng) -> list[tuple[str, bytes, str]]:
    """(file name, bytes, expectation): TRACE = must yield a trace, EITHER = trace or reject,
    else a regex the file's reject reason must match."""
    out: list[tuple[str, bytes, str]] = []

    def add(tag, buf, expect, rename=True):
        i = len(out)
        buf = bytearray(buf)
        if rename and len(buf) >= 632:          # unique station: a kept copy is never a duplicate
            _set(buf, "kstnm", f"M{i:04d}")
        out.append((f"{i:04d}_{tag}.SAC", bytes(buf), expect))

    def mut(k, **fields):
        buf = bytearray(goods[k % len(goods)])
        for name, value in fields.items():
            _set(buf, name, value)
        return buf

    def rand_i32_outside(lo, hi, n):
        v = rng.integers(-2**31, 2**31, size=4 * n, dtype=np.int64)
        return [int(x) for x in v[(v < lo) | (v > hi)][:n]]

    def rand_f32(n):                            # arbitrary float32 bit patterns (NaN, inf, denormals...)
        return [float(x) for x in rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32).view(np.float32)]

    # the three good files, and big-endian copies of them: all must read
    for k, g in enumerate(goods):
        add("good", g, TRACE, rename=False)
        add("bigendian", _swap_endian(bytes(mut(k))), TRACE)
    # absurd coordinates (lcalda set, distances unset or kept): never read, so still good
    coords = ["stla", "stlo", "evla", "evlo", "stel", "stdp", "evdp", "dist", "az", "baz", "gcarc"]
    for j, name in enumerate(coords):
        for v in [1e30, -1e30, float("nan"), float("inf"), 3.4e38] + rand_f32(3):
            add(f"coord_{name}", mut(j, **{name: v, "lcalda": 1}), TRACE)
        add(f"coord_{name}_nodist", mut(j, **{name: 1e30, "lcalda": 1, "dist": -12345.0}), TRACE)
    # reference-time fields out of range
    for j, (name, (lo, hi)) in enumerate(sac.NZ_RANGES.items()):
        for v in [lo - 1, hi + 1, -12345, 1_800_000_000, -2**31, 2**31 - 1] + rand_i32_outside(lo, hi, 5):
            add(f"{name}", mut(j, **{name: v}), "bad SAC header: " + re.escape(f"{name}={v:.6g} outside"))
    add("nzjday_nonleap", mut(0, nzyear=2015, nzjday=366), r"nzjday=366 outside 1\.\.365")
    # npts
    n = (len(goods[0]) - 632) // 4
    for v in [0, -1, -12345, 1, n - 1, n + 1, 2 * n, 2**31 - 1] + rand_i32_outside(n, n, 5):
        add("npts", mut(0, npts=v), re.escape(f"npts={v:.6g}") + "|" + re.escape(f"npts={v} needs"))
    # delta 0 / NaN / negative / huge
    for v in [0.0, -0.002, float("nan"), float("inf"), -float("inf"), 1e30, 1e-9, -12345.0, 1e4]:
        add("delta", mut(1, delta=v), r"bad SAC header: delta=")
    # b
    for v in [float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 2e6]:
        add("b", mut(2, b=v), r"bad SAC header: b=")
    # t1 / t3 not finite or absurd: header error; outside the trace: P pick reject
    for v in [float("nan"), float("inf"), 1e30, -3e6]:
        add("t1_bad", mut(0, t1=v), r"bad SAC header: t1=")
        add("t3_bad", mut(1, t1=-12345.0, t3=v), r"bad SAC header: t3=")
    for k, g in enumerate(goods):
        b = _get(g, "b")
        for v in [b - 1.0, b - 0.01, b + 10.01, b + 50.0, 1e5, -1e5]:
            add("t1_outside", mut(k, t1=v), r"P pick \(picked\) outside the trace")
        add("t3_outside", mut(k, t1=-12345.0, t3=b + 20.0), r"P pick \(predicted\) outside the trace")
        add("no_pick", mut(k, t1=-12345.0, t3=-12345.0), r"no P pick")
    # header version, sample spacing, file type, codes
    for v in [0, 7, 1, -12345, 2**31 - 1, -1]:
        add("nvhdr", mut(0, nvhdr=v), r"not a SAC v6 file: nvhdr=")
    for v in [0, -12345, 2]:
        add("leven", mut(1, leven=v), r"bad SAC header: leven=")
    for v in [2, 3, 4, 5, -12345, 0]:
        add("iftype", mut(2, iftype=v), r"bad SAC header: iftype=")
    for raw in [b"\x00", b"\x01\x02", b"10\xff7", b"\x7f"]:
        buf = mut(0)
        off = 440 + 8 * HD.STRHDRS.index("kstnm")
        buf[off:off + len(raw)] = raw
        out.append((f"{len(out):04d}_kstnm_bytes.SAC", bytes(buf),
                    r"no station code" if raw == b"\x00" else r"bad SAC header: kstnm="))
    add("kstnm_unset", _set(mut(0), "kstnm", "-12345"), r"no station code", rename=False)
    # truncated / oversized / empty / random bytes
    g = goods[0]
    for cut in [1, 8, 100, 300, 631, 632, 633, 636, len(g) // 2, len(g) - 4, len(g) - 1]:
        add(f"truncated{cut}", g[:cut], r"truncated SAC file|shorter than the 632-byte header", rename=False)
    for extra in [b"\x00", b"\x00" * 4, b"\x00" * 4000]:
        add("oversized", bytes(g) + extra, r"oversized SAC file")
    add("empty", b"", r"empty file", rename=False)
    for size in rng.integers(1, 25_000, size=20):
        add("random", rng.bytes(int(size)), r"unreadable waveform file: SacError: ", rename=False)
    for _ in range(20):                             # random header that does say nvhdr = 6
        buf = bytearray(rng.bytes(len(g)))
        add("random_v6", _set(buf, "nvhdr", 6), r"unreadable waveform file: SacError: ", rename=False)
    # data problems
    for k in range(len(goods)):
        buf = mut(k)
        data = np.frombuffer(buf, "<f4", offset=632).copy()
        for tag, edit, expect in [("nan1", lambda d: d.__setitem__(100, np.nan), r"1 NaN/inf samples"),
                                  ("nanall", lambda d: d.fill(np.nan), r"NaN/inf samples"),
                                  ("inf", lambda d: d.__setitem__(-1, np.inf), r"1 NaN/inf samples"),
                                  ("zero", lambda d: d.fill(0.0), r"dead trace"),
                                  ("const", lambda d: d.fill(-3.5), r"dead trace")]:
            d = data.copy()
            edit(d)
            add(f"data_{tag}", bytes(buf[:632]) + d.astype("<f4").tobytes(), expect)
    # a few hundred random byte flips: header bytes (any field) and data bytes
    for _ in range(300):
        k = int(rng.integers(len(goods)))
        buf = _set(mut(k), "kstnm", f"M{len(out):04d}")     # unique station, then the flips
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, 632)) if rng.random() < 0.85 else int(rng.integers(632, len(buf)))
            buf[pos] ^= int(rng.integers(1, 256))
        out.append((f"{len(out):04d}_flip.SAC", bytes(buf), EITHER))
    return out


def _process(folder: Path):
    rj = Rejects()
    ev = W.read_event(folder, rejects=rj)
    meta, wins = W.vertical_windows(ev, rj)
    snip = W.snippets(ev, rejects=rj)
    return ev, meta, wins, snip, rj


def test_fuzz_corpus_never_hangs_and_every_bad_file_is_a_reject(demo_sac, tmp_path):
    goods = [_live_vertical(demo_sac, k).read_bytes() for k in (0, 7, 20)]
    corpus = _corpus(goods, np.random.default_rng(SEED))
    assert len(corpus) > 500 and len({name for name, _, _ in corpus}) == len(corpus)
    folder = tmp_path / "ev"
    folder.mkdir()
    for name, buf, _ in corpus:
        (folder / name).write_bytes(buf)

    ev, meta, wins, snip, rj = _guarded(_process, folder)

    df = rj.to_frame()
    assert (df.stage == "waveforms").all()
    # every failure is an explicit check: no exception other than SacError escaped a reader
    unexpected = df[df.reason.str.contains(r"\w+Error: ") & ~df.reason.str.contains("SacError: ")]
    assert unexpected.empty, unexpected.reason.tolist()[:5]
    by_file = df.assign(name=df.file.map(lambda f: Path(f).name)).groupby("name").reason.apply(list)
    traced = {Path(t.file).name for t in ev.traces}
    for name, _, expect in corpus:
        reasons = by_file.get(name, [])
        if expect == TRACE:
            assert name in traced, (name, reasons)
        elif expect == EITHER:
            assert name in traced or reasons, name
        else:
            assert name not in traced, name
            assert any(re.search(expect, r) for r in reasons), (name, expect, reasons)
    # the kept traces go all the way: windows and snippets for the good files and their copies
    n_good = sum(e == TRACE for _, _, e in corpus)
    assert len(meta) >= n_good and wins.shape[1] == W.WINDOW_LEN and np.isfinite(wins).all()
    assert len(snip) >= n_good
    assert {"good", "bigendian"} <= {Path(f).stem.split("_", 1)[1] for f in meta.file}
