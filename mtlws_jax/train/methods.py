"""What each adaptation method trains on (paper Sec. 3-5), as a plan of model runs.

  zero_shot    one model, source-language gold only (Eq. 3)
  target_only  one model per target language, on its translated (pseudo-labelled) set (Eq. 4)
  bilingual    one model per target language, on source gold + that language's translated set,
               examples treated equally (Eq. 5)
  mtl          one model, on source gold + every translated set, examples treated equally (Eq. 6)
  mtl_ws       warmup (Eq. 7-8) on every target language's translated set, then the adaptation
               method `adapt` (default zero_shot, Eq. 9) from the warmed-up parameters

`plan` only describes runs; reading data, training and evaluation are the loop's job. The
warmup of mtl_ws is the same for every run of a plan (all target languages, Sec. 5.1), so the
loop can compute it once per seed and start each run from it.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

from mtlws_jax.errors import InputError

METHODS = ("zero_shot", "target_only", "bilingual", "mtl", "mtl_ws")
ADAPT_METHODS = ("zero_shot", "target_only", "bilingual", "mtl")
GOLD, TRANSLATED = "gold", "translated"
_LANG_RE = re.compile(r"^[a-z]{2,3}$")


@dataclasses.dataclass(frozen=True)
class TrainSet:
  """One training set: the source language's gold set or a target language's translated set."""
  lang: str
  kind: str  # GOLD | TRANSLATED


@dataclasses.dataclass(frozen=True)
class Run:
  """One model to train and evaluate.

  model_id: unique in a plan and safe as a folder name ("zero_shot", "target_only-es", "mtl_ws",
    "mtl_ws+bilingual-es").
  method: the method asked for; adapt: the method that trains after any warmup (== method unless
    method is mtl_ws).
  train_sets: sets whose examples are pooled and shuffled together, each example weighted equally.
  warmup_langs: target languages whose translated sets the MTL-WS warmup uses; () = no warmup.
  eval_langs: target languages whose dev/test sets this model is scored on.
  """
  model_id: str
  method: str
  adapt: str
  train_sets: tuple[TrainSet, ...]
  warmup_langs: tuple[str, ...]
  eval_langs: tuple[str, ...]

  @property
  def warmup(self) -> bool:
    return bool(self.warmup_langs)

  @property
  def translated_langs(self) -> tuple[str, ...]:
    """Target languages whose translated sets this run reads (training or warmup)."""
    langs = [s.lang for s in self.train_sets if s.kind == TRANSLATED] + list(self.warmup_langs)
    return tuple(dict.fromkeys(langs))


def _check_langs(target_langs: Sequence[str], source: str, available: Iterable[str] | None
                 ) -> tuple[str, ...]:
  if isinstance(target_langs, str):
    raise InputError(f"target languages must be a list of codes, got the string {target_langs!r}")
  langs = tuple(target_langs)
  if not langs:
    raise InputError("no target languages given")
  known = None if available is None else tuple(available)
  seen = set()
  for lang in langs:
    if not isinstance(lang, str) or not _LANG_RE.match(lang):
      raise InputError(f"unknown language {lang!r}: expected a lowercase ISO 639 code like 'es'")
    if lang == source:
      raise InputError(f"target language {lang!r} is the source language")
    if lang in seen:
      raise InputError(f"target language {lang!r} is listed twice")
    if known is not None and lang not in known:
      raise InputError(f"unknown target language {lang!r}; available: {', '.join(known) or 'none'}")
    seen.add(lang)
  return langs


def _adaptation_runs(method: str, langs: tuple[str, ...], source: str, prefix: str,
                     warmup_langs: tuple[str, ...], asked: str, name: str = "") -> list[Run]:
  """prefix: the warmup's name before "+adapt" ids ("" without warmup); name: what replaces the
  method in the ids of a run without warmup (a variant's name)."""
  gold = TrainSet(source, GOLD)
  tr = lambda lang: TrainSet(lang, TRANSLATED)
  own = name or method
  if method == "zero_shot":
    return [Run(prefix or own, asked, method, (gold,), warmup_langs, langs)]
  if method == "mtl":
    return [Run(prefix + "+" + method if prefix else own, asked, method,
                (gold,) + tuple(tr(l) for l in langs), warmup_langs, langs)]
  runs = []
  for lang in langs:
    sets = (tr(lang),) if method == "target_only" else (gold, tr(lang))
    mid = f"{prefix}+{method}-{lang}" if prefix else f"{own}-{lang}"
    runs.append(Run(mid, asked, method, sets, warmup_langs, (lang,)))
  return runs


def plan(method: str, target_langs: Sequence[str], *, adapt: str = "zero_shot",
         source: str = "en", available: Iterable[str] | None = None, name: str | None = None) -> list[Run]:
  """The runs `method` needs for `target_langs` (source-language gold is `source`).

  adapt is used only by mtl_ws. available: target languages that have data (e.g. the config's
  language list); others are an InputError, as are unknown methods, duplicates and the source.
  name: the prefix of the model ids (default the method's own name; a variant's name).
  """
  if method not in METHODS:
    raise InputError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
  if not isinstance(source, str) or not _LANG_RE.match(source):
    raise InputError(f"unknown source language {source!r}: expected a code like 'en'")
  langs = _check_langs(target_langs, source, available)
  if method != "mtl_ws":
    return _adaptation_runs(method, langs, source, "", (), method, name or method)
  if adapt not in ADAPT_METHODS:
    raise InputError(f"unknown adaptation method {adapt!r} after mtl_ws warmup; expected one of "
                     f"{', '.join(ADAPT_METHODS)}")
  return _adaptation_runs(adapt, langs, source, name or "mtl_ws", langs, method)


def translated_langs(runs: Iterable[Run]) -> list[str]:
  """Every target language whose translated set some run reads, in first-use order."""
  return list(dict.fromkeys(l for r in runs for l in r.translated_langs))
