"""How much does the MTL-WS warmup move a model with the paper's step sizes?

  python benchmarks/warmup_effect.py --out=warmup_effect.json

A tiny tagger, L synthetic "languages" (each its own slice of the vocabulary; the tag of a token
is a fixed function of its id, so there is something to learn), Z warmup epochs of K inner SGD
steps (rate beta) and the outer move with step gamma. Reports, for each gamma, what
`warmup.warmup_effect` measures (relative parameter change ||theta_Z - theta_0|| / ||theta_0||
and the loss on each language's data before/after), next to the parameter change of ONE Adam
step at the paper's adaptation learning rate for scale.

Why small: per epoch theta moves gamma * mean_l(theta_l - theta) ~ gamma * beta * K * grad, so Z
epochs move about gamma * beta * K * Z = 5e-5 * 1e-3 * 20 * 100 = 1e-4 gradient units: one plain
SGD step with rate 1e-4, smaller than one Adam step of 5e-5 for most weights.
"""

from __future__ import annotations

import argparse
import json
import time


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--Z", type=int, default=100)
  p.add_argument("--K", type=int, default=20)
  p.add_argument("--langs", type=int, default=4)
  p.add_argument("--beta", type=float, default=1e-3)
  p.add_argument("--gammas", default="5e-5,1.0", help="outer SGD step sizes to compare")
  p.add_argument("--adam_lr", type=float, default=5e-5)
  p.add_argument("--batch_size", type=int, default=8)
  p.add_argument("--seq_len", type=int, default=24)
  p.add_argument("--vocab", type=int, default=400)
  p.add_argument("--num_tags", type=int, default=9)
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)

  import jax
  import numpy as np
  import optax
  from flax import nnx

  from mtlws_jax.models import encoder, tagger
  from mtlws_jax.train import optim, steps, warmup

  cfg = encoder.EncoderConfig(vocab_size=args.vocab, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64)
  _, theta0, apply_fn = tagger.split_tagger(
      tagger.Tagger(cfg, num_tags=args.num_tags, rngs=nnx.Rngs(0)))
  rs = np.random.RandomState(0)
  span = args.vocab // (args.langs + 1)

  def batch(lang):
    ids = rs.randint(5 + lang * span, 5 + (lang + 1) * span - 5, (args.batch_size, args.seq_len))
    ids = np.minimum(ids, args.vocab - 1).astype(np.int32)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids),
            "token_type_ids": np.zeros_like(ids), "labels": (ids % args.num_tags).astype(np.int32)}

  epochs = [warmup.stack_language_batches([[batch(l + 1) for _ in range(args.K)]
                                           for l in range(args.langs)]) for _ in range(args.Z)]
  held_out = {f"lang{l + 1}": [batch(l + 1) for _ in range(4)] for l in range(args.langs)}
  report = {"benchmark": "warmup_effect", "backend": jax.default_backend(), "jax": jax.__version__,
            "settings": {k: v for k, v in vars(args).items() if k != "out"},
            "params": int(sum(x.size for x in jax.tree.leaves(theta0))), "runs": {}}
  for gamma in [float(g) for g in args.gammas.split(",")]:
    outer = optax.sgd(gamma)
    epoch_fn = warmup.make_warmup_epoch(apply_fn, outer, beta=args.beta, strategy="vmap")
    t0 = time.perf_counter()
    theta_z = warmup.run_warmup(epoch_fn, outer, theta0, epochs)
    jax.block_until_ready(theta_z)
    effect = warmup.warmup_effect(apply_fn, theta0, theta_z, held_out)
    effect["seconds"] = round(time.perf_counter() - t0, 2)
    report["runs"][f"gamma={gamma:g}"] = effect
    print(f"gamma={gamma:g}: rel change {effect['param_rel_change']:.3e}, "
          f"max |change| {effect['param_max_abs_change']:.3e}, "
          f"mean held-out loss {effect['mean_loss_before']:.5f} -> {effect['mean_loss_after']:.5f}",
          flush=True)
  # Scale: one Adam step (the adaptation optimizer) on an English-like batch (language 0).
  opt = optim.make_optimizer(args.adam_lr)
  step = steps.make_train_step(apply_fn, opt, donate=False)
  theta1, _, _ = step(theta0, opt.init(theta0), batch(0), None)
  one_adam = warmup.warmup_effect(apply_fn, theta0, theta1, {})
  report["one_adam_step"] = {k: one_adam[k] for k in ("param_change", "param_rel_change",
                                                      "param_max_abs_change")}
  print(f"one Adam step (lr {args.adam_lr:g}): rel change {one_adam['param_rel_change']:.3e}, "
        f"max |change| {one_adam['param_max_abs_change']:.3e}")
  text = json.dumps(report, indent=1)
  if args.out:
    with open(args.out, "w") as f:
      f.write(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
