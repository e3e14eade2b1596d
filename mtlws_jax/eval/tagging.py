"""The one prediction path: encoded windows -> batches -> a jitted eval step -> a tag per word.

Training's model selection and test scoring (runner), the translated-dev selection
(eval/select.py), `predict` and the demo's showcase all tag through `predict_ids` (one model) or
`predict_ids_many` (stacked models), with the same batches: sorted by nothing, padded to a multiple
of data.pad_multiple (or packed to data.pack_length), the last batch filled with label-less rows.
`tag_records` is the entry for a saved run and new sentences.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from mtlws_jax.data import batching
from mtlws_jax.data import encode
from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError

Params = Any


def _batches(features, batch_size: int, data_config: Mapping[str, Any] | Any) -> list[dict]:
  get = data_config.get
  return list(batching.batches(features, batch_size, shuffle=False, pad_multiple=get("pad_multiple", 32),
                             fill_last=True, pack_length=batching.pack_length_of(data_config)))


def _num_words(features: Sequence[encode.Feature], num_sentences: int) -> list[int]:
  sizes = [0] * num_sentences
  for f in features:
    sizes[f.example_id] = f.num_words
  return sizes


def predict_ids(eval_step: Callable, params: Params, features: Sequence[encode.Feature], num_sentences: int,
                batch_size: int, data_config, *, progress: bool = False) -> list[list[int]]:
  """One predicted tag id per word of each of the `num_sentences` encoded records."""
  import jax
  bs = _batches(features, batch_size, data_config)
  it = bs
  if progress:
    from tqdm import tqdm
    it = tqdm(bs, desc="tagging", unit="batch", leave=False, file=sys.stderr)
  preds = [np.asarray(jax.device_get(eval_step(params, b)["pred_ids"])) for b in it]
  return batching.merge_predictions(bs, preds, num_sentences, num_words=_num_words(features, num_sentences))


def predict_ids_many(eval_step: Callable, params: Params, features: Sequence[encode.Feature], num_sentences: int,
                     batch_size: int, data_config) -> list[list[list[int]]]:
  """`predict_ids` for N stacked models (eval_step of steps.make_eval_step(..., models=True))."""
  bs = _batches(features, batch_size, data_config)
  preds = [np.asarray(eval_step(params, b)["pred_ids"]) for b in bs]  # [N, B, S] each
  n = preds[0].shape[0] if preds else 0
  sizes = _num_words(features, num_sentences)
  return [batching.merge_predictions(bs, [p[i] for p in preds], num_sentences, num_words=sizes) for i in range(n)]


def to_tags(ids: Sequence[Sequence[int]], tags: Sequence[str]) -> list[list[str]]:
  return [[tags[i] for i in row] for row in ids]


def tag_records(saved, records: Sequence[Sentence], *, batch_size: int = 64, progress: bool = True) -> list[list[str]]:
  """Predicted tags (the training scheme) for every word of every record, by a saved run
  (saved.SavedRun: its selected parameters, tokenizer and label set)."""
  import jax
  from mtlws_jax.data import tasks
  from mtlws_jax.models.tagger import split_tagger
  from mtlws_jax.train import steps
  cfg = saved.config["data"]
  tags = saved.tags
  tag_to_id = {t: i for i, t in enumerate(tags)}
  pos = saved.labels.get("pos") or []
  enc_records = tasks.for_encoding(records, tag_to_id)
  if pos:  # UPOS values the model never saw are read as unknown ("_" if it knows it, else dropped)
    known = set(pos)
    fallback = "_" if "_" in known else pos[0]
    enc_records = [s.replace(extra={**s.extra, "pos": tuple(p if p in known else fallback for p in s.extra["pos"])})
                   if "pos" in s.extra and not set(s.extra["pos"]) <= known else s for s in enc_records]
  try:
    feats = encode.encode(enc_records, saved.tokenizer, tag_to_id, max_length=cfg["max_length"], stride=cfg["stride"],
                          pos_to_id={p: i for i, p in enumerate(pos)} if pos else None)
  except ValueError as e:
    raise InputError(f"cannot encode the input: {e}") from None
  _, params, apply_fn = split_tagger(saved.model)
  eval_step = steps.make_eval_step(apply_fn)
  params = jax.tree.map(jax.numpy.asarray, params)
  return to_tags(predict_ids(eval_step, params, feats, len(records), batch_size, cfg, progress=progress), tags)
