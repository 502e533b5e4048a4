"""The patched SKHASH grid search (scripts/skhash_gridsearch_fast.py) against SKHASH's own.

Both Fortran files are compiled here with f2py from the installed SKHASH's ``gridsearch.f``
and called on the same inputs: every output (number of planes, strike/dip/rake, normals,
slips, including gfortran's random pick of ``maxout`` planes) must be bit-identical, with
and without S/P ratios (the latter runs SKHASH's loop unchanged), for fractional and zero
weights and for events with more acceptable planes than ``maxout``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import skhash_gridsearch_fast as fast  # noqa: E402


def _source() -> Path:
    spec = importlib.util.find_spec("SKHASH")
    return Path(spec.origin).parent / "functions" / "gridsearch.f"


def _build(src_text: str, folder: Path):
    folder.mkdir()
    (folder / "gridsearch.f").write_text(src_text)
    r = subprocess.run([sys.executable, "-m", "numpy.f2py", "-c", "gridsearch.f", "-m", "gridsearch"],
                       cwd=folder, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    so = next(folder.glob("gridsearch*.so"))
    spec = importlib.util.spec_from_file_location("gridsearch", so)   # PyInit_gridsearch
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    if shutil.which("gfortran") is None:
        pytest.skip("gfortran is not installed: SKHASH's Fortran grid search cannot be built here "
                    "(make install installs it where it can; the pure-Python grid search runs instead)")
    text = _source().read_text()
    base = tmp_path_factory.mktemp("gridsearch")
    shipped, patched = _build(text, base / "shipped"), _build(fast.patch(text), base / "patched")
    # two libraries, not one loaded twice: only the patched one has the new loop's arrays
    assert shipped.__file__ != patched.__file__
    assert b"wmiss" in Path(patched.__file__).read_bytes()
    assert b"wmiss" not in Path(shipped.__file__).read_bytes()
    return shipped, patched


def _srand(seed: int) -> None:
    lib = ctypes.CDLL(ctypes.util.find_library("gfortran") or "libgfortran.so.5")
    lib._gfortran_srand.argtypes = [ctypes.POINTER(ctypes.c_int)]
    lib._gfortran_srand(ctypes.byref(ctypes.c_int(seed)))


def _call(mod, az, th, sp, pol, weight, nmc, maxout):
    n = len(pol)
    a = np.zeros((15000, 500), np.float32, order="F")
    t = np.zeros((15000, 500), np.float32, order="F")
    a[:n, :nmc], t[:n, :nmc] = az, th
    total = float(np.abs(weight).sum())
    _srand(1)   # gfortran's RAND picks maxout of more acceptable planes: same state for both
    nf, s, d, r, normals, slips = mod.focalamp_mc_wt(
        a, t, sp, pol, weight, nmc, 5, maxout, max(round(total * 0.005), 2), max(round(total * 0.01), 2),
        max(n * 0.15, 0.1), max(n * 0.3, 0.2), 0.0, n)
    return nf, s[:nf].copy(), d[:nf].copy(), r[:nf].copy(), normals[:, :nf].copy(), slips[:, :nf].copy()


def _case(rng, n, nmc, with_amplitudes, weights):
    az0, th0 = rng.random(n) * 360, rng.random(n) * 180
    az = az0[:, None] + rng.normal(0, 3, (n, nmc))
    th = th0[:, None] + rng.normal(0, 3, (n, nmc))
    # polarities of a double couple (strike 0, dip 90, rake 0: sign of sin 2az) with 10 % flipped
    sign = np.sign(np.sin(2 * np.radians(az0)) * np.sin(np.radians(th0)) ** 2)
    sign[sign == 0] = 1
    sign[rng.random(n) < 0.1] *= -1
    w = rng.choice([1.0, 0.5, 0.3, 0.0], n) if weights else np.ones(n)
    pol = (sign * (w != 0)).astype(np.int32)
    sp = rng.normal(0, 0.5, n) if with_amplitudes else np.full(n, -9.0)
    return az, th, sp, pol, w


@pytest.mark.parametrize("with_amplitudes", [False, True], ids=["no S/P (patched loop)", "S/P ratios (shipped loop)"])
def test_patched_grid_search_is_bit_identical_to_skhash(engines, with_amplitudes):
    shipped, patched = engines
    rng = np.random.default_rng(2024)
    cases = [(8, 30, 500, False), (25, 30, 500, True), (69, 30, 500, False), (40, 10, 20, True), (12, 5, 3, False)]
    solved = 0
    for n, nmc, maxout, weights in cases:
        args = _case(rng, n, nmc, with_amplitudes, weights)
        a = _call(shipped, *args, nmc, maxout)
        b = _call(patched, *args, nmc, maxout)
        assert a[0] == b[0]
        for x, y in zip(a[1:], b[1:]):
            assert x.tobytes() == y.tobytes()
        solved += a[0] > 0
    assert solved == len(cases)   # every case found planes: the comparison compared something


def test_patcher_refuses_a_grid_search_it_does_not_know(tmp_path):
    """Another SKHASH version's loop is not rewritten: exit 1, nothing written, so the build
    script compiles the file as shipped."""
    other = tmp_path / "gridsearch.f"
    other.write_text(_source().read_text().replace("do 420 irot=1,nrot", "do 420 irot=nrot,1,-1"))
    with pytest.raises(ValueError, match="anchor"):
        fast.patch(other.read_text())
    assert fast.main(["skhash_gridsearch_fast.py", str(other), str(tmp_path / "out.f")]) == 1
    assert not (tmp_path / "out.f").exists()


def test_installed_grid_search_is_the_patched_one():
    """make install builds the patched file; a stale build would be the slow loop."""
    if shutil.which("gfortran") is None:
        pytest.skip("gfortran is not installed: no Fortran grid search to check")
    r = subprocess.run([sys.executable, "-c", "import SKHASH, functions.gridsearch as g; print(g.__file__)"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    so = Path(r.stdout.strip())
    assert b"wmiss" in so.read_bytes(), f"{so} was built from SKHASH's file as shipped: run make fortran"
