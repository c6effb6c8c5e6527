"""Sentence embeddings of MELD utterances: of the official transcript and of Whisper's.

Two tables, so that changing the ASR encoder touches only the embeddings of Whisper's text.
Same layout as the audio embeddings (`storage/schemas/audio.py`); the input hash is the text's.
"""

from __future__ import annotations

from storage.schemas import register
from storage.schemas.audio import utterance_embeddings

TEXT_EMBEDDINGS = register(utterance_embeddings(
    "text_embeddings", 384, "Sentence embedding of each utterance's official text (all-MiniLM-L6-v2: 384-d)."))
WHISPER_TEXT_EMBEDDINGS = register(utterance_embeddings(
    "whisper_text_embeddings", 384, "Sentence embedding of each clip's Whisper transcript (all-MiniLM-L6-v2: 384-d)."))
