"""Input/output helpers of the batch side: downloads of public data sets and readers of outside file formats (SAC)."""
