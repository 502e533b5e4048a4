"""Statistics of focal mechanisms: strikes, rose binning, group averages, ternary diagram.

Conventions (as in :mod:`pipeline.mechanisms.focal`): strike 0-360 deg clockwise from north with the
fault dipping to the right, dip 0-90, rake -180..180 (Aki & Richards); axes are
(trend, plunge) in degrees with plunge >= 0 downward.

* **Axial strike**: a strike line has no direction for the purposes of a rose diagram or a
  "deviation from the mean strike" colour, so strikes ``s`` and ``s + 180`` are the same
  axis; :func:`axial_strike` maps to [0, 180), :func:`axial_difference` is
  ``min(|d|, 180 - |d|)`` with ``d`` the difference mod 180 (0-90 deg; fixes defect 5 of
  the original, which compared raw strikes with a wrapped mean).
* **NSw normalisation** (:func:`nsw_strike`): ``s - 180`` if ``s > 270``, ``s + 180`` if
  ``s < 90``, else ``s``; maps every strike into [90, 270] as the original NSw figure.
* **Average mechanism** (:func:`average_mechanism`): the sum of the events' unit
  double-couple moment tensors (:func:`pipeline.mechanisms.focal.moment_tensor`), decomposed with
  :func:`pipeline.mechanisms.focal.mechanism_from_tensor` -- rotation-aware, unlike separate means of
  strike, dip and |rake| (defect 4). Of the two nodal planes of the average, plane 1 is
  the one closest to the events' own plane 1 (largest mean squared cosine between the
  plane normals), so the result is comparable with averages of the reported planes. Its
  P/B/T axes are the axes *of the average mechanism* (defect 8: they are not stress
  axes). The spread is the Kagan angle of each event to the average (median, 90th
  percentile; :func:`kagan_to`, the same angle as :func:`pipeline.mechanisms.focal.kagan_angle`
  computed with atan2 so that it stays accurate near 0). The non-double-couple share of the summed tensor, ``2 |eps|`` with
  ``eps = -lambda_mid / max(|lambda_min|, |lambda_max|)`` (0 = pure double couple, 1 =
  pure CLVD), and the coherence ``|sum M| / sum |M|`` (1 = identical mechanisms, Frobenius
  norm) are sanity indicators: a mixed group has a large non-DC share and low coherence.
* **Canonical form of averaged planes** (:func:`canonical_plane`, applied to both planes
  of every :func:`average_mechanism`): right-hand rule, strike in [0, 360), dip in
  [0, 90], rake in (-180, 180] -- except for *steep* planes, dip within
  :data:`STEEP_DIP_TOLERANCE` (5 deg) of vertical, whose right-hand-rule strike flips by
  180 deg when the dip crosses 90 (an average of 88.7 deg dipping WNW reads 205.5, one of
  89.8 deg dipping ESE reads 25.5: the same near-vertical fault written two ways). A steep
  plane is written with its strike in [90, 270) -- the half-circle of the project's NSw
  strike normalisation (:func:`nsw_strike`) and of the ToC2ME faults' right-hand strikes
  (180-210) -- using ``(s + 180, 180 - d, -r)`` where needed; its dip then lies in
  [85, 95], a dip above 90 meaning the plane leans that far past vertical, i.e. dips
  towards ``strike - 90`` (as overturned beds are written). The plane and the slip
  are unchanged: that triple has normal ``-n`` and slip ``-d``, the same plane, the
  same slip sense and the same moment tensor. So 205.5/88.7/179.4 stays and
  25.5/89.8/-179.0 reads 205.5/90.2/179.0.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.mechanisms import focal

#: columns of :func:`group_average_table`
AVERAGE_COLUMNS = [
    "group", "n", "strike", "dip", "rake", "strike2", "dip2", "rake2",
    "p_trend", "p_plunge", "b_trend", "b_plunge", "t_trend", "t_plunge",
    "kagan_median", "kagan_p90", "non_dc_fraction", "coherence", "dominant_strike",
]


#: a plane within this many degrees of vertical is "steep": written with strike in [90, 270)
#: (see :func:`canonical_plane`). Group averages of the ToC2ME strike-slip faults scatter by a few
#: degrees about vertical between filters (g2: 88.7 all, 89.8 quality A), well inside 5.
STEEP_DIP_TOLERANCE = 5.0


# --- strikes ------------------------------------------------------------------------------

def axial_strike(strike) -> np.ndarray:
    """Strike as an undirected axis, in [0, 180) deg."""
    return np.mod(np.asarray(strike, dtype=float), 180.0)


def nsw_strike(strike) -> np.ndarray:
    """Strike normalised to [90, 270] deg as in the NSw figure: ``s - 180`` if ``s > 270``,
    ``s + 180`` if ``s < 90``, else ``s``. Input strikes are 0-360 deg."""
    s = np.asarray(strike, dtype=float)
    return np.where(s > 270.0, s - 180.0, np.where(s < 90.0, s + 180.0, s))


def axial_difference(a, b) -> np.ndarray:
    """Angle between two strike axes, ``min(|d|, 180 - |d|)`` with ``d = (a - b) mod 180``;
    0-90 deg. E.g. 359 vs 1 -> 2; 179 vs 1 -> 2; 90 vs 0 -> 90."""
    d = np.mod(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), 180.0)
    return np.minimum(d, 180.0 - d)


def axial_mean(strike, weights=None) -> dict:
    """Mean axis of strikes (doubled-angle circular mean), deg in [0, 180).

    Returns ``{'mean', 'resultant'}``: ``resultant`` is the mean resultant length of the
    doubled angles (1 = all parallel, 0 = no preferred axis); NaN mean for empty input.
    """
    s = np.radians(2.0 * np.asarray(strike, dtype=float).ravel())
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float).ravel()
    if s.size == 0 or w.sum() <= 0:
        return {"mean": float("nan"), "resultant": float("nan")}
    c, sn = (w * np.cos(s)).sum() / w.sum(), (w * np.sin(s)).sum() / w.sum()
    return {"mean": float(np.degrees(np.arctan2(sn, c)) / 2.0 % 180.0), "resultant": float(np.hypot(c, sn))}


def rose_histogram(strike, bin_width: float = 10.0, mode: str = "mirrored", weights=None) -> pd.DataFrame:
    """Rose-diagram counts of strike axes: DataFrame ``bin_start, bin_end, centre, count``.

    ``mode='mirrored'``: 0-360 deg; each strike is counted once at its axial strike
    ``s mod 180`` and once at ``s mod 180 + 180``, so the rose is point-symmetric and the
    counts sum to 2 N (each half sums to N). ``mode='folded'``: 0-180 deg, each strike once
    at ``s mod 180`` (counts sum to N). Bins start at 0; ``bin_width`` must divide 180.
    """
    if mode not in ("mirrored", "folded"):
        raise ValueError("mode must be 'mirrored' or 'folded'")
    n_half = int(round(180.0 / bin_width))
    if not np.isclose(n_half * bin_width, 180.0):
        raise ValueError("bin_width must divide 180")
    s = axial_strike(strike).ravel()
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float).ravel()
    ok = np.isfinite(s)
    k = np.minimum((s[ok] / bin_width).astype(int), n_half - 1)
    half = np.bincount(k, weights=w[ok], minlength=n_half)
    counts = np.concatenate([half, half]) if mode == "mirrored" else half
    starts = np.arange(counts.size) * bin_width
    if weights is None:
        counts = counts.astype(np.int64)
    return pd.DataFrame({"bin_start": starts, "bin_end": starts + bin_width,
                         "centre": starts + bin_width / 2.0, "count": counts})


def canonical_plane(strike, dip, rake, steep_tolerance: float = STEEP_DIP_TOLERANCE):
    """One written form of a plane and slip (deg; see the module docstring): right-hand
    rule with strike in [0, 360), dip in [0, 90], rake in (-180, 180]; a plane within
    ``steep_tolerance`` of vertical has its strike in [90, 270) and a dip in
    [90 - tol, 90 + tol] (above 90: leaning past vertical, dipping towards strike - 90).

    Any input triple is accepted (a dip outside [0, 90] is first brought to the right-hand
    rule); the output describes the same plane with the same slip: ``(s + 180, 180 - d, -r)``
    has normal and slip vectors ``-n``, ``-d`` of ``(s, d, r)``. Arrays broadcast; returns
    (strike, dip, rake) as floats for scalar input, arrays otherwise.
    """
    s, d, r = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (strike, dip, rake)))
    s, d, r = np.mod(s, 360.0), np.mod(d, 360.0), r.copy()
    # dip in [0, 360) -> [0, 180]: a dip past 180 is the plane seen from below (n -> -n, rake -> r + 180)
    under = d > 180.0
    s, d, r = np.where(under, np.mod(s + 180.0, 360.0), s), np.where(under, 360.0 - d, d), np.where(under, r + 180.0, r)
    over = d > 90.0  # right-hand rule first: dip <= 90
    s, d, r = np.where(over, np.mod(s + 180.0, 360.0), s), np.where(over, 180.0 - d, d), np.where(over, -r, r)
    flip = (d >= 90.0 - steep_tolerance) & ((s < 90.0) | (s >= 270.0))
    s, d, r = np.where(flip, np.mod(s + 180.0, 360.0), s), np.where(flip, 180.0 - d, d), np.where(flip, -r, r)
    r = 180.0 - np.mod(180.0 - r, 360.0)  # (-180, 180]
    s = np.where(s >= 360.0, s - 360.0, s)  # np.mod(-1e-17, 360) is 360.0
    if s.ndim == 0:
        return float(s), float(d), float(r)
    return s, d, r


# --- average mechanism ------------------------------------------------------------------

def _plane_normals(strike, dip):
    n, _ = focal.normal_and_slip(strike, dip, np.zeros_like(np.asarray(strike, dtype=float)))
    return n


def _choose_plane(sdr, sdr_aux, strike, dip, w):
    """Order the two nodal planes so plane 1 best matches the events' plane-1 normals."""
    normals = _plane_normals(strike, dip)  # (N, 3)
    n1, n2 = _plane_normals(sdr[0], sdr[1]), _plane_normals(sdr_aux[0], sdr_aux[1])
    fit1 = float((w * (normals @ n1) ** 2).sum())
    fit2 = float((w * (normals @ n2) ** 2).sum())
    return (sdr, sdr_aux) if fit1 >= fit2 else (sdr_aux, sdr)


