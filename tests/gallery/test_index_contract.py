"""The search-index contract (``VectorIndex``), run against every backend: the in-process index (each storage
the gallery may use) and Milvus through pymilvus on an embedded milvus-lite file (the same client API as a
Milvus server). Small synthetic data; figures live in ``benchmarks/search_scale.py``."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from faceleads.gallery.index import TemplateIndex
from faceleads.gallery.index_backend import IndexInputError, VectorIndex
from faceleads.gallery.index_milvus import MILVUS_MAX_K, MilvusIndex

pytestmark = pytest.mark.no_database  # never touches the database: run once, on SQLite

DIM = 32
_names = itertools.count()

# Score tolerance per backend: int8 codes + residual re-rank are within ~1e-3 at this small dimension; Milvus and
# float32 are exact float32 inner products.
BACKENDS = {"memory-int8": 1e-3, "memory-sign_int8": 1e-3, "memory-float32": 1e-5, "milvus": 1e-5}


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def milvus_file(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("milvus") / "contract.db")


Factory = Callable[[], VectorIndex]


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest, milvus_file: str) -> Iterator[tuple[str, Factory]]:
    """(backend name, a factory opening the same index again: a new empty one for the in-process backends)."""
    name = request.param
    opened: list[VectorIndex] = []
    if name == "milvus":
        collection = f"contract_{next(_names)}"

        def make() -> VectorIndex:
            opened.append(MilvusIndex(milvus_file, dim=DIM, collection=collection))
            return opened[-1]
    else:
        dtype = name.split("-", 1)[1]

        def make() -> VectorIndex:
            opened.append(TemplateIndex(dim=DIM, dtype=dtype, threads=2))
            return opened[-1]

    yield name, make
    if name == "milvus" and opened:
        opened[-1].drop()  # type: ignore[attr-defined]
    for index in opened:
        index.close()


def brute_force(vecs: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    scores = queries @ vecs.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids[order], np.take_along_axis(scores, order, axis=1)


def filled(make: Factory, n: int = 400, galleries: int = 4, seed: int = 5) -> tuple[VectorIndex, np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    vecs = unit(rng, n)
    ids = (np.arange(n) * 7 + 1000).astype(np.int64)  # ids are not row numbers
    parts = (np.arange(n) % galleries).astype(np.int32)
    index = make()
    index.add(ids, vecs, parts)
    return index, vecs, ids, parts


def test_satisfies_the_protocol(backend: tuple[str, Factory]) -> None:
    _, make = backend
    index = make()
    assert isinstance(index, VectorIndex)
    assert index.dim == DIM


def test_empty_index(backend: tuple[str, Factory]) -> None:
    _, make = backend
    index = make()
    assert len(index) == 0 and index.count() == 0 and index.count([1, 2]) == 0
    assert index.ids().size == 0 and index.partition_counts() == {}
    assert 5 not in index
    ids, scores = index.search(unit(np.random.default_rng(0), 3), 10)
    assert ids.shape == (3, 0) and scores.shape == (3, 0)
    assert index.remove([1, 2, 3]) == 0


def test_add_and_search_match_float32_brute_force(backend: tuple[str, Factory]) -> None:
    name, make = backend
    index, vecs, ids, _parts = filled(make)
    assert len(index) == 400 and index.count() == 400
    assert set(index.ids().tolist()) == set(ids.tolist())
    assert index.partition_counts() == {0: 100, 1: 100, 2: 100, 3: 100}
    assert int(ids[3]) in index and 999 not in index
    rng = np.random.default_rng(9)
    queries = np.vstack([vecs[:5] + 0.3 * unit(rng, 5), unit(rng, 3)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    got_ids, got_scores = index.search(queries, 10)
    ref_ids, ref_scores = brute_force(vecs, ids, queries, 10)
    assert got_ids.dtype == np.int64 and got_scores.dtype == np.float32 and got_ids.shape == (8, 10)
    np.testing.assert_allclose(got_scores, ref_scores, atol=BACKENDS[name])
    by_id = dict(zip(ids.tolist(), vecs, strict=True))
    for qi in range(8):
        assert np.all(np.diff(got_scores[qi]) <= 0), "best first"
        for lost in set(ref_ids[qi].tolist()) - set(got_ids[qi].tolist()):  # only near-ties at the cut may differ
            assert abs(float(queries[qi] @ by_id[lost]) - ref_scores[qi, -1]) < BACKENDS[name]
    assert np.array_equal(got_ids[:5, 0], ids[:5]), "a noisy copy finds its source first"
    one_ids, _one_scores = index.search(queries[0], 10)  # a single (dim,) query
    assert np.array_equal(one_ids, got_ids[:1]) and one_ids.shape == (1, 10)


def test_readding_replaces_vector_and_partition(backend: tuple[str, Factory]) -> None:
    _, make = backend
    index, vecs, ids, _ = filled(make)
    target = int(ids[10])
    new = unit(np.random.default_rng(77), 1)
    index.add(np.array([target]), new, np.array([9]))
    assert len(index) == 400
    assert index.partition_counts()[9] == 1
    got, scores = index.search(new[0], 1, allowed_partitions=[9])
    assert got[0].tolist() == [target] and abs(float(scores[0, 0]) - 1.0) < 1e-3
    got, _ = index.search(vecs[10], 5, allowed_partitions=[0, 1, 2, 3])
    assert target not in got[0].tolist(), "the old vector and gallery are gone"


def test_remove(backend: tuple[str, Factory]) -> None:
    _, make = backend
    index, vecs, ids, _ = filled(make)
    gone = ids[:50]
    assert index.remove(np.concatenate([gone, [5, 6]])) == 50  # unknown ids are ignored
    assert index.remove(gone.tolist()) == 0
    assert len(index) == 350 and index.count() == 350
    assert not set(gone.tolist()) & set(index.ids().tolist())
    assert int(gone[0]) not in index
    got, _ = index.search(vecs[:50], 350)
    assert got.shape == (50, 350)
    assert not set(got.ravel().tolist()) & set(gone.tolist())
    with pytest.raises(IndexInputError):
        index.remove(["a"])  # type: ignore[list-item]


def test_present_names_the_held_ids(backend: tuple[str, Factory]) -> None:
    """``present`` is how the change feed learns that another process already uploaded a template."""
    _, make = backend
    index, _vecs, ids, _ = filled(make)
    index.remove(ids[:3])
    asked = [int(ids[5]), 5, int(ids[1]), int(ids[7]), int(ids[5])]  # duplicates, unknown and removed ids
    got = index.present(asked)
    assert got.dtype == np.int64 and got.tolist() == sorted({int(ids[5]), int(ids[7])})
    assert index.present([]).tolist() == []
    with pytest.raises(IndexInputError):
        index.present(["a"])  # type: ignore[list-item]


def test_filtered_top_k_by_gallery(backend: tuple[str, Factory]) -> None:
    _, make = backend
    index, vecs, ids, parts = filled(make)
    part_of = dict(zip(ids.tolist(), parts.tolist(), strict=True))
    got, scores = index.search(vecs[:6], 20, allowed_partitions={1, 3})
    assert got.shape == (6, 20)
    assert {part_of[i] for i in got.ravel().tolist()} <= {1, 3}
    ref_ids, _ = brute_force(vecs[parts % 2 == 1], ids[parts % 2 == 1], vecs[:6], 20)
    assert np.array_equal(got[:, :5], ref_ids[:, :5])
    assert index.count([1, 3]) == 200 and index.count([3, 42]) == 100 and index.count([]) == 0
    # k above what the galleries hold: everything visible, never padded.
    got, _ = index.search(vecs[0], 500, allowed_partitions=[2])
    assert got.shape == (1, 100) and {part_of[i] for i in got[0].tolist()} == {2}
    for nothing in ([], [42]):
        got, scores = index.search(vecs[:2], 5, allowed_partitions=nothing)
        assert got.shape == (2, 0) and scores.shape == (2, 0)


def test_consolidation_inputs_ties_depth_and_limits(backend: tuple[str, Factory]) -> None:
    """What per-subject consolidation relies on: many photos of one subject crowd the top with equal scores,
    ties come back in id order, a deeper k reaches past them, and the engine's k limit is declared."""
    _, make = backend
    rng = np.random.default_rng(3)
    probe = unit(rng, 1)[0]
    crowd = np.repeat(probe[None, :], 30, axis=0)  # one subject photographed 30 times, identical templates
    others = unit(rng, 200)
    index = make()
    index.add(np.arange(500, 470, -1), crowd, np.zeros(30, np.int32))  # ids added in descending order
    index.add(np.arange(1000, 1200), others, np.zeros(200, np.int32))
    got, _scores = index.search(probe, 10)
    assert got[0].tolist() == list(range(471, 481)), "equal scores are ordered by id"
    deeper, deep_scores = index.search(probe, 60)
    assert set(range(471, 501)) <= set(deeper[0].tolist()) and np.all(np.diff(deep_scores[0]) <= 0)
    assert set(deeper[0, 30:].tolist()) <= set(range(1000, 1200))
    limit = index.max_k
    assert limit is None or limit == MILVUS_MAX_K
    if limit is not None:
        with pytest.raises(IndexInputError):
            index.search(probe, limit + 1)


