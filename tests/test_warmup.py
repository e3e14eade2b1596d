"""MTL-WS warmup (Eq. 7-8) against a plain reference, for every strategy.

The reference below is the paper's formula written out with Python loops; the library runs the
same maths as lax.scan + vmap / scan-over-languages / shard_map. Step sizes are large here
(beta = gamma = 0.5) so that a wrong formula moves the parameters visibly; the paper's
gamma = 5e-5 would make almost any implementation "match".
"""

import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtlws_jax.models import tagger
from mtlws_jax.train import optim, warmup

from _tiny_model import T, V, tiny_apply, tiny_params

BETA, GAMMA = 0.5, 0.5
loss_fn = tagger.token_cross_entropy


def make_batch(rs, b=3, s=6):
  labels = rs.randint(0, T, (b, s)).astype(np.int32)
  labels[:, 0] = -1
  return {"input_ids": rs.randint(0, V, (b, s)).astype(np.int32),
          "attention_mask": np.ones((b, s), np.int32), "labels": labels}


def language_batches(num_langs, k, seed=0):
  """[L][K] batches; each language draws its tokens from its own part of the vocabulary."""
  rs = np.random.RandomState(seed)
  out = []
  for lang in range(num_langs):
    batches = []
    for _ in range(k):
      b = make_batch(rs)
      b["input_ids"] = (b["input_ids"] + 7 * lang) % V
      batches.append(b)
    out.append(batches)
  return out


_grad_cache = {}


def _grad(apply_fn):
  if apply_fn not in _grad_cache:
    _grad_cache[apply_fn] = jax.jit(jax.grad(
        lambda p, batch, rng: loss_fn(apply_fn(p, batch, rng), batch["labels"])))
  return _grad_cache[apply_fn]


def reference_warmup(apply_fn, theta, epochs, *, beta, gamma, rng=None, momentum=None):
  """Eq. 7-8 verbatim. epochs: list over z of [L][K] batches. Dropout key of epoch z, language l,
  step k: fold_in(fold_in(fold_in(rng, z), l), k). momentum: heavy-ball outer SGD instead of Eq. 7.
  """
  grad = _grad(apply_fn)
  velocity = jax.tree.map(jnp.zeros_like, theta)
  for z, per_language in enumerate(epochs, start=1):
    num_targets = len(per_language)  # |L| - 1: L holds the source language too
    deltas = []
    for l, batches in enumerate(per_language):
      theta_l = theta  # theta^l_{z,0} <- theta_{z-1}
      for k, batch in enumerate(batches):  # Eq. 8
        key = None if rng is None else jax.random.fold_in(
            jax.random.fold_in(jax.random.fold_in(rng, z), l), k)
        g = grad(theta_l, batch, key)
        theta_l = jax.tree.map(lambda p, gp: p - beta * gp, theta_l, g)
      deltas.append(jax.tree.map(lambda a, b: a - b, theta_l, theta))
    if momentum is None:  # Eq. 7
      theta = jax.tree.map(lambda t, *d: t + gamma / num_targets * sum(d), theta, *deltas)
    else:
      pseudo_grad = jax.tree.map(lambda *d: -sum(d) / num_targets, *deltas)
      velocity = jax.tree.map(lambda v, g: momentum * v + g, velocity, pseudo_grad)
      theta = jax.tree.map(lambda t, v: t - gamma * v, theta, velocity)
  return theta


_epoch_cache = {}


def epoch_fn_for(apply_fn, strategy, beta, gamma, outer_name="sgd"):
  """One jitted epoch per setting, shared by the tests so each shape compiles once."""
  key = (apply_fn, strategy, beta, gamma, outer_name)
  if key not in _epoch_cache:
    outer = optim.make_outer_optimizer(outer_name, gamma, momentum=0.9)
    _epoch_cache[key] = outer, warmup.make_warmup_epoch(apply_fn, outer, beta=beta,
                                                        strategy=strategy, loss_fn=loss_fn)
  return _epoch_cache[key]


def library_warmup(apply_fn, theta, epochs, *, strategy, beta, gamma, rng=None, outer_name="sgd"):
  outer, epoch_fn = epoch_fn_for(apply_fn, strategy, beta, gamma, outer_name)
  stacked = [warmup.stack_language_batches(e) for e in epochs]
  return warmup.run_warmup(epoch_fn, outer, theta, stacked, rng=rng)


