"""P-wave takeoff angles, azimuths and distances in a 1-D layered velocity model.

Model convention (matches SKHASH 1.1 / HASH, checked in the installed
``SKHASH/functions/fun.py``: ``create_lookup_table`` and ``create_takeoff_table``):

* a model is a list of ``depth_km, vp_km_s`` nodes (depth increasing);
* between two nodes the velocity varies **exponentially** with depth,
  ``v(z) = v_top * (v_bot / v_top) ** ((z - z_top) / h)`` - HASH's ``LAYERTRACE`` with
  slowness ``u(z) = u_top * exp(-b (z - z_top))``, ``b = ln(u_top / u_bot) / h``, which is
  within a fraction of a percent of a linear gradient for the layers used here. There are
  no velocity discontinuities at the nodes (hence no head waves);
* ``convention='skhash'`` (default) also reproduces SKHASH's clean-up of the model: a node
  whose velocity does not exceed the previous node's (constant-velocity rows, low-velocity
  zones) is **dropped** (one pass, as ``np.where(np.diff(v) <= 0)[0] + 1``), so e.g. the
  constant 6.478 km/s stretch of ToC2ME's ``vz.north`` between 1.5 and 2.5 km becomes a
  gradient from 6.478 (1.5 km) to 6.791 (2.7 km). ``convention='as_given'`` keeps every
  node (constant layers and inversions are traced as given);
* above the first node the first velocity is extended upward (stations above the model
  top) and below the last node the last velocity continues as a half-space;
* SKHASH ignores station elevation (its table is for receivers at depth 0); here the
  receiver depth is an explicit argument (default 0).

Rays (all vectorised over source/receiver pairs):

* the **direct** ray (no turning point; up-going when the receiver is shallower than the
  source) is solved exactly: the epicentral distance X(p) of the ray parameter p is
  monotone, so p is found by Newton steps kept inside a bracket (|X - x| < 1e-11 km);
* **turning** rays (leaving the source downward, turning below it and coming back up) are
  traced on a grid of ray parameters per distinct (source depth, receiver depth), every
  branch (triplications included) that reaches the distance is considered, and the chosen
  one is refined by bisection;
* the ray kept is the **first arrival** (minimum travel time), as SKHASH does. At the
  ToC2ME/demo geometry (sources at ~3.2 km, stations within ~8 km) the direct up-going ray is
  always the first arrival; turning rays matter beyond the distance reached by a horizontal
  ray from the source.

SKHASH itself does not trace each pair: it builds a table for source depths 0, 3, 6 ... km
and distances 0, 2, 4 ... km and interpolates bilinearly (:func:`skhash_table_takeoff`
reproduces that). For sources at 3.0-3.6 km the depth interpolation between the 3 and 6 km
nodes is the main difference between SKHASH's takeoffs and the exact ones of
:func:`trace` (a few degrees at most for ToC2ME; see ``tests/test_raytrace.py``).

Takeoff angle conventions (``takeoff_from``; see :func:`pipeline.mechanisms.focal.ray_vector`):

* ``'down'`` (default): measured from the **downward** vertical, 0 = straight down,
  > 90 = up-going;
* ``'up'``: measured from the upward vertical, < 90 = up-going - the convention of SKHASH's
  ``out_polinfo.csv`` (HASH notation; SKHASH ``flip_takeoff=False``).

Azimuths are source -> station, degrees clockwise from north, and distances epicentral, both
from :func:`pipeline.geo.to_local_km` centred on the source (WGS84; at these ranges exact to
well below a metre / 0.001 deg, unlike a spherical great circle, 0.2-0.3 % off at 54 N).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import geo

# The SKHASH wrapper owns the demo model (one definition). There used to be a fallback copy
# here, a different model (no 60 km node), swapped in without a word when that import
# failed; a broken wrapper is now an ImportError.
from .skhash import DEMO_VELOCITY_MODEL


class DemoVelocityModelWarning(UserWarning):
    """A ray was traced in the made-up demo model because no velocity model was given."""


#: ``velocity_model="demo"`` asks for :data:`DEMO_VELOCITY_MODEL` explicitly (no warning)
DEMO = "demo"

__all__ = [
    "DEMO",
    "DEMO_VELOCITY_MODEL",
    "DemoVelocityModelWarning",
    "LayeredModel",
    "convert_takeoff",
    "pair_geometry",
    "prepare_model",
    "skhash_table_takeoff",
    "takeoff_azimuth",
    "trace",
]

_HALFSPACE_KM = 1.0e4      # thickness of the half-space layer appended below the model
_ABOVE_KM = 50.0           # constant layer appended above the model top
_B_EPS = 1e-9              # |ln(u_top/u_bot)| below this: constant-velocity layer formulas
_BISECT_ITERS = 60


# --------------------------------------------------------------------------- the model

class LayeredModel:
    """A 1-D P model ready for tracing: node depths ``z`` (km) and slownesses ``u`` (s/km),
    including the appended constant layer above and half-space below."""

    def __init__(self, depth_km: np.ndarray, vp_km_s: np.ndarray):
        z = np.asarray(depth_km, dtype=float)
        v = np.asarray(vp_km_s, dtype=float)
        self.nodes = pd.DataFrame({"depth_km": z, "vp_km_s": v})
        self.z = np.concatenate([[z[0] - _ABOVE_KM], z, [z[-1] + _HALFSPACE_KM]])
        self.u = 1.0 / np.concatenate([[v[0]], v, [v[-1]]])
        self.ztop, self.zbot = self.z[:-1], self.z[1:]
        self.utop, self.ubot = self.u[:-1], self.u[1:]
        self.h = self.zbot - self.ztop
        self.lnr = np.log(self.utop / self.ubot)            # b * h
        self.const = np.abs(self.lnr) < _B_EPS
        self.b = np.where(self.const, 0.0, self.lnr / self.h)

    def slowness(self, depth_km) -> np.ndarray:
        """Slowness (s/km) at depth(s), exponential interpolation between nodes."""
        zq = np.asarray(depth_km, dtype=float)
        j = np.clip(np.searchsorted(self.z, zq, side="right") - 1, 0, len(self.h) - 1)
        frac = np.clip((zq - self.ztop[j]) / self.h[j], 0.0, 1.0)
        return self.utop[j] * np.exp(-self.lnr[j] * frac)

    def velocity(self, depth_km) -> np.ndarray:
        return 1.0 / self.slowness(depth_km)

    def min_slowness(self, z1, z2) -> np.ndarray:
        """Minimum slowness over [z1, z2] (elementwise; z1 <= z2)."""
        z1, z2 = np.broadcast_arrays(np.asarray(z1, float), np.asarray(z2, float))
        out = np.minimum(self.slowness(z1), self.slowness(z2))
        for k in range(len(self.z)):
            inside = (self.z[k] > z1) & (self.z[k] < z2)
            out = np.where(inside, np.minimum(out, self.u[k]), out)
        return out

    def min_slowness_below(self, z) -> np.ndarray:
        """Minimum slowness at or below depth z (the half-space included)."""
        z = np.asarray(z, dtype=float)
        out = self.slowness(z)
        for k in range(len(self.z)):
            out = np.where(self.z[k] > z, np.minimum(out, self.u[k]), out)
        return out


def prepare_model(velocity_model=None, convention: str = "skhash") -> LayeredModel:
    """A :class:`LayeredModel` from a ``depth_km, vp_km_s`` DataFrame, a file path (read
    with :func:`pipeline.mechanisms.skhash.read_velocity_model` semantics: comma/whitespace,
    optional header, ``#`` comments), an (n, 2) array, or :data:`DEMO` (the made-up
    :data:`DEMO_VELOCITY_MODEL`, for the synthetic demo). ``None`` also gives the demo model
    but warns (:class:`DemoVelocityModelWarning`): takeoffs of real data traced in a made-up
    model are wrong, so that must never happen unnoticed.

    ``convention='skhash'`` drops non-increasing velocity nodes as SKHASH does (module
    docstring); ``'as_given'`` keeps them.
    """
    if isinstance(velocity_model, LayeredModel):
        return velocity_model
    if velocity_model is None:
        warnings.warn("no velocity model given: tracing in the made-up demo model (DEMO_VELOCITY_MODEL, not "
                      "ToC2ME's); pass the data set's model, or velocity_model='demo' for the synthetic demo",
                      DemoVelocityModelWarning, stacklevel=3)
        velocity_model = DEMO_VELOCITY_MODEL
    if isinstance(velocity_model, str) and velocity_model == DEMO:
        velocity_model = DEMO_VELOCITY_MODEL
    if isinstance(velocity_model, (str, Path)):
        arr = _read_model_file(Path(velocity_model))
    elif isinstance(velocity_model, pd.DataFrame):
        cols = [c for c in ("depth_km", "vp_km_s") if c in velocity_model.columns]
        arr = velocity_model[cols].to_numpy(float) if len(cols) == 2 else velocity_model.iloc[:, :2].to_numpy(float)
    else:
        arr = np.asarray(velocity_model, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2 or len(arr) < 1:
        raise ValueError("velocity model must have depth_km, vp_km_s rows")
    arr = arr[:, :2]
    if not np.all(np.isfinite(arr)) or np.any(arr[:, 1] <= 0):
        raise ValueError("velocity model: values must be finite and velocities positive")
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    arr[:, 0] = np.round(arr[:, 0], 5)
    dup = np.flatnonzero(np.diff(arr[:, 0]) == 0)
    if dup.size:
        arr = np.delete(arr, dup, axis=0)  # SKHASH keeps the last row of a repeated depth
    if convention == "skhash":
        drop = np.flatnonzero(np.diff(arr[:, 1]) <= 0) + 1
        arr = np.delete(arr, drop, axis=0)
    elif convention != "as_given":
        raise ValueError("convention must be 'skhash' or 'as_given'")
    return LayeredModel(arr[:, 0], arr[:, 1])


def _read_model_file(path: Path) -> np.ndarray:
    from .skhash import read_velocity_model   # imported above already: no second parser to drift
    return read_velocity_model(path)[["depth_km", "vp_km_s"]].to_numpy(float)


# --------------------------------------------------------------------------- layer integrals
#
# Within a layer u(z) = u_a exp(-b (z - z_a)); with eta = sqrt(u^2 - p^2):
#   X = (atan(eta_a / p) - atan(eta_b / p)) / b,   T = (eta_a - eta_b) / b
# (eta_b = 0 where the ray turns inside the layer); b -> 0: X = dz p / eta, T = dz u^2 / eta.

class _Path:
    """The layer pieces between depths z1 <= z2 (arrays, broadcast) or, with
    ``turn=True``, from z1 down to the bottom of the model; independent of p, so the
    bisections only redo the p-dependent part."""

    def __init__(self, model: LayeredModel, z1, z2=None, turn: bool = False):
        z1 = np.asarray(z1, dtype=float)
        z2 = np.full(z1.shape, model.z[-1]) if turn else np.asarray(z2, dtype=float)
        z1, z2 = np.broadcast_arrays(z1, z2)
        self.turn = turn
        self.shape = z1.shape
        self.pieces = []
        for j in range(len(model.h)):
            zt, zb = model.ztop[j], model.zbot[j]
            a = np.maximum(z1, zt)
            bz = np.minimum(z2, zb)
            live = bz > a
            if not live.any():
                continue
            ut, lnr, h = model.utop[j], model.lnr[j], model.h[j]
            ua = ut * np.exp(-lnr * np.clip((a - zt) / h, 0.0, 1.0))
            ub = ut * np.exp(-lnr * np.clip((bz - zt) / h, 0.0, 1.0))
            self.pieces.append((live, ua, ub, np.where(live, bz - a, 0.0), bool(model.const[j]), model.b[j]))

    def subset(self, idx) -> "_Path":
        """The path restricted to elements ``idx`` (1-D paths only)."""
        out = object.__new__(_Path)
        out.turn, out.shape = self.turn, (len(idx),)
        out.pieces = []
        for live, ua, ub, dz, const, b in self.pieces:
            lv = live[idx]
            if lv.any():
                out.pieces.append((lv, ua[idx], ub[idx], dz[idx], const, b))
        return out

    def x_dxdp(self, p):
        """X and dX/dp of the crossing (non-turning) ray, 1-D: per layer
        dX/dp = (1/eta_b - 1/eta_a) / b, or dz u^2 / eta^3 for a constant layer."""
        X = np.zeros(self.shape)
        D = np.zeros(self.shape)
        p2 = p * p
        with np.errstate(divide="ignore", invalid="ignore"):
            for live, ua, ub, dz, const, b in self.pieces:
                ea = np.sqrt(np.maximum(ua * ua - p2, 0.0))
                if const:
                    dx = dz * p / ea
                    dd = dz * ua * ua / ea ** 3
                else:
                    eb = np.sqrt(np.maximum(ub * ub - p2, 0.0))
                    dx = (np.arctan2(ea, p) - np.arctan2(eb, p)) / b
                    dd = (1.0 / eb - 1.0 / ea) / b
                X = X + np.where(live, dx, 0.0)
                D = D + np.where(live, dd, 0.0)
        return X, D

    def xt(self, p):
        """(X, T[, ok]) for ray parameter(s) p broadcast against the path's shape."""
        p = np.asarray(p, dtype=float)
        shape = np.broadcast_shapes(p.shape, self.shape)
        X = np.zeros(shape)
        T = np.zeros(shape)
        done = np.zeros(shape, dtype=bool)   # turn mode: the ray has turned
        p2 = p * p
        for live, ua, ub, dz, const, b in self.pieces:
            ea = np.sqrt(np.maximum(ua * ua - p2, 0.0))
            if const:
                with np.errstate(divide="ignore", invalid="ignore"):
                    dx = np.where(ea > 0, dz * p / ea, np.inf)
                    dt = np.where(ea > 0, dz * ua * ua / ea, np.inf)
                here = np.zeros(shape, dtype=bool)
            else:
                here = ub <= p
                eb = np.where(here, 0.0, np.sqrt(np.maximum(ub * ub - p2, 0.0)))
                dx = (np.arctan2(ea, p) - np.arctan2(eb, p)) / b
                dt = (ea - eb) / b
            use = live & ~done if self.turn else live
            X = X + np.where(use, dx, 0.0)
            T = T + np.where(use, dt, 0.0)
            if self.turn:
                done = done | (live & here)
        if self.turn:
            return X, T, done
        return X, T


