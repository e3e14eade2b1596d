"""The warmup study on NER (issue 11): English -> es, de, nl on this CPU, 3 paired seeds.

    python run.py --config=configs/study_ner_cpu.py --workdir=results/study_ner_cpu/workdir

Translated sets: the data's ready DeepL + AWESOME-align translate-train sets. Budget
(configs/common.cpu_study): all 12 layers of the offline e5-small, 300 steps of batch 8 per model
(2,400 of the 14,041 English sentences), linear lr 1e-4 with 30 warmup steps, the head at 1e-3,
selection on the first 1,000 English dev sentences every 100 steps from step 100; warmups of
10 x 5 SGD steps x 3 languages = 150 inner steps; the first 2,000 sentences of each target test
set (es has 1,517; de 3,005 and nl 5,195 are cut to fit the CPU time: the paired intervals are
computed on these). Rows as the ABSA study (MTL at equal steps, 450 steps, ran last:
results/study_ner_cpu/chain_mtl_eq.sh).
"""

from configs import common


def get_config():
  c = common.cpu_study(common.ner(common.base_config()))
  c.task = "ner"
  c.target_langs = ("es", "de", "nl")
  c.train.max_steps = 300
  c.train.lr_warmup_steps = 30
  c.selection.eval_every = 100
  c.selection.eval_after = 100
  c.data.max_source_dev_sentences = 1000
  c.data.max_eval_sentences = 2000
  c.checkpoint_every = 300
  return c
