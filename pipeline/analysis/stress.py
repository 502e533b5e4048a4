"""Stress inversion of focal mechanisms: Michael (1984) with Vavryčuk (2014)'s fault-plane choice.

Conventions
-----------
* Mechanisms are (strike, dip, rake) in degrees, Aki & Richards, as in
  :mod:`pipeline.mechanisms.focal`; plane geometry (normal ``n`` into the hanging wall, slip
  ``d`` of the hanging wall, auxiliary plane) comes from that module.
* Vectors and tensors are in the local (north, east, down) frame.
* **Compression positive** for the reported stress: σ1 ≥ σ2 ≥ σ3, σ1 the most compressive
  principal stress. Internally the inversion solves for the deviatoric tensor ``S`` with
  *tension positive* (``S = -σ`` up to an isotropic part and a scale), because then the shear
  traction ``S n - (n·S n) n`` on a plane points along the hanging wall's slip ``d`` (for
  ``S = T Tᵀ - P Pᵀ`` it is exactly ``d``).
* Axes are (trend, plunge) in degrees: trend clockwise from north 0-360, plunge 0-90 downward
  (an axis has no sign; the downward end is reported).
* Shape ratio ``R = (σ1 - σ2) / (σ1 - σ3)`` in [0, 1] (Gephart & Forsyth 1984; Vavryčuk 2014's
  R); 0: σ1 = σ2, 1: σ2 = σ3.
* SHmax: azimuth of the maximum horizontal compressive stress, degrees in [0, 180), by the
  formula of Lund & Townend (2007, GJI 170, 1328), eq. 10 with the branch of larger horizontal
  compression.

Method
------
* :func:`michael_inversion`: linear least squares for the five components of the deviatoric
  tensor, assuming the slip is parallel to the shear traction and that all shear tractions
  have the same magnitude (Michael 1984, JGR 89, 11517), then refined by weighting each slip
  with the shear magnitude the solution predicts (a few fixed-point steps; see its docstring).
* :func:`invert`: Vavryčuk (2014, GJI 199, 69-77) iteration: start from the inversion of both
  nodal planes of every mechanism; then, for each mechanism, keep the nodal plane with the
  larger fault instability ``I = (τ - μ (σn - σ1)) / (μ + sqrt(1 + μ²))`` (principal stresses
  normalised to σ1 = 1, σ2 = 1 - 2R, σ3 = -1, normal stress σn compression positive; this is
  Vavryčuk's ``(τ - μ(σ1 - σ)) / (τc - μ(σ1 - σc))`` written with tension positive) and invert again,
  until the choice of planes stops changing. Friction ``μ`` is fixed (default 0.6) or, with
  ``friction='scan'``, the value of :data:`FRICTION_SCAN` giving the largest mean instability.
* :func:`bootstrap`: resample the mechanisms with replacement and repeat :func:`invert`. The
  95 % confidence of an axis is the angular radius (deg) around the best axis holding 95 % of
  the bootstrap axes; R and SHmax get 2.5-97.5 percentile intervals (SHmax as the best value
  ± the 95th percentile of the axial deviations, so the interval may wrap through 0/180).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from pipeline.mechanisms import focal

DEFAULT_FRICTION = 0.6
#: friction values tried with ``friction='scan'`` (Vavryčuk 2014 scans 0.2-1.0)
FRICTION_SCAN = tuple(np.round(np.arange(0.2, 1.0001, 0.05), 2))
MAX_ITERATIONS = 20
#: shear-magnitude refinements of each linear inversion (0 = plain Michael 1984)
SHEAR_ITERATIONS = 5
AXES = ("sigma1", "sigma2", "sigma3")

# five basis tensors of a traceless symmetric 3x3 matrix (s11, s12, s13, s22, s23; s33 = -s11 - s22)
_BASIS = np.zeros((5, 3, 3))
_BASIS[0, 0, 0], _BASIS[0, 2, 2] = 1.0, -1.0
_BASIS[1, 0, 1] = _BASIS[1, 1, 0] = 1.0
_BASIS[2, 0, 2] = _BASIS[2, 2, 0] = 1.0
_BASIS[3, 1, 1], _BASIS[3, 2, 2] = 1.0, -1.0
_BASIS[4, 1, 2] = _BASIS[4, 2, 1] = 1.0


def _shear_direction_kernel(n):
    """(N*3, 5) matrix G with G @ s = shear traction of the tensor of components s on planes n."""
    n = np.asarray(n, dtype=float)
    t = np.einsum("kij,nj->nki", _BASIS, n)                      # (N, 5, 3): E_k n
    t = t - np.einsum("nki,ni->nk", t, n)[..., None] * n[:, None, :]
    return np.transpose(t, (0, 2, 1)).reshape(-1, 5)


def michael_inversion(n, d, shear_iterations=None) -> np.ndarray:
    """Deviatoric stress ``S`` (3x3, NED, tension positive, Frobenius norm 1) best explaining
    unit slips ``d`` (N, 3) on planes of unit normals ``n`` (N, 3).

    ``shear_iterations`` (default :data:`SHEAR_ITERATIONS`) ``= 0``: Michael (1984), every shear traction of magnitude 1. Otherwise the
    observed unit slips are then scaled by the shear magnitudes the previous solution predicts
    (normalised to mean 1) and the least squares is repeated that many times; this removes the
    bias of the equal-magnitude assumption (measured on noise-free near-optimal faults: R 0.27
    instead of 0.40 without it, 0.40 with it)."""
    g = _shear_direction_kernel(n)
    d = np.asarray(d, dtype=float)
    w = np.ones(len(d))
    k = SHEAR_ITERATIONS if shear_iterations is None else int(shear_iterations)
    for _ in range(k + 1):
        s, *_ = np.linalg.lstsq(g, (d * w[:, None]).reshape(-1), rcond=None)
        w = np.linalg.norm((g @ s).reshape(-1, 3), axis=1)
        w = w / max(float(w.mean()), 1e-300)
    tensor = np.tensordot(s, _BASIS, axes=1)
    return tensor / np.linalg.norm(tensor)


def principal(s_tension):
    """Principal directions and shape ratio of a tension-positive tensor: ``(axes, R)``,
    ``axes`` a (3, 3) array whose rows are unit vectors of σ1, σ2, σ3 (compression positive,
    σ1 most compressive), each pointing downward (or north/east when horizontal)."""
    w, v = np.linalg.eigh(np.asarray(s_tension, dtype=float))   # ascending: most compressive first
    axes = v.T.copy()
    flip = (axes[:, 2] < -1e-12) | ((np.abs(axes[:, 2]) <= 1e-12) & (axes[:, 0] + 1e-9 * axes[:, 1] < 0))
    axes[flip] *= -1
    spread = w[2] - w[0]
    r = float((w[1] - w[0]) / spread) if spread > 0 else float("nan")
    return axes, r


def instability(n, axes, r, friction=DEFAULT_FRICTION):
    """Fault instability I (Vavryčuk 2014) of planes of unit normals ``n`` (N, 3) in a
    stress with principal directions ``axes`` (rows σ1, σ2, σ3) and shape ratio ``r``;
    1 = optimally oriented, lower = more stable."""
    mu = float(friction)
    sig = np.array([1.0, 1.0 - 2.0 * r, -1.0])                  # compression positive
    c = np.asarray(n, dtype=float) @ np.asarray(axes).T          # direction cosines in the principal frame
    normal = np.sum(sig * c ** 2, axis=-1)
    shear = np.sqrt(np.maximum(np.sum((sig * c) ** 2, axis=-1) - normal ** 2, 0.0))
    return (shear - mu * (normal - sig[0])) / (mu + np.sqrt(1.0 + mu ** 2))


def shmax_azimuth(axes, r) -> float:
    """SHmax azimuth (deg, [0, 180)) by Lund & Townend (2007) eq. 10 from σ1, σ2 directions
    (rows 0, 1 of ``axes``, NED) and R: tan 2α = 2 (s1N s1E + (1-R) s2N s2E) /
    (s1N² - s1E² + (1-R)(s2N² - s2E²)); of α and α + 90 the one with the larger horizontal
    compression."""
    s1, s2 = np.asarray(axes)[0], np.asarray(axes)[1]
    num = 2.0 * (s1[0] * s1[1] + (1.0 - r) * s2[0] * s2[1])
    den = s1[0] ** 2 - s1[1] ** 2 + (1.0 - r) * (s2[0] ** 2 - s2[1] ** 2)
    alpha = 0.5 * np.arctan2(num, den)
    sig = np.array([1.0, 1.0 - 2.0 * r, -1.0])

    def horizontal(a):
        u = np.array([np.cos(a), np.sin(a), 0.0])
        return float(np.sum(sig * (np.asarray(axes) @ u) ** 2))

    if horizontal(alpha + np.pi / 2) > horizontal(alpha):
        alpha += np.pi / 2
    return float(np.degrees(alpha) % 180.0)


@dataclass
class StressResult:
    """One inversion: ``axes`` rows σ1, σ2, σ3 (unit NED vectors, compression positive),
    ``r`` shape ratio, ``shmax`` deg, ``tensor`` (deviatoric, tension positive, norm 1),
    ``friction`` used, ``plane`` (0 = plane 1 as reported, 1 = auxiliary plane chosen, per
    mechanism), ``iterations``, ``misfit_deg`` (angle between observed and predicted slip on
    the chosen planes, per mechanism)."""

    axes: np.ndarray
    r: float
    shmax: float
    tensor: np.ndarray
    friction: float
    plane: np.ndarray
    iterations: int
    misfit_deg: np.ndarray = field(repr=False)
    mean_instability: float = float("nan")

    def trend_plunge(self):
        """{'sigma1': (trend, plunge), ...} in degrees."""
        return {name: tuple(float(x) for x in focal._trend_plunge(self.axes[i])) for i, name in enumerate(AXES)}


def _planes(strike, dip, rake):
    n1, d1 = focal.normal_and_slip(strike, dip, rake)
    # the auxiliary plane has normal d and slip n (focal.auxiliary_plane)
    return np.atleast_2d(n1), np.atleast_2d(d1)


def _invert_fixed(n1, d1, friction):
    both = michael_inversion(np.vstack([n1, d1]), np.vstack([d1, n1]))
    axes, r = principal(both)
    plane = None
    for it in range(1, MAX_ITERATIONS + 1):
        aux = instability(d1, axes, r, friction) > instability(n1, axes, r, friction)
        if plane is not None and np.array_equal(aux, plane):
            break
        plane = aux
        n = np.where(plane[:, None], d1, n1)
        d = np.where(plane[:, None], n1, d1)
        tensor = michael_inversion(n, d)
        axes, r = principal(tensor)
    n = np.where(plane[:, None], d1, n1)
    d = np.where(plane[:, None], n1, d1)
    shear = _shear_direction_kernel(n) @ np.array([tensor[0, 0], tensor[0, 1], tensor[0, 2], tensor[1, 1],
                                                    tensor[1, 2]])
    shear = shear.reshape(-1, 3)
    cos = np.sum(shear * d, axis=1) / np.maximum(np.linalg.norm(shear, axis=1), 1e-300)
    misfit = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
    mean_i = float(np.mean(instability(n, axes, r, friction)))
    return StressResult(axes, r, shmax_azimuth(axes, r), tensor, float(friction), plane.astype(int), it, misfit,
                        mean_i)


def invert(strike, dip, rake, friction=DEFAULT_FRICTION) -> StressResult:
    """Stress from mechanisms (arrays of plane-1 strike, dip, rake in degrees; either nodal
    plane may be the fault). ``friction``: a number, or ``'scan'`` (see module docstring).
    Needs at least 4 mechanisms of differing geometry."""
    n1, d1 = _planes(strike, dip, rake)
    if len(n1) < 4:
        raise ValueError(f"{len(n1)} mechanism(s): a stress inversion needs at least 4")
    if isinstance(friction, str):
        if friction != "scan":
            raise ValueError("friction must be a number or 'scan'")
        results = [_invert_fixed(n1, d1, mu) for mu in FRICTION_SCAN]
        return max(results, key=lambda res: res.mean_instability)
    return _invert_fixed(n1, d1, float(friction))


def _axial_angle(u, v):
    """Angle (deg, 0-90) between axes (unit vectors, sign ignored); u (..., 3), v (3,)."""
    return np.degrees(np.arccos(np.clip(np.abs(np.asarray(u) @ np.asarray(v)), 0.0, 1.0)))


@dataclass
class Bootstrap:
    """Bootstrap of :func:`invert`: ``best`` (all mechanisms), ``axes`` (B, 3, 3) the bootstrap
    σ1-σ3 directions (the clouds), ``r`` (B,), ``shmax`` (B,), and the 95 % summaries
    ``radius`` {axis: deg}, ``r_interval`` (lo, hi), ``shmax_interval`` (lo, hi) deg
    (lo > hi when it wraps through 0/180)."""

    best: StressResult
    axes: np.ndarray
    r: np.ndarray
    shmax: np.ndarray
    radius: dict
    r_interval: tuple
    shmax_interval: tuple
    level: float = 0.95


def bootstrap(strike, dip, rake, n_boot=500, seed=0, friction=DEFAULT_FRICTION, level=0.95) -> Bootstrap:
    """:func:`invert` on all mechanisms and on ``n_boot`` resamples (with replacement, random
    generator seeded by ``seed``); the scanned friction, if any, is re-chosen per resample."""
    strike, dip, rake = (np.atleast_1d(np.asarray(v, dtype=float)) for v in (strike, dip, rake))
    best = invert(strike, dip, rake, friction)
    rng = np.random.default_rng(seed)
    axes, rs, sh = [], [], []
    for _ in range(int(n_boot)):
        idx = rng.integers(0, len(strike), len(strike))
        try:
            res = invert(strike[idx], dip[idx], rake[idx], friction)
        except (ValueError, np.linalg.LinAlgError):
            continue
        axes.append(res.axes)
        rs.append(res.r)
        sh.append(res.shmax)
    axes, rs, sh = np.array(axes).reshape(-1, 3, 3), np.array(rs), np.array(sh)
    q = 100.0 * level
    if len(rs):
        radius = {name: float(np.percentile(_axial_angle(axes[:, i], best.axes[i]), q)) for i, name in enumerate(AXES)}
        lo, hi = np.percentile(rs, [50 - q / 2, 50 + q / 2])
        dev = (sh - best.shmax + 90.0) % 180.0 - 90.0
        half = float(np.percentile(np.abs(dev), q))
        sh_int = (float((best.shmax - half) % 180.0), float((best.shmax + half) % 180.0))
        r_int = (float(lo), float(hi))
    else:
        radius = {name: float("nan") for name in AXES}
        r_int = sh_int = (float("nan"), float("nan"))
    return Bootstrap(best, axes, rs, sh, radius, r_int, sh_int, level)


def summary(b: Bootstrap, n_mechanisms: int, n_events: int | None = None) -> dict:
    """The command's JSON object: σ axes, R, SHmax and their 95 % intervals."""
    out = {}
    for name, (trend, plunge) in b.best.trend_plunge().items():
        out[name] = {"trend": round(trend, 2), "plunge": round(plunge, 2), "radius95_deg": round(b.radius[name], 2)}
    out.update({
        "R": round(b.best.r, 4), "R_interval95": [round(x, 4) for x in b.r_interval],
        "shmax_deg": round(b.best.shmax, 2), "shmax_interval95": [round(x, 2) for x in b.shmax_interval],
        "friction": b.best.friction, "iterations": b.best.iterations,
        "mean_misfit_deg": round(float(np.mean(b.best.misfit_deg)), 2),
        "auxiliary_plane_chosen": int(np.sum(b.best.plane)), "bootstrap": int(len(b.r)),
        "n_mechanisms": int(n_mechanisms),
    })
    if n_events is not None:
        out["n_events"] = int(n_events)
    return out


