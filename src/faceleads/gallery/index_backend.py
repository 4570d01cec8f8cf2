"""The search-index contract (``VectorIndex``) shared by every backend, its input checks, and the factory that
opens the backend chosen by ``Settings.index_backend``.

Backends:

* ``memory`` (default): :class:`faceleads.gallery.index.TemplateIndex`, exact brute force in this process,
  rebuilt from the database (the truth) at start. See docs/search-index.md.
* ``milvus``: :class:`faceleads.gallery.index_milvus.MilvusIndex`, one Milvus collection shared by every app
  server, the gallery id as partition key. Persistent: a restarted process reconciles it with the database
  instead of rebuilding it. See docs/deployment.md, "Distributed vector engine (Milvus)".

Search, enrolment and destruction code talk to :class:`VectorIndex` only. Scores are inner products of
unit-norm float32 templates (cosine similarity); results are best first, ties broken by id.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from faceleads.errors import ValidationError

if TYPE_CHECKING:
    from faceleads.config import Settings
    from faceleads.gallery.index import TemplateIndex

__all__ = [
    "IndexInputError",
    "VectorIndex",
    "check_add",
    "check_ids",
    "check_k",
    "check_partitions",
    "check_queries",
    "memory_index",
    "open_index",
    "sort_hits",
]

_INT32_MIN = int(np.iinfo(np.int32).min)
_INT32_MAX = int(np.iinfo(np.int32).max)
NORM_TOLERANCE = 1e-3  # float32 unit vectors are within ~1e-6 of norm 1; 1e-3 catches unnormalised input


class IndexInputError(ValidationError, ValueError):
    """Arguments given to the template index are malformed (shape, dtype, non-finite values...)."""


@runtime_checkable
class VectorIndex(Protocol):
    """Top-k inner-product search over unit-norm templates, partitioned by gallery.

    Contract (tested against every backend by ``tests/gallery/test_index_contract.py``):

    * ``add(ids, vectors, partitions)``: int64 ``(n,)``, float32 unit-norm ``(n, dim)``, int32 ``(n,)``.
      Re-adding an id replaces its vector and partition; duplicate ids within one call, wrong shapes,
      non-finite or non-unit vectors raise :class:`IndexInputError` and change nothing.
    * ``remove(ids)`` returns how many were present; unknown ids are ignored.
    * ``search(queries, k, allowed_partitions)``: ``(ids, scores)`` int64/float32 ``(q, k')``, best first,
      ties by id, ``k' = min(k, visible templates)``, never padded; only the allowed partitions are seen.
    * ``count(allowed_partitions)``, ``len``, ``in``, ``present(ids)`` (which of these ids are held, int64 sorted),
      ``ids()``, ``partition_counts()`` describe the contents.
    * ``persistent``: whether the contents outlive the process (then the owner reconciles instead of rebuilding).
    * ``max_k``: the largest ``k`` the engine answers (None: unlimited).
    """

    dim: int

    @property
    def persistent(self) -> bool: ...

    @property
    def max_k(self) -> int | None: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray, partitions: np.ndarray) -> None: ...

    def remove(self, ids: Iterable[int]) -> int: ...

    def search(
        self, queries: np.ndarray, k: int, allowed_partitions: Collection[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...

    def count(self, allowed_partitions: Collection[int] | None = None) -> int: ...

    def __len__(self) -> int: ...

    def __contains__(self, id: object) -> bool: ...

    def present(self, ids: Iterable[int]) -> np.ndarray: ...

    def ids(self) -> np.ndarray: ...

    def partition_counts(self) -> dict[int, int]: ...

    def close(self) -> None: ...


# ----------------------------------------------------------------------------------------------- input checks
def check_ids(ids: object, name: str = "ids") -> np.ndarray:
    """A 1-D integer array as int64 (empty input gives an empty array)."""
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise IndexInputError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise IndexInputError(f"{name} must be integers, got dtype {arr.dtype}")
    if arr.dtype.kind == "u" and int(arr.max()) > np.iinfo(np.int64).max:
        raise IndexInputError(f"{name} must fit in int64")
    return arr.astype(np.int64, copy=False)


def check_matrix(values: object, dim: int, name: str) -> np.ndarray:
    """A finite real ``(n, dim)`` matrix as float32."""
    arr = np.asarray(values)
    if arr.dtype.kind not in "fiu":
        raise IndexInputError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise IndexInputError(f"{name} must have shape (n, {dim}), got {arr.shape}")
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise IndexInputError(f"{name} contain non-finite values (NaN or infinity)")
    return arr


def check_add(
    dim: int, ids: object, vectors: object, partitions: object
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate the arguments of ``add``: ``(ids int64, vectors float32 unit rows, partitions int64)``."""
    id_arr = check_ids(ids)
    vec = check_matrix(vectors, dim, "vectors")
    part_arr = check_ids(partitions, "partitions")
    if not (id_arr.size == vec.shape[0] == part_arr.size):
        raise IndexInputError(
            f"ids, vectors and partitions must have the same length, got "
            f"{id_arr.size}, {vec.shape[0]} and {part_arr.size}"
        )
    if id_arr.size == 0:
        return id_arr, vec, part_arr
    if int(part_arr.min()) < _INT32_MIN or int(part_arr.max()) > _INT32_MAX:
        raise IndexInputError("partitions must fit in int32")
    norms = np.linalg.norm(vec, axis=1)
    bad = np.flatnonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)
    if bad.size:
        raise IndexInputError(
            f"vectors must be unit-norm; {bad.size} are not (e.g. id {int(id_arr[bad[0]])} "
            f"has norm {float(norms[bad[0]]):.4f})"
        )
    if np.unique(id_arr).size != id_arr.size:
        raise IndexInputError("ids contain duplicates within one add() call")
    return id_arr, vec, part_arr


