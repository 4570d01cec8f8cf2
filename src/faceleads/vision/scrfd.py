"""SCRFD decoding as small pure functions: letterbox, anchor grid, distance decoding and NMS.

SCRFD predicts, for every anchor point of three feature maps (strides 8, 16 and 32, two anchors per cell), a face
score, the distances from the anchor point to the four box sides and the offsets of five landmarks, all in units
of the stride.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision.types import Detection, FloatArray, ImageArray

STRIDES: tuple[int, ...] = (8, 16, 32)
ANCHORS_PER_CELL = 2
INPUT_MEAN = 127.5
INPUT_STD = 128.0


def letterbox(image: ImageArray, width: int, height: int) -> tuple[npt.NDArray[np.float32], float]:
    """Resize ``image`` (uint8 (H, W, 3) RGB) keeping its aspect ratio into a ``height`` x ``width`` canvas.

    The image sits at the top-left corner; the rest is padded with the mean (zero after normalisation).
    Returns the NCHW float32 tensor (1, 3, height, width), normalised as SCRFD expects, and the scale
    factor from image to canvas coordinates.
    """
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    canvas = np.full((height, width, 3), INPUT_MEAN, dtype=np.float32)
    canvas[:new_h, :new_w] = resized
    tensor = ((canvas - INPUT_MEAN) / INPUT_STD).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(tensor, dtype=np.float32), scale


@lru_cache(maxsize=64)
def anchor_centers(height: int, width: int, stride: int, per_cell: int = ANCHORS_PER_CELL) -> FloatArray:
    """Anchor points of a (height, width) feature map: float32 (height*width*per_cell, 2) as x, y in pixels.

    Row-major over cells; each cell's point is repeated ``per_cell`` times (one per anchor).
    """
    ys, xs = np.mgrid[:height, :width]
    centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
    if per_cell > 1:
        centers = np.repeat(centers, per_cell, axis=0)
    centers.setflags(write=False)
    return centers


def distance_to_box(points: FloatArray, distances: FloatArray) -> FloatArray:
    """Boxes (n, 4) x1, y1, x2, y2 from anchor points (n, 2) and distances (n, 4) left, top, right, bottom."""
    return np.concatenate([points - distances[:, :2], points + distances[:, 2:4]], axis=1).astype(np.float32)


def distance_to_keypoints(points: FloatArray, offsets: FloatArray) -> FloatArray:
    """Keypoints (n, k, 2) from anchor points (n, 2) and offsets (n, 2k) as dx0, dy0, dx1, dy1, ..."""
    n = offsets.shape[0]
    return (points[:, None, :] + offsets.reshape(n, -1, 2)).astype(np.float32)


def nms(boxes: FloatArray, scores: npt.NDArray[np.float32], iou_threshold: float) -> npt.NDArray[np.intp]:
    """Greedy non-maximum suppression; returns the indices kept, best score first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.intp)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = np.maximum(0.0, x2 - x1) * np.maximum(0.0, y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        ix1 = np.maximum(x1[best], x1[rest])
        iy1 = np.maximum(y1[best], y1[rest])
        ix2 = np.minimum(x2[best], x2[rest])
        iy2 = np.minimum(y2[best], y2[rest])
        inter = np.maximum(0.0, ix2 - ix1) * np.maximum(0.0, iy2 - iy1)
        union = areas[best] + areas[rest] - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


def decode(
    outputs: list[npt.NDArray[np.float32]],
    input_height: int,
    input_width: int,
    score_threshold: float,
) -> tuple[FloatArray, npt.NDArray[np.float32], FloatArray]:
    """Decode raw SCRFD outputs (scores, boxes, keypoints for each stride, in that order) of one image.

    Returns boxes (n, 4), scores (n,) and landmarks (n, 5, 2) in input-canvas pixels, before NMS.
    """
    count = len(STRIDES)
    all_boxes, all_scores, all_kps = [], [], []
    for level, stride in enumerate(STRIDES):
        scores = outputs[level].reshape(-1)
        box_dist = outputs[level + count].reshape(-1, 4) * stride
        kps_off = outputs[level + 2 * count].reshape(-1, 10) * stride
        points = anchor_centers(input_height // stride, input_width // stride, stride)
        if points.shape[0] != scores.shape[0]:
            raise ValueError(
                f"stride {stride}: {scores.shape[0]} scores for {points.shape[0]} anchors "
                f"(input {input_width}x{input_height} must be a multiple of 32)"
            )
        selected = np.nonzero(scores >= score_threshold)[0]
        if selected.size == 0:
            continue
        all_scores.append(scores[selected])
        all_boxes.append(distance_to_box(points[selected], box_dist[selected]))
        all_kps.append(distance_to_keypoints(points[selected], kps_off[selected]))
    if not all_scores:
        return (np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32))
    return np.concatenate(all_boxes), np.concatenate(all_scores).astype(np.float32), np.concatenate(all_kps)


def merge_detections(
    boxes: FloatArray, scores: npt.NDArray[np.float32], landmarks: FloatArray, iou_threshold: float
) -> list[Detection]:
    """Apply NMS and package the survivors as :class:`Detection` objects, best score first."""
    keep = nms(boxes, scores, iou_threshold)
    return [
        Detection(box=boxes[i].astype(np.float32), landmarks=landmarks[i].astype(np.float32), score=float(scores[i]))
        for i in keep
    ]
