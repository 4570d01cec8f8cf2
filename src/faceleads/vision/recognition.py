"""Face recognition models behind one small interface, flip averaging, and score-level fusion of several models.

A :class:`Recognizer` turns aligned 112x112 RGB face crops into unit-length templates. Any engine can be one: the
ONNX models shipped in PyPI wheels (:class:`OnnxRecognizer`), or a vendor's SDK wrapped in a class with the same
four members. Several recognizers are used side by side through :class:`FusedRecognizer`, whose template is the
concatenation of each member's unit template scaled by the square root of its weight: the cosine similarity of two
fused templates is then exactly the weighted mean of the members' cosine similarities (score-level fusion), so
the search index, the encryption and every consumer of templates work unchanged, only with a longer vector.

Versions: a template records the version of what produced it, ``name@<first 12 hex of the file's SHA-256>``,
with ``+flip`` when the mirror image was averaged in, and ``fused(<member>*<weight>,...)`` for a fusion. Templates
of different versions are never compared (see docs/models.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from faceleads.vision.onnx import InferenceRunner
from faceleads.vision.types import FloatArray, ImageArray

ALIGNED_SIZE = 112


@runtime_checkable
class Recognizer(Protocol):
    """What the engine needs from a face recognition model (an ONNX network or a vendor SDK).

    ``embed`` takes aligned crops, uint8 (n, 112, 112, 3) RGB (ArcFace template alignment), and returns unit-length
    float32 templates (n, dim) and the raw norms (n,) before normalisation (a quality signal; 0 for a zero output).
    ``version`` must change whenever the templates would: weights, preprocessing, flip averaging.
    """

    name: str
    version: str
    dim: int

    def embed(self, crops: npt.NDArray[np.uint8]) -> tuple[FloatArray, npt.NDArray[np.float32]]: ...


@dataclass(frozen=True)
class InputFormat:
    """How a network wants its 112x112 input: ``(pixel - mean) / std``, channel order, batch limit."""

    mean: float = 127.5
    std: float = 127.5
    bgr: bool = False  # True when the network was trained on OpenCV's BGR order
    max_batch: int = 0  # 0 = any batch size; 1 for graphs exported with a fixed batch dimension


def l2_normalise(vectors: FloatArray) -> tuple[FloatArray, npt.NDArray[np.float32]]:
    """Unit-length rows and the original norms. A zero row stays zero (norm 0)."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    safe = np.where(norms > 0, norms, 1.0)[:, None]
    return (vectors / safe).astype(np.float32), norms


def preprocess(crops: npt.NDArray[np.uint8], fmt: InputFormat) -> npt.NDArray[np.float32]:
    """uint8 (n, H, W, 3) RGB crops -> float32 (n, 3, H, W) in the network's normalisation and channel order."""
    batch = crops[..., ::-1] if fmt.bgr else crops
    tensor = (batch.astype(np.float32) - fmt.mean) / fmt.std
    return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))


