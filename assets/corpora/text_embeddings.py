"""`text_corpus_embeddings`: sentence vectors of the text corpora's items, in Lance, incrementally.

Rows are keyed by (corpus/item id, text hash, encoder fingerprint), so a re-run embeds only texts
that are new or changed: with nothing changed it embeds nothing and writes nothing. Label columns
(split, label, raw labels, status) are refreshed without re-embedding when only they changed
(a new `[labels]` rule), and rows of items that are gone or whose text changed are deleted, all in
one Lance commit. Rows of other encoders of the same vector size stay, so switching back to an
encoder costs nothing; readers select `fingerprint`. Items embedded: those with text whose status
is usable or only label-related (ok, unmapped_label, ambiguous_label, low_intensity); unlabelled,
malformed, empty and duplicate rows are not. An encoder with another vector size starts the table
afresh (`LanceTable.for_vectors`: a new Lance version; the old rows stay readable at earlier
versions).
"""

from __future__ import annotations

import time

import dagster as dg

from assets.corpora.text_items import TEXT_ITEM_ASSETS
from assets.reporting import table_result
from assets.resources import EncoderResource, StoreResource
from storage import LanceTable, content_hash, row_key
from storage.schemas.corpora import TEXT_CORPORA, TEXT_CORPUS_EMBEDDINGS
from storage.status import Status

EMBEDDINGS_CODE_VERSION = "1"
EMBEDDED_STATUSES = (Status.OK, Status.UNMAPPED_LABEL, Status.AMBIGUOUS_LABEL, Status.LOW_INTENSITY)
ENCODE_CHUNK = 2048  # texts per encoder call, so progress is logged as it goes
ATTRIBUTES = ["split", "label", "raw_labels", "status"]  # refreshed in place when they change


def wanted_rows(store: StoreResource, fingerprint: str):
    """One row per item to embed: key, corpus, id, attributes, text, text hash, fingerprint."""
    import polars as pl

    frames = []
    for corpus in TEXT_CORPORA:
        table = store.store().parquet(f"{corpus}_items")
        if not table.exists():
            continue
        items = table.read().filter(
            pl.col("status").is_in([str(s) for s in EMBEDDED_STATUSES])
            & pl.col("text").is_not_null()
            & (pl.col("text").str.strip_chars() != "")
        )
        frames.append(items.select("corpus", "id", *ATTRIBUTES, "text"))
    if not frames:
        return pl.DataFrame(schema={"key": pl.String, "corpus": pl.String, "id": pl.String, "split": pl.String,
                                    "label": pl.String, "raw_labels": pl.List(pl.String), "status": pl.String,
                                    "text": pl.String, "text_hash": pl.String, "fingerprint": pl.String})
    frame = pl.concat(frames)
    hashes = [content_hash(t) for t in frame["text"]]
    keys = [row_key(f"{c}/{i}".replace("|", "%7C"), h, fingerprint)
            for c, i, h in zip(frame["corpus"], frame["id"], hashes)]
    return frame.with_columns(
        pl.Series("key", keys), pl.Series("text_hash", hashes), pl.lit(fingerprint).alias("fingerprint")
    )


def _signature():
    """One string per row from the refreshable attributes, to compare stored and wanted rows."""
    import polars as pl

    return pl.concat_str(
        [pl.col("split"), pl.col("label").fill_null("\0"), pl.col("status"),
         pl.col("raw_labels").list.join("\x1f")],
        separator="\x1e",
    ).alias("signature")


