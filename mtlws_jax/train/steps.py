"""Pure, jitted training and evaluation steps built from a model's `apply_fn` and an optax optimizer.

No I/O and no globals: the loop (mtlws_jax/train/loop.py, experiment.py) owns files, logging and
checkpoints. `params`/`opt_state` are donated, so the caller must use the returned ones.

The dropout key of a step is `fold_in(rng, step)` where step is read from the optimizer state:
one base key per run gives a different, reproducible mask at every step, and a resumed run
(restored opt_state) continues with the same masks as an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from mtlws_jax.train import optim

Params = Any
Batch = Mapping[str, Any]
ApplyFn = Callable[..., jax.Array]  # apply_fn(params, batch, rng=None) -> logits [B,S,T]
LossFn = Callable[[jax.Array, jax.Array], jax.Array]  # (logits, labels) -> scalar


class NonFiniteLossError(FloatingPointError):
  """The loss or gradient became NaN/inf; the message names the step."""

  def __init__(self, step: int, loss: float, grad_norm: float, window: tuple[int, int] | None = None):
    self.step, self.loss, self.grad_norm = step, loss, grad_norm
    read = (f" (first of steps {window[0]}-{window[1]}, read together)"
            if window is not None and window[0] != window[1] else "")
    super().__init__(
        f"training stopped: non-finite loss at step {step}{read} (loss={loss}, grad_norm={grad_norm}); "
        f"that update was not applied and nothing after step {step - 1} is saved: the "
        "last good checkpoint is kept; lower the learning rate or enable gradient clipping "
        "(grad_clip_norm) and run again")


def default_loss_fn() -> LossFn:
  """The tagger's masked token cross-entropy (mean over labels >= 0)."""
  from mtlws_jax.models.tagger import token_cross_entropy
  return token_cross_entropy


def make_train_step(apply_fn: ApplyFn, optimizer: optax.GradientTransformation, *,
                    loss_fn: LossFn | None = None, skip_nonfinite: bool = True,
                    donate: bool = True, models: bool = False) -> Callable[..., tuple[Params, Any, dict[str, jax.Array]]]:
  """Builds `train_step(params, opt_state, batch, rng) -> (params, opt_state, metrics)`, jitted.

  rng: a base PRNG key (dropout key = fold_in(rng, step)) or None for no dropout.
  metrics: loss, grad_norm, finite (bool), step (1-based number of this update, i.e. the
  optimizer count after it). With skip_nonfinite a NaN/inf loss or gradient leaves params and
  opt_state unchanged, so the last good parameters survive donation; call `check_finite`.
  The optimizer state must hold a counter (see optim.make_optimizer / optim.step_of).
  models=True: the step of N models at once (jax.vmap): params, opt_state, batch and rng carry a
  leading model axis [N, ...] and so do the metrics (train.models_at_once).
  """
  loss_fn = loss_fn or default_loss_fn()

  def train_step(params, opt_state, batch, rng):
    step = optim.step_of(opt_state)
    dropout_rng = None if rng is None else jax.random.fold_in(rng, step)

    def objective(p):
      logits = apply_fn(p, batch, dropout_rng)
      return loss_fn(logits, batch["labels"])

    if isinstance(optimizer, optim.RowsOptimizer):
      loss, grad_norm, finite, new_params, new_opt_state = _rows_update(
          optimizer, apply_fn, loss_fn, params, opt_state, batch, dropout_rng, skip_nonfinite)
    else:
      loss, grads = jax.value_and_grad(objective)(params)
      grad_norm = optax.tree.norm(grads)
      finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)

      def update(operands):
        grads, opt_state, params = operands
        updates, new_opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), new_opt_state

      if skip_nonfinite:
        # A conditional, not a select of old and new: with the state donated, a select keeps the
        # old Adam moments alive beside the new ones, and XLA copies every moment each step to
        # update it in place (a fifth of the e5-small step on this CPU). Under vmap (N models)
        # the cond becomes that select again.
        new_params, new_opt_state = jax.lax.cond(finite, update, lambda o: (o[2], o[1]),
                                                 (grads, opt_state, params))
      else:
        new_params, new_opt_state = update((grads, opt_state, params))
    metrics = {"loss": loss, "grad_norm": grad_norm, "finite": finite,
               "step": (step + 1).astype(jnp.int32)}
    return new_params, new_opt_state, metrics

  if models:  # several models in one program: params, state, batch and key on a leading axis
    train_step = jax.vmap(train_step)
  return jax.jit(train_step, donate_argnums=(0, 1) if donate else ())


