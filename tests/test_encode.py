"""Subword encoding: first-subword labels, windows that never drop a word, batches, merging back."""

import collections
import json

import numpy as np
import pytest
from transformers import AutoTokenizer

from mtlws_jax.data import batching
from mtlws_jax.data import encode as enc
from mtlws_jax.data import vocab
from mtlws_jax.data.records import Sentence
from mtlws_jax.errors import InputError

TEXTS = [
    "EU rejects German call to boycott British lamb .",
    "Peter Blackburn lives in Brussels , Belgium .",
    "The quick brown fox jumps over the lazy dog .",
    "Der schnelle braune Fuchs springt über den faulen Hund .",
    "El rápido zorro marrón salta sobre el perro perezoso .",
    "Germany imported 47,600 sheep from Britain last year .",
] * 10
WORDS = sorted({w for t in TEXTS for w in t.split()})
TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-ORG"]
TAG_TO_ID = {t: i for i, t in enumerate(TAGS)}
UPOS = ["NOUN", "VERB", "ADJ", "PUNCT", "PROPN", "ADP", "DET"]
POS_TO_ID = {p: i for i, p in enumerate(UPOS)}


@pytest.fixture(scope="module")
def wordpiece():
  return vocab.train_wordpiece(TEXTS, vocab_size=120)


@pytest.fixture(scope="module")
def unigram():
  return vocab.train_unigram(TEXTS, vocab_size=120)


@pytest.fixture(scope="module", params=["wordpiece", "unigram"])
def tok(request, wordpiece, unigram):
  return wordpiece if request.param == "wordpiece" else unigram


def random_sentences(n, lo, hi, seed=0, origin="data.txt"):
  rng = np.random.default_rng(seed)
  out = []
  for i in range(n):
    k = int(rng.integers(lo, hi + 1))
    words = tuple(WORDS[j] for j in rng.integers(0, len(WORDS), k))
    tags = tuple(TAGS[j] for j in rng.integers(0, len(TAGS), k))
    out.append(Sentence(tokens=words, tags=tags, origin=f"{origin}:{10 * i + 1}"))
  return out


def first_subword_positions(tok, words):
  """Independent reference: HF word_ids() of the full encoding with specials."""
  e = tok(list(words), is_split_into_words=True)
  wids = e.word_ids()
  firsts = {}
  for pos, w in enumerate(wids):
    if w is not None and w not in firsts:
      firsts[w] = pos
  return e["input_ids"], firsts


def test_first_subword_labelling_matches_hf(tok):
  sents = random_sentences(20, 1, 12)
  feats = enc.encode(sents, tok, TAG_TO_ID, max_length=512, stride=16)
  assert len(feats) == len(sents)
  for i, (s, f) in enumerate(zip(sents, feats)):
    ids, firsts = first_subword_positions(tok, s.tokens)
    assert f.input_ids.tolist() == ids
    assert f.example_id == i and f.num_words == len(s)
    expect_labels = np.full(len(ids), -1)
    expect_wids = np.full(len(ids), -1)
    for w, pos in firsts.items():
      expect_labels[pos] = TAG_TO_ID[s.tags[w]]
      expect_wids[pos] = w
    np.testing.assert_array_equal(f.labels, expect_labels)
    np.testing.assert_array_equal(f.word_ids, expect_wids)
    assert f.labels.dtype == np.int32 and f.input_ids.dtype == np.int32
    assert not f.predicate_ids.any() and not f.pos_ids.any()


def test_some_words_have_continuation_subwords(tok):
  # Guards the test above against a vocabulary so large that every word is a single piece.
  s = random_sentences(5, 8, 8)
  f = enc.encode(s, tok, TAG_TO_ID, max_length=512, stride=0)
  assert sum(len(x) - 2 for x in f) > sum(len(x) for x in s)


def test_bare_metaspace_piece_carries_label(unigram):
  words = ("Peter", "zzzq", ".")
  pieces = [unigram.convert_ids_to_tokens(unigram(w, add_special_tokens=False)["input_ids"]) for w in words]
  assert pieces[1][0] == "\u2581" and len(pieces[1]) > 1, pieces  # precondition: bare "▁" then pieces
  s = Sentence(tokens=words, tags=("B-PER", "B-ORG", "O"))
  (f,) = enc.encode([s], unigram, TAG_TO_ID, max_length=64, stride=0)
  toks = unigram.convert_ids_to_tokens(f.input_ids.tolist())
  pos = 1 + len(pieces[0])  # after <s> and the first word
  assert toks[pos] == "\u2581"
  assert f.labels[pos] == TAG_TO_ID["B-ORG"] and f.word_ids[pos] == 1
  assert (f.labels[pos + 1:pos + len(pieces[1])] == -1).all()


