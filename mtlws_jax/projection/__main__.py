"""Builds a translated (pseudo-labelled) training set in the source's own file format.

  python -m mtlws_jax.projection --task={ner,absa,srl} --src=FILE [--src-format=conll|absa|upb]
      --tgt-tokens=FILE (--aligner=eflomal | --alignments=PHARAOH) [--strategy=span|word]
      --out=FILE [--report=FILE.jsonl] [--symmetrize=...] [--seed=0] [--split-punct] [--prefix-len=N]
      [--extra-src=FILE --extra-tgt=FILE] [--trim-foreign] [--keep=all|complete]
      [--pos-tagger=module:function]

The defaults are the paper's set-up (eflomal, grow-diag-final-and, Eq. 2). Measured on the
2000 human-projected ABSA pairs of Easy-Label-Projection (benchmarks/projection_quality.py),
`--split-punct --symmetrize=union --trim-foreign` with ~14k extra parallel pairs
(--extra-src/--extra-tgt) raises span F1 from 0.882 to 0.953.

--tgt-tokens holds one tokenized target sentence per line, line i translating source sentence
i (for SRL: the i-th sentence of the file, predicates or not). Prints a JSON summary (sentences
in/out, spans projected/dropped by reason) and writes one JSON line per sentence to --report
(default: OUT.report.jsonl) saying what was dropped and why.

--keep=complete leaves out sentences that lost any span (NER/ABSA) or argument (SRL), trading
data for cleaner labels; the default keeps every sentence (dropped spans become O words).
SRL output: target words carry only FORM, UPOS ("_" unless --pos-tagger gives a callable or
"project", which carries each aligned source word's UPOS over;
tokens -> UPOS tags) and the predicate/role columns; instances whose predicate has no link, or
lands on the word another predicate of the sentence already took, are left out (counted).
Sentences without predicates are not written (they hold no SRL instance).
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import sys
from typing import Sequence

from mtlws_jax.data import absa, conll, upb
from mtlws_jax.errors import InputError, main_guard
from mtlws_jax.projection import align as A
from mtlws_jax.projection import project as P

TASKS = ("ner", "absa", "srl")
FORMATS = ("conll", "absa", "upb")
DEFAULT_FORMAT = {"ner": "conll", "absa": "absa", "srl": "upb"}


def _load_callable(spec: str):
  if spec == "project":  # UPOS carried over the alignment from the source words
    return spec
  module, _, name = spec.partition(":")
  if not name:
    raise ValueError(f"--pos-tagger {spec!r}: expected module:function")
  return getattr(importlib.import_module(module), name)


def _source(task: str, fmt: str, path: str):
  """(records, token lists of the file's sentences, sentence index of each record)."""
  if fmt == "upb":
    layout, blocks = upb.read_sentences(path)
    # Every sentence of the file counts (line i of --tgt-tokens translates sentence i), also the
    # ones without predicates; meta["sentence"] is an instance's sentence index.
    sentences = [b for b in blocks if b.n_words]
    records = upb.instances(layout, blocks, path)
    return records, [tuple(b.columns[1]) for b in sentences], [s.meta["sentence"] for s in records]
  records = conll.read(path) if fmt == "conll" else absa.read(path)
  return records, [s.tokens for s in records], list(range(len(records)))


def _write(fmt: str, path: str, records) -> None:
  if fmt == "conll":
    conll.write(path, records)
  elif fmt == "absa":
    absa.write(path, records)
  else:
    upb.write(path, records)


def run(args) -> dict:
  fmt = args.src_format or DEFAULT_FORMAT[args.task]
  records, src_tokens, sent_of = _source(args.task, fmt, args.src)
  tgt_tokens = A.read_tokenized(args.tgt_tokens)
  A.check_pairs(src_tokens, tgt_tokens, args.src, args.tgt_tokens)
  if args.alignments:
    links = A.read_pharaoh(args.alignments, [len(s) for s in src_tokens], [len(t) for t in tgt_tokens])
  else:
    extra_src, extra_tgt = (), ()
    if args.extra_src:
      extra_src, extra_tgt = A.read_tokenized(args.extra_src), A.read_tokenized(args.extra_tgt)
      if len(extra_src) != len(extra_tgt):
        raise InputError(f"{len(extra_tgt)} extra target sentences for {len(extra_src)} extra source sentences",
                         args.extra_tgt, min(len(extra_src), len(extra_tgt)) + 1)
    config = A.EflomalConfig(seed=None if args.seed < 0 else args.seed, split_punct=args.split_punct,
                           prefix_len=args.prefix_len)
    links = A.align(src_tokens, tgt_tokens, symmetrization=args.symmetrize, extra_src=extra_src,
                    extra_tgt=extra_tgt, config=config)
  pos_tagger = _load_callable(args.pos_tagger) if args.pos_tagger else None

  out, reports = [], []
  taken_predicates: dict[int, set[int]] = collections.defaultdict(set)
  for k, (rec, si) in enumerate(zip(records, sent_of)):
    tgt = tgt_tokens[si]
    if args.task == "srl":
      new, rep = P.project_srl_sentence(rec, tgt, links[si], pos_tagger=pos_tagger, index=k)
      if new is not None:
        if new.predicate in taken_predicates[si]:
          rep.left_out = "predicate_collision"
          rep.dropped = {"predicate_collision": rep.source_spans} if rep.source_spans else {}
          new = None
        else:
          taken_predicates[si].add(new.predicate)
          layout = rec.meta.get("layout", "up1")
          new = new.replace(meta={"layout": layout, "sentence": si,
                                  "predicate_mark": rec.meta.get("predicate_mark", "_")})
    else:
      new, rep = P.project_tagged(rec, tgt, links[si], strategy=args.strategy, trim_foreign=args.trim_foreign,
                                  merge_touching_spans=(fmt == "absa"), index=k)
    if new is not None and args.keep == "complete" and rep.dropped:
      rep.left_out = "incomplete"
      new = None
    reports.append(rep)
    if new is not None:
      out.append(new)
  if not out:
    raise InputError("no sentence survived projection: nothing to write", args.src)
  _write(fmt, args.out, out)
  report_path = args.report or args.out + ".report.jsonl"
  with open(report_path, "w", encoding="utf-8") as f:
    for rep in reports:
      f.write(json.dumps(rep.as_json(), ensure_ascii=False) + "\n")
  dropped = collections.Counter()
  for rep in reports:
    dropped.update(rep.dropped)
  unit = "arguments" if args.task == "srl" else "spans"
  return {
      "task": args.task,
      "strategy": "head" if args.task == "srl" else args.strategy,
      "aligner": "pharaoh:" + args.alignments if args.alignments else f"eflomal+{args.symmetrize}",
      "sentences_in": len(src_tokens),
      ("instances_in" if args.task == "srl" else "records_in"): len(records),
      ("instances_out" if args.task == "srl" else "sentences_out"): len(out),
      "records_left_out": dict(sorted(collections.Counter(r.left_out for r in reports if r.left_out).items())),
      f"{unit}_in": sum(r.source_spans for r in reports),
      f"{unit}_projected": sum(r.projected_spans for r in reports if r.left_out is None),
      f"{unit}_dropped": dict(sorted(dropped.items())),
      "word_conflicts": sum(r.word_conflicts for r in reports),
      "trimmed": sum(r.trimmed for r in reports),
      "merged_touching": sum(r.merged_touching for r in reports),
      "out": args.out,
      "report": report_path,
  }


def main(argv: Sequence[str] | None = None) -> int:
  p = argparse.ArgumentParser(prog="python -m mtlws_jax.projection", description=__doc__.split("\n")[0])
  p.add_argument("--task", required=True, choices=TASKS)
  p.add_argument("--src", required=True, help="labelled source file")
  p.add_argument("--src-format", choices=FORMATS, help="default: conll for ner, absa for absa, upb for srl")
  p.add_argument("--tgt-tokens", required=True, help="tokenized translations, one sentence per line")
  how = p.add_mutually_exclusive_group(required=True)
  how.add_argument("--aligner", choices=("eflomal",))
  how.add_argument("--alignments", help="Pharaoh links (0-indexed source-target), one line per sentence")
  p.add_argument("--strategy", default="span", choices=P.STRATEGIES)
  p.add_argument("--out", required=True)
  p.add_argument("--report", help="per-sentence JSON lines (default: OUT.report.jsonl)")
  p.add_argument("--symmetrize", default="grow-diag-final-and", choices=A.SYMMETRIZATIONS)
  p.add_argument("--seed", type=int, default=0, help="eflomal seed (-1: unseeded)")
  p.add_argument("--split-punct", action="store_true", help="align attached punctuation as separate units")
  p.add_argument("--prefix-len", type=int, default=0, help="eflomal compares words on their first N characters")
  p.add_argument("--extra-src")
  p.add_argument("--extra-tgt")
  p.add_argument("--trim-foreign", action="store_true", help="cut Eq. 2 ranges at words linked outside the span")
  p.add_argument("--keep", default="all", choices=("all", "complete"))
  p.add_argument("--pos-tagger", help="SRL target UPOS: module:function mapping target tokens to UPOS "
                 "tags, or 'project' (each target word takes the UPOS of the source words linked to it); "
                 "default: '_' (unknown)")
  args = p.parse_args(argv)
  if bool(args.extra_src) != bool(args.extra_tgt):
    p.error("--extra-src and --extra-tgt go together")
  fmt = args.src_format or DEFAULT_FORMAT[args.task]
  if (args.task == "srl") != (fmt == "upb"):
    p.error("--task=srl goes with --src-format=upb (SRL instances), and only it")
  print(json.dumps(run(args), indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
