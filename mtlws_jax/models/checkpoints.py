"""Hugging Face checkpoints in and out.

In: `load_pretrained` takes a local folder or a hub id (resolved through the local Hugging Face
cache; nothing is downloaded when HF_HUB_OFFLINE=1), reads config.json, safetensors (or a
`pytorch_model.bin`, through torch) and the tokenizer, and maps every weight onto our nnx
modules. Heads a tagger does not use (MLM / LM heads, the pooler, QA heads) are ignored and
logged; anything else that does not fit is an InputError listing every missing, unexpected and
mis-shaped weight.

Out: `export_hf` writes a transformers token-classification folder (safetensors, config.json
with id2label, tokenizer) that PyTorch's `AutoModelForTokenClassification` loads as is. A
fine-tuned run's own parameters live in its run folder (runfolder.RunCheckpoints, orbax).
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
from typing import Any, Mapping, Sequence

from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from mtlws_jax.errors import InputError
from mtlws_jax.models.encoder import EncoderConfig
from mtlws_jax.models.tagger import Params, Tagger, init_head_params, merge_tagger, tagger_params

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_FILE = "pytorch_model.bin"
# Files worth fetching from the hub for a tagger (no TF/Flax/ONNX duplicates of the weights).
HUB_PATTERNS = ["*.json", "*.safetensors", TORCH_FILE, "*.txt", "*.model"]

# Prefixes under which task models (ForMaskedLM, ForTokenClassification, ...) keep the encoder.
BASE_PREFIXES = ("bert.", "roberta.", "")
# Top-level heads a tagger never uses: MLM / LM heads, QA heads; the pooler (also under a prefix).
IGNORED_HEADS = ("cls.", "lm_head.", "qa_outputs.", "pooler.")
# Non-persistent buffers that older checkpoints saved.
IGNORED_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")
ARCHITECTURES = {"bert": "BertForTokenClassification", "xlm-roberta": "XLMRobertaForTokenClassification",
                 "roberta": "RobertaForTokenClassification"}
BASE_ARCHITECTURES = {"bert": "BertModel", "xlm-roberta": "XLMRobertaModel", "roberta": "RobertaModel"}
BASE_NAMES = {"bert": "bert", "xlm-roberta": "roberta", "roberta": "roberta"}

_LINEARS = (("attention.self.query", "query"), ("attention.self.key", "key"),
            ("attention.self.value", "value"), ("attention.output.dense", "attention_output"),
            ("intermediate.dense", "intermediate"), ("output.dense", "output"))
_NORMS = (("attention.output.LayerNorm", "attention_norm"), ("output.LayerNorm", "output_norm"))


def encoder_weight_table(config: EncoderConfig) -> list[tuple[str, tuple[str, ...], bool]]:
  """(HF name without prefix, path in our encoder params, transpose?) for every encoder weight.

  nn.Linear stores [out, in] and nnx.Linear [in, out], hence the transposes; embeddings agree.
  """
  table = []
  for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
    table.append((f"embeddings.{name}.weight", ("embeddings", name, "embedding"), False))
  table.append(("embeddings.LayerNorm.weight", ("embeddings", "layer_norm", "scale"), False))
  table.append(("embeddings.LayerNorm.bias", ("embeddings", "layer_norm", "bias"), False))
  for i in range(config.num_hidden_layers):
    hf, ours = f"encoder.layer.{i}.", ("layers", str(i))
    for h, o in _LINEARS:
      table.append((f"{hf}{h}.weight", ours + (o, "kernel"), True))
      table.append((f"{hf}{h}.bias", ours + (o, "bias"), False))
    for h, o in _NORMS:
      table.append((f"{hf}{h}.weight", ours + (o, "scale"), False))
      table.append((f"{hf}{h}.bias", ours + (o, "bias"), False))
  return table


def _flatten(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
  out = {}
  for k, v in tree.items():
    if isinstance(v, Mapping):
      out.update(_flatten(v, prefix + (k,)))
    else:
      out[prefix + (k,)] = v
  return out


def _unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict[str, Any]:
  out: dict[str, Any] = {}
  for path, v in flat.items():
    d = out
    for k in path[:-1]:
      d = d.setdefault(k, {})
    d[path[-1]] = v
  return out


def _listing(names: Sequence[str], limit: int = 25) -> str:
  shown = "\n    ".join(names[:limit])
  more = f"\n    ... and {len(names) - limit} more" if len(names) > limit else ""
  return f"\n    {shown}{more}"


# ---------------------------------------------------------------------------------------------
# Reading a folder.


def resolve_checkpoint(name_or_path: str | os.PathLike, *, cache_dir: str | os.PathLike | None = None,
                       revision: str | None = None, local_files_only: bool | None = None) -> pathlib.Path:
  """A local folder as is, or a hub id resolved to its snapshot folder in the HF cache."""
  path = pathlib.Path(name_or_path).expanduser()
  if path.is_dir():
    return path
  if path.exists():
    raise InputError("expected a checkpoint folder (config.json, weights, tokenizer) or a hub id, "
                     "got a file", path)
  name = os.fspath(name_or_path)
  import huggingface_hub
  from huggingface_hub import constants as hf_constants  # not an attribute until imported
  from huggingface_hub import errors as hf_errors
  from huggingface_hub.utils import validate_repo_id  # the attribute path fails: utils loads lazily
  try:
    validate_repo_id(name)
  except hf_errors.HFValidationError:
    raise InputError("no such checkpoint folder (and not a valid Hugging Face hub id)", name) from None
  if local_files_only is None:
    local_files_only = (hf_constants.HF_HUB_OFFLINE
                        or os.environ.get("HF_HUB_OFFLINE", "").upper() in ("1", "ON", "YES", "TRUE"))
  cache = os.fspath(cache_dir) if cache_dir is not None else hf_constants.HF_HUB_CACHE
  try:
    folder = huggingface_hub.snapshot_download(
        repo_id=name, revision=revision, cache_dir=cache_dir, allow_patterns=HUB_PATTERNS,
        local_files_only=local_files_only)
  except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled, FileNotFoundError):
    if not local_files_only:
      raise InputError(f"hub model {name!r} could not be downloaded and is not in the local cache "
                       f"({cache})") from None
    raise InputError(
        f"{name!r} is neither a local folder nor in the local Hugging Face cache ({cache}), and "
        f"offline mode (HF_HUB_OFFLINE=1) forbids downloading it; download it on a machine with "
        f"hub access (`hf download {name}`) or pass the path of a checkpoint folder") from None
  except Exception as e:  # network, authentication, unknown repo: say which and stop
    raise InputError(f"could not fetch {name!r} from the Hugging Face hub: {type(e).__name__}: {e}") from None
  return pathlib.Path(folder)


def read_config(folder: pathlib.Path) -> dict[str, Any]:
  path = folder / CONFIG_FILE
  if not path.is_file():
    raise InputError(f"no {CONFIG_FILE} in the checkpoint folder", folder)
  try:
    config = json.loads(path.read_text(encoding="utf-8"))
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise InputError(f"not valid JSON: {e}", path) from None
  if not isinstance(config, dict):
    raise InputError("expected a JSON object", path)
  return config


def _read_safetensors(path: pathlib.Path) -> dict[str, np.ndarray]:
  from safetensors import safe_open
  try:
    with safe_open(os.fspath(path), framework="numpy") as f:
      return {k: f.get_tensor(k) for k in f.keys()}
  except Exception as e:  # SafetensorError for truncated / foreign files, OSError, ...
    raise InputError(f"not a readable safetensors file ({type(e).__name__}: {e})", path) from None


def _read_torch(path: pathlib.Path) -> dict[str, np.ndarray]:
  try:
    import torch
  except ImportError:
    raise InputError(
        f"this checkpoint only has {TORCH_FILE}, and reading it needs PyTorch, which is not "
        f"installed: `pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu`, "
        f"or convert the folder to safetensors where PyTorch is available", path) from None
  try:
    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
  except Exception as e:  # truncated zip, foreign pickle, unsafe globals, ...
    raise InputError(f"not a readable PyTorch state dict ({type(e).__name__}: {e})", path) from None
  if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
    raise InputError(f"expected a dict of tensors, found {type(state).__name__}", path)
  out = {}
  for k, v in state.items():
    v = v.detach().cpu()
    out[k] = (v.float() if v.is_floating_point() else v).numpy()
  return out


def read_weights(folder: pathlib.Path) -> tuple[dict[str, np.ndarray], pathlib.Path]:
  """All tensors of the folder by HF name, and the file they came from (for messages)."""
  single, index, torch_file = folder / SAFETENSORS_FILE, folder / SAFETENSORS_INDEX, folder / TORCH_FILE
  if single.is_file():
    return _read_safetensors(single), single
  if index.is_file():
    try:
      weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
      raise InputError(f"not a safetensors index ({type(e).__name__}: {e})", index) from None
    tensors = {}
    for shard in sorted(set(weight_map.values())):
      if not (folder / shard).is_file():
        raise InputError(f"shard {shard} listed in the index is missing", index)
      tensors.update(_read_safetensors(folder / shard))
    return tensors, index
  if torch_file.is_file():
    return _read_torch(torch_file), torch_file
  present = sorted(p.name for p in folder.iterdir())
  raise InputError(f"no {SAFETENSORS_FILE}, {SAFETENSORS_INDEX} or {TORCH_FILE} in the checkpoint "
                   f"folder (it has: {', '.join(present) or 'nothing'})", folder)


def load_tokenizer(folder: pathlib.Path):
  import transformers
  try:
    return transformers.AutoTokenizer.from_pretrained(os.fspath(folder))
  except Exception as e:  # missing files, unknown tokenizer class, broken JSON
    raise InputError(f"cannot load a tokenizer from the checkpoint folder ({type(e).__name__}: {e})",
                     folder) from None


def _normalize_name(name: str) -> str:
  # TF-era BERT checkpoints call LayerNorm parameters gamma/beta (transformers renames them too).
  return name.replace("LayerNorm.gamma", "LayerNorm.weight").replace("LayerNorm.beta", "LayerNorm.bias")


def _base_prefix(names) -> str:
  for prefix in BASE_PREFIXES:
    if f"{prefix}embeddings.word_embeddings.weight" in names:
      return prefix
  return ""


def map_weights(tensors: Mapping[str, np.ndarray], params: Params, config: EncoderConfig, *,
                take_classifier: bool, path: str | os.PathLike | None = None) -> tuple[Params, list[str]]:
  """Tagger params with every encoder weight (and the classifier if asked) from `tensors`.

  Returns (params, ignored names). Raises InputError listing all missing, unexpected and
  mis-shaped weights at once, so one run shows everything that is wrong with a checkpoint.
  """
  tensors = {_normalize_name(k): v for k, v in tensors.items()}
  prefix = _base_prefix(tensors)
  flat = _flatten(params)
  used, missing, mismatched = set(), [], []
  wanted = [(prefix + hf, ("encoder",) + ours, t) for hf, ours, t in encoder_weight_table(config)]
  if take_classifier:
    wanted += [("classifier.weight", ("classifier", "kernel"), True),
               ("classifier.bias", ("classifier", "bias"), False)]
  for name, ours, transpose in wanted:
    if name not in tensors:
      missing.append(name)
      continue
    used.add(name)
    value = np.asarray(tensors[name])
    target = flat[ours]
    expected = tuple(reversed(target.shape)) if transpose else tuple(target.shape)
    if value.shape != expected:
      mismatched.append(f"{name}: checkpoint {tuple(value.shape)}, model {expected}")
      continue
    flat[ours] = jnp.asarray(value.T if transpose else value, dtype=target.dtype)

  def ignorable(name: str) -> bool:
    rel = name[len(prefix):] if name.startswith(prefix) else name
    return (name.startswith(IGNORED_HEADS) or rel.startswith("pooler.") or rel in IGNORED_BUFFERS
            or (not take_classifier and name.startswith("classifier.")))

  rest = [n for n in tensors if n not in used]
  ignored = sorted(n for n in rest if ignorable(n))
  unexpected = sorted(n for n in rest if not ignorable(n))
  if missing or unexpected or mismatched:
    problems = []
    if missing:
      problems.append(f"missing {len(missing)} weight(s):" + _listing(missing))
    if unexpected:
      problems.append(f"unexpected {len(unexpected)} weight(s):" + _listing(unexpected))
    if mismatched:
      problems.append(f"{len(mismatched)} shape mismatch(es) with config.json:" + _listing(mismatched))
    raise InputError(
        f"weights do not fit a {config.model_type} encoder with {config.num_hidden_layers} layers, "
        f"hidden {config.hidden_size}, vocabulary {config.vocab_size} (weight prefix "
        f"{prefix or '(none)'!r}): " + "\n  ".join(problems), path)
  return _unflatten(flat), ignored


def load_pretrained(name_or_path: str | os.PathLike, *, num_tags: int | None = None, num_pos: int = 0,
                    use_predicate: bool = False, dropout: float = 0.1, dtype=jnp.float32,
                    param_dtype=jnp.float32, seed: int = 0, cache_dir: str | os.PathLike | None = None,
                    revision: str | None = None, local_files_only: bool | None = None,
                    attention: str = "auto"):
  """(Tagger, tokenizer) from a HF checkpoint folder or hub id.

  num_tags None: the checkpoint must be a token classifier and its head is loaded too (e.g. a
  folder written by `export_hf`); otherwise a new head for `num_tags` tags is initialized from
  `seed` (as are the predicate / POS embeddings, which no HF checkpoint has).
  """
  folder = resolve_checkpoint(name_or_path, cache_dir=cache_dir, revision=revision,
                              local_files_only=local_files_only)
  hf_config = read_config(folder)
  config = EncoderConfig.from_hf_config(hf_config, folder / CONFIG_FILE)
  tensors, weights_path = read_weights(folder)
  tokenizer = load_tokenizer(folder)
  check_vocabulary(tokenizer, config, folder)
  model, _ = tagger_from_state_dict(tensors, config, num_tags=num_tags, num_pos=num_pos,
                                    use_predicate=use_predicate, dropout=dropout, dtype=dtype,
                                    param_dtype=param_dtype, seed=seed, path=weights_path, attention=attention)
  return model, tokenizer


def tagger_from_state_dict(tensors: Mapping[str, np.ndarray], config: EncoderConfig, *,
                           num_tags: int | None = None, num_pos: int = 0, use_predicate: bool = False,
                           dropout: float = 0.1, dtype=jnp.float32, param_dtype=jnp.float32, seed: int = 0,
                           path: str | os.PathLike | None = None, attention: str = "auto") -> tuple[Tagger, list[str]]:
  """(Tagger, ignored weight names) from HF-named tensors; see `load_pretrained` for num_tags."""
  take_classifier = num_tags is None
  if take_classifier:
    head = tensors.get("classifier.weight")
    if head is None:
      raise InputError("this checkpoint has no token-classification head (classifier.weight): "
                       "pass num_tags to put a new one on the encoder", path)
    num_tags = int(head.shape[0])
  # Abstract build: the encoder's values all come from the file, so none are drawn at random.
  abstract = nnx.eval_shape(lambda: Tagger(
      config, num_tags, num_pos=num_pos, use_predicate=use_predicate, dropout=dropout, dtype=dtype,
      param_dtype=param_dtype, rngs=nnx.Rngs(seed), attention=attention))
  params = tagger_params(abstract)
  params.update(init_head_params(config, num_tags, num_pos=num_pos, use_predicate=use_predicate,
                                 param_dtype=param_dtype, seed=seed))
  params, ignored = map_weights(tensors, params, config, take_classifier=take_classifier, path=path)
  if ignored:
    log.info("%s: ignored %d weight(s) a tagger does not use: %s", path, len(ignored), ", ".join(ignored))
  return merge_tagger(nnx.graphdef(abstract), params), ignored


def check_vocabulary(tokenizer, config: EncoderConfig, where: str | os.PathLike) -> None:
  """Every id the tokenizer can produce must have an embedding row (extra rows are fine)."""
  size = len(tokenizer)
  if size > config.vocab_size:
    raise InputError(f"the tokenizer has {size} tokens but the word embedding has only "
                     f"{config.vocab_size} rows (config.json vocab_size): ids >= "
                     f"{config.vocab_size} would have no embedding", where)
  if config.position_offset and tokenizer.pad_token_id not in (None, config.pad_token_id):
    raise InputError(f"the tokenizer pads with id {tokenizer.pad_token_id} but config.json has "
                     f"pad_token_id {config.pad_token_id}: XLM-R position ids would be wrong", where)


# ---------------------------------------------------------------------------------------------
# Writing Hugging Face folders.


def encoder_to_hf(encoder_params: Params, config: EncoderConfig, prefix: str = "") -> dict[str, np.ndarray]:
  """Our encoder params as a HF state dict (float32, [out, in] linears)."""
  flat = _flatten(encoder_params)
  out = {}
  for hf, ours, transpose in encoder_weight_table(config):
    value = np.asarray(jax.device_get(flat[ours]), dtype=np.float32)
    out[prefix + hf] = np.ascontiguousarray(value.T if transpose else value)
  return out


def _id_to_tag_list(id_to_tag: Sequence[str] | Mapping[int, str], num_tags: int) -> list[str]:
  if isinstance(id_to_tag, Mapping):
    if sorted(int(k) for k in id_to_tag) != list(range(len(id_to_tag))):
      raise ValueError(f"tag ids must be 0..n-1, got {sorted(id_to_tag)}")
    tags = [id_to_tag[i] if i in id_to_tag else id_to_tag[str(i)] for i in range(len(id_to_tag))]
  else:
    tags = list(id_to_tag)
  if len(tags) != num_tags:
    raise ValueError(f"the model has {num_tags} tags but the tag map has {len(tags)}")
  if len(set(tags)) != len(tags):
    raise ValueError(f"duplicate tags in the tag map: {tags}")
  return [str(t) for t in tags]


def write_hf_folder(folder: str | os.PathLike, tensors: Mapping[str, np.ndarray],
                    hf_config: Mapping[str, Any], tokenizer) -> pathlib.Path:
  """config.json + model.safetensors + tokenizer files, as `from_pretrained` expects them."""
  from safetensors.numpy import save_file
  folder = pathlib.Path(folder)
  folder.mkdir(parents=True, exist_ok=True)
  save_file(dict(tensors), os.fspath(folder / SAFETENSORS_FILE), metadata={"format": "pt"})
  (folder / CONFIG_FILE).write_text(json.dumps(dict(hf_config), indent=2, ensure_ascii=False) + "\n",
                                    encoding="utf-8")
  tokenizer.save_pretrained(os.fspath(folder))
  return folder


def export_hf(model: Tagger, tokenizer, id_to_tag: Sequence[str] | Mapping[int, str],
              folder: str | os.PathLike) -> pathlib.Path:
  """A transformers token-classification checkpoint of `model` (for AutoModelForTokenClassification)."""
  if model.use_predicate or model.num_pos:
    raise ValueError("a tagger with predicate / POS input embeddings has no Hugging Face "
                     "token-classification equivalent; use it from its workdir (python -m mtlws_jax.predict)")
  config = model.config
  tags = _id_to_tag_list(id_to_tag, model.num_tags)
  params = tagger_params(model)
  tensors = encoder_to_hf(params["encoder"], config, prefix=BASE_NAMES[config.model_type] + ".")
  tensors["classifier.weight"] = np.ascontiguousarray(
      np.asarray(params["classifier"]["kernel"], dtype=np.float32).T)
  tensors["classifier.bias"] = np.asarray(params["classifier"]["bias"], dtype=np.float32)
  hf_config = config.to_hf_config()
  hf_config.update(architectures=[ARCHITECTURES[config.model_type]], classifier_dropout=model.dropout_rate,
                   id2label={str(i): t for i, t in enumerate(tags)},
                   label2id={t: i for i, t in enumerate(tags)}, dtype="float32")
  return write_hf_folder(folder, tensors, hf_config, tokenizer)
