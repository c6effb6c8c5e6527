"""Voice activity with silero-vad (ships in its package): where in a clip someone speaks."""

from __future__ import annotations

import functools
import warnings

import numpy as np

SAMPLE_RATE = 16_000  # Hz, what silero-vad takes here
# silero's default minimum (250 ms) misses one-word exclamations ("Hey!" lasts about 0.3 s)
MIN_SPEECH_MS = 100


@functools.cache
def _model():
    import torch

    threads = torch.get_num_threads()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # its torch.jit.load
        from silero_vad import load_silero_vad

        model = load_silero_vad()
    torch.set_num_threads(threads)  # importing silero_vad sets one thread for the whole process
    return model


def speech_spans(clip: np.ndarray, threshold: float = 0.5, min_speech_ms: int = MIN_SPEECH_MS) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of speech in a 16 kHz mono clip `(N,)`."""
    import torch
    from silero_vad import get_speech_timestamps

    if clip.size == 0:
        return []
    threads = torch.get_num_threads()
    found = get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32)), _model(),
                                  threshold=threshold, min_speech_duration_ms=min_speech_ms,
                                  sampling_rate=SAMPLE_RATE)
    torch.set_num_threads(threads)
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in found]


def voiced_seconds(clip: np.ndarray) -> float:
    """Total seconds of speech in a clip."""
    return float(sum(end - start for start, end in speech_spans(clip)))
