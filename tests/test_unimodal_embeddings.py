"""Evaluation folds and the corpus embeddings: fold assignment; face embeddings of the real RAVDESS
clip and of real CK+48 crops; speaker and ASR embeddings of the real RAVDESS files, incremental
(a re-run encodes nothing, a new fold updates rows in place, a removed item is deleted); IEMOCAP
transcript embeddings on a fixture tree; and (slow) every adapter and embedding on the demo corpora.
All through real Dagster materializations into a temporary store with the offline encoders."""

from __future__ import annotations

import json
from collections import Counter
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest

from corpora.protocols import Protocol, assign_folds
from storage.dataset import fold_roles
from pipelines.definitions import build_definitions
from pipelines.runner import instance_for, run, targets
from storage import Store
from tests import fixtures_corpora as fixtures
from tests.conftest import shared_data


def materialize(settings, names: list[str]):
    defs = build_definitions(settings)
    instance = instance_for(settings)
    results = run(defs, instance, targets(defs, [dg.AssetKey(n) for n in names]))
    failed = [str(t) for t, ok, _ in results if not ok]
    assert not failed, f"failed: {failed}"
    return instance


def metadata(instance, name: str) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(name))
    return {k: getattr(v, "value", v) for k, v in event.asset_materialization.metadata.items()}


def config(**roots: Path) -> str:
    return "".join(f'[corpora.{name}]\nroot = "{root}"\n' for name, root in roots.items())


# -- folds ---------------------------------------------------------------------------------------
def test_speaker_folds_are_balanced_deterministic_and_keep_each_speaker_whole():
    speakers = [f"A{s:02d}" for s in range(1, 13) for _ in range(s)]  # 12 speakers of 1..12 items
    folds, k = assign_folds(Protocol("speaker_folds", 5), speakers)
    assert k == 5 and set(folds) == {1, 2, 3, 4, 5}
    assert assign_folds(Protocol("speaker_folds", 5), speakers) == (folds, k)
    assert all(len({f for s2, f in zip(speakers, folds) if s2 == s}) == 1 for s in set(speakers))
    sizes = Counter(folds)
    assert max(sizes.values()) - min(sizes.values()) <= 2  # 78 items in five folds of 15 or 16


@pytest.mark.parametrize("protocol, speakers, expected", [
    (Protocol("speaker_folds", 5), ["a", "b", "a"], ([1, 2, 1], 2)),  # fewer speakers than folds
    (Protocol("leave_one_speaker_out"), ["KL", "DC", "JE", "DC"], ([3, 1, 2, 1], 3)),
    (Protocol("official"), [None, None], ([0, 0], 1)),
])
def test_protocols(protocol, speakers, expected):
    assert assign_folds(protocol, speakers) == expected


def test_fold_roles():
    keys, labels = ["a", "b", "c", "d"], ["joy"] * 4
    assert fold_roles("official", [0, 0, 0, 0], ["train", "test", "dev", "train"], 0, keys, labels).tolist() \
        == ["train", "test", "dev", "train"]
    # three folds: the tested one, the next one as dev (speakers unseen in train), the rest train
    assert fold_roles("speaker_folds", [1, 2, 3, 1], ["train"] * 4, 3, keys, labels).tolist() \
        == ["dev", "train", "test", "dev"]


def test_corpus_folds_asset(settings_for, tmp_path):
    root = fixtures.savee_tree(tmp_path / "savee")
    fer = fixtures.fer2013_tree(tmp_path / "fer2013")
    settings = settings_for(config(savee=root, fer2013=fer))
    defs = build_definitions(settings)
    # these trees are deliberately damaged: the items' checks fail, the folds still run
    run(defs, instance_for(settings), targets(defs, [dg.AssetKey("savee_items"), dg.AssetKey("fer2013_items")]))
    instance = materialize(settings, ["corpus_folds"])
    folds = Store(settings.store.root).parquet("corpus_folds").read()
    savee = folds.filter(pl.col("corpus") == "savee")
    assert dict(zip(savee["speaker"], savee["fold"])) == {"DC": 1, "JE": 2, "JK": 3, "KL": 4}
    assert set(savee["protocol"]) == {"leave_one_speaker_out"} and set(savee["folds"]) == {4}
    fer_rows = folds.filter(pl.col("corpus") == "fer2013")
    assert sorted(fer_rows["split"]) == ["dev", "test", "train", "train"] and set(fer_rows["fold"]) == {0}
    assert "malformed_row" not in str(folds["id"].to_list())  # only usable items have folds
    # every fold holds whole speakers by construction (no asset check restates it)
    assert folds.group_by("corpus", "speaker").agg(pl.col("fold").n_unique())["fold"].max() == 1
    assert instance.get_latest_materialization_event(dg.AssetKey("corpus_folds")) is not None


