"""Which runs an experiment makes: table rows (methods and named variants) and their models.

A *row* of the results table is one of the five methods (`config.method`) or a named variant
from `config.variants` — a method with its own warmup or training settings, e.g.

    c.variants.ws_adam = dict(method="mtl_ws", label="MTL-WS (adam 5e-5)",
                              warmup=dict(outer="adam", gamma=5e-5))
    c.variants.zs_long = dict(method="zero_shot", label="ZERO-SHOT (equal steps)",
                              equal_steps_to="ws_adam")   # max_steps + Z*K*|L| of that warmup

Every row plans its models (train/methods.plan); all models of a seed are paired (the same
head, dropout and batch draws: train/streams.py), so rows differ only where their settings do.
This module holds no state and touches no file: the experiment runs a plan, the report reads
one beside the saved runs.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mtlws_jax.data import batching, taskspec
from mtlws_jax.errors import InputError
from mtlws_jax.train import methods as methods_lib

# Row names as in the paper's Tables 1-3.
DISPLAY = {"zero_shot": "ZERO-SHOT", "target_only": "TO", "bilingual": "BILINGUAL", "mtl": "MTL",
           "mtl_ws": "MTL-WS"}
PARALLEL_MODES = ("auto", "none", "data", "fsdp")
VARIANT_KEYS = ("method", "label", "adapt", "warmup", "train", "equal_steps_to")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclasses.dataclass(frozen=True)
class Row:
  """One row of the results table and the models it trains.

  name: the method or variant name (results.json key, folder prefix of its models);
  label: the table's row name; train: the full train settings of its models; warmup: the full
  warmup settings of an mtl_ws row (None otherwise).
  """
  name: str
  label: str
  method: str
  adapt: str
  runs: tuple[methods_lib.Run, ...]
  train: Mapping[str, Any]
  warmup: Mapping[str, Any] | None

  @property
  def warmup_steps(self) -> int:
    """Inner SGD steps the warmup takes: Z x K x |L| (0 without a warmup)."""
    if not self.warmup:
      return 0
    langs = len(self.runs[0].warmup_langs) if self.runs else 0
    return int(self.warmup["epochs"]) * int(self.warmup["steps"]) * langs


def plain(value):
  """ConfigDicts, tuples and lists as JSON-ready dicts and lists."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {k: plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [plain(v) for v in value]
  return value


def normalize(config):
  """A copy with list fields in canonical form.

  `--config.target_langs=fr,de` reaches us as ("fr,de",) (ml_collections only parses Python
  literals), so comma-separated entries are split; data.languages and seeds likewise.
  """
  config = config.copy_and_resolve_references()
  split = lambda value: tuple(p.strip() for item in ([value] if isinstance(value, str) else list(value))
                              for p in str(item).split(",") if p.strip())
  config.target_langs = split(config.target_langs)
  if "data" in config and "languages" in config.data:
    config.data.languages = split(config.data.languages)
  seeds = config.seeds
  if isinstance(seeds, int) and not isinstance(seeds, bool):
    seeds = (seeds,)
  elif isinstance(seeds, str):
    seeds = tuple(p.strip() for p in seeds.split(",") if p.strip())
  out = []
  for s in seeds:
    if isinstance(s, str):
      try:
        s = int(s)
      except ValueError:
        raise InputError(f"config.seeds: {s!r} is not an integer") from None
    out.append(s)
  with config.unlocked():
    config.seeds = tuple(out)
  return config


def _positive_int(name: str, value) -> None:
  if not isinstance(value, int) or isinstance(value, bool) or value < 1:
    raise InputError(f"config.{name} must be a positive integer, got {value!r}")


def _number(name: str, value, *, low: float, low_ok: bool, high: float | None = None, high_ok: bool = False,
            what: str = "") -> None:
  """A finite number in its range (NaN and infinities are refused here, not found mid-training)."""
  ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
  ok = ok and (value >= low if low_ok else value > low)
  ok = ok and (high is None or (value <= high if high_ok else value < high))
  if not ok:
    rng = f"{'[' if low_ok else '('}{low:g}, " + ("inf)" if high is None else f"{high:g}{']' if high_ok else ')'}")
    raise InputError(f"config.{name} must be a finite number in {rng}{what}, got {value!r}")


# Placeholders a data path pattern may hold (data/tasks.py fills them).
PATTERN_FIELDS = ("lang", "split", "folder")


