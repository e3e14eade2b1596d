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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from mtlws_jax import experiment
  from mtlws_jax.errors import InputError
  if not flags.FLAGS["verbosity"].present:  # orbax logs every save at INFO: keep the console readable
    logging.set_verbosity(logging.WARNING)
  config = flags.FLAGS.config
  workdir = _WORKDIR.value or str(pathlib.Path("runs") / pathlib.Path(flags.FLAGS["config"].config_filename).stem)
  try:
    experiment.run(config, workdir)
  except (InputError, FloatingPointError) as e:  # bad input; NaN/inf loss (NonFiniteLossError)
    print(f"error: {e}", file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
  app.run(main)
