"""Regression set: cnchash (PyPI 1.0.1, a numba port of HASH v1.2) against SKHASH.

The decision rule (issue): cnchash may be added beside SKHASH as a faster mechanism
engine only if, on this regression set, its preferred mechanisms are within 5 deg Kagan of
SKHASH's for >= 99 % of events and its quality class equals SKHASH's for >= 95 %.
SKHASH stays the reference engine. This script measures; it does not integrate anything.

Regression set (all inputs true-motion polarities, one per event and station):

* ``skhash_demo`` - the published 3-event ToC2ME SKHASH run (``<toc2me>/skhash_demo``, its
  ``IN/`` files read as ``tests/skhash_demo.py`` does, ``vz.north``, the ToC2ME settings of
  :data:`pipeline.mechanisms.skhash.DEFAULT_SETTINGS`); SKHASH is also checked against the
  published ``OUT/out.csv``;
* ``demo`` - N demo events with true polarities, built exactly as ``bench/bench_skhash.py``
  builds them (non-dead, non-nodal stations; ``max_agap`` 90; demo velocity model);
* ``real`` - the published picks (``picks/pol_hash_auto``) of the shared ToC2ME events with
  waveforms, at the SKHASH locations of their ``.pol.hash`` headers, ``vz.north`` (as
  ``tests/test_invert.py`` reproduces the published mechanisms).

Both engines get identical inputs and settings:

* SKHASH runs through :func:`pipeline.mechanisms.skhash.run_skhash_parallel` (Fortran grid
  search if built), one worker, so its times are sequential like cnchash's.
* ``rays`` comparison (the fair one for the grid searches): cnchash gets, per event, the
  stations, azimuths and takeoff angles SKHASH itself uses. They are computed in this
  process with SKHASH's own functions (``create_takeoff_table`` with SKHASH's default
  ``look_dep``/``look_del``/``nump`` and its velocity-model QC, ``lookup_takeoff``, its
  flat-earth distance/azimuth and ``delmax``), unrounded, for every event (also those
  SKHASH does not solve); for solved events they are checked against SKHASH's ``polinfo``
  output (rounded to 0.1 deg there). All location uncertainties are 0 in this set, so
  SKHASH's ``nmc`` trials all use the same rays and cnchash's ``run_hash`` (which repeats
  1-D rays over ``nmc`` trials) sees the same trial rays.
* ``own`` comparison (end to end): cnchash computing its own rays. Its velocity-model table
  (``cnchash.velocity.make_table_from_model`` / ``get_tts``) is measured first: in 1.0.1 it
  only fills the depth-0 column, so ``get_tts`` returns 999 for every source below the
  surface and cannot be used. The only working end-to-end path in cnchash is its driver's
  ``process_event`` (what ``run_hash_from_file`` / the CLI use): same flat-earth
  distance/azimuth, a straight-ray takeoff ``180 - atan2(dist, depth)`` (no velocity
  model) and 5-deg Box-Muller perturbations of azimuth and takeoff for trials 2..nmc
  (``np.random.seed(314159)``). That is what ``own`` runs.

Settings mapping (SKHASH control variable -> cnchash ``run_hash`` argument): ``dang`` 5
(SKHASH default) -> ``dang``; ``nmc``, ``maxout``, ``badfrac``, ``prob_max``, ``npolmin``,
``max_agap`` -> same names; ``cangle`` 45 and ``max_pgap`` 60 (SKHASH defaults) -> same
names; SKHASH's ``badmin`` 2 is hard-coded in cnchash; ``delmax`` and
``min_polarity_weight`` select the stations given to cnchash; ``ratmin``/``qbadfrac`` only
concern S/P ratios (none here). Polarity weight 1 -> cnchash ``p_qual`` 0 (impulsive).

Kagan angles: :func:`pipeline.mechanisms.focal.kagan_angle`. Times: SKHASH per event = its own
per-event "Runtime" log line (grid search + probability + misfit + output) and, for the
whole call, wall time / events (subprocess start, SKHASH import, lookup table, I/O
included); cnchash per event = the ``run_hash`` / ``process_event`` call, after a warm-up
call that pays the numba JIT compile (or the load of numba's on-disk cache), reported
separately.

    .venv/bin/python bench/compare_engines.py [--events 500] [--toc2me PATH] [--csv OUT.csv]
"""
from __future__ import annotations

