"""Makes the eflomal binary repeatable: it has no seed option, so we give it one.

eflomal (2.0.0, `src/eflomal.c`) seeds its random generator by `fread`-ing `/dev/urandom`
(`random_system_state`), once per direction, and hands split states to its samplers inside an
OpenMP `critical` section, so the sampler that gets which state depends on thread timing.
Two things together make a run repeat exactly:

1. a tiny `LD_PRELOAD` library (C source below, built once with the system C compiler, which
   installing eflomal already needs) that answers `fopen("/dev/urandom")` with bytes derived
   from `MTLWS_EFLOMAL_SEED` (splitmix64) and passes every other path to the real `fopen`;
2. `OMP_NUM_THREADS=2,1`: forward and reverse still run in parallel (each from its own state),
   but each direction's samplers split their states in a fixed order.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
import subprocess
import tempfile
import threading

_SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef FILE *(*fopen_fn)(const char *, const char *);

static FILE *seeded(const char *path) {
  const char *seed = getenv("MTLWS_EFLOMAL_SEED");
  if (seed == NULL || path == NULL || strcmp(path, "/dev/urandom") != 0) return NULL;
  uint64_t x = strtoull(seed, NULL, 10);
  unsigned char *buf = malloc(256); /* freed never: two tiny reads per run */
  for (int i = 0; i < 256; i += 8) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    memcpy(buf + i, &z, 8);
  }
  return fmemopen(buf, 256, "rb");
}

FILE *fopen(const char *path, const char *mode) {
  FILE *f = seeded(path);
  if (f != NULL) return f;
  static fopen_fn real = NULL;
  if (real == NULL) real = (fopen_fn)dlsym(RTLD_NEXT, "fopen");
  return real(path, mode);
}

FILE *fopen64(const char *path, const char *mode) {
  FILE *f = seeded(path);
  if (f != NULL) return f;
  static fopen_fn real = NULL;
  if (real == NULL) real = (fopen_fn)dlsym(RTLD_NEXT, "fopen64");
  return real(path, mode);
}
"""

def seed_problem(seed: int) -> str:
  """The one rule for an eflomal seed (align and projection CLIs): -1 (unseeded) or [0, 2^63);
  "" when it is fine. eflomal reads the seed from 8 random bytes: 2^63 and above would wrap."""
  if not -1 <= seed < 2 ** 63:
    return f"--seed must be -1 (unseeded) or in [0, 2^63), got {seed}"
  return ""


_LOCK = threading.Lock()


def _cache_dir() -> pathlib.Path:
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return pathlib.Path(base) / "mtlws_jax"


def shim_path() -> pathlib.Path:
  """Path of the compiled seed library, building it on first use."""
  digest = hashlib.sha256(_SHIM_C.encode()).hexdigest()[:12]
  out = _cache_dir() / f"eflomal_seed_{digest}.so"
  with _LOCK:
    if out.exists():
      return out
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if cc is None:
      raise RuntimeError("a seeded eflomal run needs a C compiler (cc/gcc) to build its seed shim; "
                         "install one or pass seed=None for an unseeded run")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
      src = pathlib.Path(tmp) / "shim.c"
      src.write_text(_SHIM_C)
      tmp_out = pathlib.Path(tmp) / "shim.so"
      subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp_out), str(src), "-ldl"],
                     check=True, capture_output=True)
      shutil.move(str(tmp_out), str(out))
  return out


def seeded_env(seed: int | None) -> dict[str, str]:
  """Environment variables that make one eflomal run use `seed` (empty for seed=None)."""
  if seed is None:
    return {}
  if seed < 0:
    raise ValueError(f"seed must be >= 0, got {seed}")
  preload = os.environ.get("LD_PRELOAD", "")
  return {
      "LD_PRELOAD": f"{shim_path()}{':' + preload if preload else ''}",
      "MTLWS_EFLOMAL_SEED": str(seed),
      "OMP_NUM_THREADS": "2,1",
  }
