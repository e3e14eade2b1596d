"""Tiny ABSA fixture files (XABSA layout) and a tiny checkpoint, shared by the run/experiment tests."""

from __future__ import annotations

import pathlib

import numpy as np

WORDS = {
    "en": (["the", "a", "this"], ["pizza", "service", "wine", "staff"], ["was", "is"], ["great", "awful", "fine"]),
    "es": (["la", "el", "este"], ["pizza", "servicio", "vino", "personal"], ["era", "es"], ["genial", "horrible", "normal"]),
    "fr": (["la", "le", "ce"], ["pizza", "service", "vin", "personnel"], ["était", "est"], ["super", "affreux", "correct"]),
}
POLARITY = {0: "POS", 1: "NEG", 2: "NEU"}


def sentences(lang: str, n: int, seed: int):
  rng = np.random.default_rng(seed)
  det, nouns, verbs, adjs = WORDS[lang]
  out = []
  for _ in range(n):
    n = int(rng.integers(0, len(nouns)))
    noun, k = nouns[n], n % 3  # each aspect word has one polarity (learnable in a few steps)
    toks = [det[int(rng.integers(0, 3))], noun, verbs[int(rng.integers(0, 2))], adjs[k]]
    tags = ["O", f"T-{POLARITY[k]}", "O", "O"]
    if rng.random() < 0.3:  # a two-word aspect
      toks[1:2] = [noun, noun]
      tags[1:2] = [f"T-{POLARITY[k]}"] * 2
    out.append(list(zip(toks, tags)))
  return out


def write(path: pathlib.Path, sents) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  with path.open("w") as f:
    for s in sents:
      for tok, tag in s:
        f.write(f"{tok}\t{tag}\t{'FOOD#QUALITY' if tag != 'O' else 'NIL'}\n")
      f.write("\n")


def make_data(root: pathlib.Path, langs=("en", "es", "fr"), n_train=16, n_eval=6) -> pathlib.Path:
  d = root / "absa" / "XABSA"
  for i, lang in enumerate(langs):
    write(d / f"gold-{lang}-train.txt", sentences(lang, n_train, 10 * i))
    write(d / f"gold-{lang}-dev.txt", sentences(lang, n_eval, 10 * i + 1))
    write(d / f"gold-{lang}-test.txt", sentences(lang, n_eval, 10 * i + 2))
    if lang != "en":
      write(d / f"smt-{lang}-train.txt", sentences(lang, n_train, 10 * i + 3))
  return root


def make_model(folder: pathlib.Path) -> pathlib.Path:
  from mtlws_jax.models import tiny
  texts = [" ".join(t for t, _ in s) for lang in WORDS for s in sentences(lang, 30, 99)]
  return tiny.build_tiny_checkpoint(folder, model_type="bert", texts=texts, vocab_size=200,
                                    hidden_size=32, num_layers=2, num_heads=2, intermediate_size=64,
                                    max_length=32)


def tiny_config(data_dir, model_dir, **overrides):
  import importlib.util
  root = pathlib.Path(__file__).resolve().parents[1]
  import sys
  if str(root) not in sys.path:
    sys.path.insert(0, str(root))
  spec = importlib.util.spec_from_file_location("tiny_config", root / "configs" / "tiny.py")
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config()
  c.data_dir = str(data_dir)
  c.model.path = str(model_dir)
  return set_fields(c, overrides)


def set_fields(c, overrides):
  """Dotted config fields ("train.max_steps") set in place; returns c."""
  for k, v in overrides.items():
    node = c
    *parents, last = k.split(".")
    for p in parents:
      node = node[p]
    node[last] = v
  return c
