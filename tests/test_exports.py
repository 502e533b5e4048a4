"""pipeline.export.exports: QuakeML and CSV round trips, and the SKHASH input folder.

The SKHASH folder test runs the real SKHASH 1.1.5 command line on an exported copy of the
published 3-event ToC2ME demo (``<toc2me>/skhash_demo``) and compares with its ``OUT/out.csv``;
it skips when SKHASH or the ToC2ME data are absent.
"""
from __future__ import annotations

import importlib.util
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import skhash_demo
from pipeline.demo import scenario as demo
from pipeline.export import exports
from pipeline.mechanisms import enrich
from pipeline.mechanisms.skhash import DEFAULT_SETTINGS
from skhash_demo import DEMO_IDS

obspy = pytest.importorskip("obspy")

needs_skhash = pytest.mark.skipif(importlib.util.find_spec("SKHASH") is None,
                                  reason="SKHASH (pip package skhash) is not installed")


# ----------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def demo_mechanisms() -> pd.DataFrame:
    """A spread subset of the demo's published mechanisms plus computed mechanisms for
    some of the same events (strike +4 deg, no published_set), like a pipeline build."""
    mech = demo.generate()["mechanisms"].iloc[::5].reset_index(drop=True)
    comp = mech.iloc[::7].copy()
    comp["source"] = "computed"
    comp["strike"] = (comp["strike"] + 4.0) % 360.0
    comp["published_set"] = None
    comp["quality"] = np.where(np.arange(len(comp)) % 2 == 0, "B", "C")
    comp = enrich.complete_mechanisms(comp)
    return pd.concat([mech, comp], ignore_index=True)


@pytest.fixture(scope="module")
def toc2me_mechanisms(toc2me_tables) -> pd.DataFrame:
    """100 ToC2ME published mechanisms spread over the table (quality A and B sets)."""
    m = toc2me_tables["mechanisms"]
    idx = np.linspace(0, len(m) - 1, 100).round().astype(int)
    return m.iloc[idx].reset_index(drop=True)


def _roundtrip(mech: pd.DataFrame, **kw):
    buf = io.BytesIO()
    cat = exports.mechanisms_to_quakeml(mech, buf, **kw)
    buf.seek(0)
    return cat, obspy.read_events(buf, format="QUAKEML")


def _comment(fm, tag: str) -> str | None:
    for c in fm.comments:
        if c.resource_id.id.endswith(f"/comment/{tag}"):
            return c.text
    return None


