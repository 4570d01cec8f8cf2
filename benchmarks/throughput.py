"""Throughput of detect + align + quality + embed on the LFW development images: the default pipeline against the
pipeline as it was before issue 15, measured in the same run.

    python benchmarks/throughput.py [--limit N] [--batch 32] [--json]

Images are read and checked by the safe intake, detected, and their faces embedded in batches (as bulk enrolment
does). Two engines run over the same images, chunk by chunk in alternation, so that a change in the machine's load
(the cores are shared) affects both alike:

* ``baseline``: no flip averaging, no detection fallbacks, ONNX Runtime threads spinning, the model graphs as
  shipped (no PRelu rewrite), 32 faces per recognition call, photos detected one after the other (the pipeline
  before issue 15);
* ``default``: the default settings (flip averaging: every face and its mirror image embedded; detection
  fallbacks on; no spinning; PRelu rewritten as depthwise convolutions; 8 faces per recognition call) with
  :meth:`FaceEngine.detect_batch` detecting photos side by side.

Prints images per second for both, the CPU time per image (process CPU time of all threads: on shared cores it
is a steadier measure than wall time, and 2 cores give at most 2,000 / cpu_ms images per second), the load
average before and after, and the peak resident memory.
Target (issue 15): at least 60 images per second with the default pipeline on 2 cores.
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
from faceleads.vision.engine import ALIGNED_KEY, FaceEngine
from faceleads.vision.imaging import load_image

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "faces" / "lfw-dev"

BASELINE = {
    "flip_embedding": False,
    "det_max_upscale": 1.0,
    "whole_crop": False,
    "ort_spinning": True,
    "ort_rewrite_graphs": False,
    "embed_batch_size": 32,
}


def _serial(engine: FaceEngine, images: list) -> int:  # type: ignore[type-arg]
    """Detection one photo after the other, then one embedding batch: the pre-issue-15 detect_batch."""
    results = [engine.detect(image) for image in images]
    faces = [f for found in results for f in found]
    if faces:
        engine.embed_aligned([f.extra[ALIGNED_KEY] for f in faces])
    return len(faces)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=0, help="only the first N images (0 = all 4,992)")
    parser.add_argument("--batch", type=int, default=32, help="images per embedding batch")
    parser.add_argument("--only", choices=["baseline", "default"], default=None, help="measure one pipeline only")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args()

    with (LFW / "labels.csv").open() as handle:
        paths = [LFW / row["path"] for row in csv.DictReader(handle)]
    if args.limit:
        paths = paths[: args.limit]
    load_before = os.getloadavg()
    engines = {"baseline": FaceEngine(Settings(**BASELINE)), "default": FaceEngine(Settings())}
    if args.only:
        engines = {args.only: engines[args.only]}
    warm = [load_image(paths[0]).pixels]
    for name, engine in engines.items():  # first-run allocations
        _serial(engine, warm) if name == "baseline" else engine.detect_batch(warm)

    console = Console(stderr=True)
    elapsed = dict.fromkeys(engines, 0.0)
    cpu = dict.fromkeys(engines, 0.0)
    faces = dict.fromkeys(engines, 0)
    settings = Settings()
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
            chunk_paths = paths[start : start + args.batch]
            for name, engine in engines.items():
                # Each pipeline reads its own images: intake is part of the measured work.
                began, began_cpu = time.perf_counter(), time.process_time()
                chunk = [load_image(p, settings).pixels for p in chunk_paths]
                if name == "baseline":
                    faces[name] += _serial(engine, chunk)
                else:
                    faces[name] += sum(len(found) for found in engine.detect_batch(chunk, embed=True))
                elapsed[name] += time.perf_counter() - began
                cpu[name] += time.process_time() - began_cpu
            progress.advance(task, len(chunk_paths))
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, object] = {
        "images": len(paths),
        **{f"{name}_images_per_s": round(len(paths) / elapsed[name], 2) for name in engines},
        **{f"{name}_cpu_ms_per_image": round(1000 * cpu[name] / len(paths), 2) for name in engines},
        **{f"{name}_faces": faces[name] for name in engines},
        "model_versions": {name: e.model_version for name, e in engines.items()},
        # The speed-relevant settings each pipeline ran with (environment variables can change the default's).
        "settings": {name: {key: getattr(e.settings, key) for key in BASELINE} for name, e in engines.items()},
        "threads": settings.effective_threads,
        "cpu_count": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb": round(peak_mb, 1),
    }
    if "default" in engines:
        result["images_per_s"] = result["default_images_per_s"]
    if args.json:
        print(json.dumps(result))
        return
    for name in engines:
        console.print(
            f"{name:9s} [bold]{result[f'{name}_images_per_s']} images/s[/], "
            f"{result[f'{name}_cpu_ms_per_image']} ms CPU per image ({faces[name]} faces)"
        )
    console.print(
        f"{len(paths)} images on {settings.effective_threads} threads (cpu count {os.cpu_count()}), load average "
        f"{result['load_average_before']} -> {result['load_average_after']}, peak RSS {result['peak_rss_mb']} MB"
    )


if __name__ == "__main__":
    main()
