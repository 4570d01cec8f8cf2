"""Tests for the in-process exact template index (small synthetic data; figures live in the benchmark)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from faceleads.errors import ValidationError
from faceleads.gallery.index import IndexInputError, TemplateIndex, _decode_int8, _encode_int8, _top_k_indices

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite

DIM = 64


def unit(rng: np.random.Generator, n: int, dim: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ vectors.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(scores, order, axis=1)


def assert_same_topk(
    got_ids: np.ndarray,
    got_scores: np.ndarray,
    ref_ids: np.ndarray,
    ref_scores: np.ndarray,
    by_id: dict[int, np.ndarray],
    queries: np.ndarray,
    tol: float = 3e-3,
) -> None:
    """Same ids as the float32 reference, except swaps among scores within the float16 tolerance."""
    assert got_ids.shape == ref_ids.shape
    np.testing.assert_allclose(got_scores, ref_scores, atol=tol)
    for qi in range(got_ids.shape[0]):
        missing = set(ref_ids[qi].tolist()) - set(got_ids[qi].tolist())
        kth = ref_scores[qi, -1]
        for mid in missing:  # a reference id we lost must be a near-tie with the k-th score
            assert abs(float(queries[qi] @ by_id[mid]) - kth) < tol
        assert np.all(np.diff(got_scores[qi]) <= 0), "scores must be best first"
        assert len(set(got_ids[qi].tolist())) == got_ids.shape[1], "no duplicate ids"


def make_index(dim: int, dtype: str, **kw: object) -> TemplateIndex:
    """An index whose results must equal brute force: sign_int8 keeps every row after the sign scan here (its
    cut is tested on its own below)."""
    if dtype == "sign_int8":
        kw.setdefault("prefilter", 1.0)
    return TemplateIndex(dim=dim, dtype=dtype, **kw)  # type: ignore[arg-type]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.mark.parametrize("dtype", ["float16", "float32", "bfloat16", "int8", "sign_int8"])
def test_matches_float32_brute_force(rng: np.random.Generator, dtype: str) -> None:
    n = 30000  # partitions of ~15000 > 4 * k * block length: the block-maximum selection path runs
    vecs = unit(rng, n)
    ids = rng.permutation(10 * n)[:n].astype(np.int64)
    parts = rng.integers(0, 2, n).astype(np.int32)
    index = make_index(dim=DIM, dtype=dtype, threads=2)
    index.add(ids, vecs, parts)
    queries = vecs[:20] + 0.3 * unit(rng, 20)
    queries = np.vstack([queries, unit(rng, 10)]).astype(np.float32)
    got_ids, got_scores = index.search(queries, 10)
    ref_ids, ref_scores = brute_force(vecs, ids, queries, 10)
    assert got_ids.dtype == np.int64 and got_scores.dtype == np.float32
    by_id = dict(zip(ids.tolist(), vecs, strict=True))
    tol = {"float16": 3e-3, "float32": 1e-5, "bfloat16": 1.5e-2, "int8": 1e-3, "sign_int8": 1e-3}[dtype]
    assert_same_topk(got_ids, got_scores, ref_ids, ref_scores, by_id, queries, tol)
    # The noisy copy's source is its best match.
    assert np.array_equal(got_ids[:20, 0], ids[:20])


@pytest.mark.parametrize("size", [5, 300, 10_239, 20_000, 100_003])
def test_top_k_selection_is_exact_with_ties(rng: np.random.Generator, size: int) -> None:
    for k in (1, 7, 50):
        # Coarse values make many exact ties; the selected set must still hold the k largest values.
        scores = rng.integers(0, 200, size).astype(np.float32)
        picked = _top_k_indices(scores, k)
        assert picked.size == min(k, size) and np.unique(picked).size == picked.size
        assert np.array_equal(np.sort(scores[picked]), np.sort(scores)[size - picked.size :])
        # Skewed data: all the best scores in a single block.
        skewed = np.zeros(size, np.float32)
        skewed[: min(size, 100)] = np.arange(min(size, 100), 0, -1)
        picked = _top_k_indices(skewed, k)
        assert np.array_equal(np.sort(skewed[picked]), np.sort(skewed)[size - picked.size :])


def test_single_query_shape_and_k_larger_than_n(rng: np.random.Generator) -> None:
    vecs = unit(rng, 7)
    index = TemplateIndex(dim=DIM)
    index.add(np.arange(7), vecs, np.zeros(7, dtype=np.int32))
    ids, scores = index.search(vecs[3], 50)
    assert ids.shape == (1, 7) and scores.shape == (1, 7)
    assert ids[0, 0] == 3 and abs(scores[0, 0] - 1.0) < 2e-3
    assert sorted(ids[0].tolist()) == list(range(7))


def test_empty_index(rng: np.random.Generator) -> None:
    index = TemplateIndex(dim=DIM)
    ids, scores = index.search(unit(rng, 3), 5)
    assert ids.shape == (3, 0) and scores.shape == (3, 0)
    assert len(index) == 0 and index.ids().size == 0 and index.partition_counts() == {}
    assert 5 not in index
    assert index.remove([1, 2]) == 0
    index.add(np.empty(0, np.int64), np.empty((0, DIM), np.float32), np.empty(0, np.int32))
    assert len(index) == 0


@pytest.mark.parametrize("dtype", ["float16", "int8", "sign_int8"])
def test_add_remove_replace(rng: np.random.Generator, dtype: str) -> None:
    vecs = unit(rng, 100)
    index = make_index(dim=DIM, dtype=dtype)
    ids = np.arange(1000, 1100, dtype=np.int64)
    index.add(ids, vecs, (ids % 3).astype(np.int32))
    assert len(index) == 100 and 1050 in index and 5 not in index
    assert index.partition_counts() == {0: 33, 1: 34, 2: 33}  # 1000 % 3 == 1

    # Remove (with an unknown id and a repeated id): only real ones count.
    removed = index.remove([1000, 1001, 1001, 999999, 1099])
    assert removed == 3
    assert len(index) == 97 and 1000 not in index and 1099 not in index
    got, _ = index.search(vecs[:5], 97)
    assert not {1000, 1001, 1099} & set(got.ravel().tolist())
    # The moved rows (swap-with-last) are still found by their own vectors.
    for row in range(2, 99):
        top, _ = index.search(vecs[row], 1)
        assert top[0, 0] == ids[row]

    # Replace: same id, new vector and new partition.
    new_vec = unit(rng, 1)
    index.add(np.array([1050]), new_vec, np.array([7], dtype=np.int32))
    assert len(index) == 97
    assert index.partition_counts()[7] == 1
    top, score = index.search(new_vec[0], 1)
    assert top[0, 0] == 1050 and score[0, 0] > 0.99
    top, _ = index.search(vecs[50], 1, allowed_partitions=[ids[50] % 3])
    assert top[0, 0] != 1050  # the old vector is gone
    assert sorted(index.ids().tolist()) == sorted(set(ids.tolist()) - {1000, 1001, 1099})

    # Re-adding a removed id works.
    index.add(np.array([1000]), vecs[:1], np.array([0], dtype=np.int32))
    assert 1000 in index and len(index) == 98


@pytest.mark.parametrize("dtype", ["float16", "int8", "sign_int8"])
def test_many_removals_and_readds_keep_map_consistent(rng: np.random.Generator, dtype: str) -> None:
    """Exercise the id map's merge and tombstone paths against a dict model."""
    index = make_index(dim=16, dtype=dtype)
    model: dict[int, np.ndarray] = {}
    next_id = 0
    for _round in range(30):
        n = int(rng.integers(1, 400))
        vecs = unit(rng, n, 16)
        ids = np.arange(next_id, next_id + n, dtype=np.int64)
        next_id += n
        index.add(ids, vecs, rng.integers(0, 4, n).astype(np.int32))
        model.update(zip(ids.tolist(), vecs, strict=True))
        victims = rng.choice(np.fromiter(model, np.int64), size=len(model) // 3, replace=False)
        assert index.remove(victims.tolist()) == victims.size
        for v in victims.tolist():
            del model[v]
        # Replace a few survivors.
        keep = rng.choice(np.fromiter(model, np.int64), size=min(5, len(model)), replace=False)
        new = unit(rng, keep.size, 16)
        index.add(keep, new, np.full(keep.size, 9, dtype=np.int32))
        model.update(zip(keep.tolist(), new, strict=True))
    assert len(index) == len(model)
    assert sorted(index.ids().tolist()) == sorted(model)
    all_ids = np.fromiter(model, np.int64)
    all_vecs = np.stack([model[i] for i in all_ids.tolist()])
    got, scores = index.search(all_vecs[:200], 1)
    assert np.array_equal(got[:, 0], all_ids[:200])
    # Swap-with-last moved every column (int8: codes, residuals and scales): each survivor scores ~1.
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=2e-3)
    assert all(int(i) in index for i in all_ids[:50])
    assert not any(int(i) in index for i in range(next_id, next_id + 50))


