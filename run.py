"""Train and evaluate cross-lingual taggers: python run.py --config=configs/absa_xlmr.py --workdir=DIR.

Every config field can be overridden, e.g. --config.method=mtl_ws --config.seeds=0,1
--config.train.max_steps=500. Without --workdir the runs go to runs/<config name>. Restarting
the same command resumes where it stopped; finished runs are skipped.
"""

import pathlib
import sys

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file("config", None, "config file (configs/*.py)", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "output folder (default: runs/<config name>)")
flags.mark_flags_as_required(["config"])


def parse_flags(argv):
  """absl's parsing with one clear line for a bad flag, config file or config field."""
  from mtlws_jax.errors import config_error
  try:
    args = flags.FLAGS(argv)
    flags.FLAGS.config.get("task")  # config_flags defers a load failure to first use: fail here
    return args
  except Exception as e:  # noqa: BLE001 (flag and config-file errors of every kind end here)
    print(f"error: {config_error(e)}", file=sys.stderr)
    sys.exit(1)


def compilation_cache() -> None:
  """XLA's persistent compilation cache: a study's later runs (and processes) reuse the compiled
  steps of the first instead of compiling every batch shape again. $MTLWS_XLA_CACHE, else
  ~/.cache/mtlws_jax/xla; JAX's own JAX_COMPILATION_CACHE_DIR wins when set.
  MTLWS_XLA_CACHE=off: no persistent cache (a read-only or full home; or to measure without it:
  BUILD.md, "Host memory")."""
  import os
  import jax
  asked = os.environ.get("MTLWS_XLA_CACHE", "")
  if asked.strip().lower() == "off":
    return
  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", asked or os.path.expanduser("~/.cache/mtlws_jax/xla"))
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  if "JAX_COMPILATION_CACHE_MAX_SIZE" not in os.environ:  # a size limit: least recently used
    jax.config.update("jax_compilation_cache_max_size", 8 << 30)  # entries go; a file lock lets
    # two runs (one per core) share the cache


def main(argv):
  if len(argv) > 1:
    print(f"error: unexpected arguments: {' '.join(argv[1:])} (flags are --config=... --workdir=...)",
          file=sys.stderr)
    sys.exit(1)
  from mtlws_jax import experiment
  from mtlws_jax.errors import InputError, os_error
  if not flags.FLAGS["verbosity"].present:  # orbax logs every save at INFO: keep the console readable
    logging.set_verbosity(logging.WARNING)
  compilation_cache()
  config = flags.FLAGS.config
  workdir = _WORKDIR.value or str(pathlib.Path("runs") / pathlib.Path(flags.FLAGS["config"].config_filename).stem)
  try:
    experiment.run(config, workdir)
    from mtlws_jax import distributed
    if distributed.is_main_process() and (config.get("showcase") or config.get("translated_dev")):
      from mtlws_jax import plan, showcase   # using the finished runs: after training, not inside it
      showcase.ending(plan.normalize(config), workdir, sys.stdout)
  except (InputError, FloatingPointError) as e:  # bad input; NaN/inf loss (NonFiniteLossError)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)
  except OSError as e:  # a full disk, a file removed under us, permissions changed mid-run
    print(f"error: {os_error(e)}", file=sys.stderr)
    sys.exit(1)
  except KeyboardInterrupt:
    print("interrupted: run the same command again to resume", file=sys.stderr)
    sys.exit(130)


if __name__ == "__main__":
  app.run(main, flags_parser=parse_flags)
