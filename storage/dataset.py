"""The training bench's dataset: MELD utterances joined with stored feature rows, in memory.

`TrainingData` is what the loop (`models/train.py`) consumes: one row per utterance, ordered by
split, dialogue and utterance, each modality a dense float32 matrix with a presence mask (a
modality an utterance lacks is a zero row and a False bit, never a dropped utterance).
`load_training_data` builds it from `meld_utterances` and each source's rows at one fingerprint.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from storage.labels import EMOTIONS
from storage.lance import LanceTable
from storage.schemas import VECTOR, SchemaError
from storage.status import Status

if TYPE_CHECKING:
    from storage import Store

SPLITS: tuple[str, ...] = ("train", "dev", "test")  # the order rows come in
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")  # MELD's sentiment labels
TARGETS: dict[str, tuple[str, ...]] = {"emotion": EMOTIONS, "sentiment": SENTIMENTS}

# modality -> the table its vectors are read from. Any Lance table with id, split, fingerprint,
# status and a fixed-size `vector` serves a modality, as does a Parquet table partitioned by
# split with id, fingerprint, status and a list<float32> `vector` (speaking_faces).
FEATURE_TABLES: dict[str, str] = {
    "text": "text_embeddings",
    "whisper_text": "whisper_text_embeddings",
    "speaker": "speaker_embeddings",
    "asr": "asr_embeddings",
    "face": "speaking_faces",
}

# why an utterance of meld_utterances is not in the data (keys of counts["left_out"][split])
NO_LABEL = "no usable label"  # its target label is not one of the target's classes
NO_POSITION = "no dialogue position"  # a CSV row whose Dialogue_ID or Utterance_ID is not a number
NO_FEATURE = "no feature row ok"  # no chosen source has an ok row for it

_MELD_COLUMNS = ["id", "split", "dialogue_id", "utterance_id", "speaker", "emotion", "sentiment"]


@dataclasses.dataclass(frozen=True)
class FeatureSource:
    """Where one modality's vectors come from: a table, read at one fingerprint."""

    modality: str  # the bench's name: text, whisper_text, speaker, asr, face
    table: str  # the store table, e.g. text_embeddings
    fingerprint: str  # rows of this fingerprint only
    encoder: str = ""  # the model's identity (same across tables the model wrote)
    label: str = ""  # backend:model, for people


@dataclasses.dataclass
class TrainingData:
    """N utterances in dialogue order, with their features, labels and speakers."""

    ids: np.ndarray  # (N,) str: `{split}/dia{D}_utt{U}`
    split: np.ndarray  # (N,) str
    dialogue: np.ndarray  # (N,) str: `{split}/dia{D}`
    features: dict[str, np.ndarray]  # modality -> (N, D_m) float32, zero where absent
    present: dict[str, np.ndarray]  # modality -> (N,) bool
    target: str  # emotion | sentiment
    classes: tuple[str, ...]  # the target's class names; labels index them
    labels: np.ndarray  # (N,) int64
    speaker: np.ndarray  # (N,) str: the speaker's name as labelled ("" where none)
    speaker_id: np.ndarray  # (N,) int64: index in the train split's speakers, 0 = unknown
    sources: dict[str, FeatureSource]
    counts: dict[str, Any]  # utterances used, masked per modality, left out with why
    speakers: tuple[str, ...] = ()  # the train speakers: speaker_id i > 0 is speakers[i - 1]

    @property
    def modalities(self) -> dict[str, int]:
        """modality -> vector size, in a fixed order."""
        return {m: int(v.shape[1]) for m, v in self.features.items()}

    @property
    def n_speakers(self) -> int:
        return max(len(self.speakers), int(self.speaker_id.max(initial=0))) + 1

    def dialogues(self, split: str) -> list[np.ndarray]:
        """Row indices of each dialogue of `split`, utterances in order, dialogues in order."""
        rows = np.flatnonzero(self.split == split)
        if rows.size == 0:
            return []
        names = self.dialogue[rows]
        starts = np.flatnonzero(np.r_[True, names[1:] != names[:-1]])
        return np.split(rows, starts[1:])

    def splits(self) -> list[str]:
        return [s for s in SPLITS if (self.split == s).any()]

    def take(self, rows: np.ndarray) -> TrainingData:
        """The same data restricted to `rows` (indices or a boolean mask), in that order."""
        rows = np.flatnonzero(rows) if np.asarray(rows).dtype == bool else np.asarray(rows)
        return dataclasses.replace(
            self, ids=self.ids[rows], split=self.split[rows], dialogue=self.dialogue[rows],
            features={m: v[rows] for m, v in self.features.items()},
            present={m: p[rows] for m, p in self.present.items()},
            labels=self.labels[rows], speaker=self.speaker[rows], speaker_id=self.speaker_id[rows])

    def select(self, modalities: Sequence[str]) -> TrainingData:
        """The same data seen through `modalities` only, as `load_training_data` with just those
        sources gives it: an utterance none of them has is left out (and counted)."""
        chosen = list(modalities)
        unknown = [m for m in chosen if m not in self.features]
        if unknown or not chosen:
            raise ValueError(f"cannot select {chosen}: the data has modalities {list(self.features)}")
        keep = np.logical_or.reduce([self.present[m] for m in chosen])
        rows = np.flatnonzero(keep)
        left_out = {s: dict(why) for s, why in self.counts["left_out"].items()}
        for split in left_out:
            left_out[split][NO_FEATURE] += int((~keep & (self.split == split)).sum())
        present = {m: self.present[m][rows] for m in chosen}
        return dataclasses.replace(
            self,
            ids=self.ids[rows], split=self.split[rows], dialogue=self.dialogue[rows],
            features={m: self.features[m][rows] for m in chosen}, present=present,
            labels=self.labels[rows], speaker=self.speaker[rows], speaker_id=self.speaker_id[rows],
            sources={m: self.sources[m] for m in chosen},
            counts=_counts(list(left_out), self.split[rows], present, left_out,
                           {m: self.counts["rows_read"][m] for m in chosen},
                           {m: self.counts["rows_ok"][m] for m in chosen}),
        )


