"""The classification page's "Composite & stress for this selection": the server-side builder
(same numbers as the composite command and the stress inversion on the same selection,
errors visible) and the browser (``dash_duo``, headless Chromium) on the demo build."""
from __future__ import annotations

import math

import pytest

from components.data import DataProvider
from components.filters import Filters
from components.stereonet import sample_rows
from pagetools import no_console_errors, page_module, plotly_js, start_app, wait
from pipeline.analysis import stress
from pipeline.mechanisms import composite

PATH = "/classification"
QUERY = "cluster=NSw"


@pytest.fixture(scope="module")
def page(demo_data_dir):
    _, module = page_module(demo_data_dir, "pages.classification")
    return module


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    return DataProvider(demo_data_dir)


def test_builder_gives_the_commands_composite_and_the_stress_of_the_selection(page, provider):
    res = page.build_composite_and_stress(QUERY, provider)
    assert res["composite_error"] is None and res["stress_error"] is None
    f = Filters.from_query(QUERY)
    ref = composite.summary(composite.composite_of_selection(provider, f, max_events=page.PAGE_MAX_EVENTS,
                                                             timeout=page.PAGE_TIMEOUT_S))
    for k in ("strike", "dip", "rake", "quality", "n_events", "n_polarities"):
        assert res["summary"][k] == ref[k], k
    meta = res["composite"]["layout"]["meta"]
    assert (meta["strike"], meta["n_events"], meta["n_rays"]) == (ref["strike"], ref["n_events"], ref["n_polarities"])
    # stress: the mechanisms of the selection (one per event, capped by a fixed sample)
    mechs = provider.mechanisms_per_event(f)
    used = sample_rows(mechs, page.STRESS_CAP)
    b = stress.bootstrap(used["strike"], used["dip"], used["rake"], n_boot=page.STRESS_BOOTSTRAP, seed=0)
    smeta = res["stress"]["layout"]["meta"]
    assert smeta["R"] == pytest.approx(b.best.r) and smeta["shmax_deg"] == pytest.approx(b.best.shmax)
    assert smeta["n_used"] == len(used) <= page.STRESS_CAP and smeta["n_selected"] == len(mechs)
    assert smeta["bootstrap"] == len(b.r) <= page.STRESS_BOOTSTRAP
    assert res["average"]["n"] == len(mechs)


def test_builder_shows_errors_instead_of_falling_back(page, provider, monkeypatch):
    empty = page.build_composite_and_stress("start=2030-01-01", provider)
    assert empty["composite"] is None and empty["composite_error"][0] == "warning"
    assert "no event of this selection has polarities" in empty["composite_error"][1]
    assert empty["stress"] is None and "0 mechanism(s)" in empty["stress_error"][1]
    monkeypatch.setattr(page, "PAGE_TIMEOUT_S", 0.01)
    slow = page.build_composite_and_stress(QUERY, provider)
    assert slow["composite"] is None and slow["composite_error"][0] == "danger"
    assert "timeout" in slow["composite_error"][1]
    assert slow["stress"] is not None          # the stress inversion does not depend on SKHASH
    children = page._composite_children(slow)
    assert "fm-composite-error" in str(children)
    # without the Fortran grid search, a composite too large for the page's memory bound is refused
    from pipeline.mechanisms import skhash
    monkeypatch.setattr(skhash, "fortran_available", lambda python=None: False)
    monkeypatch.setattr(page, "PAGE_PYTHON_MEMORY", 1e6)
    big = page.build_composite_and_stress(QUERY, provider)
    assert big["composite"] is None and big["composite_error"][0] == "warning"
    assert "pool fewer events" in big["composite_error"][1] and "Fortran" in big["composite_error"][1]


def test_page_shows_composite_and_stress_after_the_button(dash_duo, demo_data_dir, provider):
    f = Filters.from_query(QUERY)
    ref = composite.summary(composite.composite_of_selection(provider, f, max_events=60, timeout=120))
    start_app(dash_duo, demo_data_dir, f"{PATH}?{QUERY}", window_size=(1400, 1000))
    dash_duo.wait_for_element(".fm-comp-prompt")

    def click():  # retried while the page still moves (figures loading above the button)
        btn = dash_duo.find_element("#cls-comp-btn")
        dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center', behavior: 'instant'})", btn)
        btn.click()
        return True
    wait(click, message="click the composite button")
    meta = wait(lambda: plotly_js(dash_duo, "cls-composite", "gd.layout.meta"), timeout=90, message="composite")
    assert (meta["strike"], meta["dip"], meta["rake"]) == (ref["strike"], ref["dip"], ref["rake"])
    assert meta["n_events"] == ref["n_events"] and meta["n_polarities"] == ref["n_polarities"]
    smeta = wait(lambda: plotly_js(dash_duo, "cls-stress", "gd.layout.meta"), timeout=60, message="stress")
    assert math.isfinite(smeta["R"]) and 0 <= smeta["shmax_deg"] < 180 and smeta["bootstrap"] > 0
    names = plotly_js(dash_duo, "cls-stress", "gd.data.map(t => t.name)")
    assert {"σ1 bootstrap", "σ2 bootstrap", "σ3 bootstrap", "σ1 σ2 σ3 (best)"} <= set(names)
    summary = dash_duo.find_element(".fm-comp-summary").text
    assert "Composite" in summary and "MT average" in summary and "Kagan" in summary
    no_console_errors(dash_duo, "SEVERE")
