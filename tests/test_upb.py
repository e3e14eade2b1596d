"""Universal Proposition Bank reader/writer: both layouts, instances, round trips, bad input."""

from __future__ import annotations

import pytest

from mtlws_jax.data import textfile, upb
from mtlws_jax.errors import InputError


def _conllu(*blocks: list[str]) -> str:
  """Blocks of lines; word lines written with spaces between columns, `<e>` for an empty one."""
  out = []
  for block in blocks:
    for line in block:
      out.append(line if line.startswith("#") else "\t".join("" if f == "<e>" else f for f in line.split(" ")))
    out.append("")
  return "\n".join(out) + "\n"


UP1_NO_PRED = ["# sentence-text: Aviator, un film.",
               "1 Aviator Aviator PROPN PROPN _ 0 root _ _",
               "2 , , PUNCT PUNCT _ 1 punct _ _"]
UP1_TWO_PRED = ["# sent_id dev-s1",
                "# text = Les études durent du temps.",
                "1 Les le DET DET _ 2 det _ _ _ _",
                "2 études étude NOUN NOUN Gender=Fem|Number=Plur 3 nsubj _ _ A1 A0",
                "3 durent durer VERB VERB _ 0 root Y last.01 _ _",
                "4-5 du _ _ _ _ _ _ _ _",
                "4 de de ADP ADP _ 6 case _ _ _ _",
                "5 le le DET DET _ 6 det _ _ _ _",
                "6 temps temps NOUN NOUN _ 3 obl _ _ AM-TMP _",
                "7 prend prendre VERB VERB _ 3 conj Y take.01 _ _",
                "8 . . PUNCT PUNCT _ 3 punct _ _ _ _"]
UP1_LAST = ["# text = Fin.", "1 Fin fin NOUN NOUN _ 0 root _ _"]
UP1 = _conllu(UP1_NO_PRED, UP1_TWO_PRED, UP1_LAST)

EWT_S1 = ["# newdoc id = weblog-1",
          "# sent_id = s1",
          "# text = Bush said Tuesday they broke through.",
          "1 Bush Bush PROPN NNP Number=Sing 2 nsubj 2:nsubj _ _ ARG0 _",
          "2 said say VERB VBD Tense=Past 0 root 0:root _ say.01 V _",
          "3 Tuesday Tuesday PROPN NNP Number=Sing 2 obl:tmod 2:obl:tmod _ _ ARGM-TMP _",
          "4 they they PRON PRP Case=Nom 5 nsubj 5:nsubj _ _ _ ARG0",
          "5 broke break VERB VBD Tense=Past 2 ccomp 2:ccomp _ break_through.26 ARG1 V",
          "5.1 has have VERB VBZ _ _ _ 2:parataxis CopyOf=-1 <e> <e>",
          "6 through through ADP RP _ 5 compound:prt 5:compound:prt SpaceAfter=No _ _ V",
          "7 . . PUNCT . _ 2 punct 2:punct _ _ _ R-ARGM-LOC"]
EWT_NO_UP = ["# propbank = no-up", "# sent_id = s2",
             "1 Hi hi INTJ UH _ 0 root 0:root _ <e> <e>",
             "2 ! ! PUNCT . _ 1 punct 1:punct _ <e> <e>"]
EWT_CV = ["# sent_id = s3",
          "1 two two NUM CD _ 3 compound 3:compound _ _ V",
          "2 - - PUNCT HYPH _ 3 punct 3:punct SpaceAfter=No _ _",
          "3 timing timing NOUN NN _ 0 root 0:root _ twotime.01 C-V"]
EWT = _conllu(EWT_S1, EWT_NO_UP, EWT_CV)


def _write(tmp_path, text, name="f.conllu", raw=None):
  p = tmp_path / name
  p.write_bytes(raw if raw is not None else text.encode("utf-8"))
  return p


