"""Wrappers around pretrained encoders (ASR, speaker, sentence, face): one model per file."""
