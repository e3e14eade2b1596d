"""Backbone lookup: the offline e5 is converted on first use, once, under a lock."""

from __future__ import annotations

import threading
import time

import pytest

from mtlws_jax.errors import InputError
from mtlws_jax.models import locate


def test_e5_is_converted_once_even_by_concurrent_callers(tmp_path, monkeypatch):
  from mtlws_jax.models import offline_e5
  calls, active, overlap = [], [0], [False]

  def fake_convert(bin_path, out):
    active[0] += 1
    overlap[0] |= active[0] > 1
    time.sleep(0.3)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text("{}")
    calls.append(out)
    active[0] -= 1
    return out

  monkeypatch.setattr(offline_e5, "convert", fake_convert)
  monkeypatch.setattr(offline_e5, "is_converted", lambda out, bin_path=None: (out / "config.json").exists())
  monkeypatch.setenv("MTLWS_CACHE", str(tmp_path / "cache"))
  monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no real ~/.cache/mtlws_jax/e5-small
  said = []
  found = []
  threads = [threading.Thread(target=lambda: found.append(locate.find("e5-small", say=said.append))) for _ in range(3)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert len(calls) == 1 and not overlap[0]          # one conversion; the others waited for it
  assert len(said) == 1 and "converting the offline multilingual-e5-small" in said[0]
  assert {f[0] for f in found} == {str(tmp_path / "cache" / "e5-small")}
  assert locate.find("e5-small", say=said.append)[1] == f"found in {tmp_path / 'cache'}"  # now a cache hit


def test_missing_model_offline_names_where_it_looked(tmp_path, monkeypatch):
  monkeypatch.setenv("MTLWS_CACHE", str(tmp_path / "c"))
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  with pytest.raises(InputError, match=r"not found \(looked in .*c/xlm-roberta-base.*HF_HUB_OFFLINE=1"):
    locate.find("xlm-roberta-base")
  with pytest.raises(InputError, match="model.path is not a folder"):
    locate.find("x", path=str(tmp_path / "nope"))
