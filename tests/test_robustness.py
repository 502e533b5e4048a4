"""The velocity-model robustness study (:mod:`pipeline.demo.robustness`): the statics and
perturbed-model rendering, a small end-to-end run against the demo build, the committed record
(its summary recomputed from its per-event rows, its per-event rows re-made from the code on a
few of its events) and the model-page panel (``dash_duo``), from a data folder's study and
from the committed record on a fresh demo build."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import store
from pipeline.demo import robustness as rb, scenario, waveforms as dw
from pipeline.mechanisms import focal


@pytest.fixture(scope="module")
def tables():
    return scenario.generate()


# --------------------------------------------------------------------------- the perturbation

def test_perturbed_model_by_hand():
    nominal = pd.DataFrame({"depth_km": [0.0, 1.0, 3.0, 5.0], "vp_km_s": [4.0, 4.5, 5.0, 6.0]})
    m = rb.perturbed_model(nominal, 0.95, 1.05, 3.0, 0.2)
    assert m["depth_km"].tolist() == pytest.approx([0.0, 1.2, 3.2, 5.2])
    assert m["vp_km_s"].tolist() == pytest.approx([3.8, 4.275, 5.25, 6.3])
    # the default perturbation of the demo model keeps velocities increasing (SKHASH would drop nodes)
    d = rb.perturbed_model()
    assert np.all(np.diff(d["vp_km_s"]) > 0) and len(d) == len(rb.NOMINAL_MODEL)
    with pytest.raises(ValueError):
        rb.perturbed_model(nominal, 1.2, 0.8, 3.0, 0.0)  # 4.5*1.2 = 5.4 > 5.0*0.8 = 4.0: inversion


def test_station_statics_seeded_and_scaled(tables):
    st = tables["stations"]
    a = rb.station_statics(st, 0.008, seed=1)
    b = rb.station_statics(st, 0.008, seed=1)
    c = rb.station_statics(st, 0.008, seed=2)
    assert a.equals(b) and not a.equals(c)
    assert len(a) == len(st) and np.all(np.abs(a["static_s"]) <= 3 * 0.008 + 1e-15)
    # a station's static does not depend on the other stations
    one = rb.station_statics(st.iloc[[5]], 0.008, seed=1)
    assert one["static_s"].iloc[0] == a["static_s"].iloc[5]
    assert 0.004 < a["static_s"].std() < 0.013


def _first_signal_sample(x: np.ndarray) -> np.ndarray:
    return np.array([np.flatnonzero(np.abs(r) > 0)[0] for r in x])


def test_statics_move_the_rendered_onset_not_the_pick(tables):
    quiet = dict(noise_scale=0.0, onset_jitter_sd=0.0, dead_fraction=0.0, dead_stations=[])
    base = dw.plan_waveforms(tables, max_events=2, **quiet)
    st = tables["stations"]
    # whole-sample statics, both signs (-8 samples is beyond the jitter margin the renderer used to assume)
    shift_samples = np.where(np.arange(len(st)) % 2 == 0, 5, -8)
    statics = pd.DataFrame({"network": st["network"], "station": st["station"],
                            "static_s": shift_samples / dw.SAMPLING_RATE})
    moved = dw.plan_waveforms(tables, max_events=2, statics=statics, **quiet)
    # the pick (p_time_s = SAC t1 = window centre) and the ray do not know the static
    for c in ("p_time_s", "takeoff_deg", "true_polarity", "p_z"):
        np.testing.assert_array_equal(moved[c].to_numpy(), base[c].to_numpy())
    per_row = np.tile(shift_samples, 2)
    np.testing.assert_allclose(moved["onset_shift_samples"] - base["onset_shift_samples"], per_row, atol=1e-9)
    np.testing.assert_allclose(moved["static_s"], per_row / dw.SAMPLING_RATE)
    assert np.all(base["static_s"] == 0)
    # rendered: without noise the first non-zero sample is the first one after the onset
    x0 = dw.render(base, 2400, 2700)[:, 0]
    x1 = dw.render(moved, 2400, 2700)[:, 0]
    np.testing.assert_array_equal(_first_signal_sample(x0), dw.P_SAMPLE + 1 - 2400)
    np.testing.assert_array_equal(_first_signal_sample(x1), dw.P_SAMPLE + 1 - 2400 + per_row)


def test_no_statics_is_the_default_rendering(tables):
    st = tables["stations"]
    zero = pd.DataFrame({"network": st["network"], "station": st["station"], "static_s": 0.0})
    m0, w0 = dw.generate_waveforms(tables, max_events=2)
    m1, w1 = dw.generate_waveforms(tables, max_events=2, statics=zero)
    np.testing.assert_array_equal(w0, w1)
    pd.testing.assert_frame_equal(m0, m1)


def test_velocity_model_sets_p_time_and_takeoff_by_hand(tables):
    """A one-layer model: straight rays, t = r / v, takeoff (from down) = 180 - atan(x / depth)."""
    from obspy.geodetics import gps2dist_azimuth
    v = 5.0
    plan = dw.plan_waveforms(tables, max_events=2, velocity_model=pd.DataFrame({"depth_km": [0.0], "vp_km_s": [v]}))
    x = np.array([gps2dist_azimuth(a, b, c, d)[0] / 1e3 for a, b, c, d in
                  zip(plan["ev_lat"], plan["ev_lon"], plan["st_lat"], plan["st_lon"])])
    z = plan["ev_depth_km"].to_numpy()
    r = np.hypot(x, z)
    np.testing.assert_allclose(plan["p_time_s"], r / v, rtol=1e-5)
    np.testing.assert_allclose(plan["takeoff_deg"], 180.0 - np.degrees(np.arctan2(x, z)), atol=1e-3)
    # the same model 5 % faster: times shrink by 1/1.05, every ray (takeoff) stays - why the study
    # perturbs the gradient and the interfaces rather than scaling all of Vp
    fast = dw.plan_waveforms(tables, max_events=2, velocity_model=pd.DataFrame({"depth_km": [0.0], "vp_km_s": [v * 1.05]}))
    np.testing.assert_allclose(fast["p_time_s"], r / (1.05 * v), rtol=1e-5)
    np.testing.assert_allclose(fast["takeoff_deg"], plan["takeoff_deg"], atol=1e-6)


def test_perturbed_demo_model_changes_rays(tables):
    nom = dw.plan_waveforms(tables, max_events=3)
    per = dw.plan_waveforms(tables, max_events=3, velocity_model=rb.perturbed_model())
    dto = np.abs(per["takeoff_deg"] - nom["takeoff_deg"])
    assert dto.median() > 1.0 and dto.max() < 20.0
    assert not np.allclose(per["p_time_s"], nom["p_time_s"])


def test_wilson_interval():
    lo, hi = rb.wilson(8, 10)
    # by hand: p = 0.8, z = 1.96
    z, n, p = 1.959963984540054, 10, 0.8
    c = (p + z * z / (2 * n)) / (1 + z * z / n)
    h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (lo, hi) == pytest.approx((c - h, c + h))
    assert rb.wilson(0, 5)[0] == 0.0 and rb.wilson(5, 5)[1] == 1.0
    assert all(np.isnan(rb.wilson(0, 0)))


# --------------------------------------------------------------------------- end to end

N_SMALL = 10


@pytest.fixture(scope="module")
def small_study(demo_data_dir):
    """The study on 10 of the events the session demo build gave waveforms (CNN only)."""
    base = store.resolve(demo_data_dir)
    computed = pd.read_parquet(base / "mechanisms.parquet")
    computed = computed[computed["source"] == "computed"]
    wf_events = sorted(pd.read_parquet(base / "truth_polarities.parquet")["event_id"].unique())
    ids = wf_events[:N_SMALL]
    res = rb.run_study(None, pickers=("cnn",), event_ids=ids, workers=1)
    return res, computed[computed["event_id"].isin(ids)], ids


def test_study_structure_and_counts(small_study):
    res, _, ids = small_study
    s = res["summary"]
    assert set(s["case"]) == set(rb.CASES) and set(s["picker"]) == {"cnn"}
    assert len(s) == 2 * 5 and list(s["quality"].iloc[:5]) == [*rb.QUALITIES, "all"]
    mech = res["mechanisms"]
    for case, g in s.groupby("case"):
        m = mech[mech["case"] == case]
        allrow = g[g["quality"] == "all"].iloc[0]
        assert allrow["n_events"] == N_SMALL
        assert allrow["n"] == len(m) == g[g["quality"] != "all"]["n"].sum()
        assert allrow["n"] + allrow["n_unsolved"] == N_SMALL
        for q in rb.QUALITIES:
            r = g[g["quality"] == q].iloc[0]
            k = m.loc[m["quality"] == q, "truth_kagan"].to_numpy()
            assert r["n"] == len(k) and r["within_20"] == int(np.sum(k <= 20))
            if len(k):
                assert r["median_kagan"] == pytest.approx(np.median(k))
                assert r["ci_low"] <= r["share_within_20"] <= r["ci_high"]
    # Kagan to truth recomputed from the true mechanisms of the scenario
    truth = scenario.generate()["truth_events"].set_index("event_id")
    t = truth.loc[mech["event_id"]]
    np.testing.assert_allclose(mech["truth_kagan"], focal.kagan_angle(
        tuple(mech[c].to_numpy(float) for c in ("strike", "dip", "rake")),
        tuple(t[c].to_numpy(float) for c in ("strike", "dip", "rake"))), atol=1e-6)
    pol = res["polarity"]
    assert len(pol) == 2 and (pol["n_picked"] > 0).all() and (pol["n_wrong"] <= pol["n_picked"]).all()
    assert res["settings"]["n_events"] == N_SMALL and res["settings"]["event_ids"] == [str(e) for e in ids]
    assert res["geometry"]["takeoff_change_deg_median"] > 0
    # the JSON round trip the page reads
    doc = json.loads(json.dumps(rb.to_json(res)))
    assert doc["kind"] == "velocity_model_robustness" and len(doc["summary"]) == len(s)


def test_matched_case_reproduces_the_demo_build(small_study):
    """The matched case is the demo build's own pipeline: same picks, same SKHASH inputs, so
    the same mechanisms (and Kagan angles to the truth) for the same events."""
    res, computed, _ = small_study
    m = res["mechanisms"].query("case == 'matched'").set_index("event_id").sort_index()
    c = computed.set_index("event_id").sort_index()
    assert list(m.index) == list(c.index)
    for col in ("strike", "dip", "rake", "n_polarities"):
        np.testing.assert_allclose(m[col].to_numpy(float), c[col].to_numpy(float), atol=1e-6)
    assert list(m["quality"]) == list(c["quality"])
    np.testing.assert_allclose(m["truth_kagan"], c["truth_kagan"], atol=1e-6)


# --------------------------------------------------------------------------- the model page

@pytest.fixture(scope="module")
def robustness_dir(demo_data_dir, small_study, tmp_path_factory):
    d = tmp_path_factory.mktemp("robust_page") / "data"
    shutil.copytree(demo_data_dir, d, symlinks=True)
    rb.write(small_study[0], d / rb.RESULT_FILE)
    return d


def test_model_page_shows_the_panel(dash_duo, robustness_dir):
    from pagetools import start_app, wait
    from selenium.webdriver.common.by import By
    start_app(dash_duo, robustness_dir, "/model")
    panel = wait(lambda: dash_duo.driver.find_element(By.ID, "model-robustness"), 40, "robustness panel")
    assert "What a wrong velocity model costs" in panel.text
    caption = panel.find_element(By.CSS_SELECTOR, ".fm-robustness-caption").text
    assert f"{N_SMALL} demo events" in caption and "200 m deeper" in caption and "σ = 8 ms" in caption
    source = panel.find_element(By.CSS_SELECTOR, ".fm-robustness-source").text
    assert "this data folder's study" in source and rb.read(robustness_dir / rb.RESULT_FILE)["made_at"][:10] in source
    cells = wait(lambda: panel.find_elements(By.CSS_SELECTOR, "td[data-dash-column='quality']"), 40, "table rows")
    assert [c.text for c in cells] == [*rb.QUALITIES, "all solved"]
    n_all = int(small_study_n(robustness_dir))
    assert panel.find_elements(By.CSS_SELECTOR, "td[data-dash-column='n_matched']")[-1].text == str(n_all)


def small_study_n(data_dir) -> int:
    doc = rb.read(data_dir / rb.RESULT_FILE)
    s = doc["summary"]
    return int(s[(s["case"] == "matched") & (s["quality"] == "all")]["n"].iloc[0])


def test_model_page_says_how_to_make_it(demo_data_dir, monkeypatch, tmp_path):
    """Without a study in the data folder and without the committed record the panel says
    which command writes it (server side: the layout)."""
    from components.data import get_provider
    from pagetools import page_module
    from pipeline.demo import robustness_record
    monkeypatch.setattr(robustness_record, "RECORD", tmp_path / "absent.json")   # read_for_page's module
    _, model = page_module(demo_data_dir, "pages.model")
    panel = model._robustness_panel(get_provider().data_dir)
    text = json.dumps(panel.to_plotly_json(), default=lambda o: o.to_plotly_json() if hasattr(o, "to_plotly_json") else str(o))
    assert "python -m pipeline robustness" in text and "fm-robustness-missing" in text


def test_the_page_reads_the_study_without_the_study_code():
    """The model page reads the study through :mod:`pipeline.demo.robustness_record`, which
    imports neither the demo scenario, the waveform synthesis nor SciPy (a fresh process), and
    :mod:`pipeline.demo.robustness` re-exports the same functions."""
    import subprocess
    import sys
    code = ("import sys; from pipeline.demo import robustness_record as r; r.read_for_page('.'); "
            "print(sorted(m for m in ('scipy', 'pipeline.demo.scenario', 'pipeline.demo.waveforms', "
            "'pipeline.demo.robustness') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    from pipeline.demo import robustness_record
    assert rb.read is robustness_record.read and rb.read_for_page is robustness_record.read_for_page
    assert rb.RECORD == robustness_record.RECORD and rb.CASES == robustness_record.CASES


# --------------------------------------------------------------------------- the committed record

@pytest.fixture(scope="module")
def record():
    """The committed record as plain JSON (not through :func:`rb.read`: checked independently)."""
    assert rb.RECORD.is_file(), f"{rb.RECORD} is missing: make robustness writes it"
    return json.loads(rb.RECORD.read_text())


def test_record_is_the_default_study_of_the_committed_cnn(record):
    st = record["settings"]
    assert record["kind"] == "velocity_model_robustness" and record["version"] == 2
    assert st["n_events"] == rb.DEFAULTS["events"] and st["seed"] == rb.DEFAULTS["seed"]
    assert st["scenario_seed"] == rb.DEFAULTS["scenario_seed"] and st["pickers"] == list(rb.DEFAULTS["pickers"])
    assert st["perturbation"] == {k: rb.DEFAULTS[k] for k in ("shallow_factor", "deep_factor", "split_km",
                                                               "depth_shift_km", "statics_sigma_s", "statics_clip_sigma")}
    assert record["command"].startswith("python -m pipeline robustness")
    # made with the committed weights (their sha256, computed here)
    import hashlib
    from pipeline.picking.pickers.cnn import DEFAULT_WEIGHTS
    assert st["weights"]["sha256"] == hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    # one row per case x picker x event, the same events in every case: the seeded choice of 200
    ev = pd.DataFrame(record["events"])
    assert len(ev) == len(rb.CASES) * len(st["pickers"]) * st["n_events"]
    chosen = dw.select_events(scenario.generate(st["scenario_seed"]), st["seed"], st["n_events"])
    for _, g in ev.groupby(["case", "picker"]):
        assert sorted(g["event_id"]) == sorted(chosen["event_id"])


def test_record_summary_recomputes_from_its_event_rows(record):
    """Every number of ``summary``, ``polarity``, ``unsolved`` and ``paired`` from the per-event
    rows, by hand (numpy), to the record's 6 stored digits."""
    ev = pd.DataFrame(record["events"])
    summary = pd.DataFrame(record["summary"]).set_index(["case", "picker", "quality"])
    pol = pd.DataFrame(record["polarity"]).set_index(["case", "picker"])
    uns = pd.DataFrame(record["unsolved"])
    for (case, picker), g in ev.groupby(["case", "picker"]):
        solved = g[g["solved"]]
        assert solved["truth_kagan"].notna().all() and g.loc[~g["solved"], "truth_kagan"].isna().all()
        for q in (*rb.QUALITIES, "all"):
            k = (solved if q == "all" else solved[solved["quality"] == q])["truth_kagan"].to_numpy(float)
            r = summary.loc[(case, picker, q)]
            assert r["n"] == len(k) and r["n_events"] == len(g) and r["n_unsolved"] == int((~g["solved"]).sum())
            assert r["within_20"] == int(np.sum(k <= 20.0))
            if len(k):
                assert r["median_kagan"] == pytest.approx(np.median(k), abs=2e-6)
                assert r["p90_kagan"] == pytest.approx(np.percentile(k, 90), abs=2e-6)
                assert r["share_within_20"] == pytest.approx(np.mean(k <= 20.0), abs=1e-6)
            else:
                assert r["median_kagan"] is None or np.isnan(r["median_kagan"])
        p = pol.loc[(case, picker)]
        assert p["n_picked"] == g["n_inverted"].sum() and p["n_wrong"] == g["n_wrong"].sum()
        assert p["share_wrong"] == pytest.approx(g["n_wrong"].sum() / g["n_inverted"].sum(), abs=1e-6)
        mine = g.loc[~g["solved"], "reason"].value_counts().to_dict()
        theirs = uns[(uns["case"] == case) & (uns["picker"] == picker)].set_index("reason")["n"].to_dict()
        assert mine == theirs
    for r in record["paired"]:
        g = ev[(ev["picker"] == r["picker"]) & ev["solved"]]
        a = g[g["case"] == "matched"].set_index("event_id")
        b = g[g["case"] == "perturbed"].set_index("event_id")
        both = sorted(set(a.index) & set(b.index))
        d = b.loc[both, "truth_kagan"].to_numpy(float) - a.loc[both, "truth_kagan"].to_numpy(float)
        assert r["n_both"] == len(both) and r["n_worse_5"] == int(np.sum(d >= 5)) and r["n_better_5"] == int(np.sum(d <= -5))
        assert r["median_change_deg"] == pytest.approx(np.median(d), abs=2e-6)
        assert r["n_quality_changed"] == int(np.sum(a.loc[both, "quality"].to_numpy() != b.loc[both, "quality"].to_numpy()))


