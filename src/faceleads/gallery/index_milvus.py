"""Milvus backend of the search index (``FACELEADS_INDEX_BACKEND=milvus``), through pymilvus' ``MilvusClient``.

One collection per embedding model holds every template of every agency: ``id`` (the template's database id,
primary key), ``gallery`` (the gallery id, the collection's **partition key**) and ``vector`` (the unit-norm
float32 template). A search's gallery filter (``gallery in [...]``: the searching agency's own galleries plus
those shared with it) is evaluated by Milvus, which also uses it to prune the hashed partitions it scans, so a
template of a gallery the agency may not see never leaves the engine. Nothing else is stored: no names, no
subject ids, no photos (see docs/deployment.md for the risk of the vectors themselves and the mitigations).

Consistency is ``Strong`` on every request: a removal (a destruction) is invisible to every later search of
every app server, and an addition visible, once the call returns. Index type ``FLAT`` (the default) is an exact
brute-force scan, distributed over Milvus' query nodes; ``HNSW``/``IVF_*`` trade recall for latency and are
measured by ``benchmarks/search_scale.py --backend milvus``.

The same code runs against an embedded milvus-lite file (a local path ending in ``.db``) in development and tests,
and against Milvus standalone or distributed (``https://host:19530`` with a token) in production.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Iterable
from typing import Any

import numpy as np

from faceleads.errors import ConfigurationError, FaceleadsError
from faceleads.gallery.index_backend import (
    IndexInputError,
    check_add,
    check_ids,
    check_k,
    check_partitions,
    check_queries,
    sort_hits,
)

__all__ = ["MILVUS_MAX_K", "IndexUnavailableError", "MilvusIndex"]

MILVUS_MAX_K = 16_384  # Milvus' limit on topk (and on offset + limit)
_BATCH_ROWS = 8_192  # rows per upsert: 16 MB of 512-d float32, well under the 64 MB gRPC message limit
_EXPR_IDS = 4_096  # ids per "id in [...]" expression
_ITER_BATCH = 16_384
_ID, _GALLERY, _VECTOR = "id", "gallery", "vector"


class IndexUnavailableError(FaceleadsError):
    """The vector engine could not be reached or refused an operation (the caller may retry: writes are
    idempotent upserts and deletes)."""


def _int_list(values: Iterable[int]) -> str:
    return "[" + ",".join(str(int(v)) for v in values) + "]"


class MilvusIndex:
    """:class:`faceleads.gallery.index_backend.VectorIndex` on a Milvus collection.

    Args:
        uri: ``https://host:19530`` (production), ``http://...`` (a test server) or a local ``*.db`` path
            (embedded milvus-lite).
        dim: template dimension; an existing collection of another dimension is refused.
        collection: collection name (one per embedding model, see ``index_backend.collection_name``).
        token: ``user:password`` or API key; ``None`` for an unauthenticated (test) server.
        db_name: Milvus database; ``None`` = ``default``.
        index_type: ``FLAT`` (exact), ``HNSW``, ``IVF_FLAT`` or ``IVF_SQ8``; used when creating the collection.
        num_partitions: physical partitions the gallery ids are hashed into (creation only).
        timeout: seconds per request.
        search_params: extra engine parameters (``ef`` for HNSW, ``nprobe`` for IVF).
    """

    def __init__(
        self,
        uri: str,
        dim: int = 512,
        collection: str = "faceleads_templates",
        *,
        token: str | None = None,
        db_name: str | None = None,
        index_type: str = "FLAT",
        num_partitions: int = 64,
        timeout: float = 30.0,
        search_params: dict[str, Any] | None = None,
    ) -> None:
        try:
            from pymilvus import MilvusClient
        except ImportError as exc:  # pragma: no cover - pymilvus is a declared dependency
            raise ConfigurationError("FACELEADS_INDEX_BACKEND=milvus needs pymilvus (pip install pymilvus)") from exc
        self.dim = dim
        self.collection = collection
        self.uri = uri
        self.index_type = index_type
        self.timeout = timeout
        self._search_params = dict(search_params or {})
        try:
            self._client = MilvusClient(uri=uri, token=token or "", db_name=db_name or "", timeout=timeout)
        except Exception as exc:
            raise IndexUnavailableError(f"cannot connect to Milvus at {self._where()}: {exc}") from exc
        self._ensure_collection(num_partitions)

    def _where(self) -> str:
        # The URI may hold credentials in some deployments; only its scheme and host are shown.
        head = self.uri.split("@")[-1]
        return head if "://" in self.uri else "a local milvus-lite file"

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One engine call, with its failures reported as :class:`IndexUnavailableError`."""
        try:
            return fn(*args, timeout=self.timeout, **kwargs)
        except FaceleadsError:
            raise
        except Exception as exc:
            raise IndexUnavailableError(f"Milvus {what} on {self.collection!r} failed: {exc}") from exc

    def _ensure_collection(self, num_partitions: int) -> None:
        from pymilvus import DataType, MilvusClient

        client = self._client
        if self._call("has_collection", client.has_collection, self.collection):
            info = self._call("describe_collection", client.describe_collection, self.collection)
            fields = {f["name"]: f for f in info.get("fields", [])}
            vector = fields.get(_VECTOR, {})
            dim = int(vector.get("params", {}).get("dim", -1))
            if set(fields) != {_ID, _GALLERY, _VECTOR} or dim != self.dim or not fields[_GALLERY].get(
                "is_partition_key"
            ):
                raise ConfigurationError(
                    f"Milvus collection {self.collection!r} exists with another schema (fields {sorted(fields)}, "
                    f"dim {dim}); expected id, gallery (partition key) and a {self.dim}-d vector"
                )
            self._call("load_collection", client.load_collection, self.collection)
            return
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(_ID, DataType.INT64, is_primary=True)
        schema.add_field(_GALLERY, DataType.INT64, is_partition_key=True)
        schema.add_field(_VECTOR, DataType.FLOAT_VECTOR, dim=self.dim)
        params = client.prepare_index_params()
        index_params: dict[str, Any] = {}
        if self.index_type == "HNSW":
            index_params = {"M": 32, "efConstruction": 200}
        elif self.index_type.startswith("IVF"):
            index_params = {"nlist": 1024}
        params.add_index(field_name=_VECTOR, index_type=self.index_type, metric_type="IP", params=index_params)
        self._call(
            "create_collection",
            client.create_collection,
            self.collection,
            schema=schema,
            index_params=params,
            consistency_level="Strong",
            num_partitions=num_partitions,
        )

    # ------------------------------------------------------------------------------------------- updates
    def add(self, ids: np.ndarray, vectors: np.ndarray, partitions: np.ndarray) -> None:
        """Upsert templates (an existing id gets the new vector and gallery). Checked like the in-process index;
        a refused call sends nothing. Batches are idempotent: after an engine error the call can be repeated."""
        id_arr, vec, part_arr = check_add(self.dim, ids, vectors, partitions)
        for start in range(0, id_arr.size, _BATCH_ROWS):
            end = min(id_arr.size, start + _BATCH_ROWS)
            chunk = zip(id_arr[start:end].tolist(), part_arr[start:end].tolist(), vec[start:end], strict=True)
            rows = [{_ID: i, _GALLERY: g, _VECTOR: v} for i, g, v in chunk]
            self._call("upsert", self._client.upsert, self.collection, rows)

    def _present(self, ids: list[int]) -> list[int]:
        found: list[int] = []
        for start in range(0, len(ids), _EXPR_IDS):
            chunk = ids[start : start + _EXPR_IDS]
            rows = self._call(
                "query",
                self._client.query,
                self.collection,
                filter=f"{_ID} in {_int_list(chunk)}",
                output_fields=[_ID],
                consistency_level="Strong",
            )
            found.extend(int(r[_ID]) for r in rows)
        return found

    def remove(self, ids: Iterable[int]) -> int:
        """Delete templates by id; returns how many were present (Milvus' own delete count is the request size)."""
        if isinstance(ids, np.ndarray):
            id_list = check_ids(ids.ravel()).tolist()
        else:
            try:
                id_list = [int(i) for i in ids]
            except (TypeError, ValueError) as exc:
                raise IndexInputError(f"ids to remove must be integers: {exc}") from exc
        id_list = sorted(set(id_list))
        if not id_list:
            return 0
        present = self._present(id_list)
        # Every requested id is deleted, present or not: a concurrent upsert by another server cannot resurrect
        # an id between the check and the delete.
        for start in range(0, len(id_list), _EXPR_IDS):
            self._call("delete", self._client.delete, self.collection, ids=id_list[start : start + _EXPR_IDS])
        return len(present)

    # -------------------------------------------------------------------------------------------- search
    @staticmethod
    def _filter(allowed: set[int] | None) -> str:
        return "" if allowed is None else f"{_GALLERY} in {_int_list(sorted(allowed))}"

    def search(
        self, queries: np.ndarray, k: int, allowed_partitions: Collection[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` by inner product, evaluated by Milvus with the gallery filter applied server-side.

        Returns ``(ids, scores)`` int64/float32 ``(q, k')``, best first, ties by id, ``k' <= min(k, visible)``
        (an approximate index type may find fewer than ``k``; all rows are cut to the shortest). ``k`` is limited
        to :data:`MILVUS_MAX_K`.
        """
        q = check_queries(queries, self.dim)
        k = check_k(k, MILVUS_MAX_K)
        allowed = check_partitions(allowed_partitions)
        nq = q.shape[0]
        if nq == 0 or allowed == set():
            return np.empty((nq, 0), np.int64), np.empty((nq, 0), np.float32)
        params: dict[str, Any] = {"metric_type": "IP", "params": dict(self._search_params)}
        # Ties at the k-th place come back in no defined order: fetch a little more than k, and deeper while the
        # k-th score still equals the last one fetched, so that the cut can break ties by id.
        fetch = min(MILVUS_MAX_K, k + max(16, k // 4))
        while True:
            if self.index_type == "HNSW":
                params["params"]["ef"] = max(fetch, int(self._search_params.get("ef", 64)))
            hits = self._call(
                "search",
                self._client.search,
                self.collection,
                data=[row for row in q],
                limit=fetch,
                filter=self._filter(allowed),
                output_fields=[_ID],
                search_params=params,
                consistency_level="Strong",
            )
            rows = []
            deeper = False
            for found in hits:
                ids = np.fromiter((int(h[_ID]) for h in found), dtype=np.int64, count=len(found))
                scores = np.fromiter((float(h["distance"]) for h in found), dtype=np.float32, count=len(found))
                ids, scores = sort_hits(ids, scores)
                deeper |= ids.size == fetch and ids.size > k and bool(scores[k - 1] == scores[-1])
                rows.append((ids[:k], scores[:k]))
            if not deeper or fetch >= MILVUS_MAX_K:
                break
            fetch = min(MILVUS_MAX_K, 2 * fetch)
        kk = min((r[0].size for r in rows), default=0)
        out_ids = np.empty((nq, kk), dtype=np.int64)
        out_scores = np.empty((nq, kk), dtype=np.float32)
        for i, (ids, scores) in enumerate(rows):
            out_ids[i], out_scores[i] = ids[:kk], scores[:kk]
        return out_ids, out_scores

    # ------------------------------------------------------------------------------------- introspection
    def count(self, allowed_partitions: Collection[int] | None = None) -> int:
        """Templates visible to a search over ``allowed_partitions`` (None: all), counted by the engine."""
        allowed = check_partitions(allowed_partitions)
        if allowed == set():
            return 0
        rows = self._call(
            "count",
            self._client.query,
            self.collection,
            filter=self._filter(allowed),
            output_fields=["count(*)"],
            consistency_level="Strong",
        )
        return int(rows[0]["count(*)"]) if rows else 0

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, id: object) -> bool:
        if isinstance(id, bool) or not isinstance(id, int | np.integer):
            return False
        return bool(self._present([int(id)]))

    def present(self, ids: Iterable[int]) -> np.ndarray:
        """The given ids that the collection holds (int64, sorted, unique): one query per 4,096 ids."""
        try:
            wanted = sorted({int(i) for i in ids})
        except (TypeError, ValueError) as exc:
            raise IndexInputError(f"ids must be integers: {exc}") from exc
        return np.array(sorted(set(self._present(wanted))), dtype=np.int64)

    def _iterate(self, fields: list[str]) -> Iterable[list[dict[str, Any]]]:
        try:
            iterator = self._client.query_iterator(
                self.collection, batch_size=_ITER_BATCH, filter="", output_fields=fields, consistency_level="Strong"
            )
        except Exception as exc:
            raise IndexUnavailableError(f"Milvus query on {self.collection!r} failed: {exc}") from exc
        try:
            while True:
                try:
                    batch = iterator.next()
                except Exception as exc:
                    raise IndexUnavailableError(f"Milvus query on {self.collection!r} failed: {exc}") from exc
                if not batch:
                    return
                yield batch
        finally:
            iterator.close()

    def ids(self) -> np.ndarray:
        """Every id in the collection (int64, no particular order); a full scan of the id column."""
        parts = [np.array([int(r[_ID]) for r in batch], dtype=np.int64) for batch in self._iterate([_ID])]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def partition_counts(self) -> dict[int, int]:
        """Templates per gallery (galleries with none left out); a full scan of the gallery column."""
        counts: dict[int, int] = {}
        for batch in self._iterate([_ID, _GALLERY]):
            for row in batch:
                g = int(row[_GALLERY])
                counts[g] = counts.get(g, 0) + 1
        return counts

    @property
    def persistent(self) -> bool:
        """True: the collection outlives this process; a restarted process reconciles it with the database."""
        return True

    @property
    def max_k(self) -> int | None:
        """Milvus answers at most 16,384 results per query."""
        return MILVUS_MAX_K

    def flush(self) -> None:
        """Seal what was written into segments (Milvus does this by itself over time; after a bulk load, calling it
        makes the data searchable from indexed segments at once: embedded milvus-lite searches its unsealed
        buffer ~20x slower)."""
        self._call("flush", self._client.flush, self.collection)

    def drop(self) -> None:
        """Delete the whole collection (tests, benchmarks, decommissioning)."""
        self._call("drop_collection", self._client.drop_collection, self.collection)

    def close(self) -> None:
        """Close the client connection (the collection and its contents stay)."""
        # Closing a broken channel must not mask the caller's own error.
        with contextlib.suppress(Exception):
            self._client.close()