# -- faces -----------------------------------------------------------------------------------------
CKPLUS_SAMPLE = {"anger": 3, "contempt": 3, "happy": 3, "surprise": 3}


@pytest.fixture
def ckplus48_sample(tmp_path) -> Path:
    """A few real CK+48 crops, copied into a CK+48-shaped folder (a link out of the corpus root
    would not be read)."""
    real = shared_data("face", "ckplus48")
    sample = tmp_path / "ckplus48"
    for emotion, n in CKPLUS_SAMPLE.items():
        (sample / emotion).mkdir(parents=True)
        for image in sorted((real / emotion).glob("*.png"))[:n]:
            shutil.copy(image, sample / emotion / image.name)
    return sample


@pytest.mark.realdata
def test_real_ravdess_clip_and_ckplus48_crops_get_face_embeddings(settings_for, ckplus48_sample):
    ravdess = shared_data("audio", "ravdess_actor01")
    settings = settings_for(config(ravdess=ravdess, ckplus=ckplus48_sample))
    names = ["ravdess_items", "ckplus_items", "corpus_folds", "corpus_face_embeddings"]
    instance = materialize(settings, names)
    table = Store(settings.store.root).lance("corpus_face_embeddings")
    rows = table.read()
    assert rows.height == sum(CKPLUS_SAMPLE.values()) + 1
    clip = rows.filter(pl.col("corpus") == "ravdess").row(0, named=True)
    assert (clip["id"], clip["status"], clip["face_source"], clip["speaker"]) == (
        "01-01-01-01-01-01-01", "ok", "detected", "Actor_01")
    assert clip["frames"] == 4 and clip["face_score"] > 0.95  # t = 0, 1, 2, 3 s of a 3.3 s clip
    crops = rows.filter(pl.col("corpus") == "ckplus")
    assert set(crops["face_source"]) == {"whole_crop"} and set(crops["status"]) == {"ok"}
    assert crops.filter(pl.col("raw_labels").list.first() == "contempt")["label"].to_list() == [None] * 3
    vectors = np.stack(rows["vector"].to_numpy())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    # the three crops of one sequence (consecutive frames) are near-identical faces
    sequence = crops.filter(pl.col("id").str.starts_with(crops["id"][0][:8])).sort("id")
    same = np.stack(sequence["vector"].to_numpy())
    assert (same @ same.T).min() > 0.9
    assert metadata(instance, "corpus_face_embeddings")["computed"] == rows.height
    # nothing changed: nothing is encoded and Lance is not written
    versions = table.version
    materialize(settings, ["corpus_face_embeddings"])
    assert metadata(instance, "corpus_face_embeddings")["computed"] == 0
    assert table.version == versions


