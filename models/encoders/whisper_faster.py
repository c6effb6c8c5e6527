"""faster-whisper (CTranslate2) behind the short-clip ASR interface: the default backend.

Weights, offline: `path` (a CTranslate2 model folder), else a bundled model by name (`tiny.en`,
`base`), else a CTranslate2 model already in the Hugging Face cache; anything else fails with a
message saying how to provide it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.encoders.asr import (
    SAMPLE_RATE,
    AsrOptions,
    ENCODER_FRAMES_PER_SECOND,
    MEL_FRAMES_PER_SECOND,
    Transcript,
    WhisperAsr,
    WindowWords,
    Word,
    compression_ratio,
    encoder_chunks,
    padded_log_mel,
)
from models.encoders.whisper_weights import BUNDLED_CT2, bundled_ct2_dir
from models.spec import ModelSpec, WeightsUnavailable


def resolve_ct2_dir(spec: ModelSpec) -> Path:
    """The CTranslate2 model folder a spec names, without touching the network."""
    if spec.path:
        path = Path(spec.path)
        if not (path / "model.bin").is_file():
            raise WeightsUnavailable(f"{spec.path} is not a CTranslate2 model folder (no model.bin)")
        return path
    name = spec.model or "tiny.en"
    if name in BUNDLED_CT2:
        return bundled_ct2_dir(name)
    from faster_whisper.utils import download_model

    try:
        return Path(download_model(name, local_files_only=True))
    except Exception as exc:  # huggingface_hub raises several kinds for "not cached"
        raise WeightsUnavailable(
            f"faster-whisper model {name!r} is not on this machine and nothing is downloaded at run "
            f"time; bundled: {', '.join(BUNDLED_CT2)}. Convert the model with ct2-transformers-converter "
            f"(or fetch it on a connected machine) and set `path` in [encoders.asr] to its folder ({exc})"
        ) from None


def aligned_words(tokenizer, tokens: list[int], alignment) -> list[Word]:
    """Words of a decode and their start times from CTranslate2's alignment (token index, encoder
    frame) path, as faster-whisper's word timestamps read it; none when the path is unusable."""
    words, word_tokens = tokenizer.split_to_word_tokens(tokens + [tokenizer.eot])
    pairs = np.asarray(alignment.alignments, dtype=np.int64).reshape(-1, 2)
    if len(word_tokens) <= 1 or not len(pairs):
        return []
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(pairs[:, 0]), (1, 0), constant_values=1).astype(bool)
    jump_times = pairs[jumps, 1] / ENCODER_FRAMES_PER_SECOND  # per token: when the path reaches it
    logprobs = np.log(np.maximum(np.asarray(alignment.text_token_probs, dtype=np.float64), 1e-12))
    if boundaries[-1] >= len(jump_times) or len(logprobs) < len(tokens):
        return []
    return [Word(text=word, start=float(jump_times[b]), end=float(jump_times[b + len(t)]), tokens=len(t),
                 logprob=float(logprobs[b:b + len(t)].sum()))
            for word, t, b in zip(words[:-1], word_tokens[:-1], boundaries[:-1])]


