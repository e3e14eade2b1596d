"""README "Use your own data", run as written (issue 24): the user's own English file and label set
-> Apertium translation -> eflomal alignment and projection -> the method comparison with
intervals -> predict and export; and ZERO-SHOT for a language with no test set."""

from __future__ import annotations

import json
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium is not installed")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
  out = tmp_path_factory.mktemp("own") / "run"
  import os
  r = subprocess.run(["bash", "examples/own_data/run.sh", str(out)], cwd=ROOT, capture_output=True, text=True,
                     timeout=900, env=dict(os.environ, PYTHON=sys.executable))
  assert r.returncode == 0, r.stderr[-3000:]
  return out, r.stdout


@pytest.mark.alone(seconds=150)
def test_the_worked_example_goes_from_an_english_file_to_a_spanish_tagger(example):
  out, stdout = example
  # the projected Spanish set carries the user's labels (not PER/LOC/ORG/MISC)
  projected = (out / "translated/en2es.train.conll").read_text(encoding="utf-8")
  labels = {t.split("-", 1)[1] for t in re.findall(r" ([BI]-\w+)$", projected, re.M)}
  assert labels == {"ING", "QTY", "TOOL"}
  assert len(projected.strip().split("\n\n")) == 40
  # the comparison: three rows on the Spanish test set, differences with seed-level intervals
  summary = json.loads((out / "workdir/results.json").read_text())
  assert summary["target_langs"] == ["es"] and summary["seeds"] == [0, 1, 2]
  assert list(summary["methods"]) == ["zero_shot", "mtl", "mtl_ws"]
  for row in ("mtl", "mtl_ws"):
    d = summary["paired"]["rows"][row]["avg"]
    assert d["low"] <= d["diff"] <= d["high"] and len(d["per_seed"]) == 3
  table = (out / "workdir/results.md").read_text()
  assert re.search(r"\| MTL \| [+-]\d+\.\d\d \[[+-]\d+\.\d\d, [+-]\d+\.\d\d\]", table)
  assert "Avg., seeds x sentences" in table and table in stdout
  # the tagger on new Spanish text, and the exported folder
  tagged = [json.loads(l) for l in (out / "new.tagged.jsonl").read_text(encoding="utf-8").splitlines()]
  assert [t["tokens"][:2] for t in tagged] == [["Corta", "el"], ["Añade", "dos"]]
  assert all(set(t) >= {"tags", "spans"} for t in tagged)
  assert (out / "exported/model.safetensors").is_file() and (out / "exported/tokenizer.json").is_file()


def test_zero_shot_needs_no_target_data_and_says_there_is_nothing_to_score(tmp_path):
  """A target language with no file at all (no translation, no test set): trained, saved, not scored."""
  work = tmp_path / "zs_pt"
  r = subprocess.run([sys.executable, "run.py", "--config=configs/own_data.py", f"--workdir={work}",
                      "--config.method=zero_shot", "--config.seeds=0", "--config.target_langs=pt",
                      "--config.data.languages=en,pt"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert ("note: no pt test set (examples/own_data/pt.test.conll does not exist): the runs train and are "
          "saved, nothing is scored in pt") in r.stdout
  assert "zero_shot seed 0: best English dev F1" in r.stdout and "; no target test set" in r.stdout
  assert "### NER, e5-small: nothing to score" in r.stdout or "### NER, tiny: nothing to score" in r.stdout
  summary = json.loads((work / "results.json").read_text())
  assert summary["target_langs"] == [] and summary["no_test_set"] == ["pt"] and "paired" not in summary
  # the report reads it back, and the tagger tags Portuguese text
  rep = subprocess.run([sys.executable, "-m", "mtlws_jax.eval.report", str(work)], cwd=ROOT, capture_output=True,
                       text=True, timeout=300)
  assert rep.returncode == 0 and "nothing to score in pt" in rep.stdout, rep.stderr
  text = tmp_path / "pt.txt"
  text.write_text("Corta o pão com a faca .\n", encoding="utf-8")
  pred = subprocess.run([sys.executable, "-m", "mtlws_jax.predict", f"--workdir={work}", f"--input={text}",
                         "--input-format=text", "--lang=pt", f"--output={tmp_path / 'pt.jsonl'}", "--format=jsonl"],
                        cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert pred.returncode == 0, pred.stderr
  assert json.loads((tmp_path / "pt.jsonl").read_text(encoding="utf-8"))["tokens"][0] == "Corta"