# -- speech ----------------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_ravdess_speaker_and_asr_embeddings_are_incremental(settings_for):
    ravdess = shared_data("audio", "ravdess_actor01")
    settings = settings_for(config(ravdess=ravdess))
    instance = materialize(settings, ["ravdess_items", "corpus_folds", "corpus_speaker_embeddings",
                                      "corpus_asr_embeddings"])
    store = Store(settings.store.root)
    speaker = store.lance("corpus_speaker_embeddings").read()
    asr = store.lance("corpus_asr_embeddings").read()
    for rows in (speaker, asr):
        # the fifteen `_audio` files; the twin is a duplicate and the clip's audio is heard already
        assert rows.height == 15 and set(rows["status"]) == {"ok"}
        assert all(i.endswith("_audio") for i in rows["id"])
        assert set(rows["speaker"]) == {"Actor_01"} and set(rows["fold"]) == {1}
        assert rows["duration_s"].min() > 3.0
        calm = rows.filter(pl.col("id") == "01-01-02-01-01-01-01_audio").row(0, named=True)
        assert (calm["label"], calm["raw_labels"]) == (None, ["calm"])
    voices = np.stack(speaker["vector"].to_numpy())
    assert voices.shape == (15, 256) and np.allclose(np.linalg.norm(voices, axis=1), 1.0, atol=1e-4)
    assert (voices @ voices.T).mean() > 0.6  # one actor throughout (voices are told apart on the demo corpora)
    assert np.isfinite(np.stack(asr["vector"].to_numpy())).all()
    asr_meta = metadata(instance, "corpus_asr_embeddings")
    assert (asr_meta["table"], asr_meta["dimensions"]) == ("corpus_asr_embeddings", 384)  # tiny.en

    # a new protocol (here: another fold) updates rows in place, encoding nothing
    folds = store.parquet("corpus_folds")
    folds.write(folds.read().with_columns(pl.lit(2, dtype=pl.Int32).alias("fold")))
    materialize(settings, ["corpus_speaker_embeddings"])
    meta = metadata(instance, "corpus_speaker_embeddings")
    assert (meta["computed"], meta["rows updated"]) == (0, 15)
    again = store.lance("corpus_speaker_embeddings").read()
    assert set(again["fold"]) == {2}
    assert np.allclose(np.stack(again.sort("key")["vector"].to_numpy()), np.stack(speaker.sort("key")["vector"].to_numpy()))

    # an item that is gone loses its row
    items = store.parquet("ravdess_items")
    items.write(items.read().filter(pl.col("id") != "01-01-08-02-01-01-01_audio"))
    folds.write(folds.read().filter(pl.col("id") != "01-01-08-02-01-01-01_audio"))
    materialize(settings, ["corpus_speaker_embeddings"])
    meta = metadata(instance, "corpus_speaker_embeddings")
    assert (meta["computed"], meta["rows deleted"]) == (0, 1)
    assert store.lance("corpus_speaker_embeddings").count() == 14


@pytest.mark.realdata
def test_one_speaker_encoder_has_one_encoder_identity_in_meld_and_corpus_tables(settings_for, demo_meld_root,
                                                                              monkeypatch):
    """MELD's speaker_embeddings and corpus_speaker_embeddings hold vectors of one model: their
    rows carry the same `encoder`; a new transform version of one table changes its fingerprint
    (and keys) only."""
    import assets.audio.embeddings as meld_audio
    from pipelines.runner import instance_for, run, targets

    ravdess = shared_data("audio", "ravdess_actor01")
    settings = settings_for(config(ravdess=ravdess, meld=demo_meld_root))
    defs = build_definitions(settings)
    wanted = ["meld_utterances", "clip_audio", "speaker_embeddings"]
    instance = instance_for(settings)
    done = run(defs, instance, targets(defs, [dg.AssetKey(n) for n in wanted], ["dev"]))
    assert all(ok for _, ok, _ in done), done
    materialize(settings, ["ravdess_items", "corpus_folds", "corpus_speaker_embeddings"])
    store = Store(settings.store.root)
    meld = store.lance("speaker_embeddings").read()
    corpus = store.lance("corpus_speaker_embeddings").read()
    spec = settings.encoders["speaker"].spec()
    assert set(meld["encoder"]) == set(corpus["encoder"]) == {spec.encoder()}
    assert metadata(instance, "corpus_speaker_embeddings")["encoder"].endswith(f"({spec.encoder()})")

    monkeypatch.setattr(meld_audio, "SPEAKER_VERSION", "2")  # what MELD's table writes changes
    done = run(defs, instance, targets(defs, [dg.AssetKey("speaker_embeddings")], ["dev"]))
    assert all(ok for _, ok, _ in done), done
    fresh = store.lance("speaker_embeddings").read(where=f"fingerprint = '{spec.with_transform('2').fingerprint()}'")
    assert fresh.height == meld.height and set(fresh["encoder"]) == {spec.encoder()}
    assert set(fresh["fingerprint"]).isdisjoint(meld["fingerprint"])
    assert store.lance("corpus_speaker_embeddings").read().sort("key").equals(corpus.sort("key"))


