"""The audio domain: Whisper transcripts of MELD's clips, their alignment with the official
text, and speaker and ASR embeddings."""

import dagster as dg

from assets.audio.alignment import transcript_alignment
from assets.audio.embeddings import asr_embeddings, speaker_embeddings
from assets.audio.transcripts import transcripts

defs = dg.Definitions(assets=[transcripts, transcript_alignment, speaker_embeddings, asr_embeddings])
