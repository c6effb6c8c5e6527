"""Software-defined assets, one folder per domain (corpora, meld, audio, text, vision, training)."""
