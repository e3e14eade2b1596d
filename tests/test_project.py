"""Label projection: the paper's Figure 1, drop rules and their counts, SRL heads, records."""

from __future__ import annotations

import dataclasses
import random

import pytest

from mtlws_jax.data.records import Sentence
from mtlws_jax.data.schemes import Span, spans_to_tags, tags_to_spans
from mtlws_jax.projection import project as P

# Figure 1 of the paper. Links implied by the figure: Juventus-Juventus, has-ha, won-ganado,
# the-la, European-Europa, Cup-Copa, twice-{dos, veces}; "La" and "de" have none.
FIG_SRC = "Juventus has won the European Cup twice".split()
FIG_TGT = "La Juventus ha ganado la Copa de Europa dos veces".split()
FIG_TAGS = "S-ORG O O O B-MISC E-MISC O".split()
FIG_LINKS = {(0, 1), (1, 2), (2, 3), (3, 4), (4, 7), (5, 5), (6, 8), (6, 9)}


def _tags(strategy, tags=FIG_TAGS, links=FIG_LINKS, n=len(FIG_TGT), scheme="bioes", **kw):
  proj = P.project_spans(tags_to_spans(tags, scheme), links, n, strategy=strategy, **kw)
  return spans_to_tags(proj.spans, n, scheme), proj


def test_figure1_span_to_span():
  tags, proj = _tags("span")
  assert tags == "O S-ORG O O O B-MISC I-MISC E-MISC O O".split()
  assert proj.dropped == []


def test_figure1_word_to_word():
  tags, proj = _tags("word")
  assert tags == "O S-ORG O O O S-MISC O S-MISC O O".split()
  assert proj.dropped == [] and proj.word_conflicts == 0


def test_span_equals_word_for_monotone_one_to_one_alignments():
  rng = random.Random(0)
  for _ in range(50):
    n = rng.randint(1, 12)
    spans, i = [], 0
    while i < n:
      length = rng.randint(1, 3)
      if rng.random() < 0.5 and i + length <= n:
        spans.append(Span(rng.choice(["PER", "LOC"]), i, i + length))
      i += length
    links = {(i, i + 1) for i in range(n)}  # one prefix word in the target
    a = P.project_spans(spans, links, n + 1, strategy="span")
    b = P.project_spans(spans, links, n + 1, strategy="word")
    assert a.spans == b.spans == [Span(s.label, s.start + 1, s.end + 1) for s in spans]


def test_unaligned_span_is_dropped_and_counted():
  spans = [Span("PER", 0, 1), Span("LOC", 2, 3)]
  for strategy in P.STRATEGIES:
    proj = P.project_spans(spans, {(0, 0)}, 3, strategy=strategy)
    assert proj.spans == [Span("PER", 0, 1)]
    assert proj.dropped == [(Span("LOC", 2, 3), "unaligned")]
    assert proj.dropped_counts() == {"unaligned": 1}


def test_overlap_keeps_the_denser_span():
  # Span A: words 0-1 -> targets 0 and 3 (range 0..3, density 2/4); span B: word 3 -> target 1
  # (range 1..1, density 1): nested in A's range, B wins, A is dropped as "overlap".
  spans = [Span("ORG", 0, 2), Span("PER", 3, 4)]
  links = {(0, 0), (1, 3), (3, 1)}
  proj = P.span_to_span(spans, links, 5)
  assert proj.spans == [Span("PER", 1, 2)]
  assert proj.dropped == [(Span("ORG", 0, 2), "overlap")]


def test_crossing_ranges_are_dropped_as_crossing():
  # A -> targets 0..2 (density 2/3), B -> targets 2..3 (density 1): partial overlap.
  spans = [Span("ORG", 0, 2), Span("PER", 2, 4)]
  links = {(0, 0), (1, 2), (2, 2), (3, 3)}
  proj = P.span_to_span(spans, links, 4)
  assert proj.spans == [Span("PER", 2, 4)]
  assert proj.dropped == [(Span("ORG", 0, 2), "crossing")]


