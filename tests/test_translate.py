"""Translators: given translations, and a tiny random MarianMT built in-process (batched, cached)."""

from __future__ import annotations

import json

import pytest

from mtlws_jax.errors import InputError, main_guard
from mtlws_jax.projection import translate as T

SOURCES = [["Hello", ",", "world", "."], ["The", "cat", "sleeps", "."], ["Hello", ",", "world", "."], []]


def test_given_translations_check_the_source(tmp_path):
  path = tmp_path / "t.txt"
  path.write_text("Hola mundo\nEl gato duerme\n")
  tr = T.GivenTranslations(path)
  assert tr.translate([["Hello", "world"], ["The", "cat", "sleeps"]]) == [["Hola", "mundo"], ["El", "gato", "duerme"]]
  with pytest.raises(InputError, match=r"t\.txt:3: 2 target sentences for 3 source sentences"):
    tr.translate([["a"], ["b"], ["c"]])
  path.write_text("Hola\n\n")
  with pytest.raises(InputError, match=r"t\.txt:2: empty target sentence"):
    T.GivenTranslations(path).translate([["Hi"], ["Bye"]])


def test_moses_detokenize_and_tokenize():
  assert T.detokenize(["Hello", ",", "world", "."], "en") == "Hello, world."
  assert T.detokenize(["It", "'s", "\"", "fine", "\""], "en") == "It's \"fine\""
  assert T.tokenize("¿Qué tal? Bien, & tú.", "es") == ["¿", "Qué", "tal", "?", "Bien", ",", "&", "tú", "."]


def _tiny_marian(folder):
  """A random 1-layer MarianMT with a word-level tokenizer, saved like a real model folder."""
  torch = pytest.importorskip("torch")
  transformers = pytest.importorskip("transformers")
  from tokenizers import Tokenizer, models, pre_tokenizers, processors

  words = ["<pad>", "</s>", "<unk>", "Hello", ",", "world", ".", "The", "cat", "sleeps", "Hola", "mundo", "gato"]
  vocab = {w: i for i, w in enumerate(words)}
  tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
  tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
  tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                                   unk_token="<unk>")
  config = transformers.MarianConfig(
      vocab_size=len(words), d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
      decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, max_position_embeddings=64,
      pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, forced_eos_token_id=None)
  torch.manual_seed(0)
  model = transformers.MarianMTModel(config)
  model.save_pretrained(folder)
  tokenizer.save_pretrained(folder)
  return folder


@pytest.fixture(scope="module")
def marian(tmp_path_factory):
  return str(_tiny_marian(tmp_path_factory.mktemp("marian")))


def test_seq2seq_translates_in_batches_and_caches(marian, tmp_path):
  cache = T.TranslationCache(tmp_path / "c.sqlite")
  tr = T.Seq2SeqTranslator(marian, batch_size=1, max_new_tokens=6, cache=cache)
  calls = []
  generate = tr.model.generate
  tr.model.generate = lambda **kw: calls.append(kw["input_ids"].shape) or generate(**kw)
  out = tr.translate(SOURCES)
  assert len(out) == 4 and out[0] == out[2] and out[3] == []
  assert all(t and not any(c.isspace() for c in t) for sent in out for t in sent)
  assert tr.generated == 2 and len(calls) == 2  # duplicate and empty sentence not sent to the model
  # The model saw detokenized text: the cache holds "Hello, world." (no space before the comma).
  assert {"Hello, world.", "The cat sleeps."} == {r[0] for r in cache._db.execute("SELECT source FROM translations")}
  again = T.Seq2SeqTranslator(marian, batch_size=2, max_new_tokens=6, cache=cache)
  assert again.translate(SOURCES) == out and again.generated == 0
  other = T.Seq2SeqTranslator(marian, batch_size=2, max_new_tokens=5, cache=cache)  # other settings: no reuse
  other.translate(SOURCES[:1])
  assert other.generated == 1 and len(cache) == 3


def test_seq2seq_batches_pad_to_the_longest(marian):
  tr = T.Seq2SeqTranslator(marian, batch_size=8, max_new_tokens=4)
  shapes = []
  generate = tr.model.generate
  tr.model.generate = lambda **kw: shapes.append(tuple(kw["input_ids"].shape)) or generate(**kw)
  tr.translate([["Hello"], ["The", "cat", "sleeps", "."], ["world"]])
  # One batch padded to the longest: detokenized "The cat sleeps." is 3 words (+ </s>).
  assert shapes == [(3, 4)]


