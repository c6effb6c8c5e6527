"""Assets of the vision domain."""

import dagster as dg

defs = dg.Definitions()
