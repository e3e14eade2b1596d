"""Which files a task reads, with which reader, and the tag set a model for it predicts.

A config names path patterns under `config.data_dir` (see configs/common.py); this module turns
them into the sentences of each role:

  source_train   English gold training set (SRL: the EWT dev file, minus the held-out part)
  source_dev     English gold dev set, used for model selection (or a held-out fraction)
  translated     per target language: the English train translated, labels projected
  target_dev     per target language: gold dev set (reported, never used for selection)
  target_test    per target language: gold test set (the paper's tables)

Tags are converted to the scheme models train on (BIOES for NER and ABSA, "oi" for SRL).
The tag set comes from the English training set alone. A translated set must carry exactly the
English span labels: a model cannot learn a label English lacks, and a label missing from a
translated set usually means the projection lost it. Every file is checked before anything is
read, so a missing file is reported (all of them, at once) before any training starts.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import pathlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from mtlws_jax.data import corpora, schemes, taskspec
from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError


@dataclasses.dataclass
class TaskData:
  """Everything a set of runs reads, in the training scheme."""

  task: str
  scheme: str
  tags: tuple[str, ...]            # id -> tag; "O" is id 0
  labels: tuple[str, ...]          # span labels of the English training set
  source_train: list[Sentence]
  source_dev: list[Sentence]
  translated: dict[str, list[Sentence]]
  target_dev: dict[str, list[Sentence]]
  target_test: dict[str, list[Sentence]]
  pos: tuple[str, ...] = ()        # UPOS values (SRL input feature), sorted; empty otherwise
  files: dict[str, Any] = dataclasses.field(default_factory=dict)
  # target language -> the test file looked for and not found: trained for, nothing to score
  untested: dict[str, str] = dataclasses.field(default_factory=dict)

  @property
  def tag_to_id(self) -> dict[str, int]:
    return {t: i for i, t in enumerate(self.tags)}


def resolve_data_dir(config) -> pathlib.Path:
  """config.data_dir (read as it is), else corpora.data_root()."""
  if config.data_dir:
    d = pathlib.Path(os.path.expanduser(config.data_dir))
    if not d.is_dir():
      raise InputError(f"data_dir {d} is not a folder. {corpora.MISSING_DATA_HELP}")
    return d
  return corpora.data_root()     # may not exist yet: file_plan fetches what the run needs into it


def _pattern_path(root: pathlib.Path, pattern: str, lang: str, split: str, folders) -> pathlib.Path:
  folder = folders.get(lang, lang) if folders else lang
  return root / pattern.format(lang=lang, split=split, folder=folder)


def file_plan(config, translated_langs: Iterable[str]) -> dict[str, Any]:
  """Paths of every file the runs need: {role: path} or {role: {lang: path}}."""
  taskspec.get(config.task)
  if not config.data.gold:
    raise InputError(f"config.data.gold is empty: no path pattern for the {config.task} gold files")
  root = resolve_data_dir(config)
  folders = dict(config.data.folders) if config.data.folders else {}
  gold = lambda lang, split: _pattern_path(root, config.data.gold, lang, split, folders)
  src = config.source_lang
  plan: dict[str, Any] = {"source_train": gold(src, config.data.source_train_split)}
  if config.data.source_dev_split:
    plan["source_dev"] = gold(src, config.data.source_dev_split)
  elif not 0.0 < config.data.dev_fraction < 1.0:
    raise InputError("config.data.source_dev_split is empty, so config.data.dev_fraction must be "
                     f"in (0, 1) to hold out a dev set; got {config.data.dev_fraction}")
  plan["target_dev"] = {l: gold(l, "dev") for l in config.target_langs}
  plan["target_test"] = {l: gold(l, "test") for l in config.target_langs}
  troot = pathlib.Path(os.path.expanduser(config.data.translated_root)) if config.data.translated_root else root
  plan["translated"] = {l: _pattern_path(troot, config.data.translated, l, "train", folders)
                        for l in translated_langs}
  if not config.data_dir:         # the public files the run needs, fetched on first use
    from mtlws_jax.data import fetch
    fetch.provide(_paths(plan), root)
  # A target language with no test set (ZERO-SHOT needs no target data at all) is trained for and
  # not scored; the run says so before it trains.
  plan["untested"] = {l: p for l, p in plan["target_test"].items() if not p.is_file()}
  plan["target_test"] = {l: p for l, p in plan["target_test"].items() if p.is_file()}
  if not config.selection.score_target_dev:   # then a dev set is read (SRL: its POS values) if it is there
    plan["target_dev"] = {l: p for l, p in plan["target_dev"].items() if p.is_file()}
  return plan


def _paths(plan: Mapping[str, Any]) -> list[pathlib.Path]:
  return [pathlib.Path(p) for v in plan.values() for p in (v.values() if isinstance(v, Mapping) else [v])]


def check_files(plan: Mapping[str, Any]) -> None:
  """Raises one InputError listing every missing file (before anything is read or trained)."""
  missing = []
  for role, value in plan.items():
    if role == "untested":
      continue
    items = value.items() if isinstance(value, Mapping) else [(None, value)]
    for lang, path in items:
      if not pathlib.Path(path).is_file():
        missing.append(f"  {role}{'' if lang is None else ' ' + lang}: {path}")
  if missing:
    hint = corpora.MISSING_DATA_HELP
    if any(line.lstrip().startswith("translated") for line in missing):
      hint += (" Translated (label-projected) sets can be made with the projection CLI "
               "(python -m mtlws_jax.projection) and found via --config.data.translated_root.")
    raise InputError("missing data files:\n" + "\n".join(missing) + "\n" + hint)


def span_labels(sentences: Iterable[Sentence], scheme: str) -> set[str]:
  """Span labels (entity types, polarities, roles) that the sentences carry."""
  out: set[str] = set()
  for s in sentences:
    for tag in s.tags:
      if tag == "O":
        continue
      out.add(tag if scheme == "oi" else schemes.split_tag(tag)[1])
  return out


def tag_set(labels: Iterable[str], scheme: str) -> tuple[str, ...]:
  """All tags of `scheme` over `labels`, "O" first (so any well-formed sequence is encodable)."""
  labels = sorted(labels)
  if scheme == "oi":
    return ("O", *labels)
  prefixes = "BIES" if scheme == "bioes" else "BI"
  return ("O", *(f"{p}-{l}" for l in labels for p in prefixes))


def _tag_line(s: Sentence, index: int, path) -> tuple[str, int | None]:
  """(file, line) of word `index` of a sentence read from a one-word-per-line file."""
  where, _, line = (s.origin or "").rpartition(":")
  if where and line.isdigit():
    return where, int(line) + index
  return str(path), None


def to_scheme(sentences: Sequence[Sentence], scheme: str, path, *, ill_formed: str = "repair"
              ) -> list[Sentence]:
  """Sentences with tags rewritten in `scheme` (NER: IOB2 file -> BIOES).

  Ill-formed tags (an I-X after O, a B-X without its E-X in BIOES, ...) are read the way
  conlleval reads them and counted — also in a file already in `scheme` (a stray S-ORG makes an
  IOB2 file read as BIOES: every B-X I-X is then ill-formed, and repairing gives the same spans
  IOB2 would). ill_formed="repair" logs the count and the first place, "error" raises InputError
  at the line of the first bad tag. Machine-projected sets contain a few, so refusing them
  outright would block NER.
  """
  out, n_tags, first = [], 0, None
  for s in sentences:
    if s.scheme == scheme == "oi":  # SRL roles on head words: no spans, nothing ill-formed
      out.append(s)
      continue
    try:
      tags, repaired = schemes.convert(s.tags, s.scheme, scheme)
    except ValueError as e:
      raise InputError(f"{e}", s.origin or path) from None
    if repaired:
      canonical, _ = schemes.repair(s.tags, s.scheme)
      bad = next(i for i, (a, b) in enumerate(zip(s.tags, canonical)) if a != b)
      where, line = _tag_line(s, bad, path)
      context = " ".join(s.tags[max(0, bad - 2):bad + 3])
      hint = ("; the file is read as BIOES because it has E-/S- tags: if it is IOB2 with a stray E-/S- "
              "tag, fix that tag" if s.scheme == "bioes" and s.tags[bad][:2] in ("B-", "I-") else "")
      if ill_formed == "error":
        raise InputError(f"ill-formed {s.scheme} tag {s.tags[bad]!r} (in '{context}'; {repaired} in this "
                         f"sentence){hint}; set data.ill_formed=repair to read them the conlleval way",
                         where, line)
      n_tags += repaired
      first = first or (f"{where}:{line}" if line else where) + hint
    out.append(s if tuple(tags) == s.tags and s.scheme == scheme else s.replace(tags=tuple(tags), scheme=scheme))
  if n_tags:
    logging.warning("%s: %d ill-formed tag(s) read the conlleval way (first at %s)", path, n_tags, first)
  return out


def _read_file(task: str, path, scheme: str, limit: int, ill_formed: str = "repair") -> list[Sentence]:
  sentences = to_scheme(taskspec.get(task).read(str(path)), scheme, path, ill_formed=ill_formed)
  return sentences[:limit] if limit > 0 else sentences


def hold_out(sentences: Sequence[Sentence], fraction: float, seed: int = 0
             ) -> tuple[list[Sentence], list[Sentence]]:
  """A fixed random `fraction` of the *sentences* as dev, the rest as train.

  SRL instances of one sentence (same `origin`) stay on one side, so the dev set shares no
  sentence with training.
  """
  groups: dict[str, list[int]] = {}
  for i, s in enumerate(sentences):
    groups.setdefault(s.origin or str(i), []).append(i)
  keys = list(groups)
  order = np.random.default_rng(seed).permutation(len(keys))
  n_dev = max(1, int(round(fraction * len(keys))))
  dev_keys = {keys[j] for j in order[:n_dev]}
  train = [s for k in keys if k not in dev_keys for s in (sentences[i] for i in groups[k])]
  dev = [s for k in keys if k in dev_keys for s in (sentences[i] for i in groups[k])]
  return train, dev


def load(config, translated_langs: Iterable[str] = ()) -> TaskData:
  """Reads and checks every set the runs need; all errors come before any training."""
  translated_langs = list(dict.fromkeys(translated_langs))
  for lang in translated_langs:
    if lang not in config.target_langs:
      raise InputError(f"translated set requested for {lang!r}, which is not a target language "
                       f"({', '.join(config.target_langs)})")
  plan = file_plan(config, translated_langs)
  check_files(plan)
  task, scheme = config.task, taskspec.get(config.task).scheme
  n_train, n_eval = config.data.max_train_sentences, config.data.max_eval_sentences
  n_sdev = config.data.get("max_source_dev_sentences", 0) or n_eval
  policy = config.data.get("ill_formed", "repair")
  if policy not in ("repair", "error"):
    raise InputError(f"data.ill_formed must be 'repair' or 'error', got {policy!r}")
  _read = functools.partial(_read_file, ill_formed=policy)

  if "source_dev" in plan:
    source_train = _read(task, plan["source_train"], scheme, n_train)
    source_dev = _read(task, plan["source_dev"], scheme, n_sdev)
  else:
    all_source = _read(task, plan["source_train"], scheme, 0)
    source_train, source_dev = hold_out(all_source, config.data.dev_fraction)
    source_train = source_train[:n_train] if n_train > 0 else source_train
    source_dev = source_dev[:n_sdev] if n_sdev > 0 else source_dev
  if not source_train:
    raise InputError("the English training set is empty (after max_train_sentences="
                     f"{n_train} and the dev hold-out)", plan["source_train"])
  if not source_dev:
    raise InputError("the English dev set (model selection) is empty",
                     plan.get("source_dev", plan["source_train"]))
  labels = span_labels(source_train, scheme)
  if not labels:
    raise InputError("the English training set has no labelled span: nothing to learn",
                     plan["source_train"])

  translated = {}
  for lang, path in plan["translated"].items():
    sents = _read(task, path, scheme, n_train)
    if not sents:
      raise InputError(f"the translated {lang} training set is empty (after "
                       f"max_train_sentences={n_train})", path)
    got = span_labels(sents, scheme)
    if got != labels:
      extra, lacking = sorted(got - labels), sorted(labels - got)
      raise InputError(
          f"label set of the translated {lang} set differs from the English training set's "
          f"({', '.join(sorted(labels))}): "
          + "; ".join(p for p in (f"not in English: {', '.join(extra)}" if extra else "",
                                  f"missing: {', '.join(lacking)}" if lacking else "") if p),
          path)
    translated[lang] = sents

  target_dev, target_test = {}, {}
  for role, store in (("target_dev", target_dev), ("target_test", target_test)):
    for lang in plan.get(role, {}):
      sents = _read(task, plan[role][lang], scheme, n_eval)
      if not sents:
        raise InputError(f"the {lang} {role.split('_')[1]} set is empty", plan[role][lang])
      store[lang] = sents

  pos: tuple[str, ...] = ()
  if taskspec.get(task).predicates:   # UPOS is an input beside the predicate
    every = [source_train, source_dev, *translated.values(), *target_dev.values(), *target_test.values()]
    pos = tuple(sorted({p for group in every for s in group for p in s.extra.get("pos", ())}))
  return TaskData(task=task, scheme=scheme, tags=tag_set(labels, scheme), labels=tuple(sorted(labels)),
                  source_train=source_train, source_dev=source_dev, translated=translated,
                  target_dev=target_dev, target_test=target_test, pos=pos,
                  files={k: (str(v) if not isinstance(v, Mapping) else {l: str(p) for l, p in v.items()})
                         for k, v in plan.items() if k != "untested"},
                  untested={l: str(p) for l, p in plan["untested"].items()})


def load_test_sets(config, langs: Iterable[str] | None = None) -> dict[str, list[Sentence]]:
  """The gold test sets of `langs` (default: every target language that has one), read exactly as
  `load` reads them for an experiment (the training scheme, data.max_eval_sentences,
  data.ill_formed): what the report, the translated-dev comparison and the showcase score against."""
  plan = file_plan(config, [])
  langs = list(plan["target_test"]) if langs is None else list(langs)
  for lang in langs:
    if lang not in plan["target_test"]:
      raise InputError(f"the config names no {lang} test set", plan["untested"].get(lang))
  check_files({"target_test": {l: plan["target_test"][l] for l in langs}})
  policy = config.data.get("ill_formed", "repair")
  out = {}
  for lang in langs:
    out[lang] = _read_file(config.task, plan["target_test"][lang], taskspec.get(config.task).scheme,
                           config.data.max_eval_sentences, policy)
    if not out[lang]:
      raise InputError(f"the {lang} test set is empty", plan["target_test"][lang])
  return out


def for_encoding(sentences: Sequence[Sentence], tag_to_id: Mapping[str, int]) -> list[Sentence]:
  """Eval sentences with tags the model does not know replaced by "O".

  Only which words carry a label matters when encoding an eval set (predictions are scored
  against the original string tags), so a gold label outside the English tag set (a rare SRL
  role) is still scored, as a miss, rather than rejected.
  """
  out = []
  for s in sentences:
    if all(t in tag_to_id for t in s.tags):
      out.append(s)
    else:
      out.append(s.replace(tags=tuple(t if t in tag_to_id else "O" for t in s.tags)))
  return out


def score(task: str, gold: Sequence[Sentence], pred_tags: Sequence[Sequence[str]]) -> dict:
  """Micro span precision/recall/F1 (exact boundaries and label), as in the paper."""
  from mtlws_jax.eval import metrics
  gold_tags = [list(s.tags) for s in gold]
  if taskspec.get(task).predicates:
    return metrics.srl_prf(list(gold), [list(p) for p in pred_tags])
  return metrics.span_prf(gold_tags, [list(p) for p in pred_tags], scheme=taskspec.get(task).scheme)
