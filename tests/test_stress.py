"""Stress inversion (pipeline.analysis.stress) on mechanisms generated from a known stress.

The synthetic mechanisms are built here from first principles, not with the module's helpers:
random fault normals, kept when the fault is near-optimally oriented for slip (Mohr-Coulomb
instability >= 0.9 at friction 0.6, the premise of Vavryčuk's fault-plane criterion); slip
along the resolved shear traction; 4 deg of Gaussian noise on strike, dip and rake; half the
mechanisms reported with the auxiliary plane as plane 1. Expected SHmax is the horizontal
direction of largest compression, the eigenvector of the 2x2 horizontal block of the stress.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.analysis import stress
from pipeline.mechanisms import focal

ROOT = Path(__file__).resolve().parents[1]


def _axis(trend, plunge):
    t, p = np.radians(trend), np.radians(plunge)
    return np.array([np.cos(p) * np.cos(t), np.cos(p) * np.sin(t), np.sin(p)])


def _truth(s1, s3, r):
    """Compression-positive stress (NED) with σ1 = 1, σ2 = 1 - 2R, σ3 = -1 along s1, s2, s3."""
    s2 = np.cross(s3, s1)
    s2 /= np.linalg.norm(s2)
    sig = 1.0 * np.outer(s1, s1) + (1 - 2 * r) * np.outer(s2, s2) - 1.0 * np.outer(s3, s3)
    return sig, s2


def _synthetic(sig, n_mech=150, noise=4.0, seed=1, friction=0.6, min_instability=0.9):
    rng = np.random.default_rng(seed)
    normals = []
    while len(normals) < n_mech:
        n = rng.normal(size=3)
        n /= np.linalg.norm(n)
        t = sig @ n
        sn = n @ t                                   # normal stress, compression positive
        tau = np.sqrt(max(t @ t - sn ** 2, 0.0))
        inst = (tau - friction * (sn - 1.0)) / (friction + np.sqrt(1 + friction ** 2))
        if inst >= min_instability:
            normals.append(n)
    n = np.array(normals)
    t = -(n @ sig)                                   # tension-positive traction on the hanging wall side
    shear = t - np.sum(t * n, axis=1)[:, None] * n
    d = shear / np.linalg.norm(shear, axis=1)[:, None]
    swap = rng.random(n_mech) < 0.5                  # report the auxiliary plane as plane 1
    s, dp, rk = focal.sdr_from_normal_slip(np.where(swap[:, None], d, n), np.where(swap[:, None], n, d))
    s = (s + rng.normal(0, noise, n_mech)) % 360
    dp = np.clip(dp + rng.normal(0, noise, n_mech), 0.5, 90)
    rk = rk + rng.normal(0, noise, n_mech)
    return s, dp, rk


def _angle(u, v):
    return float(np.degrees(np.arccos(min(1.0, abs(float(np.dot(u, v)) / np.linalg.norm(u) / np.linalg.norm(v))))))


def _shmax_truth(sig):
    w, v = np.linalg.eigh(sig[:2, :2])
    return float(np.degrees(np.arctan2(v[1, 1], v[0, 1])) % 180.0)


CASES = {
    # normal faulting: σ1 vertical, σ3 horizontal N30E, R = 0.4 -> SHmax along σ2, N120E
    "normal": (_axis(0, 90), _axis(30, 0), 0.4, 120.0),
    # strike-slip: σ1 horizontal N60E, σ3 horizontal N150E, R = 0.5 -> SHmax N60E
    "strike-slip": (_axis(60, 0), _axis(150, 0), 0.5, 60.0),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_recovers_a_known_stress_with_noise_and_plane_ambiguity(case):
    s1, s3, r, shmax = CASES[case]
    sig, s2 = _truth(s1, s3, r)
    assert _shmax_truth(sig) == pytest.approx(shmax, abs=1e-6)
    b = stress.bootstrap(*_synthetic(sig), n_boot=200, seed=0)
    errors = [_angle(b.best.axes[i], v) for i, v in enumerate((s1, s2, s3))]
    print(case, "axis errors deg", np.round(errors, 2), "R", round(b.best.r, 3), "SHmax", round(b.best.shmax, 2),
          "radius95", {k: round(v, 1) for k, v in b.radius.items()}, "R95", np.round(b.r_interval, 3))
    assert max(errors) < 10.0
    assert abs(b.best.r - r) < 0.1
    d_sh = (b.best.shmax - shmax + 90) % 180 - 90
    assert abs(d_sh) < 10.0
    # the bootstrap 95 % intervals hold the truth
    for i, name in enumerate(stress.AXES):
        assert errors[i] <= b.radius[name] + 1e-9, name
    assert b.r_interval[0] <= r <= b.r_interval[1]
    lo, hi = b.shmax_interval
    assert (lo <= shmax <= hi) if lo <= hi else (shmax >= lo or shmax <= hi)
    # reported conventions: plunge >= 0 downward, SHmax in [0, 180)
    assert all(0 <= p <= 90 for _, p in b.best.trend_plunge().values())
    assert 0 <= b.best.shmax < 180


def test_noise_free_reverse_faulting_is_exact():
    """σ1 horizontal N100E, σ3 vertical: no noise, every plane reported as is -> sub-degree."""
    s1, s3, r = _axis(100, 0), _axis(0, 90), 0.3
    sig, s2 = _truth(s1, s3, r)
    res = stress.invert(*_synthetic(sig, noise=0.0, seed=3))
    assert max(_angle(res.axes[i], v) for i, v in enumerate((s1, s2, s3))) < 2.0
    assert abs(res.r - r) < 0.03
    assert abs((res.shmax - 100.0 + 90) % 180 - 90) < 2.0
    tr, pl = res.trend_plunge()["sigma3"]
    assert pl > 88


def test_too_few_mechanisms_is_an_error():
    with pytest.raises(ValueError, match="at least 4"):
        stress.invert([10, 20, 30], [40, 50, 60], [0, 90, -90])


# -- the command ----------------------------------------------------------------------------
def _mechanism_table(n_each=40):
    sig, _ = _truth(_axis(0, 90), _axis(30, 0), 0.4)
    s, dp, rk = _synthetic(sig, n_mech=2 * n_each, seed=5)
    s2, d2, r2 = focal.auxiliary_plane(s, dp, rk)
    n = len(s)
    t0 = pd.Timestamp("2016-11-01", tz="UTC")
    return pd.DataFrame({
        "event_id": [f"2016110{1 + i // 40}000000.{i:03d}" for i in range(n)],
        "source": ["published" if i % 2 == 0 else "computed" for i in range(n)],
        "time": [t0 + pd.Timedelta(hours=3 * i) for i in range(n)],
        "lat": 54.3, "lon": -117.2, "x_km": 0.0, "y_km": 0.0,
        "strike": s, "dip": dp, "rake": rk, "strike2": s2, "dip2": d2, "rake2": r2,
        "quality": ["A" if i % 3 else "B" for i in range(n)],
        "group": ["g1" if i < n_each else "g2" for i in range(n)],
        "faulting_style": "normal", "zoback_class": "NF",
        "cluster": ["NSw" if i % 4 else None for i in range(n)],
    })


def _run(*args):
    out = subprocess.run([sys.executable, "-m", "pipeline", "stress", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    return out


def test_command_prints_json_last_and_filters_like_the_dashboard(tmp_path):
    from pipeline import tables
    mech = _mechanism_table()
    tables.write_tables(tmp_path, {"mechanisms": mech})
    m = tables.read_table(tmp_path, "mechanisms")
    assert m["event_id"].is_unique
    a = m["quality"] == "A"  # the default population: one per event (ids are unique here), quality A
    cases = {
        (): int(a.sum()),
        ("--mech", "all"): len(m),
        ("--source", "published"): int((a & (m["source"] == "published")).sum()),
        ("--quality", "A", "--group", "g1", "--source", "computed"): int(
            (a & (m["group"] == "g1") & (m["source"] == "computed")).sum()),
        ("--cluster", "NSw", "--start", "2016-11-03", "--end", "2016-11-08"): int(
            (a & (m["cluster"] == "NSw") & (m["time"] >= pd.Timestamp("2016-11-03", tz="UTC"))
             & (m["time"] < pd.Timestamp("2016-11-09", tz="UTC"))).sum()),
    }
    for flags, expected in cases.items():
        out = _run("--data-dir", str(tmp_path), "--bootstrap", "20", "--seed", "1", *flags)
        assert out.returncode == 0, out.stderr
        res = json.loads(out.stdout.strip().splitlines()[-1])
        assert res["n_mechanisms"] == expected, flags
        assert res["bootstrap"] == 20
        assert set(res) >= {"sigma1", "sigma2", "sigma3", "R", "R_interval95", "shmax_deg", "shmax_interval95"}
        assert {"trend", "plunge", "radius95_deg"} <= set(res["sigma1"])
    assert len(set(cases.values())) == len(cases)          # every filter changed the count
    # all 80 mechanisms: the known stress back (σ1 vertical, SHmax N120E)
    out = _run("--data-dir", str(tmp_path), "--bootstrap", "0", "--mech", "all")
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["sigma1"]["plunge"] > 80 and abs((res["shmax_deg"] - 120 + 90) % 180 - 90) < 10


def test_command_refuses_a_selection_too_small(tmp_path):
    from pipeline import tables
    tables.write_tables(tmp_path, {"mechanisms": _mechanism_table()})
    out = _run("--data-dir", str(tmp_path), "--start", "2030-01-01")
    assert out.returncode == 2
    assert "0 mechanism(s) match" in out.stderr and out.stderr.count("\n") == 1
