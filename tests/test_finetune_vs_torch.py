"""benchmarks/finetune_vs_torch.py without training: the plateau rule and --summarize (merging the
files of separate invocations). The training itself is a benchmark, not a test."""

import importlib.util
import json
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "finetune_vs_torch.py"
spec = importlib.util.spec_from_file_location("finetune_vs_torch", SCRIPT)
ft = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ft)


def curve(*points):
  return [{"step": s, "dev_f1": f, "n_pred": n, "train_loss": 0.5} for s, f, n in points]


def test_one_early_evaluation_without_spans_is_no_plateau():
  got = ft.derive({"curve": curve((100, 0.0, 0), (200, 36.1, 300), (300, 40.6, 400))}, steps=300)
  assert got["no_span_steps"] == 100 and not got["plateau"]
  assert got["first_step_f1_10"] == 200 and got["best_dev_f1"] == 40.6 and got["no_span_evals"] == 1


def test_no_span_for_most_of_training_is_a_plateau():
  # the seed 0: no span on dev at steps 100-500 of 600
  points = [(s, 0.0, 0) for s in range(100, 600, 100)] + [(600, 34.9, 250)]
  got = ft.derive({"curve": curve(*points)}, steps=600)
  assert got["no_span_steps"] == 500 and got["plateau"]


def test_a_stretch_in_the_middle_counts_and_never_learning_is_a_plateau():
  mid = ft.derive({"curve": curve((50, 20.0, 9), (100, 0.0, 0), (150, 0.0, 0), (200, 0.0, 0),
                                  (250, 30.0, 99), (300, 31.0, 99))}, steps=300)
  assert mid["no_span_steps"] == 150 and mid["plateau"]
  never = ft.derive({"curve": curve((100, 2.0, 5), (200, 5.0, 9), (300, 8.0, 20))}, steps=300)
  assert never["no_span_steps"] == 0 and never["first_step_f1_10"] is None and never["plateau"]


def result_file(path, framework, seeds, **settings):
  base = {"model": "m", "frameworks": framework, "seeds": ",".join(map(str, seeds)), "steps": 300,
          "eval_every": 100, "lr": 1e-4}
  runs = {f"{framework}/seed{s}": {"curve": curve((100, 0.0, 0), (200, 30.0 + s, 99), (300, 35.0 + s, 99)),
                                   "seconds": 1.0, "plateau": True} for s in seeds}
  path.write_text(json.dumps({"what": "w", "settings": base | settings, "runs": runs, "summary": {}}))
  return path


def summarize(*files, out=None):
  cmd = [sys.executable, str(SCRIPT), "--summarize=" + ",".join(map(str, files))] + ([f"--out={out}"] if out else [])
  return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


def test_summarize_merges_frameworks_and_rederives_the_flags(tmp_path):
  a = result_file(tmp_path / "jax.json", "jax", [0, 1, 2])
  b = result_file(tmp_path / "torch.json", "torch", [0, 1])
  p = summarize(a, b, out=tmp_path / "all.json")
  assert p.returncode == 0, p.stderr
  got = json.loads((tmp_path / "all.json").read_text())
  assert got["settings"]["frameworks"] == "jax,torch" and got["settings"]["lr"] == 1e-4
  assert sorted(got["runs"]) == ["jax/seed0", "jax/seed1", "jax/seed2", "torch/seed0", "torch/seed1"]
  assert not any(r["plateau"] for r in got["runs"].values())  # the old flag (True) is re-derived
  assert got["summary"]["jax"] == {"best_dev_f1_mean": 36.0, "best_dev_f1_std": 1.0, "plateau_runs": 0, "runs": 3}
  assert got["summary"]["torch"]["best_dev_f1_mean"] == 35.5 and got["summary"]["torch"]["runs"] == 2


@pytest.mark.parametrize("case", ["settings", "same_run", "missing", "not_json", "not_ours", "runs_list", "bad_curve"])
def test_summarize_refuses_bad_files_with_one_line(tmp_path, case):
  a = result_file(tmp_path / "a.json", "jax", [0])
  if case == "settings":
    b, want = result_file(tmp_path / "b.json", "torch", [0], lr=2e-4), "differ in settings lr"
  elif case == "same_run":
    b, want = result_file(tmp_path / "b.json", "jax", [0]), "run jax/seed0 is in more than one file"
  elif case == "missing":
    b, want = tmp_path / "nope.json", "nope.json: No such file"
  elif case == "not_json":
    b = tmp_path / "b.json"
    b.write_text('{"runs":\n')
    want = "b.json:2: not JSON"
  else:
    b = tmp_path / "b.json"
    b.write_text({"not_ours": '{"runs": {}}', "runs_list": '{"settings": {"steps": 300}, "runs": []}',
                  "bad_curve": '{"settings": {"steps": 300}, "runs": {"jax/seed1": {"curve": [{"step": 100}]}}}'}[case])
    want = "b.json:1: not a finetune_vs_torch result"
  p = summarize(a, b, out=tmp_path / "out.json")
  assert p.returncode == 1 and "Traceback" not in p.stderr
  assert p.stderr.strip().startswith("error: ") and want in p.stderr and len(p.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "out.json").exists()


def test_jobs_trains_runs_at_once_and_keeps_their_order(tmp_path, monkeypatch):
  import argparse
  import threading
  import time
  running, peak, lock = [0], [0], threading.Lock()

  def fake_run(cmd, **kw):  # one framework:seed subprocess: report a curve after a while
    assert not any(a.startswith(("--jobs", "--out", "--summarize")) for a in cmd)  # the child trains one run
    assert "--lr=0.0001" in cmd and "--frameworks=jax,torch" in cmd  # the parsed settings
    fw, seed = cmd[-1].split("=")[1].split(":")
    with lock:
      running[0] += 1
      peak[0] = max(peak[0], running[0])
    time.sleep(0.2 if seed == "0" else 0.05)  # seed 0 finishes last
    with lock:
      running[0] -= 1
    got = {"curve": curve((100, 10.0 + int(seed), 5)), "seconds": 0.1}
    return subprocess.CompletedProcess(cmd, 0, stdout="log\nRESULT " + json.dumps(got) + "\n", stderr="")

  monkeypatch.setattr(ft.subprocess, "run", fake_run)
  args = argparse.Namespace(frameworks="jax,torch", seeds="0,1", steps=100, jobs=2, out=str(tmp_path / "o.json"),
                            one="", summarize="", lr=1e-4)
  out = ft.train_all(args)
  assert peak[0] == 2
  assert list(out["runs"]) == ["jax/seed0", "jax/seed1", "torch/seed0", "torch/seed1"]
  assert out["summary"]["jax"]["best_dev_f1_mean"] == 10.5 and "jobs" not in out["settings"]
  assert json.loads((tmp_path / "o.json").read_text())["runs"].keys() == out["runs"].keys()
