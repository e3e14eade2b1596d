"""The task registry (issue 25): one place that says what a task reads, trains in and scores."""

from __future__ import annotations

import pathlib
import re

import pytest

from mtlws_jax.data import taskspec
from mtlws_jax.errors import InputError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_task_reads_and_writes_its_own_format(tmp_path):
  samples = {"ner": "EU B-ORG\nrejects O\n\n", "absa": "pizza\tT-POS\tFOOD#QUALITY\nwas\tO\tNIL\n\n",
             "srl": "# sent_id = 1\n1\tJohn\tJohn\tPROPN\tNNP\t_\t2\tnsubj\t_\t_\tA0\n"
                    "2\tsleeps\tsleep\tVERB\tVBZ\t_\t0\troot\tY\tsleep.01\t_\n\n"}
  assert set(samples) == set(taskspec.TASKS)
  for name, text in samples.items():
    spec = taskspec.get(name)
    src = tmp_path / f"{name}.in"
    src.write_text(text, encoding="utf-8")
    recs = spec.read(src)
    spec.write(tmp_path / f"{name}.out", recs)
    assert (tmp_path / f"{name}.out").read_text(encoding="utf-8") == text, name
    assert spec.exportable == (not spec.predicates)


def test_an_unknown_task_is_one_line_naming_the_known_ones():
  with pytest.raises(InputError, match=r"^unknown task 'pos'; expected one of ner, srl, absa$"):
    taskspec.get("pos")


def test_no_module_branches_on_a_task_name_but_the_projection_cli():
  """Readers, writers, scorers and commands ask the registry (projection keeps its own head logic)."""
  found = []
  for path in sorted((ROOT / "mtlws_jax").rglob("*.py")):
    if path.name == "taskspec.py" or path.parent.name == "projection":
      continue
    for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
      if re.search(r"""task["'\]]*\s*[=!]= ["'](ner|srl|absa)["']""", line):
        found.append(f"{path.relative_to(ROOT)}:{k}: {line.strip()}")
  assert found == []
