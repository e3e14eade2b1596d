"""Word alignment: eflomal in-process, symmetrization, Pharaoh `i-j` files, and a CLI.

An alignment of one sentence pair is a frozenset of (source index, target index) links,
0-indexed. eflomal aligns both directions in one run; `symmetrize` merges them. Unsupervised
aligners learn from the text they align, so extra parallel text can be appended to the pairs
of interest (its links are thrown away).

CLI:
  python -m mtlws_jax.projection.align --src=FILE --tgt=FILE --out=FILE \
      [--symmetrize=grow-diag-final-and] [--seed=0] [--extra-src=FILE --extra-tgt=FILE] [--split-punct]
      [--prefix-len=N] [--model=1|2|3]
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import os
import re
import sys
import tempfile
import threading
from typing import Iterable, Sequence

from mtlws_jax.errors import InputError, main_guard, argument_parser
from mtlws_jax.projection import seeding

Links = frozenset  # frozenset[tuple[int, int]]

SYMMETRIZATIONS = ("intersection", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and")

# ---------------------------------------------------------------------------------------------
# Tokenized text and Pharaoh files.


def check_tokens(tokens: Sequence[str], path=None, line: int | None = None, what: str = "sentence") -> None:
  """Tokens are written space-separated for aligners: none may be empty or hold whitespace."""
  if path is None and line is not None:  # no file: say which sentence in the message
    what, line = f"{what} {line}", None
  for k, tok in enumerate(tokens):
    if not tok:
      raise InputError(f"{what}: token {k} is empty", path, line)
    if any(c.isspace() for c in tok):
      kind = "a tab" if "\t" in tok else "whitespace"
      raise InputError(f"{what}: token {k} {tok!r} contains {kind}", path, line)


def parse_tokenized_line(text: str, path=None, line: int | None = None) -> list[str]:
  """One line of a tokenized file: tokens separated by single spaces (ends are stripped)."""
  text = text.rstrip("\r\n").strip(" ")
  if not text:
    return []
  if "\t" in text:
    raise InputError("line contains a tab (tokens are separated by single spaces and may not hold tabs)", path, line)
  tokens = text.split(" ")
  if "" in tokens:
    raise InputError("two spaces in a row (an empty token)", path, line)
  check_tokens(tokens, path, line)
  return tokens


def read_tokenized(path) -> list[list[str]]:
  """A file of one tokenized sentence per line (empty lines are empty sentences).

  Read through data/textfile (strict UTF-8, BOM dropped, CRLF, NUL and lone-CR checks): a BOM
  would otherwise stay inside the first token and be projected as part of it.
  """
  from mtlws_jax.data import textfile
  return [parse_tokenized_line(t, path, i) for i, t in enumerate(textfile.read_lines(path), 1)]


def write_tokenized(path, sentences: Iterable[Sequence[str]]) -> None:
  from mtlws_jax.data import textfile
  lines = []
  for k, toks in enumerate(sentences):
    check_tokens(toks, path, k + 1)
    lines.append(" ".join(toks) + "\n")
  textfile.write_text(path, "".join(lines))


def parse_links(text: str, path=None, line: int | None = None, src_len: int | None = None,
                tgt_len: int | None = None, one_indexed: bool = False) -> Links:
  """A Pharaoh line `0-0 1-2 ...`; with lengths given, indices are range-checked."""
  links = set()
  off = 1 if one_indexed else 0
  for item in text.split():
    m = re.fullmatch(r"([0-9]+)-([0-9]+)", item)
    if m is None:
      raise InputError(f"bad link {item!r} (expected i-j with non-negative integers)", path, line)
    i, j = int(m.group(1)) - off, int(m.group(2)) - off
    if i < 0 or j < 0:
      raise InputError(f"link {item!r} has index 0 in a 1-indexed file", path, line)
    if src_len is not None and i >= src_len:
      raise InputError(f"link {item!r}: source index {i} out of range for {src_len} source tokens", path, line)
    if tgt_len is not None and j >= tgt_len:
      raise InputError(f"link {item!r}: target index {j} out of range for {tgt_len} target tokens", path, line)
    links.add((i, j))
  return frozenset(links)


def format_links(links: Iterable[tuple[int, int]]) -> str:
  return " ".join(f"{i}-{j}" for i, j in sorted(links))


def read_pharaoh(path, src_lengths: Sequence[int] | None = None, tgt_lengths: Sequence[int] | None = None,
                 one_indexed: bool = False) -> list[Links]:
  """Pharaoh file, one line per sentence pair; with lengths, counts and indices are checked."""
  from mtlws_jax.data import textfile
  lines = textfile.read_lines(path, allow_blank=True)  # all-blank: pairs with no link at all
  if src_lengths is not None and len(lines) != len(src_lengths):
    raise InputError(f"{len(lines)} alignment lines for {len(src_lengths)} sentence pairs", path,
                     min(len(lines), len(src_lengths)) + 1)
  out = []
  for k, text in enumerate(lines):
    sl = None if src_lengths is None else src_lengths[k]
    tl = None if tgt_lengths is None else tgt_lengths[k]
    out.append(parse_links(text, path, k + 1, sl, tl, one_indexed))
  return out


def write_pharaoh(path, alignments: Iterable[Iterable[tuple[int, int]]]) -> None:
  from mtlws_jax.data import textfile
  textfile.write_text(path, "".join(format_links(links) + "\n" for links in alignments))


# ---------------------------------------------------------------------------------------------
# Symmetrization (Koehn et al. 2003; the pseudo-code of the Moses manual, "grow-diag-final-and").

_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _grow_diag(alignment: set, union: frozenset) -> None:
  """Adds union links next to (incl. diagonally) existing ones that cover a new word, to a fixpoint.

  Visits links in (source, target) order, as the reference grid scan does: a link added ahead
  of the scan position is visited in the same pass, one added behind it in the next pass.
  """
  src_aligned = {i for i, _ in alignment}
  tgt_aligned = {j for _, j in alignment}
  changed = True
  while changed:
    changed = False
    heap = sorted(alignment)
    seen = set(heap)
    while heap:
      e, f = heapq.heappop(heap)
      for de, df in _NEIGHBOURS:
        p = (e + de, f + df)
        if p in union and p not in alignment and (p[0] not in src_aligned or p[1] not in tgt_aligned):
          alignment.add(p)
          src_aligned.add(p[0])
          tgt_aligned.add(p[1])
          if p > (e, f) and p not in seen:
            heapq.heappush(heap, p)
            seen.add(p)
          else:
            changed = True


def _final(alignment: set, direction: frozenset, both_unaligned: bool) -> None:
  """Adds links of one direction whose words are unaligned (both: "final-and"; either: "final")."""
  src_aligned = {i for i, _ in alignment}
  tgt_aligned = {j for _, j in alignment}
  for e, f in sorted(direction):
    if (e, f) in alignment:
      continue
    new_e, new_f = e not in src_aligned, f not in tgt_aligned
    if (new_e and new_f) if both_unaligned else (new_e or new_f):
      alignment.add((e, f))
      src_aligned.add(e)
      tgt_aligned.add(f)


def symmetrize(fwd: Iterable[tuple[int, int]], rev: Iterable[tuple[int, int]],
               method: str = "grow-diag-final-and") -> Links:
  """Merges forward (source->target) and reverse links, both given as (source, target) pairs."""
  fwd, rev = frozenset(fwd), frozenset(rev)
  if method == "intersection":
    return fwd & rev
  if method == "union":
    return fwd | rev
  if method not in SYMMETRIZATIONS:
    raise ValueError(f"unknown symmetrization {method!r}; choose from {', '.join(SYMMETRIZATIONS)}")
  alignment = set(fwd & rev)
  _grow_diag(alignment, fwd | rev)
  if method != "grow-diag":
    and_ = method == "grow-diag-final-and"
    _final(alignment, fwd, and_)
    _final(alignment, rev, and_)
  return frozenset(alignment)


# ---------------------------------------------------------------------------------------------
# Units: what the aligner sees. Splitting attached punctuation ("lugar," -> "lugar" ",") lets
# the word align to its translation instead of to a rare "word+comma" type; links map back.

_SPLIT_RE = re.compile(r"^(\W*)(.*?)(\W*)$", re.S)  # \W: punctuation and symbols


def split_punct(token: str) -> list[str]:
  """Leading and trailing punctuation as separate units; a token of punctuation only stays whole."""
  m = _SPLIT_RE.match(token)
  lead, core, trail = m.groups()
  if not core:
    return [token]
  return [u for u in (lead, core, trail) if u]


def to_units(tokens: Sequence[str], punct: bool) -> tuple[list[str], list[int]]:
  """The aligner's units for one sentence and, for each unit, the index of its token."""
  if not punct:
    return list(tokens), list(range(len(tokens)))
  units, owner = [], []
  for k, tok in enumerate(tokens):
    for u in split_punct(tok):
      units.append(u)
      owner.append(k)
  return units, owner


