"""Does a clip say what its official transcript says? Two independent measures.

1. Word and character error rates (jiwer) between the official transcript and Whisper's, both
   normalized the way Whisper's English results are scored (`EnglishTextNormalizer`: case,
   punctuation, contractions, spelled numbers, fillers such as "uh"), so "Okay, I'm gonna go!"
   and "OK, I am going to go." agree.
2. Voiced seconds per official word: silero-vad's speech time in the clip over the number of
   words the official transcript has. It does not depend on the recognizer at all, so it catches
   what WER cannot judge: a clip cut too short for its text (a few hundredths of a second per
   word), or one that runs into other people's lines (several seconds of speech per word), even
   where Whisper's errors on short, emotional or overlapping speech make WER noisy.

A clip is kept when both lie within the thresholds.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re

_TOKEN = re.compile(r"[a-z0-9']")


@functools.cache
def _normalizer():
    from whisper.normalizers import EnglishTextNormalizer

    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    """Text as Whisper's English scoring sees it; tokens without a letter or digit dropped."""
    words = _normalizer()(text or "").split()
    words = ["ok" if w == "okay" else w for w in words if _TOKEN.search(w)]
    return " ".join(words)


@dataclasses.dataclass(frozen=True)
class Alignment:
    """The official (reference) transcript against Whisper's (hypothesis) for one clip."""

    reference: str  # normalized
    hypothesis: str  # normalized
    wer: float
    cer: float
    reference_words: int
    voiced_seconds: float
    seconds_per_word: float  # NaN when the reference has no words


def error_rates(reference: str, hypothesis: str) -> tuple[float, float]:
    """(WER, CER) of normalized texts; an empty reference scores 0 against an empty hypothesis
    and 1 against anything else (jiwer's rates are undefined there)."""
    import jiwer

    if not reference:
        return (0.0, 0.0) if not hypothesis else (1.0, 1.0)
    if not hypothesis:
        return 1.0, 1.0
    return float(jiwer.wer(reference, hypothesis)), float(jiwer.cer(reference, hypothesis))


def align(official: str, whisper: str, voiced_seconds: float) -> Alignment:
    reference, hypothesis = normalize(official), normalize(whisper)
    wer, cer = error_rates(reference, hypothesis)
    n_words = len(reference.split())
    return Alignment(
        reference=reference,
        hypothesis=hypothesis,
        wer=wer,
        cer=cer,
        reference_words=n_words,
        voiced_seconds=voiced_seconds,
        seconds_per_word=voiced_seconds / n_words if n_words else math.nan,
    )


@dataclasses.dataclass(frozen=True)
class AlignmentLimits:
    """When a clip counts as aligned (the `[thresholds]` keys of the same names)."""

    max_wer: float = 0.5
    min_seconds_per_word: float = 0.08  # 12 words a second: faster than anyone speaks
    max_seconds_per_word: float = 2.0  # a drawn-out "Nooo!" lasts about 1.5 s


def verdict(alignment: Alignment, limits: AlignmentLimits) -> tuple[bool, str]:
    """(keep, why not) for one clip; the reason is empty when it is kept."""
    if alignment.reference_words == 0:
        return False, "the official transcript has no words to align"
    problems = []
    if alignment.wer > limits.max_wer:
        problems.append(f"WER {alignment.wer:.2f} > {limits.max_wer:g}")
    spw = alignment.seconds_per_word
    if spw < limits.min_seconds_per_word:
        problems.append(f"{spw:.2f} voiced s per word < {limits.min_seconds_per_word:g} (clip too short for its text)")
    elif spw > limits.max_seconds_per_word:
        problems.append(f"{spw:.2f} voiced s per word > {limits.max_seconds_per_word:g} (more speech than its text)")
    return not problems, "; ".join(problems)
