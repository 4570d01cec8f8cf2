"""A thin protocol around ONNX Runtime sessions, so that decoding and alignment can be tested without models."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from faceleads.errors import ModelError


class InferenceRunner(Protocol):
    """Runs one model on one input tensor and returns its outputs in the model's declared order."""

    input_name: str
    output_names: list[str]

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]: ...


class OrtRunner:
    """An :class:`InferenceRunner` backed by an ONNX Runtime CPU session.

    ``rewrite``: run the graph with the exact rewrites of :mod:`faceleads.vision.graphopt` (PRelu as depthwise
    convolutions), which give the same outputs faster; the file itself is never changed.
    """

    def __init__(self, path: Path, threads: int, spinning: bool = False, *, rewrite: bool = False) -> None:
        import onnxruntime as ort

        from faceleads.vision.graphopt import optimised_model

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # Spinning threads keep a core busy between operators; on shared cores they slow everyone down.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        try:
            source: str | bytes = str(path)
            if rewrite:
                source = optimised_model(path) or source
            self._session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load model {path.name}: {exc}") from exc
        self.input_name = self._session.get_inputs()[0].name
        self.output_names = [output.name for output in self._session.get_outputs()]
        self.path = path

    def run(self, tensor: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        outputs = self._session.run(self.output_names, {self.input_name: tensor})
        return [np.asarray(output, dtype=np.float32) for output in outputs]
