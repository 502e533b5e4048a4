"""The stored velocity-model robustness study (:mod:`pipeline.demo.robustness`): its file
names, per-event columns, and how it is read back (:func:`read`, :func:`read_for_page`).

Only numpy and pandas: the polarity-model page reads the study on every load, and importing
:mod:`pipeline.demo.robustness` (the demo scenario, waveform synthesis, SciPy) would cost its
first load ~0.3 s. :mod:`pipeline.demo.robustness` re-exports every name here.
Kagan angles in degrees; ``case`` is ``matched`` or ``perturbed``.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pandas as pd

CASES = ("matched", "perturbed")
#: the file ``python -m pipeline robustness`` writes in the data folder by default (a study made
#: for that folder, e.g. with other settings; the page prefers it to the committed :data:`RECORD`)
RESULT_FILE = "robustness_velocity_model.json"
#: the committed record of the default study (``python -m pipeline robustness --record``,
#: ``make robustness``): what the model page shows when the data folder has no study of its own
RECORD = Path(__file__).resolve().parents[1] / "models" / RESULT_FILE
#: the per-event rows of a study (``events`` of :func:`pipeline.demo.robustness.run_study` and of
#: the JSON): one per case x picker x inverted event; ``quality``/``truth_kagan``/``strike``... are
#: None when unsolved
EVENT_COLUMNS = ["case", "picker", "event_id", "solved", "quality", "truth_kagan", "strike", "dip", "rake",
                 "n_polarities", "polarity_misfit", "n_inverted", "n_wrong", "reason"]


def paired_change(mechanisms: pd.DataFrame) -> pd.DataFrame:
    """Per picker, the events solved in **both** cases: ``n_both``, median and 90th
    percentile of the per-event change in Kagan angle to the truth (perturbed - matched, deg),
    ``n_worse_5`` (events at least 5 deg further from the truth when perturbed),
    ``n_better_5``, and ``n_quality_changed`` (SKHASH class differs between the cases)."""
    rows = []
    for picker, g in mechanisms.groupby("picker", sort=False):
        a = g[g["case"] == "matched"].set_index("event_id")
        b = g[g["case"] == "perturbed"].set_index("event_id")
        both = a.index.intersection(b.index)
        d = (b.loc[both, "truth_kagan"] - a.loc[both, "truth_kagan"]).to_numpy(float)
        rows.append({"picker": picker, "n_both": int(len(both)),
                     "median_change_deg": float(np.median(d)) if len(d) else float("nan"),
                     "p90_change_deg": float(np.percentile(d, 90)) if len(d) else float("nan"),
                     "n_worse_5": int(np.sum(d >= 5)), "n_better_5": int(np.sum(d <= -5)),
                     "n_quality_changed": int(np.sum(a.loc[both, "quality"].to_numpy() != b.loc[both, "quality"].to_numpy()))})
    return pd.DataFrame(rows, columns=["picker", "n_both", "median_change_deg", "p90_change_deg", "n_worse_5",
                                       "n_better_5", "n_quality_changed"])


def mechanisms_of(events: pd.DataFrame) -> pd.DataFrame:
    """The solved rows of per-event rows (what :func:`paired_change` reads)."""
    m = events[events["solved"].astype(bool)].drop(columns=["solved", "reason"])
    return m.astype({"truth_kagan": float}).reset_index(drop=True)


def read(path: str | Path) -> dict | None:
    """The stored study (:func:`to_json` document; ``summary``, ``polarity``, ``unsolved``,
    ``events`` as DataFrames, ``paired`` recomputed from the events), None when the file is
    absent or not a study. A version-1 file (no per-event rows, only solved ``mechanisms``)
    is read too: its ``events`` is empty. Parsed once per file version (path, mtime, size):
    the model page reads it on every load; the caller gets its own copies of the frames."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        return None
    doc = _parsed(str(path), st.st_mtime_ns, st.st_size) if path.is_file() else None
    return None if doc is None else {k: v.copy() if isinstance(v, pd.DataFrame) else v for k, v in doc.items()}


@functools.lru_cache(maxsize=8)
def _parsed(path: str, mtime_ns: int, size: int) -> dict | None:
    """:func:`read`'s document of one version of ``path`` (the stat fields key the cache)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if doc.get("kind") != "velocity_model_robustness":
        return None
    doc["summary"] = pd.DataFrame(doc.get("summary", []))
    doc["polarity"] = pd.DataFrame(doc.get("polarity", []))
    doc["unsolved"] = pd.DataFrame(doc.get("unsolved", []), columns=["case", "picker", "reason", "n"])
    doc["events"] = pd.DataFrame(doc.get("events", []), columns=EVENT_COLUMNS)
    solved = mechanisms_of(doc["events"]) if len(doc["events"]) else pd.DataFrame(doc.get("mechanisms", []))
    doc["paired"] = paired_change(solved.reindex(columns=["event_id", "case", "picker", "truth_kagan", "quality"]))
    return doc


def read_for_page(data_dir: str | Path) -> tuple[dict | None, str | None]:
    """(study, where it comes from) for the model page: this data folder's
    ``<data-dir>/`` :data:`RESULT_FILE` (``"data"``) when it has one, else the committed
    :data:`RECORD` (``"committed"``; the study depends on the seeded demo scenario and the
    committed CNN only, not on the build), else (None, None)."""
    doc = read(Path(data_dir) / RESULT_FILE)
    if doc is not None:
        return doc, "data"
    doc = read(RECORD)
    return (doc, "committed") if doc is not None else (None, None)
