"""The training loop: selection schedule, best-params bookkeeping, exact resume, NaN stop, logs."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mtlws_jax.data import encode, vocab
from mtlws_jax.data.records import Sentence
from mtlws_jax import runfolder
from mtlws_jax.eval import tagging
from mtlws_jax.train import loop, optim, steps

TAGS = {"O": 0, "S-X": 1}


def _sentences(n=24):
  rng = np.random.default_rng(0)
  words = "alpha beta gamma delta eps zeta eta theta iota kappa".split()
  out = []
  for i in range(n):
    toks = tuple(rng.choice(words, size=int(rng.integers(3, 9))))
    out.append(Sentence(tokens=toks, tags=tuple("S-X" if t in ("beta", "eta") else "O" for t in toks),
                        scheme="bioes", origin=f"mem:{i}"))
  return out


@pytest.fixture(scope="module")
def setup():
  sents = _sentences()
  tok = vocab.train_wordpiece([" ".join(s.tokens) for s in sents], vocab_size=60)
  feats = encode.encode(sents, tok, TAGS, max_length=16, stride=2)
  vocab_size = len(tok)

  def apply_fn(params, batch, rng=None):
    h = params["emb"][batch["input_ids"]]
    if rng is not None:
      h = h * jax.random.bernoulli(rng, 0.9, h.shape) / 0.9
    return h @ params["out"]

  def loss_fn(logits, labels):
    mask = labels >= 0
    lp = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(lp, jnp.maximum(labels, 0)[..., None], -1)[..., 0]
    return jnp.sum(nll * mask) / jnp.maximum(mask.sum(), 1)

  def init():
    k1, k2 = jax.random.split(jax.random.key(0))
    return {"emb": jax.random.normal(k1, (vocab_size, 8)) * 0.1,
            "out": jax.random.normal(k2, (8, 2)) * 0.1}

  opt = optim.make_optimizer(0.05)
  train_step = steps.make_train_step(apply_fn, opt, loss_fn=loss_fn)
  eval_step = steps.make_eval_step(apply_fn, loss_fn=loss_fn)

  def evaluate(params):
    pred = tagging.predict_ids(eval_step, params, feats, len(sents), 8, {"pad_multiple": 16})
    gold = [[TAGS[t] for t in s.tags] for s in sents]
    tp = sum(p == g == 1 for ps, gs in zip(pred, gold) for p, g in zip(ps, gs))
    npred = sum(p == 1 for ps in pred for p in ps)
    ngold = sum(g == 1 for gs in gold for g in gs)
    f1 = 2 * tp / max(npred + ngold, 1)
    return {"f1": f1}

  return dict(sents=sents, feats=feats, init=init, opt=opt, train_step=train_step,
              evaluate=evaluate, apply_fn=apply_fn, loss_fn=loss_fn)


def _run(setup, folder, schedule, **kw):
  stream = loop.BatchStream(setup["feats"], 4, (7,), pad_multiple=16)
  return loop.train_and_select(folder=folder, params=setup["init"](), optimizer=setup["opt"],
                               train_step=setup["train_step"], evaluate=setup["evaluate"],
                               stream=stream, rng=jax.random.key(1), schedule=schedule, **kw)


def test_batch_stream_is_a_function_of_the_step(setup):
  a = loop.BatchStream(setup["feats"], 4, (3,))
  b = loop.BatchStream(setup["feats"], 4, (3,))
  n = a.batches_per_pass
  later = [b.batch(i) for i in (2 * n + 1, 5, n)]  # random access, out of order
  for got, i in zip(later, (2 * n + 1, 5, n)):
    want = a.batch(i)
    for k in want:
      np.testing.assert_array_equal(got[k], want[k])
  # passes are reshuffled
  first = np.concatenate([a.batch(i)["example_ids"] for i in range(n)])
  second = np.concatenate([a.batch(n + i)["example_ids"] for i in range(n)])
  assert sorted(first) == sorted(second) and not np.array_equal(first, second)


def test_selection_schedule_and_logs(setup, tmp_path):
  sched = loop.Schedule(max_steps=12, eval_every=4, eval_after=8, curve_every=2, log_every=3,
                        checkpoint_every=5)
  sel = _run(setup, tmp_path, sched)
  evals = sel.evals
  assert [e["step"] for e in evals] == [2, 4, 6, 8, 10, 12]
  assert [e["selection"] for e in evals] == [False, False, False, True, False, True]
  candidates = [e for e in evals if e["selection"]]
  best = max(candidates, key=lambda e: e["f1"])
  assert sel.best_step == best["step"] and sel.best_score == best["f1"]
  # the returned best params really score best_score
  assert setup["evaluate"](sel.best_params)["f1"] == pytest.approx(sel.best_score)
  lines = runfolder.read_metrics(tmp_path / "metrics.jsonl")
  assert [l["step"] for l in lines if "train_loss" in l] == [3, 6, 9, 12]
  assert [l["step"] for l in lines if "dev_f1" in l] == [2, 4, 6, 8, 10, 12]
  assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
  ck = runfolder.RunCheckpoints(tmp_path / "checkpoints")
  assert ck.latest_step() == 12
  assert ck.restore_best(setup["init"]())[0] == sel.best_step
  ck.close()


def test_resume_mid_run_gives_identical_results(setup, tmp_path):
  sched = loop.Schedule(max_steps=14, eval_every=3, eval_after=6, log_every=2, checkpoint_every=4)
  full = _run(setup, tmp_path / "full", sched)

  # The same run dies during update 8: its latest checkpoint is step 4; the evaluation at step 6
  # (a new best, saved) and the log line of step 6 came after it and must be dropped and redone.
  class Stop(Exception):
    pass
  calls = {"n": 0}
  real = setup["train_step"]

  def dying_step(p, o, b, r):
    calls["n"] += 1
    if calls["n"] == 8:
      raise Stop()
    time.sleep(0.2)   # time spent before the kill: the resumed run's seconds must count it
    return real(p, o, b, r)

  stream = loop.BatchStream(setup["feats"], 4, (7,), pad_multiple=16)
  with pytest.raises(Stop):
    loop.train_and_select(folder=tmp_path / "cut", params=setup["init"](), optimizer=setup["opt"],
                          train_step=dying_step, evaluate=setup["evaluate"], stream=stream,
                          rng=jax.random.key(1), schedule=sched)
  saved_steps = [int(p.name) for p in (tmp_path / "cut" / "checkpoints" / "latest").iterdir() if p.name.isdigit()]
  resumed = _run(setup, tmp_path / "cut", sched)
  assert resumed.seconds >= 0.2 * max(saved_steps)   # timing.json: the whole training, not its last part
  assert resumed.best_step == full.best_step
  assert resumed.best_score == full.best_score
  assert resumed.evals == full.evals
  for a, b in zip(jax.tree.leaves(resumed.best_params), jax.tree.leaves(full.best_params)):
    np.testing.assert_array_equal(a, b)
  strip = lambda ls: [{k: v for k, v in l.items() if k != "steps_per_sec"} for l in ls]
  assert strip(runfolder.read_metrics(tmp_path / "cut" / "metrics.jsonl")) == strip(
      runfolder.read_metrics(tmp_path / "full" / "metrics.jsonl"))


def test_nan_loss_stops_naming_the_step_and_keeps_checkpoint(setup, tmp_path):
  sched = loop.Schedule(max_steps=10, eval_every=2, log_every=1, checkpoint_every=2)
  count = {"n": 0}

  def step_fn(p, o, b, r):
    count["n"] += 1
    if count["n"] == 5:  # update 5 sees NaN parameters: a NaN loss
      p = jax.tree.map(lambda x: x * jnp.nan, p)
    return setup["train_step"](p, o, b, r)

  stream = loop.BatchStream(setup["feats"], 4, (7,), pad_multiple=16)
  with pytest.raises(steps.NonFiniteLossError, match="step 5"):
    loop.train_and_select(folder=tmp_path, params=setup["init"](), optimizer=setup["opt"],
                          train_step=step_fn, evaluate=setup["evaluate"], stream=stream, rng=None,
                          schedule=sched)
  ck = runfolder.RunCheckpoints(tmp_path / "checkpoints")
  assert ck.latest_step() == 4  # the last good checkpoint
  params, _, state, _ = ck.restore(setup["init"](), setup["opt"].init(setup["init"]()))
  assert state["step"] == 4
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(params))
  ck.close()
  last = runfolder.read_metrics(tmp_path / "metrics.jsonl")[-1]
  assert last["step"] == 5 and "step 5" in last["error"]


def test_nan_between_reads_is_named_and_the_host_reads_at_log_steps_only(setup, tmp_path, monkeypatch):
  """Metrics stay on the device between log steps: one read per window; a NaN at step 7 is found
  at the read after step 10 and named as step 7, and the checkpoint of step 5 is kept."""
  sched = loop.Schedule(max_steps=20, eval_every=10, log_every=5, checkpoint_every=5)
  count = {"n": 0}

  def step_fn(p, o, b, r):
    count["n"] += 1
    if count["n"] == 7:
      p = jax.tree.map(lambda x: x * jnp.nan, p)
    return setup["train_step"](p, o, b, r)

  reads = []
  real_get = jax.device_get
  monkeypatch.setattr(loop.jax, "device_get", lambda x: reads.append(len(x)) or real_get(x))
  stream = loop.BatchStream(setup["feats"], 4, (7,), pad_multiple=16)
  with pytest.raises(steps.NonFiniteLossError, match=r"at step 7 \(first of steps 6-10, read together\)"):
    loop.train_and_select(folder=tmp_path, params=setup["init"](), optimizer=setup["opt"],
                          train_step=step_fn, evaluate=setup["evaluate"], stream=stream, rng=None,
                          schedule=sched)
  assert reads == [5, 5]  # steps 1-5, then 6-10: no read per step
  ck = runfolder.RunCheckpoints(tmp_path / "checkpoints")
  assert ck.latest_step() == 5
  ck.close()
  last = runfolder.read_metrics(tmp_path / "metrics.jsonl")[-1]
  assert last["step"] == 7 and "step 7" in last["error"]
