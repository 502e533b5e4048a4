"""Double-couple focal-mechanism geometry (pure NumPy; safe to import in the app).

Conventions (Aki & Richards 1980):

* strike 0-360 deg clockwise from north with the fault dipping to the right of the strike
  direction, dip 0-90 deg, rake -180..180 deg (slip of the hanging wall);
* vectors are in a local (north, east, down) frame;
* the fault normal ``n`` points into the hanging wall (upward for dip < 90) and the slip
  vector ``d`` is the hanging wall's motion; the unit moment tensor is n d^T + d n^T;
* T = (n + d)/sqrt(2), P = (n - d)/sqrt(2), B = n x d;
* axes are reported as (trend, plunge) with plunge >= 0 downward;
* takeoff angles come in two conventions (measured from the downward vertical, or, as in
  SKHASH's ``out_polinfo.csv``, with < 90 meaning up-going); :func:`ray_vector` takes
  the convention as an explicit argument.

All functions accept scalars or NumPy arrays (broadcast) and return arrays.
"""
from __future__ import annotations

import numpy as np

_EPS = 1e-10


def normal_and_slip(strike, dip, rake):
    """Unit fault normal ``n`` and slip ``d`` (NED), shape (..., 3) each."""
    f, dl, r = (np.radians(np.asarray(v, dtype=float)) for v in (strike, dip, rake))
    n = np.stack([-np.sin(dl) * np.sin(f), np.sin(dl) * np.cos(f), -np.cos(dl)], axis=-1)
    d = np.stack([
        np.cos(r) * np.cos(f) + np.sin(r) * np.cos(dl) * np.sin(f),
        np.cos(r) * np.sin(f) - np.sin(r) * np.cos(dl) * np.cos(f),
        -np.sin(r) * np.sin(dl),
    ], axis=-1)
    return n, d


def sdr_from_normal_slip(n, d):
    """(strike, dip, rake) in degrees of the plane with normal ``n`` and slip ``d``.

    The pair (n, d) and (-n, -d) describe the same plane and slip; the one with an upward
    normal is used. Horizontal planes get strike 0 by convention.
    """
    sign = np.where(np.asarray(n)[..., 2] > 0, -1.0, 1.0)[..., None]
    n = np.asarray(n, dtype=float) * sign
    d = np.asarray(d, dtype=float) * sign
    dip = np.degrees(np.arccos(np.clip(-n[..., 2], -1, 1)))
    sin_dip = np.sqrt(n[..., 0] ** 2 + n[..., 1] ** 2)
    horizontal = sin_dip < _EPS
    strike = np.where(horizontal, 0.0, np.degrees(np.arctan2(-n[..., 0], n[..., 1])))
    f = np.radians(strike)
    cos_r = d[..., 0] * np.cos(f) + d[..., 1] * np.sin(f)
    sin_r = np.where(horizontal, d[..., 0] * np.sin(f) - d[..., 1] * np.cos(f),
                     -d[..., 2] / np.where(horizontal, 1.0, sin_dip))
    rake = np.degrees(np.arctan2(sin_r, cos_r))
    return _wrap_strike(strike), dip, _wrap_rake(rake)


def _wrap_strike(s):
    s = np.mod(s, 360.0)
    return np.where(np.isclose(s, 360.0), 0.0, s)


def _wrap_rake(r):
    r = (np.asarray(r) + 180.0) % 360.0 - 180.0
    return np.where(np.isclose(r, -180.0), 180.0, r)


def auxiliary_plane(strike, dip, rake):
    """The other nodal plane (strike2, dip2, rake2), degrees."""
    n, d = normal_and_slip(strike, dip, rake)
    return sdr_from_normal_slip(d, n)


def _trend_plunge(v):
    v = np.array(v, dtype=float)
    down = np.where(v[..., 2:3] < 0, -1.0, 1.0)
    v = v * down
    plunge = np.degrees(np.arcsin(np.clip(v[..., 2], -1, 1)))
    trend = np.degrees(np.arctan2(v[..., 1], v[..., 0])) % 360.0
    return trend, plunge


