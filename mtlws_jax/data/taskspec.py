"""The task registry: what each task reads and writes, trains in, and scores (issue 25).

Every reader, writer, scorer and command asks `get(task)` instead of branching on the task's
name: NER and ABSA are spans over words (BIOES), SRL is roles on argument heads, one instance per
predicate (predicate-aware inputs, scored as (predicate, head, role) triples, resampled per
sentence in the bootstrap).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Sequence
from typing import Any

from mtlws_jax.errors import InputError


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  name: str
  scheme: str           # the scheme models train on and spans are scored in (paper section 6.2)
  file_format: str      # the task's file format: conll | absa | upb (predict, projection)
  reader: str           # module in mtlws_jax.data with read() and write()
  predicates: bool      # one instance per predicate: predicate ids and UPOS inputs; scored per sentence
  unit: str             # what is scored: "spans" or "arguments"

  @property
  def module(self) -> Any:
    return importlib.import_module(f"mtlws_jax.data.{self.reader}")

  def read(self, path) -> list:
    return self.module.read(path)

  def write(self, path, sentences: Sequence) -> None:
    self.module.write(path, sentences)

  @property
  def exportable(self) -> bool:
    """A Hugging Face token-classification model holds it (no predicate or POS inputs)."""
    return not self.predicates


TASKS: dict[str, TaskSpec] = {
    "ner": TaskSpec("ner", "bioes", "conll", "conll", predicates=False, unit="spans"),
    "srl": TaskSpec("srl", "oi", "upb", "upb", predicates=True, unit="arguments"),
    "absa": TaskSpec("absa", "bioes", "absa", "absa", predicates=False, unit="spans"),
}


def get(task: str) -> TaskSpec:
  if task not in TASKS:
    raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
  return TASKS[task]
