"""Rows (methods and variants) x languages x seeds -> runs -> results.json, results.md, plots.

`run(config, workdir)` is what `run.py` calls. Everything that can be wrong with the input (an
unknown method or language, missing files, a translated set with other labels, an empty
training set, a workdir that belongs to another config) is checked before the first step.
Data flows one way: plan (mtlws_jax.plan) -> runs (mtlws_jax.runner, sharing the backbone, the encoded sets
and the compiled steps built here once) ->
saved results and predictions (mtlws_jax.workdir) -> report (mtlws_jax.eval.report).

Runs of a seed are paired (common random numbers, mtlws_jax.runner); a killed experiment
restarted with the same command skips finished runs and resumes the others from their
checkpoints, ending with the same results as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
import sys
from typing import Any

import jax

from mtlws_jax import distributed, plan, runfolder, runner, workdir as workdir_lib
from mtlws_jax.data import tasks
from mtlws_jax.data.encoded import EncodedSets
from mtlws_jax.errors import InputError
from mtlws_jax.models.backbone import Backbone
from mtlws_jax.train.compiled import CompiledSteps

normalize, check_config = plan.normalize, plan.check_config


def plan_runs(config) -> dict[str, plan.Row]:
  return plan.plan_rows(config)


def prepare(config, workdir) -> tuple[Any, dict[str, plan.Row], tasks.TaskData]:
  """Every check that needs no model: config, runs, files, label sets, workdir."""
  config = normalize(config)
  check_config(config)
  rows = plan.plan_rows(config)
  workdir_lib.check(config, pathlib.Path(workdir))
  data = tasks.load(config, plan.translated_langs(rows))
  return config, rows, data


def _groups(pending, at_once: int) -> list[list]:
  """The pending (row, run) pairs of a seed in chunks of at most `at_once` with one train setting
  (one optimizer, one length), in plan order."""
  import json
  if at_once <= 1:
    return [[p] for p in pending]
  by_setting: dict[str, list] = {}
  for row, r in pending:
    key = json.dumps({k: v for k, v in plan.plain(row.train).items() if k != "models_at_once"}, sort_keys=True)
    by_setting.setdefault(key, []).append((row, r))
  return [items[i:i + at_once] for items in by_setting.values() for i in range(0, len(items), at_once)]


def check_models_at_once(config, backbone: Backbone, out) -> int:
  """train.models_at_once, refused before training when that many copies cannot fit."""
  n = int(config.train.get("models_at_once", 1) or 1)
  if n < 1:
    raise InputError(f"config.train.models_at_once must be >= 1, got {n}")
  if n == 1:
    return 1
  one = model_bytes(backbone.params_like, config.train.freeze)
  need = n * one
  have, where = available_memory()
  if have and need > 0.9 * have:
    fit = max(1, int(0.9 * have // one))
    raise InputError(f"train.models_at_once={n} needs about {need / 2**30:.1f} GiB for parameters, gradients "
                     f"and Adam moments alone, but {where} has {have / 2**30:.1f} GiB free: at most {fit} will "
                     "fit (fewer with activations)")
  print(f"training up to {n} models at once (about {need / 2**30:.1f} GiB of {have / 2**30:.1f} GiB on {where} "
        "before activations)", file=out)
  return n


def model_bytes(params, freeze: str) -> int:
  """Bytes one model needs while training: parameters, gradients and two Adam moments of the
  trained ones (those train.freeze leaves alone need only their values; activations not counted)."""
  from mtlws_jax.train import optim
  sizes = [x.size * 4 for x in jax.tree.leaves(params)]
  frozen = jax.tree.leaves(optim.regex_mask(params, freeze)) if freeze else [False] * len(sizes)
  return sum(sizes) + 3 * sum(n for n, f in zip(sizes, frozen) if not f)


def available_memory() -> tuple[int, str]:
  """(free bytes, where) of the default device: accelerator memory, else the host's."""
  dev = jax.devices()[0]
  stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
  if stats and "bytes_limit" in stats:
    return int(stats["bytes_limit"] - stats.get("bytes_in_use", 0)), f"{dev.device_kind}"
  try:
    with open("/proc/meminfo") as f:
      info = {l.split(":")[0]: int(l.split()[1]) * 1024 for l in f if ":" in l}
    return info.get("MemAvailable", 0), "this host"
  except OSError:
    return 0, "this host"


