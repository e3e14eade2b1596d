"""A backbone downloaded from a (fake, local) Hugging Face hub: models/locate.py end to end.

tests/_fake_hub.py serves the hub's HTTP API on 127.0.0.1; every subprocess gets HF_ENDPOINT=that
server, a private HF_HOME, HOME and MTLWS_CACHE, and no HF_HUB_OFFLINE (conftest.py sets it for
the test process itself: nothing here reaches the real hub).
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys

import pytest

import _fake_hub
import _tiny_absa as T

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPO = "fake-org/tiny-bert"
BIG = "fake-org/big-weights"     # a 24 MB "safetensors" file: its transfer is cut once and resumed
WANTED = {"config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors"}
UNWANTED = {"pytorch_model.bin", "tf_model.h5", "onnx/model.onnx", "README.md", ".gitattributes"}
# Variables that would send a subprocess elsewhere than the fake hub and the private folders.
SCRUBBED = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_TOKEN",
            "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "XDG_CACHE_HOME", "MTLWS_CACHE", "HF_ENDPOINT")


@pytest.fixture(scope="module")
def repo_folder(tmp_path_factory) -> pathlib.Path:
  """The tiny checkpoint as a hub repo, with weight copies in other formats that must not be fetched."""
  folder = T.make_model(tmp_path_factory.mktemp("repo") / "tiny-bert")
  (folder / "pytorch_model.bin").write_bytes(b"\0" * (4 << 20))
  (folder / "tf_model.h5").write_bytes(b"\1" * (4 << 20))
  (folder / "onnx").mkdir()
  (folder / "onnx" / "model.onnx").write_bytes(b"\2" * 1000)
  (folder / "README.md").write_text("---\nlibrary_name: transformers\n---\n# tiny-bert\n")
  (folder / ".gitattributes").write_text("*.safetensors filter=lfs diff=lfs merge=lfs -text\n")
  return folder


@pytest.fixture(scope="module")
def big_weights() -> bytes:
  return hashlib.sha256(b"seed").digest() * ((24 << 20) // 32)  # 24 MiB, not all one byte


@pytest.fixture(scope="module")
def hub(repo_folder, big_weights):
  repos = {REPO: repo_folder, BIG: {"config.json": b'{"model_type": "bert"}', "model.safetensors": big_weights}}
  with _fake_hub.FakeHub(repos, cut_once=(f"{BIG}/model.safetensors",)) as h:
    yield h


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> pathlib.Path:
  return T.make_data(tmp_path_factory.mktemp("data"))


def hub_env(root: pathlib.Path, endpoint: str, **extra: str) -> dict[str, str]:
  """A subprocess environment with a private HF cache, HOME and MTLWS_CACHE under `root`."""
  for d in ("hf", "home", "cache"):
    (root / d).mkdir(parents=True, exist_ok=True)
  env = {k: v for k, v in os.environ.items() if k not in SCRUBBED}
  env.update(PYTHONPATH=str(ROOT), HF_ENDPOINT=endpoint, HF_HOME=str(root / "hf"), HOME=str(root / "home"),
             MTLWS_CACHE=str(root / "cache"), **extra)
  return env


def run_py(data: pathlib.Path, workdir: pathlib.Path, env, *flags: str, name: str = REPO):
  cmd = ["nice", "-n", "5", sys.executable, str(ROOT / "run.py"), "--config=configs/tiny.py",
         f"--config.data_dir={data}", f"--config.model.name={name}", "--config.model.path=",
         f"--workdir={workdir}", *flags]
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def locate_py(name: str, env):
  """locate.find(name) in a fresh process (huggingface_hub reads HF_ENDPOINT/HF_HOME at import)."""
  code = ("import sys\nfrom mtlws_jax.models import locate\nfrom mtlws_jax.errors import InputError\n"
          "try:\n  folder, how = locate.find(sys.argv[1])\nexcept InputError as e:\n"
          "  print('error:', e, file=sys.stderr)\n  sys.exit(1)\nprint(folder)\nprint(how)\n")
  return subprocess.run(["nice", "-n", "5", sys.executable, "-c", code, name], cwd=ROOT, env=env,
                        capture_output=True, text=True, timeout=300)


def one_error_line(got) -> str:
  """The single `error:` line of a failed run (exit 1, no traceback)."""
  assert got.returncode == 1, got.stderr[-3000:]
  assert "Traceback" not in got.stderr, got.stderr[-3000:]
  lines = [l for l in got.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, got.stderr[-3000:]
  return lines[0]


def snapshot(hf_home: pathlib.Path, repo_id: str) -> pathlib.Path:
  snaps = list((hf_home / "hub" / f"models--{repo_id.replace('/', '--')}" / "snapshots").iterdir())
  assert len(snaps) == 1, snaps
  return snaps[0]


# --- a real download, then the same run from the cache ------------------------------------------

@pytest.fixture(scope="module")
def downloaded(hub, data, tmp_path_factory):
  """One run.py that downloads REPO: (its result, the requests the hub saw, the private root)."""
  root = tmp_path_factory.mktemp("online")
  hub.clear()
  got = run_py(data, root / "w1", hub_env(root, hub.endpoint))
  return got, hub.requests, root


@pytest.mark.slow
def test_download_fetches_config_tokenizer_and_safetensors_only_and_trains(downloaded, hub):
  got, requests, root = downloaded
  assert got.returncode == 0, got.stderr[-4000:]
  assert "Traceback" not in got.stderr
  assert f"downloading {REPO} from {hub.endpoint}" in got.stdout
  assert "(downloaded from the Hugging Face hub)" in got.stdout
  assert "| Model | es | fr | Avg. |" in got.stdout and "| MTL-WS |" in got.stdout  # the results table
  sha = hub.repos[REPO].sha
  api = [r for r in requests if r.server == "hub" and r.path.startswith(f"/api/models/{REPO}")]
  assert [r.path for r in api] == [f"/api/models/{REPO}/revision/main", f"/api/models/{REPO}/tree/{sha}"]
  assert "recursive=true" in api[1].query
  fetched = [hub.file_of(r) for r in requests if r.method == "GET" and hub.file_of(r)]
  assert sorted(fetched) == sorted((REPO, f) for f in WANTED)          # each wanted file once
  asked = {hub.file_of(r)[1] for r in requests if hub.file_of(r)}
  assert asked == WANTED, asked                                          # not even a HEAD for the rest
  cdn = [r for r in requests if r.server == "cdn"]
  assert [hub.file_of(r) for r in cdn] == [(REPO, "model.safetensors")]  # LFS bytes came from the "CDN"
  assert not any("authorization" in r.headers for r in requests)         # no token anywhere
  folder = snapshot(root / "hf", REPO)
  assert folder.name == sha
  assert {p.name for p in folder.iterdir()} == WANTED
  for name in WANTED:
    assert (folder / name).read_bytes() == hub.repos[REPO].files[name].data
  assert not any((root / "cache").iterdir())                             # nothing copied to MTLWS_CACHE
  assert not (root / "home" / ".cache" / "mtlws_jax").exists()


@pytest.mark.slow
def test_second_run_uses_the_cache_and_makes_no_request(downloaded, hub, data):
  first, _, root = downloaded
  assert first.returncode == 0, "the download run failed (see the test above)"
  hub.clear()
  # the lookup is under test, not training: one short ZERO-SHOT run
  got = run_py(data, root / "w2", hub_env(root, hub.endpoint), "--config.method=zero_shot",
               "--config.train.max_steps=8", "--config.selection.eval_after=8")
  assert got.returncode == 0, got.stderr[-4000:]
  assert hub.requests == [], [(r.method, r.path) for r in hub.requests]
  assert "(Hugging Face cache)" in got.stdout and "downloading" not in got.stdout
  assert "| Model | es | fr | Avg. |" in got.stdout


def test_offline_after_a_download_finds_the_cached_snapshot(downloaded, hub):
  first, _, root = downloaded
  assert first.returncode == 0, "the download run failed (see the test above)"
  hub.clear()
  got = locate_py(REPO, hub_env(root, hub.endpoint, HF_HUB_OFFLINE="1"))
  assert got.returncode == 0, got.stderr[-3000:]
  folder, how = got.stdout.splitlines()[-2:]
  assert pathlib.Path(folder) == snapshot(root / "hf", REPO) and how == "Hugging Face cache"
  assert hub.requests == []


# --- no download: offline, forbidden, unknown repo, no server -----------------------------------

@pytest.mark.parametrize("offline", [True, False], ids=["HF_HUB_OFFLINE", "download=False"])
def test_no_download_allowed_and_not_cached_is_one_clear_line(offline, hub, data, tmp_path):
  env = hub_env(tmp_path, hub.endpoint, **({"HF_HUB_OFFLINE": "1"} if offline else {}))
  hub.clear()
  got = run_py(data, tmp_path / "w", env, *([] if offline else ["--config.model.download=False"]))
  line = one_error_line(got)
  assert f"model {REPO!r} not found" in line
  assert ("HF_HUB_OFFLINE=1" if offline else "model.download=False") in line
  assert "--config.model.path" in line
  assert hub.requests == []


def test_unknown_repo_is_one_clear_line(hub, data, tmp_path):
  hub.clear()
  got = run_py(data, tmp_path / "w", hub_env(tmp_path, hub.endpoint), name="fake-org/nope")
  line = one_error_line(got)
  assert f"model 'fake-org/nope' not found on {hub.endpoint}" in line, line
  assert [r.path for r in hub.requests if r.path.startswith("/api/models")] == \
      ["/api/models/fake-org/nope/revision/main"]


def test_refused_connection_is_one_clear_line_naming_the_endpoint(data, tmp_path):
  with _fake_hub.refused_endpoint() as endpoint:
    got = run_py(data, tmp_path / "w", hub_env(tmp_path, endpoint))
  line = one_error_line(got)
  assert f"cannot reach {endpoint}" in line and repr(REPO) in line, line


# --- an interrupted transfer resumes -------------------------------------------------------------

def test_a_transfer_cut_mid_way_resumes_with_a_range(hub, big_weights, tmp_path):
  hub.clear()
  got = locate_py(BIG, hub_env(tmp_path, hub.endpoint))
  assert got.returncode == 0, got.stderr[-3000:]
  assert got.stdout.splitlines()[-1] == "downloaded from the Hugging Face hub"
  assert "Trying to resume download" in got.stderr
  gets = [r for r in hub.requests if r.server == "cdn" and r.method == "GET"]
  assert len(gets) == 2, [(r.path, r.headers.get("range")) for r in gets]
  assert "range" not in gets[0].headers
  start = int(gets[1].headers["range"].removeprefix("bytes=").rstrip("-"))
  assert 0 < start <= len(big_weights) // 2  # what had arrived before the cut, not from scratch
  folder = pathlib.Path(got.stdout.splitlines()[-2])
  assert (folder / "model.safetensors").read_bytes() == big_weights


# --- the cache order, in process ------------------------------------------------------------------

def test_mtlws_cache_comes_before_home_cache_and_model_path_before_both(tmp_path, monkeypatch):
  from mtlws_jax.errors import InputError
  from mtlws_jax.models import locate
  name = "some-org/some-model"
  env_cache, home = tmp_path / "env-cache", tmp_path / "home"
  monkeypatch.setenv("MTLWS_CACHE", str(env_cache))
  monkeypatch.setenv("HOME", str(home))
  monkeypatch.setenv("HF_HUB_OFFLINE", "1")
  assert locate.cache_dirs() == [env_cache, home / ".cache" / "mtlws_jax"]
  for root in (env_cache, home / ".cache" / "mtlws_jax"):
    (root / name).mkdir(parents=True)
    (root / name / "config.json").write_text("{}")
  assert locate.find(name) == (str(env_cache / name), f"found in {env_cache}")
  (env_cache / name / "config.json").unlink()  # a folder without config.json is not a checkpoint
  assert locate.find(name) == (str(home / ".cache" / "mtlws_jax" / name), f"found in {home / '.cache' / 'mtlws_jax'}")
  other = tmp_path / "explicit"
  other.mkdir()
  assert locate.find(name, path=str(other)) == (str(other), "model.path")
  with pytest.raises(InputError, match="model.path is not a folder"):
    locate.find(name, path=str(tmp_path / "absent"))
  monkeypatch.delenv("MTLWS_CACHE")
  assert locate.cache_dirs() == [home / ".cache" / "mtlws_jax"]
  (home / ".cache" / "mtlws_jax" / name / "config.json").unlink()
  with pytest.raises(InputError, match=r"HF_HUB_OFFLINE=1 forbids downloading"):
    locate.find(name)
  monkeypatch.delenv("HF_HUB_OFFLINE")
  with pytest.raises(InputError, match=r"model.download=False forbids downloading"):
    locate.find(name, download=False)
