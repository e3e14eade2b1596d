"""Reading text corpora line by line, with the errors every reader needs.

Files are decoded strictly as UTF-8 (a leading byte-order mark is dropped, CRLF line ends are
read as LF; a lone CR or a NUL byte is refused with its line). Lines are split on "\\n" only: `str.splitlines` would also break on characters such
as U+0085 or U+2028 that may sit inside a token. Bad bytes are reported with their line number,
an empty file is an error rather than an empty corpus.
"""

from __future__ import annotations

import os
import re
from typing import Iterator

from mtlws_jax.errors import InputError

_BOM = b"\xef\xbb\xbf"
# Byte-order marks of the encodings a UTF-8 reader meets by mistake (UTF-32 first: its LE mark
# starts with UTF-16 LE's).
_OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32 LE", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32 BE", "UTF-32"),
               (b"\xff\xfe", "UTF-16 LE", "UTF-16"), (b"\xfe\xff", "UTF-16 BE", "UTF-16"))


def _other_encoding(data: bytes) -> tuple[str, str] | None:
  """(name, iconv name) when the bytes are UTF-16 or UTF-32 (a byte-order mark, or text whose
  every other byte is 0), else None."""
  for bom, name, iconv in _OTHER_BOMS:
    if data.startswith(bom):
      return name, iconv
  head = data[:200]
  if len(head) >= 8 and head[1::2].count(0) >= 0.9 * len(head[1::2]) and head[0::2].count(0) == 0:
    return "UTF-16 LE (no byte-order mark)", "UTF-16LE"
  if len(head) >= 8 and head[0::2].count(0) >= 0.9 * len(head[0::2]) and head[1::2].count(0) == 0:
    return "UTF-16 BE (no byte-order mark)", "UTF-16BE"
  return None
# Any whitespace other than the ASCII space and tab the column formats separate fields with.
_ODD_WHITESPACE = re.compile(r"[^\S \t\n]")
_WHITESPACE = re.compile(r"\s")


def _read_bytes(path: str | os.PathLike) -> bytes:
  try:
    with open(path, "rb") as f:
      return f.read()
  except FileNotFoundError:
    raise InputError("no such file", path) from None
  except IsADirectoryError:
    raise InputError("is a folder, not a file", path) from None
  except OSError as e:
    raise InputError(f"cannot read the file ({e.strerror})", path) from None


def _line_col(data: bytes, pos: int) -> tuple[int, int]:
  return data.count(b"\n", 0, pos) + 1, pos - (data.rfind(b"\n", 0, pos) + 1) + 1


def read_text(path: str | os.PathLike, *, allow_blank: bool = False) -> str:
  """The file's text, CRLF read as LF, a leading BOM dropped.

  InputError for a missing or unreadable file, an empty file (blank too unless allow_blank: a
  file of empty alignment lines is data), invalid UTF-8, a NUL byte (file corruption: it would
  end up inside a token) and a carriage return not followed by LF (old Mac line ends or a stray
  byte: read as a line end it would shift every later line number).
  """
  data = _read_bytes(path)
  other = _other_encoding(data)
  if other:
    raise InputError(f"the file is {other[0]}, the readers take UTF-8: convert it, e.g. "
                     f"iconv -f {other[1]} -t UTF-8 FILE > FILE.utf8", path)
  if data.startswith(_BOM):
    data = data[len(_BOM):]
  if not data or (not allow_blank and not data.strip()):
    raise InputError("empty file (no sentences)", path, 1)
  nul = data.find(b"\x00")
  if nul >= 0:
    line, col = _line_col(data, nul)
    raise InputError(f"NUL byte at column {col} (a corrupted or binary file)", path, line)
  cr = data.replace(b"\r\n", b"\n\n").find(b"\r")  # same length: positions stay valid
  if cr >= 0:
    line, col = _line_col(data.replace(b"\r\n", b" \n"), cr)
    raise InputError(f"carriage return (CR) without a line feed at column {col}; convert the line "
                     "ends (e.g. mac2unix FILE) or remove the stray byte", path, line)
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data.count(b"\n", 0, e.start) + 1
    column = e.start - (data.rfind(b"\n", 0, e.start) + 1) + 1
    bad = data[e.start:e.end].hex(" ")
    raise InputError(f"invalid UTF-8 (byte {bad} at column {column}): {e.reason}", path, line) from None
  if "\r" in text:
    text = text.replace("\r\n", "\n")
  stray = text.find("\ufeff")
  if stray >= 0:  # a second BOM (files concatenated) or a zero-width no-break space in a token
    line = text.count("\n", 0, stray) + 1
    raise InputError(f"byte-order mark (U+FEFF) inside the text at column {stray - text.rfind(chr(10), 0, stray)}"
                     " (files concatenated with their BOMs?); remove it", path, line)
  return text


def read_lines(path: str | os.PathLike, *, allow_blank: bool = False) -> list[str]:
  """The file's lines without their line ends (checked as `read_text`)."""
  lines = read_text(path, allow_blank=allow_blank).split("\n")
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


def sha256(path: str | os.PathLike) -> str:
  """Hex sha256 of a file's bytes, read in blocks (a 470 MB checkpoint never sits in memory)."""
  import hashlib
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 22), b""):
      h.update(block)
  return h.hexdigest()


def write_text(path: str | os.PathLike, text: str) -> None:
  """UTF-8, LF line ends whatever the platform (so files compare byte for byte), whole or not at
  all: a regular file is written beside itself as .NAME.PID.tmp and renamed (a full disk leaves no
  half file), a device or pipe (/dev/stdout) in place. A failure is an OSError naming `path`."""
  path = os.fspath(path)
  special = os.path.exists(path) and not os.path.isfile(path)
  head, name = os.path.split(path)
  tmp = os.path.join(head, f".{name}.{os.getpid()}.tmp")
  try:
    with open(path if special else tmp, "w", encoding="utf-8", newline="") as f:
      f.write(text)
    if not special:
      os.replace(tmp, path)
  except OSError as e:
    if not special:
      try:
        os.unlink(tmp)
      except OSError:
        pass
    raise OSError(e.errno, e.strerror, path) from None


def column_mismatch(counts: list[tuple[int, int]], path, what: str = "lines") -> InputError:
  """The error for lines whose column counts differ: blames the first line that differs from the
  count most lines have (not the file's first line, which may be the odd one).

  counts: (line number, number of columns) of the lines that must agree.
  """
  import collections
  tally = collections.Counter(n for _, n in counts)
  expected, _ = max(tally.items(), key=lambda kv: (kv[1], -min(l for l, n in counts if n == kv[0])))
  line, n = next((l, c) for l, c in counts if c != expected)
  example = next(l for l, c in counts if c == expected)
  return InputError(f"{n} column{'s' if n != 1 else ''}, expected {expected} as on {tally[expected]} of the "
                    f"{len(counts)} {what} (e.g. line {example})", path, line)
