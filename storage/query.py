"""Queries over the store: embedding rows by speaker, emotion, split, corpus or dialogue, their
nearest neighbours by cosine distance, speakers' counts and centroid similarities, and the
training bench's predictions. Answers are polars frames (no Dagster here).

Nearest-neighbour search is exact: the filters go to Lance as a prefilter answered by the
tables' BITMAP indexes (`TableSchema.indexes`), only the matching rows' vectors are read, and
their distances are computed here. The order is by distance, then by item id: candidates near
the k-th distance are scored again in float64, row by row, so equal vectors give equal distances
and ties fall to the smaller id. One answer holds the rows of one encoder (the `encoder` column,
`ModelSpec.encoder()`), never a mix. A vector index (`build_vector_index`) is used only when a
query asks for `approximate=True`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from storage import Store
from storage.embedding_sync import sql_in, sql_quote
from storage.schemas import VECTOR, SchemaError, all_schemas, get as get_schema

# --modality -> table. Faces per utterance are the speaking face's vector (`speaking_faces`);
# per crop, query `face_embeddings` by name.
MODALITY_TABLES = {
    "text": "text_embeddings",
    "whisper_text": "whisper_text_embeddings",
    "speaker": "speaker_embeddings",
    "asr": "asr_embeddings",
    "face": "speaking_faces",
}
TEXT_TABLES = ("text_embeddings", "whisper_text_embeddings", "text_corpus_embeddings", "corpus_text_embeddings")
UTTERANCES = "meld_utterances"
PREDICTIONS = "training_predictions"
DISTANCE = "distance"
RERANK_MARGIN = 1e-5  # rows within this of the k-th float32 distance are scored again in float64
ANY_STATUS = "any"
SPLITS = ("train", "dev", "test")


class QueryError(ValueError):
    """A query that cannot be answered: the message says what exists instead."""


@dataclasses.dataclass(frozen=True)
class Filters:
    """Which rows a query considers. `emotion` matches `emotion` or, in corpus tables, `label`;
    `status` None (or "any") keeps every status; `where` is a SQL expression over the columns."""

    speakers: tuple[str, ...] = ()
    emotion: str | None = None
    split: str | None = None
    corpus: str | None = None
    dialogue: int | None = None
    status: str | None = "ok"
    where: str | None = None


# -- tables ------------------------------------------------------------------------------------
def vector_tables() -> list[str]:
    """Every declared table with a vector column (Lance embedding tables, `speaking_faces`)."""
    return sorted(n for n, s in all_schemas().items() if VECTOR in s.schema.names)


def resolve_table(table: str | None = None, modality: str | None = None) -> str:
    """The table a query reads: by name, or by modality (`MODALITY_TABLES`)."""
    if table and modality:
        raise QueryError("give a table or a modality, not both")
    if modality:
        if modality not in MODALITY_TABLES:
            raise QueryError(f"unknown modality {modality!r}; known: {', '.join(MODALITY_TABLES)}")
        return MODALITY_TABLES[modality]
    if not table:
        raise QueryError("name a table or a modality")
    if table not in vector_tables():
        raise QueryError(f"no embedding table {table!r}; known: {', '.join(vector_tables())}")
    return table


def label_column(columns: Sequence[str]) -> str | None:
    return "emotion" if "emotion" in columns else "label" if "label" in columns else None


def item_column(columns: Sequence[str]) -> str:
    """The column naming one item: a face crop's id in `face_embeddings`, else `id`."""
    return "crop_id" if "crop_id" in columns else "id"


