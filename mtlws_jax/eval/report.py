"""Results of an experiment: results.json (summarize), then its tables (eval/tables.py) and plots
(eval/plots.py) written beside it, and the report CLI that rebuilds them from a workdir.

Reads a plan (mtlws_jax.plan) and saved runs (mtlws_jax.runfolder), never the experiment itself.
Scores are micro span F1 in percent (the paper's unit). Per row (method or variant) and target
language: the score of every seed, their mean and sample standard deviation (ddof=1; none for a
single seed). "Avg." is the mean over target languages, computed per seed first, then averaged
over seeds (so its std is the spread of the per-seed averages). For rows with one model per
target language (TO, BILINGUAL), a language's score comes from that language's model.

Beside each row: its difference to ZERO-SHOT (or the row given as `--baseline`, e.g. ZERO-SHOT at
equal steps) with a 95% paired-bootstrap interval over test sentences (eval/bootstrap.py),
recomputed from the predictions every run saved, and its cost (training steps, warmup steps
Z x K x |L|, seconds).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtlws_jax import plan as plan_lib, runfolder, workdir as workdir_lib
from mtlws_jax.data import taskspec
from mtlws_jax.eval import plots, tables
from mtlws_jax.errors import InputError, argument_parser, repeated

DISPLAY = plan_lib.DISPLAY
BASELINE = "zero_shot"


def _mean_std(values: Sequence[float]) -> tuple[float, float | None]:
  v = np.asarray(values, np.float64)
  return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def _table(per_seed: Mapping[int, Mapping[str, float]], langs: Sequence[str]) -> dict:
  """{"per_seed": {seed: {lang, avg}}, "mean": {lang, avg}, "std": {lang, avg} (None: 1 seed)}."""
  if not langs:                       # no target test set: nothing scored
    return {"per_seed": {str(s): {"avg": None} for s in per_seed}, "mean": {"avg": None}, "std": {"avg": None}}
  rows = {}
  for seed, scores in per_seed.items():
    row = {l: scores[l] for l in langs}
    row["avg"] = float(np.mean([row[l] for l in langs]))
    rows[str(seed)] = row
  keys = [*langs, "avg"]
  mean, std = {}, {}
  for k in keys:
    mean[k], std[k] = _mean_std([r[k] for r in rows.values()])
  return {"per_seed": rows, "mean": mean, "std": std}


def _seconds(workdir: pathlib.Path | None, model_id: str, seed: int) -> float | None:
  if workdir is None:
    return None
  return runfolder.read_seconds(runfolder.run_folder(workdir, model_id, seed))


def _warmup_seconds(workdir: pathlib.Path | None, row: str, seed: int) -> float | None:
  if workdir is None:
    return None
  return runfolder.read_seconds(runfolder.warmup_folder(workdir, row, seed))


def _effect(workdir: pathlib.Path | None, row: str, seed: int) -> dict | None:
  if workdir is None:
    return None
  return runfolder.warmup_effect(workdir, row, seed)


def warmup_pairs(rows: Mapping[str, plan_lib.Row], present: set[str]) -> list[tuple[str, str]]:
  """(without warmup, with warmup) model ids: each warmed-up run beside the same adaptation from
  the pretrained start (e.g. (zero_shot, mtl_ws), (bilingual-es, mtl_ws+bilingual-es))."""
  plain_ids = {}
  for row in rows.values():
    if row.warmup is None and row.name == row.method:
      for r in row.runs:
        plain_ids[(r.adapt, r.eval_langs)] = r.model_id
  pairs = []
  for row in rows.values():
    if row.warmup is None:
      continue
    for r in row.runs:
      base = plain_ids.get((r.adapt, r.eval_langs))
      if base and base in present and r.model_id in present:
        pairs.append((base, r.model_id))
  return pairs


def summarize(config, rows: Mapping[str, plan_lib.Row], results: Mapping[str, Mapping[int, dict]],
              workdir: pathlib.Path | None = None, gold_test: Mapping[str, Sequence] | None = None,
              baseline: str = BASELINE) -> dict:
  """results.json content from the per-run results (runner.train_run).

  gold_test: target language -> gold test sentences; with it (and saved predictions in the
  workdir) every row gets its paired-bootstrap difference to the baseline row (ZERO-SHOT unless
  told: e.g. ZERO-SHOT at equal steps, to ask whether a warmup beats plain longer training).
  """
  seeds = list(config.seeds)
  scored = {l for runs in results.values() for res in runs.values() for l in res["target_test"]}
  langs = [l for l in config.target_langs if l in scored]
  out: dict[str, Any] = {
      "task": config.task, "model": config.model.name, "source_lang": config.source_lang,
      "target_langs": langs, "seeds": seeds, "adapt": config.adapt,
      "metric": "micro span F1 (%), exact span and label; mean and sample std over seeds",
      "methods": {}, "runs": {},
  }
  for name, row in rows.items():
    test, dev, en_dev = {}, {}, {}
    seconds, warm_seconds = [], []
    for seed in seeds:
      t, d, e = {}, {}, []
      for r in row.runs:
        res = results[r.model_id][seed]
        e.append(100 * res["english_dev"])
        for l in r.eval_langs:
          if l not in res["target_test"]:    # no test set in that language: nothing to score
            continue
          t[l] = 100 * res["target_test"][l]["f1"]
          if l in res.get("target_dev", {}):  # absent when selection.score_target_dev is off
            d[l] = 100 * res["target_dev"][l]["f1"]
        s = _seconds(workdir, r.model_id, seed)
        if s is not None:
          seconds.append(s)
      w = _warmup_seconds(workdir, name, seed) if row.warmup else None
      if w is not None:
        warm_seconds.append(w)
      test[seed], dev[seed], en_dev[seed] = t, d, float(np.mean(e))
    mean, std = _mean_std(list(en_dev.values()))
    out["methods"][name] = {
        "label": row.label, "method": row.method, "adapt": row.adapt,
        "runs": [r.model_id for r in row.runs],
        "test": _table(test, langs),
        "dev": _table(dev, langs) if all(set(langs) <= set(d) for d in dev.values()) else None,
        "english_dev": {"per_seed": {str(s): v for s, v in en_dev.items()}, "mean": mean, "std": std},
        "cost": {"models": len(row.runs), "train_steps": int(row.train["max_steps"]),
                 "warmup_steps": row.warmup_steps},
    }
    # Wall-clock seconds (mean over seeds), apart from the results: they differ run to run.
    out.setdefault("timing", {})[name] = {
        "train_seconds_per_model": float(np.mean(seconds)) if seconds else None,
        "warmup_seconds": float(np.mean(warm_seconds)) if warm_seconds else None}
    if row.warmup:
      out["methods"][name]["warmup"] = {k: row.warmup[k] for k in ("epochs", "steps", "gamma", "beta", "outer",
                                                                   "outer_momentum")}
    for r in row.runs:
      out["runs"][r.model_id] = {
          str(s): {k: results[r.model_id][s].get(k) for k in ("best_step", "english_dev", "train_examples",
                                                              "target_test", "target_dev")}
          for s in seeds}
  out["warmup_pairs"] = [list(p) for p in warmup_pairs(rows, set(out["runs"]))]
  if unscored := [l for l in config.target_langs if l not in scored]:
    out["no_test_set"] = unscored
  if workdir is not None:
    effects = {}
    for name, row in rows.items():
      if row.warmup:
        got = {str(s): e for s in seeds if (e := _effect(workdir, name, s)) is not None}
        if got:
          effects[name] = got
    if effects:
      out["warmup_effect"] = effects
  if gold_test and langs and workdir is not None and baseline in rows:
    out["paired"] = paired_intervals(config.task, rows, workdir, seeds, gold_test, baseline)
  return out


def test_counts(task: str, saved: Mapping[str, Any], folder: pathlib.Path, lang: str, gold: Sequence) -> np.ndarray:
  """Per-sentence (correct, gold, predicted) counts of a run's saved `lang` test predictions,
  checked against the gold set they must have been made on (the report and eval.select)."""
  from mtlws_jax.eval import metrics
  split, path = f"test:{lang}", folder / runfolder.PREDICTIONS
  if saved["gold_digest"].get(split) != runfolder.gold_digest(gold):
    raise InputError(f"the saved {lang} test predictions were made against other gold data than "
                     "the files the config names now (changed data_dir or data files?)", path)
  pred = saved["splits"].get(split)
  if not isinstance(pred, list) or len(pred) != len(gold):
    raise InputError(f"the saved {lang} test predictions hold {len(pred) if isinstance(pred, list) else 'no'} "
                     f"sentences, the gold test set {len(gold)}: the file is damaged; delete the run's result.json "
                     "and run the same run.py command again to recompute it", path)
  try:
    return metrics.sentence_counts(task, gold, pred)
  except ValueError as e:
    raise InputError(f"the saved {lang} test predictions do not fit the gold test set ({e}); delete the "
                     "run's result.json and run the same run.py command again", path) from None


def paired_intervals(task: str, rows: Mapping[str, plan_lib.Row], workdir: pathlib.Path, seeds: Sequence[int],
                     gold_test: Mapping[str, Sequence], baseline: str = BASELINE) -> dict:
  """{"baseline", "n_resamples", "rows": {row: {lang|avg: {diff, low, high, excludes_zero}}}, "missing"}.

  Rows whose runs saved no predictions (format-1 workdirs) are listed under "missing".
  """
  from mtlws_jax.eval import bootstrap
  langs = list(gold_test)
  per_sentence = taskspec.get(task).predicates   # a sentence's predicates are resampled together
  groups = {l: ([s.origin for s in gold_test[l]] if per_sentence else None) for l in langs}

  # format 1 workdirs saved no predictions; from format 2 on a missing file is named as missing
  expects = (workdir_lib.saved_config(workdir) or {}).get("workdir_format", 1) >= 2
  lost: list[str] = []

  def counts(row: plan_lib.Row) -> dict[str, np.ndarray] | None:
    per = {l: [] for l in langs}
    for seed in seeds:
      for r in row.runs:
        folder = runfolder.run_folder(workdir, r.model_id, seed)
        saved = runfolder.read_predictions(folder)
        if saved is None:
          if expects:
            lost.append(str(folder / runfolder.PREDICTIONS))
          return None
        for l in r.eval_langs:
          if l not in gold_test:             # no test set in that language
            continue
          c = test_counts(task, saved, folder, l, gold_test[l])
          per[l].append(bootstrap.group_rows(c, groups[l]))
    return {l: np.stack(v) for l, v in per.items()}

  base = counts(rows[baseline])
  out = {"baseline": baseline, "n_resamples": bootstrap.N_RESAMPLES, "confidence": bootstrap.CONFIDENCE,
         "unit": "sentence (all its predicates together)" if per_sentence else "sentence",
         "rows": {}, "missing": []}
  if base is None:
    out["missing"] = list(rows)
    if lost:
      out["missing_files"] = lost
    return out
  for name, row in rows.items():
    if name == baseline:
      continue
    c = counts(row)
    if c is None:
      out["missing"].append(name)
      continue
    pairs = {l: (c[l], base[l]) for l in langs}
    got = bootstrap.paired_difference(pairs)
    for k, v in bootstrap.seed_level(pairs).items():  # training noise included
      got[k].update({x: y for x, y in v.items() if x != "diff"})
    out["rows"][name] = got
  if lost:
    out["missing_files"] = lost
  return out


# ---------------------------------------------------------------------------------------------
# Rebuilding from a workdir.


def collect(workdir: pathlib.Path, seeds: Sequence[int] | None = None, only_rows: Sequence[str] | None = None):
  """(config, rows, results, seeds, missing) from a workdir's config.json and runs' result.json.

  Seeds default to those on disk whose every planned run has finished; `missing` lists the
  runs of other seeds that have not (a grid still running, or a killed one to resume).
  only_rows: report these rows alone, in this order (a grid whose rows have finished different seeds).
  """
  import ml_collections
  workdir = pathlib.Path(workdir)
  if workdir.exists() and not workdir.is_dir():
    raise InputError("not a folder: give a workdir made by run.py", workdir)
  saved = workdir_lib.saved_config(workdir)
  if saved is None:
    raise InputError("no config.json: not a workdir made by run.py", workdir)
  saved.pop("workdir_format", None)
  try:
    config = plan_lib.normalize(ml_collections.ConfigDict(saved))
    rows = plan_lib.plan_rows(config)
  except (KeyError, AttributeError, TypeError) as e:
    raise InputError(f"config.json is not a run.py config ({type(e).__name__}: {e})",
                     workdir / "config.json") from None
  if only_rows:
    unknown = [r for r in only_rows if r not in rows]
    if unknown:
      raise InputError(f"--rows: no row {', '.join(map(repr, unknown))} in this workdir (its rows: "
                       + ", ".join(rows) + ")", workdir / "config.json")
    rows = {name: rows[name] for name in only_rows}  # the order asked for (a grid run in parts mixes its own)
  ids = [r.model_id for row in rows.values() for r in row.runs]
  on_disk = sorted(set(runfolder.seeds_on_disk(workdir, ids)) | set(config.seeds))
  wanted = list(seeds) if seeds else on_disk
  results: dict[str, dict[int, dict]] = {}
  complete, missing = [], []
  for s in wanted:
    got = {mid: runfolder.read_result(runfolder.run_folder(workdir, mid, s)) for mid in ids}
    absent = [f"{mid} seed {s}" for mid, r in got.items() if r is None]
    if absent:
      missing += absent
      continue
    complete.append(s)
    for mid, r in got.items():
      results.setdefault(mid, {})[s] = r
  with config.unlocked():
    config.seeds = tuple(complete)
  return config, rows, results, complete, missing


def load_gold_test(config) -> tuple[dict | None, str]:
  """(target language -> gold test sentences, "") or (None, why not) for the intervals."""
  from mtlws_jax.data import tasks
  try:
    return tasks.load_test_sets(config), ""
  except InputError as e:
    return None, f"paired intervals need the gold test sets, which could not be read: {e}"


def rebuild(workdir: str | pathlib.Path, *, seeds: Sequence[int] | None = None,
            paper_backbone: str | None = None, only_rows: Sequence[str] | None = None,
            baseline: str = BASELINE) -> str:
  """Writes results.json, results.md and plots of a workdir from its runs; returns the markdown.

  baseline: the row the paired differences are taken to (ZERO-SHOT by default).
  """
  workdir = pathlib.Path(workdir)
  config, rows, results, complete, missing = collect(workdir, seeds, only_rows)
  if baseline not in rows:
    raise InputError(f"--baseline: no row {baseline!r} among the rows reported ("
                     + ", ".join(rows) + ")", workdir / "config.json")
  if not complete:
    raise InputError("no seed has all its runs finished; missing: " + ", ".join(missing[:10])
                     + (" ..." if len(missing) > 10 else ""), workdir)
  gold, why = load_gold_test(config)
  summary = summarize(config, rows, results, workdir, gold_test=gold, baseline=baseline)
  md = tables.results_markdown(summary)
  if why:
    md += "\n" + why + "\n"
  if paper_backbone:
    md += "\n" + tables.paper_markdown(summary, paper_backbone)
  if missing:
    md += "\nNot finished (left out): " + ", ".join(missing) + "\n"
  write(workdir, summary, md)
  return md


def write(workdir: pathlib.Path, summary: Mapping[str, Any], md: str) -> None:
  """A workdir's report files: results.json, results.md and plots/ (run.py's and the report CLI's)."""
  workdir = pathlib.Path(workdir)
  try:
    workdir_lib.write_json(workdir / "results.json", summary)
    (workdir / "results.md").write_text(md)
    plots.plot_all(summary, workdir)
  except OSError as e:
    raise InputError(f"cannot write the report: {e.strerror}", e.filename or workdir) from None


