"""MELD tables: one row per utterance (or unannotated clip), its 16 kHz speech audio, its 1 fps frames.

All three are partitioned by split (train, dev, test) and keyed by the utterance id
`{split}/dia{D}_utt{U}`; a clip whose file name does not follow MELD's naming keeps its own stem
(`test/final_videos_testdia3_utt1`).
"""

from __future__ import annotations

import pyarrow as pa

from storage.schemas import STATUS_FIELDS, TableSchema, register

_ID = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
]

MELD_UTTERANCES = register(TableSchema(
    name="meld_utterances",
    version=2,  # 2: clip_uri relative to the MELD corpus root (version 1 held it absolute)
    partition_by="split",
    description="One row per MELD CSV utterance plus one per clip without a CSV row.",
    schema=pa.schema([
        *_ID,
        pa.field("dialogue_id", pa.int32()),
        pa.field("utterance_id", pa.int32()),
        # the official CSV fields, as written (Sr No. is not unique, hence the id above)
        pa.field("sr_no", pa.int32()),
        pa.field("utterance", pa.string()),
        pa.field("speaker", pa.string()),
        pa.field("emotion", pa.string()),
        pa.field("sentiment", pa.string()),
        pa.field("season", pa.int32()),
        pa.field("episode", pa.int32()),
        pa.field("start_time", pa.string()),
        pa.field("end_time", pa.string()),
        # derived from them
        pa.field("text", pa.string()),  # mojibake repaired, stage directions removed
        pa.field("stage_directions", pa.list_(pa.string())),
        pa.field("speakers", pa.list_(pa.string())),
        pa.field("speaker_combined", pa.bool_()),
        pa.field("start_s", pa.float64()),
        pa.field("end_s", pa.float64()),
        pa.field("duration_s", pa.float64()),
        # the clip and what probing its container found
        pa.field("clip_uri", pa.string()),  # relative to the [corpora.meld] root (`corpus_path`)
        pa.field("clip_bytes", pa.int64()),
        pa.field("clip_sha256", pa.string()),
        pa.field("media_duration_s", pa.float64()),
        pa.field("video_codec", pa.string()),
        pa.field("fps", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("audio_codec", pa.string()),
        pa.field("audio_channels", pa.int32()),
        pa.field("audio_layout", pa.string()),
        pa.field("audio_sample_rate", pa.int32()),
        # every status that applies (`status` is the first by precedence) and handled quirks
        pa.field("issues", pa.list_(pa.string())),
        pa.field("quirks", pa.list_(pa.string())),
        pa.field("csv_line", pa.int32()),
        *STATUS_FIELDS,
    ]),
))

CLIP_AUDIO = register(TableSchema(
    name="clip_audio",
    version=2,  # 2: audio_uri relative to the store root (version 1 held it absolute)
    store_paths=("audio_uri",),
    run_columns=("reused",),
    partition_by="split",
    description="16 kHz mono speech audio per clip, from the channel (or mix) that carries the speech.",
    schema=pa.schema([
        *_ID,
        pa.field("clip_sha256", pa.string()),
        pa.field("audio_uri", pa.string()),  # content-addressed FLAC, 16 kHz mono int16
        pa.field("sample_rate", pa.int32()),
        pa.field("samples", pa.int64()),
        pa.field("duration_s", pa.float64()),
        pa.field("source_channels", pa.int32()),
        pa.field("source_layout", pa.string()),
        pa.field("source_sample_rate", pa.int32()),
        pa.field("chosen_channel", pa.int32()),  # null when several channels were mixed
        pa.field("channels_used", pa.list_(pa.int32())),
        # the channel-choice measure, one value per source channel
        pa.field("channel_band_dbfs", pa.list_(pa.float32())),
        pa.field("channel_speech_ratio", pa.list_(pa.float32())),
        pa.field("channel_modulation", pa.list_(pa.float32())),
        pa.field("channel_score_db", pa.list_(pa.float32())),
        pa.field("rms_dbfs", pa.float32()),
        pa.field("reused", pa.bool_()),
        *STATUS_FIELDS,
    ]),
))

CLIP_FRAMES = register(TableSchema(
    name="clip_frames",
    version=2,  # 2: frame_uri relative to the store root (version 1 held it absolute)
    store_paths=("frame_uri",),
    run_columns=("reused",),
    key=("id", "second"),
    partition_by="split",
    description="Frames at 1 fps (the first frame of each second), one row per (clip, frame).",
    schema=pa.schema([
        *_ID,
        pa.field("second", pa.int32()),  # null on a clip's single status row when it gave no frame
        pa.field("time_s", pa.float64()),
        pa.field("frame_uri", pa.string()),  # content-addressed JPEG
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("clip_sha256", pa.string()),
        pa.field("reused", pa.bool_()),
        *STATUS_FIELDS,
    ]),
))
