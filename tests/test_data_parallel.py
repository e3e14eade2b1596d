"""Data-parallel training over a 4-device mesh gives the parameters of one device.

The pytest process already has JAX initialised with one CPU device, so the sharded runs happen
once in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=4; it prints one
JSON object of measurements that the tests below check. The reference is G1's plain
`steps.make_train_step` on one device, on the same batches.
"""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from mtlws_jax.train import data_parallel as dp
from _tiny_model import H, T, V, make_batch, max_diff, run_steps as _run, tiny_apply, tiny_params

STEPS = 3
# LLVM without optimisation: compiles several times faster; both sides of every comparison are
# compiled the same way, and the tolerances do not depend on it.
FAST_COMPILE = "--xla_backend_optimization_level=0"


# ---------------------------------------------------------------------------------------------
# What runs in the 4-device subprocess.


def _four_device_check():
  from flax import nnx
  from mtlws_jax.models import encoder, tagger
  from mtlws_jax.train import optim, steps

  assert jax.device_count() == 4, jax.devices()
  out = {}
  mesh = dp.make_data_mesh()
  opt = optim.make_optimizer(0.05)
  rng = jax.random.key(3)
  batches = [make_batch(i) for i in range(STEPS)]

  ref_step = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy)
  ref_p = jax.tree.map(jnp.array, tiny_params())
  ref_p, ref_s, ref_losses = _run(ref_p, ref_step, opt.init(ref_p), batches, rng)
  out["ref_change"] = max_diff(ref_p, tiny_params())

  for fsdp in (False, True):
    name = "fsdp" if fsdp else "replicated"
    theta0 = tiny_params()
    p = dp.place_params(theta0, mesh, fsdp, min_size=0)
    s = dp.init_opt_state(opt, p, mesh, fsdp, min_size=0)
    step = dp.make_sharded_train_step(tiny_apply, opt, mesh, fsdp=fsdp, min_size=0,
                                      loss_fn=tagger.token_cross_entropy)
    hlo = step.lower(p, s, batches[0], rng).compile().as_text() if fsdp else ""
    p, s, losses = _run(p, step, s, batches, rng)
    out[name] = {
        "param_diff": max_diff(p, ref_p), "state_diff": max_diff(s, ref_s),
        "loss_diff": float(np.max(np.abs(np.subtract(losses, ref_losses)))),
        "specs": dp.describe(p), "mu_specs": dp.describe(s[1][0].mu),
        "embed_shard_shape": list(p["embed"].addressable_shards[0].data.shape),
        "theta0_alive": not any(x.is_deleted() for x in jax.tree.leaves(theta0)),
        "all_gather": "all-gather" in hlo,
        "reduce_scatter": "reduce-scatter" in hlo or "all-reduce" in hlo,
    }
  sharded = dp.shard_batch(batches[0], mesh)
  out["batch_shard_shape"] = list(sharded["input_ids"].addressable_shards[0].data.shape)
  out["batch_spec"] = str(sharded["input_ids"].sharding.spec)

  # 6 rows on 4 devices: refused, or padded with filler rows that change nothing.
  six = [make_batch(10 + i, b=6) for i in range(2)]
  step = dp.make_sharded_train_step(tiny_apply, opt, mesh, loss_fn=tagger.token_cross_entropy)
  p = dp.place_params(tiny_params(), mesh)
  try:
    step(p, dp.init_opt_state(opt, p, mesh), six[0], None)
    out["six_rows_error"] = None
  except ValueError as e:
    out["six_rows_error"] = str(e)
  pad_step = dp.make_sharded_train_step(tiny_apply, opt, mesh, pad=True,
                                        loss_fn=tagger.token_cross_entropy)
  p = dp.place_params(tiny_params(), mesh)
  p, _, _ = _run(p, pad_step, dp.init_opt_state(opt, p, mesh), six, None)
  q = jax.tree.map(jnp.array, tiny_params())
  q, _, _ = _run(q, ref_step, opt.init(q), six, None)
  out["padded_diff"] = max_diff(p, q)

  ev = dp.make_sharded_eval_step(tiny_apply, mesh, fsdp=True, min_size=0,
                                 loss_fn=tagger.token_cross_entropy)(ref_p, batches[0])
  ev_ref = steps.make_eval_step(tiny_apply, loss_fn=tagger.token_cross_entropy)(ref_p, batches[0])
  out["eval_pred_equal"] = bool(np.array_equal(np.asarray(ev["pred_ids"]),
                                               np.asarray(ev_ref["pred_ids"])))
  out["eval_loss_rel_diff"] = abs(float(ev["loss_sum"]) / float(ev_ref["loss_sum"]) - 1)

  # The real Tagger (1 layer, hidden 32), FSDP with a size threshold, with dropout. Plain SGD:
  # Adam turns the rounding noise of gradients that are exactly 0 in exact arithmetic (the
  # attention key bias, softmax-invariant) into lr-sized steps of random sign.
  opt = optax.chain(optim.step_counter(), optax.sgd(0.5))
  cfg = encoder.EncoderConfig(vocab_size=V, hidden_size=32, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=64)
  _, theta0, apply_fn = tagger.split_tagger(tagger.Tagger(cfg, num_tags=T, rngs=nnx.Rngs(0)))
  q = jax.tree.map(jnp.array, theta0)
  q, _, tl_ref = _run(q, steps.make_train_step(apply_fn, opt), opt.init(q),
                      batches[:2], rng)
  p = dp.place_params(theta0, mesh, True, min_size=1024)
  step = dp.make_sharded_train_step(apply_fn, opt, mesh, fsdp=True, min_size=1024)
  p, _, tl = _run(p, step, dp.init_opt_state(opt, p, mesh, True, min_size=1024),
                  batches[:2], rng)
  out["tagger"] = {"param_diff": max_diff(p, q), "change": max_diff(q, theta0),
                   "loss_diff": float(np.max(np.abs(np.subtract(tl, tl_ref)))),
                   "num_sharded": sum("data" in v for v in dp.describe(p).values()),
                   "num_leaves": len(jax.tree.leaves(p))}
  print("RESULT " + json.dumps(out))


