"""Whisper speech recognition for short clips, one interface over two backends.

Whisper pads every input to a 30 s window, so for utterance-length clips most encoder work is
padding. The short-clip method (measured by benchmarks/transcripts.py) packs clips short
enough to share a 10 s window (1 s apart, with at least 4 s of silence after the last: with
less, the last one loops), decodes each window once and gives each decoded word to the clip
its cross-attention alignment overlaps most; a clip that gets
no words or suspect ones, and every clip too long to share, is decoded in a batch of clips of
similar length with the encoder input trimmed to the longest clip of the batch (never below a
10 s window: shorter windows loop and cut endings). Output is capped at about 12 tokens per audio
second + 16, and suspect clips (repetitive, unlikely or too many tokens) are re-run with the
backend's default long-form `transcribe` under the same cap. Log-mel features are computed over
the clip only (the padding's frames are all equal) and the encoder takes a few clips per call.

Backends (`faster-whisper`, the default, and `openai-whisper`) implement four small steps:
decode one batch, decode packed windows into aligned words, transcribe one clip the default way,
and encode a batch over a window. `models.encoders.asr_backends.load_asr(spec)` builds the one a
`ModelSpec` names; this module knows no backend.
"""

from __future__ import annotations

import abc
import dataclasses
import math
import os
import zlib
from collections.abc import Callable, Mapping, Sequence
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
# padded_log_mel: the last computed frame starts 440+ samples past the clip, beyond its STFT
# window's half width (200), and its reflect-padded end sees zeros only
SILENT_FRAME_MARGIN = 5 * HOP_LENGTH  # 800 samples
PUNCTUATION = "\"'.,!?:;-…“”‘’¿¡()[]"



class AsrConfigError(ValueError):
    """An ASR spec names an unknown backend or parameter."""


@dataclasses.dataclass(frozen=True)
class AsrOptions:
    """How clips are decoded; every field can be set in `[encoders.asr] params`."""

    language: str | None = None  # None: "en" for English-only models, else detected per clip
    beam_size: int = 5
    batch_size: int = 8  # clips per decoder call
    # clips per encoder call: the encoder's activations for more than a few 10 s windows
    # outgrow the CPU caches (tiny.en int8 on 2 cores, 10 s windows: 0.036 CPU s per clip at 2
    # or 4 per call, 0.061 at 8, 0.086 at 16), so a decoder batch is encoded a few at a time
    encoder_batch_size: int = 2
    fast: bool = True  # the short-clip method; False: default transcribe for every clip
    # Clips short enough to share a min_window_seconds window are decoded there together (one
    # decode, split back by the cross-attention's word alignment), pack_gap_seconds apart and
    # with at least pack_tail_seconds of silence after the last (with less, the last one loops)
    pack: bool = True
    pack_gap_seconds: float = 1.0
    pack_tail_seconds: float = 4.0
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
        if options.batch_size < 1 or options.encoder_batch_size < 1:
            raise AsrConfigError("batch_size and encoder_batch_size must be at least 1")
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
class Word:
    """A word decoded from a packed window, placed by the cross-attention alignment."""

    text: str  # as decoded, its leading space included
    start: float  # seconds from the window's start
    end: float
    tokens: int
    logprob: float  # its tokens' summed log-probability


@dataclasses.dataclass(frozen=True)
class WindowWords:
    """One packed window's decode: its words in order, and the window's own estimates."""

    words: list[Word]
    language: str
    no_speech_prob: float


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


