"""Word-level records -> subword windows (features); data/batching.py lays them out in batches.

Labelling: the first subword of each word carries the word's tag id; continuation subwords,
special tokens, padding and overlap context carry -1 (loss mask = labels >= 0). With XLM-R-style
Metaspace tokenizers a word may start with a bare "▁" piece: that piece is its first subword and
carries the label. A word that tokenizes to nothing (e.g. a lone zero-width character) is encoded
as the unk token so it is never dropped and still gets a prediction.

Windows (sentences longer than `max_length` subwords including specials): the words are cut into
contiguous windows of whole words that fill up to `budget = max_length - specials` subwords.
Consecutive windows share context: the next window starts at the earliest word such that the words
carried over from the previous window have at most `stride` subwords in total (and the next new
word still fits). `stride=0` gives disjoint windows. Every word lies in at least one window and is
*owned* (labelled in training, read back at prediction) by exactly one: the window where it has the
most context, i.e. the largest min(subwords to its left, subwords to its right) within the window,
ties to the longer window, then the earlier one (the BERT SQuAD "max context" rule).
A single word with more subwords than `budget` keeps its first `budget` subwords (its first subword
always survives, so it is labelled and predicted); the dropped continuation subwords are counted in
`Feature.truncated_subwords` and logged.

Speed: words are tokenized independently (the tokenizers' pre-tokenizers split on spaces), so each
distinct word is tokenized once, in one batched call to the Rust tokenizer, and memoised per
tokenizer. The first sentences are checked against whole-sentence tokenization; if a tokenizer is
context dependent, encoding falls back to batched whole-sentence calls. `cache_dir` keeps the
word -> subword table on disk, keyed by a hash of the tokenizer, so big tokenizers with slow
normalizers are paid once across runs and splits.
"""

from __future__ import annotations

import bisect
import collections
import dataclasses
import hashlib
import itertools
import json
import os
import tempfile
import weakref
from typing import Iterable, Mapping, Sequence

from absl import logging
import numpy as np

from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError

# Keys of every batch dict (all int32; example_ids is [B], the rest [B, S]).
BATCH_KEYS = ("input_ids", "attention_mask", "token_type_ids", "labels", "predicate_ids", "pos_ids", "word_ids",
              "example_ids")
_CHECK_SENTENCES = 16


@dataclasses.dataclass(frozen=True)
class Feature:
  """One window of one record, unpadded. Arrays are int32 of length `len(self)`.

  input_ids:     subword ids with the tokenizer's special tokens around them.
  labels:        tag id on the first subword of each word this window owns, -1 elsewhere.
  predicate_ids: 1 on every subword of the SRL predicate word (if in the window), else 0.
  pos_ids:       UPOS id + 1 on every subword of each word, 0 on specials (or all 0 without POS).
  word_ids:      word index on the first subword of each owned word, -1 elsewhere.
  example_id:    index of the record in the list given to `encode`.
  num_words:     number of words of the record (not of the window), to check merges.
  pad_id:        the tokenizer's pad id, used by `batches`.
  max_length:    the window limit used, so padding can round up without exceeding it.
  truncated_subwords: continuation subwords dropped from over-long words this window owns.
  empty_words:   owned words that tokenized to nothing and were encoded as unk.
  has_predicate: False only for an SRL window that does not contain its predicate.
  span:          [start, end) word range of the record this window's input covers (owned or context).
  """

  input_ids: np.ndarray
  labels: np.ndarray
  predicate_ids: np.ndarray
  pos_ids: np.ndarray
  word_ids: np.ndarray
  example_id: int
  num_words: int
  pad_id: int
  max_length: int
  truncated_subwords: int = 0
  empty_words: int = 0
  has_predicate: bool = True
  span: tuple[int, int] = (0, 0)

  def __len__(self) -> int:
    return int(self.input_ids.shape[0])


# ---------------------------------------------------------------------------------------------
# Tokenization.

_MEMO: "weakref.WeakKeyDictionary[object, dict[str, tuple[int, ...]]]" = weakref.WeakKeyDictionary()


