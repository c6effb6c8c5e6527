"""Crowdflower's "Emotion in Text" (Figure Eight, 2016): `text_emotion.csv` with the columns
`tweet_id, sentiment, author, content`, 40,000 tweets, 13 labels (`happiness`, not `joy`), no
splits (a test split is drawn, see storage.schemas.corpora.DRAWN_TEST_SPLIT). HTML entities in
the tweets (`&quot;`, `&amp;`) are unescaped."""

from __future__ import annotations

import csv
import html
from pathlib import Path

from corpora.reading import Scan, item, malformed, text_mapped, unique_ids
from corpora.registry import Corpus
from storage.labels import LabelRules, map_label

FILE = "text_emotion.csv"
COLUMNS = ("tweet_id", "sentiment", "author", "content")


def read(root: Path, rules: LabelRules = LabelRules()) -> Scan:
    scan = Scan("crowdflower", root, layout=f"Crowdflower: {FILE}")
    if (path := scan.file(FILE)) is None:
        return scan
    entities = 0
    with scan.open_text(path) as handle:
        reader = csv.reader(handle if handle is not None else ())
        header = next(reader, None)
        if handle is not None and tuple(header or []) != COLUMNS:
            scan.rows.append(item(scan.corpus, "header", problem=malformed(f"header {header or []} is not {list(COLUMNS)}")))
            return scan
        for record in reader:
            entities += _record(scan, record, reader.line_num)
    scan.rows = unique_ids(scan.rows)
    scan.quirks["html entities unescaped"] = entities
    return scan


def _record(scan: Scan, record: list[str], line: int) -> bool:
    """One CSV record as a row; whether its text held an HTML entity."""
    if len(record) != len(COLUMNS):
        scan.rows.append(item(scan.corpus, f"line{line}", problem=malformed(f"line {line}: {len(record)} fields, expected 4")))
        return False
    tweet_id, sentiment, _author, content = record
    text = html.unescape(content).strip()
    mapped = text_mapped(map_label(scan.corpus, sentiment), text, scan.corpus)
    scan.rows.append(item(scan.corpus, tweet_id or f"line{line}", [sentiment], text=text, mapped=mapped))
    return text != content.strip()


CORPUS = Corpus("crowdflower", "text", f"Crowdflower's {FILE}", read)
