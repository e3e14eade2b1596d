"""Unified ABSA reader/writer: T-X runs <-> BIOES+polarity, categories, round trips, bad input."""

from __future__ import annotations

import pytest

from mtlws_jax.data import absa, conll
from mtlws_jax.errors import InputError

GOLD = (
    "The\tO\tNIL\nfood\tT-NEG\tFOOD#QUALITY\narrived\tO\tNIL\ncold\tO\tNIL\n\n"
    "Great\tO\tNIL\nwine\tT-POS\tDRINKS#QUALITY\nlist\tT-POS\tDRINKS#QUALITY\nand\tO\tNIL\n"
    "lousy\tO\tNIL\nhappy\tT-NEU\tNIL\nhour\tT-NEU\tNIL\nspecials\tT-NEU\tNIL\n.\tO\tNIL\n\n"
    "pizza\tT-POS\tFOOD\nservice\tT-NEG\tSERVICE\n\n")


def _write(tmp_path, text, name="f.txt", raw=None):
  p = tmp_path / name
  p.write_bytes(raw if raw is not None else text.encode("utf-8"))
  return p


def test_reads_runs_as_bioes_with_polarity(tmp_path):
  p = _write(tmp_path, GOLD)
  s = absa.read(p)
  assert len(s) == 3
  assert s[0].tags == ("O", "S-NEG", "O", "O")
  assert s[1].tags == ("O", "B-POS", "E-POS", "O", "O", "B-NEU", "I-NEU", "E-NEU", "O")
  assert s[2].tags == ("S-POS", "S-NEG")  # touching aspects of different polarity stay apart
  assert all(x.scheme == "bioes" for x in s)
  assert s[1].extra == {"category": ("NIL", "DRINKS#QUALITY", "DRINKS#QUALITY", "NIL", "NIL", "NIL", "NIL",
                                     "NIL", "NIL")}
  assert s[2].origin == f"{p}:16"


def test_round_trip_is_byte_identical(tmp_path):
  s = absa.read(_write(tmp_path, GOLD))
  out = tmp_path / "out.txt"
  assert absa.write(out, s) == 0
  assert out.read_text(encoding="utf-8") == GOLD
  assert [x.replace(origin="") for x in absa.read(out)] == [x.replace(origin="") for x in s]


def test_writer_repairs_predictions_and_counts(tmp_path):
  s = absa.read(_write(tmp_path, GOLD))[0]
  pred = s.replace(tags=("I-POS", "E-POS", "O", "O"))  # ill-formed: a chunk starting with I-
  out = tmp_path / "pred.txt"
  assert absa.write(out, [pred]) == 1
  assert absa.read(out)[0].tags == ("B-POS", "E-POS", "O", "O")
  assert out.read_text().splitlines()[:2] == ["The\tT-POS\tNIL", "food\tT-POS\tFOOD#QUALITY"]


def test_writer_refuses_touching_aspects_of_one_polarity(tmp_path):
  s = absa.read(_write(tmp_path, GOLD))[2]
  with pytest.raises(ValueError, match="touch"):
    absa.write(tmp_path / "o.txt", [s.replace(tags=("S-POS", "S-POS"))])


def test_writer_needs_a_category(tmp_path):
  s = absa.read(_write(tmp_path, GOLD))[2].replace(extra={})
  with pytest.raises(ValueError, match="category"):
    absa.write(tmp_path / "o.txt", [s])
  absa.write(tmp_path / "o.txt", [s], default_category="NIL")
  assert absa.read(tmp_path / "o.txt")[0].extra["category"] == ("NIL", "NIL")


def test_writer_takes_iob2_records(tmp_path):
  s = conll.read(_write(tmp_path, "good B-POS\nfood I-POS\n\n", "c.txt"))
  assert absa.write(tmp_path / "o.txt", s, default_category="NIL") == 0
  assert absa.read(tmp_path / "o.txt")[0].tags == ("B-POS", "E-POS")


@pytest.mark.parametrize("text,line,problem", [
    ("a\tO\tNIL\nb\tT-POSITIVE\tNIL\n\n", 2, "unknown tag 'T-POSITIVE'"),
    ("a\tO\tNIL\n\nb\tB-POS\tNIL\n\n", 3, "unknown tag 'B-POS'"),
    ("a\tO\n\n", 1, "2 columns, expected 3"),
    ("a\tO\tNIL\nb\tO\n\n", 2, "2 columns, expected 3"),
    ("a\tO\tNIL\n\tO\tNIL\n\n", 2, "empty column 1"),
])
def test_bad_input(tmp_path, text, line, problem):
  p = _write(tmp_path, text, "bad.txt")
  with pytest.raises(InputError) as e:
    absa.read(p)
  assert e.value.path == str(p) and e.value.line == line and problem in e.value.problem


@pytest.mark.parametrize("raw,line", [(b"", 1), (b"a\tO\tNIL\n\xe2\x82\n\n", 2)])
def test_empty_and_undecodable(tmp_path, raw, line):
  with pytest.raises(InputError) as e:
    absa.read(_write(tmp_path, None, "bad.txt", raw=raw))
  assert e.value.line == line


def test_easy_label_projection_files_are_conll(tmp_path):
  # original/en/en.absa.train.tsv: space-separated IOB2 over TARGET.
  en = conll.read(_write(tmp_path, "Judging O\ngood O\nplace B-TARGET\nto I-TARGET\n\n", "en.tsv"))
  assert en[0].tags == ("O", "O", "B-TARGET", "I-TARGET") and en[0].scheme == "iob2"
  # manual_projections/en2es/DeepL.Iker.train.tsv: token TAG QUALITY, tab-separated.
  es = conll.read(_write(tmp_path, "A\tO\t-\nlugar,\tB-TARGET\tHighQuality\n\n", "es.tsv"), tag_column=1)
  assert es[0].tags == ("O", "B-TARGET") and es[0].extra == {"col0": ("-", "HighQuality")}
