"""Speed of `encode.encode` on a real CoNLL file versus one tokenizer call per sentence.

  python benchmarks/encode_speed.py --path=../shared/data/ner/Easy-Label-Projection/original/en/en.conll.train.tsv \
      [--tokenizer=FOLDER | --e5] [--max_length=128 --stride=32] [--naive=1000]

Prints one JSON object: seconds for a cold encode (every distinct word tokenized), a warm one
(word table memoised), the naive per-sentence `tokenizer(words, is_split_into_words=True)` rate on
the first `--naive` sentences, and the window/truncation counts from `encode.summary`.
"""

from __future__ import annotations

import argparse
import json
import time

from mtlws_jax.data import batching
from mtlws_jax.data import conll, encode, vocab


def main() -> None:
  ap = argparse.ArgumentParser()
  ap.add_argument("--path", required=True)
  ap.add_argument("--tokenizer", help="a saved tokenizer folder; default: train_unigram on the file")
  ap.add_argument("--e5", action="store_true", help="the offline multilingual-e5-small tokenizer")
  ap.add_argument("--vocab_size", type=int, default=8000)
  ap.add_argument("--max_length", type=int, default=128)
  ap.add_argument("--stride", type=int, default=32)
  ap.add_argument("--naive", type=int, default=1000)
  args = ap.parse_args()

  sents = conll.read(args.path)
  t0 = time.perf_counter()
  if args.e5:
    from mtlws_jax.models import offline_e5
    tok = offline_e5.build_tokenizer(offline_e5.read_bin())
    name = "offline-e5"
  elif args.tokenizer:
    from transformers import AutoTokenizer
    tok, name = AutoTokenizer.from_pretrained(args.tokenizer), args.tokenizer
  else:
    tok, name = vocab.train_unigram([s.tokens for s in sents], vocab_size=args.vocab_size), f"unigram-{args.vocab_size}"
  t_tok = time.perf_counter() - t0
  tags = sorted({t for s in sents for t in s.tags})
  tag_to_id = {t: i for i, t in enumerate(tags)}

  t0 = time.perf_counter()
  feats = encode.encode(sents, tok, tag_to_id, max_length=args.max_length, stride=args.stride)
  cold = time.perf_counter() - t0
  t0 = time.perf_counter()
  encode.encode(sents, tok, tag_to_id, max_length=args.max_length, stride=args.stride)
  warm = time.perf_counter() - t0
  t0 = time.perf_counter()
  n_batches = sum(1 for _ in batching.batches(feats, 32, shuffle=True, rng=0))
  t_batches = time.perf_counter() - t0

  few = sents[:args.naive]
  t0 = time.perf_counter()
  for s in few:
    e = tok(list(s.tokens), is_split_into_words=True)
    e.word_ids()
  naive = time.perf_counter() - t0

  print(json.dumps({
      "path": args.path, "tokenizer": name, "tokenizer_build_s": round(t_tok, 3), "sentences": len(sents),
      "words": sum(len(s) for s in sents), "distinct_words": len({w for s in sents for w in s.tokens}),
      "max_length": args.max_length, "stride": args.stride,
      "encode_cold_s": round(cold, 3), "encode_warm_s": round(warm, 3),
      "encode_cold_ms_per_sentence": round(1000 * cold / len(sents), 4),
      "naive_ms_per_sentence": round(1000 * naive / max(len(few), 1), 4), "naive_sentences": len(few),
      "batches_32_s": round(t_batches, 3), "batches": n_batches,
      **encode.summary(feats),
  }, indent=1))


if __name__ == "__main__":
  main()
