"""README's commands as a user types them: relative config paths and relative / default workdirs.

orbax needs absolute checkpoint paths; a relative --workdir (or the default runs/<config>) once
crashed at the first checkpoint. Here run.py and the report CLI run from a scratch folder with
paths relative to it, on the tiny config (tiny model and data written by the test).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import _tiny_absa as T

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env():
  return dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))


@pytest.mark.alone(seconds=63)
def test_relative_and_default_workdirs(tmp_path):
  T.make_data(tmp_path / "data")
  T.make_model(tmp_path / "model")
  shutil.copytree(ROOT / "configs", tmp_path / "configs")
  common = ["--config.data_dir=data", "--config.model.path=model", "--config.method=zero_shot,mtl_ws"]
  # the default workdir: runs/<config name>, relative to where the command runs
  p = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config=configs/tiny.py", *common],
                     cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  assert "| ZERO-SHOT |" in p.stdout and (tmp_path / "runs" / "tiny" / "results.md").exists()
  assert not list(tmp_path.rglob("*.orbax-checkpoint-tmp*"))
  # an explicit relative workdir, then the report on it
  p = subprocess.run([sys.executable, str(ROOT / "run.py"), "--config=configs/tiny.py", "--workdir=runs/absa",
                      *common], cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
  assert p.returncode == 0, p.stderr[-3000:]
  r = subprocess.run([sys.executable, "-m", "mtlws_jax.eval.report", "runs/absa", "--paper=xlmr"],
                     cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  assert "| MTL-WS |" in r.stdout and "(57.96)" in r.stdout  # the paper's XLM-R fr number beside ours
  assert "Difference to ZERO-SHOT" in r.stdout
