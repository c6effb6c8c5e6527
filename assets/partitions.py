"""Partitions shared across domains: MELD's three splits."""

import dagster as dg

MELD_SPLITS = ("train", "dev", "test")
meld_splits = dg.StaticPartitionsDefinition(list(MELD_SPLITS))
