"""Every page on a user's own experiment (``--source files``), which lacks what ToC2ME and
demo builds always have (issue 9: "Events without waveforms still appear on every catalogue
page. Wells, stages and injection are optional: pages without them say so and keep working").

Two builds of a small project exported from the demo (``conftest.files_project_dir``: 187
events, waveforms of 5, every ``cluster`` null, empty ``wells``/``stages``/``injection``):

* ``files_data_dir``: published mechanisms from the QuakeML plus a few computed ones;
* ``files_bare_data_dir``: no velocity model and no focal mechanisms, so no mechanism at all.

Browser tests (``dash_duo``, headless Chromium) in the style of the page tests: each page
opens without a server error, says plainly what is missing, counts events without
waveforms, and ends with no browser console errors.
"""
from __future__ import annotations

import importlib
import re
import shutil
import time
import tomllib

import pandas as pd
import pytest

from components import wells_figures as wf
from components.data import DataProvider
from components.filters import Filters
from pagetools import no_console_errors, page_module, plotly_js, start_app, wait
from pipeline.tables import read_table
from queries import model as mq

BUILDS = ("files_data_dir", "files_bare_data_dir")


@pytest.fixture(scope="module", params=BUILDS)
def build(request) -> dict:
    """One of the two builds with what the tests compare against."""
    d = request.getfixturevalue(request.param)
    p = DataProvider(d)
    events = read_table(d, "events")
    mech = read_table(d, "mechanisms")
    waves = set(read_table(d, "waveforms", columns=["event_id"])["event_id"])
    assert events["cluster"].isna().all() and 0 < len(waves) < len(events)
    for t in ("wells", "stages", "injection"):
        assert len(read_table(d, t)) == 0, t
    # the default mechanism population: one mechanism per event among the quality-A ones
    # (the build has computed mechanisms of events that also have a published one: an event
    # is not counted twice)
    n_default = int(mech.loc[mech["quality"] == "A", "event_id"].nunique())
    return {"name": request.param, "dir": d, "project": request.getfixturevalue("files_project_dir"), "provider": p, "n_events": len(events), "n_mech": n_default,
            "n_mech_events": n_default, "n_mech_rows": len(mech),
            "with_waves": sorted(waves)[0], "without_waves": sorted(set(events["event_id"]) - waves)[0]}


def _open(dash_duo, path: str):
    dash_duo.wait_for_page(url=dash_duo.server_url + path)


def _text(dash_duo, selector: str = "body") -> str:
    return dash_duo.find_element(selector).text


def _clean(dash_duo):
    """The page shows no traceback or no-data message and the console logged nothing."""
    body = _text(dash_duo)
    assert "Traceback" not in body and "No data yet" not in body
    time.sleep(0.3)
    no_console_errors(dash_duo)


def _counts(dash_duo) -> dict:
    """{'events': matched, 'mechanisms': matched} from the filter bar."""
    out = {}
    for kind in ("events", "mechanisms"):
        m = re.search(r"(\d+) matched", dash_duo.find_element(f".fm-count-{kind}").text.replace(",", ""))
        out[kind] = int(m.group(1)) if m else None
    return out


def _wait_counts(dash_duo, events: int, mechanisms: int):
    wait(lambda: _counts(dash_duo) == {"events": events, "mechanisms": mechanisms},
         message=f"counts {events}/{mechanisms}")


# -- builders (no browser) ---------------------------------------------------------------------
def test_empty_stage_table_keeps_its_time_type():
    """Regression: the wells page answered 500 on data without stages (``.dt`` on an
    object column of the empty table)."""
    empty = wf.stage_table(pd.DataFrame(columns=["well", "stage_no", "time"]))
    assert empty.empty and list(empty.columns) == list(wf.STAGE_COLUMNS)
    assert str(empty["time"].dtype) == "datetime64[ns, UTC]"
    assert list(empty["time"].dt.strftime("%Y-%m-%d")) == []


