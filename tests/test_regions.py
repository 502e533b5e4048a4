"""Named, versioned regions and mechanism subsets (pipeline.ingest.regions)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.ingest import regions
from pipeline.ingest.regions import Region, Subset, assign_clusters

BOX_A = Region("A", 1, "catalogue box", "catalogue", 0.0, 1.0, 10.0, 11.0)
BOX_B = Region("B", 2, "skhash box", "skhash", 0.5, 2.0, 10.5, 12.0)


# --- generic API on synthetic data ------------------------------------------------------------

def test_contains_is_closed_and_nan_safe():
    lat = np.array([0.0, 1.0, 0.5, 1.0001, np.nan, 0.5])
    lon = np.array([10.0, 11.0, 10.5, 10.5, 10.5, np.nan])
    assert BOX_A.contains(lat, lon).tolist() == [True, True, True, False, False, False]
    assert BOX_A.label == "A v1"


def test_region_rejects_bad_definitions():
    with pytest.raises(ValueError, match="coords"):
        Region("X", 1, "", "utm", 0, 1, 0, 1)
    with pytest.raises(ValueError, match="lat_min"):
        Region("X", 1, "", "catalogue", 1, 0, 0, 1)


def test_assign_clusters_first_region_wins_and_none_outside():
    ev = pd.DataFrame({"event_id": ["e1", "e2", "e3"], "lat": [0.7, 1.5, 5.0], "lon": [10.7, 11.5, 5.0]},
                      index=[10, 11, 12])
    out = assign_clusters(ev, regions=(BOX_A, BOX_B))
    assert out.index.tolist() == [10, 11, 12]
    assert out.tolist() == ["A", "B", None]
    assert assign_clusters(ev, regions=(BOX_B, BOX_A)).tolist() == ["B", "B", None]


def test_skhash_regions_use_skhash_coords_where_known():
    ev = pd.DataFrame({"event_id": ["e1", "e2", "e3"], "lat": [5.0, 1.0, 1.0], "lon": [5.0, 11.0, 11.0]})
    sk = pd.DataFrame({"event_id": ["e1", "e2"], "lat_skhash": [1.0, 5.0], "lon_skhash": [11.0, np.nan]})
    # e1 moved into the box by its SKHASH location; e2 has no full SKHASH location -> catalogue
    assert assign_clusters(ev, sk, regions=(BOX_B,)).tolist() == ["B", "B", "B"]
    # the same from a mechanisms-like frame carrying its own lat_skhash/lon_skhash columns
    mech = ev.assign(lat_skhash=[1.0, 5.0, np.nan], lon_skhash=[11.0, np.nan, np.nan])
    assert assign_clusters(mech, regions=(BOX_B,)).tolist() == ["B", "B", "B"]
    # catalogue-coordinate regions ignore SKHASH locations
    assert assign_clusters(ev, sk, regions=(BOX_A,)).tolist() == [None, "A", "A"]


def test_registry_lookups():
    assert regions.get_region("SWe") is regions.SWE and regions.get_region("NSw").coords == "skhash"
    assert [s.name for s in regions.SUBSETS["toc2me"]] == ["NSw", "SWe-AB", "SWe-dip45", "SWe-lowdip"]
    with pytest.raises(KeyError):
        regions.get_region("nowhere")
    with pytest.raises(KeyError):
        regions.get_subset("nothing")
    assert all(isinstance(s, Subset) and s.version >= 1 and s.description for s in regions.SUBSETS["toc2me"])


def test_lowdip_rounds_half_to_even():
    mech = pd.DataFrame({"published_set": ["SWe_A_B"] * 4 + ["quality_A"],
                         "dip_swe": [44.5, 44.6, 44.4, 40.0, 10.0],
                         "lat": [54.35, 54.35, 54.35, 54.3532, 54.35]})
    assert regions.subset_mask(mech, "SWe-lowdip").tolist() == [True, False, True, False, False]
    assert regions.subset_mask(mech, "SWe-dip45").tolist() == [True, True, True, True, False]


# --- real data ------------------------------------------------------------------------------

def test_swe_box_alone_gives_the_1786_extract_events(toc2me_dir, toc2me_tables):
    """README 7.8's 'from 2016-11-20 13:00:53.66 onward' is just the earliest event in the
    box: the box alone reproduces swe/ToC2ME_Extract.xlsx, no time bound needed."""
    ev = toc2me_tables["events"]
    swe = ev[regions.SWE.contains(ev["lat"], ev["lon"])]
    assert len(swe) == 1786 and (ev["cluster"] == "SWe").sum() == 1786
    assert swe["time"].min() == pd.Timestamp("2016-11-20 13:00:53.66", tz="UTC")
    ex = pd.read_excel(toc2me_dir / "catalog" / "swe" / "ToC2ME_Extract.xlsx")
    ex_time = pd.to_datetime(ex[["Year", "Month", "Day", "Hour", "Minute"]].rename(columns=str.lower)) \
        + pd.to_timedelta(np.round(ex["Second"] * 1000).astype("int64"), unit="ms")
    assert set(ex_time.dt.tz_localize("UTC")) == set(swe["time"])


def test_nsw_gives_exactly_the_290_west_fault_mechanisms(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    nsw = regions.subset_mask(m, "NSw")
    assert nsw.sum() == 290
    listed = m["published_set"].str.split(";").apply(lambda p: "NSw" in p).to_numpy()
    assert (nsw == listed).all()
    assert ((m["cluster"] == "NSw").to_numpy() == nsw).all()
    # on catalogue coordinates the same box would not reproduce the file
    on_catalogue = regions.NSW.contains(m["lat"], m["lon"])
    assert on_catalogue.sum() != 290


def test_events_cluster_uses_skhash_location_for_nsw(toc2me_tables):
    ev = toc2me_tables["events"]
    m = toc2me_tables["mechanisms"]
    nsw_ids = set(m.loc[m["cluster"] == "NSw", "event_id"])
    assert nsw_ids <= set(ev.loc[ev["cluster"] == "NSw", "event_id"])
    assert set(ev["cluster"].dropna()) == {"SWe", "NSw"}


def test_swe_subsets_reproduce_published_counts(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    ab = regions.subset_mask(m, "SWe-AB")
    assert ab.sum() == 913
    assert (m.loc[ab, "cluster"] == "SWe").all()
    assert ((m["dip_swe"] < 44.5) & ab).sum() == 147
    assert regions.subset_mask(m, "SWe-dip45").sum() == 156  # the activation-animation set
    low = regions.subset_mask(m, "SWe-lowdip")
    assert low.sum() == 142
    before_north_cut = ab & (np.round(m["dip_swe"]) <= 44).to_numpy()
    assert before_north_cut.sum() == 149 and (before_north_cut & (m["lat"] >= 54.3532).to_numpy()).sum() == 7
    listed = m["published_set"].str.split(";").apply(lambda p: "SWe_lowdip" in p).to_numpy()
    assert (low == listed).all()


def test_one_quality_a_event_in_the_swe_box_is_not_in_the_swe_run(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    in_box = m["cluster"] == "SWe"
    missing = m[in_box & m["dip_swe"].isna()]
    assert in_box.sum() == 914 and missing["event_id"].tolist() == ["20161122044214.240"]
