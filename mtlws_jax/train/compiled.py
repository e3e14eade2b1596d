"""The experiment's compiled steps, built once per setting and shared by every run and seed.

One train step per distinct optimizer setting (a variant with its own rate or length gets its
own), one warmup epoch per warmup setting (its compilations, one per batch length, serve every
seed), one eval step (and its N-model form). With config.parallel on several devices the steps
are the data-parallel or FSDP ones of train/data_parallel.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Callable

import jax
import jax.numpy as jnp
from absl import logging

from mtlws_jax.errors import InputError
from mtlws_jax.train import optim, steps

# Train settings that change the optimizer (and so need their own compiled step).
OPTIMIZER_KEYS = ("learning_rate", "lr_schedule", "lr_warmup_steps", "max_steps", "grad_clip_norm",
                  "weight_decay", "weight_decay_mask", "head_lr_scale", "freeze", "embedding_update")
WARMUP_KEYS = ("outer", "gamma", "outer_momentum", "beta", "strategy")


def _plain(node) -> dict:
  return node.to_dict() if hasattr(node, "to_dict") else dict(node)


class CompiledSteps:
  """apply_fn (frozen parameters' gradients stopped), eval step, and a cache of train and
  warmup steps keyed by their settings."""

  def __init__(self, config, raw_apply: Callable, params_like, pad_id: int):
    self._raw_apply, self._params_like, self.pad_id = raw_apply, params_like, pad_id
    # The shared apply_fn stops gradients of frozen parameters (the optimizer ignores them too).
    self.apply_fn = optim.stop_frozen(raw_apply, params_like, config.train.freeze)
    from mtlws_jax.train import data_parallel as dp
    self.mesh, self.fsdp = dp.data_layout(config)
    self._train: dict[str, tuple[Any, Any, Any]] = {}
    self._warmup: dict[str, tuple[Any, Any]] = {}
    self._eval_many = None
    if self.mesh is None:
      self.eval_step = steps.make_eval_step(self.apply_fn)
      self.place = lambda p, copy=True: jax.tree.map(jnp.asarray, p)  # device arrays pass through
    else:
      self._sharded_eval()
    self.train_for(config.train)  # the default setting's errors before any run starts

  @property
  def eval_many(self):
    """The eval step of N models stacked on a leading axis (one device)."""
    if self._eval_many is None:
      self._eval_many = steps.make_eval_step(self.apply_fn, models=True)
    return self._eval_many

  def train_for(self, train: Mapping[str, Any], *, models: bool = False) -> tuple[Any, Any, Any]:
    """(optimizer, jitted train step, init_opt_state) for one train setting, built once.

    models=True: the step of several models stacked on a leading axis (one device only)."""
    train = _plain(train)
    keys = [k for k in OPTIMIZER_KEYS if not (k == "max_steps" and train.get("lr_schedule") == "constant")]
    key = json.dumps({k: train.get(k) for k in keys}, sort_keys=True) + ("/models" if models else "")
    if key in self._train:
      return self._train[key]
    rows = train.get("embedding_update", "dense") == "rows"
    if self.mesh is not None and (models or rows):
      what = "train.models_at_once > 1" if models else "train.embedding_update=rows"
      other = "train one model at a time" if models else "use embedding_update=dense"
      raise InputError(f"{what} runs on one device: set --config.parallel.mode=none (or {other} over the devices)")
    try:
      apply_fn, opt = optim.for_training(train, self._params_like, self._raw_apply)
    except InputError:
      raise
    except ValueError as e:
      raise InputError(f"config.train: {e}") from None
    if rows:
      table = optim.get_leaf(self._params_like, optim.WORD_TABLE)
      logging.info("embedding_update=rows: Adam over the touched rows of the %d x %d word-embedding table",
                   *table.shape)
    if self.mesh is None:
      self._train[key] = (opt, steps.make_train_step(apply_fn, opt, models=models), opt.init)
    else:
      from mtlws_jax.train import data_parallel as dp
      mesh, fsdp = self.mesh, self.fsdp
      step = dp.make_sharded_train_step(apply_fn, opt, mesh, fsdp=fsdp, pad=True, pad_id=self.pad_id)
      self._train[key] = (opt, step, lambda p, opt=opt: dp.init_opt_state(opt, p, mesh, fsdp))
    return self._train[key]

  def warmup_for(self, warmup: Mapping[str, Any]) -> tuple[Any, Any]:
    """(outer optimizer, jitted warmup epoch) of a warmup setting, built once."""
    from mtlws_jax.train import warmup as warmup_lib
    w = _plain(warmup)
    key = json.dumps({k: w.get(k) for k in WARMUP_KEYS}, sort_keys=True)
    if key not in self._warmup:
      outer = optim.outer_optimizer_from_config(w)
      self._warmup[key] = (outer, warmup_lib.make_warmup_epoch(self.apply_fn, outer, beta=w["beta"],
                                                               strategy=w["strategy"]))
    return self._warmup[key]

  def _sharded_eval(self) -> None:
    """Data-parallel evaluation over self.mesh; batches that do not split get filler rows."""
    from mtlws_jax.train import data_parallel as dp
    mesh, fsdp = self.mesh, self.fsdp
    sharded_eval = dp.make_sharded_eval_step(self.apply_fn, mesh, fsdp=fsdp, pad=True, pad_id=self.pad_id)

    def eval_step(params, batch):  # host rows of every process, filler rows dropped
      rows = len(batch["input_ids"])
      return {"pred_ids": dp.gather(sharded_eval(params, batch)["pred_ids"])[:rows]}

    self.eval_step = eval_step
    self.place = lambda p, copy=True: dp.place_params(p, mesh, fsdp, copy=copy)
