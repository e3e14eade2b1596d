"""The warmup study on ABSA at the paper's budget, for a lent GPU (issue 11).

    python run.py --config=configs/study_absa_gpu.py --workdir=runs/study_absa_gpu
    (on a lent H200: bash benchmarks/device_absa_paper_budget.sh SECONDS, CONFIG=configs/study_absa_gpu.py)

The paper's mBERT ABSA settings (Table 6 / A.2: batch 8, 1500 steps, selection every 100 steps
from 1000, warmup Z=100 x K=20 SGD steps at beta=1e-3) on the offline e5-small, all 12 layers and
all parameters trained, with the robust recipe of the CPU study (encoder 5e-5 as in the paper,
the head at 20x, linear schedule with 150 warmup steps, clipping 1.0, no decay on biases and
LayerNorm); the same rows and pairing as configs/study_absa_cpu.py. The equal-steps rows train
Z x K x |L| = 8,000 steps longer: the warmup's true cost.
"""

from configs import common


def get_config():
  c = common.cpu_study(common.absa(common.paper_config("absa", "mbert")))
  c.task = "absa"
  c.target_langs = ("fr", "es", "nl", "ru")
  c.seeds = (0, 1, 2, 3, 4)
  c.train.freeze = ""               # all parameters (the GPU affords Adam over the embeddings)
  c.train.learning_rate = 5e-5
  c.train.head_lr_scale = 20.0
  c.train.max_steps = 1500
  c.train.lr_warmup_steps = 150
  c.train.eval_batch_size = 128
  c.selection.eval_every = 100
  c.selection.eval_after = 1000
  c.selection.curve_every = 100
  c.warmup.epochs = 100
  c.warmup.steps = 20
  c.warmup.strategy = "vmap"
  c.data.pad_multiple = 64
  c.checkpoint_every = 1500
  c.progress = False
  c.tensorboard = False
  return c
