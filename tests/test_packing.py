"""Packed batches (data.batch_layout="packed"): the padded batch's numbers in fewer token slots."""

import numpy as np
import pytest
import jax
import jax.numpy as jnp
from flax import nnx

from mtlws_jax.data import batching
from mtlws_jax.data import encode as enc
from mtlws_jax.data import vocab
from mtlws_jax.models.encoder import EncoderConfig
from mtlws_jax.models.tagger import Tagger, split_tagger, token_cross_entropy

from test_encode import TAG_TO_ID, TAGS, TEXTS, random_sentences  # the encoder tests' fixtures

UPOS = ["NOUN", "VERB", "ADJ", "PUNCT"]
POS_TO_ID = {p: i for i, p in enumerate(UPOS)}


def sentences(n, lo=1, hi=30, seed=0, srl=False):
  """The encoder tests' random sentences; srl=True adds a predicate and UPOS tags to each."""
  out = random_sentences(n, lo, hi, seed=seed, origin="x.txt")
  if not srl:
    return out
  rng = np.random.default_rng(seed + 1)
  return [s.replace(predicate=int(rng.integers(0, len(s))),
                    extra={"pos": tuple(UPOS[j] for j in rng.integers(0, len(UPOS), len(s)))}) for s in out]


@pytest.fixture(scope="module", params=["bert", "xlm-roberta"])
def setup(request):
  kind = request.param
  tok = (vocab.train_wordpiece(TEXTS, vocab_size=120) if kind == "bert"
         else vocab.train_unigram(TEXTS, vocab_size=120))
  cfg = EncoderConfig(model_type=kind, vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                      num_attention_heads=4, intermediate_size=64, max_position_embeddings=130,
                      pad_token_id=tok.pad_token_id)
  model = Tagger(cfg, len(TAGS), num_pos=len(UPOS), use_predicate=True, rngs=nnx.Rngs(0))
  _, params, apply_fn = split_tagger(model)
  feats = enc.encode(sentences(24, srl=True), tok, TAG_TO_ID, max_length=40, stride=8, pos_to_id=POS_TO_ID)
  return tok, params, jax.jit(apply_fn), feats


def _per_token(batch, logits):
  """{(example, word): logits row} of every labelled token."""
  out = {}
  ex = np.asarray(batch["example_ids"])
  lab, wid, lg = np.asarray(batch["labels"]), np.asarray(batch["word_ids"]), np.asarray(logits)
  for r, c in zip(*np.nonzero(lab >= 0)):
    e = ex[r, c] if ex.ndim == 2 else ex[r]
    out[(int(e), int(wid[r, c]))] = lg[r, c]
  return out


def test_pack_lays_features_end_to_end(setup):
  tok, _, _, feats = setup
  b = batching.pack(feats[:8], length=64, pad_multiple=8)
  assert b["input_ids"].shape[1] <= 64 and b["input_ids"].shape[1] % 8 == 0
  # every feature once, in one row, as one contiguous segment with its own specials
  assert int((b["attention_mask"] == 1).sum()) == sum(len(f) for f in feats[:8])
  seen = set()
  for r in range(b["input_ids"].shape[0]):
    for s in np.unique(b["segment_ids"][r]):
      if s == 0:
        continue
      at = np.nonzero(b["segment_ids"][r] == s)[0]
      assert np.all(np.diff(at) == 1)
      ex = set(b["example_ids"][r, at].tolist())
      assert len(ex) == 1
      match = [f for f in feats[:8] if f.example_id in ex and np.array_equal(f.input_ids, b["input_ids"][r, at])
               and np.array_equal(f.labels, b["labels"][r, at]) and np.array_equal(f.pos_ids, b["pos_ids"][r, at])
               and np.array_equal(f.predicate_ids, b["predicate_ids"][r, at])]
      assert match, f"row {r} segment {s} is no feature of the batch"
      f = match[0]
      np.testing.assert_array_equal(b["position_ids"][r, at], np.arange(len(at)))
      assert b["input_ids"][r, at[0]] == tok.cls_token_id or b["input_ids"][r, at[0]] == tok.bos_token_id
      seen.add(f.example_id)
  assert seen == {f.example_id for f in feats[:8]}
  assert b["input_ids"].shape[0] < 8  # fewer rows than sentences


