"""Which model to use for a target language: chosen on English dev, or on a translated dev set.

The paper picks the model with the best English dev F1, and the study shows that English dev F1
does not track target F1 (ABSA: the Nesterov warmup has a higher English dev F1 than MTL and
scores 1.5 points lower on the targets over 7 seeds). A *translated dev set* needs no gold in the target
language: the English dev set machine-translated, its spans projected (results/translated_dev/
make.sh: Apertium + eflomal). Ranking a workdir's finished runs on it gives a model per language.

    python -m mtlws_jax.eval.select WORKDIR --translated-dev='results/.../en2{lang}.dev.txt' [--langs=es,fr]

scores every finished run's selected parameters on each language's translated dev set (once:
kept in WORKDIR/translated_dev.json, a cache rebuilt when unreadable), then compares, seed by seed,
the run English dev picks with the run the translated dev set picks: both runs' test F1 in that
language from their saved predictions, the difference with the paired sentence-level interval and
the seed-level intervals of eval.bootstrap (WORKDIR/selection.json, selection.md). `choose` is
what `predict --lang` and the demo ask.
"""

from __future__ import annotations

import math
import pathlib
import sys
from typing import Any, Mapping, Sequence

import numpy as np

from mtlws_jax import runfolder, workdir as workdir_lib
from mtlws_jax.errors import InputError, argument_parser, repeated

CRITERIA = ("auto", "english_dev", "translated_dev")
SCORES = "translated_dev.json"


def read_scores(workdir: pathlib.Path) -> dict:
  """{"files": {lang: path}, "digests": {lang: sha256}, "scores": {model_id: {seed: {lang: f1}}}}; {} when absent or unreadable
  (a cache: a warning, and it is rebuilt by the next scoring)."""
  path = pathlib.Path(workdir) / SCORES
  if not path.exists():
    return {}
  try:
    got = workdir_lib.read_json(path, SCORES)
  except InputError as e:
    print(f"warning: {e}; ignored (python -m mtlws_jax.eval.select rebuilds it)", file=sys.stderr)
    return {}
  ok = (isinstance(got, dict) and isinstance(got.get("files"), dict) and isinstance(got.get("scores"), dict)
        and all(isinstance(v, dict) and all(isinstance(x, dict) and all(
            isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) for f in x.values())
            for x in v.values()) for v in got["scores"].values()))
  if not ok:
    print(f"warning: {path}: not the layout python -m mtlws_jax.eval.select writes; ignored (it rebuilds it)",
          file=sys.stderr)
    return {}
  return got


def _digest(path: str) -> str:
  """A translated dev set's content hash: a set remade at the same path (a new translation) is scored again."""
  from mtlws_jax.data import textfile
  try:
    return textfile.sha256(path)
  except OSError as e:
    raise InputError(f"cannot read the translated dev set ({e.strerror})", path) from None


def score_runs(workdir: pathlib.Path, files: Mapping[str, str], *, rows: Sequence[str] = (),
               say=print) -> dict:
  """Translated dev F1 (%) of every finished run with a kept checkpoint, per language (cached)."""
  from mtlws_jax import predict, saved
  from mtlws_jax.eval import tagging
  from mtlws_jax.data import tasks, taskspec
  workdir = pathlib.Path(workdir)
  cache = read_scores(workdir)
  digests = {l: _digest(f) for l, f in files.items()}
  if cache.get("files") != dict(files) or cache.get("digests") != digests:   # other sets, or remade: score again
    cache = {"files": dict(files), "digests": digests, "scores": {}}
  scores = cache["scores"]
  sets, unkept = {}, []
  for model_id, seed, _ in runfolder.finished_runs(workdir):
    if rows and model_id not in rows:
      continue
    have = scores.get(model_id, {}).get(str(seed), {})
    if set(files) <= set(have):
      continue
    if not runfolder.kept_selection(runfolder.run_folder(workdir, model_id, seed)):
      unkept.append(f"{model_id} seed {seed}")
      continue
    run = saved.load(workdir, model_id, seed)
    for lang, path in files.items():
      if lang not in sets:
        spec = taskspec.get(run.task)
        recs, _, _ = predict.read_input(path, spec.file_format, run.task, lang)
        sets[lang] = tasks.to_scheme(recs, spec.scheme, path)
      pred = tagging.tag_records(run, sets[lang], progress=False)
      have[lang] = round(100 * tasks.score(run.task, sets[lang], pred)["f1"], 4)
    scores.setdefault(model_id, {})[str(seed)] = have
    say(f"{model_id} seed {seed}: translated dev F1 " + ", ".join(f"{l} {v:.2f}" for l, v in have.items()))
    workdir_lib.write_json(workdir / SCORES, cache)
  if unkept:   # checkpoints are not committed: runs made on another machine have none
    say(f"{len(unkept)} finished runs kept no checkpoint and were not scored ({', '.join(unkept[:4])}"
        + (" ..." if len(unkept) > 4 else "") + ")")
  return cache


