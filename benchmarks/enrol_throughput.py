"""Bulk enrolment throughput: the LFW development images through ``enroll bulk`` into a temporary data directory.

Usage: ``python benchmarks/enrol_throughput.py [--json] [--limit N] [--workers N] [--lfw DIR]``.
Prints photos per second (whole batch, wall clock, model loading included) and peak resident memory of the parent
and of the parent plus its worker processes (sampled every 0.1 s from /proc), plus a resumed re-run's time (all
photos already enrolled: the idempotency check only).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path

DEFAULT_LFW = (Path(__file__).resolve().parents[1] / ".." / "shared" / "faces" / "lfw-dev").resolve()


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            out.extend(int(c) for c in text)
    except OSError:
        pass
    return out


class TreeRssSampler:
    """Samples the summed RSS of this process and all its descendants; keeps the peak."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_tree = 0
        self.peak_parent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            pids, stack = [me], [me]
            while stack:
                kids = _children(stack.pop())
                pids.extend(kids)
                stack.extend(kids)
            parent = _rss_bytes(me)
            self.peak_parent = max(self.peak_parent, parent)
            self.peak_tree = max(self.peak_tree, parent + sum(_rss_bytes(p) for p in pids[1:]))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeRssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--limit", type=int, default=None, help="enrol only the first N images")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="the lfw-dev folder")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")

    with (args.lfw / "labels.csv").open(newline="") as fh:
        labels = list(csv.DictReader(fh))[: args.limit]
    with tempfile.TemporaryDirectory(prefix="faceleads-enrol-bench-") as tmp:
        tmp_dir = Path(tmp)
        os.environ["FACELEADS_DATA_DIR"] = str(tmp_dir / "data")
        from faceleads.cli.context import cli_actor
        from faceleads.config import Settings
        from faceleads.gallery.bulk import enrol_manifest
        from faceleads.gallery.runtime import GalleryRuntime

        manifest = tmp_dir / "manifest.csv"
        with manifest.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["agency", "subject", "booking", "date", "authority", "photo", "sex"])
            for i, row in enumerate(labels):
                writer.writerow(
                    [
                        "BENCH",
                        row["identity"],
                        f"B{i:06d}",
                        "2020-01-01",
                        "benchmark",
                        os.path.relpath(args.lfw / row["path"], manifest.parent),  # photos inside photo_root
                        row["gender"] if row.get("gender") in ("M", "F") else "",
                    ]
                )
        settings = Settings(data_dir=tmp_dir / "data")
        rt = GalleryRuntime(settings)
        actor = cli_actor(rt, "BENCH")
        # Only records held under a listed legal authority are enrolled (docs/gallery.md, "Lawful gallery").
        from faceleads.gallery.authorities import add_authority

        add_authority(rt, actor, "benchmark", "Benchmark data (LFW), not booking records")
        workers = settings.effective_workers if args.workers is None else args.workers
        with TreeRssSampler() as sampler:
            started = time.perf_counter()
            report = enrol_manifest(rt, actor, manifest, workers=workers, photo_root=args.lfw.resolve())
            elapsed = time.perf_counter() - started
        started = time.perf_counter()
        rerun = enrol_manifest(rt, actor, manifest, workers=workers, photo_root=args.lfw.resolve())
        rerun_s = time.perf_counter() - started
        ru_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        ru_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        rt.close()
    result = {
        "photos": report.total,
        "enrolled": report.enrolled,
        "errors": report.errors,
        "flagged": report.warnings,
        "workers": workers,
        "seconds": round(elapsed, 2),
        "photos_per_s": round(report.total / elapsed, 2),
        "peak_rss_parent_mb": round(max(sampler.peak_parent, ru_self) / 2**20, 1),
        "peak_rss_largest_worker_mb": round(ru_children / 2**20, 1),
        "peak_rss_tree_mb": round(sampler.peak_tree / 2**20, 1),
        "rerun_seconds": round(rerun_s, 2),
        "rerun_processed": rerun.processed_this_run,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:28s} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
