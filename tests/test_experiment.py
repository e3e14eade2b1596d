"""experiment.run on tiny ABSA fixtures: every method end to end, outputs, skipping, bad input."""

from __future__ import annotations

import io
import json

import pytest

import _tiny_absa as T
from mtlws_jax import experiment, runfolder
from mtlws_jax.errors import InputError

IDS = ["zero_shot", "target_only-es", "target_only-fr", "bilingual-es", "bilingual-fr", "mtl", "mtl_ws"]


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
  root = tmp_path_factory.mktemp("assets")
  return T.make_data(root / "data"), T.make_model(root / "model")


@pytest.fixture(scope="module")
def finished(assets, tmp_path_factory):
  data, model = assets
  work = tmp_path_factory.mktemp("work")
  config = T.tiny_config(data, model)
  out = io.StringIO()
  summary = experiment.run(config, work, out=out)
  return config, work, summary, out.getvalue()


def test_all_methods_produce_results_tables_and_plots(finished):
  config, work, summary, printed = finished
  assert list(summary["methods"]) == ["zero_shot", "target_only", "bilingual", "mtl", "mtl_ws"]
  assert sorted(summary["runs"]) == sorted(IDS)
  saved = json.loads((work / "results.json").read_text())
  assert saved == json.loads(json.dumps(summary))
  for m in summary["methods"].values():
    for split in ("test", "dev"):
      t = m[split]
      assert set(t["per_seed"]["0"]) == {"es", "fr", "avg"}
      assert t["mean"]["avg"] == pytest.approx((t["mean"]["es"] + t["mean"]["fr"]) / 2)
      assert all(0 <= v <= 100 for v in t["mean"].values())
  # a per-language method takes each language's score from that language's model
  to = summary["methods"]["target_only"]["test"]["per_seed"]["0"]
  assert to["es"] == pytest.approx(100 * summary["runs"]["target_only-es"]["0"]["target_test"]["es"]["f1"])
  assert set(summary["runs"]["target_only-es"]["0"]["target_test"]) == {"es"}
  assert set(summary["runs"]["mtl"]["0"]["target_test"]) == {"es", "fr"}
  md = (work / "results.md").read_text()
  assert "| Model | es | fr | Avg. |" in md
  for row in ("ZERO-SHOT", "TO", "BILINGUAL", "MTL", "MTL-WS"):
    assert f"| {row} |" in md
  assert md in printed
  assert (work / "plots" / "f1_per_language.png").stat().st_size > 1000
  assert (work / "plots" / "convergence.png").stat().st_size > 1000
  assert json.loads((work / "config.json").read_text())["train"]["max_steps"] == config.train.max_steps
  assert (work / "warmup" / "mtl_ws" / "seed0" / "effect.json").exists()
  assert json.loads((work / "config.json").read_text())["workdir_format"] == 2
  for mid in IDS:
    run_dir = work / "runs" / mid / "seed0"
    res = json.loads((run_dir / "result.json").read_text())
    assert res["best_step"] in (16, 24, 32)  # selection: every 8 steps from step 16 on
    lines = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines if "dev_f1" in l] == [8, 16, 24, 32]
    assert (run_dir / "checkpoints" / "best").is_dir() and not (run_dir / "checkpoints" / "latest").exists()
    saved = runfolder.read_predictions(run_dir)
    assert set(saved["splits"]) == {"en_dev"} | {f"{k}:{l}" for k in ("test", "dev") for l in res["target_test"]}
    assert len(saved["splits"]["en_dev"]) == 6


def test_every_method_learns_its_fixture(finished):
  """A floor on F1, not only 0 <= F1 <= 100: English dev for every method; the target test sets
  for the methods that train on target-language (translated) data."""
  _, _, summary, _ = finished
  for name, m in summary["methods"].items():
    assert m["english_dev"]["mean"] > 40, (name, m["english_dev"])
  for name in ("target_only", "bilingual", "mtl"):
    assert summary["methods"][name]["test"]["mean"]["avg"] > 25, (name, summary["methods"][name]["test"])


