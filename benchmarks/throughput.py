"""Throughput of detect + align + quality + embed on the LFW development images, with the default settings.

    python benchmarks/throughput.py [--limit N] [--batch 32] [--json]

Images are read and checked by the safe intake, detected one by one, and their faces embedded in batches
(as bulk enrolment does). Prints images per second and the peak resident memory of the process.
Target (issue 2): at least 30 images per second on 2 cores.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from faceleads.config import Settings
from faceleads.vision.engine import FaceEngine
from faceleads.vision.imaging import load_image

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "faces" / "lfw-dev"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all 4,992)")
    parser.add_argument("--batch", type=int, default=32, help="images per embedding batch")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args()

    with (LFW / "labels.csv").open() as handle:
        paths = [LFW / row["path"] for row in csv.DictReader(handle)]
    if args.limit:
        paths = paths[: args.limit]
    settings = Settings()
    engine = FaceEngine(settings)
    engine.detect_batch([load_image(paths[0], settings).pixels])  # warm-up: first-run allocations

    console = Console(stderr=True)
    faces_found = 0
    started = time.perf_counter()
    with Progress(
        TextColumn("detect+align+embed"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=args.json,
    ) as progress:
        task = progress.add_task("images", total=len(paths))
        for start in range(0, len(paths), args.batch):
            chunk = [load_image(p, settings).pixels for p in paths[start : start + args.batch]]
            faces_found += sum(len(found) for found in engine.detect_batch(chunk, embed=True))
            progress.advance(task, len(chunk))
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "images": len(paths),
        "images_per_s": round(len(paths) / elapsed, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }
    if args.json:
        print(json.dumps(result))
        return
    console.print(
        f"{result['images']} images ({faces_found} faces) in {elapsed:.1f}s: "
        f"[bold]{result['images_per_s']} images/s[/] on {settings.effective_threads} threads "
        f"(cpu count {os.cpu_count()}), peak RSS {result['peak_rss_mb']} MB"
    )


if __name__ == "__main__":
    main()
