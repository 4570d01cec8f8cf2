"""The watch list in memory: every template of every listed person, compared with a face's embedding at once.

Rows are L2-normalised float32 templates of one template version (``model_version``: the models, their file digests,
flip averaging and fusion; 512-d for the default ArcFace model, longer for a fusion), so a matrix product gives
cosine similarities. Templates of different versions are never compared: the list records the version it was built
from and the pipeline refuses to run it with an engine of another version. An entry can be dropped at any time (its
record destroyed, its entry expired): the matrix is rebuilt without its rows, so from that moment the person can no
longer be alerted on.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from faceleads.errors import ValidationError

EMBEDDING_DIM = 512  # ArcFace-size templates: the length of an empty list's rows when none is given


@dataclass(frozen=True)
class ListedPerson:
    """One watch-list entry: its key (frozen entry id, or identity in an evaluation), a label for people, and its
    templates (float32 (k, dim), unit rows) with a reference per template (e.g. the gallery image id)."""

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
    """Listed people's templates in one matrix (see the module docstring).

    ``model_version``: the template version of every row (None only in unit tests); ``dim``: the template length,
    taken from the first person's templates when not given.
    """

    def __init__(
        self, people: Iterable[ListedPerson], *, model_version: str | None = None, dim: int | None = None
    ) -> None:
        self.model_version = model_version
        self._people: dict[Hashable, ListedPerson] = {}
        for person in people:
            vectors = np.asarray(person.vectors, dtype=np.float32)
            if vectors.ndim == 1:
                vectors = vectors[None]
            if vectors.shape[0] == 0:
                continue
            if dim is None:
                dim = int(vectors.shape[-1])
            if vectors.ndim != 2 or vectors.shape[1] != dim:
                raise ValidationError(
                    f"watch-list entry {person.label!r}: templates of {vectors.shape[-1]} values in a list of {dim}"
                )
            if vectors.shape[0] != len(person.refs):
                raise ValidationError(f"watch-list entry {person.label!r}: one reference per template is needed")
            self._people[person.key] = ListedPerson(person.key, person.label, vectors, tuple(person.refs))
        self.dim = dim if dim is not None else EMBEDDING_DIM
        self._rebuild()

    def _rebuild(self) -> None:
        people = list(self._people.values())
        if people:
            self._matrix = np.ascontiguousarray(np.concatenate([p.vectors for p in people]), dtype=np.float32)
            self._owner = np.concatenate([np.full(len(p.refs), i, np.int32) for i, p in enumerate(people)])
            self._refs = np.concatenate([np.asarray(p.refs, np.int64) for p in people])
        else:
            self._matrix = np.zeros((0, self.dim), np.float32)
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

    def _queries(self, vectors: npt.ArrayLike) -> npt.NDArray[np.float32]:
        q = np.asarray(vectors, dtype=np.float32)
        if q.ndim == 0 or q.shape[-1] != self.dim:
            length = q.shape[-1] if q.ndim else q.size
            raise ValidationError(f"a face template of {length} values cannot be compared with a list of {self.dim}")
        return q.reshape(-1, self.dim)

    def best(self, vectors: npt.ArrayLike) -> Match | None:
        """The best match of one or more embeddings (float32 (s, dim), unit rows) of one face; None if empty."""
        if self.templates == 0:
            return None
        q = self._queries(vectors)
        if q.shape[0] == 0:
            return None
        scores = q @ self._matrix.T  # (s, M)
        flat = int(np.argmax(scores))
        row = flat % self.templates
        person = self._order[int(self._owner[row])]
        return Match(person.key, person.label, float(scores.reshape(-1)[flat]), int(self._refs[row]))

    def best_per_row(self, vectors: npt.ArrayLike) -> Sequence[Match | None]:
        """:meth:`best` for each row separately (one embedding per face of a frame)."""
        q = self._queries(vectors)
        return [self.best(q[i : i + 1]) for i in range(q.shape[0])]

    def scores_by_person(self, vector: npt.ArrayLike) -> dict[Hashable, float]:
        """The best score of one embedding against each listed person (evaluation: impostor scores)."""
        if self.templates == 0:
            return {}
        scores = self._queries(vector).reshape(1, self.dim) @ self._matrix.T
        out: dict[Hashable, float] = {}
        for row, value in enumerate(scores[0]):
            key = self._order[int(self._owner[row])].key
            out[key] = max(out.get(key, -1.0), float(value))
        return out
