"""Configs carry the paper's settings (appendix Table 6 and A.2) and point at real files."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

from mtlws_jax import experiment
from mtlws_jax.data import tasks
from mtlws_jax.train import methods

ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER = [f"{t}_{b}" for t in ("ner", "srl", "absa") for b in ("mbert", "xlmr")]


def load(name: str):
  if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
  spec = importlib.util.spec_from_file_location(f"cfg_{name}", ROOT / "configs" / f"{name}.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config()


# (Z, K, lr, batch, max_steps, eval_every, eval_after, max_length) from the paper's appendix.
EXPECTED = {
    "ner_mbert": (100, 5, 5e-5, 8, 3000, 200, 2000, 128),
    "ner_xlmr": (50, 20, 1e-5, 4, 6000, 400, 4000, 128),
    "srl_mbert": (50, 30, 5e-5, 8, 10000, 1000, 0, 512),
    "srl_xlmr": (100, 30, 1e-5, 4, 20000, 2000, 0, 512),
    "absa_mbert": (100, 20, 5e-5, 8, 1500, 100, 1000, 512),
    "absa_xlmr": (100, 20, 1e-5, 4, 1500, 100, 1000, 512),
}


@pytest.mark.parametrize("name", PAPER)
def test_paper_settings(name):
  c = load(name)
  z, k, lr, bs, steps, every, after, max_len = EXPECTED[name]
  assert (c.warmup.epochs, c.warmup.steps) == (z, k)
  assert (c.warmup.gamma, c.warmup.beta) == (5e-5, 1e-3)
  assert c.train.learning_rate == lr and c.train.batch_size == bs
  assert (c.train.max_steps, c.selection.eval_every, c.selection.eval_after) == (steps, every, after)
  assert c.data.max_length == max_len
  assert c.model.name == ("bert-base-multilingual-cased" if "mbert" in name else "xlm-roberta-base")
  assert c.method == "all" and len(c.seeds) == 5
  experiment.check_config(c)
  for m in methods.METHODS:  # every method plans for the configured languages
    assert methods.plan(m, c.target_langs, source=c.source_lang,
                        available=[l for l in c.data.languages if l != c.source_lang])


def test_task_languages():
  assert load("ner_mbert").target_langs == ("es", "de", "nl")
  assert load("srl_xlmr").target_langs == ("fr", "es", "de", "it", "pt", "fi")
  assert set(load("absa_xlmr").target_langs) <= {"fr", "es", "tr", "nl", "ru"}


REPRO = ["repro_absa_cpu", "repro_ner_cpu", "repro_absa_gpu"]


@pytest.mark.parametrize("name", ["demo", "tiny", *REPRO])
def test_runnable_configs_are_valid(name):
  c = load(name)
  experiment.check_config(c)
  assert list(experiment.plan_runs(c)) == list(methods.METHODS)
  assert c.model.name == ("tiny" if name == "tiny" else "e5-small")


def test_gpu_reproduction_keeps_the_papers_budget():
  c, paper = load("repro_absa_gpu"), EXPECTED["absa_mbert"]
  assert (c.warmup.epochs, c.warmup.steps, c.train.learning_rate, c.train.batch_size, c.train.max_steps,
          c.selection.eval_every, c.selection.eval_after, c.data.max_length) == paper
  assert (c.warmup.gamma, c.warmup.beta, c.seeds, c.train.freeze, c.model.num_layers) == (5e-5, 1e-3, (0, 1, 2, 3, 4), "", 0)


def test_cpu_reproductions_share_one_budget():
  a, n = load("repro_absa_cpu"), load("repro_ner_cpu")
  for c in (a, n):
    assert (c.model.num_layers, c.train.max_steps, c.train.batch_size, c.seeds) == (4, 250, 8, (0, 1))
  assert a.target_langs == ("fr", "es", "nl", "ru") and n.target_langs == ("es", "de", "nl")


@pytest.mark.parametrize("name", ["demo", "tiny"])
def test_small_configs_are_valid(name):
  c = load(name)
  experiment.check_config(c)
  experiment.plan_runs(c)
  assert c.train.max_steps <= 200


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["ner_mbert", "absa_xlmr", "demo", *REPRO])
def test_real_files_exist(name, data_dir):
  c = load(name)
  c.data_dir = str(data_dir)
  plan = tasks.file_plan(c, c.target_langs)
  tasks.check_files(plan)


@pytest.mark.realdata
def test_srl_gold_files_exist_and_translated_are_documented_as_missing(data_dir):
  c = load("srl_mbert")
  c.data_dir = str(data_dir)
  plan = tasks.file_plan(c, [])
  tasks.check_files(plan)
  with pytest.raises(Exception, match="projection"):
    tasks.check_files(tasks.file_plan(c, ["fr"]))


# The warmup study's configs (issue 11): rows, budgets and the equal-steps rows' extra steps.
STUDY = {  # name: (target languages, seeds, steps, rows, warmup inner steps Z x K x |L|)
    "study_absa_cpu": (("fr", "es", "nl", "ru"), (0, 1, 2), 300,
                       ["zero_shot", "mtl", "ws_eq7", "ws_adam", "ws_reptile", "ws_nesterov", "zs_eq", "mtl_eq"], 200),
    "study_ner_cpu": (("es", "de", "nl"), (0, 1, 2), 300,
                      ["zero_shot", "mtl", "ws_eq7", "ws_adam", "ws_reptile", "ws_nesterov", "zs_eq", "mtl_eq"], 150),
    "study_ner_cpu_long": (("es", "de", "nl"), (0, 1, 2), 900, ["zero_shot", "ws_nesterov", "zs_eq"], 150),
    "study_absa_gpu": (("fr", "es", "nl", "ru"), (0, 1, 2, 3, 4), 1500,
                       ["zero_shot", "mtl", "ws_eq7", "ws_adam", "ws_reptile", "ws_nesterov", "zs_eq", "mtl_eq"], 8000),
}


@pytest.mark.parametrize("name", sorted(STUDY))
def test_study_configs(name):
  from mtlws_jax import plan
  langs, seeds, steps, rows, warmup_steps = STUDY[name]
  c = load(name)
  experiment.check_config(c)
  got = plan.plan_rows(plan.normalize(c))
  assert (c.target_langs, c.seeds, c.train.max_steps) == (langs, seeds, steps)
  assert list(got) == rows
  assert c.warmup.epochs * c.warmup.steps * len(langs) == warmup_steps
  for name_, row in got.items():  # equal steps: the warmup's inner steps spent as training steps
    extra = warmup_steps if name_.endswith("_eq") else 0
    assert row.train["max_steps"] == steps + extra, name_
    assert (row.warmup is not None and row.warmup_steps == warmup_steps) == name_.startswith("ws_"), name_
