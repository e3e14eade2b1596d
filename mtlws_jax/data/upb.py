"""Universal Proposition Bank files (CoNLL-U plus PropBank columns): one SRL instance per predicate.

Two layouts (see the data README):

  "up1"  UP 1.0 (non-English): ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL PRED SENSE ARG_1..ARG_k.
         PRED is `Y` on predicates, SENSE their roleset; column ARG_j holds the roles of the
         j-th predicate (sentence order) on its arguments' head words, `_` elsewhere.
  "ewt"  English EWT: the ten CoNLL-U columns, SENSE, then one column per predicate. The
         predicates are the words with a SENSE; `V` marks the predicate in its column and roles
         use PropBank-3 names, mapped here to the UP 1.0 ones (ARG0 -> A0, ARGM-TMP -> AM-TMP,
         R-ARG1 -> R-A1, ARG1-DSP -> A1-DSP, ARGA -> AA) so both layouts share one label set.

`layout="auto"` picks the layout of the first sentence that fits only one of them (as many
predicate columns as `Y` flags, or as words with a SENSE); if none decides, "ewt" when column 9
holds anything but `Y`/`_` (EWT's DEPS), else "up1". The number of predicate columns must equal the number of predicates
(InputError otherwise). A sentence without predicates may carry one empty extra column (EWT's
"propbank = no-up" sentences).

Instance tags ("oi" scheme): "O" or the role of each word in the predicate's column. The
predicate's own cell normally holds `V` (ewt) or `_` (up1): its tag is then "O" and the cell's
text is kept in `meta["predicate_mark"]`; any other value there (a role of the predicate on
itself, or EWT's `C-V` where `V` sits on another word) is kept as its tag. A `V` on another word
(the particle of a phrasal verb, "break *through*") stays a "V" tag: nothing is dropped or
renamed beyond the ARG/ARGM mapping.

`meta` keeps what the writer needs to give the file back: layout, the sentence's index in the
file, its comment lines, multiword-token (`1-2`) and empty-node (`1.1`) lines with their
positions, and the raw text of sentences without predicates (`before`: those just before this
sentence, on its first instance; `after`: those after the last one, on the last instance).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from typing import Iterable, Sequence

from mtlws_jax.data import textfile
from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError

LAYOUTS = ("up1", "ewt")
# Per-word columns kept in Sentence.extra (ID is implied by position, FORM is the token).
UP1_COLUMNS = ("id", "form", "lemma", "pos", "xpos", "feats", "head", "deprel")
EWT_COLUMNS = UP1_COLUMNS + ("deps", "misc")
_BASE = {"up1": len(UP1_COLUMNS) + 2, "ewt": len(EWT_COLUMNS) + 1}  # columns before ARG_1
_SENSE = {"up1": 9, "ewt": 10}
_MWT = re.compile(r"\d+-\d+")
_EMPTY_NODE = re.compile(r"\d+\.\d+")
_ROLE = re.compile(r"[^\s_]\S*")


@functools.lru_cache(maxsize=4096)
def from_propbank3(role: str) -> str:
  """EWT (PropBank-3) role name -> UP 1.0 name: ARG0 -> A0, ARGM-TMP -> AM-TMP, C-ARG1 -> C-A1."""
  prefix = role[:2] if role[:2] in ("R-", "C-") else ""
  core = role[len(prefix):]
  if core.startswith("ARGM-"):
    core = "AM-" + core[5:]
  elif core.startswith("ARG"):
    core = "A" + core[3:]
  return prefix + core


def to_propbank3(role: str) -> str:
  """Inverse of `from_propbank3` (A0 -> ARG0, AM-TMP -> ARGM-TMP, V -> V)."""
  prefix = role[:2] if role[:2] in ("R-", "C-") else ""
  core = role[len(prefix):]
  if core.startswith("AM-"):
    core = "ARGM-" + core[3:]
  elif core.startswith("A"):
    core = "ARG" + core[1:]
  return prefix + core


@dataclasses.dataclass(frozen=True)
class SentenceBlock:
  """One sentence of the file as read, before it is split into instances."""

  line: int                                   # first line (comments included)
  lines: tuple[str, ...]                      # the raw lines
  comments: tuple[str, ...]
  columns: tuple[tuple[str, ...], ...]        # the word lines' columns (column-major)
  extra_lines: tuple[tuple[int, str], ...]    # (number of words before it, raw line): 1-2, 1.1
  predicates: tuple[int, ...]                 # word indices, sentence order
  first_word_line: int

  @property
  def n_words(self) -> int:
    return len(self.columns[0]) if self.columns else 0


def _fits(layout: str, rows: list[list[str]]) -> bool:
  """Whether a sentence's word rows fit `layout`: as many predicate columns as predicates."""
  ncols = len(rows[0])
  if any(len(r) != ncols for r in rows):
    return False
  if layout == "up1":
    if ncols < _BASE["up1"] or any(r[8] not in ("Y", "_") for r in rows):
      return False
    npred = sum(r[8] == "Y" for r in rows)
  else:
    if ncols < _BASE["ewt"]:
      return False
    npred = sum(r[10] not in ("_", "") for r in rows)
    if not npred and ncols == _BASE["ewt"] + 1 and all(r[-1] == "" for r in rows):
      return True
  return ncols - _BASE[layout] == npred


