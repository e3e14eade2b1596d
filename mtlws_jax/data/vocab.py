"""Small subword tokenizers trained in-process, for tests and tiny models.

Nothing may come from the Hugging Face hub, so tests and toy runs build their own tokenizers with
the `tokenizers` library. Both builders mirror the layout of the real encoders they stand in for
(BERT WordPiece, XLM-R SentencePiece Unigram: same special tokens at the same ids, same pre-
tokenization and post-processing), so code tested on them works unchanged on the real ones.

They are returned as plain `transformers.PreTrainedTokenizerFast` objects (not BertTokenizerFast /
XLMRobertaTokenizerFast: transformers 5 rebuilds those pipelines from the vocabulary on load and
would drop the pieces set here), and survive `save_pretrained` + `AutoTokenizer.from_pretrained`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import tokenizers
from tokenizers import decoders, models, normalizers, pre_tokenizers, processors, trainers
import transformers

BERT_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
XLMR_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
XLMR_MASK = "<mask>"


def _texts(texts: Iterable[str | Sequence[str]]) -> list[str]:
  """Accepts raw strings or already-split word lists (e.g. `Sentence.tokens`)."""
  out = []
  for t in texts:
    out.append(t if isinstance(t, str) else " ".join(t))
  if not out:
    raise ValueError("cannot train a tokenizer on no text")
  return out


def train_wordpiece(texts: Iterable[str | Sequence[str]], vocab_size: int = 1000) -> transformers.PreTrainedTokenizerFast:
  """BERT-style cased WordPiece: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4, "[CLS] $A [SEP]"."""
  tok = tokenizers.Tokenizer(models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"))
  tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False, clean_text=True, handle_chinese_chars=True)
  tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  tok.decoder = decoders.WordPiece(prefix="##")
  trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(BERT_SPECIALS),
                                      continuing_subword_prefix="##", show_progress=False)
  tok.train_from_iterator(_texts(texts), trainer=trainer)
  for i, s in enumerate(BERT_SPECIALS):
    assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
  cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
  tok.post_processor = processors.TemplateProcessing(
      single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
      special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
  return transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
      sep_token="[SEP]", mask_token="[MASK]", padding_side="right")


def train_unigram(texts: Iterable[str | Sequence[str]], vocab_size: int = 1000) -> transformers.PreTrainedTokenizerFast:
  """XLM-R-style Unigram: <s>=0 <pad>=1 </s>=2 <unk>=3 ... <mask> last, Metaspace, "<s> $A </s>"."""
  tok = tokenizers.Tokenizer(models.Unigram())
  tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace(tokenizers.Regex(" {2,}"), " ")])
  tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
  tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="always", split=True)
  trainer = trainers.UnigramTrainer(vocab_size=vocab_size - 1, special_tokens=list(XLMR_SPECIALS),
                                    unk_token="<unk>", show_progress=False)
  tok.train_from_iterator(_texts(texts), trainer=trainer)
  for i, s in enumerate(XLMR_SPECIALS):
    assert tok.token_to_id(s) == i, (s, tok.token_to_id(s))
  # <mask> goes after every trained piece, as in XLM-R (id 250001 there).
  tok.add_special_tokens([tokenizers.AddedToken(XLMR_MASK, lstrip=True, special=True)])
  bos, eos = tok.token_to_id("<s>"), tok.token_to_id("</s>")
  tok.post_processor = processors.TemplateProcessing(
      single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
      special_tokens=[("<s>", bos), ("</s>", eos)])
  return transformers.PreTrainedTokenizerFast(
      tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>", sep_token="</s>",
      cls_token="<s>", pad_token="<pad>", mask_token=XLMR_MASK, padding_side="right")
