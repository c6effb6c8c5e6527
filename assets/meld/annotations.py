"""Reading MELD's annotation CSVs and repairing what real copies get wrong (no Dagster here).

Handled here, each documented in the README's quirks table:
- cp1252 mojibake (`Iâ€™m` for `I’m`) is repaired sequence by sequence, only where the
  characters re-encode to valid UTF-8 of a plausible character; correct UTF-8 is left untouched
  and the original text is kept.
- Stage directions in brackets, `(...)` or `[...]`, also one cut off without its closing bracket,
  are removed from the spoken text and kept aside.
- Timestamps `H:MM:SS,mmm` with one- or two-digit hours; a millisecond field of fewer than three
  digits (`00:06:47,28`) is read as a decimal fraction (0.28 s).
- Combined speakers ("Joey and Chandler", "Phoebe/Waitress") become a list with a flag.
- CRLF or LF line ends, a UTF-8 byte-order mark, or a whole file in cp1252.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

OFFICIAL_COLUMNS = (
    "Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID",
    "Season", "Episode", "StartTime", "EndTime",
)

# -- text --------------------------------------------------------------------------------------
# Byte behind each character as cp1252 shows it; the five bytes cp1252 leaves undefined come
# through decoders as the C1 control character of the same value.
_CP1252_BYTE: dict[str, int] = {}
for _byte in range(0x80, 0x100):
    try:
        _CP1252_BYTE[bytes([_byte]).decode("cp1252")] = _byte
    except UnicodeDecodeError:
        _CP1252_BYTE[chr(_byte)] = _byte
_MOJIBAKE_RUN = re.compile("[" + re.escape("".join(_CP1252_BYTE)) + "]{2,4}")
_LAST_PLAUSIBLE = 0x2FFF  # Latin, Greek, punctuation, symbols; CJK from a repair is a false hit


def fix_mojibake(text: str) -> str:
    """`text` with cp1252 mojibake of UTF-8 repaired (`â€™` -> `’`), all else unchanged."""
    return _MOJIBAKE_RUN.sub(_repair_run, text)


def _repair_run(match: re.Match) -> str:
    run = match.group(0)
    out, i = [], 0
    while i < len(run):
        for length in (4, 3, 2):
            piece = run[i:i + length]
            if len(piece) == length and (char := _utf8_char(piece)) is not None:
                out.append(char)
                i += length
                break
        else:
            out.append(run[i])
            i += 1
    return "".join(out)


def _utf8_char(piece: str) -> str | None:
    """The one character whose UTF-8 bytes, shown as cp1252, read `piece`; else None."""
    raw = bytes(_CP1252_BYTE[c] for c in piece)
    try:
        char = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(char) != 1 or ord(char) < 0x80 or ord(char) > _LAST_PLAUSIBLE or 0x80 <= ord(char) < 0xA0:
        return None
    # Round trip: the repaired character must give back exactly the characters it replaces.
    if "".join(_cp1252_char(b) for b in char.encode("utf-8")) != piece:
        return None
    return char


def _cp1252_char(byte: int) -> str:
    try:
        return bytes([byte]).decode("cp1252")
    except UnicodeDecodeError:
        return chr(byte)


_CLOSED_DIRECTION = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_OPEN_DIRECTION = re.compile(r"[(\[][^()\[\]]*$")


@dataclasses.dataclass(frozen=True)
class SpokenText:
    text: str  # what is said: mojibake repaired, stage directions removed, spaces collapsed
    stage_directions: tuple[str, ...]
    quirks: tuple[str, ...]  # mojibake_repaired, stage_direction, unclosed_stage_direction, no_spoken_text


def spoken_text(utterance: str) -> SpokenText:
    quirks = []
    repaired = fix_mojibake(utterance)
    if repaired != utterance:
        quirks.append("mojibake_repaired")
    directions = [m.group(0) for m in _CLOSED_DIRECTION.finditer(repaired)]
    text = _CLOSED_DIRECTION.sub(" ", repaired)
    if directions:
        quirks.append("stage_direction")
    if cut := _OPEN_DIRECTION.search(text):
        # MELD cut some lines inside a direction: "(She goes and sits down in the"
        directions.append(cut.group(0).strip())
        text = text[: cut.start()]
        quirks.append("unclosed_stage_direction")
    text = " ".join(text.split())
    if directions and not text:
        quirks.append("no_spoken_text")
    return SpokenText(text, tuple(directions), tuple(quirks))


# -- speakers ----------------------------------------------------------------------------------
_SPEAKER_SEPARATOR = re.compile(r"\s+and\s+|\s*/\s*|\s*,\s*|\s*&\s*")
_HONORIFICS = {"Mr.", "Mrs.", "Ms.", "Dr.", "Mr", "Mrs", "Ms", "Dr"}


def split_speakers(speaker: str) -> list[str]:
    """["Joey", "Chandler"] for "Joey and Chandler", ["Phoebe", "Waitress"] for "Phoebe/Waitress"."""
    parts = [p.strip() for p in _SPEAKER_SEPARATOR.split(speaker.strip()) if p.strip()]
    if len(parts) > 1 and not any(p in _HONORIFICS for p in parts):  # "Mr. and Mrs. Geller" is one
        return parts
    return [speaker.strip()] if speaker.strip() else []


# -- timestamps --------------------------------------------------------------------------------
_TIMESTAMP = re.compile(r"^\s*(\d{1,2}):([0-5]\d):([0-5]\d)[,.](\d{1,3})\s*$")


class BadTimestamp(ValueError):
    pass


def parse_timestamp(value: str) -> tuple[float, tuple[str, ...]]:
    """Seconds from `H:MM:SS,mmm`, and the quirks met (one_digit_hour, short_millis)."""
    match = _TIMESTAMP.match(value or "")
    if not match:
        raise BadTimestamp(f"timestamp {value!r} is not H:MM:SS,mmm")
    hours, minutes, seconds, fraction = match.groups()
    quirks = []
    if len(hours) == 1:
        quirks.append("one_digit_hour")
    if len(fraction) < 3:
        quirks.append("short_millis")  # "28" was written for .28 s: a dropped trailing zero
    value_s = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(fraction) / 10 ** len(fraction)
    return value_s, tuple(quirks)


# -- the CSV -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class CsvFile:
    rows: list[tuple[int, dict[str, str] | None, str]]  # (line, fields or None if malformed, problem)
    notes: tuple[str, ...]  # file-level: encoding, line ends, missing columns
    records: int  # data records in the file (the number no ingest may lose)


def read_csv(path: Path) -> CsvFile:
    """Every data record of a MELD CSV, malformed ones included (as None with the problem)."""
    raw = path.read_bytes()
    notes = []
    try:
        content = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        content = raw.decode("cp1252", errors="replace")
        notes.append(f"{path.name} is not UTF-8; read as cp1252")
    if raw.startswith(b"\xef\xbb\xbf"):
        notes.append(f"{path.name} starts with a UTF-8 byte-order mark")
    if b"\r\n" in raw:
        notes.append(f"{path.name} has CRLF line ends")
    reader = csv.reader(io.StringIO(content, newline=""))
    header = next(reader, None) or []
    header = [h.strip() for h in header]
    missing = [c for c in OFFICIAL_COLUMNS if c not in header]
    if missing:
        notes.append(f"{path.name} lacks the official columns {missing}")
    rows = []
    for record in reader:
        line = reader.line_num
        if not any(field.strip() for field in record):
            continue  # a blank line is not a record
        if len(record) != len(header):
            problem = f"{len(record)} fields where the header has {len(header)}"
            rows.append((line, _realigned(header, record), problem))
        elif missing:
            rows.append((line, dict(zip(header, record)), f"the CSV lacks columns {missing}"))
        else:
            rows.append((line, dict(zip(header, record)), ""))
    return CsvFile(rows, tuple(notes), len(rows))


def _realigned(header: list[str], record: list[str]) -> dict[str, str] | None:
    """Fields of a record with too many fields, read as an unquoted comma inside `Utterance`
    (the other fields then line up again); None for a record with too few."""
    extra = len(record) - len(header)
    if extra < 0 or "Utterance" not in header:
        return None
    at = header.index("Utterance")
    merged = record[:at] + [",".join(record[at:at + extra + 1])] + record[at + extra + 1:]
    return dict(zip(header, merged))


def parse_int(value: str | None) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None
