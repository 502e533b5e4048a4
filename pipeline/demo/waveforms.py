"""Synthetic P waveforms for the demo scenario (:mod:`pipeline.demo.scenario`), with their truth.

For a set of events (default: events with a published mechanism, at most ``max_events``,
a deterministic seeded choice) and every station, the vertical P first motion comes from
the event's **true** mechanism (``truth_events``; :func:`pipeline.mechanisms.focal.p_radiation`) along
the ray from the true hypocentre to the station (:mod:`pipeline.mechanisms.raytrace`, 1-D model, default
:data:`pipeline.mechanisms.raytrace.DEMO_VELOCITY_MODEL`; stations at depth 0 as in SKHASH).

Traces (ToC2ME-like: 500 Hz, 5001 samples = 10 s, the P pick at sample :data:`P_SAMPLE`
= 2500 = 5.000 s; the polarity window is samples 2201..2800, P at index 299 of it):

* **P pulse**: velocity of a causal displacement pulse ``t^k exp(-t/tau)``:
  ``(k s^(k-1) - s^k) exp(-s)``, ``s = t/tau``: a first half-cycle of the first-motion
  sign lasting ``k tau`` (= half the dominant period), then the opposite lobe (zero area).
  ``k`` 2-3.5 gives impulsive onsets, ``k`` 4.5-7 (about 25 % of traces) emergent ones
  (amplitude growing like ``t^(k-1)``). Dominant frequency per event 25-70 Hz (lower for
  larger magnitudes), broadened with travel time (attenuation ``Q`` = 150).
* **Amplitude**: ``C 10^(0.5 M) R(theta, phi) / r_hyp * exp(-pi f t / Q)``; the motion is along
  the arriving ray: Z = ``-cos(incidence)``, N/E = ``sin(incidence) cos/sin(azimuth)``
  (incidence from :func:`pipeline.mechanisms.raytrace.trace`; no free-surface factor).
* **Coda**: band-limited scattered energy that starts after the first half-cycle and
  decays in 0.1-0.4 s, scaled by the *average* radiation (so nodal stations show a small
  first motion followed by a larger coda, as real ones do); an **S** pulse at
  ``t_s = 1.9 t_p`` (ToC2ME's t2/t1) from the true S radiation (same ray, constant Vp/Vs)
  with its own coda (decay 0.4-1 s).
* **Noise**: coloured like ToC2ME's pre-P noise - flat 2-200 Hz, an anti-alias roll-off
  above 200 Hz, a strong 5-12 Hz hump (station-specific centre and level) and, at ~20 % of
  stations, a narrow-band line (15-90 Hz). Per-station level (log-normal; ~12 % of stations
  3-8x noisier; horizontals 1.1-1.6x the vertical), varying per event.
* **Onset jitter**: the true onset is ``onset_shift_samples`` (N(0, 1) clipped to +-4,
  fractional) after the pick; the SAC ``t1`` and the window centre are the pick.
* **Station statics** (optional, ``statics=``; none by default): a per-station P-time shift
  added to the rendered onset but not to the pick, as an unmodelled station term would be.
* **Recorded convention**: stations with ``reversed=True`` have their vertical multiplied
  by -1 (horizontals untouched). ``true_polarity`` is the ground motion (+1 up =
  compression for a ray arriving from below), ``recorded_sign`` the sign seen on the trace.
* **Dead traces**: one station of the network is dead in every event (like ToC2ME's 1176;
  chosen from the seed), plus a random 0.3 % of traces; all components all zero.

Everything is deterministic. Each trace's random numbers are a counter-based hash of
(seed, event, station, component, sample index), so any sample range of a trace can be
rendered alone: the 600-sample windows of :func:`generate_waveforms` are exactly samples
2201..2800 of the full traces written by :func:`write_sac_events` (to float32 rounding), and
an event's traces do not depend on which other events are generated with it.

Entry points: :func:`generate_waveforms` (meta table + windows), :func:`write_sac_events`
(SAC event folders in the ToC2ME layout), :func:`plan_waveforms` / :func:`render` (the two
stages, for custom sample ranges), :func:`select_events`.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import fft as sfft

from pipeline import geo
from pipeline.mechanisms import focal, raytrace

__all__ = [
    "CHANNELS",
    "DEFAULT_SEED",
    "NODAL_THRESHOLD",
    "NPTS",
    "P_INDEX",
    "P_SAMPLE",
    "SAMPLING_RATE",
    "WINDOW_LEN",
    "WINDOW_START",
    "generate_waveforms",
    "plan_waveforms",
    "render",
    "select_events",
    "write_sac_events",
]

DEFAULT_SEED = 6061
SAMPLING_RATE = 500.0               #: Hz
NPTS = 5001                         #: samples per full trace (10 s)
P_SAMPLE = 2500                     #: P pick (SAC t1) in the full trace, = 5.000 s
WINDOW_LEN = 600                    #: polarity window length
P_INDEX = 299                       #: P pick index in the window
WINDOW_START = P_SAMPLE - P_INDEX   #: first window sample in the full trace (2201)
#: component -> channel code (ToC2ME's; DH1 = north, DH2 = east here)
CHANNELS = {"Z": "DHZ", "N": "DH1", "E": "DH2"}
LOCATION = "00"
NODAL_THRESHOLD = 0.1               #: |radiation| below this -> ``near_nodal``

# physics / scenario constants
VP_VS = 1.9                         #: ToC2ME SAC headers: t2/t1 ~ 1.9
Q_P = 150.0
AMP_SCALE = 0.26                    #: C in the amplitude law (noise std ~1e-4 .. 1e-3)
MAG_EXPONENT = 0.5
NOISE_STD = 1.0e-4                  #: median broadband noise std of a vertical
NOISY_FRACTION, NOISY_FACTOR = 0.12, (3.0, 8.0)
LINE_FRACTION = 0.2
EMERGENT_FRACTION = 0.25
DEAD_FRACTION = 0.003
JITTER_SD, JITTER_MAX = 1.0, 4.0    #: onset jitter, samples
S_OVER_P = 3.0
_FIR_LEN = 257                      #: taps of the noise-colouring filters (odd)
_CODA_FIR_LEN = 129
_COMP_INDEX = {"Z": 0, "N": 1, "E": 2}


# --------------------------------------------------------------------------- hashing RNG

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _splitmix(z: np.ndarray) -> np.ndarray:
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = z + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * _M1
        z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _key(*parts) -> np.ndarray:
    """uint64 keys from integer parts (scalars or arrays, broadcast)."""
    arrs = np.broadcast_arrays(*(np.asarray(p, dtype=np.uint64) for p in parts))
    k = np.zeros(arrs[0].shape, dtype=np.uint64)
    for a in arrs:
        k = _splitmix(k ^ a)
    return k


def _hash_normal(keys: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Standard normals for samples [start, stop) of each key's stream (n_keys, stop-start).
    Sample i depends only on (key, i) - any range can be drawn alone. One 64-bit hash per
    sample, split into two 32-bit uniforms for Box-Muller."""
    idx = (np.arange(start, stop, dtype=np.int64) + (1 << 40)).astype(np.uint64)  # margins may be < 0
    with np.errstate(over="ignore"):
        z = _splitmix(keys[:, None] + idx[None, :] * _GOLDEN)
    u1 = ((z >> np.uint64(32)).astype(np.float64) + 0.5) * 2.0 ** -32
    u2 = (z & np.uint64(0xFFFFFFFF)).astype(np.float64) * (2.0 * np.pi * 2.0 ** -32)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(u2)