def test_up1_instances(tmp_path):
  p = _write(tmp_path, UP1)
  s = upb.read(p)
  assert len(s) == 2  # one per predicate; sentences without predicates give none
  a, b = s
  assert a.tokens == ("Les", "études", "durent", "de", "le", "temps", "prend", ".")
  assert a.extra["pos"] == ("DET", "NOUN", "VERB", "ADP", "DET", "NOUN", "VERB", "PUNCT")
  assert a.extra["feats"][1] == "Gender=Fem|Number=Plur" and a.extra["head"][2] == "0"
  assert a.predicate == 2 and a.sense == "last.01" and a.scheme == "oi"
  assert a.tags == ("O", "A1", "O", "O", "O", "AM-TMP", "O", "O")
  assert b.predicate == 6 and b.sense == "take.01"
  assert b.tags == ("O", "A0", "O", "O", "O", "O", "O", "O")
  assert a.meta["layout"] == "up1" and a.meta["sentence"] == 1
  assert a.meta["comments"] == ("# sent_id dev-s1", "# text = Les études durent du temps.")
  assert a.meta["extra_lines"] == ((3, "4-5\tdu\t_\t_\t_\t_\t_\t_\t_\t_"),)
  assert a.meta["before"] == (tuple(_conllu(UP1_NO_PRED).splitlines()[:-1]),)
  assert "before" not in b.meta and b.meta["after"] == (tuple(_conllu(UP1_LAST).splitlines()[:-1]),)
  assert a.origin == f"{p}:5"


def test_ewt_instances_map_role_names(tmp_path):
  s = upb.read(_write(tmp_path, EWT))
  assert len(s) == 3
  said, broke, timing = s
  assert said.meta["layout"] == "ewt"
  assert said.tokens == ("Bush", "said", "Tuesday", "they", "broke", "through", ".")  # no empty node
  assert said.predicate == 1 and said.sense == "say.01"
  assert said.tags == ("A0", "O", "AM-TMP", "O", "A1", "O", "O")
  assert said.meta["predicate_mark"] == "V"
  # The particle of a phrasal verb keeps its V; R-ARGM-LOC maps to R-AM-LOC.
  assert broke.predicate == 4 and broke.tags == ("O", "O", "O", "A0", "O", "V", "R-AM-LOC")
  assert said.extra["deps"][0] == "2:nsubj" and said.extra["misc"][5] == "SpaceAfter=No"
  assert said.meta["extra_lines"][0][0] == 5
  # The SENSE word holds C-V (its V is on "two"): the predicate cell keeps its role.
  assert timing.predicate == 2 and timing.tags == ("V", "O", "C-V")
  assert timing.meta["predicate_mark"] == "C-V"
  assert timing.meta["before"] == (tuple(_conllu(EWT_NO_UP).splitlines()[:-1]),)


@pytest.mark.parametrize("text", [UP1, EWT])
def test_round_trip_is_byte_identical(tmp_path, text):
  s = upb.read(_write(tmp_path, text))
  out = tmp_path / "out.conllu"
  upb.write(out, s)
  assert out.read_text(encoding="utf-8") == text
  assert [x.replace(origin="") for x in upb.read(out)] == [x.replace(origin="") for x in s]


def test_writer_writes_predictions_in_sentence_order(tmp_path):
  a, b = upb.read(_write(tmp_path, UP1))
  pred_b = b.replace(tags=("O", "O", "A1", "O", "O", "O", "O", "A2"))
  out = tmp_path / "pred.conllu"
  upb.write(out, [pred_b, a])  # columns follow the predicates' order in the sentence
  got = upb.read(out)
  assert [g.predicate for g in got] == [2, 6]
  assert got[1].tags == pred_b.tags and got[0].tags == a.tags


def test_writer_layout_override_maps_roles_back(tmp_path):
  a, b = upb.read(_write(tmp_path, UP1))
  out = tmp_path / "ewt.conllu"
  upb.write(out, [a, b], layout="ewt")
  line = [l for l in out.read_text().splitlines() if l.startswith("6\t")][0]
  assert line.split("\t")[-2:] == ["ARGM-TMP", "_"]
  assert out.read_text().splitlines()[1].count("\t") == 10  # the sentence without predicates too
  got = upb.read(out)
  assert got[0].meta["layout"] == "ewt" and got[0].tags == a.tags and got[1].tags == b.tags
  ewt = upb.read(_write(tmp_path, EWT, "e.conllu"))
  upb.write(out, ewt, layout="up1")
  back = upb.read(out)
  assert back[0].meta["layout"] == "up1"
  assert [(x.predicate, x.sense, x.tags) for x in back] == [(x.predicate, x.sense, x.tags) for x in ewt]


def test_writer_rejects_non_instances(tmp_path):
  a = upb.read(_write(tmp_path, UP1))[0]
  with pytest.raises(ValueError, match="no predicate"):
    upb.write(tmp_path / "o.conllu", [a.replace(predicate=None)])
  with pytest.raises(ValueError, match="two instances"):
    upb.write(tmp_path / "o.conllu", [a, a])