def load_training_data(
    store: Store,
    sources: Sequence[FeatureSource],
    target: str = "emotion",
    splits: Sequence[str] = SPLITS,
) -> TrainingData:
    """MELD's utterances of `splits` with each source's vectors at exactly its fingerprint.

    Rows come ordered by split (train, dev, test), dialogue number and utterance number. An
    utterance enters when its `target` label is one of the target's classes and at least one
    source has an `ok` row for it (whatever its meld_utterances status: a split without clips
    still has text); a modality it lacks is a zero vector and a False bit in `present`.
    `speaker_id` indexes the sorted speakers of meld_utterances' train split (1-based; 0 = a
    speaker not among them, or none), so it does not depend on the sources, target or splits.
    `counts`: utterances used per split, masked per modality and split, left out per split and
    why (NO_LABEL, NO_POSITION, NO_FEATURE), and rows read (and ok) per source.

    Raises ValueError for an unknown target or split, a table that is not stored, a source with
    no row (or no ok row) of its fingerprint, vectors of several sizes in one source, and an id
    with two ok rows of different vectors at one fingerprint (stale rows; one of identical
    vectors is kept). A non-ok row beside an ok one of the same id is ignored.
    """
    splits = _checked(target, splits, sources)
    classes = TARGETS[target]
    meld = _read_meld(store, splits)
    usable = pl.col(target).is_in(list(classes)).fill_null(False)
    placed = pl.col("dialogue_id").is_not_null() & pl.col("utterance_id").is_not_null()
    meld = meld.with_columns(
        pl.when(~usable).then(pl.lit(NO_LABEL)).when(~placed).then(pl.lit(NO_POSITION))
        .otherwise(pl.lit(None, pl.String)).alias("_out")
    )
    candidates = meld.filter(pl.col("_out").is_null())
    read = {s.modality: _read_source(store, s, splits) for s in sources}
    index = {m: r.index_of(candidates["id"]) for m, r in read.items()}
    keep = np.logical_or.reduce([i >= 0 for i in index.values()])
    rows = np.flatnonzero(keep)
    used = candidates[rows]

    left_out = _left_out(splits, meld, candidates, keep)
    features, present = _gather(read, index, rows)
    speakers = _train_speakers(meld if "train" in splits else _read_meld(store, ["train"], required=False))
    speaker = used["speaker"].fill_null("")
    split = _strings(used["split"])
    return TrainingData(
        ids=_strings(used["id"]),
        split=split,
        dialogue=_strings(used.select(pl.format("{}/dia{}", "split", "dialogue_id")).to_series()),
        features=features,
        present=present,
        target=target,
        classes=classes,
        labels=used[target].replace_strict(classes, range(len(classes)), return_dtype=pl.Int64).to_numpy(),
        speaker=_strings(speaker),
        speaker_id=speaker.replace_strict(speakers, range(1, len(speakers) + 1), default=0,
                                          return_dtype=pl.Int64).to_numpy(),
        sources={s.modality: s for s in sources},
        counts=_counts(splits, split, present, left_out, {m: r.rows_read for m, r in read.items()},
                       {m: r.rows_ok for m, r in read.items()}),
        speakers=tuple(speakers),
    )


