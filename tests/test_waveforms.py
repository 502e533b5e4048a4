"""Event waveforms: P alignment of the 600-sample window, t1/t3 fallback, SNR, rejects."""
import warnings

import numpy as np
import pandas as pd
import pytest

from pipeline.picking import waveforms as W
from pipeline.rejects import Rejects

EVENTS = ("20161104064824.680", "20161125051408.940")
T0 = "2016-11-04T06:48:20.990000Z"


@pytest.fixture(scope="module")
def shared_events(toc2me_waveforms_dir):
    rj = Rejects()
    evs = list(W.iter_events(toc2me_waveforms_dir / "waveforms", EVENTS, rj))
    return evs, rj


def _trace(data, rate=500.0, sta="9999", cha="DHZ", start=T0, **sac):
    import obspy
    from obspy.core.util import AttribDict
    tr = obspy.Trace(np.asarray(data, dtype=np.float32))
    tr.stats.network, tr.stats.station, tr.stats.location, tr.stats.channel = "5B", sta, "00", cha
    tr.stats.sampling_rate = rate
    tr.stats.starttime = obspy.UTCDateTime(start)
    tr.stats.sac = AttribDict(sac)
    return tr


def _write(tr, path, fmt="SAC"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tr.write(str(path), format=fmt)
    return path


def _step(n=5001, k=2500, rng=None):
    rng = rng or np.random.default_rng(0)
    x = 0.01 * rng.normal(size=n)
    x[k:] += 1.0
    return x


# ----------------------------------------------------------------- window index arithmetic

def test_window_constants():
    assert W.WINDOW_LEN == 600 and W.P_INDEX == 299
    assert round(W.PRE_P_S * W.TARGET_RATE) == W.P_INDEX
    assert round((W.PRE_P_S + W.POST_P_S) * W.TARGET_RATE) + 1 == W.WINDOW_LEN


@pytest.mark.parametrize("frac", [0.0, 0.3, -0.3, 0.49])
def test_step_lands_at_index_299(tmp_path, frac):
    """A step at sample 2500 with P picked at that sample (+- a fraction) sits at index 299."""
    x = np.zeros(5001)
    x[:2500] = np.linspace(-1e-3, 1e-3, 2500)  # not flat, not clipped
    x[2500:] = 1.0 + np.linspace(0, 1e-3, 2501)
    (tmp_path / "ev").mkdir()
    _write(_trace(x, t1=(2500 + frac) / 500.0), tmp_path / "ev" / "5B.9999.DHZ.SAC")
    ev = W.read_event(tmp_path / "ev")
    w = W.p_window(ev.traces[0])
    assert w.dtype == np.float32 and w.shape == (600,)
    assert w[299] >= 1.0 and w[298] < 0.01
    assert np.argmax(np.diff(w)) + 1 == 299


def test_window_start_rounds_like_obspy_trim():
    assert W.window_start(2500.0) == 2201
    assert W.window_start(2499.52) == 2201      # nearest sample, as trim(nearest_sample=True)
    assert W.window_start(2499.4) == 2200
    assert W.window_start(2500.5) == 2202       # halves away from zero


def test_shared_windows_match_reference_trim(shared_events):
    """The reference took samples 2201..2800 (4.402-5.600 s after trace start)."""
    import obspy
    evs, _ = shared_events
    n = 0
    for ev in evs:
        meta, wins = W.vertical_windows(ev)
        assert wins.shape == (68, 600) and wins.dtype == np.float32
        for rec, w in zip(ev.vertical(), wins):
            assert W.round_half_away(rec.p_offset) == 2500
            assert np.array_equal(w, rec.data[2201:2801])
            tr = obspy.Trace(rec.data.copy(), header={"starttime": rec.starttime, "sampling_rate": 500.0})
            tr.trim(rec.p_time - 0.598, rec.p_time + 0.6)
            assert np.array_equal(tr.data, w)
            n += 1
    assert n == 136


# ----------------------------------------------------------------- P pick sources

def test_t1_then_t3_fallback(tmp_path):
    ev_dir = tmp_path / "ev"
    ev_dir.mkdir()
    x = _step()
    _write(_trace(x, sta="1001", t1=5.0, t3=4.9), ev_dir / "a.SAC")
    _write(_trace(x, sta="1002", t3=5.0), ev_dir / "b.SAC")
    _write(_trace(x, sta="1003"), ev_dir / "c.SAC")
    rj = Rejects()
    ev = W.read_event(ev_dir, rejects=rj)
    src = {t.station: t.p_source for t in ev.traces}
    assert src == {"1001": "picked", "1002": "predicted"}
    assert abs(ev.traces[0].p_offset - 2500) < 1e-6          # t1 wins over t3
    df = rj.to_frame()
    assert len(df) == 1 and "no P pick" in df.reason[0] and df.file[0].endswith("c.SAC")


def test_shared_pick_sources(shared_events):
    evs, rj = shared_events
    counts = [pd.Series([t.p_source for t in ev.vertical()]).value_counts().to_dict() for ev in evs]
    # README 4: 52/17 and 62/7 picked/predicted, minus the dead station (predicted) of each
    assert counts == [{"picked": 52, "predicted": 16}, {"picked": 62, "predicted": 6}]


def test_picks_table_and_miniseed(tmp_path):
    """MiniSEED has no pick header: the CSV picks table supplies P (and wins over SAC)."""
    import obspy
    ev_dir = tmp_path / "ev"
    ev_dir.mkdir()
    x = _step(k=2600)
    _write(_trace(x, sta="2001"), ev_dir / "2001.mseed", fmt="MSEED")
    _write(_trace(x, sta="2002", t1=3.0), ev_dir / "2002.SAC")
    p = obspy.UTCDateTime(T0) + 2600 / 500.0
    (ev_dir / "picks.csv").write_text(
        "network,station,channel,p_time,p_source\n"
        f"5B,2001,DHZ,{p.isoformat()}Z,picked\n"
        f"5B,2002,,{p.isoformat()}Z\n"
        "5B,2003,DHZ,not-a-time\n")
    rj = Rejects()
    ev = W.read_event(ev_dir, rejects=rj)
    assert [t.station for t in ev.traces] == ["2001", "2002"]
    for t in ev.traces:
        w = W.p_window(t)
        assert np.argmax(np.diff(w)) + 1 == 299
    assert (rj.to_frame().reason.str.contains("bad pick row")).sum() == 1


def test_resampled_trace_keeps_p(tmp_path):
    """1000 Hz data are resampled (polyphase FIR, zero phase): a pulse at P stays at 299."""
    ev_dir = tmp_path / "ev"
    ev_dir.mkdir()
    t = np.arange(10001) / 1000.0
    x = np.exp(-0.5 * ((t - 5.0) / 0.003) ** 2)     # 3 ms Gaussian centred on P
    _write(_trace(x, rate=1000.0, t1=5.0), ev_dir / "a.SAC")
    ev = W.read_event(ev_dir)
    rec = ev.traces[0]
    assert rec.original_rate == 1000.0 and rec.data.size == 5001
    w = W.p_window(rec)
    assert np.argmax(w) == 299 and w[298] == pytest.approx(w[300], abs=1e-3)


# ----------------------------------------------------------------- SNR

def test_snr_reproduces_original(toc2me_waveforms_dir, shared_events):
    ref = pd.read_csv(toc2me_waveforms_dir / "picks/snr/SNR_event_waveform_toc2me_me_2.csv",
                      dtype={"Event_ID": str, "Station_ID": str})
    ref = ref.set_index(["Event_ID", "Station_ID"])["SNR"]
    evs, _ = shared_events
    n = 0
    for ev in evs:
        meta, _ = W.vertical_windows(ev)
        for st, snr in zip(meta.station, meta.snr):
            assert snr == pytest.approx(ref[(ev.event_id, st)], rel=1e-6)
            n += 1
    assert n == 136
    # the two dead stations carry 0 in the original file, as snr_samples gives
    assert ref[("20161104064824.680", "1113")] == 0 and ref[("20161125051408.940", "1176")] == 0
    assert W.snr_samples(np.zeros(5001, np.float32), 2500) == 0.0


def test_snr_windows_are_inclusive():
    """[P-0.5, P+0.5] = samples 2250..2750 (501), noise = 0..2250 (2251), as ObsPy trim."""
    x = np.zeros(5001, np.float32)
    x[2750] = 1.0                      # last sample of the signal window counts
    x[100] = 1.0
    sig = np.std(x[2250:2751])
    noise = np.std(x[:2251])
    assert W.snr_samples(x, 2500) == pytest.approx(sig / noise)


def test_snr_all_negative_trace_bug():
    """Regression (analyses.md 5.17): max(x) == 0 missed constant negative traces."""
    const_neg = np.full(5001, -3.0, np.float32)
    assert W.is_dead(const_neg) and W.snr_samples(const_neg, 2500) == 0.0
    live_nonpos = -np.abs(np.random.default_rng(1).normal(size=5001)).astype(np.float32)
    live_nonpos[0] = 0.0               # max(x) == 0 but the trace is alive
    assert not W.is_dead(live_nonpos)
    assert W.snr_samples(live_nonpos, 2500) > 0


# ----------------------------------------------------------------- rejects

def test_bad_traces_are_rejects_and_never_stop_the_event(tmp_path):
    ev_dir = tmp_path / "ev"
    ev_dir.mkdir()
    good = _step()
    _write(_trace(good, sta="1000", t1=5.0), ev_dir / "good.SAC")
    _write(_trace(good, sta="1000", t1=5.0), ev_dir / "good_copy.SAC")              # duplicate
    raw = _write(_trace(good, sta="1001", t1=5.0), ev_dir / "trunc.SAC").read_bytes()
    (ev_dir / "trunc.SAC").write_bytes(raw[: len(raw) // 2])                          # truncated
    (ev_dir / "corrupt.SAC").write_bytes(b"\x00garbage" * 20)                         # corrupt
    (ev_dir / "empty.SAC").write_bytes(b"")
    _write(_trace(good, sta="1002"), ev_dir / "nopick.SAC")                           # no P
    _write(_trace(good, sta="1003", rate=100.0, t1=5.0), ev_dir / "lowrate.SAC")     # 100 Hz
    _write(_trace(good, sta="1004", rate=311.7, t1=5.0), ev_dir / "oddrate.SAC")     # no simple ratio
    _write(_trace(np.zeros(5001), sta="1005", t1=5.0), ev_dir / "zero.SAC")          # dead
    _write(_trace(np.full(5001, -2.0), sta="1006", t1=5.0), ev_dir / "neg.SAC")      # dead, negative
    nan = good.copy()
    nan[100] = np.nan
    _write(_trace(nan, sta="1007", t1=5.0), ev_dir / "nan.SAC")                       # NaN
    clip = good * 3
    clip = np.clip(clip, -10, 2.0)
    _write(_trace(clip, sta="1008", t1=5.0), ev_dir / "clip.SAC")                     # clipped
    _write(_trace(good, sta="1009", t1=9.9), ev_dir / "late.SAC")                     # window off the end
    rj = Rejects()
    ev = W.read_event(ev_dir, rejects=rj)
    meta, wins = W.vertical_windows(ev, rj)
    assert list(meta.station) == ["1000"] and wins.shape == (1, 600)
    reasons = dict(zip(rj.to_frame().file.str.split("/").str[-1], rj.to_frame().reason))
    assert set(reasons) == {"good_copy.SAC", "trunc.SAC", "corrupt.SAC", "empty.SAC", "nopick.SAC",
                            "lowrate.SAC", "oddrate.SAC", "zero.SAC", "neg.SAC", "nan.SAC",
                            "clip.SAC", "late.SAC"}
    assert "duplicate" in reasons["good_copy.SAC"]
    assert "unreadable" in reasons["trunc.SAC"] and "unreadable" in reasons["corrupt.SAC"]
    assert "no P pick" in reasons["nopick.SAC"]
    assert "below the minimum" in reasons["lowrate.SAC"]
    assert "not a simple fraction" in reasons["oddrate.SAC"]
    assert "dead" in reasons["zero.SAC"] and "dead" in reasons["neg.SAC"]
    assert "NaN" in reasons["nan.SAC"]
    assert "clipped" in reasons["clip.SAC"]
    assert "outside the trace" in reasons["late.SAC"]
    assert set(rj.to_frame().stage) == {"waveforms"}


def test_bad_event_never_stops_the_batch(tmp_path):
    (tmp_path / "ev1").mkdir()
    _write(_trace(_step(), t1=5.0), tmp_path / "ev1" / "a.SAC")
    (tmp_path / "ev2").mkdir()
    _write(_trace(_step(), t1=5.0), tmp_path / "ev2" / "a.SAC")
    (tmp_path / "ev2" / "picks.csv").write_text("wrong,header\n")     # the whole event fails
    rj = Rejects()
    meta, wins = W.read_batch(tmp_path, ["ev0_missing", "ev2", "ev1"], rj)
    assert list(meta.event_id) == ["ev1"] and wins.shape == (1, 600)
    files = list(rj.to_frame().file)
    assert "ev0_missing" in files and "ev2" in files


def test_shared_dead_stations_rejected(shared_events):
    evs, rj = shared_events
    df = rj.to_frame()
    assert len(df) == 6 and df.reason.str.contains("dead").all()
    assert sorted(set(df.file.str.extract(r"5B\.(\d+)\.")[0])) == ["1113", "1176"]
    # no live shared trace is flagged as clipped (the check is conservative)
    for ev in evs:
        assert not any(W.is_clipped(t.data) for t in ev.traces)


# ----------------------------------------------------------------- snippets

def test_snippets_three_components(shared_events):
    evs, _ = shared_events
    df = W.snippets(evs[0])
    assert len(df) == 204 and set(df.channel) == {"DHZ", "DH1", "DH2"}
    assert list(df.columns) == list(W.WAVEFORMS_COLUMNS)
    s = df.samples.iloc[0]
    assert s.dtype == np.float32 and s.size == 401
    rec = evs[0].traces[0]
    assert np.array_equal(s, rec.data[2300:2701])                     # P (sample 2500) at index 200
    assert df.t0_s.between(-0.401, -0.399).all() and (df.sampling_rate == 500.0).all()
    import pyarrow as pa
    tbl = pa.Table.from_pandas(df, schema=W.waveforms_arrow_schema(), preserve_index=False)
    assert tbl.schema.field("samples").type == pa.list_(pa.float32())
    from pipeline import schema
    if "waveforms" in schema.TABLES:                 # the data contract's required columns
        assert set(schema.table("waveforms").column_names) <= set(df.columns)
