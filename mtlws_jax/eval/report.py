"""Results of an experiment: results.json, markdown tables in the paper's layout, and plots.

Reads a plan (mtlws_jax.plan) and saved runs (mtlws_jax.workdir), never the experiment itself.
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

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtlws_jax import plan as plan_lib, workdir as workdir_lib
from mtlws_jax.data import taskspec
from mtlws_jax.errors import InputError, argument_parser

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
  return workdir_lib.read_seconds(workdir_lib.run_folder(workdir, model_id, seed))


def _warmup_seconds(workdir: pathlib.Path | None, row: str, seed: int) -> float | None:
  if workdir is None:
    return None
  return workdir_lib.read_seconds(workdir_lib.warmup_folder(workdir, row, seed))


def _effect(workdir: pathlib.Path | None, row: str, seed: int) -> dict | None:
  if workdir is None:
    return None
  for p in (workdir_lib.warmup_folder(workdir, row, seed) / "effect.json",
            pathlib.Path(workdir) / "warmup" / f"seed{seed}" / "effect.json"):  # format 1 layout
    if p.exists():
      return workdir_lib.read_json(p, "the warmup's effect.json")
  return None


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
  split, path = f"test:{lang}", folder / workdir_lib.PREDICTIONS
  if saved["gold_digest"].get(split) != workdir_lib.gold_digest(gold):
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
        folder = workdir_lib.run_folder(workdir, r.model_id, seed)
        saved = workdir_lib.read_predictions(folder)
        if saved is None:
          if expects:
            lost.append(str(folder / workdir_lib.PREDICTIONS))
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
# Markdown.


def _lost_lines(paired: Mapping[str, Any]) -> list[str]:
  files = paired.get("missing_files", [])
  return ([f"Missing predictions file{'s' if len(files) > 1 else ''} (the runs finished, the file is gone): "
           + ", ".join(files) + ". Delete that run's result.json and run the same run.py command again to "
           "recompute it."] if files else [])


def _cell(mean: float, std: float | None) -> str:
  return f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def _diff_cell(d: Mapping[str, float], bold: bool = False) -> str:
  """diff [sentence interval]; bold (the Avg. only, whose seed-level intervals the table prints)
  where the difference holds over seeds (bootstrap.seed_level)."""
  mark = "**" if bold and d.get("holds") else ""
  return f"{mark}{d['diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]{mark}"


def _seed_cells(d: Mapping[str, Any]) -> str:
  """The Avg.'s seed-level columns: seeds x sentences interval; t interval over seeds and its p."""
  if "seed_low" not in d:
    return " – | – |"
  boot = f"[{d['seed_low']:+.2f}, {d['seed_high']:+.2f}]"
  if d.get("t_low") is None:
    return f" {boot} | – |"
  return f" {boot} | [{d['t_low']:+.2f}, {d['t_high']:+.2f}], p={d['p_seeds']:.2g} |"


def noise_lines(summary: Mapping[str, Any]) -> list[str]:
  """How many seeds a difference needs, from the seed spread the report measured: the placebo
  rows' (a warmup that moved the parameters by under 1e-6 of their norm) where present, else the
  median over rows of the per-seed differences' std."""
  from mtlws_jax.eval import bootstrap
  paired = summary.get("paired") or {}
  rows = paired.get("rows") or {}
  n = len(summary["seeds"])
  if not rows:
    return []
  if n < 2:
    return ["One seed: training noise cannot be measured (the seeds x sentences interval is then the "
            "sentence one and there is no t interval), so no difference is bold; run more seeds "
            "(e.g. --config.seeds=0,1,2) to know whether a difference holds."]
  effects = summary.get("warmup_effect") or {}
  placebo = [r for r in rows if r in effects and effects[r]
             and max(e["param_rel_change"] for e in effects[r].values()) < 1e-6]
  stds = {r: rows[r]["avg"].get("seed_std") for r in rows if rows[r]["avg"].get("seed_std") is not None}
  if not stds:
    return []
  if placebo and placebo[0] in stds:
    sd, source = stds[placebo[0]], (f"the placebo row {summary['methods'][placebo[0]]['label']} (its warmup moved "
                                    "the parameters by under 1e-6 of their norm: the spread of its differences is training noise)")
  else:
    sd, source = float(np.median(list(stds.values()))), "the median over rows"
  lines = [f"Training noise: the Avg. difference of a seed spreads by {sd:.2f} points (std over seeds, {source}). "
           f"With {n} seeds, differences under {bootstrap.detectable_difference(sd, n):.1f} points cannot be told "
           "apart (paired t-test, 5% level, power 0.8)."]
  needs = []
  for r, d in rows.items():
    if r in placebo or d["avg"].get("holds"):
      continue
    k = bootstrap.seeds_needed(sd, d["avg"]["diff"])
    label = summary["methods"][r]["label"] if r in summary["methods"] else r
    needs.append(f"{label} ({d['avg']['diff']:+.2f}): " + (f"{k} seeds" if k else "more than 1000 seeds"))
  if needs:
    lines.append("Seeds a difference not yet shown would need at that spread: " + "; ".join(needs) + ".")
  return lines