def _check_roundtrip(mech: pd.DataFrame, back) -> None:
    """Every row of ``mech`` is in ``back`` (an ObsPy Catalog read from file) unchanged."""
    ids = list(dict.fromkeys(mech["event_id"]))
    assert len(back) == len(ids)
    assert [e.resource_id.id for e in back] == [f"smi:local/event/{i}" for i in ids]
    events = {e.resource_id.id.rsplit("/", 1)[1]: e for e in back}
    for eid, rows in mech.groupby("event_id", sort=False):
        ev = events[eid]
        first = rows.iloc[0]
        org = ev.preferred_origin()
        assert org.resource_id.id == f"smi:local/origin/{eid}"
        # depth: QuakeML metres; km -> m exact to the mm (no float noise written)
        assert org.depth == round(float(first["depth_km"]) * 1000.0, 3)
        assert abs(org.depth / 1000.0 - float(first["depth_km"])) < 5e-7
        assert org.latitude == float(first["lat"]) and org.longitude == float(first["lon"])
        t = pd.Timestamp(first["time"]).tz_convert("UTC")
        assert abs(pd.Timestamp(str(org.time)) - t) < pd.Timedelta(microseconds=1)
        if pd.notna(first["magnitude"]):
            mag = ev.preferred_magnitude()
            assert mag.magnitude_type == "ML" and mag.mag == float(first["magnitude"])
        else:
            assert not ev.magnitudes
        assert len(ev.focal_mechanisms) == len(rows)
        for (_, r), fm in zip(rows.iterrows(), ev.focal_mechanisms):
            np1, np2 = fm.nodal_planes.nodal_plane_1, fm.nodal_planes.nodal_plane_2
            assert fm.nodal_planes.preferred_plane == 1
            got = [np1.strike, np1.dip, np1.rake, np2.strike, np2.dip, np2.rake]
            want = r[["strike", "dip", "rake", "strike2", "dip2", "rake2"]].to_numpy(float)
            np.testing.assert_allclose(got, want, atol=0.01, rtol=0)
            ax = fm.principal_axes
            got = [ax.t_axis.azimuth, ax.t_axis.plunge, ax.p_axis.azimuth, ax.p_axis.plunge,
                   ax.n_axis.azimuth, ax.n_axis.plunge]
            want = r[["t_trend", "t_plunge", "p_trend", "p_plunge", "b_trend", "b_plunge"]]
            np.testing.assert_allclose(got, want.to_numpy(float), atol=0.01, rtol=0)
            assert (ax.t_axis.length, ax.p_axis.length, ax.n_axis.length) == (1.0, -1.0, 0.0)
            # published vs computed
            src = r["source"]
            assert fm.resource_id.id == f"smi:local/focalmechanism/{eid}/{src}"
            if src == "computed":
                assert fm.method_id.id == "smi:local/method/computed/SKHASH-1.1.5"
                assert fm.evaluation_mode == "automatic"
                assert _comment(fm, "source") == "source: computed (SKHASH 1.1.5)"
                assert fm.creation_info.version == "SKHASH 1.1.5"
            else:
                assert fm.method_id.id == "smi:local/method/published"
                assert fm.evaluation_mode is None
                assert _comment(fm, "source").startswith("source: published")
            # SKHASH quality and statistics (QuakeML fractions 0..1 from percent)
            q = r.get("quality")
            assert _comment(fm, "quality") == (f"SKHASH quality: {q}" if pd.notna(q) else None)
            if pd.notna(r.get("n_polarities")):
                assert fm.station_polarity_count == int(r["n_polarities"])
            else:
                assert fm.station_polarity_count is None
            if pd.notna(r.get("polarity_misfit")):
                assert fm.misfit == pytest.approx(r["polarity_misfit"] / 100.0, abs=1e-12)
                assert 0.0 <= fm.misfit <= 1.0
            else:
                assert fm.misfit is None
            if pd.notna(r.get("sta_distribution_ratio")):
                assert fm.station_distribution_ratio == pytest.approx(
                    r["sta_distribution_ratio"] / 100.0, abs=1e-12)
                assert 0.0 <= fm.station_distribution_ratio <= 1.0
            # triggering origin: the SKHASH location when known, in metres too
            trig = fm.triggering_origin_id.get_referred_object()
            assert trig is not None and trig in ev.origins
            if pd.notna(r.get("lat_skhash")):
                assert trig.latitude == float(r["lat_skhash"])
                assert trig.depth == round(float(r["depth_km_skhash"]) * 1000.0, 3)
            else:
                assert trig is org
        srcs = list(rows["source"])
        pref = ev.preferred_focal_mechanism()
        want = "published" if "published" in srcs else srcs[0]
        assert pref.resource_id.id == f"smi:local/focalmechanism/{eid}/{want}"


# ----------------------------------------------------------------------------- QuakeML

def test_quakeml_roundtrip_demo(demo_mechanisms):
    mech = demo_mechanisms
    assert set(mech["source"]) == {"published", "computed"}
    cat, back = _roundtrip(mech)
    assert len(cat) == len(back) == mech["event_id"].nunique()
    _check_roundtrip(mech, back)
    n_both = (mech.groupby("event_id")["source"].nunique() == 2).sum()
    assert n_both > 10
    assert sum(len(e.focal_mechanisms) == 2 for e in back) == n_both


