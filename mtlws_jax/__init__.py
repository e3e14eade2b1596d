"""mtlws-jax: cross-lingual sequence tagging with JAX/Flax (zero-shot, translate-train, MTL-WS)."""

__version__ = "0.1.0"
