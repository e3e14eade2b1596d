"""Mixed precision and the fast paths: bf16 compute tracks float32, parameters stay float32; the
fused attention and the gather-free position / token-type embeddings equal the reference paths."""

from __future__ import annotations

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtlws_jax.models.encoder import EncoderConfig, make_encoder
from mtlws_jax.models.tagger import Tagger, split_tagger
from mtlws_jax.train import optim, steps

CONFIGS = {
    "bert": EncoderConfig(model_type="bert", vocab_size=300, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=64, max_position_embeddings=64),
    "xlm-roberta": EncoderConfig(model_type="xlm-roberta", vocab_size=300, hidden_size=32, num_hidden_layers=2,
                                 num_attention_heads=4, intermediate_size=64, max_position_embeddings=66,
                                 pad_token_id=1),
}


def _batch(pad: int, rows: int = 4, length: int = 12, seed: int = 0) -> dict:
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, 300, size=(rows, length)).astype(np.int32)
  lengths = rng.integers(3, length + 1, size=rows)
  mask = (np.arange(length)[None] < lengths[:, None]).astype(np.int32)
  ids = np.where(mask == 1, ids, pad)
  labels = np.where(mask == 1, rng.integers(0, 5, size=(rows, length)), -1).astype(np.int32)
  return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.mark.parametrize("model_type", list(CONFIGS))
def test_gather_free_embeddings_and_fused_attention_equal_the_reference(model_type):
  cfg = CONFIGS[model_type]
  batch = _batch(cfg.pad_token_id)
  ref = make_encoder(cfg, rngs=nnx.Rngs(0), attention="einsum")
  fused = make_encoder(cfg, rngs=nnx.Rngs(0), attention="fused")
  nnx.update(fused, nnx.state(ref))
  ids, mask = jnp.asarray(batch["input_ids"]), jnp.asarray(batch["attention_mask"])
  # the reference: every embedding looked up by id (positions as transformers computes them)
  emb = ref.embeddings
  looked_up = emb(ids, ref.position_ids(ids, mask), jnp.zeros_like(ids))
  sliced = emb(ids, ref.position_rows(ids), emb.token_type_embeddings.embedding[...][0])
  np.testing.assert_allclose(np.asarray(sliced), np.asarray(looked_up), atol=1e-6)
  a = np.asarray(ref(ids, mask, jnp.zeros_like(ids)))  # explicit token types: the lookup path
  b = np.asarray(fused(ids, mask))                    # broadcast token type, fused attention
  real = batch["attention_mask"].astype(bool)
  np.testing.assert_allclose(b[real], a[real], atol=2e-5)


def test_auto_attention_uses_the_einsum_path_only_with_attention_dropout():
  cfg = CONFIGS["bert"]
  batch = _batch(0)
  auto, ref = (Tagger(cfg, 5, dropout=0.1, rngs=nnx.Rngs(0), attention=a) for a in ("auto", "einsum"))
  _, p, apply_auto = split_tagger(auto)
  _, _, apply_ref = split_tagger(ref)
  key = jax.random.key(3)
  # training (attention dropout on): the same masks as the einsum path, bit for bit
  np.testing.assert_array_equal(np.asarray(apply_auto(p, batch, key)), np.asarray(apply_ref(p, batch, key)))
  np.testing.assert_allclose(np.asarray(apply_auto(p, batch)), np.asarray(apply_ref(p, batch)), atol=2e-5)


def test_bfloat16_training_tracks_float32_and_keeps_float32_parameters():
  """20 Adam steps on the tiny tagger: the bf16-compute losses stay within 3% of float32's."""
  cfg = CONFIGS["xlm-roberta"]
  batches = [_batch(cfg.pad_token_id, rows=8, seed=s) for s in range(4)]
  losses = {}
  for name, dtype in (("float32", jnp.float32), ("bfloat16", jnp.bfloat16)):
    model = Tagger(cfg, 5, dropout=0.0, dtype=dtype, param_dtype=jnp.float32, rngs=nnx.Rngs(0))
    _, params, apply_fn = split_tagger(model)
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}
    opt = optim.make_optimizer(3e-3)
    step = steps.make_train_step(apply_fn, opt)
    state = opt.init(params)
    got = []
    for i in range(20):
      params, state, m = step(params, state, batches[i % 4], None)
      got.append(float(m["loss"]))
    assert {x.dtype for x in jax.tree.leaves(params)} == {jnp.dtype(jnp.float32)}  # Adam updates float32
    assert {x.dtype for x in jax.tree.leaves(state) if hasattr(x, "dtype") and x.ndim} == {jnp.dtype(jnp.float32)}
    losses[name] = np.asarray(got)
    if name == "bfloat16":
      logits = apply_fn(params, batches[0])
      assert logits.dtype == jnp.float32  # the loss sees float32 logits
  np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=0.03)
  assert losses["float32"][-1] < 0.8 * losses["float32"][0]  # it did learn
