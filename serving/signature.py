"""Names and axes of the serving graph (docs/contracts.md, "Artifact"), checked on the loaded file.

Kept free of torch so the worker's runner can import it without loading PyTorch (~1 s, ~300 MB).
"""

from __future__ import annotations

import onnxruntime as ort

INPUT_NAMES = (
    "session_items",
    "session_types",
    "session_mask",
    "item_matrix",
    "item_bias",
    "exclude_seen",
    "bonus_rows",
    "bonus_values",
)
OUTPUT_NAMES = ("top_scores", "top_indices", "session_vec")
INT8_INPUTS = ("item_codes", "item_scales")  # the int8 variant's extra inputs, after the eight
# exclude_seen and the co-occurrence bonus are optional for callers: the exporter gives them
# default initializers (True; an empty [1, 0] bonus), so a caller that feeds only the five inputs
# of docs/contracts.md gets seen items masked and the model's scores alone.
REQUIRED_INPUTS = INPUT_NAMES[:5]
OPTIONAL_INPUTS = INPUT_NAMES[5:6]
BONUS_INPUTS = INPUT_NAMES[6:8]  # absent from files exported before the hybrid: the runner serves them without


def has_bonus(session: ort.InferenceSession) -> bool:
    """Whether a loaded file takes the sparse co-occurrence bonus (``bonus_rows``/``bonus_values``)."""
    return set(BONUS_INPUTS) <= {i.name for i in session.get_overridable_initializers()}


def check_signature(session: ort.InferenceSession, int8: bool = False) -> str:
    """Names and dynamic axes of a loaded file (``int8``: of the int8 variant); returns "" when
    right, else what is wrong."""
    inputs = {i.name: i.shape for i in session.get_inputs()}  # without inputs that have defaults
    optional = {i.name for i in session.get_overridable_initializers()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    required = list(REQUIRED_INPUTS) + (list(INT8_INPUTS) if int8 else [])
    if list(inputs) != required:
        return f"inputs {list(inputs)} != {required}"
    if not set(OPTIONAL_INPUTS) <= optional:
        return f"optional inputs {sorted(optional)} lack {', '.join(OPTIONAL_INPUTS)}"
    if list(outputs) != list(OUTPUT_NAMES):
        return f"outputs {list(outputs)} != {list(OUTPUT_NAMES)}"
    for name in ("session_items", "session_types", "session_mask"):
        if not all(isinstance(a, str) for a in inputs[name]):
            return f"input {name} has static axes {inputs[name]} (batch and sequence must be dynamic)"
    item_axes = [inputs["item_matrix"][0], inputs["item_bias"][0]]
    if int8:
        item_axes += [inputs["item_codes"][1], inputs["item_scales"][0]]
    if not all(isinstance(a, str) for a in item_axes):
        return "item axis of an item input is static (catalogue growth would need a re-export)"
    if not all(isinstance(outputs[name][0], str) for name in OUTPUT_NAMES):
        return "batch axis of an output is static"
    return ""


def session_options(threads: int = 0, spinning: bool = True) -> ort.SessionOptions:
    """Graph optimisation on (constant folding, attention/LayerNorm/GELU fusions); ``threads``
    0 = onnxruntime's default (one per core); ``spinning``: let idle ones spin-wait (fastest
    when the cores are otherwise free)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    if not spinning:
        # Idle intra-op threads sleep instead of spin-waiting: on 2 cores shared with the worker's
        # event loop, the broker and Redis, spinning cost ~30% more CPU per batch for no speed-up.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # onnxruntime warns that the exclude_seen default "may prevent const folding": it is meant to.
    opts.log_severity_level = 3
    return opts
