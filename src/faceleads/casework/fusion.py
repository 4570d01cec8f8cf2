"""Multi-image probe fusion: several images of the same unknown person searched as one quality-weighted template.

Each probe image contributes its unit embedding weighted by its face quality (``Quality.overall``, floored at
:data:`MIN_WEIGHT` so that a poor but usable shot still counts a little). The weighted mean is re-normalised to
unit length, so the fused template is searched exactly like a single one. Averaging cancels the independent noise
of individual poor shots (pose, blur, lighting) while the identity signal they share adds up; that is why five poor
CCTV shots fused rank the right subject far higher than any one of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from faceleads.errors import ValidationError
from faceleads.vision.types import FloatArray

MIN_WEIGHT = 0.05
MAX_FUSED = 50


@dataclass(frozen=True)
class FusedTemplate:
    """The fused unit template and the normalised weight of each input (same order, summing to 1)."""

    vector: FloatArray
    weights: list[float]


def fuse_templates(embeddings: Sequence[FloatArray], qualities: Sequence[float]) -> FusedTemplate:
    """Quality-weighted mean of unit embeddings, re-normalised. Refuses empty, mismatched or degenerate input."""
    if not embeddings:
        raise ValidationError("fusion needs at least one probe template")
    if len(embeddings) != len(qualities):
        raise ValidationError(f"{len(embeddings)} templates but {len(qualities)} quality scores")
    if len(embeddings) > MAX_FUSED:
        raise ValidationError(f"at most {MAX_FUSED} probe images can be fused, got {len(embeddings)}")
    matrix = np.stack([np.asarray(e, dtype=np.float64).reshape(-1) for e in embeddings])
    if not np.all(np.isfinite(matrix)):
        raise ValidationError("a probe template contains NaN or infinite values")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValidationError("a probe template is all zeros")
    matrix /= norms
    q = np.asarray([float(x) for x in qualities], dtype=np.float64)
    if not np.all(np.isfinite(q)):
        raise ValidationError("quality scores must be finite numbers")
    weights = np.maximum(q, MIN_WEIGHT)
    weights /= weights.sum()
    fused = weights @ matrix
    norm = float(np.linalg.norm(fused))
    if norm < 1e-6:
        raise ValidationError("the probe templates cancel out (they cannot show the same face)")
    return FusedTemplate((fused / norm).astype(np.float32), [float(w) for w in weights])


__all__ = ["MAX_FUSED", "MIN_WEIGHT", "FusedTemplate", "fuse_templates"]
