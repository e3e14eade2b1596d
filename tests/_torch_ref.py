"""Helpers for parity tests against transformers' PyTorch models (import only after torch is known)."""

import torch


def randomize(model, seed: int):
  """Every parameter random (LayerNorm scales near 1), so a mis-mapped bias cannot hide as zero."""
  g = torch.Generator().manual_seed(seed)
  with torch.no_grad():
    for name, p in model.named_parameters():
      noise = torch.randn(p.shape, generator=g)
      p.copy_(1 + 0.1 * noise if name.endswith("LayerNorm.weight") else 0.1 * noise)
  return model.eval()
