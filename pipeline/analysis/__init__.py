"""Pure computations behind the analysis pages (no Dash, no plotting).

Every function takes DataFrames or arrays and returns DataFrames, dicts or arrays, so the
pages stay thin and the numbers are testable without a browser. Modules:

* :mod:`.magnitudes` -- magnitude histograms, frequency-magnitude distribution,
  completeness magnitude (maximum curvature, goodness-of-fit), Aki-Utsu b-value.
* :mod:`.mechanism_stats` -- strike normalisations, axial differences, rose binning,
  moment-tensor average mechanism per group with its P/B/T axes and Kagan spread,
  Frohlich ternary coordinates.
* :mod:`.strike_time` -- the NSw strike-vs-time table, stage markers, daily injection
  bars, brushed-time-range filters.
* :mod:`.diffusion` -- distance-time from an origin event, the diffusion envelope
  r = sqrt(4 pi D t), the fitted diffusivity with a bootstrap interval, activation
  bookmarks and frames.

All are cheap enough to run per request on ToC2ME-sized inputs (tens of ms at most);
the bootstrap in :mod:`.diffusion` is vectorised (a few ms for 1,000 resamples of ~150
events). Importing this package pulls in only NumPy and pandas.
"""