def test_training_sets_follow_the_method(finished):
  _, work, _, _ = finished
  n = lambda mid: json.loads((work / "runs" / mid / "seed0" / "result.json").read_text())["train_examples"]
  assert n("zero_shot") == 16 and n("target_only-es") == 16
  assert n("bilingual-fr") == 32 and n("mtl") == 48 and n("mtl_ws") == 16


def test_mtl_ws_starts_from_warmed_up_parameters(finished):
  _, work, _, _ = finished
  effect = json.loads((work / "warmup" / "mtl_ws" / "seed0" / "effect.json").read_text())
  assert effect["param_change"] > 0
  zs = (work / "runs" / "zero_shot" / "seed0" / "metrics.jsonl").read_text().splitlines()
  ws = (work / "runs" / "mtl_ws" / "seed0" / "metrics.jsonl").read_text().splitlines()
  # same data order and dropout (paired), different start: the first training loss differs
  assert json.loads(zs[0])["train_loss"] != json.loads(ws[0])["train_loss"]


def test_completed_runs_are_skipped_and_more_seeds_extend(finished, assets):
  config, work, summary, _ = finished
  before = {mid: (work / "runs" / mid / "seed0" / "result.json").stat().st_mtime_ns for mid in IDS}
  again = experiment.run(config, work, out=io.StringIO())
  untimed = lambda d: {k: v for k, v in d.items() if k != "timing"}
  assert untimed(again) == untimed(summary)
  after = {mid: (work / "runs" / mid / "seed0" / "result.json").stat().st_mtime_ns for mid in IDS}
  assert before == after


