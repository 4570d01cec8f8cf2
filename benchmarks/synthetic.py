"""Synthetic galleries for the index benchmarks, generated in chunks (10M x 512 float32 would be 20 GB).

Two distributions:

* ``isotropic``: uniformly random unit vectors (impostor cosine std 0.044 at 512-d). Mated queries are noisy
  copies of a gallery template (cosine ~0.78). Easy for compression: no direction carries more information.
* ``arcface``: a Gaussian identity model fitted to real ArcFace (w600k_mbf) templates of LFW's development view
  (``benchmarks/embedding_stats.py``): identity ``c = mean + B z``, photo ``normalise(c + W w)``, with B and W the
  square roots of the real between- and within-identity covariances. Gallery photos are drawn in one product from
  the total covariance; a mated query draws the identity from its conditional distribution given the gallery
  photo, then a new photo of it (the same joint distribution, half the generation work). It reproduces the real impostor
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

    def __init__(self, kind: str, n: int, dim: int = 512, seed: int = 20261122, chunk: int = CHUNK) -> None:
        if kind not in ("isotropic", "arcface"):
            raise ValueError(f"unknown distribution {kind!r}")
        self.kind, self.n, self.dim, self.seed, self.chunk = kind, n, dim, seed, chunk
        if kind == "arcface":
            stats = np.load(STATS)
            if stats["mean"].shape[0] != dim:
                raise ValueError(f"the arcface statistics are {stats['mean'].shape[0]}-d, not {dim}-d")
            self.mean = stats["mean"].astype(np.float64)
            between = stats["between"].astype(np.float64)  # symmetric square roots of the covariances
            within = stats["within"].astype(np.float64)
            cov_b, cov_w = between @ between, within @ within
            cov_t = cov_b + cov_w
            # Gallery photos need no identity of their own (each template is its own identity): one product with
            # the square root of the total covariance draws them (half the work of drawing identity and photo).
            self.total = _sqrt_psd(cov_t).astype(np.float32)
            # A mated query is another photo of the identity behind gallery photo x: the identity given x is
            # Gaussian with mean mean + A (x - mean), A = S_b S_t^-1, and covariance S_b - A S_b; add new photo noise.
            solve = np.linalg.solve(cov_t + 1e-9 * np.eye(dim), cov_b)  # S_t^-1 S_b (symmetric matrices)
            self.to_identity = solve.astype(np.float32)  # rows: (x - mean) @ S_t^-1 S_b = (A (x - mean))^T
            self.identity_spread = _sqrt_psd(cov_b - cov_b @ solve).astype(np.float32)
            self.within = within.astype(np.float32)
            self.mean32 = self.mean.astype(np.float32)

    def _latent(self, chunk: int) -> np.ndarray:
        start = chunk * self.chunk
        rows = min(self.chunk, self.n - start)
        rng = np.random.default_rng([self.seed, chunk])
        return rng.standard_normal((rows, self.dim), dtype=np.float32)

    def _unnormalised(self, latent: np.ndarray) -> np.ndarray:
        if self.kind == "arcface":
            x = latent @ self.total
            x += self.mean32
            return x
        return latent.copy()

    def _realise(self, latent: np.ndarray) -> np.ndarray:
        x = self._unnormalised(latent)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x

    def chunks(self) -> Iterator[tuple[int, np.ndarray]]:
        """``(start row, float32 unit chunk)`` over the whole gallery."""
        for chunk in range(-(-self.n // self.chunk)):
            yield chunk * self.chunk, self._realise(self._latent(chunk))

    def mated_queries(self, rows: np.ndarray, seed: int) -> np.ndarray:
        """One query per gallery row in ``rows``: another photo of the same identity (float32 unit)."""
        rng = np.random.default_rng([self.seed, seed, 1])
        out = np.empty((rows.size, self.dim), dtype=np.float32)
        for chunk in np.unique(rows // self.chunk).tolist():
            sel = np.flatnonzero(rows // self.chunk == chunk)
            x = self._unnormalised(self._latent(chunk)[rows[sel] - chunk * self.chunk])
            if self.kind == "arcface":
                identity = self.mean32 + (x - self.mean32) @ self.to_identity
                identity += rng.standard_normal(x.shape, dtype=np.float32) @ self.identity_spread
                q = identity + rng.standard_normal(x.shape, dtype=np.float32) @ self.within  # a new photo
            else:
                source = x / np.linalg.norm(x, axis=1, keepdims=True)
                noise = rng.standard_normal(source.shape, dtype=np.float32)
                noise /= np.linalg.norm(noise, axis=1, keepdims=True)
                q = source + 0.8 * noise  # cosine to the source ~0.78
            out[sel] = q / np.linalg.norm(q, axis=1, keepdims=True)
        return out

    def nonmated_queries(self, count: int, seed: int) -> np.ndarray:
        """``count`` queries of identities not in the gallery (float32 unit)."""
        rng = np.random.default_rng([self.seed, seed, 2])
        return self._realise(rng.standard_normal((count, self.dim), dtype=np.float32))


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


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
