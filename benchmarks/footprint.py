"""Time and peak memory of a whole command (README's "what it costs" table, issue 24).

    python benchmarks/footprint.py --name=demo --out=benchmarks/results/footprint_demo_cpu.json \
        -- python run.py --config=configs/demo.py --workdir=runs/demo

Runs the command (from the project root) and records its wall time, user and system CPU seconds,
the peak resident memory of its largest process (getrusage's ru_maxrss over every child process,
so a test suite's xdist workers and its run.py subprocesses count one by one), the exit status,
the machine (CPU model, cores, memory) and the 1-minute load average before and after: a load above
the core count means other work ran beside it and the time is an upper bound.

    python benchmarks/footprint.py --name=paper_budget --watch=PID --timing=RUN_FOLDER/timing.json --out=F

watches a process that is already running (a long run of a chain) instead: its peak resident
memory (VmHWM, polled every 2 s until it exits) and the seconds its run folder's timing.json
records.
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


def watch(args) -> int:
  """Peak memory of a running process until it exits; the run's own timing.json for its time."""
  import json
  pid, peak, tic = args.watch, 0, time.perf_counter()
  while os.path.exists(f"/proc/{pid}"):
    try:
      with open(f"/proc/{pid}/status") as f:
        peak = max([peak] + [int(l.split()[1]) for l in f if l.startswith("VmHWM")])
      with open(f"/proc/{pid}/cmdline", "rb") as f:
        command = f.read().replace(b"\0", b" ").decode().strip() or "?"
    except OSError:
      break
    time.sleep(2)
  timing = pathlib.Path(args.timing) if args.timing else None
  seconds = json.loads(timing.read_text())["seconds"] if timing and timing.exists() else None
  benchmarks.emit({"benchmark": "footprint", "name": args.name, "command": command if peak else None,
                   "wall_seconds": None if seconds is None else round(seconds, 1),
                   "wall_source": str(timing) if timing else None, "watched_seconds": round(time.perf_counter() - tic, 1),
                   "peak_rss_mb": round(peak / 1024), "peak_source": "VmHWM of the process, polled every 2 s",
                   "load_1min_after": os.getloadavg()[0], "machine": machine()}, args.out)
  return 0


def main(argv=None) -> int:
  argv = list(sys.argv[1:] if argv is None else argv)
  if "--watch" in " ".join(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", required=True)
    p.add_argument("--out", default="")
    p.add_argument("--watch", type=int, required=True, help="PID of a running process")
    p.add_argument("--timing", default="", help="the run's timing.json (its seconds)")
    return watch(p.parse_args(argv))
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
