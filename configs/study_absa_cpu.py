"""The warmup study on ABSA (issue 11): English -> fr, es, nl, ru on this CPU, 3 paired seeds.

    python run.py --config=configs/study_absa_cpu.py --workdir=results/study_absa_cpu/workdir

Budget (configs/common.cpu_study): all 12 layers of the offline e5-small, 300 steps of batch 8 per
model (1.5 epochs of the 1,600 English sentences), linear lr 1e-4 with 30 warmup steps, the head at
1e-3, selection on the 400 English dev sentences every 100 steps from step 100; warmups of 10 x 5
SGD steps x 4 languages = 200 inner steps; full target test sets.
"""

from configs import common


def get_config():
  c = common.cpu_study(common.absa(common.base_config()))
  c.task = "absa"
  c.target_langs = ("fr", "es", "nl", "ru")
  c.train.max_steps = 300
  c.train.lr_warmup_steps = 30
  c.selection.eval_every = 100
  c.selection.eval_after = 100
  c.checkpoint_every = 300         # one checkpoint per model (resume at the run level)
  return c
