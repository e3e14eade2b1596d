"""Text reading shared by the corpus readers: BOM, CRLF, strict UTF-8 with line numbers, blocks."""

from __future__ import annotations

import pytest

from mtlws_jax.data import textfile
from mtlws_jax.errors import InputError


def _write(tmp_path, raw: bytes):
  p = tmp_path / "f.txt"
  p.write_bytes(raw)
  return p


def test_bom_and_crlf(tmp_path):
  p = _write(tmp_path, b"\xef\xbb\xbfa b\r\nc d\r\n\r\ne f\r\n")
  assert textfile.read_text(p) == "a b\nc d\n\ne f\n"
  assert textfile.read_lines(p) == ["a b", "c d", "", "e f"]


def test_only_newlines_split_lines(tmp_path):
  # U+2028 and U+0085 are line breaks to str.splitlines, not to a column file.
  p = _write(tmp_path, "a\u2028b O\nc\x85 O\n".encode())
  assert textfile.read_lines(p) == ["a\u2028b O", "c\x85 O"]
  assert textfile.odd_whitespace_lines(textfile.read_text(p)) == {1, 2}
  assert textfile.odd_whitespace_lines("a b\tc\n\nd\n") == set()


def test_invalid_utf8_names_line_and_byte(tmp_path):
  p = _write(tmp_path, b"ok\nfine\nbad \xff here\n")
  with pytest.raises(InputError) as e:
    textfile.read_text(p)
  assert e.value.line == 3 and "byte ff at column 5" in e.value.problem and str(e.value).startswith(f"{p}:3: ")


@pytest.mark.parametrize("raw", [b"", b"\n\n", b" \t\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, raw):
  with pytest.raises(InputError, match="empty file") as e:
    textfile.read_text(_write(tmp_path, raw))
  assert e.value.line == 1


def test_blocks_number_their_first_line():
  lines = ["", "a", "b", " \t", "", "c", ""]
  assert list(textfile.blocks(lines)) == [(2, ["a", "b"]), (6, ["c"])]


@pytest.mark.parametrize("encoding,name,iconv", [("utf-16", "UTF-16 LE", "UTF-16"), ("utf-16-be", "UTF-16 BE (no byte-order mark)", "UTF-16BE"),
                                                  ("utf-16-le", "UTF-16 LE (no byte-order mark)", "UTF-16LE"),
                                                  ("utf-32", "UTF-32 LE", "UTF-32")])
def test_utf16_and_utf32_files_are_named_with_how_to_convert(tmp_path, encoding, name, iconv):
  """Issue 26, class 5: not "corrupted or binary" but which encoding it is and the iconv line."""
  path = tmp_path / "f.conll"
  path.write_bytes("EU B-ORG\nrejects O\n\n".encode(encoding))
  with pytest.raises(InputError) as e:
    textfile.read_text(path)
  assert str(e.value) == (f"{path}: the file is {name}, the readers take UTF-8: convert it, e.g. "
                          f"iconv -f {iconv} -t UTF-8 FILE > FILE.utf8")


def test_a_pipe_is_read_like_a_file(tmp_path):
  """Issue 26, class 5: a named pipe or process substitution is read, not called missing."""
  import os
  import subprocess
  import sys
  fifo = tmp_path / "pipe"
  os.mkfifo(fifo)
  p = subprocess.Popen([sys.executable, "-m", "mtlws_jax.data.stats", "--task=ner", "--format=conll", f"--path={fifo}"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  with open(fifo, "w") as f:
    f.write("EU B-ORG\nrejects O\n\n")
  out, err = p.communicate(timeout=120)
  assert p.returncode == 0, err
  assert '"sentences": 1' in out and '"ORG": 1' in out


def test_writes_are_whole_or_nothing_and_name_the_path(tmp_path, monkeypatch):
  """Issue 26, class 3: a failed write names the file and leaves the old one (or none), never a half."""
  import errno
  import os
  path = tmp_path / "out.txt"
  path.write_text("old\n")
  real = os.replace

  def full(src, dst):
    raise OSError(errno.ENOSPC, "No space left on device")
  monkeypatch.setattr(os, "replace", full)
  with pytest.raises(OSError) as e:
    textfile.write_text(path, "new\n")
  assert (e.value.filename, e.value.strerror) == (str(path), "No space left on device")
  assert path.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
  monkeypatch.setattr(os, "replace", real)
  textfile.write_text(path, "new\n")
  assert path.read_text() == "new\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
  with pytest.raises(OSError) as e:
    textfile.write_text(tmp_path / "no" / "such.txt", "x")
  assert e.value.filename == str(tmp_path / "no" / "such.txt")


@pytest.mark.skipif(not __import__("os").path.exists("/dev/full"), reason="no /dev/full")
def test_a_full_disk_is_one_line_naming_the_output_and_leaves_nothing(tmp_path):
  """Issue 26, class 3 through the commands: predictions, alignments, a projection and its report."""
  import subprocess
  import sys
  src, tok = tmp_path / "en.conll", tmp_path / "es.tok"
  src.write_text("EU B-ORG\nrejects O\n\nGermany B-LOC\n\n")
  tok.write_text("UE rechaza\nAlemania\n")
  cmds = {"align": ["mtlws_jax.projection.align", f"--src={tok}", f"--tgt={tok}", "--out=/dev/full"],
          "project": ["mtlws_jax.projection", "--task=ner", f"--src={src}", f"--tgt-tokens={tok}", "--aligner=eflomal",
                      "--out=/dev/full"],
          "report": ["mtlws_jax.projection", "--task=ner", f"--src={src}", f"--tgt-tokens={tok}", "--aligner=eflomal",
                     f"--out={tmp_path / 'p.conll'}", "--report=/dev/full"]}
  for name, cmd in cmds.items():
    p = subprocess.run([sys.executable, "-m", *cmd], capture_output=True, text=True, timeout=300)
    assert p.returncode == 1 and p.stderr.strip().splitlines()[-1] == "error: /dev/full: No space left on device", \
        (name, p.stderr[-1000:])
  assert not (tmp_path / "p.conll").exists()   # no --out without its report
  assert sorted(p.name for p in tmp_path.iterdir()) == ["en.conll", "es.tok"]
