"""CoNLL column reader/writer: formats, scheme detection, -DOCSTART-, round trips, bad input."""

from __future__ import annotations

import pytest

from mtlws_jax.data import conll
from mtlws_jax.errors import InputError

EN_STYLE = (  # CoNLL-2003 as distributed: -DOCSTART- then a blank line
    "-DOCSTART- O\n\n"
    "EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\n"
    "Peter B-PER\nBlackburn I-PER\n\n"
    "-DOCSTART- O\n\n"
    "BRUSSELS B-LOC\n1996-08-22 O\n\n")
NL_STYLE = (  # CoNLL-2002 Dutch: -DOCSTART- glued to the first sentence
    "-DOCSTART- O\nDe O\ntekst O\n\nEen O\nzin O\n\n"
    "-DOCSTART- O\nAntwerpen B-LOC\n\n")
FOUR_COLUMNS = (
    "-DOCSTART- -X- -X- O\n\n"
    "EU NNP B-NP I-ORG\nrejects VBZ B-VP O\nGerman JJ B-NP I-MISC\n\n"
    "Japan NNP B-NP I-LOC\n, , O O\n\n")


def _write(tmp_path, text, name="f.txt", raw: bytes | None = None):
  p = tmp_path / name
  p.write_bytes(raw if raw is not None else text.encode("utf-8"))
  return p


def test_reads_en_style_and_drops_docstart(tmp_path):
  p = _write(tmp_path, EN_STYLE)
  s = conll.read(p)
  assert [x.tokens for x in s] == [("EU", "rejects", "German", "call"), ("Peter", "Blackburn"),
                                   ("BRUSSELS", "1996-08-22")]
  assert s[0].tags == ("B-ORG", "O", "B-MISC", "O")
  assert all(x.scheme == "iob2" for x in s)
  assert s[0].meta["docstart"] == (("-DOCSTART- O", True),)
  assert "docstart" not in s[1].meta
  assert s[2].meta["docstart"] == (("-DOCSTART- O", True),)
  assert s[0].extra == {} and s[0].origin == f"{p}:3"
  assert s[2].origin == f"{p}:13"


def test_reads_nl_style_docstart_without_blank_line(tmp_path):
  s = conll.read(_write(tmp_path, NL_STYLE))
  assert [x.tokens for x in s] == [("De", "tekst"), ("Een", "zin"), ("Antwerpen",)]
  assert s[0].meta["docstart"] == (("-DOCSTART- O", False),)
  assert s[2].meta["docstart"] == (("-DOCSTART- O", False),)


@pytest.mark.parametrize("text", [EN_STYLE, NL_STYLE, FOUR_COLUMNS])
def test_round_trip_gives_same_file_and_records(tmp_path, text):
  p = _write(tmp_path, text)
  s = conll.read(p)
  out = tmp_path / "out.txt"
  conll.write(out, s)
  assert out.read_text(encoding="utf-8") == text
  again = conll.read(out)
  assert [x.replace(origin="") for x in again] == [x.replace(origin="") for x in s]


def test_extra_columns_tab_separated_and_iob1(tmp_path):
  tabbed = FOUR_COLUMNS.replace(" ", "\t").replace("-DOCSTART-\t-X-\t-X-\tO", "-DOCSTART- -X- -X- O")
  s = conll.read(_write(tmp_path, tabbed))
  assert s[0].extra == {"col0": ("NNP", "VBZ", "JJ"), "col1": ("B-NP", "B-VP", "B-NP")}
  assert s[0].tags == ("I-ORG", "O", "I-MISC")
  assert s[0].scheme == "iob1"  # I- starts chunks, no B- does
  assert s[0].meta["sep"] == "\t"
  out = tmp_path / "out.txt"
  conll.write(out, s)
  assert out.read_text(encoding="utf-8") == tabbed


def test_scheme_detection_and_override(tmp_path):
  bioes = "A S-PER\nB O\nC B-LOC\nD E-LOC\n\n"
  assert conll.read(_write(tmp_path, bioes, "b.txt"))[0].scheme == "bioes"
  iob1 = "A I-PER\nB B-PER\nC O\n\n"
  assert conll.read(_write(tmp_path, iob1, "i1.txt"))[0].scheme == "iob1"
  forced = conll.read(_write(tmp_path, iob1, "i1b.txt"), scheme="iob2")
  assert forced[0].scheme == "iob2" and forced[0].tags == ("I-PER", "B-PER", "O")  # not repaired


def test_ill_formed_sequences_are_kept_as_read(tmp_path):
  s = conll.read(_write(tmp_path, "A B-LOC\nB I-PER\nC O\nD I-ORG\nE B-ORG\n\n"))
  assert s[0].tags == ("B-LOC", "I-PER", "O", "I-ORG", "B-ORG")
  assert s[0].scheme == "iob2"


