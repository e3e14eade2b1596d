"""Builds a translated (pseudo-labelled) training set in the source's own file format.

  python -m mtlws_jax.projection --task={ner,absa,srl} --src=FILE [--src-format=conll|absa|upb]
      --tgt-tokens=FILE (--aligner=eflomal | --alignments=PHARAOH) [--strategy=span|word]
      --out=FILE [--report=FILE.jsonl] [--recipe=best|paper] [--symmetrize=...] [--[no-]split-punct]
      [--[no-]trim-foreign] [--seed=0] [--prefix-len=N] [--extra-src=FILE --extra-tgt=FILE] [--keep=all|complete]
      [--pos-tagger=module:function]

The default recipe ("best": eflomal, punctuation split off, union symmetrization, Eq. 2 with
foreign links trimmed) is the setting that projected human translations best; `--recipe=paper`
gives the paper's (grow-diag-final-and, punctuation attached, no trimming). Measured on the 2000
human-projected ABSA pairs of Easy-Label-Projection (benchmarks/projection_quality.py): span F1
0.882 (paper) and 0.932 (best), 0.953 with ~14k extra parallel pairs (--extra-src/--extra-tgt).

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
import os
import pathlib
import sys
from typing import Sequence

from mtlws_jax.data import absa, conll, taskspec, upb
from mtlws_jax.errors import InputError, main_guard, argument_parser
from mtlws_jax.projection import align as A
from mtlws_jax.projection import project as P

TASKS = tuple(taskspec.TASKS)
# Alignment and projection settings by name. "best": the setting that projected human
# translations best (benchmarks/projection_quality.py on the en-es ABSA human projections; issue
# 12 reports the same ranking on en-fr and en-ru human projections the project never tuned on).
# "paper": the paper's recipe (fast_align's grow-diag-final-and, Eq. 2 as written).
RECIPES = {
    "best": {"symmetrize": "union", "split_punct": True, "trim_foreign": True},
    "paper": {"symmetrize": "grow-diag-final-and", "split_punct": False, "trim_foreign": False},
}
FORMATS = ("conll", "absa", "upb")
DEFAULT_FORMAT = {"ner": "conll", "absa": "absa", "srl": "upb"}


UPOS = frozenset("ADJ ADP ADV AUX CCONJ DET INTJ NOUN NUM PART PRON PROPN PUNCT SCONJ SYM VERB X _".split())


def _load_callable(spec: str):
  """"project", or the user's tagger module:function wrapped so that its failures and its
  output (one UPOS tag per token) are checked: an InputError naming --pos-tagger, never a
  traceback from deep in the projection."""
  if spec == "project":  # UPOS carried over the alignment from the source words
    return spec
  module, _, name = spec.partition(":")
  if not module or not name:
    raise InputError(f"--pos-tagger={spec!r}: expected 'project' or module:function")
  try:
    fn = getattr(importlib.import_module(module), name)
  except ImportError as e:
    raise InputError(f"--pos-tagger={spec!r}: cannot import {module!r} ({e})") from None
  except AttributeError:
    raise InputError(f"--pos-tagger={spec!r}: module {module!r} has no {name!r}") from None
  if not callable(fn):
    raise InputError(f"--pos-tagger={spec!r}: {name!r} is not a function")

  def tagger(tokens):
    try:
      tags = fn(list(tokens))
    except Exception as e:  # noqa: BLE001 (the user's code)
      raise InputError(f"--pos-tagger={spec!r} raised {type(e).__name__}: {e} (on: {' '.join(tokens)[:80]})") from None
    if isinstance(tags, str) or not hasattr(tags, "__len__") or len(tags) != len(tokens) or \
        not all(isinstance(t, str) and t in UPOS for t in tags):
      raise InputError(f"--pos-tagger={spec!r} must return one UPOS tag per token ({', '.join(sorted(UPOS))}); "
                       f"got {str(tags)[:80]} for {len(tokens)} tokens")
    return list(tags)
  return tagger


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
  pos_tagger = _load_callable(args.pos_tagger) if args.pos_tagger else None  # before any slow work
  records, src_tokens, sent_of = _source(args.task, fmt, args.src)
  tgt_tokens = A.read_tokenized(args.tgt_tokens)
  A.check_pairs(src_tokens, tgt_tokens, args.src, args.tgt_tokens)
  if args.alignments:
    links = A.read_pharaoh(args.alignments, [len(s) for s in src_tokens], [len(t) for t in tgt_tokens])
  else:
    extra_src, extra_tgt = (), ()
    if args.extra_src:
      extra_src, extra_tgt = A.read_tokenized(args.extra_src), A.read_tokenized(args.extra_tgt)
      A.check_pairs(extra_src, extra_tgt, args.extra_src, args.extra_tgt)
    config = A.EflomalConfig(seed=None if args.seed < 0 else args.seed, split_punct=args.split_punct,
                           prefix_len=args.prefix_len)
    links = A.align(src_tokens, tgt_tokens, symmetrization=args.symmetrize, extra_src=extra_src,
                    extra_tgt=extra_tgt, config=config)

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
  report_path = args.report or args.out + ".report.jsonl"
  from mtlws_jax.data import textfile
  _write(fmt, args.out, out)
  try:
    textfile.write_text(report_path, "".join(json.dumps(rep.as_json(), ensure_ascii=False) + "\n" for rep in reports))
  except OSError:
    if os.path.isfile(args.out):   # both files or neither: an --out without its report is not kept
      os.unlink(args.out)
    raise
  dropped = collections.Counter()
  for rep in reports:
    dropped.update(rep.dropped)
  unit = "arguments" if args.task == "srl" else "spans"
  return {
      "task": args.task,
      "strategy": "head" if args.task == "srl" else args.strategy,
      "aligner": "pharaoh:" + args.alignments if args.alignments else
                 f"eflomal+{args.symmetrize}" + ("+split-punct" if args.split_punct else ""),
      "recipe": args.recipe, "trim_foreign": bool(args.trim_foreign),
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
  p = argument_parser(prog="python -m mtlws_jax.projection", description=__doc__.split("\n")[0])
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
  p.add_argument("--recipe", default="best", choices=tuple(RECIPES),
                 help="best (default): split attached punctuation, union symmetrization, trim foreign links "
                 "(the best measured setting); paper: grow-diag-final-and, punctuation attached, no trimming")
  p.add_argument("--symmetrize", choices=A.SYMMETRIZATIONS, help="overrides the recipe")
  p.add_argument("--seed", type=int, default=0, help="eflomal seed (-1: unseeded)")
  p.add_argument("--split-punct", action=argparse.BooleanOptionalAction, default=None,
                 help="align attached punctuation as separate units (overrides the recipe)")
  p.add_argument("--prefix-len", type=int, default=0, help="eflomal compares words on their first N characters")
  p.add_argument("--extra-src")
  p.add_argument("--extra-tgt")
  p.add_argument("--trim-foreign", action=argparse.BooleanOptionalAction, default=None,
                 help="cut Eq. 2 ranges at words linked outside the span (overrides the recipe)")
  p.add_argument("--keep", default="all", choices=("all", "complete"))
  p.add_argument("--pos-tagger", help="SRL target UPOS: module:function mapping target tokens to UPOS "
                 "tags, or 'project' (each target word takes the UPOS of the source words linked to it); "
                 "default: '_' (unknown)")
  args = p.parse_args(argv)
  if bool(args.extra_src) != bool(args.extra_tgt):
    p.error("--extra-src and --extra-tgt go together")
  if not 0 <= args.prefix_len <= 1000:
    p.error(f"--prefix-len must be in [0, 1000], got {args.prefix_len}")
  from mtlws_jax.projection import seeding
  if seeding.seed_problem(args.seed):
    p.error(seeding.seed_problem(args.seed))
  if args.alignments and (args.extra_src or args.symmetrize or args.split_punct or args.prefix_len):
    p.error("--extra-src/--extra-tgt, --symmetrize, --split-punct and --prefix-len are eflomal settings: "
            "they do nothing with --alignments")
  if args.task != "srl" and args.pos_tagger:
    p.error("--pos-tagger is for --task=srl (the UPOS column of projected SRL sets)")
  if args.task == "srl" and (args.strategy != "span" or args.trim_foreign):
    p.error("--strategy and --trim-foreign are for NER/ABSA spans; SRL projects argument heads")
  recipe = RECIPES[args.recipe]
  for key in ("symmetrize", "split_punct", "trim_foreign"):
    if getattr(args, key) is None:
      setattr(args, key, recipe[key])
  if args.task == "srl":
    args.trim_foreign = False  # argument heads, not spans
  from mtlws_jax.errors import check_output
  inputs = (args.src, args.tgt_tokens, args.alignments, args.extra_src, args.extra_tgt)
  check_output(args.out, *inputs)
  report = args.report or args.out + ".report.jsonl"
  if pathlib.Path(report).resolve() == pathlib.Path(args.out).resolve():
    p.error("--report and --out are the same file")
  check_output(report, *inputs, what="--report")
  fmt = args.src_format or DEFAULT_FORMAT[args.task]
  if (args.task == "srl") != (fmt == "upb"):
    p.error("--task=srl goes with --src-format=upb (SRL instances), and only it")
  print(json.dumps(run(args), indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