def test_server_paths_without_wells_clusters_or_mechanisms(build):
    app, wells = page_module(build["dir"], "pages.wells")
    st, dif = importlib.import_module("pages.strike_time"), importlib.import_module("pages.diffusion")
    with app.server.app_context():
        fig, rows, caption, _ = wells.build("")
        assert rows == [] and caption == "no stages in this data set"
        assert "No stages and no injection data" in fig["layout"]["annotations"][0]["text"]
        assert wells.build("start=2016-11-10")[2] == "no stages in this data set"
        fig, stats, caption, drawn = st.build_figure("", None)
        assert fig["layout"]["meta"]["n_mechanisms"] == build["n_mech_events"]
        assert (int(stats["n"].sum()) if len(stats) else 0) == build["n_mech_events"]
        assert caption == (f"all events (no clusters in these data): {build['n_mech_events']} mechanisms, one per "
                           "event (quality A, published first, else computed) · "
                           "no stages in this data set · no injection data")
        assert drawn["mechanisms"]["drawn"] == build["n_mech_events"]
        options = dif.set_options(dif.get_provider())
        assert [o["value"] for o in options] == [dif.ALL_EVENTS]
        r, fit, _ = dif.build_analysis("", dif.ALL_EVENTS, None, "signed_epicentral", None, 90, 0.0316)
        assert len(r["events"]) == build["n_events"] and r["matched"] == build["n_events"]
        assert len(r["mechanisms"]) == build["n_mech_events"] and r["message"] is None
        assert fit["D"] > 0


# -- browser ----------------------------------------------------------------------------------
def test_catalogue_pages_count_every_event(dash_duo, build):
    """Map, magnitudes, classification: every catalogue event counts (5 have waveforms),
    the only cluster choice is '(none)' and selecting it keeps them all."""
    n, n_mech = build["n_events"], build["n_mech"]
    start_app(dash_duo, build["dir"])
    _wait_counts(dash_duo, n, n_mech)
    wait(lambda: plotly_js(dash_duo, "map-graph", "gd._fullData.filter(t => t.name === 'events')"
                                                  ".reduce((a, t) => a + t.x.length, 0)") == n, message="map events")
    assert "no wells or stages in this data set" in _text(dash_duo, ".fm-page-map .fm-about")
    assert "Tiny experiment" in _text(dash_duo, ".fm-page-map .fm-about")
    # the app is named after the project (its project.toml name), not ToC2ME: navbar, the
    # browser tab, and the file name of a figure's PNG download
    name = tomllib.loads((build["project"] / "project.toml").read_text())["name"]
    assert _text(dash_duo, ".navbar-brand").endswith(f"{name} focal mechanisms")
    wait(lambda: dash_duo.driver.title == f"Map · {name} focal mechanisms", message="tab title")
    png = plotly_js(dash_duo, "map-graph", "gd._context.toImageButtonOptions.filename")
    assert png == re.sub(r"[^a-z0-9_-]+", "_", name.lower()) + "_map", png
    _clean(dash_duo)
    # the cluster filter lists only '(none)': choosing it keeps every event
    dash_duo.select_dcc_dropdown(".fm-cluster", value="(none)")
    wait(lambda: "cluster=none" in dash_duo.driver.current_url, message="cluster in the URL")
    _wait_counts(dash_duo, n, n_mech)
    assert int(build["provider"].counts(Filters.from_query("cluster=none")).iloc[0]["events"]) == n
    _clean(dash_duo)

    _open(dash_duo, "/magnitudes?cluster=none")
    _wait_counts(dash_duo, n, n_mech)
    names = wait(lambda: plotly_js(dash_duo, "mag-time-graph", "gd._fullData.filter(t => t.showlegend)"
                                                               ".map(t => t.name)"), message="time figure")
    assert names[0] == f"All events ({n})"
    bar_sums = plotly_js(dash_duo, "mag-time-graph", "gd._fullData.filter(t => t.type === 'bar')"
                                                     ".map(t => Array.from(t.x).reduce((a, b) => a + b, 0))")
    assert bar_sums == [n, build["n_mech_events"]]  # all events; resolved (with a mechanism)
    wait(lambda: f"of {n}" in _text(dash_duo, "#mag-results"), message="results")
    _clean(dash_duo)

    _open(dash_duo, "/classification")
    _wait_counts(dash_duo, n, n_mech)
    wait(lambda: "no wells in this data set" in _text(dash_duo, "#cls-map-caption"), message="map caption")
    if n_mech:
        wait(lambda: _text(dash_duo, ".fm-cls-total") == f"{n_mech}", message="classification total")
    else:
        wait(lambda: "No mechanisms in this data set" in _text(dash_duo, "#cls-counts"), message="counts alert")
        wait(lambda: "No mechanisms in this data set" in _text(dash_duo, "#cls-stereonets"), message="stereonets")
    _clean(dash_duo)


