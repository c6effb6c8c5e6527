"""Speech synthesis for the demo corpora: espeak-ng (shipped by espeakng-loader) through ctypes.

`synthesize(text, voice)` speaks one utterance, in a small helper process of its own, and returns
int16 mono samples with their sample rate. A `Voice` names an espeak-ng English variant (`m1`..`m7`, `f1`..`f5`) with a base pitch,
pitch range and rate, so that each demo speaker sounds different and a speaker model can tell
them apart. The same text, voice and seed always give the same samples.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

NATIVE_RATE = 22050  # what espeak_Initialize returns for the bundled voices


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


# One utterance, run by a fresh interpreter (`python -I -S`, ctypes only: about 15 ms to start).
# espeak-ng keeps wave-generator state (pitch phase, flutter, echo) in C statics from one
# utterance to the next and seeds its noise from the clock, so an utterance depends on its text,
# voice and seed alone only when the library is new and seeded. Unloading it in-process instead
# can hang: espeak_Terminate may block forever destroying its idle worker thread's condition.
_HELPER = r"""
import ctypes, os, sys
library, data, voice, rate, pitch, pitch_range, seed = sys.argv[1:8]
text = sys.stdin.buffer.read() + b"\0"
lib = ctypes.CDLL(library)
lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                             ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
out = sys.stdout.buffer
sample_rate = lib.espeak_Initialize(1, 0, data.encode(), 0)  # 1: AUDIO_OUTPUT_RETRIEVAL
chunks = []
@ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
def collect(wav, count, events):
    if count > 0 and wav:
        chunks.append(ctypes.string_at(wav, 2 * count))
    return 0
lib.espeak_SetSynthCallback(collect)
status = lib.espeak_SetVoiceByName(voice.encode())
# rate, volume, pitch, range, word gap
for parameter, value in ((1, int(rate)), (2, 100), (3, int(pitch)), (4, int(pitch_range)), (7, 0)):
    lib.espeak_SetParameter(parameter, value, 0)
lib.espeak_ng_SetRandSeed(int(seed))
if status == 0 and sample_rate > 0:
    status = lib.espeak_Synth(text, len(text), 0, 0, 0, 1, None, None)  # 1: espeakCHARS_UTF8
    lib.espeak_Synchronize()
out.write(b"%d %d\n" % (status if sample_rate > 0 else -1, sample_rate))
out.write(b"".join(chunks))
out.flush()
os._exit(0)  # no espeak_Terminate, no interpreter teardown: the process ending frees it all
"""


def _speak(text: str, voice: Voice, seed: int) -> tuple[np.ndarray, int]:
    """One utterance from a freshly started espeak-ng: (int16 samples, sample rate)."""
    import subprocess
    import sys

    import espeakng_loader

    data = espeakng_loader.get_data_path()
    # espeak-ng quietly falls back to its default for an unknown variant, so look for its file.
    if not (Path(data) / "voices" / "!v" / voice.variant).is_file():
        raise ValueError(f"espeak-ng has no voice {voice.name!r}")
    command = [sys.executable, "-I", "-S", "-c", _HELPER, espeakng_loader.get_library_path(), data,
               voice.name, str(voice.rate), str(voice.pitch), str(voice.pitch_range), str(seed)]
    done = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=120)
    header, _, pcm = done.stdout.partition(b"\n")
    if done.returncode != 0 or not header:
        raise RuntimeError(f"espeak-ng failed on {text!r}: {done.stderr.decode(errors='replace')[-500:]}")
    status, rate = (int(v) for v in header.split())
    if status != 0:
        raise RuntimeError(f"espeak-ng failed on {text!r} with voice {voice.name!r} (error {status})")
    return np.frombuffer(pcm, np.int16).copy(), rate


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
