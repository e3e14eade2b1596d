"""Results must not change under refactoring: a tiny grid (all five methods, two seeds) gives the
digests recorded in tests/reference_grid.json (results.json, results.md, every run's predictions,
every warmup's effect.json). Recorded with `python tests/reference_grid.py tests/reference_grid.json`
before issue 25's refactoring (and on each new kind of machine since); float bits depend on the
CPU's vector instructions and the jax build, so it runs where a reference's machine matches."""

from __future__ import annotations

import json
import pathlib

import pytest

import reference_grid

HERE = pathlib.Path(__file__).resolve().parent


@pytest.mark.alone(seconds=70)
@pytest.mark.slow
def test_the_tiny_grid_gives_the_recorded_results(tmp_path):
  here = reference_grid.machine()
  refs = reference_grid.references(HERE / "reference_grid.json")
  ref = next((r for r in refs if r["machine"] == here), None)
  if ref is None:
    pytest.skip(f"recorded on {[r['machine'] for r in refs]}, this is {here}: other float bits")
  assert ref["three_agree"], "the reference's one-by-one, four-at-once and resumed workdirs differed"
  got = reference_grid.one_by_one(tmp_path)
  assert sorted(got) == sorted(ref["digests"])
  changed = [k for k in got if got[k] != ref["digests"][k]]
  assert not changed, f"results changed: {changed}"


@pytest.mark.parametrize("i", range(len(reference_grid.references(HERE / "reference_grid.json"))))
def test_the_digests_cover_every_method_seed_and_table(i):
  ref = reference_grid.references(HERE / "reference_grid.json")[i]["digests"]
  runs = {k.split("/")[1] for k in ref if k.startswith("runs/")}
  assert {"zero_shot", "target_only-es", "bilingual-fr", "mtl", "mtl_ws"} <= runs
  assert {k.split("/")[2] for k in ref if k.startswith("runs/")} == {"seed0", "seed1"}
  assert {"results.json", "results.md"} <= set(ref)
  assert any(k.startswith("warmup/") for k in ref)


def test_a_changed_prediction_changes_its_digest(tmp_path):
  """The digests see a single changed tag (a check that cannot fail would be no check)."""
  import gzip
  run = tmp_path / "runs" / "zero_shot" / "seed0"
  run.mkdir(parents=True)
  (tmp_path / "results.json").write_text(json.dumps({"methods": {}, "timing": {"x": 1}}))
  (tmp_path / "results.md").write_text("| Model | min | warmup min |\n|---|---:|---:|\n| A | 1.0 | 2.0 |\n")
  write = lambda tags: (run / "predictions.json.gz").write_bytes(gzip.compress(json.dumps(tags).encode()))
  write({"splits": {"test:es": ["O B-X"]}})
  a = reference_grid.digests(tmp_path)
  (tmp_path / "results.json").write_text(json.dumps({"methods": {}, "timing": {"x": 2}}))    # wall clock only
  (tmp_path / "results.md").write_text("| Model | min | warmup min |\n|---|---:|---:|\n| A | 1.5 | 2.5 |\n")
  assert reference_grid.digests(tmp_path) == a
  write({"splits": {"test:es": ["O S-X"]}})
  assert reference_grid.digests(tmp_path)["runs/zero_shot/seed0/predictions.json.gz"] != a[
      "runs/zero_shot/seed0/predictions.json.gz"]
