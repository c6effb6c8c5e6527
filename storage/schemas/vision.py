"""Vision tables: faces found in the 1 fps frames, their embeddings, speaker galleries, the
speaking face of each utterance, and zero-shot frame emotions.

Identifiers: a clip is `{split}/dia{D}_utt{U}` (MELD's utterance id); a face crop is
`{clip}/t{second}/face{k}` (k counts the frame's detections, best score first); a frame where
nothing was detected is `{clip}/t{second}`, and a clip that gave no frame is `{clip}` itself.
"""

from __future__ import annotations

import pyarrow as pa

from storage.schemas import STATUS_FIELDS, TableSchema, register, vector

_CLIP = [
    pa.field("id", pa.string(), nullable=False),  # the utterance (clip) id
    pa.field("split", pa.string(), nullable=False),
]

FACE_DETECTIONS = register(TableSchema(
    name="face_detections",
    version=2,  # 2: crop_uri relative to the store root (version 1 held it absolute)
    store_paths=("crop_uri",),
    key=("crop_id",),
    partition_by="split",
    description="Every face detected in the 1 fps frames (accepted or rejected by size and "
                "score), one row per frame without a face, one per clip without frames.",
    schema=pa.schema([
        pa.field("crop_id", pa.string(), nullable=False),
        *_CLIP,
        pa.field("second", pa.int32()),
        pa.field("time_s", pa.float64()),
        pa.field("face_index", pa.int32()),
        pa.field("box", pa.list_(pa.float32(), 4)),  # x1, y1, x2, y2 in frame pixels
        pa.field("score", pa.float32()),
        pa.field("face_size", pa.float32()),  # shorter box side, px
        pa.field("landmarks", pa.list_(pa.float32(), 10)),  # 5 (x, y): eyes, nose, mouth corners
        pa.field("crop_uri", pa.string()),  # aligned fixed-size PNG, content-addressed
        pa.field("crop_hash", pa.string()),
        pa.field("frame_width", pa.int32()),
        pa.field("frame_height", pa.int32()),
        *STATUS_FIELDS,
    ]),
))

# Declared with dlib's 128-d vectors (the default embedder); another embedder's size (FaceNet:
# 512) starts the table afresh (`LanceTable.for_vectors`).
FACE_EMBEDDINGS = register(TableSchema(
    name="face_embeddings",
    version=2,  # 2: encoder
    key=("key",),
    format="lance",
    description="Embeddings of accepted face crops, keyed by (crop id, crop hash, embedder fingerprint).",
    indexes=("speaker", "split", "encoder"),
    schema=pa.schema([
        pa.field("key", pa.string(), nullable=False),
        pa.field("crop_id", pa.string(), nullable=False),
        *_CLIP,
        pa.field("speaker", pa.string()),  # the utterance's speaker label, as in MELD
        pa.field("second", pa.int32()),
        pa.field("face_index", pa.int32()),
        pa.field("crop_hash", pa.string()),
        pa.field("fingerprint", pa.string()),
        pa.field("encoder", pa.string()),  # the model alone: equal in every table it wrote (ModelSpec.encoder)
        pa.field("vector", vector(128)),  # unit length
    ]),
))

SPEAKER_GALLERY = register(TableSchema(
    name="speaker_gallery",
    version=1,
    key=("speaker",),
    description="Each enrolled speaker's reference face embedding, or why there is none.",
    schema=pa.schema([
        pa.field("speaker", pa.string(), nullable=False),
        pa.field("utterances", pa.int32()),  # sampled utterances whose frames show one face
        pa.field("faces", pa.int32()),  # candidate crops after review
        pa.field("members", pa.int32()),  # crops that entered the reference
        pa.field("outliers", pa.int32()),
        pa.field("excluded", pa.int32()),  # by review
        pa.field("reassigned_in", pa.int32()),  # crops review moved to this speaker
        pa.field("spread", pa.float32()),  # mean cosine similarity of members to the reference
        pa.field("fingerprint", pa.string()),  # the face embedder's
        pa.field("vector", pa.list_(pa.float32())),  # unit length; null without a reference
        *STATUS_FIELDS,
    ]),
))

SPEAKER_GALLERY_FACES = register(TableSchema(
    name="speaker_gallery_faces",
    version=2,  # 2: crop_uri relative to the store root (version 1 held it absolute)
    store_paths=("crop_uri",),
    key=("crop_id",),
    description="Every crop considered for a speaker's gallery and its verdict "
                "(member, outlier, excluded).",
    schema=pa.schema([
        pa.field("crop_id", pa.string(), nullable=False),
        pa.field("speaker", pa.string(), nullable=False),  # after review's reassignments
        pa.field("labelled_speaker", pa.string()),  # the utterance's label
        *_CLIP,
        pa.field("second", pa.int32()),
        pa.field("crop_uri", pa.string()),
        pa.field("similarity", pa.float32()),  # to the speaker's robust centre
        pa.field("verdict", pa.string(), nullable=False),  # member | outlier | excluded
        pa.field("reviewed", pa.string()),  # "" | excluded | reassigned
    ]),
))

SPEAKING_FACES = register(TableSchema(
    name="speaking_faces",
    version=2,  # 2: encoder
    partition_by="split",
    description="Per utterance: the labelled speaker's face embedding (the mean over frames) "
                "and its confidence, or why there is none.",
    schema=pa.schema([
        *_CLIP,
        pa.field("speaker", pa.string()),  # the label, as in MELD
        pa.field("matched_speaker", pa.string()),  # the person matched (one of the label's names)
        pa.field("combined", pa.bool_()),
        pa.field("frames", pa.int32()),
        pa.field("frames_with_face", pa.int32()),
        pa.field("frames_matched", pa.int32()),
        pa.field("confidence", pa.float32()),  # mean cosine similarity to the reference
        pa.field("crop_ids", pa.list_(pa.string())),  # the face kept in each matched frame
        pa.field("fingerprint", pa.string()),  # the face embedder's
        pa.field("encoder", pa.string()),  # the model alone: equal in every table it wrote (ModelSpec.encoder)
        pa.field("vector", pa.list_(pa.float32())),  # unit length; null unless status ok
        *STATUS_FIELDS,
    ]),
))

FRAME_EMOTIONS = register(TableSchema(
    name="frame_emotions",
    version=1,
    key=("id", "frame"),
    partition_by="split",
    description="CLIP zero-shot emotion probabilities of every Nth video frame.",
    schema=pa.schema([
        *_CLIP,
        pa.field("frame", pa.int32()),  # index of the frame in the video stream
        pa.field("time_s", pa.float64()),
        pa.field("emotions", pa.list_(pa.string())),  # the prompts' emotions, in order
        pa.field("probabilities", pa.list_(pa.float32())),
        pa.field("emotion", pa.string()),  # the most probable
        pa.field("fingerprint", pa.string()),
        *STATUS_FIELDS,
    ]),
))
