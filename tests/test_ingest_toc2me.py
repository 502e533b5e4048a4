"""ToC2ME ingest on the real data folder (shared/toc2me), plus the nearest-time join.

Reference values: shared/docs/analyses.md sections 0-2 and the data README.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline import geo, schema, tables
from pipeline.ingest.toc2me import STAGE_ROWS_BY_WELL, nearest_time_join, well_of_stage_row


# --- nearest-time join on synthetic times ---------------------------------------------------

def _t(*seconds):
    return pd.to_datetime("2016-11-04 06:48:00", utc=True) + pd.to_timedelta(list(seconds), unit="s")


def test_nearest_time_join_picks_nearest_within_tolerance():
    cat = _t(0.0, 10.0, 20.0)
    idx, dt = nearest_time_join(_t(0.01, 9.7, 20.5, 15.0, -0.49), cat, tol_s=0.5)
    assert idx.tolist() == [0, 1, 2, -1, 0]
    np.testing.assert_allclose(dt[[0, 1, 2, 4]], [0.01, 0.3, 0.5, 0.49], atol=1e-9)
    assert np.isnan(dt[3])


def test_nearest_time_join_unsorted_catalogue_returns_original_positions():
    cat = _t(20.0, 0.0, 10.0)
    idx, _ = nearest_time_join(_t(10.1, 0.2, 19.9), cat)
    assert idx.tolist() == [2, 1, 0]


def test_nearest_time_join_tie_goes_to_earlier_catalogue_time():
    idx, dt = nearest_time_join(_t(5.0, 1.0), _t(6.0, 4.0, 0.0, 2.0), tol_s=1.0)
    assert idx.tolist() == [1, 2]  # 5.0 is 1 s from 4.0 and 6.0; 1.0 is 1 s from 0.0 and 2.0
    np.testing.assert_allclose(dt, [1.0, 1.0])


def test_nearest_time_join_out_of_tolerance_nat_and_empty():
    idx, dt = nearest_time_join(pd.Series([pd.NaT, *_t(3.0)], dtype="datetime64[ns, UTC]"), _t(0.0, 5.0), tol_s=0.5)
    assert idx.tolist() == [-1, -1] and np.isnan(dt).all()
    idx, _ = nearest_time_join(_t(1.0), pd.Series([], dtype="datetime64[ns, UTC]"))
    assert idx.tolist() == [-1]


def test_nearest_time_join_naive_times_are_utc():
    naive = pd.to_datetime(["2016-11-04 06:48:24.68"])
    idx, dt = nearest_time_join(naive, pd.to_datetime(["2016-11-04 06:48:24.70"], utc=True))
    assert idx.tolist() == [0] and dt[0] == pytest.approx(0.02)


def test_well_of_stage_row_ranges():
    assert [well_of_stage_row(r) for r in (1, 21, 22, 45, 46, 170, 171, 186, 187)] == \
        ["A", "A", "B", "B", "C", "C", "D", "D", None]
    assert sum(last - first + 1 for _, first, last in STAGE_ROWS_BY_WELL) == 186


# --- real data ------------------------------------------------------------------------------

def test_every_required_table_satisfies_the_schema(toc2me_tables, tmp_path):
    assert set(schema.REQUIRED_TABLES) <= set(toc2me_tables)
    written = tables.write_tables(tmp_path, toc2me_tables)
    assert len(written) == len(toc2me_tables)
    assert len(toc2me_tables["rejects"]) == 0, toc2me_tables["rejects"].head()


def test_catalogue_has_all_events(toc2me_tables):
    ev = toc2me_tables["events"]
    assert len(ev) == 21619
    assert ev["event_id"].is_unique and ev["time"].is_monotonic_increasing
    assert ev["time"].dt.tz is not None
    assert ev["source_row"].tolist() == list(range(2, 21621))
    assert ev["magnitude"].min() == pytest.approx(-2.19) and ev["magnitude"].max() == pytest.approx(3.21)


def test_event_ids_are_origin_times(toc2me_tables):
    """event_id = the published (SKHASH) id for events with a published mechanism, else the
    catalogue time; catalogue_id is always the catalogue time, formatted .fff."""
    ev = toc2me_tables["events"]
    assert ev["event_id"].str.fullmatch(r"\d{14}\.\d{3}").all()
    formatted = ev["time"].dt.strftime("%Y%m%d%H%M%S.%f").str[:-3]
    assert (formatted == ev["catalogue_id"]).all()
    published = ev["event_id"].isin(toc2me_tables["mechanisms"]["published_id"])
    assert published.sum() == 3119
    assert (ev.loc[~published, "event_id"] == ev.loc[~published, "catalogue_id"]).all()
    ids = pd.to_datetime(ev["event_id"], format="%Y%m%d%H%M%S.%f", utc=True)
    assert (ids - ev["time"]).dt.total_seconds().abs().max() <= 0.30 + 1e-9


def test_regression_first_event_not_dropped_by_skiprows(toc2me_dir, toc2me_tables):
    """The original loader read with skiprows=1 and positional names: it dropped the first
    event and mislabelled every column after Longitude. Compare row 2 of the sheet,
    read independently with openpyxl, column by column."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.load_workbook(toc2me_dir / "catalog" / "ToC2ME.xlsx", read_only=True)
    rows = wb.worksheets[0].iter_rows(min_row=1, max_row=2, values_only=True)
    header, first = next(rows), next(rows)
    wb.close()
    cell = dict(zip(header, first))
    ev = toc2me_tables["events"].iloc[0]
    assert ev["source_row"] == 2
    assert ev["catalogue_id"] == "20161026223353.960"
    assert ev["time"] == pd.Timestamp("2016-10-26 22:33:53.96", tz="UTC")
    assert (ev["lat"], ev["lon"], ev["depth_km"], ev["magnitude"]) == \
        (cell["Latitude"], cell["Longitude"], cell["Depth"], cell["Magnitude"])


