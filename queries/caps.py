"""How much one request may draw or analyse: the dashboard's per-request bounds.

Every page stays bounded at 1,000,000 events / 100,000 mechanisms (issue 10 #4): what it
draws is capped (a deterministic sample, "N matched / N drawn" in the filter bar), what it
counts is computed over all matched rows in DuckDB or on lean columns, and tables are paged
on the server. The defaults are far above the ToC2ME catalogue (21,619 events, 2,519
mechanisms), so there every page draws and analyses everything.

The caps live on the provider (``DataProvider.caps``); ``FM_CAP_<FIELD>`` environment
variables (e.g. ``FM_CAP_POINTS=5000``) override a default, and a test may set lower caps
on ``get_provider().caps`` to exercise the capped paths on a small catalogue.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

#: the seed of the diffusion page's subsample rule (:mod:`queries.diffusion`)
SAMPLE_SEED = "fm-diffusion-1"


@dataclass(frozen=True)
class Caps:
    """Per-request bounds (counts of rows; all must be >= 1).

    ``map_events``: events drawn on the map and the magnitude-time plot (a fixed
    pseudo-random sample beyond it, :meth:`components.data.DataProvider.events_for_map`).
    ``map_mechanisms``: beachballs on the map (the largest magnitudes).
    ``points``: mechanisms drawn one by one on the classification map and ternary diagram
    and the strike-time plot (a fixed sample by event id beyond it,
    :func:`components.stereonet.sample_rows`); counts, averages and statistics use all.
    ``diffusion_events``: events of one diffusion analysis (distance-time plot, D fit,
    bootstrap, activation player): beyond it a seeded sample (:mod:`queries.diffusion`).
    Tables (the map's mechanisms, the model page's per-event agreement) are paged on the
    server with their own page sizes.
    """

    map_events: int = 50_000
    map_mechanisms: int = 4_000
    points: int = 10_000
    diffusion_events: int = 25_000   # above ToC2ME's whole catalogue: its sets are never sampled

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"cap {f.name} must be a positive integer, got {v!r}")

    @classmethod
    def from_env(cls, environ=None) -> "Caps":
        """The defaults with ``FM_CAP_<FIELD>`` overrides (a bad value raises ValueError
        naming the variable)."""
        env = os.environ if environ is None else environ
        over = {}
        for f in fields(cls):
            key = f"FM_CAP_{f.name.upper()}"
            if key in env:
                try:
                    over[f.name] = int(env[key])
                except ValueError:
                    raise ValueError(f"{key}={env[key]!r}: not an integer") from None
        return replace(cls(), **over)
