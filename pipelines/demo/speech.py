"""Speech synthesis for the demo corpora: espeak-ng (shipped by espeakng-loader) through ctypes.

`synthesize(text, voice)` speaks one utterance and returns int16 mono samples with their sample
rate. A `Voice` names an espeak-ng English variant (`m1`..`m7`, `f1`..`f5`) with a base pitch,
pitch range and rate, so that each demo speaker sounds different and a speaker model can tell
them apart. The same text, voice and seed always give the same samples.
"""

from __future__ import annotations

import atexit
import ctypes
import dataclasses
import shutil
import tempfile
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

NATIVE_RATE = 22050  # what espeak_Initialize returns for the bundled voices

# espeak-ng's C constants (speak_lib.h)
_AUDIO_OUTPUT_RETRIEVAL = 1
_CHARS_UTF8 = 1
_RATE, _VOLUME, _PITCH, _RANGE, _WORDGAP = 1, 2, 3, 4, 7

_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: language, variant and prosody."""

    variant: str = "m3"  # espeak-ng variant: m1..m8, f1..f5 (and the named ones in voices/!v)
    pitch: int = 50  # base pitch, 0..100
    pitch_range: int = 50  # intonation range, 0..100 (0 is monotone)
    rate: int = 165  # words per minute, 80..450
    language: str = "en"

    @property
    def name(self) -> str:
        return f"{self.language}+{self.variant}"

    def label(self) -> str:
        """A short stable description, e.g. `en+m3 pitch=40 range=60 rate=160`."""
        return f"{self.name} pitch={self.pitch} range={self.pitch_range} rate={self.rate}"


@lru_cache(maxsize=1)
def _private_library() -> str:
    """A copy of libespeak-ng that only this module loads, so unloading it really resets it."""
    import espeakng_loader

    source = Path(espeakng_loader.get_library_path())
    folder = Path(tempfile.mkdtemp(prefix="emostore-espeak-"))
    atexit.register(shutil.rmtree, folder, True)
    target = folder / source.name
    shutil.copyfile(source, target)
    return str(target)


def _speak(text: str, voice: Voice, seed: int) -> tuple[np.ndarray, int]:
    """One utterance from a freshly loaded library.

    espeak-ng keeps wave-generator state (pitch phase, flutter, echo) in C statics from one
    utterance to the next and seeds its noise from the clock; loading the library afresh and
    seeding it is what makes an utterance depend on its text, voice and seed alone.
    """
    import _ctypes

    import espeakng_loader

    chunks: list[np.ndarray] = []

    def collect(wav, count, _events) -> int:
        if count > 0 and wav:
            chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0  # 0: keep synthesizing

    callback = _SYNTH_CALLBACK(collect)
    with _LOCK:
        lib = ctypes.CDLL(_private_library())
        try:
            lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
            lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
            lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
            lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
            lib.espeak_Synth.argtypes = [
                ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
            ]
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_RETRIEVAL, 0, espeakng_loader.get_data_path().encode(), 0)
            if rate <= 0:
                raise RuntimeError("espeak-ng failed to initialize (espeakng-loader's data folder unreadable?)")
            lib.espeak_SetSynthCallback(callback)
            # espeak-ng quietly ignores an unknown variant, so look for its file first.
            variants = Path(espeakng_loader.get_data_path()) / "voices" / "!v"
            if not (variants / voice.variant).is_file() or lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise ValueError(f"espeak-ng has no voice {voice.name!r}")
            for parameter, value in ((_RATE, voice.rate), (_PITCH, voice.pitch),
                                     (_RANGE, voice.pitch_range), (_VOLUME, 100), (_WORDGAP, 0)):
                lib.espeak_SetParameter(parameter, value, 0)
            lib.espeak_ng_SetRandSeed(seed)
            data = text.encode("utf-8") + b"\0"
            status = lib.espeak_Synth(data, len(data), 0, 0, 0, _CHARS_UTF8, None, None)
            lib.espeak_Synchronize()
            lib.espeak_Terminate()
        finally:
            _ctypes.dlclose(lib._handle)
    if status != 0:
        raise RuntimeError(f"espeak-ng failed on {text!r} (error {status})")
    return (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)), rate


def synthesize(text: str, voice: Voice = Voice(), sample_rate: int | None = None,
               trim: bool = True, seed: int = 1) -> tuple[np.ndarray, int]:
    """Speak `text` with `voice`: (int16 mono samples, sample rate).

    `sample_rate` resamples from espeak-ng's native 22050 Hz (polyphase); `trim` drops the
    leading and trailing silence espeak-ng adds; `seed` seeds its voicing noise.
    """
    samples, rate = _speak(text, voice, seed)
    if trim:
        samples = trim_silence(samples)
    if sample_rate and sample_rate != rate:
        samples, rate = resample(samples, rate, sample_rate), sample_rate
    return samples, rate


def trim_silence(samples: np.ndarray, threshold: int = 64) -> np.ndarray:
    """`samples` without the leading and trailing stretch whose amplitude stays below `threshold`."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0]: loud[-1] + 1]


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """int16 samples at `from_rate` resampled to `to_rate` (polyphase filter, clipped to int16)."""
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(from_rate, to_rate)
    out = resample_poly(samples.astype(np.float64), to_rate // g, from_rate // g)
    return np.clip(np.round(out), -32768, 32767).astype(np.int16)