class FasterWhisperAsr(WhisperAsr):
    backend = "faster-whisper"

    def __init__(self, model_dir: Path, options: AsrOptions):
        super().__init__(options)
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        self.model_dir = model_dir
        self.whisper = WhisperModel(
            str(model_dir),
            device=options.device,
            compute_type=options.compute_type,
            cpu_threads=options.cpu_threads,
        )
        self._tokenizers: dict[str, Tokenizer] = {}

    @classmethod
    def from_spec(cls, spec: ModelSpec, options: AsrOptions) -> FasterWhisperAsr:
        return cls(resolve_ct2_dir(spec), options)

    @property
    def english_only(self) -> bool:
        return not self.whisper.model.is_multilingual

    @functools.cached_property
    def width(self) -> int:
        return int(self.encode_window([np.zeros(SAMPLE_RATE, np.float32)], 1.0).shape[-1])

    def _tokenizer(self, language: str):
        from faster_whisper.tokenizer import Tokenizer

        if language not in self._tokenizers:
            self._tokenizers[language] = Tokenizer(
                self.whisper.hf_tokenizer, self.whisper.model.is_multilingual, task="transcribe", language=language
            )
        return self._tokenizers[language]

    def _features(self, clips: Sequence[np.ndarray], seconds: float) -> np.ndarray:
        """Log-mel features `(B, 80, seconds * 100)` of clips zero-padded to `seconds`."""
        extract = self.whisper.feature_extractor
        return np.stack([padded_log_mel(c, seconds, lambda x: extract(x, padding=0)) for c in clips]).astype(np.float32)

    def _encode(self, features: np.ndarray):
        """Encoder output of `(B, 80, frames)` log-mel, `encoder_batch_size` clips per call."""
        import ctranslate2

        def encode(part: np.ndarray):
            return self.whisper.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(part)))

        parts = encoder_chunks(len(features), self.options.encoder_batch_size)
        if len(parts) == 1:
            return encode(features)
        encoded = np.concatenate([np.asarray(encode(features[part])) for part in parts])
        return ctranslate2.StorageView.from_array(encoded)

    def _generate(self, encoded, max_tokens: int):
        """(results, tokenizers, languages) of a no-timestamp decode of encoder output."""
        from faster_whisper.transcribe import get_suppressed_tokens

        if self.language:
            languages = [self.language] * encoded.shape[0]
        else:
            detected = self.whisper.model.detect_language(encoded)
            languages = [pairs[0][0].strip("<|>") for pairs in detected]
        tokenizers = [self._tokenizer(lang) for lang in languages]
        prompts = [t.sot_sequence + [t.no_timestamps] for t in tokenizers]
        results = self.whisper.model.generate(
            encoded,
            prompts,
            beam_size=self.options.beam_size,
            max_length=len(prompts[0]) + max_tokens,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=list(get_suppressed_tokens(tokenizers[0], [-1])),
        )
        return results, tokenizers, languages

    def decode_batch(self, clips: Sequence[np.ndarray], window_seconds: float, max_tokens: int) -> list[Transcript]:
        results, tokenizers, languages = self._generate(self._encode(self._features(clips, window_seconds)), max_tokens)
        out = []
        for result, tokenizer, language in zip(results, tokenizers, languages):
            tokens = result.sequences_ids[0]
            # CTranslate2 returns the length-normalized score; Whisper's average log-probability
            # divides the cumulative one by the length plus the end-of-text token.
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            text = tokenizer.decode(tokens).strip()
            out.append(Transcript(
                text=text,
                language=language,
                avg_logprob=float(avg_logprob),
                no_speech_prob=float(result.no_speech_prob),
                compression_ratio=compression_ratio(text),
                tokens=len(tokens),
            ))
        return out

    def decode_words(self, windows: Sequence[np.ndarray], window_seconds: float, max_tokens: int,
                     content_seconds: Sequence[float]) -> list[WindowWords]:
        import ctranslate2

        encoded = self._encode(self._features(windows, window_seconds))
        results, tokenizers, languages = self._generate(encoded, max_tokens)
        array = np.asarray(encoded)
        out = []
        for k, (result, tokenizer, language) in enumerate(zip(results, tokenizers, languages)):
            tokens = result.sequences_ids[0]
            words: list[Word] = []
            if tokens:  # aligned one window at a time: windows may differ in language
                (alignment,) = self.whisper.model.align(
                    ctranslate2.StorageView.from_array(np.ascontiguousarray(array[k:k + 1])),
                    tokenizer.sot_sequence, [tokens], [int(math.ceil(content_seconds[k] * MEL_FRAMES_PER_SECOND))])
                words = aligned_words(tokenizer, tokens, alignment)
            out.append(WindowWords(words=words, language=language, no_speech_prob=float(result.no_speech_prob)))
        return out

    def transcribe_default(self, clip: np.ndarray, max_tokens: int) -> Transcript:
        segments, info = self.whisper.transcribe(
            clip,
            language=self.language,
            beam_size=self.options.beam_size,
            max_new_tokens=max_tokens,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        segments = list(segments)
        text = "".join(s.text for s in segments).strip()
        n_tokens = sum(len(s.tokens) for s in segments)
        weights = [len(s.tokens) + 1 for s in segments]
        return Transcript(
            text=text,
            language=info.language,
            avg_logprob=float(np.average([s.avg_logprob for s in segments], weights=weights)) if segments else np.nan,
            no_speech_prob=float(segments[0].no_speech_prob) if segments else np.nan,
            compression_ratio=compression_ratio(text),
            tokens=n_tokens,
        )

    def encode_window(self, clips: Sequence[np.ndarray], window_seconds: float) -> np.ndarray:
        return np.asarray(self._encode(self._features(clips, window_seconds)), dtype=np.float32)
