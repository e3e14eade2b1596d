"""Benchmark scripts (each prints one JSON object); `python -m benchmarks` runs them all.

Scripts that measure in a fresh process (XLA_FLAGS apply at start-up; one framework per process)
share `child`: the child prints one `RESULT {json}` line; `emit` prints and saves the final JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULT = "RESULT "


def child(argv: Sequence[str], env: Mapping[str, str] | None = None) -> tuple[dict | None, subprocess.CompletedProcess]:
  """(JSON of the last RESULT line or None when it failed, the process) of `python ARGV`."""
  p = subprocess.run([sys.executable, *argv], capture_output=True, text=True,
                     env=dict(os.environ, PYTHONPATH=ROOT, **(env or {})))
  lines = [l for l in p.stdout.splitlines() if l.startswith(RESULT)]
  return (json.loads(lines[-1][len(RESULT):]) if lines and not p.returncode else None), p


def emit(result: Mapping, out: str | None) -> None:
  """The benchmark's JSON on stdout, and in `out` when given."""
  text = json.dumps(result, indent=2)
  print(text)
  if out:
    with open(out, "w", encoding="utf-8") as f:
      f.write(text + "\n")
