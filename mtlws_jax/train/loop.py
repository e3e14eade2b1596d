"""One training run with model selection, logs and checkpoints that resume exactly.

One loop (`_train`) serves one model (`train_and_select`) and N models stacked on a leading axis
(`train_and_select_many`, train.models_at_once): it steps a pure `train_step`, evaluates the
English dev set every N steps after M (the paper's model selection), keeps the best parameters,
writes metrics to `metrics.jsonl` and TensorBoard, and saves orbax checkpoints (latest and best).

Exact resumption: everything a step depends on is a function of (seed, step). The batch of step
i comes from `stream.batch(i)` (train/streams.py: each pass is shuffled with a key of the seed
and the pass number); the dropout key is fold_in(rng, step) inside the train step, the step being read
from the restored optimizer state. The loop's own state (best score, pending loss sums for the
next log line) is checkpointed with the parameters, so a run killed anywhere and restarted ends
with the same parameters, the same selected step and the same metrics as one never stopped.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from mtlws_jax import distributed, runfolder
from mtlws_jax.runfolder import MetricWriter, RunCheckpoints
from mtlws_jax.data import batching
from mtlws_jax.train import steps as steps_lib

Params = Any


# ---------------------------------------------------------------------------------------------
# Data order as a function of the step.


from mtlws_jax.train.streams import BatchStream, PairedStream  # noqa: E402,F401 (the loop's streams)


# ---------------------------------------------------------------------------------------------
# The loop.


@dataclasses.dataclass(frozen=True)
class Schedule:
  """When to log, evaluate and checkpoint (steps count updates, from 1)."""

  max_steps: int
  eval_every: int
  eval_after: int = 0
  curve_every: int = 0
  log_every: int = 50
  checkpoint_every: int = 500

  def is_candidate(self, step: int) -> bool:
    """A model-selection evaluation: every N steps from M on, and always the last step."""
    return step == self.max_steps or (step >= self.eval_after and step % self.eval_every == 0)

  def is_curve(self, step: int) -> bool:
    return bool(self.curve_every) and step % self.curve_every == 0


@dataclasses.dataclass
class Selection:
  best_params: Params
  best_step: int
  best_score: float
  evals: list[dict]
  seconds: float = 0.0   # wall time of the training loop, the parts before any kill included


class _Clock:
  """Training seconds so far: those saved in the restored loop state plus this process's."""

  def __init__(self, saved: float):
    self.saved, self.start = float(saved), time.perf_counter()

  def __call__(self) -> float:
    return self.saved + time.perf_counter() - self.start


def train_and_select(*, folder: os.PathLike, params: Params, optimizer, train_step: Callable,
                     evaluate: Callable[[Params], Mapping[str, float]], stream: BatchStream,
                     rng: jax.Array | None, schedule: Schedule, progress: bool = False,
                     desc: str = "", tensorboard: bool = True,
                     init_opt_state: Callable[[Params], Any] | None = None) -> Selection:
  """Trains `params` for schedule.max_steps and returns the best by English dev F1.

  train_step(params, opt_state, batch, rng) -> (params, opt_state, metrics) donates its inputs
  (steps.make_train_step); `params` given here are donated too. evaluate(params) -> {"f1", ...}
  must not donate. A NaN/inf loss raises steps.NonFiniteLossError naming the step; the last
  good checkpoint stays on disk. init_opt_state (default optimizer.init) builds the optimizer
  state in the parameters' device layout; checkpoints are restored into that layout.
  """
  return _train([folder], [params], optimizer=optimizer, train_step=train_step, evaluate=lambda p: [evaluate(p)],
                streams=[stream], rngs=[rng], schedule=schedule, progress=progress, desc=desc,
                tensorboard=tensorboard, init_opt_state=init_opt_state)[0]


