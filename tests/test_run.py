"""run.py: flags -> config overrides -> experiment; bad input is one clear line, no traceback."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import _tiny_absa as T

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _run(*args, env=None):
  env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
  return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def test_bad_method_from_the_command_line(tmp_path):
  data, model = T.make_data(tmp_path / "data"), tmp_path / "model"
  model.mkdir()
  got = _run("--config=configs/tiny.py", f"--config.data_dir={data}", f"--config.model.path={model}",
             "--config.method=zero_shot,nonsense", "--config.seeds=0,1", f"--workdir={tmp_path / 'w'}")
  assert got.returncode == 1
  assert "error: unknown method 'nonsense'" in got.stderr
  assert "Traceback" not in got.stderr
  assert not (tmp_path / "w").exists()


def test_missing_data_says_how_to_get_it(tmp_path):
  """Offline (the tests' HF_HUB_OFFLINE=1) and no data: one line; nothing is written anywhere."""
  got = _run("--config=configs/demo.py", f"--workdir={tmp_path / 'w'}",
             env={"MTLWS_DATA_DIR": str(tmp_path / "absent")})
  assert got.returncode == 1
  assert got.stderr.startswith(f"error: 14 data files are not in {tmp_path / 'absent'} (absa/XABSA/")
  assert "downloads are off" in got.stderr and "MTLWS_DATA_DIR" in got.stderr and "README" in got.stderr
  assert len(got.stderr.strip().splitlines()) == 1
  assert not (tmp_path / "absent").exists() and not (tmp_path / "w").exists()


def test_unknown_config_field_is_rejected(tmp_path):
  got = _run("--config=configs/tiny.py", "--config.train.no_such_field=3", f"--workdir={tmp_path / 'w'}")
  assert got.returncode != 0
  assert "no_such_field" in got.stderr


def test_list_overrides_from_the_command_line(tmp_path):
  data, model = T.make_data(tmp_path / "data"), tmp_path / "model"
  model.mkdir()
  got = _run("--config=configs/tiny.py", f"--config.data_dir={data}", f"--config.model.path={model}",
             "--config.target_langs=es,xx", f"--workdir={tmp_path / 'w'}")
  assert got.returncode == 1 and "unknown target language 'xx'" in got.stderr


def test_model_found_nowhere_is_one_clear_line(tmp_path):
  # The hub-cache lookup runs in a fresh process, before transformers has imported
  # huggingface_hub.constants (this once crashed with an AttributeError).
  data = T.make_data(tmp_path / "data")
  got = _run("--config=configs/tiny.py", f"--config.data_dir={data}", "--config.model.name=no-such-model-anywhere",
             f"--workdir={tmp_path / 'w'}", env={"MTLWS_CACHE": str(tmp_path / "cache"),
                                                 "HF_HOME": str(tmp_path / "hf")})
  assert got.returncode == 1, got.stderr[-3000:]
  assert "error: model 'no-such-model-anywhere' not found" in got.stderr
  assert "Traceback" not in got.stderr


def test_bad_batch_layout_is_one_line_before_any_work(tmp_path):
  data, model = T.make_data(tmp_path / "data"), tmp_path / "model"
  model.mkdir()
  got = _run("--config=configs/tiny.py", f"--config.data_dir={data}", f"--config.model.path={model}",
             "--config.data.batch_layout=stacked", f"--workdir={tmp_path / 'w'}")
  assert got.returncode == 1 and "Traceback" not in got.stderr
  assert "config.data.batch_layout must be one of padded, packed, got 'stacked'" in got.stderr
  got = _run("--config=configs/tiny.py", f"--config.data_dir={data}", f"--config.model.path={model}",
             "--config.data.pack_length=0", f"--workdir={tmp_path / 'w'}")
  assert got.returncode == 1 and "data.pack_length" in got.stderr and "Traceback" not in got.stderr
  assert not (tmp_path / "w").exists()


def test_compiled_steps_are_cached_where_asked(tmp_path):
  """run.py turns on XLA's persistent compilation cache ($MTLWS_XLA_CACHE, else ~/.cache/mtlws_jax/xla)."""
  code = ("import sys; sys.argv=['run.py']; import run; run.compilation_cache(); import jax, jax.numpy as jnp; "
          "f = jax.jit(lambda x: jnp.sin(x) @ x.T); [f(jnp.ones((n, n))).block_until_ready() for n in (64, 65)]; "
          "print(jax.config.jax_compilation_cache_dir)")
  env = dict(os.environ, PYTHONPATH=str(ROOT), MTLWS_XLA_CACHE=str(tmp_path / "xla"))
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  got = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env | {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"},
                       capture_output=True, text=True, timeout=120)
  assert got.returncode == 0, got.stderr[-2000:]
  assert got.stdout.strip() == str(tmp_path / "xla")
  assert len([p for p in (tmp_path / "xla").iterdir() if "cache" in p.name]) >= 2  # both programs saved


def test_compile_cache_off(tmp_path):
  """MTLWS_XLA_CACHE=off: no persistent cache, nothing written to disk."""
  code = ("import sys; sys.argv=['run.py']; import run; run.compilation_cache(); import jax, jax.numpy as jnp; "
          "f = jax.jit(lambda x: jnp.sin(x) @ x.T); f(jnp.ones((64, 64))).block_until_ready(); "
          "print(jax.config.jax_compilation_cache_dir)")
  env = dict(os.environ, PYTHONPATH=str(ROOT), MTLWS_XLA_CACHE="off", HOME=str(tmp_path),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  env.pop("JAX_COMPILATION_CACHE_DIR", None)
  got = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
  assert got.returncode == 0, got.stderr[-2000:]
  assert got.stdout.strip() == "None"
  assert not (tmp_path / ".cache" / "mtlws_jax" / "xla").exists() and not (ROOT / "off").exists()


def test_the_ending_runs_after_training_from_run_py(tmp_path):
  """run.py, not the training code, ends with each language's model and the showcase (issue 25)."""
  data, model = T.make_data(tmp_path / "data"), T.make_model(tmp_path / "model")
  pattern = str(data / "absa" / "XABSA" / "smt-{lang}-train.txt")
  got = _run("--config=configs/tiny.py", f"--config.data_dir={data}", f"--config.model.path={model}",
             "--config.method=zero_shot,mtl", "--config.showcase=True", f"--config.translated_dev={pattern}",
             "--config.target_langs=es,fr", f"--workdir={tmp_path / 'w'}")
  assert got.returncode == 0, got.stderr[-3000:]
  for lang in ("es", "fr"):
    assert f"\n{lang}: " in got.stdout and f"the best {lang} translated dev F1" in got.stdout
    assert f"  {lang} model: " in got.stdout
  assert "Exported model (Hugging Face token classification)" in got.stdout
  import json
  assert set(json.loads((tmp_path / "w" / "translated_dev.json").read_text())["scores"]) == {"zero_shot", "mtl"}
  # the training code itself does not import the inference layer
  code = "import sys, mtlws_jax.experiment; print(sorted(m for m in sys.modules if m in " \
         "('mtlws_jax.showcase', 'mtlws_jax.predict', 'mtlws_jax.export', 'mtlws_jax.eval.select')))"
  imp = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert imp.stdout.strip() == "[]", imp.stdout + imp.stderr


def test_a_second_run_on_one_workdir_is_refused_and_a_killed_run_leaves_no_lock(tmp_path):
  """Issue 26, class 4: two run.py on one workdir race on checkpoints and metrics: the second is one
  line naming the first; after a SIGKILL the same command resumes (flock dies with the process)."""
  import signal
  import time
  data, model = T.make_data(tmp_path / "data"), T.make_model(tmp_path / "model")
  args = [sys.executable, str(ROOT / "run.py"), "--config=configs/tiny.py", f"--config.data_dir={data}",
          f"--config.model.path={model}", "--config.method=zero_shot", "--config.train.max_steps=4000",
          "--config.selection.eval_every=1000", "--config.checkpoint_every=1000", f"--workdir={tmp_path / 'w'}"]
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  first = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
  lock = tmp_path / "w" / "run.lock"
  deadline = time.time() + 240
  while not (lock.exists() and lock.read_text().strip()) and time.time() < deadline and first.poll() is None:
    time.sleep(0.2)
  assert first.poll() is None, first.stderr.read()[-2000:]
  second = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert second.returncode == 1 and "Traceback" not in second.stderr
  assert second.stderr.strip() == (f"error: {tmp_path / 'w'}: another run is training in this workdir (run.py, pid "
                                   f"{first.pid} on {os.uname().nodename}); wait for it or stop it, then run the "
                                   "command again (it resumes)")
  first.send_signal(signal.SIGKILL)
  first.wait()
  third = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
  assert third.returncode == 0, third.stderr[-2000:]
  assert (tmp_path / "w" / "results.json").exists()