def pbt_axes(strike, dip, rake):
    """P, B, T axes as dict of (trend, plunge) arrays in degrees, plunge >= 0 down."""
    n, d = normal_and_slip(strike, dip, rake)
    t = (n + d) / np.sqrt(2)
    p = (n - d) / np.sqrt(2)
    b = np.cross(n, d)
    return {"p": _trend_plunge(p), "b": _trend_plunge(b), "t": _trend_plunge(t)}


def moment_tensor(strike, dip, rake):
    """Unit double-couple moment tensor (NED), shape (..., 3, 3); M = n d^T + d n^T."""
    n, d = normal_and_slip(strike, dip, rake)
    return n[..., :, None] * d[..., None, :] + d[..., :, None] * n[..., None, :]


def ray_vector(takeoff_deg, azimuth_deg, takeoff_from="down"):
    """Unit ray direction leaving the source (NED).

    ``takeoff_from='down'``: takeoff measured from the downward vertical (0 = straight
    down, > 90 = up-going), the textbook convention. ``'up'``: measured from the upward
    vertical (< 90 = up-going), the convention of SKHASH's ``out_polinfo.csv``.
    """
    t = np.radians(np.asarray(takeoff_deg, dtype=float))
    a = np.radians(np.asarray(azimuth_deg, dtype=float))
    if takeoff_from == "up":
        t = np.pi - t
    elif takeoff_from != "down":
        raise ValueError("takeoff_from must be 'down' or 'up'")
    return np.stack([np.sin(t) * np.cos(a), np.sin(t) * np.sin(a), np.cos(t)], axis=-1)


def p_radiation(strike, dip, rake, ray):
    """P-wave radiation amplitude r^T M r = 2 (r.n)(r.d) for unit rays ``ray`` (..., 3).

    Positive = compression (first motion away from the source: *up* on a vertical
    sensor above it), negative = dilatation. Mechanism args broadcast against rays.
    """
    n, d = normal_and_slip(strike, dip, rake)
    ray = np.asarray(ray, dtype=float)
    return 2.0 * np.sum(ray * n, axis=-1) * np.sum(ray * d, axis=-1)


def _frame(strike, dip, rake):
    """Right-handed rotation matrix with columns T, B, P (..., 3, 3)."""
    n, d = normal_and_slip(strike, dip, rake)
    t = (n + d) / np.sqrt(2)
    p = (n - d) / np.sqrt(2)
    b = np.cross(p, t)
    return np.stack([t, b, p], axis=-1)


_DC_SYMMETRIES = np.array([np.eye(3), np.diag([1, -1, -1]), np.diag([-1, 1, -1]), np.diag([-1, -1, 1])], dtype=float)


def kagan_angle(sdr1, sdr2):
    """Minimum rotation angle (deg, 0-120) between two double couples (Kagan 1991).

    ``sdr1``/``sdr2`` are (strike, dip, rake) tuples of scalars or arrays.
    """
    r1 = _frame(*sdr1)
    r2 = _frame(*sdr2)
    rel = np.swapaxes(r1, -1, -2) @ r2
    traces = np.stack([np.trace(rel @ s, axis1=-2, axis2=-1) for s in _DC_SYMMETRIES], axis=-1)
    cos = np.clip((traces.max(axis=-1) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def mechanism_from_tensor(m):
    """Best double couple of a symmetric moment tensor (NED): (strike, dip, rake) of
    plane 1 and the eigenvalues (ascending). Used to average mechanisms by summing
    their unit tensors, which is rotation-aware, unlike averaging angles."""
    m = np.asarray(m, dtype=float)
    w, v = np.linalg.eigh(m)
    p, t = v[..., :, 0], v[..., :, 2]
    n = (t + p) / np.sqrt(2)
    d = (t - p) / np.sqrt(2)
    s, dp, r = sdr_from_normal_slip(n, d)
    return (s, dp, r), w
