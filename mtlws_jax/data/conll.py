"""CoNLL column files (CoNLL-2002/2003 NER and their translations): one word per line.

Format read: columns separated by tabs (if the first word line holds a tab) or by runs of
spaces; the token first, the tag last (or in column `tag_column`), any other columns kept in
`extra` as "col0", "col1", ... in file order; a blank line between sentences. Every word line
must have as many columns as the first one. There are no comment lines: `#` is a token in
CoNLL NER data (`# O`).

Tags are validated (`O`, or `P-LABEL` with P a prefix of the scheme) but kept exactly as read:
ill-formed sequences (I-PER after B-LOC) are `data.schemes`' business, which repairs and counts
them. `scheme="auto"` asks `schemes.detect_scheme`: BIOES if any E-/S- tag; IOB1 if some I-X
starts a chunk and no B-X does (B- only separates touching chunks of one type); IOB2 otherwise.
An explicit scheme overrides detection and rejects prefixes it does not have.

`-DOCSTART-` lines (document boundaries, not words) are dropped. They must begin a block; the
ones before a sentence, and whether a blank line followed each, go into that sentence's
`meta["docstart"]` so the writer puts them back (`meta["docstart_after"]` for trailing ones).
A mangled marker such as `-OCSTART-` (machine translation artefacts) is an ordinary token.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Iterable

from absl import logging

from mtlws_jax.data import schemes, textfile
from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError

DOCSTART = "-DOCSTART-"
SCHEMES = ("iob1", "iob2", "bioes")
_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES", "auto": "BIES"}
_SPACES = re.compile(r"[ \t]+")
_FIRST_LINE = re.compile(r"^[^\n]*\S[^\n]*$", re.M)   # a non-blank line
_BLOCK_RE = re.compile(r"(?:[^\n]+\n)+")             # a run of non-empty lines
_BAD_LINE: dict = {}


def _split(line: str, sep: str) -> list[str]:
  if sep == "\t":
    return line.split("\t")
  return _SPACES.split(line.strip(" \t"))


def _is_docstart(line: str) -> bool:
  line = line.lstrip(" \t")
  return line.startswith(DOCSTART) and (len(line) == len(DOCSTART) or line[len(DOCSTART)] in " \t")


def _check_tag(tag: str, scheme: str, path, line: int) -> None:
  if tag == "O":
    return
  try:
    prefix, _ = schemes.split_tag(tag)
  except ValueError:
    raise InputError(f"unknown tag {tag!r}: expected O or PREFIX-LABEL such as B-PER", path, line) from None
  allowed = _PREFIXES[scheme]
  if prefix not in allowed:
    which = "a NER scheme (iob1, iob2, bioes)" if scheme == "auto" else f"scheme {scheme!r}"
    raise InputError(f"unknown tag {tag!r}: prefix {prefix!r} is not one of {'/'.join(allowed)} of {which}",
                     path, line)


@dataclasses.dataclass
class ColumnFile:
  """A column file split into sentences: what `read` and `absa.read` build their records from."""

  path: str
  sep: str                                   # "\t" or " "
  ncols: int
  blocks: list[tuple[int, tuple[tuple[str, ...], ...], tuple]]  # (first line, columns, docstart marks)
  docstart_after: tuple = ()                 # -DOCSTART- lines after the last sentence


def read_columns(path: str | os.PathLike, *, docstart: bool = True, fast: bool = True) -> ColumnFile:
  """Splits a column file into sentences and columns; checks columns, not tags.

  With `docstart=False` a -DOCSTART- line is an ordinary word line. A well-formed file (every
  line blank or `ncols` whitespace-free fields joined by one separator) takes a fast path; any
  other file goes line by line, which reports the first problem with its line number (`fast`
  only exists so tests can compare both paths).
  """
  path_str = os.fspath(path)
  text = textfile.read_text(path)
  if fast:
    found = _fast_columns(path_str, text, docstart)
    if found is not None:
      return found
  odd_lines = textfile.odd_whitespace_lines(text)
  lines = text.split("\n")
  if lines[-1] == "":
    lines.pop()
  lines.append("")  # closes the last block

  sep = None
  ncols = 0
  pending_doc: list[list] = []       # [-DOCSTART- line, blank line after it?]
  after_doc = False                  # previous line was a -DOCSTART- line
  raw: list[tuple] = []              # (first line, rows, docstart marks)
  rows: list[list[str]] = []
  start = 0
  for lineno, line in enumerate(lines, 1):
    if not line or ((line[0] == " " or line[0] == "\t") and not line.strip(" \t")):
      if rows:
        raw.append((start, rows, tuple(tuple(d) for d in pending_doc)))
        rows, pending_doc = [], []
      elif after_doc:
        pending_doc[-1][1] = True
      after_doc = False
      continue
    if sep is None and not (docstart and _is_docstart(line)):
      sep = "\t" if "\t" in line else " "
    fields = line.split(sep or " ")
    if len(fields) != ncols or "" in fields:
      if sep != "\t":
        fields = _split(line, " ")
      if docstart and _is_docstart(line):
        if rows:
          raise InputError(f"{DOCSTART} inside a sentence (it must follow a blank line)", path_str, lineno)
        pending_doc.append([line, False])
        after_doc = True
        continue
      if not ncols:
        ncols = len(fields)
        if ncols < 2:
          raise InputError(f"{ncols} column: expected at least a token and a tag", path_str, lineno)
      elif len(fields) != ncols:
        raise textfile.column_mismatch(_column_counts(lines, sep, docstart), path_str, "word lines")
      if "" in fields:
        raise InputError(f"empty column {fields.index('') + 1}", path_str, lineno)
    elif docstart and fields[0] == DOCSTART:
      if rows:
        raise InputError(f"{DOCSTART} inside a sentence (it must follow a blank line)", path_str, lineno)
      pending_doc.append([line, False])
      after_doc = True
      continue
    after_doc = False
    if (sep == "\t" and " " in fields[0]) or (odd_lines and lineno in odd_lines
                                               and textfile.has_whitespace(fields[0])):
      raise InputError(f"token {fields[0]!r} contains whitespace", path_str, lineno)
    if not rows:
      start = lineno
    rows.append(fields)
  if not raw:
    raise InputError("no sentences (only blank or -DOCSTART- lines)" if docstart else "no sentences", path_str, 1)
  blocks = [(line, tuple(zip(*rows)), doc) for line, rows, doc in raw]
  return ColumnFile(path_str, sep, ncols, blocks, tuple(tuple(d) for d in pending_doc))


def _column_counts(lines: list[str], sep: str | None, docstart: bool) -> list[tuple[int, int]]:
  """(line number, columns) of every word line (for blaming the odd one out)."""
  out = []
  for lineno, line in enumerate(lines, 1):
    if not line.strip(" \t") or (docstart and _is_docstart(line)):
      continue
    out.append((lineno, len(line.split(sep) if sep == "\t" else _split(line, " "))))
  return out


def _fast_columns(path: str, text: str, docstart: bool) -> ColumnFile | None:
  """`read_columns` for a well-formed file with C-speed string operations; None if not well-formed."""
  if not text.endswith("\n"):
    text += "\n"
  lines = (m.group() for m in _FIRST_LINE.finditer(text))
  first = next((l for l in lines if not (docstart and _is_docstart(l))), None)
  if first is None:
    return None
  sep = "\t" if "\t" in first else " "
  ncols = len(first.split(sep))
  if ncols < 2 or first != first.strip() or "" in first.split(sep):
    return None
  bad_line = _BAD_LINE.get((sep, ncols))
  if bad_line is None:  # a non-empty line that is not ncols whitespace-free fields joined by sep
    bad_line = _BAD_LINE[(sep, ncols)] = re.compile(
        rf"^(?!\S+(?:{re.escape(sep)}\S+){{{ncols - 1}}}$).+$", re.M)
  if bad_line.search(text):
    return None
  blocks, pending = [], []
  lineno, pos = 1, 0
  for m in _BLOCK_RE.finditer(text):
    lineno += text.count("\n", pos, m.start())
    pos = m.start()
    block = m.group()
    start = lineno
    if docstart and block.startswith(DOCSTART):
      lines = block.split("\n")[:-1]
      k = 0
      while k < len(lines) and _is_docstart(lines[k]):
        k += 1
      pending.extend([l, False] for l in lines[:k])
      if k == len(lines):
        pending[-1][1] = True
        continue
      block = "\n".join(lines[k:]) + "\n"
      start += k
    if docstart and "\n" + DOCSTART in block:
      return None  # -DOCSTART- inside a sentence: the slow path reports it
    flat = block[:-1].replace("\n", sep).split(sep)
    cols = tuple(tuple(flat[c::ncols]) for c in range(ncols))
    blocks.append((start, cols, tuple(tuple(d) for d in pending)))
    pending = []
  if not blocks:
    return None
  return ColumnFile(path, sep, ncols, blocks, tuple(tuple(d) for d in pending))


def check_tags(tags: tuple[str, ...], line: int, scheme: str, path: str, checked: set[str]) -> None:
  """InputError for the first tag of a sentence (starting at `line`) that `scheme` cannot have."""
  new = set(tags).difference(checked)
  for tag in sorted(new, key=tags.index):
    _check_tag(tag, scheme, path, line + tags.index(tag))
    checked.add(tag)


_DOUBLED = re.compile(r"^[BIESLU]-[BIESLU]-")


def _warn_doubled_prefixes(blocks, tag_col: int, path: str) -> None:
  """A tag such as B-I-PER is legal (label "I-PER") but almost always a doubled prefix: say so,
  with the first place, as the ill-formed repair does (the file is still read as written)."""
  first: dict[str, int] = {}
  for line, cols, _ in blocks:
    for i, t in enumerate(cols[tag_col]):
      if t not in first and _DOUBLED.match(t):
        first[t] = line + i
  if first:
    tag, where = min(first.items(), key=lambda kv: kv[1])
    logging.warning("%s:%d: tag %r reads as label %r (a doubled prefix?); %d such tag(s): %s", path, where, tag,
                    tag[2:], len(first), ", ".join(sorted(first)))


def read(path: str | os.PathLike, *, scheme: str = "auto", tag_column: int = -1) -> list[Sentence]:
  """The sentences of a CoNLL column file, tags as written, `scheme` set on every record."""
  if scheme not in _PREFIXES:
    raise ValueError(f"unknown scheme {scheme!r}; expected auto or one of {', '.join(SCHEMES)}")
  cf = read_columns(path)
  ncols, path_str = cf.ncols, cf.path
  if not -ncols < tag_column < ncols or tag_column % ncols == 0:
    raise InputError(f"tag column {tag_column} does not fit {ncols} columns (column 0 is the token)",
                     path_str, cf.blocks[0][0])
  tag_col = tag_column % ncols
  extra_cols = [c for c in range(1, ncols) if c != tag_col]
  checked: set[str] = set()
  try:
    for line, cols, _ in cf.blocks:
      check_tags(cols[tag_col], line, scheme, path_str, checked)
  except InputError as e:
    if ncols > 2:  # the usual mistake: the tag sits in another column (token TAG QUALITY)
      raise InputError(f"{e.problem} (read from column {tag_col + 1} of {ncols}; tag_column selects another)",
                       e.path, e.line) from None
    raise
  if scheme == "auto":
    scheme = schemes.detect_scheme(cols[tag_col] for _, cols, _ in cf.blocks)
  _warn_doubled_prefixes(cf.blocks, tag_col, path_str)

  out = []
  for k, (line, cols, doc) in enumerate(cf.blocks):
    meta = {"sep": cf.sep}
    if tag_col != ncols - 1:
      meta["tag_column"] = tag_col
    if doc:
      meta["docstart"] = doc
    if k == len(cf.blocks) - 1 and cf.docstart_after:
      meta["docstart_after"] = cf.docstart_after
    out.append(Sentence(
        tokens=cols[0], tags=cols[tag_col], scheme=scheme,
        extra={f"col{i}": cols[c] for i, c in enumerate(extra_cols)},
        meta=meta, origin=f"{path_str}:{line}"))
  return out


def _docstart_text(marks) -> list[str]:
  out = []
  for text, blank in marks:
    out.append(text + "\n")
    if blank:
      out.append("\n")
  return out


def _raise_unwritable(s: Sentence, cols, sep: str) -> None:
  for i, fields in enumerate(zip(*cols)):
    for k, f in enumerate(fields):
      if (not f or sep in f or "\n" in f or "\r" in f or (sep == " " and "\t" in f)
          or (k == 0 and textfile.has_whitespace(f))):
        raise ValueError(f"{s.origin or 'sentence'}: word {i}: field {f!r} cannot be written "
                         f"in a {'tab' if sep == chr(9) else 'space'}-separated file")
  raise AssertionError("unreachable")


def format_sentences(sentences: Iterable[Sentence], *, sep: str | None = None) -> str:
  """The file text for `sentences` (see `write`)."""
  sentences = list(sentences)
  if sep is None:
    sep = sentences[0].meta.get("sep", " ") if sentences else " "
  if sep not in (" ", "\t"):
    raise ValueError(f"separator must be a space or a tab, not {sep!r}")
  names = list(sentences[0].extra) if sentences else []
  parts: list[str] = []
  for s in sentences:
    if list(s.extra) != names:
      raise ValueError(f"{s.origin or 'sentence'}: extra columns {list(s.extra)} differ from {names}: "
                       "one file has one set of columns")
    ncols = 2 + len(names)
    tag_col = s.meta.get("tag_column", ncols - 1)
    if not 0 < tag_col < ncols:
      tag_col = ncols - 1
    parts.extend(_docstart_text(s.meta.get("docstart", ())))
    cols = [s.extra[n] for n in names]
    cols.insert(tag_col - 1, s.tags)
    cols.insert(0, s.tokens)
    body = "\n".join(map(sep.join, zip(*cols)))
    if (body.count(sep) != len(s) * (ncols - 1) or body.count("\n") != len(s) - 1 or "\r" in body
        or (sep == " " and "\t" in body) or any("" in c for c in cols)
        or (sep == "\t" and " " in "".join(s.tokens))):
      _raise_unwritable(s, cols, sep)
    parts.append(body + "\n")
    parts.append("\n")
    parts.extend(_docstart_text(s.meta.get("docstart_after", ())))
  text = "".join(parts)
  if textfile.has_odd_whitespace(text):  # rare: find the token that holds it (other columns may)
    for s in sentences:
      if textfile.has_whitespace("".join(s.tokens)):
        cols = [s.tokens] + [s.extra[n] for n in names] + [s.tags]
        _raise_unwritable(s, cols, sep)
  return text


def write(path: str | os.PathLike, sentences: Iterable[Sentence], *, sep: str | None = None) -> None:
  """Writes `sentences` as a CoNLL column file that `read` returns unchanged.

  Tags are written as they are (no scheme conversion). The separator is `sep`, else the first
  sentence's `meta["sep"]`, else a space; -DOCSTART- lines in `meta` are put back.
  """
  textfile.write_text(path, format_sentences(sentences, sep=sep))
