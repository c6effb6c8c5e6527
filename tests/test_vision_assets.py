"""Vision assets on the demo MELD corpus, materialized in-process with real Parquet, Lance and
media: speaking-face identity against the demo's ground truth, the face review flow end to end,
and staleness when the face embedder or the review changes. Plus the detection rows of real
frames (RAVDESS) without Dagster."""

from __future__ import annotations

import json
import textwrap

import dagster as dg
import numpy as np
import polars as pl
import pytest

from tests.conftest import shared_data

VISION = ("face_detections", "face_embeddings", "speaker_gallery", "speaking_faces")
SPLITS = ("train", "dev", "test")
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "YOLO_OFFLINE": "1"}


def _config(tmp, meld_root, extra: str = "") -> str:
    path = tmp / ("emostore.toml" if not extra else f"emostore-{abs(hash(extra))}.toml")
    path.write_text(textwrap.dedent(f"""\
        [store]
        root = "{tmp / 'store'}"
        [corpora.meld]
        root = "{meld_root}"
        [gallery]
        review_file = "{tmp / 'face_review.toml'}"
        [training]
        modality_sets = [["text"], ["text", "face"]]
        seeds = [0]
        options = {{ epochs = 2 }}
        [training.models.concat_mlp]
        hidden = 32
        """) + textwrap.dedent(extra))
    return str(path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory, demo_meld_root):
    """The session's demo MELD corpus with every vision asset (and its upstream) materialized once."""
    from pipelines.definitions import build_definitions
    from pipelines.runner import instance_for, update
    from pipelines.settings import load_settings

    tmp = tmp_path_factory.mktemp("vision")
    with pytest.MonkeyPatch.context() as env:
        for key, value in {**OFFLINE_ENV, "XDG_CACHE_HOME": str(tmp / "cache"),
                           "YOLO_CONFIG_DIR": str(tmp / "yolo")}.items():
            env.setenv(key, value)
        settings = load_settings(_config(tmp, demo_meld_root))
        defs = build_definitions(settings)
        instance = instance_for(settings)
        waves = update(defs, instance, "*speaking_faces") + update(defs, instance, "*text_embeddings")
        assert all(ok for wave in waves for _, ok, _ in wave)
        yield {"tmp": tmp, "meld": demo_meld_root, "settings": settings, "defs": defs, "instance": instance}


def _metadata(instance, asset: str, partition: str | None = None) -> dict:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=50).records
    for record in records:
        event = record.event_log_entry.dagster_event
        if partition is None or event.partition == partition:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"no materialization of {asset} [{partition}]")


def _store(demo):
    from storage import Store

    return Store(demo["settings"].store.root)


# -- what the demo shows -----------------------------------------------------------------------
@pytest.mark.slow
def test_speaking_face_has_the_right_identity_against_ground_truth(demo):
    from pipelines.demo.identity import identity_scores

    totals = {"single": [0, 0], "two_faces": [0, 0], "combined": [0, 0]}
    by_split = identity_scores(_store(demo), demo["meld"])
    assert set(by_split) == set(SPLITS)
    for split in SPLITS:
        scores = by_split[split]
        for kind, tally in totals.items():
            tally[0] += scores[f"{kind} right"]
            tally[1] += scores[f"{kind} total"]
    single_right, single_total = totals["single"]
    two_right, two_total = totals["two_faces"]
    assert single_total >= 40 and two_total >= 10  # the demo's annotated single-speaker clips
    assert single_right / single_total >= 0.95, totals
    assert two_right == two_total, totals  # two faces on screen: the labelled speaker's is kept
    assert totals["combined"][1] >= 1 and totals["combined"][0] == totals["combined"][1]

    frame = _store(demo).parquet("speaking_faces").read()
    usable = frame.filter(pl.col("status") == "ok")
    assert usable["confidence"].min() >= demo["settings"].gallery.match_threshold
    vectors = np.array(usable["vector"].to_list(), np.float32)
    assert vectors.shape[1] == 128 and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    # Upstream problems stay rows with their own status; nothing is dropped.
    utterances = _store(demo).parquet("meld_utterances").read()
    assert sorted(frame["id"]) == sorted(utterances["id"])
    bad = utterances.filter(pl.col("status") != "ok")["id"]
    assert set(frame.filter(pl.col("id").is_in(bad.implode()))["status"]) <= set(utterances["status"]) - {"ok"}