def _backend(tokenizer):
  backend = getattr(tokenizer, "backend_tokenizer", None)
  if backend is None:
    raise TypeError(f"encode needs a fast (Rust-backed) tokenizer, got {type(tokenizer).__name__}")
  return backend


def tokenizer_fingerprint(tokenizer) -> str:
  """Hash of the full tokenizer pipeline (vocab, normalizer, pre-tokenizer, ...), for caches."""
  return hashlib.sha1(_backend(tokenizer).to_str().encode("utf-8")).hexdigest()[:20]


def _specials(tokenizer) -> tuple[list[int], list[int]]:
  """The ids the post-processor puts before and after one sequence."""
  enc = _backend(tokenizer).encode(["x"], is_pretokenized=True, add_special_tokens=True)
  mask = enc.special_tokens_mask
  first = mask.index(0)
  last = len(mask) - mask[::-1].index(0)
  return list(enc.ids[:first]), list(enc.ids[last:])


def _read_cache(path: str, vocab_size: int) -> dict[str, list[int]]:
  """The on-disk word -> subword ids cache, checked as input: a damaged or foreign one (truncated,
  not JSON, ids outside the vocabulary) is a warning and is rebuilt, never trusted."""
  try:
    with open(path, encoding="utf-8") as f:
      disk = json.load(f)
    if not isinstance(disk, dict) or not all(
        isinstance(w, str) and isinstance(ids, list) and all(isinstance(i, int) and 0 <= i < vocab_size for i in ids)
        for w, ids in disk.items()):
      raise ValueError("not a map of words to subword ids of this tokenizer")
    return disk
  except (OSError, ValueError) as e:
    logging.warning("%s: tokenizer cache unreadable (%s); rebuilding it", path, str(e)[:120])
    return {}


def _tokenize_words(tokenizer, words: Iterable[str], cache_dir: str | os.PathLike | None) -> dict[str, tuple[int, ...]]:
  """Subword ids of each distinct word (without specials), memoised per tokenizer and on disk."""
  memo = _MEMO.setdefault(tokenizer, {})
  wanted = set(words)
  disk: dict[str, list[int]] = {}
  path = None
  if cache_dir is not None:
    path = os.path.join(os.fspath(cache_dir), f"wordpieces-{tokenizer_fingerprint(tokenizer)}.json")
    if os.path.exists(path):
      disk = _read_cache(path, len(_backend(tokenizer).get_vocab()))
      for w, ids in disk.items():
        memo.setdefault(w, tuple(ids))
  todo = sorted(wanted - memo.keys())
  if todo:
    encs = _backend(tokenizer).encode_batch([[w] for w in todo], is_pretokenized=True, add_special_tokens=False)
    for w, e in zip(todo, encs):
      memo[w] = tuple(e.ids)
  if path is not None and not wanted <= disk.keys():
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
      json.dump({**disk, **{w: list(ids) for w, ids in memo.items()}}, f, ensure_ascii=False)
    os.replace(tmp, path)
  return memo


def _sentence_pieces(tokenizer, sentences: Sequence[Sentence]) -> list[list[list[int]]]:
  """Whole-sentence batched tokenization: per sentence, per word, its subword ids."""
  encs = _backend(tokenizer).encode_batch([list(s.tokens) for s in sentences], is_pretokenized=True,
                                          add_special_tokens=False)
  out = []
  for s, e in zip(sentences, encs):
    pieces: list[list[int]] = [[] for _ in s.tokens]
    for i, w in zip(e.ids, e.word_ids):
      if w is not None:
        pieces[w].append(i)
    out.append(pieces)
  return out


def word_pieces(tokenizer, sentences: Sequence[Sentence], *, cache_dir: str | os.PathLike | None = None) -> list[list[Sequence[int]]]:
  """Per sentence, per word, the word's subword ids as the tokenizer gives them (may be empty)."""
  memo = _tokenize_words(tokenizer, (w for s in sentences for w in s.tokens), cache_dir)
  fast = [[memo[w] for w in s.tokens] for s in sentences]
  # Per-word tokenization equals sentence tokenization for every tokenizer we build or load; check
  # it on a few sentences rather than assume it (e.g. Metaspace prepend_scheme="first" would differ).
  sample = list(sentences[:_CHECK_SENTENCES])
  if sample and _sentence_pieces(tokenizer, sample) != [[list(p) for p in s] for s in fast[:len(sample)]]:
    logging.warning("tokenizer is context dependent; tokenizing whole sentences (slower, no cache)")
    return _sentence_pieces(tokenizer, sentences)
  return fast


