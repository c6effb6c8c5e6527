"""`load_training_data`: MELD utterances joined with feature rows of one fingerprint, read from a
real store (Parquet and Lance) in a temporary folder."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from storage import Status, Store, row_key
from storage.dataset import (
    FEATURE_TABLES, NO_FEATURE, NO_LABEL, NO_POSITION, SENTIMENTS, FeatureSource, load_training_data,
)
from storage.labels import EMOTIONS

OK, NO_TEXT, NO_FACE = str(Status.OK), str(Status.NO_TEXT), str(Status.NO_FACE)
FACE_DIM = 8

# (id, dialogue, utterance, speaker, emotion, sentiment, meld status), in no particular order
UTTERANCES = [
    ("train/dia10_utt1", 10, 1, "Ross", None, None, OK),  # no label
    ("train/dia2_utt10", 2, 10, "Ross", "neutral", "neutral", OK),
    ("train/dia2_utt0", 2, 0, "Ross", "joy", "positive", OK),
    ("train/dia10_utt0", 10, 0, "Joey", "surprise", "positive", OK),
    ("train/dia2_utt2", 2, 2, "Monica", "sadness", "negative", OK),  # no ok row at the fingerprints
    ("train/dia2_utt1", 2, 1, "Rachel", "anger", "negative", OK),
    ("train/dia3_utt0", 3, 0, "Chandler", "contempt", "neutral", OK),  # emotion unusable, sentiment not
    ("dev/dia0_utt1", 0, 1, "Gunther", "fear", "negative", str(Status.MISSING_MEDIA)),  # text only
    ("dev/dia0_utt0", 0, 0, "Ross", "joy", "positive", OK),
    ("dev/dia1_utt0", 1, 0, None, "disgust", "negative", OK),
    ("test/dia0_utt0", 0, 0, "Phoebe", "neutral", "neutral", OK),
    ("test/final_videos_testdia3_utt1", None, None, None, None, None, str(Status.NO_ANNOTATION)),
    ("test/csv_line9", None, None, "Ross", "joy", "positive", str(Status.MALFORMED_ROW)),
]
ORDER = [  # the emotion data's rows
    "train/dia2_utt0", "train/dia2_utt1", "train/dia2_utt10", "train/dia10_utt0",
    "dev/dia0_utt0", "dev/dia0_utt1", "dev/dia1_utt0", "test/dia0_utt0",
]
# id -> status at fingerprint "text-a"; the value v of an ok row's vector is ORDER's index + 1
TEXT_A = {**{id_: OK for id_ in ORDER}, "train/dia2_utt2": NO_TEXT, "test/csv_line9": OK,
          "train/dia3_utt0": OK}
SPEAKER = {"train/dia2_utt0": OK, "train/dia2_utt1": OK, "train/dia2_utt10": OK,
           "dev/dia0_utt0": OK, "test/dia0_utt0": OK}  # train/dia10_utt0 has no row
FACE = {"train/dia2_utt0": OK, "train/dia2_utt1": NO_FACE, "train/dia10_utt0": NO_FACE,
        "dev/dia0_utt0": OK, "test/dia0_utt0": NO_FACE}
SPEAKER_FP = "resemblyzer'1"  # a quote, to be quoted in the filter


def value(id_: str) -> float:
    return float(ORDER.index(id_) + 1) if id_ in ORDER else 50.0


def row(table, **values) -> dict:
    """A row of `table` with `values`; other columns null (or "" where the schema forbids null)."""
    out = {}
    for field in table.schema.schema:
        if field.name in values:
            out[field.name] = values[field.name]
        elif field.nullable:
            out[field.name] = None
        else:
            assert pa.types.is_string(field.type), field
            out[field.name] = ""
    return out


def write_meld(store: Store) -> None:
    table = store.parquet("meld_utterances")
    for split in ("train", "dev", "test"):
        rows = [row(table, id=id_, split=split, dialogue_id=d, utterance_id=u, speaker=speaker, emotion=emotion,
                    sentiment=sentiment, status=status, reason="" if status == OK else "a reason")
                for id_, d, u, speaker, emotion, sentiment, status in UTTERANCES if id_.startswith(split)]
        table.write(pa.Table.from_pylist(rows, schema=table.schema.schema), partition=split)


def embedding_rows(table, statuses: dict[str, str], fingerprint: str, offset: float = 0.0,
                   input_hash: str = "h") -> pa.Table:
    dim = table.vector_dim
    rows = [row(table, key=row_key(id_, input_hash, fingerprint), id=id_, split=id_.split("/")[0],
                input_hash=input_hash, fingerprint=fingerprint, status=status,
                reason="" if status == OK else "a reason",
                vector=[value(id_) + offset] * dim if status == OK else [0.0] * dim)
            for id_, status in statuses.items()]
    return pa.Table.from_pylist(rows, schema=table.schema.schema)


def write_faces(store: Store, statuses: dict[str, str], fingerprint: str, offset: float = 0.0) -> None:
    table = store.parquet("speaking_faces")
    for split in ("train", "dev", "test"):
        rows = [row(table, id=id_, split=split, fingerprint=fingerprint, status=status,
                    reason="" if status == OK else "no face",
                    vector=[value(id_) + offset] * FACE_DIM if status == OK else None)
                for id_, status in statuses.items() if id_.startswith(split)]
        table.write(pa.Table.from_pylist(rows, schema=table.schema.schema), partition=split,
                    fingerprint=fingerprint)


def build_store(root) -> Store:
    store = Store(str(root))
    write_meld(store)
    text = store.lance("text_embeddings")
    text.upsert(embedding_rows(text, TEXT_A, "text-a"))
    # another fingerprint: every utterance ok, other vectors (and train/dia2_utt2 ok here)
    text.upsert(embedding_rows(text, {id_: OK for id_, *_ in UTTERANCES}, "text-b", offset=1000.0))
    speaker = store.lance("speaker_embeddings")
    speaker.upsert(embedding_rows(speaker, SPEAKER, SPEAKER_FP))
    speaker.upsert(embedding_rows(speaker, {id_: OK for id_, *_ in UTTERANCES}, "other", offset=1000.0))
    write_faces(store, FACE, "face-a")
    return store


SOURCES = [
    FeatureSource("text", FEATURE_TABLES["text"], "text-a"),
    FeatureSource("speaker", FEATURE_TABLES["speaker"], SPEAKER_FP),
    FeatureSource("face", FEATURE_TABLES["face"], "face-a"),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Store:
    return build_store(tmp_path_factory.mktemp("store"))


@pytest.fixture(scope="module")
def data(store):
    return load_training_data(store, SOURCES)


def test_rows_come_in_split_dialogue_and_utterance_order(data):
    assert data.ids.tolist() == ORDER  # numbers, not strings: dia2 before dia10, utt2 before utt10
    assert data.split.tolist() == ["train"] * 4 + ["dev"] * 3 + ["test"]
    assert data.dialogue.tolist()[:4] == ["train/dia2"] * 3 + ["train/dia10"]
    assert [data.ids[rows].tolist() for rows in data.dialogues("train")] == [ORDER[:3], ORDER[3:4]]
    assert [data.ids[rows].tolist() for rows in data.dialogues("dev")] == [ORDER[4:6], ORDER[6:7]]
    assert data.dialogues("nowhere") == [] and data.splits() == ["train", "dev", "test"]
    assert data.classes == EMOTIONS
    assert [data.classes[i] for i in data.labels] == ["joy", "anger", "neutral", "surprise", "joy", "fear",
                                                     "disgust", "neutral"]


def test_vectors_are_the_rows_of_each_id(data):
    assert data.modalities == {"text": 384, "speaker": 256, "face": FACE_DIM}
    for m, features in data.features.items():
        assert features.dtype == np.float32 and features.shape[0] == len(ORDER)
        expected = [value(id_) if p else 0.0 for id_, p in zip(ORDER, data.present[m])]
        assert np.array_equal(features, np.repeat(np.float32(expected)[:, None], features.shape[1], axis=1))


def test_a_missing_or_not_ok_row_is_a_zero_masked_vector_and_the_utterance_stays(data):
    row = ORDER.index("train/dia10_utt0")  # no speaker row, a no_face row, text ok
    assert data.present["text"][row] and not data.present["speaker"][row] and not data.present["face"][row]
    assert not data.features["speaker"][row].any() and not data.features["face"][row].any()
    assert data.present["speaker"].tolist() == [id_ in SPEAKER for id_ in ORDER]
    assert data.present["face"].tolist() == [FACE.get(id_) == OK for id_ in ORDER]
    # meld_utterances says missing_media, but the text row is ok: in, with text only
    row = ORDER.index("dev/dia0_utt1")
    assert [p[row] for p in data.present.values()] == [True, False, False]


def test_left_out_utterances_and_masks_are_counted(data):
    assert data.counts["utterances"] == {"train": 4, "dev": 3, "test": 1}
    assert data.counts["left_out"] == {
        "train": {NO_LABEL: 2, NO_POSITION: 0, NO_FEATURE: 1},  # dia10_utt1 and dia3_utt0; dia2_utt2
        "dev": {NO_LABEL: 0, NO_POSITION: 0, NO_FEATURE: 0},
        "test": {NO_LABEL: 1, NO_POSITION: 1, NO_FEATURE: 0},  # the unannotated clip; csv_line9
    }
    assert data.counts["masked"] == {
        "text": {"train": 0, "dev": 0, "test": 0},
        "speaker": {"train": 1, "dev": 2, "test": 0},
        "face": {"train": 3, "dev": 2, "test": 1},
    }
    assert data.counts["rows_read"] == {"text": len(TEXT_A), "speaker": len(SPEAKER), "face": len(FACE)}
    assert data.counts["rows_ok"] == {"text": len(TEXT_A) - 1, "speaker": len(SPEAKER), "face": 2}


def test_rows_of_another_fingerprint_are_never_read(store, data):
    assert "train/dia2_utt2" not in data.ids  # ok at text-b only
    assert max(float(f.max()) for f in data.features.values()) < 1000.0  # text-b and "other" hold 1000+
    other = load_training_data(store, [FeatureSource("text", "text_embeddings", "text-b")])
    assert "train/dia2_utt2" in other.ids
    assert other.counts["rows_read"] == {"text": len(UTTERANCES)}
    assert (other.features["text"] >= 1000.0).all()


def test_speaker_ids_index_the_train_speakers(store, data):
    assert data.speakers == ("Chandler", "Joey", "Monica", "Rachel", "Ross")  # every named train speaker
    named = dict(zip(data.ids, data.speaker_id.tolist()))
    assert named["train/dia2_utt0"] == named["dev/dia0_utt0"] == 5  # Ross, in train and in dev
    assert named["train/dia10_utt0"] == 2
    assert named["dev/dia0_utt1"] == named["test/dia0_utt0"] == 0  # Gunther and Phoebe are not in train
    assert named["dev/dia1_utt0"] == 0 and data.speaker[ORDER.index("dev/dia1_utt0")] == ""  # no speaker
    assert data.n_speakers == 6
    # the vocabulary is train's whatever the splits loaded
    dev = load_training_data(store, SOURCES, splits=("dev",))
    assert dev.ids.tolist() == ORDER[4:7] and dev.speaker_id.tolist() == [5, 0, 0]
    assert list(dev.counts["utterances"]) == ["dev"]


def test_sentiment_is_a_target(store):
    data = load_training_data(store, SOURCES, target="sentiment")
    assert data.classes == SENTIMENTS
    assert "train/dia3_utt0" in data.ids  # an emotion out of the seven, a usable sentiment
    assert [SENTIMENTS[i] for i in data.labels[:5]] == ["positive", "negative", "neutral", "neutral", "positive"]
    assert data.counts["left_out"]["train"][NO_LABEL] == 1


def test_select_is_loading_fewer_sources(store, data):
    chosen = data.select(["speaker", "face"])
    direct = load_training_data(store, SOURCES[1:])
    assert chosen.ids.tolist() == direct.ids.tolist()
    assert "dev/dia0_utt1" not in chosen.ids  # it had text only
    assert chosen.counts == direct.counts
    for m in ("speaker", "face"):
        assert np.array_equal(chosen.features[m], direct.features[m])
        assert np.array_equal(chosen.present[m], direct.present[m])
    assert np.array_equal(chosen.speaker_id, direct.speaker_id) and list(chosen.sources) == ["speaker", "face"]
    with pytest.raises(ValueError, match="has modalities"):
        data.select(["asr"])


@pytest.mark.parametrize("sources, kwargs, message", [
    ([FeatureSource("asr", "asr_embeddings", "x")], {}, "asr_embeddings is not stored"),
    ([FeatureSource("text", "text_embeddings", "nope")], {},
     r"no row of text_embeddings at fingerprint 'nope'.*holds fingerprints text-a, text-b"),
    ([FeatureSource("face", "speaking_faces", "nope")], {},
     r"no row of speaking_faces at fingerprint 'nope'.*holds fingerprints face-a"),
    ([FeatureSource("text", "no_such_table", "x")], {}, "no table named 'no_such_table'"),
    (SOURCES, {"target": "genre"}, "unknown target"),
    (SOURCES, {"splits": ("train", "val")}, "unknown splits"),
    (SOURCES[:1] * 2, {}, "each modality once"),
])
def test_a_source_that_cannot_be_read_is_a_clear_error(store, sources, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_training_data(store, sources, **kwargs)


def test_a_source_without_an_ok_row_is_an_error(tmp_path):
    store = Store(str(tmp_path))
    write_meld(store)
    write_faces(store, {id_: NO_FACE for id_ in FACE}, "face-a")
    with pytest.raises(ValueError, match="none is ok"):
        load_training_data(store, [SOURCES[2]])


def test_faces_are_read_from_the_newest_version_of_their_fingerprint(tmp_path):
    store = Store(str(tmp_path))
    write_meld(store)
    write_faces(store, FACE, "face-a")
    write_faces(store, {id_: OK for id_ in FACE}, "face-b", offset=1000.0)  # newer versions
    old = load_training_data(store, [SOURCES[2]])
    assert old.present["face"].all() and old.counts["rows_ok"] == {"face": 2}
    assert float(old.features["face"].max()) < 1000.0
    new = load_training_data(store, [FeatureSource("face", "speaking_faces", "face-b")])
    assert new.counts["rows_ok"] == {"face": len(FACE)} and (new.features["face"] >= 1000.0).all()


def test_several_ok_rows_of_one_id_are_kept_once_when_equal_and_refused_when_not(tmp_path):
    store = Store(str(tmp_path))
    write_meld(store)
    text = store.lance("text_embeddings")
    text.upsert(embedding_rows(text, TEXT_A, "text-a"))
    # a row of an old input beside the current one, and a failed one: the same vector, or none
    text.upsert(embedding_rows(text, {"train/dia2_utt0": OK, "train/dia2_utt1": NO_TEXT}, "text-a",
                               input_hash="old"))
    data = load_training_data(store, [SOURCES[0]])
    assert data.ids.tolist() == ORDER and data.counts["rows_read"] == {"text": len(TEXT_A) + 2}
    assert float(data.features["text"][0, 0]) == value("train/dia2_utt0")
    text.upsert(embedding_rows(text, {"train/dia2_utt0": OK}, "text-a", offset=0.5, input_hash="old"))
    with pytest.raises(ValueError, match=r"1 ids have several ok rows with different vectors \(train/dia2_utt0\)"):
        load_training_data(store, [SOURCES[0]])