@pytest.mark.slow
def test_face_rows_account_for_every_clip_and_the_gallery_enrols_the_cast(demo):
    store = _store(demo)
    detections = store.parquet("face_detections").read()
    frames = store.parquet("clip_frames").read()
    assert set(detections["id"]) == set(frames["id"])
    accepted = detections.filter(pl.col("status") == "ok")
    assert accepted.height > 100 and accepted["crop_uri"].is_not_null().all()
    embeddings = store.lance("face_embeddings")
    assert embeddings.count() == accepted.height
    assert any("speaker" in idx.columns for idx in embeddings.table().list_indices())
    assert embeddings.count("speaker = 'Rachel'") > 0

    gallery = store.parquet("speaker_gallery").read()
    assert set(gallery["speaker"]) == {"Joey", "Chandler", "Ross", "Rachel", "Phoebe"}
    assert (gallery["status"] == "ok").all() and (gallery["members"] > 0).all()
    references = np.array(gallery["vector"].to_list(), np.float32)
    similarity = references @ references.T
    # Five distinct people: no reference would take another's face.
    assert similarity[~np.eye(len(gallery), dtype=bool)].max() < demo["settings"].gallery.match_threshold


# -- review and staleness ----------------------------------------------------------------------
def _stale(defs, instance) -> set[str]:
    from pipelines.runner import select, states

    return {str(s.target) for s in states(defs, instance, select(defs, "*speaking_faces")) if s.state != "fresh"}


