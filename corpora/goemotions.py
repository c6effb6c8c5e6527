"""GoEmotions (Demszky et al. 2020): `original/{train,dev,test}.tsv` (or the tsv files in the
root), tab-separated `text, label ids, comment id`, no header; the ids name the 28 labels of
`labels.txt` or `emotions.txt`. A row's labels (several in 7,102 train rows) resolve through the
dataset's Ekman groups; labels spanning groups follow `[labels] goemotions_multi_group`."""

from __future__ import annotations

from pathlib import Path

from corpora.reading import Scan, item, malformed, text_mapped, unique_ids
from corpora.registry import Corpus
from storage.labels import GOEMOTIONS_LABELS, LabelRules, map_goemotions

FILES = {"train.tsv": "train", "dev.tsv": "dev", "test.tsv": "test"}
LABEL_FILES = ("labels.txt", "emotions.txt")


def folder_of(root: Path) -> Path:
    """`original/` (the 28-label files) where the root has one, else the root itself."""
    original = root / "original"
    return original if (original / "train.tsv").is_file() else root


def label_names(scan: Scan, folder: Path) -> tuple[str, ...]:
    for name in LABEL_FILES:
        path = folder / name
        if path.is_file():
            return tuple(line.strip() for _, line, _ in scan.lines(path) if line.strip())
    return GOEMOTIONS_LABELS


def read(root: Path, rules: LabelRules = LabelRules()) -> Scan:
    scan = Scan("goemotions", root, layout="GoEmotions: original/{train,dev,test}.tsv")
    folder = folder_of(root)
    names = label_names(scan, folder)
    several = 0
    for name, split in FILES.items():
        path = folder / name
        if not path.is_file():
            scan.missing.append(scan.relative(path))
            continue
        for number, line, _ in scan.lines(path):
            row = _line(scan.corpus, split, f"{name} line {number}", f"{split}/line{number}", line, names, rules)
            several += len(row["raw_labels"]) > 1
            scan.rows.append(row)
    scan.rows = unique_ids(scan.rows)
    scan.quirks["rows with several labels"] = several
    return scan


def _line(corpus: str, split: str, where: str, fallback_id: str, line: str, names: tuple[str, ...],
          rules: LabelRules) -> dict:
    fields = line.split("\t")
    if len(fields) != 3:
        return item(corpus, fallback_id, split=split,
                    problem=malformed(f"{where}: {len(fields)} tab-separated fields, expected 3"))
    text, ids, comment_id = fields
    comment_id = comment_id.strip() or fallback_id
    try:
        raws = [names[int(i)] for i in ids.split(",")]
    except (ValueError, IndexError):
        return item(corpus, comment_id, split=split, text=text,
                    problem=malformed(f"{where}: label ids {ids!r} are not among 0..{len(names) - 1}"))
    return item(corpus, comment_id, raws, split=split, text=text.strip(),
                mapped=text_mapped(map_goemotions(raws, rules), text, corpus))


CORPUS = Corpus("goemotions", "text", "GoEmotions' tsv files", read, label_rules=True)
