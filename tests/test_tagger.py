"""Tagger: pure apply_fn (jit, vmap over stacked params, dropout by key), loss, predictions."""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtlws_jax.models.encoder import EncoderConfig
from mtlws_jax.models.tagger import (Tagger, init_head_params, merge_tagger, split_tagger,
                                     tagger_params, token_cross_entropy)

CONFIG = EncoderConfig(model_type="xlm-roberta", vocab_size=300, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=64, max_position_embeddings=66, pad_token_id=1)
NUM_TAGS, NUM_POS = 5, 4


def _batch():
  ids = np.array([[0, 11, 12, 13, 2, 1], [0, 21, 22, 2, 1, 1]], np.int32)
  mask = (ids != 1).astype(np.int32)
  return {
      "input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids),
      "labels": np.array([[-1, 0, 3, -1, -1, -1], [-1, 4, 1, -1, -1, -1]], np.int32),
      "predicate_ids": np.array([[0, 0, 1, 0, 0, 0], [0, 1, 0, 0, 0, 0]], np.int32),
      "pos_ids": np.array([[0, 1, 2, 3, 0, 0], [0, 4, 4, 0, 0, 0]], np.int32),
      "word_ids": np.array([[-1, 0, 1, -1, -1, -1], [-1, 0, 1, -1, -1, -1]], np.int32),
      "example_ids": np.array([0, 1], np.int32),
  }


@pytest.fixture(scope="module")
def srl():
  model = Tagger(CONFIG, NUM_TAGS, num_pos=NUM_POS, use_predicate=True, dropout=0.3, rngs=nnx.Rngs(0))
  graphdef, params, apply_fn = split_tagger(model)
  return model, graphdef, params, jax.jit(apply_fn), apply_fn


def test_params_are_a_plain_float32_pytree(srl):
  model, _, params, _, _ = srl
  assert set(params) == {"encoder", "classifier", "predicate_embeddings", "pos_embeddings"}
  assert set(params["encoder"]["layers"]) == {"0", "1"}
  assert params["predicate_embeddings"]["embedding"].shape == (2, 32)
  assert params["pos_embeddings"]["embedding"].shape == (NUM_POS + 1, 32)
  assert params["classifier"]["kernel"].shape == (32, NUM_TAGS)
  assert all(isinstance(x, jax.Array) and x.dtype == jnp.float32 for x in jax.tree.leaves(params))
  n = sum(x.size for x in jax.tree.leaves(params))
  assert n == sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


def test_apply_fn_is_pure(srl):
  model, _, params, apply_jit, _ = srl
  batch = _batch()
  logits = apply_jit(params, batch)
  assert logits.shape == (2, 6, NUM_TAGS) and logits.dtype == jnp.float32
  np.testing.assert_array_equal(logits, apply_jit(params, batch))


def test_dropout_follows_the_key(srl):
  _, _, params, apply_jit, _ = srl
  batch = _batch()
  plain = apply_jit(params, batch)
  a = apply_jit(params, batch, jax.random.key(1))
  b = apply_jit(params, batch, jax.random.key(1))
  c = apply_jit(params, batch, jax.random.key(2))
  np.testing.assert_array_equal(a, b)
  assert not np.allclose(a, plain) and not np.allclose(a, c)


def test_predicate_and_pos_inputs_change_the_logits(srl):
  _, _, params, apply_jit, _ = srl
  batch = _batch()
  base = np.asarray(apply_jit(params, batch))
  moved = dict(batch, predicate_ids=np.roll(batch["predicate_ids"], 1, axis=1))
  assert not np.allclose(base, apply_jit(params, moved))
  other_pos = dict(batch, pos_ids=np.where(batch["pos_ids"] > 0, 1, 0).astype(np.int32))
  assert not np.allclose(base, apply_jit(params, other_pos))
  with pytest.raises(KeyError, match="predicate_ids"):
    apply_jit(params, {k: v for k, v in batch.items() if k != "predicate_ids"})


def test_vmap_over_stacked_params(srl):
  _, _, params, apply_jit, apply_fn = srl
  batch = _batch()
  other = jax.tree.map(lambda x: x * 0.9, params)
  stacked = jax.tree.map(lambda a, b: jnp.stack([a, b]), params, other)
  both = jax.jit(jax.vmap(apply_fn, in_axes=(0, None)))(stacked, batch)
  assert both.shape == (2, 2, 6, NUM_TAGS)
  np.testing.assert_allclose(both[0], apply_jit(params, batch), atol=1e-5)
  np.testing.assert_allclose(both[1], apply_jit(other, batch), atol=1e-5)


def test_token_cross_entropy_masks_and_averages():
  logits = np.array([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.0], [9.0, -9.0, 3.0]]], np.float32)
  labels = np.array([[0, 2, -1]], np.int32)
  log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  expected = np.mean([-log_p[0, 0, 0], -log_p[0, 1, 2]])
  loss_and_grad = jax.jit(jax.value_and_grad(token_cross_entropy))
  loss, _ = loss_and_grad(logits, labels)
  np.testing.assert_allclose(loss, expected, rtol=1e-6)
  loss, grad = loss_and_grad(logits, np.full((1, 3), -1, np.int32))
  assert float(loss) == 0.0 and np.isfinite(grad).all() and not np.any(grad)


def test_gradients_reach_every_parameter(srl):
  _, _, params, _, apply_fn = srl
  batch = _batch()
  grads = jax.jit(jax.grad(lambda p: token_cross_entropy(apply_fn(p, batch, jax.random.key(0)), batch["labels"])))(params)
  for path, g in jax.tree_util.tree_leaves_with_path(grads):
    name = jax.tree_util.keystr(path)
    assert np.isfinite(g).all(), name
    if "token_type_embeddings" not in name:  # only row 0 of that table is used
      assert np.abs(g).max() > 0, name


def test_the_eval_step_predicts_the_argmax(srl):
  """The one prediction step (train/steps.make_eval_step, used by selection, predict and the report)."""
  from mtlws_jax.train import steps
  _, _, params, apply_jit, apply_fn = srl
  batch = dict(_batch())
  batch["labels"] = np.zeros(batch["input_ids"].shape, np.int32)
  pred = np.asarray(steps.make_eval_step(apply_fn)(params, batch)["pred_ids"])
  assert pred.dtype == np.int32 and pred.shape == (2, 6)
  np.testing.assert_array_equal(pred, np.argmax(apply_jit(params, batch), -1))


def test_merge_tagger_round_trips(srl):
  model, graphdef, params, apply_jit, _ = srl
  trained = jax.tree.map(lambda x: x + 0.01, params)
  merged = merge_tagger(graphdef, trained)
  assert isinstance(merged, Tagger) and merged.num_pos == NUM_POS and merged.use_predicate
  leaves = jax.tree.leaves(tagger_params(merged))
  for a, b in zip(leaves, jax.tree.leaves(trained)):
    np.testing.assert_array_equal(a, b)


def test_head_params_without_an_encoder():
  heads = init_head_params(CONFIG, 7, num_pos=3, use_predicate=True, seed=1)
  assert set(heads) == {"classifier", "predicate_embeddings", "pos_embeddings"}
  assert heads["classifier"]["kernel"].shape == (32, 7) and not np.any(heads["classifier"]["bias"])
  assert 0.005 < float(jnp.std(heads["classifier"]["kernel"])) < 0.05  # BERT's 0.02 init
  with pytest.raises(ValueError, match="num_tags"):
    Tagger(CONFIG, 0, rngs=nnx.Rngs(0))
