"""The refactoring reference (issue 25): digests of a tiny grid's results, tables and predictions.

All five methods, seeds 0 and 1, trained one model at a time, four models at once, and killed
mid-training then resumed (run.py in a subprocess, SIGKILL after its first checkpoint). The three
workdirs must give the same digests, and a refactoring must not change them:

  python tests/reference_grid.py tests/reference_grid.json   # adds this machine's digests (three agree?)

tests/test_reference_grid.py trains the one-by-one grid and compares it with the committed
tests/reference_grid.json, which holds one reference per machine (float bits depend on the CPU's
vector instructions and the jax build: two machines both called "AMD EPYC", one with AVX-512 and one
without, give other bits; on a machine with no reference it is skipped, and
tests/test_models_at_once.py and tests/test_resume.py still check that four models at once and a
killed run give the same results as one by one). Run from the same code on a new machine, the
command below adds that machine's reference beside the others.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import pathlib
import platform
import signal
import subprocess
import sys
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

import _tiny_absa as T  # noqa: E402

OVERRIDES = {"method": "all", "seeds": (0, 1), "train.max_steps": 24, "checkpoint_every": 8,
             "selection.eval_after": 8}


def _vocab() -> list[str]:
  """The tiny model's WordPiece vocabulary, recorded once: the `tokenizers` trainer breaks ties
  between equally frequent merges in hash-map order, which differs from process to process."""
  return json.loads((HERE / "reference_grid_vocab.json").read_text())


def make_model(folder: pathlib.Path) -> pathlib.Path:
  """_tiny_absa's model with the recorded vocabulary (so every process builds the same one)."""
  from tokenizers import models
  from mtlws_jax.data import vocab
  tokens, trained = _vocab(), vocab.train_wordpiece

  def fixed(texts, vocab_size):
    tok = trained(texts, vocab_size=vocab_size)
    tok.backend_tokenizer.model = models.WordPiece(vocab={t: i for i, t in enumerate(tokens)}, unk_token="[UNK]",
                                                   continuing_subword_prefix="##")
    return tok

  vocab.train_wordpiece = fixed
  try:
    return T.make_model(folder)
  finally:
    vocab.train_wordpiece = trained


# The vector instructions XLA:CPU chooses its kernels by (the ones benchmarks/step_breakdown.py records).
ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")


def machine() -> dict:
  """What the float bits depend on: the CPU model and vector instructions, the jax build."""
  import jax
  import jaxlib
  cpu, flags = "", set()
  try:
    for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
      if line.startswith("model name") and not cpu:
        cpu = line.split(":", 1)[1].strip()
      elif line.startswith("flags") and not flags:
        flags = set(line.split(":", 1)[1].split())
  except OSError:
    cpu = platform.processor()
  return {"cpu": cpu, "isa": {f: f in flags for f in ISA_FLAGS}, "machine": platform.machine(),
          "jax": jax.__version__, "jaxlib": jaxlib.__version__}


def references(path: pathlib.Path) -> list[dict]:
  """The recorded references, one per machine: {machine, digests, three_agree}."""
  return json.loads(pathlib.Path(path).read_text())["references"]


def digests(work: pathlib.Path) -> dict:
  """sha256 of results.json (less its wall-clock timing), results.md (less its timing column's
  numbers: every table line is kept, the minutes are not) and each run's decompressed predictions."""
  out = {}
  got = json.loads((work / "results.json").read_text())
  got.pop("timing", None)
  out["results.json"] = hashlib.sha256(json.dumps(got, sort_keys=True).encode()).hexdigest()
  md = (work / "results.md").read_text()
  out["results.md"] = hashlib.sha256(_untimed_md(md).encode()).hexdigest()
  for p in sorted(work.glob("runs/*/seed*/predictions.json.gz")):
    out[str(p.relative_to(work))] = hashlib.sha256(gzip.decompress(p.read_bytes())).hexdigest()
  for p in sorted(work.glob("warmup/*/seed*/effect.json")):
    out[str(p.relative_to(work))] = hashlib.sha256(p.read_bytes()).hexdigest()
  return out


