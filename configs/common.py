"""The settings every task config shares, and the paper's Table 6 / A.2 values by task and backbone.

Config files call `paper_config(task, backbone)` and change what differs. Every field can be
overridden from the command line (`--config.train.learning_rate=2e-5`, `--config.seeds=0,1`).
"""

from __future__ import annotations

import ml_collections

from mtlws_jax import distributed

METHODS = ("zero_shot", "target_only", "bilingual", "mtl", "mtl_ws")

BACKBONES = {
    # Hugging Face names of the paper's checkpoints (footnote 6): looked up in $MTLWS_CACHE/<name>,
    # ~/.cache/mtlws_jax/<name> and the HF cache, else downloaded (models/locate.py), or model.path.
    "mbert": "bert-base-multilingual-cased",
    "xlmr": "xlm-roberta-base",
}

# Appendix Table 6: warmup epochs Z and inner steps K by task and backbone; gamma, beta, lr and
# batch size by backbone.
_TABLE6 = {
    ("ner", "mbert"): dict(Z=100, K=5),
    ("srl", "mbert"): dict(Z=50, K=30),
    ("absa", "mbert"): dict(Z=100, K=20),
    ("ner", "xlmr"): dict(Z=50, K=20),
    ("srl", "xlmr"): dict(Z=100, K=30),
    ("absa", "xlmr"): dict(Z=100, K=20),
}
_BACKBONE = {
    "mbert": dict(lr=5e-5, batch_size=8, gamma=5e-5, beta=1e-3),
    "xlmr": dict(lr=1e-5, batch_size=4, gamma=5e-5, beta=1e-3),
}
# Appendix A.2: training length and model selection (evaluate English dev every N steps after M).
# SRL gives no "after M": selection starts at the first evaluation.
_SCHEDULE = {
    ("ner", "mbert"): dict(max_steps=3000, eval_after=2000, eval_every=200),
    ("ner", "xlmr"): dict(max_steps=6000, eval_after=4000, eval_every=400),
    ("srl", "mbert"): dict(max_steps=10000, eval_after=0, eval_every=1000),
    ("srl", "xlmr"): dict(max_steps=20000, eval_after=0, eval_every=2000),
    ("absa", "mbert"): dict(max_steps=1500, eval_after=1000, eval_every=100),
    ("absa", "xlmr"): dict(max_steps=1500, eval_after=1000, eval_every=100),
}


