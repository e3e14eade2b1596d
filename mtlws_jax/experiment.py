"""Rows (methods and variants) x languages x seeds -> runs -> results.json, results.md, plots.

`run(config, workdir)` is what `run.py` calls. Everything that can be wrong with the input (an
unknown method or language, missing files, a translated set with other labels, an empty
training set, a workdir that belongs to another config) is checked before the first step.
Data flows one way: plan (mtlws_jax.plan) -> runs (mtlws_jax.runner, on a shared Bench) ->
saved results and predictions (mtlws_jax.workdir) -> report (mtlws_jax.eval.report).

Runs of a seed are paired (common random numbers, mtlws_jax.runner); a killed experiment
restarted with the same command skips finished runs and resumes the others from their
checkpoints, ending with the same results as an uninterrupted one.
"""

from __future__ import annotations

import io
import os
import pathlib
import sys
from typing import Any

import jax

from mtlws_jax import distributed, plan, runner, saved, workdir as workdir_lib
from mtlws_jax.bench import Bench, frozen  # noqa: F401 (frozen: part of the public API)
from mtlws_jax.data import tasks
from mtlws_jax.errors import InputError
from mtlws_jax.train import loop

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


def run(config, workdir: str | os.PathLike, *, out=None) -> dict:
  """Trains and evaluates every (row, run, seed); writes and returns the results."""
  from mtlws_jax.eval import report
  distributed.maybe_initialize(config)  # before anything touches a device
  main = distributed.is_main_process()
  out = (out or sys.stdout) if main else io.StringIO()  # one process prints
  workdir = pathlib.Path(workdir).absolute()  # orbax needs absolute paths
  config, rows, data = prepare(config, workdir)
  bench = Bench(config, data, workdir)
  if not bench.source_train.features:
    raise InputError("the English training set is empty after encoding", data.files["source_train"])
  for l, enc in bench.translated.items():
    if not enc.features:
      raise InputError(f"the translated {l} training set is empty after encoding", data.files["translated"][l])
  if main:
    workdir.mkdir(parents=True, exist_ok=True)
    workdir_lib.write_config(config, workdir)
    saved.write_labels(workdir, data.task, data.scheme, data.tags, data.pos, bench.folder)
  where = ("one device" if bench.mesh is None else
           f"{'FSDP' if bench.fsdp else 'data parallel'} over {bench.mesh.size} devices"
           + (f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""))
  print(f"model: {bench.folder} ({bench.found}); task {config.task}; "
        f"{len(data.source_train)} English training sentences; targets {', '.join(config.target_langs)}; "
        f"{where}", file=out)
  for line in bench.notes:
    print(line, file=out)

  results: dict[str, dict[int, dict]] = {}
  for seed in config.seeds:
    for row in rows.values():
      warm = None
      for r in row.runs:
        folder = workdir_lib.run_folder(workdir, r.model_id, seed)
        try:
          done = workdir_lib.read_result(folder)
        except InputError as e:  # a half-written result: the run's checkpoints give it back
          print(f"warning: {e}; recomputing that run from its checkpoints", file=out, flush=True)
          done = None
        if done is not None:
          results.setdefault(r.model_id, {})[seed] = done
          continue
        if r.warmup:
          if warm is None:
            warm = runner.warmup_params(bench, row, seed, workdir, config.progress)
          params = loop.copy_tree(warm)
        else:
          params = bench.initial_params(seed)
        res = runner.train_run(bench, row, r, seed, params, folder, config.progress)
        results.setdefault(r.model_id, {})[seed] = res
        print(runner.describe(res), file=out, flush=True)
    bench.forget(seed)

  summary = report.summarize(config, rows, results, workdir, gold_test=data.target_test)
  table = report.results_markdown(summary)
  if main:
    workdir_lib.write_json(workdir / "results.json", summary)
    (workdir / "results.md").write_text(table)
    report.plot_all(summary, workdir)
  print(table, file=out)
  if config.get("showcase", False) and main:
    from mtlws_jax import showcase
    showcase.show(workdir, data.target_test, out)
  return summary