def non_dc_fraction(eigenvalues) -> float:
    """``2 |eps|``, ``eps = -lambda_mid / max(|lambda_min|, |lambda_max|)``: 0 for a double
    couple, 1 for a pure CLVD. Eigenvalues in any order; NaN for a zero tensor."""
    w = np.sort(np.asarray(eigenvalues, dtype=float))
    big = max(abs(w[0]), abs(w[2]))
    return float(2.0 * abs(w[1]) / big) if big > 0 else float("nan")


def _tbp_frame(strike, dip, rake) -> np.ndarray:
    """Rotation matrices with columns T, B, P (..., 3, 3), as in :mod:`pipeline.mechanisms.focal`."""
    n, d = focal.normal_and_slip(strike, dip, rake)
    t = (n + d) / np.sqrt(2.0)
    p = (n - d) / np.sqrt(2.0)
    return np.stack([t, np.cross(p, t), p], axis=-1)


_DC_SYMMETRIES = np.array([np.eye(3), np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])])


def kagan_to(strike, dip, rake, ref_sdr) -> np.ndarray:
    """Kagan angle (deg, 0-120) of each mechanism to one reference (strike, dip, rake).

    Same minimum rotation as :func:`pipeline.mechanisms.focal.kagan_angle`, but the angle is taken
    as ``atan2(sin, cos)`` of the relative rotation (sin from its antisymmetric part)
    instead of ``arccos(cos)``, which keeps small angles accurate (arccos bottoms out
    near 1e-6 deg for identical mechanisms; this gives ~1e-12 deg).
    """
    s = np.asarray(strike, dtype=float)
    r1 = _tbp_frame(s, np.asarray(dip, dtype=float), np.asarray(rake, dtype=float))
    r2 = _tbp_frame(*(float(v) for v in ref_sdr))
    rel = np.swapaxes(r1, -1, -2) @ r2  # (..., 3, 3)
    cands = rel[..., None, :, :] @ _DC_SYMMETRIES  # (..., 4, 3, 3)
    traces = np.trace(cands, axis1=-2, axis2=-1)
    best = np.take_along_axis(cands, traces.argmax(axis=-1)[..., None, None, None], axis=-3)[..., 0, :, :]
    cos = (np.trace(best, axis1=-2, axis2=-1) - 1.0) / 2.0
    skew = np.stack([best[..., 2, 1] - best[..., 1, 2], best[..., 0, 2] - best[..., 2, 0],
                     best[..., 1, 0] - best[..., 0, 1]], axis=-1) / 2.0
    return np.degrees(np.arctan2(np.linalg.norm(skew, axis=-1), cos))


