"""One run of a plan: its warmup (MTL-WS rows), training with model selection, saved predictions.

Common random numbers (what makes runs of a seed paired): the classifier head comes from the
seed (bench.initial_params), the dropout key of step t is fold_in(fold_in(key(seed), "dropout"),
t) in every run, training batches are drawn by train/streams.PairedStream from per-set shuffles
keyed by the seed, and warmup batches of language l by (seed, "warmup", l) in every warmup row.
So ZERO-SHOT and an MTL-WS row whose warmup does nothing (Z = 0) train identically.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mtlws_jax import distributed, plan, workdir as workdir_lib
from mtlws_jax.bench import Bench, barrier
from mtlws_jax.data import encode
from mtlws_jax.errors import InputError
from mtlws_jax.train import loop, methods as methods_lib
from mtlws_jax.train.streams import BatchStream, PairedStream, crc


def dropout_key(seed: int) -> jax.Array:
  """The base dropout key of every run of a seed (the step is folded in by the train step)."""
  return jax.random.fold_in(jax.random.key(seed), crc("dropout"))


@jax.jit
def _change(before, after):
  import optax
  diff = jax.tree.map(lambda a, b: a.astype(jnp.float32) - b.astype(jnp.float32), after, before)
  return optax.tree.norm(before), optax.tree.norm(diff), jnp.max(jnp.asarray(
      [jnp.max(jnp.abs(d)) for d in jax.tree.leaves(diff)]))


def _param_change(before, after) -> dict:
  """How far warmup moved the parameters (one compiled call; no loss evaluation)."""
  norm, change, most = (float(x) for x in _change(before, after))
  return {"param_norm": norm, "param_change": change, "param_rel_change": change / norm if norm else float("nan"),
          "param_max_abs_change": most}


def warmup_params(bench: Bench, row: plan.Row, seed: int, workdir: pathlib.Path, progress: bool):
  """theta_Z of an MTL-WS row for this seed (computed once, saved, reused by the row's runs)."""
  import orbax.checkpoint as ocp
  from mtlws_jax.train import warmup as warmup_lib
  cfg = row.warmup
  langs = row.runs[0].warmup_langs
  folder = workdir_lib.warmup_folder(workdir, row.name, seed)
  done = folder / "params"
  init = bench.initial_params(seed)
  if cfg["epochs"] == 0:
    return init
  if (folder / "effect.json").exists() and done.exists():
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, init)
    try:
      with ocp.StandardCheckpointer() as ck:
        return ck.restore(done.resolve(), abstract)
    except Exception as e:  # a corrupted save: the warmup is deterministic, so recompute it
      print(f"warning: {done}: the saved warmup cannot be read ({type(e).__name__}); recomputing it",
            flush=True)
      (folder / "effect.json").unlink(missing_ok=True)
  folder.mkdir(parents=True, exist_ok=True)
  bs, k = bench.config.train.batch_size, cfg["steps"]
  streams = [BatchStream(bench.translated[l].features, bs, (seed, crc("warmup", l)),
                         pad_multiple=bench.config.data.pad_multiple,
                         pack_length=encode.pack_length_of(bench.config.data)) for l in langs]
  pad_id = bench.tokenizer.pad_token_id

  def epochs():  # each epoch padded to its own longest batch (a multiple of data.pad_multiple)
    for z in range(cfg["epochs"]):
      yield warmup_lib.stack_language_batches(
          [[s.batch(z * k + i) for i in range(k)] for s in streams], pad_values={"input_ids": pad_id})

  outer, epoch_fn = bench.warmup_epoch_for(cfg)
  writer = loop.MetricWriter(folder, tensorboard=bench.config.tensorboard)
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
    theta = jax.tree.map(jnp.asarray, loop.copy_tree(theta))
  before = bench.initial_params(seed)
  if cfg["measure_loss"]:
    probe = {l: [streams[i].batch(j) for j in range(min(4, streams[i].batches_per_pass))]
             for i, l in enumerate(langs)}
    effect = warmup_lib.warmup_effect(jax.jit(bench.apply_fn), before, theta, probe)
  else:
    effect = _param_change(before, theta)
  effect["inner_steps"] = row.warmup_steps
  main = distributed.is_main_process()
  if main:
    (folder / "timing.json").write_text(json.dumps({"seconds": seconds}) + "\n")  # not in results
    if done.exists():
      shutil.rmtree(done)
  barrier("warmup-cleared")
  with ocp.StandardCheckpointer() as ck:  # every process takes part (orbax is collective)
    ck.save(done.resolve(), loop.copy_tree(theta))
  if main:
    workdir_lib.write_json(folder / "effect.json", effect)
    print(f"warmup {row.name} seed {seed}: {cfg['epochs']} epochs x {k} steps x {len(langs)} languages in "
          f"{seconds:.1f}s; parameters moved by {effect['param_rel_change']:.3g} of their norm", flush=True)
  return theta


def train_stream(bench: Bench, run: methods_lib.Run, seed: int) -> PairedStream:
  """The run's training batches: its sets drawn with the seed's common random numbers."""
  c = bench.config
  sets = []
  for s in run.train_sets:
    enc = bench.source_train if s.kind == methods_lib.GOLD else bench.translated[s.lang]
    sets.append((f"{s.kind}:{s.lang}", enc.features))
  if not any(len(f) for _, f in sets):
    raise InputError(f"run {run.model_id}: empty training set")
  return PairedStream(sets, c.train.batch_size, seed, pad_multiple=c.data.pad_multiple,
                      order=c.data.get("train_order", "random"), pack_length=encode.pack_length_of(c.data))


