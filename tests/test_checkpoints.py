"""Hugging Face checkpoints in (folders, hub cache, .bin, bad files) and out (export, orbax)."""

from __future__ import annotations

import json
import logging
import pathlib
import shutil
import sys

from flax import nnx
import jax
import numpy as np
import pytest

from mtlws_jax.data import vocab
from mtlws_jax.errors import InputError
from mtlws_jax.models import checkpoints, tiny
from mtlws_jax.models.tagger import Tagger, merge_tagger, split_tagger, tagger_params

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _torch_ref import randomize as _randomize  # noqa: E402  (after the torch skip)

SENTENCES = ["The food was great but the service was slow .", "Hallo Welt", "Le repas était excellent ."]
TAGS = ["O", "B-LOC", "I-LOC", "B-PER"]


@nnx.jit
def _logits(model, batch):
  return model(batch)


def _encode(tokenizer):
  enc = tokenizer(SENTENCES, padding=True, return_tensors="np")
  assert (enc["attention_mask"] == 0).any()
  return {"input_ids": enc["input_ids"].astype(np.int32), "attention_mask": enc["attention_mask"].astype(np.int32)}


def _torch_out(hf_model, batch):
  with torch.no_grad():
    out = hf_model(input_ids=torch.tensor(batch["input_ids"], dtype=torch.long),
                   attention_mask=torch.tensor(batch["attention_mask"], dtype=torch.long))
  return (out.logits if hasattr(out, "logits") else out.last_hidden_state).numpy()


def _perturb(model: Tagger, seed: int = 0) -> Tagger:
  """Random biases and LayerNorm parameters too, so export mistakes cannot hide behind zeros."""
  graphdef, params, _ = split_tagger(model)
  leaves, tree = jax.tree.flatten(params)
  rng = np.random.default_rng(seed)
  leaves = [x + 0.05 * rng.standard_normal(x.shape).astype(np.float32) for x in leaves]
  return merge_tagger(graphdef, jax.tree.unflatten(tree, leaves))


@pytest.fixture(scope="module")
def tmp_module(tmp_path_factory):
  return tmp_path_factory.mktemp("ckpt")


@pytest.fixture(scope="module")
def tiny_bert(tmp_module) -> pathlib.Path:
  return tiny.build_tiny_checkpoint(tmp_module / "tiny-bert", model_type="bert", vocab_size=300, num_heads=4)


@pytest.fixture(scope="module")
def bert_mlm(tmp_module) -> pathlib.Path:
  """A transformers BertForMaskedLM folder: encoder under `bert.`, an MLM head to ignore."""
  tok = vocab.train_wordpiece(tiny.DEFAULT_TEXTS, vocab_size=300)
  config = transformers.BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                   intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
  folder = tmp_module / "bert-mlm"
  _randomize(transformers.BertForMaskedLM(config), 3).save_pretrained(folder)
  tok.save_pretrained(folder)
  return folder


@pytest.fixture(scope="module")
def xlmr_tc(tmp_module) -> pathlib.Path:
  """A transformers XLMRobertaForTokenClassification folder with a trained-looking head."""
  tok = vocab.train_unigram(tiny.DEFAULT_TEXTS, vocab_size=300)
  config = transformers.XLMRobertaConfig(
      vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
      max_position_embeddings=66, pad_token_id=tok.pad_token_id, type_vocab_size=1,
      id2label=dict(enumerate(TAGS)), label2id={t: i for i, t in enumerate(TAGS)})
  folder = tmp_module / "xlmr-tc"
  _randomize(transformers.XLMRobertaForTokenClassification(config), 4).save_pretrained(folder)
  tok.save_pretrained(folder)
  return folder


def test_loads_bert_mlm_and_matches_pytorch(bert_mlm, caplog):
  with caplog.at_level(logging.INFO, logger=checkpoints.__name__):
    model, tok = checkpoints.load_pretrained(bert_mlm, num_tags=3)
  assert "cls.predictions.transform.dense.weight" in caplog.text  # the MLM head, ignored and said so
  assert model.num_tags == 3 and model.config.model_type == "bert"
  batch = _encode(tok)
  ours = np.asarray(nnx.jit(lambda m, b: m.encoder(b["input_ids"], b["attention_mask"]))(model, batch))
  ref = _torch_out(transformers.BertModel.from_pretrained(bert_mlm).eval(), batch)
  real = batch["attention_mask"].astype(bool)
  assert np.abs(ours[real] - ref[real]).max() < 1e-5


