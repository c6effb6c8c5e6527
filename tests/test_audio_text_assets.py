"""The audio and text assets on the demo MELD corpus, in-process through Dagster: transcripts, the
WER table and the four embedding tables; re-runs compute nothing new; changing the ASR spec marks
exactly its downstream stale; unusable audio becomes rows with a status."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from pipelines.definitions import build_definitions
from pipelines.runner import instance_for, run, states, targets, update
from storage import Store

MINE = ("transcripts", "transcript_alignment", "speaker_embeddings", "asr_embeddings", "text_embeddings",
        "whisper_text_embeddings")
EMBEDDINGS = ("speaker_embeddings", "asr_embeddings", "text_embeddings", "whisper_text_embeddings")
SELECTION = " or ".join(f"+key:{name}" for name in MINE)  # mine and everything upstream
ASR_DOWNSTREAM = {"transcripts", "transcript_alignment", "asr_embeddings", "whisper_text_embeddings"}


@pytest.fixture(scope="module")
def demo_meld(demo_meld_root) -> Path:
    """The demo MELD.Raw (synthetic voices, planted quirks): the session's shared, read-only copy."""
    return demo_meld_root


def config(meld_root: Path, asr_params: str = '{compute_type = "int8"}') -> str:
    return f"""
        [corpora.meld]
        root = "{meld_root}"
        [encoders.asr]
        backend = "faster-whisper"
        model = "tiny.en"
        params = {asr_params}
        """


def latest_metadata(instance, asset: str, partition: str) -> dict:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def state_of(defs, instance) -> dict[str, set[str]]:
    """Asset name -> the states of its partitions."""
    out: dict[str, set[str]] = {}
    for s in states(defs, instance):
        out.setdefault(s.target.key.to_user_string(), set()).add(s.state)
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


@dataclasses.dataclass
class Materialized:
    """The demo MELD.Raw after one `update` of the audio and text assets."""

    settings: object
    defs: dg.Definitions
    instance: dg.DagsterInstance
    store: Store
    truth: dict  # what each clip holds (ground_truth.json)
    planted: dict[str, str]  # clip -> silent | no_audio | misaligned


def materialized(demo_meld: Path, settings_for) -> Materialized:
    settings = settings_for(config(demo_meld))
    defs = build_definitions(settings)
    instance = instance_for(settings)
    waves = update(defs, instance, SELECTION)
    assert waves and all(ok for wave in waves for _, ok, _ in wave)
    ground_truth = json.loads((demo_meld / "ground_truth.json").read_text())
    planted = {key: quirk.split(":")[0] for key, quirk in ground_truth["quirks"].items()
               if quirk.split(":")[0] in ("silent", "no_audio", "misaligned")}
    assert sorted(planted.values()) == ["misaligned", "no_audio", "silent"]
    return Materialized(settings, defs, instance, Store(settings.store.root), ground_truth["clips"], planted)



def transcripts_follow_clip_audio(built: Materialized) -> None:
    """One transcript per clip_audio row; unusable clips keep their status."""
    store, truth, planted = built.store, built.truth, built.planted
    audio = store.parquet("clip_audio").read()
    heard = store.parquet("transcripts").read()
    assert sorted(heard["id"]) == sorted(audio["id"])
    joined = heard.join(audio.select("id", pl.col("status").alias("audio_status")), on="id")
    assert (joined["status"] == joined["audio_status"]).all()
    usable = heard.filter(pl.col("status") == "ok")
    assert usable.height >= 50 and usable["text"].str.len_chars().min() > 0
    assert usable["language"].unique().to_list() == ["en"]
    assert set(heard.filter(pl.col("status") != "ok")["reason"].str.slice(0, 17)) == {"not transcribed: "}
    assert {"corrupt_media", "missing_media", "no_annotation", "silent", "no_audio"} <= set(heard["status"])
    statuses = dict(zip(heard["id"], heard["status"]))
    assert {key: statuses[key] for key in planted} == {
        key: "ok" if status == "misaligned" else status for key, status in planted.items()}
    # voiced seconds (the second alignment measure) match where the demo put the speech
    spoken = np.array([truth[i]["speech"][1] - truth[i]["speech"][0] for i in usable["id"]])
    assert np.abs(usable["voiced_s"].to_numpy() - spoken).max() < 0.35