def run(config, workdir: str | os.PathLike, *, out=None) -> dict:
  """Trains and evaluates every (row, run, seed); writes and returns the results."""
  distributed.maybe_initialize(config)  # before anything touches a device
  main = distributed.is_main_process()
  out = (out or sys.stdout) if main else io.StringIO()  # one process prints
  workdir = pathlib.Path(workdir).absolute()  # orbax needs absolute paths
  config, rows, data = prepare(config, workdir)
  # one run.py per workdir: a second is refused naming the first (the lock dies with its process)
  with (workdir_lib.hold(workdir) if main else contextlib.nullcontext()):
    return _train_and_report(config, rows, data, workdir, main=main, out=out)


def _train_and_report(config, rows, data, workdir: pathlib.Path, *, main: bool, out) -> dict:
  """Every (row, run, seed) not finished yet, then the results table (under the workdir's lock)."""
  from mtlws_jax.eval import report, tables
  # the experiment's few values, each built once by the package that owns it
  backbone = Backbone.load(config, data, workdir)
  steps = CompiledSteps(config, backbone.apply_fn, backbone.params_like, backbone.tokenizer.pad_token_id)
  sets = EncodedSets.build(config, data, backbone.tokenizer, workdir / "cache")
  setup = runner.Setup(config, data.task, list(data.tags), backbone, sets, steps)
  if not sets.source_train.features:
    raise InputError("the English training set is empty after encoding", data.files["source_train"])
  for l, enc in sets.translated.items():
    if not enc.features:
      raise InputError(f"the translated {l} training set is empty after encoding", data.files["translated"][l])
  if main:   # hold() made the folder
    workdir_lib.write_config(config, workdir)
    workdir_lib.write_labels(workdir, data.task, data.scheme, data.tags, data.pos, backbone.folder)
  where = ("one device" if steps.mesh is None else
           f"{'FSDP' if steps.fsdp else 'data parallel'} over {steps.mesh.size} devices"
           + (f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""))
  print(f"model: {backbone.folder} ({backbone.found}); task {config.task}; "
        f"{len(data.source_train)} English training sentences; targets {', '.join(config.target_langs)}; "
        f"{where}", file=out)
  for line in sets.notes:
    print(line, file=out)
  for lang, path in data.untested.items():
    print(f"note: no {lang} test set ({path} does not exist): the runs train and are saved, nothing is "
          f"scored in {lang}", file=out)

  at_once = check_models_at_once(config, backbone, out)
  results: dict[str, dict[int, dict]] = {}
  for seed in config.seeds:
    pending = []
    for row in rows.values():
      for r in row.runs:
        folder = runfolder.run_folder(workdir, r.model_id, seed)
        try:
          done = runfolder.read_result(folder)
        except InputError as e:  # a half-written result: the run's checkpoints give it back
          print(f"warning: {e}; recomputing that run from its checkpoints", file=out, flush=True)
          done = None
        if done is not None:
          results.setdefault(r.model_id, {})[seed] = done
        else:
          pending.append((row, r))
    warm: dict[str, Any] = {}

    def start(row, r):
      if not r.warmup:
        return backbone.initial_params(seed)
      if row.name not in warm:
        warm[row.name] = runner.warmup_params(setup, row, seed, workdir, config.progress)
      return distributed.host_copy(warm[row.name])

    for group in _groups(pending, at_once):
      if len(group) == 1:
        row, r = group[0]
        got = [runner.train_run(setup, row, r, seed, start(row, r), runfolder.run_folder(workdir, r.model_id, seed),
                                config.progress)]
      else:
        got = runner.train_runs(setup, [(row, r, start(row, r)) for row, r in group], seed, workdir, config.progress)
      for res in got:
        results.setdefault(res["model_id"], {})[seed] = res
        print(runner.describe(res), file=out, flush=True)
    backbone.forget(seed)

  summary = report.summarize(config, rows, results, workdir, gold_test=data.target_test)
  table = tables.results_markdown(summary)
  if main:
    report.write(workdir, summary, table)
  print(table, file=out)
  return summary