def max_diff(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def rel_change(a, b):
  return float(optax.tree.norm(jax.tree.map(jnp.subtract, a, b)) / optax.tree.norm(b))


# loop without dropout: test_outer_optimizer_is_a_config_change; shard: the subprocess test.
@pytest.mark.parametrize("strategy, dropout", [("vmap", False), ("vmap", True), ("loop", True)])
def test_strategy_matches_reference(strategy, dropout):
  theta0 = tiny_params()
  epochs = [language_batches(3, 4, seed=z) for z in range(2)]
  rng = jax.random.key(11) if dropout else None
  want = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=GAMMA, rng=rng)
  got = library_warmup(tiny_apply, theta0, epochs, strategy=strategy, beta=BETA, gamma=GAMMA,
                       rng=rng)
  assert rel_change(want, theta0) > 0.01  # the warmup really moved the parameters
  assert max_diff(got, want) < 1e-6


def test_reference_is_not_fooled_by_plain_averaging_or_a_wrong_divisor():
  """Mutants of Eq. 7 (divide by |L| instead of |L|-1 targets, skip gamma) are far from it."""
  theta0 = tiny_params()
  epochs = [language_batches(3, 4)]
  want = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=GAMMA)
  wrong_divisor = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=GAMMA * 3 / 4)
  no_gamma = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=1.0)
  assert max_diff(want, wrong_divisor) > 1e-3 and max_diff(want, no_gamma) > 1e-3


def test_outer_optimizer_is_a_config_change():
  theta0 = tiny_params()
  epochs = [language_batches(3, 4, seed=z) for z in range(3)]
  want = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=GAMMA, momentum=0.9)
  got = library_warmup(tiny_apply, theta0, epochs, strategy="loop", beta=BETA, gamma=GAMMA,
                       outer_name="momentum")
  assert max_diff(got, want) < 1e-6
  plain = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=GAMMA)
  assert max_diff(plain, want) > 1e-3


def test_epoch_metrics_and_donation():
  theta0 = tiny_params()
  outer, epoch_fn = epoch_fn_for(tiny_apply, "vmap", BETA, GAMMA)
  per_language = language_batches(3, 4)
  params = jax.tree.map(jnp.array, theta0)
  new, _, m = epoch_fn(params, outer.init(params), warmup.stack_language_batches(per_language))
  assert params["embed"].is_deleted()
  assert m["inner_loss"].shape == (3, 4)
  # inner_loss[l, 0] is the loss of theta_{z-1} on language l's first batch.
  for l in range(3):
    b = per_language[l][0]
    np.testing.assert_allclose(m["inner_loss"][l, 0],
                               loss_fn(tiny_apply(theta0, b), b["labels"]), rtol=1e-5)
  np.testing.assert_allclose(m["update_norm"],
                             optax.tree.norm(jax.tree.map(jnp.subtract, new, theta0)), rtol=1e-5)
  np.testing.assert_allclose(m["update_norm"], GAMMA * m["delta_norm"], rtol=1e-5)


def test_stack_language_batches_pads_and_checks():
  a = {"input_ids": np.ones((2, 3), np.int32), "labels": np.zeros((2, 3), np.int32),
       "example_ids": np.array([0, 1], np.int32)}
  b = {"input_ids": np.ones((1, 5), np.int32), "labels": np.ones((1, 5), np.int32),
       "example_ids": np.array([2], np.int32)}
  out = warmup.stack_language_batches([[a, b], [b, a]], pad_values={"input_ids": 9})
  assert out["input_ids"].shape == (2, 2, 2, 5) and out["example_ids"].shape == (2, 2, 2)
  np.testing.assert_array_equal(out["labels"][0, 0], [[0, 0, 0, -1, -1], [0, 0, 0, -1, -1]])
  np.testing.assert_array_equal(out["labels"][0, 1], [[1] * 5, [-1] * 5])
  np.testing.assert_array_equal(out["input_ids"][1, 0], [[1] * 5, [9] * 5])
  np.testing.assert_array_equal(out["example_ids"][0, 1], [2, -1])
  with pytest.raises(ValueError, match="same number K"):
    warmup.stack_language_batches([[a, b], [a]])
  with pytest.raises(ValueError, match="keys"):
    warmup.stack_language_batches([[a], [{"input_ids": a["input_ids"]}]])
  with pytest.raises(ValueError, match="unknown warmup strategy"):
    warmup.make_warmup_epoch(tiny_apply, optax.sgd(1.0), strategy="pmap", loss_fn=loss_fn)


