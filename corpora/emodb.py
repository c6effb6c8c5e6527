"""EmoDB, the Berlin Database of Emotional Speech (Burkhardt et al. 2005; emodb.bilderbar.info):
`wav/03a01Fa.wav`: speaker (2 digits), text code (a01..b10), emotion (German initial: W Ärger,
L Langeweile, E Ekel, A Angst, F Freude, T Trauer, N neutral), version letter. Evaluated leaving
one speaker out."""

from __future__ import annotations

import re
from pathlib import Path

from corpora.reading import AUDIO_SUFFIXES, Naming, Scan, audio_problem, item, stem_match, unknown_code
from corpora.registry import Corpus, Protocol

TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
EMOTIONS = ("W", "L", "E", "A", "F", "T", "N")
_NAME = re.compile(r"^(\d{2})([ab]\d{2})([A-Z])([a-z])$")


def _row(match: re.Match, path: Path, rel: str, scan: Scan) -> dict:
    speaker, text_code, emotion, _version = match.groups()
    problem = unknown_code(path, {"emotion letter": (emotion, EMOTIONS), "text code": (text_code, TEXTS)}, audio_problem)
    return item("emodb", path.stem, emotion, path=rel, speaker=speaker, text=TEXTS.get(text_code), problem=problem)


# EmoDB's `wav/` folder (or the wavs directly under the root)
NAMING = Naming("emodb", "EmoDB: wav/SSTTTEV.wav", AUDIO_SUFFIXES, "SPEAKER TEXT EMOTION VERSION (e.g. 03a01Fa)",
                stem_match(_NAME), _row, folder=("wav", "EmoDB: SSTTTEV.wav under the root (no wav/)"))
read = NAMING.read


CORPUS = Corpus("emodb", "audio", "EmoDB's wav files", read, Protocol("leave_one_speaker_out"))
