"""jax.distributed from config: a no-op when not configured, clear errors when half-configured,
and a real two-process job on localhost (CPU, gloo collectives) whose data-parallel steps, each
process feeding only its own rows, give the parameters of one device."""

import json
import os
import pathlib
import sys

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from mtlws_jax import distributed
from mtlws_jax.errors import InputError
import _processes as P
from _tiny_model import make_batch, max_diff, run_steps, tiny_apply, tiny_params

STEPS = 3
# LLVM without optimisation: compiles several times faster; both sides of every comparison are
# compiled the same way, and the tolerances do not depend on it.
FAST_COMPILE = "--xla_backend_optimization_level=0"


def test_not_configured_is_a_noop():
  assert distributed.initialize_kwargs(None) is None
  assert distributed.maybe_initialize(None) is False
  config = ml_collections.ConfigDict({"distributed": distributed.default_config(), "task": "ner"})
  assert distributed.maybe_initialize(config) is False
  assert distributed.maybe_initialize({"task": "ner"}) is False  # no block at all
  assert not jax.distributed.is_initialized()


def test_explicit_and_auto_arguments():
  block = dict(coordinator_address="10.0.0.1:1234", num_processes=4, process_id=3,
               local_device_ids="0,1")
  assert distributed.initialize_kwargs({"distributed": block}) == {
      "coordinator_address": "10.0.0.1:1234", "num_processes": 4, "process_id": 3,
      "local_device_ids": [0, 1], "initialization_timeout": 300}
  # auto: JAX detects the TPU pod / SLURM / Open MPI job; fields given still win.
  assert distributed.initialize_kwargs({"auto": True}) == {"initialization_timeout": 300}
  assert distributed.initialize_kwargs(
      {"auto": True, "num_processes": 2, "cluster_detection_method": "slurm"}) == {
          "num_processes": 2, "cluster_detection_method": "slurm", "initialization_timeout": 300}
  assert distributed.initialize_kwargs(
      {"coordinator_address": "[::1]:80", "num_processes": 1, "process_id": 0})[
          "coordinator_address"] == "[::1]:80"


@pytest.mark.parametrize("block, message", [
    ({"num_processes": 2, "process_id": 0}, "no coordinator_address"),
    ({"coordinator_address": "10.0.0.1", "num_processes": 2, "process_id": 0}, "host:port"),
    ({"coordinator_address": "10.0.0.1:99999", "num_processes": 2, "process_id": 0}, "host:port"),
    ({"coordinator_address": "10.0.0.1:1234", "num_processes": 2}, "needs num_processes and process_id"),
    ({"coordinator_address": "10.0.0.1:1234", "num_processes": 2, "process_id": 2}, "not below"),
    ({"coordinator_address": "10.0.0.1:1234", "num_processes": -1, "process_id": 0}, ">= 1"),
    ({"coordinator_address": "10.0.0.1:1234", "num_processes": "2", "process_id": 0}, "integer"),
    ({"auto": "yes"}, "True or False"),
    ({"auto": True, "local_device_ids": "0,x"}, "integers"),
    ({"auto": True, "local_device_ids": "0,0"}, "distinct"),
    ({"auto": True, "initialization_timeout": 0}, ">= 1 second"),
    ({"coordinater_address": "10.0.0.1:1234"}, "unknown config.distributed field"),
])
def test_bad_blocks_name_the_field(block, message):
  with pytest.raises(InputError, match=message):
    distributed.maybe_initialize({"distributed": block})
  assert not jax.distributed.is_initialized()


# ---------------------------------------------------------------------------------------------
# Two processes x two CPU devices on localhost.


def _flat(params):
  return {"embed": params["embed"], "w": params["out"]["w"], "b": params["out"]["b"]}


def _worker(pid: int, port: int, out_dir: str):
  from mtlws_jax.models import tagger
  from mtlws_jax.train import data_parallel as dp, optim

  assert distributed.maybe_initialize(ml_collections.ConfigDict({"distributed": {
      "coordinator_address": f"127.0.0.1:{port}", "num_processes": 2, "process_id": pid,
      "initialization_timeout": 60}}))
  assert distributed.maybe_initialize({"distributed": {  # idempotent
      "coordinator_address": f"127.0.0.1:{port}", "num_processes": 2, "process_id": pid}})
  info = distributed.describe()
  mesh = dp.make_data_mesh()
  rows = dp.local_rows(8, mesh)
  info["rows"] = [rows.start, rows.stop]
  opt = optim.make_optimizer(0.05)
  rng = jax.random.key(3)
  for fsdp in (False, True):
    p = dp.place_params(tiny_params(), mesh, fsdp, min_size=0)
    s = dp.init_opt_state(opt, p, mesh, fsdp, min_size=0)
    # Every process builds the same global batches (same seed). Replicated: the step is given
    # the whole batch and keeps its rows; FSDP: the caller takes its rows (global_batch=False).
    step = dp.make_sharded_train_step(tiny_apply, opt, mesh, fsdp=fsdp, min_size=0,
                                      loss_fn=tagger.token_cross_entropy, global_batch=not fsdp)
    batches = [make_batch(i) for i in range(STEPS)]
    if fsdp:
      batches = [dp.take_local_rows(b, mesh) for b in batches]
    p, _, losses = run_steps(p, step, s, batches, rng)
    info["fsdp" if fsdp else "replicated"] = {
        "losses": losses, "local_shards": len(p["embed"].addressable_shards),
        "fully_addressable": p["embed"].is_fully_addressable}
    if distributed.is_main_process():
      np.savez(os.path.join(out_dir, f"{'fsdp' if fsdp else 'replicated'}.npz"),
               **_flat(dp.gather(p)))
    else:
      dp.gather(p)  # a collective: every process takes part
  with open(os.path.join(out_dir, f"info{pid}.json"), "w") as f:
    json.dump(info, f)


def test_two_processes_match_one_device(tmp_path):
  root = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count=2 {FAST_COMPILE}",
             JAX_PLATFORMS="cpu",
             PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
  port = P.free_port()
  P.run_all([[sys.executable, __file__, "--worker", str(pid), str(port), str(tmp_path)] for pid in (0, 1)],
            cwd=root, env=env, timeout=300)
  info = [json.loads((tmp_path / f"info{i}.json").read_text()) for i in (0, 1)]
  for i in (0, 1):
    assert info[i]["process_index"] == i and info[i]["process_count"] == 2
    assert info[i]["devices"] == 4 and info[i]["local_devices"] == 2
    assert info[i]["rows"] == [4 * i, 4 * i + 4]
  assert info[0]["fsdp"]["local_shards"] == 2 and not info[0]["fsdp"]["fully_addressable"]

  from mtlws_jax.models import tagger
  from mtlws_jax.train import optim, steps
  opt = optim.make_optimizer(0.05)
  ref = jax.tree.map(jnp.array, tiny_params())
  ref, _, ref_losses = run_steps(
      ref, steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy),
      opt.init(ref), [make_batch(i) for i in range(STEPS)], jax.random.key(3))
  assert max_diff(ref, tiny_params()) > 0.05
  for layout in ("replicated", "fsdp"):
    got = np.load(tmp_path / f"{layout}.npz")
    want = _flat(ref)
    for k in want:
      np.testing.assert_allclose(got[k], want[k], atol=1e-5, err_msg=f"{layout} {k}")
    for i in (0, 1):  # both processes saw the global loss
      np.testing.assert_allclose(info[i][layout]["losses"], ref_losses, atol=1e-5)


if __name__ == "__main__" and sys.argv[1] == "--worker":
  _worker(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
