"""The ASR backends by name: `load_asr(spec)` builds the Whisper a `ModelSpec` names.

Each backend module imports the interface (`models/encoders/asr.py`); only this factory imports
the backends, so the interface knows none of them.
"""

from __future__ import annotations

from models.encoders.asr import AsrConfigError, AsrOptions, WhisperAsr
from models.spec import ModelSpec

BACKENDS = ("faster-whisper", "openai-whisper")
# The params each backend takes (`[encoders.asr] params`, validated when the config loads).
PARAMS: dict[str, type] = {backend: AsrOptions for backend in BACKENDS}


def load_asr(spec: ModelSpec) -> WhisperAsr:
    """The Whisper model a spec names (`faster-whisper` or `openai-whisper`), loaded offline."""
    options = AsrOptions.from_params(spec.params)
    if spec.backend == "faster-whisper":
        from models.encoders.whisper_faster import FasterWhisperAsr

        return FasterWhisperAsr.from_spec(spec, options)
    if spec.backend == "openai-whisper":
        from models.encoders.whisper_openai import OpenAIWhisperAsr

        return OpenAIWhisperAsr.from_spec(spec, options)
    raise AsrConfigError(f"unknown ASR backend {spec.backend!r}; known: {', '.join(BACKENDS)}")
