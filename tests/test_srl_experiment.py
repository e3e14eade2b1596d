"""SRL end to end on tiny Universal Proposition Bank files: run.py's experiment with every method,
predicate-aware inputs (predicate indicator, POS tags), role F1 that shows the model learned."""

from __future__ import annotations

import io
import json
import pathlib

import numpy as np
import pytest

import _tiny_absa as T
from mtlws_jax import experiment

LEX = {  # (determiners, nouns, verbs)
    "en": (["the", "a"], ["dog", "cat", "man", "child"], ["sees", "likes", "finds"]),
    "fr": (["le", "un"], ["chien", "chat", "homme", "enfant"], ["voit", "aime", "trouve"]),
    "es": (["el", "un"], ["perro", "gato", "hombre", "niño"], ["ve", "quiere", "encuentra"]),
}
FOLDERS = {"en": "UP_English-EWT/en_ewt", "fr": "UP_French/fr", "es": "UP_Spanish/es"}


def _sentences(lang: str, n: int, seed: int) -> str:
  """UP-1.0 layout: 8 CoNLL-U columns, PRED flag, sense, one role column per predicate.

  "DET NOUN VERB DET NOUN ." with A0 on the first noun and A1 on the second; half the sentences
  put an adverb first, so positions alone do not give the roles.
  """
  rng = np.random.default_rng(seed)
  det, nouns, verbs = LEX[lang]
  out = []
  for i in range(n):
    words = [(det[rng.integers(2)], "DET", "_"), (nouns[rng.integers(4)], "NOUN", "A0"),
             (verbs[rng.integers(3)], "VERB", "V"), (det[rng.integers(2)], "DET", "_"),
             (nouns[rng.integers(4)], "NOUN", "A1"), (".", "PUNCT", "_")]
    if rng.random() < 0.5:
      words.insert(0, ("ok", "ADV", "_"))
    out.append(f"# sent_id = {lang}-{seed}-{i}")
    for j, (form, pos, role) in enumerate(words, 1):
      pred = role == "V"
      cols = [str(j), form, form, pos, pos, "_", "0" if pred else "1", "root" if pred else "dep",
              "Y" if pred else "_", f"{form}.01" if pred else "_", "_" if role in ("_", "V") else role]
      out.append("\t".join(cols))
    out.append("")
  return "\n".join(out) + "\n"


@pytest.fixture(scope="module")
def srl_assets(tmp_path_factory):
  root = tmp_path_factory.mktemp("srl")
  data, translated = root / "data", root / "translated"
  for i, (lang, folder) in enumerate(FOLDERS.items()):
    base = data / "srl" / "UP-1.0" / folder
    base.parent.mkdir(parents=True, exist_ok=True)
    for j, split in enumerate(("dev", "test")):
      pathlib.Path(f"{base}-up-{split}.conllu").write_text(_sentences(lang, 60 if lang == "en" else 20, 10 * i + j))
    if lang != "en":
      (translated / "srl").mkdir(parents=True, exist_ok=True)
      (translated / "srl" / f"en2{lang}.train.conllu").write_text(_sentences(lang, 40, 10 * i + 5))
  from mtlws_jax.models import tiny
  texts = [" ".join(w for w in (*d, *n, *v, "ok", ".")) for d, n, v in LEX.values()] * 20
  model = tiny.build_tiny_checkpoint(root / "model", model_type="bert", texts=texts, vocab_size=120,
                                     hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64,
                                     max_length=32)
  return data, translated, model