def test_demo_event_20161104064824_680(toc2me_tables):
    """The demo event keeps its published id although the catalogue time is 06:48:24.66."""
    ev = toc2me_tables["events"].set_index("event_id").loc["20161104064824.680"]
    assert (ev["lat"], ev["lon"], ev["depth_km"], ev["magnitude"]) == (54.347563, -117.239689, 3.323, -0.92)
    assert ev["catalogue_id"] == "20161104064824.660" and ev["source_row"] == 3329 + 2
    m = toc2me_tables["mechanisms"].set_index("event_id").loc["20161104064824.680"]
    assert (m["strike"], m["dip"], m["rake"]) == (25.6, 88.7, 177.8)
    assert m["lat_skhash"] == pytest.approx(54.3473) and m["depth_km_skhash"] == pytest.approx(3.201)
    assert (m["lat"], m["lon"], m["depth_km"]) == (54.347563, -117.239689, 3.323)
    assert m["join_dt_s"] == pytest.approx(0.02)
    assert m["quality"] == "A" and m["group"] == "g2" and m["published_group"] == "g2"


def test_stations_longitude_first_and_reversed(toc2me_tables):
    st = toc2me_tables["stations"]
    assert len(st) == 69 and st["reversed"].all() and (st["network"] == "5B").all()
    assert st["station"].map(type).eq(str).all() and st["station"].str.fullmatch(r"\d{4}").all()
    assert st["station"].min() == "1107" and st["station"].max() == "1215"
    assert st["lat"].between(54.2, 54.5).all() and st["lon"].between(-117.4, -117.1).all()
    assert (st["elevation_m"] == 0).all()


def test_wells_mapped_by_file_name_to_letters(toc2me_tables):
    w = toc2me_tables["wells"]
    assert sorted(w["well"].unique()) == ["A", "B", "C", "D"]
    assert w.groupby("well").size().to_dict() == {"A": 32, "B": 29, "C": 36, "D": 37}
    lon = w.groupby("well")["lon"].median()  # the lateral leg (each path has a dog-leg at the heel)
    assert lon["D"] < lon["C"] < lon["B"] < lon["A"]
    assert lon["D"] == pytest.approx(-117.2451, abs=1e-4) and lon["A"] == pytest.approx(-117.2329, abs=1e-4)
    assert (w.groupby("well")["vertex"].apply(lambda v: v.tolist() == list(range(len(v))))).all()


