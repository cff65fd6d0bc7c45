"""Fine-tuning the language model with the session tower (``encoder.text_finetune``).

The frozen text tower runs the language model once per catalogue and trains only the projection
on top. Fine-tuning lets the top layers of the language model learn from behaviour too, on the
same next-item loss. Running the whole model for every candidate at every step would cost an epoch
minutes on a CPU. The frozen lower layers never change, so they run once: their output per item
(token hidden states padded to the catalogue's longest text, [N, t, T]) is cached in memory, and
each step runs only the trainable top layers, the mean pooling and the projection for the step's
candidates.

Training ends with the tuned layers as plain weights: for LoRA the adapters are merged into them.
They are kept as a partial state dict of the text model (``encoder.layer.<i>.*`` keys, what
:class:`~streamrec.encoder.text.TextModel` applies over the stock weights). The model directory
stores them in ``text_layers.pt``, and the exporter builds ``text.onnx`` from them, so the weights
that serve are the tuned ones. The artifact names the stock model only as the base (its tokenizer
and its other layers), and names the tuned layers by their checksum.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from streamrec.encoder.text import TextModel, state_digest
from streamrec.errors import UserError
from streamrec.settings.encoder import EncoderSettings

log = logging.getLogger(__name__)
LORA_TARGETS = ("query", "key", "value", "dense")  # every linear map of a BERT layer
CACHE_BATCH = 64


@dataclass(frozen=True)
class FineTune:
    """What ``encoder.text_finetune`` resolved to: 'last' or 'lora' on the top ``layers``."""

    method: str
    layers: int
    lr: float
    lora_rank: int = 8

    def describe(self) -> str:
        return f"{self.method} (top {self.layers} layer{'s' if self.layers > 1 else ''})"


def resolve(s: EncoderSettings, device: torch.device) -> FineTune | None:
    """``encoder.text_finetune`` for a run on ``device``: None = frozen. 'auto' fine-tunes the
    last layers on CUDA only: on a CPU every step runs those layers for every candidate
    (the cost per epoch: docs/results/text-finetune.md)."""
    setting = s.text_finetune
    if setting == "auto":
        setting = "last" if device.type == "cuda" else "off"
    if setting == "off":
        return None
    return FineTune(setting, s.text_finetune_layers, s.text_finetune_lr, s.text_lora_rank)


class TunedText(nn.Module):
    """Catalogue rows -> text-model embeddings [.., T] through the trainable top layers, from the
    frozen layers' cached output. Rows without text embed to zero."""

    def __init__(
        self, lm: nn.Module, first: int, hidden: torch.Tensor, mask: torch.Tensor, has_text: torch.Tensor
    ) -> None:
        super().__init__()
        self.config = lm.config
        self.first = first  # index of the first trained layer in the text model
        self.layers = nn.ModuleList(copy.deepcopy(layer) for layer in lm.encoder.layer[first:])
        # Not in state_dict: the cache is rebuilt from the catalogue, and best-epoch copies stay small.
        self.register_buffer("hidden", hidden, persistent=False)  # [N, t, T] float32
        self.register_buffer("mask", mask, persistent=False)  # [N, t] int64
        self.register_buffer("has_text", has_text, persistent=False)  # [N] float32: 0 = no text, a zero row

    @classmethod
    def build(
        cls,
        directory: Path,
        texts: Sequence[str],
        plan: FineTune,
        max_tokens: int,
        device: torch.device,
        progress: bool = False,
    ) -> TunedText:
        """Load the text model, run its frozen layers over every text once, and keep their output."""
        from tqdm import tqdm

        model = TextModel(directory, str(device))
        lm = model.pooled.lm
        n_layers = len(lm.encoder.layer)
        if plan.layers > n_layers:
            raise UserError(
                f"encoder.text_finetune_layers is {plan.layers}, "
                f"but the text model {directory.name} has {n_layers} layers"
            )
        first = n_layers - plan.layers
        # An empty text still tokenizes to [CLS] [SEP]: every row stays finite, and ``has_text`` zeroes it.
        tok = model.tokenize([t if t.strip() else "" for t in texts], max_tokens)
        ids, mask = tok["input_ids"], tok["attention_mask"]  # [N, t], padded to the longest text
        has_text = torch.tensor([float(bool(t.strip())) for t in texts], device=device)  # [N]
        hidden = torch.zeros(len(texts), ids.shape[1], model.dim, device=device)  # [N, t, T]
        batches = range(0, len(texts), CACHE_BATCH)
        with torch.inference_mode():
            for start in tqdm(batches, desc="frozen text layers", unit="batch", disable=not progress):
                sl = slice(start, start + CACHE_BATCH)
                out = lm(
                    input_ids=ids[sl],
                    attention_mask=mask[sl],
                    token_type_ids=torch.zeros_like(ids[sl]),
                    output_hidden_states=True,
                )
                hidden[sl] = out.hidden_states[first]  # the input of the first trained layer
        mb = hidden.numel() * 4 / 2**20
        log.info(
            "text fine-tuning: %s, frozen layers' output cached (%d x %d tokens, %.0f MB)",
            plan.describe(),
            *ids.shape,
            mb,
        )
        tuned = cls(lm, first, hidden.clone(), mask.clone(), has_text).to(device)
        if plan.method == "lora":
            tuned.layers = lora_layers(tuned.layers, plan.lora_rank)
        return tuned

    def forward(self, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of rows ``idx`` [M] (all rows when None) -> [M, T], L2-normalised as
        :class:`~streamrec.encoder.text.MeanPooled` makes them."""
        from transformers.masking_utils import create_bidirectional_mask

        h = self.hidden if idx is None else self.hidden[idx]  # [M, t, T]
        m = self.mask if idx is None else self.mask[idx]  # [M, t]
        keep = self.has_text if idx is None else self.has_text[idx]  # [M]
        t = max(int(m.sum(1).max()), 1)  # right-padded: the rows' longest text
        h, m = h[:, :t], m[:, :t]  # [M, t', T], [M, t']
        att = create_bidirectional_mask(config=self.config, inputs_embeds=h, attention_mask=m)
        for layer in self._stack():
            h = layer(h, att)  # [M, t', T]
        w = m.unsqueeze(-1).to(h.dtype)  # [M, t', 1]
        pooled = (h * w).sum(1) / w.sum(1).clamp(min=1.0)  # [M, T]
        return F.normalize(pooled.float(), dim=-1) * keep.unsqueeze(-1)  # [M, T]; zero for rows without text

    def _stack(self) -> nn.ModuleList:
        """The layers to run: the plain ones, or the ones a peft LoraModel wraps."""
        return self.layers.model if hasattr(self.layers, "merge_and_unload") else self.layers

    def embed_all(self, chunk: int = 256) -> torch.Tensor:
        """Every row's embedding [N, T], without gradients (what validation and the model keep)."""
        was = self.training
        self.eval()
        with torch.no_grad():
            rows = torch.arange(self.hidden.shape[0], device=self.hidden.device)
            out = torch.cat([self(rows[i : i + chunk]) for i in range(0, len(rows), chunk)])
        self.train(was)
        return out

    def layer_state(self) -> dict[str, torch.Tensor]:
        """The tuned layers as a partial state dict of the text model (LoRA merged in), on CPU."""
        layers = self.layers
        if hasattr(layers, "merge_and_unload"):  # a peft LoraModel: the adapters folded into the weights
            layers = copy.deepcopy(layers).merge_and_unload()
        return {
            f"encoder.layer.{self.first + i}.{k}": v.detach().cpu().clone()
            for i, layer in enumerate(layers)
            for k, v in layer.state_dict().items()
        }

    def describe(self, plan: FineTune) -> dict:
        """The model config's ``text_finetune`` entry: how the layers were tuned and their checksum."""
        state = self.layer_state()
        return {"method": plan.method, "layers": plan.layers, "first_layer": self.first, "sha256": state_digest(state)}


def lora_layers(layers: nn.ModuleList, rank: int) -> nn.Module:
    """``layers`` with LoRA adapters (peft) on every linear map; only the adapters train."""
    try:
        from peft import LoraConfig, LoraModel
    except ImportError:
        raise UserError("encoder.text_finetune 'lora' needs peft (pip install peft)") from None
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(LORA_TARGETS))
    return LoraModel(layers, config, "default")