def _detect_layout(blocks: Sequence[tuple[int, list[str]]]) -> str:
  """The first sentence that fits one layout only decides; else EWT if column 9 is not PRED."""
  deps_seen = False
  for _, lines in blocks:
    rows = [l.split("\t") for l in lines if not l.startswith("#")]
    rows = [r for r in rows if r[0].isdigit()]
    if not rows:
      continue
    deps_seen = deps_seen or any(len(r) > 8 and r[8] not in ("Y", "_") for r in rows)
    up1, ewt = _fits("up1", rows), _fits("ewt", rows)
    if up1 != ewt:
      return "up1" if up1 else "ewt"
  return "ewt" if deps_seen else "up1"


def _parse_block(start: int, lines: list[str], layout: str, path: str) -> SentenceBlock:
  """A checked sentence: the fast path when all is well, else line by line to name the problem."""
  return _parse_block_fast(start, lines, layout) or _parse_block_checked(start, lines, layout, path)


def _parse_block_fast(start: int, lines: list[str], layout: str) -> SentenceBlock | None:
  """`_parse_block_checked` with whole-column checks; None if any check fails."""
  base, sense_col = _BASE[layout], _SENSE[layout]
  k = 0
  while k < len(lines) and lines[k].startswith("#"):
    k += 1
  comments, split = lines[:k], [l.split("\t") for l in lines[k:]]
  rows = [f for f in split if f[0].isdigit()]
  extra_lines = []
  if len(rows) != len(split):
    n = 0
    for f, line in zip(split, lines[k:]):
      if f[0].isdigit():
        n += 1
      elif _MWT.fullmatch(f[0]) or _EMPTY_NODE.fullmatch(f[0]):
        extra_lines.append((n, line))
      else:
        return None
  if not rows:
    return None
  ncols = len(rows[0])
  if ncols < base or len(set(map(len, rows))) != 1:
    return None
  cols = tuple(zip(*rows))
  if cols[0] != tuple(map(str, range(1, len(rows) + 1))) or any("" in cols[c] for c in range(sense_col)):
    return None
  if textfile.has_whitespace("".join(cols[1])):
    return None
  if layout == "up1":
    if not set(cols[8]) <= {"Y", "_"} or any(f == "_" and s not in ("_", "") for f, s in zip(cols[8], cols[9])):
      return None
    predicates = tuple(i for i, f in enumerate(cols[8]) if f == "Y")
  else:
    predicates = tuple(i for i, s in enumerate(cols[sense_col]) if s not in ("_", ""))
  ncolumns = ncols - base
  if not predicates and ncolumns == 1 and set(cols[base]) == {""}:
    ncolumns = 0
  if ncolumns != len(predicates):
    return None
  if ncolumns:
    values = set().union(*cols[base:])
    values.discard("_")
    for v in values:
      if not _ROLE.fullmatch(v) or v == "O" or (layout == "ewt" and to_propbank3(from_propbank3(v)) != v):
        return None
  return SentenceBlock(start, tuple(lines), tuple(comments), cols, tuple(extra_lines), predicates,
                       start + k + next(i for i, f in enumerate(split) if f[0].isdigit()))