def test_report_rebuilds_tables_from_the_runs_and_sets_the_paper_beside(finished, tmp_path):
  import shutil
  from mtlws_jax.eval import report, tables
  config, work, summary, _ = finished
  copy = tmp_path / "copy"
  shutil.copytree(work, copy)
  for f in ("results.json", "results.md"):
    (copy / f).unlink()
  shutil.rmtree(copy / "plots")
  for ckpt in copy.glob("runs/*/seed0/checkpoints"):  # intervals come from saved predictions alone
    shutil.rmtree(ckpt)
  md = report.rebuild(copy, paper_backbone="xlmr")
  assert set(summary["paired"]["rows"]) == {"target_only", "bilingual", "mtl", "mtl_ws"}
  untimed = lambda d: {k: v for k, v in d.items() if k != "timing"}
  assert untimed(json.loads((copy / "results.json").read_text())) == untimed(json.loads(json.dumps(summary)))
  assert md.startswith(tables.results_markdown(summary))
  assert (copy / "plots" / "convergence.png").exists() and (copy / "results.md").read_text() == md
  # the paper's XLM-R ABSA numbers (Table 3) in brackets, Avg. over our columns (es, fr)
  zs = summary["methods"]["zero_shot"]["test"]["mean"]
  assert f"| ZERO-SHOT | {zs['es']:.2f} (67.10) | {zs['fr']:.2f} (56.43) |" in md  # 1 seed: no "± 0.00"
  assert "± 0.00" not in md
  assert "(61.77) |" in md  # (67.10 + 56.43) / 2
  # a seed with an unfinished run is left out and named
  def copy_seed(mid):
    (copy / "runs" / mid / "seed1").mkdir(parents=True, exist_ok=True)
    for f in ("result.json", runfolder.PREDICTIONS):
      shutil.copy(copy / "runs" / mid / "seed0" / f, copy / "runs" / mid / "seed1" / f)

  for mid in IDS[:-1]:
    copy_seed(mid)
  md = report.rebuild(copy)
  assert "F1 (%), 1 seed" in md and "Not finished (left out): mtl_ws seed 1" in md
  # the rows that finished seed 1 reported alone over both seeds, paired with ZERO-SHOT
  md = report.rebuild(copy, only_rows=["zero_shot", "mtl"])
  assert "mean ± std over 2 seeds" in md and "| MTL |" in md and "MTL-WS" not in md and "Not finished" not in md
  assert "Difference to ZERO-SHOT (F1 points, mean over 2 paired seeds)" in md
  assert md.index("| ZERO-SHOT |") < md.index("| MTL |")
  md = report.rebuild(copy, only_rows=["mtl", "zero_shot"])  # rows in the order asked for
  assert md.index("| MTL |") < md.index("| ZERO-SHOT |")
  with pytest.raises(InputError, match=r"--rows: no row 'nope'"):
    report.rebuild(copy, only_rows=["nope"])
  # differences to another row (e.g. ZERO-SHOT at equal steps): the same resampled sentences, so
  # ZERO-SHOT - MTL is exactly the mirror of MTL - ZERO-SHOT, interval included
  to_zs = json.loads((copy / "results.json").read_text())["paired"]["rows"]["mtl"]
  md = report.rebuild(copy, only_rows=["zero_shot", "mtl"], baseline="mtl")
  assert "Difference to MTL (F1 points, mean over 2 paired seeds)" in md
  got = json.loads((copy / "results.json").read_text())["paired"]
  assert got["baseline"] == "mtl" and set(got["rows"]) == {"zero_shot"}
  for k, d in to_zs.items():
    m = got["rows"]["zero_shot"][k]
    assert m["diff"] == pytest.approx(-d["diff"], abs=1e-9)
    assert (m["low"], m["high"]) == (pytest.approx(-d["high"], abs=1e-9), pytest.approx(-d["low"], abs=1e-9))
    assert m["per_seed"] == pytest.approx([-x for x in d["per_seed"]], abs=1e-9)
  assert any(d["diff"] != 0 for d in to_zs.values())  # a real difference, not 0 == -0
  with pytest.raises(InputError, match=r"--baseline: no row 'zs_eq' among the rows reported"):
    report.rebuild(copy, only_rows=["zero_shot", "mtl"], baseline="zs_eq")
  with pytest.raises(InputError, match=r"--baseline: no row 'mtl_ws'"):
    report.rebuild(copy, only_rows=["zero_shot", "mtl"], baseline="mtl_ws")
  copy_seed("mtl_ws")
  md = report.rebuild(copy)
  assert "mean ± std over 2 seeds" in md and "± 0.00" in md  # two equal seeds: std 0
  assert "F1 (%), 1 seed" in report.rebuild(copy, seeds=[1])
  for mid in IDS:
    (copy / "runs" / mid / "seed0" / "result.json").unlink()
    (copy / "runs" / mid / "seed1" / "result.json").unlink()
  with pytest.raises(InputError, match="no seed has all its runs finished"):
    report.rebuild(copy)
  with pytest.raises(InputError, match="no config.json"):
    report.rebuild(tmp_path)


def test_workdir_of_another_config_is_refused_before_training(finished):
  config, work, _, _ = finished
  other = T.tiny_config(config.data_dir, config.model.path, **{"train.learning_rate": 5e-4})
  before = sorted(p.name for p in (work / "runs").iterdir())
  with pytest.raises(InputError, match=r"another config[\s\S]*train.learning_rate"):
    experiment.run(other, work, out=io.StringIO())
  assert sorted(p.name for p in (work / "runs").iterdir()) == before
  # choosing other methods or seeds is not another config
  experiment.prepare(T.tiny_config(config.data_dir, config.model.path, method="mtl", seeds=(3,)), work)


def _fails_before_training(config, tmp_path, match):
  work = tmp_path / "work"
  with pytest.raises(InputError, match=match):
    experiment.run(config, work, out=io.StringIO())
  assert not (work / "runs").exists() and not (work / "warmup").exists()


