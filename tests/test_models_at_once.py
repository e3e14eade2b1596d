"""Several models in one compiled program (train.models_at_once): the same selection, scores and
predictions per model as one by one, resumable after a kill, refused when they cannot fit."""

from __future__ import annotations

import io
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import _tiny_absa as T
from mtlws_jax import experiment, runfolder
from mtlws_jax.errors import InputError

ROOT = pathlib.Path(__file__).resolve().parents[1]
METHODS = "zero_shot,mtl_ws,target_only"   # ZERO-SHOT, MTL-WS and TO-es/fr share one train setting
IDS = ("zero_shot", "mtl_ws", "target_only-es", "target_only-fr")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
  root = tmp_path_factory.mktemp("assets")
  return T.make_data(root / "data"), T.make_model(root / "model")


def _losses(work, mid):
  lines = [json.loads(l) for l in (work / "runs" / mid / "seed0" / "metrics.jsonl").read_text().splitlines()]
  return [l["train_loss"] for l in lines if "train_loss" in l], [(l["step"], l["dev_f1"]) for l in lines if "dev_f1" in l]


def _same_results(a, b):
  for mid in IDS:
    ra, rb = (runfolder.read_result(runfolder.run_folder(w, mid, 0)) for w in (a, b))
    for key in ("best_step", "english_dev", "target_test"):
      assert ra[key] == rb[key], (mid, key, ra[key], rb[key])
    la, da = _losses(a, mid)
    lb, db = _losses(b, mid)
    np.testing.assert_allclose(lb, la, rtol=1e-4, atol=1e-5, err_msg=mid)
    assert db == da, mid
    assert runfolder.read_predictions(runfolder.run_folder(a, mid, 0)) == runfolder.read_predictions(
        runfolder.run_folder(b, mid, 0)), mid


def test_four_models_at_once_equal_one_by_one(assets, tmp_path):
  data, model = assets
  one = experiment.run(T.tiny_config(data, model, method=METHODS), tmp_path / "one", out=io.StringIO())
  out = io.StringIO()
  four = experiment.run(T.tiny_config(data, model, method=METHODS, **{"train.models_at_once": 4}),
                        tmp_path / "four", out=out)
  assert "training up to 4 models at once" in out.getvalue()
  _same_results(tmp_path / "one", tmp_path / "four")
  untimed = lambda d: {k: v for k, v in d.items() if k != "timing"}
  assert untimed(one) == untimed(four)
  # the setting changes no result, so a workdir may be continued with another value
  experiment.prepare(T.tiny_config(data, model, method=METHODS, **{"train.models_at_once": 2}), tmp_path / "one")


def test_too_many_models_are_refused_before_training(assets, tmp_path):
  data, model = assets
  with pytest.raises(InputError, match=r"models_at_once=100000000 needs about .* GiB .* at most \d+ will fit"):
    experiment.run(T.tiny_config(data, model, method=METHODS, **{"train.models_at_once": 10 ** 8}),
                   tmp_path / "w", out=io.StringIO())
  assert not (tmp_path / "w" / "runs").exists()


@pytest.mark.alone(seconds=107)
@pytest.mark.slow
def test_killed_group_resumes_to_the_same_results(assets, tmp_path):
  data, model = assets
  overrides = {"method": METHODS, "train.models_at_once": 4, "checkpoint_every": 8}
  cmd = [sys.executable, str(ROOT / "run.py"), "--config=" + str(ROOT / "configs" / "tiny.py"),
         f"--config.data_dir={data}", f"--config.model.path={model}",
         *(f"--config.{k}={v}" for k, v in overrides.items()), f"--workdir={tmp_path / 'cut'}"]
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  victim = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  latest = tmp_path / "cut" / "runs" / "target_only-fr" / "seed0" / "checkpoints" / "latest"
  killed = {}

  def watch():  # kill right after the last model of the group saved its first checkpoint
    deadline = time.time() + 300
    while victim.poll() is None and time.time() < deadline:
      if latest.exists() and any(p.name.isdigit() for p in latest.iterdir()):
        victim.send_signal(signal.SIGKILL)
        killed["at"] = sorted(p.name for p in latest.iterdir())
        break
      time.sleep(0.01)

  watcher = threading.Thread(target=watch)
  watcher.start()
  full = tmp_path / "full"
  experiment.run(T.tiny_config(data, model, **overrides), full, out=io.StringIO())
  watcher.join()
  assert victim.wait() == -signal.SIGKILL, "the group finished before it could be killed"
  assert not (tmp_path / "cut" / "runs" / "zero_shot" / "seed0" / "result.json").exists()
  again = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert again.returncode == 0, again.stderr[-3000:]
  _same_results(full, tmp_path / "cut")
