"""One run's folder, and one warmup's: every path and file in them is written and read here.

  runs/<model_id>/seed<S>/    checkpoints/latest/<step> (params, optimizer and loop state: for
                              resuming) and checkpoints/best/<step> (the selected parameters),
                              metrics.jsonl, tensorboard/, predictions.json.gz, timing.json,
                              result.json (written last: a run with it is complete)
  warmup/<row>/seed<S>/       params/ (the warmed-up parameters), metrics.jsonl, tensorboard/,
                              timing.json, effect.json (written last)

Training (train/loop.py, runner.py) writes through this module; the report, selection, `predict`
and `export` read through it and never import the training loop. Files are read back as input:
a damaged one is one line naming it, never a traceback.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from mtlws_jax.data import textfile
from mtlws_jax.errors import InputError
from mtlws_jax.workdir import read_json, write_json

Params = Any
RESULT, TIMING, EFFECT, METRICS = "result.json", "timing.json", "effect.json", "metrics.jsonl"
CHECKPOINTS, WARMUP_PARAMS = "checkpoints", "params"


def run_folder(workdir: pathlib.Path, model_id: str, seed: int) -> pathlib.Path:
  return pathlib.Path(workdir) / "runs" / model_id / f"seed{seed}"


def warmup_folder(workdir: pathlib.Path, row: str, seed: int) -> pathlib.Path:
  return pathlib.Path(workdir) / "warmup" / row / f"seed{seed}"


def read_result(folder: pathlib.Path) -> dict | None:
  """A finished run's result.json, or None when the run has not finished."""
  p = pathlib.Path(folder) / RESULT
  if not p.exists():
    return None
  got = read_json(p, "result.json")
  problem = _result_problem(got)
  if problem:
    raise InputError(f"result.json is not a run result ({problem}); delete it and run the same "
                     "run.py command again to recompute the run", p)
  return got


def _number(x) -> bool:
  return isinstance(x, (int, float)) and not isinstance(x, bool)


def _result_problem(r) -> str:
  number = lambda x: _number(x) and x == x      # a score is never NaN
  if not isinstance(r, dict):
    return "not a JSON object"
  if not number(r.get("english_dev")):
    return "english_dev is not a number"
  if not isinstance(r.get("best_step"), int) or isinstance(r.get("best_step"), bool):
    return "best_step is not an integer"
  for key in ("target_test", "target_dev"):
    scores = r.get(key, {})
    if not isinstance(scores, dict):
      return f"{key} is not an object of scores"
    for lang, v in scores.items():
      if not isinstance(v, dict) or not number(v.get("f1")):
        return f"{key}.{lang}.f1 is not a number"
  return ""


# Predictions: one space-joined tag string per sentence, per split ("en_dev", "test:es", "dev:es").
PREDICTIONS = "predictions.json.gz"


def save_predictions(folder: pathlib.Path, splits: Mapping[str, list[list[str]]],
                     gold_digest: Mapping[str, str]) -> None:
  data = {"format": 1, "gold_digest": dict(gold_digest),
          "splits": {k: [" ".join(tags) for tags in v] for k, v in splits.items()}}
  tmp = pathlib.Path(folder) / (PREDICTIONS + ".tmp")
  with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as f:
    f.write(json.dumps(data, separators=(",", ":")).encode("utf-8"))  # mtime 0: same bytes each time
  tmp.replace(pathlib.Path(folder) / PREDICTIONS)


def read_predictions(folder: pathlib.Path) -> dict | None:
  """{"gold_digest": {split: sha1}, "splits": {split: [[tag, ...], ...]}} or None if not saved."""
  p = pathlib.Path(folder) / PREDICTIONS
  if not p.exists():
    return None
  try:
    with gzip.open(p, "rt", encoding="utf-8") as f:
      data = json.load(f)
  except (OSError, EOFError, ValueError) as e:
    raise InputError(f"saved predictions are corrupted ({type(e).__name__}: {e}); rerun run.py "
                     "with the same command after deleting this run's result.json", p) from None
  problem = _predictions_problem(data)
  if problem:
    raise InputError(f"saved predictions are not in this project's format ({problem}); rerun run.py "
                     "with the same command after deleting this run's result.json", p)
  return {"gold_digest": data["gold_digest"],
          "splits": {k: [s.split(" ") if s else [] for s in v] for k, v in data["splits"].items()}}


