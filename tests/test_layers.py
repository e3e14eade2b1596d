"""The layers, read from the source (every import, function-level ones included, followed
transitively): data flows one way and no import runs back up (issue 25).

  training   experiment -> runner -> train/*, models/backbone, data/encoded, eval/tagging
  inference  predict, export, showcase, eval/select, saved: read runs through runfolder
"""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "mtlws_jax"

TRAINING = ("mtlws_jax.experiment", "mtlws_jax.runner")
INFERENCE = ("mtlws_jax.predict", "mtlws_jax.export", "mtlws_jax.showcase", "mtlws_jax.eval.select",
             "mtlws_jax.saved", "mtlws_jax.eval.report")
TRAINING_ONLY = ("mtlws_jax.train.loop", "mtlws_jax.train.compiled", "mtlws_jax.runner", "mtlws_jax.experiment")


def _name(path: pathlib.Path) -> str:
  rel = path.relative_to(ROOT).with_suffix("")
  parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
  return ".".join(parts)


def _graph() -> dict[str, set[str]]:
  modules = {_name(p): p for p in PKG.rglob("*.py")}
  graph = {}
  for name, path in modules.items():
    deps = set()
    for node in ast.walk(ast.parse(path.read_text())):
      if isinstance(node, ast.Import):
        deps |= {a.name for a in node.names}
      elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        deps.add(node.module)
        deps |= {f"{node.module}.{a.name}" for a in node.names}
    graph[name] = {d for d in deps if d in modules}
  return graph


def _reach(graph, start: str) -> set[str]:
  seen, todo = set(), [start]
  while todo:
    for d in graph[todo.pop()]:
      if d not in seen:
        seen.add(d)
        todo.append(d)
  return seen


def test_training_never_imports_the_inference_layer():
  graph = _graph()
  for mod in TRAINING:
    bad = _reach(graph, mod) & {"mtlws_jax.predict", "mtlws_jax.export", "mtlws_jax.showcase",
                                "mtlws_jax.eval.select", "mtlws_jax.saved"}
    assert not bad, f"{mod} imports {sorted(bad)}"


def test_reading_runs_never_imports_the_training_loop():
  graph = _graph()
  for mod in INFERENCE:
    bad = _reach(graph, mod) & set(TRAINING_ONLY)
    assert not bad, f"{mod} imports {sorted(bad)}"


def test_nothing_imports_the_experiment_and_no_bench_is_left():
  graph = _graph()
  users = sorted(m for m, deps in graph.items() if "mtlws_jax.experiment" in deps)
  assert users == [], users
  assert "mtlws_jax.bench" not in graph


def test_the_checker_sees_a_function_level_import(tmp_path):
  """The graph follows imports inside functions (where this package imports lazily)."""
  graph = _graph()
  assert "mtlws_jax.eval.tagging" in graph["mtlws_jax.eval.select"]   # imported inside score_runs


def test_models_and_data_never_import_training():
  """models/ and data/ sit below train/: the backbone, checkpoints and readers need no optimizer."""
  graph = _graph()
  for mod in graph:
    if mod.startswith(("mtlws_jax.models", "mtlws_jax.data")):
      bad = {m for m in _reach(graph, mod) if m.startswith("mtlws_jax.train")}
      assert not bad, f"{mod} imports {sorted(bad)}"