import argparse
import ast
import math
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from pipeline.demo import scenario as demo  # noqa: E402
from pipeline.mechanisms import focal, skhash as skhash_runner  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
import bench_skhash  # noqa: E402  (this folder: the demo events the SKHASH benchmark times)
from skhash_demo import DEMO_IDS, demo_inputs  # noqa: E402  (tests/: the 3-event demo loader)

#: SKHASH defaults this comparison relies on (SKHASH 1.1.5, SKHASH.py p_dict) - checked at run time
SKHASH_DEFAULTS = {"dang": 5, "cangle": 45.0, "max_pgap": 60.0, "badmin": 2.0,
                   "look_dep": [0, 39, 3], "look_del": [0, 200, 2], "nump": 9000,
                   "nx0": 101, "nd0": 14, "output_angle_precision": 1, "delmin": 0.0}
QUALITIES = ["A", "B", "C", "D"]


def default_toc2me() -> Path:
    env = os.environ.get("TOC2ME_DIR")
    return Path(env) if env else ROOT.parent / "shared" / "toc2me"


# --------------------------------------------------------------------------- the sets

def skhash_demo_set(toc2me: Path) -> dict:
    """The published 3-event SKHASH run, read as tests/skhash_demo.py reads it."""
    d = toc2me / "skhash_demo"
    ev, pol, st, vz = demo_inputs(d)   # the same loader the SKHASH-demo tests use
    out = pd.read_csv(d / "OUT" / "out.csv")
    published = pd.DataFrame({"event_id": out["event_id"].map(DEMO_IDS), "strike": out["strike"],
                              "dip": out["dip"], "rake": out["rake"], "quality": out["quality"]})
    return {"name": "skhash_demo", "events": ev, "polarities": pol, "stations": st,
            "vmodel": skhash_runner.read_velocity_model(vz), "settings": {},
            "published": published}


def demo_set(n_events: int) -> dict:
    """N demo events with true polarities, as bench/bench_skhash.py builds them."""
    data = demo.generate()
    ev, pol, _ = bench_skhash.inputs(n_events, data)
    truth = data["truth_events"][["event_id", "strike", "dip", "rake"]]
    return {"name": "demo", "events": ev, "polarities": pol, "stations": data["stations"],
            "vmodel": skhash_runner.read_velocity_model(skhash_runner.DEMO_VELOCITY_MODEL),
            "settings": {"max_agap": 90}, "published": None,
            "truth": truth[truth["event_id"].isin(ev["event_id"])]}


def real_set(toc2me: Path) -> dict:
    """Published picks of the shared events with waveforms, at their SKHASH locations."""
    from pipeline.ingest import picks as ingest_picks, toc2me as ingest_toc2me
    from pipeline.mechanisms import invert
    from pipeline.rejects import Rejects

    tables = ingest_toc2me.load(toc2me)
    pol_all, loc = ingest_picks.load_picks(toc2me / "picks", tables["stations"], Rejects())
    with_wf = {p.name for p in (toc2me / "waveforms").iterdir() if p.is_dir()}
    chosen = invert.select_polarities(pol_all, "published")
    chosen = chosen[chosen["event_id"].isin(with_wf)]
    ev = invert._locations(tables["events"][tables["events"]["event_id"].isin(chosen["event_id"])], loc)
    pub = tables["mechanisms"]
    pub = pub[(pub["source"] == "published") & pub["event_id"].isin(ev["event_id"])].drop_duplicates("event_id")
    return {"name": "real", "events": ev, "polarities": chosen[["event_id", "network", "station", "polarity"]],
            "stations": tables["stations"],
            "vmodel": skhash_runner.read_velocity_model(toc2me / "skhash_demo" / "vz.north"),
            "settings": {}, "published": pub[["event_id", "strike", "dip", "rake", "quality"]]}


# --------------------------------------------------------------------------- SKHASH

def run_skhash(s: dict) -> dict:
    t0 = time.perf_counter()
    res = skhash_runner.run_skhash_parallel(s["events"], s["polarities"], s["stations"], s["vmodel"],
                                            s["settings"], workers=1)
    wall = time.perf_counter() - t0
    runtimes = [float(x) for x in re.findall(r"Runtime: ([0-9.]+) sec", res.log)]
    pref = res.preferred[["event_id", "strike", "dip", "rake", "quality"]].copy()
    return {"result": res, "preferred": pref, "wall_s": wall, "event_runtimes": runtimes}