def _untimed_md(md: str) -> str:
  """results.md with the cost table's minutes (wall clock) blanked."""
  lines, in_cost = [], False
  for line in md.splitlines():
    if line.startswith("|") and "| min |" in line:
      in_cost = True
    elif not line.startswith("|"):
      in_cost = False
    if in_cost and line.startswith("|") and not set(line) <= set("|-: "):
      cells = line.split("|")
      line = "|".join(cells[:-3] + ["", "", ""]) if len(cells) > 3 else line
    lines.append(line)
  return "\n".join(lines)


def _command(data, model, work, extra=()):
  return [sys.executable, str(ROOT / "run.py"), "--config=" + str(ROOT / "configs" / "tiny.py"),
          f"--config.data_dir={data}", f"--config.model.path={model}",
          *(f"--config.{k}={_flag(v)}" for k, v in OVERRIDES.items()), *extra, f"--workdir={work}"]


def _flag(v) -> str:
  return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def killed_and_resumed(data, model, work: pathlib.Path) -> None:
  """run.py killed (SIGKILL) right after the first checkpoint, then the same command again."""
  latest = work / "runs" / "zero_shot" / "seed0" / "checkpoints" / "latest"
  victim = subprocess.Popen(_command(data, model, work), cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
  deadline = time.time() + 600
  while victim.poll() is None and time.time() < deadline:
    if latest.exists() and any(p.name.isdigit() for p in latest.iterdir()):
      victim.send_signal(signal.SIGKILL)
      break
    time.sleep(0.01)
  if victim.wait() != -signal.SIGKILL:
    raise RuntimeError("the run finished before it could be killed")
  again = subprocess.run(_command(data, model, work), cwd=ROOT, capture_output=True, text=True, timeout=900)
  if again.returncode:
    raise RuntimeError(again.stdout + again.stderr)


def one_by_one(root: pathlib.Path) -> dict:
  """Digests of the grid trained one model at a time, in this process (the cheap reference)."""
  from mtlws_jax import experiment
  data, model = T.make_data(root / "data"), make_model(root / "model")
  experiment.run(T.tiny_config(data, model, **OVERRIDES), root / "one", out=io.StringIO())
  return digests(root / "one")


def grid(root: pathlib.Path) -> dict:
  """{"one": digests, "at_once": digests, "resumed": digests} of the three workdirs under root."""
  from mtlws_jax import experiment
  data, model = T.make_data(root / "data"), make_model(root / "model")
  thread = threading.Thread(target=killed_and_resumed, args=(data, model, root / "resumed"))
  errors = []
  thread.run = (lambda run=thread.run: _catch(run, errors))
  thread.start()
  experiment.run(T.tiny_config(data, model, **OVERRIDES), root / "one", out=io.StringIO())
  experiment.run(T.tiny_config(data, model, **OVERRIDES, **{"train.models_at_once": 4}), root / "at_once",
                 out=io.StringIO())
  thread.join()
  if errors:
    raise errors[0]
  return {name: digests(root / name) for name in ("one", "at_once", "resumed")}


def _catch(fn, errors):
  try:
    fn()
  except Exception as e:  # raised again in the main thread
    errors.append(e)


def main(argv) -> int:
  import tempfile
  if len(argv) != 2:
    print("usage: python tests/reference_grid.py OUT.json (this machine's reference is added)", file=sys.stderr)
    return 2
  with tempfile.TemporaryDirectory() as tmp:
    got = grid(pathlib.Path(tmp))
  same = got["one"] == got["at_once"] == got["resumed"]
  for name in ("at_once", "resumed"):
    for k in sorted(set(got["one"]) | set(got[name])):
      if got["one"].get(k) != got[name].get(k):
        print(f"{name} differs from one-by-one: {k}")
  out = pathlib.Path(argv[1])
  here = machine()
  kept = [r for r in (references(out) if out.exists() else []) if r["machine"] != here]
  out.write_text(json.dumps({"references": kept + [{"machine": here, "digests": got["one"], "three_agree": same}]},
                            indent=1, sort_keys=True) + "\n")
  print(f"{len(got['one'])} digests; one-by-one, four at once and killed-then-resumed agree: {same}")
  return 0 if same else 1


if __name__ == "__main__":
  sys.exit(main(sys.argv))
