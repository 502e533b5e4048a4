"""Figure builders and tables of the polarity-model page (no browser, no DuckDB)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components import model_figures as mf
from pipeline.picking import evaluate as E


def _toy():
    """A toy build: 20 stations of one reversed event, manual picks, reference, CNN, onset."""
    rng = np.random.default_rng(3)
    n = 20
    true = np.where(rng.random(n) < 0.5, 1, -1)
    rec_down = true == 1                     # reversed network: true up = recorded down
    rows = []
    for i in range(n):
        sta = f"S{i:02d}"
        p_cnn = (0.97 if rec_down[i] else 0.03) if i != 3 else 0.5           # one abstention
        p_cnn = 1 - p_cnn if i == 5 else p_cnn                             # one error
        p_on = 1.0 if rec_down[i] else 0.0
        p_on = 0.5 if i in (7, 8) else p_on
        p_ref = 0.99 if rec_down[i] else 0.01
        for method, p, lo, hi in (("cnn", p_cnn, 0.2, 0.8), ("onset", p_on, 0.25, 0.75),
                                  ("reference", p_ref, np.nan, np.nan)):
            lo_, hi_ = (0.05, 0.95) if method == "reference" else (lo, hi)
            rec = -1 if p >= hi_ else (1 if p <= lo_ else 0)
            rows.append(dict(event_id="20161104064824.680", network="5B", station=sta, method=method,
                             polarity=-rec, prob_down_recorded=p, lower=lo, upper=hi))
        if i < 10:
            rows.append(dict(event_id="20161104064824.680", network="5B", station=sta, method="manual",
                             polarity=int(true[i]), prob_down_recorded=np.nan, lower=np.nan, upper=np.nan))
    pol = pd.DataFrame(rows)
    pol["polarity"] = pol["polarity"].astype("int8")
    return {"polarities": pol, "stations": pd.DataFrame({"network": ["5B"] * n, "station": [f"S{i:02d}" for i in
                                                                                            range(n)],
                                                         "reversed": [True] * n})}


@pytest.fixture(scope="module")
def rows(tmp_path_factory):
    inp = tmp_path_factory.mktemp("input")
    (inp / "model_test").mkdir()
    ep = np.arange(12)
    pd.DataFrame({"epoch": ep, "acc": 0.9 + 0.008 * ep, "loss": 0.25 - 0.015 * ep, "lr": 0.001,
                  "val_acc": 0.94 + 0.002 * np.minimum(ep, 5) - 0.001 * np.maximum(ep - 5, 0),
                  "val_loss": 0.15 - 0.005 * np.minimum(ep, 3) + 0.01 * np.maximum(ep - 3, 0)}) \
        .to_csv(inp / "model_test" / "training_log_90.csv", index=False)
    return E.evaluate(_toy(), input_dir=inp)


def test_headline_cards_separate_held_out_from_in_sample(rows):
    cards = {c["key"]: c for c in mf.headline_cards(rows)}
    assert {"reference", "manual", "decided"} <= set(cards)
    ref = cards["reference"]
    # the big number is the nested held-out (leave-one-event-out) accuracy, with its interval
    # and the sample size in the caption
    g = lambda n: mf.metric(rows, "cnn", "loeo_heldout", n)  # noqa: E731
    assert ref["value"] == mf.fmt_pct(g("accuracy"))
    assert mf.fmt_ci(g("accuracy_ci_low"), g("accuracy_ci_high")) in ref["caption"]
    assert f"{int(g('n_labelled'))} labelled traces of 2 events" in ref["caption"]
    held = dict((label, text) for label, text, _ in ref["lines"])["CNN, held-out (nested)"]
    assert f"= {mf.fmt_pct(g('coverage'))} [" in held                   # coverage with its interval
    tags = {label: tag for label, _, tag in ref["lines"]}
    assert tags["CNN, this build"] == "in-sample"                      # the record's events: optimistic
    assert tags["Onset baseline"] == "baseline"
    man = cards["manual"]
    assert any("8/10 matched, 1 wrong" in text for _, text, _ in man["lines"])
    dec = cards["decided"]
    assert dec["value"] == "95.0 %"                                     # 19 of 20 CNN traces decided
    assert "truth" not in cards


def test_metrics_table(rows):
    t = mf.metrics_table(rows, "manual50")
    assert list(t.columns) == ["model", "dataset", *mf.TABLE_COLUMNS]
    assert t["model"].tolist() == ["cnn", "onset", "reference"]
    cnn = t.set_index("model").loc["cnn"]
    assert (cnn.n_labelled, cnn.n_decided, cnn.n_correct) == (10, 9, 8)
    assert cnn.band == "0.2–0.8" and "in-sample" in cnn.note
    from pipeline.picking.intervals import wilson_interval
    assert cnn.accuracy_ci == mf.fmt_ci(*wilson_interval(8, 9))           # every share with its interval
    assert cnn.coverage_ci == mf.fmt_ci(*wilson_interval(9, 10))
    assert mf.metrics_table(rows, "no-such-set").empty
    assert mf.available_datasets(rows) == ["loeo_heldout", "manual50", "reference_confident"]


def test_curves_figure(rows):
    fig = mf.curves_figure(rows, "reference_confident")
    names = {t.name for t in fig.data if t.showlegend is not False}
    assert names == {"CNN (ours)", "Onset baseline"}
    onset_roc = [t for t in fig.data if t.name == "Onset baseline" and t.xaxis == "x"]
    assert len(onset_roc) == 1 and len(onset_roc[0].x) <= 4 and "markers" in onset_roc[0].mode
    assert fig.layout.annotations[0].text.startswith("ROC (positive = recorded down)")
    # the picker's own band is ringed on the coverage panel
    assert any(t.name == "CNN (ours) band" and t.xaxis == "x3" for t in fig.data)
    assert mf.curves_figure(rows, "no-such-set")["layout"]["annotations"][0]["text"].startswith("No curves")


def test_confusion_figure_true_convention(rows):
    fig = mf.confusion_figure(rows, "manual50")
    heat = [t for t in fig.data if t.type == "heatmap"]
    assert len(heat) == 3
    cnn = heat[0]
    assert list(cnn.y) == ["true up", "true down"] and list(cnn.x) == ["up", "down", "undet."]
    assert np.asarray(cnn.text).sum() == 10
    assert np.allclose(np.asarray(cnn.z).sum(axis=1), 1.0)
    rep = mf.confusion_figure(rows, E.REPORTED, convention="recorded")
    assert np.asarray(rep.data[0].text).tolist() == [[1156, 12], [11, 1682]]
    assert isinstance(mf.confusion_figure(rows, "no-such-set"), dict)


def test_calibration_figure_shades_the_band(rows):
    fig = mf.calibration_figure(rows, "reference_confident")
    rect = [s for s in fig.layout.shapes if s.type == "rect"]
    assert len(rect) == 1 and (rect[0].x0, rect[0].x1) == (0.2, 0.8)
    assert any("undetermined band" in a.text for a in fig.layout.annotations)
    pts = [t for t in fig.data if t.name == "CNN (ours)"][0]
    assert np.all((np.asarray(pts.x) >= 0) & (np.asarray(pts.x) <= 1))
    assert sum(pts.customdata) == 20                                   # every labelled trace in a bin


def test_training_figure_two_panels(rows):
    fig = mf.training_figure(rows)
    ours = [t for t in fig.data if t.name.startswith("ours")]
    ref = [t for t in fig.data if t.name.startswith("reference")]
    assert {t.name for t in ours} == {"ours: pre-training (synthetic)", "ours: fine-tuning (real + synthetic)"}
    assert {t.name for t in ref} == {"reference: train loss", "reference: val loss", "reference: train acc",
                                     "reference: val acc"}
    assert all(t.xaxis == "x2" for t in ref) and all(t.xaxis == "x" for t in ours)
    vline = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(vline) == 1 and vline[0].x0 == 5                         # best val_acc epoch of the toy log
    # ours continue across the two phases (epochs 1..n)
    assert min(ours[0].x) == 1
    only_ours = rows[~((rows.model == "reference") & (rows.dataset == "training"))]
    fig2 = mf.training_figure(only_ours)
    assert any("not available" in a.text for a in fig2.layout.annotations)
    assert isinstance(mf.training_figure(rows.iloc[0:0]), dict)


def test_reported_numbers_and_summary(rows):
    rep = mf.reported_numbers(rows)
    assert rep["n"] == 2861 and rep["confusion"] == [[1156, 12], [11, 1682]]
    assert [label for label, _ in rep["accuracy"]][-1] == "Reference (Micro-EQpolarity)"
    assert mf.reported_numbers(rows.iloc[0:0]) is None
    summ = dict(mf.training_summary(rows))
    assert "epoch 5" in summ["Reference"] and "held-out" in summ["Our CNN"]


def test_demo_subsets_and_truth_card(demo_data_dir):
    rows = E.evaluate(demo_data_dir)
    t = mf.subsets_table(rows)
    assert len(t) == 5 and {"cnn_accuracy", "onset_coverage"} <= set(t.columns)
    cards = {c["key"]: c for c in mf.headline_cards(rows)}
    assert cards["truth"]["value"] == mf.fmt_pct(mf.metric(rows, "cnn", "demo_truth", "accuracy"))
    assert mf.available_datasets(rows) == ["loeo_heldout", "demo_truth"]


# -- margins that hold the legends (one draw per figure, issue 12) -----------------------------------
def test_legend_rows_one_row_or_a_grid_of_the_widest_entry():
    names = ["CNN (ours)", "Onset baseline", "perfect calibration"]
    widths = [mf.legend_entry_width(n) for n in names]
    assert widths[0] < widths[1] < widths[2]                              # longer text, wider entry
    assert mf.legend_rows(names, 10_000) == 1 and mf.legend_rows([], 50) == 1
    # too narrow for one row: equal columns as wide as the widest entry plus its 5 px gap; k of
    # them fit in a row while k * column + 5 px padding - 5 px gap < the plot's width
    column = max(widths) + 5
    assert mf.legend_rows(names, sum(widths)) == 2                        # two columns of the widest fit
    assert mf.legend_rows(names, 2 * column + 0.5) == 2 and mf.legend_rows(names, 2 * column) == 3
    # one row: every entry at its own width, two 5 px paddings and a 5 px gap between entries
    assert mf.legend_rows(names, sum(widths) + 10 + 10 + 0.5) == 1 and mf.legend_rows(names, sum(widths) + 20) == 2
    assert mf.legend_rows(names, 1) == 3                                  # never fewer than one per row
    narrower = [mf.legend_rows(names * 3, w) for w in range(2000, 50, -50)]
    assert narrower == sorted(narrower)                                   # narrower plot, never fewer rows


@pytest.mark.parametrize("y, height, opposite, names", [
    (1.1, 360, 62, ["CNN (ours)", "Onset baseline"]),
    (-0.22, 330, 20, ["perfect calibration", "CNN (ours)", "CNN, fine-tuned recipe", "CNN, synthetic only",
                      "Onset baseline"]),
    (-0.25, 390, 40, ["reference: val acc"] * 6),
])
def test_legend_margin_is_the_smallest_that_holds_the_legend(y, height, opposite, names):
    wrap = 500
    m = mf.legend_margin(names, y=y, height=height, opposite=opposite, wrap_px=wrap, at_least=0)
    legend = 29 + 19 * (mf.legend_rows(names, wrap) - 1) + 12          # rows, padding, Plotly's 12 px
    offset = (y - 1) if y > 1 else -y                                     # from the plot's edge, plot heights

    def holds(margin):   # the legend at `offset` plot heights off the plot, plus its height, fits
        return margin >= offset * (height - opposite - margin) + legend
    assert holds(m) and holds(m - 1) and not holds(m - 2)                # 1 px of slack, no more
    assert mf.legend_margin(names, y=y, height=height, opposite=opposite, wrap_px=wrap, at_least=m + 30) == m + 30


def test_figures_take_their_legend_margins(rows):
    for key, fig, y, h in (("curves", mf.curves_figure(rows, "reference_confident"), 1.1, 360),
                           ("calibration", mf.calibration_figure(rows, "reference_confident"), -0.22, 330),
                           ("training", mf.training_figure(rows), -0.25, 390)):
        names = [t.name for t in fig.data if t.showlegend is not False and t.name]
        side, other = ("t", "b") if y > 1 else ("b", "t")
        base = mf.MARGINS[key]
        want = mf.legend_margin(names, y=y, height=h, opposite=base[other],
                                wrap_px=mf.PAGE_WIDTHS[key] - base["l"] - base["r"], at_least=base[side])
        assert fig.layout.margin[side] == want and fig.layout.margin[other] == base[other], key
        assert fig.layout.legend.y == y and fig.layout.height == h


def test_decided_card_of_a_build_without_picking_names_the_reference(rows):
    """A build made without picking has only the reference's predictions over all traces:
    the headline is the reference's share, said to be the reference's, not a bare dash."""
    unpicked = rows[~((rows["dataset"] == "all_traces") & rows["model"].isin(["cnn", "cct", "onset"]))]
    dec = {c["key"]: c for c in mf.headline_cards(unpicked)}["decided"]
    cov = mf.metric(unpicked, "reference", "all_traces", "coverage")
    n = int(mf.metric(unpicked, "reference", "all_traces", "n_scored"))
    assert dec["value"] == mf.fmt_pct(cov) and dec["value"] != "–"
    assert f"of all {n:,} traces decided by the {mf.model_label('reference')}" in dec["caption"]
    assert "ran no picker" in dec["caption"]
    assert [label for label, _, _ in dec["lines"]] == [mf.model_label("reference")]
