"""Browser tests of the polarity-model page (``/model``, ``dash_duo``, headless Chromium) and
its server-side paths.

Data: a copy of the session demo build with ``model_eval`` computed by
:func:`pipeline.picking.evaluate.run` (the build does not write it yet), the same copy without it
(empty state), and a ToC2ME build made once per session through the CLI
(:func:`tests.test_evaluate.toc2me_eval_build`; skipped without the shared data).
"""
from __future__ import annotations

import argparse
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select

from components import model_figures as mf
from components.data import DataProvider
from components.filters import Filters, format_time
from pagetools import no_console_errors, start_app, wait
from pipeline import tables
from pipeline.picking import evaluate as E
from queries import model as mq

TIMEOUT = 40


def _start(dash_duo, data_dir, path: str = "/model"):
    return start_app(dash_duo, data_dir, path)


def _wait(predicate, timeout=TIMEOUT, message="condition"):
    """:func:`pagetools.wait` with this module's longer default timeout."""
    return wait(predicate, timeout, message)


def _metrics_pickers(dash_duo) -> list[str]:
    return [td.text for td in dash_duo.driver.find_elements(
        By.CSS_SELECTOR, "#model-metrics td[data-dash-column='picker']")]


def _graph_traces(dash_duo, gid) -> int:
    return dash_duo.driver.execute_script(
        f"const gd = document.querySelector('#{gid} .js-plotly-plot');"
        "return gd && gd._fullData ? gd._fullData.length : 0;")


GRAPHS = ("model-curves", "model-confusion", "model-calibration", "model-training")


def _pushed_margins(dash_duo, gid) -> dict:
    """Sides where Plotly's automargin made the drawn figure's margin wider than the one the
    figure asks for (``_fullLayout._size`` vs ``layout.margin``, px): each such push lays the
    figure out again (a second draw). Empty when the figure's margins hold its labels."""
    return dash_duo.driver.execute_script(
        f"const gd = document.querySelector('#{gid} .js-plotly-plot');"
        "const out = {}; for (const k of ['l', 'r', 't', 'b']) {"
        "  if (gd._fullLayout._size[k] > gd.layout.margin[k]) out[k] = [gd.layout.margin[k], gd._fullLayout._size[k]]; }"
        "return out;")