def test_crlf_and_bom_read_like_lf(tmp_path):
  plain = conll.read(_write(tmp_path, EN_STYLE, "lf.txt"))
  crlf = conll.read(_write(tmp_path, None, "crlf.txt", raw=b"\xef\xbb\xbf" + EN_STYLE.replace("\n", "\r\n").encode()))
  assert [x.replace(origin="") for x in crlf] == [x.replace(origin="") for x in plain]
  assert all("\r" not in t and "\ufeff" not in t for x in crlf for t in x.tokens + x.tags)


def test_missing_final_blank_line_and_extra_blank_lines(tmp_path):
  s = conll.read(_write(tmp_path, "\n\nA B-PER\n\n\n  \nB O\nC B-LOC"))
  assert [x.tokens for x in s] == [("A",), ("B", "C")]
  assert s[1].tags == ("O", "B-LOC")


def test_mangled_docstart_is_a_token(tmp_path):
  s = conll.read(_write(tmp_path, "-DOCSTART- O\n\nA O\n\n-OCSTART- O\n\n- O\n\n"))
  assert [x.tokens for x in s] == [("A",), ("-OCSTART-",), ("-",)]


def test_trailing_docstart_is_kept(tmp_path):
  text = "A O\n\n-DOCSTART- O\n\n"
  p = _write(tmp_path, text)
  s = conll.read(p)
  assert len(s) == 1 and s[0].meta["docstart_after"] == (("-DOCSTART- O", True),)
  out = tmp_path / "o.txt"
  conll.write(out, s)
  assert out.read_text() == text


def test_tag_column(tmp_path):
  text = "A\tO\t-\nlugar,\tB-TARGET\tHighQuality\nbueno\tI-TARGET\tLowQuality\n\n"
  s = conll.read(_write(tmp_path, text), tag_column=1)
  assert s[0].tags == ("O", "B-TARGET", "I-TARGET")
  assert s[0].extra == {"col0": ("-", "HighQuality", "LowQuality")}
  out = tmp_path / "o.txt"
  conll.write(out, s)
  assert out.read_text() == text
  with pytest.raises(InputError, match=r"f.txt:1: unknown tag '-'"):
    conll.read(tmp_path / "f.txt")  # the last column is not a tag column here


def _error(tmp_path, text=None, raw=None, **kw) -> InputError:
  p = _write(tmp_path, text, "bad.txt", raw=raw)
  with pytest.raises(InputError) as e:
    conll.read(p, **kw)
  assert e.value.path == str(p)
  return e.value


@pytest.mark.parametrize("text,line,problem", [
    ("A O\nB O\n\nC B-PER x\n\n", 4, "3 columns, expected 2 as on 2 of the 3 word lines (e.g. line 1)"),
    ("A O x\nB O\nC O\n\n", 1, "3 columns, expected 2 as on 2 of the 3 word lines (e.g. line 2)"),
    ("A O\nB\n\n", 2, "1 column, expected 2"),
    ("A O\n\nB O\nC PER\n\n", 4, "unknown tag 'PER'"),
    ("A O\nB B-\n\n", 2, "unknown tag 'B-'"),
    ("A O\nB X-PER\n\n", 2, "unknown tag 'X-PER'"),
    ("A O\nB T-POS\n\n", 2, "unknown tag 'T-POS'"),
    ("A O\nB -DOCSTART-\n\n", 2, "unknown tag '-DOCSTART-'"),
    ("A O\n-DOCSTART- O\n\n", 2, "-DOCSTART- inside a sentence"),
    ("A\tO\nNew York\tB-LOC\n\n", 2, "contains whitespace"),
    ("A\tO\nB\t\n\n", 2, "empty column 2"),
    ("A O\nB\u00a0C O\n\n", 2, "contains whitespace"),
    ("A\n\n", 1, "expected at least a token and a tag"),
])
def test_bad_input_names_line_and_problem(tmp_path, text, line, problem):
  e = _error(tmp_path, text)
  assert e.line == line and problem in e.problem
  assert str(e).startswith(f"{tmp_path / 'bad.txt'}:{line}: ")


def test_explicit_scheme_rejects_other_prefixes(tmp_path):
  e = _error(tmp_path, "A B-PER\nB E-PER\n\n", scheme="iob2")
  assert e.line == 2 and "E-PER" in e.problem


@pytest.mark.parametrize("raw,line,problem", [
    (b"", 1, "empty file"),
    (b"\n \n\n", 1, "empty file"),
    (b"\xef\xbb\xbf", 1, "empty file"),
    (b"-DOCSTART- O\n\n", 1, "no sentences"),
    (b"A O\nB O\n\nC\xff O\n\n", 4, "invalid UTF-8"),
    (b"A O\n\xc3\n\n", 2, "invalid UTF-8"),
])
def test_empty_and_undecodable_files(tmp_path, raw, line, problem):
  e = _error(tmp_path, raw=raw)
  assert e.line == line and problem in e.problem


