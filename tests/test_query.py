"""Queries: embeddings by speaker, emotion and similarity (storage/query.py and `emostore query`,
`emostore speakers`), checked against a brute-force numpy scan of the same rows, on real Lance
and Parquet tables written through the store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest

from storage import Store, row_key
from storage.query import Filters, Like, QueryError, centroid_similarity, confused_speakers, predictions, query, \
    speaker_counts
from storage.schemas import get as get_schema

SPEAKERS = ["Ross", "Rachel", "Joey", "Monica", "Chandler", "Phoebe", "Gunther", "Janice"]
WEIGHTS = [0.2, 0.2, 0.15, 0.15, 0.1, 0.1, 0.06, 0.04]
EMOTIONS = ["neutral", "joy", "anger", "sadness"]
SPLITS = ["train", "dev", "test"]
ENCODER, OTHER_ENCODER = "enc-a", "enc-b"
DIM = 16


def _rows(schema_name: str, rows: list[dict]) -> pa.Table:
    schema = get_schema(schema_name).schema
    return pa.Table.from_pylist([{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema)


def build_store(root: Path, n: int = 600, seed: int = 0) -> dict:
    """A small store: meld_utterances, speaker_embeddings of two encoders (one vector size),
    repeated vectors (ties), unusable rows, the same encoder's CREMA-D clips in
    corpus_speaker_embeddings, speaking_faces and one training cell's predictions."""
    rng = np.random.default_rng(seed)
    store = Store(str(root))
    ids = [f"{SPLITS[i % 3]}/dia{i // 6}_utt{i % 6}" for i in range(n)]
    speakers = rng.choice(SPEAKERS, n, p=WEIGHTS)
    emotions = rng.choice(EMOTIONS, n)
    vectors = rng.standard_normal((n, DIM)).astype(np.float32)
    vectors[10:20] = vectors[5]  # ties: equal vectors under different ids
    vectors[30:35] = vectors[25] * 2.0  # equal direction, other length: equal cosine distance too
    status = np.where(rng.random(n) < 0.05, "silent", "ok")
    vectors[status != "ok"] = 0.0
    utterances = [{"id": i, "split": i.split("/")[0], "dialogue_id": int(i.split("dia")[1].split("_")[0]),
                   "utterance_id": int(i.split("utt")[1]), "speaker": s, "emotion": e,
                   "text": f"line {k} of {s}", "status": "ok", "reason": ""}
                  for k, (i, s, e) in enumerate(zip(ids, speakers, emotions))]
    for split in SPLITS:
        store.parquet("meld_utterances").write(
            _rows("meld_utterances", [u for u in utterances if u["split"] == split]), partition=split)
    table = store.lance("speaker_embeddings").for_vectors(DIM)
    for encoder, offset in ((ENCODER, 0.0), (OTHER_ENCODER, 0.5)):
        frame = pl.DataFrame({
            "key": [row_key(i, "h", encoder) for i in ids], "id": ids, "split": [i.split("/")[0] for i in ids],
            "speaker": speakers, "emotion": emotions, "input_hash": "h", "fingerprint": f"fp-{encoder}",
            "encoder": encoder, "status": status, "reason": "",
            "vector": pl.Series(vectors + offset * (status == "ok")[:, None], dtype=pl.Array(pl.Float32, DIM)),
        })
        half = n // 2  # two writes: the second's rows must be covered by the indexes too
        table.upsert(frame.head(half), tag=f"first {encoder}")
        table.upsert(frame.tail(n - half))
    crema = rng.standard_normal((40, DIM)).astype(np.float32)
    corpus = store.lance("corpus_speaker_embeddings").for_vectors(DIM)
    corpus.upsert(pl.DataFrame({
        "key": [row_key(f"cremad/{j}", "h", "fp") for j in range(40)], "corpus": "cremad",
        "id": [f"10{j:02d}_IEO_ANG_HI" for j in range(40)], "speaker": [f"10{j % 4:02d}" for j in range(40)],
        "fold": 1, "split": "train", "label": "anger", "raw_labels": [["ANG"]] * 40, "valence": None,
        "arousal": None, "dominance": None, "input_hash": "h", "fingerprint": "fp-crema", "encoder": ENCODER,
        "status": "ok", "reason": "", "duration_s": 2.0,
        "vector": pl.Series(crema, dtype=pl.Array(pl.Float32, DIM)),
    }).with_columns(pl.col("valence", "arousal", "dominance").cast(pl.Float64)))
    faces = rng.standard_normal((n, 8)).astype(np.float32)
    for split in SPLITS:
        keep = [k for k, i in enumerate(ids) if i.startswith(split + "/")]
        store.parquet("speaking_faces").write(_rows("speaking_faces", [
            {"id": ids[k], "split": split, "speaker": speakers[k], "encoder": "dlib", "fingerprint": "fp-dlib",
             "vector": faces[k].tolist() if status[k] == "ok" else None, "status": str(status[k]), "reason": ""}
            for k in keep]), partition=split)
    cell = "emotion.official.text.concat_mlp.s0"
    predicted = np.where(rng.random(n) < 0.4, rng.choice(EMOTIONS, n), emotions)
    store.parquet("training_predictions").write(_rows("training_predictions", [
        {"cell": cell, "id": i, "split": i.split("/")[0], "label": e, "predicted": p, "probabilities": [0.7, 0.1, 0.1, 0.1]}
        for i, e, p in zip(ids, emotions, predicted)]), partition=cell)
    return {"store": store, "ids": ids, "speakers": speakers, "emotions": emotions, "vectors": vectors,
            "status": status, "crema": crema, "faces": faces, "cell": cell, "predicted": predicted}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_store(tmp_path_factory.mktemp("query-store"))


