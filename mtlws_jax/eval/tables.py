"""Markdown tables of a summary (report.summarize): the results table with its differences and
intervals, the noise lines under it, and the paper's layout beside the paper's own numbers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from mtlws_jax import plan as plan_lib

DISPLAY = plan_lib.DISPLAY



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
