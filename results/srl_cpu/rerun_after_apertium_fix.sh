#!/bin/bash
# The SRL grid on es again, on the Apertium sets remade after the fix (each sentence translated on
# its own; before, sentences without final punctuation ran together): the translated sets, then the
# four rows that read them (ZERO-SHOT reads none and is kept). One model at a time across chains.
# Run from the repository root:  nice -n 10 bash results/srl_cpu/rerun_after_apertium_fix.sh
set -e
. .venv/bin/activate
python benchmarks/srl_translate_train.py --out=~/.cache/mtlws_jax/translated --langs=es,pt,it,fr \
  > benchmarks/results/srl_translate_train_cpu.json
bash results/chains/one_at_a_time.sh python run.py --config=configs/srl_cpu.py:grid --workdir=results/srl_cpu/grid \
  --config.progress=False --config.target_langs=es --config.method=zero_shot,mtl_ws,target_only,bilingual,mtl
python -m mtlws_jax.eval.report results/srl_cpu/grid > results/srl_cpu/grid_es.md
