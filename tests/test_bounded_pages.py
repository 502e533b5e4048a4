"""Every page bounded (issue 10 #4): on a synthetic catalogue larger than the caps, each page
draws at most its cap and says "N matched / N drawn" in the filter bar, with a clean
console; the capped computations (classification sample, diffusion's seeded subsample,
the model page's server-side paging) checked against independent computations.

The caps are lowered on the app's provider (``DataProvider.caps``) so a 5,000-event
catalogue (``bench/bench_map.synthetic_dir``: 583 mechanisms, three clusters) exceeds
them; the production defaults (:class:`queries.caps.Caps`) are far above ToC2ME.
"""
from __future__ import annotations

import math
import re
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from components.data import DataProvider
from components.filters import Filters
from pagetools import free_port, no_console_errors, wait
from pipeline import tables
from queries import model as mq
from queries.caps import SAMPLE_SEED, Caps

ROOT = Path(__file__).resolve().parents[1]
N_EVENTS = 5_000
CAPS = Caps(map_events=500, map_mechanisms=40, points=30, diffusion_events=300)


@pytest.fixture(scope="module")
def big_dir(tmp_path_factory) -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_map import synthetic_dir

    return synthetic_dir(N_EVENTS, seed=3, out=tmp_path_factory.mktemp("bounded") / "data")


@pytest.fixture(scope="module")
def events(big_dir) -> pd.DataFrame:
    return tables.read_table(big_dir, "events")


@pytest.fixture(scope="module")
def mechanisms(big_dir) -> pd.DataFrame:
    return tables.read_table(big_dir, "mechanisms")


def _population_a(mechanisms: pd.DataFrame) -> pd.DataFrame:
    """The default population recomputed here: quality A, one per event (the synthetic
    catalogue has one mechanism per event, all published)."""
    assert mechanisms["event_id"].is_unique and set(mechanisms["source"]) == {"published"}
    return mechanisms[mechanisms["quality"] == "A"]


def _app(big_dir, caps=CAPS):
    from app import create_app

    app = create_app(big_dir)
    app.server.extensions["fm_provider"].caps = caps
    return app


def _start(dash_duo, big_dir, path: str):
    dash_duo.start_server(_app(big_dir), port=free_port())
    dash_duo.wait_for_page(url=dash_duo.server_url + path)


def _count(dash_duo, kind: str):
    """(matched, drawn or None) of the bar's ``kind`` count; None before it is shown."""
    from selenium.common.exceptions import StaleElementReferenceException

    els = dash_duo.driver.find_elements("css selector", f".fm-count-{kind}")
    if not els:
        return None
    try:
        text = els[0].text
    except StaleElementReferenceException:  # the counts were redrawn in between: not shown yet
        return None
    m = re.search(r"(\d+) matched(?: / (\d+) drawn)?", text.replace(",", ""))
    return (int(m.group(1)), int(m.group(2)) if m.group(2) else None) if m else None


def _wait_count(dash_duo, kind: str, matched: int, drawn: int):
    wait(lambda: _count(dash_duo, kind) == (matched, drawn),
         message=f"{kind}: {matched} matched / {drawn} drawn (bar shows {_count(dash_duo, kind)})")


def _clean(dash_duo):
    time.sleep(0.5)
    no_console_errors(dash_duo)


# -- every page in the browser ------------------------------------------------------------------
def test_map_draws_its_caps(dash_duo, big_dir, events, mechanisms):
    _start(dash_duo, big_dir, "/")
    _wait_count(dash_duo, "events", len(events), CAPS.map_events)
    _wait_count(dash_duo, "mechanisms", len(_population_a(mechanisms)), CAPS.map_mechanisms)
    _clean(dash_duo)


def test_classification_draws_at_most_the_points_cap(dash_duo, big_dir, mechanisms):
    _start(dash_duo, big_dir, "/classification")
    n = len(_population_a(mechanisms))
    assert n > CAPS.points
    _wait_count(dash_duo, "mechanisms", n, CAPS.points)
    wait(lambda: f"{CAPS.points} of {n} mechanisms drawn" in dash_duo.find_element("#cls-map-caption").text,
         message="map caption says the sample")
    # the counts table still counts every matched mechanism
    wait(lambda: dash_duo.find_element(".fm-cls-total").text.replace(",", "") == str(n), message="total")
    _clean(dash_duo)


