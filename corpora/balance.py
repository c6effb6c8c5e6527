"""The balanced text training set: a target number of texts per emotion across the text corpora.

Candidates are usable items (status ok, one of the seven labels) of the sources' train and dev
splits; their test splits (SemEval's dev, its test being unlabelled) stay out for evaluating heads, and a candidate whose normalized text
also appears in any test split is dropped so nothing leaks into evaluation. Texts are
deduplicated by normalized text (one row kept; a text carrying two different labels is dropped
altogether). Per emotion, `even` gives every source an equal share where it has enough texts and
passes what a small source cannot fill to the others; `pooled` draws uniformly from all of them.
An emotion short of the target keeps all it has and the shortfall is reported; only with
`oversample` are texts repeated (`copy` 1, 2, ...) to reach it. The same items, options and seed
always give the same set.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import unicodedata
from collections import Counter, defaultdict
from typing import Any, Literal

import numpy as np

from storage.labels import EMOTIONS
from storage.schemas.corpora import HELD_OUT_SPLIT
from storage.status import Status

_URL = re.compile(r"https?://\S+|www\.\S+")
_MENTION = re.compile(r"@\w+")
_NOT_WORD = re.compile(r"[\W_]+")


def normalized_text(text: str) -> str:
    """The form texts are compared in: NFKC, case-folded, without URLs, @mentions, punctuation
    or emoji, single-spaced."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = _MENTION.sub(" ", _URL.sub(" ", folded))
    return " ".join(_NOT_WORD.sub(" ", folded).split())


def text_key(normalized: str) -> str:
    return hashlib.sha256(normalized.encode()).hexdigest()[:16]


@dataclasses.dataclass(frozen=True)
class BalanceOptions:
    per_emotion: int = 6200
    seed: int = 0
    oversample: bool = False
    source_mix: Literal["even", "pooled"] = "even"
    splits: tuple[str, ...] = ("train", "dev")  # drawn from
    held_out: tuple[str, ...] = ("test",)  # never drawn from, and their texts never drawn


