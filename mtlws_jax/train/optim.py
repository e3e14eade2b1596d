"""Optimizers built from config: the adaptation optimizer and the MTL-WS outer optimizer.

The paper trains with Adam (lr 5e-5 for mBERT, 1e-5 for XLM-R, Table 6) and no schedule; a
linear warmup/decay and global-norm clipping are optional extras (off by default, so the
paper's setting is the default). Every optimizer made here starts with a step counter, so the
training step can read "which step is this" from the optimizer state (big_vision's habit)
instead of carrying a separate counter that could drift from it on resume.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

LR_SCHEDULES = ("constant", "linear")
OUTER_OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam")


class StepCountState(NamedTuple):
  """Number of updates applied so far (int32 scalar)."""
  count: jax.Array


def step_counter() -> optax.GradientTransformation:
  """An identity transformation whose state counts updates: the step number lives in opt_state."""

  def init_fn(params):
    del params
    return StepCountState(count=jnp.zeros([], jnp.int32))

  def update_fn(updates, state, params=None):
    del params
    return updates, StepCountState(count=optax.safe_int32_increment(state.count))

  return optax.GradientTransformation(init_fn, update_fn)


def step_of(opt_state: Any) -> jax.Array:
  """The update count stored in an optimizer state (ours first, else any optax `count`).

  Raises ValueError when the state holds no counter (e.g. plain `optax.sgd`): pass the step
  explicitly then.
  """
  found = optax.tree_utils.tree_get_all_with_path(opt_state, "count")
  if not found:
    raise ValueError(
        "optimizer state holds no step counter; build the optimizer with "
        "mtlws_jax.train.optim.make_optimizer (or chain optim.step_counter()) or pass step=")
  return found[0][1]


def make_schedule(learning_rate: float, *, schedule: str = "constant", warmup_steps: int = 0,
                  total_steps: int | None = None, end_value: float = 0.0) -> optax.Schedule:
  """Learning rate against step: optional linear warmup from 0, then constant or linear decay.

  "linear" decays from `learning_rate` at `warmup_steps` to `end_value` at `total_steps`.
  """
  if schedule not in LR_SCHEDULES:
    raise ValueError(f"unknown lr schedule {schedule!r}; expected one of {LR_SCHEDULES}")
  if learning_rate <= 0:
    raise ValueError(f"learning rate must be positive, got {learning_rate}")
  if warmup_steps < 0:
    raise ValueError(f"lr warmup steps must be >= 0, got {warmup_steps}")
  if schedule == "linear":
    if total_steps is None or total_steps <= warmup_steps:
      raise ValueError(
          f"linear decay needs total_steps > warmup_steps, got {total_steps} <= {warmup_steps}")
    after = optax.linear_schedule(learning_rate, end_value, total_steps - warmup_steps)
  else:
    after = optax.constant_schedule(learning_rate)
  if warmup_steps == 0:
    return after
  ramp = optax.linear_schedule(0.0, learning_rate, warmup_steps)
  return optax.join_schedules([ramp, after], [warmup_steps])


DECAY_MASKS = ("all", "no_bias_norm")


# Parameter groups as regular expressions over "/"-joined parameter paths, as big_vision's
# optax.py builds its masks: freezing (train.freeze), the head's learning rate, weight decay.
HEAD = r"^(?!encoder/)"                 # what a pretrained checkpoint does not have
DECAYED = r"(^|/)(kernel|embedding)$"   # weight matrices and embedding tables


def path_name(path) -> str:
  """A jax key path as "encoder/layers/0/attention/query/kernel"."""
  return "/".join(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)


def regex_mask(params: Any, pattern: str) -> Any:
  """True on the parameters whose path (`path_name`) the regular expression matches (re.search)."""
  import re
  rx = re.compile(pattern)
  return jax.tree_util.tree_map_with_path(lambda p, _: bool(rx.search(path_name(p))), params)


def no_bias_norm_mask(params: Any) -> Any:
  """True on weight matrices and embedding tables, False on biases and LayerNorm scales.

  The standard BERT fine-tuning recipe (Hugging Face's `no_decay = ["bias", "LayerNorm.weight"]`):
  decaying a LayerNorm scale toward 0 shrinks the layer's output, which AdamW does not undo.
  """
  return regex_mask(params, DECAYED)


def decays(leaf_name: str) -> bool:
  """Whether the "no_bias_norm" recipe decays a parameter of this leaf name."""
  import re
  return bool(re.search(DECAYED, leaf_name))


def _check_clip(clip_norm: float | None) -> float | None:
  if clip_norm is not None and clip_norm < 0:
    raise ValueError(f"grad clip norm must be positive, got {clip_norm}")
  return clip_norm or None


def _scheduled_adam(*, learning_rate: float, schedule: str, warmup_steps: int, total_steps: int | None,
                    weight_decay: float, mask: Any = None) -> optax.GradientTransformation:
  """Adam, or AdamW when weight_decay > 0 (mask: where it decays), at the scheduled rate: the one
  elementwise update both the dense step and the touched-rows table update use."""
  lr = make_schedule(learning_rate, schedule=schedule, warmup_steps=warmup_steps,
                     total_steps=total_steps)
  if weight_decay:
    return optax.adamw(lr, weight_decay=weight_decay, mask=mask)
  return optax.adam(lr)


def make_optimizer(learning_rate: float, *, schedule: str = "constant", warmup_steps: int = 0,
                   total_steps: int | None = None, clip_norm: float | None = None,
                   weight_decay: float = 0.0, decay_mask: str = "all",
                   head_lr_scale: float = 1.0) -> optax.GradientTransformation:
  """Adam (AdamW when weight_decay > 0) with an optional schedule and global-norm clipping.

  decay_mask: "all" decays every parameter, "no_bias_norm" leaves biases and LayerNorm scales
  undecayed (the standard recipe). head_lr_scale: the parameters outside "encoder" (the new
  classifier, SRL predicate/POS embeddings) step at this multiple of the rate. The chain starts
  with `step_counter()` so `step_of(opt_state)` gives the step.
  """
  if head_lr_scale <= 0:
    raise ValueError(f"head lr scale must be positive, got {head_lr_scale}")
  if decay_mask not in DECAY_MASKS:
    raise ValueError(f"unknown weight decay mask {decay_mask!r}; expected one of {DECAY_MASKS}")
  parts = [step_counter()]
  if clip_norm:
    parts.append(optax.clip_by_global_norm(_check_clip(clip_norm)))
  parts.append(_scheduled_adam(learning_rate=learning_rate, schedule=schedule, warmup_steps=warmup_steps,
                               total_steps=total_steps, weight_decay=weight_decay,
                               mask=no_bias_norm_mask if decay_mask == "no_bias_norm" else None))
  if head_lr_scale != 1.0:  # after Adam: a plain multiple of each head update
    parts.append(optax.masked(optax.scale(head_lr_scale), head_mask))
  return optax.chain(*parts)


def head_mask(params: Any) -> Any:
  """True on the parameters a pretrained checkpoint does not have (everything but "encoder")."""
  return regex_mask(params, HEAD)


def _frozen_mask(params, pattern: str):
  from mtlws_jax.errors import InputError
  mask = regex_mask(params, pattern)
  if not any(jax.tree.leaves(mask)):
    raise InputError(f"train.freeze={pattern!r} matches no parameter")
  return mask


def stop_frozen(apply_fn, params, pattern: str):
  """apply_fn with the gradient of every parameter whose path matches `pattern` stopped (JAX then
  skips computing it). "" = apply_fn itself."""
  if not pattern:
    return apply_fn
  mask = _frozen_mask(params, pattern)

  def apply(p, batch, rng=None):
    p = jax.tree.map(lambda m, x: jax.lax.stop_gradient(x) if m else x, mask, p)
    return apply_fn(p, batch, rng)

  return apply


def frozen(apply_fn, optimizer, params, pattern: str):
  """(apply_fn, optimizer) that leave parameters whose path matches `pattern` untouched.

  The wrapped apply_fn stops their gradient (`stop_frozen`) and the optimizer gives them zero
  updates and keeps no Adam state for them. "" = train everything.
  """
  if not pattern:
    return apply_fn, optimizer
  labels = jax.tree.map(lambda m: "frozen" if m else "train", _frozen_mask(params, pattern))
  return (stop_frozen(apply_fn, params, pattern),
          optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels))


def _get(cfg: Mapping[str, Any] | Any, key: str, default: Any) -> Any:
  if isinstance(cfg, Mapping):
    return cfg.get(key, default)
  return getattr(cfg, key, default)


def optimizer_kwargs(cfg: Mapping[str, Any] | Any) -> dict[str, Any]:
  """`make_optimizer`'s arguments read from a ConfigDict/dict: the one reader of these keys.

  Keys: learning_rate (required), lr_schedule ("constant"|"linear", default "constant"),
  lr_warmup_steps (0), max_steps (needed for "linear"), grad_clip_norm (None/0 = off),
  weight_decay (0.0), weight_decay_mask ("all"), head_lr_scale (1.0).
  """
  lr = _get(cfg, "learning_rate", None)
  if lr is None:
    raise ValueError("config has no learning_rate")
  return dict(
      learning_rate=float(lr),
      schedule=_get(cfg, "lr_schedule", "constant") or "constant",
      warmup_steps=int(_get(cfg, "lr_warmup_steps", 0) or 0),
      total_steps=_get(cfg, "max_steps", None),
      clip_norm=_get(cfg, "grad_clip_norm", None),
      weight_decay=float(_get(cfg, "weight_decay", 0.0) or 0.0),
      decay_mask=_get(cfg, "weight_decay_mask", "all") or "all",
      head_lr_scale=float(_get(cfg, "head_lr_scale", 1.0) or 1.0))


def optimizer_from_config(cfg: Mapping[str, Any] | Any) -> optax.GradientTransformation:
  """`make_optimizer` from a ConfigDict/dict (keys: `optimizer_kwargs`)."""
  return make_optimizer(**optimizer_kwargs(cfg))


def make_outer_optimizer(name: str = "sgd", gamma: float = 5e-5, *,
                         momentum: float = 0.9) -> optax.GradientTransformation:
  """The MTL-WS outer move, applied to the pseudo-gradient theta - mean_l theta_l.

  "sgd" is exactly the paper's Eq. 7 (theta += gamma * mean_l (theta_l - theta)); "momentum",
  "nesterov" and "adam" are the usual Reptile/FedOpt-style alternatives.
  """
  if name not in OUTER_OPTIMIZERS:
    raise ValueError(f"unknown warmup outer optimizer {name!r}; expected one of {OUTER_OPTIMIZERS}")
  if gamma <= 0:
    raise ValueError(f"warmup step size gamma must be positive, got {gamma}")
  if name == "sgd":
    return optax.sgd(gamma)
  if name == "momentum":
    return optax.sgd(gamma, momentum=momentum)
  if name == "nesterov":
    return optax.sgd(gamma, momentum=momentum, nesterov=True)
  return optax.adam(gamma)


def outer_optimizer_from_config(cfg: Mapping[str, Any] | Any) -> optax.GradientTransformation:
  """`make_outer_optimizer` from the warmup ConfigDict: keys gamma, outer ("sgd"), outer_momentum (0.9)."""
  return make_outer_optimizer(_get(cfg, "outer", "sgd"), float(_get(cfg, "gamma", 5e-5)),
                              momentum=float(_get(cfg, "outer_momentum", 0.9)))


# ------------------------------------------------------------------ touched-rows table update
# The word-embedding table of a multilingual encoder (250k x 384 for e5-small) is most of the
# model, and a batch of 8 x 128 touches at most 1,024 of its rows; dense Adam still reads and
# writes every row and its two moments every step (45% of an e5-small step on this CPU,
# benchmarks/results/step_breakdown_cpu.json). train.embedding_update="rows" updates only the
# touched rows (the "lazy Adam" of TF Addons and PyTorch's SparseAdam): a row's moments and
# value change only in steps whose batch contains it. Equal to dense Adam when every row is
# touched every step (tests/test_rows_update.py); otherwise a row that a batch misses keeps
# its value instead of drifting on its old momentum, and weight decay reaches it only when touched.

EMBEDDING_UPDATES = ("dense", "rows")
WORD_TABLE = ("encoder", "embeddings", "word_embeddings", "embedding")


class RowsOptimizer(NamedTuple):
  """The optimizers of train.embedding_update="rows": `rest` over every parameter but the table
  (it holds the step counter), `table` (elementwise: Adam/AdamW with the same schedule) applied
  to the touched rows only, and the global-norm clip over both (done by the train step)."""
  rest: optax.GradientTransformation
  table: optax.GradientTransformation
  clip_norm: float | None
  path: tuple[str, ...] = WORD_TABLE
  ids_key: str = "input_ids"

  def init(self, params: Any) -> "RowsState":
    return RowsState(rest=self.rest.init(without_leaf(params, self.path)),
                     table=self.table.init(get_leaf(params, self.path)))


class RowsState(NamedTuple):
  rest: Any   # first, so step_of finds the rest optimizer's step counter
  table: Any  # moments as large as the table (only touched rows change)


def get_leaf(tree: Mapping[str, Any], path: tuple[str, ...]) -> Any:
  for k in path:
    tree = tree[k]
  return tree


def without_leaf(tree: Mapping[str, Any], path: tuple[str, ...]) -> dict:
  """A copy of a nested dict without the leaf at `path` (the other leaves are shared)."""
  head, *rest = path
  out = dict(tree)
  if rest:
    out[head] = without_leaf(tree[head], tuple(rest))
  else:
    del out[head]
  return out


def with_leaf(tree: Mapping[str, Any], path: tuple[str, ...], value: Any) -> dict:
  """A copy of a nested dict with the leaf at `path` set to `value`."""
  head, *rest = path
  out = dict(tree)
  out[head] = with_leaf(tree.get(head, {}), tuple(rest), value) if rest else value
  return out


def rows_optimizer_from_config(cfg: Mapping[str, Any] | Any, *, path: tuple[str, ...] = WORD_TABLE,
                               wrap_rest=None) -> RowsOptimizer:
  """The RowsOptimizer equal to `optimizer_from_config(cfg)` on a dense table at `path`.

  wrap_rest: e.g. `frozen`'s optimizer wrapper, applied to the rest optimizer only.
  """
  kw = optimizer_kwargs(cfg)
  clip = _check_clip(kw["clip_norm"])
  rest = make_optimizer(**kw | {"clip_norm": None})
  if wrap_rest is not None:
    rest = wrap_rest(rest)
  wd = kw["weight_decay"]
  if kw["decay_mask"] == "no_bias_norm":  # as no_bias_norm_mask decides
    wd = wd if decays(path[-1]) else 0.0
  table = _scheduled_adam(**{k: kw[k] for k in ("learning_rate", "schedule", "warmup_steps", "total_steps")},
                          weight_decay=wd)
  return RowsOptimizer(rest=rest, table=table, clip_norm=clip, path=tuple(path))


def for_training(cfg: Mapping[str, Any] | Any, params_like: Any, apply_fn):
  """(apply_fn, optimizer) of a train setting: the one builder the experiment uses.

  Adam (AdamW) with its schedule, clipping, the head's rate and the decay mask
  (`optimizer_from_config`); parameters matching cfg.freeze (a regular expression over their
  paths) get no gradient and no update (`frozen`); cfg.embedding_update="rows" updates only the
  word-embedding rows a batch touches (`rows_optimizer_from_config`). Raises ValueError on a bad
  setting.
  """
  freeze = _get(cfg, "freeze", "") or ""
  if (_get(cfg, "embedding_update", "dense") or "dense") != "rows":
    return frozen(apply_fn, optimizer_from_config(cfg), params_like, freeze)
  if freeze and get_leaf(regex_mask(params_like, freeze), WORD_TABLE):
    raise ValueError(f"train.embedding_update=rows updates the word embeddings, but train.freeze="
                     f"{freeze!r} freezes them: use one or the other")
  rest_like = without_leaf(params_like, WORD_TABLE)
  wrap = (lambda o: frozen(apply_fn, o, rest_like, freeze)[1]) if freeze else None
  return stop_frozen(apply_fn, params_like, freeze), rows_optimizer_from_config(cfg, wrap_rest=wrap)
