"""Achieved FLOP/s of the tagger's train step, as a fraction of this machine's matmul peak.

  python benchmarks/flops.py [--quick] [--preset=small|bert-base] [--bf16] [--out=FILE.json]

Peak: the best rate of a jitted n x n x n `jnp.dot` (2 n^3 FLOPs) over a few sizes and repeats,
in the step's compute dtype: what this backend's matmul reaches here, not a datasheet number.
Train step: G1's `steps.make_train_step` (forward + backward + Adam, dropout on, no padding) on
the real Tagger, compiled once ahead of time; the same executable is timed (median and best of
--steps runs after --warmup). FLOPs per step are counted two ways:
  xla:      the compiled step's own cost analysis (`lower(...).compile().cost_analysis()`),
  analytic: 6 * N * tokens + 12 * layers * seq * hidden * tokens, N = parameters outside the
            embedding tables (the usual "6N" rule plus attention scores and mixing).
Fractions = (FLOPs per step / step time) / peak. The machine may be shared: the load average
is recorded beside the numbers. Prints one JSON object (and writes --out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PRESETS = {
    # Same shape as benchmarks/train_step_vs_torch.py's default, so the numbers line up.
    "small": dict(layers=4, hidden=256, heads=4, ff=1024, vocab=30522, batch=8, seq=128),
    "quick": dict(layers=2, hidden=128, heads=2, ff=512, vocab=8000, batch=4, seq=64),
    # mBERT-base (the paper's backbone) at the paper's sequence length; for a GPU.
    "bert-base": dict(layers=12, hidden=768, heads=12, ff=3072, vocab=119547, batch=32, seq=128),
}


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--quick", action="store_true", help="small model, few repeats (seconds on a CPU)")
  p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                 help="model size (default: small, or quick with --quick)")
  for name in ("layers", "hidden", "heads", "ff", "vocab", "batch", "seq"):
    p.add_argument(f"--{name}", type=int, default=None, help="overrides the preset")
  p.add_argument("--num_tags", type=int, default=9)
  p.add_argument("--bf16", action="store_true", help="bfloat16 compute (float32 parameters)")
  p.add_argument("--profile", action="store_true",
                 help="also trace 3 steps with jax.profiler and list the ops that took the most time")
  p.add_argument("--embedding_update", choices=("dense", "rows"), default="dense",
                 help="rows: Adam over the touched word-embedding rows (train.embedding_update)")
  p.add_argument("--steps", type=int, default=None, help="timed steps (default 10, quick 3)")
  p.add_argument("--warmup", type=int, default=1, help="untimed runs of the compiled step first")
  p.add_argument("--peak_sizes", default=None, help="matmul sizes n (default 1024,2048; quick 512,1024)")
  p.add_argument("--peak_repeats", type=int, default=None, help="timed products per size (default 5)")
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  shape = dict(PRESETS[args.preset or ("quick" if args.quick else "small")])
  for k in shape:
    if getattr(args, k) is not None:
      shape[k] = getattr(args, k)
  args.shape = shape
  args.steps = args.steps or (3 if args.quick else 10)
  args.peak_repeats = args.peak_repeats or (3 if args.quick else 5)
  args.peak_sizes = [int(n) for n in (args.peak_sizes or ("512,1024" if args.quick else "1024,2048")).split(",")]
  return args


def _flops_of(compiled) -> float | None:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older jax: one dict per program
    cost = cost[0] if cost else None
  if not cost or "flops" not in cost:
    return None
  return float(cost["flops"])


def matmul_peak(sizes, repeats, dtype) -> dict:
  """Best FLOP/s of a jitted square matmul per size; the max over sizes is the peak."""
  import jax
  import jax.numpy as jnp

  dot = jax.jit(jnp.dot)
  rows = []
  for n in sizes:
    ka, kb = jax.random.split(jax.random.key(n))
    a = jax.random.normal(ka, (n, n), jnp.float32).astype(dtype)
    b = jax.random.normal(kb, (n, n), jnp.float32).astype(dtype)
    compiled = dot.lower(a, b).compile()
    compiled(a, b).block_until_ready()
    times = []
    for _ in range(repeats):
      t = time.perf_counter()
      compiled(a, b).block_until_ready()
      times.append(time.perf_counter() - t)
    best = min(times)
    rows.append({"n": n, "best_s": best, "median_s": statistics.median(times),
                 "flops": 2.0 * n ** 3, "xla_flops": _flops_of(compiled),
                 "best_flops_per_s": 2.0 * n ** 3 / best})
  return {"dtype": jnp.dtype(dtype).name, "sizes": rows,
          "peak_flops_per_s": max(r["best_flops_per_s"] for r in rows)}


def analytic_flops(params, shape: dict, tokens: int) -> dict:
  """6 N tokens (N without embedding tables) + attention scores/mixing, forward + backward."""
  import jax

  total = embed = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    total += leaf.size
    if "embeddings" in jax.tree_util.keystr(path) and leaf.ndim == 2:
      embed += leaf.size
  n = total - embed
  attention = 12 * shape["layers"] * shape["seq"] * shape["hidden"] * tokens
  return {"num_params": int(total), "num_embedding_params": int(embed),
          "num_matmul_params": int(n), "flops": float(6 * n * tokens + attention),
          "attention_flops": float(attention)}


def profile_top(run_steps, n_top: int = 20) -> dict:
  """Trace `run_steps()` with jax.profiler; the ops (XLA kernels on a device, XLA fusions on the
  CPU client) that took the most time, summed over the traced steps: where the step's time goes."""
  import collections
  import glob
  import tempfile
  import jax
  from jax.profiler import ProfileData
  with tempfile.TemporaryDirectory() as d:
    with jax.profiler.trace(d):
      run_steps()
    files = glob.glob(f"{d}/**/*.xplane.pb", recursive=True)
    if not files:
      return {"error": "no trace written"}
    data = ProfileData.from_file(files[0])
  total: collections.Counter = collections.Counter()
  for plane in data.planes:
    device = plane.name.startswith("/device:")
    for line in plane.lines:
      if (device and "Ops" in line.name) or (not device and plane.name == "/host:CPU"
                                             and line.name.startswith("tf_XLA")):
        for ev in line.events:
          if not ev.name.startswith("ThunkExecutor"):  # the CPU client's wrappers around the ops
            total[f"{plane.name} {ev.name}"] += ev.duration_ns
  all_ns = sum(total.values()) or 1
  kinds: collections.Counter = collections.Counter()  # "dot.12" and "dot" alike: the op's kind
  for k, v in total.items():
    kinds[k.split(" ", 1)[-1].rsplit(".", 1)[0]] += v
  return {"ops_total_ms": all_ns / 1e6,
          "by_kind": [{"kind": k, "ms": v / 1e6, "share": v / all_ns} for k, v in kinds.most_common(12)],
          "top": [{"op": k, "ms": v / 1e6, "share": v / all_ns} for k, v in total.most_common(n_top)]}