def brute_force(vectors, ids, keep, q, k, exclude=None):
    """The reference: every kept row's float64 cosine distance, ordered by (distance, id)."""
    v = vectors.astype(np.float64)
    q = np.asarray(q, np.float64)
    dots = (v * q).sum(axis=1)
    norms = np.sqrt((v * v).sum(axis=1)) * np.sqrt((q * q).sum())
    rows = [(1.0 - dots[i] / norms[i], ids[i]) for i in np.flatnonzero(keep) if norms[i] > 0 and ids[i] != exclude]
    rows.sort()
    return rows[:k]


@pytest.mark.parametrize("table", ["speaker_embeddings", "speaking_faces"])  # Lance; Parquet by split
def test_every_query_form_answers_like_a_brute_force_scan(built, table):
    store, ids, speakers, emotions, status = built["store"], built["ids"], built["speakers"], built["emotions"], built["status"]
    vectors = built["vectors"] if table == "speaker_embeddings" else built["faces"]
    encoder = ENCODER if table == "speaker_embeddings" else None
    if table == "speaking_faces":
        emotions = np.array([None] * len(ids))  # speaking_faces has no emotion column
    rng = np.random.default_rng(1)
    for trial in range(100):
        k = int(rng.choice([1, 3, 10, 25, 700]))
        chosen = tuple(rng.choice(SPEAKERS, int(rng.integers(0, 3)), replace=False))
        filters = Filters(speakers=chosen, emotion=str(rng.choice(EMOTIONS)) if trial % 3 == 0 and encoder else None,
                          split=str(rng.choice(SPLITS)) if trial % 4 == 1 else None)
        keep = status == "ok"
        if chosen:
            keep &= np.isin(speakers, chosen)
        if filters.emotion:
            keep &= emotions == filters.emotion
        if filters.split:
            keep &= np.array([i.startswith(filters.split + "/") for i in ids])
        if trial % 2:  # like a stored item (itself left out); some of them have exact ties
            item = ids[int(rng.choice([5, 12, 25, 31, int(rng.integers(0, len(ids)))]))]
            if status[ids.index(item)] != "ok":
                continue
            answer = query(store, table, filters=filters, like=item, k=k, encoder=encoder)
            expected = brute_force(vectors, ids, keep, vectors[ids.index(item)], k, exclude=item)
        else:
            q = rng.standard_normal(vectors.shape[1])
            answer = query(store, table, filters=filters, vector=q, k=k, encoder=encoder)
            expected = brute_force(vectors, ids, keep, q, k)
        assert answer["id"].to_list() == [i for _, i in expected], (trial, filters)
        np.testing.assert_allclose(answer["distance"].to_numpy(), [d for d, _ in expected], atol=1e-5)
        assert set(answer["encoder"]) <= {encoder or "dlib"}


