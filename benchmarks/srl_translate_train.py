"""SRL translate-train sets made here, offline: English EWT training part -> Apertium -> eflomal -> projection.

    python benchmarks/srl_translate_train.py --out=~/.cache/mtlws_jax/translated --langs=es,pt,it,fr

1. The English SRL training data exactly as the experiment uses it: the EWT dev file minus the
   20% of sentences held out for model selection (tasks.hold_out, the same seed), written as a
   UP file `srl/en_ewt-train80.conllu`.
2. Its sentences translated with Apertium (`python -m mtlws_jax.projection.translate
   --backend=apertium`): en->es directly, pt / it / fr through Spanish (the chain is recorded).
3. Aligned with eflomal and projected (`python -m mtlws_jax.projection --task=srl --recipe=best
   --pos-tagger=project`: each target word takes the UPOS of its aligned English words) into
   `srl/en2<lang>.train.conllu`, the file name configs/srl_*.py look for under
   --config.data.translated_root.
Writes `srl/translate_train.json` (translator chain, sentence and instance counts, projection
summaries, seconds). The sets are derived from UPB/UD data (CDLA-Sharing, CC BY-NC-SA): they stay
outside the repository.
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


def main() -> None:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--out", default="~/.cache/mtlws_jax/translated",
                  help="root of the sets (configs: --config.data.translated_root=OUT)")
  ap.add_argument("--langs", default="es,pt,it,fr")
  ap.add_argument("--data-dir", default="")
  args = ap.parse_args()
  from configs import common
  from mtlws_jax.data import tasks, upb
  out = pathlib.Path(os.path.expanduser(args.out)) / "srl"
  out.mkdir(parents=True, exist_ok=True)
  c = common.srl(common.base_config())
  c.task = "srl"
  if args.data_dir:
    c.data_dir = args.data_dir
  root = tasks.resolve_data_dir(c)
  ewt = root / c.data.gold.format(folder=c.data.folders["en"], split=c.data.source_train_split, lang="en")
  train, dev = tasks.hold_out(upb.read(ewt), c.data.dev_fraction)
  src = out / "en_ewt-train80.conllu"
  upb.write(src, train)
  summary = {"source": str(ewt), "held_out_for_selection": len(dev), "train_instances": len(train),
             "train_sentences": len({s.origin for s in train}), "langs": {}}
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  for lang in args.langs.split(","):
    tic = time.time()
    tokens = out / f"en2{lang}.tokens.txt"
    p = subprocess.run([sys.executable, "-m", "mtlws_jax.projection.translate", "--backend=apertium",
                        f"--src={src}", "--src-format=upb", "--src-lang=en", f"--tgt-lang={lang}", f"--out={tokens}"],
                       env=env, capture_output=True, text=True)
    if p.returncode:
      raise SystemExit(p.stderr)
    translated = json.loads(p.stdout)
    target = out / f"en2{lang}.train.conllu"
    p = subprocess.run([sys.executable, "-m", "mtlws_jax.projection", "--task=srl", f"--src={src}",
                        f"--tgt-tokens={tokens}", "--aligner=eflomal", "--recipe=best", "--pos-tagger=project",
                        f"--out={target}"], env=env, capture_output=True, text=True)
    if p.returncode:
      raise SystemExit(p.stderr)
    summary["langs"][lang] = {"translator": translated["translator"], "translation": translated,
                              "projection": json.loads(p.stdout), "seconds": round(time.time() - tic, 1)}
    print(lang, summary["langs"][lang]["translator"], summary["langs"][lang]["projection"].get("instances_out"),
          file=sys.stderr, flush=True)
  text = json.dumps(summary, indent=2)
  (out / "translate_train.json").write_text(text + "\n")
  print(text)


if __name__ == "__main__":
  main()
