"""Bad input through the real command lines: one line `error: WHERE: problem`, exit 1, nothing lost.

Every case runs the CLI as a user would (a subprocess) and checks the exit code, that stderr is
one `error:` line (no traceback) naming the file and line where there is one, and that no input
was overwritten and no output written. Cases that need a model run on the tiny fixtures.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

import _tiny_absa as T

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _cli(*args, cwd=ROOT, timeout=300) -> subprocess.CompletedProcess:
  return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout)


def _one_error(p: subprocess.CompletedProcess, *fragments: str) -> str:
  """The single `error:` line of a failed command, checked for the fragments."""
  assert p.returncode == 1, (p.returncode, p.stdout[-2000:], p.stderr[-3000:])
  assert "Traceback" not in p.stderr, p.stderr[-3000:]
  errors = [l for l in p.stderr.splitlines() if l.startswith("error:")]
  assert len(errors) == 1, p.stderr
  for f in fragments:
    assert f in errors[0], (f, errors[0])
  return errors[0]


# ------------------------------------------------------------------------------------ files


def _write(path: pathlib.Path, data: bytes) -> pathlib.Path:
  path.write_bytes(data)
  return path


@pytest.fixture
def parallel(tmp_path):
  src = _write(tmp_path / "src.txt", b"John lives in Madrid .\nThe cat sat .\n")
  tgt = _write(tmp_path / "tgt.txt", b"John vive en Madrid .\nEl gato se sento .\n")
  return src, tgt


@pytest.mark.parametrize("bad, where, what", [
    (b"\xef\xbb\xbfJohn vive en Madrid .\nEl gato\x00 se sento .\n", ":2", "NUL byte"),
    (b"John vive en Madrid .\rEl gato se sento .\n", ":1", "carriage return"),
    (b"John vive \xff en Madrid .\nEl gato se sento .\n", ":1", "invalid UTF-8"),
    (b"", ":1", "empty file"),
    (b"John vive en Madrid .\n", "", "1 target sentences for 2"),
])
def test_align_refuses_broken_translations(parallel, tmp_path, bad, where, what):
  src, _ = parallel
  tgt = _write(tmp_path / "bad.txt", bad)
  out = tmp_path / "links.txt"
  _one_error(_cli("-m", "mtlws_jax.projection.align", f"--src={src}", f"--tgt={tgt}", f"--out={out}"),
             str(tgt) + where if where else "", what)
  assert not out.exists()


def test_a_bom_is_not_part_of_the_first_token(parallel, tmp_path):
  from mtlws_jax.projection import align
  src, tgt = parallel
  bom = _write(tmp_path / "bom.txt", b"\xef\xbb\xbf" + tgt.read_bytes())
  assert align.read_tokenized(bom) == align.read_tokenized(tgt)
  assert align.read_tokenized(bom)[0][0] == "John"


def test_outputs_never_overwrite_inputs(parallel, tmp_path):
  src, tgt = parallel
  before = src.read_bytes()
  _one_error(_cli("-m", "mtlws_jax.projection.align", f"--src={src}", f"--tgt={tgt}", f"--out={src}"),
             "--out is the input file", "overwritten")
  assert src.read_bytes() == before
  _one_error(_cli("-m", "mtlws_jax.projection.align", f"--src={src}", f"--tgt={tgt}",
                  f"--out={tmp_path}/no/such/folder/links.txt"), "does not exist")
  conll = _write(tmp_path / "en.conll", b"John B-PER\nlives O\nin O\nMadrid B-LOC\n. O\n\nThe O\ncat O\nsat O\n. O\n")
  before = conll.read_bytes()
  _one_error(_cli("-m", "mtlws_jax.projection", "--task=ner", f"--src={conll}", f"--tgt-tokens={tgt}",
                  "--aligner=eflomal", f"--out={conll}"), "--out is the input file")
  _one_error(_cli("-m", "mtlws_jax.projection", "--task=ner", f"--src={conll}", f"--tgt-tokens={tgt}",
                  "--aligner=eflomal", f"--out={tmp_path}/out.conll", f"--report={tmp_path}/out.conll"),
             "--report and --out are the same file")
  _one_error(_cli("-m", "mtlws_jax.projection", "--task=ner", f"--src={conll}", f"--tgt-tokens={tgt}",
                  "--aligner=eflomal", f"--out={tmp_path}/out.conll", f"--report={tgt}"),
             "--report is the input file")
  assert conll.read_bytes() == before and not (tmp_path / "out.conll").exists()


def test_projection_reads_pharaoh_files_strictly(parallel, tmp_path):
  _, tgt = parallel
  conll = _write(tmp_path / "en.conll", b"John B-PER\nlives O\nin O\nMadrid B-LOC\n. O\n\nThe O\ncat O\nsat O\n. O\n")
  out = tmp_path / "out.conll"
  for links, where, what in ((b"0-0 1-1\n0-x\n", ":2", "bad link '0-x'"),
                             (b"0-0 9-1\n0-0\n", ":1", "source index 9 out of range"),
                             (b"0-0\r0-0\n", ":1", "carriage return"),
                             (b"0-0\n", ":2", "1 alignment lines for 2")):
    pharaoh = _write(tmp_path / "links.txt", links)
    _one_error(_cli("-m", "mtlws_jax.projection", "--task=ner", f"--src={conll}", f"--tgt-tokens={tgt}",
                    f"--alignments={pharaoh}", f"--out={out}"), str(pharaoh) + where, what)
    assert not out.exists()


def test_aer_refuses_what_has_no_answer(tmp_path):
  gold = _write(tmp_path / "gold.jsonl", b'{"src_words": ["a", "b"], "tgt_words": ["x", "y"], "alignment": [[0, 0]]}\n')
  pred = _write(tmp_path / "pred.txt", b"0-0 1-5\n")
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={gold}", f"--pred={pred}"),
             f"{pred}:1", "predicted link 1-5 out of range for 2 x 2 words")
  empty_gold, empty_pred = _write(tmp_path / "g.txt", b"\n"), _write(tmp_path / "p.txt", b"\n")
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={empty_gold}", f"--pred={empty_pred}",
                  "--gold-format=pharaoh"), "no sure link", "undefined")
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={tmp_path}/missing.txt", f"--pred={pred}"),
             "missing.txt", "no such file")
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={tmp_path}", f"--pred={pred}"), "is a folder")


# ------------------------------------------------------------------------------------ run.py


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
  root = tmp_path_factory.mktemp("assets")
  return T.make_data(root / "data"), T.make_model(root / "model")


def _run_py(assets, workdir, *extra, cwd=ROOT):
  data, model = assets
  return _cli(str(ROOT / "run.py"), "--config=" + str(ROOT / "configs" / "tiny.py"), f"--workdir={workdir}",
              f"--config.data_dir={data}", f"--config.model.path={model}", *extra, cwd=cwd)


@pytest.mark.parametrize("extra, fragments", [
    (["--config.bogus=1"], ["field the config does not have: bogus"]),
    (["--config.train.max_step=3"], ["max_step", 'Did you mean "max_steps"']),
    (["--config.train.max_steps=abc"], ["--config.train.max_steps=abc"]),
    (["--config.seeds=0,0"], ["lists a seed twice"]),
    (["--config.data.max_train_sentences=-1"], ["max_train_sentences must be >= 0"]),
    (["--config.data.stride=1000"], ["data.stride=1000 must be below"]),
    (["--config.data.max_length=2"], ["data.max_length=2 leaves"]),
    (["--config.data.max_length=100000"], ["beyond the model's 32 positions"]),
    (["--config.warmup.outer=rmsprop"], ["warmup.outer must be one of"]),
    (["--config.train.lr_schedule=cosine"], ["lr_schedule must be one of"]),
    (["--config.train.embedding_update=rows", "--config.train.freeze=word_emb"], ["embedding_update=rows", "freezes them"]),
])
def test_run_py_refuses_bad_config_values_before_training(assets, tmp_path, extra, fragments):
  work = tmp_path / "work"
  _one_error(_run_py(assets, work, *extra), *fragments)
  assert not (work / "runs").exists()


def test_run_py_config_file_errors(tmp_path):
  _one_error(_cli(str(ROOT / "run.py"), "--config=configs/nope.py"), "configs/nope.py", "cannot load")
  _one_error(_cli(str(ROOT / "run.py"), "--config=configs"), "configs: is a folder")
  bad = _write(tmp_path / "bad.py", b"def get_config(:\n")
  _one_error(_cli(str(ROOT / "run.py"), f"--config={bad}"), f"{bad}:1")
  buggy = _write(tmp_path / "buggy.py", b"def get_config():\n  return undefined_name\n")
  _one_error(_cli(str(ROOT / "run.py"), f"--config={buggy}"), f"{buggy}:2", "NameError")


def test_run_py_refuses_unusable_workdirs(assets, tmp_path):
  a_file = _write(tmp_path / "file", b"x")
  _one_error(_run_py(assets, a_file), str(a_file), "is a file, not a folder")
  _one_error(_run_py(assets, a_file / "sub"), "cannot make the workdir", "is a file")
  assert a_file.read_bytes() == b"x"
  work = tmp_path / "w"
  work.mkdir()
  (work / "config.json").write_text('{"task": "absa", ')
  _one_error(_run_py(assets, work), str(work / "config.json") + ":1", "truncated or not valid JSON")


def test_ill_formed_tags_in_a_file_already_in_bioes_are_counted_and_refused(assets, tmp_path):
  """A stray S-ORG makes an IOB2 file read as BIOES; its B-X I-X spans are then ill-formed."""
  data, model = assets
  from mtlws_jax.data import tasks, conll
  f = _write(tmp_path / "mixed.conll", b"John B-PER\nSmith I-PER\nvisits O\nACME S-ORG\n\n")
  sents = conll.read(f)
  assert sents[0].scheme == "bioes"
  fixed = tasks.to_scheme(sents, "bioes", f)
  assert fixed[0].tags == ("B-PER", "E-PER", "O", "S-ORG")  # the spans IOB2 would read
  from mtlws_jax.errors import InputError
  with pytest.raises(InputError, match=r"mixed.conll:2: ill-formed bioes tag 'I-PER'.*stray E-/S-"):
    tasks.to_scheme(sents, "bioes", f, ill_formed="error")


def test_windows_and_truncation_are_shown_at_the_default_verbosity(assets, tmp_path):
  p = _run_py(assets, tmp_path / "w", "--config.method=zero_shot", "--config.data.max_length=5",
              "--config.data.stride=1", "--config.train.max_steps=16", "--config.selection.eval_after=8")
  assert p.returncode == 0, p.stderr[-3000:]
  notes = [l for l in p.stdout.splitlines() if l.startswith("note:")]
  assert any("English train:" in l and "split into overlapping windows" in l for l in notes), p.stdout


@pytest.mark.alone(seconds=101)
def test_broken_results_and_checkpoints_are_recovered(assets, tmp_path):
  work = tmp_path / "w"
  args = ("--config.method=zero_shot", "--config.train.max_steps=16", "--config.selection.eval_after=8",
          "--config.checkpoint_every=8")
  assert _run_py(assets, work, *args).returncode == 0
  run = work / "runs" / "zero_shot" / "seed0"
  good = json.loads((run / "result.json").read_text())
  # a truncated result.json: the report says which file and what to do; run.py recomputes it
  (run / "result.json").write_text((run / "result.json").read_text()[:50])
  _one_error(_cli("-m", "mtlws_jax.eval.report", str(work)), str(run / "result.json"), "truncated")
  p = _run_py(assets, work, *args)
  assert p.returncode == 0 and "recomputing that run" in p.stdout, p.stdout + p.stderr[-2000:]
  assert json.loads((run / "result.json").read_text())["target_test"] == good["target_test"]
  # a finished run keeps only its selected parameters: without result.json it trains again
  assert not (run / "checkpoints" / "latest").exists()
  # a corrupted checkpoint of an unfinished (killed) run: restarted from step 0, same result
  cut = tmp_path / "cut"
  data, model = assets
  victim = subprocess.Popen(
      [sys.executable, str(ROOT / "run.py"), "--config=" + str(ROOT / "configs" / "tiny.py"), f"--workdir={cut}",
       f"--config.data_dir={data}", f"--config.model.path={model}", *args],
      cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  latest = cut / "runs" / "zero_shot" / "seed0" / "checkpoints" / "latest"
  deadline = time.time() + 240
  while victim.poll() is None and time.time() < deadline:
    if latest.exists() and any(p.name.isdigit() and (p / "commit_success.txt").exists() for p in latest.iterdir()):
      victim.send_signal(signal.SIGKILL)
      break
    time.sleep(0.005)
  assert victim.wait() == -signal.SIGKILL, "the run finished before it could be killed"
  for f in latest.rglob("*"):
    if f.is_file() and f.stat().st_size > 0:
      f.write_bytes(b"garbage")
  p = _run_py(assets, cut, *args)
  assert p.returncode == 0, p.stderr[-3000:]
  assert "cannot be read" in p.stdout and "restarting this run from step 0" in p.stdout, p.stdout + p.stderr[-3000:]
  assert "Traceback" not in p.stderr, p.stderr[-3000:]
  cut_run = cut / "runs" / "zero_shot" / "seed0"
  assert json.loads((cut_run / "result.json").read_text())["target_test"] == good["target_test"]
  # the report on things that are not workdirs
  _one_error(_cli("-m", "mtlws_jax.eval.report", str(tmp_path / "nothing")), "no config.json")
  _one_error(_cli("-m", "mtlws_jax.eval.report", str(work / "config.json")), "not a folder")
  _one_error(_cli("-m", "mtlws_jax.eval.report", str(work), "--seeds=x"), "--seeds")
  _one_error(_cli("-m", "mtlws_jax.eval.report", str(work), "--baseline=zs_eq"),
             str(work / "config.json"), "--baseline: no row 'zs_eq' among the rows reported (zero_shot)")


# ------------------------------------------------------------------------- more entry points


def test_projection_pos_tagger_and_flag_conflicts(tmp_path):
  src = ROOT / "tests"  # any existing file works as a placeholder where the flags are refused first
  conll = _write(tmp_path / "en.conll", b"John B-PER\nlives O\n\n")
  tgt = _write(tmp_path / "tgt.txt", b"John vive\n")
  links = _write(tmp_path / "links.txt", b"0-0 1-1\n")
  base = ["-m", "mtlws_jax.projection", f"--src={conll}", f"--tgt-tokens={tgt}", f"--alignments={links}",
          f"--out={tmp_path}/out"]
  _one_error(_cli(*base, "--task=ner", "--pos-tagger=project"), "--pos-tagger is for --task=srl")
  _one_error(_cli(*base, "--task=ner", "--extra-src=x", "--extra-tgt=y"), "they do nothing with --alignments")
  _one_error(_cli(*base, "--task=ner", "--prefix-len=100000000000"), "--prefix-len must be in [0, 1000]")
  upb = _write(tmp_path / "de.conllu", "\n".join([
      "1\tManasse\tManasse\tPROPN\t_\t_\t2\tnsubj\t_\t_\tA0",
      "2\tlacht\tlachen\tVERB\t_\t_\t0\troot\tY\tlachen.01\t_", "", ""]).encode())
  srl = ["-m", "mtlws_jax.projection", "--task=srl", f"--src={upb}", f"--tgt-tokens={tgt}",
         f"--alignments={links}", f"--out={tmp_path}/out"]
  for spec, msg in (("nomodule:fn", "cannot import 'nomodule'"), ("foo", "expected 'project' or module:function"),
                    ("os:nonexistent", "has no 'nonexistent'"), ("os:sep", "is not a function"),
                    ("builtins:len", "must return one UPOS tag per token"),
                    ("builtins:list", "must return one UPOS tag per token")):
    _one_error(_cli(*srl, f"--pos-tagger={spec}"), msg)
    assert not (tmp_path / "out").exists()
  _one_error(_cli(*srl, "--strategy=word"), "SRL projects argument heads")
  del src


def test_aer_pairs_by_id_and_refuses_ambiguous_gold(tmp_path):
  gold = _write(tmp_path / "gold.txt", b"0\t0-0 1-1\n1\t0-1\n")
  pred_reversed = _write(tmp_path / "pred.txt", b"1\t0-1\n0\t0-0 1-1\n")
  p = _cli("-m", "mtlws_jax.projection.aer", f"--gold={gold}", f"--pred={pred_reversed}")
  assert p.returncode == 0 and json.loads(p.stdout)["aer"] == 0.0, p.stdout + p.stderr
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={gold}", f"--pred={pred_reversed}", "--one-indexed",
                  "--gold-format=wpt"), "--one-indexed is for pharaoh")
  wa = _write(tmp_path / "g.wa", b"1 1 1 S\n3 1 1 S\n")
  wpred = _write(tmp_path / "w.txt", b"0-0\n0-0\n")
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={wa}", f"--pred={wpred}"),
             f"{wa}:2", "jump from 1 to 3")
  bad_wa = _write(tmp_path / "bad.wa", b"1 1 1 S\n1 2 2 Q\n")
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={bad_wa}", f"--pred={wpred}"), f"{bad_wa}:2", "bad WPT line")
  for record, msg in ((b'{"src_words": ["a"], "tgt_words": ["b"], "alignment": [[0.7, 0]]}', "non-negative integers"),
                      (b'{"src_words": "a b", "tgt_words": ["b"], "alignment": []}', "list of words"),
                      (b'[1, 2]', "expected a JSON object"),
                      (b'{"src_words": ["a"], "tgt_words": ["b"]}', "missing key 'alignment'")):
    j = _write(tmp_path / "g.jsonl", record + b"\n")
    _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={j}", f"--pred={wpred}"), f"{j}:1", msg)
  _one_error(_cli("-m", "mtlws_jax.projection.aer", f"--gold={gold}", "--pred=x", "--bogus"), "unrecognized")


def test_translate_checks_its_arguments(tmp_path):
  src = _write(tmp_path / "src.txt", b"Hello world .\n")
  model = tmp_path / "model"
  model.mkdir()
  base = ["-m", "mtlws_jax.projection.translate", f"--src={src}"]
  before = src.read_bytes()
  _one_error(_cli(*base, f"--model={model}", f"--out={src}"), "--out is the input file")
  assert src.read_bytes() == before
  _one_error(_cli(*base, f"--model={model}", f"--out={tmp_path}/t.txt", "--batch-size=0"), "--batch-size")
  _one_error(_cli(*base, f"--model={model}", f"--out={tmp_path}/t.txt", "--num-beams=0"), "--num-beams")
  _one_error(_cli(*base, f"--model={model}", f"--out={tmp_path}/nodir/t.txt"), "does not exist")
  _one_error(_cli(*base, f"--model={model}", f"--out={tmp_path}/t.txt"), "no config.json")
  (model / "config.json").write_text("{}")
  _one_error(_cli(*base, f"--model={model}", f"--out={tmp_path}/t.txt", "--device=bogus"), "--device='bogus'")
  assert not (tmp_path / "t.txt").exists()


def test_offline_e5_never_wipes_a_foreign_folder(tmp_path):
  foreign = tmp_path / "mine"
  foreign.mkdir()
  (foreign / "junk").write_text("keep me")
  _one_error(_cli("-m", "mtlws_jax.models.offline_e5", f"--out={foreign}", "--force"), "not a previous conversion")
  assert (foreign / "junk").read_text() == "keep me"
  a_file = _write(tmp_path / "f", b"x")
  _one_error(_cli("-m", "mtlws_jax.models.offline_e5", f"--out={a_file}"), "is a file, not a folder")
  _one_error(_cli("-m", "mtlws_jax.models.offline_e5", f"--out={a_file}/sub"), f"{a_file} is a file")
  _one_error(_cli("-m", "mtlws_jax.models.offline_e5", f"--out={tmp_path}/o", f"--bin={tmp_path}"), "is a folder")


def test_stats_on_folders_and_stray_boms(tmp_path):
  _one_error(_cli("-m", "mtlws_jax.data.stats", "--task=ner", "--format=conll", f"--path={tmp_path}"),
             "is a folder")
  two_boms = _write(tmp_path / "b.conll", b"\xef\xbb\xbf\xef\xbb\xbfJohn B-PER\n\n")
  _one_error(_cli("-m", "mtlws_jax.data.stats", "--task=ner", "--format=conll", f"--path={two_boms}"),
             f"{two_boms}:1", "U+FEFF")
  _one_error(_cli("-m", "mtlws_jax.data.stats", "--task=xx", "--format=conll", f"--path={two_boms}"), "--task")


def test_results_with_wrong_values_are_named(assets, tmp_path):
  work = tmp_path / "w"
  args = ("--config.method=zero_shot", "--config.train.max_steps=8", "--config.selection.eval_after=8",
          "--config.selection.eval_every=8", "--config.checkpoint_every=8")
  assert _run_py(assets, work, *args).returncode == 0
  res = work / "runs" / "zero_shot" / "seed0" / "result.json"
  r = json.loads(res.read_text())
  r["english_dev"] = "high"
  res.write_text(json.dumps(r))
  _one_error(_cli("-m", "mtlws_jax.eval.report", str(work)), str(res), "english_dev is not a number")
