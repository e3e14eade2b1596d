"""A fake Hugging Face hub on 127.0.0.1 for download tests (stdlib only, threaded).

    with FakeHub({"fake-org/tiny-bert": folder}) as hub:
      env = dict(os.environ, HF_ENDPOINT=hub.endpoint, HF_HOME=...)   # the caller passes env on
      ...
      hub.requests        # every request seen: Request(server, method, path, query, headers)
      hub.fetched()       # repo files whose bytes were sent (GET, not HEAD)

`refused_endpoint()` gives an http://127.0.0.1:PORT that refuses connections (for "no network").

Nothing global is set or changed: point a subprocess at `hub.endpoint` through HF_ENDPOINT
(huggingface_hub reads it once, at import, into constants.ENDPOINT).

What huggingface_hub 2.4.0's `snapshot_download` asks for, and what is answered here
(_snapshot_download.py, hf_api.py, file_download.py, utils/_http.py):
  * GET /api/models/{repo}/revision/{rev} (repo_info; /api/models/{repo} without a revision):
    model info JSON; `sha` (the commit) is required, `siblings` lists the files.
  * GET /api/models/{repo}/tree/{rev}[/{path}]?recursive=..&expand=.. (list_repo_tree): a JSON
    list of {"type": "file", "oid", "size", "path"[, "lfs": {"oid", "size", "pointerSize"}]} and
    {"type": "directory", "oid", "path"}; one page (no `Link: <...>; rel="next"` header).
  * HEAD then GET /{repo}/resolve/{rev}/{file} (hf_hub_download: get_hf_file_metadata, http_get),
    rev = a branch name or the commit sha:
      - a regular (git) file: 200 with X-Repo-Commit, ETag "<git blob sha1>", Content-Length and
        the bytes;
      - an LFS file (*.safetensors, *.bin, *.h5, ... as the hub's default .gitattributes): 302 to
        a second "CDN" server (another port, so another origin: the client does not follow the
        redirect for the metadata, exactly as with the real CDN) with X-Repo-Commit,
        X-Linked-Etag "<sha256>", X-Linked-Size and Location; the CDN answers GET/HEAD with the
        bytes. No X-Xet-* headers and no xetHash in the tree: hf_xet is not used, plain HTTP is.
    Both servers honour `Range: bytes=N-` (206 + Content-Range), which http_get sends to resume a
    transfer cut mid-way (it retries on httpx RemoteProtocolError); `cut_once=("org/repo/file",)` makes
    the first GET of that file send half its bytes and close the connection. (http_get writes what
    it received in DOWNLOAD_CHUNK_SIZE = 10 MB chunks: only a file over 20 MB, cut at half, resumes
    with a Range; a smaller one is fetched again from its start.)
  * GET /api/agent-harnesses (utils/_detect_agent.py, fetched once a day with the first request
    headers and cached in $HF_HOME/.agent_harnesses.json): an empty registry.
  * Any other method (POST, PUT, ...): 405; recorded like every request (a download must not write).
  * Errors, with the headers hf_raise_for_status maps to exceptions: an unknown repo is 404 with
    X-Error-Code: RepoNotFound (RepositoryNotFoundError); an unknown revision 404 RevisionNotFound
    (RevisionNotFoundError); a missing file 404 EntryNotFound + X-Repo-Commit
    (RemoteEntryNotFoundError). Every error also has an X-Error-Message and a JSON {"error": ...}.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import http.server
import json
import os
import pathlib
import socket
import threading
from typing import Mapping
from urllib.parse import parse_qs, quote, unquote, urlsplit

# Stored through git-lfs on the hub (its default .gitattributes): redirected to the CDN.
LFS_SUFFIXES = (".safetensors", ".bin", ".h5", ".msgpack", ".onnx", ".ot", ".pt", ".pth", ".ckpt",
                ".model", ".pb", ".tflite", ".gguf", ".zip", ".tar.gz", ".npz", ".pkl")
LAST_MODIFIED = "2024-01-01T00:00:00.000Z"


@dataclasses.dataclass(frozen=True)
class Request:
  server: str          # "hub" or "cdn"
  method: str          # "GET", "HEAD", ...
  path: str            # unquoted, without the query string
  query: str           # the raw query string ("" if none)
  headers: Mapping[str, str]  # names in lower case


@dataclasses.dataclass
class RepoFile:
  path: str
  data: bytes
  lfs: bool

  @functools.cached_property
  def git_oid(self) -> str:
    """The git blob sha1 of what git stores: the bytes, or the LFS pointer for an LFS file."""
    body = self.pointer if self.lfs else self.data
    return hashlib.sha1(b"blob %d\0" % len(body) + body).hexdigest()

  @functools.cached_property
  def sha256(self) -> str:
    return hashlib.sha256(self.data).hexdigest()

  @functools.cached_property
  def pointer(self) -> bytes:
    return (f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\n"
            f"size {len(self.data)}\n").encode()


@dataclasses.dataclass
class Repo:
  repo_id: str
  files: dict[str, RepoFile]
  sha: str


def make_repo(repo_id: str, source: os.PathLike | str | Mapping[str, bytes]) -> Repo:
  """A repo from a folder (every file under it, recursively) or from {path: bytes}."""
  if isinstance(source, Mapping):
    items = {p: bytes(d) for p, d in source.items()}
  else:
    root = pathlib.Path(source)
    items = {f.relative_to(root).as_posix(): f.read_bytes() for f in sorted(root.rglob("*")) if f.is_file()}
  files = {p: RepoFile(p, d, p.endswith(LFS_SUFFIXES)) for p, d in sorted(items.items())}
  sha = hashlib.sha1(json.dumps([[p, f.git_oid] for p, f in files.items()]).encode()).hexdigest()
  return Repo(repo_id, files, sha)


class _Server(http.server.ThreadingHTTPServer):
  daemon_threads = True
  allow_reuse_address = True

  def __init__(self, hub: "FakeHub", name: str):
    self.hub, self.name = hub, name
    super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"  # keep-alive, as httpx expects; every answer has a Content-Length
  timeout = 60                   # an idle keep-alive connection does not hold a thread for ever
  server: _Server

  def log_message(self, format, *args):  # noqa: A002 (quiet: the hub keeps its own log)
    pass

  def do_GET(self):
    self._dispatch()

  def do_HEAD(self):
    self._dispatch()

  def _refuse(self):  # recorded too: a download must not write to the hub
    self._record()
    length = int(self.headers.get("Content-Length") or 0)
    if length:
      self.rfile.read(length)
    self._error(405, None, "Method not allowed")

  do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse

  def _record(self) -> tuple[str, str]:
    split = urlsplit(self.path)
    path = unquote(split.path)
    self.server.hub._record(Request(self.server.name, self.command, path, split.query,
                                    {k.lower(): v for k, v in self.headers.items()}))
    return path, split.query

  def _dispatch(self):
    path, query = self._record()
    try:
      if self.server.name == "cdn":
        self._cdn(path)
      elif path.startswith("/api/"):
        self._api(path, parse_qs(query))
      else:
        self._resolve(path)
    except (BrokenPipeError, ConnectionResetError):
      self.close_connection = True

  # --- answers -------------------------------------------------------------------------------

  def _send(self, status: int, body: bytes = b"", headers: Mapping[str, str] | None = None,
            content_type: str = "application/json") -> None:
    self.send_response(status)
    self.send_header("Content-Type", content_type)
    self.send_header("Content-Length", str(len(body)))
    for k, v in (headers or {}).items():
      self.send_header(k, v)
    self.end_headers()
    if self.command != "HEAD" and body:
      self.wfile.write(body)

  def _json(self, obj, headers=None) -> None:
    self._send(200, json.dumps(obj).encode(), headers)

  def _error(self, status: int, code: str | None, message: str, headers=None) -> None:
    h = dict(headers or {})
    if code:
      h["X-Error-Code"] = code
    h["X-Error-Message"] = message
    self._send(status, json.dumps({"error": message}).encode(), h)

  def _repo_not_found(self) -> None:
    self._error(404, "RepoNotFound", "Repository not found")

  def _find_repo(self, rest: str) -> tuple[Repo, str] | None:
    """(repo, what follows its id) for '<repo_id>' or '<repo_id>/...'; None if no repo matches."""
    for repo_id, repo in self.server.hub.repos.items():
      if rest == repo_id or rest.startswith(repo_id + "/"):
        return repo, rest[len(repo_id):].lstrip("/")
    return None

  def _revision_ok(self, repo: Repo, rev: str) -> bool:
    return rev in ("main", repo.sha)

  def _api(self, path: str, query: dict) -> None:
    if path == "/api/agent-harnesses":  # best-effort telemetry registry (utils/_detect_agent.py)
      return self._json({"standardEnvVars": [], "harnesses": {}})
    kind, _, rest = path[len("/api/"):].partition("/")
    if kind != "models":  # datasets, spaces: this hub only has models
      return self._repo_not_found()
    found = self._find_repo(rest)
    if found is None:
      return self._repo_not_found()
    repo, tail = found
    if tail == "" or tail.startswith("revision/"):
      rev = tail[len("revision/"):] if tail else "main"
      if not self._revision_ok(repo, rev):
        return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
      return self._json(self._model_info(repo))
    if tail.startswith("tree/"):
      rev, _, sub = tail[len("tree/"):].partition("/")
      if not self._revision_ok(repo, rev):
        return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
      recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
      sub = sub.strip("/")
      if sub and not any(p.startswith(sub + "/") for p in repo.files):
        return self._error(404, "EntryNotFound", f"{sub} does not exist on \"{rev}\"", {"X-Repo-Commit": repo.sha})
      return self._json(self._tree(repo, sub, recursive))
    self._error(404, None, "Not found")

  def _model_info(self, repo: Repo) -> dict:
    return {
        "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24], "id": repo.repo_id,
        "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
        "sha": repo.sha, "lastModified": LAST_MODIFIED, "createdAt": LAST_MODIFIED, "private": False,
        "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": ["transformers"],
        "library_name": "transformers",
        "siblings": [{"rfilename": p} for p in repo.files],
    }

  def _tree(self, repo: Repo, sub: str, recursive: bool) -> list[dict]:
    prefix = sub + "/" if sub else ""
    entries, folders = [], {}
    for p, f in repo.files.items():
      if not p.startswith(prefix):
        continue
      rel = p[len(prefix):]
      if "/" in rel:  # folders on the way (all of them if recursive, else the first only)
        parts = rel.split("/")[:-1]
        for i in range(1, len(parts) + 1 if recursive else 2):
          folder = prefix + "/".join(parts[:i])
          folders.setdefault(folder, hashlib.sha1(folder.encode()).hexdigest())
        if not recursive:
          continue
      entry = {"type": "file", "oid": f.git_oid, "size": len(f.data), "path": p}
      if f.lfs:  # the hub gives the real size, and the LFS pointer's
        entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": len(f.pointer)}
      entries.append(entry)
    return [{"type": "directory", "oid": oid, "path": p} for p, oid in sorted(folders.items())] + entries

  def _resolve(self, path: str) -> None:
    # /{repo_id}/resolve/{revision}/{filename}
    found = self._find_repo(path.lstrip("/"))
    if found is None:
      return self._repo_not_found()
    repo, tail = found
    if not tail.startswith("resolve/"):
      return self._error(404, None, "Not found")
    rev, _, filename = tail[len("resolve/"):].partition("/")
    if not self._revision_ok(repo, rev):
      return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
    commit = {"X-Repo-Commit": repo.sha}
    f = repo.files.get(filename)
    if f is None:
      return self._error(404, "EntryNotFound", f"Entry not found: {filename}", commit)
    if f.lfs:
      location = f"{self.server.hub.cdn_endpoint}/lfs/{quote(repo.repo_id)}/{f.sha256}"
      return self._send(302, b"", {**commit, "Location": location, "X-Linked-Etag": f'"{f.sha256}"',
                                   "X-Linked-Size": str(len(f.data)), "ETag": f'"{f.git_oid}"'},
                        content_type="text/plain; charset=utf-8")
    self._bytes(repo, f, {**commit, "ETag": f'"{f.git_oid}"'})

  def _cdn(self, path: str) -> None:
    # /lfs/{repo_id}/{sha256}
    parts = path.strip("/").split("/")
    repo = self.server.hub.repos.get("/".join(parts[1:-1])) if len(parts) >= 3 and parts[0] == "lfs" else None
    f = next((f for f in repo.files.values() if f.lfs and f.sha256 == parts[-1]), None) if repo else None
    if f is None:
      return self._error(404, None, "Not found")
    self._bytes(repo, f, {"ETag": f'"{f.sha256}"'})

  def _bytes(self, repo: Repo, f: RepoFile, headers: dict) -> None:
    """The file's bytes (or a Range of them), maybe cut once mid-way (see FakeHub.cut_once)."""
    data, status = f.data, 200
    headers = {**headers, "Accept-Ranges": "bytes", "Cache-Control": "public, max-age=31536000"}
    rng = self.headers.get("Range")
    if rng:
      start = _range_start(rng, len(data))
      if start is None:
        return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
      headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
      data, status = data[start:], 206
    cut = self.command == "GET" and self.server.hub._take_cut(repo.repo_id, f.path)
    if not cut:
      return self._send(status, data, headers, content_type="application/octet-stream")
    self.send_response(status)
    self.send_header("Content-Type", "application/octet-stream")
    self.send_header("Content-Length", str(len(data)))
    for k, v in headers.items():
      self.send_header(k, v)
    self.end_headers()
    self.wfile.write(data[: len(data) // 2])
    self.wfile.flush()
    self.close_connection = True
    with contextlib.suppress(OSError):
      self.connection.shutdown(socket.SHUT_RDWR)


def _range_start(header: str, size: int) -> int | None:
  """N of 'bytes=N-' or 'bytes=N-M' (the end is ignored: the rest of the file is sent)."""
  unit, _, spec = header.partition("=")
  first = spec.split(",")[0].strip()
  if unit.strip() != "bytes" or "-" not in first or not first.split("-")[0].isdigit():
    return None
  start = int(first.split("-")[0])
  return start if start < size else None


class FakeHub:
  """Serves `repos` ({repo_id: folder or {path: bytes}}) as the Hugging Face hub on 127.0.0.1."""

  def __init__(self, repos: Mapping[str, os.PathLike | str | Mapping[str, bytes]], *,
               cut_once: tuple[str, ...] = ()):
    self.repos = {rid: make_repo(rid, src) for rid, src in repos.items()}
    self._cuts = set(cut_once)  # "repo_id/file path": the first GET of each sends half and hangs up
    self._lock = threading.Lock()
    self._log: list[Request] = []
    self._servers: list[_Server] = []
    self._threads: list[threading.Thread] = []

  # --- lifecycle ---------------------------------------------------------------------------

  def start(self) -> "FakeHub":
    for name in ("hub", "cdn"):
      srv = _Server(self, name)
      t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                           name=f"fake-hub-{name}", daemon=True)
      t.start()
      self._servers.append(srv)
      self._threads.append(t)
    return self

  def stop(self) -> None:
    for srv in self._servers:
      srv.shutdown()
      srv.server_close()
    for t in self._threads:
      t.join(timeout=5)
    self._servers, self._threads = [], []

  def __enter__(self) -> "FakeHub":
    return self.start()

  def __exit__(self, *exc) -> None:
    self.stop()

  @property
  def endpoint(self) -> str:
    """The hub's URL, for HF_ENDPOINT."""
    return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

  @property
  def cdn_endpoint(self) -> str:
    return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

  # --- the request log ---------------------------------------------------------------------

  def _record(self, r: Request) -> None:
    with self._lock:
      self._log.append(r)

  def _take_cut(self, repo_id: str, path: str) -> bool:
    with self._lock:
      key = f"{repo_id}/{path}"
      if key in self._cuts:
        self._cuts.discard(key)
        return True
      return False

  @property
  def requests(self) -> list[Request]:
    with self._lock:
      return list(self._log)

  def clear(self) -> None:
    with self._lock:
      self._log.clear()

  def file_of(self, r: Request) -> tuple[str, str] | None:
    """(repo_id, file path) a /resolve or CDN request is for; None for API calls."""
    if r.server == "cdn":
      for repo in self.repos.values():
        for f in repo.files.values():
          if f.lfs and r.path.endswith("/" + f.sha256):
            return repo.repo_id, f.path
      return None
    for repo_id, repo in self.repos.items():
      head = f"/{repo_id}/resolve/"
      if r.path.startswith(head):
        return repo_id, r.path[len(head):].partition("/")[2]
    return None

  def fetched(self, method: str = "GET") -> list[str]:
    """Repo file paths requested with `method` (GET: bytes sent; HEAD: metadata asked), in order."""
    return [f[1] for r in self.requests if r.method == method and (f := self.file_of(r)) is not None]

  def api_calls(self) -> list[str]:
    """Paths of the hub's /api/ requests (repo info, tree), the telemetry registry left out."""
    return [r.path for r in self.requests
            if r.server == "hub" and r.path.startswith("/api/") and r.path != "/api/agent-harnesses"]


@contextlib.contextmanager
def refused_endpoint():
  """An http://127.0.0.1:PORT where a connection is refused (the port is held, bound, not listening)."""
  s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
  try:
    s.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{s.getsockname()[1]}"
  finally:
    s.close()
