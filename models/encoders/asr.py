"""Whisper speech recognition for short clips, one interface over two backends.

Whisper pads every input to a 30 s window, so for utterance-length clips most encoder work is
padding. The short-clip method (measured by benchmarks/transcripts.py) decodes batches of
clips of similar length with the encoder input trimmed to the longest clip of the batch (never
below a 10 s window: shorter windows loop and cut endings), caps the output at about 12 tokens
per audio second + 16, and re-runs only the suspect clips (repetitive, unlikely or too many
tokens) with the backend's default long-form `transcribe` under the same cap. That is about 4x
cheaper than the default per-clip transcription at the same word error rate.

Backends (`faster-whisper`, the default, and `openai-whisper`) implement three small steps:
decode one batch, transcribe one clip the default way, and encode a batch over the full window.
`models.encoders.asr_backends.load_asr(spec)` builds the one a `ModelSpec` names; this module
knows no backend.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from models.spec import ModelSpec

SAMPLE_RATE = 16_000  # Hz, what Whisper's front end takes
HOP_LENGTH = 160  # samples between mel frames: 100 frames per second
MEL_FRAMES_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 100
ENCODER_FRAMES_PER_SECOND = MEL_FRAMES_PER_SECOND // 2  # 50: the encoder's second conv has stride 2
WINDOW_SECONDS = 30  # Whisper's one input window
MAX_TEXT_TOKENS = 448  # the decoder's context, prompt included
PROMPT_ALLOWANCE = 8  # start-of-transcript, language, task, no-timestamps, with room to spare



class AsrConfigError(ValueError):
    """An ASR spec names an unknown backend or parameter."""


@dataclasses.dataclass(frozen=True)
class AsrOptions:
    """How clips are decoded; every field can be set in `[encoders.asr] params`."""

    language: str | None = None  # None: "en" for English-only models, else detected per clip
    beam_size: int = 5
    batch_size: int = 8
    fast: bool = True  # the short-clip method; False: default transcribe for every clip
    min_window_seconds: float = 10.0  # shorter windows loop and cut endings (WER 42% at 5 s)
    tokens_per_second: float = 12.0  # output cap: tokens_per_second * duration + token_margin
    token_margin: int = 16
    # A fast decode is suspect, and re-run the default way, beyond any of these:
    max_compression_ratio: float = 2.4  # repetitive text ("stop stop stop ...")
    min_avg_logprob: float = -1.0
    max_tokens_per_second: float = 6.0
    # ASR embeddings (asr_embedding.py): pool only voiced frames; encode in the clip's own
    # window ("clip", as decoding does) or Whisper's full 30 s window ("full", 8x the cost)
    embedding_vad_trim: bool = False
    embedding_window: str = "clip"
    compute_type: str = "int8"  # faster-whisper only (int8, float32, ...); openai runs float32 on CPU
    device: str = "cpu"
    threads: int = 0  # 0: every core

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AsrOptions:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise AsrConfigError(f"unknown ASR params {unknown}; known: {', '.join(sorted(known))}")
        options = cls(**params)
        if options.embedding_window not in ("clip", "full"):
            raise AsrConfigError(f"embedding_window must be 'clip' or 'full', not {options.embedding_window!r}")
        return options

    @property
    def cpu_threads(self) -> int:
        return self.threads or os.cpu_count() or 1

    def token_cap(self, seconds: float) -> int:
        """The most tokens a clip of this length may produce (runaway repetition stops here)."""
        cap = int(math.ceil(self.tokens_per_second * max(seconds, 0.0))) + self.token_margin
        return min(cap, MAX_TEXT_TOKENS - PROMPT_ALLOWANCE)

    def window_seconds(self, seconds: float) -> float:
        """Encoder window of a clip: its length in whole seconds, within [min window, 30 s]."""
        return float(min(WINDOW_SECONDS, max(self.min_window_seconds, math.ceil(seconds))))


@dataclasses.dataclass(frozen=True)
class Transcript:
    """What Whisper heard in one clip."""

    text: str
    language: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    tokens: int
    rerun: bool = False  # decoded again the default way because the fast decode was suspect

    def suspect(self, seconds: float, options: AsrOptions) -> bool:
        """Runaway or unlikely output that the default transcription should redo."""
        return (
            self.compression_ratio > options.max_compression_ratio
            or self.avg_logprob < options.min_avg_logprob
            or self.tokens / max(seconds, 1.0) > options.max_tokens_per_second
            or self.tokens >= options.token_cap(seconds)
        )


def compression_ratio(text: str) -> float:
    """Text bytes over zlib-compressed bytes, as Whisper computes it (high = repetitive)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def clip_seconds(samples: np.ndarray) -> float:
    return samples.shape[-1] / SAMPLE_RATE