def _gather(read: dict, index: dict[str, np.ndarray], rows: np.ndarray) -> tuple[dict, dict]:
    """Each source's vectors for the used rows; a modality an utterance lacks is a zero vector
    and False in `present`."""
    features, present = {}, {}
    for m, r in read.items():
        at = index[m][rows]
        present[m] = at >= 0
        features[m] = np.zeros((rows.size, r.vectors.shape[1]), np.float32)
        features[m][present[m]] = r.vectors[at[present[m]]]
    return features, present


def _left_out(splits: list[str], meld, candidates, keep: np.ndarray) -> dict[str, dict[str, int]]:
    """Utterances left out per split and why: no label, no position, or no source's feature."""
    left_out = {s: {NO_LABEL: 0, NO_POSITION: 0, NO_FEATURE: 0} for s in splits}
    for split, why, n in meld.filter(pl.col("_out").is_not_null()).group_by("split", "_out").len().iter_rows():
        left_out[split][why] = n
    for split, n in candidates.filter(pl.Series(~keep)).group_by("split").len().iter_rows():
        left_out[split][NO_FEATURE] = n
    return left_out


def _checked(target: str, splits: Sequence[str], sources: Sequence[FeatureSource]) -> list[str]:
    """`splits` in SPLITS order, once `target`, `splits` and `sources` are known to be valid."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or not splits:
        raise ValueError(f"unknown splits {unknown or list(splits)}; expected some of {', '.join(SPLITS)}")
    modalities = [s.modality for s in sources]
    if not sources or len(set(modalities)) != len(modalities):
        raise ValueError(f"sources must name each modality once, got {modalities}")
    return [s for s in SPLITS if s in splits]


def read_source(store: Store, source: FeatureSource, splits: Sequence[str] = SPLITS) -> tuple[list[str], np.ndarray]:
    """(ids, (M, D) float32 vectors): a source's ok rows at its fingerprint in `splits`, one per
    id; the errors of `load_training_data` for a missing table, fingerprint or stale rows."""
    found = _read_source(store, source, list(splits))
    return found.ids.to_list(), found.vectors


def meld_rows(store: Store, splits: Sequence[str] = SPLITS) -> pl.DataFrame:
    """meld_utterances' stored splits among `splits` (id, split, dialogue_id, utterance_id,
    speaker, emotion, sentiment), in split, dialogue, utterance order."""
    return _read_meld(store, [s for s in SPLITS if s in splits], required=False)


@dataclasses.dataclass(frozen=True)
class _SourceRows:
    """One source's ok rows at its fingerprint: unique ids and their (M, D) vectors."""

    ids: pl.Series
    vectors: np.ndarray
    rows_read: int  # every row of the fingerprint in the splits read, whatever its status
    rows_ok: int

    def index_of(self, ids: pl.Series) -> np.ndarray:
        """(N,) int64: the row of each id in `vectors`, -1 where the source has no ok row."""
        return ids.replace_strict(self.ids, np.arange(len(self.ids)), default=-1,
                                  return_dtype=pl.Int64).to_numpy()


def _read_meld(store: Store, splits: list[str], required: bool = True) -> pl.DataFrame:
    """The latest version of each split of meld_utterances, in split, dialogue, utterance order."""
    table = store.parquet("meld_utterances")
    stored = [s for s in splits if table.has(s)]
    if not stored and required:
        raise ValueError(f"meld_utterances holds none of the splits {', '.join(splits)} in {store.root}")
    parts = [table.read_arrow(s) for s in stored] or [table.schema.schema.empty_table()]
    frame = pl.from_arrow(pa.concat_tables([p.select(_MELD_COLUMNS) for p in parts]))
    order = pl.col("split").replace_strict(SPLITS, range(len(SPLITS)), return_dtype=pl.Int8)
    return frame.sort(order, "dialogue_id", "utterance_id", "id", nulls_last=True)