def _predictions_problem(data: Any) -> str:
  """What is wrong with a decoded predictions file ("" if nothing): it is read back as a stranger's."""
  if not isinstance(data, dict):
    return "not a JSON object"
  if data.get("format") != 1:
    return f"format {data.get('format')!r}, expected 1"
  digest, splits = data.get("gold_digest"), data.get("splits")
  if not isinstance(digest, dict) or not all(isinstance(v, str) for v in digest.values()):
    return "gold_digest is not an object of strings"
  if not isinstance(splits, dict):
    return "splits is not an object"
  for k, v in splits.items():
    if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
      return f"splits.{k} is not a list of tag strings"
  return ""


def gold_digest(sentences) -> str:
  """A short hash of a gold set's tags (the report checks predictions against the same gold)."""
  import hashlib
  h = hashlib.sha1()
  for s in sentences:
    h.update((" ".join(s.tags) + "\n").encode())
  return h.hexdigest()[:16]


def read_seconds(folder: pathlib.Path) -> float | None:
  """A run's or warmup's timing.json (wall seconds: shown in the tables, never a result). A missing
  or damaged one is None, with a warning for the damaged one: the table shows "–"."""
  import sys
  p = pathlib.Path(folder) / TIMING
  if not p.exists():
    return None
  try:
    seconds = json.loads(p.read_text(encoding="utf-8"))["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
      raise ValueError(f"seconds is {seconds!r}")
    return float(seconds)
  except (OSError, ValueError, KeyError, TypeError) as e:
    print(f"warning: {p}: not a timing file ({e}); its time is left out of the table", file=sys.stderr)
    return None


def write_result(folder: pathlib.Path, result: Mapping[str, Any]) -> None:
  write_json(pathlib.Path(folder) / RESULT, result)


def write_seconds(folder: pathlib.Path, seconds: float) -> None:
  """Wall seconds of a run or warmup (shown in the tables, never a result)."""
  textfile.write_text(pathlib.Path(folder) / TIMING, json.dumps({"seconds": seconds}) + "\n")


def finished_runs(workdir: pathlib.Path) -> list[tuple[str, int, dict]]:
  """(model id, seed, result) of every finished run in a workdir."""
  out = []
  for res in sorted(pathlib.Path(workdir).glob(f"runs/*/seed*/{RESULT}")):
    seed = res.parent.name[4:]
    if seed.isdigit():
      r = read_result(res.parent)
      if r is not None:
        out.append((res.parent.parent.name, int(seed), r))
  return out


def seeds_on_disk(workdir: pathlib.Path, model_ids) -> list[int]:
  """Every seed that has a folder for one of `model_ids` (finished or not)."""
  return sorted({int(p.name[4:]) for mid in model_ids for p in (pathlib.Path(workdir) / "runs" / mid).glob("seed*")
                 if p.name[4:].isdigit()})


def checkpoints_folder(folder: pathlib.Path) -> pathlib.Path:
  return pathlib.Path(folder) / CHECKPOINTS


def kept_selection(folder: pathlib.Path) -> bool:
  """Whether a run kept its selected parameters (checkpoints are not committed with results)."""
  return (checkpoints_folder(folder) / "best").is_dir()


def drop_resume_state(folder: pathlib.Path) -> None:
  """A finished run needs only its selected parameters (predict, export): the latest state
  (parameters and Adam moments, about twice the model) was for resuming."""
  shutil.rmtree(checkpoints_folder(folder) / "latest", ignore_errors=True)


# ------------------------------------------------------------------ warmup folders


def read_effect(folder: pathlib.Path) -> dict | None:
  """A finished warmup's effect.json (how far it moved the parameters), or None."""
  p = pathlib.Path(folder) / EFFECT
  if not p.exists():
    return None
  got = read_json(p, "the warmup's effect.json")
  problem = _effect_problem(got)
  if problem:
    raise InputError(f"the warmup's effect.json is not a warmup effect ({problem}); delete it and run "
                     "the same run.py command again to recompute the warmup", p)
  return got


def _effect_problem(e) -> str:
  """param_rel_change may be NaN (a zero norm); it must be a number."""
  if not isinstance(e, dict):
    return "not a JSON object"
  if not _number(e.get("param_rel_change")):
    return "param_rel_change is not a number"
  for k in ("mean_loss_before", "mean_loss_after"):      # absent where the loss was not measured
    if k in e and not _number(e[k]):
      return f"{k} is not a number"
  return ""


def warmup_effect(workdir: pathlib.Path, row: str, seed: int) -> dict | None:
  """The effect.json of a row's warmup for a seed (or of the seed's one warmup in a format-1
  workdir, warmup/seed<S>/), or None."""
  return read_effect(warmup_folder(workdir, row, seed)) or read_effect(pathlib.Path(workdir) / "warmup" / f"seed{seed}")


def restore_warmup(folder: pathlib.Path, like: Params) -> Params | None:
  """The saved warmed-up parameters of a finished warmup, or None (not finished, or a damaged save:
  the warmup is deterministic, so it is computed again)."""
  folder = pathlib.Path(folder)
  done = folder / WARMUP_PARAMS
  if not ((folder / EFFECT).exists() and done.exists()):
    return None
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, like)
  try:
    with ocp.StandardCheckpointer() as ck:
      return ck.restore(done.resolve(), abstract)
  except Exception as e:  # noqa: BLE001 (orbax raises many types for broken files)
    print(f"warning: {done}: the saved warmup cannot be read ({type(e).__name__}); recomputing it", flush=True)
    (folder / EFFECT).unlink(missing_ok=True)
    return None


