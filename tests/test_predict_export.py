"""A finished run in use: predict tags new text and files (same F1 as the experiment), export
writes a Hugging Face folder that transformers' PyTorch pipeline runs with the same tags."""

from __future__ import annotations

import io
import json
import os
import pathlib
import subprocess
import sys

import pytest

import _tiny_absa as T
from mtlws_jax import experiment, runfolder, showcase

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
  root = tmp_path_factory.mktemp("predict")
  data, model = T.make_data(root / "data"), T.make_model(root / "model")
  work = root / "work"
  out = io.StringIO()
  # translated dev sets: the fixture's translated training sets stand in (any file of the task's format)
  config = T.tiny_config(data, model, method="zero_shot,target_only", showcase=True,
                         translated_dev=str(data / "absa" / "XABSA" / "smt-{lang}-train.txt"))
  experiment.run(config, work, out=out)
  showcase.ending(config, work, out)      # run.py's ending
  (root / "printed.txt").write_text(out.getvalue())
  return data, work, root


def test_the_run_ends_with_the_best_model_tagging_sentences_and_its_export(finished):
  _, work, root = finished
  printed = (root / "printed.txt").read_text()
  assert "The model chosen for each target language" in printed
  tagged = [l for l in printed.splitlines() if l.startswith(("  es: ", "  fr: "))]
  assert len(tagged) == 6 and any("|POS]" in l or "|NEG]" in l or "|NEU]" in l for l in tagged)
  assert "Exported model" in printed and any((work / "exported").iterdir())
  assert "plots/f1_per_language.png" in printed


def test_each_language_gets_the_run_its_translated_dev_set_ranks_first(finished):
  """Every finished run scored on each translated dev set; the choice per language is the best of
  those scores, printed after the table, in the showcase, and taken by predict --lang (issue 24)."""
  _, work, root = finished
  printed = (root / "printed.txt").read_text()
  scores = json.loads((work / "translated_dev.json").read_text())["scores"]
  assert set(scores) == {"zero_shot", "target_only-es", "target_only-fr"}
  for lang in ("es", "fr"):
    # a run trained for the other language only (target_only-fr for es) is no candidate
    fits = [m for m in scores if m in ("zero_shot", f"target_only-{lang}")]
    best = max(fits, key=lambda m: scores[m]["0"][lang])
    f1 = scores[best]["0"][lang]
    assert (f"{lang}: {best} seed 0, the best {lang} translated dev F1 ({f1:.2f}) of 2 scored runs trained for "
            f"{lang} or for no target language") in printed
    assert f"  {lang} model: {best} seed 0, the best {lang} translated dev F1" in printed
    text = root / "t.txt"
    text.write_text("the food was great\n")
    p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={text}", "--input-format=text", f"--lang={lang}",
             f"--output={root / 'o.jsonl'}", "--format=jsonl", "--no-progress")
    assert p.returncode == 0, p.stderr[-2000:]
    got = json.loads(p.stdout)
    assert (got["run"], got["seed"]) == (best, 0) and got["chosen_by"].startswith(f"the best {lang} translated dev F1")
  # the paper's criterion on request, and English text: the best English dev F1
  results = {m: json.loads((work / "runs" / m / "seed0" / "result.json").read_text())["english_dev"] for m in scores}
  for extra, among in ((["--lang=es", "--select=english_dev"], ["zero_shot", "target_only-es"]), (["--lang=en"], results)):
    en_best = max(among, key=lambda m: results[m])
    p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={root / 't.txt'}", "--input-format=text", *extra,
             f"--output={root / 'o.jsonl'}", "--format=jsonl", "--no-progress")
    assert p.returncode == 0 and json.loads(p.stdout)["run"] == en_best, p.stderr[-2000:]
    assert json.loads(p.stdout)["chosen_by"].startswith("the best English dev F1")
  p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={root / 't.txt'}", "--input-format=text", "--lang=nl",
           "--select=translated_dev", f"--output={root / 'o.jsonl'}", "--no-progress")
  assert p.returncode == 1 and p.stderr.startswith("error: ") and "no run of this workdir was scored on a translated nl" \
      in p.stderr and len(p.stderr.strip().splitlines()) == 1


