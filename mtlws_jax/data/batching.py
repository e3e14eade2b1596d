"""Encoded windows (data/encode.py's features) -> padded or packed numpy batches, and predictions
back to one tag id per word.

Batches are int32 dicts with encode.BATCH_KEYS. Padded rows are right-padded to a multiple of
pad_multiple; packed rows lay several windows end to end (segment_ids keep attention within a
window). A last batch filled to batch_size gets label-less filler rows (`FILL`), so one compiled
shape serves a whole evaluation. `merge_predictions` reads each word's tag from the window that
owns it.
"""

from __future__ import annotations

from typing import Iterator, Mapping, Sequence

import numpy as np

from mtlws_jax.data.encode import BATCH_KEYS, Feature

# ---------------------------------------------------------------------------------------------
# Batches.


def _round_up(n: int, multiple: int) -> int:
  return -(-n // multiple) * multiple if multiple > 1 else n


# The one table of filler values: where a batch (or a stacked batch, or a row added for a device)
# holds nothing, -1 says "no label / no word / no example"; input_ids take the pad id; any other
# key 0 (attention off, segment 0, position 0).
FILL = {"labels": -1, "word_ids": -1, "example_ids": -1}


def fill_values(pad_id: int) -> dict[str, int]:
  """Filler per batch key (missing keys: 0)."""
  return {"input_ids": pad_id, **FILL}


def _empty_batch(rows: int, width: int, pad_id: int, *, packed: bool) -> dict[str, np.ndarray]:
  """A batch of padding only: pad ids, no attention, no labels (-1), no example (-1); packed
  batches have example ids per token and segment and position ids."""
  fill = fill_values(pad_id)
  keys = BATCH_KEYS + (("segment_ids", "position_ids") if packed else ())
  out = {k: np.full((rows, width), fill.get(k, 0), np.int32) for k in keys}
  if not packed:
    out["example_ids"] = np.full((rows,), -1, np.int32)
  return out


def collate(features: Sequence[Feature], *, pad_multiple: int = 8, batch_size: int | None = None,
            pack_length: int = 0) -> dict[str, np.ndarray]:
  """Pads features into one batch dict (the layout in the module doc of `batches`).

  pack_length > 0: packs them instead (`pack`, rows of that many tokens; batch_size is then
  moot: the rows are as many as the features need).

  The padded length is the longest feature rounded up to `pad_multiple` (capped at max_length),
  so jit sees few distinct shapes. With `batch_size`, filler rows are appended up to it: they have
  example_ids -1, labels/word_ids -1 and attention only on position 0 (no all-masked rows).
  """
  if not features:
    raise ValueError("cannot collate an empty batch")
  if pack_length:
    return pack(features, length=pack_length, pad_multiple=pad_multiple)
  longest = max(len(f) for f in features)
  cap = max(f.max_length for f in features)
  length = max(longest, min(_round_up(longest, pad_multiple), cap))
  rows = len(features) if batch_size is None else batch_size
  if rows < len(features):
    raise ValueError(f"{len(features)} features do not fit batch_size {rows}")
  out = _empty_batch(rows, length, features[0].pad_id, packed=False)
  for r, f in enumerate(features):
    n = len(f)
    out["input_ids"][r, :n] = f.input_ids
    out["attention_mask"][r, :n] = 1
    out["labels"][r, :n] = f.labels
    out["predicate_ids"][r, :n] = f.predicate_ids
    out["pos_ids"][r, :n] = f.pos_ids
    out["word_ids"][r, :n] = f.word_ids
    out["example_ids"][r] = f.example_id
  out["attention_mask"][len(features):, 0] = 1
  return out


# Packed batches (data.batch_layout="packed"): the features of a batch lie end to end in fewer,
# longer rows. Extra keys, all [R, L] int32: segment_ids (1, 2, ... per feature within its row, 0 on
# padding; attention stays within a segment), position_ids (0, 1, ... restarting at each feature;
# the encoder adds its position offset) and example_ids per token (-1 on padding) instead of per row.
# Each feature keeps its own special tokens, so every token sees exactly what it sees padded.
LAYOUTS = ("padded", "packed")


def pack_length_of(data_config: Mapping) -> int:
  """`pack_length` for the functions below from a config's data section (0 = padded rows).
  Configs saved before the option existed have no batch_layout: they were padded."""
  return int(data_config.get("pack_length", 256)) if data_config.get("batch_layout", "padded") == "packed" else 0


def pack(features: Sequence[Feature], *, length: int, pad_multiple: int = 8, rows: int | None = None,
         full: bool = False) -> dict[str, np.ndarray]:
  """Lays `features` end to end in rows of at most `length` tokens (first fit, longest first).

  A feature longer than `length` gets a row of its own (the rows are then as long as it). The
  row length is the fullest row rounded up to `pad_multiple` (capped at the row capacity); with
  `rows`, filler rows (segment 0, no labels) are appended up to that many; `full` pads every row
  to the capacity (one shape for every evaluation batch).
  """
  if not features:
    raise ValueError("cannot pack an empty batch")
  cap = max(length, max(len(f) for f in features))
  fill: list[int] = []
  members: list[list[int]] = []
  for i in sorted(range(len(features)), key=lambda i: -len(features[i])):  # stable: ties keep order
    n = len(features[i])
    for r, used in enumerate(fill):
      if used + n <= cap:
        fill[r] += n
        members[r].append(i)
        break
    else:
      fill.append(n)
      members.append([i])
  n_rows = len(members) if rows is None else rows
  if n_rows < len(members):
    raise ValueError(f"{len(features)} features need {len(members)} rows of {cap}, more than {n_rows}")
  width = cap if full else max(max(fill), min(_round_up(max(fill), pad_multiple), cap))
  out = _empty_batch(n_rows, width, features[0].pad_id, packed=True)
  for r, idx in enumerate(members):
    at = 0
    for seg, i in enumerate(sorted(idx), start=1):  # in batch order within the row
      f = features[i]
      n = len(f)
      sl = slice(at, at + n)
      out["input_ids"][r, sl] = f.input_ids
      out["attention_mask"][r, sl] = 1
      out["labels"][r, sl] = f.labels
      out["predicate_ids"][r, sl] = f.predicate_ids
      out["pos_ids"][r, sl] = f.pos_ids
      out["word_ids"][r, sl] = f.word_ids
      out["example_ids"][r, sl] = f.example_id
      out["segment_ids"][r, sl] = seg
      out["position_ids"][r, sl] = np.arange(n, dtype=np.int32)
      at += n
  return out


def eval_rows(batch_size: int, length: int) -> int:
  """Rows of a packed evaluation batch: as many as hold `batch_size` sentences of 32 subwords."""
  return max(1, -(-batch_size * 32 // length))


def packed_batches(features: Sequence[Feature], batch_size: int, *, length: int, pad_multiple: int = 8
                   ) -> Iterator[dict[str, np.ndarray]]:
  """Evaluation batches of one shape [eval_rows, length] (longer only for over-long features):
  features longest first, each batch filled first-fit until the next feature fits no row."""
  rows = eval_rows(batch_size, length)
  order = sorted(range(len(features)), key=lambda i: -len(features[i]))
  group: list[int] = []
  fill: list[int] = []
  for i in order:
    n = len(features[i])
    cap = max(length, n, *(len(features[j]) for j in group[:1]))
    r = next((r for r, used in enumerate(fill) if used + n <= cap), None)
    if r is None and len(fill) == rows:
      yield pack([features[j] for j in group], length=length, pad_multiple=pad_multiple, rows=rows, full=True)
      group, fill, r = [], [], None
    if r is None:
      fill.append(n)
    else:
      fill[r] += n
    group.append(i)
  if group:
    yield pack([features[j] for j in group], length=length, pad_multiple=pad_multiple, rows=rows, full=True)


def batches(features: Sequence[Feature], batch_size: int, *, shuffle: bool, rng: np.random.Generator | int | None = None,
            bucket: bool = True, pad_multiple: int = 8, bucket_chunk: int = 50, drop_remainder: bool = False,
            fill_last: bool = False, pack_length: int = 0) -> Iterator[dict[str, np.ndarray]]:
  """Yields padded batch dicts of int32 arrays.

  Keys: input_ids [B,S], attention_mask [B,S] (1 real, 0 pad), token_type_ids [B,S] (zeros),
  labels [B,S], predicate_ids [B,S], pos_ids [B,S], word_ids [B,S], example_ids [B].
  shuffle:   shuffles features (with `rng`: a Generator or a seed; None = fresh OS entropy).
  bucket:    sorts by length to limit padding. Shuffled: within chunks of `bucket_chunk` batches,
             then the batch order is shuffled; unshuffled: globally (fine for eval, since
             `merge_predictions` uses example_ids/word_ids and not the order).
  pad_multiple: padded length rounds up to this (capped at max_length); max_length = one shape.
  drop_remainder: skip the last short batch (training); fill_last: pad it with filler rows
             (example_ids -1) to `batch_size` instead, so every batch has the same B.
  pack_length: > 0 packs instead of padding (`pack`): shuffled, each group of batch_size
             features is packed; unshuffled (evaluation), `packed_batches` of one shape.
  """
  if batch_size < 1:
    raise ValueError(f"batch_size must be >= 1, got {batch_size}")
  if pack_length and not shuffle:
    yield from packed_batches(features, batch_size, length=pack_length, pad_multiple=pad_multiple)
    return
  order = np.arange(len(features))
  gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
  if shuffle:
    order = gen.permutation(len(features))
  lengths = np.asarray([len(f) for f in features], np.int64)
  if bucket:
    chunk = batch_size * bucket_chunk if shuffle else max(len(features), 1)
    parts = [order[i:i + chunk] for i in range(0, len(order), chunk)]
    order = np.concatenate([p[np.argsort(lengths[p], kind="stable")] for p in parts]) if parts else order
  groups = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
  if drop_remainder and groups and len(groups[-1]) < batch_size:
    groups.pop()
  if shuffle and bucket:
    groups = [groups[i] for i in gen.permutation(len(groups))]
  for g in groups:
    yield collate([features[i] for i in g], pad_multiple=pad_multiple, batch_size=batch_size if fill_last else None,
                  pack_length=pack_length)


# ---------------------------------------------------------------------------------------------
# Back to words.


def merge_predictions(features_or_batches: Sequence[Feature] | Sequence[Mapping[str, np.ndarray]], pred_ids,
                      num_sentences: int, *, num_words: Sequence[int] | None = None) -> list[list[int]]:
  """One predicted tag id per word of each record, read from the window that owns the word.

  features_or_batches: the `encode` features with `pred_ids` one array [>= len(feature)] each, or
    the `batches` dicts with `pred_ids` one array [B, S] each (or logits [B, S, T]: argmax taken).
  num_words: words per record; known from features, optional with batches (then a missing last
    word of a record cannot be detected, missing middle words still are).
  Raises ValueError if a word is predicted twice or never (a bookkeeping bug, not bad input).
  """
  items = list(features_or_batches)
  preds = list(pred_ids)
  if len(items) != len(preds):
    raise ValueError(f"{len(items)} features/batches but {len(preds)} prediction arrays")
  found: list[dict[int, int]] = [dict() for _ in range(num_sentences)]
  sizes = [None] * num_sentences if num_words is None else list(num_words)

  def put(ex: int, wids: np.ndarray, row: np.ndarray):
    if not 0 <= ex < num_sentences:
      raise ValueError(f"example id {ex} outside [0, {num_sentences})")
    for pos in np.nonzero(wids >= 0)[0]:
      w = int(wids[pos])
      if w in found[ex]:
        raise ValueError(f"word {w} of record {ex} predicted by two windows")
      found[ex][w] = int(row[pos])

  for item, p in zip(items, preds):
    p = np.asarray(p)
    if isinstance(item, Feature):
      if p.ndim == 2:
        p = p.argmax(-1)
      sizes[item.example_id] = item.num_words
      put(item.example_id, item.word_ids, p[:len(item)])
    else:
      if p.ndim == 3:
        p = p.argmax(-1)
      wids = np.asarray(item["word_ids"])
      exs = np.asarray(item["example_ids"])
      if exs.ndim == 2:  # packed: example id per token, several records per row
        for r in range(exs.shape[0]):
          for ex in np.unique(exs[r]):
            if ex >= 0:
              put(int(ex), np.where(exs[r] == ex, wids[r], -1), p[r])
        continue
      for r, ex in enumerate(exs):
        if ex >= 0:
          put(int(ex), wids[r], p[r])
  out = []
  for ex, got in enumerate(found):
    if sizes[ex] is None and not got:
      raise ValueError(f"record {ex} has no prediction at all (pass num_words for records without words)")
    n = sizes[ex] if sizes[ex] is not None else max(got) + 1
    missing = [w for w in range(n) if w not in got]
    if missing or any(w >= n for w in got):
      raise ValueError(f"record {ex}: words {missing[:10]} have no prediction (or word ids exceed {n})")
    out.append([got[w] for w in range(n)])
  return out
