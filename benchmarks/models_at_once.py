"""Models per second when N taggers train in one compiled program (train.models_at_once). JSON out.

    python benchmarks/models_at_once.py --shapes=tiny,e5 --ns=1,2,4,8 --out=benchmarks/results/models_at_once_cpu.json

For each shape and N: the vmapped Adam train step of N stacked copies (steps.make_train_step(...,
models=True)) on stacked batches of B x S, median step time, and model-steps per second (N / step
time); "speedup" is that over N=1. tiny: the test-sized tagger (2 layers, hidden 64); e5: the
offline e5-small (12 layers, word embeddings frozen as in the CPU configs). On a GPU at batch 8 a
single model leaves the device idle most of the step, which is what N > 1 is for; on a CPU every
copy costs its full share of the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import benchmarks  # noqa: E402


def one(shape: str, n: int, args) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from mtlws_jax.train.optim import frozen
  from mtlws_jax.models import checkpoints
  from mtlws_jax.models.encoder import EncoderConfig
  from mtlws_jax.models.tagger import Tagger, split_tagger
  from mtlws_jax.train import loop, optim, steps
  if shape == "e5":
    model, _ = checkpoints.load_pretrained(os.path.expanduser(args.e5), num_tags=13)
    vocab, freeze = 250000, "word_embeddings"
  else:
    cfg = EncoderConfig(model_type="bert", vocab_size=4000, hidden_size=64, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=128, max_position_embeddings=512)
    model, vocab, freeze = Tagger(cfg, 13, rngs=nnx.Rngs(0)), 4000, ""
  _, params, apply_fn = split_tagger(model)
  opt = optim.make_optimizer(1e-4)
  if freeze:
    apply_fn, opt = frozen(apply_fn, opt, params, freeze)
  step = steps.make_train_step(apply_fn, opt, models=n > 1) if n > 1 else steps.make_train_step(apply_fn, opt)
  rng = np.random.default_rng(0)

  def batch():
    ids = rng.integers(5, vocab, size=(args.batch, args.seq)).astype(np.int32)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "labels": rng.integers(0, 13, size=ids.shape).astype(np.int32)}

  if n > 1:
    p, s = loop.stack([params] * n), loop.stack([opt.init(params)] * n)
    key = loop.stack([jax.random.key(i) for i in range(n)])
    batches = [loop.stack_batches([batch() for _ in range(n)], 1) for _ in range(3)]
  else:
    p, s, key = jax.tree.map(jnp.asarray, params), opt.init(params), jax.random.key(0)
    batches = [batch() for _ in range(3)]
  state = {"p": p, "s": s}

  def run(i):
    state["p"], state["s"], m = step(state["p"], state["s"], batches[i % 3], key)
    jax.block_until_ready(m["loss"])

  t = time.perf_counter()
  run(0)
  compile_s = time.perf_counter() - t
  times = []
  for i in range(args.steps):
    t = time.perf_counter()
    run(i + 1)
    times.append(time.perf_counter() - t)
  med = statistics.median(times)
  return {"shape": shape, "n": n, "compile_s": round(compile_s, 2), "step_s": round(med, 4),
          "model_steps_per_s": round(n / med, 3)}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--shapes", default="tiny,e5")
  ap.add_argument("--ns", default="1,2,4,8")
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--seq", type=int, default=64)
  ap.add_argument("--steps", type=int, default=5)
  ap.add_argument("--e5", default="~/.cache/mtlws_jax/e5-small")
  ap.add_argument("--out")
  ap.add_argument("--one", help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.one:
    shape, n = args.one.split(":")
    print(benchmarks.RESULT + json.dumps(one(shape, int(n), args)))
    return
  import jax
  out = {"what": __doc__.split("\n")[0], "backend": jax.default_backend(), "device": str(jax.devices()[0]),
         "batch": args.batch, "seq": args.seq, "results": [], "load_average_start": os.getloadavg()[0]}
  for shape in args.shapes.split(","):
    base = None
    for n in map(int, args.ns.split(",")):
      r, p = benchmarks.child([__file__, *sys.argv[1:], f"--one={shape}:{n}"])
      if r is None:
        out["results"].append({"shape": shape, "n": n, "error": p.stderr[-1500:]})
        continue
      base = base or r["model_steps_per_s"]
      r["speedup"] = round(r["model_steps_per_s"] / base, 2)
      out["results"].append(r)
      print(shape, n, r, file=sys.stderr, flush=True)
  out["load_average_end"] = os.getloadavg()[0]
  benchmarks.emit(out, args.out)


if __name__ == "__main__":
  main()