def _cli(*args):
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_gold_files_score_as_in_the_experiment(finished):
  data, work, root = finished
  for run, lang in (("target_only-es", "es"), ("zero_shot", "fr")):
    src = data / "absa" / "XABSA" / f"gold-{lang}-test.txt"
    out = root / f"{run}.txt"
    p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--run={run}", "--seed=0", f"--input={src}",
             f"--output={out}", "--no-progress")
    assert p.returncode == 0, p.stderr[-3000:]
    got = json.loads(p.stdout)
    res = json.loads((work / "runs" / run / "seed0" / "result.json").read_text())
    assert got["f1"] == round(100 * res["target_test"][lang]["f1"], 2)
    assert (got["n_gold"], got["n_pred"]) == (res["target_test"][lang]["n_gold"], res["target_test"][lang]["n_pred"])
    from mtlws_jax.data import absa
    assert [s.tokens for s in absa.read(out)] == [s.tokens for s in absa.read(src)]  # every word, in order


def test_default_run_is_the_best_on_english_dev(finished):
  from mtlws_jax import saved
  _, work, _ = finished
  runs = runfolder.finished_runs(work)
  best = max(runs, key=lambda r: r[2]["english_dev"])
  assert saved.pick(work)[:2] == best[:2]


def test_raw_text_to_jsonl_spans_and_long_sentences(finished):
  _, work, root = finished
  text = root / "new.txt"
  long = " ".join(["the pizza was great"] * 20)  # 80 words: beyond max_length=32, windowed
  text.write_text(f"The pizza was great, but the service is awful!\n\n{long}\n", encoding="utf-8")
  p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={text}", "--input-format=text", "--lang=en",
           f"--output={root}/new.jsonl", "--format=jsonl", "--no-progress")
  assert p.returncode == 0, p.stderr[-3000:]
  recs = [json.loads(l) for l in (root / "new.jsonl").read_text().splitlines()]
  assert len(recs) == 2  # the empty line holds no sentence
  assert recs[0]["tokens"] == ["The", "pizza", "was", "great", ",", "but", "the", "service", "is", "awful", "!"]
  assert len(recs[1]["tags"]) == 80  # nothing dropped
  for r in recs:
    for sp in r["spans"]:
      assert sp["text"] == r["text"][sp["char_start"]:sp["char_end"]] == " ".join(r["tokens"][sp["start"]:sp["end"]])
      assert sp["label"] in ("POS", "NEG", "NEU")
  assert any(sp["text"] == "pizza" for sp in recs[1]["spans"])  # the fixture's aspect word is learned


def test_export_runs_in_transformers_with_the_same_tags(finished):
  import numpy as np
  import torch
  from transformers import AutoModelForTokenClassification, AutoTokenizer, pipeline
  _, work, root = finished
  hf = root / "hf"
  p = _cli("mtlws_jax.export", f"--workdir={work}", "--run=zero_shot", f"--out={hf}")
  assert p.returncode == 0, p.stderr[-3000:]
  cfg = json.loads((hf / "config.json").read_text())
  assert cfg["architectures"] == ["BertForTokenClassification"] and "S-POS" in cfg["label2id"]
  sentences = {"en": ["the pizza was great", "this staff is awful"], "es": ["el servicio era horrible", "la pizza es genial"]}
  lines = [s for v in sentences.values() for s in v]
  text = root / "two_langs.txt"
  text.write_text("\n".join(lines) + "\n")
  p = _cli("mtlws_jax.predict", f"--workdir={work}", "--run=zero_shot", f"--input={text}", "--input-format=tokens",
           f"--output={root}/ours.jsonl", "--format=jsonl", "--no-progress")
  assert p.returncode == 0, p.stderr[-3000:]
  ours = [json.loads(l)["tags"] for l in (root / "ours.jsonl").read_text().splitlines()]
  tok = AutoTokenizer.from_pretrained(hf)
  model = AutoModelForTokenClassification.from_pretrained(hf).eval()
  tagger = pipeline("token-classification", model=model, tokenizer=tok)
  for line, want in zip(lines, ours):
    words = line.split()
    enc = tok(words, is_split_into_words=True, return_tensors="pt")
    with torch.no_grad():
      ids = model(**enc).logits.argmax(-1)[0].numpy()
    firsts = {w: i for i, w in reversed(list(enumerate(enc.word_ids()))) if w is not None}
    torch_tags = [model.config.id2label[int(ids[firsts[w]])] for w in range(len(words))]
    assert torch_tags == want, (line, torch_tags, want)
    by_pipeline = {e["word"]: e["entity"] for e in tagger(line)}  # the pipeline agrees on whole-word tokens
    for w, t in zip(words, want):
      if t != "O" and len(tok.tokenize(w)) == 1:
        assert by_pipeline.get(w) == t, (line, w, by_pipeline)
  assert np.any([t != "O" for tags in ours for t in tags])
  # a used folder is refused; an unknown run is named
  p = _cli("mtlws_jax.export", f"--workdir={work}", f"--out={hf}")
  assert p.returncode == 1 and "not an empty folder" in p.stderr
  p = _cli("mtlws_jax.export", f"--workdir={work}", "--run=nope", f"--out={root}/hf2")
  assert p.returncode == 1 and "no finished run nope" in p.stderr and "zero_shot seed 0" in p.stderr
  p = _cli("mtlws_jax.export", f"--workdir={work}", "--out=")
  assert p.returncode == 1 and p.stderr.strip() == \
      "error: python -m mtlws_jax.export: --out is empty: name a new folder (see --help)"
  for cmd in (["mtlws_jax.export", f"--workdir={work / 'config.json'}", f"--out={root}/hf3"],
              ["mtlws_jax.predict", f"--workdir={work / 'config.json'}", f"--input={work / 'config.json'}",
               f"--output={root}/x.jsonl"]):
    p = _cli(*cmd)
    assert p.returncode == 1 and p.stderr.strip().endswith(
        f"{work / 'config.json'}: a file, not a workdir (a folder run.py made)"), p.stderr


