"""Face detection over whole images: a global pass, tiles for small faces in large photos, and a ladder of
fallbacks for tight, small crops (a neutral border, then enlargements), each detection labelled with the path
that found it.

The ladder only runs when the plain passes found nothing, so ordinary photos cost what they did before. Two
detector networks share it: SCRFD (:class:`ScrfdDetector`, InsightFace research weights) and YuNet
(:class:`YuNetDetector`, MIT licence); a vendor detector only needs :class:`FaceDetector`'s two methods.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import replace
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision import scrfd, yunet
from faceleads.vision.enhance import ENHANCEMENTS
from faceleads.vision.onnx import InferenceRunner
from faceleads.vision.types import Detection, FloatArray, FoundBy, ImageArray

Raw = tuple[FloatArray, npt.NDArray[np.float32], FloatArray]

TILE_TRIGGER = 1.5  # run the tiled pass when the global pass shrinks the image by more than this
MAX_TILE_SCALE_SIDE = 4  # the tiled pass looks at the image with its long side at most this many det_size
TILE_OVERLAP = 0.25
PAD_FRACTION = 0.4  # tight crops are padded by this share of their long side on every side
PAD_VALUE = (127, 127, 127)
UPSCALE_STEPS = (2.0, 3.0, 4.0, 6.0, 8.0)  # enlargements tried on small photos, up to det_max_upscale
# An enlargement is not tried when the enlarged long side would exceed this many det_size: beyond it the face is
# already as large as the detector's largest anchors.
UPSCALE_LIMIT_SIDE = 1.0
# Contrast-enhanced copies are only tried on photos this small (crops): a face-less video frame or scene photo
# should not pay for them.
ENHANCE_MAX_SIDE = 320


class FaceDetector(Protocol):
    """What the engine needs from a face detector (an ONNX network or a vendor SDK).

    Both methods take uint8 (H, W, 3) RGB images and return detections in image pixels, best score first, with
    five landmarks each in the detector order (image-left eye, image-right eye, nose, left and right mouth corner).
    """

    def detect(self, image: ImageArray) -> list[Detection]: ...

    def detect_in_region(self, image: ImageArray, box: FloatArray, margin: float = 0.5) -> list[Detection]: ...


def _ceil32(value: float) -> int:
    return max(32, math.ceil(value / 32.0) * 32)


def _empty() -> Raw:
    return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)


def _concat(parts: list[Raw]) -> Raw:
    parts = [p for p in parts if len(p[1])]
    if not parts:
        return _empty()
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def tile_origins(length: int, tile: int, overlap: float) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap`` share of overlap."""
    if length <= tile:
        return [0]
    step = max(1, int(tile * (1 - overlap)))
    count = math.ceil((length - tile) / step) + 1
    # Spread the tiles evenly so the last one ends exactly at the border.
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def upscale_steps(long_side: int, det_size: int, max_upscale: float) -> list[float]:
    """Enlargement factors to try on a photo whose long side is ``long_side`` px, smallest first."""
    limit = UPSCALE_LIMIT_SIDE * det_size
    steps = [f for f in UPSCALE_STEPS if f <= max_upscale and long_side * f <= limit]
    if not steps and max_upscale > 1.0 and long_side * 1.5 <= limit:
        steps = [min(max_upscale, limit / max(long_side, 1))]
    return steps


def pad_image(image: ImageArray, fraction: float = PAD_FRACTION) -> tuple[ImageArray, int]:
    """``image`` with a neutral grey border of ``fraction`` of its long side on every side, and the border width."""
    h, w = image.shape[:2]
    pad = max(1, round(fraction * max(h, w)))
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=PAD_VALUE)
    return np.asarray(padded, dtype=np.uint8), pad


def box_iou(a: npt.ArrayLike, boxes: FloatArray) -> npt.NDArray[np.float64]:
    """IoU of box ``a`` (x1, y1, x2, y2) with each of ``boxes`` (n, 4)."""
    a = np.asarray(a, dtype=np.float64).reshape(4)
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    ix1, iy1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    ix2, iy2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.maximum(0.0, ix2 - ix1) * np.maximum(0.0, iy2 - iy1)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


