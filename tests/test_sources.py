"""Corpus roots as observed sources: a changed CSV line, an added or deleted clip, a touched file.

Unit tests of the file observation (stat facts cached, content hashed only where they change),
then real Dagster runs on a copy of the demo MELD: MELD's utterances, clip audio and text
embeddings of every split, the dev split's frames, faces, transcripts and speaker and ASR
embeddings, and what each change to the corpus turns stale and recomputes."""

from __future__ import annotations

import csv
import os
import shutil

import dagster as dg
import polars as pl
import pytest

from storage.observe import observe, source_files


def test_observation_hashes_only_what_changed_and_names_it(tmp_path):
    root = tmp_path / "corpus"
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("one\n")
    (root / "sub" / "b.wav").write_bytes(b"\0" * 1000)
    (root / ".hidden").write_text("not a source file")
    cache = tmp_path / "cache.json"
    first = observe(source_files(root), root, cache)
    assert first.files == 2 and first.hashed == 2 and first.bytes_read == 1004
    again = observe(source_files(root), root, cache)
    assert again.version == first.version and again.hashed == 0 and again.bytes_read == 0 and not again.reason()

    os.utime(root / "a.csv", ns=(1, 1))  # touched, not changed: re-hashed once, same version
    touched = observe(source_files(root), root, cache)
    assert touched.version == first.version and touched.hashed == 1 and not touched.reason()

    (root / "a.csv").write_text("two\n")
    (root / "c.txt").write_text("new")
    (root / "sub" / "b.wav").unlink()
    changed = observe(source_files(root), root, cache)
    assert changed.version != first.version and changed.hashed == 2
    assert changed.reason() == "a.csv changed; c.txt added; b.wav removed"

    moved = tmp_path / "moved"
    shutil.copytree(root, moved)
    assert observe(source_files(moved), moved, tmp_path / "other.json").version == changed.version, \
        "the version names content and relative paths, not where the folder is"
    assert observe(source_files(root), root, cache, rehash=True).hashed == 2