@pytest.mark.parametrize("dtype", ["float16", "int8", "sign_int8"])
def test_partition_filter_never_leaks(rng: np.random.Generator, dtype: str) -> None:
    n = 3000
    vecs = unit(rng, n)
    ids = np.arange(n, dtype=np.int64)
    parts = rng.integers(0, 10, n).astype(np.int32)
    index = make_index(dim=DIM, dtype=dtype)
    index.add(ids, vecs, parts)
    allowed = {2, 5, 7}
    mask = np.isin(parts, list(allowed))
    queries = vecs[:30]  # includes queries whose exact match is in a forbidden partition
    got, scores = index.search(queries, 25, allowed_partitions=allowed)
    assert set(parts[got.ravel()].tolist()) <= allowed
    ref_ids, ref_scores = brute_force(vecs[mask], ids[mask], queries, 25)
    by_id = dict(zip(ids.tolist(), vecs, strict=True))
    assert_same_topk(got, scores, ref_ids, ref_scores, by_id, queries)

    # k above the visible count: every visible id, nothing else, no padding.
    small = make_index(dim=DIM, dtype=dtype)
    small.add(np.arange(12), vecs[:12], np.array([1] * 4 + [2] * 8, dtype=np.int32))
    got, scores = small.search(vecs[0], 100, allowed_partitions=[1, 99])
    assert got.shape == (1, 4) and sorted(got[0].tolist()) == [0, 1, 2, 3]
    got, _ = small.search(vecs[:2], 5, allowed_partitions=[])
    assert got.shape == (2, 0)
    got, _ = small.search(vecs[0], 5, allowed_partitions=[42])
    assert got.shape == (1, 0)


