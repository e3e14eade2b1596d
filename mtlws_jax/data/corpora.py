"""Where the datasets live: `MTLWS_DATA_DIR`, else `../shared/data` beside the project, else the cache.

`MTLWS_DATA_DIR` and the cache (`$XDG_CACHE_HOME/mtlws_jax/data`, default ~/.cache/mtlws_jax/data)
are fetch folders: `data.fetch` downloads what a run needs into them. `../shared/data` (this
workplace's copy) is read as it is.
"""

from __future__ import annotations

import os
import pathlib

PROJECT_ROOT = pathlib.Path(__file__).resolve().parents[2]

MISSING_DATA_HELP = (
    "Fetch the datasets with: python -m mtlws_jax.data.fetch --task=TASK (into $MTLWS_DATA_DIR, else "
    "~/.cache/mtlws_jax/data), or set MTLWS_DATA_DIR to a folder holding ner/, absa/, srl/, alignment/ "
    "(README.md, 'Datasets')."
)


def shared_dir() -> pathlib.Path:
  return PROJECT_ROOT.parent / "shared" / "data"


def cache_dir() -> pathlib.Path:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "mtlws_jax" / "data"


def data_root() -> pathlib.Path:
  """Where data is read, and fetched when it is a fetch folder (it need not exist yet)."""
  env = os.environ.get("MTLWS_DATA_DIR")
  if env:
    return pathlib.Path(os.path.expanduser(env))
  return shared_dir() if shared_dir().is_dir() else cache_dir()


def fetches_into(root: pathlib.Path) -> bool:
  """True for MTLWS_DATA_DIR and the cache; a data folder found beside the project is not written."""
  return root.resolve() != shared_dir().resolve() or bool(os.environ.get("MTLWS_DATA_DIR"))


def data_dir() -> pathlib.Path | None:
  """MTLWS_DATA_DIR or ../shared/data if it exists, else None (the real-data tests skip)."""
  env = os.environ.get("MTLWS_DATA_DIR")
  d = pathlib.Path(os.path.expanduser(env)) if env else shared_dir()
  return d if d.is_dir() else None
