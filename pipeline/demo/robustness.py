"""What a wrong velocity model costs: demo mechanisms when the rays that made the data are not
the rays the inversion assumes.

The demo's SKHASH checks are an *inverse crime*: :data:`NOMINAL_MODEL`
(:data:`pipeline.mechanisms.skhash.DEMO_VELOCITY_MODEL`) makes the synthetic rays and also
inverts them. This study renders the same demo events twice:

* **matched**: waveforms from the nominal model, no statics - exactly the demo build's
  synthetic traces (:func:`pipeline.demo.waveforms.generate_waveforms` with its defaults);
* **perturbed**: waveforms whose rays (takeoff, incidence, travel time, attenuation) come from
  :func:`perturbed_model` - by default Vp x 0.95 at the nodes shallower than 3 km (between
  the sources and the stations), Vp x 1.05 at the nodes from 3 km down (around and below the
  sources, at 3.0-3.6 km), and every node below the surface 0.2 km deeper - plus station
  statics (:func:`station_statics`: one P-time shift per station, normal with sigma 8 ms,
  seeded, clipped at 3 sigma) that move the onset away from the pick the picker's window is
  centred on;

then picks both with the real picker(s) (:func:`pipeline.picking.load_picker`, vertical
windows, as the build does: :func:`pick`) and inverts **both with the nominal model**
through :func:`pipeline.mechanisms.invert.invert` (the build's input assembly and SKHASH
settings). Why this perturbation and not a uniform +-5 %: scaling every velocity by the same
factor leaves every ray path, hence every takeoff angle, unchanged (Snell: ``p v`` is
invariant; only travel times scale) - it would not perturb the polarity geometry at all.
Changing the velocity *gradient* between the sources and the surface and moving the
interfaces is what changes takeoff angles.

Conventions: polarity = **true** vertical ground motion (+1 up = compression), station
reversal applied at picking; takeoff angles here are from the **downward** vertical
(0 = straight down, > 90 up-going), SKHASH's own are from the upward vertical; azimuths
source -> station, degrees from north; Kagan angles in degrees (0-120); statics in seconds.

Outputs of :func:`run_study` (also the JSON of ``python -m pipeline robustness``):
``events`` (per case x picker x event, :data:`EVENT_COLUMNS`: solved or why not, SKHASH
quality, Kagan angle to the truth, the mechanism, polarities inverted and how many are
wrong) and what :func:`summarise` makes of them: ``summary`` (tidy: one row per case x
picker x quality class ``A``-``D`` and ``all``: ``n``, median and 90th percentile Kagan angle
to the true mechanism, share within 20 deg with its 95 % Wilson interval), ``polarity`` (per
case x picker: picked polarities used for the inversion - polarity != 0, SNR > 2 -, how many
differ from the true polarity, share and Wilson interval), ``unsolved`` (per case x picker:
events SKHASH did not solve, counted by reason); ``paired`` (:func:`paired_change`: per-event
change on the events solved in both cases), ``geometry`` (how much the perturbation moved
takeoffs and P times) and ``settings`` (everything needed to reproduce it: seeds, the
perturbation, CNN weights sha256, SKHASH engine).

Every stage is per event and seeded per event (waveform draws from the seed and the event id,
station draws from the seed and the station code, SKHASH re-seeded per event), so the study
on a few of the 200 events (``event_ids``) gives the same per-event rows as the full run:
``tests/test_robustness.py`` re-makes part of the committed :data:`RECORD` that way.
``n_events`` = N is *not* a prefix of the 200: it is another seeded choice of N events.
"""
from __future__ import annotations

import json
import logging
import time
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.demo import scenario, waveforms as dw
from pipeline.mechanisms import focal, invert as inv
from pipeline.mechanisms.skhash import DEMO_VELOCITY_MODEL
# the stored study and how it is read (numpy/pandas only: the model page imports that module,
# not this one, whose scenario and waveform imports cost ~0.3 s on a first page load)
from pipeline.demo.robustness_record import (
    CASES, EVENT_COLUMNS, RECORD, RESULT_FILE, mechanisms_of, paired_change, read, read_for_page,
)

