"""Scripts outside the package (benchmarks/, results/, examples/) name the library's functions as
attributes: `from mtlws_jax import workdir as W` then `W.read_result(...)`. A refactor that moves a
function breaks them only when the script's last step runs (benchmarks/apertium_vs_deepl.py failed
after two hours of training). Read from the source: every `alias.name` on an imported mtlws_jax
module must exist."""

from __future__ import annotations

import ast
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p for d in ("benchmarks", "results", "examples", "configs") for p in (ROOT / d).rglob("*.py"))


def _module_aliases(tree: ast.AST) -> dict[str, str]:
  """Local name -> mtlws_jax module, for `import mtlws_jax.x as y` and `from mtlws_jax[.p] import m [as y]`."""
  out = {}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      for a in node.names:
        if a.name.startswith("mtlws_jax") and a.asname:
          out[a.asname] = a.name
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mtlws_jax") and not node.level:
      for a in node.names:
        full = f"{node.module}.{a.name}"
        try:
          importlib.import_module(full)
        except ModuleNotFoundError:
          continue                      # a function or class imported by name: checked by the import itself
        out[a.asname or a.name] = full
  return out


def _names_used(tree: ast.AST, aliases: dict[str, str]) -> set[tuple[str, str, int]]:
  return {(aliases[n.value.id], n.attr, n.lineno) for n in ast.walk(tree)
          if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases}


def test_the_scan_finds_scripts_and_names():
  assert len(SCRIPTS) > 20
  tree = ast.parse("from mtlws_jax import workdir as W\nfrom mtlws_jax.eval import bootstrap\nW.read_result(1)\n"
                   "bootstrap.seed_level(2)\n")
  used = _names_used(tree, _module_aliases(tree))
  assert used == {("mtlws_jax.workdir", "read_result", 3), ("mtlws_jax.eval.bootstrap", "seed_level", 4)}
  missing = [(m, a) for m, a, _ in used if not hasattr(importlib.import_module(m), a)]
  assert missing == [("mtlws_jax.workdir", "read_result")]     # the name the benchmark used after the move


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_library_name_a_script_uses_exists(script):
  tree = ast.parse(script.read_text(encoding="utf-8"))
  missing = [f"{script.relative_to(ROOT)}:{line}: {mod}.{attr}"
             for mod, attr, line in sorted(_names_used(tree, _module_aliases(tree)))
             if not hasattr(importlib.import_module(mod), attr)]
  assert not missing, missing
