"""Translate-train data: translation, word alignment and label projection.

  translate  given translations (tokenized file) or a transformers seq2seq model, cached
  align      eflomal (seeded, see `seeding`), symmetrization, Pharaoh `i-j` files; CLI
  aer        alignment error rate against sure/possible gold links; CLI
  project    span-to-span (paper Eq. 2) and word-to-word projection, SRL heads, drop rules
  __main__   `python -m mtlws_jax.projection`: a translated training set in the source's format
"""
