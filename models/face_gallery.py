"""Speaker galleries and speaking-face matching over face embeddings (no Dagster here).

A speaker's gallery is the faces of a sample of their utterances in which every sampled frame
shows exactly one face: mostly the speaker, sometimes the listener the camera cut to. A robust
centre (the element-wise median, which a minority of other faces cannot pull away) separates
the two; faces far from it are outliers, and the mean of the rest is the speaker's reference.
A person's review (crops to exclude, crops that show someone else) is applied first.

The speaking face of an utterance is, in each sampled frame, the face most similar to the
labelled speaker's reference, kept only when it is similar enough and no other speaker's
reference is closer; the kept faces average into one embedding with a confidence.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

# Speaker labels that name a group rather than people: never one identity, never enrolled.
GROUP_LABELS = frozenset({"all", "everyone", "everybody", "both", "together"})


@dataclasses.dataclass(frozen=True)
class GalleryOptions:
    utterances: int = 20  # utterances sampled per speaker
    outlier_similarity: float = 0.9  # a face less similar than this to the robust centre is an outlier
    outlier_mads: float = 3.0  # ... or more than this many median absolute deviations below the median
    # A spread floor for that rule: near-identical faces (one photo, a static shot) have a MAD near
    # zero, and without it a face at 0.994 among faces at 0.998 would count as an outlier.
    min_mad: float = 0.02
    min_faces: int = 1  # a speaker with fewer kept faces gets no reference


@dataclasses.dataclass(frozen=True)
class MatchOptions:
    # Cosine similarity to the reference a face needs to be the speaker's. dlib's descriptors have
    # norm ~1.4: its same-person cut-off (distance 0.6) is cosine ~0.91; strangers sit at 0.77-0.89.
    threshold: float = 0.9
    require_nearest: bool = True  # ... and no other speaker's reference may be closer


# -- speakers ----------------------------------------------------------------------------------
def named_people(speakers: Sequence[str]) -> list[str]:
    """The people among a label's speakers (MELD ingest splits "Joey and Chandler" into two);
    group words such as "All" or "Everyone" name nobody."""
    return [s for s in speakers if s.strip() and s.strip().lower() not in GROUP_LABELS]


def sample_utterances(clip_ids: Sequence[str], n: int, speaker: str) -> list[str]:
    """`n` clip ids chosen by a stable hash of (speaker, clip id): the same corpus always gives
    the same sample, whatever order the rows arrive in."""
    def rank(clip_id: str) -> str:
        return hashlib.sha256(f"{speaker}\0{clip_id}".encode()).hexdigest()

    return sorted(sorted(set(clip_ids)), key=rank)[:n]


# -- review ------------------------------------------------------------------------------------
REVIEW_TEMPLATE = """\
# Face review for the speaker gallery (`emostore review faces` writes the contact sheets).
# Each crop in a sheet is labelled with its id. Edit this file, then run `emostore update`:
# the gallery and everything downstream of it re-run, nothing else.
#
# exclude: crops that must not count for any speaker (a listener, a blur, a wrong face).
# reassign: crops that show another speaker than their utterance's label; they join that
#           speaker's gallery.
#
# exclude = ["train/dia3_utt1/t2/face0"]
# [reassign]
# "train/dia4_utt0/t1/face0" = "Monica"

exclude = []

[reassign]
"""


class ReviewError(ValueError):
    """The review file is not valid; the message names the file and the entry."""


@dataclasses.dataclass(frozen=True)
class Review:
    """A person's verdict on gallery crops."""

    exclude: frozenset[str] = frozenset()
    reassign: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None) -> Review:
        """The review in `path`; an absent file is an empty review."""
        if not path or not Path(path).is_file():
            return cls()
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ReviewError(f"{path}: not valid TOML: {exc}") from exc
        unknown = set(raw) - {"exclude", "reassign"}
        if unknown:
            raise ReviewError(f"{path}: unknown keys {sorted(unknown)}; known: exclude, reassign")
        exclude = raw.get("exclude", [])
        if not isinstance(exclude, list) or not all(isinstance(c, str) for c in exclude):
            raise ReviewError(f"{path}: exclude must be a list of crop ids")
        reassign = raw.get("reassign", {})
        if not isinstance(reassign, dict) or not all(isinstance(v, str) for v in reassign.values()):
            raise ReviewError(f"{path}: [reassign] must map crop ids to speaker names")
        both = set(exclude) & set(reassign)
        if both:
            raise ReviewError(f"{path}: crops both excluded and reassigned: {sorted(both)[:5]}")
        return cls(frozenset(exclude), dict(reassign))


def review_fingerprint(path: str | Path | None) -> str:
    """A hash of what the review says (its exclusions and reassignments, not its comments), so
    writing the commented template changes nothing; a file that does not parse hashes by its
    bytes (the gallery then fails with the parse error instead of the whole code location)."""
    try:
        review = Review.load(path)
    except ReviewError:
        return "invalid-" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]
    if not review.exclude and not review.reassign:
        return "empty"
    said = {"exclude": sorted(review.exclude), "reassign": sorted(review.reassign.items())}
    return hashlib.sha256(repr(said).encode()).hexdigest()[:12]


