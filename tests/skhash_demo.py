"""The published 3-event ToC2ME SKHASH run (``<toc2me>/skhash_demo``: ``IN/`` and ``OUT/``),
shared by the tests of the SKHASH export (test_exports) and runner (test_skhash).
Plain functions, imported as ``import skhash_demo`` (``tests`` is on ``pythonpath``)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

#: SKHASH integer ids of the demo -> event ids (toc2me README section 6)
DEMO_IDS = {1: "20161104064824.680", 2: "20161125051408.940", 3: "20161128051644.670"}


def demo_dir(toc2me: Path) -> Path:
    """``<toc2me>/skhash_demo``; skips the test when its inputs are absent."""
    d = Path(toc2me) / "skhash_demo"
    if not (d / "IN" / "SKHASH.pol.csv").is_file():
        pytest.skip(f"ToC2ME SKHASH demo not found at {d} (set TOC2ME_DIR)")
    return d


def demo_inputs(d: Path):
    """The demo's ``IN/`` files as this project's tables: ``(events, polarities, stations,
    velocity model path)`` (3 events, 153 polarities)."""
    cat = pd.read_csv(d / "IN" / "SKHASH.eq_catalog.csv")
    ev = pd.DataFrame({
        "event_id": cat["event_id"].map(DEMO_IDS),
        "lat": cat["latitude"], "lon": cat["longitude"], "depth_km": cat["depth"],
        "horz_uncert_km": cat["horz_uncert_km"], "vert_uncert_km": cat["vert_uncert_km"],
    })
    # time from the id (the demo's own time column is locale-garbled in OUT/)
    ev["time"] = pd.to_datetime(ev["event_id"], format="%Y%m%d%H%M%S.%f", utc=True)
    p = pd.read_csv(d / "IN" / "SKHASH.pol.csv", dtype={"station": str, "network": str})
    pol = pd.DataFrame({"event_id": p["event_id"].map(DEMO_IDS), "network": p["network"],
                        "station": p["station"], "polarity": p["p_polarity"].astype(int)})
    s = pd.read_csv(d / "IN" / "SKHASH.stations.csv", dtype={"station": str})
    st = pd.DataFrame({"network": "5B", "station": s["station"], "lat": s["latitude"],
                       "lon": s["longitude"], "elevation_m": s["elevation"].astype(float)})
    assert ev["event_id"].notna().all() and pol["event_id"].notna().all()
    return ev, pol, st, d / "vz.north"
