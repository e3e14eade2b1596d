"""Sentences per second of the study's train step on its real batches: padded, packed, XLA:CPU
settings, and transformers' PyTorch model on the same sentences (issue 22).

The recipe of configs/study_{absa,ner}_cpu.py: e5-small (all 12 layers), batch 8 drawn in random
order from the English train set (the study's PairedStream, seed 0), word embeddings frozen,
AdamW with the linear schedule, clipping at 1.0, the head at 10x, dropout 0.1. Every variant runs
in its own subprocess (XLA flags are read once, when JAX starts), pinned with taskset to the
cores given (--cores=0: one core, as the study runs one model per core). Each first runs one step
of every distinct batch shape of the measured steps (the compiles, timed apart), then times the
--steps steps end to end.

  jax before_sync   the code at --before (today's main, checked out into a worktree): padded
                    rows, the loss read after every step as its loop does; the "x_today" base
  jax padded_sync   this code, one sentence per row padded to data.pad_multiple=32, the loss read
                    after every step (the host waits for each step before dispatching the next)
  jax padded        the same rows, metrics read at log steps only
  jax packed        data.batch_layout=packed (rows of data.pack_length tokens), read at log steps
  jax packed_sync   packed rows, the loss read every step (what the host sync costs)
  jax packed@N      packed rows of N tokens instead of --pack_length
  jax packed%M      rows rounded up to a multiple of M tokens instead of data.pad_multiple (32):
                    less padding, more batch shapes (each compiled once; run.py caches them)
  jax packed+FLAGS  packed with XLA_FLAGS set (FLAG_SETS below)
  jax packed_all_rows   every parameter trained, the word embeddings by Adam over the rows each
                    batch touches (train.embedding_update=rows: the paper's budget on a CPU)
  jax packed_all_dense  every parameter trained by dense Adam (the 250k-row table every step)
  torch             BertForTokenClassification, DataCollatorForTokenClassification padding (to the
                    batch's longest sentence), AdamW with the same groups, clipping, float32

  python benchmarks/study_speed.py --out=benchmarks/results/study_speed_cpu.json
  python benchmarks/study_speed.py --quick   # tiny random model, a few steps: a dry run

JSON: per task and variant: sentences/s, seconds per step, compile seconds and shapes, the share
of token slots that are real tokens; ratios to padded_sync (today) and to torch.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if os.environ.get("STUDY_SPEED_CODE"):  # before_sync: the package as it was, ahead of this checkout
  sys.path.insert(0, os.environ["STUDY_SPEED_CODE"])

FLAG_SETS = {
    "ynn-reduce": "--xla_cpu_experimental_ynn_fusion_type=-reduce",
    "onednn": "--xla_cpu_use_onednn=true",
    "no-xnn-ynn": "--xla_cpu_use_xnnpack=false --xla_cpu_experimental_ynn_fusion_type=",
    "fast-math": "--xla_cpu_enable_fast_math=true",
}
TRAIN_FILES = {"absa": "absa/XABSA/gold-en-train.txt", "ner": "ner/Easy-Label-Projection/original/en/en.conll.train.tsv"}


def _data_dir(args) -> pathlib.Path:
  return pathlib.Path(args.data_dir or os.environ.get("MTLWS_DATA_DIR") or ROOT.parent / "shared" / "data")


def _study_config(task: str):
  import importlib
  return importlib.import_module(f"configs.study_{task}_cpu").get_config()


def _synthetic_features(task: str, vocab_size: int):
  """No data folder (a lent GPU machine): sentences of random ids whose subword lengths follow
  the task's English train set (lognormal fitted to ABSA's and NER's means of about 22 subwords)."""
  import numpy as np
  from mtlws_jax.data import encode
  rng = np.random.default_rng(0)
  feats = []
  for i in range(2000):
    n = int(np.clip(rng.lognormal(2.95, 0.55), 4, 200))
    ids = rng.integers(5, vocab_size, n).astype(np.int32)
    labels = np.where(rng.random(n) < 0.7, rng.integers(0, 13, n), -1).astype(np.int32)
    labels[[0, -1]] = -1
    feats.append(encode.Feature(input_ids=ids, labels=labels, predicate_ids=np.zeros(n, np.int32),
                                pos_ids=np.zeros(n, np.int32), word_ids=np.where(labels >= 0, np.arange(n), -1).astype(np.int32),
                                example_id=i, num_words=n, pad_id=1, max_length=512))
  return feats, [f"T{i}" for i in range(13)]


