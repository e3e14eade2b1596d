"""The public datasets, fetched on first use: pinned commits, checked, atomic, resumable.

    python -m mtlws_jax.data.fetch [--task=absa,ner,srl,alignment|all] [--offline]

`sources.json` lists every file of the data folder (`ner/`, `absa/`, `srl/`, `alignment/`) with the
repository and commit it comes from, its path there, its size and its sha256. A file is downloaded
from `$MTLWS_DATA_URL` (default https://raw.githubusercontent.com; any mirror with the same
`{repo}/{commit}/{path}` layout) into the data folder of `corpora.data_root()` as `NAME.part`,
resumed with an HTTP Range request when a `.part` is left from a cut transfer, checked, and only
then renamed to its name: a file that exists was checked. `run.py` calls `provide` with the files
its config needs, so the first run fetches them; a folder the user already has (`../shared/data`
here) is read as it is and never written. The stdlib's urllib is enough (`pooch` has no resume,
`huggingface_hub` downloads from the hub only); `filelock` (a huggingface_hub dependency) keeps
two processes off one `.part`.
"""

from __future__ import annotations

import dataclasses
import functools
import http.client
import json
import os
import pathlib
import sys
import urllib.error
import urllib.parse
import urllib.request
from typing import Iterable, Sequence

from mtlws_jax.data import corpora, textfile
from mtlws_jax.errors import InputError

MANIFEST = pathlib.Path(__file__).with_name("sources.json")
DEFAULT_URL = "https://raw.githubusercontent.com"
TASKS = ("ner", "absa", "srl", "alignment")
CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True)
class Source:
  name: str
  task: str
  repo: str
  commit: str
  terms: str


@dataclasses.dataclass(frozen=True)
class File:
  path: str          # in the data folder
  remote: str        # in the repository
  sha256: str
  size: int
  source: Source

  def url(self, base: str) -> str:
    return f"{base.rstrip('/')}/{self.source.repo}/{self.source.commit}/{urllib.parse.quote(self.remote)}"


def read_manifest(path: pathlib.Path = MANIFEST) -> list[File]:
  """Every file the sources list, in order."""
  out = []
  for s in json.loads(path.read_text(encoding="utf-8"))["sources"]:
    src = Source(s["name"], s["task"], s["repo"], s["commit"], s["terms"])
    out += [File(f["path"], f["remote"], f["sha256"], int(f["size"]), src) for f in s["files"]]
  return out


@functools.cache
def _known() -> dict[str, File]:
  return {f.path: f for f in read_manifest()}


def offline() -> bool:
  """MTLWS_OFFLINE or HF_HUB_OFFLINE (the hub's switch, which also keeps the encoder offline)."""
  return any(os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
             for v in ("MTLWS_OFFLINE", "HF_HUB_OFFLINE"))


def base_url() -> str:
  return os.environ.get("MTLWS_DATA_URL") or DEFAULT_URL


def missing(files: Iterable[File], root: pathlib.Path) -> list[File]:
  return [f for f in files if not (root / f.path).is_file()]


def _open(url: str, start: int, timeout: float):
  req = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
  try:
    return urllib.request.urlopen(req, timeout=timeout)
  except urllib.error.HTTPError as e:
    if e.code == 416 and start:       # the .part is already whole (or longer): start again
      return None
    raise InputError(f"{url}: HTTP {e.code} {e.reason}; the mirror (MTLWS_DATA_URL={base_url()}) "
                     "does not serve this file at its pinned commit") from None
  except (urllib.error.URLError, OSError) as e:
    reason = getattr(e, "reason", e)
    raise InputError(f"{url}: cannot download ({reason}); check the network, or put the data folder "
                     "in place and point MTLWS_DATA_DIR at it") from None


class _Cut(InputError):
  """A transfer that ended early: the .part stays, the next try resumes it."""


def _download(f: File, root: pathlib.Path, base: str, bar, bar_base: int, timeout: float) -> None:
  """One file into root/f.path via root/f.path.part, resuming a cut transfer; checked, then renamed."""
  dest = root / f.path
  part = dest.with_name(dest.name + ".part")
  dest.parent.mkdir(parents=True, exist_ok=True)
  url = f.url(base)
  start = part.stat().st_size if part.exists() else 0
  if start > f.size:
    part.unlink()
    start = 0
  resp = _open(url, start, timeout)
  if resp is None:
    part.unlink()
    start, resp = 0, _open(url, 0, timeout)
  with resp:
    resumed = start and resp.status == 206 and resp.headers.get("Content-Range", "").startswith(f"bytes {start}-")
    if not resumed:
      start = 0                       # the server sent the whole file
    if bar is not None:            # the bar counts this file from its first byte on every try
      bar.n = bar_base + start
      bar.refresh()
    with open(part, "ab" if resumed else "wb") as out:
      while True:
        try:
          block = resp.read(CHUNK)
        except (http.client.HTTPException, ConnectionError, TimeoutError) as e:
          raise _Cut(f"{url}: the transfer broke off after {out.tell()} of {f.size} bytes ({e!r}); "
                     "run again to resume it") from None
        if not block:
          break
        try:
          out.write(block)
        except OSError as e:
          raise OSError(e.errno, f"{e.strerror} (writing {part})") from None
        if bar is not None:
          bar.update(len(block))
  got = part.stat().st_size
  if got < f.size:
    raise _Cut(f"{url}: got {got} of {f.size} bytes; run again to resume the transfer")
  digest = textfile.sha256(part)
  if digest != f.sha256:
    part.unlink()
    raise InputError(f"{url}: sha256 {digest} differs from the pinned {f.sha256}; the download was "
                     "not kept (the mirror serves another version of the file)")
  os.replace(part, dest)