def test_word_without_subwords_becomes_unk(wordpiece, unigram):
  words = ("Peter", "\u200b", "Brussels")
  # Precondition: the BERT normalizer deletes the zero-width space, leaving the word no subwords.
  e = wordpiece(list(words), is_split_into_words=True)
  assert 1 not in [w for w in e.word_ids() if w is not None]
  s = Sentence(tokens=words, tags=("B-PER", "O", "B-LOC"))
  for tok in (wordpiece, unigram):
    (f,) = enc.encode([s], tok, TAG_TO_ID, max_length=64, stride=0)
    assert sorted(f.word_ids[f.word_ids >= 0].tolist()) == [0, 1, 2]
    pos = int(np.nonzero(f.word_ids == 1)[0][0])
    assert f.labels[pos] == TAG_TO_ID["O"]
    assert batching.merge_predictions([f], [f.labels], 1) == [[1, 0, 3]]
  (f,) = enc.encode([s], wordpiece, TAG_TO_ID, max_length=64, stride=0)
  assert f.input_ids[int(np.nonzero(f.word_ids == 1)[0][0])] == wordpiece.unk_token_id
  assert f.empty_words == 1


def test_windows_rule_by_hand():
  spans, owner = enc.windows([1] * 10, budget=4, stride=2)
  assert spans == [(0, 4), (2, 6), (4, 8), (6, 10)]
  assert owner == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
  spans, owner = enc.windows([1] * 10, budget=4, stride=0)
  assert spans == [(0, 4), (4, 8), (8, 10)]
  assert owner == [0] * 4 + [1] * 4 + [2] * 2
  # Overlap never exceeds stride subwords, and the next word always fits.
  spans, owner = enc.windows([3, 1, 1, 3, 2, 2], budget=5, stride=2)
  assert spans == [(0, 3), (1, 4), (4, 6)]  # word 3 (3 subwords) cannot be carried over
  assert owner == [0, 0, 1, 1, 2, 2]
  assert enc.windows([2, 3], budget=5, stride=1) == ([(0, 2)], [0, 0])
  with pytest.raises(ValueError):
    enc.windows([1, 2], budget=4, stride=4)
  with pytest.raises(ValueError):
    enc.windows([1, 5], budget=4, stride=1)


@pytest.mark.parametrize("stride", [0, 8, 20])
def test_long_sentences_every_word_owned_once(tok, stride):
  sents = random_sentences(3, 300, 300, seed=1) + random_sentences(2, 3, 5, seed=2)
  feats = enc.encode(sents, tok, TAG_TO_ID, max_length=32, stride=stride)
  owned = collections.Counter()
  in_window = collections.Counter()
  for f in feats:
    assert len(f) <= 32
    for w in f.word_ids[f.word_ids >= 0]:
      owned[(f.example_id, int(w))] += 1
    assert ((f.labels >= 0) == (f.word_ids >= 0)).all()
  assert set(owned) == {(i, w) for i, s in enumerate(sents) for w in range(len(s))}
  assert set(owned.values()) == {1}
  assert sum(1 for f in feats if f.example_id == 0) > 10
  # Each window's input is exactly its span of whole words (HF word_ids as reference), the owned
  # words lie in the span, and consecutive windows overlap by at most `stride` subwords.
  for i, s in enumerate(sents):
    e = tok(list(s.tokens), is_split_into_words=True, add_special_tokens=False)
    wids = np.asarray([-1 if w is None else w for w in e.word_ids()])
    ids = np.asarray(e["input_ids"])
    mine = [f for f in feats if f.example_id == i]
    assert mine[0].span[0] == 0 and mine[-1].span[1] == len(s)
    for f in mine:
      a, b = f.span
      assert f.input_ids[1:-1].tolist() == ids[(wids >= a) & (wids < b)].tolist()
      assert set(f.word_ids[f.word_ids >= 0].tolist()) <= set(range(a, b))
    for f, g in zip(mine, mine[1:]):
      assert g.span[0] > f.span[0] and g.span[0] <= f.span[1]
      assert ((wids >= g.span[0]) & (wids < f.span[1])).sum() <= stride
    if stride >= 8 and len(s) > 100:
      assert any(g.span[0] < f.span[1] for f, g in zip(mine, mine[1:]))
  merged = batching.merge_predictions(feats, [f.labels for f in feats], len(sents))
  assert merged == [[TAG_TO_ID[t] for t in s.tags] for s in sents]
  assert enc.summary(feats)["split_records"] == 3