def check_queries(queries: object, dim: int) -> np.ndarray:
    """Queries ``(dim,)`` or ``(q, dim)`` as a float32 ``(q, dim)`` matrix."""
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q[None, :]
    return check_matrix(q, dim, "queries")


def check_k(k: object, max_k: int | None = None) -> int:
    """A positive integer ``k`` (at most ``max_k`` when the engine has a limit)."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise IndexInputError(f"k must be a positive integer, got {k!r}")
    if max_k is not None and k > max_k:
        raise IndexInputError(f"k must be at most {max_k} for this index backend, got {k}")
    return int(k)


def check_partitions(allowed_partitions: Collection[int] | None) -> set[int] | None:
    """The allowed partition set (None = all)."""
    if allowed_partitions is None:
        return None
    if isinstance(allowed_partitions, str | bytes):
        raise IndexInputError("allowed_partitions must be a collection of integers")
    try:
        return {int(p) for p in allowed_partitions}
    except (TypeError, ValueError) as exc:
        raise IndexInputError(f"allowed_partitions must be integers: {exc}") from exc


def sort_hits(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order one query's hits best first, ties by id (engines return ties in no defined order)."""
    order = np.lexsort((ids, -scores))
    return ids[order], scores[order]


# ------------------------------------------------------------------------------------------------------ factory
def collection_name(prefix: str, model_version: str, dim: int) -> str:
    """Milvus collection of one embedding model: templates of different models are never compared."""
    digest = hashlib.sha256(f"{model_version}|{dim}".encode()).hexdigest()[:12]
    return f"{prefix}_templates_{digest}"


def open_index(settings: Settings, dim: int, model_version: str) -> VectorIndex:
    """The template index of ``Settings.index_backend`` for one embedding model.

    ``memory``: a new, empty in-process index (the caller fills it from the database). ``milvus``: the shared
    collection at ``Settings.milvus_uri`` (created if missing, with its current contents otherwise).
    """
    if settings.index_backend == "milvus":
        from faceleads.gallery.index_milvus import MilvusIndex

        return MilvusIndex(
            settings.milvus_uri or str(settings.data_dir / "milvus.db"),
            dim=dim,
            collection=collection_name(settings.milvus_collection_prefix, model_version, dim),
            token=settings.milvus_token,
            db_name=settings.milvus_db_name,
            index_type=settings.milvus_index_type,
            timeout=settings.milvus_timeout_s,
        )
    return memory_index(settings, dim)


def memory_index(settings: Settings, dim: int) -> TemplateIndex:
    """A new, empty in-process index with the storage of ``Settings.index_dtype``."""
    from faceleads.gallery.index import TemplateIndex

    if settings.index_dtype == "sign_int8":
        return TemplateIndex(dim=dim, dtype="sign_int8", prefilter=settings.index_prefilter)
    return TemplateIndex(dim=dim, dtype=settings.index_dtype)
