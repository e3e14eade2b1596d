"""The model, tokenizer, encoded sets and jitted steps shared by every run of an experiment.

`Bench(config, data, workdir)` loads the backbone once (with the seed's classifier head per
seed), encodes every set once, and builds one jitted train step per distinct train setting
(a variant with its own learning rate or length gets its own optimizer) plus one eval step.
Nothing here loops over runs or writes results: that is the runner's and the experiment's job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
from typing import Any, Mapping

from absl import logging
import jax
import jax.numpy as jnp

from mtlws_jax import distributed
from mtlws_jax.data import encode, tasks, taskspec
from mtlws_jax.errors import InputError
from mtlws_jax.models import encoder as encoder_lib
from mtlws_jax.train import loop

# model.dtype: the compute dtype. Parameters and Adam moments stay float32; LayerNorm statistics,
# attention softmax and the loss run in float32 whatever it is.
# Train settings that change the optimizer (and so need their own compiled step).
OPTIMIZER_KEYS = ("learning_rate", "lr_schedule", "lr_warmup_steps", "max_steps", "grad_clip_norm",
                  "weight_decay", "weight_decay_mask", "head_lr_scale", "freeze", "embedding_update")
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
          self.found + "; using a TINY RANDOM encoder instead (scores say nothing about transfer)")
    if config.model.num_layers:
      src, n = self.folder, config.model.num_layers
      self.folder = str(main_first(lambda: cut_layers(src, workdir / f"model-{n}layers", n), "cut-layers"))
      self.found += f", first {config.model.num_layers} layers only"
    dtype = encoder_lib.COMPUTE_DTYPES[config.model.get("dtype", "float32")]
    self._load = lambda seed: checkpoints.load_pretrained(
        self.folder, num_tags=len(data.tags), num_pos=len(data.pos), use_predicate=taskspec.get(data.task).predicates,
        dropout=config.model.dropout, seed=seed, local_files_only=True, dtype=dtype,
        param_dtype=jnp.float32, attention=config.model.get("attention", "auto"))
    model, self.tokenizer = self._load(config.seeds[0])
    _, params, apply_fn = split_tagger(model)
    self._initial = {config.seeds[0]: loop.copy_tree(params)}
    self._split = split_tagger
    self._raw_apply, self._params_like = apply_fn, params
    # The shared apply_fn stops gradients of frozen parameters (the optimizer ignores them too).
    self.apply_fn, _ = frozen(apply_fn, optim.optimizer_from_config(config.train), params, config.train.freeze)
    self.mesh, self.fsdp = data_layout(config)
    self._train_steps: dict[str, tuple[Any, Any, Any]] = {}
    self._warmup_epochs: dict[str, tuple[Any, Any]] = {}
    self._eval_many = None
    if self.mesh is None:
      self.eval_step = steps.make_eval_step(self.apply_fn)
      self.place = lambda p, copy=True: jax.tree.map(jnp.asarray, p)  # device arrays pass through
    else:
      self._sharded_eval(self.tokenizer.pad_token_id)
    self.optimizer, self.train_step, self.init_opt_state = self.steps_for(config.train)
    self._check_lengths(config, model.config.max_tokens)
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
    self.notes = self._encoding_notes(config)

  def _encoding_notes(self, config) -> list[str]:
    """One line per set whose sentences were windowed or whose words lost subwords: a user must
    see that (the counts are otherwise only in the INFO log)."""
    sets = {"English train": self.source_train, "English dev": self.source_dev,
            **{f"translated {l}": e for l, e in self.translated.items()},
            **{f"{l} dev": e for l, e in self.target_dev.items()},
            **{f"{l} test": e for l, e in self.target_test.items()}}
    notes = []
    for name, e in sets.items():
      got = encode.summary(e.features)
      parts = []
      if got["split_records"]:
        parts.append(f"{got['split_records']} of {got['records']} sentences longer than data.max_length="
                     f"{config.data.max_length} subwords were split into overlapping windows "
                     f"({got['windows']} windows; every word is still tagged once)")
      if got["truncated_subwords"]:
        parts.append(f"{got['truncated_subwords']} continuation subwords of over-long words were dropped")
      if got["empty_words"]:
        parts.append(f"{got['empty_words']} words without subwords were encoded as <unk>")
      if got["windows_without_predicate"]:
        parts.append(f"{got['windows_without_predicate']} windows do not contain their SRL predicate")
      if parts:
        notes.append(f"note: {name}: " + "; ".join(parts))
    return notes

  def _check_lengths(self, config, max_tokens: int) -> None:
    """data.max_length and data.stride against the model and tokenizer, before any encoding."""
    specials = len(encode._specials(self.tokenizer)[0]) + len(encode._specials(self.tokenizer)[1])
    d = config.data
    if d.max_length > max_tokens:
      raise InputError(f"config.data.max_length={d.max_length} is beyond the model's {max_tokens} positions "
                       f"({self.folder}); use at most {max_tokens} (longer sentences are windowed)")
    budget = d.max_length - specials
    if budget < 2:
      raise InputError(f"config.data.max_length={d.max_length} leaves {max(budget, 0)} subword(s) next to the "
                       f"{specials} special tokens; use at least {specials + 2}")
    if not 0 <= d.stride < budget:
      raise InputError(f"config.data.stride={d.stride} must be below the {budget} subwords a window holds "
                       f"(data.max_length={d.max_length} minus {specials} special tokens)")

  def steps_for(self, train: Mapping[str, Any], *, models: bool = False) -> tuple[Any, Any, Any]:
    """(optimizer, jitted train step, init_opt_state) for one train setting, built once.

    models=True: the step of several models stacked on a leading axis (one device only)."""
    from mtlws_jax import plan
    from mtlws_jax.train import optim, steps
    train = plan.plain(train)
    keys = [k for k in OPTIMIZER_KEYS if not (k == "max_steps" and train.get("lr_schedule") == "constant")]
    key = json.dumps({k: train.get(k) for k in keys}, sort_keys=True) + ("/models" if models else "")
    if models and key not in self._train_steps:
      if self.mesh is not None:
        raise InputError("train.models_at_once > 1 runs on one device: set --config.parallel.mode=none "
                         "(or train one model at a time over the devices)")
      opt, _, init = self.steps_for(train)
      apply_fn, _ = frozen(self._raw_apply, optim.optimizer_from_config(train), self._params_like, train["freeze"])
      self._train_steps[key] = (opt, steps.make_train_step(apply_fn, opt, models=True), init)
    if key not in self._train_steps and train.get("embedding_update", "dense") == "rows":
      self._train_steps[key] = self._rows_steps(train)
    if key not in self._train_steps:
      try:
        opt = optim.optimizer_from_config(train)
      except ValueError as e:
        raise InputError(f"config.train: {e}") from None
      apply_fn, opt = frozen(self._raw_apply, opt, self._params_like, train["freeze"])
      if self.mesh is None:
        self._train_steps[key] = (opt, steps.make_train_step(apply_fn, opt), opt.init)
      else:
        from mtlws_jax.train import data_parallel as dp
        mesh, fsdp = self.mesh, self.fsdp
        step = dp.make_sharded_train_step(apply_fn, opt, mesh, fsdp=fsdp, pad=True,
                                          pad_id=self.tokenizer.pad_token_id)
        self._train_steps[key] = (opt, step, lambda p, opt=opt: dp.init_opt_state(opt, p, mesh, fsdp))
    return self._train_steps[key]

  def _rows_steps(self, train: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """train.embedding_update="rows": Adam over the word-embedding rows each batch touches."""
    from mtlws_jax.train import optim, steps
    if self.mesh is not None:
      raise InputError("train.embedding_update=rows runs on one device: set --config.parallel.mode=none "
                       "(or use embedding_update=dense over the devices)")
    table = optim.get_leaf(self._params_like, optim.WORD_TABLE)
    if train["freeze"] and optim.get_leaf(freeze_mask(self._params_like, train["freeze"]), optim.WORD_TABLE):
      raise InputError(f"train.embedding_update=rows updates the word embeddings, but train.freeze="
                       f"{train['freeze']!r} freezes them: use one or the other")
    apply_fn, _ = frozen(self._raw_apply, optim.optimizer_from_config(train), self._params_like, train["freeze"])
    rest_like = optim.without_leaf(self._params_like, optim.WORD_TABLE)
    wrap = (lambda o: frozen(self._raw_apply, o, rest_like, train["freeze"])[1]) if train["freeze"] else None
    try:
      opt = optim.rows_optimizer_from_config(train, wrap_rest=wrap)
    except ValueError as e:
      raise InputError(f"config.train: {e}") from None
    logging.info("embedding_update=rows: Adam over the touched rows of the %d x %d word-embedding table",
                 *table.shape)
    return opt, steps.make_train_step(apply_fn, opt), opt.init

  def warmup_epoch_for(self, warmup: Mapping[str, Any]) -> tuple[Any, Any]:
    """(outer optimizer, jitted warmup epoch) of a warmup setting, built once: its compilations
    (one per batch length) are shared by every seed."""
    from mtlws_jax import plan
    from mtlws_jax.train import optim, warmup as warmup_lib
    w = plan.plain(warmup)
    key = json.dumps({k: w.get(k) for k in ("outer", "gamma", "outer_momentum", "beta", "strategy")}, sort_keys=True)
    if key not in self._warmup_epochs:
      outer = optim.outer_optimizer_from_config(w)
      self._warmup_epochs[key] = (outer, warmup_lib.make_warmup_epoch(
          self.apply_fn, outer, beta=w["beta"], strategy=w["strategy"]))
    return self._warmup_epochs[key]

  def _sharded_eval(self, pad_id: int) -> None:
    """Data-parallel evaluation over self.mesh; batches that do not split get filler rows."""
    from mtlws_jax.train import data_parallel as dp
    mesh, fsdp = self.mesh, self.fsdp
    sharded_eval = dp.make_sharded_eval_step(self.apply_fn, mesh, fsdp=fsdp, pad=True, pad_id=pad_id)

    def eval_step(params, batch):  # host rows of every process, filler rows dropped
      rows = len(batch["input_ids"])
      return {"pred_ids": dp.gather(sharded_eval(params, batch)["pred_ids"])[:rows]}

    self.eval_step = eval_step
    self.place = lambda p, copy=True: dp.place_params(p, mesh, fsdp, copy=copy)

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
                       pad_multiple=self.config.data.pad_multiple, pack_length=encode.pack_length_of(self.config.data))
    return [[self.data.tags[i] for i in row] for row in ids]

  def score_tags(self, enc: Encoded, tags: list[list[str]]) -> dict:
    got = tasks.score(self.data.task, enc.sentences, tags)
    return {k: got[k] for k in ("f1", "precision", "recall")} | {"n_gold": got.get("n_gold"), "n_pred": got.get("n_pred")}

  def score(self, params, enc: Encoded) -> dict:
    return self.score_tags(enc, self.predict_tags(params, enc))

  def score_many(self, stacked_params, enc: Encoded) -> list[dict]:
    """Scores of N stacked models on one set (one compiled evaluation for all)."""
    from mtlws_jax.train import steps
    if self._eval_many is None:
      self._eval_many = steps.make_eval_step(self.apply_fn, models=True)
    ids = loop.predict_many(self._eval_many, stacked_params, enc.features, enc.n, self.config.train.eval_batch_size,
                            pad_multiple=self.config.data.pad_multiple, pack_length=encode.pack_length_of(self.config.data))
    return [self.score_tags(enc, [[self.data.tags[i] for i in row] for row in model]) for model in ids]

  def model_bytes(self) -> int:
    """Bytes one model needs while training: parameters, gradients and two Adam moments of the
    trained ones (activations not counted)."""
    import re
    rx = re.compile(self.config.train.freeze) if self.config.train.freeze else None
    total = trained = 0
    for path, x in jax.tree_util.tree_leaves_with_path(self._params_like):
      size = x.size * 4
      total += size
      if not (rx and rx.search("/".join(str(getattr(k, "key", k)) for k in path))):
        trained += size
    return total + 3 * trained


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


def freeze_mask(params, pattern: str):
  """True on the parameters whose "/"-joined path matches `pattern` (train.freeze)."""
  import re
  rx = re.compile(pattern)
  return jax.tree_util.tree_map_with_path(
      lambda p, _: bool(rx.search("/".join(str(getattr(k, "key", k)) for k in p))), params)


def frozen(apply_fn, optimizer, params, pattern: str):
  """(apply_fn, optimizer) that leave parameters whose path matches `pattern` untouched.

  The wrapped apply_fn stops their gradient (JAX then skips computing it) and the optimizer
  gives them zero updates and keeps no Adam state for them. "" = train everything.
  """
  if not pattern:
    return apply_fn, optimizer
  import optax
  mask = freeze_mask(params, pattern)
  if not any(jax.tree.leaves(mask)):
    raise InputError(f"train.freeze={pattern!r} matches no parameter")

  def apply(p, batch, rng=None):
    p = jax.tree.map(lambda m, x: jax.lax.stop_gradient(x) if m else x, mask, p)
    return apply_fn(p, batch, rng)

  labels = jax.tree.map(lambda m: "frozen" if m else "train", mask)
  return apply, optax.multi_transform({"train": optimizer, "frozen": optax.set_to_zero()}, labels)