def _train_speakers(meld: pl.DataFrame) -> list[str]:
    """The distinct named speakers of the train split, sorted."""
    names = meld.filter(pl.col("split") == "train")["speaker"].unique().to_list()
    return sorted(n for n in names if n)


def _read_source(store: Store, source: FeatureSource, splits: list[str]) -> _SourceRows:
    try:
        table = store.table(source.table)
    except SchemaError as exc:
        raise ValueError(f"source {source.modality}: {exc}") from None
    where = f"{source.table} at fingerprint {source.fingerprint!r}"
    if not table.exists():
        raise ValueError(f"source {source.modality}: {source.table} is not stored in {store.root}")
    if VECTOR not in table.schema.schema.names:
        raise ValueError(f"source {source.modality}: {source.table} has no {VECTOR!r} column")
    if isinstance(table, LanceTable):
        rows, held = _lance_rows(table, source.fingerprint, splits)
    else:
        rows, held = _parquet_rows(table, source.fingerprint, splits)
    if rows is None or rows.num_rows == 0:
        holds = f"it holds fingerprints {', '.join(sorted(held))}" if held else "it holds no rows"
        raise ValueError(f"source {source.modality}: no row of {where} in splits "
                         f"{', '.join(splits)}; {holds}")
    return _ok_rows(rows, where)


def _lance_rows(table: LanceTable, fingerprint: str, splits: list[str]) -> tuple[pa.Table, set[str]]:
    in_splits = f"split IN ({', '.join(map(_sql_string, splits))})"
    rows = table.read_arrow(where=f"fingerprint = {_sql_string(fingerprint)} AND {in_splits}",
                            columns=["id", "status", VECTOR])
    held: set[str] = set()
    if rows.num_rows == 0:  # only to say what the table does hold
        held = set(pc.unique(table.read_arrow(where=in_splits, columns=["fingerprint"])
                             .column("fingerprint")).to_pylist())
    return rows, held


def _parquet_rows(table, fingerprint: str, splits: list[str]) -> tuple[pa.Table | None, set[str]]:
    """Of each split, the newest version written with `fingerprint` (else the latest), its rows
    of that fingerprint."""
    parts, held = [], set()
    for partition in [p for s in splits for p in table.parts_of(s)] if table.schema.partition_by else [None]:
        versions = table.versions(partition)
        if not versions:
            continue
        held.update(v.fingerprint for v in versions if v.fingerprint)
        chosen = next((v for v in reversed(versions) if v.fingerprint == fingerprint), versions[-1])
        rows = table.read_arrow(partition, chosen.version)
        rows = rows.filter(pc.is_in(rows.column("split"), pa.array(splits)))
        held.update(pc.unique(rows.column("fingerprint")).to_pylist())
        rows = rows.filter(pc.equal(rows.column("fingerprint"), fingerprint))
        parts.append(rows.select(["id", "status", VECTOR]))
    return (pa.concat_tables(parts) if parts else None), held


def _ok_rows(rows: pa.Table, where: str) -> _SourceRows:
    """The ok rows as unique ids and an (M, D) float32 matrix."""
    ok = rows.filter(pc.equal(rows.column("status"), str(Status.OK)))
    if ok.num_rows == 0:
        raise ValueError(f"{where} holds {rows.num_rows} rows and none is ok: nothing to learn from")
    column = ok.column(VECTOR).combine_chunks()
    if column.null_count:
        raise ValueError(f"{where}: {column.null_count} ok rows have no vector")
    if pa.types.is_fixed_size_list(column.type):
        dim = column.type.list_size
    else:
        sizes = pc.unique(pc.list_value_length(column)).to_pylist()
        if len(sizes) != 1:
            raise ValueError(f"{where}: ok rows have vectors of several sizes {sorted(sizes)}")
        dim = sizes[0]
    vectors = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    vectors = vectors.reshape(-1, dim)
    ids = pl.from_arrow(ok.column("id")).alias("id")
    repeated = ids.is_duplicated()
    if repeated.any():
        first = _check_duplicates(ids, repeated.to_numpy(), vectors, where)
        ids, vectors = ids.filter(first), vectors[first.to_numpy()]
    return _SourceRows(ids=ids, vectors=vectors, rows_read=rows.num_rows, rows_ok=ok.num_rows)


