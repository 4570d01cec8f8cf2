"""Typed contracts of the face engine: images, detections, quality and faces."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
ImageArray = npt.NDArray[np.uint8]

#: Which path found a face: the plain detector passes, a small photo enlarged, a tight crop given a border (and
#: possibly enlarged), the same on a contrast-enhanced copy of a small photo, or, as a last resort, the whole crop
#: taken as the face with landmarks from the 106-point model (docs/detection.md). Each path lowers the quality
#: score by its own factor (docs/quality.md).
FoundBy = Literal["detector", "upscaled", "padded", "enhanced", "whole_crop"]
FOUND_BY_PATHS: tuple[FoundBy, ...] = ("detector", "upscaled", "padded", "enhanced", "whole_crop")


@dataclass(frozen=True)
class LoadedImage:
    """An image accepted by the safe intake.

    ``pixels``: uint8 array of shape (H, W, 3), RGB, EXIF orientation already applied.
    ``sha256``: hex digest of the original bytes exactly as received (evidence integrity).
    ``width``/``height``: the original picture's size (EXIF orientation applied). ``scale``: original pixels per
    decoded pixel — 1.0 unless a large picture was decoded reduced (``load_image(..., reduce_to=...)``), in which
    case ``pixels`` is smaller and coordinates found in it are multiplied by ``scale`` to refer to the original.
    """

    pixels: ImageArray
    sha256: str
    format: str  # "JPEG", "PNG", "BMP", "TIFF" or "WEBP"
    size_bytes: int
    width: int
    height: int
    scale: float = 1.0

    def to_decoded(self, points: Any) -> FloatArray:
        """Coordinates in the original picture (boxes or points) as coordinates in :attr:`pixels`."""
        return np.asarray(points, dtype=np.float32) / np.float32(self.scale)


@dataclass(frozen=True)
class Detection:
    """A raw detector output in image coordinates.

    ``box``: float32 (4,) as x1, y1, x2, y2. ``landmarks``: float32 (5, 2) as x, y for
    left eye, right eye, nose tip, left mouth corner, right mouth corner (subject's left is image right).
    """

    box: FloatArray
    landmarks: FloatArray
    score: float
    found_by: FoundBy = "detector"


@dataclass(frozen=True)
class Quality:
    """Per-face quality measures and the documented overall score in [0, 1] (see docs/quality.md)."""

    inter_eye_px: float
    yaw: float  # degrees, estimated from landmarks; 0 = frontal
    pitch: float  # degrees
    roll: float  # degrees
    sharpness: float  # variance of the Laplacian of the aligned face crop
    brightness: float  # mean luminance of the aligned crop, 0..255
    contrast: float  # standard deviation of luminance of the aligned crop
    detector_score: float
    overall: float
    path_factor: float = 1.0  # how much the path that found the face lowered ``overall`` (1 = not at all)

    def as_dict(self) -> dict[str, float]:
        return {
            "overall": self.overall,
            "inter_eye_px": self.inter_eye_px,
            "yaw": self.yaw,
            "pitch": self.pitch,
            "roll": self.roll,
            "sharpness": self.sharpness,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "detector_score": self.detector_score,
            "path_factor": self.path_factor,
        }


@dataclass
class Face:
    """A detected face with its quality and, when asked for, its embedding.

    ``embedding``: float32 (dim,), L2-normalised: the template of the engine's recognition pipeline (one model, or
    several fused; ``FaceEngine.embedding_dim``). ``model_embeddings``: each model's own unit template, keyed by
    model version (stored per model so that a model can be added or dropped later without re-detecting).
    ``embedding_norm``: the raw norm before normalisation (low for poor or non-face crops: a quality signal).
    ``found_by``: which detection path found the face (:data:`FoundBy`).
    """

    box: FloatArray
    landmarks: FloatArray
    score: float
    quality: Quality
    embedding: FloatArray | None = None
    embedding_norm: float | None = None
    found_by: FoundBy = "detector"
    model_embeddings: dict[str, FloatArray] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)

    def to_json(self) -> dict[str, Any]:
        """The JSON shape used by the CLI and API."""
        data: dict[str, Any] = {
            "box": [round(float(v), 2) for v in self.box],
            "score": round(float(self.score), 4),
            "found_by": self.found_by,
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
            "quality": {k: round(v, 4) for k, v in self.quality.as_dict().items()},
        }
        if self.embedding_norm is not None:
            data["embedding_norm"] = round(float(self.embedding_norm), 4)
        return data
