"""Mesh helpers: sizes, padding arithmetic, clear errors (multi-device placement: test_warmup's
shard subprocess)."""

import jax
import numpy as np
import pytest

from mtlws_jax import parallel


def test_padded_size():
  assert [parallel.padded_size(n, 4) for n in (1, 3, 4, 5, 8, 9)] == [4, 4, 4, 8, 8, 12]
  assert parallel.padded_size(7, 1) == 7


def test_make_mesh_and_placement_on_available_devices():
  mesh = parallel.make_mesh()
  assert mesh.axis_names == (parallel.LANG_AXIS,) and mesh.size == jax.device_count()
  tree = {"a": np.arange(2 * mesh.size * 3, dtype=np.float32).reshape(2 * mesh.size, 3)}
  placed = parallel.shard_leading(tree, mesh)
  assert placed["a"].sharding == parallel.leading_axis(mesh)
  np.testing.assert_array_equal(placed["a"], tree["a"])
  assert parallel.replicate(tree, mesh)["a"].sharding.is_fully_replicated


def test_errors():
  with pytest.raises(ValueError, match="asked for a mesh of"):
    parallel.make_mesh(jax.device_count() + 1)
  mesh = parallel.make_mesh(1, devices=jax.devices()[:1])
  with pytest.raises(ValueError, match="asked for a mesh of 0"):
    parallel.make_mesh(0)
  assert mesh.size == 1
