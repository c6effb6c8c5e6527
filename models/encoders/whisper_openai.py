"""openai-whisper (PyTorch) behind the short-clip ASR interface.

Weights, offline: `path` (an openai-whisper checkpoint `.pt`, or a CTranslate2 folder, converted
once into the cache); else `tiny.en` and `base`, the bundled CTranslate2 weights converted to an
openai-whisper checkpoint (`whisper_convert`), so both backends run the same weights; else one of
OpenAI's named checkpoints already in whisper's download folder. Nothing is downloaded.

openai-whisper's encoder insists on the full 30 s window; `TrimmedAudioEncoder` takes any
window up to it (the positional embedding cut to the input), which the short-clip method needs.
Its beam search fails on a batch of several clips (the audio features are not repeated per
beam), so with `beam_size` > 1 clips are decoded one by one; greedy decoding is batched.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.encoders.asr import (
    MEL_FRAMES_PER_SECOND,
    AsrOptions,
    Transcript,
    WhisperAsr,
    WindowWords,
    Word,
    compression_ratio,
    encoder_chunks,
    padded_log_mel,
)
from models.encoders.whisper_convert import bundled_checkpoint, convert
from models.encoders.whisper_weights import BUNDLED_CT2, cache_root
from models.spec import ModelSpec, WeightsUnavailable


def whisper_download_root() -> Path:
    """Where openai-whisper keeps the checkpoints it has downloaded (`~/.cache/whisper`)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "whisper"


def resolve_checkpoint(spec: ModelSpec) -> Path:
    """The openai-whisper checkpoint file a spec names, without touching the network."""
    if spec.path:
        path = Path(spec.path)
        if path.is_dir() and (path / "model.bin").is_file():
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            target = cache_root() / f"whisper-ct2-{digest}-{spec.weights_checksum()}.pt"
            return target if target.is_file() else convert(path, target)
        if not path.is_file():
            raise WeightsUnavailable(f"{spec.path} is neither an openai-whisper checkpoint nor a CTranslate2 folder")
        return path
    name = spec.model or "tiny.en"
    if name in BUNDLED_CT2:
        return bundled_checkpoint(name)
    import whisper

    if name not in whisper._MODELS:
        raise WeightsUnavailable(f"openai-whisper knows no model {name!r}; named: {', '.join(whisper._MODELS)}")
    local = whisper_download_root() / os.path.basename(whisper._MODELS[name])
    if not local.is_file():
        raise WeightsUnavailable(
            f"openai-whisper {name!r} is not on this machine ({local} is absent) and nothing is "
            f"downloaded at run time; copy {whisper._MODELS[name]} there, or set `path` in "
            f"[encoders.asr] to a checkpoint file; bundled (offline): {', '.join(BUNDLED_CT2)}"
        )
    return local


