"""What the audio assets read: each clip of a split with its speech audio, speaker and emotion."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from storage import ParquetTable, Store, content_hash, media, uris
from storage.schemas.meld import CLIP_AUDIO, MELD_UTTERANCES
from storage.status import Status

SAMPLE_RATE = 16_000  # clip_audio's rate, and what every speech model here takes
CHUNK = 64  # clips decoded and encoded at a time: bounded memory on a 10k-clip split
SILENT_PEAK = 10 ** (-80 / 20)  # no sample louder than -80 dBFS: nothing to hear (16-bit LSB is -90)


def read_split(table: ParquetTable, split: str):
    """The latest version of a split, or None when it was never written."""
    return table.read(partition=split) if table.latest(split) is not None else None


def clip_inputs(store: Store, split: str) -> list[dict[str, Any]] | None:
    """One dict per clip_audio row of the split: id, split, audio_uri, duration_s, status,
    reason, the utterance's speaker, emotion and official text, and the input hash (the audio's
    identity and upstream status). None when clip_audio has no such split yet."""
    audio = read_split(store.parquet(CLIP_AUDIO.name), split)
    if audio is None:
        return None
    utterances = read_split(store.parquet(MELD_UTTERANCES.name), split)
    about = {} if utterances is None else {
        r["id"]: r for r in utterances.select("id", "speaker", "emotion", "text").to_dicts()
    }
    rows = []
    for row in audio.select("id", "split", "clip_sha256", "audio_uri", "duration_s", "status", "reason").to_dicts():
        info = about.get(row["id"], {})
        row.update(speaker=info.get("speaker"), emotion=info.get("emotion"), official_text=info.get("text"))
        # The audio's place in the store, never the store's own place: a moved store keeps its keys.
        audio = uris.relative_to(row["audio_uri"], store.root) if row["audio_uri"] else None
        row["input_hash"] = content_hash(audio or row["clip_sha256"] or row["id"], row["status"])
        rows.append(row)
    return rows


def load_clip(uri: str) -> np.ndarray:
    """A stored clip's 16 kHz mono samples `(N,)`; MediaProblem when it is unreadable
    (corrupt_media), gone (missing_media), empty (no_audio) or digital silence (silent)."""
    try:
        samples, rate = media.load_audio(uri)
    except FileNotFoundError:
        raise media.MediaProblem(Status.MISSING_MEDIA, f"audio file {uri} is gone") from None
    except Exception as exc:  # one unreadable file is a row, not a failed run
        raise media.MediaProblem(Status.CORRUPT_MEDIA, f"audio file fails to decode: {exc}") from None
    if rate != SAMPLE_RATE:
        raise media.MediaProblem(Status.CORRUPT_MEDIA, f"audio file is {rate} Hz, not {SAMPLE_RATE}")
    if samples.size == 0:
        raise media.MediaProblem(Status.NO_AUDIO, "audio file holds no samples")
    peak = float(np.abs(samples).max())
    if peak < SILENT_PEAK:
        raise media.MediaProblem(Status.SILENT, f"the audio is digital silence (peak {20 * np.log10(max(peak, 1e-12)):.0f} dBFS)")
    return samples


def chunks(rows: list[dict[str, Any]], size: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def loaded(rows: list[dict[str, Any]]) -> tuple[list[tuple[dict[str, Any], np.ndarray]], list[tuple[dict[str, Any], media.MediaProblem]]]:
    """(rows with their samples, rows with the problem that stopped their decoding)."""
    good, bad = [], []
    for row in rows:
        try:
            good.append((row, load_clip(row["audio_uri"])))
        except media.MediaProblem as problem:
            bad.append((row, problem))
    return good, bad
