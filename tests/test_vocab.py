"""The in-process tokenizers keep the real encoders' layout and survive a save/load round trip."""

import pytest
from transformers import AutoTokenizer

from mtlws_jax.data import vocab

TEXTS = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn lives in Brussels , Belgium .",
    "The quick brown fox jumps over the lazy dog .",
    "Der schnelle braune Fuchs springt über den faulen Hund .",
    "El rápido zorro marrón salta sobre el perro perezoso .",
] * 10
WORDS = ["Peter", "Blackburn", "rejects", "boycotting", "Brussels", "."]


@pytest.fixture(scope="module", params=["wordpiece", "unigram"])
def tok(request):
  fn = vocab.train_wordpiece if request.param == "wordpiece" else vocab.train_unigram
  return fn(TEXTS, vocab_size=300)


def test_wordpiece_specials_and_template():
  tok = vocab.train_wordpiece(TEXTS, vocab_size=300)
  assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
  assert (tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id) == (0, 1, 2, 3, 4)
  ids = tok(["Peter", "lives"], is_split_into_words=True)["input_ids"]
  assert ids[0] == 2 and ids[-1] == 3
  # Cased: the BERT normalizer must not lowercase.
  assert tok(["Peter"], is_split_into_words=True, add_special_tokens=False)["input_ids"] != \
      tok(["peter"], is_split_into_words=True, add_special_tokens=False)["input_ids"]


def test_unigram_specials_and_template():
  tok = vocab.train_unigram(TEXTS, vocab_size=300)
  assert tok.convert_ids_to_tokens([0, 1, 2, 3]) == ["<s>", "<pad>", "</s>", "<unk>"]
  assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
  assert tok.mask_token_id == len(tok) - 1
  enc = tok(["Peter", "lives"], is_split_into_words=True)
  assert enc["input_ids"][0] == 0 and enc["input_ids"][-1] == 2
  # Metaspace: every word's first piece starts with the word-boundary mark.
  pieces = tok.convert_ids_to_tokens(enc["input_ids"])
  wids = enc.word_ids()
  firsts = [pieces[i] for i in range(len(wids)) if wids[i] is not None and (i == 0 or wids[i - 1] != wids[i])]
  assert len(firsts) == 2 and all(p.startswith("\u2581") for p in firsts)


def test_vocab_size_respected(tok):
  assert len(tok) <= 300


def test_ids_and_word_ids_stable_after_reload(tok, tmp_path):
  before = tok(WORDS, is_split_into_words=True)
  tok.save_pretrained(tmp_path)
  again = AutoTokenizer.from_pretrained(tmp_path)
  after = again(WORDS, is_split_into_words=True)
  assert after["input_ids"] == before["input_ids"]
  assert after.word_ids() == before.word_ids()
  assert (again.pad_token_id, again.unk_token_id, again.mask_token_id) == (tok.pad_token_id, tok.unk_token_id, tok.mask_token_id)
  assert again.convert_ids_to_tokens(before["input_ids"]) == tok.convert_ids_to_tokens(before["input_ids"])


def test_word_ids_cover_every_word_in_order(tok):
  enc = tok(WORDS, is_split_into_words=True)
  wids = enc.word_ids()
  assert wids[0] is None and wids[-1] is None
  inner = wids[1:-1]
  assert None not in inner
  assert inner == sorted(inner)
  assert sorted(set(inner)) == list(range(len(WORDS)))


def test_unknown_characters_map_to_unk(tok):
  # Neither character was in the training text.
  enc = tok(["Peter", "\u4e2d\u6587", "\u0416"], is_split_into_words=True)
  ids, wids = enc["input_ids"], enc.word_ids()
  for w in (1, 2):
    word_ids_of_w = [ids[i] for i in range(len(ids)) if wids[i] == w]
    assert word_ids_of_w, f"word {w} lost"
    assert tok.unk_token_id in word_ids_of_w
  assert tok.unk_token_id not in [ids[i] for i in range(len(ids)) if wids[i] == 0]


def test_split_words_match_plain_text(tok):
  # Pre-split words give the same pieces as the joined sentence (the pre-tokenizers split on spaces).
  text = "Peter Blackburn rejects Brussels ."
  a = tok(text.split(), is_split_into_words=True)["input_ids"]
  b = tok(text)["input_ids"]
  assert a == b


def test_empty_training_text_rejected():
  with pytest.raises(ValueError):
    vocab.train_wordpiece([], vocab_size=100)


def test_accepts_word_lists():
  tok = vocab.train_wordpiece([s.split() for s in TEXTS], vocab_size=300)
  assert tok(["Peter"], is_split_into_words=True)["input_ids"][1] != tok.unk_token_id
