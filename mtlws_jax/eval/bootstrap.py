"""Paired bootstrap confidence intervals for F1 differences between two methods.

Question: is method A ahead of method B (ZERO-SHOT) on this test set, beyond what another draw
of test sentences could change? Both methods were run with the same seeds and paired random
numbers; for each seed both predicted every test sentence. One bootstrap replicate resamples the
test sentences of each language with replacement (scipy.stats.bootstrap, languages resampled
independently), recomputes every run's micro F1 from the resampled per-sentence span counts
(F1 = 2 * correct / (gold + predicted), exactly the corpus F1 of the resample), takes the
difference A - B per seed on the *same* resampled sentences, and averages it over seeds (and,
for "avg", over languages). The 95% percentile interval of those replicates is reported beside
the observed difference. It measures test-set sampling noise of the seed-averaged difference;
the spread over seeds is reported separately (mean ± std, and the difference seed by seed: two
runs whose starts differ by even 1e-8 of the parameters' norm diverge over hundreds of noisy
Adam steps, so a sentence-level interval alone can make training noise look like an effect).

Training noise (`seed_level`): the runs of another set of seeds would differ by more than another
draw of test sentences would (the study's placebo row, a warmup that moves the parameters by
1e-8 of their norm, differs from ZERO-SHOT by -5.0 / +5.4 / +0.0 points by seed). Seeds and test
sentences are crossed (every seed's runs tag every sentence), so one replicate resamples both
independently: S seeds drawn with replacement, and per language N sentences drawn with
replacement that every drawn seed is scored on (a nested draw, new sentences per seed, would
average the sentence noise over the seeds although all seeds saw the same sentences). Beside that
interval, the Student-t interval over the per-seed differences (S - 1 degrees of freedom; with 3
seeds its 4.30 critical value is the honest price of 3 draws, which a bootstrap over 3 seeds
hides) and that paired t-test's p. A difference *holds over seeds* when both intervals exclude 0
on the same side; only that is bold in the report.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

N_RESAMPLES = 2000
CONFIDENCE = 0.95


def f1_percent(counts: np.ndarray) -> np.ndarray:
  """F1 (%) from [..., 3] (correct, gold, predicted) counts; 0 where nothing was gold or predicted."""
  counts = np.asarray(counts, np.float64)
  denom = counts[..., 1] + counts[..., 2]
  return np.where(denom > 0, 200.0 * counts[..., 0] / np.maximum(denom, 1.0), 0.0)


def group_rows(counts: np.ndarray, groups: Sequence | None) -> np.ndarray:
  """Counts summed per group (SRL: the instances of one sentence are resampled together)."""
  if groups is None:
    return counts
  keys = {g: i for i, g in enumerate(dict.fromkeys(groups))}
  idx = np.asarray([keys[g] for g in groups])
  out = np.zeros(counts.shape[:-2] + (len(keys), counts.shape[-1]), counts.dtype)
  np.add.at(out, (..., idx, slice(None)), counts)
  return out


def paired_difference(per_language: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                      n_resamples: int = N_RESAMPLES, confidence: float = CONFIDENCE,
                      seed: int = 0) -> dict[str, dict[str, float]]:
  """{lang or "avg": {"diff", "low", "high", "excludes_zero", "per_seed", "seeds_same_sign"}} of
  F1(A) - F1(B) in points. per_seed: the difference of each seed (the interval is over test
  sentences: it does not cover training noise, which the spread over seeds shows).

  per_language: lang -> (counts_a, counts_b), each [seeds, sentences, 3] with the same seeds and
  sentences (row i of both is the same test sentence). The same `seed` gives the same intervals.
  """
  import scipy.stats
  langs = list(per_language)
  if not langs:
    raise ValueError("no languages to compare")
  a = [np.asarray(per_language[l][0], np.int64) for l in langs]
  b = [np.asarray(per_language[l][1], np.int64) for l in langs]
  for l, x, y in zip(langs, a, b):
    if x.shape != y.shape or x.ndim != 3 or x.shape[-1] != 3:
      raise ValueError(f"{l}: counts of both methods must be [seeds, sentences, 3], got {x.shape} and {y.shape}")
    if x.shape[1] == 0:
      raise ValueError(f"{l}: no test sentences")

  def diffs(*idx):
    """[len(langs) + 1] differences (last: the average) for index arrays, one per language."""
    out = []
    for x, y, i in zip(a, b, idx):
      fa = f1_percent(x[:, i, :].sum(axis=-2))  # [seeds, ...batch]
      fb = f1_percent(y[:, i, :].sum(axis=-2))
      out.append((fa - fb).mean(axis=0))
    out.append(np.mean(out, axis=0))
    return np.stack(out)

  def statistic(*idx, axis=-1):
    del axis  # index arrays arrive as [batch, n] (vectorized); the sums run over the last axis
    return diffs(*[np.asarray(i, np.int64) for i in idx])

  observed = diffs(*[np.arange(x.shape[1]) for x in a])
  # the same difference seed by seed (training noise: the interval above does not cover it)
  per_seed = []
  for k in range(a[0].shape[0]):
    d = [float(f1_percent(x[k].sum(0)) - f1_percent(y[k].sum(0))) for x, y in zip(a, b)]
    per_seed.append(d + [float(np.mean(d))])
  data = tuple(np.arange(x.shape[1]) for x in a)
  if all(np.array_equal(x, y) for x, y in zip(a, b)):  # identical predictions: exactly no difference
    low = high = np.zeros(len(langs) + 1)
  else:
    got = scipy.stats.bootstrap(data, statistic, n_resamples=n_resamples, vectorized=True, paired=False,
                                confidence_level=confidence, method="percentile", batch=200,
                                rng=np.random.default_rng(seed))
    low, high = np.asarray(got.confidence_interval.low), np.asarray(got.confidence_interval.high)
  out = {}
  for k, name in enumerate([*langs, "avg"]):
    lo, hi = float(low[k]), float(high[k])
    seeds = [row[k] for row in per_seed]
    out[name] = {"diff": float(observed[k]), "low": lo, "high": hi, "excludes_zero": bool(lo > 0 or hi < 0),
                 "per_seed": seeds, "seeds_same_sign": int(max(sum(d > 0 for d in seeds), sum(d < 0 for d in seeds)))}
  return out


def seed_level(per_language: Mapping[str, tuple[np.ndarray, np.ndarray]], *, n_resamples: int = N_RESAMPLES,
               confidence: float = CONFIDENCE, seed: int = 0, batch: int = 250) -> dict[str, dict]:
  """{lang or "avg": {"diff", "seed_low", "seed_high", "t_low", "t_high", "p_seeds", "seed_std",
  "holds"}}: F1(A) - F1(B) with the training noise of the seeds included (module doc).

  per_language as for `paired_difference` ([seeds, sentences, 3] counts, rows paired). The
  crossed bootstrap resamples seeds and sentences independently; t_* and p_seeds are None with
  one seed. With identical predictions every replicate is exactly 0: the interval is [0, 0].
  """
  import scipy.stats
  langs = list(per_language)
  if not langs:
    raise ValueError("no languages to compare")
  a = [np.asarray(per_language[l][0], np.float64) for l in langs]
  b = [np.asarray(per_language[l][1], np.float64) for l in langs]
  n_seeds = a[0].shape[0]
  for l, x, y in zip(langs, a, b):
    if x.shape != y.shape or x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] != n_seeds:
      raise ValueError(f"{l}: counts of both methods must be [seeds, sentences, 3] with the same seeds, got "
                       f"{x.shape} and {y.shape}")
    if x.shape[1] == 0:
      raise ValueError(f"{l}: no test sentences")
  rng = np.random.default_rng(seed)
  reps = []
  for start in range(0, n_resamples, batch):
    r = min(batch, n_resamples - start)
    seed_w = rng.multinomial(n_seeds, np.full(n_seeds, 1.0 / n_seeds), size=r)  # [r, S] times drawn
    per_lang = []
    for x, y in zip(a, b):
      n = x.shape[1]
      sent_w = rng.multinomial(n, np.full(n, 1.0 / n), size=r).astype(np.float64)  # [r, N]
      d = f1_percent(np.einsum("rn,snc->rsc", sent_w, x)) - f1_percent(np.einsum("rn,snc->rsc", sent_w, y))
      per_lang.append((seed_w * d).sum(axis=1) / n_seeds)  # mean over the drawn seeds [r]
    per_lang.append(np.mean(per_lang, axis=0))
    reps.append(np.stack(per_lang, axis=1))
  reps = np.concatenate(reps)  # [n_resamples, langs + 1]
  alpha = (1 - confidence) / 2
  low, high = np.quantile(reps, alpha, axis=0), np.quantile(reps, 1 - alpha, axis=0)
  per_seed = np.asarray([[f1_percent(x[k].sum(0)) - f1_percent(y[k].sum(0)) for x, y in zip(a, b)]
                         for k in range(n_seeds)])  # [S, langs]
  per_seed = np.concatenate([per_seed, per_seed.mean(axis=1, keepdims=True)], axis=1)
  out = {}
  for k, name in enumerate([*langs, "avg"]):
    d = per_seed[:, k]
    mean = float(d.mean())
    t_low = t_high = p = None
    sd = float(d.std(ddof=1)) if n_seeds > 1 else None
    if n_seeds > 1:
      half = float(scipy.stats.t.ppf(1 - alpha, n_seeds - 1)) * sd / np.sqrt(n_seeds)
      t_low, t_high = mean - half, mean + half
      p = float(scipy.stats.ttest_1samp(d, 0.0).pvalue) if sd > 0 else (1.0 if mean == 0 else 0.0)
    lo, hi = float(low[k]), float(high[k])
    holds = t_low is not None and ((lo > 0 and t_low > 0) or (hi < 0 and t_high < 0))
    out[name] = {"diff": mean, "seed_low": lo, "seed_high": hi, "t_low": t_low, "t_high": t_high,
                 "p_seeds": p, "seed_std": sd, "holds": bool(holds)}
  return out


def detectable_difference(seed_std: float, n_seeds: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
  """The smallest difference a paired t-test over `n_seeds` seeds finds with `power`, for seeds
  whose differences spread by `seed_std` points: below it, n_seeds cannot tell a method apart."""
  import scipy.stats
  if n_seeds < 2:
    return float("inf")
  df = n_seeds - 1
  return float((scipy.stats.t.ppf(1 - alpha / 2, df) + scipy.stats.t.ppf(power, df)) * seed_std / np.sqrt(n_seeds))


def seeds_needed(seed_std: float, difference: float, *, alpha: float = 0.05, power: float = 0.8,
                 most: int = 1000) -> int | None:
  """Seeds for a paired t-test to find `difference` with `power` (None: more than `most`)."""
  if difference == 0:
    return None
  for n in range(2, most + 1):
    if detectable_difference(seed_std, n, alpha=alpha, power=power) <= abs(difference):
      return n
  return None