class SkhashRays:
    """The rays SKHASH uses, computed with SKHASH's own functions in this process."""

    def __init__(self):
        import SKHASH  # noqa: F401  (puts its package folder on sys.path)
        import SKHASH.SKHASH as sk_main
        import functions.fun as fun
        self.fun = fun
        src = Path(sk_main.__file__).read_text()
        for k, v in SKHASH_DEFAULTS.items():  # the SKHASH defaults this script reproduces
            m = re.search(r"'%s':\s*(\[[^\]]*\]|[^,#\n]+)," % re.escape(k), src)
            got = ast.literal_eval(m.group(1).strip()) if m else None
            if got is None or np.any(np.asarray(got, float) != np.asarray(v, float)):
                raise RuntimeError(f"SKHASH default {k} is {got!r}, this script assumes {v!r}")
        self._tables = {}

    def table(self, vmodel: pd.DataFrame):
        key = tuple(map(tuple, vmodel.to_numpy()))
        if key not in self._tables:
            d = vmodel[["depth_km", "vp_km_s"]].to_numpy(dtype=float, copy=True)
            # SKHASH's velocity-model QC (fun.create_lookup_table)
            d[:, 0] = np.round(d[:, 0], 5)
            d = np.delete(d, np.where(np.diff(d[:, 0]) == 0)[0], axis=0)
            d = np.delete(d, np.where(np.diff(d[:, 1]) <= 0)[0] + 1, axis=0)
            ld, lx = SKHASH_DEFAULTS["look_dep"], SKHASH_DEFAULTS["look_del"]
            deptab = np.arange(ld[0], ld[1] + ld[2], ld[2])
            delttab = np.arange(lx[0], lx[1] + lx[2], lx[2])
            tab = self.fun.create_takeoff_table(d, deptab, delttab, SKHASH_DEFAULTS["nump"], SKHASH_DEFAULTS["nx0"],
                                                SKHASH_DEFAULTS["nd0"], SKHASH_DEFAULTS["output_angle_precision"])
            self._tables[key] = (tab[:, :, np.newaxis], deptab, delttab)
        return self._tables[key]

    def rays(self, s: dict) -> dict:
        """event_id -> DataFrame(network, station, polarity, weight, dist_km, azimuth, takeoff)."""
        settings = skhash_runner._merge_settings(s["settings"])
        ev, pol, st, _, _ = skhash_runner._prepare(s["events"], s["polarities"], s["stations"], settings)
        if (ev["horz_uncert_km"] != 0).any() or (ev["vert_uncert_km"] != 0).any():
            raise RuntimeError("this comparison assumes zero location uncertainties (identical nmc trials)")
        table, deptab, delttab = self.table(s["vmodel"])
        ld, lx = SKHASH_DEFAULTS["look_dep"], SKHASH_DEFAULTS["look_del"]
        stx = st.set_index(["network", "station"])[["lat", "lon"]]
        out = {}
        for e in ev.itertuples(index=False):
            p = pol[pol["event_id"] == e.event_id]
            sl = stx.loc[list(zip(p["network"], p["station"]))]
            aspect = math.cos(math.radians(e.lat))
            dx = (sl["lon"].to_numpy() - e.lon) * 111.2 * aspect
            dy = (sl["lat"].to_numpy() - e.lat) * 111.2
            dist = np.sqrt(dx ** 2 + dy ** 2)
            az = 90.0 - np.rad2deg(np.arctan2(dy, dx))
            az[az < 0] += 360
            dep = min(max(float(e.depth_km), ld[0]), ld[1] - 0.01)
            d2 = np.clip(dist, delttab[0], delttab[-1])
            tko = self.fun.lookup_takeoff(table, np.full((len(d2), 1), dep), d2[:, None].copy(), ld, lx,
                                          deptab, delttab)[:, 0]
            keep = (dist <= float(settings["delmax"])) & (dist >= SKHASH_DEFAULTS["delmin"])
            out[e.event_id] = pd.DataFrame({
                "network": p["network"].to_numpy(), "station": p["station"].to_numpy(),
                "polarity": np.sign(p["polarity"].to_numpy()).astype(int),
                "weight": p["weight"].to_numpy(dtype=float), "dist_km": dist, "azimuth": az, "takeoff": tko,
            })[keep].reset_index(drop=True)
        return out