def train_and_select_many(*, folders: Sequence[os.PathLike], params: Sequence[Params], optimizer,
                          train_step: Callable, evaluate: Callable[[Params], Sequence[Mapping[str, float]]],
                          streams: Sequence[Any], rngs: Sequence[jax.Array], schedule: Schedule, pad_id: int,
                          progress: bool = False, desc: str = "", tensorboard: bool = True) -> list[Selection]:
  """`train_and_select` for N models in one compiled program (train.models_at_once).

  train_step: steps.make_train_step(..., models=True), all arrays with a leading model axis;
  evaluate(stacked params) -> one score dict per model. Each model keeps its own stream, key,
  folder, metrics, selection and checkpoints, exactly as when trained alone (the same numbers up
  to float summation order). The models save at the same steps and keep their last two
  checkpoints, so after a kill between their saves all resume from the last step every one saved.
  """
  return _train(folders, params, optimizer=optimizer, train_step=train_step, evaluate=evaluate, streams=streams,
                rngs=rngs, schedule=schedule, progress=progress, desc=desc, tensorboard=tensorboard,
                stacked=True, pad_id=pad_id)


def _fresh_state() -> dict:
  return {"step": 0, "best_step": -1, "best_score": -1.0, "evals": [], "loss_sum": 0.0, "loss_count": 0}


def _train(folders, params, *, optimizer, train_step, evaluate, streams, rngs, schedule: Schedule,
           progress: bool, desc: str, tensorboard: bool, stacked: bool = False, pad_id: int = 0,
           init_opt_state=None) -> list[Selection]:
  """The one training loop: one model (its own step), or N stacked on a leading axis (stacked=True).

  The host reads the device (NaN check, loss sums) only at log, evaluation and checkpoint steps.
  """
  n = len(folders)
  folders = [pathlib.Path(f) for f in folders]
  opt_states = [(init_opt_state or optimizer.init)(p) for p in params]
  loop_states, bests = [_fresh_state() for _ in range(n)], [None] * n
  params = list(params)
  if not stacked:
    ckpt, resume, restored = _open_checkpoints(folders[0], params[0], opt_states[0])
    ckpts = [ckpt]
    if restored is not None:
      params[0], opt_states[0], loop_states[0], bests[0] = restored
      logging.info("%s: resuming from step %d (best %.4f at step %d)", folders[0], loop_states[0]["step"],
                   loop_states[0]["best_score"], loop_states[0]["best_step"])
  else:
    ckpts, resume = _open_common(folders, params, opt_states, loop_states, bests)
  writers = [MetricWriter(f, resume_step=resume, tensorboard=tensorboard) for f in folders]
  best_saved = [True] * n
  if stacked:
    p_s, o_s, rng_s = stack(params), stack(opt_states), stack(rngs)
    batch_of = lambda step: stack_batches([s.batch(step) for s in streams], pad_id)
    model = lambda tree, i: unstack(tree, i)
  else:
    p_s, o_s, rng_s = params[0], opt_states[0], rngs[0]
    batch_of = streams[0].batch
    model = lambda tree, i: tree
  del params, opt_states
  step = loop_states[0]["step"]
  clock = _Clock(max(ls.get("seconds", 0.0) for ls in loop_states))
  bar = None
  if progress and step < schedule.max_steps:
    from tqdm import tqdm
    bar = tqdm(total=schedule.max_steps, initial=step, desc=desc, unit="step", dynamic_ncols=True, leave=False)
  tic, tic_step = time.perf_counter(), step
  pending = Pending()
  try:
    while step < schedule.max_steps:
      p_s, o_s, m = train_step(p_s, o_s, batch_of(step), rng_s)
      step += 1
      pending.add(step, m)
      if bar is not None:
        bar.update(1)
      candidate, curve = schedule.is_candidate(step), schedule.is_curve(step)
      log = step % schedule.log_every == 0 or step == schedule.max_steps
      if log or candidate or curve or step % schedule.checkpoint_every == 0:
        try:  # the host waits for the device here only: NaN check and loss sums of the window
          last = pending.read(loop_states if stacked else loop_states[0])
        except steps_lib.NonFiniteLossError as e:
          writers[e.model or 0].write(e.step, {"error": str(e)})
          logging.error("%s: %s (last good checkpoint: step %s)", folders[e.model or 0], e,
                        ckpts[e.model or 0].latest_step())
          raise
        norms = np.atleast_1d(np.asarray(last["grad_norm"])) if last else None
      if log:
        now = time.perf_counter()
        for i, ls in enumerate(loop_states):
          writers[i].write(step, {"train_loss": ls["loss_sum"] / ls["loss_count"], "grad_norm": float(norms[i]),
                                  "steps_per_sec": (step - tic_step) / max(now - tic, 1e-9)})
        if bar is not None and not stacked:
          bar.set_postfix(loss=f"{loop_states[0]['loss_sum'] / loop_states[0]['loss_count']:.4f}")
        for ls in loop_states:
          ls["loss_sum"], ls["loss_count"] = 0.0, 0
        tic, tic_step = now, step
      if candidate or curve:
        for i, scores in enumerate(evaluate(p_s)):
          scores = {k: float(v) for k, v in scores.items()}
          writers[i].write(step, {f"dev_{k}": v for k, v in scores.items()} | {"selection": candidate})
          ls = loop_states[i]
          ls["evals"].append({"step": step, "f1": scores["f1"], "selection": candidate})
          if candidate and scores["f1"] > ls["best_score"]:
            bests[i], best_saved[i] = distributed.host_copy(model(p_s, i)), False  # written with the next checkpoint
            ls["best_score"], ls["best_step"] = scores["f1"], step
        tic, tic_step = time.perf_counter(), step
      if step % schedule.checkpoint_every == 0 or step == schedule.max_steps:
        now = clock()
        for i in range(n):
          loop_states[i]["seconds"] = now
          best_saved[i] = _checkpoint(ckpts[i], step, model(p_s, i), model(o_s, i), loop_states[i], bests[i],
                                      best_saved[i])
  finally:
    if bar is not None:
      bar.close()
    for w in writers:
      w.close()
    for c in ckpts:
      c.close()
  out = []
  for i, ls in enumerate(loop_states):
    if bests[i] is None:
      raise RuntimeError(f"{folders[i]}: no model-selection evaluation happened (max_steps={schedule.max_steps})")
    out.append(Selection(best_params=bests[i], best_step=ls["best_step"], best_score=ls["best_score"],
                         evals=list(ls["evals"]), seconds=clock()))
  return out


