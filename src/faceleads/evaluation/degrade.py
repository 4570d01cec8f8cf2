"""CCTV-like degradation of a good face photo, for measuring the engine on the probes analysts really get.

A CCTV still of a face is small (12-30 px between the eyes), blurred by motion or a lens out of focus, taken in poor
light with sensor noise, compressed hard (JPEG quality 15-40) and handed over as a tight crop around the face
(1.0-1.3 times the face box). :func:`sample` draws one such set of conditions from a seeded generator and
:func:`degrade` applies it to a photo, in the physical order: crop, down-sampling to the sensor's resolution, blur,
light and noise, compression. ``benchmarks/cctv_proxy.py`` uses it on LFW-dev (docs/accuracy.md).
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision.types import FloatArray, ImageArray

INTER_EYE_RANGE = (12.0, 30.0)
CROP_RANGE = (1.0, 1.3)
JPEG_RANGE = (15, 40)
MOTION_RANGE = (2.0, 7.0)  # motion blur length, px at the probe's resolution
DEFOCUS_RANGE = (0.7, 2.0)  # defocus disk radius, px at the probe's resolution
GAIN_RANGE = (0.25, 1.0)  # share of the light of the original photo
GAMMA_RANGE = (1.0, 1.6)
NOISE_RANGE = (2.0, 8.0)  # Gaussian sensor noise, standard deviation on 0..255
SHIFT = 0.06  # the crop's centre is off the face's centre by up to this share of the box


@dataclass(frozen=True)
class Degradation:
    """One set of CCTV conditions (all sizes in pixels of the degraded probe)."""

    inter_eye_px: float
    crop_factor: float
    shift_x: float
    shift_y: float
    blur: str  # "motion" or "defocus"
    blur_size: float  # motion length or defocus radius
    blur_angle: float  # degrees (motion only)
    gain: float
    gamma: float
    noise_sigma: float
    jpeg_quality: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample(rng: np.random.Generator) -> Degradation:
    """Draw CCTV conditions uniformly within the documented ranges (motion or defocus blur, even odds)."""
    motion = bool(rng.random() < 0.5)
    return Degradation(
        inter_eye_px=float(rng.uniform(*INTER_EYE_RANGE)),
        crop_factor=float(rng.uniform(*CROP_RANGE)),
        shift_x=float(rng.uniform(-SHIFT, SHIFT)),
        shift_y=float(rng.uniform(-SHIFT, SHIFT)),
        blur="motion" if motion else "defocus",
        blur_size=float(rng.uniform(*(MOTION_RANGE if motion else DEFOCUS_RANGE))),
        blur_angle=float(rng.uniform(0.0, 180.0)),
        gain=float(rng.uniform(*GAIN_RANGE)),
        gamma=float(rng.uniform(*GAMMA_RANGE)),
        noise_sigma=float(rng.uniform(*NOISE_RANGE)),
        jpeg_quality=int(rng.integers(JPEG_RANGE[0], JPEG_RANGE[1] + 1)),
    )


def motion_kernel(length: float, angle_deg: float) -> npt.NDArray[np.float32]:
    """A normalised line kernel of ``length`` px at ``angle_deg`` (anti-aliased by supersampling)."""
    size = max(3, math.ceil(length) | 1)
    factor = 8
    big = np.zeros((size * factor, size * factor), np.float32)
    centre = (size * factor - 1) / 2
    dx = math.cos(math.radians(angle_deg)) * (length * factor - 1) / 2
    dy = math.sin(math.radians(angle_deg)) * (length * factor - 1) / 2
    cv2.line(big, (round(centre - dx), round(centre - dy)), (round(centre + dx), round(centre + dy)), 1.0, factor)
    kernel = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)
    return (kernel / max(float(kernel.sum()), 1e-12)).astype(np.float32)


def defocus_kernel(radius: float) -> npt.NDArray[np.float32]:
    """A normalised disk kernel of ``radius`` px (anti-aliased by supersampling)."""
    size = max(3, math.ceil(2 * radius + 1) | 1)
    factor = 8
    yy, xx = np.mgrid[: size * factor, : size * factor]
    centre = (size * factor - 1) / 2
    disk = ((xx - centre) ** 2 + (yy - centre) ** 2 <= (radius * factor) ** 2).astype(np.float32)
    kernel = cv2.resize(disk, (size, size), interpolation=cv2.INTER_AREA)
    return (kernel / max(float(kernel.sum()), 1e-12)).astype(np.float32)


def crop_box(
    box: FloatArray, factor: float, shift_x: float, shift_y: float, width: int, height: int
) -> tuple[int, int, int, int]:
    """Integer crop (x1, y1, x2, y2) of ``factor`` times ``box`` around its shifted centre, inside the image."""
    x1, y1, x2, y2 = (float(v) for v in box)
    bw, bh = (x2 - x1) * factor, (y2 - y1) * factor
    cx = (x1 + x2) / 2 + shift_x * (x2 - x1)
    cy = (y1 + y2) / 2 + shift_y * (y2 - y1)
    left, top = max(0, round(cx - bw / 2)), max(0, round(cy - bh / 2))
    right, bottom = min(width, round(cx + bw / 2)), min(height, round(cy + bh / 2))
    return left, top, max(left + 1, right), max(top + 1, bottom)


def probe_geometry(
    height: int, width: int, box: FloatArray, landmarks: FloatArray, d: Degradation
) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
    """Where the probe is cut from the photo (x1, y1, x2, y2) and its size in pixels (width, height)."""
    pts = np.asarray(landmarks, dtype=np.float64)
    iod = max(float(np.linalg.norm(pts[1] - pts[0])), 1.0)
    scale = d.inter_eye_px / iod
    x1, y1, x2, y2 = crop_box(box, d.crop_factor, d.shift_x, d.shift_y, width, height)
    return (x1, y1, x2, y2), (max(4, round((x2 - x1) * scale)), max(4, round((y2 - y1) * scale)))


def probe_landmarks(height: int, width: int, box: FloatArray, landmarks: FloatArray, d: Degradation) -> FloatArray:
    """The true five landmarks of the face in the probe's pixels (the photo's landmarks carried through the cut
    and the down-sampling): the ground truth for checking where the engine places them."""
    (x1, y1, x2, y2), (pw, ph) = probe_geometry(height, width, box, landmarks, d)
    factor = np.array([pw / (x2 - x1), ph / (y2 - y1)])
    pts = (np.asarray(landmarks, dtype=np.float64) - [x1, y1] + 0.5) * factor - 0.5
    return pts.astype(np.float32)


def degrade(
    image: ImageArray, box: FloatArray, landmarks: FloatArray, d: Degradation, rng: np.random.Generator
) -> ImageArray:
    """The CCTV-like probe of the face at ``box`` / ``landmarks`` (from the undegraded photo), uint8 RGB.

    ``rng`` draws the sensor noise (so a probe is reproducible from its seed).
    """
    h, w = image.shape[:2]
    (x1, y1, x2, y2), size = probe_geometry(h, w, box, landmarks, d)
    scale = size[0] / max(x2 - x1, 1)
    region = np.ascontiguousarray(image[y1:y2, x1:x2])
    small = cv2.resize(region, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    kernel = motion_kernel(d.blur_size, d.blur_angle) if d.blur == "motion" else defocus_kernel(d.blur_size)
    blurred = cv2.filter2D(small.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT)
    dark = 255.0 * np.power(np.clip(blurred / 255.0, 0.0, 1.0), d.gamma) * d.gain
    noisy = dark + rng.normal(0.0, d.noise_sigma, size=dark.shape)
    pixels = np.clip(np.round(noisy), 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", pixels[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, d.jpeg_quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None:
        raise ValueError("JPEG decoding failed")
    return np.ascontiguousarray(np.asarray(decoded)[..., ::-1], dtype=np.uint8)


def lfw_split(lfw_dir: Path) -> tuple[list[tuple[str, Path]], list[tuple[str, Path]]]:
    """The CCTV proxy's split of LFW-dev (labels.csv order): the first photo of every identity (gallery) and every
    later photo of an identity (probes), as (identity, path) pairs. Probe ``i`` is the ``i``-th of these."""
    people: dict[str, list[Path]] = defaultdict(list)
    with (lfw_dir / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            people[row["identity"]].append(lfw_dir / row["path"])
    gallery = [(name, photos[0]) for name, photos in people.items()]
    probes = [(name, p) for name, photos in people.items() for p in photos[1:]]
    return gallery, probes


def cctv_probe(
    image: ImageArray, box: FloatArray, landmarks: FloatArray, seed: int, index: int
) -> tuple[ImageArray, FloatArray, Degradation]:
    """Probe ``index`` of the proxy with ``seed``: the degraded crop, its true landmarks and its conditions.

    ``box`` / ``landmarks``: the face in the undegraded photo (the default detector's, in the proxy).
    """
    rng = np.random.default_rng([seed, index])
    conditions = sample(rng)
    probe = degrade(image, box, landmarks, conditions, rng)
    truth = probe_landmarks(image.shape[0], image.shape[1], box, landmarks, conditions)
    return probe, truth, conditions