def test_bad_input_is_refused_and_changes_nothing(backend: tuple[str, Factory]) -> None:
    _, make = backend
    index, vecs, _ids, _parts = filled(make, n=40)
    rng = np.random.default_rng(1)
    bad_calls = [
        (np.array([1, 2]), unit(rng, 2)[:, :-1], np.array([0, 0])),  # wrong dimension
        (np.array([1, 2]), np.full((2, DIM), np.nan, np.float32), np.array([0, 0])),  # NaN
        (np.array([1, 2]), 2 * unit(rng, 2), np.array([0, 0])),  # not unit-norm
        (np.array([1, 1]), unit(rng, 2), np.array([0, 0])),  # duplicate ids
        (np.array([1, 2, 3]), unit(rng, 2), np.array([0, 0])),  # length mismatch
        (np.array([1.5, 2.0]), unit(rng, 2), np.array([0, 0])),  # non-integer ids
        (np.array([1, 2]), unit(rng, 2), np.array([0, 2**40])),  # partition beyond int32
    ]
    for args in bad_calls:
        with pytest.raises(IndexInputError):
            index.add(*args)
    assert len(index) == 40 and 1 not in index
    for k in (0, -1, 2.5, True):
        with pytest.raises(IndexInputError):
            index.search(vecs[0], k)  # type: ignore[arg-type]
    with pytest.raises(IndexInputError):
        index.search(vecs[0, :-1], 3)
    with pytest.raises(IndexInputError):
        index.search(vecs[0], 3, allowed_partitions="01")  # type: ignore[arg-type]