def test_padded_rows_and_columns_change_nothing():
  """A language whose batches were padded by stacking (short batch, shorter sentences) warms up
  exactly as it would unpadded."""
  theta0 = tiny_params()
  rs = np.random.RandomState(3)
  padded = [make_batch(rs, b=2, s=4), make_batch(rs, b=3, s=5)] + language_batches(1, 2)[0]
  epochs = [[padded] + language_batches(2, 4, seed=1)]
  want = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=GAMMA)
  got = library_warmup(tiny_apply, theta0, epochs, strategy="vmap", beta=BETA, gamma=GAMMA)
  assert max_diff(got, want) < 1e-6


def test_warmup_effect_reports_parameter_and_loss_change():
  theta0 = tiny_params()
  per_language = language_batches(3, 4)
  targets = {"xx": per_language[0], "yy": per_language[1], "zz": per_language[2]}
  big = library_warmup(tiny_apply, theta0, [per_language] * 3, strategy="vmap", beta=BETA,
                       gamma=GAMMA)
  eff = warmup.warmup_effect(tiny_apply, theta0, big, targets, loss_fn=loss_fn)
  assert eff["param_change"] == pytest.approx(
      float(optax.tree.norm(jax.tree.map(jnp.subtract, big, theta0))), rel=1e-5)
  assert eff["param_rel_change"] == pytest.approx(eff["param_change"] / eff["param_norm"])
  assert eff["mean_loss_change"] < -0.05  # warming up on these batches lowers their loss
  for lang in targets:
    assert eff["loss_change"][lang] == pytest.approx(
        eff["loss_after"][lang] - eff["loss_before"][lang])
  paper = library_warmup(tiny_apply, theta0, [per_language] * 3, strategy="vmap", beta=1e-3,
                         gamma=5e-5)
  small = warmup.warmup_effect(tiny_apply, theta0, paper, targets, loss_fn=loss_fn)
  assert 0 < small["param_rel_change"] < 1e-5


@pytest.mark.slow
def test_warmup_with_the_real_tagger():
  from flax import nnx
  from mtlws_jax.models import encoder
  cfg = encoder.EncoderConfig(vocab_size=V, hidden_size=32, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=64)
  _, theta0, apply_fn = tagger.split_tagger(tagger.Tagger(cfg, num_tags=T, rngs=nnx.Rngs(0)))
  epochs = [language_batches(2, 2)]
  for per_language in epochs:
    for batches in per_language:
      for b in batches:
        b["token_type_ids"] = np.zeros_like(b["input_ids"])
        b["labels"] = np.where(b["labels"] >= 0, b["input_ids"] % T, -1)  # learnable tags
  got = library_warmup(apply_fn, theta0, epochs, strategy="vmap", beta=0.1, gamma=1.0)
  # Exactness against the reference is checked on the tiny model (a second tagger compile
  # costs too much test time); here: it runs, moves, and lowers the warmup loss.
  flat = [b for batches in epochs[0] for b in batches]
  before = warmup.mean_loss(apply_fn, theta0, flat)
  after = warmup.mean_loss(apply_fn, got, flat)
  assert rel_change(got, theta0) > 1e-3
  assert after < before - 0.05, (before, after)


def _shard_check():
  """Run in a subprocess with 4 forced host devices: shard == reference, with |L| padding."""
  assert jax.device_count() == 4, jax.devices()
  theta0 = tiny_params()
  rng = jax.random.key(5)
  for num_langs in (6,):  # padded to 8: two languages per device, two zero-weight ones
    epochs = [language_batches(num_langs, 3, seed=z) for z in range(2)]
    want = reference_warmup(tiny_apply, theta0, epochs, beta=BETA, gamma=GAMMA, rng=rng)
    got = library_warmup(tiny_apply, theta0, epochs, strategy="shard", beta=BETA, gamma=GAMMA,
                         rng=rng)
    assert rel_change(want, theta0) > 0.01
    diff = max_diff(got, want)
    assert diff < 1e-6, (num_langs, diff)
    print(f"shard L={num_langs}: max |diff| = {diff:.2e}")
  print("SHARD OK")


@pytest.mark.slow
def test_shard_strategy_matches_reference_on_4_host_devices():
  root = pathlib.Path(__file__).resolve().parents[1]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu", PYTHONPATH=str(root))
  proc = subprocess.run([sys.executable, __file__, "--shard-check"], cwd=root, env=env,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0 and "SHARD OK" in proc.stdout, proc.stdout + proc.stderr


if __name__ == "__main__" and sys.argv[1:] == ["--shard-check"]:
  _shard_check()