@pytest.mark.parametrize(
    ("ids", "vectors", "parts", "message"),
    [
        (np.arange(3), np.zeros((3, 8), np.float32), np.zeros(3, np.int32), "shape"),
        (np.arange(3), np.ones((2, DIM), np.float32) / 8.0, np.zeros(3, np.int32), "same length"),
        (np.arange(2), np.ones((2, DIM), np.float32) / 8.0, np.zeros(3, np.int32), "same length"),
        (np.arange(2), np.full((2, DIM), np.nan, np.float32), np.zeros(2, np.int32), "non-finite"),
        (np.arange(2), np.ones((2, DIM), np.float32), np.zeros(2, np.int32), "unit-norm"),
        (np.array([1, 1]), np.ones((2, DIM), np.float32) / 8.0, np.zeros(2, np.int32), "duplicates"),
        (np.array([1.0, 2.0]), np.ones((2, DIM), np.float32) / 8.0, np.zeros(2, np.int32), "integers"),
        (np.arange(2), np.ones((2, DIM), np.float32) / 8.0, np.array([0, 2**40]), "int32"),
        (np.arange(4).reshape(2, 2), np.ones((2, DIM), np.float32) / 8.0, np.zeros(2, np.int32), "1-D"),
    ],
)
def test_bad_add_input(ids: np.ndarray, vectors: np.ndarray, parts: np.ndarray, message: str) -> None:
    index = TemplateIndex(dim=DIM)
    with pytest.raises(ValueError, match=message) as info:
        index.add(ids, vectors, parts)
    assert isinstance(info.value, ValidationError)
    assert len(index) == 0  # nothing half-added