def _empty_average(n: int = 0, reason: str = "no mechanisms") -> dict:
    out = {c: float("nan") for c in AVERAGE_COLUMNS if c != "group"}
    out.update({"n": n, "reason": reason})
    return out


def average_mechanism(strike, dip, rake, weights=None) -> dict:
    """Moment-tensor average of double couples (see the module docstring).

    Returns a dict: ``n``; ``strike, dip, rake`` (plane 1, closest to the events' plane
    1) and ``strike2, dip2, rake2``, each in the canonical form of :func:`canonical_plane`; ``p_/b_/t_trend`` and ``_plunge`` of the average
    mechanism; ``kagan_median``, ``kagan_p90`` (deg, each event to the average);
    ``non_dc_fraction``; ``coherence``; ``dominant_strike`` (axial mean of the events'
    strikes); ``eigenvalues`` (of the summed tensor, ascending, divided by the summed
    weight); ``reason`` (None, or why the values are NaN). ``weights`` (e.g. seismic
    moments) scale each unit tensor; default 1.
    """
    s, d, r = (np.asarray(v, dtype=float).ravel() for v in (strike, dip, rake))
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=float).ravel()
    ok = np.isfinite(s) & np.isfinite(d) & np.isfinite(r) & np.isfinite(w) & (w > 0)
    s, d, r, w = s[ok], d[ok], r[ok], w[ok]
    if s.size == 0:
        return _empty_average()
    m_sum = (w[:, None, None] * focal.moment_tensor(s, d, r)).sum(axis=0)
    if not np.any(np.abs(m_sum) > 1e-12 * w.sum()):
        return _empty_average(int(s.size), "summed moment tensor is zero (mechanisms cancel)")
    sdr, eig = focal.mechanism_from_tensor(m_sum)
    sdr = tuple(float(v) for v in sdr)
    aux = tuple(float(v) for v in focal.auxiliary_plane(*sdr))
    p1, p2 = _choose_plane(sdr, aux, s, d, w)
    p1, p2 = canonical_plane(*p1), canonical_plane(*p2)
    axes = focal.pbt_axes(*p1)
    kag = kagan_to(s, d, r, p1)
    out = {
        "n": int(s.size),
        "strike": p1[0], "dip": p1[1], "rake": p1[2],
        "strike2": p2[0], "dip2": p2[1], "rake2": p2[2],
        "kagan_median": float(np.median(kag)), "kagan_p90": float(np.quantile(kag, 0.9)),
        "non_dc_fraction": non_dc_fraction(eig),
        "coherence": float(np.linalg.norm(m_sum) / (np.sqrt(2.0) * w.sum())),
        "dominant_strike": axial_mean(s, w)["mean"],
        "eigenvalues": tuple(float(v) for v in np.asarray(eig) / w.sum()),
        "reason": None,
    }
    for ax in ("p", "b", "t"):
        out[f"{ax}_trend"] = float(axes[ax][0])
        out[f"{ax}_plunge"] = float(axes[ax][1])
    return out


