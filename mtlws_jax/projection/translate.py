"""Translation of tokenized source sentences into tokenized target sentences.

Two translators with one interface, `translate(list of token lists) -> list of token lists`:

- `GivenTranslations`: a file of tokenized target sentences, line i translating source sentence
  i. The common case here (no translation model can be downloaded on these machines).
- `Seq2SeqTranslator`: a Hugging Face seq2seq model (MarianMT, NLLB, ...) through transformers
  and torch (an optional extra). The tokenized source is detokenized with sacremoses first (the
  model was trained on plain text), translated in batches, and the output re-tokenized with
  sacremoses. A `TranslationCache` (sqlite) keyed by model, settings and source text means no
  sentence is translated twice, across calls and runs; duplicates within a call go once.

- `ApertiumTranslator`: Apertium, the rule-based offline translator of Debian (en->es, and through
  Spanish en->pt/it/fr/ca); the pivot chain is named in the output.

CLI (writes the tokenized translations `python -m mtlws_jax.projection` takes as --tgt-tokens):
  python -m mtlws_jax.projection.translate --src=FILE [--src-format=tokens|conll|absa|upb]
      (--backend=apertium | --model=PATH) --out=FILE [--cache=FILE.sqlite] [--src-lang=en --tgt-lang=es]
      [--batch-size=16]
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import threading
from typing import Iterable, Protocol, Sequence

from mtlws_jax.errors import InputError, main_guard, argument_parser
from mtlws_jax.projection import align as A


class Translator(Protocol):
  def translate(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    ...


class GivenTranslations:
  """Translations read from a tokenized file; `translate` checks they match the source."""

  def __init__(self, path: str | os.PathLike):
    self.path = os.fspath(path)
    self.sentences = A.read_tokenized(path)

  def translate(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    A.check_pairs(sentences, self.sentences, None, self.path)
    return [list(t) for t in self.sentences]


def detokenize(tokens: Sequence[str], lang: str) -> str:
  """Plain text for a tokenized sentence ("Hello , world ." -> "Hello, world.")."""
  from sacremoses import MosesDetokenizer
  return MosesDetokenizer(lang=lang).detokenize(list(tokens))


def tokenize(text: str, lang: str) -> list[str]:
  """Moses tokens of a model's output, unescaped (no &amp;), never holding whitespace."""
  from sacremoses import MosesTokenizer
  return [t for t in MosesTokenizer(lang=lang).tokenize(text, escape=False) if t.strip()]


class TranslationCache:
  """sqlite store of translations keyed by (model id, settings, source text)."""

  def __init__(self, path: str | os.PathLike):
    self.path = os.fspath(path)
    self._lock = threading.Lock()
    self._db = sqlite3.connect(self.path, check_same_thread=False)
    self._db.execute("CREATE TABLE IF NOT EXISTS translations (key TEXT PRIMARY KEY, model TEXT, source TEXT, "
                     "translation TEXT)")
    self._db.commit()

  @staticmethod
  def key(model: str, settings: str, source: str) -> str:
    return hashlib.sha256(json.dumps([model, settings, source]).encode()).hexdigest()

  def get_many(self, model: str, settings: str, sources: Iterable[str]) -> dict[str, str]:
    out = {}
    with self._lock:
      for s in sources:
        row = self._db.execute("SELECT translation FROM translations WHERE key = ?",
                               (self.key(model, settings, s),)).fetchone()
        if row is not None:
          out[s] = row[0]
    return out

  def put_many(self, model: str, settings: str, pairs: dict[str, str]) -> None:
    with self._lock:
      self._db.executemany("INSERT OR REPLACE INTO translations VALUES (?, ?, ?, ?)",
                           [(self.key(model, settings, s), model, s, t) for s, t in pairs.items()])
      self._db.commit()

  def __len__(self) -> int:
    with self._lock:
      return self._db.execute("SELECT COUNT(*) FROM translations").fetchone()[0]

  def close(self) -> None:
    self._db.close()


