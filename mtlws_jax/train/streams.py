"""Training batches as a function of the step, drawn with common random numbers.

Runs of one seed are *paired*: whatever their method, they draw each training set in the same
order, so two runs that train on the same sets see the very same batches, and a run that pools
English gold with translated sets sees the English examples in the same relative order as a
run on English alone. ZERO-SHOT and MTL-WS (a warmed-up start, then zero-shot adaptation) then
differ only in where they start (tests/test_pairing.py).

How a pooled stream is drawn (`PairedStream`):
  - every set S has its own shuffle per pass p: permutation keyed (seed, crc(S), p), where S is
    "gold:en" or "translated:es" — the same in every run of the seed;
  - pass p of the pool takes pass p of every set and interleaves them: a random sequence of set
    labels (each set appearing as often as it has examples), keyed (seed, crc(sets), p); the
    k-th slot labelled S takes the k-th example of S's pass-p order. One set alone needs no
    interleaving: its pass is its own shuffle;
  - order "random" (default): the passes are laid end to end and cut into batches of
    batch_size (a batch may span two passes; no filler rows, every example used once per pass);
    order "bucketed": each pass is cut into length-sorted chunks of 50 batches whose batch order
    is shuffled (less padding), the last batch of a pass filled with label-less rows. Bucketing
    keeps the sets' draws but reorders examples within a chunk, so pooled runs no longer see the
    English part in ZERO-SHOT's exact order.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

from mtlws_jax.data import batching, encode

ORDERS = ("random", "bucketed")


def crc(*parts) -> int:
  """A stable 31-bit integer of strings and numbers (the name part of a random key)."""
  return zlib.crc32("/".join(map(str, parts)).encode()) & 0x7FFFFFFF


class BatchStream:
  """Batch i of an endless, reshuffled-per-pass stream of one feature list (the warmup's streams).

  Pass p is `batching.batches(features, shuffle=True, rng=default_rng([*key, p]))` (length
  bucketed, last batch filled); each pass is built once and cached.
  """

  def __init__(self, features: Sequence[encode.Feature], batch_size: int, key: Sequence[int], *,
               pad_multiple: int = 8, pack_length: int = 0):
    if not features:
      raise ValueError("no training features")
    self.features, self.batch_size, self.key = features, batch_size, tuple(int(k) for k in key)
    self.pad_multiple, self.pack_length = pad_multiple, pack_length
    self._pass, self._batches = -1, []
    self.batches_per_pass = len(self._build(0))

  def _build(self, p: int) -> list[dict[str, np.ndarray]]:
    if p != self._pass:
      rng = np.random.default_rng([*self.key, p])
      self._batches = list(batching.batches(self.features, self.batch_size, shuffle=True, rng=rng,
                                            pad_multiple=self.pad_multiple, fill_last=True,
                                            pack_length=self.pack_length))
      self._pass = p
    return self._batches

  def batch(self, i: int) -> dict[str, np.ndarray]:
    p, j = divmod(i, self.batches_per_pass)
    return self._build(p)[j]


class PairedStream:
  """Batch i of a run's training stream over named sets, drawn with common random numbers.

  sets: (name, features) pairs, e.g. [("gold:en", ...), ("translated:es", ...)]; the order of
  the pairs does not matter (they are sorted by name). pack_length > 0: each batch's features
  are packed (batching.pack) instead of padded; the draws are the same.
  """

  def __init__(self, sets: Sequence[tuple[str, Sequence[encode.Feature]]], batch_size: int, seed: int, *,
               pad_multiple: int = 8, order: str = "random", pack_length: int = 0):
    if order not in ORDERS:
      raise ValueError(f"unknown batch order {order!r}; expected one of {ORDERS}")
    sets = sorted(((n, list(f)) for n, f in sets if len(f)), key=lambda x: x[0])
    if not sets:
      raise ValueError("no training features")
    names = [n for n, _ in sets]
    if len(set(names)) != len(names):
      raise ValueError(f"training sets named twice: {names}")
    self.names, self.batch_size, self.seed = names, batch_size, int(seed)
    self.order, self.pad_multiple, self.pack_length = order, pad_multiple, pack_length
    self.features = [f for _, fs in sets for f in fs]  # pooled; set k's example j at offset[k] + j
    self._offsets = np.cumsum([0] + [len(fs) for _, fs in sets])[:-1]
    self._sizes = [len(fs) for _, fs in sets]
    self.size = len(self.features)
    self._mix_key = crc("mix", *names)
    self._cache: dict[int, np.ndarray] = {}
    self._bucketed: tuple[int, list] = (-1, [])
    if order == "bucketed":
      self.batches_per_pass = -(-self.size // batch_size)

  def pass_order(self, p: int) -> np.ndarray:
    """Indices into `features` of pass p, in the order they are drawn."""
    if p in self._cache:
      return self._cache[p]
    perms = [off + np.random.default_rng([self.seed, crc(name), p]).permutation(n)
             for name, off, n in zip(self.names, self._offsets, self._sizes)]
    if len(perms) == 1:
      out = perms[0]
    else:
      labels = np.repeat(np.arange(len(perms)), self._sizes)
      labels = labels[np.random.default_rng([self.seed, self._mix_key, p]).permutation(len(labels))]
      out = np.empty(self.size, np.int64)
      for k, perm in enumerate(perms):
        out[labels == k] = perm  # the k-th slot of set k takes its k-th drawn example
    if len(self._cache) > 2:
      self._cache.pop(min(self._cache))
    self._cache[p] = out
    return out

  def indices(self, i: int) -> list[int]:
    """Indices into `features` of batch i (order "random")."""
    start, stop = i * self.batch_size, (i + 1) * self.batch_size
    idx = []
    for p in range(start // self.size, (stop - 1) // self.size + 1):
      lo, hi = max(start - p * self.size, 0), min(stop - p * self.size, self.size)
      idx.extend(int(j) for j in self.pass_order(p)[lo:hi])
    return idx

  def batch(self, i: int) -> dict[str, np.ndarray]:
    if self.order == "bucketed":
      return self._bucketed_batch(i)
    return batching.collate([self.features[j] for j in self.indices(i)], pad_multiple=self.pad_multiple,
                            pack_length=self.pack_length)

  def _bucketed_batch(self, i: int) -> dict[str, np.ndarray]:
    p, j = divmod(i, self.batches_per_pass)
    if self._bucketed[0] != p:
      order = self.pass_order(p)
      feats = [self.features[k] for k in order]
      rng = np.random.default_rng([self.seed, self._mix_key, p, 1])
      self._bucketed = (p, _bucketed_batches(feats, self.batch_size, rng, self.pad_multiple, self.pack_length))
    return self._bucketed[1][j]


def _bucketed_batches(feats: Sequence[encode.Feature], batch_size: int, rng: np.random.Generator,
                      pad_multiple: int, pack_length: int = 0, chunk_batches: int = 50) -> list[dict[str, np.ndarray]]:
  """Length-sorted within chunks of `chunk_batches` batches (drawn order kept otherwise), then
  the batches shuffled; the last one filled with label-less rows."""
  lengths = np.asarray([len(f) for f in feats])
  chunk = batch_size * chunk_batches
  order = np.concatenate([np.arange(s, min(s + chunk, len(feats)))[
      np.argsort(lengths[s:s + chunk], kind="stable")] for s in range(0, len(feats), chunk)])
  groups = [order[k:k + batch_size] for k in range(0, len(order), batch_size)]
  groups = [groups[k] for k in rng.permutation(len(groups))]
  return [batching.collate([feats[k] for k in g], pad_multiple=pad_multiple, batch_size=batch_size,
                           pack_length=pack_length) for g in groups]
