"""Results of an experiment: results.json, a markdown table in the paper's layout, and plots.

Scores are micro span F1 in percent (the paper's unit). Per method and target language: the
score of every seed, their mean and sample standard deviation (ddof=1; 0 for a single seed).
"Avg." is the mean over target languages, computed per seed first, then averaged over seeds
(so its std is the spread of the per-seed averages). For methods with one model per target
language (target_only, bilingual), a language's score comes from that language's model.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# Row names as in the paper's Tables 1-3.
DISPLAY = {"zero_shot": "ZERO-SHOT", "target_only": "TO", "bilingual": "BILINGUAL", "mtl": "MTL",
           "mtl_ws": "MTL-WS"}


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
  v = np.asarray(values, np.float64)
  return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


def _table(per_seed: Mapping[int, Mapping[str, float]], langs: Sequence[str]) -> dict:
  """{"per_seed": {seed: {lang, avg}}, "mean": {lang, avg}, "std": {lang, avg}}."""
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


def summarize(config, runs: Mapping[str, Sequence[Any]], results: Mapping[str, Mapping[int, dict]],
              workdir: pathlib.Path | None = None) -> dict:
  """results.json content from the per-run result dicts (experiment.train_run)."""
  langs = list(config.target_langs)
  seeds = list(config.seeds)
  out: dict[str, Any] = {
      "task": config.task, "model": config.model.name, "source_lang": config.source_lang,
      "target_langs": langs, "seeds": seeds, "adapt": config.adapt,
      "metric": "micro span F1 (%), exact span and label; mean and sample std over seeds",
      "methods": {}, "runs": {},
  }
  for method, method_runs in runs.items():
    test, dev, en_dev = {}, {}, {}
    for seed in seeds:
      t, d, e = {}, {}, []
      for r in method_runs:
        res = results[r.model_id][seed]
        e.append(100 * res["english_dev"])
        for l in r.eval_langs:
          t[l] = 100 * res["target_test"][l]["f1"]
          if l in res["target_dev"]:  # absent when selection.score_target_dev is off
            d[l] = 100 * res["target_dev"][l]["f1"]
      test[seed], dev[seed], en_dev[seed] = t, d, float(np.mean(e))
    mean, std = _mean_std(list(en_dev.values()))
    out["methods"][method] = {
        "runs": [r.model_id for r in method_runs],
        "test": _table(test, langs),
        "dev": _table(dev, langs) if all(set(langs) <= set(d) for d in dev.values()) else None,
        "english_dev": {"per_seed": {str(s): v for s, v in en_dev.items()}, "mean": mean, "std": std},
    }
    for r in method_runs:
      out["runs"][r.model_id] = {
          str(s): {k: results[r.model_id][s][k] for k in ("best_step", "english_dev", "train_examples",
                                                          "target_test", "target_dev")}
          for s in seeds}
  if workdir is not None:
    effects = {}
    for seed in seeds:
      p = pathlib.Path(workdir) / "warmup" / f"seed{seed}" / "effect.json"
      if p.exists():
        effects[str(seed)] = json.loads(p.read_text())
    if effects:
      out["warmup_effect"] = effects
  return out


def _name(method: str, adapt: str) -> str:
  name = DISPLAY.get(method, method)
  if method == "mtl_ws" and adapt != "zero_shot":
    name += f" (+{DISPLAY.get(adapt, adapt)})"
  return name


def results_markdown(summary: Mapping[str, Any], split: str = "test") -> str:
  """The paper's layout: rows methods, columns target languages and Avg.; mean ± std over seeds."""
  langs = summary["target_langs"]
  n = len(summary["seeds"])
  lines = [f"### {summary['task'].upper()}, {summary['model']}: target {split} F1 (%), "
           f"mean ± std over {n} seed{'s' if n > 1 else ''}", "",
           "| Model | " + " | ".join(langs) + " | Avg. |",
           "|---|" + "---:|" * (len(langs) + 1)]
  for method, m in summary["methods"].items():
    t = m[split]
    cells = [f"{t['mean'][k]:.2f} ± {t['std'][k]:.2f}" for k in [*langs, "avg"]]
    lines.append(f"| {_name(method, summary.get('adapt', 'zero_shot'))} | " + " | ".join(cells) + " |")
  lines.append("")
  lines.append("English dev F1 of the selected models (%): " + ", ".join(
      f"{_name(k, summary.get('adapt', 'zero_shot'))} {m['english_dev']['mean']:.2f}"
      for k, m in summary["methods"].items()))
  effects = summary.get("warmup_effect")
  if effects:
    rel = [e["param_rel_change"] for e in effects.values()]
    before = [e.get("mean_loss_before") for e in effects.values() if "mean_loss_before" in e]
    after = [e.get("mean_loss_after") for e in effects.values() if "mean_loss_after" in e]
    msg = f"MTL-WS warmup moved the parameters by {np.mean(rel):.3g} of their norm"
    if before and after:
      msg += f"; loss on the translated sets {np.mean(before):.4f} -> {np.mean(after):.4f}"
    lines.append("")
    lines.append(msg + ".")
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


