"""One error type for bad input, so every command can print it without a traceback."""

from __future__ import annotations

import os


class InputError(ValueError):
  """Malformed or inconsistent input: says which file, which line and what is wrong."""

  def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
    self.path = None if path is None else os.fspath(path)
    self.line = line
    self.problem = message
    where = ""
    if self.path is not None:
      where = self.path if line is None else f"{self.path}:{line}"
      where += ": "
    super().__init__(where + message)


def main_guard(main):
  """Wraps an absl/argparse main so an InputError exits 1 with its message, no traceback."""

  def wrapped(*args, **kwargs):
    import sys
    try:
      return main(*args, **kwargs)
    except InputError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(1)

  return wrapped
