"""Contrast enhancement of dark, flat CCTV crops, used only to help the detector find a face in them.

The enhanced pixels are never embedded or stored: the face found on them is aligned on the original photo.
"""

from __future__ import annotations

import cv2
import numpy as np

from faceleads.vision.types import ImageArray

STRETCH_PERCENTILES = (1.0, 99.0)
# Edge-preserving smoothing before the stretch: a dark CCTV still's sensor noise and JPEG blocks, stretched with
# its faint signal, hide the face from the detector (measured in docs/accuracy.md).
SMOOTH_DIAMETER = 5
SMOOTH_SIGMA_COLOR = 40.0
SMOOTH_SIGMA_SPACE = 5.0
CLAHE_CLIP = 2.0
CLAHE_TILES = (4, 4)


def autolevel(image: ImageArray) -> ImageArray:
    """Stretch the luminance range between its 1st and 99th percentile to 0..255 (all channels alike)."""
    luma = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    low, high = np.percentile(luma, STRETCH_PERCENTILES)
    if high - low < 1.0:
        return image
    stretched = (image.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(stretched, 0, 255).astype(np.uint8)


def denoised_autolevel(image: ImageArray) -> ImageArray:
    """:func:`autolevel` of an edge-preserving (bilateral) smoothing of ``image``: noise is removed before it is
    stretched with the signal."""
    smooth = cv2.bilateralFilter(image, SMOOTH_DIAMETER, SMOOTH_SIGMA_COLOR, SMOOTH_SIGMA_SPACE)
    return autolevel(np.ascontiguousarray(smooth, dtype=np.uint8))


def local_contrast(image: ImageArray) -> ImageArray:
    """Contrast-limited adaptive histogram equalisation (CLAHE) of the lightness channel."""
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    clahe = cv2.createCLAHE(clipLimit=CLAHE_CLIP, tileGridSize=CLAHE_TILES)
    lab[..., 0] = clahe.apply(np.ascontiguousarray(lab[..., 0]))
    return np.ascontiguousarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB), dtype=np.uint8)


ENHANCEMENTS = (denoised_autolevel, local_contrast)