def _features(args, task: str, tokenizer):
  """The English train set of the task, encoded as run.py does, and its tag set."""
  from mtlws_jax.data import absa, conll, encode, tasks
  if args.synthetic:
    config = json.loads((pathlib.Path(_model_dir(args)) / "config.json").read_text())
    return _synthetic_features(task, config["vocab_size"])
  path = _data_dir(args) / TRAIN_FILES[task]
  sents = tasks.to_scheme((absa.read if task == "absa" else conll.read)(str(path)), "bioes", str(path))
  tags = tasks.tag_set(tasks.span_labels(sents, "bioes"), "bioes")
  tag_to_id = {t: i for i, t in enumerate(tags)}
  return encode.encode(sents, tokenizer, tag_to_id, max_length=512, stride=128), tags


def _draws(feats, batch: int, steps: int) -> list[list[int]]:
  """The feature indices of each step: the study's random-order PairedStream of seed 0 (read
  from its pass orders, which the code before packing has too)."""
  import numpy as np
  from mtlws_jax.train.streams import PairedStream
  stream = PairedStream([("gold:en", feats)], batch, 0)
  order = np.concatenate([stream.pass_order(p) for p in range(-(-steps * batch // len(feats)) + 1)])
  return [[int(j) for j in order[i * batch:(i + 1) * batch]] for i in range(steps)]


def _model_dir(args) -> str:
  from mtlws_jax.models import tiny
  if args.quick:  # a dry run of the script: a tiny random model
    folder = pathlib.Path(args.work) / "tiny-model"
    if not (folder / "config.json").exists():
      tiny.build_tiny_checkpoint(folder, model_type="bert", texts=["a b c d e f g"] * 10, vocab_size=200,
                                 hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64, max_length=512)
    return str(folder)
  if args.synthetic:  # e5-small's shape with random weights (an XLM-R tokenizer is not needed)
    folder = pathlib.Path(args.work) / "e5-shape"
    if not (folder / "config.json").exists():
      tiny.build_tiny_checkpoint(folder, model_type="xlm-roberta", texts=["a b c d e f g"] * 10, vocab_size=250037,
                                 hidden_size=384, num_layers=12, num_heads=12, intermediate_size=1536,
                                 max_length=512)
    return str(folder)
  from mtlws_jax.models import locate
  return locate.find("e5-small", download=False)[0]


def run_jax(args, task: str, variant: str) -> dict:
  import jax
  import numpy as np
  from mtlws_jax.data import encode
  try:   # this checkout's homes; a checkout from before issue 25 (--code) has the older ones
    from mtlws_jax.data import batching
    from mtlws_jax.train.optim import frozen
  except ImportError:
    batching = encode
    from mtlws_jax.bench import frozen
  from mtlws_jax.models import checkpoints
  from mtlws_jax.models.tagger import split_tagger
  from mtlws_jax.train import optim, steps

  c = _study_config(task)
  model_dir = _model_dir(args)
  tok = checkpoints.load_tokenizer(pathlib.Path(model_dir))
  feats, tags = _features(args, task, tok)
  draws = _draws(feats, c.train.batch_size, args.steps)
  packed = variant.startswith("packed")
  variant, _, multiple = variant.partition("%")  # packed%8: rows round up to a multiple of 8
  variant, _, length = variant.partition("@")  # packed@128: rows of 128 tokens
  pack_length = (int(length) if length else args.pack_length) if packed else 0
  if multiple:
    args.pad_multiple = int(multiple)
  pack = {"pack_length": pack_length} if pack_length else {}  # the code before packing has no such argument
  batches = [batching.collate([feats[i] for i in d], pad_multiple=args.pad_multiple or c.data.pad_multiple, **pack)
             for d in draws]
  model, _ = checkpoints.load_pretrained(model_dir, num_tags=len(tags), dropout=c.model.dropout, seed=0)
  _, params, apply_fn = split_tagger(model)
  del model
  train = dict(c.train)  # the study's schedule (300 steps)
  if "_all" in variant:  # every parameter trained: Adam over the touched rows, or dense Adam
    train.update(freeze="", embedding_update="rows" if "_all_rows" in variant else "dense")
  if train.get("embedding_update") == "rows":
    opt = optim.rows_optimizer_from_config(train)
  else:
    apply_fn, opt = frozen(apply_fn, optim.optimizer_from_config(train), params, train["freeze"])
  step = steps.make_train_step(apply_fn, opt)
  params = jax.tree.map(jax.numpy.asarray, params)
  state = opt.init(params)
  rng = jax.random.key(0)
  shapes = sorted({b["input_ids"].shape for b in batches})
  tic = time.perf_counter()
  for shape in shapes:  # compile every shape the timed steps use
    b = next(b for b in batches if b["input_ids"].shape == shape)
    params, state, m = step(params, state, b, rng)
  jax.block_until_ready(m["loss"])
  compile_s = time.perf_counter() - tic
  sync = "_sync" in variant
  losses = []
  tic = time.perf_counter()
  for b in batches:
    params, state, m = step(params, state, b, rng)
    losses.append(float(m["loss"]) if sync else m["loss"])
  losses = [float(x) for x in jax.device_get(losses)]
  seconds = time.perf_counter() - tic
  slots = sum(b["input_ids"].size for b in batches)
  real = sum(int(b["attention_mask"].sum()) for b in batches)
  return {"sentences_per_sec": len(batches) * c.train.batch_size / seconds, "sec_per_step": seconds / len(batches),
          "compile_seconds": compile_s, "shapes": [list(s) for s in shapes], "real_token_share": real / slots,
          "mean_loss": float(np.mean(losses)), "xla_flags": os.environ.get("XLA_FLAGS", ""),
          "jax": jax.__version__, "package": os.path.dirname(encode.__file__)}


def run_torch(args, task: str) -> dict:
  import re
  import numpy as np
  import torch
  from transformers import AutoModelForTokenClassification, DataCollatorForTokenClassification, \
      get_linear_schedule_with_warmup
  from mtlws_jax.models import checkpoints
  torch.manual_seed(0)
  torch.set_num_threads(len(os.sched_getaffinity(0)))
  c = _study_config(task)
  model_dir = _model_dir(args)
  tok = checkpoints.load_tokenizer(pathlib.Path(model_dir))
  feats, tags = _features(args, task, tok)
  draws = _draws(feats, c.train.batch_size, args.steps)
  collator = DataCollatorForTokenClassification(tok, padding=True, return_tensors="pt")
  batches = [collator([{"input_ids": feats[i].input_ids.tolist(),
                        "labels": np.where(feats[i].labels < 0, -100, feats[i].labels).tolist()} for i in d])
             for d in draws]
  device = "cuda" if torch.cuda.is_available() else "cpu"
  model = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=len(tags)).to(device)
  model.train()
  batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
  rx = re.compile(c.train.freeze)
  named = []
  for n, p in model.named_parameters():
    if rx.search(n.replace(".", "/")):
      p.requires_grad_(False)
    else:
      named.append((n, p))
  no_decay = lambda n: n.endswith("bias") or "LayerNorm" in n
  head = lambda n: n.startswith("classifier.")
  lr = c.train.learning_rate
  groups = [{"params": [p for n, p in named if no_decay(n) == nd and head(n) == hd],
             "weight_decay": 0.0 if nd else c.train.weight_decay, "lr": lr * (c.train.head_lr_scale if hd else 1)}
            for nd in (False, True) for hd in (False, True)]
  opt = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, eps=1e-8)
  sched = get_linear_schedule_with_warmup(opt, c.train.lr_warmup_steps, c.train.max_steps)

  def step(b):
    out = model(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=b["labels"])
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_([p for _, p in named], c.train.grad_clip_norm)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return float(out.loss)

  tic = time.perf_counter()
  step(batches[0])  # the first step allocates; timed apart like the JAX compiles
  first = time.perf_counter() - tic
  tic = time.perf_counter()
  losses = [step(b) for b in batches]
  seconds = time.perf_counter() - tic
  slots = sum(b["input_ids"].numel() for b in batches)
  real = sum(int(b["attention_mask"].sum()) for b in batches)
  return {"sentences_per_sec": len(batches) * c.train.batch_size / seconds, "sec_per_step": seconds / len(batches),
          "compile_seconds": first, "real_token_share": real / slots, "mean_loss": float(np.mean(losses)),
          "torch": torch.__version__, "threads": torch.get_num_threads(), "device": device}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", default="")
  p.add_argument("--tasks", default="absa,ner")
  p.add_argument("--variants", default="before_sync,padded_sync,padded,packed,packed_sync,torch,"
                 + ",".join(f"packed+{k}" for k in FLAG_SETS))
  p.add_argument("--steps", type=int, default=40)
  p.add_argument("--pack_length", type=int, default=256)
  p.add_argument("--pad_multiple", type=int, default=0, help="rows round up to this (0 = the study config's, 32)")
  p.add_argument("--before", default="f406d14", help="git commit of today's code (before_sync)")
  p.add_argument("--cores", default="0", help="taskset core list for every child ('' = no pinning)")
  p.add_argument("--data_dir", default="")
  p.add_argument("--work", default="/tmp/study_speed")
  p.add_argument("--quick", action="store_true", help="tiny random model, 6 steps (a dry run of the script)")
  p.add_argument("--synthetic", action="store_true",
                 help="no data or e5 needed (a lent GPU): e5-small's shape, random weights, lengths like the data's")
  p.add_argument("--child", default="", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  if args.quick:
    args.steps = min(args.steps, 6)
  if args.child:
    task, variant = args.child.split(":")
    got = run_torch(args, task) if variant == "torch" else run_jax(args, task, variant)
    print("RESULT " + json.dumps(got), flush=True)
    return 0
  from mtlws_jax.errors import InputError, check_output
  if args.out:
    try:
      check_output(args.out)
    except InputError as e:
      print(f"error: {e}", file=sys.stderr)
      return 1
  results: dict = {}
  for task in args.tasks.split(","):
    results[task] = {}
    for variant in args.variants.split(","):
      env = dict(os.environ)
      name, _, flags = variant.partition("+")
      if flags:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + FLAG_SETS[flags]).strip()
      if name.startswith("before"):  # the package as it was: a worktree of --before first on the path
        code = pathlib.Path(args.work) / "before-code"
        if not code.exists():
          subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(code), args.before],
                         check=True, capture_output=True)
        env["STUDY_SPEED_CODE"] = str(code)
        name = "padded" + name[len("before"):]
      cmd = [sys.executable, __file__, f"--child={task}:{name}", f"--steps={args.steps}",
             f"--pack_length={args.pack_length}", f"--pad_multiple={args.pad_multiple}", f"--work={args.work}"] + (["--quick"] if args.quick else []) \
          + (["--synthetic"] if args.synthetic else []) \
          + ([f"--data_dir={args.data_dir}"] if args.data_dir else [])
      if args.cores:
        cmd = ["taskset", "-c", args.cores] + cmd
      tic = time.perf_counter()
      proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
      line = next((l for l in proc.stdout.splitlines() if l.startswith("RESULT ")), None)
      if proc.returncode or line is None:
        results[task][variant] = {"error": (proc.stderr or proc.stdout).strip().splitlines()[-1:]}
      else:
        results[task][variant] = json.loads(line[len("RESULT "):]) | {"wall_seconds": time.perf_counter() - tic}
      print(task, variant, json.dumps(results[task][variant])[:300], flush=True)
    rows = results[task]
    base = rows.get("before_sync", rows.get("padded_sync", {})).get("sentences_per_sec")
    torch_sps = rows.get("torch", {}).get("sentences_per_sec")
    for v in rows.values():
      if "sentences_per_sec" in v:
        if base:
          v["x_today"] = round(v["sentences_per_sec"] / base, 3)
        if torch_sps:
          v["x_torch"] = round(v["sentences_per_sec"] / torch_sps, 3)
  out = {"what": "study train step (e5-small, 12 layers, batch 8, random order, word embeddings frozen)",
         "steps": args.steps, "pack_length": args.pack_length, "cores": args.cores or "all",
         "machine": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
         "quick": args.quick, "synthetic": args.synthetic, "results": results}
  import benchmarks   # the parent process: this checkout's package
  benchmarks.emit(out, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
