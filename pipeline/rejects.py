"""Collects input rows that were not used, with their reasons (the ``rejects`` table)."""
from __future__ import annotations

import pandas as pd


class Rejects:
    """Accumulates reject records; ``to_frame()`` gives the ``rejects`` table."""

    def __init__(self):
        self._rows: list[dict] = []

    def add(self, file: str, line: int | None, reason: str, content: str | None = None,
            stage: str = "ingest") -> None:
        """Record that ``line`` (1-based; None for a whole file) of ``file`` was not used."""
        text = None if content is None else str(content)[:300]
        self._rows.append({"file": str(file), "line": line, "reason": reason, "content": text, "stage": stage})

    def extend(self, other: "Rejects") -> None:
        self._rows.extend(other._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def to_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self._rows, columns=["file", "line", "reason", "content", "stage"])
        df["line"] = df["line"].astype("Int64")
        return df
