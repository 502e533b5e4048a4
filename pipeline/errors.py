"""Errors the pipeline raises for bad input; each names the file and, where known, the line."""
from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """An input file is missing, unreadable or unusable as a whole.

    Row-level problems do not raise: they become ``rejects`` rows (see
    :class:`pipeline.rejects.Rejects`).
    """

    def __init__(self, file: str | Path, reason: str, line: int | None = None):
        self.file, self.reason, self.line = str(file), reason, line
        where = f"{self.file}, line {line}" if line is not None else self.file
        super().__init__(f"{where}: {reason}")