def test_stages_per_well_and_date_ranges(toc2me_tables):
    st = toc2me_tables["stages"]
    assert len(st) == 186
    g = st.groupby("well")
    assert g.size().to_dict() == {"A": 21, "B": 24, "C": 125, "D": 16}
    expected = {"A": ("2016-11-17 21:00", "2016-11-30 20:00"), "B": ("2016-11-18 01:00", "2016-11-30 23:00"),
                "C": ("2016-10-26 12:00", "2016-11-16 03:00"), "D": ("2016-11-20 04:00", "2016-11-28 15:00")}
    for well, (first, last) in expected.items():
        times = st[st["well"] == well].sort_values("stage_no")["time"]
        assert times.iloc[0] == pd.Timestamp(first, tz="UTC") and times.iloc[-1] == pd.Timestamp(last, tz="UTC")
        assert times.is_monotonic_increasing
    assert (g["stage_no"].max() == g.size()).all()
    # stage positions follow the well paths: the longitudes separate the wells in order
    lon = g["lon"].mean()
    assert lon["D"] < lon["C"] < lon["B"] < lon["A"]
    days = (st["time"].dt.tz_localize(None).dt.normalize() - pd.Timestamp("2016-10-26")).dt.days + 1
    assert (days == st["day_index"]).all()


def test_injection_rows_kept_and_sorted(toc2me_tables):
    inj = toc2me_tables["injection"]
    assert len(inj) == 59 and inj["well"].isna().all()
    dates = pd.to_datetime(inj["date"])
    assert dates.is_monotonic_increasing
    assert dates.min() == pd.Timestamp("2016-10-26") and dates.max() == pd.Timestamp("2016-12-01")
    assert inj["date"].duplicated().any()  # several rows per day are kept, not averaged
    assert inj["source_row"].is_unique and inj["source_row"].between(2, 60).all()
    row = inj[inj["source_row"] == 2].iloc[0]  # first data row of the file
    assert str(row["date"]) == "2016-10-29" and row["rate_m3_min"] == pytest.approx(0.940584585)
    assert row["volume_m3"] == pytest.approx(181.3984557)


