"""The experiment's backbone, loaded once: folder, tokenizer, pure apply function, each seed's head.

`Backbone.load(config, data, workdir)` finds the checkpoint (models/locate.py's order; the tiny
random encoder when config.model.fallback="tiny" and none is found), cuts it to
config.model.num_layers when asked, and keeps the pretrained parameters with a classifier head
(and SRL embeddings) drawn from each seed: runs of a seed start from the same head (pairing).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
from typing import Any, Callable

import jax
import jax.numpy as jnp

from mtlws_jax import distributed
from mtlws_jax.data import encode, tasks, taskspec
from mtlws_jax.errors import InputError
from mtlws_jax.models import encoder as encoder_lib

Params = Any


def model_folder(config) -> tuple[str | None, str]:
  """(local folder, how it was found) or (None, why not): models/locate.py's order."""
  from mtlws_jax.models import locate
  try:
    return locate.find(config.model.name, path=config.model.path, download=config.model.get("download", True))
  except InputError as e:
    if config.model.path:
      raise
    return None, e.problem


@dataclasses.dataclass
class Backbone:
  """A checkpoint folder with its tokenizer and pure apply_fn(params, batch, rng=None) -> logits."""
  folder: str
  found: str                    # how the folder was found (printed with the run)
  tokenizer: Any
  apply_fn: Callable
  params_like: Params           # the first seed's parameters (shapes, paths)
  max_tokens: int
  _load_seed: Callable[[int], Params]
  _initial: dict[int, Params] = dataclasses.field(default_factory=dict)

  @classmethod
  def load(cls, config, data: tasks.TaskData, workdir: pathlib.Path) -> "Backbone":
    from mtlws_jax.models import checkpoints
    from mtlws_jax.models.tagger import split_tagger
    folder, found = model_folder(config)
    if folder is None:
      if config.model.fallback != "tiny":
        raise InputError(found)
      folder = _tiny(config, data, workdir)
      found += "; using a TINY RANDOM encoder instead (scores say nothing about transfer)"
    if config.model.num_layers:
      src, n = folder, config.model.num_layers
      folder = str(distributed.main_first(lambda: cut_layers(src, workdir / f"model-{n}layers", n), "cut-layers"))
      found += f", first {n} layers only"
    dtype = encoder_lib.COMPUTE_DTYPES[config.model.get("dtype", "float32")]

    def load(seed: int):
      return checkpoints.load_pretrained(
          folder, num_tags=len(data.tags), num_pos=len(data.pos), use_predicate=taskspec.get(data.task).predicates,
          dropout=config.model.dropout, seed=seed, local_files_only=True, dtype=dtype, param_dtype=jnp.float32,
          attention=config.model.get("attention", "auto"))

    model, tokenizer = load(config.seeds[0])
    _, params, apply_fn = split_tagger(model)
    backbone = cls(folder=folder, found=found, tokenizer=tokenizer, apply_fn=apply_fn, params_like=params,
                   max_tokens=model.config.max_tokens,
                   _load_seed=lambda seed: split_tagger(load(seed)[0])[1])
    backbone._initial[config.seeds[0]] = distributed.host_copy(params)
    backbone.check_lengths(config.data)
    return backbone

  def initial_params(self, seed: int) -> Params:
    """Pretrained encoder with the seed's head: a fresh device copy each call (training donates
    it); the host copy is loaded once per seed."""
    if seed not in self._initial:
      self._initial[seed] = distributed.host_copy(self._load_seed(seed))
    return jax.tree.map(jnp.asarray, self._initial[seed])

  def forget(self, seed: int) -> None:
    self._initial.pop(seed, None)

  def check_lengths(self, data_config) -> None:
    """data.max_length and data.stride against the model and tokenizer, before any encoding."""
    start, end = encode._specials(self.tokenizer)
    specials = len(start) + len(end)
    d = data_config
    if d.max_length > self.max_tokens:
      raise InputError(f"config.data.max_length={d.max_length} is beyond the model's {self.max_tokens} positions "
                       f"({self.folder}); use at most {self.max_tokens} (longer sentences are windowed)")
    budget = d.max_length - specials
    if budget < 2:
      raise InputError(f"config.data.max_length={d.max_length} leaves {max(budget, 0)} subword(s) next to the "
                       f"{specials} special tokens; use at least {specials + 2}")
    if not 0 <= d.stride < budget:
      raise InputError(f"config.data.stride={d.stride} must be below the {budget} subwords a window holds "
                       f"(data.max_length={d.max_length} minus {specials} special tokens)")


def _tiny(config, data: tasks.TaskData, workdir: pathlib.Path) -> str:
  """A tiny random encoder whose vocabulary is learnt from the training text (tests, no model)."""
  from mtlws_jax.models import tiny
  folder = workdir / "tiny-model"

  def build():
    if not (folder / "config.json").exists():
      texts = [" ".join(s.tokens) for s in data.source_train]
      texts += [" ".join(s.tokens) for sents in data.translated.values() for s in sents]
      tiny.build_tiny_checkpoint(folder, model_type="xlm-roberta", texts=texts, vocab_size=4000,
                                 hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
                                 max_length=config.data.max_length)
  distributed.main_first(build, "tiny-model")
  return str(folder)


def cut_layers(src: str | os.PathLike, dst: pathlib.Path, num_layers: int) -> pathlib.Path:
  """A copy of checkpoint `src` keeping only its first `num_layers` transformer layers.

  For quick CPU runs (the demo): a shallower encoder is several times faster per step. Built
  once per workdir; the tokenizer files are copied unchanged.
  """
  import shutil
  from safetensors.numpy import load_file, save_file
  src, dst = pathlib.Path(src), pathlib.Path(dst)
  if (dst / "config.json").exists():
    return dst
  cfg = json.loads((src / "config.json").read_text())
  if not 0 < num_layers <= cfg["num_hidden_layers"]:
    raise InputError(f"model.num_layers={num_layers}: the checkpoint has {cfg['num_hidden_layers']} layers",
                     src / "config.json")
  weights = src / "model.safetensors"
  if not weights.exists():
    raise InputError("model.num_layers needs a model.safetensors checkpoint", src)
  layer = re.compile(r"(?:^|\.)layer\.(\d+)\.")
  tensors = {k: v for k, v in load_file(str(weights)).items()
             if not (m := layer.search(k)) or int(m.group(1)) < num_layers}
  tmp = dst.with_name(dst.name + ".tmp")
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir(parents=True)
  for f in src.iterdir():
    if f.is_file() and f.name not in ("model.safetensors", "config.json"):
      shutil.copy(f, tmp / f.name)
  save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
  (tmp / "config.json").write_text(json.dumps(cfg | {"num_hidden_layers": num_layers}, indent=2) + "\n")
  tmp.rename(dst)
  return dst
