"""Exact graph rewrites (faceleads.vision.graphopt): synthetic graphs run by ONNX Runtime before and after, then the
real models the engine loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from faceleads.config import Settings
from faceleads.errors import ModelError
from faceleads.vision.engine import FaceEngine
from faceleads.vision.graphopt import optimised_model, rewrite_prelu
from faceleads.vision.imaging import load_image
from faceleads.vision.models import model_path
from faceleads.vision.onnx import OrtRunner

RNG = np.random.default_rng(7)


def _conv_prelu_model(slope: np.ndarray, *, slope_is_input: bool = False, channels: int = 6) -> onnx.ModelProto:
    """input (N, 4, 8, 8) -> 3x3 Conv to ``channels`` -> PRelu(slope) -> output."""
    weight = RNG.normal(size=(channels, 4, 3, 3)).astype(np.float32)
    initializers = [numpy_helper.from_array(weight, "w")]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])]
    if slope_is_input:
        inputs.append(helper.make_tensor_value_info("slope", TensorProto.FLOAT, list(slope.shape)))
    else:
        initializers.append(numpy_helper.from_array(slope.astype(np.float32), "slope"))
    graph = helper.make_graph(
        [
            helper.make_node("Conv", ["x", "w"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
            helper.make_node("PRelu", ["c", "slope"], ["y"]),
        ],
        "conv_prelu",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", channels, 8, 8])],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7)


def _run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feeds)[0])


def _ops(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def test_per_channel_prelu_becomes_depthwise_convolutions_with_the_same_outputs() -> None:
    # Negative, zero, small, and exactly-1 slopes: the identity must hold for each.
    slope = np.array([-0.3, 0.0, 0.1, 0.25, 0.68, 1.0], dtype=np.float32).reshape(6, 1, 1)
    model = _conv_prelu_model(slope)
    x = RNG.normal(size=(3, 4, 8, 8)).astype(np.float32)
    before = _run(model, {"x": x})
    assert rewrite_prelu(model) == 1
    onnx.checker.check_model(model)
    assert "PRelu" not in _ops(model)
    assert _ops(model).count("Conv") == 3
    after = _run(model, {"x": x})
    assert (before < 0).any() and (before > 0).any()
    np.testing.assert_allclose(after, before, rtol=1e-5, atol=1e-5)


def test_prelu_the_rewrite_cannot_reproduce_exactly_is_left_alone() -> None:
    cases = [
        _conv_prelu_model(np.array([0.2, 1.5, 0.1, 0.0, 0.3, 0.4]).reshape(6, 1, 1)),  # a slope above 1
        _conv_prelu_model(np.full(8, 0.25)),  # shape (8,): broadcast over the width, not per channel
        _conv_prelu_model(np.full((6, 1, 1), 0.25), slope_is_input=True),  # not a constant
    ]
    for model in cases:
        ops = _ops(model)
        assert rewrite_prelu(model) == 0
        assert _ops(model) == ops


def test_file_without_prelu_is_loaded_as_it_is(tmp_path: Path) -> None:
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 4, 4])],
    )
    path = tmp_path / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)], ir_version=7), str(path))
    assert optimised_model(path) is None


def test_corrupt_model_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"PRelu" + b"\x00garbage" * 10)
    with pytest.raises(ModelError, match=r"broken\.onnx"):
        OrtRunner(path, 1, rewrite=True)


@pytest.mark.parametrize("filename", ["w600k_mbf.onnx", "2d106det.onnx"])
def test_shipped_models_give_the_same_outputs_rewritten(filename: str) -> None:
    path = model_path(Settings(), filename)
    plain, rewritten = OrtRunner(path, 1), OrtRunner(path, 1, rewrite=True)
    size = 112 if filename == "w600k_mbf.onnx" else 192
    tensor = RNG.uniform(-1, 1, size=(2, 3, size, size)).astype(np.float32)
    for a, b in zip(plain.run(tensor), rewritten.run(tensor), strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-4 * float(np.abs(a).max()))
    model = onnx.load_model_from_string(optimised_model(path))  # type: ignore[arg-type]
    assert "PRelu" not in _ops(model)


def test_templates_and_version_do_not_change_with_the_rewrite(engine: FaceEngine, lfw_dir: Path) -> None:
    # The session fixture engine runs the default settings (rewrite on); the same photos through the shipped graphs.
    plain = FaceEngine(Settings(ort_rewrite_graphs=False, embed_batch_size=32))
    images = [load_image(p).pixels for p in sorted((lfw_dir / "images").rglob("*.jpg"))[:6]]
    fast, slow = engine.detect_batch(images), plain.detect_batch(images)
    assert engine.model_version == plain.model_version
    pairs = [(a, b) for fa, fb in zip(fast, slow, strict=True) for a, b in zip(fa, fb, strict=True)]
    assert len(pairs) >= 6
    for a, b in pairs:
        assert a.found_by == b.found_by
        assert float(np.dot(a.embedding, b.embedding)) > 0.99999  # type: ignore[arg-type]
        assert a.embedding_norm == pytest.approx(b.embedding_norm, rel=1e-4)
