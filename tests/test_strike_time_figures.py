"""The strike-time figure builders (no browser): every stage drawn, daily bars on their day,
group statistics, the CSV table; reference numbers on the real ToC2ME tables."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components import strike_time_figures as stf
from pipeline.analysis.strike_time import injection_bars, stage_markers, strike_time_table


@pytest.fixture(scope="module")
def demo():
    from pipeline.demo import scenario as demo

    return demo.generate(seed=20161104)


def _parts(tables, cluster="NSw"):
    mech = tables["mechanisms"]
    table = strike_time_table(mech[mech["cluster"] == cluster])
    return table, stage_markers(tables["stages"]), injection_bars(tables["injection"])


def _lane_ticks(fig):
    return [t for t in fig["data"] if t.get("yaxis") == "y3" and t.get("mode") == "markers"]


def test_figure_draws_every_stage_and_each_bar_on_its_day(demo):
    table, markers, bars = _parts(demo)
    fig = stf.strike_time_figure(table, markers, bars)
    # every stage of every well is a tick in the lane strip (not only the first one)
    ticks = _lane_ticks(fig)
    assert sum(len(t["x"]) for t in ticks) == len(demo["stages"])
    assert sorted(t["y"][0] for t in ticks) == sorted(demo["stages"]["well"].unique())
    # ... and a faint vertical line in the main panel; the first stage of each well dashed
    lines = [t for t in fig["data"] if t.get("yaxis") == "y2" and t.get("mode") == "lines"]
    dashed = [t for t in lines if t["line"].get("dash") == "dash"]
    assert len(dashed) == demo["stages"]["well"].nunique()
    assert sum(len([v for v in t["x"] if v is not None]) // 2 for t in lines if t not in dashed) == len(demo["stages"])
    # the original's well colours: A green, B blue, C purple, D red
    colours = {t["y"][0]: t["marker"]["color"] for t in ticks}
    assert colours == {w: stf.WELL_PLOT_COLOURS[w] for w in colours}
    # daily bars: centred at noon of the day they describe, one day wide (single row per day)
    bar = next(t for t in fig["data"] if t["type"] == "bar")
    assert bar["yaxis"] == "y" and fig["layout"]["yaxis"]["side"] == "right"
    one_per_day = bars["n_in_day"] == 1
    x = pd.to_datetime(pd.Series(bar["x"]), utc=True)[one_per_day.to_numpy()]
    assert (x.dt.hour == 12).all() and (x.dt.minute == 0).all()
    assert np.allclose(np.asarray(bar["width"])[one_per_day.to_numpy()], 86_400_000)
    assert [d.date() for d in x.dt.floor("D")] == list(bars.loc[one_per_day, "date"])


def test_scatter_by_group_with_magnitude_sizes_and_strike_in_range(demo):
    table, markers, bars = _parts(demo)
    fig = stf.strike_time_figure(table, markers, bars)
    pts = [t for t in fig["data"] if t.get("yaxis") == "y2" and t.get("mode") == "markers"]
    assert sum(len(t["x"]) for t in pts) == len(table)
    assert fig["layout"]["meta"]["n_mechanisms"] == len(table)
    ys = np.concatenate([t["y"] for t in pts])
    assert ys.min() >= 90 and ys.max() <= 270
    for t in pts:
        g = t["legendgroup"].split("-", 1)[1]
        assert t["marker"]["color"] == stf.GROUP_COLORS.get(g, stf.UNKNOWN_GROUP_COLOR)
    # marker size grows with ML: the diameter is sqrt((ML + 4)^3)
    big = table.loc[table["magnitude"].idxmax()]
    small = table.loc[table["magnitude"].idxmin()]
    assert big["marker_size"] > small["marker_size"]
    assert big["marker_size"] == pytest.approx(np.sqrt((big["magnitude"] + 4) ** 3))
    assert fig["layout"]["yaxis2"]["overlaying"] == "y"  # markers above the bars


def test_time_window_fixes_the_axis_and_empty_table_has_a_message(demo):
    table, markers, bars = _parts(demo)
    fig = stf.strike_time_figure(table, markers, bars, time_range=(pd.Timestamp("2016-11-20", tz="UTC"),
                                                                   pd.Timestamp("2016-11-25", tz="UTC")))
    assert fig["layout"]["xaxis"]["range"] == ["2016-11-20T00:00:00.000", "2016-11-25T00:00:00.000"]
    empty = stf.strike_time_figure(table.iloc[0:0], markers, bars)
    assert any("No mechanism" in a["text"] for a in empty["layout"]["annotations"])
    assert _lane_ticks(empty)  # stages still drawn
    nothing = stf.strike_time_figure(table.iloc[0:0], None, None)
    assert nothing["data"] == [] and nothing["layout"]["annotations"]


def test_group_stats_and_csv(demo):
    table, _, _ = _parts(demo)
    stats = stf.group_stats(table)
    assert list(stats["group"]) == [g for g in stf.GROUP_COLORS if g in set(table["group"])] + \
        sorted(set(table["group"]) - set(stf.GROUP_COLORS))
    for _, r in stats.iterrows():
        sub = table.loc[table["group"] == r["group"], "strike_norm"]
        assert r["n"] == len(sub) and r["mean"] == pytest.approx(sub.mean())
    assert stf.format_mean_sd(182.73, 2.76) == "182.7 ± 2.8°"
    assert stf.format_mean_sd(182.73, float("nan")) == "182.7°"
    assert stf.format_mean_sd(float("nan"), float("nan")) == "–"
    csv = stf.csv_table(table, "NSw")
    assert list(csv.columns) == ["event_id", "cluster", *stf.CSV_COLUMNS[1:]]
    assert len(csv) == len(table) and csv["time"].str.endswith("Z").all()
    assert (csv["strike_norm"] == table["strike_norm"]).all()
    assert len(stf.group_stats(table.iloc[0:0])) == 0


def test_toc2me_nsw_reference_numbers(toc2me_tables):
    """NSw = 290 mechanisms; g1 strike 182.7 +- 2.8 (classified on 0.1-deg angles); all 186
    stages (21/24/125/16) drawn; 59 injection rows as daily bars."""
    mech = toc2me_tables["mechanisms"]
    nsw = mech[(mech["cluster"] == "NSw") & (mech["source"] == "published")]
    assert len(nsw) == 290
    table = strike_time_table(nsw)
    stats = stf.group_stats(table).set_index("group")
    assert stats.loc["g1", "n"] == 230
    assert stats.loc["g1", "mean"] == pytest.approx(182.7, abs=0.05)
    assert stats.loc["g1", "std"] == pytest.approx(2.8, abs=0.05)
    markers = stage_markers(toc2me_tables["stages"])
    bars = injection_bars(toc2me_tables["injection"])
    fig = stf.strike_time_figure(table, markers, bars)
    per_well = {t["y"][0]: len(t["x"]) for t in _lane_ticks(fig)}
    assert per_well == {"A": 21, "B": 24, "C": 125, "D": 16}
    assert len(next(t for t in fig["data"] if t["type"] == "bar")["x"]) == 59
    # the two bursts
    t = pd.to_datetime(table["time"], utc=True)
    assert ((t >= "2016-11-07") & (t < "2016-11-15")).sum() == 94
    assert ((t >= "2016-11-23") & (t < "2016-12-01")).sum() == 196
