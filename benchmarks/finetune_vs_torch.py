"""Fine-tuning side by side: our JAX tagger vs transformers' PyTorch one, same data, recipe and seeds.

Both frameworks fine-tune the same converted checkpoint (the offline e5-small by default) as a
token classifier on the English ABSA train set, with the standard recipe: AdamW (lr --lr, weight
decay 0.01 except biases and LayerNorm), --warmup-frac linear lr warmup then linear decay to 0,
gradient clipping at 1.0, random batches of --batch, dropout 0.1, --steps steps, English dev
span F1 every --eval-every steps (the best is kept). The encoded data and the batch order are
the same for both (our encoder's windows; PyTorch gets the same padded batches); the heads start
from each framework's own initialisation with the seed. One JSON out: per framework and seed the
dev curve, the best dev F1, the first evaluation reaching F1 10, whether the run sat in the all-O
plateau (no span on dev for more than a third of training, or never F1 10) and seconds; then mean
and std of the best dev F1 and the number of plateau runs.

  python benchmarks/finetune_vs_torch.py --seeds=0,1,2 --steps=600 --out=benchmarks/results/finetune_vs_torch_cpu.json
  python benchmarks/finetune_vs_torch.py --frameworks=jax --freeze=word_embeddings ...   # one factor at a time

Each framework and seed runs in its own subprocess (no thread pool or allocator shared); --jobs=2
trains two at once (pin the parent with taskset to give each its core). --summarize=A.json,B.json
merges files of separate invocations (e.g. one framework per core) into one --out.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _data(args):
  from mtlws_jax.data import absa, encode, tasks
  from mtlws_jax.models import checkpoints
  data_dir = pathlib.Path(args.data_dir or os.environ.get("MTLWS_DATA_DIR") or ROOT.parent / "shared" / "data")
  read = lambda split: tasks.to_scheme(absa.read(str(data_dir / f"absa/XABSA/gold-en-{split}.txt")), "bioes", split)
  train, dev = read("train"), read("dev")
  labels = tasks.span_labels(train, "bioes")
  tags = tasks.tag_set(labels, "bioes")
  tag_to_id = {t: i for i, t in enumerate(tags)}
  tok = checkpoints.load_tokenizer(pathlib.Path(args.model))
  enc = lambda s: encode.encode(s, tok, tag_to_id, max_length=args.max_length, stride=32)
  return train, dev, tags, enc(train), enc(dev), tok


def _batches(feats, args, seed):
  from mtlws_jax.train.streams import PairedStream
  stream = PairedStream([("gold:en", feats)], args.batch, seed, pad_multiple=8)
  return [stream.batch(i) for i in range(args.steps)]


def _f1(dev, tags, dev_feats, predict) -> tuple[float, int]:
  from mtlws_jax.data import batching
  from mtlws_jax.eval import metrics
  bs = list(batching.batches(dev_feats, 64, shuffle=False, pad_multiple=8))
  ids = batching.merge_predictions(bs, [predict(b) for b in bs], len(dev))
  pred = [[tags[i] for i in row] for row in ids]
  got = metrics.span_prf([s.tags for s in dev], pred)
  return 100 * got["f1"], got["n_pred"]


def run_jax(args, seed: int) -> dict:
  import jax
  import numpy as np
  from mtlws_jax.train.optim import frozen
  from mtlws_jax.models import checkpoints
  from mtlws_jax.models.tagger import split_tagger
  from mtlws_jax.train import optim, steps
  train, dev, tags, train_f, dev_f, _ = _data(args)
  model, _ = checkpoints.load_pretrained(args.model, num_tags=len(tags), dropout=0.1, seed=seed)
  _, params, apply_fn = split_tagger(model)
  opt = optim.make_optimizer(args.lr, schedule="linear", warmup_steps=int(args.warmup_frac * args.steps),
                             total_steps=args.steps, clip_norm=1.0, weight_decay=0.01,
                             decay_mask=args.decay_mask, head_lr_scale=args.head_lr_scale)
  apply_fn, opt = frozen(apply_fn, opt, params, args.freeze)
  step = steps.make_train_step(apply_fn, opt)
  eval_step = steps.make_eval_step(apply_fn)
  state = opt.init(params)
  params = jax.tree.map(jax.numpy.asarray, params)
  rng = jax.random.key(seed)
  curve, losses = [], []
  tic = time.perf_counter()
  for i, b in enumerate(_batches(train_f, args, seed), 1):
    params, state, m = step(params, state, b, rng)
    losses.append(float(m["loss"]))
    if i % args.eval_every == 0:
      f1, n_pred = _f1(dev, tags, dev_f, lambda bb: np.asarray(eval_step(params, {k: bb[k] for k in bb})["pred_ids"]))
      curve.append({"step": i, "dev_f1": round(f1, 2), "n_pred": n_pred,
                    "train_loss": round(float(np.mean(losses[-args.eval_every:])), 4)})
      print("jax", seed, curve[-1], flush=True)
  return {"curve": curve, "seconds": time.perf_counter() - tic}


def run_torch(args, seed: int) -> dict:
  import numpy as np
  import torch
  from transformers import AutoModelForTokenClassification, get_linear_schedule_with_warmup
  import re
  torch.manual_seed(seed)
  train, dev, tags, train_f, dev_f, _ = _data(args)
  model = AutoModelForTokenClassification.from_pretrained(args.model, num_labels=len(tags))
  model.train()
  rx = re.compile(args.freeze) if args.freeze else None
  named = [(n, p) for n, p in model.named_parameters() if not (rx and rx.search(n.replace(".", "/")))]
  for n, p in model.named_parameters():
    if rx and rx.search(n.replace(".", "/")):
      p.requires_grad_(False)
  no_decay = lambda n: args.decay_mask == "no_bias_norm" and (n.endswith("bias") or "LayerNorm" in n)
  head = lambda n: n.startswith("classifier.")
  groups = [{"params": [p for n, p in named if not no_decay(n) and not head(n)], "weight_decay": 0.01},
            {"params": [p for n, p in named if no_decay(n) and not head(n)], "weight_decay": 0.0},
            {"params": [p for n, p in named if not no_decay(n) and head(n)], "weight_decay": 0.01,
             "lr": args.lr * args.head_lr_scale},
            {"params": [p for n, p in named if no_decay(n) and head(n)], "weight_decay": 0.0,
             "lr": args.lr * args.head_lr_scale}]
  groups = [g for g in groups if g["params"]]
  opt = torch.optim.AdamW(groups, lr=args.lr, eps=1e-8)
  sched = get_linear_schedule_with_warmup(opt, int(args.warmup_frac * args.steps), args.steps)
  t = lambda a: torch.as_tensor(np.asarray(a), dtype=torch.long)

  def predict(b):
    model.eval()
    with torch.no_grad():
      out = model(input_ids=t(b["input_ids"]), attention_mask=t(b["attention_mask"])).logits.argmax(-1).numpy()
    model.train()
    return out

  curve, losses = [], []
  tic = time.perf_counter()
  for i, b in enumerate(_batches(train_f, args, seed), 1):
    labels = t(b["labels"]).masked_fill(t(b["labels"]) < 0, -100)
    out = model(input_ids=t(b["input_ids"]), attention_mask=t(b["attention_mask"]), labels=labels)
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_([p for _, p in named], 1.0)
    opt.step()
    sched.step()
    opt.zero_grad()
    losses.append(float(out.loss))
    if i % args.eval_every == 0:
      f1, n_pred = _f1(dev, tags, dev_f, predict)
      curve.append({"step": i, "dev_f1": round(f1, 2), "n_pred": n_pred,
                    "train_loss": round(float(np.mean(losses[-args.eval_every:])), 4)})
      print("torch", seed, curve[-1], flush=True)
  return {"curve": curve, "seconds": time.perf_counter() - tic}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--model", default=os.path.expanduser("~/.cache/mtlws_jax/e5-small"))
  ap.add_argument("--data-dir", default="")
  ap.add_argument("--frameworks", default="jax,torch")
  ap.add_argument("--seeds", default="0,1,2")
  ap.add_argument("--steps", type=int, default=600)
  ap.add_argument("--eval-every", type=int, default=100)
  ap.add_argument("--batch", type=int, default=8)
  ap.add_argument("--lr", type=float, default=2e-4)
  ap.add_argument("--warmup-frac", type=float, default=0.1)
  ap.add_argument("--decay-mask", default="no_bias_norm", choices=("all", "no_bias_norm"))
  ap.add_argument("--head-lr-scale", type=float, default=1.0, help="the classifier's rate as a multiple of --lr")
  ap.add_argument("--freeze", default="", help="regex over parameter paths kept fixed (e.g. word_embeddings)")
  ap.add_argument("--max-length", type=int, default=128)
  ap.add_argument("--out", default="")
  ap.add_argument("--jobs", type=int, default=1, help="runs trained at once (each in its own process)")
  ap.add_argument("--summarize", default="", help="comma-separated JSON files of earlier runs: merge them "
                  "into one (same settings), re-deriving the plateau flags and summary; no training")
  ap.add_argument("--one", default="", help=argparse.SUPPRESS)  # framework:seed, in a subprocess
  args = ap.parse_args()
  if args.one:
    fw, seed = args.one.split(":")
    got = (run_jax if fw == "jax" else run_torch)(args, int(seed))
    print("RESULT " + json.dumps(got), flush=True)
    return
  if args.summarize:
    out = merge([read_run_file(f) for f in args.summarize.split(",")])
  else:
    out = train_all(args)
  text = json.dumps(out, indent=1)
  if args.out:
    pathlib.Path(args.out).write_text(text + "\n")
  print(json.dumps(out["summary"], indent=1))


def derive(got: dict, steps: int) -> dict:
  """A run's derived fields, from its dev curve alone (so old files can be re-derived).

  plateau: the run never reached dev F1 10, or predicted no span on dev at consecutive
  evaluations covering more than a third of training (the all-O plateau; one early evaluation
  without spans while the head warms up is not one).
  """
  curve = got["curve"]
  got["best_dev_f1"] = max(c["dev_f1"] for c in curve)
  got["no_span_evals"] = sum(c["n_pred"] == 0 for c in curve)
  learned = [c["step"] for c in curve if c["dev_f1"] >= 10]
  got["first_step_f1_10"] = learned[0] if learned else None
  longest = stretch = 0
  prev = 0
  for c in curve:  # steps without a predicted span, up to the evaluation that ends the stretch
    stretch = stretch + (c["step"] - prev) if c["n_pred"] == 0 else 0
    longest, prev = max(longest, stretch), c["step"]
  got["no_span_steps"] = longest
  got["plateau"] = not learned or longest > steps / 3
  return got


def summarize(out: dict) -> dict:
  """Mean and std of the best dev F1 and the plateau count, per framework."""
  out["summary"] = {}
  for fw in out["settings"]["frameworks"].split(","):
    runs = [r for k, r in out["runs"].items() if k.startswith(fw + "/")]
    best = [r["best_dev_f1"] for r in runs]
    out["summary"][fw] = {"best_dev_f1_mean": statistics.mean(best),
                          "best_dev_f1_std": statistics.stdev(best) if len(best) > 1 else None,
                          "plateau_runs": sum(r["plateau"] for r in runs), "runs": len(best)}
  return out


def read_run_file(path: str) -> dict:
  """A JSON this script wrote, or one clear line naming the file (exit 1)."""
  try:
    got = json.loads(pathlib.Path(path).read_text())
  except OSError as e:
    raise SystemExit(f"error: {path}: {e.strerror}") from None
  except json.JSONDecodeError as e:
    raise SystemExit(f"error: {path}:{e.lineno}: not JSON ({e.msg})") from None
  point = ("step", "dev_f1", "n_pred")
  if not (isinstance(got, dict) and isinstance(got.get("settings"), dict) and "steps" in got["settings"]
          and isinstance(got.get("runs"), dict) and all(
              isinstance(r, dict) and r.get("curve") and all(isinstance(c, dict) and all(k in c for k in point)
                                                          for c in r["curve"]) for r in got["runs"].values())):
    raise SystemExit(f"error: {path}:1: not a finetune_vs_torch result (needs settings and runs with dev curves)")
  return got


def merge(files: list[dict]) -> dict:
  """One JSON from files that ran different frameworks or seeds with the same settings (e.g. one
  framework per core); the derived fields and the summary are rebuilt from the recorded curves."""
  keep = ("frameworks", "seeds")
  first = files[0]["settings"]
  for f in files[1:]:
    diff = sorted(k for k in set(first) | set(f["settings"]) if k not in keep and first.get(k) != f["settings"].get(k))
    if diff:
      raise SystemExit(f"error: the files differ in settings {', '.join(diff)}: they cannot be merged")
  runs: dict = {}
  for f in files:
    for k, r in f["runs"].items():
      if k in runs:
        raise SystemExit(f"error: run {k} is in more than one file")
      runs[k] = derive(r, first["steps"])
  fws = list(dict.fromkeys(k.split("/")[0] for k in runs))
  seeds = list(dict.fromkeys(k.split("/seed")[1] for k in runs))
  settings = dict(first, frameworks=",".join(fws), seeds=",".join(seeds))
  return summarize({"what": files[0]["what"], "settings": settings, "runs": runs})


def train_all(args) -> dict:
  """Every framework x seed, each in its own subprocess, --jobs at a time."""
  from concurrent.futures import ThreadPoolExecutor
  out = {"what": __doc__.split("\n")[0],
         "settings": {k: v for k, v in vars(args).items() if k not in ("out", "one", "jobs", "summarize")},
         "runs": {}, "summary": {}}
  todo = [(fw, seed) for fw in args.frameworks.split(",") for seed in map(int, args.seeds.split(","))]
  # the child gets the parsed settings (not sys.argv, where "--jobs 2" would leave a stray "2")
  flags = [f"--{k.replace('_', '-')}={v}" for k, v in out["settings"].items()]

  def one(job):
    fw, seed = job
    cmd = [sys.executable, __file__, *flags, f"--one={fw}:{seed}"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    lines = [l for l in p.stdout.splitlines() if l.startswith("RESULT ")]
    if p.returncode or not lines:
      raise SystemExit(f"{fw} seed {seed} failed:\n{p.stderr[-3000:]}")
    return derive(json.loads(lines[-1][7:]), args.steps)

  with ThreadPoolExecutor(max(1, args.jobs)) as pool:
    for (fw, seed), got in zip(todo, pool.map(one, todo)):
      out["runs"][f"{fw}/seed{seed}"] = got
      print(fw, seed, got["best_dev_f1"], [c["dev_f1"] for c in got["curve"]], flush=True)
      if args.out:
        pathlib.Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
  return summarize(out)

if __name__ == "__main__":
  main()