class CachedTranslator:
  """What every machine translator shares: detokenize, translate each distinct text once (cache
  first), re-tokenize. Subclasses set model_id, settings, src_lang, tgt_lang, cache, generated
  and implement `_generate(texts) -> texts`."""

  def translate_text(self, texts: Sequence[str]) -> list[str]:
    """Plain text in, plain text out; each distinct text translated once, cache first."""
    unique = list(dict.fromkeys(texts))
    known = self.cache.get_many(self.model_id, self.settings, unique) if self.cache is not None else {}
    todo = [t for t in unique if t not in known and t]
    if todo:
      new = dict(zip(todo, self._generate(todo)))
      if self.cache is not None:
        self.cache.put_many(self.model_id, self.settings, new)
      known.update(new)
    known.setdefault("", "")
    return [known[t] for t in texts]

  def translate(self, sentences: Sequence[Sequence[str]]) -> list[list[str]]:
    for k, s in enumerate(sentences):
      A.check_tokens(s, line=k + 1, what="source sentence")
    texts = [detokenize(s, self.src_lang) for s in sentences]
    return [tokenize(t, self.tgt_lang) for t in self.translate_text(texts)]


class Seq2SeqTranslator(CachedTranslator):
  """A transformers seq2seq model (local folder or loaded objects), batched, cached.

  model_id names the model in the cache (default: the path); `settings` (beams, length) join
  it, so a change of either never returns a stale translation. max_new_tokens defaults to 256,
  capped by the model's `max_position_embeddings`. `generated` counts sentences
  the model actually translated (cache misses).
  """

  def __init__(self, model, tokenizer=None, *, src_lang: str = "en", tgt_lang: str = "es",
               batch_size: int = 16, num_beams: int = 1, max_new_tokens: int | None = None,
               cache: TranslationCache | None = None, model_id: str | None = None, device: str = "cpu"):
    try:
      import torch  # noqa: F401
      from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    except ImportError as e:  # an optional extra
      raise ImportError("Seq2SeqTranslator needs torch and transformers (pip install torch transformers)") from e
    if isinstance(model, (str, os.PathLike)):
      path = os.fspath(model)
      model_id = model_id or path
      tokenizer = tokenizer or AutoTokenizer.from_pretrained(path)
      model = AutoModelForSeq2SeqLM.from_pretrained(path)
    if tokenizer is None or model_id is None:
      raise ValueError("pass a model path, or a model with its tokenizer and a model_id for the cache")
    self.model = model.to(device).eval()
    self.tokenizer = tokenizer
    self.device = device
    self.src_lang, self.tgt_lang = src_lang, tgt_lang
    self.batch_size = batch_size
    if max_new_tokens is None:  # 256, but never past the model's position table
      limit = getattr(model.config, "max_position_embeddings", None)
      max_new_tokens = min(256, limit - 1) if limit else 256
    self.num_beams, self.max_new_tokens = num_beams, max_new_tokens
    self.cache = cache
    self.model_id = model_id
    self.settings = json.dumps({"beams": num_beams, "max_new_tokens": max_new_tokens, "tgt": tgt_lang})
    self.generated = 0

  def _generate(self, texts: list[str]) -> list[str]:
    import torch
    out = []
    for k in range(0, len(texts), self.batch_size):
      batch = texts[k:k + self.batch_size]
      enc = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True)
      enc = {n: v.to(self.device) for n, v in enc.items() if n in ("input_ids", "attention_mask")}
      with torch.no_grad():
        ids = self.model.generate(**enc, num_beams=self.num_beams, max_new_tokens=self.max_new_tokens)
      out.extend(self.tokenizer.batch_decode(ids, skip_special_tokens=True))
      self.generated += len(batch)
    return out