def _to_token_links(links: Iterable[tuple[int, int]], src_owner: Sequence[int], tgt_owner: Sequence[int]) -> Links:
  return frozenset((src_owner[i], tgt_owner[j]) for i, j in links)


# ---------------------------------------------------------------------------------------------
# eflomal.

_ENV_LOCK = threading.Lock()
MAX_UNITS = 1023  # eflomal's write_text leaves longer sentences empty (no links at all)


@contextlib.contextmanager
def _environ(changes: dict[str, str]):
  """eflomal starts its binary with the process environment: set ours for the duration."""
  with _ENV_LOCK:
    old = {k: os.environ.get(k) for k in changes}
    os.environ.update(changes)
    try:
      yield
    finally:
      for k, v in old.items():
        if v is None:
          os.environ.pop(k, None)
        else:
          os.environ[k] = v


@dataclasses.dataclass(frozen=True)
class EflomalConfig:
  """Settings of one eflomal run. seed=None: unseeded (eflomal's own /dev/urandom seed).

  model: 1 IBM1, 2 +HMM, 3 +fertility. split_punct: align attached punctuation as own units.
  prefix_len: compare words on their first N characters (0 = whole word; eflomal lowercases).
  """

  seed: int | None = 0
  model: int = 3
  n_samplers: int = 3
  rel_iterations: float = 1.0
  null_prior: float = 0.2
  split_punct: bool = False
  prefix_len: int = 0


