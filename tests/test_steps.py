"""Train/eval steps: learning, step counter, dropout keys folded from the step, NaN guard,
schedules, clipping, donation; on a tiny pure model (the Tagger runs through the same steps in
test_warmup.py and the loop's tests)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from mtlws_jax.models import tagger
from mtlws_jax.train import optim, steps

from _tiny_model import T, V, tiny_apply, tiny_params


def make_batch(seed, b=4, s=7):
  rs = np.random.RandomState(seed)
  labels = rs.randint(0, T, (b, s)).astype(np.int32)
  labels[:, 0] = -1  # a [CLS]-like position without a label
  return {"input_ids": rs.randint(0, V, (b, s)).astype(np.int32),
          "attention_mask": np.ones((b, s), np.int32), "labels": labels}


def copy(tree):
  return jax.tree.map(jnp.array, tree)


def test_train_step_learns_a_fixed_batch_and_counts_steps():
  opt = optim.make_optimizer(0.05)
  step = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy)
  params = tiny_params()
  state = opt.init(params)
  batch = make_batch(0)
  losses = []
  for i in range(1, 31):
    params, state, m = step(params, state, batch, None)
    assert int(m["step"]) == i and bool(m["finite"])
    losses.append(float(m["loss"]))
  assert int(optim.step_of(state)) == 30
  assert losses[-1] < 0.5 * losses[0]


def test_dropout_key_is_folded_from_the_optimizer_step():
  opt = optim.make_optimizer(1e-2)
  step = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy, donate=False)
  params, batch, rng = tiny_params(), make_batch(1), jax.random.key(7)
  state = opt.init(params)

  @jax.jit
  def expected(p, s, key):
    grads = jax.grad(lambda q: tagger.token_cross_entropy(tiny_apply(q, batch, key), batch["labels"]))(p)
    updates, s = opt.update(grads, s, p)
    return optax.apply_updates(p, updates), s

  p1, s1, _ = step(params, state, batch, rng)
  e1, es1 = expected(params, state, jax.random.fold_in(rng, 0))
  p2, _, _ = step(p1, s1, batch, rng)
  e2, _ = expected(e1, es1, jax.random.fold_in(rng, 1))
  for got, want in [(p1, e1), (p2, e2)]:
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
      np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
  # Not the unfolded key (and, since expected() applies dropout, not "no dropout" either).
  wrong, _ = expected(params, state, rng)
  assert not np.allclose(wrong["embed"], p1["embed"])


def test_nonfinite_loss_keeps_params_and_raises_naming_the_step():
  opt = optim.make_optimizer(1e-2)
  step = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy)
  params = tiny_params()
  state = opt.init(params)
  batch = make_batch(2)
  for _ in range(2):
    params, state, m = step(params, state, batch, None)
    steps.check_finite(m)
  bad = copy(params)
  bad["embed"] = bad["embed"].at[int(batch["input_ids"][0, 3])].set(jnp.nan)
  before = copy(bad)
  new, new_state, m = step(bad, state, batch, None)
  assert not bool(m["finite"]) and int(m["step"]) == 3
  assert int(optim.step_of(new_state)) == 2  # the bad update was not applied
  for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(before)):
    np.testing.assert_array_equal(a, b)
  with pytest.raises(steps.NonFiniteLossError, match="non-finite loss at step 3"):
    steps.check_finite(m)
  with pytest.raises(steps.NonFiniteLossError, match="at step 12 "):
    steps.check_finite(m, step=12)


def test_params_and_state_are_donated():
  opt = optim.make_optimizer(1e-2)
  step = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy)
  params = tiny_params()
  state = opt.init(params)
  step(params, state, make_batch(3), None)
  assert params["embed"].is_deleted()


def test_eval_step_predicts_argmax_and_sums_loss():
  params, batch = tiny_params(), make_batch(4)
  eval_step = steps.make_eval_step(tiny_apply, loss_fn=tagger.token_cross_entropy)
  out = eval_step(params, batch)
  logits = tiny_apply(params, batch)
  np.testing.assert_array_equal(out["pred_ids"], np.argmax(logits, -1))
  assert out["pred_ids"].dtype == jnp.int32
  assert int(out["num_tokens"]) == int(np.sum(batch["labels"] >= 0))
  np.testing.assert_allclose(float(out["loss_sum"]) / int(out["num_tokens"]),
                             tagger.token_cross_entropy(logits, batch["labels"]), rtol=1e-6)
  empty = dict(batch, labels=np.full_like(batch["labels"], -1))
  out = eval_step(params, empty)
  assert float(out["loss_sum"]) == 0.0 and int(out["num_tokens"]) == 0


def test_schedule_warmup_then_linear_decay():
  sched = optim.make_schedule(1e-3, schedule="linear", warmup_steps=10, total_steps=110)
  np.testing.assert_allclose([sched(0), sched(5), sched(10), sched(60), sched(110), sched(200)],
                             [0.0, 5e-4, 1e-3, 5e-4, 0.0, 0.0], atol=1e-12)
  const = optim.make_schedule(5e-5)
  assert float(const(0)) == float(const(10_000)) == pytest.approx(5e-5)
  with pytest.raises(ValueError, match="total_steps > warmup_steps"):
    optim.make_schedule(1e-3, schedule="linear", warmup_steps=10)
  with pytest.raises(ValueError, match="unknown lr schedule"):
    optim.make_schedule(1e-3, schedule="cosine")


def test_optimizer_from_config_follows_the_schedule():
  """With a warmup schedule the first Adam update is 0 and later ones about lr in size."""
  opt = optim.optimizer_from_config({"learning_rate": 1e-2, "lr_schedule": "linear",
                                     "lr_warmup_steps": 2, "max_steps": 4})
  params = {"w": jnp.ones(3)}
  state = opt.init(params)
  sizes = []
  for _ in range(4):
    updates, state = opt.update({"w": jnp.ones(3)}, state, params)
    sizes.append(float(jnp.max(jnp.abs(updates["w"]))))
  np.testing.assert_allclose(sizes, [0.0, 5e-3, 1e-2, 5e-3], rtol=1e-4)
  with pytest.raises(ValueError, match="no learning_rate"):
    optim.optimizer_from_config({})


def test_gradient_clipping_is_applied():
  """Adam is scale invariant except for eps, so clipping to 1e-10 makes the update tiny."""
  g = {"w": jnp.full(3, 100.0)}
  p = {"w": jnp.zeros(3)}
  plain = optim.make_optimizer(1e-2)
  clipped = optim.make_optimizer(1e-2, clip_norm=1e-10)
  u_plain, _ = plain.update(g, plain.init(p), p)
  u_clip, _ = clipped.update(g, clipped.init(p), p)
  assert float(jnp.max(jnp.abs(u_plain["w"]))) == pytest.approx(1e-2, rel=1e-4)
  assert float(jnp.max(jnp.abs(u_clip["w"]))) < 1e-4


def test_step_of_needs_a_counter():
  assert int(optim.step_of(optax.adam(1e-3).init({"w": jnp.ones(2)}))) == 0
  with pytest.raises(ValueError, match="no step counter"):
    optim.step_of(optax.sgd(1e-3).init({"w": jnp.ones(2)}))


def test_outer_optimizers():
  outer = optim.outer_optimizer_from_config({"gamma": 0.5})
  p = {"w": jnp.ones(2)}
  assert outer.update({"w": jnp.ones(2)}, outer.init(p), p)[0]["w"].tolist() == [-0.5, -0.5]
  for name in optim.OUTER_OPTIMIZERS:
    optim.make_outer_optimizer(name, 1e-3)
  with pytest.raises(ValueError, match="unknown warmup outer optimizer"):
    optim.make_outer_optimizer("lamb", 1e-3)
