"""Span micro-F1 (NER, ABSA) and SRL triple F1.

Span scores: a predicted span is correct when its label, start and end all equal a gold span
of the same sentence (exact match). Counts are summed over the corpus (micro average), overall
and per label; precision, recall and F1 are 0 where their denominator is 0.

Ill-formed sequences (`I-PER` after `B-LOC`, a lone `E-X`, ...) are read the way conlleval
reads them (`data.schemes.tags_to_spans`), never dropped, and the number of tags that reading
had to repair is reported (`gold_repaired`, `pred_repaired`). This equals:
  * conlleval.pl on IOB1/IOB2 input, and the PyPI `conlleval` port (conlleval plus the
    S/E rules) on BIOES input, on any sequences, well-formed or not;
  * seqeval's strict mode (`mode="strict", scheme=IOBES`) on well-formed BIOES sequences.
seqeval's strict mode instead *discards* ill-formed chunks (a lone `I-PER` is no entity), so
on raw ill-formed predictions it scores lower than conlleval; `convert(tags, scheme, "bioes")`
first makes both agree. We follow conlleval because published CoNLL results are conlleval's.
The counting is done here (a set intersection per sentence) rather than through seqeval so the
conlleval reading is used and the raw counts are available; tests check it against both.
"""

from __future__ import annotations

import collections
from typing import Mapping, Sequence

from mtlws_jax.data import schemes, taskspec


def _prf(tp: int, n_gold: int, n_pred: int) -> dict:
  precision = tp / n_pred if n_pred else 0.0
  recall = tp / n_gold if n_gold else 0.0
  f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
  return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "n_gold": n_gold, "n_pred": n_pred}


def _scores(tp: Mapping[str, int], n_gold: Mapping[str, int], n_pred: Mapping[str, int]) -> dict:
  out = _prf(sum(tp.values()), sum(n_gold.values()), sum(n_pred.values()))
  labels = sorted(set(n_gold) | set(n_pred))
  out["per_label"] = {l: _prf(tp.get(l, 0), n_gold.get(l, 0), n_pred.get(l, 0)) for l in labels}
  return out


def span_prf(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str = "bioes") -> dict:
  """Exact-match span precision/recall/F1 of word-level tag sequences, overall and per label.

  Returns {"precision", "recall", "f1", "tp", "n_gold", "n_pred", "per_label": {label: {same
  keys but per_label}}, "gold_repaired", "pred_repaired", "sentences"}; the *_repaired entries
  count the ill-formed tags read the conlleval way (see the module docstring).
  """
  if len(gold) != len(pred):
    raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
  tp: collections.Counter = collections.Counter()
  n_gold: collections.Counter = collections.Counter()
  n_pred: collections.Counter = collections.Counter()
  repaired = {"gold": 0, "pred": 0}
  for i, (g, p) in enumerate(zip(gold, pred)):
    if len(g) != len(p):
      raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")
    g_spans = schemes.tags_to_spans(g, scheme)
    p_spans = schemes.tags_to_spans(p, scheme)
    for side, tags, spans in (("gold", g, g_spans), ("pred", p, p_spans)):
      canonical = schemes.spans_to_tags(spans, len(tags), scheme) if scheme != "ot" else tags
      repaired[side] += sum(1 for a, b in zip(tags, canonical) if a != b)
    n_gold.update(s.label for s in g_spans)
    n_pred.update(s.label for s in p_spans)
    if g_spans and p_spans:
      tp.update(s.label for s in set(g_spans).intersection(p_spans))
  out = _scores(tp, n_gold, n_pred)
  out["gold_repaired"] = repaired["gold"]
  out["pred_repaired"] = repaired["pred"]
  out["sentences"] = len(gold)
  return out


# ------------------------------------------------------------------------------------- SRL

# The predicate marker of English EWT files ("V" on the predicate itself): not an argument.
PREDICATE_MARKER = "V"


