"""Filters <-> URL query string <-> SQL: round trips, clamping, hostile input, and
DuckDB results equal to an independent pandas computation."""
from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from urllib.parse import urlencode

import numpy as np
import pandas as pd
import pytest

from components.data import DataProvider
from components.filters import (DEFAULT_POPULATION, MAG_LIMITS, MAX_LIST, MAX_STR, NONE, POPULATIONS, TIME_LIMITS,
                                Filters, format_time, parse_time, population_caption, time_order_reversed,
                                where_clause)
from pipeline.tables import read_table

UTC = timezone.utc

HOSTILE = [
    "'; DROP TABLE events; --",
    "\" OR 1=1 --",
    "g1') OR ('1'='1",
    "Robert'); DELETE FROM mechanisms;--",
    "Ωmega 🌋 région",
    "read_parquet('/etc/passwd')",
    "$1", "?", "%s", "{0}", "\\", "--", "/*", "*/",
    "x" * (MAX_STR + 1),
    "tab\tnewline\n",
    "nul\x00byte",
]


def full_filters() -> Filters:
    return Filters.from_values(
        clusters=["west", "Ωmega"], time_start="2016-11-03T06:30", time_end="2016-11-20T12:00:05.25",
        mag_min=-0.5, mag_max=2.25, groups=["g1", "none"], qualities=["A", "b"], sources=["published"],
        table="mechanisms", color_by="group", view="geo")


# -- URL ------------------------------------------------------------------------------------
def test_defaults_give_empty_query():
    assert Filters().to_query() == ""
    assert Filters().to_search() == ""
    assert Filters.from_query("") == Filters()
    assert Filters.from_query(None) == Filters()
    assert Filters.from_query("?") == Filters()


def test_url_round_trip():
    f = full_filters()
    q = f.to_query()
    assert Filters.from_query(q) == f
    assert Filters.from_query("?" + q) == f
    assert Filters.from_query(q).to_query() == q  # canonical
    assert f.qualities == ("A", "B")
    assert f.time_end == datetime(2016, 11, 20, 12, 0, 5, 250000, tzinfo=UTC)


def test_mapping_input_like_dash_page_kwargs():
    # Dash passes single values as str and repeated keys as lists
    f = Filters.from_query({"group": ["g1", "g2"], "mmin": "1", "view": "geo", 3: "x", "bad": object()})
    assert f.groups == ("g1", "g2") and f.mag_min == 1.0 and f.view == "geo"


def test_date_only_end_is_inclusive_and_round_trips():
    f = Filters.from_query("start=2016-11-03&end=2016-11-04")
    assert f.time_start == datetime(2016, 11, 3, tzinfo=UTC)
    assert f.time_end == datetime(2016, 11, 4, 23, 59, 59, 999999, tzinfo=UTC)
    assert f.to_query() == "start=2016-11-03&end=2016-11-04"
    assert format_time(parse_time("2016-11-04T10:00Z")) == "2016-11-04T10:00"


@pytest.mark.parametrize("text,expected", [
    ("2016-11-03", datetime(2016, 11, 3, tzinfo=UTC)),
    ("2016-11-03 06:07", datetime(2016, 11, 3, 6, 7, tzinfo=UTC)),
    ("2016-11-03T06:07:08Z", datetime(2016, 11, 3, 6, 7, 8, tzinfo=UTC)),
    ("2016-11-03T06:07:08.5+00:00", datetime(2016, 11, 3, 6, 7, 8, 500000, tzinfo=UTC)),
    ("2016-13-03", None), ("2016-02-30", None), ("2016-11-03T25:00", None),
    ("2016-11-03T06:07+02:00", None), ("yesterday", None), ("", None), ("1" * 100, None),
    ("0001-01-01", TIME_LIMITS[0]), ("9999-12-31", TIME_LIMITS[1]),
    ("9999-99-99", None), ("0001-13-01", None), ("2016-13-45", None), ("9999-12-31T25:00", None),
])
def test_parse_time(text, expected):
    assert parse_time(text) == expected


def test_clamping_and_ordering():
    f = Filters.from_query("mmin=-99&mmax=1e300&start=0001-01-01&end=9999-01-01")
    assert (f.mag_min, f.mag_max) == MAG_LIMITS
    assert f.time_start == TIME_LIMITS[0] and f.time_end == TIME_LIMITS[1]
    g = Filters.from_query("mmin=3&mmax=1&start=2016-11-20&end=2016-11-01T00:00")
    assert g.mag_min == 1 and g.mag_max == 3
    assert g.time_start < g.time_end