def alignment_filters_by_wer_and_pace(built: Materialized) -> None:
    """The WER table: measures, keep flag, a WER histogram, the share filtered per split."""
    settings, instance, store, planted = built.settings, built.instance, built.store, built.planted
    usable = store.parquet("transcripts").read().filter(pl.col("status") == "ok")
    aligned = store.parquet("transcript_alignment").read()
    measured = aligned.filter(pl.col("status").is_in(["ok", "misaligned"]))
    assert measured.height == usable.height
    assert (measured["keep"] == (measured["status"] == "ok")).all()
    assert (measured.filter(pl.col("keep"))["wer"] <= settings.thresholds.max_wer).all()
    assert measured.filter(~pl.col("keep"))["reason"].str.len_chars().min() > 0
    assert measured["wer"].median() <= 0.3  # synthetic voices, tiny.en: most clips are heard right
    kept = measured.filter(pl.col("keep"))
    assert kept["seconds_per_word"].is_between(0.08, 2.0).all() and kept.height >= measured.height / 2
    # the clip whose voice says another line is filtered, by WER alone (its pace is ordinary)
    (misaligned,) = [key for key, status in planted.items() if status == "misaligned"]
    other_line = aligned.filter(pl.col("id") == misaligned).row(0, named=True)
    assert other_line["status"] == "misaligned" and not other_line["keep"], other_line
    assert other_line["wer"] > settings.thresholds.max_wer, other_line
    assert other_line["reason"] == f"WER {other_line['wer']:.2f} > {settings.thresholds.max_wer:g}", other_line
    assert "remote" in other_line["hypothesis"], other_line  # Whisper heard the line the voice says
    for split in ("train", "dev", "test"):
        meta = latest_metadata(instance, "transcript_alignment", split)
        assert "data:image/png;base64," in meta["WER histogram"]
        assert 0.0 <= meta["share filtered"] <= 1.0
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("transcript_alignment"), "share_filtered"), limit=10)
    reported = {r.event.asset_check_evaluation.metadata["split"].value for r in history}
    assert reported == {"train", "dev", "test"}  # the share filtered, per split


def embedding_tables_cover_every_utterance(built: Materialized) -> None:
    """Four embedding tables: every utterance, filter columns, zero vectors off ok."""
    store = built.store
    audio = store.parquet("clip_audio").read()
    utterances = store.parquet("meld_utterances").read()
    for name in EMBEDDINGS:
        table = store.lance(name).read()
        assert sorted(table["id"]) == sorted(utterances["id"] if name == "text_embeddings" else audio["id"])
        assert {"id", "split", "speaker", "emotion", "status", "reason", "fingerprint"} <= set(table.columns)
        vectors = np.stack(table["vector"].to_numpy())
        ok = (table["status"] == "ok").to_numpy()
        assert ok.sum() >= 50 and np.abs(vectors[ok]).sum(axis=1).min() > 0
        assert not vectors[~ok].any()
        assert any(idx.index_type == "Bitmap" and idx.columns == ["speaker"]
                   for idx in store.lance(name).table().list_indices())


