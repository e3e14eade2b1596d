#!/bin/bash
# Issue 24: translated target dev sets (no gold needed) for choosing a model per language: the
# English dev set translated by Apertium (offline, rule-based: en->es, and en->es->fr through
# Spanish; the only translator here), its spans projected by eflomal alignment + Eq. 2 (the
# projection CLI's default recipe), aligned together with the English training set's Apertium
# translation for more parallel text. Output (not committed: derived from the datasets):
#   results/translated_dev/translated/{absa,ner}/en2{es,fr}.dev.{txt,tsv}
# Run from the project root:  bash results/translated_dev/make.sh
set -euo pipefail
. .venv/bin/activate
D=${MTLWS_DATA_DIR:-../shared/data}
O=results/translated_dev/translated
words() {  # one space-joined sentence per line from a labelled file (FORMAT FILE OUT)
  python -c "import sys; from mtlws_jax.data import absa, conll
r = absa.read if sys.argv[1] == 'absa' else conll.read
open(sys.argv[3], 'w', encoding='utf-8').write(''.join(' '.join(s.tokens) + '\n' for s in r(sys.argv[2])))" "$@"
}
make() {  # TASK FORMAT DEV TRAIN LANG EXT
  local task=$1 fmt=$2 dev=$3 train=$4 lang=$5 ext=$6 out=$O/$1
  mkdir -p $out
  words $fmt $train $out/en.train.tok
  for part in dev train; do
    local src=$dev; [ $part = train ] && src=$train
    python -m mtlws_jax.projection.translate --backend=apertium --src-lang=en --tgt-lang=$lang \
      --src=$src --src-format=$fmt --out=$out/$lang.$part.tok > $out/$lang.$part.translate.json
  done
  python -m mtlws_jax.projection --task=$task --src=$dev --src-format=$fmt --tgt-tokens=$out/$lang.dev.tok \
    --aligner=eflomal --extra-src=$out/en.train.tok --extra-tgt=$out/$lang.train.tok \
    --out=$out/en2$lang.dev.$ext > $out/en2$lang.dev.report.json
}
for lang in es fr; do
  make absa absa $D/absa/XABSA/gold-en-dev.txt $D/absa/XABSA/gold-en-train.txt $lang txt
done
make ner conll $D/ner/Easy-Label-Projection/original/en/en.conll.dev.tsv \
  $D/ner/Easy-Label-Projection/original/en/en.conll.train.tsv es tsv
