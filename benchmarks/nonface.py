"""Photos without a face must give "no face": how many faces the engine invents, by detection path.

    python benchmarks/nonface.py [--json] [--lfw-crops 600] [--synthetic 210] [--seed 0]

The pictures (``faceleads.evaluation.nonface``): crops of LFW-dev photos away from every face the detector sees
there (half of them degraded like CCTV stills), the jerseys of the model wheel's team photo at three sizes,
matplotlib's icons, and synthetic walls, noise, gradients, checkerboards, shapes, text and blotches, all at tight-crop
sizes so that every fallback, the whole-crop one included, is tried on each. Target: 0 invented faces.
Also reports, for the whole-crop checks, how many pictures each check rejected.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from faceleads.config import Settings
from faceleads.evaluation.nonface import non_face_images
from faceleads.vision import wholecrop
from faceleads.vision.engine import FaceEngine
from faceleads.vision.landmarks import five_from_106
from faceleads.vision.models import default_model_dir

DEFAULT_LFW = (Path(__file__).resolve().parents[1] / ".." / "shared" / "faces" / "lfw-dev").resolve()


def _stage(engine: FaceEngine, image: np.ndarray) -> str:
    """The first whole-crop check a face-less picture fails (for the report)."""
    h, w = image.shape[:2]
    if not wholecrop.plausible_crop(h, w, engine.settings.whole_crop_max_side):
        return "shape"
    assert engine.landmarker is not None
    first = five_from_106(engine.landmarker.predict(image, np.array([0, 0, w, h], np.float32)))
    if not wholecrop.plausible_geometry(first, w):
        return "geometry"
    return "consistency or detector evidence"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--lfw", type=Path, default=DEFAULT_LFW, help="the lfw-dev folder")
    parser.add_argument("--lfw-crops", type=int, default=600, help="face-less LFW crops (half CCTV-degraded)")
    parser.add_argument("--synthetic", type=int, default=210, help="synthetic pictures")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    engine = FaceEngine(Settings())
    images = non_face_images(args.lfw, engine, default_model_dir(), args.lfw_crops, args.synthetic, args.seed)
    invented: dict[str, str] = {}
    rejected_at: dict[str, int] = {}
    for name, image in images.items():
        faces = engine.detect(image)
        if faces:
            invented[name] = faces[0].found_by
        elif engine.landmarker is not None:
            stage = _stage(engine, image)
            rejected_at[stage] = rejected_at.get(stage, 0) + 1
    kinds: dict[str, int] = {}
    for name in images:
        kind = name.split(" ")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    result = {
        "pictures": len(images),
        "by_kind": kinds,
        "faces_invented": len(invented),
        "invented": invented,
        "whole_crop_rejected_at": rejected_at,
        "model_version": engine.model_version,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        print(json.dumps(result, indent=2))
    return 0 if not invented else 1


if __name__ == "__main__":
    raise SystemExit(main())
