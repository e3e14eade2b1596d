#!/bin/bash
# Rebuilds the warmup study's tables that README quotes, from the committed workdirs' saved
# predictions (no model needed; seconds each): bash results/study_tables.sh
# Each report also rewrites its workdir's results.md / results.json / plots: the ZERO-SHOT-baseline
# report runs last, so those hold the differences to ZERO-SHOT.
set -e
. .venv/bin/activate
report() { python -m mtlws_jax.eval.report "$@"; }
ROWS=zero_shot,mtl,ws_eq7,ws_adam,ws_reptile,ws_nesterov,zs_eq,mtl_eq
# pair DIR ROWS SEEDS OUT NAME: OUT/seeds<SEEDS>_NAME.md against ZERO-SHOT and
# OUT/seeds<SEEDS>_vs_equal_steps.md against ZERO-SHOT at equal steps (file names follow the seed list)
pair() {
  local s="seeds${3//,/}"
  report $1 --rows=$2 --seeds=$3 --baseline=zs_eq > $4/${s}_vs_equal_steps.md
  report $1 --rows=$2 --seeds=$3 > $4/${s}$5.md
}
# every row over the first 3 seeds; first, so that each workdir's results.md ends with its key rows
# over every finished seed
for t in absa ner; do pair results/study_${t}_cpu/workdir $ROWS 0,1,2 results/study_${t}_cpu _all_rows; done
# Issue 23: the rows that answer the question, over every seed finished so far (the seed chain adds them)
KEY=zero_shot,mtl,ws_eq7,ws_reptile,ws_nesterov,zs_eq,mtl_eq
pair results/study_absa_cpu/workdir $KEY 0,1,2,3,4,5 results/study_absa_cpu _key_rows
pair results/study_ner_cpu/workdir $KEY 0,1,2,3,4 results/study_ner_cpu _key_rows
# the paper's budget (configs/study_absa_paper_cpu.py): seeds as they finish
P=results/study_absa_paper_cpu
pair $P/workdir zero_shot,ws_nesterov,mtl,zs_eq 0,1,2,3,4 $P ""
W=results/study_ner_cpu_long/workdir
report $W --rows=zero_shot,ws_nesterov,zs_eq --seeds=0,1,2 --baseline=zs_eq > results/study_ner_cpu_long/vs_equal_steps.md
report $W --rows=zero_shot,ws_nesterov,zs_eq --seeds=0,1,2 > results/study_ner_cpu_long/results_vs_zero_shot.md
