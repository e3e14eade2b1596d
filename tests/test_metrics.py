"""Span and SRL metrics, checked against seqeval (strict IOBES) and conlleval.

Oracles: seqeval (strict mode, IOBES), a line-by-line port of conlleval.pl (tests/conlleval_port.py,
IOB input) and the PyPI `conlleval` port (conlleval with the S/E rules, BIOES input). The real-file
tests score seeded corruptions of real gold tags (labels changed, boundaries shifted, spans dropped
and added, ill-formed tags sprinkled in) with all three.
"""

from __future__ import annotations

import pathlib
import random

import pytest
from conlleval import conlleval as pypi_conlleval
from seqeval.metrics import classification_report
from seqeval.scheme import IOBES

import conlleval_port
from mtlws_jax.data.records import Sentence
from mtlws_jax.data.schemes import Span, convert, spans_to_tags, tags_to_spans
from mtlws_jax.eval.metrics import span_prf, srl_prf

KEYS = ("precision", "recall", "f1", "tp", "n_gold", "n_pred")


# ------------------------------------------------------------------------------- oracles

def seqeval_strict(gold, pred) -> dict:
  """seqeval strict IOBES, in span_prf's layout (counts rebuilt from support and precision)."""
  rep = classification_report(gold, pred, mode="strict", scheme=IOBES, output_dict=True, zero_division=0)
  return {k: v for k, v in rep.items() if not k.endswith(" avg")}, rep.get("micro avg")


def assert_same_as_seqeval(ours: dict, gold, pred):
  per_label, micro = seqeval_strict(gold, pred)
  if ours["n_gold"] == 0 and ours["n_pred"] == 0:
    assert micro is None or micro["f1-score"] == 0
    return
  assert abs(ours["precision"] - micro["precision"]) <= 1e-9
  assert abs(ours["recall"] - micro["recall"]) <= 1e-9
  assert abs(ours["f1"] - micro["f1-score"]) <= 1e-9
  assert ours["n_gold"] == micro["support"]
  # seqeval lists the labels found in gold or prediction.
  assert set(per_label) == set(ours["per_label"])
  for label, s in per_label.items():
    o = ours["per_label"][label]
    assert abs(o["precision"] - s["precision"]) <= 1e-9, label
    assert abs(o["recall"] - s["recall"]) <= 1e-9, label
    assert abs(o["f1"] - s["f1-score"]) <= 1e-9, label
    assert o["n_gold"] == s["support"], label


def assert_same_as_conlleval(ours: dict, theirs: dict):
  """`theirs` in span_prf's layout (conlleval_port) or the PyPI package's summary."""
  if "overall" in theirs:  # PyPI conlleval: convert its layout
    def pick(d):
      st, ev = d["stats"], d["evals"]
      return {"tp": st["correct"], "n_gold": st["gold"], "n_pred": st["pred"],
              "precision": ev["prec"], "recall": ev["rec"], "f1": ev["f1"]}
    conv = pick(theirs["overall"]["chunks"])
    conv["per_label"] = {k: pick(v) for k, v in theirs["slots"]["chunks"].items()
                         if v["stats"]["gold"] or v["stats"]["pred"]}
    theirs = conv
  for k in ("tp", "n_gold", "n_pred"):
    assert ours[k] == theirs[k], k
  for k in ("precision", "recall", "f1"):
    if k == "precision" and ours["n_pred"] == 0:
      continue  # the PyPI port says 1.0 for no predictions; conlleval.pl and seqeval say 0
    assert abs(ours[k] - theirs[k]) <= 1e-9, k
  assert set(ours["per_label"]) == set(theirs["per_label"])
  for label, t in theirs["per_label"].items():
    o = ours["per_label"][label]
    for k in ("tp", "n_gold", "n_pred"):
      assert o[k] == t[k], (label, k)
    for k in ("precision", "recall", "f1"):
      if k == "precision" and o["n_pred"] == 0:
        continue
      assert abs(o[k] - t[k]) <= 1e-9, (label, k)


def pypi_conlleval_score(gold, pred) -> dict:
  return pypi_conlleval.evaluate(conlleval_port.to_lines(gold, pred))


# ------------------------------------------------------------------------------- unit tests

