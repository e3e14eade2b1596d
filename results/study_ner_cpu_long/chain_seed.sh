#!/bin/bash
# Seeds 1 and 2 of the NER study at 900 steps, one chain per seed (one per core, resumable:
# finished runs are skipped):  bash results/study_ner_cpu_long/chain_seed.sh 1
#                              bash results/study_ner_cpu_long/chain_seed.sh 2
set -e
. .venv/bin/activate
W=results/study_ner_cpu_long/workdir
for m in zero_shot ws_nesterov zs_eq; do
  python run.py --config=configs/study_ner_cpu_long.py --workdir=$W --config.progress=False \
    --config.seeds=$1 --config.method=$m
done