def clear_warmup(folder: pathlib.Path) -> None:
  """Before a warmup's parameters are saved again (process 0 only)."""
  shutil.rmtree(pathlib.Path(folder) / WARMUP_PARAMS, ignore_errors=True)


def save_warmup(folder: pathlib.Path, params: Params) -> None:
  """The warmed-up parameters (every process takes part: orbax is collective)."""
  with ocp.StandardCheckpointer() as ck:
    ck.save((pathlib.Path(folder) / WARMUP_PARAMS).resolve(), params)


def write_effect(folder: pathlib.Path, effect: Mapping[str, Any]) -> None:
  """Written last: a warmup folder with effect.json is complete."""
  write_json(pathlib.Path(folder) / EFFECT, effect)


# ------------------------------------------------------------------ metrics
# JSON lines + TensorBoard, truncated to the restored step on resume.


class MetricWriter:
  """Appends {"step": ..., ...} lines to metrics.jsonl and scalars to TensorBoard.

  On resume from step s, lines after s (written by the killed run after its last checkpoint)
  are dropped from metrics.jsonl and TensorBoard purges its events after s, so the logs read as
  one uninterrupted run.
  """

  def __init__(self, folder: pathlib.Path, *, resume_step: int | None = None, tensorboard: bool = True):
    self.path = folder / METRICS
    self._tb = None
    self.enabled = jax.process_index() == 0  # one process writes the logs of a multi-host job
    if not self.enabled:
      return
    folder.mkdir(parents=True, exist_ok=True)
    if resume_step is None:
      self.path.write_text("")
    elif self.path.exists():
      kept = [l for l in self.path.read_text(errors="replace").splitlines()
              if (rec := _record(l)) is not None and rec.get("step", 0) <= resume_step]
      self.path.write_text("".join(l + "\n" for l in kept))
    if tensorboard:
      from tensorboardX import SummaryWriter
      self._tb = SummaryWriter(str(folder / "tensorboard"), purge_step=resume_step, flush_secs=30)

  def write(self, step: int, values: Mapping[str, Any]) -> None:
    if not self.enabled:
      return
    record = {"step": int(step), **{k: _jsonable(v) for k, v in values.items()}}
    with self.path.open("a") as f:
      f.write(json.dumps(record) + "\n")
    if self._tb is not None:
      for k, v in record.items():
        if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
          self._tb.add_scalar(k, v, int(step))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.close()


def _record(line: str) -> dict | None:
  """A metrics line, or None for a blank or half-written one (a kill during the write)."""
  try:
    rec = json.loads(line)
  except ValueError:
    return None
  return rec if isinstance(rec, dict) else None