class _Source:
    """One table as a query reads it: Lance with a SQL prefilter, or Parquet through polars."""

    def __init__(self, store: Store, name: str, version: int | str | None = None, split: str | None = None):
        self.store, self.name, self.version = store, name, version
        self.schema = get_schema(name)
        self.columns = list(self.schema.schema.names)
        self.handle = store.table(name)
        self.lance = self.schema.format == "lance"
        if not self.handle.exists():
            raise QueryError(f"{name} has no rows in {store.root} yet: materialize its asset first")
        if self.lance:
            dataset = self.handle.table().to_lance()
            if version is not None:
                try:
                    dataset = dataset.checkout_version(version)
                except (ValueError, OSError, RuntimeError) as exc:
                    known = [v["version"] for v in self.handle.versions()]
                    tags = sorted(t for v in self.handle.versions() for t in v["tags"])
                    raise QueryError(f"{name} has no version {version!r}; versions {known[0]}..{known[-1]}"
                                     + (f", tags {', '.join(tags)}" if tags else "")) from exc
            self.dataset = dataset
            self.columns = list(dataset.schema.names)
            self._frame = None
        else:
            self._frame = self._read_parquet(version, split)

    def _read_parquet(self, version, split):
        import polars as pl

        if version is not None and self.schema.partition_by and split is None:
            raise QueryError(f"{self.name} keeps versions per {self.schema.partition_by}: give a split with a version")
        try:
            version = int(version) if version is not None else None
        except ValueError:
            raise QueryError(f"{self.name} is Parquet: its versions are numbers, not {version!r}") from None
        try:
            if self.schema.partition_by and split is not None:
                if split not in self.handle.partitions():
                    raise QueryError(f"{self.name} has no {self.schema.partition_by} {split!r}; "
                                     f"known: {', '.join(self.handle.partitions())}")
                return pl.from_arrow(self.handle.read_arrow(split, version))
            return pl.from_arrow(self.handle.read_arrow(None, version))
        except FileNotFoundError as exc:
            raise QueryError(str(exc)) from None

    # rows ------------------------------------------------------------------------------------
    def read(self, where: str | None, columns: list[str], row_ids: bool = False) -> pa.Table:
        """The rows matching `where` (SQL), only `columns` (and Lance's `_rowid` with `row_ids`)."""
        if self.lance:
            try:
                return self.dataset.to_table(columns=columns, filter=where, with_row_id=row_ids)
            except ValueError as exc:
                raise QueryError(_filter_message(exc, where, self.columns)) from None
        return filter_frame(self._frame, where).select(columns).to_arrow()

    def take(self, row_ids: np.ndarray, columns: list[str]) -> pa.Table:
        """`columns` of the Lance rows `row_ids`, in that order."""
        if len(row_ids) == 0:
            return self.dataset.schema.empty_table().select(columns)
        return self.dataset._take_rows([int(r) for r in row_ids], columns=columns)

    def count(self, where: str | None) -> int:
        """Rows matching `where` (Lance answers from its indexes)."""
        if self.lance:
            try:
                return self.dataset.count_rows(where)
            except ValueError as exc:
                raise QueryError(_filter_message(exc, where, self.columns)) from None
        return filter_frame(self._frame, where).height

    def count_by(self, column: str, where: str | None = None) -> dict[str, int]:
        found = self.read(where, [column]).column(column).to_pylist()
        counts: dict[str, int] = {}
        for value in found:
            counts[value] = counts.get(value, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0]))))


def filter_frame(frame, where: str | None):
    """`frame` filtered by a SQL expression (`speaker = 'Joey' AND split = 'dev'`), as Lance
    filters are written; a column that does not exist is a QueryError naming the columns."""
    if not where:
        return frame
    import polars as pl

    try:
        return frame.filter(pl.sql_expr(where))
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise QueryError(_filter_message(exc, where, frame.columns)) from None


def _filter_message(exc: Exception, where: str | None, columns: Sequence[str]) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    first = first.split(", /")[0]  # Lance appends the Rust source location
    return f"cannot filter by {where!r}: {first} (columns: {', '.join(c for c in columns if not c.startswith('_'))})"


# -- filters -----------------------------------------------------------------------------------
def _predicate(source: _Source, filters: Filters, encoder: str | None) -> str | None:
    """The filters as one SQL prefilter over `source`'s columns."""
    cols = source.columns
    parts = []
    if encoder is not None and "encoder" in cols:
        parts.append(f"encoder = {sql_quote(encoder)}")
    if filters.speakers:
        _need(source, "speaker", "--speaker")
        parts.append(f"speaker = {sql_quote(filters.speakers[0])}" if len(filters.speakers) == 1
                     else sql_in("speaker", filters.speakers))
    if filters.emotion is not None:
        label = label_column(cols)
        if label is None:
            raise QueryError(f"{source.name} has no emotion or label column")
        parts.append(f"{label} = {sql_quote(filters.emotion)}")
    if filters.split is not None:
        _need(source, "split", "--split")
        parts.append(f"split = {sql_quote(filters.split)}")
    if filters.corpus is not None:
        _need(source, "corpus", "--corpus")
        parts.append(f"corpus = {sql_quote(filters.corpus)}")
    if filters.dialogue is not None:
        parts.append(f"regexp_like(id, '(^|/)dia{int(filters.dialogue)}_utt')")
    if filters.status not in (None, ANY_STATUS) and "status" in cols:
        parts.append(f"status = {sql_quote(filters.status)}")
    if filters.where:
        parts.append(f"({filters.where})")
    return " AND ".join(parts) or None


