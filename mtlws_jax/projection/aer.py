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
      [--wpt-sentences=trial.e] [--src=FILE --tgt=FILE]
"""

from __future__ import annotations

import json
import re
import sys
from typing import Sequence

from mtlws_jax.errors import InputError, main_guard, argument_parser

Gold = tuple[frozenset, frozenset]  # (sure, possible incl. sure)
GOLD_FORMATS = ("auto", "pharaoh", "wpt", "jsonl")


def _strip_id(text: str) -> str:
  head, tab, rest = text.partition("\t")
  return rest if tab else text


def _ids(lines: Sequence[str]) -> list[str] | None:
  """The `id<TAB>` prefixes of a file's lines, or None when no line has one."""
  got = [t.partition("\t")[0] if "\t" in t else None for t in lines]
  return None if all(g is None for g in got) else got


def pair_by_id(gold_ids, pred_ids, gold_path, pred_path) -> list[int] | None:
  """For each gold line, the index of its pred line: by id when both files carry ids (any
  order), else by position. Ids must be unique; a gold id without a prediction is an error."""
  if gold_ids is None or pred_ids is None:
    return None
  for path, ids in ((gold_path, gold_ids), (pred_path, pred_ids)):
    seen = {}
    for k, i in enumerate(ids, 1):
      if i is None:
        raise InputError("line without an id<TAB> prefix in a file whose other lines have one", path, k)
      if i in seen:
        raise InputError(f"id {i!r} appears twice (lines {seen[i]} and {k})", path, k)
      seen[i] = k
  where = {i: k for k, i in enumerate(pred_ids)}
  missing = [i for i in gold_ids if i not in where]
  if missing:
    raise InputError(f"no predicted alignment for gold id(s) {', '.join(missing[:5])}", pred_path)
  return [where[i] for i in gold_ids]


def parse_gold_line(text: str, path=None, line=None, one_indexed: bool = False) -> Gold:
  sure, possible = set(), set()
  off = 1 if one_indexed else 0
  for item in _strip_id(text).split():
    m = re.fullmatch(r"([0-9]+)([-p])([0-9]+)", item)
    if m is None:
      raise InputError(f"bad gold link {item!r} (expected i-j for sure or ipj for possible)", path, line)
    i, j = int(m.group(1)) - off, int(m.group(3)) - off
    if i < 0 or j < 0:
      raise InputError(f"gold link {item!r} has index 0 in a 1-indexed file", path, line)
    (sure if m.group(2) == "-" else possible).add((i, j))
  return frozenset(sure), frozenset(possible | sure)


def _lines(path, allow_blank: bool = False) -> list[str]:
  from mtlws_jax.data import textfile
  return textfile.read_lines(path, allow_blank=allow_blank)


def read_gold_pharaoh(path, one_indexed: bool = False) -> list[Gold]:
  return [parse_gold_line(t, path, k, one_indexed) for k, t in enumerate(_lines(path, True), 1)]


def read_wpt_snums(path) -> list[int]:
  """Sentence numbers of a WPT text file (`<s snum=N> tokens </s>` lines), in file order."""
  out = []
  for k, text in enumerate(_lines(path), 1):
    if not text.strip():
      continue
    m = re.match(r"\s*<s snum=([0-9]+)>", text)
    if m is None:
      raise InputError("expected a WPT sentence line '<s snum=N> tokens </s>'", path, k)
    out.append(int(m.group(1)))
  return out


