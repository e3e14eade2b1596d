"""Test-only oracle: a line-by-line Python port of the counting in conlleval.pl.

Source: conlleval.pl, "version: 2004-01-26", Erik Tjong Kim Sang (the CoNLL-2000..2003 scorer).
Ported: the main loop (inCorrect / correctChunk / foundCorrect / foundGuessed bookkeeping, the
"-X-" and blank-line sentence boundaries, hyphens allowed in types), `endOfChunk` and
`startOfChunk` with every rule kept, including the ones for "E", ".", "[" and "]". Left out: the
-l/-r/-d/-o options and printing. Precision/recall/FB1 are computed as the script does (0 when
the denominator is 0), as fractions instead of percentages.

The script has no "S" prefix and no E->B rule, so it scores IOB1/IOB2 (and IOE) files; BIOES
predictions are checked against the PyPI `conlleval` package, whose port adds those rules.
"""

from __future__ import annotations

from typing import Iterable, Sequence

FALSE = 0
TRUE = 42
BOUNDARY = "-X-"


def end_of_chunk(prev_tag, tag, prev_type, type_):
  chunk_end = FALSE
  if prev_tag == "B" and tag == "B": chunk_end = TRUE
  if prev_tag == "B" and tag == "O": chunk_end = TRUE
  if prev_tag == "I" and tag == "B": chunk_end = TRUE
  if prev_tag == "I" and tag == "O": chunk_end = TRUE

  if prev_tag == "E" and tag == "E": chunk_end = TRUE
  if prev_tag == "E" and tag == "I": chunk_end = TRUE
  if prev_tag == "E" and tag == "O": chunk_end = TRUE
  if prev_tag == "I" and tag == "O": chunk_end = TRUE

  if prev_tag != "O" and prev_tag != "." and prev_type != type_:
    chunk_end = TRUE

  # corrected 1998-12-22: these chunks are assumed to have length 1
  if prev_tag == "]": chunk_end = TRUE
  if prev_tag == "[": chunk_end = TRUE
  return chunk_end


def start_of_chunk(prev_tag, tag, prev_type, type_):
  chunk_start = FALSE
  if prev_tag == "B" and tag == "B": chunk_start = TRUE
  if prev_tag == "I" and tag == "B": chunk_start = TRUE
  if prev_tag == "O" and tag == "B": chunk_start = TRUE
  if prev_tag == "O" and tag == "I": chunk_start = TRUE

  if prev_tag == "E" and tag == "E": chunk_start = TRUE
  if prev_tag == "E" and tag == "I": chunk_start = TRUE
  if prev_tag == "O" and tag == "E": chunk_start = TRUE
  if prev_tag == "O" and tag == "I": chunk_start = TRUE

  if tag != "O" and tag != "." and prev_type != type_:
    chunk_start = TRUE

  # corrected 1998-12-22: these chunks are assumed to have length 1
  if tag == "[": chunk_start = TRUE
  if tag == "]": chunk_start = TRUE
  return chunk_start


def _split(item: str) -> tuple[str, str]:
  # 20040126 ET code which allows hyphens in the types: /^([^-]*)-(.*)$/
  head, sep, rest = item.partition("-")
  if sep:
    return head, rest
  return item, ""


def evaluate_lines(lines: Iterable[str], delimiter: str = " ") -> dict:
  """Counts of conlleval.pl on its input lines ("token ... gold guess", blank between sentences)."""
  correct_chunk = 0
  found_correct = 0
  found_guessed = 0
  correct_tags = 0
  token_counter = 0
  in_correct = FALSE
  last_correct, last_correct_type = "O", ""
  last_guessed, last_guessed_type = "O", ""
  correct_chunk_t: dict[str, int] = {}
  found_correct_t: dict[str, int] = {}
  found_guessed_t: dict[str, int] = {}
  nbr_of_features = -1

  for line in lines:
    line = line.rstrip("\n")
    features = line.split(delimiter) if line else []
    if nbr_of_features < 0:
      nbr_of_features = len(features) - 1
    elif nbr_of_features != len(features) - 1 and len(features) != 0:
      raise ValueError(f"unexpected number of features: {len(features)} ({nbr_of_features + 1})")
    if len(features) == 0 or features[0] == BOUNDARY:
      features = [BOUNDARY, "O", "O"]
    if len(features) < 2:
      raise ValueError(f"conlleval: unexpected number of features in line {line}")
    guessed, guessed_type = _split(features[-1])
    features.pop()
    correct, correct_type = _split(features[-1])
    features.pop()
    first_item = features.pop(0)

    # 1999-06-26 sentence breaks should always be counted as out of chunk
    if first_item == BOUNDARY:
      guessed = "O"

    if in_correct:
      if (end_of_chunk(last_correct, correct, last_correct_type, correct_type) and
          end_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type) and
          last_guessed_type == last_correct_type):
        in_correct = FALSE
        correct_chunk += 1
        correct_chunk_t[last_correct_type] = correct_chunk_t.get(last_correct_type, 0) + 1
      elif (end_of_chunk(last_correct, correct, last_correct_type, correct_type) !=
            end_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type) or
            guessed_type != correct_type):
        in_correct = FALSE

    if (start_of_chunk(last_correct, correct, last_correct_type, correct_type) and
        start_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type) and
        guessed_type == correct_type):
      in_correct = TRUE

    if start_of_chunk(last_correct, correct, last_correct_type, correct_type):
      found_correct += 1
      found_correct_t[correct_type] = found_correct_t.get(correct_type, 0) + 1
    if start_of_chunk(last_guessed, guessed, last_guessed_type, guessed_type):
      found_guessed += 1
      found_guessed_t[guessed_type] = found_guessed_t.get(guessed_type, 0) + 1
    if first_item != BOUNDARY:
      if correct == guessed and guessed_type == correct_type:
        correct_tags += 1
      token_counter += 1

    last_guessed = guessed
    last_correct = correct
    last_guessed_type = guessed_type
    last_correct_type = correct_type

  if in_correct:
    correct_chunk += 1
    correct_chunk_t[last_correct_type] = correct_chunk_t.get(last_correct_type, 0) + 1

  def prf(c, guessed_n, gold_n):
    precision = c / guessed_n if guessed_n > 0 else 0.0
    recall = c / gold_n if gold_n > 0 else 0.0
    fb1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": fb1, "tp": c, "n_pred": guessed_n, "n_gold": gold_n}

  out = prf(correct_chunk, found_guessed, found_correct)
  out["tokens"] = token_counter
  out["correct_tags"] = correct_tags
  types = sorted(set(found_correct_t) | set(found_guessed_t))
  out["per_label"] = {
      t: prf(correct_chunk_t.get(t, 0), found_guessed_t.get(t, 0), found_correct_t.get(t, 0)) for t in types
  }
  return out


def to_lines(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> list[str]:
  """The "token gold guess" lines conlleval reads, one blank line after each sentence."""
  lines = []
  for g, p in zip(gold, pred, strict=True):
    for a, b in zip(g, p, strict=True):
      lines.append(f"w {a} {b}")
    lines.append("")
  return lines


def evaluate(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
  return evaluate_lines(to_lines(gold, pred))