def test_span_prf_hand_example():
  gold = [["B-PER", "E-PER", "O", "S-LOC"], ["S-ORG", "O"]]
  pred = [["B-PER", "E-PER", "O", "S-PER"], ["O", "S-ORG"]]
  r = span_prf(gold, pred)
  assert (r["tp"], r["n_gold"], r["n_pred"]) == (1, 3, 3)
  assert r["precision"] == r["recall"] == r["f1"] == pytest.approx(1 / 3)
  assert r["per_label"]["PER"] == {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3),
                                   "tp": 1, "n_gold": 1, "n_pred": 2}
  assert r["per_label"]["LOC"]["n_pred"] == 0 and r["per_label"]["LOC"]["precision"] == 0.0
  assert r["gold_repaired"] == r["pred_repaired"] == 0
  assert r["sentences"] == 2


def test_span_prf_empty_and_perfect():
  r = span_prf([["O", "O"]], [["O", "O"]])
  assert (r["precision"], r["recall"], r["f1"], r["per_label"]) == (0.0, 0.0, 0.0, {})
  tags = [["B-PER", "I-PER", "O", "B-LOC"]]
  r = span_prf(tags, tags, scheme="iob2")
  assert (r["precision"], r["recall"], r["f1"], r["tp"]) == (1.0, 1.0, 1.0, 2)


def test_span_prf_reads_ill_formed_like_conlleval_and_counts():
  gold = [["B-PER", "I-PER", "O", "B-LOC"]]
  pred = [["I-PER", "I-PER", "O", "I-LOC"]]  # IOB2-ill-formed, but conlleval reads both spans
  r = span_prf(gold, pred, scheme="iob2")
  assert (r["tp"], r["n_pred"], r["pred_repaired"], r["gold_repaired"]) == (2, 2, 2, 0)
  assert_same_as_conlleval(r, conlleval_port.evaluate(gold, pred))
  # seqeval strict drops ill-formed chunks (the documented difference); after repair it agrees.
  gold_b = [convert(gold[0], "iob2", "bioes")[0]]
  pred_b = [["I-PER", "E-PER", "O", "I-LOC"]]
  _, micro = seqeval_strict(gold_b, pred_b)
  assert micro["precision"] == 0.0
  r = span_prf(gold_b, pred_b)
  assert (r["tp"], r["pred_repaired"]) == (2, 2)
  assert_same_as_seqeval(r, gold_b, [convert(pred_b[0], "bioes", "bioes")[0]])
  assert_same_as_conlleval(r, pypi_conlleval_score(gold_b, pred_b))


def test_span_prf_other_schemes():
  gold = [["T-POS", "T-POS", "O", "T-NEG"]]
  pred = [["T-POS", "T-POS", "T-NEG", "T-NEG"]]
  r = span_prf(gold, pred, scheme="ot")
  assert (r["tp"], r["n_gold"], r["n_pred"]) == (1, 2, 2)
  r1 = span_prf([["I-PER", "B-PER"]], [["I-PER", "I-PER"]], scheme="iob1")
  assert (r1["tp"], r1["n_gold"], r1["n_pred"]) == (0, 2, 1)


def test_span_prf_rejects_mismatch():
  with pytest.raises(ValueError, match="sentences"):
    span_prf([["O"]], [])
  with pytest.raises(ValueError, match="sentence 0"):
    span_prf([["O"]], [["O", "O"]])
  with pytest.raises(ValueError):
    span_prf([["B-PER"]], [["T-PER"]], scheme="bioes")


LABELS = ("PER", "LOC", "ORG")


def corrupt(gold_tags, scheme, labels, rng: random.Random, noise=0.04):
  """A prediction made from gold: labels changed, boundaries moved, spans dropped/added, then
  single tags replaced by random (often ill-formed) ones of the scheme."""
  n = len(gold_tags)
  spans = []
  for s in tags_to_spans(gold_tags, scheme):
    u = rng.random()
    if u < 0.1:
      continue  # dropped
    label, start, end = s
    if u < 0.2:
      label = rng.choice(labels)
    elif u < 0.3:
      start = max(0, start + rng.choice((-1, 1)))
    elif u < 0.4:
      end = min(n, end + rng.choice((-1, 1)))
    if start < end:
      spans.append(Span(label, start, end))
  if n and rng.random() < 0.2:
    start = rng.randrange(n)
    spans.append(Span(rng.choice(labels), start, min(n, start + rng.randint(1, 3))))
  kept, last_end = [], 0
  for s in sorted(spans, key=lambda s: s.start):  # drop overlaps (and same-label touching in ot)
    if s.start >= last_end and not (scheme == "ot" and kept and kept[-1].end == s.start and kept[-1].label == s.label):
      kept.append(s)
      last_end = s.end
  tags = spans_to_tags(kept, n, scheme)
  prefixes = {"iob1": "BI", "iob2": "BI", "bioes": "BIES", "ot": "T"}[scheme]
  for i in range(n):
    if rng.random() < noise:
      tags[i] = "O" if rng.random() < 0.2 else f"{rng.choice(prefixes)}-{rng.choice(labels)}"
  return tags


