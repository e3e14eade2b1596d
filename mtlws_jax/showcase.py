"""What a user came for, after the table: a model per language tagging sentences, and where it is.

run.py calls `ending(config, workdir, out)` after training (training never imports this module):
with `config.translated_dev`, every finished run is scored on the translated dev sets that exist
and each target language's choice is printed (eval/select.py); with `config.showcase` (the demo),
`show` lets each language's model tag the first sentences of its test set, printed with the
predicted spans in brackets, [aspect|POS], exports the English-dev choice as a Hugging Face folder
and prints the paths of the plots and the exported model.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence

from mtlws_jax.data import taskspec
from mtlws_jax.data.records import Sentence


def bracketed(tokens: Sequence[str], tags: Sequence[str], task: str, predicate: int | None = None) -> str:
  """The sentence with predicted spans marked: `la [pizza|POS] estaba buena`."""
  from mtlws_jax.data import schemes
  from mtlws_jax.eval import metrics
  words = list(tokens)
  if taskspec.get(task).predicates:
    for _, j, role in metrics.srl_arguments(predicate, tags):
      words[j] = f"[{words[j]}|{role}]"
    if predicate is not None:
      words[predicate] = f"<{words[predicate]}>"
    return " ".join(words)
  for sp in reversed(schemes.tags_to_spans(tags, "bioes")):
    words[sp.start:sp.end] = [f"[{' '.join(words[sp.start:sp.end])}|{sp.label}]"]
  return " ".join(words)


def show(workdir: pathlib.Path, target_test: dict[str, list[Sentence]], out, *, per_lang: int = 3) -> None:
  from mtlws_jax import export, saved
  from mtlws_jax.eval import tagging
  workdir = pathlib.Path(workdir)
  from mtlws_jax.eval import select
  run = saved.load(workdir)
  print(f"\nThe model chosen for each target language on its first test sentences (predicted spans in "
        "brackets); the English dev choice, which is exported, is "
        f"{run.model_id} seed {run.seed} (English dev F1 {100 * run.result['english_dev']:.2f}):", file=out)
  loaded = {(run.model_id, run.seed): run}
  for lang, sents in target_test.items():
    model_id, seed, why = select.choose(workdir, lang)
    if (model_id, seed) not in loaded:
      loaded[model_id, seed] = saved.load(workdir, model_id, seed)
    chosen = loaded[model_id, seed]
    print(f"  {lang} model: {model_id} seed {seed}, {why}", file=out)
    pick = [s for s in sents if any(t != "O" for t in s.tags)][:per_lang] or list(sents[:per_lang])
    pred = tagging.tag_records(chosen, pick, progress=False)
    for s, p in zip(pick, pred):
      print(f"  {lang}: {bracketed(s.tokens, p, chosen.task, s.predicate)}", file=out)
  plots = sorted(str(p) for p in (workdir / "plots").glob("*.png"))
  if plots:
    print("Plots: " + ", ".join(plots), file=out)
  if taskspec.get(run.task).exportable:
    folder = workdir / "exported" / f"{run.model_id}-seed{run.seed}"
    if not folder.exists():
      export.export(workdir, folder, run.model_id, run.seed)
    print(f"Exported model (Hugging Face token classification): {folder}\n"
          f"  tag more text: python -m mtlws_jax.predict --workdir={workdir} --input=FILE.txt "
          "--input-format=text --lang=es --output=OUT.jsonl --format=jsonl", file=out)


def ending(config, workdir: pathlib.Path, out) -> None:
  """After the table: each language's model (translated dev sets), then the showcase."""
  workdir = pathlib.Path(workdir)
  if config.get("translated_dev"):
    choose_per_language(config, workdir, out)
  if config.get("showcase", False):
    from mtlws_jax.data import tasks
    show(workdir, tasks.load_test_sets(config), out)


def choose_per_language(config, workdir: pathlib.Path, out) -> None:
  """Scores the finished runs on the translated dev sets that exist and says which model each
  target language gets; a language without one keeps the English dev choice."""
  from mtlws_jax.eval import select
  files, lacking = {}, []
  for lang in config.target_langs:
    path = pathlib.Path(config.translated_dev.format(lang=lang))
    if path.is_file():
      files[lang] = str(path)
    else:
      lacking.append(f"{lang} ({path})")
  if lacking:
    print("no translated dev set for " + ", ".join(lacking) + ": the English dev choice there", file=out)
  if files:
    select.score_runs(workdir, files, say=lambda s: None)
  for lang in config.target_langs:
    model_id, seed, why = select.choose(workdir, lang)
    print(f"{lang}: {model_id} seed {seed}, {why}", file=out)
