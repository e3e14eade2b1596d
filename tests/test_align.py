"""Word alignment: Pharaoh files, symmetrization on hand-made cases, seeded eflomal, the CLI."""

from __future__ import annotations

import random

import pytest

from mtlws_jax.errors import InputError, main_guard
from mtlws_jax.projection import align as A

# ---------------------------------------------------------------------------------------------
# Pharaoh and tokenized files.


def test_pharaoh_round_trip(tmp_path):
  links = [frozenset({(0, 0), (2, 1), (1, 3)}), frozenset(), frozenset({(0, 0)})]
  path = tmp_path / "a.txt"
  A.write_pharaoh(path, links)
  assert path.read_text() == "0-0 1-3 2-1\n\n0-0\n"
  assert A.read_pharaoh(path, src_lengths=[3, 0, 1], tgt_lengths=[4, 0, 1]) == links


def test_pharaoh_index_out_of_range_names_line(tmp_path):
  path = tmp_path / "a.txt"
  path.write_text("0-0 1-1\n0-0 0-5\n")
  with pytest.raises(InputError, match=r"a\.txt:2: .*target index 5 out of range for 3"):
    A.read_pharaoh(path, src_lengths=[2, 2], tgt_lengths=[2, 3])
  path.write_text("0-0\n7-0\n")
  with pytest.raises(InputError, match=r"a\.txt:2: .*source index 7"):
    A.read_pharaoh(path, src_lengths=[1, 2], tgt_lengths=[1, 1])


def test_pharaoh_bad_link_and_count(tmp_path):
  path = tmp_path / "a.txt"
  path.write_text("0-0 1:1\n")
  with pytest.raises(InputError, match=r"a\.txt:1: bad link '1:1'"):
    A.read_pharaoh(path)
  path.write_text("0-0\n")
  with pytest.raises(InputError, match=r"a\.txt:2: 1 alignment lines for 2 sentence pairs"):
    A.read_pharaoh(path, src_lengths=[1, 1], tgt_lengths=[1, 1])


def test_one_indexed_links():
  assert A.parse_links("1-1 2-3", one_indexed=True) == {(0, 0), (1, 2)}
  with pytest.raises(InputError, match="index 0"):
    A.parse_links("0-1", one_indexed=True)


def test_tokenized_file_rejects_tabs_and_double_spaces(tmp_path):
  path = tmp_path / "s.txt"
  path.write_text("a b c\n\nd e\n")
  assert A.read_tokenized(path) == [["a", "b", "c"], [], ["d", "e"]]
  path.write_text("a b\nc\td\n")
  with pytest.raises(InputError, match=r"s\.txt:2: .*tab"):
    A.read_tokenized(path)
  path.write_text("a b\nok\nc  d\n")
  with pytest.raises(InputError, match=r"s\.txt:3: two spaces"):
    A.read_tokenized(path)


def test_check_tokens_rejects_spaces_inside_tokens():
  with pytest.raises(InputError, match=r"sentence 4: token 1 'New York' contains whitespace"):
    A.check_tokens(["in", "New York"], line=4)
  with pytest.raises(InputError, match=r"x:4: .*contains a tab"):
    A.check_tokens(["a\tb"], "x", 4)


# ---------------------------------------------------------------------------------------------
# Symmetrization on hand-made cases.

FWD = {(0, 0), (1, 1), (3, 1), (3, 3)}
REV = {(0, 0), (1, 1)}


def test_intersection_and_union():
  assert A.symmetrize(FWD, REV, "intersection") == {(0, 0), (1, 1)}
  assert A.symmetrize(FWD, REV, "union") == FWD


def test_grow_diag_final_variants_differ_as_defined():
  # (3,1) and (3,3) touch no intersection link: grow-diag adds neither.
  assert A.symmetrize(FWD, REV, "grow-diag") == {(0, 0), (1, 1)}
  # final-and adds a direction's link only when both its words are unaligned: (3,1) has target 1
  # aligned already, (3,3) has both words free.
  assert A.symmetrize(FWD, REV, "grow-diag-final-and") == {(0, 0), (1, 1), (3, 3)}
  # final adds it when either word is unaligned: (3,1) (source 3 free), then (3,3) (target 3 free).
  assert A.symmetrize(FWD, REV, "grow-diag-final") == {(0, 0), (1, 1), (3, 1), (3, 3)}


