"""The whole-crop fallback: a small, tight crop in which no detector pass found a face is taken as the face itself,
its five alignment points placed by the 106-point landmark model, and kept only if it passes three checks that a
photo without a face fails (docs/detection.md has the measurements behind the limits):

1. **shape**: a small photo shaped like a face crop (``plausible_crop``);
2. **landmark consistency**: the landmark model, run on the crop, on its mirror image and on a box re-centred on
   its own first answer, must agree (``disagreement``): on a face it converges on the same points, on a wall,
   a shirt or a texture its answers scatter; and the points must have a face's geometry (``plausible_geometry``);
3. **detector evidence**: the face, re-aligned upright at the detector's best size with context around it, must
   get a detector confidence of at least ``MIN_DETECTOR_SCORE`` (the detector's own belief, below its threshold).

Pure functions here; :meth:`faceleads.vision.engine.FaceEngine.detect` runs them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision.align import ARCFACE_TEMPLATE, estimate_similarity
from faceleads.vision.types import Detection, FloatArray, ImageArray

MIN_SIDE = 28  # px: a face crop this small has under ~12 px between the eyes, too little to align or compare
MAX_ASPECT = 2.0  # a face crop is at most this elongated either way
MAX_DISAGREEMENT = 0.25  # mean landmark disagreement between the three runs, in inter-eye distances
MIN_DETECTOR_SCORE = 0.05  # detector confidence on the re-aligned face, below its detection threshold
# The fallbacks exist for tight crops, where the face fills the photo: a face they find must span at least this share
# of the photo's short side (a badge, a logo or a fold of cloth found in a corner of a small picture does not; a
# small face inside a larger picture is found by drawing a box around it, FaceEngine.detect_in_box).
MIN_FACE_SHARE = 0.6


@dataclass(frozen=True)
class FacenessLimits:
    """How a recognition model's raw embedding norm tells a face from a texture, for a face found by a fallback.

    Enlarged, bordered or enhanced, fabric, hands, badges and walls reach a detector's threshold; a recognition
    model gives them a low norm. A fallback face is kept at ``norm`` or above, or at ``confident_score`` (detector)
    with ``confident_norm``. A whole crop (no detector find at all) needs ``whole_crop_norm``; a model without that
    limit does not run the whole-crop fallback. The limits hold only for the model file they were measured on
    (``model``, its stem).
    """

    recognizer: str  # key of faceleads.vision.packs.RECOGNIZERS
    model: str
    norm: float
    confident_score: float
    confident_norm: float
    whole_crop_norm: float | None = None

    def accepts(self, score: float, norm: float) -> bool:
        return norm >= self.norm or (score >= self.confident_score and norm >= self.confident_norm)


#: Measured limits per model (docs/accuracy.md, "Photos without a face").
FACENESS: dict[str, FacenessLimits] = {
    "arcface": FacenessLimits(
        "arcface", "w600k_mbf", norm=15.0, confident_score=0.6, confident_norm=12.0, whole_crop_norm=16.0
    ),
    "sface": FacenessLimits(
        "sface", "face_recognition_sface_2021dec", norm=10.0, confident_score=0.6, confident_norm=6.5
    ),
}


def fallback_is_face(
    detection: Detection, height: int, width: int, norm: float | None = None, limits: FacenessLimits | None = None
) -> bool:
    """Whether a face found by a fallback path (not the plain passes) in a ``height`` x ``width`` photo is kept:
    it fills the photo, its five points are laid out like a face within its box, and, when a model with measured
    ``limits`` gave its embedding ``norm``, the norm is a face's (docs/detection.md)."""
    box = detection.box
    box_width = float(box[2] - box[0])
    if box_width < MIN_FACE_SHARE * min(height, width):
        return False
    if not plausible_geometry(detection.landmarks - box[:2], max(box_width, 1.0)):
        return False
    if norm is None or limits is None:
        return True
    return limits.accepts(detection.score, norm)


