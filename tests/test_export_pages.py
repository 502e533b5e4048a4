"""Browser tests (``dash_duo``, headless Chromium) of the dashboard's export buttons: the map
page's QuakeML and CSV of the filtered set, the event page's QuakeML of its event. They run
the code of ``python -m pipeline export`` (:mod:`pipeline.export.run`); the files are
read back as a user would (ObsPy, the CSV reader).
"""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from components.data import DataProvider
from components.filters import Filters
from pagetools import no_console_errors, start_app, wait
from pipeline import tables

obspy = pytest.importorskip("obspy")


def _downloaded(dash_duo, name: str) -> Path:
    path = Path(dash_duo.download_path) / name
    wait(lambda: path.exists() and path.stat().st_size > 0 and
         not list(Path(dash_duo.download_path).glob("*.crdownload")), message=f"download {name}")
    time.sleep(0.3)  # let the browser finish writing
    return path


def _click(dash_duo, element_id: str):
    wait(lambda: dash_duo.driver.find_element("id", element_id), message=element_id)
    dash_duo.driver.execute_script(f"document.getElementById('{element_id}').click()")


def _wait_counts(dash_duo, events: int, mechanisms: int):
    def ok():
        text = dash_duo.find_element(".fm-count-events").text.replace(",", "")
        mtext = dash_duo.find_element(".fm-count-mechanisms").text.replace(",", "")
        return f"{events} matched" in text and f"{mechanisms} matched" in mtext
    wait(ok, message=f"counts {events}/{mechanisms}")


def test_map_page_quakeml_and_csv_of_the_filtered_set(dash_duo, demo_data_dir):
    from pipeline.export.exports import read_mechanisms_csv

    f = Filters.from_query("cluster=NSw&mmin=0")
    provider = DataProvider(demo_data_dir)
    events = provider.export_frame("events", f)
    mechs = provider.export_frame("mechanisms", f)
    want_ids = set(events["event_id"]) | set(mechs["event_id"])
    start_app(dash_duo, demo_data_dir, "/" + f.to_search())
    _wait_counts(dash_duo, len(events), len(mechs))

    _click(dash_duo, "map-export-quakeml")
    cat = obspy.read_events(str(_downloaded(dash_duo, "demo_filtered.xml")))
    assert len(cat) == len(want_ids) > 10
    assert {e.resource_id.id.rsplit("/", 1)[1] for e in cat} == want_ids
    assert sum(len(e.focal_mechanisms) for e in cat) == len(mechs)

    _click(dash_duo, "map-export-csv")
    got = read_mechanisms_csv(_downloaded(dash_duo, "demo_filtered_mechanisms.csv"))
    assert list(zip(got["event_id"], got["source"])) == list(zip(mechs["event_id"], mechs["source"]))
    no_console_errors(dash_duo)


def test_map_page_refuses_a_huge_quakeml(dash_duo, demo_data_dir, monkeypatch):
    """Over the download's event limit: a note with the command to use instead, no file."""
    import importlib

    start_app(dash_duo, demo_data_dir)   # the app imports the page modules
    monkeypatch.setattr(importlib.import_module("pages.map"), "EXPORT_MAX_EVENTS", 100)
    n = int(DataProvider(demo_data_dir).counts(Filters()).iloc[0]["events"])
    _click(dash_duo, "map-export-quakeml")
    dash_duo.wait_for_contains_text("#map-export-note", "too many for a QuakeML download", timeout=30)
    text = dash_duo.find_element("#map-export-note").text
    assert f"{n:,} events" in text and "python -m pipeline export --format quakeml" in text
    assert not list(Path(dash_duo.download_path).glob("*.xml"))
    no_console_errors(dash_duo)


def test_malformed_filter_map_export_is_refused_not_whole_set(dash_duo, demo_data_dir):
    """Regression: ``?mmin=abc`` was read as "no magnitude filter", so the map's exports wrote
    every event. Now the page's alert names the value and the export buttons write nothing."""
    start_app(dash_duo, demo_data_dir, "/?cluster=NSw&mmin=abc")
    wait(lambda: "mmin='abc' is not a number" in dash_duo.find_element(".fm-filter-problem").text,
         message="alert")
    for button in ("map-export-csv", "map-export-quakeml"):
        _click(dash_duo, button)
        dash_duo.wait_for_contains_text("#map-export-note", "Not exported: malformed filter", timeout=30)
        assert "mmin='abc' is not a number" in dash_duo.find_element("#map-export-note").text
    time.sleep(1.0)
    assert not [p for p in Path(dash_duo.download_path).iterdir() if p.suffix in (".csv", ".xml")]
    no_console_errors(dash_duo, "SEVERE")


def test_event_page_quakeml(dash_duo, demo_data_dir, tmp_path):
    import shutil

    data = tmp_path / "data"      # the event page may write reviews.sqlite: work on a copy
    shutil.copytree(demo_data_dir, data)
    mech = tables.read_table(data, "mechanisms")
    pol = tables.read_table(data, "polarities")
    both = mech.groupby("event_id")["source"].nunique()
    eid = sorted(set(both[both == 2].index) & set(pol["event_id"]))[0]
    start_app(dash_duo, data, f"/event/{eid}")
    _click(dash_duo, "ev-quakeml-btn")
    cat = obspy.read_events(str(_downloaded(dash_duo, f"event_{eid}.xml")))
    assert len(cat) == 1 and cat[0].resource_id.id == f"smi:local/event/{eid}"
    assert len(cat[0].focal_mechanisms) == 2
    assert len(cat[0].picks) == pol.loc[pol["event_id"] == eid, "station"].nunique()
    assert any(p.polarity in ("positive", "negative") for p in cat[0].picks)
    no_console_errors(dash_duo)
