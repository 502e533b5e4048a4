"""Figure builders: pure functions that take DataFrames and return Plotly figures/traces."""
