"""Alignment error rate (Och & Ney 2003) against sure/possible gold links, and a CLI.

  precision = |A & P| / |A|,  recall = |A & S| / |S|,  AER = 1 - (|A & S| + |A & P|) / (|A| + |S|)

with A the predicted links, S the sure gold links and P the possible ones (S is a subset of P).
Counts are summed over the corpus before dividing (the usual corpus-level AER).

Gold formats (`--gold-format`, default auto-detected):
  pharaoh: one line per sentence pair, sure `i-j` and possible `ipj` links, optionally after
           an id and a tab (`0<TAB>0-0 1p2`); 0-indexed, or 1-indexed with --one-indexed.
  wpt:     WPT-2003 `snum src_pos tgt_pos [S|P]` lines, 1-indexed, a missing label is S and
           position 0 (NULL) is ignored; pair k is the k-th distinct snum in ascending order.
  jsonl:   `{"src_words": [...], "tgt_words": [...], "alignment": [[i, j], ...]}` (0-indexed,
           sure), optionally "possible": [[i, j], ...].
Predictions: a Pharaoh file (0-indexed `i-j`, optional `id<TAB>` prefix), one line per pair.

  python -m mtlws_jax.projection.aer --gold=FILE --pred=FILE [--gold-format=...] [--one-indexed]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Sequence

from mtlws_jax.errors import InputError, main_guard

Gold = tuple[frozenset, frozenset]  # (sure, possible incl. sure)
GOLD_FORMATS = ("auto", "pharaoh", "wpt", "jsonl")


def _strip_id(text: str) -> str:
  head, tab, rest = text.partition("\t")
  return rest if tab else text


def parse_gold_line(text: str, path=None, line=None, one_indexed: bool = False) -> Gold:
  sure, possible = set(), set()
  off = 1 if one_indexed else 0
  for item in _strip_id(text).split():
    m = re.fullmatch(r"(\d+)([-p])(\d+)", item)
    if m is None:
      raise InputError(f"bad gold link {item!r} (expected i-j for sure or ipj for possible)", path, line)
    i, j = int(m.group(1)) - off, int(m.group(3)) - off
    if i < 0 or j < 0:
      raise InputError(f"gold link {item!r} has index 0 in a 1-indexed file", path, line)
    (sure if m.group(2) == "-" else possible).add((i, j))
  return frozenset(sure), frozenset(possible | sure)


def read_gold_pharaoh(path, one_indexed: bool = False) -> list[Gold]:
  with open(path, encoding="utf-8") as f:
    return [parse_gold_line(t, path, k, one_indexed) for k, t in enumerate(f.read().splitlines(), 1)]


def read_gold_wpt(path) -> list[Gold]:
  by_snum: dict[int, tuple[set, set]] = {}
  with open(path, encoding="utf-8") as f:
    for k, text in enumerate(f, 1):
      fields = text.split()
      if not fields:
        continue
      if len(fields) not in (3, 4) or not all(x.isdigit() for x in fields[:3]) or (
          len(fields) == 4 and fields[3] not in ("S", "P")):
        raise InputError(f"bad WPT line {text.strip()!r} (expected 'snum src_pos tgt_pos [S|P]')", path, k)
      snum, i, j = (int(x) for x in fields[:3])
      sure, possible = by_snum.setdefault(snum, (set(), set()))
      if i == 0 or j == 0:
        continue  # NULL links carry no pair
      possible.add((i - 1, j - 1))
      if len(fields) == 3 or fields[3] == "S":
        sure.add((i - 1, j - 1))
  return [(frozenset(by_snum[s][0]), frozenset(by_snum[s][1])) for s in sorted(by_snum)]


def read_gold_jsonl(path) -> list[Gold]:
  out = []
  with open(path, encoding="utf-8") as f:
    for k, text in enumerate(f, 1):
      if not text.strip():
        continue
      try:
        d = json.loads(text)
        sure = frozenset((int(i), int(j)) for i, j in d["alignment"])
        possible = frozenset((int(i), int(j)) for i, j in d.get("possible", ()))
        ns, nt = len(d["src_words"]), len(d["tgt_words"])
      except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"bad JSON alignment record ({e})", path, k) from None
      for i, j in sure | possible:
        if not (0 <= i < ns and 0 <= j < nt):
          raise InputError(f"gold link {i}-{j} out of range for {ns} x {nt} words", path, k)
      out.append((sure, possible | sure))
  return out


def detect_format(path) -> str:
  if str(path).endswith((".jsonl", ".json")):
    return "jsonl"
  with open(path, encoding="utf-8") as f:
    lines = [t for t in (next(f, "") for _ in range(20)) if t.strip()]
  if lines and lines[0].lstrip().startswith("{"):
    return "jsonl"
  if lines and all(re.fullmatch(r"\d+ \d+ \d+( [SP])?", t.strip()) for t in lines):
    return "wpt"
  return "pharaoh"


def read_gold(path, fmt: str = "auto", one_indexed: bool = False) -> list[Gold]:
  fmt = detect_format(path) if fmt == "auto" else fmt
  if fmt == "pharaoh":
    return read_gold_pharaoh(path, one_indexed)
  if fmt == "wpt":
    return read_gold_wpt(path)
  if fmt == "jsonl":
    return read_gold_jsonl(path)
  raise ValueError(f"unknown gold format {fmt!r}; choose from {', '.join(GOLD_FORMATS)}")


def read_pred(path) -> list[frozenset]:
  from mtlws_jax.projection.align import parse_links
  with open(path, encoding="utf-8") as f:
    return [parse_links(_strip_id(t), path, k) for k, t in enumerate(f.read().splitlines(), 1)]


def aer(gold: Sequence[Gold], pred: Sequence[frozenset]) -> dict:
  """Corpus-level precision, recall and AER."""
  if len(gold) != len(pred):
    raise ValueError(f"{len(pred)} predicted alignments for {len(gold)} gold ones")
  a = s = a_s = a_p = 0
  for (sure, possible), links in zip(gold, pred):
    links = frozenset(links)
    a += len(links)
    s += len(sure)
    a_s += len(links & sure)
    a_p += len(links & possible)
  return {
      "precision": a_p / a if a else 0.0,
      "recall": a_s / s if s else 0.0,
      "aer": 1.0 - (a_s + a_p) / (a + s) if a + s else 0.0,
      "sentences": len(gold),
      "predicted_links": a,
      "sure_links": s,
  }


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m mtlws_jax.projection.aer", description=__doc__.split("\n")[0])
  p.add_argument("--gold", required=True)
  p.add_argument("--pred", required=True, help="Pharaoh links, 0-indexed, one line per pair")
  p.add_argument("--gold-format", default="auto", choices=GOLD_FORMATS)
  p.add_argument("--one-indexed", action="store_true", help="pharaoh gold counts words from 1")
  args = p.parse_args(argv)
  gold = read_gold(args.gold, args.gold_format, args.one_indexed)
  pred = read_pred(args.pred)
  if len(gold) != len(pred):
    raise InputError(f"{len(pred)} predicted lines for {len(gold)} gold sentence pairs", args.pred,
                     min(len(gold), len(pred)) + 1)
  print(json.dumps(aer(gold, pred), indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