def test_ties_are_broken_by_id(built):
    store, ids = built["store"], built["ids"]
    answer = query(store, "speaker_embeddings", like=ids[5], k=12, encoder=ENCODER)
    tied = answer.filter(pl.col("distance") < 1e-6)["id"].to_list()
    assert tied == sorted(i for i in ids[10:20] if built["status"][ids.index(i)] == "ok")


def test_rows_carry_speaker_emotion_split_text_and_never_mix_encoders(built):
    store = built["store"]
    answer = query(store, "speaker_embeddings", filters=Filters(speakers=("Ross",)), vector=np.ones(DIM),
                   k=5, encoder=OTHER_ENCODER)
    assert answer.columns[:5] == ["id", "speaker", "emotion", "split", "status"]
    assert answer["text"].str.contains("Ross").all() and set(answer["encoder"]) == {OTHER_ENCODER}
    with pytest.raises(QueryError, match="several encoders: enc-a .*enc-b"):
        query(store, "speaker_embeddings", vector=np.ones(DIM))
    listed = query(store, "speaker_embeddings", filters=Filters(speakers=("Janice",), status="silent"),
                   encoder=ENCODER)
    expected = sorted(i for i, s, st in zip(built["ids"], built["speakers"], built["status"])
                      if s == "Janice" and st == "silent")
    assert listed["id"].to_list() == expected and "distance" not in listed.columns


def test_dialogue_and_where_filters(built):
    store = built["store"]
    answer = query(store, "speaker_embeddings", filters=Filters(dialogue=3, status=None), encoder=ENCODER)
    assert answer["id"].to_list() == sorted(i for i in built["ids"] if i.split("/")[1].startswith("dia3_"))
    answer = query(store, "speaker_embeddings", filters=Filters(where="emotion = 'joy' AND split = 'dev'"),
                   encoder=ENCODER)
    assert set(answer["emotion"]) == {"joy"} and set(answer["split"]) == {"dev"}
    with pytest.raises(QueryError, match="No field named nope.*columns: key, id"):
        query(store, "speaker_embeddings", filters=Filters(where="nope = 1"), encoder=ENCODER)


def test_unknown_speaker_table_modality_and_encoder_list_what_exists(built):
    store = built["store"]
    with pytest.raises(QueryError, match=r"no speaker 'Ursula'.*Ross \(\d+\)"):
        query(store, "speaker_embeddings", filters=Filters(speakers=("Ursula",)), encoder=ENCODER)
    with pytest.raises(QueryError, match="known: .*speaker_embeddings"):
        query(store, "voices")
    with pytest.raises(QueryError, match="known: text, whisper_text, speaker, asr, face"):
        query(store, modality="voice")
    with pytest.raises(QueryError, match=r"no rows of encoder 'nope'.*enc-a \(600 rows\)"):
        query(store, "speaker_embeddings", encoder="nope")
    with pytest.raises(QueryError, match="has no rows"):
        query(store, "asr_embeddings")


def test_as_of_an_earlier_version_or_tag(built):
    store = built["store"]
    table = store.lance("speaker_embeddings")
    tag = next(t for v in table.versions() for t in v["tags"] if t.endswith("first-enc-a"))
    early = query(store, "speaker_embeddings", filters=Filters(status=None), encoder=ENCODER, version=tag)
    assert early["id"].to_list() == sorted(built["ids"][:300])