def test_the_selection_command_compares_the_two_criteria_per_language(finished):
  data, work, root = finished
  pattern = str(data / "absa" / "XABSA" / "smt-{lang}-train.txt")
  p = _cli("mtlws_jax.eval.select", str(work), f"--translated-dev={pattern}", "--langs=es,fr")
  assert p.returncode == 0, p.stderr[-2000:]
  summary = json.loads((work / "selection.json").read_text())
  scores = json.loads((work / "translated_dev.json").read_text())["scores"]
  english = {m: json.loads((work / "runs" / m / "seed0" / "result.json").read_text()) for m in scores}
  for lang in ("es", "fr"):
    (pick,) = summary["languages"][lang]["picks"]
    fits = [m for m in scores if m in ("zero_shot", f"target_only-{lang}")]   # trained for lang, or for none
    assert pick["translated_dev"] == max(fits, key=lambda m: scores[m]["0"][lang])
    assert pick["english_dev"] == max(fits, key=lambda m: english[m]["english_dev"])
    d = summary["languages"][lang]["difference"]
    want = pick["test_f1"]["translated_dev"] - pick["test_f1"]["english_dev"]
    assert abs(d["diff"] - want) < 1e-9 and d["low"] <= d["diff"] <= d["high"]
    assert f"| {lang} | 1 | {int(pick['english_dev'] == pick['translated_dev'])} |" in p.stdout
  assert (work / "selection.md").read_text(encoding="utf-8") in p.stdout + "\n"
  # bad input: one line each; a damaged score cache is a warning and is rebuilt
  p = _cli("mtlws_jax.eval.select", str(work), "--translated-dev=/nowhere/{lang}.txt", "--langs=es")
  assert p.returncode == 1 and p.stderr.strip() == "error: /nowhere/es.txt: no translated es dev set"
  p = _cli("mtlws_jax.eval.select", str(work), f"--translated-dev={data}/x.txt", "--langs=es")
  assert p.returncode == 1 and "the pattern has no {lang}" in p.stderr
  # slips are refused before anything is scored or written (an empty --langs replaced selection.md
  # with an empty table; a language or row the workdir lacks gave a silent empty row)
  before = (work / "selection.md").read_text(encoding="utf-8")
  prog = "error: python -m mtlws_jax.eval.select:"
  for args, line in (
      (["--langs="], f"{prog} --langs names no language (see --help)"),
      (["--langs=es,fr,es"], f"{prog} --langs names es more than once (see --help)"),
      (["--langs=es", "--rows=zero_shot,zero_shot"], f"{prog} --rows names zero_shot more than once (see --help)"),
      (["--langs=de"], f"error: {work / 'config.json'}: --langs: de is not a target language of this workdir "
                       "(its targets: es, fr)"),
      (["--langs=es", "--rows=zero_shot,nope"], f"error: {work}: --rows: no finished run of nope in this workdir")):
    p = _cli("mtlws_jax.eval.select", str(work), f"--translated-dev={pattern}", *args)
    assert p.returncode == 1 and p.stderr.strip().startswith(line) and len(p.stderr.strip().splitlines()) == 1, \
        (args, p.stderr)
  p = _cli("mtlws_jax.eval.select", str(work), "--langs=es")
  assert p.returncode == 1 and p.stderr.strip() == f"{prog} the following arguments are required: --translated-dev (see --help)"
  assert (work / "selection.md").read_text(encoding="utf-8") == before
  (work / "translated_dev.json").write_text('{"files": {"es": 3}, "scores": []}')
  p = _cli("mtlws_jax.eval.select", str(work), f"--translated-dev={pattern}", "--langs=es,fr")
  assert p.returncode == 0 and "warning: " in p.stderr and "ignored (it rebuilds it)" in p.stderr
  assert json.loads((work / "translated_dev.json").read_text())["scores"] == scores