class _Turning:
    """Turning rays: the direct leg between the two depths + twice the leg from the deeper
    one down to the turning point."""

    def __init__(self, model, zs, zr):
        zhi, zlo = np.minimum(zs, zr), np.maximum(zs, zr)
        self.direct = _Path(model, zhi, zlo)
        self.below = _Path(model, zlo, turn=True)

    def xt(self, p):
        x1, t1 = self.direct.xt(p)
        x2, t2, ok = self.below.xt(p)
        return x1 + 2 * x2, t1 + 2 * t2, ok


# --------------------------------------------------------------------------- tracing

def convert_takeoff(takeoff_deg, from_: str, to: str) -> np.ndarray:
    """Convert takeoff angles between the ``'down'`` and ``'up'`` conventions."""
    for c in (from_, to):
        if c not in ("down", "up"):
            raise ValueError("takeoff convention must be 'down' or 'up'")
    t = np.asarray(takeoff_deg, dtype=float)
    return t if from_ == to else 180.0 - t


def trace(source_depth_km, distance_km, receiver_depth_km=0.0, velocity_model=None,
          takeoff_from: str = "down", convention: str = "skhash", n_grid: int = 512,
          include_turning: bool = True, turning_depth_step_km: float = 0.001) -> pd.DataFrame:
    """First-arrival P ray for each (source depth, epicentral distance, receiver depth).

    Arguments broadcast against each other (flattened). Returns a DataFrame, one row per
    pair in broadcast order:

    * ``takeoff_deg`` at the source in the ``takeoff_from`` convention;
    * ``incidence_deg`` at the receiver, same convention (angle of the arriving ray's travel
      direction from the downward (``'down'``) or upward (``'up'``) vertical: a ray arriving
      from below has ``incidence_deg > 90`` in ``'down'``);
    * ``travel_time_s``, ``ray_parameter_s_km`` (horizontal slowness p);
    * ``branch``: ``'direct'`` (no turning point), ``'turning'`` (leaves the source
      downward and turns below the deeper of source and receiver), or ``'none'`` where no
      ray reaches the distance (shadow zone: the limiting direct ray is returned and
      ``travel_time_s`` is NaN).

    The direct ray is exact (bracketed Newton). Turning rays are found on an ``n_grid`` ray-parameter
    grid per distinct (source, receiver) depth, the depths rounded to
    ``turning_depth_step_km`` for that search (default 1 m), then refined by bisection.
    """
    model = prepare_model(velocity_model, convention)
    zs, x, zr = np.broadcast_arrays(np.asarray(source_depth_km, float), np.asarray(distance_km, float),
                                    np.asarray(receiver_depth_km, float))
    zs, x, zr = zs.ravel().copy(), np.abs(x.ravel()), zr.ravel().copy()
    n = zs.size
    us, ur = model.slowness(zs), model.slowness(zr)
    zhi, zlo = np.minimum(zs, zr), np.maximum(zs, zr)
    ulim = model.min_slowness(zhi, zlo)          # direct and turning rays need p < ulim

    # --- direct ray: X(p) is monotone on [0, ulim): safeguarded Newton
    path = _Path(model, zhi, zlo)
    flat = zlo - zhi <= 1e-12                    # same depth: grazing ray along the surface
    with np.errstate(invalid="ignore"):
        xmax, _ = path.xt(ulim * (1 - 1e-15))
    reach = (x <= xmax) & ~flat
    p_dir = np.where(reach, _solve_direct(path, x, ulim, reach), ulim)
    _, t_dir = path.xt(p_dir)
    t_dir = np.where(reach, t_dir, np.inf)
    t_dir = np.where(flat, x * us, t_dir)
    reach = reach | flat
    p_dir = np.where(flat, us, p_dir)

    # --- turning rays
    p_turn = np.full(n, np.nan)
    t_turn = np.full(n, np.inf)
    if include_turning and n:
        p_turn, t_turn = _turning_rays(model, zs, zr, x, n_grid, turning_depth_step_km)

    use_turn = t_turn < t_dir
    p = np.where(use_turn, p_turn, p_dir)
    tt = np.where(use_turn, t_turn, t_dir)
    branch = np.where(use_turn, "turning", np.where(reach, "direct", "none")).astype(object)
    # takeoff at the source ('down' convention): direct up-going -> 180 - asin(p v_s)
    ang_s = np.degrees(np.arcsin(np.clip(p / us, 0.0, 1.0)))
    up_at_source = ~use_turn & (zr < zs)
    takeoff_down = np.where(up_at_source, 180.0 - ang_s, ang_s)
    takeoff_down = np.where(flat & ~use_turn, 90.0, takeoff_down)
    # incidence at the receiver: arriving upward unless a direct ray going down
    ang_r = np.degrees(np.arcsin(np.clip(p / ur, 0.0, 1.0)))
    going_down = ~use_turn & (zr > zs)
    inc_down = np.where(going_down, ang_r, 180.0 - ang_r)
    return pd.DataFrame({
        "takeoff_deg": convert_takeoff(takeoff_down, "down", takeoff_from),
        "incidence_deg": convert_takeoff(inc_down, "down", takeoff_from),
        "travel_time_s": np.where(np.isfinite(tt), tt, np.nan),
        "ray_parameter_s_km": p,
        "branch": branch,
    })