def load_checkpoint(checkpoint: Path, device: str = "cpu"):
    """A `whisper.model.Whisper` from a checkpoint, with its word-timing heads when it names them."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    state = torch.load(checkpoint, map_location=device, weights_only=True)
    model = Whisper(ModelDimensions(**state["dims"]))
    model.load_state_dict(state["model_state_dict"])
    if "alignment_heads" in state:
        model.register_buffer("alignment_heads", state["alignment_heads"].to_sparse(), persistent=False)
    model.encoder.__class__ = trimmed_encoder_class()
    return model.to(device).eval()


def trimmed_encoder_class():
    """`AudioEncoder` that accepts windows up to 30 s (built lazily: whisper imports torch)."""
    import torch.nn.functional as F
    from whisper.model import AudioEncoder

    class TrimmedAudioEncoder(AudioEncoder):
        def forward(self, x):
            """x: (B, n_mels, 2T) log-mel, T <= n_audio_ctx -> (B, T, n_audio_state)."""
            x = F.gelu(self.conv1(x))
            x = F.gelu(self.conv2(x))
            x = x.permute(0, 2, 1)
            n_ctx = self.positional_embedding.shape[0]
            assert x.shape[1] <= n_ctx, f"{x.shape[1]} frames exceed the {n_ctx}-frame window"
            x = (x + self.positional_embedding[: x.shape[1]]).to(x.dtype)
            for block in self.blocks:
                x = block(x)
            return self.ln_post(x)

    return TrimmedAudioEncoder


class OpenAIWhisperAsr(WhisperAsr):
    backend = "openai-whisper"

    def __init__(self, checkpoint: Path, options: AsrOptions):
        super().__init__(options)
        import torch

        torch.set_num_threads(options.cpu_threads)
        self.checkpoint = checkpoint
        self.model = load_checkpoint(checkpoint, options.device)
        self.fp16 = options.device != "cpu"

    @classmethod
    def from_spec(cls, spec: ModelSpec, options: AsrOptions) -> OpenAIWhisperAsr:
        return cls(resolve_checkpoint(spec), options)

    @property
    def english_only(self) -> bool:
        return not self.model.is_multilingual

    @property
    def width(self) -> int:
        return self.model.dims.n_audio_state

    def _mel(self, clips: Sequence[np.ndarray], seconds: float):
        """Log-mel `(B, n_mels, seconds * 100)` of clips zero-padded to `seconds`."""
        import torch
        import whisper

        def log_mel(samples: np.ndarray) -> np.ndarray:
            return whisper.log_mel_spectrogram(torch.from_numpy(samples), self.model.dims.n_mels).numpy()

        mels = [torch.from_numpy(padded_log_mel(c, seconds, log_mel)) for c in clips]
        return torch.stack(mels).to(self.model.device)

    def _decode(self, mel, max_tokens: int) -> list:
        """openai-whisper's no-timestamp decode of a batch of log-mel windows."""
        import torch
        import whisper

        options = whisper.DecodingOptions(
            task="transcribe",
            language=self.language,
            sample_len=max_tokens,
            beam_size=self.options.beam_size if self.options.beam_size > 1 else None,
            without_timestamps=True,
            fp16=self.fp16,
        )
        with torch.no_grad():
            if options.beam_size is None:
                return whisper.decode(self.model, mel, options)
            # openai-whisper 20250625 beam-searches one clip at a time only
            return [whisper.decode(self.model, mel[i], options) for i in range(mel.shape[0])]

    def decode_batch(self, clips: Sequence[np.ndarray], window_seconds: float, max_tokens: int) -> list[Transcript]:
        return [
            Transcript(
                text=r.text.strip(),
                language=r.language,
                avg_logprob=float(r.avg_logprob),
                no_speech_prob=float(r.no_speech_prob),
                compression_ratio=compression_ratio(r.text.strip()),
                tokens=len(r.tokens),
            )
            for r in self._decode(self._mel(clips, window_seconds), max_tokens)
        ]

    def decode_words(self, windows: Sequence[np.ndarray], window_seconds: float, max_tokens: int,
                     content_seconds: Sequence[float]) -> list[WindowWords]:
        import torch
        from whisper.timing import find_alignment
        from whisper.tokenizer import get_tokenizer

        mel = self._mel(windows, window_seconds)
        out = []
        for k, result in enumerate(self._decode(mel, max_tokens)):
            words: list[Word] = []
            if result.tokens:
                tokenizer = get_tokenizer(self.model.is_multilingual, language=result.language, task="transcribe")
                with torch.no_grad():
                    timings = find_alignment(self.model, tokenizer, list(result.tokens), mel[k],
                                             int(math.ceil(content_seconds[k] * MEL_FRAMES_PER_SECOND)))
                # find_alignment gives a word's mean token probability, not their log-probabilities
                words = [Word(text=t.word, start=float(t.start), end=float(t.end), tokens=len(t.tokens),
                              logprob=len(t.tokens) * math.log(max(float(t.probability), 1e-12)))
                         for t in timings]
            out.append(WindowWords(words=words, language=result.language, no_speech_prob=float(result.no_speech_prob)))
        return out

    def transcribe_default(self, clip: np.ndarray, max_tokens: int) -> Transcript:
        import torch

        with torch.no_grad():
            result = self.model.transcribe(
                clip,
                language=self.language,
                beam_size=self.options.beam_size if self.options.beam_size > 1 else None,
                condition_on_previous_text=False,
                fp16=self.fp16,
                sample_len=max_tokens,
            )
        segments = result["segments"]
        text = result["text"].strip()
        weights = [len(s["tokens"]) + 1 for s in segments]
        return Transcript(
            text=text,
            language=result["language"],
            avg_logprob=float(np.average([s["avg_logprob"] for s in segments], weights=weights)) if segments else np.nan,
            no_speech_prob=float(segments[0]["no_speech_prob"]) if segments else np.nan,
            compression_ratio=compression_ratio(text),
            tokens=sum(len(s["tokens"]) for s in segments),
        )

    def encode_window(self, clips: Sequence[np.ndarray], window_seconds: float) -> np.ndarray:
        import torch

        mel = self._mel(clips, window_seconds)
        with torch.no_grad():
            return np.concatenate([self.model.encoder(mel[part]).float().cpu().numpy()
                                   for part in encoder_chunks(len(clips), self.options.encoder_batch_size)])