def test_loads_token_classifier_head_when_num_tags_is_none(xlmr_tc):
  model, tok = checkpoints.load_pretrained(xlmr_tc)
  assert model.num_tags == len(TAGS)
  batch = _encode(tok)
  ref = _torch_out(transformers.AutoModelForTokenClassification.from_pretrained(xlmr_tc).eval(), batch)
  real = batch["attention_mask"].astype(bool)
  assert np.abs(np.asarray(_logits(model, batch))[real] - ref[real]).max() < 1e-5


def test_pytorch_bin_only(bert_mlm, tmp_path):
  folder = tmp_path / "bin-only"
  shutil.copytree(bert_mlm, folder)
  (folder / "model.safetensors").unlink()
  state = transformers.BertForMaskedLM.from_pretrained(bert_mlm).state_dict()
  torch.save({k: v.to(torch.float16) if "encoder.layer.0" in k else v for k, v in state.items()}, folder / "pytorch_model.bin")
  a, _ = checkpoints.load_pretrained(bert_mlm, num_tags=3)
  b, _ = checkpoints.load_pretrained(folder, num_tags=3)
  pa, pb = tagger_params(a)["encoder"], tagger_params(b)["encoder"]
  assert jax.tree.structure(pa) == jax.tree.structure(pb)
  for x, y in zip(jax.tree.leaves(pa), jax.tree.leaves(pb)):
    assert y.dtype == np.float32
    np.testing.assert_allclose(x, y, atol=2e-3)  # layer 0 went through float16

  # Without torch the same folder fails with a message saying what to install.
  import importlib
  importlib.invalidate_caches()
  with pytest.MonkeyPatch.context() as mp:
    mp.setitem(sys.modules, "torch", None)
    with pytest.raises(InputError, match="needs PyTorch") as e:
      checkpoints.load_pretrained(folder, num_tags=3)
  assert "pytorch_model.bin" in str(e.value)


def test_every_weight_problem_is_listed_at_once(tiny_bert, tmp_path):
  from safetensors.numpy import load_file, save_file
  folder = tmp_path / "bad"
  shutil.copytree(tiny_bert, folder)
  tensors = load_file(folder / "model.safetensors")
  del tensors["encoder.layer.1.attention.self.key.bias"]
  tensors["encoder.layer.0.adapter.weight"] = np.zeros((2, 2), np.float32)
  tensors["pooler.dense.weight"] = np.zeros((32, 32), np.float32)  # a known head: ignored
  tensors["encoder.layer.0.intermediate.dense.weight"] = np.zeros((65, 32), np.float32)
  save_file(tensors, folder / "model.safetensors")
  with pytest.raises(InputError) as e:
    checkpoints.load_pretrained(folder, num_tags=2)
  msg = str(e.value)
  assert msg.startswith(str(folder / "model.safetensors") + ": ")
  assert "missing 1 weight(s):\n    encoder.layer.1.attention.self.key.bias" in msg
  assert "unexpected 1 weight(s):\n    encoder.layer.0.adapter.weight" in msg
  assert "encoder.layer.0.intermediate.dense.weight: checkpoint (65, 32), model (64, 32)" in msg
  assert "pooler" not in msg


def _copy_with_config(src, dst, **changes):
  shutil.copytree(src, dst)
  config = json.loads((dst / "config.json").read_text())
  config.update(changes)
  (dst / "config.json").write_text(json.dumps(config))
  return dst


def test_unknown_architecture(tiny_bert, tmp_path):
  folder = _copy_with_config(tiny_bert, tmp_path / "gpt", model_type="gpt2", architectures=["GPT2LMHeadModel"])
  with pytest.raises(InputError, match=r"config\.json: unsupported model_type 'gpt2'.*GPT2LMHeadModel"):
    checkpoints.load_pretrained(folder, num_tags=2)


def test_vocabulary_that_does_not_fit_the_embedding(tiny_bert, tmp_path):
  rows = json.loads((tiny_bert / "config.json").read_text())["vocab_size"]
  # config.json claims fewer rows than the file has: a shape mismatch naming the embedding.
  folder = _copy_with_config(tiny_bert, tmp_path / "rows", vocab_size=rows - 10)
  with pytest.raises(InputError, match=rf"tokenizer has {rows} tokens but the word embedding has only {rows - 10}"):
    checkpoints.load_pretrained(folder, num_tags=2)
  # Embedding and config agree, but the tokenizer knows more tokens than there are rows.
  from safetensors.numpy import load_file, save_file
  tensors = load_file(folder / "model.safetensors")
  tensors["embeddings.word_embeddings.weight"] = tensors["embeddings.word_embeddings.weight"][: rows - 10]
  save_file(tensors, folder / "model.safetensors")
  with pytest.raises(InputError, match=f"tokenizer has {rows} tokens"):
    checkpoints.load_pretrained(folder, num_tags=2)
  folder = _copy_with_config(tiny_bert, tmp_path / "more", vocab_size=rows + 5)
  with pytest.raises(InputError, match=rf"embeddings\.word_embeddings\.weight: checkpoint \({rows}, 32\), model \({rows + 5}, 32\)"):
    checkpoints.load_pretrained(folder, num_tags=2)