def _open_common(folders, params, opt_states, loop_states, bests):
  """Checkpoints of N models trained together, restored to the last step every one saved (in place);
  (checkpoints, resume step or None)."""
  opened = [_open_checkpoints(f, p, o, keep_latest=2, restore=False) for f, p, o in zip(folders, params, opt_states)]
  ckpts = [c for c, _, _ in opened]
  steps_on_disk = [c.latest.all_steps() for c in ckpts]
  common = set.intersection(*(set(s) for s in steps_on_disk)) if all(steps_on_disk) else set()
  resume = max(common) if common else None
  for i, c in enumerate(ckpts):
    if resume is None:
      if steps_on_disk[i]:  # others have nothing to resume from: all start again (same results)
        ckpts[i].close()
        import shutil
        shutil.rmtree(runfolder.checkpoints_folder(folders[i]), ignore_errors=True)
        ckpts[i] = RunCheckpoints(runfolder.checkpoints_folder(folders[i]), keep_latest=2)
      continue
    params[i], opt_states[i], loop_states[i], bests[i] = c.restore(params[i], opt_states[i], step=resume)
  return ckpts, resume


class Pending:
  """Step metrics left on the device until a log, evaluation or checkpoint step reads them.

  Reading a step's loss makes the host wait for that step, so the next one cannot be dispatched
  while it runs; the loop reads a whole window at once instead. A non-finite step changed
  nothing (the train step skips it on the device); `read` raises naming the first such step of
  the window before anything is evaluated or saved, so the last checkpoint stays the last good one.
  """

  def __init__(self):
    self._steps: list[tuple[int, Mapping[str, Any]]] = []

  def add(self, step: int, metrics: Mapping[str, Any]) -> None:
    self._steps.append((step, {k: metrics[k] for k in ("loss", "grad_norm", "finite")}))

  def read(self, loop_states: dict | Sequence[dict]) -> dict[str, np.ndarray]:
    """Adds the window's losses to the loop state's sums (one state per model when the metrics
    carry a model axis); the last step's metrics as host values.

    A non-finite step raises NonFiniteLossError; `.model` is the index of the first model that
    had it (None for one model)."""
    many = not isinstance(loop_states, dict)
    got = jax.device_get([m for _, m in self._steps])
    window = (self._steps[0][0], self._steps[-1][0]) if self._steps else (0, 0)
    steps_read, self._steps = [s for s, _ in self._steps], []
    for step, m in zip(steps_read, got):
      finite = np.atleast_1d(m["finite"])
      if not finite.all():
        i = int(np.argmin(finite))
        err = steps_lib.NonFiniteLossError(step, float(np.atleast_1d(m["loss"])[i]),
                                           float(np.atleast_1d(m["grad_norm"])[i]), window=window)
        err.model = i if many else None
        raise err
    for m in got:
      for i, ls in enumerate(loop_states if many else [loop_states]):
        ls["loss_sum"] += float(np.asarray(m["loss"])[i] if many else m["loss"])
        ls["loss_count"] += 1
    return got[-1] if got else {}


