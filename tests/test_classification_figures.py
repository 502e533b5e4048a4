"""Unit tests of the classification page's pure helpers and figures
(components/classification_figures.py); no browser."""
from __future__ import annotations

import base64
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from components import classification_figures as cf
from pipeline.analysis.mechanism_stats import FROHLICH_VERTICES, group_average_table
from pipeline.mechanisms import focal
from pipeline.mechanisms.groups import PUBLISHED_RULE, RULE_COLUMNS

REFERENCE = {"g1": 462, "g2": 1648, "g3": 130, "g4": 205, "other": 74}


def _arr(v):
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]).newbyteorder("<")).astype(float)
    return np.array([np.nan if x is None else x for x in v], dtype=float)


def _mechs(sdr, xy=None, mags=None, groups=None):
    sdr = np.asarray(sdr, dtype=float).reshape(-1, 3)
    n = len(sdr)
    axes = focal.pbt_axes(sdr[:, 0], sdr[:, 1], sdr[:, 2])
    xy = np.zeros((n, 2)) if xy is None else np.asarray(xy, dtype=float)
    df = pd.DataFrame({"event_id": [f"e{i:04d}" for i in range(n)], "x_km": xy[:, 0], "y_km": xy[:, 1],
                       "magnitude": np.zeros(n) if mags is None else np.asarray(mags, dtype=float),
                       "strike": sdr[:, 0], "dip": sdr[:, 1], "rake": sdr[:, 2],
                       "p_plunge": axes["p"][1], "b_plunge": axes["b"][1], "t_plunge": axes["t"][1]})
    df["group"] = groups if groups is not None else cf.regroup(df.assign(group="?"), PUBLISHED_RULE)["group"]
    return df


