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


# ---------------------------------------------------------------------------------------------
# Training noise: the seed-level interval (seeds and sentences resampled together).


def _study(rng, n_seeds, n_sent, p_a, p_b, seed_sd, shared_u=None):
  """[seeds, sentences, 3] counts of methods A and B: one gold span per sentence, found by run r
  with probability p + its seed offset (training noise: every run has its own quality)."""
  ca, cb = [], []
  for _ in range(n_seeds):
    qa = np.clip(p_a + rng.normal(0, seed_sd), 0.01, 0.99)
    qb = np.clip(p_b + rng.normal(0, seed_sd), 0.01, 0.99)
    ua = rng.random(n_sent) if shared_u is None else shared_u
    ub = rng.random(n_sent) if shared_u is None else shared_u
    fa, fb = (ua < qa).astype(np.int64), (ub < qb).astype(np.int64)
    ca.append(np.stack([fa, np.ones(n_sent, np.int64), fa], axis=1))  # correct, gold, predicted
    cb.append(np.stack([fb, np.ones(n_sent, np.int64), fb], axis=1))
  return np.stack(ca), np.stack(cb)


def test_seed_level_identical_predictions_give_exactly_zero_by_resampling():
  rng = np.random.default_rng(3)
  a, _ = _study(rng, 3, 120, 0.6, 0.6, 0.05)
  got = bootstrap.seed_level({"es": (a, a.copy()), "fr": (a[:, :40], a[:, :40].copy())}, n_resamples=300)
  for k in ("es", "fr", "avg"):
    assert (got[k]["seed_low"], got[k]["seed_high"], got[k]["t_low"], got[k]["t_high"]) == (0.0, 0.0, 0.0, 0.0)
    assert got[k]["holds"] is False and got[k]["p_seeds"] == 1.0


def test_seed_noise_without_a_difference_is_not_called_an_effect():
  """200 simulated studies, 5 seeds, no real difference but runs that differ by seed (sd 8 points of
  quality): the sentence interval excludes 0 in about half the studies; the t interval over seeds
  covers 0 at about its 95% (binomial sd over 200 studies: 1.5 points), the seeds x sentences
  bootstrap a little less (5 seeds), and 'holds over seeds' (both exclude 0) is rare."""
  rng = np.random.default_rng(11)
  sentence_hits = t_cover = boot_cover = holds = 0
  studies = 200
  for i in range(studies):
    a, b = _study(rng, 5, 300, 0.6, 0.6, 0.08)
    per = {"es": (a, b)}
    sentence_hits += bootstrap.paired_difference(per, n_resamples=200, seed=i)["avg"]["excludes_zero"]
    got = bootstrap.seed_level(per, n_resamples=200, seed=i)["avg"]
    t_cover += got["t_low"] <= 0 <= got["t_high"]
    boot_cover += got["seed_low"] <= 0 <= got["seed_high"]
    holds += got["holds"]
  assert sentence_hits / studies > 0.4, sentence_hits
  assert 0.89 <= t_cover / studies <= 0.99, t_cover
  assert boot_cover / studies >= 0.8, boot_cover
  assert holds / studies <= 0.09, holds


def test_a_real_difference_with_small_seed_noise_holds_at_both_levels():
  rng = np.random.default_rng(12)
  a, b = _study(rng, 5, 400, 0.8, 0.6, 0.01)
  per = {"es": (a, b)}
  sent = bootstrap.paired_difference(per, n_resamples=300)["avg"]
  seeds = bootstrap.seed_level(per, n_resamples=300)["avg"]
  assert sent["excludes_zero"] and seeds["holds"] and seeds["seed_low"] > 5 and seeds["p_seeds"] < 0.01


def _unpaired_seed_level(per_language, n_resamples=300, seed=0):
  """A resampler that forgets the pairing: A's and B's sentences (and seeds) drawn separately."""
  rng = np.random.default_rng(seed)
  (a, b), = per_language.values()
  s, n = a.shape[:2]
  reps = []
  for _ in range(n_resamples):
    ia, ib = rng.integers(0, n, n), rng.integers(0, n, n)
    ka, kb = rng.integers(0, s, s), rng.integers(0, s, s)
    fa = bootstrap.f1_percent(a[ka][:, ia].sum(1)).mean()
    fb = bootstrap.f1_percent(b[kb][:, ib].sum(1)).mean()
    reps.append(fa - fb)
  lo, hi = np.quantile(reps, [0.025, 0.975])
  return {"avg": {"seed_low": lo, "seed_high": hi}}


def _finds_the_paired_gain(resampler):
  """A and B tag the same sentences of very different difficulty (common random numbers): A finds
  3 more spans in 100. Only a resampler that keeps each sentence's pair together sees it."""
  rng = np.random.default_rng(13)
  u = rng.random(600)
  a, b = _study(rng, 4, 600, 0.53, 0.5, 0.0, shared_u=u)
  got = resampler({"es": (a, b)}, n_resamples=300)["avg"]
  assert got["seed_low"] > 0, got


def test_pairing_matters():
  _finds_the_paired_gain(bootstrap.seed_level)
  with pytest.raises(AssertionError):
    _finds_the_paired_gain(_unpaired_seed_level)


def test_detectable_difference_and_seeds_needed():
  # 3 seeds whose differences spread by 5 points: (t_.975,2 + t_.8,2) * 5 / sqrt(3) = (4.303 + 1.061) * 2.887
  assert bootstrap.detectable_difference(5.0, 3) == pytest.approx(15.48, abs=0.02)
  assert bootstrap.detectable_difference(5.0, 10) < 5.0
  n = bootstrap.seeds_needed(5.0, 3.0)
  assert bootstrap.detectable_difference(5.0, n) <= 3.0 < bootstrap.detectable_difference(5.0, n - 1)
  assert bootstrap.seeds_needed(5.0, 0.0) is None and bootstrap.detectable_difference(1.0, 1) == float("inf")