class ApertiumTranslator(CachedTranslator):
  """Apertium, the rule-based offline translator Debian ships (`apt-get install apertium
  apertium-eng-spa`; more pairs: apertium-es-pt, apertium-spa-ita, apertium-fr-es,
  apertium-spa-cat). English reaches Spanish directly and Portuguese, Italian, French and
  Catalan by pivoting through Spanish (each hop is a separate Apertium mode; the chain is named
  in `name`). Rough next to a neural system, but real and fast. Unknown words are passed
  through unmarked (`-u`). Lines go through one Apertium process per hop, one sentence per line.
  """

  PAIRS = {("en", "es"): "eng-spa", ("es", "en"): "spa-eng", ("es", "pt"): "es-pt", ("pt", "es"): "pt-es",
           ("es", "it"): "spa-ita", ("it", "es"): "ita-spa", ("es", "fr"): "es-fr", ("fr", "es"): "fr-es",
           ("es", "ca"): "spa-cat", ("ca", "es"): "cat-spa"}
  PACKAGES = {"eng-spa": "apertium-eng-spa", "spa-eng": "apertium-eng-spa", "es-pt": "apertium-es-pt",
              "pt-es": "apertium-es-pt", "spa-ita": "apertium-spa-ita", "ita-spa": "apertium-spa-ita",
              "es-fr": "apertium-fr-es", "fr-es": "apertium-fr-es", "spa-cat": "apertium-spa-cat",
              "cat-spa": "apertium-spa-cat"}

  def __init__(self, src_lang: str = "en", tgt_lang: str = "es", *, cache: "TranslationCache | None" = None,
               executable: str = "apertium"):
    import shutil
    self.src_lang, self.tgt_lang, self.cache = src_lang, tgt_lang, cache
    self.executable = shutil.which(executable)
    if self.executable is None:
      raise InputError("the apertium translator is not installed (Debian: apt-get install apertium "
                       "apertium-eng-spa)")
    self.modes = self.chain(src_lang, tgt_lang)
    installed = self.installed_modes()
    for m in self.modes:
      if m not in installed:
        raise InputError(f"the Apertium pair {m} is not installed (apt-get install {self.PACKAGES[m]}); "
                         f"installed: {', '.join(sorted(installed)) or 'none'}")
    self.name = "apertium " + " -> ".join(self.modes)
    # "sentences": "paragraphs" keys the cache: translations made when lines ran together are never reused
    self.model_id, self.generated = self.name, 0
    self.settings = json.dumps({"unknown": "unmarked", "sentences": "paragraphs"})

  @classmethod
  def chain(cls, src: str, tgt: str) -> list[str]:
    if (src, tgt) in cls.PAIRS:
      return [cls.PAIRS[(src, tgt)]]
    if (src, "es") in cls.PAIRS and ("es", tgt) in cls.PAIRS:
      return [cls.PAIRS[(src, "es")], cls.PAIRS[("es", tgt)]]
    pairs = sorted({f"{a}-{b}" for a, b in cls.PAIRS})
    raise InputError(f"no Apertium route from {src!r} to {tgt!r} (direct or through Spanish); pairs: {', '.join(pairs)}")

  def installed_modes(self) -> set[str]:
    import subprocess
    p = subprocess.run([self.executable, "-l"], capture_output=True, text=True)
    got = {l.strip() for l in (p.stdout + p.stderr).splitlines() if l.strip() and " " not in l.strip()}
    if not got:  # older apertium: read the modes folder
      import glob
      got = {os.path.basename(m)[:-5] for m in glob.glob("/usr/share/apertium/modes/*.mode")}
    return got

  def _run(self, mode: str, texts: list[str]) -> list[str]:
    import subprocess
    # One sentence per paragraph: Apertium's text format reads a single newline as a space, so
    # sentences without final punctuation ran together and words moved between lines ("The pizza was
    # great\nService was slow" -> "La pizza era Servicio\nsumo era lento"); a blank line is a sentence
    # end to it (apertium-destxt closes the sentence there), so each text is translated on its own.
    text = "".join(" ".join(t.split()) + "\n\n" for t in texts)
    p = subprocess.run([self.executable, "-u", mode], input=text, capture_output=True, text=True)
    if p.returncode:
      raise InputError(f"apertium {mode} failed: {p.stderr.strip()[:300]}")
    out = p.stdout.rstrip("\n").split("\n\n") if p.stdout.strip() else []
    if len(out) != len(texts) or any("\n" in o for o in out):  # never pair a translation with the wrong sentence
      raise InputError(f"apertium {mode} returned {len(out)} paragraphs for {len(texts)} sentences")
    return [o.strip() for o in out]

  def _generate(self, texts: list[str]) -> list[str]:
    out = texts
    for mode in self.modes:  # en -> es, then es -> pt (say)
      out = self._run(mode, out)
    self.generated += len(texts)
    return out


