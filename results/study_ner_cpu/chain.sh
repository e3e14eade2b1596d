#!/bin/bash
# The NER study, key rows first, one seed at a time (resumable: finished runs are skipped).
# Run from the repository root: nice -n 10 bash results/study_ner_cpu/chain.sh
set -e
. .venv/bin/activate
W=results/study_ner_cpu/workdir
step() { python run.py --config=configs/study_ner_cpu.py --workdir=$W --config.progress=False "$@"; }
step --config.seeds=0 --config.method=zero_shot,ws_reptile,zs_eq
step --config.seeds=1 --config.method=zero_shot,ws_reptile,zs_eq
step --config.seeds=2 --config.method=zero_shot,ws_reptile,zs_eq
step --config.seeds=0,1,2 --config.method=mtl,ws_eq7,ws_adam,ws_nesterov