def _check_pattern(name: str, pattern) -> None:
  import string
  try:
    fields = [f for _, f, _, _ in string.Formatter().parse(pattern) if f is not None]
  except ValueError as e:
    raise InputError(f"config.{name}={pattern!r}: not a path pattern ({e})") from None
  bad = [f for f in fields if f not in PATTERN_FIELDS]
  if bad:
    raise InputError(f"config.{name}={pattern!r}: unknown placeholder {{{bad[0]}}}; a pattern may hold "
                     + ", ".join(f"{{{f}}}" for f in PATTERN_FIELDS))


def check_config(config) -> None:
  """Values that would only fail mid-training: say so now."""
  try:
    _check_config(config)
  except (AttributeError, KeyError) as e:   # a user's own config without a field the code reads
    raise InputError(f"the config lacks a field the runs need ({e}); build it from configs/common.py's "
                     "base_config() and a task's settings, as configs/own_data.py does") from None


def _check_config(config) -> None:
  if not config.seeds:
    raise InputError("config.seeds is empty")
  for s in config.seeds:
    if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2 ** 63:
      raise InputError(f"config.seeds must be integers in [0, 2^63), got {s!r}")
  if len(set(config.seeds)) != len(config.seeds):
    raise InputError(f"config.seeds lists a seed twice: {', '.join(map(str, config.seeds))}")
  t, sel = config.train, config.selection
  for name, value in (("train.max_steps", t.max_steps), ("train.batch_size", t.batch_size),
                      ("train.eval_batch_size", t.eval_batch_size), ("selection.eval_every", sel.eval_every),
                      ("log_every", config.log_every), ("checkpoint_every", config.checkpoint_every)):
    _positive_int(name, value)
  if not isinstance(sel.eval_after, int) or sel.eval_after < 0:
    raise InputError(f"config.selection.eval_after must be >= 0, got {sel.eval_after!r}")
  if sel.eval_after > t.max_steps:
    raise InputError(f"selection.eval_after={sel.eval_after} is beyond train.max_steps={t.max_steps}: "
                     "no model-selection evaluation would happen")
  if not isinstance(sel.curve_every, int) or sel.curve_every < 0:
    raise InputError(f"config.selection.curve_every must be >= 0, got {sel.curve_every!r}")
  _check_warmup(config.warmup, "config.warmup")
  _check_train(t, "config.train")
  _number("model.dropout", config.model.dropout, low=0, low_ok=True, high=1)
  d = config.data
  for name in ("gold", "translated"):
    _check_pattern(f"data.{name}", d.get(name, ""))
  for name in ("max_train_sentences", "max_eval_sentences", "max_source_dev_sentences"):
    v = d.get(name, 0)
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
      raise InputError(f"config.data.{name} must be >= 0 (0 = all), got {v!r}")
  _positive_int("data.max_length", d.max_length)
  _positive_int("data.pad_multiple", d.pad_multiple)
  if d.get("batch_layout", "padded") not in batching.LAYOUTS:
    raise InputError(f"config.data.batch_layout must be one of {', '.join(batching.LAYOUTS)}, got {d.batch_layout!r}")
  _positive_int("data.pack_length", d.get("pack_length", 256))
  if not isinstance(d.stride, int) or d.stride < 0:
    raise InputError(f"config.data.stride must be >= 0, got {d.stride!r}")
  from mtlws_jax.models.encoder import ATTENTIONS, COMPUTE_DTYPES   # each value's owner
  from mtlws_jax.train.streams import ORDERS
  m = config.model
  if m.get("dtype", "float32") not in COMPUTE_DTYPES:
    raise InputError(f"config.model.dtype must be one of {', '.join(COMPUTE_DTYPES)}, got {m.dtype!r}")
  if m.get("attention", "auto") not in ATTENTIONS:
    raise InputError(f"config.model.attention must be one of {', '.join(ATTENTIONS)}, got {m.attention!r}")
  if d.get("train_order", "random") not in ORDERS:
    raise InputError(f"config.data.train_order must be one of {', '.join(ORDERS)}, got {d.train_order!r}")
  par = config.get("parallel")
  if par is not None:
    if par.mode not in PARALLEL_MODES:
      raise InputError(f"config.parallel.mode must be one of {', '.join(PARALLEL_MODES)}, got {par.mode!r}")
    if not isinstance(par.num_devices, int) or par.num_devices < 0:
      raise InputError(f"config.parallel.num_devices must be >= 0 (0 = all), got {par.num_devices!r}")
  taskspec.get(config.task)   # an unknown task: one line naming the known ones
  pattern = config.get("translated_dev", "")
  if pattern:
    try:
      pattern.format(lang="xx")
    except (KeyError, IndexError, ValueError) as e:
      raise InputError(f"config.translated_dev={pattern!r}: a path pattern may hold {{lang}} only ({e!r})") from None
    if "{lang}" not in pattern:
      raise InputError(f"config.translated_dev={pattern!r}: the pattern needs {{lang}} (one file per target language)")
  known = tuple(config.data.languages)
  if config.source_lang not in known:
    raise InputError(f"unknown source language {config.source_lang!r} for {config.task}; "
                     f"the data has {', '.join(known)}")


