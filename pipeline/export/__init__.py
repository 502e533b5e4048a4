"""Exports: :mod:`.exports`, QuakeML and CSV mechanisms and the SKHASH input folder."""
