"""Several processes of one jax.distributed job on localhost, for the multi-process tests."""

from __future__ import annotations

import socket
import subprocess

import pytest


def free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def run_all(commands: list[list[str]], *, cwd, env, timeout: float) -> list[str]:
  """Starts every command at once, waits for all, and fails the test with their logs if one fails."""
  procs = [subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True) for cmd in commands]
  logs = []
  try:
    for p in procs:
      logs.append(p.communicate(timeout=timeout)[0])
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
  if any(p.returncode for p in procs):
    pytest.fail("\n".join(f"--- process {i} (rc {p.returncode}):\n{log[-4000:]}"
                          for i, (p, log) in enumerate(zip(procs, logs))))
  return logs
