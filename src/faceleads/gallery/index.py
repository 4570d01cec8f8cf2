"""In-process brute-force inner-product index over face templates (exact scan, or int8 scan + re-rank).

Design (measured figures in ``docs/search-index.md``):

* Two storage families. ``float16``/``bfloat16``/``float32``: one exact scan. ``int8`` (the gallery's default,
  ``Settings.index_dtype``): per-template symmetric int8 codes with a float32 scale are scanned with SimSIMD's
  int8 dot kernel (half the bytes of float16: 19 ms vs 40 ms per 1M on the reference machine), every piece keeps
  a shortlist of ``rerank * k`` rows by approximate score, and the best ``rerank * k`` overall are re-scored
  from the codes plus a 4-bit residual (two per byte) — 772 B per 512-d template, scores within ~1e-4.
* ``sign_int8`` (for galleries of many millions): the sign bit of every dimension (64 B at 512-d) is scanned first
  with FAISS's popcount kernel against the query's signs and magnitude planes (an asymmetric score, see
  ``_query_planes``), in cache-sized blocks so that each code is read from memory once; only the best
  ``prefilter`` share of each piece (at least ``prefilter_rows`` of the visible templates, so that a search
  restricted to a small gallery still goes deep) is scored from the int8 codes, then re-ranked from the residuals
  as above.
  Its full scan reads an eighth of the bytes of an int8 scan; a search costs ~0.35 of the CPU of a full int8 scan.
* Templates are stored **grouped by partition** (gallery id): each partition owns contiguous, geometrically
  growing arrays ("segment"). A search filtered to some galleries therefore scans only the allowed segments;
  nothing is masked after the fact.
* Scores come from SimSIMD's float16 (or int8) dot-product kernel (``simsimd.cdist``, single-threaded calls on
  pieces of <= 65,536 rows shared between the caller and helper threads, see ``_HelperPool``): 35 ms per
  1M templates on the quiet 2-core reference machine, reading half the bytes of a float32 scan.
  The ``out=`` argument of ``simsimd.cdist`` is deliberately *not* used: in simsimd 6.5 it returns ``None``
  without taking a reference and crashes the interpreter after a few calls.
* Top-k selection is exact and cheap: the k-th largest of the per-block maxima is a lower bound for the k-th
  largest score (k different blocks each hold a score at least that high), so only scores above it (usually
  a few dozen) go through ``argpartition``.
* Removal is swap-with-last inside the segment: O(1) per removed template, no rebuild.
* The id -> (segment, row) map is a sorted int64 array plus a small dict of recent changes that is merged
  in geometrically (amortised O(1) per add); a plain dict of a million Python ints would cost ~100 bytes per
  template, a tenth of the template itself.
* One lock serialises searches and updates. Each search already uses every core, so running two
  searches at once would not be faster, and the lock keeps a swap-with-last removal from ever being seen
  half-done.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import itertools
import math
import os
import queue
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, TypeVar

import numpy as np
import simsimd

from faceleads.gallery.index_backend import (
    IndexInputError,
    check_add,
    check_ids,
    check_k,
    check_partitions,
    check_queries,
)

__all__ = ["IndexInputError", "TemplateIndex"]

_ROW_BITS = 32  # location = segment slot << 32 | row
_ROW_MASK = (1 << _ROW_BITS) - 1
_BLOCK = 256  # block length for the block-maximum top-k bound
_MIN_BLOCK = 16
_INT8_MAX = 127
_RESIDUAL_STEPS = 16  # 4-bit residual: the int8 rounding error in sixteenths of a code step
_MIN_CAPACITY = 64
_MAX_SCORE_CELLS = 16 * 1024 * 1024  # 64 MB of float32 scores per kernel call
_PIECE_ROWS = 65_536  # rows per work piece: ~4 ms of one core at 512-d, and >= 4 * 50 blocks for the bound
_SIGN_PIECE_ROWS = 262_144  # sign_int8: 16 MB of 64-byte codes, ~3 ms of one core; fewer pieces, less overhead
_SIGN_BLOCK_CELLS = 16_384  # sign_int8: rows x query planes per Hamming kernel call (4,096 rows of 64 B at 4 planes)
_SIGN_MIN_BLOCK = 1_024  # sign_int8: rows per Hamming kernel call at least (a batch of queries: more planes per call)
_MAG_QUANTILE = 0.98  # sign_int8: query magnitudes are quantised up to this quantile of |q| (larger ones clipped)
_T = TypeVar("_T")
_GROWTH = 2.0
_DTYPES = ("float16", "float32", "bfloat16", "int8", "sign_int8")


_TRIM_BYTES = 16 * 1024 * 1024  # after an add moving at least this much, hand freed heap back to the OS


def _load_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None on other C libraries."""
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim: Callable[[int], int] | None = getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def _release_free_heap() -> None:
    """Return freed heap pages to the OS.

    A bulk add frees float16 copies and id-map temporaries of tens of megabytes; glibc keeps such blocks in
    its heap once its adaptive mmap threshold has risen, which showed up as ~100-200 extra resident bytes per
    template at 1M templates. ``malloc_trim`` takes a few milliseconds and brings RSS back to the arrays' size.
    """
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class _IdMap:
    """Map int64 id -> int64 location. Sorted arrays for the bulk, a dict for recent changes.

    Invariant: an id is live in at most one of the two parts. Main entries with value -1 are tombstones.
    """

    def __init__(self) -> None:
        self._keys = np.empty(0, dtype=np.int64)
        self._vals = np.empty(0, dtype=np.int64)
        self._tombstones = 0
        self._delta: dict[int, int] = {}

    @property
    def nbytes(self) -> int:
        # ~100 bytes per dict entry (entry + two boxed ints); the dict stays below 1/32 of the main part.
        return int(self._keys.nbytes + self._vals.nbytes + 100 * len(self._delta))

    def _main_positions(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in the main arrays and whether the key is present there (tombstone or not)."""
        if self._keys.size == 0:
            return np.zeros(ids.shape, dtype=np.int64), np.zeros(ids.shape, dtype=bool)
        pos = np.searchsorted(self._keys, ids)
        pos = np.minimum(pos, self._keys.size - 1)
        return pos, self._keys[pos] == ids

    def get_many(self, ids: np.ndarray) -> np.ndarray:
        """Locations of ``ids`` (-1 where absent)."""
        out = np.full(ids.shape, -1, dtype=np.int64)
        pos, hit = self._main_positions(ids)
        out[hit] = self._vals[pos[hit]]
        if self._delta:
            get = self._delta.get
            for i, key in enumerate(ids.tolist()):
                loc = get(key)
                if loc is not None:
                    out[i] = loc
        return out

    def get(self, key: int) -> int:
        loc = self._delta.get(key)
        if loc is not None:
            return loc
        return int(self.get_many(np.array([key], dtype=np.int64))[0])

    def set_many(self, ids: np.ndarray, locs: np.ndarray) -> None:
        """Insert or update; ``ids`` must be unique and not live in the delta under another state."""
        if self._delta:
            in_delta = np.fromiter((key in self._delta for key in ids.tolist()), dtype=bool, count=ids.size)
            if in_delta.any():
                self._delta.update(zip(ids[in_delta].tolist(), locs[in_delta].tolist(), strict=True))
                ids, locs = ids[~in_delta], locs[~in_delta]
        pos, hit = self._main_positions(ids)
        if hit.any():
            revived = int(np.count_nonzero(self._vals[pos[hit]] < 0))
            self._vals[pos[hit]] = locs[hit]
            self._tombstones -= revived
        new_ids, new_locs = ids[~hit], locs[~hit]
        if new_ids.size == 0:
            return
        if len(self._delta) + new_ids.size > max(1024, self._keys.size // 32):
            self._merge(new_ids, new_locs)
        else:
            self._delta.update(zip(new_ids.tolist(), new_locs.tolist(), strict=True))

    def set(self, key: int, loc: int) -> None:
        if key in self._delta:
            self._delta[key] = loc
        else:
            self.set_many(np.array([key], dtype=np.int64), np.array([loc], dtype=np.int64))

    def delete(self, key: int) -> bool:
        if self._delta.pop(key, None) is not None:
            return True
        pos, hit = self._main_positions(np.array([key], dtype=np.int64))
        if not hit[0] or self._vals[pos[0]] < 0:
            return False
        self._vals[pos[0]] = -1
        self._tombstones += 1
        if self._tombstones > max(1024, self._keys.size // 2):
            self._merge(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64))
        return True

    def _merge(self, extra_ids: np.ndarray, extra_locs: np.ndarray) -> None:
        """Fold the delta and ``extra_*`` into the sorted arrays, dropping tombstones."""
        live = self._vals >= 0
        delta_ids = np.fromiter(self._delta.keys(), dtype=np.int64, count=len(self._delta))
        delta_locs = np.fromiter(self._delta.values(), dtype=np.int64, count=len(self._delta))
        keys = np.concatenate([self._keys[live], delta_ids, extra_ids])
        vals = np.concatenate([self._vals[live], delta_locs, extra_locs])
        order = np.argsort(keys, kind="stable")
        self._keys, self._vals = keys[order], vals[order]
        self._delta.clear()
        self._tombstones = 0


class _Segment:
    """The templates of one partition: growable per-row arrays ("columns") plus their ids.

    Column 0 is what the kernel scans (float16/float32/bfloat16 vectors, or int8 codes); the int8 storage adds
    packed 4-bit residuals and per-template scales as further columns, and sign_int8 the sign bits (column 3,
    scanned before the int8 codes). Every column has one row per template,
    so appending, swap-with-last removal and reallocation treat them all alike.
    """

    __slots__ = ("columns", "count", "ids", "partition")

    def __init__(self, partition: int, specs: Sequence[tuple[tuple[int, ...], np.dtype]]) -> None:
        self.partition = partition
        self.columns = [np.empty((0, *tail), dtype=dtype) for tail, dtype in specs]
        self.ids = np.empty(0, dtype=np.int64)
        self.count = 0

    @property
    def vectors(self) -> np.ndarray:
        """The scanned column."""
        return self.columns[0]

    @property
    def nbytes(self) -> int:
        return int(self.ids.nbytes + sum(c.nbytes for c in self.columns))

    def _reallocate(self, capacity: int) -> None:
        # np.empty maps fresh pages lazily, so reserved-but-unused capacity costs address space, not RAM.
        columns = []
        for old in self.columns:
            new = np.empty((capacity, *old.shape[1:]), dtype=old.dtype)
            new[: self.count] = old[: self.count]
            columns.append(new)
        ids = np.empty(capacity, dtype=np.int64)
        ids[: self.count] = self.ids[: self.count]
        self.columns, self.ids = columns, ids

    def append(self, ids: np.ndarray, columns: Sequence[np.ndarray]) -> np.ndarray:
        """Append rows (amortised O(1) each: capacity doubles) and return their row numbers."""
        needed = self.count + ids.size
        if needed > self.ids.size:
            self._reallocate(max(needed, int(self.ids.size * _GROWTH), _MIN_CAPACITY))
        rows = np.arange(self.count, needed, dtype=np.int64)
        for mine, values in zip(self.columns, columns, strict=True):
            mine[self.count : needed] = values
        self.ids[self.count : needed] = ids
        self.count = needed
        return rows

    def move_row(self, src: int, dst: int) -> None:
        """Copy row ``src`` over row ``dst`` in every column (ids included)."""
        for column in self.columns:
            column[dst] = column[src]
        self.ids[dst] = self.ids[src]

    def maybe_shrink(self) -> None:
        """Give memory back after mass removal (hysteresis: shrink at 1/4 full to 1/2 full)."""
        if self.ids.size > 4 * _MIN_CAPACITY and self.count < self.ids.size // 4:
            self._reallocate(max(2 * self.count, _MIN_CAPACITY))


class _HelperPool:
    """Persistent helper threads for caller-runs work sharing.

    ``run`` splits a scan into pieces; the calling thread works through them itself while helpers (if any are
    free and scheduled) take pieces too. This matters on a busy machine: SimSIMD's own ``threads=`` splits
    a scan statically and starts threads per call, so every call waited for a descheduled thread (10 ms per
    partition under load in our measurements); here the caller never waits for a helper that has not
    started, only for a piece a helper is already running.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._started = 0
        self._lock = threading.Lock()

    def _loop(self) -> None:
        while True:
            self._jobs.get()()

    def run(self, tasks: Sequence[Callable[[], _T]], helpers: int) -> list[_T]:
        n = len(tasks)
        results: list[_T | None] = [None] * n
        errors: list[BaseException] = []
        counter = itertools.count()  # next() on a count is atomic under the GIL
        finished = [0]
        done = threading.Event()
        done_lock = threading.Lock()

        def drain() -> None:
            while True:
                i = next(counter)
                if i >= n:
                    return
                try:
                    results[i] = tasks[i]()
                except BaseException as exc:
                    errors.append(exc)
                with done_lock:
                    finished[0] += 1
                    if finished[0] == n:
                        done.set()

        helpers = min(helpers, n - 1)
        if helpers > 0:
            with self._lock:
                while self._started < helpers:
                    threading.Thread(target=self._loop, name="faceleads-index", daemon=True).start()
                    self._started += 1
            for _ in range(helpers):
                self._jobs.put(drain)
        if n:
            drain()
            done.wait()
        if errors:
            raise errors[0]
        return [r for r in results if r is not None]


_POOL = _HelperPool()


def _top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries of a 1-D array (unordered), exact."""
    m = scores.size
    if k >= m:
        return np.arange(m)
    block = _BLOCK
    while block > _MIN_BLOCK and m // block < 4 * k:
        block //= 2  # large k (the int8 shortlist): shorter blocks keep the bound usable
    nblocks = m // block
    if nblocks >= 4 * k:
        block_max = scores[: nblocks * block].reshape(nblocks, block).max(axis=1)
        # k blocks have a maximum >= this value, so at least k scores are >= it: a safe threshold.
        threshold = np.partition(block_max, nblocks - k)[nblocks - k]
        candidates = np.flatnonzero(scores >= threshold)
        picked = np.argpartition(scores[candidates], candidates.size - k)[candidates.size - k :]
        return candidates[picked]
    return np.argpartition(scores, m - k)[m - k :]


def _with_ties(scores: np.ndarray, picked: np.ndarray) -> np.ndarray:
    """``picked`` plus every other entry equal to its lowest score, so that the final merge can break ties at the
    cut by id (duplicate photos give exactly equal scores; which of them survives must not be arbitrary)."""
    if picked.size == 0 or picked.size == scores.size:
        return picked
    ties = np.flatnonzero(scores == scores[picked].min())
    return np.union1d(picked, ties) if ties.size > 1 else picked


def _int8_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symmetric int8 codes of float32 rows with a per-row scale: ``x ~ scale * codes``.

    Returns ``(codes, y, scales)`` where ``y = x / scale`` (the unrounded codes, for the residual).
    An all-zero row (possible for a query) gets scale 1 and zero codes.
    """
    amax = np.abs(values).max(axis=1) if values.shape[1] else np.zeros(values.shape[0], np.float32)
    scales = np.where(amax > 0, amax / _INT8_MAX, 1.0).astype(np.float32)
    y = values / scales[:, None]
    codes = np.clip(np.rint(y), -_INT8_MAX, _INT8_MAX).astype(np.int8)
    return codes, y, scales


def _encode_int8(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """float32 unit rows -> (int8 codes, packed 4-bit residuals, float32 scales).

    The residual ``y - codes`` lies in [-1/2, 1/2]; it is stored as one of 16 uniform steps (mid-rise:
    reconstructed at the step centre, so the error is at most 1/32 of a code step), two per byte.
    """
    codes, y, scales = _int8_codes(values)
    steps = np.floor((y - codes) * _RESIDUAL_STEPS) + _RESIDUAL_STEPS // 2
    nibbles = np.clip(steps, 0, _RESIDUAL_STEPS - 1).astype(np.uint8)
    if nibbles.shape[1] % 2:
        nibbles = np.concatenate([nibbles, np.zeros((nibbles.shape[0], 1), np.uint8)], axis=1)
    packed = nibbles[:, 0::2] | (nibbles[:, 1::2] << np.uint8(4))
    return codes, packed, scales


def _sign_width(dim: int) -> int:
    """Bytes per sign code: one bit per dimension, padded to whole 64-bit words (FAISS's Hamming kernels need a
    multiple of 8 bytes; the padding bits are 0 in templates and query planes alike, so they never count)."""
    return 8 * -(-dim // 64)


def _pack_bits(bits: np.ndarray) -> np.ndarray:
    """bool ``(n, dim)`` -> uint8 ``(n, _sign_width(dim))``, packed 8 per byte, zero-padded."""
    packed = np.packbits(bits, axis=1)
    width = _sign_width(bits.shape[1])
    if packed.shape[1] == width:
        return packed
    out = np.zeros((packed.shape[0], width), dtype=np.uint8)
    out[:, : packed.shape[1]] = packed
    return out


def _sign_bits(values: np.ndarray) -> np.ndarray:
    """One bit per dimension, set where the value is positive (uint8 ``(n, _sign_width(dim))``)."""
    return _pack_bits(values > 0)


def _query_planes(queries: np.ndarray, bits: int) -> np.ndarray:
    """Binary codes whose Hamming distances to a template's sign bits give an asymmetric score.

    The query is kept as its signs ``x`` plus ``bits`` magnitude planes: each dimension's ``|q_i|`` quantised to
    ``L_i`` in ``0..2**bits - 1`` (up to the 98th percentile of ``|q|``, larger values clipped). For a template
    with sign bits ``b`` the disagreement ``y = x XOR b`` gives ``q . sign(template) ~ const - 2 * sum_i L_i y_i``,
    and ``sum_i L_i y_i = sum_j 2**j popcount(m_j AND y)`` with ``m_j`` the j-th magnitude plane. Since
    ``popcount(m AND y) = (popcount(m) + popcount(y) - popcount(m XOR y)) / 2`` and ``m XOR y = (m XOR x) XOR b``,
    the rows ``[x, m_0 XOR x, ..., m_{bits-1} XOR x]`` scanned with one Hamming kernel call give every term;
    :func:`_plane_keys` combines them. ``bits = 0`` is the plain symmetric Hamming distance of the signs.

    Returns:
        uint8 ``(q * (bits + 1), _sign_width(dim))``, the planes of each query consecutive.
    """
    signs = queries > 0
    planes = [signs]
    if bits:
        mags = np.abs(queries)
        top = np.quantile(mags, _MAG_QUANTILE, axis=1, keepdims=True) if mags.shape[1] else np.ones((len(mags), 1))
        top = np.where(top > 0, top, 1.0)
        levels = np.clip(np.rint(mags / top * (2**bits - 1)), 0, 2**bits - 1).astype(np.uint8)
        planes += [((levels >> np.uint8(j)) & np.uint8(1)).astype(bool) ^ signs for j in range(bits)]
    stacked = np.stack(planes, axis=1).reshape(-1, queries.shape[1])  # (q * planes, dim), query-major
    return _pack_bits(stacked)


def _plane_keys(distances: np.ndarray, bits: int, out: np.ndarray | None = None) -> np.ndarray:
    """Combine plane distances into an int32 key, smaller = better: ``(2**bits - 1) * h_x - sum_j 2**j h_j`` is
    ``2 * sum_i L_i y_i`` up to a per-query constant.

    Args:
        distances: integers ``(bits + 1, rows)`` for one query, or ``(q, bits + 1, rows)``.
        bits: magnitude planes per query.
        out: int32 ``(rows,)`` / ``(q, rows)`` to write the key into (the scan writes into its key array).
    """
    dist = distances.astype(np.int32, copy=False)  # FAISS's int32 already; other integer types for tests
    key = np.empty(dist.shape[:-2] + dist.shape[-1:], dtype=np.int32) if out is None else out
    if not bits:
        key[...] = dist[..., 0, :]
        return key
    np.multiply(dist[..., 0, :], np.int32(2**bits - 1), out=key)
    for j in range(bits):
        key -= dist[..., j + 1, :] << np.int32(j) if j else dist[..., j + 1, :]
    return key


def _sign_keys(planes: np.ndarray, bits: np.ndarray, query_bits: int, out: np.ndarray) -> None:
    """The first-stage key of every row for every query: ``out[i, j]`` = :func:`_plane_keys` of query ``i``'s
    planes against ``bits[j]`` (smaller = more similar).

    Args:
        planes: uint8 ``(q * (query_bits + 1), width)``, C-contiguous (:func:`_query_planes`).
        bits: uint8 ``(n, width)``, C-contiguous, ``width`` a multiple of 8 (:func:`_sign_bits`).
        query_bits: magnitude planes per query.
        out: int32 ``(q, n)``, C-contiguous.

    The Hamming distances come from FAISS's popcount kernel (one thread, GIL released). It reads its rows once
    per query plane, so the rows go in blocks of ``_SIGN_BLOCK_CELLS / planes`` (256 KB of 512-bit codes at 4
    planes; at least ``_SIGN_MIN_BLOCK`` rows, so that a batch of queries does not shrink the blocks to where
    the per-call overhead dominates) that stay in the cache while every plane of every query is scored: each sign
    code is read from memory once per search. FAISS takes raw pointers; the checks below keep it inside the
    arrays.
    """
    n_planes = query_bits + 1
    n_codes, width = planes.shape if planes.ndim == 2 else (0, -1)
    if not (
        planes.dtype == bits.dtype == np.uint8
        and out.dtype == np.int32
        and bits.ndim == out.ndim == 2
        and bits.shape[1] == width
        and width % 8 == 0
        and n_codes % n_planes == 0
        and out.shape == (n_codes // n_planes, bits.shape[0])
        and planes.flags.c_contiguous
        and bits.flags.c_contiguous
        and out.flags.c_contiguous
    ):
        raise ValueError("sign scan: arrays of the wrong type, shape or layout")
    n = bits.shape[0]
    if n == 0 or n_codes == 0:
        return
    faiss = _faiss()
    nq = n_codes // n_planes
    block = max(_SIGN_MIN_BLOCK, _SIGN_BLOCK_CELLS // n_codes)
    dist = np.empty(n_codes * min(block, n), dtype=np.int32)
    planes_ptr = faiss.swig_ptr(planes)
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        d = dist[: n_codes * (b1 - b0)].reshape(n_codes, b1 - b0)
        faiss.hammings(planes_ptr, faiss.swig_ptr(bits[b0:b1]), n_codes, b1 - b0, width, faiss.swig_ptr(d))
        _plane_keys(d.reshape(nq, n_planes, b1 - b0), query_bits, out=out[:, b0:b1])


@functools.cache
def _faiss() -> Any:
    """The faiss module, imported on first use: only ``sign_int8`` searches need it (~0.3 s to import)."""
    import faiss

    return faiss


def _smallest_rows(key: np.ndarray, keep: int) -> np.ndarray:
    """Sorted positions of the ``keep`` smallest entries of an integer array; ties at the cut go to the lowest
    positions. A SIMD select for the cut value, then one compare: ~1 ns per entry (argpartition: ~2-7 ns)."""
    if keep >= key.size:
        return np.arange(key.size)
    cut = np.partition(key, keep - 1)[keep - 1]
    rows = np.flatnonzero(key <= cut)
    extra = rows.size - keep
    if extra > 0:
        ties = np.flatnonzero(key[rows] == cut)
        rows = np.delete(rows, ties[ties.size - extra :])
    return rows


def _decode_int8(codes: np.ndarray, packed: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_encode_int8` (up to the residual step): float32 rows."""
    nibbles = np.empty((packed.shape[0], 2 * packed.shape[1]), dtype=np.float32)
    nibbles[:, 0::2] = packed & np.uint8(0x0F)
    nibbles[:, 1::2] = packed >> np.uint8(4)
    dim = codes.shape[1]
    residual = (nibbles[:, :dim] - (_RESIDUAL_STEPS // 2 - 0.5)) / _RESIDUAL_STEPS
    return (codes.astype(np.float32) + residual) * scales[:, None]


class TemplateIndex:
    """Inner-product search over unit-norm templates, partitioned by gallery.

    Args:
        dim: template dimension.
        dtype: storage type: ``"float16"`` (default; half the memory of float32, exact scan, recall 1.0 at
            1M), ``"bfloat16"`` (same memory, half the kernel compute, recall 0.994 measured), ``"float32"``,
            or ``"int8"`` (two-stage: an int8 scan of all visible templates picks a shortlist of
            ``rerank * k`` candidates, which are re-scored from int8 codes plus 4-bit residuals; 772 B per
            512-d template, scores within ~1e-4 of float32), or ``"sign_int8"`` (three stages: the sign bits of
            every visible template, 64 B at 512-d, are scanned against the query's signs and magnitude planes
            with FAISS's popcount kernel; the best ``prefilter`` share of each piece is scored from int8 codes,
            and the best ``rerank * k`` of those re-scored from codes plus residuals as for ``int8``; 836 B of
            codes per 512-d template; its full scan reads an eighth of the bytes of an int8 scan).
        threads: threads per search (the caller plus ``threads - 1`` shared helpers); default one per core.
        rerank: int8/sign_int8: shortlist re-scored from the residuals, as a multiple of ``k`` (>= 1).
        prefilter: sign_int8: share of the visible templates (per piece) passed from the sign scan to the int8
            scoring (at least ``rerank * k`` of each piece).
        prefilter_rows: sign_int8: at least this many of the visible templates are passed on (the share is raised
            to ``prefilter_rows / visible`` when larger): at a fixed share, the fewer templates a search sees, the
            less deep in the tail its top-k lies and the more of it the sign scan misses (ArcFace-like data, 1 %:
            first-stage recall 0.89 at 50k visible templates, 0.987 at 600k; with 20,000 rows: 1.0 at both).
        query_bits: sign_int8: magnitude planes of the query in the sign scan (0 = plain Hamming distance of
            the signs; each plane adds a popcount over the cached block, ~1.3 ns per template, and sharpens the
            first-stage ranking).
    """

    def __init__(
        self,
        dim: int = 512,
        dtype: str = "float16",
        threads: int | None = None,
        rerank: int = 8,
        *,
        prefilter: float = 0.01,
        prefilter_rows: int = 20_000,
        query_bits: int = 2,
    ) -> None:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise IndexInputError(f"dim must be a positive integer, got {dim!r}")
        if dtype not in _DTYPES:
            raise IndexInputError(f"dtype must be one of {', '.join(map(repr, _DTYPES))}, got {dtype!r}")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise IndexInputError(f"threads must be a positive integer or None, got {threads!r}")
        if isinstance(rerank, bool) or not isinstance(rerank, int) or rerank < 1:
            raise IndexInputError(f"rerank must be a positive integer, got {rerank!r}")
        if isinstance(prefilter, bool) or not isinstance(prefilter, int | float) or not 0 < prefilter <= 1:
            raise IndexInputError(f"prefilter must be a share in (0, 1], got {prefilter!r}")
        if isinstance(prefilter_rows, bool) or not isinstance(prefilter_rows, int) or prefilter_rows < 0:
            raise IndexInputError(f"prefilter_rows must be a non-negative integer, got {prefilter_rows!r}")
        if isinstance(query_bits, bool) or not isinstance(query_bits, int) or not 0 <= query_bits <= 4:
            raise IndexInputError(f"query_bits must be an integer from 0 to 4, got {query_bits!r}")
        self.dim = dim
        self.dtype_name = dtype
        self.rerank = rerank
        self.prefilter = float(prefilter)
        self.prefilter_rows = prefilter_rows
        self.query_bits = query_bits
        # numpy has no bfloat16: those are stored as their uint16 bit patterns and the kernel is told so.
        storage = {"bfloat16": np.uint16, "sign_int8": np.int8}.get(dtype, dtype)
        self.dtype = np.dtype(storage)
        self._signs = dtype == "sign_int8"
        self._two_stage = dtype in ("int8", "sign_int8")
        self._specs: list[tuple[tuple[int, ...], np.dtype]] = [((dim,), self.dtype)]
        if self._two_stage:
            self._specs += [(((dim + 1) // 2,), np.dtype(np.uint8)), ((), np.dtype(np.float32))]
        if self._signs:
            # Column 3: the sign bits the first stage scans (columns 0-2 as for int8).
            self._specs.append(((_sign_width(dim),), np.dtype(np.uint8)))
        self.threads = threads if threads is not None else max(1, os.cpu_count() or 1)
        self._segments: list[_Segment] = []
        self._slot_of: dict[int, int] = {}
        self._idmap = _IdMap()
        self._count = 0
        self._lock = threading.RLock()

    def _kernel(self, queries: np.ndarray, rows: np.ndarray) -> object:
        """Inner products (queries x rows) as float32, one thread (the callers share the pieces out)."""
        if self.dtype_name == "bfloat16":
            return simsimd.cdist(queries, rows, metric="dot", dtype="bf16", threads=1, out_dtype="float32")
        # int8 x int8 -> exact integer dot products (|value| <= 127 * 127 * dim, exact in float32 for dim <= 1040).
        return simsimd.cdist(queries, rows, metric="dot", threads=1, out_dtype="float32")

    def _sign_prefilter(self, planes: np.ndarray, bits: np.ndarray, keep: int) -> list[np.ndarray]:
        """First stage of ``sign_int8``: per query, the ``keep`` rows of ``bits`` with the smallest plane key.

        Args:
            planes: uint8 ``(q * (query_bits + 1), width)``, the queries' planes (:func:`_query_planes`).
            bits: uint8 ``(n, width)``, the templates' sign bits (a contiguous run of one segment's rows).
            keep: rows kept per query (< n).

        Returns:
            Per query, the sorted row positions (int64, into ``bits``).
        """
        keys = np.empty((planes.shape[0] // (self.query_bits + 1), bits.shape[0]), dtype=np.int32)
        _sign_keys(planes, bits, self.query_bits, keys)
        return [_smallest_rows(key, keep) for key in keys]

    def _encode(self, values: np.ndarray) -> tuple[np.ndarray, ...]:
        """float32 unit rows -> the segment columns for this storage type."""
        if self._signs:
            return (*_encode_int8(values), _sign_bits(values))
        if self._two_stage:
            return _encode_int8(values)
        return (self._to_storage(values),)

    # ----------------------------------------------------------------------------------------- validation
    def _to_storage(self, values: np.ndarray) -> np.ndarray:
        """float32 -> scanned type; bfloat16 by round-to-nearest-even on the upper 16 bits, int8 by per-row scale."""
        if self._two_stage:
            return _int8_codes(values)[0]
        if self.dtype_name != "bfloat16":
            return values.astype(self.dtype, copy=False)
        bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
        return ((bits + np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(
            np.uint16
        )

    # ------------------------------------------------------------------------------------------- updates
    def add(self, ids: np.ndarray, vectors: np.ndarray, partitions: np.ndarray) -> None:
        """Add templates; an id already in the index is replaced (vector and partition).

        Args:
            ids: int64 ``(n,)``, unique within the call.
            vectors: float32 ``(n, dim)``, unit-norm (checked to 1e-3).
            partitions: int32 ``(n,)``, the gallery each template belongs to.

        Raises:
            IndexInputError: wrong shapes or dtypes, mismatched lengths, duplicates, non-finite or
                non-unit vectors.
        """
        id_arr, vec, part_arr = check_add(self.dim, ids, vectors, partitions)
        if id_arr.size == 0:
            return
        stored = self._encode(vec)

        with self._lock:
            existing = id_arr[self._idmap.get_many(id_arr) >= 0]
            if existing.size:
                self._remove_locked(existing.tolist())
            order = np.argsort(part_arr, kind="stable")
            sorted_parts = part_arr[order]
            starts = np.flatnonzero(np.r_[True, sorted_parts[1:] != sorted_parts[:-1]])
            ends = np.r_[starts[1:], sorted_parts.size]
            for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
                partition = int(sorted_parts[start])
                sel = order[start:end]
                slot = self._slot_of.get(partition)
                if slot is None:
                    slot = len(self._segments)
                    self._segments.append(_Segment(partition, self._specs))
                    self._slot_of[partition] = slot
                seg_ids = id_arr[sel]
                rows = self._segments[slot].append(seg_ids, [column[sel] for column in stored])
                self._idmap.set_many(seg_ids, (np.int64(slot) << _ROW_BITS) | rows)
            self._count += id_arr.size
        if sum(column.nbytes for column in stored) >= _TRIM_BYTES:
            del vec, stored
            _release_free_heap()

    def remove(self, ids: Iterable[int]) -> int:
        """Remove templates by id (unknown ids are ignored). O(1) per removed template.

        Returns:
            How many templates were removed.
        """
        if isinstance(ids, np.ndarray):
            id_list = check_ids(ids.ravel()).tolist()
        else:
            try:
                id_list = [int(i) for i in ids]
            except (TypeError, ValueError) as exc:
                raise IndexInputError(f"ids to remove must be integers: {exc}") from exc
        with self._lock:
            return self._remove_locked(id_list)

    def _remove_locked(self, id_list: list[int]) -> int:
        removed = 0
        touched: set[int] = set()
        for key in id_list:
            loc = self._idmap.get(key)
            if loc < 0:
                continue
            slot, row = loc >> _ROW_BITS, loc & _ROW_MASK
            seg = self._segments[slot]
            last = seg.count - 1
            if row != last:
                # Swap-with-last keeps each segment dense, so a scan never sees holes.
                seg.move_row(last, row)
                moved = int(seg.ids[row])
                self._idmap.set(moved, (slot << _ROW_BITS) | row)
            seg.count = last
            self._idmap.delete(key)
            touched.add(slot)
            removed += 1
        for slot in touched:
            self._segments[slot].maybe_shrink()
        self._count -= removed
        return removed

    # -------------------------------------------------------------------------------------------- search
    def search(
        self, queries: np.ndarray, k: int, allowed_partitions: Collection[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``k`` by inner product.

        Args:
            queries: float32 ``(dim,)`` or ``(q, dim)``.
            k: number of results wanted (>= 1).
            allowed_partitions: only templates of these partitions are visible; ``None`` = all.

        Returns:
            ``(ids, scores)``: int64 and float32 arrays of shape ``(q, k')``, best first (ties by id),
            where ``k' = min(k, number of visible templates)``; never padded.
        """
        q = check_queries(queries, self.dim)
        k = check_k(k)
        allowed = check_partitions(allowed_partitions)
        if self.dtype == np.float16 and q.size and float(np.abs(q).max()) > 65504.0:
            raise IndexInputError("queries have values too large for float16 (|x| > 65504)")
        q_kernel = np.ascontiguousarray(self._to_storage(q))
        nq = q.shape[0]

        with self._lock:
            segments = [s for s in self._segments if s.count and (allowed is None or s.partition in allowed)]
            visible = sum(s.count for s in segments)
            kk = min(k, visible)
            out_ids = np.empty((nq, kk), dtype=np.int64)
            out_scores = np.empty((nq, kk), dtype=np.float32)
            if nq == 0 or kk == 0:
                return out_ids, out_scores
            cand_ids: list[list[np.ndarray]] = [[] for _ in range(nq)]
            cand_scores: list[list[np.ndarray]] = [[] for _ in range(nq)]
            pieces = []
            piece_rows = _SIGN_PIECE_ROWS if self._signs else _PIECE_ROWS
            for seg in segments:
                n_pieces = -(-seg.count // piece_rows)
                bounds = np.linspace(0, seg.count, n_pieces + 1).astype(np.int64).tolist()
                pieces += [(seg, lo, hi) for lo, hi in itertools.pairwise(bounds)]
            # int8: each piece keeps a shortlist of `shortlist` rows per query by approximate score, the
            # best `shortlist` of all pieces are re-scored from codes + residuals, and the top kk of those win.
            shortlist = min(self.rerank * kk, visible) if self._two_stage else kk

            def scan(seg: _Segment, lo: int, hi: int) -> list[tuple[np.ndarray, np.ndarray]]:
                """Per query, the best rows of rows lo:hi of one segment: (ids, scores), or for int8
                (row numbers, approximate scores)."""
                found = []
                # Score matrices are (queries x rows) float32: cap them at _MAX_SCORE_CELLS by splitting
                # large batches, so a 1,000-query batch over 1M templates does not allocate 4 GB.
                step = max(1, _MAX_SCORE_CELLS // (hi - lo))
                for q0 in range(0, nq, step):
                    q1 = min(nq, q0 + step)
                    scores = np.asarray(self._kernel(q_kernel[q0:q1], seg.vectors[lo:hi])).reshape(q1 - q0, hi - lo)
                    if self._two_stage:
                        # Integer dot products times the template's scale: proportional to the score (the
                        # query's own scale is common to all rows).
                        scores *= seg.columns[2][lo:hi]
                        for row in scores:
                            idx = _top_k_indices(row, min(shortlist, hi - lo))
                            found.append((lo + idx, row[idx]))
                    else:
                        for row in scores:
                            idx = _with_ties(row, _top_k_indices(row, kk))
                            found.append((seg.ids[lo + idx], row[idx]))
                return found

            if self._signs:
                planes = _query_planes(q, self.query_bits)
                n_planes = self.query_bits + 1
                share = max(self.prefilter, min(1.0, self.prefilter_rows / visible))

                def scan_signs(seg: _Segment, lo: int, hi: int) -> list[tuple[np.ndarray, np.ndarray]]:
                    """sign_int8, per query: the magnitude-weighted sign disagreement (``_plane_keys``) of every
                    row lo:hi keeps the best ``share`` of them (at least ``shortlist``), which is scored from the
                    int8 codes; the best ``shortlist`` are returned as (row numbers, approximate scores) for the
                    residual re-rank."""
                    n = hi - lo
                    keep = min(n, max(shortlist, math.ceil(share * n)))
                    if keep >= n:
                        return scan(seg, lo, hi)  # nothing to cut: the int8 scan of the rows in place, no gather
                    found = []
                    bits = seg.columns[3]
                    step = max(1, _MAX_SCORE_CELLS // n)
                    for q0 in range(0, nq, step):
                        q1 = min(nq, q0 + step)
                        chosen = self._sign_prefilter(planes[q0 * n_planes : q1 * n_planes], bits[lo:hi], keep)
                        for i, rows in enumerate(chosen):
                            rows += lo
                            approx = np.asarray(
                                self._kernel(q_kernel[q0 + i : q0 + i + 1], seg.columns[0][rows])
                            ).reshape(-1)
                            approx *= seg.columns[2][rows]
                            idx = _top_k_indices(approx, min(shortlist, approx.size))
                            found.append((rows[idx], approx[idx]))
                    return found

                tasks = [functools.partial(scan_signs, *piece) for piece in pieces]
            else:
                tasks = [functools.partial(scan, *piece) for piece in pieces]
            results = _POOL.run(tasks, helpers=self.threads - 1)
            if self._two_stage:
                for i in range(nq):
                    ids_i, sc_i = self._rerank(
                        q[i], [(p[0], r[i]) for p, r in zip(pieces, results, strict=True)], shortlist
                    )
                    cand_ids[i].append(ids_i)
                    cand_scores[i].append(sc_i)
            else:
                for piece_found in results:
                    for i, (piece_ids, piece_scores) in enumerate(piece_found):
                        cand_ids[i].append(piece_ids)
                        cand_scores[i].append(piece_scores)
        for i in range(nq):
            ids_i = np.concatenate(cand_ids[i])
            sc_i = np.concatenate(cand_scores[i])
            order = np.lexsort((ids_i, -sc_i))[:kk]
            out_ids[i] = ids_i[order]
            out_scores[i] = sc_i[order]
        return out_ids, out_scores

    def _rerank(
        self, query: np.ndarray, found: list[tuple[_Segment, tuple[np.ndarray, np.ndarray]]], shortlist: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """int8 second stage (lock held): re-score the best ``shortlist`` candidates of all pieces.

        Args:
            query: the float32 query.
            found: per piece, its segment and (row numbers, approximate scores).
            shortlist: how many candidates to re-score.

        Returns:
            ``(ids, scores)`` of the re-scored candidates, scores from the reconstructed templates.
        """
        approx = np.concatenate([sc for _seg, (_rows, sc) in found])
        piece_of = np.repeat(np.arange(len(found)), [rows.size for _seg, (rows, _sc) in found])
        offsets = np.r_[0, np.cumsum([rows.size for _seg, (rows, _sc) in found])]
        best = _top_k_indices(approx, shortlist)
        ids_out, scores_out = [], []
        # Group the shortlist by segment, so that each segment's rows are gathered and decoded at once.
        by_segment: dict[int, tuple[_Segment, list[np.ndarray]]] = {}
        for p in np.unique(piece_of[best]).tolist():
            seg, (rows, _sc) = found[p]
            picked = best[piece_of[best] == p] - offsets[p]
            by_segment.setdefault(id(seg), (seg, []))[1].append(rows[picked])
        for seg, row_parts in by_segment.values():
            # Sorted: the same shortlist gives bit-identical scores however the scan was cut into pieces.
            rows = np.sort(np.concatenate(row_parts))
            codes, packed, scales = (column[rows] for column in seg.columns[:3])
            ids_out.append(seg.ids[rows])
            scores_out.append(_decode_int8(codes, packed, scales) @ query)
        return np.concatenate(ids_out), np.concatenate(scores_out).astype(np.float32, copy=False)

    # ------------------------------------------------------------------------------------- introspection
    def __len__(self) -> int:
        return self._count

    def __contains__(self, id: object) -> bool:
        if isinstance(id, bool) or not isinstance(id, int | np.integer):
            return False
        with self._lock:
            return self._idmap.get(int(id)) >= 0

    def present(self, ids: Iterable[int]) -> np.ndarray:
        """The given ids that the index holds (int64, sorted, unique)."""
        try:
            arr = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
        except (TypeError, ValueError) as exc:
            raise IndexInputError(f"ids must be integers: {exc}") from exc
        with self._lock:
            return arr[self._idmap.get_many(arr) >= 0]

    def ids(self) -> np.ndarray:
        """All ids in the index (int64, grouped by partition, no particular order inside)."""
        with self._lock:
            parts = [s.ids[: s.count].copy() for s in self._segments if s.count]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def partition_counts(self) -> dict[int, int]:
        """Number of templates per partition (partitions with none are left out)."""
        with self._lock:
            return {s.partition: s.count for s in self._segments if s.count}

    def count(self, allowed_partitions: Collection[int] | None = None) -> int:
        """Number of templates a search restricted to ``allowed_partitions`` sees (None: all)."""
        allowed = check_partitions(allowed_partitions)
        with self._lock:
            return sum(s.count for s in self._segments if allowed is None or s.partition in allowed)

    @property
    def persistent(self) -> bool:
        """False: the contents live in this process only and are rebuilt from the database at start."""
        return False

    @property
    def max_k(self) -> int | None:
        """No limit on ``k``."""
        return None

    def close(self) -> None:
        """Nothing to release (the arrays go with the object)."""

    @property
    def nbytes(self) -> int:
        """Bytes held by the index arrays, including reserved capacity (which Linux maps lazily)."""
        with self._lock:
            seg_bytes = sum(s.nbytes for s in self._segments)
            return int(seg_bytes + self._idmap.nbytes)

    @property
    def capacity(self) -> int:
        """Total rows allocated across partitions (>= len(self))."""
        with self._lock:
            return sum(s.ids.size for s in self._segments)