def _minutes(seconds: float | None) -> str:
  return "–" if seconds is None else f"{seconds / 60:.1f}"


def results_markdown(summary: Mapping[str, Any], split: str = "test") -> str:
  """The paper's layout (rows methods, columns target languages and Avg.), then the paired
  differences to the baseline row with their intervals and each row's cost."""
  langs = summary["target_langs"]
  n = len(summary["seeds"])
  spread = f"mean ± std over {n} seeds" if n > 1 else "1 seed"
  missing = summary.get("no_test_set", [])
  note = (f"No {', '.join(missing)} test set: nothing to score in {', '.join(missing)} (the models are trained "
          "and saved; tag text with mtlws_jax.predict)." if missing else "")
  if not langs:
    return "\n".join([f"### {summary['task'].upper()}, {summary['model']}: nothing to score", "", note, "",
                      "English dev F1 of the selected models (%): " + ", ".join(
                          f"{m.get('label', k)} {m['english_dev']['mean']:.2f}"
                          for k, m in summary["methods"].items())]) + "\n"
  lines = [f"### {summary['task'].upper()}, {summary['model']}: target {split} F1 (%), {spread}", "",
           "| Model | " + " | ".join(langs) + " | Avg. |",
           "|---|" + "---:|" * (len(langs) + 1)]
  for m in summary["methods"].values():
    t = m[split]
    lines.append(f"| {m.get('label', '?')} | " + " | ".join(_cell(t["mean"][k], t["std"][k])
                                                       for k in [*langs, "avg"]) + " |")
  lines.append("")
  lines.append("English dev F1 of the selected models (%): " + ", ".join(
      f"{m.get('label', k)} {m['english_dev']['mean']:.2f}" for k, m in summary["methods"].items()))
  paired = summary.get("paired")
  if split == "test" and paired and paired.get("rows"):
    lines += ["", f"Difference to {summary['methods'][paired['baseline']]['label']} (F1 points, mean over "
              f"{n} paired seed{'s' if n > 1 else ''}) with a {100 * paired['confidence']:.0f}% paired-bootstrap "
              f"interval over test sentences ({paired['n_resamples']} resamples). That interval covers the test "
              "sample only; training noise is in the Avg.'s two seed-level intervals: a bootstrap that resamples "
              "seeds and test sentences together, and the t interval over the per-seed differences with the "
              "paired t-test's p. **Bold** (Avg.): the difference holds over seeds (both seed-level intervals "
              "exclude 0). Cost per model: training steps, warmup inner SGD steps (Z x K x |L|), minutes (training "
              "incl. evaluation; warmup).", "",
              "| Model | " + " | ".join(langs) + " | Avg. | Avg., seeds x sentences | Avg., t over seeds | "
              "Avg. by seed | steps | warmup steps | min | warmup min |",
              "|---|" + "---:|" * (len(langs) + 8)]
    for name, m in summary["methods"].items():
      c, t = m.get("cost", {}), summary.get("timing", {}).get(name, {})
      cost = (f" {c.get('train_steps', '–')} | {c.get('warmup_steps', 0)} | "
              f"{_minutes(t.get('train_seconds_per_model'))} | {_minutes(t.get('warmup_seconds'))} |")
      if name == paired["baseline"]:
        lines.append(f"| {m['label']} | " + " | ".join("0" for _ in [*langs, "avg"]) + " | | | |" + cost)
      elif name in paired["rows"]:
        d = paired["rows"][name]
        by_seed = " / ".join(f"{x:+.1f}" for x in d["avg"].get("per_seed", []))
        lines.append(f"| {m['label']} | " + " | ".join(_diff_cell(d[k], k == "avg") for k in [*langs, "avg"]) + " |"
                     + _seed_cells(d["avg"]) + f" {by_seed} |" + cost)
    noise = noise_lines(summary)
    if noise:
      lines += [""] + noise
    if paired.get("missing"):
      lines.append("")
      lines.append("No interval (no saved predictions): " + ", ".join(paired["missing"]))
      lines += _lost_lines(paired)
  elif split == "test" and paired and paired.get("missing_files"):
    lines += [""] + _lost_lines(paired)
  elif split == "test" and paired and paired.get("missing"):
    lines += ["", "No paired intervals: the runs saved no predictions (a workdir made before runs were "
              "paired, format 1: its methods also drew different batches, so their differences mix "
              "method and batch order)."]
  effects = summary.get("warmup_effect")
  if effects:
    lines.append("")
    for name, per_seed in effects.items():
      e = list(per_seed.values())
      rel = np.mean([x["param_rel_change"] for x in e])
      msg = f"{summary['methods'][name]['label'] if name in summary['methods'] else name}: the warmup moved " \
            f"the parameters by {rel:.3g} of their norm"
      before = [x["mean_loss_before"] for x in e if "mean_loss_before" in x]
      after = [x["mean_loss_after"] for x in e if "mean_loss_after" in x]
      if before and after:
        msg += f"; loss on the translated sets {np.mean(before):.4f} -> {np.mean(after):.4f}"
      lines.append(msg + ".")
  if note:
    lines += ["", note]
  return "\n".join(lines) + "\n"


