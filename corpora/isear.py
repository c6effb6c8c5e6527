"""ISEAR (Scherer & Wallbott 1994): `isear.csv`, `|`-separated with 43 header fields, the text in
`SIT`, the label in `Field1` (seven labels; `shame` and `guilt` have no counterpart), no splits (a
test split is drawn). A `|` inside the SIT text shifts the fields (163 rows): such a row is a
malformed_row with its text rejoined for inspection. `á` (a mis-decoded no-break space that marks
the original line breaks) reads as a space; non-answers ("[ No response.]") are no_text."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import Scan, item, malformed, text_mapped, unique_ids
from corpora.registry import Corpus
from storage.labels import LabelRules, Mapped, map_label
from storage.status import Status

FILE = "isear.csv"
LINE_BREAK = "á"  # cp850's 0xA0, a no-break space that marks the original line breaks
# Answers that describe no situation, as normalized by `_answer_key`.
NON_ANSWERS = frozenset({
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
    return " ".join(sit.replace(LINE_BREAK, " ").split())


def read(root: Path, rules: LabelRules = LabelRules()) -> Scan:
    scan = Scan("isear", root, layout=f"ISEAR: {FILE} (|-separated)")
    if (path := scan.file(FILE)) is None:
        return scan
    lines = scan.lines(path)
    _, header_line, _ = next(lines, (0, "", False))
    header = header_line.split("|")
    if not {"Field1", "SIT", "MYKEY"} <= set(header):
        if not scan.outside:
            scan.rows.append(item(scan.corpus, "header", problem=malformed("header lacks Field1, SIT or MYKEY")))
        return scan
    columns = {name: i for i, name in enumerate(header)}
    extra_bars = 0
    for number, line, _ in lines:
        row = _line(scan.corpus, columns, number, line)
        extra_bars += row["reason"].endswith("text rejoined")
        scan.rows.append(row)
    scan.rows = unique_ids(scan.rows)
    scan.quirks["extra '|' in SIT"] = extra_bars
    return scan


def _line(corpus: str, columns: dict[str, int], number: int, line: str) -> dict:
    fields, n, where = line.split("|"), len(columns), f"line {number}"
    if not line.strip():
        return item(corpus, f"line{number}", problem=malformed(f"{where} is blank"))
    if len(fields) < n:
        return item(corpus, f"line{number}", text=line,
                    problem=malformed(f"{where}: {len(fields)} fields, expected {n}"))
    extra, sit = len(fields) - n, columns["SIT"]
    key = fields[columns["MYKEY"]].strip() or f"line{number}"
    raw = fields[columns["Field1"]].strip()
    text = isear_text("|".join(fields[sit: sit + extra + 1]))
    subject = fields[columns["ID"]].strip() if "ID" in columns else None
    if extra:
        reason = f"{where}: {extra} extra '|' inside SIT ({len(fields)} fields, expected {n}); text rejoined"
        return item(corpus, key, [raw], text=text, speaker=subject, problem=malformed(reason))
    mapped = text_mapped(map_label(corpus, raw), text, corpus)
    if mapped.status == Status.OK and _answer_key(text) in NON_ANSWERS:
        mapped = Mapped(None, Status.NO_TEXT, f"the respondent described no situation: {text!r}")
    return item(corpus, key, [raw], text=text, speaker=subject, mapped=mapped)


CORPUS = Corpus("isear", "text", f"ISEAR's {FILE}", read)
