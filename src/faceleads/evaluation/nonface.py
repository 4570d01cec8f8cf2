"""Pictures without a face, for checking that the engine never invents one (docs/detection.md).

Real photographs of things that are not faces (shirts, jackets, backgrounds and walls cut from the parts of LFW
photos where the detector finds no face, with a margin; the jerseys of the model wheel's sample photo; matplotlib's
icons), the same degraded like CCTV stills, and synthetic pictures (flat walls, noise, gradients, checkerboards,
shapes, printed text), all at the sizes of tight crops, where the whole-crop fallback is tried.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np

from faceleads.evaluation.degrade import degrade, sample
from faceleads.vision.imaging import load_image
from faceleads.vision.types import FloatArray, ImageArray

MARGIN = 12  # px kept between a background crop and any face the detector sees in the photo
SENSITIVE_THRESHOLD = 0.3  # background faces are looked for with a lower threshold ...
SENSITIVE_UPSCALE = 2.0  # ... on the photo enlarged, so that small and partial faces are avoided too


def synthetic(rng: np.random.Generator, count: int) -> dict[str, ImageArray]:
    """Synthetic face-less pictures of tight-crop sizes (24-200 px)."""
    out: dict[str, ImageArray] = {}
    for i in range(count):
        s = int(rng.integers(24, 200))
        kind = i % 7
        img: ImageArray
        if kind == 0:
            img = rng.integers(0, 256, (s, s, 3)).astype(np.uint8)
            name = "noise"
        elif kind == 1:
            img = np.full((s, int(s * 0.8), 3), rng.integers(0, 256, 3), np.uint8)
            name = "flat"
        elif kind == 2:
            g = np.linspace(0, 255, s)
            img = np.stack([np.add.outer(g, g[::-1]) / 2] * 3, -1).astype(np.uint8)
            name = "gradient"
        elif kind == 3:
            cells = (np.indices((s, s)).sum(0) // max(2, s // 8)) % 2
            img = (np.stack([cells] * 3, -1) * 255).astype(np.uint8)
            name = "checkerboard"
        elif kind == 4:
            img = np.full((s, s, 3), int(rng.integers(100, 230)), np.uint8)
            for _ in range(6):
                centre = (int(rng.integers(0, s)), int(rng.integers(0, s)))
                colour = tuple(int(v) for v in rng.integers(0, 256, 3))
                cv2.circle(img, centre, int(rng.integers(2, s // 3 + 3)), colour, -1)
            name = "shapes"
        elif kind == 5:
            img = np.full((s, int(s * 1.3), 3), 230, np.uint8)
            cv2.putText(img, "AB7", (2, s // 2), cv2.FONT_HERSHEY_SIMPLEX, s / 60, (20, 20, 20), max(1, s // 30))
            name = "text"
        else:
            noise = rng.integers(0, 256, (s, s, 3)).astype(np.uint8)
            img = np.asarray(cv2.GaussianBlur(noise, (0, 0), s / 12), dtype=np.uint8)
            name = "blotches"
        out[f"synthetic {i:03d} {name}"] = np.ascontiguousarray(img)
    return out


def _faces_anywhere(detector: object, photo: ImageArray) -> list[FloatArray]:
    """Boxes of every face a sensitive pass sees in ``photo`` (threshold 0.3, photo enlarged 2x), photo pixels."""
    from faceleads.vision.detector import AnchorDetector

    boxes = [d.box for d in detector.detect(photo)]  # type: ignore[attr-defined]
    if isinstance(detector, AnchorDetector):
        sensitive = type(detector)(detector.runner, det_size=4096, score_threshold=SENSITIVE_THRESHOLD, max_upscale=1.0)
        big = np.asarray(
            cv2.resize(photo, None, fx=SENSITIVE_UPSCALE, fy=SENSITIVE_UPSCALE, interpolation=cv2.INTER_LINEAR),
            dtype=np.uint8,
        )
        boxes += [d.box / SENSITIVE_UPSCALE for d in sensitive.detect(big)]
    return boxes


def lfw_backgrounds(lfw_dir: Path, engine: object, count: int, rng: np.random.Generator) -> dict[str, ImageArray]:
    """Face-less crops of LFW photos (clean and CCTV-degraded), away from every face a sensitive detector pass
    finds there (LFW photos often show other people in the background, small or partly hidden).

    ``engine`` is a :class:`faceleads.vision.engine.FaceEngine` (its detector network decides where faces are).
    """
    with (lfw_dir / "labels.csv").open(newline="") as fh:
        paths = [lfw_dir / row["path"] for row in csv.DictReader(fh)]
    out: dict[str, ImageArray] = {}
    detector = engine.detector  # type: ignore[attr-defined]
    attempts = 0
    while len(out) < count and attempts < count * 4:
        attempts += 1
        path = paths[int(rng.integers(0, len(paths)))]
        photo = load_image(path).pixels
        h, w = photo.shape[:2]
        faces = _faces_anywhere(detector, photo)
        # Several tries per photo: the faces of a photo are looked for once.
        for _ in range(8):
            s = int(rng.integers(30, 110))
            x, y = int(rng.integers(0, w - s)), int(rng.integers(0, h - s))
            if all(
                x + s < b[0] - MARGIN or x > b[2] + MARGIN or y + s < b[1] - MARGIN or y > b[3] + MARGIN for b in faces
            ):
                break
        else:
            continue
        crop = np.ascontiguousarray(photo[y : y + s, x : x + s])
        label = f"lfw {path.stem} @{x},{y} {s}px"
        if len(out) % 2:
            box = np.array([0, 0, s, s], np.float32)
            fake = np.array([[0.3, 0.4], [0.7, 0.4], [0.5, 0.6], [0.35, 0.8], [0.65, 0.8]], np.float32) * s
            crop = degrade(crop, box, fake, sample(rng), rng)
            label += " CCTV"
        out[label] = crop
    return out


def packaged(model_dir: Path) -> dict[str, ImageArray]:
    """Face-less pictures from installed packages: jersey crops of the model wheel's team photo, matplotlib icons."""
    out: dict[str, ImageArray] = {}
    team_path = model_dir / "gdp.jpg"
    if team_path.is_file():
        team = load_image(team_path).pixels
        for name, (y1, y2, x1, x2) in {
            "jersey number": (300, 420, 290, 400),
            "jersey torso": (330, 480, 60, 200),
            "shorts": (480, 620, 100, 240),
            "jersey logo": (260, 340, 130, 250),
        }.items():
            region = np.ascontiguousarray(team[y1:y2, x1:x2])
            for size in (40, 64, 96):
                scale = size / max(region.shape[:2])
                small = cv2.resize(region, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
                out[f"{name} {size}px"] = np.ascontiguousarray(small)
    try:
        import matplotlib

        icons = Path(matplotlib.get_data_path()) / "images"
        for icon in sorted(icons.glob("*.png")):
            pixels = load_image(icon).pixels
            if min(pixels.shape[:2]) >= 16:
                out[f"icon {icon.name}"] = pixels
    except ImportError:  # pragma: no cover - matplotlib is a dependency
        pass
    return out


def non_face_images(lfw_dir: Path, engine: object, model_dir: Path, lfw_count: int, synthetic_count: int,
                    seed: int = 0) -> dict[str, ImageArray]:
    """All three kinds, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    out = packaged(model_dir)
    out.update(synthetic(rng, synthetic_count))
    out.update(lfw_backgrounds(lfw_dir, engine, lfw_count, rng))
    return out