#: re-exported from :mod:`pipeline.demo.robustness_record` (callers use ``robustness.read`` etc.)
RECORD_API = (read, read_for_page)

log = logging.getLogger(__name__)

NOMINAL_MODEL = DEMO_VELOCITY_MODEL
QUALITIES = ("A", "B", "C", "D")
WITHIN_DEG = 20.0
DEFAULTS = {
    "events": 200, "seed": dw.DEFAULT_SEED, "scenario_seed": scenario.DEFAULT_SEED,
    "shallow_factor": 0.95, "deep_factor": 1.05, "split_km": 3.0, "depth_shift_km": 0.2,
    "statics_sigma_s": 0.008, "statics_clip_sigma": 3.0, "pickers": ("cnn",),
}


# --------------------------------------------------------------------------- the perturbation

def perturbed_model(model: pd.DataFrame | None = None, shallow_factor: float = 0.95, deep_factor: float = 1.05,
                    split_km: float = 3.0, depth_shift_km: float = 0.2) -> pd.DataFrame:
    """A ``depth_km, vp_km_s`` model from ``model`` (default :data:`NOMINAL_MODEL`): Vp of the
    nodes shallower than ``split_km`` (nominal depth) times ``shallow_factor``, of the others
    times ``deep_factor``; then every node deeper than 0 moved down by ``depth_shift_km``
    (the surface node stays at 0). Raises ValueError when the result's velocities do not
    increase with depth (SKHASH-convention tracing would silently drop such nodes)."""
    m = (NOMINAL_MODEL if model is None else model)[["depth_km", "vp_km_s"]].astype(float).reset_index(drop=True)
    z, v = m["depth_km"].to_numpy(), m["vp_km_s"].to_numpy()
    v = np.where(z < split_km, v * shallow_factor, v * deep_factor)
    z = np.where(z > 0, z + depth_shift_km, z)
    if np.any(np.diff(v) <= 0) or np.any(np.diff(z) <= 0):
        raise ValueError("perturbed model: depths and velocities must increase with depth")
    return pd.DataFrame({"depth_km": z, "vp_km_s": v})


def station_statics(stations: pd.DataFrame, sigma_s: float = 0.008, seed: int = dw.DEFAULT_SEED,
                    clip_sigma: float = 3.0) -> pd.DataFrame:
    """One P static per station (s; + = later than the model): normal(0, ``sigma_s``), clipped
    at +-``clip_sigma`` sigma, drawn from ``seed`` and the station code (so a station's static
    does not depend on the others). Columns ``network, station, static_s``."""
    vals = []
    for net, sta in zip(stations["network"].astype(str), stations["station"].astype(str)):
        r = np.random.default_rng([int(seed), 11, zlib.crc32(f"{net}.{sta}".encode())])
        vals.append(float(np.clip(r.normal(0.0, 1.0), -clip_sigma, clip_sigma)) * sigma_s)
    return pd.DataFrame({"network": stations["network"].astype(str).to_numpy(),
                         "station": stations["station"].astype(str).to_numpy(), "static_s": vals})


# --------------------------------------------------------------------------- stages

def render(data: dict, n_events: int | None, seed: int, velocity_model=None, statics=None, event_ids=None):
    """(meta, windows) of the vertical P windows - :func:`pipeline.demo.waveforms.generate_waveforms`
    with this velocity model and statics."""
    return dw.generate_waveforms(data, seed, n_events, velocity_model, event_ids=event_ids, components=("Z",),
                                 statics=statics)


def pick(meta: pd.DataFrame, windows: np.ndarray, data: dict, pickers: dict) -> pd.DataFrame:
    """Polarity rows of ``pickers`` (name -> picker) on the windows, as the demo build makes
    them (``pipeline.build._demo_polarities``: window SNR, pick time = origin + ``p_time_s``)."""
    from pipeline import picking
    origin = data["events"].set_index("event_id")["time"]
    p_time = pd.to_datetime(meta["event_id"].map(origin), utc=True) + pd.to_timedelta(meta["p_time_s"], unit="s")
    m = meta.assign(location="", p_source="synthetic", snr=picking.windows_snr(windows), p_time=p_time)
    return picking.pick_windows(m, windows, data["stations"], pickers)