def test_indexes_cover_every_row_after_each_write(built):
    table = built["store"].lance("speaker_embeddings")
    described = {tuple(d.field_names) for d in table.table().to_lance().describe_indices()}
    assert {(c,) for c in ("speaker", "emotion", "split", "encoder", "status")} <= described
    assert table.unindexed_fragments() == {}
    assert len(table.versions()) > 4  # and the earlier versions are still there for time travel


def test_nearest_across_tables_of_one_encoder(built):
    store, crema = built["store"], built["crema"]
    answer = query(store, "speaker_embeddings", like=Like("1003_IEO_ANG_HI", table="corpus_speaker_embeddings"),
                   k=5, encoder=ENCODER)
    expected = brute_force(built["vectors"], built["ids"], built["status"] == "ok", crema[3], 5)
    assert answer["id"].to_list() == [i for _, i in expected]
    with pytest.raises(QueryError, match="no item '1003_IEO_ANG_HI' with an ok vector of encoder enc-b"):
        query(store, "speaker_embeddings", like=Like("1003_IEO_ANG_HI", table="corpus_speaker_embeddings"),
              encoder=OTHER_ENCODER)


def test_faces_per_utterance_come_from_speaking_faces(built):
    store, faces, ids = built["store"], built["faces"], built["ids"]
    answer = query(store, modality="face", filters=Filters(speakers=("Joey",), split="dev"), like=ids[1], k=4)
    keep = (built["status"] == "ok") & (built["speakers"] == "Joey") & np.array([i.startswith("dev/") for i in ids])
    expected = brute_force(faces, ids, keep, faces[1], 4, exclude=ids[1])
    assert answer["id"].to_list() == [i for _, i in expected]


def test_speaker_counts_and_centroid_similarity(built):
    store = built["store"]
    counts = speaker_counts(store, "speaker_embeddings", encoder=ENCODER)
    ross = counts.filter(pl.col("speaker") == "Ross").row(0, named=True)
    expected = int(((built["speakers"] == "Ross") & (built["status"] == "ok")).sum())
    assert ross["rows"] == expected == ross["train"] + ross["dev"] + ross["test"]
    assert ross["rows"] == sum(ross[e] for e in EMOTIONS)
    similarity = centroid_similarity(store, "speaker_embeddings", encoder=ENCODER, min_rows=30)
    speakers = similarity["speaker"].to_list()
    v, s = built["vectors"].astype(np.float64), built["speakers"]
    ok = built["status"] == "ok"
    assert set(speakers) == {p for p in SPEAKERS if ((s == p) & ok).sum() >= 30} and "Janice" not in speakers
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    centre = {p: unit[(s == p) & ok].mean(0) for p in ("Ross", "Joey")}
    cos = centre["Ross"] @ centre["Joey"] / np.linalg.norm(centre["Ross"]) / np.linalg.norm(centre["Joey"])
    assert similarity.filter(pl.col("speaker") == "Ross")["Joey"][0] == pytest.approx(cos, abs=1e-9)
    pairs = confused_speakers(similarity)
    assert pairs.height == len(speakers) * (len(speakers) - 1) // 2
    assert pairs["similarity"].is_sorted(descending=True)


def test_misclassified_predictions_by_speaker(built):
    store = built["store"]
    wrong = predictions(store, built["cell"], wrong=True, filters=Filters(speakers=("Ross",), split="dev"))
    expected = sorted(i for i, s, e, p in zip(built["ids"], built["speakers"], built["emotions"], built["predicted"])
                      if s == "Ross" and e != p and i.startswith("dev/"))
    assert wrong["id"].to_list() == expected and not wrong["correct"].any()
    assert wrong["text"].str.contains("Ross").all()
    with pytest.raises(QueryError, match="cells: emotion.official.text.concat_mlp.s0"):
        predictions(store, "sentiment.*")


