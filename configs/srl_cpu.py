"""Dependency SRL on real UPB data on this CPU (issues 11 and 12), in two variants:

    python run.py --config=configs/srl_cpu.py --workdir=results/srl_cpu/zero_shot            # ZERO-SHOT, 6 languages
    python run.py --config=configs/srl_cpu.py:grid --workdir=results/srl_cpu/grid            # all five methods
        (translated sets: python benchmarks/srl_translate_train.py, Apertium; --config.data.translated_root)

Budget: the CPU study's recipe (configs/common.cpu_study: all 12 e5-small layers, frozen word
embeddings, encoder 1e-4 with the head, predicate and POS embeddings at 10x, clipping, linear
schedule) with 500 steps of batch 8 (one epoch of the 4,024 training instances: 80% of the
English EWT dev set, the other 20% selects, every 100 steps from 200). "grid": the target
languages Apertium reaches (es directly; pt, it, fr through Spanish), one seed, the MTL-WS
warmup of the study's Reptile row (gamma 1; Z=10 x K=5). ZERO-SHOT is scored on all six UPB
target languages (fr, es, de, it, pt, fi).
"""

import os

from configs import common


def get_config(arg: str = "zero_shot"):
  c = common.cpu_study(common.srl(common.base_config()))
  c.task = "srl"
  c.variants = {}
  c.seeds = (0,)
  c.train.max_steps = 500
  c.train.lr_warmup_steps = 50
  c.selection.eval_every = 100
  c.selection.eval_after = 200
  c.checkpoint_every = 500
  c.data.max_length = 256          # long EWT sentences are windowed beyond this
  c.data.stride = 64
  if arg == "grid":
    c.method = "all"
    c.target_langs = ("es", "pt", "it", "fr")
    c.data.translated_root = os.path.expanduser("~/.cache/mtlws_jax/translated")
    c.warmup.gamma = 1.0           # the study's Reptile row (the paper's 5e-5 does not move the model)
  else:
    c.method = "zero_shot"
    c.target_langs = ("fr", "es", "de", "it", "pt", "fi")
  return c
