"""Fully nested leave-one-event-out evaluation: inner fold models that never saw the outer event.

:mod:`pipeline.picking.nested` chooses the recipe and the undetermined band for outer event
E on the LOEO predictions of the other event(s) F, but those come from the fold model that
was trained on E's labels (and E's noise). Here the inner predictions of F are made by
**inner fold models trained without anything of E**:

* F's traces are split into ``k`` folds grouped by (event, station) (:func:`inner_split`):
  every station of F, with its vertical window and its noise segments, is in exactly one
  fold; labelled stations are dealt round-robin after a seeded shuffle so the folds hold
  (nearly) equal numbers of labels, unlabelled stations likewise.
* Inner model j is trained with the same recipe and settings as the LOEO fold models
  (:func:`pipeline.picking.training.train_model`: synthetic pre-training on the noise of
  F's stations outside fold j, fine-tuning on F's labels outside fold j) and predicts fold j
  (both recipes: pre-trained only = ``synthetic``, fine-tuned = ``finetuned``). Seeds:
  ``seed + 1000 (i + 1) + 10000 (j + 1)`` for outer fold i (the LOEO fold models use
  ``seed + 1000 (i + 1)``), so the run is deterministic and no seed is shared.
* The guard band of each recipe (never decide looser than it) comes from the inner models'
  predictions on held-out synthetic onsets built from their own training noise
  (``n_val_synthetic`` per inner model), not from the LOEO record's guard, which used a
  model trained on E's labels.
* :func:`pipeline.picking.nested.select` chooses recipe and band on F's inner predictions;
  they are applied to E's LOEO predictions (the record's ``loeo.held_out_predictions``,
  made by the fold model that never saw E). E's counts are reported.

So nothing of E - labels, waveforms, noise - reaches the choice made for E. What stays:
the recipe's settings (epochs, learning rates, grid, target accuracy) were fixed before any
of this, and the production band is still chosen on all pooled LOEO predictions (it is what
is deployed; these numbers estimate how well that procedure does).

Cost: ``k`` inner trainings per outer event (2 k in all with two events), each about as
long as one LOEO fold model (about a minute on 2 quiet CPU threads).
``python -m pipeline nested`` (:func:`run`) writes ``pipeline/models/<model>.full_nested.json``
(:func:`full_nested`); :func:`rescore` recomputes its numbers from the stored inner
predictions without TensorFlow.

Sample size: two labelled events (56 + 62 = 118 labelled traces, two outer folds); each
choice rests on the other event's 56 or 62 inner predictions, from inner models trained on
(k - 1) / k of its labels (k = 3: 37-42), fewer than the LOEO fold models had. The 95 %
Wilson intervals treat traces as independent, so they are too narrow.

Conventions as in :mod:`pipeline.picking.nested`: label 1 = recorded down, probabilities are
prob_down_recorded.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from .nested import RECIPES, apply_choice, nested_from_record, pool_folds, record_predictions, select

log = logging.getLogger(__name__)

DEFAULT_K = 3  #: inner folds per outer event


def inner_split(meta: pd.DataFrame, noise_stations: dict, outer_event: str, k: int, seed: int) -> dict:
    """``{(event_id, station): fold}`` for every station of the events other than
    ``outer_event`` (from ``meta``'s windows and the noise segments' stations).

    Stations with a labelled window are shuffled (``numpy.random.default_rng(seed)``) and
    dealt to folds 0..k-1 in turn, then the unlabelled ones continue the deal, so label
    counts per fold differ by at most one. Raises ``ValueError`` when there are fewer
    labelled stations than folds."""
    if k < 2:
        raise ValueError(f"inner folds need k >= 2, got {k}")
    outer_event = str(outer_event)
    m = meta[meta["event_id"].astype(str) != outer_event]
    keys = list(zip(m["event_id"].astype(str), m["station"].astype(str)))
    labelled = sorted({g for g, lab in zip(keys, m["label"].notna()) if lab})
    others = set(keys) | {(str(e), str(s)) for e, sts in noise_stations.items() if str(e) != outer_event for s in sts}
    unlabelled = sorted(others - set(labelled))
    if len(labelled) < k:
        raise ValueError(f"outer event {outer_event}: {len(labelled)} labelled stations in the inner events, "
                         f"fewer than k = {k} folds")
    rng = np.random.default_rng(seed)
    order = [labelled[i] for i in rng.permutation(len(labelled))] + \
            [unlabelled[i] for i in rng.permutation(len(unlabelled))]
    return {g: i % k for i, g in enumerate(order)}


def row_folds(meta: pd.DataFrame, split: dict) -> np.ndarray:
    """The inner fold of each row of ``meta`` (-1: not in the split, i.e. the outer event)."""
    return np.array([split.get((str(e), str(s)), -1) for e, s in zip(meta["event_id"], meta["station"])], int)


def inner_seed(seed: int, outer_index: int, fold: int) -> int:
    """Seed of inner model ``fold`` of outer fold ``outer_index`` (see the module docstring)."""
    return int(seed) + 1000 * (outer_index + 1) + 10000 * (fold + 1)


def _bank_without(real, events, split: dict, fold: int) -> list[np.ndarray]:
    """Noise segments of ``events`` whose station is in the split but not in ``fold``."""
    return [seg for e in events for seg, s in zip(real.noise.get(e, []), real.noise_stations.get(e, []))
            if split.get((str(e), str(s)), fold) != fold]


def train_inner(cfg, real, outer_event: str, outer_index: int, k: int) -> dict:
    """Train the k inner models of one outer event; returns ``{"predictions": DataFrame
    (event_id, station, inner_fold, label, p_<recipe>) of the inner events' labelled traces,
    "guard_validation": {recipe: (p, y)} on held-out synthetic onsets, "folds": [info]}``."""
    from . import training as T
    meta, lab = real.meta, real.labelled()
    events = sorted(meta["event_id"].astype(str).unique())
    inner_events = [e for e in events if e != str(outer_event)]
    split = inner_split(meta, real.noise_stations, outer_event, k, cfg.seed + outer_index)
    fold_of = row_folds(meta, split)
    preds = {r: np.full(len(meta), np.nan) for r in RECIPES}
    val = {r: ([], []) for r in RECIPES}
    infos = []
    for j in range(k):
        tr = (fold_of >= 0) & (fold_of != j) & lab
        te = (fold_of == j) & lab
        bank = _bank_without(real, inner_events, split, j)
        seed = inner_seed(cfg.seed, outer_index, j)
        log.info("outer %s, inner fold %d/%d: %d labelled training traces, %d held out, %d noise segments",
                 outer_event, j + 1, k, tr.sum(), te.sum(), len(bank))
        model, snap, info = T.train_model(cfg, bank, real.windows[tr], meta.loc[tr, "label"].to_numpy(np.float32), seed)
        Xv, yv, _ = T.synthetic_windows(bank, cfg.n_val_synthetic, seed + 7, cfg)
        keep = yv != 0.5
        preds["finetuned"][te] = T._predict(model, real.windows[te])
        val["finetuned"][0].append(T._predict(model, Xv)[keep])
        model.set_weights(snap)
        preds["synthetic"][te] = T._predict(model, real.windows[te])
        val["synthetic"][0].append(T._predict(model, Xv)[keep])
        for r in RECIPES:
            val[r][1].append(yv[keep])
        infos.append({"fold": j, "seed": seed, "n_train_labelled": int(tr.sum()), "n_held_out_labelled": int(te.sum()),
                      "noise_segments": len(bank),
                      "held_out_stations": sorted(s for (e, s), f in split.items() if f == j),
                      "train": info})
    inner = (fold_of >= 0) & lab
    df = pd.DataFrame({"event_id": meta.loc[inner, "event_id"].astype(str).to_numpy(),
                       "station": meta.loc[inner, "station"].astype(str).to_numpy(),
                       "inner_fold": fold_of[inner], "label": meta.loc[inner, "label"].to_numpy(float)})
    for r in RECIPES:
        df[f"p_{r}"] = preds[r][inner]
    return {"predictions": df, "folds": infos,
            "guard_validation": {r: (np.concatenate(val[r][0]), np.concatenate(val[r][1])) for r in RECIPES}}


def _guard(p, y, target: float) -> dict:
    from .pickers.calibration import choose_band
    g = choose_band(p, y, target)
    return {k: g[k] for k in ("lower", "upper", "n", "coverage", "accuracy", "reached")}


def score(loeo_record: dict, inner: dict, target_accuracy: float) -> dict:
    """The fully nested numbers: per outer event, :func:`select` on the inner predictions
    (``inner[event]["predictions"]`` DataFrame, ``inner[event]["guard"]`` {recipe: {"upper"}})
    applied to that event's LOEO predictions in ``loeo_record``. Same layout as
    :func:`pipeline.picking.nested.nested_loeo` (without ``trace``)."""
    outer_all = record_predictions(loeo_record)
    outer_all = outer_all[outer_all["label"].isin([0.0, 1.0])]
    recipes = [r for r in RECIPES if f"p_{r}" in outer_all]
    folds = []
    for test in sorted(inner):
        pr = inner[test]["predictions"]
        guard = {r: float(g["upper"]) for r, g in inner[test]["guard"].items()}
        choice = select({r: pr[f"p_{r}"].to_numpy(float) for r in recipes}, pr["label"].to_numpy(float),
                        target_accuracy, guard)
        fold, _ = apply_choice(choice, outer_all[outer_all["event_id"].astype(str) == test], recipes)
        folds.append({"test_event": test, "inner_events": sorted(pr["event_id"].astype(str).unique())} | fold)
    out = pool_folds(folds, recipes)
    return out | {"n_events": len(folds), "n_labelled": int(out["pooled"]["n_labelled"]),
                  "target_accuracy": float(target_accuracy)}


def rescore(full: dict, loeo_record: dict) -> dict:
    """:func:`score` from a written fully nested record (its stored inner predictions and
    guards) and the LOEO record: no TensorFlow, used to check and to show the numbers."""
    preds = pd.DataFrame(full["inner_predictions"])
    inner = {o["test_event"]: {"predictions": preds[preds["outer_event"] == o["test_event"]], "guard": o["guard"]}
             for o in full["outer"]}
    return score(loeo_record, inner, full["target_accuracy"])


def full_nested(cfg, k: int = DEFAULT_K, loeo_record: dict | None = None, real=None) -> dict:
    """Train the inner models of every outer event and score (module docstring).

    ``cfg``: a :class:`pipeline.picking.training.TrainConfig` (the LOEO fold models'
    settings: the record's ``config`` when run from :func:`run`); ``loeo_record``: the
    training record whose ``loeo.held_out_predictions`` are the outer predictions (default:
    the committed one). Returns the record that :func:`run` writes."""
    from . import training as T
    t0 = time.perf_counter()
    T._setup(cfg)
    loeo_record = loeo_record if loeo_record is not None else T.load_record()
    outer_preds = record_predictions(loeo_record)
    if outer_preds.empty:
        raise ValueError("the training record has no loeo.held_out_predictions (train with --loeo)")
    real = real if real is not None else T.load_real(cfg.data_dir)
    meta = real.meta
    # the outer predictions must be of the traces loaded here (same events, stations, labels)
    mine = meta.loc[real.labelled(), ["event_id", "station", "label"]].astype({"event_id": str, "station": str})
    theirs = outer_preds[outer_preds["label"].notna()][["event_id", "station", "label"]].astype(
        {"event_id": str, "station": str})
    key = ["event_id", "station"]
    both = mine.merge(theirs, on=key, how="outer", suffixes=("", "_rec"), indicator=True)
    bad = both[(both["_merge"] != "both") | (both["label"] != both["label_rec"])]
    if len(bad):
        raise ValueError(f"the record's held-out predictions do not match the loaded labels at {len(bad)} traces, "
                         f"e.g. {bad[key].head(3).to_dict('records')}")
    events = sorted(meta["event_id"].astype(str).unique())
    if len(events) < 2:
        raise ValueError(f"fully nested LOEO needs at least two events, got {events}")
    inner, outer_info, rows = {}, [], []
    for i, test in enumerate(events):
        res = train_inner(cfg, real, test, i, k)
        guard = {r: _guard(p, y, cfg.target_accuracy) for r, (p, y) in res["guard_validation"].items()}
        inner[test] = {"predictions": res["predictions"], "guard": guard}
        outer_info.append({"test_event": test, "split_seed": cfg.seed + i, "inner_folds": res["folds"], "guard": guard})
        rows += res["predictions"].assign(outer_event=test).to_dict("records")
    result = score(loeo_record, inner, cfg.target_accuracy)
    partial = nested_from_record(loeo_record)
    return {
        "what": "fully nested LOEO evaluation of the polarity CNN (pipeline.picking.full_nested): per outer event, "
                "recipe and band chosen on the other event's predictions by inner fold models trained without any "
                "of the outer event's labels, waveforms or noise",
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "k": int(k),
        "config": asdict(cfg) | {"data_dir": "<shared toc2me>", "out_dir": "<out_dir>"},
        "target_accuracy": float(cfg.target_accuracy),
        "outer_predictions": {"from": f"{loeo_record.get('model', 'cnn_polarity')}.json loeo.held_out_predictions",
                              "weights_sha256": loeo_record.get("weights_sha256")},
        "outer": outer_info,
        "inner_predictions": rows,
        "full_nested": result,
        "partially_nested": None if partial is None else {k2: v for k2, v in partial.items() if k2 != "trace"},
        "sample_note": f"{result['n_events']} outer folds (events), {result['n_labelled']} labelled traces; 95 % "
                       "Wilson intervals treat traces as independent (too narrow for traces of two events)",
        "versions": T._versions(),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def record_path(out_dir, model_name: str = "cnn_polarity") -> Path:
    return Path(out_dir) / f"{model_name}.full_nested.json"


def load_full(path=None) -> dict | None:
    """The committed fully nested record (None when it has not been made)."""
    from .pickers.cnn import DEFAULT_RECORD
    p = Path(path) if path else record_path(Path(DEFAULT_RECORD).parent, Path(DEFAULT_RECORD).stem)
    return json.loads(p.read_text()) if p.exists() else None


def summary(full: dict) -> str:
    from .nested import summary_line
    out = [f"fully nested LOEO ({full['full_nested']['n_events']} events, {full['full_nested']['n_labelled']} labelled "
           f"traces, k = {full['k']} inner folds; 95 % Wilson): {summary_line(full['full_nested']['pooled'])}"]
    out += [f"  fold {f['test_event']}: {f['recipe']}, band {f['lower']:g}/{f['upper']:g}: {summary_line(f['outer'])}"
            for f in full["full_nested"]["folds"]]
    if full.get("partially_nested"):
        out.append(f"partially nested (inner = LOEO predictions): {summary_line(full['partially_nested']['pooled'])}")
    return "\n".join(out)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--k", type=int, default=DEFAULT_K, help="inner folds per outer event (grouped by station)")
    p.add_argument("--record", default=None, help="training record with the LOEO predictions (default: committed)")
    p.add_argument("--data-dir", default=None, help="ToC2ME folder (default: the training default)")
    p.add_argument("--out", default=None, help="output JSON (default: next to the record, <model>.full_nested.json)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--tiny", action="store_true", help="tiny training settings (a smoke run, not the recipe)")


def run(args) -> int:
    """``python -m pipeline nested``: the inner models use the record's own ``config``
    (so the settings are those of its LOEO fold models), then the result is written."""
    from . import training as T
    from .pickers.cnn import DEFAULT_RECORD
    rec_path = Path(args.record or DEFAULT_RECORD)
    if args.tiny and not args.out:   # a smoke run must not replace the committed record
        raise SystemExit("python -m pipeline nested --tiny needs --out (it would overwrite the committed record)")
    loeo_record = T.load_record(rec_path)
    fields = {f for f in T.TrainConfig.__dataclass_fields__}
    conf = {k: v for k, v in (loeo_record.get("config") or {}).items() if k in fields and k not in ("data_dir", "out_dir")}
    cfg = T.TrainConfig(**conf)
    if args.tiny:   # the tiny sizes win over the record's
        tiny = T.TrainConfig.tiny()
        for name in ("n_synthetic", "pretrain_epochs", "finetune_epochs", "finetune_copies", "n_val_synthetic"):
            setattr(cfg, name, getattr(tiny, name))
    cfg.threads = args.threads
    if args.data_dir:
        cfg.data_dir = args.data_dir
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    full = full_nested(cfg, args.k, loeo_record)
    out = Path(args.out) if args.out else record_path(rec_path.parent, rec_path.name.removesuffix(".json"))
    out.write_text(json.dumps(T._jsonable(full), indent=1) + "\n")
    print(summary(full))
    print(f"written {out}")
    return 0
