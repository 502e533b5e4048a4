"""The parameterised group rule and the faulting-style schemes."""
import numpy as np
import pandas as pd
import pytest

from pipeline.mechanisms import enrich, groups


def test_rule_order_and_boundaries():
    # strike 12 belongs to g1 (listed first), 19 to g2, 12.5 to g4; |rake| < 165 -> other
    s = [12, 19, 12.5, 190, 190, 5, 5]
    d = [80, 80, 80, 50, 80, 80, 80]
    r = [170, -170, 175, 170, 170, 150, -164.9]
    assert list(groups.classify_groups(s, d, r)) == ["g1", "g2", "g4", "g1", "g1", "other", "other"]


def test_g3_needs_its_dip_range():
    # strike 195 is past g1's 170-192 range, so the dip decides between g3 and g4
    assert list(groups.classify_groups([195, 195], [50, 80], [170, 170])) == ["g3", "g4"]


def test_custom_rule_and_validation():
    rule = pd.DataFrame([("N-S", 170, 190, 0, 90, 150)], columns=groups.RULE_COLUMNS)
    assert list(groups.classify_groups([180, 100], [80, 80], [160, 160], rule)) == ["N-S", "other"]
    bad = rule.assign(strike_max=400)
    with pytest.raises(ValueError, match="row 1"):
        groups.classify_groups([180], [80], [160], bad)
    with pytest.raises(ValueError, match="row 1"):
        groups.classify_groups([180], [80], [160], rule.assign(dip_min="steep"))


def test_rake_style():
    assert list(groups.rake_style([0, 30, 31, 149, 150, -31, -150, 180])) == [
        "strike-slip", "strike-slip", "reverse", "reverse", "strike-slip", "normal", "strike-slip", "strike-slip"]


@pytest.mark.parametrize("sdr, zoback, frohlich", [
    ((0, 90, 180), "SS", "strike-slip"),
    ((0, 45, 90), "TF", "thrust"),
    ((0, 45, -90), "NF", "normal"),
])
def test_pure_mechanisms_classify(sdr, zoback, frohlich):
    m = enrich.complete_mechanisms(pd.DataFrame([sdr], columns=["strike", "dip", "rake"]))
    assert m.zoback_class[0] == zoback
    assert groups.frohlich_class(m.p_plunge, m.b_plunge, m.t_plunge)[0] == frohlich
