"""Training-step throughput and peak memory: our jitted Flax tagger vs transformers' PyTorch one.

One step = forward + backward + Adam update on a batch of B x S tokens (dropout on, no padding),
for the same architecture in both frameworks. Each framework runs in its own subprocess so the
peak RSS (ru_maxrss) of one does not hide the other. Prints one JSON object (and writes --out).

  python benchmarks/train_step_vs_torch.py                       # small config: 4 x 256, ff 1024
  python benchmarks/train_step_vs_torch.py --model_dir=/path/e5  # a converted checkpoint folder
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time

# Run from a checkout without installing the package.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import benchmarks  # noqa: E402


def _batch(vocab_size: int, num_tags: int, batch: int, seq: int, seed: int = 0):
  import numpy as np
  rng = np.random.default_rng(seed)
  ids = rng.integers(5, vocab_size, size=(batch, seq), dtype=np.int64)
  ids[:, 0], ids[:, -1] = 2, 3
  labels = rng.integers(0, num_tags, size=(batch, seq), dtype=np.int64)
  labels[:, 0] = labels[:, -1] = -1
  labels[rng.random((batch, seq)) < 0.3] = -1  # continuation subwords carry no label
  return ids, np.ones_like(ids), labels


def _hf_config(args) -> dict:
  if args.model_dir:
    with open(os.path.join(args.model_dir, "config.json"), encoding="utf-8") as f:
      return json.load(f)
  return {"model_type": "bert", "vocab_size": args.vocab, "hidden_size": args.hidden,
          "num_hidden_layers": args.layers, "num_attention_heads": args.heads, "intermediate_size": args.ff,
          "hidden_act": "gelu", "max_position_embeddings": 512, "type_vocab_size": 2, "pad_token_id": 0,
          "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1, "layer_norm_eps": 1e-12}


def _timed(step, n_warmup: int, n_steps: int) -> tuple[list[float], float]:
  t0 = time.perf_counter()
  for _ in range(n_warmup):
    step()
  first = time.perf_counter() - t0
  times = []
  for _ in range(n_steps):
    t = time.perf_counter()
    step()
    times.append(time.perf_counter() - t)
  return times, first


def run_jax(args) -> dict:
  import jax
  import jax.numpy as jnp
  import optax
  from flax import nnx
  from mtlws_jax.models import checkpoints
  from mtlws_jax.models.encoder import EncoderConfig
  from mtlws_jax.models.tagger import Tagger, split_tagger, token_cross_entropy

  hf = _hf_config(args)
  dtype = jnp.bfloat16 if args.bf16 else jnp.float32
  if args.model_dir:
    model, _ = checkpoints.load_pretrained(args.model_dir, num_tags=args.num_tags, dtype=dtype)
  else:
    model = Tagger(EncoderConfig.from_hf_config(hf), args.num_tags, dtype=dtype, rngs=nnx.Rngs(0))
  _, params, apply_fn = split_tagger(model)
  del model
  opt = optax.adam(args.lr)
  if args.freeze_embeddings:  # the word-embedding table gets no gradient and no Adam state
    from mtlws_jax.train.optim import frozen
    apply_fn, opt = frozen(apply_fn, opt, params, "word_embeddings")
  opt_state = opt.init(params)

  def loss_fn(p, batch, rng):
    return token_cross_entropy(apply_fn(p, batch, rng), batch["labels"])

  @jax.jit
  def _step(p, s, batch, rng):
    loss, grads = jax.value_and_grad(loss_fn)(p, batch, rng)
    updates, s = opt.update(grads, s, p)
    return optax.apply_updates(p, updates), s, loss

  train_step = jax.jit(_step, donate_argnums=(0, 1))
  ids, mask, labels = _batch(hf["vocab_size"], args.num_tags, args.batch, args.seq)
  batch = {"input_ids": jnp.asarray(ids, jnp.int32), "attention_mask": jnp.asarray(mask, jnp.int32),
           "token_type_ids": jnp.zeros(ids.shape, jnp.int32), "labels": jnp.asarray(labels, jnp.int32)}
  state = {"p": params, "s": opt_state, "key": jax.random.key(0), "loss": None}

  def step():
    state["key"], k = jax.random.split(state["key"])
    state["p"], state["s"], state["loss"] = train_step(state["p"], state["s"], batch, k)
    state["loss"].block_until_ready()

  times, first = _timed(step, args.warmup, args.steps)
  return {"times": times, "first_steps_s": first, "final_loss": float(state["loss"]),
          "num_params": int(sum(x.size for x in jax.tree.leaves(state["p"]))),
          "backend": jax.default_backend(), "jax": jax.__version__,
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def run_torch(args) -> dict:
  import torch
  import transformers

  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  hf = _hf_config(args)
  if args.model_dir:
    model = transformers.AutoModelForTokenClassification.from_pretrained(args.model_dir, num_labels=args.num_tags)
  else:
    config = transformers.AutoConfig.for_model(**hf, num_labels=args.num_tags)
    model = transformers.AutoModelForTokenClassification.from_config(config)
  model.train()
  if args.freeze_embeddings:
    model.base_model.embeddings.word_embeddings.weight.requires_grad_(False)
  opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=args.lr)
  ids, mask, labels = _batch(hf["vocab_size"], args.num_tags, args.batch, args.seq)
  ids, mask = torch.tensor(ids), torch.tensor(mask)
  labels = torch.tensor(labels).masked_fill(torch.tensor(labels) < 0, -100)
  state = {"loss": None}

  def step():  # bf16: autocast (float32 master weights and Adam, bf16 matmuls: oneDNN/AMX on this CPU)
    opt.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
      loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    opt.step()
    state["loss"] = float(loss)

  times, first = _timed(step, args.warmup, args.steps)
  return {"times": times, "first_steps_s": first, "final_loss": state["loss"],
          "num_params": int(sum(p.numel() for p in model.parameters())), "torch": torch.__version__,
          "torch_threads": torch.get_num_threads(), "attn_implementation": model.config._attn_implementation}


def _child(args) -> None:
  result = run_jax(args) if args.framework == "jax" else run_torch(args)
  result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
  print(benchmarks.RESULT + json.dumps(result))


def main() -> None:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--model_dir", help="a HF BERT/XLM-R folder (e.g. the converted e5-small) instead of --layers...")
  p.add_argument("--layers", type=int, default=4)
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--heads", type=int, default=4)
  p.add_argument("--ff", type=int, default=1024)
  p.add_argument("--vocab", type=int, default=30522)
  p.add_argument("--num_tags", type=int, default=9)
  p.add_argument("--batch", type=int, default=8)
  p.add_argument("--seq", type=int, default=128)
  p.add_argument("--steps", type=int, default=10)
  p.add_argument("--warmup", type=int, default=2, help="untimed steps first (jit compile, allocator warmup)")
  p.add_argument("--lr", type=float, default=1e-4)
  p.add_argument("--bf16", action="store_true", help=argparse.SUPPRESS)  # internal: one precision per child
  p.add_argument("--precisions", default="float32,bfloat16",
                 help="float32 and/or bfloat16 compute (JAX: model.dtype, float32 params; torch: CPU autocast)")
  p.add_argument("--freeze-embeddings", action="store_true", help="word embeddings get no gradient nor Adam state")
  p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0 = torch's default)")
  p.add_argument("--frameworks", default="jax,torch")
  p.add_argument("--out")
  p.add_argument("--framework", help=argparse.SUPPRESS)  # internal: run one side in this process
  args = p.parse_args()
  if args.framework:
    return _child(args)

  results = {}
  for precision in args.precisions.split(","):
    for fw in args.frameworks.split(","):
      cmd = [os.path.abspath(__file__), f"--framework={fw}"] + sys.argv[1:]
      if precision == "bfloat16":
        cmd.append("--bf16")
      r, proc = benchmarks.child(cmd)
      if r is None:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{fw} {precision} run failed (exit {proc.returncode})")
      med = statistics.median(r["times"])
      r.update(median_step_s=med, tokens_per_s=args.batch * args.seq / med,
               min_step_s=min(r["times"]), max_step_s=max(r["times"]))
      results.setdefault(precision, {})[fw] = r
  out = {
      "benchmark": "train_step_vs_torch",
      "setting": {k: getattr(args, k) for k in ("model_dir", "layers", "hidden", "heads", "ff", "vocab", "num_tags",
                                                "batch", "seq", "steps", "warmup", "lr", "precisions", "threads",
                                                "freeze_embeddings")},
      "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                  "processor": platform.processor() or platform.machine(),
                  "load_avg_at_end": os.getloadavg()},
      "results": results,
  }
  out["jax_over_torch_tokens_per_s"] = {
      prec: r["jax"]["tokens_per_s"] / r["torch"]["tokens_per_s"] for prec, r in results.items() if {"jax", "torch"} <= set(r)}
  if {"float32", "bfloat16"} <= set(results):
    out["bf16_over_float32_tokens_per_s"] = {
        fw: results["bfloat16"][fw]["tokens_per_s"] / results["float32"][fw]["tokens_per_s"]
        for fw in results["float32"] if fw in results["bfloat16"]}
  at_best = {fw: max(results[p][fw]["tokens_per_s"] for p in results if fw in results[p]) for fw in ("jax", "torch")
             if all(fw in results[p] for p in results)}
  if len(at_best) == 2:
    out["jax_over_torch_at_each_best"] = at_best["jax"] / at_best["torch"]
  benchmarks.emit(out, args.out)


if __name__ == "__main__":
  main()