def test_grow_diag_follows_chains_of_neighbours():
  fwd = {(0, 0), (1, 1)}
  rev = {(0, 0), (2, 2), (3, 3)}
  # (1,1) is next to (0,0); (2,2) next to (1,1); (3,3) next to (2,2): all grown in.
  assert A.symmetrize(fwd, rev, "grow-diag") == {(0, 0), (1, 1), (2, 2), (3, 3)}


def test_grow_diag_skips_links_whose_words_are_both_aligned():
  fwd = {(0, 0), (1, 1), (0, 1)}
  rev = {(0, 0), (1, 1), (1, 0)}
  # (0,1) and (1,0) neighbour the intersection but all their words are aligned already.
  assert A.symmetrize(fwd, rev, "grow-diag-final-and") == {(0, 0), (1, 1)}


def test_grow_diag_adds_union_link_with_one_new_word():
  fwd = {(0, 0), (0, 1)}  # "twice" -> "dos veces"
  rev = {(0, 0)}
  assert A.symmetrize(fwd, rev, "grow-diag-final-and") == {(0, 0), (0, 1)}
  assert A.symmetrize(fwd, rev, "intersection") == {(0, 0)}


def test_unknown_symmetrization():
  with pytest.raises(ValueError, match="unknown symmetrization"):
    A.symmetrize(FWD, REV, "grow")


# ---------------------------------------------------------------------------------------------
# Units (attached punctuation).


def test_split_punct_units_map_back_to_tokens():
  assert A.split_punct("lugar,") == ["lugar", ","]
  assert A.split_punct("(Paris)") == ["(", "Paris", ")"]
  assert A.split_punct("...") == ["..."]
  assert A.split_punct("l'Europe") == ["l'Europe"]
  units, owner = A.to_units(["bien.", "(dos)", "x"], punct=True)
  assert units == ["bien", ".", "(", "dos", ")", "x"]
  assert owner == [0, 0, 1, 1, 1, 2]
  assert A._to_token_links({(0, 3), (1, 4)}, [0, 1], owner) == {(0, 1), (1, 1)}


# ---------------------------------------------------------------------------------------------
# eflomal.


def _toy_corpus(n, seed=0):
  """A synthetic 'language pair': a fixed lexicon and a swap of adjacent noun-adjective pairs."""
  rng = random.Random(seed)
  nouns = [f"n{i}" for i in range(12)]
  adjs = [f"a{i}" for i in range(8)]
  verbs = [f"v{i}" for i in range(6)]
  src, tgt, gold = [], [], []
  for _ in range(n):
    s = ["the", rng.choice(adjs), rng.choice(nouns), rng.choice(verbs), "the", rng.choice(nouns)]
    # Target: le N' A' V' le N' (adjective after noun).
    t = ["le", s[2].upper(), s[1].upper(), s[3].upper(), "le", s[5].upper()]
    src.append(s)
    tgt.append(t)
    gold.append({(0, 0), (1, 2), (2, 1), (3, 3), (4, 4), (5, 5)})
  return src, tgt, gold


def _random_corpus(n, seed=0):
  rng = random.Random(seed)
  vocab = [f"w{i}" for i in range(30)]
  src = [[rng.choice(vocab) for _ in range(rng.randint(3, 8))] for _ in range(n)]
  tgt = [[rng.choice(vocab).upper() for _ in range(rng.randint(3, 8))] for _ in range(n)]
  return src, tgt


FAST = dict(n_samplers=1, rel_iterations=0.3)


def test_eflomal_learns_a_toy_lexicon_and_reordering():
  src, tgt, gold = _toy_corpus(200)
  links = A.align(src, tgt, config=A.EflomalConfig(**FAST))
  assert len(links) == 200
  correct = sum(len(l & g) for l, g in zip(links, gold))
  total = sum(len(l) for l in links)
  assert correct / total > 0.9
  assert correct / sum(len(g) for g in gold) > 0.9