def test_tag_column_out_of_range(tmp_path):
  e = _error(tmp_path, "A O\n\n", tag_column=5)
  assert "tag column 5" in e.problem
  with pytest.raises(InputError):
    conll.read(tmp_path / "bad.txt", tag_column=0)


def test_writer_refuses_what_it_cannot_write(tmp_path):
  s = conll.read(_write(tmp_path, "A O\nB B-PER\n\n"))
  with pytest.raises(ValueError, match="cannot be written"):
    conll.write(tmp_path / "o.txt", [s[0].replace(tokens=("A B", "C"))])
  with pytest.raises(ValueError, match="extra columns"):
    conll.write(tmp_path / "o.txt", [s[0], s[0].replace(extra={"col0": ("x", "y")})])
  # A tab-separated file can hold a space inside an extra column.
  conll.write(tmp_path / "o.txt", [s[0].replace(extra={"col0": ("x y", "z")})], sep="\t")
  assert conll.read(tmp_path / "o.txt")[0].extra["col0"] == ("x y", "z")


@pytest.mark.parametrize("text", [
    EN_STYLE, NL_STYLE, FOUR_COLUMNS, FOUR_COLUMNS.replace(" ", "\t"), "\n\nA B-PER\n\n\n  \nB O\nC B-LOC",
    "A O\n\n-DOCSTART- O\n\n", "-DOCSTART- O\n-DOCSTART- O\nA O\n\n-DOCSTART- O", "A  O\n B O \n\n",
    "A\tO\t-\nlugar,\tB-TARGET\tHigh Quality\n\n",
])
def test_fast_and_line_by_line_paths_agree(tmp_path, text):
  p = _write(tmp_path, text)
  assert conll.read_columns(p) == conll.read_columns(p, fast=False)
  assert conll.read_columns(p, docstart=False) == conll.read_columns(p, docstart=False, fast=False)


def test_writer_refuses_whitespace_in_tokens(tmp_path):
  s = conll.read(_write(tmp_path, "A O\nB B-PER\n\n"))[0]
  for bad in ("A\u00a0B", "A\tB", "A\nB", "A\r", ""):
    with pytest.raises(ValueError, match="word 0"):
      conll.format_sentences([s.replace(tokens=(bad, "B"))])


def test_a_doubled_prefix_is_read_as_written_with_a_warning(tmp_path):
  """Issue 26, class 7: B-I-PER is a legal tag (label I-PER) but almost surely a typo: one warning
  naming the first place and every such tag; clean files say nothing."""
  from absl import logging as absl_logging
  path = tmp_path / "d.conll"
  path.write_text("EU B-ORG\nrejects O\n\nHe O\nmet B-I-PER\nMerkel I-I-PER\n\nin O\nB-LOC B-I-LOC\n\n")
  seen = []
  handler = lambda msg, *args: seen.append(msg % args)
  orig = absl_logging.warning
  absl_logging.warning = handler
  try:
    recs = conll.read(path)
    assert [s.tags for s in recs][1] == ("O", "B-I-PER", "I-I-PER")  # kept as written
    assert seen == [f"{path}:5: tag 'B-I-PER' reads as label 'I-PER' (a doubled prefix?); 3 such tag(s): "
                    "B-I-LOC, B-I-PER, I-I-PER"]
    seen.clear()
    path.write_text("EU B-ORG\nrejects O\n\n")
    conll.read(path)
    assert seen == []
  finally:
    absl_logging.warning = orig


def test_one_seed_rule_for_alignment_and_projection(tmp_path):
  """Issue 26, class 7: a seed beyond 63 bits is refused by both commands with the same line."""
  import subprocess
  import sys
  src, tgt = tmp_path / "en.conll", tmp_path / "es.tok"
  src.write_text("EU B-ORG\n\n")
  tgt.write_text("UE\n")
  big = str(2 ** 64 + 1)
  for cmd in (["mtlws_jax.projection", "--task=ner", f"--src={src}", f"--tgt-tokens={tgt}", "--aligner=eflomal",
               f"--out={tmp_path / 'o.conll'}"],
              ["mtlws_jax.projection.align", f"--src={tgt}", f"--tgt={tgt}", f"--out={tmp_path / 'o.txt'}"]):
    p = subprocess.run([sys.executable, "-m", *cmd, f"--seed={big}"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and f"--seed must be -1 (unseeded) or in [0, 2^63), got {big}" in p.stderr, p.stderr
    assert not list(tmp_path.glob("o.*"))