def true_mechanisms(meta: pd.DataFrame) -> pd.DataFrame:
    """``event_id, strike, dip, rake`` of the true mechanisms (from the waveform meta)."""
    return meta.drop_duplicates("event_id")[["event_id", "strike", "dip", "rake"]].reset_index(drop=True)


def invert_nominal(data: dict, pol: pd.DataFrame, picker: str, truth: pd.DataFrame, workers: int | None = None,
                   use_fortran: bool | None = None) -> dict[str, pd.DataFrame]:
    """:func:`pipeline.mechanisms.invert.invert` of one picker's polarities with the
    **nominal** model and the build's settings; ``mechanisms`` gains ``truth_kagan`` (deg)."""
    ids = pol["event_id"].unique()
    events = data["events"][data["events"]["event_id"].isin(ids)]
    published = data["mechanisms"][data["mechanisms"]["event_id"].isin(ids)]
    out = inv.invert(events, pol, data["stations"], NOMINAL_MODEL, picks=picker,
                     published=published if len(published) else None, workers=workers, use_fortran=use_fortran)
    mech = out["mechanisms"]
    if len(mech):
        t = truth.set_index("event_id").loc[mech["event_id"]]
        mech = mech.assign(truth_kagan=focal.kagan_angle(
            tuple(mech[c].to_numpy(float) for c in ("strike", "dip", "rake")),
            tuple(t[c].to_numpy(float) for c in ("strike", "dip", "rake"))))
    else:
        mech = mech.assign(truth_kagan=pd.Series(dtype=float))
    out["mechanisms"] = mech.sort_values("event_id").reset_index(drop=True)
    return out


# --------------------------------------------------------------------------- statistics

