"""Shared fixtures: the real data folder (skip when absent) and small helpers."""

from __future__ import annotations

import pathlib

import pytest

from mtlws_jax.data import corpora


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
  d = corpora.data_dir()
  if d is None:
    pytest.skip("real data not found (../shared/data or MTLWS_DATA_DIR)")
  return d