def test_propbank_names_round_trip():
  for role in ["ARG0", "ARGM-TMP", "R-ARG1", "C-ARGM-LOC", "ARG1-DSP", "ARGA", "V", "C-V"]:
    assert upb.to_propbank3(upb.from_propbank3(role)) == role
  assert [upb.from_propbank3(r) for r in ["ARG0", "ARGM-TMP", "R-ARG1", "ARGA"]] == ["A0", "AM-TMP", "R-A1", "AA"]


def test_layout_auto_and_explicit(tmp_path):
  p = _write(tmp_path, UP1)
  assert upb.read_sentences(p)[0] == "up1"
  assert upb.read_sentences(_write(tmp_path, EWT, "e.conllu"))[0] == "ewt"
  with pytest.raises(InputError):  # UP 1.0 columns read as EWT: predicates counted by SENSE do not fit
    upb.read(p, layout="ewt")


@pytest.mark.parametrize("text", [UP1, EWT])
def test_fast_and_checked_block_parsers_agree(text):
  layout = "ewt" if text is EWT else "up1"
  for start, block in textfile.blocks(text.split("\n")):
    fast = upb._parse_block_fast(start, block, layout)
    assert fast is not None and fast == upb._parse_block_checked(start, block, layout, "f")


def _error(tmp_path, text=None, raw=None, **kw) -> InputError:
  p = _write(tmp_path, text, "bad.conllu", raw=raw)
  with pytest.raises(InputError) as e:
    upb.read(p, **kw)
  assert e.value.path == str(p)
  return e.value


def _swap(block, old, new):
  return [l.replace(old, new) for l in block]


@pytest.mark.parametrize("blocks,line,problem", [
    # One Y flag but two predicate columns (the error points at the first word line).
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "conj Y take.01", "conj _ _")], 7,
     "2 predicate columns but 1 predicates (Y flags)"),
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "root Y last.01", "root X last.01")], 9, "PRED column holds 'X'"),
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "6 case _ _ _ _", "6 case _ _ _")], 11, "11 columns, expected 12 as on"),
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "6 temps", "7 temps")], 13, "word ID 7, expected 6"),
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "4-5 du", "4_5 du")], 10, "bad word ID '4_5'"),
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "obl _ _ AM-TMP", "obl _ _ O")], 13, "predicate column 1 holds 'O'"),
    ([UP1_NO_PRED, UP1_TWO_PRED[:3] + ["# late comment"] + UP1_TWO_PRED[3:]], 8, "comment line after the words"),
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "durer VERB VERB _ 0 root", "durer VERB VERB _ 0")], 9,
     "11 columns, expected 12"),
    ([["1 Aviator Aviator PROPN PROPN _ 0 root"]], 1, "8 columns, expected at least 10"),
    ([UP1_NO_PRED, _swap(UP1_TWO_PRED, "3 nsubj _ _ A1 A0", "3 nsubj _ _ <e> A0")], 8, "holds ''"),
    ([UP1_NO_PRED, UP1_LAST], 1, "no predicates in any sentence"),
])
def test_bad_up1_input(tmp_path, blocks, line, problem):
  e = _error(tmp_path, _conllu(*blocks))
  assert e.line == line and problem in e.problem, str(e)
  # The fast parser gives up on the bad sentence, so the checked one names the problem.
  bad = [b for b in textfile.blocks(_conllu(*blocks).split("\n")) if b[0] <= line][-1]
  if "no predicates" not in problem:
    assert upb._parse_block_fast(bad[0], bad[1], "up1") is None


def test_bad_ewt_input(tmp_path):
  e = _error(tmp_path, _conllu(_swap(EWT_S1, "ARGM-TMP", "AM-TMP")))
  assert e.line == 6 and "not a PropBank-3 role name" in e.problem
  e = _error(tmp_path, _conllu(_swap(EWT_S1, "_ say.01 V _", "_ _ V _")))
  assert e.line == 4 and "2 predicate columns but 1 predicates (words with a SENSE)" in e.problem


@pytest.mark.parametrize("raw,line,problem", [
    (b"", 1, "empty file"),
    (b"\n\n", 1, "empty file"),
    (b"# only a comment\n\n", 1, "no sentences"),
    # The first "temps" is in the "# text = ..." comment on line 6.
    (_conllu(UP1_NO_PRED, UP1_TWO_PRED).encode().replace("temps".encode(), b"t\xe9mps"), 6, "invalid UTF-8"),
])
def test_empty_and_undecodable(tmp_path, raw, line, problem):
  e = _error(tmp_path, raw=raw)
  assert e.line == line and problem in e.problem
