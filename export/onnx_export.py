"""``torch.onnx.export`` of :class:`ServingGraph` with dynamic batch, sequence and catalogue axes.

Uses the TorchScript exporter (``dynamo=False``): measured here to export a 2-layer
``nn.TransformerEncoder`` with padding mask + scoring + ``topk`` in under a second with all
three axes dynamic. fp32 uses opset 17 (native LayerNormalization, which onnxruntime fuses);
the fp16 variant uses opset 16 because the opset-17 exporter emits a LayerNormalization with
mixed float/float16 type bindings that onnxruntime refuses to load (seen with torch 2.13).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from streamrec.export.serving_graph import INPUT_NAMES, INT8_INPUTS, OUTPUT_NAMES, ServingGraph
from streamrec.serving.item_index import quantize_items

OPSET_FP32 = 17
OPSET_FP16 = 16
_SESSION_AXES = {0: "batch", 1: "seq"}
DYNAMIC_AXES = {
    "session_items": _SESSION_AXES,
    "session_types": _SESSION_AXES,
    "session_mask": _SESSION_AXES,
    "item_matrix": {0: "items"},
    "item_bias": {0: "items"},
    "item_codes": {1: "items"},
    "item_scales": {0: "items"},
    "top_scores": {0: "batch"},
    "top_indices": {0: "batch"},
    "session_vec": {0: "batch"},
}


def dummy_inputs(n_items: int, d: int, length: int, batch: int = 2, int8: bool = False) -> tuple[torch.Tensor, ...]:
    """Trace inputs. Batch 2 and a left-padded first row, so no size-1 axis gets specialised."""
    g = torch.Generator().manual_seed(0)
    items = torch.randint(0, n_items, (batch, length), generator=g)
    types = torch.randint(1, 5, (batch, length), generator=g)
    mask = torch.ones(batch, length, dtype=torch.bool)
    mask[0, : length // 2] = False
    matrix = torch.randn(n_items, d, generator=g)
    args = (items, types, mask, matrix, torch.zeros(n_items), torch.tensor(True))
    if not int8:
        return args
    codes, scales = quantize_items(matrix.numpy())
    return (*args, torch.from_numpy(codes), torch.from_numpy(scales))


def export_serving_graph(
    tower: nn.Module, path: Path, *, k: int, d: int, session_length: int, half: bool = False, int8: bool = False
) -> None:
    """Write the serving chain for ``tower`` to ``path`` (ONNX, weights inline; ~1.5 MB at d=128)."""
    graph = ServingGraph(tower.eval(), k, half=half, int8=int8).eval()
    args = dummy_inputs(max(4 * (k + session_length), 256), d, session_length, int8=int8)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and nested-tensor warnings about the fast path
        torch.onnx.export(
            graph,
            args,
            str(path),
            dynamo=False,
            input_names=list(INPUT_NAMES) + (list(INT8_INPUTS) if int8 else []),
            output_names=list(OUTPUT_NAMES),
            dynamic_axes=DYNAMIC_AXES,
            opset_version=OPSET_FP16 if half else OPSET_FP32,
            do_constant_folding=True,
            custom_opsets={"com.microsoft": 1} if int8 else None,
        )
    _default_exclude_seen(path)


def _default_exclude_seen(path: Path) -> None:
    """Give the ``exclude_seen`` input a default (True) initializer, so callers that feed only
    the five inputs of docs/contracts.md get seen items masked."""
    model = onnx.load(str(path))
    if not any(i.name == "exclude_seen" for i in model.graph.input):
        return
    model.graph.initializer.append(numpy_helper.from_array(np.array(True), "exclude_seen"))
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