def test_bad_search_input(rng: np.random.Generator) -> None:
    index = TemplateIndex(dim=DIM)
    index.add(np.arange(3), unit(rng, 3), np.zeros(3, np.int32))
    with pytest.raises(IndexInputError, match="shape"):
        index.search(np.ones(DIM + 1, np.float32), 3)
    with pytest.raises(IndexInputError, match="non-finite"):
        index.search(np.full(DIM, np.inf, np.float32), 3)
    with pytest.raises(IndexInputError, match="too large"):
        index.search(np.full(DIM, 1e6, np.float32), 3)
    for bad_k in (0, -1, 2.5, True):
        with pytest.raises(IndexInputError, match="k must be"):
            index.search(np.ones(DIM, np.float32), bad_k)  # type: ignore[arg-type]
    with pytest.raises(IndexInputError, match="integers"):
        index.remove(["x"])  # type: ignore[list-item]
    with pytest.raises(IndexInputError, match="dim"):
        TemplateIndex(dim=0)
    with pytest.raises(IndexInputError, match="dtype"):
        TemplateIndex(dtype="int4")
    for bad_rerank in (0, 1.5, True):
        with pytest.raises(IndexInputError, match="rerank"):
            TemplateIndex(dtype="int8", rerank=bad_rerank)  # type: ignore[arg-type]


def test_bfloat16_rounding_is_nearest() -> None:
    index = TemplateIndex(dim=4, dtype="bfloat16")
    values = np.array([[1.0, 1.00390625, 1.01171875, -2.5e-3]], dtype=np.float32)
    bits = index._to_storage(values)
    back = (bits.astype(np.uint32) << 16).view(np.float32)
    # 1 + 2**-8 is a tie between 1 and 1 + 2**-7: round half to even gives 1.0.
    assert back[0, 0] == 1.0 and back[0, 1] == 1.0 and back[0, 2] == 1.015625
    assert abs(back[0, 3] - values[0, 3]) <= abs(values[0, 3]) * 2**-8


def test_capacity_grows_geometrically(rng: np.random.Generator) -> None:
    index = TemplateIndex(dim=16)
    capacities = []
    vecs = unit(rng, 5000, 16)
    for i in range(5000):
        index.add(np.array([i]), vecs[i : i + 1], np.zeros(1, np.int32))
        capacities.append(index.capacity)
    distinct = sorted(set(capacities))
    # One-at-a-time adds reallocate only O(log n) times, and never keep more than 2x slack.
    assert len(distinct) <= 8
    assert capacities[-1] < 2 * 5000 + 64
    assert index.nbytes >= 5000 * 16 * 2
    got, _ = index.search(vecs[4321], 1)
    assert got[0, 0] == 4321
    # Mass removal gives memory back.
    index.remove(range(4900))
    assert index.capacity < 1000
    got, _ = index.search(vecs[4950], 1)
    assert got[0, 0] == 4950


