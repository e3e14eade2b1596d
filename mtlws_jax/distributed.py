"""Several hosts: `jax.distributed.initialize` from config, a no-op when not configured.

JAX runs one Python process per host (multi-controller): every process runs the same program,
sees all devices through `jax.devices()` but owns only `jax.local_devices()`, and feeds only its
own rows of each batch (data_parallel.local_rows / shard_batch, which builds global arrays with
`jax.make_array_from_process_local_data`). Call `maybe_initialize(config)` first thing in a
program, before anything touches JAX (even jax.devices()).

Config (`config.distributed`, see `default_config`):
  coordinator_address  "host:port" of process 0 ("" = not distributed, unless auto)
  num_processes        processes in the job (every process gives the same number)
  process_id           this process, 0 .. num_processes - 1
  local_device_ids     "" = all local devices, else e.g. "0,1" (one GPU per process: "$LOCAL_RANK")
  auto                 True: let JAX find all of the above (Cloud TPU pod, SLURM, Open MPI);
                       fields given explicitly still win
  cluster_detection_method  "" or one JAX knows ("slurm", "ompi", "mpi4py", ...)
  initialization_timeout    seconds to wait for the other processes

Launching (same command on every host, the data folder at the same path everywhere):
  TPU pod slice:  gcloud compute tpus tpu-vm ssh NAME --worker=all --command \
                    "cd mtlws-jax && python run.py --config=configs/ner_xlmr.py --config.distributed.auto=True"
  GPU nodes, by hand (node 0's address reachable from every node, any free port):
    node i of N:  python run.py --config=... --config.distributed.coordinator_address=10.0.0.1:1234 \
                    --config.distributed.num_processes=N --config.distributed.process_id=i
  GPU nodes under SLURM (srun starts one task per node or per GPU):
    srun python run.py --config=... --config.distributed.auto=True
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import jax
import ml_collections

from mtlws_jax.errors import InputError

_FIELDS = ("coordinator_address", "num_processes", "process_id", "local_device_ids", "auto",
           "cluster_detection_method", "initialization_timeout")


def default_config() -> ml_collections.ConfigDict:
  """The `config.distributed` block: not distributed."""
  c = ml_collections.ConfigDict()
  c.coordinator_address = ""
  c.num_processes = 0
  c.process_id = -1
  c.local_device_ids = ""
  c.auto = False
  c.cluster_detection_method = ""
  c.initialization_timeout = 300
  return c


def _block(config: Any) -> Mapping[str, Any]:
  """config.distributed, or the block itself, as a dict with defaults filled in.

  A config with no `distributed` block (and none of its fields at top level) is not distributed.
  """
  if config is None:
    return dict(default_config())
  if hasattr(config, "to_dict"):
    config = config.to_dict()
  if not isinstance(config, Mapping):
    raise InputError(f"config.distributed must be a block of fields, got {config!r}")
  if "distributed" in config:
    block = config["distributed"]
  elif set(config) & set(_FIELDS):
    block = config
  else:
    block = None
  if block is None:
    return dict(default_config())
  if hasattr(block, "to_dict"):
    block = block.to_dict()
  if not isinstance(block, Mapping):
    raise InputError(f"config.distributed must be a block of fields, got {block!r}")
  unknown = sorted(set(block) - set(_FIELDS))
  if unknown:
    raise InputError(f"unknown config.distributed field(s) {', '.join(unknown)}; "
                     f"known: {', '.join(_FIELDS)}")
  return dict(default_config()) | dict(block)


def _device_ids(value: Any) -> list[int] | None:
  if value in ("", None, ()):
    return None
  parts = value.split(",") if isinstance(value, str) else list(value)
  try:
    ids = [int(p) for p in parts]
  except (TypeError, ValueError):
    raise InputError(f"config.distributed.local_device_ids must be integers like '0,1', got {value!r}")
  if not ids or min(ids) < 0 or len(set(ids)) != len(ids):
    raise InputError(f"config.distributed.local_device_ids must be distinct non-negative integers, "
                     f"got {value!r}")
  return ids


def initialize_kwargs(config: Any) -> dict[str, Any] | None:
  """The arguments `maybe_initialize` passes to jax.distributed.initialize, or None (no-op).

  Raises InputError naming the field when the block is inconsistent.
  """
  c = _block(config)
  addr, n, pid = c["coordinator_address"] or "", c["num_processes"], c["process_id"]
  auto = c["auto"]
  if not isinstance(auto, bool):
    raise InputError(f"config.distributed.auto must be True or False, got {auto!r}")
  for name, value in (("num_processes", n), ("process_id", pid),
                      ("initialization_timeout", c["initialization_timeout"])):
    if not isinstance(value, int) or isinstance(value, bool):
      raise InputError(f"config.distributed.{name} must be an integer, got {value!r}")
  given_n, given_pid = n > 0, pid >= 0
  if not addr and not auto:
    if given_n or given_pid or c["local_device_ids"]:
      raise InputError("config.distributed sets num_processes/process_id/local_device_ids but no "
                       "coordinator_address (\"host:port\" of process 0); give it, or auto=True")
    return None
  kwargs: dict[str, Any] = {}
  if addr:
    m = re.fullmatch(r"(\[[0-9A-Fa-f:]+\]|[^\s:/]+):(\d+)", addr)
    if not m or not 1 <= int(m.group(2)) <= 65535:
      raise InputError(f"config.distributed.coordinator_address must be \"host:port\" with a port "
                       f"in 1..65535, got {addr!r}")
    kwargs["coordinator_address"] = addr
  if n < 0:
    raise InputError(f"config.distributed.num_processes must be >= 1 (0: found by auto), got {n}")
  if pid < -1:
    raise InputError(f"config.distributed.process_id must be >= 0 (-1: found by auto), got {pid}")
  if not auto:
    if not given_n or not given_pid:
      raise InputError("config.distributed.coordinator_address needs num_processes and process_id "
                       f"too (got num_processes={n}, process_id={pid}); or set auto=True")
  if given_pid and given_n and pid >= n:
    raise InputError(f"config.distributed.process_id={pid} is not below num_processes={n}")
  if given_n:
    kwargs["num_processes"] = n
  if given_pid:
    kwargs["process_id"] = pid
  ids = _device_ids(c["local_device_ids"])
  if ids is not None:
    kwargs["local_device_ids"] = ids
  if c["cluster_detection_method"]:
    kwargs["cluster_detection_method"] = str(c["cluster_detection_method"])
  if c["initialization_timeout"] < 1:
    raise InputError("config.distributed.initialization_timeout must be >= 1 second, got "
                     f"{c['initialization_timeout']}")
  kwargs["initialization_timeout"] = c["initialization_timeout"]
  return kwargs


def maybe_initialize(config: Any = None) -> bool:
  """Joins the multi-process job described by config.distributed; False when not configured.

  Idempotent: a second call in an initialized process does nothing (and returns True).
  Must run before any JAX computation (JAX raises a RuntimeError saying so otherwise).
  """
  kwargs = initialize_kwargs(config)
  if kwargs is None:
    return False
  if jax.distributed.is_initialized():
    return True
  jax.distributed.initialize(**kwargs)
  return True


def describe() -> dict[str, Any]:
  """This process's place in the job, for logs and results.json."""
  return {"process_index": jax.process_index(), "process_count": jax.process_count(),
          "local_devices": jax.local_device_count(), "devices": jax.device_count(),
          "platform": jax.devices()[0].platform}


def is_main_process() -> bool:
  """Process 0 writes files (results, tables, checkpoints metadata); the others only compute."""
  return jax.process_index() == 0


def host_copy(tree):
  """A host copy that survives donation of the device buffers it was read from.

  Arrays split over several processes are gathered first (every process must call this).
  """
  import numpy as np
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    tree = jax.tree.map(lambda x: multihost_utils.process_allgather(x, tiled=True)
                        if isinstance(x, jax.Array) and not x.is_fully_addressable else x, tree)
  return jax.tree.map(lambda x: np.array(x, copy=True), tree)


def barrier(name: str) -> None:
  """Every process waits here for the others (no-op on one process)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(f"mtlws_jax:{name}")


def main_first(fn, name: str):
  """fn() on process 0, then on the others once it is done (files on a shared filesystem)."""
  if jax.process_count() == 1:
    return fn()
  out = fn() if is_main_process() else None
  barrier(name)
  return out if is_main_process() else fn()