def _check_warmup(w: Mapping[str, Any], where: str) -> None:
  from mtlws_jax.train import optim, warmup as warmup_lib
  if not isinstance(w["epochs"], int) or w["epochs"] < 0 or not isinstance(w["steps"], int) or w["steps"] < 1:
    raise InputError(f"{where}: warmup needs integer epochs >= 0 and steps >= 1, got "
                     f"{w['epochs']!r}, {w['steps']!r}")
  for k in ("gamma", "beta"):
    if not isinstance(w[k], (int, float)) or isinstance(w[k], bool) or not w[k] > 0 or not math.isfinite(w[k]):
      raise InputError(f"{where}.{k} must be a positive finite number, got {w[k]!r}")
  if "outer_momentum" in w:
    _number(f"{where[len('config.'):]}.outer_momentum", w["outer_momentum"], low=0, low_ok=True, high=1)
  if w["outer"] not in optim.OUTER_OPTIMIZERS:
    raise InputError(f"{where}.outer must be one of {', '.join(optim.OUTER_OPTIMIZERS)}, got {w['outer']!r}")
  if w["strategy"] not in warmup_lib.STRATEGIES:
    raise InputError(f"{where}.strategy must be one of {', '.join(warmup_lib.STRATEGIES)}, got {w['strategy']!r}")


def _check_train(t: Mapping[str, Any], where: str) -> None:
  from mtlws_jax.train import optim
  if not isinstance(t["learning_rate"], (int, float)) or not t["learning_rate"] > 0 or not math.isfinite(t["learning_rate"]):
    raise InputError(f"{where}.learning_rate must be positive and finite, got {t['learning_rate']!r}")
  if t.get("freeze"):
    try:
      re.compile(t["freeze"])
    except re.error as e:
      raise InputError(f"{where}.freeze={t['freeze']!r} is not a regular expression ({e}); it is matched "
                       "against parameter paths, e.g. 'word_embeddings'") from None
  if t["lr_schedule"] not in optim.LR_SCHEDULES:
    raise InputError(f"{where}.lr_schedule must be one of {', '.join(optim.LR_SCHEDULES)}, got {t['lr_schedule']!r}")
  if not isinstance(t["lr_warmup_steps"], int) or t["lr_warmup_steps"] < 0:
    raise InputError(f"{where}.lr_warmup_steps must be >= 0, got {t['lr_warmup_steps']!r}")
  if t["lr_schedule"] == "linear" and t["lr_warmup_steps"] >= t["max_steps"]:
    raise InputError(f"{where}: lr_warmup_steps={t['lr_warmup_steps']} must be below max_steps={t['max_steps']} "
                     "for the linear schedule")
  for k in ("grad_clip_norm", "weight_decay"):
    if not isinstance(t[k], (int, float)) or isinstance(t[k], bool) or not t[k] >= 0 or not math.isfinite(t[k]):
      raise InputError(f"{where}.{k} must be a finite number >= 0 (0 = off), got {t[k]!r}")
  from mtlws_jax.train import optim as optim_lib
  if t.get("weight_decay_mask", "all") not in optim_lib.DECAY_MASKS:
    raise InputError(f"{where}.weight_decay_mask must be one of {', '.join(optim_lib.DECAY_MASKS)}, "
                     f"got {t['weight_decay_mask']!r}")
  if t.get("embedding_update", "dense") not in optim_lib.EMBEDDING_UPDATES:
    raise InputError(f"{where}.embedding_update must be one of {', '.join(optim_lib.EMBEDDING_UPDATES)}, "
                     f"got {t['embedding_update']!r}")
  scale = t.get("head_lr_scale", 1.0)
  if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not scale > 0 or not math.isfinite(scale):
    raise InputError(f"{where}.head_lr_scale must be a positive finite number, got {scale!r}")


