"""Batch side of the focal-mechanism workbench: raw inputs -> validated Parquet tables.

Run ``python -m pipeline --help``. The Dash app imports only the light, pure-NumPy
modules of this package (schema, geo, mechanisms.focal, mechanisms.groups); TensorFlow,
ObsPy and SKHASH are imported lazily by the steps that need them.
"""