def read_gold_wpt(path, snums: Sequence[int] | None = None) -> list[Gold]:
  """Gold of each sentence number in `snums` (the order of the predictions; a sentence with no
  line has no link), or, without it, of each number in the file in ascending order — then the
  numbers must run without gaps: a sentence with no line at all would silently pair every later
  prediction with the wrong sentence."""
  by_snum: dict[int, tuple[set, set]] = {}
  first_line: dict[int, int] = {}
  for k, text in enumerate(_lines(path), 1):
    fields = text.split()
    if not fields:
      continue
    if len(fields) not in (3, 4) or not all(re.fullmatch("[0-9]+", x) for x in fields[:3]) or (
        len(fields) == 4 and fields[3] not in ("S", "P")):
      raise InputError(f"bad WPT line {text.strip()!r} (expected 'snum src_pos tgt_pos [S|P]')", path, k)
    first_line.setdefault(int(fields[0]), k)
    snum, i, j = (int(x) for x in fields[:3])
    sure, possible = by_snum.setdefault(snum, (set(), set()))
    if i == 0 or j == 0:
      continue  # NULL links carry no pair
    possible.add((i - 1, j - 1))
    if len(fields) == 3 or fields[3] == "S":
      sure.add((i - 1, j - 1))
  if snums is not None:
    unknown = sorted(set(by_snum) - set(snums))
    if unknown:
      raise InputError(f"sentence number {unknown[0]} is not in the sentence file", path, first_line[unknown[0]])
    empty = (frozenset(), frozenset())
    return [(frozenset(by_snum[s][0]), frozenset(by_snum[s][1])) if s in by_snum else empty for s in snums]
  ordered = sorted(by_snum)
  for a, b in zip(ordered, ordered[1:]):
    if b != a + 1:
      raise InputError(f"sentence numbers jump from {a} to {b}: give the sentence file (--wpt-sentences="
                       "the '<s snum=N>' source text) so predictions pair with the right sentences",
                       path, first_line[b])
  return [(frozenset(by_snum[s][0]), frozenset(by_snum[s][1])) for s in ordered]


def read_gold_jsonl(path) -> list[Gold]:
  out = []
  for k, text in enumerate(_lines(path), 1):
    if not text.strip():
      continue
    try:
      d = json.loads(text)
    except ValueError as e:
      raise InputError(f"not valid JSON ({e.msg})", path, k) from None
    d = _check_record(d, path, k)
    sure, possible = frozenset(map(tuple, d["alignment"])), frozenset(map(tuple, d.get("possible", ())))
    ns, nt = len(d["src_words"]), len(d["tgt_words"])
    for i, j in sure | possible:
      if not (0 <= i < ns and 0 <= j < nt):
        raise InputError(f"gold link {i}-{j} out of range for {ns} x {nt} words", path, k)
    out.append((sure, possible | sure))
  return out


def _check_record(d, path, line) -> dict:
  """A JSON gold record: word lists of strings, links as pairs of non-negative integers."""
  if not isinstance(d, dict):
    raise InputError(f"expected a JSON object, got {type(d).__name__}", path, line)
  for key in ("src_words", "tgt_words", "alignment"):
    if key not in d:
      raise InputError(f"missing key {key!r}", path, line)
  for key in ("src_words", "tgt_words"):
    if not isinstance(d[key], list) or not all(isinstance(w, str) for w in d[key]):
      raise InputError(f"{key!r} must be a list of words (strings)", path, line)
  for key in ("alignment", "possible"):
    links = d.get(key, [])
    ok = isinstance(links, list) and all(
        isinstance(l, list) and len(l) == 2 and all(type(x) is int and x >= 0 for x in l) for l in links)
    if not ok:
      raise InputError(f"{key!r} must be a list of [i, j] pairs of non-negative integers", path, line)
  return d


def detect_format(path) -> str:
  if str(path).endswith((".jsonl", ".json")):
    return "jsonl"
  lines = [t for t in _lines(path, True)[:20] if t.strip()]
  if lines and lines[0].lstrip().startswith("{"):
    return "jsonl"
  if lines and re.fullmatch(r"[0-9]+ [0-9]+ [0-9]+( [SP])?", lines[0].strip()):
    return "wpt"  # from the first line, so a bad later line is reported as a WPT error at its line
  return "pharaoh"


