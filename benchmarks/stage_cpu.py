"""Where the CPU time of detect + align + quality + embed goes, stage by stage, on the LFW development images.

    python benchmarks/stage_cpu.py [--limit 320] [--batch 32] [--json]

Runs the engine's stages one after the other on one thread of Python (the ONNX Runtime sessions use their usual
threads) and charges the process CPU time (:func:`time.process_time`, all threads) of each to its stage, so the
figures hold on shared cores where wall times do not. Stages: ``decode`` (safe intake), ``detect_network`` and
``detect_other`` (the detector's ONNX runs, and its resizing, decoding and NMS), ``align``, ``quality``,
``embed_network`` and ``embed_other`` (the recognition runs, and the preprocessing and mirror images); every face
of every photo is embedded in batches of ``--batch`` photos, as ``benchmarks/throughput.py`` does. The settings come
from the environment as usual, e.g. ``FACELEADS_ORT_REWRITE_GRAPHS=false FACELEADS_EMBED_BATCH_SIZE=32`` for the
pipeline before the speed work of issue 15.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceleads.config import Settings
from faceleads.vision.align import align_face
from faceleads.vision.engine import FaceEngine
from faceleads.vision.imaging import load_image
from faceleads.vision.onnx import InferenceRunner, OrtRunner
from faceleads.vision.packs import resolve_pack, resolve_recognizers
from faceleads.vision.quality import assess

LFW = Path(__file__).resolve().parents[1].parent / "shared" / "faces" / "lfw-dev"


class TimedRunner:
    """An :class:`InferenceRunner` that adds the CPU time of its runs to ``spent[stage]``."""

    def __init__(self, runner: InferenceRunner, spent: dict[str, float], stage: str) -> None:
        self.runner, self.spent, self.stage = runner, spent, stage
        self.input_name, self.output_names = runner.input_name, runner.output_names

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        began = time.process_time()
        try:
            return self.runner.run(tensor)
        finally:
            self.spent[self.stage] += time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=320, help="the first N images (0 = all 4,992)")
    parser.add_argument("--batch", type=int, default=32, help="photos whose faces are embedded together")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args()

    with (LFW / "labels.csv").open() as handle:
        paths = [LFW / row["path"] for row in csv.DictReader(handle)]
    if args.limit:
        paths = paths[: args.limit]
    s = Settings()
    threads, spin, rewrite = s.effective_threads, s.ort_spinning, s.ort_rewrite_graphs
    spent: dict[str, float] = defaultdict(float)
    detector_runner = TimedRunner(
        OrtRunner(resolve_pack(s).detector.path(s), threads, spin, rewrite=rewrite), spent, "detect_network"
    )
    embedder_runner = TimedRunner(
        OrtRunner(resolve_recognizers(s)[0].path(s), threads, spin, rewrite=rewrite), spent, "embed_network"
    )
    engine = FaceEngine(s, detector_runner=detector_runner, embedder_runner=embedder_runner)

    def charge(stage: str, began: float) -> None:
        spent[stage] += time.process_time() - began

    warm = load_image(paths[0], s).pixels  # first-run allocations are not charged
    engine.embed_aligned([align_face(warm, d.landmarks) for d in engine.detector.detect(warm)])
    spent.clear()
    faces = 0
    started = time.process_time()
    for start in range(0, len(paths), args.batch):
        crops = []
        for path in paths[start : start + args.batch]:
            began = time.process_time()
            image = load_image(path, s).pixels
            charge("decode", began)
            began, network = time.process_time(), spent["detect_network"]
            detections = engine.detector.detect(image)
            spent["detect_other"] += time.process_time() - began - (spent["detect_network"] - network)
            for detection in detections:
                began = time.process_time()
                aligned = align_face(image, detection.landmarks)
                charge("align", began)
                began = time.process_time()
                assess(detection.landmarks, aligned, detection.score, detection.found_by)
                charge("quality", began)
                crops.append(aligned)
        faces += len(crops)
        began, network = time.process_time(), spent["embed_network"]
        engine.embed_aligned(crops)
        spent["embed_other"] += time.process_time() - began - (spent["embed_network"] - network)
    total = time.process_time() - started
    per_image = {stage: round(1000 * cpu / len(paths), 2) for stage, cpu in sorted(spent.items(), key=lambda x: -x[1])}
    result = {
        "images": len(paths),
        "faces": faces,
        "cpu_ms_per_image": round(1000 * total / len(paths), 2),
        "stages_cpu_ms_per_image": per_image,
        "model_version": engine.model_version,
        "settings": {
            key: getattr(s, key)
            for key in ("flip_embedding", "ort_rewrite_graphs", "embed_batch_size", "ort_spinning", "effective_threads")
        },
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"{len(paths)} images, {faces} faces: {result['cpu_ms_per_image']} ms CPU per image")
    for stage, ms in per_image.items():
        print(f"  {stage:15s} {ms:7.2f} ms")


if __name__ == "__main__":
    main()
