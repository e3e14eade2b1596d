"""The plain records every reader returns, every writer takes and projection maps.

A `Sentence` is one tagged sentence (NER, ABSA) or one SRL instance (the sentence seen from one
predicate). Tags are word-level strings; spans are derived from tags by `data.schemes`.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping


@dataclasses.dataclass(frozen=True)
class Sentence:
  """One tagged sentence or SRL instance.

  tokens:    the words, never empty strings, never containing whitespace.
  tags:      one tag per word. NER: the file's scheme (IOB1/IOB2/BIOES, see `scheme`);
             ABSA: BIOES joined with polarity (B-POS, E-NEG, S-NEU, ...);
             SRL: "O" or a role (A0, AM-TMP, ...) on argument head words ("OI" scheme).
  scheme:    name of the tag scheme of `tags`: "iob1", "iob2", "bioes" or "oi".
  extra:     other per-word columns by name, in file order (e.g. "pos", "category", "lemma");
             each tuple has one entry per word. Writers use them to round-trip files.
  predicate: SRL only: index of the predicate word; None otherwise.
  sense:     SRL only: the predicate's roleset (e.g. "feel.01").
  meta:      per-sentence facts a writer needs to reproduce the file (e.g. comment lines,
             the SRL layout, the sentence id, a preceding -DOCSTART-). Not used for training.
  origin:    "path:line" of the sentence's first line, for error messages.
  """

  tokens: tuple[str, ...]
  tags: tuple[str, ...]
  scheme: str = "iob2"
  extra: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
  predicate: int | None = None
  sense: str | None = None
  meta: Mapping[str, object] = dataclasses.field(default_factory=dict)
  origin: str = ""

  def __post_init__(self):
    if len(self.tokens) != len(self.tags):
      raise ValueError(f"{self.origin or 'sentence'}: {len(self.tokens)} tokens but {len(self.tags)} tags")
    for name, col in self.extra.items():
      if len(col) != len(self.tokens):
        raise ValueError(f"{self.origin or 'sentence'}: column {name!r} has {len(col)} entries for {len(self.tokens)} tokens")
    if self.predicate is not None and not 0 <= self.predicate < len(self.tokens):
      raise ValueError(f"{self.origin or 'sentence'}: predicate index {self.predicate} out of range")

  def __len__(self) -> int:
    return len(self.tokens)

  def replace(self, **changes) -> "Sentence":
    return dataclasses.replace(self, **changes)