def base_config() -> ml_collections.ConfigDict:
  """Fields every config has; task configs fill in data paths, languages and the schedule."""
  c = ml_collections.ConfigDict()
  c.task = ""                      # ner | srl | absa
  c.method = "all"                 # "all" or a comma list of METHODS
  c.adapt = "zero_shot"            # the adaptation that follows MTL-WS warmup
  c.source_lang = "en"
  c.target_langs = ()              # column order of the results table
  c.seeds = (0, 1, 2, 3, 4)        # the paper averages 5 runs
  # Named variants: extra table rows, each a method with its own warmup/train settings, e.g.
  # c.variants.ws_adam = dict(method="mtl_ws", label="MTL-WS (adam 5e-5)",
  #                           warmup=dict(outer="adam", gamma=5e-5))
  # c.variants.zs_long = dict(method="zero_shot", equal_steps_to="ws_adam")  # + Z*K*|L| steps
  # (mtlws_jax/plan.py). config.method names them like methods; "all" runs them too.
  c.variants = ml_collections.ConfigDict()
  c.data_dir = ""                  # "" = MTLWS_DATA_DIR, else ../shared/data beside the project

  c.data = ml_collections.ConfigDict()
  # Path patterns under data_dir; {lang} is the language code, {split} train/dev/test and
  # {folder} data.folders[lang] (or the code when absent).
  c.data.gold = ""                 # gold sets of every language
  c.data.translated = ""           # translated, label-projected English train, per target language
  c.data.translated_root = ""      # where `translated` is looked up ("" = data_dir)
  c.data.source_train_split = "train"
  c.data.source_dev_split = "dev"  # "" = hold out data.dev_fraction of the source train file
  c.data.dev_fraction = 0.0
  c.data.folders = ml_collections.ConfigDict()
  c.data.languages = ()            # languages the data has (source and possible targets)
  c.data.max_length = 512          # subwords per window (the model's limit); longer sentences are windowed
  c.data.stride = 128              # context words shared by neighbouring windows
  c.data.max_train_sentences = 0   # 0 = all; > 0 keeps the first N of every training set
  c.data.max_eval_sentences = 0    # 0 = all; > 0 keeps the first N of every dev/test set
  c.data.max_source_dev_sentences = 0  # > 0: the first N of the English dev set (model
                                   # selection) only; 0 = as max_eval_sentences
  c.data.ill_formed = "repair"     # ill-formed IOB tags: read the conlleval way and count (or "error")
  c.data.pad_multiple = 32         # batches pad to a multiple of this: few shapes, few compiles
  c.data.batch_layout = "packed"   # packed: a batch's sentences end to end in rows of data.pack_length
                                   # tokens (attention within a sentence; no padding to compute) |
                                   # padded: one sentence per row, padded to the longest
  c.data.pack_length = 256         # tokens per packed row (a longer window gets a row of its own)
  c.data.train_order = "random"    # random batches (the standard recipe) | bucketed (by length:
                                   # less padding; see mtlws_jax/train/streams.py)

  c.model = ml_collections.ConfigDict()
  c.model.name = ""                # a Hugging Face hub id or e5-small (mtlws_jax/models/locate.py:
                                   # our cache, the HF cache, then a download)
  c.model.download = True          # False (or HF_HUB_OFFLINE=1): never download
  c.model.path = ""                # explicit local folder; overrides the cache lookup
  c.model.fallback = ""            # "tiny": if the model is not found, train on a tiny random
                                   # encoder (saying so) instead of stopping with an error
  c.model.dropout = 0.1
  c.model.dtype = "float32"        # compute dtype: float32 | bfloat16 (parameters, Adam state, LayerNorm
                                   # statistics, softmax and loss stay float32)
  c.model.attention = "auto"       # auto (fused jax.nn.dot_product_attention where no attention dropout
                                   # applies) | einsum | fused (also in training: no attention dropout)
  c.model.num_layers = 0           # > 0 keeps only the first N encoder layers (quick CPU runs)

  c.train = ml_collections.ConfigDict()
  # Keys as mtlws_jax.train.optim.optimizer_from_config reads them (Adam, as in the paper).
  c.train.learning_rate = 5e-5
  c.train.lr_schedule = "constant" # constant (paper) | linear (decay to 0 at max_steps)
  c.train.lr_warmup_steps = 0      # linear lr ramp from 0 (0 = none, as in the paper)
  c.train.grad_clip_norm = 0.0     # global-norm clipping (0 = off)
  c.train.weight_decay = 0.0
  c.train.weight_decay_mask = "all"  # all | no_bias_norm (biases and LayerNorm scales undecayed)
  c.train.head_lr_scale = 1.0      # the new classifier head steps at this multiple of the rate
  c.train.freeze = ""              # regex over parameter paths kept fixed (e.g. "word_embeddings")
  c.train.embedding_update = "dense"  # dense (every row, every step) | rows (only the word-embedding
                                   # rows a batch touches: lazy Adam; much cheaper with 250k rows)
  c.train.batch_size = 8
  c.train.eval_batch_size = 32
  c.train.max_steps = 1000
  c.train.models_at_once = 1       # > 1: runs of a seed with one train setting trained together
                                   # (vmapped, one compiled program; same results per model)

  c.selection = ml_collections.ConfigDict()
  c.selection.eval_every = 100     # evaluate English dev span F1 every N steps ...
  c.selection.eval_after = 0       # ... from step M on; the best of these is kept
  c.selection.curve_every = 0      # extra dev evaluations before M, only for the convergence plot (0 = none)
  c.selection.score_target_dev = True  # also score the selected model on each target dev set
                                   # (reported beside test, never used for selection)

  c.warmup = ml_collections.ConfigDict()
  c.warmup.epochs = 100            # Z
  c.warmup.steps = 20              # K inner SGD steps per target language
  c.warmup.gamma = 5e-5            # outer step size (Eq. 7)
  c.warmup.beta = 1e-3             # inner SGD rate (Eq. 8)
  c.warmup.strategy = "vmap"       # vmap | loop | shard (same parameters)
  c.warmup.outer = "sgd"           # optax optimizer on the pseudo-gradient; sgd(gamma) = Eq. 7
  c.warmup.outer_momentum = 0.9    # for outer = momentum | nesterov
  c.warmup.measure_loss = True     # report the translated-set loss before/after warmup too

  # Devices: the same numbers on one device or many (a sharded step gives a one-device step's
  # parameters up to float summation order; tests/test_experiment_parallel.py).
  c.parallel = ml_collections.ConfigDict()
  c.parallel.mode = "auto"         # auto: "data" when JAX sees several devices, else "none";
                                   # none | data (batch split, parameters replicated) |
                                   # fsdp (batch split, parameters and Adam moments split too)
  c.parallel.num_devices = 0       # devices in the data mesh (0 = all)
  c.distributed = distributed.default_config()  # several hosts: see mtlws_jax/distributed.py

  c.showcase = False               # after the table: the best model tags test sentences, is exported
  c.translated_dev = ""            # path pattern with {lang}: translated dev sets (English dev translated,
                                   # spans projected); after training every run is scored on them and
                                   # predict and the showcase choose a model per language (eval/select.py)
  c.log_every = 50                 # training loss to metrics.jsonl / TensorBoard
  c.checkpoint_every = 500         # besides every model-selection evaluation
  c.progress = True                # tqdm progress bar (step rate, ETA)
  c.tensorboard = True             # TensorBoard event files beside metrics.jsonl
  return c


