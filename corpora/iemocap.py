"""IEMOCAP (Busso et al. 2008, `IEMOCAP_full_release`), one item per evaluated turn.

Layout, per session (`Session1` .. `Session5`):

    dialog/EmoEvaluation/Ses01F_impro01.txt     a header line per turn, then each evaluator's lines:
        [6.2901 - 8.2357]<TAB>Ses01F_impro01_F000<TAB>neu<TAB>[2.5000, 2.5000, 2.5000]
    dialog/transcriptions/Ses01F_impro01.txt    `Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.`
    sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav     one wav per turn

The header gives the consensus category (`xxx`: the evaluators reached none, an
`ambiguous_label`) and the mean valence, activation (arousal) and dominance ratings (1-5). The
speaker of a turn is its session and the gender letter before the turn number (`..._F000` in
`Ses01M_...` is the session's female actor: `Ses01F`); the fold is the session
(leave-one-session-out). A turn without its wav is `missing_media`, a wav without an evaluation
`no_annotation`, a header line that does not parse `malformed_row`; a turn missing from the
transcription keeps its label and has no text.
"""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import AUDIO_SUFFIXES, Problem, Scan, audio_problem, item, malformed, mark_duplicates, sorted_rows
from corpora.registry import Corpus, Protocol
from storage.labels import LabelRules
from storage.status import Status

SESSIONS = tuple(f"Session{n}" for n in range(1, 6))
NO_AGREEMENT = "xxx"
_HEADER = re.compile(
    r"^\[\s*(?P<start>[\d.]+)\s*-\s*(?P<end>[\d.]+)\s*\]\s+(?P<turn>Ses\S+)\s+(?P<label>\S+)\s+"
    r"\[\s*(?P<v>[\d.]+)\s*,\s*(?P<a>[\d.]+)\s*,\s*(?P<d>[\d.]+)\s*\]\s*$"
)
_TRANSCRIPT = re.compile(r"^(?P<turn>\S+)\s+\[[\d.]+-[\d.]+\]:\s?(?P<text>.*)$")
_TURN = re.compile(r"^Ses(?P<session>\d{2})[FM]_.+_(?P<gender>[FM])\d{3}$")


def turn_speaker(turn: str) -> str | None:
    """`Ses01M_impro01_F000` -> `Ses01F`: the session and the gender of the turn's actor."""
    match = _TURN.match(turn)
    return f"Ses{match.group('session')}{match.group('gender')}" if match else None


def turn_session(turn: str) -> int | None:
    match = _TURN.match(turn)
    return int(match.group("session")) if match else None


def iemocap_root(root: Path) -> Path:
    """The folder holding `Session1..5`: the root itself or `IEMOCAP_full_release/` under it."""
    for folder in (root, root / "IEMOCAP_full_release"):
        if any((folder / s).is_dir() for s in SESSIONS):
            return folder
    return root


def read_transcripts(scan: Scan, folder: Path) -> dict[str, str]:
    """Turn -> transcript text from every file of a session's `dialog/transcriptions/`."""
    texts: dict[str, str] = {}
    for path in sorted(folder.glob("*.txt")) if folder.is_dir() else ():
        for line in (scan.text(path) or "").splitlines():
            match = _TRANSCRIPT.match(line.strip())
            if match:
                texts[match.group("turn")] = match.group("text").strip()
    return texts


def read(root: Path, rules: LabelRules | None = None) -> Scan:
    base = iemocap_root(root)
    scan = Scan("iemocap", root, layout="IEMOCAP: Session*/dialog/EmoEvaluation, transcriptions, sentences/wav")
    sessions = [base / s for s in SESSIONS if (base / s).is_dir()]
    if not sessions:
        return scan.not_recognised("Session1..Session5/")
    for session in sessions:
        _read_session(scan, session)
    mark_duplicates(scan.rows)
    scan.rows = sorted_rows(scan.rows)
    return scan


def _read_session(scan: Scan, session: Path) -> None:
    evaluations = session / "dialog" / "EmoEvaluation"
    if not evaluations.is_dir():
        scan.missing.append(scan.relative(evaluations) + "/")
    transcripts = read_transcripts(scan, session / "dialog" / "transcriptions")
    wav_folder = session / "sentences" / "wav"
    wavs = {p.stem: p for p in scan.files_under(wav_folder, AUDIO_SUFFIXES)} if wav_folder.is_dir() else {}
    scan.files += len(wavs)
    evaluated: set[str] = set()
    # Only the top-level files: Categorical/, Attribute/ and Self-evaluation/ hold per-evaluator copies.
    for path in sorted(evaluations.glob("*.txt")) if evaluations.is_dir() else ():
        scan.files += 1
        for number, line in enumerate((scan.text(path) or "").splitlines(), 1):
            if line.startswith("["):
                scan.rows.append(_header_row(scan, path, number, line, wavs, transcripts, evaluated))
    for turn, wav in sorted(wavs.items()):
        if turn not in evaluated:
            scan.rows.append(item("iemocap", turn, path=scan.relative(wav), speaker=turn_speaker(turn),
                                  text=transcripts.get(turn), problem=Problem(
                                      Status.NO_ANNOTATION, f"{wav.name} has no line in dialog/EmoEvaluation")))


def _header_row(scan: Scan, path: Path, number: int, line: str, wavs: dict[str, Path],
                transcripts: dict[str, str], evaluated: set[str]) -> dict:
    match = _HEADER.match(line.strip())
    if match is None:
        return item("iemocap", f"{path.stem}:{number}", path=scan.relative(path), problem=malformed(
            f"{path.name} line {number}: {line.strip()[:60]!r} is not `[start - end] turn label [V, A, D]`"))
    turn, label = match.group("turn"), match.group("label")
    evaluated.add(turn)
    vad = (float(match.group("v")), float(match.group("a")), float(match.group("d")))
    speaker, text, wav = turn_speaker(turn), transcripts.get(turn), wavs.get(turn)
    if text is None:
        scan.quirk("turn missing from the transcription")
    if speaker is None:
        problem = malformed(f"turn name {turn!r} is not SesNN[FM]_dialog_[FM]NNN")
    elif wav is None:
        problem = Problem(Status.MISSING_MEDIA, f"{turn} is evaluated but sentences/wav has no {turn}.wav")
    elif label == NO_AGREEMENT:
        problem = Problem(Status.AMBIGUOUS_LABEL, "the evaluators reached no majority category (xxx)")
    else:
        problem = audio_problem(wav)
    return item("iemocap", turn, label, path=scan.relative(wav) if wav is not None else None, speaker=speaker,
                text=text, vad=vad, problem=problem)


CORPUS = Corpus("iemocap", "dialogue", "IEMOCAP's evaluated turns", read, Protocol("leave_one_session_out"))