def _solve_direct(path: _Path, x, ulim, active, tol_km: float = 1e-11):
    """p with X(p) = x for the direct ray (1-D arrays): Newton steps kept inside a
    shrinking bracket [lo, hi] (bisection where Newton leaves it)."""
    lo = np.zeros(x.size)
    hi = ulim.copy()
    p = 0.5 * hi
    active = active.copy()
    for _ in range(4 * _BISECT_ITERS):
        idx = np.flatnonzero(active)
        if not idx.size:
            break
        sub = path.subset(idx)
        pi, li, hi_ = p[idx], lo[idx], hi[idx]
        X, D = sub.x_dxdp(pi)
        f = X - x[idx]
        li = np.where(f <= 0, pi, li)
        hi_ = np.where(f > 0, pi, hi_)
        with np.errstate(divide="ignore", invalid="ignore"):
            pn = pi - f / D
        bad = ~np.isfinite(pn) | (pn <= li) | (pn >= hi_)
        pn = np.where(bad, 0.5 * (li + hi_), pn)
        done = (np.abs(f) <= tol_km) | (hi_ - li <= 1e-15 * ulim[idx])
        lo[idx], hi[idx] = li, hi_
        p[idx] = np.where(done, pi, pn)
        active[idx[done]] = False
    return p


