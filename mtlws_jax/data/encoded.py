"""Every set of an experiment encoded once (subword windows), with the notes a user must see.

`EncodedSets.build(config, data, tokenizer, cache_dir)`: the English train and dev sets, each
translated training set, the target dev sets (when config.selection.score_target_dev) and test
sets. Evaluation sets are encoded with their gold tags as labels (tasks.for_encoding).
"""

from __future__ import annotations

import dataclasses
import pathlib
from typing import Any

from mtlws_jax.data import encode, tasks


@dataclasses.dataclass
class Encoded:
  sentences: list
  features: list

  @property
  def n(self) -> int:
    return len(self.sentences)


@dataclasses.dataclass
class EncodedSets:
  source_train: Encoded
  source_dev: Encoded
  translated: dict[str, Encoded]
  target_dev: dict[str, Encoded]
  target_test: dict[str, Encoded]
  notes: list[str]

  @classmethod
  def build(cls, config, data: tasks.TaskData, tokenizer: Any, cache_dir: pathlib.Path) -> "EncodedSets":
    tag_to_id = data.tag_to_id
    pos_to_id = {p: i for i, p in enumerate(data.pos)} if data.pos else None

    def enc(sents, for_eval: bool) -> Encoded:
      return Encoded(list(sents), encode.encode(
          tasks.for_encoding(sents, tag_to_id) if for_eval else sents, tokenizer, tag_to_id,
          max_length=config.data.max_length, stride=config.data.stride, pos_to_id=pos_to_id,
          cache_dir=cache_dir))

    sets = cls(source_train=enc(data.source_train, False), source_dev=enc(data.source_dev, True),
               translated={l: enc(s, False) for l, s in data.translated.items()},
               target_dev=({l: enc(s, True) for l, s in data.target_dev.items()}
                           if config.selection.score_target_dev else {}),  # read and checked, not scored
               target_test={l: enc(s, True) for l, s in data.target_test.items()}, notes=[])
    sets.notes = sets._notes(config.data.max_length)
    return sets

  def _notes(self, max_length: int) -> list[str]:
    """One line per set whose sentences were windowed or whose words lost subwords: a user must
    see that (the counts are otherwise only in the INFO log)."""
    named = {"English train": self.source_train, "English dev": self.source_dev,
             **{f"translated {l}": e for l, e in self.translated.items()},
             **{f"{l} dev": e for l, e in self.target_dev.items()},
             **{f"{l} test": e for l, e in self.target_test.items()}}
    notes = []
    for name, e in named.items():
      got = encode.summary(e.features)
      parts = []
      if got["split_records"]:
        parts.append(f"{got['split_records']} of {got['records']} sentences longer than data.max_length="
                     f"{max_length} subwords were split into overlapping windows "
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
