"""Synthetic galleries for the index benchmarks, generated in chunks (10M x 512 float32 would be 20 GB).

Two distributions:

* ``isotropic``: uniformly random unit vectors (impostor cosine std 0.044 at 512-d). Mated queries are noisy
  copies of a gallery template (cosine ~0.78). Easy for compression: no direction carries more information.
* ``arcface``: a Gaussian identity model fitted to real ArcFace (w600k_mbf) templates of LFW's development view
  (``benchmarks/embedding_stats.py``): identity ``c = mean + B z``, photo ``normalise(c + W w)``, with B and W the
  square roots of the real between- and within-identity covariances. It reproduces the real impostor
  distribution (mean 0.006, std 0.068 vs 0.066 real; isotropic 0.044) and the mean genuine score (0.605 vs 0.604
  real; its spread is narrower: 0.044 vs 0.119, every photo being equally "good"). Mated queries are another photo
  of a gallery identity. Each gallery template is its own identity.

Every chunk is generated from ``(seed, chunk number)``, so any chunk (and the latent identity of any row) can be
regenerated on its own: mated queries are made before the gallery pass, and exact ground truth is computed
during the one pass that also fills the index.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

STATS = Path(__file__).resolve().parent / "data" / "lfw_dev_w600k_mbf_stats.npz"
CHUNK = 50_000


class Population:
    """A seeded synthetic gallery of ``n`` unit templates, produced chunk by chunk.

    Args:
        kind: ``"isotropic"`` or ``"arcface"``.
        n: gallery size.
        dim: dimension (``arcface`` needs the statistics' dimension, 512).
        seed: any int; the same seed gives the same gallery and queries.
    """

    def __init__(self, kind: str, n: int, dim: int = 512, seed: int = 20261122) -> None:
        if kind not in ("isotropic", "arcface"):
            raise ValueError(f"unknown distribution {kind!r}")
        self.kind, self.n, self.dim, self.seed = kind, n, dim, seed
        if kind == "arcface":
            stats = np.load(STATS)
            if stats["mean"].shape[0] != dim:
                raise ValueError(f"the arcface statistics are {stats['mean'].shape[0]}-d, not {dim}-d")
            self.mean = stats["mean"].astype(np.float32)
            # One (2 dim x dim) matrix: [z w] @ [B; W] draws the identity and the photo in one product.
            self.factors = np.vstack([stats["between"], stats["within"]]).astype(np.float32)

    def _latent(self, chunk: int) -> np.ndarray:
        start = chunk * CHUNK
        rows = min(CHUNK, self.n - start)
        rng = np.random.default_rng([self.seed, chunk])
        width = 2 * self.dim if self.kind == "arcface" else self.dim
        return rng.standard_normal((rows, width), dtype=np.float32)

    def _realise(self, latent: np.ndarray) -> np.ndarray:
        if self.kind == "arcface":
            x = latent @ self.factors
            x += self.mean
        else:
            x = latent.copy()
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(start row, float32 unit chunk)`` over the whole gallery."""
        for chunk in range(-(-self.n // CHUNK)):
            yield chunk * CHUNK, self._realise(self._latent(chunk))

    def mated_queries(self, rows: np.ndarray, seed: int) -> np.ndarray:
        """One query per gallery row in ``rows``: another photo of the same identity (float32 unit)."""
        rng = np.random.default_rng([self.seed, seed, 1])
        out = np.empty((rows.size, self.dim), dtype=np.float32)
        for chunk in np.unique(rows // CHUNK).tolist():
            sel = np.flatnonzero(rows // CHUNK == chunk)
            latent = self._latent(chunk)[rows[sel] - chunk * CHUNK]
            if self.kind == "arcface":
                latent[:, self.dim :] = rng.standard_normal((sel.size, self.dim), dtype=np.float32)  # new photo
                out[sel] = self._realise(latent)
            else:
                source = self._realise(latent)
                noise = rng.standard_normal(source.shape, dtype=np.float32)
                noise /= np.linalg.norm(noise, axis=1, keepdims=True)
                q = source + 0.8 * noise  # cosine to the source ~0.78
                out[sel] = q / np.linalg.norm(q, axis=1, keepdims=True)
        return out

    def nonmated_queries(self, count: int, seed: int) -> np.ndarray:
        """``count`` queries of identities not in the gallery (float32 unit)."""
        rng = np.random.default_rng([self.seed, seed, 2])
        width = 2 * self.dim if self.kind == "arcface" else self.dim
        return self._realise(rng.standard_normal((count, width), dtype=np.float32))


class GroundTruth:
    """Exact float32 top-``k`` of fixed queries, accumulated chunk by chunk (ids are gallery row numbers)."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries = queries
        self.k = k
        self.ids = np.full((queries.shape[0], 0), -1, dtype=np.int64)
        self.scores = np.empty((queries.shape[0], 0), dtype=np.float32)

    def update(self, rows: np.ndarray, chunk: np.ndarray) -> None:
        """Fold in a chunk of gallery templates whose row numbers are ``rows``."""
        if chunk.shape[0] == 0:
            return
        scores = self.queries @ chunk.T
        rows = np.asarray(rows, dtype=np.int64)
        keep = min(self.k, chunk.shape[0])
        best = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        all_ids = np.hstack([self.ids, rows[best]])
        all_scores = np.hstack([self.scores, np.take_along_axis(scores, best, axis=1)])
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]
        self.ids = np.take_along_axis(all_ids, order, axis=1)
        self.scores = np.take_along_axis(all_scores, order, axis=1)
