"""results.json statistics, the paper-layout table and the plots, from hand-made run results."""

from __future__ import annotations

import json

import ml_collections
import numpy as np
import pytest

from mtlws_jax import plan
from mtlws_jax.eval import plots, report, tables


def _config(seeds=(0, 1), method="zero_shot,target_only,mtl_ws"):
  import pathlib
  import sys
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from configs import common
  c = common.ner(common.base_config())
  c.task, c.seeds, c.method = "ner", seeds, method
  c.target_langs = ("es", "de")
  c.model.name = "xlm-roberta-base"
  return c


def _result(f1s: dict, en=0.9):
  return {"best_step": 10, "english_dev": en, "train_examples": 5,
          "target_test": {l: {"f1": v} for l, v in f1s.items()},
          "target_dev": {l: {"f1": v / 2} for l, v in f1s.items()}}


@pytest.fixture
def summary(tmp_path):
  c = _config()
  runs = plan.plan_rows(c)
  results = {
      "zero_shot": {0: _result({"es": 0.70, "de": 0.60}), 1: _result({"es": 0.80, "de": 0.64})},
      "target_only-es": {0: _result({"es": 0.50}), 1: _result({"es": 0.52})},
      "target_only-de": {0: _result({"de": 0.40}), 1: _result({"de": 0.44})},
      "mtl_ws": {0: _result({"es": 0.75, "de": 0.70}), 1: _result({"es": 0.77, "de": 0.72})},
  }
  (tmp_path / "warmup" / "mtl_ws" / "seed0").mkdir(parents=True)
  (tmp_path / "warmup" / "mtl_ws" / "seed0" / "effect.json").write_text(json.dumps(
      {"param_rel_change": 1e-6, "mean_loss_before": 2.0, "mean_loss_after": 1.5}))
  return report.summarize(c, runs, results, tmp_path)


def test_mean_std_and_average(summary):
  zs = summary["methods"]["zero_shot"]["test"]
  assert zs["per_seed"]["0"] == pytest.approx({"es": 70.0, "de": 60.0, "avg": 65.0})
  assert zs["mean"]["es"] == pytest.approx(75.0)
  assert zs["std"]["es"] == pytest.approx(np.std([70, 80], ddof=1))
  assert zs["mean"]["avg"] == pytest.approx(np.mean([65, 72]))
  assert zs["std"]["avg"] == pytest.approx(np.std([65, 72], ddof=1))
  to = summary["methods"]["target_only"]["test"]["per_seed"]["1"]
  assert to == pytest.approx({"es": 52.0, "de": 44.0, "avg": 48.0})
  assert summary["methods"]["zero_shot"]["dev"]["mean"]["es"] == pytest.approx(37.5)
  assert summary["warmup_effect"]["mtl_ws"]["0"]["param_rel_change"] == 1e-6
  json.dumps(summary)


def test_markdown_is_the_paper_layout(summary):
  md = tables.results_markdown(summary)
  lines = md.splitlines()
  header = lines.index("| Model | es | de | Avg. |")
  assert lines[header + 2].startswith("| ZERO-SHOT | 75.00 ± 7.07 | 62.00 ± 2.83 | 68.50 ± 4.95 |")
  assert lines[header + 3].startswith("| TO | 51.00 ± 1.41 |")
  assert lines[header + 4].startswith("| MTL-WS | 76.00 ± 1.41 | 71.00 ± 1.41 |")
  assert "2.0000 -> 1.5000" in md
  assert "target dev" in tables.results_markdown(summary, split="dev")


def test_single_seed_has_no_std(tmp_path):
  c = _config(seeds=(3,), method="zero_shot")
  s = report.summarize(c, plan.plan_rows(c), {"zero_shot": {3: _result({"es": 0.5, "de": 0.25})}})
  assert s["methods"]["zero_shot"]["test"]["std"] == {"es": None, "de": None, "avg": None}
  md = tables.results_markdown(s)
  assert "| ZERO-SHOT | 50.00 | 25.00 | 37.50 |" in md and "±" not in md