def check_rays(rays: dict, polinfo: pd.DataFrame) -> dict:
    """Our SKHASH rays against SKHASH's polinfo output (rounded there to 0.1 deg)."""
    n_ev = n_set = 0
    dmax_t = dmax_a = 0.0
    for eid, g in polinfo.groupby("event_id"):
        n_ev += 1
        r = rays[eid].set_index(["network", "station"])
        gi = g.set_index(["network", "station"])
        if set(r.index) != set(gi.index):
            n_set += 1
            continue
        r = r.loc[gi.index]
        dmax_t = max(dmax_t, float(np.abs(r["takeoff"].to_numpy() - gi["takeoff"].to_numpy()).max()))
        da = np.abs((r["azimuth"].to_numpy() - gi["azimuth"].to_numpy() + 180) % 360 - 180)
        dmax_a = max(dmax_a, float(da.max()))
    return {"events": n_ev, "station_set_mismatch": n_set, "max_takeoff_diff": dmax_t, "max_azimuth_diff": dmax_a}


# --------------------------------------------------------------------------- cnchash

def cnchash_kwargs(settings: dict) -> dict:
    s = skhash_runner._merge_settings(settings)
    return {"dang": float(SKHASH_DEFAULTS["dang"]), "nmc": int(s["nmc"]), "maxout": int(s["maxout"]),
            "badfrac": float(s["badfrac"]), "cangle": float(SKHASH_DEFAULTS["cangle"]),
            "prob_max": float(s["prob_max"]), "npolmin": int(s["npolmin"]), "max_agap": float(s["max_agap"]),
            "max_pgap": float(SKHASH_DEFAULTS["max_pgap"])}


def _preferred(res: dict) -> tuple:
    """cnchash run_hash / process_event output -> (strike, dip, rake, quality) of the preferred
    (first) solution; None when not solved."""
    if not res.get("success"):
        return None
    q = res["quality"]
    q = q[0] if isinstance(q, (list, tuple)) else q
    return (float(np.atleast_1d(res["strike_avg"])[0]), float(np.atleast_1d(res["dip_avg"])[0]),
            float(np.atleast_1d(res["rake_avg"])[0]), str(q))


def run_cnchash_rays(rays: dict, kw: dict, planes: dict | None = None) -> tuple[pd.DataFrame, list]:
    """cnchash.run_hash on the given rays; ``planes`` (if a dict) receives each solved event's
    acceptable planes (fault normals, slips)."""
    import cnchash
    rows, times = [], []
    for eid, r in rays.items():
        qual = np.where(r["weight"].to_numpy() >= 1.0, 0, 1)
        t0 = time.perf_counter()
        res = cnchash.run_hash(r["azimuth"].to_numpy(float), r["takeoff"].to_numpy(float),
                               r["polarity"].to_numpy(int), qual, num_threads=1, **kw)
        times.append(time.perf_counter() - t0)
        pref = _preferred(res)
        if planes is not None and pref is not None:
            planes[eid] = (res["faults"], res["slips"])
        rows.append((eid, *(pref or (np.nan,) * 3 + (None,)), res.get("quality") if pref is None else None,
                     int(res.get("nout2", 0)), int(res.get("nmult", 0))))
    df = pd.DataFrame(rows, columns=["event_id", "strike", "dip", "rake", "quality", "fail_code", "n_acceptable", "n_solutions"])
    return df, times


def run_cnchash_own(s: dict, kw: dict) -> tuple[pd.DataFrame, list]:
    """cnchash end to end: its driver's process_event (own takeoffs and trial perturbations)."""
    from cnchash import driver
    settings = skhash_runner._merge_settings(s["settings"])
    ev, pol, st, _, _ = skhash_runner._prepare(s["events"], s["polarities"], s["stations"], settings)
    byname = {f"{n}.{c}": (float(a), float(o), float(z)) for n, c, a, o, z in
              st[["network", "station", "lat", "lon", "elevation_m"]].itertuples(index=False)}
    stations = {"_byname": byname}
    params = dict(kw, delmax=float(settings["delmax"]))
    rows, times = [], []
    for e in ev.itertuples(index=False):
        p = pol[pol["event_id"] == e.event_id]
        t = pd.Timestamp(e.time)
        event = {"lat": float(e.lat), "lon": float(e.lon), "depth": float(e.depth_km),
                 "year": t.year, "month": t.month, "day": t.day,
                 "stations": [{"name": f"{n}.{c}", "polarity": "U" if v > 0 else "D",
                               "onset": "I" if w >= 1.0 else "E"}
                              for n, c, v, w in p[["network", "station", "polarity", "weight"]].itertuples(index=False)]}
        t0 = time.perf_counter()
        res = driver.process_event(event, stations, {}, params)
        times.append(time.perf_counter() - t0)
        pref = _preferred(res)
        rows.append((e.event_id, *(pref or (np.nan,) * 3 + (None,)), res.get("quality") if pref is None else None,
                     int(res.get("nout2", 0)), int(res.get("nmult", 0))))
    df = pd.DataFrame(rows, columns=["event_id", "strike", "dip", "rake", "quality", "fail_code", "n_acceptable", "n_solutions"])
    return df, times


