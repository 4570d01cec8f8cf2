"""Aligned comparison crops for the side-by-side view: the same similarity transform puts the five landmarks of
every face (probe or gallery) at the same place in a square crop, so that two faces show at the same scale.

Pure geometry over arrays; callers (the gallery and casework services) authorise and audit the view.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from faceleads.vision.align import ALIGNED_SIZE, ARCFACE_TEMPLATE, estimate_similarity, transform_points
from faceleads.vision.imaging import encode_jpeg

COMPARE_SIZE = 384  # comparison crops: square, eyes at the same place in every crop
# The ArcFace template fills the middle half of the crop, leaving forehead, ears and chin visible.
_TEMPLATE_SCALE = 0.5


def compare_matrix(landmarks: Any, size: int = COMPARE_SIZE) -> np.ndarray:
    """Similarity transform (2x3 float) putting five (x, y) landmarks where the scaled ArcFace template puts them."""
    scale = size * _TEMPLATE_SCALE / ALIGNED_SIZE
    target = ARCFACE_TEMPLATE * scale + size * (1 - _TEMPLATE_SCALE) / 2
    return estimate_similarity(np.asarray(landmarks, dtype=np.float32), target)


def crop_landmarks(landmarks: Any, size: int = COMPARE_SIZE) -> list[list[float]]:
    """Five (x, y) landmarks mapped into comparison-crop coordinates, rounded to 0.1 pixel."""
    points = transform_points(np.asarray(landmarks, dtype=np.float32), compare_matrix(landmarks, size))
    return [[round(float(x), 1), round(float(y), 1)] for x, y in points]


def compare_crop_pixels(pixels: np.ndarray, landmarks: Any, size: int = COMPARE_SIZE) -> np.ndarray:
    """The aligned comparison crop of an HxWx3 uint8 image: (size, size, 3) uint8."""
    matrix = compare_matrix(landmarks, size)
    crop = cv2.warpAffine(pixels, matrix, (size, size), flags=cv2.INTER_CUBIC, borderValue=(24, 24, 24))
    return np.ascontiguousarray(crop, dtype=np.uint8)


def compare_crop(pixels: np.ndarray, landmarks: Any, size: int = COMPARE_SIZE) -> tuple[bytes, list[list[float]]]:
    """(JPEG of the aligned comparison crop of an HxWx3 uint8 image, landmarks in crop coordinates)."""
    crop = compare_crop_pixels(pixels, landmarks, size)
    return encode_jpeg(crop, quality=92), crop_landmarks(landmarks, size)


def draw_points(pixels: np.ndarray, points: Any, radius: int = 4) -> np.ndarray:
    """A copy of an HxWx3 uint8 image with each (x, y) point marked by a red dot ringed in white."""
    out = np.ascontiguousarray(pixels.copy(), dtype=np.uint8)
    for x, y in np.asarray(points, dtype=np.float32).reshape(-1, 2):
        centre = (round(float(x)), round(float(y)))
        cv2.circle(out, centre, radius + 1, (255, 255, 255), -1, lineType=cv2.LINE_AA)
        cv2.circle(out, centre, radius, (220, 38, 38), -1, lineType=cv2.LINE_AA)
    return out


def draw_box(pixels: np.ndarray, box: Any, thickness: int | None = None) -> np.ndarray:
    """A copy of an HxWx3 uint8 image with the box (x1, y1, x2, y2) outlined (thickness scales with the image)."""
    out = np.ascontiguousarray(pixels.copy(), dtype=np.uint8)
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    width = thickness or max(2, round(max(out.shape[:2]) / 250))
    cv2.rectangle(out, (x1, y1), (x2, y2), (255, 255, 255), width + 2, lineType=cv2.LINE_AA)
    cv2.rectangle(out, (x1, y1), (x2, y2), (37, 99, 235), width, lineType=cv2.LINE_AA)
    return out