def _check_duplicates(ids: pl.Series, repeated: np.ndarray, vectors: np.ndarray, where: str) -> pl.Series:
    """Several ok rows of one id (an input changed and the old row stayed): harmless when their
    vectors agree (the first is kept, mask returned), an error when they differ."""
    groups: dict[str, list[int]] = {}
    for i in np.flatnonzero(repeated):
        groups.setdefault(ids[int(i)], []).append(int(i))
    differ = sorted(id_ for id_, at in groups.items()
                    if not all(np.array_equal(vectors[at[0]], vectors[j]) for j in at[1:]))
    if differ:
        shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
        raise ValueError(f"{where}: {len(differ)} ids have several ok rows with different vectors "
                         f"({shown}); delete the stale rows (or rematerialize the asset) first")
    return ids.is_first_distinct()


def _counts(splits: list[str], split: np.ndarray, present: dict[str, np.ndarray],
            left_out: dict[str, dict[str, int]], rows_read: dict[str, int],
            rows_ok: dict[str, int]) -> dict[str, Any]:
    """What a person wants to see of a load: utterances used and masked per split, left out
    with why, rows read per source."""
    return {
        "utterances": {s: int((split == s).sum()) for s in splits},
        "masked": {m: {s: int((~p & (split == s)).sum()) for s in splits} for m, p in present.items()},
        "left_out": left_out,
        "rows_read": dict(rows_read),
        "rows_ok": dict(rows_ok),
    }


def _strings(series: pl.Series) -> np.ndarray:
    return np.asarray(series.to_list(), dtype=str)


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- corpus items: the unimodal corpora's embedding tables ---------------------------------------
CORPUS_COLUMNS = ("corpus", "id", "speaker", "fold", "split", "label", "valence", "arousal", "dominance")
ROLES: tuple[str, ...] = SPLITS  # an item's role in one training run: train, dev or test


@dataclasses.dataclass
class CorpusRows:
    """The ok rows of one corpus embedding table for one encoder: items and their vectors.

    `frame` has CORPUS_COLUMNS (speaker and fold null, valence/arousal/dominance null where the
    table or corpus has none), one row per (corpus, id), ordered by corpus and id; `vectors[i]`
    is row i's vector."""

    table: str
    fingerprint: str
    encoder: str
    frame: pl.DataFrame
    vectors: np.ndarray  # (N, D) float32

    def __len__(self) -> int:
        return self.frame.height

    def subset(self, mask: np.ndarray | pl.Series) -> CorpusRows:
        keep = np.asarray(mask, dtype=bool)
        return dataclasses.replace(self, frame=self.frame.filter(pl.Series(keep)), vectors=self.vectors[keep])

    def source(self, modality: str) -> FeatureSource:
        return FeatureSource(modality=modality, table=self.table, fingerprint=self.fingerprint, encoder=self.encoder)


