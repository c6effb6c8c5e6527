"""Assets of the text domain."""

import dagster as dg

defs = dg.Definitions()
