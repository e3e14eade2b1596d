"""The stats command: counts on small fixtures, JSON on stdout, clean errors on bad input."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from mtlws_jax.data import stats
from mtlws_jax.errors import InputError, main_guard
import test_upb

NER = "-DOCSTART- O\n\nEU B-ORG\nrejects O\nGerman B-MISC\n\nPeter B-PER\nBlackburn I-PER\nsaid O\n\nA I-LOC\n\n"
ABSA = "The\tO\tNIL\nfood\tT-NEG\tFOOD\n\nwine\tT-POS\tD\nlist\tT-POS\tD\nstaff\tT-NEG\tS\n\n"


def _write(tmp_path, name, text=None, raw=None):
  p = tmp_path / name
  p.write_bytes(raw if raw is not None else text.encode("utf-8"))
  return p


def test_ner_counts(tmp_path):
  r = stats.compute("ner", "conll", _write(tmp_path, "n.txt", NER))
  assert r["sentences"] == 3 and r["tokens"] == 7 and r["spans"] == 4
  assert r["labels"] == {"LOC": 1, "MISC": 1, "ORG": 1, "PER": 1}
  assert r["tags"]["O"] == 2 and r["tags"]["I-LOC"] == 1
  assert r["scheme"] == "iob2" and r["ill_formed_tags"] == 1  # "A I-LOC" starts a chunk with I-


def test_absa_counts(tmp_path):
  r = stats.compute("absa", "absa-ot", _write(tmp_path, "a.txt", ABSA))
  assert r["sentences"] == 2 and r["tokens"] == 5
  assert r["spans"] == 3 and r["labels"] == {"NEG": 2, "POS": 1}  # "wine list" is one aspect run
  assert r["tags"] == {"O": 1, "S-NEG": 2, "B-POS": 1, "E-POS": 1}
  r = stats.compute("absa", "conll", _write(tmp_path, "e.txt", "good O\nplace B-TARGET\nto I-TARGET\n\n"))
  assert r["spans"] == 1 and r["labels"] == {"TARGET": 1}
  r = stats.compute("absa", "conll", _write(tmp_path, "q.txt", "a\tB-TARGET\tHighQuality\n\n"), tag_column=1)
  assert r["spans"] == 1


def test_srl_counts(tmp_path):
  r = stats.compute("srl", "upb", _write(tmp_path, "u.conllu", test_upb.UP1))
  assert r["sentences"] == 3 and r["sentences_without_predicates"] == 2
  assert r["tokens"] == 2 + 8 + 1 and r["predicates"] == 2 and r["arguments"] == 3
  assert r["labels"] == {"A0": 1, "A1": 1, "AM-TMP": 1} and r["layout"] == "up1"
  r = stats.compute("srl", "upb", _write(tmp_path, "e.conllu", test_upb.EWT))
  assert r["sentences"] == 3 and r["predicates"] == 3 and r["layout"] == "ewt"
  assert r["labels"]["R-AM-LOC"] == 1 and r["labels"]["V"] == 2 and r["labels"]["C-V"] == 1


def test_format_must_fit_task(tmp_path):
  p = _write(tmp_path, "n.txt", NER)
  with pytest.raises(InputError, match="does not fit task"):
    stats.compute("srl", "conll", p)
  with pytest.raises(InputError, match="no such file"):
    stats.compute("ner", "conll", tmp_path / "missing.txt")


def test_main_guard_exits_1_with_the_message(tmp_path, capsys):
  p = _write(tmp_path, "bad.txt", "a O\nb\n\n")
  with pytest.raises(SystemExit) as e:
    main_guard(lambda: stats.compute("ner", "conll", p))()
  assert e.value.code == 1
  assert capsys.readouterr().err == f"error: {p}:2: 1 column, expected 2 as on 1 of the 2 word lines (e.g. line 1)\n"


def _run(*args):
  root = str(pathlib.Path(__file__).resolve().parents[1])
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
  return subprocess.run([sys.executable, "-m", "mtlws_jax.data.stats", *args], capture_output=True, text=True,
                        env=env, timeout=120)


def test_cli_prints_one_json_object(tmp_path):
  p = _write(tmp_path, "n.txt", NER)
  r = _run("--task=ner", "--format=conll", f"--path={p}")
  assert r.returncode == 0, r.stderr
  out = json.loads(r.stdout)
  assert len(r.stdout.strip().splitlines()) == 1
  assert out["sentences"] == 3 and out["spans"] == 4



def test_cli_format_defaults_to_the_tasks_own_and_names_absa_as_the_other_clis_do(tmp_path):
  """--format=absa (as projection, translate and predict name it) was refused; no --format was refused."""
  p = _write(tmp_path, "a.txt", ABSA)
  outs = [_run("--task=absa", *fmt, f"--path={p}") for fmt in ([], ["--format=absa"], ["--format=absa-ot"])]
  assert all(r.returncode == 0 for r in outs), [r.stderr for r in outs]
  counts = [{k: v for k, v in json.loads(r.stdout).items() if k != "format"} for r in outs]
  assert counts[0] == counts[1] == counts[2] and counts[0]["spans"] > 0
  n = _write(tmp_path, "n.txt", NER)
  assert json.loads(_run("--task=ner", f"--path={n}").stdout)["spans"] == 4


BAD_INPUTS = {
    "columns": ("ner", "conll", "a O\nb B-PER x\n\n", None, 2, "3 columns, expected 2"),
    "tag": ("absa", "absa-ot", "a\tO\tNIL\nb\tT-GOOD\tNIL\n\n", None, 2, "unknown tag 'T-GOOD'"),
    "y_flags": ("srl", "upb", None,
                test_upb._conllu(test_upb._swap(test_upb.UP1_TWO_PRED, "conj Y take.01", "conj _ _")).encode(),
                3, "2 predicate columns but 1 predicates"),
    "empty": ("ner", "conll", None, b"", 1, "empty file"),
    "utf8": ("ner", "conll", None, b"a O\n\nb\x80 O\n\n", 3, "invalid UTF-8"),
}


@pytest.mark.parametrize("kind", sorted(BAD_INPUTS))
def test_cli_bad_input_exits_1_without_traceback(tmp_path, kind):
  task, fmt, text, raw, line, problem = BAD_INPUTS[kind]
  p = _write(tmp_path, "bad.txt", text, raw)
  r = _run(f"--task={task}", f"--format={fmt}", f"--path={p}")
  assert r.returncode == 1
  assert r.stdout == ""
  assert r.stderr.startswith(f"error: {p}:{line}: ") and problem in r.stderr, r.stderr
  assert "Traceback" not in r.stderr