def load_corpus_rows(store: Store, table: str, *, encoder: str | None = None, fingerprint: str | None = None,
                     corpora: Sequence[str] | None = None) -> CorpusRows:
    """The ok rows of `table` (corpus_speaker_embeddings, corpus_face_embeddings,
    text_corpus_embeddings, ...) written by one encoder: at `fingerprint` when given, else the
    rows whose `encoder` is `encoder` (one fingerprint of it; an error names them when there are
    several). `corpora` limits the corpora read.

    Raises ValueError for a table not stored, no ok row of the encoder (saying which encoders
    and corpora the table holds), and an item with two ok rows of different vectors."""
    if (encoder is None) == (fingerprint is None):
        raise ValueError("give exactly one of encoder and fingerprint")
    stored = store.table(table)
    if not isinstance(stored, LanceTable) or not stored.exists():
        raise ValueError(f"{table} is not stored in {store.root} (or is not an embedding table)")
    names = set(stored.schema.schema.names)
    where = [f"fingerprint = {_sql_string(fingerprint)}" if fingerprint else f"encoder = {_sql_string(encoder)}",
             f"status = {_sql_string(str(Status.OK))}"]
    if corpora is not None:
        where.append(f"corpus IN ({', '.join(map(_sql_string, corpora)) or _sql_string('')})")
    columns = [c for c in CORPUS_COLUMNS if c in names] + ["fingerprint", VECTOR]
    rows = stored.read_arrow(where=" AND ".join(where), columns=columns)
    what = f"{table} at {'fingerprint ' + repr(fingerprint) if fingerprint else 'encoder ' + repr(encoder)}"
    if rows.num_rows == 0:
        held = pl.from_arrow(stored.read_arrow(columns=["corpus", "encoder", "fingerprint"]))
        holds = ", ".join(f"{r['encoder'] or r['fingerprint']} ({r['corpus']}: {r['len']})"
                          for r in held.group_by("encoder", "fingerprint", "corpus").len().sort("corpus").iter_rows(named=True))
        raise ValueError(f"no ok row of {what}" + (f" in corpora {', '.join(corpora)}" if corpora is not None else "")
                         + f"; it holds {holds or 'no rows'}")
    fingerprints = sorted(set(pc.unique(rows.column("fingerprint")).to_pylist()))
    if len(fingerprints) > 1:
        raise ValueError(f"{what}: rows of several fingerprints {fingerprints}; name one")
    frame = pl.from_arrow(rows.drop_columns([VECTOR, "fingerprint"]))
    for column in CORPUS_COLUMNS:
        if column not in frame.columns:
            dtype = pl.Int32 if column == "fold" else pl.Float64 if column in ("valence", "arousal", "dominance") else pl.String
            frame = frame.with_columns(pl.lit(None, dtype).alias(column))
    frame = frame.select(CORPUS_COLUMNS).with_row_index("_row")
    keyed = _ok_rows(pa.table({"id": pl.Series(frame.select(pl.format("{}/{}", "corpus", "id"))).to_arrow(),
                               "status": pa.array([str(Status.OK)] * rows.num_rows),
                               VECTOR: rows.column(VECTOR)}), what)
    first = frame.select(pl.format("{}/{}", "corpus", "id").is_first_distinct()).to_series().to_numpy()
    frame = frame.filter(pl.Series(first))
    order = frame.with_row_index("_at").sort("corpus", "id")
    at = order["_at"].to_numpy()
    return CorpusRows(table=table, fingerprint=fingerprints[0], encoder=encoder or "",
                      frame=order.drop("_row", "_at"), vectors=keyed.vectors[at])


def corpus_training_data(rows: CorpusRows, roles: Sequence[str | None], modality: str,
                         classes: Sequence[str] = EMOTIONS) -> TrainingData:
    """`rows` as the bench's TrainingData for one run: each item its own one-utterance dialogue,
    in the split its role names (None: left out), labelled in `classes` (an item labelled outside
    them is left out and counted). The loop then trains on train, selects on dev and scores
    every split present."""
    roles = np.asarray([r if r is not None else "" for r in roles], dtype=object)
    if len(roles) != len(rows):
        raise ValueError(f"{len(roles)} roles for {len(rows)} rows")
    if bad := sorted({r for r in roles if r and r not in ROLES}):
        raise ValueError(f"unknown roles {bad}; expected some of {', '.join(ROLES)}")
    classes = tuple(classes)
    labels = rows.frame["label"].to_list()
    labelled = np.asarray([label in classes for label in labels])
    keep = labelled & (roles != "")
    order = np.argsort(np.asarray([ROLES.index(r) if r else 9 for r in roles]), kind="stable")
    rows_at = order[keep[order]]
    frame = rows.frame[rows_at]
    split = np.asarray(roles[rows_at], dtype=str)
    ids = _strings(frame.select(pl.format("{}/{}", "corpus", "id")).to_series())
    present = {modality: np.ones(len(rows_at), bool)}
    left_out = {s: {NO_LABEL: 0, NO_POSITION: 0, NO_FEATURE: 0} for s in ROLES}
    for r, ok in zip(roles, labelled):
        if r and not ok:
            left_out[r][NO_LABEL] += 1
    return TrainingData(
        ids=ids, split=split, dialogue=ids, features={modality: rows.vectors[rows_at]}, present=present,
        target="emotion", classes=classes,
        labels=np.asarray([classes.index(x) for x in frame["label"].to_list()], dtype=np.int64),
        speaker=_strings(frame["speaker"].fill_null("")), speaker_id=np.zeros(len(rows_at), np.int64),
        sources={modality: rows.source(modality)},
        counts=_counts([s for s in ROLES], split, present, left_out, {modality: len(rows)}, {modality: len(rows)}),
    )


