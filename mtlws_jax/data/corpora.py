"""Where the shared datasets live: `MTLWS_DATA_DIR`, else `../shared/data` beside the project."""

from __future__ import annotations

import os
import pathlib

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]

MISSING_DATA_HELP = (
    "Get the datasets as described in README.md ('Datasets'): the project expects "
    "../shared/data beside its root, or set MTLWS_DATA_DIR to the folder holding ner/, absa/, srl/, alignment/."
)


def data_dir() -> pathlib.Path | None:
  """The data folder if it exists, else None (tests skip, commands say how to get it)."""
  env = os.environ.get("MTLWS_DATA_DIR")
  candidates = [pathlib.Path(env)] if env else [PROJECT_ROOT.parent / "shared" / "data"]
  for c in candidates:
    if c.is_dir():
      return c
  return None