def _turning_rays(model, zs, zr, x, n_grid, step_km):
    """Best turning ray per pair: (p, T), NaN/inf where none reaches x."""
    n = zs.size
    p_out = np.full(n, np.nan)
    t_out = np.full(n, np.inf)
    if step_km and step_km > 0:
        zs = np.round(zs / step_km) * step_km
        zr = np.round(zr / step_km) * step_km
    zhi, zlo = np.minimum(zs, zr), np.maximum(zs, zr)
    ulim = model.min_slowness(zhi, zlo)
    umin_below = model.min_slowness_below(zlo)
    cand = umin_below < ulim * (1 - 1e-12)        # some ray turns below before reaching ulim
    if not cand.any():
        return p_out, t_out
    idx = np.flatnonzero(cand)
    uniq, inv = np.unique(np.stack([zs[idx], zr[idx]], axis=1), axis=0, return_inverse=True)
    inv = inv.ravel()
    s = np.linspace(0.0, 1.0, n_grid)
    chunk = max(1, 100_000 // n_grid)
    for g0 in range(0, len(uniq), chunk):
        gz_s, gz_r = uniq[g0:g0 + chunk, 0], uniq[g0:g0 + chunk, 1]
        gl = model.min_slowness(np.minimum(gz_s, gz_r), np.maximum(gz_s, gz_r))
        gb = model.min_slowness_below(np.maximum(gz_s, gz_r))
        # p from just above the smallest turning slowness to just below ulim
        pg = gb[:, None] + (gl - gb)[:, None] * (1e-9 + (1 - 2e-9) * s[None, :])
        with np.errstate(invalid="ignore", divide="ignore"):
            X, T, ok = _Turning(model, gz_s[:, None], gz_r[:, None]).xt(pg)
        X = np.where(ok, X, np.nan)
        T = np.where(ok, T, np.nan)
        xmin = np.nanmin(np.where(np.isfinite(X), X, np.nan), axis=1, initial=np.inf)
        sel = np.flatnonzero((inv >= g0) & (inv < g0 + len(gz_s)))
        rows = inv[sel] - g0
        sel, rows = sel[x[idx[sel]] >= xmin[rows]], rows[x[idx[sel]] >= xmin[rows]]
        if not sel.size:
            continue
        xq = x[idx[sel]][:, None]
        X0, X1 = X[rows, :-1], X[rows, 1:]
        T0, T1 = T[rows, :-1], T[rows, 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            br = ((X0 - xq) * (X1 - xq) <= 0) & np.isfinite(X0) & np.isfinite(X1) & (X0 != X1)
            tq = np.where(br, T0 + (xq - X0) / (X1 - X0) * (T1 - T0), np.inf)
        best = np.argmin(tq, axis=1)
        has = np.isfinite(tq[np.arange(len(rows)), best])
        if not has.any():
            continue
        r, kb = rows[has], best[has]
        pa, pb = pg[r, kb], pg[r, kb + 1]
        xt = x[idx[sel[has]]]
        ray = _Turning(model, gz_s[r], gz_r[r])
        sign_a = np.sign(X[r, kb] - xt)
        for _ in range(40):
            pm = 0.5 * (pa + pb)
            xm, _, _ = ray.xt(pm)
            same = np.sign(xm - xt) == sign_a
            pa = np.where(same, pm, pa)
            pb = np.where(same, pb, pm)
        pm = 0.5 * (pa + pb)
        _, tm, okm = ray.xt(pm)
        out_i = idx[sel[has]]
        p_out[out_i] = pm
        t_out[out_i] = np.where(okm, tm, np.inf)
    return p_out, t_out


# --------------------------------------------------------------------------- geography

def takeoff_azimuth(ev_lat, ev_lon, ev_depth_km, st_lat, st_lon, st_elevation_m=None,
                    velocity_model=None, takeoff_from: str = "down", use_elevation: bool = False,
                    convention: str = "skhash", include_turning: bool = True) -> pd.DataFrame:
    """Distance, azimuth and takeoff for source(s) at ``ev_*`` and station(s) at ``st_*``
    (all broadcast). The receiver depth is 0 unless ``use_elevation`` (then
    ``-st_elevation_m / 1000``, same datum as the event depth). Columns: ``distance_km``
    (epicentral), ``azimuth_deg`` (source -> station), ``takeoff_deg`` (``takeoff_from``
    convention), ``incidence_deg``, ``travel_time_s``, ``ray_parameter_s_km``, ``branch``,
    ``hypocentral_km``."""
    ev_lat, ev_lon, ev_depth_km, st_lat, st_lon = np.broadcast_arrays(
        *(np.asarray(a, float) for a in (ev_lat, ev_lon, ev_depth_km, st_lat, st_lon)))
    # local azimuthal-equidistant frame centred on each source (WGS84 radii; distance to
    # 0.1 m and azimuth to 0.001 deg within 10 km, pipeline.geo.to_local_km)
    ex, ny = geo.to_local_km(st_lat, st_lon, (ev_lat, ev_lon))
    dist = np.hypot(ex, ny)
    az = np.degrees(np.arctan2(ex, ny)) % 360.0
    if use_elevation and st_elevation_m is not None:
        zr = -np.broadcast_to(np.asarray(st_elevation_m, float), dist.shape) / 1000.0
    else:
        zr = np.zeros(dist.shape)
    ray = trace(ev_depth_km.ravel(), dist.ravel(), zr.ravel(), velocity_model, takeoff_from, convention,
                include_turning=include_turning)
    out = pd.DataFrame({"distance_km": dist.ravel(), "azimuth_deg": az.ravel()})
    for c in ray.columns:
        out[c] = ray[c].to_numpy()
    out["hypocentral_km"] = np.hypot(dist.ravel(), ev_depth_km.ravel() - zr.ravel())
    return out


def pair_geometry(events: pd.DataFrame, stations: pd.DataFrame, velocity_model=None,
                  takeoff_from: str = "down", use_elevation: bool = False,
                  convention: str = "skhash", depth_column: str = "depth_km") -> pd.DataFrame:
    """Every event x station pair: ``event_id, network, station`` + the columns of
    :func:`takeoff_azimuth`. ``events`` needs ``event_id, lat, lon`` and ``depth_column``;
    ``stations`` needs ``network, station, lat, lon`` (``elevation_m`` if
    ``use_elevation``). Row order: events in input order, stations in input order within."""
    ne, ns = len(events), len(stations)
    ei = np.repeat(np.arange(ne), ns)
    si = np.tile(np.arange(ns), ne)
    elev = stations["elevation_m"].to_numpy(float)[si] if "elevation_m" in stations else None
    g = takeoff_azimuth(events["lat"].to_numpy(float)[ei], events["lon"].to_numpy(float)[ei],
                        events[depth_column].to_numpy(float)[ei], stations["lat"].to_numpy(float)[si],
                        stations["lon"].to_numpy(float)[si], elev, velocity_model, takeoff_from,
                        use_elevation, convention)
    head = pd.DataFrame({"event_id": events["event_id"].to_numpy()[ei],
                         "network": stations["network"].to_numpy()[si],
                         "station": stations["station"].to_numpy()[si]})
    return pd.concat([head, g], axis=1)


# --------------------------------------------------------------------------- SKHASH emulation

def skhash_table_takeoff(source_depth_km, distance_km, velocity_model=None, takeoff_from: str = "up",
                         look_dep=(0, 39, 3), look_del=(0, 200, 2)) -> np.ndarray:
    """Takeoff as SKHASH's lookup table gives it: exact first-arrival takeoffs (receiver
    at depth 0) at the table nodes (source depths ``look_dep`` = min, max, step km;
    distances ``look_del``), then bilinear interpolation as in
    ``SKHASH.functions.fun.lookup_takeoff``. Default convention ``'up'`` (SKHASH's).
    Distance 0 is straight up (SKHASH sets that table row to 0). SKHASH rounds its table to
    0.1 deg and traces a finite fan of rays, so expect ~0.1-0.3 deg residual differences."""
    model = prepare_model(velocity_model, "skhash")
    dep = np.arange(look_dep[0], look_dep[1] + look_dep[2], look_dep[2], dtype=float)
    dl = np.arange(look_del[0], look_del[1] + look_del[2], look_del[2], dtype=float)
    zs = np.asarray(source_depth_km, float)
    x = np.asarray(distance_km, float)
    zs, x = np.broadcast_arrays(zs, x)
    zq = np.clip(zs.ravel(), dep[0], dep[-1] - 0.01)
    xq = np.clip(x.ravel(), dl[0], dl[-1])
    id1 = ((zq - look_dep[0]) / look_dep[2]).astype(int)
    ix1 = np.minimum(((xq - look_del[0]) / look_del[2]).astype(int), len(dl) - 2)
    need_d = np.unique(np.concatenate([id1, id1 + 1]))
    need_x = np.unique(np.concatenate([ix1, ix1 + 1]))
    D, Xg = np.meshgrid(dep[need_d], dl[need_x], indexing="ij")
    ray = trace(D.ravel(), Xg.ravel(), 0.0, model, "up")
    tab = ray["takeoff_deg"].to_numpy().reshape(D.shape).copy()
    tab[:, dl[need_x] == 0] = 0.0
    tab = np.round(tab, 1)
    di = {d: k for k, d in enumerate(need_d)}
    xi = {k: j for j, k in enumerate(need_x)}
    a1 = np.array([di[i] for i in id1])
    a2 = np.array([di[i + 1] for i in id1])
    b1 = np.array([xi[i] for i in ix1])
    b2 = np.array([xi[i + 1] for i in ix1])
    xfrac = (xq - dl[ix1]) / (dl[ix1 + 1] - dl[ix1])
    dfrac = (zq - dep[id1]) / (dep[id1 + 1] - dep[id1])
    t1 = tab[a1, b1] + xfrac * (tab[a1, b2] - tab[a1, b1])
    t2 = tab[a2, b1] + xfrac * (tab[a2, b2] - tab[a2, b1])
    out = (t1 + dfrac * (t2 - t1)).reshape(zs.shape)
    return convert_takeoff(out, "up", takeoff_from)
