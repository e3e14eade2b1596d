"""Kill `run.py` mid-experiment, start the same command again: same results as never stopped."""

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

import pytest

import _tiny_absa as T
from mtlws_jax import experiment, runfolder

ROOT = pathlib.Path(__file__).resolve().parents[1]
OVERRIDES = {"method": "zero_shot,mtl_ws", "train.max_steps": 24, "checkpoint_every": 8,
             "selection.eval_after": 8}


def _command(data, model, workdir):
  return [sys.executable, str(ROOT / "run.py"), "--config=" + str(ROOT / "configs" / "tiny.py"),
          f"--config.data_dir={data}", f"--config.model.path={model}",
          *(f"--config.{k}={v}" for k, v in OVERRIDES.items()), f"--workdir={workdir}"]


def _latest_steps(workdir: pathlib.Path) -> list[int]:
  folder = workdir / "runs" / "zero_shot" / "seed0" / "checkpoints" / "latest"
  return sorted(int(p.name) for p in folder.glob("*") if p.name.isdigit()) if folder.exists() else []


@pytest.mark.alone(seconds=52)
@pytest.mark.slow
def test_killed_run_resumes_to_identical_results(tmp_path):
  data, model = T.make_data(tmp_path / "data"), T.make_model(tmp_path / "model")
  env = dict(os.environ, PYTHONPATH=str(ROOT))  # the session's XLA cache (conftest) is shared
  cut = tmp_path / "cut"
  # The run to kill starts first; a watcher kills it (SIGKILL: no cleanup of any kind) right
  # after the first checkpoint of its first run, i.e. in the middle of training, while the
  # uninterrupted reference runs here in-process.
  victim = subprocess.Popen(_command(data, model, cut), env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  killed = {}

  def watch():
    deadline = time.time() + 300
    while victim.poll() is None and time.time() < deadline:
      if _latest_steps(cut):
        victim.send_signal(signal.SIGKILL)
        killed["at"] = max(_latest_steps(cut))
        break
      time.sleep(0.01)

  watcher = threading.Thread(target=watch)
  watcher.start()
  full = experiment.run(T.tiny_config(data, model, **OVERRIDES), tmp_path / "full", out=io.StringIO())
  watcher.join()
  assert victim.wait() == -signal.SIGKILL, "the run finished before it could be killed"
  assert killed["at"] < 24 and not (cut / "results.json").exists()
  assert not (cut / "runs" / "zero_shot" / "seed0" / "result.json").exists()

  again = subprocess.run(_command(data, model, cut), env=env, cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
  assert again.returncode == 0, again.stdout + again.stderr
  assert "| ZERO-SHOT |" in again.stdout and "| MTL-WS |" in again.stdout
  untimed = lambda d: {k: v for k, v in d.items() if k != "timing"}  # wall-clock seconds differ
  assert untimed(json.loads((cut / "results.json").read_text())) == untimed(json.loads(json.dumps(full)))
  for mid in ("zero_shot", "mtl_ws"):  # and the saved predictions
    folder = lambda w: w / "runs" / mid / "seed0"
    assert runfolder.read_predictions(folder(cut)) == runfolder.read_predictions(folder(tmp_path / "full"))
  for mid in ("zero_shot", "mtl_ws"):
    read = lambda w: [{k: v for k, v in json.loads(l).items() if k != "steps_per_sec"}
                      for l in (w / "runs" / mid / "seed0" / "metrics.jsonl").read_text().splitlines()]
    assert read(cut) == read(tmp_path / "full")
