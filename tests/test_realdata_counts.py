"""Every NER, ABSA and SRL file of ../shared/data: the README's counts, and byte-identical writing.

Each file is read once: the counts come from `stats` on those records, and the writer must give
the file back byte for byte (so reading the written file gives the same records).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from mtlws_jax.data import absa, conll, stats, textfile, upb

pytestmark = pytest.mark.realdata

# README tables: sentences / entities (NER), sentences / aspect runs (ABSA), sentences / predicates (SRL).
NER = {
    "en": {"train": (14041, 23499), "dev": (3250, 5942), "test": (3453, 5648)},
    "es": {"train": (8323, 18798), "dev": (1915, 4352), "test": (1517, 3559)},
    "nl": {"train": (15806, 13344), "dev": (2895, 2616), "test": (5195, 3941)},
    "de": {"train": (12152, 11851), "dev": (2867, 4833), "test": (3005, 3673)},
}
# Translated English train: blocks per README (en2de: 36 "-OCSTART- O" blocks, en2nl: one "- O").
NER_TRANSLATED = {"es": 14041, "de": 14077, "nl": 14042}
ABSA = {
    "gold-en": ((1600, 1377), (400, 365), (676, 612)),
    "gold-es": ((1656, 1500), (414, 353), (881, 713)),
    "gold-fr": ((1332, 1294), (332, 345), (668, 649)),
    "gold-nl": ((1378, 956), (344, 274), (575, 373)),
    "gold-ru": ((2924, 2439), (731, 629), (1209, 945)),
    "gold-tr": ((986, 1083), (246, 271), (144, 148)),
}
ABSA_SMT = {"es": (1571, 1341), "fr": (1573, 1338), "nl": (1586, 1357), "ru": (1577, 1344)}
SRL = {
    "UP_English-EWT/en_ewt-up-{}.conllu": ((2002, 4977), (2077, 4799)),
    "UP_French/fr-up-{}.conllu": ((1596, 3043), (298, 635)),
    "UP_Spanish/es-up-{}.conllu": ((1552, 3700), (274, 847)),
    "UP_German/de-up-{}.conllu": ((799, 1180), (977, 1317)),
    "UP_Italian/it-up-{}.conllu": ((489, 1009), (489, 1014)),
    "UP_Portuguese-Bosque/pt_bosque-up-{}.conllu": ((938, 2071), (936, 2107)),
    "UP_Finnish/fi-up-{}.conllu": ((716, 1477), (648, 1451)),
}

NER_CASES = [(f"original/{l}/{l}.conll.{split}.tsv", n) for l, d in NER.items() for split, n in d.items()]
NER_CASES += [(f"automatic_projections/en2{l}/DeepL.50000.awesome.train.tsv", (n, None))
              for l, n in NER_TRANSLATED.items()]
ABSA_CASES = [(f"{k}-{split}.txt", n) for k, v in ABSA.items() for split, n in zip(("train", "dev", "test"), v)]
ABSA_CASES += [(f"smt-{l}-train.txt", n) for l, n in ABSA_SMT.items()]
SRL_CASES = [(p.format(split), n) for p, v in SRL.items() for split, n in zip(("dev", "test"), v)]


def _same_text(path: pathlib.Path, text: str) -> None:
  original = path.read_text(encoding="utf-8")
  assert text == original, f"{path}: written file differs from the original"


@pytest.mark.parametrize("rel,expected", NER_CASES, ids=[c[0] for c in NER_CASES])
def test_ner_file(data_dir, rel, expected):
  path = data_dir / "ner" / "Easy-Label-Projection" / rel
  sentences = conll.read(path)
  r = stats.span_stats(sentences)
  n_sent, n_spans = expected
  assert r["sentences"] == n_sent
  if n_spans is not None:
    assert r["spans"] == n_spans
  assert r["scheme"] == "iob2" and set(r["labels"]) == {"PER", "LOC", "ORG", "MISC"}
  if "en2de" in rel:
    assert sum(s.tokens == ("-OCSTART-",) for s in sentences) == 36
  _same_text(path, conll.format_sentences(sentences))


@pytest.mark.parametrize("rel,expected", ABSA_CASES, ids=[c[0] for c in ABSA_CASES])
def test_absa_file(data_dir, rel, expected):
  path = data_dir / "absa" / "XABSA" / rel
  sentences = absa.read(path)
  r = stats.span_stats(sentences)
  assert (r["sentences"], r["spans"]) == expected
  assert set(r["labels"]) <= {"POS", "NEG", "NEU"} and r["ill_formed_tags"] == 0
  text, repaired = absa.format_sentences(sentences)
  assert repaired == 0
  _same_text(path, text)


def test_absa_easy_label_projection_files(data_dir):
  root = data_dir / "absa" / "Easy-Label-Projection"
  en_path = root / "original" / "en" / "en.absa.train.tsv"
  es_path = root / "manual_projections" / "en2es" / "DeepL.Iker.train.tsv"
  en = conll.read(en_path)
  es = conll.read(es_path, tag_column=1)
  assert len(en) == len(es) == 2000  # sentence i of the Spanish file translates English sentence i
  for sentences in (en, es):
    r = stats.span_stats(sentences)
    assert r["scheme"] == "iob2" and set(r["labels"]) == {"TARGET"} and r["spans"] > 1500
  assert set(es[0].extra) == {"col0"} and set(v for s in es for v in s.extra["col0"]) == {"-", "HighQuality",
                                                                                         "LowQuality"}
  _same_text(en_path, conll.format_sentences(en))
  _same_text(es_path, conll.format_sentences(es))


@pytest.mark.parametrize("rel,expected", SRL_CASES, ids=[c[0].split("/")[1] for c in SRL_CASES])
def test_srl_file(data_dir, rel, expected):
  path = data_dir / "srl" / "UP-1.0" / rel
  layout, blocks = upb.read_sentences(path)
  instances = upb.instances(layout, blocks, path)
  r = stats.srl_stats(layout, blocks, instances)
  assert (r["sentences"], r["predicates"]) == expected
  assert layout == ("ewt" if "English" in rel else "up1")
  labels = set(r["labels"])
  assert {"A0", "A1"} <= labels and not any(l.startswith("ARG") for l in labels)
  for s in instances[:50]:
    assert len(s.tags) == len(s.tokens) == len(s.extra["pos"]) and s.sense
  _same_text(path, upb.format_sentences(instances))


def test_stats_cli_on_a_real_file(data_dir):
  path = data_dir / "absa" / "XABSA" / "gold-tr-test.txt"
  root = str(pathlib.Path(__file__).resolve().parents[1])
  env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))
  r = subprocess.run([sys.executable, "-m", "mtlws_jax.data.stats", "--task=absa", "--format=absa",
                      f"--path={path}"], capture_output=True, text=True, env=env, timeout=120)
  assert r.returncode == 0, r.stderr
  out = json.loads(r.stdout)
  assert (out["sentences"], out["spans"]) == (144, 148)


def test_fast_and_line_by_line_paths_agree_on_real_files(data_dir):
  nl = data_dir / "ner" / "Easy-Label-Projection" / "original" / "nl" / "nl.conll.dev.tsv"  # -DOCSTART- quirk
  assert conll.read_columns(nl) == conll.read_columns(nl, fast=False)
  fr = data_dir / "srl" / "UP-1.0" / "UP_French" / "fr-up-test.conllu"  # multiword tokens
  for start, block in textfile.blocks(textfile.read_lines(fr)):
    fast = upb._parse_block_fast(start, block, "up1")
    assert fast is not None and fast == upb._parse_block_checked(start, block, "up1", str(fr))