def parse_rows(spec: str | Sequence[str], variants: Sequence[str]) -> list[str]:
  """Row names from config.method: 'all' = the five methods then every variant."""
  names = spec.split(",") if isinstance(spec, str) else list(spec)
  names = [n.strip() for n in names if n.strip()]
  known = list(methods_lib.METHODS) + list(variants)
  if names == ["all"]:
    return known
  if not names:
    raise InputError("config.method is empty; give 'all' or a comma list of " + ", ".join(known))
  for n in names:
    if n not in known:
      raise InputError(f"unknown method {n!r}; expected 'all' or some of {', '.join(known)}")
  return list(dict.fromkeys(names))


def parse_methods(spec: str | Sequence[str]) -> list[str]:
  """The methods named in config.method (no variants)."""
  return parse_rows(spec, ())


def _merged(base: Mapping[str, Any], over: Mapping[str, Any], where: str) -> dict:
  out = dict(plain(base))
  for k, v in plain(over).items():
    if k not in out:
      raise InputError(f"{where}: unknown field {k!r}; known: {', '.join(sorted(out))}")
    out[k] = v
  return out


def variant_specs(config) -> dict[str, dict]:
  """config.variants as plain dicts, checked."""
  out = {}
  for name, spec in plain(config.get("variants") or {}).items():
    where = f"config.variants.{name}"
    if not _NAME.match(name) or name in methods_lib.METHODS or "-" in name:
      raise InputError(f"{where}: a variant name must be lowercase letters, digits and '_', "
                       f"start with a letter and not be a method name")
    if not isinstance(spec, Mapping):
      raise InputError(f"{where} must be a dict with a 'method', got {spec!r}")
    unknown = sorted(set(spec) - set(VARIANT_KEYS))
    if unknown:
      raise InputError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(VARIANT_KEYS)}")
    if spec.get("method") not in methods_lib.METHODS:
      raise InputError(f"{where}.method must be one of {', '.join(methods_lib.METHODS)}, got {spec.get('method')!r}")
    if spec.get("warmup") and spec["method"] != "mtl_ws":
      raise InputError(f"{where}: warmup settings need method 'mtl_ws'")
    out[name] = dict(spec)
  return out


def plan_rows(config) -> dict[str, Row]:
  """Every row config.method asks for, in order, with its models and settings."""
  specs = variant_specs(config)
  targets = tuple(config.target_langs)
  available = [l for l in config.data.languages if l != config.source_lang]
  base_train, base_warmup = plain(config.train), plain(config.warmup)
  names = parse_rows(config.method, specs)

  def row(name: str, seen: tuple[str, ...] = ()) -> Row:
    spec = specs.get(name, {"method": name})
    where = f"config.variants.{name}" if name in specs else f"method {name}"
    method = spec["method"]
    adapt = spec.get("adapt") or config.adapt
    train = _merged(base_train, spec.get("train") or {}, where + ".train")
    warmup = _merged(base_warmup, spec.get("warmup") or {}, where + ".warmup") if method == "mtl_ws" else None
    if warmup is not None and name in specs:
      _check_warmup(warmup, where + ".warmup")
    runs = methods_lib.plan(method, targets, adapt=adapt, source=config.source_lang, available=available,
                            name=name)
    label = spec.get("label") or (DISPLAY.get(method, method) + (f" ({name})" if name in specs else ""))
    if method == "mtl_ws" and adapt != "zero_shot" and not spec.get("label"):
      label += f" (+{DISPLAY.get(adapt, adapt)})"
    other = spec.get("equal_steps_to")
    if other:
      if other in seen or other == name:
        raise InputError(f"{where}.equal_steps_to: a circle of equal_steps_to ({' -> '.join(seen + (name, other))})")
      if other not in specs and other != "mtl_ws":
        raise InputError(f"{where}.equal_steps_to={other!r}: not an mtl_ws row ('mtl_ws' or a variant)")
      ref = row(other, seen + (name,))
      if ref.warmup is None:
        raise InputError(f"{where}.equal_steps_to={other!r} has no warmup")
      train["max_steps"] = int(train["max_steps"]) + ref.warmup_steps
    if name in specs:
      _check_train(train, where + ".train")
      _positive_int(f"variants.{name}.train.max_steps", train["max_steps"])
    return Row(name=name, label=label, method=method, adapt=adapt if method == "mtl_ws" else method,
               runs=tuple(runs), train=train, warmup=warmup)

  rows = {n: row(n) for n in names}
  ids = [r.model_id for row_ in rows.values() for r in row_.runs]
  dup = sorted({i for i in ids if ids.count(i) > 1})
  if dup:
    raise InputError(f"model ids planned twice: {', '.join(dup)} (rename a variant)")
  return rows


def translated_langs(rows: Mapping[str, Row]) -> list[str]:
  return methods_lib.translated_langs(r for row in rows.values() for r in row.runs)