def _downstream(defs, asset: str) -> set[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    found, todo = set(), [dg.AssetKey(asset)]
    while todo:
        key = todo.pop()
        if key not in found:
            found.add(key)
            todo.extend(graph.get(key).child_keys)
    return found


@pytest.mark.slow
def test_review_flow_excludes_a_crop_and_rebuilds_exactly_the_gallery_and_its_downstream(demo):
    from typer.testing import CliRunner

    from pipelines.cli import app
    from pipelines.definitions import build_definitions
    from pipelines.runner import update

    tmp, settings, instance = demo["tmp"], demo["settings"], demo["instance"]
    assert _stale(demo["defs"], instance) == set()

    # The contact sheets show every gallery crop with its id; the template review changes nothing.
    result = CliRunner().invoke(app, ["--config", settings.source, "review", "faces"])
    assert result.exit_code == 0, result.output
    review_file = tmp / "face_review.toml"
    sheets = tmp / "face_review_sheets"
    assert review_file.is_file() and (sheets / "index.html").is_file()
    faces = _store(demo).parquet("speaker_gallery_faces").read()
    victim = faces.filter((pl.col("speaker") == "Joey") & (pl.col("verdict") == "member"))["crop_id"][0]
    assert victim in (sheets / "Joey.html").read_text()
    assert _stale(build_definitions(settings), instance) == set()

    before = _store(demo).parquet("speaker_gallery").read().filter(pl.col("speaker") == "Joey")["vector"][0]
    review_file.write_text(review_file.read_text().replace("exclude = []", f'exclude = ["{victim}"]'))
    defs = build_definitions(settings)
    stale = _stale(defs, instance)
    graph_below = {k.to_user_string() for k in _downstream(defs, "speaker_gallery")}
    assert {s.split(" [")[0] for s in stale} == graph_below & {"speaker_gallery", "speaking_faces"}
    assert stale == {"speaker_gallery", *(f"speaking_faces [{s}]" for s in SPLITS)}

    waves = update(defs, instance, "*speaking_faces")
    assert sorted(str(t) for wave in waves for t, ok, _ in wave) == sorted(stale)
    after_faces = _store(demo).parquet("speaker_gallery_faces").read()
    assert after_faces.filter(pl.col("crop_id") == victim)["verdict"].to_list() == ["excluded"]
    after = _store(demo).parquet("speaker_gallery").read().filter(pl.col("speaker") == "Joey")
    assert after["excluded"][0] == 1 and not np.allclose(before.to_numpy(), after["vector"][0].to_numpy())
    assert _stale(defs, instance) == set()


@pytest.mark.slow
def test_swapping_the_face_embedder_marks_its_downstream_stale_and_nothing_of_audio_or_text(demo):
    from pipelines.definitions import build_definitions
    from pipelines.settings import load_settings

    tmp, instance = demo["tmp"], demo["instance"]
    before = build_definitions(load_settings(demo["settings"].source))
    swapped = build_definitions(load_settings(_config(tmp, demo["meld"], """
        [encoders.face_embedder]
        backend = "dlib"
        params = { jitters = 2 }
        """)))
    stale = {s.split(" [")[0] for s in _stale(swapped, instance)}
    assert stale == {"face_embeddings", "speaker_gallery", "speaking_faces"}

    def versions(defs):
        graph = defs.resolve_asset_graph()
        return {k.to_user_string(): (graph.get(k).group_name, graph.get(k).code_version)
                for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}

    old, new = versions(before), versions(swapped)
    changed = {name for name in old if old[name] != new[name]}
    users = [a.key.to_user_string() for a in swapped.assets
             if isinstance(a, dg.AssetsDefinition) and "face_embedder" in a.required_resource_keys]
    below = {k.to_user_string() for user in users for k in _downstream(swapped, user)}
    # Exactly the assets that embed faces (these, and any face corpus) and their downstream.
    assert {"face_embeddings", "speaker_gallery", "speaking_faces"} <= changed == below
    assert not {name for name in changed if old[name][0] in ("audio", "text", "meld")}


@pytest.mark.slow
def test_swapping_the_face_embedder_marks_training_cells_that_read_faces_stale_and_text_cells_fresh(demo):
    from pipelines.definitions import build_definitions
    from pipelines.runner import run, states, targets
    from pipelines.settings import load_settings

    tmp, instance = demo["tmp"], demo["instance"]
    defs = build_definitions(load_settings(demo["settings"].source))
    cells = [dg.AssetKey("train_emotion_official_text"), dg.AssetKey("train_emotion_official_text_face")]
    done = run(defs, instance, targets(defs, cells))
    assert all(ok for _, ok, _ in done), done
    faces = _store(demo).parquet("training_cells").read(partition="emotion.official.text+face.concat_mlp.s0")
    assert json.loads(faces["features"][0])["face"]["table"] == "speaking_faces"
    assert json.loads(faces["counts"][0])["masked"]["face"]["train"] >= 1  # utterances without a face stay in

    def cell_states(d):
        return {s.target.key.to_user_string(): s.state for s in states(d, instance, cells)}

    assert cell_states(defs) == {"train_emotion_official_text": "fresh", "train_emotion_official_text_face": "fresh"}
    swapped = build_definitions(load_settings(_config(tmp, demo["meld"], """
        [encoders.face_embedder]
        backend = "dlib"
        params = { jitters = 2 }
        """)))
    assert cell_states(swapped) == {"train_emotion_official_text": "fresh", "train_emotion_official_text_face": "stale"}


# -- frame emotions ----------------------------------------------------------------------------
@pytest.mark.slow
def test_frame_emotions_wait_for_weights_then_score_every_nth_frame(demo):
    from pipelines.definitions import build_definitions
    from pipelines.runner import run, targets
    from pipelines.settings import load_settings
    from tests.test_face_models import tiny_clip_folder

    tmp, instance = demo["tmp"], demo["instance"]
    defs = demo["defs"]
    results = run(defs, instance, targets(defs, [dg.AssetKey("frame_emotions")], ["test"]))
    assert all(ok for _, ok, _ in results)
    assert "no CLIP weights configured" in _metadata(instance, "frame_emotions", "test")["note"]
    assert _store(demo).parquet("frame_emotions").read(partition="test").height == 0

    folder = tiny_clip_folder(tmp / "tiny-clip")
    configured = build_definitions(load_settings(_config(tmp, demo["meld"], f"""
        [encoders.frame_emotion]
        path = "{folder}"
        [zero_shot]
        every_nth_frame = 12
        """)))
    results = run(configured, instance, targets(configured, [dg.AssetKey("frame_emotions")], ["test"]))
    assert all(ok for _, ok, _ in results)
    scored = _store(demo).parquet("frame_emotions").read(partition="test")
    ok = scored.filter(pl.col("status") == "ok")
    assert ok.height > 0 and set(ok["frame"].to_list()) <= set(range(0, 200, 12))
    assert np.allclose([sum(p) for p in ok["probabilities"].to_list()], 1, atol=1e-4)
    assert set(scored.filter(pl.col("status") != "ok")["status"]) <= {
        "too_long", "zero_duration", "no_annotation", "missing_media", "corrupt_media"}


# -- detection rows without Dagster ------------------------------------------------------------
@pytest.mark.realdata
def test_detection_rows_keep_rejected_faces_and_faceless_frames(tmp_path):
    from assets.vision.detections import FrameFaces
    from models.encoders.face_detect import DetectionOptions, MTCNNDetector
    from storage import Store
    from storage.media import frames_per_second

    frames = [f.image for f in frames_per_second(shared_data("audio", "ravdess_actor01", "01-01-01-01-01-01-01.mp4"))]
    frame_row = {"id": "ravdess/01", "split": "test", "second": 0, "time_s": 0.0, "width": 1280, "height": 720}
    store = Store(str(tmp_path / "store"))
    strict = DetectionOptions(min_size=400)  # the actor's face is about 310 px: too small here
    worker = FrameFaces(store, MTCNNDetector(strict), strict)
    (rejected,) = worker.frame_rows(frame_row, frames[0], worker.detector.detect(frames[:1])[0])
    assert rejected["status"] == "small_face" and "< min_size 400" in rejected["reason"]
    assert rejected["crop_uri"] is None and rejected["box"] is not None

    normal = DetectionOptions()
    worker = FrameFaces(store, MTCNNDetector(normal), normal)
    (accepted,) = worker.frame_rows(frame_row, frames[0], worker.detector.detect(frames[:1])[0])
    assert accepted["status"] == "ok" and accepted["crop_id"] == "ravdess/01/t0/face0"
    assert accepted["crop_uri"].endswith(f"{accepted['crop_hash']}.png")
    black = np.zeros_like(frames[0])
    (empty,) = worker.frame_rows(frame_row, black, worker.detector.detect([black])[0])
    assert empty["status"] == "no_face" and empty["crop_id"] == "ravdess/01/t0"


def test_gallery_settings_version_exactly_the_assets_that_read_them(settings_for, tmp_path):
    """The match threshold versions speaking_faces alone; the review file the gallery and its
    downstream; the face settings what crops faces and its downstream. No run needed: the
    code versions are what Dagster compares."""
    from pipelines.definitions import build_definitions

    def versions(text: str) -> dict[str, str]:
        graph = build_definitions(settings_for(text)).resolve_asset_graph()
        return {k.to_user_string(): graph.get(k).code_version for k in graph.get_all_asset_keys()
                if graph.get(k).is_materializable}

    review = tmp_path / "review.toml"
    base = versions(f'[gallery]\nreview_file = "{review}"\n')

    def changed(text: str) -> set[str]:
        other = versions(text)
        return {name for name in base if base[name] != other[name]}

    defs = build_definitions(settings_for(""))
    below = {name: {k.to_user_string() for k in _downstream(defs, name)}
             for name in ("speaker_gallery", "speaking_faces")}
    assert changed(f'[gallery]\nreview_file = "{review}"\nmatch_threshold = 0.95\n') == below["speaking_faces"]
    review.write_text('exclude = ["train/dia0_utt0/t0/face0"]\n')
    assert changed(f'[gallery]\nreview_file = "{review}"\n') == below["speaker_gallery"]
    review.write_text('# only a comment: the review says nothing new\nexclude = []\n')
    assert changed(f'[gallery]\nreview_file = "{review}"\n') == set()
    readers = [a.key.to_user_string() for a in defs.assets
               if isinstance(a, dg.AssetsDefinition) and "faces" in a.required_resource_keys]
    assert "face_detections" in readers  # (a face corpus may crop with the same settings)
    faces_below = {k.to_user_string() for name in readers for k in _downstream(defs, name)}
    assert changed(f'[gallery]\nreview_file = "{review}"\n[faces]\nmin_size = 60\n') == faces_below
