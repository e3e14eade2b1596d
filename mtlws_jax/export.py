"""Export a finished run as a Hugging Face token-classification folder.

  python -m mtlws_jax.export --workdir=DIR [--run=MODEL_ID] [--seed=S] --out=FOLDER

Writes the run's selected parameters as model.safetensors, config.json (BertForTokenClassification
or XLMRobertaForTokenClassification, id2label/label2id in the task's tag set: BIOES for NER and
ABSA) and the tokenizer files, so that `transformers.pipeline("token-classification",
model=FOLDER)` or `AutoModelForTokenClassification.from_pretrained(FOLDER)` in PyTorch predicts
what `python -m mtlws_jax.predict` predicts. --run / --seed default to the best English dev F1.
SRL taggers are refused: they take predicate and POS inputs that a token-classification model
has no place for. Upload the folder with `hf upload USER/NAME FOLDER` (README).
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Sequence

from mtlws_jax.data import taskspec
from mtlws_jax.errors import InputError, argument_parser, main_guard


def export(workdir, out, run: str | None = None, seed: int | None = None) -> dict:
  from mtlws_jax import saved as saved_lib
  from mtlws_jax.models import checkpoints
  out = pathlib.Path(out)
  if out.exists() and (not out.is_dir() or any(out.iterdir())):
    raise InputError("--out exists and is not an empty folder; choose a new one", out)
  r = saved_lib.load(workdir, run, seed)
  if not taskspec.get(r.task).exportable:
    raise InputError("an SRL tagger reads predicate and POS inputs, which a Hugging Face token-"
                     "classification model has no place for: keep it in its workdir (python -m "
                     "mtlws_jax.predict tags UP files with it)")
  checkpoints.export_hf(r.model, r.tokenizer, r.tags, out)
  info = {"run": r.model_id, "seed": r.seed, "step": r.step, "task": r.task,
          "english_dev_f1": round(100 * r.result["english_dev"], 2),
          "target_test_f1": {l: round(100 * v["f1"], 2) for l, v in r.result["target_test"].items()},
          "workdir": str(r.workdir), "labels": r.tags}
  (out / "mtlws_run.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
  return {"out": str(out), **{k: info[k] for k in ("run", "seed", "step", "english_dev_f1", "target_test_f1")}}


def main(argv: Sequence[str] | None = None) -> int:
  p = argument_parser(prog="python -m mtlws_jax.export", description=__doc__.split("\n")[0])
  p.add_argument("--workdir", required=True)
  p.add_argument("--run", help="model id as in runs/ (default: the best English dev F1)")
  p.add_argument("--seed", type=int)
  p.add_argument("--out", required=True, help="a new folder")
  args = p.parse_args(argv)
  if not args.out.strip():
    p.error("--out is empty: name a new folder")
  print(json.dumps(export(args.workdir, args.out, args.run, args.seed), indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