class AnchorDetector(ABC):
    """The passes shared by single-shot anchor detectors; subclasses run the network (:meth:`_forward`)."""

    def __init__(
        self,
        runner: InferenceRunner,
        det_size: int = 640,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_upscale: float = 4.0,
    ) -> None:
        self.runner = runner
        self.det_size = det_size
        self.max_upscale = max_upscale
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    @abstractmethod
    def _forward(self, image: ImageArray, scale: float, threshold: float) -> Raw:
        """One forward pass on ``image`` resized by ``scale``; coordinates mapped back to ``image`` pixels."""

    def _run(self, image: ImageArray, scale: float) -> Raw:
        return self._forward(image, scale, self.score_threshold)

    def _global_pass(self, image: ImageArray) -> Raw:
        h, w = image.shape[:2]
        # Never enlarged here: SCRFD finds faces down to ~10 px at their own scale, and a 250 px booking photo
        # then costs a tenth of a 640 px pass. Enlargement is a fallback (_fallbacks) for photos with no face.
        return self._run(image, min(self.det_size / max(h, w), 1.0))

    def _tiled_pass(self, image: ImageArray) -> Raw:
        """Look at a large image in overlapping det_size tiles at (up to) full resolution, for small faces."""
        h, w = image.shape[:2]
        scale = min(1.0, MAX_TILE_SCALE_SIDE * self.det_size / max(h, w))
        view: ImageArray = (
            image
            if scale == 1.0
            else np.asarray(
                cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), dtype=np.uint8
            )
        )
        vh, vw = view.shape[:2]
        tile = self.det_size
        parts: list[Raw] = []
        for y0 in tile_origins(vh, tile, TILE_OVERLAP):
            for x0 in tile_origins(vw, tile, TILE_OVERLAP):
                crop = np.ascontiguousarray(view[y0 : y0 + tile, x0 : x0 + tile])
                boxes, scores, kps = self._run(crop, 1.0)
                if not len(scores):
                    continue
                ch, cw = crop.shape[:2]
                # A face cut by an inner tile edge is seen whole by the neighbouring tile (or the global pass).
                margin = 2.0
                cut = np.zeros(len(scores), dtype=bool)
                if x0 > 0:
                    cut |= boxes[:, 0] <= margin
                if y0 > 0:
                    cut |= boxes[:, 1] <= margin
                if x0 + cw < vw:
                    cut |= boxes[:, 2] >= cw - margin
                if y0 + ch < vh:
                    cut |= boxes[:, 3] >= ch - margin
                keep = ~cut
                offset = np.array([x0, y0], dtype=np.float32)
                parts.append(
                    (
                        (boxes[keep] + np.tile(offset, 2)) / scale,
                        scores[keep],
                        (kps[keep] + offset) / scale,
                    )
                )
        return _concat(parts)

    def _padded_pass(self, image: ImageArray, scale: float | None = None) -> Raw:
        """Retry a tight crop (a face filling the photo) with a neutral border around it, optionally enlarged."""
        padded, pad = pad_image(image)
        if scale is None:
            boxes, scores, kps = self._global_pass(padded)
        else:
            boxes, scores, kps = self._run(padded, scale)
        return boxes - pad, scores, kps - pad

    def _ladder(self, image: ImageArray) -> tuple[Raw, FoundBy | None]:
        """A neutral border at the photo's own size, then enlargements without and with the border."""
        raw = self._padded_pass(image)
        if len(raw[1]):
            return raw, "padded"
        h, w = image.shape[:2]
        for factor in upscale_steps(max(h, w), self.det_size, self.max_upscale):
            raw = self._run(image, factor)
            if len(raw[1]):
                return raw, "upscaled"
            raw = self._padded_pass(image, factor)
            if len(raw[1]):
                return raw, "padded"
        return _empty(), None

    def _fallbacks(self, image: ImageArray) -> tuple[Raw, FoundBy | None]:
        """The ladder tried on a photo where the plain passes found nothing, cheapest first; for a small photo
        (a crop) then the same ladder on contrast-enhanced copies (dark, flat CCTV stills)."""
        raw, found_by = self._ladder(image)
        if found_by is not None or self.max_upscale <= 1.0 or max(image.shape[:2]) > ENHANCE_MAX_SIDE:
            return raw, found_by
        for enhance in ENHANCEMENTS:
            raw, found_by = self._ladder(enhance(image))
            if found_by is not None:
                return raw, "enhanced"
        return _empty(), None

    def detect(self, image: ImageArray) -> list[Detection]:
        """All faces in ``image`` (uint8 (H, W, 3) RGB), best score first, boxes clipped to the image.

        Each detection's ``found_by`` says which path found it: ``detector`` (the plain passes), ``padded`` (a
        border added around a tight crop, possibly enlarged too), ``upscaled`` (a small photo enlarged) or
        ``enhanced`` (the same on a contrast-enhanced copy of a small photo; the landmarks are used on the original).
        """
        h, w = image.shape[:2]
        if h < 2 or w < 2:
            return []
        parts = [self._global_pass(image)]
        if max(h, w) > TILE_TRIGGER * self.det_size:
            parts.append(self._tiled_pass(image))
        raw = _concat(parts)
        found_by: FoundBy | None = "detector"
        if not len(raw[1]):
            raw, found_by = self._fallbacks(image)
        if found_by is None:
            return []
        detections = scrfd.merge_detections(*raw, iou_threshold=self.nms_threshold)
        return [replace(self._clip(d, w, h), found_by=found_by) for d in detections]

    def best_score(self, image: ImageArray, box: npt.ArrayLike, floor: float = 0.02, min_iou: float = 0.4) -> float:
        """The detector's highest confidence, with no threshold, for a face at ``box`` in ``image`` (0 if none).

        Used to check a face placed by other means (the whole-crop fallback): the network's own belief that a
        face is there, even when below the detection threshold. ``image`` is looked at whole, at its own scale
        (or reduced to det_size).
        """
        h, w = image.shape[:2]
        boxes, scores, _ = self._forward(image, min(self.det_size / max(h, w), 1.0), floor)
        if not len(scores):
            return 0.0
        near = box_iou(box, boxes) >= min_iou
        return float(scores[near].max()) if near.any() else 0.0

    def detect_single_pass(self, image: ImageArray) -> list[Detection]:
        """Faces found by one pass over the whole image at (at most) ``det_size``: no tiles, no fallback ladder.

        For video frames (the live pipeline), where a bounded cost per frame matters more than the smallest faces:
        every detection is ``found_by="detector"``.
        """
        h, w = image.shape[:2]
        detections = scrfd.merge_detections(*self._global_pass(image), iou_threshold=self.nms_threshold)
        return [self._clip(d, w, h) for d in detections]

    def single_pass_copy(self, det_size: int, score_threshold: float, nms_threshold: float) -> AnchorDetector:
        """A detector of the same kind over the same network session, for :meth:`detect_single_pass` at other
        settings (the live pipeline's frame size and its lower score floor for the tracker); never enlarging."""
        return type(self)(
            self.runner,
            det_size=det_size,
            score_threshold=score_threshold,
            nms_threshold=nms_threshold,
            max_upscale=1.0,
        )

    def detect_in_region(self, image: ImageArray, box: FloatArray, margin: float = 0.5) -> list[Detection]:
        """Faces inside an analyst-drawn ``box`` (x1, y1, x2, y2): the region, with a margin, is searched alone.

        Used when the whole-image pass missed a face: at the region's own scale the detector finds landmarks it
        could not see before. Coordinates are returned in ``image`` pixels.
        """
        h, w = image.shape[:2]
        x1, y1, x2, y2 = (float(v) for v in box)
        bw, bh = x2 - x1, y2 - y1
        if bw < 4 or bh < 4:
            raise ValueError(f"the drawn box {bw:.0f}x{bh:.0f} px is too small to hold a face")
        rx1, ry1 = max(0, int(x1 - margin * bw)), max(0, int(y1 - margin * bh))
        rx2, ry2 = min(w, math.ceil(x2 + margin * bw)), min(h, math.ceil(y2 + margin * bh))
        region = np.ascontiguousarray(image[ry1:ry2, rx1:rx2])
        # Upscale small regions so the face reaches a size the detector sees well.
        scale = min(self.det_size / max(region.shape[:2]), max(self.max_upscale, 1.0))
        boxes, scores, kps = self._run(region, scale)
        found_by: FoundBy = "upscaled" if scale > 1.0 else "detector"
        if not len(scores):
            boxes, scores, kps = self._padded_pass(region)
            found_by = "padded"
        offset = np.array([rx1, ry1], dtype=np.float32)
        detections = scrfd.merge_detections(
            boxes + np.tile(offset, 2), scores, kps + offset, iou_threshold=self.nms_threshold
        )
        return [replace(self._clip(d, w, h), found_by=found_by) for d in detections]

    @staticmethod
    def _clip(detection: Detection, width: int, height: int) -> Detection:
        box = detection.box.copy()
        box[[0, 2]] = np.clip(box[[0, 2]], 0, width)
        box[[1, 3]] = np.clip(box[[1, 3]], 0, height)
        return replace(detection, box=box)


