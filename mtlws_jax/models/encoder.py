"""BERT and XLM-RoBERTa encoders in flax.nnx, configured from a Hugging Face config.json.

Written to match transformers' PyTorch `BertModel` / `XLMRobertaModel` numerically (post-LN
layers, exact erf GELU, LayerNorm with a two-pass variance), so pretrained checkpoints load
weight for weight (see checkpoints.py) and give the same hidden states.

Module attribute names are chosen so the parameter tree reads like the HF state dict
(`embeddings.word_embeddings`, `layers.<i>.query`, ...); checkpoints.py owns the exact mapping.

`dtype` is the compute dtype (e.g. bfloat16) and `param_dtype` the storage dtype (float32):
matmuls run in `dtype` while LayerNorm statistics and the attention softmax stay in float32.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Callable, Mapping

from flax import nnx
import jax
import jax.numpy as jnp

from mtlws_jax.errors import InputError

# model_type values whose weights and forward pass we implement. RoBERTa and XLM-R share one
# architecture (positions offset by padding_idx + 1); BERT counts positions from 0.
SUPPORTED_MODEL_TYPES = ("bert", "xlm-roberta", "roberta")
_ROBERTA_LIKE = ("xlm-roberta", "roberta")


def _gelu_erf(x):
  return jax.nn.gelu(x, approximate=False)


def _gelu_tanh(x):
  return jax.nn.gelu(x, approximate=True)


ATTENTIONS = ("auto", "einsum", "fused")
# config.model.dtype: the compute dtype of the matmuls (parameters stay float32).
COMPUTE_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# Names as transformers' ACT2FN spells them; only those whose formula we reproduce exactly.
ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "gelu": _gelu_erf,
    "gelu_python": _gelu_erf,
    "gelu_new": _gelu_tanh,
    "gelu_pytorch_tanh": _gelu_tanh,
    "relu": jax.nn.relu,
    "silu": jax.nn.silu,
    "swish": jax.nn.silu,
}


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
  """The architecture fields of a BERT / XLM-R config.json (frozen: it is static module data)."""

  model_type: str = "bert"
  vocab_size: int = 1000
  hidden_size: int = 32
  num_hidden_layers: int = 2
  num_attention_heads: int = 2
  intermediate_size: int = 64
  hidden_act: str = "gelu"
  hidden_dropout_prob: float = 0.1
  attention_probs_dropout_prob: float = 0.1
  max_position_embeddings: int = 512
  type_vocab_size: int = 2
  layer_norm_eps: float = 1e-12
  initializer_range: float = 0.02
  pad_token_id: int = 0
  bos_token_id: int | None = None
  eos_token_id: int | None = None

  @property
  def head_dim(self) -> int:
    return self.hidden_size // self.num_attention_heads

  @property
  def position_offset(self) -> int:
    """First position id of a real token: 0 for BERT, padding_idx + 1 for (XLM-)RoBERTa."""
    return self.pad_token_id + 1 if self.model_type in _ROBERTA_LIKE else 0

  @property
  def max_tokens(self) -> int:
    """Longest input (specials included) the position table can embed."""
    return self.max_position_embeddings - self.position_offset

  @classmethod
  def from_hf_config(cls, config: Mapping[str, Any], path: str | os.PathLike | None = None) -> "EncoderConfig":
    """Reads a config.json dict; InputError (naming `path`) on anything we do not implement."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
      raise InputError(
          f"unsupported model_type {model_type!r} (architectures {config.get('architectures')}); "
          f"this encoder implements {', '.join(SUPPORTED_MODEL_TYPES)}", path)
    pos_type = config.get("position_embedding_type", "absolute")
    if pos_type not in (None, "absolute"):
      raise InputError(f"position_embedding_type {pos_type!r} is not supported (only 'absolute')", path)
    if config.get("is_decoder") or config.get("add_cross_attention"):
      raise InputError("decoder / cross-attention configs are not supported: this is an encoder", path)
    act = config.get("hidden_act", "gelu")
    if act not in ACTIVATIONS:
      raise InputError(f"hidden_act {act!r} is not supported (known: {', '.join(ACTIVATIONS)})", path)
    defaults = cls()
    kwargs = {}
    for field in dataclasses.fields(cls):
      if field.name in ("model_type", "hidden_act"):
        continue
      value = config.get(field.name)
      if value is None:
        if field.name in ("pad_token_id",):
          value = 1 if model_type in _ROBERTA_LIKE else 0
        elif field.name in ("bos_token_id", "eos_token_id"):
          value = None
        elif field.name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                            "intermediate_size"):
          raise InputError(f"config has no {field.name}", path)
        else:
          value = getattr(defaults, field.name)
      kwargs[field.name] = value
    cfg = cls(model_type=model_type, hidden_act=act, **kwargs)
    if cfg.hidden_size % cfg.num_attention_heads:
      raise InputError(f"hidden_size {cfg.hidden_size} is not a multiple of num_attention_heads "
                       f"{cfg.num_attention_heads}", path)
    return cfg

  def to_hf_config(self) -> dict[str, Any]:
    """The config.json fields transformers needs to rebuild the same architecture."""
    out = dataclasses.asdict(self)
    out["position_embedding_type"] = "absolute"
    for k in ("bos_token_id", "eos_token_id"):
      if out[k] is None:
        del out[k]
    return out


