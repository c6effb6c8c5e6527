"""Evaluation protocols of the audio, face and dialogue corpora: the fold each item is tested in.

Each corpus is evaluated the way its literature does it (its module declares which):

- `official`: the corpus's own split (FER2013's Usage, RAF-DB's train/test); one fold, numbered 0,
  and `split` says train, dev or test.
- `leave_one_speaker_out`: corpora with few speakers (SAVEE 4, TESS 2, EmoDB 10, JAFFE 10): one
  fold per speaker or subject, in the order of their names.
- `speaker_folds`: corpora with many (CREMA-D 91 actors, RAVDESS 24, CK+ 123 subjects): k
  speaker-independent folds; speakers, largest first (then by name), each join the fold with the
  fewest items so far, so folds are balanced and no speaker is in two folds.
- `leave_one_session_out`: IEMOCAP's five sessions (two actors each) are its five folds, each
  numbered as its session.

An item is tested in its fold and trained on in every other (`storage.dataset.fold_roles` gives
each item its role in one run, with the next fold as a speaker-independent dev); a corpus with
fewer speakers than folds gets one fold per speaker. Outside official splits, a fold holds whole
speakers (or sessions) by construction. Only usable items have a fold: `ok`, a label without a counterpart
(`unmapped_label`, kept for open-set work), or no consensus category (IEMOCAP's `xxx`, still
rated for valence, arousal and dominance).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from corpora import registry
from corpora.registry import Protocol
from storage.status import Status

# Items that take part in evaluation: usable, labelled outside the seven (open-set work), or
# without a consensus category (IEMOCAP xxx, still rated for valence, arousal and dominance).
PROTOCOL_STATUSES = (Status.OK, Status.UNMAPPED_LABEL, Status.AMBIGUOUS_LABEL)

# corpus -> its protocol, for every corpus that has one (all but the text corpora)
PROTOCOLS: dict[str, Protocol] = {c.name: c.protocol for c in registry.corpora().values() if c.protocol}

__all__ = ["PROTOCOLS", "PROTOCOL_STATUSES", "Protocol", "assign_folds", "corpus_folds_frame"]


def iemocap_session(speaker: str) -> str:
    """`Ses03F` -> `Ses03`: both actors of a session are tested together."""
    return speaker[:5]


def group_of(protocol: Protocol) -> Callable[[str], str]:
    """What a fold holds whole: a speaker, or for IEMOCAP a session."""
    return iemocap_session if protocol.name == "leave_one_session_out" else (lambda speaker: speaker)


def assign_folds(protocol: Protocol, speakers: list[str | None]) -> tuple[list[int], int]:
    """The fold (1..k, or 0 for an official split) of each item, given its speaker; and k.

    Deterministic: the same speakers and item counts give the same folds."""
    if protocol.name == "official":
        return [0] * len(speakers), 1
    if any(s is None for s in speakers):
        raise ValueError(f"{protocol.name} needs a speaker for every item")
    group = group_of(protocol)
    sizes = Counter(group(s) for s in speakers)  # type: ignore[arg-type]
    if protocol.name == "leave_one_session_out":
        fold_of = {g: int(g.removeprefix("Ses")) for g in sizes}  # the session's own number
        return [fold_of[group(s)] for s in speakers], len(fold_of)  # type: ignore[arg-type]
    if protocol.name == "leave_one_speaker_out":
        fold_of = {g: i for i, g in enumerate(sorted(sizes), 1)}
        return [fold_of[group(s)] for s in speakers], len(fold_of)  # type: ignore[arg-type]
    k = max(1, min(protocol.folds, len(sizes)))
    load = [0] * k
    fold_of = {}
    for name, size in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        fold = min(range(k), key=lambda f: (load[f], f))
        fold_of[name] = fold + 1
        load[fold] += size
    return [fold_of[group(s)] for s in speakers], k  # type: ignore[arg-type]


def corpus_folds_frame(corpus: str, items):
    """`corpus_folds` rows for one corpus's items table (polars)."""
    import polars as pl

    protocol = PROTOCOLS[corpus]
    usable = items.filter(pl.col("status").is_in([str(s) for s in PROTOCOL_STATUSES]))
    if protocol.name != "official":
        usable = usable.filter(pl.col("speaker").is_not_null())
    folds, k = assign_folds(protocol, usable["speaker"].to_list())
    return usable.select(
        pl.col("corpus"), pl.col("id"), pl.col("speaker"),
        pl.lit(protocol.name).alias("protocol"),
        pl.Series("fold", folds, dtype=pl.Int32),
        pl.lit(k, dtype=pl.Int32).alias("folds"),
        pl.col("split"),
    )
