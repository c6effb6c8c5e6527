"""The meld domain: MELD utterances from MELD.Raw, and each clip's speech audio and 1 fps frames."""

import dagster as dg

from assets.meld.clip_audio import clip_audio
from assets.meld.clip_frames import clip_frames
from assets.meld.utterances import meld_utterances

defs = dg.Definitions(assets=[meld_utterances, clip_audio, clip_frames])
