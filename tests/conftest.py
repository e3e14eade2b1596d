"""Shared fixtures: the real data folder (skip when absent) and small helpers."""

from __future__ import annotations

import os
import pathlib

# No test may reach the real Hugging Face hub: a missing model fails fast and offline.
# (tests/test_hub_download.py serves its own hub on 127.0.0.1 and sets its subprocesses' env.)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from mtlws_jax.data import corpora

_OWN_CACHE = "MTLWS_TEST_XLA_CACHE_OWNED"


def pytest_configure(config):
  """One XLA compilation cache for the whole session, shared by the xdist workers and every
  run.py the tests start (they inherit the environment): the same tiny-model programs are
  compiled once instead of once per process. Reading and writing go through JAX's file lock
  (a size limit turns it on). Set JAX_COMPILATION_CACHE_DIR yourself to keep one across sessions."""
  if "JAX_COMPILATION_CACHE_DIR" in os.environ:
    return
  import tempfile
  os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="mtlws-test-xla-")
  os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(8 << 30))
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.3")
  os.environ[_OWN_CACHE] = str(os.getpid())


def pytest_unconfigure(config):
  if os.environ.get(_OWN_CACHE) == str(os.getpid()):  # the process that made it removes it
    import shutil
    shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
  d = corpora.data_dir()
  if d is None:
    pytest.skip("real data not found (../shared/data or MTLWS_DATA_DIR)")
  return d


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
  """Scheduling for --dist=loadgroup: a module's tests stay on one worker (they share module
  fixtures); a test marked `alone(seconds=...)` (a minute or more, measured) is a group of its
  own, and those go first, longest first, so the long ones overlap instead of ending the run."""
  alone = {id(i) for i in items if i.get_closest_marker("alone")}
  for item in items:
    if not item.get_closest_marker("xdist_group"):
      item.add_marker(pytest.mark.xdist_group(item.nodeid if id(item) in alone else item.module.__name__))
  first = sorted((i for i in items if id(i) in alone), key=lambda i: -i.get_closest_marker("alone").kwargs["seconds"])
  items[:] = first + [i for i in items if id(i) not in alone]
