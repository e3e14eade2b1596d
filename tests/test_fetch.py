"""The data fetches itself: pinned, checked, atomic, resumable, offline-aware (issue 24).

A server on 127.0.0.1 serves small fixture trees (and, where ../shared/data exists, copies of the
real files): fresh fetch, a second run with no request, a corrupted file, 404, a refused
connection, offline, a cut transfer resumed with a Range request, and run.py's first use
(`tasks.file_plan` fetches exactly the files its config needs).
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import subprocess
import sys

import pytest

from _file_server import FileServer, mirror, refused_url
from mtlws_jax.data import corpora, fetch
from mtlws_jax.errors import InputError

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _fixture(tmp_path: pathlib.Path) -> tuple[list[fetch.File], pathlib.Path]:
  """Two sources, three files (one of 300 kB so a cut transfer leaves bytes to resume)."""
  upstream = tmp_path / "upstream"
  contents = {"toy/a/train.txt": b"Hello B-X\nworld O\n\n", "toy/a/LICENSE": b"MIT\n",
              "toy/b/big.txt": bytes(range(256)) * 1200}
  for rel, data in contents.items():
    (upstream / rel).parent.mkdir(parents=True, exist_ok=True)
    (upstream / rel).write_bytes(data)
  entry = lambda rel, remote: {"path": rel, "remote": remote, "size": len(contents[rel]),
                               "sha256": hashlib.sha256(contents[rel]).hexdigest()}
  manifest = {"sources": [
      {"name": "Toy A", "task": "ner", "repo": "org/a", "commit": "a" * 40, "terms": "terms of A",
       "files": [entry("toy/a/train.txt", "data/train.txt"), entry("toy/a/LICENSE", "LICENSE")]},
      {"name": "Toy B", "task": "absa", "repo": "org/b", "commit": "b" * 40, "terms": "terms of B",
       "files": [entry("toy/b/big.txt", "x/big file.txt")]}]}
  path = tmp_path / "sources.json"
  path.write_text(json.dumps(manifest))
  return fetch.read_manifest(path), upstream


@pytest.fixture
def toy(tmp_path, monkeypatch):
  monkeypatch.delenv("MTLWS_OFFLINE", raising=False)
  monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
  files, upstream = _fixture(tmp_path)
  return files, upstream, tmp_path / "data"


def _said():
  lines = []
  return lines, lines.append


def test_fresh_fetch_then_a_second_run_sends_no_request(toy, monkeypatch):
  files, upstream, root = toy
  with FileServer(mirror(files, upstream)) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    lines, say = _said()
    assert fetch.download(files, root, progress=False, say=say) == 3
    for f in files:
      assert (root / f.path).read_bytes() == (upstream / f.path).read_bytes()
    assert not list(root.rglob("*.part"))
    # the terms of each source once, then one summary line
    assert [l.split(":")[0] for l in lines[:2]] == ["Toy A", "Toy B"] and "terms of A" in lines[0]
    assert lines[2].startswith("fetched 3 files")
    assert "/org/b/" + "b" * 40 + "/x/big%20file.txt" in srv.gets()
    n = len(srv.requests)
    assert fetch.download(files, root, progress=False, say=say) == 0
    assert len(srv.requests) == n


def test_a_corrupted_file_is_refused_and_not_kept(toy, monkeypatch):
  files, upstream, root = toy
  bad = files[0]
  served = mirror(files, upstream)
  path = [p for p in served if p.endswith("/data/train.txt")][0]
  with FileServer(served, corrupt=[path]) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    with pytest.raises(InputError, match=r"sha256 [0-9a-f]{64} differs from the pinned") as e:
      fetch.download(files, root, progress=False, say=lambda s: None)
    assert str(e.value).startswith(srv.url + path)
  assert not (root / bad.path).exists()
  assert not list(root.rglob("*.part"))


def test_404_and_refused_connection_and_offline_say_one_line(toy, monkeypatch):
  files, upstream, root = toy
  with FileServer({}) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    with pytest.raises(InputError, match=r"HTTP 404 Not Found; the mirror .* does not serve this file"):
      fetch.download(files, root, progress=False, say=lambda s: None)
  monkeypatch.setenv("MTLWS_DATA_URL", refused_url())
  with pytest.raises(InputError, match=r"cannot download \(.*[Rr]efused.*\); check the network"):
    fetch.download(files, root, progress=False, say=lambda s: None)
  assert not list(root.rglob("*.txt"))
  with FileServer(mirror(files, upstream)) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    for var in ("MTLWS_OFFLINE", "HF_HUB_OFFLINE"):
      monkeypatch.setenv(var, "1")
      with pytest.raises(InputError, match=r"3 data files are not in .* downloads are off"):
        fetch.download(files, root, progress=False, say=lambda s: None)
      monkeypatch.delenv(var)
    assert srv.requests == []


@pytest.mark.parametrize("ranges", [True, False])
def test_a_cut_transfer_resumes(toy, monkeypatch, ranges):
  files, upstream, root = toy
  served = mirror(files, upstream)
  big = [p for p in served if p.endswith("big%20file.txt")][0]
  with FileServer(served, cut_once=[big], ranges=ranges) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    fetch.download(files, root, progress=False, say=lambda s: None)
    tries = [r for m, p, r in srv.requests if p == big]
  assert (root / files[2].path).read_bytes() == (upstream / files[2].path).read_bytes()
  half = files[2].size // 2
  assert tries == [None, f"bytes={half}-"]   # asked to resume; a server without ranges sends it all
  # with no retries left, the cut file stays as .part and the next run resumes it
  (root / files[2].path).unlink()
  with FileServer(served, cut_once=[big]) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    with pytest.raises(InputError, match=r"broke off after|got \d+ of"):
      fetch.download(files, root, progress=False, retries=0, say=lambda s: None)
    assert (root / (files[2].path + ".part")).stat().st_size == half
    assert not (root / files[2].path).exists()
    fetch.download(files, root, progress=False, retries=0, say=lambda s: None)
    assert [r for m, p, r in srv.requests if p == big] == [None, f"bytes={half}-"]
  assert (root / files[2].path).read_bytes() == (upstream / files[2].path).read_bytes()


def test_a_stale_part_longer_than_the_file_is_restarted(toy, monkeypatch):
  files, upstream, root = toy
  part = root / (files[0].path + ".part")
  part.parent.mkdir(parents=True)
  part.write_bytes(b"x" * 1000)
  with FileServer(mirror(files, upstream)) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    fetch.download(files, root, progress=False, say=lambda s: None)
  assert (root / files[0].path).read_bytes() == (upstream / files[0].path).read_bytes()


def test_the_manifest_names_every_file_of_the_data_folder_with_its_checksum(data_dir):
  files = fetch.read_manifest()
  listed = {f.path for f in files}
  on_disk = {p.relative_to(data_dir).as_posix() for p in data_dir.rglob("*") if p.is_file()}
  assert on_disk - listed == {"README.md"}       # the folder's own notes are not a download
  for f in files:
    data = (data_dir / f.path).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (f.size, f.sha256), f.path
  assert {f.source.task for f in files} == set(fetch.TASKS)
  assert all(len(f.source.commit) == 40 for f in files)


def _absa_config():
  from configs import common
  c = common.absa(common.base_config())
  c.task, c.target_langs = "absa", ("es",)
  return c


def test_first_use_fetches_exactly_what_the_config_needs(data_dir, tmp_path, monkeypatch):
  """run.py's path: tasks.file_plan with MTLWS_DATA_DIR empty fetches the plan's files, then reads them."""
  from mtlws_jax.data import tasks
  absa = [f for f in fetch.read_manifest() if f.source.task == "absa"]
  monkeypatch.setenv("MTLWS_DATA_DIR", str(tmp_path / "cache"))
  monkeypatch.delenv("MTLWS_OFFLINE", raising=False)
  monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
  with FileServer(mirror(absa, data_dir)) as srv:
    monkeypatch.setenv("MTLWS_DATA_URL", srv.url)
    plan = tasks.file_plan(_absa_config(), ["es"])
    got = sorted(p.rsplit("/", 1)[1] for p in srv.gets())
    assert got == ["gold-en-dev.txt", "gold-en-train.txt", "gold-es-dev.txt", "gold-es-test.txt",
                   "smt-es-train.txt"]
    tasks.check_files(plan)
    n = len(srv.requests)
    tasks.file_plan(_absa_config(), ["es"])
    assert len(srv.requests) == n
  # offline with a file missing: one line naming the switch
  (tmp_path / "cache" / "absa/XABSA/gold-es-test.txt").unlink()
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  with pytest.raises(InputError, match=r"1 data files are not in .*cache \(absa/XABSA/gold-es-test.txt"):
    tasks.file_plan(_absa_config(), ["es"])


def test_the_folder_beside_the_project_is_read_as_it_is(monkeypatch):
  monkeypatch.delenv("MTLWS_DATA_DIR", raising=False)
  assert not corpora.fetches_into(corpora.shared_dir())
  assert corpora.fetches_into(corpora.cache_dir())
  monkeypatch.setenv("XDG_CACHE_HOME", "/somewhere")
  assert corpora.cache_dir() == pathlib.Path("/somewhere/mtlws_jax/data")


def _cli(args, env):
  return subprocess.run([sys.executable, "-m", "mtlws_jax.data.fetch", *args], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def test_the_command_fetches_a_task_and_says_what_is_wrong(data_dir, tmp_path):
  absa = [f for f in fetch.read_manifest() if f.source.task == "absa"]
  env = {k: v for k, v in os.environ.items() if k not in ("MTLWS_OFFLINE", "HF_HUB_OFFLINE")}
  env["MTLWS_DATA_DIR"] = str(tmp_path / "d")
  with FileServer(mirror(absa, data_dir)) as srv:
    env["MTLWS_DATA_URL"] = srv.url
    r = _cli(["--task=absa", "--no-progress"], env)
    assert r.returncode == 0, r.stderr
    assert "Terms: Repository Apache-2.0" in r.stdout and f"fetched {len(absa)} files" in r.stdout
    for f in absa:
      assert (tmp_path / "d" / f.path).read_bytes() == (data_dir / f.path).read_bytes()
    r = _cli(["--task=absa"], env)
    assert r.returncode == 0 and f"absa: all {len(absa)} files are in" in r.stdout
    assert len(srv.requests) == len(absa)
  r = _cli(["--task=pos"], env)
  assert (r.returncode, r.stderr.strip()) == (
      1, "error: --task=pos: unknown task pos; expected all or a comma-separated list of ner, absa, srl, alignment")
  r = _cli(["--task=ner", "--offline"], env)
  assert r.returncode == 1 and r.stderr.startswith("error: ") and "--offline fetches nothing" in r.stderr
  assert len(r.stderr.strip().splitlines()) == 1
  env["MTLWS_DATA_URL"] = refused_url()
  r = _cli(["--task=alignment"], env)
  assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "cannot download" in r.stderr