def test_windows_overlap_with_stride(tok):
  (s,) = random_sentences(1, 300, 300, seed=1)
  n_zero = len(enc.encode([s], tok, TAG_TO_ID, max_length=32, stride=0))
  n_ctx = len(enc.encode([s], tok, TAG_TO_ID, max_length=32, stride=12))
  assert n_ctx > n_zero
  # Concatenating the owned words' subwords of all windows gives the unwindowed encoding back.
  (full,) = enc.encode([s], tok, TAG_TO_ID, max_length=100000, stride=0)
  feats = enc.encode([s], tok, TAG_TO_ID, max_length=32, stride=12)
  starts = {}
  for f in feats:
    for pos in np.nonzero(f.word_ids >= 0)[0]:
      starts[int(f.word_ids[pos])] = int(f.input_ids[pos])
  ref = {int(full.word_ids[p]): int(full.input_ids[p]) for p in np.nonzero(full.word_ids >= 0)[0]}
  assert starts == ref


def test_word_longer_than_window_kept_and_counted(wordpiece, unigram):
  long = "lamb" * 8
  for tok in (wordpiece, unigram):
    n = len(tok(long, add_special_tokens=False)["input_ids"])
    assert n > 14
    s = Sentence(tokens=("Peter", long, "lives"), tags=("B-PER", "B-LOC", "O"))
    feats = enc.encode([s], tok, TAG_TO_ID, max_length=16, stride=2)
    assert all(len(f) <= 16 for f in feats)
    assert sum(f.truncated_subwords for f in feats) == n - 14
    assert batching.merge_predictions(feats, [f.labels for f in feats], 1) == [[1, 3, 0]]


def test_srl_predicate_and_pos_ids(tok):
  words = ("Peter", "rejects", "British", "lamb", ".")
  pos = ("PROPN", "VERB", "ADJ", "NOUN", "PUNCT")
  s = Sentence(tokens=words, tags=("A0", "O", "O", "A1", "O"), scheme="oi", extra={"pos": pos}, predicate=1)
  tag_to_id = {"O": 0, "A0": 1, "A1": 2}
  (f,) = enc.encode([s], tok, tag_to_id, max_length=64, stride=0, pos_to_id=POS_TO_ID)
  wids = tok(list(words), is_split_into_words=True).word_ids()
  expect_pred = [int(w == 1) for w in wids]
  expect_pos = [0 if w is None else POS_TO_ID[pos[w]] + 1 for w in wids]
  assert f.predicate_ids.tolist() == expect_pred
  assert f.pos_ids.tolist() == expect_pos
  assert sum(expect_pred) >= 1
  b = next(batching.batches([f], 2, shuffle=False))
  assert b["predicate_ids"][0, :len(f)].tolist() == expect_pred
  assert b["pos_ids"][0, :len(f)].tolist() == expect_pos


def test_srl_long_sentence_flags_windows_without_predicate(wordpiece):
  (s,) = random_sentences(1, 200, 200, seed=3)
  s = s.replace(predicate=5)
  feats = enc.encode([s], wordpiece, TAG_TO_ID, max_length=32, stride=4)
  assert feats[0].has_predicate and feats[0].predicate_ids.any()
  assert not feats[-1].has_predicate and not feats[-1].predicate_ids.any()


def test_unknown_tag_names_origin(tok):
  s = Sentence(tokens=("Peter", "lives"), tags=("B-PER", "B-MISC"), origin="train.conll:42")
  with pytest.raises(InputError) as e:
    enc.encode([s], tok, TAG_TO_ID, max_length=64, stride=0)
  assert e.value.path == "train.conll" and e.value.line == 42
  assert "B-MISC" in str(e.value) and str(e.value).startswith("train.conll:42:")


def test_unknown_pos_and_missing_pos_column(tok):
  s = Sentence(tokens=("Peter",), tags=("O",), extra={"pos": ("XYZ",)}, origin="u.conllu:7")
  with pytest.raises(InputError, match="u.conllu:7: unknown POS 'XYZ'"):
    enc.encode([s], tok, TAG_TO_ID, max_length=64, stride=0, pos_to_id=POS_TO_ID)
  with pytest.raises(InputError, match="no 'pos' column"):
    enc.encode([s.replace(extra={})], tok, TAG_TO_ID, max_length=64, stride=0, pos_to_id=POS_TO_ID)


