"""Which data each adaptation method trains on, and clear errors for bad method/language."""

import pytest

from mtlws_jax.errors import InputError
from mtlws_jax.train import methods
from mtlws_jax.train.methods import GOLD, TRANSLATED, TrainSet

LANGS = ["es", "fr", "nl"]
EN = TrainSet("en", GOLD)


def tr(lang):
  return TrainSet(lang, TRANSLATED)


def test_zero_shot_one_model_on_english_gold_scored_everywhere():
  (run,) = methods.plan("zero_shot", LANGS)
  assert run.model_id == "zero_shot" and run.adapt == "zero_shot"
  assert run.train_sets == (EN,)
  assert not run.warmup and run.translated_langs == ()
  assert run.eval_langs == ("es", "fr", "nl")


def test_target_only_one_model_per_language_on_its_translation():
  runs = methods.plan("target_only", LANGS)
  assert [r.model_id for r in runs] == ["target_only-es", "target_only-fr", "target_only-nl"]
  for run, lang in zip(runs, LANGS):
    assert run.train_sets == (tr(lang),)
    assert run.eval_langs == (lang,)
    assert not run.warmup


def test_bilingual_one_model_per_language_english_plus_translation():
  runs = methods.plan("bilingual", LANGS)
  assert [r.train_sets for r in runs] == [(EN, tr(l)) for l in LANGS]
  assert [r.eval_langs for r in runs] == [(l,) for l in LANGS]


def test_mtl_one_model_on_english_and_all_translations():
  (run,) = methods.plan("mtl", LANGS)
  assert run.train_sets == (EN, tr("es"), tr("fr"), tr("nl"))
  assert run.eval_langs == tuple(LANGS)
  assert run.translated_langs == tuple(LANGS)


def test_mtl_ws_default_warms_up_on_all_targets_then_zero_shot():
  (run,) = methods.plan("mtl_ws", LANGS)
  assert run.model_id == "mtl_ws" and run.method == "mtl_ws" and run.adapt == "zero_shot"
  assert run.warmup and run.warmup_langs == tuple(LANGS)
  assert run.train_sets == (EN,)  # adaptation itself sees English gold only (Eq. 9)
  assert run.eval_langs == tuple(LANGS)
  assert run.translated_langs == tuple(LANGS)


def test_mtl_ws_with_per_language_adaptation_shares_the_full_warmup():
  runs = methods.plan("mtl_ws", LANGS, adapt="bilingual")
  assert [r.model_id for r in runs] == ["mtl_ws+bilingual-es", "mtl_ws+bilingual-fr",
                                        "mtl_ws+bilingual-nl"]
  for run, lang in zip(runs, LANGS):
    assert run.warmup_langs == tuple(LANGS)  # warmup uses every target language (Sec. 5.1)
    assert run.train_sets == (EN, tr(lang))
    assert run.eval_langs == (lang,)
  (mtl,) = methods.plan("mtl_ws", LANGS, adapt="mtl")
  assert mtl.model_id == "mtl_ws+mtl" and mtl.train_sets == (EN, tr("es"), tr("fr"), tr("nl"))


def test_model_ids_unique_across_all_methods():
  ids = [r.model_id for m in methods.METHODS if m != "mtl_ws" for r in methods.plan(m, LANGS)]
  ids += [r.model_id for a in methods.ADAPT_METHODS for r in methods.plan("mtl_ws", LANGS, adapt=a)]
  assert len(ids) == 1 + 3 + 3 + 1 + 1 + 3 + 3 + 1
  assert len(ids) == len(set(ids))


def test_translated_langs_union_in_first_use_order():
  runs = methods.plan("target_only", ["nl", "es"]) + methods.plan("zero_shot", ["nl", "es"])
  assert methods.translated_langs(runs) == ["nl", "es"]


def test_other_source_language():
  (run,) = methods.plan("mtl", ["en"], source="de")
  assert run.train_sets == (TrainSet("de", GOLD), tr("en"))


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="mtlws", target_langs=LANGS), "unknown method 'mtlws'"),
    (dict(method="mtl_ws", target_langs=LANGS, adapt="mtl_ws"), "unknown adaptation method 'mtl_ws'"),
    (dict(method="mtl_ws", target_langs=LANGS, adapt="zeroshot"), "unknown adaptation method"),
    (dict(method="mtl", target_langs=[]), "no target languages"),
    (dict(method="mtl", target_langs="es"), "must be a list"),
    (dict(method="mtl", target_langs=["es", "Spanish"]), "unknown language 'Spanish'"),
    (dict(method="mtl", target_langs=["es", "en"]), "is the source language"),
    (dict(method="mtl", target_langs=["es", "es"]), "listed twice"),
    (dict(method="mtl", target_langs=["es", "tr"], available=["es", "fr"]),
     "unknown target language 'tr'; available: es, fr"),
    (dict(method="zero_shot", target_langs=["es"], source="English"), "unknown source language"),
])
def test_bad_input_is_a_clear_error(kwargs, message):
  with pytest.raises(InputError, match=message):
    methods.plan(**kwargs)