def test_translate_cli(marian, tmp_path, capsys):
  src = tmp_path / "s.txt"
  src.write_text("Hello , world .\nThe cat sleeps .\n")
  out = tmp_path / "o.txt"
  assert T.main([f"--src={src}", f"--model={marian}", f"--out={out}"]) == 0
  report = json.loads(capsys.readouterr().out)
  assert report["sentences"] == 2 and report["translated"] == 2
  assert len(out.read_text().splitlines()) == 2
  assert T.main([f"--src={src}", f"--model={marian}", f"--out={out}"]) == 0
  assert json.loads(capsys.readouterr().out)["translated"] == 0  # all from the cache file


def test_translate_cli_rejects_tabs(tmp_path, capsys):
  src = tmp_path / "s.txt"
  src.write_text("ok\nbad\ttoken\n")
  with pytest.raises(SystemExit):
    main_guard(T.main)([f"--src={src}", f"--model={tmp_path}", f"--out={tmp_path / 'o'}"])
  assert "s.txt:2: line contains a tab" in capsys.readouterr().err


def _apertium_modes() -> set[str]:
  import shutil
  import subprocess
  if not shutil.which("apertium"):
    return set()
  p = subprocess.run(["apertium", "-l"], capture_output=True, text=True)
  return {l.strip() for l in (p.stdout + p.stderr).splitlines() if l.strip()}


@pytest.mark.skipif("eng-spa" not in _apertium_modes(), reason="apertium with apertium-eng-spa not installed")
def test_apertium_translates_offline_with_its_pivot_named(tmp_path):
  import json
  import subprocess
  import sys
  src = tmp_path / "src.txt"
  src.write_text("John Smith works for the European Commission .\nThe pizza was great , but the service is awful !\n")
  run = lambda *a: subprocess.run([sys.executable, "-m", "mtlws_jax.projection.translate", "--backend=apertium",
                                   f"--src={src}", *a], capture_output=True, text=True)
  p = run(f"--out={tmp_path}/es.txt")
  assert p.returncode == 0, p.stderr
  got = json.loads(p.stdout)
  assert got["translator"] == "apertium eng-spa" and got["translated"] == 2
  es = (tmp_path / "es.txt").read_text().splitlines()
  assert len(es) == 2 and "Comisión" in es[0] and es[1].split()[:2] == ["La", "pizza"]
  again = json.loads(run(f"--out={tmp_path}/es2.txt", f"--cache={tmp_path}/es.txt.cache.sqlite").stdout)
  assert again["translated"] == 0 and again["reused"] == 2  # the cache answers
  if "es-pt" in _apertium_modes():
    p = run(f"--out={tmp_path}/pt.txt", "--tgt-lang=pt")
    assert p.returncode == 0 and json.loads(p.stdout)["translator"] == "apertium eng-spa -> es-pt"
    assert "Comissão" in (tmp_path / "pt.txt").read_text()
  p = run(f"--out={tmp_path}/xx.txt", "--tgt-lang=ja")
  assert p.returncode == 1 and "no Apertium route from 'en' to 'ja'" in p.stderr


@pytest.mark.skipif("eng-spa" not in _apertium_modes(), reason="apertium with apertium-eng-spa not installed")
def test_apertium_translates_each_sentence_on_its_own():
  """Apertium reads a single newline as a space: sentences without final punctuation ran together and
  words moved between lines ("The pizza was great / Service was slow" came back as "La pizza era
  Servicio / sumo era lento"). A batch must give what each sentence gives alone."""
  sents = [s.split() for s in ("The pizza was great", "Service was slow", "John lives in Paris", "Mary smiles",
                               "SOCCER - JAPAN GET LUCKY WIN", "It rained .", "[ 1 ] a * b # c @ d")]
  for tgt in ("es", "pt") if "es-pt" in _apertium_modes() else ("es",):
    tr = T.ApertiumTranslator("en", tgt)
    batch = tr.translate(sents)
    alone = [tr.translate([s])[0] for s in sents]
    assert batch == alone, (tgt, batch, alone)
    if tgt == "es":
      assert batch[0][:3] == ["La", "pizza", "era"] and "Servicio" not in batch[0]
      assert batch[1][-1] == "lento" and batch[2][-1] == "París" and batch[3][0] == "Mary"
