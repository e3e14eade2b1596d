#!/bin/bash
# The NER study at 900 steps, one seed, in two lists for two cores (disjoint, resumable; the
# committed runs were started one by one beside the ABSA study: logs chain_b.log, zero_shot.log, zs_eq.log):
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
