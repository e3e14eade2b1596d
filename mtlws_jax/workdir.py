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

import gzip
import contextlib
import json
import os
import pathlib
from collections.abc import Mapping
from typing import Any

from mtlws_jax import plan
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


def write_json(path: pathlib.Path, obj: Any) -> None:
  """Written to a temporary file and renamed: a kill never leaves half a file."""
  tmp = path.with_name(path.name + ".tmp")
  tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")
  tmp.replace(path)


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


def read_seconds(folder: pathlib.Path) -> float | None:
  """A run's or warmup's timing.json (wall seconds: shown in the tables, never a result). A missing
  or damaged one is None, with a warning for the damaged one: the table shows "–"."""
  import sys
  p = pathlib.Path(folder) / "timing.json"
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
  tmp = workdir / "config.json.tmp"
  tmp.write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n", encoding="utf-8")
  tmp.replace(workdir / "config.json")
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


def run_folder(workdir: pathlib.Path, model_id: str, seed: int) -> pathlib.Path:
  return pathlib.Path(workdir) / "runs" / model_id / f"seed{seed}"


def warmup_folder(workdir: pathlib.Path, row: str, seed: int) -> pathlib.Path:
  return pathlib.Path(workdir) / "warmup" / row / f"seed{seed}"


def read_result(folder: pathlib.Path) -> dict | None:
  """A finished run's result.json, or None when the run has not finished."""
  p = pathlib.Path(folder) / "result.json"
  if not p.exists():
    return None
  got = read_json(p, "result.json")
  problem = _result_problem(got)
  if problem:
    raise InputError(f"result.json is not a run result ({problem}); delete it and run the same "
                     "run.py command again to recompute the run", p)
  return got


def _result_problem(r) -> str:
  number = lambda x: isinstance(x, (int, float)) and not isinstance(x, bool) and x == x
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
  return {"gold_digest": data["gold_digest"],
          "splits": {k: [s.split(" ") if s else [] for s in v] for k, v in data["splits"].items()}}


def gold_digest(sentences) -> str:
  """A short hash of a gold set's tags (the report checks predictions against the same gold)."""
  import hashlib
  h = hashlib.sha1()
  for s in sentences:
    h.update((" ".join(s.tags) + "\n").encode())
  return h.hexdigest()[:16]
