"""Label projection through word alignments: span-to-span (paper Eq. 2) and word-to-word.

Works on plain data: source spans (`schemes.Span`, end exclusive), a set of (source, target)
links and the target length. `project_tagged` (NER, ABSA) and `project_srl_sentence` apply it
to `Sentence` records.

Span-to-span (Eq. 2): the target span of a source span [i, n] runs from the smallest to the
largest target index linked to any of its words; the label is copied and the boundary tags
are re-generated in the output scheme. With `trim_foreign=True` (not in the paper; measured in
benchmarks/projection_quality.py) that range is first cut at target words linked only to
source words outside the span, and the piece with the most links into the span is kept
(ties: the leftmost piece) and trimmed to start and end on linked words, so one stray link
cannot stretch a span over half the sentence.

Word-to-word: every target word linked to a word of a source span takes that span's label;
a maximal run of consecutive target words taken by the same source span is one target span
(so a span whose translation is interrupted, "Copa de Europa" for "European Cup", gives two
spans, as in the paper's Figure 1a). A target word linked to words of several spans goes to
the span with the most links to it (ties: the earlier source span); each such word is
counted as a `word_conflict`.

Dropped spans and their reasons (counted per sentence, never silent):
  unaligned: no word of the source span has a link.
  conflict:  (word-to-word) the span has links, but every linked target word went to another span.
  overlap:   its projected span shares words with a kept span and one contains the other.
  crossing:  its projected span partly overlaps a kept span (neither contains the other).
Overlaps and crossings are resolved greedily: spans are kept in order of density (links into
the span per target word of the projected span), then number of linked target words, then
source order; a span is dropped when it touches one already kept.

SRL: the predicate and each argument head word are projected to one target word each: among
the target words linked to the source word, the one with the fewest links to other source
words, then the longest (content words over function words), then the leftmost. An instance
whose predicate has no link is left out (its arguments count as `predicate_unaligned`), and so
is one whose predicate lands on the word another predicate of the sentence took
(`predicate_collision`, decided in `__main__`); an argument without a link is `unaligned`; an
argument landing on the predicate or on a word another argument already took (earlier
arguments first) is `collision`. Target POS comes from an optional tagger callable
(tokens -> UPOS list), or is projected from the source (`pos_tagger="project"`: UPOS is one tag
set for all languages, so each target word takes the majority UPOS of the source words linked to
it, ties to the leftmost), or is "_" (CoNLL-U's "unknown", not the UPOS tag X "other"), also for
target words without a link when projecting: a POS vocabulary for training on projected SRL data
must give "_" an id (or treat it as no POS).
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Iterable, Mapping, Sequence

from mtlws_jax.data.records import Sentence
from mtlws_jax.data.schemes import Span, spans_to_tags, tags_to_spans

STRATEGIES = ("span", "word")
REASONS = ("unaligned", "conflict", "overlap", "crossing", "collision", "predicate_unaligned", "predicate_collision")
UNKNOWN_POS = "_"


@dataclasses.dataclass
class Projection:
  """Target spans of one sentence, what was dropped (source span, reason) and word conflicts."""

  spans: list[Span]
  dropped: list[tuple[Span, str]] = dataclasses.field(default_factory=list)
  word_conflicts: int = 0
  trimmed: int = 0

  def dropped_counts(self) -> dict[str, int]:
    return dict(collections.Counter(r for _, r in self.dropped))


def _links_by_source(links: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
  out = collections.defaultdict(set)
  for i, j in links:
    out[i].add(j)
  return out


def _links_by_target(links: Iterable[tuple[int, int]]) -> dict[int, set[int]]:
  out = collections.defaultdict(set)
  for i, j in links:
    out[j].add(i)
  return out


def _trim(lo: int, hi: int, inside: set[int], by_tgt: Mapping[int, set[int]], span: Span) -> tuple[int, int]:
  """Cuts [lo, hi] at target words linked only outside `span`; keeps the best-supported piece."""
  pieces, start = [], None
  for j in range(lo, hi + 1):
    srcs = by_tgt.get(j, ())
    foreign = bool(srcs) and all(not span.start <= i < span.end for i in srcs)
    if foreign:
      if start is not None:
        pieces.append((start, j - 1))
        start = None
    elif start is None:
      start = j
  if start is not None:
    pieces.append((start, hi))
  best = max(pieces, key=lambda p: (sum(p[0] <= j <= p[1] for j in inside), -p[0]))
  # Trim unlinked words off the piece's ends: the span starts and ends on linked words.
  a, b = best
  while a < b and a not in inside:
    a += 1
  while b > a and b not in inside:
    b -= 1
  return a, b


def _resolve(cands: list[tuple[Span, Span, tuple]], proj: Projection) -> list[Span]:
  """Greedy overlap resolution: best candidates first; drops those touching a kept span."""
  kept: list[tuple[Span, Span]] = []
  for src, tgt, _ in sorted(cands, key=lambda c: c[2]):
    reason = None
    for _, k in kept:
      if tgt.start < k.end and k.start < tgt.end:
        nested = (tgt.start <= k.start and k.end <= tgt.end) or (k.start <= tgt.start and tgt.end <= k.end)
        reason = "overlap" if nested else "crossing"
        break
    if reason is None:
      kept.append((src, tgt))
    else:
      proj.dropped.append((src, reason))
  return sorted((t for _, t in kept), key=lambda s: (s.start, s.end))


def span_to_span(spans: Sequence[Span], links: Iterable[tuple[int, int]], tgt_len: int, *,
                 trim_foreign: bool = False) -> Projection:
  """Paper Eq. 2: target span = [min, max] of the targets linked to the source span's words."""
  links = frozenset(links)
  by_src, by_tgt = _links_by_source(links), _links_by_target(links)
  proj = Projection(spans=[])
  cands = []
  for order, s in enumerate(spans):
    inside = set().union(*(by_src.get(i, set()) for i in range(s.start, s.end)))
    if not inside:
      proj.dropped.append((s, "unaligned"))
      continue
    lo, hi = min(inside), max(inside)
    if trim_foreign:
      new = _trim(lo, hi, inside, by_tgt, s)
      if new != (lo, hi):
        proj.trimmed += 1
      lo, hi = new
    n_in = sum(lo <= j <= hi for j in inside)
    density = n_in / (hi - lo + 1)
    cands.append((s, Span(s.label, lo, hi + 1), (-density, -n_in, order)))
  for t in (t for _, t, _ in cands):
    if t.end > tgt_len:
      raise ValueError(f"link to target word {t.end - 1} but the target has {tgt_len} words")
  proj.spans = _resolve(cands, proj)
  return proj


