"""Readers of the five text emotion corpora, each in its own published layout, into item rows.

Every reader turns one corpus root into rows of the items schema (storage/schemas/corpora.py):
one row per line of the source (a malformed line too, with its status and reason), labels mapped
through the one label table (storage/labels.py). Splits are named train, dev and test; a corpus
published without splits (Crowdflower, ISEAR) is all train. Quirks handled, per source:

- Crowdflower `text_emotion.csv`: HTML entities in the tweets (`&quot;`, `&amp;`) are unescaped.
- Saravia `train.txt`, `val.txt`, `test.txt` (`text;label`): `val` is the dev split; a blank line
  (val.txt starts with one) is a malformed_row.
- GoEmotions `original/{train,dev,test}.tsv` (or the tsv files in the root): label ids name the
  28 labels of `labels.txt`/`emotions.txt`; several labels resolve through the Ekman groups.
- ISEAR `isear.csv` (`|`-separated): a `|` inside the SIT text shifts the fields; such a row is a
  malformed_row with its text rejoined for inspection. `á` (a mis-decoded no-break space that
  marks the original line breaks) reads as a space; non-answers ("[ No response.]") are no_text.
- SemEval-2018 EI-reg `*EI-reg-En-<emotion>-<split>.txt`: CRLF line ends; test intensities are
  `NONE` (unlabelled); a tweet in several emotion files counts once, as its most intense emotion
  at or above the threshold; a literal `\\n` in a tweet reads as a space.
"""

from __future__ import annotations

import csv
import dataclasses
import html
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from storage.labels import GOEMOTIONS_LABELS, LabelRules, Mapped, map_goemotions, map_label
from storage.status import Status

SPLITS = ("train", "dev", "test")


@dataclasses.dataclass
class SourceRead:
    """What a reader found under a corpus root."""

    rows: list[dict[str, Any]]
    files: list[str]  # files read, relative to the root
    missing: list[str]  # expected files that are absent
    quirks: dict[str, int] = dataclasses.field(default_factory=dict)  # quirk -> lines affected


def item(
    corpus: str,
    id: str,
    split: str,
    text: str | None,
    raw_labels: list[str],
    mapped: Mapped,
    *,
    intensity: float | None = None,
    speaker: str | None = None,
) -> dict[str, Any]:
    """One row of the items schema; the unified label is kept only for usable (ok) rows."""
    return {
        "corpus": corpus,
        "id": id,
        "split": split,
        "text": text,
        "raw_labels": raw_labels,
        "label": mapped.label if mapped.status == Status.OK else None,
        "intensity": intensity,
        "valence": None,
        "arousal": None,
        "dominance": None,
        "speaker": speaker,
        "path": None,
        "status": str(mapped.status),
        "reason": mapped.reason,
    }


def malformed(corpus: str, id: str, split: str, reason: str, text: str | None = None,
              raw_labels: list[str] | None = None) -> dict[str, Any]:
    return item(corpus, id, split, text, raw_labels or [], Mapped(None, Status.MALFORMED_ROW, reason))


def _lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """(1-based line number, line without its end, whether it ended in CRLF); a final newline
    does not start another line."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        crlf = line.endswith("\r")
        yield number, line[:-1] if crlf else line, crlf


def _with_text(mapped: Mapped, text: str, corpus: str) -> Mapped:
    """An otherwise usable row whose text is empty has nothing to learn from."""
    if text.strip():
        return mapped
    return Mapped(None, Status.NO_TEXT, f"empty {corpus} text")


def unique_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows whose id repeats an earlier row's get `<id>#<n>` and status duplicate."""
    seen: dict[str, int] = defaultdict(int)
    for row in rows:
        seen[row["id"]] += 1
        if seen[row["id"]] > 1:
            first = row["id"]
            row["id"] = f"{first}#{seen[first]}"
            row["label"] = None
            row["status"] = str(Status.DUPLICATE)
            row["reason"] = f"id {first!r} repeats an earlier row"
    return rows


# -- Crowdflower ---------------------------------------------------------------------------------
CROWDFLOWER_FILE = "text_emotion.csv"
CROWDFLOWER_COLUMNS = ("tweet_id", "sentiment", "author", "content")


