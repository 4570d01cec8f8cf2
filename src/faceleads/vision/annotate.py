"""Drawing detections on a copy of an image: numbered boxes, landmarks and scores."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from faceleads.vision.types import Face, ImageArray

LANDMARK_COLOURS = [(0, 120, 255), (255, 120, 0), (0, 200, 0), (200, 0, 200), (200, 200, 0)]


def annotate(image: ImageArray, faces: Sequence[Face]) -> ImageArray:
    """A copy of ``image`` (RGB) with each face's box, number (1-based, as the CLI lists them) and landmarks."""
    canvas = np.ascontiguousarray(image.copy())
    scale = max(1.0, max(canvas.shape[:2]) / 800)
    thickness = max(1, round(2 * scale))
    for number, face in enumerate(faces, start=1):
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        colour = (
            (0, 220, 0)
            if face.quality.overall >= 0.5
            else (255, 170, 0)
            if face.quality.overall >= 0.25
            else (230, 0, 0)
        )
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
        for (x, y), dot in zip(face.landmarks, LANDMARK_COLOURS, strict=True):
            cv2.circle(canvas, (round(float(x)), round(float(y))), thickness + 1, dot, -1)
        label = f"{number}  q{face.quality.overall:.2f}"
        font_scale = 0.45 * scale
        (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thickness)
        ty = y1 - 4 if y1 - th - 6 > 0 else y2 + th + 4
        cv2.rectangle(canvas, (x1, ty - th - 3), (x1 + tw + 4, ty + 3), colour, -1)
        cv2.putText(
            canvas, label, (x1 + 2, ty), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (0, 0, 0), thickness, cv2.LINE_AA
        )
    return canvas
