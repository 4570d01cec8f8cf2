"""SCRFD face detection over whole images, with tiling for small faces and padding for tight crops."""

from __future__ import annotations

import math

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision import scrfd
from faceleads.vision.onnx import InferenceRunner
from faceleads.vision.types import Detection, FloatArray, ImageArray

Raw = tuple[FloatArray, npt.NDArray[np.float32], FloatArray]

TILE_TRIGGER = 1.5  # run the tiled pass when the global pass shrinks the image by more than this
MAX_TILE_SCALE_SIDE = 4  # the tiled pass looks at the image with its long side at most this many det_size
TILE_OVERLAP = 0.25
PAD_FRACTION = 0.4  # tight crops are padded by this share of their long side on every side


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


class ScrfdDetector:
    """Runs SCRFD and decodes its outputs into image-space detections."""

    def __init__(
        self,
        runner: InferenceRunner,
        det_size: int = 640,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        max_upscale: float = 1.0,
    ) -> None:
        self.runner = runner
        self.det_size = det_size
        self.max_upscale = max_upscale
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold

    def _run(self, image: ImageArray, scale: float) -> Raw:
        """One forward pass on ``image`` resized by ``scale``; coordinates mapped back to ``image`` pixels."""
        h, w = image.shape[:2]
        canvas_w, canvas_h = _ceil32(w * scale), _ceil32(h * scale)
        tensor, actual_scale = scrfd.letterbox(image, canvas_w, canvas_h)
        outputs = self.runner.run(tensor)
        boxes, scores, kps = scrfd.decode(outputs, canvas_h, canvas_w, self.score_threshold)
        return boxes / actual_scale, scores, kps / actual_scale

    def _global_pass(self, image: ImageArray) -> Raw:
        h, w = image.shape[:2]
        # Small photos are not blown up to det_size: SCRFD finds faces down to ~10 px at their own scale,
        # and a 250 px booking photo then costs a tenth of a 640 px pass.
        return self._run(image, min(self.det_size / max(h, w), self.max_upscale))

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

    def _padded_pass(self, image: ImageArray) -> Raw:
        """Retry a tight crop (a face filling the photo) with a neutral border around it."""
        h, w = image.shape[:2]
        pad = round(PAD_FRACTION * max(h, w))
        padded = np.asarray(
            cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127)), dtype=np.uint8
        )
        boxes, scores, kps = self._global_pass(padded)
        return boxes - pad, scores, kps - pad

    def detect(self, image: ImageArray) -> list[Detection]:
        """All faces in ``image`` (uint8 (H, W, 3) RGB), best score first, boxes clipped to the image."""
        h, w = image.shape[:2]
        parts = [self._global_pass(image)]
        if max(h, w) > TILE_TRIGGER * self.det_size:
            parts.append(self._tiled_pass(image))
        raw = _concat(parts)
        if not len(raw[1]):
            raw = self._padded_pass(image)
        detections = scrfd.merge_detections(*raw, iou_threshold=self.nms_threshold)
        return [self._clip(d, w, h) for d in detections]

    def detect_single_pass(self, image: ImageArray) -> list[Detection]:
        """Faces found by one pass over the whole image at (at most) ``det_size``: no tiles, no padded retry.

        For video frames (the live pipeline), where a bounded cost per frame matters more than the smallest faces.
        """
        h, w = image.shape[:2]
        detections = scrfd.merge_detections(*self._global_pass(image), iou_threshold=self.nms_threshold)
        return [self._clip(d, w, h) for d in detections]

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
        scale = min(self.det_size / max(region.shape[:2]), 4.0)
        boxes, scores, kps = self._run(region, scale)
        if not len(scores):
            boxes, scores, kps = self._padded_pass(region)
        offset = np.array([rx1, ry1], dtype=np.float32)
        detections = scrfd.merge_detections(
            boxes + np.tile(offset, 2), scores, kps + offset, iou_threshold=self.nms_threshold
        )
        return [self._clip(d, w, h) for d in detections]

    @staticmethod
    def _clip(detection: Detection, width: int, height: int) -> Detection:
        box = detection.box.copy()
        box[[0, 2]] = np.clip(box[[0, 2]], 0, width)
        box[[1, 3]] = np.clip(box[[1, 3]], 0, height)
        return Detection(box=box, landmarks=detection.landmarks, score=detection.score)
