"""Time one MTL-WS warmup epoch per strategy (vmap / loop / shard) against |L| and K.

  python benchmarks/warmup_strategies.py --out=warmup_strategies.json

For each strategy, number of target languages L and inner steps K on a small tagger: compile
time (lower + compile), wall time of one epoch (median of --repeats runs after compiling), and
memory: XLA's own account of the compiled epoch (arguments + outputs + temporaries - aliased),
plus the device allocator's peak where the backend reports one (GPU). On CPU the script forces
--host_devices host devices (XLA_FLAGS, set before jax is imported) so "shard" has a mesh; on
a GPU machine "shard" uses the real devices (one GPU: a 1-device mesh, i.e. vmap + shard_map).
Writes JSON to --out (and stdout).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--strategies", default="vmap,loop,shard")
  p.add_argument("--langs", default="1,2,4,8", help="numbers of target languages L")
  p.add_argument("--ks", default="5,20", help="inner SGD steps K")
  p.add_argument("--batch_size", type=int, default=4)
  p.add_argument("--seq_len", type=int, default=32)
  p.add_argument("--hidden", type=int, default=32)
  p.add_argument("--layers", type=int, default=2)
  p.add_argument("--intermediate", type=int, default=0, help="feed-forward size (0: 2 * hidden)")
  p.add_argument("--heads", type=int, default=2)
  p.add_argument("--vocab", type=int, default=1000)
  p.add_argument("--num_tags", type=int, default=9)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--host_devices", type=int, default=4,
                 help="CPU only: forced host devices for the shard strategy")
  p.add_argument("--platform", default=None, help="force a jax platform (cpu, cuda)")
  p.add_argument("--out", default=None)
  return p.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  if args.platform:
    os.environ["JAX_PLATFORMS"] = args.platform
  if args.host_devices > 1 and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={args.host_devices}").strip()
  import jax
  import numpy as np
  import optax
  from flax import nnx

  from mtlws_jax.models import encoder, tagger
  from mtlws_jax.train import warmup

  cfg = encoder.EncoderConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                              num_hidden_layers=args.layers, num_attention_heads=args.heads,
                              intermediate_size=args.intermediate or 2 * args.hidden)
  _, params, apply_fn = tagger.split_tagger(
      tagger.Tagger(cfg, num_tags=args.num_tags, rngs=nnx.Rngs(0)))
  outer = optax.sgd(5e-5)
  rs = np.random.RandomState(0)
  b, s = args.batch_size, args.seq_len

  def batches(num_langs, k):
    shape = (num_langs, k, b, s)
    ids = rs.randint(5, args.vocab, shape).astype(np.int32)
    return {"input_ids": ids, "attention_mask": np.ones(shape, np.int32),
            "token_type_ids": np.zeros(shape, np.int32),
            "labels": (ids % args.num_tags).astype(np.int32)}

  devices = jax.devices()
  results = []
  for strategy in args.strategies.split(","):
    epoch_fn = warmup.make_warmup_epoch(apply_fn, outer, beta=1e-3, strategy=strategy,
                                        donate=False)
    for k in [int(x) for x in args.ks.split(",")]:
      for num_langs in [int(x) for x in args.langs.split(",")]:
        data = batches(num_langs, k)
        state = outer.init(params)
        prepared = epoch_fn.prepare(data)
        t0 = time.perf_counter()
        compiled = epoch_fn.jitted.lower(params, state, *prepared, None).compile()
        compile_s = time.perf_counter() - t0
        times = []
        for _ in range(args.repeats + 1):  # the first run also pays for transfers: dropped
          t0 = time.perf_counter()
          out = compiled(params, state, *prepared, None)
          jax.block_until_ready(out)
          times.append(time.perf_counter() - t0)
        mem = compiled.memory_analysis()
        row = {"strategy": strategy, "L": num_langs, "K": k,
               "padded_L": int(prepared[1].shape[0]),
               "compile_s": round(compile_s, 4),
               "epoch_s": round(statistics.median(times[1:]), 5),
               "epoch_s_min": round(min(times[1:]), 5),
               "inner_steps_per_s": round(num_langs * k / statistics.median(times[1:]), 1)}
        if mem is not None:
          row["xla_argument_bytes"] = int(mem.argument_size_in_bytes)
          row["xla_output_bytes"] = int(mem.output_size_in_bytes)
          row["xla_temp_bytes"] = int(mem.temp_size_in_bytes)
          row["xla_peak_bytes"] = int(mem.argument_size_in_bytes + mem.output_size_in_bytes +
                                      mem.temp_size_in_bytes - mem.alias_size_in_bytes)
        stats = devices[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
          row["device_peak_bytes_so_far"] = int(stats["peak_bytes_in_use"])
        results.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
  report = {
      "benchmark": "warmup_strategies",
      "what": "one MTL-WS warmup epoch (L languages x K inner SGD steps + outer SGD move)",
      "backend": jax.default_backend(), "devices": [str(d) for d in devices],
      "device_kind": devices[0].device_kind, "host": platform.node(),
      "cpu_count": os.cpu_count(), "jax": jax.__version__,
      "model": {"hidden": args.hidden, "layers": args.layers, "heads": args.heads,
                "intermediate": args.intermediate or 2 * args.hidden, "vocab": args.vocab,
                "num_tags": args.num_tags, "params": int(sum(x.size for x in jax.tree.leaves(params)))},
      "batch": {"batch_size": b, "seq_len": s}, "repeats": args.repeats,
      "results": results,
  }
  text = json.dumps(report, indent=1)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
