"""Bad input to the ToC2ME ingest: missing/unreadable files raise InputError naming the
file; bad rows become rejects rows (file, line, reason, content, stage) and the rest loads.

Each test copies the real catalogue folder into a temp dir and corrupts the copy.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline import tables
from pipeline.errors import InputError
from pipeline.ingest import toc2me

CAT = "catalog/mt_solution_20250317_SKHASH_quality_A.txt"
SKH = "catalog/mt_solution_20241114_SKHASH_quality_A.txt"


def _copy_input(src: Path, dest: Path) -> Path:
    shutil.copytree(src / "catalog", dest / "catalog")
    return dest


def _edit_lines(path: Path, edits: dict[int, str] | None = None, append: list[str] = ()) -> list[str]:
    """Replace 1-based lines and append lines; returns the original lines."""
    lines = path.read_text().splitlines()
    original = list(lines)
    for no, text in (edits or {}).items():
        lines[no - 1] = text
    path.write_text("\n".join(lines + list(append)) + "\n")
    return original


def _set_field(line: str, index: int, value: str) -> str:
    parts = line.split("\t")
    parts[index] = value
    return "\t".join(parts)


@pytest.fixture(scope="module")
def corrupted(toc2me_dir, tmp_path_factory):
    """One folder with many independent corruptions, loaded once: (tables, original lines)."""
    root = _copy_input(toc2me_dir, tmp_path_factory.mktemp("toc2me_bad"))
    cat = (root / CAT).read_text().splitlines()
    skh = (root / SKH).read_text().splitlines()
    _edit_lines(root / CAT, {
        5: "\t".join(cat[4].split("\t")[:5]),                       # 5 columns
        6: _set_field(cat[5], 5, "95.0"),                           # dip 95
        7: _set_field(cat[6], 0, "2016110X221328.160"),             # garbled time
        8: _set_field(cat[7], 5, "95.0"),                           # dip 95 (also in SKH below)
    }, append=[_set_field(cat[1], 0, "20161201120000.000"),        # no catalogue event near
               cat[9]])                                             # duplicate of line 10
    _edit_lines(root / SKH, {
        8: _set_field(skh[7], 5, "95.0"),
        9: _set_field(skh[8], 4, "99.9"),                           # strike differs from CAT line 9
    })
    _edit_lines(root / "catalog/stationlist_ToC2ME.txt",
                append=[(root / "catalog/stationlist_ToC2ME.txt").read_text().splitlines()[0]])
    _edit_lines(root / "catalog/nsw/StageTimeLocation_ToC2ME_2.txt", {3: "2016 11 18 17 -117.232941 54.353094"})
    _edit_lines(root / "catalog/nsw/injection_volume.csv",
                {2: "2016/13/45,0.309073792,0.880725257,1.285714286,0.940584585,181.3984557"})
    _edit_lines(root / "catalog/well-location-one.txt", {1: "abc def"})
    return toc2me.load(root), {"cat": cat, "skh": skh}


def _reject(rejects: pd.DataFrame, file: str, line: int) -> pd.Series:
    hit = rejects[(rejects["file"] == file) & (rejects["line"] == line)]
    assert len(hit) == 1, f"expected one reject for {file}:{line}, got\n{rejects.to_string()}"
    return hit.iloc[0]


@pytest.mark.parametrize("line, stage, reason", [
    (5, "ingest", "expected 8 or 9 fields, found 5"),
    (6, "ingest", "dip 95.0 outside 0..90"),
    (7, "ingest", "not an origin time"),
    (2520, "join", "no catalogue event within 0.5 s"),
    (2521, "ingest", "duplicate: same catalogue event"),
])
def test_bad_mechanism_rows_become_rejects(corrupted, line, stage, reason):
    t, _ = corrupted
    r = _reject(t["rejects"], CAT, line)
    assert r["stage"] == stage and reason in r["reason"]
    assert r["content"]


def test_duplicate_reject_names_the_first_line(corrupted):
    t, orig = corrupted
    r = _reject(t["rejects"], CAT, 2521)
    assert "as line 10" in r["reason"] and r["content"] == orig["cat"][9]


def test_rest_of_mechanisms_still_load(corrupted):
    t, orig = corrupted
    m = t["mechanisms"].set_index("published_id")
    # lines 5-7 are broken only in the 20250317 file: the 20241114 copy keeps the event
    for no in (5, 6, 7):
        pid = orig["cat"][no - 1].split("\t")[0]
        assert m.loc[pid, "source_file"] == SKH and m.loc[pid, "source_line"] == no
        assert not np.isnan(m.loc[pid, "lat_skhash"])
    # line 8 is broken in both files: that event is gone, everything else is there
    lost = orig["cat"][7].split("\t")[0]
    assert lost not in m.index
    assert (t["mechanisms"]["quality"] == "A").sum() == 2518
    assert (t["mechanisms"]["quality"] == "B").sum() == 600
    assert len(t["events"]) == 21619
    tables.to_arrow("mechanisms", t["mechanisms"])
    tables.to_arrow("rejects", t["rejects"])


def test_reference_row_of_a_lost_mechanism_is_a_crosscheck_reject(corrupted):
    t, orig = corrupted
    lost = orig["cat"][7].split("\t")[0]
    hits = t["rejects"][t["rejects"]["content"].fillna("").str.startswith(lost)]
    cross = hits[hits["stage"] == "crosscheck"]
    assert len(cross) == 1 and "mt_solution_group" in cross["file"].iat[0]
    assert "not among the published mechanisms" in cross["reason"].iat[0]


def test_angle_mismatch_between_quality_a_files(corrupted):
    t, orig = corrupted
    r = _reject(t["rejects"], SKH, 9)
    assert r["stage"] == "crosscheck" and "differ" in r["reason"]
    pid = orig["cat"][8].split("\t")[0]
    m = t["mechanisms"].set_index("published_id").loc[pid]
    assert m["strike"] == float(orig["cat"][8].split("\t")[4])  # the 20250317 angles are kept
    assert np.isnan(m["lat_skhash"])                            # the mismatching location is not used


def test_bad_rows_in_other_files(corrupted):
    t, _ = corrupted
    rj = t["rejects"]
    assert "duplicate station 5B.1107" in _reject(rj, "catalog/stationlist_ToC2ME.txt", 70)["reason"]
    assert len(t["stations"]) == 69
    assert "expected 7 fields, found 6" in _reject(rj, "catalog/nsw/StageTimeLocation_ToC2ME_2.txt", 3)["reason"]
    # the well comes from the row number, so one bad row shifts nothing
    assert t["stages"].groupby("well").size().to_dict() == {"A": 20, "B": 24, "C": 125, "D": 16}
    assert _reject(rj, "catalog/nsw/injection_volume.csv", 2)["stage"] == "ingest"
    assert len(t["injection"]) == 58
    assert "not a number" in _reject(rj, "catalog/well-location-one.txt", 1)["reason"]
    assert (t["wells"]["well"] == "D").sum() == 36


def test_no_other_rejects(corrupted):
    t, _ = corrupted
    assert len(t["rejects"]) == 13, t["rejects"].to_string()


# --- whole-file problems ---------------------------------------------------------------------

def test_missing_catalogue_raises_naming_the_file(toc2me_dir, tmp_path):
    root = _copy_input(toc2me_dir, tmp_path)
    (root / "catalog" / "ToC2ME.xlsx").unlink()
    with pytest.raises(InputError, match="ToC2ME.xlsx") as err:
        toc2me.load(root)
    assert err.value.file.endswith("ToC2ME.xlsx") and "missing" in err.value.reason


def test_unreadable_catalogue_raises(toc2me_dir, tmp_path):
    root = _copy_input(toc2me_dir, tmp_path)
    (root / "catalog" / "ToC2ME.xlsx").write_bytes(b"this is not a workbook")
    with pytest.raises(InputError, match="ToC2ME.xlsx"):
        toc2me.load(root)


def test_missing_required_text_file_raises(toc2me_dir, tmp_path):
    root = _copy_input(toc2me_dir, tmp_path)
    (root / SKH).unlink()
    with pytest.raises(InputError, match="mt_solution_20241114_SKHASH_quality_A.txt"):
        toc2me.load(root)


def test_injection_header_without_rate_raises(toc2me_dir, tmp_path):
    root = _copy_input(toc2me_dir, tmp_path)
    _edit_lines(root / "catalog/nsw/injection_volume.csv", {1: "Date,Width,Height,Segments,Rate,Injection Volume"})
    with pytest.raises(InputError, match="injection_volume.csv"):
        toc2me.load(root)


def test_bad_catalogue_rows_become_rejects(toc2me_dir, tmp_path):
    """A short catalogue (first 400 rows) with bad cells; sheet row = DataFrame row + 2."""
    root = _copy_input(toc2me_dir, tmp_path)
    path = root / "catalog" / "ToC2ME.xlsx"
    df = pd.read_excel(path, nrows=400)
    df["Latitude"] = df["Latitude"].astype(object)
    df.loc[3, "Latitude"] = "abc"      # sheet row 5
    df.loc[10, "Second"] = 60.5        # sheet row 12
    df.loc[20, ["Month", "Day"]] = [11, 31]  # sheet row 22: 31 November
    df = pd.concat([df, df.iloc[[30]]], ignore_index=True)  # sheet row 402 repeats row 32
    df.to_excel(path, index=False)
    t = toc2me.load(root)
    rj = t["rejects"][t["rejects"]["file"] == "catalog/ToC2ME.xlsx"].set_index("line")
    assert sorted(rj.index) == [5, 12, 22, 402]
    assert "Latitude" in rj.loc[5, "reason"] and "Second" in rj.loc[12, "reason"]
    assert "invalid date" in rj.loc[22, "reason"] and "duplicate origin time" in rj.loc[402, "reason"]
    assert "row 32" in rj.loc[402, "reason"]
    assert len(t["events"]) == 400 - 3
    # mechanisms after the short catalogue's end cannot join: join rejects, no crash
    assert (t["rejects"]["stage"] == "join").sum() > 1000


def test_sensor_polarity_is_data_read_from_the_sensors_file(toc2me_dir, tmp_path):
    """``stations.reversed`` comes from the sensor-polarity file, station by station: an input
    folder's own file replaces the shipped one, a flipped row flips only that station, a station
    without a row is a reject (never a network default) and a bad row is a reject with its line."""
    root = _copy_input(toc2me_dir, tmp_path)
    shipped = pd.read_csv(toc2me.SHIPPED_SENSORS, dtype=str)
    own = shipped[shipped["station"] != "1109"].copy()            # 1109: no polarity stated
    own.loc[own["station"] == "1108", "reversed"] = "false"       # 1108: a normal vertical
    lines = own[["network", "station", "reversed"]].to_csv(index=False).splitlines()
    lines.append("5B,9999,sideways")                               # a bad value, on the last line
    (root / toc2me.SENSORS_FILE).write_text("\n".join(lines) + "\n")
    t = toc2me.load(root)
    got = t["stations"].set_index("station")["reversed"]
    expected = own.set_index("station")["reversed"].str.lower().eq("true")
    assert "1109" not in got.index
    assert got.to_dict() == expected[expected.index.isin(got.index)].to_dict()
    assert not got["1108"] and got.drop("1108").all()
    rj = t["rejects"]
    miss = rj[(rj["file"] == toc2me.STATIONS_FILE) & rj["reason"].str.contains("5B.1109", regex=False)]
    assert len(miss) == 1 and toc2me.SENSORS_FILE in miss["reason"].iloc[0]
    bad = rj[rj["file"] == toc2me.SENSORS_FILE]
    assert list(bad["line"]) == [len(lines)] and "sideways" in bad["reason"].iloc[0]


def test_shipped_sensor_file_covers_the_public_station_list(toc2me_dir):
    """Every station of the public station list has a stated polarity in the shipped file."""
    listed = {tuple(ln.split()[1::-1]) for ln in (toc2me_dir / toc2me.STATIONS_FILE).read_text().splitlines()
              if ln.strip()}
    shipped = pd.read_csv(toc2me.SHIPPED_SENSORS, dtype=str)
    assert listed <= set(zip(shipped["network"], shipped["station"]))