def test_long_feature_gets_its_own_row(setup):
  _, _, _, feats = setup
  longest = max(feats, key=len)
  b = batching.pack([longest] + feats[:3], length=8, pad_multiple=8)
  assert b["input_ids"].shape[1] >= len(longest)
  with pytest.raises(ValueError, match="more than"):
    batching.pack(feats[:8], length=len(longest), rows=1)


def test_packed_logits_loss_and_gradients_equal_padded(setup):
  _, params, apply_fn, feats = setup
  group = feats[:10]
  padded = {k: jnp.asarray(v) for k, v in batching.collate(group, pad_multiple=8).items()}
  packed = {k: jnp.asarray(v) for k, v in batching.pack(group, length=120, pad_multiple=8).items()}
  assert packed["input_ids"].size < padded["input_ids"].size
  a, b = _per_token(padded, apply_fn(params, padded)), _per_token(packed, apply_fn(params, packed))
  assert a.keys() == b.keys() and len(a) == sum(int((f.labels >= 0).sum()) for f in group)
  for k in a:
    np.testing.assert_allclose(a[k], b[k], atol=2e-5, rtol=1e-5)

  def loss(p, batch):
    return token_cross_entropy(apply_fn(p, batch), batch["labels"])
  la, ga = jax.value_and_grad(loss)(params, padded)
  lb, gb = jax.value_and_grad(loss)(params, packed)
  np.testing.assert_allclose(la, lb, rtol=1e-5)
  for x, y in zip(jax.tree.leaves(ga), jax.tree.leaves(gb)):
    np.testing.assert_allclose(x, y, atol=2e-6, rtol=1e-4)


def test_segments_and_restarted_positions_matter(setup):
  """Sanity of the test above: rows whose segments see each other, or whose positions run on
  across segments, give other logits (by far more than its tolerance)."""
  _, params, apply_fn, feats = setup
  packed = {k: jnp.asarray(v) for k, v in batching.pack(feats[:10], length=120, pad_multiple=8).items()}
  leaky = dict(packed, segment_ids=jnp.where(packed["segment_ids"] > 0, 1, 0))
  running = dict(packed, position_ids=jnp.broadcast_to(jnp.arange(packed["input_ids"].shape[1]),
                                                       packed["input_ids"].shape))
  ref = _per_token(packed, apply_fn(params, packed))
  for other in (leaky, running):
    got = _per_token(packed, apply_fn(params, other))
    assert max(float(np.abs(ref[k] - got[k]).max()) for k in ref) > 1e-4


def test_packed_evaluation_batches_merge_back(setup):
  _, params, apply_fn, feats = setup
  n = max(f.example_id for f in feats) + 1
  padded = list(batching.batches(feats, 4, shuffle=False, pad_multiple=8, fill_last=True))
  packed = list(batching.packed_batches(feats, 4, length=64, pad_multiple=8))
  assert len({b["input_ids"].shape for b in packed}) == 1  # one shape: one compile
  pa = batching.merge_predictions(padded, [np.asarray(apply_fn(params, b)).argmax(-1) for b in padded], n)
  pb = batching.merge_predictions(packed, [np.asarray(apply_fn(params, b)).argmax(-1) for b in packed], n)
  assert pa == pb
  assert sum(int((b["attention_mask"] > 0).sum()) for b in packed) == sum(len(f) for f in feats)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
  """One ZERO-SHOT run padded and one packed, dropout off everywhere (so only the layout differs)."""
  import io
  import json
  import _tiny_absa as T
  from mtlws_jax import experiment
  root = tmp_path_factory.mktemp("layouts")
  data, model = T.make_data(root / "data"), T.make_model(root / "model")
  cfg = json.loads((model / "config.json").read_text())
  cfg.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
  (model / "config.json").write_text(json.dumps(cfg))
  out = {}
  for layout in ("padded", "packed"):
    config = T.tiny_config(data, model, **{"method": "zero_shot", "model.dropout": 0.0, "data.batch_layout": layout,
                                           "data.pack_length": 64})
    experiment.run(config, root / layout, out=io.StringIO())
    out[layout] = root / layout
  return out


