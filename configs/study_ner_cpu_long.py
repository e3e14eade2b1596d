"""The NER warmup study at three times the budget (issue 11): does the warmup's gain survive
longer training? English -> es, de, nl on this CPU, 3 paired seeds (1 h 48 min of one core per
seed here, seeds 1-2 side by side: `bash results/study_ner_cpu_long/chain_seed.sh S`).

    python run.py --config=configs/study_ner_cpu_long.py --workdir=results/study_ner_cpu_long/workdir

configs/study_ner_cpu.py with 900 steps instead of 300 (7,200 of the 14,041 English sentences,
linear lr with 90 warmup steps, English dev every 100 steps from step 100), the same warmup
(Z=10 x K=5 x 3 languages = 150 inner SGD steps, now a sixth of the adaptation instead of a
half), and the three rows that answer the question: ZERO-SHOT, the Nesterov warmup (the best at
300 steps) and ZERO-SHOT trained the warmup's 150 steps longer.
"""

from configs import study_ner_cpu


def get_config():
  c = study_ner_cpu.get_config()
  c.seeds = (0, 1, 2)
  c.method = "zero_shot,ws_nesterov,zs_eq"
  c.train.max_steps = 900
  c.train.lr_warmup_steps = 90
  c.checkpoint_every = 900
  return c