def test_equal_density_ties_go_to_more_links_then_source_order():
  spans = [Span("A", 0, 1), Span("B", 1, 2)]
  proj = P.span_to_span(spans, {(0, 0), (1, 0)}, 1)  # both onto target 0
  assert proj.spans == [Span("A", 0, 1)] and proj.dropped == [(Span("B", 1, 2), "overlap")]


def test_trim_foreign_cuts_a_stray_link():
  # "the European Cup": source span 1-2; a stray link 2->6 crosses "Juventus" (5, linked to
  # source word 0, outside the span) - Eq. 2 stretches to 1..6; trimming keeps 1..2.
  spans = [Span("MISC", 1, 3)]
  links = {(1, 1), (2, 2), (2, 6), (0, 5)}
  plain = P.span_to_span(spans, links, 7)
  trimmed = P.span_to_span(spans, links, 7, trim_foreign=True)
  assert plain.spans == [Span("MISC", 1, 7)]
  assert trimmed.spans == [Span("MISC", 1, 3)] and trimmed.trimmed == 1
  # Unlinked words inside the range ("de" in "Copa de Europa") are not foreign: no cut.
  again = P.span_to_span(tags_to_spans(FIG_TAGS, "bioes"), FIG_LINKS, 10, trim_foreign=True)
  assert again.spans == [Span("ORG", 1, 2), Span("MISC", 5, 8)] and again.trimmed == 0


def test_word_to_word_conflicts_go_to_the_span_with_more_links():
  spans = [Span("A", 0, 1), Span("B", 1, 3)]
  links = {(0, 0), (1, 0), (2, 0), (0, 1)}  # target 0: one link from A, two from B
  proj = P.word_to_word(spans, links, 2)
  assert proj.spans == [Span("B", 0, 1), Span("A", 1, 2)]
  assert proj.word_conflicts == 1
  # Tie: the earlier source span wins; the loser had links but keeps no word -> "conflict".
  proj = P.word_to_word(spans, {(0, 0), (1, 0)}, 1)
  assert proj.spans == [Span("A", 0, 1)]
  assert proj.dropped == [(Span("B", 1, 3), "conflict")]


def test_adjacent_spans_of_one_label_stay_apart_word_to_word():
  spans = [Span("POS", 0, 1), Span("POS", 1, 2)]
  proj = P.word_to_word(spans, {(0, 0), (1, 1)}, 2)
  assert spans_to_tags(proj.spans, 2, "bioes") == ["S-POS", "S-POS"]


def test_link_beyond_target_raises():
  with pytest.raises(ValueError, match="target has 2 words"):
    P.span_to_span([Span("A", 0, 1)], {(0, 5)}, 2)
  with pytest.raises(ValueError, match="target has 2 words"):
    P.word_to_word([Span("A", 0, 1)], {(0, 5)}, 2)


def test_unknown_strategy():
  with pytest.raises(ValueError, match="unknown projection strategy"):
    P.project_spans([], set(), 1, strategy="phrase")


# ---------------------------------------------------------------------------------------------
# SRL.


def test_srl_predicate_and_heads():
  # "Juventus has won the Cup" -> "La Juventus ha ganado la Copa"
  tgt = "La Juventus ha ganado la Copa".split()
  links = {(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 5)}
  res = P.project_srl(2, [(0, "A0"), (4, "A1")], links, tgt)
  assert res.predicate == 3
  # Juventus -> {La, Juventus}: both linked only to it; the longer word wins.
  assert res.roles == [(1, "A0"), (5, "A1")]
  assert res.dropped == []


def test_srl_head_prefers_exclusive_links():
  tgt = ["ab", "abcdef", "c"]
  links = {(0, 0), (0, 1), (1, 1)}  # target 1 is shared with source 1, target 0 is not
  by_src, by_tgt = P._links_by_source(links), P._links_by_target(links)
  assert P.head_target(0, by_src, by_tgt, tgt) == 0
  assert P.head_target(2, by_src, by_tgt, tgt) is None


def test_srl_drops_unaligned_collisions_and_instances_without_predicate():
  tgt = ["x", "y", "z"]
  links = {(0, 0), (1, 1), (2, 1), (3, 0)}
  res = P.project_srl(0, [(1, "A0"), (2, "A1"), (3, "AM-TMP"), (4, "A2")], links, tgt)
  assert res.predicate == 0
  assert res.roles == [(1, "A0")]
  assert sorted(res.dropped) == [(2, "A1", "collision"), (3, "AM-TMP", "collision"), (4, "A2", "unaligned")]
  res = P.project_srl(4, [(1, "A0")], links, tgt)
  assert res.predicate is None and res.roles == []
  assert res.dropped == [(1, "A0", "predicate_unaligned")]


