"""Assets of the audio domain."""

import dagster as dg

defs = dg.Definitions()
