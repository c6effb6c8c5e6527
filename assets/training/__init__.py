"""Assets of the training domain."""

import dagster as dg

defs = dg.Definitions()