def _need(source: _Source, column: str, option: str) -> None:
    if column not in source.columns:
        raise QueryError(f"{source.name} has no {column} column ({option} does not apply)")


def encoders(store: Store, table: str, version: int | str | None = None) -> dict[str, int]:
    """Encoder -> rows of `table` (its `encoder` column)."""
    source = _Source(store, table, version)
    if "encoder" not in source.columns:
        return {}
    return source.count_by("encoder")


def _choose_encoder(source: _Source, encoder: str | None) -> str | None:
    """The encoder of an answer: `encoder` when the table holds it, else the only one it holds."""
    if "encoder" not in source.columns:
        return None
    if encoder is not None and source.count(f"encoder = {sql_quote(encoder)}"):
        return encoder
    held = source.count_by("encoder")
    listed = ", ".join(f"{e} ({n} rows)" for e, n in held.items()) or "none"
    if encoder is not None:
        raise QueryError(f"{source.name} has no rows of encoder {encoder!r}; it holds: {listed}")
    if len(held) != 1:
        raise QueryError(f"{source.name} holds rows of several encoders: {listed}; choose one")
    return next(iter(held))


def _check_speakers(source: _Source, filters: Filters, encoder: str | None) -> None:
    """Every named speaker has rows; otherwise the message lists the speakers with row counts."""
    if not filters.speakers:
        return
    scope = _predicate(source, Filters(status=None), encoder)
    missing = [s for s in filters.speakers
               if not source.count(" AND ".join(p for p in (scope, f"speaker = {sql_quote(s)}") if p))]
    if missing:
        counts = source.count_by("speaker", scope)
        listed = ", ".join(f"{s} ({n})" for s, n in counts.items() if s is not None)
        raise QueryError(f"no speaker {', '.join(map(repr, missing))} in {source.name}; speakers (rows): {listed}")


