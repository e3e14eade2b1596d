"""Tag schemes: reading spans the way conlleval does, writing canonical tags, counted repairs."""

from __future__ import annotations

import itertools
import random

import pytest
from conlleval import conlleval as pypi_conlleval

from mtlws_jax.data import schemes
from mtlws_jax.data.schemes import Span, convert, repair, spans_to_tags, tags_to_spans, validate
import conlleval_port

SCHEMES = ("iob1", "iob2", "bioes", "ot")
PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES", "ot": "T"}


def test_span_fields():
  s = Span("PER", 2, 4)
  assert (s.label, s.start, s.end) == ("PER", 2, 4)
  assert s == ("PER", 2, 4)


@pytest.mark.parametrize("tags,scheme,spans", [
    (["B-PER", "I-PER", "O", "B-LOC"], "iob2", [("PER", 0, 2), ("LOC", 3, 4)]),
    (["B-PER", "B-PER", "I-PER"], "iob2", [("PER", 0, 1), ("PER", 1, 3)]),
    (["I-PER", "I-PER", "B-PER", "O", "I-LOC"], "iob1", [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5)]),
    (["B-PER", "E-PER", "S-PER", "O", "B-LOC", "I-LOC", "E-LOC"], "bioes",
     [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 7)]),
    (["T-POS", "T-POS", "T-NEG", "O", "T-POS"], "ot", [("POS", 0, 2), ("NEG", 2, 3), ("POS", 4, 5)]),
    (["B-AM-TMP", "I-AM-TMP"], "iob2", [("AM-TMP", 0, 2)]),  # hyphens inside labels
    ([], "bioes", []),
    (["O", "O"], "ot", []),
])
def test_tags_to_spans_well_formed(tags, scheme, spans):
  assert tags_to_spans(tags, scheme) == [Span(*s) for s in spans]
  assert spans_to_tags(tags_to_spans(tags, scheme), len(tags), scheme) == tags
  assert repair(tags, scheme) == (tags, 0)
  assert validate(tags, scheme) == []


# (input tags, scheme, spans as conlleval reads them, canonical tags, number of tags changed)
ILL_FORMED = [
    (["I-PER"], "iob2", [("PER", 0, 1)], ["B-PER"], 1),
    (["O", "I-PER", "I-PER"], "iob2", [("PER", 1, 3)], ["O", "B-PER", "I-PER"], 1),
    (["B-LOC", "I-PER"], "iob2", [("LOC", 0, 1), ("PER", 1, 2)], ["B-LOC", "B-PER"], 1),
    (["B-LOC", "I-PER", "I-LOC"], "iob2", [("LOC", 0, 1), ("PER", 1, 2), ("LOC", 2, 3)],
     ["B-LOC", "B-PER", "B-LOC"], 2),
    # IOB1: I- after O starts a chunk legitimately; B- is only for touching same-type chunks.
    (["O", "I-PER", "I-PER"], "iob1", [("PER", 1, 3)], ["O", "I-PER", "I-PER"], 0),
    (["O", "B-PER", "I-PER"], "iob1", [("PER", 1, 3)], ["O", "I-PER", "I-PER"], 1),
    (["I-LOC", "B-PER"], "iob1", [("LOC", 0, 1), ("PER", 1, 2)], ["I-LOC", "I-PER"], 1),
    (["B-X"], "bioes", [("X", 0, 1)], ["S-X"], 1),
    (["E-X"], "bioes", [("X", 0, 1)], ["S-X"], 1),
    (["I-X", "I-X"], "bioes", [("X", 0, 2)], ["B-X", "E-X"], 2),
    (["B-X", "B-X"], "bioes", [("X", 0, 1), ("X", 1, 2)], ["S-X", "S-X"], 2),
    (["B-X", "I-X", "O"], "bioes", [("X", 0, 2)], ["B-X", "E-X", "O"], 1),
    (["B-PER", "E-PER", "I-PER"], "bioes", [("PER", 0, 2), ("PER", 2, 3)], ["B-PER", "E-PER", "S-PER"], 1),
    (["B-X", "E-X", "E-X"], "bioes", [("X", 0, 2), ("X", 2, 3)], ["B-X", "E-X", "S-X"], 1),
    (["S-X", "I-X", "E-X"], "bioes", [("X", 0, 1), ("X", 1, 3)], ["S-X", "B-X", "E-X"], 1),
    (["S-X", "E-X"], "bioes", [("X", 0, 1), ("X", 1, 2)], ["S-X", "S-X"], 1),
    (["B-LOC", "E-PER"], "bioes", [("LOC", 0, 1), ("PER", 1, 2)], ["S-LOC", "S-PER"], 2),
    (["B-LOC", "I-LOC", "E-PER"], "bioes", [("LOC", 0, 2), ("PER", 2, 3)], ["B-LOC", "E-LOC", "S-PER"], 2),
]


