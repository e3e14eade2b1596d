"""Tiny random checkpoints: built without torch, read identically by us and by transformers."""

from __future__ import annotations

import json
import sys

from flax import nnx
import numpy as np
import pytest

from mtlws_jax.models import checkpoints, tiny


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def built(request, tmp_path_factory):
  folder = tmp_path_factory.mktemp("tiny") / request.param
  with pytest.MonkeyPatch.context() as mp:
    mp.setitem(sys.modules, "torch", None)  # any `import torch` on the way would fail
    tiny.build_tiny_checkpoint(folder, model_type=request.param, vocab_size=300, num_heads=4, max_length=40,
                               texts=list(tiny.DEFAULT_TEXTS) + ["Zyxwvut qqq zyxwvut ."] * 20)
  return request.param, folder


def test_folder_layout_and_config(built):
  model_type, folder = built
  assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in folder.iterdir()}
  config = json.loads((folder / "config.json").read_text())
  model, tok = checkpoints.load_pretrained(folder, num_tags=2)
  assert config["model_type"] == model_type and config["vocab_size"] == len(tok)
  assert config["hidden_size"] == 32 and config["num_hidden_layers"] == 2 and config["num_attention_heads"] == 4
  assert model.config.max_tokens == 40
  assert config["pad_token_id"] == tok.pad_token_id == (0 if model_type == "bert" else 1)
  # The texts passed in shaped the vocabulary.
  assert "zyxwvut" in "".join(tok.convert_ids_to_tokens(tok("zyxwvut")["input_ids"]))
  assert tok.convert_ids_to_tokens(tok("zyxwvut")["input_ids"]).count(tok.unk_token) == 0


def test_transformers_reads_it_like_we_do(built):
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  _, folder = built
  hf, info = transformers.AutoModel.from_pretrained(folder, output_loading_info=True)
  assert not info["unexpected_keys"] and not info["mismatched_keys"]
  assert {k.split(".")[0] for k in info["missing_keys"]} <= {"pooler"}  # BertModel/XLMRobertaModel add one
  model, tok = checkpoints.load_pretrained(folder, num_tags=2)
  enc = tok(["The food was great .", "Das Essen war gut , aber der Kellner war unfreundlich ."], padding=True,
            return_tensors="np")
  with torch.no_grad():
    ref = hf.eval()(input_ids=torch.tensor(enc["input_ids"]),
                    attention_mask=torch.tensor(enc["attention_mask"])).last_hidden_state.numpy()
  ours = np.asarray(nnx.jit(lambda m, i, a: m.encoder(i, a))(model, enc["input_ids"], enc["attention_mask"]))
  real = enc["attention_mask"].astype(bool)
  assert np.abs(ours[real] - ref[real]).max() < 1e-5


def test_rejects_unknown_model_type(tmp_path):
  with pytest.raises(ValueError, match="model_type"):
    tiny.build_tiny_checkpoint(tmp_path / "x", model_type="gpt2")
