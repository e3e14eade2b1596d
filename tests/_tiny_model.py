"""A tiny pure model (the tagger's apply_fn signature) and batches shared by the training tests."""

import jax
import jax.numpy as jnp
import numpy as np

V, H, T = 40, 8, 5


def tiny_params(seed=0):
  rs = np.random.RandomState(seed)
  return jax.tree.map(jnp.asarray, {
      "embed": rs.normal(size=(V, H)).astype(np.float32),
      "out": {"w": (0.3 * rs.normal(size=(H, T))).astype(np.float32),
              "b": np.zeros(T, np.float32)}})


def tiny_apply(params, batch, rng=None):
  """Embedding -> tanh -> (dropout) -> linear: a pure apply_fn with the tagger's signature."""
  h = jnp.tanh(params["embed"][batch["input_ids"]])
  if rng is not None:
    keep = jax.random.bernoulli(rng, 0.8, h.shape)
    h = jnp.where(keep, h / 0.8, 0.0)
  return h @ params["out"]["w"] + params["out"]["b"]


def make_batch(seed, b=8, s=7, vocab=V):
  """Rows of different lengths (some padding, some positions without a label)."""
  rs = np.random.RandomState(seed)
  labels = rs.randint(0, T, (b, s)).astype(np.int32)
  mask = np.ones((b, s), np.int32)
  for r in range(b):
    n = rs.randint(3, s + 1)
    mask[r, n:] = 0
    labels[r, n:] = -1
  labels[:, 0] = -1
  return {"input_ids": rs.randint(1, vocab, (b, s)).astype(np.int32), "attention_mask": mask,
          "token_type_ids": np.zeros((b, s), np.int32), "labels": labels}


def max_diff(a, b):
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def run_steps(params, step_fn, opt_state, batches, rng):
  losses = []
  for b in batches:
    params, opt_state, m = step_fn(params, opt_state, b, rng)
    losses.append(float(m["loss"]))
  return params, opt_state, losses
