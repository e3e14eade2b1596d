#!/bin/bash
# The NER study at 900 steps, all seeds of the config, in two lists for two cores (disjoint,
# resumable: finished runs are skipped). Seed 0's committed runs were started one by one beside the
# ABSA study (logs chain_b.log, zero_shot.log, zs_eq.log); seeds 1-2 by chain_seed.sh (seed1.log, seed2.log):
#   bash results/study_ner_cpu_long/chain.sh a    # ZERO-SHOT, then ZERO-SHOT at equal steps
#   bash results/study_ner_cpu_long/chain.sh b    # the Nesterov warmup
set -e
. .venv/bin/activate
W=results/study_ner_cpu_long/workdir
step() { python run.py --config=configs/study_ner_cpu_long.py --workdir=$W --config.progress=False "$@"; }
if [ "$1" = b ]; then
  step --config.method=ws_nesterov
else
  step --config.method=zero_shot
  step --config.method=zs_eq
fi