def _instance(item, reference_predicate: int | None = None) -> tuple[int, Sequence[str]]:
  """(predicate index, tags) from a Sentence, a (predicate, tags) pair, or bare tags."""
  if hasattr(item, "predicate") and hasattr(item, "tags"):
    predicate, tags = item.predicate, item.tags
  elif len(item) == 2 and isinstance(item[0], int) and not isinstance(item[0], bool):
    predicate, tags = item
  elif reference_predicate is not None and all(isinstance(t, str) for t in item):
    predicate, tags = reference_predicate, item  # predictions: tags only, the gold's predicate
  else:
    raise ValueError(f"expected a Sentence, a (predicate_index, tags) pair or a tag list, got {item!r:.80}")
  if predicate is None or not 0 <= predicate < len(tags):
    raise ValueError(f"predicate index {predicate!r} does not fit {len(tags)} words")
  return predicate, tags


def srl_arguments(predicate: int, tags: Sequence[str]) -> set[tuple[int, int, str]]:
  """The (predicate, argument head, role) triples of one instance ("OI" tags: role on the head).

  The predicate word counts only when it carries a role (UP marks some predicates as their own
  argument); EWT's "V" marker on it is not a role.
  """
  return {
      (predicate, j, t) for j, t in enumerate(tags)
      if t != "O" and not (j == predicate and t == PREDICATE_MARKER)
  }


def srl_prf(gold_instances: Sequence, pred_instances: Sequence) -> dict:
  """Labelled argument F1 over (predicate, argument head, role) triples, micro over instances.

  Each gold instance is a `Sentence` (its `predicate` and `tags`) or a `(predicate_index, tags)`
  pair; each predicted one the same, or just its tag list (the gold predicate is used). Gold and
  predicted instances are paired in order and must have the same predicate and length. Predicate
  senses are not scored. Returns the keys of `span_prf` (per_label by role) plus "instances".
  """
  if len(gold_instances) != len(pred_instances):
    raise ValueError(f"{len(gold_instances)} gold instances but {len(pred_instances)} predicted")
  tp: collections.Counter = collections.Counter()
  n_gold: collections.Counter = collections.Counter()
  n_pred: collections.Counter = collections.Counter()
  for i, (g_item, p_item) in enumerate(zip(gold_instances, pred_instances)):
    g_pred, g_tags = _instance(g_item)
    p_pred, p_tags = _instance(p_item, reference_predicate=g_pred)
    if g_pred != p_pred:
      raise ValueError(f"instance {i}: gold predicate at word {g_pred}, predicted instance at word {p_pred}")
    if len(g_tags) != len(p_tags):
      raise ValueError(f"instance {i}: {len(g_tags)} gold tags but {len(p_tags)} predicted")
    g_args = srl_arguments(g_pred, g_tags)
    p_args = srl_arguments(p_pred, p_tags)
    n_gold.update(a[2] for a in g_args)
    n_pred.update(a[2] for a in p_args)
    tp.update(a[2] for a in g_args & p_args)
  out = _scores(tp, n_gold, n_pred)
  out["instances"] = len(gold_instances)
  return out


# ------------------------------------------------------------------------- per-sentence counts


def sentence_counts(task: str, gold: Sequence, pred: Sequence[Sequence[str]]):
  """[n, 3] int array: (correct, gold, predicted) spans (SRL: triples) of each sentence or instance.

  Summed over rows they give `span_prf` / `srl_prf`'s tp, n_gold and n_pred (tested), so F1 of
  any resample of rows is 2 * correct / (gold + predicted): what the paired bootstrap resamples.
  gold: Sentence records (SRL needs their predicates); pred: tag lists in the same order.
  """
  import numpy as np
  if len(gold) != len(pred):
    raise ValueError(f"{len(gold)} gold sentences but {len(pred)} predicted")
  out = np.zeros((len(gold), 3), np.int64)
  spec = taskspec.get(task)
  scheme = spec.scheme
  for i, (g, p) in enumerate(zip(gold, pred)):
    g_tags = g.tags if hasattr(g, "tags") else g
    if len(g_tags) != len(p):
      raise ValueError(f"sentence {i}: {len(g_tags)} gold tags but {len(p)} predicted")
    if spec.predicates:
      g_set, p_set = srl_arguments(g.predicate, g_tags), srl_arguments(g.predicate, p)
    else:
      g_set, p_set = set(schemes.tags_to_spans(g_tags, scheme)), set(schemes.tags_to_spans(p, scheme))
    out[i] = (len(g_set & p_set), len(g_set), len(p_set))
  return out