# ---------------------------------------------------------------------------------------------
# Windows.


def windows(lengths: Sequence[int], budget: int, stride: int) -> tuple[list[tuple[int, int]], list[int]]:
  """Cuts words with subword counts `lengths` (each 1..budget) into windows; see module doc.

  Returns the windows as [start, end) word ranges and, per word, the index of its owning window.
  """
  n = len(lengths)
  if budget < 1:
    raise ValueError(f"window budget must be >= 1 subword, got {budget}")
  if not 0 <= stride < budget:
    raise ValueError(f"stride must be in [0, {budget}) subwords (max_length minus specials), got {stride}")
  if any(not 1 <= x <= budget for x in lengths):
    raise ValueError("every word needs 1..budget subwords before windowing")
  cum = [0, *itertools.accumulate(lengths)]
  if cum[-1] <= budget:  # the common case: one window owning everything
    return [(0, n)], [0] * n
  spans: list[tuple[int, int]] = []
  start = 0
  while True:
    # Furthest end with cum[end] - cum[start] <= budget; always > start as lengths <= budget.
    end = bisect.bisect_right(cum, cum[start] + budget) - 1
    spans.append((start, end))
    if end >= n:
      break
    nxt = start + 1
    while cum[end] - cum[nxt] > stride or cum[end + 1] - cum[nxt] > budget:
      nxt += 1
    start = nxt
  owner = [-1] * n
  best: list[tuple[int, int]] = [(-1, -1)] * n
  for k, (s, e) in enumerate(spans):
    size = cum[e] - cum[s]
    for w in range(s, e):
      score = (min(cum[w] - cum[s], cum[e] - cum[w + 1]), size)
      if score > best[w]:  # strict: ties keep the earlier window
        best[w], owner[w] = score, k
  return spans, owner


def _origin(sentence: Sentence) -> tuple[str | None, int | None]:
  path, _, line = sentence.origin.rpartition(":")
  if path and line.isdigit():
    return path, int(line)
  return (sentence.origin or None), None


def _ids(sentence: Sentence, values: Sequence[str], table: Mapping[str, int], what: str) -> list[int]:
  out = []
  for i, v in enumerate(values):
    j = table.get(v)
    if j is None:
      path, line = _origin(sentence)
      known = ", ".join(sorted(table)[:20]) + (" ..." if len(table) > 20 else "")
      raise InputError(f"unknown {what} {v!r} on word {i} ({sentence.tokens[i]!r}); known: {known}", path, line)
    out.append(j)
  return out