def paper_markdown(summary: Mapping[str, Any], backbone: str, split: str = "test") -> str:
  """Our mean ± std with the paper's number in brackets, same rows and columns.

  The paper's Avg. is recomputed over our columns (e.g. ABSA without tr) so the two agree.
  Variant rows take the paper's number of their method.
  """
  from mtlws_jax.eval import paper
  ref = paper.table(summary["task"], backbone)
  langs = summary["target_langs"]
  n = len(summary["seeds"])
  lines = [f"### {summary['task'].upper()}: ours ({summary['model']}, {n} seed{'s' if n > 1 else ''}"
           f"{', mean ± std' if n > 1 else ''}) and (in brackets) the paper's {backbone} (5 runs)", "",
           "| Model | " + " | ".join(langs) + " | Avg. |", "|---|" + "---:|" * (len(langs) + 1)]
  for name, m in summary["methods"].items():
    t, row = m[split], ref.get(m.get("method", name), {})
    cells = []
    for k in [*langs, "avg"]:
      p = paper.mean_over(row, langs) if k == "avg" else row.get(k)
      cells.append(f"{_cell(t['mean'][k], t['std'][k])} ({p:.2f})" if p is not None
                   else f"{_cell(t['mean'][k], t['std'][k])} (–)")
    lines.append(f"| {m.get('label', name)} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Plots.


def _curves(workdir: pathlib.Path, model_id: str, seeds: Sequence[int]) -> tuple[dict, dict]:
  """Mean over seeds of dev F1 (%) and training loss, by step."""
  from mtlws_jax.train.loop import read_metrics
  f1: dict[int, list[float]] = {}
  loss: dict[int, list[float]] = {}
  for s in seeds:
    for rec in read_metrics(workdir / "runs" / model_id / f"seed{s}" / "metrics.jsonl"):
      if "dev_f1" in rec:
        f1.setdefault(rec["step"], []).append(100 * rec["dev_f1"])
      if "train_loss" in rec:
        loss.setdefault(rec["step"], []).append(rec["train_loss"])
  mean = lambda d: {k: float(np.mean(v)) for k, v in sorted(d.items())}
  return mean(f1), mean(loss)


def plot_convergence(summary: Mapping[str, Any], workdir: pathlib.Path, path: pathlib.Path) -> bool:
  """The paper's Figure 2: English dev F1 and training loss against steps, with/without warmup."""
  pairs = [tuple(p) for p in summary.get("warmup_pairs", [])]
  if not pairs:
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, (ax_f1, ax_loss) = plt.subplots(1, 2, figsize=(11, 4.5))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  drawn = set()
  for i, (base, warm) in enumerate(pairs):
    for mid, style, color in ((base, "--", "black"), (warm, "-", colors[i % len(colors)])):
      if mid in drawn:
        continue
      drawn.add(mid)
      f1, loss = _curves(workdir, mid, summary["seeds"])
      tag = mid + (" (no warmup)" if mid == base else "")
      if f1:
        ax_f1.plot(list(f1), list(f1.values()), style, marker="o", ms=3, color=color, label=tag)
      if loss:
        ax_loss.plot(list(loss), list(loss.values()), style, color=color, label=tag)
  ax_f1.set(xlabel="step", ylabel="English dev F1 (%)", title="Dev F1")
  ax_loss.set(xlabel="step", ylabel="training loss", title="Training loss")
  for ax in (ax_f1, ax_loss):
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:  # runs without metrics.jsonl draw no curve
      ax.legend(fontsize=7)
  fig.suptitle(f"{summary['task'].upper()} {summary['model']}: effect of warmup on convergence "
               f"(mean over {len(summary['seeds'])} seed(s))", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return True


def plot_per_language(summary: Mapping[str, Any], path: pathlib.Path, split: str = "test") -> None:
  """Grouped bars: F1 per target language (and Avg.) per row, error bars = std over seeds."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  langs = [*summary["target_langs"], "avg"]
  methods = list(summary["methods"])
  width = 0.8 / max(len(methods), 1)
  fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(langs) + 2 + 0.3 * len(methods)), 4.5))
  x = np.arange(len(langs))
  for i, m in enumerate(methods):
    t = summary["methods"][m][split]
    err = [t["std"][l] or 0.0 for l in langs]
    ax.bar(x + (i - (len(methods) - 1) / 2) * width, [t["mean"][l] for l in langs], width,
           yerr=err if any(err) else None, capsize=2, label=summary["methods"][m].get("label", m))
  ax.set_xticks(x, [l if l != "avg" else "Avg." for l in langs])
  ax.set(ylabel=f"{split} F1 (%)", title=f"{summary['task'].upper()} {summary['model']}: F1 per language and method")
  ax.grid(axis="y", alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_differences(summary: Mapping[str, Any], path: pathlib.Path) -> bool:
  """Each row's average difference to the baseline row with its paired-bootstrap interval."""
  paired = summary.get("paired")
  if not paired or not paired.get("rows"):
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  names = list(paired["rows"])
  d = [paired["rows"][n]["avg"] for n in names]
  fig, ax = plt.subplots(figsize=(7, 0.45 * len(names) + 1.5))
  y = np.arange(len(names))[::-1]
  ax.errorbar([x["diff"] for x in d], y, xerr=[[x["diff"] - x["low"] for x in d], [x["high"] - x["diff"] for x in d]],
              fmt="o", capsize=3, color="black")
  ax.axvline(0, color="gray", lw=1)
  ax.set_yticks(y, [summary["methods"][n]["label"] for n in names], fontsize=8)
  ax.set(xlabel=f"Avg. target test F1 - {summary['methods'][paired['baseline']]['label']} (points, 95% CI)")
  ax.grid(axis="x", alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
  return True


def plot_all(summary: Mapping[str, Any], workdir: pathlib.Path) -> list[pathlib.Path]:
  folder = pathlib.Path(workdir) / "plots"
  folder.mkdir(parents=True, exist_ok=True)
  made = []
  p = folder / "f1_per_language.png"
  if summary["target_langs"]:         # no target test set: no F1 to plot
    plot_per_language(summary, p)
    made.append(p)
  p = folder / "convergence.png"
  if plot_convergence(summary, pathlib.Path(workdir), p):
    made.append(p)
  p = folder / "differences.png"
  if plot_differences(summary, p):
    made.append(p)
  return made


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
  on_disk = sorted({int(p.name[4:]) for mid in ids for p in (workdir / "runs" / mid).glob("seed*")
                    if p.name[4:].isdigit()} | set(config.seeds))
  wanted = list(seeds) if seeds else on_disk
  results: dict[str, dict[int, dict]] = {}
  complete, missing = [], []
  for s in wanted:
    got = {mid: workdir_lib.read_result(workdir_lib.run_folder(workdir, mid, s)) for mid in ids}
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
    data = tasks.load(config, ())
  except InputError as e:
    return None, f"paired intervals need the gold test sets, which could not be read: {e}"
  return data.target_test, ""


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
  md = results_markdown(summary)
  if why:
    md += "\n" + why + "\n"
  if paper_backbone:
    md += "\n" + paper_markdown(summary, paper_backbone)
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
    plot_all(summary, workdir)
  except OSError as e:
    raise InputError(f"cannot write the report: {e.strerror}", e.filename or workdir) from None


def _main(argv: Sequence[str] | None = None) -> None:
  import argparse
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
  print(rebuild(args.workdir, seeds=seeds, paper_backbone=args.paper, only_rows=only_rows,
                baseline=args.baseline.strip()), end="")


def main(argv: Sequence[str] | None = None) -> None:
  from mtlws_jax.errors import main_guard
  main_guard(_main)(argv)


if __name__ == "__main__":
  main()