def test_reversed_window_is_swapped_with_both_days_whole():
    """Issue 12 #2: start=11-30&end=10-01 used to give 10-01 23:59:59.999 -> 11-30 00:00."""
    f = Filters.from_query("start=2016-11-30&end=2016-10-01")
    assert f.time_start == datetime(2016, 10, 1, tzinfo=UTC)
    assert f.time_end == datetime(2016, 11, 30, 23, 59, 59, 999999, tzinfo=UTC)
    assert f.to_query() == "start=2016-10-01&end=2016-11-30"
    assert time_order_reversed("2016-11-30", "2016-10-01") and not time_order_reversed("2016-10-01", "2016-10-01")
    # times keep their instants; parsed datetimes at day edges are read as dates
    g = Filters.from_values(time_start="2016-11-30T12:00", time_end="2016-10-01T06:00")
    assert (g.time_start, g.time_end) == (datetime(2016, 10, 1, 6, tzinfo=UTC), datetime(2016, 11, 30, 12, tzinfo=UTC))
    h = Filters(time_start=datetime(2016, 11, 30, tzinfo=UTC),
                time_end=datetime(2016, 10, 1, 23, 59, 59, 999999, tzinfo=UTC))
    assert h == f


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "1e999", "-1e999", "0x10", "1,5", "", " ",
                                   "1" * 40, "--1", "1e", "ML2"])
def test_bad_magnitudes_are_dropped(value):
    f = Filters.from_query(urlencode([("mmin", value), ("mmax", value)]))
    assert f.mag_min is None and f.mag_max is None


def test_repeated_keys():
    f = Filters.from_query("mmin=abc&mmin=1.5&mmin=2&view=evil&view=geo&group=g1&group=g1&group=g2")
    assert f.mag_min == 1.5  # first valid value
    assert f.view == "geo"
    assert f.groups == ("g1", "g2")  # de-duplicated


def test_unknown_choices_fall_back_to_defaults():
    f = Filters.from_query("table=../../etc/passwd&color=';DROP&view=mercator&quality=Z&quality=a&zzz=1")
    assert (f.table, f.color_by, f.view) == ("events", "time", "km")
    assert f.qualities == ("A",)


def test_lists_are_capped_and_cleaned():
    q = urlencode([("cluster", f"c{i}") for i in range(MAX_LIST * 3)])
    assert len(Filters.from_query(q).clusters) == MAX_LIST
    f = Filters.from_query(urlencode([("cluster", v) for v in HOSTILE]))
    assert "x" * (MAX_STR + 1) not in f.clusters
    assert not any("\x00" in c or "\n" in c for c in f.clusters)
    assert "'; DROP TABLE events; --" in f.clusters  # kept as a value: it is a parameter, never SQL
    assert "Ωmega 🌋 région" in f.clusters


@pytest.mark.parametrize("query", [
    "%", "%%%", "&&&", "=", "==", "a=b=c", "%ZZ", "%00", "cluster=%00", "\x00", "?" * 10000,
    "mmin=" + "9" * 5000, "start=" + "2" * 5000, "group=%F0%9F%8C%8B", "group=%ff%fe",
    "&".join(["group=g1"] * 100000),
])
def test_never_raises(query):
    f = Filters.from_query(query)
    assert isinstance(f, Filters)
    assert Filters.from_query(f.to_query()) == f


# -- SQL ------------------------------------------------------------------------------------
_LITERAL = re.compile(r"'[^']*'")


def _assert_safe_sql(sql: str, params: list, values: list[str]):
    assert sql.count("?") == len(params)
    # the only literal is our own 'none'; no user value in the text
    assert set(_LITERAL.findall(sql)) <= {f"'{NONE}'"}
    for v in values:
        if v and v not in ("none", "?"):
            assert v not in sql
    stripped = _LITERAL.sub("", sql)
    stripped = re.sub(r'"(time|magnitude|cluster|group|quality|source)"', "", stripped)
    assert re.fullmatch(r"[A-Za-z_ ()<>=?,.]*", stripped), stripped


@pytest.mark.parametrize("table", ["events", "mechanisms", "mechanism_source"])
def test_sql_has_only_placeholders(table):
    params_in = [("cluster", v) for v in HOSTILE] + [("group", v) for v in HOSTILE] + \
                [("source", v) for v in HOSTILE] + [("quality", "A"), ("quality", "none"),
                                                    ("mmin", "-1"), ("mmax", "2"), ("start", "2016-11-01"),
                                                    ("end", "2016-11-05T10:00")]
    f = Filters.from_query(urlencode(params_in))
    sql, params = where_clause(f, table)
    _assert_safe_sql(sql, params, HOSTILE)
    assert where_clause(Filters(), table) == ("TRUE", [])