def test_bad_lengths_rejected(tok):
  s = random_sentences(1, 3, 3)
  with pytest.raises(ValueError):
    enc.encode(s, tok, TAG_TO_ID, max_length=2, stride=0)
  with pytest.raises(ValueError):
    enc.encode(s, tok, TAG_TO_ID, max_length=10, stride=8)


def test_batches_shapes_padding_and_example_ids(tok):
  sents = random_sentences(37, 1, 40, seed=4)
  feats = enc.encode(sents, tok, TAG_TO_ID, max_length=48, stride=8)
  seen = collections.Counter()
  for b in batching.batches(feats, 8, shuffle=False):
    assert set(b) == {"input_ids", "attention_mask", "token_type_ids", "labels", "predicate_ids", "pos_ids",
                      "word_ids", "example_ids"}
    assert set(b) == set(enc.BATCH_KEYS)
    assert all(v.dtype == np.int32 for v in b.values())
    bsz, length = b["input_ids"].shape
    assert bsz <= 8 and b["example_ids"].shape == (bsz,)
    assert length % 8 == 0 or length == 48
    real = b["attention_mask"].sum(1)
    assert real.max() <= length and real.max() > length - 8
    for r in range(bsz):
      n = int(real[r])
      assert (b["attention_mask"][r, :n] == 1).all() and (b["attention_mask"][r, n:] == 0).all()
      assert (b["input_ids"][r, n:] == tok.pad_token_id).all()
      assert (b["labels"][r, n:] == -1).all() and (b["word_ids"][r, n:] == -1).all()
      assert not b["token_type_ids"].any()
    for r, ex in enumerate(b["example_ids"]):
      seen[int(ex)] += int((b["word_ids"][r] >= 0).sum())
  assert seen == collections.Counter({i: len(s) for i, s in enumerate(sents)})


def test_bucketing_reduces_padding(tok):
  sents = random_sentences(200, 1, 40, seed=5)
  feats = enc.encode(sents, tok, TAG_TO_ID, max_length=64, stride=8)

  def padding(bucket):
    return sum(int((b["attention_mask"] == 0).sum())
               for b in batching.batches(feats, 8, shuffle=True, rng=0, bucket=bucket, bucket_chunk=10))

  assert padding(True) < padding(False) / 2


def test_shuffle_is_seeded_and_complete(tok):
  feats = enc.encode(random_sentences(50, 1, 20, seed=6), tok, TAG_TO_ID, max_length=64, stride=8)

  def order(seed):
    return [int(x) for b in batching.batches(feats, 4, shuffle=True, rng=seed) for x in b["example_ids"]]

  assert order(1) == order(1)
  assert order(1) != order(2)
  assert sorted(order(1)) == sorted(f.example_id for f in feats)
  assert order(np.random.default_rng(3)) == order(3)


def test_drop_remainder_and_fill_last(tok):
  feats = enc.encode(random_sentences(10, 1, 5), tok, TAG_TO_ID, max_length=64, stride=8)
  assert [b["input_ids"].shape[0] for b in batching.batches(feats, 4, shuffle=False, drop_remainder=True)] == [4, 4]
  bs = list(batching.batches(feats, 4, shuffle=False, fill_last=True))
  assert [b["input_ids"].shape[0] for b in bs] == [4, 4, 4]
  last = bs[-1]
  assert last["example_ids"].tolist()[2:] == [-1, -1]
  assert (last["labels"][2:] == -1).all() and last["attention_mask"][2:].sum(1).tolist() == [1, 1]


def test_fixed_shape_with_pad_multiple_max_length(tok):
  feats = enc.encode(random_sentences(10, 1, 20), tok, TAG_TO_ID, max_length=40, stride=8)
  shapes = {b["input_ids"].shape for b in batching.batches(feats, 5, shuffle=False, pad_multiple=40, fill_last=True)}
  assert shapes == {(5, 40)}


def test_merge_from_shuffled_batches_and_logits(tok):
  sents = random_sentences(6, 60, 90, seed=7) + random_sentences(10, 1, 8, seed=8)
  feats = enc.encode(sents, tok, TAG_TO_ID, max_length=24, stride=6)
  bs = list(batching.batches(feats, 4, shuffle=True, rng=0, fill_last=True))
  onehot = [np.eye(len(TAGS), dtype=np.float32)[np.maximum(b["labels"], 0)] for b in bs]
  gold = [[TAG_TO_ID[t] for t in s.tags] for s in sents]
  assert batching.merge_predictions(bs, onehot, len(sents), num_words=[len(s) for s in sents]) == gold
  assert batching.merge_predictions(bs, [b["labels"] for b in bs], len(sents)) == gold