def test_strike_time_draws_at_most_the_points_cap(dash_duo, big_dir, events, mechanisms):
    pop = _population_a(mechanisms)
    cluster = sorted(c for c in events["cluster"].dropna().unique())[0]  # the page's default: the first
    n_cluster = int((pop["cluster"] == cluster).sum())
    assert n_cluster > CAPS.points
    _start(dash_duo, big_dir, f"/strike-time?stcluster={cluster}")
    _wait_count(dash_duo, "mechanisms", len(pop), CAPS.points)
    wait(lambda: f"{CAPS.points} drawn" in dash_duo.find_element("#st-caption").text.replace(",", ""),
         message="caption says the sample")
    _clean(dash_duo)


def test_diffusion_analyses_a_seeded_sample_and_says_so(dash_duo, big_dir, events):
    cluster = sorted(events["cluster"].dropna().unique())[0]
    n_cluster = int((events["cluster"] == cluster).sum())
    assert n_cluster > CAPS.diffusion_events
    _start(dash_duo, big_dir, f"/diffusion?set=cluster:{cluster}")
    _wait_count(dash_duo, "events", len(events), CAPS.diffusion_events)
    wait(lambda: f"seeded sample of {CAPS.diffusion_events} of the set's {n_cluster}"
         in dash_duo.find_element(".dif-sample-note").text.replace(",", ""), message="fit panel says the sample")
    _clean(dash_duo)


def test_magnitudes_draws_the_map_cap(dash_duo, big_dir, events):
    _start(dash_duo, big_dir, "/magnitudes")
    _wait_count(dash_duo, "events", len(events), CAPS.map_events)
    _clean(dash_duo)


@pytest.mark.parametrize("path", ["/wells", "/model"])
def test_other_pages_load_clean(dash_duo, big_dir, events, path):
    """Pages that draw no per-event points (wells: stages; model: no polarities in these
    data, its table is paged on the server, tested below)."""
    _start(dash_duo, big_dir, path)
    wait(lambda: _count(dash_duo, "events") is not None and _count(dash_duo, "events")[0] == len(events),
         message="bar counts")
    _clean(dash_duo)


# -- the capped computations against independent ones -----------------------------------------
def test_diffusion_sample_is_the_documented_rule_and_the_fit_is_its_fit(big_dir, events):
    """The analysed set is the earliest event of the cluster plus the cap - 1 others with the
    smallest DuckDB hash(seed || event_id) — recomputed here with DuckDB on the Parquet
    file — and the page's D is the quantile fit of those events' distance-time table."""
    from components import diffusion_figures as dff
    from pipeline.analysis import diffusion as dif

    app = _app(big_dir)
    app.server.test_client().get("/")
    import pages.diffusion as pd_

    cluster = sorted(events["cluster"].dropna().unique())[0]
    with app.server.app_context():
        r, fit, _ = pd_.build_analysis("", f"cluster:{cluster}", None, "signed_epicentral", None, 90, 1.0)
    sub = events[events["cluster"] == cluster].sort_values(["time", "event_id"])
    first = sub["event_id"].iloc[0]
    con = duckdb.connect()
    others = con.execute("SELECT event_id FROM read_parquet(?) WHERE cluster = ? AND event_id <> ?"
                         " ORDER BY hash(? || event_id) LIMIT ?",
                         [str(tables.table_path(big_dir, "events")), cluster, first, SAMPLE_SEED,
                          CAPS.diffusion_events - 1]).df()["event_id"]
    want = {first, *others}
    assert set(r["events"]["event_id"]) == want and len(want) == CAPS.diffusion_events
    assert r["set_size"] == len(sub) and r["origin"]["event_id"] == first
    # the fit of exactly those events, computed here from the catalogue rows
    ev = sub[sub["event_id"].isin(want)]
    o = ev.iloc[0]
    dt = dif.distance_time(ev, {k: o[k] for k in ("event_id", "time", "lat", "lon", "depth_km")},
                           "signed_epicentral", strike_deg=r["strike"])
    t, d = dt["t_s"].to_numpy(float), dt["distance_m"].to_numpy(float)
    ok = t >= 0  # the origin itself: t = 0, r = 0, D = 0
    t, d = t[ok], d[ok]
    with np.errstate(divide="ignore", invalid="ignore"):
        crit = np.sort(np.where(t == 0, np.where(d == 0, 0.0, np.inf), d ** 2 / (4 * math.pi * t)))
    assert fit["D"] == pytest.approx(crit[math.ceil(0.9 * crit.size) - 1], rel=1e-9)
    assert fit["n"] == crit.size and fit["n_boot"] == dff.bootstrap_size(crit.size)
    # without the cap, every event of the cluster is analysed
    app.server.extensions["fm_provider"].caps = Caps()
    with app.server.app_context():
        r_all, _, _ = pd_.build_analysis("", f"cluster:{cluster}", None, "signed_epicentral", None, 90, 1.0)
    assert len(r_all["events"]) == len(sub)