IOD_SHARE = (0.18, 0.75)  # inter-eye distance as a share of the crop width
MAX_ROLL = 40.0  # degrees
CANVAS = 192  # re-aligned verification canvas (px): the face at 2x the ArcFace template size, centred
CANVAS_SCALE = 1.0  # template scale on the canvas (112 px template -> a face box of ~100 px)


def plausible_crop(height: int, width: int, max_side: int) -> bool:
    """Whether a photo is small and face-shaped enough to be taken as one tight face crop."""
    if min(height, width) < MIN_SIDE or max(height, width) > max_side:
        return False
    return max(height, width) / max(min(height, width), 1) <= MAX_ASPECT


def inter_eye(five: npt.ArrayLike) -> float:
    """Distance between the two eye points of five landmarks."""
    pts = np.asarray(five, dtype=np.float64)
    return float(np.linalg.norm(pts[1] - pts[0]))


def disagreement(estimates: Sequence[FloatArray]) -> float:
    """Largest mean distance between the first five-point estimate and each other one, in inter-eye distances."""
    first = np.asarray(estimates[0], dtype=np.float64)
    scale = max(inter_eye(first), 1e-6)
    worst = 0.0
    for other in estimates[1:]:
        d = np.linalg.norm(np.asarray(other, dtype=np.float64) - first, axis=1).mean() / scale
        worst = max(worst, float(d))
    return worst


def plausible_geometry(five: FloatArray, width: float) -> bool:
    """Whether five points are laid out like a face seen roughly from the front, at a tight crop's scale.

    In the frame of the eye line: eyes level within ``MAX_ROLL``, the nose below the eyes and above the mouth,
    horizontally between the eyes, the mouth corners below the nose and the right way round, and the inter-eye
    distance a plausible share of the crop width.
    """
    pts = np.asarray(five, dtype=np.float64)
    iod = inter_eye(pts)
    if not IOD_SHARE[0] * width <= iod <= IOD_SHARE[1] * width:
        return False
    eye_vec = pts[1] - pts[0]
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    if abs(roll) > MAX_ROLL:
        return False
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rot = np.array([[c, -s], [s, c]])
    local = (pts - pts[0]) @ rot.T / iod  # left eye at (0, 0), right eye at (1, 0)
    nose, mouth_l, mouth_r = local[2], local[3], local[4]
    if not (0.0 < nose[0] < 1.0 and 0.15 < nose[1] < 1.2):
        return False
    if not (mouth_l[1] > nose[1] and mouth_r[1] > nose[1] and mouth_r[0] - mouth_l[0] > 0.3):
        return False
    return bool(max(mouth_l[1], mouth_r[1]) < 2.0)


def verification_canvas(
    image: ImageArray, five: FloatArray, size: int = CANVAS, scale: float = CANVAS_SCALE
) -> tuple[ImageArray, FloatArray]:
    """The face re-aligned upright in the middle of a ``size`` x ``size`` canvas, and where its box should be.

    The five points go onto the ArcFace template (scaled by ``scale``, centred); the rest of the canvas shows the
    photo around the face, its border replicated beyond the photo's edge (a tight crop has no more context).
    """
    template = ARCFACE_TEMPLATE * scale + (size - 112 * scale) / 2
    matrix = estimate_similarity(np.asarray(five, dtype=np.float32), template)
    canvas = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    expected = expected_box(template)
    return np.ascontiguousarray(canvas, dtype=np.uint8), expected


def expected_box(five: FloatArray) -> FloatArray:
    """The detector-style face box (x1, y1, x2, y2) around five points (mean SCRFD geometry on LFW-dev)."""
    from faceleads.vision.landmarks import box_from_five

    return box_from_five(five)


def mean_estimate(estimates: Sequence[FloatArray]) -> FloatArray:
    """The mean of several five-point estimates: the landmarks kept for a whole-crop face."""
    return np.mean(np.stack([np.asarray(e, dtype=np.float32) for e in estimates]), axis=0).astype(np.float32)