@pytest.mark.parametrize("field,value,message", [
    ("train.freeze", "(", r"config.train.freeze='\(' is not a regular expression \(missing \)"),
    ("data.gold", "absa/XABSA/gold-{lang}-{splt}.txt", r"unknown placeholder \{splt\}; a pattern may hold \{lang\}"),
    ("data.translated", "{lang}/{0}.txt", r"unknown placeholder \{0\}"),
    ("seeds", (2 ** 64 + 1,), r"config.seeds must be integers in \[0, 2\^63\)"),
    ("model.dropout", 1.0, r"config.model.dropout must be a finite number in \[0, 1\), got 1.0"),
    ("model.dropout", -0.1, r"config.model.dropout must be a finite number in \[0, 1\)"),
    ("train.learning_rate", float("inf"), r"config.train.learning_rate must be positive and finite, got inf"),
    ("train.grad_clip_norm", float("nan"), r"config.train.grad_clip_norm must be a finite number >= 0"),
    ("train.head_lr_scale", float("inf"), r"config.train.head_lr_scale must be a positive finite number"),
    ("warmup.gamma", float("inf"), r"config.warmup.gamma must be a positive finite number, got inf"),
    ("warmup.beta", float("nan"), r"config.warmup.beta must be a positive finite number, got nan"),
    ("warmup.outer_momentum", 1.0, r"config.warmup.outer_momentum must be a finite number in \[0, 1\)"),
])
def test_settings_are_checked_before_anything_runs(assets, tmp_path, field, value, message):
  """Issue 26, class 2: each bad setting is one InputError naming it and its range; nothing is written."""
  _fails_before_training(T.tiny_config(*assets, **{field: value}), tmp_path, message)
  assert not (tmp_path / "work").exists()


def test_a_config_without_a_field_the_runs_need_says_so(assets, tmp_path):
  config = T.tiny_config(*assets)
  del config.train["max_steps"]
  _fails_before_training(config, tmp_path, r"the config lacks a field the runs need \(.*max_steps.*\); build it "
                                           r"from configs/common.py's base_config\(\)")


def test_unknown_method(assets, tmp_path):
  _fails_before_training(T.tiny_config(*assets, method="zero_shot,bogus"), tmp_path, "unknown method 'bogus'")


def test_unknown_language(assets, tmp_path):
  _fails_before_training(T.tiny_config(*assets, target_langs=("es", "xx")), tmp_path,
                         "unknown target language 'xx'")
  # as the command line gives it: --config.target_langs=es,xx
  _fails_before_training(T.tiny_config(*assets, target_langs=("es,xx",)), tmp_path,
                         "unknown target language 'xx'")
  _fails_before_training(T.tiny_config(*assets, source_lang="de"), tmp_path, "unknown source language")


def test_translated_set_with_other_labels(assets, tmp_path):
  data = T.make_data(tmp_path / "data")
  smt = data / "absa" / "XABSA" / "smt-fr-train.txt"
  smt.write_text(smt.read_text().replace("T-NEU", "T-POS"))
  _fails_before_training(T.tiny_config(data, assets[1]), tmp_path,
                         r"smt-fr-train.txt: label set of the translated fr set .*missing: NEU")
  # zero_shot does not read translated sets: fine
  experiment.prepare(T.tiny_config(data, assets[1], method="zero_shot"), tmp_path / "w2")


def test_missing_files_are_listed(assets, tmp_path):
  data = T.make_data(tmp_path / "data")
  (data / "absa" / "XABSA" / "gold-fr-dev.txt").unlink()     # scored (selection.score_target_dev)
  (data / "absa" / "XABSA" / "smt-es-train.txt").unlink()
  _fails_before_training(T.tiny_config(data, assets[1]), tmp_path,
                         r"missing data files:\n.*gold-fr-dev.txt\n.*smt-es-train.txt")


def test_a_missing_target_test_set_is_trained_for_and_not_scored(assets, tmp_path):
  """ZERO-SHOT needs no target data: a language without a test file is not an error (issue 24)."""
  data = T.make_data(tmp_path / "data")
  (data / "absa" / "XABSA" / "gold-fr-test.txt").unlink()
  _, _, got = experiment.prepare(T.tiny_config(data, assets[1]), tmp_path / "w")
  assert set(got.target_test) == {"es"}
  assert got.untested == {"fr": str(data / "absa" / "XABSA" / "gold-fr-test.txt")}


