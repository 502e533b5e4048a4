"""The DuckDB data provider on the fixture tables: counts, caps, paging, CSV export, the
connection's life cycle (lazy, per process, cursor per thread) and its read-only sandbox."""
from __future__ import annotations

import io
import math
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest

from components import data as data_mod
from components.data import DataProvider, MissingDataError
from components.filters import NONE, POPULATIONS, Filters
from pipeline.tables import read_table
from queries import magnitudes as magq
from queries import map as mapq

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def provider(demo_data_dir):
    p = DataProvider(demo_data_dir)
    yield p
    p.close()


@pytest.fixture(scope="module")
def tables(demo_data_dir):
    return {t: read_table(demo_data_dir, t) for t in ("events", "mechanisms", "stations", "wells", "stages")}


#: every mechanism row (the population ``all``); ``Filters()`` is one mechanism per event, quality A
ALL_ROWS = Filters(population="all")


def _preferred(me: pd.DataFrame) -> pd.DataFrame:
    """Each event's preferred mechanism, as components.filters documents it: published
    before computed, then quality A..D, null, then source name (pandas, independent of SQL)."""
    rank = me["source"].map({"published": 0, "computed": 1}).fillna(2)
    return (me.assign(_r=rank, _q=me["quality"].fillna("Z")).sort_values(["event_id", "_r", "_q", "source"])
            .drop_duplicates("event_id").drop(columns=["_r", "_q"]))


def test_counts_equal_the_filtered_rows(provider, tables):
    c = provider.counts(ALL_ROWS).iloc[0]
    assert c["events"] == len(tables["events"])
    assert c["mechanisms"] == len(tables["mechanisms"])
    # the default: one mechanism per event among the quality-A ones (published first)
    me = tables["mechanisms"]
    assert me["event_id"].duplicated().any(), "the demo has events with a published and a computed mechanism"
    want = _preferred(me[me["quality"] == "A"])
    c = provider.counts(Filters()).iloc[0]
    assert c["events"] == len(tables["events"])
    assert c["mechanisms"] == len(want) < len(me)
    # the demo's computed quality-A mechanisms of events whose published one is of lower quality count
    shown = provider.mechanisms(Filters(), cap=None)
    assert (shown["source"] == "computed").sum() == (want["source"] == "computed").sum() > 0
    g = Filters.from_values(mag_min=0.0, groups=[tables["mechanisms"]["group"].iloc[0], NONE])
    c = provider.counts(g).iloc[0]
    assert c["events"] == len(provider.export_frame("events", g))
    assert c["mechanisms"] == len(provider.export_frame("mechanisms", g))
    assert list(provider.counts(g).columns) == ["events", "mechanisms"]