def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """95 % Wilson score interval of the proportion k/n; (nan, nan) for n = 0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def quality_summary(mech: pd.DataFrame, case: str, picker: str, n_events: int) -> pd.DataFrame:
    """One row per quality class A-D plus ``all`` (every solved event): ``n`` (solved events of
    that class), ``share_of_events`` (n / events inverted), ``median_kagan``, ``p90_kagan``
    (deg), ``within_20``, ``share_within_20`` and its 95 % Wilson interval ``ci_low, ci_high``."""
    rows = []
    for q in (*QUALITIES, "all"):
        k = mech["truth_kagan"].to_numpy(float) if q == "all" else \
            mech.loc[mech["quality"] == q, "truth_kagan"].to_numpy(float)
        n, w = int(len(k)), int(np.sum(k <= WITHIN_DEG))
        lo, hi = wilson(w, n)
        rows.append({"case": case, "picker": picker, "quality": q, "n": n,
                     "share_of_events": n / n_events if n_events else float("nan"),
                     "median_kagan": float(np.median(k)) if n else float("nan"),
                     "p90_kagan": float(np.percentile(k, 90)) if n else float("nan"),
                     "within_20": w, "share_within_20": w / n if n else float("nan"), "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows)


def inverted_polarities(pol: pd.DataFrame, meta: pd.DataFrame, picker: str,
                        snr_min: float = inv.DEFAULT_SNR_MIN) -> pd.DataFrame:
    """The picked polarities that go into the inversion (that picker, polarity != 0, SNR >
    ``snr_min``; :func:`pipeline.mechanisms.invert.select_polarities`), one row per trace:
    ``event_id, network, station, polarity, true_polarity`` (of the ray that made the trace)
    and ``wrong`` (polarity != true polarity)."""
    used = inv.select_polarities(pol, picker, snr_min)
    truth = meta[["event_id", "network", "station", "true_polarity"]]
    j = used.merge(truth, on=["event_id", "network", "station"], how="left", validate="one_to_one")
    j = j[["event_id", "network", "station", "polarity", "true_polarity"]].reset_index(drop=True)
    return j.assign(wrong=j["polarity"].to_numpy(int) != j["true_polarity"].to_numpy(int))


def polarity_share(case: str, picker: str, n: int, wrong: int) -> dict:
    """The ``polarity`` row of ``wrong`` of ``n`` inverted polarities (share, Wilson interval)."""
    lo, hi = wilson(wrong, n)
    return {"case": case, "picker": picker, "n_picked": n, "n_wrong": wrong,
            "share_wrong": wrong / n if n else float("nan"), "ci_low": lo, "ci_high": hi}


def geometry_change(meta_nominal: pd.DataFrame, meta_perturbed: pd.DataFrame) -> dict:
    """How far the perturbed rays are from the nominal ones, live traces: median and 90th
    percentile of |takeoff change| (deg), of |P travel-time change| (ms) and of |static| (ms),
    and the share of true polarities that differ (rays that crossed a nodal plane)."""
    a, b = meta_nominal, meta_perturbed
    if not (a["event_id"].equals(b["event_id"]) and a["station"].equals(b["station"])):
        raise ValueError("the two renderings must cover the same traces in the same order")
    live = ~a["dead"].to_numpy(bool)
    dto = np.abs(b["takeoff_deg"].to_numpy() - a["takeoff_deg"].to_numpy())[live]
    dtt = np.abs(b["p_time_s"].to_numpy() - a["p_time_s"].to_numpy())[live] * 1e3
    flip = (b["true_polarity"].to_numpy() != a["true_polarity"].to_numpy())[live]
    return {"n_traces": int(live.sum()),
            "takeoff_change_deg_median": float(np.median(dto)), "takeoff_change_deg_p90": float(np.percentile(dto, 90)),
            "takeoff_change_deg_max": float(np.max(dto)),
            "p_time_change_ms_median": float(np.median(dtt)), "p_time_change_ms_p90": float(np.percentile(dtt, 90)),
            "true_polarity_flipped_share": float(np.mean(flip))}


def assumed_takeoff_error(metas: dict) -> dict:
    """|takeoff SKHASH assumes - takeoff of the ray that made the trace| (deg), live traces,
    per case: SKHASH interpolates a table of the nominal model (source depths every 3 km,
    :func:`pipeline.mechanisms.raytrace.skhash_table_takeoff`), so even the matched case is
    not exact. Keys ``<case>_assumed_takeoff_error_deg_median`` / ``_p90``."""
    from pipeline.mechanisms import raytrace
    out = {}
    for case, m in metas.items():
        live = ~m["dead"].to_numpy(bool)
        assumed = raytrace.skhash_table_takeoff(m["ev_depth_km"].to_numpy(float), m["distance_km"].to_numpy(float),
                                                NOMINAL_MODEL, takeoff_from="down")
        err = np.abs(assumed - m["takeoff_deg"].to_numpy(float))[live]
        out[f"{case}_assumed_takeoff_error_deg_median"] = float(np.median(err))
        out[f"{case}_assumed_takeoff_error_deg_p90"] = float(np.percentile(err, 90))
    return out


# --------------------------------------------------------------------------- the study

def _reason_kind(reason: str) -> str:
    """An unsolved event's reason without its event-specific numbers (for counting)."""
    import re
    return re.sub(r"\s+", " ", re.sub(r"[-+]?\d+(\.\d+)?", "#", reason)).strip()[:80]


#: the ``reason`` of an event that had no polarity to invert (:data:`EVENT_COLUMNS` rows)
NOT_INVERTED = "no polarity to invert (none picked with SNR above the threshold)"


def event_rows(out: dict, used: pd.DataFrame, meta: pd.DataFrame, case: str, picker: str) -> pd.DataFrame:
    """:data:`EVENT_COLUMNS` rows of one case x picker: every event of ``meta`` (rendered),
    its mechanism from ``out`` (:func:`invert_nominal`) when solved, else the counted reason
    (:func:`_reason_kind`; :data:`NOT_INVERTED` when no polarity went in), and its inverted
    polarities ``n_inverted`` / ``n_wrong`` from ``used`` (:func:`inverted_polarities`)."""
    ids = pd.Index(meta["event_id"].drop_duplicates(), name="event_id")
    counts = used.groupby("event_id")["wrong"].agg(["size", "sum"]).reindex(ids, fill_value=0)
    mech = out["mechanisms"].set_index("event_id").reindex(ids)
    why = out["unsolved"].drop_duplicates("event_id").set_index("event_id")["reason"].astype(str).map(_reason_kind)
    solved = ids.isin(out["mechanisms"]["event_id"])
    reason = np.where(solved, None, why.reindex(ids).fillna(NOT_INVERTED).to_numpy(object))
    df = pd.DataFrame({"case": case, "picker": picker, "event_id": ids.to_numpy(), "solved": solved})
    for c in ("quality", "truth_kagan", "strike", "dip", "rake", "n_polarities", "polarity_misfit"):
        df[c] = mech[c].to_numpy()
    df["n_polarities"] = df["n_polarities"].astype("Int64")   # None when unsolved, an integer count else
    df["n_inverted"] = counts["size"].to_numpy(int)
    df["n_wrong"] = counts["sum"].to_numpy(int)
    df["reason"] = reason
    return df[EVENT_COLUMNS]