def speaker_vectors_tell_the_cast_apart(built: Materialized) -> None:
    """The synthetic cast's voices are told apart, and queries by speaker work."""
    store, truth = built.store, built.truth
    speakers = store.lance("speaker_embeddings").read().filter(pl.col("status") == "ok")
    voices = np.array([truth[i]["speaker"] for i in speakers["id"]])  # whose synthetic voice speaks
    similarity = cosine(np.stack(speakers["vector"].to_numpy()), np.stack(speakers["vector"].to_numpy()))
    same = voices[:, None] == voices[None, :]
    off_diagonal = ~np.eye(len(speakers), dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.1
    joey = speakers.filter(pl.col("speaker") == "Joey")
    found = store.lance("speaker_embeddings").nearest(joey["vector"][0].to_numpy(), where="speaker = 'Joey'", k=50)
    assert set(found.column("speaker").to_pylist()) == {"Joey"} and found.num_rows >= joey.height
    assert found.column("_distance")[0].as_py() < 1e-5  # itself first


def nothing_changed_computes_nothing(built: Materialized) -> None:
    """Nothing changed: update does nothing, and a forced re-run computes zero items."""
    defs, instance, store = built.defs, built.instance, built.store
    assert update(defs, instance, SELECTION) == []
    lance_versions = {name: store.lance(name).version for name in EMBEDDINGS}
    results = run(defs, instance, targets(defs, [dg.AssetKey(a) for a in MINE]))
    assert all(ok for _, ok, _ in results)
    for name in ("transcripts", *EMBEDDINGS):
        for split in ("train", "dev", "test"):
            assert latest_metadata(instance, name, split)["computed"] == 0, (name, split)
    assert {name: store.lance(name).version for name in EMBEDDINGS} == lance_versions
    assert all(state_of(defs, instance)[a] == {"fresh"} for a in MINE)


def a_new_asr_spec_reruns_exactly_its_downstream(built: Materialized, demo_meld: Path, settings_for):
    """A new ASR spec: its whole downstream is stale at once, speaker and official text not."""
    instance, store = built.instance, built.store
    swapped = settings_for(config(demo_meld, '{compute_type = "int8", beam_size = 1}'))
    defs2 = build_definitions(swapped)
    by_state = state_of(defs2, instance)
    stale = {name for name, s in by_state.items() if s == {"stale"}}
    assert ASR_DOWNSTREAM <= stale
    assert not stale & {"speaker_embeddings", "text_embeddings", "meld_utterances", "clip_audio"}
    for name in ("speaker_embeddings", "text_embeddings", "meld_utterances", "clip_audio"):
        assert by_state[name] == {"fresh"}, name
    waves = update(defs2, instance, SELECTION)
    rerun = {t.key.to_user_string() for wave in waves for t, ok, _ in wave if ok}
    assert rerun == ASR_DOWNSTREAM
    assert all(state_of(defs2, instance)[a] == {"fresh"} for a in MINE)
    for name in ("transcripts", "asr_embeddings"):  # a new fingerprint: everything usable again
        assert latest_metadata(instance, name, "dev")["computed"] > 0
    fingerprints = set(store.lance("asr_embeddings").read()["fingerprint"])
    assert len(fingerprints) == 2  # the first spec's rows stay beside the new ones
    return defs2


def unusable_audio_recomputes_only_its_clips(built: Materialized, defs2: dg.Definitions) -> None:
    """Unusable audio: rows with a status, and only the changed clips are recomputed."""
    instance, store = built.instance, built.store
    dev = store.parquet("clip_audio").read(partition="dev")
    ok_ids = dev.filter(pl.col("status") == "ok")["id"].to_list()
    corrupt_id, silent_id, no_audio_id = ok_ids[:3]
    from storage.media import encode_flac, write_media

    corrupt_uri = store.media("audio", "00corrupt", ".flac")
    write_media(corrupt_uri, b"fLaC but then nothing a decoder could use")
    silent_uri = store.media("audio", "00silent", ".flac")
    write_media(silent_uri, encode_flac(np.zeros(32000, np.float32)))
    tampered = dev.with_columns(
        pl.when(pl.col("id") == corrupt_id).then(pl.lit(corrupt_uri))
        .when(pl.col("id") == silent_id).then(pl.lit(silent_uri))
        .otherwise(pl.col("audio_uri")).alias("audio_uri"),
        pl.when(pl.col("id") == no_audio_id).then(pl.lit("no_audio")).otherwise(pl.col("status")).alias("status"),
        pl.when(pl.col("id") == no_audio_id).then(pl.lit("dia_x.mp4 has no audio stream"))
        .otherwise(pl.col("reason")).alias("reason"),
    )
    store.parquet("clip_audio").write(tampered, partition="dev", fingerprint="tampered-by-test")
    mine = [dg.AssetKey(a) for a in MINE if a != "text_embeddings"]
    assert all(ok for _, ok, _ in run(defs2, instance, targets(defs2, mine, ["dev"])))
    heard = {r["id"]: r for r in store.parquet("transcripts").read(partition="dev").to_dicts()}
    assert heard[corrupt_id]["status"] == "corrupt_media" and "decode" in heard[corrupt_id]["reason"]
    assert heard[silent_id]["status"] == "silent" and "silence" in heard[silent_id]["reason"]
    assert heard[no_audio_id]["status"] == "no_audio"
    assert heard[no_audio_id]["reason"] == "not transcribed: dia_x.mp4 has no audio stream"
    assert latest_metadata(instance, "transcripts", "dev")["computed"] == 2
    for name in ("speaker_embeddings", "asr_embeddings"):
        rows = {r["id"]: r for r in store.lance(name).read(
            where=f"split = 'dev' AND fingerprint = '{latest_metadata(instance, name, 'dev')['fingerprint']}'").to_dicts()}
        assert [rows[i]["status"] for i in (corrupt_id, silent_id, no_audio_id)] == ["corrupt_media", "silent", "no_audio"]
        assert latest_metadata(instance, name, "dev")["computed"] == 2  # the two with changed audio
        assert latest_metadata(instance, name, "dev")["rows deleted"] == 3  # their old rows
    aligned = {r["id"]: r for r in store.parquet("transcript_alignment").read(partition="dev").to_dicts()}
    assert not aligned[silent_id]["keep"] and aligned[silent_id]["status"] == "silent"


@pytest.mark.slow
def test_demo_corpus_through_transcripts_alignment_and_embeddings(demo_meld, settings_for):
    """The demo MELD.Raw through transcripts, alignment and the four embedding tables; then again:
    unchanged input computes nothing, a new ASR spec re-runs exactly its downstream, and damaged
    audio recomputes only its clips."""
    built = materialized(demo_meld, settings_for)
    transcripts_follow_clip_audio(built)
    alignment_filters_by_wer_and_pace(built)
    embedding_tables_cover_every_utterance(built)
    speaker_vectors_tell_the_cast_apart(built)
    nothing_changed_computes_nothing(built)
    defs2 = a_new_asr_spec_reruns_exactly_its_downstream(built, demo_meld, settings_for)
    unusable_audio_recomputes_only_its_clips(built, defs2)
