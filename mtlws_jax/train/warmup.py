"""MTL-WS multilingual warmup (paper Sec. 5.1, Eq. 7-8), as pure jitted functions.

One warmup epoch z, from parameters theta = theta_{z-1}:
  Eq. 8: every target language l starts from theta and takes K plain SGD steps with rate beta on
         batches of its translated set:  theta_l,k = theta_l,k-1 - beta * grad L(theta_l,k-1).
  Eq. 7: theta_z = theta + gamma / (|L|-1) * sum_l (theta_l - theta), where L holds the source and
         the |L|-1 target languages: the sum runs over target languages, so this is the mean over
         target languages of (theta_l - theta).
The outer move is written as an optax transformation of the pseudo-gradient
g = theta - mean_l theta_l (a Reptile-style update): `optax.sgd(gamma)` gives exactly Eq. 7, and
momentum/Nesterov/Adam outer optimizers are a config change (optim.make_outer_optimizer).

Layout: batches of one epoch are stacked as a dict of arrays [L, K, B, S] (stack_language_batches);
the K inner steps are a `lax.scan` over one pure SGD step; the languages run by
  - "vmap":  jax.vmap over the language axis (L copies of the parameters alive at once);
  - "loop":  lax.scan over languages that adds each language's delta to a running sum (one
             extra copy of the parameters, languages one after the other);
  - "shard": the language axis split over a device mesh (shard_map); each device runs its
             languages, the deltas are summed with psum. |L| is padded to a multiple of the device
             count with zero-weight copies of language 0, which do not change the mean.
All three give the same parameters (up to float rounding; tests/test_warmup.py).

Dropout in the inner steps: with rng=None there is none (deterministic, the default the loop
should use unless config says otherwise); with a key, language l's step k uses
fold_in(fold_in(rng, l), k), the same in every strategy. Fold the epoch into the key you pass
(fold_in(key, z)) so epochs differ.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import lax
from jax.sharding import PartitionSpec as P

from mtlws_jax import parallel
from mtlws_jax.data import batching
from mtlws_jax.train.steps import ApplyFn, LossFn, default_loss_fn

STRATEGIES = ("vmap", "loop", "shard")


def stack_language_batches(per_language: Sequence[Sequence[Mapping[str, np.ndarray]]], *,
                           pad_values: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
  """[L][K] batch dicts -> one dict of arrays [L, K, B, S] ([L, K, B] for example_ids).

  Batches differ in B (a last, short batch) and S (length buckets); they are padded to the
  largest with rows/columns that carry no label (labels -1, attention_mask 0), which add
  nothing to the loss. pad_values overrides the fill per key (default -1 for labels, word_ids,
  example_ids, else 0; pass {"input_ids": tokenizer.pad_token_id} if the model cares).
  """
  if not per_language:
    raise ValueError("no languages to warm up on")
  counts = {len(b) for b in per_language}
  if len(counts) != 1 or 0 in counts:
    raise ValueError(f"every language needs the same number K >= 1 of warmup batches, got "
                     f"{[len(b) for b in per_language]}")
  fill = dict(batching.FILL, **(pad_values or {}))
  keys = set(per_language[0][0])
  for lang, batches in enumerate(per_language):
    for k, batch in enumerate(batches):
      if set(batch) != keys:
        raise ValueError(f"batch {k} of language {lang} has keys {sorted(batch)}, "
                         f"expected {sorted(keys)}")
  out = {}
  for key in sorted(keys):
    arrays = [np.asarray(b[key]) for batches in per_language for b in batches]
    ndim = {a.ndim for a in arrays}
    if len(ndim) != 1:
      raise ValueError(f"{key!r} arrays have different ranks {sorted(ndim)}")
    shape = tuple(max(a.shape[d] for a in arrays) for d in range(arrays[0].ndim))
    stacked = np.full((len(arrays),) + shape, fill.get(key, 0), dtype=arrays[0].dtype)
    for i, a in enumerate(arrays):
      stacked[(i,) + tuple(slice(0, n) for n in a.shape)] = a
    out[key] = stacked.reshape((len(per_language), len(per_language[0])) + shape)
  return out


def make_inner_sgd(apply_fn: ApplyFn, beta: float, *, loss_fn: LossFn | None = None
                   ) -> Callable[[Any, Mapping[str, jax.Array], jax.Array | None], tuple[Any, jax.Array]]:
  """Eq. 8 for one language: `inner(theta, batches[K,B,S], rng) -> (theta_l, losses[K])`.

  Plain SGD with rate beta, K steps as a lax.scan; losses[k] is the loss before step k's update.
  """
  loss_fn = loss_fn or default_loss_fn()

  def sgd_step(params, batch, rng):
    def objective(p):
      return loss_fn(apply_fn(p, batch, rng), batch["labels"])
    loss, grads = jax.value_and_grad(objective)(params)
    params = jax.tree.map(lambda p, g: p - beta * g.astype(p.dtype), params, grads)
    return params, loss

  def inner(params, batches, rng):
    num_steps = jax.tree.leaves(batches)[0].shape[0]

    def body(p, xs):
      batch, k = xs
      step_rng = None if rng is None else jax.random.fold_in(rng, k)
      return sgd_step(p, batch, step_rng)

    return lax.scan(body, params, (batches, jnp.arange(num_steps)))

  return inner


def _language_rng(rng, lang_id):
  return None if rng is None else jax.random.fold_in(rng, lang_id)


def _weighted_delta_sum_vmap(inner, params, batches, lang_ids, weights, rng):
  """Sum_l w_l (theta_l - theta) and losses [L, K], all languages at once."""

  def one(b, lang_id):
    theta_l, losses = inner(params, b, _language_rng(rng, lang_id))
    return jax.tree.map(jnp.subtract, theta_l, params), losses

  deltas, losses = jax.vmap(one)(batches, lang_ids)
  keep = weights > 0
  total = jax.tree.map(
      lambda d: jnp.tensordot(weights, jnp.where(keep.reshape((-1,) + (1,) * (d.ndim - 1)), d, 0),
                              axes=1).astype(d.dtype), deltas)
  return total, losses


def _weighted_delta_sum_loop(inner, params, batches, lang_ids, weights, rng):
  """Same sum, one language after another, keeping only a running sum of deltas."""

  def body(acc, xs):
    b, lang_id, w = xs
    theta_l, losses = inner(params, b, _language_rng(rng, lang_id))
    acc = jax.tree.map(lambda a, t, p: a + jnp.where(w > 0, w * (t - p), 0).astype(a.dtype),
                       acc, theta_l, params)
    return acc, losses

  zeros = jax.tree.map(jnp.zeros_like, params)
  return lax.scan(body, zeros, (batches, lang_ids, weights))


def make_warmup_epoch(apply_fn: ApplyFn, outer_optimizer: optax.GradientTransformation, *,
                      beta: float = 1e-3, strategy: str = "vmap", loss_fn: LossFn | None = None,
                      mesh: jax.sharding.Mesh | None = None, donate: bool = True
                      ) -> Callable[..., tuple[Any, Any, dict[str, jax.Array]]]:
  """Builds `warmup_epoch(params, outer_state, batches, rng=None) -> (params, outer_state, metrics)`.

  params: theta_{z-1}; outer_state = outer_optimizer.init(params); batches: dict of [L, K, B, S]
  arrays (stack_language_batches), L = number of target languages; rng: None (no dropout) or a
  key with the epoch folded in. Returns theta_z and metrics: inner_loss [L, K] (loss before
  each inner step), delta_norm (||mean_l (theta_l - theta)||), update_norm (||theta_z - theta||).
  strategy "shard" uses `mesh` (default: a 1-D mesh over all devices, axis "lang").
  params and outer_state are donated when donate=True: keep a copy if you need theta_{z-1}.
  """
  if strategy not in STRATEGIES:
    raise ValueError(f"unknown warmup strategy {strategy!r}; expected one of {STRATEGIES}")
  if beta <= 0:
    raise ValueError(f"inner SGD rate beta must be positive, got {beta}")
  inner = make_inner_sgd(apply_fn, beta, loss_fn=loss_fn)
  if strategy == "shard":
    mesh = mesh or parallel.make_mesh()
    axis = mesh.axis_names[0]
    num_devices = mesh.shape[axis]
  else:
    num_devices = 1

  def outer_step(params, outer_state, delta_sum, weight_sum):
    mean_delta = jax.tree.map(lambda d: d / weight_sum.astype(d.dtype), delta_sum)
    pseudo_grad = jax.tree.map(jnp.negative, mean_delta)  # theta - mean_l theta_l
    updates, outer_state = outer_optimizer.update(pseudo_grad, outer_state, params)
    new_params = optax.apply_updates(params, updates)
    return new_params, outer_state, optax.tree.norm(mean_delta), optax.tree.norm(updates)

  def epoch(params, outer_state, batches, lang_ids, weights, rng):
    if strategy == "vmap":
      delta_sum, losses = _weighted_delta_sum_vmap(inner, params, batches, lang_ids, weights, rng)
    elif strategy == "loop":
      delta_sum, losses = _weighted_delta_sum_loop(inner, params, batches, lang_ids, weights, rng)
    else:
      def local(p, b, ids, w, r):
        # Mark the replicated parameters as device-varying: each device then differentiates
        # its own languages' losses. Left invariant, jax.grad would psum the gradients of all
        # devices (the transpose of an implicit broadcast), mixing languages inside Eq. 8.
        p = jax.tree.map(lambda x: lax.pcast(x, axis, to="varying"), p)
        s, l = _weighted_delta_sum_vmap(inner, p, b, ids, w, r)
        return lax.psum(s, axis), l
      rng_spec = None if rng is None else P()
      delta_sum, losses = jax.shard_map(
          local, mesh=mesh, in_specs=(P(), P(axis), P(axis), P(axis), rng_spec),
          out_specs=(P(), P(axis)))(params, batches, lang_ids, weights, rng)
    new_params, outer_state, delta_norm, update_norm = outer_step(
        params, outer_state, delta_sum, jnp.sum(weights))
    return new_params, outer_state, {"inner_loss": losses, "delta_norm": delta_norm,
                                     "update_norm": update_norm}

  jitted = jax.jit(epoch, donate_argnums=(0, 1) if donate else ())

  def prepare(batches):
    """(batches, lang_ids, weights) padded to a multiple of the devices, placed for `jitted`."""
    sizes = {np.shape(x)[0] for x in jax.tree.leaves(batches)}
    if len(sizes) != 1:
      raise ValueError(f"batch arrays disagree on the number of languages: {sorted(sizes)}")
    num_langs = sizes.pop()
    padded = parallel.padded_size(num_langs, num_devices)
    weights = np.zeros([padded], np.float32)
    weights[:num_langs] = 1.0
    if padded != num_langs:  # zero-weight copies of language 0 fill the last device(s)
      fill = padded - num_langs
      batches = jax.tree.map(
          lambda x: np.concatenate([np.asarray(x), np.repeat(np.asarray(x)[:1], fill, 0)]),
          batches)
    lang_ids = np.arange(padded, dtype=np.int32)
    if strategy == "shard":
      batches, lang_ids, weights = parallel.shard_leading((batches, lang_ids, weights), mesh)
    return batches, lang_ids, weights

  def warmup_epoch(params, outer_state, batches, rng=None):
    num_langs = np.shape(jax.tree.leaves(batches)[0])[0]
    if strategy == "shard":  # on every device of the mesh (a no-op from the second epoch on)
      params, outer_state = parallel.replicate((params, outer_state), mesh)
    params, outer_state, metrics = jitted(params, outer_state, *prepare(batches), rng)
    metrics["inner_loss"] = metrics["inner_loss"][:num_langs]
    return params, outer_state, metrics

  # For benchmarks: jitted(params, outer_state, *prepare(batches), rng) is the whole epoch.
  warmup_epoch.jitted, warmup_epoch.prepare = jitted, prepare
  return warmup_epoch


def run_warmup(warmup_epoch: Callable[..., tuple[Any, Any, dict[str, jax.Array]]],
               outer_optimizer: optax.GradientTransformation, params: Any,
               epoch_batches: Iterable[Mapping[str, np.ndarray]], *, rng: jax.Array | None = None,
               on_epoch: Callable[[int, dict[str, jax.Array]], None] | None = None) -> Any:
  """Z epochs of warmup: one [L, K, B, S] batch dict per epoch from `epoch_batches`.

  The key of epoch z is fold_in(rng, z). on_epoch(z, metrics) is called after each epoch (z from
  1). Returns theta_Z. The caller's params are not donated (copied first).
  """
  params = jax.tree.map(jnp.array, params)
  outer_state = outer_optimizer.init(params)
  for z, batches in enumerate(epoch_batches, start=1):
    epoch_rng = None if rng is None else jax.random.fold_in(rng, z)
    params, outer_state, metrics = warmup_epoch(params, outer_state, batches, epoch_rng)
    if on_epoch is not None:
      on_epoch(z, metrics)
  return params


def _jitted_batch_loss(apply_fn: ApplyFn, loss_fn: LossFn | None):
  """One compiled (params, batch) -> loss; op-by-op evaluation compiles every primitive."""
  loss_fn = loss_fn or default_loss_fn()
  return jax.jit(lambda params, batch: loss_fn(apply_fn(params, batch, None), batch["labels"]))


def mean_loss(apply_fn: ApplyFn, params: Any, batches: Iterable[Mapping[str, np.ndarray]], *,
              loss_fn: LossFn | None = None, _batch_loss=None) -> float:
  """Token-weighted mean loss over batches, without dropout."""
  batch_loss = _batch_loss or _jitted_batch_loss(apply_fn, loss_fn)
  total, count = 0.0, 0
  for batch in batches:
    n = int(np.sum(np.asarray(batch["labels"]) >= 0))
    if n:
      total += float(batch_loss(params, batch)) * n
      count += n
  if not count:
    raise ValueError("no labelled tokens to compute a loss on")
  return total / count


@jax.jit
def _change(before: Any, after: Any) -> tuple[jax.Array, jax.Array, jax.Array]:
  diff = jax.tree.map(lambda a, b: a.astype(jnp.float32) - b.astype(jnp.float32), after, before)
  return optax.tree.norm(before), optax.tree.norm(diff), jnp.max(jnp.asarray(
      [jnp.max(jnp.abs(d)) for d in jax.tree.leaves(diff)]))


def param_change(before: Any, after: Any) -> dict[str, float]:
  """How far warmup moved the parameters (one compiled call, no loss evaluation): param_norm,
  param_change (||theta_Z - theta_0||), param_rel_change (their ratio), param_max_abs_change."""
  norm, change, most = (float(x) for x in _change(before, after))
  return {"param_norm": norm, "param_change": change, "param_rel_change": change / norm if norm else float("nan"),
          "param_max_abs_change": most}


def warmup_effect(apply_fn: ApplyFn, params_before: Any, params_after: Any,
                  target_batches: Mapping[str, Sequence[Mapping[str, np.ndarray]]], *,
                  loss_fn: LossFn | None = None) -> dict[str, Any]:
  """What warmup changed: parameter movement and the loss on each target language's data.

  Returns param_norm, param_change (||theta_Z - theta_0||), param_rel_change (their ratio),
  param_max_abs_change, loss_before/loss_after/loss_change per language, and their means.
  With the paper's gamma = 5e-5 and plain-SGD outer moves, expect a tiny relative change.
  """
  out = param_change(params_before, params_after) | {"loss_before": {}, "loss_after": {}, "loss_change": {}}
  batch_loss = _jitted_batch_loss(apply_fn, loss_fn)
  for lang, batches in target_batches.items():
    lb = mean_loss(apply_fn, params_before, batches, _batch_loss=batch_loss)
    la = mean_loss(apply_fn, params_after, batches, _batch_loss=batch_loss)
    out["loss_before"][lang], out["loss_after"][lang], out["loss_change"][lang] = lb, la, la - lb
  if target_batches:
    for k in ("loss_before", "loss_after", "loss_change"):
      out[f"mean_{k}"] = float(np.mean(list(out[k].values())))
  return out