def _parse_block_checked(start: int, lines: list[str], layout: str, path: str) -> SentenceBlock:
  """Line by line: the first problem raises InputError with its line."""
  base, sense_col = _BASE[layout], _SENSE[layout]
  comments, rows, extra_lines, word_lines = [], [], [], []
  ncols = first_word = 0
  for k, line in enumerate(lines):
    lineno = start + k
    if line.startswith("#"):
      if rows or extra_lines:
        raise InputError("comment line after the words of a sentence", path, lineno)
      comments.append(line)
      continue
    fields = line.split("\t")
    wid = fields[0]
    if not wid.isdigit():
      if _MWT.fullmatch(wid) or _EMPTY_NODE.fullmatch(wid):
        extra_lines.append((len(rows), line))
        continue
      raise InputError(f"bad word ID {wid!r}: expected N, N-M (multiword token) or N.M (empty node)", path, lineno)
    if int(wid) != len(rows) + 1:
      raise InputError(f"word ID {wid}, expected {len(rows) + 1}", path, lineno)
    if not ncols:
      ncols, first_word = len(fields), lineno
      if ncols < base:
        raise InputError(f"{ncols} columns, expected at least {base} for the {layout!r} layout "
                         f"({', '.join(c.upper() for c in (UP1_COLUMNS if layout == 'up1' else EWT_COLUMNS))}"
                         f"{', PRED' if layout == 'up1' else ''}, SENSE, then one column per predicate)",
                         path, lineno)
    elif len(fields) != ncols:
      counts = [(start + j, len(l.split("\t"))) for j, l in enumerate(lines)
                if not l.startswith("#") and l.split("\t")[0].isdigit()]
      raise textfile.column_mismatch(counts, path, "word lines of this sentence")
    for c in range(sense_col):
      if not fields[c]:
        raise InputError(f"empty column {c + 1}", path, lineno)
    if textfile.has_whitespace(fields[1]):
      raise InputError(f"word {fields[1]!r} contains whitespace", path, lineno)
    rows.append(fields)
    word_lines.append(lineno)
  if not rows:
    return SentenceBlock(start, tuple(lines), tuple(comments), (), tuple(extra_lines), (), 0)

  if layout == "up1":
    for r, lineno in zip(rows, word_lines):
      if r[8] not in ("Y", "_"):
        raise InputError(f"PRED column holds {r[8]!r}, expected Y or _", path, lineno)
      if r[8] == "_" and r[9] not in ("_", ""):
        raise InputError(f"SENSE {r[9]!r} on a word without the Y flag", path, lineno)
    predicates = tuple(k for k, r in enumerate(rows) if r[8] == "Y")
    what = "Y flags"
  else:
    predicates = tuple(k for k, r in enumerate(rows) if r[sense_col] not in ("_", ""))
    what = "words with a SENSE"
  ncolumns = ncols - base
  if not predicates and ncolumns == 1 and all(r[base] == "" for r in rows):
    ncolumns = 0  # EWT writes one empty column for sentences without predicates
  if ncolumns != len(predicates):
    raise InputError(f"{ncolumns} predicate columns but {len(predicates)} predicates ({what})", path, first_word)
  if ncolumns:
    values = {v for r in rows for v in r[base:]}
    values.discard("_")
    for v in values:
      if not _ROLE.fullmatch(v) or v == "O":
        problem = f"holds {v!r}: expected _ or a role name"
      elif layout == "ewt" and to_propbank3(from_propbank3(v)) != v:
        problem = f"holds {v!r}, not a PropBank-3 role name (ARG0, ARGM-TMP, V, ...)"
      else:
        continue
      k, j = next((k, j) for k, r in enumerate(rows) for j in range(base, ncols) if r[j] == v)
      raise InputError(f"predicate column {j - base + 1} {problem}", path, word_lines[k])
  return SentenceBlock(start, tuple(lines), tuple(comments), tuple(zip(*rows)),
                       tuple(extra_lines), predicates, first_word)