@dg.asset(
    group_name="corpora",
    deps=list(TEXT_ITEM_ASSETS.values()),
    code_version=EMBEDDINGS_CODE_VERSION,
    pool="inference",
    description="Sentence embeddings of the text corpora (configured text encoder), incremental, in Lance.",
    check_specs=[dg.AssetCheckSpec(
        name="every_item_embedded", asset="text_corpus_embeddings",
        description="Every item to embed has exactly one row for the current encoder, of unit length.",
    )],
)
def text_corpus_embeddings(context, store: StoreResource,
                           text: EncoderResource) -> dg.MaterializeResult:
    import polars as pl

    fingerprint = text.fingerprint()
    wanted = wanted_rows(store, fingerprint).with_columns(_signature())
    lance = LanceTable(store.store().root, TEXT_CORPUS_EMBEDDINGS).sized()  # the vector size it holds
    stored = pl.from_arrow(lance.read_arrow(
        where=f"fingerprint = '{fingerprint}'", columns=["key", "corpus", "text_hash", *ATTRIBUTES]
    )).with_columns(_signature())

    plan = plan_changes(wanted, stored)
    to_embed = wanted.filter(pl.col("key").is_in(plan["new"]))
    texts = to_embed.unique("text_hash", keep="first", maintain_order=True).select("text_hash", "text")
    # A new key whose text this encoder has embedded before (another item, a relabelled row)
    # takes the stored vector.
    vectors = stored_vectors(lance, fingerprint, set(texts["text_hash"]) & set(stored["text_hash"]))
    reused = len(vectors)
    texts = texts.filter(~pl.col("text_hash").is_in(list(vectors)))
    context.log.info(f"text_corpus_embeddings: {wanted.height} items; {len(plan['new'])} new keys "
                     f"({texts.height} distinct texts to embed, {reused} known), {len(plan['changed'])} "
                     f"label updates, {len(plan['stale'])} stale rows to delete")

    seconds = 0.0
    if texts.height:
        from models.encoders.sentence import SentenceEncoder

        encoder = SentenceEncoder.from_spec(text.spec())
        lance = lance.for_vectors(encoder.dim, log=context.log.warning)
        start = time.perf_counter()
        for begin in range(0, texts.height, ENCODE_CHUNK):
            chunk = texts.slice(begin, ENCODE_CHUNK)
            for h, v in zip(chunk["text_hash"], encoder.encode(chunk["text"].to_list())):
                vectors[h] = v
            context.log.info(f"embedded {min(begin + ENCODE_CHUNK, texts.height)}/{texts.height} texts")
        seconds = time.perf_counter() - start

    version = write_changes(lance, wanted, plan, vectors, fingerprint)
    rate = texts.height / seconds if seconds else None
    return table_result(
        wanted.drop("signature", "text"),
        data_version=content_hash(*sorted(f"{k}\x1d{s}" for k, s in zip(wanted["key"], wanted["signature"]))),
        metadata={
            "texts embedded": texts.height,
            "vectors reused from identical texts": reused,
            "rows added": len(plan["new"]),
            "rows with labels updated": len(plan["changed"]),
            "rows deleted": len(plan["stale"]),
            "rows reused": wanted.height - len(plan["new"]),
            "rows by corpus": dg.MetadataValue.json(
                {c: int(n) for c, n in wanted.group_by("corpus").len().sort("corpus").iter_rows()}
            ),
            "encoder": text.spec().label,
            "fingerprint": fingerprint,
            "texts per second": round(rate, 1) if rate else 0.0,
            "lance version": version if version is not None else "unchanged",
        },
        check_results=[coverage_check(lance, wanted, fingerprint, vectors)],
        sample_columns=["corpus", "id", "split", "label", "status", "text_hash"],
    )


def stored_vectors(lance: LanceTable, fingerprint: str, hashes: set[str]) -> dict:
    """text hash -> the vector this encoder stored for that text."""
    if not hashes:
        return {}
    listed = ", ".join(f"'{h}'" for h in sorted(hashes))
    found = lance.read_arrow(where=f"fingerprint = '{fingerprint}' AND text_hash IN ({listed})",
                             columns=["text_hash", "vector"])
    return dict(zip(found.column("text_hash").to_pylist(), found.column("vector").to_numpy(zero_copy_only=False)))