def eflomal_links(src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]], *,
                  extra_src: Sequence[Sequence[str]] = (), extra_tgt: Sequence[Sequence[str]] = (),
                  config: EflomalConfig = EflomalConfig()) -> tuple[list[Links], list[Links]]:
  """Forward and reverse eflomal links (both as (source, target)) for the pairs of interest.

  Extra pairs are aligned together with them (they improve the model) and then discarded;
  extra pairs with an empty side carry nothing to learn and are left out of the run, as are
  extra pairs over eflomal's length limit. A pair of interest over it is an InputError.
  """
  import eflomal  # optional at import time of this module: only this function needs it

  if len(src) != len(tgt):
    raise ValueError(f"{len(src)} source sentences but {len(tgt)} target sentences")
  if len(extra_src) != len(extra_tgt):
    raise ValueError(f"{len(extra_src)} extra source sentences but {len(extra_tgt)} extra target sentences")
  for k, (s, t) in enumerate(zip(src, tgt)):
    check_tokens(s, line=k + 1, what="source sentence")
    check_tokens(t, line=k + 1, what="target sentence")
  for k, (s, t) in enumerate(zip(extra_src, extra_tgt)):
    check_tokens(s, line=k + 1, what="extra source sentence")
    check_tokens(t, line=k + 1, what="extra target sentence")
  n = len(src)
  if n == 0:
    return [], []
  su = [to_units(s, config.split_punct) for s in src]
  tu = [to_units(t, config.split_punct) for t in tgt]
  for k, ((s, _), (t, _)) in enumerate(zip(su, tu)):
    if max(len(s), len(t)) > MAX_UNITS:
      raise InputError(f"sentence pair {k + 1} has {max(len(s), len(t))} tokens (units); eflomal aligns at most "
                       f"{MAX_UNITS}: split it")
  src_lines = [" ".join(u) for u, _ in su]
  tgt_lines = [" ".join(u) for u, _ in tu]
  for s, t in zip(extra_src, extra_tgt):
    s, t = to_units(s, config.split_punct)[0], to_units(t, config.split_punct)[0]
    if s and t and max(len(s), len(t)) <= MAX_UNITS:
      src_lines.append(" ".join(s))
      tgt_lines.append(" ".join(t))
  aligner = eflomal.Aligner(model=config.model, n_samplers=config.n_samplers,
                            rel_iterations=config.rel_iterations, null_prior=config.null_prior,
                            source_prefix_len=config.prefix_len, target_prefix_len=config.prefix_len)
  with tempfile.TemporaryDirectory() as tmp:
    fwd_path, rev_path = os.path.join(tmp, "fwd"), os.path.join(tmp, "rev")
    with _environ(seeding.seeded_env(config.seed)):
      aligner.align(src_lines, tgt_lines, links_filename_fwd=fwd_path, links_filename_rev=rev_path)
    fwd_raw = read_pharaoh(fwd_path)
    rev_raw = read_pharaoh(rev_path)
  if len(fwd_raw) < n or len(rev_raw) < n:
    raise RuntimeError(f"eflomal returned {len(fwd_raw)}/{len(rev_raw)} alignment lines for {n} pairs")
  fwd = [_to_token_links(fwd_raw[k], su[k][1], tu[k][1]) for k in range(n)]
  rev = [_to_token_links(rev_raw[k], su[k][1], tu[k][1]) for k in range(n)]
  return fwd, rev