def test_classification_sample_and_counts(big_dir, mechanisms):
    """Drawn: at most the cap, the rows with the smallest pandas hash of the event id;
    counted: every matched mechanism (ternary legend and counts table)."""
    app = _app(big_dir)
    app.server.test_client().get("/")
    import pages.classification as pc

    pop = _population_a(mechanisms)
    with app.server.app_context():
        res = pc.build_summary("", None)
        fig = pc.build_map("", None, -10.0)
    assert res["n"] == len(pop)
    assert sum(res["ternary"]["layout"]["meta"]["classes"].values()) == len(pop)
    assert res["ternary"]["layout"]["meta"]["drawn"] == CAPS.points
    h = pd.util.hash_pandas_object(pop["event_id"].astype(str), index=False).to_numpy()
    want = set(pop["event_id"].to_numpy()[np.argsort(h, kind="stable")[:CAPS.points]])
    drawn_ids = set()
    for tr in fig["data"]:
        # the strike-tick circles (SVG or WebGL by count); not the beachballs' hover markers
        if tr.get("mode") == "markers" and tr.get("marker", {}).get("symbol") == "circle-open":
            drawn_ids |= {re.search(r"<b>(.*?)</b>", t).group(1) for t in tr["text"]}
    assert drawn_ids == want
    meta = fig["layout"]["meta"]
    assert (meta["matched"], meta["drawn"]) == (len(pop), CAPS.points)
    # threshold below every magnitude: all are candidates, the largest map_mechanisms drawn
    assert meta["balls_matched"] == len(pop) and meta["balls"] == CAPS.map_mechanisms


def test_model_agreement_is_paged_on_the_server(demo_data_dir):
    """Each page of the per-event table is the matching slice of the whole table, and the
    totals are the sums over every row."""
    p = DataProvider(demo_data_dir)
    full = mq.agreement(p, Filters(), "cnn")
    assert len(full) > 15
    pages = []
    n_pages = math.ceil(len(full) / 15)
    for k in range(n_pages):
        df, tot = mq.agreement_page(p, Filters(), "cnn", k, 15)
        assert tot["n"] == len(full) and tot["page"] == k and tot["page_count"] == n_pages
        pages.append(df)
    pd.testing.assert_frame_equal(pd.concat(pages, ignore_index=True), full.reset_index(drop=True))
    for c in ("n_picker", "picker_decided", "ref_both", "manual_agree"):
        assert tot[c] == int(full[c].sum())
    assert mq.agreement_page(p, Filters(), "cnn", 10**6, 15)[1]["page"] == n_pages - 1  # clipped


def test_caps_from_env_and_bad_values():
    assert Caps.from_env({"FM_CAP_POINTS": "123"}).points == 123
    assert Caps.from_env({}) == Caps()
    with pytest.raises(ValueError, match="FM_CAP_POINTS"):
        Caps.from_env({"FM_CAP_POINTS": "many"})
    with pytest.raises(ValueError, match="points"):
        Caps(points=0)


def test_model_table_pages_in_the_browser(dash_duo, demo_data_dir):
    """The browser gets one page of the per-event table at a time; the next page is asked
    from the server and shows the next rows of the whole table."""
    full = mq.agreement(DataProvider(demo_data_dir), Filters(), "cnn")
    times = pd.to_datetime(full["time"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S").tolist()
    assert len(full) > 15
    dash_duo.start_server(_app(demo_data_dir, Caps()), port=free_port())
    dash_duo.wait_for_page(url=dash_duo.server_url + "/model")

    def shown():
        return [e.text for e in dash_duo.driver.find_elements(
            "css selector", '#model-agreement td[data-dash-column="time"]')]
    wait(lambda: shown() == times[:15], message="first page: the first 15 rows")
    assert dash_duo.find_element("#model-agreement .last-page").text.strip() == str(math.ceil(len(full) / 15))
    nxt = dash_duo.find_element("#model-agreement button.next-page")
    # the pager sits below the fold: scrolled to and clicked through the DOM (selenium's
    # real click on it failed in headless Chromium)
    dash_duo.driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click()", nxt)
    wait(lambda: shown() == times[15:30], message="second page: the next rows")
    _clean(dash_duo)
