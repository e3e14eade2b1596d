"""Data-parallel training over a device mesh: the batch split over axis "data", parameters
replicated or sharded FSDP-style.

The maths is `steps.make_train_step`'s body, unchanged: we only jit it with shardings and let
XLA (GSPMD) insert the collectives. With replicated parameters that is an all-reduce of the
gradients; with `fsdp=True` every parameter (and its Adam moments) is split along its largest
axis that divides the device count (leaves under `min_size` elements stay whole), so XLA
all-gathers the weights where the forward/backward pass needs them and reduce-scatters the
gradients. The loss is the token mean over the *global* batch either way, so a sharded step
gives the parameters of a one-device step on the same batch (up to float summation order;
tests/test_data_parallel.py).

Rows: a batch's leading axis must be a multiple of the devices in the mesh.
`pad=True` instead appends filler rows in `batching.collate`'s layout (labels/word_ids/example_ids
-1, attention on position 0 only): they carry no label, so the loss, the gradients and the
merged predictions do not change.

Several hosts (see mtlws_jax/distributed.py): every process calls the same functions with the
same parameters (same seed). By default the steps take the *global* batch, which every process
builds the same way (BatchStream is a function of seed and step), and keep their own rows
(`local_rows`); with global_batch=False each process passes only its own rows. Either way
`shard_batch` builds the global array with `jax.make_array_from_process_local_data`.
On one process, local rows = all rows and nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from mtlws_jax import parallel
from mtlws_jax.data import batching
from mtlws_jax.train import steps as steps_lib

DATA_AXIS = "data"
# Leaves smaller than this (elements) stay replicated under FSDP: splitting a bias or a
# LayerNorm scale saves nothing and costs one collective each.
FSDP_MIN_SIZE = 2 ** 12

Params = Any


def make_data_mesh(num_devices: int | None = None, devices=None) -> Mesh:
  """A 1-D mesh named "data" over the first `num_devices` devices (all, across hosts, by default)."""
  return parallel.make_mesh(num_devices, axis=DATA_AXIS, devices=devices)


def _axis_size(mesh: Mesh, axis: str) -> int:
  if axis not in mesh.shape:
    raise ValueError(f"mesh has axes {tuple(mesh.axis_names)}, not {axis!r}")
  return mesh.shape[axis]


# ---------------------------------------------------------------------------------------------
# Parameter layout.


def fsdp_spec(shape: tuple[int, ...], num_shards: int, *, axis: str = DATA_AXIS,
              min_size: int = FSDP_MIN_SIZE) -> P:
  """Shard the largest dimension divisible by `num_shards` (ties: the first); else replicate."""
  if num_shards <= 1 or int(np.prod(shape, dtype=np.int64)) < max(min_size, 1):
    return P()
  best = None
  for d, n in enumerate(shape):
    if n % num_shards == 0 and (best is None or n > shape[best]):
      best = d
  if best is None:
    return P()
  return P(*([None] * best + [axis]))


def param_shardings(tree: Any, mesh: Mesh, *, fsdp: bool = False, axis: str = DATA_AXIS,
                    min_size: int = FSDP_MIN_SIZE) -> Any:
  """A NamedSharding per leaf of `tree` (arrays or ShapeDtypeStructs): replicated, or FSDP.

  The rule depends on a leaf's shape only, so optimizer moments (same shapes as the
  parameters) are laid out like their parameters, and scalars (step counts) are replicated.
  """
  n = _axis_size(mesh, axis)

  def one(leaf):
    if not fsdp:
      return NamedSharding(mesh, P())
    return NamedSharding(mesh, fsdp_spec(tuple(np.shape(leaf)), n, axis=axis, min_size=min_size))

  return jax.tree.map(one, tree)


def _put(tree: Any, shardings: Any, *, may_alias: bool | None = None) -> Any:
  """Places host or device arrays on (possibly multi-host) shardings.

  Every process must hold the same full values (params from the same seed);
  make_array_from_callback then copies each process's own slices only.
  """
  if jax.process_count() == 1:
    if may_alias is False:
      # device_put may reuse a buffer for the device it already sits on even with
      # may_alias=False (seen with replicated shardings, jax 0.10), so copy first.
      tree = jax.tree.map(lambda x: jnp.array(x, copy=True), tree)
    return jax.device_put(tree, shardings)

  def one(x, s):
    if isinstance(x, jax.Array) and x.sharding == s:
      return x
    host = np.array(x)  # a copy: never a view of the caller's buffer
    return jax.make_array_from_callback(host.shape, s, lambda idx: host[idx])

  return jax.tree.map(one, tree, shardings)


def place_params(params: Params, mesh: Mesh, fsdp: bool = False, *, axis: str = DATA_AXIS,
                 min_size: int = FSDP_MIN_SIZE, copy: bool = True) -> Params:
  """Puts parameters on the mesh: a full copy per device, or FSDP shards (fsdp=True).

  By default the result never aliases `params`, so the caller's copy survives the donating
  train step. copy=False (for evaluation, which donates nothing) leaves parameters already in
  this layout where they are.
  """
  return _put(params, param_shardings(params, mesh, fsdp=fsdp, axis=axis, min_size=min_size),
              may_alias=False if copy else None)


def init_opt_state(optimizer: optax.GradientTransformation, params: Params, mesh: Mesh,
                   fsdp: bool = False, *, axis: str = DATA_AXIS,
                   min_size: int = FSDP_MIN_SIZE) -> Any:
  """optimizer.init(params), created directly in the parameters' layout (no full copy first)."""
  shapes = jax.eval_shape(optimizer.init, params)
  out = param_shardings(shapes, mesh, fsdp=fsdp, axis=axis, min_size=min_size)
  return jax.jit(optimizer.init, out_shardings=out)(params)


