"""Scale benchmark of the template index: the in-process index (any storage) or Milvus, against exact search.

Usage::

    .venv/bin/python benchmarks/search_scale.py --n 1000000 [--dtype int8] [--json]
    .venv/bin/python benchmarks/search_scale.py --n 10000000 --dtype sign_int8 --distribution arcface --json
    .venv/bin/python benchmarks/search_scale.py --backend milvus --n 100000 [--milvus-uri URI] --json

Synthetic unit-norm templates (``benchmarks/synthetic.py``: ``isotropic`` random vectors, or ``arcface``, a
Gaussian identity model fitted to real ArcFace templates), generated in 50k chunks from a seeded RNG and spread
over ``--partitions`` galleries; no float32 copy of the gallery is ever held. Queries: ``--queries`` mated ones
(another photo of a gallery identity) and ``--nonmated`` ones (identities not in the gallery). The exact float32
top-k of every query is computed chunk by chunk during the same pass that fills the index, so recall is measured
against exact search at any n (FAISS ``IndexFlatIP`` is also timed when its float32 copy fits in memory).

Prints build time, resident memory per template (RSS delta), single-query p50/p95 with and without a gallery
filter, batch throughput, recall of the exact top-k (all queries, mated, non-mated), and for the in-process index
the time of one plain pass over all of the index's bytes (for ``sign_int8`` also over its sign codes alone, the
floor of its first stage) and of a full int8 scan (the first stage of ``int8``) in the same run, with the
machine's load. With ``--json``: exactly one JSON object on stdout.
``--backend milvus`` builds the in-process index too (``--dtype``) and reports both side by side.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import simsimd
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from faceleads.gallery.index import _POOL, TemplateIndex
from faceleads.gallery.index_backend import VectorIndex
from synthetic import GroundTruth, Population

ID_OFFSET = 1_000_000  # ids are not row numbers, as in a real gallery


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/status."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def mem_available() -> int:
    with open("/proc/meminfo", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def percentile_ms(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples) * 1000.0, q)) if samples else float("nan")


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    """Mean share of each exact top-k found in ours."""
    return float(np.mean([np.isin(t, g).mean() for g, t in zip(got, truth, strict=True)])) if len(truth) else 1.0


def plain_pass_s(index: TemplateIndex, threads: int, columns: list[int] | None = None) -> float:
    """Seconds for one plain read of every byte the index holds (all columns, ids; or only ``columns``), in pieces
    shared by the same threads as a search: the floor for any search that scans those bytes."""
    arrays = []
    for seg in index._segments:
        chosen = [*seg.columns, seg.ids] if columns is None else [seg.columns[c] for c in columns]
        for column in chosen:
            flat = column[: seg.count].reshape(-1).view(np.uint8)
            step = 64 * 1024 * 1024
            arrays += [flat[i : i + step] for i in range(0, flat.size, step)]
    tasks = [lambda a=a: int(a.max(initial=0)) for a in arrays]
    t0 = time.perf_counter()
    _POOL.run(tasks, helpers=threads - 1)
    return time.perf_counter() - t0


def int8_scan_s(index: TemplateIndex, query: np.ndarray, threads: int) -> float:
    """Seconds for a full int8 scan of every template (the first stage of ``dtype="int8"``), same threads."""
    from faceleads.gallery.index import _int8_codes

    q8 = np.ascontiguousarray(_int8_codes(query[None, :])[0])
    tasks = []
    for seg in index._segments:
        bounds = [*range(0, seg.count, 65_536), seg.count]
        for lo, hi in itertools.pairwise(bounds):
            codes = seg.columns[0][lo:hi]
            tasks.append(lambda c=codes: simsimd.cdist(q8, c, metric="dot", threads=1, out_dtype="float32"))
    t0 = time.perf_counter()
    _POOL.run(tasks, helpers=threads - 1)
    return time.perf_counter() - t0


def time_queries(
    index: VectorIndex, queries: np.ndarray, k: int, allowed: list[int], partition_of: np.ndarray
) -> dict[str, Any]:
    """Warm-up pass, then single queries (unfiltered and filtered) and a batch; returns timings and results."""
    for q in queries[: min(10, len(queries))]:
        index.search(q, k)
    single, filtered, cpu = [], [], []
    got = np.empty((len(queries), k), dtype=np.int64)
    got_filtered = np.empty((len(queries), k), dtype=np.int64)
    for i, q in enumerate(queries):
        c0, t0 = time.process_time(), time.perf_counter()
        ids, _ = index.search(q, k)
        single.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)  # CPU time of all threads: what the search costs, whatever the load
        got[i] = ids[0]
        t0 = time.perf_counter()
        ids, _ = index.search(q, k, allowed_partitions=allowed)
        filtered.append(time.perf_counter() - t0)
        got_filtered[i] = ids[0]
        if not np.isin(partition_of[ids[0] - ID_OFFSET], allowed).all():
            raise AssertionError("filtered search returned a template from a non-allowed gallery")
    t0 = time.perf_counter()
    index.search(queries[:32], k)
    batch_qps = min(32, len(queries)) / (time.perf_counter() - t0)
    return {
        "single": single,
        "filtered": filtered,
        "cpu": cpu,
        "got": got,
        "got_filtered": got_filtered,
        "batch_qps": batch_qps,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the process exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="number of gallery templates")
    ap.add_argument("--queries", type=int, default=50, help="mated queries (a true match is in the gallery)")
    ap.add_argument("--nonmated", type=int, default=50, help="non-mated queries (no match in the gallery)")
    ap.add_argument("--k", type=int, default=50, help="candidates per query")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--partitions", type=int, default=10, help="galleries the templates are spread over")
    ap.add_argument("--allowed", type=int, default=3, help="galleries visible in the filtered search")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for ours and FAISS")
    ap.add_argument("--backend", choices=["memory", "milvus"], default="memory")
    ap.add_argument(
        "--dtype", choices=["float16", "bfloat16", "float32", "int8", "sign_int8"], default="int8", help="in-process"
    )
    ap.add_argument("--rerank", type=int, default=8, help="int8/sign_int8: residual re-rank shortlist / k")
    ap.add_argument("--prefilter", type=float, default=None, help="sign_int8: share passed from the sign scan")
    ap.add_argument("--prefilter-rows", type=int, default=None, help="sign_int8: visible templates passed on at least")
    ap.add_argument("--query-bits", type=int, default=None, help="sign_int8: query magnitude planes")
    ap.add_argument(
        "--sweep-prefilter",
        default="",
        help="sign_int8: comma-separated prefilter shares, or query_bits:share pairs, also timed on the same index "
        "(e.g. 0.005,0.02 or 0:0.02,2:0.005; a share below prefilter_rows / n is raised to it)",
    )
    ap.add_argument("--distribution", choices=["isotropic", "arcface"], default="isotropic")
    ap.add_argument("--milvus-uri", default=None, help="Milvus server (default: a temporary milvus-lite file)")
    ap.add_argument("--milvus-index", default="FLAT", choices=["FLAT", "HNSW", "IVF_FLAT", "IVF_SQ8"])
    ap.add_argument("--milvus-timeout", type=float, default=900.0, help="seconds per Milvus request")
    ap.add_argument("--seed", type=int, default=20261122)
    ap.add_argument("--no-faiss", action="store_true", help="skip the FAISS comparison")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)
    if args.n < args.k or args.queries + args.nonmated < 1 or not 0 < args.allowed <= args.partitions:
        ap.error("need n >= k, at least one query and 0 < allowed <= partitions")

    console = Console(stderr=True)
    n, dim, k = args.n, args.dim, args.k
    population = Population(args.distribution, n, dim, args.seed)
    rng = np.random.default_rng(args.seed + 1)
    partitions = rng.integers(0, args.partitions, n).astype(np.int32)
    ids = np.arange(n, dtype=np.int64) + ID_OFFSET
    mated_rows = np.sort(rng.choice(n, size=args.queries, replace=False))
    queries = np.vstack(
        [population.mated_queries(mated_rows, 1), population.nonmated_queries(args.nonmated, 2)]
    ).astype(np.float32)
    allowed = list(range(args.allowed))
    truth = GroundTruth(queries, k)
    truth_allowed = GroundTruth(queries, k)  # exact top-k within the allowed galleries
    sign_kwargs = {}
    if args.prefilter is not None:
        sign_kwargs["prefilter"] = args.prefilter
    if args.query_bits is not None:
        sign_kwargs["query_bits"] = args.query_bits
    if args.prefilter_rows is not None:
        sign_kwargs["prefilter_rows"] = args.prefilter_rows

    # ---------------------------------------------------------------------------------- build (one pass)
    faiss_fits = not args.no_faiss and n * dim * 4 < 0.4 * mem_available()
    milvus = None
    if args.backend == "milvus":
        from faceleads.gallery.index_milvus import MilvusIndex

        tmp = None
        uri = args.milvus_uri
        if uri is None:
            tmp = tempfile.mkdtemp(prefix="faceleads-milvus-bench-")
            uri = str(Path(tmp) / "bench.db")
        # A long timeout: embedded milvus-lite flushes and compacts in Python, slowly on a loaded machine.
        milvus = MilvusIndex(
            uri, dim=dim, collection=f"bench_{os.getpid()}", index_type=args.milvus_index, timeout=args.milvus_timeout
        )
    gc.collect()
    rss_before = rss_bytes()
    index = TemplateIndex(dim=dim, dtype=args.dtype, threads=args.threads, rerank=args.rerank, **sign_kwargs)
    build_s = milvus_build_s = 0.0
    gen_start = time.perf_counter()
    with progress(console) as prog:
        task = prog.add_task(f"building ({args.distribution}, exact top-{k} alongside)", total=n)
        for start, x in population.chunks():
            end = start + x.shape[0]
            truth.update(np.arange(start, end), x)
            in_allowed = np.flatnonzero(np.isin(partitions[start:end], allowed))
            truth_allowed.update(start + in_allowed, x[in_allowed])
            t0 = time.perf_counter()
            index.add(ids[start:end], x, partitions[start:end])
            build_s += time.perf_counter() - t0
            if milvus is not None:
                t0 = time.perf_counter()
                milvus.add(ids[start:end], x, partitions[start:end])
                milvus_build_s += time.perf_counter() - t0
            del x
            prog.advance(task, end - start)
    milvus_flush_s = 0.0
    if milvus is not None:
        t0 = time.perf_counter()
        milvus.flush()  # seal the bulk load into segments, as after any bulk enrolment
        milvus_flush_s = time.perf_counter() - t0
    generate_s = time.perf_counter() - gen_start - build_s - milvus_build_s - milvus_flush_s
    gc.collect()
    # The id and partition arrays are benchmark inputs (12 B/template) held before rss_before.
    bytes_per_template = (rss_bytes() - rss_before) / n
    truth_ids = truth.ids + ID_OFFSET

    load_start = os.getloadavg()
    timing = time_queries(index, queries, k, allowed, partitions)
    load_end = os.getloadavg()
    nq_m = args.queries
    result: dict[str, Any] = {
        "n": n,
        "backend": args.backend,
        "dtype": args.dtype,
        "distribution": args.distribution,
        "build_s": round(build_s, 3),
        "generate_s": round(generate_s, 1),
        "bytes_per_template": round(bytes_per_template, 1),
        "index_nbytes_per_template": round(index.nbytes / n, 1),
        "p50_ms": round(percentile_ms(timing["single"], 50), 2),
        "p95_ms": round(percentile_ms(timing["single"], 95), 2),
        "cpu_p50_ms": round(percentile_ms(timing["cpu"], 50), 2),
        "filtered_p50_ms": round(percentile_ms(timing["filtered"], 50), 2),
        "batch_qps": round(timing["batch_qps"], 2),
        "recall": round(recall(timing["got"], truth_ids), 4),
        "recall_mated": round(recall(timing["got"][:nq_m], truth_ids[:nq_m]), 4),
        "recall_nonmated": round(recall(timing["got"][nq_m:], truth_ids[nq_m:]), 4),
        "recall_filtered": round(recall(timing["got_filtered"], truth_allowed.ids + ID_OFFSET), 4),
        "mate_rank1": round(float(np.mean(timing["got"][:nq_m, 0] == mated_rows + ID_OFFSET)), 4) if nq_m else None,
        "exact_mate_rank1": round(float(np.mean(truth.ids[:nq_m, 0] == mated_rows)), 4) if nq_m else None,
    }
    if args.dtype == "sign_int8":
        result["prefilter"] = index.prefilter
        result["prefilter_rows"] = index.prefilter_rows
        result["query_bits"] = index.query_bits
    if args.dtype == "sign_int8" and args.sweep_prefilter:
        chosen = index.prefilter, index.query_bits
        sweep = []
        for item in [v.strip() for v in args.sweep_prefilter.split(",") if v.strip()]:
            bits, _, share = item.rpartition(":")
            index.query_bits = int(bits) if bits else chosen[1]
            index.prefilter = float(share)
            t = time_queries(index, queries, k, allowed, partitions)
            sweep.append(
                {
                    "query_bits": index.query_bits,
                    "prefilter": index.prefilter,
                    "p50_ms": round(percentile_ms(t["single"], 50), 2),
                    "cpu_p50_ms": round(percentile_ms(t["cpu"], 50), 2),
                    "recall": round(recall(t["got"], truth_ids), 4),
                    "recall_mated": round(recall(t["got"][:nq_m], truth_ids[:nq_m]), 4),
                    "recall_nonmated": round(recall(t["got"][nq_m:], truth_ids[nq_m:]), 4),
                    "load_1min": round(os.getloadavg()[0], 2),
                }
            )
        index.prefilter, index.query_bits = chosen
        result["prefilter_sweep"] = sweep
    # The reference points of the same run: one plain pass over the index's bytes, a full int8 scan.
    c0 = time.process_time()
    passes = [plain_pass_s(index, args.threads) for _ in range(3)]
    result["plain_pass_ms"] = round(1000 * float(np.median(passes)), 2)
    result["plain_pass_cpu_ms"] = round(1000 * (time.process_time() - c0) / 3, 2)
    if args.dtype == "sign_int8":
        # The sign codes alone: the bytes the first stage has to read, i.e. its floor.
        c0 = time.process_time()
        passes = [plain_pass_s(index, args.threads, columns=[3]) for _ in range(3)]
        result["sign_pass_ms"] = round(1000 * float(np.median(passes)), 2)
        result["sign_pass_cpu_ms"] = round(1000 * (time.process_time() - c0) / 3, 2)
    if args.dtype in ("int8", "sign_int8"):
        c0 = time.process_time()
        scans = [int8_scan_s(index, q, args.threads) for q in queries[:5]]
        result["full_int8_scan_ms"] = round(1000 * float(np.median(scans)), 2)
        result["full_int8_scan_cpu_ms"] = round(1000 * (time.process_time() - c0) / 5, 2)
    result["load_1min_start_end"] = [round(load_start[0], 2), round(load_end[0], 2)]

    if milvus is not None:
        mtiming = time_queries(milvus, queries, k, allowed, partitions)
        result["milvus"] = {
            "uri": "milvus-lite (embedded, temporary file)" if args.milvus_uri is None else "server",
            "index_type": args.milvus_index,
            "build_s": round(milvus_build_s, 2),
            "flush_s": round(milvus_flush_s, 2),
            "p50_ms": round(percentile_ms(mtiming["single"], 50), 2),
            "p95_ms": round(percentile_ms(mtiming["single"], 95), 2),
            "cpu_p50_ms": round(percentile_ms(mtiming["cpu"], 50), 2),  # milvus-lite serves in this process
            "filtered_p50_ms": round(percentile_ms(mtiming["filtered"], 50), 2),
            "batch_qps": round(mtiming["batch_qps"], 2),
            "recall": round(recall(mtiming["got"], truth_ids), 4),
            "recall_mated": round(recall(mtiming["got"][:nq_m], truth_ids[:nq_m]), 4),
            "recall_nonmated": round(recall(mtiming["got"][nq_m:], truth_ids[nq_m:]), 4),
            "recall_filtered": round(recall(mtiming["got_filtered"], truth_allowed.ids + ID_OFFSET), 4),
        }
        milvus.drop()
        milvus.close()
    del index
    gc.collect()

    if faiss_fits:
        import faiss

        faiss.omp_set_num_threads(args.threads)
        flat = faiss.IndexFlatIP(dim)
        with progress(console) as prog:
            task = prog.add_task("building FAISS IndexFlatIP (float32)", total=n)
            for _start, x in population.chunks():
                flat.add(x)
                prog.advance(task, x.shape[0])
        for q in queries[:10]:
            flat.search(q[None, :], k)
        faiss_times = []
        for q in queries:
            t0 = time.perf_counter()
            flat.search(q[None, :], k)
            faiss_times.append(time.perf_counter() - t0)
            time.sleep(0.02)  # let FAISS's OpenMP threads go to sleep before the next query
        result["faiss_p50_ms"] = round(percentile_ms(faiss_times, 50), 2)
        result["ratio"] = round(result["p50_ms"] / result["faiss_p50_ms"], 4)
        del flat
    else:
        result["faiss_p50_ms"] = None
        result["ratio"] = None
        result["faiss_skipped"] = "disabled" if args.no_faiss else "float32 copy does not fit in memory"
    result["load_1min_5min_end"] = [round(v, 2) for v in os.getloadavg()[:2]]

    if args.json:
        print(json.dumps(result))
        return 0
    table = Table(title=f"Template index at n={n:,} ({dim}-d {args.dtype}, {args.distribution}, top-{k})")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, json.dumps(value))
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
