"""SemEval-2018 Task 1 EI-reg (Mohammad et al. 2018), English: `*EI-reg-En-<emotion>-<split>.txt`
for anger, fear, joy and sadness, tab-separated `ID, Tweet, Affect Dimension, Intensity Score`
with CRLF line ends; test intensities are `NONE` (unlabelled, so dev is held out instead). A
tweet counts as its emotion at or above `[labels] semeval_min_intensity`, and a tweet in several
emotion files once, as its most intense emotion; a literal `\\n` in a tweet reads as a space."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from corpora.reading import Scan, demote, item, malformed, text_mapped, unique_ids
from corpora.registry import Corpus
from storage.labels import LabelRules, Mapped, map_label
from storage.status import Status

SPLITS = ("train", "dev", "test")
EMOTIONS = ("anger", "fear", "joy", "sadness")
FILE = re.compile(r"EI-reg-En-(anger|fear|joy|sadness)-(train|dev|test)(-gold)?\.txt$")


def semeval_files(root: Path) -> dict[tuple[str, str], Path]:
    """(emotion, split) -> file, found in the root or one folder below it."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted([*root.glob("*.txt"), *root.glob("*/*.txt")]):
        match = FILE.search(path.name)
        if match:
            emotion, split, gold = match.groups()
            if (emotion, split) not in found or gold:  # a gold test file wins over the blind one
                found[(emotion, split)] = path
    return found


def read(root: Path, rules: LabelRules = LabelRules()) -> Scan:
    scan = Scan("semeval_ei_reg", root, layout="SemEval-2018 EI-reg: 2018-EI-reg-En-<emotion>-<split>.txt")
    files = semeval_files(root)
    scan.missing = [f"2018-EI-reg-En-{e}-{s}.txt" for s in SPLITS for e in EMOTIONS if (e, s) not in files]
    crlf_lines = literal_newlines = 0
    for (emotion, split), path in sorted(files.items(), key=lambda kv: (SPLITS.index(kv[0][1]), kv[0][0])):
        for number, line, crlf in scan.lines(path):
            crlf_lines += crlf
            fields = line.split("\t")
            if number == 1 and fields[:1] == ["ID"]:
                continue
            literal_newlines += len(fields) == 4 and "\\n" in fields[1]
            scan.rows.append(_line(scan.corpus, emotion, split, f"{path.name} line {number}", number, fields))
    resolve_semeval_tweets(scan.rows, rules.semeval_min_intensity)
    for row in scan.rows:
        row.pop("tweet", None)
    scan.rows = unique_ids(scan.rows)
    scan.quirks.update({"lines ending CRLF": crlf_lines, "tweets with a literal \\n": literal_newlines})
    return scan


def _line(corpus: str, emotion: str, split: str, where: str, number: int, fields: list[str]) -> dict:
    id = f"{emotion}/{fields[0].strip() or f'{split}-line{number}'}"
    if len(fields) != 4:
        return item(corpus, id, split=split, problem=malformed(f"{where}: {len(fields)} tab-separated fields, expected 4"))
    tweet_id, tweet, affect, score = fields
    text = tweet.replace("\\n", " ").strip()
    if affect.strip() != emotion:
        return item(corpus, id, split=split, text=text, problem=malformed(f"{where}: affect {affect!r} in the {emotion} file"))
    if score.strip() == "NONE":
        mapped = Mapped(None, Status.UNLABELLED, "intensity NONE (the test file withholds its scores)")
        return item(corpus, id, [emotion], split=split, text=text, mapped=mapped)
    try:
        intensity = float(score)
    except ValueError:
        intensity = float("nan")
    if not 0.0 <= intensity <= 1.0:
        return item(corpus, id, [emotion], split=split, text=text,
                    problem=malformed(f"{where}: intensity {score!r} is not in [0, 1]"))
    row = item(corpus, id, [emotion], split=split, text=text, intensity=intensity,
               mapped=text_mapped(map_label(corpus, emotion), text, corpus))
    row["tweet"] = tweet_id.strip()
    return row


def resolve_semeval_tweets(rows: list[dict[str, Any]], threshold: float) -> None:
    """Give each tweet one emotion: the most intense of its files' rows at or above `threshold`.

    Rows below the threshold become low_intensity; the other rows of a tweet that counts as
    another emotion become duplicate; equal top intensities make the tweet ambiguous.
    """
    by_tweet: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if "tweet" in row and row["status"] == Status.OK:
            by_tweet[(row["split"], row["tweet"])].append(row)
    for tweet_rows in by_tweet.values():
        top = max(r["intensity"] for r in tweet_rows)
        winners = [r for r in tweet_rows if r["intensity"] == top]
        for row in tweet_rows:
            emotion = row["raw_labels"][0]
            if row["intensity"] < threshold:
                demote(row, Status.LOW_INTENSITY, f"{emotion} intensity {row['intensity']:.3f} is below {threshold}")
            elif len(winners) > 1:
                tied = ", ".join(sorted(r["raw_labels"][0] for r in winners))
                demote(row, Status.AMBIGUOUS_LABEL, f"equal top intensity {top:.3f} in {tied}")
            elif row is not winners[0]:
                best = winners[0]["raw_labels"][0]
                demote(row, Status.DUPLICATE, f"the tweet counts once, as {best} (intensity {top:.3f} > {row['intensity']:.3f})")


CORPUS = Corpus("semeval_ei_reg", "text", "SemEval-2018 EI-reg's files", read, label_rules=True)
