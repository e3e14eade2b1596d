"""Mesh and sharding helpers: one mesh axis carries a leading "languages" axis.

On a CPU-only machine, run with XLA_FLAGS=--xla_force_host_platform_device_count=N (set before
jax is imported) to get N host devices and exercise the sharded code paths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

LANG_AXIS = "lang"


def make_mesh(num_devices: int | None = None, axis: str = LANG_AXIS,
              devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh over the first `num_devices` devices (all by default)."""
  devices = list(devices if devices is not None else jax.devices())
  n = len(devices) if num_devices is None else num_devices
  if not 1 <= n <= len(devices):
    raise ValueError(f"asked for a mesh of {n} devices, but {len(devices)} are available "
                     "(on CPU set XLA_FLAGS=--xla_force_host_platform_device_count=N)")
  return Mesh(np.asarray(devices[:n]), (axis,))


def padded_size(n: int, multiple: int) -> int:
  """Smallest multiple of `multiple` that is >= n (n >= 1)."""
  return -(-n // multiple) * multiple


def replicated(mesh: Mesh) -> NamedSharding:
  """Every device holds the whole array."""
  return NamedSharding(mesh, P())


def leading_axis(mesh: Mesh, axis: str = LANG_AXIS) -> NamedSharding:
  """The leading array axis is split over the mesh axis; other axes are whole."""
  return NamedSharding(mesh, P(axis))


def shard_leading(tree: Any, mesh: Mesh, axis: str = LANG_AXIS) -> Any:
  """Places a pytree whose leaves share a leading axis (a multiple of the mesh size) on the mesh."""
  size = mesh.shape[axis]
  for leaf in jax.tree.leaves(tree):
    if leaf.shape[0] % size:
      raise ValueError(f"leading axis {leaf.shape[0]} is not a multiple of the {size} devices")
  return place(tree, leading_axis(mesh, axis))


def replicate(tree: Any, mesh: Mesh) -> Any:
  """Copies a pytree onto every device of the mesh."""
  return place(tree, replicated(mesh))


def place(tree: Any, sharding: NamedSharding) -> Any:
  """device_put that also works when the mesh spans several processes.

  Every process must pass the same values (same seed, same data); each then copies in only the
  slices its own devices hold. Arrays already laid out on `sharding` pass through.
  """
  if jax.process_count() == 1:
    return jax.device_put(tree, sharding)

  def one(x):
    if isinstance(x, jax.Array) and x.sharding == sharding:
      return x
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

  return jax.tree.map(one, tree)