def test_destroyed_subject_is_gone(backend: tuple[str, Factory]) -> None:
    """Destruction removes every template of a subject: no search, however deep or filtered, returns one."""
    _, make = backend
    index, vecs, ids, parts = filled(make)
    subject = ids[parts == 2][:4]  # four photos of one subject, in gallery 2
    assert index.remove(subject) == 4
    for allowed in (None, [2], [0, 1, 2, 3]):
        got, _ = index.search(vecs[parts == 2][:4], 1000, allowed_partitions=allowed)
        assert not set(got.ravel().tolist()) & set(subject.tolist())
    assert index.count([2]) == 96


def test_persistence_and_reload(backend: tuple[str, Factory], tmp_path: Path) -> None:
    """A persistent backend keeps its contents when reopened (here: after the embedded milvus-lite server was
    stopped, so they come back from its files); an in-process one starts empty and is rebuilt by its owner from
    the database (see test_index_runtime.py)."""
    name, make = backend
    if name == "milvus":
        path = str(tmp_path / "reload.db")

        def make_here() -> VectorIndex:
            return MilvusIndex(path, dim=DIM, collection="reload")

        make = make_here
    index, vecs, ids, parts = filled(make, n=120)
    index.remove(ids[:20])
    before = index.search(vecs[:5], 8, allowed_partitions=[0, 1])
    index.close()
    if name == "milvus":
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(str(tmp_path / "reload.db"))
    again = make()
    if not again.persistent:
        assert len(again) == 0
        return
    try:
        assert len(again) == 100 and set(again.ids().tolist()) == set(ids[20:].tolist())
        assert again.partition_counts() == {p: int(np.sum(parts[20:] == p)) for p in range(4)}
        after = again.search(vecs[:5], 8, allowed_partitions=[0, 1])
        assert np.array_equal(before[0], after[0])
        np.testing.assert_allclose(before[1], after[1], atol=1e-6)
    finally:
        if isinstance(again, MilvusIndex):
            again.drop()
        again.close()


def test_milvus_refuses_a_collection_of_another_dimension(milvus_file: str) -> None:
    from faceleads.errors import ConfigurationError

    first = MilvusIndex(milvus_file, dim=DIM, collection="dims")
    try:
        with pytest.raises(ConfigurationError, match="another schema"):
            MilvusIndex(milvus_file, dim=DIM * 2, collection="dims")
    finally:
        first.drop()
        first.close()


def test_settings_choose_the_backend_and_storage(tmp_path: Path) -> None:
    from faceleads.config import Settings
    from faceleads.gallery.index_backend import memory_index, open_index

    settings = Settings(data_dir=tmp_path, index_dtype="sign_int8", index_prefilter=0.05)
    index = open_index(settings, DIM, "model-a")
    assert isinstance(index, TemplateIndex) and not index.persistent
    assert index.dtype_name == "sign_int8" and index.prefilter == 0.05
    assert memory_index(Settings(data_dir=tmp_path), DIM).dtype_name == "int8"  # the gallery default
    shared = open_index(settings.model_copy(update={"index_backend": "milvus"}), DIM, "model-a")
    try:
        assert isinstance(shared, MilvusIndex) and shared.persistent and shared.max_k == MILVUS_MAX_K
        assert shared.uri == str(tmp_path / "milvus.db")  # embedded milvus-lite under the data directory
        other = open_index(settings.model_copy(update={"index_backend": "milvus"}), DIM, "model-b")
        assert other.collection != shared.collection  # templates of two models are never compared
        other.drop()  # type: ignore[attr-defined]
        other.close()
    finally:
        shared.drop()  # type: ignore[attr-defined]
        shared.close()