def group_average_table(mechanisms: pd.DataFrame, group_col: str = "group", groups=None,
                        skip=("other",), weights_col: str | None = None) -> pd.DataFrame:
    """One row per group with :func:`average_mechanism` (columns :data:`AVERAGE_COLUMNS`
    plus ``reason``).

    ``mechanisms`` needs ``strike, dip, rake`` and ``group_col``. ``groups`` fixes the
    order (default: sorted labels present); labels in ``skip`` get no average (the
    original draws no average for 'other', whose mixed mechanisms have none). ~1 ms per
    group on ToC2ME sizes.
    """
    labels = sorted(mechanisms[group_col].dropna().unique()) if groups is None else list(groups)
    rows = []
    for g in labels:
        if g in skip:
            continue
        sub = mechanisms[mechanisms[group_col] == g]
        w = None if weights_col is None else sub[weights_col].to_numpy()
        res = average_mechanism(sub["strike"].to_numpy(), sub["dip"].to_numpy(), sub["rake"].to_numpy(), w)
        res.pop("eigenvalues", None)
        rows.append({"group": g, **res})
    return pd.DataFrame(rows, columns=AVERAGE_COLUMNS + ["reason"])


def legacy_mean_mechanism(strike, dip, rake, wrap: bool = True) -> dict:
    """The original study's group "average" -- for comparison only, NOT rotation-aware.

    Mean of the wrapped strike (``s - 360`` if ``s > 355``, else ``s - 180`` if
    ``s > 170``; no wrapping for ``wrap=False``, as the original did for g3), mean dip and
    mean |rake|. On the integer group files it gives g1 4.15/82.40/176.26, g2
    25.48/86.57/176.12, g3 195.35/50.71/175.94 (wrap=False), g4 16.84/80.54/175.69.
    """
    s, d, r = (np.asarray(v, dtype=float).ravel() for v in (strike, dip, rake))
    if s.size == 0:
        return {"strike": float("nan"), "dip": float("nan"), "abs_rake": float("nan"), "n": 0}
    if wrap:
        s = np.where(s > 355.0, s - 360.0, np.where(s > 170.0, s - 180.0, s))
    return {"strike": float(s.mean()), "dip": float(d.mean()), "abs_rake": float(np.abs(r).mean()), "n": int(s.size)}