@pytest.mark.parametrize("tags,scheme,spans,fixed,n", ILL_FORMED)
def test_ill_formed_read_like_conlleval_and_counted(tags, scheme, spans, fixed, n):
  assert tags_to_spans(tags, scheme) == [Span(*s) for s in spans]
  assert repair(tags, scheme) == (fixed, n)
  assert len(validate(tags, scheme)) == n
  # A conversion reports the same count, whatever the target scheme.
  for dst in ("iob1", "iob2", "bioes"):
    out, count = convert(tags, scheme, dst)
    assert count == n
    assert tags_to_spans(out, dst) == [Span(*s) for s in spans]


def test_validate_message_names_word_and_reading():
  (msg,) = validate(["B-LOC", "I-PER", "O"], "iob2")
  assert msg == "word 1: I-PER between B-LOC and O, read as B-PER"


@pytest.mark.parametrize("tags,scheme,dst,want", [
    (["B-PER", "I-PER", "B-PER", "O"], "iob2", "iob1", ["I-PER", "I-PER", "B-PER", "O"]),
    (["B-PER", "I-PER", "B-PER", "O"], "iob2", "bioes", ["B-PER", "E-PER", "S-PER", "O"]),
    (["I-PER", "B-PER", "O", "I-LOC", "I-LOC"], "iob1", "iob2", ["B-PER", "B-PER", "O", "B-LOC", "I-LOC"]),
    (["T-POS", "T-POS", "T-NEG", "O", "T-NEU"], "ot", "bioes", ["B-POS", "E-POS", "S-NEG", "O", "S-NEU"]),
    (["B-POS", "E-POS", "S-NEG", "O", "S-NEU"], "bioes", "ot", ["T-POS", "T-POS", "T-NEG", "O", "T-NEU"]),
])
def test_convert_examples(tags, scheme, dst, want):
  assert convert(tags, scheme, dst) == (want, 0)


@pytest.mark.parametrize("tags,scheme", [
    (["E-X"], "iob2"),
    (["S-X"], "iob1"),
    (["B-POS"], "ot"),
    (["T-POS"], "bioes"),
    (["PER"], "iob2"),
    (["B-"], "iob2"),
    (["BI-X"], "iob2"),
    ([""], "bioes"),
    (["o"], "bioes"),
    (["O-PER"], "iob2"),
    (["B-P ER"], "iob2"),
    (["B-PER\t"], "bioes"),
    (["B-X"], "iobes"),  # unknown scheme name
])
def test_unknown_tags_and_schemes_raise(tags, scheme):
  with pytest.raises(ValueError):
    tags_to_spans(tags, scheme)
  with pytest.raises(ValueError):
    repair(tags, scheme)


def test_spans_to_tags_rejects_bad_spans():
  with pytest.raises(ValueError, match="overlaps"):
    spans_to_tags([Span("A", 0, 2), Span("B", 1, 3)], 4, "iob2")
  with pytest.raises(ValueError, match="does not fit"):
    spans_to_tags([Span("A", 2, 5)], 4, "bioes")
  with pytest.raises(ValueError, match="does not fit"):
    spans_to_tags([Span("A", 2, 2)], 4, "bioes")
  with pytest.raises(ValueError, match="empty"):
    spans_to_tags([Span("", 0, 1)], 4, "bioes")
  with pytest.raises(ValueError, match="cannot separate"):
    spans_to_tags([Span("POS", 0, 1), Span("POS", 1, 2)], 2, "ot")
  with pytest.raises(ValueError, match="cannot separate"):
    convert(["S-POS", "S-POS"], "bioes", "ot")
  with pytest.raises(ValueError):
    convert(["B-X"], "iob2", "iobes")
  # Unsorted input is fine; different labels may touch in "ot".
  assert spans_to_tags([Span("NEG", 1, 2), Span("POS", 0, 1)], 2, "ot") == ["T-POS", "T-NEG"]


def test_detect_scheme():
  assert schemes.detect_scheme([["B-PER", "I-PER"], ["O", "B-LOC"]]) == "iob2"
  assert schemes.detect_scheme([["I-PER", "I-PER", "B-PER"], ["O", "I-LOC"]]) == "iob1"
  assert schemes.detect_scheme([["B-PER", "E-PER"], ["S-LOC"]]) == "bioes"
  assert schemes.detect_scheme([["T-POS", "O"]]) == "ot"
  assert schemes.detect_scheme([["O"]]) == "iob2"
  with pytest.raises(ValueError):
    schemes.detect_scheme([["T-POS", "S-POS"]])
  with pytest.raises(ValueError):
    schemes.detect_scheme([["X-POS"]])


