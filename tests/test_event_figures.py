"""Figure builders and the station table of the event page (components/event_figures.py),
without a browser."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from components import event_figures as ef

EID = "20200101000000.000"


def _table(rows: list[dict]) -> pd.DataFrame:
    """A station table (the columns :func:`ef.station_table` returns) from a few fields."""
    base = {c: np.nan for c in ef.STATION_COLUMNS}
    base.update(reversed=False, ray="skhash", has_waveform=True, auto_method="cnn", reviewer=None, reviewed_at=None,
                polarity_source="cnn", agreement=None)
    out = []
    for i, r in enumerate(rows):
        d = dict(base, network="XX", station=f"S{i:02d}", **r)
        d["key"] = f"{d['network']}.{d['station']}"
        out.append(d)
    df = pd.DataFrame(out, columns=ef.STATION_COLUMNS)
    df["agreement"] = df["agreement"].astype(object)
    return df


def _stations_trace(fig):
    return fig.data[ef.BALL_TRACES["stations"]]


# -- projection of stations --------------------------------------------------------------------
def test_upgoing_station_due_north_plots_south():
    """analyses.md 1.9: takeoff 30 deg from UP (SKHASH) at azimuth 0 -> lower-hemisphere point
    at azimuth 180, r = sqrt(2) sin(15 deg)."""
    t = _table([{"azimuth_deg": 0.0, "takeoff_deg": 30.0, "polarity": 1.0}])
    fig = ef.mechanism_figure(None, t)
    tr = _stations_trace(fig)
    x, y = tr.x[0], tr.y[0]
    assert x == pytest.approx(0.0, abs=1e-4)
    assert y == pytest.approx(-math.sqrt(2) * math.sin(math.radians(15)), abs=1e-4)
    assert list(tr.customdata) == ["XX.S00"]


@pytest.mark.parametrize("takeoff_up, az, want_az, i_deg", [
    (120.0, 90.0, 90.0, 60.0),     # down-going: stays at its azimuth, i = 180 - takeoff
    (60.0, 45.0, 225.0, 60.0),     # up-going: opposite azimuth, i = takeoff
    (90.0, 0.0, 0.0, 90.0),        # horizontal: on the primitive circle (either side)
    (179.0, 10.0, 10.0, 1.0),      # nearly straight down: near the centre
])
def test_station_projection_conventions(takeoff_up, az, want_az, i_deg):
    t = _table([{"azimuth_deg": az, "takeoff_deg": takeoff_up, "polarity": -1.0}])
    s = ef.station_marker_style(t)
    r = math.sqrt(2) * math.sin(math.radians(i_deg / 2))
    x, y = s["x"][0], s["y"][0]
    assert math.hypot(x, y) == pytest.approx(r, abs=1e-4)
    if i_deg < 90:
        assert math.degrees(math.atan2(x, y)) % 360 == pytest.approx(want_az, abs=0.05)


def test_polarity_symbols_and_agreement_colours():
    t = _table([
        {"azimuth_deg": 10, "takeoff_deg": 120, "polarity": 1.0, "agreement": True},
        {"azimuth_deg": 20, "takeoff_deg": 120, "polarity": -1.0, "agreement": True},
        {"azimuth_deg": 30, "takeoff_deg": 120, "polarity": 1.0, "agreement": False},
        {"azimuth_deg": 40, "takeoff_deg": 120, "polarity": -1.0, "agreement": False},
        {"azimuth_deg": 50, "takeoff_deg": 120, "polarity": np.nan},
        {"azimuth_deg": 60, "takeoff_deg": 120, "polarity": 0.0},
        {"azimuth_deg": 70, "takeoff_deg": np.nan, "polarity": 1.0},       # no ray: not drawn
    ])
    s = ef.station_marker_style(t, current="XX.S03")
    assert s["keys"] == [f"XX.S0{i}" for i in range(6)]
    # filled = up (fill in the agreement colour), open = down (white fill, coloured edge)
    assert s["symbol"][:4] == ["circle"] * 4
    assert s["color"][:4] == [ef.AGREE, "white", ef.DISAGREE, "white"]
    assert s["line_color"][1] == ef.AGREE and s["line_color"][3] == ef.DISAGREE
    assert s["symbol"][4:] == ["x-thin", "x-thin"]  # not used / undetermined
    assert (s["ring_x"][0], s["ring_y"][0]) == (s["x"][3], s["y"][3])
    fig = ef.mechanism_figure({"strike": 0, "dip": 90, "rake": 0}, t, current="XX.S03")
    tr = _stations_trace(fig)
    assert list(tr.marker.symbol) == s["symbol"] and list(tr.marker.color) == s["color"]
    ring = fig.data[ef.BALL_TRACES["ring"]]
    assert (ring.x[0], ring.y[0]) == (s["x"][3], s["y"][3])


def test_no_mechanism_still_draws_stations_and_a_note():
    t = _table([{"azimuth_deg": 10, "takeoff_deg": 100, "polarity": 1.0}])
    fig = ef.mechanism_figure(None, t, note="not solved by SKHASH")
    assert len(fig.data) == len(ef.BALL_TRACES)
    assert len(fig.data[ef.BALL_TRACES["compression"]].x) == 0
    assert len(_stations_trace(fig).x) == 1
    assert any("not solved" in a.text for a in fig.layout.annotations)
    assert fig.layout.meta["has_mechanism"] is False


@pytest.mark.parametrize("n, cap, drawn", [(7, 150, 7), (40, 150, 40), (300, 150, 150), (0, 150, 0)])
def test_acceptable_planes_count(n, cap, drawn):
    rng = np.random.default_rng(1)
    acc = pd.DataFrame({"event_id": EID, "strike": rng.uniform(0, 360, n), "dip": rng.uniform(10, 90, n),
                        "rake": rng.uniform(-180, 180, n)})
    fig = ef.mechanism_figure({"strike": 30, "dip": 80, "rake": 170}, _table([]), acc, max_planes=cap)
    lines = fig.data[ef.BALL_TRACES["acceptable"]]
    n_lines = int(np.isnan(np.asarray(lines.y, dtype=float)).sum()) if n else 0
    assert n_lines == 2 * drawn  # both nodal planes of every acceptable mechanism drawn
    assert fig.layout.meta["planes_drawn"] == drawn and fig.layout.meta["planes_total"] == n
    nodal = fig.data[ef.BALL_TRACES["nodal"]]
    assert int(np.isnan(np.asarray(nodal.y, dtype=float)).sum()) == 2


def _inside(px, py, x, y) -> bool:
    """Ray casting point-in-polygon (polygon = x/y arrays with None separators, any part)."""
    inside = False
    xs = [np.nan if v is None else v for v in x]
    ys = [np.nan if v is None else v for v in y]
    for i in range(len(xs) - 1):
        x1, y1, x2, y2 = xs[i], ys[i], xs[i + 1], ys[i + 1]
        if not all(map(np.isfinite, (x1, y1, x2, y2))):
            continue
        if (y1 > py) != (y2 > py) and px < x1 + (py - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@pytest.mark.parametrize("mech", [(25.6, 88.7, 177.8), (195.0, 50.0, 120.0), (10.0, 30.0, -90.0)])
def test_predicted_polarity_matches_drawn_quadrants(mech):
    """Independent check (pyrocko style): a station whose predicted first motion is up lies
    inside the drawn compressional patches, and vice versa, for up- and down-going rays."""
    rng = np.random.default_rng(7)
    n = 80
    tk = rng.uniform(2, 178, n)
    az = rng.uniform(0, 360, n)
    m = dict(zip(("strike", "dip", "rake"), mech))
    pred = ef.predicted_polarity(m, tk, az)
    t = _table([{"azimuth_deg": a, "takeoff_deg": k, "polarity": p} for a, k, p in zip(az, tk, pred)])
    fig = ef.mechanism_figure(m, t)
    comp = fig.data[ef.BALL_TRACES["compression"]]
    st = _stations_trace(fig)
    checked = 0
    for x, y, p in zip(st.x, st.y, pred):
        # skip points within ~1 deg of a nodal plane (polygon discretisation)
        if abs(float(np.hypot(x, y))) > 0.99:
            continue
        checked += 1
        assert _inside(x, y, comp.x, comp.y) == (p > 0)
    assert checked > 50


# -- the station table -------------------------------------------------------------------------
@pytest.fixture
def stations():
    return pd.DataFrame({"network": "XX", "station": ["A", "B", "C", "D", "E"], "lat": [0.01, 0.0, -0.01, 0.0, 0.02],
                         "lon": [0.0, 0.01, 0.0, -0.01, 0.02], "reversed": [True, False, False, False, False]})


def _pol(rows):
    df = pd.DataFrame(rows, columns=["station", "method", "polarity", "snr", "prob_down_recorded"])
    return df.assign(event_id=EID, network="XX", p_source=None)


def test_station_table_used_polarity_follows_select_polarities(stations):
    pol = _pol([
        ("A", "cnn", 1, 5.0, 1.0), ("A", "manual", -1, np.nan, np.nan),   # manual overrides the picker
        ("B", "cnn", -1, 1.5, 0.0),                                        # SNR <= 2: not used
        ("C", "cnn", 1, 9.0, 0.99), ("C", "manual", 1, np.nan, np.nan),
        ("D", "cnn", -1, 4.0, 0.01), ("D", "onset", 1, 4.0, 0.0),           # best picker (cnn) only
    ])
    reviewed = pd.DataFrame({"event_id": EID, "network": "XX", "station": ["C", "E"], "method": "manual",
                             "polarity": [0, -1], "p_source": "review", "reviewer": ["ann", "bob"],
                             "updated_at": ["t1", "t2"], "snr": np.nan, "prob_down_recorded": np.nan})
    rays = ef.station_rays(stations, None, {"lat": 0.0, "lon": 0.0, "depth_km": 3.0}, None)
    t = ef.station_table(stations, pol, reviewed, rays, ["XX.A", "XX.B", "XX.C", "XX.D"], None).set_index("key")
    assert t.loc["XX.A", "polarity"] == -1 and t.loc["XX.A", "polarity_source"] == "manual"
    assert np.isnan(t.loc["XX.B", "polarity"]) and t.loc["XX.B", "auto_polarity"] == -1
    assert np.isnan(t.loc["XX.C", "polarity"])               # reviewed 0 removes the station
    assert t.loc["XX.C", "reviewed_polarity"] == 0 and t.loc["XX.C", "reviewer"] == "ann"
    assert t.loc["XX.D", "polarity"] == -1 and t.loc["XX.D", "auto_method"] == "cnn"
    assert t.loc["XX.E", "polarity"] == -1 and t.loc["XX.E", "polarity_source"] == "review"
    assert bool(t.loc["XX.A", "reversed"]) and not t.loc["XX.E", "has_waveform"]
    # sorted by azimuth: A (north, 0) B (east, 90) C (south, 180) D (west, 270); E at 45
    assert list(t.index) == ["XX.A", "XX.E", "XX.B", "XX.C", "XX.D"]
    assert t["agreement"].isna().all()  # no mechanism to compare with


def test_station_rays_keep_skhash_rays_and_trace_the_others(stations):
    from pipeline.mechanisms import raytrace
    from pipeline.mechanisms.skhash import DEMO_VELOCITY_MODEL

    used = pd.DataFrame({"network": ["XX"], "station": ["B"], "takeoff_deg": [33.3], "azimuth_deg": [91.0],
                         "distance_km": [1.1]})
    rays = ef.station_rays(stations, used, {"lat": 0.0, "lon": 0.0, "depth_km": 3.0}, DEMO_VELOCITY_MODEL)
    r = rays.set_index("station")
    assert (r.loc["B", "takeoff_deg"], r.loc["B", "azimuth_deg"], r.loc["B", "ray"]) == (33.3, 91.0, "skhash")
    assert r.loc["A", "ray"] == "model"
    assert r.loc["A", "azimuth_deg"] == pytest.approx(0.0, abs=0.01)
    want = raytrace.skhash_table_takeoff(3.0, [r.loc["A", "distance_km"]], velocity_model=DEMO_VELOCITY_MODEL)
    assert r.loc["A", "takeoff_deg"] == pytest.approx(float(want[0]))
    assert r.loc["A", "takeoff_deg"] < 90  # stations at the surface: up-going from 3 km


def test_agreement_against_a_mechanism(stations):
    rays = ef.station_rays(stations, None, {"lat": 0.0, "lon": 0.0, "depth_km": 3.0}, None)
    rays["takeoff_deg"] = 60.0  # up-going rays
    mech = {"strike": 0.0, "dip": 90.0, "rake": 0.0}
    pred = ef.predicted_polarity(mech, rays["takeoff_deg"], rays["azimuth_deg"])
    pol = _pol([(s, "manual", int(p), np.nan, np.nan) for s, p in zip(rays["station"], pred)])
    pol.loc[pol["station"] == "E", "polarity"] *= -1
    t = ef.station_table(stations, pol, None, rays, [], mech).set_index("station")
    assert t.loc["E", "agreement"] is False
    assert all(t.loc[s, "agreement"] is True for s in "ABCD" if np.isfinite(t.loc[s, "predicted"]))


# -- waveforms ---------------------------------------------------------------------------------
def _waves(keys_samples, fs=500.0, t0=-0.2):
    return pd.DataFrame([{"event_id": EID, "network": k.split(".")[0], "station": k.split(".")[1], "channel": "DHZ",
                          "t0_s": t0, "sampling_rate": fs, "samples": np.asarray(s, dtype=np.float32)}
                         for k, s in keys_samples])


def _step(n=200, at=100, sign=1.0):
    x = np.zeros(n)
    x[at:] = sign
    return x


def test_waveform_true_motion_flips_reversed_stations_only():
    t = _table([{"azimuth_deg": 10, "takeoff_deg": 50, "polarity": 1.0, "reversed": True},
                {"azimuth_deg": 20, "takeoff_deg": 50, "polarity": -1.0, "reversed": False}])
    w = _waves([("XX.S00", _step(sign=-1.0)), ("XX.S01", _step(sign=-1.0))])  # both recorded going down
    true = ef.waveform_figure(w, t, mode="true")
    rec = ef.waveform_figure(w, t, mode="recorded")
    after = lambda tr, i: np.asarray(tr.y, dtype=float)[150] - (-i)  # noqa: E731 - amplitude after P
    assert after(true.data[0], 0) > 0 and after(true.data[1], 1) < 0   # reversed station shown going up
    assert after(rec.data[0], 0) < 0 and after(rec.data[1], 1) < 0
    assert true.layout.meta["keys"] == ["XX.S00", "XX.S01"]
    assert true.data[0].line.color == ef.POL_COLORS[1] and true.data[1].line.color == ef.POL_COLORS[-1]
    assert true.data[0].x0 == pytest.approx(-0.2) and true.data[0].dx == pytest.approx(1 / 500)
    with pytest.raises(ValueError):
        ef.waveform_figure(w, t, mode="upside-down")


def test_waveform_order_current_highlight_and_side_labels():
    t = _table([{"azimuth_deg": 5, "takeoff_deg": 50, "polarity": 1.0, "prob_down_recorded": 0.02, "snr": 7.25},
                {"azimuth_deg": 90, "takeoff_deg": 50, "polarity": np.nan, "reviewed_polarity": 0.0},
                {"azimuth_deg": 200, "takeoff_deg": 50, "polarity": -1.0}])  # no waveform
    w = _waves([("XX.S01", _step()), ("XX.S00", _step())])
    fig = ef.waveform_figure(w, t, current="XX.S01")
    assert fig.layout.meta["keys"] == ["XX.S00", "XX.S01"]  # table (azimuth) order
    assert fig.data[1].line.width == 2.0 and fig.data[0].line.width == 1.0
    assert fig.data[1].line.color == ef.NO_POL_COLOR
    band = fig.layout.shapes[1]
    assert (band.y0, band.y1) == (-1.5, -0.5)
    assert "p↓rec 0.02" in fig.layout.annotations[0].text and "SNR 7.2" in fig.layout.annotations[0].text
    assert "✎" in fig.layout.annotations[1].text
    st = ef.waveform_styles(t, ["XX.S00", "XX.S01"], "XX.S00")
    assert st["current_index"] == 0 and st["widths"] == [2.0, 1.0]


def test_recorded_view_labels_and_colours_follow_the_drawn_traces():
    """Rough edge 4 (issue 12): in the 'as recorded' view the traces flipped but the arrows
    and colours stayed in true-motion terms. Now the drawn first motion, its colour and its
    arrow agree in both views, and a reversed station also states its true sense."""
    t = _table([{"azimuth_deg": 10, "takeoff_deg": 50, "polarity": 1.0, "reversed": True},
                {"azimuth_deg": 20, "takeoff_deg": 50, "polarity": -1.0, "reversed": False}])
    w = _waves([("XX.S00", _step(sign=-1.0)), ("XX.S01", _step(sign=-1.0))])  # both recorded going down
    for mode in ("true", "recorded"):
        fig = ef.waveform_figure(w, t, mode=mode)
        for i, tr in enumerate(fig.data[:2]):
            drawn = np.sign(np.asarray(tr.y, dtype=float)[150] - (-i))     # first motion as drawn
            label = fig.layout.annotations[i].text
            assert tr.line.color == ef.POL_COLORS[int(drawn)], (mode, i)
            assert label.startswith(f"<b>{ef.ARROWS[int(drawn)]}</b>"), (mode, i, label)
            assert ef.ARROWS[int(drawn)] in tr.hovertemplate.split("polarity ")[1][:2]
        rec_label = fig.layout.annotations[0].text
        assert ("true ↑" in rec_label) == (mode == "recorded")   # the reversed one says its true sense
        assert "true" not in fig.layout.annotations[1].text        # a normal station needs no note
    st = ef.waveform_styles(t, ["XX.S00", "XX.S01"], None, "recorded")
    assert st["colors"] == [ef.POL_COLORS[-1], ef.POL_COLORS[-1]]


def test_empty_waveforms_say_so():
    fig = ef.waveform_figure(_waves([]).reindex(columns=["network", "station", "t0_s", "sampling_rate", "samples"]),
                             _table([]))
    assert any("no waveforms" in a.text for a in fig.layout.annotations)


def test_dead_trace_stays_flat():
    t = _table([{"azimuth_deg": 5, "takeoff_deg": 50, "polarity": np.nan}])
    fig = ef.waveform_figure(_waves([("XX.S00", np.zeros(200))]), t, band=(5, 100))
    assert np.allclose(np.asarray(fig.data[0].y, dtype=float), 0.0)


def test_bandpass_is_zero_phase_and_validated():
    fs = 500.0
    n = 600
    x = np.zeros(n)
    x[300] = 1.0
    y = ef.bandpass(x, fs, 5, 100)
    assert int(np.argmax(np.abs(y))) == 300             # zero phase: the peak does not move
    assert np.allclose(y[:300][::-1][:250], y[301:551], atol=1e-6)  # symmetric impulse response
    for lo, hi in [(0, 100), (100, 50), (5, 250), (5, 400), ("a", 10), (float("nan"), 10)]:
        with pytest.raises(ValueError):
            ef.parse_bandpass(lo, hi, fs)
    assert ef.parse_bandpass("5", "100", fs) == (5.0, 100.0)
    # a 3rd-order Butterworth: a 50 Hz sine passes, 1 Hz and 200 Hz are attenuated
    t = np.arange(2000) / fs
    amp = {f: np.abs(ef.bandpass(np.sin(2 * np.pi * f * t), fs, 10, 100)[500:1500]).max() for f in (1, 50, 200)}
    assert amp[50] > 0.95 and amp[1] < 0.05 and amp[200] < 0.1


def test_comparison_figure_and_csv_frame():
    fig = ef.comparison_figure([{"label": "published", "strike": 10, "dip": 80, "rake": 170},
                                {"label": "computed", "strike": 12, "dip": 82, "rake": 172, "subtitle": "Q A"},
                                {"label": "re-inverted", "subtitle": "not solved"}])
    assert [a.text.split("<br>")[0] for a in fig.layout.annotations] == [
        "<b>published</b>", "<b>computed</b>", "<b>re-inverted</b>"]
    t = _table([{"azimuth_deg": 5, "takeoff_deg": 50, "polarity": 1.0, "predicted": 1.0, "agreement": True}])
    csv = ef.station_csv_frame(t, EID, "computed")
    assert list(csv.columns) == ["event_id", *ef.CSV_COLUMNS, "mechanism"]
    assert csv["polarity"].tolist() == [1] and csv["event_id"].tolist() == [EID]
