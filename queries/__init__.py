"""Per-page queries of the dashboard: what a page reads from the Parquet tables (through the
app's :class:`components.data.DataProvider`, its DuckDB connection and its filtered
relations) and how much of it, bounded per request by :class:`queries.caps.Caps`.

One module per page (``classification``, ``diffusion``, ``strike_time``, ``model``) plus
the caps; :mod:`components` keeps the figure builders. The provider's own methods are the
shared relations (filtered rows, counts, the map's sample) that several pages use.
"""
