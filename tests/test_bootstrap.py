"""Paired bootstrap intervals: exact zero for identical predictions, coverage of a known difference."""

from __future__ import annotations

import numpy as np
import pytest

from mtlws_jax.data.records import Sentence
from mtlws_jax.eval import bootstrap, metrics


def _synthetic(n: int, p_correct: float, rng: np.random.Generator) -> tuple[list[Sentence], list[list[str]]]:
  """n sentences with one gold span each; the prediction finds it with probability p_correct."""
  gold, pred = [], []
  for _ in range(n):
    tags = ["O", "S-LOC", "O"]
    gold.append(Sentence(tokens=("a", "b", "c"), tags=tuple(tags), scheme="bioes"))
    pred.append(tags if rng.random() < p_correct else ["O", "O", "O"])
  return gold, pred


def test_sentence_counts_sum_to_the_corpus_scores():
  rng = np.random.default_rng(0)
  gold, pred = _synthetic(50, 0.6, rng)
  pred[3] = ["B-PER", "E-PER", "O"]  # a false positive
  pred[4] = ["I-LOC", "O", "O"]       # ill-formed: read the conlleval way
  c = metrics.sentence_counts("absa", gold, pred)
  full = metrics.span_prf([s.tags for s in gold], pred)
  assert c.sum(0).tolist() == [full["tp"], full["n_gold"], full["n_pred"]]
  assert bootstrap.f1_percent(c.sum(0)) == pytest.approx(100 * full["f1"])


def test_srl_counts_and_sentence_groups():
  g = [Sentence(tokens=("x", "y", "z"), tags=("A0", "O", "A1"), scheme="oi", predicate=1, origin="s1"),
       Sentence(tokens=("x", "y", "z"), tags=("O", "A0", "O"), scheme="oi", predicate=2, origin="s1"),
       Sentence(tokens=("u", "v"), tags=("A1", "O"), scheme="oi", predicate=1, origin="s2")]
  p = [["A0", "O", "O"], ["O", "A0", "O"], ["A0", "O"]]
  c = metrics.sentence_counts("srl", g, p)
  full = metrics.srl_prf(g, p)
  assert c.sum(0).tolist() == [full["tp"], full["n_gold"], full["n_pred"]]
  grouped = bootstrap.group_rows(c[None], [s.origin for s in g])[0]
  assert grouped.tolist() == [(c[0] + c[1]).tolist(), c[2].tolist()]


def test_identical_predictions_give_exactly_zero():
  rng = np.random.default_rng(1)
  gold, pred = _synthetic(200, 0.5, rng)
  c = np.stack([metrics.sentence_counts("absa", gold, pred)] * 3)  # 3 seeds
  got = bootstrap.paired_difference({"es": (c, c.copy()), "fr": (c[:, :50], c[:, :50])})
  for k in ("es", "fr", "avg"):
    assert {x: got[k][x] for x in ("diff", "low", "high", "excludes_zero")} == {
        "diff": 0.0, "low": 0.0, "high": 0.0, "excludes_zero": False}
    assert got[k]["per_seed"] == [0.0, 0.0, 0.0] and got[k]["seeds_same_sign"] == 0


def test_interval_covers_a_known_difference():
  """Method A finds each span with probability 0.8, B with 0.6: F1 = 2p / (1 + p) (precision 1),
  so the true difference is 2(0.8)/1.8 - 2(0.6)/1.6 = 13.89 points. Over 40 independent test sets
  the 95% interval should cover it about 38 times and always exclude 0."""
  truth = 100 * (2 * 0.8 / 1.8 - 2 * 0.6 / 1.6)
  covered, widths = 0, []
  for rep in range(40):
    rng = np.random.default_rng(100 + rep)
    gold, _ = _synthetic(400, 0.0, rng)
    ca, cb = [], []
    for _ in range(2):  # two seeds
      ca.append(metrics.sentence_counts("absa", gold, _synthetic(400, 0.8, rng)[1]))
      cb.append(metrics.sentence_counts("absa", gold, _synthetic(400, 0.6, rng)[1]))
    got = bootstrap.paired_difference({"es": (np.stack(ca), np.stack(cb))}, n_resamples=500, seed=rep)["es"]
    assert got["low"] <= got["diff"] <= got["high"] and got["excludes_zero"]
    assert got["diff"] == pytest.approx(np.mean(got["per_seed"]))
    covered += got["low"] <= truth <= got["high"]
    widths.append(got["high"] - got["low"])
  assert 34 <= covered <= 40, covered
  assert 3 < np.mean(widths) < 15


def test_average_over_languages_and_reproducibility():
  rng = np.random.default_rng(2)
  per = {}
  for lang, n in (("es", 300), ("nl", 120)):
    gold, _ = _synthetic(n, 0.0, rng)
    a = metrics.sentence_counts("absa", gold, _synthetic(n, 0.7, rng)[1])[None]
    b = metrics.sentence_counts("absa", gold, _synthetic(n, 0.7, rng)[1])[None]
    per[lang] = (a, b)
  one = bootstrap.paired_difference(per, n_resamples=300, seed=5)
  assert one == bootstrap.paired_difference(per, n_resamples=300, seed=5)
  assert one["avg"]["diff"] == pytest.approx((one["es"]["diff"] + one["nl"]["diff"]) / 2)
  assert one["avg"]["low"] <= one["avg"]["diff"] <= one["avg"]["high"]
  with pytest.raises(ValueError, match="must be \\[seeds, sentences, 3\\]"):
    bootstrap.paired_difference({"es": (per["es"][0], per["nl"][1])})