def _main(argv: Sequence[str] | None = None) -> None:
  from mtlws_jax.eval import paper
  ap = argument_parser(
      prog="python -m mtlws_jax.eval.report",
      description="Rebuild results.json, results.md (the paper's layout, paired intervals) and plots/ "
                  "of a run.py workdir from its finished runs; optionally beside the paper's numbers.")
  ap.add_argument("workdir")
  ap.add_argument("--seeds", default="", help="comma list (default: every seed whose runs all finished)")
  ap.add_argument("--rows", default="", help="comma list of rows (methods or variants) to report alone, in this order, e.g. "
                  "zero_shot,ws_reptile when the other rows have finished fewer seeds (default: all)")
  ap.add_argument("--baseline", default=BASELINE,
                  help="the row every paired difference is taken to (default: zero_shot); e.g. zs_eq, "
                  "ZERO-SHOT at equal total steps, to ask whether a warmup beats longer plain training")
  ap.add_argument("--paper", choices=paper.BACKBONES, help="print the paper's table of this backbone beside ours")
  args = ap.parse_args(argv)
  only_rows = [r.strip() for r in args.rows.split(",") if r.strip()] or None
  try:
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()] or None
  except ValueError:
    ap.error(f"--seeds must be a comma list of integers, got {args.seeds!r}")
  for flag, values in (("--seeds", seeds or []), ("--rows", only_rows or [])):
    if twice := repeated(values):   # a seed counted twice would pair a run with itself and shrink every seed interval
      ap.error(f"{flag} names {', '.join(twice)} more than once")
  print(rebuild(args.workdir, seeds=seeds, paper_backbone=args.paper, only_rows=only_rows,
                baseline=args.baseline.strip()), end="")


def main(argv: Sequence[str] | None = None) -> None:
  from mtlws_jax.errors import main_guard
  main_guard(_main)(argv)


if __name__ == "__main__":
  main()
