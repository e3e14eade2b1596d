"""Time and peak memory of a whole command (README's "what it costs" table, issue 24).

    python benchmarks/footprint.py --name=demo --out=benchmarks/results/footprint_demo_cpu.json \
        -- python run.py --config=configs/demo.py --workdir=runs/demo

Runs the command (from the project root) and records its wall time, user and system CPU seconds,
the peak resident memory of its largest process (getrusage's ru_maxrss over every child process,
so a test suite's xdist workers and its run.py subprocesses count one by one), the exit status,
the machine (CPU model, cores, memory) and the 1-minute load average before and after: a load above
the core count means other work ran beside it and the time is an upper bound.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import resource
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchmarks  # noqa: E402


def machine() -> dict:
  cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
  mem = next((int(l.split()[1]) // 1024 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)
  return {"cpu": cpu, "cores": os.cpu_count(), "memory_mb": mem, "python": platform.python_version()}


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--" not in argv:
    raise SystemExit("usage: footprint.py --name=NAME [--out=FILE] -- COMMAND ...")
  cut = argv.index("--")
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--name", required=True)
  p.add_argument("--out", default="")
  p.add_argument("--log", default="", help="the command's output goes here (default: inherited)")
  args = p.parse_args(argv[:cut])
  command = argv[cut + 1:]
  if command and command[0] == "python":  # this interpreter (a virtual environment need not be on PATH)
    command[0] = sys.executable
  load_before = os.getloadavg()[0]
  tic = time.perf_counter()
  if args.log:
    with open(args.log, "w", encoding="utf-8") as log:
      rc = subprocess.run(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
  else:
    rc = subprocess.run(command, cwd=ROOT).returncode
  wall = time.perf_counter() - tic
  use = resource.getrusage(resource.RUSAGE_CHILDREN)
  benchmarks.emit({
      "benchmark": "footprint", "name": args.name, "command": " ".join(command), "returncode": rc,
      "wall_seconds": round(wall, 1), "user_seconds": round(use.ru_utime, 1), "system_seconds": round(use.ru_stime, 1),
      "peak_rss_mb": round(use.ru_maxrss / 1024), "load_1min_before": load_before,
      "load_1min_after": os.getloadavg()[0], "machine": machine(), "log": args.log or None,
  }, args.out)
  return rc


if __name__ == "__main__":
  sys.exit(main())
