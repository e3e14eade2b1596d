"""ABSA at the paper's full budget, for one GPU (the offline e5-small encoder, all 12 layers).

    python run.py --config=configs/repro_absa_gpu.py --workdir=runs/repro_absa_gpu
    python -m mtlws_jax.eval.report runs/repro_absa_gpu --paper=mbert

The paper's mBERT ABSA settings (appendix Table 6 and A.2; configs/absa_mbert.py): Adam at
5e-5, batch 8, 1500 steps per model, model selection on the English dev set every 100 steps
from step 1000, MTL-WS warmup Z=100 epochs of K=20 inner SGD steps (beta=1e-3) per language
with gamma=5e-5, five seeds; every parameter trained. What differs: the encoder
(multilingual-e5-small, 118M parameters, in place of mBERT, which cannot be downloaded here),
Turkish is left out (no translated tr set in the data), and target dev sets are not scored.
The results in README.md say how many seeds fitted the device time that was lent.
"""

from configs import common


def get_config():
  c = common.absa(common.paper_config("absa", "mbert"))
  c.model.name = "e5-small"
  c.target_langs = ("fr", "es", "nl", "ru")
  c.seeds = (0, 1, 2, 3, 4)
  c.selection.score_target_dev = False
  c.train.eval_batch_size = 128
  c.data.pad_multiple = 64         # few batch shapes: few compiles
  c.checkpoint_every = 1500        # one checkpoint per model, at its end
  c.progress = False
  c.tensorboard = False
  return c