@pytest.fixture(scope="module")
def toc2me_a(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    return m[m["quality"] == "A"].reset_index(drop=True)


# -- the group rule on ToC2ME -------------------------------------------------------------------
def test_published_rule_reproduces_the_reference_counts_on_toc2me(toc2me_a):
    assert len(toc2me_a) == 2519
    r = cf.regroup(toc2me_a, PUBLISHED_RULE)
    order = cf.group_order(PUBLISHED_RULE)
    assert order == ["g1", "g2", "g3", "g4", "other"]
    summary = cf.group_summary(r, order)
    assert dict(zip(summary["group"], summary["n"])) == REFERENCE
    assert summary["changed"].sum() == 0  # same rule as the stored groups
    # on integer-rounded angles the counts would differ (classify once, on 0.1 deg: defect 3)
    rounded = cf.regroup(toc2me_a.assign(strike=toc2me_a["strike"].round(), dip=toc2me_a["dip"].round(),
                                          rake=toc2me_a["rake"].round()), PUBLISHED_RULE)
    assert (rounded["group"] != r["group"]).sum() > 40


def test_edited_rule_changes_the_counts(toc2me_a):
    rows = cf.default_rule_rows()
    rows[0]["strike_max"] = 6   # g1: 0-12 -> 0-6
    rule, err = cf.check_rule(rows)
    assert err is None
    r = cf.regroup(toc2me_a, rule)
    counts = r["group"].value_counts().to_dict()
    assert counts["g1"] < 462 and sum(counts.values()) == 2519
    moved = r[r["group"] != r["group_stored"]]
    assert len(moved) == 462 - counts["g1"]
    assert set(moved["group_stored"]) == {"g1"}
    assert ((moved["strike"] > 6) & (moved["strike"] <= 12)).all()
    # a new group name takes a palette colour; 'other' stays gold
    rows.append({**cf.new_rule_row(rows), "strike_min": 60, "strike_max": 90})
    rule, err = cf.check_rule(rows)
    assert err is None and cf.group_order(rule) == ["g1", "g2", "g3", "g4", "g5", "other"]
    colors = cf.group_colors(cf.group_order(rule))
    assert colors["g5"] == cf.EXTRA_COLORS[0] and colors["other"] == "rgb(255,214,0)"


def test_group_summary_with_moment_tensor_averages(toc2me_a):
    r = cf.regroup(toc2me_a, PUBLISHED_RULE)
    order = cf.group_order(PUBLISHED_RULE)
    averages = group_average_table(r, groups=order)
    s = cf.group_summary(r, order, averages).set_index("group")
    assert s.loc["g2", "share"] == pytest.approx(1648 / 2519)
    assert math.isnan(s.loc["other", "strike"])  # no average for 'other'
    for g in ("g1", "g2", "g3", "g4"):
        assert 0 < s.loc[g, "kagan_median"] <= s.loc[g, "kagan_p90"] < 60
    # g3 is the oblique, moderately dipping family
    assert 40 < s.loc["g3", "dip"] < 65


# -- rule table validation and the URL fragment ----------------------------------------------------
@pytest.mark.parametrize("rows, fragment", [
    ([], "at least one row"),
    (None, "at least one row"),
    ([{"group": "g1", "strike_min": 20, "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 165}],
     "row 1: need 0 <= strike_min <= strike_max <= 360"),
    ([{"group": "g1", "strike_min": 0, "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 165},
      {"group": "g2", "strike_min": 0, "strike_max": 10, "dip_min": 0, "dip_max": 95, "abs_rake_min": 165}],
     "row 2: need 0 <= dip_min <= dip_max <= 90"),
    ([{"group": "other", "strike_min": 0, "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 0}],
     "must be set and not 'other'"),
    ([{"group": None, "strike_min": 0, "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 0}],
     "must be set"),
    ([{"group": "g1", "strike_min": "abc", "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 0}],
     "every range bound must be a number"),
    ([{"group": "g1", "strike_min": None, "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 0}],
     "every range bound must be a number"),
    ([{"group": "g1", "strike_min": 0, "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 200}],
     "abs_rake_min <= 180"),
    (["junk"], "not a row"),
    ([{"group": "x" * 100, "strike_min": 0, "strike_max": 10, "dip_min": 0, "dip_max": 90, "abs_rake_min": 0}],
     "at most"),
    ([{"group": "g1", "strike_min": float("nan"), "strike_max": 10, "dip_min": 0, "dip_max": 90,
       "abs_rake_min": 0}], "must be a number"),
])
def test_invalid_rules_give_the_validate_rule_message_never_raise(rows, fragment):
    rule, err = cf.check_rule(rows)
    assert rule is None and fragment in err


def test_valid_rule_rows_accept_strings_and_whitespace():
    rule, err = cf.check_rule([{"group": " g7 ", "strike_min": "10", "strike_max": 20.5, "dip_min": 0,
                                "dip_max": 90, "abs_rake_min": 150}])
    assert err is None and rule["group"].tolist() == ["g7"] and rule["strike_max"].iloc[0] == 20.5


def test_rule_encoding_round_trips_and_is_compact():
    code = cf.encode_rule(PUBLISHED_RULE)
    assert code.startswith("g1:0,12,0,90,165;g1:170,192,0,90,165;") and len(code) < 200
    assert cf.same_rule(cf.decode_rule(code), PUBLISHED_RULE)
    odd = pd.DataFrame([("NS west;&=#", 10.5, 20, 0, 90, 150), ("g1", 0, 360, 0, 90, 0)], columns=RULE_COLUMNS)
    back = cf.decode_rule(cf.encode_rule(odd))
    assert back["group"].tolist() == ["NS west;&=#", "g1"] and back["strike_min"].iloc[0] == 10.5
    h = cf.format_hash(odd, 1.5)
    assert h.startswith("#rule=") and "&ml=1.5" in h
    parsed = cf.parse_hash(h)
    assert cf.same_rule(parsed["rule"], odd) and parsed["ml"] == 1.5 and not parsed["bad"]
    # defaults leave no fragment
    assert cf.format_hash(PUBLISHED_RULE, cf.DEFAULT_THRESHOLD) == ""
    assert cf.format_hash(PUBLISHED_RULE, 2) == "#ml=2"
    assert cf.parse_hash("") == {"rule": None, "ml": None, "bad": False}


@pytest.mark.parametrize("fragment", [
    "#rule=g1:0,12,0,90", "#rule=g1:20,10,0,90,165", "#rule=" + "g1:0,1,0,9,0;" * 500,
    "#ml=nan", "#ml=1e9", "#rule=other:0,1,0,90,0", "#rule=g1:0,1,0,90,0x", "#rule=%ff%fe:0,1,0,90,0",
])
def test_hostile_fragments_are_ignored(fragment):
    parsed = cf.parse_hash(fragment)
    assert parsed["bad"] and parsed["rule"] is None and parsed["ml"] is None


# -- figures ------------------------------------------------------------------------------------
def test_ternary_vertices_are_right_for_pure_mechanisms():
    # pure strike-slip (vertical plane, horizontal slip), pure thrust and pure normal (45 deg dip)
    mechs = _mechs([[0, 90, 0], [0, 45, 90], [0, 45, -90], [30, 90, 180]])
    fig = cf.ternary_figure(mechs)
    go.Figure(fig)
    pts = {}
    for t in fig["data"]:
        if t.get("mode") == "markers":
            for x, y, txt in zip(_arr(t["x"]), _arr(t["y"]), t["text"]):
                pts[txt.split(" ·")[0]] = (x, y)
    for eid, corner in (("e0000", "strike-slip"), ("e0001", "thrust"), ("e0002", "normal"), ("e0003", "strike-slip")):
        np.testing.assert_allclose(pts[eid], FROHLICH_VERTICES[corner], atol=1e-5)
    # the triangle joins the three vertices, labelled
    tri = fig["data"][0]
    assert {(round(x, 6), round(y, 6)) for x, y in zip(tri["x"], tri["y"])} == \
        {(round(v[0], 6), round(v[1], 6)) for v in FROHLICH_VERTICES.values()}
    labels = {a["text"] for a in fig["layout"]["annotations"]}
    assert {"<b>Strike-slip</b>", "<b>Thrust</b>", "<b>Normal</b>"} <= labels
    # coloured by Zoback class: strike-slip SS, thrust TF, normal NF
    assert fig["layout"]["meta"]["classes"] == {"SS": 2, "TF": 1, "NF": 1}
    colors = {t["name"].split(" ")[0]: t["marker"]["color"] for t in fig["data"] if t.get("mode") == "markers"}
    assert colors == {c: cf.ZOBACK_COLORS[c] for c in ("SS", "TF", "NF")}


def test_ternary_on_toc2me_classes(toc2me_a):
    fig = cf.ternary_figure(toc2me_a)
    classes = fig["layout"]["meta"]["classes"]
    assert sum(classes.values()) == 2519 and classes["SS"] > 2000
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x"


def test_ternary_without_plunge_columns_and_empty():
    mechs = _mechs([[0, 45, 90]]).drop(columns=["p_plunge", "b_plunge", "t_plunge"])
    fig = cf.ternary_figure(mechs)
    x = _arr([t for t in fig["data"] if t.get("mode") == "markers"][0]["x"])
    assert x[0] == pytest.approx(FROHLICH_VERTICES["thrust"][0], abs=1e-5)
    empty = cf.ternary_figure(mechs.iloc[:0])
    assert any("No mechanism" in a["text"] for a in empty["layout"]["annotations"])


def test_few_points_are_svg_and_many_webgl(toc2me_a):
    """The classification map draws its points as SVG up to SVG_MAX_POINTS mechanisms and
    as WebGL above; every point is drawn either way. (The ternary diagram is drawn as server
    SVG from its figure, whose point traces are plain scatter at any size.)"""
    few = toc2me_a.head(cf.SVG_MAX_POINTS)
    many = pd.concat([toc2me_a, toc2me_a], ignore_index=True).head(cf.SVG_MAX_POINTS + 1)
    for mechs, kind in ((few, "scatter"), (many, "scattergl")):
        ternary = [t for t in cf.ternary_figure(mechs)["data"] if t.get("mode") == "markers"]
        assert {t["type"] for t in ternary} == {"scatter"}
        assert sum(len(_arr(t["x"])) for t in ternary) == len(mechs)
        mapped = mechs.assign(x_km=np.arange(len(mechs)) * 0.01, y_km=0.0, magnitude=0.5,
                              group=cf.regroup(mechs, PUBLISHED_RULE)["group"].to_numpy())
        points = [t for t in cf.classification_map_figure(mapped, threshold=None)["data"]
                  if t.get("mode") in ("markers", "lines") and t.get("name") != "wells"]
        assert {t["type"] for t in points} == {kind}
        assert sum(len(_arr(t["x"])) for t in points if t["mode"] == "markers") == len(mechs)


def test_distributions_roses_are_axial_and_histograms_count_every_event():
    mechs = _mechs([[5, 80, 175], [185, 85, -178], [30, 88, 176], [210, 89, 179], [100, 30, 60]])
    order = cf.group_order(PUBLISHED_RULE)
    fig = cf.distributions_figure(mechs, order)
    go.Figure(fig)
    assert fig["layout"]["meta"] == {"groups": ["g1", "g2", "other"], "n": [2, 2, 1]}
    roses = [t for t in fig["data"] if t["type"] == "barpolar"]
    assert len(roses) == 3
    g1 = roses[0]
    assert sum(g1["r"]) == 4  # 2 events, each counted at s and s + 180 (mirrored)
    r = dict(zip(g1["theta"], g1["r"]))
    assert r[5.0] == 2 and r[185.0] == 2  # 5 and 185 are the same axis
    assert fig["layout"]["polar"]["angularaxis"]["direction"] == "clockwise"
    assert fig["layout"]["polar"]["angularaxis"]["rotation"] == 90
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert len(bars) == 6 and all(sum(b["y"]) == n for b, n in zip(bars, [2, 2, 2, 2, 1, 1]))
    assert cf.distributions_figure(mechs.iloc[:0], order)["data"] == []


def test_strike_ticks_are_100_m_along_strike():
    x, y = cf.strike_ticks([1.0, 0.0, 2.0], [2.0, 0.0, 0.0], [0.0, 90.0, 45.0])
    x, y = x.reshape(3, 3), y.reshape(3, 3)
    assert np.isnan(x[:, 2]).all() and np.isnan(y[:, 2]).all()
    np.testing.assert_allclose(np.hypot(x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]), cf.TICK_KM)
    np.testing.assert_allclose(x[0, :2], [1.0, 1.0])            # strike 0: north-south
    np.testing.assert_allclose(y[0, :2], [1.95, 2.05])
    np.testing.assert_allclose(y[1, :2], [0.0, 0.0], atol=1e-12)  # strike 90: east-west
    np.testing.assert_allclose((x[2, :2].mean(), y[2, :2].mean()), (2.0, 0.0))  # centred on the event


def test_map_draws_ticks_circles_balls_and_wells():
    mechs = _mechs([[5, 80, 175], [185, 85, -178], [30, 88, 176], [100, 30, 60]],
                   xy=[[0, 0], [0.5, 0.5], [1, 1], [1.5, 0.2]], mags=[2.5, 1.0, 1.9, np.nan])
    wells = pd.DataFrame({"well": ["A"] * 3, "vertex": [0, 1, 2], "x_km": [0.2, 0.2, 0.25],
                          "y_km": [2.0, 1.0, 0.0]})
    fig = cf.classification_map_figure(mechs, wells, threshold=1.86, order=cf.group_order(PUBLISHED_RULE))
    go.Figure(fig)
    assert fig["layout"]["meta"] == {"ticks": 4, "balls": 2, "balls_matched": 2, "threshold": 1.86}
    assert fig["layout"]["yaxis"]["scaleanchor"] == "x"
    names = [t["name"] for t in fig["data"]]
    assert names[0] == "wells" and "g1 (2)" in names and "g2 (1)" in names and "other (1)" in names
    ticks = [t for t in fig["data"] if t["name"] == "g1 (2)"][0]
    assert ticks["mode"] == "lines" and ticks["line"]["color"] == "rgb(255,0,0)"
    assert len(_arr(ticks["x"])) == 2 * 3  # two NaN-separated ticks
    circles = [t for t in fig["data"] if t["name"] == "g1" and t["mode"] == "markers"][0]
    assert circles["marker"]["symbol"] == "circle-open"
    hover = [t for t in fig["data"] if t["name"] == "beachball hover"][0]
    assert len(hover["x"]) == 2 and hover["x"] == [1.0, 0.0]  # ML 1.9 then 2.5 (largest on top)
    assert {a["text"] for a in fig["layout"]["annotations"]} == {"<b>A</b>"}
    none = cf.classification_map_figure(mechs, wells, threshold=5)
    assert none["layout"]["meta"]["balls"] == 0
    empty = cf.classification_map_figure(mechs.iloc[:0], wells)
    assert any("No mechanism" in a["text"] for a in empty["layout"]["annotations"])


def test_map_default_threshold_gives_12_beachballs_on_toc2me(toc2me_tables, toc2me_a):
    r = cf.regroup(toc2me_a, PUBLISHED_RULE)
    fig = cf.classification_map_figure(r, toc2me_tables["wells"], order=cf.group_order(PUBLISHED_RULE))
    assert fig["layout"]["meta"]["balls"] == 12 and fig["layout"]["meta"]["ticks"] == 2519
    assert len({a["text"] for a in fig["layout"]["annotations"]}) == 4  # wells A-D labelled