def random_gold(rng, scheme):
  n = rng.randint(0, 14)
  spans, i = [], 0
  while i < n:
    if rng.random() < 0.5:
      i += 1
      continue
    end = min(n, i + rng.randint(1, 3))
    spans.append(Span(rng.choice(LABELS), i, end))
    i = end + (scheme == "ot")
  return spans_to_tags(spans, n, scheme)


@pytest.mark.parametrize("scheme", ["iob1", "iob2", "bioes"])
def test_random_corruptions_agree_with_oracles(scheme):
  rng = random.Random(7)
  gold = [random_gold(rng, scheme) for _ in range(400)]
  pred = [corrupt(g, scheme, LABELS, rng, noise=0.15) for g in gold]
  ours = span_prf(gold, pred, scheme=scheme)
  assert ours["pred_repaired"] > 50  # ill-formed tags were really scored
  assert_same_as_conlleval(ours, pypi_conlleval_score(gold, pred))
  assert_same_as_conlleval(span_prf(pred, gold, scheme=scheme), pypi_conlleval_score(pred, gold))
  if scheme != "bioes":
    assert_same_as_conlleval(ours, conlleval_port.evaluate(gold, pred))
    assert_same_as_conlleval(span_prf(pred, gold, scheme=scheme), conlleval_port.evaluate(pred, gold))
  to_bioes = lambda seqs: [convert(t, scheme, "bioes")[0] for t in seqs]
  assert_same_as_seqeval(ours, to_bioes(gold), to_bioes(pred))


def test_conlleval_port_matches_known_output():
  # A worked example (counts checked by hand against conlleval.pl's rules):
  # gold chunks: PER[0,2) LOC[3,4) ORG[5,6); guessed: PER[0,2) PER[3,4) ORG[5,6)+I-ORG[6,7) read as one.
  lines = ["a B-PER B-PER", "b I-PER I-PER", "c O O", "d B-LOC B-PER", "e O O", "f B-ORG B-ORG",
           "g O I-ORG", ""]
  r = conlleval_port.evaluate_lines(lines)
  assert (r["tp"], r["n_gold"], r["n_pred"], r["tokens"], r["correct_tags"]) == (1, 3, 3, 7, 5)


# ------------------------------------------------------------------------------- real files

def read_tag_column(path: pathlib.Path, column: int = 1) -> list[list[str]]:
  """Tag sequences of a whitespace-separated column file (blank line between sentences)."""
  sentences, cur = [], []
  for line in path.read_text(encoding="utf-8").splitlines():
    fields = line.split()
    if not fields:
      if cur:
        sentences.append(cur)
      cur = []
    elif fields[0] != "-DOCSTART-":
      cur.append(fields[column])
  if cur:
    sentences.append(cur)
  return sentences


def check_real(gold: list[list[str]], scheme: str, labels, seed: int):
  """Corrupt real gold tags and score with span_prf, conlleval and seqeval."""
  rng = random.Random(seed)
  pred = [corrupt(g, scheme, labels, rng) for g in gold]
  ours = span_prf(gold, pred, scheme=scheme)
  assert ours["pred_repaired"] > 100 and ours["gold_repaired"] == 0
  assert 0.3 < ours["f1"] < 0.95  # the corruption really changed the scores
  if scheme in ("iob1", "iob2"):
    assert_same_as_conlleval(ours, conlleval_port.evaluate(gold, pred))
    assert_same_as_conlleval(span_prf(pred, gold, scheme=scheme), conlleval_port.evaluate(pred, gold))
  assert_same_as_conlleval(ours, pypi_conlleval_score(gold, pred))
  gold_b = [convert(t, scheme, "bioes")[0] for t in gold]
  pred_b = [convert(t, scheme, "bioes")[0] for t in pred]
  assert_same_as_seqeval(ours, gold_b, pred_b)
  return ours


