#!/bin/bash
# Rebuilds the warmup study's tables that README quotes, from the committed workdirs' saved
# predictions (no model needed; seconds each): bash results/study_tables.sh
# Each report also rewrites its workdir's results.md / results.json / plots: the ZERO-SHOT-baseline
# report runs last, so those hold the differences to ZERO-SHOT.
set -e
. .venv/bin/activate
report() { python -m mtlws_jax.eval.report "$@"; }
ROWS=zero_shot,mtl,ws_eq7,ws_adam,ws_reptile,ws_nesterov,zs_eq,mtl_eq
# pair STUDY ROWS SEEDS NAME: from STUDY/workdir, STUDY/seeds<SEEDS>_NAME.md against ZERO-SHOT and
# STUDY/seeds<SEEDS>_vs_equal_steps.md against ZERO-SHOT at equal steps (file names follow the seed list)
pair() {
  local s="$1/seeds${3//,/}"
  report $1/workdir --rows=$2 --seeds=$3 --baseline=zs_eq > ${s}_vs_equal_steps.md
  report $1/workdir --rows=$2 --seeds=$3 > ${s}$4.md
}
# every row over the first 3 seeds; first, so that each workdir's results.md ends with its key rows
# over every finished seed
for t in absa ner; do pair results/study_${t}_cpu $ROWS 0,1,2 _all_rows; done
# Issue 23: the rows that answer the question, over every seed finished so far (the seed chain adds them)
KEY=zero_shot,mtl,ws_eq7,ws_reptile,ws_nesterov,zs_eq,mtl_eq
pair results/study_absa_cpu $KEY 0,1,2,3,4,5,6,7 _key_rows
pair results/study_ner_cpu $KEY 0,1,2,3,4,5,6,7 _key_rows
# the paper's budget (configs/study_absa_paper_cpu.py): seeds as they finish
P=results/study_absa_paper_cpu
pair $P zero_shot,ws_nesterov,mtl,zs_eq 0,1,2,3,4 ""
W=results/study_ner_cpu_long/workdir
report $W --rows=zero_shot,ws_nesterov,zs_eq --seeds=0,1,2 --baseline=zs_eq > results/study_ner_cpu_long/vs_equal_steps.md
report $W --rows=zero_shot,ws_nesterov,zs_eq --seeds=0,1,2 > results/study_ner_cpu_long/results_vs_zero_shot.md
