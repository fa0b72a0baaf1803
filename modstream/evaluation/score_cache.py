"""Scores kept on disk between ``modstream eval`` runs (SQLite, in the standard library).

A score is keyed by the image's sha256, the model id and the preprocessing, so a second run over
the same set is instant, and a new model or mode never reuses an old score. URLs are remembered
by the sha256 their content had: a labelled set's URLs are taken to be immutable (pass
``--no-score-cache`` if they are not).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Self

__all__ = ["ScoreCache"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    sha256 TEXT NOT NULL, model TEXT NOT NULL, preprocessing TEXT NOT NULL, nsfw REAL NOT NULL,
    PRIMARY KEY (sha256, model, preprocessing)
);
CREATE TABLE IF NOT EXISTS urls (url TEXT PRIMARY KEY, sha256 TEXT NOT NULL);
"""


class ScoreCache:
    def __init__(self, path: Path | None, *, model: str, preprocessing: str) -> None:
        """``path`` None keeps nothing (every lookup misses)."""
        self._model = model
        self._preprocessing = preprocessing
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path)
            self._db.executescript(_SCHEMA)
        self.hits = 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._db.close()
            self._db = None

    def score(self, sha256: str) -> float | None:
        if self._db is None:
            return None
        row = self._db.execute(
            "SELECT nsfw FROM scores WHERE sha256 = ? AND model = ? AND preprocessing = ?",
            (sha256, self._model, self._preprocessing),
        ).fetchone()
        if row is None:
            return None
        self.hits += 1
        return float(row[0])

    def sha256_of(self, url: str) -> str | None:
        if self._db is None:
            return None
        row = self._db.execute("SELECT sha256 FROM urls WHERE url = ?", (url,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, sha256: str, nsfw: float, *, url: str | None = None) -> None:
        if self._db is None:
            return
        self._db.execute(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)",
            (sha256, self._model, self._preprocessing, nsfw),
        )
        if url is not None:
            self._db.execute("INSERT OR REPLACE INTO urls VALUES (?, ?)", (url, sha256))
