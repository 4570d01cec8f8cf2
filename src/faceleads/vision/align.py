"""Face alignment: a similarity transform of the five landmarks onto the standard ArcFace 112x112 template."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision.types import FloatArray, ImageArray

ALIGNED_SIZE = 112

#: Standard ArcFace template (x, y) for a 112x112 crop: left eye, right eye, nose, left and right mouth corner.
ARCFACE_TEMPLATE: FloatArray = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def estimate_similarity(src: FloatArray, dst: FloatArray) -> npt.NDArray[np.float64]:
    """Least-squares similarity transform (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama's closed form. ``src`` and ``dst`` are (n, 2) point sets, n >= 2. Returns a 2x3 matrix ``M``
    such that ``dst ≈ src @ M[:, :2].T + M[:, 2]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or src.shape[0] < 2:
        raise ValueError(f"need two (n, 2) point sets of equal shape with n >= 2, got {src.shape} and {dst.shape}")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    covariance = dst_c.T @ src_c / len(src)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    src_var = (src_c**2).sum() / len(src)
    if src_var <= 0:
        raise ValueError("degenerate source points (all identical)")
    scale = float(np.trace(np.diag(singular) @ sign)) / src_var
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = dst_mean - scale * rotation @ src_mean
    return matrix


def transform_points(points: FloatArray, matrix: npt.NDArray[np.float64]) -> FloatArray:
    """Apply a 2x3 affine ``matrix`` to (n, 2) points."""
    points = np.asarray(points, dtype=np.float64)
    return (points @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


def invert_affine(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Inverse of a 2x3 affine transform."""
    return np.asarray(cv2.invertAffineTransform(matrix), dtype=np.float64)


def alignment_matrix(landmarks: FloatArray, size: int = ALIGNED_SIZE) -> npt.NDArray[np.float64]:
    """The transform from image coordinates to a ``size`` x ``size`` aligned crop."""
    template = ARCFACE_TEMPLATE * (size / ALIGNED_SIZE)
    return estimate_similarity(landmarks, template)


def align_face(image: ImageArray, landmarks: FloatArray, size: int = ALIGNED_SIZE) -> ImageArray:
    """The aligned ``size`` x ``size`` RGB crop of the face whose five landmarks are given."""
    matrix = alignment_matrix(landmarks, size)
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return np.ascontiguousarray(crop, dtype=np.uint8)
