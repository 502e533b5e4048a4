"""Published, manual and reference picks -> polarities -> SKHASH -> computed mechanisms."""
import numpy as np
import pandas as pd
import pytest

from pipeline.ingest import picks as ingest_picks
from pipeline.mechanisms import invert
from pipeline.rejects import Rejects

EV1, EV2 = "20161104064824.680", "20161125051408.940"


@pytest.fixture(scope="module")
def picks(toc2me_dir, toc2me_tables):
    rejects = Rejects()
    pol, loc = ingest_picks.load_picks(toc2me_dir / "picks", toc2me_tables["stations"], rejects)
    return pol, loc, rejects.to_frame()


def _counts(pol, event_id, method):
    p = pol[(pol.event_id == event_id) & (pol.method == method)].polarity
    return len(p), int((p > 0).sum()), int((p < 0).sum())


def test_published_picks_are_taken_as_true_motion(picks):
    pol = picks[0]
    assert _counts(pol, EV1, "published") == (43, 28, 15)
    assert _counts(pol, EV2, "published") == (48, 27, 21)


def test_manual_picks_are_flipped_once_for_the_reversed_5B_stations(picks):
    # 50 manual picks, 16 up / 34 down as recorded -> 34 up / 16 down true motion
    assert _counts(picks[0], EV1, "manual") == (50, 34, 16)


def test_reference_model_outputs_and_dead_trace(picks):
    pol, _, rejects = picks
    ref = pol[(pol.event_id == EV1) & (pol.method == "reference")]
    assert len(ref) == 68  # 69 stations, dead 1113 has no output
    assert (ref.polarity != 0).sum() == 56  # the confident subset (eqpolarity_filtered)
    dead = rejects[rejects.reason.str.contains("dead")]
    assert {"1113", "1176"} <= {c.split()[0] for c in dead.content}


def test_reference_plus_snr_rule_rederives_the_published_picks(picks):
    """README 5: pol_hash_auto = confident reference outputs, flipped, SNR > 2."""
    pol = picks[0]
    sel = invert.select_polarities(pol[pol.method == "reference"].assign(method="onset"), "auto", snr_min=2.0)
    for ev in (EV1, EV2):
        ours = sel[sel.event_id == ev].set_index("station").polarity
        pub = pol[(pol.event_id == ev) & (pol.method == "published")].set_index("station").polarity
        assert ours.sort_index().to_dict() == pub.sort_index().to_dict()


def test_manual_overrides_automatic_station_by_station():
    pol = pd.DataFrame({
        "event_id": "e", "network": "5B", "station": ["a", "b", "c", "a", "c"],
        "method": ["cnn", "cnn", "cnn", "manual", "manual"], "polarity": [1, 1, -1, -1, 0],
        "snr": [5.0, 5.0, 5.0, np.nan, np.nan],
    })
    sel = invert.select_polarities(pol, "auto")
    assert sel.set_index("station").polarity.to_dict() == {"a": -1, "b": 1}  # c removed by a manual 0
    assert sel.set_index("station").method.to_dict() == {"a": "manual", "b": "cnn"}


def test_published_picks_reproduce_the_published_mechanisms(picks, toc2me_dir, toc2me_tables):
    pol, loc, _ = picks
    ev, st, mech = (toc2me_tables[k] for k in ("events", "stations", "mechanisms"))
    out = invert.invert(ev, pol, st, toc2me_dir / "skhash_demo" / "vz.north", picks="published",
                        locations=loc, published=mech, workers=2)
    m = out["mechanisms"].set_index("event_id")
    assert m.loc[EV1, ["strike", "dip", "rake"]].tolist() == pytest.approx([25.6, 88.7, 177.8], abs=0.05)
    assert m.loc[EV2, ["strike", "dip", "rake"]].tolist() == pytest.approx([23.6, 79.4, 174.2], abs=0.05)
    assert (m.quality == "A").all() and (m.source == "computed").all()
    assert m.kagan_to_published.max() < 0.1
    assert m.loc[EV1, "n_polarities"] == 43
    st_used = out["mechanism_stations"]
    assert (st_used.takeoff_deg < 90).mean() > 0.5  # SKHASH convention: < 90 up-going
    assert len(out["acceptable_planes"]) > 0


def test_pick_labels_call_reviewed_picks_review():
    """Issue 12 #11: a reviewed pick is merged in as a ``manual`` row (``p_source='review'``);
    the mechanism's ``picks`` named it ``manual`` where the event page's table says review."""
    from pipeline.mechanisms.invert import pick_labels

    chosen = pd.DataFrame({"event_id": ["a", "a", "a", "b", "b"],
                           "method": ["cnn", "manual", "manual", "manual", "onset"],
                           "p_source": [None, "review", None, None, None]})
    assert pick_labels(chosen).to_dict() == {"a": "cnn;manual;review", "b": "manual;onset"}
    assert pick_labels(chosen.drop(columns="p_source")).to_dict() == {"a": "cnn;manual", "b": "manual;onset"}