def word_to_word(spans: Sequence[Span], links: Iterable[tuple[int, int]], tgt_len: int) -> Projection:
  """Each target word linked into a source span takes its label; runs of one span form a span."""
  links = frozenset(links)
  by_tgt = _links_by_target(links)
  owner_of_src = {}
  for k, s in enumerate(spans):
    for i in range(s.start, s.end):
      owner_of_src[i] = k
  proj = Projection(spans=[])
  owner = [None] * tgt_len
  for j, srcs in by_tgt.items():
    if j >= tgt_len:
      raise ValueError(f"link to target word {j} but the target has {tgt_len} words")
    votes = collections.Counter(owner_of_src[i] for i in srcs if i in owner_of_src)
    if not votes:
      continue
    if len(votes) > 1:
      proj.word_conflicts += 1
    owner[j] = min(votes, key=lambda k: (-votes[k], k))
  out = []
  j = 0
  while j < tgt_len:
    k = owner[j]
    if k is None:
      j += 1
      continue
    start = j
    while j < tgt_len and owner[j] == k:
      j += 1
    out.append(Span(spans[k].label, start, j))
  got = set(o for o in owner if o is not None)
  linked = {i for i, _ in links}
  for k, s in enumerate(spans):
    if k not in got:
      has_links = any(i in linked for i in range(s.start, s.end))
      proj.dropped.append((s, "conflict" if has_links else "unaligned"))
  proj.spans = out
  return proj


def project_spans(spans: Sequence[Span], links: Iterable[tuple[int, int]], tgt_len: int, *,
                  strategy: str = "span", trim_foreign: bool = False) -> Projection:
  if strategy == "span":
    return span_to_span(spans, links, tgt_len, trim_foreign=trim_foreign)
  if strategy == "word":
    return word_to_word(spans, links, tgt_len)
  raise ValueError(f"unknown projection strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")


def head_target(i: int, by_src: Mapping[int, set[int]], by_tgt: Mapping[int, set[int]],
                tgt_tokens: Sequence[str]) -> int | None:
  """The one target word standing for source word i (see the module docstring), or None."""
  cands = by_src.get(i)
  if not cands:
    return None
  return min(cands, key=lambda j: (len(by_tgt[j] - {i}), -len(tgt_tokens[j]), j))