def align(src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]], *,
          symmetrization: str = "grow-diag-final-and",
          extra_src: Sequence[Sequence[str]] = (), extra_tgt: Sequence[Sequence[str]] = (),
          config: EflomalConfig = EflomalConfig()) -> list[Links]:
  """Symmetrized eflomal links for each (source, target) pair of token lists."""
  if symmetrization not in SYMMETRIZATIONS:
    raise ValueError(f"unknown symmetrization {symmetrization!r}; choose from {', '.join(SYMMETRIZATIONS)}")
  fwd, rev = eflomal_links(src, tgt, extra_src=extra_src, extra_tgt=extra_tgt, config=config)
  return [symmetrize(f, r, symmetrization) for f, r in zip(fwd, rev)]


def check_pairs(src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]], src_path=None, tgt_path=None) -> None:
  """Same number of sentences, and no empty target for a non-empty source (names the line)."""
  if len(src) != len(tgt):
    raise InputError(f"{len(tgt)} target sentences for {len(src)} source sentences ({src_path})", tgt_path,
                     min(len(src), len(tgt)) + 1)
  for k, (s, t) in enumerate(zip(src, tgt)):
    if s and not t:
      raise InputError("empty target sentence for a non-empty source sentence", tgt_path, k + 1)


def main(argv: Sequence[str] | None = None) -> int:
  p = argument_parser(prog="python -m mtlws_jax.projection.align", description=__doc__.split("\n")[0])
  p.add_argument("--src", required=True, help="tokenized source sentences, one per line")
  p.add_argument("--tgt", required=True, help="tokenized target sentences, line i translates source line i")
  p.add_argument("--out", required=True, help="Pharaoh links out (0-indexed source-target)")
  p.add_argument("--symmetrize", default="grow-diag-final-and", choices=SYMMETRIZATIONS)
  p.add_argument("--seed", type=int, default=0, help="eflomal seed (-1: unseeded)")
  p.add_argument("--extra-src", help="extra parallel text aligned together with --src/--tgt, then discarded")
  p.add_argument("--extra-tgt")
  p.add_argument("--split-punct", action="store_true", help="align attached punctuation as separate units")
  p.add_argument("--prefix-len", type=int, default=0, help="eflomal compares words on their first N characters")
  p.add_argument("--model", type=int, default=3, choices=(1, 2, 3))
  args = p.parse_args(argv)
  from mtlws_jax.errors import check_output
  check_output(args.out, args.src, args.tgt, args.extra_src, args.extra_tgt)
  if not 0 <= args.prefix_len <= 1000:
    p.error(f"--prefix-len must be in [0, 1000], got {args.prefix_len}")
  if seeding.seed_problem(args.seed):
    p.error(seeding.seed_problem(args.seed))
  src, tgt = read_tokenized(args.src), read_tokenized(args.tgt)
  check_pairs(src, tgt, args.src, args.tgt)
  extra_src, extra_tgt = (), ()
  if bool(args.extra_src) != bool(args.extra_tgt):
    p.error("--extra-src and --extra-tgt go together")
  if args.extra_src:
    extra_src, extra_tgt = read_tokenized(args.extra_src), read_tokenized(args.extra_tgt)
    check_pairs(extra_src, extra_tgt, args.extra_src, args.extra_tgt)
  config = EflomalConfig(seed=None if args.seed < 0 else args.seed, model=args.model, split_punct=args.split_punct,
                         prefix_len=args.prefix_len)
  links = align(src, tgt, symmetrization=args.symmetrize, extra_src=extra_src, extra_tgt=extra_tgt, config=config)
  write_pharaoh(args.out, links)
  return 0


if __name__ == "__main__":
  sys.exit(main_guard(main)())