@dataclasses.dataclass
class BalanceReport:
    """What the draw had and took, for the asset's metadata."""

    available: dict[str, dict[str, int]]  # emotion -> corpus -> deduplicated candidates
    chosen: dict[str, dict[str, int]]  # emotion -> corpus -> rows in the set (repeats included)
    shortfall: dict[str, int]  # emotion -> rows missing to reach the target (after oversampling)
    oversampled: dict[str, int]  # emotion -> repeated rows added
    removed: dict[str, int]  # why candidates were left out -> rows

    def per_emotion(self) -> dict[str, int]:
        return {e: sum(c.values()) for e, c in self.chosen.items()}

    def per_source(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for counts in self.chosen.values():
            totals.update(counts)
        return dict(sorted(totals.items()))


def balanced_text_set(items: list[dict[str, Any]], options: BalanceOptions) -> tuple[list[dict[str, Any]], BalanceReport]:
    """Rows of the training set (corpus, id, copy, split, text, label, text_key) and a report.

    `items`: rows of the items tables (corpus, id, split, text, label, status at least).
    """
    def held(row) -> bool:  # a split heads are scored on (SemEval's dev: its test is unlabelled)
        return row["split"] in options.held_out or row["split"] == HELD_OUT_SPLIT.get(row["corpus"])

    held_out = {text_key(normalized_text(row["text"])) for row in items if held(row) and row["text"]}
    removed: Counter[str] = Counter()
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in items:
        if (row["status"] != Status.OK or row["label"] not in EMOTIONS or row["split"] not in options.splits
                or held(row)):
            continue
        normalized = normalized_text(row["text"] or "")
        if not normalized:
            removed["empty once normalized"] += 1
            continue
        key = text_key(normalized)
        if key in held_out:
            removed["text also in a test split"] += 1
            continue
        by_key[key].append(row)

    pools: dict[str, dict[str, list[dict[str, Any]]]] = {e: defaultdict(list) for e in EMOTIONS}
    for key, rows in by_key.items():
        if len({r["label"] for r in rows}) > 1:
            removed["text with conflicting labels"] += len(rows)
            continue
        keep = min(rows, key=lambda r: (r["corpus"], r["split"], r["id"]))
        removed["duplicate text"] += len(rows) - 1
        pools[keep["label"]][keep["corpus"]].append({**keep, "text_key": key})

    out: list[dict[str, Any]] = []
    available, chosen, shortfall, oversampled = {}, {}, {}, {}
    for e_index, emotion in enumerate(EMOTIONS):
        pool = {c: sorted(rows, key=lambda r: r["id"]) for c, rows in sorted(pools[emotion].items())}
        available[emotion] = {c: len(rows) for c, rows in pool.items()}
        picked = _draw(pool, options, e_index)
        repeats = []
        short = options.per_emotion - len(picked)
        if options.oversample and short > 0 and picked:
            rng = np.random.default_rng([options.seed, e_index, 1_000_003])
            repeats = [picked[i] for i in rng.integers(0, len(picked), size=short)]
        copies: Counter[tuple[str, str]] = Counter()
        for row in picked + repeats:
            ident = (row["corpus"], row["id"])
            out.append(_training_row(row, copies[ident]))
            copies[ident] += 1
        chosen[emotion] = dict(Counter(r["corpus"] for r in picked + repeats))
        shortfall[emotion] = max(0, options.per_emotion - len(picked) - len(repeats))
        oversampled[emotion] = len(repeats)
    out.sort(key=lambda r: (r["label"], r["corpus"], r["id"], r["copy"]))
    return out, BalanceReport(available, chosen, shortfall, oversampled, dict(removed))


def _draw(pool: dict[str, list[dict[str, Any]]], options: BalanceOptions, e_index: int) -> list[dict[str, Any]]:
    """Up to `per_emotion` rows of one emotion's pool (corpus -> rows sorted by id), no repeats."""
    if options.source_mix == "pooled":
        rows = [r for c in sorted(pool) for r in pool[c]]
        rng = np.random.default_rng([options.seed, e_index])
        take = min(options.per_emotion, len(rows))
        return [rows[i] for i in sorted(rng.choice(len(rows), size=take, replace=False))]
    quotas = even_quotas({c: len(rows) for c, rows in pool.items()}, options.per_emotion)
    picked = []
    for corpus in sorted(pool):
        rows = pool[corpus]
        # One generator per (seed, emotion, corpus): a change in one source leaves the others' draws.
        rng = np.random.default_rng([options.seed, e_index, _stable(corpus)])
        picked += [rows[i] for i in sorted(rng.choice(len(rows), size=quotas[corpus], replace=False))]
    return picked


def even_quotas(available: dict[str, int], target: int) -> dict[str, int]:
    """Equal shares of `target` per source; what a small source cannot give goes to the others
    (water-filling). The quotas sum to min(target, total available)."""
    quotas = dict.fromkeys(available, 0)
    open_sources = sorted(available, key=lambda c: (available[c], c))
    remaining = target
    while open_sources and remaining > 0:
        share = remaining // len(open_sources)
        smallest = open_sources[0]
        if available[smallest] <= share:
            quotas[smallest] = available[smallest]
            remaining -= available[smallest]
            open_sources.pop(0)
            continue
        # Every open source has more than its share: give it, the remainder to the largest ones.
        extra = remaining - share * len(open_sources)
        for i, corpus in enumerate(reversed(open_sources)):
            quotas[corpus] = share + (1 if i < extra else 0)
        remaining = 0
    return quotas


def _stable(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def _training_row(row: dict[str, Any], copy: int) -> dict[str, Any]:
    return {
        "corpus": row["corpus"],
        "id": row["id"],
        "copy": copy,
        "split": row["split"],
        "text": row["text"],
        "label": row["label"],
        "text_key": row["text_key"],
    }