# -- nearest neighbours ------------------------------------------------------------------------
def cosine_distances(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """1 - cosine similarity of each row to `query`, in float64, each row on its own (equal rows
    give equal distances); NaN for all-zero rows."""
    v = np.asarray(vectors, np.float64)
    q = np.asarray(query, np.float64)
    dots = (v * q).sum(axis=1)
    norms = np.sqrt((v * v).sum(axis=1)) * np.sqrt((q * q).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, 1.0 - dots / np.where(norms > 0, norms, 1.0), np.nan)


def top_k(vectors: np.ndarray, ids, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row indexes, distances) of the `k` rows nearest `query` by cosine distance, nearest first,
    ties broken by id; all-zero rows are never returned. A float32 pass over every row, then the
    candidates within `RERANK_MARGIN` of the k-th distance again in float64. `ids`: the rows'
    ids, or a function giving the ids of some row indexes (only the candidates' are needed)."""
    n = len(vectors)
    if n == 0 or k <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    q = np.asarray(query, np.float32)
    qn = float(np.linalg.norm(q))
    if qn == 0:
        raise QueryError("the query vector is all zeros")
    v = np.asarray(vectors, np.float32)
    norms = np.sqrt(np.einsum("ij,ij->i", v, v))
    with np.errstate(invalid="ignore", divide="ignore"):
        rough = 1.0 - (v @ (q / qn)) / norms
    rough[norms == 0] = np.inf
    valid = int(np.isfinite(rough).sum())
    k = min(k, valid)
    if k == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    kth = np.partition(rough, k - 1)[k - 1]
    candidates = np.flatnonzero(rough <= kth + RERANK_MARGIN)
    exact = cosine_distances(v[candidates], q)
    names = np.asarray(ids(candidates), dtype=object) if callable(ids) else np.asarray(ids, dtype=object)[candidates]
    order = sorted(range(len(candidates)), key=lambda i: (exact[i], names[i]))[:k]
    return candidates[order], exact[order]


def _matrix(column) -> np.ndarray:
    """An arrow vector column (fixed-size or variable lists) as an (n, d) float32 array."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if len(column) == 0:
        return np.zeros((0, 0), np.float32)
    if pa.types.is_fixed_size_list(column.type):
        dim = column.type.list_size
        return column.flatten().to_numpy(zero_copy_only=False).reshape(-1, dim)
    rows = column.to_pylist()
    dim = max((len(r) for r in rows if r), default=0)
    out = np.zeros((len(rows), dim), np.float32)
    for i, row in enumerate(rows):
        if row:
            out[i] = row
    return out


@dataclasses.dataclass(frozen=True)
class Like:
    """A stored item whose vector is the query: `item` in `table` (default: the queried table)."""

    item: str
    table: str | None = None


def query(
    store: Store,
    table: str | None = None,
    *,
    modality: str | None = None,
    filters: Filters = Filters(),
    vector: np.ndarray | None = None,
    like: Like | str | None = None,
    k: int | None = 10,
    encoder: str | None = None,
    version: int | str | None = None,
    approximate: bool = False,
    with_vectors: bool = False,
    with_text: bool = True,
    limit: int | None = None,
):
    """Rows of an embedding table matching `filters`, as a polars frame. With a query vector
    (`vector`, or the stored vector of `like`'s item, itself left out) the `k` nearest rows by
    cosine distance (None: every matching row), nearest first, with a `distance` column; without
    one, the matching rows by item id (`limit` of them, default all). Rows show item id, speaker,
    emotion or label, split, the text where there is one (`with_text`) and the vector with
    `with_vectors`. `encoder` chooses whose rows (default: the only encoder the table holds);
    `version` reads the table as of an earlier version or tag."""
    import polars as pl

    name, like = resolve_table(table, modality), Like(like) if isinstance(like, str) else like
    source = _Source(store, name, version, filters.split)
    # A named encoder and the speakers are checked only when the answer lacks them (cheaper).
    chosen = encoder if encoder is not None and like is None and "encoder" in source.columns \
        else _choose_encoder(source, encoder)
    if like is not None:
        _check_speakers(source, filters, chosen)
    where = _predicate(source, filters, chosen)
    exclude = None
    if like is not None:
        if vector is not None:
            raise QueryError("give a query vector or an item to search like, not both")
        vector, exclude = like_vector(store, like, name, chosen, version)
    item = item_column(source.columns)
    shown = _shown_columns(source.columns)
    wanted = shown + ([VECTOR] if with_vectors else [])
    if vector is None:
        rows = pl.from_arrow(source.read(where, wanted)).sort(item)
        rows = rows if limit is None else rows.head(limit)
    else:
        if exclude is not None:
            where = " AND ".join(p for p in (where, f"{item} != {sql_quote(exclude)}") if p)
        vector = np.asarray(vector, np.float32)
        if approximate:
            k = k if k is not None else source.dataset.count_rows(where) if source.lance else 0
            rows = _approximate(source, where, vector, k, shown, with_vectors)
        else:
            rows = _exact(source, name, where, vector, k, wanted)
    present = set(rows["speaker"].to_list()) if "speaker" in rows.columns else set()
    if rows.is_empty() or not set(filters.speakers) <= present:
        _choose_encoder(source, encoder)
        _check_speakers(source, filters, chosen)
    if with_text:
        rows = add_text(store, rows)
    return rows


def _exact(source: _Source, name: str, where: str, vector: np.ndarray, k: int | None, wanted: list[str]):
    """The `k` rows nearest to `vector` (all matching rows when None) by exact cosine distance,
    nearest first, with their `distance`."""
    import polars as pl

    item = item_column(source.columns)
    if source.lance:  # only the vectors of every matching row; the rest for the answer's rows
        found = source.read(where, [VECTOR], row_ids=True)
        row_ids = found.column("_rowid").to_numpy()
        ids = lambda index: source.take(row_ids[index], [item]).column(item).to_pylist()  # noqa: E731
    else:
        found = source.read(where, list(dict.fromkeys([*_shown_columns(source.columns), VECTOR])))
        ids = found.column(item).to_pylist()
    matrix = _matrix(found.column(VECTOR))
    if matrix.shape[0] and matrix.shape[1] != len(vector):
        raise QueryError(f"{name} holds {matrix.shape[1]}-d vectors; the query is {len(vector)}-d")
    index, distances = top_k(matrix, ids, vector, k if k is not None else found.num_rows)
    kept = source.take(row_ids[index], wanted) if source.lance else \
        found.take(pa.array(index, pa.int64())).select(wanted)
    return pl.from_arrow(kept).with_columns(pl.Series(DISTANCE, distances, dtype=pl.Float64))


def _shown_columns(columns: Sequence[str]) -> list[str]:
    wanted = [item_column(columns), "id", "corpus", "speaker", label_column(columns), "split",
              "status", "encoder"]
    return [c for c in dict.fromkeys(w for w in wanted if w) if c in columns]


def like_vector(store: Store, like: Like, target: str, encoder: str | None,
                version: int | str | None = None) -> tuple[np.ndarray, str | None]:
    """The stored vector of `like.item` (in `like.table`, default `target`) and the item to leave
    out of the answer (itself, when it is in the queried table). Across tables, the item's
    encoder must be the queried rows' encoder."""
    name = like.table or target
    source = _Source(store, name, version if name == target else None)
    if like.table and like.table != target and encoder is None:
        raise QueryError(f"{target} has no encoder column to match against {like.table}")
    item = item_column(source.columns)
    where = f"{item} = {sql_quote(like.item)}"
    if encoder is not None and "encoder" in source.columns:
        where += f" AND encoder = {sql_quote(encoder)}"
    if "status" in source.columns:
        where += " AND status = 'ok'"
    found = source.read(where, [item, VECTOR])
    if found.num_rows == 0:
        held = "" if encoder is None else f" of encoder {encoder}"
        raise QueryError(f"no item {like.item!r} with an ok vector{held} in {name}")
    matrix = _matrix(found.column(VECTOR))
    if found.num_rows > 1 and not np.allclose(matrix, matrix[0]):
        raise QueryError(f"item {like.item!r} has {found.num_rows} different vectors in {name}: narrow it "
                         f"(--corpus, --encoder)")
    return matrix[0], (like.item if name == target else None)


def add_text(store: Store, rows):
    """`rows` with a `text` column where there is one: MELD utterances' text from
    `meld_utterances`, a text corpus item's from its items table."""
    import polars as pl

    if rows.is_empty() or "id" not in rows.columns:
        return rows
    texts = None
    if "corpus" not in rows.columns:
        utterances = store.parquet(UTTERANCES)
        if utterances.exists():
            texts = pl.from_arrow(utterances.read_arrow().select(["id", "text"])).unique("id")
            rows = rows.join(texts, on="id", how="left", maintain_order="left")
    else:
        frames = []
        for corpus in rows["corpus"].unique().to_list():
            try:
                items = store.parquet(f"{corpus}_items")
            except SchemaError:
                continue
            if items.exists():
                frames.append(pl.from_arrow(items.read_arrow().select(["corpus", "id", "text"])))
        if frames:
            texts = pl.concat(frames).unique(["corpus", "id"])
            rows = rows.join(texts, on=["corpus", "id"], how="left", maintain_order="left")
    if "text" not in rows.columns:
        return rows
    if DISTANCE in rows.columns:  # keep the distance last
        rows = rows.select([c for c in rows.columns if c != DISTANCE] + [DISTANCE])
    return rows


# -- in memory ---------------------------------------------------------------------------------
class Searcher:
    """Exact search over one table's ok rows of one encoder held in memory, for many queries in
    one process: the rows are read once (at `version`, default the latest), kept grouped by
    speaker so a speaker's vectors are one contiguous block, and searched with the same ordering
    as `query` (distance, then id). A query on a table that has moved on reloads it first,
    unless the searcher was pinned to a version. Memory: the vectors (rows x dim x 4 bytes)."""

    def __init__(self, store: Store, table: str, *, encoder: str | None = None, version: int | str | None = None):
        self.store, self.table, self.pinned = store, resolve_table(table), version
        self.encoder = encoder
        self._load()

    def _load(self) -> None:
        import polars as pl

        source = _Source(self.store, self.table, self.pinned)
        self.encoder = _choose_encoder(source, self.encoder)
        self.version = source.dataset.version if source.lance else None
        self._handle = source.handle if source.lance else None  # one handle: seeing new commits is cheap
        self.item = item_column(source.columns)
        shown = _shown_columns(source.columns)
        found = source.read(_predicate(source, Filters(), self.encoder), list(dict.fromkeys([*shown, VECTOR])))
        rows = pl.from_arrow(found.select(shown))
        names = rows["speaker"].fill_null("").to_numpy().astype(str) if "speaker" in shown else \
            np.full(rows.height, "")
        order = np.argsort(names, kind="stable")  # each speaker's rows one block
        self.rows = rows.select(pl.all().gather(order))
        self.vectors = _matrix(found.column(VECTOR))[order]
        del found
        self.norms = np.sqrt(np.einsum("ij,ij->i", self.vectors, self.vectors))
        self.ids = self.rows[self.item].to_numpy()
        names = names[order]
        starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]]) if len(names) else np.zeros(0, np.int64)
        ends = np.r_[starts[1:], len(names)]
        self.blocks = {str(names[s]): (int(s), int(e)) for s, e in zip(starts, ends)}

    def _current(self) -> None:
        if self.pinned is None and self._handle is not None and self._handle.version != self.version:
            self._load()

    def nearest(self, vector, k: int = 10, filters: Filters = Filters()):
        """The `k` rows nearest `vector` among those matching `filters` (speakers, emotion,
        split, corpus; `where` and `dialogue` are `query`'s), as `query` answers."""
        import polars as pl

        if filters.where or filters.dialogue is not None or filters.status not in ("ok",):
            raise QueryError("the in-memory searcher holds ok rows and filters by speaker, emotion, split and corpus")
        self._current()
        if filters.speakers:
            missing = [s for s in filters.speakers if s not in self.blocks]
            if missing:
                by_rows = sorted(self.blocks.items(), key=lambda item: (item[1][0] - item[1][1], item[0]))
                listed = ", ".join(f"{s} ({e - b})" for s, (b, e) in by_rows)
                raise QueryError(f"no speaker {', '.join(map(repr, missing))} in {self.table}; speakers (rows): {listed}")
            spans = [self.blocks[s] for s in dict.fromkeys(filters.speakers)]
        else:
            spans = [(0, len(self.vectors))]
        q = np.asarray(vector, np.float32)
        qn = float(np.linalg.norm(q))
        if qn == 0:
            raise QueryError("the query vector is all zeros")
        label = label_column(self.rows.columns)
        masks = [(c, v) for c, v in ((label, filters.emotion), ("split", filters.split), ("corpus", filters.corpus))
                 if v is not None]
        parts, offsets = [], []
        for begin, end in spans:
            with np.errstate(invalid="ignore", divide="ignore"):
                rough = 1.0 - (self.vectors[begin:end] @ (q / qn)) / self.norms[begin:end]
            rough[self.norms[begin:end] == 0] = np.inf
            for column, value in masks:
                if column is None or column not in self.rows.columns:
                    raise QueryError(f"{self.table} has no {column or 'label'} column")
                rough[self.rows[column][begin:end].to_numpy() != value] = np.inf
            parts.append(rough)
            offsets.append(np.arange(begin, end))
        rough = np.concatenate(parts) if parts else np.zeros(0)
        rows = np.concatenate(offsets) if offsets else np.zeros(0, np.int64)
        k = min(k, int(np.isfinite(rough).sum()))
        if k <= 0:
            return self.rows.head(0).with_columns(pl.lit(None, pl.Float64).alias(DISTANCE))
        kth = np.partition(rough, k - 1)[k - 1]
        candidates = rows[rough <= kth + RERANK_MARGIN]
        exact = cosine_distances(self.vectors[candidates], q)
        order = sorted(range(len(candidates)), key=lambda i: (exact[i], self.ids[candidates[i]]))[:k]
        chosen = candidates[order]
        return self.rows[chosen.tolist()].with_columns(pl.Series(DISTANCE, exact[order], dtype=pl.Float64))


