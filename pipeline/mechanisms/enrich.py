"""Derived columns shared by every data source (ToC2ME, demo, computed mechanisms)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline import geo
from . import focal, groups


def add_local_coords(df: pd.DataFrame, origin: tuple[float, float], lat="lat", lon="lon") -> pd.DataFrame:
    """Add ``x_km``/``y_km`` (east/north of ``origin`` = (lat0, lon0)) to a copy of ``df``."""
    out = df.copy()
    out["x_km"], out["y_km"] = geo.to_local_km(out[lat].to_numpy(), out[lon].to_numpy(), origin)
    return out


#: derived angles are rounded to this many decimals of a degree: numpy's SIMD
#: transcendentals differ in the last bits with the arrays' memory alignment, and
#: identical inputs must give identical tables (the build's digests, its resume)
ANGLE_DECIMALS = 6


def _angle(x) -> np.ndarray:
    return np.round(np.asarray(x, dtype=float), ANGLE_DECIMALS) + 0.0  # + 0.0: no -0.0


def _azimuth(x) -> np.ndarray:
    return _angle(x) % 360.0


def complete_mechanisms(df: pd.DataFrame, rule: pd.DataFrame = groups.PUBLISHED_RULE) -> pd.DataFrame:
    """Add the auxiliary plane, P/B/T axes, group, rake style and Zoback class, all
    computed from plane 1 (``strike``, ``dip``, ``rake``, degrees) of a copy of ``df``."""
    out = df.copy()
    s, d, r = (out[c].to_numpy(dtype=float) for c in ("strike", "dip", "rake"))
    s2, d2, r2 = focal.auxiliary_plane(s, d, r)
    out["strike2"], out["dip2"], out["rake2"] = _azimuth(s2), _angle(d2), _angle(r2)
    axes = focal.pbt_axes(s, d, r)
    for name in ("p", "b", "t"):
        trend, plunge = axes[name]
        out[f"{name}_trend"], out[f"{name}_plunge"] = _azimuth(trend), _angle(plunge)
    out["group"] = groups.classify_groups(s, d, r, rule)
    out["faulting_style"] = groups.rake_style(r)
    out["zoback_class"] = groups.zoback_class(out["p_plunge"], out["b_plunge"], out["t_plunge"])
    return out
