"""ASR embeddings: the Whisper encoder's output mean-pooled over the frames that hold the clip.

Whisper's encoder turns a window of audio into 50 frames per second; for a short clip most of a
window is padding, whose frames describe silence, not the clip. The embedding averages only the
frames covering the clip's real duration, or, with `embedding_vad_trim`, only those inside the
stretches silero-vad finds speech in (all of the clip's frames when it finds none).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.encoders.asr import ENCODER_FRAMES_PER_SECOND, WhisperAsr

EMBEDDING_VERSION = "1"  # bumped when the pooling changes what is written


def voiced_frame_mask(n_frames: int, spans: Sequence[tuple[float, float]]) -> np.ndarray:
    """(n_frames,) bool: frames whose centre lies inside a speech span (seconds)."""
    centres = (np.arange(n_frames) + 0.5) / ENCODER_FRAMES_PER_SECOND
    mask = np.zeros(n_frames, dtype=bool)
    for start, end in spans:
        mask |= (centres >= start) & (centres < end)
    return mask


class AsrEmbedder:
    """Mean-pooled Whisper-encoder vectors `(width,)` float32 of 16 kHz mono clips."""

    def __init__(self, asr: WhisperAsr):
        self.asr = asr
        self.vad_trim = asr.options.embedding_vad_trim
        self.full_window = asr.options.embedding_window == "full"

    @property
    def dim(self) -> int:
        return self.asr.width

    def embed(self, clips: Sequence[np.ndarray]) -> list[np.ndarray]:
        frames = self.asr.encoder_frames(clips, full_window=self.full_window)
        out = []
        for clip, clip_frames in zip(clips, frames):
            if self.vad_trim:
                from models.encoders.vad import speech_spans

                mask = voiced_frame_mask(len(clip_frames), speech_spans(clip))
                if mask.any():
                    clip_frames = clip_frames[mask]
            out.append(clip_frames.mean(axis=0).astype(np.float32))
        return out