def with_mirrors(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """The crops followed by their horizontal mirror images, (2n, H, W, 3): one batch for flip averaging."""
    return np.concatenate([crops, crops[:, :, ::-1]], axis=0)


def average_mirrors(raw: FloatArray) -> FloatArray:
    """Mean of each raw embedding and its mirror's, given the (2n, d) output of a :func:`with_mirrors` batch."""
    n = raw.shape[0] // 2
    return ((raw[:n] + raw[n:]) / 2).astype(np.float32)


def stack_crops(crops: Sequence[ImageArray] | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Aligned crops as one contiguous uint8 (n, 112, 112, 3) array; refuses any other shape."""
    batch = np.asarray(crops if isinstance(crops, np.ndarray) else np.stack(list(crops)), dtype=np.uint8)
    if batch.ndim != 4 or batch.shape[1:] != (ALIGNED_SIZE, ALIGNED_SIZE, 3):
        raise ValueError(f"aligned crops must be (n, {ALIGNED_SIZE}, {ALIGNED_SIZE}, 3) uint8, got {batch.shape}")
    return batch


class OnnxRecognizer:
    """A recognition network run by an :class:`InferenceRunner`, optionally averaged with the mirror image."""

    def __init__(
        self,
        runner: InferenceRunner,
        *,
        name: str,
        digest: str,
        dim: int,
        fmt: InputFormat,
        flip: bool = True,
        batch_size: int = 32,
    ) -> None:
        self.runner = runner
        self.name = name
        self.dim = dim
        self.fmt = fmt
        self.flip = flip
        self.batch_size = fmt.max_batch or batch_size
        self.version = f"{name}@{digest[:12]}" + ("+flip" if flip else "")

    def raw(self, crops: npt.NDArray[np.uint8]) -> FloatArray:
        """The network's raw outputs (n, dim) for a stack of crops, in batches the graph accepts."""
        outputs = [
            self.runner.run(preprocess(crops[start : start + self.batch_size], self.fmt))[0]
            for start in range(0, len(crops), self.batch_size)
        ]
        out = np.concatenate(outputs).astype(np.float32).reshape(len(crops), -1)
        if out.shape[1] != self.dim:
            raise ValueError(f"{self.name}: expected {self.dim}-d embeddings, the model gave {out.shape[1]}")
        return out

    def embed(self, crops: npt.NDArray[np.uint8]) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        """Unit templates (n, dim) and raw norms (n,) of aligned crops (uint8 (n, 112, 112, 3) RGB)."""
        if len(crops) == 0:
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32)
        batch = stack_crops(crops)
        # Mirrors go through the network in the same batches as the originals: one call instead of two.
        raw = average_mirrors(self.raw(with_mirrors(batch))) if self.flip else self.raw(batch)
        return l2_normalise(raw)


def fuse_templates(parts: Sequence[FloatArray], weights: Sequence[float]) -> FloatArray:
    """Concatenate unit templates of several models, each scaled by sqrt(weight / sum of weights).

    ``parts``: one (n, d_i) float32 array of unit rows per model. The result (n, sum d_i) has unit rows when every
    part has (a zero part row, e.g. a model that failed, contributes nothing), and the dot product of two fused rows
    is the weighted mean of the per-model cosine similarities.
    """
    if len(parts) != len(weights) or not parts:
        raise ValueError(f"{len(parts)} template sets for {len(weights)} weights")
    total = float(sum(weights))
    if total <= 0 or any(w < 0 for w in weights):
        raise ValueError(f"fusion weights must be non-negative with a positive sum, got {list(weights)}")
    scaled = [
        np.asarray(p, dtype=np.float32) * np.float32(math.sqrt(w / total)) for p, w in zip(parts, weights, strict=True)
    ]
    return np.ascontiguousarray(np.concatenate(scaled, axis=1), dtype=np.float32)


def split_template(template: FloatArray, dims: Sequence[int], weights: Sequence[float]) -> list[FloatArray]:
    """Inverse of :func:`fuse_templates` for one template: the members' unit templates (zero weights give zeros)."""
    vector = np.asarray(template, dtype=np.float32).reshape(-1)
    if vector.size != sum(dims):
        raise ValueError(f"a fused template of {list(dims)} has {sum(dims)} values, got {vector.size}")
    total = float(sum(weights))
    out, start = [], 0
    for dim, weight in zip(dims, weights, strict=True):
        factor = math.sqrt(weight / total) if weight > 0 else 0.0
        part = vector[start : start + dim]
        out.append((part / factor).astype(np.float32) if factor else np.zeros(dim, np.float32))
        start += dim
    return out


def fused_version(versions: Sequence[str], weights: Sequence[float]) -> str:
    """The version string of a fusion; a single member with any weight is simply that member's version."""
    if len(versions) == 1:
        return versions[0]
    return "fused(" + ",".join(f"{v}*{w:g}" for v, w in zip(versions, weights, strict=True)) + ")"


class FusedRecognizer:
    """Several recognizers side by side; the template is their weighted score-level fusion (see module doc)."""

    def __init__(self, members: Sequence[Recognizer], weights: Sequence[float] | None = None) -> None:
        if not members:
            raise ValueError("at least one recognizer is needed")
        self.members = list(members)
        self.weights = [1.0] * len(self.members) if weights is None else [float(w) for w in weights]
        if len(self.weights) != len(self.members):
            raise ValueError(f"{len(self.members)} recognizers but {len(self.weights)} weights")
        self.dim = sum(m.dim for m in self.members)
        self.version = fused_version([m.version for m in self.members], self.weights)
        self.name = "+".join(m.name for m in self.members)

    @property
    def single(self) -> bool:
        """Whether this is just one model (its templates are that model's own)."""
        return len(self.members) == 1

    def embed_members(
        self, crops: npt.NDArray[np.uint8]
    ) -> list[tuple[Recognizer, FloatArray, npt.NDArray[np.float32]]]:
        """Each member's unit templates and raw norms for the same crops."""
        batch = stack_crops(crops) if len(crops) else np.zeros((0, ALIGNED_SIZE, ALIGNED_SIZE, 3), np.uint8)
        return [(m, *m.embed(batch)) for m in self.members]

    def compose(self, per_member: Sequence[FloatArray]) -> FloatArray:
        """The fused templates (n, dim) from each member's unit templates (n, d_i), in member order."""
        if self.single:
            return np.asarray(per_member[0], dtype=np.float32)
        return fuse_templates(per_member, self.weights)

    def embed(self, crops: npt.NDArray[np.uint8]) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        """Fused unit templates and the first member's raw norms."""
        results = self.embed_members(crops)
        return self.compose([r[1] for r in results]), results[0][2]
