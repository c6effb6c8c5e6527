"""Assets of the corpora domain."""

import dagster as dg

defs = dg.Definitions()
