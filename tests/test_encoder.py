"""Encoder config parsing and numerical parity with transformers' PyTorch BERT / XLM-R."""

from __future__ import annotations

import dataclasses

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtlws_jax.data import vocab
from mtlws_jax.errors import InputError
from mtlws_jax.models import checkpoints, tiny
from mtlws_jax.models.encoder import EncoderConfig, XLMREncoder, make_encoder

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _torch_ref import randomize as _randomize  # noqa: E402  (after the torch skip)

# One shape for every randomly initialized encoder here: jax compiles each init op once per shape.
SMALL = EncoderConfig(vocab_size=300, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, max_position_embeddings=64)
SENTENCES = ["The food was great but the service was slow .", "Hallo Welt", "Il governo italiano ha approvato la legge ."]


@pytest.fixture(scope="module")
def wordpiece():
  return vocab.train_wordpiece(tiny.DEFAULT_TEXTS, vocab_size=300)


@pytest.fixture(scope="module")
def unigram():
  return vocab.train_unigram(tiny.DEFAULT_TEXTS, vocab_size=300)


def _hf_config(model_type, tokenizer, **kw):
  cls = transformers.BertConfig if model_type == "bert" else transformers.XLMRobertaConfig
  offset = 0 if model_type == "bert" else tokenizer.pad_token_id + 1
  return cls(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
             intermediate_size=64, max_position_embeddings=64 + offset, pad_token_id=tokenizer.pad_token_id,
             **{"type_vocab_size": 2, **kw})


def _ours_from_torch(hf_model, hf_config):
  config = EncoderConfig.from_hf_config(hf_config.to_dict())
  state = {k: v.numpy() for k, v in hf_model.state_dict().items()}
  model, ignored = checkpoints.tagger_from_state_dict(state, config, num_tags=3)
  return model.encoder, ignored


@nnx.jit(static_argnames="deterministic")
def _run(encoder, ids, mask, key=None, deterministic=True):
  """One compiled call per encoder shape (eager op-by-op dispatch compiles every op separately)."""
  return encoder(ids, mask, rngs=None if deterministic else nnx.Rngs(dropout=key))


def _compare(hf_model, encoder, tokenizer, token_type_ids=False):
  enc = tokenizer(SENTENCES, padding=True, return_tensors="np")
  ids, mask = enc["input_ids"], enc["attention_mask"]
  assert (mask == 0).any(), "the batch must contain padding"
  tt = np.zeros_like(ids)
  if token_type_ids:  # exercise the token-type table on the second half of each sequence
    tt[:, ids.shape[1] // 2:] = 1
  with torch.no_grad():
    ref = hf_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                   token_type_ids=torch.tensor(tt)).last_hidden_state.numpy()
  ours = np.asarray(nnx.jit(lambda e, i, m, t: e(i, m, t))(encoder, ids, mask, tt))
  real = mask.astype(bool)
  return np.abs(ours[real] - ref[real]).max()


@pytest.mark.parametrize("act", ["gelu", "gelu_new"])
def test_bert_matches_pytorch_with_padding(wordpiece, act):
  hf_config = _hf_config("bert", wordpiece, hidden_act=act)
  hf_model = _randomize(transformers.BertModel(hf_config), seed=1)
  encoder, ignored = _ours_from_torch(hf_model, hf_config)
  assert ignored == ["pooler.dense.bias", "pooler.dense.weight"]
  assert _compare(hf_model, encoder, wordpiece, token_type_ids=True) < 1e-5


def test_xlmr_matches_pytorch_with_padding(unigram):
  hf_config = _hf_config("xlm-roberta", unigram, type_vocab_size=1)
  hf_model = _randomize(transformers.XLMRobertaModel(hf_config), seed=2)
  encoder, _ = _ours_from_torch(hf_model, hf_config)
  assert isinstance(encoder, XLMREncoder)
  assert _compare(hf_model, encoder, unigram) < 1e-5


