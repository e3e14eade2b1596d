#!/bin/bash
# Issue 23: ABSA at the paper's 1,500 steps, every parameter trained (configs/study_absa_paper_cpu.py),
# 5 paired seeds, seed by seed, resumable (finished runs are skipped; a killed run resumes from its
# last checkpoint). Run from the project root, on one core at low priority:
#   taskset -c 0 nice -n 10 bash results/study_absa_paper_cpu/chain.sh 0 1 2 3 4
# Workdir: $W (default results/study_absa_paper_cpu/workdir); tables: bash results/study_tables.sh
set -e
# every run.py goes through results/chains/one_at_a_time.sh: one study model at a time across chains
. .venv/bin/activate
W=${W:-results/study_absa_paper_cpu/workdir}
for s in "$@"; do
  for m in zero_shot ws_nesterov mtl zs_eq; do
    [ -f "$W/runs/$m/seed$s/result.json" ] && continue   # finished: skipped without waiting for the lock
    bash results/chains/one_at_a_time.sh python run.py --config=configs/study_absa_paper_cpu.py --workdir=$W --config.progress=False \
      --config.seeds=$s --config.method=$m
  done
done
