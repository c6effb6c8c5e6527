"""The one label table: every corpus's raw labels mapped into MELD's seven emotions.

Each entry is keyed by (corpus, raw label) and names the unified emotion or says explicitly that
the raw label has no counterpart (`None`): such labels stay raw, flagged `unmapped_label`, and out
of seven-class training; nothing is guessed. The mappings follow the Wang & Beigi table (text
sources) and, for GoEmotions, the dataset's own Ekman grouping. Corpora of other modalities
(audio, face, dialogue) add their entries to `CORPUS_LABELS` below.

Two hard cases have rules, configurable in `[labels]` and carried by `LabelRules`:
- a GoEmotions row whose labels fall into two or more Ekman groups (neutral counts as a group)
  is ambiguous and stays out of training (`drop_neutral` first ignores neutral beside an emotion);
- a SemEval-2018 EI-reg tweet counts as its emotion at or above an intensity threshold, and a
  tweet in several emotion files counts once, as the emotion of highest intensity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Literal

from storage.status import Status

# MELD's seven labels: the unified space every corpus maps into.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "joy", "neutral", "sadness", "surprise")

# GoEmotions' 28 labels in the order of its label ids (`labels.txt` / `emotions.txt`).
GOEMOTIONS_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)

# GoEmotions' published Ekman grouping (`ekman_mapping.json`); neutral is a group of its own.
GOEMOTIONS_EKMAN: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief",
        "pride", "admiration", "desire", "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
EKMAN_GROUP: dict[str, str] = {raw: group for group, raws in GOEMOTIONS_EKMAN.items() for raw in raws}

# corpus -> raw label -> unified emotion, or None where the raw label has no counterpart.
CORPUS_LABELS: dict[str, dict[str, str | None]] = {
    "meld": {emotion: emotion for emotion in EMOTIONS},
    "crowdflower": {
        "anger": "anger",
        "hate": "anger",
        "happiness": "joy",
        "neutral": "neutral",
        "sadness": "sadness",
        "surprise": "surprise",
        **dict.fromkeys(
            ("worry", "love", "fun", "enthusiasm", "relief", "empty", "boredom"), None
        ),
    },
    "saravia": {
        "anger": "anger",
        "fear": "fear",
        "joy": "joy",
        "sadness": "sadness",
        "surprise": "surprise",
        "love": None,
    },
    "goemotions": {raw: EKMAN_GROUP[raw] for raw in GOEMOTIONS_LABELS},
    "isear": {
        "anger": "anger",
        "disgust": "disgust",
        "fear": "fear",
        "joy": "joy",
        "sadness": "sadness",
        "shame": None,
        "guilt": None,
    },
    "semeval_ei_reg": {"anger": "anger", "fear": "fear", "joy": "joy", "sadness": "sadness"},
    # Audio, face and dialogue corpora. Raw labels are the tokens each corpus writes in its file
    # names, folders or label files; numeric codes are given their documented names.
    # RAVDESS emotion codes 01..08
    "ravdess": {
        "neutral": "neutral", "calm": None, "happy": "joy", "sad": "sadness", "angry": "anger",
        "fearful": "fear", "disgust": "disgust", "surprised": "surprise",
    },
    # CREMA-D file names: 1001_DFA_ANG_XX.wav
    "cremad": {
        "ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "joy", "NEU": "neutral", "SAD": "sadness",
    },
    # SAVEE file names: DC_a01.wav (sa and su before single letters)
    "savee": {
        "a": "anger", "d": "disgust", "f": "fear", "h": "joy", "n": "neutral", "sa": "sadness",
        "su": "surprise",
    },
    # TESS file names: OAF_back_angry.wav; ps is pleasant surprise
    "tess": {
        "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy", "neutral": "neutral",
        "ps": "surprise", "sad": "sadness",
    },
    # EmoDB file names: 03a01Fa.wav, German initials (W Ärger, L Langeweile, E Ekel, A Angst,
    # F Freude, T Trauer, N neutral)
    "emodb": {
        "W": "anger", "L": None, "E": "disgust", "A": "fear", "F": "joy", "T": "sadness", "N": "neutral",
    },
    # JAFFE file names: KA.AN1.39.tiff
    "jaffe": {
        "AN": "anger", "DI": "disgust", "FE": "fear", "HA": "joy", "NE": "neutral", "SA": "sadness",
        "SU": "surprise",
    },
    # CK+ Emotion codes 1..7 (and the CK+48 folder names, the same words)
    "ckplus": {
        "anger": "anger", "contempt": None, "disgust": "disgust", "fear": "fear", "happy": "joy",
        "sadness": "sadness", "surprise": "surprise",
    },
    # RAF-DB basic codes 1..7
    "rafdb": {
        "surprise": "surprise", "fear": "fear", "disgust": "disgust", "happiness": "joy",
        "sadness": "sadness", "anger": "anger", "neutral": "neutral",
    },
    # FER2013 codes 0..6
    "fer2013": {
        "angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "joy", "sad": "sadness",
        "surprise": "surprise", "neutral": "neutral",
    },
    # IEMOCAP EmoEvaluation categories (xxx, no majority, is an ambiguous_label, not a label)
    "iemocap": {
        "ang": "anger", "dis": "disgust", "fea": "fear", "hap": "joy", "neu": "neutral",
        "sad": "sadness", "sur": "surprise", "exc": None, "fru": None, "oth": None,
    },
}

# Display names for the rendered table.
CORPUS_TITLES: dict[str, str] = {
    "meld": "MELD",
    "crowdflower": "Crowdflower (Emotion in Text)",
    "saravia": "Emotion Dataset (Saravia et al.)",
    "goemotions": "GoEmotions (via its Ekman groups)",
    "isear": "ISEAR",
    "semeval_ei_reg": "SemEval-2018 EI-reg (intensity >= threshold)",
    "ravdess": "RAVDESS",
    "cremad": "CREMA-D",
    "savee": "SAVEE",
    "tess": "TESS",
    "emodb": "EmoDB (German initials)",
    "jaffe": "JAFFE",
    "ckplus": "CK+ and CK+48",
    "rafdb": "RAF-DB basic",
    "fer2013": "FER2013",
    "iemocap": "IEMOCAP",
}


class UnknownLabel(KeyError):
    """A raw label the table does not list for its corpus (a wrong file, or a new corpus release)."""


@dataclasses.dataclass(frozen=True)
class LabelRules:
    """The configurable rules for the hard cases (`[labels]`)."""

    semeval_min_intensity: float = 0.5
    goemotions_multi_group: Literal["exclude", "drop_neutral"] = "exclude"


@dataclasses.dataclass(frozen=True)
class Mapped:
    """The unified label of one item, or why it has none."""

    label: str | None
    status: Status
    reason: str = ""


def corpora() -> list[str]:
    return list(CORPUS_LABELS)


def raw_labels(corpus: str) -> list[str]:
    """Every raw label the table knows for `corpus`, mapped or not."""
    return list(CORPUS_LABELS[corpus])


def unified(corpus: str, raw: str) -> str | None:
    """The unified emotion of a raw label, None where it has no counterpart; UnknownLabel if the
    table does not list it."""
    try:
        return CORPUS_LABELS[corpus][raw]
    except KeyError:
        raise UnknownLabel(f"{corpus} has no label {raw!r}; known: {', '.join(CORPUS_LABELS.get(corpus, {}))}") from None


def map_label(corpus: str, raw: str) -> Mapped:
    """One raw label as an item's label and status (ok, unmapped_label or malformed_row)."""
    try:
        label = unified(corpus, raw)
    except UnknownLabel:
        return Mapped(None, Status.MALFORMED_ROW, f"unknown {corpus} label {raw!r}")
    if label is None:
        return Mapped(None, Status.UNMAPPED_LABEL, f"{corpus} label {raw!r} has no counterpart in the seven")
    return Mapped(label, Status.OK)