def read_crowdflower(root: Path, rules: LabelRules) -> SourceRead:
    corpus = "crowdflower"
    path = root / CROWDFLOWER_FILE
    if not path.is_file():
        return SourceRead([], [], [CROWDFLOWER_FILE])
    rows, entities = [], 0
    with path.open(encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if tuple(header) != CROWDFLOWER_COLUMNS:
            reason = f"header {header} is not {list(CROWDFLOWER_COLUMNS)}"
            return SourceRead([malformed(corpus, "header", "train", reason)], [CROWDFLOWER_FILE], [])
        for record in reader:
            line = reader.line_num
            if len(record) != len(CROWDFLOWER_COLUMNS):
                rows.append(malformed(corpus, f"line{line}", "train",
                                      f"line {line}: {len(record)} fields, expected 4"))
                continue
            tweet_id, sentiment, _author, content = record
            text = html.unescape(content).strip()
            entities += text != content.strip()
            mapped = _with_text(map_label(corpus, sentiment), text, corpus)
            rows.append(item(corpus, tweet_id or f"line{line}", "train", text, [sentiment], mapped))
    return SourceRead(unique_ids(rows), [CROWDFLOWER_FILE], [], {"html entities unescaped": entities})


# -- Saravia (the Emotion Dataset) ---------------------------------------------------------------
SARAVIA_FILES = {"train.txt": "train", "val.txt": "dev", "test.txt": "test"}


def read_saravia(root: Path, rules: LabelRules) -> SourceRead:
    corpus = "saravia"
    rows, files, missing, blank = [], [], [], 0
    for name, split in SARAVIA_FILES.items():
        path = root / name
        if not path.is_file():
            missing.append(name)
            continue
        files.append(name)
        stem = path.stem
        for number, line, _ in _lines(path):
            id = f"{stem}/{number}"
            if not line.strip():
                blank += 1
                rows.append(malformed(corpus, id, split, f"{name} line {number} is blank"))
                continue
            if ";" not in line:
                rows.append(malformed(corpus, id, split, f"{name} line {number}: no ';' before a label", text=line))
                continue
            text, raw = line.rsplit(";", 1)
            raw = raw.strip()
            mapped = _with_text(map_label(corpus, raw), text, corpus)
            rows.append(item(corpus, id, split, text.strip(), [raw], mapped))
    return SourceRead(unique_ids(rows), files, missing, {"blank lines": blank})


# -- GoEmotions ----------------------------------------------------------------------------------
GOEMOTIONS_FILES = {"train.tsv": "train", "dev.tsv": "dev", "test.tsv": "test"}
GOEMOTIONS_LABEL_FILES = ("labels.txt", "emotions.txt")


def goemotions_folder(root: Path) -> Path:
    """`original/` (the 28-label files) where the root has one, else the root itself."""
    original = root / "original"
    return original if (original / "train.tsv").is_file() else root


def goemotions_label_names(folder: Path) -> tuple[str, ...]:
    for name in GOEMOTIONS_LABEL_FILES:
        path = folder / name
        if path.is_file():
            return tuple(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    return GOEMOTIONS_LABELS


def read_goemotions(root: Path, rules: LabelRules) -> SourceRead:
    corpus = "goemotions"
    folder = goemotions_folder(root)
    names = goemotions_label_names(folder)
    prefix = f"{folder.relative_to(root)}/" if folder != root else ""
    rows, files, missing, several = [], [], [], 0
    for name, split in GOEMOTIONS_FILES.items():
        path = folder / name
        if not path.is_file():
            missing.append(prefix + name)
            continue
        files.append(prefix + name)
        for number, line, _ in _lines(path):
            fields = line.split("\t")
            where = f"{name} line {number}"
            if len(fields) != 3:
                rows.append(malformed(corpus, f"{split}/line{number}", split,
                                      f"{where}: {len(fields)} tab-separated fields, expected 3"))
                continue
            text, ids, comment_id = fields
            comment_id = comment_id.strip() or f"{split}/line{number}"
            try:
                raws = [names[int(i)] for i in ids.split(",")]
            except (ValueError, IndexError):
                rows.append(malformed(corpus, comment_id, split, f"{where}: label ids {ids!r} are not among 0..{len(names) - 1}", text=text))
                continue
            several += len(raws) > 1
            mapped = _with_text(map_goemotions(raws, rules), text, corpus)
            rows.append(item(corpus, comment_id, split, text.strip(), raws, mapped))
    return SourceRead(unique_ids(rows), files, missing, {"rows with several labels": several})


# -- ISEAR ---------------------------------------------------------------------------------------
ISEAR_FILE = "isear.csv"
ISEAR_LINE_BREAK = "á"  # cp850's 0xA0, a no-break space that marks the original line breaks
# Answers that describe no situation, as normalized by `_answer_key`.
ISEAR_NON_ANSWERS = frozenset({
    "no response", "none", "blank", "nothing", "never", "no description", "do not know",
    "not applicable", "not applicable to myself", "doesnt apply", "does not apply",
    "never experienced", "never felt the emotion", "i have never felt this emotion",
    "do not remember", "do not remember any incident", "can not remember",
    "can not think of anything", "can not think of anything just now", "cant think of any",
    "the same as in anger", "the same as in shame", "the same as in guilt", "same as in anger",
})


def _answer_key(text: str) -> str:
    return " ".join(re.sub(r"[^a-z ]", "", text.lower()).split())


def isear_text(sit: str) -> str:
    return " ".join(sit.replace(ISEAR_LINE_BREAK, " ").split())


def read_isear(root: Path, rules: LabelRules) -> SourceRead:
    corpus = "isear"
    path = root / ISEAR_FILE
    if not path.is_file():
        return SourceRead([], [], [ISEAR_FILE])
    lines = _lines(path)
    _, header_line, _ = next(lines, (0, "", False))
    header = header_line.split("|")
    if not {"Field1", "SIT", "MYKEY"} <= set(header):
        return SourceRead([malformed(corpus, "header", "train", "header lacks Field1, SIT or MYKEY")], [ISEAR_FILE], [])
    col = {name: i for i, name in enumerate(header)}
    sit, n = col["SIT"], len(header)
    rows, extra_bars = [], 0
    for number, line, _ in lines:
        fields = line.split("|")
        where = f"line {number}"
        if not line.strip():
            rows.append(malformed(corpus, f"line{number}", "train", f"{where} is blank"))
            continue
        if len(fields) < n:
            rows.append(malformed(corpus, f"line{number}", "train",
                                  f"{where}: {len(fields)} fields, expected {n}", text=line))
            continue
        extra = len(fields) - n
        key = fields[col["MYKEY"]].strip() or f"line{number}"
        raw = fields[col["Field1"]].strip()
        text = isear_text("|".join(fields[sit: sit + extra + 1]))
        subject = fields[col["ID"]].strip() if "ID" in col else None
        if extra:
            extra_bars += 1
            rows.append(malformed(corpus, key, "train",
                                  f"{where}: {extra} extra '|' inside SIT ({len(fields)} fields, expected {n}); text rejoined",
                                  text=text, raw_labels=[raw]))
            rows[-1]["speaker"] = subject
            continue
        mapped = _with_text(map_label(corpus, raw), text, corpus)
        if mapped.status == Status.OK and _answer_key(text) in ISEAR_NON_ANSWERS:
            mapped = Mapped(None, Status.NO_TEXT, f"the respondent described no situation: {text!r}")
        rows.append(item(corpus, key, "train", text, [raw], mapped, speaker=subject))
    return SourceRead(unique_ids(rows), [ISEAR_FILE], [], {"extra '|' in SIT": extra_bars})


# -- SemEval-2018 Task 1 EI-reg ------------------------------------------------------------------
SEMEVAL_EMOTIONS = ("anger", "fear", "joy", "sadness")
SEMEVAL_FILE = re.compile(r"EI-reg-En-(anger|fear|joy|sadness)-(train|dev|test)(-gold)?\.txt$")
SEMEVAL_HEADER = ["ID", "Tweet", "Affect Dimension", "Intensity Score"]


def semeval_files(root: Path) -> dict[tuple[str, str], Path]:
    """(emotion, split) -> file, found in the root or one folder below it."""
    found: dict[tuple[str, str], Path] = {}
    for path in sorted([*root.glob("*.txt"), *root.glob("*/*.txt")]):
        match = SEMEVAL_FILE.search(path.name)
        if match:
            emotion, split, gold = match.groups()
            if (emotion, split) not in found or gold:  # a gold test file wins over the blind one
                found[(emotion, split)] = path
    return found


def read_semeval_ei_reg(root: Path, rules: LabelRules) -> SourceRead:
    corpus = "semeval_ei_reg"
    files = semeval_files(root)
    missing = [f"2018-EI-reg-En-{e}-{s}.txt" for s in SPLITS for e in SEMEVAL_EMOTIONS if (e, s) not in files]
    rows: list[dict[str, Any]] = []
    crlf_lines = literal_newlines = 0
    for (emotion, split), path in sorted(files.items(), key=lambda kv: (SPLITS.index(kv[0][1]), kv[0][0])):
        name = path.name
        for number, line, crlf in _lines(path):
            crlf_lines += crlf
            fields = line.split("\t")
            if number == 1 and fields[:1] == ["ID"]:
                continue
            id = f"{emotion}/{fields[0].strip() or f'{split}-line{number}'}"
            where = f"{name} line {number}"
            if len(fields) != 4:
                rows.append(malformed(corpus, id, split, f"{where}: {len(fields)} tab-separated fields, expected 4"))
                continue
            tweet_id, tweet, affect, score = fields
            literal_newlines += "\\n" in tweet
            text = tweet.replace("\\n", " ").strip()
            if affect.strip() != emotion:
                rows.append(malformed(corpus, id, split, f"{where}: affect {affect!r} in the {emotion} file", text=text))
                continue
            if score.strip() == "NONE":
                mapped = Mapped(None, Status.UNLABELLED, "intensity NONE (the test file withholds its scores)")
                rows.append(item(corpus, id, split, text, [emotion], mapped))
                continue
            try:
                intensity = float(score)
            except ValueError:
                intensity = float("nan")
            if not 0.0 <= intensity <= 1.0:
                rows.append(malformed(corpus, id, split, f"{where}: intensity {score!r} is not in [0, 1]", text=text, raw_labels=[emotion]))
                continue
            row = item(corpus, id, split, text, [emotion], _with_text(map_label(corpus, emotion), text, corpus),
                       intensity=intensity)
            row["tweet"] = tweet_id.strip()
            rows.append(row)
    resolve_semeval_tweets(rows, rules.semeval_min_intensity)
    for row in rows:
        row.pop("tweet", None)
    quirks = {"lines ending CRLF": crlf_lines, "tweets with a literal \\n": literal_newlines}
    return SourceRead(unique_ids(rows), [p.name for p in files.values()], missing, quirks)


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
                _demote(row, Status.LOW_INTENSITY, f"{emotion} intensity {row['intensity']:.3f} is below {threshold}")
            elif len(winners) > 1:
                tied = ", ".join(sorted(r["raw_labels"][0] for r in winners))
                _demote(row, Status.AMBIGUOUS_LABEL, f"equal top intensity {top:.3f} in {tied}")
            elif row is not winners[0]:
                best = winners[0]["raw_labels"][0]
                _demote(row, Status.DUPLICATE, f"the tweet counts once, as {best} (intensity {top:.3f} > {row['intensity']:.3f})")


def _demote(row: dict[str, Any], status: Status, reason: str) -> None:
    row["label"] = None
    row["status"] = str(status)
    row["reason"] = reason


READERS: dict[str, Callable[[Path, LabelRules], SourceRead]] = {
    "crowdflower": read_crowdflower,
    "saravia": read_saravia,
    "goemotions": read_goemotions,
    "isear": read_isear,
    "semeval_ei_reg": read_semeval_ei_reg,
}

# The readers that apply a `[labels]` rule (their assets use that resource).
USES_LABEL_RULES = frozenset({"goemotions", "semeval_ei_reg"})