def summarise(events: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``summary`` (:func:`quality_summary` + ``n_events``, ``n_unsolved``), ``polarity``
    (:func:`polarity_share` of the summed per-event counts) and ``unsolved`` (events counted
    by reason) of per-event rows (:data:`EVENT_COLUMNS`), per case x picker in row order:
    every number the page shows comes from these rows."""
    summaries, pols, unsolved = [], [], []
    for (case, picker), g in events.groupby(["case", "picker"], sort=False):
        n_ev = int(len(g))
        solved = g["solved"].to_numpy(bool)
        mech = g[solved].astype({"truth_kagan": float})
        summaries.append(quality_summary(mech, case, picker, n_ev).assign(n_events=n_ev, n_unsolved=int((~solved).sum())))
        pols.append(polarity_share(case, picker, int(g["n_inverted"].sum()), int(g["n_wrong"].sum())))
        unsolved += [{"case": case, "picker": picker, "reason": r, "n": int(n)}
                     for r, n in g.loc[~solved, "reason"].value_counts().items()]
    return {"summary": pd.concat(summaries, ignore_index=True), "polarity": pd.DataFrame(pols),
            "unsolved": pd.DataFrame(unsolved, columns=["case", "picker", "reason", "n"])}


def run_study(n_events: int | None = DEFAULTS["events"], seed: int = DEFAULTS["seed"], *,
              scenario_seed: int = DEFAULTS["scenario_seed"], pickers=DEFAULTS["pickers"], weights=None,
              shallow_factor: float = DEFAULTS["shallow_factor"], deep_factor: float = DEFAULTS["deep_factor"],
              split_km: float = DEFAULTS["split_km"], depth_shift_km: float = DEFAULTS["depth_shift_km"],
              statics_sigma_s: float = DEFAULTS["statics_sigma_s"],
              statics_clip_sigma: float = DEFAULTS["statics_clip_sigma"], event_ids=None,
              workers: int | None = None, use_fortran: bool | None = None, data: dict | None = None,
              loaded_pickers: dict | None = None) -> dict:
    """The study (module docstring). ``n_events`` demo events with a published mechanism,
    the seeded choice of :func:`pipeline.demo.waveforms.select_events` (``seed`` = the
    waveform seed: event choice, noise, statics), or ``event_ids``. Returns a dict of
    DataFrames ``events`` (:data:`EVENT_COLUMNS`), ``summary``, ``polarity``, ``unsolved``
    (:func:`summarise` of the events), ``mechanisms`` (the solved events, both cases) and
    dicts ``geometry``, ``settings``, ``timing_s``."""
    from pipeline import picking

    t0 = time.perf_counter()
    data = data if data is not None else scenario.generate(scenario_seed)
    pert = perturbed_model(NOMINAL_MODEL, shallow_factor, deep_factor, split_km, depth_shift_km)
    statics = station_statics(data["stations"], statics_sigma_s, seed, statics_clip_sigma)
    loaded = loaded_pickers or {p: picking.load_picker(p, weights) for p in pickers}
    loaded = {p: loaded[p] for p in pickers}
    timing = {}
    cases = {"matched": (None, None), "perturbed": (pert, statics)}
    metas, rows, engines = {}, [], set()
    for case, (model, st) in cases.items():
        t = time.perf_counter()
        meta, windows = render(data, n_events, seed, model, st, event_ids)
        metas[case] = meta
        pol = pick(meta, windows, data, loaded)
        timing[f"{case}_render_pick"] = round(time.perf_counter() - t, 1)
        truth = true_mechanisms(meta)
        for p in pickers:
            t = time.perf_counter()
            out = invert_nominal(data, pol, p, truth, workers, use_fortran)
            timing[f"{case}_invert_{p}"] = round(time.perf_counter() - t, 1)
            engines.update(out["mechanisms"].get("engine", pd.Series(dtype=object)).dropna().astype(str))
            rows.append(event_rows(out, inverted_polarities(pol, meta, p), meta, case, p))
    events = pd.concat(rows, ignore_index=True)
    geometry = geometry_change(metas["matched"], metas["perturbed"])
    geometry.update(assumed_takeoff_error(metas))
    geometry["static_ms_abs_median"] = float(np.median(np.abs(statics["static_s"])) * 1e3)
    settings = {
        "n_events": int(metas["matched"]["event_id"].nunique()), "requested_events": n_events,
        "seed": int(seed), "scenario_seed": int(scenario_seed), "pickers": list(pickers),
        "event_ids": None if event_ids is None else [str(e) for e in event_ids],
        "nominal_model": NOMINAL_MODEL.to_dict("list"), "perturbed_model": pert.to_dict("list"),
        "perturbation": {"shallow_factor": shallow_factor, "deep_factor": deep_factor, "split_km": split_km,
                         "depth_shift_km": depth_shift_km, "statics_sigma_s": statics_sigma_s,
                         "statics_clip_sigma": statics_clip_sigma},
        "inversion": "pipeline.mechanisms.invert.invert, nominal model, build settings (SKHASH DEFAULT_SETTINGS), "
                     f"polarities with SNR > {inv.DEFAULT_SNR_MIN}",
        "within_deg": WITHIN_DEG,
        "skhash_engine": ", ".join(sorted(engines)) or None,
        "weights": _weights_identity(pickers, weights),
    }
    timing["total"] = round(time.perf_counter() - t0, 1)
    return {**summarise(events), "events": events, "mechanisms": mechanisms_of(events),
            "geometry": geometry, "settings": settings, "timing_s": timing}


def _weights_identity(pickers, weights) -> dict | None:
    """The CNN weights the study picked with: file name and SHA-256 (None without the CNN)."""
    if "cnn" not in pickers:
        return None
    from pipeline.picking.pickers.cnn import DEFAULT_WEIGHTS
    from pipeline.picking.training import file_sha256
    path = Path(weights) if weights else Path(DEFAULT_WEIGHTS)
    return {"file": path.name, "sha256": file_sha256(path)}


def side_by_side(summary: pd.DataFrame) -> pd.DataFrame:
    """The tidy summary as one row per picker x quality class, matched and perturbed side by side."""
    cols = ["n", "median_kagan", "p90_kagan", "share_within_20", "ci_low", "ci_high"]
    wide = summary.pivot_table(index=["picker", "quality"], columns="case", values=cols, sort=False)
    wide.columns = [f"{c}_{case}" for c, case in wide.columns]
    order = [f"{c}_{case}" for case in CASES for c in cols if f"{c}_{case}" in wide.columns]
    return wide[order].reset_index()


def format_table(summary: pd.DataFrame) -> str:
    """A plain-text table: per picker and quality class, both cases side by side."""
    lines = [f"{'picker':6s} {'Q':3s} | {'case':9s} {'n':>4s} {'median':>7s} {'p90':>6s} {'<=20deg (95% CI)':>22s}"]
    for (p, q), g in summary.groupby(["picker", "quality"], sort=False):
        for _, r in g.iterrows():
            share = "—" if not r["n"] else f"{100 * r['share_within_20']:5.1f}% ({100 * r['ci_low']:4.1f}-{100 * r['ci_high']:5.1f})"
            med = "—" if not r["n"] else f"{r['median_kagan']:6.1f}°"
            p90 = "—" if not r["n"] else f"{r['p90_kagan']:5.1f}°"
            lines.append(f"{p:6s} {q:3s} | {r['case']:9s} {int(r['n']):4d} {med:>7s} {p90:>6s} {share:>22s}")
    return "\n".join(lines)


def to_json(result: dict, command: str | None = None) -> dict:
    """The JSON document of a result (what :data:`RESULT_FILE` and :data:`RECORD` hold):
    ``events`` (the per-event rows, :data:`EVENT_COLUMNS`) and the tables made from them,
    ``settings``, ``geometry``, ``timing_s``, ``made_at`` (UTC) and ``command`` (what made it)."""
    def records(df):
        return json.loads(df.to_json(orient="records", double_precision=6))
    return {"kind": "velocity_model_robustness", "version": 2,
            "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": command,
            "settings": result["settings"], "geometry": result["geometry"], "timing_s": result["timing_s"],
            "summary": records(result["summary"]), "polarity": records(result["polarity"]),
            "unsolved": records(result["unsolved"]), "paired": records(paired_change(result["mechanisms"])),
            "events": records(result["events"])}


def write(result: dict, path: str | Path, command: str | None = None) -> Path:
    """Write :func:`to_json` atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_json(result, command), indent=1, allow_nan=False, default=str) + "\n")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- command line