def cnchash_table_check(vmodel: pd.DataFrame, depth_km: float) -> str:
    """How much of cnchash's own takeoff table is usable (SKHASH's table grid)."""
    from cnchash import velocity
    ld, lx = SKHASH_DEFAULTS["look_dep"], SKHASH_DEFAULTS["look_del"]
    params = {"del1": float(lx[0]), "del2": float(lx[1]), "del3": float(lx[2]), "dep1": float(ld[0]),
              "dep2": float(ld[1]), "dep3": float(ld[2]), "pmin": 0.0, "nump": SKHASH_DEFAULTS["nump"]}
    t0 = time.perf_counter()
    td = velocity.make_table_from_model(vmodel["depth_km"].to_numpy(float), vmodel["vp_km_s"].to_numpy(float), params)
    dt = time.perf_counter() - t0
    tab = td["table"]
    valid = (tab > 0) & (tab < 999)
    cols = [f"{d:g}" for d, ok in zip(td["deptab"], valid.any(axis=0)) if ok]
    velocity._VELOCITY_TABLES[0] = td
    got = [velocity.get_tts(0, x, depth_km)[0] for x in (1.0, 3.0, 5.0, 10.0)]
    return (f"{int(valid.sum())} of {tab.size} entries valid (depth columns with any: {cols or 'none'}; "
            f"built in {dt:.1f} s); get_tts at {depth_km:.2f} km depth, 1/3/5/10 km: {got}")


# --------------------------------------------------------------------------- comparison

def compare(sk: pd.DataFrame, cn: pd.DataFrame, all_ids) -> pd.DataFrame:
    df = pd.DataFrame({"event_id": sorted(all_ids)})
    df = df.merge(sk.rename(columns=lambda c: c if c == "event_id" else f"{c}_sk"), on="event_id", how="left")
    df = df.merge(cn.rename(columns=lambda c: c if c == "event_id" else f"{c}_cn"), on="event_id", how="left")
    df["solved_sk"] = df["strike_sk"].notna()
    df["solved_cn"] = df["strike_cn"].notna()
    both = df["solved_sk"] & df["solved_cn"]
    df["kagan"] = np.nan
    if both.any():
        b = df[both]
        df.loc[both, "kagan"] = focal.kagan_angle(
            (b["strike_sk"].to_numpy(float), b["dip_sk"].to_numpy(float), b["rake_sk"].to_numpy(float)),
            (b["strike_cn"].to_numpy(float), b["dip_cn"].to_numpy(float), b["rake_cn"].to_numpy(float)))
    df["quality_match"] = both & (df["quality_sk"] == df["quality_cn"])
    return df


def summarize(df: pd.DataFrame) -> dict:
    both = df["solved_sk"] & df["solved_cn"]
    union = df["solved_sk"] | df["solved_cn"]
    k = df.loc[both, "kagan"]
    n_union = int(union.sum())
    return {
        "events": len(df), "solved_sk": int(df["solved_sk"].sum()), "solved_cn": int(df["solved_cn"].sum()),
        "solved_both": int(both.sum()), "only_sk": int((df["solved_sk"] & ~df["solved_cn"]).sum()),
        "only_cn": int((~df["solved_sk"] & df["solved_cn"]).sum()), "solved_any": n_union,
        # rule shares: over events solved by either engine (solved by one only = disagreement)
        "kagan_le5_any": float((k <= 5).sum() / n_union) if n_union else float("nan"),
        "kagan_le5_both": float((k <= 5).mean()) if len(k) else float("nan"),
        "kagan_median": float(k.median()) if len(k) else float("nan"),
        "kagan_p95": float(k.quantile(0.95)) if len(k) else float("nan"),
        "kagan_max": float(k.max()) if len(k) else float("nan"),
        "quality_any": float(df["quality_match"].sum() / n_union) if n_union else float("nan"),
        "quality_both": float(df.loc[both, "quality_match"].mean()) if both.any() else float("nan"),
    }


