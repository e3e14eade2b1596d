"""Word alignment and label projection: quality and speed on the shared data, JSON out.

  python benchmarks/projection_quality.py [--data-dir=DIR] [--out=FILE.json] [--parts=aer,absa,ner]
      [--ner-langs=es,de,nl] [--max-sentences=N]

--max-sentences keeps the first N sentence pairs of the ABSA and NER sets (quick runs; eflomal
aligns worse with less text, so quality numbers fall too).

aer:  AER of eflomal (seed 0) on the gold alignments in alignment/: Europarl en-pt (100 pairs,
      alone and with the 14041 en->es NER translations as extra text - there is no en-pt
      parallel text here, so the extra text only shares the English side), the WPT Hansards
      trial en-fr (37 pairs, alone) and the SimAlign sample en-de (5 pairs, alone and with the
      14041 en->de NER translations).
absa: project the 2000 English ABSA spans of absa/Easy-Label-Projection onto the human DeepL
      translation and compare with the human projection (span P/R/F1, IOB2, exact match), for
      span-to-span (Eq. 2), span-to-span with foreign-link trimming, and word-to-word, under
      several alignment set-ups (the plain baseline first).
ner:  strip the labels of the ready en->{es,de,nl} DeepL NER sets (projected by AWESOME-align),
      align with eflomal and project the English gold spans; span agreement (P/R/F1 taking
      theirs as reference) and throughput of align+project in sentences per second.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import benchmarks  # noqa: E402
from mtlws_jax.data import conll, corpora  # noqa: E402
from mtlws_jax.data.schemes import spans_to_tags, tags_to_spans  # noqa: E402
from mtlws_jax.eval.metrics import span_prf  # noqa: E402
from mtlws_jax.projection import aer as E  # noqa: E402
from mtlws_jax.projection import align as A  # noqa: E402
from mtlws_jax.projection import project as P  # noqa: E402

NER = "ner/Easy-Label-Projection"
ARTEFACTS = {("-OCSTART-",), ("-",)}  # one-token MT artefacts of -DOCSTART- lines (data README)


def log(*a):
  print(*a, file=sys.stderr, flush=True)


def _prf(gold_tags, pred_tags, scheme="iob2") -> dict:
  r = span_prf(gold_tags, pred_tags, scheme=scheme)
  r = r.get("overall", r)
  return {k: round(r[k], 4) for k in ("precision", "recall", "f1")}


def ner_pair(data: pathlib.Path, lang: str):
  """English NER train and its DeepL translation with the MT artefact sentences removed."""
  en = conll.read(data / NER / "original/en/en.conll.train.tsv")
  tgt = conll.read(data / NER / f"automatic_projections/en2{lang}/DeepL.50000.awesome.train.tsv")
  removed = len(tgt) - len(en)
  if removed:
    tgt = [s for s in tgt if s.tokens not in ARTEFACTS]
  if len(tgt) != len(en):
    raise RuntimeError(f"en2{lang}: {len(tgt)} sentences after removing artefacts, expected {len(en)}")
  return en, tgt, removed


def _links_all(src, tgt, config, extra=((), ())):
  t = time.perf_counter()
  fwd, rev = A.eflomal_links(src, tgt, extra_src=extra[0], extra_tgt=extra[1], config=config)
  return fwd, rev, time.perf_counter() - t


def part_aer(data: pathlib.Path) -> dict:
  out = {}
  al = data / "alignment"
  cfg = A.EflomalConfig(seed=0)
  en_es = ner_pair(data, "es")
  extra_es = ([s.tokens for s in en_es[0]], [s.tokens for s in en_es[1]])

  recs = [json.loads(l) for l in open(al / "europarl-golden/pt_golden.jsonl", encoding="utf-8")]
  src, tgt = [r["src_words"] for r in recs], [r["tgt_words"] for r in recs]
  gold = E.read_gold(al / "europarl-golden/pt_golden.jsonl")
  for name, extra in (("alone", ((), ())), ("with_14041_en-es_NER_pairs", extra_es)):
    fwd, rev, secs = _links_all(src, tgt, cfg, extra)
    out[f"europarl_en-pt_{name}"] = {
        sym: {k: round(v, 4) if isinstance(v, float) else v
              for k, v in E.aer(gold, [A.symmetrize(f, r, sym) for f, r in zip(fwd, rev)]).items()}
        for sym in ("grow-diag-final-and", "intersection", "union")}
    out[f"europarl_en-pt_{name}"]["seconds"] = round(secs, 1)
    log("aer europarl", name, out[f"europarl_en-pt_{name}"]["grow-diag-final-and"])

  def wpt_text(path):
    import re
    return [re.sub(r"^<s snum=\d+>\s*|\s*</s>\s*$", "", l.strip()).split() for l in open(path, encoding="latin-1")]
  src, tgt = wpt_text(al / "hansards-trial/trial.e"), wpt_text(al / "hansards-trial/trial.f")
  gold = E.read_gold(al / "hansards-trial/trial.wa", snums=E.read_wpt_snums(al / "hansards-trial/trial.e"))
  fwd, rev, _ = _links_all(src, tgt, cfg)
  out["hansards_en-fr_alone"] = {k: round(v, 4) if isinstance(v, float) else v
                                 for k, v in E.aer(gold, [A.symmetrize(f, r) for f, r in zip(fwd, rev)]).items()}

  def ids_text(path):
    return [l.rstrip("\n").split("\t", 1)[1].split() for l in open(path, encoding="utf-8")]
  src, tgt = ids_text(al / "simalign-sample/sample_eng.txt"), ids_text(al / "simalign-sample/sample_deu.txt")
  gold = E.read_gold(al / "simalign-sample/sample_eng_deu.gold")
  en_de = ner_pair(data, "de")
  for name, extra in (("alone", ((), ())),
                      ("with_14041_en-de_NER_pairs", ([s.tokens for s in en_de[0]], [s.tokens for s in en_de[1]]))):
    fwd, rev, _ = _links_all(src, tgt, cfg, extra)
    out[f"simalign_en-de_{name}"] = {k: round(v, 4) if isinstance(v, float) else v
                                     for k, v in E.aer(gold, [A.symmetrize(f, r) for f, r in zip(fwd, rev)]).items()}
    log("aer simalign", name, out[f"simalign_en-de_{name}"])
  return out


def _project_all(en, tgt, links, strategy, trim=False):
  pred, drops = [], {}
  for s, t, l in zip(en, tgt, links):
    pr = P.project_spans(tags_to_spans(s.tags, s.scheme), l, len(t), strategy=strategy, trim_foreign=trim)
    pred.append(spans_to_tags(pr.spans, len(t), "iob2"))
    for r, n in pr.dropped_counts().items():
      drops[r] = drops.get(r, 0) + n
  return pred, drops


def part_absa(data: pathlib.Path, max_sentences: int = 0) -> dict:
  en = conll.read(data / "absa/Easy-Label-Projection/original/en/en.absa.train.tsv")
  es = conll.read(data / "absa/Easy-Label-Projection/manual_projections/en2es/DeepL.Iker.train.tsv", tag_column=1)
  if max_sentences:
    en, es = en[:max_sentences], es[:max_sentences]
  src, tgt = [s.tokens for s in en], [s.tokens for s in es]
  gold = [list(s.tags) for s in es]
  ner_en, ner_es, _ = ner_pair(data, "es")
  extra = ([s.tokens for s in ner_en], [s.tokens for s in ner_es])
  setups = [
      ("baseline: eflomal, 2000 pairs", A.EflomalConfig(seed=0), ((), ())),
      ("split attached punctuation", A.EflomalConfig(seed=0, split_punct=True), ((), ())),
      ("split punctuation + 14041 en-es NER pairs", A.EflomalConfig(seed=0, split_punct=True), extra),
  ]
  out = {"pairs": len(en), "gold_spans": sum(len(tags_to_spans(g, "iob2")) for g in gold), "setups": []}
  for name, cfg, ex in setups:
    fwd, rev, secs = _links_all(src, tgt, cfg, ex)
    row = {"setup": name, "align_seconds": round(secs, 1)}
    for sym in ("grow-diag-final-and", "intersection", "union"):
      links = [A.symmetrize(f, r, sym) for f, r in zip(fwd, rev)]
      for strategy, trim in (("span", False), ("span", True), ("word", False)):
        pred, drops = _project_all(en, es, links, strategy, trim)
        key = f"{sym}/{strategy}{'+trim_foreign' if trim else ''}"
        row[key] = dict(_prf(gold, pred), dropped=drops)
    out["setups"].append(row)
    log("absa", name, {k: v["f1"] for k, v in row.items() if isinstance(v, dict)})
  return out


def part_ner(data: pathlib.Path, langs, max_sentences: int = 0) -> dict:
  out = {}
  for lang in langs:
    en, tgt, removed = ner_pair(data, lang)
    if max_sentences:
      en, tgt = en[:max_sentences], tgt[:max_sentences]
    src_tok, tgt_tok = [s.tokens for s in en], [s.tokens for s in tgt]
    theirs = [list(s.tags) for s in tgt]
    res = {"pairs": len(en), "artefact_sentences_removed": removed}
    setups = [("split_punct", A.EflomalConfig(seed=0, split_punct=True))]
    if lang == "es":
      setups.insert(0, ("baseline", A.EflomalConfig(seed=0)))
    for name, cfg in setups:
      t0 = time.perf_counter()
      fwd, rev = A.eflomal_links(src_tok, tgt_tok, config=cfg)
      t1 = time.perf_counter()
      row = {"eflomal_seconds": round(t1 - t0, 1)}
      for sym in ("grow-diag-final-and", "union"):
        t2 = time.perf_counter()
        links = [A.symmetrize(f, r, sym) for f, r in zip(fwd, rev)]
        t3 = time.perf_counter()
        pred, drops = _project_all(en, tgt, links, "span")
        t4 = time.perf_counter()
        trimmed, _ = _project_all(en, tgt, links, "span", trim=True)
        word, _ = _project_all(en, tgt, links, "word")
        row[sym] = {
            "span_agreement": _prf(theirs, pred), "span+trim_foreign_agreement": _prf(theirs, trimmed),
            "word_agreement": _prf(theirs, word), "dropped": drops,
            "symmetrize_seconds": round(t3 - t2, 2), "project_seconds": round(t4 - t3, 2),
            # eflomal (both directions) + symmetrization + span-to-span projection
            "align_project_sentences_per_second": round(len(en) / (t1 - t0 + t4 - t2), 1),
        }
      res[name] = row
      log("ner", lang, name, row)
    out[f"en2{lang}"] = res
  return out


def main() -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data-dir", default=None)
  p.add_argument("--out", default=None, help="JSON file (default: stdout only)")
  p.add_argument("--parts", default="aer,absa,ner")
  p.add_argument("--ner-langs", default="es,de,nl")
  p.add_argument("--max-sentences", type=int, default=0, help="first N pairs of the ABSA/NER sets (0 = all)")
  args = p.parse_args()
  if args.max_sentences < 0:
    p.error("--max-sentences must be >= 0")
  data = pathlib.Path(args.data_dir) if args.data_dir else corpora.data_dir()
  if data is None:
    print(corpora.MISSING_DATA_HELP, file=sys.stderr)
    return 2
  parts = args.parts.split(",")
  result = {"max_sentences": args.max_sentences, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                        "load_average_at_start": os.getloadavg()[0]}}
  t = time.perf_counter()
  if "aer" in parts:
    result["aer"] = part_aer(data)
  if "absa" in parts:
    result["absa_projection_vs_human"] = part_absa(data, args.max_sentences)
  if "ner" in parts:
    result["ner_agreement_and_throughput"] = part_ner(data, args.ner_langs.split(","), args.max_sentences)
  result["total_seconds"] = round(time.perf_counter() - t, 1)
  benchmarks.emit(result, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
