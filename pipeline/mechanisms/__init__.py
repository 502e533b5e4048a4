"""Focal mechanisms: geometry, ray tracing, the SKHASH inversion and the derived columns.

* :mod:`.focal` - planes, slip vectors, P/B/T axes, radiation (pure NumPy);
* :mod:`.groups` - the published strike/dip group rule, rake and Zoback styles;
* :mod:`.enrich` - derived columns shared by every data source;
* :mod:`.raytrace` - take-off angles in 1-D layered velocity models;
* :mod:`.skhash` - SKHASH 1.1.5 in a subprocess;
* :mod:`.invert` - polarities -> computed mechanisms (the batch inversion), and the
  composite mechanism of several events (``invert.composite``);
* :mod:`.composite` - the composite mechanism of a filtered selection (``python -m pipeline composite``).
"""
