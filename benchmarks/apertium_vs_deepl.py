"""What a free offline translator costs: NER en->es translate-train with Apertium vs the ready DeepL set.

    python benchmarks/apertium_vs_deepl.py --out=benchmarks/results/apertium_vs_deepl_cpu.json \
        --work=results/apertium_vs_deepl [--seeds=0,1,2] [--steps=300]

1. Apertium (eng-spa, `python -m mtlws_jax.projection.translate --backend=apertium`) translates the
   14,041 English CoNLL-2003 training sentences, each on its own (half of them end without
   punctuation: headlines, bylines, datelines); eflomal aligns them and the default projection
   recipe carries the entities over (`python -m mtlws_jax.projection --task=ner`).
2. chrF (sacrebleu) of the Apertium translations against the DeepL ones of the data's
   Easy-Label-Projection set (detokenized, sentence i against sentence i).
3. TARGET-ONLY es trained on each set with the study's CPU recipe (configs/study_ner_cpu.py: all 12
   e5 layers, 300 steps), the same seeds (paired: same head, dropout and draw order), scored on
   the Spanish CoNLL-2002 test set; the difference with a 95% paired bootstrap over test sentences
   and, with several seeds, the seed-level intervals of eval.bootstrap (training noise included).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(cmd, **kw):
  p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), **kw)
  if p.returncode:
    raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{p.stderr[-3000:]}")
  return p.stdout


def set_stats(en_train, apertium, deepl) -> dict:
  """Sentences, tokens and entity spans of the English source and of both translate-train sets."""
  out = {}
  for name, path in (("english", en_train), ("apertium", apertium), ("deepl", deepl)):
    got = json.loads(run([sys.executable, "-m", "mtlws_jax.data.stats", "--task=ner", "--format=conll", f"--path={path}"]))
    out[name] = {k: got[k] for k in ("sentences", "tokens", "spans", "labels")}
  return out


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", required=True)
  ap.add_argument("--work", required=True, help="workdirs and the Apertium set go here")
  ap.add_argument("--seeds", default="0,1,2")
  ap.add_argument("--steps", type=int, default=300)
  ap.add_argument("--data-dir", default="")
  args = ap.parse_args()
  from configs import common
  from mtlws_jax.data import conll, tasks
  work = pathlib.Path(args.work).absolute()
  sets = work / "translated"
  c = common.ner(common.base_config())
  c.task = "ner"
  if args.data_dir:
    c.data_dir = args.data_dir
  root = tasks.resolve_data_dir(c)
  en_train = root / c.data.gold.format(lang="en", split="train")
  deepl = root / c.data.translated.format(lang="es")
  out: dict = {"what": __doc__.split("\n")[0], "seeds": args.seeds, "steps": args.steps}
  # 1. the Apertium set, in the layout configs expect under data.translated_root
  target = sets / c.data.translated.format(lang="es")
  target.parent.mkdir(parents=True, exist_ok=True)
  tokens = sets / "apertium.en2es.tokens.txt"
  tic = time.time()
  if not target.exists():
    tr = json.loads(run([sys.executable, "-m", "mtlws_jax.projection.translate", "--backend=apertium",
                         f"--src={en_train}", "--src-format=conll", "--tgt-lang=es", f"--out={tokens}"]))
    proj = json.loads(run([sys.executable, "-m", "mtlws_jax.projection", "--task=ner", f"--src={en_train}",
                           f"--tgt-tokens={tokens}", "--aligner=eflomal", f"--out={target}"]))
    out["apertium_set"] = {"translation": tr, "projection": proj, "seconds": round(time.time() - tic, 1)}
    (sets / "apertium_set.json").write_text(json.dumps(out["apertium_set"], indent=2) + "\n")
  elif (sets / "apertium_set.json").exists():   # a set made by an earlier call: its record, read back
    out["apertium_set"] = json.loads((sets / "apertium_set.json").read_text())
  out["sets"] = set_stats(en_train, target, deepl)
  # 2. chrF against DeepL
  import sacrebleu
  from mtlws_jax.projection import align
  from mtlws_jax.projection.translate import detokenize
  ours = [detokenize(t, "es") for t in align.read_tokenized(tokens)]
  ref = [detokenize(s.tokens, "es") for s in conll.read(deepl)]
  if len(ref) == len(ours):
    chrf = sacrebleu.corpus_chrf(ours, [ref])
    out["chrf_vs_deepl"] = {"score": round(chrf.score, 2), "sentences": len(ours), "signature": str(chrf.get_signature())
                            if hasattr(chrf, "get_signature") else "chrF2"}
  # 3. TARGET-ONLY es on each set, paired seeds
  workdirs = {"deepl": work / "to_deepl", "apertium": work / "to_apertium"}
  for name, wd in workdirs.items():
    cmd = [sys.executable, str(ROOT / "run.py"), "--config=" + str(ROOT / "configs" / "study_ner_cpu.py"),
           f"--workdir={wd}", "--config.method=target_only", "--config.target_langs=es", f"--config.seeds=({args.seeds},)",
           f"--config.train.max_steps={args.steps}", "--config.progress=False",
           # padded rows, as the committed DeepL runs were made: the same dropout masks, so the pairing is exact
           "--config.data.batch_layout=padded"]
    if args.data_dir:
      cmd.append(f"--config.data_dir={args.data_dir}")
    if name == "apertium":
      cmd.append(f"--config.data.translated_root={sets}")
    run(cmd)
  from mtlws_jax import runfolder as W
  from mtlws_jax.eval import bootstrap, metrics
  gold = tasks.to_scheme(conll.read(root / c.data.gold.format(lang="es", split="test")), "bioes", "es test")
  seeds = [int(s) for s in args.seeds.split(",")]
  import numpy as np
  counts, f1, secs = {}, {}, {}
  for name, wd in workdirs.items():
    per = []
    for s in seeds:
      folder = W.run_folder(wd, "target_only-es", s)
      per.append(metrics.sentence_counts("ner", gold, W.read_predictions(folder)["splits"]["test:es"]))
      f1.setdefault(name, []).append(round(100 * W.read_result(folder)["target_test"]["es"]["f1"], 2))
      secs[name] = secs.get(name, 0) + (W.read_seconds(folder) or 0)
    counts[name] = np.stack(per)
  # the runs' own wall time (timing.json), not this call's: a later call skips finished runs
  out["seconds"] = {name: round(v, 1) for name, v in secs.items()}
  pair = {"es": (counts["apertium"], counts["deepl"])}
  diff = bootstrap.paired_difference(pair)["es"]
  out["target_only_es_test_f1"] = {name: {"per_seed": v, "mean": round(float(np.mean(v)), 2),
                                          "std": round(float(np.std(v, ddof=1)), 2) if len(v) > 1 else None}
                                   for name, v in f1.items()}
  out["apertium_minus_deepl"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in diff.items()}
  if len(seeds) > 1:   # with training noise: seeds and sentences resampled together; t over the seeds
    level = bootstrap.seed_level(pair)["es"]
    out["apertium_minus_deepl_over_seeds"] = {k: (round(v, 4) if k == "p_seeds" else round(v, 2))
                                              if isinstance(v, float) else v for k, v in level.items()
                                              if k not in ("diff", "per_seed")}
  text = json.dumps(out, indent=2)
  pathlib.Path(args.out).write_text(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