def _jsonable(v):
  if isinstance(v, (np.generic, jax.Array)):
    v = np.asarray(v).item()
  if isinstance(v, float) and not math.isfinite(v):
    return str(v)
  return v


def read_metrics(path: os.PathLike) -> list[dict]:
  p = pathlib.Path(path)
  if not p.exists():
    return []
  return [r for l in p.read_text(errors="replace").splitlines() if (r := _record(l)) is not None]


# ------------------------------------------------------------------ checkpoints


class RunCheckpoints:
  """orbax checkpoints of one run: `latest/` (params, optimizer state, loop state) and `best/`.

  Saved synchronously: a checkpoint on disk is complete (orbax writes to a temporary folder and
  renames it), so a kill during a save leaves the previous one usable. `best/` always keeps the
  step that the latest checkpoint's loop state points to, plus any newer best saved since;
  `restore` discards those newer ones (the resumed run recomputes them).
  """

  def __init__(self, folder: pathlib.Path, keep_latest: int = 1):
    """keep_latest=2 for models trained together: after a kill between their saves, every model
    can go back to the last step they all saved."""
    opts = lambda keep: ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False,
                                                     create=True)
    self.folder = folder
    self.latest = ocp.CheckpointManager(folder / "latest", options=opts(keep_latest))
    self.best = ocp.CheckpointManager(folder / "best", options=opts(None))
    self._best_refs: dict[int, int] = {}  # latest step -> the best step its loop state points to

  def latest_step(self) -> int | None:
    return self.latest.latest_step()

  def save_latest(self, step: int, params, opt_state, loop_state: Mapping[str, Any]) -> None:
    if step in self.latest.all_steps():
      return
    self.latest.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave({"params": params, "opt_state": opt_state}),
        loop=ocp.args.JsonSave(dict(loop_state))))
    self.latest.wait_until_finished()
    kept = set(self.latest.all_steps())
    self._best_refs[step] = loop_state.get("best_step", -1)
    self._best_refs = {k: b for k, b in self._best_refs.items() if k in kept}
    for s in self.best.all_steps():  # only the bests the kept checkpoints point to are needed now
      if s not in self._best_refs.values():
        self.best.delete(s)

  def save_best(self, step: int, params) -> None:
    if step in self.best.all_steps():
      self.best.delete(step)
    self.best.save(step, args=ocp.args.Composite(params=ocp.args.StandardSave(params)))
    self.best.wait_until_finished()

  def restore(self, params, opt_state, step: int | None = None) -> tuple[Params, Any, dict, Params | None]:
    """(params, opt_state, loop_state, best_params or None) of the latest checkpoint (or of
    `step`, an older kept one; newer ones are deleted)."""
    step = self.latest.latest_step() if step is None else step
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, {"params": params, "opt_state": opt_state})
    got = self.latest.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract), loop=ocp.args.JsonRestore()))
    for s in self.latest.all_steps():
      if s != step:
        self.latest.delete(s)
    loop_state = dict(got.loop)
    best = None
    best_step = loop_state.get("best_step", -1)
    self._best_refs = {step: best_step}
    for s in self.best.all_steps():
      if s != best_step:
        self.best.delete(s)  # saved after the latest checkpoint by a run that was then killed
    if best_step >= 0:
      if best_step not in self.best.all_steps():
        raise RuntimeError(f"checkpoint {self.folder}: best step {best_step} is missing from best/")
      abstract_p = jax.tree.map(ocp.utils.to_shape_dtype_struct, params)
      best = self.best.restore(best_step, args=ocp.args.Composite(
          params=ocp.args.StandardRestore(abstract_p))).params
    return got.state["params"], got.state["opt_state"], loop_state, best

  def restore_best(self, params_like) -> tuple[int, Params] | None:
    step = self.best.latest_step()
    if step is None:
      return None
    abstract_p = jax.tree.map(ocp.utils.to_shape_dtype_struct, params_like)
    return step, self.best.restore(step, args=ocp.args.Composite(
        params=ocp.args.StandardRestore(abstract_p))).params

  def close(self) -> None:
    self.latest.close()
    self.best.close()
