"""Local frame conversion checked against ObsPy's geodesic distance and azimuth."""
import numpy as np
import pytest

from pipeline import geo

gps2dist = pytest.importorskip("obspy.geodetics").gps2dist_azimuth


def test_local_frame_matches_geodesic():
    lat0, lon0 = geo.TOC2ME_ORIGIN
    rng = np.random.default_rng(1)
    lats = lat0 + rng.uniform(-0.08, 0.08, 50)
    lons = lon0 + rng.uniform(-0.15, 0.15, 50)
    x, y = geo.to_local_km(lats, lons, geo.TOC2ME_ORIGIN)
    for la, lo, xi, yi in zip(lats, lons, x, y):
        dist_m, az, _ = gps2dist(lat0, lon0, la, lo)
        assert np.hypot(xi, yi) * 1000 == pytest.approx(dist_m, abs=0.2)
        assert np.degrees(np.arctan2(xi, yi)) % 360 == pytest.approx(az, abs=0.01)


def test_round_trip_and_aspect():
    lat, lon = geo.to_geographic(*geo.to_local_km(54.35, -117.23, geo.TOC2ME_ORIGIN), geo.TOC2ME_ORIGIN)
    assert lat == pytest.approx(54.35, abs=1e-9) and lon == pytest.approx(-117.23, abs=1e-9)
    # a degree of longitude at 54.33 N is ~0.58 of a degree of latitude (the 1.72x stretch
    # of plotting raw degrees)
    x, _ = geo.to_local_km(54.33, -116.24, geo.TOC2ME_ORIGIN)
    _, y = geo.to_local_km(55.33, -117.24, geo.TOC2ME_ORIGIN)
    assert y / x == pytest.approx(1.72, abs=0.01)


def test_great_circle_and_azimuth():
    d = geo.great_circle_km(54.33, -117.24, 54.34, -117.24)
    assert d == pytest.approx(1.112, abs=0.003)
    assert geo.azimuth_deg(54.33, -117.24, 54.34, -117.24) == pytest.approx(0, abs=1e-6)
    assert geo.azimuth_deg(54.33, -117.24, 54.33, -117.23) == pytest.approx(90, abs=0.01)
