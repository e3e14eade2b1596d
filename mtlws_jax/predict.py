"""Tag new text with a finished run.

  python -m mtlws_jax.predict --workdir=DIR [--run=MODEL_ID] [--seed=S] --input=FILE --output=FILE
      [--input-format=text|tokens|conll|absa|upb] [--lang=es] [--format=task|jsonl] [--batch-size=64]

--run / --seed default to the finished run with the best English dev F1 in the workdir (model
selection on English dev, as in training; never a test set). Input formats (default: the task's
own format):
  text    raw text, one sentence per line, tokenized with sacremoses' Moses tokenizer for --lang
          (escape off, so "&" stays "&"); NER and ABSA only (SRL needs predicates and POS tags);
  tokens  one tokenized sentence per line, tokens separated by single spaces;
  conll / absa / upb   a file in the task's format (CoNLL columns, XABSA, UP CoNLL-U with its
          predicates and UPOS). When such a file carries gold tags, span precision, recall and F1
          are printed, computed exactly as the experiment scores its test sets.
Output: the input's format with the predicted tags (conll keeps its scheme, ABSA T-X tags, UPB
role columns; text and tokens input give CoNLL `token TAG` columns in BIOES), or --format=jsonl:
one object per sentence with its tokens and spans (text, start, end: token indices with end
exclusive, label; char_start/char_end into the line for text input). Long sentences are windowed
as in training; every word gets a tag. The model is loaded once, batches are jitted.
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import unicodedata
from collections.abc import Sequence

from mtlws_jax.data import taskspec
from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError, argument_parser, check_output, main_guard

INPUT_FORMATS = ("text", "tokens", *dict.fromkeys(s.file_format for s in taskspec.TASKS.values()))


def read_input(path: str, fmt: str, task: str, lang: str) -> tuple[list[Sentence], list[str] | None, bool]:
  """(records, raw lines for text input, whether they carry gold tags)."""
  from mtlws_jax.data import textfile
  spec = taskspec.get(task)
  if fmt in ("text", "tokens"):
    if spec.predicates:
      raise InputError(f"{task.upper()} needs each sentence's predicates and UPOS tags: give a "
                       f"{spec.file_format} file (--input-format={spec.file_format}), not raw text", path)
    # NFC: a decomposed accent (e + U+0301) is one character, as in the training data
    lines = [unicodedata.normalize("NFC", l) for l in textfile.read_lines(path)]
    if fmt == "text":
      from sacremoses import MosesTokenizer
      from sacremoses.corpus import NonbreakingPrefixes
      if lang not in NonbreakingPrefixes().available_langs.values():
        print(f"note: no Moses rules for --lang={lang}: the default (English) rules split the text",
              file=sys.stderr)
      tok = MosesTokenizer(lang=lang)
      token_lists = [whole_graphemes([t for t in tok.tokenize(l, escape=False) if t.strip()]) for l in lines]
    else:
      from mtlws_jax.projection.align import parse_tokenized_line
      token_lists = [parse_tokenized_line(l, path, k) for k, l in enumerate(lines, 1)]
    recs = [Sentence(tokens=tuple(t), tags=("O",) * len(t), scheme="bioes", origin=f"{path}:{k}")
            for k, t in enumerate(token_lists, 1) if t]
    if not recs:
      raise InputError("no sentence to tag (every line is empty)", path)
    return recs, ([l for l, t in zip(lines, token_lists) if t] if fmt == "text" else None), False
  if spec.file_format != fmt:
    raise InputError(f"--input-format={fmt} is not the {task} format ({spec.file_format}); the run was "
                     f"trained for {task}")
  try:
    recs = spec.read(path)
  except InputError as e:
    if _looks_like_text(path):
      raise InputError(f"this looks like plain text, one sentence per line, not the {fmt} format ({e.problem}); "
                       "give --input-format=text (or --input-format=tokens for space-separated tokens)",
                       e.path, e.line) from None
    raise
  gold = any(t != "O" for s in recs for t in s.tags)
  return recs, None, gold


_TAG_LIKE = re.compile(r"^(O|[BIESLU]-\S+|T-(POS|NEG|NEU)|_|[AR]?\d.*)$")


def _looks_like_text(path: str, n: int = 20) -> bool:
  """Most of the first non-empty lines are several words whose last one is no tag (a task file
  ends every word line with a tag)."""
  from mtlws_jax.data import textfile
  try:
    lines = [l for l in textfile.read_lines(path) if l.strip()][:n]
  except InputError:
    return False
  texty = [l for l in lines if "\t" not in l and len(l.split()) >= 3 and not _TAG_LIKE.match(l.split()[-1])]
  return bool(lines) and len(texty) >= 0.8 * len(lines)


def whole_graphemes(tokens: Sequence[str]) -> list[str]:
  """Tokens with every grapheme cluster whole: Moses splits an emoji joined by U+200D (ZWJ), or a
  letter from a combining mark NFC cannot compose, into pieces; those pieces are joined again."""
  import regex
  out: list[str] = []
  for t in tokens:
    if out and len(regex.findall(r"\X", out[-1] + t)) < len(regex.findall(r"\X", out[-1])) + len(regex.findall(r"\X", t)):
      out[-1] += t
    else:
      out.append(t)
  return out


def _char_offsets(line: str, tokens: Sequence[str]) -> list[tuple[int, int] | None]:
  """Where each token sits in its line (None when tokenization changed its characters)."""
  out, pos = [], 0
  for t in tokens:
    k = line.find(t, pos)
    if k < 0:
      out.append(None)
      continue
    out.append((k, k + len(t)))
    pos = k + len(t)
  return out


def spans_json(sent: Sentence, tags: Sequence[str], line: str | None) -> dict:
  from mtlws_jax.data import schemes
  from mtlws_jax.eval import metrics
  rec = {"tokens": list(sent.tokens), "tags": list(tags)}
  if line is not None:
    rec["text"] = line
  offsets = _char_offsets(line, sent.tokens) if line is not None else None
  spans = []
  if sent.predicate is not None:  # SRL: (argument head, role) of the given predicate
    rec["predicate"] = sent.predicate
    for _, j, role in sorted(metrics.srl_arguments(sent.predicate, tags)):
      spans.append({"text": sent.tokens[j], "start": j, "end": j + 1, "label": role})
  else:
    for sp in schemes.tags_to_spans(tags, "bioes"):
      span = {"text": " ".join(sent.tokens[sp.start:sp.end]), "start": sp.start, "end": sp.end, "label": sp.label}
      if offsets and offsets[sp.start] and offsets[sp.end - 1]:
        span["char_start"], span["char_end"] = offsets[sp.start][0], offsets[sp.end - 1][1]
        span["text"] = line[span["char_start"]:span["char_end"]]
      spans.append(span)
  rec["spans"] = spans
  return rec


def merge_touching(tags: Sequence[str]) -> list[str]:
  """BIOES tags with touching spans of one label joined: the T-X (ot) format cannot separate
  them, and a reader of the file would see one aspect anyway."""
  from mtlws_jax.data import schemes
  spans = []
  for sp in schemes.tags_to_spans(tags, "bioes"):
    if spans and spans[-1].end == sp.start and spans[-1].label == sp.label:
      spans[-1] = schemes.Span(sp.label, spans[-1].start, sp.end)
    else:
      spans.append(sp)
  return schemes.spans_to_tags(spans, len(tags), "bioes")


def write_output(path: str, fmt: str, records: Sequence[Sentence], pred: Sequence[Sequence[str]],
                 lines: list[str] | None, out_format: str) -> None:
  from mtlws_jax.data import schemes, textfile
  if out_format == "jsonl":
    text = "".join(json.dumps(spans_json(s, p, lines[k] if lines else None), ensure_ascii=False) + "\n"
                   for k, (s, p) in enumerate(zip(records, pred)))
    textfile.write_text(path, text)
    return
  if fmt in ("text", "tokens", "conll"):
    from mtlws_jax.data import conll
    out = []
    for s, p in zip(records, pred):
      scheme = s.scheme if fmt == "conll" else "bioes"
      tags, _ = schemes.convert(p, "bioes", scheme) if scheme != "bioes" else (list(p), 0)
      if fmt == "conll":
        out.append(s.replace(tags=tuple(tags)))
      else:
        out.append(Sentence(tokens=s.tokens, tags=tuple(tags), scheme="bioes", meta={"sep": " "}))
    conll.write(path, out)
  elif fmt == "absa":
    from mtlws_jax.data import absa
    absa.write(path, [s.replace(tags=tuple(merge_touching(p))) for s, p in zip(records, pred)])
  else:
    from mtlws_jax.data import upb
    upb.write(path, [s.replace(tags=tuple(p)) for s, p in zip(records, pred)])


def main(argv: Sequence[str] | None = None) -> int:
  p = argument_parser(prog="python -m mtlws_jax.predict", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True, help="a run.py workdir")
  p.add_argument("--run", help="model id as in runs/ (e.g. mtl_ws, target_only-es); default: chosen by --select")
  p.add_argument("--select", default="auto", choices=("auto", "english_dev", "translated_dev"),
                 help="how the run is chosen without --run: the best English dev F1, or the best F1 on "
                      "--lang's translated dev set (python -m mtlws_jax.eval.select); auto: the latter where "
                      "the workdir has those scores")
  p.add_argument("--seed", type=int, help="default: the best seed of the run")
  p.add_argument("--input", required=True)
  p.add_argument("--output", required=True)
  p.add_argument("--input-format", choices=INPUT_FORMATS, help="default: the task's format (conll, absa, upb)")
  p.add_argument("--lang", default="en", help="language of text input (sacremoses tokenizer rules)")
  p.add_argument("--format", default="task", choices=("task", "jsonl"), help="output format")
  p.add_argument("--batch-size", type=int, default=64)
  p.add_argument("--no-progress", action="store_true")
  args = p.parse_args(argv)
  if args.batch_size < 1:
    p.error(f"--batch-size must be >= 1, got {args.batch_size}")
  check_output(args.output, args.input, what="--output")
  from mtlws_jax import runfolder, saved as saved_lib
  why = "named by --run" if args.run else None
  if args.run is None:
    from mtlws_jax import workdir as workdir_lib
    workdir_lib.check_exists(args.workdir)
    from mtlws_jax.eval import select
    if args.seed is not None:
      runs = [r for r in runfolder.finished_runs(pathlib.Path(args.workdir)) if r[1] == args.seed]
      if not runs:
        raise InputError(f"no finished run with seed {args.seed}", args.workdir)
    else:
      runs = None
    model_id, seed, why = select.choose(pathlib.Path(args.workdir), args.lang, args.select, runs)
    run = saved_lib.load(args.workdir, model_id, seed)
  else:
    run = saved_lib.load(args.workdir, args.run, args.seed)
  fmt = args.input_format or taskspec.get(run.task).file_format
  records, lines, gold = read_input(args.input, fmt, run.task, args.lang)
  from mtlws_jax.data import tasks
  from mtlws_jax.eval import tagging
  scheme = taskspec.get(run.task).scheme
  in_scheme = tasks.to_scheme(records, scheme, args.input)  # e.g. IOB2 files -> BIOES, as in training
  pred = tagging.tag_records(run, in_scheme, batch_size=args.batch_size, progress=not args.no_progress)
  write_output(args.output, fmt, records, pred, lines, args.format)
  summary = {"run": run.model_id, "seed": run.seed, "chosen_by": why, "step": run.step,
             "english_dev_f1": round(100 * run.result["english_dev"], 2),
             "sentences": len(records), "output": args.output}
  if gold:
    got = tasks.score(run.task, in_scheme, pred)
    summary.update({k: round(100 * got[k], 2) for k in ("precision", "recall", "f1")},
                   n_gold=got["n_gold"], n_pred=got["n_pred"])
  print(json.dumps(summary, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