def choose(workdir: pathlib.Path, lang: str | None, criterion: str = "auto",
           runs: Sequence[tuple[str, int, dict]] | None = None,
           scored: Mapping[str, Any] | None = None) -> tuple[str, int, str]:
  """(model id, seed, why) of the run to use for `lang`.

  english_dev: the best English dev F1 (the paper's). translated_dev: the best F1 on `lang`'s
  translated dev set among the runs scored on it. auto: translated_dev where the workdir has those
  scores for `lang`, else english_dev.
  """
  if criterion not in CRITERIA:
    raise InputError(f"--select={criterion}: expected one of {', '.join(CRITERIA)}")
  runs = runfolder.finished_runs(workdir) if runs is None else runs
  if not runs:
    raise InputError("no finished run in this workdir (no runs/*/seed*/result.json)", workdir)
  among = "runs"
  if lang not in (None, "en"):   # a run trained for other target languages only (TO-es, BILINGUAL-es for nl)
    fits = [r for r in runs if _trained_for(r[2], lang)]   # is not a model for this one
    if fits and len(fits) < len(runs):
      runs, among = fits, f"runs trained for {lang} or for no target language"
  scored = read_scores(workdir).get("scores", {}) if scored is None else scored
  cand = [(scored[m][str(s)][lang], m, s) for m, s, _ in runs
          if lang is not None and lang in scored.get(m, {}).get(str(s), {})]
  if criterion == "translated_dev" and not cand:
    raise InputError(f"no run of this workdir was scored on a translated {lang} dev set: run python -m "
                     "mtlws_jax.eval.select on it first (or use --select=english_dev)", workdir)
  if cand and criterion != "english_dev":
    f1, m, s = max(cand, key=lambda c: (c[0], -c[2]))
    return m, s, f"the best {lang} translated dev F1 ({f1:.2f}) of {len(cand)} scored {among}"
  m, s, r = max(runs, key=lambda r: (r[2]["english_dev"], -r[1]))
  why = f"the best English dev F1 ({100 * r['english_dev']:.2f}) of {len(runs)} {among}"
  if criterion == "auto" and lang not in (None, "en"):
    why += f" (no translated {lang} dev scores in this workdir)"
  return m, s, why


def _trained_for(result: Mapping[str, Any], lang: str) -> bool:
  """True when a run's translated training data (and warmup) includes `lang` or no target language."""
  targets = {s.split(":")[0] for s in result.get("train_sets", []) if s.endswith(":translated")}
  targets |= set(result.get("warmup_langs", []))
  return not targets or lang in targets


def compare(workdir: pathlib.Path, langs: Sequence[str], *, rows: Sequence[str] = ()) -> dict:
  """Per language and seed, the English-dev pick and the translated-dev pick among the runs scored
  in both, their test F1, and the difference (translated-dev pick minus English-dev pick)."""
  from mtlws_jax.eval import bootstrap, report
  workdir = pathlib.Path(workdir)
  config = workdir_lib.saved_config(workdir) or {}
  task = config.get("task")
  scored = read_scores(workdir).get("scores", {})
  finished = [r for r in runfolder.finished_runs(workdir) if not rows or r[0] in rows]
  out: dict[str, Any] = {"workdir": str(workdir), "languages": {}}
  for lang in langs:
    by_seed: dict[int, list] = {}
    for m, s, res in finished:
      if lang in scored.get(m, {}).get(str(s), {}) and lang in res["target_test"]:
        by_seed.setdefault(s, []).append((m, s, res))
    seeds = sorted(s for s, rs in by_seed.items() if len(rs) > 1)
    picks, counts_en, counts_td = [], [], []
    gold = None
    for s in seeds:
      en_m, _, _ = choose(workdir, lang, "english_dev", by_seed[s], scored)
      td_m, _, _ = choose(workdir, lang, "translated_dev", by_seed[s], scored)
      res = {m: r for m, _, r in by_seed[s]}
      picks.append({"seed": s, "english_dev": en_m, "translated_dev": td_m,
                    "test_f1": {"english_dev": 100 * res[en_m]["target_test"][lang]["f1"],
                                "translated_dev": 100 * res[td_m]["target_test"][lang]["f1"]},
                    "candidates": len(by_seed[s])})
      if gold is None:
        gold = _gold_test(config, lang)
      c = []
      for m in (en_m, td_m):
        folder = runfolder.run_folder(workdir, m, s)
        saved_preds = runfolder.read_predictions(folder)
        if saved_preds is None:
          raise InputError(f"run {m} seed {s} finished but its predictions file is missing",
                           folder / runfolder.PREDICTIONS)
        c.append(report.test_counts(task, saved_preds, folder, lang, gold))
      counts_en.append(c[0])
      counts_td.append(c[1])
    entry: dict[str, Any] = {"seeds": seeds, "picks": picks}
    if seeds:
      pair = {lang: (np.stack(counts_td), np.stack(counts_en))}
      d = bootstrap.paired_difference(pair)[lang]
      entry["difference"] = {**d, **{k: v for k, v in bootstrap.seed_level(pair)[lang].items() if k != "diff"}}
      entry["same_pick"] = sum(p["english_dev"] == p["translated_dev"] for p in picks)
    out["languages"][lang] = entry
  return out