def fmt_row(name: str, s: dict, extra: str = "") -> str:
    pct = lambda x: "n/a" if x != x else f"{100 * x:.1f} %"  # noqa: E731
    num = lambda x: "n/a" if x != x else f"{x:.1f}"  # noqa: E731
    return (f"| {name} | {s['events']} | {s['solved_sk']} | {s['solved_cn']} | {s['only_sk']} / {s['only_cn']} | "
            f"{pct(s['kagan_le5_any'])} ({pct(s['kagan_le5_both'])}) | {num(s['kagan_median'])} / "
            f"{num(s['kagan_p95'])} / {num(s['kagan_max'])} | {pct(s['quality_any'])} ({pct(s['quality_both'])}) |{extra}")


HEADER = ("| set | events | solved SKHASH | solved cnchash | only SKHASH / only cnchash | "
          "Kagan <= 5 deg: of solved-by-either (of solved-by-both) | Kagan median / p95 / max (deg) | "
          "same quality: of solved-by-either (of solved-by-both) |\n|---|---|---|---|---|---|---|---|")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=500, help="demo events (default 500)")
    ap.add_argument("--toc2me", type=Path, default=default_toc2me(), help="shared ToC2ME folder")
    ap.add_argument("--csv", type=Path, default=None, help="write the per-event comparison here")
    args = ap.parse_args()

    try:
        import cnchash
        import numba
    except ImportError as exc:
        print(f"cnchash is not installed ({exc}); .venv/bin/pip install cnchash==1.0.1 "
              "(adds numba and llvmlite; numpy, pandas and pyarrow stay as pinned)")
        return 2
    cache_dir = Path(cnchash.__file__).parent / "__pycache__"
    kernels = ("core._find_best_mechanisms_all_trials", "uncertainty.mech_probability_numba")
    cached = all(any(cache_dir.glob(f"{k}-*.nbi")) for k in kernels) if cache_dir.is_dir() else False
    print(f"cnchash {cnchash.__version__} (numba {numba.__version__}), numpy {np.__version__}, "
          f"SKHASH engine: {'fortran' if skhash_runner.fortran_available() else 'python'}, "
          f"numba on-disk cache present at start: {cached}", flush=True)

    t0 = time.perf_counter()
    sets = [skhash_demo_set(args.toc2me), demo_set(args.events), real_set(args.toc2me)]
    print(f"sets built in {time.perf_counter() - t0:.1f} s: " +
          ", ".join(f"{s['name']} {s['events']['event_id'].nunique()} events / {len(s['polarities'])} polarities"
                    for s in sets), flush=True)

    skr = SkhashRays()
    # numba warm-up (JIT compile or on-disk cache load), on the first event of the first set
    first = sets[0]
    r0 = next(iter(skr.rays(first).values()))
    t0 = time.perf_counter()
    cnchash.run_hash(r0["azimuth"].to_numpy(float), r0["takeoff"].to_numpy(float), r0["polarity"].to_numpy(int),
                     np.zeros(len(r0), int), num_threads=1, **cnchash_kwargs(first["settings"]))
    warm = time.perf_counter() - t0
    print(f"cnchash warm-up (first run_hash call: numba {'cache load' if cached else 'JIT compile'}): {warm:.2f} s",
          flush=True)

    per_event, lines_rays, lines_own, lines_time, notes = [], [], [], [], []
    for s in sets:
        name = s["name"]
        ids = sorted(s["events"]["event_id"].astype(str).unique())
        kw = cnchash_kwargs(s["settings"])
        sk = run_skhash(s)
        res = sk["result"]
        print(f"[{name}] SKHASH ({res.engine}): solved {len(sk['preferred'])} of {len(ids)} in {sk['wall_s']:.1f} s",
              flush=True)
        if s["published"] is not None:
            pb = compare(s["published"], sk["preferred"], s["published"]["event_id"])
            notes.append(f"{name}: SKHASH via run_skhash_parallel vs published mechanisms: max Kagan "
                         f"{pb['kagan'].max():.2f} deg, same quality {int(pb['quality_match'].sum())}/{len(pb)}")
        rays = skr.rays(s)
        chk = check_rays(rays, res.polinfo)
        notes.append(f"{name}: our SKHASH rays vs SKHASH polinfo on {chk['events']} solved events: station-set "
                     f"mismatches {chk['station_set_mismatch']}, max |takeoff diff| {chk['max_takeoff_diff']:.3f} deg, "
                     f"max |azimuth diff| {chk['max_azimuth_diff']:.3f} deg (polinfo is rounded to 0.1)")
        planes = {}
        cn, cn_t = run_cnchash_rays(rays, kw, planes)
        cmp_r = compare(sk["preferred"], cn, ids)
        print(f"[{name}] cnchash rays: solved {int(cmp_r['solved_cn'].sum())} in {sum(cn_t):.2f} s", flush=True)
        own, own_t = run_cnchash_own(s, kw)
        cmp_o = compare(sk["preferred"], own, ids)
        print(f"[{name}] cnchash own (process_event): solved {int(cmp_o['solved_cn'].sum())} in {sum(own_t):.2f} s",
              flush=True)
        depth = float(s["events"]["depth_km"].median())
        notes.append(f"{name}: cnchash velocity table (make_table_from_model, SKHASH's grid): "
                     + cnchash_table_check(s["vmodel"], depth))
        trunc = cmp_r["n_acceptable_cn"] >= kw["maxout"]
        if trunc.any():
            kt = cmp_r.loc[trunc, "kagan"]
            notes.append(f"{name}: {int(trunc.sum())} events with >= maxout ({kw['maxout']}) acceptable planes "
                         f"(SKHASH keeps a random subset, cnchash the first {kw['maxout']} in grid order): Kagan "
                         f"median {kt.median():.1f}, max {kt.max():.1f} deg, same quality "
                         f"{int(cmp_r.loc[trunc, 'quality_match'].sum())}/{int(trunc.sum())}")
        else:
            notes.append(f"{name}: no event reached maxout ({kw['maxout']}) acceptable planes in cnchash")
        dis = cmp_r[cmp_r["kagan"] > 5]
        if len(dis):  # where does the difference come from: SKHASH's averaging on cnchash's planes
            k = []
            for r in dis.itertuples(index=False):
                f, sl = planes[r.event_id]
                m = skr.fun.mech_probability(f, sl, kw["cangle"], kw["prob_max"])
                k.append(float(focal.kagan_angle((r.strike_sk, r.dip_sk, r.rake_sk),
                                                 (m["str_avg"][0], m["dip_avg"][0], m["rak_avg"][0]))))
            k = np.array(k)
            notes.append(f"{name}: on the {len(dis)} events > 5 deg apart, SKHASH's own mech_probability applied to "
                         f"cnchash's acceptable planes gives SKHASH's preferred mechanism within "
                         f"{np.median(k):.1f} deg (median; max {k.max():.1f}, <= 1 deg for {int((k <= 1).sum())}): the "
                         f"grid searches agree, cnchash's averaging (uncertainty.mech_prob) differs")
        if s.get("truth") is not None:  # demo only: which engine is nearer the true mechanism
            tr = s["truth"].set_index("event_id")
            b = cmp_r[cmp_r["solved_sk"] & cmp_r["solved_cn"]].join(tr, on="event_id")
            true_sdr = (b["strike"].to_numpy(float), b["dip"].to_numpy(float), b["rake"].to_numpy(float))
            k_sk = focal.kagan_angle(true_sdr, (b["strike_sk"].to_numpy(float), b["dip_sk"].to_numpy(float),
                                                b["rake_sk"].to_numpy(float)))
            k_cn = focal.kagan_angle(true_sdr, (b["strike_cn"].to_numpy(float), b["dip_cn"].to_numpy(float),
                                                b["rake_cn"].to_numpy(float)))
            dis = (b["kagan"] > 5).to_numpy()
            notes.append(f"{name}: Kagan to the true mechanism, rays mode, {len(b)} events solved by both: SKHASH "
                         f"median {np.median(k_sk):.1f} deg, cnchash median {np.median(k_cn):.1f} deg; on the "
                         f"{int(dis.sum())} events where the engines differ by > 5 deg: SKHASH median "
                         f"{np.median(k_sk[dis]) if dis.any() else float('nan'):.1f}, cnchash median "
                         f"{np.median(k_cn[dis]) if dis.any() else float('nan'):.1f} deg")
        neither = cmp_r[~cmp_r["solved_sk"] & ~cmp_r["solved_cn"]]
        if len(neither):
            why = res.unsolved.set_index("event_id")["reason"].reindex(neither["event_id"])
            why = why.str.replace(r"\(\d+(\.\d+)?\)", "(x)", regex=True)
            notes.append(f"{name}: {len(neither)} events solved by neither; cnchash codes "
                         f"{neither['fail_code_cn'].value_counts().to_dict()}, SKHASH reasons {why.value_counts().to_dict()}")
        per_event.append(cmp_r.assign(set=name, mode="rays"))
        per_event.append(cmp_o.assign(set=name, mode="own"))
        lines_rays.append((name, cmp_r))
        lines_own.append((name, cmp_o))
        sk_rt = np.array(sk["event_runtimes"])
        lines_time.append((name, len(ids), sk["wall_s"], sk_rt, np.array(cn_t), np.array(own_t)))

    allr = pd.concat([d for _, d in lines_rays], ignore_index=True)
    allo = pd.concat([d for _, d in lines_own], ignore_index=True)
    print("\n## cnchash given SKHASH's rays (grid search + averaging + quality compared)\n")
    print(HEADER)
    for name, d in lines_rays:
        print(fmt_row(name, summarize(d)))
    sr = summarize(allr)
    print(fmt_row("**all**", sr))
    print("\n## cnchash end to end (its driver's process_event: own takeoffs and trial perturbations)\n")
    print(HEADER)
    for name, d in lines_own:
        print(fmt_row(name, summarize(d)))
    print(fmt_row("**all**", summarize(allo)))

    print("\n## quality classes, rays mode, events solved by both (rows SKHASH, columns cnchash)\n")
    both = allr[allr["solved_sk"] & allr["solved_cn"]]
    ct = pd.crosstab(both["quality_sk"], both["quality_cn"]).reindex(index=QUALITIES, columns=QUALITIES, fill_value=0)
    print(ct.to_string())

    print("\n## time per event (same events, this process; SKHASH 1 worker, cnchash 1 thread)\n")
    print("| set | events | SKHASH per-event Runtime (mean, s) | SKHASH wall / event incl. start-up (s) | "
          "cnchash run_hash (mean, s) | ratio cnchash/SKHASH (Runtime) | ratio cnchash/SKHASH (wall) | "
          "cnchash process_event (mean, s) |\n|---|---|---|---|---|---|---|---|")
    tot = [0, 0.0, 0.0, 0.0, 0.0, 0]
    for name, n, wall, rt, ct_, ot in lines_time:
        skm = rt.mean() if len(rt) else float("nan")
        print(f"| {name} | {n} | {skm:.4f} (n={len(rt)}) | {wall / n:.4f} | {ct_.mean():.4f} | "
              f"{ct_.mean() / skm:.2f} | {ct_.mean() / (wall / n):.2f} | {ot.mean():.4f} |")
        tot[0] += n; tot[1] += wall; tot[2] += rt.sum(); tot[3] += ct_.sum(); tot[4] += ot.sum(); tot[5] += len(rt)
    n = tot[0]
    print(f"| **all** | {n} | {tot[2] / tot[5]:.4f} (n={tot[5]}) | {tot[1] / n:.4f} | {tot[3] / n:.4f} | "
          f"{(tot[3] / n) / (tot[2] / tot[5]):.2f} | {(tot[3] / n) / (tot[1] / n):.2f} | {tot[4] / n:.4f} |")
    print(f"\ncnchash numba warm-up, once per process: {warm:.2f} s "
          f"({'on-disk cache load' if cached else 'JIT compile, cache written'})")

    print("\n## checks and notes\n")
    for line in notes:
        print(f"- {line}")

    k_ok = sr["kagan_le5_any"] >= 0.99
    q_ok = sr["quality_any"] >= 0.95
    print(f"\nRULE (rays mode, all sets, shares of events solved by either engine): Kagan <= 5 deg "
          f"{100 * sr['kagan_le5_any']:.1f} % (need >= 99 %: {'pass' if k_ok else 'FAIL'}), same quality "
          f"{100 * sr['quality_any']:.1f} % (need >= 95 %: {'pass' if q_ok else 'FAIL'}) -> cnchash "
          f"{'QUALIFIES' if (k_ok and q_ok) else 'does NOT qualify'}"
          + ("" if args.events >= 500 else f" [only {args.events} demo events: the rule needs >= 500]"))

    if args.csv:
        pd.concat(per_event, ignore_index=True).to_csv(args.csv, index=False)
        print(f"per-event comparison written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