@pytest.mark.parametrize("population", [k for k, p in POPULATIONS.items() if p.per_event])
def test_every_analysis_query_counts_each_event_once(provider, tables, population):
    """Every per-event population gives each event at most one mechanism in every query the
    pages use (map, table pages, CSV, counts, strike-time/diffusion rows, the events'
    mechanism columns, the magnitudes page's resolved flags), with and without row filters;
    ``all`` keeps the duplicates (the comparison view)."""
    me = tables["mechanisms"]
    dup = me.loc[me["event_id"].duplicated(keep=False), "event_id"]
    assert dup.nunique() > 0
    for f in (Filters(population=population),
              Filters.from_values(population=population, mag_min=-1.0, groups=sorted(me["group"].unique())[:2]),
              Filters.from_values(population=population, qualities=["A", "B"],
                                  time_end=me["time"].sort_values().iloc[len(me) // 2])):
        mechs = provider.mechanisms(f, cap=None)
        assert mechs["event_id"].is_unique, f
        n = len(mechs)
        assert provider.counts(f).iloc[0]["mechanisms"] == n
        assert provider.export_frame("mechanisms", f)["event_id"].is_unique
        page = mapq.mechanisms_page(provider, f, 0, 1000)
        assert page["event_id"].is_unique and page.attrs["matched"] == n
        per_event = provider.mechanisms_per_event(f)
        assert per_event["event_id"].is_unique and len(per_event) == n
        ev = provider.export_frame("events", f)
        assert ev["event_id"].is_unique
        # same choice everywhere: the events' group is the group of the event's population row
        chosen = mechs.set_index("event_id")
        has = ev[ev["mechanism_source"].notna()].set_index("event_id")
        if not f.groups and not f.qualities:
            assert set(has.index) >= set(chosen.index)
        common = chosen.index.intersection(has.index)
        assert (has.loc[common, "mechanism_source"] == chosen.loc[common, "source"]).all()
        assert (has.loc[common, "group"] == chosen.loc[common, "group"]).all()
    res = magq.event_magnitudes(provider, Filters(population=population))
    assert int(res["resolved"].sum()) == len(provider.mechanisms(Filters(population=population), cap=None))
    everything = provider.mechanisms(ALL_ROWS, cap=None)
    assert len(everything) == len(me) and not everything["event_id"].is_unique


def test_events_for_map_columns_and_no_cap(provider, tables):
    df = provider.events_for_map(ALL_ROWS)
    assert list(df.columns) == ["event_id", "time", "x_km", "y_km", "lon", "lat", "depth_km", "magnitude", "group"]
    assert df.attrs == {"matched": len(tables["events"]), "drawn": len(tables["events"]), "step": 1,
                        "sampled": False}
    assert df["time"].is_monotonic_increasing
    assert str(df["time"].dt.tz) in ("UTC", "Etc/UTC")
    # group: the group of the event's preferred mechanism, 'none' otherwise
    me = _preferred(tables["mechanisms"])
    want = df[["event_id"]].merge(me[["event_id", "group"]], on="event_id", how="left")["group"].fillna(NONE)
    assert (df["group"].to_numpy() == want.to_numpy()).all()


@pytest.mark.parametrize("cap", [1, 7, 100, 999])
def test_event_cap_draws_a_fixed_hash_sample(provider, tables, demo_data_dir, cap):
    df = provider.events_for_map(Filters(), cap=cap)
    n = len(tables["events"])
    assert df.attrs["matched"] == n and df.attrs["sampled"]
    assert df.attrs["drawn"] == len(df) == cap
    assert df["time"].is_monotonic_increasing
    # independently: the cap rows of the file with the smallest hash of their row number
    import duckdb
    want = duckdb.connect().execute(
        "SELECT event_id FROM read_parquet(?, file_row_number=true) ORDER BY hash(file_row_number) LIMIT ?",
        [str(demo_data_dir / "events.parquet"), cap]).df()["event_id"]
    assert sorted(df["event_id"]) == sorted(want)
    # deterministic
    assert provider.events_for_map(Filters(), cap=cap)["event_id"].tolist() == df["event_id"].tolist()


def test_event_cap_with_group_filter_samples_the_filtered_rows(provider):
    g = Filters.from_values(groups=[NONE], mag_max=0.5)
    every = provider.export_frame("events", g)
    df = provider.events_for_map(g, cap=50)
    assert df.attrs["matched"] == len(every) > 50 and len(df) == 50
    assert set(df["event_id"]) <= set(every["event_id"])
    assert (df["group"] == NONE).all()
    small = provider.events_for_map(g, cap=10**6)
    assert sorted(small["event_id"]) == sorted(every["event_id"]) and not small.attrs["sampled"]


def test_mechanism_cap_keeps_the_largest(provider, tables):
    me = tables["mechanisms"]
    df = provider.mechanisms(ALL_ROWS, cap=25)
    assert df.attrs == {"matched": len(me), "drawn": 25}
    largest = me.sort_values(["magnitude", "event_id"], ascending=[False, True]).head(25)
    assert df["magnitude"].tolist() == largest["magnitude"].tolist()
    assert len(provider.mechanisms(ALL_ROWS, cap=None)) == len(me)
    assert set(df.columns) >= {"event_id", "strike", "dip", "rake", "group", "x_km", "y_km"}


def test_mechanisms_page_sort_and_position(provider, tables):
    f = ALL_ROWS
    sort = [{"column_id": "magnitude", "direction": "desc"}]
    p0 = mapq.mechanisms_page(provider, f, 0, 10, sort)
    assert p0.attrs["page_count"] == math.ceil(len(tables["mechanisms"]) / 10)
    assert p0["magnitude"].is_monotonic_decreasing
    p3 = mapq.mechanisms_page(provider, f, 3, 10, sort)
    eid = p3["event_id"].iloc[4]
    assert mapq.mechanism_position(provider, f, eid, sort) == 34
    assert mapq.mechanism_position(provider, f, "no such event", sort) is None
    # pages beyond the end are clamped; unknown / hostile sort columns are ignored
    last = mapq.mechanisms_page(provider, f, 10**9, 10, [{"column_id": "x; DROP TABLE y", "direction": "asc"}])
    assert last.attrs["page"] == last.attrs["page_count"] - 1
    unsorted = mapq.mechanisms_page(provider, f, 0, 10, [{"column_id": "nope"}])
    default = mapq.mechanisms_page(provider, f, 0, 10, None)
    assert unsorted["event_id"].tolist() == default["event_id"].tolist()


def test_csv_stream_equals_the_query(provider):
    for table, f in (("events", Filters.from_values(mag_min=-0.5)), ("mechanisms", Filters.from_values(qualities=["A"])),
                     ("events", Filters.from_values(mag_min=9.0))):
        body = b"".join(provider.iter_csv(table, f, batch_rows=97))  # several batches
        got = pd.read_csv(io.BytesIO(body), dtype={"event_id": str}, keep_default_na=True)
        want = provider.export_frame(table, f)
        assert list(got.columns) == list(want.columns)
        assert len(got) == len(want)
        assert got["event_id"].tolist() == want["event_id"].tolist()
        if len(want):
            t = pd.to_datetime(got["time"], utc=True, format="ISO8601")
            assert (t.to_numpy() == want["time"].to_numpy()).all()
            pd.testing.assert_series_equal(got["magnitude"], want["magnitude"], check_names=False)


def test_filter_options(provider, tables):
    o = provider.filter_options()
    ev, me = tables["events"], tables["mechanisms"]
    assert o["n_events"] == len(ev) and o["n_mechanisms"] == len(me)
    without_mechanism = not ev["event_id"].isin(me["event_id"]).all()
    assert set(o["groups"]) == set(me["group"]) | ({NONE} if without_mechanism else set())
    assert o["mag_min"] == pytest.approx(ev["magnitude"].min()) and o["mag_max"] == pytest.approx(ev["magnitude"].max())
    assert o["time_min"] == ev["time"].min() and o["time_max"] == ev["time"].max()
    assert o["sources"] == sorted(me["source"].unique())


def test_small_tables(provider, tables):
    assert len(provider.stations()) == len(tables["stations"])
    assert provider.wells()[["well", "vertex"]].equals(
        tables["wells"].sort_values(["well", "vertex"])[["well", "vertex"]].reset_index(drop=True))
    assert len(provider.stages()) == len(tables["stages"])
    lat0, lon0 = provider.origin()
    assert -90 <= lat0 <= 90 and -180 <= lon0 <= 180
    s = provider.stations()
    s.loc[:, "x_km"] = 0  # a copy: the cache is not affected
    assert not (provider.stations()["x_km"] == 0).all()


# -- connection life cycle ---------------------------------------------------------------------
def test_no_connection_at_import_or_construction(demo_data_dir):
    code = (
        "import sys; import components.data as d, components.filters, components.filter_bar, "
        "components.map_figure\n"
        "assert 'duckdb' not in sys.modules, 'duckdb imported at import time'\n"
        f"p = d.DataProvider({str(demo_data_dir)!r})\n"
        "assert p._conn is None and 'duckdb' not in sys.modules\n"
        "from components.filters import Filters; p.counts(Filters())\n"
        "assert p._conn is not None\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    import duckdb
    for name, value in vars(data_mod).items():
        assert not isinstance(value, duckdb.DuckDBPyConnection), name


def test_connection_is_per_process(demo_data_dir, monkeypatch):
    p = DataProvider(demo_data_dir)
    p.query("SELECT 1")
    first = p._conn
    assert p._connection() is first
    monkeypatch.setattr(data_mod.os, "getpid", lambda: -12345)  # as after a fork
    assert p._connection() is not first
    p.close()


def test_cursor_per_thread(provider):
    f = Filters.from_values(mag_min=-1.0)
    want = provider.counts(f).iloc[0].tolist()
    want_page = mapq.mechanisms_page(provider, f, 1, 20)["event_id"].tolist()
    barrier = threading.Barrier(8)

    def work(i):
        barrier.wait()
        out = []
        for _ in range(5):
            out.append(provider.counts(f).iloc[0].tolist() == want)
            out.append(mapq.mechanisms_page(provider, f, 1, 20)["event_id"].tolist() == want_page)
            out.append(len(provider.events_for_map(f, cap=500)) <= 500)
            out.append(len(b"".join(provider.iter_csv("mechanisms", f))) > 0)
        return all(out)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(work, range(8)))


def test_settings_and_sandbox(provider):
    threads, mem = provider.query(
        "SELECT current_setting('threads'), current_setting('memory_limit')").iloc[0].tolist()
    assert int(threads) == provider.threads
    with pytest.raises(Exception, match="(?i)permission|disabled|not allowed"):
        provider.query("SELECT * FROM read_csv(?)", ["/etc/passwd"])
    with pytest.raises(Exception):
        provider.query("SET enable_external_access = true")


def test_missing_tables(tmp_path):
    p = DataProvider(tmp_path / "empty")
    assert not p.available
    assert set(p.missing_tables()) >= {"events", "mechanisms"}
    with pytest.raises(MissingDataError, match="pipeline build"):
        p.counts(Filters())


def test_csv_download_follows_the_population(provider, tables):
    """The filter bar's CSV link carries ``mech`` and the streamed CSV holds the population's
    rows: one per event by default, every row with ``mech=all``."""
    from components.filter_bar import download_href

    me = tables["mechanisms"]
    for f, n_want in ((Filters(table="mechanisms"), len(_preferred(me[me["quality"] == "A"]))),
                      (Filters(table="mechanisms", population="all"), len(me))):
        href = download_href(f)
        assert ("mech=all" in href) == (f.population == "all")
        got = pd.read_csv(io.BytesIO(b"".join(provider.iter_csv("mechanisms", Filters.from_query(
            href.split("?", 1)[1] if "?" in href else "")))), dtype={"event_id": str})
        assert len(got) == n_want
        assert got["event_id"].is_unique == (f.population != "all")


def test_per_event_rows_with_all_rows_are_the_events_preferred(provider, tables):
    """With ``mech=all`` the strike-time/diffusion rows are still one per event: each event's
    preferred mechanism (the one the events relation shows), chosen before the row filters."""
    me = tables["mechanisms"]
    pref = _preferred(me).set_index("event_id")
    for f in (ALL_ROWS, Filters.from_values(population="all", groups=sorted(me["group"].unique())[:1])):
        rows = provider.mechanisms_per_event(f)
        assert rows["event_id"].is_unique
        assert (rows["source"].to_numpy() == pref.loc[rows["event_id"], "source"].to_numpy()).all()
        ev = provider.export_frame("events", f)
        assert set(rows["event_id"]) == set(ev.loc[ev["mechanism_source"].notna(), "event_id"])
        assert rows.attrs["matched"] == len(provider.export_frame("mechanisms", f))