def train_step_rate(shape: dict, num_tags: int, bf16: bool, steps: int, warmup: int,
                    embedding_update: str = "dense", profile: bool = False) -> dict:
  import jax
  import jax.numpy as jnp
  import numpy as np
  from flax import nnx
  from mtlws_jax.models.encoder import EncoderConfig
  from mtlws_jax.models.tagger import Tagger, split_tagger
  from mtlws_jax.train import optim, steps as steps_lib

  cfg = EncoderConfig(vocab_size=shape["vocab"], hidden_size=shape["hidden"],
                      num_hidden_layers=shape["layers"], num_attention_heads=shape["heads"],
                      intermediate_size=shape["ff"], max_position_embeddings=max(512, shape["seq"]))
  dtype = jnp.bfloat16 if bf16 else jnp.float32
  _, params, apply_fn = split_tagger(Tagger(cfg, num_tags, dtype=dtype, rngs=nnx.Rngs(0)))
  opt = (optim.rows_optimizer_from_config({"learning_rate": 1e-4}) if embedding_update == "rows"
         else optim.make_optimizer(1e-4))
  opt_state = opt.init(params)
  step = steps_lib.make_train_step(apply_fn, opt)
  rs = np.random.default_rng(0)
  b, s = shape["batch"], shape["seq"]
  labels = rs.integers(0, num_tags, (b, s)).astype(np.int32)
  labels[:, 0] = labels[:, -1] = -1
  batch = {"input_ids": jnp.asarray(rs.integers(5, shape["vocab"], (b, s)), jnp.int32),
           "attention_mask": jnp.ones((b, s), jnp.int32),
           "token_type_ids": jnp.zeros((b, s), jnp.int32), "labels": jnp.asarray(labels)}
  rng = jax.random.key(0)
  analytic = analytic_flops(params, shape, b * s)
  t = time.perf_counter()
  compiled = step.lower(params, opt_state, batch, rng).compile()
  compile_s = time.perf_counter() - t
  xla = _flops_of(compiled)
  for _ in range(warmup):
    params, opt_state, m = compiled(params, opt_state, batch, rng)
    m["loss"].block_until_ready()
  times = []
  for _ in range(steps):
    t = time.perf_counter()
    params, opt_state, m = compiled(params, opt_state, batch, rng)
    jax.block_until_ready((params, m))
    times.append(time.perf_counter() - t)
  steps_lib.check_finite(m)
  prof = None
  if profile:
    def three():
      nonlocal params, opt_state, m
      for _ in range(3):
        params, opt_state, m = compiled(params, opt_state, batch, rng)
      jax.block_until_ready((params, m))
    prof = profile_top(three)
  return {"profile": prof, "shape": shape, "bf16": bf16, "embedding_update": embedding_update, "tokens_per_step": b * s, "compile_s": compile_s,
          "step_s_median": statistics.median(times), "step_s_best": min(times), "step_s": times,
          "tokens_per_s": b * s / statistics.median(times), "xla_flops_per_step": xla,
          "analytic": analytic, "final_loss": float(m["loss"])}


def main(argv=None) -> int:
  args = parse_args(argv)
  import jax
  import jax.numpy as jnp

  load0 = os.getloadavg()[0]
  dtype = jnp.bfloat16 if args.bf16 else jnp.float32
  peak = matmul_peak(args.peak_sizes, args.peak_repeats, dtype)
  step = train_step_rate(args.shape, args.num_tags, args.bf16, args.steps, args.warmup, args.embedding_update,
                         args.profile)
  p = peak["peak_flops_per_s"]
  med = step["step_s_median"]
  xla = step["xla_flops_per_step"]
  ana = step["analytic"]["flops"]
  result = {
      "machine": {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
                  "devices": jax.device_count(), "cpus": os.cpu_count(), "jax": jax.__version__,
                  "python": platform.python_version(), "load_average_start": load0,
                  "load_average_end": os.getloadavg()[0]},
      "matmul_peak": peak,
      "train_step": step,
      "achieved": {
          "xla_flops_per_s": xla / med if xla else None,
          "analytic_flops_per_s": ana / med,
          "xla_fraction_of_peak": xla / med / p if xla else None,
          "analytic_fraction_of_peak": ana / med / p,
          "xla_over_analytic_flops": xla / ana if xla else None,
      },
  }
  text = json.dumps(result, indent=2)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      f.write(text + "\n")
  print(text)
  return 0


if __name__ == "__main__":
  sys.exit(main())