def read_gold(path, fmt: str = "auto", one_indexed: bool = False, snums: Sequence[int] | None = None) -> list[Gold]:
  fmt = detect_format(path) if fmt == "auto" else fmt
  if fmt == "pharaoh":
    return read_gold_pharaoh(path, one_indexed)
  if fmt == "wpt":
    return read_gold_wpt(path, snums)
  if fmt == "jsonl":
    return read_gold_jsonl(path)
  raise ValueError(f"unknown gold format {fmt!r}; choose from {', '.join(GOLD_FORMATS)}")


def read_pred(path) -> list[frozenset]:
  from mtlws_jax.projection.align import parse_links
  return [parse_links(_strip_id(t), path, k) for k, t in enumerate(_lines(path, True), 1)]


def read_ids(path) -> list[str] | None:
  return _ids(_lines(path, True))


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


def jsonl_lengths(path) -> list[tuple[int, int]]:
  """(source, target) word counts of each record of a JSON-lines gold file."""
  return [(len(d["src_words"]), len(d["tgt_words"])) for d in
          (json.loads(t) for t in _lines(path) if t.strip())]


def check_pred_range(pred: Sequence[frozenset], lengths: Sequence[tuple[int, int]], path) -> None:
  for k, (links, (ns, nt)) in enumerate(zip(pred, lengths), 1):
    for i, j in sorted(links):
      if i >= ns or j >= nt:
        raise InputError(f"predicted link {i}-{j} out of range for {ns} x {nt} words", path, k)


def main(argv: Sequence[str] | None = None) -> int:
  p = argument_parser(prog="python -m mtlws_jax.projection.aer", description=__doc__.split("\n")[0])
  p.add_argument("--gold", required=True)
  p.add_argument("--pred", required=True, help="Pharaoh links, 0-indexed, one line per pair")
  p.add_argument("--gold-format", default="auto", choices=GOLD_FORMATS)
  p.add_argument("--one-indexed", action="store_true", help="pharaoh gold counts words from 1")
  p.add_argument("--wpt-sentences", help="wpt gold: the '<s snum=N>' sentence file the predictions follow")
  p.add_argument("--src", help="tokenized source sentences (checks predicted links are in range)")
  p.add_argument("--tgt", help="tokenized target sentences (with --src)")
  args = p.parse_args(argv)
  if bool(args.src) != bool(args.tgt):
    p.error("--src and --tgt go together")
  fmt = detect_format(args.gold) if args.gold_format == "auto" else args.gold_format
  if args.one_indexed and fmt != "pharaoh":
    p.error(f"--one-indexed is for pharaoh gold files; {fmt} files say their own indexing")
  if args.wpt_sentences and fmt != "wpt":
    p.error("--wpt-sentences is for wpt gold files")
  gold = read_gold(args.gold, fmt, args.one_indexed,
                   snums=read_wpt_snums(args.wpt_sentences) if args.wpt_sentences else None)
  pred = read_pred(args.pred)
  order = pair_by_id(read_ids(args.gold) if fmt == "pharaoh" else None, read_ids(args.pred), args.gold, args.pred)
  if order is not None:  # both files carry ids: pair lines by id, not by position
    pred = [pred[k] for k in order]
  if len(gold) != len(pred):
    raise InputError(f"{len(pred)} predicted lines for {len(gold)} gold sentence pairs", args.pred,
                     min(len(gold), len(pred)) + 1)
  if not gold or not any(sure for sure, _ in gold):
    raise InputError("the gold file has no sure link: the AER is undefined", args.gold)
  if args.src:
    from mtlws_jax.projection.align import read_tokenized
    src, tgt = read_tokenized(args.src), read_tokenized(args.tgt)
    if not len(src) == len(tgt) == len(gold):
      raise InputError(f"{len(src)} source and {len(tgt)} target sentences for {len(gold)} gold pairs",
                       args.src if len(src) != len(gold) else args.tgt)
    check_pred_range(pred, [(len(a), len(b)) for a, b in zip(src, tgt)], args.pred)
  elif fmt == "jsonl":
    check_pred_range(pred, jsonl_lengths(args.gold), args.pred)
  print(json.dumps(aer(gold, pred), indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
