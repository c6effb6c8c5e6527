"""The one status enumeration shared by every table: `ok` or the reason an item is unusable."""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    """Why a row is (not) usable. Stored as its string value; a row also carries a human reason."""

    OK = "ok"
    # media
    MISSING_MEDIA = "missing_media"
    CORRUPT_MEDIA = "corrupt_media"
    NO_AUDIO = "no_audio"
    SILENT = "silent"
    NO_VIDEO = "no_video"
    # annotations
    NO_ANNOTATION = "no_annotation"
    BAD_TIMESTAMP = "bad_timestamp"
    ZERO_DURATION = "zero_duration"
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"
    MALFORMED_ROW = "malformed_row"
    OUTSIDE_CORPUS = "outside_corpus"  # a file (or symlink) leading outside its corpus root: never read
    UNLABELLED = "unlabelled"
    UNMAPPED_LABEL = "unmapped_label"
    AMBIGUOUS_LABEL = "ambiguous_label"
    LOW_INTENSITY = "low_intensity"  # an intensity-rated item below the threshold for its emotion
    NO_TEXT = "no_text"  # a text item with nothing to read (e.g. ISEAR's "[ No response.]")
    DUPLICATE = "duplicate"
    # vision
    NO_FACE = "no_face"
    NO_SPEAKER_MATCH = "no_speaker_match"
    SMALL_FACE = "small_face"  # a detected face under the configured minimum size
    LOW_SCORE = "low_score"  # a detected face under the configured minimum detector score
    # models
    MISALIGNED = "misaligned"
    ENCODER_FAILED = "encoder_failed"
    UNREADABLE = "unreadable"


STATUS_VALUES: tuple[str, ...] = tuple(s.value for s in Status)


def check_status(value: str) -> str:
    """Return `value` if it names a Status, else raise ValueError listing the valid ones."""
    if value not in STATUS_VALUES:
        raise ValueError(f"unknown status {value!r}; expected one of {', '.join(STATUS_VALUES)}")
    return value