# ---------------------------------------------------------------- property-style tests

LABELS = ("PER", "LOC", "AM-TMP")


def random_spans(rng: random.Random, length: int, scheme: str) -> list[Span]:
  spans, i = [], 0
  while i < length:
    if rng.random() < 0.5:
      i += rng.randint(0, 2)
      continue
    end = min(length, i + rng.randint(1, 4))
    label = rng.choice(LABELS)
    if scheme == "ot" and spans and spans[-1].end == i and spans[-1].label == label:
      i += 1  # "ot" cannot encode touching same-label spans
      continue
    spans.append(Span(label, i, end))
    i = end
  return spans


def random_tags(rng: random.Random, length: int, scheme: str) -> list[str]:
  """Any sequence of the scheme's tags, mostly ill-formed."""
  return [
      "O" if rng.random() < 0.3 else f"{rng.choice(PREFIXES[scheme])}-{rng.choice(LABELS[:2])}"
      for _ in range(length)
  ]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_spans_tags_spans_identity(scheme):
  rng = random.Random(0)
  for _ in range(2000):
    length = rng.randint(0, 15)
    spans = random_spans(rng, length, scheme)
    tags = spans_to_tags(spans, length, scheme)
    assert len(tags) == length
    assert tags_to_spans(tags, scheme) == spans
    assert repair(tags, scheme) == (tags, 0)


@pytest.mark.parametrize("src,dst", [(a, b) for a, b in itertools.product(SCHEMES, SCHEMES)])
def test_conversions_round_trip(src, dst):
  rng = random.Random(1)
  for _ in range(500):
    length = rng.randint(0, 15)
    spans = random_spans(rng, length, "ot")  # encodable in every scheme
    tags = spans_to_tags(spans, length, src)
    out, n = convert(tags, src, dst)
    assert n == 0
    assert out == spans_to_tags(spans, length, dst)
    assert convert(out, dst, src) == (tags, 0)


def oracle_spans(tags, start_of_chunk, end_of_chunk) -> list[Span]:
  """Chunks found by conlleval's own start/end rules (tags given as conlleval would see them)."""
  spans, start = [], None
  prev, prev_type = "O", ""
  for i, tag in enumerate(list(tags) + ["O"]):  # the sentence boundary reads as O
    cur, cur_type = tag.split("-", 1) if tag != "O" else ("O", "")
    if start is not None and end_of_chunk(prev, cur, prev_type, cur_type):
      spans.append(Span(prev_type, start, i))
      start = None
    if start_of_chunk(prev, cur, prev_type, cur_type):
      assert start is None, "conlleval started a chunk without ending the open one"
      start = i
    prev, prev_type = cur, cur_type
  return spans


def pypi_start(p, t, pt, tt):
  return pypi_conlleval.start_of_chunk(p, t, pt, tt, "O")


@pytest.mark.parametrize("scheme", SCHEMES)
def test_random_tags_read_like_conlleval(scheme):
  rng = random.Random(2)
  n_ill = 0
  for _ in range(3000):
    tags = random_tags(rng, rng.randint(0, 12), scheme)
    spans = tags_to_spans(tags, scheme)
    # "ot" reads as conlleval reads I-X runs.
    as_conll = [t.replace("T-", "I-", 1) for t in tags] if scheme == "ot" else tags
    assert spans == oracle_spans(as_conll, pypi_start, pypi_conlleval.end_of_chunk)
    if scheme in ("iob1", "iob2"):  # the original Perl rules know no S (and no E->B)
      assert spans == oracle_spans(tags, conlleval_port.start_of_chunk, conlleval_port.end_of_chunk)
    fixed, n = repair(tags, scheme)
    assert n == sum(a != b for a, b in zip(tags, fixed))
    assert tags_to_spans(fixed, scheme) == spans
    assert repair(fixed, scheme) == (fixed, 0)
    assert len(validate(tags, scheme)) == n
    for dst in SCHEMES:
      if dst == "ot" and any(a.end == b.start and a.label == b.label for a, b in zip(spans, spans[1:])):
        continue
      out, count = convert(tags, scheme, dst)
      assert count == n
      assert tags_to_spans(out, dst) == spans
    n_ill += n > 0
  if scheme != "ot":  # the generator must actually exercise repairs
    assert n_ill > 1000
  else:
    assert n_ill == 0  # every O/T-X sequence is well-formed