def test_quakeml_validates_against_schema(demo_mechanisms, tmp_path):
    path = tmp_path / "mech.xml"
    exports.mechanisms_to_quakeml(demo_mechanisms.head(40), path, validate=True,
                                  creation_info={"author": "test", "agency_id": "XX"})
    from obspy.io.quakeml.core import _validate
    assert _validate(str(path))
    back = obspy.read_events(str(path))
    assert back.creation_info.author == "test" and back.creation_info.agency_id == "XX"
    assert all(e.event_type == "induced or triggered event" for e in back)


def test_quakeml_roundtrip_toc2me(toc2me_mechanisms):
    mech = toc2me_mechanisms
    assert mech["n_polarities"].isna().all()  # the published files do not give it
    cat, back = _roundtrip(mech)
    _check_roundtrip(mech, back)
    # quality B mechanisms have no SKHASH location: the catalogue origin triggers them
    assert any(len(e.origins) == 1 for e in back) and any(len(e.origins) == 2 for e in back)
    regions = {d.text for e in back for d in e.event_descriptions}
    assert regions <= set(mech["cluster"].dropna()) and regions


def test_quakeml_fills_missing_derived_columns():
    m = pd.DataFrame({"event_id": ["20161104064824.680"], "source": ["computed"],
                      "lat": [54.347328], "lon": [-117.239845], "depth_km": [3.201],
                      "strike": [25.6], "dip": [88.7], "rake": [177.8],
                      "azimuthal_gap": [31.0]})
    cat = exports.mechanisms_to_quakeml(m)  # no file, no time/magnitude/P-B-T columns
    ev = cat[0]
    assert str(ev.origins[0].time) == "2016-11-04T06:48:24.680000Z"
    assert ev.origins[0].depth == 3201.0 and not ev.magnitudes
    fm = ev.focal_mechanisms[0]
    assert fm.azimuthal_gap == 31.0
    full = enrich.complete_mechanisms(m)
    np2 = fm.nodal_planes.nodal_plane_2
    np.testing.assert_allclose([np2.strike, np2.dip, np2.rake],
                               full[["strike2", "dip2", "rake2"]].iloc[0], atol=1e-9)
    with pytest.raises(ValueError, match="lacks columns"):
        exports.mechanisms_to_quakeml(m.drop(columns="rake"))


# ----------------------------------------------------------------------------- CSV