def warmup_pairs(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
  """(without warmup, with warmup) model ids present in the summary, e.g. (zero_shot, mtl_ws)."""
  ids = set(summary["runs"])
  pairs = []
  for mid in sorted(ids):
    if mid == "mtl_ws" and "zero_shot" in ids:
      pairs.append(("zero_shot", mid))
    elif mid.startswith("mtl_ws+") and mid.split("+", 1)[1] in ids:
      pairs.append((mid.split("+", 1)[1], mid))
  return pairs


def plot_convergence(summary: Mapping[str, Any], workdir: pathlib.Path, path: pathlib.Path) -> bool:
  """The paper's Figure 2: English dev F1 and training loss against steps, with/without warmup."""
  pairs = warmup_pairs(summary)
  if not pairs:
    return False
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, (ax_f1, ax_loss) = plt.subplots(1, 2, figsize=(10, 4))
  colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
  for i, (base, warm) in enumerate(pairs):
    for mid, style, label in ((base, "--", "without warmup"), (warm, "-", "with MTL-WS warmup")):
      f1, loss = _curves(workdir, mid, summary["seeds"])
      tag = f"{mid} ({label})"
      if f1:
        ax_f1.plot(list(f1), list(f1.values()), style, marker="o", ms=3, color=colors[i % len(colors)], label=tag)
      if loss:
        ax_loss.plot(list(loss), list(loss.values()), style, color=colors[i % len(colors)], label=tag)
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
  """Grouped bars: F1 per target language (and Avg.) per method, error bars = std over seeds."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  langs = [*summary["target_langs"], "avg"]
  methods = list(summary["methods"])
  width = 0.8 / max(len(methods), 1)
  fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(langs) + 2), 4))
  x = np.arange(len(langs))
  for i, m in enumerate(methods):
    t = summary["methods"][m][split]
    ax.bar(x + (i - (len(methods) - 1) / 2) * width, [t["mean"][l] for l in langs], width,
           yerr=[t["std"][l] for l in langs], capsize=2, label=_name(m, summary.get("adapt", "zero_shot")))
  ax.set_xticks(x, [l if l != "avg" else "Avg." for l in langs])
  ax.set(ylabel=f"{split} F1 (%)", title=f"{summary['task'].upper()} {summary['model']}: F1 per language and method")
  ax.grid(axis="y", alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def plot_all(summary: Mapping[str, Any], workdir: pathlib.Path) -> list[pathlib.Path]:
  folder = pathlib.Path(workdir) / "plots"
  folder.mkdir(parents=True, exist_ok=True)
  made = []
  p = folder / "f1_per_language.png"
  plot_per_language(summary, p)
  made.append(p)
  p = folder / "convergence.png"
  if plot_convergence(summary, pathlib.Path(workdir), p):
    made.append(p)
  return made


# ---------------------------------------------------------------------------------------------
# Rebuilding from a workdir, and the paper's numbers beside ours.


def paper_markdown(summary: Mapping[str, Any], backbone: str, split: str = "test") -> str:
  """Our mean ± std with the paper's number in brackets, same rows and columns.

  The paper's Avg. is recomputed over our columns (e.g. ABSA without tr) so the two agree.
  """
  from mtlws_jax.eval import paper
  ref = paper.table(summary["task"], backbone)
  langs = summary["target_langs"]
  n = len(summary["seeds"])
  lines = [f"### {summary['task'].upper()}: ours ({summary['model']}, {n} seed{'s' if n > 1 else ''}, "
           f"mean ± std) and (in brackets) the paper's {backbone} (5 runs)", "",
           "| Model | " + " | ".join(langs) + " | Avg. |", "|---|" + "---:|" * (len(langs) + 1)]
  for method, m in summary["methods"].items():
    t, row = m[split], ref.get(method, {})
    cells = []
    for k in [*langs, "avg"]:
      p = paper.mean_over(row, langs) if k == "avg" else row.get(k)
      cells.append(f"{t['mean'][k]:.2f} ± {t['std'][k]:.2f} ({p:.2f})" if p is not None
                   else f"{t['mean'][k]:.2f} ± {t['std'][k]:.2f} (–)")
    lines.append(f"| {_name(method, summary.get('adapt', 'zero_shot'))} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def collect(workdir: pathlib.Path, seeds: Sequence[int] | None = None):
  """(config, runs, results, seeds, missing) from a workdir's config.json and runs' result.json.

  Seeds default to those on disk whose every planned run has finished; `missing` lists the
  runs of other seeds that have not (a grid still running, or a killed one to resume).
  """
  import ml_collections
  from mtlws_jax import experiment
  saved = workdir / "config.json"
  if not saved.exists():
    from mtlws_jax.errors import InputError
    raise InputError("no config.json: not a workdir made by run.py", workdir)
  config = ml_collections.ConfigDict(json.loads(saved.read_text()))
  config = experiment.normalize(config)
  runs = experiment.plan_runs(config)
  ids = [r.model_id for rs in runs.values() for r in rs]
  on_disk = sorted({int(p.name[4:]) for mid in ids for p in (workdir / "runs" / mid).glob("seed*")
                    if p.name[4:].isdigit()} | set(config.seeds))
  wanted = list(seeds) if seeds else on_disk
  results: dict[str, dict[int, dict]] = {}
  complete, missing = [], []
  for s in wanted:
    paths = {mid: workdir / "runs" / mid / f"seed{s}" / "result.json" for mid in ids}
    absent = [f"{mid} seed {s}" for mid, p in paths.items() if not p.exists()]
    if absent:
      missing += absent
      continue
    complete.append(s)
    for mid, p in paths.items():
      results.setdefault(mid, {})[s] = json.loads(p.read_text())
  with config.unlocked():
    config.seeds = tuple(complete)
  return config, runs, results, complete, missing


def rebuild(workdir: str | pathlib.Path, *, seeds: Sequence[int] | None = None,
            paper_backbone: str | None = None) -> str:
  """Writes results.json, results.md and plots of a workdir from its runs; returns the markdown."""
  from mtlws_jax.errors import InputError
  workdir = pathlib.Path(workdir)
  config, runs, results, complete, missing = collect(workdir, seeds)
  if not complete:
    raise InputError("no seed has all its runs finished; missing: " + ", ".join(missing[:10])
                     + (" ..." if len(missing) > 10 else ""), workdir)
  summary = summarize(config, runs, results, workdir)
  md = results_markdown(summary)
  if paper_backbone:
    md += "\n" + paper_markdown(summary, paper_backbone)
  if missing:
    md += "\nNot finished (left out): " + ", ".join(missing) + "\n"
  (workdir / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
  (workdir / "results.md").write_text(md)
  plot_all(summary, workdir)
  return md


def _main(argv: Sequence[str] | None = None) -> None:
  import argparse
  from mtlws_jax.eval import paper
  ap = argparse.ArgumentParser(
      prog="python -m mtlws_jax.eval.report",
      description="Rebuild results.json, results.md (the paper's layout) and plots/ of a run.py "
                  "workdir from its finished runs; optionally beside the paper's numbers.")
  ap.add_argument("workdir")
  ap.add_argument("--seeds", default="", help="comma list (default: every seed whose runs all finished)")
  ap.add_argument("--paper", choices=paper.BACKBONES, help="print the paper's table of this backbone beside ours")
  args = ap.parse_args(argv)
  seeds = [int(s) for s in args.seeds.split(",") if s.strip()] or None
  print(rebuild(args.workdir, seeds=seeds, paper_backbone=args.paper), end="")


def main(argv: Sequence[str] | None = None) -> None:
  from mtlws_jax.errors import main_guard
  main_guard(_main)(argv)


if __name__ == "__main__":
  main()