def test_strike_time_and_diffusion_without_clusters_or_wells(dash_duo, build):
    """Strike-time plots every mechanism when no cluster is named; diffusion offers every
    catalogue event as its set; both say there are no stages or injection data."""
    n, n_mech, n_plot = build["n_events"], build["n_mech"], build["n_mech_events"]
    start_app(dash_duo, build["dir"], "/strike-time")
    want = (f"all events (no clusters in these data): {n_plot} mechanisms, one per event (quality A, "
            "published first, else computed) · no stages in this data set · no injection data")
    wait(lambda: _text(dash_duo, "#st-caption") == want, message="strike-time caption")
    wait(lambda: plotly_js(dash_duo, "st-graph", "gd.layout.meta.n_mechanisms === %d" % n_plot), message="figure")
    notes = plotly_js(dash_duo, "st-graph", "gd.layout.annotations.map(a => a.text)")
    assert "no stages and no injection data" in notes
    assert ("No mechanisms in this data set" in notes) == (build["n_mech_rows"] == 0)
    _wait_counts(dash_duo, n, n_mech)
    _clean(dash_duo)
    _open(dash_duo, "/strike-time?cluster=none")
    wait(lambda: _text(dash_duo, "#st-caption") == want, message="strike-time caption, cluster none")
    _clean(dash_duo)

    _open(dash_duo, "/diffusion")
    wait(lambda: _text(dash_duo, "#dif-dt-caption").startswith(f"all events: {n} events"), message="diffusion caption")
    _wait_counts(dash_duo, n, n_plot)  # as for a cluster: the set's mechanisms, one per event
    wait(lambda: float(dash_duo.find_element(".dif-fit-box").get_attribute("data-d")) > 0, message="fitted D")
    assert "all catalogue events" in _text(dash_duo, "#dif-set")
    wait(lambda: f"of {n} events" in _text(dash_duo, "#dif-player-text"), message="player")
    _clean(dash_duo)


def test_wells_page_says_there_are_no_wells(dash_duo, build):
    n, n_mech = build["n_events"], build["n_mech"]
    start_app(dash_duo, build["dir"], "/wells")
    wait(lambda: _text(dash_duo, "#wells-table-caption") == "no stages in this data set", message="caption")
    assert "No wells, stages or injection data in this data set." in _text(dash_duo, ".fm-wells-absent")
    wait(lambda: "No stages and no injection data in this data set" in plotly_js(
        dash_duo, "wells-timeline", "gd.layout.annotations[0].text"), message="figure")
    _wait_counts(dash_duo, n, n_mech)
    _clean(dash_duo)
    # the time window still drives the bar's counts
    _open(dash_duo, "/wells?start=2016-11-20")
    want = int(build["provider"].counts(Filters.from_query("start=2016-11-20")).iloc[0]["events"])
    assert 0 < want < n
    wait(lambda: _counts(dash_duo)["events"] == want, message="windowed counts")
    assert _text(dash_duo, "#wells-table-caption") == "no stages in this data set"
    _clean(dash_duo)


def test_model_page(dash_duo, build):
    n = len(mq.agreement(build["provider"], Filters()))
    assert 0 < n < build["n_events"]
    start_app(dash_duo, build["dir"], "/model")
    wait(lambda: f"{n:,} events with polarities" in _text(dash_duo, "#model-agreement-caption"),
         message="agreement caption")
    _clean(dash_duo)


def test_event_pages_with_and_without_waveforms(dash_duo, build, tmp_path):
    """The page writes reviews.sqlite into the data folder: work on a copy."""
    d = tmp_path / "data"
    shutil.copytree(build["dir"], d)
    start_app(dash_duo, d, f"/event/{build['without_waves']}")
    wait(lambda: "No waveforms or polarities for this event" in _text(dash_duo, ".fm-page-event"),
         message="no-waveform note")
    assert f"Event {build['without_waves']}" in _text(dash_duo, ".fm-page-event")
    _clean(dash_duo)

    _open(dash_duo, f"/event/{build['with_waves']}")
    wait(lambda: plotly_js(dash_duo, "ev-waves", "gd._fullData.length") > 0, message="waveforms")
    page = _text(dash_duo, ".fm-page-event")
    assert "No waveforms or polarities" not in page
    button = dash_duo.find_element("#ev-reinvert")
    if build["n_mech"]:
        assert "published" in _text(dash_duo, "#ev-metrics")
    else:  # no velocity model: SKHASH cannot run, and the page says why
        assert "No velocity model in this data set" in _text(dash_duo, "#ev-reinvert-status")
        assert not button.is_enabled()
        wait(lambda: "no mechanism (no velocity model)" in plotly_js(
            dash_duo, "ev-ball", "gd.layout.annotations.map(a => a.text).join('|')"), message="mechanism note")
    _clean(dash_duo)