# ---------------------------------------------------------------------------------------------
# Batches.


def batch_sharding(mesh: Mesh, axis: str = DATA_AXIS) -> NamedSharding:
  """Rows split over the data axis; sequence and other axes whole."""
  return NamedSharding(mesh, P(axis))


def _local_devices(mesh: Mesh) -> int:
  me = jax.process_index()
  return sum(1 for d in mesh.devices.flat if d.process_index == me)


def local_rows(global_batch_size: int, mesh: Mesh, axis: str = DATA_AXIS) -> slice:
  """The rows of a global batch this process feeds (all rows on one process).

  Raises when the global batch does not split evenly over the mesh's devices.
  """
  n = _axis_size(mesh, axis)
  if global_batch_size % n:
    raise ValueError(f"a global batch of {global_batch_size} rows does not split over {n} "
                     f"devices; use a batch size that is a multiple of {n}")
  index_map = batch_sharding(mesh, axis).addressable_devices_indices_map((global_batch_size,))
  starts = sorted({idx[0].indices(global_batch_size)[0] for idx in index_map.values()})
  per = global_batch_size // n
  lo, hi = starts[0], starts[-1] + per
  if (hi - lo) != per * len(starts):
    raise ValueError("this process's devices do not hold contiguous rows of the batch; build "
                     "the mesh from jax.devices() in order (make_data_mesh)")
  return slice(lo, hi)


def take_local_rows(batch: Mapping[str, np.ndarray], mesh: Mesh,
                    axis: str = DATA_AXIS) -> dict[str, np.ndarray]:
  """This process's rows of a global batch that every process built the same way (same seed)."""
  sizes = {np.shape(v)[0] for v in batch.values()}
  if len(sizes) != 1:
    raise ValueError(f"batch arrays disagree on the number of rows: {sorted(sizes)}")
  rows = local_rows(sizes.pop(), mesh, axis)
  return {k: np.asarray(v)[rows] for k, v in batch.items()}


def pad_rows(batch: Mapping[str, np.ndarray], multiple: int, *, pad_id: int = 0
             ) -> dict[str, np.ndarray]:
  """Appends filler rows (no labels; attention on position 0 only) up to a multiple of `multiple`.

  Same layout as batching.collate's fill_last rows: they add nothing to the loss and are skipped
  by merge_predictions (example_ids -1). input_ids of filler rows are `pad_id`.
  """
  sizes = {np.shape(v)[0] for v in batch.values()}
  if len(sizes) != 1:
    raise ValueError(f"batch arrays disagree on the number of rows: {sorted(sizes)}")
  rows = sizes.pop()
  extra = parallel.padded_size(max(rows, 1), multiple) - rows
  if not extra:
    return {k: np.asarray(v) for k, v in batch.items()}
  out = {}
  for k, v in batch.items():
    v = np.asarray(v)
    fill = batching.fill_values(pad_id).get(k, 0)
    filler = np.full((extra,) + v.shape[1:], fill, v.dtype)
    if k == "attention_mask" and v.ndim == 2:
      filler[:, 0] = 1  # an all-masked row would give a softmax over nothing
    out[k] = np.concatenate([v, filler])
  return out