def test_a_symlink_is_not_followed(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text("a")
    (tmp_path / "outside.txt").write_text("secret")
    (root / "link.txt").symlink_to(tmp_path / "outside.txt")
    assert [p.name for p in source_files(root)] == ["a.txt"]


# -- Dagster on a copy of the demo MELD -------------------------------------------------------------
SELECTION = "key:meld_utterances or key:clip_audio or key:text_embeddings"  # every split
# per clip, from the audio and the frames: the dev split only, to keep the module short
FEATURES = ("key:transcripts or key:speaker_embeddings or key:asr_embeddings or key:clip_frames "
            "or key:face_detections or key:face_embeddings")


@pytest.fixture(scope="module")
def meld_store(tmp_path_factory, demo_meld_root):
    """One store for the tests below, which change its corpus in turn (in file order)."""
    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for
    from pipelines.settings import load_settings

    tmp_path = tmp_path_factory.mktemp("sources")
    meld = tmp_path / "MELD.Raw"
    shutil.copytree(demo_meld_root, meld)
    for path in [meld, *meld.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the shared copy is read-only
    config = tmp_path / "emostore.toml"
    config.write_text(f'[store]\nroot = "{tmp_path / "store"}"\n[corpora.meld]\nroot = "{meld}"\n')
    settings = load_settings(config)
    h = {"meld": meld, "defs": build_definitions(settings), "instance": instance_for(settings)}
    _update(h)
    return h


def _update(h) -> list[str]:
    """`update` as a user runs it: the three assets on every split, then the features on dev."""
    from pipelines.runner import update

    waves = update(h["defs"], h["instance"], SELECTION) + update(h["defs"], h["instance"], FEATURES, partitions=["dev"])
    assert all(ok for wave in waves for _, ok, _ in wave), waves
    return sorted(str(t) for wave in waves for t, _, _ in wave)


def _stale(h) -> dict[str, str]:
    from pipelines.runner import select, states

    features = set(select(h["defs"], FEATURES))
    keys = select(h["defs"], f"{SELECTION} or {FEATURES}")
    return {str(s.target): s.reason for s in states(h["defs"], h["instance"], keys)
            if s.state != "fresh" and (s.target.key not in features or s.target.partition == "dev")}


def _meta(h, asset: str, partition: str) -> dict:
    records = h["instance"].fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1).records
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _rows(path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def _write(path, header, rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([header, *rows])


def test_a_fresh_store_stays_fresh_and_a_touched_file_changes_nothing(meld_store):
    h = meld_store
    assert _stale(h) == {}
    assert _update(h) == []
    csv_file = h["meld"] / "dev_sent_emo.csv"
    os.utime(csv_file, ns=(10**9, 10**9))  # touched: re-hashed, same content
    assert _stale(h) == {} and _update(h) == []


def test_an_edited_csv_line_reruns_its_split_and_embeds_one_text(meld_store):
    h = meld_store
    path = h["meld"] / "dev_sent_emo.csv"
    header, rows = _rows(path)
    rows[0][header.index("Utterance")] = "An edited line, nothing like the old one."
    _write(path, header, rows)
    stale = _stale(h)
    assert set(stale) == {"meld_utterances [dev]"}, stale
    assert "dev_sent_emo.csv changed" in stale["meld_utterances [dev]"]
    ran = _update(h)
    assert "meld_utterances [dev]" in ran and not any("[train]" in r or "[test]" in r for r in ran)
    assert _meta(h, "text_embeddings", "dev")["computed"] == 1
    assert _meta(h, "clip_audio", "dev")["computed"] == 0, "no clip decoded for a text edit"
    # clip_audio and clip_frames recomputed nothing, so their data versions stayed: transcripts
    # and face detections did not run; the embeddings that read the utterances (their speaker
    # labels) re-ran and embedded nothing
    assert not {"transcripts [dev]", "face_detections [dev]"} & set(ran), ran
    assert _meta(h, "clip_frames", "dev")["computed clips"] == 0
    for name in ("speaker_embeddings", "asr_embeddings", "face_embeddings"):
        assert f"{name} [dev]" not in ran or _meta(h, name, "dev")["computed"] == 0, name
    assert _update(h) == []


def test_an_added_clip_is_decoded_alone_and_a_deleted_one_leaves(meld_store):
    from storage import Store

    h = meld_store
    store = Store(h["defs"].resources["store"].root)
    path = h["meld"] / "dev_sent_emo.csv"
    header, rows = _rows(path)
    dia, utt = header.index("Dialogue_ID"), header.index("Utterance_ID")
    clips = h["meld"] / "dev_splits_complete"
    faces = store.parquet("face_detections").read("dev")
    with_face = {i for i, status in zip(faces["id"], faces["status"]) if status == "ok"}
    source = next(r for r in rows if f"dev/dia{r[dia]}_utt{r[utt]}" in with_face)  # a clip showing a face
    new = list(source)
    new[utt] = str(max(int(r[utt]) for r in rows if r[dia] == source[dia]) + 1)
    new[header.index("Utterance")] = "A line added with its own clip."
    shutil.copy(clips / f"dia{source[dia]}_utt{source[utt]}.mp4", clips / f"dia{new[dia]}_utt{new[utt]}.mp4")
    _write(path, header, [*rows, new])
    ran = _update(h)
    assert "meld_utterances [dev]" in ran
    added = f"dev/dia{new[dia]}_utt{new[utt]}"
    faces = store.parquet("face_detections").read("dev")
    accepted = sum(1 for i, status in zip(faces["id"], faces["status"]) if i == added and status == "ok")
    assert accepted >= 1
    computed = {name: _meta(h, name, "dev")[field] for name, field in (
        ("clip_audio", "computed"), ("text_embeddings", "computed"), ("transcripts", "computed"),
        ("speaker_embeddings", "computed"), ("asr_embeddings", "computed"),
        ("clip_frames", "computed clips"), ("face_detections", "clips detected"), ("face_embeddings", "computed"))}
    assert computed == {"clip_audio": 1, "text_embeddings": 1, "transcripts": 1, "speaker_embeddings": 1,
                        "asr_embeddings": 1, "clip_frames": 1, "face_detections": 1,
                        "face_embeddings": accepted}, computed

    (clips / f"dia{new[dia]}_utt{new[utt]}.mp4").unlink()
    _write(path, header, rows)
    assert "meld_utterances [dev]" in _stale(h)
    _update(h)
    for name in ("clip_audio", "transcripts", "clip_frames", "face_detections"):
        assert added not in set(store.parquet(name).read("dev")["id"]), name
    for name in ("speaker_embeddings", "face_embeddings", "text_embeddings"):
        assert not store.lance(name).read(columns=["id"]).filter(pl.col("id") == added).height, name
    assert _meta(h, "clip_audio", "dev")["computed"] == 0
