#!/bin/bash
# README "Use your own data", end to end on the example files beside this script:
# English CoNLL file (labels ING, QTY, TOOL) -> Spanish translation (Apertium, offline) ->
# eflomal alignment and span projection -> the method comparison with intervals -> predict, export.
#   bash examples/own_data/run.sh [OUT]        (OUT default runs/own_data; run from the project root)
set -euo pipefail
OUT=${1:-runs/own_data}
EX=examples/own_data
PY=${PYTHON:-python}   # the interpreter of the virtual environment
mkdir -p "$OUT/translated"
# 1. translate the English training sentences (one tokenized sentence per line)
$PY -m mtlws_jax.projection.translate --backend=apertium --src-lang=en --tgt-lang=es \
  --src=$EX/en.train.conll --src-format=conll --out="$OUT/translated/es.train.tok"
# 2. align English and Spanish words (eflomal) and project the spans (paper Eq. 2)
$PY -m mtlws_jax.projection --task=ner --src=$EX/en.train.conll --tgt-tokens="$OUT/translated/es.train.tok" \
  --aligner=eflomal --out="$OUT/translated/en2es.train.conll"
# 3. compare ZERO-SHOT, MTL and MTL-WS on the Spanish test set (3 paired seeds, intervals)
$PY run.py --config=configs/own_data.py --workdir="$OUT/workdir" \
  --config.data.translated_root="$OUT/translated"
# 4. tag new Spanish text with the selected model, and export it for transformers
printf 'Corta el pan con el cuchillo .\nAñade dos tazas de leche al bol .\n' > "$OUT/new.txt"
$PY -m mtlws_jax.predict --workdir="$OUT/workdir" --input="$OUT/new.txt" --input-format=text --lang=es \
  --output="$OUT/new.tagged.jsonl" --format=jsonl
$PY -m mtlws_jax.export --workdir="$OUT/workdir" --out="$OUT/exported"