@pytest.fixture(scope="module")
def four():
  root = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count=4 {FAST_COMPILE}",
             JAX_PLATFORMS="cpu", PYTHONPATH=os.pathsep.join([str(root), str(root / "tests")]))
  proc = subprocess.run([sys.executable, __file__, "--four-device-check"], cwd=root, env=env,
                        capture_output=True, text=True, timeout=600)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
  assert proc.returncode == 0 and lines, proc.stdout + proc.stderr
  return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("layout", ["replicated", "fsdp"])
def test_sharded_steps_match_one_device(four, layout):
  r = four[layout]
  assert four["ref_change"] > 0.05  # the steps really move the parameters
  assert r["param_diff"] < 1e-5 and r["state_diff"] < 1e-5 and r["loss_diff"] < 1e-5, r
  assert r["theta0_alive"]  # place_params copies: the caller's parameters survive donation


def test_fsdp_really_splits_parameters_and_moments(four):
  r = four["fsdp"]
  assert r["specs"]["['embed']"] == str(P("data"))  # [40, 8]: 40 is the largest divisible axis
  assert r["specs"]["['out']['w']"] == str(P("data"))  # [8, 5]: only 8 divides over 4
  assert r["specs"]["['out']['b']"] == str(P())  # [5]: nothing divides
  assert r["mu_specs"] == r["specs"]  # Adam moments laid out like their parameters
  assert r["embed_shard_shape"] == [10, H]
  assert r["all_gather"]  # XLA gathers the split weights for the forward pass ...
  assert r["reduce_scatter"]  # ... and sums the gradients across devices
  rep = four["replicated"]
  assert set(rep["specs"].values()) == {str(P())} and rep["embed_shard_shape"] == [V, H]


def test_batch_is_split_by_rows(four):
  assert four["batch_spec"] == str(P("data"))
  assert four["batch_shard_shape"] == [2, 7]


def test_uneven_batch_is_refused_or_padded(four):
  assert "6 rows does not split over 4 devices" in four["six_rows_error"]
  assert four["padded_diff"] < 1e-5


def test_real_tagger_fsdp_matches_one_device(four):
  t = four["tagger"]
  assert t["change"] > 1e-3
  assert t["param_diff"] < 1e-5 and t["loss_diff"] < 1e-5, t
  assert 0 < t["num_sharded"] < t["num_leaves"]  # big weights split, biases/norms replicated


def test_sharded_eval_matches_one_device(four):
  assert four["eval_pred_equal"] and four["eval_loss_rel_diff"] < 1e-6


# ---------------------------------------------------------------------------------------------
# One device (in the pytest process): the pure helpers.


def test_fsdp_spec_rule():
  assert dp.fsdp_spec((40, 8), 4, min_size=0) == P("data")
  assert dp.fsdp_spec((6, 12), 4, min_size=0) == P(None, "data")
  assert dp.fsdp_spec((8, 8), 4, min_size=0) == P("data")  # ties: the first axis
  assert dp.fsdp_spec((5, 7), 4, min_size=0) == P()
  assert dp.fsdp_spec((40, 8), 4, min_size=1000) == P()  # small leaves stay whole
  assert dp.fsdp_spec((), 4, min_size=0) == P()
  assert dp.fsdp_spec((40, 8), 1, min_size=0) == P()


def test_pad_rows_appends_label_free_filler():
  b = make_batch(0, b=3, s=5)
  b["example_ids"] = np.arange(3, dtype=np.int32)
  out = dp.pad_rows(b, 4, pad_id=9)
  assert {k: v.shape[0] for k, v in out.items()} == dict.fromkeys(b, 4)
  np.testing.assert_array_equal(out["labels"][3], [-1] * 5)
  np.testing.assert_array_equal(out["attention_mask"][3], [1, 0, 0, 0, 0])
  np.testing.assert_array_equal(out["input_ids"][3], [9] * 5)
  assert out["example_ids"][3] == -1
  for k in b:
    np.testing.assert_array_equal(out[k][:3], b[k])
  assert dp.pad_rows(b, 3)["labels"].shape[0] == 3
  with pytest.raises(ValueError, match="disagree"):
    dp.pad_rows({"labels": np.zeros((2, 3)), "input_ids": np.zeros((3, 3))}, 4)


def test_one_device_mesh_rows_and_errors():
  mesh = dp.make_data_mesh(1)
  assert dp.local_rows(5, mesh) == slice(0, 5)
  rows = dp.take_local_rows(make_batch(1, b=4), mesh)
  assert rows["input_ids"].shape == (4, 7)
  with pytest.raises(ValueError, match="not 'lang'"):
    dp.param_shardings(tiny_params(), mesh, axis="lang")
  with pytest.raises(ValueError, match="asked for a mesh of"):
    dp.make_data_mesh(jax.device_count() + 1)


if __name__ == "__main__" and sys.argv[1:] == ["--four-device-check"]:
  _four_device_check()