def _normal(std: float):
  return nnx.initializers.normal(stddev=std)


class Embeddings(nnx.Module):
  """word + position + token type (+ optional extra, e.g. predicate/POS) -> LayerNorm -> dropout."""

  def __init__(self, config: EncoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs):
    init = _normal(config.initializer_range)
    h = config.hidden_size
    kw = dict(dtype=dtype, param_dtype=param_dtype, embedding_init=init, rngs=rngs)
    self.word_embeddings = nnx.Embed(config.vocab_size, h, **kw)
    self.position_embeddings = nnx.Embed(config.max_position_embeddings, h, **kw)
    self.token_type_embeddings = nnx.Embed(config.type_vocab_size, h, **kw)
    self.layer_norm = nnx.LayerNorm(h, epsilon=config.layer_norm_eps, use_fast_variance=False,
                                    dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.dropout = nnx.Dropout(config.hidden_dropout_prob)
    self.dtype = dtype

  def __call__(self, input_ids, position_ids, token_type_ids, extra=None, *, rngs=None):
    """position_ids / token_type_ids: id arrays (looked up), or position rows [S, H] / one
    token-type row [H] already taken (broadcast: no gather, no scatter in the backward pass).

    Every lookup reads the float32 table and casts the rows (a bfloat16 table cast would touch
    all 250k rows each step, and its scatter-add backward is slow on GPUs).
    """
    take = lambda table, ids: jnp.take(table.embedding[...], ids, axis=0)
    x = take(self.word_embeddings, input_ids)
    x = x + (take(self.position_embeddings, position_ids) if position_ids.dtype.kind in "iu" else position_ids)
    x = x + (take(self.token_type_embeddings, token_type_ids) if token_type_ids.dtype.kind in "iu"
             else token_type_ids)
    x = x.astype(self.dtype)
    if extra is not None:
      x = x + extra.astype(x.dtype)
    x = self.layer_norm(x)
    return self.dropout(x, deterministic=rngs is None, rngs=rngs)


class Layer(nnx.Module):
  """One post-LN transformer layer: x = LN(x + attn(x)); x = LN(x + ffn(x))."""

  def __init__(self, config: EncoderConfig, *, dtype, param_dtype, rngs: nnx.Rngs, attention: str = "auto"):
    h, ff = config.hidden_size, config.intermediate_size
    if attention not in ATTENTIONS:
      raise ValueError(f"unknown attention {attention!r}; expected one of {ATTENTIONS}")
    self.attention_impl = attention
    lin = dict(kernel_init=_normal(config.initializer_range), bias_init=nnx.initializers.zeros_init(),
               dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    norm = dict(epsilon=config.layer_norm_eps, use_fast_variance=False, dtype=dtype,
                param_dtype=param_dtype, rngs=rngs)
    self.num_heads = config.num_attention_heads
    self.head_dim = config.head_dim
    self.activation = ACTIVATIONS[config.hidden_act]
    self.query = nnx.Linear(h, h, **lin)
    self.key = nnx.Linear(h, h, **lin)
    self.value = nnx.Linear(h, h, **lin)
    self.attention_output = nnx.Linear(h, h, **lin)
    self.attention_norm = nnx.LayerNorm(h, **norm)
    self.intermediate = nnx.Linear(h, ff, **lin)
    self.output = nnx.Linear(ff, h, **lin)
    self.output_norm = nnx.LayerNorm(h, **norm)
    self.attention_dropout = nnx.Dropout(config.attention_probs_dropout_prob)
    self.hidden_dropout = nnx.Dropout(config.hidden_dropout_prob)

  def attention(self, x, mask, *, rngs=None):
    """mask: [B, 1, 1, S] (keys that are real tokens) or [B, 1, S, S] (packed rows: same segment)."""
    b, s, _ = x.shape
    split = lambda t: t.reshape(b, s, self.num_heads, self.head_dim)
    q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
    dropout = rngs is not None and self.attention_dropout.rate > 0
    if self.attention_impl == "fused" or (self.attention_impl == "auto" and not dropout):
      # jax.nn.dot_product_attention: cuDNN flash attention on GPUs (bf16/fp16), XLA elsewhere.
      # It has no dropout on the attention probabilities: "fused" in training drops that dropout.
      ctx = jax.nn.dot_product_attention(q, k, v, mask=mask).reshape(b, s, -1)
      return self.attention_output(ctx)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
    scores = scores / math.sqrt(self.head_dim)
    # Padding keys get the lowest float (not -inf): an all-padding row stays finite.
    scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    probs = jax.nn.softmax(scores, axis=-1).astype(v.dtype)
    probs = self.attention_dropout(probs, deterministic=rngs is None, rngs=rngs)
    ctx = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(b, s, -1)
    return self.attention_output(ctx)

  def __call__(self, x, mask, *, rngs=None):
    drop = lambda t: self.hidden_dropout(t, deterministic=rngs is None, rngs=rngs)
    x = self.attention_norm(x + drop(self.attention(x, mask, rngs=rngs)))
    y = self.output(self.activation(self.intermediate(x)))
    return self.output_norm(x + drop(y))


class Encoder(nnx.Module):
  """Embeddings + a stack of layers; returns the last hidden states [B, S, H] in `dtype`.

  attention: "einsum" (scores, softmax in float32, dropout on the probabilities), "fused"
  (jax.nn.dot_product_attention; no attention-probability dropout), or "auto": fused where no
  attention dropout applies (evaluation, or attention_probs_dropout_prob 0), einsum otherwise.
  """

  def __init__(self, config: EncoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32,
               rngs: nnx.Rngs, attention: str = "auto"):
    self.config = config
    self.embeddings = Embeddings(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
    self.layers = nnx.List([Layer(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs, attention=attention)
                            for _ in range(config.num_hidden_layers)])

  def position_ids(self, input_ids, attention_mask):
    raise NotImplementedError

  def position_rows(self, input_ids):
    """Position embeddings [B or 1, S, H] by slicing the table (no gather); see subclasses."""
    raise NotImplementedError

  def __call__(self, input_ids, attention_mask, token_type_ids=None, *, extra_embeddings=None,
               segment_ids=None, position_ids=None, rngs: nnx.Rngs | None = None):
    """rngs None = deterministic (no dropout); extra_embeddings [B,S,H] join the input sum.

    Packed rows (batching.pack) give segment_ids and position_ids [B,S]: a token attends to the
    tokens of its own segment only (padding, segment 0, to padding: no query row is all masked),
    and positions restart at each segment (position_ids count from 0; the offset is added here).
    """
    if position_ids is None and input_ids.shape[-1] > self.config.max_tokens:
      # Out-of-range position ids would gather garbage silently; the shape is static, so say so.
      raise ValueError(f"sequence length {input_ids.shape[-1]} exceeds the {self.config.max_tokens} "
                       f"positions this {self.config.model_type} encoder can embed")
    if token_type_ids is None:  # every token has type 0: broadcast that row (no lookup)
      token_type_ids = self.embeddings.token_type_embeddings.embedding[...][0]
    if segment_ids is None:
      mask = attention_mask.astype(bool)[:, None, None, :]
      positions = self.position_rows(input_ids)
    else:
      mask = (segment_ids[:, :, None] == segment_ids[:, None, :])[:, None]
      positions = position_ids + self.config.position_offset
    x = self.embeddings(input_ids, positions, token_type_ids, extra_embeddings, rngs=rngs)
    for layer in self.layers:
      x = layer(x, mask, rngs=rngs)
    return x


class BertEncoder(Encoder):
  """BERT: absolute positions 0..S-1 whatever the padding."""

  def position_ids(self, input_ids, attention_mask):
    return jnp.broadcast_to(jnp.arange(input_ids.shape[-1], dtype=jnp.int32), input_ids.shape)

  def position_rows(self, input_ids):
    return self.embeddings.position_embeddings.embedding[...][None, :input_ids.shape[-1]]


class XLMREncoder(Encoder):
  """XLM-R / RoBERTa: real tokens count from padding_idx + 1, padding gets padding_idx.

  Like transformers' `create_position_ids_from_input_ids`, real tokens are those whose id is
  not the pad id (the attention mask agrees on every batch our encoder builds). The rows are
  sliced from the table (`position_rows`), which equals that lookup for right-padded input.
  """

  def position_ids(self, input_ids, attention_mask):
    pad = self.config.pad_token_id
    real = (input_ids != pad).astype(jnp.int32)
    return jnp.cumsum(real, axis=-1) * real + pad

  def position_rows(self, input_ids):
    """Rows pad+1, pad+2, ... for the real tokens, the pad row for padding: `position_ids`'s
    lookup for right-padded input (what tokenizers and our batches give), without a gather."""
    pad, s = self.config.pad_token_id, input_ids.shape[-1]
    table = self.embeddings.position_embeddings.embedding[...]
    real = (input_ids != pad)[..., None]
    return jnp.where(real, table[None, pad + 1:pad + 1 + s], table[pad])


def make_encoder(config: EncoderConfig, *, dtype=jnp.float32, param_dtype=jnp.float32,
                 rngs: nnx.Rngs, attention: str = "auto") -> Encoder:
  """The encoder class for `config.model_type`."""
  cls = XLMREncoder if config.model_type in _ROBERTA_LIKE else BertEncoder
  return cls(config, dtype=dtype, param_dtype=param_dtype, rngs=rngs, attention=attention)
