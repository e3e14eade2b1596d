"""Unified aspect-based sentiment files (XABSA): `token<TAB>TAG<TAB>CATEGORY` per line.

TAG is O, T-POS, T-NEG or T-NEU; a run of equal T-X tags is one aspect term of polarity X (the
"ot" scheme cannot separate two touching aspects of one polarity, so neither can we). Records
carry the paper's scheme, BIOES joined with polarity (B-POS, I-POS, E-POS, S-NEG, ...), and the
category column in `extra["category"]`. The writer converts back to T-X.

Other ABSA files of the Easy-Label-Projection kind are plain CoNLL columns (IOB2 over a TARGET
label, no polarity) and are read with `conll.read` (`tag_column=1` for `token TAG QUALITY`).
"""

from __future__ import annotations

import os
from typing import Iterable

from mtlws_jax.data import conll, schemes, textfile
from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError

POLARITIES = ("POS", "NEG", "NEU")
OT_TAGS = frozenset(["O"] + [f"T-{p}" for p in POLARITIES])
COLUMNS = ("token", "tag", "category")


def read(path: str | os.PathLike) -> list[Sentence]:
  """Sentences with BIOES+polarity tags, `extra["category"]`, scheme "bioes"."""
  cf = conll.read_columns(path, docstart=False)
  if cf.ncols != len(COLUMNS):
    raise InputError(f"{cf.ncols} columns, expected {len(COLUMNS)} ({', '.join(COLUMNS)})",
                     cf.path, cf.blocks[0][0])
  out = []
  for line, (tokens, tags, categories), _ in cf.blocks:
    bad = set(tags) - OT_TAGS
    if bad:
      first = min(tags.index(t) for t in bad)
      raise InputError(f"unknown tag {tags[first]!r}: expected O, T-POS, T-NEG or T-NEU", cf.path, line + first)
    bioes, _ = schemes.convert(tags, "ot", "bioes")  # "ot" runs are always well-formed
    out.append(Sentence(tokens=tokens, tags=tuple(bioes), scheme="bioes",
                        extra={"category": categories}, meta={"sep": cf.sep},
                        origin=f"{cf.path}:{line}"))
  return out


def to_ot(sentence: Sentence) -> tuple[list[str], int]:
  """The sentence's tags as T-X, and how many ill-formed tags (e.g. model output) were repaired."""
  try:
    return schemes.convert(sentence.tags, sentence.scheme, "ot")
  except ValueError as e:
    raise ValueError(f"{sentence.origin or 'sentence'}: {e}") from None


def format_sentences(sentences: Iterable[Sentence], *, default_category: str | None = None) -> tuple[str, int]:
  """The file text for `sentences` and the number of repaired tags (see `write`)."""
  rows, repaired = [], 0
  for s in sentences:
    ot, n = to_ot(s)
    repaired += n
    category = s.extra.get("category")
    if category is None:
      if default_category is None:
        raise ValueError(f"{s.origin or 'sentence'}: no extra['category'] column; pass default_category")
      category = (default_category,) * len(s)
    bad = set(ot) - OT_TAGS
    if bad:
      raise ValueError(f"{s.origin or 'sentence'}: polarity of {sorted(bad)} is not one of {', '.join(POLARITIES)}")
    rows.append(Sentence(tokens=s.tokens, tags=tuple(ot), scheme="ot", extra={"category": tuple(category)},
                         meta={"sep": s.meta.get("sep", "\t"), "tag_column": 1}, origin=s.origin))
  return conll.format_sentences(rows), repaired


def write(path: str | os.PathLike, sentences: Iterable[Sentence], *, default_category: str | None = None) -> int:
  """Writes a unified ABSA file that `read` returns unchanged; returns the number of repaired tags.

  Tags are read in their record's scheme (conlleval's reading of ill-formed sequences) and
  written as T-X; a nonzero return says how many tags that changed. Two touching aspects of one
  polarity cannot be written (ValueError). `default_category` fills a missing category column.
  """
  text, repaired = format_sentences(sentences, default_category=default_category)
  textfile.write_text(path, text)
  return repaired