def test_xlmr_positions_follow_hf(unigram):
  config = EncoderConfig(model_type="xlm-roberta", vocab_size=len(unigram), pad_token_id=1,
                         max_position_embeddings=66)
  encoder = nnx.eval_shape(lambda: make_encoder(config, rngs=nnx.Rngs(0)))
  ids = np.array([[0, 7, 8, 2, 1, 1], [0, 9, 2, 1, 1, 1]])
  ours = np.asarray(encoder.position_ids(ids, ids != 1))
  emb = transformers.models.xlm_roberta.modeling_xlm_roberta.XLMRobertaEmbeddings
  ref = emb.create_position_ids_from_input_ids(torch.tensor(ids), padding_idx=1).numpy()
  np.testing.assert_array_equal(ours, ref)
  np.testing.assert_array_equal(ours[0], [2, 3, 4, 5, 1, 1])


@pytest.fixture(scope="module")
def small_f32():
  return make_encoder(SMALL, rngs=nnx.Rngs(0))


def test_bfloat16_compute_keeps_float32_params(wordpiece, small_f32):
  f32 = small_f32
  bf16 = make_encoder(SMALL, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
  assert {p.dtype for p in jax.tree.leaves(nnx.state(bf16, nnx.Param))} == {jnp.dtype(jnp.float32)}
  enc = wordpiece(SENTENCES, padding=True, return_tensors="np")
  a = np.asarray(_run(f32, enc["input_ids"], enc["attention_mask"]))
  b = _run(bf16, enc["input_ids"], enc["attention_mask"])
  assert b.dtype == jnp.bfloat16
  b = np.asarray(b, dtype=np.float32)
  assert np.isfinite(b).all()
  real = enc["attention_mask"].astype(bool)
  err = np.abs(a[real] - b[real])
  assert err.max() < 0.1 and err.mean() < 0.02, (err.max(), err.mean())


def test_dropout_only_with_rngs(small_f32, wordpiece):
  encoder = small_f32
  enc = wordpiece(SENTENCES, padding=True, return_tensors="np")
  ids, mask = enc["input_ids"], enc["attention_mask"]
  a, b = _run(encoder, ids, mask), _run(encoder, ids, mask)
  np.testing.assert_array_equal(a, b)
  key = jax.random.key(1)
  c = _run(encoder, ids, mask, key, deterministic=False)
  d = _run(encoder, ids, mask, key, deterministic=False)
  e = _run(encoder, ids, mask, jax.random.key(2), deterministic=False)
  assert not np.allclose(a, c) and not np.allclose(c, e)
  np.testing.assert_array_equal(c, d)


def test_too_long_input_is_refused():
  config = dataclasses.replace(SMALL, model_type="xlm-roberta", pad_token_id=1, max_position_embeddings=10)
  encoder = nnx.eval_shape(lambda: make_encoder(config, rngs=nnx.Rngs(0)))
  shape = lambda ids: nnx.eval_shape(lambda e, i: e(i, i != 1), encoder, ids).shape
  assert shape(np.full((1, 8), 5)) == (1, 8, 32)
  with pytest.raises(ValueError, match="exceeds the 8 positions"):
    shape(np.full((1, 9), 5))


def test_config_from_hf_reads_fields_and_defaults():
  d = transformers.XLMRobertaConfig(vocab_size=120, hidden_size=48, num_hidden_layers=3, num_attention_heads=6,
                                    intermediate_size=96, hidden_act="gelu_new").to_dict()
  c = EncoderConfig.from_hf_config(d)
  assert (c.model_type, c.vocab_size, c.hidden_size, c.num_hidden_layers, c.head_dim) == ("xlm-roberta", 120, 48, 3, 8)
  assert (c.pad_token_id, c.position_offset, c.max_tokens, c.hidden_act) == (1, 2, 510, "gelu_new")
  assert EncoderConfig.from_hf_config(c.to_hf_config()) == c


@pytest.mark.parametrize("change, message", [
    ({"model_type": "gpt2"}, "unsupported model_type 'gpt2'"),
    ({"hidden_act": "quick_gelu"}, "hidden_act 'quick_gelu' is not supported"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type 'relative_key'"),
    ({"num_attention_heads": 5}, "not a multiple of num_attention_heads"),
    ({"is_decoder": True}, "decoder"),
])
def test_config_errors_name_the_file(change, message):
  d = transformers.BertConfig(vocab_size=100, hidden_size=32, num_attention_heads=4).to_dict()
  d.update(change)
  with pytest.raises(InputError, match=message) as e:
    EncoderConfig.from_hf_config(d, "ckpt/config.json")
  assert str(e.value).startswith("ckpt/config.json: ")