N_REPRODUCE = (3, 2)   # solved, unsolved events (matched case) of the record re-made from the code


def test_record_event_rows_reproduce_from_the_code(record):
    """The study re-run here on a few of the record's events (the first solved and unsolved
    ones in the matched case) gives the record's per-event rows for them, in both cases: the
    rendering, picking and SKHASH are per event and seeded per event, so a subset run and the
    200-event run agree. Same SKHASH engine as the record (Fortran and Python differ by < 1 deg)."""
    from pipeline.mechanisms import skhash
    st = record["settings"]
    engine = st["skhash_engine"]
    if engine == "fortran" and not skhash.fortran_available():
        pytest.skip("the record was made with SKHASH's Fortran grid search, not built here (make fortran)")
    ev = pd.DataFrame(record["events"])
    m = ev[(ev["case"] == "matched") & (ev["picker"] == st["pickers"][0])].sort_values("event_id")
    ids = sorted(m[m["solved"]]["event_id"].head(N_REPRODUCE[0]).tolist()
                 + m[~m["solved"]]["event_id"].head(N_REPRODUCE[1]).tolist())
    res = rb.run_study(None, st["seed"], scenario_seed=st["scenario_seed"], pickers=tuple(st["pickers"]),
                       event_ids=ids, workers=1, use_fortran=engine == "fortran")
    mine = res["events"].set_index(["case", "picker", "event_id"]).sort_index()
    theirs = ev[ev["event_id"].isin(ids)].set_index(["case", "picker", "event_id"]).sort_index()
    assert list(mine.index) == list(theirs.index)
    for c in ("solved", "quality", "n_inverted", "n_wrong", "reason"):
        assert mine[c].tolist() == theirs[c].tolist(), c
    for c in ("truth_kagan", "strike", "dip", "rake", "n_polarities", "polarity_misfit"):
        np.testing.assert_allclose(mine[c].to_numpy(float), theirs[c].to_numpy(float), atol=2e-6, err_msg=c)


