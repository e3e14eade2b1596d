#!/bin/bash
# The ABSA study's remaining runs, split over two cores (disjoint lists, so two copies never train
# the same run): bash results/study_absa_cpu/chain_rest.sh a|b   (resumable: finished runs are skipped)
set -e
. .venv/bin/activate
W=results/study_absa_cpu/workdir
step() { python run.py --config=configs/study_absa_cpu.py --workdir=$W --config.progress=False "$@"; }
if [ "$1" = b ]; then
  for s in 1 2; do step --config.seeds=$s --config.method=ws_nesterov; done
  for s in 1 2; do step --config.seeds=$s --config.method=ws_adam; done
  step --config.seeds=0 --config.method=mtl_eq
else
  for s in 1 2; do step --config.seeds=$s --config.method=mtl; done
  step --config.seeds=2 --config.method=ws_eq7
  for s in 1 2; do step --config.seeds=$s --config.method=mtl_eq; done
fi
