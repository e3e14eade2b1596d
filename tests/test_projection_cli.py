"""`python -m mtlws_jax.projection`: NER, ABSA and SRL sets in their own formats, reports, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from mtlws_jax.data import absa, conll, upb
from mtlws_jax.errors import main_guard
from mtlws_jax.projection import __main__ as cli

NER = """-DOCSTART- O

Juventus B-ORG
has O
won O
the O
European B-MISC
Cup I-MISC
twice O

Anna B-PER
met O
Bob B-PER
"""
NER_TGT = "La Juventus ha ganado la Copa de Europa dos veces\nAnna conoció a Bob\n"
NER_LINKS = "1-1 2-3 3-4 0-1 4-7 5-5 6-8 6-9\n0-0 1-1\n"


def _files(tmp_path, src, tgt, links=None, name="src.txt"):
  (tmp_path / name).write_text(src)
  (tmp_path / "tgt.txt").write_text(tgt)
  args = [f"--src={tmp_path / name}", f"--tgt-tokens={tmp_path / 'tgt.txt'}", f"--out={tmp_path / 'out'}"]
  if links is not None:
    (tmp_path / "links.txt").write_text(links)
    args.append(f"--alignments={tmp_path / 'links.txt'}")
  return args


def _run(args, capsys):
  assert cli.main(args) == 0
  return json.loads(capsys.readouterr().out)


def test_ner_span_to_span_in_conll(tmp_path, capsys):
  summary = _run(["--task=ner"] + _files(tmp_path, NER, NER_TGT, NER_LINKS), capsys)
  out = conll.read(tmp_path / "out")
  assert [s.tags for s in out] == [
      ("O", "B-ORG", "O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O", "O"),
      ("B-PER", "O", "O", "O")]
  assert "-DOCSTART-" in (tmp_path / "out").read_text()  # document marks kept
  assert summary["sentences_in"] == 2 and summary["sentences_out"] == 2
  assert summary["spans_in"] == 4 and summary["spans_projected"] == 3
  assert summary["spans_dropped"] == {"unaligned": 1}
  reports = [json.loads(l) for l in (tmp_path / "out.report.jsonl").read_text().splitlines()]
  assert reports[0]["dropped"] == {} and reports[1]["dropped_spans"][0]["text"] == "Bob"


def test_ner_word_to_word_and_keep_complete(tmp_path, capsys):
  summary = _run(["--task=ner", "--strategy=word", "--keep=complete"] + _files(tmp_path, NER, NER_TGT, NER_LINKS),
                 capsys)
  out = conll.read(tmp_path / "out")
  assert len(out) == 1 and out[0].tags[5:8] == ("B-MISC", "O", "B-MISC")
  assert summary["sentences_out"] == 1 and summary["records_left_out"] == {"incomplete": 1}


ABSA = "The\tO\tNIL\nfish\tT-POS\tFOOD#QUALITY\ntacos\tT-POS\tFOOD#QUALITY\nrock\tO\tNIL\n\nGreat\tO\tNIL\nstaff\tT-POS\tSERVICE#GENERAL\n"


def test_absa_keeps_polarity_and_category(tmp_path, capsys):
  tgt = "Los tacos de pescado mandan\nPersonal estupendo\n"
  links = "0-0 1-3 2-1 3-4\n0-1 1-0\n"
  summary = _run(["--task=absa"] + _files(tmp_path, ABSA, tgt, links), capsys)
  out = absa.read(tmp_path / "out")
  assert out[0].tags == ("O", "B-POS", "I-POS", "E-POS", "O")
  assert out[0].extra["category"][1:4] == ("FOOD#QUALITY",) * 3
  assert out[1].tags == ("S-POS", "O")
  assert summary["spans_projected"] == 2


def test_absa_word_to_word_merges_touching_aspects(tmp_path, capsys):
  # Two source aspects of one polarity land side by side: T-X cannot separate them.
  src = "pizza\tT-POS\tFOOD\nand\tO\tNIL\npasta\tT-POS\tFOOD\n"
  summary = _run(["--task=absa", "--strategy=word"] + _files(tmp_path, src, "pizza pasta y\n", "0-0 2-1 1-2\n"),
                 capsys)
  assert absa.read(tmp_path / "out")[0].tags == ("B-POS", "E-POS", "O")
  assert summary["merged_touching"] == 1


UPB = """# sent_id = 1
1\tJuventus\tJuventus\tPROPN\tPROPN\t_\t2\tnsubj\t_\t_\tA0\t_
2\twon\twin\tVERB\tVERB\t_\t0\troot\tY\twin.01\t_\t_
3\tthe\tthe\tDET\tDET\t_\t4\tdet\t_\t_\t_\t_
4\tCup\tCup\tPROPN\tPROPN\t_\t2\tobj\t_\t_\tA1\t_
5\ttwice\ttwice\tADV\tADV\t_\t2\tadvmod\tY\ttwice.01\tAM-TMP\t_

