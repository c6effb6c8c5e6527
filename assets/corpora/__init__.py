"""Assets of the corpora domain: the unimodal emotion corpora as items, the balanced text
training set, the text corpora's sentence embeddings, the audio, face and dialogue corpora's
evaluation folds and their speaker, ASR, face and transcript embeddings."""

import dagster as dg

from assets.corpora.audio_embeddings import corpus_asr_embeddings, corpus_speaker_embeddings
from assets.corpora.dialogue_embeddings import corpus_text_embeddings
from assets.corpora.face_embeddings import corpus_face_embeddings
from assets.corpora.media_items import MEDIA_ITEM_ASSETS
from assets.corpora.protocols import corpus_folds
from assets.corpora.text_embeddings import text_corpus_embeddings
from assets.corpora.text_items import TEXT_ITEM_ASSETS
from assets.corpora.text_training import text_training_set

defs = dg.Definitions(assets=[
    *TEXT_ITEM_ASSETS.values(), text_training_set, text_corpus_embeddings,
    *MEDIA_ITEM_ASSETS.values(), corpus_folds,
    corpus_speaker_embeddings, corpus_asr_embeddings, corpus_face_embeddings, corpus_text_embeddings,
])