def map_goemotions(raws: Sequence[str], rules: LabelRules = LabelRules()) -> Mapped:
    """A GoEmotions row's labels (one or several) as one unified label through the Ekman groups.

    Labels within one group agree (`joy, love` is joy); labels spanning two or more groups are
    ambiguous. With `drop_neutral`, neutral beside an emotion is ignored first.
    """
    if not raws:
        return Mapped(None, Status.UNLABELLED, "no label")
    unknown = [r for r in raws if r not in EKMAN_GROUP]
    if unknown:
        return Mapped(None, Status.MALFORMED_ROW, f"unknown goemotions label(s) {', '.join(unknown)}")
    groups = sorted({EKMAN_GROUP[r] for r in raws})
    if rules.goemotions_multi_group == "drop_neutral" and len(groups) > 1:
        groups = [g for g in groups if g != "neutral"]
    if len(groups) > 1:
        return Mapped(None, Status.AMBIGUOUS_LABEL,
                      f"labels {', '.join(raws)} span Ekman groups {', '.join(groups)}")
    return Mapped(groups[0], Status.OK)


def missing_entries(corpus: str, seen: Iterable[str]) -> list[str]:
    """Raw labels seen in data that the table does not list (mapped or without counterpart)."""
    known = CORPUS_LABELS.get(corpus, {})
    return sorted({raw for raw in seen if raw not in known})


def label_table_markdown(corpora_shown: Sequence[str] | None = None) -> str:
    """The table as Markdown: one row per corpus, one column per unified emotion listing the raw
    labels that map to it, and a last column for raw labels without a counterpart."""
    shown = list(corpora_shown or CORPUS_LABELS)
    header = "| corpus | " + " | ".join(EMOTIONS) + " | no counterpart |"
    rule = "|---|" + "---|" * (len(EMOTIONS) + 1)
    lines = [header, rule]
    for corpus in shown:
        table = CORPUS_LABELS[corpus]
        cells = []
        for emotion in (*EMOTIONS, None):
            raws = [raw for raw, target in table.items() if target == emotion]
            cells.append(", ".join(f"`{r}`" for r in raws) if raws else "—")
        lines.append(f"| {CORPUS_TITLES.get(corpus, corpus)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