def plan_changes(wanted, stored) -> dict:
    """Keys to add (new), to update in place (changed attributes) and to delete (stale, by
    corpus), and the corpora that keep rows untouched."""
    wanted_sig = dict(zip(wanted["key"], wanted["signature"]))
    stale: dict[str, list[str]] = {}
    untouched: set[str] = set()
    changed = []
    for key, corpus, signature in zip(stored["key"], stored["corpus"], stored["signature"]):
        if key not in wanted_sig:
            stale.setdefault(corpus, []).append(key)
        elif wanted_sig[key] != signature:
            changed.append(key)
        else:
            untouched.add(corpus)
    stored_keys = set(stored["key"])
    return {
        "new": [k for k in wanted_sig if k not in stored_keys],
        "changed": changed,
        "stale": [k for keys in stale.values() for k in keys],
        "stale_by_corpus": stale,
        "untouched_corpora": untouched,
    }


def write_changes(lance: LanceTable, wanted, plan, vectors: dict, fingerprint: str) -> int | None:
    """Apply the plan in one Lance commit; None when there is nothing to write."""
    import numpy as np
    import polars as pl

    if not (plan["new"] or plan["changed"] or plan["stale"]):
        return None
    columns = ["key", "corpus", "id", *ATTRIBUTES, "text_hash", "fingerprint"]
    new = wanted.filter(pl.col("key").is_in(plan["new"])).select(columns)
    new_vectors = [vectors[h] for h in new["text_hash"]]
    changed = wanted.filter(pl.col("key").is_in(plan["changed"])).select(columns)
    if changed.height:
        corpora = ", ".join(f"'{c}'" for c in sorted(set(changed["corpus"])))
        kept = pl.from_arrow(lance.read_arrow(where=f"fingerprint = '{fingerprint}' AND corpus IN ({corpora})",
                                              columns=["key", "vector"]))
        kept_vectors = dict(zip(kept["key"], kept["vector"].to_numpy()))
        new_vectors += [kept_vectors[k] for k in changed["key"]]
    rows = pl.concat([new, changed])
    dim = lance.vector_dim
    matrix = np.stack(new_vectors).astype(np.float32) if new_vectors else np.zeros((0, dim), np.float32)
    rows = rows.with_columns(pl.Series("vector", matrix, dtype=pl.Array(pl.Float32, dim)))
    tag = f"text_corpus_embeddings {fingerprint}"
    if not plan["stale"]:
        return lance.upsert(rows, tag=tag)
    return lance.replace_where(rows, stale_predicate(plan, fingerprint), tag=tag)


def stale_predicate(plan, fingerprint: str) -> str:
    """The stored rows to delete: a whole corpus (this encoder's rows) where none of its rows is
    left untouched, else its stale keys by name."""
    parts = []
    for corpus, keys in sorted(plan["stale_by_corpus"].items()):
        if corpus not in plan["untouched_corpora"]:
            parts.append(f"(fingerprint = '{fingerprint}' AND corpus = '{corpus}')")
        else:
            parts.append("key IN (" + ", ".join("'" + k.replace("'", "''") + "'" for k in keys) + ")")
    return " OR ".join(parts)


def coverage_check(lance: LanceTable, wanted, fingerprint: str, vectors: dict) -> dg.AssetCheckResult:
    import numpy as np

    stored = lance.count(f"fingerprint = '{fingerprint}'") if wanted.height or lance.exists() else 0
    norms = [float(np.linalg.norm(v)) for v in list(vectors.values())[:1000]]
    off_unit = sum(abs(n - 1.0) > 1e-3 for n in norms)
    return dg.AssetCheckResult(
        check_name="every_item_embedded",
        passed=stored == wanted.height and off_unit == 0,
        metadata={"items to embed": wanted.height, "rows for this encoder": stored,
                  "new vectors not of unit length (first 1000)": off_unit},
    )
