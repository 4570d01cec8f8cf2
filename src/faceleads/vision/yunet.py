"""YuNet (OpenCV Zoo, MIT licence) decoding as small pure functions: input tensor, anchor grid, boxes and landmarks.

The 2023mar ONNX export takes a fixed 1x3x640x640 tensor of raw 0..255 values in BGR order (OpenCV's convention,
no normalisation). For each stride (8, 16, 32) and each cell of that feature map (one anchor per cell, row-major)
it outputs a class score and an objectness (both already sigmoid), a box as (dx, dy, log w, log h) in units of the
stride around the cell's corner, and five landmarks as (dx, dy) pairs in units of the stride. The face score is
sqrt(cls * obj). The landmark order is the subject's right eye, left eye, nose tip, right and left mouth corner,
i.e. image-left eye first: the same order as SCRFD and the ArcFace template.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from faceleads.vision.types import FloatArray, ImageArray

STRIDES: tuple[int, ...] = (8, 16, 32)
INPUT_SIZE = 640


def to_tensor(image: ImageArray, scale: float, size: int = INPUT_SIZE) -> npt.NDArray[np.float32]:
    """``image`` (uint8 RGB) resized by ``scale`` at the top-left of a black ``size`` x ``size`` canvas, as the
    (1, 3, size, size) float32 BGR tensor of raw pixel values. The scaled image must fit the canvas."""
    h, w = image.shape[:2]
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    if new_w > size or new_h > size:
        raise ValueError(f"a {new_w}x{new_h} image does not fit the {size}x{size} YuNet input")
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    canvas = np.zeros((size, size, 3), dtype=np.float32)
    canvas[:new_h, :new_w] = resized[..., ::-1]
    return np.ascontiguousarray(canvas.transpose(2, 0, 1)[None])


def grid(size: int, stride: int) -> FloatArray:
    """Cell corners (x, y) in pixels of a ``size`` input's feature map at ``stride``, row-major: (cells, 2)."""
    cells = size // stride
    ys, xs = np.mgrid[:cells, :cells]
    return (np.stack([xs, ys], axis=-1).reshape(-1, 2) * stride).astype(np.float32)


def decode(
    outputs: list[npt.NDArray[np.float32]], score_threshold: float, size: int = INPUT_SIZE
) -> tuple[FloatArray, npt.NDArray[np.float32], FloatArray]:
    """Decode YuNet's 12 outputs (cls, obj, bbox, kps for strides 8, 16, 32, in that order) before NMS.

    Returns boxes (n, 4) x1, y1, x2, y2, scores (n,) and landmarks (n, 5, 2), in input-canvas pixels.
    """
    count = len(STRIDES)
    if len(outputs) != 4 * count:
        raise ValueError(f"YuNet gives {4 * count} outputs, got {len(outputs)}")
    boxes_all, scores_all, kps_all = [], [], []
    for level, stride in enumerate(STRIDES):
        cls = np.clip(outputs[level].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[level + count].reshape(-1), 0.0, 1.0)
        bbox = outputs[level + 2 * count].reshape(-1, 4)
        kps = outputs[level + 3 * count].reshape(-1, 10)
        corners = grid(size, stride)
        if corners.shape[0] != cls.shape[0]:
            raise ValueError(f"stride {stride}: {cls.shape[0]} scores for {corners.shape[0]} cells")
        scores = np.sqrt(cls * obj)
        keep = np.nonzero(scores >= score_threshold)[0]
        if keep.size == 0:
            continue
        c = corners[keep]
        centre = c + bbox[keep, :2] * stride
        wh = np.exp(np.clip(bbox[keep, 2:4], -10.0, 10.0)) * stride
        boxes_all.append(np.concatenate([centre - wh / 2, centre + wh / 2], axis=1))
        scores_all.append(scores[keep])
        kps_all.append(kps[keep].reshape(-1, 5, 2) * stride + c[:, None, :])
    if not scores_all:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
    return (
        np.concatenate(boxes_all).astype(np.float32),
        np.concatenate(scores_all).astype(np.float32),
        np.concatenate(kps_all).astype(np.float32),
    )
