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
  """Wraps an absl/argparse main so bad input exits 1 with one line, no traceback.

  InputError (bad files, flags, values) and OSError (a path that cannot be written, a full
  disk) are the user's to fix; anything else is our bug and keeps its traceback.
  """

  def wrapped(*args, **kwargs):
    import sys
    try:
      return main(*args, **kwargs)
    except InputError as e:
      print(f"error: {e}", file=sys.stderr)
      sys.exit(1)
    except OSError as e:
      print(f"error: {os_error(e)}", file=sys.stderr)
      sys.exit(1)

  return wrapped


def check_output(out: str | os.PathLike, *inputs: str | os.PathLike | None, what: str = "--out") -> None:
  """An output path must not be one of the inputs (it would be overwritten) and its folder must
  exist and be writable: say so before any work is done."""
  import pathlib
  p = pathlib.Path(out)
  for src in inputs:
    if src is not None and p.resolve() == pathlib.Path(src).resolve():
      raise InputError(f"{what} is the input file {src}: it would be overwritten; choose another path", out)
  if p.is_dir():
    raise InputError(f"{what} is a folder; give a file path", out)
  parent = p.parent if str(p.parent) else pathlib.Path(".")
  if not parent.is_dir():
    raise InputError(f"the folder of {what} does not exist: {parent}", out)
  if not os.access(parent, os.W_OK):
    raise InputError(f"the folder of {what} is not writable: {parent}", out)


def _chain(e: BaseException):
  while e is not None:
    yield e
    e = e.__cause__ or e.__context__


def config_error(e: BaseException) -> str:
  """One line for a failure while absl parses flags and loads a config file (run.py)."""
  import traceback
  chain = list(_chain(e))
  for x in chain:
    if isinstance(x, SyntaxError):
      return f"{x.filename}:{x.lineno}: {x.msg}"
  for x in chain:
    if isinstance(x, FileNotFoundError):
      return f"{x.filename}: config file not found"
    if isinstance(x, IsADirectoryError):
      return f"{x.filename}: is a folder, not a config file"
    if isinstance(x, PermissionError):
      return f"{x.filename}: config file not readable ({x.strerror})"
  for x in chain:  # an unknown field in a --config.* override (ml_collections' did-you-mean message)
    if isinstance(x, KeyError):
      head, _, rest = (str(x.args[0]) if x.args else str(x)).partition("\n")
      return ("a --config.* override names a field the config does not have: "
              + head.strip("\"'") + (f" ({rest.strip()})" if rest.strip() else ""))
  first = chain[0]
  import re
  m = re.search(r"\[Errno \d+\] ([^:\n]+): '([^'\n]+)'", str(first))  # config_flags' load failure
  if m:
    return f"{m.group(2)}: cannot load the config file ({m.group(1)})"
  flag_error = type(first).__module__.startswith("absl")
  if not flag_error:  # an exception raised inside the user's config file: point at its line
    frames = [f for f in traceback.extract_tb(first.__traceback__) if "site-packages" not in f.filename]
    if frames:
      f = frames[-1]
      return f"{f.filename}:{f.lineno}: {type(first).__name__}: {first}"
  return str(first).replace("\n", " ")


def os_error(e: OSError) -> str:
  """One line for an operating-system failure on a path (disk full, permission, vanished file)."""
  where = e.filename or ""
  return f"{where}: {e.strerror or e}" if where else str(e.strerror or e)


def repeated(values) -> list[str]:
  """The values a comma list names more than once (sorted, as text): a flag's usage error."""
  values = list(values)
  return sorted({str(v) for v in values if values.count(v) > 1})


def argument_parser(**kwargs):
  """An argparse parser whose usage errors are one `error:` line and exit code 1, like bad input
  (argparse's own prints the usage and exits 2)."""
  import argparse
  import sys

  class Parser(argparse.ArgumentParser):
    def error(self, message):  # noqa: D102
      print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
      sys.exit(1)

  return Parser(**kwargs)


def absl_flags_parser(argv):
  """For app.run(main, flags_parser=...): a bad flag is one `error:` line and exit code 1."""
  import sys
  from absl import flags
  try:
    return flags.FLAGS(argv)
  except flags.Error as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