# sent_id = 2
1\tHello\thello\tINTJ\tINTJ\t_\t0\troot\t_\t_

# sent_id = 3
1\tShe\tshe\tPRON\tPRON\t_\t2\tnsubj\t_\t_\tA0
2\tslept\tsleep\tVERB\tVERB\t_\t0\troot\tY\tsleep.01\t_
"""
UPB_TGT = "Juventus ganó la Copa dos veces\nHola\nElla durmió\n"
UPB_LINKS = "0-0 1-1 2-2 3-3 4-4 4-5\n0-0\n0-0 1-1\n"


def test_srl_projects_predicates_and_heads(tmp_path, capsys):
  summary = _run(["--task=srl"] + _files(tmp_path, UPB, UPB_TGT, UPB_LINKS, name="src.conllu"), capsys)
  out = upb.read(tmp_path / "out")
  assert [(s.tokens, s.predicate, s.sense) for s in out] == [
      (("Juventus", "ganó", "la", "Copa", "dos", "veces"), 1, "win.01"),
      (("Juventus", "ganó", "la", "Copa", "dos", "veces"), 5, "twice.01"),  # "veces": longer than "dos"
      (("Ella", "durmió"), 1, "sleep.01")]
  assert out[0].tags == ("A0", "O", "O", "A1", "O", "AM-TMP")
  assert out[0].extra["pos"] == ("_",) * 6
  assert "Hello" not in (tmp_path / "out").read_text()
  assert summary["sentences_in"] == 3 and summary["instances_in"] == 3 and summary["instances_out"] == 3
  assert summary["arguments_in"] == 4 and summary["arguments_projected"] == 4


def _pos(tokens):
  return ["NOUN"] * len(tokens)


def test_srl_pos_tagger_and_unaligned_predicate(tmp_path, capsys):
  links = "0-0 2-2 3-3 4-4 4-5\n0-0\n0-0 1-1\n"  # "won" has no link
  summary = _run(["--task=srl", f"--pos-tagger={__name__}:_pos"] +
                 _files(tmp_path, UPB, UPB_TGT, links, name="src.conllu"), capsys)
  out = upb.read(tmp_path / "out")
  assert [s.sense for s in out] == ["twice.01", "sleep.01"]
  assert out[0].extra["pos"] == ("NOUN",) * 6
  assert summary["arguments_dropped"] == {"predicate_unaligned": 3}
  assert summary["records_left_out"] == {"predicate_unaligned": 1}
  assert summary["arguments_projected"] == 1


def _toy_ner(n):
  words = [("Anna", "Ana", "B-PER"), ("Paris", "París", "B-LOC"), ("visits", "visita", "O"),
           ("loves", "ama", "O"), ("Bob", "Bob", "B-PER"), ("Rome", "Roma", "B-LOC")]
  import random
  rng = random.Random(0)
  src, tgt = [], []
  for _ in range(n):
    a, v, b = rng.choice([0, 4]), rng.choice([2, 3]), rng.choice([1, 5])
    src.append("\n".join(f"{words[k][0]} {words[k][2]}" for k in (a, v, b)))
    tgt.append(" ".join(words[k][1] for k in (a, v, b)))
  return "\n\n".join(src) + "\n", "\n".join(tgt) + "\n"


def test_eflomal_aligner_end_to_end(tmp_path, capsys):
  src, tgt = _toy_ner(60)
  for recipe, aligner in (("best", "eflomal+union+split-punct"), ("paper", "eflomal+grow-diag-final-and")):
    summary = _run(["--task=ner", "--aligner=eflomal", "--seed=1", f"--recipe={recipe}"]
                   + _files(tmp_path, src, tgt), capsys)
    assert summary["aligner"] == aligner and summary["trim_foreign"] == (recipe == "best")
    out = conll.read(tmp_path / "out")
    gold = conll.read(tmp_path / "src.txt")
    assert [s.tags for s in out] == [s.tags for s in gold]  # word-for-word toy translation
  summary = _run(["--task=ner", "--aligner=eflomal", "--seed=1", "--symmetrize=intersection", "--no-trim-foreign"]
                 + _files(tmp_path, src, tgt), capsys)  # a flag overrides its part of the recipe
  assert summary["aligner"] == "eflomal+intersection+split-punct" and summary["trim_foreign"] is False


@pytest.mark.parametrize("tgt,links,message", [
    ("a b\n", NER_LINKS, r"tgt.txt:2: 1 target sentences for 2 source sentences"),
    ("La Juventus\n\n", NER_LINKS, r"tgt.txt:2: empty target sentence"),
    ("La\tJuventus\nAnna\n", NER_LINKS, r"tgt.txt:1: line contains a tab"),
    (NER_TGT, "0-0\n0-0 9-1\n", r"links.txt:2: link '9-1': source index 9 out of range for 3"),
    (NER_TGT, "0-0\n0-0 1-4\n", r"links.txt:2: link '1-4': target index 4 out of range for 4"),
    (NER_TGT, "0-0\n", r"links.txt:2: 1 alignment lines for 2 sentence pairs"),
])
def test_bad_input_names_file_and_line(tmp_path, capsys, tgt, links, message):
  with pytest.raises(SystemExit) as e:
    main_guard(cli.main)(["--task=ner"] + _files(tmp_path, NER, tgt, links))
  assert e.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and __import__("re").search(message, err), err


def test_module_runs_as_a_command(tmp_path):
  args = ["--task=ner"] + _files(tmp_path, NER, "a b\n", NER_LINKS)
  r = subprocess.run([sys.executable, "-m", "mtlws_jax.projection"] + args, capture_output=True, text=True)
  assert r.returncode == 1 and "Traceback" not in r.stderr and "tgt.txt:2:" in r.stderr


def test_srl_two_predicates_on_one_target_word(tmp_path, capsys):
  links = "0-0 1-1 2-2 3-3 4-1\n0-0\n0-0 1-1\n"  # "won" and "twice" both onto "ganó"
  summary = _run(["--task=srl"] + _files(tmp_path, UPB, UPB_TGT, links, name="src.conllu"), capsys)
  assert [s.sense for s in upb.read(tmp_path / "out")] == ["win.01", "sleep.01"]
  assert summary["records_left_out"] == {"predicate_collision": 1}
  # "won"'s AM-TMP ("twice") now lands on "ganó", its own predicate: a collision.
  assert summary["arguments_dropped"] == {"collision": 1}
  rep = [json.loads(l) for l in (tmp_path / "out.report.jsonl").read_text().splitlines()]
  assert rep[1]["left_out"] == "predicate_collision"


def test_srl_pos_projected_from_the_source(tmp_path, capsys):
  links = "0-0 1-1 2-2 3-3 4-4 4-5\n0-0\n0-0\n"  # "durmió" has no link: "_"; "slept" is unaligned too
  _run(["--task=srl", "--pos-tagger=project"] + _files(tmp_path, UPB, UPB_TGT, links, name="src.conllu"), capsys)
  out = upb.read(tmp_path / "out")
  assert out[0].extra["pos"] == ("PROPN", "VERB", "DET", "PROPN", "ADV", "ADV")
  assert "durmió" not in (tmp_path / "out").read_text()  # its predicate has no link: left out
