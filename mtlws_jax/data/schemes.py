"""Tag schemes (IOB1, IOB2, BIOES, ABSA "ot") and the spans they encode.

Every conversion goes through spans: tags are *read* into spans, spans are *written* as tags.
Reading follows conlleval (CoNLL shared-task scorer, `startOfChunk`/`endOfChunk`, with the
BIOES extension of the PyPI `conlleval` port), so an ill-formed sequence always means the
same spans here as in the scorer people compare against:

  a chunk starts at B or S, at the first word, or at I/E whose type differs from the previous
  tag's or whose previous tag is O, E or S; it ends before O, B or S, after E or S, and at a
  type change.

"ot" (unified ABSA, `O`/`T-POS`/`T-NEG`/`T-NEU`) has one prefix: a run of equal `T-X` tags is
one span labelled X, so two adjacent spans of the same label cannot be written in it.

`repair` rewrites a sequence in the canonical form of its scheme and counts the tags it
changed; `convert` does the same on the way to another scheme. Nothing is changed without a
count. Unknown prefixes or tags raise ValueError (readers wrap it with file and line).
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

SCHEMES = ("iob1", "iob2", "bioes", "ot")

# Prefixes each scheme may use (besides the bare "O").
_PREFIXES = {
    "iob1": frozenset("BI"),
    "iob2": frozenset("BI"),
    "bioes": frozenset("BIES"),
    "ot": frozenset("T"),
}


class Span(NamedTuple):
  """A labelled span of words: [start, end), end exclusive."""

  label: str
  start: int
  end: int


def _check_scheme(scheme: str) -> frozenset:
  try:
    return _PREFIXES[scheme]
  except KeyError:
    raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}") from None


@functools.lru_cache(maxsize=8192)
def split_tag(tag: str) -> tuple[str, str]:
  """("B", "PER") for "B-PER", ("O", "") for "O"; the type may itself contain hyphens (AM-TMP)."""
  if tag == "O":
    return "O", ""
  prefix, sep, label = tag.partition("-")
  if not sep or len(prefix) != 1 or prefix == "O" or not label or any(c.isspace() for c in tag):
    raise ValueError(f"malformed tag {tag!r}: expected 'O' or PREFIX-LABEL")
  return prefix, label


def _read(tags: Sequence[str], scheme: str) -> list[Span]:
  allowed = _check_scheme(scheme)
  spans: list[Span] = []
  start = -1  # start of the open chunk, -1 when none
  prev_prefix, prev_label = "O", ""
  for i, tag in enumerate(tags):
    prefix, label = split_tag(tag)
    if prefix == "O":
      if start >= 0:
        spans.append(Span(prev_label, start, i))
        start = -1
    else:
      if prefix not in allowed:
        raise ValueError(f"tag {tag!r} is not valid in scheme {scheme!r}")
      if start < 0 or prefix == "B" or prefix == "S" or prev_prefix == "E" or prev_prefix == "S" or label != prev_label:
        if start >= 0:
          spans.append(Span(prev_label, start, i))
        start = i
    prev_prefix, prev_label = prefix, label
  if start >= 0:
    spans.append(Span(prev_label, start, len(tags)))
  return spans


def tags_to_spans(tags: Sequence[str], scheme: str) -> list[Span]:
  """The spans a tag sequence encodes, read as conlleval reads them (ill-formed tags included)."""
  return _read(tags, scheme)


def spans_to_tags(spans: Sequence[Span], length: int, scheme: str) -> list[str]:
  """Canonical tags of `scheme` for non-overlapping spans over `length` words."""
  _check_scheme(scheme)
  tags = ["O"] * length
  prev_end, prev_label = -1, None
  for label, start, end in sorted(spans, key=lambda s: (s[1], s[2])):
    if not 0 <= start < end <= length:
      raise ValueError(f"span {label!r} [{start}, {end}) does not fit in {length} words")
    if start < prev_end:
      raise ValueError(f"span {label!r} [{start}, {end}) overlaps the previous span ending at {prev_end}")
    if not label or label != label.strip() or any(c.isspace() for c in label):
      raise ValueError(f"span label {label!r} is empty or holds whitespace")
    adjacent = start == prev_end and label == prev_label
    if scheme == "iob2":
      tags[start] = "B-" + label
      for i in range(start + 1, end):
        tags[i] = "I-" + label
    elif scheme == "iob1":
      tags[start] = ("B-" if adjacent else "I-") + label
      for i in range(start + 1, end):
        tags[i] = "I-" + label
    elif scheme == "bioes":
      if end - start == 1:
        tags[start] = "S-" + label
      else:
        tags[start] = "B-" + label
        for i in range(start + 1, end - 1):
          tags[i] = "I-" + label
        tags[end - 1] = "E-" + label
    else:  # ot
      if adjacent:
        raise ValueError(
            f"spans {label!r} [..., {start}) and [{start}, {end}) touch: the 'ot' scheme cannot separate them")
      for i in range(start, end):
        tags[i] = "T-" + label
    prev_end, prev_label = end, label
  return tags


def repair(tags: Sequence[str], scheme: str) -> tuple[list[str], int]:
  """Canonical tags for what conlleval reads in `tags`, and how many tags that changed."""
  fixed = spans_to_tags(_read(tags, scheme), len(tags), scheme)
  return fixed, sum(1 for a, b in zip(tags, fixed) if a != b)


def convert(tags: Sequence[str], src: str, dst: str) -> tuple[list[str], int]:
  """`tags` from scheme `src` rewritten in `dst`; the int counts ill-formed tags of the input.

  The count is the number of tags that `repair(tags, src)` changes, so a well-formed input
  converts with 0 whatever `dst` is. Converting to "ot" raises ValueError when two spans of
  the same label touch (the scheme cannot encode them).
  """
  _check_scheme(dst)
  spans = _read(tags, src)
  canonical = spans_to_tags(spans, len(tags), src)
  n_repaired = sum(1 for a, b in zip(tags, canonical) if a != b)
  out = canonical if dst == src else spans_to_tags(spans, len(tags), dst)
  return out, n_repaired


def validate(tags: Sequence[str], scheme: str) -> list[str]:
  """One message per ill-formed tag ('word 3: I-PER after B-LOC, read as B-PER'); [] if well-formed.

  Raises ValueError for tags that no reading can accept (unknown prefix, malformed tag).
  """
  fixed, n = repair(tags, scheme)
  if not n:
    return []
  problems = []
  for i, (a, b) in enumerate(zip(tags, fixed)):
    if a != b:
      before = tags[i - 1] if i else "sentence start"
      after = tags[i + 1] if i + 1 < len(tags) else "sentence end"
      problems.append(f"word {i}: {a} between {before} and {after}, read as {b}")
  return problems


def detect_scheme(tag_sequences) -> str:
  """The scheme a corpus uses, from the prefixes and contexts it shows.

  E/S prefixes -> "bioes"; T -> "ot"; only B/I: "iob1" if some I-X starts a chunk (after O,
  at sentence start, or after another type) and no B-X does so, else "iob2".
  """
  prefixes: set[str] = set()
  i_starts = b_starts = 0
  for tags in tag_sequences:
    prev_prefix, prev_label = "O", ""
    for tag in tags:
      prefix, label = split_tag(tag)
      prefixes.add(prefix)
      if prefix != "O" and (prev_prefix == "O" or prev_label != label):
        if prefix == "I":
          i_starts += 1
        elif prefix == "B":
          b_starts += 1
      prev_prefix, prev_label = prefix, label
  prefixes.discard("O")
  if prefixes & set("ES"):
    if prefixes - set("BIES"):
      raise ValueError(f"tag prefixes {sorted(prefixes)} mix schemes")
    return "bioes"
  if "T" in prefixes:
    if prefixes - {"T"}:
      raise ValueError(f"tag prefixes {sorted(prefixes)} mix schemes")
    return "ot"
  if prefixes - set("BI"):
    raise ValueError(f"unknown tag prefixes {sorted(prefixes - set('BIES'))}")
  if i_starts and not b_starts:
    return "iob1"
  return "iob2"
