"""Focal geometry checked against ObsPy (an independent implementation) and known answers."""
import numpy as np
import pytest

from pipeline.mechanisms import focal

obspy_bb = pytest.importorskip("obspy.imaging.beachball")

RNG = np.random.default_rng(7)
FUZZ = np.column_stack([RNG.uniform(0, 360, 200), RNG.uniform(1, 89, 200), RNG.uniform(-179, 179, 200)])
CRITICAL = [(0, 90, 0), (0, 90, 180), (90, 45, 90), (90, 45, -90), (359.9, 89.9, 179.9),
            (180, 30, 45), (25.6, 88.7, 177.8), (0, 0.5, 10)]


def _same_plane(a, b):
    """Planes equal up to the dip-90 ambiguity (strike+180, rake sign) and wrap-around."""
    ds = (a[0] - b[0] + 180) % 360 - 180
    dr = (a[2] - b[2] + 180) % 360 - 180
    return abs(ds) < 1e-6 and abs(a[1] - b[1]) < 1e-6 and abs(dr) < 1e-6


@pytest.mark.parametrize("sdr", list(map(tuple, FUZZ[:50])) + CRITICAL)
def test_auxiliary_plane_matches_obspy(sdr):
    ours = tuple(float(v) for v in focal.auxiliary_plane(*sdr))
    theirs = obspy_bb.aux_plane(*sdr)
    if abs(ours[1] - 90) < 1e-6:  # vertical plane: two equivalent descriptions
        alt = ((ours[0] + 180) % 360, ours[1], -ours[2])
        assert _same_plane(ours, theirs) or _same_plane(alt, theirs)
    else:
        assert _same_plane(ours, theirs)


def test_auxiliary_of_auxiliary_is_the_plane():
    s, d, r = FUZZ.T
    back = focal.auxiliary_plane(*focal.auxiliary_plane(s, d, r))
    assert np.allclose(np.column_stack(back), FUZZ, atol=1e-6)


def _unit(trend, plunge):
    t, p = np.radians(trend), np.radians(plunge)
    return np.array([np.cos(p) * np.cos(t), np.cos(p) * np.sin(t), np.sin(p)])


@pytest.mark.parametrize("sdr", list(map(tuple, FUZZ[:30])))
def test_pbt_axes_match_obspy_mt2axes(sdr):
    m = focal.moment_tensor(*sdr)
    # obspy MomentTensor takes (Mrr, Mtt, Mpp, Mrt, Mrp, Mtp) in Up-South-East
    mrr, mtt, mpp = m[2, 2], m[0, 0], m[1, 1]
    mrt, mrp, mtp = m[0, 2], -m[1, 2], -m[0, 1]
    t_ax, n_ax, p_ax = obspy_bb.mt2axes(obspy_bb.MomentTensor(mrr, mtt, mpp, mrt, mrp, mtp, 0))
    ours = focal.pbt_axes(*sdr)
    for name, ax in (("t", t_ax), ("b", n_ax), ("p", p_ax)):
        # axes are lines: compare as unit vectors up to sign
        dot = abs(_unit(*ours[name]) @ _unit(ax.strike, ax.dip))
        assert dot == pytest.approx(1.0, abs=1e-6), name


def test_known_axes():
    # pure thrust on a N-striking 45-degree plane: T vertical, P horizontal E-W
    ax = focal.pbt_axes(0, 45, 90)
    assert ax["t"][1] == pytest.approx(90, abs=1e-6)
    assert ax["p"][1] == pytest.approx(0, abs=1e-6) and ax["p"][0] % 180 == pytest.approx(90)
    # vertical strike-slip striking N: P and T horizontal at 45 degrees, B vertical
    ax = focal.pbt_axes(0, 90, 180)
    assert ax["b"][1] == pytest.approx(90, abs=1e-6)
    assert {round(ax["p"][0]) % 180, round(ax["t"][0]) % 180} == {45, 135}


def test_radiation_sign_convention():
    # thrust: straight-down ray leaves through the T (compressional) quadrant
    down = focal.ray_vector(0, 0)
    assert focal.p_radiation(0, 45, 90, down) > 0
    assert focal.p_radiation(0, 45, -90, down) < 0
    # takeoff conventions: 30 deg from up == 150 deg from down
    assert np.allclose(focal.ray_vector(30, 70, "up"), focal.ray_vector(150, 70, "down"))
    with pytest.raises(ValueError):
        focal.ray_vector(10, 10, "sideways")


def test_kagan_angle_known_values():
    sdr = (10, 60, 30)
    assert focal.kagan_angle(sdr, sdr) == pytest.approx(0, abs=1e-5)
    assert focal.kagan_angle(sdr, focal.auxiliary_plane(*sdr)) == pytest.approx(0, abs=1e-4)
    # rotating a vertical strike-slip about the vertical B axis by 15 degrees
    assert focal.kagan_angle((0, 90, 0), (15, 90, 0)) == pytest.approx(15, abs=1e-6)
    # reversing the slip swaps P and T: a 90-degree rotation about B
    assert focal.kagan_angle((0, 90, 0), (0, 90, 180)) == pytest.approx(90, abs=1e-6)
    k = focal.kagan_angle(tuple(FUZZ[:100].T), tuple(FUZZ[100:].T))
    assert k.shape == (100,) and (k >= 0).all() and (k <= 120 + 1e-6).all()


def test_moment_tensor_average_of_identical_mechanisms_is_that_mechanism():
    sdr = (203.0, 88.0, 177.0)
    m = focal.moment_tensor(*(np.full(5, v) for v in sdr)).sum(axis=0)
    avg, eig = focal.mechanism_from_tensor(m)
    assert focal.kagan_angle(sdr, avg) == pytest.approx(0, abs=1e-5)
    assert eig[1] == pytest.approx(0, abs=1e-9)  # pure double couple