# -- command line ---------------------------------------------------------------------------
def add_cli(sub) -> None:
    """Register ``stress`` on the ``python -m pipeline`` sub-parsers."""
    from pipeline.export.cli import add_filter_args

    p = sub.add_parser("stress", help="stress inversion (Michael 1984 + Vavryčuk 2014) of the mechanisms selected "
                                      "with the dashboard's filters, with bootstrap 95 % intervals")
    p.add_argument("--data-dir", default="data", help="folder of the Parquet tables (default: data)")
    add_filter_args(p)
    p.add_argument("--bootstrap", type=int, default=500, help="bootstrap resamples (default 500; 0 = none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default 0)")
    p.add_argument("--friction", default=str(DEFAULT_FRICTION),
                   help=f"friction for the fault-plane choice, or 'scan' (default {DEFAULT_FRICTION})")
    p.set_defaults(func=_cmd, _parser=p)


def _cmd(args) -> int:
    from pipeline.errors import InputError
    from pipeline.export.cli import filters_from_args
    from pipeline.export.selection import provider_for

    parser = getattr(args, "_parser", None)
    if args.bootstrap < 0:
        parser.error("argument --bootstrap: must be >= 0")
    friction = args.friction
    if friction != "scan":
        try:
            friction = float(friction)
        except ValueError:
            parser.error(f"argument --friction: {friction!r} is neither a number nor 'scan'")
    filters, _ = filters_from_args(args, parser)
    provider = provider_for(args.data_dir, tables=("mechanisms",))
    try:
        mech = provider.export_frame("mechanisms", filters)
    finally:
        provider.close()
    if len(mech) < 4:
        raise InputError(args.data_dir, f"{len(mech)} mechanism(s) match these filters: a stress inversion needs at "
                                        "least 4 (widen the selection)")
    b = bootstrap(mech["strike"].to_numpy(), mech["dip"].to_numpy(), mech["rake"].to_numpy(),
                  n_boot=args.bootstrap, seed=args.seed, friction=friction)
    n_events = int(mech["event_id"].nunique())
    out = summary(b, len(mech), n_events)
    print(f"stress from {len(mech)} mechanisms ({n_events} events), friction {b.best.friction:g}, "
          f"{out['bootstrap']} bootstrap resamples (95 % intervals)")
    for name in AXES:
        a = out[name]
        print(f"  {name}: trend {a['trend']:6.1f}  plunge {a['plunge']:5.1f}  (radius {a['radius95_deg']:.1f} deg)")
    print(f"  R = {out['R']:.2f} [{out['R_interval95'][0]:.2f}, {out['R_interval95'][1]:.2f}]   "
          f"SHmax = {out['shmax_deg']:.1f} deg [{out['shmax_interval95'][0]:.1f}, {out['shmax_interval95'][1]:.1f}]")
    print(f"  mean slip misfit {out['mean_misfit_deg']:.1f} deg; auxiliary plane chosen for "
          f"{out['auxiliary_plane_chosen']} of {len(mech)}")
    print(json.dumps(out))
    return 0


__all__ = ["michael_inversion", "principal", "instability", "shmax_azimuth", "invert", "bootstrap", "summary",
           "StressResult", "Bootstrap", "add_cli"]