def main(argv: Sequence[str] | None = None) -> int:
  p = argument_parser(prog="python -m mtlws_jax.projection.translate", description=__doc__.split("\n")[0])
  p.add_argument("--src", required=True)
  p.add_argument("--src-format", default="tokens", choices=("tokens", "conll", "absa", "upb"),
                 help="tokens: one tokenized sentence per line; else a labelled file whose words are read")
  p.add_argument("--backend", default="transformers", choices=("transformers", "apertium"),
                 help="transformers: a seq2seq model folder (--model); apertium: the offline rule-based "
                 "translator (Debian packages; en->es, and es->pt/it/fr/ca, so en->those through es)")
  p.add_argument("--model", help="transformers backend: folder of a seq2seq model and its tokenizer")
  p.add_argument("--out", required=True, help="tokenized translations, one per line")
  p.add_argument("--cache", help="sqlite cache file (default: OUT.cache.sqlite)")
  p.add_argument("--src-lang", default="en")
  p.add_argument("--tgt-lang", default="es")
  p.add_argument("--batch-size", type=int, default=16)
  p.add_argument("--num-beams", type=int, default=1)
  p.add_argument("--device", default="cpu")
  args = p.parse_args(argv)
  if args.batch_size < 1 or args.num_beams < 1:
    p.error(f"--batch-size and --num-beams must be >= 1, got {args.batch_size} and {args.num_beams}")
  from mtlws_jax.errors import check_output
  cache_path = args.cache or args.out + ".cache.sqlite"
  check_output(args.out, args.src)
  check_output(cache_path, args.src, args.out, what="--cache")
  if args.src_format == "tokens":
    src = A.read_tokenized(args.src)
  else:
    from mtlws_jax.projection.__main__ import _source
    task = {"conll": "ner", "absa": "absa", "upb": "srl"}[args.src_format]
    src = [list(s) for s in _source(task, args.src_format, args.src)[1]]
  if args.backend == "transformers":
    if not args.model:
      p.error("--model is needed with --backend=transformers")
    if not os.path.isdir(args.model) or not os.path.isfile(os.path.join(args.model, "config.json")):
      raise InputError("not a transformers model folder (no config.json; it needs the weights and "
                       "tokenizer files too)", args.model)
    _check_device(args.device)
  elif args.model:
    p.error("--model is for --backend=transformers")
  try:
    cache = TranslationCache(cache_path)
  except sqlite3.Error as e:
    raise InputError(f"cannot open the translation cache ({e}); give another --cache", cache_path) from None
  if args.backend == "apertium":
    tr = ApertiumTranslator(args.src_lang, args.tgt_lang, cache=cache)
  else:
    try:
      tr = Seq2SeqTranslator(args.model, src_lang=args.src_lang, tgt_lang=args.tgt_lang, batch_size=args.batch_size,
                             num_beams=args.num_beams, cache=cache, device=args.device)
    except (OSError, ValueError) as e:  # transformers: missing or unreadable tokenizer / weights files
      raise InputError(f"cannot load the translation model: {str(e).splitlines()[0]}", args.model) from None
  out = tr.translate(src)
  A.write_tokenized(args.out, out)
  empty = [k + 1 for k, (s, t) in enumerate(zip(src, out)) if s and not t]
  translator = tr.name if args.backend == "apertium" else f"transformers {args.model}"
  print(json.dumps({"translator": translator, "sentences": len(src), "translated": tr.generated,
                    "reused": len(src) - tr.generated,
                    "empty_outputs": len(empty), "first_empty_lines": empty[:10], "out": args.out,
                    "cache": cache.path}, indent=2))
  cache.close()
  if src and len(empty) == sum(1 for x in src if x):
    print("warning: every translation is empty: is --model a trained translation model for "
          f"{args.src_lang} -> {args.tgt_lang}?", file=sys.stderr)
  return 0


def _check_device(device: str) -> None:
  import re
  if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", device):
    raise InputError(f"--device={device!r}: expected cpu, cuda, cuda:N or mps")
  if device.startswith("cuda"):
    import torch
    if not torch.cuda.is_available():
      raise InputError(f"--device={device}: this torch has no CUDA device (use --device=cpu)")


if __name__ == "__main__":
  sys.exit(main_guard(main)())
