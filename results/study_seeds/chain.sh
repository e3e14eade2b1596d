#!/bin/bash
# Issue 23: the study's rows that answer the question, extended to 10 paired seeds (3-9), one task
# per core, resumable (finished runs are skipped; a killed run resumes from its checkpoint):
#   taskset -c 0 nice -n 10 bash results/study_seeds/chain.sh absa 3 4 5 6 7 8 9
#   taskset -c 1 nice -n 10 bash results/study_seeds/chain.sh ner 3 4 5 6 7 8 9
# or both tasks on one core, seed by seed: chain.sh absa,ner 3 4 5 6 7 8 9
# Rows, in the order that answers first: ZERO-SHOT, ZERO-SHOT at equal steps, the Nesterov warmup,
# MTL, the Eq. 7 placebo, MTL at equal steps, the Reptile warmup. The runs join the committed
# workdirs (packed batches: data.batch_layout is not part of a workdir's identity, it computes the
# same model; rows rounded to 8 tokens, compiled once into the XLA cache), then: bash results/study_tables.sh
set -e
# every run.py goes through results/chains/one_at_a_time.sh: one study model at a time across chains
. .venv/bin/activate
tasks=$1; shift    # one task, or both seed by seed: absa,ner
R=${R:-results}     # where the study workdirs live
for s in "$@"; do
  for task in ${tasks//,/ }; do
    for m in zero_shot zs_eq ws_nesterov mtl ws_eq7 mtl_eq ws_reptile; do
      # a finished run is skipped here, without waiting for the lock
      [ -f "$R/study_${task}_cpu/workdir/runs/$m/seed$s/result.json" ] && continue
      bash results/chains/one_at_a_time.sh python run.py --config=configs/study_${task}_cpu.py --workdir=$R/study_${task}_cpu/workdir \
        --config.progress=False --config.seeds=$s --config.method=$m --config.data.pad_multiple=8
    done
  done
done
