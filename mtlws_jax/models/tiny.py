"""Tiny random BERT / XLM-R checkpoint folders, built without torch or the hub.

Tests and the demo's fallback need a checkpoint folder that `load_pretrained` (and
transformers) read exactly like a real one: config.json + model.safetensors + tokenizer. The
tokenizer is trained in-process (mtlws_jax.data.vocab), the weights come from our own randomly
initialized nnx encoder, written in HF naming by the same code that exports fine-tuned taggers.
"""

from __future__ import annotations

import os
import pathlib
from typing import Iterable, Sequence

from flax import nnx

from mtlws_jax.data import vocab
from mtlws_jax.models import checkpoints
from mtlws_jax.models.encoder import EncoderConfig, make_encoder
from mtlws_jax.models.tagger import tagger_params

# A few sentences in the paper's languages, so the default vocabularies cover several scripts'
# worth of Latin-alphabet words; pass real text (e.g. the training sentences) for a demo.
DEFAULT_TEXTS = (
    "The European Union opened talks with Germany on Monday .",
    "Peter Blackburn reported from Brussels about the new wine law .",
    "The food was great but the service was slow and the waiter rude .",
    "El Gobierno de España anunció nuevas medidas en Madrid el martes .",
    "La comida estaba buena pero el servicio fue muy lento .",
    "Die Bundesregierung in Berlin hat am Mittwoch neue Pläne vorgestellt .",
    "Das Essen war gut , aber der Kellner war unfreundlich .",
    "De gemeente Amsterdam opent volgende week een nieuw museum .",
    "Het eten was lekker maar de bediening was traag .",
    "Le président de la République est arrivé à Paris hier soir .",
    "Le repas était excellent et le personnel très aimable .",
    "Il governo italiano ha approvato la nuova legge a Roma .",
    "Мы были в ресторане в Москве , и еда была отличной .",
    "Yemekler çok lezzetliydi ama servis yavaştı .",
    "Le vin rouge de Bordeaux est célèbre dans le monde entier .",
    "John Smith works for the United Nations in New York .",
)


def build_tiny_checkpoint(folder: str | os.PathLike, *, model_type: str = "bert",
                          texts: Iterable[str | Sequence[str]] | None = None, vocab_size: int = 500,
                          hidden_size: int = 32, num_layers: int = 2, num_heads: int = 2,
                          intermediate_size: int = 64, max_length: int = 128, hidden_act: str = "gelu",
                          seed: int = 0) -> pathlib.Path:
  """Writes a random `model_type` ("bert" with WordPiece or "xlm-roberta" with Unigram) folder.

  The vocabulary may come out smaller than `vocab_size` on little text; the embedding has one
  row per token the tokenizer knows. `max_length` counts tokens, specials included.
  """
  texts = list(DEFAULT_TEXTS if texts is None else texts)
  if model_type == "bert":
    tokenizer = vocab.train_wordpiece(texts, vocab_size=vocab_size)
  elif model_type == "xlm-roberta":
    tokenizer = vocab.train_unigram(texts, vocab_size=vocab_size)
  else:
    raise ValueError(f"model_type must be 'bert' or 'xlm-roberta', got {model_type!r}")
  pad = tokenizer.pad_token_id
  offset = pad + 1 if model_type == "xlm-roberta" else 0
  config = EncoderConfig(
      model_type=model_type, vocab_size=len(tokenizer), hidden_size=hidden_size,
      num_hidden_layers=num_layers, num_attention_heads=num_heads, intermediate_size=intermediate_size,
      hidden_act=hidden_act, max_position_embeddings=max_length + offset,
      type_vocab_size=2 if model_type == "bert" else 1, pad_token_id=pad,
      layer_norm_eps=1e-12 if model_type == "bert" else 1e-5,
      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
  encoder = make_encoder(config, rngs=nnx.Rngs(seed))
  tensors = checkpoints.encoder_to_hf(tagger_params(encoder), config)
  hf_config = config.to_hf_config()
  hf_config["architectures"] = [checkpoints.BASE_ARCHITECTURES[model_type]]
  return checkpoints.write_hf_folder(folder, tensors, hf_config, tokenizer)
