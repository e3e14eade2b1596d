"""A finished run as a tagger: what `predict` and `export` read (nothing here trains).

A run.py workdir holds, besides its runs, `labels.json` (task, tag set, UPOS values and the
resolved model folder: what a tagger needs and the data no longer has to tell). A run's
selected parameters are its orbax `checkpoints/best/<step>`. `pick` chooses the run with the best
English dev F1 when none is named (model selection, as in the paper: never a test set).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from mtlws_jax import runfolder, workdir as workdir_lib
from mtlws_jax.data import taskspec
from mtlws_jax.errors import InputError

@dataclasses.dataclass
class SavedRun:
  """A run's model (selected parameters loaded), tokenizer, and what was saved beside it."""
  workdir: pathlib.Path
  model_id: str
  seed: int
  result: dict
  config: dict
  labels: dict
  model: Any          # models.tagger.Tagger with the selected parameters
  tokenizer: Any
  step: int

  @property
  def task(self) -> str:
    return self.labels["task"]

  @property
  def tags(self) -> list[str]:
    return list(self.labels["tags"])


def pick(workdir: pathlib.Path, run: str | None = None, seed: int | None = None) -> tuple[str, int, dict]:
  """The named run (and seed), or the finished one with the best English dev F1."""
  runs = runfolder.finished_runs(workdir)
  if not runs:
    raise InputError("no finished run in this workdir (no runs/*/seed*/result.json)", workdir)
  chosen = [r for r in runs if (run is None or r[0] == run) and (seed is None or r[1] == seed)]
  if not chosen:
    known = sorted({f"{m} seed {s}" for m, s, _ in runs})
    raise InputError(f"no finished run {run or '*'} seed {'*' if seed is None else seed}; finished: "
                     + ", ".join(known[:12]) + (" ..." if len(known) > 12 else ""), workdir)
  return max(chosen, key=lambda r: (r[2]["english_dev"], -r[1]))


def load(workdir: str | pathlib.Path, run: str | None = None, seed: int | None = None) -> SavedRun:
  """The selected parameters of a finished run, as a Tagger with its tokenizer."""
  import jax
  import orbax.checkpoint as ocp
  from mtlws_jax.models import checkpoints
  from mtlws_jax.models.tagger import merge_tagger, split_tagger
  workdir = pathlib.Path(workdir).absolute()
  workdir_lib.check_exists(workdir)
  config = workdir_lib.saved_config(workdir)
  if config is None:
    raise InputError("no config.json: not a workdir made by run.py", workdir)
  labels_path = workdir / workdir_lib.LABELS
  if not labels_path.exists():
    raise InputError(f"no {workdir_lib.LABELS}: the workdir was made by an earlier version; rerun run.py on it "
                     "once (finished runs are kept) to write it", workdir)
  labels = workdir_lib.read_labels(labels_path)
  model_id, seed, result = pick(workdir, run, seed)
  folder = pathlib.Path(labels["model_folder"])
  if not (folder / "config.json").exists():
    raise InputError("the run's model folder is gone (moved or deleted); put it back or convert it "
                     "again", folder)
  model, tokenizer = checkpoints.load_pretrained(folder, num_tags=len(labels["tags"]), num_pos=len(labels["pos"]),
                                                 use_predicate=taskspec.get(labels["task"]).predicates, dropout=0.0,
                                                 local_files_only=True)
  graphdef, params, _ = split_tagger(model)
  ckpt_dir = runfolder.checkpoints_folder(runfolder.run_folder(workdir, model_id, seed))
  if not runfolder.kept_selection(runfolder.run_folder(workdir, model_id, seed)):
    raise InputError(f"run {model_id} seed {seed} kept no checkpoint (checkpoints/best is missing)", ckpt_dir)
  ckpts = runfolder.RunCheckpoints(ckpt_dir)
  try:
    got = ckpts.restore_best(jax.tree.map(ocp.utils.to_shape_dtype_struct, params))
  except Exception as e:  # noqa: BLE001 (orbax: corrupted or foreign files)
    raise InputError(f"the selected checkpoint cannot be read ({type(e).__name__}: {str(e)[:200]})",
                     ckpt_dir / "best") from None
  finally:
    ckpts.close()
  if got is None:
    raise InputError(f"run {model_id} seed {seed} has no selected checkpoint", ckpt_dir / "best")
  step, best = got
  if step != result["best_step"]:
    raise InputError(f"checkpoints/best holds step {step} but result.json selected step {result['best_step']}",
                     ckpt_dir / "best")
  return SavedRun(workdir=workdir, model_id=model_id, seed=seed, result=result, config=config, labels=labels,
                  model=merge_tagger(graphdef, best), tokenizer=tokenizer, step=step)
