"""Wall time of one 300-step study model, end to end through run.py: before and after (issue 22).

Runs `run.py --config=configs/study_absa_cpu.py --config.method=zero_shot --config.seeds=0` (load
e5-small, encode every set, 300 steps with 3 model-selection evaluations, the target test sets
predicted and scored) once per entry of --variants, each pinned to --core with taskset:

  before    the code at --before (a git commit, checked out into a temporary worktree): padded
            rows, the loss read after every step
  padded    this checkout with data.batch_layout=padded
  packed    this checkout with data.batch_layout=packed (the default)
  packed-again  the same once more, with the XLA compilation cache the packed run filled (what
            every later run of a study pays)

Each run gets a fresh workdir (nothing resumed) and a fresh XLA compilation cache (but
packed-again), so compiles count as a user's first run pays them. JSON: seconds per variant, the run's English dev F1 and
selected step, and the ratios to `before`.

  python benchmarks/study_model_wall.py --before=f406d14 --out=benchmarks/results/study_model_wall_cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchmarks  # noqa: E402


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", default="")
  p.add_argument("--before", default="", help="git commit of the 'before' code ('' = skip it)")
  p.add_argument("--variants", default="before,packed,padded,packed-again")
  p.add_argument("--config", default="configs/study_absa_cpu.py")
  p.add_argument("--core", default="0")
  p.add_argument("--work", default="")
  p.add_argument("--extra", default="", help="more run.py flags, space separated (e.g. for a dry run)")
  args = p.parse_args(argv)
  work = pathlib.Path(args.work or tempfile.mkdtemp(prefix="study_wall_"))
  data = os.environ.get("MTLWS_DATA_DIR") or str(ROOT.parent / "shared" / "data")
  results = {}
  for variant in args.variants.split(","):
    if variant == "before" and not args.before:
      continue
    code = ROOT
    if variant == "before":
      code = work / "before-code"
      if not code.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(code), args.before],
                       check=True, capture_output=True)
    wd = work / variant
    shutil.rmtree(wd, ignore_errors=True)
    cache = work / f"xla-cache-{variant.replace('-again', '')}"
    if not variant.endswith("-again"):
      shutil.rmtree(cache, ignore_errors=True)
    cmd = ["taskset", "-c", args.core, sys.executable, "run.py", f"--config={args.config}", f"--workdir={wd}",
           "--config.method=zero_shot", "--config.seeds=0"] + args.extra.split()
    if variant != "before":
      cmd.append(f"--config.data.batch_layout={variant.replace('-again', '')}")
    env = dict(os.environ, MTLWS_DATA_DIR=data, MTLWS_XLA_CACHE=str(cache))
    tic = time.perf_counter()
    proc = subprocess.run(cmd, cwd=code, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - tic
    (work / f"{variant}.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode:
      results[variant] = {"error": (proc.stderr.strip().splitlines() or ["?"])[-1], "seconds": seconds}
    else:
      res = json.loads((wd / "runs" / "zero_shot" / "seed0" / "result.json").read_text())
      results[variant] = {"seconds": round(seconds, 1), "best_step": res.get("best_step"),
                          "english_dev_f1": res.get("english_dev"),
                          "target_test_f1": {l: v.get("f1") for l, v in (res.get("target_test") or {}).items()}}
    print(variant, json.dumps(results[variant]), flush=True)
  base = results.get("before", {}).get("seconds")
  for v in results.values():
    if base and "error" not in v:
      v["x_before"] = round(base / v["seconds"], 3)
  out = {"what": "one ZERO-SHOT study model (ABSA, 300 steps) through run.py, wall seconds", "config": args.config,
         "before": args.before, "core": args.core, "results": results}
  benchmarks.emit(out, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
