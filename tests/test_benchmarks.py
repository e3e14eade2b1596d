"""The benchmark collector: reads each script's JSON, records failures as entries, never crashes.

Tiny stand-in scripts (plain Python, no JAX) play the benchmarks, so this runs in about a second.
"""

import json
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed
from benchmarks import __main__ as collector  # noqa: E402

OK = """
import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--n", type=int, default=1); p.add_argument("--out")
a = p.parse_args()
result = {"n": a.n, "rate": 2.5}
if a.out:
  open(a.out, "w").write(json.dumps(result))
print("loading model ...")
print(json.dumps({"from": "stdout"}, indent=2))
"""
STDOUT_ONLY = """
print("some log line {not json}")
print('{"a": 1}')
print("{")
print('  "tokens_per_s": 123.0')
print("}")
"""
FAILS = """
import json, sys
print(json.dumps({"half": "done"}))
sys.exit("boom: something broke")
"""
SILENT = "print('no json here')\n"
SLOW = "import time; time.sleep(30)\n"


@pytest.fixture()
def scripts(tmp_path):
  for name, text in [("ok.py", OK), ("stdout_only.py", STDOUT_ONLY), ("fails.py", FAILS),
                     ("silent.py", SILENT), ("slow.py", SLOW)]:
    (tmp_path / name).write_text(text)
  return tmp_path


def run(folder, script, *, quick=False, out_flag=True, needs_data=False, data=None, timeout=60,
        full=(), quick_args=()):
  bench = collector.Benchmark(script, full=full, quick=quick_args, out_flag=out_flag,
                              needs_data=needs_data)
  return collector.run_one(script[:-3], bench, quick=quick, timeout=timeout, data=data,
                           folder=folder)


def test_json_from_out_file_with_quick_arguments(scripts):
  e = run(scripts, "ok.py", quick=True, quick_args=("--n=7",), full=("--n=100",))
  assert e["result"] == {"n": 7, "rate": 2.5} and e["args"] == ["--n=7"]
  assert e["returncode"] == 0 and "error" not in e
  e = run(scripts, "ok.py", full=("--n=100",))
  assert e["result"]["n"] == 100


def test_json_from_stdout(scripts):
  assert run(scripts, "ok.py", out_flag=False)["result"] == {"from": "stdout"}
  assert run(scripts, "stdout_only.py", out_flag=False)["result"] == {"tokens_per_s": 123.0}


def test_failures_become_error_entries(scripts):
  e = run(scripts, "fails.py", out_flag=False)
  assert e["error"] == "exit status 1" and "boom: something broke" in e["output_tail"]
  assert e["partial_result"] == {"half": "done"} and "result" not in e
  e = run(scripts, "silent.py", out_flag=False)
  assert e["error"] == "no JSON object in the script's output" and "no json here" in e["output_tail"]
  e = run(scripts, "slow.py", timeout=0.5)
  assert e["error"] == "timed out after 0 s" or e["error"].startswith("timed out")
  assert run(scripts, "missing.py")["error"].endswith("missing.py does not exist")
  e = run(scripts, "ok.py", needs_data=True, data=None)
  assert "shared data folder was not found" in e["error"]


def test_data_placeholder_is_filled(scripts):
  e = run(scripts, "ok.py", needs_data=True, data="/some/data", out_flag=False,
          full=("--n=3", "--path={data}/x.tsv"))
  assert e["args"] == ["--n=3", "--path=/some/data/x.tsv"]
  assert "error" in e and "unrecognized arguments: --path" in e["output_tail"]


def test_last_json():
  assert collector.last_json('log\n{"a": 1}\nmore log\n{"b": 2}') == {"b": 2}
  assert collector.last_json('RESULT {"c": 3}') == {"c": 3}
  assert collector.last_json("nothing") is None


def test_every_script_in_the_folder_is_collected():
  names = collector.discover()
  for path in collector.HERE.glob("*.py"):
    if not path.name.startswith("_"):
      assert path.stem in names
  assert "flops" in names and names["flops"].quick == ("--quick",)


def test_main_writes_one_file_and_survives_errors(tmp_path, monkeypatch):
  (tmp_path / "good.py").write_text(OK)
  (tmp_path / "bad.py").write_text(FAILS)
  monkeypatch.setattr(collector, "HERE", tmp_path)
  monkeypatch.setattr(collector, "REGISTRY", {})
  real = collector.run_one
  monkeypatch.setattr(collector, "run_one", lambda *a, **k: real(*a, **k, folder=tmp_path))
  out = tmp_path / "all.json"
  assert collector.main(["--quick", f"--out={out}"]) == 0
  report = json.loads(out.read_text())
  assert set(report["benchmarks"]) == {"good", "bad"} and report["errors"] == ["bad"]
  assert report["benchmarks"]["good"]["result"] == {"from": "stdout"}
  assert report["quick"] is True and "load_average" in report["machine"]
  with pytest.raises(SystemExit):
    collector.main(["--only=nope", f"--out={out}"])


def test_profile_lists_the_ops_where_a_step_spends_its_time():
  import jax
  import jax.numpy as jnp
  from benchmarks import flops
  f = jax.jit(lambda a: jnp.tanh(a @ a).sum())
  a = jnp.ones((256, 256))
  f(a).block_until_ready()
  got = flops.profile_top(lambda: [f(a).block_until_ready() for _ in range(3)], n_top=5)
  assert got["ops_total_ms"] > 0 and 1 <= len(got["top"]) <= 5
  assert all(not t["op"].split(" ", 1)[1].startswith("ThunkExecutor") for t in got["top"])
  shares = [t["share"] for t in got["top"]]
  assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-9


def test_the_runner_refuses_bad_settings_and_names_the_file_it_cannot_write(tmp_path):
  """Issue 26, class 6: one error line (exit 1) for a bad --timeout or --out; a device is written
  in place (never replaced by a rename), and a full one is named."""
  import subprocess
  import sys
  root = pathlib.Path(__file__).resolve().parents[1]
  run = lambda *a: subprocess.run([sys.executable, "-m", "benchmarks", *a], cwd=root, capture_output=True,
                                  text=True, timeout=300)
  (tmp_path / "file").write_text("x")
  cases = [(["--timeout=-1"], "--timeout must be a positive number of seconds, got -1.0"),
           (["--timeout=nan"], "--timeout must be a positive number of seconds, got nan"),
           ([f"--out={tmp_path}"], f"error: {tmp_path}: --out is a folder"),
           ([f"--out={tmp_path / 'file' / 'r.json'}"], f"--out lies inside {tmp_path / 'file'}, which is a file")]
  for args, message in cases:
    p = run(*args, "--only=footprint", "--quick")
    assert p.returncode == 1 and message in p.stderr and "Traceback" not in p.stderr, p.stderr
    assert len([l for l in p.stderr.splitlines() if l.startswith("error:")]) == 1
  assert (tmp_path / "file").read_text() == "x"
  if pathlib.Path("/dev/full").exists():
    p = run("--out=/dev/full", "--only=footprint", "--quick")
    assert p.returncode == 1 and "error: /dev/full: cannot write the report: No space left on device" in p.stderr
    assert not pathlib.Path("/dev/full").is_file()      # still the device