class ScrfdDetector(AnchorDetector):
    """SCRFD (InsightFace): any input size that is a multiple of 32, normalised RGB."""

    def _forward(self, image: ImageArray, scale: float, threshold: float) -> Raw:
        h, w = image.shape[:2]
        canvas_w, canvas_h = _ceil32(w * scale), _ceil32(h * scale)
        tensor, actual_scale = scrfd.letterbox(image, canvas_w, canvas_h)
        outputs = self.runner.run(tensor)
        boxes, scores, kps = scrfd.decode(outputs, canvas_h, canvas_w, threshold)
        return boxes / actual_scale, scores, kps / actual_scale


class YuNetDetector(AnchorDetector):
    """YuNet (OpenCV Zoo): a fixed 640x640 input; a larger view is reduced to fit it."""

    def _forward(self, image: ImageArray, scale: float, threshold: float) -> Raw:
        h, w = image.shape[:2]
        scale = min(scale, yunet.INPUT_SIZE / max(h, w))
        tensor = yunet.to_tensor(image, scale)
        sx, sy = max(1, round(w * scale)) / w, max(1, round(h * scale)) / h
        boxes, scores, kps = yunet.decode(self.runner.run(tensor), threshold)
        factor = np.array([sx, sy], dtype=np.float32)
        return (boxes / np.tile(factor, 2)).astype(np.float32), scores, (kps / factor).astype(np.float32)
