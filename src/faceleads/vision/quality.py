"""Face quality: geometric, photometric and detector measures, and one documented overall score in [0, 1].

The overall score is a weighted geometric mean of factor scores, each in [0, 1] (see ``docs/quality.md``):

    overall = size^0.30 * pose^0.25 * sharpness^0.20 * exposure^0.15 * detector^0.10

so any one very poor factor pulls the whole score down, as it should for a face to be searched.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from faceleads.vision.align import ARCFACE_TEMPLATE
from faceleads.vision.types import FloatArray, FoundBy, ImageArray, Quality

# Frontal proportions of the template: where the nose sits between the eye line and the mouth line.
_TEMPLATE_EYE_Y = float(ARCFACE_TEMPLATE[:2, 1].mean())
_TEMPLATE_MOUTH_Y = float(ARCFACE_TEMPLATE[3:, 1].mean())
_TEMPLATE_NOSE_RATIO = (float(ARCFACE_TEMPLATE[2, 1]) - _TEMPLATE_EYE_Y) / (_TEMPLATE_MOUTH_Y - _TEMPLATE_EYE_Y)
# Depth of the nose tip in front of the eyes, relative to half the inter-ocular distance (anthropometric average).
_NOSE_DEPTH_RATIO = 1.0
# ... and relative to the eye-to-mouth distance, for pitch.
_NOSE_DEPTH_VERTICAL = 0.75

WEIGHTS = {"size": 0.30, "pose": 0.25, "sharpness": 0.20, "exposure": 0.15, "detector": 0.10}
SIZE_MIN_PX, SIZE_GOOD_PX = 8.0, 48.0  # inter-eye distance where the size factor is 0 and 1
SHARPNESS_HALF = 150.0  # Laplacian variance at which the sharpness factor is 0.5
CONTRAST_HALF = 12.0  # luminance standard deviation at which the contrast factor is 0.5
YAW_LIMIT, PITCH_LIMIT = 75.0, 60.0  # degrees at which the pose factor reaches 0
#: Multiplier of the overall score for each detection path: a face the plain detector found is taken as it is; one
#: found only after padding or enlarging the photo is a little less certain; one placed by the landmark model on a
#: crop the detector never accepted (whole_crop) is the least certain localisation (docs/quality.md).
PATH_FACTORS: dict[str, float] = {
    "detector": 1.0,
    "upscaled": 0.9,
    "padded": 0.9,
    "enhanced": 0.85,
    "whole_crop": 0.7,
}


def pose_from_landmarks(landmarks: FloatArray) -> tuple[float, float, float]:
    """Estimate (yaw, pitch, roll) in degrees from five landmarks (left eye, right eye, nose, mouth corners).

    Roll is the angle of the eye line. Yaw and pitch come from where the nose tip falls, in the roll-corrected
    frame, relative to where it falls on a frontal face, assuming an average nose depth. Positive yaw: the nose
    points to the image right; positive pitch: the face looks down.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    left_eye, right_eye, nose = pts[0], pts[1], pts[2]
    mouth = (pts[3] + pts[4]) / 2
    eye_vec = right_eye - left_eye
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    eye_mid = (left_eye + right_eye) / 2
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rot = np.array([[c, -s], [s, c]])
    nose_r = rot @ (nose - eye_mid)
    mouth_r = rot @ (mouth - eye_mid)
    half_iod = max(float(np.linalg.norm(eye_vec)) / 2, 1e-6)
    # Horizontal: the nose tip shifts by depth*sin(yaw) while half the eye distance shrinks by cos(yaw).
    yaw = math.degrees(math.atan2(nose_r[0] / half_iod, _NOSE_DEPTH_RATIO))
    eye_to_mouth = max(float(mouth_r[1]), 1e-6)
    offset = nose_r[1] / eye_to_mouth - _TEMPLATE_NOSE_RATIO
    pitch = math.degrees(math.atan2(offset, _NOSE_DEPTH_VERTICAL))
    return yaw, pitch, roll


def sharpness(aligned: ImageArray) -> float:
    """Variance of the Laplacian of the aligned crop's luminance (higher is sharper)."""
    gray = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY)
    # The central region avoids the black borders that alignment of faces near the image edge introduces.
    centre = gray[16:-8, 16:-16]
    return float(cv2.Laplacian(centre, cv2.CV_64F).var())


def exposure(aligned: ImageArray) -> tuple[float, float]:
    """(brightness, contrast): mean and standard deviation of the luminance of the central face region."""
    gray = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY).astype(np.float64)
    centre = gray[24:-12, 24:-24]
    return float(centre.mean()), float(centre.std())


def _smoothstep(value: float, low: float, high: float) -> float:
    t = min(1.0, max(0.0, (value - low) / (high - low)))
    return t * t * (3 - 2 * t)


def factor_scores(
    inter_eye_px: float,
    yaw: float,
    pitch: float,
    sharp: float,
    brightness: float,
    contrast: float,
    detector_score: float,
) -> dict[str, float]:
    """Each measure mapped to [0, 1] (1 = good); documented in docs/quality.md."""
    size = _smoothstep(inter_eye_px, SIZE_MIN_PX, SIZE_GOOD_PX)
    pose = max(0.0, 1 - (yaw / YAW_LIMIT) ** 2) * max(0.0, 1 - (pitch / PITCH_LIMIT) ** 2)
    sharp_f = sharp / (sharp + SHARPNESS_HALF)
    # Brightness is best in the middle range and falls to 0 at black (0) or white (255).
    bright_f = max(0.0, 1 - ((brightness - 125.0) / 110.0) ** 2)
    contrast_f = contrast / (contrast + CONTRAST_HALF)
    det_f = _smoothstep(detector_score, 0.3, 0.8)
    return {
        "size": size,
        "pose": pose,
        "sharpness": sharp_f,
        "exposure": math.sqrt(bright_f * contrast_f),
        "detector": det_f,
    }


def overall_score(factors: dict[str, float]) -> float:
    """Weighted geometric mean of the factor scores, in [0, 1]."""
    log_sum = 0.0
    for name, weight in WEIGHTS.items():
        log_sum += weight * math.log(max(factors[name], 1e-6))
    return float(min(1.0, max(0.0, math.exp(log_sum))))


def assess(
    landmarks: FloatArray, aligned: ImageArray, detector_score: float, found_by: FoundBy = "detector"
) -> Quality:
    """All quality measures of one face from its landmarks (image pixels) and its aligned 112x112 crop.

    ``found_by``: the detection path, whose :data:`PATH_FACTORS` entry multiplies the overall score.
    """
    pts = np.asarray(landmarks, dtype=np.float64)
    inter_eye = float(np.linalg.norm(pts[1] - pts[0]))
    yaw, pitch, roll = pose_from_landmarks(landmarks)
    sharp = sharpness(aligned)
    brightness, contrast = exposure(aligned)
    factors = factor_scores(inter_eye, yaw, pitch, sharp, brightness, contrast, detector_score)
    return Quality(
        inter_eye_px=inter_eye,
        yaw=yaw,
        pitch=pitch,
        roll=roll,
        sharpness=sharp,
        brightness=brightness,
        contrast=contrast,
        detector_score=float(detector_score),
        overall=overall_score(factors) * PATH_FACTORS[found_by],
        path_factor=PATH_FACTORS[found_by],
    )
