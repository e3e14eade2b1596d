"""Which setting makes ABSA fine-tuning of e5-small fall into the all-O plateau? One JSON out.

Issue 11: with Adam 2e-4 (linear schedule, warmup, weight decay 0.01), a seed sat at dev F1 0 (no
span predicted) for hundreds of steps while PyTorch's standard recipe learned. Candidates: length-
bucketed batches, no gradient clipping, weight decay on biases and LayerNorm scales. Each setting
trains ZERO-SHOT on the real English ABSA train set (all 12 e5 layers, word embeddings frozen,
batch 8) for --steps steps and records English dev F1 and the number of predicted spans every
--eval-every steps, per seed.

    python benchmarks/plateau_factors.py --out=results/plateau/plateau_factors.json \
        --settings=old,random,clip_mask,default --seeds=0,1

Settings: old = bucketed, no clipping, decay on all parameters (the defaults before issue 11);
random = old with random batches; clip_mask = old with clipping at 1.0 and no decay on biases and
LayerNorm scales; default = random + clipping + mask (the new defaults). A run is a plateau when
it predicts (almost) no span at an evaluation after the learning-rate warmup.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import shutil
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
SETTINGS = {
    "old": {"data.train_order": "bucketed", "train.grad_clip_norm": 0.0, "train.weight_decay_mask": "all"},
    "random": {"data.train_order": "random", "train.grad_clip_norm": 0.0, "train.weight_decay_mask": "all"},
    "clip_mask": {"data.train_order": "bucketed", "train.grad_clip_norm": 1.0,
                  "train.weight_decay_mask": "no_bias_norm"},
    "clip": {"data.train_order": "bucketed", "train.grad_clip_norm": 1.0, "train.weight_decay_mask": "all"},
    "default": {"data.train_order": "random", "train.grad_clip_norm": 1.0, "train.weight_decay_mask": "no_bias_norm"},
}


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", required=True)
  ap.add_argument("--settings", default="old,random,clip_mask,default")
  ap.add_argument("--seeds", default="0,1")
  ap.add_argument("--steps", type=int, default=300)
  ap.add_argument("--eval-every", type=int, default=50)
  ap.add_argument("--lr", type=float, default=2e-4)
  ap.add_argument("--workdirs", default="", help="keep the workdirs here (checkpoints removed); default: a temp folder")
  args = ap.parse_args()
  sys.path.insert(0, str(ROOT))
  from configs import common
  from mtlws_jax import experiment
  out_path = pathlib.Path(args.out)
  out = json.loads(out_path.read_text()) if out_path.exists() else {
      "what": __doc__.split("\n")[0], "steps": args.steps, "lr": args.lr, "runs": {}}
  root = pathlib.Path(args.workdirs) if args.workdirs else pathlib.Path("/tmp/plateau_factors")
  for name in args.settings.split(","):
    for seed in map(int, args.seeds.split(",")):
      key = f"{name}/seed{seed}"
      if key in out["runs"]:
        continue
      c = common.cpu_reproduction(common.absa(common.base_config()))
      c.task, c.method, c.seeds, c.target_langs = "absa", "zero_shot", (seed,), ("es",)
      c.model.num_layers = 0  # all 12 layers
      c.train.max_steps, c.train.learning_rate = args.steps, args.lr
      c.train.lr_schedule, c.train.lr_warmup_steps, c.train.weight_decay = "linear", args.steps // 10, 0.01
      c.selection.eval_every = c.selection.eval_after = args.eval_every
      c.selection.curve_every, c.checkpoint_every, c.progress = 0, args.steps, False
      c.data.max_eval_sentences, c.data.max_source_dev_sentences = 50, 400  # full English dev
      for k, v in SETTINGS[name].items():
        node, last = c, k.split(".")
        for p in last[:-1]:
          node = node[p]
        node[last[-1]] = v
      work = root / name / f"seed{seed}"
      shutil.rmtree(work, ignore_errors=True)
      tic = time.time()
      experiment.run(c, work, out=io.StringIO())
      lines = [json.loads(l) for l in (work / "runs" / "zero_shot" / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()]
      evals = [{"step": l["step"], "dev_f1": round(100 * l["dev_f1"], 2), "n_pred": int(l["dev_n_pred"])}
               for l in lines if "dev_f1" in l]
      losses = [{"step": l["step"], "train_loss": round(l["train_loss"], 4)} for l in lines if "train_loss" in l]
      after_warmup = [e for e in evals if e["step"] > args.steps // 10]
      out["runs"][key] = {"setting": SETTINGS[name], "seed": seed, "evals": evals, "losses": losses,
                          "plateau_evals": sum(e["n_pred"] < 10 for e in after_warmup),
                          "best_dev_f1": max(e["dev_f1"] for e in evals), "seconds": round(time.time() - tic, 1)}
      shutil.rmtree(work / "runs" / "zero_shot" / f"seed{seed}" / "checkpoints", ignore_errors=True)
      out_path.parent.mkdir(parents=True, exist_ok=True)
      out_path.write_text(json.dumps(out, indent=1) + "\n")
      print(key, out["runs"][key]["best_dev_f1"], [e["dev_f1"] for e in evals], flush=True)


if __name__ == "__main__":
  main()
