#!/bin/bash
# The ABSA study in the order that answers the main question first (resumable: finished runs are
# skipped). Run from the repository root: nice -n 10 bash results/study_absa_cpu/chain.sh
set -e
. .venv/bin/activate
W=results/study_absa_cpu/workdir
step() { python run.py --config=configs/study_absa_cpu.py --workdir=$W --config.progress=False "$@"; }
step --config.seeds=0 --config.method=ws_reptile,zs_eq
step --config.seeds=1 --config.method=zero_shot,ws_reptile,zs_eq
step --config.seeds=2 --config.method=zero_shot,ws_reptile,zs_eq
step --config.seeds=1 --config.method=ws_eq7,mtl
step --config.seeds=2 --config.method=ws_eq7,mtl
step --config.seeds=0 --config.method=ws_adam,ws_nesterov,mtl_eq
