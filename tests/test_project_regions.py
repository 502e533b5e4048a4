"""Named regions (clusters) for a user's own experiment: ``regions = "regions.csv"`` in
``project.toml``, one row per polygon vertex (``name,lat,lon[,description]``)."""
from __future__ import annotations

import shutil
import textwrap

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.ingest import project, regions


def _tiny_project(root, regions_csv: str | None) -> None:
    """Five CSV events at hand-placed positions, one station, and (optionally) regions."""
    (root / "catalog.csv").write_text(textwrap.dedent("""\
        time,lat,lon,depth_km,magnitude,event_id
        2020-01-01T00:00:01,10.5,21.5,2.0,1.0,A
        2020-01-01T00:00:02,11.5,20.5,2.0,1.0,B
        2020-01-01T00:00:03,11.5,21.5,2.0,1.0,C
        2020-01-01T00:00:04,8.5,21.0,2.0,1.0,D
        2020-01-01T00:00:05,20.0,20.0,2.0,1.0,E
        """))
    (root / "stations.csv").write_text("network,station,lat,lon,elevation_m\nXX,S1,10,21,100\n")
    keys = 'catalog = "catalog.csv"\nstations = "stations.csv"\n'
    if regions_csv is not None:
        (root / "regions.csv").write_text(textwrap.dedent(regions_csv))
        keys += 'regions = "regions.csv"\n'
    (root / "project.toml").write_text(keys)


#: "North" is an L (lat 10-11 x lon 20-22, plus lat 11-12 x lon 20-21): its notch
#: (lat 11-12 x lon 21-22) is outside it; "South" a square; "Wide" holds all of them.
REGIONS_CSV = """\
    name,lat,lon,description
    North,10,20,an L-shaped pad
    North,10,22,
    North,11,22,
    North,11,21,
    North,12,21,
    North,12,20,
    South,8,20,
    South,8,22,
    South,9,22,
    South,9,20,
    Wide,7,19,
    Wide,7,23,
    Wide,13,23,
    Wide,13,19,
    """


def test_events_get_the_first_polygon_that_holds_them(tmp_path):
    _tiny_project(tmp_path, REGIONS_CSV)
    p = project.load(tmp_path)
    got = p.tables["events"].set_index("catalogue_id")["cluster"].fillna("-").to_dict()
    # A in the L's foot, B in its stem, C in the notch (so only in Wide), D in South, E in none
    assert got == {"A": "North", "B": "North", "C": "Wide", "D": "South", "E": "-"}
    defs = regions.read_regions_csv(tmp_path / "regions.csv")
    assert [r.name for r in defs] == ["North", "South", "Wide"] and defs[0].description == "an L-shaped pad"
    assert defs[1].description == "region South of " + str(tmp_path / "regions.csv")


def test_without_regions_every_cluster_is_null(tmp_path):
    _tiny_project(tmp_path, None)
    assert project.load(tmp_path).tables["events"]["cluster"].isna().all()


def test_polygon_matches_the_box_it_traces():
    """A polygon drawn on a box's corners selects what the box selects (random points)."""
    box = regions.Region("B", 1, "", "catalogue", 54.30, 54.36, -117.26, -117.20)
    poly = regions.PolygonRegion("B", 1, "", "catalogue", (54.30, 54.30, 54.36, 54.36),
                                 (-117.26, -117.20, -117.20, -117.26))
    rng = np.random.default_rng(0)
    lat, lon = rng.uniform(54.28, 54.38, 5000), rng.uniform(-117.28, -117.18, 5000)
    assert np.array_equal(poly.contains(lat, lon), box.contains(lat, lon))
    assert not poly.contains([np.nan], [-117.23]).any()


@pytest.mark.parametrize("text, line, reason", [
    ("name,lat,lon\nR,1,1\nR,1,2\n", 2, "at least 3 vertices"),
    ("name,lat,lon\nR,1,1\nR,95,2\nR,2,2\n", 3, "lat '95' outside"),
    ("name,lat,lon\n,1,1\n", 2, "empty region name"),
    ("name,lat,lon\nR,1,-179\nR,1,179\nR,2,179\n", 2, "180 degrees"),
])
def test_a_bad_regions_file_names_the_file_and_line(tmp_path, text, line, reason):
    (tmp_path / "regions.csv").write_text(text)
    with pytest.raises(InputError, match=reason) as exc:
        regions.read_regions_csv(tmp_path / "regions.csv", "regions.csv")
    assert exc.value.file == "regions.csv" and exc.value.line == line


def test_missing_columns_or_no_rows_are_clear(tmp_path):
    (tmp_path / "r.csv").write_text("name,lat\nR,1\n")
    with pytest.raises(InputError, match="missing column"):
        regions.read_regions_csv(tmp_path / "r.csv")
    (tmp_path / "r.csv").write_text("name,lat,lon\n")
    with pytest.raises(InputError, match="no region"):
        regions.read_regions_csv(tmp_path / "r.csv")


def test_files_build_with_regions_feeds_the_cluster_filter(files_project_dir, demo_data_dir, tmp_path):
    """The demo exported as a project, plus a regions.csv tracing the demo's cluster boxes:
    the build names the same clusters the demo's own box code gave those events, and the
    dashboard's cluster filter offers them and counts their events."""
    from components.data import DataProvider
    from components.filters import Filters
    from pipeline import build
    from pipeline.demo.scenario import REGIONS
    from pipeline.tables import read_table

    root = tmp_path / "project"
    shutil.copytree(files_project_dir, root)
    rows = ["name,lat,lon"]
    for r in REGIONS:   # the four corners of each box, in order around it
        rows += [f"{r.name},{lat},{lon}" for lat, lon in ((r.lat_min, r.lon_min), (r.lat_min, r.lon_max),
                                                          (r.lat_max, r.lon_max), (r.lat_max, r.lon_min))]
    (root / "regions.csv").write_text("\n".join(rows) + "\n")
    with open(root / "project.toml", "a") as fh:
        fh.write('regions = "regions.csv"\n')
    data_dir = tmp_path / "data"
    build.build("files", root, data_dir, options=build.Options(workers=1, dashboard=False, progress=False))

    ev = read_table(data_dir, "events")
    demo = read_table(demo_data_dir, "events").set_index("event_id")["cluster"]
    assert ev["cluster"].notna().any()
    assert ev.set_index("event_id")["cluster"].fillna("-").to_dict() == \
        demo.reindex(ev["event_id"]).fillna("-").to_dict()
    mech = read_table(data_dir, "mechanisms")
    assert mech["cluster"].fillna("-").tolist() == \
        mech["event_id"].map(ev.set_index("event_id")["cluster"]).fillna("-").tolist()
    provider = DataProvider(data_dir)
    names = sorted(ev["cluster"].dropna().unique())
    assert [c for c in provider.filter_options()["clusters"] if c in names] == names
    for name in names:
        n = int(provider.counts(Filters.from_query(f"cluster={name}")).iloc[0]["events"])
        assert n == int((ev["cluster"] == name).sum())
