"""`face_embeddings`: one vector per accepted face crop, in Lance, computed once per crop and model.

Rows are keyed by (crop id, crop content hash, embedder fingerprint), so a re-run embeds only
crops that are new or changed, and rows of another embedder of the same vector size stay (and
are found again if it is configured again). The table holds one vector size (128 for dlib, the
default); an embedder of another size (FaceNet: 512) starts it afresh (`LanceTable.for_vectors`:
a new Lance version; earlier versions keep the old rows). Each row carries the utterance's
speaker label, with a BITMAP index on it for exact per-speaker queries.
"""


from typing import Any

import dagster as dg
from dagster import AssetExecutionContext

from assets.meld.utterances import meld_utterances
from assets.partitions import meld_splits
from assets.reporting import table_result
from assets.resources import EncoderResource, FacesResource, StoreResource
from assets.vision.detections import face_detections, read_partition
from storage import LanceTable, Store, row_key
from storage.schemas.meld import MELD_UTTERANCES
from storage.schemas.vision import FACE_DETECTIONS, FACE_EMBEDDINGS

EMBEDDINGS_VERSION = "1"
BATCH = 64  # crops per embedder call


def embeddings_table(store: Store, face_embedder: EncoderResource) -> LanceTable:
    """The `face_embeddings` table declared with this embedder's vector size (its rows read the
    same whatever size the table holds; writing goes through `for_vectors`)."""
    from models.encoders.face_embed import embedder_dim

    return store.lance(FACE_EMBEDDINGS.name).sized(embedder_dim(face_embedder.spec()))


def embedder_fingerprint(face_embedder: EncoderResource) -> str:
    return face_embedder.spec().with_transform(EMBEDDINGS_VERSION).fingerprint()


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dg.asset(
    partitions_def=meld_splits,
    group_name="vision",
    deps=[face_detections, meld_utterances],
    code_version=EMBEDDINGS_VERSION,
    pool="inference",
    check_specs=[
        dg.AssetCheckSpec("every_accepted_face_embedded", asset="face_embeddings", blocking=True,
                          description="Each accepted face crop of the split has exactly one vector."),
    ],
)
def face_embeddings(
    context: AssetExecutionContext, store: StoreResource, face_embedder: EncoderResource, faces: FacesResource
) -> dg.MaterializeResult:
    """Embeddings of the split's accepted face crops, with the utterance's speaker label."""
    import numpy as np
    import polars as pl

    from models.encoders.face_detect import decode_crop
    from models.encoders.face_embed import embedder_dim

    split = context.partition_key
    root = store.store()
    fingerprint = embedder_fingerprint(face_embedder)
    detections = read_partition(root, FACE_DETECTIONS.name, split).filter(pl.col("status") == "ok")
    speakers = read_partition(root, MELD_UTTERANCES.name, split).select("id", "speaker")
    crops = detections.join(speakers, on="id", how="left").with_columns(
        key=pl.struct("crop_id", "crop_hash").map_elements(
            lambda r: row_key(r["crop_id"], r["crop_hash"], fingerprint), return_dtype=pl.String),
    )
    dim = embedder_dim(face_embedder.spec())
    table = root.lance(FACE_EMBEDDINGS.name).for_vectors(dim, log=context.log.warning)
    mine = f"split = {_quote(split)} AND fingerprint = {_quote(fingerprint)}"
    kept = table.read(where=mine)
    kept = kept.filter(pl.col("key").is_in(crops["key"].implode())) if kept.height else kept
    todo = crops.filter(~pl.col("key").is_in(kept["key"].implode()))

    vectors: list[Any] = []
    if todo.height:
        from models.encoders.face_embed import load_embedder

        embedder = load_embedder(face_embedder.spec(), faces.options().geometry)
        uris = todo["crop_uri"].to_list()
        for start in range(0, len(uris), BATCH):
            from storage import media

            batch = [decode_crop(media.read_media(u)) for u in uris[start:start + BATCH]]
            vectors.append(embedder.embed(batch))
            context.log.info(f"{split}: embedded {min(start + BATCH, len(uris))}/{len(uris)} faces")
    new = todo.select(
        "key", "crop_id", "id", "split", "speaker", "second", "face_index", "crop_hash",
        pl.lit(fingerprint).alias("fingerprint"),
        pl.Series("vector", np.concatenate(vectors) if vectors else np.zeros((0, dim), np.float32),
                  dtype=pl.Array(pl.Float32, dim)),
    )
    rows = pl.concat([kept.select(new.columns).cast(new.schema), new]) if kept.height else new
    if rows.height:
        version = table.replace_where(rows, mine, tag=f"face_embeddings {split} {fingerprint}")
        table.ensure_scalar_index("speaker", "BITMAP")
    else:
        version = table.delete(mine, tag=f"face_embeddings {split} {fingerprint}")

    stored = table.count(mine)
    checks = [dg.AssetCheckResult(
        check_name="every_accepted_face_embedded",
        passed=stored == crops.height == rows["key"].n_unique(),
        metadata={"accepted faces": crops.height, "vectors stored": stored},
    )]
    return table_result(
        rows,
        data_version=f"{fingerprint}:{_digest(rows['key'].sort().to_list())}",
        check_results=checks,
        sample_columns=["crop_id", "speaker", "second", "vector"],
        metadata={"embedder": face_embedder.spec().label, "fingerprint": fingerprint,
                  "table": table.schema.name, "dim": dim, "computed": todo.height,
                  "reused": kept.height, "lance version": version},
    )


def _digest(keys: list[str]) -> str:
    from storage import content_hash

    return content_hash(*keys) if keys else "empty"