def test_approximate_search_answers_from_a_vector_index(tmp_path):
    from storage.query import build_vector_index

    data = build_store(tmp_path, n=600)
    store = data["store"]
    with pytest.raises(QueryError, match="no vector index"):
        query(store, "speaker_embeddings", vector=np.ones(DIM), encoder=ENCODER, approximate=True)
    build_vector_index(store, "speaker_embeddings", partitions=4, sub_vectors=4)
    answer = query(store, "speaker_embeddings", vector=np.ones(DIM), encoder=ENCODER, k=10, approximate=True)
    exact = query(store, "speaker_embeddings", vector=np.ones(DIM), encoder=ENCODER, k=10)
    assert answer.height == 10 and len(set(answer["id"]) & set(exact["id"])) >= 5


# -- the command line --------------------------------------------------------------------------
def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"emostore {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def cli_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("query-cli")
    data = build_store(root / "store", n=300)
    (root / "emostore.toml").write_text('[store]\nroot = "store"\n')
    return root, data


def test_cli_query_json_matches_the_python_api(cli_store):
    root, data = cli_store
    out = cli("query", "--modality", "speaker", "--speaker", "Ross", "--speaker", "Joey", "--like", data["ids"][3],
              "-k", "7", "--encoder", ENCODER, "--format", "json", cwd=root).stdout
    rows = json.loads(out)
    expected = query(data["store"], "speaker_embeddings", filters=Filters(speakers=("Ross", "Joey")),
                     like=data["ids"][3], k=7, encoder=ENCODER)
    assert [r["id"] for r in rows] == expected["id"].to_list()
    assert {"id", "speaker", "emotion", "split", "text", "distance"} <= set(rows[0])


def test_cli_export_writes_the_filtered_rows_with_vectors(cli_store):
    root, data = cli_store
    cli("query", "--table", "speaker_embeddings", "--speaker", "Monica", "--encoder", ENCODER,
        "--export", "monica.parquet", cwd=root)
    exported = pl.read_parquet(root / "monica.parquet")
    ok = (data["speakers"] == "Monica") & (data["status"] == "ok")
    assert exported.height == int(ok.sum()) and exported["vector"].dtype == pl.Array(pl.Float32, DIM)


@pytest.mark.parametrize("args, message", [
    (("--modality", "speaker", "--speaker", "Ursula", "--encoder", ENCODER), "no speaker 'Ursula'"),
    (("--table", "voices"), "no embedding table 'voices'"),
    (("--modality", "speaker", "--encoder", "nope"), "no rows of encoder 'nope'"),
    (("--modality", "speaker", "--encoder", ENCODER, "--where", "nope = 1"), "No field named nope"),
    (("--modality", "speaker", "--encoder", ENCODER, "--version", "999"), "has no version 999; versions 1.."),
    (("--modality", "speaker", "--text", "hello", "--encoder", ENCODER), "--text needs a text table"),
    (("--predictions", "nope"), "no cell 'nope'"),
    (("--modality", "speaker", "--corpus", "cremad", "--encoder", ENCODER), "has no corpus column"),
    (("--modality", "speaker"), "the configured [encoders.speaker]'s; choose one with --encoder"),
])
def test_cli_bad_input_is_one_clear_line(cli_store, args, message):
    root, _ = cli_store
    proc = cli("query", *args, cwd=root, check=False)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_predictions_wrong_by_speaker(cli_store):
    root, data = cli_store
    out = cli("query", "--predictions", data["cell"], "--wrong", "--speaker", "Ross", "--format", "csv", cwd=root).stdout
    frame = pl.read_csv(out.encode())
    assert set(frame["speaker"]) == {"Ross"} and (frame["label"] != frame["predicted"]).all()


def test_cli_speakers_counts_and_confusions(cli_store):
    root, _ = cli_store
    out = cli("speakers", "speaker_embeddings", "--encoder", ENCODER, "--min-utterances", "20", cwd=root).stdout
    assert "Ross" in out and "centroid similarity" in out


