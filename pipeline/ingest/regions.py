"""Named, versioned region and subset definitions (clusters), kept in code.

The original study only had pre-cut files for its clusters (NSw, SWe) and for the SWe
low-dip set (analyses.md 5.13). Here each one is a definition with a name, a version and
a description, so a view can say exactly which selection it shows ("SWe-lowdip v1").

* A :class:`Region` is a closed lat/lon box applied to one set of coordinates:
  ``coords='catalogue'`` (the catalogue location; ToC2ME solution B) or
  ``coords='skhash'`` (the location SKHASH used, ToC2ME solution A, where the event has
  one; the catalogue location otherwise).
* A :class:`PolygonRegion` is a named lat/lon polygon (catalogue coordinates): the regions
  of a user's own project (``regions = "regions.csv"`` in ``project.toml``, read by
  :func:`read_regions_csv`).
* A :class:`Subset` is a named boolean filter over a mechanisms table.

Registries are per dataset (``REGIONS['toc2me']``, ``SUBSETS['toc2me']``); another data
source (e.g. the demo generator) builds its own tuples of :class:`Region` and passes them
to :func:`assign_clusters`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd

COORDS = ("catalogue", "skhash")


@dataclass(frozen=True)
class _NamedRegion:
    """What every region has: a name, a version, a description and the coordinates it
    applies to (one of COORDS)."""

    name: str
    version: int
    description: str
    coords: str

    def __post_init__(self):
        if self.coords not in COORDS:
            raise ValueError(f"region {self.name}: coords must be one of {COORDS}, not {self.coords!r}")

    @property
    def label(self) -> str:
        """``'<name> v<version>'``, for captions and logs."""
        return f"{self.name} v{self.version}"


@dataclass(frozen=True)
class Region(_NamedRegion):
    """A named lat/lon box (closed bounds, degrees, longitude east-positive)."""

    lat_min: float
    lat_max: float
    lon_min: float
    lon_max: float

    def __post_init__(self):
        super().__post_init__()
        if not (self.lat_min <= self.lat_max and self.lon_min <= self.lon_max):
            raise ValueError(f"region {self.name}: need lat_min <= lat_max and lon_min <= lon_max")

    def contains(self, lat, lon) -> np.ndarray:
        """True where (lat, lon) in degrees lies inside the closed box; NaN -> False."""
        lat = np.asarray(lat, dtype=float)
        lon = np.asarray(lon, dtype=float)
        return (lat >= self.lat_min) & (lat <= self.lat_max) & (lon >= self.lon_min) & (lon <= self.lon_max)


@dataclass(frozen=True)
class PolygonRegion(_NamedRegion):
    """A named lat/lon polygon (degrees, longitude east-positive), vertices in order around
    it; the last vertex joins the first. Inside is the even-odd rule (a ray crossing the
    boundary an odd number of times), so a polygon may be concave. A point exactly on an
    edge may fall either side: draw the polygon around the events, not through them.
    Longitudes are taken as written (a polygon across +-180 is not supported)."""

    lats: tuple[float, ...]
    lons: tuple[float, ...]

    def __post_init__(self):
        super().__post_init__()
        if len(self.lats) != len(self.lons) or len(self.lats) < 3:
            raise ValueError(f"region {self.name}: a polygon needs at least 3 vertices, got {len(self.lats)}")

    def contains(self, lat, lon) -> np.ndarray:
        """True where (lat, lon) in degrees lies inside the polygon; NaN -> False."""
        y = np.asarray(lat, dtype=float)
        x = np.asarray(lon, dtype=float)
        inside = np.zeros(np.broadcast(y, x).shape, dtype=bool)
        ys, xs = np.asarray(self.lats, dtype=float), np.asarray(self.lons, dtype=float)
        for i in range(len(ys)):
            y1, x1, y2, x2 = ys[i], xs[i], ys[i - 1], xs[i - 1]
            crosses = (y1 > y) != (y2 > y)  # the edge spans the point's latitude (never horizontal)
            with np.errstate(divide="ignore", invalid="ignore"):
                x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            inside ^= crosses & (x < x_at)
        return inside & np.isfinite(y) & np.isfinite(x)


def read_regions_csv(path, rel: str | None = None) -> tuple[PolygonRegion, ...]:
    """Named polygons from a CSV of vertex rows ``name,lat,lon[,description]`` (degrees),
    each region's vertices in order around it (at least 3; do not repeat the first). Regions
    keep the order of their first row: an event inside several gets the first. A region's
    ``description`` is its first non-empty one. Catalogue coordinates, version 1.

    A bad file is an :class:`pipeline.errors.InputError` naming ``rel`` (default the path)
    and the line: the regions are a definition, so a wrong vertex is not skipped."""
    from pipeline.errors import InputError
    from .catalog_formats import _csv_rows, _float
    rel = str(path) if rel is None else rel
    _, rows = _csv_rows(path, rel, ["name", "lat", "lon"])
    vertices: dict[str, list] = {}
    first_line: dict[str, int] = {}
    notes: dict[str, str] = {}
    for n, _, r in rows:
        if not r["name"]:
            raise InputError(rel, "empty region name", line=n)
        try:
            vertex = (_float(r["lat"], "lat", -90, 90), _float(r["lon"], "lon", -180, 180))
        except ValueError as exc:
            raise InputError(rel, f"region {r['name']}: {exc}", line=n) from None
        vertices.setdefault(r["name"], []).append(vertex)
        first_line.setdefault(r["name"], n)
        if r.get("description") and r["name"] not in notes:
            notes[r["name"]] = r["description"]
    if not vertices:
        raise InputError(rel, "no region (one row per polygon vertex: name,lat,lon)")
    out = []
    for name, vs in vertices.items():
        if len(vs) < 3:
            raise InputError(rel, f"region {name}: a polygon needs at least 3 vertices, got {len(vs)}",
                             line=first_line[name])
        lons = [v[1] for v in vs]
        if max(lons) - min(lons) > 180:
            raise InputError(rel, f"region {name}: spans more than 180 degrees of longitude "
                                  "(polygons across +-180 are not supported)", line=first_line[name])
        out.append(PolygonRegion(name, 1, notes.get(name, f"region {name} of {rel}"), "catalogue",
                                 tuple(v[0] for v in vs), tuple(lons)))
    return tuple(out)


@dataclass(frozen=True)
class Subset:
    """A named, versioned filter over a mechanisms DataFrame (``mask(df) -> bool array``).

    ``population``: the mechanism population (``components.filters.POPULATIONS`` key) the
    subset was defined on, or None (any: the dashboard's). The SWe subsets were cut on the
    SWe SKHASH run's quality A and B mechanisms, so they need ``AB``: with the default
    quality-A population only 313 of the 913 would remain."""

    name: str
    version: int
    description: str
    mask_fn: Callable[[pd.DataFrame], np.ndarray]
    population: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"

    def mask(self, mechanisms: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.mask_fn(mechanisms), dtype=bool)


# --- ToC2ME regions ---------------------------------------------------------------------

SWE = Region(
    "SWe", 1,
    "South-east cluster: catalogue-coordinate box; equals the 1,786 events of "
    "swe/ToC2ME_Extract.xlsx (the extract's first event, 2016-11-20 13:00:53.66, is simply "
    "the earliest event in the box, not a time bound).",
    "catalogue", 54.348922, 54.353446, -117.229557, -117.224129,
)
NSW = Region(
    "NSw", 1,
    "West-central fault ('West Fault'): box on SKHASH (solution A) coordinates where the "
    "event has them, catalogue coordinates otherwise; among the published mechanisms it "
    "selects exactly the 290 events of nsw/mt_solution_20241114_SKHASH_quality_A_West_Fault_with_mag.txt.",
    "skhash", 54.3317, 54.3461, -117.2496, -117.2477,
)

#: regions per dataset; an event gets the first region (in this order) that contains it
REGIONS: dict[str, tuple[Region, ...]] = {"toc2me": (SWE, NSW)}


def region_coords(df: pd.DataFrame, region: Region | PolygonRegion, skhash_coords: pd.DataFrame | None = None):
    """(lat, lon) arrays of ``df`` in the coordinates ``region`` applies to.

    ``df`` has catalogue ``lat``/``lon``. For ``coords='skhash'`` the SKHASH location is
    taken from ``skhash_coords`` (columns ``event_id, lat_skhash, lon_skhash``, matched on
    ``df.event_id``) or, when that is None, from ``df``'s own ``lat_skhash``/``lon_skhash``
    columns if present; rows without one fall back to the catalogue location.
    """
    lat = df["lat"].to_numpy(dtype=float)
    lon = df["lon"].to_numpy(dtype=float)
    if region.coords == "catalogue":
        return lat, lon
    if skhash_coords is not None:
        sk = skhash_coords.dropna(subset=["lat_skhash", "lon_skhash"]).drop_duplicates("event_id").set_index("event_id")
        s_lat = df["event_id"].map(sk["lat_skhash"]).to_numpy(dtype=float)
        s_lon = df["event_id"].map(sk["lon_skhash"]).to_numpy(dtype=float)
    elif {"lat_skhash", "lon_skhash"} <= set(df.columns):
        s_lat = df["lat_skhash"].to_numpy(dtype=float)
        s_lon = df["lon_skhash"].to_numpy(dtype=float)
    else:
        return lat, lon
    has = ~(np.isnan(s_lat) | np.isnan(s_lon))
    return np.where(has, s_lat, lat), np.where(has, s_lon, lon)


def region_mask(df: pd.DataFrame, region: Region | PolygonRegion, skhash_coords: pd.DataFrame | None = None) -> np.ndarray:
    """Boolean mask of the rows of ``df`` (events or mechanisms) inside ``region``."""
    return region.contains(*region_coords(df, region, skhash_coords))


def assign_clusters(events_df: pd.DataFrame, skhash_coords: pd.DataFrame | None = None,
                    regions: Sequence[Region | PolygonRegion] | None = None) -> pd.Series:
    """Cluster name per row of ``events_df`` (None outside every region).

    ``events_df`` needs ``lat``/``lon`` (catalogue, degrees) and, for SKHASH-coordinate
    regions, ``event_id``. ``regions`` defaults to ``REGIONS['toc2me']``; the first region
    containing a row wins (the ToC2ME boxes do not overlap). See :func:`region_coords` for
    ``skhash_coords``.
    """
    regions = REGIONS["toc2me"] if regions is None else regions
    out = np.full(len(events_df), None, dtype=object)
    free = np.ones(len(events_df), dtype=bool)
    for region in regions:
        hit = region_mask(events_df, region, skhash_coords) & free
        out[hit] = region.name
        free &= ~hit
    return pd.Series(out, index=events_df.index, name="cluster", dtype=object)


def get_region(name: str, dataset: str = "toc2me") -> Region:
    """The region called ``name`` in ``dataset``'s registry."""
    for region in REGIONS[dataset]:
        if region.name == name:
            return region
    raise KeyError(f"no region {name!r} for dataset {dataset!r}; known: {[r.name for r in REGIONS[dataset]]}")


# --- ToC2ME mechanism subsets -------------------------------------------------------------

#: token in ``mechanisms.published_set`` of the events listed in swe/..._SWe_quality_A_B.txt
SWE_AB_TOKEN = "SWe_A_B"
#: northern edge of the low-dip set: the 7 low-dip events at lat >= this (catalogue) are dropped
SWE_NORTHEST_LAT = 54.3532


def _has_token(df: pd.DataFrame, token: str) -> np.ndarray:
    sets = df["published_set"].fillna("").astype(str)
    return sets.str.split(";").apply(lambda parts: token in parts).to_numpy(dtype=bool)


def _swe_dip(df: pd.DataFrame) -> np.ndarray:
    """Dip of the SWe SKHASH run (column ``dip_swe``), deg. That run is separate from the
    2,519-event quality-A run: for 277 of its 313 shared events it reports different
    angles, and the published SWe subsets were cut on its angles."""
    return df["dip_swe"].to_numpy(dtype=float)


def _mask_nsw(df: pd.DataFrame) -> np.ndarray:
    return region_mask(df, NSW)


def _mask_swe_ab(df: pd.DataFrame) -> np.ndarray:
    return _has_token(df, SWE_AB_TOKEN)


def _mask_swe_dip45(df: pd.DataFrame) -> np.ndarray:
    return _mask_swe_ab(df) & (_swe_dip(df) < 45.0)


def _mask_swe_lowdip(df: pd.DataFrame) -> np.ndarray:
    # np.round rounds half to even (44.5 -> 44), as the published 142-event file does
    # (e.g. rake 166.5 -> 166); round-half-up would give 140 events instead of 142.
    low = np.round(_swe_dip(df)) <= 44
    return _mask_swe_ab(df) & low & (df["lat"].to_numpy(dtype=float) < SWE_NORTHEST_LAT)


SUBSETS: dict[str, tuple[Subset, ...]] = {
    "toc2me": (
        Subset("NSw", 1, "Mechanisms inside region NSw v1 (SKHASH coordinates): 290.", _mask_nsw),
        Subset("SWe-AB", 1,
               "Mechanisms of the separate SWe SKHASH run (quality A or B; file "
               "swe/mt_solution_20250317_SKHASH_SWe_quality_A_B.txt): 913.", _mask_swe_ab, "AB"),
        Subset("SWe-dip45", 1,
               "SWe-AB with SWe-run dip < 45 deg (the activation-animation set): 156.", _mask_swe_dip45, "AB"),
        Subset("SWe-lowdip", 1,
               "SWe-AB with round-half-even(SWe-run dip) <= 44 deg, excluding the 'northest' "
               f"events at catalogue lat >= {SWE_NORTHEST_LAT}: 142 (the diffusion-fit set).",
               _mask_swe_lowdip, "AB"),
    ),
}


def get_subset(name: str, dataset: str = "toc2me") -> Subset:
    """The subset called ``name`` in ``dataset``'s registry."""
    for subset in SUBSETS[dataset]:
        if subset.name == name:
            return subset
    raise KeyError(f"no subset {name!r} for dataset {dataset!r}; known: {[s.name for s in SUBSETS[dataset]]}")


def subset_mask(mechanisms: pd.DataFrame, name: str, dataset: str = "toc2me") -> np.ndarray:
    """Boolean mask of the rows of ``mechanisms`` in subset ``name`` of ``dataset``."""
    return get_subset(name, dataset).mask(mechanisms)
