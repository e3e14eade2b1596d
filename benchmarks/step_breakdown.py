"""Where a train step's time goes, and what this CPU's matrix units can do. One JSON out.

    python benchmarks/step_breakdown.py --model_dir=~/.cache/mtlws_jax/e5-small --out=benchmarks/results/step_breakdown_cpu.json

For the e5-small tagger at batch B x S (ABSA-like S=64 by default): the median time of the forward
pass, of forward + backward (gradients), of the whole Adam step with every parameter trained, and
of the step with the 96M word-embedding parameters frozen (no gradient, no Adam state) — the
difference is what Adam over embedding rows a batch never touches costs — and of the step with
train.embedding_update="rows" (every parameter trained, Adam over the touched rows). Then square matmuls in
float32 and bfloat16 for JAX (with and without the oneDNN XLA flags, each in a subprocess) and for
PyTorch, and the CPU's model and its AMX / AVX-512 flags (from /proc/cpuinfo): whether bf16 can be
faster here at all.
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
ONEDNN = "--xla_cpu_use_onednn=true --xla_cpu_experimental_onednn_custom_call=true"


def cpu_info() -> dict:
  try:
    text = open("/proc/cpuinfo").read()
  except OSError:
    return {}
  model = next((l.split(":", 1)[1].strip() for l in text.splitlines() if l.startswith("model name")), "")
  flags = set(next((l.split(":", 1)[1].split() for l in text.splitlines() if l.startswith("flags")), []))
  return {"model": model, "cpus": os.cpu_count(), "amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags,
          "avx512f": "avx512f" in flags, "avx2": "avx2" in flags}


def _median(fn, repeats: int) -> float:
  fn()
  times = []
  for _ in range(repeats):
    t = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t)
  return statistics.median(times)


def breakdown(args) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from mtlws_jax.train.optim import frozen
  from mtlws_jax.models import checkpoints
  from mtlws_jax.models.tagger import split_tagger, token_cross_entropy
  from mtlws_jax.train import optim, steps
  model, _ = checkpoints.load_pretrained(os.path.expanduser(args.model_dir), num_tags=13)
  _, params, apply_fn = split_tagger(model)
  rng = np.random.default_rng(0)
  ids = rng.integers(5, 250000, size=(args.batch, args.seq)).astype(np.int32)
  batch = {"input_ids": jnp.asarray(ids), "attention_mask": jnp.ones_like(jnp.asarray(ids)),
           "labels": jnp.asarray(rng.integers(0, 13, size=ids.shape).astype(np.int32))}
  key = jax.random.key(0)
  fwd = jax.jit(lambda p, b: apply_fn(p, b, key))
  grad = jax.jit(jax.grad(lambda p, b: token_cross_entropy(apply_fn(p, b, key), b["labels"])))
  out = {"batch": args.batch, "seq": args.seq}
  out["forward_s"] = _median(lambda: fwd(params, batch).block_until_ready(), args.repeats)
  out["forward_backward_s"] = _median(lambda: jax.block_until_ready(grad(params, batch)), args.repeats)
  def timed(step, opt) -> float:  # donated buffers, as in training: each step consumes the last
    held = {"p": jax.tree.map(jnp.copy, params)}
    held["s"] = opt.init(held["p"])

    def one():
      held["p"], held["s"], m = step(held["p"], held["s"], batch, key)
      jax.block_until_ready(m["loss"])
    return _median(one, args.repeats)

  for name, pattern in (("step_all_params_s", ""), ("step_frozen_word_embeddings_s", "word_embeddings")):
    fn, opt = frozen(apply_fn, optim.make_optimizer(1e-4), params, pattern)
    out[name] = timed(steps.make_train_step(fn, opt), opt)
  # train.embedding_update="rows": every parameter trained, Adam only over the touched rows
  opt = optim.rows_optimizer_from_config({"learning_rate": 1e-4})
  out["step_rows_update_s"] = timed(steps.make_train_step(apply_fn, opt), opt)
  out["adam_share_of_all_params_step"] = 1 - out["forward_backward_s"] / out["step_all_params_s"]
  out["embedding_update_share"] = 1 - out["step_frozen_word_embeddings_s"] / out["step_all_params_s"]
  out["rows_update_speedup"] = out["step_all_params_s"] / out["step_rows_update_s"]
  return out


def matmul_jax(n: int, repeats: int) -> dict:
  import jax
  import jax.numpy as jnp
  out = {}
  for dt in (jnp.float32, jnp.bfloat16):
    a = jax.random.normal(jax.random.key(0), (n, n), dt)
    b = jax.random.normal(jax.random.key(1), (n, n), dt)
    f = jax.jit(lambda x, y: x @ y)
    t = _median(lambda: f(a, b).block_until_ready(), repeats)
    out[jnp.dtype(dt).name] = round(2 * n ** 3 / t / 1e9, 1)
  return out


def matmul_torch(n: int, repeats: int) -> dict:
  import torch
  out = {}
  for dt in (torch.float32, torch.bfloat16):
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    t = _median(lambda: a @ b, repeats)
    out[str(dt).split(".")[-1]] = round(2 * n ** 3 / t / 1e9, 1)
  out["threads"] = torch.get_num_threads()
  return out


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--model_dir", default="~/.cache/mtlws_jax/e5-small")
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--seq", type=int, default=64)
  ap.add_argument("--repeats", type=int, default=5)
  ap.add_argument("--n", type=int, default=1024, help="matmul size")
  ap.add_argument("--out")
  ap.add_argument("--part", help=argparse.SUPPRESS)
  args = ap.parse_args()
  if args.part:  # in a subprocess, so XLA_FLAGS apply from the start
    got = {"jax": lambda: matmul_jax(args.n, args.repeats), "torch": lambda: matmul_torch(args.n, args.repeats),
           "breakdown": lambda: breakdown(args)}[args.part]()
    print(benchmarks.RESULT + json.dumps(got))
    return
  res = {"what": __doc__.split("\n")[0], "cpu": cpu_info(), "load_average_start": os.getloadavg()[0]}

  def sub(part: str, flags: str = "") -> dict:
    got, p = benchmarks.child([__file__, f"--part={part}", *sys.argv[1:]], {"XLA_FLAGS": flags})
    return got if got is not None else {"error": p.stderr[-2000:]}

  res["step_breakdown_jax"] = sub("breakdown")
  res["matmul_gflops"] = {"n": args.n, "jax": sub("jax"), "jax_onednn_flags": sub("jax", ONEDNN),
                          "onednn_flags": ONEDNN, "torch": sub("torch")}
  res["load_average_end"] = os.getloadavg()[0]
  benchmarks.emit(res, args.out)


if __name__ == "__main__":
  main()
