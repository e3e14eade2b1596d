"""Your own data: copy this file, point it at your files, and run the method comparison.

    bash examples/own_data/run.sh                  # the worked example (README, "Use your own data")
    python run.py --config=configs/own_data.py --workdir=runs/own_data

Files (CoNLL columns `token TAG`, tags IOB1, IOB2 or BIOES over any label set; the English
training set decides the labels), found as data_dir/gold with {lang} and {split} filled in:
  en.train.conll, en.dev.conll     English train and dev (dev selects the model);
  es.test.conll                    a gold test set per target language (optional: without it the
                                   language is trained for and nothing is scored);
  translated_root/en2es.train.conll  the English train translated and label-projected (made by
                                   examples/own_data/run.sh), needed by every method but ZERO-SHOT.
A language the shipped configs do not list: add it to data.languages and target_langs.
ABSA files (`token T-POS|T-NEG|T-NEU|O`): task="absa" and common.absa's patterns; SRL: task="srl".

The example is small (40 English sentences): e5-small's first 2 layers, 3 seeds of 60 steps.
For real data raise train.max_steps, selection.eval_every and use all 12 layers (num_layers=0).
"""

from configs import common


def get_config():
  c = common.laptop(common.ner(common.base_config()))
  c.task = "ner"
  c.data_dir = "examples/own_data"
  c.data.gold = "{lang}.{split}.conll"
  c.data.translated = "en2{lang}.train.conll"
  c.data.translated_root = "runs/own_data/translated"
  c.data.languages = ("en", "es")
  c.target_langs = ("es",)
  c.method = "zero_shot,mtl,mtl_ws"
  c.seeds = (0, 1, 2)
  c.selection.score_target_dev = False   # no target dev set: selection is on English dev
  c.train.learning_rate = 3e-4
  c.train.head_lr_scale = 10.0
  c.train.max_steps = 60
  c.selection.eval_every = 20
  c.selection.eval_after = 20
  c.log_every = 20
  c.checkpoint_every = 60
  c.progress = False
  c.tensorboard = False
  return c
