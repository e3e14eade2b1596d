"""Runs every benchmark script in benchmarks/ and writes their JSON into one file.

  python -m benchmarks [--quick] [--out=benchmarks/results.json] [--only=flops,encode_speed]
                       [--skip=projection_quality] [--timeout=SECONDS]

Each script runs in its own subprocess (its own JAX/PyTorch state and peak memory) from the
repository root. Its JSON is read from the file it writes with --out when it has that flag,
else from the last JSON object on its stdout. A script that fails, times out, prints no JSON
or needs the shared data when there is none is recorded as an entry with "error" (and the end of
its output); the collector itself never stops on one. Scripts found in benchmarks/ but not
listed in REGISTRY run with their default arguments.

--quick passes each script its small settings (listed in REGISTRY), meant to finish in minutes
on a CPU; without it the scripts run at their own defaults (the numbers worth reporting).
Timings depend on the machine's load: the load average is recorded at the start and the end.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
HERE = ROOT / "benchmarks"
NER_EN_TRAIN = "ner/Easy-Label-Projection/original/en/en.conll.train.tsv"


@dataclasses.dataclass(frozen=True)
class Benchmark:
  """How to run one script: arguments for full and quick runs; {data} is the shared data folder,
  {e5} a converted e5-small folder ('' when none is cached)."""

  script: str
  full: tuple[str, ...] = ()
  quick: tuple[str, ...] = ()
  out_flag: bool = True        # the script writes its JSON to --out=FILE
  needs_data: bool = False
  about: str = ""


REGISTRY: dict[str, Benchmark] = {b.script.removesuffix(".py"): b for b in (
    Benchmark("train_step_vs_torch.py",
              quick=("--layers=2", "--hidden=128", "--heads=2", "--ff=512", "--vocab=8000",
                     "--batch=4", "--seq=64", "--steps=3", "--warmup=1"),
              about="train-step tokens/s and peak memory: Flax tagger vs transformers' PyTorch"),
    Benchmark("flops.py", quick=("--quick",),
              about="achieved FLOP/s of the train step as a fraction of the measured matmul peak"),
    Benchmark("warmup_strategies.py",
              quick=("--langs=1,4", "--ks=5", "--repeats=1", "--layers=1", "--hidden=32"),
              about="MTL-WS warmup epoch: vmap / loop / shard, time and memory vs |L| and K"),
    Benchmark("warmup_effect.py", quick=("--Z=5", "--K=5", "--langs=2"),
              about="how far the warmup moves the parameters at the paper's step sizes"),
    Benchmark("projection_quality.py", quick=("--parts=ner", "--ner-langs=es", "--max-sentences=2000"), needs_data=True,
              about="alignment AER, projection agreement and align+project sentences/s"),
    Benchmark("encode_speed.py", full=("--path={data}/" + NER_EN_TRAIN,),
              quick=("--path={data}/" + NER_EN_TRAIN, "--vocab_size=2000", "--naive=200"),
              out_flag=False, needs_data=True,
              about="subword encoding speed vs one tokenizer call per sentence"),
    Benchmark("finetune_vs_torch.py", full=("--model={e5}", "--freeze=word_embeddings", "--lr=1e-4",
                                            "--head-lr-scale=10", "--steps=300", "--eval-every=50"),
              quick=("--model={e5}", "--seeds=0", "--steps=10", "--eval-every=5", "--freeze=word_embeddings"),
              needs_data=True, about="ABSA fine-tuning ours vs PyTorch, same batches and recipe: dev F1 over seeds"),
    Benchmark("apertium_vs_deepl.py", full=("--work=/tmp/mtlws_apertium_vs_deepl",),
              quick=("--work=/tmp/mtlws_apertium_vs_deepl_quick", "--seeds=0", "--steps=20"), needs_data=True,
              about="NER es translate-train: Apertium vs DeepL, chrF and paired TARGET-ONLY F1"),
    Benchmark("srl_translate_train.py", out_flag=False, needs_data=True,
              about="SRL translate-train sets with Apertium + eflomal: projection counts per language"),
    Benchmark("executable_memory.py", quick=("--quick",), needs_data=True,
              about="host memory each compiled train-step shape keeps (compiled vs loaded from the XLA cache)"),
    Benchmark("study_speed.py", full=("--cores=0",),
              quick=("--quick", "--tasks=absa", "--variants=padded_sync,packed,torch", "--cores=",
                     "--work=/tmp/mtlws_study_speed_quick"), needs_data=True,
              about="the study's train step on its real batches: padded vs packed vs XLA flags vs PyTorch"),
    Benchmark("study_model_wall.py", full=("--before=f406d14", "--core=0"),
              quick=("--variants=packed", "--work=/tmp/mtlws_study_wall_quick",
                     "--extra=--config.train.max_steps=4 --config.selection.eval_every=2 --config.selection.eval_after=2 "
                     "--config.train.lr_warmup_steps=1 --config.data.max_eval_sentences=20 --config.model.num_layers=1"),
              needs_data=True, about="wall seconds of one 300-step study model through run.py, before and after"),
    Benchmark("footprint.py", full=("--name=demo", "--", "python", "run.py", "--config=configs/demo.py",
                                    "--workdir=/tmp/mtlws_footprint_demo"),
              quick=("--name=data_stats", "--", "python", "-m", "mtlws_jax.data.stats", "--task=absa",
                     "--format=absa-ot", "--path={data}/absa/XABSA/gold-en-train.txt"),
              out_flag=False, needs_data=True, about="wall time and peak memory of a whole command (README's cost table)"),
    Benchmark("offline_e5_check.py", full=("--folder={e5}",),
              quick=("--folder={e5}", "--parts=speed", "--n_speed=50"), needs_data=True,
              about="offline e5-small conversion checks; quick: tokenizer normalizer speed only"),
)}


def discover() -> dict[str, Benchmark]:
  """REGISTRY plus any other benchmarks/*.py script (run with its defaults)."""
  found = dict(REGISTRY)
  for path in sorted(HERE.glob("*.py")):
    name = path.stem
    if name.startswith("_") or name in found:
      continue
    found[name] = Benchmark(path.name, out_flag=False, about="not in REGISTRY: default arguments")
  return found


def _e5_folder() -> str:
  for base in (os.environ.get("MTLWS_CACHE"), os.path.expanduser("~/.cache/mtlws_jax")):
    if base and (pathlib.Path(base) / "e5-small" / "config.json").exists():
      return str(pathlib.Path(base) / "e5-small")
  return ""


def last_json(text: str):
  """The last JSON object printed on stdout (scripts may log before it); None if there is none."""
  text = text.strip()
  try:
    return json.loads(text)
  except ValueError:
    pass
  lines = text.splitlines()
  for i in range(len(lines) - 1, -1, -1):
    line = lines[i].lstrip()
    if line.startswith("RESULT "):
      line = line[len("RESULT "):]
    if not line.startswith("{"):
      continue
    for candidate in (line, "\n".join([line] + lines[i + 1:])):
      try:
        value = json.loads(candidate)
      except ValueError:
        continue
      if isinstance(value, dict):
        return value
  return None


def _tail(text: str, n: int = 2000) -> str:
  return text[-n:] if text else ""


def run_one(name: str, bench: Benchmark, *, quick: bool, timeout: float, data: str | None,
            folder: pathlib.Path = HERE) -> dict:
  """Runs one script; returns {"script", "args", "seconds", "returncode", "result" | "error"}."""
  entry: dict = {"script": f"{folder.name}/{bench.script}", "about": bench.about}
  if not (folder / bench.script).exists():
    return entry | {"error": f"{folder.name}/{bench.script} does not exist"}
  if bench.needs_data and data is None:
    return entry | {"error": "the shared data folder was not found (set MTLWS_DATA_DIR)"}
  subst = {"data": data or "", "e5": _e5_folder()}
  args = [a.format(**subst) for a in (bench.quick if quick else bench.full)]
  args = [a for a in args if not a.endswith("=")]  # e.g. --folder= with nothing cached
  entry["args"] = args
  with tempfile.TemporaryDirectory() as tmp:
    out_file = pathlib.Path(tmp) / f"{name}.json"
    cmd = [sys.executable, str(folder / bench.script), *args]
    if bench.out_flag:
      cmd.append(f"--out={out_file}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    t = time.perf_counter()
    try:
      proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    except subprocess.TimeoutExpired as e:
      out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
      err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
      return entry | {"seconds": round(time.perf_counter() - t, 1),
                      "error": f"timed out after {timeout:.0f} s", "output_tail": _tail(out + err)}
    entry["seconds"] = round(time.perf_counter() - t, 1)
    entry["returncode"] = proc.returncode
    result = None
    if out_file.exists():
      try:
        result = json.loads(out_file.read_text(encoding="utf-8"))
      except ValueError:
        result = None
    if result is None:
      result = last_json(proc.stdout)
  if proc.returncode != 0:
    entry["error"] = f"exit status {proc.returncode}"
    entry["output_tail"] = _tail(proc.stdout + proc.stderr)
    if result is not None:
      entry["partial_result"] = result
  elif result is None:
    entry["error"] = "no JSON object in the script's output"
    entry["output_tail"] = _tail(proc.stdout + proc.stderr)
  else:
    entry["result"] = result
  return entry


def machine() -> dict:
  info = {"platform": platform.platform(), "python": platform.python_version(),
          "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]}
  try:
    import jax
    info["jax"] = jax.__version__
  except ImportError:
    pass
  return info


def _write(out: pathlib.Path, report: dict) -> None:
  """The report, whole or not at all (textfile.write_text: a temporary file, then a rename; a
  device such as /dev/full in place); a failure names the path."""
  from mtlws_jax.data import textfile
  from mtlws_jax.errors import InputError
  try:
    textfile.write_text(out, json.dumps(report, indent=2) + "\n")
  except OSError as e:
    raise InputError(f"cannot write the report: {e.strerror}", out) from None


def _check_out(out: pathlib.Path) -> None:
  from mtlws_jax.errors import InputError
  if out.is_dir():
    raise InputError("--out is a folder: give a file name (e.g. benchmarks/results.json)", out)
  for parent in out.parents:
    if parent.exists() and not parent.is_dir():
      raise InputError(f"--out lies inside {parent}, which is a file, not a folder", out)


def main(argv=None) -> int:
  sys.path.insert(0, str(ROOT))
  from mtlws_jax.errors import InputError, argument_parser
  p = argument_parser(description=__doc__.splitlines()[0], prog="python -m benchmarks")
  p.add_argument("--quick", action="store_true", help="each script's small settings")
  p.add_argument("--out", default=str(HERE / "results.json"))
  p.add_argument("--only", default="", help="comma list of benchmark names (default: all)")
  p.add_argument("--skip", default="", help="comma list of benchmark names to leave out")
  p.add_argument("--timeout", type=float, default=None,
                 help="seconds per script (default 900 with --quick, else 7200)")
  p.add_argument("--list", action="store_true", help="print the benchmarks and exit")
  args = p.parse_args(argv)
  benches = discover()
  if args.list:
    for name, b in benches.items():
      print(f"{name:24s} {b.about}")
    return 0
  only = [n for n in args.only.split(",") if n]
  skip = {n for n in args.skip.split(",") if n}
  unknown = sorted((set(only) | skip) - set(benches))
  if unknown:
    p.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(benches)}")
  names = [n for n in (only or benches) if n not in skip]
  if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
    p.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
  timeout = args.timeout or (900.0 if args.quick else 7200.0)
  out = pathlib.Path(args.out)
  _check_out(out)
  try:
    out.parent.mkdir(parents=True, exist_ok=True)
  except OSError as e:
    raise InputError(f"cannot make the folder of --out: {e.strerror}", out.parent) from None
  from mtlws_jax.data import corpora
  data = corpora.data_dir()
  data = str(data) if data is not None else None

  report = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "quick": args.quick, "machine": machine(), "data_dir": data, "benchmarks": {}}
  for name in names:
    print(f"[benchmarks] {name} ...", file=sys.stderr, flush=True)
    entry = run_one(name, benches[name], quick=args.quick, timeout=timeout, data=data)
    report["benchmarks"][name] = entry
    status = "error: " + entry["error"] if "error" in entry else "ok"
    print(f"[benchmarks] {name}: {status} ({entry.get('seconds', 0)} s)", file=sys.stderr, flush=True)
    report["load_average_end"] = os.getloadavg()[0]
    _write(out, report)  # partial results survive
  report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
  report["errors"] = sorted(n for n, e in report["benchmarks"].items() if "error" in e)
  _write(out, report)
  print(f"[benchmarks] wrote {out} ({len(names) - len(report['errors'])} ok, "
        f"{len(report['errors'])} with errors)", file=sys.stderr)
  return 1 if names and len(report["errors"]) == len(names) else 0   # nothing measured: a failure


if __name__ == "__main__":
  sys.path.insert(0, str(ROOT))
  from mtlws_jax.errors import main_guard
  sys.exit(main_guard(main)())
