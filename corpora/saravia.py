"""The "Emotion Dataset" (Saravia et al. 2018, CARER): `train.txt`, `val.txt`, `test.txt`, one
`text;label` per line, six labels (`love` has no counterpart); `val` is the dev split. A blank
line (val.txt starts with one) is a malformed_row."""

from __future__ import annotations

from pathlib import Path

from corpora.reading import Scan, item, malformed, text_mapped, unique_ids
from corpora.registry import Corpus
from storage.labels import LabelRules, map_label

FILES = {"train.txt": "train", "val.txt": "dev", "test.txt": "test"}


def read(root: Path, rules: LabelRules = LabelRules()) -> Scan:
    scan = Scan("saravia", root, layout="Saravia: train.txt, val.txt, test.txt (text;label)")
    blank = 0
    for name, split in FILES.items():
        path = root / name
        if not path.is_file():
            scan.missing.append(name)
            continue
        for number, line, _ in scan.lines(path):
            blank += not line.strip()
            scan.rows.append(_line(scan.corpus, f"{path.stem}/{number}", split, f"{name} line {number}", line))
    scan.rows = unique_ids(scan.rows)
    scan.quirks["blank lines"] = blank
    return scan


def _line(corpus: str, id: str, split: str, where: str, line: str) -> dict:
    if not line.strip():
        return item(corpus, id, split=split, problem=malformed(f"{where} is blank"))
    if ";" not in line:
        return item(corpus, id, split=split, text=line, problem=malformed(f"{where}: no ';' before a label"))
    text, raw = line.rsplit(";", 1)
    raw = raw.strip()
    return item(corpus, id, [raw], split=split, text=text.strip(),
                mapped=text_mapped(map_label(corpus, raw), text, corpus))


CORPUS = Corpus("saravia", "text", "the Emotion Dataset (Saravia et al.)", read)