def encode(sentences: Sequence[Sentence], tokenizer, tag_to_id: Mapping[str, int], *, max_length: int, stride: int,
           pos_to_id: Mapping[str, int] | None = None, cache_dir: str | os.PathLike | None = None) -> list[Feature]:
  """Encodes records into windows (`Feature`s) in record order; see the module doc for the rules.

  tag_to_id: every tag must be in it (InputError naming the record's origin otherwise).
  stride:    subwords of context shared by consecutive windows of a long sentence, in [0, budget).
  pos_to_id: UPOS -> id (pos_ids = id + 1); requires `extra["pos"]` on every record.
  cache_dir: optional folder for the word -> subword table (keyed by tokenizer hash).
  """
  prefix, suffix = _specials(tokenizer)
  budget = max_length - len(prefix) - len(suffix)
  if budget < 1:
    raise ValueError(f"max_length {max_length} leaves no room next to {len(prefix) + len(suffix)} special tokens")
  if not 0 <= stride < budget:
    raise ValueError(f"stride must be in [0, {budget}) for max_length {max_length}, got {stride}")
  unk = tokenizer.unk_token_id
  pad = tokenizer.pad_token_id
  if unk is None or pad is None:
    raise ValueError("the tokenizer needs an unk and a pad token")
  # Ids first: bad records fail before the (possibly slow) tokenization.
  all_tags, all_pos = [], []
  for sent in sentences:
    all_tags.append(np.asarray(_ids(sent, sent.tags, tag_to_id, "tag"), np.int32))
    if pos_to_id is None:
      all_pos.append(np.zeros(len(sent), np.int32))
      continue
    if "pos" not in sent.extra:
      path, line = _origin(sent)
      raise InputError("record has no 'pos' column but POS ids were asked for", path, line)
    all_pos.append(np.asarray(_ids(sent, sent.extra["pos"], pos_to_id, "POS"), np.int32) + 1)
  all_pieces = word_pieces(tokenizer, sentences, cache_dir=cache_dir)
  features: list[Feature] = []
  n_windows_split = n_trunc = n_empty = n_no_pred = 0
  npre, nsuf = len(prefix), len(suffix)
  for ex, (sent, pieces, tags, pos) in enumerate(zip(sentences, all_pieces, all_tags, all_pos)):
    n = len(sent)
    raw = [len(p) for p in pieces]
    empty = trunc = None
    if n and (min(raw) == 0 or max(raw) > budget):  # rare: fix up, and count what was done
      empty = np.asarray([x == 0 for x in raw])
      trunc = np.maximum(np.asarray(raw) - budget, 0)
      pieces = [tuple(p or (unk,))[:budget] for p in pieces]
      raw = [len(p) for p in pieces]
    lens = np.asarray(raw, np.int64)
    cum = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=cum[1:])
    flat = np.asarray(list(itertools.chain.from_iterable(pieces)), np.int32)
    word_of = np.repeat(np.arange(n, dtype=np.int32), lens)
    spans, owner = windows(raw, budget, stride)
    owner = np.asarray(owner, np.int64)
    if len(spans) > 1:
      n_windows_split += 1
    for k, (s, e) in enumerate(spans):
      a, b = int(cum[s]), int(cum[e])
      size = npre + (b - a) + nsuf
      ids = np.empty(size, np.int32)
      ids[:npre], ids[npre:npre + b - a], ids[npre + b - a:] = prefix, flat[a:b], suffix
      own = np.nonzero(owner[s:e] == k)[0] + s  # owned word indices
      at = cum[own] - a + npre  # their first subwords
      labels = np.full(size, -1, np.int32)
      labels[at] = tags[own]
      wids = np.full(size, -1, np.int32)
      wids[at] = own
      pred = np.zeros(size, np.int32)
      if sent.predicate is not None:
        pred[npre:npre + b - a] = word_of[a:b] == sent.predicate
      posv = np.zeros(size, np.int32)
      posv[npre:npre + b - a] = pos[word_of[a:b]]
      has_pred = sent.predicate is None or s <= sent.predicate < e
      f = Feature(
          input_ids=ids, labels=labels, predicate_ids=pred, pos_ids=posv, word_ids=wids, example_id=ex,
          num_words=n, pad_id=pad, max_length=max_length,
          truncated_subwords=0 if trunc is None else int(trunc[own].sum()),
          empty_words=0 if empty is None else int(empty[own].sum()), has_predicate=has_pred, span=(s, e))
      assert size <= max_length
      n_trunc += f.truncated_subwords
      n_empty += f.empty_words
      n_no_pred += not has_pred
      features.append(f)
  if n_windows_split or n_trunc or n_empty or n_no_pred:
    logging.info("encode: %d records -> %d windows; %d records split into windows, %d continuation subwords "
                 "truncated, %d words without subwords encoded as unk, %d SRL windows without their predicate",
                 len(sentences), len(features), n_windows_split, n_trunc, n_empty, n_no_pred)
  return features


def summary(features: Sequence[Feature]) -> dict[str, int]:
  """Counts worth reporting after `encode` (each owned word counted once)."""
  return {
      "records": len({f.example_id for f in features}),
      "windows": len(features),
      "split_records": sum(1 for n in collections.Counter(f.example_id for f in features).values() if n > 1),
      "truncated_subwords": sum(f.truncated_subwords for f in features),
      "empty_words": sum(f.empty_words for f in features),
      "windows_without_predicate": sum(not f.has_predicate for f in features),
      "max_subwords": max((len(f) for f in features), default=0),
  }