def stratified_share(keys: Sequence[str], labels: Sequence[str | None], fraction: float, salt: str = "") -> np.ndarray:
    """(N,) bool: round(fraction * n) items of each label, those whose sha256(salt + key) is
    smallest. Deterministic, and stable: an item's draw depends on its own key, so adding or
    removing other items moves few others."""
    import hashlib

    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1), not {fraction}")
    chosen = np.zeros(len(keys), bool)
    by_label: dict[str | None, list[tuple[str, int]]] = {}
    for i, (key, label) in enumerate(zip(keys, labels)):
        by_label.setdefault(label, []).append((hashlib.sha256(f"{salt}{key}".encode()).hexdigest(), i))
    for members in by_label.values():
        members.sort()
        for _, i in members[: round(fraction * len(members))]:
            chosen[i] = True
    return chosen


def fold_roles(protocol: str, folds: np.ndarray, splits: np.ndarray, test_fold: int, keys: Sequence[str],
               labels: Sequence[str | None], dev_fraction: float = 0.15) -> np.ndarray:
    """Each item's role when fold `test_fold` is tested: for an official split (fold 0) the
    split itself; else test for the tested fold, dev for the next fold (cyclically: speakers
    still unseen), train for the rest. Where that leaves no dev (an official split without one,
    fewer than three folds), dev is a stratified `dev_fraction` of the train items."""
    folds, splits = np.asarray(folds), np.asarray(splits, dtype=object)
    if protocol == "official":
        roles = splits.copy()
    else:
        k = int(folds.max(initial=0))
        roles = np.where(folds == test_fold, "test", "train").astype(object)
        if k >= 3:
            roles[folds == test_fold % k + 1] = "dev"
    train = roles == "train"
    if not (roles == "dev").any() and train.sum() >= 2:
        share = stratified_share([k for k, t in zip(keys, train) if t],
                                 [lab for lab, t in zip(labels, train) if t], dev_fraction, salt="dev")
        at = np.flatnonzero(train)[share]
        roles[at] = "dev"
    return roles


def join_corpus_rows(parts: Sequence[CorpusRows]) -> CorpusRows:
    """Several modalities of the same items side by side: the items every part has (inner join
    on corpus and id), the first part's columns, vectors concatenated in the parts' order. The
    result's table and fingerprint name every part's, joined by `+`."""
    if not parts:
        raise ValueError("nothing to join")
    if len(parts) == 1:
        return parts[0]
    keyed = [p.frame.select("corpus", "id").with_row_index(f"_at{i}") for i, p in enumerate(parts)]
    joined = keyed[0]
    for other in keyed[1:]:
        joined = joined.join(other, on=["corpus", "id"], how="inner")
    joined = joined.sort("corpus", "id")
    vectors = np.concatenate([p.vectors[joined[f"_at{i}"].to_numpy()] for i, p in enumerate(parts)], axis=1)
    return CorpusRows(table="+".join(p.table for p in parts), fingerprint="+".join(p.fingerprint for p in parts),
                      encoder="+".join(p.encoder for p in parts), frame=parts[0].frame[joined["_at0"].to_numpy()],
                      vectors=vectors.astype(np.float32, copy=False))


def concat_corpus_rows(parts: Sequence[CorpusRows]) -> CorpusRows:
    """One modality's rows from several tables (e.g. IEMOCAP's transcripts and the text corpora)
    as one CorpusRows, ordered by corpus and id; an item in two parts is an error."""
    if not parts:
        raise ValueError("nothing to concatenate")
    if len(parts) == 1:
        return parts[0]
    if len({p.vectors.shape[1] for p in parts}) > 1:
        raise ValueError(f"vector sizes differ: {[(p.table, p.vectors.shape[1]) for p in parts]}")
    frame = pl.concat([p.frame for p in parts]).with_row_index("_at")
    if frame.select(pl.struct("corpus", "id").is_duplicated().any()).item():
        raise ValueError(f"an item has rows in several of {[p.table for p in parts]}")
    order = frame.sort("corpus", "id")
    vectors = np.concatenate([p.vectors for p in parts])[order["_at"].to_numpy()]
    return CorpusRows(table="+".join(p.table for p in parts), fingerprint="+".join(p.fingerprint for p in parts),
                      encoder=parts[0].encoder, frame=order.drop("_at"), vectors=vectors)
