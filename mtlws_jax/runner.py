"""One run of a plan: its warmup (MTL-WS rows), training with model selection, saved predictions.

Common random numbers (what makes runs of a seed paired): the classifier head comes from the
seed (Backbone.initial_params), the dropout key of step t is fold_in(fold_in(key(seed), "dropout"),
t) in every run, training batches are drawn by train/streams.PairedStream from per-set shuffles
keyed by the seed, and warmup batches of language l by (seed, "warmup", l) in every warmup row.
So ZERO-SHOT and an MTL-WS row whose warmup does nothing (Z = 0) train identically.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from mtlws_jax import distributed, plan, runfolder
from mtlws_jax.data import batching, tasks
from mtlws_jax.data.encoded import Encoded, EncodedSets
from mtlws_jax.errors import InputError
from mtlws_jax.eval import tagging
from mtlws_jax.models.backbone import Backbone
from mtlws_jax.train import loop, methods as methods_lib
from mtlws_jax.train.compiled import CompiledSteps
from mtlws_jax.train.streams import BatchStream, PairedStream, crc


class Setup(NamedTuple):
  """What every run of an experiment shares, each built once by its owner (experiment.py)."""
  config: Any
  task: str
  tags: list[str]
  backbone: Backbone
  sets: EncodedSets
  steps: CompiledSteps

  def predict_tags(self, params, enc: Encoded) -> list[list[str]]:
    params = self.steps.place(params, copy=False)  # once, not per batch (selected params are host copies)
    ids = tagging.predict_ids(self.steps.eval_step, params, enc.features, enc.n,
                              self.config.train.eval_batch_size, self.config.data)
    return tagging.to_tags(ids, self.tags)

  def score_tags(self, enc: Encoded, tags: list[list[str]]) -> dict:
    got = tasks.score(self.task, enc.sentences, tags)
    return {k: got[k] for k in ("f1", "precision", "recall")} | {"n_gold": got.get("n_gold"), "n_pred": got.get("n_pred")}

  def score(self, params, enc: Encoded) -> dict:
    return self.score_tags(enc, self.predict_tags(params, enc))

  def score_many(self, stacked_params, enc: Encoded) -> list[dict]:
    """Scores of N stacked models on one set (one compiled evaluation for all)."""
    ids = tagging.predict_ids_many(self.steps.eval_many, stacked_params, enc.features, enc.n,
                                   self.config.train.eval_batch_size, self.config.data)
    return [self.score_tags(enc, tagging.to_tags(model, self.tags)) for model in ids]


def dropout_key(seed: int) -> jax.Array:
  """The base dropout key of every run of a seed (the step is folded in by the train step)."""
  return jax.random.fold_in(jax.random.key(seed), crc("dropout"))


def warmup_params(setup: Setup, row: plan.Row, seed: int, workdir: pathlib.Path, progress: bool):
  """theta_Z of an MTL-WS row for this seed (computed once, saved, reused by the row's runs)."""
  from mtlws_jax.train import warmup as warmup_lib
  cfg = row.warmup
  langs = row.runs[0].warmup_langs
  folder = runfolder.warmup_folder(workdir, row.name, seed)
  init = setup.backbone.initial_params(seed)
  if cfg["epochs"] == 0:   # a sanity row (it must equal ZERO-SHOT), or a slip: say which it is
    print(f"note: warmup {row.name} seed {seed}: warmup.epochs=0, so this row starts where ZERO-SHOT "
          "does (no warmup)", flush=True)
    return init
  done = runfolder.restore_warmup(folder, init)
  if done is not None:
    return done
  folder.mkdir(parents=True, exist_ok=True)
  bs, k = setup.config.train.batch_size, cfg["steps"]
  streams = [BatchStream(setup.sets.translated[l].features, bs, (seed, crc("warmup", l)),
                         pad_multiple=setup.config.data.pad_multiple,
                         pack_length=batching.pack_length_of(setup.config.data)) for l in langs]
  pad_id = setup.backbone.tokenizer.pad_token_id

  def epochs():  # each epoch padded to its own longest batch (a multiple of data.pad_multiple)
    for z in range(cfg["epochs"]):
      yield warmup_lib.stack_language_batches(
          [[s.batch(z * k + i) for i in range(k)] for s in streams], pad_values={"input_ids": pad_id})

  outer, epoch_fn = setup.steps.warmup_for(cfg)
  writer = runfolder.MetricWriter(folder, tensorboard=setup.config.tensorboard)
  bar = None
  if progress and distributed.is_main_process():
    from tqdm import tqdm
    bar = tqdm(total=cfg["epochs"], desc=f"warmup {row.name} seed {seed}", unit="epoch", leave=False,
               dynamic_ncols=True)

  overshot = [False]   # did the last outer move go more than twice the inner steps' mean move?

  def on_epoch(z, m):
    losses = np.asarray(m["inner_loss"])
    writer.write(z, {"warmup_first_inner_loss": float(losses[:, 0].mean()),
                     "warmup_last_inner_loss": float(losses[:, -1].mean()),
                     "delta_norm": float(m["delta_norm"]), "update_norm": float(m["update_norm"])})
    # Which setting to blame for a non-finite value: the outer move (gamma) when it went far beyond
    # the inner steps' mean displacement (an update over twice that mean, or non-finite from a
    # finite one), else the inner SGD steps (beta), whose divergence the outer move only carries.
    delta, update = float(m["delta_norm"]), float(m["update_norm"])
    if not (np.isfinite(losses).all() and np.isfinite(update)):
      if overshot[0] or (np.isfinite(delta) and not np.isfinite(update)):
        raise FloatingPointError(
            f"warmup {row.name} epoch {z}: the outer move made the shared parameters diverge (non-finite loss); "
            f"lower warmup.gamma (the outer step, {cfg['gamma']:g} with outer={cfg['outer']})")
      raise FloatingPointError(f"warmup {row.name} epoch {z}: the inner SGD steps diverged (non-finite loss); "
                               f"lower warmup.beta (the inner rate, {cfg['beta']:g})")
    overshot[0] = update > 2 * delta
    if bar is not None:
      bar.update(1)

  tic = time.perf_counter()
  try:
    theta = warmup_lib.run_warmup(epoch_fn, outer, init, epochs(), rng=None, on_epoch=on_epoch)
  finally:
    writer.close()
    if bar is not None:
      bar.close()
  seconds = time.perf_counter() - tic
  if jax.process_count() > 1:  # sharded over processes by strategy "shard": a full copy on each
    theta = jax.tree.map(jnp.asarray, distributed.host_copy(theta))
  before = setup.backbone.initial_params(seed)
  if cfg["measure_loss"]:
    probe = {l: [streams[i].batch(j) for j in range(min(4, streams[i].batches_per_pass))]
             for i, l in enumerate(langs)}
    effect = warmup_lib.warmup_effect(jax.jit(setup.steps.apply_fn), before, theta, probe)
  else:
    effect = warmup_lib.param_change(before, theta)
  effect["inner_steps"] = row.warmup_steps
  main = distributed.is_main_process()
  if main:
    runfolder.write_seconds(folder, seconds)  # not in results
    runfolder.clear_warmup(folder)
  distributed.barrier("warmup-cleared")
  runfolder.save_warmup(folder, distributed.host_copy(theta))
  if main:
    runfolder.write_effect(folder, effect)
    print(f"warmup {row.name} seed {seed}: {cfg['epochs']} epochs x {k} steps x {len(langs)} languages in "
          f"{seconds:.1f}s; parameters moved by {effect['param_rel_change']:.3g} of their norm", flush=True)
  return theta


def train_stream(setup: Setup, run: methods_lib.Run, seed: int) -> PairedStream:
  """The run's training batches: its sets drawn with the seed's common random numbers."""
  c = setup.config
  sets = []
  for s in run.train_sets:
    enc = setup.sets.source_train if s.kind == methods_lib.GOLD else setup.sets.translated[s.lang]
    sets.append((f"{s.kind}:{s.lang}", enc.features))
  if not any(len(f) for _, f in sets):
    raise InputError(f"run {run.model_id}: empty training set")
  return PairedStream(sets, c.train.batch_size, seed, pad_multiple=c.data.pad_multiple,
                      order=c.data.get("train_order", "random"), pack_length=batching.pack_length_of(c.data))


def _schedule(setup: Setup, row: plan.Row) -> loop.Schedule:
  c = setup.config
  return loop.Schedule(max_steps=int(row.train["max_steps"]), eval_every=c.selection.eval_every,
                       eval_after=c.selection.eval_after, curve_every=c.selection.curve_every,
                       log_every=c.log_every, checkpoint_every=c.checkpoint_every)


def train_run(setup: Setup, row: plan.Row, run: methods_lib.Run, seed: int, params,
              folder: pathlib.Path, progress: bool) -> dict:
  """Trains one model, selects it on English dev, scores and saves its predictions."""
  stream = train_stream(setup, run, seed)
  optimizer, train_step, init_opt_state = setup.steps.train_for(row.train)
  sel = loop.train_and_select(
      folder=folder, params=setup.steps.place(params), optimizer=optimizer,
      init_opt_state=init_opt_state, train_step=train_step,
      evaluate=lambda p: setup.score(p, setup.sets.source_dev), stream=stream,
      rng=dropout_key(seed), schedule=_schedule(setup, row),
      progress=progress and distributed.is_main_process(), desc=f"{run.model_id} seed {seed}",
      tensorboard=setup.config.tensorboard)
  return finish(setup, row, run, seed, folder, sel, stream.size, sel.seconds)


def train_runs(setup: Setup, items, seed: int, workdir: pathlib.Path, progress: bool) -> list[dict]:
  """Several models of one seed trained in one compiled program (train.models_at_once).

  items: (row, run, starting params) with the same train settings; every model keeps its own
  stream, folder, selection, checkpoints and result, as `train_run` would give them.
  """
  rows = {json.dumps(plan.plain(r.train), sort_keys=True) for r, _, _ in items}
  if len(rows) != 1:
    raise ValueError("models trained together need the same train settings")
  row0 = items[0][0]
  streams = [train_stream(setup, run, seed) for _, run, _ in items]
  optimizer, train_step, _ = setup.steps.train_for(row0.train, models=True)
  folders = [runfolder.run_folder(workdir, run.model_id, seed) for _, run, _ in items]
  sels = loop.train_and_select_many(
      folders=folders, params=[jax.tree.map(jnp.asarray, p) for _, _, p in items], optimizer=optimizer,
      train_step=train_step, evaluate=lambda p: setup.score_many(p, setup.sets.source_dev), streams=streams,
      rngs=[dropout_key(seed)] * len(items), schedule=_schedule(setup, row0), pad_id=setup.backbone.tokenizer.pad_token_id,
      progress=progress and distributed.is_main_process(),
      desc=f"{len(items)} models ({', '.join(run.model_id for _, run, _ in items)}) seed {seed}",
      tensorboard=setup.config.tensorboard)
  seconds = sels[0].seconds / len(items)   # the loop's time, the parts before a kill included
  return [finish(setup, row, run, seed, folder, sel, stream.size, seconds)
          for (row, run, _), folder, sel, stream in zip(items, folders, sels, streams)]


def finish(setup: Setup, row: plan.Row, run: methods_lib.Run, seed: int, folder: pathlib.Path,
           sel: loop.Selection, train_examples: int, seconds: float) -> dict:
  """Scores the selected model, saves its predictions and result (the run is then complete)."""
  c = setup.config
  tic = time.perf_counter()
  preds, digests = {}, {}

  def scored(split: str, enc) -> dict:
    tags = setup.predict_tags(sel.best_params, enc)
    preds[split], digests[split] = tags, runfolder.gold_digest(enc.sentences)
    return setup.score_tags(enc, tags)

  en_dev = scored("en_dev", setup.sets.source_dev)
  result = {
      "model_id": run.model_id, "row": row.name, "method": run.method, "adapt": run.adapt, "seed": seed,
      "train_sets": [f"{s.lang}:{s.kind}" for s in run.train_sets], "warmup_langs": list(run.warmup_langs),
      "train_examples": train_examples, "max_steps": int(row.train["max_steps"]),
      # how its batches were laid out (not part of the workdir's identity: see workdir.fingerprint)
      "batches": {"layout": c.data.get("batch_layout", "padded"), "pad_multiple": c.data.pad_multiple,
                  "pack_length": batching.pack_length_of(c.data)},
      "warmup_steps": row.warmup_steps, "best_step": sel.best_step, "english_dev": sel.best_score,
      "english_dev_scores": en_dev, "dev_curve": sel.evals,
      "target_dev": ({l: scored(f"dev:{l}", setup.sets.target_dev[l]) for l in run.eval_langs}
                     if c.selection.score_target_dev else {}),
      "target_test": {l: scored(f"test:{l}", setup.sets.target_test[l]) for l in run.eval_langs
                      if l in setup.sets.target_test},   # a language with no test set: nothing to score
  }
  if abs(en_dev["f1"] - sel.best_score) > 1e-9:  # the selected parameters must score as selected
    raise RuntimeError(f"{folder}: English dev F1 {en_dev['f1']} of the selected parameters differs "
                       f"from the selection's {sel.best_score}")
  if distributed.is_main_process():
    runfolder.save_predictions(folder, preds, digests)
    runfolder.write_seconds(folder, seconds + time.perf_counter() - tic)
    runfolder.write_result(folder, result)
    runfolder.drop_resume_state(folder)
  return result


def describe(result: Mapping[str, Any]) -> str:
  return (f"{result['model_id']} seed {result['seed']}: best English dev F1 {100 * result['english_dev']:.2f} "
          f"at step {result['best_step']}; "
          + ("target test F1 " + ", ".join(f"{l} {100 * v['f1']:.2f}" for l, v in result["target_test"].items())
             if result["target_test"] else "no target test set"))
