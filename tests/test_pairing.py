"""Paired runs (common random numbers): runs of a seed share head, dropout and batch draws."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

import _tiny_absa as T
from mtlws_jax import experiment, runfolder
from mtlws_jax.errors import InputError
from mtlws_jax.train.streams import PairedStream


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
  root = tmp_path_factory.mktemp("assets")
  return T.make_data(root / "data"), T.make_model(root / "model")


def _lines(work, mid, seed=0):
  """metrics.jsonl without the wall-clock rate."""
  lines = [json.loads(l) for l in (work / "runs" / mid / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()]
  return [{k: v for k, v in l.items() if k != "steps_per_sec"} for l in lines]


def test_mtl_ws_without_warmup_is_zero_shot_bit_for_bit(assets, tmp_path, capsys):
  data, model = assets
  c = T.tiny_config(data, model, method="zero_shot,mtl_ws", **{"warmup.epochs": 0, "seeds": (0, 1)})
  summary = experiment.run(c, tmp_path / "w", out=io.StringIO())
  assert ("note: warmup mtl_ws seed 1: warmup.epochs=0, so this row starts where ZERO-SHOT does (no warmup)"
          in capsys.readouterr().out)   # never silent: a slip in a user's config shows
  for seed in (0, 1):
    zs, ws = _lines(tmp_path / "w", "zero_shot", seed), _lines(tmp_path / "w", "mtl_ws", seed)
    assert [l for l in zs if "train_loss" in l] == [l for l in ws if "train_loss" in l] != []
    assert [l.get("dev_f1") for l in zs] == [l.get("dev_f1") for l in ws]
    a = runfolder.read_result(runfolder.run_folder(tmp_path / "w", "zero_shot", seed))
    b = runfolder.read_result(runfolder.run_folder(tmp_path / "w", "mtl_ws", seed))
    for k in ("best_step", "english_dev", "target_test", "target_dev", "dev_curve"):
      assert a[k] == b[k], k
    pa = runfolder.read_predictions(runfolder.run_folder(tmp_path / "w", "zero_shot", seed))
    pb = runfolder.read_predictions(runfolder.run_folder(tmp_path / "w", "mtl_ws", seed))
    assert pa == pb
  # seeds differ from each other (the pairing is within a seed, not across seeds)
  assert _lines(tmp_path / "w", "zero_shot", 0) != _lines(tmp_path / "w", "zero_shot", 1)
  # identical predictions: a difference of exactly 0 with the interval [0, 0]
  d = summary["paired"]["rows"]["mtl_ws"]
  assert all({k: v[k] for k in ("diff", "low", "high", "excludes_zero")} ==
             {"diff": 0.0, "low": 0.0, "high": 0.0, "excludes_zero": False} for v in d.values())


def _feats(n, start):
  from mtlws_jax.data.encode import Feature
  z = np.zeros(3, np.int32)
  return [Feature(input_ids=np.array([0, start + i, 2], np.int32), labels=z, predicate_ids=z, pos_ids=z,
                  word_ids=z, example_id=start + i, num_words=1, pad_id=1, max_length=8) for i in range(n)]


def test_pooled_streams_draw_english_in_zero_shots_order():
  gold, es, fr = _feats(10, 0), _feats(7, 100), _feats(5, 200)
  zs = PairedStream([("gold:en", gold)], 4, seed=3)
  bi = PairedStream([("gold:en", gold), ("translated:es", es)], 4, seed=3)
  mtl = PairedStream([("translated:fr", fr), ("gold:en", gold), ("translated:es", es)], 4, seed=3)
  to = PairedStream([("translated:es", es)], 4, seed=3)

  def drawn(stream, steps):
    return [int(x) for i in range(steps) for x in stream.batch(i)["input_ids"][:, 1]]

  for p in range(3):  # pass by pass: English in ZERO-SHOT's order, es in TARGET-ONLY's order
    english = [x for x in drawn(zs, 40)][10 * p:10 * p + 10]
    assert [x for x in drawn(bi, 100)[17 * p:17 * p + 17] if x < 100] == english
    assert [x for x in drawn(mtl, 100)[22 * p:22 * p + 22] if x < 100] == english
    assert [x for x in drawn(bi, 100)[17 * p:17 * p + 17] if 100 <= x < 200] == drawn(to, 40)[7 * p:7 * p + 7]
  assert sorted(drawn(zs, 40)[:10]) == list(range(10))  # each pass uses every example once
  assert drawn(zs, 5) != drawn(PairedStream([("gold:en", gold)], 4, seed=4), 5)
  # batches span passes without filler rows; random access equals sequential access
  assert all(zs.batch(i)["input_ids"].shape[0] == 4 for i in range(10))
  seq = [zs.batch(i)["input_ids"] for i in range(8)]
  assert all(np.array_equal(zs.batch(i)["input_ids"], seq[i]) for i in (7, 2, 5))


def test_bucketed_order_is_still_a_function_of_the_step():
  gold = _feats(10, 0)
  a = PairedStream([("gold:en", gold)], 4, seed=1, order="bucketed")
  b = PairedStream([("gold:en", gold)], 4, seed=1, order="bucketed")
  assert a.batches_per_pass == 3
  later = [b.batch(i)["input_ids"] for i in (5, 1, 3)]
  assert all(np.array_equal(a.batch(i)["input_ids"], x) for i, x in zip((5, 1, 3), later))
  rows = np.concatenate([a.batch(i)["example_ids"] for i in range(3)])
  assert sorted(int(r) for r in rows if r >= 0) == list(range(10))


def test_workdir_of_an_earlier_format_is_refused(assets, tmp_path):
  data, model = assets
  c = T.tiny_config(data, model, method="zero_shot")
  work = tmp_path / "old"
  work.mkdir()
  saved = experiment.normalize(c).to_dict()
  saved["target_langs"], saved["seeds"] = list(saved["target_langs"]), list(saved["seeds"])
  (work / "config.json").write_text(json.dumps(saved))  # no workdir_format: made before pairing
  with pytest.raises(InputError, match=r"earlier version \(format 1, now 2\).*unpaired"):
    experiment.run(c, work, out=io.StringIO())
  assert not (work / "runs").exists()


def test_variants_share_one_grid_and_one_pairing(assets, tmp_path):
  data, model = assets
  c = T.tiny_config(data, model, method="zero_shot,mtl_ws,ws_adam,zs_eq")
  c.variants = {"ws_adam": {"method": "mtl_ws", "label": "MTL-WS (adam)", "warmup": {"outer": "adam", "gamma": 1e-3}},
                "zs_eq": {"method": "zero_shot", "label": "ZERO-SHOT (equal steps)", "equal_steps_to": "ws_adam"}}
  summary = experiment.run(c, tmp_path / "w", out=io.StringIO())
  assert list(summary["methods"]) == ["zero_shot", "mtl_ws", "ws_adam", "zs_eq"]
  assert summary["methods"]["zs_eq"]["cost"]["train_steps"] == 32 + 2 * 2 * 2  # Z x K x |L|
  assert summary["methods"]["ws_adam"]["cost"]["warmup_steps"] == 8
  assert (tmp_path / "w" / "warmup" / "ws_adam" / "seed0" / "effect.json").exists()
  zs, eq = _lines(tmp_path / "w", "zero_shot"), _lines(tmp_path / "w", "zs_eq")
  # the longer run shares the first steps' batches and dropout; only its lr schedule (constant
  # here) and length differ, so its first losses are the same
  assert [l for l in zs if "train_loss" in l][:2] == [l for l in eq if "train_loss" in l][:2]
  md = (tmp_path / "w" / "results.md").read_text()
  assert "| MTL-WS (adam) |" in md and "| ZERO-SHOT (equal steps) |" in md
  assert set(summary["paired"]["rows"]) == {"mtl_ws", "ws_adam", "zs_eq"}
  # a variant added later joins the same workdir; a changed one is refused
  c2 = T.tiny_config(data, model, method="ws_sgd")
  c2.variants = dict(c.variants.to_dict(), ws_sgd={"method": "mtl_ws", "warmup": {"gamma": 1.0}})
  experiment.prepare(c2, tmp_path / "w")
  c3 = T.tiny_config(data, model, method="zero_shot")
  c3.variants = {"ws_adam": {"method": "mtl_ws", "warmup": {"outer": "adam", "gamma": 1e-2}}}
  with pytest.raises(InputError, match="variants.ws_adam"):
    experiment.prepare(c3, tmp_path / "w")


@pytest.mark.parametrize("variants, match", [
    ({"zero_shot": {"method": "mtl"}}, "not be a method name"),
    ({"v": {"method": "nope"}}, "method must be one of"),
    ({"v": {"method": "zero_shot", "warmup": {"gamma": 1.0}}}, "warmup settings need method 'mtl_ws'"),
    ({"v": {"method": "mtl_ws", "warmup": {"gama": 1.0}}}, "unknown field 'gama'"),
    ({"v": {"method": "zero_shot", "equal_steps_to": "mtl"}}, "not an mtl_ws row"),
    ({"v": {"method": "zero_shot", "lable": "x"}}, "unknown field"),
])
def test_bad_variants_are_refused(assets, tmp_path, variants, match):
  c = T.tiny_config(*assets, method="zero_shot,v" if "v" in variants else "zero_shot")
  c.variants = variants
  with pytest.raises(InputError, match=match):
    experiment.prepare(c, tmp_path / "w")