def test_cli_show_where_filters_parquet_tables(cli_store):
    root, data = cli_store
    out = cli("show", "meld_utterances", "-p", "dev", "--where", "speaker = 'Ross'", "--limit", "100", cwd=root).stdout
    expected = sum(1 for i, s in zip(data["ids"], data["speakers"]) if s == "Ross" and i.startswith("dev/"))
    assert out.strip().endswith(f"{expected} rows")
    proc = cli("show", "meld_utterances", "--where", "nope = 1", cwd=root, check=False)
    assert proc.returncode == 2 and "nope" in proc.stderr and "Traceback" not in proc.stderr


def test_the_in_memory_searcher_answers_like_query(built):
    from storage.query import Searcher

    store, ids = built["store"], built["ids"]
    searcher = Searcher(store, "speaker_embeddings", encoder=ENCODER)
    rng = np.random.default_rng(2)
    for trial in range(30):
        q = built["vectors"][5] if trial % 5 == 0 else rng.standard_normal(DIM)
        k = int(rng.choice([1, 5, 12, 50]))
        filters = Filters(speakers=tuple(rng.choice(SPEAKERS, int(rng.integers(0, 3)), replace=False)),
                          emotion=str(rng.choice(EMOTIONS)) if trial % 3 == 0 else None,
                          split="dev" if trial % 4 == 1 else None)
        expected = query(store, "speaker_embeddings", filters=filters, vector=q, k=k, encoder=ENCODER, with_text=False)
        answer = searcher.nearest(q, k, filters)
        assert answer["id"].to_list() == expected["id"].to_list(), (trial, filters)
        np.testing.assert_allclose(answer["distance"].to_numpy(), expected["distance"].to_numpy(), atol=1e-9)
    with pytest.raises(QueryError, match=r"no speaker 'Ursula'.*Ross \(\d+\)"):
        searcher.nearest(np.ones(DIM), 3, Filters(speakers=("Ursula",)))


def test_embedding_materializations_carry_a_speaker_similarity_heat_map(built):
    from assets.embedding_tables import speaker_similarity_metadata

    store = built["store"]
    picture = speaker_similarity_metadata(store.lance("speaker_embeddings"), ENCODER)
    assert picture["speaker centroid similarity"].md_str.startswith("![figure](data:image/png;base64,")
    assert speaker_similarity_metadata(store.lance("corpus_speaker_embeddings"), ENCODER) == {}  # a corpus table


def test_cli_text_query_embeds_with_the_configured_text_encoder(tmp_path):
    from models.encoders.sentence import SentenceEncoder
    from pipelines.settings import load_settings

    (tmp_path / "emostore.toml").write_text('[store]\nroot = "store"\n')
    spec = load_settings(tmp_path / "emostore.toml").encoders["text"].spec()
    texts = ["I can't believe you ate my sandwich!", "We were on a break.", "How you doin'?",
             "Oh. My. God.", "Could this be any more awkward?", "Pivot! Pivot!"]
    ids = [f"dev/dia{i}_utt0" for i in range(len(texts))]
    vectors = SentenceEncoder.from_spec(spec).encode(texts)
    table = Store(str(tmp_path / "store")).lance("text_embeddings").for_vectors(vectors.shape[1])
    table.upsert(pl.DataFrame({
        "key": [row_key(i, "h", "fp") for i in ids], "id": ids, "split": "dev",
        "speaker": ["Ross", "Ross", "Joey", "Janice", "Chandler", "Ross"], "emotion": "neutral", "input_hash": "h",
        "fingerprint": "fp", "encoder": spec.encoder(), "status": "ok", "reason": "",
        "vector": pl.Series(vectors, dtype=pl.Array(pl.Float32, vectors.shape[1])),
    }))
    rows = json.loads(cli("query", "--modality", "text", "--text", "we were on a break", "--speaker", "Ross",
                          "-k", "2", "--format", "json", cwd=tmp_path).stdout)
    assert [r["id"] for r in rows][0] == "dev/dia1_utt0" and len(rows) == 2
    assert {r["speaker"] for r in rows} == {"Ross"} and rows[0]["distance"] < rows[1]["distance"]
