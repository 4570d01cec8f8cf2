"""106-point facial landmarks (InsightFace ``2d106det``), used to place the five alignment points on a face the
detector could not find (a tight, small, blurred crop handed in as "this is the face").

The model takes a loose crop: the face box enlarged 1.5 times, centred, resized to 192x192 RGB, raw 0..255 values
(the graph normalises internally), NCHW float32. It regresses 106 (x, y) pairs in [-1, 1] relative to that crop.
Pre- and post-processing are small pure functions below; :class:`Landmarker` runs the model.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision.align import transform_points
from faceleads.vision.onnx import InferenceRunner
from faceleads.vision.types import FloatArray, ImageArray

INPUT_SIZE = 192
BOX_CONTEXT = 1.5  # the model was trained on detector boxes enlarged by this factor
POINTS = 106

#: 106-point indices whose mean gives each of the five alignment points, in the detector's order (image-left
#: eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner). 34/38 and 88/92 are the
#: pupil centres, 86 the nose tip, 52/61 the mouth corners. Measured on LFW-dev against SCRFD's own five points,
#: in the aligned 112x112 frame: mean distance 0.5-1.2 px (docs/detection.md).
FIVE_POINT_GROUPS: tuple[tuple[int, ...], ...] = ((34, 38), (88, 92), (86,), (52,), (61,))


def crop_matrix(box: npt.ArrayLike, size: int = INPUT_SIZE, context: float = BOX_CONTEXT) -> npt.NDArray[np.float64]:
    """The 2x3 transform from image pixels to the model's ``size`` x ``size`` input for a face ``box``.

    ``box``: x1, y1, x2, y2. The box's longer side, times ``context``, fills the input; the box centre goes to
    the input centre (the model's training convention).
    """
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(4))
    side = max(x2 - x1, y2 - y1)
    if side <= 0:
        raise ValueError(f"empty box {x1, y1, x2, y2}")
    scale = size / (side * context)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[scale, 0.0, size / 2 - scale * cx], [0.0, scale, size / 2 - scale * cy]], dtype=np.float64)


def to_tensor(image: ImageArray, matrix: npt.NDArray[np.float64], size: int = INPUT_SIZE) -> npt.NDArray[np.float32]:
    """The (1, 3, size, size) float32 input for ``image`` (uint8 RGB) under ``matrix``; outside is black."""
    crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    return np.ascontiguousarray(crop.astype(np.float32).transpose(2, 0, 1)[None])


def decode(output: npt.NDArray[np.float32], matrix: npt.NDArray[np.float64], size: int = INPUT_SIZE) -> FloatArray:
    """Model output (212 values in [-1, 1] relative to the input) -> (106, 2) points in image pixels."""
    values = np.asarray(output, dtype=np.float64).reshape(-1)
    if values.size < 2 * POINTS:
        raise ValueError(f"expected {2 * POINTS} landmark values, got {values.size}")
    pts = values[-2 * POINTS :].reshape(POINTS, 2)
    pts = (pts + 1.0) * (size / 2)
    inverse = np.asarray(cv2.invertAffineTransform(matrix), dtype=np.float64)
    return transform_points(pts.astype(np.float32), inverse)


def five_from_106(points: FloatArray) -> FloatArray:
    """The five alignment points (detector order) from 106 landmarks: float32 (5, 2)."""
    pts = np.asarray(points, dtype=np.float32).reshape(POINTS, 2)
    return np.stack([pts[list(group)].mean(axis=0) for group in FIVE_POINT_GROUPS]).astype(np.float32)


def mirror_five(points: FloatArray, width: int) -> FloatArray:
    """Five points found on the horizontally mirrored image, mapped back to the original (left/right swapped)."""
    pts = np.asarray(points, dtype=np.float32).copy()
    pts[:, 0] = (width - 1) - pts[:, 0]
    return pts[[1, 0, 2, 4, 3]]


def box_from_five(points: FloatArray) -> FloatArray:
    """A detector-like face box (x1, y1, x2, y2) around five points, from the average SCRFD box geometry.

    On LFW-dev SCRFD's box is about 2.3 inter-eye distances wide, with its top 1.1 above the eye line and its
    bottom 1.65 below the mouth line: used to re-centre the landmark model on its own prediction.
    """
    pts = np.asarray(points, dtype=np.float64)
    eye_mid = (pts[0] + pts[1]) / 2
    mouth_mid = (pts[3] + pts[4]) / 2
    iod = max(float(np.linalg.norm(pts[1] - pts[0])), 1e-3)
    em = max(float(np.linalg.norm(mouth_mid - eye_mid)), 1e-3)
    cx = float((eye_mid[0] + mouth_mid[0]) / 2)
    width = 2.3 * iod
    top = float(eye_mid[1]) - 1.1 * em
    bottom = float(mouth_mid[1]) + 0.95 * em
    return np.array([cx - width / 2, top, cx + width / 2, bottom], dtype=np.float32)


class Landmarker:
    """Runs the 106-point landmark model on face boxes."""

    def __init__(self, runner: InferenceRunner) -> None:
        self.runner = runner

    def predict(self, image: ImageArray, box: npt.ArrayLike) -> FloatArray:
        """(106, 2) landmarks, image pixels, of the face in ``box`` (x1, y1, x2, y2) of ``image`` (uint8 RGB)."""
        matrix = crop_matrix(box)
        output = self.runner.run(to_tensor(image, matrix))[0]
        return decode(output, matrix)