def test_truncated_and_foreign_weight_files(tiny_bert, tmp_path):
  folder = tmp_path / "truncated"
  shutil.copytree(tiny_bert, folder)
  data = (folder / "model.safetensors").read_bytes()
  (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
  with pytest.raises(InputError, match="model.safetensors: not a readable safetensors file"):
    checkpoints.load_pretrained(folder, num_tags=2)
  (folder / "model.safetensors").write_bytes(b"PK\x03\x04 this is a zip of something else" * 10)
  with pytest.raises(InputError, match="not a readable safetensors file"):
    checkpoints.load_pretrained(folder, num_tags=2)
  (folder / "model.safetensors").unlink()
  (folder / "pytorch_model.bin").write_bytes(data[:1000])
  with pytest.raises(InputError, match="pytorch_model.bin: not a readable PyTorch state dict"):
    checkpoints.load_pretrained(folder, num_tags=2)
  torch.save({"weights": [1, 2, 3]}, folder / "pytorch_model.bin")
  with pytest.raises(InputError, match="pytorch_model.bin: expected a dict of tensors"):
    checkpoints.load_pretrained(folder, num_tags=2)
  (folder / "pytorch_model.bin").unlink()
  with pytest.raises(InputError, match="no model.safetensors.*it has: config.json"):
    checkpoints.load_pretrained(folder, num_tags=2)


def test_missing_head_and_missing_folder(tiny_bert, tmp_path):
  with pytest.raises(InputError, match="no token-classification head.*pass num_tags"):
    checkpoints.load_pretrained(tiny_bert)
  with pytest.raises(InputError, match="no such checkpoint folder"):
    checkpoints.load_pretrained(tmp_path / "not" / "there", num_tags=2)


def test_hub_ids_resolve_offline_through_the_cache(tiny_bert, tmp_path, monkeypatch):
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  cache = tmp_path / "hub"
  with pytest.raises(InputError) as e:
    checkpoints.load_pretrained("someone/absent-model", num_tags=2, cache_dir=cache)
  msg = str(e.value)
  assert "'someone/absent-model' is neither a local folder nor in the local Hugging Face cache" in msg
  assert "HF_HUB_OFFLINE=1" in msg and str(cache) in msg
  # The same id, once in the cache layout huggingface_hub writes, loads without any network.
  repo, sha = cache / "models--someone--absent-model", "0123456789abcdef0123456789abcdef01234567"
  (repo / "refs").mkdir(parents=True)
  (repo / "refs" / "main").write_text(sha)
  shutil.copytree(tiny_bert, repo / "snapshots" / sha)
  model, tok = checkpoints.load_pretrained("someone/absent-model", num_tags=2, cache_dir=cache)
  assert model.config.vocab_size == len(tok)


def test_export_hf_predicts_the_same_tags(xlmr_tc, tiny_bert, tmp_path):
  for name, src in [("xlmr", xlmr_tc), ("bert", tiny_bert)]:
    model, tok = checkpoints.load_pretrained(src, num_tags=len(TAGS), seed=1)
    model = _perturb(model, seed=2)
    folder = checkpoints.export_hf(model, tok, TAGS, tmp_path / name)
    hf = transformers.AutoModelForTokenClassification.from_pretrained(folder).eval()
    assert hf.config.id2label == dict(enumerate(TAGS))
    hf_tok = transformers.AutoTokenizer.from_pretrained(folder)
    batch = _encode(tok)
    np.testing.assert_array_equal(_encode(hf_tok)["input_ids"], batch["input_ids"])
    ours, ref = np.asarray(_logits(model, batch)), _torch_out(hf, batch)
    real = batch["attention_mask"].astype(bool)
    assert np.abs(ours[real] - ref[real]).max() < 1e-5, name
    np.testing.assert_array_equal(ours.argmax(-1)[real], ref.argmax(-1)[real])
    # And back into our tagger, head included.
    again, _ = checkpoints.load_pretrained(folder)
    np.testing.assert_array_equal(np.asarray(_logits(again, batch)), ours)


def test_export_refuses_srl_inputs(tiny_bert, tmp_path):
  model, tok = checkpoints.load_pretrained(tiny_bert, num_tags=2, use_predicate=True)
  with pytest.raises(ValueError, match="predicate / POS"):
    checkpoints.export_hf(model, tok, ["O", "A0"], tmp_path / "srl")