def _schedule(bench: Bench, row: plan.Row) -> loop.Schedule:
  c = bench.config
  return loop.Schedule(max_steps=int(row.train["max_steps"]), eval_every=c.selection.eval_every,
                       eval_after=c.selection.eval_after, curve_every=c.selection.curve_every,
                       log_every=c.log_every, checkpoint_every=c.checkpoint_every)


def train_run(bench: Bench, row: plan.Row, run: methods_lib.Run, seed: int, params,
              folder: pathlib.Path, progress: bool) -> dict:
  """Trains one model, selects it on English dev, scores and saves its predictions."""
  stream = train_stream(bench, run, seed)
  optimizer, train_step, init_opt_state = bench.steps_for(row.train)
  tic = time.perf_counter()
  sel = loop.train_and_select(
      folder=folder, params=bench.place(params), optimizer=optimizer,
      init_opt_state=init_opt_state, train_step=train_step,
      evaluate=lambda p: bench.score(p, bench.source_dev), stream=stream,
      rng=dropout_key(seed), schedule=_schedule(bench, row),
      progress=progress and distributed.is_main_process(), desc=f"{run.model_id} seed {seed}",
      tensorboard=bench.config.tensorboard)
  return finish(bench, row, run, seed, folder, sel, stream.size, time.perf_counter() - tic)


def train_runs(bench: Bench, items, seed: int, workdir: pathlib.Path, progress: bool) -> list[dict]:
  """Several models of one seed trained in one compiled program (train.models_at_once).

  items: (row, run, starting params) with the same train settings; every model keeps its own
  stream, folder, selection, checkpoints and result, as `train_run` would give them.
  """
  rows = {json.dumps(plan.plain(r.train), sort_keys=True) for r, _, _ in items}
  if len(rows) != 1:
    raise ValueError("models trained together need the same train settings")
  row0 = items[0][0]
  streams = [train_stream(bench, run, seed) for _, run, _ in items]
  optimizer, train_step, _ = bench.steps_for(row0.train, models=True)
  folders = [workdir_lib.run_folder(workdir, run.model_id, seed) for _, run, _ in items]
  tic = time.perf_counter()
  sels = loop.train_and_select_many(
      folders=folders, params=[jax.tree.map(jnp.asarray, p) for _, _, p in items], optimizer=optimizer,
      train_step=train_step, evaluate=lambda p: bench.score_many(p, bench.source_dev), streams=streams,
      rngs=[dropout_key(seed)] * len(items), schedule=_schedule(bench, row0), pad_id=bench.tokenizer.pad_token_id,
      progress=progress and distributed.is_main_process(),
      desc=f"{len(items)} models ({', '.join(run.model_id for _, run, _ in items)}) seed {seed}",
      tensorboard=bench.config.tensorboard)
  seconds = (time.perf_counter() - tic) / len(items)
  return [finish(bench, row, run, seed, folder, sel, stream.size, seconds)
          for (row, run, _), folder, sel, stream in zip(items, folders, sels, streams)]


def finish(bench: Bench, row: plan.Row, run: methods_lib.Run, seed: int, folder: pathlib.Path,
           sel: loop.Selection, train_examples: int, seconds: float) -> dict:
  """Scores the selected model, saves its predictions and result (the run is then complete)."""
  c = bench.config
  tic = time.perf_counter()
  preds, digests = {}, {}

  def scored(split: str, enc) -> dict:
    tags = bench.predict_tags(sel.best_params, enc)
    preds[split], digests[split] = tags, workdir_lib.gold_digest(enc.sentences)
    return bench.score_tags(enc, tags)

  en_dev = scored("en_dev", bench.source_dev)
  result = {
      "model_id": run.model_id, "row": row.name, "method": run.method, "adapt": run.adapt, "seed": seed,
      "train_sets": [f"{s.lang}:{s.kind}" for s in run.train_sets], "warmup_langs": list(run.warmup_langs),
      "train_examples": train_examples, "max_steps": int(row.train["max_steps"]),
      # how its batches were laid out (not part of the workdir's identity: see workdir.fingerprint)
      "batches": {"layout": c.data.get("batch_layout", "padded"), "pad_multiple": c.data.pad_multiple,
                  "pack_length": encode.pack_length_of(c.data)},
      "warmup_steps": row.warmup_steps, "best_step": sel.best_step, "english_dev": sel.best_score,
      "english_dev_scores": en_dev, "dev_curve": sel.evals,
      "target_dev": ({l: scored(f"dev:{l}", bench.target_dev[l]) for l in run.eval_langs}
                     if c.selection.score_target_dev else {}),
      "target_test": {l: scored(f"test:{l}", bench.target_test[l]) for l in run.eval_langs
                      if l in bench.target_test},   # a language with no test set: nothing to score
  }
  if abs(en_dev["f1"] - sel.best_score) > 1e-9:  # the selected parameters must score as selected
    raise RuntimeError(f"{folder}: English dev F1 {en_dev['f1']} of the selected parameters differs "
                       f"from the selection's {sel.best_score}")
  if distributed.is_main_process():
    workdir_lib.save_predictions(folder, preds, digests)
    (folder / "timing.json").write_text(json.dumps({"seconds": seconds + time.perf_counter() - tic}) + "\n")
    workdir_lib.write_json(folder / "result.json", result)
    # A finished run needs only its selected parameters (predict, export): the latest state
    # (parameters and Adam moments, about twice the model) was for resuming.
    shutil.rmtree(folder / "checkpoints" / "latest", ignore_errors=True)
  return result


def describe(result: Mapping[str, Any]) -> str:
  return (f"{result['model_id']} seed {result['seed']}: best English dev F1 {100 * result['english_dev']:.2f} "
          f"at step {result['best_step']}; "
          + ("target test F1 " + ", ".join(f"{l} {100 * v['f1']:.2f}" for l, v in result["target_test"].items())
             if result["target_test"] else "no target test set"))