def test_plots(summary, tmp_path):
  for mid, curve in (("zero_shot", [0.2, 0.4, 0.5]), ("mtl_ws", [0.3, 0.5, 0.55])):
    for seed in (0, 1):
      d = tmp_path / "runs" / mid / f"seed{seed}"
      d.mkdir(parents=True)
      lines = [{"step": 10 * (i + 1), "train_loss": 1.0 / (i + 1)} for i in range(3)]
      lines += [{"step": 10 * (i + 1), "dev_f1": f} for i, f in enumerate(curve)]
      (d / "metrics.jsonl").write_text("".join(json.dumps(l) + "\n" for l in lines))
  assert summary["warmup_pairs"] == [["zero_shot", "mtl_ws"]]
  made = plots.plot_all(summary, tmp_path)
  assert {p.name for p in made} == {"f1_per_language.png", "convergence.png"}
  for p in made:
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
  f1, loss = plots._curves(tmp_path, "mtl_ws", [0, 1])
  assert f1 == pytest.approx({10: 30.0, 20: 50.0, 30: 55.0})
  assert loss == pytest.approx({10: 1.0, 20: 0.5, 30: 1 / 3})


def test_a_grid_run_in_parts_keeps_every_row_and_seed_in_config_json(tmp_path):
  """run.py --config.method=... --config.seeds=... on one workdir, part by part: the report plans
  from config.json, so it must hold the union of the parts, not the last one alone."""
  from mtlws_jax import workdir
  c = plan.normalize(_config(seeds=(0,), method="zero_shot,mtl_ws"))
  workdir.write_config(c, tmp_path)
  with c.unlocked():
    c.method, c.seeds = "mtl,zero_shot", (1, 0)
  workdir.check(c, tmp_path)  # the parts are one config
  saved = workdir.write_config(c, tmp_path)
  assert saved["method"] == "zero_shot,mtl_ws,mtl" and saved["seeds"] == [0, 1]
  on_disk = json.loads((tmp_path / "config.json").read_text())
  assert on_disk["method"] == "zero_shot,mtl_ws,mtl" and on_disk["seeds"] == [0, 1]
  assert list(plan.plan_rows(plan.normalize(ml_collections.ConfigDict(
      {k: v for k, v in on_disk.items() if k != "workdir_format"})))) == ["zero_shot", "mtl_ws", "mtl"]


def test_bold_only_where_a_difference_holds_over_seeds(summary):
  """The Avg. cell is bold only where both seed-level intervals exclude 0 (never a language cell,
  whose seed-level intervals the table does not print); the noise lines use the placebo row."""
  from mtlws_jax.eval import bootstrap
  rng = np.random.default_rng(0)

  def counts(p, sd):
    rows = []
    for _ in range(3):
      q = np.clip(p + rng.normal(0, sd), 0.01, 0.99)
      hit = (rng.random(300) < q).astype(np.int64)
      rows.append(np.stack([hit, np.ones(300, np.int64), hit], axis=1))
    return np.stack(rows)
  base = {l: counts(0.5, 0.0) for l in ("es", "de")}
  rows = {"target_only": {l: counts(0.8, 0.0) for l in base},   # far ahead on every seed
          "mtl_ws": {l: counts(0.5, 0.1) for l in base}}        # seed noise only
  paired = {"baseline": "zero_shot", "n_resamples": 300, "confidence": 0.95, "rows": {}, "missing": []}
  for name, c in rows.items():
    pairs = {l: (c[l], base[l]) for l in base}
    got = bootstrap.paired_difference(pairs, n_resamples=300)
    for k, v in bootstrap.seed_level(pairs, n_resamples=300).items():
      got[k].update({x: y for x, y in v.items() if x != "diff"})
    paired["rows"][name] = got
  summary = dict(summary, paired=paired, seeds=[0, 1, 2],
                 warmup_effect={"mtl_ws": {"0": {"param_rel_change": 1e-8}}})
  md = tables.results_markdown(summary)
  diff_row = lambda label: next(l for l in md.splitlines() if l.startswith(f"| {label} |") and "[" in l)
  to, ws = diff_row("TO"), diff_row("MTL-WS")
  cells = to.split(" | ")
  assert paired["rows"]["target_only"]["avg"]["holds"] and cells[3].startswith("**") and "**" not in cells[1] + cells[2]
  assert not paired["rows"]["mtl_ws"]["avg"]["holds"] and "**" not in ws
  assert "Avg., seeds x sentences" in md and "Avg., t over seeds" in md
  assert "the placebo row MTL-WS" in md and "With 3 seeds, differences under" in md and "cannot be told apart" in md