@pytest.fixture(scope="module")
def demo_eval_dir(demo_data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("model_demo") / "data"
    shutil.copytree(demo_data_dir, d)
    assert E.run(argparse.Namespace(data_dir=str(d), input=None, record=None, dry_run=False)) == 0
    return d


@pytest.fixture(scope="module")
def demo_no_eval_dir(demo_data_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("model_demo_empty") / "data"
    shutil.copytree(demo_data_dir, d)
    tables.table_path(d, "model_eval").unlink(missing_ok=True)
    return d


@pytest.fixture(scope="module")
def toc2me_eval_dir(tmp_path_factory, toc2me_dir):
    from tests.test_evaluate import toc2me_eval_build
    return toc2me_eval_build(tmp_path_factory, toc2me_dir)


@pytest.fixture(scope="module")
def provider(demo_eval_dir):
    return DataProvider(demo_eval_dir)


def _mid_date(provider) -> str:
    o = provider.filter_options()
    return f"{o['time_min'] + (o['time_max'] - o['time_min']) / 2:%Y-%m-%d}"


# -- page tests -------------------------------------------------------------------------------------
def test_demo_page_loads_with_clean_console(dash_duo, demo_eval_dir, provider):
    # the window the figures' margins are sized for (components.model_figures.PAGE_WIDTHS)
    start_app(dash_duo, demo_eval_dir, "/model", window_size=(1400, 900))
    rows = mq.model_eval(provider)
    want = mf.metrics_table(rows, "demo_truth")["picker"].tolist()
    assert want == ["CNN (ours)", "Onset baseline"]
    _wait(lambda: _metrics_pickers(dash_duo) == want, message="metrics table")
    assert "evalset=demo_truth" in dash_duo.driver.current_url                     # default set on the demo
    cards = dash_duo.find_element(".fm-model-card-truth").text
    assert "DEMO GROUND TRUTH" in cards.upper()
    assert mf.fmt_pct(mf.metric(rows, "cnn", "demo_truth", "accuracy")) in cards
    for gid in GRAPHS:
        _wait(lambda: _graph_traces(dash_duo, gid) > 0, message=f"{gid} figure")
    # every label fits the figure's own margins: each figure is drawn once (issue 12)
    assert {gid: _pushed_margins(dash_duo, gid) for gid in GRAPHS} == {gid: {} for gid in GRAPHS}
    n = len(mq.agreement(provider, Filters()))
    _wait(lambda: f"{n:,} events with polarities" in dash_duo.find_element("#model-agreement-caption").text,
          message="per-event caption")
    assert "reported by the authors" in dash_duo.find_element(".fm-reported").text.lower()
    assert "polarity model" == dash_duo.find_element(".fm-navbar .nav-link.active").get_attribute(
        "textContent").lower()
    time.sleep(0.5)
    no_console_errors(dash_duo, "SEVERE")


def test_evalset_and_picker_change_update_panels_and_url(dash_duo, demo_eval_dir, provider):
    _start(dash_duo, demo_eval_dir)
    _wait(lambda: _metrics_pickers(dash_duo) == ["CNN (ours)", "Onset baseline"], message="metrics table")
    label = [e for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#model-evalset label")
             if e.text.startswith("Held-out")][0]
    dash_duo.driver.execute_script("arguments[0].click()", label)
    want = mf.metrics_table(mq.model_eval(provider), "loeo_heldout")["picker"].tolist()
    _wait(lambda: _metrics_pickers(dash_duo) == want, message="LOEO metrics")
    _wait(lambda: mf.dataset_label("loeo_heldout") in dash_duo.find_element("#model-evalset-note").text,
          message="note")
    _wait(lambda: "evalset=loeo_heldout" in dash_duo.driver.current_url, message="URL evalset")
    Select(dash_duo.find_element("#model-picker")).select_by_value("onset")
    _wait(lambda: "picker=onset" in dash_duo.driver.current_url, message="URL picker")
    _wait(lambda: "Onset baseline:" in dash_duo.find_element("#model-agreement-caption").text,
          message="per-event table of the onset picker")
    no_console_errors(dash_duo, "SEVERE")


def test_url_restores_state_and_filters_drive_the_agreement_table(dash_duo, demo_eval_dir, provider):
    end = _mid_date(provider)
    f = Filters.from_values(time_end=end)
    _start(dash_duo, demo_eval_dir, f"/model{f.to_search()}&evalset=loeo_heldout&picker=onset")
    _wait(lambda: mf.dataset_label("loeo_heldout") in dash_duo.find_element("#model-evalset-note").text,
          message="note")
    checked = dash_duo.driver.execute_script(
        "return Array.from(document.querySelectorAll('#model-evalset input')).filter(i => i.checked)"
        ".map(i => i.value)")
    assert checked == ["loeo_heldout"]
    assert Select(dash_duo.find_element("#model-picker")).first_selected_option.get_attribute("value") == "onset"
    assert dash_duo.find_element(".fm-time-end").get_attribute("value") == format_time(f.time_end, end=True)
    n_all = len(mq.agreement(provider, Filters(), "onset"))
    n = len(mq.agreement(provider, f, "onset"))
    assert 0 < n < n_all
    _wait(lambda: f"{n:,} events with polarities" in dash_duo.find_element("#model-agreement-caption").text,
          message="filtered per-event table")
    # widening the filter brings every event back; the page keys stay in the URL
    box = dash_duo.find_element(".fm-time-end")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE, Keys.ENTER)
    _wait(lambda: f"{n_all:,} events with polarities" in dash_duo.find_element("#model-agreement-caption").text,
          message="unfiltered per-event table")
    _wait(lambda: "end=" not in dash_duo.driver.current_url and "evalset=loeo_heldout" in dash_duo.driver.current_url,
          message="URL keeps the page keys")
    # an empty selection: a message, not a blank table
    box.send_keys("2000-01-01", Keys.ENTER)
    _wait(lambda: "No event with polarities matches" in dash_duo.find_element("#model-agreement-caption").text,
          message="empty selection message")
    no_console_errors(dash_duo, "SEVERE")


def test_metrics_csv_download_is_the_table_shown(dash_duo, demo_eval_dir, provider):
    _start(dash_duo, demo_eval_dir)
    _wait(lambda: _metrics_pickers(dash_duo) == ["CNN (ours)", "Onset baseline"], message="metrics table")
    dash_duo.driver.execute_script("arguments[0].click()", dash_duo.find_element("#model-metrics-csv"))
    path = Path(dash_duo.download_path) / "polarity_metrics_demo_truth.csv"
    _wait(lambda: path.exists() and path.stat().st_size > 0, message="downloaded CSV")
    got = pd.read_csv(path)
    want = mf.metrics_table(mq.model_eval(provider), "demo_truth")
    assert list(got.columns) == list(want.columns)
    assert got["picker"].tolist() == want["picker"].tolist()
    pd.testing.assert_series_equal(got["accuracy"], want["accuracy"].astype(float), check_names=False)
    no_console_errors(dash_duo, "SEVERE")


def test_toc2me_page(dash_duo, toc2me_eval_dir):
    # the window the figures' margins are sized for (components.model_figures.PAGE_WIDTHS)
    start_app(dash_duo, toc2me_eval_dir, "/model", window_size=(1400, 900))
    rows = mq.model_eval(DataProvider(toc2me_eval_dir))
    _wait(lambda: _metrics_pickers(dash_duo) == mf.metrics_table(rows, "loeo_heldout")["picker"].tolist(),
          message="metrics table")
    manual = dash_duo.find_element(".fm-model-card-manual").text
    assert "50/50" in manual and "optimistic" in manual.lower()
    ref = dash_duo.find_element(".fm-model-card-reference").text
    assert "held-out" in ref.lower()
    # nested held-out accuracy with its 95 % Wilson interval and the sample size, said plainly
    g = lambda n: mf.metric(rows, "cnn", "loeo_heldout", n)  # noqa: E731
    assert mf.fmt_pct(g("accuracy")) in ref and mf.fmt_ci(g("accuracy_ci_low"), g("accuracy_ci_high")) in ref
    assert "118 labelled traces of 2 events" in ref and "nested" in ref
    # the fully nested numbers (inner models that never saw the held-out event), labelled as such
    full = lambda n: mf.metric(rows, "cnn", "loeo_heldout_full_nested", n)  # noqa: E731
    from pipeline.picking.evaluate import default_full_record
    if default_full_record() is not None:
        assert "fully nested" in ref and f"{int(full('n_correct'))}/{int(full('n_decided'))}" in ref
        assert mf.share_text(rows, "cnn", "loeo_heldout_full_nested", "coverage") in ref
    cells = dash_duo.driver.execute_script(
        "return [...document.querySelectorAll('#model-metrics td[data-dash-column=\"accuracy_ci\"]')]"
        ".map(td => td.innerText)")
    assert mf.fmt_ci(g("accuracy_ci_low"), g("accuracy_ci_high")) in cells
    # the reference's log beside ours
    _wait(lambda: _graph_traces(dash_duo, "model-training") >= 6, message="training curves")
    names = dash_duo.driver.execute_script(
        "return document.querySelector('#model-training .js-plotly-plot')._fullData.map(t => t.name)")
    assert "reference: val loss" in names and "ours: fine-tuning (real + synthetic)" in names
    for gid in GRAPHS:
        _wait(lambda: _graph_traces(dash_duo, gid) > 0, message=f"{gid} figure")
    assert {gid: _pushed_margins(dash_duo, gid) for gid in GRAPHS} == {gid: {} for gid in GRAPHS}
    # per-event table links to the event page
    _wait(lambda: dash_duo.driver.find_elements(By.CSS_SELECTOR, "#model-agreement a[href='/event/20161104064824.680']"),
          message="event link")
    caption = dash_duo.find_element("#model-agreement-caption").text
    assert re.search(r"vs manual (49|50)/50 matched", caption), caption
    # the other evaluation sets
    for label, ds in (("Manual picks", "manual50"), ("Reference's confident outputs", "reference_confident")):
        el = [e for e in dash_duo.driver.find_elements(By.CSS_SELECTOR, "#model-evalset label") if e.text == label][0]
        dash_duo.driver.execute_script("arguments[0].click()", el)
        want = mf.metrics_table(rows, ds)["picker"].tolist()
        _wait(lambda: _metrics_pickers(dash_duo) == want, message=f"{ds} metrics")
    _wait(lambda: "in-sample" in dash_duo.find_element("#model-evalset-note").text, message="in-sample warning")
    time.sleep(0.5)
    no_console_errors(dash_duo, "SEVERE")


def test_empty_state_without_model_eval(dash_duo, demo_no_eval_dir):
    _start(dash_duo, demo_no_eval_dir)
    alert = _wait(lambda: dash_duo.find_element(".fm-model-empty"), message="empty-state message")
    assert "python -m pipeline evaluate" in alert.text
    assert not dash_duo.driver.find_elements(By.CSS_SELECTOR, ".fm-model-card")
    # the per-event table reads the polarities and still works
    _wait(lambda: "events with polarities" in dash_duo.find_element("#model-agreement-caption").text,
          message="per-event table")
    time.sleep(0.5)
    no_console_errors(dash_duo, "SEVERE")


# -- server side (no browser) -----------------------------------------------------------------------
def test_page_state_and_server_paths(demo_eval_dir, provider):
    from app import create_app

    app = create_app(demo_eval_dir)
    import pages.model as pm

    assert pm.page_state("evalset=%27;DROP&picker=<script>", ["manual50", "loeo_heldout"], ["cnn", "onset"]) == {
        "evalset": "manual50", "picker": "cnn"}
    assert pm.page_state("", ["loeo_heldout", "demo_truth"])["evalset"] == "demo_truth"
    assert pm.page_query({"evalset": "manual50", "picker": "onset"}) == "evalset=manual50&picker=onset"
    with app.server.app_context():
        data, curves, conf, cal, note = pm.build_evalset("evalset=demo_truth&picker=cnn")
        assert [r["picker"] for r in data] == ["CNN (ours)", "Onset baseline"]
        df = pm.agreement_frame("", "picker=onset")
        assert list(df.columns) == list(mq.AGREEMENT_COLUMNS)
        assert int(df["truth_both"].sum()) == mf.metric(mq.model_eval(provider), "onset", "demo_truth", "n_decided")
    client = app.server.test_client()
    assert client.get("/model?evalset=%00&picker=%27").status_code == 200


def test_warm_up_builds_what_the_first_load_shows(demo_eval_dir, demo_no_eval_dir):
    """app.py's warm-up leaves the default evaluation set's figures and the training figure in
    the page's cache, the same figures the page then serves; nothing without model_eval."""
    from app import create_app

    app = create_app(demo_eval_dir)
    import pages.model as pm

    provider = app.server.extensions["fm_provider"]
    pm._FIGURE_CACHE.clear()
    pm.warm_up(provider)
    rows = mq.model_eval(provider)
    assert pm.default_evalset(mf.available_datasets(rows)) == "demo_truth"
    keys = {key for _, key in pm._FIGURE_CACHE}
    assert keys == {"curves:demo_truth", "confusion:demo_truth", "calibration:demo_truth", "training"}
    with app.server.app_context():
        _, curves, conf, cal, _ = pm.build_evalset("evalset=demo_truth&picker=cnn")
    want = {"curves": mf.curves_figure(rows, "demo_truth"), "confusion": mf.confusion_figure(rows, "demo_truth"),
            "calibration": mf.calibration_figure(rows, "demo_truth")}
    for name, served in (("curves", curves), ("confusion", conf), ("calibration", cal)):
        assert [(t["type"], t.get("name")) for t in served["data"]] == [(t.type, t.name) for t in want[name].data]
        assert served["layout"]["margin"] == want[name].layout.margin.to_plotly_json(), name
    empty = create_app(demo_no_eval_dir)
    pm._FIGURE_CACHE.clear()
    pm.warm_up(empty.server.extensions["fm_provider"])
    assert pm._FIGURE_CACHE == {}


def test_provider_model_eval_is_parameterised(provider):
    rows = mq.model_eval(provider, dataset="demo_truth", kind=["metric", "confusion"])
    assert set(rows["dataset"]) == {"demo_truth"} and set(rows["kind"]) == {"metric", "confusion"}
    assert mq.model_eval(provider, model="x' OR '1'='1").empty
    assert mq.model_eval(provider, model=[]).empty
    assert len(mq.model_eval(provider)) == len(pd.read_parquet(provider.path("model_eval")))
