"""Host memory that each compiled batch shape of the train step keeps on the CPU: why a run's peak
resident memory grows with the number of distinct batch shapes (data.pad_multiple), not with the
live arrays.

Runs run.py twice, each in its own process, with the train step wrapped: for each of the first
--shapes new batch shapes it compiles the step ahead of time (lower().compile(), kept and used
for every later step of that shape, so jit compiles nothing else for it), runs it twice, and reads
glibc's heap bytes in use (mallinfo2, after malloc_trim: freed memory does not count) before the
compile, after it, after the first run and after the second; and the bytes of live JAX arrays. The
first process starts from an empty persistent compilation cache (every shape compiled), the
second from the cache the first filled (every shape loaded from it).

  python benchmarks/executable_memory.py --out=benchmarks/results/executable_memory_cpu.json
  python benchmarks/executable_memory.py --quick --out=/tmp/q.json   # 2 layers, 2 shapes

Linux with glibc only (mallinfo2, malloc_trim); needs the shared data and e5-small.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import benchmarks  # noqa: E402


class _MallInfo2(ctypes.Structure):
  _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                             "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_in_use_mb() -> float:
  """Bytes malloc has handed out and not taken back (main and thread arenas, plus mmapped
  chunks), after returning free pages to the system."""
  libc = ctypes.CDLL("libc.so.6")
  libc.mallinfo2.restype = _MallInfo2
  libc.malloc_trim(0)
  m = libc.mallinfo2()
  return (m.uordblks + m.hblkhd) / 1e6


def child(args: argparse.Namespace, run_flags: list[str]) -> None:
  """Runs run.py in this process with the train step measured; writes the shapes' rows to --rows."""
  import jax
  os.chdir(ROOT)
  from mtlws_jax.train import steps
  rows, compiled = [], {}

  def live_mb() -> float:
    return sum(a.nbytes for a in jax.live_arrays()) / 1e6

  def measured(step_fn):
    def call(params, opt_state, batch, rng):
      shape = tuple(batch["input_ids"].shape)
      if shape in compiled:
        return compiled[shape](params, opt_state, batch, rng)
      if len(compiled) >= args.shapes:
        return step_fn(params, opt_state, batch, rng)
      row = {"shape": list(shape), "heap_mb_before": heap_in_use_mb(), "live_arrays_mb_before": live_mb()}
      exe = step_fn.lower(params, opt_state, batch, rng).compile()
      compiled[shape] = exe
      row["heap_mb_compiled"] = heap_in_use_mb()
      row["temp_mb"] = exe.memory_analysis().temp_size_in_bytes / 1e6
      params, opt_state, m = exe(params, opt_state, batch, rng)
      jax.block_until_ready(m)
      row["heap_mb_ran"] = heap_in_use_mb()
      out = exe(params, opt_state, batch, rng)  # the same step again: nothing new may stay
      jax.block_until_ready(out[2])
      row["heap_mb_ran_again"], row["live_arrays_mb_after"] = heap_in_use_mb(), live_mb()
      rows.append(row)
      pathlib.Path(args.rows).write_text(json.dumps(rows))
      print(f"shape {shape}: heap {row['heap_mb_before']:.0f} -> {row['heap_mb_compiled']:.0f} MB compiled, "
            f"{row['heap_mb_ran_again']:.0f} MB after two runs", flush=True)
      return out
    return call

  make = steps.make_train_step
  steps.make_train_step = lambda *a, **k: measured(make(*a, **k))
  import runpy
  sys.argv = ["run.py", *run_flags]
  try:
    runpy.run_path(str(ROOT / "run.py"), run_name="__main__")
  except SystemExit as e:
    if e.code not in (0, None):
      raise


def summarize(shapes: list[dict]) -> dict:
  """Mean heap growth per shape: of the compile (or the load from the cache), of compile and one
  run (what jit keeps for a shape it has run), and of a second run of the same executable."""
  mean = lambda key, base: sum(r[key] - r[base] for r in shapes) / len(shapes)
  return {"shapes": shapes,
          "mean_heap_mb_of_compile": mean("heap_mb_compiled", "heap_mb_before"),
          "mean_heap_mb_after_one_run": mean("heap_mb_ran", "heap_mb_before"),
          "mean_heap_mb_of_second_run": mean("heap_mb_ran_again", "heap_mb_ran"),
          "mean_heap_mb_after_two_runs": mean("heap_mb_ran_again", "heap_mb_before"),
          "live_arrays_mb_change": sum(r["live_arrays_mb_after"] - r["live_arrays_mb_before"] for r in shapes)}


def main(argv: list[str] | None = None) -> int:
  p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--config", default="configs/study_absa_cpu.py")
  p.add_argument("--pad_multiple", type=int, default=8)
  p.add_argument("--shapes", type=int, default=4, help="new batch shapes measured per process")
  p.add_argument("--layers", type=int, default=0, help="cut e5-small to this many layers (0: all 12)")
  p.add_argument("--quick", action="store_true", help="2 layers, 2 shapes")
  p.add_argument("--out")
  p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
  p.add_argument("--rows", help=argparse.SUPPRESS)
  argv = sys.argv[1:] if argv is None else argv
  cut = argv.index("--") if "--" in argv else len(argv)
  args, rest = p.parse_args(argv[:cut]), argv[cut + 1:]   # after --: run.py's flags (the child's)
  if args.child:
    child(args, rest)
    return 0
  if args.quick:
    args.layers, args.shapes = args.layers or 2, min(args.shapes, 2)
  try:
    heap_in_use_mb()
  except (OSError, AttributeError) as e:
    print(f"error: needs glibc's mallinfo2 and malloc_trim: {e}", file=sys.stderr)
    return 1
  work = pathlib.Path(tempfile.mkdtemp(prefix="mtlws_exe_mem_"))
  flags = [f"--config={args.config}", "--config.method=zero_shot", "--config.seeds=0", "--config.progress=False",
           f"--config.data.pad_multiple={args.pad_multiple}", "--config.train.max_steps=40",
           "--config.selection.eval_every=40", "--config.selection.eval_after=40", "--config.checkpoint_every=40"]
  if args.layers:
    flags.append(f"--config.model.num_layers={args.layers}")
  result = {"benchmark": "executable_memory", "config": args.config, "pad_multiple": args.pad_multiple,
            "layers": args.layers or 12, "runs": {}}
  try:
    for cache in ("compiled", "loaded"):   # the second process finds what the first cached
      rows = work / f"{cache}.json"
      env = dict(os.environ, MTLWS_XLA_CACHE=str(work / "xla"))
      cmd = [sys.executable, __file__, "--child", f"--shapes={args.shapes}", f"--rows={rows}", "--",
             *flags, f"--workdir={work / cache}"]
      got = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
      if got.returncode != 0 or not rows.exists():
        print(f"error: the {cache} run failed (exit {got.returncode}): {got.stderr.strip()[-2000:]}", file=sys.stderr)
        return 1
      result["runs"][cache] = summarize(json.loads(rows.read_text()))
  finally:
    shutil.rmtree(work, ignore_errors=True)
  benchmarks.emit(result, args.out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