def add_arguments(parser) -> None:
    parser.add_argument("--events", type=int, default=DEFAULTS["events"], help="demo events (default %(default)s)")
    parser.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="waveform seed: events, noise, statics")
    parser.add_argument("--pickers", default=",".join(DEFAULTS["pickers"]), help="comma list: cnn, onset")
    parser.add_argument("--weights", default=None, help="CNN weights file (default: the shipped ones)")
    parser.add_argument("--shallow-factor", type=float, default=DEFAULTS["shallow_factor"])
    parser.add_argument("--deep-factor", type=float, default=DEFAULTS["deep_factor"])
    parser.add_argument("--split-km", type=float, default=DEFAULTS["split_km"])
    parser.add_argument("--depth-shift-km", type=float, default=DEFAULTS["depth_shift_km"])
    parser.add_argument("--statics-ms", type=float, default=1e3 * DEFAULTS["statics_sigma_s"],
                        help="sigma of the station statics, ms (default %(default)s)")
    parser.add_argument("--workers", type=int, default=None, help="SKHASH processes (default: all cores)")
    parser.add_argument("--out", default=None, help=f"JSON file (default <data-dir>/{RESULT_FILE})")
    parser.add_argument("--record", action="store_true",
                        help=f"write the committed record {RECORD.relative_to(RECORD.parents[2])} (what the model "
                             "page shows when the data folder has no study of its own)")


