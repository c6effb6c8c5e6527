"""Assets of the meld domain."""

import dagster as dg

defs = dg.Definitions()
