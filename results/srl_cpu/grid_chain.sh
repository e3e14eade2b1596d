#!/bin/bash
# The SRL grid on Apertium sets, es first (resumable). Run from the repository root:
# nice -n 10 bash results/srl_cpu/grid_chain.sh
set -e
. .venv/bin/activate
[ -f ~/.cache/mtlws_jax/translated/srl/en2es.train.conllu ] || \
  python benchmarks/srl_translate_train.py --out=~/.cache/mtlws_jax/translated --langs=es,pt,it,fr
W=results/srl_cpu/grid
step() { python run.py --config=configs/srl_cpu.py:grid --workdir=$W --config.progress=False "$@"; }
step --config.target_langs=es --config.method=zero_shot,mtl_ws,target_only,bilingual,mtl