def padded_log_mel(samples: np.ndarray, seconds: float, log_mel: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`log_mel(pad_to(samples, seconds))` cut to `seconds * 100` frames, computed over the clip
    and a little silence only.

    Whisper's log-mel is floored at its maximum - 8, so every frame that sees only the zero
    padding holds the same value; they are copied from the last computed frame (one such) instead
    of computed (for a 2 s clip in a 10 s window, 4/5 of the STFT). `log_mel` maps `(N,)` samples
    to `(n_mels, N // 160)` frames, with the STFT centred (frame j spans samples j * 160 +- 200).
    """
    frames = int(round(seconds * MEL_FRAMES_PER_SECOND))
    clip = min(samples.size, frames * HOP_LENGTH)
    # frames past the clip by more than half an STFT window (200 samples) see only zeros
    computed = int(math.ceil((clip + SILENT_FRAME_MARGIN) / HOP_LENGTH))
    if computed >= frames:
        return log_mel(pad_to(samples, seconds))[:, :frames]
    short = log_mel(pad_to(samples, computed * HOP_LENGTH / SAMPLE_RATE))[:, :computed]
    out = np.empty((short.shape[0], frames), dtype=short.dtype)
    out[:, :computed] = short
    out[:, computed:] = short[:, -1:]
    return out


def place_words(words: Sequence[Word], starts: Sequence[float], seconds: Sequence[float]) -> list[list[Word]]:
    """Each packed clip's words (`starts`, `seconds`: the clips' offsets in the window and their
    lengths, in window order). A word belongs to the clip its aligned span overlaps most (the
    alignment stretches words over the silence beside them, so its start or end alone can
    fall in a gap); one that overlaps none, to the clip nearest its middle; punctuation, which
    the alignment puts in the silence after the clip it ends, goes with the word before it."""
    placed: list[list[Word]] = [[] for _ in starts]
    previous = None
    for word in words:
        if previous is not None and not word.text.strip().strip(PUNCTUATION):
            k = previous
        else:
            overlaps = [min(word.end, s + n) - max(word.start, s) for s, n in zip(starts, seconds)]
            k = int(np.argmax(overlaps))
            if overlaps[k] <= 0:
                middle = (word.start + word.end) / 2
                k = int(np.argmin([max(s - middle, middle - s - n) for s, n in zip(starts, seconds)]))
        placed[k].append(word)
        previous = k
    return placed


def encoder_chunks(n: int, size: int) -> list[slice]:
    """The slices of a batch of `n` clips that go through the encoder together."""
    return [slice(k, min(k + size, n)) for k in range(0, n, size)]


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
        """Decode clips, each zero-padded to `window_seconds`, in one batch (encoded
        `encoder_batch_size` at a time)."""

    def decode_words(self, windows: Sequence[np.ndarray], window_seconds: float, max_tokens: int,
                     content_seconds: Sequence[float]) -> list[WindowWords]:
        """Decode packed windows (each `window_seconds` long, audio in its first
        `content_seconds`) in one batch, words placed by the cross-attention alignment. A backend
        without it decodes every clip alone."""
        raise NotImplementedError

    @property
    def packs_clips(self) -> bool:
        return self.options.pack and type(self).decode_words is not WhisperAsr.decode_words

    @abc.abstractmethod
    def transcribe_default(self, clip: np.ndarray, max_tokens: int) -> Transcript:
        """The backend's own long-form transcription of one clip (temperature fallback and all);
        NaN log-probability and no-speech probability when it found no speech at all."""

    @abc.abstractmethod
    def encode_window(self, clips: Sequence[np.ndarray], window_seconds: float) -> np.ndarray:
        """Encoder output of clips zero-padded to `window_seconds`: `(B, 50 * window, width)` float32
        (encoded `encoder_batch_size` at a time)."""

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

    def packs(self, seconds: Sequence[float]) -> list[list[int]]:
        """Clip indices per shared window, shortest first; only windows of two clips or more."""
        room = self.options.min_window_seconds - self.options.pack_tail_seconds
        groups: list[list[int]] = []
        used = math.inf
        for i in sorted(range(len(seconds)), key=lambda i: seconds[i]):
            if used + seconds[i] > room:
                groups.append([])
                used = 0.0
            groups[-1].append(i)
            used += seconds[i] + self.options.pack_gap_seconds
        return [g for g in groups if len(g) > 1]

    def decode_packed(self, clips: Sequence[np.ndarray], groups: Sequence[Sequence[int]]) -> list[list[Transcript | None]]:
        """Per group, per clip, its transcript from the group's shared window; None where the
        clip got no words or they look suspect (it is then decoded alone)."""
        gap = int(round(self.options.pack_gap_seconds * SAMPLE_RATE))
        window = self.options.min_window_seconds
        windows, starts, contents = [], [], []
        for group in groups:
            audio = np.zeros(int(round(window * SAMPLE_RATE)), np.float32)
            at, offsets = 0, []
            for i in group:
                audio[at: at + clips[i].size] = clips[i]
                offsets.append(at / SAMPLE_RATE)
                at += clips[i].size + gap
            windows.append(audio)
            starts.append(offsets)
            contents.append((at - gap) / SAMPLE_RATE)
        decoded = self.decode_words(windows, window, self.options.token_cap(max(contents)), contents)
        out: list[list[Transcript | None]] = []
        for group, offsets, result in zip(groups, starts, decoded):
            seconds = [clip_seconds(clips[i]) for i in group]
            texts: list[Transcript | None] = []
            for words, length in zip(place_words(result.words, offsets, seconds), seconds):
                text = "".join(w.text for w in words).strip()
                tokens = sum(w.tokens for w in words)
                transcript = Transcript(
                    text=text, language=result.language,
                    avg_logprob=sum(w.logprob for w in words) / (tokens + 1),
                    no_speech_prob=result.no_speech_prob,  # the window's: one decode for all its clips
                    compression_ratio=compression_ratio(text), tokens=tokens,
                ) if text else None
                texts.append(None if transcript is None or transcript.suspect(length, self.options) else transcript)
            out.append(texts)
        return out

    def transcribe(self, clips: Sequence[np.ndarray]) -> list[Transcript]:
        """Transcripts of 16 kHz mono clips `(N,)` float32, in input order."""
        seconds = [clip_seconds(c) for c in clips]
        results: list[Transcript | None] = [None] * len(clips)
        short = [i for i, s in enumerate(seconds) if self.options.fast and s <= WINDOW_SECONDS]
        if self.packs_clips:
            groups = [[short[k] for k in g] for g in self.packs([seconds[i] for i in short])]
            size = self.options.batch_size
            for start in range(0, len(groups), size):
                batch = groups[start: start + size]
                for group, transcripts in zip(batch, self.decode_packed(clips, batch)):
                    for i, transcript in zip(group, transcripts):
                        results[i] = transcript
            short = [i for i in short if results[i] is None]  # the rest, and clips not placed, alone
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