def test_eflomal_same_seed_repeats_other_seed_differs():
  src, tgt = _random_corpus(150)
  cfg = A.EflomalConfig(n_samplers=2, rel_iterations=0.3, seed=7)
  a = A.eflomal_links(src, tgt, config=cfg)
  b = A.eflomal_links(src, tgt, config=cfg)
  c = A.eflomal_links(src, tgt, config=A.EflomalConfig(n_samplers=2, rel_iterations=0.3, seed=8))
  assert a == b
  assert a != c  # noise text: the seed decides many links, so a seed that is ignored fails here


def test_forward_and_reverse_links_are_source_target_pairs():
  src, tgt = [["a", "b", "c", "d"]] * 30, [["x"]] * 30
  fwd, rev = A.eflomal_links(src, tgt, config=A.EflomalConfig(**FAST))
  for links in fwd + rev:
    assert all(0 <= i < 4 and j == 0 for i, j in links)


def test_extra_text_is_aligned_together_then_discarded():
  src, tgt, gold = _toy_corpus(300, seed=1)
  few_src, few_tgt, few_gold = src[:4], tgt[:4], gold[:4]
  alone = A.align(few_src, few_tgt, config=A.EflomalConfig(**FAST))
  helped = A.align(few_src, few_tgt, extra_src=src[4:], extra_tgt=tgt[4:], config=A.EflomalConfig(**FAST))
  assert len(helped) == 4
  score = lambda links: sum(len(l & g) for l, g in zip(links, few_gold))
  assert score(helped) == 24  # all six links of each of the four pairs
  assert score(alone) < score(helped)


def test_split_punct_links_index_the_original_tokens():
  src = [["the", "house."], ["a", "house,", "the", "cat."]] * 40
  tgt = [["la", "casa."], ["una", "casa,", "el", "gato."]] * 40
  links = A.align(src, tgt, config=A.EflomalConfig(split_punct=True, **FAST))
  assert (1, 1) in links[0]
  assert all(i < len(s) and j < len(t) for l, s, t in zip(links, src, tgt) for i, j in l)


def test_eflomal_rejects_whitespace_in_tokens():
  with pytest.raises(InputError, match=r"^target sentence 2: token 0 'a b' contains whitespace"):
    A.eflomal_links([["x"], ["y"]], [["z"], ["a b"]])


# ---------------------------------------------------------------------------------------------
# CLI.


def _write(path, sents):
  path.write_text("".join(" ".join(s) + "\n" for s in sents))
  return str(path)


def test_cli_writes_one_line_per_pair(tmp_path):
  src, tgt, gold = _toy_corpus(120, seed=2)
  s, t = _write(tmp_path / "s.txt", src[:20]), _write(tmp_path / "t.txt", tgt[:20])
  es, et = _write(tmp_path / "es.txt", src[20:]), _write(tmp_path / "et.txt", tgt[20:])
  out = tmp_path / "out.txt"
  assert A.main([f"--src={s}", f"--tgt={t}", f"--out={out}", f"--extra-src={es}", f"--extra-tgt={et}",
                 "--seed=3", "--symmetrize=intersection"]) == 0
  links = A.read_pharaoh(out, [6] * 20, [6] * 20)
  assert len(links) == 20
  assert sum(len(l & g) for l, g in zip(links, gold)) / sum(len(l) for l in links) > 0.9


def test_cli_bad_input_exits_with_line(tmp_path, capsys):
  s = _write(tmp_path / "s.txt", [["a", "b"], ["c"], ["d"]])
  t = _write(tmp_path / "t.txt", [["x"], ["y"]])
  with pytest.raises(SystemExit) as e:
    main_guard(A.main)([f"--src={s}", f"--tgt={t}", f"--out={tmp_path / 'o'}"])
  assert e.value.code == 1
  assert "t.txt:3: 2 target sentences for 3 source sentences" in capsys.readouterr().err
  t = _write(tmp_path / "t.txt", [["x"], [], ["z"]])
  with pytest.raises(SystemExit):
    main_guard(A.main)([f"--src={s}", f"--tgt={t}", f"--out={tmp_path / 'o'}"])
  assert "t.txt:2: empty target sentence" in capsys.readouterr().err


def test_eflomal_length_limit_is_an_error_not_an_empty_alignment():
  long = [f"w{i}" for i in range(A.MAX_UNITS + 1)]
  with pytest.raises(InputError, match=r"sentence pair 2 has 1024 tokens .*at most 1023"):
    A.eflomal_links([["a"], long], [["x"], ["y"]])
