"""A static file server on 127.0.0.1 for the data-fetch tests (stdlib only, threaded).

    with FileServer({"/org/repo/abc123/data/x.txt": b"..."}) as srv:
      env["MTLWS_DATA_URL"] = srv.url
      srv.requests      # [(method, path, range header or None)]

GET answers 200 with the bytes, or 206 with Content-Range for `Range: bytes=N-` (unless
`ranges=False`); an unknown path is 404. `cut_once` paths send half their bytes (with the full
Content-Length) and close the connection the first time; `corrupt` paths serve their bytes with the
first byte changed. `mirror(files, folder)` maps manifest entries onto a folder holding their bytes.
"""

from __future__ import annotations

import http.server
import re
import socket
import threading
from typing import Iterable, Mapping


class FileServer:
  def __init__(self, files: Mapping[str, bytes], *, cut_once: Iterable[str] = (), corrupt: Iterable[str] = (),
               ranges: bool = True):
    self.files = dict(files)
    self.cut = set(cut_once)
    self.corrupt = set(corrupt)
    self.ranges = ranges
    self.requests: list[tuple[str, str, str | None]] = []
    server = self

    class Handler(http.server.BaseHTTPRequestHandler):
      protocol_version = "HTTP/1.1"

      def log_message(self, *args):
        pass

      def do_GET(self):
        rng = self.headers.get("Range")
        server.requests.append(("GET", self.path, rng))
        body = server.files.get(self.path)
        if body is None:
          self.send_response(404)
          self.send_header("Content-Length", "0")
          self.end_headers()
          return
        if self.path in server.corrupt:
          body = bytes([body[0] ^ 1]) + body[1:]
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and server.ranges:
          start = int(m.group(1))
          if start >= len(body):
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
          self.send_response(206)
          self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
          self.send_response(200)
        chunk = body[start:]
        self.send_header("Content-Length", str(len(chunk)))
        self.end_headers()
        if self.path in server.cut:
          server.cut.discard(self.path)
          self.wfile.write(chunk[:len(chunk) // 2])
          self.wfile.flush()
          self.close_connection = True
          self.connection.shutdown(socket.SHUT_RDWR)
          return
        self.wfile.write(chunk)

    self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"

  def __enter__(self) -> "FileServer":
    threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
    return self

  def __exit__(self, *exc) -> None:
    self._httpd.shutdown()
    self._httpd.server_close()

  def gets(self) -> list[str]:
    return [p for m, p, _ in self.requests if m == "GET"]


def mirror(files, folder) -> dict[str, bytes]:
  """URL path -> bytes for manifest `files` whose bytes lie at folder/f.path."""
  from urllib.parse import urlsplit
  return {urlsplit(f.url("http://x")).path: (folder / f.path).read_bytes() for f in files}


def refused_url() -> str:
  """An http://127.0.0.1:PORT nothing listens on."""
  s = socket.socket()
  s.bind(("127.0.0.1", 0))
  port = s.getsockname()[1]
  s.close()
  return f"http://127.0.0.1:{port}"
