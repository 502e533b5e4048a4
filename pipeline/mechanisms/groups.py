"""Mechanism classification: the parameterised group rule and faulting-style schemes.

The group rule of the ToC2ME study is purely mechanism-based: families of strike (and for
one family dip), all requiring a near-pure strike-slip rake. It is kept as an explicit
table of rows (group, strike range, dip range, minimum |rake|); a mechanism belongs to the
first group, in table order, any of whose rows it satisfies, else to ``other``. Ranges are
closed; the published half-open range g4 strike [12, 19) is written [12, 19] because 12
and 19 are already taken by g1 and g2, which come first.

Classify once, on the values the source reports (0.1 deg for ToC2ME); on integer-rounded
angles 48 of 2,519 events change group.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

RULE_COLUMNS = ["group", "strike_min", "strike_max", "dip_min", "dip_max", "abs_rake_min"]

#: The published rule (analyses.md 1.3): counts g1 462, g2 1648, g3 130, g4 205, other 74.
PUBLISHED_RULE = pd.DataFrame(
    [
        ("g1", 0, 12, 0, 90, 165), ("g1", 170, 192, 0, 90, 165), ("g1", 355, 360, 0, 90, 165),
        ("g2", 19, 60, 0, 90, 165), ("g2", 200, 231, 0, 90, 165),
        ("g3", 185, 200, 43, 65, 165),
        ("g4", 12, 19, 0, 90, 165), ("g4", 192, 200, 0, 90, 165), ("g4", 185, 195, 0, 90, 165),
    ],
    columns=RULE_COLUMNS,
)
OTHER = "other"
GROUP_ORDER = ["g1", "g2", "g3", "g4", OTHER]


def validate_rule(rule: pd.DataFrame) -> pd.DataFrame:
    """Return ``rule`` with numeric columns, or raise ValueError naming the bad row."""
    missing = [c for c in RULE_COLUMNS if c not in rule.columns]
    if missing:
        raise ValueError(f"group rule: missing columns {missing}")
    out = rule[RULE_COLUMNS].copy()
    out["group"] = out["group"].astype(str).str.strip()
    for c in RULE_COLUMNS[1:]:
        out[c] = pd.to_numeric(out[c], errors="coerce")
    for i, row in out.iterrows():
        if not row["group"] or row["group"] == OTHER:
            raise ValueError(f"group rule row {i + 1}: group name must be set and not {OTHER!r}")
        if row[RULE_COLUMNS[1:]].isna().any():
            raise ValueError(f"group rule row {i + 1}: every range bound must be a number")
        if not (0 <= row.strike_min <= row.strike_max <= 360):
            raise ValueError(f"group rule row {i + 1}: need 0 <= strike_min <= strike_max <= 360")
        if not (0 <= row.dip_min <= row.dip_max <= 90):
            raise ValueError(f"group rule row {i + 1}: need 0 <= dip_min <= dip_max <= 90")
        if not (0 <= row.abs_rake_min <= 180):
            raise ValueError(f"group rule row {i + 1}: need 0 <= abs_rake_min <= 180")
    return out


def classify_groups(strike, dip, rake, rule: pd.DataFrame = PUBLISHED_RULE) -> np.ndarray:
    """Group label per mechanism (plane-1 strike/dip/rake in degrees)."""
    rule = validate_rule(rule)
    s, d, r = (np.asarray(v, dtype=float) for v in (strike, dip, rake))
    out = np.full(s.shape, OTHER, dtype=object)
    assigned = np.zeros(s.shape, dtype=bool)
    for group in dict.fromkeys(rule["group"]):  # groups in order of first appearance
        hit = np.zeros(s.shape, dtype=bool)
        for row in rule[rule["group"] == group].itertuples():
            hit |= ((s >= row.strike_min) & (s <= row.strike_max) & (d >= row.dip_min)
                    & (d <= row.dip_max) & (np.abs(r) >= row.abs_rake_min))
        new = hit & ~assigned
        out[new] = group
        assigned |= new
    return out


def rake_style(rake) -> np.ndarray:
    """Faulting style from rake: strike-slip if |r| <= 30 or >= 150, reverse if
    30 < r < 150, normal if -150 < r < -30."""
    r = np.asarray(rake, dtype=float)
    return np.where((np.abs(r) <= 30) | (np.abs(r) >= 150), "strike-slip",
                    np.where(r > 0, "reverse", "normal")).astype(object)


def zoback_class(p_plunge, b_plunge, t_plunge) -> np.ndarray:
    """Zoback (1992) stress-regime class from P, B, T plunges (deg):
    NF normal, NS normal/strike-slip, SS strike-slip, TS thrust/strike-slip,
    TF thrust, U unknown (oblique)."""
    p, b, t = (np.asarray(v, dtype=float) for v in (p_plunge, b_plunge, t_plunge))
    conds = [
        (p >= 52) & (t <= 35),
        (p >= 40) & (p < 52) & (t <= 20),
        ((p < 40) & (b >= 45) & (t <= 20)) | ((p <= 20) & (b >= 45) & (t < 40)),
        (p <= 20) & (t >= 40) & (t < 52),
        (p <= 35) & (t >= 52),
    ]
    return np.select(conds, ["NF", "NS", "SS", "TS", "TF"], default="U").astype(object)


def frohlich_class(p_plunge, b_plunge, t_plunge) -> np.ndarray:
    """Frohlich (1992) ternary class: thrust if T plunge > 50, strike-slip if B > 60,
    normal if P > 60, else odd (oblique)."""
    p, b, t = (np.asarray(v, dtype=float) for v in (p_plunge, b_plunge, t_plunge))
    return np.select([t > 50, b > 60, p > 60], ["thrust", "strike-slip", "normal"], default="odd").astype(object)