def _config(data, translated, model, **overrides):
  from configs import common
  c = common.srl(common.base_config())
  c.task = "srl"
  c.data_dir, c.data.translated_root, c.model.path = str(data), str(translated), str(model)
  c.data.languages = ("en", "fr", "es")
  c.target_langs = ("fr", "es")
  c.seeds = (0,)
  c.data.max_length, c.data.stride, c.data.pad_multiple = 32, 4, 16
  c.train.learning_rate, c.train.batch_size, c.train.eval_batch_size = 5e-3, 8, 16
  c.train.max_steps, c.selection.eval_every, c.selection.eval_after = 60, 20, 20
  c.warmup.epochs, c.warmup.steps, c.warmup.gamma, c.warmup.beta = 2, 2, 0.5, 1e-2
  c.warmup.strategy, c.warmup.measure_loss = "loop", False
  c.log_every, c.checkpoint_every = 20, 60
  c.progress, c.tensorboard = False, False
  return T.set_fields(c, overrides)


@pytest.mark.alone(seconds=81)
def test_srl_grid_end_to_end(srl_assets, tmp_path):
  data, translated, model = srl_assets
  out = io.StringIO()
  summary = experiment.run(_config(data, translated, model), tmp_path / "work", out=out)
  assert list(summary["methods"]) == ["zero_shot", "target_only", "bilingual", "mtl", "mtl_ws"]
  # 80% of English dev trains, the held-out 20% (12 sentences) selects
  zs = json.loads((tmp_path / "work" / "runs" / "zero_shot" / "seed0" / "result.json").read_text())
  assert zs["train_examples"] == 48
  assert zs["english_dev"] > 0.9, zs["english_dev"]  # A0/A1 by the predicate's side: learnable
  for name, m in summary["methods"].items():  # every method learns the pattern (a floor, not a range)
    assert m["english_dev"]["mean"] > 80, (name, m["english_dev"])
  for name in ("target_only", "bilingual", "mtl"):  # trained on target-language data
    assert summary["methods"][name]["test"]["mean"]["avg"] > 50, (name, summary["methods"][name]["test"])
  # roles are scored as (predicate, argument head, role) triples: gold count = 2 per sentence
  assert zs["target_test"]["fr"]["n_gold"] == 40
  assert "| MTL-WS |" in out.getvalue()
  _predict_and_export_srl(data, tmp_path / "work", tmp_path)


def _predict_and_export_srl(data, work, tmp_path):
  """A finished SRL run tags UP files (same F1 as the experiment); raw text and export are refused."""
  import subprocess
  import sys
  root = pathlib.Path(__file__).resolve().parents[1]
  env = {"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
  test_fr = data / "srl" / "UP-1.0" / "UP_French" / "fr-up-test.conllu"
  run = lambda *a: subprocess.run([sys.executable, "-m", *a], cwd=root, env=env, capture_output=True, text=True)
  p = run("mtlws_jax.predict", f"--workdir={work}", "--run=target_only-fr", f"--input={test_fr}",
          f"--output={tmp_path}/fr.conllu", "--no-progress")
  assert p.returncode == 0, p.stderr[-3000:]
  got = json.loads(p.stdout)
  res = json.loads((work / "runs" / "target_only-fr" / "seed0" / "result.json").read_text())
  assert got["f1"] == round(100 * res["target_test"]["fr"]["f1"], 2)
  from mtlws_jax.data import upb
  assert len(upb.read(tmp_path / "fr.conllu")) == len(upb.read(test_fr))
  text = tmp_path / "raw.txt"
  text.write_text("le chien voit un chat .\n")
  p = run("mtlws_jax.predict", f"--workdir={work}", f"--input={text}", "--input-format=text",
          f"--output={tmp_path}/x.txt")
  assert p.returncode == 1 and "SRL needs each sentence's predicates" in p.stderr and "Traceback" not in p.stderr
  p = run("mtlws_jax.export", f"--workdir={work}", f"--out={tmp_path}/hf")
  assert p.returncode == 1 and "predicate and POS inputs" in p.stderr and "Traceback" not in p.stderr


def test_srl_without_translated_sets_says_how_to_make_them(srl_assets, tmp_path):
  data, _, model = srl_assets
  from mtlws_jax.errors import InputError
  with pytest.raises(InputError, match=r"python -m mtlws_jax.projection"):
    experiment.run(_config(data, tmp_path / "nowhere", model), tmp_path / "work", out=io.StringIO())
