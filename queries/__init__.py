"""Per-page queries of the dashboard: what a page reads from the Parquet tables (through the
app's :class:`components.data.DataProvider`, its DuckDB connection and its filtered
relations) and how much of it, bounded per request by :class:`queries.caps.Caps`.

One module per page (``map``: the mechanism table; ``magnitudes``, ``classification``,
``strike_time``, ``diffusion``, ``model``, ``event``; ``composite`` for the composite
mechanisms) plus the caps; :mod:`components` keeps the figure builders. The provider's own
methods are what several pages share: the connection, the filtered relations and the
population, counts, the map's sample, the small tables and the CSV export.
"""
