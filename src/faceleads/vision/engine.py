"""The face engine: detect -> align -> quality -> embed, behind one object that owns the models.

The models come from a model pack (:mod:`faceleads.vision.packs`): a detector, one or more recognition models whose
scores are fused, and (InsightFace pack) the 106-point landmark model for the whole-crop fallback. Any of them can
be injected instead (tests, or a vendor SDK wrapped as a :class:`~faceleads.vision.detector.FaceDetector` or a
:class:`~faceleads.vision.recognition.Recognizer`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt

from faceleads.config import Settings, get_settings
from faceleads.errors import ModelError, ValidationError
from faceleads.vision import wholecrop
from faceleads.vision.align import align_face
from faceleads.vision.detector import AnchorDetector, FaceDetector, ScrfdDetector, YuNetDetector
from faceleads.vision.landmarks import Landmarker, five_from_106, mirror_five
from faceleads.vision.models import file_digest, model_path
from faceleads.vision.onnx import InferenceRunner, OrtRunner
from faceleads.vision.packs import LANDMARK_FILE, RECOGNIZERS, resolve_pack, resolve_recognizers
from faceleads.vision.quality import assess
from faceleads.vision.recognition import FusedRecognizer, OnnxRecognizer, Recognizer, stack_crops
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
    """Detects, aligns, assesses and embeds faces with the configured models.

    Inference is thread-safe (ONNX Runtime sessions are); create one engine per process and share it.
    ``detector_runner`` / ``embedder_runner`` replace the pack's detector network / first recognition network
    (tests); ``detector`` / ``recognizers`` replace them entirely (a vendor SDK).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        detector_runner: InferenceRunner | None = None,
        embedder_runner: InferenceRunner | None = None,
        detector: FaceDetector | None = None,
        recognizers: Sequence[Recognizer] | None = None,
        landmark_runner: InferenceRunner | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        s = self.settings
        threads = s.effective_threads
        spin = s.ort_spinning
        rewrite = s.ort_rewrite_graphs
        pack = resolve_pack(s)
        self.pack = pack
        if detector is None:
            runner = detector_runner or OrtRunner(pack.detector.path(s), threads, spin, rewrite=rewrite)
            kind = YuNetDetector if pack.detector.kind == "yunet" else ScrfdDetector
            detector = kind(
                runner,
                det_size=s.det_size,
                score_threshold=s.det_threshold,
                nms_threshold=s.nms_threshold,
                max_upscale=s.det_max_upscale,
            )
        self.detector: FaceDetector = detector
        if recognizers is None:
            built: list[Recognizer] = []
            for i, spec in enumerate(resolve_recognizers(s)):
                injected = embedder_runner if i == 0 else None
                path = None if injected is not None else spec.path(s)
                built.append(
                    OnnxRecognizer(
                        injected or OrtRunner(path, threads, spin, rewrite=rewrite),  # type: ignore[arg-type]
                        name=path.stem if path else s.embedder_file.rsplit(".", 1)[0],
                        digest=file_digest(path) if path else "injected",
                        dim=spec.dim,
                        fmt=spec.fmt,
                        flip=s.flip_embedding,
                        batch_size=s.embed_batch_size,
                    )
                )
            recognizers = built
        self.recognizer = FusedRecognizer(recognizers)
        self.landmarker: Landmarker | None = None
        # Faces found by a fallback are checked with the raw embedding norm of the pack's faceness model (limits
        # measured per model), reusing the pipeline's own session when it runs that model.
        self._faceness: Recognizer | None = None
        self._faceness_limits: wholecrop.FacenessLimits | None = None
        if pack.faceness is not None and isinstance(self.detector, AnchorDetector):
            self._faceness_limits = wholecrop.FACENESS[pack.faceness]
            self._faceness = self._faceness_model(self._faceness_limits, threads, spin)
        # The whole crop needs its own norm limit (measured for ArcFace MobileFaceNet): without that model (agency
        # weights of another name) the whole-crop fallback is off rather than unchecked; `faceleads selfcheck` says so.
        limits = self._faceness_limits
        has_limit = limits is not None and limits.whole_crop_norm is not None
        if s.whole_crop and pack.landmarks and self._faceness is not None and has_limit:
            if landmark_runner is None:
                landmark_runner = OrtRunner(model_path(s, LANDMARK_FILE), threads, spin, rewrite=rewrite)
            self.landmarker = Landmarker(landmark_runner)

    def _faceness_model(self, limits: wholecrop.FacenessLimits, threads: int, spin: bool) -> Recognizer | None:
        """The model of ``limits`` without flip, for the norm checks (None when that model file is not available)."""
        spec = RECOGNIZERS[limits.recognizer]
        for member in self.recognizer.members:
            if isinstance(member, OnnxRecognizer) and member.name == limits.model:
                return OnnxRecognizer(
                    member.runner, name=member.name, digest="check", dim=spec.dim, fmt=spec.fmt, flip=False
                )
        try:
            path = spec.path(self.settings)
        except ModelError:
            return None
        if path.stem != limits.model:
            return None
        runner = OrtRunner(path, threads, spin, rewrite=self.settings.ort_rewrite_graphs)
        return OnnxRecognizer(runner, name=path.stem, digest="check", dim=spec.dim, fmt=spec.fmt, flip=False)

    @property
    def model_name(self) -> str:
        """Short name of the recognition model(s), e.g. ``w600k_mbf`` or ``w600k_mbf+edgeface_s_gamma_05``."""
        return self.recognizer.name

    @property
    def model_version(self) -> str:
        """Identifies the template exactly (models, file digests, flip averaging, fusion): templates record it."""
        return self.recognizer.version

    @property
    def embedding_dim(self) -> int:
        """Length of the engine's templates (512 for one ArcFace-size model; the sum for a fusion)."""
        return self.recognizer.dim

    @property
    def member_versions(self) -> list[str]:
        """The version of each recognition model, in fusion order."""
        return [m.version for m in self.recognizer.members]

    # -- detection -------------------------------------------------------------------------------------------

    def _to_face(self, image: ImageArray, detection: Detection) -> Face:
        aligned = align_face(image, detection.landmarks)
        quality = assess(detection.landmarks, aligned, detection.score, detection.found_by)
        face = Face(
            box=detection.box,
            landmarks=detection.landmarks,
            score=detection.score,
            quality=quality,
            found_by=detection.found_by,
        )
        face.extra[ALIGNED_KEY] = aligned
        return face

    def whole_crop(self, image: ImageArray) -> Detection | None:
        """The whole photo as one face, if it is a small tight crop that passes the face checks (else None).

        See :mod:`faceleads.vision.wholecrop`: landmarks from the 106-point model on the crop, its mirror image and
        a re-centred box must agree and look like a face, and the detector must see a face in the re-aligned crop.
        """
        if self.landmarker is None or not isinstance(self.detector, AnchorDetector):
            return None
        h, w = image.shape[:2]
        if not wholecrop.plausible_crop(h, w, self.settings.whole_crop_max_side):
            return None
        box = np.array([0, 0, w, h], dtype=np.float32)
        first = five_from_106(self.landmarker.predict(image, box))
        if not wholecrop.plausible_geometry(first, w):
            return None
        mirrored = mirror_five(five_from_106(self.landmarker.predict(np.ascontiguousarray(image[:, ::-1]), box)), w)
        recentred = five_from_106(self.landmarker.predict(image, wholecrop.expected_box(first)))
        estimates = [first, mirrored, recentred]
        if wholecrop.disagreement(estimates) > wholecrop.MAX_DISAGREEMENT:
            return None
        five = wholecrop.mean_estimate(estimates)
        canvas, expected = wholecrop.verification_canvas(image, five)
        score = self.detector.best_score(canvas, expected)
        if score < wholecrop.MIN_DETECTOR_SCORE:
            return None
        limits = self._faceness_limits
        if self._faceness is None or limits is None or limits.whole_crop_norm is None:
            return None
        _, norms = self._faceness.embed(align_face(image, five)[None])
        if float(norms[0]) < limits.whole_crop_norm:
            return None
        return Detection(box=box, landmarks=five, score=score, found_by="whole_crop")

    def _checked(self, image: ImageArray, detections: list[Detection]) -> list[Detection]:
        """Drop faces found by a fallback path that do not fill the photo, are not laid out like a face, or that
        the recognition model does not see as faces (that last check only with the pack's faceness model loaded)."""
        kept = []
        height, width = image.shape[:2]
        for d in detections:
            if d.found_by == "detector":
                kept.append(d)
                continue
            norm = None
            if self._faceness is not None:
                norm = float(self._faceness.embed(align_face(image, d.landmarks)[None])[1][0])
            if wholecrop.fallback_is_face(d, height, width, norm, self._faceness_limits):
                kept.append(d)
        return kept

    def _detections(self, image: ImageArray) -> list[Detection]:
        detections = self._checked(image, self.detector.detect(image))
        if not detections:
            found = self.whole_crop(image)
            if found is not None:
                detections = [found]
        return detections

    def detect(self, image: ImageArray, *, embed: bool = False, max_faces: int | None = None) -> list[Face]:
        """All faces in ``image`` (uint8 (H, W, 3) RGB), most prominent first, with quality (and embeddings).

        Each face says which path found it (``found_by``); a photo without a face gives an empty list.
        """
        _check_image(image)
        faces = [self._to_face(image, d) for d in self._detections(image)]
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
        The detection fallbacks (:meth:`detect`) run on the decoded pixels as usual; ``found_by`` and its quality
        factor are kept.
        """
        faces = self.detect(loaded.pixels, embed=embed, max_faces=max_faces)
        if loaded.scale != 1.0:
            s = np.float32(loaded.scale)
            for face in faces:
                face.box = np.asarray(face.box, dtype=np.float32) * s
                face.landmarks = np.asarray(face.landmarks, dtype=np.float32) * s
                aligned = face.extra.get(ALIGNED_KEY)
                if aligned is not None:
                    face.quality = assess(face.landmarks, aligned, face.score, face.found_by)
        return faces

    def frame_detector(
        self, det_size: int, score_threshold: float, nms_threshold: float
    ) -> Callable[[ImageArray], list[Detection]]:
        """A detection function for video frames: one pass at (at most) ``det_size``, no tiles, no fallback ladder
        and no whole-crop check, so the cost per frame stays bounded (the live pipeline). It shares the engine's
        detector network session.

        A vendor detector without a single-pass mode (not an :class:`AnchorDetector`) is used through its own
        ``detect``: the fallback ladder is faceleads' own and never wraps it.
        """
        if isinstance(self.detector, AnchorDetector):
            return self.detector.single_pass_copy(det_size, score_threshold, nms_threshold).detect_single_pass
        return self.detector.detect

    def detect_batch(
        self, images: Sequence[ImageArray], *, embed: bool = True, max_faces: int | None = None
    ) -> list[list[Face]]:
        """:meth:`detect` over several images, with one batched embedding call for all their faces.

        Batching the embedder across images is what makes bulk enrolment fast: a batch of 32 crops (and their
        mirror images) costs far less than 32 single-crop calls.
        """
        workers = min(len(images), self.settings.effective_threads)
        if workers > 1:
            # Detection of small photos leaves cores idle inside one session run; running photos side by side
            # keeps them busy (ONNX Runtime and OpenCV release the GIL).
            with ThreadPoolExecutor(max_workers=workers) as pool:
                results = list(pool.map(lambda image: self.detect(image, embed=False, max_faces=max_faces), images))
        else:
            results = [self.detect(image, embed=False, max_faces=max_faces) for image in images]
        if embed:
            faces = [face for found in results for face in found]
            self._embed([face.extra[ALIGNED_KEY] for face in faces], faces)
        return results

    def detect_in_box(self, image: ImageArray, box: Sequence[float], *, embed: bool = False) -> Face | None:
        """The face inside an analyst-drawn box, when the whole-image detection missed it (None if none).

        When the detector finds nothing in the box, the box itself is tried as a tight face crop (whole-crop
        fallback, with its checks).
        """
        _check_image(image)
        region = np.asarray(box, dtype=np.float32)
        detections = self.detector.detect_in_region(image, region)
        if not detections:
            found = self._whole_crop_in_box(image, region)
            if found is None:
                return None
            detections = [found]

        def overlap(d: Detection) -> float:
            ix1, iy1 = max(d.box[0], region[0]), max(d.box[1], region[1])
            ix2, iy2 = min(d.box[2], region[2]), min(d.box[3], region[3])
            return float(max(0.0, ix2 - ix1) * max(0.0, iy2 - iy1)) * d.score

        face = self._to_face(image, max(detections, key=overlap))
        face.extra["drawn_box"] = [float(v) for v in region]
        if embed:
            self.embed_faces(image, [face])
        return face

    def _whole_crop_in_box(self, image: ImageArray, region: FloatArray) -> Detection | None:
        h, w = image.shape[:2]
        x1, y1 = max(0, int(region[0])), max(0, int(region[1]))
        x2, y2 = min(w, int(np.ceil(region[2]))), min(h, int(np.ceil(region[3])))
        if x2 - x1 < wholecrop.MIN_SIDE or y2 - y1 < wholecrop.MIN_SIDE:
            return None
        found = self.whole_crop(np.ascontiguousarray(image[y1:y2, x1:x2]))
        if found is None:
            return None
        offset = np.array([x1, y1], dtype=np.float32)
        return Detection(
            box=found.box + np.tile(offset, 2),
            landmarks=found.landmarks + offset,
            score=found.score,
            found_by="whole_crop",
        )

    # -- embedding -------------------------------------------------------------------------------------------

    def _embed(self, crops: Sequence[ImageArray], faces: Sequence[Face]) -> None:
        if not faces:
            return
        per_member = self.recognizer.embed_members(stack_crops(crops))
        fused = self.recognizer.compose([vectors for _, vectors, _ in per_member])
        first_norms = per_member[0][2]
        for i, face in enumerate(faces):
            face.embedding = fused[i]
            face.embedding_norm = float(first_norms[i])
            face.model_embeddings = {member.version: vectors[i] for member, vectors, _ in per_member}
            face.extra["member_norms"] = {member.version: float(norms[i]) for member, _, norms in per_member}

    def embed_faces(self, image: ImageArray, faces: Sequence[Face]) -> None:
        """Fill ``embedding``, ``embedding_norm`` and ``model_embeddings`` of ``faces`` (one batched call per model)."""
        crops = [
            f.extra[ALIGNED_KEY] if f.extra.get(ALIGNED_KEY) is not None else align_face(image, f.landmarks)
            for f in faces
        ]
        self._embed(crops, faces)

    def embed_aligned(self, crops: Sequence[ImageArray]) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        """Templates (n, embedding_dim) and raw norms (first model) of already aligned 112x112 RGB crops."""
        if len(crops) == 0:
            return np.zeros((0, self.embedding_dim), np.float32), np.zeros(0, np.float32)
        return self.recognizer.embed(stack_crops(crops))

    def compare(self, a: Face | FloatArray, b: Face | FloatArray) -> float:
        """Cosine similarity in [-1, 1] of two faces (with embeddings) or two templates of this engine."""
        va = a.embedding if isinstance(a, Face) else a
        vb = b.embedding if isinstance(b, Face) else b
        if va is None or vb is None:
            raise ValidationError("both faces need embeddings to be compared (detect with embed=True)")
        va = np.asarray(va, dtype=np.float32).reshape(-1)
        vb = np.asarray(vb, dtype=np.float32).reshape(-1)
        dim = self.embedding_dim
        if va.shape != (dim,) or vb.shape != (dim,):
            raise ValidationError(f"embeddings must have {dim} values, got {va.size} and {vb.size}")
        na, nb = float(np.linalg.norm(va)), float(np.linalg.norm(vb))
        if na == 0 or nb == 0:
            raise ValidationError("cannot compare a zero embedding")
        return float(np.dot(va, vb) / (na * nb))
