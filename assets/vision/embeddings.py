"""`face_embeddings`: one vector per accepted face crop, in Lance, computed once per crop and model.

Rows are keyed by (crop id, crop content hash, embedder fingerprint), so a re-run embeds only
crops that are new or changed, and rows of another embedder of the same vector size stay (and
are found again if it is configured again). The table holds one vector size (128 for dlib, the
default); an embedder of another size (FaceNet: 512) starts it afresh (`LanceTable.for_vectors`:
a new Lance version; earlier versions keep the old rows). Each row carries the utterance's
speaker label, with a BITMAP index on it for exact per-speaker queries.
"""


import dagster as dg
from dagster import AssetExecutionContext

from assets.embedding_tables import embedding_asset, sync_embeddings
from assets.meld.utterances import meld_utterances
from assets.resources import EncoderResource, FacesResource, StoreResource
from assets.vision.detections import face_detections, read_partition
from storage import LanceTable, Store, row_key
from storage.embedding_sync import Embedded, partition_scope, sql_and
from storage.schemas.meld import MELD_UTTERANCES
from storage.schemas.vision import FACE_DETECTIONS, FACE_EMBEDDINGS

EMBEDDINGS_VERSION = "1"
BATCH = 64  # crops per embedder call


def embeddings_table(store: Store, face_embedder: EncoderResource) -> LanceTable:
    """The `face_embeddings` table declared with this embedder's vector size (its rows read the
    same whatever size the table holds; writing goes through `for_vectors`)."""
    from models.encoders.face_embed import embedder_dim

    return store.lance(FACE_EMBEDDINGS.name).sized(embedder_dim(face_embedder.spec()))


def embedder_spec(face_embedder: EncoderResource):
    return face_embedder.spec().with_transform(EMBEDDINGS_VERSION)


def embedder_fingerprint(face_embedder: EncoderResource) -> str:
    return embedder_spec(face_embedder).fingerprint()


def embed_crops(embedder, rows) -> list[Embedded]:
    from models.encoders.face_detect import decode_crop
    from storage import media

    vectors = embedder.embed([decode_crop(media.read_media(u)) for u in rows["crop_uri"]])
    return [Embedded(v) for v in vectors]


@embedding_asset(group="vision", deps=[face_detections, meld_utterances], transform=EMBEDDINGS_VERSION,
                 partitioned=True, check="every_accepted_face_embedded", blocking=True,
                 check_description="Each accepted face crop of the split has exactly one vector.")
def face_embeddings(
    context: AssetExecutionContext, store: StoreResource, face_embedder: EncoderResource, faces: FacesResource
) -> dg.MaterializeResult:
    """Embeddings of the split's accepted face crops, with the utterance's speaker label."""
    import polars as pl

    from models.encoders.face_embed import load_embedder

    split = context.partition_key
    root = store.store()
    spec = embedder_spec(face_embedder)
    fingerprint = spec.fingerprint()
    detections = read_partition(root, FACE_DETECTIONS.name, split).filter(pl.col("status") == "ok")
    speakers = read_partition(root, MELD_UTTERANCES.name, split).select("id", "speaker")
    crops = detections.join(speakers, on="id", how="left").select(
        pl.struct("crop_id", "crop_hash").map_elements(
            lambda r: row_key(r["crop_id"], r["crop_hash"], fingerprint), return_dtype=pl.String).alias("key"),
        "crop_id", "id", "split", "speaker", "second", "face_index", "crop_hash",
        pl.lit(fingerprint).alias("fingerprint"), "crop_uri",
    )
    table = embeddings_table(root, face_embedder)
    return sync_embeddings(
        context, table, crops, spec=spec,
        scope=partition_scope(table, split, crops["id"], fingerprint=fingerprint), attributes=("speaker",),
        load=lambda: load_embedder(face_embedder.spec(), faces.options().geometry), encode=embed_crops,
        chunk=BATCH, check="every_accepted_face_embedded", what="accepted faces",
        sample_columns=["crop_id", "speaker", "second", "status"],
    )
