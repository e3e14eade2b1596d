#!/bin/bash
# The NER study's last row, MTL at equal steps (450 = 300 + the Reptile warmup's 150 inner steps),
# over the 3 paired seeds: bash results/study_ner_cpu/chain_mtl_eq.sh   (finished runs are skipped)
set -e
. .venv/bin/activate
W=results/study_ner_cpu/workdir
for s in 0 1 2; do
  python run.py --config=configs/study_ner_cpu.py --workdir=$W --config.progress=False \
    --config.seeds=$s --config.method=mtl_eq
done