def _crc(s: str) -> int:
    return zlib.crc32(str(s).encode())


# --------------------------------------------------------------------------- filters

def _fir_from_response(amp: np.ndarray, n_taps: int) -> np.ndarray:
    """Zero-phase FIRs (one per row of ``amp``, the amplitude response sampled on
    ``np.linspace(0, fs/2, n_freq)``): ``n_taps`` taps centred on ``n_taps // 2``,
    Hann-windowed, unit energy."""
    n_freq = amp.shape[-1]
    h = np.fft.irfft(amp, n=2 * (n_freq - 1), axis=-1)
    h = np.roll(h, n_taps // 2, axis=-1)[..., :n_taps] * np.hanning(n_taps + 2)[1:-1]
    return h / np.sqrt(np.sum(h * h, axis=-1, keepdims=True))


def _noise_response(f, lf_centre, lf_ratio, n_freq):
    """Amplitude response sqrt(PSD) of the background noise (rows = stations)."""
    flat = np.where(f < 2.0, (f / 2.0) ** 2, 1.0)
    taper = np.where(f > 200.0, np.cos(np.clip((f - 200.0) / 45.0, 0, 1) * np.pi / 2) ** 2, 1.0)
    flat = flat * taper + 1e-4
    hump = lf_ratio[:, None] * np.exp(-0.5 * (np.log(np.maximum(f, 0.1)[None, :] / lf_centre[:, None]) / 0.35) ** 2)
    return np.sqrt(flat[None, :] + hump)


def _convolve_rows(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """'valid' convolution of each row of x with the same-index row of h (FFT)."""
    n = x.shape[1] + h.shape[1] - 1
    nf = sfft.next_fast_len(n, real=True)
    y = sfft.irfft(sfft.rfft(x, nf, axis=1) * sfft.rfft(h, nf, axis=1), nf, axis=1)
    return y[:, h.shape[1] - 1:x.shape[1]]


# --------------------------------------------------------------------------- selection & plan

def select_events(demo_tables: dict, seed: int = DEFAULT_SEED, max_events: int | None = 300,
                  event_ids=None) -> pd.DataFrame:
    """Events to synthesise with their true mechanism: ``event_ids`` when given, else the
    events with a published mechanism (all events when there is no ``mechanisms`` table);
    more than ``max_events`` -> a seeded random subset. Sorted by ``event_id``. Columns:
    ``event_id, time, lat, lon, depth_km, magnitude, strike, dip, rake`` (true mechanism from
    ``truth_events``, else ``truth_mechanisms``)."""
    ev = demo_tables["events"]
    truth = demo_tables.get("truth_events")
    if truth is None or not {"strike", "dip", "rake"} <= set(truth.columns):
        truth = demo_tables["truth_mechanisms"]
    truth = truth[["event_id", "strike", "dip", "rake"]].drop_duplicates("event_id")
    if event_ids is not None:
        ids = pd.Index(pd.unique(pd.Series(list(event_ids), dtype=object)))
    elif demo_tables.get("mechanisms") is not None and len(demo_tables["mechanisms"]):
        ids = pd.Index(pd.unique(demo_tables["mechanisms"]["event_id"]))
    else:
        ids = pd.Index(ev["event_id"])
    ids = ids[ids.isin(ev["event_id"]) & ids.isin(truth["event_id"])]
    missing = [] if event_ids is None else sorted(set(event_ids) - set(ids))
    if missing:
        raise KeyError(f"events not found (or without a true mechanism): {missing[:5]}")
    ids = np.sort(ids.to_numpy(dtype=object))
    if max_events is not None and len(ids) > max_events:
        rng = np.random.default_rng([int(seed), 7])
        ids = np.sort(rng.choice(ids, int(max_events), replace=False))
    cols = [c for c in ("event_id", "time", "lat", "lon", "depth_km", "magnitude") if c in ev.columns]
    out = pd.DataFrame({"event_id": ids}).merge(ev[cols], on="event_id", how="left")
    if "magnitude" not in out:
        out["magnitude"] = -1.0
    return out.merge(truth, on="event_id", how="left").reset_index(drop=True)


def _station_params(stations: pd.DataFrame, seed: int, dead_stations) -> pd.DataFrame:
    ns = len(stations)
    rows = []
    for net, sta in zip(stations["network"], stations["station"]):
        r = np.random.default_rng([int(seed), 1, _crc(f"{net}.{sta}")])
        sigma = NOISE_STD * np.exp(r.normal(0, 0.35))
        noisy = r.random() < NOISY_FRACTION
        lf_ratio = float(np.exp(r.normal(np.log(60.0), 0.6)))
        if noisy:  # noisy stations: more broadband noise and a much stronger 5-12 Hz hump
            sigma *= r.uniform(*NOISY_FACTOR)
            lf_ratio *= r.uniform(5.0, 30.0)
        has_line = r.random() < LINE_FRACTION
        rows.append({
            "noise_sigma": sigma, "noisy_station": noisy,
            "h_factor_n": r.uniform(1.1, 1.6), "h_factor_e": r.uniform(1.1, 1.6),
            "lf_centre_hz": r.uniform(5.0, 12.0), "lf_ratio": lf_ratio,
            "line_hz": r.uniform(15.0, 90.0) if has_line else 0.0,
            "line_amp": r.uniform(0.3, 1.0) if has_line else 0.0,
            "station_key": _crc(f"{net}.{sta}"),
        })
    sp = pd.DataFrame(rows, index=stations.index)
    if dead_stations is None:
        pick = np.random.default_rng([int(seed), 2]).integers(ns) if ns else 0
        dead = np.zeros(ns, dtype=bool)
        if ns:
            dead[pick] = True
    else:
        dead = stations["station"].astype(str).isin([str(s) for s in dead_stations]).to_numpy()
    sp["always_dead"] = dead
    return sp


def plan_waveforms(demo_tables: dict, seed: int = DEFAULT_SEED, max_events: int | None = 300,
                   velocity_model=None, *, event_ids=None, nodal_threshold: float = NODAL_THRESHOLD,
                   noise_scale: float = 1.0, onset_jitter_sd: float = JITTER_SD,
                   dead_fraction: float = DEAD_FRACTION, dead_stations=None, statics=None) -> pd.DataFrame:
    """One row per (event, station): geometry, truth and every synthesis parameter.

    ``noise_scale`` multiplies the background noise (0 = noise-free), ``onset_jitter_sd``
    is the onset jitter in samples, ``dead_fraction`` the share of random dead traces,
    ``dead_stations`` the station codes dead in every event (None: one seeded choice; ``[]``:
    none). See :func:`generate_waveforms` for the columns.

    ``statics``: optional station statics, a DataFrame ``network, station, static_s``
    (seconds, + = the P wave arrives later than the model says). The static is added to the
    **rendered** P (and S) onset only: the pick (SAC ``t1``, the window centre, ``p_time_s``
    = model travel time) does not know it, so the onset lies ``onset_shift_samples`` =
    jitter + ``static_s * SAMPLING_RATE`` samples after the pick. Stations not listed get 0.
    Column ``static_s`` of the plan; None (default) = no statics, every sample as before."""
    ev = select_events(demo_tables, seed, max_events, event_ids)
    st = demo_tables["stations"].reset_index(drop=True)
    if "reversed" not in st:
        st = st.assign(reversed=False)
    sp = _station_params(st, seed, dead_stations)
    ne, ns = len(ev), len(st)
    ei, si = np.repeat(np.arange(ne), ns), np.tile(np.arange(ns), ne)
    # the demo is synthetic: without a model it is traced in the made-up demo model, on purpose
    geom = raytrace.takeoff_azimuth(ev["lat"].to_numpy(float)[ei], ev["lon"].to_numpy(float)[ei],
                                    ev["depth_km"].to_numpy(float)[ei], st["lat"].to_numpy(float)[si],
                                    st["lon"].to_numpy(float)[si],
                                    velocity_model=raytrace.DEMO if velocity_model is None else velocity_model,
                                    takeoff_from="down")
    strike, dip, rake = (ev[c].to_numpy(float)[ei] for c in ("strike", "dip", "rake"))
    ray = focal.ray_vector(geom["takeoff_deg"].to_numpy(), geom["azimuth_deg"].to_numpy(), "down")
    rad = focal.p_radiation(strike, dip, rake, ray)
    mt = focal.moment_tensor(strike, dip, rake)
    mr = np.einsum("nij,nj->ni", mt, ray)
    u_s = mr - rad[:, None] * ray                        # S radiation vector (NED)
    az = np.radians(geom["azimuth_deg"].to_numpy())
    i_s = np.radians(geom["takeoff_deg"].to_numpy())
    i_r = np.radians(geom["incidence_deg"].to_numpy())
    e_th_s = np.stack([np.cos(i_s) * np.cos(az), np.cos(i_s) * np.sin(az), -np.sin(i_s)], -1)
    e_ph = np.stack([-np.sin(az), np.cos(az), np.zeros_like(az)], -1)
    sv, sh = np.sum(u_s * e_th_s, -1), np.sum(u_s * e_ph, -1)

    # per-event draws (independent of which other events are selected)
    n_tr = ne * ns
    fdom = np.empty(ne)
    ev_noise = np.empty((ne, ns))
    k = np.empty(n_tr)
    emergent = np.empty(n_tr, dtype=bool)
    shift = np.empty(n_tr)
    coda_rel = np.empty(n_tr)
    coda_decay = np.empty(n_tr)
    s_coda_rel = np.empty(n_tr)
    s_coda_decay = np.empty(n_tr)
    site = np.empty(n_tr)
    rnd_dead = np.empty(n_tr, dtype=bool)
    ev_keys = np.array([_crc(e) for e in ev["event_id"]], dtype=np.uint64)
    for j, eid in enumerate(ev["event_id"]):
        r = np.random.default_rng([int(seed), 3, int(ev_keys[j])])
        m = float(ev["magnitude"].iloc[j]) if np.isfinite(ev["magnitude"].iloc[j]) else -1.0
        fdom[j] = float(np.clip(45.0 * 10 ** (-0.2 * (m + 1.0)) * np.exp(r.normal(0, 0.2)), 25.0, 70.0))
        ev_noise[j] = np.exp(r.normal(0, 0.25)) * np.exp(r.normal(0, 0.1, ns))
        sl = slice(j * ns, (j + 1) * ns)
        em = r.random(ns) < EMERGENT_FRACTION
        emergent[sl] = em
        k[sl] = np.where(em, r.uniform(4.5, 7.0, ns), r.uniform(2.0, 3.5, ns))
        shift[sl] = np.clip(r.normal(0, 1, ns) * onset_jitter_sd, -JITTER_MAX, JITTER_MAX)
        coda_rel[sl] = r.uniform(0.2, 0.5, ns)
        coda_decay[sl] = r.uniform(0.1, 0.4, ns)
        s_coda_rel[sl] = r.uniform(0.3, 0.6, ns)
        s_coda_decay[sl] = r.uniform(0.4, 1.0, ns)
        site[sl] = np.exp(r.normal(0, 0.3, ns))
        rnd_dead[sl] = r.random(ns) < dead_fraction
    static_s = _station_statics(st, statics)[si]
    if statics is not None:
        shift = shift + static_s * SAMPLING_RATE

    tp = geom["travel_time_s"].to_numpy()
    rhyp = np.maximum(geom["hypocentral_km"].to_numpy(), 0.05)
    f_tr = fdom[ei] / (1.0 + 0.25 * tp)                   # attenuation broadens the pulse
    mag = ev["magnitude"].to_numpy(float)[ei]
    a0 = AMP_SCALE * 10 ** (MAG_EXPONENT * mag) / rhyp * np.exp(-np.pi * f_tr * tp / Q_P) * site
    up = -np.cos(i_r)                                     # upward component of the arriving ray
    hor = np.sin(i_r)
    p_zne = a0[:, None] * rad[:, None] * np.stack([up, hor * np.cos(az), hor * np.sin(az)], -1)
    # S at the receiver: SV along e_theta(i_r), SH along e_phi; (Z up, N, E)
    s_amp = S_OVER_P * a0
    s_zne = s_amp[:, None] * np.stack([sv * np.sin(i_r),
                                       sv * np.cos(i_r) * np.cos(az) - sh * np.sin(az),
                                       sv * np.cos(i_r) * np.sin(az) + sh * np.cos(az)], -1)
    sig = sp["noise_sigma"].to_numpy()[si] * ev_noise.ravel() * noise_scale
    true_pol = np.where(rad >= 0, 1, -1).astype(np.int8)
    reversed_ = st["reversed"].to_numpy(bool)[si]
    dead = sp["always_dead"].to_numpy()[si] | rnd_dead
    plan = pd.DataFrame({
        "event_id": ev["event_id"].to_numpy()[ei], "network": st["network"].to_numpy()[si],
        "station": st["station"].to_numpy()[si],
        "takeoff_deg": geom["takeoff_deg"].to_numpy(), "azimuth_deg": geom["azimuth_deg"].to_numpy(),
        "distance_km": geom["distance_km"].to_numpy(), "incidence_deg": geom["incidence_deg"].to_numpy(),
        "hypocentral_km": rhyp, "p_time_s": tp, "s_time_s": tp * VP_VS,
        "true_polarity": true_pol, "amplitude": rad, "near_nodal": np.abs(rad) < nodal_threshold,
        "reversed": reversed_, "dead": dead,
        "ev_lat": ev["lat"].to_numpy(float)[ei], "ev_lon": ev["lon"].to_numpy(float)[ei],
        "ev_depth_km": ev["depth_km"].to_numpy(float)[ei], "magnitude": mag,
        "st_lat": st["lat"].to_numpy(float)[si], "st_lon": st["lon"].to_numpy(float)[si],
        "strike": strike, "dip": dip, "rake": rake,
        "dominant_freq_hz": f_tr, "onset_k": k, "emergent": emergent, "onset_shift_samples": shift,
        "static_s": static_s,
        "p_z": p_zne[:, 0], "p_n": p_zne[:, 1], "p_e": p_zne[:, 2],
        "s_z": s_zne[:, 0], "s_n": s_zne[:, 1], "s_e": s_zne[:, 2],
        "coda_amp": coda_rel * a0 * 0.5, "coda_decay_s": coda_decay,
        "s_coda_amp": s_coda_rel * s_amp * 0.5, "s_coda_decay_s": s_coda_decay,
        "noise_sigma_z": sig, "noise_sigma_n": sig * sp["h_factor_n"].to_numpy()[si],
        "noise_sigma_e": sig * sp["h_factor_e"].to_numpy()[si],
        "lf_centre_hz": sp["lf_centre_hz"].to_numpy()[si], "lf_ratio": sp["lf_ratio"].to_numpy()[si],
        "line_hz": sp["line_hz"].to_numpy()[si], "line_amp": sp["line_amp"].to_numpy()[si],
        "seed": int(seed), "event_key": ev_keys[ei], "station_key": sp["station_key"].to_numpy(np.uint64)[si],
    })
    if "time" in ev:
        plan.insert(1, "origin_time", ev["time"].to_numpy()[ei])
    # expected total noise std of each component (broadband + hump + line) for snr_true
    for c in "zne":
        plan[f"noise_std_{c}"] = _noise_total_std(plan, c)
    return plan


def _station_statics(stations: pd.DataFrame, statics) -> np.ndarray:
    """Static (s) of each row of ``stations`` from a ``network, station, static_s`` table
    (0 where not listed or ``statics`` is None)."""
    out = np.zeros(len(stations))
    if statics is None:
        return out
    st = pd.DataFrame(statics)
    missing = {"network", "station", "static_s"} - set(st.columns)
    if missing:
        raise ValueError(f"statics need columns network, station, static_s (missing {sorted(missing)})")
    val = st.drop_duplicates(["network", "station"]).set_index(["network", "station"])["static_s"].astype(float)
    keys = pd.MultiIndex.from_arrays([stations["network"], stations["station"]])
    found = val.reindex(keys).to_numpy()
    if not np.all(np.isfinite(found[~np.isnan(found)])):
        raise ValueError("statics must be finite")
    return np.where(np.isnan(found), 0.0, found)


def _noise_total_std(plan: pd.DataFrame, comp: str) -> np.ndarray:
    """std of the coloured noise: the filters have unit energy and are scaled so that the
    broadband (flat) part alone has std ``noise_sigma``; the hump and the line add to it."""
    n_freq = 513
    f = np.linspace(0, SAMPLING_RATE / 2, n_freq)
    lc, lr = plan["lf_centre_hz"].to_numpy(), plan["lf_ratio"].to_numpy()
    uniq, inv = np.unique(np.stack([lc, lr], 1), axis=0, return_inverse=True)
    resp = _noise_response(f, uniq[:, 0], uniq[:, 1], n_freq)
    flat = _noise_response(f, uniq[:, 0], np.zeros(len(uniq)), n_freq)
    ratio = np.sqrt(np.sum(resp ** 2, 1) / np.sum(flat ** 2, 1))[inv.ravel()]
    sig = plan[f"noise_sigma_{comp}"].to_numpy()
    line = plan["line_amp"].to_numpy() * sig
    return np.sqrt((sig * ratio) ** 2 + line ** 2 / 2)


# --------------------------------------------------------------------------- rendering

def _pulse(s: np.ndarray, k: np.ndarray) -> np.ndarray:
    """(k s^(k-1) - s^k) e^-s for s > 0 (0 before), first-lobe peak normalised to 1."""
    kk = k[:, None]
    sp = np.maximum(s, 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = (kk * sp ** (kk - 1) - sp ** kk) * np.exp(-sp)
        s_pk = kk - np.sqrt(kk)
        norm = (kk * s_pk ** (kk - 1) - s_pk ** kk) * np.exp(-s_pk)
    return np.where(s > 0, g / norm, 0.0)


def render(plan: pd.DataFrame, start: int = 0, stop: int = NPTS, components=("Z",),
           recorded: bool = True, chunk: int | None = None) -> np.ndarray:
    """Samples [start, stop) of the full traces of every plan row, float32
    (n_rows, n_components, stop - start). ``recorded=True`` applies the station reversal
    (vertical * -1 where ``reversed``); dead rows are all zero."""
    comps = [c.upper() for c in components]
    for c in comps:
        if c not in _COMP_INDEX:
            raise ValueError(f"unknown component {c!r}; use 'Z', 'N', 'E'")
    n = len(plan)
    out = np.zeros((n, len(comps), stop - start), dtype=np.float32)
    if chunk is None:  # ~2.4 M samples per work array (a few tens of MB)
        chunk = max(1, 2_400_000 // max(stop - start, 1))
    for a in range(0, n, chunk):
        b = min(n, a + chunk)
        out[a:b] = _render_chunk(plan.iloc[a:b], start, stop, comps, recorded)
    return out


def _render_chunk(pl: pd.DataFrame, start, stop, comps, recorded):
    n = len(pl)
    fs = SAMPLING_RATE
    # the signal (P, coda, S) starts at the onset, >= P_SAMPLE - JITTER_MAX: compute it on
    # columns [s0, stop) only
    early = JITTER_MAX
    if len(pl):  # negative statics can put the onset further before the pick
        early = max(early, -float(np.min(pl["onset_shift_samples"].to_numpy())))
    s0 = min(max(start, int(np.floor(P_SAMPLE - early)) - 1), stop)
    t_idx = np.arange(start, stop, dtype=float)
    t_sig = np.arange(s0, stop, dtype=float)
    onset = P_SAMPLE + pl["onset_shift_samples"].to_numpy()
    fdom = pl["dominant_freq_hz"].to_numpy()
    k = pl["onset_k"].to_numpy()
    half = fs / (2.0 * fdom)                           # samples in the first half-cycle
    dt_p = t_sig[None, :] - onset[:, None]
    g_p = _pulse(dt_p / (half / k)[:, None], k)
    s_onset = onset + (pl["s_time_s"].to_numpy() - pl["p_time_s"].to_numpy()) * fs
    s_half = half * VP_VS
    g_s = _pulse((t_sig[None, :] - s_onset[:, None]) / (s_half / 2.5)[:, None], np.full(n, 2.5))
    # coda envelope: zero during the first half-cycle, then rises and decays exponentially
    tc = np.maximum(dt_p - half[:, None], 0.0)
    env = (1.0 - np.exp(-(tc / (1.5 * half[:, None])) ** 2)) * np.exp(-tc / (pl["coda_decay_s"].to_numpy()[:, None] * fs))
    env *= pl["coda_amp"].to_numpy()[:, None]
    ts = np.maximum(t_sig[None, :] - s_onset[:, None] - s_half[:, None], 0.0)
    env += (pl["s_coda_amp"].to_numpy()[:, None] * (1.0 - np.exp(-(ts / (1.5 * s_half[:, None])) ** 2))
            * np.exp(-ts / (pl["s_coda_decay_s"].to_numpy()[:, None] * fs)))
    keys_base = _key(pl["seed"].to_numpy(np.uint64), pl["event_key"].to_numpy(np.uint64),
                     pl["station_key"].to_numpy(np.uint64))
    # coda band-pass filters (per trace, around the dominant frequency)
    nfq = 257
    f = np.linspace(0, fs / 2, nfq)
    bp = np.exp(-0.5 * (np.log(np.maximum(f, 0.5)[None, :] / (0.8 * fdom[:, None])) / 0.6) ** 2)
    h_coda = _fir_from_response(bp, _CODA_FIR_LEN)
    # background-noise filters (per station)
    lc, lr = pl["lf_centre_hz"].to_numpy(), pl["lf_ratio"].to_numpy()
    uniq, inv = np.unique(np.stack([lc, lr], 1), axis=0, return_inverse=True)
    inv = inv.ravel()
    nfn = 1025
    fn = np.linspace(0, fs / 2, nfn)
    resp = _noise_response(fn, uniq[:, 0], uniq[:, 1], nfn)
    h_noise = _fir_from_response(resp, _FIR_LEN)
    flat = _noise_response(fn, uniq[:, 0], np.zeros(len(uniq)), nfn)
    # scale so the flat part has unit std: energy ratio of full vs flat response
    gain = np.sqrt(np.sum(resp ** 2, 1) / np.sum(flat ** 2, 1))[inv]
    dead = pl["dead"].to_numpy(bool)
    rev = pl["reversed"].to_numpy(bool)
    out = np.zeros((n, len(comps), stop - start), dtype=np.float32)
    mc, mn = _CODA_FIR_LEN // 2, _FIR_LEN // 2
    for ci, c in enumerate(comps):
        lc_ = c.lower()
        cidx = _COMP_INDEX[c]
        x = np.zeros((n, stop - start))
        sig_part = x[:, s0 - start:]
        sig_part += g_p * pl[f"p_{lc_}"].to_numpy()[:, None] + g_s * pl[f"s_{lc_}"].to_numpy()[:, None]
        # coda: hashed white noise (stream 1) band-passed, times the envelope
        if stop > s0:
            w = _hash_normal(_key(keys_base, 1, cidx), s0 - mc, stop + mc)
            sig_part += _convolve_rows(w, h_coda) * env
        sig = pl[f"noise_sigma_{lc_}"].to_numpy()
        if np.any(sig > 0):
            w = _hash_normal(_key(keys_base, 2, cidx), start - mn, stop + mn)
            noise = _convolve_rows(w, h_noise[inv]) * gain[:, None]
            x += noise * sig[:, None]
            la = pl["line_amp"].to_numpy() * sig
            if np.any(la > 0):
                phase = (_key(keys_base, 3, cidx) >> np.uint64(11)).astype(float) * 2.0 ** -53 * 2 * np.pi
                x += la[:, None] * np.cos(2 * np.pi * pl["line_hz"].to_numpy()[:, None] * t_idx[None, :] / fs
                                          + phase[:, None])
        if recorded and c == "Z":
            x[rev] *= -1.0
        x[dead] = 0.0
        out[:, ci] = x
    return out


# --------------------------------------------------------------------------- public API

META_COLUMNS = [
    "event_id", "network", "station", "channel", "takeoff_deg", "azimuth_deg", "distance_km",
    "true_polarity", "recorded_sign", "amplitude", "snr_true", "dead", "reversed", "near_nodal",
    "incidence_deg", "p_time_s", "s_time_s", "onset_shift_samples", "emergent", "onset_k",
    "dominant_freq_hz", "noise_std", "magnitude", "ev_lat", "ev_lon", "ev_depth_km", "st_lat", "st_lon",
    "strike", "dip", "rake",
]


def _meta(plan: pd.DataFrame, components) -> pd.DataFrame:
    comps = [c.upper() for c in components]
    frames = []
    for c in comps:
        lc_ = c.lower()
        m = plan.copy()
        m["channel"] = CHANNELS[c]
        a = m[f"p_{lc_}"].to_numpy()
        sign = np.where(a >= 0, 1, -1)
        if c == "Z":
            sign = np.where(m["reversed"].to_numpy(bool), -sign, sign)
        m["recorded_sign"] = sign.astype(np.int8)
        m["noise_std"] = m[f"noise_std_{lc_}"]
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = np.abs(a) / m["noise_std"].to_numpy()
        m["snr_true"] = np.where(m["dead"].to_numpy(bool), 0.0, snr)
        m["_ci"] = _COMP_INDEX[c]
        m["_row"] = np.arange(len(plan))
        frames.append(m)
    meta = pd.concat(frames, ignore_index=True).sort_values(["_row", "_ci"], kind="stable")
    extra = [c for c in ("origin_time",) if c in meta]
    return meta[META_COLUMNS + extra + ["_row", "_ci"]].reset_index(drop=True)


def generate_waveforms(demo_tables: dict, seed: int = DEFAULT_SEED, max_events: int | None = 300,
                       velocity_model=None, *, event_ids=None, components=("Z",),
                       full_traces: bool = False, normalize: bool = False, **plan_options):
    """Synthetic P windows (or full traces) of the demo scenario with their truth.

    Returns ``(meta, windows)``: ``windows`` float32 ``(N, 600)`` - samples 2201..2800 of
    the full trace, P pick at index 299, **recorded** convention, raw amplitudes
    (``normalize=True`` divides each by its max |x|, dead rows stay 0) - or, with
    ``full_traces=True``, ``(N, 5001)`` full traces (P pick at 2500). One row per
    (event, station, component) in that order; ``components`` from ``'Z'`` (``DHZ``),
    ``'N'`` (``DH1``), ``'E'`` (``DH2``).

    ``meta`` columns: ``event_id, network, station, channel``; ``takeoff_deg`` (convention
    'down': > 90 up-going), ``azimuth_deg`` (source -> station), ``distance_km``
    (epicentral), ``true_polarity`` (+1 up / -1 down true vertical ground motion = sign of
    the true P radiation), ``recorded_sign`` (sign of the first motion as recorded on
    that channel: for Z ``true_polarity * (-1 if reversed)``), ``amplitude`` (P radiation
    of the true mechanism along the ray, -1..1), ``snr_true`` (peak |first half-cycle| /
    noise std of that channel; 0 for dead), ``dead``, ``reversed``, ``near_nodal``
    (``|amplitude| < nodal_threshold``), plus ``incidence_deg, p_time_s`` (= SAC ``t1``),
    ``s_time_s, onset_shift_samples`` (true onset - pick, samples), ``emergent, onset_k,
    dominant_freq_hz, noise_std, magnitude``, event/station coordinates and the true
    ``strike, dip, rake``.

    ``plan_options`` go to :func:`plan_waveforms` (``noise_scale``, ``onset_jitter_sd``,
    ``dead_fraction``, ``dead_stations``, ``nodal_threshold``).
    Speed: ~300 events x 66 stations (Z) in a few seconds.
    """
    plan = plan_waveforms(demo_tables, seed, max_events, velocity_model, event_ids=event_ids, **plan_options)
    meta = _meta(plan, components)
    a, b = (0, NPTS) if full_traces else (WINDOW_START, WINDOW_START + WINDOW_LEN)
    x = render(plan, a, b, components)                      # (n_rows, n_comp, len)
    data = x[meta["_row"].to_numpy(), meta["_ci"].to_numpy()]
    if normalize:
        mx = np.max(np.abs(data), axis=1, keepdims=True)
        data = np.divide(data, mx, out=np.zeros_like(data), where=mx > 0)
    return meta.drop(columns=["_row", "_ci"]), np.ascontiguousarray(data, dtype=np.float32)


def write_sac_events(dest, demo_tables: dict, seed: int = DEFAULT_SEED, max_events: int | None = 10,
                     velocity_model=None, *, event_ids=None, components=("Z", "N", "E"),
                     **plan_options) -> pd.DataFrame:
    """Write SAC event folders like ToC2ME's ``waveforms/``:
    ``<dest>/<event_id>/<net>.<sta>.<cha>.SAC``, 5001 samples at 500 Hz, reference time =
    origin (``o`` = 0, ``iztype`` IO), ``t1`` = P pick (``kt1`` 'P') at exactly 5.000 s
    after the first sample (``b = t1 - 5``), ``t2`` = S (``kt2`` 'S'), ``evla, evlo, evdp``
    (km), ``stla, stlo``, ``mag``, ``dist, az, baz, gcarc``, location ``00``, ``cmpaz,
    cmpinc`` (DH1 north, DH2 east). Data in the recorded convention; dead traces all zero.

    Same event choice and samples as :func:`generate_waveforms` with the same arguments
    (default ``max_events`` 10: each event is ~66 x 3 files of 20 kB). Returns the meta
    table with a ``path`` column."""
    from obspy import UTCDateTime
    from obspy.io.sac import SACTrace

    dest = Path(dest)
    plan = plan_waveforms(demo_tables, seed, max_events, velocity_model, event_ids=event_ids, **plan_options)
    meta = _meta(plan, components)
    where = {(int(r), int(c)): i for i, (r, c) in enumerate(zip(meta["_row"], meta["_ci"]))}
    paths = np.empty(len(meta), dtype=object)
    for eid, rows in plan.groupby("event_id", sort=True):
        folder = dest / str(eid)
        folder.mkdir(parents=True, exist_ok=True)
        data = render(rows, 0, NPTS, components)
        if "origin_time" in rows:
            origin = UTCDateTime(pd.Timestamp(rows["origin_time"].iloc[0]).isoformat())
        else:
            origin = UTCDateTime(pd.to_datetime(str(eid), format="%Y%m%d%H%M%S.%f").isoformat())
        ref = UTCDateTime(ns=origin.ns - origin.ns % 1_000_000)   # SAC reference: whole ms
        o = float(origin - ref)
        ref_fields = {"nzyear": ref.year, "nzjday": ref.julday, "nzhour": ref.hour, "nzmin": ref.minute,
                      "nzsec": ref.second, "nzmsec": ref.microsecond // 1000}
        for j, (ri, r) in enumerate(zip(rows.index, rows.itertuples(index=False))):
            dist = float(geo.great_circle_km(r.ev_lat, r.ev_lon, r.st_lat, r.st_lon))
            baz = float(geo.azimuth_deg(r.st_lat, r.st_lon, r.ev_lat, r.ev_lon))
            for ci, c in enumerate(components):
                c = c.upper()
                cha = CHANNELS[c]
                tr = SACTrace(
                    data=np.ascontiguousarray(data[j, ci], dtype=np.float32), delta=1.0 / SAMPLING_RATE,
                    b=o + float(r.p_time_s) - P_SAMPLE / SAMPLING_RATE, o=o, iztype="io",
                    t1=o + float(r.p_time_s), kt1="P", t2=o + float(r.s_time_s), kt2="S",
                    evla=float(r.ev_lat), evlo=float(r.ev_lon), evdp=float(r.ev_depth_km),
                    mag=float(r.magnitude) if np.isfinite(r.magnitude) else None,
                    stla=float(r.st_lat), stlo=float(r.st_lon), dist=dist, az=float(r.azimuth_deg),
                    baz=baz, gcarc=dist / (geo.EARTH_RADIUS_KM * np.pi / 180.0),
                    kstnm=str(r.station), knetwk=str(r.network), kcmpnm=cha, khole=LOCATION,
                    cmpaz={"Z": 0.0, "N": 0.0, "E": 90.0}[c], cmpinc={"Z": 0.0, "N": 90.0, "E": 90.0}[c],
                    lcalda=False, **ref_fields,
                )
                path = folder / f"{r.network}.{r.station}.{cha}.SAC"
                tr.write(str(path))
                paths[where[(int(ri), _COMP_INDEX[c])]] = str(path)
    meta = meta.assign(path=paths)
    return meta.drop(columns=["_row", "_ci"])
