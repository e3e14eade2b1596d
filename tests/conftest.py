"""Shared fixtures: the real data folder (skip when absent) and small helpers."""

from __future__ import annotations

import os
import pathlib

# No test may reach the real Hugging Face hub: a missing model fails fast and offline.
# (tests/test_hub_download.py serves its own hub on 127.0.0.1 and sets its subprocesses' env.)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

from mtlws_jax.data import corpora


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
  d = corpora.data_dir()
  if d is None:
    pytest.skip("real data not found (../shared/data or MTLWS_DATA_DIR)")
  return d
