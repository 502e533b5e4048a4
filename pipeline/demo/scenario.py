"""A synthetic hydraulic-fracturing experiment shaped like ToC2ME, with its ground truth.

:func:`generate` builds, from a seed alone and in about a second, every table of the data
contract (:data:`pipeline.schema.REQUIRED_TABLES`; ``rejects`` is empty) plus ``truth_*``
tables that say what the synthetic data were made from, so analyses can be checked
against known answers. Same seed, same tables (see :func:`content_digest`).

The scenario (all numbers are module constants, also listed in ``truth_scenario``):

* frame origin 54.33 N, 117.24 W (dataset ``demo``); local x_km east / y_km north
  (:mod:`pipeline.geo`);
* 66 stations ``XD.D001``..``XD.D066`` on a jittered ~0.75 x 0.7 km grid over 6 x 5 km;
  a random subset of :data:`N_REVERSED` has ``reversed=True`` (listed in the scenario row
  ``reversed_stations``);
* four N-S horizontal wells A-D (east to west: A, B, C, D, like ToC2ME), ~2.9 km long at
  3.2 km depth, listed toe (north) first; 16-28 stages each, Oct 26 - Nov 30 2016, moving
  toe -> heel; daily injection per well (pumping rate 8-13 m3/min);
* ~11,000 events with Gutenberg-Richter magnitudes (b = 1.0 above Mc = -1.0) thinned by a
  normal-CDF detection roll-off (50 % at -1.4, sigma 0.2), rounded to 0.01;
* two clusters, each on its own fault(s), migrating from an origin point by fluid
  diffusion: an event at time t after the cluster's first event lies at 3-D distance
  ``r = sqrt(4 pi D t) * sqrt(u)``, u ~ U(0, 1), from the origin (so every cluster event is
  inside the envelope ``sqrt(4 pi D t)`` and r/envelope has the quantiles of sqrt(u):
  a quantile-q envelope fit on 3-D distance gives D*q, on epicentral distance a little
  less); the first event of each cluster sits exactly at the origin:

  - ``NSw``: near-vertical N-S strike-slip fault 500 m west of well D (181/85/180),
    D = 0.05 m2/s, two bursts (Nov 7 and Nov 23);
  - ``SWe``: NNE strike-slip fault (25/87/178) 700 m east of well A, D = 0.02 m2/s, from
    Nov 21, plus a low-dip oblique fault (200/40/150) through the same origin, active
    from ~1 day later, on the NNE side (fault id ``SWe-lowdip``);

* background seismicity: a Poisson number of events after each stage (exponential decay,
  8.4 h), in a cloud elongated N45E around the stage; plus a few diffuse events anywhere
  near the wells (never inside a cluster box).
* ``cluster`` comes from the lat/lon boxes :data:`REGIONS` (names reused from ToC2ME:
  ``NSw``, ``SWe``); by construction the boxes hold exactly the cluster events, and the
  earliest event in a box is the cluster's origin event.
* published mechanisms for 15 % of events, chosen with weight 10**(0.75 M) (larger ones
  preferred); quality A-D by magnitude plus noise; the reported plane 1 is the true fault
  plane rotated by a random rotation vector with per-axis sigma of
  :data:`SCATTER_DEG` (A 4, B 6, C 9, D 13 deg; the rotation angle, i.e. the Kagan angle
  to the truth, averages ~1.6 sigma); 3 % report the auxiliary plane as plane 1 (as
  SKHASH may). Catalogue locations are the true hypocentres; the "SKHASH" locations
  (``lat_skhash`` ...) are 125 m shallower with ~20 m horizontal noise, like ToC2ME's
  two solutions.

Truth tables: ``truth_scenario`` (name, value as text, value_num, unit, description),
``truth_events`` (per event: fault id, true mechanism, cluster, distance to origin and
envelope) and ``truth_mechanisms`` (per published mechanism: true plane, reported plane,
rotation angle).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
from scipy.special import ndtr

from pipeline import geo, schema, tables
from pipeline.ingest.regions import Region, Subset, assign_clusters
from pipeline.mechanisms import enrich, focal

DATASET = "demo"
DEFAULT_SEED = 20161104
ORIGIN = (54.3300, -117.2400)  #: frame origin (lat, lon), deg
NETWORK = "XD"
T_START = pd.Timestamp("2016-10-26 00:00:00", tz="UTC")  #: catalogue start
T_END = pd.Timestamp("2016-11-30 23:59:59", tz="UTC")  #: catalogue end

# magnitudes
B_VALUE = 1.0  #: Gutenberg-Richter b of every event population
MC = -1.0  #: magnitude of completeness (detection probability >= 97.7 % above it)
DETECT_MU = -1.4  #: magnitude detected with probability 1/2
DETECT_SIGMA = 0.2  #: width of the normal-CDF detection roll-off, magnitude units
M_LATENT_MIN, M_MAX = -2.6, 3.5  #: bounds of the (truncated) latent G-R distribution
MAG_DECIMALS = 2  #: catalogue magnitudes are rounded to this many decimals (0.01)

# geometry (local km)
WELL_DEPTH_KM = 3.2
TOE_Y_KM, HEEL_Y_KM = 2.95, 0.02
BG_AZIMUTH_DEG = 45.0  #: long axis of the stage-triggered clouds (SHmax-like)
BG_ALONG_SIGMA_KM, BG_ALONG_MAX_KM = 0.12, 0.30
BG_ACROSS_SIGMA_KM, BG_ACROSS_MAX_KM = 0.04, 0.08
BG_DEPTH_SIGMA_KM = 0.05
BG_PER_STAGE = 70  #: mean number of background events per stage (Poisson)
BG_DECAY_DAYS, BG_WINDOW_DAYS = 0.35, 3.0
N_DIFFUSE = 200
DIFFUSE_BOX_KM = (-1.6, 1.9, -0.6, 3.6)  #: xmin, xmax, ymin, ymax
N_STATIONS_GRID, N_STATIONS_DROPPED, N_REVERSED = (9, 8), 6, 7

# mechanisms
MECH_FRACTION = 0.15
MECH_MAG_WEIGHT = 0.75  #: selection weight 10**(MECH_MAG_WEIGHT * M)
QUALITY_SHARES = {"A": 0.55, "B": 0.25, "C": 0.12, "D": 0.08}
SCATTER_DEG = {"A": 4.0, "B": 6.0, "C": 9.0, "D": 13.0}  #: per-axis sigma of the rotation vector
AUX_PLANE_FRACTION = 0.03
SKHASH_DEPTH_SHIFT_KM = -0.125
BG_MECH = {"strike": (40.0, 10.0), "dip": (84.0, 4.0), "rake": (178.0, 5.0)}  #: mean, sd (deg)
#: SKHASH-style metrics drawn uniformly per quality, inside the HASH quality limits:
#: fault-plane uncertainty (deg), mechanism probability (%), polarity misfit (%),
#: station distribution ratio (%)
QUALITY_METRICS = {
    "A": {"fault_plane_uncertainty": (8, 25), "prob_mech": (80, 100), "polarity_misfit": (0, 15),
          "sta_distribution_ratio": (50, 90)},
    "B": {"fault_plane_uncertainty": (25, 35), "prob_mech": (60, 80), "polarity_misfit": (5, 20),
          "sta_distribution_ratio": (40, 80)},
    "C": {"fault_plane_uncertainty": (35, 45), "prob_mech": (50, 60), "polarity_misfit": (10, 30),
          "sta_distribution_ratio": (30, 70)},
    "D": {"fault_plane_uncertainty": (45, 60), "prob_mech": (30, 50), "polarity_misfit": (15, 35),
          "sta_distribution_ratio": (20, 60)},
}


@dataclass(frozen=True)
class WellSpec:
    """A N-S horizontal well at ``x_km``; stages evenly spaced in time (hour resolution)."""

    name: str
    x_km: float
    first_stage: str
    last_stage: str
    n_stages: int


WELLS = (
    WellSpec("A", 0.46, "2016-11-17 21:00", "2016-11-29 18:00", 22),
    WellSpec("B", 0.20, "2016-11-18 01:00", "2016-11-30 20:00", 24),
    WellSpec("C", -0.08, "2016-10-26 12:00", "2016-11-15 22:00", 28),
    WellSpec("D", -0.35, "2016-11-20 04:00", "2016-11-28 15:00", 16),
)


@dataclass(frozen=True)
class FaultSpec:
    """Events on one fault plane of a cluster.

    ``bursts``: (onset days after cluster start, share of the events, exponential decay
    days), each truncated at :data:`T_END`. ``along_sign``: +1 only along the strike
    vector, -1 only against it, 0 both. ``beta_sigma``: spread (rad) of the in-plane
    direction away from the strike line (0 = a line, large = the whole plane).
    ``half_height_km``: the events' depth stays within this of the origin's (the in-plane
    direction's dip component is scaled down where r is large, so r is unchanged).
    """

    fault_id: str
    strike: float
    dip: float
    rake: float
    n_events: int
    bursts: tuple[tuple[float, float, float], ...]
    along_sign: int = 0
    beta_sigma: float = 0.35
    half_height_km: float = 0.3


@dataclass(frozen=True)
class ClusterSpec:
    """A diffusion-driven cluster: origin (x_km, y_km, depth_km), start time (first event,
    ms), hydraulic diffusivity D (m^2/s), region box (xmin, xmax, ymin, ymax km), faults
    (the first holds the origin event)."""

    name: str
    description: str
    origin_km: tuple[float, float, float]
    start: str
    diffusivity_m2_s: float
    box_km: tuple[float, float, float, float]
    faults: tuple[FaultSpec, ...]


CLUSTERS = (
    ClusterSpec(
        "NSw", "near-vertical N-S right-lateral strike-slip fault 500 m west of well D",
        (-0.85, 1.25, 3.30), "2016-11-07 06:12:31.250", 0.05, (-1.03, -0.67, -0.05, 2.55),
        (FaultSpec("NSw-main", 181.0, 85.0, 180.0, 2600, ((0.0, 0.4, 2.0), (16.0, 0.6, 3.0))),),
    ),
    ClusterSpec(
        "SWe", "NNE strike-slip fault 700 m east of well A with a low-dip oblique splay",
        (1.15, 2.35, 3.35), "2016-11-21 00:01:00.270", 0.02, (0.78, 1.48, 1.85, 2.95),
        (FaultSpec("SWe-main", 25.0, 87.0, 178.0, 1650, ((0.0, 1.0, 2.5),), half_height_km=0.25),
         FaultSpec("SWe-lowdip", 200.0, 40.0, 150.0, 280, ((1.2, 1.0, 2.0),), along_sign=-1, beta_sigma=0.5,
                   half_height_km=0.25)),
    ),
)


def _box_region(name: str, description: str, box_km) -> Region:
    """A catalogue-coordinate :class:`Region` from a local-km box."""
    xmin, xmax, ymin, ymax = box_km
    lat, lon = geo.to_geographic(np.array([xmin, xmax]), np.array([ymin, ymax]), ORIGIN)
    return Region(name, 1, description, "catalogue",
                  round(float(lat[0]), 6), round(float(lat[1]), 6), round(float(lon[0]), 6), round(float(lon[1]), 6))


#: demo cluster regions (catalogue coordinates); pass to regions.assign_clusters
REGIONS: tuple[Region, ...] = tuple(
    _box_region(c.name, f"demo cluster {c.name}: {c.description} (box x {c.box_km[0]}..{c.box_km[1]} km, "
                        f"y {c.box_km[2]}..{c.box_km[3]} km of the demo frame)", c.box_km)
    for c in CLUSTERS
)

#: demo mechanism subsets, analogues of the ToC2ME ones (on columns cluster, quality, dip)
SUBSETS: tuple[Subset, ...] = (
    Subset("NSw", 1, "Demo mechanisms in region NSw.", lambda m: (m["cluster"] == "NSw").to_numpy(dtype=bool)),
    Subset("SWe-AB", 1, "Demo mechanisms in region SWe with quality A or B.",
           lambda m: ((m["cluster"] == "SWe") & m["quality"].isin(["A", "B"])).to_numpy(dtype=bool)),
    Subset("SWe-lowdip", 1, "SWe-AB with plane-1 dip < 45 deg.",
           lambda m: ((m["cluster"] == "SWe") & m["quality"].isin(["A", "B"]) & (m["dip"] < 45)).to_numpy(dtype=bool)),
)


# --- small helpers ---------------------------------------------------------------------------

def _ms(ts) -> int:
    """Milliseconds since the Unix epoch of a timestamp (naive = UTC)."""
    ts = pd.Timestamp(ts)
    return int((ts.tz_localize("UTC") if ts.tzinfo is None else ts).value // 1_000_000)


def _series_ms(times: pd.Series) -> np.ndarray:
    """Milliseconds since the Unix epoch of a tz-aware datetime Series."""
    return ((times - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)).to_numpy(dtype=np.int64)


def _truncated_exp(rng, n: int, tau: float, window: np.ndarray | float) -> np.ndarray:
    """Exponential(mean ``tau``) samples conditioned on < ``window`` (same units)."""
    u = rng.random(n)
    return -tau * np.log1p(-u * (1.0 - np.exp(-np.asarray(window) / tau)))


def _geo_round(x_km, y_km, decimals: int = 6):
    """Local km -> (lat, lon) rounded to ``decimals``, as a catalogue would print them."""
    lat, lon = geo.to_geographic(x_km, y_km, ORIGIN)
    return np.round(lat, decimals), np.round(lon, decimals)


def event_ids(time_ms: np.ndarray) -> np.ndarray:
    """Event ids ``YYYYMMDDhhmmss.fff`` (UTC) of epoch-millisecond times."""
    t = pd.to_datetime(np.asarray(time_ms, dtype=np.int64), unit="ms", utc=True)
    return np.asarray(t.strftime("%Y%m%d%H%M%S.%f").str[:-3], dtype=object)


def unique_sorted_ms(time_ms: np.ndarray) -> np.ndarray:
    """Bump a sorted array of integer ms times so that each is >= the previous + 1 ms
    (unique event ids; a time only ever moves later, by the fewest ms needed)."""
    k = np.arange(len(time_ms), dtype=np.int64)
    return np.maximum.accumulate(np.asarray(time_ms, dtype=np.int64) - k) + k


def sample_magnitudes(rng, n: int) -> np.ndarray:
    """``n`` detected magnitudes: truncated G-R (b = :data:`B_VALUE` on
    [:data:`M_LATENT_MIN`, :data:`M_MAX`]) thinned by the detection probability
    Phi((M - :data:`DETECT_MU`) / :data:`DETECT_SIGMA`), rounded to :data:`MAG_DECIMALS`."""
    out: list[np.ndarray] = []
    span = 1.0 - 10.0 ** (-B_VALUE * (M_MAX - M_LATENT_MIN))
    have = 0
    while have < n:
        m = M_LATENT_MIN - np.log10(1.0 - rng.random(4 * n + 1000) * span) / B_VALUE
        keep = m[rng.random(m.size) < ndtr((m - DETECT_MU) / DETECT_SIGMA)]
        out.append(keep)
        have += keep.size
    return np.round(np.concatenate(out)[:n], MAG_DECIMALS)


def rotation_matrices(rotvec: np.ndarray) -> np.ndarray:
    """Rotation matrices (n, 3, 3) of rotation vectors (n, 3) (axis * angle, rad; Rodrigues)."""
    theta = np.linalg.norm(rotvec, axis=-1)
    axis = rotvec / np.where(theta > 0, theta, 1.0)[:, None]
    k = np.zeros((len(rotvec), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -axis[:, 2], axis[:, 1], -axis[:, 0]
    k -= np.swapaxes(k, 1, 2)
    s, c = np.sin(theta)[:, None, None], np.cos(theta)[:, None, None]
    return np.eye(3) + s * k + (1 - c) * (k @ k)


def perturb_mechanisms(strike, dip, rake, sigma_deg, rng):
    """Rotate each mechanism's (n, d) frame by a random rotation vector whose components
    are N(0, sigma_deg^2); returns (strike, dip, rake, rotation angle), degrees.
    The rotation angle is the Kagan angle to the input for angles below ~60 deg."""
    n, d = focal.normal_and_slip(strike, dip, rake)
    rotvec = rng.normal(size=(len(n), 3)) * np.radians(np.asarray(sigma_deg, dtype=float))[:, None]
    rot = rotation_matrices(rotvec)
    s, dp, r = focal.sdr_from_normal_slip(np.einsum("nij,nj->ni", rot, n), np.einsum("nij,nj->ni", rot, d))
    return s, dp, r, np.degrees(np.linalg.norm(rotvec, axis=-1))


def fault_vectors(strike: float, dip: float):
    """Unit strike, down-dip and normal vectors of a plane in (east, north, down) km axes."""
    f, dl = np.radians(strike), np.radians(dip)
    s = np.array([np.sin(f), np.cos(f), 0.0])
    dd = np.array([np.cos(dl) * np.cos(f), -np.cos(dl) * np.sin(f), np.sin(dl)])
    return s, dd, np.cross(s, dd)


def envelope_km(diffusivity_m2_s: float, t_s) -> np.ndarray:
    """Diffusion triggering front r = sqrt(4 pi D t), km, for D in m^2/s and t in s."""
    return np.sqrt(4.0 * np.pi * diffusivity_m2_s * np.clip(np.asarray(t_s, dtype=float), 0, None)) / 1000.0


# --- infrastructure ---------------------------------------------------------------------------

def make_stations(rng) -> pd.DataFrame:
    """Jittered grid of stations over ~6 x 5 km around the wells (table ``stations``)."""
    nx, ny = N_STATIONS_GRID
    gx, gy = np.meshgrid(np.linspace(-2.95, 3.05, nx), np.linspace(3.85, -1.05, ny))  # north row first
    x, y = gx.ravel() + rng.normal(0, 0.06, nx * ny), gy.ravel() + rng.normal(0, 0.06, nx * ny)
    keep = np.sort(rng.choice(nx * ny, nx * ny - N_STATIONS_DROPPED, replace=False))
    x, y = x[keep], y[keep]
    codes = np.array([f"D{i + 1:03d}" for i in range(len(x))], dtype=object)
    reversed_ = np.zeros(len(x), dtype=bool)
    reversed_[rng.choice(len(x), N_REVERSED, replace=False)] = True
    lat, lon = _geo_round(x, y)
    df = pd.DataFrame({"network": NETWORK, "station": codes, "lat": lat, "lon": lon,
                       "elevation_m": np.round(880.0 + 15.0 * x + rng.normal(0, 5, len(x)), 1),
                       "reversed": reversed_})
    return enrich.add_local_coords(df, ORIGIN)


def make_wells(rng) -> tuple[pd.DataFrame, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Well paths, toe (north) first, one vertex per ~100 m (table ``wells``); also the
    unrounded (x, y) paths per well for placing stages."""
    ys = np.linspace(TOE_Y_KM, HEEL_Y_KM, 30)
    rows, paths = [], {}
    for w in WELLS:
        phase = rng.uniform(0, 2 * np.pi)
        xs = w.x_km + 0.012 * np.sin(2 * np.pi * ys / 2.9 + phase) + np.cumsum(rng.normal(0, 0.002, ys.size))
        paths[w.name] = (xs, ys)
        lat, lon = _geo_round(xs, ys)
        rows.append(pd.DataFrame({"well": w.name, "vertex": np.arange(ys.size, dtype=np.int32),
                                  "lat": lat, "lon": lon}))
    df = pd.concat(rows, ignore_index=True)
    df["depth_km"] = WELL_DEPTH_KM
    return enrich.add_local_coords(df, ORIGIN), paths


def make_stages(rng, paths) -> pd.DataFrame:
    """Stages toe -> heel at hour resolution with pumping rate/volume (table ``stages``;
    extra columns depth_km, rate_m3_min, pumping_min, volume_m3)."""
    rows = []
    for w in WELLS:
        n = w.n_stages
        t0, t1 = pd.Timestamp(w.first_stage, tz="UTC"), pd.Timestamp(w.last_stage, tz="UTC")
        times = t0 + (t1 - t0) * np.linspace(0, 1, n)
        jitter = np.r_[0, rng.integers(-2, 3, n - 2), 0] if n > 2 else np.zeros(n, int)
        times = (pd.DatetimeIndex(times) + pd.to_timedelta(jitter, unit="h")).round("h")
        lateral = TOE_Y_KM - 0.05 - (HEEL_Y_KM + 0.15)
        y = TOE_Y_KM - 0.05 - (np.arange(n) + 0.5) * lateral / n
        xs, ys = paths[w.name]
        x = np.interp(y, ys[::-1], xs[::-1])
        lat, lon = _geo_round(x, y)
        rate = np.round(rng.uniform(8.0, 13.0, n), 2)
        minutes = np.round(rng.uniform(120, 200, n))
        rows.append(pd.DataFrame({
            "well": w.name, "stage_no": np.arange(1, n + 1, dtype=np.int32), "time": times,
            "lat": lat, "lon": lon, "depth_km": np.round(WELL_DEPTH_KM + rng.normal(0, 0.01, n), 3),
            "rate_m3_min": rate, "pumping_min": minutes, "volume_m3": np.round(rate * minutes, 1),
        }))
    df = pd.concat(rows, ignore_index=True)
    df["day_index"] = (df["time"] - T_START.floor("D")) / pd.Timedelta(days=1) + 1.0
    return enrich.add_local_coords(df, ORIGIN)


def make_injection(stages: pd.DataFrame) -> pd.DataFrame:
    """Daily injection per well (table ``injection``): the day's volume (m3) and mean
    pumping rate (volume / pumping minutes, m3/min) of the well's stages that day."""
    day = stages["time"].dt.tz_convert("UTC").dt.date
    g = stages.assign(date=day).groupby(["date", "well"], sort=True)
    df = g.agg(volume_m3=("volume_m3", "sum"), pumping_min=("pumping_min", "sum"),
               n_stages=("stage_no", "size")).reset_index()
    df["rate_m3_min"] = np.round(df["volume_m3"] / df["pumping_min"], 3)
    df["source_row"] = pd.array([pd.NA] * len(df), dtype="Int64")
    return df[["date", "well", "rate_m3_min", "volume_m3", "pumping_min", "n_stages", "source_row"]]


# --- events ----------------------------------------------------------------------------------

def _cluster_events(rng, c: ClusterSpec) -> pd.DataFrame:
    """Events of one cluster (times in ms, local xyz, true mechanism, r, envelope)."""
    start_ms = _ms(pd.Timestamp(c.start, tz="UTC"))
    end_s = (_ms(T_END) - start_ms) / 1000.0
    parts = []
    for k, f in enumerate(c.faults):
        counts = np.floor(np.array([b[1] for b in f.bursts]) * f.n_events).astype(int)
        counts[-1] = f.n_events - counts[:-1].sum()
        t_s = np.concatenate([b[0] * 86400 + _truncated_exp(rng, n, b[2] * 86400, end_s - b[0] * 86400)
                              for b, n in zip(f.bursts, counts)])
        u = rng.random(f.n_events)
        if k == 0:  # the origin event: first, at the origin point
            t_s[0], u[0] = 0.0, 0.0
        r_km = envelope_km(c.diffusivity_m2_s, t_s) * np.sqrt(u)
        s, dd, nrm = fault_vectors(f.strike, f.dip)
        sign = np.full(f.n_events, float(f.along_sign)) if f.along_sign else rng.choice([-1.0, 1.0], f.n_events)
        sin_b = np.sin(np.clip(rng.normal(0, f.beta_sigma, f.n_events), -1.2, 1.2))
        max_sin = f.half_height_km / np.maximum(r_km * np.sin(np.radians(f.dip)), 1e-9)
        sin_b *= np.minimum(1.0, max_sin)  # |depth offset| <= half_height_km
        cos_b = np.sqrt(1.0 - sin_b**2)
        alpha = np.clip(rng.normal(0, 0.015, f.n_events), -0.04, 0.04)
        v = (np.cos(alpha) * cos_b * sign)[:, None] * s + (np.cos(alpha) * sin_b)[:, None] * dd \
            + np.sin(alpha)[:, None] * nrm
        xyz = np.asarray(c.origin_km) + r_km[:, None] * v
        parts.append(pd.DataFrame({
            "time_ms": start_ms + np.round(t_s * 1000).astype(np.int64), "x": xyz[:, 0], "y": xyz[:, 1],
            "depth": xyz[:, 2], "fault_id": f.fault_id, "truth_cluster": c.name,
            "true_strike": f.strike, "true_dip": f.dip, "true_rake": f.rake,
            "is_origin": (np.arange(f.n_events) == 0) & (k == 0),
        }))
    return pd.concat(parts, ignore_index=True)


def _background_mechanisms(rng, n: int):
    """True mechanisms of background events: strike-slip, strike ~N40E (deg)."""
    s = np.mod(rng.normal(*BG_MECH["strike"], n), 360.0)
    d = np.clip(rng.normal(*BG_MECH["dip"], n), 60.0, 90.0)
    r = np.mod(rng.normal(*BG_MECH["rake"], n) + 180.0, 360.0) - 180.0
    return s, d, r


def _stage_events(rng, stages: pd.DataFrame) -> pd.DataFrame:
    """Background events triggered by each stage: Poisson count, exponential decay in
    time, a cloud elongated along :data:`BG_AZIMUTH_DEG` around the stage."""
    counts = rng.poisson(BG_PER_STAGE, len(stages))
    idx = np.repeat(np.arange(len(stages)), counts)
    st = stages.iloc[idx]
    stage_ms = _series_ms(st["time"])
    window = np.minimum(BG_WINDOW_DAYS * 86400, (_ms(T_END) - stage_ms) / 1000.0)
    t_s = _truncated_exp(rng, idx.size, BG_DECAY_DAYS * 86400, window)
    a = np.clip(rng.normal(0, BG_ALONG_SIGMA_KM, idx.size), -BG_ALONG_MAX_KM, BG_ALONG_MAX_KM)
    c = np.clip(rng.normal(0, BG_ACROSS_SIGMA_KM, idx.size), -BG_ACROSS_MAX_KM, BG_ACROSS_MAX_KM)
    az = np.radians(BG_AZIMUTH_DEG)
    s, d, r = _background_mechanisms(rng, idx.size)
    return pd.DataFrame({
        "time_ms": stage_ms + np.round(t_s * 1000).astype(np.int64),
        "x": st["x_km"].to_numpy() + a * np.sin(az) + c * np.cos(az),
        "y": st["y_km"].to_numpy() + a * np.cos(az) - c * np.sin(az),
        "depth": st["depth_km"].to_numpy() + rng.normal(0, BG_DEPTH_SIGMA_KM, idx.size),
        "fault_id": "background", "truth_cluster": None, "trigger_well": st["well"].to_numpy(),
        "trigger_stage": st["stage_no"].to_numpy(), "true_strike": s, "true_dip": d, "true_rake": r,
        "is_origin": False,
    })


def _in_any_box(x, y) -> np.ndarray:
    inside = np.zeros(np.shape(x), dtype=bool)
    for c in CLUSTERS:
        xmin, xmax, ymin, ymax = c.box_km
        inside |= (x >= xmin) & (x <= xmax) & (y >= ymin) & (y <= ymax)
    return inside


def _diffuse_events(rng) -> pd.DataFrame:
    """A few events anywhere near the wells at any time, never inside a cluster box."""
    xmin, xmax, ymin, ymax = DIFFUSE_BOX_KM
    x = rng.uniform(xmin, xmax, 4 * N_DIFFUSE)
    y = rng.uniform(ymin, ymax, 4 * N_DIFFUSE)
    ok = np.flatnonzero(~_in_any_box(x, y))[:N_DIFFUSE]
    s, d, r = _background_mechanisms(rng, N_DIFFUSE)
    return pd.DataFrame({
        "time_ms": rng.integers(_ms(T_START), _ms(T_END), N_DIFFUSE), "x": x[ok], "y": y[ok],
        "depth": rng.uniform(3.0, 3.6, N_DIFFUSE), "fault_id": "diffuse", "truth_cluster": None,
        "true_strike": s, "true_dip": d, "true_rake": r, "is_origin": False,
    })


def make_events(rng_clusters, rng_bg, rng_mag, stages: pd.DataFrame) -> pd.DataFrame:
    """All events, sorted by time with unique ms times, with truth columns (internal)."""
    raw = pd.concat([*(_cluster_events(rng_clusters, c) for c in CLUSTERS), _stage_events(rng_bg, stages),
                     _diffuse_events(rng_bg)], ignore_index=True)
    # origin events first among equal times, so they stay the earliest of their cluster
    order = np.lexsort((~raw["is_origin"].to_numpy(), raw["time_ms"].to_numpy()))
    ev = raw.iloc[order].reset_index(drop=True)
    ev["time_ms"] = unique_sorted_ms(ev["time_ms"].to_numpy())
    ev["event_id"] = event_ids(ev["time_ms"].to_numpy())
    ev["time"] = pd.to_datetime(ev["time_ms"], unit="ms", utc=True)
    ev["lat"], ev["lon"] = _geo_round(ev["x"].to_numpy(), ev["y"].to_numpy())
    ev["depth_km"] = np.round(ev["depth"], 4)
    ev["magnitude"] = sample_magnitudes(rng_mag, len(ev))
    ev = enrich.add_local_coords(ev, ORIGIN)
    ev["cluster"] = assign_clusters(ev, regions=REGIONS).to_numpy()
    ev["source_row"] = pd.array([pd.NA] * len(ev), dtype="Int64")
    return ev


def _cluster_geometry(ev: pd.DataFrame) -> pd.DataFrame:
    """Per event of a cluster: seconds since the cluster's origin event, 3-D distance to
    the origin (from the catalogue columns), and the true envelope radius (km)."""
    out = pd.DataFrame(index=ev.index, data={"t_since_origin_s": np.nan, "r_km": np.nan, "envelope_km": np.nan})
    for c in CLUSTERS:
        sel = (ev["truth_cluster"] == c.name).to_numpy()
        o = ev.loc[ev["is_origin"] & (ev["truth_cluster"] == c.name)].iloc[0]
        t = (ev.loc[sel, "time_ms"] - o["time_ms"]) / 1000.0
        dx, dy = ev.loc[sel, "x_km"] - o["x_km"], ev.loc[sel, "y_km"] - o["y_km"]
        dz = ev.loc[sel, "depth_km"] - o["depth_km"]
        out.loc[sel, "t_since_origin_s"] = t
        out.loc[sel, "r_km"] = np.sqrt(dx**2 + dy**2 + dz**2)
        out.loc[sel, "envelope_km"] = envelope_km(c.diffusivity_m2_s, t)
    return out


# --- mechanisms ------------------------------------------------------------------------------

def _assign_quality(rng, magnitude: np.ndarray) -> np.ndarray:
    """Quality A-D by rank of magnitude + N(0, 0.6) noise, in :data:`QUALITY_SHARES`."""
    score = magnitude + rng.normal(0, 0.6, magnitude.size)
    rank = np.argsort(np.argsort(-score, kind="stable"), kind="stable") / max(magnitude.size, 1)
    edges = np.cumsum(list(QUALITY_SHARES.values()))
    return np.array(list(QUALITY_SHARES))[np.searchsorted(edges, rank, side="right")].astype(object)


def make_mechanisms(rng, ev: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Published mechanisms for :data:`MECH_FRACTION` of the events (table
    ``mechanisms``) and their truth (``truth_mechanisms``)."""
    k = int(round(MECH_FRACTION * len(ev)))
    w = 10.0 ** (MECH_MAG_WEIGHT * ev["magnitude"].to_numpy())
    pick = np.sort(rng.choice(len(ev), k, replace=False, p=w / w.sum()))
    src = ev.iloc[pick].reset_index(drop=True)
    mag = src["magnitude"].to_numpy()
    quality = _assign_quality(rng, mag)
    sigma = np.array([SCATTER_DEG[q] for q in quality])
    s, d, r, angle = perturb_mechanisms(src["true_strike"], src["true_dip"], src["true_rake"], sigma, rng)
    aux = rng.random(k) < AUX_PLANE_FRACTION
    s2, d2, r2 = focal.auxiliary_plane(s, d, r)
    s, d, r = (np.where(aux, b, a) for a, b in ((s, s2), (d, d2), (r, r2)))
    sk_lat, sk_lon = _geo_round(src["x_km"] + rng.normal(0, 0.02, k), src["y_km"] + rng.normal(0, 0.02, k), 4)
    n_pol = np.clip(np.round(14 + 9 * (mag + 1.5) + rng.normal(0, 4, k)), 8, 66).astype(int)
    mech = pd.DataFrame({
        "event_id": src["event_id"], "source": "published", "time": src["time"], "lat": src["lat"],
        "lon": src["lon"], "depth_km": src["depth_km"], "x_km": src["x_km"], "y_km": src["y_km"],
        "lat_skhash": sk_lat, "lon_skhash": sk_lon,
        "depth_km_skhash": np.round(src["depth_km"] + SKHASH_DEPTH_SHIFT_KM + rng.normal(0, 0.05, k), 4),
        "magnitude": mag, "strike": np.round(s, 1), "dip": np.round(d, 1), "rake": np.round(r, 1),
        "quality": quality, "cluster": src["cluster"], "n_polarities": pd.array(n_pol, dtype="Int32"),
        "published_set": "demo",
    })
    for col in QUALITY_METRICS["A"]:
        lo, hi = (np.array([QUALITY_METRICS[q][col][i] for q in quality], dtype=float) for i in (0, 1))
        mech[col] = np.round(lo + (hi - lo) * rng.random(k), 1)
    mech = enrich.complete_mechanisms(mech)
    truth = pd.DataFrame({
        "event_id": src["event_id"], "fault_id": src["fault_id"], "strike": src["true_strike"],
        "dip": src["true_dip"], "rake": src["true_rake"], "quality": quality,
        "reported_plane": np.where(aux, "auxiliary", "fault").astype(object), "scatter_sigma_deg": sigma,
        "rotation_deg": angle,
    })
    return mech, truth


# --- truth -----------------------------------------------------------------------------------

def _scenario(seed, ev, stations, mech) -> pd.DataFrame:
    """``truth_scenario``: one row per parameter (name, value as text, value_num, unit, description)."""
    rows = [
        ("dataset", DATASET, "", "dataset name (frame.dataset)"),
        ("seed", seed, "", "seed of generate()"),
        ("frame_origin_lat", ORIGIN[0], "deg", "local frame origin latitude"),
        ("frame_origin_lon", ORIGIN[1], "deg", "local frame origin longitude"),
        ("catalogue_start", T_START.isoformat(), "UTC", "no event before"),
        ("catalogue_end", T_END.isoformat(), "UTC", "no event after"),
        ("b_value", B_VALUE, "", "Gutenberg-Richter b of all events"),
        ("mc", MC, "ML", "magnitude of completeness (detection >= 97.7% at and above)"),
        ("detection_mu", DETECT_MU, "ML", "detection probability Phi((M - mu)/sigma): 50% magnitude"),
        ("detection_sigma", DETECT_SIGMA, "ML", "detection roll-off width"),
        ("m_latent_min", M_LATENT_MIN, "ML", "lower bound of the latent G-R law"),
        ("m_max", M_MAX, "ML", "upper truncation of the G-R law"),
        ("magnitude_step", 10.0 ** -MAG_DECIMALS, "ML", "catalogue magnitudes rounded to this"),
        ("n_events", len(ev), "", "catalogue events"),
        ("n_mechanisms", len(mech), "", "published mechanisms"),
        ("mechanism_fraction", MECH_FRACTION, "", "share of events with a mechanism"),
        ("mechanism_magnitude_weight", MECH_MAG_WEIGHT, "1/ML", "selection weight 10**(w*M)"),
        ("aux_plane_fraction", AUX_PLANE_FRACTION, "", "share of mechanisms reporting the auxiliary plane as plane 1"),
        ("skhash_depth_shift_km", SKHASH_DEPTH_SHIFT_KM, "km", "mean depth_km_skhash - depth_km"),
        ("well_depth_km", WELL_DEPTH_KM, "km", "depth of the horizontal wells"),
        ("wells", ",".join(w.name for w in WELLS), "", "well names (A east ... D west)"),
        ("reversed_stations", ",".join(stations.loc[stations["reversed"], "station"]), "",
         "stations with reversed=True (recorded vertical polarity inverted)"),
        ("background_azimuth", BG_AZIMUTH_DEG, "deg", "long axis of the stage-triggered clouds"),
        ("background_per_stage", BG_PER_STAGE, "", "mean events per stage (Poisson)"),
        ("background_decay_days", BG_DECAY_DAYS, "d", "exponential decay of stage-triggered events"),
        ("n_diffuse", N_DIFFUSE, "", "diffuse events (never inside a cluster box)"),
        ("background_mechanism_strike", BG_MECH["strike"][0], "deg", f"mean (sd {BG_MECH['strike'][1]})"),
        ("background_mechanism_dip", BG_MECH["dip"][0], "deg", f"mean (sd {BG_MECH['dip'][1]})"),
        ("background_mechanism_rake", BG_MECH["rake"][0], "deg", f"mean (sd {BG_MECH['rake'][1]})"),
    ]
    rows += [(f"scatter_sigma_{q}", v, "deg", f"per-axis sigma of the rotation perturbing quality-{q} mechanisms")
             for q, v in SCATTER_DEG.items()]
    rows += [(f"well_{w.name}_n_stages", w.n_stages, "", f"stages of well {w.name}") for w in WELLS]
    rows += [(f"well_{w.name}_x_km", w.x_km, "km", f"easting of well {w.name}") for w in WELLS]
    for c in CLUSTERS:
        o = ev.loc[ev["is_origin"] & (ev["truth_cluster"] == c.name)].iloc[0]
        p = c.name
        rows += [
            (f"{p}.description", c.description, "", "cluster"),
            (f"{p}.D", c.diffusivity_m2_s, "m^2/s", "hydraulic diffusivity; r <= sqrt(4 pi D t)"),
            (f"{p}.distance_law", "r = sqrt(4 pi D t) * sqrt(u), u ~ U(0,1)", "",
             "3-D distance r from the origin event, t = time since it"),
            (f"{p}.origin_event_id", o["event_id"], "", "first event of the cluster, at the origin point"),
            (f"{p}.origin_time", o["time"].isoformat(), "UTC", "cluster start (t = 0)"),
            (f"{p}.origin_lat", o["lat"], "deg", "origin latitude (catalogue)"),
            (f"{p}.origin_lon", o["lon"], "deg", "origin longitude"),
            (f"{p}.origin_depth_km", o["depth_km"], "km", "origin depth"),
            (f"{p}.origin_x_km", o["x_km"], "km", "origin east"),
            (f"{p}.origin_y_km", o["y_km"], "km", "origin north"),
            (f"{p}.n_events", int((ev["truth_cluster"] == c.name).sum()), "", "events of the cluster"),
            (f"{p}.faults", ",".join(f.fault_id for f in c.faults), "", "fault ids (truth_events.fault_id)"),
        ]
        for f in c.faults:
            rows += [
                (f"{f.fault_id}.strike", f.strike, "deg", f"true fault plane of {f.fault_id}"),
                (f"{f.fault_id}.dip", f.dip, "deg", f"true fault plane of {f.fault_id}"),
                (f"{f.fault_id}.rake", f.rake, "deg", f"true slip of {f.fault_id}"),
                (f"{f.fault_id}.n_events", f.n_events, "", "events on this fault"),
                (f"{f.fault_id}.bursts", ";".join(f"{a}d/{b}/{t}d" for a, b, t in f.bursts), "",
                 "onset after cluster start / share / exponential decay"),
            ]
    df = pd.DataFrame(rows, columns=["name", "value", "unit", "description"])
    df["value_num"] = pd.to_numeric(df["value"].map(lambda v: v if isinstance(v, (int, float, np.number)) else None),
                                    errors="coerce").astype(float)
    df["value"] = df["value"].map(lambda v: repr(float(v)) if isinstance(v, (float, np.floating)) else str(v))
    return df[["name", "value", "value_num", "unit", "description"]]


def _truth_events(ev: pd.DataFrame) -> pd.DataFrame:
    """``truth_events``: per event its fault id, true mechanism and diffusion geometry."""
    geom = _cluster_geometry(ev)
    return pd.DataFrame({
        "event_id": ev["event_id"], "fault_id": ev["fault_id"], "cluster": ev["truth_cluster"],
        "is_origin": ev["is_origin"], "trigger_well": ev["trigger_well"],
        "trigger_stage": pd.array(ev["trigger_stage"], dtype="Int32"),
        "strike": ev["true_strike"], "dip": ev["true_dip"], "rake": ev["true_rake"],
        "t_since_origin_s": geom["t_since_origin_s"], "r_km": geom["r_km"], "envelope_km": geom["envelope_km"],
    })


# --- entry point -----------------------------------------------------------------------------

def generate(seed: int = DEFAULT_SEED) -> dict[str, pd.DataFrame]:
    """Every table of the data contract for the synthetic experiment, plus ``truth_*``.

    Deterministic: each part draws from its own child of ``numpy.random.SeedSequence(seed)``.
    """
    rng = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(7)]
    stations = make_stations(rng[0])
    wells, paths = make_wells(rng[1])
    stages = make_stages(rng[2], paths)
    injection = make_injection(stages)
    ev = make_events(rng[3], rng[4], rng[5], stages)
    mechanisms, truth_mech = make_mechanisms(rng[6], ev)
    events = ev[schema.EVENTS.column_names].copy()
    frame = pd.DataFrame({"origin_lat": [ORIGIN[0]], "origin_lon": [ORIGIN[1]],
                          "method": ["local tangent plane, WGS84 radii of curvature (pipeline.geo)"],
                          "dataset": [DATASET]})
    rejects = pd.DataFrame({c.name: pd.Series(dtype="Int64" if c.name == "line" else object)
                            for c in schema.REJECTS.columns})
    return {
        "events": events, "stations": stations, "wells": wells, "stages": stages, "injection": injection,
        "mechanisms": mechanisms, "frame": frame, "rejects": rejects,
        "truth_scenario": _scenario(seed, ev, stations, mechanisms),
        "truth_events": _truth_events(ev), "truth_mechanisms": truth_mech,
    }


def content_digest(data: dict[str, pd.DataFrame]) -> str:
    """sha256 over the Arrow IPC bytes of every table (name order): contract tables as
    :func:`pipeline.tables.to_arrow` stores them, others via ``pa.Table.from_pandas``."""
    h = hashlib.sha256()
    for name in sorted(data):
        df = data[name]
        t = tables.to_arrow(name, df) if name in schema.TABLES else pa.Table.from_pandas(df, preserve_index=False)
        t = t.replace_schema_metadata(None)
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, t.schema) as writer:
            writer.write_table(t)
        h.update(name.encode() + b"\0" + sink.getvalue().to_pybytes())
    return h.hexdigest()