def test_a_translated_dev_set_remade_at_the_same_path_is_scored_again(finished):
  """The score cache was keyed by path only: a set remade in place (a fixed translation) kept its old scores."""
  data, work, root = finished
  sets = root / "tdev"
  sets.mkdir()
  for lang in ("es", "fr"):
    (sets / f"{lang}.txt").write_bytes((data / "absa" / "XABSA" / f"smt-{lang}-train.txt").read_bytes())
  args = (str(work), f"--translated-dev={sets}/{{lang}}.txt", "--langs=es,fr")
  assert _cli("mtlws_jax.eval.select", *args).returncode == 0
  cache = json.loads((work / "translated_dev.json").read_text())
  for per_seed in cache["scores"].values():
    per_seed["0"] = {"es": 99.5, "fr": 99.5}            # marks: kept while the sets are the same
  (work / "translated_dev.json").write_text(json.dumps(cache))
  assert _cli("mtlws_jax.eval.select", *args).returncode == 0
  assert all(v["0"] == {"es": 99.5, "fr": 99.5} for v in json.loads((work / "translated_dev.json").read_text())["scores"].values())
  es = (sets / "es.txt").read_text(encoding="utf-8")
  (sets / "es.txt").write_text(es.split("\n\n", 1)[1], encoding="utf-8")   # remade: one sentence fewer
  p = _cli("mtlws_jax.eval.select", *args)
  assert p.returncode == 0 and "translated dev F1" in p.stderr, p.stderr[-2000:]
  again = json.loads((work / "translated_dev.json").read_text())
  assert again["scores"] and all(v["0"]["es"] != 99.5 and v["0"]["fr"] != 99.5 for v in again["scores"].values())


def test_raw_text_without_the_text_format_names_the_flag(finished):
  """Issue 26, class 8: a file of plain sentences given as a task file says so and names the flag."""
  _, work, root = finished
  for text in ("The pizza was great .\nService was slow but friendly .\n", "La pizza estaba buena\n"):
    src = root / "raw.txt"
    src.write_text(text, encoding="utf-8")
    p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={src}", f"--output={root / 'raw.out'}",
             "--no-progress")
    assert p.returncode == 1 and len(p.stderr.strip().splitlines()) == 1, p.stderr
    assert p.stderr.startswith(f"error: {src}:") and "this looks like plain text, one sentence per line, not the " \
        "absa format" in p.stderr and "give --input-format=text" in p.stderr
    assert not (root / "raw.out").exists()
  # a broken task file is still a broken task file
  src = root / "broken.txt"
  src.write_text("pizza\tT-POS\tFOOD\nwas\tT-BAD\tNIL\n\n", encoding="utf-8")
  p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={src}", f"--output={root / 'raw.out'}", "--no-progress")
  assert p.returncode == 1 and "plain text" not in p.stderr and f"{src}:2" in p.stderr


def test_raw_text_is_nfc_normalised_and_grapheme_clusters_stay_whole(finished):
  """Issue 26, class 5: a decomposed accent is one character, an emoji joined by U+200D one token;
  an unknown --lang says which rules split the text."""
  _, work, root = finished
  src = root / "nfc.txt"
  src.write_text("El cafe\u0301 estaba bien \U0001F469\u200d\U0001F4BB \U0001F1EA\U0001F1F8\n", encoding="utf-8")
  out = root / "nfc.jsonl"
  p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={src}", "--input-format=text", "--lang=es",
           f"--output={out}", "--format=jsonl", "--no-progress")
  assert p.returncode == 0, p.stderr[-2000:]
  got = json.loads(out.read_text(encoding="utf-8"))
  assert got["tokens"] == ["El", "caf\u00e9", "estaba", "bien", "\U0001F469\u200d\U0001F4BB", "\U0001F1EA\U0001F1F8"]
  assert got["text"] == "El caf\u00e9 estaba bien \U0001F469\u200d\U0001F4BB \U0001F1EA\U0001F1F8"
  assert "note: no Moses rules" not in p.stderr
  p = _cli("mtlws_jax.predict", f"--workdir={work}", f"--input={src}", "--input-format=text", "--lang=xx",
           f"--output={out}", "--format=jsonl", "--no-progress")
  assert p.returncode == 0 and "note: no Moses rules for --lang=xx: the default (English) rules split the text" in p.stderr


