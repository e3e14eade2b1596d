"""The paper's Tables 1-3 (test F1 %, mean of 5 runs), to print beside our own numbers.

Keys: (task, backbone) -> method id -> {language: F1}; "avg" is the paper's Avg. column, which
for ABSA includes Turkish (tr), a column the shared data cannot train (no translated tr set).
"""

from __future__ import annotations

from collections.abc import Mapping

_LANGS = {"ner": ("es", "de", "nl"), "srl": ("fr", "es", "de", "it", "pt", "fi"),
          "absa": ("fr", "es", "tr", "nl", "ru")}

_ROWS = {
    ("ner", "mbert"): {
        "zero_shot": (76.14, 67.92, 77.10, 73.72), "target_only": (69.17, 63.46, 70.90, 67.84),
        "bilingual": (71.09, 67.14, 71.43, 69.89), "mtl": (72.32, 68.06, 72.68, 71.02),
        "mtl_ws": (75.67, 71.69, 78.31, 75.22)},
    ("ner", "xlmr"): {
        "zero_shot": (77.47, 68.69, 78.38, 74.85), "target_only": (74.67, 70.51, 73.25, 72.81),
        "bilingual": (75.29, 71.35, 73.77, 73.47), "mtl": (75.38, 72.10, 74.60, 74.03),
        "mtl_ws": (76.73, 74.92, 78.62, 76.76)},
    ("srl", "mbert"): {
        "zero_shot": (42.27, 45.72, 48.89, 51.07, 47.52, 41.73, 46.20),
        "target_only": (44.99, 47.22, 53.90, 52.17, 48.42, 41.43, 48.02),
        "bilingual": (44.74, 47.88, 54.22, 53.25, 49.48, 41.48, 48.51),
        "mtl": (44.34, 45.82, 51.71, 50.47, 47.69, 40.35, 46.73),
        "mtl_ws": (45.36, 48.21, 53.20, 54.47, 50.43, 41.95, 48.94)},
    ("srl", "xlmr"): {
        "zero_shot": (43.05, 46.68, 52.41, 51.33, 49.03, 49.55, 48.68),
        "target_only": (44.99, 47.55, 55.20, 52.25, 49.54, 46.41, 49.32),
        "bilingual": (45.06, 48.75, 56.20, 53.03, 51.35, 46.67, 50.18),
        "mtl": (44.19, 46.64, 54.92, 51.79, 49.13, 44.18, 48.48),
        "mtl_ws": (45.74, 49.76, 54.50, 53.80, 50.59, 50.73, 50.85)},
    ("absa", "mbert"): {
        "zero_shot": (45.60, 57.32, 26.58, 42.68, 36.01, 41.64),
        "target_only": (40.76, 50.74, 22.04, 47.13, 41.67, 40.47),
        "bilingual": (41.00, 51.23, 22.64, 49.72, 43.67, 41.65),
        "mtl": (40.72, 54.14, 25.77, 49.06, 43.89, 42.72),
        "mtl_ws": (46.93, 58.18, 29.78, 49.87, 44.88, 45.93)},
    ("absa", "xlmr"): {
        "zero_shot": (56.43, 67.10, 46.21, 59.03, 56.80, 57.11),
        "target_only": (47.00, 58.10, 40.24, 56.19, 50.34, 50.37),
        "bilingual": (49.34, 61.87, 41.44, 58.64, 52.89, 52.84),
        "mtl": (52.80, 63.56, 43.04, 60.37, 55.67, 55.09),
        "mtl_ws": (57.96, 68.60, 45.58, 61.24, 59.74, 58.62)},
}

BACKBONES = ("mbert", "xlmr")


def table(task: str, backbone: str) -> dict[str, dict[str, float]]:
  """method -> {lang: F1, "avg": paper's Avg.} for one of the paper's tables."""
  if (task, backbone) not in _ROWS:
    raise KeyError(f"the paper has no table for task {task!r} with backbone {backbone!r}")
  langs = _LANGS[task]
  return {m: dict(zip((*langs, "avg"), row)) for m, row in _ROWS[(task, backbone)].items()}


def mean_over(row: Mapping[str, float], langs) -> float | None:
  """The paper's mean over just `langs` (e.g. ABSA without tr), None if one is missing."""
  vals = [row.get(l) for l in langs]
  return None if None in vals else sum(vals) / len(vals)