# --- Frohlich ternary diagram --------------------------------------------------------------

#: (x, y) of the triangle's corners in :func:`frohlich_xy` coordinates
FROHLICH_VERTICES = {
    "strike-slip": (0.0, float(np.sqrt(2.0))),
    "thrust": (float(np.sqrt(1.5)), float(-np.sqrt(0.5))),
    "normal": (float(-np.sqrt(1.5)), float(-np.sqrt(0.5))),
}


def frohlich_xy(p_plunge, b_plunge, t_plunge):
    """(x, y) of mechanisms on the Frohlich (1992) ternary diagram (Kaverina et al. 1996
    projection), from the P, B, T plunges in degrees.

    Gnomonic projection of the unit vector ``(sin dT, sin dB, sin dP)`` (its squares sum
    to 1 because P, B, T are orthogonal) from the centre ``(1, 1, 1)/sqrt(3)``: x along
    ``(1, 0, -1)/sqrt(2)`` (thrust right, normal left), y along ``(-1, 2, -1)/sqrt(6)``
    (strike-slip up). Corners: :data:`FROHLICH_VERTICES` -- pure strike-slip (0, 1.414),
    thrust (1.225, -0.707), normal (-1.225, -0.707); a mechanism with all three plunges
    35.26 deg sits at (0, 0). Identical to the published formula
    ``z = atan(sin dT / sin dP) - 45, h = cos dB sin z / D, v = (cos 35.26 sin dB -
    sin 35.26 cos dB cos z) / D, D = sin 35.26 sin dB + cos 35.26 cos dB cos z``.
    """
    st, sb, sp = (np.sin(np.radians(np.asarray(v, dtype=float))) for v in (t_plunge, b_plunge, p_plunge))
    centre = (st + sb + sp) / np.sqrt(3.0)
    x = (st - sp) / np.sqrt(2.0) / centre
    y = (2.0 * sb - st - sp) / np.sqrt(6.0) / centre
    return x, y
