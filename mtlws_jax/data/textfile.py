"""Reading text corpora line by line, with the errors every reader needs.

Files are decoded strictly as UTF-8 (a leading byte-order mark is dropped, CRLF line ends are
read as LF). Lines are split on "\\n" only: `str.splitlines` would also break on characters such
as U+0085 or U+2028 that may sit inside a token. Bad bytes are reported with their line number,
an empty file is an error rather than an empty corpus.
"""

from __future__ import annotations

import os
import re
from typing import Iterator

from mtlws_jax.errors import InputError

_BOM = b"\xef\xbb\xbf"
# Any whitespace other than the ASCII space and tab the column formats separate fields with.
_ODD_WHITESPACE = re.compile(r"[^\S \t\n]")
_WHITESPACE = re.compile(r"\s")


def read_text(path: str | os.PathLike) -> str:
  """The file's text, CRLF read as LF; InputError for an empty file or invalid UTF-8."""
  with open(path, "rb") as f:
    data = f.read()
  if data.startswith(_BOM):
    data = data[len(_BOM):]
  if not data.strip():
    raise InputError("empty file (no sentences)", path, 1)
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data.count(b"\n", 0, e.start) + 1
    column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
    bad = data[e.start:e.end].hex(" ")
    raise InputError(f"invalid UTF-8 (byte {bad} at column {column}): {e.reason}", path, line) from None
  if "\r" in text:
    text = text.replace("\r\n", "\n")
  return text


def read_lines(path: str | os.PathLike) -> list[str]:
  """The file's lines without their line ends; InputError for an empty file or invalid UTF-8."""
  lines = read_text(path).split("\n")
  if lines and lines[-1] == "":
    lines.pop()
  return lines


def odd_whitespace_lines(text: str) -> set[int]:
  """1-based numbers of the lines holding whitespace other than space and tab (usually none)."""
  out, line, pos = set(), 1, 0
  for m in _ODD_WHITESPACE.finditer(text):
    line += text.count("\n", pos, m.start())
    pos = m.start()
    out.add(line)
  return out


def is_blank(line: str) -> bool:
  return not line.strip(" \t")


def blocks(lines: list[str]) -> Iterator[tuple[int, list[str]]]:
  """(1-based number of the first line, lines) of each run of non-blank lines."""
  start, block = 0, []
  for i, line in enumerate(lines, 1):
    if is_blank(line):
      if block:
        yield start, block
        block = []
    else:
      if not block:
        start = i
      block.append(line)
  if block:
    yield start, block


def has_odd_whitespace(text: str) -> bool:
  """True if `text` holds whitespace other than ASCII space or tab (e.g. U+00A0)."""
  return _ODD_WHITESPACE.search(text) is not None


def has_whitespace(text: str) -> bool:
  return _WHITESPACE.search(text) is not None


def write_text(path: str | os.PathLike, text: str) -> None:
  """UTF-8, LF line ends whatever the platform (so files compare byte for byte)."""
  with open(path, "w", encoding="utf-8", newline="") as f:
    f.write(text)