def shard_batch(batch: Mapping[str, Any], mesh: Mesh, *, axis: str = DATA_AXIS,
                global_batch: bool = False, pad: bool = False, pad_id: int = 0
                ) -> dict[str, jax.Array]:
  """Host rows -> global arrays split by rows over the mesh.

  global_batch=False: `batch` holds this process's rows (all rows on one process); on several
  processes the global batch is their concatenation in process order, and the rows must be a
  multiple of this process's devices. global_batch=True: every process passes the same whole
  batch (built from the same seed) and keeps its own rows (`take_local_rows`); the rows must
  be a multiple of all devices in the mesh. pad=True appends filler rows instead of raising.
  On one process the two are the same. Arrays already laid out on this sharding pass through.
  """
  sharding = batch_sharding(mesh, axis)
  local = _local_devices(mesh)
  if not local:
    raise ValueError("this process has no device in the mesh")
  if all(isinstance(v, jax.Array) and v.sharding == sharding for v in batch.values()):
    return dict(batch)
  sizes = {np.shape(v)[0] for v in batch.values()}
  if len(sizes) != 1:
    raise ValueError(f"batch arrays disagree on the number of rows: {sorted(sizes)}")
  rows = sizes.pop()
  devices = _axis_size(mesh, axis) if global_batch else local
  if rows % devices:
    if not pad:
      where = "" if global_batch else " (this process's rows)"
      raise ValueError(
          f"a batch of {rows} rows{where} does not split over {devices} devices; use a batch "
          f"size that is a multiple of {devices} or pad=True (filler rows without labels)")
    batch = pad_rows(batch, devices, pad_id=pad_id)
  if global_batch:
    batch = take_local_rows(batch, mesh, axis)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
          for k, v in batch.items()}


# ---------------------------------------------------------------------------------------------
# Steps.


def _shape_key(tree: Any) -> tuple:
  leaves, treedef = jax.tree.flatten(tree)
  return treedef, tuple((tuple(np.shape(x)), str(getattr(x, "dtype", type(x)))) for x in leaves)


def make_sharded_train_step(apply_fn: steps_lib.ApplyFn, optimizer: optax.GradientTransformation,
                            mesh: Mesh, *, fsdp: bool = False, axis: str = DATA_AXIS,
                            min_size: int = FSDP_MIN_SIZE, loss_fn: steps_lib.LossFn | None = None,
                            skip_nonfinite: bool = True, donate: bool = True,
                            global_batch: bool = True, pad: bool = False, pad_id: int = 0
                            ) -> Callable[..., tuple[Params, Any, dict]]:
  """`train_step(params, opt_state, batch, rng) -> (params, opt_state, metrics)` over the mesh.

  A drop-in for steps.make_train_step (same body, same metrics, same dropout keys): the batch
  may be host numpy (by default the whole batch, the same on every process; global_batch=False:
  this process's rows; see shard_batch, `pad`) or already sharded; params and
  opt_state are moved to the layout (place_params / init_opt_state do it up front, for free on
  later steps) and come back in it. One jit per parameter structure, built on first call.
  `.lower(params, opt_state, batch, rng)` gives the lowered step (cost analysis, HLO).
  """
  body = steps_lib.make_train_step(apply_fn, optimizer, loss_fn=loss_fn,
                                   skip_nonfinite=skip_nonfinite, donate=False)
  cache: dict[tuple, tuple] = {}

  def build(params, opt_state, rng):
    key = (_shape_key(params), _shape_key(opt_state), rng is None)
    if key not in cache:
      ps = param_shardings(params, mesh, fsdp=fsdp, axis=axis, min_size=min_size)
      ss = param_shardings(opt_state, mesh, fsdp=fsdp, axis=axis, min_size=min_size)
      rep = NamedSharding(mesh, P())
      jitted = jax.jit(body, in_shardings=(ps, ss, batch_sharding(mesh, axis), rep),
                       out_shardings=(ps, ss, rep), donate_argnums=(0, 1) if donate else ())
      cache[key] = (jitted, ps, ss)
    return cache[key]

  def prepare(params, opt_state, batch, rng):
    jitted, ps, ss = build(params, opt_state, rng)
    batch = shard_batch(batch, mesh, axis=axis, global_batch=global_batch, pad=pad, pad_id=pad_id)
    return jitted, (_put(params, ps), _put(opt_state, ss), batch, rng)

  def train_step(params, opt_state, batch, rng):
    jitted, args = prepare(params, opt_state, batch, rng)
    return jitted(*args)

  def lower(params, opt_state, batch, rng):
    jitted, args = prepare(params, opt_state, batch, rng)
    return jitted.lower(*args)

  train_step.lower = lower
  train_step.mesh = mesh
  return train_step