def test_a_finished_run_predicts_and_scores_the_same_packed_and_padded(tiny_runs):
  import json
  from mtlws_jax import runfolder
  runs = {k: v / "runs" / "zero_shot" / "seed0" for k, v in tiny_runs.items()}
  a, b = (runfolder.read_predictions(r) for r in (runs["padded"], runs["packed"]))
  assert a["splits"] == b["splits"] and len(a["splits"]) >= 3
  ra, rb = (json.loads((r / "result.json").read_text()) for r in (runs["padded"], runs["packed"]))
  assert ra["best_step"] == rb["best_step"]
  for split in ("target_test",):
    for lang in ra[split]:
      assert ra[split][lang]["f1"] == rb[split][lang]["f1"]
  la = [json.loads(l) for l in (runs["padded"] / "metrics.jsonl").read_text().splitlines()]
  lb = [json.loads(l) for l in (runs["packed"] / "metrics.jsonl").read_text().splitlines()]
  for x, y in zip(la, lb):
    if "train_loss" in x:
      assert x["train_loss"] == pytest.approx(y["train_loss"], rel=1e-4)


@pytest.mark.slow
def test_e5_small_shape_packed_equals_padded():
  """The real e5-small shape (12 layers, 384 wide, 12 heads; a small random vocabulary): logits,
  loss and gradients of a packed batch equal the padded batch's to float32 tolerance."""
  tok = vocab.train_wordpiece(TEXTS, vocab_size=120)
  cfg = EncoderConfig(model_type="bert", vocab_size=len(tok), hidden_size=384, num_hidden_layers=12,
                      num_attention_heads=12, intermediate_size=1536, max_position_embeddings=512,
                      pad_token_id=tok.pad_token_id)
  _, params, apply_fn = split_tagger(Tagger(cfg, len(TAGS), rngs=nnx.Rngs(1)))
  feats = enc.encode(sentences(8, hi=12, seed=5), tok, TAG_TO_ID, max_length=64, stride=8)
  padded = {k: jnp.asarray(v) for k, v in batching.collate(feats, pad_multiple=8).items()}
  packed = {k: jnp.asarray(v) for k, v in batching.pack(feats, length=256, pad_multiple=8).items()}
  assert packed["input_ids"].size < padded["input_ids"].size

  def loss(p, batch):
    logits = apply_fn(p, batch)
    return token_cross_entropy(logits, batch["labels"]), logits
  (la, xa), ga = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, padded)
  (lb, xb), gb = jax.jit(jax.value_and_grad(loss, has_aux=True))(params, packed)
  a, b = _per_token(padded, xa), _per_token(packed, xb)
  assert a.keys() == b.keys()
  for k in a:
    np.testing.assert_allclose(a[k], b[k], atol=1e-4, rtol=1e-4)
  np.testing.assert_allclose(la, lb, rtol=1e-5)
  norm = lambda g: float(np.sqrt(sum(np.sum(np.asarray(x, np.float64) ** 2) for x in jax.tree.leaves(g))))
  diff = jax.tree.map(lambda x, y: x - y, ga, gb)
  assert norm(diff) <= 1e-4 * norm(ga)


def test_warmup_streams_pack_and_stack(setup):
  """The warmup's per-language streams pack their batches; stacked over languages and steps (rows
  and widths padded to the largest) each language's model sees what it saw unstacked."""
  from mtlws_jax.train import warmup
  from mtlws_jax.train.streams import BatchStream
  tok, params, apply_fn, feats = setup
  short = [f for f in feats if len(f) < 16][:8]  # a language of short sentences: other shapes
  streams = [BatchStream(fs, 4, (0, l), pad_multiple=8, pack_length=120) for l, fs in enumerate((feats[:12], short))]
  per_lang = [[s.batch(i) for i in range(2)] for s in streams]
  assert all("segment_ids" in b for bs in per_lang for b in bs)
  assert len({b["input_ids"].shape for bs in per_lang for b in bs}) > 1  # shapes differ: padding needed
  stacked = warmup.stack_language_batches(per_lang, pad_values={"input_ids": tok.pad_token_id})
  for l in range(2):
    for k in range(2):
      one = jax.tree.map(lambda x: jnp.asarray(x[l, k]), stacked)
      got = _per_token(one, apply_fn(params, one))
      ref_batch = {key: jnp.asarray(v) for key, v in per_lang[l][k].items()}
      ref = _per_token(ref_batch, apply_fn(params, ref_batch))
      assert got.keys() == ref.keys()
      for key in ref:
        np.testing.assert_allclose(got[key], ref[key], atol=2e-5, rtol=1e-5)