def stack(trees: Sequence[Any]):
  """Pytrees with a new leading model axis (device arrays)."""
  import jax.numpy as jnp
  return jax.tree.map(lambda *xs: jnp.stack([jnp.asarray(x) for x in xs]), *trees)


def unstack(tree, i: int):
  """Model i of a stacked pytree."""
  return jax.tree.map(lambda x: x[i], tree)


def stack_batches(batches: Sequence[Mapping[str, np.ndarray]], pad_id: int) -> dict[str, np.ndarray]:
  """Batches of N models (same rows) as [N, B, S] arrays, right-padded to the longest S with
  label-less padding (input pad id, mask 0, labels -1), which changes no model's loss."""
  fill = batching.fill_values(pad_id)
  out = {}
  for key in batches[0]:
    arrays = [np.asarray(b[key]) for b in batches]
    shape = tuple(max(a.shape[d] for a in arrays) for d in range(arrays[0].ndim))
    stacked = np.full((len(arrays),) + shape, fill.get(key, 0), arrays[0].dtype)
    for i, a in enumerate(arrays):
      stacked[(i,) + tuple(slice(0, n) for n in a.shape)] = a
    out[key] = stacked
  return out


def _open_checkpoints(folder: pathlib.Path, params, opt_state, keep_latest: int = 1, restore: bool = True):
  """(checkpoints, resume step or None, restored state or None) of a run's folder.

  A checkpoint that cannot be read (a corrupted file, a half-written save from a killed process
  on a filesystem without atomic renames) is not fatal: a run is a function of its seed, so it
  restarts from step 0 and ends with the same results; say so and which checkpoint was broken.
  """
  import shutil
  where = runfolder.checkpoints_folder(folder)
  try:
    ckpt = RunCheckpoints(where, keep_latest=keep_latest)
    resume = ckpt.latest_step()
    if restore and resume is not None:
      return ckpt, resume, ckpt.restore(params, opt_state)
    if not restore and resume is not None:  # check the files are readable now, restore later
      abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, {"params": params, "opt_state": opt_state})
      for s in ckpt.latest.all_steps():
        ckpt.latest.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract),
                                                       loop=ocp.args.JsonRestore()))
    return ckpt, resume, None
  except Exception as e:  # noqa: BLE001 (orbax raises many types for broken files)
    print(f"warning: {where}: the checkpoint cannot be read ({type(e).__name__}: {str(e)[:200]}); "
          "restarting this run from step 0 (its results will be the same)", flush=True)
    shutil.rmtree(where, ignore_errors=True)
    return RunCheckpoints(where, keep_latest=keep_latest), None, None


def _checkpoint(ckpt: RunCheckpoints, step: int, params, opt_state, loop_state: dict, best,
                best_saved: bool) -> bool:
  """Best params (if new since the last checkpoint), then the latest state that points to them.

  Writing the best only here keeps one pair of writes per checkpoint; a kill between the two
  leaves a best newer than `latest`, which `restore` discards.
  """
  loop_state["step"] = step
  if not best_saved and best is not None:
    ckpt.save_best(loop_state["best_step"], best)
  ckpt.save_latest(step, params, opt_state, loop_state)
  return True
