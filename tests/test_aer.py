"""AER: the formula on hand counts, the three gold formats, the CLI and its errors."""

from __future__ import annotations

import json

import pytest

from mtlws_jax.errors import InputError, main_guard
from mtlws_jax.projection import aer as E


def test_aer_formula_on_hand_counts():
  gold = [(frozenset({(0, 0), (1, 1)}), frozenset({(0, 0), (1, 1), (1, 2)}))]
  pred = [frozenset({(0, 0), (1, 2), (2, 2)})]
  r = E.aer(gold, pred)
  # |A|=3, |S|=2, |A&S|=1, |A&P|=2: P=2/3, R=1/2, AER = 1 - 3/5.
  assert r["precision"] == pytest.approx(2 / 3)
  assert r["recall"] == pytest.approx(1 / 2)
  assert r["aer"] == pytest.approx(0.4)
  assert E.aer(gold, [gold[0][0]])["aer"] == 0.0


def test_aer_sums_counts_over_the_corpus():
  gold = [(frozenset({(0, 0)}),) * 2, (frozenset({(0, 0), (1, 1), (2, 2)}),) * 2]
  pred = [frozenset(), frozenset({(0, 0), (1, 1), (2, 2)})]
  assert E.aer(gold, pred)["recall"] == pytest.approx(3 / 4)  # not the mean of 0 and 1


def test_pharaoh_gold_sure_possible_and_ids(tmp_path):
  path = tmp_path / "g.txt"
  path.write_text("0\t0-0 1p1 2-1\n1\t0p0\n")
  gold = E.read_gold(path)
  assert gold[0] == ({(0, 0), (2, 1)}, {(0, 0), (1, 1), (2, 1)})
  assert gold[1] == (frozenset(), {(0, 0)})
  path.write_text("1-1 2p3\n")
  assert E.read_gold(path, one_indexed=True) == [({(0, 0)}, {(0, 0), (1, 2)})]


def test_wpt_gold(tmp_path):
  path = tmp_path / "t.wa"
  path.write_text("1001 1 1 S\n1001 2 3 P\n1001 0 2 S\n1002 1 2\n")
  assert E.detect_format(path) == "wpt"
  gold = E.read_gold(path)
  assert gold == [({(0, 0)}, {(0, 0), (1, 2)}), ({(0, 1)}, {(0, 1)})]


def test_jsonl_gold(tmp_path):
  path = tmp_path / "g.jsonl"
  path.write_text(json.dumps({"src_words": ["a", "b"], "tgt_words": ["x"], "alignment": [[0, 0], [1, 0]]}) + "\n")
  assert E.read_gold(path) == [({(0, 0), (1, 0)}, {(0, 0), (1, 0)})]
  path.write_text(json.dumps({"src_words": ["a"], "tgt_words": ["x"], "alignment": [[0, 3]]}) + "\n")
  with pytest.raises(InputError, match=r"g\.jsonl:1: gold link 0-3 out of range"):
    E.read_gold(path)


def test_bad_gold_lines_name_the_line(tmp_path):
  path = tmp_path / "g.txt"
  path.write_text("0-0\n0x1\n")
  with pytest.raises(InputError, match=r"g\.txt:2: bad gold link '0x1'"):
    E.read_gold(path, "pharaoh")
  path.write_text("1 1 1 S\n1 1 Q\n")
  with pytest.raises(InputError, match=r"g\.txt:2: bad WPT line"):
    E.read_gold(path, "wpt")


def test_cli_prints_json(tmp_path, capsys):
  gold, pred = tmp_path / "g.txt", tmp_path / "p.txt"
  gold.write_text("0-0 1-1\n0-0 1p1\n")
  pred.write_text("0-0 1-1\n0-0 1-0\n")
  assert E.main([f"--gold={gold}", f"--pred={pred}"]) == 0
  out = json.loads(capsys.readouterr().out)
  assert out["precision"] == pytest.approx(3 / 4)
  assert out["recall"] == pytest.approx(3 / 3)
  assert out["aer"] == pytest.approx(1 - 6 / 7)


def test_cli_count_mismatch(tmp_path, capsys):
  gold, pred = tmp_path / "g.txt", tmp_path / "p.txt"
  gold.write_text("0-0\n0-0\n")
  pred.write_text("0-0\n")
  with pytest.raises(SystemExit) as e:
    main_guard(E.main)([f"--gold={gold}", f"--pred={pred}"])
  assert e.value.code == 1
  assert "p.txt:2: 1 predicted lines for 2 gold sentence pairs" in capsys.readouterr().err


@pytest.mark.realdata
def test_reads_the_shared_gold_files(data_dir):
  al = data_dir / "alignment"
  assert len(E.read_gold(al / "europarl-golden" / "pt_golden.jsonl")) == 100
  with pytest.raises(InputError, match="jump from 1008 to 1011"):  # 1009, 1010 have no sentence
    E.read_gold(al / "hansards-trial" / "trial.wa")
  hans = E.read_gold(al / "hansards-trial" / "trial.wa", snums=E.read_wpt_snums(al / "hansards-trial" / "trial.e"))
  assert len(hans) == 37 and all(s <= p for s, p in hans)
  sim = E.read_gold(al / "simalign-sample" / "sample_eng_deu.gold")
  assert len(sim) == 5 and any(p - s for s, p in sim)


def test_module_runs_as_a_command(tmp_path):
  import subprocess
  import sys
  gold, pred = tmp_path / "g.txt", tmp_path / "p.txt"
  gold.write_text("0-0 1p1\n")
  pred.write_text("0-0 1-1\n")
  r = subprocess.run([sys.executable, "-m", "mtlws_jax.projection.aer", f"--gold={gold}", f"--pred={pred}"],
                     capture_output=True, text=True)
  assert r.returncode == 0 and json.loads(r.stdout)["aer"] == 0.0
  pred.write_text("0-0 1-x\n")
  r = subprocess.run([sys.executable, "-m", "mtlws_jax.projection.aer", f"--gold={gold}", f"--pred={pred}"],
                     capture_output=True, text=True)
  assert r.returncode == 1 and "p.txt:1: bad link '1-x'" in r.stderr and "Traceback" not in r.stderr