# -- IEMOCAP transcripts ------------------------------------------------------------------------------
def test_iemocap_transcripts_get_text_embeddings(settings_for, tmp_path):
    root = fixtures.iemocap_tree(tmp_path / "iemocap")
    settings = settings_for(config(iemocap=root))
    defs = build_definitions(settings)
    instance = instance_for(settings)
    # the items check fails on this deliberately damaged tree; the folds and embeddings still run
    run(defs, instance, targets(defs, [dg.AssetKey("iemocap_items")]))
    materialize(settings, ["corpus_folds", "corpus_text_embeddings"])
    rows = Store(settings.store.root).lance("corpus_text_embeddings").read().sort("id")
    assert dict(zip(rows["id"], rows["status"])) == {
        "Ses01F_impro01_F000": "ok", "Ses01F_impro01_F001": "ok", "Ses01F_impro01_M000": "ok",
        "Ses01F_impro01_M001": "no_text", "Ses03M_script01_1_F000": "ok", "Ses03M_script01_1_M000": "ok",
    }
    assert dict(zip(rows["id"], rows["fold"]))["Ses03M_script01_1_F000"] == 3
    first = rows.row(0, named=True)
    assert (first["label"], first["valence"], first["speaker"]) == ("neutral", 2.5, "Ses01F")
    vectors = np.stack(rows.filter(pl.col("status") == "ok")["vector"].to_numpy())
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert not np.stack(rows.filter(pl.col("status") == "no_text")["vector"].to_numpy()).any()


# -- the demo corpora, end to end ------------------------------------------------------------------
@pytest.mark.slow
def test_every_adapter_and_embedding_runs_on_the_demo_corpora(settings_for, tmp_path):
    from pipelines.demo import unimodal

    unimodal.write(tmp_path / "demo", seed=0)
    roots = {name: tmp_path / "demo" / name for name in unimodal.CORPORA}
    settings = settings_for(config(**roots))
    names = [f"{c}_items" for c in unimodal.CORPORA] + [
        "corpus_folds", "corpus_speaker_embeddings", "corpus_asr_embeddings", "corpus_face_embeddings",
        "corpus_text_embeddings"]
    materialize(settings, names)
    store = Store(settings.store.root)
    for corpus, root in roots.items():
        truth = json.loads((root / "ground_truth.json").read_text())
        status = dict(zip(*store.parquet(f"{corpus}_items").read().select("id", "status").to_dict().values()))
        assert {i: status.get(i) for i in truth["planted"]} == truth["planted"], corpus
        assert {status.get(i) for i in truth["items"]} <= {"ok", "unmapped_label"}, corpus
    folds = store.parquet("corpus_folds").read()
    assert folds.group_by("corpus").agg(pl.col("fold").n_unique()).sort("corpus").rows() == [
        ("ckplus", 5), ("cremad", 4), ("fer2013", 1), ("iemocap", 2), ("ravdess", 4)]
    faces = store.lance("corpus_face_embeddings").read()
    assert Counter(zip(faces["corpus"], faces["face_source"], faces["status"])) == {
        ("ckplus", "detected", "ok"): 45, ("fer2013", "whole_crop", "ok"): 42, ("ravdess", "detected", "ok"): 1}
    for name, expected in (("corpus_speaker_embeddings", 79), ("corpus_asr_embeddings", 79)):
        rows = store.lance(name).read()
        assert rows.height == expected and set(rows["status"]) == {"ok"}, name
    # the demo's voices differ: each actor's clips are closer to each other than to other actors'
    speaker = store.lance("corpus_speaker_embeddings").read().filter(pl.col("corpus") == "cremad")
    vectors, who = np.stack(speaker["vector"].to_numpy()), speaker["speaker"].to_numpy()
    similarity = vectors @ vectors.T
    same = similarity[(who[:, None] == who[None, :]) & ~np.eye(len(who), dtype=bool)].mean()
    assert same > similarity[who[:, None] != who[None, :]].mean() + 0.05


def test_the_demo_writer_writes_the_same_bytes_for_the_same_seed(tmp_path):
    import hashlib

    from pipelines.demo import unimodal

    def digest(folder: Path) -> dict[str, str]:
        return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(folder.rglob("*")) if p.is_file()}

    for run_dir in ("a", "b"):
        unimodal.write_fer2013(tmp_path / run_dir / "fer2013", 0)
        unimodal.write_talking_face(tmp_path / run_dir / "clip.mp4", "grace_hopper",
                                    unimodal.RAVDESS_VOICES[2], seed=0)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    unimodal.write_fer2013(tmp_path / "c" / "fer2013", 1)
    assert (tmp_path / "c" / "fer2013" / "fer2013.csv").read_bytes() != \
        (tmp_path / "a" / "fer2013" / "fer2013.csv").read_bytes()