def download(files: Sequence[File], root: pathlib.Path, *, progress: bool = True, timeout: float = 60.0,
             retries: int = 2, say=print) -> int:
  """Fetches the files of `files` that root lacks; returns how many it fetched."""
  todo = missing(files, root)
  if not todo:
    return 0
  if offline():
    raise InputError(f"{len(todo)} data files are not in {root} ({todo[0].path} ...) and downloads are "
                     "off (MTLWS_OFFLINE / HF_HUB_OFFLINE): unset it to fetch them, or set MTLWS_DATA_DIR "
                     "to a folder that holds the data (README.md, 'Datasets')")
  import filelock
  root.mkdir(parents=True, exist_ok=True)
  base = base_url()
  with filelock.FileLock(str(root / ".fetch.lock")):
    todo = missing(todo, root)        # another process may have fetched them meanwhile
    shown = set()
    for f in todo:
      if f.source not in shown:
        shown.add(f.source)
        say(f"{f.source.name}: {f.source.repo}@{f.source.commit[:12]}. Terms: {f.source.terms}")
    bar = None
    if progress:
      from tqdm import tqdm
      bar = tqdm(total=sum(f.size for f in todo), unit="B", unit_scale=True, desc=f"data -> {root}",
                 disable=None, leave=False)
    try:
      done = 0
      for f in todo:
        for attempt in range(retries + 1):
          try:
            _download(f, root, base, bar, done, timeout)
            break
          except _Cut:
            if attempt == retries:
              raise
        done += f.size
    finally:
      if bar is not None:
        bar.close()
  say(f"fetched {len(todo)} files ({sum(f.size for f in todo) / 1e6:.1f} MB) into {root}")
  return len(todo)


def of_tasks(tasks: Iterable[str]) -> list[File]:
  tasks = set(tasks)
  return [f for f in read_manifest() if f.source.task in tasks]


def provide(paths: Iterable[os.PathLike | str], root: pathlib.Path) -> None:
  """Fetches those of `paths` under `root` that the manifest lists and root lacks (run.py's first
  use). Only a fetch folder (MTLWS_DATA_DIR, or the cache when there is no ../shared/data) is
  written; other paths are left for the caller's missing-file check."""
  if not corpora.fetches_into(root):
    return
  known = _known()
  wanted = []
  for p in paths:
    try:
      rel = pathlib.Path(p).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
      continue
    if rel in known:
      wanted.append(known[rel])
  download(wanted, root, say=lambda s: print(s, file=sys.stderr))


def main(argv: Sequence[str] | None = None) -> int:
  import argparse
  p = argparse.ArgumentParser(prog="python -m mtlws_jax.data.fetch", description=__doc__.split("\n")[0])
  p.add_argument("--task", default="all", help="comma-separated: " + ", ".join(TASKS) + " (default all)")
  p.add_argument("--offline", action="store_true", help="fetch nothing; say what is missing")
  p.add_argument("--no-progress", action="store_true")
  args = p.parse_args(argv)
  tasks = TASKS if args.task == "all" else tuple(t.strip() for t in args.task.split(",") if t.strip())
  unknown = [t for t in tasks if t not in TASKS]
  if unknown or not tasks:
    raise InputError(f"--task={args.task}: unknown task {', '.join(unknown) or '(none)'}; expected "
                     f"all or a comma-separated list of {', '.join(TASKS)}")
  root = corpora.data_root()
  files = of_tasks(tasks)
  lacking = missing(files, root)
  if not lacking:
    print(f"{', '.join(tasks)}: all {len(files)} files are in {root}")
    return 0
  if args.offline:
    raise InputError(f"{len(lacking)} of {len(files)} files of {', '.join(tasks)} are not in {root} "
                     f"(first: {lacking[0].path}) and --offline fetches nothing")
  if not corpora.fetches_into(root):
    raise InputError(f"{root} holds a data folder that is read as it is, and it lacks {len(lacking)} "
                     f"files of {', '.join(tasks)} (first: {lacking[0].path}); set MTLWS_DATA_DIR to "
                     "a folder to fetch into")
  download(files, root, progress=not args.no_progress)
  return 0


if __name__ == "__main__":
  from mtlws_jax.errors import main_guard
  sys.exit(main_guard(main)())