@pytest.mark.parametrize("dtype", ["float16", "int8", "sign_int8"])
def test_concurrent_adds_and_searches(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, dtype: str) -> None:
    import faceleads.gallery.index as index_module

    monkeypatch.setattr(index_module, "_PIECE_ROWS", 128)  # several pieces per scan, shared with helpers
    base = unit(rng, 2000)
    index = make_index(dim=DIM, dtype=dtype, threads=2)  # the helper pool is shared by the concurrent searches
    index.add(np.arange(2000), base, (np.arange(2000) % 4).astype(np.int32))
    extra = unit(rng, 3000)
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer() -> None:
        try:
            for start in range(0, 3000, 100):
                ids = np.arange(10_000 + start, 10_000 + start + 100)
                index.add(ids, extra[start : start + 100], np.full(100, 5, np.int32))
                index.remove(ids[:10].tolist())
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            stop.set()

    def reader(seed: int) -> None:
        local = np.random.default_rng(seed)
        try:
            while not stop.is_set():
                rows = local.integers(0, 2000, 4)
                got, scores = index.search(base[rows], 5, allowed_partitions=[0, 1, 2, 3])
                # The base templates never change, so each finds itself first, whatever the writer does.
                assert np.array_equal(got[:, 0], rows)
                assert np.all(got < 2000)
                assert np.all(np.diff(scores, axis=1) <= 0)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert len(index) == 2000 + 2700
    assert index.partition_counts() == {0: 500, 1: 500, 2: 500, 3: 500, 5: 2700}


@pytest.mark.parametrize("dtype", ["float16", "int8", "sign_int8"])
def test_batches_and_scans_are_split_without_changing_results(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, dtype: str
) -> None:
    import faceleads.gallery.index as index_module

    vecs = unit(rng, 3000)
    index = make_index(dim=DIM, dtype=dtype)
    index.add(np.arange(3000), vecs, (np.arange(3000) % 3).astype(np.int32))
    queries = unit(rng, 40)
    whole_ids, whole_scores = index.search(queries, 20)
    monkeypatch.setattr(index_module, "_MAX_SCORE_CELLS", 3000)  # ~3 queries per kernel call
    split_ids, split_scores = index.search(queries, 20)
    assert np.array_equal(whole_ids, split_ids)
    assert np.array_equal(whole_scores, split_scores)
    monkeypatch.setattr(index_module, "_PIECE_ROWS", 170)  # each partition scanned in ~6 pieces by 2 threads
    for threads in (1, 2, 3):
        index.threads = threads
        piece_ids, piece_scores = index.search(queries, 20)
        assert np.array_equal(whole_ids, piece_ids)
        assert np.array_equal(whole_scores, piece_scores)
    single = np.vstack([index.search(q, 20)[0] for q in queries])
    assert np.array_equal(single, split_ids)