def test_where_rejects_unknown_table_and_alias():
    with pytest.raises(ValueError):
        where_clause(Filters(), "events; DROP TABLE x")
    with pytest.raises(ValueError):
        where_clause(Filters(), "events", alias="x; --.")


# -- results equal pandas ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def frames(demo_data_dir):
    ev, me = read_table(demo_data_dir, "events"), read_table(demo_data_dir, "mechanisms")
    return ev, me


def _pandas_population(me: pd.DataFrame, f: Filters, per_event: bool | None = None) -> pd.DataFrame:
    """The population's mechanism rows, written again in pandas from the documented rule
    (components.filters): candidates of the population's sources and quality classes and
    the Source filter; one per event by source rank (the population's order, else
    published, computed), then quality A..D, null, then source name."""
    pop = POPULATIONS[f.population]
    m = me
    if pop.sources:
        m = m[m["source"].isin(pop.sources)]
    if pop.qualities:
        m = m[m["quality"].isin(pop.qualities)]
    if f.sources:
        m = m[m["source"].isin(f.sources)]
    if pop.per_event if per_event is None else per_event:
        ranked = list(pop.sources or ("published", "computed"))
        m = m.assign(_rank=m["source"].map(lambda s: ranked.index(s) if s in ranked else len(ranked)),
                     _q=m["quality"].fillna("Z"))
        m = m.sort_values(["event_id", "_rank", "_q", "source"]).drop_duplicates("event_id")
        m = m.drop(columns=["_rank", "_q"])
    return m


def _pandas_events(ev: pd.DataFrame, me: pd.DataFrame, f: Filters) -> pd.DataFrame:
    m = _pandas_population(me, f, per_event=True)[["event_id", "group", "quality", "source"]]
    out = ev.merge(m, on="event_id", how="left")
    out["group"] = out["group"].fillna(NONE)
    return _pandas_filter(out, f, events=True)


def _pandas_filter(df: pd.DataFrame, f: Filters, events: bool) -> pd.DataFrame:
    keep = np.ones(len(df), dtype=bool)
    if f.time_start is not None:
        keep &= (df["time"] >= pd.Timestamp(f.time_start)).to_numpy()
    if f.time_end is not None:
        keep &= (df["time"] <= pd.Timestamp(f.time_end)).to_numpy()
    mag = df["magnitude"].to_numpy(dtype=float)
    if f.mag_min is not None:
        keep &= np.nan_to_num(mag, nan=-np.inf) >= f.mag_min
    if f.mag_max is not None:
        keep &= np.nan_to_num(mag, nan=np.inf) <= f.mag_max
    for col, vals in (("cluster", f.clusters), ("group", f.groups), ("quality", f.qualities)):
        if vals:
            keep &= df[col].astype(object).where(df[col].notna(), NONE).isin(vals).to_numpy()
    if not events and f.sources:
        keep &= df["source"].isin(f.sources).to_numpy()
    return df[keep]


