"""PyTorch code: encoder wrappers, trainable heads and fusion models (no Dagster here)."""