@dataclasses.dataclass
class SrlProjection:
  predicate: int | None
  roles: list[tuple[int, str]]
  dropped: list[tuple[int, str, str]]  # (source word, role, reason)


def project_srl(predicate: int, roles: Sequence[tuple[int, str]], links: Iterable[tuple[int, int]],
                tgt_tokens: Sequence[str]) -> SrlProjection:
  """Predicate and argument heads (source word index, role) onto target words."""
  links = frozenset(links)
  by_src, by_tgt = _links_by_source(links), _links_by_target(links)
  pred = head_target(predicate, by_src, by_tgt, tgt_tokens)
  if pred is None:
    return SrlProjection(None, [], [(i, r, "predicate_unaligned") for i, r in roles])
  taken = {pred}
  out, dropped = [], []
  for i, role in sorted(roles):
    j = head_target(i, by_src, by_tgt, tgt_tokens)
    if j is None:
      dropped.append((i, role, "unaligned"))
    elif j in taken:
      dropped.append((i, role, "collision"))
    else:
      taken.add(j)
      out.append((j, role))
  return SrlProjection(pred, sorted(out), dropped)


# ---------------------------------------------------------------------------------------------
# Records.


@dataclasses.dataclass
class SentenceReport:
  """What happened to one sentence: spans in/out and every drop with its reason."""

  index: int
  origin: str
  source_spans: int
  projected_spans: int
  dropped: dict[str, int]
  dropped_spans: list[dict]
  word_conflicts: int = 0
  trimmed: int = 0
  merged_touching: int = 0
  left_out: str | None = None  # why the record is not in the output (None: it is)

  def as_json(self) -> dict:
    return dataclasses.asdict(self)


def _span_json(s: Span, tokens: Sequence[str], reason: str) -> dict:
  return {"label": s.label, "start": s.start, "end": s.end, "text": " ".join(tokens[s.start:s.end]), "reason": reason}


def _o_value(values: Sequence[str], tags: Sequence[str], default: str) -> str:
  outside = collections.Counter(v for v, t in zip(values, tags) if t == "O")
  return outside.most_common(1)[0][0] if outside else default


def merge_touching(spans: Sequence[Span]) -> tuple[list[Span], int]:
  """Joins touching spans of one label (for formats that cannot separate them, e.g. ABSA T-X)."""
  out: list[Span] = []
  merged = 0
  for s in sorted(spans, key=lambda s: s.start):
    if out and out[-1].end == s.start and out[-1].label == s.label:
      out[-1] = Span(s.label, out[-1].start, s.end)
      merged += 1
    else:
      out.append(s)
  return out, merged


def project_tagged(sent: Sentence, tgt_tokens: Sequence[str], links, *, strategy: str = "span",
                   trim_foreign: bool = False, merge_touching_spans: bool = False,
                   index: int = 0) -> tuple[Sentence, SentenceReport]:
  """NER/ABSA: projects the spans of `sent` onto `tgt_tokens`, same tag scheme as the source.

  Per-word columns: a "category" column (ABSA) is projected with its span (the category of the
  span's first word; the value the source uses outside spans, e.g. NIL, elsewhere); no other
  column can be projected, so the target carries none (`meta["unprojected_columns"]` names
  them). merge_touching_spans: join touching spans of one label (counted in the report), for
  output formats that cannot tell them apart.
  """
  spans = tags_to_spans(sent.tags, sent.scheme)
  proj = project_spans(spans, links, len(tgt_tokens), strategy=strategy, trim_foreign=trim_foreign)
  merged = 0
  if merge_touching_spans:
    proj.spans, merged = merge_touching(proj.spans)
  tags = spans_to_tags(proj.spans, len(tgt_tokens), sent.scheme)
  extra = {}
  if "category" in sent.extra:
    cats = sent.extra["category"]
    cat_of = {}
    for s in spans:
      cat_of[s] = cats[s.start]
    src_of_tgt = _source_of_targets(spans, proj, links)
    outside = _o_value(cats, sent.tags, "NIL")
    col = [outside] * len(tgt_tokens)
    for t, s in src_of_tgt.items():
      for j in range(t.start, t.end):
        col[j] = cat_of[s]
    extra["category"] = tuple(col)
  meta = dict(sent.meta)
  dropped_cols = sorted(set(sent.extra) - set(extra))
  if dropped_cols:
    meta["unprojected_columns"] = dropped_cols
    meta.pop("tag_column", None)  # the tag is now the last of fewer columns
  out = Sentence(tokens=tuple(tgt_tokens), tags=tuple(tags), scheme=sent.scheme, extra=extra, meta=meta,
                 origin=sent.origin)
  report = SentenceReport(index=index, origin=sent.origin, source_spans=len(spans), projected_spans=len(proj.spans),
                          dropped=proj.dropped_counts(),
                          dropped_spans=[_span_json(s, sent.tokens, r) for s, r in proj.dropped],
                          word_conflicts=proj.word_conflicts, trimmed=proj.trimmed, merged_touching=merged)
  return out, report


