"""The emotion corpora emostore reads, one Dagster-free module per corpus (`corpora/ravdess.py`
reads RAVDESS), listed once in `corpora/registry.py`; `corpora/reading.py` is what every reader
shares: the scan of a root, the rows it yields, and the one path by which a reader opens files."""
