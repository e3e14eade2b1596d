"""A seconds-long ABSA config for tests: a tiny random encoder, a handful of steps.

Tests set data_dir (tiny fixture files they write) and model.path (tiny.build_tiny_checkpoint).
"""

from configs import common


def get_config():
  c = common.absa(common.base_config())
  c.task = "absa"
  c.target_langs = ("es", "fr")
  c.seeds = (0,)
  c.model.name = "tiny"
  c.data.max_length = 32
  c.data.stride = 4
  c.data.pad_multiple = 32
  c.train.learning_rate = 1e-2     # learns the fixtures in 32 steps (English dev F1 > 0.4)
  c.train.batch_size = 4
  c.train.eval_batch_size = 8
  c.train.max_steps = 32
  c.selection.eval_every = 8
  c.selection.eval_after = 16
  c.selection.curve_every = 8
  c.warmup.epochs = 2
  c.warmup.steps = 2
  c.warmup.beta = 1e-2
  c.warmup.gamma = 0.5
  c.warmup.strategy = "loop"
  c.warmup.measure_loss = False
  c.log_every = 8
  c.checkpoint_every = 16
  c.progress = False
  c.tensorboard = False
  return c
