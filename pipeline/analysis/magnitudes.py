"""Magnitude statistics: histograms, frequency-magnitude distribution, completeness, b-value.

Conventions
-----------
* Magnitudes are local magnitudes ML (dimensionless); NaN magnitudes are ignored
  everywhere (and counted where a result reports counts).
* **Bins** have width ``bin_width`` (default 0.1) and are *centred on multiples of the
  width*: the bin of centre ``c`` holds ``c - w/2 <= M < c + w/2`` (a value exactly on a
  half-way point goes to the upper bin). Centres are rounded to 10 decimals so they print
  as 0.1, 0.2, ... and can be compared with ``==`` after rounding.
* **Cumulative** counts at centre ``c`` are the number of events in bins ``>= c``.
* **One binning everywhere.** The FMD, the completeness estimates and the b-value all
  use the same bins of width ``bin_width`` and the same threshold: the events "at or above
  Mc" are those whose *binned* magnitude is ``>= Mc``, i.e. whose value is
  ``>= Mc - bin_width/2`` (half-way values go up). So the number of events the b-value
  uses is exactly the plotted cumulative count at Mc.
* **Completeness magnitude Mc** is always a bin centre: MAXC's correction and a fixed Mc
  are moved to the centre of the bin they fall in (reported as ``mc``; the value asked
  for is ``mc_requested``).
* **b-value**: Aki (1965)-Utsu (1966) maximum likelihood on the binned magnitudes, with the
  bin correction, ``b = log10(e) / (mean(M_binned) - (Mc - bin_width/2))`` over the events
  at or above Mc (Utsu's correction for magnitudes grouped in bins of width
  ``bin_width``; the data's own reporting resolution ``dm`` — 0.01 for ToC2ME ML — is
  finer and only reported, :func:`infer_resolution`). Uncertainty: Shi & Bolt (1982),
  ``sigma_b = ln(10) b^2 sqrt(sum (M_i - mean)^2 / (n (n - 1)))`` on the same binned
  magnitudes (also given: Aki's ``b / sqrt(n)``).
* **a-value**: ``log10 N(M >= Mc) = a - b Mc`` with N the number of events at or above
  Mc, so the line ``10**(a - b c)`` passes through the cumulative count at the bin centre
  ``c = Mc`` (ZMAP convention; see :func:`gr_cumulative_counts`). The goodness-of-fit
  test (below) fits each candidate the same way.

Two completeness methods:

* :func:`mc_maximum_curvature` (MAXC, Wiemer & Wyss 2000): the centre of the most
  populated bin of the non-cumulative FMD, plus a correction (default +0.2, Woessner &
  Wiemer 2005) because MAXC underestimates Mc when the roll-off is gradual.
* :func:`mc_goodness_of_fit` (GFT, Wiemer & Wyss 2000), chosen as the second method: for
  each candidate Mc the Gutenberg-Richter model fitted above it (Aki-Utsu b, a as above)
  predicts cumulative counts ``S_i`` in each bin ``M_i >= Mc``; the fit quality is
  ``R = 100 - 100 sum |B_i - S_i| / sum B_i`` with ``B_i`` the observed cumulative counts.
  Mc is the smallest candidate with ``R >= level`` (90 or 95 %). The combined
  ``method='gft'`` of :func:`gutenberg_richter` takes Mc95, else Mc90, else MAXC, as
  ZMAP's "best combination" does, and says which one it used.

Nothing here raises on empty or small selections: results carry NaNs and a ``reason``.
All functions are vectorised; on the 21,619 ToC2ME magnitudes a full
:func:`gutenberg_richter` call takes a few ms.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

LOG10_E = math.log10(math.e)
LN10 = math.log(10.0)

#: default minimum number of events at or above Mc for a b-value (and for a GFT candidate)
MIN_EVENTS = 50


# --- binning -----------------------------------------------------------------------------

def _clean(mags) -> np.ndarray:
    """1-D float array of the finite magnitudes."""
    m = np.asarray(mags, dtype=float).ravel()
    return m[np.isfinite(m)]


def bin_index(mags, bin_width: float = 0.1) -> np.ndarray:
    """Integer bin index ``k`` (bin centre ``k * bin_width``) of each magnitude.

    Half-way values go up (``-0.05 -> 0``, ``0.15 -> 2`` for 0.1 bins); the ratio is
    rounded to 9 decimals first so float noise (0.15/0.1 = 1.4999999999999998) does not
    flip a bin.
    """
    m = np.asarray(mags, dtype=float)
    return np.floor(np.round(m / bin_width, 9) + 0.5).astype(np.int64)


def bin_magnitudes(mags, bin_width: float = 0.1) -> np.ndarray:
    """Magnitudes replaced by the centre of their bin (see :func:`bin_index`)."""
    return np.round(bin_index(mags, bin_width) * bin_width, 10)


def infer_resolution(mags, candidates=(0.1, 0.01, 0.001)) -> float:
    """The coarsest step in ``candidates`` that every magnitude is a multiple of
    (0.01 for the ToC2ME catalogue); 0.0 if none (continuous values)."""
    m = _clean(mags)
    if m.size == 0:
        return float("nan")
    for step in candidates:
        k = m / step
        if np.all(np.abs(k - np.round(k)) < 1e-6):
            return float(step)
    return 0.0


def magnitude_histogram(mags, bin_width: float = 0.1, centres=None) -> pd.DataFrame:
    """Non-cumulative counts per bin: DataFrame ``centre, count``.

    ``centres`` (optional) fixes the grid (e.g. to share it between subsets); otherwise it
    runs from the lowest to the highest occupied bin, empty bins included. Counts of
    events outside a given grid are dropped. Empty input gives an empty frame.
    """
    m = _clean(mags)
    k = bin_index(m, bin_width)
    if centres is None:
        if k.size == 0:
            return pd.DataFrame({"centre": np.array([], float), "count": np.array([], np.int64)})
        grid = np.arange(k.min(), k.max() + 1)
    else:
        grid = bin_index(np.asarray(centres, dtype=float), bin_width)
    ks = np.sort(k)
    counts = np.searchsorted(ks, grid, "right") - np.searchsorted(ks, grid, "left")
    return pd.DataFrame({"centre": np.round(grid * bin_width, 10), "count": counts.astype(np.int64)})


def magnitude_histograms(subsets: dict, bin_width: float = 0.1) -> pd.DataFrame:
    """Counts of several subsets on one common grid, for overlaid histograms.

    ``subsets`` maps a name (e.g. ``'all'``, ``'resolved'``) to magnitudes. Returns a
    DataFrame with ``centre`` and one count column per name; the grid spans the union of
    occupied bins. Each column sums to that subset's number of finite magnitudes.
    """
    ks = [bin_index(_clean(v), bin_width) for v in subsets.values()]
    ks_nonempty = [k for k in ks if k.size]
    if not ks_nonempty:
        return pd.DataFrame({"centre": np.array([], float), **{n: np.array([], np.int64) for n in subsets}})
    lo = min(int(k.min()) for k in ks_nonempty)
    hi = max(int(k.max()) for k in ks_nonempty)
    out = {"centre": np.round(np.arange(lo, hi + 1) * bin_width, 10)}
    for name, k in zip(subsets, ks):
        out[name] = np.bincount(k - lo, minlength=hi - lo + 1).astype(np.int64)
    return pd.DataFrame(out)


def frequency_magnitude(mags, bin_width: float = 0.1) -> pd.DataFrame:
    """Frequency-magnitude distribution: DataFrame ``centre, count, cumulative``.

    ``count`` is non-cumulative per bin, ``cumulative`` the number of events in bins
    ``>= centre`` (so ``cumulative[0]`` is the number of finite magnitudes).
    """
    h = magnitude_histogram(mags, bin_width)
    h["cumulative"] = h["count"].to_numpy()[::-1].cumsum()[::-1].astype(np.int64)
    return h


# --- completeness ------------------------------------------------------------------------

def mc_maximum_curvature(mags, bin_width: float = 0.1, correction: float = 0.2) -> dict:
    """Mc by maximum curvature: centre of the most populated bin + ``correction``, moved to
    the centre of the bin that sum falls in (Mc is always a bin centre; with 0.1 bins a
    correction of 0.15 acts as 0.2: half-way values go up).

    Returns ``{'mc', 'mc_raw', 'correction', 'method', 'reason'}``; on ties the lowest
    bin wins. Empty input -> NaN with a reason.
    """
    h = magnitude_histogram(mags, bin_width)
    if h.empty:
        return {"mc": float("nan"), "mc_raw": float("nan"), "correction": correction,
                "method": "maxc", "reason": "no finite magnitudes"}
    raw = float(h["centre"].iloc[int(np.argmax(h["count"].to_numpy()))])
    mc = float(bin_magnitudes(np.array([raw + correction]), bin_width)[0])
    return {"mc": mc, "mc_raw": raw, "correction": correction,
            "method": "maxc", "reason": None}


def _aki_utsu(mean_mag: float, mc: float, bin_width: float) -> float:
    """Aki-Utsu b of binned magnitudes of mean ``mean_mag`` at or above the bin centre ``mc``."""
    denom = mean_mag - (mc - bin_width / 2.0)
    return LOG10_E / denom if denom > 0 else float("nan")


def gft_residuals(mags, bin_width: float = 0.1, min_events: int = MIN_EVENTS) -> pd.DataFrame:
    """Goodness-of-fit residual R (%) for every candidate Mc (Wiemer & Wyss 2000).

    Magnitudes are binned at ``bin_width`` first (so the Aki-Utsu correction uses
    ``bin_width``). Candidates are the occupied bin centres with at least ``min_events``
    events at or above them. Returns DataFrame ``mc, n, b, a, R`` (possibly empty).
    """
    fmd = frequency_magnitude(mags, bin_width)
    if fmd.empty:
        return pd.DataFrame(columns=["mc", "n", "b", "a", "R"], dtype=float)
    centres = fmd["centre"].to_numpy()
    counts = fmd["count"].to_numpy().astype(float)
    cum = fmd["cumulative"].to_numpy().astype(float)
    # sums of binned magnitudes above each candidate, from the top
    sum_above = (counts * centres)[::-1].cumsum()[::-1]
    rows = []
    for i in np.flatnonzero(cum >= max(min_events, 2)):
        n = cum[i]
        b = _aki_utsu(sum_above[i] / n, centres[i], bin_width)
        if not np.isfinite(b):
            continue
        a = math.log10(n) + b * centres[i]
        synth = 10.0 ** (a - b * centres[i:])
        r = 100.0 - 100.0 * np.abs(cum[i:] - synth).sum() / cum[i:].sum()
        rows.append((centres[i], n, b, a, r))
    return pd.DataFrame(rows, columns=["mc", "n", "b", "a", "R"])


def mc_goodness_of_fit(mags, bin_width: float = 0.1, level: float = 95.0,
                       min_events: int = MIN_EVENTS) -> dict:
    """Mc by the goodness-of-fit test: the smallest candidate with ``R >= level`` (%).

    Returns ``{'mc', 'R', 'level', 'method', 'reason'}``; NaN Mc with a reason when no
    candidate reaches the level or there are too few events.
    """
    res = gft_residuals(mags, bin_width, min_events)
    out = {"mc": float("nan"), "R": float("nan"), "level": level, "method": f"gft{level:g}", "reason": None}
    if res.empty:
        out["reason"] = f"fewer than {min_events} events for any candidate Mc"
        return out
    ok = res[res["R"] >= level]
    if ok.empty:
        out["reason"] = f"no candidate Mc reaches R >= {level:g}% (best {res['R'].max():.1f}%)"
        return out
    out["mc"] = float(ok["mc"].iloc[0])
    out["R"] = float(ok["R"].iloc[0])
    return out


# --- b-value -----------------------------------------------------------------------------

def b_value(mags, mc: float, bin_width: float = 0.1, min_events: int = MIN_EVENTS) -> dict:
    """Aki-Utsu maximum-likelihood b-value above ``mc`` with Shi & Bolt (1982) sigma, on
    the magnitudes binned at ``bin_width`` (the FMD's bins; see the module conventions).

    ``mc`` is moved to the centre of its bin. The events used are those whose binned
    magnitude is ``>= mc`` (value ``>= mc - bin_width/2``): the FMD's cumulative count at
    ``mc``. Returns a dict: ``b, b_sigma`` (Shi-Bolt), ``b_sigma_aki`` (b/sqrt(n)), ``a``,
    ``n`` (events used), ``mean_magnitude`` (of the binned magnitudes used), ``mc`` (the bin
    centre), ``mc_requested``, ``bin_width``, ``dm`` (the data's reporting resolution,
    :func:`infer_resolution`; information only), ``reason`` (None when all is well).
    """
    m = _clean(mags)
    dm = infer_resolution(m) if m.size else float("nan")
    out = {"b": float("nan"), "b_sigma": float("nan"), "b_sigma_aki": float("nan"),
           "a": float("nan"), "n": 0, "mean_magnitude": float("nan"), "mc": mc, "mc_requested": mc,
           "bin_width": bin_width, "dm": dm, "reason": None}
    if mc is None or not np.isfinite(mc):
        out["mc"] = float("nan")
        out["reason"] = "no completeness magnitude"
        return out
    k_mc = int(bin_index(np.array([mc]), bin_width)[0])
    mc = round(k_mc * bin_width, 10)
    out["mc"] = mc
    k = bin_index(m, bin_width)
    sel = np.round(k[k >= k_mc] * bin_width, 10)
    n = int(sel.size)
    out["n"] = n
    if n < max(min_events, 2):
        out["reason"] = f"only {n} events at or above Mc {mc:g} (need {max(min_events, 2)})"
        return out
    mean = float(sel.mean())
    b = _aki_utsu(mean, mc, bin_width)
    out["mean_magnitude"] = mean
    if not np.isfinite(b):
        out["reason"] = "all events at the completeness magnitude: b undefined"
        return out
    out["b"] = b
    out["b_sigma"] = LN10 * b * b * math.sqrt(float(((sel - mean) ** 2).sum()) / (n * (n - 1)))
    out["b_sigma_aki"] = b / math.sqrt(n)
    out["a"] = math.log10(n) + b * mc
    return out


def gr_cumulative_counts(a: float, b: float, centres) -> np.ndarray:
    """Gutenberg-Richter cumulative counts ``10**(a - b c)`` at bin centres ``c``."""
    return 10.0 ** (a - b * np.asarray(centres, dtype=float))


def gutenberg_richter(mags, method: str = "maxc", bin_width: float = 0.1, correction: float = 0.2,
                      min_events: int = MIN_EVENTS, mc: float | None = None) -> dict:
    """Mc, b, a and their context in one dict, for a page's summary and FMD line.

    ``method``: ``'maxc'`` (maximum curvature + ``correction``), ``'gft95'``, ``'gft90'``,
    ``'gft'`` (Mc95, else Mc90, else MAXC), or ``'fixed'`` with ``mc`` given. ``bin_width``
    is THE bin of the FMD, of Mc and of the b-value (see the module conventions). Keys:
    everything of :func:`b_value` plus ``n_total``, ``mc_method`` (the method actually
    used); ``reason`` explains NaNs. Never raises on bad data.
    """
    m = _clean(mags)
    base = {"n_total": int(m.size)}
    if method == "fixed":
        mc_res = {"mc": float("nan") if mc is None else float(mc), "method": "fixed",
                  "reason": None if mc is not None else "method 'fixed' needs mc"}
    elif method == "maxc":
        mc_res = mc_maximum_curvature(m, bin_width, correction)
    elif method in ("gft95", "gft90"):
        mc_res = mc_goodness_of_fit(m, bin_width, float(method[3:]), min_events)
    elif method == "gft":
        mc_res = mc_goodness_of_fit(m, bin_width, 95.0, min_events)
        if not np.isfinite(mc_res["mc"]):
            mc_res = mc_goodness_of_fit(m, bin_width, 90.0, min_events)
        if not np.isfinite(mc_res["mc"]):
            mc_res = mc_maximum_curvature(m, bin_width, correction)
    else:
        raise ValueError(f"unknown Mc method {method!r}: use maxc, gft, gft95, gft90 or fixed")
    res = b_value(m, mc_res["mc"], bin_width, min_events)
    res.update(base)
    res["mc_method"] = mc_res["method"]
    if mc_res.get("reason"):
        res["reason"] = mc_res["reason"]
    return res
