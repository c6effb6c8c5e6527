"""Assets of the corpora domain: every registered corpus (corpora/registry.py) as items, the
balanced text training set, the text corpora's sentence embeddings, the audio, face and dialogue
corpora's evaluation folds and their speaker, ASR, face and transcript embeddings. The readers
themselves are Dagster-free, one module per corpus in `corpora/`."""

import dagster as dg

from assets.corpora.audio_embeddings import corpus_asr_embeddings, corpus_speaker_embeddings
from assets.corpora.dialogue_embeddings import corpus_text_embeddings
from assets.corpora.face_embeddings import corpus_face_embeddings
from assets.corpora.folds import corpus_folds
from assets.corpora.items import ITEM_ASSETS
from assets.corpora.text_embeddings import text_corpus_embeddings
from assets.corpora.text_training import text_training_set

defs = dg.Definitions(assets=[
    *ITEM_ASSETS.values(), text_training_set, text_corpus_embeddings, corpus_folds,
    corpus_speaker_embeddings, corpus_asr_embeddings, corpus_face_embeddings, corpus_text_embeddings,
])