def test_merge_detects_missing_and_duplicate_words(tok):
  sents = random_sentences(2, 5, 5)
  feats = enc.encode(sents, tok, TAG_TO_ID, max_length=64, stride=0)
  with pytest.raises(ValueError, match="no prediction"):
    batching.merge_predictions(feats[:1], [feats[0].labels], 2)
  b = next(batching.batches(feats, 2, shuffle=False, bucket=False))
  assert batching.merge_predictions([b], [b["labels"]], 2) == [[TAG_TO_ID[t] for t in s.tags] for s in sents]
  b["word_ids"][1][b["word_ids"][1] == 2] = -1  # word 2 of record 1 lost
  with pytest.raises(ValueError, match=r"record 1: words \[2\] have no prediction"):
    batching.merge_predictions([b], [b["labels"]], 2)
  with pytest.raises(ValueError, match="two windows"):
    batching.merge_predictions([feats[0], feats[0]], [feats[0].labels] * 2, 2)


def test_cache_dir_is_read_back(tok, tmp_path):
  sents = random_sentences(5, 3, 8)
  feats = enc.encode(sents, tok, TAG_TO_ID, max_length=64, stride=0, cache_dir=tmp_path)
  (path,) = tmp_path.glob("wordpieces-*.json")
  assert path.name == f"wordpieces-{enc.tokenizer_fingerprint(tok)}.json"
  table = json.loads(path.read_text(encoding="utf-8"))
  assert set(table) >= {w for s in sents for w in s.tokens}
  # A fresh tokenizer object (same pipeline) must read the table: tamper with one entry to see it.
  folder = tmp_path / "tok"
  tok.save_pretrained(folder)
  again = AutoTokenizer.from_pretrained(folder)
  assert enc.tokenizer_fingerprint(again) == enc.tokenizer_fingerprint(tok)
  word = sents[0].tokens[0]
  table[word] = [again.unk_token_id] * 3
  path.write_text(json.dumps(table), encoding="utf-8")
  assert enc._tokenize_words(again, [word], tmp_path)[word] == (again.unk_token_id,) * 3
  # ... and encode's check against whole-sentence tokenization still catches a wrong table.
  (f,) = enc.encode([sents[0]], again, TAG_TO_ID, max_length=64, stride=0, cache_dir=tmp_path)
  assert f.input_ids.tolist() == feats[0].input_ids.tolist()


def test_context_dependent_tokenization_falls_back(tok):
  # Simulate a tokenizer whose per-word pieces differ from sentence tokenization: the check must
  # notice and re-tokenize whole sentences.
  sents = random_sentences(4, 3, 6, seed=9)
  fresh = vocab.train_wordpiece(TEXTS, vocab_size=120) if tok.unk_token == "[UNK]" else vocab.train_unigram(TEXTS, vocab_size=120)
  memo = enc._MEMO.setdefault(fresh, {})
  for s in sents:
    for w in s.tokens:
      memo[w] = (fresh.unk_token_id,)
  feats = enc.encode(sents, fresh, TAG_TO_ID, max_length=64, stride=0)
  for s, f in zip(sents, feats):
    ids, _ = first_subword_positions(fresh, s.tokens)
    assert f.input_ids.tolist() == ids


@pytest.mark.realdata
def test_real_conll_dev_windows_and_merge(data_dir):
  from mtlws_jax.data import conll
  sents = conll.read(data_dir / "ner/Easy-Label-Projection/original/de/de.conll.dev.tsv")[:1000]
  tok = vocab.train_wordpiece([s.tokens for s in sents], vocab_size=1500)
  tag_to_id = {t: i for i, t in enumerate(sorted({t for s in sents for t in s.tags}))}
  feats = enc.encode(sents, tok, tag_to_id, max_length=32, stride=8)
  assert enc.summary(feats)["split_records"] > 20
  assert all(len(f) <= 32 for f in feats)
  gold = [[tag_to_id[t] for t in s.tags] for s in sents]
  bs = list(batching.batches(feats, 16, shuffle=True, rng=0))
  assert batching.merge_predictions(bs, [b["labels"] for b in bs], len(sents),
                               num_words=[len(s) for s in sents]) == gold
  # Unsplit sentences equal the tokenizer's own whole-sentence encoding.
  single = collections.Counter(f.example_id for f in feats)
  for f in feats[:500]:
    if single[f.example_id] == 1:
      assert f.input_ids.tolist() == tok(list(sents[f.example_id].tokens), is_split_into_words=True)["input_ids"]
