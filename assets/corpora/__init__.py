"""Assets of the corpora domain: the unimodal emotion corpora as items, the balanced text
training set, and the text corpora's sentence embeddings."""

import dagster as dg

from assets.corpora.text_embeddings import text_corpus_embeddings
from assets.corpora.text_items import TEXT_ITEM_ASSETS
from assets.corpora.text_training import text_training_set

defs = dg.Definitions(assets=[*TEXT_ITEM_ASSETS.values(), text_training_set, text_corpus_embeddings])
