"""The warmup study on ABSA at the paper's adaptation budget, on this CPU (issue 23).

    python run.py --config=configs/study_absa_paper_cpu.py --workdir=results/study_absa_paper_cpu/workdir

Does the warmup pay near convergence? The paper's ABSA schedule (Table 6 / A.2: batch 8, 1,500
steps, selection on English dev every 100 steps from step 1,000) with every parameter trained: the
word embeddings by Adam over the rows each batch touches (train.embedding_update=rows: the same
update as dense Adam for the rows a batch uses, without reading the 250k-row table every step),
and the GPU study's recipe (configs/study_absa_gpu.py: encoder 5e-5 as in the paper, head at 20x,
150 linear warmup steps). The warmup is the CPU study's (Z=10 x K=5 SGD steps per language; the
paper's Z=100 x K=20 would cost 8,000 inner steps per seed here): rows ZERO-SHOT, MTL, MTL-WS with
the short budget's best warmup (Nesterov) and ZERO-SHOT trained 200 steps longer, 5 paired seeds.
"""

from configs import common


def get_config():
  c = common.cpu_study(common.absa(common.base_config()))
  c.task = "absa"
  c.target_langs = ("fr", "es", "nl", "ru")
  c.seeds = (0, 1, 2, 3, 4)
  c.method = "zero_shot,mtl,ws_nesterov,zs_eq"
  c.variants.zs_eq.equal_steps_to = "ws_nesterov"
  c.train.freeze = ""
  c.train.embedding_update = "rows"
  c.train.learning_rate = 5e-5
  c.train.head_lr_scale = 20.0
  c.train.max_steps = 1500
  c.train.lr_warmup_steps = 150
  c.selection.eval_every = 100
  c.selection.eval_after = 1000
  c.data.pad_multiple = 8
  c.checkpoint_every = 500         # a killed run resumes from its last 500 steps
  return c
