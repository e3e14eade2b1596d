"""Plots of a summary (report.summarize): F1 per language, the convergence curves (the paper's
Fig. 2) from each run's metrics.jsonl, and the differences with their intervals."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from mtlws_jax import runfolder



def _curves(workdir: pathlib.Path, model_id: str, seeds: Sequence[int]) -> tuple[dict, dict]:
  """Mean over seeds of dev F1 (%) and training loss, by step."""
  f1: dict[int, list[float]] = {}
  loss: dict[int, list[float]] = {}
  for s in seeds:
    for rec in runfolder.read_metrics(runfolder.run_folder(workdir, model_id, s) / runfolder.METRICS):
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