def test_model_page_shows_the_committed_record(dash_duo, demo_data_dir, record):
    """A fresh demo build has no study of its own: the page shows the committed record and
    says so (source, date, command), with its numbers."""
    from pagetools import start_app, wait
    from selenium.webdriver.common.by import By
    assert not (demo_data_dir / rb.RESULT_FILE).exists()
    start_app(dash_duo, demo_data_dir, "/model")
    panel = wait(lambda: dash_duo.driver.find_element(By.ID, "model-robustness"), 40, "robustness panel")
    assert "What a wrong velocity model costs" in panel.text
    source = panel.find_element(By.CSS_SELECTOR, ".fm-robustness-source").text
    assert f"committed record pipeline/models/{rb.RESULT_FILE}" in source and record["made_at"][:10] in source
    assert "make robustness" in source and record["command"] in source
    caption = panel.find_element(By.CSS_SELECTOR, ".fm-robustness-caption").text
    assert f"{record['settings']['n_events']} demo events" in caption
    cells = wait(lambda: panel.find_elements(By.CSS_SELECTOR, "td[data-dash-column='quality']"), 40, "table rows")
    assert [c.text for c in cells] == [*rb.QUALITIES, "all solved"]
    ev = pd.DataFrame(record["events"])
    for case in rb.CASES:
        n = int(ev[(ev["case"] == case) & ev["solved"]]["event_id"].nunique())
        assert panel.find_elements(By.CSS_SELECTOR, f"td[data-dash-column='n_{case}']")[-1].text == str(n)


def test_cli_registers_the_command():
    from pipeline.__main__ import parser
    args = parser().parse_args(["robustness", "--events", "5", "--pickers", "cnn,onset", "--statics-ms", "12",
                                "--data-dir", "somewhere"])
    assert args.func is rb.run and args.events == 5 and args.pickers == "cnn,onset"
    assert args.statics_ms == 12 and args.data_dir == "somewhere" and args.depth_shift_km == 0.2