def pad_to(samples: np.ndarray, seconds: float) -> np.ndarray:
    """`samples: (N,)` zero-padded (or cut) to exactly `seconds` of audio."""
    n = int(round(seconds * SAMPLE_RATE))
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, samples.size)] = samples[:n]
    return out


def frames_covering(seconds: float) -> int:
    """Encoder frames that hold a clip of this length (at least one, at most one window)."""
    return int(min(WINDOW_SECONDS * ENCODER_FRAMES_PER_SECOND, max(1, math.ceil(seconds * ENCODER_FRAMES_PER_SECOND))))


class WhisperAsr(abc.ABC):
    """A Whisper model behind the short-clip method; backends fill in the three steps."""

    backend: str = ""

    def __init__(self, options: AsrOptions):
        self.options = options

    # -- what a backend provides --------------------------------------------------------------
    @property
    @abc.abstractmethod
    def english_only(self) -> bool: ...

    @property
    @abc.abstractmethod
    def width(self) -> int:
        """Encoder output size (d_model)."""

    @abc.abstractmethod
    def decode_batch(self, clips: Sequence[np.ndarray], window_seconds: float, max_tokens: int) -> list[Transcript]:
        """Decode clips, each zero-padded to `window_seconds`, in one batch."""

    @abc.abstractmethod
    def transcribe_default(self, clip: np.ndarray, max_tokens: int) -> Transcript:
        """The backend's own long-form transcription of one clip (temperature fallback and all);
        NaN log-probability and no-speech probability when it found no speech at all."""

    @abc.abstractmethod
    def encode_window(self, clips: Sequence[np.ndarray], window_seconds: float) -> np.ndarray:
        """Encoder output of clips zero-padded to `window_seconds`: `(B, 50 * window, width)` float32."""

    # -- the method ---------------------------------------------------------------------------
    @property
    def language(self) -> str | None:
        return "en" if self.english_only else self.options.language

    def batches(self, seconds: Sequence[float]) -> list[tuple[float, list[int]]]:
        """(window, clip indices) batches: clips sharing their own window, shortest first.

        Each clip's window depends on its length alone, never on its batch mates, so a clip is
        decoded (and embedded) the same way whichever clips it is run with.
        """
        by_window: dict[float, list[int]] = {}
        for i in sorted(range(len(seconds)), key=lambda i: seconds[i]):
            by_window.setdefault(self.options.window_seconds(seconds[i]), []).append(i)
        size = self.options.batch_size
        return [(window, members[k : k + size]) for window, members in sorted(by_window.items())
                for k in range(0, len(members), size)]

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[Transcript]:
        """Transcripts of 16 kHz mono clips `(N,)` float32, in input order."""
        seconds = [clip_seconds(c) for c in clips]
        results: list[Transcript | None] = [None] * len(clips)
        short = [i for i, s in enumerate(seconds) if self.options.fast and s <= WINDOW_SECONDS]
        for window, batch in self.batches([seconds[i] for i in short]):
            members = [short[k] for k in batch]
            cap = self.options.token_cap(max(seconds[i] for i in members))
            for i, transcript in zip(members, self.decode_batch([clips[i] for i in members], window, cap)):
                results[i] = transcript
        for i, transcript in enumerate(results):
            if transcript is None or transcript.suspect(seconds[i], self.options):
                redone = self.transcribe_default(clips[i], self.options.token_cap(min(seconds[i], WINDOW_SECONDS)))
                if transcript is not None and math.isnan(redone.no_speech_prob):
                    # the default way skipped the clip as silence: keep the fast decode's estimate
                    redone = dataclasses.replace(redone, no_speech_prob=transcript.no_speech_prob)
                results[i] = dataclasses.replace(redone, rerun=transcript is not None)
        return results  # type: ignore[return-value]

    def encoder_frames(self, clips: Sequence[np.ndarray], full_window: bool = False) -> list[np.ndarray]:
        """Per clip, the encoder frames covering its real duration: `(T_i, width)` float32.

        The encoder runs over the clip's own window (as decoding does), or over Whisper's full
        30 s window with `full_window` (8x the cost for short clips); only the frames that hold
        the clip are kept, never the padding's. Clips over 30 s keep their first 30 s.
        """
        seconds = [clip_seconds(c) for c in clips]
        out: list[np.ndarray | None] = [None] * len(clips)
        for window, batch in self.batches(seconds):
            window = float(WINDOW_SECONDS) if full_window else window
            encoded = self.encode_window([clips[i] for i in batch], window)
            expected = int(window * ENCODER_FRAMES_PER_SECOND)
            assert encoded.shape[:2] == (len(batch), expected), (encoded.shape, expected)
            for row, i in enumerate(batch):
                out[i] = encoded[row, : frames_covering(seconds[i])]
        return out  # type: ignore[return-value]
