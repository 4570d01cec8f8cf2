"""The watch list in memory: every template of every listed person, compared with a face's embedding at once.

Rows are L2-normalised float32 embeddings (512-d), so a matrix product gives cosine similarities. An entry can be
dropped at any time (its record destroyed, its entry expired): the matrix is rebuilt without its rows, so from that
moment the person can no longer be alerted on.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceleads.errors import ValidationError

EMBEDDING_DIM = 512


@dataclass(frozen=True)
class ListedPerson:
    """One watch-list entry: its key (frozen entry id, or identity in an evaluation), a label for people, and its
    templates (float32 (k, 512), unit rows) with a reference per template (e.g. the gallery image id)."""

    key: Hashable
    label: str
    vectors: npt.NDArray[np.float32]
    refs: tuple[int, ...]


@dataclass(frozen=True)
class Match:
    """The best watch-list match of a face."""

    key: Hashable
    label: str
    score: float
    ref: int


class WatchListMatrix:
    """Listed people's templates in one matrix (see the module docstring)."""

    def __init__(self, people: Iterable[ListedPerson]) -> None:
        self._people: dict[Hashable, ListedPerson] = {}
        for person in people:
            vectors = np.asarray(person.vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
            if vectors.shape[0] == 0:
                continue
            if vectors.shape[0] != len(person.refs):
                raise ValidationError(f"watch-list entry {person.label!r}: one reference per template is needed")
            self._people[person.key] = ListedPerson(person.key, person.label, vectors, tuple(person.refs))
        self._rebuild()

    def _rebuild(self) -> None:
        people = list(self._people.values())
        if people:
            self._matrix = np.ascontiguousarray(np.concatenate([p.vectors for p in people]), dtype=np.float32)
            self._owner = np.concatenate([np.full(len(p.refs), i, np.int32) for i, p in enumerate(people)])
            self._refs = np.concatenate([np.asarray(p.refs, np.int64) for p in people])
        else:
            self._matrix = np.zeros((0, EMBEDDING_DIM), np.float32)
            self._owner = np.zeros(0, np.int32)
            self._refs = np.zeros(0, np.int64)
        self._order = people

    @property
    def people(self) -> int:
        """Listed people (entries) still in the list."""
        return len(self._people)

    @property
    def templates(self) -> int:
        """Templates each face is compared with."""
        return int(self._matrix.shape[0])

    def keys(self) -> list[Hashable]:
        return list(self._people)

    def drop(self, keys: Iterable[Hashable]) -> int:
        """Remove entries at once (destroyed or expired); returns how many were in the list."""
        removed = 0
        for key in keys:
            if self._people.pop(key, None) is not None:
                removed += 1
        if removed:
            self._rebuild()
        return removed

    def best(self, vectors: npt.ArrayLike) -> Match | None:
        """The best match of one or more embeddings (float32 (s, 512), unit rows) of one face; None if empty."""
        if self.templates == 0:
            return None
        q = np.asarray(vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        if q.shape[0] == 0:
            return None
        scores = q @ self._matrix.T  # (s, M)
        flat = int(np.argmax(scores))
        row = flat % self.templates
        person = self._order[int(self._owner[row])]
        return Match(person.key, person.label, float(scores.reshape(-1)[flat]), int(self._refs[row]))

    def best_per_row(self, vectors: npt.ArrayLike) -> Sequence[Match | None]:
        """:meth:`best` for each row separately (one embedding per face of a frame)."""
        q = np.asarray(vectors, dtype=np.float32).reshape(-1, EMBEDDING_DIM)
        return [self.best(q[i : i + 1]) for i in range(q.shape[0])]

    def scores_by_person(self, vector: npt.ArrayLike) -> dict[Hashable, float]:
        """The best score of one embedding against each listed person (evaluation: impostor scores)."""
        if self.templates == 0:
            return {}
        scores = np.asarray(vector, dtype=np.float32).reshape(1, EMBEDDING_DIM) @ self._matrix.T
        out: dict[Hashable, float] = {}
        for row, value in enumerate(scores[0]):
            key = self._order[int(self._owner[row])].key
            out[key] = max(out.get(key, -1.0), float(value))
        return out