def _rows_update(opt: optim.RowsOptimizer, apply_fn: ApplyFn, loss_fn: LossFn, params, opt_state,
                 batch: Batch, dropout_rng, skip_nonfinite: bool):
  """One step that differentiates and updates only the table rows the batch touches.

  The model sees a small table of the batch's distinct rows and ids remapped into it, so it
  computes exactly what the full table would give; the gradient of those rows is the dense
  gradient's (duplicate ids are summed by the lookup's backward pass, untouched rows have none).
  Nothing table-sized is read or written but the touched rows (the NaN guard too selects
  rows), so with donated buffers the scatters happen in place.
  """
  table = optim.get_leaf(params, opt.path)
  ids = batch[opt.ids_key]
  vocab = table.shape[0]
  uniq, inverse = jnp.unique(ids.reshape(-1), size=ids.size, fill_value=vocab, return_inverse=True)
  rows = table.at[uniq].get(mode="fill", fill_value=0)  # filler slots (id = vocab) read zeros
  small_batch = {**batch, opt.ids_key: inverse.reshape(ids.shape).astype(ids.dtype)}

  def objective(p):
    return loss_fn(apply_fn(p, small_batch, dropout_rng), batch["labels"])

  loss, grads = jax.value_and_grad(objective)(optim.with_leaf(params, opt.path, rows))
  grad_norm = optax.tree.norm(grads)  # the dense gradient's norm: untouched rows add nothing
  if opt.clip_norm:  # optax's own clip, over both parts (the rest optimizer has none)
    grads, _ = optax.clip_by_global_norm(opt.clip_norm).update(grads, optax.EmptyState())
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
  row_grads, rest_grads = optim.get_leaf(grads, opt.path), optim.without_leaf(grads, opt.path)
  rest = optim.without_leaf(params, opt.path)
  is_table = lambda x: getattr(x, "shape", ())[:1] == (vocab,) and x.ndim == table.ndim
  old_rows_state = jax.tree.map(lambda x: x.at[uniq].get(mode="fill", fill_value=0) if is_table(x) else x,
                                opt_state.table)

  def update(operands):
    rest_grads, rest_state, rest, row_grads, rows_state, rows = operands
    updates, rest_state = opt.rest.update(rest_grads, rest_state, rest)
    row_updates, rows_state = opt.table.update(row_grads, rows_state, rows)
    return optax.apply_updates(rest, updates), rest_state, row_updates, rows_state

  operands = (rest_grads, opt_state.rest, rest, row_grads, old_rows_state, rows)
  if skip_nonfinite:  # a NaN/inf step changes nothing (a cond, as in the dense step)
    new_rest, rest_state, row_updates, rows_state = jax.lax.cond(
        finite, update, lambda o: (o[2], o[1], jnp.zeros_like(o[5]), o[4]), operands)
  else:
    new_rest, rest_state, row_updates, rows_state = update(operands)
  table_state = jax.tree.map(lambda full, new: full.at[uniq].set(new, mode="drop") if is_table(full) else new,
                             opt_state.table, rows_state)
  new_table = table.at[uniq].add(row_updates.astype(table.dtype), mode="drop")  # filler slots dropped
  return (loss, grad_norm, finite, optim.with_leaf(new_rest, opt.path, new_table),
          optim.RowsState(rest=rest_state, table=table_state))


def make_eval_step(apply_fn: ApplyFn, *, loss_fn: LossFn | None = None, models: bool = False
                   ) -> Callable[[Params, Batch], dict[str, jax.Array]]:
  """Builds `eval_step(params, batch) -> {pred_ids [B,S] int32, loss_sum, num_tokens}`, jitted.

  No dropout. loss_sum = mean loss * number of labelled tokens, so a dev-set loss is
  sum(loss_sum) / sum(num_tokens) whatever the batch sizes.
  """
  loss_fn = loss_fn or default_loss_fn()

  def eval_step(params, batch):
    logits = apply_fn(params, batch, None)
    labels = batch["labels"]
    num_tokens = jnp.sum(labels >= 0).astype(jnp.int32)
    loss = loss_fn(logits, labels)
    loss_sum = jnp.where(num_tokens > 0, loss * num_tokens, 0.0)
    return {"pred_ids": jnp.argmax(logits, axis=-1).astype(jnp.int32),
            "loss_sum": loss_sum, "num_tokens": num_tokens}

  if models:  # N stacked models on one batch: outputs [N, ...]
    eval_step = jax.vmap(eval_step, in_axes=(0, None))
  return jax.jit(eval_step)


def check_finite(metrics: Mapping[str, Any], step: int | None = None) -> None:
  """Raises NonFiniteLossError naming the step when a train step reported a NaN/inf loss.

  step defaults to metrics["step"]. Reading `finite` waits for the step to finish, so call it
  every step only if you don't mind the sync (the cost is small next to a transformer step).
  """
  if bool(np.asarray(metrics["finite"])):
    return
  if step is None:
    step = int(np.asarray(metrics["step"]))
  raise NonFiniteLossError(int(step), float(np.asarray(metrics["loss"])),
                           float(np.asarray(metrics.get("grad_norm", np.nan))))