def _source_of_targets(spans: Sequence[Span], proj: Projection, links) -> dict[Span, Span]:
  """For each target span, the source span it came from (by its links; labels agree)."""
  by_tgt = _links_by_target(links)
  out = {}
  for t in proj.spans:
    votes = collections.Counter()
    for j in range(t.start, t.end):
      for i in by_tgt.get(j, ()):
        for s in spans:
          if s.start <= i < s.end and s.label == t.label:
            votes[s] += 1
    if votes:
      out[t] = max(votes, key=lambda s: (votes[s], -s.start))
  return out


def project_pos(src_pos: Sequence[str], links: Iterable[tuple[int, int]], n: int) -> tuple[str, ...]:
  """UPOS of each of n target words from the source words linked to it (majority, ties leftmost)."""
  by_target = _links_by_target(links)
  out = []
  for j in range(n):
    src = sorted(by_target.get(j, ()))
    votes = collections.Counter(src_pos[i] for i in src if src_pos[i] != UNKNOWN_POS)
    out.append(max(votes, key=lambda t: (votes[t], -min(i for i in src if src_pos[i] == t)))
               if votes else UNKNOWN_POS)
  return tuple(out)


def project_srl_sentence(sent: Sentence, tgt_tokens: Sequence[str], links, *,
                         pos_tagger: Callable[[Sequence[str]], Sequence[str]] | str | None = None,
                         index: int = 0) -> tuple[Sentence | None, SentenceReport]:
  """SRL instance -> target instance (None when the predicate has no link)."""
  if sent.predicate is None:
    raise ValueError(f"{sent.origin}: SRL projection needs an instance with a predicate")
  roles = [(i, t) for i, t in enumerate(sent.tags) if t != "O" and i != sent.predicate]
  res = project_srl(sent.predicate, roles, links, tgt_tokens)
  n = len(tgt_tokens)
  dropped = collections.Counter(r for _, _, r in res.dropped)
  report = SentenceReport(index=index, origin=sent.origin, source_spans=len(roles), projected_spans=len(res.roles),
                          dropped=dict(dropped),
                          dropped_spans=[{"label": r, "start": i, "end": i + 1, "text": sent.tokens[i], "reason": why}
                                         for i, r, why in res.dropped],
                          left_out=None if res.predicate is not None else "predicate_unaligned")
  if res.predicate is None:
    return None, report
  tags = ["O"] * n
  for j, role in res.roles:
    tags[j] = role
  pred_tag = sent.tags[sent.predicate]
  if pred_tag != "O":  # some layouts mark the predicate itself (e.g. "V")
    tags[res.predicate] = pred_tag
  if pos_tagger == "project":
    if "pos" not in sent.extra:
      raise ValueError(f"{sent.origin}: pos_tagger='project' needs source POS tags")
    pos = project_pos(sent.extra["pos"], links, n)
  elif pos_tagger is not None:
    pos = tuple(pos_tagger(list(tgt_tokens)))
    if len(pos) != n:
      raise ValueError(f"POS tagger returned {len(pos)} tags for {n} tokens")
  else:
    pos = (UNKNOWN_POS,) * n
  meta = dict(sent.meta)
  dropped_cols = sorted(set(sent.extra) - {"pos"})
  if dropped_cols:
    meta["unprojected_columns"] = dropped_cols
  out = Sentence(tokens=tuple(tgt_tokens), tags=tuple(tags), scheme=sent.scheme, extra={"pos": pos},
                 predicate=res.predicate, sense=sent.sense, meta=meta, origin=sent.origin)
  return out, report
