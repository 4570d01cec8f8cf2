"""The synthetic galleries of the scale benchmark (benchmarks/synthetic.py): reproducible chunk by chunk, shaped
like real ArcFace templates (impostor and genuine score statistics of LFW-dev), and exact chunk-wise ground
truth. Recall figures in docs/search-index.md mean something only if these hold."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from synthetic import GroundTruth, Population

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite

CHUNK = 4_000


@pytest.mark.parametrize("kind", ["isotropic", "arcface"])
def test_chunks_are_reproducible_unit_vectors_and_mates_match(kind: str) -> None:
    n = 2 * CHUNK + 700  # three chunks, the last partial
    pop = Population(kind, n, seed=11, chunk=CHUNK)
    gallery = np.vstack([x for _, x in pop.chunks()])
    assert gallery.shape == (n, 512) and gallery.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(gallery, axis=1), 1.0, atol=1e-5)
    again = np.vstack([x for _, x in Population(kind, n, seed=11, chunk=CHUNK).chunks()])
    assert np.array_equal(gallery, again)
    rows = np.array([3, CHUNK - 1, CHUNK + 5, n - 1])
    mated = pop.mated_queries(rows, seed=1)
    assert np.array_equal(np.argmax(mated @ gallery.T, axis=1), rows), "each mated query finds its mate first"
    truth = GroundTruth(np.vstack([mated, pop.nonmated_queries(3, seed=2)]), k=20)
    for start, x in pop.chunks():
        truth.update(np.arange(start, start + x.shape[0]), x)
    exact = np.argsort(-(truth.queries @ gallery.T), axis=1, kind="stable")[:, :20]
    assert np.array_equal(truth.ids, exact)


def test_arcface_model_has_the_real_score_statistics() -> None:
    pop = Population("arcface", 8_000, seed=3, chunk=8_000)
    gallery = next(pop.chunks())[1]
    impostor = (gallery[:1000] @ gallery[1000:2000].T).ravel()
    assert 0.0 < impostor.mean() < 0.015 and 0.06 < impostor.std() < 0.075  # LFW-dev real: 0.0058, 0.0661
    rows = np.arange(0, 8_000, 20)
    genuine = np.einsum("ij,ij->i", pop.mated_queries(rows, seed=4), gallery[rows])
    assert 0.55 < genuine.mean() < 0.65  # real: 0.604
    iso = next(Population("isotropic", 2_000, seed=3).chunks())[1]
    assert (iso[:1000] @ iso[1000:2000].T).std() < 0.05  # random vectors are far less spread (0.044)