def test_srl_sentence_with_and_without_pos_tagger():
  src = Sentence(tokens=("He", "won", "it"), tags=("A0", "O", "A1"), scheme="oi", predicate=1, sense="win.01",
                 extra={"pos": ("PRON", "VERB", "PRON"), "lemma": ("he", "win", "it")}, origin="f:1")
  links = {(0, 0), (1, 1), (2, 2)}
  out, rep = P.project_srl_sentence(src, ["Él", "ganó", "eso"], links)
  assert out.tags == ("A0", "O", "A1") and out.predicate == 1 and out.sense == "win.01"
  assert out.extra == {"pos": ("_", "_", "_")}
  assert out.meta["unprojected_columns"] == ["lemma"]
  assert rep.projected_spans == 2 and rep.left_out is None
  out, _ = P.project_srl_sentence(src, ["Él", "ganó", "eso"], links, pos_tagger=lambda t: ["PRON", "VERB", "PRON"])
  assert out.extra["pos"] == ("PRON", "VERB", "PRON")
  # UPOS projected over the links: majority of the linked source words, ties leftmost, "_" unlinked
  out, _ = P.project_srl_sentence(src, ["Él", "lo", "ganó", "ayer"], {(0, 0), (2, 1), (1, 2), (0, 3), (1, 3)},
                                  pos_tagger="project")
  assert out.extra["pos"] == ("PRON", "PRON", "VERB", "PRON")
  assert P.project_pos(("DET", "NOUN", "NOUN", "_"), {(0, 0), (1, 0), (2, 0), (3, 1)}, 3) == ("NOUN", "_", "_")
  with pytest.raises(ValueError, match="needs source POS"):
    P.project_srl_sentence(dataclasses.replace(src, extra={}), ["Él", "ganó", "eso"], links, pos_tagger="project")
  none, rep = P.project_srl_sentence(src, ["Él", "ganó", "eso"], {(0, 0)})
  assert none is None and rep.left_out == "predicate_unaligned" and rep.dropped == {"predicate_unaligned": 2}


# ---------------------------------------------------------------------------------------------
# NER / ABSA records.


def test_project_tagged_keeps_scheme_and_projects_category():
  src = Sentence(tokens=("The", "fish", "tacos", "rock"), tags=("O", "B-POS", "E-POS", "O"), scheme="bioes",
                 extra={"category": ("NIL", "FOOD#QUALITY", "FOOD#QUALITY", "NIL")}, origin="a:1")
  tgt = ["Los", "tacos", "de", "pescado", "mandan"]
  links = {(0, 0), (1, 3), (2, 1), (3, 4)}
  out, rep = P.project_tagged(src, tgt, links, index=3)
  assert out.tags == ("O", "B-POS", "I-POS", "E-POS", "O")
  assert out.extra["category"] == ("NIL", "FOOD#QUALITY", "FOOD#QUALITY", "FOOD#QUALITY", "NIL")
  assert rep.index == 3 and rep.source_spans == 1 and rep.projected_spans == 1 and rep.dropped == {}
  out, rep = P.project_tagged(src, tgt, links, strategy="word")
  assert out.tags == ("O", "S-POS", "O", "S-POS", "O")


def test_project_tagged_reports_dropped_spans_with_text():
  src = Sentence(tokens=("Anna", "met", "Bob"), tags=("B-PER", "O", "B-PER"), scheme="iob2", origin="n:7")
  out, rep = P.project_tagged(src, ["Anna", "conoció", "a", "Bob"], {(0, 0), (1, 1)})
  assert out.tags == ("B-PER", "O", "O", "O") and out.scheme == "iob2"
  assert rep.dropped == {"unaligned": 1}
  assert rep.dropped_spans == [{"label": "PER", "start": 2, "end": 3, "text": "Bob", "reason": "unaligned"}]
  assert rep.origin == "n:7"