# -- references --------------------------------------------------------------------------------
def unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Reference:
    """A speaker's reference embedding and the verdict on each candidate face."""

    vector: np.ndarray | None  # (D,) unit float32, or None when too few faces were kept
    inlier: np.ndarray  # (M,) bool: the face entered the reference
    similarity: np.ndarray  # (M,) float32: cosine similarity to the robust centre


def build_reference(vectors: np.ndarray, options: GalleryOptions = GalleryOptions(),
                    trusted: np.ndarray | None = None) -> Reference:
    """vectors: (M, D) unit rows -> the reference.

    `trusted` (M,) marks faces a person assigned by review: they are never outliers.
    """
    assert vectors.ndim == 2, f"vectors must be (M, D), got {vectors.shape}"
    m = vectors.shape[0]
    trusted = np.zeros(m, bool) if trusted is None else np.asarray(trusted, bool)
    if m == 0:
        return Reference(None, np.zeros(0, bool), np.zeros(0, np.float32))
    centre = unit(np.median(vectors, axis=0))
    similarity = (vectors @ centre).astype(np.float32)
    median = float(np.median(similarity))
    mad = float(np.median(np.abs(similarity - median)))
    floor = max(options.outlier_similarity, median - options.outlier_mads * max(mad, options.min_mad))
    inlier = (similarity >= floor) | trusted
    if inlier.sum() < options.min_faces:
        return Reference(None, inlier, similarity)
    return Reference(unit(vectors[inlier].mean(axis=0)), inlier, similarity)


# -- speaking face -----------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class FaceCandidate:
    """One detected face of an utterance's frame, with its embedding."""

    crop_id: str
    frame: int  # index of the sampled frame (seconds at 1 fps)
    vector: np.ndarray  # (D,) unit


@dataclasses.dataclass(frozen=True)
class SpeakingFace:
    """The labelled speaker's face in one utterance, or why there is none."""

    status: str  # ok | no_face | no_speaker_match
    reason: str
    speaker: str | None = None  # the person matched (one of the label's names)
    vector: np.ndarray | None = None  # (D,) unit mean of the kept faces
    confidence: float = 0.0  # mean cosine similarity of the kept faces to the reference
    crop_ids: tuple[str, ...] = ()
    frames_with_face: int = 0


def match_speaking_face(
    faces: Sequence[FaceCandidate],
    speakers: Sequence[str],
    references: Mapping[str, np.ndarray],
    options: MatchOptions = MatchOptions(),
) -> SpeakingFace:
    """Keep, per frame, the face that is the labelled speaker's.

    `speakers` are the people the utterance's label names (one, or several for a combined
    label). A combined label ("Joey and Chandler") is matched against each named person's
    reference, and the person matched in the most frames (then the most similar) wins; a group
    label ("All") names nobody and gives no_speaker_match. A face counts only if its similarity
    to the reference reaches the threshold and (by default) no other speaker's reference is
    closer.
    """
    frames = sorted({f.frame for f in faces})
    if not faces:
        return SpeakingFace("no_face", "no face detected in any sampled frame")
    names = named_people(speakers)
    if not names:
        return SpeakingFace("no_speaker_match", f"speaker {' / '.join(speakers) or '(none)'} names no person",
                            frames_with_face=len(frames))
    enrolled = [n for n in names if n in references]
    if not enrolled:
        return SpeakingFace("no_speaker_match", f"no gallery reference for {' / '.join(names)}",
                            frames_with_face=len(frames))
    stacked = np.stack([f.vector for f in faces])  # (F, D)
    others = [n for n in references if n not in enrolled]
    rival = (stacked @ np.stack([references[n] for n in others]).T).max(axis=1) if others else None
    best: SpeakingFace | None = None
    for name in enrolled:
        found = _match_one(faces, stacked, name, references[name], rival, options)
        if found is not None and (best is None or _rank(found) > _rank(best)):
            best = found
    if best is None:
        who = " or ".join(enrolled)
        return SpeakingFace(
            "no_speaker_match",
            f"no face in {len(frames)} frame(s) matches {who} at similarity >= {options.threshold:g}",
            frames_with_face=len(frames),
        )
    return dataclasses.replace(best, frames_with_face=len(frames))


def _rank(found: SpeakingFace) -> tuple[int, float]:
    """The better of two named people: matched in more frames, then more similar."""
    return len(found.crop_ids), found.confidence


def _match_one(faces, stacked, name, reference, rival, options) -> SpeakingFace | None:
    similarity = stacked @ reference  # (F,)
    keep: dict[int, int] = {}  # frame -> index of the best face in it
    for i, face in enumerate(faces):
        if similarity[i] < options.threshold:
            continue
        if options.require_nearest and rival is not None and rival[i] > similarity[i]:
            continue
        j = keep.get(face.frame)
        if j is None or similarity[i] > similarity[j]:
            keep[face.frame] = i
    if not keep:
        return None
    chosen = [keep[frame] for frame in sorted(keep)]
    return SpeakingFace(
        "ok", "",
        speaker=name,
        vector=unit(stacked[chosen].mean(axis=0)),
        confidence=float(similarity[chosen].mean()),
        crop_ids=tuple(faces[i].crop_id for i in chosen),
    )