def make_sharded_eval_step(apply_fn: steps_lib.ApplyFn, mesh: Mesh, *, fsdp: bool = False,
                           axis: str = DATA_AXIS, min_size: int = FSDP_MIN_SIZE,
                           loss_fn: steps_lib.LossFn | None = None, global_batch: bool = True,
                           pad: bool = False, pad_id: int = 0
                           ) -> Callable[[Params, Mapping[str, Any]], dict]:
  """steps.make_eval_step over the mesh: `eval_step(params, batch) -> {pred_ids, loss_sum, num_tokens}`.

  pred_ids [B, S] stays split by rows (np.asarray it on one process; on several, each process
  reads its own rows from `.addressable_shards`). With pad=True the filler rows are in pred_ids
  too (example_ids -1, so merge_predictions skips them).
  """
  body = steps_lib.make_eval_step(apply_fn, loss_fn=loss_fn)
  cache: dict[tuple, tuple] = {}

  def eval_step(params, batch):
    key = _shape_key(params)
    if key not in cache:
      ps = param_shardings(params, mesh, fsdp=fsdp, axis=axis, min_size=min_size)
      rows, rep = batch_sharding(mesh, axis), NamedSharding(mesh, P())
      out = {"pred_ids": rows, "loss_sum": rep, "num_tokens": rep}
      cache[key] = (jax.jit(body, in_shardings=(ps, rows), out_shardings=out), ps)
    jitted, ps = cache[key]
    return jitted(_put(params, ps), shard_batch(batch, mesh, axis=axis, global_batch=global_batch,
                                                pad=pad, pad_id=pad_id))

  return eval_step


def gather(tree: Any) -> Any:
  """Full host numpy copies of (possibly sharded, possibly multi-host) arrays, on every process."""
  if jax.process_count() == 1:
    return jax.tree.map(np.asarray, tree)
  from jax.experimental import multihost_utils
  return multihost_utils.process_allgather(tree, tiled=True)


def describe(tree: Any) -> dict[str, str]:
  """Path -> PartitionSpec of each leaf, for logs ("which weights are split")."""
  out = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    spec = getattr(getattr(leaf, "sharding", None), "spec", None)
    out[jax.tree_util.keystr(path)] = str(spec) if spec is not None else "host"
  return out


def data_layout(config) -> tuple[Mesh | None, bool]:
  """(data mesh, fsdp) from config.parallel; (None, False) for plain one-device steps."""
  from mtlws_jax.errors import InputError
  par = config.get("parallel")
  mode = par.mode if par is not None else "none"
  n = (par.num_devices if par is not None else 0) or jax.device_count()
  if mode == "auto":
    mode = "data" if jax.device_count() > 1 else "none"
  if mode == "none":
    return None, False
  if n > jax.device_count():
    raise InputError(f"config.parallel.num_devices={n}, but JAX sees {jax.device_count()} devices")
  if jax.process_count() > 1 and n != jax.device_count():
    raise InputError("config.parallel.num_devices must be 0 (all devices) in a multi-process job: "
                     "every process needs devices in the mesh")
  return make_data_mesh(n), mode == "fsdp"
