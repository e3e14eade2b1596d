"""A workdir on disk: its identity, where each run lives, and what finished runs saved.

Layout:
  config.json                     the resolved config, with "workdir_format" (a later run with
                                  other settings, or a workdir of an older format, is refused)
  warmup/<row>/seed<S>/           an MTL-WS row's warmup: warmed parameters, metrics, effect.json
  runs/<model_id>/seed<S>/        one model: checkpoints/, metrics.jsonl, tensorboard/,
                                  predictions.json.gz, result.json (written last: a run with it
                                  is complete and skipped)
  results.json, results.md, plots/*.png

Format 2 (this version) pairs the runs of a seed (train/streams.py) and saves predictions.
Format 1 workdirs (no "workdir_format") drew each run's batches and dropout from its model id:
their runs cannot be resumed or extended here, since new runs would not be paired with old ones;
the report still reads them (without intervals: they saved no predictions).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from mtlws_jax import plan
from mtlws_jax.data import taskspec, textfile
from mtlws_jax.errors import InputError

FORMAT = 2
# Config keys that choose *which* runs to do or *where* they run, not what they compute:
# changing them keeps a workdir usable (a run started on one device may resume on eight).
SELECTION_KEYS = ("method", "seeds", "progress", "parallel", "distributed", "variants", "showcase",
                  "translated_dev")


def fingerprint(config_or_saved) -> dict:
  """The part of a config that decides what every run computes (variants are compared by name)."""
  d = dict(plan.plain(config_or_saved))
  for k in SELECTION_KEYS:
    d.pop(k, None)
  if isinstance(d.get("data"), dict):  # how a batch is laid out (packed or padded rows, how far
    # they round up) is the same model on the same batches (tests/test_packing.py); only the
    # dropout masks are drawn for another shape, as for another seed: a study may go on in
    # either layout, and a seed's runs stay paired (same batches, same layout, same masks)
    d["data"] = {k: v for k, v in d["data"].items() if k not in ("batch_layout", "pack_length", "pad_multiple")}
  if isinstance(d.get("train"), dict):  # how many models train together changes no result;
    # embedding_update "dense" is what every workdir made before the option computed
    d["train"] = {k: v for k, v in d["train"].items()
                  if k != "models_at_once" and (k, v) != ("embedding_update", "dense")}
  return d


def _diff(a, b, prefix=""):
  out = []
  for k in sorted(set(a) | set(b)):
    va, vb = a.get(k, "<absent>"), b.get(k, "<absent>")
    if isinstance(va, Mapping) and isinstance(vb, Mapping):
      out += _diff(va, vb, f"{prefix}{k}.")
    elif va != vb:
      out.append(f"{prefix}{k}: {va!r} -> {vb!r}")
  return out


def read_json(path: pathlib.Path, what: str) -> Any:
  """JSON of a workdir file; a truncated or invalid file is an InputError naming it."""
  try:
    return json.loads(path.read_text(encoding="utf-8"))
  except UnicodeDecodeError:
    raise InputError(f"{what} is not UTF-8 text (corrupted)", path) from None
  except ValueError as e:
    raise InputError(f"{what} is truncated or not valid JSON ({e.msg} at line {e.lineno})", path,
                     e.lineno) from None
  except OSError as e:
    raise InputError(f"cannot read {what}: {e.strerror}", path) from None


def write_json(path: pathlib.Path, obj: Any, *, sort_keys: bool = False) -> None:
  """Whole or not at all (textfile.write_text): a kill never leaves half a file."""
  textfile.write_text(path, json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def saved_config(workdir: pathlib.Path) -> dict | None:
  p = pathlib.Path(workdir) / "config.json"
  if not p.exists():
    return None
  saved = read_json(p, "the workdir's config.json")
  if not isinstance(saved, dict):
    raise InputError("config.json does not hold a config (a JSON object)", p)
  lacking = [k for k in CONFIG_SECTIONS if not isinstance(saved.get(k), dict)]
  if lacking or not isinstance(saved.get("task"), str):
    what = f"its {', '.join(lacking)} section{'s' if len(lacking) > 1 else ''}" if lacking else "its task"
    raise InputError(f"config.json lacks {what}: it is not the config run.py wrote (damaged or edited); "
                     "put the workdir's own config.json back, or start a new workdir", p)
  return saved


# Sections every config.json run.py writes has (read back by predict, export and the report).
CONFIG_SECTIONS = ("data", "model", "train", "selection", "warmup")


def check_exists(workdir: pathlib.Path) -> None:
  """A workdir to read (predict, export): a folder that is there."""
  workdir = pathlib.Path(workdir)
  if not workdir.is_dir():
    raise InputError("a file, not a workdir (a folder run.py made)" if workdir.exists() else "no such workdir", workdir)


def check_usable(workdir: pathlib.Path) -> None:
  """The workdir is a folder we can write to (or can be made): say so before training."""
  workdir = pathlib.Path(workdir)
  if workdir.exists() and not workdir.is_dir():
    raise InputError("the workdir is a file, not a folder; give another --workdir", workdir)
  probe = workdir
  while not probe.exists():
    probe = probe.parent
  if not probe.is_dir():
    raise InputError(f"cannot make the workdir: {probe} is a file", workdir)
  if not os.access(probe, os.W_OK | os.X_OK):
    raise InputError(f"the workdir is not writable (no write permission on {probe})", workdir)


def check(config, workdir: pathlib.Path) -> None:
  """A workdir holds the runs of one config and format: refuse to mix in other runs."""
  workdir = pathlib.Path(workdir)
  check_usable(workdir)
  saved = saved_config(workdir)
  path = workdir / "config.json"
  if saved is not None:
    if saved.get("workdir_format") != FORMAT:
      raise InputError(
          f"the workdir was made by an earlier version (format {saved.get('workdir_format', 1)}, "
          f"now {FORMAT}) whose runs drew their batches and dropout differently (unpaired): new "
          "runs cannot be mixed with them. Use a new --workdir (the report still reads this one)", path)
    old = {k: v for k, v in saved.items() if k != "workdir_format"}
    diff = _diff(fingerprint(old), fingerprint(config))
    new_variants, old_variants = plan.plain(config.get("variants") or {}), old.get("variants") or {}
    for name in sorted(set(new_variants) & set(old_variants)):
      diff += _diff({name: old_variants[name]}, {name: new_variants[name]}, "variants.")
    if diff:
      raise InputError(
          "the workdir holds checkpoints and results of another config; use a new --workdir or "
          "delete this one. Differences:\n  " + "\n  ".join(diff[:20]), path)
  elif (workdir / "runs").exists() or (workdir / "warmup").exists():
    raise InputError("the workdir holds runs but no config.json: it was not made by this "
                     "version or the file was deleted; use a new --workdir", workdir)


def write_config(config, workdir: pathlib.Path) -> dict:
  """config.json: the resolved config and the format.

  The variants, rows (`method`) and seeds of earlier invocations are kept beside this one's, so a
  grid run in parts (`--config.method=zero_shot --config.seeds=1`, ...) is reported whole.
  """
  workdir = pathlib.Path(workdir)
  resolved = plan.plain(config)
  saved = saved_config(workdir) or {}
  variants = dict(saved.get("variants") or {})
  variants.update(resolved.get("variants") or {})
  resolved["variants"] = variants
  if saved.get("method"):
    try:
      rows = [*plan.parse_rows(saved["method"], variants), *plan.parse_rows(resolved["method"], variants)]
      resolved["method"] = ",".join(dict.fromkeys(rows))
    except InputError:  # a saved row whose variant is gone: keep this invocation's rows only
      pass
  if isinstance(saved.get("seeds"), list):
    resolved["seeds"] = list(dict.fromkeys([*saved["seeds"], *resolved.get("seeds", [])]))
  resolved["workdir_format"] = FORMAT
  write_json(workdir / "config.json", resolved, sort_keys=True)
  return resolved


LOCK = "run.lock"


@contextlib.contextmanager
def hold(workdir: pathlib.Path):
  """An exclusive lock on a workdir while one run.py trains in it: a second run on the same
  workdir (they would race on checkpoints and metrics) is refused in one line naming the process
  that holds it. flock dies with its process, so a killed run leaves no lock behind."""
  import fcntl
  import socket
  workdir.mkdir(parents=True, exist_ok=True)
  f = open(workdir / LOCK, "a+", encoding="utf-8")
  try:
    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
  except BlockingIOError:
    f.seek(0)
    holder = f.read().strip() or "another process"
    f.close()
    raise InputError(f"another run is training in this workdir ({holder}); wait for it or stop it, "
                     "then run the command again (it resumes)", workdir) from None
  try:
    f.seek(0)
    f.truncate()
    f.write(f"run.py, pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    yield
  finally:
    fcntl.flock(f, fcntl.LOCK_UN)
    f.close()


# labels.json: the task, its tag set, the UPOS values and the resolved model folder (what a
# tagger needs and the data no longer has to tell; written by run.py, read by predict and export).
LABELS = "labels.json"


def write_labels(workdir: pathlib.Path, task: str, scheme: str, tags, pos, model_folder: str) -> None:
  write_json(pathlib.Path(workdir) / LABELS, {
      "task": task, "scheme": scheme, "tags": list(tags), "pos": list(pos),
      "model_folder": str(pathlib.Path(model_folder).absolute())})


def read_labels(path: pathlib.Path) -> dict:
  """labels.json, checked as input: the task, its tag set ("O" first), the POS values and the model
  folder; a damaged one is one line saying how to get it back (run.py rewrites it on a resume)."""
  got = read_json(path, LABELS)
  fix = "; run the workdir's run.py command again (finished runs are kept) to write it anew"
  if not isinstance(got, dict):
    raise InputError(f"{LABELS} does not hold an object" + fix, path)
  strings = lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)
  problem = ("task" not in got and "it has no task") or \
            (got.get("task") not in taskspec.TASKS and f"unknown task {got.get('task')!r}") or \
            (not strings(got.get("tags")) and "tags is not a list of tags") or \
            (not got["tags"] or got["tags"][0] != "O" and 'tags does not start with "O"') or \
            (not strings(got.get("pos", [])) and "pos is not a list of UPOS values") or \
            (not isinstance(got.get("model_folder"), str) and "model_folder is not a path") or ""
  if problem:
    raise InputError(f"{LABELS}: {problem}" + fix, path)
  got.setdefault("pos", [])
  return got
