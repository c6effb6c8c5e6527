"""The text domain: sentence embeddings of MELD's official and Whisper transcripts."""

import dagster as dg

from assets.text.embeddings import text_embeddings, whisper_text_embeddings

defs = dg.Definitions(assets=[text_embeddings, whisper_text_embeddings])