# -- approximate search ------------------------------------------------------------------------
def build_vector_index(store: Store, table: str, *, partitions: int | None = None,
                       sub_vectors: int | None = None) -> int:
    """An IVF_PQ cosine index on `table`'s vectors (for `approximate=True` only); returns the
    Lance version that holds it. Later writes keep it covering new rows (`ensure_indexes`)."""
    handle = store.lance(table)
    dataset = handle.table().to_lance()
    rows = dataset.count_rows()
    dim = dataset.schema.field(VECTOR).type.list_size
    partitions = partitions or max(1, min(256, int(np.sqrt(rows))))
    sub_vectors = sub_vectors or next(s for s in (dim // 8, dim // 4, dim // 2, dim) if dim % s == 0)
    dataset.create_index(VECTOR, index_type="IVF_PQ", metric="cosine", num_partitions=partitions,
                         num_sub_vectors=sub_vectors, replace=True)
    return handle.version


def _approximate(source: _Source, where, vector, k, shown, with_vectors):
    import polars as pl

    if not source.lance:
        raise QueryError(f"{source.name} is Parquet: it has no vector index (drop --approximate)")
    if not any(VECTOR in d.field_names for d in source.dataset.describe_indices()):
        raise QueryError(f"{source.name} has no vector index: build one first (storage.query.build_vector_index)")
    found = source.dataset.to_table(
        columns=shown + ([VECTOR] if with_vectors else []), filter=where, prefilter=True,
        nearest={"column": VECTOR, "q": vector, "k": k, "metric": "cosine", "nprobes": 20, "refine_factor": 5},
    )
    rows = pl.from_arrow(found).rename({"_distance": DISTANCE})
    return rows.select([c for c in rows.columns if c != DISTANCE] + [DISTANCE])


# -- speakers ----------------------------------------------------------------------------------
def speaker_counts(store: Store, table: str = "speaker_embeddings", *, encoder: str | None = None,
                   filters: Filters = Filters(), version: int | str | None = None):
    """One row per speaker: rows in all, per split and per emotion (or label), most rows first."""
    import polars as pl

    source = _Source(store, table, version, filters.split)
    _need(source, "speaker", "speakers")
    chosen = _choose_encoder(source, encoder) if "encoder" in source.columns else None
    label = label_column(source.columns)
    columns = [c for c in ("speaker", "split", label) if c and c in source.columns]
    rows = pl.from_arrow(source.read(_predicate(source, filters, chosen), columns)).drop_nulls("speaker")
    out = rows.group_by("speaker").len("rows")
    for column in columns[1:]:
        wide = rows.with_columns(pl.col(column).fill_null("(none)")).pivot(
            on=column, index="speaker", values=column, aggregate_function="len", sort_columns=True)
        wide = wide.rename({c: f"{column}:{c}" if column == label and c in SPLITS else c
                            for c in wide.columns if c != "speaker"})
        if column == "split":  # train, dev, test, then any other
            named = sorted(wide.columns[1:], key=lambda c: (SPLITS.index(c) if c in SPLITS else len(SPLITS), c))
            wide = wide.select("speaker", *named)
        out = out.join(wide, on="speaker", how="left")
    out = out.fill_null(0)
    return out.sort(["rows", "speaker"], descending=[True, False])


def speaker_centroids(store: Store, table: str = "speaker_embeddings", *, encoder: str | None = None,
                      filters: Filters = Filters(), min_rows: int = 20, version: int | str | None = None,
                      max_speakers: int | None = None) -> tuple[list[str], np.ndarray, list[int]]:
    """(speakers, centroids (one unit row each), rows per speaker) of the speakers with at least
    `min_rows` ok rows of one encoder; each centroid is the mean of the speaker's unit vectors."""
    source = _Source(store, table, version, filters.split)
    _need(source, "speaker", "speakers")
    chosen = _choose_encoder(source, encoder)
    found = source.read(_predicate(source, filters, chosen), ["speaker", VECTOR])
    speakers = np.asarray(found.column("speaker").to_pylist(), dtype=object)
    matrix = _matrix(found.column(VECTOR)).astype(np.float64)
    norms = np.linalg.norm(matrix, axis=1) if len(matrix) else np.zeros(0)
    keep = (norms > 0) & np.array([s is not None for s in speakers], bool)
    speakers, matrix = speakers[keep], matrix[keep] / norms[keep, None]
    names, counts = np.unique(speakers.astype(str), return_counts=True) if len(speakers) else ([], [])
    chosen_names = [(int(c), str(n)) for n, c in zip(names, counts) if c >= min_rows]
    chosen_names.sort(key=lambda cn: (-cn[0], cn[1]))
    if max_speakers is not None:
        chosen_names = chosen_names[:max_speakers]
    result = []
    for _, speaker in chosen_names:
        centre = matrix[speakers == speaker].mean(axis=0)
        result.append(centre / (np.linalg.norm(centre) or 1.0))
    dim = matrix.shape[1] if matrix.ndim == 2 else 0
    return ([s for _, s in chosen_names], np.array(result).reshape(len(result), dim),
            [c for c, _ in chosen_names])


def centroid_similarity(store: Store, table: str = "speaker_embeddings", **options):
    """The cosine similarity between speakers' centroids (speakers with at least `min_rows` ok
    rows): a square polars frame, one row and one column per speaker, most rows first."""
    import polars as pl

    speakers, centroids, _ = speaker_centroids(store, table, **options)
    similarity = centroids @ centroids.T if len(speakers) else np.zeros((0, 0))
    return pl.DataFrame({"speaker": speakers, **{s: similarity[:, i] for i, s in enumerate(speakers)}},
                        schema={"speaker": pl.String, **{s: pl.Float64 for s in speakers}})


def confused_speakers(similarity, top: int | None = None):
    """The pairs of a `centroid_similarity` frame, most similar first: speaker, other, similarity."""
    import polars as pl

    speakers = similarity["speaker"].to_list()
    pairs = [(a, b, float(similarity[b][i])) for i, a in enumerate(speakers) for b in speakers[i + 1:]]
    pairs.sort(key=lambda p: (-p[2], p[0], p[1]))
    frame = pl.DataFrame(pairs, schema={"speaker": pl.String, "other": pl.String, "similarity": pl.Float64},
                         orient="row")
    return frame.head(top) if top else frame


# -- predictions -------------------------------------------------------------------------------
def predictions(store: Store, cell: str | None = None, *, wrong: bool = False, filters: Filters = Filters()):
    """The training bench's stored predictions joined with the utterances (speaker, dialogue,
    text): one row per (cell, utterance), `correct` saying whether the prediction is the label.
    `cell` is a cell id or a pattern (`emotion.official.*.s0`); `wrong` keeps the misclassified;
    `filters.emotion` matches the label."""
    import polars as pl

    table = store.parquet(PREDICTIONS)
    cells = table.partitions()
    if not cells:
        raise QueryError(f"no predictions in {store.root}: train cells first (`emostore update 'group:training'`)")
    chosen = [c for c in cells if fnmatch.fnmatchcase(c, cell)] if cell else cells
    if not chosen:
        shown = ", ".join(cells[:20]) + (f", ... ({len(cells)} cells)" if len(cells) > 20 else "")
        raise QueryError(f"no cell {cell!r}; cells: {shown}")
    frame = pl.concat([pl.from_arrow(table.read_arrow(c)) for c in chosen])
    utterances = store.parquet(UTTERANCES)
    about = (pl.from_arrow(utterances.read_arrow().select(["id", "speaker", "dialogue_id", "text"])).unique("id")
             if utterances.exists() else pl.DataFrame(schema={"id": pl.String, "speaker": pl.String,
                                                              "dialogue_id": pl.Int32, "text": pl.String}))
    frame = frame.join(about, on="id", how="left", maintain_order="left").with_columns(
        (pl.col("label") == pl.col("predicted")).alias("correct"),
        pl.col("probabilities").list.max().alias("confidence"),
    )
    if wrong:
        frame = frame.filter(~pl.col("correct"))
    if filters.speakers:
        known = frame.group_by("speaker").len().sort("len", descending=True)
        missing = sorted(set(filters.speakers) - set(known["speaker"].drop_nulls()))
        if missing:
            listed = ", ".join(f"{s} ({n})" for s, n in known.drop_nulls("speaker").iter_rows())
            raise QueryError(f"no speaker {', '.join(map(repr, missing))} in these predictions; speakers (rows): {listed}")
        frame = frame.filter(pl.col("speaker").is_in(list(filters.speakers)))
    if filters.emotion is not None:
        frame = frame.filter(pl.col("label") == filters.emotion)
    if filters.split is not None:
        frame = frame.filter(pl.col("split") == filters.split)
    if filters.dialogue is not None:
        frame = frame.filter(pl.col("dialogue_id") == int(filters.dialogue))
    frame = filter_frame(frame, filters.where)
    return frame.select("cell", "id", "split", "speaker", "label", "predicted", "confidence", "correct",
                        "text").sort(["cell", "id"])
