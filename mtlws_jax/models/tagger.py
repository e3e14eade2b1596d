"""Sequence tagger: encoder -> dropout -> linear over the task's tags (paper Eq. 1).

The softmax of Eq. 1 is applied at loss time (`token_cross_entropy`) and argmax at prediction
time, so the model itself returns logits. For dependency SRL the paper feeds the predicate
position and POS tags to the model: here they are learned embeddings added to the input
embeddings (before the embedding LayerNorm), so a pretrained encoder is used unchanged.

Training code works on a plain parameter pytree and a pure `apply_fn` (see `split_tagger`), so
parameters can be jitted, donated, vmapped and stacked across languages.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from flax import nnx
import jax
import jax.numpy as jnp
import optax

from mtlws_jax.models.encoder import EncoderConfig, make_encoder

Params = dict[str, Any]
ApplyFn = Callable[..., jax.Array]


class Tagger(nnx.Module):
  """Token classifier over `num_tags` tags, with optional SRL predicate and POS inputs."""

  def __init__(self, config: EncoderConfig, num_tags: int, *, num_pos: int = 0,
               use_predicate: bool = False, dropout: float = 0.1, dtype=jnp.float32,
               param_dtype=jnp.float32, rngs: nnx.Rngs, attention: str = "auto"):
    if num_tags < 1:
      raise ValueError(f"num_tags must be positive, got {num_tags}")
    self.config = config
    self.num_tags = int(num_tags)
    self.num_pos = int(num_pos)
    self.use_predicate = bool(use_predicate)
    self.dropout_rate = float(dropout)
    self.encoder = make_encoder(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs, attention=attention)
    heads = _new_heads(config, num_tags, num_pos=num_pos, use_predicate=use_predicate, dtype=dtype,
                       param_dtype=param_dtype, rngs=rngs)
    self.predicate_embeddings = heads["predicate_embeddings"]
    self.pos_embeddings = heads["pos_embeddings"]
    self.dropout = nnx.Dropout(dropout)
    self.classifier = heads["classifier"]

  def __call__(self, batch: Mapping[str, Any], *, rngs: nnx.Rngs | None = None) -> jax.Array:
    """Logits [B, S, num_tags] in float32; rngs None = no dropout anywhere."""
    extra = None
    if self.predicate_embeddings is not None:
      extra = self.predicate_embeddings(_require(batch, "predicate_ids"))
    if self.pos_embeddings is not None:
      pos = self.pos_embeddings(_require(batch, "pos_ids"))
      extra = pos if extra is None else extra + pos
    # Token types: always 0 in tagging input (one segment), so the encoder broadcasts row 0.
    hidden = self.encoder(batch["input_ids"], batch["attention_mask"], None, extra_embeddings=extra,
                          segment_ids=batch.get("segment_ids"), position_ids=batch.get("position_ids"), rngs=rngs)
    hidden = self.dropout(hidden, deterministic=rngs is None, rngs=rngs)
    return self.classifier(hidden).astype(jnp.float32)


def _new_heads(config: EncoderConfig, num_tags: int, *, num_pos: int, use_predicate: bool, dtype,
               param_dtype, rngs: nnx.Rngs) -> dict[str, nnx.Module | None]:
  """The modules a pretrained encoder checkpoint does not have (initialized like BERT's)."""
  h = config.hidden_size
  init = nnx.initializers.normal(stddev=config.initializer_range)
  emb = dict(dtype=dtype, param_dtype=param_dtype, embedding_init=init, rngs=rngs)
  return {
      # Row 0 = not the predicate / no POS (padding, specials); added like token-type embeddings.
      "predicate_embeddings": nnx.Embed(2, h, **emb) if use_predicate else None,
      "pos_embeddings": nnx.Embed(num_pos + 1, h, **emb) if num_pos else None,
      "classifier": nnx.Linear(h, num_tags, kernel_init=init, bias_init=nnx.initializers.zeros_init(),
                               dtype=dtype, param_dtype=param_dtype, rngs=rngs),
  }


def init_head_params(config: EncoderConfig, num_tags: int, *, num_pos: int = 0, use_predicate: bool = False,
                     param_dtype=jnp.float32, seed: int = 0) -> Params:
  """Fresh params of the non-encoder parts, without initializing (then discarding) an encoder.

  Loading a pretrained checkpoint builds the tagger abstractly (nnx.eval_shape) and fills the
  encoder from the file; only these need random values.
  """
  heads = _new_heads(config, num_tags, num_pos=num_pos, use_predicate=use_predicate, dtype=param_dtype,
                     param_dtype=param_dtype, rngs=nnx.Rngs(seed))
  return {k: tagger_params(m) for k, m in heads.items() if m is not None}


def _require(batch: Mapping[str, Any], key: str):
  if key not in batch:
    raise KeyError(f"this tagger needs batch[{key!r}] (it was built with predicate/POS inputs)")
  return batch[key]


def _str_keys(tree):
  """nnx.List gives int keys; strings keep the pytree friendly to orbax, JSON and path filters."""
  if isinstance(tree, Mapping):
    return {str(k): _str_keys(v) for k, v in tree.items()}
  return tree


def tagger_params(model: nnx.Module) -> Params:
  """The module's parameters as a nested dict of arrays (string keys)."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  if jax.tree.leaves(rest):
    raise ValueError(f"expected only nnx.Param state in {type(model).__name__}, also found {rest}")
  return _str_keys(nnx.to_pure_dict(params))


def merge_tagger(graphdef, params: Params) -> nnx.Module:
  """Rebuilds the module from `split_tagger`'s graphdef and a (trained) parameter pytree."""
  return nnx.merge(graphdef, nnx.State(nnx.restore_int_paths(params)))


def split_tagger(model: nnx.Module) -> tuple[Any, Params, ApplyFn]:
  """(graphdef, params, apply_fn) with `apply_fn(params, batch, rng=None) -> logits` pure.

  rng None -> deterministic; a key -> dropout masks drawn from it. apply_fn can be jitted and
  vmapped over a leading axis of stacked params (e.g. one copy per language).
  """
  graphdef = nnx.graphdef(model)
  params = tagger_params(model)

  def apply_fn(params: Params, batch: Mapping[str, Any], rng: jax.Array | None = None) -> jax.Array:
    module = merge_tagger(graphdef, params)
    return module(batch, rngs=None if rng is None else nnx.Rngs(dropout=rng))

  return graphdef, params, apply_fn


def token_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy over positions with labels >= 0 (0 when there are none)."""
  mask = labels >= 0
  losses = optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), jnp.where(mask, labels, 0))
  count = jnp.sum(mask)
  return jnp.sum(jnp.where(mask, losses, 0.0)) / jnp.maximum(count, 1)


# Keys the model reads; the rest of a batch (labels, word_ids, example_ids) is bookkeeping that
# would only trigger recompiles or host->device copies.
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "predicate_ids", "pos_ids", "segment_ids",
                "position_ids")