def _filter_cases(ev, me):
    t = ev["time"].sort_values()
    t1, t2 = t.iloc[len(t) // 4], t.iloc[3 * len(t) // 4]
    clusters = [c for c in ev["cluster"].dropna().unique()[:2]]
    groups = sorted(me["group"].unique())
    return [
        Filters(),
        Filters.from_values(time_start=t1, time_end=t2),
        Filters.from_values(mag_min=0.0),
        Filters.from_values(mag_min=-1.0, mag_max=0.5),
        Filters.from_values(groups=[groups[0]]),
        Filters.from_values(groups=[NONE]),
        Filters.from_values(groups=[groups[-1], NONE], mag_max=1.0),
        Filters.from_values(qualities=["A", "B"]),
        Filters.from_values(qualities=[NONE]),
        Filters.from_values(clusters=clusters + [NONE]),
        Filters.from_values(clusters=clusters[:1] or [NONE], qualities=["A"], time_start=t1),
        Filters.from_values(sources=["published"]),
        Filters.from_values(sources=["computed"], groups=[groups[0]]),
        Filters.from_values(clusters=["'; DROP TABLE events; --"]),
        Filters.from_values(groups=HOSTILE, qualities=["A"]),
        *[Filters(population=p) for p in POPULATIONS],
        Filters.from_values(population="all", sources=["computed"]),
        Filters.from_values(population="any", qualities=["B"], mag_min=0.0),
        Filters.from_values(population="AB", groups=[groups[0]], clusters=clusters[:1] or [NONE]),
        Filters.from_values(population="computed", sources=["published"]),
    ]


def test_duckdb_equals_pandas(demo_data_dir, frames):
    ev, me = frames
    provider = DataProvider(demo_data_dir)
    n_cases = 0
    for f in _filter_cases(ev, me):
        got_ev = provider.export_frame("events", f)
        want_ev = _pandas_events(ev, me, f)
        assert sorted(got_ev["event_id"]) == sorted(want_ev["event_id"]), f
        got_me = provider.export_frame("mechanisms", f)
        want_me = _pandas_filter(_pandas_population(me, f), f, events=False)
        assert sorted(zip(got_me["event_id"], got_me["source"])) == \
            sorted(zip(want_me["event_id"], want_me["source"])), f
        c = provider.counts(f).iloc[0]
        assert (c["events"], c["mechanisms"]) == (len(want_ev), len(want_me))
        n_cases += 1
    assert n_cases >= 10
    # the tables themselves survived the hostile filters
    assert provider.counts(Filters()).iloc[0]["events"] == len(ev)


def test_hostile_filters_run_and_match_nothing(demo_data_dir):
    provider = DataProvider(demo_data_dir)
    f = Filters.from_query(urlencode([("cluster", v) for v in HOSTILE]))
    assert provider.counts(f).iloc[0].tolist() == [0, 0]
    assert math.isfinite(provider.events_for_map(f).attrs["matched"])


# ----------------------------------------------------------------- malformed filters are errors

@pytest.mark.parametrize("query, expected", [
    ("start=2016-13-45", ["start='2016-13-45' is not a date"]),
    ("end=yesterday", ["end='yesterday' is not a date"]),
    ("mmin=abc&mmax=nan", ["mmin='abc' is not a number", "mmax='nan' is not a number"]),
    ("mmin=1&mmin=2", ["mmin is given 2 times (one value only)"]),
    ("table=../../etc/passwd", ["table='../../etc/passwd' is not one of events, mechanisms"]),
    ("view=mercator&color=';DROP", ["color=\"';DROP\" is not one of time, group, depth, magnitude",
                                    "view='mercator' is not one of km, geo"]),
    ("quality=Z", ["quality='Z' is not one of A, B, C, D, none"]),
    ("mech=bogus", ["mech='bogus' is not one of " + ", ".join(POPULATIONS)]),
    ("cluster=nul%00byte", ["cluster='nul?byte' is not 1 to 64 printable characters"]),
])
def test_query_problems_name_each_malformed_value(query, expected):
    from components.filters import FilterQueryError, query_problems
    assert query_problems(query) == expected
    with pytest.raises(FilterQueryError) as info:
        Filters.from_query_strict(query)
    assert info.value.problems == expected
    assert Filters.from_query(query) == Filters.from_query(query)   # the lenient parser still never raises


@pytest.mark.parametrize("query", ["", "start=2016-11-03&end=2016-11-04T12:00&mmin=-0.5&quality=a&quality=none",
                                   "mmin=-99&start=0001-01-01",          # clamped, not malformed
                                   "start=&mmin=",                       # blank = no filter
                                   "evalset=manual50&picker=onset&set=subset:x",  # pages' own keys
                                   full_filters().to_query()])
def test_clean_queries_have_no_problems(query):
    from components.filters import query_problems
    assert query_problems(query) == []
    assert Filters.from_query_strict(query) == Filters.from_query(query)


def test_query_problems_of_oversized_and_overlong_queries():
    from components.filters import query_problems
    many = urlencode([("group", f"g{i}") for i in range(MAX_LIST + 3)])
    assert query_problems(many) == [f"group has {MAX_LIST + 3} values (at most {MAX_LIST})"]
    assert "longer than 8192 characters" in query_problems("group=" + "x" * 9000)[0]
    assert query_problems({"mmin": ["1", "oops"]}) == ["mmin is given 2 times (one value only)",
                                                       "mmin='oops' is not a number"]


def test_malformed_filter_download_is_400_not_whole_table(demo_data_dir):
    """Regression: a malformed value was dropped, i.e. read as "no filter", so
    ``/download/events.csv?mmin=abc`` sent every event. Now: 400 with the reason."""
    import io

    from app import create_app
    client = create_app(demo_data_dir).server.test_client()
    n_all = len(read_table(demo_data_dir, "events"))
    assert Filters.from_query("mmin=abc") == Filters()          # what the lenient parser makes of it
    for url, reason in (("/download/events.csv?mmin=abc", "mmin='abc' is not a number"),
                        ("/download/mechanisms.csv?start=2016-11-40", "start='2016-11-40' is not a date"),
                        ("/download/events.csv?mmin=1&quality=Q", "quality='Q' is not one of")):
        r = client.get(url)
        assert r.status_code == 400, url
        body = r.get_data(as_text=True)
        assert r.mimetype == "text/plain" and "nothing downloaded" in body and reason in body
        assert "event_id" not in body                                       # no CSV at all
    ok = client.get("/download/events.csv?mmin=1")
    assert ok.status_code == 200
    got = pd.read_csv(io.BytesIO(ok.get_data()))
    want = DataProvider(demo_data_dir).counts(Filters(mag_min=1.0)).iloc[0]["events"]
    assert len(got) == want < n_all


def test_filter_bar_alerts_malformed_url_and_disables_download():
    """The page side of the same bug: the bar's alert names the malformed values and its
    CSV link is disabled (it would download more rows than the address asks for)."""
    from components import filter_bar
    alert, cls, title = filter_bar.problem_children("?mmin=abc&group=g1")
    assert alert.color == "danger" and alert.children[1] == "mmin='abc' is not a number"
    assert "disabled" in cls.split() and "mmin='abc'" in title
    assert filter_bar.problem_children("?mmin=1&group=g1") == (None, "btn btn-primary btn-sm fm-download", None)
def test_population_url_round_trip_and_defaults():
    """``mech`` selects the mechanism population; the default (quality A) is omitted from the
    URL, a bad value falls back to it, and the data query (cache key, CSV link) keeps it."""
    assert Filters().population == DEFAULT_POPULATION == "A"
    assert Filters().to_query() == ""
    for key in POPULATIONS:
        f = Filters.from_query(f"mech={key}&view=geo")
        assert f.population == key
        assert Filters.from_query(f.to_query()) == f
        assert ("mech=" + key in f.data_query()) == (key != DEFAULT_POPULATION)
    assert Filters.from_query("mech=everything").population == DEFAULT_POPULATION
    assert Filters.from_query({"mech": ["bogus", "all"]}).population == "all"
    assert Filters().replace(population="computed").to_query() == "mech=computed"


def test_population_caption_says_what_is_counted():
    assert population_caption(Filters(), 2519) == \
        "Mechanisms: 2,519 events, one mechanism each (quality A, published first, else computed)"
    text = population_caption(Filters(population="all"), 3119, 3123)
    assert text.startswith("Mechanisms: 3,123 mechanisms of 3,119 events") and "several times" in text
    assert "Source filter: computed" in population_caption(Filters(sources=["computed"]), 3)


def test_unknown_list_values_are_named_with_what_the_data_have():
    """Issue 12 #7 (rest): ``cluster=bogus`` or ``cluster=<script>`` stayed selected with 0
    matches and no word; well formed, so no :func:`query_problems` problem, but the bar now
    says the data lack them (a warning, the CSV stays on: it matches what is shown)."""
    from components import filter_bar
    from components.filters import unknown_values

    options = {"clusters": ["NSw", "SWe", NONE], "groups": ["g1", "g2"], "qualities": ["A", "B"],
               "sources": ["published"]}
    f = Filters.from_query("cluster=NSw&cluster=<script>x</script>&source=bogus&quality=B&group=g1")
    found = unknown_values(f, options)
    assert len(found) == 2
    assert found[0].startswith("cluster '<script>x</script>' is not in these data (they have: NSw, SWe, none)")
    assert found[1].startswith("source 'bogus' is not in these data (they have: published)")
    assert unknown_values(Filters.from_query("cluster=NSw&quality=a"), options) == []
    assert unknown_values(f, {}) == []  # nothing known: nothing checked
    alert, cls, title = filter_bar.problem_children("?cluster=bogus", options)
    assert alert.color == "warning" and "cluster 'bogus' is not in these data" in alert.children[1]
    assert "disabled" not in cls.split() and title is None
    # a malformed value is still the danger alert (and the CSV off)
    assert filter_bar.problem_children("?cluster=bogus&mmin=abc", options)[0].color == "danger"
