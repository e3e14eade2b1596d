"""Counts of a corpus file, as one JSON object on stdout.

  python -m mtlws_jax.data.stats --task=ner --format=conll --path=en.conll.train.tsv
  python -m mtlws_jax.data.stats --task=absa --path=gold-en-train.txt      # --format: the task's own
  python -m mtlws_jax.data.stats --task=absa --format=absa --path=gold-en-train.txt
  python -m mtlws_jax.data.stats --task=absa --format=conll --tag_column=1 --path=DeepL.Iker.train.tsv
  python -m mtlws_jax.data.stats --task=srl --format=upb --path=en_ewt-up-dev.conllu

NER/ABSA: `sentences`, `tokens`, `spans` (entities, aspect terms: read by `data.schemes` as
conlleval reads them), `labels` (spans per label: entity type or polarity), `tags` (words per
tag) and `ill_formed_tags` (tags conlleval's reading changes; 0 for a clean file).
SRL: `sentences` (all of them, with or without predicates), `tokens` (their words),
`predicates` (= instances), `arguments` (non-"O" tags over the instances, EWT's `V` on a
phrasal verb's particle and `C-V` included), `labels` (per role).
Bad input exits 1 with "error: path:line: problem" on stderr, no traceback.
"""

from __future__ import annotations

import collections
import json
import os
import sys
from typing import Any

from mtlws_jax.data import schemes
from mtlws_jax.errors import InputError, main_guard

# "absa" as the other CLIs (projection, translate, predict) name it; "absa-ot" is its older name here
TASK_FORMATS = {"ner": ("conll",), "absa": ("absa", "absa-ot", "conll"), "srl": ("upb",)}


def span_stats(sentences) -> dict[str, Any]:
  """Counts of NER/ABSA records (any scheme `data.schemes` reads)."""
  if not sentences:
    raise ValueError("no sentences")
  labels: collections.Counter = collections.Counter()
  tags: collections.Counter = collections.Counter()
  spans = ill_formed = 0
  for s in sentences:
    found = schemes.tags_to_spans(s.tags, s.scheme)
    spans += len(found)
    labels.update(sp.label for sp in found)
    tags.update(s.tags)
    canonical = schemes.spans_to_tags(found, len(s), s.scheme)  # what schemes.repair does, spans reused
    ill_formed += sum(a != b for a, b in zip(s.tags, canonical))
  return {
      "scheme": sentences[0].scheme,
      "sentences": len(sentences),
      "tokens": sum(len(s) for s in sentences),
      "spans": spans,
      "labels": dict(sorted(labels.items())),
      "tags": dict(sorted(tags.items())),
      "ill_formed_tags": ill_formed,
  }


def srl_stats(layout: str, blocks, inst) -> dict[str, Any]:
  """Counts from `upb.read_sentences` (layout, blocks) and their `upb.instances`."""
  words = [b for b in blocks if b.n_words]
  labels = collections.Counter(t for s in inst for t in s.tags if t != "O")
  return {
      "layout": layout,
      "sentences": len(words),
      "sentences_without_predicates": sum(1 for b in words if not b.predicates),
      "tokens": sum(b.n_words for b in words),
      "predicates": len(inst),
      "arguments": sum(labels.values()),
      "labels": dict(sorted(labels.items())),
  }


def compute(task: str, fmt: str, path: str | os.PathLike, *, scheme: str = "auto", tag_column: int = -1,
            layout: str = "auto") -> dict[str, Any]:
  """The counts `main` prints (InputError for bad input or a format that does not fit the task)."""
  if task not in TASK_FORMATS:
    raise InputError(f"unknown task {task!r}; expected one of {', '.join(TASK_FORMATS)}")
  if fmt not in TASK_FORMATS[task]:
    raise InputError(f"format {fmt!r} does not fit task {task!r}; use one of {', '.join(TASK_FORMATS[task])}")
  if not str(path):
    raise InputError("--path is empty: give the file to check")
  if os.path.isdir(path):
    raise InputError("is a folder, not a file", path)
  if not os.path.exists(path):     # a pipe or process substitution exists and is read as a file
    raise InputError("no such file", path)
  out: dict[str, Any] = {"task": task, "format": fmt, "path": os.fspath(path)}
  if fmt == "conll":
    from mtlws_jax.data import conll
    out.update(span_stats(conll.read(path, scheme=scheme, tag_column=tag_column)))
  elif fmt in ("absa", "absa-ot"):
    from mtlws_jax.data import absa
    out.update(span_stats(absa.read(path)))
  else:
    from mtlws_jax.data import upb
    layout, blocks = upb.read_sentences(path, layout=layout)
    out.update(srl_stats(layout, blocks, upb.instances(layout, blocks, path)))
  return out


def main(argv) -> None:
  from absl import flags
  if len(argv) > 1:
    raise InputError(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  result = compute(f.task, f.format or TASK_FORMATS[f.task][0], f.path, scheme=f.scheme, tag_column=f.tag_column, layout=f.layout)
  json.dump(result, sys.stdout, ensure_ascii=False)
  sys.stdout.write("\n")


def _define_flags() -> None:
  from absl import flags
  flags.DEFINE_enum("task", None, list(TASK_FORMATS), "Task of the file.", required=True)
  flags.DEFINE_enum("format", None, ["conll", "absa", "absa-ot", "upb"],
                    "conll: CoNLL columns; absa (or absa-ot): unified ABSA T-X; upb: Universal Proposition "
                    "Bank (default: the task's own: conll, absa, upb).")
  flags.DEFINE_string("path", None, "The file to count.", required=True)
  flags.DEFINE_enum("scheme", "auto", ["auto", "iob1", "iob2", "bioes"], "conll: tag scheme (auto detects).")
  flags.DEFINE_integer("tag_column", -1, "conll: column of the tag (0 is the token; -1 the last).")
  flags.DEFINE_enum("layout", "auto", ["auto", "up1", "ewt"], "upb: column layout (auto detects).")


if __name__ == "__main__":
  from absl import app
  _define_flags()
  from mtlws_jax.errors import absl_flags_parser
  app.run(main_guard(main), flags_parser=absl_flags_parser)