def test_one_seed_says_no_difference_can_hold(summary):
  paired = {"baseline": "zero_shot", "n_resamples": 10, "confidence": 0.95, "missing": [],
            "rows": {"mtl_ws": {k: {"diff": 1.0, "low": 0.5, "high": 1.5, "excludes_zero": True, "per_seed": [1.0],
                                    "seed_low": 0.5, "seed_high": 1.5, "t_low": None, "t_high": None,
                                    "p_seeds": None, "seed_std": None, "holds": False}
                                for k in ("es", "de", "avg")}}}
  md = tables.results_markdown(dict(summary, paired=paired, seeds=[0]))
  assert "One seed: training noise cannot be measured" in md
  assert not [l for l in md.splitlines() if l.startswith("| MTL-WS |") and "**" in l]


@pytest.mark.parametrize("content, problem", [
    ('{"x": 1}', "format None, expected 1"),
    ('[1, 2]', "not a JSON object"),
    ('{"format": 2, "gold_digest": {}, "splits": {}}', "format 2, expected 1"),
    ('{"format": 1, "gold_digest": [], "splits": {}}', "gold_digest is not an object of strings"),
    ('{"format": 1, "gold_digest": {"test:es": "ab"}, "splits": {"test:es": "O O"}}',
     "splits.test:es is not a list of tag strings"),
    ('{"format": 1, "gold_digest": {"test:es": "ab"}, "splits": {"test:es": ["O", 3]}}',
     "splits.test:es is not a list of tag strings"),
])
def test_saved_predictions_are_read_back_as_input(tmp_path, content, problem):
  """A predictions file that decodes but is not ours is named, never a KeyError (found by a fault probe)."""
  import gzip
  from mtlws_jax import runfolder
  from mtlws_jax.errors import InputError
  path = tmp_path / runfolder.PREDICTIONS
  path.write_bytes(gzip.compress(content.encode()))
  with pytest.raises(InputError) as e:
    runfolder.read_predictions(tmp_path)
  assert problem in str(e.value) and str(path) in str(e.value)
  runfolder.save_predictions(tmp_path, {"test:es": [["B-LOC", "O"], []]}, {"test:es": "ab"})
  assert runfolder.read_predictions(tmp_path) == {"gold_digest": {"test:es": "ab"},
                                                  "splits": {"test:es": [["B-LOC", "O"], []]}}


@pytest.mark.parametrize("content, problem", [
    ("[]", "not a JSON object"),                       # was read as falsy: the row's warmup silently dropped
    ('{"param_rel_change": "x"}', "param_rel_change is not a number"),   # was a KeyError
    ('{"param_rel_change": 1e-8, "mean_loss_after": null}', "mean_loss_after is not a number"),
])
def test_a_warmup_effect_is_read_back_as_input(tmp_path, content, problem):
  from mtlws_jax import runfolder
  from mtlws_jax.errors import InputError
  folder = runfolder.warmup_folder(tmp_path, "ws_eq7", 0)
  folder.mkdir(parents=True)
  runfolder.write_effect(folder, {"param_rel_change": 1e-8, "mean_loss_before": 2.8, "mean_loss_after": 2.8})
  assert runfolder.warmup_effect(tmp_path, "ws_eq7", 0)["param_rel_change"] == 1e-8
  (folder / runfolder.EFFECT).write_text(content)
  with pytest.raises(InputError) as e:
    runfolder.warmup_effect(tmp_path, "ws_eq7", 0)
  assert problem in str(e.value) and str(folder / runfolder.EFFECT) in str(e.value)


@pytest.mark.parametrize("flag, named", [("--seeds=0,1,0", "0"), ("--rows=zero_shot,mtl,zero_shot", "zero_shot")])
def test_the_report_refuses_a_seed_or_row_named_twice(tmp_path, capsys, flag, named):
  """A seed listed twice paired a run with itself: 'with 2 seeds' and a spread of 0.00 were printed."""
  with pytest.raises(SystemExit) as e:
    report._main([str(tmp_path), flag])
  assert e.value.code == 1
  assert capsys.readouterr().err.strip() == (f"error: python -m mtlws_jax.eval.report: {flag.split('=')[0]} names "
                                             f"{named} more than once (see --help)")