def _gold_test(config: Mapping[str, Any], lang: str):
  """The gold test sentences of `lang` as the workdir's config names them (training scheme)."""
  import ml_collections
  from mtlws_jax.data import tasks
  return tasks.load_test_sets(ml_collections.ConfigDict(config), [lang])[lang]


def markdown(summary: Mapping[str, Any]) -> str:
  lines = ["### Which model per language: English dev or the translated dev set", "",
           "Per seed, among the runs of that seed scored on both, the run with the best English dev F1 and the run "
           "with the best F1 on the language's translated dev set (English dev machine-translated, spans "
           "projected); their test F1 and the difference (translated-dev pick minus English-dev pick, points) "
           "with the 95% paired interval over test sentences, the seeds x sentences interval and the t interval "
           "over seeds.", "",
           "| Language | seeds | same pick | English-dev pick, test F1 | translated-dev pick, test F1 | difference "
           "| seeds x sentences | t over seeds | by seed |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
  none = []
  for lang, e in summary["languages"].items():
    if not e["seeds"]:
      lines.append(f"| {lang} | 0 | | | | | | | |")
      none.append(lang)
      continue
    d, picks = e["difference"], e["picks"]
    mean = lambda k: np.mean([p["test_f1"][k] for p in picks])
    t = (f"[{d['t_low']:+.2f}, {d['t_high']:+.2f}], p={d['p_seeds']:.2g}" if d.get("t_low") is not None else "–")
    lines.append(f"| {lang} | {len(e['seeds'])} | {e['same_pick']} | {mean('english_dev'):.2f} | "
                 f"{mean('translated_dev'):.2f} | {d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] | "
                 f"[{d['seed_low']:+.2f}, {d['seed_high']:+.2f}] | {t} | "
                 + " / ".join(f"{x:+.1f}" for x in d["per_seed"]) + " |")
  lines.append("")
  if none:
    lines += [f"No seed of {', '.join(none)} has two runs scored on both dev sets (only runs that kept "
              "their checkpoint can be scored on a translated dev set: runs made on another machine have none).", ""]
  for lang, e in summary["languages"].items():
    for p in e["picks"]:
      lines.append(f"- {lang} seed {p['seed']}: English dev picks {p['english_dev']} ({p['test_f1']['english_dev']:.2f}), "
                   f"the translated dev set {p['translated_dev']} ({p['test_f1']['translated_dev']:.2f}) "
                   f"of {p['candidates']} runs")
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  p = argument_parser(prog="python -m mtlws_jax.eval.select", description=__doc__.split("\n")[0])
  p.add_argument("workdir")
  p.add_argument("--translated-dev", required=True,
                 help="path pattern of the translated dev sets, with {lang} (the task's file format)")
  p.add_argument("--langs", required=True, help="comma-separated target languages")
  p.add_argument("--rows", default="", help="comma-separated model ids to choose among (default: all)")
  args = p.parse_args(argv)
  workdir = pathlib.Path(args.workdir)
  workdir_lib.check_usable(workdir)
  if "{lang}" not in args.translated_dev:
    raise InputError(f"--translated-dev={args.translated_dev}: the pattern has no {{lang}}")
  langs = [l.strip() for l in args.langs.split(",") if l.strip()]
  rows = [r.strip() for r in args.rows.split(",") if r.strip()]
  # checked before anything is scored or written: a slip must not replace selection.md with an empty table
  if not langs:
    p.error("--langs names no language")
  for flag, values in (("--langs", langs), ("--rows", rows)):
    if twice := repeated(values):
      p.error(f"{flag} names {', '.join(twice)} more than once")
  targets = list((workdir_lib.saved_config(workdir) or {}).get("target_langs") or [])
  if targets and set(langs) - set(targets):
    raise InputError(f"--langs: {', '.join(sorted(set(langs) - set(targets)))} is not a target language of "
                     f"this workdir (its targets: {', '.join(targets)})", workdir / "config.json")
  finished = sorted({m for m, _, _ in runfolder.finished_runs(workdir)}) if rows else []
  if set(rows) - set(finished):
    raise InputError(f"--rows: no finished run of {', '.join(sorted(set(rows) - set(finished)))} in this "
                     f"workdir (its finished rows: {', '.join(finished) or 'none'})", workdir)
  files = {l: args.translated_dev.format(lang=l) for l in langs}
  for l, f in files.items():
    if not pathlib.Path(f).exists() or pathlib.Path(f).is_dir():
      raise InputError(f"no translated {l} dev set", f)
  score_runs(workdir, files, rows=rows, say=lambda s: print(s, file=sys.stderr))
  summary = compare(workdir, langs, rows=rows)
  text = markdown(summary)
  workdir_lib.write_json(workdir / "selection.json", summary)
  (workdir / "selection.md").write_text(text, encoding="utf-8")
  print(text)
  return 0


if __name__ == "__main__":
  from mtlws_jax.errors import main_guard
  sys.exit(main_guard(main)())
