"""ArcFace embedding of aligned 112x112 crops, batched and L2-normalised."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from faceleads.vision.onnx import InferenceRunner
from faceleads.vision.types import FloatArray, ImageArray

EMBEDDING_DIM = 512
INPUT_MEAN = 127.5
INPUT_STD = 127.5


def preprocess(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """uint8 (n, 112, 112, 3) RGB crops -> float32 (n, 3, 112, 112) normalised to [-1, 1]."""
    tensor = (crops.astype(np.float32) - INPUT_MEAN) / INPUT_STD
    return np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))


def l2_normalise(vectors: FloatArray) -> tuple[FloatArray, npt.NDArray[np.float32]]:
    """Unit-length rows and the original norms. A zero row stays zero (norm 0)."""
    norms = np.linalg.norm(vectors, axis=1).astype(np.float32)
    safe = np.where(norms > 0, norms, 1.0)[:, None]
    return (vectors / safe).astype(np.float32), norms


class ArcFaceEmbedder:
    """Embeds aligned crops with an ArcFace ONNX model."""

    def __init__(self, runner: InferenceRunner, batch_size: int = 32) -> None:
        self.runner = runner
        self.batch_size = batch_size

    def embed(self, crops: list[ImageArray] | npt.NDArray[np.uint8]) -> tuple[FloatArray, npt.NDArray[np.float32]]:
        """Embeddings float32 (n, 512), L2-normalised, and their raw norms (n,)."""
        if len(crops) == 0:
            return np.zeros((0, EMBEDDING_DIM), np.float32), np.zeros(0, np.float32)
        batch = np.stack(list(crops)) if isinstance(crops, list) else crops
        outputs = [
            self.runner.run(preprocess(batch[start : start + self.batch_size]))[0]
            for start in range(0, len(batch), self.batch_size)
        ]
        raw = np.concatenate(outputs).astype(np.float32)
        return l2_normalise(raw)
