"""The face engine: detect -> align -> quality -> embed, behind one object that owns the models."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from faceleads.config import Settings, get_settings
from faceleads.errors import ValidationError
from faceleads.vision.align import align_face
from faceleads.vision.detector import ScrfdDetector
from faceleads.vision.embedder import EMBEDDING_DIM, ArcFaceEmbedder
from faceleads.vision.models import file_digest, model_path
from faceleads.vision.onnx import InferenceRunner, OrtRunner
from faceleads.vision.quality import assess
from faceleads.vision.types import Detection, Face, FloatArray, ImageArray, LoadedImage

ALIGNED_KEY = "aligned"


def _check_image(image: ImageArray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ValidationError(f"expected a uint8 RGB image of shape (H, W, 3), got {dtype} with shape {shape}")


def prominence(face: Face) -> float:
    """How prominent a face is in its photo: its area weighted by detector confidence."""
    return face.area * face.score


class FaceEngine:
    """Detects, aligns, assesses and embeds faces with the configured ONNX models.

    Inference is thread-safe (ONNX Runtime sessions are); create one engine per process and share it.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        detector_runner: InferenceRunner | None = None,
        embedder_runner: InferenceRunner | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        s = self.settings
        threads = s.effective_threads
        if detector_runner is None:
            detector_runner = OrtRunner(model_path(s, s.detector_file), threads)
        emb_path: Path | None = None
        if embedder_runner is None:
            emb_path = model_path(s, s.embedder_file)
            embedder_runner = OrtRunner(emb_path, threads)
        self.detector = ScrfdDetector(
            detector_runner,
            det_size=s.det_size,
            score_threshold=s.det_threshold,
            nms_threshold=s.nms_threshold,
            max_upscale=s.det_max_upscale,
        )
        self.embedder = ArcFaceEmbedder(embedder_runner, s.embed_batch_size)
        self._model_name = s.embedder_file.rsplit(".", 1)[0]
        self._model_digest = file_digest(emb_path) if emb_path else "injected"

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def model_version(self) -> str:
        """Identifies the embedding model exactly (name and file digest): templates record it."""
        return f"{self._model_name}@{self._model_digest[:12]}"

    def _to_face(self, image: ImageArray, detection: Detection) -> Face:
        aligned = align_face(image, detection.landmarks)
        quality = assess(detection.landmarks, aligned, detection.score)
        face = Face(box=detection.box, landmarks=detection.landmarks, score=detection.score, quality=quality)
        face.extra[ALIGNED_KEY] = aligned
        return face

    def detect(self, image: ImageArray, *, embed: bool = False, max_faces: int | None = None) -> list[Face]:
        """All faces in ``image`` (uint8 (H, W, 3) RGB), most prominent first, with quality (and embeddings)."""
        _check_image(image)
        faces = [self._to_face(image, d) for d in self.detector.detect(image)]
        faces.sort(key=prominence, reverse=True)
        if max_faces is not None:
            faces = faces[:max_faces]
        if embed:
            self.embed_faces(image, faces)
        return faces

    def detect_loaded(
        self, loaded: LoadedImage, *, embed: bool = False, max_faces: int | None = None
    ) -> list[Face]:
        """:meth:`detect` on a picture from :func:`~faceleads.vision.imaging.load_image`, with boxes and landmarks
        in the **original** picture's pixels even when it was decoded reduced (``loaded.scale`` > 1).

        Embeddings and aligned crops come from the decoded pixels; the quality's inter-eye distance is that of the
        original (re-assessed from the scaled landmarks), so a reduced decode does not lower a face's size score.
        """
        faces = self.detect(loaded.pixels, embed=embed, max_faces=max_faces)
        if loaded.scale != 1.0:
            s = np.float32(loaded.scale)
            for face in faces:
                face.box = np.asarray(face.box, dtype=np.float32) * s
                face.landmarks = np.asarray(face.landmarks, dtype=np.float32) * s
                aligned = face.extra.get(ALIGNED_KEY)
                if aligned is not None:
                    face.quality = assess(face.landmarks, aligned, face.score)
        return faces

    def detect_batch(
        self, images: Sequence[ImageArray], *, embed: bool = True, max_faces: int | None = None
    ) -> list[list[Face]]:
        """:meth:`detect` over several images, with one batched embedding call for all their faces.

        Batching the embedder across images is what makes bulk enrolment fast: a batch of 32 crops costs
        far less than 32 single-crop calls.
        """
        results = [self.detect(image, embed=False, max_faces=max_faces) for image in images]
        if embed:
            faces = [face for found in results for face in found]
            crops = [face.extra[ALIGNED_KEY] for face in faces]
            vectors, norms = self.embedder.embed(crops)
            for face, vector, norm in zip(faces, vectors, norms, strict=True):
                face.embedding = vector
                face.embedding_norm = float(norm)
        return results

    def detect_in_box(self, image: ImageArray, box: Sequence[float], *, embed: bool = False) -> Face | None:
        """The face inside an analyst-drawn box, when the whole-image detection missed it (None if none)."""
        _check_image(image)
        region = np.asarray(box, dtype=np.float32)
        detections = self.detector.detect_in_region(image, region)
        if not detections:
            return None

        def overlap(d: Detection) -> float:
            ix1, iy1 = max(d.box[0], region[0]), max(d.box[1], region[1])
            ix2, iy2 = min(d.box[2], region[2]), min(d.box[3], region[3])
            return float(max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)) * d.score

        face = self._to_face(image, max(detections, key=overlap))
        face.extra["drawn_box"] = [float(v) for v in region]
        if embed:
            self.embed_faces(image, [face])
        return face

    def embed_faces(self, image: ImageArray, faces: Sequence[Face]) -> None:
        """Fill ``embedding`` and ``embedding_norm`` of ``faces`` (one batched model call)."""
        if not faces:
            return
        crops = [
            f.extra[ALIGNED_KEY] if f.extra.get(ALIGNED_KEY) is not None else align_face(image, f.landmarks)
            for f in faces
        ]
        vectors, norms = self.embedder.embed(crops)
        for face, vector, norm in zip(faces, vectors, norms, strict=True):
            face.embedding = vector
            face.embedding_norm = float(norm)

    def embed_aligned(self, crops: Sequence[ImageArray]) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        """Embeddings (n, 512) and raw norms of already aligned 112x112 RGB crops."""
        return self.embedder.embed(list(crops))

    @staticmethod
    def compare(a: Face | FloatArray, b: Face | FloatArray) -> float:
        """Cosine similarity in [-1, 1] of two faces (with embeddings) or two embeddings."""
        va = a.embedding if isinstance(a, Face) else a
        vb = b.embedding if isinstance(b, Face) else b
        if va is None or vb is None:
            raise ValidationError("both faces need embeddings to be compared (detect with embed=True)")
        va = np.asarray(va, dtype=np.float32).reshape(-1)
        vb = np.asarray(vb, dtype=np.float32).reshape(-1)
        if va.shape != (EMBEDDING_DIM,) or vb.shape != (EMBEDDING_DIM,):
            raise ValidationError(f"embeddings must have {EMBEDDING_DIM} values, got {va.size} and {vb.size}")
        na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
        if na == 0 or nb == 0:
            raise ValidationError("cannot compare a zero embedding")
        return float(np.dot(va, vb) / (na * nb))