def test_missing_data_dir_says_how_to_get_data(assets, tmp_path):
  _fails_before_training(T.tiny_config(tmp_path / "nowhere", assets[1]), tmp_path, "MTLWS_DATA_DIR")


def test_empty_training_set_after_filtering(assets, tmp_path):
  data = T.make_data(tmp_path / "data")
  train = data / "absa" / "XABSA" / "gold-en-train.txt"
  train.write_text(train.read_text().split("\n\n")[0] + "\n\n")  # one sentence
  # holding out a dev set from a one-sentence training file leaves nothing to train on
  c = T.tiny_config(data, assets[1], **{"data.source_dev_split": "", "data.dev_fraction": 0.5})
  _fails_before_training(c, tmp_path, "English training set is empty")
  train.write_text("")
  _fails_before_training(T.tiny_config(data, assets[1]), tmp_path, "gold-en-train.txt.*empty")


def test_bad_numbers(assets, tmp_path):
  _fails_before_training(T.tiny_config(*assets, **{"selection.eval_after": 99}), tmp_path, "eval_after")
  _fails_before_training(T.tiny_config(*assets, seeds=()), tmp_path, "seeds is empty")


def test_frozen_parameters_do_not_move():
  import jax.numpy as jnp
  import numpy as np
  from mtlws_jax.train import optim, steps
  params = {"emb": {"word_embeddings": jnp.arange(15.0).reshape(5, 3) / 10},
            "out": jnp.arange(6.0).reshape(3, 2) / 10}

  def apply_fn(p, batch, rng=None):
    return p["emb"]["word_embeddings"][batch["input_ids"]] @ p["out"]

  apply, opt = optim.frozen(apply_fn, optim.make_optimizer(0.1), params, "word_embeddings")
  step = steps.make_train_step(apply, opt, donate=False)
  batch = {"input_ids": np.array([[1, 2]]), "labels": np.array([[0, 0]])}
  new, state, m = step(params, opt.init(params), batch, None)
  np.testing.assert_array_equal(new["emb"]["word_embeddings"], params["emb"]["word_embeddings"])
  assert not np.allclose(new["out"], params["out"])
  assert int(optim.step_of(state)) == 1
  with pytest.raises(InputError, match="matches no parameter"):
    optim.frozen(apply_fn, optim.make_optimizer(0.1), params, "nothing_like_this")


def test_missing_model_without_fallback(assets, tmp_path):
  data, _ = assets
  c = T.tiny_config(data, "", **{"model.name": "no-such-model-anywhere"})
  _fails_before_training(c, tmp_path, "not found")


def test_source_dev_cap_leaves_target_sets_whole(assets, tmp_path):
  data, model = assets
  _, _, full = experiment.prepare(T.tiny_config(data, model), tmp_path / "a")
  _, _, got = experiment.prepare(T.tiny_config(data, model, **{"data.max_source_dev_sentences": 2}),
                                 tmp_path / "b")
  assert len(full.source_dev) == 6 and [s.tokens for s in got.source_dev] == [s.tokens for s in full.source_dev[:2]]
  assert {l: len(v) for l, v in got.target_test.items()} == {"es": 6, "fr": 6}
  assert len(got.source_train) == len(full.source_train) == 16


@pytest.mark.parametrize("field,value,message", [
    ("warmup.gamma", 1e12, r"warmup mtl_ws epoch 2: the outer move made the shared parameters diverge .*lower "
                           r"warmup.gamma \(the outer step, 1e\+12 with outer=sgd\)"),
    ("warmup.beta", 1e9, r"warmup mtl_ws epoch 2: the inner SGD steps diverged .*lower warmup.beta \(the inner rate, 1e\+09\)"),
])
def test_a_non_finite_warmup_names_the_setting_that_caused_it(assets, tmp_path, field, value, message):
  """Issue 26, class 2: a diverging warmup blames gamma or beta, whichever made it diverge."""
  with pytest.raises(FloatingPointError, match=message):
    experiment.run(T.tiny_config(*assets, method="mtl_ws", **{field: value}), tmp_path / "w", out=io.StringIO())