def paper_config(task: str, backbone: str) -> ml_collections.ConfigDict:
  """A task x backbone config with Table 6 and A.2 settings."""
  c = base_config()
  c.task = task
  c.model.name = BACKBONES[backbone]
  t6, bb, sched = _TABLE6[(task, backbone)], _BACKBONE[backbone], _SCHEDULE[(task, backbone)]
  c.train.learning_rate = bb["lr"]
  c.train.batch_size = bb["batch_size"]
  c.train.max_steps = sched["max_steps"]
  c.selection.eval_every = sched["eval_every"]
  c.selection.eval_after = sched["eval_after"]
  c.checkpoint_every = sched["eval_every"]
  c.selection.curve_every = sched["eval_every"]  # dev F1 before M too, for the convergence plot
  c.warmup.epochs = t6["Z"]
  c.warmup.steps = t6["K"]
  c.warmup.gamma = bb["gamma"]
  c.warmup.beta = bb["beta"]
  return c


def absa(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """SemEval-2016 restaurants via XABSA (unified aspect + polarity tags, BIOES)."""
  c.data.gold = "absa/XABSA/gold-{lang}-{split}.txt"
  c.data.languages = ("en", "fr", "es", "tr", "nl", "ru")
  c.data.translated = "absa/XABSA/smt-{lang}-train.txt"
  # No official dev set; like the paper (20% of train as dev) we select on XABSA's gold-en-dev,
  # which is 400 of the 2000 official English training sentences (train+dev = official train).
  c.data.source_dev_split = "dev"
  # The paper's columns are fr es tr nl ru; the shared data has no translated Turkish set
  # (smt-tr), so tr is left out by default. Zero-shot can still be run on it:
  # --config.method=zero_shot --config.target_langs=fr,es,tr,nl,ru
  c.target_langs = ("fr", "es", "nl", "ru")
  c.data.max_length = 512          # no truncation (A.2); windows only beyond the model's 512
  c.data.stride = 128
  return c


def ner(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """CoNLL-2002/2003 (IOB2 files, trained and scored as BIOES spans)."""
  root = "ner/Easy-Label-Projection"
  c.data.gold = root + "/original/{lang}/{lang}.conll.{split}.tsv"
  c.data.languages = ("en", "es", "de", "nl")
  c.data.translated = root + "/automatic_projections/en2{lang}/DeepL.50000.awesome.train.tsv"
  c.target_langs = ("es", "de", "nl")
  c.data.max_length = 128          # A.2: sub-word sequences of at most 128; longer sentences are
  c.data.stride = 32               # split into overlapping windows, never cut
  return c


def srl(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """Universal Proposition Banks 1.0 (dependency SRL: role on the argument's head word)."""
  c.data.gold = "srl/UP-1.0/{folder}-up-{split}.conllu"
  c.data.languages = ("en", "fr", "es", "de", "it", "pt", "fi")
  c.data.folders = ml_collections.ConfigDict({
      "en": "UP_English-EWT/en_ewt", "fr": "UP_French/fr", "es": "UP_Spanish/es",
      "de": "UP_German/de", "it": "UP_Italian/it", "pt": "UP_Portuguese-Bosque/pt_bosque",
      "fi": "UP_Finnish/fi",
  })
  # The shared data has no train splits (too large): we train on the English EWT dev set and
  # select on a fixed 20% of its sentences held out from training (not on any test set). The
  # paper trains on EWT train and selects on EWT dev, so absolute numbers are not comparable.
  c.data.source_train_split = "dev"
  c.data.source_dev_split = ""
  c.data.dev_fraction = 0.2
  # No translated SRL sets ship with the data: produce them with the projection CLI
  # (`python -m mtlws_jax.projection`) and pass --config.data.translated_root=DIR.
  c.data.translated = "srl/en2{lang}.train.conllu"
  c.target_langs = ("fr", "es", "de", "it", "pt", "fi")
  c.data.max_length = 512
  c.data.stride = 128
  return c


def cpu_reproduction(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The README's one-hour CPU budget (configs/repro_*_cpu.py): e5-small cut to 4 layers.

  Word embeddings frozen (Adam on 250k x 384 rows would dominate the step), Adam at 2e-4 (5e-5
  leaves e5 under-trained), 250 steps of batch 8, selection every 50 steps, one checkpoint per
  model, an 8 x 10-step warmup with gamma=1, 2 seeds, target dev sets not scored.
  """
  c.seeds = (0, 1)
  c.model.name = "e5-small"
  c.model.num_layers = 4
  c.train.freeze = "word_embeddings"
  c.train.learning_rate = 2e-4
  c.train.batch_size = 8
  c.train.eval_batch_size = 64
  c.train.max_steps = 250
  c.selection.eval_every = 50
  c.selection.curve_every = 50
  c.selection.score_target_dev = False
  c.data.pad_multiple = 32
  c.warmup.epochs = 8
  c.warmup.steps = 10
  c.warmup.gamma = 1.0
  c.warmup.beta = 1e-3
  c.warmup.strategy = "loop"       # one language at a time: the least memory on a CPU
  c.log_every = 25
  c.checkpoint_every = 250         # one checkpoint per model, at its end (~0.5 GB each write)
  return c


# Warmup variants of the study (issue 11): the paper's literal update beside the readings that move
# the model, all on one grid with one pairing (mtlws_jax/plan.py). Z, K and beta are shared, so
# every variant costs the same Z x K x |L| inner SGD steps, and the "equal steps" rows train
# ZERO-SHOT and MTL that many steps longer.
STUDY_VARIANTS = {
    "ws_eq7": dict(method="mtl_ws", label="MTL-WS (Eq. 7, sgd 5e-5)", warmup=dict(outer="sgd", gamma=5e-5)),
    "ws_adam": dict(method="mtl_ws", label="MTL-WS (adam 5e-5)", warmup=dict(outer="adam", gamma=5e-5)),
    "ws_reptile": dict(method="mtl_ws", label="MTL-WS (Reptile, sgd 1.0)", warmup=dict(outer="sgd", gamma=1.0)),
    "ws_nesterov": dict(method="mtl_ws", label="MTL-WS (Nesterov 0.7/0.9)",
                        warmup=dict(outer="nesterov", gamma=0.7, outer_momentum=0.9)),
    "zs_eq": dict(method="zero_shot", label="ZERO-SHOT (equal steps)", equal_steps_to="ws_reptile"),
    "mtl_eq": dict(method="mtl", label="MTL (equal steps)", equal_steps_to="ws_reptile"),
}


def laptop(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The minutes-long recipe of the demo and the own-data example: e5-small's first 2 layers (the
  tiny random encoder when the `offline` extra is missing), word embeddings frozen, batch 8, a
  warmup of Z=4 x K=5 inner steps moving all the way to the languages' mean (gamma=1)."""
  c.model.name = "e5-small"
  c.model.fallback = "tiny"
  c.model.num_layers = 2
  c.train.freeze = "word_embeddings"
  c.train.batch_size = 8
  c.warmup.epochs = 4
  c.warmup.steps = 5
  c.warmup.gamma = 1.0
  c.warmup.beta = 1e-3
  c.warmup.strategy = "loop"
  c.warmup.measure_loss = False
  return c


def cpu_study(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The warmup study's CPU budget (configs/study_*_cpu.py): all 12 e5-small layers, 3 paired seeds.

  The standard fine-tuning recipe (AdamW, 10% linear warmup then linear decay, clipping at 1.0, no
  decay on biases and LayerNorm, random batches) with the classifier head at 10x the rate, word
  embeddings frozen (Adam over 250k x 384 rows would double the step on this CPU), batch 8,
  selection on the full English dev set; warmup Z=10 x K=5 steps (beta 1e-3, the paper's) per
  target language. Rows: ZERO-SHOT, MTL, the four warmups of STUDY_VARIANTS, and ZERO-SHOT / MTL
  trained Z x K x |L| steps longer.
  """
  c.seeds = (0, 1, 2)
  c.method = "zero_shot,mtl," + ",".join(STUDY_VARIANTS)
  c.variants = ml_collections.ConfigDict(STUDY_VARIANTS)
  c.model.name = "e5-small"
  c.model.num_layers = 0
  c.train.freeze = "word_embeddings"
  c.train.learning_rate = 1e-4
  c.train.head_lr_scale = 10.0
  c.train.lr_schedule = "linear"
  c.train.grad_clip_norm = 1.0
  c.train.weight_decay = 0.01
  c.train.weight_decay_mask = "no_bias_norm"
  c.train.batch_size = 8
  c.train.eval_batch_size = 64
  c.data.train_order = "random"
  c.data.pad_multiple = 32
  c.selection.score_target_dev = False
  c.selection.curve_every = 0
  c.warmup.epochs = 10
  c.warmup.steps = 5
  c.warmup.beta = 1e-3
  c.warmup.strategy = "loop"       # one language at a time: the least memory on a CPU
  c.warmup.measure_loss = True
  c.log_every = 25
  return c