def run(args) -> int:
    if args.record and args.out:
        raise SystemExit("python -m pipeline robustness: give --record or --out, not both")
    res = run_study(args.events, args.seed, pickers=tuple(p for p in args.pickers.split(",") if p),
                    weights=args.weights, shallow_factor=args.shallow_factor, deep_factor=args.deep_factor,
                    split_km=args.split_km, depth_shift_km=args.depth_shift_km,
                    statics_sigma_s=args.statics_ms / 1e3, workers=args.workers)
    out = RECORD if args.record else Path(args.out) if args.out else Path(args.data_dir) / RESULT_FILE
    flags = [f"--events {args.events}", f"--seed {args.seed}", f"--pickers {args.pickers}",
             f"--shallow-factor {args.shallow_factor:g}", f"--deep-factor {args.deep_factor:g}",
             f"--split-km {args.split_km:g}", f"--depth-shift-km {args.depth_shift_km:g}",
             f"--statics-ms {args.statics_ms:g}"] + ([f"--weights {args.weights}"] if args.weights else [])
    write(res, out, "python -m pipeline robustness " + " ".join(flags))
    print(format_table(res["summary"]))
    print(res["polarity"].to_string(index=False))
    print(res["unsolved"].to_string(index=False))
    print(paired_change(res["mechanisms"]).to_string(index=False))
    print(json.dumps(res["geometry"], indent=1))
    print(f"{res['settings']['n_events']} events, seed {res['settings']['seed']}, {res['timing_s']['total']} s; "
          f"written to {out}")
    return 0