@pytest.mark.realdata
@pytest.mark.parametrize("rel,n_sent,n_spans", [
    ("ner/Easy-Label-Projection/original/en/en.conll.dev.tsv", 3250, 5942),
    ("ner/Easy-Label-Projection/original/es/es.conll.test.tsv", 1517, 3559),
])
def test_real_ner_corruptions(data_dir, rel, n_sent, n_spans):
  gold = read_tag_column(data_dir / rel)
  assert len(gold) == n_sent
  assert sum(len(tags_to_spans(t, "iob2")) for t in gold) == n_spans
  labels = ("PER", "LOC", "ORG", "MISC")
  check_real(gold, "iob2", labels, seed=11)
  # The same in BIOES: gold converted, ill-formed BIOES predictions (lone E-, I- after S-, ...).
  gold_b = [convert(t, "iob2", "bioes")[0] for t in gold]
  check_real(gold_b, "bioes", labels, seed=12)


@pytest.mark.realdata
@pytest.mark.parametrize("lang,n_sent,n_spans", [("es", 881, 713), ("en", 676, 612)])
def test_real_absa_corruptions(data_dir, lang, n_sent, n_spans):
  gold_ot = read_tag_column(data_dir / f"absa/XABSA/gold-{lang}-test.txt")
  assert len(gold_ot) == n_sent
  assert sum(len(tags_to_spans(t, "ot")) for t in gold_ot) == n_spans
  gold = [convert(t, "ot", "bioes") for t in gold_ot]
  assert all(n == 0 for _, n in gold)
  check_real([t for t, _ in gold], "bioes", ("POS", "NEG", "NEU"), seed=13)


# ------------------------------------------------------------------------------- SRL

def test_srl_prf_hand_cases():
  # "He felt the pain": predicate "felt" (1), A0 on He, A1 on pain (head).
  gold = [(1, ["A0", "O", "O", "A1"]), (3, ["O", "O", "A1", "O"])]
  pred = [(1, ["A0", "O", "A1", "O"]), (3, ["O", "O", "A1", "O"])]
  r = srl_prf(gold, pred)
  assert (r["tp"], r["n_gold"], r["n_pred"], r["instances"]) == (2, 3, 3, 2)
  assert r["f1"] == pytest.approx(2 / 3)
  assert r["per_label"]["A1"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "n_gold": 2, "n_pred": 2}
  assert r["per_label"]["A0"]["f1"] == 1.0
  # Same role, same word, but of another predicate: different triple.
  r = srl_prf([(1, ["A0", "O", "O"])], [(1, ["O", "O", "A0"])])
  assert r["tp"] == 0 and r["n_pred"] == 1


def test_srl_prf_predicate_word():
  # EWT's "V" marker on the predicate is not an argument; a role on the predicate itself is.
  assert srl_prf([(1, ["A0", "V", "O"])], [(1, ["A0", "O", "O"])])["f1"] == 1.0
  r = srl_prf([(1, ["A0", "A1", "O"])], [(1, ["A0", "O", "O"])])
  assert (r["tp"], r["n_gold"], r["n_pred"]) == (1, 2, 1)
  r = srl_prf([(1, ["O", "O", "O"])], [(1, ["O", "O", "V"])])  # "V" elsewhere is a (wrong) role
  assert r["n_pred"] == 1 and r["precision"] == 0.0


def test_srl_prf_accepts_sentences_and_bare_tags():
  toks = ("He", "felt", "pain")
  gold = [Sentence(toks, ("A0", "O", "A1"), scheme="oi", predicate=1, sense="feel.01"),
          Sentence(toks, ("O", "O", "O"), scheme="oi", predicate=2)]
  pred = [["A0", "O", "AM-TMP"], (2, ["O", "O", "O"])]
  r = srl_prf(gold, pred)
  assert (r["tp"], r["n_gold"], r["n_pred"]) == (1, 2, 2)
  assert set(r["per_label"]) == {"A0", "A1", "AM-TMP"}


def test_srl_prf_rejects_mismatch():
  with pytest.raises(ValueError, match="instances"):
    srl_prf([(0, ["O"])], [])
  with pytest.raises(ValueError, match="predicate"):
    srl_prf([(0, ["O", "O"])], [(1, ["O", "O"])])
  with pytest.raises(ValueError, match="tags"):
    srl_prf([(0, ["O", "O"])], [(0, ["O"])])
  with pytest.raises(ValueError, match="does not fit"):
    srl_prf([(5, ["O", "O"])], [(5, ["O", "O"])])
