"""Exact rewrites of ONNX graphs that ONNX Runtime runs faster on a CPU, applied in memory when a session is made.

PRelu (the activation of ArcFace MobileFaceNet, SFace and the 106-point landmark model) has no kernel in ONNX
Runtime's blocked (NCHWc) convolution layout: every PRelu node costs a layout change out of NCHWc and back, plus a
generic broadcast loop. In ArcFace MobileFaceNet that is about 60% of the inference time (docs/accuracy.md, *Speed*).
With a per-channel slope ``s`` below or equal to 1 the same function is

    PRelu(x) = s * x + Relu((1 - s) * x)

(for x >= 0: s x + (1 - s) x = x; for x < 0: s x + 0), i.e. two 1x1 depthwise convolutions, one with the ReLU fused
and one with the sum fused, which ONNX Runtime runs inside the blocked layout. The result equals the PRelu up to
float rounding (about 1e-6 of the output's range), so templates keep their version. Nodes where the rewrite would
not be exact (a slope above 1, a slope that is not a constant per channel, an input whose rank is not 4) are left
as they are. The shipped model files are never modified: the rewritten graph only lives in the session.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # onnx is imported only when a graph is rewritten (it is slow to import)
    import onnx


def _channel_slopes(slope: np.ndarray, channels: int | None) -> np.ndarray | None:
    """The per-channel slopes (C,) of a PRelu slope tensor applied to an NCHW input of ``channels`` channels, or None
    if it is not one slope per channel of that input."""
    per_channel = (slope.ndim == 3 and slope.shape[1:] == (1, 1)) or (
        slope.ndim == 4 and slope.shape[0] == 1 and slope.shape[2:] == (1, 1)
    )
    if not per_channel or slope.dtype != np.float32 or channels is None or slope.shape[-3] != channels:
        return None
    return slope.reshape(-1)


def _ranks_and_channels(model: onnx.ModelProto) -> dict[str, tuple[int, int | None]]:
    """Rank and channel count (dim 1, when known) of every tensor whose shape ONNX shape inference can tell."""
    import onnx

    inferred = onnx.shape_inference.infer_shapes(model)
    graph = inferred.graph
    out: dict[str, tuple[int, int | None]] = {}
    for value in [*graph.value_info, *graph.input, *graph.output]:
        tensor_type = value.type.tensor_type
        if not tensor_type.HasField("shape"):
            continue
        dims = tensor_type.shape.dim
        channels = dims[1].dim_value if len(dims) > 1 and dims[1].HasField("dim_value") else None
        out[value.name] = (len(dims), channels)
    return out


def rewrite_prelu(model: onnx.ModelProto) -> int:
    """Replace, in place, every PRelu of ``model`` that can be rewritten exactly (see the module docstring) by
    ``Conv(x, s) + Relu(Conv(x, 1 - s))`` with 1x1 depthwise convolutions; returns how many were replaced."""
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    if not any(node.op_type == "PRelu" for node in graph.node):
        return 0
    shapes = _ranks_and_channels(model)
    taken = {name for node in graph.node for name in (*node.input, *node.output)} | set(initializers)
    nodes: list[onnx.NodeProto] = []
    replaced = 0
    for node in graph.node:
        slopes = None
        if node.op_type == "PRelu" and node.input[1] in initializers:
            rank, channels = shapes.get(node.input[0], (0, None))
            if rank == 4:
                slopes = _channel_slopes(numpy_helper.to_array(initializers[node.input[1]]), channels)
        if slopes is None or not bool(np.all(slopes <= 1.0)):
            nodes.append(node)
            continue
        x, y = node.input[0], node.output[0]
        count = slopes.shape[0]
        names = [f"{y}/prelu_{part}" for part in ("slope", "complement", "scaled", "positive", "negative")]
        if any(name in taken for name in names):
            nodes.append(node)
            continue
        taken.update(names)
        slope_w, complement_w, scaled, positive, negative = names
        graph.initializer.append(numpy_helper.from_array(slopes.reshape(count, 1, 1, 1), slope_w))
        graph.initializer.append(
            numpy_helper.from_array((1.0 - slopes).astype(np.float32).reshape(count, 1, 1, 1), complement_w)
        )
        depthwise = {"group": count, "kernel_shape": [1, 1]}
        nodes += [
            helper.make_node("Conv", [x, complement_w], [scaled], name=f"{y}/prelu_conv_complement", **depthwise),
            helper.make_node("Relu", [scaled], [positive], name=f"{y}/prelu_relu"),
            helper.make_node("Conv", [x, slope_w], [negative], name=f"{y}/prelu_conv_slope", **depthwise),
            helper.make_node("Add", [negative, positive], [y], name=f"{y}/prelu_add"),
        ]
        replaced += 1
    # The replaced slope tensors stay in the graph (an old model may list them as graph inputs too); ONNX Runtime
    # drops initializers that no node reads when it builds the session.
    del graph.node[:]
    graph.node.extend(nodes)
    return replaced


def optimised_model(path: Path) -> bytes | None:
    """The serialised model at ``path`` with :func:`rewrite_prelu` applied, or None when nothing was rewritten
    (the session then loads the file itself).

    A file without the bytes ``PRelu`` (an op type is stored as plain text) has no node to rewrite: it is not
    parsed, and ``onnx`` (about half a second of CPU to import) is not imported for it.
    """
    data = path.read_bytes()
    if b"PRelu" not in data:
        return None
    import onnx

    model = onnx.load_model_from_string(data)
    if not rewrite_prelu(model):
        return None
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