def read_sentences(path: str | os.PathLike, *, layout: str = "auto") -> tuple[str, list[SentenceBlock]]:
  """The layout and every sentence block (comment-only blocks included, with no rows)."""
  if layout not in LAYOUTS + ("auto",):
    raise ValueError(f"unknown layout {layout!r}; expected auto, {', '.join(LAYOUTS)}")
  path_str = os.fspath(path)
  lines = textfile.read_lines(path)
  raw_blocks = list(textfile.blocks(lines))
  if not raw_blocks:
    raise InputError("no sentences (only blank lines)", path_str, 1)
  if layout == "auto":
    layout = _detect_layout(raw_blocks)
  blocks = [_parse_block(start, block, layout, path_str) for start, block in raw_blocks]
  if not any(b.n_words for b in blocks):
    raise InputError("no sentences (only comment lines)", path_str, 1)
  return layout, blocks


def _instances(block: SentenceBlock, layout: str, index: int, path: str) -> list[Sentence]:
  base, sense_col = _BASE[layout], _SENSE[layout]
  names = UP1_COLUMNS if layout == "up1" else EWT_COLUMNS
  cols = block.columns
  extra = {name: cols[c] for c, name in enumerate(names) if name not in ("id", "form")}
  meta_common = {"layout": layout, "sentence": index, "comments": block.comments,
                 "extra_lines": block.extra_lines}
  out = []
  for j, p in enumerate(block.predicates):
    raw = cols[base + j]
    if layout == "ewt":
      tags = ["O" if v == "_" else from_propbank3(v) for v in raw]
    else:
      tags = ["O" if v == "_" else v for v in raw]
    mark = raw[p]
    if mark in ("_", "V"):
      tags[p] = "O"
    sense = cols[sense_col][p]
    out.append(Sentence(
        tokens=cols[1], tags=tuple(tags), scheme="oi", extra=dict(extra), predicate=p,
        sense=None if sense == "_" else sense,
        meta=dict(meta_common, predicate_mark=mark),
        origin=f"{path}:{block.line}"))
  return out


def instances(layout: str, blocks: Sequence[SentenceBlock], path: str | os.PathLike) -> list[Sentence]:
  """The SRL instances of parsed blocks (what `read` returns); `path` names them in errors."""
  path_str = os.fspath(path)
  out: list[Sentence] = []
  pending: list[tuple[str, ...]] = []
  index = 0
  for block in blocks:
    found = _instances(block, layout, index, path_str) if block.predicates else []
    if block.n_words:
      index += 1
    if not found:
      pending.append(block.lines)
      continue
    if pending:
      found[0] = found[0].replace(meta=dict(found[0].meta, before=tuple(pending)))
      pending = []
    out.extend(found)
  if not out:
    raise InputError(f"no predicates in any sentence ({'Y flags' if layout == 'up1' else 'SENSE'} column)",
                     path_str, 1)
  if pending:
    out[-1] = out[-1].replace(meta=dict(out[-1].meta, after=tuple(pending)))
  return out


def read(path: str | os.PathLike, *, layout: str = "auto") -> list[Sentence]:
  """One SRL instance per predicate, in file order (sentence, then predicate)."""
  layout, blocks = read_sentences(path, layout=layout)
  return instances(layout, blocks, path)


def _groups(instances: Sequence[Sentence]) -> list[list[Sentence]]:
  """Consecutive instances of one sentence (same `meta["sentence"]` and words)."""
  groups: list[list[Sentence]] = []
  for s in instances:
    if s.predicate is None:
      raise ValueError(f"{s.origin or 'sentence'}: not an SRL instance (no predicate)")
    if groups:
      last = groups[-1][0]
      if last.meta.get("sentence") == s.meta.get("sentence") and last.tokens == s.tokens:
        groups[-1].append(s)
        continue
    groups.append([s])
  return groups