def test_csv_roundtrip(demo_mechanisms, tmp_path):
    mech = demo_mechanisms
    path = tmp_path / "mech.csv"
    written = exports.mechanisms_to_csv(mech, path)
    header = path.read_text().splitlines()[0].split(",")
    assert header == [c for c, _, _ in exports.CSV_COLUMNS] == list(written.columns)
    assert not path.read_text().startswith("#")
    # plain pandas read: ISO UTC times parse, numbers keep full precision
    raw = pd.read_csv(path, dtype={"event_id": str})
    assert raw["time_utc"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z").all()
    pd.testing.assert_series_equal(pd.to_datetime(raw["time_utc"], utc=True).dt.as_unit("us"),
                                   mech["time"].dt.as_unit("us"), check_names=False)
    np.testing.assert_array_equal(raw["depth_km"], mech["depth_km"])
    np.testing.assert_array_equal(raw["polarity_misfit_pct"], mech["polarity_misfit"])
    # typed reader back to schema names
    back = exports.read_mechanisms_csv(path)
    cols = [s for _, s, _ in exports.CSV_COLUMNS]
    assert list(back.columns) == cols
    for c in cols:
        a, b = back[c], mech[c]
        if c == "time":
            assert (a == b).all()
        elif c == "n_polarities":
            assert a.dtype == "Int32" and a.equals(b.astype("Int32"))
        elif pd.api.types.is_float_dtype(b):
            np.testing.assert_array_equal(a.to_numpy(float), b.to_numpy(float), err_msg=c)
        else:
            assert [None if pd.isna(x) else x for x in a] == \
                   [None if pd.isna(x) else x for x in b], c


def test_csv_toc2me_nulls(toc2me_mechanisms):
    buf = io.StringIO()
    exports.mechanisms_to_csv(toc2me_mechanisms, buf)
    buf.seek(0)
    back = exports.read_mechanisms_csv(buf)
    assert len(back) == 100 and back["n_polarities"].isna().all()
    assert list(back["event_id"]) == list(toc2me_mechanisms["event_id"])
    assert back["lat_skhash"].isna().sum() == toc2me_mechanisms["lat_skhash"].isna().sum()
    assert (back["cluster"].isna() == toc2me_mechanisms["cluster"].isna()).all()


# ----------------------------------------------------------------------------- SKHASH folder

@pytest.fixture(scope="module")
def skhash_demo_dir(toc2me_dir) -> Path:
    return skhash_demo.demo_dir(toc2me_dir)


@pytest.fixture(scope="module")
def skhash_demo_inputs(skhash_demo_dir):
    """The published demo's IN/ files as this project's tables (3 events, 153 polarities)."""
    return skhash_demo.demo_inputs(skhash_demo_dir)


def _skhash_command() -> list[str]:
    exe = Path(sys.executable).with_name("SKHASH")
    return [str(exe)] if exe.is_file() else [sys.executable, "-m", "SKHASH.SKHASH"]


def test_skhash_inputs_folder_contents(skhash_demo_inputs, tmp_path):
    ev, pol, st, vz = skhash_demo_inputs
    # plus an event with too few polarities and one without any (not exported at all)
    extra_ev = pd.DataFrame({"event_id": ["20161101000000.000", "20161102000000.000"],
                             "lat": 54.34, "lon": -117.24, "depth_km": 3.2})
    extra_pol = pol[pol["event_id"] == DEMO_IDS[1]].head(3).assign(event_id="20161101000000.000")
    dest = tmp_path / "skhash_export"
    paths = exports.skhash_inputs(dest, pd.concat([ev, extra_ev], ignore_index=True),
                                  pd.concat([pol, extra_pol], ignore_index=True), st, vz)
    assert set(paths) == {"folder", "control", "catalog", "polarities", "stations",
                          "velocity_model", "event_ids", "station_codes", "readme", "excluded"}
    assert all(Path(p).exists() for p in paths.values())
    assert all(Path(p).resolve().is_relative_to(dest.resolve()) for p in paths.values())

    ids = pd.read_csv(paths["event_ids"], dtype={"event_id": str})
    assert dict(zip(ids["skhash_id"], ids["event_id"])) == DEMO_IDS
    catalog = pd.read_csv(paths["catalog"])
    assert list(catalog["event_id"]) == [1, 2, 3]
    np.testing.assert_array_equal(catalog["depth"], ev["depth_km"])
    excluded = pd.read_csv(paths["excluded"], dtype=str)
    assert list(excluded["event_id"]) == ["20161101000000.000"]
    assert "only 3 usable polarities" in excluded["reason"].iloc[0]

    codes = pd.read_csv(paths["station_codes"], dtype=str)
    assert (codes["skhash_network"] == "N5B").all()
    assert (codes["skhash_station"] == "S" + codes["station"]).all()
    assert set(codes["station"]) == set(pol["station"])
    pols = pd.read_csv(paths["polarities"], dtype={"network": str, "station": str})
    assert len(pols) == len(pol)  # polarities written unchanged (true-motion sign)
    merged = pols.merge(codes, left_on=["network", "station"],
                        right_on=["skhash_network", "skhash_station"], suffixes=("_sk", ""))
    merged["event_id"] = merged["event_id"].map(DEMO_IDS)
    mine = merged.set_index(["event_id", "station"])["p_polarity"].sort_index()
    ref = pol.set_index(["event_id", "station"])["polarity"].sort_index()
    np.testing.assert_array_equal(mine.to_numpy(), ref.to_numpy())

    vm = pd.read_csv(paths["velocity_model"], header=None)
    assert vm.shape[1] == 2 and np.all(np.diff(vm[0]) > 0)
    control = paths["control"].read_text()
    for key in ("$catfile\nIN/catalog.csv", "$fpfile\nIN/polarities.csv", "$stfile\nIN/stations.csv",
                "$vmodel_paths\nvmodel.csv", "$overwrite_output_file\nTrue"):
        assert key in control
    for k, v in DEFAULT_SETTINGS.items():
        assert f"${k}\n{v}\n" in control
    readme = paths["readme"].read_text()
    assert "SKHASH control.txt" in readme and "TRUE GROUND-MOTION" in readme
    for sid, eid in DEMO_IDS.items():
        assert any(line.split() == [str(sid), eid] for line in readme.splitlines())
    assert any(line.split() == ["N5B", "S1107", "5B", "1107"] for line in readme.splitlines())
    assert "20161101000000.000" in readme and "20161102000000.000" not in readme

    with pytest.raises(FileExistsError):
        exports.skhash_inputs(dest, ev, pol, st, vz)
    again = exports.skhash_inputs(dest, ev, pol, st, vz, overwrite=True)
    assert "excluded" not in again and not (dest / "excluded_events.csv").exists()
    with pytest.raises(ValueError, match="no event to export"):
        exports.skhash_inputs(tmp_path / "none", ev, pol.head(3), st, vz)


@needs_skhash
def test_skhash_inputs_folder_reproduces_published_demo(skhash_demo_inputs, skhash_demo_dir,
                                                       tmp_path):
    """``SKHASH control.txt`` in the exported folder (a plain SKHASH run, no wrapper) gives
    the published ToC2ME demo result (``OUT/out.csv``) for its 3 events."""
    ev, pol, st, vz = skhash_demo_inputs
    dest = tmp_path / "skhash_export"
    paths = exports.skhash_inputs(dest, ev, pol, st, vz)
    proc = subprocess.run(_skhash_command() + ["control.txt"], cwd=dest, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    got = pd.read_csv(dest / "OUT" / "mechanisms.csv")
    ids = pd.read_csv(paths["event_ids"], dtype={"event_id": str})
    got["event_id"] = got["event_id"].map(dict(zip(ids["skhash_id"], ids["event_id"])))
    ref = pd.read_csv(skhash_demo_dir / "OUT" / "out.csv")
    ref["event_id"] = ref["event_id"].map(DEMO_IDS)
    got = got.sort_values("event_id").reset_index(drop=True)
    ref = ref.sort_values("event_id").reset_index(drop=True)
    assert list(got["event_id"]) == list(ref["event_id"]) == sorted(DEMO_IDS.values())
    for c in ("strike", "dip", "rake", "quality", "fault_plane_uncertainty",
              "aux_plane_uncertainty", "num_p_pol", "polarity_misfit", "prob_mech",
              "sta_distribution_ratio"):
        pd.testing.assert_series_equal(got[c], ref[c], check_dtype=False, obj=c)
    # station codes in SKHASH's polarity output map back through station_codes.csv
    pi = pd.read_csv(dest / "OUT" / "polinfo.csv", dtype={"sta_code": str})
    codes = pd.read_csv(paths["station_codes"], dtype=str)
    net_sta = pi["sta_code"].str.split(".", expand=True)
    real = dict(zip(zip(codes["skhash_network"], codes["skhash_station"]),
                    zip(codes["network"], codes["station"])))
    mapped = [real[(n, s)] for n, s in zip(net_sta[0], net_sta[1])]
    assert len(mapped) == 153 and {n for n, _ in mapped} == {"5B"}
    ref_pi = pd.read_csv(skhash_demo_dir / "OUT" / "out_polinfo.csv")
    assert sorted(s for _, s in mapped) == sorted(ref_pi["sta_code"].str.split(".").str[0])
