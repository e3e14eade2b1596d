#!/bin/bash
# Rebuilds the warmup study's tables that README quotes, from the committed workdirs' saved
# predictions (no model needed; seconds each): bash results/study_tables.sh
# Each report also rewrites its workdir's results.md / results.json / plots: the ZERO-SHOT-baseline
# report runs last, so those hold the differences to ZERO-SHOT.
set -e
. .venv/bin/activate
report() { python -m mtlws_jax.eval.report "$@"; }
ROWS=zero_shot,mtl,ws_eq7,ws_adam,ws_reptile,ws_nesterov,zs_eq,mtl_eq
# Issue 23: the rows that answer the question, over every seed finished so far (the seed chain adds them)
KEY=zero_shot,mtl,ws_eq7,ws_reptile,ws_nesterov,zs_eq,mtl_eq
W=results/study_absa_cpu/workdir
report $W --rows=$KEY --seeds=0,1,2,3,4 --baseline=zs_eq > results/study_absa_cpu/seeds01234_vs_equal_steps.md
report $W --rows=$KEY --seeds=0,1,2,3,4 > results/study_absa_cpu/seeds01234_key_rows.md
W=results/study_ner_cpu/workdir
report $W --rows=$KEY --seeds=0,1,2,3 --baseline=zs_eq > results/study_ner_cpu/seeds0123_vs_equal_steps.md
report $W --rows=$KEY --seeds=0,1,2,3 > results/study_ner_cpu/seeds0123_key_rows.md
# the paper's budget (configs/study_absa_paper_cpu.py): seeds as they finish
P=results/study_absa_paper_cpu
report $P/workdir --rows=zero_shot,ws_nesterov,mtl,zs_eq --seeds=0,1,2,3,4 --baseline=zs_eq > $P/seeds01234_vs_equal_steps.md
report $P/workdir --rows=zero_shot,ws_nesterov,mtl,zs_eq --seeds=0,1,2,3,4 > $P/seeds01234.md
for t in absa ner; do
  W=results/study_${t}_cpu/workdir
  report $W --rows=$ROWS --seeds=0,1,2 --baseline=zs_eq > results/study_${t}_cpu/seeds012_vs_equal_steps.md
  report $W --rows=$ROWS --seeds=0,1,2 > results/study_${t}_cpu/seeds012_all_rows.md
done
W=results/study_ner_cpu_long/workdir
report $W --rows=zero_shot,ws_nesterov,zs_eq --seeds=0,1,2 --baseline=zs_eq > results/study_ner_cpu_long/vs_equal_steps.md
report $W --rows=zero_shot,ws_nesterov,zs_eq --seeds=0,1,2 > results/study_ner_cpu_long/results_vs_zero_shot.md