def _damaged(work: pathlib.Path, root: pathlib.Path, name: str) -> pathlib.Path:
  import shutil
  copy = root / f"damaged-{name}"
  if copy.exists():
    shutil.rmtree(copy)
  shutil.copytree(work, copy, symlinks=True)
  return copy


def test_the_run_folder_files_are_read_back_as_input(finished):
  """Issue 26, class 1: each damaged file of a finished workdir is one line naming it and what to do."""
  import gzip
  _, work, root = finished
  text = root / "one.txt"
  text.write_text("la pizza era genial\n")
  cases = {
      "labels-empty": ("labels.json", lambda p: p.write_text("{}"), "labels.json: it has no task; run the workdir's"),
      "labels-tags": ("labels.json", lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "tags": ["B-POS", "O"]})),
                      'tags does not start with "O"'),
      "config-section": ("config.json", lambda p: p.write_text(json.dumps(
          {k: v for k, v in json.loads(p.read_text()).items() if k != "model"})), "config.json lacks its model section"),
      "result-null": ("runs/zero_shot/seed0/result.json", lambda p: p.write_text(json.dumps(
          {**json.loads(p.read_text()), "english_dev": None})), "english_dev is not a number"),
  }
  for name, (rel, damage, message) in cases.items():
    copy = _damaged(work, root, name)
    damage(copy / rel)
    for cmd in (["mtlws_jax.predict", f"--workdir={copy}", f"--input={text}", "--input-format=text", "--lang=es",
                 f"--output={root / 'x.jsonl'}", "--format=jsonl", "--no-progress"],
                ["mtlws_jax.eval.report", str(copy)]):
      p = _cli(*cmd)
      if cmd[0] == "mtlws_jax.eval.report" and name.startswith("labels"):
        assert p.returncode == 0, p.stderr[-2000:]      # the report does not read labels.json
        continue
      assert p.returncode == 1 and "Traceback" not in p.stderr, (name, cmd[0], p.stderr[-2000:])
      assert p.stderr.strip().splitlines()[-1].startswith(f"error: {copy / rel}: ") and message in p.stderr, \
          (name, p.stderr)
  # predictions with fewer sentences than the gold set; a missing predictions file; damaged timing
  copy = _damaged(work, root, "preds")
  pred = copy / "runs/target_only-es/seed0/predictions.json.gz"
  saved = json.loads(gzip.open(pred, "rt").read())
  saved["splits"]["test:es"] = saved["splits"]["test:es"][:-1]
  with gzip.open(pred, "wt") as f:
    f.write(json.dumps(saved))
  p = _cli("mtlws_jax.eval.report", str(copy))
  assert p.returncode == 1 and p.stderr.strip() == (
      f"error: {pred}: the saved es test predictions hold 5 sentences, the gold test set 6: the file is damaged; "
      "delete the run's result.json and run the same run.py command again to recompute it")
  pred.unlink()
  (copy / "runs/zero_shot/seed0/timing.json").write_text('{"seconds": null}')
  p = _cli("mtlws_jax.eval.report", str(copy))
  assert p.returncode == 0, p.stderr[-2000:]
  assert f"Missing predictions file (the runs finished, the file is gone): {pred}." in p.stdout
  assert f"warning: {copy / 'runs/zero_shot/seed0/timing.json'}: not a timing file (seconds is None)" in p.stderr


def test_a_damaged_tokenizer_cache_is_rebuilt(tmp_path):
  from absl import logging as absl_logging
  from mtlws_jax.data import encode
  import _tiny_absa as T2
  model = T2.make_model(tmp_path / "model")
  import transformers
  tok = transformers.AutoTokenizer.from_pretrained(str(model))
  cache = tmp_path / "cache"
  cache.mkdir()
  first = encode._tokenize_words(tok, ["pizza", "wine"], cache)
  (path,) = cache.glob("wordpieces-*.json")
  good = path.read_text()
  seen = []
  orig = absl_logging.warning
  absl_logging.warning = lambda msg, *a: seen.append(msg % a)
  try:
    for bad in (good[: len(good) // 2], json.dumps({"pizza": [10 ** 9]})):
      path.write_text(bad)
      encode._MEMO.clear()
      assert encode._tokenize_words(tok, ["pizza", "wine"], cache) == first
      assert seen[-1].startswith(f"{path}: tokenizer cache unreadable") and json.loads(path.read_text()) == json.loads(good)
  finally:
    absl_logging.warning = orig
