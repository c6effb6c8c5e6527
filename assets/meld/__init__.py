"""The meld domain: MELD utterances from MELD.Raw, and each clip's speech audio and 1 fps frames."""

import dagster as dg

from assets.meld.utterances import meld_utterances

defs = dg.Definitions(assets=[meld_utterances])