@pytest.mark.parametrize("dim", [15, DIM, 512])
def test_int8_codes_reconstruct_within_a_residual_step(rng: np.random.Generator, dim: int) -> None:
    vecs = unit(rng, 200, dim)
    vecs[0] = 0.0
    vecs[0, 3] = 1.0  # one-hot: the scale comes from a single component
    codes, packed, scales = _encode_int8(vecs)
    assert codes.dtype == np.int8 and packed.dtype == np.uint8 and scales.dtype == np.float32
    assert packed.shape == (200, (dim + 1) // 2)  # two 4-bit residuals per byte (odd dims padded)
    assert int(np.abs(codes.astype(np.int16)).max()) == 127
    back = _decode_int8(codes, packed, scales)
    # Mid-rise 4-bit residual: the error is at most 1/32 of a code step (plus float32 rounding).
    bound = scales[:, None] / 32 * 1.001 + 1e-7
    assert np.all(np.abs(back - vecs) <= bound)
    # int8 alone is 16x coarser: the residual really carries information.
    coarse = codes.astype(np.float32) * scales[:, None]
    coarse_steps = np.abs(coarse - vecs) / scales[:, None]  # mean 1/4 of a code step
    fine_steps = np.abs(back - vecs) / scales[:, None]  # mean 1/64
    assert coarse_steps.mean() > 8 * fine_steps.mean()


def test_int8_two_stage_scores_and_memory(rng: np.random.Generator) -> None:
    n = 20_000
    vecs = unit(rng, n, 512)
    ids = np.arange(n, dtype=np.int64) * 7
    parts = rng.integers(0, 3, n).astype(np.int32)
    index = TemplateIndex(dim=512, dtype="int8", threads=2, rerank=4)
    index.add(ids, vecs, parts)
    # 512 B codes + 256 B residuals + 4 B scale + 8 B id in the segments, 16 B in the id map.
    assert index.nbytes <= index.capacity * (512 + 256 + 4 + 8) + 16 * n + 100 * 1024
    queries = vecs[:8] + 0.05 * unit(rng, 8, 512)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    got, scores = index.search(queries, 50)
    ref_ids, ref_scores = brute_force(vecs, ids, queries, 50)
    by_id = dict(zip(ids.tolist(), vecs, strict=True))
    assert_same_topk(got, scores, ref_ids, ref_scores, by_id, queries, tol=5e-4)
    # Re-scored from codes + residuals: far closer to float32 than the int8 codes alone (~1e-3).
    exact = np.array([[queries[i] @ by_id[j] for j in row] for i, row in enumerate(got.tolist())])
    assert np.abs(scores - exact).max() < 2e-4
    # A zero query (no direction) must not break the int8 quantisation of queries.
    zero_ids, zero_scores = index.search(np.zeros(512, np.float32), 5)
    assert zero_ids.shape == (1, 5) and np.allclose(zero_scores, 0.0)


def test_sign_planes_give_the_asymmetric_score(rng: np.random.Generator) -> None:
    """The Hamming distances of the query planes combine into 2 * sum_i L_i [sign(q_i) != b_i] up to a constant
    of the query: the first stage ranks templates by the magnitude-weighted sign disagreement, exactly."""
    from faceleads.gallery.index import _MAG_QUANTILE, _plane_keys, _query_planes, _sign_bits

    dim = 100  # not a multiple of 8: the padding bits must cancel out
    q = unit(rng, 3, dim)
    rows = unit(rng, 40, dim)
    bits = _sign_bits(rows)
    for qbits in (0, 1, 2, 3):
        planes = _query_planes(q, qbits)
        assert planes.shape == (3 * (qbits + 1), 8 * -(-dim // 64))  # padded to whole 64-bit words
        dist = np.array([[int(np.unpackbits(p ^ b).sum()) for b in bits] for p in planes], dtype=np.uint32)
        for i in range(3):
            key = _plane_keys(dist[i * (qbits + 1) : (i + 1) * (qbits + 1)], qbits)
            disagree = (q[i] > 0) != (rows > 0)
            if qbits:
                top = np.quantile(np.abs(q[i]), _MAG_QUANTILE)
                levels = np.clip(np.rint(np.abs(q[i]) / top * (2**qbits - 1)), 0, 2**qbits - 1)
            else:
                levels = np.ones(dim)
            expected = 2 * (disagree * levels).sum(axis=1) if qbits else disagree.sum(axis=1)
            offset = key - expected
            assert np.all(offset == offset[0]), "the key differs from the weighted disagreement by a constant"


def test_sign_keys_equal_the_popcount_reference(rng: np.random.Generator) -> None:
    """The sign scan (FAISS's popcount kernel, blocks of rows, keys combined per block) gives every query's plane
    key for every row, at any whole number of 64-bit words, and refuses arrays FAISS could read or write past (it
    takes raw pointers)."""
    from faceleads.gallery.index import _plane_keys, _sign_keys

    for width, qbits, nq, n in ((8, 0, 1, 37), (16, 2, 3, 5000), (64, 3, 2, 4097), (72, 1, 40, 700)):
        planes = rng.integers(0, 256, (nq * (qbits + 1), width), dtype=np.uint8)
        rows = rng.integers(0, 256, (n, width), dtype=np.uint8)
        out = np.empty((nq, n), dtype=np.int32)
        _sign_keys(planes, rows, qbits, out)
        dist = np.unpackbits(planes[:, None, :] ^ rows[None, :, :], axis=2).sum(axis=2)
        for i in range(nq):
            assert np.array_equal(out[i], _plane_keys(dist[i * (qbits + 1) : (i + 1) * (qbits + 1)], qbits))
    planes = rng.integers(0, 256, (3, 16), dtype=np.uint8)
    rows = rng.integers(0, 256, (10, 16), dtype=np.uint8)
    for bad in (
        (planes, rows, 2, np.empty((1, 9), np.int32)),  # output too small
        (planes, rows, 2, np.empty((1, 10), np.int64)),
        (planes, rows, 1, np.empty((1, 10), np.int32)),  # 3 codes are not whole queries of 2 planes
        (planes[:, :12].copy(), rows[:, :12].copy(), 2, np.empty((1, 10), np.int32)),  # not whole 64-bit words
        (planes, rows[::2], 2, np.empty((1, 5), np.int32)),  # not contiguous
        (planes, rows[:, :8].copy(), 2, np.empty((1, 10), np.int32)),  # widths differ
        (planes[0], rows, 0, np.empty((1, 10), np.int32)),  # not 2-D
    ):
        with pytest.raises(ValueError):
            _sign_keys(*bad)


def test_smallest_rows_is_exact_with_ties(rng: np.random.Generator) -> None:
    """The prefilter's selection: exactly ``keep`` rows, the smallest keys, ties at the cut by position."""
    from faceleads.gallery.index import _smallest_rows

    for size, spread in ((1000, 5), (5000, 300), (7, 2)):
        key = rng.integers(-spread, spread, size).astype(np.int32)
        for keep in (1, 3, size // 2, size - 1, size, size + 4):
            got = _smallest_rows(key, keep)
            expected = np.sort(np.argsort(key, kind="stable")[:keep])
            assert np.array_equal(got, expected), (size, keep)


def test_sign_prefilter_keeps_the_smallest_weighted_disagreements(rng: np.random.Generator) -> None:
    """The first stage keeps, per query, exactly the rows of smallest magnitude-weighted sign disagreement, over
    blocks that do not divide the rows evenly, at a dimension that is not a multiple of 64, and a batch of
    queries keeps the same rows as each query alone."""
    from faceleads.gallery.index import _plane_keys, _query_planes

    dim, n = 100, 3001
    rows = unit(rng, n, dim)
    queries = unit(rng, 4, dim)
    for qbits in (0, 2, 3):
        index = TemplateIndex(dim=dim, dtype="sign_int8", query_bits=qbits, prefilter=0.05)
        index.add(np.arange(n, dtype=np.int64), rows, np.zeros(n, dtype=np.int32))
        bits = index._segments[0].columns[3][:n]
        planes = _query_planes(queries, qbits)
        batch = index._sign_prefilter(planes, bits, 150)
        for i in range(len(queries)):
            mine = planes[i * (qbits + 1) : (i + 1) * (qbits + 1)]
            dist = np.unpackbits(mine[:, None, :] ^ bits[None, :, :], axis=2).sum(axis=2)
            key = _plane_keys(dist, qbits)
            expected = np.sort(np.argsort(key, kind="stable")[:150])
            assert np.array_equal(batch[i], expected)
            assert np.array_equal(index._sign_prefilter(mine, bits, 150)[0], expected)


def test_sign_int8_batch_equals_single_queries_with_the_cut(rng: np.random.Generator) -> None:
    """With the prefilter cutting, a batch search returns what each query returns alone (the first stage runs
    all queries of a batch over each block of sign codes at once)."""
    dim, n = 100, 20_000
    vecs = unit(rng, n, dim)
    ids = np.arange(n, dtype=np.int64) + 7
    index = TemplateIndex(dim=dim, dtype="sign_int8", prefilter=0.02, rerank=2)
    index.add(ids, vecs, rng.integers(0, 3, n).astype(np.int32))
    queries = unit(rng, 6, dim)
    got, scores = index.search(queries, 10, allowed_partitions=[0, 2])
    for i, q in enumerate(queries):
        one_ids, one_scores = index.search(q, 10, allowed_partitions=[0, 2])
        assert np.array_equal(one_ids[0], got[i])
        assert np.array_equal(one_scores[0], scores[i])


def test_sign_int8_prefilter_recall_and_memory(rng: np.random.Generator) -> None:
    """With the prefilter actually cutting (1 % of each piece), noisy copies still find their source first and
    the returned scores are the re-ranked ones; memory is the int8 storage plus one bit per dimension."""
    n = 40_000
    vecs = unit(rng, n, 512)
    ids = np.arange(n, dtype=np.int64) * 3 + 1
    parts = rng.integers(0, 2, n).astype(np.int32)
    index = TemplateIndex(dim=512, dtype="sign_int8", threads=2, rerank=2, prefilter=0.01, prefilter_rows=0)
    index.add(ids, vecs, parts)
    assert index.nbytes <= index.capacity * (64 + 512 + 256 + 4 + 8) + 16 * n + 100 * 1024
    queries = vecs[:20] + 0.04 * unit(rng, 20, 512) * np.sqrt(512) / 8
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    got, scores = index.search(queries, 10)
    assert np.array_equal(got[:, 0], ids[:20])
    by_id = dict(zip(ids.tolist(), vecs, strict=True))
    exact = np.array([[queries[i] @ by_id[j] for j in row] for i, row in enumerate(got.tolist())])
    assert np.abs(scores - exact).max() < 2e-4
    ref_ids, _ = brute_force(vecs, ids, queries, 10)
    overlap = np.mean([np.isin(ref_ids[i], got[i]).mean() for i in range(20)])
    assert overlap > 0.5  # isotropic 512-d noise is the hard case for sign codes; figures in docs/search-index.md
    with pytest.raises(IndexInputError):
        TemplateIndex(dtype="sign_int8", prefilter=0.0)
    with pytest.raises(IndexInputError):
        TemplateIndex(dtype="sign_int8", query_bits=9)
    with pytest.raises(IndexInputError):
        TemplateIndex(dtype="sign_int8", prefilter_rows=-1)


def test_sign_int8_small_visible_set_keeps_the_minimum_rows(rng: np.random.Generator) -> None:
    """A search that sees few templates (a filter to one small gallery) passes at least ``prefilter_rows`` of them
    to the int8 scoring, however small the share: here all of them, so it returns what an index without the sign
    cut returns; a search over everything still cuts at the share."""
    n = 30_000
    vecs = unit(rng, n, 128)
    ids = np.arange(n, dtype=np.int64)
    parts = np.where(np.arange(n) < 2_000, 1, 0).astype(np.int32)  # gallery 1: 2,000 templates
    cut = TemplateIndex(dim=128, dtype="sign_int8", prefilter=0.001, prefilter_rows=2_000, rerank=2)
    full = TemplateIndex(dim=128, dtype="sign_int8", prefilter=1.0, rerank=2)
    for index in (cut, full):
        index.add(ids, vecs, parts)
    queries = unit(rng, 8, 128)
    got, scores = cut.search(queries, 20, allowed_partitions=[1])
    ref, ref_scores = full.search(queries, 20, allowed_partitions=[1])
    assert np.array_equal(got, ref) and np.array_equal(scores, ref_scores)
    # Unfiltered, 2,000 of 30,000 rows go on (share 6.7 %): isotropic 128-d queries lose some of their top-20.
    got, _ = cut.search(queries, 20)
    ref, _ = full.search(queries, 20)
    assert not np.array_equal(got, ref)
