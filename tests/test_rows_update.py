"""train.embedding_update="rows": Adam over the word-embedding rows a batch touches (lazy Adam).

Equal to dense Adam when every row is touched every step (clipping, AdamW and a schedule
included), and after a first step from a fresh state; otherwise untouched rows (and their
moments) stay as they were, where dense Adam keeps moving them on their old momentum.
"""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import _tiny_absa as TA
from _tiny_model import T, V, tiny_apply, tiny_params
from mtlws_jax import experiment, runfolder
from mtlws_jax.errors import InputError
from mtlws_jax.models import tagger
from mtlws_jax.train import optim, steps

TRAIN = {"learning_rate": 0.05, "lr_schedule": "linear", "lr_warmup_steps": 2, "max_steps": 10,
         "grad_clip_norm": 0.3, "weight_decay": 0.01, "weight_decay_mask": "no_bias_norm"}


def _rows(cfg):
  return optim.rows_optimizer_from_config(cfg, path=("embed",))


def _batch(seed, ids):
  rs = np.random.RandomState(seed)
  b, s = ids.shape
  labels = rs.randint(0, T, (b, s)).astype(np.int32)
  labels[:, 0] = -1
  return {"input_ids": ids.astype(np.int32), "attention_mask": np.ones((b, s), np.int32), "labels": labels}


def _every_row(seed, b=8, s=7):
  """A batch holding every one of the V ids (some twice), shuffled."""
  rs = np.random.RandomState(seed)
  ids = np.concatenate([np.arange(V), rs.randint(0, V, b * s - V)])
  return _batch(seed, rs.permutation(ids).reshape(b, s))


def _some_rows(seed, b=8, s=7):
  """A batch of ids 0..9 only (rows 10.. untouched)."""
  return _batch(seed, np.random.RandomState(seed).randint(0, 10, (b, s)))


def _train(opt, batches, init=None):
  step = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy, donate=False)
  params = tiny_params()
  state = (init or opt.init)(params)
  losses, norms = [], []
  for b in batches:
    params, state, m = step(params, state, b, None)
    losses.append(float(m["loss"]))
    norms.append(float(m["grad_norm"]))
  return params, state, losses, norms


def _close(a, b, **kw):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), **kw)


def test_equals_dense_adam_when_every_row_is_touched():
  batches = [_every_row(i) for i in range(6)]
  dense, _, dl, dn = _train(optim.optimizer_from_config(TRAIN), batches)
  rows, state, rl, rn = _train(_rows(TRAIN), batches)
  np.testing.assert_allclose(rl, dl, rtol=1e-6)
  np.testing.assert_allclose(rn, dn, rtol=1e-5)
  assert max(dn) > TRAIN["grad_clip_norm"]  # the clip was active: both sides clipped alike
  _close(rows, dense, rtol=2e-5, atol=1e-6)
  assert int(optim.step_of(state)) == 6
  moved = np.abs(np.asarray(rows["embed"]) - np.asarray(tiny_params()["embed"])).max(axis=1)
  assert (moved > 1e-4).all()  # every row trained


def test_untouched_rows_and_their_moments_stay_put():
  cfg = dict(TRAIN, weight_decay=0.0, grad_clip_norm=0.0)
  batches = [_every_row(0)] + [_some_rows(i) for i in range(1, 5)]
  p1_rows, _, _, _ = _train(_rows(cfg), batches[:1])
  rows, state, _, _ = _train(_rows(cfg), batches)
  dense, _, _, _ = _train(optim.optimizer_from_config(cfg), batches)
  untouched = slice(10, V)
  np.testing.assert_array_equal(np.asarray(rows["embed"][untouched]), np.asarray(p1_rows["embed"][untouched]))
  mu = optax_mu(state.table)
  _, state1, _, _ = _train(_rows(cfg), batches[:1])
  np.testing.assert_array_equal(np.asarray(mu[untouched]), np.asarray(optax_mu(state1.table)[untouched]))
  # dense Adam moves the same rows on their first step's momentum: the two really differ there
  assert np.abs(np.asarray(dense["embed"][untouched]) - np.asarray(p1_rows["embed"][untouched])).max() > 1e-3
  # and agree on everything else
  _close(rows["out"], dense["out"], rtol=1e-4, atol=1e-6)


def optax_mu(table_state):
  found = [x for x in jax.tree.leaves(table_state) if getattr(x, "shape", ())[:1] == (V,)]
  assert len(found) == 2  # Adam's two moments, table-sized
  return found[0]


def test_first_step_from_a_fresh_state_equals_dense_on_a_partial_batch():
  cfg = dict(TRAIN, weight_decay=0.0, lr_schedule="constant", lr_warmup_steps=0)  # (decay would
  # shrink untouched rows in dense AdamW; a warmup ramp would make the first step 0)
  dense, _, dl, _ = _train(optim.optimizer_from_config(cfg), [_some_rows(3)])
  rows, _, rl, _ = _train(_rows(cfg), [_some_rows(3)])
  assert rl == pytest.approx(dl, rel=1e-6)
  _close(rows, dense, rtol=1e-5, atol=1e-7)


def test_models_at_once_equal_one_by_one():
  opt = _rows(TRAIN)
  batches = [[_some_rows(i), _every_row(10 + i)] for i in range(3)]  # 3 steps of 2 models
  many = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy, models=True, donate=False)
  params = jax.tree.map(lambda *x: jnp.stack(x), tiny_params(0), tiny_params(1))
  state = jax.vmap(opt.init)(params)
  for pair in batches:
    batch = jax.tree.map(lambda *x: jnp.stack(x), *pair)
    params, state, _ = many(params, state, batch, None)
  for k in range(2):
    one = steps.make_train_step(tiny_apply, opt, loss_fn=tagger.token_cross_entropy, donate=False)
    p, s = tiny_params(k), opt.init(tiny_params(k))
    for pair in batches:
      p, s, _ = one(p, s, pair[k], None)
    _close(jax.tree.map(lambda x: x[k], params), p, rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
  root = tmp_path_factory.mktemp("assets")
  return TA.make_data(root / "data"), TA.make_model(root / "model")


def test_experiment_with_rows_update_learns(assets, tmp_path):
  data, model = assets
  c = TA.tiny_config(data, model, method="zero_shot", **{"train.embedding_update": "rows"})
  experiment.run(c, tmp_path / "w", out=io.StringIO())
  result = runfolder.read_result(runfolder.run_folder(tmp_path / "w", "zero_shot", 0))
  assert result["english_dev"] > 0.4, result["english_dev"]  # the tiny task is learnt (configs/tiny.py)
  # a dense run of the same config is a different computation: another workdir identity
  c2 = TA.tiny_config(data, model, method="zero_shot")
  with pytest.raises(InputError, match="embedding_update"):
    experiment.run(c2, tmp_path / "w", out=io.StringIO())


@pytest.mark.parametrize("extra, fragment", [
    ({"train.embedding_update": "sparse"}, "embedding_update must be one of dense, rows"),
    ({"train.embedding_update": "rows", "train.freeze": "word_embeddings"}, "freezes them"),
    ({"train.embedding_update": "rows", "parallel.mode": "data"}, "runs on one device"),
])
def test_bad_settings_are_refused(assets, tmp_path, extra, fragment):
  data, model = assets
  c = TA.tiny_config(data, model, method="zero_shot", **extra)
  with pytest.raises(InputError, match=fragment):
    experiment.run(c, tmp_path / "w", out=io.StringIO())