def _raw_blocks(blocks: Iterable[Sequence[str]], src: str, dst: str) -> list[str]:
  """Raw sentences without predicates, their word lines rewritten if the layout changes."""
  out = []
  for block in blocks:
    for line in block:
      fields = line.split("\t")
      if src != dst and fields[0].isdigit():
        keep = fields[:len(UP1_COLUMNS)]
        line = "\t".join(keep + (["_", "_"] if dst == "up1" else ["_", "_", "_"]))
      out.append(line + "\n")
    out.append("\n")
  return out


def format_sentences(instances: Iterable[Sentence], *, layout: str | None = None) -> str:
  """The file text for `instances` (see `write`)."""
  parts: list[str] = []
  for group in _groups(list(instances)):
    first = group[0]
    lay = layout or first.meta.get("layout", "up1")
    if lay not in LAYOUTS:
      raise ValueError(f"unknown layout {lay!r}; expected one of {', '.join(LAYOUTS)}")
    group = sorted(group, key=lambda s: s.predicate)
    preds = [s.predicate for s in group]
    if len(set(preds)) != len(preds):
      raise ValueError(f"{first.origin or 'sentence'}: two instances of predicate {preds} in one sentence")
    src = first.meta.get("layout", lay)
    for s in group:
      parts.extend(_raw_blocks(s.meta.get("before", ()), src, lay))
    parts.extend(c + "\n" for c in first.meta.get("comments", ()))
    names = UP1_COLUMNS if lay == "up1" else EWT_COLUMNS
    n = len(first)
    senses = ["_"] * n
    for s in group:
      if s.sense is None and lay == "ewt":
        raise ValueError(f"{s.origin or 'sentence'}: the ewt layout marks predicates by their SENSE, "
                         f"predicate {s.predicate} has none")
      senses[s.predicate] = "_" if s.sense is None else s.sense
    cols = [tuple(map(str, range(1, n + 1))), first.tokens]
    cols += [first.extra.get(c, ("_",) * n) for c in names[2:]]
    if lay == "up1":
      flags = ["_"] * n
      for p in preds:
        flags[p] = "Y"
      cols.append(flags)
    cols.append(senses)
    for s in group:
      col = ["_" if t == "O" else (to_propbank3(t) if lay == "ewt" else t) for t in s.tags]
      if s.tags[s.predicate] == "O":
        col[s.predicate] = s.meta.get("predicate_mark", "V" if lay == "ewt" else "_")
      cols.append(col)
    lines = list(map("\t".join, zip(*cols)))
    body = "\n".join(lines)
    if (body.count("\t") != n * (len(cols) - 1) or body.count("\n") != n - 1 or "\r" in body
        or any("" in c for c in cols) or textfile.has_whitespace("".join(first.tokens))):
      for i, fields in enumerate(zip(*cols)):
        for k, f in enumerate(fields):
          if not f or "\t" in f or "\n" in f or "\r" in f or (k == 1 and textfile.has_whitespace(f)):
            raise ValueError(f"{first.origin or 'sentence'}: word {i}: field {f!r} cannot be written")
    extra_lines = first.meta.get("extra_lines", ())
    for pos, line in reversed(extra_lines):  # reversed keeps several lines at one position in order
      lines.insert(pos, line)
    parts.append("\n".join(lines) + "\n")
    parts.append("\n")
    for s in group:
      parts.extend(_raw_blocks(s.meta.get("after", ()), src, lay))
  return "".join(parts)


def write(path: str | os.PathLike, instances: Iterable[Sentence], *, layout: str | None = None) -> None:
  """Writes instances back as a UPB file; `read` on it returns the same instances.

  Consecutive instances of one sentence become one block with one column per predicate (in
  sentence order). Columns missing from `extra` are written as `_`; the layout comes from
  `layout`, else the first instance's `meta["layout"]`, else "up1".
  """
  textfile.write_text(path, format_sentences(instances, layout=layout))