def test_mechanism_counts_and_groups(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    assert (m["source"] == "published").all()
    assert m["quality"].value_counts().to_dict() == {"A": 2519, "B": 600}
    a = m[m["quality"] == "A"]
    assert a["group"].value_counts().to_dict() == {"g1": 462, "g2": 1648, "g3": 130, "g4": 205, "other": 74}
    # the published group files agree with the rule applied to the 0.1-degree angles
    assert (a["group"] == a["published_group"]).all()
    assert m.loc[m["quality"] == "B", "published_group"].isna().all()


def test_all_quality_a_mechanisms_join_within_0_3_s(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    assert m["join_dt_s"].notna().all()
    assert m["join_dt_s"].max() <= 0.30 + 1e-9
    assert m["event_id"].is_unique
    ev = toc2me_tables["events"].set_index("event_id")
    assert m["event_id"].isin(ev.index).all()
    # mechanism time/location/magnitude are those of the matched catalogue event
    cat = ev.loc[m["event_id"]]
    for c in ("time", "lat", "lon", "depth_km", "magnitude", "x_km", "y_km"):
        assert (cat[c].to_numpy() == m[c].to_numpy()).all(), c
    # published ids are the SKHASH-solution times: within 0.3 s of the catalogue time and
    # mostly not the catalogue-time string (2,324 of 3,119 differ by >= 0.01 s)
    assert (m["published_id"] == m["event_id"]).all()
    pub = pd.to_datetime(m["published_id"], format="%Y%m%d%H%M%S.%f", utc=True)
    np.testing.assert_allclose((pub - m["time"]).dt.total_seconds().abs(), m["join_dt_s"], atol=1e-6)
    assert (cat["catalogue_id"] != m["event_id"].to_numpy()).sum() == 2324


def test_skhash_locations_only_for_quality_a(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    a, b = m[m["quality"] == "A"], m[m["quality"] == "B"]
    assert a[["lat_skhash", "lon_skhash", "depth_km_skhash"]].notna().all().all()
    assert b[["lat_skhash", "lon_skhash", "depth_km_skhash"]].isna().all().all()
    dz = (a["depth_km"] - a["depth_km_skhash"])
    assert dz.mean() == pytest.approx(0.125, abs=0.01)  # solution A ~125 m shallower (README 3.2)
    assert m["n_polarities"].isna().all()


def test_published_set_tokens(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    has = {tok: m["published_set"].str.split(";").apply(lambda p, t=tok: t in p)
           for tok in ("quality_A", "SWe_A_B", "SWe_lowdip", "NSw")}
    assert has["quality_A"].sum() == 2519 and has["SWe_A_B"].sum() == 913
    assert has["SWe_lowdip"].sum() == 142 and has["NSw"].sum() == 290
    assert (has["quality_A"] & has["SWe_A_B"]).sum() == 313
    assert (has["quality_A"] == (m["quality"] == "A")).all()


def test_swe_run_angles_kept_separately(toc2me_tables):
    """The SWe A+B file is another SKHASH run: for shared events its angles mostly differ
    from the quality-A run's; the main angles stay the quality-A ones."""
    m = toc2me_tables["mechanisms"]
    shared = m[(m["quality"] == "A") & m["dip_swe"].notna()]
    assert len(shared) == 313
    differ = (shared[["strike", "dip", "rake"]].to_numpy() != shared[["strike_swe", "dip_swe", "rake_swe"]].to_numpy()).any(axis=1)
    assert differ.sum() == 277
    b = m[m["quality"] == "B"]
    assert (b[["strike", "dip", "rake"]].to_numpy() == b[["strike_swe", "dip_swe", "rake_swe"]].to_numpy()).all()


def test_derived_mechanism_columns(toc2me_tables):
    m = toc2me_tables["mechanisms"]
    for c in ("strike2", "dip2", "rake2", "p_trend", "p_plunge", "t_trend", "t_plunge", "faulting_style", "zoback_class"):
        assert m[c].notna().all(), c
    assert m["strike"].between(0, 360).all() and m["dip"].between(0, 90).all() and m["rake"].between(-180, 180).all()


def test_local_coordinates_match_obspy_geodesic(toc2me_tables):
    gps2dist = pytest.importorskip("obspy.geodetics").gps2dist_azimuth
    lat0, lon0 = geo.TOC2ME_ORIGIN
    frame = toc2me_tables["frame"]
    assert (frame["origin_lat"].iat[0], frame["origin_lon"].iat[0]) == (lat0, lon0)
    assert frame["method"].iat[0] == "tangent-plane (WGS84 radii at origin)" and frame["dataset"].iat[0] == "toc2me"
    ev = toc2me_tables["events"]
    sample = pd.concat([ev.iloc[::20], ev.nsmallest(5, "lon"), ev.nlargest(5, "lat")])
    for name, t in (("events", sample), ("stations", toc2me_tables["stations"]),
                    ("stages", toc2me_tables["stages"]), ("wells", toc2me_tables["wells"])):
        for la, lo, x, y in zip(t["lat"], t["lon"], t["x_km"], t["y_km"]):
            dist_m, az, _ = gps2dist(lat0, lon0, la, lo)
            assert np.hypot(x, y) * 1000 == pytest.approx(dist_m, abs=1.0), name
            if dist_m > 50:  # azimuth is ill-defined next to the origin
                diff = (np.degrees(np.arctan2(x, y)) - az + 180) % 360 - 180
                assert abs(diff) < 0.1, name
